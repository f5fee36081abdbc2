//! The streaming evaluation: per-rule windows of kept rows, schedules, triggers,
//! suppression, and the state that carries windows across a restart.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mcas_kql::KeptRow;
use serde_json::{Map, Value};

use crate::TICKS_PER_SECOND;
use crate::alert::{self, Alert, Evaluated};
use crate::check::LoadedRule;
use crate::query::Table;
use crate::rule::Aggregation;

/// Bounds of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Rows a rule's window holds at most (`rules.max_window_rows`).
    pub max_window_rows: usize,
    /// Bytes (of the kept rows as JSON) a rule's window holds at most (`rules.max_window_bytes`).
    pub max_window_bytes: usize,
    /// Result rows an alert carries for playbook bodies.
    pub max_alert_results: usize,
    /// Alerts one evaluation raises at most (`AlertPerResult`; Sentinel's cap is 150).
    pub max_alerts_per_evaluation: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_window_rows: 100_000,
            max_window_bytes: 64 << 20,
            max_alert_results: 10,
            max_alerts_per_evaluation: 150,
        }
    }
}

impl Limits {
    /// The defaults with other window bounds.
    pub fn with_window(max_window_rows: usize, max_window_bytes: usize) -> Limits {
        Limits {
            max_window_rows,
            max_window_bytes,
            ..Limits::default()
        }
    }
}

/// Evaluations a rule runs to catch up at most; older missed ones are skipped and counted
/// ([`RuleStats::missed_evaluations`]).
pub const MAX_CATCH_UP: i64 = 1000;

/// Counters of one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RuleStats {
    /// Evaluations run.
    pub evaluations: u64,
    /// Evaluations skipped because the clock jumped past more than [`MAX_CATCH_UP`] of them.
    pub missed_evaluations: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Alerts not raised because the rule was suppressed.
    pub suppressed: u64,
    /// Evaluations that ran on a partial window.
    pub partial_evaluations: u64,
    /// Rows kept by the row prefix.
    pub rows_kept: u64,
    /// Rows the row prefix passed that the window bound dropped.
    pub rows_dropped: u64,
    /// Rows in the window now.
    pub window_rows: u64,
    /// Bytes in the window now.
    pub window_bytes: u64,
    /// Wall-clock duration of the last evaluation, in microseconds.
    pub last_run_micros: u64,
    /// Result rows of the last evaluation.
    pub last_result_rows: u64,
}

/// What one evaluation did (for logs and `rules test`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Evaluation {
    /// The rule.
    pub rule_id: String,
    /// The evaluation time: the window is `[now − queryPeriod, now)`.
    pub now: i64,
    /// Rows of the window the query ran on.
    pub window_rows: usize,
    /// Result rows.
    pub result_rows: usize,
    /// The trigger compared true.
    pub triggered: bool,
    /// Alerts it raised (0 when suppressed).
    pub alerts: usize,
    /// Rows dropped at the window bound that fell in this window: the result may be wrong.
    pub dropped: u64,
}

/// When a kept row was generated, and its size.
#[derive(Clone, Copy)]
struct Kept {
    time: i64,
    bytes: usize,
}

struct RuleRun {
    loaded: Arc<LoadedRule>,
    tables: Vec<Table>,
    /// The kept rows, packed ([`KeptRow`]), and beside them their times and sizes: in
    /// `TimeGenerated` order at each evaluation (between two, rows are appended as they
    /// come).
    window: VecDeque<KeptRow>,
    kept: VecDeque<Kept>,
    /// Rows kept since the last [`RuleRun::settle`], in arrival order.
    pending: Vec<(Kept, KeptRow)>,
    /// A row of the window is older than one before it: sort before evaluating.
    unsorted: bool,
    window_bytes: usize,
    next_run: Option<i64>,
    suppressed_until: Option<i64>,
    /// The rows dropped at the bound, for the windows they fall in: per second of
    /// `TimeGenerated` (its first tick), how many. A count per second, not a time per row:
    /// a window full at 20,000 rows/s for a day would otherwise hold 1.7 billion times.
    dropped: VecDeque<(i64, u64)>,
    stats: RuleStats,
}

