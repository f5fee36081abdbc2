//! The dead-letter file: one JSON object per line for each row the output rejected for good,
//! and each message no route takes, with the reason. `replay-dead-letter` reads it back.
//!
//! Line shapes:
//! - `{"time":"…","reason":"…","stream":"Custom-CommonSecurityLog","row":{…}}` — a mapped row;
//! - `{"time":"…","reason":"not CEF and no syslog_stream","peer":"10.0.0.1","raw":"<134>…"}` — a message.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::metrics::{DropReason, Metrics};

/// One dead-letter line, as written.
#[derive(Debug, Serialize)]
pub(crate) struct EntryOut<'a> {
    pub(crate) time: jiff::Timestamp,
    pub(crate) reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) row: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peer: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) raw: Option<&'a str>,
}

/// One dead-letter line, as read back.
#[derive(Debug, Deserialize)]
pub(crate) struct EntryIn {
    pub(crate) time: Option<jiff::Timestamp>,
    pub(crate) reason: Option<String>,
    pub(crate) stream: Option<String>,
    pub(crate) row: Option<Box<RawValue>>,
    pub(crate) peer: Option<std::net::IpAddr>,
    pub(crate) raw: Option<String>,
}

/// Appends to the dead-letter file. Lines are buffered and written at each flush with
/// open-append-close, so `replay-dead-letter` can move the file aside while the forwarder runs:
/// the next flush creates a fresh file.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    path: PathBuf,
    pending: Mutex<(Vec<u8>, u64)>,
    warned: std::sync::atomic::AtomicBool,
    metrics: Arc<Metrics>,
}

/// Buffered bytes that trigger an immediate write.
const FLUSH_AT: usize = 1 << 20;

impl DeadLetter {
    pub(crate) fn new(path: PathBuf, metrics: Arc<Metrics>) -> DeadLetter {
        DeadLetter {
            path,
            pending: Mutex::new((Vec::new(), 0)),
            warned: std::sync::atomic::AtomicBool::new(false),
            metrics,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry. Failures are counted and logged, never fatal.
    pub(crate) fn write(&self, e: &EntryOut<'_>) {
        let mut line = match serde_json::to_vec(e) {
            Ok(l) => l,
            Err(err) => {
                tracing::error!(error = %err, "cannot encode a dead-letter entry");
                self.metrics.count_drop(DropReason::DeadLetterWrite, 1);
                return;
            }
        };
        line.push(b'\n');
        self.write_lines(&line, 1);
    }

    /// Append pre-encoded lines (`n` entries).
    pub(crate) fn write_lines(&self, lines: &[u8], n: u64) {
        if n == 0 {
            return;
        }
        let full = match self.pending.lock() {
            Ok(mut p) => {
                p.0.extend_from_slice(lines);
                p.1 += n;
                p.0.len() >= FLUSH_AT
            }
            Err(_) => {
                self.metrics.count_drop(DropReason::DeadLetterWrite, n);
                return;
            }
        };
        if full {
            self.flush();
        }
    }

    /// Write the buffered lines (called at each flush tick, after rejections, and at shutdown).
    pub(crate) fn flush(&self) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        if p.1 == 0 {
            return;
        }
        let (data, n) = (std::mem::take(&mut p.0), std::mem::take(&mut p.1));
        let res = open_append(&self.path).and_then(|mut f| f.write_all(&data));
        match res {
            Ok(()) => {
                self.metrics.dead_lettered.fetch_add(n, Relaxed);
                if !self.warned.swap(true, Relaxed) {
                    tracing::warn!(path = %self.path.display(), "writing to the dead-letter file");
                }
            }
            Err(err) => {
                tracing::error!(path = %self.path.display(), error = %err, entries = n, "cannot write the dead-letter file");
                self.metrics.count_drop(DropReason::DeadLetterWrite, n);
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}
