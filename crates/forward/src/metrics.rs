//! Counters, their Prometheus text rendering, and the `/metrics` + `/health` server.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// Why an event or row was dropped; one counter per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// UDP datagrams that found the pipeline queue full.
    UdpOverflow,
    /// Frames over `max_message_bytes` under `oversize = "discard"`.
    Oversize,
    /// Batches dropped by `when_full = "drop-newest"` (counted in rows).
    SpoolFull,
    /// Connections refused by the allow-list (counted in connections).
    NotAllowed,
    /// Connections refused over `max_connections`.
    ConnectionLimit,
    /// TLS handshakes that failed (no or bad client certificate, ...).
    TlsHandshake,
    /// Rows that could not be written to the dead-letter file.
    DeadLetterWrite,
    /// Dead-letter entries dropped because the file reached `dead_letter.max_bytes`.
    DeadLetterFull,
    /// Unroutable messages over `dead_letter.unroutable_per_second`, counted in a summary
    /// line of the dead-letter file instead of kept one by one.
    DeadLetterSampled,
    /// Messages and rows still in memory when the shutdown deadline passed.
    ShutdownDeadline,
    /// Rows the output's transformation (`output.transform`) dropped.
    Transform,
    /// Connections refused over `max_connections_per_source`.
    SourceConnectionLimit,
    /// Datagrams the kernel dropped for our UDP sockets (receive buffer full), read from
    /// the `drops` column of `/proc/net/udp` and `/proc/net/udp6`.
    UdpKernel,
    /// Spooled batch files that vanished before they were sent, or could be neither read
    /// nor moved to `quarantine/` (counted in batch files).
    SpoolLost,
    /// Rows of a spooled request body that the output refused and that could not be opened
    /// to narrow the refusal down (damaged on disk; the body is kept in `quarantine/`).
    SpoolCorrupt,
    /// Rows no output takes, under `routing.unmatched = "drop"`.
    Unmatched,
}

const DROP_REASONS: [(DropReason, &str); 16] = [
    (DropReason::UdpOverflow, "udp_overflow"),
    (DropReason::Oversize, "oversize"),
    (DropReason::SpoolFull, "spool_full"),
    (DropReason::NotAllowed, "not_allowed"),
    (DropReason::ConnectionLimit, "connection_limit"),
    (DropReason::TlsHandshake, "tls_handshake"),
    (DropReason::DeadLetterWrite, "dead_letter_write"),
    (DropReason::DeadLetterFull, "dead_letter_full"),
    (DropReason::DeadLetterSampled, "dead_letter_sampled"),
    (DropReason::ShutdownDeadline, "shutdown_deadline"),
    (DropReason::Transform, "transform"),
    (DropReason::SourceConnectionLimit, "source_connection_limit"),
    (DropReason::UdpKernel, "udp_kernel"),
    (DropReason::SpoolLost, "spool_lost"),
    (DropReason::SpoolCorrupt, "spool_corrupt"),
    (DropReason::Unmatched, "unmatched"),
];

/// HTTP status classes kept per status code below 600.
const STATUS_SLOTS: usize = 600;

