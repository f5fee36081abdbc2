//! `tap`: the rows passing an output, live, for a person at a terminal (as Vector's `tap`).
//!
//! [`Tap`] is an observer of the processing chain (stage 5). While nobody is watching it
//! costs one atomic load per row. Each watcher (a `GET /tap` on the admin endpoint) has a
//! bounded queue: a watcher that reads too slowly loses rows, which are counted and
//! reported to it, and never slows the pipeline.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::mpsc;

use crate::batch::Route;
use crate::route::{Fate, Observed, Observer};

/// Watchers at once; more are refused.
pub(crate) const MAX_WATCHERS: usize = 8;
/// Lines queued per watcher before rows are skipped for it.
const QUEUE: usize = 1024;

/// What a watcher asks for.
#[derive(Debug, Default, Clone)]
pub(crate) struct TapRequest {
    /// A KQL predicate on CommonSecurityLog rows (`DeviceVendor == "Acme"`); with one,
    /// only the CommonSecurityLog rows it keeps are shown.
    pub(crate) filter: Option<String>,
    /// Stop after this many rows.
    pub(crate) limit: Option<u64>,
    /// Show the rows the output's transformation drops too.
    pub(crate) filtered: bool,
}

/// Why a watch was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TapError {
    #[error("the `where` predicate does not compile:\n{0}")]
    Filter(String),
    #[error("{MAX_WATCHERS} taps are already open")]
    Busy,
}

/// One watcher.
#[derive(Debug)]
struct Watcher {
    filter: Option<mcas_kql::Query>,
    filtered: bool,
    left: Option<u64>,
    tx: mpsc::Sender<Vec<u8>>,
    /// Rows skipped because the watcher's queue was full, not yet reported to it.
    skipped: u64,
}

/// The tap of one output.
#[derive(Debug)]
pub(crate) struct Tap {
    output: String,
    /// The output's index in the configuration (its place in the fates).
    index: usize,
    schema: mcas_kql::Schema,
    watchers: Mutex<Vec<Watcher>>,
    active: AtomicUsize,
}

impl Tap {
    /// The tap of the output `output` (number `index`), whose `where` predicates are compiled against
    /// `schema` (the CommonSecurityLog columns, with the configured custom ones).
    pub(crate) fn new(output: &str, index: usize, schema: mcas_kql::Schema) -> Tap {
        Tap {
            output: output.to_owned(),
            index,
            schema,
            watchers: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
        }
    }

    /// The output's name.
    pub(crate) fn output(&self) -> &str {
        &self.output
    }

