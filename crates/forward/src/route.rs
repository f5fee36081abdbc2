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
    /// Its row was appended to the batch of this route.
    Routed(Route),
    /// The output's transformation dropped its row (counted, `reason="transform"`).
    Filtered,
    /// No route takes it: written to the dead-letter file.
    DeadLettered,
}

/// What became of a mapped row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Appended to the batch of this route.
    Appended(Route),
    /// Dropped by the output's transformation.
    Filtered,
}

/// A mapped row, as an [`Observer`] sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Observed<'r, 'a> {
    /// A CEF event's CommonSecurityLog row, as mapped (before any transformation).
    Csl(&'r mcas_csl::CommonSecurityLog<'a>),
    /// A plain syslog message's Syslog row.
    Syslog(&'r mcas_csl::SyslogRow<'a>),
}

/// Stage 5, observe: sees every mapped row once, with its fate, before it is appended. Alert
/// rules plug in here, so they see the rows a cost transformation drops as well. An
/// observer runs on the worker's thread, in the row's path: it must be quick and never
/// block (hand heavy work to a task of its own).
pub(crate) trait Observer: Send + Sync + std::fmt::Debug {
    fn observe(&self, row: Observed<'_, '_>, fate: Fate);
}

/// The parse → map → serialise chain, configured once and shared by the workers.
#[derive(Debug)]
pub(crate) struct Router {
    /// Per listener: zone for zone-less timestamps.
    parsers: Vec<mcas_syslog::ParserConfig>,
    mapper: mcas_csl::Mapper,
    collector: String,
    syslog_route: bool,
    /// The output's rewrite of each serialised row (the Data Collector's reserved
    /// `TimeGenerated`), from [`crate::output::finish_row`].
    finish: Option<crate::output::FinishRow>,
    /// `output.transform`, run on every CommonSecurityLog row.
    transform: Option<mcas_kql::Query>,
    /// Stage 5: every mapped row is shown to each of these.
    observers: Vec<Arc<dyn Observer>>,
    metrics: Arc<Metrics>,
}

