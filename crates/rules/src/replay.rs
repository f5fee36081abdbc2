//! `rules test`: raw syslog/CEF lines replayed through the rules in virtual time.

use std::io::BufRead;

use crate::alert::Alert;
use crate::check::LoadedRule;
use crate::engine::{Engine, Evaluation, Limits, RuleStats};
use crate::query::Table;

/// The longest line a replay reads; longer lines are skipped and counted.
pub const MAX_REPLAY_LINE: usize = 64 * 1024;

/// Options of [`replay`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReplayOptions {
    /// Where schedules start (ticks); the first event's time when `None`.
    pub start: Option<i64>,
    /// The engine's bounds.
    pub limits: Limits,
    /// The mapping of CEF events to rows (the configuration's `[mapping]`); the default
    /// mapping when `None`. Its `TimeGenerated` policy is not used: a replayed row's
    /// `TimeGenerated` is its syslog header time.
    pub mapper: Option<mcas_csl::Mapper>,
}

impl ReplayOptions {
    /// Options with schedules starting at `start`.
    pub fn starting_at(start: Option<i64>) -> ReplayOptions {
        ReplayOptions {
            start,
            ..ReplayOptions::default()
        }
    }
}

/// What a replay produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct Replay {
    /// Every alert, in evaluation order.
    pub alerts: Vec<Alert>,
    /// Every evaluation.
    pub evaluations: Vec<Evaluation>,
    /// Lines that became rows.
    pub rows: u64,
    /// Lines skipped: no syslog header time, not CEF, too long, or not UTF-8 readable.
    pub skipped_lines: u64,
    /// Per-rule counters at the end.
    pub stats: Vec<(String, RuleStats)>,
}

/// Replays raw syslog lines (one message a line) through `rules`.
///
/// - Each line's time is its syslog header timestamp (UTC unless the header gives a zone);
///   it is both the row's `TimeGenerated` and the virtual clock. A line without a header
///   timestamp is skipped and counted.
/// - A line carrying CEF is a `CommonSecurityLog` row; a plain syslog line is a `Syslog` row
///   when a rule reads `Syslog`, else it is skipped and counted, as is a broken CEF header.
/// - Schedules start at `options.start`, or at the first event's time: a rule's first
///   evaluation is at start + `queryFrequency`, then every `queryFrequency`.
/// - Before a line at time `t` is observed, every evaluation due at or before `t` runs (an
///   evaluation at `T` covers `[T − queryPeriod, T)`, so an event at exactly `T` falls in
///   the next one). The clock never goes back: a line older than the clock is observed
///   with its own `TimeGenerated` but runs nothing.
/// - At the end of the input, each rule runs one more evaluation: its next scheduled one
///   after the last event, so every event is seen by at least one evaluation.
///
/// ```
/// let rule = mcas_rules::load_str(
///     "id: deny\nname: Denies from {{SourceIP}}\nseverity: Low\nqueryFrequency: 5m\nqueryPeriod: 5m\n\
///      triggerOperator: gt\ntriggerThreshold: 0\nquery: CommonSecurityLog | where DeviceAction == 'deny'\n",
/// )?;
/// let input = "<134>2024-05-08T10:00:00Z fw CEF:0|Acme|FW|1|1|Denied|5|src=10.0.0.9 act=deny\n\
///              <134>2024-05-08T10:01:00Z fw CEF:0|Acme|FW|1|1|Allowed|5|src=10.0.0.8 act=allow\n";
/// let out = mcas_rules::replay(&[rule], input.as_bytes(), mcas_rules::ReplayOptions::default())?;
/// assert_eq!(out.alerts.len(), 1);
/// assert_eq!(out.alerts[0].row["StartTime"], "2024-05-08T10:00:00.0000000Z");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn replay(
    rules: &[LoadedRule],
    input: impl BufRead,
    options: ReplayOptions,
) -> std::io::Result<Replay> {
    let mut engine = Engine::new(rules.to_vec(), options.limits);
    let mapper = options.mapper.unwrap_or_default();
    let parser = mcas_syslog::ParserConfig::new();
    let mut alerts = Vec::new();
    let mut evaluations = Vec::new();
    let mut clock: Option<i64> = None;
    let mut rows = 0u64;
    let mut skipped = 0u64;
    let reads_syslog = engine.reads(Table::Syslog);
    for line in input.split(b'\n') {
        let line = line?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() > MAX_REPLAY_LINE {
            skipped += 1;
            continue;
        }
        let Ok(msg) = mcas_syslog::parse_with(&parser, line) else {
            skipped += 1;
            continue;
        };
        let Some(ts) = msg.timestamp() else {
            skipped += 1;
            continue;
        };
        let event = match mcas_cef::parse(msg.msg()) {
            Ok(event) => Some(event),
            // Plain syslog: a row of the Syslog table, when a rule reads it.
            Err(e) if *e.kind() == mcas_cef::ErrorKind::MissingMarker && reads_syslog => None,
            Err(_) => {
                skipped += 1;
                continue;
            }
        };
        let t = crate::ticks(ts);
        if clock.is_none() {
            engine.start(options.start.unwrap_or(t));
        }
        if clock.is_none_or(|c| t > c) {
            clock = Some(t);
            alerts.append(&mut engine.run_due(t));
        }
        let now = clock.unwrap_or(t);
        let ctx = mcas_csl::Context::new(ts)
            .with_computer(msg.hostname())
            .with_default_zone(Some(parser.zone()));
        match event {
            Some(event) => {
                let mut row = mapper.map(&event, &ctx).row;
                row.time_generated = Some(ts);
                engine.observe(Table::CommonSecurityLog, &row, t, now);
            }
            None => {
                let input = mcas_csl::SyslogInput {
                    facility: msg.facility(),
                    severity: msg.severity(),
                    hostname: msg.hostname(),
                    process_name: msg.app_name(),
                    process_id: msg.proc_id(),
                    message: msg.msg(),
                    event_time: Some(ts),
                };
                let row = mcas_csl::map_syslog(input, &ctx);
                engine.observe(Table::Syslog, &row, t, now);
            }
        }
        rows += 1;
    }
    if clock.is_some() {
        alerts.append(&mut engine.run_next_of_each());
    }
    evaluations.append(&mut engine.take_evaluations());
    Ok(Replay {
        alerts,
        evaluations,
        rows,
        skipped_lines: skipped,
        stats: engine.stats(),
    })
}
