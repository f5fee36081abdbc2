//! Routing: each message is parsed (syslog, then CEF), mapped to one row (CommonSecurityLog
//! for CEF, Syslog for anything else, a broken CEF header included, counted), and that row
//! goes to every output that takes it:
//! - an output takes the rows of its table (`table`, CommonSecurityLog by default), and a
//!   CommonSecurityLog output with `syslog_stream` takes Syslog rows too, as they are;
//! - its `where`, when it has one, must keep the row;
//! - its `transform` then shapes the row, or drops it (counted).
//!
//! A row no output takes is unmatched: dead-lettered (as the message received) or dropped and
//! counted, as `[routing] unmatched` says. All parsing and mapping is done by the libraries;
//! this module only calls them in order and writes each row into its batch buffers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub(crate) use crate::batch::Fate;
use crate::batch::{Buffers, Route};
use crate::config::Unmatched;
use crate::deadletter::DeadLetter;
use crate::frames::Msg;
use crate::metrics::{DropReason, Metrics};

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Its row was appended to at least one output's batch ([`Buffers::fates`] says which).
    Routed,
    /// The outputs that took its row all dropped it in their transformation (counted,
    /// `reason="transform"`).
    Filtered,
    /// No output takes it, and `routing.unmatched = "drop"` (counted, `reason="unmatched"`).
    Unmatched,
    /// No output takes it: written to the dead-letter file.
    DeadLettered,
}

/// A mapped row, as an [`Observer`] sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Observed<'r, 'a> {
    /// A CEF event's CommonSecurityLog row, as mapped (before any transformation).
    Csl(&'r mcas_csl::CommonSecurityLog<'a>),
    /// A plain syslog message's Syslog row.
    Syslog(&'r mcas_csl::SyslogRow<'a>),
}

/// Stage 5, observe: sees every mapped row once, with its fate at each output (in output
/// order), before the next row is mapped. Alert rules plug in here, so they see the rows a
/// cost filter drops as well. An observer runs on the worker's thread, in the row's path:
/// it must be quick and never block (hand heavy work to a task of its own).
pub(crate) trait Observer: Send + Sync + std::fmt::Debug {
    fn observe(&self, row: Observed<'_, '_>, fates: &[Fate]);
}

/// One output, as the chain sees it.
#[derive(Debug)]
pub(crate) struct OutputRoute {
    /// The table whose rows it takes, and which its `where` and `transform` see.
    table: Route,
    /// A CommonSecurityLog output that takes Syslog rows too (`syslog_stream`), as they are.
    also_syslog: bool,
    /// False for an output of the alert rules' alert rows (`table = "alerts"`): it takes no
    /// mapped row; the rules send it theirs.
    takes_rows: bool,
    filter: Option<mcas_kql::Query>,
    transform: Option<mcas_kql::Query>,
    /// The output's rewrite of each serialised row (the Data Collector's reserved
    /// `TimeGenerated`), from [`crate::output::finish_row`].
    finish: Option<crate::output::FinishRow>,
    /// The output's own series (rows its transformation drops).
    counted: Option<Arc<crate::metrics::OutputMetrics>>,
}

impl OutputRoute {
    /// Count this output's filtered rows in its own series too.
    pub(crate) fn counted(mut self, out: Arc<crate::metrics::OutputMetrics>) -> OutputRoute {
        self.counted = Some(out);
        self
    }

    /// An output taking the rows of `table` (and Syslog rows too, with `also_syslog`).
    pub(crate) fn new(table: Route, also_syslog: bool) -> OutputRoute {
        OutputRoute {
            table,
            also_syslog: also_syslog && table == Route::Csl,
            takes_rows: true,
            filter: None,
            transform: None,
            finish: None,
            counted: None,
        }
    }

    /// An output of alert rows (`table = "alerts"`): no mapped row goes to it.
    pub(crate) fn alerts() -> OutputRoute {
        OutputRoute {
            takes_rows: false,
            ..OutputRoute::new(Route::Csl, false)
        }
    }

    /// Take only the rows `filter` (a `source | where …` query) keeps.
    pub(crate) fn with_filter(mut self, filter: Option<mcas_kql::Query>) -> OutputRoute {
        self.filter = filter;
        self
    }

    /// Run `query` on every row of the output's table.
    pub(crate) fn with_transform(mut self, query: Option<mcas_kql::Query>) -> OutputRoute {
        self.transform = query;
        self
    }

