//! The durable spool: one file per batch, written to a temporary name, fsync'd (per
//! policy) and renamed, then deleted after the output acknowledged it.
//!
//! A batch file holds the request bodies that will be sent, packed and compressed by the
//! worker that closed the batch ([`mcas_spool`]'s format 2): file names are
//! `<20-digit sequence>.<route>.batch`. Files of the first format (NDJSON rows, named
//! `….ndjson`) that an earlier version left are still read and sent. The sequence gives
//! the resend order at start-up. A `*.tmp` file is a write that a crash interrupted: it was never acknowledged
//! to anyone and is removed at start-up.
//!
//! The directory belongs to one process at a time: [`Spool::open`] takes an exclusive lock on
//! [`LOCK_FILE`] inside it and holds it for the life of the spool. A batch file is never
//! replaced by another: each write goes to a fresh temporary file that is then given a name
//! that does not exist yet. Sequence numbers beyond [`MAX_SEQ`] (a leftover or hand-made
//! file) are renumbered after the others at start-up, so the sequence never wraps. A queued
//! file that vanished is released from the accounting and counted (`spool_lost`); one that
//! cannot be read is moved to [`QUARANTINE_DIR`], counted, and never sent.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::batch::{Batch, Route};
use crate::config::{FsyncPolicy, SpoolConfig, WhenFull};
use crate::metrics::{DropReason, Metrics};

/// A batch that is safely on disk.
#[derive(Debug, Clone)]
pub(crate) struct Spooled {
    pub(crate) seq: u64,
    pub(crate) route: Route,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) format: Format,
}

impl Spooled {
    fn new(seq: u64, route: Route, path: PathBuf, len: u64, format: Format) -> Spooled {
        Spooled {
            seq,
            route,
            path,
            len,
            format,
        }
    }
}

/// What a batch file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The first format: NDJSON rows (`.ndjson`), packed and compressed at send time.
    Ndjson,
    /// Format 2: the request bodies ([`mcas_spool`], `.batch`), sent as they are.
    Batch,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Batch => "batch",
        }
    }
}

/// The lock file inside the spool directory, held (`flock`) by the process that owns it.
pub(crate) const LOCK_FILE: &str = "mcas-forward.lock";

/// The subdirectory of the spool that holds batch files that could not be read.
pub(crate) const QUARANTINE_DIR: &str = "quarantine";

/// The largest sequence number taken as it is at start-up; a file named beyond it is
/// renumbered after the others. No process writes 10^18 batches, so only a stray or
/// hand-made name gets there, and the sequence keeps room to grow without wrapping.
pub(crate) const MAX_SEQ: u64 = 999_999_999_999_999_999;

/// How many times in a row a queued file may fail to be read (other than vanishing)
/// before it is quarantined. Transient causes (too many open files) pass in between.
const READ_ATTEMPTS: u32 = 3;

/// What [`Spool::read`] found.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// The batch's NDJSON rows.
    Data(Vec<u8>),
    /// The batch is no longer the spool's to send: its file vanished, or it could not be
    /// read and was quarantined (or could not even be moved). It was released from the
    /// accounting, counted and logged; the caller forgets it.
    Gone,
    /// The read failed; try again later (the file stays queued and accounted).
    Retry(anyhow::Error),
}

/// The spool directory and its accounting.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// `spool.ready_threshold`, for its share of the readiness gauge.
    ready_threshold: f64,
    /// The series of the output whose spool this is.
    out: Option<Arc<crate::metrics::OutputMetrics>>,
    when_full: WhenFull,
    fsync: FsyncPolicy,
    next_seq: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
    space: Notify,
    /// Set at shutdown: the cap no longer blocks, so everything read can be drained to disk.
    draining: std::sync::atomic::AtomicBool,
    metrics: Arc<Metrics>,
    /// The open lock file: the directory's exclusive lock lasts as long as this handle.
    _lock: std::fs::File,
    /// Failed reads in a row, by sequence number, of the files that failed their last read.
    read_failures: std::sync::Mutex<std::collections::HashMap<u64, u32>>,
}

