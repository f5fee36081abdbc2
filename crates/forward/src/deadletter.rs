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

/// The dead-letter file's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The file is never grown past this many bytes; entries beyond it are dropped, counted
    /// (`dead_letter_full`) and summarised in the log.
    pub(crate) max_bytes: u64,
    /// Unroutable messages kept one by one per second; the rest of each second's messages
    /// are counted (`dead_letter_sampled`) and written as one summary line. 0 keeps them all.
    pub(crate) unroutable_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            unroutable_per_second: DEFAULT_UNROUTABLE_PER_SECOND,
        }
    }
}

/// The default cap of the dead-letter file: room for about a million rows, small enough
/// for a shared `/var`.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// The default number of unroutable messages kept one by one each second.
pub(crate) const DEFAULT_UNROUTABLE_PER_SECOND: u32 = 100;
/// Peers named in an unroutable summary; the others are added up under `"other"`.
const SUMMARY_PEERS: usize = 16;

/// Unroutable messages over the per-second sample, waiting for their summary line.
#[derive(Debug, Default)]
struct Summary {
    /// The sampling window (a Unix second) and how many were kept in it.
    window: i64,
    kept: u32,
    /// Left out since the last summary line.
    messages: u64,
    bytes: u64,
    first: Option<jiff::Timestamp>,
    peers: Vec<(std::net::IpAddr, u64)>,
    other: u64,
}

impl Summary {
    fn add(&mut self, time: jiff::Timestamp, peer: std::net::IpAddr, len: usize) {
        self.messages += 1;
        self.bytes += len as u64;
        self.first.get_or_insert(time);
        if let Some(p) = self.peers.iter_mut().find(|(ip, _)| *ip == peer) {
            p.1 += 1;
        } else if self.peers.len() < SUMMARY_PEERS {
            self.peers.push((peer, 1));
        } else {
            self.other += 1;
        }
    }

    /// The summary line (with its newline) and the messages it stands for; None when empty.
    fn take_line(&mut self, now: jiff::Timestamp) -> Option<(Vec<u8>, u64)> {
        if self.messages == 0 {
            return None;
        }
        let mut peers = serde_json::Map::new();
        for (ip, n) in self.peers.drain(..) {
            peers.insert(ip.to_string(), n.into());
        }
        if self.other > 0 {
            peers.insert("other".to_owned(), self.other.into());
        }
        let line = serde_json::json!({
            "time": now,
            "reason": SUMMARY_REASON,
            "summary": {
                "messages": self.messages,
                "bytes": self.bytes,
                "since": self.first,
                "peers": peers,
            },
        });
        let n = self.messages;
        (self.messages, self.bytes, self.first, self.other) = (0, 0, None, 0);
        let mut out = serde_json::to_vec(&line).ok()?;
        out.push(b'\n');
        Some((out, n))
    }
}

/// The reason of an unroutable summary line.
pub(crate) const SUMMARY_REASON: &str =
    "unroutable messages over dead_letter.unroutable_per_second, counted here instead of kept";

/// Lines waiting for the next flush.
#[derive(Debug, Default)]
struct Pending {
    data: Vec<u8>,
    entries: u64,
}

/// Appends to the dead-letter file. Lines are buffered and written at each flush with
/// open-append-close, so `replay-dead-letter` can move the file aside while the forwarder runs:
/// the next flush creates a fresh file.
///
/// The file is capped at [`Limits::max_bytes`] (measured on disk at each flush, so a file
/// moved aside frees its room), and unroutable noise is sampled: a flood of non-CEF
/// datagrams costs one summary line a flush, not a line each.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    path: PathBuf,
    limits: Limits,
    pending: Mutex<Pending>,
    summary: Mutex<Summary>,
    warned: std::sync::atomic::AtomicBool,
    /// Unix second of the last "file full" warning (one a minute at most).
    full_warned_at: std::sync::atomic::AtomicI64,
    metrics: Arc<Metrics>,
}

