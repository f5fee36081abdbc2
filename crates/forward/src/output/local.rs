//! The local outputs: JSON lines on stdout or appended to a file, written as each batch
//! closes, on a thread of their own (no spool: a failed write stops the forwarder, which
//! says why).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::{Destination, Sent};
use crate::ack::Ack;
use crate::batch::{Batch, Route};
use crate::config::FileConfig;
use crate::metrics::{Metrics, OutputMetrics};

/// The tables a local output writes rows of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    pub(crate) csl: bool,
    pub(crate) syslog: bool,
}

impl Tables {
    /// The names local outputs give their routes (the tables the rows are shaped for).
    fn name(self, route: Route) -> Option<&'static str> {
        match route {
            Route::Csl if self.csl => Some("CommonSecurityLog"),
            Route::Syslog if self.syslog => Some("Syslog"),
            _ => None,
        }
    }
}

/// `kind = "stdout"`.
#[derive(Debug)]
pub(crate) struct Stdout {
    tables: Tables,
}

impl Stdout {
    pub(crate) fn new(tables: Tables) -> Stdout {
        Stdout { tables }
    }
}

impl Destination for Stdout {
    fn describe(&self) -> String {
        "stdout (JSON lines)".to_owned()
    }

    fn spooled(&self) -> bool {
        false
    }

    fn stream_name(&self, route: Route) -> Option<&str> {
        self.tables.name(route)
    }

    fn send<'a>(
        &'a self,
        _route: Route,
        ndjson: &'a [u8],
        rows: usize,
    ) -> BoxFuture<'a, anyhow::Result<Sent>> {
        Box::pin(async move {
            let mut out = std::io::stdout().lock();
            out.write_all(ndjson)
                .and_then(|()| out.flush())
                .context("cannot write to stdout")?;
            Ok(Sent {
                delivered: rows,
                ..Sent::default()
            })
        })
    }
}

/// `kind = "file"`: opened (created, for appending) when the output is built.
#[derive(Debug)]
pub(crate) struct File {
    path: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
    tables: Tables,
}

impl File {
    /// Open (creating, appending) the file of a `file` output.
    pub(crate) fn open(cfg: &FileConfig, tables: Tables) -> anyhow::Result<File> {
        let Some(path) = cfg.path.clone() else {
            anyhow::bail!("output.kind = \"file\" needs `path`");
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open output.path {}", path.display()))?;
        Ok(File {
            path,
            file: std::sync::Mutex::new(file),
            tables,
        })
    }
}

impl Destination for File {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn spooled(&self) -> bool {
        false
    }

    fn stream_name(&self, route: Route) -> Option<&str> {
        self.tables.name(route)
    }

    fn sync(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        // Called on run_local's own thread: the disk's latency blocks no runtime thread.
        Box::pin(async move {
            let f = self.file.lock().unwrap_or_else(|p| p.into_inner());
            f.sync_data()
                .with_context(|| format!("cannot sync {}", self.path.display()))
        })
    }

    fn send<'a>(
        &'a self,
        _route: Route,
        ndjson: &'a [u8],
        rows: usize,
    ) -> BoxFuture<'a, anyhow::Result<Sent>> {
        Box::pin(async move {
            let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
            f.write_all(ndjson)
                .with_context(|| format!("cannot write to {}", self.path.display()))?;
            Ok(Sent {
                delivered: rows,
                ..Sent::default()
            })
        })
    }
}