    /// Start watching: the lines come on the returned queue, which closes at the limit.
    pub(crate) fn watch(&self, req: &TapRequest) -> Result<mpsc::Receiver<Vec<u8>>, TapError> {
        let filter = match &req.filter {
            Some(p) => {
                let q = mcas_kql::Query::compile(&format!("source | where {p}"), &self.schema)
                    .map_err(|e| TapError::Filter(e.to_string()))?;
                Some(q)
            }
            None => None,
        };
        let mut w = self.lock();
        w.retain(|x| !x.tx.is_closed());
        if w.len() >= MAX_WATCHERS {
            return Err(TapError::Busy);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        w.push(Watcher {
            filter,
            filtered: req.filtered,
            left: req.limit,
            tx,
            skipped: 0,
        });
        self.active.store(w.len(), Relaxed);
        Ok(rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Watcher>> {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Observer for Tap {
    fn observe(&self, row: Observed<'_, '_>, fates: &[Fate]) {
        if self.active.load(Relaxed) == 0 {
            return;
        }
        let fate = match fates.get(self.index) {
            Some(Fate::Skipped) | None => return,
            Some(&f) => f,
        };
        let mut watchers = self.lock();
        let mut line: Option<Vec<u8>> = None;
        watchers.retain_mut(|w| {
            if w.left == Some(0) || w.tx.is_closed() {
                return false;
            }
            if fate == Fate::Filtered && !w.filtered {
                return true;
            }
            if let Some(q) = &w.filter {
                let Observed::Csl(csl) = row else { return true };
                if !q.passes(csl) {
                    return true;
                }
            }
            let text = line.get_or_insert_with(|| self.line(row, fate));
            let mut out = Vec::with_capacity(text.len() + 32);
            if w.skipped > 0 {
                // Say where rows are missing, in the stream itself.
                out.extend_from_slice(format!("{{\"skipped\":{}}}\n", w.skipped).as_bytes());
            }
            out.extend_from_slice(text);
            match w.tx.try_send(out) {
                Ok(()) => {
                    w.skipped = 0;
                    if let Some(n) = w.left.as_mut() {
                        *n -= 1;
                    }
                    w.left != Some(0)
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.skipped += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.active.store(watchers.len(), Relaxed);
    }
}

impl Tap {
    /// One line: `{"output":…,"fate":"sent"|"filtered","table":…,"row":{…}}` and a newline.
    fn line(&self, row: Observed<'_, '_>, fate: Fate) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"output\":");
        let _ = serde_json::to_writer(&mut out, &self.output);
        out.extend_from_slice(match fate {
            Fate::Appended(_) => b",\"fate\":\"sent\"",
            Fate::Filtered | Fate::Skipped => b",\"fate\":\"filtered\"",
        });
        let table = match (row, fate) {
            (Observed::Syslog(_), _) | (_, Fate::Appended(Route::Syslog)) => "Syslog",
            (Observed::Csl(_), _) => "CommonSecurityLog",
        };
        out.extend_from_slice(b",\"table\":\"");
        out.extend_from_slice(table.as_bytes());
        out.extend_from_slice(b"\",\"row\":");
        match row {
            Observed::Csl(r) => r.write_json(&mut out),
            Observed::Syslog(r) => r.write_json(&mut out),
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

/// The taps of the running forwarder, by output name.
pub(crate) type Taps = Arc<Vec<Arc<Tap>>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn tap() -> Tap {
        let cols = mcas_csl::columns();
        Tap::new(
            "default",
            0,
            mcas_kql::Schema::new(cols.iter().map(|(n, t)| (*n, t.kql_type()))),
        )
    }

    fn row(vendor: &str) -> mcas_csl::CommonSecurityLog<'static> {
        let line = format!("CEF:0|{vendor}|P|1|100|n|5|src=10.0.0.1");
        let event = mcas_cef::parse(line.as_bytes()).unwrap();
        let ctx = mcas_csl::Context::new(jiff::Timestamp::from_second(0).unwrap());
        mcas_csl::map(&event, &ctx).row.into_owned()
    }

    fn lines(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<serde_json::Value> {
        let mut v = Vec::new();
        while let Ok(l) = rx.try_recv() {
            for part in l.split(|&b| b == b'\n').filter(|p| !p.is_empty()) {
                v.push(serde_json::from_slice(part).unwrap());
            }
        }
        v
    }

    #[test]
    fn a_watcher_sees_the_rows_its_predicate_keeps_up_to_its_limit() {
        let t = tap();
        let mut rx = t
            .watch(&TapRequest {
                filter: Some(r#"DeviceVendor == "Acme""#.into()),
                limit: Some(2),
                filtered: false,
            })
            .unwrap();
        for v in ["Acme", "Other", "Acme", "Acme"] {
            t.observe(Observed::Csl(&row(v)), &[Fate::Appended(Route::Csl)]);
        }
        let got = lines(&mut rx);
        assert_eq!(got.len(), 2);
        for l in &got {
            assert_eq!(l["row"]["DeviceVendor"], "Acme");
            assert_eq!(l["fate"], "sent");
            assert_eq!(l["output"], "default");
            assert_eq!(l["table"], "CommonSecurityLog");
        }
        assert!(rx.is_closed() || rx.try_recv().is_err());
        assert_eq!(t.active.load(Relaxed), 0, "the limit ends the watch");
    }

    #[test]
    fn filtered_rows_only_when_asked_and_a_bad_predicate_is_refused() {
        let t = tap();
        let mut plain = t.watch(&TapRequest::default()).unwrap();
        let mut all = t
            .watch(&TapRequest {
                filtered: true,
                ..TapRequest::default()
            })
            .unwrap();
        t.observe(Observed::Csl(&row("A")), &[Fate::Filtered]);
        t.observe(Observed::Csl(&row("B")), &[Fate::Appended(Route::Csl)]);
        assert_eq!(lines(&mut plain).len(), 1);
        let got = lines(&mut all);
        assert_eq!(got[0]["fate"], "filtered");
        assert_eq!(got[1]["fate"], "sent");
        let e = t
            .watch(&TapRequest {
                filter: Some("NoSuchColumn == 1".into()),
                ..TapRequest::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("NoSuchColumn"), "{e}");
    }

    #[test]
    fn a_slow_watcher_loses_rows_it_is_told_about_and_never_blocks() {
        let t = tap();
        let mut rx = t.watch(&TapRequest::default()).unwrap();
        let r = row("A");
        for _ in 0..QUEUE + 10 {
            t.observe(Observed::Csl(&r), &[Fate::Appended(Route::Csl)]);
        }
        // The queue is full: 10 rows were skipped. Read one, then the next row carries
        // the count before it.
        assert!(rx.try_recv().is_ok());
        t.observe(Observed::Csl(&r), &[Fate::Appended(Route::Csl)]);
        let mut last = Vec::new();
        while let Ok(l) = rx.try_recv() {
            last = l;
        }
        let text = String::from_utf8(last).unwrap();
        assert!(text.starts_with("{\"skipped\":10}\n"), "{text}");
    }

    #[test]
    fn watchers_are_bounded_and_a_closed_one_frees_its_place() {
        let t = tap();
        let mut held: Vec<_> = (0..MAX_WATCHERS)
            .map(|_| t.watch(&TapRequest::default()).unwrap())
            .collect();
        assert!(matches!(
            t.watch(&TapRequest::default()),
            Err(TapError::Busy)
        ));
        held.pop();
        assert!(t.watch(&TapRequest::default()).is_ok());
    }
}