/// Every counter of the process. Cheap relaxed atomics; read by `/metrics`.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) received: AtomicU64,
    pub(crate) received_bytes: AtomicU64,
    pub(crate) parsed: AtomicU64,
    pub(crate) cef: AtomicU64,
    pub(crate) non_cef: AtomicU64,
    pub(crate) malformed_cef: AtomicU64,
    pub(crate) truncated: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    dropped: [AtomicU64; DROP_REASONS.len()],
    pub(crate) batches: AtomicU64,
    pub(crate) sent_rows: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) sent_uncompressed_bytes: AtomicU64,
    pub(crate) requests: AtomicU64,
    requests_by_status: Box<[AtomicU64]>,
    pub(crate) request_errors: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) spool_bytes: AtomicU64,
    pub(crate) spool_files: AtomicU64,
    pub(crate) spool_written: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) token_refreshes: AtomicU64,
    pub(crate) last_success_unix: AtomicU64,
    /// Set once every listener is bound.
    pub(crate) listeners_up: AtomicBool,
    /// Set after a 2xx, cleared after a failed request.
    pub(crate) output_reachable: AtomicBool,
    /// Spool bytes above which readiness needs a reachable output.
    pub(crate) spool_ready_threshold: AtomicU64,
    /// Set while spool writes fail (disk full, read-only, I/O error); not ready meanwhile.
    pub(crate) spool_write_failing: AtomicBool,
    /// Set while dead-letter writes fail; not ready meanwhile.
    pub(crate) dead_letter_failing: AtomicBool,
    /// Sender tasks running (network outputs); a network output with none is not ready.
    pub(crate) senders_alive: AtomicU64,
    /// Sender tasks configured (0 for local outputs).
    pub(crate) senders_wanted: AtomicU64,
    /// Sends that panicked; the batch went back to the queue and the sender went on.
    pub(crate) sender_panics: AtomicU64,
    /// Sender tasks that ended while the output was running, and were started again.
    pub(crate) sender_restarts: AtomicU64,
    /// Rows in closed batches not yet durable (spool) or written (file, stdout).
    pub(crate) pending_rows: AtomicU64,
    /// Bogus octet counts the `auto` framing did not honour (it re-synchronised instead).
    pub(crate) framing_resyncs: AtomicU64,
    /// Stream bytes the framing dropped that no message holds.
    pub(crate) skipped_bytes: AtomicU64,
    /// Frames (or runs of bytes) the framing dropped.
    pub(crate) skipped_frames: AtomicU64,
    /// TCP/TLS connections closed by a deadline, by [`Timeout`].
    connections_timed_out: [AtomicU64; 3],
    /// Spooled batch files that could not be read and were moved to `quarantine/`.
    pub(crate) spool_quarantined: AtomicU64,
    /// The per-output series, by output.
    outputs: std::sync::Mutex<Vec<Arc<OutputMetrics>>>,
    /// The configuration generation running (1 at start, +1 a successful reload).
    pub(crate) config_generation: AtomicU64,
    pub(crate) config_reloads_ok: AtomicU64,
    pub(crate) config_reloads_error: AtomicU64,
    pub(crate) config_last_reload_success: AtomicU64,
    /// The RELP listeners' series.
    pub(crate) relp: RelpMetrics,
    /// The Kafka outputs' and listeners' series.
    pub(crate) kafka: KafkaMetrics,
    /// Series of other parts (the alert rules), rendered after the rest.
    sections: std::sync::Mutex<Vec<Arc<dyn Section>>>,
}

/// A part's own series on `/metrics` (the alert rules' per-rule counters, say), rendered
/// by the part itself so that this module needs to know nothing about it.
pub(crate) trait Section: Send + Sync + std::fmt::Debug {
    /// Appends its series in the Prometheus text format.
    fn render(&self, out: &mut String);
}

/// A label value escaped for the Prometheus text format (backslash, quote, newline).
pub(crate) fn escape_label(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The RELP listeners' counters.
#[derive(Debug, Default)]
pub(crate) struct RelpMetrics {
    /// Sessions open now.
    pub(crate) sessions_open: AtomicU64,
    /// Sessions opened (`open` answered).
    pub(crate) sessions: AtomicU64,
    /// Frames received (every command).
    pub(crate) frames: AtomicU64,
    /// `syslog` commands answered `200 OK`, each once its message was stored.
    pub(crate) answered: AtomicU64,
    /// Summed time from reading a message to answering it, in microseconds.
    pub(crate) withheld_us: AtomicU64,
    /// The longest such time seen, in microseconds.
    pub(crate) withheld_max_us: AtomicU64,
    /// Sessions closed for a protocol error (bad frame, oversize DATALEN, command order).
    pub(crate) protocol_errors: AtomicU64,
    /// Messages read but never answered because storing them failed: their session was
    /// closed, so the sender sends them again.
    pub(crate) unstored: AtomicU64,
    /// `serverclose` hints sent at shutdown.
    pub(crate) serverclose: AtomicU64,
}

impl RelpMetrics {
    /// `n` messages answered after `waited`.
    pub(crate) fn answered(&self, n: u64, waited: std::time::Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.answered.fetch_add(n, Relaxed);
        self.withheld_us.fetch_add(us.saturating_mul(n), Relaxed);
        self.withheld_max_us.fetch_max(us, Relaxed);
    }

    fn render(&self, out: &mut String) {
        let mut line = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP mcas_forward_relp_{name} {help}\n# TYPE mcas_forward_relp_{name} {kind}\nmcas_forward_relp_{name} {v}"
            );
        };
        let us = |a: &AtomicU64| format!("{}", a.load(Relaxed) as f64 / 1e6);
        line(
            "sessions_open",
            "gauge",
            "RELP sessions open.",
            self.sessions_open.load(Relaxed).to_string(),
        );
        line(
            "sessions_total",
            "counter",
            "RELP sessions opened.",
            self.sessions.load(Relaxed).to_string(),
        );
        line(
            "frames_total",
            "counter",
            "RELP frames received.",
            self.frames.load(Relaxed).to_string(),
        );
        line(
            "answered_total",
            "counter",
            "RELP syslog commands answered 200 OK, each after its message was stored (fdatasync'd).",
            self.answered.load(Relaxed).to_string(),
        );
        line(
            "withheld_seconds_total",
            "counter",
            "Summed time from reading a RELP message to answering it.",
            us(&self.withheld_us),
        );
        line(
            "withheld_seconds_max",
            "gauge",
            "The longest time a RELP answer was withheld, since start.",
            us(&self.withheld_max_us),
        );
        line(
            "protocol_errors_total",
            "counter",
            "RELP sessions closed for a protocol error.",
            self.protocol_errors.load(Relaxed).to_string(),
        );
        line(
            "unstored_total",
            "counter",
            "RELP messages never answered because storing them failed; their session was closed so the sender resends them.",
            self.unstored.load(Relaxed).to_string(),
        );
        line(
            "serverclose_total",
            "counter",
            "RELP serverclose hints sent at shutdown.",
            self.serverclose.load(Relaxed).to_string(),
        );
    }
}

