//! Outputs, behind one seam: every kind is a [`Destination`] built from its own variant of
//! `[output]`.
//!
//! - [`azure`]: Logs Ingestion and Data Collector, which go through the spool and a pool of
//!   senders ([`spooled`]);
//! - [`local`]: stdout and file, written as each batch closes.
//!
//! Nothing outside this module matches on the output kind to send, check or describe: the
//! pipeline asks the destination.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::batch::Route;
use crate::config::{OutputConfig, OutputKind, Table};
use crate::metrics::Metrics;

pub(crate) mod azure;
#[cfg(feature = "kafka")]
pub(crate) mod kafka;
pub(crate) mod local;
pub(crate) mod spooled;

/// Result of sending one NDJSON batch.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Rows acknowledged (2xx).
    pub(crate) delivered: usize,
    /// Rows refused for good: (row JSON, reason).
    pub(crate) rejected: Vec<(Vec<u8>, String)>,
    /// Rows still to send (a transient failure outlasted the retry budget), as NDJSON.
    pub(crate) retry: Vec<u8>,
    /// How many rows are in `retry`.
    pub(crate) retry_rows: usize,
    /// The error that stopped the retries, for logs.
    pub(crate) last_error: Option<String>,
    /// A prepared body: the bytes of the delivered requests as they went out (compressed),
    /// and their size uncompressed. Zero for NDJSON sends, whose delivered size is taken
    /// from the rows ([`Sent::delivered_bytes`]).
    pub(crate) wire_bytes: usize,
    pub(crate) raw_bytes: usize,
    /// A prepared body not delivered within the retry budget: it stays as it is, to send
    /// again (its rows are not in `retry`).
    pub(crate) keep: bool,
    /// A prepared body refused by the service that cannot be opened to narrow the refusal
    /// down (damaged on disk): why. Its rows cannot be recovered.
    pub(crate) corrupt: Option<String>,
}

impl Sent {
    /// The NDJSON bytes of the delivered rows, out of a batch of `batch_len` bytes: neither
    /// the refused rows nor those left to retry.
    pub(crate) fn delivered_bytes(&self, batch_len: usize) -> usize {
        if self.delivered == 0 {
            return 0;
        }
        let refused: usize = self.rejected.iter().map(|(row, _)| row.len() + 1).sum();
        batch_len
            .saturating_sub(refused)
            .saturating_sub(self.retry.len())
    }
}
/// What `validate` learnt from the output.
#[derive(Debug)]
pub(crate) enum CheckResult {
    /// The kind has no online check.
    Skipped,
    /// The token request failed.
    Token(mcas_loganalytics::Error),
    /// The empty batch was answered with this status and body.
    Status(u16, String),
}

/// One output: where the rows of a batch go.
pub(crate) trait Destination: Send + Sync + std::fmt::Debug + 'static {
    /// Where rows go, in one line, for `validate` and the start-up log.
    fn describe(&self) -> String;

    /// Whether batches go through the spool and the senders (network outputs), rather than
    /// being written as they close.
    fn spooled(&self) -> bool;

    /// The stream (or Log-Type) name of a route; None when the route has none here.
    fn stream_name(&self, route: Route) -> Option<&str>;

    /// Deliver the NDJSON rows of `route` (`rows` of them). A network output always
    /// answers with what became of each row; a local output fails with the write's error.
    fn send<'a>(
        &'a self,
        route: Route,
        ndjson: &'a [u8],
        rows: usize,
    ) -> BoxFuture<'a, anyhow::Result<Sent>>;

    /// Pack a closed batch's NDJSON rows into the request bodies its spool file holds
    /// (called on the worker that closed the batch, so compression runs on every core).
    /// None: the file holds the NDJSON as one body, packed at send time.
    fn prepare(&self, route: Route, ndjson: &[u8]) -> Option<Vec<Part>> {
        let _ = (route, ndjson);
        None
    }

    /// Deliver a body that [`Destination::prepare`] built, as it is. The default opens it
    /// and sends its rows.
    fn send_prepared<'a>(
        &'a self,
        route: Route,
        body: mcas_loganalytics::PreparedBody,
    ) -> BoxFuture<'a, anyhow::Result<Sent>> {
        Box::pin(async move {
            let rows = body.rows();
            match body.unpack(mcas_loganalytics::batch::LOGS_INGESTION_MAX_BODY) {
                Ok(ndjson) => self.send(route, &ndjson, rows).await,
                Err(why) => Ok(Sent {
                    corrupt: Some(why),
                    ..Sent::default()
                }),
            }
        })
    }

    /// Make what `send` wrote durable (a local output's file: fdatasync), for the RELP
    /// sessions that answer only then. Outputs with nothing to sync (stdout, the network
    /// outputs, whose spool is synced) do nothing. A local output's `send` and `sync` run
    /// on its own thread (`local::run_local`) and may block.
    fn sync(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// The online check of `validate`.
    fn check(&self) -> BoxFuture<'_, anyhow::Result<CheckResult>> {
        Box::pin(async { Ok(CheckResult::Skipped) })
    }

    /// A spooled batch was delivered and its file removed; `spool_empty` after it.
    fn delivered(&self, spool_empty: bool) {
        let _ = spool_empty;
    }
}

