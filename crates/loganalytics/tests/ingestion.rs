//! The Logs Ingestion client against the in-process emulator, over real
//! loopback HTTP. Every test checks that the emulator holds exactly the rows
//! that were sent, once each.

mod common;

use std::time::Duration;

use common::*;
use mcas_azure_emulator::{
    Column, ColumnType, DEFAULT_DCR_ID, Dcr, EmulatorConfig, FaultKind, FaultScope, Faults,
    HugeBodyFault, RedirectFault, Stream, TablePlan,
};
use mcas_loganalytics::{LogsIngestionClient, RejectReason, RetryPolicy};
use serde_json::{Value, json};

#[tokio::test]
async fn delivers_rows_gzipped_with_request_ids() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let shown = format!("{client:?}");
    assert!(
        !shown.contains(mcas_azure_emulator::DEFAULT_CLIENT_SECRET),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"));
    let ids = ids("basic", 25);
    let report = client.send(&rows_for(&ids)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.delivered_rows, 25);
    assert_eq!(report.requests, 1);
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let reqs = ingestion_requests(&emu);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].status, Some(204));
    assert_eq!(reqs[0].rows, 25);
    assert!(
        reqs[0]
            .client_request_id
            .as_deref()
            .is_some_and(|id| id.len() == 36)
    );
    // Gzip: the wire body is smaller than the JSON.
    let json_len = serde_json::to_vec(&rows_for(&ids)).unwrap().len() as u64;
    assert!(
        reqs[0].bytes < json_len / 2,
        "{} vs {json_len}",
        reqs[0].bytes
    );
    // One token for the whole send.
    assert_eq!(token_requests(&emu).len(), 1);
}

#[tokio::test]
async fn ndjson_rows_and_invalid_lines() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let ids = ids("nd", 5);
    let mut nd = Vec::new();
    for (i, row) in rows_for(&ids).iter().enumerate() {
        serde_json::to_writer(&mut nd, row).unwrap();
        nd.extend_from_slice(b"\n");
        if i == 2 {
            nd.extend_from_slice(b"\nnot json at all\r\n");
        }
    }
    let report = client.send_ndjson(&nd).await;
    assert_eq!(report.delivered_rows, 5);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 3);
    assert_eq!(report.rejected[0].row, b"not json at all");
    assert!(matches!(
        report.rejected[0].reason,
        RejectReason::Invalid(_)
    ));
    assert!(report.is_settled());
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
}

/// Rows whose JSON array body is exactly `target` bytes.
fn rows_with_body_len(prefix: &str, n: usize, target: usize) -> (Vec<String>, Vec<Value>) {
    let ids = ids(prefix, n);
    let mut rows: Vec<Value> = ids.iter().map(|id| csl_row(id)).collect();
    let len = |rows: &[Value]| serde_json::to_vec(rows).expect("test setup").len();
    let base = len(&rows);
    assert!(base < target);
    let mut missing = target - base;
    let per = missing / n;
    for (i, row) in rows.iter_mut().enumerate() {
        let pad = if i + 1 == n { missing } else { per };
        missing -= pad;
        row["DeviceCustomString1"] = json!("p".repeat(pad.saturating_sub(25)));
    }
    // `"DeviceCustomString1":""` plus its comma is 25 bytes.
    assert_eq!(len(&rows), target);
    (ids, rows)
}

#[tokio::test]
async fn body_of_exactly_one_million_bytes_is_one_request() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let (ids, rows) = rows_with_body_len("under", 400, 1_000_000);
    let report = client.send(&rows).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.requests, 1);
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let reqs = ingestion_requests(&emu);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].rows, 400);
}

#[tokio::test]
async fn one_byte_over_one_million_is_two_requests() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let (ids, rows) = rows_with_body_len("over", 400, 1_000_001);
    let report = client.send(&rows).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.requests, 2);
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let reqs = ingestion_requests(&emu);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].rows + reqs[1].rows, 400);
    assert!(reqs.iter().all(|r| r.status == Some(204)));
}

