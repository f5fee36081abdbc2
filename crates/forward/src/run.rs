//! `mcas-forward run`: build the pipeline, run it, and shut it down gracefully.
//!
//! listeners → (bounded queues) → workers → (bounded) → output stage:
//! - stdout/file: written as batches close;
//! - network: spool writer → spool directory → senders → delete after 2xx.
//!
//! On SIGTERM/SIGINT: listeners stop reading, workers drain their queues and close their
//! batches, the spool writer writes them, the senders keep sending until the spool is empty
//! or `shutdown_grace` has passed, and the process exits 0. What is still spooled is sent at
//! the next start.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LogFormat};
use crate::deadletter::DeadLetter;
use crate::listen::{self, CHUNK, Workers};
use crate::metrics::Metrics;
use crate::output::{self, Destination};
use crate::pipeline::{self, Limits};
use crate::spool::Spool;

/// Set up logging to stderr (text or JSON); `RUST_LOG` wins over `[log] level`.
pub(crate) fn init_logging(cfg: &Config) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| cfg.log.level.clone())
        .unwrap_or_else(|| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

pub(crate) fn main(config: Option<&Path>) -> anyhow::Result<()> {
    let (cfg, source) = Config::load(config)?;
    init_logging(&cfg);
    if cfg.listen.is_empty() {
        anyhow::bail!("{source}: no [[listen]] table: nothing to receive");
    }
    let workers = if cfg.pipeline.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.pipeline.workers
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mcas-forward")
        .build()
        .context("cannot start the runtime")?;
    let result = rt.block_on(run(cfg, source, workers));
    // A spool write stuck in the kernel (a dead disk) must not hold the exit: blocking
    // threads still running are abandoned after a moment.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run(cfg: Config, source: crate::config::Source, n_workers: usize) -> anyhow::Result<()> {
    // Signal handlers first: a SIGHUP that arrives while the listeners bind must not kill
    // the process (the default action of HUP, USR1 and USR2 is to terminate).
    let mut signals = Signals::install()?;
    let built = Pipeline::build(cfg, &source, n_workers).await?;
    let mut running = built.start(&source);
    let failed = running.wait(&mut signals).await;
    running.drain(failed).await
}

/// The forwarder, phase by phase: [`Pipeline::build`] binds and opens everything (a bad
/// address, certificate or directory fails before anything runs), [`Pipeline::start`]
/// spawns the stages, [`Running::wait`] waits for a signal or a failed output, and
/// [`Running::drain`] stops the stages in order within `shutdown_timeout`, then stops the
/// rest.
#[derive(Debug)]
struct Pipeline {
    cfg: Config,
    n_workers: usize,
    metrics: Arc<Metrics>,
    stop_listeners: CancellationToken,
    stop_all: CancellationToken,
    bound: Vec<listen::Bound>,
    metrics_addr: Option<std::net::SocketAddr>,
    admin_addr: Option<std::net::SocketAddr>,
    dead: Arc<DeadLetter>,
    router: Arc<crate::reload::RouterCell>,
    reloader: Arc<crate::reload::Reloader>,
    /// The configuration text the listeners' `[[listen]]` tables are read from.
    reloader_text: String,
    outputs: Vec<Built>,
    /// The alert rules, loaded and restored (`[rules]`).
    rules: Option<crate::rules::Rules>,
}

/// One output, built.
#[derive(Debug)]
struct Built {
    name: String,
    dest: Arc<dyn Destination>,
    /// Senders of a spooled output.
    concurrency: usize,
    spool: Option<Spooled>,
}

/// A spooled destination's spool, and what a previous run left in it.
#[derive(Debug)]
struct Spooled {
    spool: Arc<Spool>,
    left: Vec<crate::spool::Spooled>,
}

impl Pipeline {
    async fn build(
        cfg: Config,
        source: &crate::config::Source,
        n_workers: usize,
    ) -> anyhow::Result<Pipeline> {
        let metrics = Arc::new(Metrics::default());
        let stop_all = CancellationToken::new();
        let mut bound = Vec::with_capacity(cfg.listen.len());
        for l in &cfg.listen {
            bound.push(listen::bind(l, &metrics).await?);
        }
        listen::check_open_file_limit(&cfg.listen);
        // The metrics endpoint comes up only once every listener is bound, so a supervisor
        // or test that sees it answer can connect to any listener (the kernel queues
        // connections until the accept loops run).
        let metrics_addr = match &cfg.metrics {
            Some(m) => {
                Some(crate::metrics::serve(m.address, metrics.clone(), stop_all.clone()).await?)
            }
            None => None,
        };
        let dead = Arc::new(DeadLetter::with_limits(
            cfg.dead_letter_path()?,
            cfg.dead_letter_limits(),
            metrics.clone(),
        ));
        dead.check_writable()?;
        let mut chain = crate::route::from_config(&cfg, metrics.clone())?;
        // The admin endpoint's taps watch the outputs (stage 5 of the chain).
        let mut taps = Vec::new();
        let mut observers: Vec<Arc<dyn crate::route::Observer>> = Vec::new();
        let rules = crate::rules::Rules::load(&cfg, &metrics)?;
        if let Some(r) = &rules {
            let o = r.observer();
            chain = chain.with_observer(o.clone());
            observers.push(o);
        }
        if cfg.admin.is_some() {
            for (i, o) in cfg.outputs.iter().enumerate() {
                let tap = Arc::new(crate::tap::Tap::new(o.name(), i, cfg.csl_schema()));
                chain = chain.with_observer(tap.clone());
                observers.push(tap.clone());
                taps.push(tap);
            }
        }
        let router = crate::reload::RouterCell::new(chain);
        let (path, text) = match source {
            crate::config::Source::File(p) => (
                Some(p.clone()),
                std::fs::read_to_string(p).unwrap_or_default(),
            ),
            crate::config::Source::Embedded => (None, crate::config::EMBEDDED_DEFAULT.to_owned()),
        };
        let tls = cfg
            .listen
            .iter()
            .zip(&bound)
            .filter_map(|(l, b)| listen::acceptor_cell(b).map(|c| (l.clone(), c)))
            .collect();
        let reloader = Arc::new(
            crate::reload::Reloader::new(path, &text, router.clone(), observers, metrics.clone())
                .with_tls(tls),
        );
        let reloader_text = text;
        let admin_addr = match &cfg.admin {
            Some(a) => Some(
                crate::admin::serve(
                    a.address,
                    crate::admin::State {
                        taps: Arc::new(taps),
                        reloader: reloader.clone(),
                    },
                    stop_all.clone(),
                )
                .await?,
            ),
            None => None,
        };
        let mut outputs = Vec::with_capacity(cfg.outputs.len());
        let mut any_spooled = false;
        for o in &cfg.outputs {
            let dest = output::build(o, metrics.clone())
                .with_context(|| format!("output {:?}", o.name()))?;
            let spool = if dest.spooled() {
                any_spooled = true;
                let dir = cfg.spool_dir_of(o)?;
                let (spool, left) = Spool::open(&dir, &cfg.spool_settings(), metrics.clone())?;
                let spool = spool.labelled(metrics.output(o.name()));
                if !left.is_empty() {
                    tracing::info!(output = o.name(), batches = left.len(), bytes = spool.bytes(), dir = %dir.display(), "resending batches spooled by a previous run");
                }
                Some(Spooled {
                    spool: Arc::new(spool),
                    left,
                })
            } else {
                None
            };
            outputs.push(Built {
                name: o.name().to_owned(),
                concurrency: o.kind.delivery().map_or(1, |d| d.concurrency),
                dest,
                spool,
            });
        }
        if !any_spooled {
            metrics.spool_ready_threshold.store(u64::MAX, Relaxed);
        }
        Ok(Pipeline {
            cfg,
            n_workers,
            metrics,
            stop_listeners: CancellationToken::new(),
            stop_all,
            bound,
            metrics_addr,
            admin_addr,
            dead,
            router,
            reloader,
            reloader_text,
            outputs,
            rules,
        })
    }

    /// Spawn the output stage, the workers and the listeners, in that order (each stage
    /// exists before the one that feeds it).
    fn start(self, source: &crate::config::Source) -> Running {
        let Pipeline {
            cfg,
            n_workers,
            metrics,
            stop_listeners,
            stop_all,
            bound,
            metrics_addr,
            admin_addr,
            dead,
            router,
            reloader,
            reloader_text,
            outputs,
            rules,
        } = self;
        let sender_stop = CancellationToken::new();
        let mut batch_txs = Vec::with_capacity(outputs.len());
        let mut spooled = Vec::new();
        let mut local = Vec::new();
        let mut described = Vec::with_capacity(outputs.len());
        for Built {
            name,
            dest,
            concurrency,
            spool,
        } in outputs
        {
            described.push(format!("{name}: {}", dest.describe()));
            let (batch_tx, batch_rx) = mpsc::channel(n_workers * 2);
            match spool {
                Some(Spooled { spool, left }) => {
                    let cell = output::DestinationCell::new(dest.clone());
                    let preparer = output::Preparer::new(&name, cell.clone());
                    batch_txs.push(output::OutputTx {
                        tx: batch_tx,
                        prepare: Some(preparer.clone()),
                    });
                    let (q_tx, q_rx) = mpsc::unbounded_channel();
                    for s in left {
                        let _ = q_tx.send(s);
                    }
                    let spooler = tokio::spawn(output::spooled::run_spooler(
                        spool.clone(),
                        batch_rx,
                        q_tx.clone(),
                        metrics.clone(),
                        preparer,
                    ));
                    reloader.destination(&name, cell.clone());
                    let send = Arc::new(output::spooled::SpooledSend {
                        dest: cell,
                        out: metrics.output(&name),
                        spool: spool.clone(),
                        dead: dead.clone(),
                        metrics: metrics.clone(),
                    });
                    let senders = tokio::spawn(output::spooled::run_senders(
                        send,
                        Arc::new(Mutex::new(q_rx)),
                        q_tx,
                        metrics.clone(),
                        concurrency,
                        sender_stop.clone(),
                    ));
                    spooled.push(SpooledStage {
                        spool,
                        spooler,
                        senders,
                    });
                }
                None => {
                    batch_txs.push(output::OutputTx {
                        tx: batch_tx,
                        prepare: None,
                    });
                    let (dest, metrics, out) =
                        (dest.clone(), metrics.clone(), metrics.output(&name));
                    local.push(tokio::task::spawn_blocking(move || {
                        output::local::run_local(dest, batch_rx, metrics, out)
                    }));
                }
            }
        }
        // The alert rules send their alert rows to the outputs of table "alerts".
        let alert_txs = cfg
            .outputs
            .iter()
            .zip(&batch_txs)
            .filter(|(o, _)| o.table == crate::config::Table::Alerts)
            .map(|(_, o)| o.tx.clone())
            .collect();
        let rules = match rules.map(|r| r.start(alert_txs, metrics.clone())) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "the alert rules did not start");
                None
            }
            None => None,
        };
        let batch_txs: Arc<[output::OutputTx]> = batch_txs.into();

        let limits = Limits {
            flush_interval: cfg.pipeline.flush_interval.0,
            linger: cfg.pipeline.linger.0,
            max_rows: cfg.pipeline.batch_max_rows,
            max_bytes: usize::try_from(cfg.pipeline.batch_max_bytes.0).unwrap_or(usize::MAX),
            commit: cfg.relp.commit_interval.0,
        };
        let per_worker = (cfg.pipeline.queue_capacity / CHUNK).max(2);
        let mut queues = Vec::with_capacity(n_workers);
        let mut worker_tasks = Vec::with_capacity(n_workers);
        let pool = crate::batch::BufPool::new(limits.max_bytes);
        for _ in 0..n_workers {
            let (tx, rx) = mpsc::channel(per_worker);
            queues.push(tx);
            worker_tasks.push(tokio::spawn(pipeline::worker(
                rx,
                router.clone(),
                batch_txs.clone(),
                dead.clone(),
                metrics.clone(),
                limits,
                pool.clone(),
            )));
        }
        drop(batch_txs);
        let budget = usize::try_from(cfg.pipeline.max_queued_bytes.0).unwrap_or(usize::MAX);
        let workers = Workers::new(queues, crate::budget::Budget::new(budget), cfg.relp);

        let mut listener_tasks = Vec::with_capacity(bound.len());
        let mut started = Vec::with_capacity(bound.len());
        for (i, (b, l)) in bound.into_iter().zip(cfg.listen.iter()).enumerate() {
            let addr = listen::local_addr(&b);
            tracing::info!(protocol = %l.protocol, address = %addr.map_or_else(|| l.place(), |a| a.to_string()), "listening");
            // Its own token, so that a reload can close it alone.
            let stop = stop_listeners.child_token();
            started.push((l.clone(), stop.clone()));
            listener_tasks.push(tokio::spawn(listen::run(
                i,
                l.clone(),
                b,
                workers.clone(),
                metrics.clone(),
                stop,
            )));
        }
        reloader.started(crate::reload::Listeners::new(
            &reloader_text,
            started,
            workers,
            metrics.clone(),
        ));
        metrics.listeners_up.store(true, Relaxed);
        tracing::info!(
            config = %source,
            outputs = %described.join("; "),
            workers = n_workers,
            metrics = %metrics_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()),
            admin = %admin_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()),
            "mcas-forward {} started",
            env!("CARGO_PKG_VERSION")
        );
        Running {
            grace: cfg.pipeline.shutdown_grace.0,
            timeout: cfg.pipeline.shutdown_timeout.0,
            reloader,
            metrics,
            dead,
            stop_listeners,
            stop_all,
            stages: Stages {
                spooled,
                local,
                listener_tasks,
                worker_tasks,
                sender_stop,
                rules,
            },
        }
    }
}

