//! The legacy Data Collector path against the emulator, which checks the
//! SharedKey signature.

mod common;

use std::time::Duration;

use common::*;
use mcas_azure_emulator::{DEFAULT_SHARED_KEY, DEFAULT_WORKSPACE_ID, EmulatorHandle, Endpoint};
use mcas_loganalytics::{DataCollectorClient, RetryPolicy, SharedKey, validate_log_type};
use serde_json::{Value, json};

fn client(emu: &EmulatorHandle, key: &str) -> DataCollectorClient {
    DataCollectorClient::builder(
        DEFAULT_WORKSPACE_ID,
        SharedKey::from_base64(key).expect("test setup"),
        "McasTest",
    )
    .endpoint(emu.base_url())
    .time_generated_field("EventTime")
    .retry(fast_retry())
    .build()
    .expect("test setup")
}

fn collector_requests(emu: &EmulatorHandle) -> Vec<mcas_azure_emulator::RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::DataCollector)
        .collect()
}

fn rows(ids: &[String], event_time: &str) -> Vec<Value> {
    ids.iter()
        .map(|id| json!({"ExtID": id, "DeviceVendor": "Microsoft", "Message": "größe ✓ 日本", "EventTime": event_time}))
        .collect()
}

#[tokio::test]
async fn signed_posts_land_in_the_custom_table() {
    let emu = start_default().await;
    let ids = ids("dc", 40);
    let event_time = rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 3600,
    );
    let report = client(&emu, DEFAULT_SHARED_KEY)
        .send(&rows(&ids, &event_time))
        .await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.requests, 1);
    assert_exactly_once(&emu, "McasTest_CL", "ExtID_s", &ids);
    let stored = emu.rows("McasTest_CL");
    assert_eq!(stored[0]["Message_s"], "größe ✓ 日本");
    // time-generated-field took effect.
    assert_eq!(stored[0]["TimeGenerated"].as_str().unwrap(), event_time);
    assert_eq!(collector_requests(&emu)[0].status, Some(200));
}

#[tokio::test]
async fn wrong_key_is_refused_as_configuration() {
    let emu = start_default().await;
    let other_key =
        "SERsIYhgMVlJB6uPsq49gCxNiruf6v0vhMYE+lfzbSGcXjdViZdV/e5pEMTYtw9f8SkVLf4LFlLCc2KxtRZfCA==";
    let c = DataCollectorClient::builder(
        DEFAULT_WORKSPACE_ID,
        SharedKey::from_base64(other_key).unwrap(),
        "McasTest",
    )
    .endpoint(emu.base_url())
    .retry(
        RetryPolicy::bounded(Duration::from_millis(400))
            .config_error_delay(Duration::from_millis(150)),
    )
    .build()
    .unwrap();
    assert!(!format!("{c:?}").contains(other_key));
    let report = c
        .send(&rows(&ids("dckey", 3), "2024-01-01T00:00:00Z"))
        .await;
    let later = report.retry_later.expect("kept");
    assert_eq!(later.error.status(), Some(403));
    assert_eq!(later.error.code(), Some("InvalidAuthorization"));
    assert!(later.error.is_config() && later.error.is_auth());
    assert!(collector_requests(&emu).len() >= 2);
    assert_exactly_once(&emu, "McasTest_CL", "ExtID_s", &[]);
}

#[tokio::test]
async fn bad_records_are_bisected_out() {
    let emu = start_default().await;
    let ids = ids("dcbad", 16);
    let mut rs = rows(&ids, "2024-01-01T00:00:00Z");
    // Reserved property name: the service refuses the whole post.
    rs[5]["RawData"] = json!("x");
    let report = client(&emu, DEFAULT_SHARED_KEY).send(&rs).await;
    assert_eq!(report.delivered_rows, 15);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 5);
    let mut good = ids.clone();
    good.remove(5);
    assert_exactly_once(&emu, "McasTest_CL", "ExtID_s", &good);
}

#[tokio::test]
async fn transient_errors_are_retried() {
    let mut config = mcas_azure_emulator::EmulatorConfig::default();
    config.faults = mcas_azure_emulator::Faults::scripted([
        mcas_azure_emulator::FaultKind::Unavailable,
        mcas_azure_emulator::FaultKind::InternalError,
        mcas_azure_emulator::FaultKind::Reset,
    ]);
    let emu = start(config).await;
    let ids = ids("dcretry", 5);
    let report = client(&emu, DEFAULT_SHARED_KEY)
        .send(&rows(&ids, "2024-01-01T00:00:00Z"))
        .await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.requests, 4);
    assert_exactly_once(&emu, "McasTest_CL", "ExtID_s", &ids);
}