impl Spool {
    /// Open (creating) the directory and lock it; returns the spool and the batches left by
    /// a previous run, oldest first. Fails when another process holds the directory.
    pub(crate) fn open(
        dir: &Path,
        cfg: &SpoolConfig,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<(Spool, Vec<Spooled>)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        let lock = lock_dir(dir)?;
        let mut left = Vec::new();
        let mut out_of_range = Vec::new();
        let mut bytes = 0;
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the spool directory {}", dir.display()))?
        {
            let entry = entry
                .with_context(|| format!("cannot read the spool directory {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                // Never renamed, so never acknowledged to anyone: an interrupted write.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let Some((seq, route, format)) = parse_name(name) else {
                continue;
            };
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot read {}", entry.path().display())));
                }
            };
            if !meta.is_file() {
                continue;
            }
            bytes += meta.len();
            let s = Spooled::new(seq, route, entry.path(), meta.len(), format);
            if seq <= MAX_SEQ {
                left.push(s);
            } else {
                out_of_range.push(s);
            }
        }
        left.sort_by_key(|s| s.seq);
        out_of_range.sort_by_key(|s| s.seq);
        // At most MAX_SEQ + 1: no overflow.
        let mut next = left.last().map_or(1, |s| s.seq + 1);
        for mut s in out_of_range {
            next = renumber(dir, &mut s, next)?;
            left.push(s);
        }
        // Each output has its own spool: the gauges are their sums.
        gauge_add(&metrics.spool_bytes, bytes as i64);
        gauge_add(&metrics.spool_files, left.len() as i64);
        // u64::MAX (its starting value) means "no spool": the first spool replaces it.
        let threshold = (cfg.max_bytes.0 as f64 * cfg.ready_threshold) as u64;
        let _ = metrics
            .spool_ready_threshold
            .fetch_update(Relaxed, Relaxed, |v| {
                Some(if v == u64::MAX {
                    threshold
                } else {
                    v.saturating_add(threshold)
                })
            });
        let spool = Spool {
            dir: dir.to_owned(),
            max_bytes: cfg.max_bytes.0,
            ready_threshold: cfg.ready_threshold,
            out: None,
            when_full: cfg.when_full,
            fsync: cfg.fsync,
            next_seq: AtomicU64::new(next),
            bytes: AtomicU64::new(bytes),
            files: AtomicU64::new(left.len() as u64),
            space: Notify::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            metrics,
            _lock: lock,
            read_failures: std::sync::Mutex::new(std::collections::HashMap::new()),
        };
        Ok((spool, left))
    }

    /// Take the next sequence number; `None` once the sequence is spent (never in practice:
    /// it starts at most a few files above [`MAX_SEQ`]), so it can never wrap.
    fn take_seq(&self) -> Option<u64> {
        self.next_seq
            .fetch_update(Relaxed, Relaxed, |s| s.checked_add(1))
            .ok()
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Write `batch` durably. Under `block`, waits for space; under `drop-newest`, a batch that
    /// does not fit is dropped, counted, and `None` returned. (The spool writer calls the two
    /// halves itself, to overlap the durable writes.)
    #[cfg(test)]
    pub(crate) async fn write(self: &Arc<Self>, batch: Batch) -> anyhow::Result<Option<Spooled>> {
        if !self.admit(&batch).await {
            return Ok(None);
        }
        self.store(batch).await.map(Some)
    }

    /// The first half of a spool write: reserve room for `batch` in the spool's
    /// accounting. Under `block`, waits for space; under `drop-newest`, a batch that does not
    /// fit is dropped, counted, and false returned. A true answer must be followed by
    /// [`Spool::store`] of the same batch. Admissions are made one at a time (the spool
    /// writer's loop), so the cap holds; the stores may then run concurrently.
    pub(crate) async fn admit(&self, batch: &Batch) -> bool {
        let len = batch.data.len() as u64;
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let held = self.bytes.load(Relaxed);
            // An empty spool always takes one batch, however large, so nothing wedges. At
            // shutdown the cap gives way: what is in memory (bounded by the queues) goes to disk.
            if held == 0 || held + len <= self.max_bytes || self.draining.load(Relaxed) {
                break;
            }
            match self.when_full {
                WhenFull::DropNewest => {
                    self.metrics
                        .count_drop(DropReason::SpoolFull, batch.rows as u64);
                    tracing::warn!(
                        rows = batch.rows,
                        held,
                        max = self.max_bytes,
                        "spool full: batch dropped (when_full = drop-newest)"
                    );
                    return false;
                }
                WhenFull::Block => notified.await,
            }
        }
        self.account(len as i64, 1);
        true
    }

    /// The second half of a spool write, for an admitted batch: write it to a temporary
    /// file, fsync it (per policy), rename it, fsync the directory (per policy). Only then
    /// is it returned, so a batch is never sent before it is durable. A failed write is
    /// retried (with back-off) rather than dropped.
    pub(crate) async fn store(self: &Arc<Self>, batch: Batch) -> anyhow::Result<Spooled> {
        let len = batch.data.len() as u64;
        let route = batch.route;
        let format = if batch.prepared {
            Format::Batch
        } else {
            Format::Ndjson
        };
        let mut batch = batch;
        let mut pause = std::time::Duration::from_millis(500);
        loop {
            let Some(seq) = self.take_seq() else {
                self.account(-(len as i64), -1);
                self.metrics.count_drop(DropReason::SpoolLost, 1);
                return Err(anyhow::anyhow!(
                    "the spool sequence of {} is spent; batch of {} rows not written",
                    self.dir.display(),
                    batch.rows
                ));
            };
            let path = self.dir.join(file_name(seq, route, format));
            let tmp = self.dir.join(format!("{seq:020}.{}.tmp", route.as_str()));
            let fsync = self.fsync;
            let dir = self.dir.clone();
            let final_path = path.clone();
            let res = tokio::task::spawn_blocking(move || {
                let r = write_file(&tmp, &final_path, &dir, &batch.data, fsync);
                if r.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                (r, batch)
            })
            .await;
            match res {
                Ok((Ok(()), _)) => {
                    self.metrics.spool_write_failing.store(false, Relaxed);
                    self.metrics.spool_written.fetch_add(1, Relaxed);
                    return Ok(Spooled::new(seq, route, path, len, format));
                }
                Ok((Err(e), back)) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A file already has this name (not one of ours: we never reuse a
                    // number). Never replace it: take the next number at once.
                    tracing::warn!(file = %path.display(), "a spool file name is taken; writing the batch under the next sequence number");
                    batch = back;
                }
                Ok((Err(e), back)) => {
                    // ENOSPC, EIO, a removed directory: keep the batch and try again; the
                    // pipeline waits meanwhile (back-pressure), so nothing read is dropped.
                    // Not ready meanwhile: a load balancer should send elsewhere.
                    self.metrics.spool_write_failing.store(true, Relaxed);
                    tracing::error!(dir = %self.dir.display(), error = %e, retry_in_ms = pause.as_millis() as u64, "cannot write a spool file; retrying");
                    batch = back;
                    let _ = std::fs::create_dir_all(&self.dir);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(30));
                }
                Err(e) => {
                    self.account(-(len as i64), -1);
                    return Err(anyhow::anyhow!("spool writer task failed: {e}"));
                }
            }
        }
    }

    /// Read a queued batch for sending. A file that vanished (the directory was deleted, an
    /// operator cleaned up) is released from the accounting, counted as `spool_lost` and
    /// logged, instead of being retried for ever. A file that cannot be read
    /// [`READ_ATTEMPTS`] times in a row is moved to [`QUARANTINE_DIR`] (counted, logged,
    /// never sent); one that cannot even be moved is released and counted as `spool_lost`.
    pub(crate) async fn read(&self, s: &Spooled) -> ReadOutcome {
        let res = tokio::fs::read(&s.path).await;
        let failures = {
            let mut f = self
                .read_failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &res {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    let n = f.entry(s.seq).or_insert(0);
                    *n = n.saturating_add(1);
                    let n = *n;
                    if n >= READ_ATTEMPTS {
                        f.remove(&s.seq);
                    }
                    n
                }
                _ => {
                    f.remove(&s.seq);
                    0
                }
            }
        };
        let err = match res {
            Ok(data) => return ReadOutcome::Data(data),
            Err(e) => e,
        };
        if err.kind() == std::io::ErrorKind::NotFound {
            self.lost(s, &err);
            return ReadOutcome::Gone;
        }
        if failures < READ_ATTEMPTS {
            return ReadOutcome::Retry(
                anyhow::Error::new(err).context(format!("cannot read {}", s.path.display())),
            );
        }
        self.quarantine(s, &err).await;
        ReadOutcome::Gone
    }

    /// A queued file vanished: release it, count it, say so.
    fn lost(&self, s: &Spooled, err: &dyn std::fmt::Display) {
        self.metrics.count_drop(DropReason::SpoolLost, 1);
        tracing::error!(
            file = %s.path.display(),
            bytes = s.len,
            error = %err,
            "a spooled batch file vanished before it was sent: its rows are lost"
        );
        self.account(-(s.len as i64), -1);
    }

    /// Move an unreadable file out of the way, into the quarantine directory.
    /// Move a batch file that cannot be sent to [`QUARANTINE_DIR`]: released from the
    /// accounting, counted and logged with `err`, never sent.
    pub(crate) async fn quarantine(&self, s: &Spooled, err: &(dyn std::fmt::Display + Sync)) {
        let qdir = self.dir.join(QUARANTINE_DIR);
        let from = s.path.clone();
        let moved = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&qdir)?;
            let name = from
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "batch".to_owned());
            let mut n = 0u32;
            loop {
                let to = if n == 0 {
                    qdir.join(&name)
                } else {
                    qdir.join(format!("{name}.{n}"))
                };
                match rename_noreplace(&from, &to) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                        n += 1;
                    }
                    r => return r.map(|()| to),
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match moved {
            Ok(to) => {
                self.metrics.spool_quarantined.fetch_add(1, Relaxed);
                tracing::error!(
                    file = %s.path.display(),
                    quarantined = %to.display(),
                    bytes = s.len,
                    error = %err,
                    "a spooled batch file cannot be read or is damaged: moved to quarantine, it will not be sent"
                );
                self.account(-(s.len as i64), -1);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.lost(s, err),
            Err(e) => {
                self.metrics.count_drop(DropReason::SpoolLost, 1);
                tracing::error!(
                    file = %s.path.display(),
                    bytes = s.len,
                    error = %err,
                    move_error = %e,
                    "a spooled batch file can be neither read nor moved to quarantine: released, it will not be sent"
                );
                self.account(-(s.len as i64), -1);
            }
        }
    }

    /// Shutdown: let the batches still in memory through, over the cap if need be.
    /// Keep a body of `s` that the service refused and that cannot be opened (damaged on
    /// disk) in [`QUARANTINE_DIR`], as `<file name>.body<index>`, and count it. Its rows are
    /// not recoverable; the rest of the file goes on.
    pub(crate) fn quarantine_body(&self, s: &Spooled, index: usize, data: &[u8], why: &str) {
        let qdir = self.dir.join(QUARANTINE_DIR);
        let name = s
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "batch".to_owned());
        let to = qdir.join(format!("{name}.body{index}"));
        let kept = std::fs::create_dir_all(&qdir).and_then(|()| std::fs::write(&to, data));
        self.metrics.spool_quarantined.fetch_add(1, Relaxed);
        match kept {
            Ok(()) => tracing::error!(
                file = %s.path.display(),
                quarantined = %to.display(),
                body = index,
                error = why,
                "a spooled request body was refused and cannot be opened: kept in quarantine, its rows are not sent"
            ),
            Err(e) => tracing::error!(
                file = %s.path.display(),
                body = index,
                error = why,
                write_error = %e,
                "a spooled request body was refused and cannot be opened, nor kept in quarantine: its rows are not sent"
            ),
        }
    }

    pub(crate) fn drain(&self) {
        self.draining.store(true, Relaxed);
        self.space.notify_waiters();
    }

    /// Delete a batch the output acknowledged.
    pub(crate) fn remove(&self, s: &Spooled) {
        match std::fs::remove_file(&s.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %s.path.display(), error = %e, "cannot delete delivered spool file")
            }
        }
        self.account(-(s.len as i64), -1);
    }

    /// Replace a batch's content with what is still to be sent (after a partial delivery).
    pub(crate) fn rewrite(&self, s: &mut Spooled, data: &[u8]) -> anyhow::Result<()> {
        let tmp = s.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(data)?;
            if self.fsync == FsyncPolicy::Always {
                f.sync_data()?;
            }
        }
        std::fs::rename(&tmp, &s.path)?;
        let new = data.len() as u64;
        self.account(new as i64 - s.len as i64, 0);
        s.len = new;
        Ok(())
    }

    /// Keep the spool gauges of `out` (the output this spool belongs to) too.
    pub(crate) fn labelled(mut self, out: Arc<crate::metrics::OutputMetrics>) -> Spool {
        out.spool_bytes.store(self.bytes.load(Relaxed), Relaxed);
        out.spool_files.store(self.files.load(Relaxed), Relaxed);
        self.out = Some(out);
        self
    }

    fn account(&self, bytes: i64, files: i64) {
        gauge_add(&self.bytes, bytes);
        gauge_add(&self.files, files);
        if let Some(o) = &self.out {
            gauge_add(&o.spool_bytes, bytes);
            gauge_add(&o.spool_files, files);
        }
        gauge_add(&self.metrics.spool_bytes, bytes);
        gauge_add(&self.metrics.spool_files, files);
        if bytes < 0 {
            self.space.notify_waiters();
        }
    }
}