/// The started forwarder.
#[derive(Debug)]
struct Running {
    grace: Duration,
    timeout: Duration,
    reloader: Arc<crate::reload::Reloader>,
    metrics: Arc<Metrics>,
    dead: Arc<DeadLetter>,
    stop_listeners: CancellationToken,
    stop_all: CancellationToken,
    stages: Stages,
}

impl Running {
    /// Wait for SIGTERM or SIGINT, or for a local output to fail (its error).
    async fn wait(&mut self, signals: &mut Signals) -> Option<anyhow::Error> {
        let local = &mut self.stages.local;
        tokio::select! {
            s = signals.shutdown(&self.metrics, &self.reloader) => { tracing::info!(signal = s, "shutting down"); None }
            (r, i, _) = async {
                if local.is_empty() {
                    std::future::pending().await
                } else {
                    futures_util::future::select_all(local.iter_mut()).await
                }
            } => {
                // The task is finished: drain must not wait for it again.
                drop(local.swap_remove(i));
                Some(match r { Ok(Ok(())) => anyhow::anyhow!("the output stopped"), Ok(Err(e)) => e, Err(e) => anyhow::anyhow!("output task: {e}") })
            }
        }
    }

    /// Stop in order within `shutdown_timeout`: a disk that cannot be written (full,
    /// read-only) must not keep the process alive until systemd kills it, losing what it
    /// holds without a word. Then stop the metrics server.
    async fn drain(self, failed: Option<anyhow::Error>) -> anyhow::Result<()> {
        let Running {
            grace,
            timeout,
            reloader,
            metrics,
            dead,
            stop_listeners,
            stop_all,
            stages,
        } = self;
        let grace_end = Instant::now() + grace;
        // Listeners reloads added stop with the others.
        let added = reloader.close_listeners();
        let drained = tokio::time::timeout(
            timeout,
            drain(
                stages,
                added,
                failed,
                &metrics,
                &dead,
                &stop_listeners,
                grace_end,
            ),
        )
        .await;
        let result = match drained {
            Ok(r) => r,
            Err(_) => {
                let lost = report_unstored(&metrics);
                Err(anyhow::anyhow!(
                    "the shutdown deadline (pipeline.shutdown_timeout = {} ms) passed before everything read was stored: {lost} messages or rows lost (see the log)",
                    timeout.as_millis()
                ))
            }
        };
        dead.flush();
        stop_all.cancel();
        tracing::info!(
            received = metrics.received.load(Relaxed),
            sent_rows = metrics.sent_rows.load(Relaxed),
            dead_lettered = metrics.dead_lettered.load(Relaxed),
            "stopped"
        );
        result
    }
}