#[test]
fn log_type_rules() {
    assert!(validate_log_type("CommonSecurityLog").is_ok());
    assert!(validate_log_type("My_Log_2").is_ok());
    assert!(validate_log_type("").is_err());
    assert!(validate_log_type("bad-name").is_err());
    assert!(validate_log_type("spaces no").is_err());
    assert!(validate_log_type(&"a".repeat(100)).is_ok());
    assert!(validate_log_type(&"a".repeat(101)).is_err());
    let key = SharedKey::from_base64(DEFAULT_SHARED_KEY).unwrap();
    assert!(
        DataCollectorClient::builder(DEFAULT_WORKSPACE_ID, key.clone(), "bad-name")
            .build()
            .is_err()
    );
    assert!(
        DataCollectorClient::builder("not a guid", key.clone(), "Ok")
            .build()
            .is_err()
    );
    let c = DataCollectorClient::builder(DEFAULT_WORKSPACE_ID, key.clone(), "Ok")
        .cloud(mcas_loganalytics::Cloud::China)
        .build()
        .unwrap();
    assert_eq!(
        c.url(),
        "https://00000000-1111-2222-3333-444444444444.ods.opinsights.azure.cn/api/logs?api-version=2016-04-01"
    );
    assert!(
        DataCollectorClient::builder(DEFAULT_WORKSPACE_ID, key, "Ok")
            .endpoint("http://collector.example.com")
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn redirects_are_never_followed_and_attempts_are_observed() {
    let emu = start_default().await;
    let (target, hits) = counting_server().await;
    emu.set_faults(
        mcas_azure_emulator::Faults::default().with_redirect(
            mcas_azure_emulator::RedirectFault::new(&target)
                .with_scope(mcas_azure_emulator::FaultScope::Ingestion),
        ),
    );
    let seen = std::sync::Arc::new(Recorder::default());
    let client = DataCollectorClient::builder(
        DEFAULT_WORKSPACE_ID,
        SharedKey::from_base64(DEFAULT_SHARED_KEY).expect("test setup"),
        "McasTest",
    )
    .endpoint(emu.base_url())
    .retry(RetryPolicy::no_retry())
    .observer(seen.clone())
    .build()
    .expect("test setup");
    let report = client
        .send(&rows(&ids("dcredir", 3), "2024-01-01T00:00:00Z"))
        .await;
    let later = report.retry_later.expect("kept");
    assert_eq!(later.error.status(), Some(307));
    assert!(later.error.is_config());
    assert_eq!(*seen.answered.lock().unwrap(), [307]);
    // Then 503, 503 and success: each attempt is told.
    emu.set_faults(mcas_azure_emulator::Faults::scripted([
        mcas_azure_emulator::FaultKind::Unavailable,
        mcas_azure_emulator::FaultKind::Unavailable,
    ]));
    let seen = std::sync::Arc::new(Recorder::default());
    let client = DataCollectorClient::builder(
        DEFAULT_WORKSPACE_ID,
        SharedKey::from_base64(DEFAULT_SHARED_KEY).expect("test setup"),
        "McasTest",
    )
    .endpoint(emu.base_url())
    .retry(fast_retry())
    .observer(seen.clone())
    .build()
    .expect("test setup");
    let ids = ids("dcobs", 3);
    let report = client.send(&rows(&ids, "2024-01-01T00:00:00Z")).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(*seen.answered.lock().unwrap(), [503, 503, 200]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_exactly_once(&emu, "McasTest_CL", "ExtID_s", &ids);
}

#[tokio::test]
async fn huge_error_bodies_are_cut_and_keep_their_code() {
    let emu = start_default().await;
    emu.set_faults(
        mcas_azure_emulator::Faults::default().with_huge_body(
            mcas_azure_emulator::HugeBodyFault::new(1 << 30)
                .with_status(500)
                .with_scope(mcas_azure_emulator::FaultScope::Ingestion),
        ),
    );
    let client = DataCollectorClient::builder(
        DEFAULT_WORKSPACE_ID,
        SharedKey::from_base64(DEFAULT_SHARED_KEY).expect("test setup"),
        "McasTest",
    )
    .endpoint(emu.base_url())
    .retry(RetryPolicy::no_retry())
    .build()
    .expect("test setup");
    let report = client
        .send(&rows(&ids("dchuge", 2), "2024-01-01T00:00:00Z"))
        .await;
    let later = report.retry_later.expect("kept");
    assert_eq!(later.error.status(), Some(500));
    assert_eq!(later.error.code(), Some("HugeAnswer"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = emu.metrics().huge_body_bytes_sent;
    assert!(sent < 32 << 20, "{sent} bytes of 1 GiB streamed");
}