/// A spool that goes away takes its share out of the gauges.
impl Drop for Spool {
    fn drop(&mut self) {
        gauge_add(
            &self.metrics.spool_bytes,
            -(self.bytes.load(Relaxed) as i64),
        );
        gauge_add(
            &self.metrics.spool_files,
            -(self.files.load(Relaxed) as i64),
        );
        gauge_add(
            &self.metrics.spool_ready_threshold,
            -((self.max_bytes as f64 * self.ready_threshold) as i64),
        );
    }
}

/// Add `delta` to a gauge, never below zero.
fn gauge_add(g: &AtomicU64, delta: i64) {
    if delta >= 0 {
        g.fetch_add(delta as u64, Relaxed);
    } else {
        let _ = g.fetch_update(Relaxed, Relaxed, |v| {
            Some(v.saturating_sub(delta.unsigned_abs()))
        });
    }
}

fn write_file(
    tmp: &Path,
    path: &Path,
    dir: &Path,
    data: &[u8],
    fsync: FsyncPolicy,
) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    f.write_all(data)?;
    if fsync == FsyncPolicy::Always {
        f.sync_data()?;
    }
    drop(f);
    rename_noreplace(tmp, path)?;
    if fsync == FsyncPolicy::Always {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Take the directory's exclusive lock, or say who has it.
fn lock_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    // Create it if need be, then hold it through a read-only handle: that locks as well,
    // and an open file written to would keep the file system from being remounted
    // read-only (an operator's way to freeze a disk; the spool's writes then retry).
    if let Err(e) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        && !path.exists()
    {
        return Err(anyhow::Error::new(e).context(format!(
            "cannot create the spool lock file {}",
            path.display()
        )));
    }
    let f = std::fs::File::open(&path)
        .with_context(|| format!("cannot open the spool lock file {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the spool directory {} is in use by another mcas-forward process (it holds {}): give each instance its own [spool] dir",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(anyhow::Error::new(e)
            .context(format!("cannot lock the spool directory {}", dir.display()))),
    }
}

/// Give `s` (a file whose sequence number is beyond [`MAX_SEQ`]) the number `next` or the
/// first free one after it, keeping its content; returns the number after the one taken.
/// When the file cannot be renamed it keeps its name, and only its place in the queue
/// changes: its name can never be taken by a new batch, whose numbers stay far below it.
fn renumber(dir: &Path, s: &mut Spooled, mut next: u64) -> anyhow::Result<u64> {
    loop {
        let to = dir.join(file_name(next, s.route, s.format));
        let after = next.checked_add(1).context("the spool sequence is spent")?;
        match rename_noreplace(&s.path, &to) {
            Ok(()) => {
                tracing::warn!(
                    from = %s.path.display(),
                    to = %to.display(),
                    "spool file renumbered: its sequence number was out of range"
                );
                s.path = to;
                s.seq = next;
                return Ok(after);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next = after,
            Err(e) => {
                tracing::warn!(
                    file = %s.path.display(),
                    error = %e,
                    "cannot renumber a spool file whose sequence number is out of range; it is sent after the others under its name"
                );
                s.seq = next;
                return Ok(after);
            }
        }
    }
}

/// Rename `from` to `to` only if `to` does not exist (then: `AlreadyExists`): a hard link
/// then an unlink, so an existing file is never replaced. On a file system without hard
/// links, a check then a rename (the directory lock keeps other instances out).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(e) = std::fs::remove_file(from) {
                // Keep one name only, the old one.
                let _ = std::fs::remove_file(to);
                return Err(e);
            }
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
            ) =>
        {
            Err(e)
        }
        Err(_) => {
            if to.try_exists()? {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(from, to)
        }
    }
}

