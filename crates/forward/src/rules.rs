//! The alert rules at run time (`[rules]`, `[[playbook]]`).
//!
//! - [`RulesObserver`] is an observer of the processing chain (stage 5): on the worker that
//!   mapped a row, it runs every rule's row prefix and hands the rows a rule keeps to the
//!   rules thread through a bounded queue (a full queue drops the row, counted).
//! - The rules thread owns the [`mcas_rules::Engine`]: it puts kept rows in the windows, runs
//!   each evaluation when due on the wall clock, saves the windows every
//!   `rules.save_interval` and at shutdown, and hands every alert to the outputs of
//!   `table = "alerts"` (as a batch, which their spool makes durable) and to the outbox of
//!   each playbook that takes it (durable once enqueued; a [`mcas_webhook::Worker`] delivers
//!   it, signed).
//!
//! Every loss is counted on `/metrics`: rows the queue dropped, rows a window bound dropped
//! (per rule), alerts no outbox took.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mcas_rules::{Engine, Prefixes, RuleStats, Table};
use tokio::sync::mpsc;

use crate::batch::{Batch, Route};
use crate::config::{Config, PlaybookFormat};
use crate::metrics::Metrics;
use crate::route::{Fate, Observed, Observer};

/// Kept rows waiting for the rules thread at most; more are dropped and counted.
const QUEUE: usize = 65_536;

/// How often the rules thread takes the kept rows. It polls rather than sleeping on the
/// queue, so that a worker handing over a row never has to wake it (a futex call per row
/// cost more than the row prefixes themselves).
const POLL: Duration = Duration::from_millis(5);

/// How long after its time an evaluation runs: rows whose `TimeGenerated` falls just before
/// it may still be on a worker or in the queue.
const LATENESS: Duration = Duration::from_secs(1);

/// What the observers and the pipeline send to the rules thread.
enum Msg {
    /// A row rule number `rule` kept, with its `TimeGenerated` (ticks).
    Kept {
        rule: usize,
        time: i64,
        row: mcas_kql::KeptRow,
    },
    /// A row rule number `rule` kept while its window was full: only its time is handed
    /// over, to be counted as dropped at the bound.
    Dropped { rule: usize, time: i64 },
    /// Shut down: evaluate what is due, save the windows, and return.
    Stop,
}

/// The clock of the engine: ticks (100 ns) since the Unix epoch.
fn now_ticks() -> i64 {
    mcas_rules::ticks(jiff::Timestamp::now())
}

/// Stage 5: every rule's row prefix on each mapped row.
pub(crate) struct RulesObserver {
    prefixes: Prefixes,
    csl: bool,
    syslog: bool,
    tx: SyncSender<Msg>,
    counters: Arc<RulesMetrics>,
    /// Per rule: its window is at its bound (set by the rules thread): the row is dropped
    /// here, on the thread that built it, and only its time is sent.
    full: Arc<[AtomicBool]>,
}

impl std::fmt::Debug for RulesObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesObserver")
            .field("prefixes", &self.prefixes)
            .finish_non_exhaustive()
    }
}