#[tokio::test]
async fn lone_oversize_row_is_rejected_never_sent() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let ids = ids("big", 3);
    let mut rows = rows_for(&ids);
    let mut huge = csl_row("huge");
    huge["Message"] = json!("m".repeat(1_000_000));
    rows.insert(1, huge);
    let report = client.send(&rows).await;
    assert_eq!(report.delivered_rows, 3);
    assert_eq!(report.rejected.len(), 1);
    let r = &report.rejected[0];
    assert_eq!(r.index, 1);
    assert!(r.row.len() > 1_000_000);
    match r.reason {
        RejectReason::TooLarge { size, limit } => {
            assert_eq!(limit, 1_000_000);
            assert_eq!(size, r.row.len() + 2);
        }
        ref other => panic!("{other:?}"),
    }
    assert!(report.is_settled());
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    // The big row never reached the wire.
    assert!(ingestion_requests(&emu).iter().all(|r| r.bytes < 1_000_000));
}

#[tokio::test]
async fn payload_too_large_splits_in_halves() {
    let mut config = EmulatorConfig::default();
    config.limits.ingestion_max_bytes = 8_000;
    let emu = start(config).await;
    let client = builder(&emu).build().unwrap();
    let ids = ids("split", 120);
    let report = client.send(&rows_for(&ids)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.delivered_rows, 120);
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let reqs = ingestion_requests(&emu);
    let n413 = reqs.iter().filter(|r| r.status == Some(413)).count();
    assert!(n413 >= 1, "the first body must have been refused");
    let ok: u64 = reqs
        .iter()
        .filter(|r| r.status == Some(204))
        .map(|r| r.rows)
        .sum();
    assert_eq!(ok, 120);
    assert!(
        reqs.iter()
            .filter(|r| r.status == Some(204))
            .all(|r| r.rows < 120)
    );
}

#[tokio::test]
async fn bisect_isolates_one_bad_row_among_a_thousand() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let ids = ids("bis", 1000);
    let mut rows = rows_for(&ids);
    rows[637]["DestinationPort"] = json!("not a port");
    let report = client.send(&rows).await;
    assert_eq!(report.delivered_rows, 999);
    assert_eq!(report.rejected.len(), 1);
    let bad = &report.rejected[0];
    assert_eq!(bad.index, 637);
    assert_eq!(
        serde_json::from_slice::<Value>(&bad.row).unwrap(),
        rows[637]
    );
    match &bad.reason {
        RejectReason::Refused(e) => {
            assert_eq!(e.status(), Some(400));
            assert_eq!(e.code(), Some("InvalidPayload"));
            assert!(e.is_rejected() && !e.is_retryable());
        }
        other => panic!("{other:?}"),
    }
    assert!(report.is_settled());
    let mut good = ids.clone();
    good.remove(637);
    assert_exactly_once(&emu, CSL, "ExtID", &good);
    // Bisection costs about two requests per halving, not one per row.
    let reqs = ingestion_requests(&emu);
    assert!(reqs.len() <= 2 * 10 + 1, "{} requests", reqs.len());
    assert_eq!(reqs.iter().filter(|r| r.status == Some(400)).count(), 11);
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::scripted([FaultKind::TooManyRequests, FaultKind::TooManyRequests])
        .with_retry_after(1)
        .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    // Backoff alone would wait at most a few milliseconds.
    let client = builder(&emu)
        .retry(
            RetryPolicy::unbounded()
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(5)),
        )
        .build()
        .unwrap();
    let ids = ids("ra", 10);
    let report = client.send(&rows_for(&ids)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let reqs = ingestion_requests(&emu);
    let statuses: Vec<_> = reqs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(204)]);
    assert_eq!(reqs[0].retry_after, Some(1));
    for pair in reqs.windows(2) {
        let gap = pair[1].since_start - pair[0].since_start;
        assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    }
}