/// Buffered bytes that trigger an immediate write.
const FLUSH_AT: usize = 1 << 20;

impl DeadLetter {
    /// A dead-letter file with the default [`Limits`].
    #[cfg(test)]
    pub(crate) fn new(path: PathBuf, metrics: Arc<Metrics>) -> DeadLetter {
        DeadLetter::with_limits(path, Limits::default(), metrics)
    }

    pub(crate) fn with_limits(path: PathBuf, limits: Limits, metrics: Arc<Metrics>) -> DeadLetter {
        DeadLetter {
            path,
            limits,
            pending: Mutex::new(Pending::default()),
            summary: Mutex::new(Summary::default()),
            warned: std::sync::atomic::AtomicBool::new(false),
            full_warned_at: std::sync::atomic::AtomicI64::new(i64::MIN),
            metrics,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Start-up check: the file can be appended to (or created in its directory), so a
    /// wrong path or permission fails at start, not at the first rejected row.
    pub(crate) fn check_writable(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let what = || {
            format!(
                "the dead-letter file {} is not writable",
                self.path.display()
            )
        };
        if self.path.exists() {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&self.path)
                .with_context(what)?;
            return Ok(());
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).with_context(what)?;
        let probe = dir.join(format!(".mcas-forward-probe-{}", std::process::id()));
        std::fs::File::create(&probe).with_context(what)?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
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

    /// A message no route takes: kept as an entry while this second's sample has room,
    /// else counted into the next summary line.
    pub(crate) fn unroutable(
        &self,
        time: jiff::Timestamp,
        reason: &str,
        peer: std::net::IpAddr,
        raw: &[u8],
    ) {
        let per_second = self.limits.unroutable_per_second;
        if per_second > 0 {
            let Ok(mut s) = self.summary.lock() else {
                self.metrics.count_drop(DropReason::DeadLetterWrite, 1);
                return;
            };
            let second = jiff::Timestamp::now().as_second();
            if s.window != second {
                s.window = second;
                s.kept = 0;
            }
            if s.kept >= per_second {
                s.add(time, peer, raw.len());
                return;
            }
            s.kept += 1;
        }
        let raw = String::from_utf8_lossy(raw);
        self.write(&EntryOut {
            time,
            reason,
            stream: None,
            row: None,
            peer: Some(peer),
            raw: Some(&raw),
        });
    }

    /// Append pre-encoded lines (`n` entries).
    pub(crate) fn write_lines(&self, lines: &[u8], n: u64) {
        if n == 0 {
            return;
        }
        let full = match self.pending.lock() {
            Ok(mut p) => {
                p.data.extend_from_slice(lines);
                p.entries += n;
                p.data.len() >= FLUSH_AT
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

    /// Write the buffered lines and the unroutable summary (called at each flush tick, after
    /// rejections, and at shutdown). Lines that would take the file past its cap are
    /// dropped and counted.
    pub(crate) fn flush(&self) {
        let summary = match self.summary.lock() {
            Ok(mut s) => s.take_line(jiff::Timestamp::now()),
            Err(_) => None,
        };
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        let sampled = match summary {
            Some((line, n)) => {
                p.data.extend_from_slice(&line);
                p.entries += 1;
                n
            }
            None => 0,
        };
        if p.entries == 0 {
            return;
        }
        let (data, n) = (std::mem::take(&mut p.data), std::mem::take(&mut p.entries));
        // Hold the lock while writing: flushes from several workers append in order.
        let res = open_append(&self.path).and_then(|mut f| {
            let size = f.metadata()?.len();
            let room = self.limits.max_bytes.saturating_sub(size);
            let keep = fitting_prefix(&data, room);
            f.write_all(&data[..keep])?;
            Ok(keep)
        });
        match res {
            Ok(keep) => {
                self.metrics.dead_letter_failing.store(false, Relaxed);
                let written = count_lines(&data[..keep]);
                let dropped = n - written;
                // A summary line stands for the messages it counts; it is always the last line.
                let summary_written = sampled > 0 && dropped == 0;
                self.metrics
                    .dead_lettered
                    .fetch_add(written - u64::from(summary_written), Relaxed);
                if sampled > 0 {
                    self.metrics
                        .count_drop(DropReason::DeadLetterSampled, sampled);
                }
                let lost = dropped - u64::from(sampled > 0 && !summary_written);
                if lost > 0 {
                    self.metrics.count_drop(DropReason::DeadLetterFull, lost);
                    self.warn_full(lost);
                }
                if written > 0 && !self.warned.swap(true, Relaxed) {
                    tracing::warn!(path = %self.path.display(), "writing to the dead-letter file");
                }
            }
            Err(err) => {
                self.metrics.dead_letter_failing.store(true, Relaxed);
                tracing::error!(path = %self.path.display(), error = %err, entries = n, "cannot write the dead-letter file");
                let lost = n - u64::from(sampled > 0);
                self.metrics.count_drop(DropReason::DeadLetterWrite, lost);
            }
        }
    }

    /// Write the buffered lines and fdatasync the file: what a RELP session waits for
    /// before answering a message that went to the dead-letter file. False when the file
    /// could not be written or synced.
    pub(crate) fn sync(&self) -> bool {
        self.flush();
        if self.metrics.dead_letter_failing.load(Relaxed) {
            return false;
        }
        // Hold the write lock, so no flush is half-way through the file while it is synced.
        let _held = self.pending.lock();
        match open_append(&self.path).and_then(|f| f.sync_data()) {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(path = %self.path.display(), error = %err, "cannot sync the dead-letter file");
                false
            }
        }
    }

    fn warn_full(&self, lost: u64) {
        let now = jiff::Timestamp::now().as_second();
        let last = self.full_warned_at.load(Relaxed);
        if now.saturating_sub(last) >= 60
            && self
                .full_warned_at
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                path = %self.path.display(),
                max_bytes = self.limits.max_bytes,
                entries = lost,
                "the dead-letter file is full (dead_letter.max_bytes): entries dropped and counted in dropped_total{{reason=\"dead_letter_full\"}}; replay or move the file to make room"
            );
        }
    }
}

/// The length of the longest run of whole lines at the start of `data` that fits in `room`.
fn fitting_prefix(data: &[u8], room: u64) -> usize {
    if (data.len() as u64) <= room {
        return data.len();
    }
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    match memchr::memrchr(b'\n', &data[..room]) {
        Some(i) => i + 1,
        None => 0,
    }
}

fn count_lines(data: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', data).count() as u64
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dead: &DeadLetter, i: usize) {
        dead.unroutable(
            jiff::Timestamp::now(),
            "not CEF",
            std::net::IpAddr::from([10, 0, 0, (i % 4) as u8]),
            format!("<13>message {i:06}").as_bytes(),
        );
    }

    fn lines(p: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn the_file_never_grows_past_its_cap_and_the_rest_is_counted() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let limits = Limits {
            max_bytes: 10_000,
            unroutable_per_second: 0,
        };
        let dead = DeadLetter::with_limits(d.path().join("dl.ndjson"), limits, m.clone());
        for i in 0..1000 {
            entry(&dead, i);
            if i % 100 == 99 {
                dead.flush();
            }
        }
        dead.flush();
        let size = std::fs::metadata(dead.path()).unwrap().len();
        assert!(size <= 10_000, "{size} bytes");
        assert!(
            size > 9_000,
            "the cap is used up to its last whole line: {size}"
        );
        let kept = lines(dead.path()).len() as u64;
        assert_eq!(m.dead_lettered.load(Relaxed), kept);
        assert_eq!(m.dropped(DropReason::DeadLetterFull), 1000 - kept);
        assert!(!m.dead_letter_failing.load(Relaxed));
        // Moving the file aside (what replay does) makes room again.
        std::fs::rename(dead.path(), d.path().join("aside")).unwrap();
        entry(&dead, 5000);
        dead.flush();
        assert_eq!(lines(dead.path()).len(), 1);
    }

    #[test]
    fn a_flood_of_unroutable_messages_is_sampled_and_summarised() {
        let d = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_bytes: 1 << 30,
            unroutable_per_second: 5,
        };
        // Inside one second (tried again in the rare case the loop straddles a second).
        let (m, dead) = loop {
            let m = Arc::new(Metrics::default());
            let _ = std::fs::remove_file(d.path().join("dl.ndjson"));
            let dead = DeadLetter::with_limits(d.path().join("dl.ndjson"), limits, m.clone());
            let second = jiff::Timestamp::now().as_second();
            for i in 0..10_000 {
                entry(&dead, i);
            }
            if jiff::Timestamp::now().as_second() == second {
                break (m, dead);
            }
        };
        dead.flush();
        let got = lines(dead.path());
        let kept: Vec<_> = got.iter().filter(|l| l.get("raw").is_some()).collect();
        let summaries: Vec<_> = got.iter().filter(|l| l.get("summary").is_some()).collect();
        assert_eq!(kept.len(), 5);
        assert_eq!(summaries.len(), 1);
        let s = &summaries[0]["summary"];
        assert_eq!(s["messages"], 9_995);
        assert_eq!(summaries[0]["reason"], SUMMARY_REASON);
        let per_peer: u64 = s["peers"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            per_peer, 9_995,
            "every left-out message is attributed to a peer"
        );
        assert_eq!(m.dropped(DropReason::DeadLetterSampled), 9_995);
        assert_eq!(m.dead_lettered.load(Relaxed), 5);
    }

