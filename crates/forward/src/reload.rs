//! Configuration reload (`SIGHUP`, `mcas-forward reload`): routes, destinations and listeners
//! swap in at once; what cannot is reported as needing a restart.
//!
//! A reload reads and checks the whole file first; any error leaves the running
//! configuration as it is. What a reload applies:
//! - each output's `where` and `transform`, the `[mapping]` rules and `[routing]`: the
//!   workers take the new router at their next chunk; rows already in batches are sent as
//!   they were built;
//! - the network outputs' destinations, built again (endpoint, stream, credentials, and a
//!   secret file renewed in place); their spools stay;
//! - listeners added and removed, and the TLS listeners' certificate files, read again (a
//!   certificate renewed in place is served to new handshakes; open connections keep theirs).
//!
//! Everything else (an output's kind, table, senders or file; a listener's other settings;
//! spool, pipeline, metrics, admin, dead-letter, log) is compared with the running file and,
//! where it differs, reported as `restart_required` and left as it is.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, ListenConfig};
use crate::listen::Workers;
use crate::metrics::Metrics;
use crate::route::{Observer, Router};

/// The router the workers use, swapped by a reload.
#[derive(Debug)]
pub(crate) struct RouterCell(RwLock<Arc<Router>>);

impl RouterCell {
    pub(crate) fn new(r: Router) -> Arc<RouterCell> {
        Arc::new(RouterCell(RwLock::new(Arc::new(r))))
    }

    /// The router of the current generation.
    pub(crate) fn current(&self) -> Arc<Router> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, r: Router) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r);
    }
}

/// What a reload did.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Outcome {
    /// `ok` or `error`.
    pub(crate) result: &'static str,
    /// The configuration generation now running (1 at start).
    pub(crate) generation: u64,
    /// The error that kept the running configuration, when `result` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// What changed and was applied (`output[soc].where`, `mapping`, ...).
    pub(crate) applied: Vec<String>,
    /// What changed but needs a restart, left as it is.
    pub(crate) restart_required: Vec<String>,
}

/// Reloads the configuration file of the running forwarder.
#[derive(Debug)]
pub(crate) struct Reloader {
    path: Option<PathBuf>,
    /// The running file, as TOML: what the next reload is compared with. Its lock makes
    /// reloads run one at a time.
    running: tokio::sync::Mutex<toml::Table>,
    cell: Arc<RouterCell>,
    observers: Vec<Arc<dyn Observer>>,
    metrics: Arc<Metrics>,
    generation: std::sync::atomic::AtomicU64,
    /// The TLS listeners, as they run, with their acceptors: a reload reads their
    /// certificate files again.
    tls: Vec<(crate::config::ListenConfig, crate::tls::AcceptorCell)>,
    /// The running listeners, once started: a reload may add and remove them.
    listeners: std::sync::OnceLock<Arc<Listeners>>,
    /// The spooled outputs' destinations, by output name: a reload builds them again.
    destinations: Mutex<Vec<(String, crate::output::DestinationCell)>>,
}

impl Reloader {
    /// `text` is the running configuration's text; `observers` are carried over to every
    /// new router.
    pub(crate) fn new(
        path: Option<PathBuf>,
        text: &str,
        cell: Arc<RouterCell>,
        observers: Vec<Arc<dyn Observer>>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        metrics.config_generation.store(1, Relaxed);
        Reloader {
            path,
            running: tokio::sync::Mutex::new(text.parse().unwrap_or_default()),
            cell,
            observers,
            metrics,
            generation: std::sync::atomic::AtomicU64::new(1),
            tls: Vec::new(),
            listeners: std::sync::OnceLock::new(),
            destinations: Mutex::new(Vec::new()),
        }
    }