    /// Rewrite each serialised row with `finish`.
    pub(crate) fn finish_rows(mut self, finish: Option<crate::output::FinishRow>) -> OutputRoute {
        self.finish = finish;
        self
    }
}

/// The chain, configured once and shared by the workers.
#[derive(Debug)]
pub(crate) struct Router {
    /// Per listener: zone for zone-less timestamps.
    parsers: Vec<mcas_syslog::ParserConfig>,
    mapper: mcas_csl::Mapper,
    collector: String,
    outputs: Vec<OutputRoute>,
    unmatched: Unmatched,
    /// Stage 5: every mapped row is shown to each of these.
    observers: Vec<Arc<dyn Observer>>,
    metrics: Arc<Metrics>,
}

impl Router {
    pub(crate) fn new(
        parsers: Vec<mcas_syslog::ParserConfig>,
        mapper: mcas_csl::Mapper,
        outputs: Vec<OutputRoute>,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            parsers,
            mapper,
            collector: collector_host_name(),
            outputs,
            unmatched: Unmatched::DeadLetter,
            observers: Vec::new(),
            metrics,
        }
    }

    /// What happens to rows no output takes.
    pub(crate) fn unmatched(mut self, unmatched: Unmatched) -> Router {
        self.unmatched = unmatched;
        self
    }

    /// Show every mapped row to `observer` (stage 5).
    pub(crate) fn with_observer(mut self, observer: Arc<dyn Observer>) -> Router {
        self.observers.push(observer);
        self
    }

    /// How many outputs rows are routed to.
    pub(crate) fn outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Map one message and append its row (and a newline) to the batch buffer of every
    /// output that takes it, or write it to the dead-letter file.
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
            Ok(()) => {
                let fates = bufs.fates();
                if fates.iter().any(|f| matches!(f, Fate::Appended(_))) {
                    Outcome::Routed
                } else if fates.contains(&Fate::Filtered) {
                    Outcome::Filtered
                } else {
                    Outcome::Unmatched
                }
            }
            Err(reason) => {
                dead.unroutable(received_at, reason, msg.peer, &msg.data);
                Outcome::DeadLettered
            }
        }
    }

    /// Append a row a collector already mapped (a Kafka record it marked) to every output
    /// of the row's table. The collector ran the chain (`where`, `transform`, rules): the
    /// row is taken as it is. A record that is not one JSON object on one line is
    /// dead-lettered, as is a row no output here takes.
    pub(crate) fn process_row(
        &self,
        route: Route,
        msg: &Msg,
        received_at: jiff::Timestamp,
        bufs: &mut Buffers,
        dead: &DeadLetter,
    ) -> Outcome {
        let row = msg.data.trim_ascii();
        let one_object = row.len() >= 2
            && row.first() == Some(&b'{')
            && row.last() == Some(&b'}')
            && memchr::memchr2(b'\n', b'\r', row).is_none();
        let fates = bufs.fates_mut();
        fates.clear();
        if !one_object {
            fates.resize(self.outputs.len(), Fate::Skipped);
            dead.unroutable(received_at, MAPPED_NOT_A_ROW, msg.peer, &msg.data);
            return Outcome::DeadLettered;
        }
        for (i, o) in self.outputs.iter().enumerate() {
            let takes =
                (o.table == route && o.takes_rows) || (route == Route::Syslog && o.also_syslog);
            let fate = if takes {
                self.append_row(bufs, i, route, o.finish, |out| out.extend_from_slice(row));
                Fate::Appended(route)
            } else {
                Fate::Skipped
            };
            bufs.fates_mut().push(fate);
        }
        if bufs.fates().iter().all(|f| *f == Fate::Skipped) {
            return match self.no_output(bufs, UNMATCHED) {
                Ok(()) => Outcome::Unmatched,
                Err(reason) => {
                    dead.unroutable(received_at, reason, msg.peer, &msg.data);
                    Outcome::DeadLettered
                }
            };
        }
        Outcome::Routed
    }

    /// The chain, stage by stage: parse the syslog header, classify the body, map it to a
    /// row, route it to the outputs (each output's `where`, then its `transform`), show it
    /// to the observers, append it to the batch buffers of the outputs that take it. The
    /// fate of the row at each output is left in [`Buffers::fates`]. Err is the dead-letter
    /// reason of a message no output takes (under `routing.unmatched = "dead-letter"`).
    pub(crate) fn map_into(
        &self,
        parser: &mcas_syslog::ParserConfig,
        data: &[u8],
        peer: IpAddr,
        received_at: jiff::Timestamp,
        bufs: &mut Buffers,
    ) -> Result<(), &'static str> {
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
        bufs.fates_mut().clear();
        match self.classify(body) {
            Some(event) => {
                let mapped = self.mapper.map(&event, &ctx);
                let row = &mapped.row;
                for (i, o) in self.outputs.iter().enumerate() {
                    let fate = if o.table == Route::Csl && o.takes_rows {
                        self.route_row(bufs, i, o, Route::Csl, row, |out| row.write_json(out))
                    } else {
                        Fate::Skipped
                    };
                    bufs.fates_mut().push(fate);
                }
                self.observe(Observed::Csl(row), bufs.fates());
            }
            None => {
                if !self
                    .outputs
                    .iter()
                    .any(|o| (o.table == Route::Syslog && o.takes_rows) || o.also_syslog)
                {
                    // Nothing takes Syslog rows: no need to map one.
                    return self.no_output(bufs, UNROUTABLE_PLAIN);
                }
                let row = mcas_csl::map_syslog(syslog_input(&parsed, data), &ctx);
                for (i, o) in self.outputs.iter().enumerate() {
                    let fate = if o.table == Route::Syslog && o.takes_rows {
                        self.route_row(bufs, i, o, Route::Syslog, &row, |out| row.write_json(out))
                    } else if o.also_syslog {
                        self.append_row(bufs, i, Route::Syslog, o.finish, |out| {
                            row.write_json(out)
                        });
                        Fate::Appended(Route::Syslog)
                    } else {
                        Fate::Skipped
                    };
                    bufs.fates_mut().push(fate);
                }
                self.observe(Observed::Syslog(&row), bufs.fates());
            }
        }
        if bufs.fates().iter().all(|f| *f == Fate::Skipped) {
            return self.no_output(bufs, UNMATCHED);
        }
        Ok(())
    }

    /// Stage 4 at one output of the row's table: its `where`, then its `transform`, then
    /// (stage 6) the append; `write` writes the row as mapped.
    fn route_row(
        &self,
        bufs: &mut Buffers,
        i: usize,
        o: &OutputRoute,
        route: Route,
        row: &dyn mcas_kql::Row,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Fate {
        if let Some(f) = &o.filter
            && !f.passes(row)
        {
            return Fate::Skipped;
        }
        let Some(query) = &o.transform else {
            self.append_row(bufs, i, route, o.finish, write);
            return Fate::Appended(route);
        };
        // A query that only filters and drops columns lets the row write itself.
        match query.transform(row) {
            Some(out) => {
                // `TimeGenerated` first, where the Data Collector output's in-place rename
                // looks for it; null and empty values left out.
                self.append_row(bufs, i, route, o.finish, |buf| {
                    out.write_json_compact(Some("TimeGenerated"), buf)
                });
                Fate::Appended(route)
            }
            None => {
                self.metrics.count_drop(DropReason::Transform, 1);
                if let Some(c) = &o.counted {
                    c.filtered_rows.fetch_add(1, Relaxed);
                }
                Fate::Filtered
            }
        }
    }

    /// A row no output takes: the dead-letter reason, or dropped and counted.
    fn no_output(&self, bufs: &mut Buffers, reason: &'static str) -> Result<(), &'static str> {
        bufs.fates_mut().clear();
        bufs.fates_mut().resize(self.outputs.len(), Fate::Skipped);
        match self.unmatched {
            Unmatched::DeadLetter => Err(reason),
            Unmatched::Drop => {
                self.metrics.count_drop(DropReason::Unmatched, 1);
                Ok(())
            }
        }
    }

    /// Stage 5, observe.
    fn observe(&self, row: Observed<'_, '_>, fates: &[Fate]) {
        for o in &self.observers {
            o.observe(row, fates);
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

    /// Stage 6, append: one NDJSON line to `output`'s `route` batch buffer, the row `write`
    /// writes (with the output's rewrite), then a newline.
    fn append_row(
        &self,
        bufs: &mut Buffers,
        output: usize,
        route: Route,
        finish: Option<crate::output::FinishRow>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let b = bufs.get_mut(output, route);
        let start = b.data.len();
        write(&mut b.data);
        if let Some(finish) = finish
            && let Some(row) = b.data.get_mut(start..)
        {
            finish(row);
        }
        b.data.push(b'\n');
        b.rows += 1;
    }
}

/// Build the router of a configuration: a parser per listener, an [`OutputRoute`] per
/// output (its table, `where`, `transform`, row rewrite), `[mapping]` and `[routing]`. Used by
/// `run`, each reload, `map` and `replay-dead-letter`.
pub(crate) fn from_config(
    cfg: &crate::config::Config,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Router> {
    let mut parsers = Vec::with_capacity(cfg.listen.len());
    for l in &cfg.listen {
        let mut p = mcas_syslog::ParserConfig::new();
        if let Some(tz) = &l.timezone {
            p.default_zone(crate::config::parse_timezone(tz)?);
        }
        parsers.push(p);
    }
    let mut outputs = Vec::with_capacity(cfg.outputs.len());
    for o in &cfg.outputs {
        let q = cfg.queries(o)?;
        let table = match o.table {
            crate::config::Table::CommonSecurityLog => crate::batch::Route::Csl,
            crate::config::Table::Syslog => crate::batch::Route::Syslog,
            crate::config::Table::Alerts => {
                outputs.push(OutputRoute::alerts().counted(metrics.output(o.name())));
                continue;
            }
        };
        outputs.push(
            OutputRoute::new(table, o.syslog_stream.is_some())
                .counted(metrics.output(o.name()))
                .with_filter(q.filter)
                .with_transform(q.transform)
                .finish_rows(crate::output::finish_row(&o.kind)),
        );
    }
    Ok(Router::new(parsers, cfg.mapper(), outputs, metrics).unmatched(cfg.routing.unmatched))
}

/// The dead-letter reason of a plain syslog message when no output takes Syslog rows.
pub(crate) const UNROUTABLE_PLAIN: &str = "not CEF, and output.syslog_stream is not set";
/// The dead-letter reason of a row whose table some output takes, but no `where` matched.
/// The dead-letter reason of a record marked as a mapped row that is not one.
pub(crate) const MAPPED_NOT_A_ROW: &str =
    "a record marked as a mapped row is not one JSON object on one line";

pub(crate) const UNMATCHED: &str = "no output takes this row (no `where` matched)";

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

    /// One output taking CommonSecurityLog rows, and Syslog rows with `syslog_route`.
    fn router(syslog_route: bool) -> (Router, Arc<Metrics>) {
        routed(vec![OutputRoute::new(Route::Csl, syslog_route)])
    }

    fn routed(outputs: Vec<OutputRoute>) -> (Router, Arc<Metrics>) {
        let m = Arc::new(Metrics::default());
        let r = Router::new(
            vec![mcas_syslog::ParserConfig::new()],
            mcas_csl::Mapper::default(),
            outputs,
            m.clone(),
        );
        (r, m)
    }

    fn query(table: Route, text: &str) -> Option<mcas_kql::Query> {
        let cols = match table {
            Route::Csl => mcas_csl::columns(),
            Route::Syslog => mcas_csl::syslog_columns(),
        };
        let schema = mcas_kql::Schema::new(cols.iter().map(|(n, t)| (*n, t.kql_type())));
        Some(mcas_kql::Query::compile(text, &schema).unwrap())
    }

    fn now() -> jiff::Timestamp {
        "2024-05-08T16:07:11Z".parse().unwrap()
    }

    fn peer() -> IpAddr {
        "10.0.0.9".parse().unwrap()
    }

    fn cef(vendor: &str) -> Vec<u8> {
        format!("<134>2024-05-08T16:07:11Z fw01 CEF:0|{vendor}|P|1|100|n|5|src=10.0.0.1")
            .into_bytes()
    }

    fn rows(bufs: &Buffers, output: usize, route: Route) -> Vec<serde_json::Value> {
        bufs.get(output, route)
            .data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
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
    fn plain_syslog_is_dead_lettered_when_no_output_takes_syslog_rows() {
        let (r, _) = router(false);
        let mut bufs = Buffers::with_capacity(1 << 16, 1);
        let p = mcas_syslog::ParserConfig::new();
        assert_eq!(
            r.map_into(
                &p,
                b"<13>May  8 16:07:11 host app: hi",
                peer(),
                now(),
                &mut bufs
            ),
            Err(UNROUTABLE_PLAIN)
        );
        assert!(UNROUTABLE_PLAIN.contains("syslog_stream"));
        assert_eq!(bufs.fates(), [Fate::Skipped]);
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
        let mut bufs = Buffers::with_capacity(1 << 16, 1);
        let p = mcas_syslog::ParserConfig::new();
        let cef = b"<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|name|5|src=10.0.0.1";
        assert_eq!(r.map_into(&p, cef, peer(), now(), &mut bufs), Ok(()));
        assert_eq!(bufs.fates(), [Fate::Appended(Route::Csl)]);
        assert_eq!(
            r.map_into(&p, b"no header at all", peer(), now(), &mut bufs),
            Ok(())
        );
        assert_eq!(bufs.fates(), [Fate::Appended(Route::Syslog)]);
        let csl = &rows(&bufs, 0, Route::Csl)[0];
        assert_eq!(csl["Computer"], "fw01");
        assert_eq!(csl["SourceIP"], "10.0.0.1");
        let syslog = &rows(&bufs, 0, Route::Syslog)[0];
        assert_eq!(syslog["SyslogMessage"], "no header at all");
        assert_eq!(syslog["Computer"], "10.0.0.9", "no hostname: the peer");
        assert_eq!(m.parsed.load(Relaxed), 2);
        let (none, _) = router(false);
        assert!(
            none.map_into(&p, b"plain", peer(), now(), &mut bufs)
                .is_err()
        );
    }

    #[test]
    fn append_renames_time_generated_for_the_data_collector() {
        let (r, _) = router(false);
        let mut bufs = Buffers::with_capacity(1 << 16, 1);
        r.append_row(
            &mut bufs,
            0,
            Route::Csl,
            Some(crate::output::azure::rename_time_generated),
            |out| out.extend_from_slice(br#"{"TimeGenerated":"2024-05-08T16:07:11.000Z","X":1}"#),
        );
        let b = bufs.get(0, Route::Csl);
        assert_eq!(b.rows, 1);
        assert_eq!(
            b.data,
            b"{\"CollectedTime\":\"2024-05-08T16:07:11.000Z\",\"X\":1}\n"
        );
    }

    #[test]
    fn a_row_goes_to_every_output_whose_where_keeps_it() {
        // soc: two vendors; fortinet: one, and a transformation; archive: everything;
        // syslog: the Syslog rows of one facility.
        let (r, m) = routed(vec![
            OutputRoute::new(Route::Csl, false).with_filter(query(
                Route::Csl,
                r#"source | where DeviceVendor in ("Palo Alto Networks", "Fortinet")"#,
            )),
            OutputRoute::new(Route::Csl, false)
                .with_filter(query(
                    Route::Csl,
                    r#"source | where DeviceVendor == "Fortinet""#,
                ))
                .with_transform(query(
                    Route::Csl,
                    "source | where LogSeverity != \"1\" | project DeviceVendor, LogSeverity",
                )),
            OutputRoute::new(Route::Csl, false),
            OutputRoute::new(Route::Syslog, false)
                .with_filter(query(Route::Syslog, r#"source | where Facility == "auth""#)),
        ]);
        let mut bufs = Buffers::with_capacity(1 << 16, r.outputs());
        let p = mcas_syslog::ParserConfig::new();
        let mut go = |line: &[u8]| {
            let res = r.map_into(&p, line, peer(), now(), &mut bufs);
            (res, bufs.fates().to_vec())
        };
        use Fate::{Appended, Filtered, Skipped};
        let csl = Appended(Route::Csl);
        assert_eq!(
            go(&cef("Palo Alto Networks")),
            (Ok(()), vec![csl, Skipped, csl, Skipped])
        );
        assert_eq!(go(&cef("Fortinet")), (Ok(()), vec![csl, csl, csl, Skipped]));
        let low = b"<134>2024-05-08T16:07:11Z fw CEF:0|Fortinet|P|1|100|n|1|src=10.0.0.1";
        assert_eq!(go(low), (Ok(()), vec![csl, Filtered, csl, Skipped]));
        assert_eq!(
            go(&cef("Acme")),
            (Ok(()), vec![Skipped, Skipped, csl, Skipped])
        );
        let auth = b"<38>May  8 16:07:11 host sshd[1]: Accepted password";
        let syslog = Appended(Route::Syslog);
        assert_eq!(go(auth), (Ok(()), vec![Skipped, Skipped, Skipped, syslog]));
        // Syslog rows of another facility: the only Syslog output does not take them.
        assert_eq!(
            go(b"<13>May  8 16:07:11 host app: hello"),
            (Err(UNMATCHED), vec![Skipped; 4])
        );
        assert_eq!(rows(&bufs, 0, Route::Csl).len(), 3);
        let forti = rows(&bufs, 1, Route::Csl);
        assert_eq!(forti.len(), 1);
        assert_eq!(forti[0]["DeviceVendor"], "Fortinet");
        assert!(forti[0].get("SourceIP").is_none(), "projected away");
        assert_eq!(rows(&bufs, 2, Route::Csl).len(), 4);
        assert_eq!(rows(&bufs, 3, Route::Syslog)[0]["Facility"], "auth");
        assert_eq!(m.dropped(DropReason::Transform), 1);
    }

    #[test]
    fn unmatched_rows_are_dead_lettered_or_dropped_and_counted() {
        let only_acme = || {
            vec![OutputRoute::new(Route::Csl, false).with_filter(query(
                Route::Csl,
                r#"source | where DeviceVendor == "Acme""#,
            ))]
        };
        let p = mcas_syslog::ParserConfig::new();
        let mut bufs = Buffers::with_capacity(1 << 16, 1);
        let (r, _) = routed(only_acme());
        assert_eq!(
            r.map_into(&p, &cef("Other"), peer(), now(), &mut bufs),
            Err(UNMATCHED)
        );
        let (r, m) = routed(only_acme());
        let r = r.unmatched(Unmatched::Drop);
        assert_eq!(
            r.map_into(&p, &cef("Other"), peer(), now(), &mut bufs),
            Ok(())
        );
        assert_eq!(r.map_into(&p, b"plain", peer(), now(), &mut bufs), Ok(()));
        assert_eq!(bufs.fates(), [Fate::Skipped]);
        assert_eq!(m.dropped(DropReason::Unmatched), 2);
        assert_eq!(bufs.get(0, Route::Csl).rows, 0);
    }

    /// Records what stage 5 shows it.
    #[derive(Debug, Default)]
    struct Recorder(std::sync::Mutex<Vec<(String, Vec<Fate>)>>);

    impl Observer for Recorder {
        fn observe(&self, row: Observed<'_, '_>, fates: &[Fate]) {
            let what = match row {
                Observed::Csl(r) => format!("csl {}", r.device_vendor.as_deref().unwrap_or("")),
                Observed::Syslog(r) => {
                    format!("syslog {}", r.syslog_message.as_deref().unwrap_or(""))
                }
            };
            self.0.lock().unwrap().push((what, fates.to_vec()));
        }
    }

    #[test]
    fn observers_see_every_mapped_row_with_its_fates_filtered_ones_too() {
        let rec = Arc::new(Recorder::default());
        let (r, m) = routed(vec![OutputRoute::new(Route::Csl, true).with_transform(
            query(Route::Csl, r#"source | where DeviceVendor != "Noisy""#),
        )]);
        let r = r.with_observer(rec.clone());
        let mut bufs = Buffers::with_capacity(1 << 16, 1);
        let p = mcas_syslog::ParserConfig::new();
        assert_eq!(
            r.map_into(&p, &cef("Acme"), peer(), now(), &mut bufs),
            Ok(())
        );
        assert_eq!(
            r.map_into(&p, &cef("Noisy"), peer(), now(), &mut bufs),
            Ok(())
        );
        assert_eq!(
            r.map_into(
                &p,
                b"<13>May  8 16:07:11 host app: hello",
                peer(),
                now(),
                &mut bufs
            ),
            Ok(())
        );
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![
                ("csl Acme".to_owned(), vec![Fate::Appended(Route::Csl)]),
                ("csl Noisy".to_owned(), vec![Fate::Filtered]),
                (
                    "syslog hello".to_owned(),
                    vec![Fate::Appended(Route::Syslog)]
                ),
            ]
        );
        assert_eq!(bufs.get(0, Route::Csl).rows, 1);
        assert_eq!(m.dropped(DropReason::Transform), 1);
    }
}