/// The Kafka outputs' (collectors') and listeners' (shippers') counters.
#[derive(Debug, Default)]
pub(crate) struct KafkaMetrics {
    /// Rows handed to the producer, and the records that carry them.
    pub(crate) produced: AtomicU64,
    pub(crate) records: AtomicU64,
    /// Rows the brokers acknowledged (`acks=all`).
    pub(crate) acknowledged: AtomicU64,
    /// Rows not acknowledged within the retry budget: their batch stays in the spool.
    pub(crate) retries: AtomicU64,
    /// Rows refused for good (too large): dead-lettered.
    pub(crate) refused: AtomicU64,
    /// Records read by the listeners.
    pub(crate) consumed: AtomicU64,
    /// Of those, rows a collector had already mapped.
    pub(crate) consumed_rows: AtomicU64,
    /// Offset commits that succeeded, and failed.
    pub(crate) commits: AtomicU64,
    pub(crate) commit_errors: AtomicU64,
    /// Partition assignments and revocations of the consumer groups.
    pub(crate) rebalances: AtomicU64,
    /// Records read again because storing them failed (the listener went back to them).
    pub(crate) rewinds: AtomicU64,
    /// Consumer lag by (topic, partition), from the client's statistics.
    pub(crate) lag: std::sync::Mutex<std::collections::BTreeMap<(String, i32), i64>>,
}

impl KafkaMetrics {
    fn render(&self, out: &mut String) {
        let mut line = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP mcas_forward_kafka_{name} {help}\n# TYPE mcas_forward_kafka_{name} {kind}\nmcas_forward_kafka_{name} {v}"
            );
        };
        for (name, help, v) in [
            (
                "produced_total",
                "Rows handed to the Kafka producer.",
                &self.produced,
            ),
            (
                "records_total",
                "Kafka records produced (each holds one or more rows of one key).",
                &self.records,
            ),
            (
                "acknowledged_total",
                "Rows the brokers acknowledged with acks=all.",
                &self.acknowledged,
            ),
            (
                "retries_total",
                "Rows not acknowledged within the retry budget; their batch stays in the spool and is sent again.",
                &self.retries,
            ),
            (
                "refused_total",
                "Rows refused for good (larger than a record may be): dead-lettered.",
                &self.refused,
            ),
            (
                "consumed_total",
                "Records read by the Kafka listeners.",
                &self.consumed,
            ),
            (
                "consumed_rows_total",
                "Rows a collector had already mapped, read by the Kafka listeners.",
                &self.consumed_rows,
            ),
            (
                "commits_total",
                "Offset commits of durable records that succeeded.",
                &self.commits,
            ),
            (
                "commit_errors_total",
                "Offset commits that failed (the next commit covers them).",
                &self.commit_errors,
            ),
            (
                "rebalances_total",
                "Partition assignments and revocations seen by the Kafka listeners.",
                &self.rebalances,
            ),
            (
                "rewinds_total",
                "Times a Kafka listener went back to read records again because storing them failed.",
                &self.rewinds,
            ),
        ] {
            line(name, "counter", help, v.load(Relaxed));
        }
        let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP mcas_forward_kafka_consumer_lag Records in a partition past the offset this listener's group committed, from the client's statistics (every 5 s).\n# TYPE mcas_forward_kafka_consumer_lag gauge"
        );
        for ((topic, partition), v) in lag.iter() {
            let _ = writeln!(
                out,
                "mcas_forward_kafka_consumer_lag{{topic=\"{}\",partition=\"{partition}\"}} {v}",
                escape_label(topic)
            );
        }
    }
}