impl Router {
    pub(crate) fn new(
        parsers: Vec<mcas_syslog::ParserConfig>,
        mapper: mcas_csl::Mapper,
        syslog_route: bool,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            finish: None,
            transform: None,
            observers: Vec::new(),
            parsers,
            mapper,
            collector: collector_host_name(),
            syslog_route,
            metrics,
        }
    }

    /// Rewrite each serialised row with the output's `finish`.
    pub(crate) fn finish_rows(mut self, finish: Option<crate::output::FinishRow>) -> Router {
        self.finish = finish;
        self
    }

    /// Run `query` on every CommonSecurityLog row (stage 4, before the append).
    pub(crate) fn with_transform(mut self, query: Option<mcas_kql::Query>) -> Router {
        self.transform = query;
        self
    }

    /// Show every mapped row to `observer` (stage 5).
    pub(crate) fn with_observer(mut self, observer: Arc<dyn Observer>) -> Router {
        self.observers.push(observer);
        self
    }

    /// Stage 5, observe.
    fn observe(&self, row: Observed<'_, '_>, fate: Fate) {
        for o in &self.observers {
            o.observe(row, fate);
        }
    }

    /// After a row was serialised from `start`: apply the output's rewrite.
    fn finish_row(&self, data: &mut [u8], start: usize) {
        if let Some(finish) = self.finish
            && let Some(row) = data.get_mut(start..)
        {
            finish(row);
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
            Ok(Fate::Appended(route)) => Outcome::Routed(route),
            Ok(Fate::Filtered) => Outcome::Filtered,
            Err(reason) => {
                dead.unroutable(received_at, reason, msg.peer, &msg.data);
                Outcome::DeadLettered
            }
        }
    }

    /// The chain, stage by stage: parse the syslog header, classify the body, map it to a
    /// row, transform or route it, show it to the observers, append the row to its route's
    /// batch buffer. Err is the dead-letter reason of a message no route takes.
    pub(crate) fn map_into(
        &self,
        parser: &mcas_syslog::ParserConfig,
        data: &[u8],
        peer: IpAddr,
        received_at: jiff::Timestamp,
        bufs: &mut Buffers,
    ) -> Result<Fate, &'static str> {
        let parsed = self.parse(parser, data, received_at);
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
        let ctx = mcas_csl::Context::new(received_at)
            .with_computer(Some(computer))
            .with_collector_host_name(Some(&self.collector))
            .with_host_ip(Some(peer))
            .with_default_zone(Some(parser.zone()));
        match self.classify(body) {
            Some(event) => {
                let mapped = self.mapper.map(&event, &ctx);
                let row = &mapped.row;
                let Some(query) = &self.transform else {
                    self.observe(Observed::Csl(row), Fate::Appended(Route::Csl));
                    self.append_row(bufs, Route::Csl, |out| row.write_json(out));
                    return Ok(Fate::Appended(Route::Csl));
                };
                // Stage 4 with a transformation: the row as the query leaves it, or no row.
                match query.run(row) {
                    Some(out) => {
                        self.observe(Observed::Csl(row), Fate::Appended(Route::Csl));
                        // `TimeGenerated` first, where the Data Collector output's in-place
                        // rename looks for it; null and empty values left out.
                        self.append_row(bufs, Route::Csl, |buf| {
                            out.write_json_compact(Some("TimeGenerated"), buf)
                        });
                        Ok(Fate::Appended(Route::Csl))
                    }
                    None => {
                        self.observe(Observed::Csl(row), Fate::Filtered);
                        self.metrics
                            .count_drop(crate::metrics::DropReason::Transform, 1);
                        Ok(Fate::Filtered)
                    }
                }
            }
            None => {
                let route = self.route_plain()?;
                let row = mcas_csl::map_syslog(syslog_input(&parsed, data), &ctx);
                self.observe(Observed::Syslog(&row), Fate::Appended(route));
                self.append_row(bufs, route, |out| row.write_json(out));
                Ok(Fate::Appended(route))
            }
        }
    }

    /// Stage 1, parse: the syslog header, with the receive time as the reference for
    /// year-less timestamps. A line that is not syslog is an Err, mapped as a raw message.
    fn parse<'a>(
        &self,
        parser: &mcas_syslog::ParserConfig,
        data: &'a [u8],
        received_at: jiff::Timestamp,
    ) -> Result<mcas_syslog::Message<'a>, mcas_syslog::ParseError> {
        let mut cfg = parser.clone();
        cfg.reference_time(received_at);
        self.metrics.parsed.fetch_add(1, Relaxed);
        mcas_syslog::parse_with(&cfg, data)
    }

    /// Stage 2, classify: the CEF event, or None for plain syslog. No `CEF:` at all is
    /// plain; a marker with a broken header is plain too, and counted.
    fn classify<'a>(&self, body: &'a [u8]) -> Option<mcas_cef::Event<'a>> {
        let m = &self.metrics;
        match mcas_cef::parse(body) {
            Ok(event) => {
                m.cef.fetch_add(1, Relaxed);
                return Some(event);
            }
            Err(e) if *e.kind() == mcas_cef::ErrorKind::MissingMarker => {}
            Err(_) => {
                m.malformed_cef.fetch_add(1, Relaxed);
            }
        }
        m.non_cef.fetch_add(1, Relaxed);
        None
    }

    /// Stage 4, route (for plain syslog; CEF always goes to CommonSecurityLog): the Syslog
    /// stream when it is configured, else no route (the reason, for the dead-letter file).
    fn route_plain(&self) -> Result<Route, &'static str> {
        if self.syslog_route {
            Ok(Route::Syslog)
        } else {
            Err("not CEF, and output.syslog_stream is not set")
        }
    }

    /// Stage 6, append: one NDJSON line to `route`'s batch buffer, the row `write` writes
    /// (with the output's key rename), then a newline.
    fn append_row(&self, bufs: &mut Buffers, route: Route, write: impl FnOnce(&mut Vec<u8>)) {
        let b = bufs.get_mut(route);
        let start = b.data.len();
        write(&mut b.data);
        self.finish_row(&mut b.data, start);
        b.data.push(b'\n');
        b.rows += 1;
    }
}