impl RulesObserver {
    /// Hands a kept row over, or only its time when its rule's window is full (`row` is
    /// `None`: the prefix kept the row, and no row was built).
    fn send(&self, rule: usize, time: i64, row: Option<mcas_kql::KeptRow>) {
        let msg = match row {
            Some(row) => Msg::Kept { rule, time, row },
            None => Msg::Dropped { rule, time },
        };
        match self.tx.try_send(msg) {
            Ok(()) => {}
            // Full, or the rules thread is gone (shutdown): nothing evaluates the row.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.queue_dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Whether rule `rule`'s window takes rows (it is not at its bound).
    fn wanted(&self, rule: usize) -> bool {
        !self.full.get(rule).is_some_and(|f| f.load(Relaxed))
    }
}

impl Observer for RulesObserver {
    fn observe(&self, row: Observed<'_, '_>, _fates: &[Fate]) {
        match row {
            Observed::Csl(r) if self.csl => {
                let now = now_ticks();
                let time = r.time_generated.map_or(now, mcas_rules::ticks);
                self.prefixes.run_with(
                    Table::CommonSecurityLog,
                    r,
                    now,
                    |rule| self.wanted(rule),
                    |rule, kept| self.send(rule, time, kept),
                );
            }
            Observed::Syslog(r) if self.syslog => {
                let now = now_ticks();
                let time = mcas_rules::ticks(r.time_generated);
                self.prefixes.run_with(
                    Table::Syslog,
                    r,
                    now,
                    |rule| self.wanted(rule),
                    |rule, kept| self.send(rule, time, kept),
                );
            }
            Observed::Csl(_) | Observed::Syslog(_) => {}
        }
    }
}

/// The rules' series on `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct RulesMetrics {
    /// Rule files loaded and skipped at start.
    loaded: AtomicU64,
    skipped: AtomicU64,
    /// Kept rows the queue to the rules thread dropped.
    queue_dropped: AtomicU64,
    /// Alert rows handed to `table = "alerts"` outputs.
    alert_rows: AtomicU64,
    /// Alerts written to a playbook's outbox, and those it refused (full, too large, I/O).
    playbook_enqueued: AtomicU64,
    playbook_rejected: AtomicU64,
    /// Saves of the windows that failed.
    state_save_errors: AtomicU64,
    /// Per rule: its id and counters, as of the rules thread's last pass.
    stats: Mutex<Vec<(String, RuleStats)>>,
    /// The playbooks' delivery counters.
    webhooks: Mutex<Option<mcas_webhook::MetricsHandle>>,
}

impl crate::metrics::Section for RulesMetrics {
    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP mcas_forward_rules_{name} {help}\n# TYPE mcas_forward_rules_{name} {kind}\nmcas_forward_rules_{name} {v}"
            );
        };
        one(
            "loaded",
            "gauge",
            "Alert rules loaded and running.",
            self.loaded.load(Relaxed),
        );
        one(
            "skipped",
            "gauge",
            "Rule files skipped at start (see the log, or `rules check`).",
            self.skipped.load(Relaxed),
        );
        one(
            "queue_dropped_rows_total",
            "counter",
            "Rows kept by a rule's row prefix that the queue to the rules thread dropped (full).",
            self.queue_dropped.load(Relaxed),
        );
        one(
            "alert_rows_total",
            "counter",
            "Alert rows handed to the outputs of table \"alerts\".",
            self.alert_rows.load(Relaxed),
        );
        one(
            "playbook_enqueued_total",
            "counter",
            "Alerts written to a playbook's outbox.",
            self.playbook_enqueued.load(Relaxed),
        );
        one(
            "playbook_rejected_total",
            "counter",
            "Alerts a playbook's outbox refused (full, too large, or a write error).",
            self.playbook_rejected.load(Relaxed),
        );
        one(
            "state_save_errors_total",
            "counter",
            "Saves of the rules' windows that failed.",
            self.state_save_errors.load(Relaxed),
        );
        let stats = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        type Get = fn(&RuleStats) -> u64;
        let series: [(&str, &str, &str, Get); 9] = [
            (
                "rule_evaluations_total",
                "counter",
                "Evaluations run, by rule.",
                |s| s.evaluations,
            ),
            (
                "rule_missed_evaluations_total",
                "counter",
                "Evaluations skipped after a clock jump, by rule.",
                |s| s.missed_evaluations,
            ),
            (
                "rule_alerts_total",
                "counter",
                "Alerts raised, by rule.",
                |s| s.alerts,
            ),
            (
                "rule_suppressed_total",
                "counter",
                "Alerts not raised because the rule was suppressed, by rule.",
                |s| s.suppressed,
            ),
            (
                "rule_partial_evaluations_total",
                "counter",
                "Evaluations that ran on a partial window (rows dropped at its bound), by rule.",
                |s| s.partial_evaluations,
            ),
            (
                "rule_window_dropped_rows_total",
                "counter",
                "Rows a rule kept that its window bound dropped, by rule.",
                |s| s.rows_dropped,
            ),
            (
                "rule_window_rows",
                "gauge",
                "Rows in the rule's window.",
                |s| s.window_rows,
            ),
            (
                "rule_window_bytes",
                "gauge",
                "Bytes in the rule's window (its rows' size as JSON).",
                |s| s.window_bytes,
            ),
            (
                "rule_last_run_seconds",
                "gauge",
                "Duration of the rule's last evaluation, in seconds.",
                |s| s.last_run_micros,
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(
                out,
                "# HELP mcas_forward_{name} {help}\n# TYPE mcas_forward_{name} {kind}"
            );
            for (id, s) in stats.iter() {
                let v = get(s);
                if name == "rule_last_run_seconds" {
                    let _ = writeln!(
                        out,
                        "mcas_forward_{name}{{rule=\"{}\"}} {}",
                        crate::metrics::escape_label(id),
                        v as f64 / 1e6
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "mcas_forward_{name}{{rule=\"{}\"}} {v}",
                        crate::metrics::escape_label(id)
                    );
                }
            }
        }
        drop(stats);
        let webhooks = self
            .webhooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(w) = webhooks {
            w.snapshot().render_prometheus("mcas_forward", out);
        }
    }
}

