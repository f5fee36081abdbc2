//! The dead-letter file: one JSON object per line for each row the output rejected for good,
//! and each message no route takes, with the reason. `replay-dead-letter` reads it back.
//!
//! Line shapes:
//! - `{"time":"…","reason":"…","stream":"Custom-CommonSecurityLog","row":{…}}` — a mapped row;
//! - `{"time":"…","reason":"not CEF and no syslog_stream","peer":"10.0.0.1","raw":"<134>…"}` — a message.

use std::fs::File;
use std::io::{BufWriter, Write as _};
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

/// Appends to the dead-letter file, created (with its directory) on first use.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    path: PathBuf,
    file: Mutex<Option<BufWriter<File>>>,
    metrics: Arc<Metrics>,
}

impl DeadLetter {
    pub(crate) fn new(path: PathBuf, metrics: Arc<Metrics>) -> DeadLetter {
        DeadLetter {
            path,
            file: Mutex::new(None),
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
        let Ok(mut guard) = self.file.lock() else {
            self.metrics.count_drop(DropReason::DeadLetterWrite, n);
            return;
        };
        if guard.is_none() {
            match open_append(&self.path) {
                Ok(f) => {
                    tracing::warn!(path = %self.path.display(), "writing to the dead-letter file");
                    *guard = Some(BufWriter::new(f));
                }
                Err(err) => {
                    tracing::error!(path = %self.path.display(), error = %err, "cannot open the dead-letter file");
                    self.metrics.count_drop(DropReason::DeadLetterWrite, n);
                    return;
                }
            }
        }
        if let Some(w) = guard.as_mut() {
            if let Err(err) = w.write_all(lines) {
                tracing::error!(path = %self.path.display(), error = %err, "cannot write the dead-letter file");
                self.metrics.count_drop(DropReason::DeadLetterWrite, n);
                *guard = None;
                return;
            }
            self.metrics.dead_lettered.fetch_add(n, Relaxed);
        }
    }

    /// Push buffered lines to the OS (called at each flush tick and at shutdown).
    pub(crate) fn flush(&self) {
        if let Ok(mut guard) = self.file.lock()
            && let Some(w) = guard.as_mut()
            && let Err(err) = w.flush()
        {
            tracing::error!(path = %self.path.display(), error = %err, "cannot flush the dead-letter file");
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
