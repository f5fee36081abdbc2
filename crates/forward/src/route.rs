//! Routing: each message is parsed (syslog, then CEF) and goes to one place only:
//! - CEF → the CommonSecurityLog stream;
//! - anything else (a broken CEF header included, counted) → the Syslog stream when
//!   `output.syslog_stream` is set, else the dead-letter file.
//!
//! All parsing and mapping is done by the libraries; this module only calls them in order
//! and writes each row into its batch buffer.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::batch::{Buffers, Route};
use crate::deadletter::DeadLetter;
use crate::frames::Msg;
use crate::metrics::Metrics;

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Routed(Route),
    DeadLettered,
}

/// The parse → map → serialise chain, configured once and shared by the workers.
#[derive(Debug)]
pub(crate) struct Router {
    /// Per listener: zone for zone-less timestamps.
    parsers: Vec<mcas_syslog::ParserConfig>,
    mapper: mcas_csl::Mapper,
    collector: String,
    syslog_route: bool,
    /// Data Collector API: `TimeGenerated` is a reserved property there; rows carry the
    /// same value as `CollectedTime`, named in the `time-generated-field` header.
    rename_time_generated: bool,
    metrics: Arc<Metrics>,
}

/// The field that carries `TimeGenerated` for the Data Collector API. Same length as
/// `TimeGenerated`, so the key is renamed in place in the serialised row.
pub(crate) const COLLECTED_TIME: &str = "CollectedTime";
const TIME_GENERATED_KEY: &[u8] = b"{\"TimeGenerated\":";

impl Router {
    pub(crate) fn new(
        parsers: Vec<mcas_syslog::ParserConfig>,
        mapper: mcas_csl::Mapper,
        syslog_route: bool,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            rename_time_generated: false,
            parsers,
            mapper,
            collector: collector_host_name(),
            syslog_route,
            metrics,
        }
    }

    /// For the Data Collector output: rename `TimeGenerated` to [`COLLECTED_TIME`].
    pub(crate) fn rename_time_generated(mut self, yes: bool) -> Router {
        self.rename_time_generated = yes;
        self
    }

    /// After a row was serialised from `start`: apply the output's key rename.
    fn finish_row(&self, data: &mut [u8], start: usize) {
        if self.rename_time_generated
            && let Some(row) = data.get_mut(start..)
            && row.starts_with(TIME_GENERATED_KEY)
        {
            row[2..2 + COLLECTED_TIME.len()].copy_from_slice(COLLECTED_TIME.as_bytes());
        }
    }

    /// Map one message and append its row (and a newline) to its batch buffer, or write it
    /// to the dead-letter file.
    pub(crate) fn process(
        &self,
        listener: usize,
        msg: &Msg,
        received_at: jiff::Timestamp,
        bufs: &mut Buffers,
        dead: &DeadLetter,
    ) -> Outcome {
        if msg.truncated {
            self.metrics.truncated.fetch_add(1, Relaxed);
        }
        let default_parser;
        let parser = match self.parsers.get(listener) {
            Some(p) => p,
            None => {
                default_parser = mcas_syslog::ParserConfig::new();
                &default_parser
            }
        };
        match self.map_into(parser, &msg.data, msg.peer, received_at, bufs) {
            Ok(route) => Outcome::Routed(route),
            Err(reason) => {
                dead.unroutable(received_at, reason, msg.peer, &msg.data);
                Outcome::DeadLettered
            }
        }
    }

    /// The core: parse and map `data`, serialise the row into `bufs`. Err is the
    /// dead-letter reason.
    pub(crate) fn map_into(
        &self,
        parser: &mcas_syslog::ParserConfig,
        data: &[u8],
        peer: IpAddr,
        received_at: jiff::Timestamp,
        bufs: &mut Buffers,
    ) -> Result<Route, &'static str> {
        let m = &self.metrics;
        let mut cfg = parser.clone();
        cfg.reference_time(received_at);
        let parsed = mcas_syslog::parse_with(&cfg, data);
        m.parsed.fetch_add(1, Relaxed);
        let (host, body) = match &parsed {
            Ok(msg) => (msg.hostname(), msg.msg()),
            Err(_) => (None, data),
        };
        let peer_text;
        let computer = match host {
            Some(h) => h,
            None => {
                peer_text = peer.to_string();
                peer_text.as_str()
            }
        };
        let zone = parser.zone();
        let ctx = mcas_csl::Context::new(received_at)
            .with_computer(Some(computer))
            .with_collector_host_name(Some(&self.collector))
            .with_host_ip(Some(peer))
            .with_default_zone(Some(zone));
        match mcas_cef::parse(body) {
            Ok(event) => {
                m.cef.fetch_add(1, Relaxed);
                let mapped = self.mapper.map(&event, &ctx);
                return Ok(self.append_row(bufs, Route::Csl, |out| mapped.row.write_json(out)));
            }
            // No `CEF:` at all is plain syslog; a marker with a broken header is counted.
            Err(e) if *e.kind() == mcas_cef::ErrorKind::MissingMarker => {}
            Err(_) => {
                m.malformed_cef.fetch_add(1, Relaxed);
            }
        }
        m.non_cef.fetch_add(1, Relaxed);
        if !self.syslog_route {
            return Err("not CEF, and output.syslog_stream is not set");
        }
        let input = match &parsed {
            Ok(msg) => mcas_csl::SyslogInput {
                facility: msg.facility(),
                severity: msg.severity(),
                hostname: msg.hostname(),
                process_name: msg.app_name(),
                process_id: msg.proc_id(),
                message: msg.msg(),
                event_time: msg.timestamp(),
            },
            Err(_) => mcas_csl::SyslogInput {
                message: data,
                ..Default::default()
            },
        };
        let row = mcas_csl::map_syslog(input, &ctx);
        Ok(self.append_row(bufs, Route::Syslog, |out| row.write_json(out)))
    }

    /// Append one NDJSON line to `route`'s batch buffer: the row `write` writes, then a newline.
    fn append_row(
        &self,
        bufs: &mut Buffers,
        route: Route,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Route {
        let b = bufs.get_mut(route);
        let start = b.data.len();
        write(&mut b.data);
        self.finish_row(&mut b.data, start);
        b.data.push(b'\n');
        b.rows += 1;
        route
    }
}

/// This host's name, for CollectorHostName.
pub(crate) fn collector_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}
