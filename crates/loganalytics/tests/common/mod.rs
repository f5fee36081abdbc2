//! Helpers shared by the integration tests: an emulator per test, rows with
//! unique ids, and the "exactly these rows, once each" check.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mcas_azure_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CSL_STREAM, DEFAULT_DCR_ID,
    DEFAULT_TENANT_ID, Emulator, EmulatorConfig, EmulatorHandle, Endpoint, RequestRecord,
};
use mcas_loganalytics::{
    AuthorityHost, ClientSecretCredential, LogsIngestionClient, LogsIngestionClientBuilder,
    RetryPolicy, TokenCredential,
};
use serde_json::{Value, json};

pub const CSL: &str = "CommonSecurityLog";

pub async fn start(config: EmulatorConfig) -> EmulatorHandle {
    Emulator::start(config).await.expect("emulator starts")
}

pub async fn start_default() -> EmulatorHandle {
    start(EmulatorConfig::default()).await
}

pub fn authority(emu: &EmulatorHandle) -> AuthorityHost {
    AuthorityHost::new(&emu.base_url()).expect("loopback authority")
}

pub fn secret_credential(emu: &EmulatorHandle) -> Arc<dyn TokenCredential> {
    Arc::new(
        ClientSecretCredential::new(
            DEFAULT_TENANT_ID,
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            authority(emu),
        )
        .expect("credential"),
    )
}

/// Fast retries so that tests finish quickly; the schedule is still
/// exponential with full jitter.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::unbounded()
        .base_delay(Duration::from_millis(2))
        .max_delay(Duration::from_millis(40))
        .config_error_delay(Duration::from_millis(20))
}

pub fn builder_with(
    emu: &EmulatorHandle,
    cred: Arc<dyn TokenCredential>,
) -> LogsIngestionClientBuilder {
    LogsIngestionClient::builder(emu.base_url(), DEFAULT_DCR_ID, DEFAULT_CSL_STREAM)
        .credential(cred)
        .retry(fast_retry())
}

pub fn builder(emu: &EmulatorHandle) -> LogsIngestionClientBuilder {
    builder_with(emu, secret_credential(emu))
}

pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A CommonSecurityLog-shaped row whose `ExtID` is `id`.
pub fn csl_row(id: &str) -> Value {
    json!({
        "TimeGenerated": now_rfc3339(),
        "DeviceVendor": "Microsoft",
        "DeviceProduct": "MCAS",
        "DeviceVersion": "0.1",
        "DeviceEventClassID": "EVENT_CATEGORY_LOGIN",
        "Activity": "Log on",
        "LogSeverity": "3",
        "SourceIP": "203.0.113.7",
        "SourceUserName": "zoë@contoso.com",
        "DestinationPort": 443,
        "ExtID": id,
        "Message": "Größe ✓ user signed in",
    })
}

pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

pub fn rows_for(ids: &[String]) -> Vec<Value> {
    ids.iter().map(|id| csl_row(id)).collect()
}

/// Asserts the emulator's `table` holds exactly `expected` (by `id_column`),
/// each once.
pub fn assert_exactly_once(
    emu: &EmulatorHandle,
    table: &str,
    id_column: &str,
    expected: &[String],
) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for row in emu.rows(table) {
        let id = row
            .get(id_column)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("stored row without {id_column}: {row}"))
            .to_owned();
        *seen.entry(id).or_default() += 1;
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "rows stored more than once: {dupes:?}");
    let want: BTreeMap<String, usize> = expected.iter().map(|id| (id.clone(), 1)).collect();
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .take(10)
        .collect();
    let extra: Vec<_> = seen
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    assert_eq!(emu.count(table), expected.len());
}

pub fn ingestion_requests(emu: &EmulatorHandle) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::LogsIngestion)
        .collect()
}

pub fn token_requests(emu: &EmulatorHandle) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| matches!(r.endpoint, Endpoint::Token | Endpoint::Imds))
        .collect()
}

pub fn test_data(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A loopback HTTP server that counts the connections it accepts and answers each request
/// 204: the target of a redirect, which must never be reached.
pub async fn counting_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}/stolen"), count)
}

/// A [`mcas_loganalytics::SendObserver`] that records what it is told.
#[derive(Debug, Default)]
pub struct Recorder {
    pub answered: std::sync::Mutex<Vec<u16>>,
    pub failed: std::sync::Mutex<Vec<String>>,
}

impl mcas_loganalytics::SendObserver for Recorder {
    fn answered(&self, status: u16) {
        self.answered.lock().expect("lock").push(status);
    }

    fn failed(&self, error: &mcas_loganalytics::Error) {
        self.failed.lock().expect("lock").push(error.to_string());
    }
}
