//! Row storage (memory, JSON Lines directory, or counting only), request log and counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::OpenOptions;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::config::Storage;
use crate::faults::FaultKind;

/// Which API a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `GET /metadata/identity/oauth2/token`.
    Imds,
    /// `POST /dataCollectionRules/{id}/streams/{stream}`.
    LogsIngestion,
    /// `POST /api/logs`.
    DataCollector,
    /// `/_emulator/*`.
    Control,
    /// Anything else (answered 404).
    Other,
}

/// One logged request.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// Sequence number, from 0.
    pub seq: u64,
    /// Arrival time on the emulator's clock (system time plus any [`advance_clock`] offset).
    ///
    /// [`advance_clock`]: crate::EmulatorHandle::advance_clock
    #[serde(with = "system_time_ms")]
    pub at: SystemTime,
    /// Arrival time since the emulator started (monotonic).
    #[serde(with = "duration_ms")]
    pub since_start: Duration,
    /// HTTP method.
    pub method: String,
    /// Path, without the query string.
    pub path: String,
    /// Which API.
    pub endpoint: Endpoint,
    /// Answered status; `None` when the connection was reset instead.
    pub status: Option<u16>,
    /// The injected fault, if any.
    pub fault: Option<FaultKind>,
    /// `Retry-After` seconds sent with the answer, if any.
    pub retry_after: Option<u64>,
    /// Error code of the answer (`x-ms-error-code`, Entra `error`, or Data Collector `Error`).
    pub error_code: Option<String>,
    /// Body bytes as received on the wire.
    pub bytes: u64,
    /// Rows stored (or counted) by this request.
    pub rows: u64,
    /// The client's `x-ms-client-request-id`, if sent.
    pub client_request_id: Option<String>,
}

mod system_time_ms {
    use serde::Serializer;
    use std::time::SystemTime;

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        s.serialize_u128(ms)
    }
}

mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_millis())
    }
}

/// Counters exposed at `/_emulator/metrics`.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// All logged requests.
    pub requests_total: u64,
    /// Requests per answered status code; resets are counted under `"reset"`.
    pub requests_by_status: BTreeMap<String, u64>,
    /// Requests per endpoint.
    pub requests_by_endpoint: BTreeMap<String, u64>,
    /// Injected faults per kind.
    pub faults_injected: BTreeMap<String, u64>,
    /// Rows stored (or counted) per table.
    pub rows_by_table: BTreeMap<String, u64>,
    /// Request body bytes received on the wire.
    pub bytes_received: u64,
    /// Request body bytes after gzip decoding.
    pub bytes_decoded: u64,
    /// Connections reset by faults or down windows.
    pub connections_reset: u64,
    /// Bytes of huge-body fault answers handed to connections (a client that stops reading
    /// early keeps this far below the configured size).
    pub huge_body_bytes_sent: u64,
}

#[derive(Debug)]
struct Inner {
    tables: HashMap<String, Vec<Value>>,
    counts: HashMap<String, u64>,
    log: VecDeque<RequestRecord>,
    metrics: Metrics,
    next_seq: u64,
}

/// Rows, log and counters.
#[derive(Debug)]
pub(crate) struct Store {
    mode: Storage,
    log_capacity: usize,
    inner: Mutex<Inner>,
}

/// Storage failure (data directory I/O).
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub(crate) struct StoreError(String);

