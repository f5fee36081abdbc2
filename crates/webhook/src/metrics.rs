//! Delivery counters per endpoint, a plain snapshot of them, and a Prometheus text rendering in
//! the forwarder's style (`# HELP`, `# TYPE`, one series per endpoint label).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::outbox::OutboxSnapshot;

/// The class of one attempt's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusClass {
    /// 2xx.
    Success,
    /// 3xx (redirects are not followed).
    Redirect,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// No answer: connection refused or reset, TLS failure, timeout.
    Transport,
}

impl StatusClass {
    /// The class of an HTTP status code.
    pub fn of(status: u16) -> StatusClass {
        match status {
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirect,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }

    /// The label value: `2xx`, `3xx`, `4xx`, `5xx`, `error`.
    pub fn label(self) -> &'static str {
        match self {
            StatusClass::Success => "2xx",
            StatusClass::Redirect => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::Transport => "error",
        }
    }

    fn index(self) -> usize {
        match self {
            StatusClass::Success => 0,
            StatusClass::Redirect => 1,
            StatusClass::ClientError => 2,
            StatusClass::ServerError => 3,
            StatusClass::Transport => 4,
        }
    }
}

const CLASSES: [StatusClass; 5] = [
    StatusClass::Success,
    StatusClass::Redirect,
    StatusClass::ClientError,
    StatusClass::ServerError,
    StatusClass::Transport,
];

/// Live counters of one endpoint (relaxed atomics).
#[derive(Debug, Default)]
pub(crate) struct EndpointCounters {
    pub(crate) attempts: [AtomicU64; 5],
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) disabled_events: AtomicU64,
    pub(crate) disabled: AtomicBool,
}

impl EndpointCounters {
    pub(crate) fn attempt(&self, class: StatusClass) {
        self.attempts[class.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, name: &str) -> EndpointSnapshot {
        EndpointSnapshot {
            name: name.to_owned(),
            attempts: CLASSES.map(|c| (c, self.attempts[c.index()].load(Relaxed))),
            delivered: self.delivered.load(Relaxed),
            retried: self.retried.load(Relaxed),
            failed: self.failed.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            disabled_events: self.disabled_events.load(Relaxed),
            disabled: self.disabled.load(Relaxed),
        }
    }
}

/// One endpoint's counters at a point in time. Its name is the configured name: never the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointSnapshot {
    /// The endpoint's name.
    pub name: String,
    /// Attempts by the class of their answer.
    pub attempts: [(StatusClass, u64); 5],
    /// Messages delivered (a 2xx answer).
    pub delivered: u64,
    /// Attempts that failed and were scheduled again (429, 408, 5xx, no answer).
    pub retried: u64,
    /// Messages given up after the last attempt of the schedule failed (moved to `dead/`).
    pub failed: u64,
    /// Messages refused for good by the receiver (another 4xx, a 3xx; moved to `dead/`).
    pub dead_lettered: u64,
    /// `410 Gone` answers (each disables the endpoint; the first one is logged).
    pub disabled_events: u64,
    /// Whether the endpoint is disabled now (after a 410, until a restart).
    pub disabled: bool,
}

impl EndpointSnapshot {
    /// The attempts of one class.
    pub fn attempts_of(&self, class: StatusClass) -> u64 {
        self.attempts
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(0, |(_, n)| *n)
    }
}

/// Everything the webhook machinery counts, at a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// The outbox's counters and gauges.
    pub outbox: OutboxSnapshot,
    /// Per configured endpoint, in configuration order.
    pub endpoints: Vec<EndpointSnapshot>,
    /// Pending messages whose endpoint is not configured (kept on disk, not attempted).
    pub orphaned: u64,
}