/// The deadline that closed a TCP/TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// No complete frame within `first_frame_timeout` of the accept.
    FirstFrame,
    /// A frame begun but not completed within `frame_timeout`.
    Frame,
    /// Nothing within `idle_timeout` of the last complete frame.
    Idle,
}

const TIMEOUTS: [(Timeout, &str); 3] = [
    (Timeout::FirstFrame, "first_frame"),
    (Timeout::Frame, "frame"),
    (Timeout::Idle, "idle"),
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            received: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            parsed: AtomicU64::new(0),
            cef: AtomicU64::new(0),
            non_cef: AtomicU64::new(0),
            malformed_cef: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            dropped: Default::default(),
            batches: AtomicU64::new(0),
            sent_rows: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            sent_uncompressed_bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            requests_by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            request_errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            spool_bytes: AtomicU64::new(0),
            spool_files: AtomicU64::new(0),
            spool_written: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            token_refreshes: AtomicU64::new(0),
            last_success_unix: AtomicU64::new(0),
            listeners_up: AtomicBool::new(false),
            output_reachable: AtomicBool::new(true),
            spool_ready_threshold: AtomicU64::new(u64::MAX),
            spool_write_failing: AtomicBool::new(false),
            dead_letter_failing: AtomicBool::new(false),
            senders_alive: AtomicU64::new(0),
            senders_wanted: AtomicU64::new(0),
            sender_panics: AtomicU64::new(0),
            sender_restarts: AtomicU64::new(0),
            pending_rows: AtomicU64::new(0),
            framing_resyncs: AtomicU64::new(0),
            skipped_bytes: AtomicU64::new(0),
            skipped_frames: AtomicU64::new(0),
            connections_timed_out: Default::default(),
            spool_quarantined: AtomicU64::new(0),
            outputs: std::sync::Mutex::new(Vec::new()),
            config_generation: AtomicU64::new(0),
            config_reloads_ok: AtomicU64::new(0),
            config_reloads_error: AtomicU64::new(0),
            relp: RelpMetrics::default(),
            kafka: KafkaMetrics::default(),
            sections: std::sync::Mutex::new(Vec::new()),
            config_last_reload_success: AtomicU64::new(0),
        }
    }
}

fn idx(r: DropReason) -> usize {
    DROP_REASONS.iter().position(|(d, _)| *d == r).unwrap_or(0)
}

impl Metrics {
    /// Count `n` drops for `reason`.
    pub(crate) fn count_drop(&self, reason: DropReason, n: u64) {
        self.dropped[idx(reason)].fetch_add(n, Relaxed);
    }