fn file_name(seq: u64, route: Route, format: Format) -> String {
    format!("{seq:020}.{}.{}", route.as_str(), format.extension())
}

fn parse_name(name: &str) -> Option<(u64, Route, Format)> {
    let (rest, format) = match name.strip_suffix(".batch") {
        Some(rest) => (rest, Format::Batch),
        None => (name.strip_suffix(".ndjson")?, Format::Ndjson),
    };
    let (seq, route) = rest.split_once('.')?;
    if seq.len() != 20 {
        return None;
    }
    Some((seq.parse().ok()?, Route::from_str(route)?, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;

    pub(super) fn cfg(max: u64, when_full: WhenFull) -> SpoolConfig {
        SpoolConfig {
            max_bytes: ByteSize(max),
            when_full,
            ..SpoolConfig::default()
        }
    }

    fn batch(n: usize) -> Batch {
        Batch::unpooled(Route::Csl, vec![b'x'; n], 1)
    }

    #[tokio::test]
    async fn write_remove_and_reopen() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, left) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap();
        assert!(left.is_empty());
        let s = Arc::new(s);
        let a = s.write(batch(10)).await.unwrap().unwrap();
        let b = s
            .write(Batch::unpooled(Route::Syslog, b"{}\n".to_vec(), 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.bytes(), 13);
        s.remove(&a);
        assert_eq!(m.spool_files.load(Relaxed), 1);
        std::fs::write(d.path().join("00000000000000000099.csl.tmp"), b"half").unwrap();
        drop(s);
        let (s2, left) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].seq, b.seq);
        assert_eq!(left[0].route, Route::Syslog);
        assert_eq!(std::fs::read(&left[0].path).unwrap(), b"{}\n");
        assert!(!d.path().join("00000000000000000099.csl.tmp").exists());
        let c = Arc::new(s2).write(batch(1)).await.unwrap().unwrap();
        assert!(c.seq > b.seq);
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_not_dropped() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("spool");
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(&sub, &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap();
        // The directory vanishes (an operator's mistake, a remount): the write fails once,
        // the spool recreates the directory and writes the batch.
        std::fs::remove_dir_all(&sub).unwrap();
        let s = Arc::new(s);
        let w = tokio::time::timeout(std::time::Duration::from_secs(10), s.write(batch(42))).await;
        let spooled = w.unwrap().unwrap().unwrap();
        assert_eq!(std::fs::read(&spooled.path).unwrap().len(), 42);
        assert_eq!(m.spool_files.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn drain_lets_blocked_writers_through_at_shutdown() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m).unwrap();
        let s = Arc::new(s);
        s.write(batch(1 << 20)).await.unwrap().unwrap();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.write(batch(10)).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        s.drain();
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(r.is_some());
        assert_eq!(s.bytes(), (1 << 20) + 10);
    }

    #[tokio::test]
    async fn drop_newest_counts() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::DropNewest), m.clone()).unwrap();
        let s = Arc::new(s);
        s.write(batch(1 << 20)).await.unwrap().unwrap();
        assert!(s.write(batch(10)).await.unwrap().is_none());
        assert_eq!(m.dropped(DropReason::SpoolFull), 1);
    }

    /// The hostile campaign's reproduction: older batches on disk plus a leftover file named
    /// with the largest u64. The sequence used to wrap to 0 and new batches overwrote the
    /// older files (20 rows lost).
    #[tokio::test]
    async fn a_leftover_u64_max_name_never_makes_new_batches_overwrite_old_ones() {
        let d = tempfile::tempdir().unwrap();
        let row = |tag: &str, i: usize| format!("{{\"tag\":\"{tag}\",\"i\":{i}}}\n");
        let rows = |tag: &str| (0..4).map(|i| row(tag, i)).collect::<String>();
        for seq in 0..5u64 {
            std::fs::write(
                d.path().join(file_name(seq, Route::Csl, Format::Ndjson)),
                rows(&format!("old{seq}")),
            )
            .unwrap();
        }
        std::fs::write(
            d.path().join("18446744073709551615.csl.ndjson"),
            rows("leftover"),
        )
        .unwrap();
        let m = Arc::new(Metrics::default());
        let (s, left) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap();
        // The leftover is renumbered after the others, content kept, queued last.
        assert_eq!(left.len(), 6);
        assert_eq!(
            left.iter().map(|s| s.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(
            std::fs::read_to_string(&left[5].path).unwrap(),
            rows("leftover")
        );
        assert!(!d.path().join("18446744073709551615.csl.ndjson").exists());
        let s = Arc::new(s);
        let mut new = Vec::new();
        for i in 0..8 {
            let b = Batch::unpooled(Route::Csl, rows(&format!("new{i}")).into_bytes(), 4);
            new.push(s.write(b).await.unwrap().unwrap());
        }
        assert!(new.iter().all(|n| n.seq > 5 && n.seq <= MAX_SEQ));
        // Every row of every batch, old and new, is on disk once.
        for seq in 0..5u64 {
            assert_eq!(
                std::fs::read_to_string(&left[seq as usize].path).unwrap(),
                rows(&format!("old{seq}")),
                "old batch {seq} intact"
            );
        }
        let mut all = String::new();
        for e in std::fs::read_dir(d.path()).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "ndjson") {
                all.push_str(&std::fs::read_to_string(p).unwrap());
            }
        }
        assert_eq!(all.lines().count(), (5 + 1 + 8) * 4, "no row lost");
        assert_eq!(m.spool_files.load(Relaxed), 14);
        // A restart orders the same files the same way, nothing renumbered again.
        drop(s);
        let (_s, again) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m).unwrap();
        assert_eq!(again.len(), 14);
        assert_eq!(
            std::fs::read_to_string(&again[5].path).unwrap(),
            rows("leftover")
        );
    }

    #[tokio::test]
    async fn a_store_never_replaces_an_existing_file() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m).unwrap();
        // A file appears under the name the next batch would take.
        let taken = d.path().join(file_name(1, Route::Csl, Format::Ndjson));
        std::fs::write(&taken, b"precious\n").unwrap();
        let w = Arc::new(s).write(batch(10)).await.unwrap().unwrap();
        assert_ne!(w.path, taken);
        assert_eq!(std::fs::read(&taken).unwrap(), b"precious\n");
        assert_eq!(std::fs::read(&w.path).unwrap().len(), 10);
    }

    #[tokio::test]
    async fn a_second_open_of_a_held_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (first, _) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap();
        let e = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("in use by another mcas-forward process"),
            "{msg}"
        );
        assert!(msg.contains(&d.path().display().to_string()), "{msg}");
        drop(first);
        assert!(Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m).is_ok());
    }

    #[tokio::test]
    async fn a_vanished_file_is_released_counted_and_not_retried() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("spool");
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(&sub, &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap();
        let s = Arc::new(s);
        let a = s.write(batch(10)).await.unwrap().unwrap();
        let b = s.write(batch(20)).await.unwrap().unwrap();
        assert_eq!(s.bytes(), 30);
        // The whole directory is deleted while the batches wait for the output.
        std::fs::remove_dir_all(&sub).unwrap();
        assert!(matches!(s.read(&a).await, ReadOutcome::Gone));
        assert!(matches!(s.read(&b).await, ReadOutcome::Gone));
        assert_eq!(s.bytes(), 0);
        assert_eq!(m.spool_bytes.load(Relaxed), 0);
        assert_eq!(m.spool_files.load(Relaxed), 0);
        assert_eq!(m.dropped(DropReason::SpoolLost), 2);
        // The spool goes on: a new batch is written and read back.
        let c = s.write(batch(5)).await.unwrap().unwrap();
        assert!(matches!(s.read(&c).await, ReadOutcome::Data(d) if d.len() == 5));
    }

    #[tokio::test]
    async fn an_unreadable_file_is_quarantined_after_a_few_tries() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap();
        let s = Arc::new(s);
        let a = s.write(batch(10)).await.unwrap().unwrap();
        // Unreadable even for root: the name now holds a directory.
        std::fs::remove_file(&a.path).unwrap();
        std::fs::create_dir(&a.path).unwrap();
        for _ in 1..READ_ATTEMPTS {
            assert!(matches!(s.read(&a).await, ReadOutcome::Retry(_)));
            assert_eq!(s.bytes(), 10, "kept while it may be transient");
        }
        assert!(matches!(s.read(&a).await, ReadOutcome::Gone));
        let q = d
            .path()
            .join(QUARANTINE_DIR)
            .join(a.path.file_name().unwrap());
        assert!(q.exists(), "moved to quarantine");
        assert!(!a.path.exists());
        assert_eq!(m.spool_quarantined.load(Relaxed), 1);
        assert_eq!(m.dropped(DropReason::SpoolLost), 0);
        assert_eq!(s.bytes(), 0);
        assert_eq!(m.spool_files.load(Relaxed), 0);
        // The quarantine directory is not taken for batches at the next start.
        drop(s);
        let (_s, left) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m).unwrap();
        assert!(left.is_empty());
    }

    #[tokio::test]
    async fn a_file_that_can_be_neither_read_nor_moved_is_released_and_counted() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m.clone()).unwrap();
        let s = Arc::new(s);
        let a = s.write(batch(10)).await.unwrap().unwrap();
        std::fs::remove_file(&a.path).unwrap();
        std::fs::create_dir(&a.path).unwrap();
        // No quarantine directory can be made: a file has its name.
        std::fs::write(d.path().join(QUARANTINE_DIR), b"in the way").unwrap();
        let mut outcome = s.read(&a).await;
        for _ in 1..READ_ATTEMPTS {
            outcome = s.read(&a).await;
        }
        assert!(matches!(outcome, ReadOutcome::Gone));
        assert_eq!(m.dropped(DropReason::SpoolLost), 1);
        assert_eq!(m.spool_quarantined.load(Relaxed), 0);
        assert_eq!(s.bytes(), 0);
    }

    #[tokio::test]
    async fn block_waits_for_space() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(d.path(), &cfg(1 << 20, WhenFull::Block), m).unwrap();
        let s = Arc::new(s);
        let first = s.write(batch(1 << 20)).await.unwrap().unwrap();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.write(batch(10)).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a full spool must block the writer");
        s.remove(&first);
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(r.is_some());
    }
}