/// The running stages, handed to [`drain`] at shutdown.
#[derive(Debug)]
struct Stages {
    spooled: Vec<SpooledStage>,
    local: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    listener_tasks: Vec<tokio::task::JoinHandle<()>>,
    worker_tasks: Vec<tokio::task::JoinHandle<()>>,
    sender_stop: CancellationToken,
    /// The alert rules' thread and playbook delivery.
    rules: Option<crate::rules::RulesRunning>,
}

/// The orderly shutdown: listeners stop, workers drain their queues, batches are stored,
/// and the senders send until the spool is empty or the grace period has passed.
async fn drain(
    stages: Stages,
    added_listeners: Vec<tokio::task::JoinHandle<()>>,
    failed: Option<anyhow::Error>,
    metrics: &Metrics,
    dead: &DeadLetter,
    stop_listeners: &CancellationToken,
    grace_end: Instant,
) -> anyhow::Result<()> {
    let Stages {
        mut spooled,
        local,
        listener_tasks,
        worker_tasks,
        sender_stop,
        mut rules,
    } = stages;
    for n in &spooled {
        // A full spool must not wedge the drain (output down, `when_full = "block"`).
        n.spool.drain();
    }
    metrics.listeners_up.store(false, Relaxed);
    stop_listeners.cancel();
    for t in listener_tasks.into_iter().chain(added_listeners) {
        let _ = t.await;
    }
    for t in worker_tasks {
        let _ = t.await;
    }
    // Every row is mapped: the rules evaluate what is due, hand their alerts to the
    // outputs (still running) and save their windows.
    if let Some(r) = &mut rules {
        r.stop_rules().await;
    }
    dead.flush();
    if let Some(e) = failed {
        return Err(e);
    }
    for h in local {
        h.await.context("output task")??;
    }
    if !spooled.is_empty() {
        for s in &mut spooled {
            let _ = (&mut s.spooler).await;
        }
        // Everything read is now spooled. Send what can be sent within the grace period.
        loop {
            if spooled.iter().all(|s| s.spool.bytes() == 0) || Instant::now() >= grace_end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sender_stop.cancel();
        for s in &mut spooled {
            let _ = (&mut s.senders).await;
        }
        let left = metrics.spool_files.load(Relaxed);
        if left > 0 {
            tracing::warn!(
                batches = left,
                "batches left in the spool; they are sent at the next start"
            );
        }
    }
    if let Some(r) = &mut rules {
        // What is not delivered stays in the outbox for the next start.
        r.stop_delivery().await;
    }
    Ok(())
}

/// At the shutdown deadline: say what is still in memory, count it, and return how much.
fn report_unstored(metrics: &Metrics) -> u64 {
    let received = metrics.received.load(Relaxed);
    let processed =
        metrics.parsed.load(Relaxed) + metrics.dropped(crate::metrics::DropReason::UdpOverflow);
    let messages = received.saturating_sub(processed);
    let rows = metrics.pending_rows.load(Relaxed);
    metrics.count_drop(
        crate::metrics::DropReason::ShutdownDeadline,
        messages + rows,
    );
    tracing::error!(
        unprocessed_messages = messages,
        unstored_rows = rows,
        spool_write_failing = metrics.spool_write_failing.load(Relaxed),
        "shutdown deadline passed: these messages and rows were never stored and are lost (rows still being mapped by a worker are not included)"
    );
    messages + rows
}

/// The running parts of a spooled output.
#[derive(Debug)]
struct SpooledStage {
    spool: Arc<Spool>,
    spooler: tokio::task::JoinHandle<()>,
    senders: tokio::task::JoinHandle<()>,
}

/// The signals the forwarder handles. SIGTERM and SIGINT shut it down; SIGHUP reloads the
/// configuration; SIGUSR1 logs the counters and SIGUSR2 is logged and ignored (the default
/// action of all three would kill the process and lose what it holds).
#[derive(Debug)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let on = |k: SignalKind, name: &str| {
            signal(k).with_context(|| format!("cannot install the {name} handler"))
        };
        Ok(Signals {
            term: on(SignalKind::terminate(), "SIGTERM")?,
            int: on(SignalKind::interrupt(), "SIGINT")?,
            hup: on(SignalKind::hangup(), "SIGHUP")?,
            usr1: on(SignalKind::user_defined1(), "SIGUSR1")?,
            usr2: on(SignalKind::user_defined2(), "SIGUSR2")?,
        })
    }

    /// Wait for SIGTERM or SIGINT, handling the others meanwhile.
    async fn shutdown(
        &mut self,
        metrics: &Metrics,
        reloader: &crate::reload::Reloader,
    ) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                // The reload logs its outcome (the dead-letter file is reopened at each
                // write, so moving it aside needs no signal).
                _ = self.hup.recv() => {
                    reloader.reload().await;
                }
                _ = self.usr1.recv() => tracing::info!(
                    received = metrics.received.load(Relaxed),
                    sent_rows = metrics.sent_rows.load(Relaxed),
                    dead_lettered = metrics.dead_lettered.load(Relaxed),
                    spool_files = metrics.spool_files.load(Relaxed),
                    spool_bytes = metrics.spool_bytes.load(Relaxed),
                    ready = metrics.ready(),
                    "SIGUSR1: counters"
                ),
                _ = self.usr2.recv() => tracing::warn!("SIGUSR2 received and ignored"),
            }
        }
    }
}