    /// Drops so far for `reason`.
    pub(crate) fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[idx(reason)].load(Relaxed)
    }

    /// Count one connection closed by `t`.
    pub(crate) fn count_timeout(&self, t: Timeout) {
        let i = TIMEOUTS.iter().position(|(x, _)| *x == t).unwrap_or(0);
        self.connections_timed_out[i].fetch_add(1, Relaxed);
    }

    /// Count one send outcome by the HTTP status that settled it (2xx: delivered).
    pub(crate) fn status(&self, status: u16) {
        if let Some(c) = self.requests_by_status.get(usize::from(status)) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Whether the process is ready: listeners bound; the output reachable or the spool
    /// below its threshold; spool and dead-letter writes succeeding; and, for a network
    /// output, at least one sender running.
    pub(crate) fn ready(&self) -> bool {
        self.listeners_up.load(Relaxed)
            && (self.output_reachable.load(Relaxed)
                || self.spool_bytes.load(Relaxed) < self.spool_ready_threshold.load(Relaxed))
            && !self.spool_write_failing.load(Relaxed)
            && !self.dead_letter_failing.load(Relaxed)
            && (self.senders_wanted.load(Relaxed) == 0 || self.senders_alive.load(Relaxed) > 0)
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP mcas_forward_{name} {help}\n# TYPE mcas_forward_{name} counter\nmcas_forward_{name} {v}"
            );
        };
        counter(
            "received_total",
            "Messages read from listeners.",
            self.received.load(Relaxed),
        );
        counter(
            "received_bytes_total",
            "Bytes of messages read from listeners.",
            self.received_bytes.load(Relaxed),
        );
        counter(
            "parsed_total",
            "Messages parsed as syslog (raw fallback included).",
            self.parsed.load(Relaxed),
        );
        counter(
            "cef_total",
            "Messages routed as CEF to CommonSecurityLog.",
            self.cef.load(Relaxed),
        );
        counter(
            "non_cef_total",
            "Messages without CEF (Syslog stream or dead-letter).",
            self.non_cef.load(Relaxed),
        );
        counter(
            "malformed_cef_total",
            "Messages with a CEF: marker but a broken header, routed as non-CEF.",
            self.malformed_cef.load(Relaxed),
        );
        counter(
            "truncated_total",
            "Messages cut at max_message_bytes.",
            self.truncated.load(Relaxed),
        );
        counter(
            "framing_resyncs_total",
            "Octet counts over the frame limit not honoured by auto framing (it re-synchronised on the next frame).",
            self.framing_resyncs.load(Relaxed),
        );
        counter(
            "skipped_bytes_total",
            "Stream bytes dropped by the framing that no message holds.",
            self.skipped_bytes.load(Relaxed),
        );
        counter(
            "skipped_frames_total",
            "Frames, or runs of bytes, dropped by the framing.",
            self.skipped_frames.load(Relaxed),
        );
        counter(
            "connections_total",
            "TCP/TLS connections accepted.",
            self.connections.load(Relaxed),
        );
        counter(
            "batches_total",
            "Batches closed by the workers.",
            self.batches.load(Relaxed),
        );
        counter(
            "sent_rows_total",
            "Rows delivered to the output.",
            self.sent_rows.load(Relaxed),
        );
        counter(
            "sent_bytes_total",
            "Bytes delivered as they were sent: request bodies, compressed where the output compresses (rows a refusal sent one by one, and local outputs' rows, count uncompressed).",
            self.sent_bytes.load(Relaxed),
        );
        counter(
            "sent_uncompressed_bytes_total",
            "Bytes delivered, uncompressed.",
            self.sent_uncompressed_bytes.load(Relaxed),
        );
        counter(
            "requests_total",
            "HTTP requests made to the output, counted as each completes (retries, splits and bisection included).",
            self.requests.load(Relaxed),
        );
        counter(
            "request_errors_total",
            "HTTP attempts that failed without an answer (connection, timeout, no token).",
            self.request_errors.load(Relaxed),
        );
        counter(
            "retries_total",
            "Batches sent again after a transient failure.",
            self.retries.load(Relaxed),
        );
        counter(
            "spool_written_total",
            "Batch files written to the spool.",
            self.spool_written.load(Relaxed),
        );
        counter(
            "dead_lettered_total",
            "Rows or messages appended to the dead-letter file.",
            self.dead_lettered.load(Relaxed),
        );
        counter(
            "sender_panics_total",
            "Sends that panicked; the batch was queued again and the sender went on.",
            self.sender_panics.load(Relaxed),
        );
        counter(
            "sender_restarts_total",
            "Sender tasks that stopped while the output ran, and were started again.",
            self.sender_restarts.load(Relaxed),
        );
        counter(
            "token_refreshes_total",
            "Access tokens fetched.",
            self.token_refreshes.load(Relaxed),
        );
        counter(
            "spool_quarantined_total",
            "Spooled batch files that could not be read, moved to the spool's quarantine/ directory and never sent.",
            self.spool_quarantined.load(Relaxed),
        );
        self.relp.render(&mut out);
        self.kafka.render(&mut out);
        let _ = writeln!(
            out,
            "# HELP mcas_forward_dropped_total Events, rows or connections dropped, by reason.\n# TYPE mcas_forward_dropped_total counter"
        );
        for (r, name) in DROP_REASONS {
            let _ = writeln!(
                out,
                "mcas_forward_dropped_total{{reason=\"{name}\"}} {}",
                self.dropped(r)
            );
        }
        let _ = writeln!(
            out,
            "# HELP mcas_forward_responses_total HTTP answers of the output by status, counted as each arrives.\n# TYPE mcas_forward_responses_total counter"
        );
        for (code, c) in self.requests_by_status.iter().enumerate() {
            let v = c.load(Relaxed);
            if v > 0 {
                let _ = writeln!(out, "mcas_forward_responses_total{{status=\"{code}\"}} {v}");
            }
        }
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP mcas_forward_{name} {help}\n# TYPE mcas_forward_{name} gauge\nmcas_forward_{name} {v}"
            );
        };
        gauge(
            "connections_open",
            "Open TCP/TLS connections.",
            self.connections_open.load(Relaxed),
        );
        gauge(
            "spool_bytes",
            "Bytes held in the spool.",
            self.spool_bytes.load(Relaxed),
        );
        gauge(
            "spool_files",
            "Batch files held in the spool.",
            self.spool_files.load(Relaxed),
        );
        gauge(
            "last_success_timestamp_seconds",
            "Unix time of the last 2xx.",
            self.last_success_unix.load(Relaxed),
        );
        gauge(
            "senders_alive",
            "Sender tasks running (network outputs).",
            self.senders_alive.load(Relaxed),
        );
        gauge(
            "pending_rows",
            "Rows in closed batches not yet durable in the spool (or written, for local outputs).",
            self.pending_rows.load(Relaxed),
        );
        gauge(
            "storage_failing",
            "1 while spool or dead-letter writes fail.",
            u64::from(
                self.spool_write_failing.load(Relaxed) || self.dead_letter_failing.load(Relaxed),
            ),
        );
        gauge(
            "ready",
            "1 when ready (listeners up; output reachable or spool below threshold).",
            u64::from(self.ready()),
        );
        let _ = writeln!(
            out,
            "# HELP mcas_forward_connections_timed_out_total TCP/TLS connections closed by a deadline (first_frame_timeout, frame_timeout, idle_timeout).\n# TYPE mcas_forward_connections_timed_out_total counter"
        );
        for ((_, name), c) in TIMEOUTS.iter().zip(&self.connections_timed_out) {
            let _ = writeln!(
                out,
                "mcas_forward_connections_timed_out_total{{timeout=\"{name}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP mcas_forward_config_reloads_total Configuration reloads, by result.\n# TYPE mcas_forward_config_reloads_total counter\nmcas_forward_config_reloads_total{{result=\"ok\"}} {}\nmcas_forward_config_reloads_total{{result=\"error\"}} {}",
            self.config_reloads_ok.load(Relaxed),
            self.config_reloads_error.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP mcas_forward_config_generation The configuration generation running (1 at start, one more each successful reload).\n# TYPE mcas_forward_config_generation gauge\nmcas_forward_config_generation {}",
            self.config_generation.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP mcas_forward_config_last_reload_success_timestamp_seconds Unix time of the last successful reload (0: none).\n# TYPE mcas_forward_config_last_reload_success_timestamp_seconds gauge\nmcas_forward_config_last_reload_success_timestamp_seconds {}",
            self.config_last_reload_success.load(Relaxed)
        );
        self.render_outputs(&mut out);
        let sections = self
            .sections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for s in sections {
            s.render(&mut out);
        }
        out
    }

    /// Render `section`'s series on `/metrics` too.
    pub(crate) fn add_section(&self, section: Arc<dyn Section>) {
        self.sections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(section);
    }
}

