//! Fault injection over loopback: 429 + Retry-After, 500, 503, connection resets, latency,
//! down windows, token outage, scopes, determinism under a seed, and the HTTP control.

mod common;

use std::time::{Duration, Instant};

use mcas_azure_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CSL_STREAM, DEFAULT_TENANT_ID,
    EmulatorConfig, EmulatorHandle, FaultKind, FaultScope, Faults, HugeBodyFault, LifetimeValue,
    RedirectFault,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const BODY: &[u8] = br#"[{"DeviceVendor":"f"}]"#;

async fn token_status(emu: &EmulatorHandle) -> (u16, serde_json::Value) {
    common::token_request(
        emu,
        DEFAULT_TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("scope", "https://monitor.azure.com/.default"),
        ],
    )
    .await
}

#[tokio::test]
async fn scripted_429_500_503_with_the_right_shapes() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(
        Faults::scripted([
            FaultKind::TooManyRequests,
            FaultKind::InternalError,
            FaultKind::Unavailable,
            FaultKind::Pass,
        ])
        .with_retry_after(2),
    );
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(
        (a.status, common::azure_code(&a).as_str()),
        (429, "TooManyRequests")
    );
    assert_eq!(
        a.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(
        (a.status, common::azure_code(&a).as_str()),
        (500, "InternalServerError")
    );
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(
        (a.status, common::azure_code(&a).as_str()),
        (503, "ServiceUnavailable")
    );
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(a.status, 204);
    assert_eq!(
        emu.count("CommonSecurityLog"),
        1,
        "faulted requests store nothing"
    );

    // Token endpoint answers Entra-shaped errors; the collector its own shape.
    emu.set_faults(Faults::scripted([
        FaultKind::TooManyRequests,
        FaultKind::Unavailable,
        FaultKind::InternalError,
    ]));
    let (s, b) = token_status(&emu).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (429, Some("temporarily_unavailable"))
    );
    let (s, b) = token_status(&emu).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    let resp = common::http()
        .post(format!(
            "{}/api/logs?api-version=2016-04-01",
            emu.base_url()
        ))
        .header("Content-Type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("send");
    let a = common::answer(resp).await;
    assert_eq!(
        (a.status, a.body["Error"].as_str()),
        (500, Some("UnspecifiedError"))
    );

    let log = emu.requests();
    let first_429 = log.iter().find(|r| r.status == Some(429)).expect("logged");
    assert_eq!(first_429.fault, Some(FaultKind::TooManyRequests));
    assert_eq!(first_429.retry_after, Some(2));
    assert_eq!(first_429.error_code.as_deref(), Some("TooManyRequests"));
    let m = emu.metrics();
    assert_eq!(m.faults_injected["429"], 2);
    assert_eq!(m.faults_injected["500"], 2);
    assert_eq!(m.faults_injected["503"], 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_request_log_shows_whether_retry_after_was_honoured() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(Faults::scripted([FaultKind::TooManyRequests]).with_retry_after(1));
    // A well-behaved client: on 429 it sleeps Retry-After, then retries.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
        if a.status == 204 {
            break;
        }
        assert_eq!(a.status, 429);
        let secs: u64 = a.headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("secs");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        assert!(attempts < 3, "bounded");
    }
    let ingests: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/dataCollectionRules/"))
        .collect();
    assert_eq!(ingests.len(), 2);
    let waited = ingests[1].since_start - ingests[0].since_start;
    assert!(
        waited >= Duration::from_secs(ingests[0].retry_after.expect("retry-after logged")),
        "{waited:?}"
    );
    assert!(ingests[1].at >= ingests[0].at);
    emu.shutdown().await;
}

async fn raw_post(emu: &EmulatorHandle, tok: &str) -> std::io::Result<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(emu.addr()).await?;
    let path = emu.ingestion_url(mcas_azure_emulator::DEFAULT_DCR_ID, DEFAULT_CSL_STREAM);
    let path = path.trim_start_matches(&emu.base_url()).to_owned();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        emu.addr(),
        BODY.len()
    );
    s.write_all(req.as_bytes()).await?;
    s.write_all(BODY).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(out)
}