/// Write batches to a local destination as they come, on a thread of its own (run it with
/// `spawn_blocking`); returns when the channel closes, or with the first write error
/// (stdout closed by a pipe reader that went away, a full disk).
///
/// Batches that RELP sessions wait on are made durable by group commit: after writing every
/// batch queued, the thread syncs once, and the batches that arrive meanwhile are written
/// and synced together next. The sync runs here, so its answer reaches the sessions without
/// a hand-off to another thread and back, which on a loaded machine costs as much as the
/// sync itself.
pub(crate) fn run_local(
    dest: Arc<dyn Destination>,
    mut rx: mpsc::Receiver<Batch>,
    metrics: Arc<Metrics>,
    out: Arc<OutputMetrics>,
) -> anyhow::Result<()> {
    // Local destinations write without waiting on the runtime; the handle only drives
    // their futures to the end on this thread.
    let rt = tokio::runtime::Handle::current();
    // The acknowledgements of the batches written since the last sync.
    let mut written: Vec<Ack> = Vec::new();
    while let Some(mut b) = rx.blocking_recv() {
        // Write every batch already queued, so one sync covers all of them.
        loop {
            rt.block_on(dest.send(b.route, &b.data, b.rows))
                .context("cannot write the output")?;
            written.append(&mut b.acks);
            metrics.pending_rows.fetch_sub(b.rows as u64, Relaxed);
            out.delivered(
                &metrics,
                b.rows as u64,
                b.data.len() as u64,
                b.data.len() as u64,
            );
            match rx.try_recv() {
                Ok(next) => b = next,
                Err(_) => break,
            }
        }
        if !written.is_empty() {
            rt.block_on(dest.sync()).context("cannot sync the output")?;
            // A RELP session answers these rows now that they are on disk.
            crate::ack::confirm_all(std::mem::take(&mut written));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination whose syncs wait until the test lets each one finish (or fail).
    #[derive(Debug)]
    struct Gated {
        written: std::sync::Mutex<Vec<u8>>,
        started: std::sync::atomic::AtomicUsize,
        release: tokio::sync::Semaphore,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Destination for Gated {
        fn describe(&self) -> String {
            "gated".to_owned()
        }
        fn spooled(&self) -> bool {
            false
        }
        fn stream_name(&self, _route: Route) -> Option<&str> {
            None
        }
        fn send<'a>(
            &'a self,
            _route: Route,
            ndjson: &'a [u8],
            rows: usize,
        ) -> BoxFuture<'a, anyhow::Result<Sent>> {
            self.written.lock().unwrap().extend_from_slice(ndjson);
            Box::pin(async move {
                Ok(Sent {
                    delivered: rows,
                    ..Sent::default()
                })
            })
        }
        fn sync(&self) -> BoxFuture<'_, anyhow::Result<()>> {
            self.started.fetch_add(1, Relaxed);
            Box::pin(async move {
                self.release.acquire().await.unwrap().forget();
                if self.fail.load(Relaxed) {
                    anyhow::bail!("the disk is gone");
                }
                Ok(())
            })
        }
    }

    impl Default for Gated {
        fn default() -> Gated {
            Gated {
                written: std::sync::Mutex::default(),
                started: std::sync::atomic::AtomicUsize::new(0),
                release: tokio::sync::Semaphore::new(0),
                fail: std::sync::atomic::AtomicBool::new(false),
            }
        }
    }

    fn acked(data: &str) -> (Batch, crate::ack::Stored) {
        let (ack, stored) = Ack::new();
        let mut b = Batch::unpooled(Route::Csl, data.as_bytes().to_vec(), 1);
        b.acks.push(ack.share());
        ack.confirm();
        (b, stored)
    }

    /// `run_local` on `dest`, on a blocking thread as the forwarder runs it, fed by the
    /// returned queue.
    fn start(
        dest: Arc<dyn Destination>,
        metrics: &Arc<Metrics>,
    ) -> (
        mpsc::Sender<Batch>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let (tx, rx) = mpsc::channel(4);
        let (metrics, out) = (metrics.clone(), metrics.output("archive"));
        let task = tokio::task::spawn_blocking(move || run_local(dest, rx, metrics, out));
        (tx, task)
    }

    /// Waits (at most 10 s) until `cond` holds; the output's thread runs beside the test.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if cond() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("timed out waiting until {what}");
    }

    /// Gives the output's thread time to do what it would do next (used before asserting
    /// that something has not happened).
    async fn settle() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_batch_that_arrives_during_a_sync_is_answered_only_after_the_next_one() {
        let dest = Arc::new(Gated::default());
        let metrics = Arc::new(Metrics::default());
        metrics.pending_rows.fetch_add(2, Relaxed);
        let (tx, task) = start(dest.clone(), &metrics);
        let (first, mut first_stored) = acked("{\"n\":1}\n");
        tx.send(first).await.unwrap();
        until("the first batch is being synced", || {
            dest.started.load(Relaxed) == 1
        })
        .await;
        let (second, mut second_stored) = acked("{\"n\":2}\n");
        tx.send(second).await.unwrap();
        settle().await;
        // The sync runs on the output's thread: the second batch waits for it, unwritten.
        assert_eq!(dest.written.lock().unwrap().as_slice(), b"{\"n\":1}\n");
        assert!(
            first_stored.try_recv().is_err(),
            "the sync has not finished"
        );
        dest.release.add_permits(1);
        until("the second sync began", || dest.started.load(Relaxed) == 2).await;
        assert_eq!(first_stored.try_recv(), Ok(true));
        assert_eq!(
            dest.written.lock().unwrap().as_slice(),
            b"{\"n\":1}\n{\"n\":2}\n"
        );
        settle().await;
        assert!(
            second_stored.try_recv().is_err(),
            "arrived during the first sync: waits for the second"
        );
        dest.release.add_permits(1);
        assert_eq!(second_stored.await, Ok(true));
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(dest.started.load(Relaxed), 2);
        assert_eq!(metrics.pending_rows.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn a_failed_sync_stops_the_output_and_answers_nothing() {
        let dest = Arc::new(Gated::default());
        dest.fail.store(true, Relaxed);
        let metrics = Arc::new(Metrics::default());
        let (tx, task) = start(dest.clone(), &metrics);
        let (first, first_stored) = acked("{\"n\":1}\n");
        tx.send(first).await.unwrap();
        until("the first batch is being synced", || {
            dest.started.load(Relaxed) == 1
        })
        .await;
        let (second, second_stored) = acked("{\"n\":2}\n");
        tx.send(second).await.unwrap();
        dest.release.add_permits(2);
        let err = task.await.unwrap().unwrap_err();
        assert!(format!("{err:#}").contains("the disk is gone"), "{err:#}");
        assert_eq!(first_stored.await, Ok(false));
        assert_eq!(second_stored.await, Ok(false));
    }

    #[tokio::test]
    async fn batches_without_acknowledgements_are_never_synced() {
        let dest = Arc::new(Gated::default());
        let metrics = Arc::new(Metrics::default());
        metrics.pending_rows.fetch_add(3, Relaxed);
        let (tx, task) = start(dest.clone(), &metrics);
        for i in 0..3 {
            let data = format!("{{\"n\":{i}}}\n").into_bytes();
            tx.send(Batch::unpooled(Route::Csl, data, 1)).await.unwrap();
        }
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(dest.started.load(Relaxed), 0);
        assert_eq!(dest.written.lock().unwrap().len(), 24);
    }

    #[tokio::test]
    async fn the_file_output_appends_every_batch_and_counts_it() {
        let dir = std::env::temp_dir().join(format!("mcas-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.ndjson");
        std::fs::write(&path, b"{\"before\":1}\n").unwrap();
        let dest: Arc<dyn Destination> = Arc::new(
            File::open(
                &FileConfig {
                    path: Some(path.clone()),
                },
                Tables {
                    csl: true,
                    syslog: false,
                },
            )
            .unwrap(),
        );
        assert_eq!(dest.stream_name(Route::Csl), Some("CommonSecurityLog"));
        assert_eq!(dest.stream_name(Route::Syslog), None);
        let metrics = Arc::new(Metrics::default());
        let (tx, task) = start(dest, &metrics);
        for i in 0..3 {
            metrics.pending_rows.fetch_add(2, Relaxed);
            let data = format!("{{\"n\":{i}}}\n{{\"m\":{i}}}\n").into_bytes();
            tx.send(Batch::unpooled(Route::Csl, data, 2)).await.unwrap();
        }
        drop(tx);
        task.await.unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 7, "{text}");
        assert!(text.starts_with("{\"before\":1}\n{\"n\":0}\n"));
        assert_eq!(metrics.sent_rows.load(Relaxed), 6);
        assert_eq!(metrics.output("archive").sent_rows.load(Relaxed), 6);
        assert!(
            metrics
                .render()
                .contains("mcas_forward_output_sent_rows_total{output=\"archive\"} 6\n")
        );
        assert_eq!(metrics.pending_rows.load(Relaxed), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