/// The rules engine: rows in, alerts out, on an injected clock (ticks of 100 ns since the
/// Unix epoch, as `mcas-kql` counts `now()`).
///
/// The forwarder calls [`observe`](Engine::observe) for every mapped row and
/// [`run_due`](Engine::run_due) with the wall clock; `rules test` does the same in
/// virtual time ([`replay`](crate::replay)).
pub struct Engine {
    rules: Vec<RuleRun>,
    prefixes: Prefixes,
    limits: Limits,
    evaluations: Vec<Evaluation>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rules.len())
            .field("limits", &self.limits)
            .finish()
    }
}

impl Engine {
    /// An engine of these rules. Schedules start at the first [`start`](Engine::start)
    /// (or the first [`run_due`](Engine::run_due)).
    pub fn new(rules: Vec<LoadedRule>, limits: Limits) -> Engine {
        let rules: Vec<RuleRun> = rules
            .into_iter()
            .map(|loaded| RuleRun {
                tables: loaded.query.tables(),
                loaded: Arc::new(loaded),
                window: VecDeque::new(),
                kept: VecDeque::new(),
                pending: Vec::new(),
                unsorted: false,
                window_bytes: 0,
                next_run: None,
                suppressed_until: None,
                dropped: VecDeque::new(),
                stats: RuleStats::default(),
            })
            .collect();
        let prefixes = Prefixes {
            rules: rules
                .iter()
                .map(|r| (r.loaded.clone(), r.tables.clone()))
                .collect(),
        };
        Engine {
            rules,
            prefixes,
            limits,
            evaluations: Vec::new(),
        }
    }

    /// Starts the schedule of every rule that has none: its first evaluation is at
    /// `at + queryFrequency`.
    pub fn start(&mut self, at: i64) {
        for r in &mut self.rules {
            if r.next_run.is_none() {
                r.next_run = Some(at.saturating_add(r.loaded.rule.frequency));
            }
        }
    }

    /// Whether any rule reads `table` (the caller can skip mapping rows nobody reads).
    pub fn reads(&self, table: Table) -> bool {
        self.rules.iter().any(|r| r.tables.contains(&table))
    }

    /// One mapped row of `table` as it passes, with its `TimeGenerated` (ticks) and the
    /// clock now. Each rule reading the table runs its row prefix; a kept row goes to the
    /// rule's window unless the window is at its bound (then it is counted as dropped).
    pub fn observe(
        &mut self,
        table: Table,
        row: &dyn mcas_kql::Row,
        time_generated: i64,
        now: i64,
    ) {
        let prefixes = self.prefixes.clone();
        prefixes.run(table, row, now, |rule, kept| {
            self.keep(rule, time_generated, kept);
        });
    }

    /// The rules' row prefixes, to run on other threads than the engine's: the forwarder's
    /// workers run them on each row they map and hand the kept rows to
    /// [`keep`](Engine::keep).
    pub fn prefixes(&self) -> Prefixes {
        self.prefixes.clone()
    }

    /// A row that rule number `rule` (in load order) kept with its row prefix
    /// ([`Prefixes::run`]), with its `TimeGenerated`: it goes to the rule's window unless the
    /// window is at its bound (then it is counted as dropped). An unknown rule is ignored.
    pub fn keep(&mut self, rule: usize, time_generated: i64, row: KeptRow) {
        if let Some(r) = self.rules.get_mut(rule) {
            r.push(time_generated, row, &self.limits);
        }
    }

    /// [`observe`](Engine::observe) for a mapped `CommonSecurityLog` row: its own
    /// `TimeGenerated` keys it in the windows (the clock `now` when it has none).
    pub fn observe_csl(&mut self, row: &mcas_csl::CommonSecurityLog<'_>, now: i64) {
        let t = row.time_generated.map_or(now, crate::ticks);
        self.observe(Table::CommonSecurityLog, row, t, now);
    }