#[tokio::test]
async fn reset_fault_sends_rst() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(Faults::scripted([FaultKind::Reset, FaultKind::Reset]));
    let err = raw_post(&emu, &tok).await.expect_err("connection reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    // reqwest sees a transport error, not an HTTP answer.
    let r = common::http()
        .post(emu.ingestion_url(mcas_azure_emulator::DEFAULT_DCR_ID, DEFAULT_CSL_STREAM))
        .bearer_auth(&tok)
        .header("Content-Type", "application/json")
        .body(BODY)
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");
    // Then normal service.
    let ok = raw_post(&emu, &tok).await.expect("answer");
    assert!(
        ok.starts_with(b"HTTP/1.1 204"),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    let resets: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.fault == Some(FaultKind::Reset))
        .collect();
    assert_eq!(resets.len(), 2);
    assert!(resets.iter().all(|r| r.status.is_none()));
    let m = emu.metrics();
    assert_eq!(m.connections_reset, 2);
    assert_eq!(m.requests_by_status["reset"], 2);
    assert_eq!(emu.count("CommonSecurityLog"), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn latency_delays_answers() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(
        Faults::default()
            .with_latency(Duration::from_millis(300))
            .with_scope(FaultScope::Ingestion),
    );
    let t0 = Instant::now();
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(a.status, 204);
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "at least the configured latency"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn down_window_refuses_connections_then_recovers() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    // An idle keep-alive connection opened before the window.
    let mut idle = tokio::net::TcpStream::connect(emu.addr())
        .await
        .expect("connect");
    // A slow ingestion request is in flight when the window opens 300 ms from now.
    emu.set_faults(
        Faults::default()
            .with_latency(Duration::from_millis(1500))
            .with_scope(FaultScope::Ingestion)
            .with_down(Duration::from_millis(300), Duration::from_millis(700)),
    );
    let poll_refused = async {
        for _ in 0..200 {
            match tokio::net::TcpStream::connect(emu.addr()).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        false
    };
    let (in_flight, refused) = tokio::join!(raw_post(&emu, &tok), poll_refused);
    assert!(refused, "connections are refused during the window");
    let err = in_flight.expect_err("the in-flight request is cut off");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    // The idle connection was closed.
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf))
        .await
        .expect("not hanging");
    assert!(
        matches!(r, Ok(0))
            || matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    // After the window, connections are accepted again on the same port.
    let mut back = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(emu.addr()).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "service resumes after the down window");
    emu.set_faults(Faults::none());
    let resp = raw_post(&emu, &tok).await.expect("answer");
    assert!(
        resp.starts_with(b"HTTP/1.1 204"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    assert!(emu.metrics().connections_reset >= 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn token_outage_leaves_ingestion_up() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(Faults::default().with_token_outage(true));
    let (s, b) = token_status(&emu).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    let r = common::http()
        .get(format!("{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://monitor.azure.com/", emu.base_url()))
        .header("Metadata", "true")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY)
            .await
            .status,
        204
    );
    emu.set_faults(Faults::none());
    assert_eq!(token_status(&emu).await.0, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn scope_limits_which_endpoints_fail() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(
        Faults::default()
            .with_rate_500(1.0)
            .with_scope(FaultScope::Ingestion),
    );
    assert_eq!(token_status(&emu).await.0, 200);
    assert_eq!(
        common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY)
            .await
            .status,
        500
    );
    emu.set_faults(
        Faults::default()
            .with_rate_503(1.0)
            .with_scope(FaultScope::Token),
    );
    assert_eq!(token_status(&emu).await.0, 503);
    assert_eq!(
        common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY)
            .await
            .status,
        204
    );
    // The control API is never faulted.
    emu.set_faults(Faults::default().with_rate_reset(1.0));
    let r = common::http()
        .get(format!("{}/_emulator/metrics", emu.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    emu.shutdown().await;
}

async fn statuses(seed: u64, n: usize) -> Vec<u16> {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(
        Faults::default()
            .with_seed(seed)
            .with_rate_429(0.3)
            .with_rate_500(0.1)
            .with_rate_503(0.2),
    );
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY)
                .await
                .status,
        );
    }
    emu.shutdown().await;
    out
}

#[tokio::test]
async fn same_seed_same_outcomes() {
    let a = statuses(7, 40).await;
    let b = statuses(7, 40).await;
    let c = statuses(8, 40).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    for s in [204, 429, 500, 503] {
        assert!(a.contains(&s), "{s} occurs in {a:?}");
    }
}