/// A spooled output's destination, which a reload replaces (new credentials, endpoint or
/// stream): each send takes the one current when it starts; the spool stays.
#[derive(Debug, Clone)]
pub(crate) struct DestinationCell(Arc<std::sync::RwLock<Arc<dyn Destination>>>);

impl DestinationCell {
    pub(crate) fn new(d: Arc<dyn Destination>) -> DestinationCell {
        DestinationCell(Arc::new(std::sync::RwLock::new(d)))
    }

    pub(crate) fn current(&self) -> Arc<dyn Destination> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set(&self, d: Arc<dyn Destination>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = d;
    }
}

/// One request body of a spool file.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) kind: mcas_spool::BodyKind,
    pub(crate) rows: usize,
    /// Its size uncompressed.
    pub(crate) raw_len: usize,
    /// The bytes as stored and sent.
    pub(crate) data: bytes::Bytes,
}

impl Part {
    /// NDJSON rows, sent through the row path.
    pub(crate) fn ndjson(data: bytes::Bytes, rows: usize) -> Part {
        Part {
            kind: mcas_spool::BodyKind::Ndjson,
            rows,
            raw_len: data.len(),
            data,
        }
    }

    /// The parts of a prepared set of bodies: the bodies, then the rows none can hold.
    pub(crate) fn of_prepared(p: mcas_loganalytics::Prepared) -> Vec<Part> {
        let mut parts: Vec<Part> = p
            .bodies
            .into_iter()
            .map(|b| Part {
                kind: if b.is_gzipped() {
                    mcas_spool::BodyKind::GzipArray
                } else {
                    mcas_spool::BodyKind::Array
                },
                rows: b.rows(),
                raw_len: b.raw_len(),
                data: b.bytes().clone(),
            })
            .collect();
        if p.unpacked_rows > 0 {
            parts.push(Part::ndjson(p.unpacked.into(), p.unpacked_rows));
        }
        parts
    }

    /// A body of a spool file as it is stored: `file` is the whole file `b` points into.
    pub(crate) fn stored(b: &mcas_spool::Body<'_>, file: &bytes::Bytes) -> Part {
        Part {
            kind: b.kind,
            rows: b.rows as usize,
            raw_len: b.raw_len as usize,
            data: file.slice_ref(b.data),
        }
    }

    fn as_body(&self) -> mcas_spool::Body<'_> {
        mcas_spool::Body {
            kind: self.kind,
            rows: u32::try_from(self.rows).unwrap_or(u32::MAX),
            raw_len: u32::try_from(self.raw_len).unwrap_or(u32::MAX),
            data: &self.data,
        }
    }
}

/// The spool file of `parts`, for output `name`'s `route`.
pub(crate) fn spool_file(name: &str, route: Route, parts: &[Part]) -> Vec<u8> {
    let bodies: Vec<mcas_spool::Body<'_>> = parts.iter().map(Part::as_body).collect();
    mcas_spool::encode(name, route.as_str(), &bodies)
}

/// Turns a spooled output's closed batches into their spool files.
#[derive(Debug, Clone)]
pub(crate) struct Preparer {
    name: Arc<str>,
    dest: DestinationCell,
}

impl Preparer {
    pub(crate) fn new(name: &str, dest: DestinationCell) -> Preparer {
        Preparer {
            name: name.into(),
            dest,
        }
    }