    /// [`observe`](Engine::observe) for a mapped `Syslog` row, keyed by its `TimeGenerated`.
    pub fn observe_syslog(&mut self, row: &mcas_csl::SyslogRow<'_>, now: i64) {
        let t = crate::ticks(row.time_generated);
        self.observe(Table::Syslog, row, t, now);
    }

    /// Whether rule number `rule`'s window is at its bound, once the rows no later window
    /// needs are evicted: a row it keeps now would be dropped. The forwarder's workers then
    /// report such rows with [`dropped`](Engine::dropped) instead of handing them over.
    pub fn is_full(&mut self, rule: usize) -> bool {
        let Some(r) = self.rules.get_mut(rule) else {
            return false;
        };
        if let Some(next) = r.next_run {
            r.evict_before(next - r.loaded.rule.period);
        }
        r.settle();
        r.window.len() >= self.limits.max_window_rows
            || r.window_bytes >= self.limits.max_window_bytes
    }

    /// A row that rule number `rule` kept with its `TimeGenerated`, dropped by the caller
    /// because the window was full ([`is_full`](Engine::is_full)): counted as a row the
    /// window bound dropped, so the evaluations over its time report a partial window.
    pub fn dropped(&mut self, rule: usize, time_generated: i64) {
        if let Some(r) = self.rules.get_mut(rule) {
            r.drop_row(time_generated);
        }
    }

    /// The earliest scheduled evaluation, if any schedule has started.
    pub fn next_due(&self) -> Option<i64> {
        self.rules.iter().filter_map(|r| r.next_run).min()
    }

    /// Runs every evaluation due at or before `now`, oldest first (a rule behind by
    /// several periods runs each of them, up to [`MAX_CATCH_UP`]), and returns the alerts. Starts the schedules at
    /// `now` when none has started.
    pub fn run_due(&mut self, now: i64) -> Vec<Alert> {
        if self.rules.iter().all(|r| r.next_run.is_none()) {
            self.start(now);
        }
        let mut alerts = Vec::new();
        while let Some((i, at)) = self
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.next_run.filter(|t| *t <= now).map(|t| (i, t)))
            .min_by_key(|&(i, t)| (t, i))
        {
            let r = &mut self.rules[i];
            let frequency = r.loaded.rule.frequency;
            // Far behind (a clock jump): skip to the last evaluations, counted as missed.
            let due = (now - at) / frequency + 1;
            let at = if due > MAX_CATCH_UP {
                let skip = due - MAX_CATCH_UP;
                r.stats.missed_evaluations += u64::try_from(skip).unwrap_or(u64::MAX);
                at.saturating_add(skip.saturating_mul(frequency))
            } else {
                at
            };
            r.next_run = Some(at.saturating_add(frequency));
            let (ev, mut a) = r.evaluate(at, &self.limits);
            self.evaluations.push(ev);
            alerts.append(&mut a);
        }
        alerts
    }

    /// Runs, for every rule, its next scheduled evaluation whatever the clock says (the end
    /// of a replay: every row is seen by at least one evaluation).
    pub fn run_next_of_each(&mut self) -> Vec<Alert> {
        let mut order: Vec<(i64, usize)> = self
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.next_run.map(|t| (t, i)))
            .collect();
        order.sort_unstable();
        let mut alerts = Vec::new();
        for (at, i) in order {
            let r = &mut self.rules[i];
            r.next_run = Some(at.saturating_add(r.loaded.rule.frequency));
            let (ev, mut a) = r.evaluate(at, &self.limits);
            self.evaluations.push(ev);
            alerts.append(&mut a);
        }
        alerts
    }

    /// The evaluations run since the last call (drained).
    pub fn take_evaluations(&mut self) -> Vec<Evaluation> {
        std::mem::take(&mut self.evaluations)
    }

    /// Per-rule counters, by rule id.
    pub fn stats(&self) -> Vec<(String, RuleStats)> {
        self.rules
            .iter()
            .map(|r| (r.loaded.rule.id.clone(), r.stats.clone()))
            .collect()
    }

    /// The rules, in load order.
    pub fn rules(&self) -> impl Iterator<Item = &LoadedRule> {
        self.rules.iter().map(|r| &*r.loaded)
    }

    /// Writes the state (each rule's window, schedule and suppression) to `dir`: one
    /// NDJSON file per rule, `<id>.ndjson`, each written to a temporary file and renamed.
    pub fn save_state(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for r in &self.rules {
            let name = state_file_name(&r.loaded.rule.id);
            let tmp = dir.join(format!(".{name}.tmp"));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            let header = serde_json::json!({
                "rule": r.loaded.rule.id,
                "query": query_fingerprint(&r.loaded.rule.query),
                "next_run": r.next_run,
                "suppressed_until": r.suppressed_until,
                "dropped": r.dropped,
            });
            writeln!(f, "{header}")?;
            let pending = r.pending.iter().map(|(k, row)| (k, row));
            for (k, row) in r.kept.iter().zip(&r.window).chain(pending) {
                let row = r.loaded.query.kept_to_json(row);
                writeln!(f, "{}", serde_json::json!({"t": k.time, "row": row}))?;
            }
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, dir.join(name))?;
        }
        Ok(())
    }

    /// Reads the state [`save_state`](Engine::save_state) wrote. A rule without a file,
    /// with a changed query, or with a file that does not read, starts empty, and the
    /// report says so; windows are trimmed to their bounds again.
    pub fn load_state(&mut self, dir: &Path) -> StateReport {
        let mut report = StateReport::default();
        for r in &mut self.rules {
            let id = r.loaded.rule.id.clone();
            let path = dir.join(state_file_name(&id));
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    report.lost.push((id, "no saved state".into()));
                    continue;
                }
                Err(e) => {
                    report
                        .lost
                        .push((id, format!("cannot read the state: {e}")));
                    continue;
                }
            };
            match r.restore(&text, &self.limits) {
                Ok(rows) => report.restored.push((id, rows)),
                Err(why) => report.lost.push((id, why)),
            }
        }
        report
    }
}