#[tokio::test]
async fn faults_over_http() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    let url = format!("{}/_emulator/faults", emu.base_url());
    let r = common::http()
        .post(&url)
        .body(r#"{"script":["503"],"retry_after_secs":5}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(a.status, 503);
    let got: serde_json::Value = serde_json::from_slice(
        &common::http()
            .get(&url)
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(got["retry_after_secs"], 5);
    for bad in [
        r#"{"rate_429":1.5}"#,
        r#"{"rate_429":0.6,"rate_500":0.6}"#,
        r#"{"nope":1}"#,
        "not json",
    ] {
        let a = common::answer(
            common::http()
                .post(&url)
                .body(bad)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(
            (a.status, common::azure_code(&a).as_str()),
            (400, "InvalidFaults"),
            "{bad}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn imds_and_collector_fault_shapes_and_token_reset() {
    let emu = common::start(EmulatorConfig::default()).await;
    emu.set_faults(
        Faults::scripted([
            FaultKind::InternalError,
            FaultKind::TooManyRequests,
            FaultKind::Reset,
        ])
        .with_retry_after(3),
    );
    let r = common::http()
        .get(format!("{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://monitor.azure.com/", emu.base_url()))
        .header("Metadata", "true")
        .send()
        .await
        .expect("send");
    let a = common::answer(r).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (500, Some("server_error"))
    );
    let r = common::http()
        .post(format!(
            "{}/api/logs?api-version=2016-04-01",
            emu.base_url()
        ))
        .header("Content-Type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("send");
    let a = common::answer(r).await;
    assert_eq!(
        (a.status, a.body["Error"].as_str()),
        (429, Some("TooManyRequests"))
    );
    assert_eq!(
        a.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let r = common::http()
        .post(emu.token_url())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    assert!(r.is_err(), "token request reset: {r:?}");
    assert_eq!(token_status(&emu).await.0, 200, "then normal");
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_clients_under_faults_lose_nothing_that_was_acknowledged() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    emu.set_faults(
        Faults::default()
            .with_seed(3)
            .with_rate_503(0.2)
            .with_rate_reset(0.1)
            .with_scope(FaultScope::Ingestion),
    );
    let client = common::http();
    let url = emu.ingestion_url(mcas_azure_emulator::DEFAULT_DCR_ID, DEFAULT_CSL_STREAM);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, url, tok) = (client.clone(), url.clone(), tok.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = 0usize;
            for i in 0..25 {
                let body = format!(r#"[{{"DeviceVendor":"w{worker}","Message":"{i}"}},{{"DeviceVendor":"w{worker}","Message":"{i}b"}}]"#);
                let r = client
                    .post(url.clone())
                    .bearer_auth(&tok)
                    .header("Content-Type", "application/json")
                    .header("Content-Encoding", "gzip")
                    .body(common::gzip(body.as_bytes()))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().as_u16() == 204) {
                    acked += 2;
                }
            }
            acked
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.expect("task");
    }
    assert!(acked > 0);
    assert_eq!(
        emu.count("CommonSecurityLog"),
        acked,
        "every acknowledged row stored, nothing else"
    );
    let m = emu.metrics();
    assert!(m.requests_by_endpoint["logs_ingestion"] >= 200);
    assert!(m.faults_injected.get("503").is_some_and(|n| *n > 0));
    assert!(m.faults_injected.get("reset").is_some_and(|n| *n > 0));
    emu.shutdown().await;
}

fn imds_url(emu: &EmulatorHandle) -> String {
    format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://monitor.azure.com/",
        emu.base_url()
    )
}

#[tokio::test]
async fn token_lifetime_overrides_in_number_and_string_form() {
    let emu = common::start(EmulatorConfig::default()).await;
    emu.set_faults(
        Faults::default()
            .with_token_expires_in(LifetimeValue::Number(10_000_000_000_000_000_000))
            .with_token_expires_on(LifetimeValue::Text(u64::MAX.to_string())),
    );
    let (status, body) = token_status(&emu).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["expires_in"],
        serde_json::json!(10_000_000_000_000_000_000u64)
    );
    assert_eq!(body["ext_expires_in"], body["expires_in"]);
    assert_eq!(
        body["expires_on"],
        serde_json::json!("18446744073709551615")
    );
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    // IMDS too, and expires_in can be dropped so that only expires_on is left.
    emu.set_faults(
        Faults::default()
            .with_token_expires_on(LifetimeValue::Number(u64::MAX))
            .with_token_omit_expires_in(true),
    );
    let r = common::http()
        .get(imds_url(&emu))
        .header("Metadata", "true")
        .send()
        .await
        .expect("send");
    let a = common::answer(r).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["expires_on"], serde_json::json!(u64::MAX));
    assert!(a.body.get("expires_in").is_none(), "{}", a.body);
    assert!(a.body.get("ext_expires_in").is_none(), "{}", a.body);
    // The JSON control takes both forms, and values beyond u64 as strings.
    let set: Faults = serde_json::from_str(
        r#"{"token_expires_in":"99999999999999999999999","token_expires_on":18446744073709551615}"#,
    )
    .expect("json");
    assert_eq!(
        set.token_expires_in,
        Some(LifetimeValue::Text("99999999999999999999999".into()))
    );
    assert_eq!(set.token_expires_on, Some(LifetimeValue::Number(u64::MAX)));
    // Refusals are left alone.
    emu.set_faults(Faults::default().with_token_expires_in(LifetimeValue::Number(1)));
    let (status, body) = common::token_request(
        &emu,
        DEFAULT_TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
        ],
    )
    .await;
    assert_ne!(status, 200);
    assert!(body.get("expires_in").is_none(), "{body}");
}