#[tokio::test]
async fn a_503_storm_delivers_everything_once() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default()
        .with_seed(7)
        .with_rate_503(0.4)
        .with_rate_500(0.1)
        .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    let client = builder(&emu).max_body_bytes(4_000).build().unwrap();
    let ids = ids("storm", 150);
    let report = client.send(&rows_for(&ids)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let reqs = ingestion_requests(&emu);
    let failed = reqs
        .iter()
        .filter(|r| matches!(r.status, Some(500 | 503)))
        .count();
    assert!(failed >= 10, "only {failed} faults drawn");
    assert_eq!(report.requests, reqs.len());
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::scripted([
        FaultKind::Reset,
        FaultKind::Reset,
        FaultKind::Pass,
        FaultKind::Reset,
    ])
    .with_seed(3)
    .with_rate_reset(0.2)
    .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    let client = builder(&emu).max_body_bytes(5_000).build().unwrap();
    let ids = ids("rst", 60);
    let report = client.send(&rows_for(&ids)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let resets = ingestion_requests(&emu)
        .iter()
        .filter(|r| r.status.is_none())
        .count();
    assert!(resets >= 3, "{resets}");
    assert!(emu.metrics().connections_reset >= 3);
}

#[tokio::test]
async fn refused_connections_then_recovery() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    // Fetch a token first, so that the down window hits ingestion.
    let warm = ids("warm", 1);
    assert!(client.send(&rows_for(&warm)).await.is_complete());
    emu.set_faults(Faults::default().with_down(Duration::ZERO, Duration::from_millis(300)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let ids2 = ids("down", 10);
    let report = client.send(&rows_for(&ids2)).await;
    assert!(report.is_complete(), "{report:?}");
    let mut all = warm.clone();
    all.extend(ids2);
    assert_exactly_once(&emu, CSL, "ExtID", &all);
}

#[tokio::test]
async fn token_endpoint_outage_returns_rows_for_later_then_recovers() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default().with_token_outage(true);
    let emu = start(config).await;
    let client = builder(&emu)
        .retry(
            RetryPolicy::bounded(Duration::from_millis(300))
                .base_delay(Duration::from_millis(5))
                .max_delay(Duration::from_millis(50)),
        )
        .build()
        .unwrap();
    let ids = ids("outage", 20);
    let report = client.send(&rows_for(&ids)).await;
    assert_eq!(report.delivered_rows, 0);
    let later = report.retry_later.as_ref().expect("rows for later");
    assert_eq!(later.rows.len(), 20);
    assert!(later.error.is_retryable(), "{:?}", later.error);
    assert_eq!(later.error.status(), Some(503));
    assert!(
        token_requests(&emu).len() >= 2,
        "the token fetch was retried"
    );
    assert!(ingestion_requests(&emu).is_empty());
    assert_exactly_once(&emu, CSL, "ExtID", &[]);

    // The outage ends; the spooled rows go through.
    emu.set_faults(Faults::none());
    let again = client.send_ndjson(&report.retry_later_ndjson()).await;
    assert!(again.is_complete(), "{again:?}");
    assert_eq!(again.delivered_rows, 20);
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
}

#[tokio::test]
async fn token_outage_during_unbounded_send_is_waited_out() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default().with_token_outage(true);
    let emu = std::sync::Arc::new(start(config).await);
    let client = builder(&emu).build().unwrap();
    let healer = {
        let emu = emu.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            emu.set_faults(Faults::none());
        })
    };
    let ids = ids("heal", 8);
    let report = client.send(&rows_for(&ids)).await;
    healer.await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let tokens = token_requests(&emu);
    assert!(tokens.iter().any(|r| r.status == Some(503)));
    assert_eq!(tokens.last().unwrap().status, Some(200));
}