    /// The spooled output `name` sends through `cell`: a reload replaces what is in it.
    pub(crate) fn destination(&self, name: &str, cell: crate::output::DestinationCell) {
        self.destinations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_owned(), cell));
    }

    /// The listeners have started: from now on a reload may add and remove them.
    pub(crate) fn started(&self, l: Listeners) {
        let _ = self.listeners.set(Arc::new(l));
    }

    /// At shutdown: stop every listener, including those reloads added, and return the
    /// tasks of the latter for the drain to wait for.
    pub(crate) fn close_listeners(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.listeners.get().map(|l| l.close()).unwrap_or_default()
    }

    /// Read the certificate files of these TLS listeners again at each reload, and serve
    /// them to new handshakes.
    pub(crate) fn with_tls(
        mut self,
        tls: Vec<(crate::config::ListenConfig, crate::tls::AcceptorCell)>,
    ) -> Reloader {
        self.tls = tls;
        self
    }

    /// Read, check and apply the file; the running configuration stays on any error.
    /// Reloads run one at a time.
    pub(crate) async fn reload(&self) -> Outcome {
        let mut running = self.running.lock().await;
        let outcome = match self.try_reload(&mut running).await {
            Ok((applied, restart_required)) => {
                let generation = self.generation.fetch_add(1, Relaxed) + 1;
                self.metrics.config_generation.store(generation, Relaxed);
                self.metrics.config_reloads_ok.fetch_add(1, Relaxed);
                self.metrics
                    .config_last_reload_success
                    .store(jiff::Timestamp::now().as_second().max(0) as u64, Relaxed);
                Outcome {
                    result: "ok",
                    generation,
                    error: None,
                    applied,
                    restart_required,
                }
            }
            Err(e) => {
                self.metrics.config_reloads_error.fetch_add(1, Relaxed);
                Outcome {
                    result: "error",
                    generation: self.generation.load(Relaxed),
                    error: Some(format!("{e:#}")),
                    applied: Vec::new(),
                    restart_required: Vec::new(),
                }
            }
        };
        match &outcome.error {
            None => tracing::info!(
                generation = outcome.generation,
                applied = ?outcome.applied,
                restart_required = ?outcome.restart_required,
                "configuration reloaded"
            ),
            Some(e) => tracing::error!(
                error = %e,
                "configuration reload failed; the running configuration stays"
            ),
        }
        outcome
    }

    async fn try_reload(
        &self,
        running: &mut toml::Table,
    ) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let Some(path) = &self.path else {
            anyhow::bail!(
                "the forwarder runs on the embedded default configuration: there is no file to reload"
            );
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        // The whole new file must be valid, whatever part of it applies now.
        let fresh = Config::parse(&text)?;
        let new: toml::Table = text.parse()?;
        let (mut applied, mut restart_required) = diff(running, &new);
        // What a restart needs stays as it runs: the router is built from the new file's
        // routing with the running outputs, which are the same outputs when only routing
        // keys changed (same names, in the same order).
        let names = |t: &toml::Table| -> Vec<String> {
            outputs(t)
                .iter()
                .map(|o| {
                    o.get("name")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("default")
                        .to_owned()
                })
                .collect()
        };
        if names(running) != names(&new) {
            anyhow::bail!(
                "the outputs are not the same (added, removed, renamed or reordered): that needs a restart; nothing was applied"
            );
        }
        // The running file with the new routing: outputs and the rest stay as they run (a
        // changed `kind` or `table` must not meet the running destinations).
        let mut kept = running.clone();
        for key in ["mapping", "routing"] {
            match new.get(key) {
                Some(v) => kept.insert(key.to_owned(), v.clone()),
                None => kept.remove(key),
            };
        }
        if let (Some(old), Some(fresh)) = (kept.get_mut("output"), new.get("output")) {
            for (o, n) in outputs_mut(old).into_iter().zip(outputs_of(fresh)) {
                // A network output of the same kind takes its new destination settings
                // too (endpoint, stream, credentials...).
                let keys: Vec<String> = if swaps_destination(o, n) {
                    o.keys()
                        .chain(n.keys())
                        .filter(|k| !RESTART_OUTPUT_KEYS.contains(&k.as_str()))
                        .cloned()
                        .collect()
                } else {
                    ROUTING_KEYS.iter().map(|k| (*k).to_owned()).collect()
                };
                for key in keys {
                    match n.get(&key) {
                        Some(v) => o.insert(key, v.clone()),
                        None => o.remove(&key),
                    };
                }
            }
        }
        // Listeners: new addresses are bound now (before any old one is closed), removed
        // ones are stopped once everything else is in place, changed ones need a restart.
        let plan = match self.listeners.get() {
            Some(l) => {
                let plan = l.plan(&new, &fresh.listen).await?;
                applied.extend(plan.applied.iter().cloned());
                restart_required.extend(plan.restart_required.iter().cloned());
                kept.insert("listen".to_owned(), plan.listen.clone());
                Some((l, plan))
            }
            None => None,
        };
        let mut merged = Config::parse(&toml::to_string(&kept)?)?;
        if let Some((_, plan)) = &plan {
            // One parser per listener index, removed ones included (indices never move).
            merged.listen = plan.by_index.clone();
        }
        let mut router = crate::route::from_config(&merged, self.metrics.clone())?;
        for o in &self.observers {
            router = router.with_observer(o.clone());
        }
        // Every spooled output's destination, built again from its settings (a secret file
        // or certificate renewed in place is read again): all must build before anything
        // is applied. Their spools stay, and what is spooled is sent by the new ones.
        let mut destinations = Vec::new();
        {
            let cells = self
                .destinations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for (name, cell) in cells {
                let Some(o) = merged.outputs.iter().find(|o| o.name() == name) else {
                    continue;
                };
                let d = crate::output::build(o, self.metrics.clone())
                    .map_err(|e| anyhow::anyhow!("output {name}: {e:#}"))?;
                destinations.push((cell, d));
            }
        }
        // The running TLS listeners' certificate files, read again (renewed in place):
        // every one must load before anything is applied.
        let mut acceptors = Vec::with_capacity(self.tls.len());
        for (l, cell) in &self.tls {
            let a = crate::tls::acceptor(l).map_err(|e| {
                anyhow::anyhow!("listen tls {}: cert, key or client_ca: {e:#}", l.address)
            })?;
            acceptors.push((cell, a));
        }
        self.cell.set(router);
        for (cell, a) in acceptors {
            cell.set(a);
        }
        for (cell, d) in destinations {
            cell.set(d);
        }
        if let Some((l, plan)) = plan {
            l.apply(plan);
        }
        *running = kept;
        Ok((applied, restart_required))
    }
}