#[tokio::test]
async fn redirects_by_scope_with_status_and_location() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    emu.set_faults(Faults::default().with_redirect(
        RedirectFault::new("http://127.0.0.1:9/elsewhere").with_scope(FaultScope::Token),
    ));
    let r = no_follow
        .post(format!(
            "{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
            emu.base_url()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("http://127.0.0.1:9/elsewhere")
    );
    // Out of scope: ingestion is served.
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(a.status, 204);
    emu.set_faults(
        Faults::default().with_redirect(
            RedirectFault::new("http://127.0.0.1:9/rows")
                .with_status(308)
                .with_scope(FaultScope::Ingestion),
        ),
    );
    let r = no_follow
        .post(emu.ingestion_url(mcas_azure_emulator::DEFAULT_DCR_ID, DEFAULT_CSL_STREAM))
        .bearer_auth(&tok)
        .body(BODY)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(emu.count("CommonSecurityLog"), 1);
    let last = emu.requests().pop().expect("logged");
    assert_eq!(
        (last.status, last.error_code.as_deref()),
        (Some(308), Some("EmulatedRedirect"))
    );
    // A status outside 3xx is refused by the control endpoint.
    let r = common::http()
        .post(format!("{}/_emulator/faults", emu.base_url()))
        .body(r#"{"redirect":{"status":200,"location":"http://x/"}}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
}

/// Reads at most `limit` bytes of an answer, then drops it.
async fn read_some(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < limit {
        match resp.chunk().await.expect("chunk") {
            Some(c) => got.extend_from_slice(&c),
            None => break,
        }
    }
    got
}

#[tokio::test]
async fn huge_bodies_are_streamed_not_held() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    const HUGE: u64 = 4 << 30;
    emu.set_faults(
        Faults::default().with_huge_body(HugeBodyFault::new(HUGE).with_scope(FaultScope::Token)),
    );
    let r = common::http()
        .post(format!(
            "{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
            emu.base_url()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.content_length().is_none(), "chunked by default");
    let got = read_some(r, 256 * 1024).await;
    assert!(got.starts_with(br#"{"access_token":"AAAA"#));
    // A 4 GiB answer, of which the client read 256 KiB: the emulator stopped soon after.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = emu.metrics().huge_body_bytes_sent;
    assert!(
        (256 * 1024..64 << 20).contains(&sent),
        "{sent} bytes streamed"
    );
    // Ingestion: an error status, with the code in the body only, and Content-Length.
    emu.set_faults(
        Faults::default().with_huge_body(
            HugeBodyFault::new(HUGE)
                .with_status(503)
                .with_content_length(true)
                .with_scope(FaultScope::Ingestion),
        ),
    );
    let r = common::http()
        .post(emu.ingestion_url(mcas_azure_emulator::DEFAULT_DCR_ID, DEFAULT_CSL_STREAM))
        .bearer_auth(&tok)
        .body(BODY)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.content_length(), Some(HUGE));
    assert!(r.headers().get("x-ms-error-code").is_none());
    let got = read_some(r, 1024).await;
    assert!(got.starts_with(br#"{"error":{"code":"HugeAnswer","message":"xxx"#));
    // A small one is whole.
    emu.set_faults(
        Faults::default().with_huge_body(HugeBodyFault::new(10).with_scope(FaultScope::Token)),
    );
    let r = common::http()
        .post(format!(
            "{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
            emu.base_url()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(&r.bytes().await.expect("body")[..], br#"{"access_t"#);
}

#[tokio::test]
async fn retry_after_zero_on_429_for_token_and_ingestion() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    let f: Faults = serde_json::from_str(r#"{"rate_429":1,"retry_after_secs":0}"#).expect("json");
    emu.set_faults(f);
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, BODY).await;
    assert_eq!(a.status, 429);
    assert_eq!(
        a.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("0")
    );
    let r = common::http()
        .post(format!(
            "{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
            emu.base_url()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("0")
    );
}