impl MetricsSnapshot {
    /// One endpoint's counters by name.
    pub fn endpoint(&self, name: &str) -> Option<&EndpointSnapshot> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// Appends the Prometheus text form to `out`, every name starting with `prefix` (for the
    /// forwarder, `mcas_forward`): `PREFIX_webhook_attempts_total{endpoint,class}`,
    /// `PREFIX_webhook_messages_total{endpoint,outcome}`, `PREFIX_webhook_endpoint_disabled`,
    /// and the outbox's series.
    pub fn render_prometheus(&self, prefix: &str, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {prefix}_webhook_attempts_total Webhook delivery attempts, by endpoint and answer class.\n# TYPE {prefix}_webhook_attempts_total counter"
        );
        for e in &self.endpoints {
            for (class, n) in e.attempts {
                let _ = writeln!(
                    out,
                    "{prefix}_webhook_attempts_total{{endpoint=\"{}\",class=\"{}\"}} {n}",
                    escape(&e.name),
                    class.label()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_webhook_messages_total Webhook messages by endpoint and outcome (delivered, retried, failed, dead_lettered, disabled).\n# TYPE {prefix}_webhook_messages_total counter"
        );
        for e in &self.endpoints {
            for (outcome, n) in [
                ("delivered", e.delivered),
                ("retried", e.retried),
                ("failed", e.failed),
                ("dead_lettered", e.dead_lettered),
                ("disabled", e.disabled_events),
            ] {
                let _ = writeln!(
                    out,
                    "{prefix}_webhook_messages_total{{endpoint=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(&e.name)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_webhook_endpoint_disabled 1 while the endpoint is disabled by a 410 Gone (until restart).\n# TYPE {prefix}_webhook_endpoint_disabled gauge"
        );
        for e in &self.endpoints {
            let _ = writeln!(
                out,
                "{prefix}_webhook_endpoint_disabled{{endpoint=\"{}\"}} {}",
                escape(&e.name),
                u8::from(e.disabled)
            );
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}_webhook_outbox_messages Webhook messages pending in the outbox, by endpoint.\n# TYPE {prefix}_webhook_outbox_messages gauge"
        );
        for (name, n) in &self.outbox.pending_by_endpoint {
            let _ = writeln!(
                out,
                "{prefix}_webhook_outbox_messages{{endpoint=\"{}\"}} {n}",
                escape(name)
            );
        }
        let o = &self.outbox;
        let series: [(&str, &str, &str, u64); 10] = [
            (
                "webhook_outbox_bytes",
                "gauge",
                "Bytes of webhook messages pending in the outbox.",
                o.pending_bytes,
            ),
            (
                "webhook_outbox_orphaned_messages",
                "gauge",
                "Pending webhook messages whose endpoint is not configured.",
                self.orphaned,
            ),
            (
                "webhook_outbox_enqueued_total",
                "counter",
                "Webhook messages written to the outbox.",
                o.enqueued,
            ),
            (
                "webhook_outbox_duplicates_total",
                "counter",
                "Enqueues of a message id already pending for the endpoint.",
                o.duplicates,
            ),
            (
                "webhook_outbox_rejected_full_total",
                "counter",
                "Enqueues refused because the outbox was full.",
                o.rejected_full,
            ),
            (
                "webhook_outbox_rejected_invalid_total",
                "counter",
                "Enqueues refused for a bad id, endpoint name or body size.",
                o.rejected_invalid,
            ),
            (
                "webhook_outbox_corrupt_total",
                "counter",
                "Unreadable outbox files moved to dead/ on open.",
                o.corrupt,
            ),
            (
                "webhook_outbox_dead_lettered_total",
                "counter",
                "Webhook messages moved to dead/.",
                o.dead_lettered,
            ),
            (
                "webhook_outbox_dead_pruned_total",
                "counter",
                "The oldest webhook messages of dead/ removed to keep it within its bound.",
                o.dead_pruned,
            ),
            (
                "webhook_outbox_io_errors_total",
                "counter",
                "Outbox file operations that failed.",
                o.io_errors,
            ),
        ];
        for (name, kind, help, v) in series {
            let _ = writeln!(
                out,
                "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} {kind}\n{prefix}_{name} {v}"
            );
        }
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_endpoint_series() {
        let c = EndpointCounters::default();
        c.attempt(StatusClass::ServerError);
        c.attempt(StatusClass::ServerError);
        c.attempt(StatusClass::Success);
        c.delivered.fetch_add(1, Relaxed);
        c.retried.fetch_add(2, Relaxed);
        let snap = MetricsSnapshot {
            outbox: OutboxSnapshot::default(),
            endpoints: vec![c.snapshot("so\"c")],
            orphaned: 0,
        };
        let mut out = String::new();
        snap.render_prometheus("mcas_forward", &mut out);
        assert!(
            out.contains(
                "mcas_forward_webhook_attempts_total{endpoint=\"so\\\"c\",class=\"5xx\"} 2\n"
            ),
            "{out}"
        );
        assert!(out.contains(
            "mcas_forward_webhook_messages_total{endpoint=\"so\\\"c\",outcome=\"delivered\"} 1\n"
        ));
        assert!(out.contains("# TYPE mcas_forward_webhook_outbox_bytes gauge\n"));
        assert_eq!(snap.endpoints[0].attempts_of(StatusClass::Success), 1);
    }
}