    /// Replace `batch`'s NDJSON with its spool file (once); the NDJSON buffer goes back
    /// to its pool.
    pub(crate) fn prepare(&self, batch: &mut crate::batch::Batch) {
        if batch.prepared {
            return;
        }
        let parts = self
            .dest
            .current()
            .prepare(batch.route, &batch.data)
            .unwrap_or_else(|| {
                vec![Part::ndjson(
                    bytes::Bytes::copy_from_slice(&batch.data),
                    batch.rows,
                )]
            });
        let file = spool_file(&self.name, batch.route, &parts);
        let ndjson = std::mem::replace(&mut batch.data, file);
        if let Some(pool) = &batch.pool {
            pool.put(ndjson);
        }
        batch.prepared = true;
    }
}

/// Where a worker hands an output's closed batches.
#[derive(Debug, Clone)]
pub(crate) struct OutputTx {
    pub(crate) tx: tokio::sync::mpsc::Sender<crate::batch::Batch>,
    /// A spooled output's: batches become spool files on the worker.
    pub(crate) prepare: Option<Preparer>,
}

/// The route whose stream is `name` at `dest`.
pub(crate) fn route_of(dest: &dyn Destination, name: &str) -> Option<Route> {
    Route::ALL
        .into_iter()
        .find(|&r| dest.stream_name(r) == Some(name))
}

/// The stream (or Log-Type) an output sends each route's rows to; None for a route it does
/// not take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteNames<'a> {
    pub(crate) csl: Option<&'a str>,
    pub(crate) syslog: Option<&'a str>,
}

impl<'a> RouteNames<'a> {
    /// An output of `table` whose own stream is `stream`: a CommonSecurityLog output sends
    /// Syslog rows to its `syslog_stream`, when it has one.
    fn of(cfg: &'a OutputConfig, stream: &'a str) -> RouteNames<'a> {
        match cfg.table {
            Table::CommonSecurityLog => RouteNames {
                csl: Some(stream),
                syslog: cfg.syslog_stream.as_deref(),
            },
            Table::Syslog => RouteNames {
                csl: None,
                syslog: Some(stream),
            },
            // Alert rows travel as the output's own rows, in the CommonSecurityLog slot.
            Table::Alerts => RouteNames {
                csl: Some(stream),
                syslog: None,
            },
        }
    }
}

/// Build the destination of one `[output]`.
pub(crate) fn build(
    cfg: &OutputConfig,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Arc<dyn Destination>> {
    let local = RouteNames::of(cfg, "");
    let tables = local::Tables {
        csl: local.csl.is_some(),
        syslog: local.syslog.is_some(),
    };
    let out = metrics.output(cfg.name());
    Ok(match &cfg.kind {
        OutputKind::LogsIngestion(o) => Arc::new(azure::LogsIngestion::new(
            o,
            RouteNames::of(cfg, &o.stream),
            metrics,
            out,
        )?),
        OutputKind::DataCollector(o) => Arc::new(azure::DataCollector::new(
            o,
            RouteNames::of(cfg, &o.log_type),
            metrics,
            out,
        )?),
        OutputKind::Stdout(_) => Arc::new(local::Stdout::new(tables)),
        OutputKind::File(o) => Arc::new(local::File::open(o, tables)?),
        #[cfg(feature = "kafka")]
        OutputKind::Kafka(o) => Arc::new(kafka::Kafka::new(
            o,
            RouteNames::of(cfg, &o.topic),
            metrics,
        )?),
        #[cfg(not(feature = "kafka"))]
        OutputKind::Kafka(_) => anyhow::bail!(
            "{}: this mcas-forward was built without Kafka support; build it with `--features kafka`",
            cfg.key()
        ),
    })
}

/// How an output rewrites each serialised row, in place, as it is appended to its batch.
pub(crate) type FinishRow = fn(&mut [u8]);

/// The row rewrite of an output kind: the Data Collector API's reserved `TimeGenerated`.
pub(crate) fn finish_row(kind: &OutputKind) -> Option<FinishRow> {
    match kind {
        OutputKind::DataCollector(_) => Some(azure::rename_time_generated),
        OutputKind::LogsIngestion(_)
        | OutputKind::Stdout(_)
        | OutputKind::File(_)
        | OutputKind::Kafka(_) => None,
    }
}