/// The series of one output, rendered with `output="NAME"`. The unlabelled series above
/// are the sums over every output (and what a single `[output]` has always shown).
#[derive(Debug)]
pub(crate) struct OutputMetrics {
    pub(crate) name: String,
    /// Rows delivered (2xx, or written by a local output).
    pub(crate) sent_rows: AtomicU64,
    /// Bytes of those rows as sent (compressed where the output compresses).
    pub(crate) sent_bytes: AtomicU64,
    /// Their size uncompressed.
    pub(crate) sent_uncompressed_bytes: AtomicU64,
    /// Rows the output's transformation dropped.
    pub(crate) filtered_rows: AtomicU64,
    /// Rows the output refused for good (dead-lettered).
    pub(crate) rejected_rows: AtomicU64,
    /// HTTP attempts, counted as each completes.
    pub(crate) requests: AtomicU64,
    /// HTTP attempts without an answer.
    pub(crate) request_errors: AtomicU64,
    /// Whether the output answers (always true for a local output).
    pub(crate) reachable: AtomicBool,
    pub(crate) spool_bytes: AtomicU64,
    pub(crate) spool_files: AtomicU64,
    pub(crate) last_success_unix: AtomicU64,
}

impl OutputMetrics {
    fn new(name: &str) -> OutputMetrics {
        OutputMetrics {
            name: name.to_owned(),
            sent_rows: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            sent_uncompressed_bytes: AtomicU64::new(0),
            filtered_rows: AtomicU64::new(0),
            rejected_rows: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            request_errors: AtomicU64::new(0),
            reachable: AtomicBool::new(true),
            spool_bytes: AtomicU64::new(0),
            spool_files: AtomicU64::new(0),
            last_success_unix: AtomicU64::new(0),
        }
    }