/// A playbook as the rules thread sees it: its name and the rules whose alerts it takes.
#[derive(Debug, Clone)]
struct PlaybookRoute {
    name: String,
    /// Rule ids or names; empty: every rule.
    rules: Vec<String>,
}

impl PlaybookRoute {
    fn takes(&self, rule: &mcas_rules::Rule) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|r| *r == rule.id || *r == rule.name)
    }
}

/// The rules, loaded and restored by [`Rules::load`] before anything runs, then started by
/// [`Rules::start`].
#[derive(Debug)]
pub(crate) struct Rules {
    engine: Engine,
    observer: Arc<RulesObserver>,
    rx: Receiver<Msg>,
    state_dir: PathBuf,
    save_interval: Duration,
    counters: Arc<RulesMetrics>,
    playbooks: Vec<PlaybookRoute>,
    outbox: Option<Arc<mcas_webhook::Outbox>>,
    worker: Option<mcas_webhook::Worker>,
}

impl Rules {
    /// Load `[rules]`: the rule files (a file that does not load is logged and skipped), the
    /// saved windows, the playbooks' keys and outbox, and start the playbooks' delivery
    /// (inside the runtime). None without `[rules]`.
    pub(crate) fn load(cfg: &Config, metrics: &Metrics) -> anyhow::Result<Option<Rules>> {
        let Some(rc) = &cfg.rules else {
            return Ok(None);
        };
        let (loaded, reports) = mcas_rules::load_dir(&rc.dir)
            .with_context(|| format!("rules.dir {}", rc.dir.display()))?;
        let counters = Arc::new(RulesMetrics::default());
        for r in reports.iter().filter(|r| !r.loaded) {
            tracing::warn!(rule = %r.to_line(), "alert rule skipped");
        }
        counters.loaded.store(loaded.len() as u64, Relaxed);
        counters
            .skipped
            .store(reports.iter().filter(|r| !r.loaded).count() as u64, Relaxed);
        let state_dir = rc.state_dir()?;
        let mut engine = Engine::new(loaded, rc.limits());
        let report = engine.load_state(&state_dir.join("windows"));
        for (id, rows) in &report.restored {
            tracing::info!(rule = %id, rows, "alert rule window restored");
        }
        for (id, why) in &report.lost {
            tracing::info!(rule = %id, reason = %why, "alert rule window starts empty");
        }
        engine.start(now_ticks());
        // Each playbook's keys, read now: a missing or bad key fails the start.
        let mut endpoints = Vec::with_capacity(cfg.playbooks.len());
        let mut playbooks = Vec::with_capacity(cfg.playbooks.len());
        for p in &cfg.playbooks {
            let text = std::fs::read_to_string(&p.secret_file).with_context(|| {
                format!(
                    "playbook[{}].secret_file {}",
                    p.name,
                    p.secret_file.display()
                )
            })?;
            let (format, secrets) = match p.format {
                PlaybookFormat::StandardWebhooks => (
                    mcas_webhook::Format::StandardWebhooks,
                    mcas_webhook::Secret::parse_standard_file(&text),
                ),
                PlaybookFormat::Github => (
                    mcas_webhook::Format::GitHub,
                    mcas_webhook::Secret::parse_github_file(&text).map(|s| vec![s]),
                ),
            };
            let secrets = secrets.map_err(|e| {
                anyhow::anyhow!(
                    "playbook[{}].secret_file {}: {e}",
                    p.name,
                    p.secret_file.display()
                )
            })?;
            let url = mcas_webhook::EndpointUrl::parse(&p.url)
                .map_err(|e| anyhow::anyhow!("playbook[{}].url: {e}", p.name))?;
            endpoints.push(mcas_webhook::Endpoint::new(&p.name, url, format, secrets));
            playbooks.push(PlaybookRoute {
                name: p.name.clone(),
                rules: p.rules.clone(),
            });
        }
        let outbox = if playbooks.is_empty() {
            None
        } else {
            let dir = state_dir.join("outbox");
            Some(Arc::new(
                mcas_webhook::Outbox::open(&dir, mcas_webhook::OutboxLimits::default())
                    .with_context(|| format!("the playbooks' outbox {}", dir.display()))?,
            ))
        };
        let mut delivery = mcas_webhook::DeliveryConfig {
            timeout: rc.delivery_timeout.0,
            ..mcas_webhook::DeliveryConfig::default()
        };
        if let Some(d) = &rc.delivery_retry {
            delivery.retry_delays = d.iter().map(|d| d.0).collect();
        }
        // Delivery starts now: what a previous run left in the outbox goes out first.
        let worker = match &outbox {
            Some(o) => {
                let w = mcas_webhook::Worker::start(o.clone(), endpoints, delivery)
                    .context("the playbooks' delivery")?;
                *counters
                    .webhooks
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(w.metrics_handle());
                Some(w)
            }
            None => None,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let full: Arc<[AtomicBool]> = engine.rules().map(|_| AtomicBool::new(false)).collect();
        let observer = Arc::new(RulesObserver {
            prefixes: engine.prefixes(),
            csl: engine.reads(Table::CommonSecurityLog),
            syslog: engine.reads(Table::Syslog),
            tx,
            counters: counters.clone(),
            full,
        });
        metrics.add_section(counters.clone());
        Ok(Some(Rules {
            engine,
            observer,
            rx,
            state_dir,
            save_interval: rc.save_interval.0,
            counters,
            playbooks,
            outbox,
            worker,
        }))
    }

    /// The observer to add to the chain.
    pub(crate) fn observer(&self) -> Arc<RulesObserver> {
        self.observer.clone()
    }

    /// Start the rules thread. `alerts` are the batch queues of the `table = "alerts"`
    /// outputs.
    pub(crate) fn start(
        self,
        alerts: Vec<mpsc::Sender<Batch>>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<RulesRunning> {
        let Rules {
            engine,
            observer,
            rx,
            state_dir,
            save_interval,
            counters,
            playbooks,
            outbox,
            worker,
        } = self;
        // The thread publishes the full windows where the observer reads them; the stop
        // message goes through the observer's queue.
        let full = observer.full.clone();
        let tx = observer.tx.clone();
        let sink = Sink {
            alerts,
            metrics,
            counters,
            playbooks,
            outbox,
        };
        let thread = std::thread::Builder::new()
            .name("mcas-rules".into())
            .spawn(move || {
                rules_thread(
                    engine,
                    &rx,
                    &full,
                    &sink,
                    &state_dir.join("windows"),
                    save_interval,
                )
            })
            .context("cannot start the rules thread")?;
        Ok(RulesRunning {
            tx,
            thread: Some(thread),
            worker,
        })
    }
}

/// The running rules thread and playbook delivery.
#[derive(Debug)]
pub(crate) struct RulesRunning {
    tx: SyncSender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
    worker: Option<mcas_webhook::Worker>,
}

impl RulesRunning {
    /// Stop the rules thread once the workers are done (it evaluates what is due, hands the
    /// alerts on and saves the windows); its alert batches are then queued to their
    /// outputs, which must still be running.
    pub(crate) async fn stop_rules(&mut self) {
        let tx = self.tx.clone();
        let thread = self.thread.take();
        let _ = tokio::task::spawn_blocking(move || {
            // Blocks while the queue is full: the thread is emptying it.
            let _ = tx.send(Msg::Stop);
            if let Some(t) = thread
                && t.join().is_err()
            {
                tracing::error!("the rules thread panicked");
            }
        })
        .await;
    }

    /// Stop the playbooks' delivery: what is not delivered stays in the outbox for the next
    /// start.
    pub(crate) async fn stop_delivery(&mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await;
        }
    }
}

/// Where the rules thread hands alerts.
struct Sink {
    alerts: Vec<mpsc::Sender<Batch>>,
    metrics: Arc<Metrics>,
    counters: Arc<RulesMetrics>,
    playbooks: Vec<PlaybookRoute>,
    outbox: Option<Arc<mcas_webhook::Outbox>>,
}

impl Sink {
    fn deliver(&self, engine: &Engine, alerts: &[mcas_rules::Alert]) {
        if alerts.is_empty() {
            return;
        }
        if !self.alerts.is_empty() {
            let mut data = Vec::new();
            for a in alerts {
                data.extend_from_slice(a.to_json_line().as_bytes());
                data.push(b'\n');
            }
            for out in &self.alerts {
                let batch = Batch {
                    route: Route::Csl,
                    data: data.clone(),
                    rows: alerts.len(),
                    acks: Vec::new(),
                    pool: None,
                    prepared: false,
                };
                crate::pipeline::count_closed(&self.metrics, &batch);
                if out.blocking_send(batch).is_ok() {
                    self.counters
                        .alert_rows
                        .fetch_add(alerts.len() as u64, Relaxed);
                } else {
                    // The output stage is gone (a failed output): the process is stopping.
                    tracing::error!(
                        alerts = alerts.len(),
                        "alert rows not stored: the alerts output has stopped"
                    );
                }
            }
        }
        let Some(outbox) = &self.outbox else {
            return;
        };
        for a in alerts {
            let Some(rule) = engine.rules().find(|r| r.rule().id == a.rule_id) else {
                continue;
            };
            let body = a.to_playbook_json().to_string();
            for p in self.playbooks.iter().filter(|p| p.takes(rule.rule())) {
                match outbox.enqueue_with_id(&p.name, a.id(), body.as_bytes()) {
                    Ok(_) => {
                        self.counters.playbook_enqueued.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        self.counters.playbook_rejected.fetch_add(1, Relaxed);
                        tracing::error!(playbook = %p.name, alert = %a.id(), error = %e, "alert not queued for its playbook");
                    }
                }
            }
        }
    }
}

/// The rules thread: windows, evaluations, saves; returns at [`Msg::Stop`].
fn rules_thread(
    mut engine: Engine,
    rx: &Receiver<Msg>,
    full: &[AtomicBool],
    sink: &Sink,
    state_dir: &std::path::Path,
    save_interval: Duration,
) {
    let lateness = i64::try_from(LATENESS.as_micros() * 10).unwrap_or(i64::MAX);
    let mut next_save = Instant::now() + save_interval;
    let mut stop = false;
    while !stop {
        // Take what the workers kept, then look at the clock.
        loop {
            match rx.try_recv() {
                Ok(Msg::Kept { rule, time, row }) => engine.keep(rule, time, row),
                Ok(Msg::Dropped { rule, time }) => engine.dropped(rule, time),
                Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        for (i, f) in full.iter().enumerate() {
            f.store(engine.is_full(i), Relaxed);
        }
        let alerts = engine.run_due(now_ticks().saturating_sub(lateness));
        for e in engine.take_evaluations() {
            if e.alerts > 0 || e.dropped > 0 {
                tracing::info!(rule = %e.rule_id, window_rows = e.window_rows, result_rows = e.result_rows, alerts = e.alerts, dropped = e.dropped, "alert rule evaluated");
            }
        }
        sink.deliver(&engine, &alerts);
        publish(&engine, &sink.counters);
        if stop || Instant::now() >= next_save {
            if let Err(e) = engine.save_state(state_dir) {
                sink.counters.state_save_errors.fetch_add(1, Relaxed);
                tracing::error!(dir = %state_dir.display(), error = %e, "cannot save the alert rules' windows");
            }
            next_save = Instant::now() + save_interval;
        }
        if !stop {
            std::thread::sleep(POLL);
        }
    }
}

/// Copy the engine's counters where `/metrics` reads them.
fn publish(engine: &Engine, counters: &RulesMetrics) {
    let stats = engine.stats();
    *counters
        .stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = stats;
}