#[tokio::test]
async fn expired_token_gets_401_then_one_refresh() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let first = ids("before", 3);
    assert!(client.send(&rows_for(&first)).await.is_complete());
    // The service's clock moves past the token's expiry; the client's
    // cache still thinks it fresh.
    emu.advance_clock(Duration::from_secs(3600));
    let second = ids("after", 3);
    let report = client.send(&rows_for(&second)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.requests, 2);
    let statuses: Vec<_> = ingestion_requests(&emu).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(204), Some(401), Some(204)]);
    assert_eq!(token_requests(&emu).len(), 2);
    let mut all = first.clone();
    all.extend(second);
    assert_exactly_once(&emu, CSL, "ExtID", &all);
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_ahead_of_expiry() {
    // 299 s is less than twice the 5-minute margin: the token is kept for half its
    // lifetime, so quick sends share one token instead of fetching one each.
    let mut config = EmulatorConfig::default();
    config.token_lifetime = Duration::from_secs(299);
    let emu = start(config).await;
    let client = builder(&emu).build().unwrap();
    let mut all = Vec::new();
    for round in 0..3 {
        let ids = ids(&format!("short{round}"), 2);
        assert!(client.send(&rows_for(&ids)).await.is_complete());
        all.extend(ids);
    }
    assert_eq!(token_requests(&emu).len(), 1);
    assert_exactly_once(&emu, CSL, "ExtID", &all);

    // A 2 s token is refreshed once half of it has passed, before it expires.
    let mut config = EmulatorConfig::default();
    config.token_lifetime = Duration::from_secs(2);
    let emu = start(config).await;
    let client = builder(&emu).build().unwrap();
    let mut all = Vec::new();
    for round in 0..2 {
        let ids = ids(&format!("brief{round}"), 2);
        assert!(client.send(&rows_for(&ids)).await.is_complete());
        all.extend(ids);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(token_requests(&emu).len(), 2);
    assert_exactly_once(&emu, CSL, "ExtID", &all);
}

#[tokio::test]
async fn missing_role_is_a_config_error_retried_slowly() {
    let mut config = EmulatorConfig::default();
    let mut dcr = Dcr::builtin();
    dcr.allowed_clients = Some(vec!["someone-else".to_owned()]);
    config.dcrs = vec![dcr];
    let emu = start(config).await;
    let client = builder(&emu)
        .retry(
            RetryPolicy::bounded(Duration::from_millis(600))
                .config_error_delay(Duration::from_millis(250)),
        )
        .build()
        .unwrap();
    let ids = ids("role", 4);
    let report = client.send(&rows_for(&ids)).await;
    let later = report.retry_later.as_ref().expect("rows kept for later");
    assert_eq!(later.rows.len(), 4);
    assert_eq!(later.rows[2].index, 2);
    assert_eq!(later.error.status(), Some(403));
    assert!(later.error.is_config() && later.error.is_auth());
    assert_eq!(later.error.code(), Some("OperationFailed"));
    // Slowly: two or three tries in 600 ms, not a hot loop.
    let n = ingestion_requests(&emu).len();
    assert!((2..=3).contains(&n), "{n} tries");
    assert_exactly_once(&emu, CSL, "ExtID", &[]);
}

#[tokio::test]
async fn unknown_stream_is_a_config_error() {
    let emu = start_default().await;
    let client = LogsIngestionClient::builder(emu.base_url(), DEFAULT_DCR_ID, "Custom-Nope")
        .credential(secret_credential(&emu))
        .retry(RetryPolicy::no_retry())
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("nostream", 2))).await;
    let later = report.retry_later.expect("kept");
    assert_eq!(later.error.status(), Some(404));
    assert!(later.error.is_config() && !later.error.is_retryable());
    assert_eq!(ingestion_requests(&emu).len(), 1);
    assert_exactly_once(&emu, CSL, "ExtID", &[]);
}

#[tokio::test]
async fn time_range_error_splits_by_time() {
    let mut config = EmulatorConfig::default();
    let stream = Stream::new(
        "Custom-Aux",
        "Aux_CL",
        vec![
            Column::new("TimeGenerated", ColumnType::DateTime),
            Column::new("ExtID", ColumnType::String),
        ],
    )
    .with_plan(TablePlan::Auxiliary);
    config.dcrs.push(Dcr::new("dcr-aux", vec![stream]));
    let emu = start(config).await;
    let client = LogsIngestionClient::builder(emu.base_url(), "dcr-aux", "Custom-Aux")
        .credential(secret_credential(&emu))
        .retry(fast_retry())
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Three clusters of event time, an hour apart, interleaved.
    let ids = ids("aux", 30);
    let rows: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let t = now - 4 * 3600 + (i as u64 % 3) * 3600 + i as u64;
            json!({"TimeGenerated": rfc3339(t), "ExtID": id})
        })
        .collect();
    let report = client.send(&rows).await;
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(&emu, "Aux_CL", "ExtID", &ids);
    let reqs = ingestion_requests(&emu);
    assert_eq!(reqs[0].status, Some(400));
    assert_eq!(
        reqs[0].error_code.as_deref(),
        Some("RecordsTimeRangeIsMoreThan30Minutes")
    );
    let ok: Vec<_> = reqs.iter().filter(|r| r.status == Some(204)).collect();
    assert_eq!(ok.len(), 3);
    assert!(ok.iter().all(|r| r.rows == 10));
}

