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

    /// Make what `send` wrote durable (a local output's file: fdatasync), for the RELP
    /// sessions that answer only then. Outputs with nothing to sync (stdout, the network
    /// outputs, whose spool is synced) do nothing.
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
    })
}

/// How an output rewrites each serialised row, in place, as it is appended to its batch.
pub(crate) type FinishRow = fn(&mut [u8]);

/// The row rewrite of an output kind: the Data Collector API's reserved `TimeGenerated`.
pub(crate) fn finish_row(kind: &OutputKind) -> Option<FinishRow> {
    match kind {
        OutputKind::DataCollector(_) => Some(azure::rename_time_generated),
        OutputKind::LogsIngestion(_) | OutputKind::Stdout(_) | OutputKind::File(_) => None,
    }
}
