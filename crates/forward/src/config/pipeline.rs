//! `[pipeline]`, `[metrics]` and `[log]`, and their checks.

use super::*;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsConfig {
    pub(crate) address: SocketAddr,
}

/// `[admin]`: the admin endpoint (`mcas-forward tap`). Off unless this table is present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminConfig {
    /// Loopback by default: the endpoint shows event contents.
    #[serde(default = "default_admin_address")]
    pub(crate) address: SocketAddr,
}

fn default_admin_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9102))
}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineConfig {
    /// Parse/map workers; 0 means one per core.
    #[serde(default)]
    pub(crate) workers: usize,
    /// A batch is closed at least this often (bounds what a crash can lose).
    #[serde(default = "default_flush")]
    pub(crate) flush_interval: DurationStr,
    /// A batch is also closed once no message has reached its worker for this long, so
    /// the end of a burst is not held back for `flush_interval`. `0s` turns this off.
    #[serde(default = "default_linger")]
    pub(crate) linger: DurationStr,
    /// A batch is closed at this many rows.
    #[serde(default = "default_batch_rows")]
    pub(crate) batch_max_rows: usize,
    /// A batch is closed at this many bytes of NDJSON.
    #[serde(default = "default_batch_bytes")]
    pub(crate) batch_max_bytes: ByteSize,
    /// Messages queued per worker before readers are pushed back.
    #[serde(default = "default_queue")]
    pub(crate) queue_capacity: usize,
    /// Bytes of messages read but not yet mapped, over every listener and worker: TCP and
    /// TLS readers wait for room, UDP datagrams without room are dropped and counted.
    #[serde(default = "default_max_queued_bytes")]
    pub(crate) max_queued_bytes: ByteSize,
    /// On SIGTERM/SIGINT, how long to keep sending before exiting (the rest stays spooled).
    #[serde(default = "default_grace")]
    pub(crate) shutdown_grace: DurationStr,
    /// On SIGTERM/SIGINT, the process exits within this long whatever happens: what could
    /// not be stored by then (a full or read-only disk) is reported, counted and lost.
    #[serde(default = "default_shutdown_timeout")]
    pub(crate) shutdown_timeout: DurationStr,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 0,
            flush_interval: default_flush(),
            linger: default_linger(),
            batch_max_rows: default_batch_rows(),
            batch_max_bytes: default_batch_bytes(),
            queue_capacity: default_queue(),
            max_queued_bytes: default_max_queued_bytes(),
            shutdown_grace: default_grace(),
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

pub(super) fn default_flush() -> DurationStr {
    DurationStr(Duration::from_secs(1))
}
pub(super) fn default_linger() -> DurationStr {
    DurationStr(Duration::from_millis(50))
}
pub(super) fn default_batch_rows() -> usize {
    10_000
}
pub(super) fn default_batch_bytes() -> ByteSize {
    ByteSize(4 << 20)
}
pub(super) fn default_queue() -> usize {
    16 * 1024
}
pub(super) fn default_max_queued_bytes() -> ByteSize {
    ByteSize(256 << 20)
}
pub(super) fn default_grace() -> DurationStr {
    DurationStr(Duration::from_secs(10))
}
pub(super) fn default_shutdown_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogConfig {
    #[serde(default)]
    pub(crate) format: LogFormat,
    /// A tracing filter such as `info` or `mcas_forward=debug`; `RUST_LOG` wins when set.
    #[serde(default)]
    pub(crate) level: Option<String>,
}

impl PipelineConfig {
    /// The checks of `[pipeline]`.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        let p = self;
        if p.flush_interval.0 < Duration::from_millis(10) {
            bail!("pipeline.flush_interval must be at least 10ms");
        }
        for (key, d, min) in [
            (
                "pipeline.flush_interval",
                p.flush_interval,
                Duration::from_millis(10),
            ),
            ("pipeline.linger", p.linger, Duration::ZERO),
            ("pipeline.shutdown_grace", p.shutdown_grace, Duration::ZERO),
            (
                "pipeline.shutdown_timeout",
                p.shutdown_timeout,
                Duration::ZERO,
            ),
        ] {
            check_duration(key, d, min, MAX_DURATION_KEY)?;
        }
        if p.batch_max_rows == 0 {
            bail!("pipeline.batch_max_rows must be at least 1");
        }
        if p.batch_max_bytes.0 < 4096 {
            bail!("pipeline.batch_max_bytes must be at least 4KiB");
        }
        if p.queue_capacity == 0 {
            bail!("pipeline.queue_capacity must be at least 1");
        }
        if p.max_queued_bytes.0 < (1 << 20) {
            bail!("pipeline.max_queued_bytes must be at least 1MiB");
        }
        if p.shutdown_timeout.0 <= p.shutdown_grace.0 {
            bail!(
                "pipeline.shutdown_timeout ({} ms) must be longer than pipeline.shutdown_grace ({} ms): the grace is spent sending, the rest of the timeout storing what is left",
                p.shutdown_timeout.0.as_millis(),
                p.shutdown_grace.0.as_millis()
            );
        }
        Ok(())
    }
}