#[tokio::test]
async fn at_most_max_in_flight_requests_at_once() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default()
        .with_latency(Duration::from_millis(80))
        .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    let client = builder(&emu)
        .max_body_bytes(3_000)
        .max_in_flight(4)
        .build()
        .unwrap();
    let ids = ids("pool", 100);
    let report = client.send(&rows_for(&ids)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
    let mut arrivals: Vec<Duration> = ingestion_requests(&emu)
        .iter()
        .map(|r| r.since_start)
        .collect();
    arrivals.sort();
    assert!(arrivals.len() >= 12, "{}", arrivals.len());
    // Each answer takes 80 ms, so the fifth request can only start once the
    // first has been answered.
    for w in arrivals.windows(5) {
        assert!(w[4] - w[0] >= Duration::from_millis(80), "{w:?}");
    }
    // And four do run at once.
    assert!(
        arrivals
            .windows(4)
            .any(|w| w[3] - w[0] < Duration::from_millis(40))
    );
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let emu = start_default().await;
    let err = LogsIngestionClient::builder("http://ingest.example.com", DEFAULT_DCR_ID, "Custom-X")
        .credential(secret_credential(&emu))
        .build()
        .unwrap_err();
    assert!(err.is_config());
    let err = LogsIngestionClient::builder(emu.base_url(), "dcr-../x", "Custom-X")
        .credential(secret_credential(&emu))
        .build()
        .unwrap_err();
    assert!(err.is_config());
    assert!(
        LogsIngestionClient::builder(emu.base_url(), DEFAULT_DCR_ID, "Custom-X")
            .build()
            .is_err()
    );
    assert_exactly_once(&emu, CSL, "ExtID", &[]);
}

#[tokio::test]
async fn send_future_owns_its_rows_and_is_send() {
    #[derive(serde::Serialize)]
    struct NotSync {
        #[serde(rename = "ExtID")]
        id: String,
        #[serde(rename = "EventCount")]
        count: std::cell::Cell<u32>,
    }
    fn assert_send<F: Send>(f: F) -> F {
        f
    }
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let fut = {
        let rows: Vec<NotSync> = (0..3)
            .map(|i| NotSync {
                id: format!("own-{i}"),
                count: std::cell::Cell::new(i),
            })
            .collect();
        assert_send(client.send(&rows))
    }; // the rows are gone; the future does not borrow them
    let report = fut.await;
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids("own", 3));
    let stored = emu.rows(CSL);
    assert!(stored.iter().any(|r| r["EventCount"] == 2));
}

#[tokio::test]
async fn spent_budget_returns_queued_batches_without_trying_them() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default()
        .with_rate_503(1.0)
        .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    let client = builder(&emu)
        .max_body_bytes(2_000)
        .max_in_flight(1)
        .retry(
            RetryPolicy::bounded(Duration::from_millis(100))
                .base_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let ids = ids("spent", 60);
    let report = client.send(&rows_for(&ids)).await;
    assert_eq!(report.delivered_rows, 0);
    let later = report.retry_later.expect("everything comes back");
    assert_eq!(later.rows.len(), 60);
    assert!(later.rows.windows(2).all(|w| w[0].index < w[1].index));
    assert!(later.error.is_retryable());
    // Dozens of batches, but only the first one was ever tried: every
    // request carried the same body.
    let reqs = ingestion_requests(&emu);
    assert!(reqs.len() >= 2);
    assert!(
        reqs.iter()
            .all(|r| r.bytes == reqs[0].bytes && r.status == Some(503))
    );
    assert_eq!(report.requests, reqs.len());
    assert_exactly_once(&emu, CSL, "ExtID", &[]);
}