/// The row prefixes of an engine's rules ([`Engine::prefixes`]): cheap to clone, shared by
/// every thread that maps rows. They hold no window; the rows they keep go back to the
/// engine through [`Engine::keep`].
#[derive(Clone)]
pub struct Prefixes {
    rules: Arc<[(Arc<LoadedRule>, Vec<Table>)]>,
}

impl std::fmt::Debug for Prefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefixes")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Prefixes {
    /// Whether any rule reads `table` (the caller can skip rows nobody reads).
    pub fn reads(&self, table: Table) -> bool {
        self.rules.iter().any(|(_, t)| t.contains(&table))
    }

    /// Runs the row prefix of every rule reading `table` on `row`, at the clock `now`, and
    /// calls `keep` with the rule's number (load order) and the row to keep, for each rule
    /// that keeps it.
    pub fn run(
        &self,
        table: Table,
        row: &dyn mcas_kql::Row,
        now: i64,
        mut keep: impl FnMut(usize, KeptRow),
    ) {
        self.run_with(
            table,
            row,
            now,
            |_| true,
            |i, kept| {
                if let Some(kept) = kept {
                    keep(i, kept);
                }
            },
        );
    }

    /// [`run`](Prefixes::run), building the row to keep only for the rules `wanted` names:
    /// for the others (a full window, say), `keep` gets `None` when the prefix keeps the row.
    pub fn run_with(
        &self,
        table: Table,
        row: &dyn mcas_kql::Row,
        now: i64,
        wanted: impl Fn(usize) -> bool,
        mut keep: impl FnMut(usize, Option<KeptRow>),
    ) {
        for (i, (loaded, tables)) in self.rules.iter().enumerate() {
            if !tables.contains(&table) {
                continue;
            }
            if wanted(i) {
                if let Some(kept) = loaded.query.row_prefix(row, now) {
                    keep(i, Some(kept));
                }
            } else if loaded.query.row_passes(row, now) {
                keep(i, None);
            }
        }
    }
}

/// What [`Engine::load_state`] restored and what it lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateReport {
    /// Rules whose window came back, with its rows.
    pub restored: Vec<(String, usize)>,
    /// Rules that start empty, and why.
    pub lost: Vec<(String, String)>,
}

