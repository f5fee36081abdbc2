//! The durable spool: one NDJSON file per batch, written to a temporary name, fsync'd (per
//! policy) and renamed, then deleted after the output acknowledged it.
//!
//! File names are `<20-digit sequence>.<route>.ndjson`; the sequence gives the resend order at
//! start-up. A `*.tmp` file is a write that a crash interrupted: it was never acknowledged
//! to anyone and is removed at start-up.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::config::{FsyncPolicy, SpoolConfig, WhenFull};
use crate::metrics::{DropReason, Metrics};
use crate::route::{BufPool, Route};

/// A closed batch: NDJSON rows for one route.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) route: Route,
    pub(crate) data: Vec<u8>,
    pub(crate) rows: usize,
    /// Where `data` goes back when the batch is dropped (after it was written).
    pub(crate) pool: Option<Arc<BufPool>>,
}

#[cfg(test)]
impl Batch {
    /// A batch whose buffer goes back to no pool.
    pub(crate) fn unpooled(route: Route, data: Vec<u8>, rows: usize) -> Batch {
        Batch {
            route,
            data,
            rows,
            pool: None,
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.put(std::mem::take(&mut self.data));
        }
    }
}

/// A batch that is safely on disk.
#[derive(Debug, Clone)]
pub(crate) struct Spooled {
    pub(crate) seq: u64,
    pub(crate) route: Route,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
}

/// The spool directory and its accounting.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    when_full: WhenFull,
    fsync: FsyncPolicy,
    next_seq: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
    space: Notify,
    /// Set at shutdown: the cap no longer blocks, so everything read can be drained to disk.
    draining: std::sync::atomic::AtomicBool,
    metrics: Arc<Metrics>,
}

impl Spool {
    /// Open (creating) the directory; returns the spool and the batches left by a previous run,
    /// oldest first.
    pub(crate) fn open(
        dir: &Path,
        cfg: &SpoolConfig,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<(Spool, Vec<Spooled>)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        let mut left = Vec::new();
        let mut bytes = 0;
        for entry in std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the spool directory {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                // Never renamed, so never acknowledged to anyone: an interrupted write.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let Some((seq, route)) = parse_name(name) else {
                continue;
            };
            let len = entry.metadata()?.len();
            bytes += len;
            left.push(Spooled {
                seq,
                route,
                path: entry.path(),
                len,
            });
        }
        left.sort_by_key(|s| s.seq);
        let next = left.last().map_or(1, |s| s.seq + 1);
        metrics.spool_bytes.store(bytes, Relaxed);
        metrics.spool_files.store(left.len() as u64, Relaxed);
        metrics.spool_ready_threshold.store(
            (cfg.max_bytes.0 as f64 * cfg.ready_threshold) as u64,
            Relaxed,
        );
        let spool = Spool {
            dir: dir.to_owned(),
            max_bytes: cfg.max_bytes.0,
            when_full: cfg.when_full,
            fsync: cfg.fsync,
            next_seq: AtomicU64::new(next),
            bytes: AtomicU64::new(bytes),
            files: AtomicU64::new(left.len() as u64),
            space: Notify::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            metrics,
        };
        Ok((spool, left))
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
        let mut batch = batch;
        let mut pause = std::time::Duration::from_millis(500);
        loop {
            let seq = self.next_seq.fetch_add(1, Relaxed);
            let path = self.dir.join(file_name(seq, route));
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
                    return Ok(Spooled {
                        seq,
                        route,
                        path,
                        len,
                    });
                }
                Ok((Err(e), back)) => {
                    // ENOSPC, EIO, a removed directory: keep the batch and try again; the
                    // pipeline waits meanwhile (back-pressure), so nothing read is dropped.
                    // Not ready meanwhile: a load balancer should send elsewhere.
                    self.metrics.spool_write_failing.store(true, Relaxed);
                    tracing::error!(dir = %self.dir.display(), error = %e, retry_in = ?pause, "cannot write a spool file; retrying");
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

    /// Shutdown: let the batches still in memory through, over the cap if need be.
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

    fn account(&self, bytes: i64, files: i64) {
        let b = if bytes >= 0 {
            self.bytes.fetch_add(bytes as u64, Relaxed) + bytes as u64
        } else {
            self.bytes.fetch_sub(bytes.unsigned_abs(), Relaxed) - bytes.unsigned_abs()
        };
        let f = if files >= 0 {
            self.files.fetch_add(files as u64, Relaxed) + files as u64
        } else {
            self.files.fetch_sub(files.unsigned_abs(), Relaxed) - files.unsigned_abs()
        };
        self.metrics.spool_bytes.store(b, Relaxed);
        self.metrics.spool_files.store(f, Relaxed);
        if bytes < 0 {
            self.space.notify_waiters();
        }
    }
}

fn write_file(
    tmp: &Path,
    path: &Path,
    dir: &Path,
    data: &[u8],
    fsync: FsyncPolicy,
) -> std::io::Result<()> {
    let mut f = std::fs::File::create(tmp)?;
    f.write_all(data)?;
    if fsync == FsyncPolicy::Always {
        f.sync_data()?;
    }
    drop(f);
    std::fs::rename(tmp, path)?;
    if fsync == FsyncPolicy::Always {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn file_name(seq: u64, route: Route) -> String {
    format!("{seq:020}.{}.ndjson", route.as_str())
}

fn parse_name(name: &str) -> Option<(u64, Route)> {
    let rest = name.strip_suffix(".ndjson")?;
    let (seq, route) = rest.split_once('.')?;
    if seq.len() != 20 {
        return None;
    }
    Some((seq.parse().ok()?, Route::from_str(route)?))
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
        let w = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Arc::new(s).write(batch(42)),
        )
        .await;
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
    use crate::output::run_spooler;
    use tokio::sync::mpsc;

    /// Feeds `n` batches of `size` bytes (3 rows each) through the spool writer and
    /// returns what it queued for sending.
    async fn feed(spool: Arc<Spool>, n: usize, size: usize) -> Vec<Spooled> {
        let (tx, rx) = mpsc::channel(2);
        let (q_tx, mut q_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(run_spooler(spool, rx, q_tx, Arc::new(Metrics::default())));
        for i in 0..n {
            let data = vec![b'a' + (i % 26) as u8; size];
            tx.send(Batch::unpooled(Route::Csl, data, 3)).await.unwrap();
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
        let out = feed(Arc::new(s), 25, 1000).await;
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
    async fn drop_newest_accounting_is_exact_with_overlapping_writes() {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        // Room for 5 batches of 1000 bytes; nothing is sent, so the rest is dropped.
        let (s, _) = Spool::open(d.path(), &cfg(5000, WhenFull::DropNewest), m.clone()).unwrap();
        let out = feed(Arc::new(s), 12, 1000).await;
        assert_eq!(out.len(), 5);
        assert_eq!(m.dropped(DropReason::SpoolFull), 7 * 3);
        assert_eq!(m.spool_bytes.load(Relaxed), 5000);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 5);
    }
}