#[tokio::test]
async fn request_timeouts_are_transient() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default()
        .with_latency(Duration::from_millis(400))
        .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    let client = builder(&emu)
        .request_timeout(Duration::from_millis(100))
        .retry(
            RetryPolicy::bounded(Duration::from_millis(250))
                .base_delay(Duration::from_millis(5))
                .max_delay(Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    let ids = ids("slow", 5);
    let report = client.send(&rows_for(&ids)).await;
    let later = report
        .retry_later
        .as_ref()
        .expect("timed out rows come back");
    assert!(
        later.error.is_timeout() && later.error.is_retryable(),
        "{:?}",
        later.error
    );
    assert!(report.requests >= 2);
    // The answers never came, so nothing was stored.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_exactly_once(&emu, CSL, "ExtID", &[]);

    emu.set_faults(Faults::none());
    let again = client.send_ndjson(&report.retry_later_ndjson()).await;
    assert!(again.is_complete(), "{again:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids);
}

#[tokio::test]
async fn retry_after_zero_on_429_is_no_hot_loop() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default()
        .with_rate_429(1.0)
        .with_retry_after(0)
        .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    let client = builder(&emu)
        .retry(
            RetryPolicy::bounded(Duration::from_secs(2))
                .base_delay(Duration::from_millis(100))
                .max_delay(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let ids = ids("ra0", 10);
    let report = client.send(&rows_for(&ids)).await;
    assert_eq!(report.retry_later.expect("kept").rows.len(), 10);
    // Never sooner than the backoff (100 ms doubling up to 1 s) within a 2 s budget: about
    // 6 tries. Waiting only Retry-After made thousands.
    let reqs = ingestion_requests(&emu);
    assert!(
        reqs.iter()
            .all(|r| r.status == Some(429) && r.retry_after == Some(0))
    );
    assert!((2..=30).contains(&reqs.len()), "{} requests", reqs.len());
    assert_eq!(report.requests, reqs.len());
}

#[tokio::test]
async fn ingestion_redirects_are_refused_and_never_followed() {
    let emu = start_default().await;
    let (target, hits) = counting_server().await;
    emu.set_faults(
        Faults::default().with_redirect(
            RedirectFault::new(&target)
                .with_status(307)
                .with_scope(FaultScope::Ingestion),
        ),
    );
    let client = builder(&emu)
        .retry(RetryPolicy::no_retry())
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("redir", 5))).await;
    let later = report.retry_later.expect("kept for later, not rejected");
    assert_eq!(later.rows.len(), 5);
    assert!(report.rejected.is_empty());
    assert_eq!(later.error.status(), Some(307));
    assert!(later.error.is_config(), "{}", later.error);
    // A 308 the same way, retried slowly (the configuration delay), never followed.
    emu.set_faults(
        Faults::default().with_redirect(
            RedirectFault::new(&target)
                .with_status(308)
                .with_scope(FaultScope::Ingestion),
        ),
    );
    let client = builder(&emu)
        .retry(
            RetryPolicy::bounded(Duration::from_millis(500))
                .config_error_delay(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("redir8", 5))).await;
    assert_eq!(report.retry_later.expect("kept").error.status(), Some(308));
    assert!(report.requests <= 3, "{} requests", report.requests);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(emu.count(CSL), 0);
}

#[tokio::test]
async fn huge_error_bodies_are_cut_and_keep_their_code() {
    let emu = start_default().await;
    emu.set_faults(
        Faults::default().with_huge_body(
            HugeBodyFault::new(1 << 30)
                .with_status(503)
                .with_scope(FaultScope::Ingestion),
        ),
    );
    let client = builder(&emu)
        .retry(RetryPolicy::no_retry())
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("huge", 2))).await;
    let later = report.retry_later.expect("kept");
    assert_eq!(later.error.status(), Some(503));
    assert_eq!(later.error.code(), Some("HugeAnswer"));
    assert!(
        later.error.to_string().contains("too large"),
        "{}",
        later.error
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = emu.metrics().huge_body_bytes_sent;
    assert!(sent < 32 << 20, "{sent} bytes of 1 GiB streamed");
    // A refusal (400) with a huge body: the code still drives the outcome.
    emu.set_faults(
        Faults::default().with_huge_body(
            HugeBodyFault::new(1 << 30)
                .with_status(400)
                .with_content_length(true)
                .with_scope(FaultScope::Ingestion),
        ),
    );
    let report = client.send(&rows_for(&ids("huge400", 1))).await;
    assert_eq!(report.rejected.len(), 1);
    match &report.rejected[0].reason {
        RejectReason::Refused(e) => assert_eq!(e.code(), Some("HugeAnswer")),
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = emu.metrics().huge_body_bytes_sent;
    assert!(sent < 64 << 20, "{sent} bytes of 2 GiB streamed");
}

#[tokio::test]
async fn observer_sees_every_attempt_as_it_completes() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::scripted([
        FaultKind::Unavailable,
        FaultKind::Unavailable,
        FaultKind::Unavailable,
        FaultKind::Pass,
        FaultKind::Reset,
        FaultKind::Pass,
    ])
    .with_scope(FaultScope::Ingestion);
    let emu = start(config).await;
    let seen = std::sync::Arc::new(Recorder::default());
    let client = builder(&emu).observer(seen.clone()).build().unwrap();
    let ids1 = ids("obs", 4);
    let report = client.send(&rows_for(&ids1)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(*seen.answered.lock().unwrap(), [503, 503, 503, 204]);
    assert!(seen.failed.lock().unwrap().is_empty());
    // A reset: told as a failure, then the retry's answer.
    let ids2 = ids("obs2", 4);
    let report = client.send(&rows_for(&ids2)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(*seen.answered.lock().unwrap(), [503, 503, 503, 204, 204]);
    assert_eq!(seen.failed.lock().unwrap().len(), 1);
    assert_eq!(report.requests, 2);
    // Told before the budget is spent: with a bounded budget, every try is seen.
    emu.set_faults(
        Faults::default()
            .with_rate_503(1.0)
            .with_scope(FaultScope::Ingestion),
    );
    let seen = std::sync::Arc::new(Recorder::default());
    let client = builder(&emu)
        .observer(seen.clone())
        .retry(RetryPolicy::no_retry())
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("obs3", 2))).await;
    assert!(report.retry_later.is_some());
    assert_eq!(*seen.answered.lock().unwrap(), [503]);
    let mut all = ids1;
    all.extend(ids2);
    assert_exactly_once(&emu, CSL, "ExtID", &all);
}

