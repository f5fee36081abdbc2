//! Configuration reload (`SIGHUP`, `mcas-forward reload`): the routing swaps in at once, the
//! rest waits for a restart.
//!
//! A reload reads and checks the whole file first; any error leaves the running
//! configuration as it is. What a reload applies: each output's `where` and `transform`, the
//! `[mapping]` rules and `[routing]`, and the TLS listeners' certificate files, read again
//! (a certificate renewed in place is served to new handshakes; open connections keep
//! theirs). The workers take the new router at their next chunk;
//! rows already in batches are sent as they were built. Everything else (listeners, the
//! outputs themselves and their credentials, spool, pipeline, metrics, admin, dead-letter,
//! log) is compared with the running file and, where it differs, reported as
//! `restart_required` and left as it is.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
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
    /// The running file, as TOML: what the next reload is compared with.
    running: Mutex<toml::Table>,
    cell: Arc<RouterCell>,
    observers: Vec<Arc<dyn Observer>>,
    metrics: Arc<Metrics>,
    generation: std::sync::atomic::AtomicU64,
    /// The TLS listeners, as they run, with their acceptors: a reload reads their
    /// certificate files again.
    tls: Vec<(crate::config::ListenConfig, crate::tls::AcceptorCell)>,
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
            running: Mutex::new(text.parse().unwrap_or_default()),
            cell,
            observers,
            metrics,
            generation: std::sync::atomic::AtomicU64::new(1),
            tls: Vec::new(),
        }
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
    pub(crate) fn reload(&self) -> Outcome {
        let outcome = match self.try_reload() {
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

    fn try_reload(&self) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let Some(path) = &self.path else {
            anyhow::bail!(
                "the forwarder runs on the embedded default configuration: there is no file to reload"
            );
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        // The whole new file must be valid, whatever part of it applies now.
        Config::parse(&text)?;
        let new: toml::Table = text.parse()?;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let (applied, restart_required) = diff(&running, &new);
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
        if names(&running) != names(&new) {
            anyhow::bail!(
                "the outputs are not the same (added, removed, renamed or reordered): that needs a restart; nothing was applied"
            );
        }
        // The running file with the new routing: outputs, listeners and the rest stay as
        // they run (a changed `kind` or `table` must not meet the running destinations).
        let mut kept = running.clone();
        for key in ["mapping", "routing"] {
            match new.get(key) {
                Some(v) => kept.insert(key.to_owned(), v.clone()),
                None => kept.remove(key),
            };
        }
        if let (Some(old), Some(fresh)) = (kept.get_mut("output"), new.get("output")) {
            for (o, n) in outputs_mut(old).into_iter().zip(outputs_of(fresh)) {
                for key in ROUTING_KEYS {
                    match n.get(*key) {
                        Some(v) => o.insert((*key).to_owned(), v.clone()),
                        None => o.remove(*key),
                    };
                }
            }
        }
        let merged = Config::parse(&toml::to_string(&kept)?)?;
        let mut router = crate::run::router(&merged, self.metrics.clone())?;
        for o in &self.observers {
            router = router.with_observer(o.clone());
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
        *running = kept;
        Ok((applied, restart_required))
    }
}

/// The keys of an output a reload applies.
const ROUTING_KEYS: &[&str] = &["where", "transform"];

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
        if s == "output" {
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
                if ROUTING_KEYS.contains(&k.as_str()) {
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
        assert_eq!(restart, ["listen", "output[b].path"]);
        assert_eq!(diff(&old, &old), (vec![], vec![]));
    }
}