impl RuleRun {
    fn push(&mut self, time: i64, row: KeptRow, limits: &Limits) {
        let bytes = row.json_len();
        // Rows older than any window still to run are of no use: drop the new row if it is
        // one, and make room by evicting those already kept.
        if let Some(next) = self.next_run {
            let from = next - self.loaded.rule.period;
            if time < from {
                return;
            }
            self.evict_before(from);
        }
        if self.rows() >= limits.max_window_rows
            || self.window_bytes + bytes > limits.max_window_bytes
        {
            self.record_drop(time);
            return;
        }
        self.stats.rows_kept += 1;
        self.window_bytes += bytes;
        self.pending.push((Kept { time, bytes }, row));
        self.stats.window_rows = self.rows() as u64;
        self.stats.window_bytes = self.window_bytes as u64;
    }

    /// Rows in the window, pending ones included.
    fn rows(&self) -> usize {
        self.window.len() + self.pending.len()
    }

    /// Moves the pending rows into the window, as they came. Rows from several workers come a
    /// little out of order: the window is sorted only when an evaluation needs it
    /// ([`RuleRun::sort`]), once, rather than shifted for each row.
    fn settle(&mut self) {
        for (k, row) in self.pending.drain(..) {
            if self.kept.back().is_some_and(|last| last.time > k.time) {
                self.unsorted = true;
            }
            self.kept.push_back(k);
            self.window.push_back(row);
        }
    }

    /// Puts the window in `TimeGenerated` order (stable: rows of one time keep their order).
    fn sort(&mut self) {
        if !self.unsorted {
            return;
        }
        let mut rows: Vec<(Kept, KeptRow)> =
            self.kept.drain(..).zip(self.window.drain(..)).collect();
        rows.sort_by_key(|(k, _)| k.time);
        for (k, row) in rows {
            self.kept.push_back(k);
            self.window.push_back(row);
        }
        self.unsorted = false;
    }

    /// A kept row dropped at the bound before it reached the window (see [`Engine::dropped`]).
    fn drop_row(&mut self, time: i64) {
        if let Some(next) = self.next_run
            && time < next - self.loaded.rule.period
        {
            return;
        }
        self.record_drop(time);
    }

    /// Counts a row dropped at the bound in its second. Rows mostly come in time order: a
    /// row of an earlier second than the last recorded one joins the last one (the count of
    /// a window can then be off by the rows of one second at its edges).
    fn record_drop(&mut self, time: i64) {
        self.stats.rows_dropped += 1;
        self.add_drops(time, 1);
    }

    fn add_drops(&mut self, time: i64, n: u64) {
        let second = time.div_euclid(TICKS_PER_SECOND) * TICKS_PER_SECOND;
        match self.dropped.back_mut() {
            Some((s, count)) if *s >= second => *count += n,
            _ => self.dropped.push_back((second, n)),
        }
    }

    /// Drops kept rows, and the record of dropped rows, older than `from`.
    fn evict_before(&mut self, from: i64) {
        while self.kept.front().is_some_and(|k| k.time < from) {
            if let Some(k) = self.kept.pop_front() {
                self.window_bytes -= k.bytes;
                self.window.pop_front();
            }
        }
        // A second is evicted once it ends before `from`.
        while self
            .dropped
            .front()
            .is_some_and(|(s, _)| *s + TICKS_PER_SECOND <= from)
        {
            self.dropped.pop_front();
        }
    }