    /// Rows delivered now, `raw` bytes uncompressed and `wire` bytes as sent: counted here
    /// and in the totals.
    pub(crate) fn delivered(&self, total: &Metrics, rows: u64, raw: u64, wire: u64) {
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        for (c, v) in [
            (&self.sent_rows, rows),
            (&total.sent_rows, rows),
            (&self.sent_bytes, wire),
            (&total.sent_bytes, wire),
            (&self.sent_uncompressed_bytes, raw),
            (&total.sent_uncompressed_bytes, raw),
        ] {
            c.fetch_add(v, Relaxed);
        }
        if rows > 0 {
            self.last_success_unix.store(now, Relaxed);
            total.last_success_unix.store(now, Relaxed);
        }
    }

    /// One output's part of `/health`.
    fn health(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "reachable": self.reachable.load(Relaxed),
            "spool_bytes": self.spool_bytes.load(Relaxed),
            "spool_files": self.spool_files.load(Relaxed),
            "sent_rows": self.sent_rows.load(Relaxed),
            "last_success_unix": self.last_success_unix.load(Relaxed),
        })
    }
}

impl Metrics {
    /// The series of the output `name`, registered at its first call.
    pub(crate) fn output(&self, name: &str) -> Arc<OutputMetrics> {
        let mut all = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = all.iter().find(|o| o.name == name) {
            return o.clone();
        }
        let o = Arc::new(OutputMetrics::new(name));
        all.push(o.clone());
        o
    }