impl Store {
    pub(crate) fn new(mode: Storage, log_capacity: usize) -> Result<Self, StoreError> {
        let mut counts = HashMap::new();
        if let Storage::Dir(dir) = &mode {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
            // Existing files count: the emulator appends to them.
            let entries = std::fs::read_dir(dir)
                .map_err(|e| StoreError(format!("cannot list {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "jsonl")
                    && let Some(table) = path.file_stem().and_then(|s| s.to_str())
                {
                    let n = std::fs::File::open(&path)
                        .map(|f| BufReader::new(f).lines().count() as u64)
                        .unwrap_or(0);
                    counts.insert(table.to_owned(), n);
                }
            }
        }
        let mut metrics = Metrics::default();
        for (t, n) in &counts {
            metrics.rows_by_table.insert(t.clone(), *n);
        }
        Ok(Self {
            mode,
            log_capacity: log_capacity.max(1),
            inner: Mutex::new(Inner {
                tables: HashMap::new(),
                counts,
                log: VecDeque::new(),
                metrics,
                next_seq: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn counting_only(&self) -> bool {
        matches!(self.mode, Storage::CountOnly)
    }

    fn table_path(dir: &std::path::Path, table: &str) -> PathBuf {
        dir.join(format!("{table}.jsonl"))
    }

    /// Appends rows to `table`.
    pub(crate) fn append(&self, table: &str, rows: Vec<Value>) -> Result<(), StoreError> {
        let n = rows.len() as u64;
        match &self.mode {
            Storage::Memory => {
                let mut g = self.lock();
                g.tables.entry(table.to_owned()).or_default().extend(rows);
                Self::count_locked(&mut g, table, n);
            }
            Storage::Dir(dir) => {
                let mut buf = Vec::new();
                for r in &rows {
                    serde_json::to_writer(&mut buf, r).map_err(|e| StoreError(e.to_string()))?;
                    buf.push(b'\n');
                }
                // The lock also serialises appends to the same file.
                let mut g = self.lock();
                let path = Self::table_path(dir, table);
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
                f.write_all(&buf)
                    .map_err(|e| StoreError(format!("cannot write {}: {e}", path.display())))?;
                Self::count_locked(&mut g, table, n);
            }
            Storage::CountOnly => self.count(table, n),
        }
        Ok(())
    }

    /// Counts rows without storing them.
    pub(crate) fn count(&self, table: &str, n: u64) {
        let mut g = self.lock();
        Self::count_locked(&mut g, table, n);
    }

    fn count_locked(g: &mut Inner, table: &str, n: u64) {
        *g.counts.entry(table.to_owned()).or_default() += n;
        *g.metrics.rows_by_table.entry(table.to_owned()).or_default() += n;
    }

    pub(crate) fn rows(&self, table: &str) -> Vec<Value> {
        match &self.mode {
            Storage::Memory => self.lock().tables.get(table).cloned().unwrap_or_default(),
            Storage::Dir(dir) => {
                let _g = self.lock();
                let Ok(f) = std::fs::File::open(Self::table_path(dir, table)) else {
                    return Vec::new();
                };
                BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .filter_map(|l| serde_json::from_str(&l).ok())
                    .collect()
            }
            Storage::CountOnly => Vec::new(),
        }
    }

    pub(crate) fn row_count(&self, table: &str) -> u64 {
        self.lock().counts.get(table).copied().unwrap_or(0)
    }

    pub(crate) fn next_seq(&self) -> u64 {
        let mut g = self.lock();
        let s = g.next_seq;
        g.next_seq += 1;
        s
    }

    pub(crate) fn add_streamed(&self, n: u64) {
        self.lock().metrics.huge_body_bytes_sent += n;
    }

    pub(crate) fn add_bytes(&self, wire: u64, decoded: u64) {
        let mut g = self.lock();
        g.metrics.bytes_received += wire;
        g.metrics.bytes_decoded += decoded;
    }

    pub(crate) fn log(&self, rec: RequestRecord) {
        let mut g = self.lock();
        let m = &mut g.metrics;
        m.requests_total += 1;
        let status = rec
            .status
            .map_or_else(|| "reset".to_owned(), |s| s.to_string());
        *m.requests_by_status.entry(status).or_default() += 1;
        let ep = serde_json::to_value(rec.endpoint)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *m.requests_by_endpoint.entry(ep).or_default() += 1;
        if let Some(f) = rec.fault {
            let k = serde_json::to_value(f)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *m.faults_injected.entry(k).or_default() += 1;
        }
        if g.log.len() >= self.log_capacity {
            g.log.pop_front();
        }
        g.log.push_back(rec);
    }

    pub(crate) fn connection_reset(&self) {
        self.lock().metrics.connections_reset += 1;
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        self.lock().log.iter().cloned().collect()
    }

    pub(crate) fn metrics(&self) -> Metrics {
        self.lock().metrics.clone()
    }
}

/// Counts the top-level elements of a JSON array without building it: the cheap path of
/// [`Storage::CountOnly`]. Returns `None` if the text is not an array.
pub(crate) fn count_array_elements(bytes: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if bytes.get(i) != Some(&b'[') {
        return None;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut count = 0u64;
    let mut seen_value = false;
    for &b in &bytes[i..] {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                if depth == 1 {
                    seen_value = true;
                }
            }
            b'[' | b'{' => {
                if depth == 1 {
                    seen_value = true;
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(count + u64::from(seen_value));
                }
            }
            b',' if depth == 1 => {
                count += 1;
                seen_value = false;
            }
            b if depth == 1 && !b.is_ascii_whitespace() => seen_value = true,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_top_level_elements() {
        assert_eq!(count_array_elements(b"[]"), Some(0));
        assert_eq!(count_array_elements(b" [ ] "), Some(0));
        assert_eq!(
            count_array_elements(br#"[{"a":"x,]}"},{"b":[1,2,{"c":3}]}]"#),
            Some(2)
        );
        assert_eq!(count_array_elements(br#"[{"a":"\"],"}]"#), Some(1));
        assert_eq!(count_array_elements(b"[1, 2,3]"), Some(3));
        assert_eq!(count_array_elements(b"{}"), None);
        assert_eq!(count_array_elements(b"[{"), None);
    }

    #[test]
    fn dir_storage_round_trips_and_recounts() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(Storage::Dir(dir.path().to_owned()), 10).unwrap();
        s.append("T", vec![json!({"a":1}), json!({"a":"ü"})])
            .unwrap();
        assert_eq!(s.rows("T"), vec![json!({"a":1}), json!({"a":"ü"})]);
        assert_eq!(s.row_count("T"), 2);
        drop(s);
        let s = Store::new(Storage::Dir(dir.path().to_owned()), 10).unwrap();
        assert_eq!(s.row_count("T"), 2);
        s.append("T", vec![json!({"a":2})]).unwrap();
        assert_eq!(s.rows("T").len(), 3);
    }

    #[test]
    fn log_is_bounded() {
        let s = Store::new(Storage::Memory, 2).unwrap();
        for i in 0..3 {
            s.log(RequestRecord {
                seq: i,
                at: SystemTime::now(),
                since_start: Duration::ZERO,
                method: "GET".into(),
                path: "/".into(),
                endpoint: Endpoint::Other,
                status: Some(404),
                fault: None,
                retry_after: None,
                error_code: None,
                bytes: 0,
                rows: 0,
                client_request_id: None,
            });
        }
        let r = s.requests();
        assert_eq!(r.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(s.metrics().requests_total, 3);
        assert_eq!(s.metrics().requests_by_status["404"], 3);
    }
}