    #[test]
    fn rejected_rows_are_never_sampled() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let limits = Limits {
            max_bytes: 1 << 30,
            unroutable_per_second: 1,
        };
        let dead = DeadLetter::with_limits(d.path().join("dl.ndjson"), limits, m.clone());
        for _ in 0..50 {
            dead.write_lines(b"{\"row\":{}}\n", 1);
        }
        dead.flush();
        assert_eq!(lines(dead.path()).len(), 50);
        assert_eq!(m.dead_lettered.load(Relaxed), 50);
    }

    #[test]
    fn a_failing_write_is_counted_and_marks_storage_failing_until_it_works_again() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        // A directory where the file should be: every append fails.
        let path = d.path().join("dl.ndjson");
        std::fs::create_dir(&path).unwrap();
        let dead = DeadLetter::new(path.clone(), m.clone());
        assert!(dead.check_writable().is_err());
        dead.write_lines(b"{}\n{}\n", 2);
        dead.flush();
        assert_eq!(m.dropped(DropReason::DeadLetterWrite), 2);
        assert!(m.dead_letter_failing.load(Relaxed));
        std::fs::remove_dir(&path).unwrap();
        dead.write_lines(b"{}\n", 1);
        dead.flush();
        assert!(!m.dead_letter_failing.load(Relaxed));
        assert_eq!(m.dead_lettered.load(Relaxed), 1);
    }

    #[test]
    fn the_start_up_check_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let ok = DeadLetter::new(d.path().join("sub/dir/dl.ndjson"), m.clone());
        ok.check_writable().unwrap();
        assert!(!ok.path().exists(), "the check leaves no file behind");
        let blocker = d.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let bad = DeadLetter::new(blocker.join("dl.ndjson"), m);
        let e = format!("{:#}", bad.check_writable().unwrap_err());
        assert!(
            e.contains("dead-letter file") && e.contains("dl.ndjson"),
            "{e}"
        );
    }

    #[test]
    fn fitting_prefix_keeps_whole_lines() {
        assert_eq!(fitting_prefix(b"ab\ncd\n", 100), 6);
        assert_eq!(fitting_prefix(b"ab\ncd\n", 5), 3);
        assert_eq!(fitting_prefix(b"ab\ncd\n", 2), 0);
        assert_eq!(fitting_prefix(b"ab\ncd\n", 0), 0);
    }
}