    /// Every registered output's series.
    pub(crate) fn outputs(&self) -> Vec<Arc<OutputMetrics>> {
        self.outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// An output's reachability changed: the total is whether every output answers.
    pub(crate) fn set_reachable(&self, out: &OutputMetrics, yes: bool) {
        out.reachable.store(yes, Relaxed);
        let all = self.outputs().iter().all(|o| o.reachable.load(Relaxed));
        self.output_reachable.store(all, Relaxed);
    }

    fn render_outputs(&self, out: &mut String) {
        let outputs = self.outputs();
        if outputs.is_empty() {
            return;
        }
        type Get = fn(&OutputMetrics) -> u64;
        let series: [(&str, &str, &str, Get); 11] = [
            (
                "output_sent_rows_total",
                "counter",
                "Rows delivered, by output.",
                |o| o.sent_rows.load(Relaxed),
            ),
            (
                "output_sent_bytes_total",
                "counter",
                "Bytes delivered as they were sent (compressed where the output compresses), by output.",
                |o| o.sent_bytes.load(Relaxed),
            ),
            (
                "output_sent_uncompressed_bytes_total",
                "counter",
                "Bytes delivered uncompressed, by output.",
                |o| o.sent_uncompressed_bytes.load(Relaxed),
            ),
            (
                "output_filtered_rows_total",
                "counter",
                "Rows the output's transformation dropped, by output.",
                |o| o.filtered_rows.load(Relaxed),
            ),
            (
                "output_rejected_rows_total",
                "counter",
                "Rows the output refused for good (dead-lettered), by output.",
                |o| o.rejected_rows.load(Relaxed),
            ),
            (
                "output_requests_total",
                "counter",
                "HTTP requests made, by output.",
                |o| o.requests.load(Relaxed),
            ),
            (
                "output_request_errors_total",
                "counter",
                "HTTP attempts without an answer, by output.",
                |o| o.request_errors.load(Relaxed),
            ),
            (
                "output_up",
                "gauge",
                "1 while the output answers (its last attempt got an answer).",
                |o| u64::from(o.reachable.load(Relaxed)),
            ),
            (
                "output_spool_bytes",
                "gauge",
                "Bytes in the output's spool.",
                |o| o.spool_bytes.load(Relaxed),
            ),
            (
                "output_spool_files",
                "gauge",
                "Batch files in the output's spool.",
                |o| o.spool_files.load(Relaxed),
            ),
            (
                "output_last_success_timestamp_seconds",
                "gauge",
                "Unix time of the output's last delivery.",
                |o| o.last_success_unix.load(Relaxed),
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(
                out,
                "# HELP mcas_forward_{name} {help}\n# TYPE mcas_forward_{name} {kind}"
            );
            for o in &outputs {
                let _ = writeln!(
                    out,
                    "mcas_forward_{name}{{output=\"{}\"}} {}",
                    o.name,
                    get(o)
                );
            }
        }
    }
}

/// Serve `/metrics`, `/health` and `/health/live` on `addr` until `stop`.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("metrics.address {addr}: cannot bind: {e}"))?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(prom))
        .route("/health", get(health))
        .route("/health/live", get(|| async { "live\n" }))
        .with_state(metrics);
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(local)
}

async fn prom(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

async fn health(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let ready = m.ready();
    let body = serde_json::json!({
        "live": true,
        "ready": ready,
        "listeners_up": m.listeners_up.load(Relaxed),
        "output_reachable": m.output_reachable.load(Relaxed),
        "spool_bytes": m.spool_bytes.load(Relaxed),
        "spool_write_failing": m.spool_write_failing.load(Relaxed),
        "dead_letter_failing": m.dead_letter_failing.load(Relaxed),
        "senders_alive": m.senders_alive.load(Relaxed),
        "outputs": m.outputs().iter().map(|o| o.health()).collect::<Vec<_>>(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_reasons() {
        let m = Metrics::default();
        m.received.fetch_add(3, Relaxed);
        m.count_drop(DropReason::UdpOverflow, 2);
        m.status(204);
        m.status(429);
        let t = m.render();
        assert!(t.contains("mcas_forward_received_total 3\n"));
        assert!(t.contains("mcas_forward_dropped_total{reason=\"udp_overflow\"} 2\n"));
        assert!(t.contains("mcas_forward_responses_total{status=\"204\"} 1\n"));
        assert!(t.contains("mcas_forward_responses_total{status=\"429\"} 1\n"));
        assert!(t.contains("mcas_forward_ready 0\n"));
    }

    #[test]
    fn renders_connection_guards() {
        let m = Metrics::default();
        m.count_drop(DropReason::SourceConnectionLimit, 3);
        m.count_drop(DropReason::UdpKernel, 5);
        m.count_timeout(Timeout::FirstFrame);
        m.count_timeout(Timeout::Frame);
        m.count_timeout(Timeout::Frame);
        let t = m.render();
        assert!(t.contains("mcas_forward_dropped_total{reason=\"source_connection_limit\"} 3\n"));
        assert!(t.contains("mcas_forward_dropped_total{reason=\"udp_kernel\"} 5\n"));
        assert!(
            t.contains("mcas_forward_connections_timed_out_total{timeout=\"first_frame\"} 1\n")
        );
        assert!(t.contains("mcas_forward_connections_timed_out_total{timeout=\"frame\"} 2\n"));
        assert!(t.contains("mcas_forward_connections_timed_out_total{timeout=\"idle\"} 0\n"));
    }

    #[test]
    fn readiness() {
        let m = Metrics::default();
        assert!(!m.ready());
        m.listeners_up.store(true, Relaxed);
        assert!(m.ready());
        m.output_reachable.store(false, Relaxed);
        m.spool_ready_threshold.store(100, Relaxed);
        m.spool_bytes.store(50, Relaxed);
        assert!(m.ready());
        m.spool_bytes.store(150, Relaxed);
        assert!(!m.ready());
    }

    #[test]
    fn failing_storage_and_dead_senders_are_not_ready() {
        let m = Metrics::default();
        m.listeners_up.store(true, Relaxed);
        assert!(m.ready());
        m.spool_write_failing.store(true, Relaxed);
        assert!(!m.ready());
        m.spool_write_failing.store(false, Relaxed);
        m.dead_letter_failing.store(true, Relaxed);
        assert!(!m.ready());
        assert!(m.render().contains("mcas_forward_storage_failing 1\n"));
        m.dead_letter_failing.store(false, Relaxed);
        m.senders_wanted.store(4, Relaxed);
        assert!(
            !m.ready(),
            "a network output with no sender running is not ready"
        );
        m.senders_alive.store(1, Relaxed);
        assert!(m.ready());
    }
}