#[cfg(test)]
mod spooler_tests {
    use super::tests::cfg;
    use super::*;
    use crate::output::spooled::run_spooler;
    use tokio::sync::mpsc;

    /// Feeds `n` batches of `size` bytes (3 rows each) through the spool writer and
    /// returns what it queued for sending.
    async fn feed(spool: Arc<Spool>, n: usize, size: usize) -> Vec<Spooled> {
        let (tx, rx) = mpsc::channel(2);
        let (q_tx, mut q_rx) = mpsc::unbounded_channel();
        let dest = crate::output::local::Stdout::new(crate::output::local::Tables {
            csl: true,
            syslog: true,
        });
        let preparer = crate::output::Preparer::new(
            "test",
            crate::output::DestinationCell::new(Arc::new(dest)),
        );
        let writer = tokio::spawn(run_spooler(
            spool,
            rx,
            q_tx,
            Arc::new(Metrics::default()),
            preparer,
        ));
        for i in 0..n {
            let data = vec![b'a' + (i % 26) as u8; size];
            // Taken as a spool file already: these tests are about the writer.
            let mut b = Batch::unpooled(Route::Csl, data, 3);
            b.prepared = true;
            tx.send(b).await.unwrap();
        }
        drop(tx);
        writer.await.unwrap();
        let mut out = Vec::new();
        while let Ok(s) = q_rx.try_recv() {
            out.push(s);
        }
        out
    }