#[tokio::test]
async fn all_rows_refused_cost_about_n_requests_and_one_good_row_gets_through() {
    let emu = start_default().await;
    let client = builder(&emu).build().unwrap();
    let ids = ids("dense", 64);
    let bad_rows = |good: Option<usize>| {
        let mut rows = rows_for(&ids);
        for (i, r) in rows.iter_mut().enumerate() {
            if Some(i) != good {
                r["DestinationPort"] = json!("not a port");
            }
        }
        rows
    };
    let report = client.send(&bad_rows(None)).await;
    assert_eq!(report.rejected.len(), 64);
    assert!(report.is_settled());
    // 1 + 2 halves + 64 singles = 67, where bisection made 2N − 1 = 127.
    assert!(report.requests <= 64 + 3, "{} requests", report.requests);
    assert_eq!(ingestion_requests(&emu).len(), report.requests);
    assert!(report.rejected.iter().all(|r| matches!(
        &r.reason,
        RejectReason::Refused(e) if e.code() == Some("InvalidPayload")
    )));
    assert_eq!(emu.count(CSL), 0);
    // Exactly one good row among 63 bad ones: delivered, once.
    let before = ingestion_requests(&emu).len();
    let report = client.send(&bad_rows(Some(41))).await;
    assert_eq!(report.delivered_rows, 1);
    assert_eq!(report.rejected.len(), 63);
    assert!(report.rejected.iter().all(|r| r.index != 41));
    assert!(report.requests <= 64 + 3, "{} requests", report.requests);
    assert_eq!(ingestion_requests(&emu).len() - before, report.requests);
    assert_exactly_once(&emu, CSL, "ExtID", &[ids[41].clone()]);
}