/// A listener of the running forwarder.
#[derive(Debug)]
struct Slot {
    cfg: ListenConfig,
    /// Its `[[listen]]` table as written.
    entry: toml::Value,
    stop: CancellationToken,
    live: bool,
}

/// The running listeners, for a reload that adds or removes some. A listener's index (the
/// router's parser for it) never changes; a removed one keeps its place.
#[derive(Debug)]
pub(crate) struct Listeners {
    inner: Mutex<ListenersInner>,
}

#[derive(Debug)]
struct ListenersInner {
    /// None once the forwarder is stopping: no listener starts any more.
    workers: Option<Workers>,
    metrics: Arc<Metrics>,
    slots: Vec<Slot>,
    /// The tasks of listeners a reload started, for the drain to wait for.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a reload does to the listeners.
#[derive(Debug)]
pub(crate) struct ListenPlan {
    applied: Vec<String>,
    restart_required: Vec<String>,
    /// The `listen` array to run: kept and added, in order.
    listen: toml::Value,
    /// Every listener's settings by index, removed ones included, added ones at the end.
    by_index: Vec<ListenConfig>,
    /// Added listeners, bound.
    add: Vec<(ListenConfig, toml::Value, crate::listen::Bound)>,
    /// Indices to stop.
    remove: Vec<usize>,
}

/// A listener's identity: its protocol and address.
/// A running listener: its slot, its key, and its `[[listen]]` table.
type LiveListener = (usize, String, toml::Value);

fn listen_key(entry: &toml::Value) -> String {
    let get = |k: &str| entry.get(k).and_then(toml::Value::as_str).unwrap_or("");
    // A Kafka listener has no address: its group and topics name it.
    let topics: Vec<&str> = entry
        .get("topics")
        .and_then(toml::Value::as_array)
        .map(|t| t.iter().filter_map(toml::Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "{} {}{}{}",
        get("protocol"),
        get("address"),
        get("group"),
        topics.join(",")
    )
}

impl Listeners {
    /// The listeners as started: each with its `[[listen]]` table (from `text`) and the
    /// token that stops it alone.
    pub(crate) fn new(
        text: &str,
        started: Vec<(ListenConfig, CancellationToken)>,
        workers: Workers,
        metrics: Arc<Metrics>,
    ) -> Listeners {
        let table: toml::Table = text.parse().unwrap_or_default();
        let entries = table
            .get("listen")
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let slots = started
            .into_iter()
            .zip(entries)
            .map(|((cfg, stop), entry)| Slot {
                cfg,
                entry,
                stop,
                live: true,
            })
            .collect();
        Listeners {
            inner: Mutex::new(ListenersInner {
                workers: Some(workers),
                metrics,
                slots,
                tasks: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ListenersInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bind the new listeners of `new` (its `[[listen]]` tables and their parsed settings,
    /// in the same order); nothing runs or stops yet.
    async fn plan(&self, new: &toml::Table, parsed: &[ListenConfig]) -> anyhow::Result<ListenPlan> {
        let entries = new
            .get("listen")
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (live, mut by_index, metrics): (Vec<LiveListener>, Vec<ListenConfig>, Arc<Metrics>) = {
            let inner = self.lock();
            if inner.workers.is_none() {
                anyhow::bail!("the forwarder is stopping");
            }
            (
                inner
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.live)
                    .map(|(i, s)| (i, listen_key(&s.entry), s.entry.clone()))
                    .collect(),
                inner.slots.iter().map(|s| s.cfg.clone()).collect(),
                inner.metrics.clone(),
            )
        };
        let mut plan = ListenPlan {
            applied: Vec::new(),
            restart_required: Vec::new(),
            listen: toml::Value::Array(Vec::new()),
            by_index: Vec::new(),
            add: Vec::new(),
            remove: Vec::new(),
        };
        let mut listen = Vec::new();
        for (entry, cfg) in entries.iter().zip(parsed) {
            let key = listen_key(entry);
            match live.iter().find(|(_, k, _)| *k == key) {
                Some((_, _, running)) => {
                    if running != entry {
                        plan.restart_required.push(format!("listen[{key}]"));
                    }
                    listen.push(running.clone());
                }
                None => {
                    let bound = crate::listen::bind(cfg, &metrics).await?;
                    plan.applied.push(format!("listen[{key}] added"));
                    by_index.push(cfg.clone());
                    listen.push(entry.clone());
                    plan.add.push((cfg.clone(), entry.clone(), bound));
                }
            }
        }
        for (i, key, _) in &live {
            if !entries.iter().any(|e| listen_key(e) == *key) {
                plan.applied.push(format!("listen[{key}] removed"));
                plan.remove.push(*i);
            }
        }
        plan.listen = toml::Value::Array(listen);
        plan.by_index = by_index;
        Ok(plan)
    }

    /// Start the added listeners, then stop the removed ones.
    fn apply(&self, plan: ListenPlan) {
        let mut inner = self.lock();
        let Some(workers) = inner.workers.clone() else {
            return;
        };
        for (cfg, entry, bound) in plan.add {
            let index = inner.slots.len();
            let stop = CancellationToken::new();
            tracing::info!(protocol = %cfg.protocol, address = %crate::listen::local_addr(&bound).map_or_else(|| cfg.place(), |a| a.to_string()), "listening (added by a reload)");
            let task = tokio::spawn(crate::listen::run(
                index,
                cfg.clone(),
                bound,
                workers.clone(),
                inner.metrics.clone(),
                stop.clone(),
            ));
            inner.tasks.push(task);
            inner.slots.push(Slot {
                cfg,
                entry,
                stop,
                live: true,
            });
        }
        for i in plan.remove {
            if let Some(s) = inner.slots.get_mut(i) {
                tracing::info!(protocol = %s.cfg.protocol, address = %s.cfg.place(), "listener removed by a reload: closed");
                s.live = false;
                s.stop.cancel();
            }
        }
    }

    /// At shutdown: stop every listener, let go of the workers' queues (so the workers
    /// can finish) and hand over the tasks of listeners reloads started.
    pub(crate) fn close(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut inner = self.lock();
        inner.workers = None;
        for s in &inner.slots {
            s.stop.cancel();
        }
        std::mem::take(&mut inner.tasks)
    }
}

/// The keys of an output a reload applies.
const ROUTING_KEYS: &[&str] = &["where", "transform"];

/// The keys of an output that only a restart changes: what it is, which rows it takes, its
/// number of senders. (A local output's `path` too: see [`swaps_destination`].)
const RESTART_OUTPUT_KEYS: &[&str] = &["name", "kind", "table", "concurrency"];

/// Whether a reload builds this output's destination again from its new settings: a network
/// output (spooled) whose kind stays. A local output keeps its open file.
fn swaps_destination(old: &toml::Table, new: &toml::Table) -> bool {
    let kind = |t: &toml::Table| {
        t.get("kind")
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let network = matches!(
        kind(old).as_deref(),
        Some("logs-ingestion" | "data-collector")
    );
    network && kind(old) == kind(new)
}

fn outputs_of(v: &toml::Value) -> Vec<&toml::Table> {
    match v {
        toml::Value::Table(t) => vec![t],
        toml::Value::Array(a) => a.iter().filter_map(toml::Value::as_table).collect(),
        _ => Vec::new(),
    }
}

fn outputs_mut(v: &mut toml::Value) -> Vec<&mut toml::Table> {
    match v {
        toml::Value::Table(t) => vec![t],
        toml::Value::Array(a) => a.iter_mut().filter_map(toml::Value::as_table_mut).collect(),
        _ => Vec::new(),
    }
}

fn outputs(t: &toml::Table) -> Vec<&toml::Table> {
    t.get("output").map(outputs_of).unwrap_or_default()
}

/// What differs between the running file and the new one: (applied, restart_required), as
/// key paths. Values are compared, never shown (some are secrets).
pub(crate) fn diff(old: &toml::Table, new: &toml::Table) -> (Vec<String>, Vec<String>) {
    let mut applied = Vec::new();
    let mut restart = Vec::new();
    let mut sections: Vec<&String> = old.keys().chain(new.keys()).collect();
    sections.sort();
    sections.dedup();
    for s in sections {
        if s == "output" || s == "listen" {
            // Outputs below; listeners by the listener plan.
            continue;
        }
        if old.get(s) != new.get(s) {
            if s == "mapping" || s == "routing" {
                applied.push(s.clone());
            } else {
                restart.push(s.clone());
            }
        }
    }
    let (o, n) = (outputs(old), outputs(new));
    for (i, (a, b)) in o.iter().zip(&n).enumerate() {
        let name = b
            .get("name")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("output[{i}]"), |n| format!("output[{n}]"));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if a.get(k) != b.get(k) {
                let path = format!("{name}.{k}");
                let applies = ROUTING_KEYS.contains(&k.as_str())
                    || (swaps_destination(a, b) && !RESTART_OUTPUT_KEYS.contains(&k.as_str()));
                if applies {
                    applied.push(path);
                } else {
                    restart.push(path);
                }
            }
        }
    }
    if o.len() != n.len() {
        restart.push("output".to_owned());
    }
    (applied, restart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> toml::Table {
        s.parse().unwrap()
    }

    #[test]
    fn routing_keys_apply_and_the_rest_needs_a_restart() {
        let old = t(r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:5514"
[[output]]
name = "a"
kind = "stdout"
where = 'DeviceVendor == "A"'
[[output]]
name = "b"
kind = "file"
path = "x"
[routing]
unmatched = "drop"
"#);
        let new = t(r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:6514"
[[output]]
name = "a"
kind = "stdout"
where = 'DeviceVendor == "B"'
transform = "source"
[[output]]
name = "b"
kind = "file"
path = "y"
[mapping]
time_generated = "received"
"#);
        let (applied, restart) = diff(&old, &new);
        assert_eq!(
            applied,
            [
                "mapping",
                "routing",
                "output[a].transform",
                "output[a].where"
            ]
        );
        // Listeners are planned apart (added, removed, changed): see Listeners::plan.
        assert_eq!(restart, ["output[b].path"]);
        assert_eq!(diff(&old, &old), (vec![], vec![]));
    }
}
