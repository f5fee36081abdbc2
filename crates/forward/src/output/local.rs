//! The local outputs: JSON lines on stdout or appended to a file, written as each batch
//! closes (no spool: a failed write stops the forwarder, which says why).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::{Destination, Sent};
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

/// Write batches to a local destination as they come; returns when the channel closes, or
/// with the first write error (stdout closed by a pipe reader that went away, a full disk).
pub(crate) async fn run_local(
    dest: Arc<dyn Destination>,
    mut rx: mpsc::Receiver<Batch>,
    metrics: Arc<Metrics>,
    out: Arc<OutputMetrics>,
) -> anyhow::Result<()> {
    let mut acks = Vec::new();
    while let Some(mut b) = rx.recv().await {
        // Write every batch already queued, then sync once for all of them: the RELP
        // sessions waiting on their rows share one fdatasync (group commit).
        loop {
            dest.send(b.route, &b.data, b.rows)
                .await
                .context("cannot write the output")?;
            acks.append(&mut b.acks);
            metrics.pending_rows.fetch_sub(b.rows as u64, Relaxed);
            out.delivered(&metrics, b.rows as u64, b.data.len() as u64);
            match rx.try_recv() {
                Ok(next) => b = next,
                Err(_) => break,
            }
        }
        if !acks.is_empty() {
            // A RELP session answers these rows once they are on disk.
            dest.sync().await.context("cannot sync the output")?;
            crate::ack::confirm_all(std::mem::take(&mut acks));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(run_local(
            dest,
            rx,
            metrics.clone(),
            metrics.output("archive"),
        ));
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