/// Stage 3 for plain syslog: the parsed header's fields, or the raw line as the message.
fn syslog_input<'a>(
    parsed: &'a Result<mcas_syslog::Message<'a>, mcas_syslog::ParseError>,
    data: &'a [u8],
) -> mcas_csl::SyslogInput<'a> {
    match parsed {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn router(syslog_route: bool) -> (Router, Arc<Metrics>) {
        let m = Arc::new(Metrics::default());
        let r = Router::new(
            vec![mcas_syslog::ParserConfig::new()],
            mcas_csl::Mapper::default(),
            syslog_route,
            m.clone(),
        );
        (r, m)
    }

    fn now() -> jiff::Timestamp {
        "2024-05-08T16:07:11Z".parse().unwrap()
    }

    #[test]
    fn classify_tells_cef_from_plain_and_counts_broken_headers() {
        let (r, m) = router(true);
        assert!(r.classify(b"CEF:0|V|P|1|100|name|5|src=10.0.0.1").is_some());
        assert!(r.classify(b"CEF:0|V|P|broken").is_none());
        assert!(r.classify(b"sshd: Accepted").is_none());
        assert_eq!(m.cef.load(Relaxed), 1);
        assert_eq!(m.malformed_cef.load(Relaxed), 1);
        assert_eq!(m.non_cef.load(Relaxed), 2);
    }

    #[test]
    fn plain_syslog_goes_to_the_syslog_stream_only_when_there_is_one() {
        assert_eq!(router(true).0.route_plain(), Ok(Route::Syslog));
        assert!(
            router(false)
                .0
                .route_plain()
                .unwrap_err()
                .contains("syslog_stream")
        );
    }

    #[test]
    fn a_line_that_is_not_syslog_is_mapped_whole_as_the_message() {
        let parsed = mcas_syslog::parse("just words".as_bytes());
        let raw: &[u8] = b"just words";
        let input = syslog_input(&parsed, raw);
        assert_eq!(input.message, raw);
        let ok = mcas_syslog::parse(b"<13>May  8 16:07:11 host app[42]: hello");
        let input = syslog_input(&ok, b"");
        assert_eq!(input.message, b"hello");
        assert_eq!(input.process_id, Some("42"));
        assert_eq!(input.hostname, Some("host"));
    }

    #[test]
    fn the_chain_appends_each_row_to_its_route() {
        let (r, m) = router(true);
        let mut bufs = Buffers::with_capacity(1 << 16);
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let p = mcas_syslog::ParserConfig::new();
        let cef = b"<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|name|5|src=10.0.0.1";
        assert_eq!(
            r.map_into(&p, cef, peer, now(), &mut bufs),
            Ok(Fate::Appended(Route::Csl))
        );
        assert_eq!(
            r.map_into(&p, b"no header at all", peer, now(), &mut bufs),
            Ok(Fate::Appended(Route::Syslog))
        );
        let csl: serde_json::Value =
            serde_json::from_slice(bufs.get(Route::Csl).data.trim_ascii_end()).unwrap();
        assert_eq!(csl["Computer"], "fw01");
        assert_eq!(csl["SourceIP"], "10.0.0.1");
        let syslog: serde_json::Value =
            serde_json::from_slice(bufs.get(Route::Syslog).data.trim_ascii_end()).unwrap();
        assert_eq!(syslog["SyslogMessage"], "no header at all");
        assert_eq!(syslog["Computer"], "10.0.0.9", "no hostname: the peer");
        assert_eq!(m.parsed.load(Relaxed), 2);
        let (none, _) = router(false);
        assert!(none.map_into(&p, b"plain", peer, now(), &mut bufs).is_err());
    }

    #[test]
    fn append_renames_time_generated_for_the_data_collector() {
        let (r, _) = router(false);
        let r = r.finish_rows(Some(crate::output::azure::rename_time_generated));
        let mut bufs = Buffers::with_capacity(1 << 16);
        r.append_row(&mut bufs, Route::Csl, |out| {
            out.extend_from_slice(br#"{"TimeGenerated":"2024-05-08T16:07:11.000Z","X":1}"#)
        });
        let b = bufs.get(Route::Csl);
        assert_eq!(b.rows, 1);
        assert_eq!(
            b.data,
            b"{\"CollectedTime\":\"2024-05-08T16:07:11.000Z\",\"X\":1}\n"
        );
    }

    /// Records what stage 5 shows it.
    #[derive(Debug, Default)]
    struct Recorder(std::sync::Mutex<Vec<(String, Fate)>>);

    impl Observer for Recorder {
        fn observe(&self, row: Observed<'_, '_>, fate: Fate) {
            let what = match row {
                Observed::Csl(r) => format!("csl {}", r.device_vendor.as_deref().unwrap_or("")),
                Observed::Syslog(r) => {
                    format!("syslog {}", r.syslog_message.as_deref().unwrap_or(""))
                }
            };
            self.0.lock().unwrap().push((what, fate));
        }
    }

    #[test]
    fn observers_see_every_mapped_row_with_its_fate_filtered_ones_too() {
        let m = Arc::new(Metrics::default());
        let schema_cols = mcas_csl::columns();
        let schema = mcas_kql::Schema::new(schema_cols.iter().map(|(n, t)| (*n, t.kql_type())));
        let q =
            mcas_kql::Query::compile(r#"source | where DeviceVendor != "Noisy""#, &schema).unwrap();
        let rec = Arc::new(Recorder::default());
        let r = Router::new(
            vec![mcas_syslog::ParserConfig::new()],
            mcas_csl::Mapper::default(),
            false,
            m.clone(),
        )
        .with_transform(Some(q))
        .with_observer(rec.clone());
        let mut bufs = Buffers::with_capacity(1 << 16);
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let p = mcas_syslog::ParserConfig::new();
        let keep = b"<134>2024-05-08T16:07:11Z fw CEF:0|Acme|P|1|100|n|5|src=10.0.0.1";
        let drop = b"<134>2024-05-08T16:07:11Z fw CEF:0|Noisy|P|1|100|n|5|src=10.0.0.1";
        assert_eq!(
            r.map_into(&p, keep, peer, now(), &mut bufs),
            Ok(Fate::Appended(Route::Csl))
        );
        assert_eq!(
            r.map_into(&p, drop, peer, now(), &mut bufs),
            Ok(Fate::Filtered)
        );
        // Unroutable (no syslog route): no row, nothing to observe.
        assert!(
            r.map_into(&p, b"plain words", peer, now(), &mut bufs)
                .is_err()
        );
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![
                ("csl Acme".to_owned(), Fate::Appended(Route::Csl)),
                ("csl Noisy".to_owned(), Fate::Filtered),
            ]
        );
        assert_eq!(bufs.get(Route::Csl).rows, 1);
        assert_eq!(m.dropped(crate::metrics::DropReason::Transform), 1);

        let rec = Arc::new(Recorder::default());
        let (r, _) = router(true);
        let r = r.with_observer(rec.clone());
        assert_eq!(
            r.map_into(
                &p,
                b"<13>May  8 16:07:11 host app: hello",
                peer,
                now(),
                &mut bufs
            ),
            Ok(Fate::Appended(Route::Syslog))
        );
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![("syslog hello".to_owned(), Fate::Appended(Route::Syslog))]
        );
    }
}