    fn evaluate(&mut self, now: i64, limits: &Limits) -> (Evaluation, Vec<Alert>) {
        let started = Instant::now();
        let rule = self.loaded.rule.clone();
        let from = now - rule.period;
        self.settle();
        self.sort();
        // Evict what no later window will see (later windows start later).
        self.evict_before(from);
        // The window's rows before `now` (later ones wait for the next evaluation): a
        // contiguous run, as rows are kept in time order.
        let end = self.kept.partition_point(|k| k.time < now);
        let rows = &self.window.make_contiguous()[..end];
        let dropped = self
            .dropped
            .iter()
            .filter(|(s, _)| *s < now)
            .map(|(_, n)| n)
            .sum::<u64>();
        let results = self.loaded.query.run_window(rows, now);
        let triggered = rule.triggers(results.len() as u64);
        let suppressed = self.suppressed_until.is_some_and(|t| now < t);
        let mut alerts = Vec::new();
        if triggered && suppressed {
            self.stats.suppressed += 1;
        } else if triggered {
            let ev = Evaluated {
                rule: &rule,
                now,
                results: &results,
                total: results.len(),
                partial: dropped > 0,
                dropped,
                max_results: limits.max_alert_results,
            };
            match rule.aggregation {
                Aggregation::SingleAlert => alerts.push(alert::build(&ev, ev.results, 0)),
                Aggregation::AlertPerResult => {
                    for (i, r) in results
                        .iter()
                        .take(limits.max_alerts_per_evaluation)
                        .enumerate()
                    {
                        alerts.push(alert::build(&ev, std::slice::from_ref(r), i));
                    }
                }
            }
            if let Some(d) = rule.suppression
                && !alerts.is_empty()
            {
                self.suppressed_until = Some(now.saturating_add(d));
            }
        }
        self.stats.evaluations += 1;
        self.stats.alerts += alerts.len() as u64;
        if dropped > 0 {
            self.stats.partial_evaluations += 1;
        }
        self.stats.window_rows = self.rows() as u64;
        self.stats.window_bytes = self.window_bytes as u64;
        self.stats.last_result_rows = results.len() as u64;
        self.stats.last_run_micros =
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let ev = Evaluation {
            rule_id: rule.id.clone(),
            now,
            window_rows: end,
            result_rows: results.len(),
            triggered,
            alerts: alerts.len(),
            dropped,
        };
        (ev, alerts)
    }

    fn restore(&mut self, text: &str, limits: &Limits) -> Result<usize, String> {
        let mut lines = text.lines();
        let header: Value = lines
            .next()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or("the state has no header")?;
        if header.get("rule").and_then(Value::as_str) != Some(self.loaded.rule.id.as_str()) {
            return Err("the state is another rule's".into());
        }
        if header.get("query").and_then(Value::as_str)
            != Some(query_fingerprint(&self.loaded.rule.query).as_str())
        {
            return Err("the rule's query changed since the state was saved".into());
        }
        self.next_run = header.get("next_run").and_then(Value::as_i64);
        self.suppressed_until = header.get("suppressed_until").and_then(Value::as_i64);
        // `[second, count]` pairs; a bare number (one row's time) is a count of one.
        self.dropped.clear();
        for d in header
            .get("dropped")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (time, n) = match d {
                Value::Array(p) => (
                    p.first().and_then(Value::as_i64),
                    p.get(1).and_then(Value::as_u64).unwrap_or(1),
                ),
                v => (v.as_i64(), 1),
            };
            if let Some(time) = time {
                self.add_drops(time, n);
            }
        }
        let mut bad = 0usize;
        for line in lines {
            let v: Option<(i64, Map<String, Value>)> = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| match v {
                    Value::Object(mut o) => {
                        let t = o.get("t").and_then(Value::as_i64)?;
                        match o.remove("row") {
                            Some(Value::Object(row)) => Some((t, row)),
                            _ => None,
                        }
                    }
                    _ => None,
                });
            match v {
                Some((t, row)) => {
                    let row = self.loaded.query.kept_from_json(&row);
                    self.push(t, row, limits);
                }
                None => bad += 1,
            }
        }
        self.settle();
        if bad > 0 {
            return Err(format!(
                "{bad} saved rows did not read; {} restored",
                self.window.len()
            ));
        }
        Ok(self.window.len())
    }
}

/// A file name for a rule id: letters, digits, `-` and `_` kept, the rest as `_`.
fn state_file_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.ndjson")
}

fn query_fingerprint(query: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(query.as_bytes());
    d[..12].iter().map(|b| format!("{b:02x}")).collect()
}