    #[tokio::test]
    async fn every_queued_batch_is_on_disk_with_its_own_content() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let (s, _) = Spool::open(d.path(), &cfg(1 << 30, WhenFull::Block), m.clone()).unwrap();
        let s = Arc::new(s);
        let out = feed(s.clone(), 25, 1000).await;
        assert_eq!(out.len(), 25);
        let mut seqs: Vec<u64> = out.iter().map(|s| s.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 25, "each batch has its own file");
        let mut firsts = Vec::new();
        for s in &out {
            let data = std::fs::read(&s.path).unwrap();
            assert_eq!(data.len(), 1000);
            assert_eq!(s.len, 1000);
            assert!(data.iter().all(|&b| b == data[0]));
            firsts.push(data[0]);
        }
        firsts.sort_unstable();
        let mut want: Vec<u8> = (0..25).map(|i| b'a' + (i % 26) as u8).collect();
        want.sort_unstable();
        assert_eq!(firsts, want, "no batch lost or written twice");
        assert_eq!(m.spool_written.load(Relaxed), 25);
        assert_eq!(m.spool_files.load(Relaxed), 25);
        assert_eq!(m.spool_bytes.load(Relaxed), 25_000);
    }

    #[tokio::test]
    async fn the_gauges_sum_every_open_spool_and_a_closed_one_leaves_them() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let m = Arc::new(Metrics::default());
        let (sa, _) = Spool::open(a.path(), &cfg(1 << 30, WhenFull::Block), m.clone()).unwrap();
        let (sb, _) = Spool::open(b.path(), &cfg(1 << 30, WhenFull::Block), m.clone()).unwrap();
        let (sa, sb) = (Arc::new(sa), Arc::new(sb));
        feed(sa.clone(), 3, 1000).await;
        feed(sb.clone(), 2, 500).await;
        assert_eq!(m.spool_files.load(Relaxed), 5);
        assert_eq!(m.spool_bytes.load(Relaxed), 4000);
        drop(sa);
        assert_eq!(m.spool_files.load(Relaxed), 2);
        assert_eq!(m.spool_bytes.load(Relaxed), 1000);
        assert_eq!(sb.bytes(), 1000);
    }

    #[tokio::test]
    async fn drop_newest_accounting_is_exact_with_overlapping_writes() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        // Room for 5 batches of 1000 bytes; nothing is sent, so the rest is dropped.
        let (s, _) = Spool::open(d.path(), &cfg(5000, WhenFull::DropNewest), m.clone()).unwrap();
        let s = Arc::new(s);
        let out = feed(s.clone(), 12, 1000).await;
        assert_eq!(out.len(), 5);
        assert_eq!(m.dropped(DropReason::SpoolFull), 7 * 3);
        assert_eq!(m.spool_bytes.load(Relaxed), 5000);
        let batch_files = std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != LOCK_FILE)
            .count();
        assert_eq!(batch_files, 5);
    }
}
