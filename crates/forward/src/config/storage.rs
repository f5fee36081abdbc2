//! `[spool]` and `[dead_letter]`, and their checks.

use super::*;

/// Spool policy when full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WhenFull {
    /// Stop reading: TCP senders are pushed back, UDP overflow is counted.
    #[default]
    Block,
    /// Drop the new batch, counted.
    DropNewest,
}

/// When the spool calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FsyncPolicy {
    /// fsync each batch file before its rename, and the directory after.
    #[default]
    Always,
    /// Leave it to the OS: a power loss may lose batches, a process crash does not.
    Never,
}

/// `[spool]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpoolConfig {
    #[serde(default)]
    pub(crate) dir: Option<PathBuf>,
    #[serde(default = "default_spool_max")]
    pub(crate) max_bytes: ByteSize,
    #[serde(default)]
    pub(crate) when_full: WhenFull,
    #[serde(default)]
    pub(crate) fsync: FsyncPolicy,
    /// Ready turns false when the spool holds more than this fraction of `max_bytes`.
    #[serde(default = "default_ready_threshold")]
    pub(crate) ready_threshold: f64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: None,
            max_bytes: default_spool_max(),
            when_full: WhenFull::Block,
            fsync: FsyncPolicy::Always,
            ready_threshold: default_ready_threshold(),
        }
    }
}

pub(super) fn default_spool_max() -> ByteSize {
    ByteSize(10 << 30)
}
pub(super) fn default_ready_threshold() -> f64 {
    0.9
}

/// `[dead_letter]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetterConfig {
    /// The file (default: `dead-letter.ndjson` under the state directory).
    #[serde(default)]
    pub(crate) path: Option<PathBuf>,
    /// The file is never grown past this size; entries beyond it are dropped and counted.
    #[serde(default = "default_dead_letter_max")]
    pub(crate) max_bytes: ByteSize,
    /// Unroutable messages kept one by one per second; the rest are counted in one summary
    /// line per flush. 0 keeps every one (up to `max_bytes`).
    #[serde(default = "default_unroutable_per_second")]
    pub(crate) unroutable_per_second: u32,
}

pub(super) fn default_dead_letter_max() -> ByteSize {
    ByteSize(crate::deadletter::DEFAULT_MAX_BYTES)
}
pub(super) fn default_unroutable_per_second() -> u32 {
    crate::deadletter::DEFAULT_UNROUTABLE_PER_SECOND
}

impl SpoolConfig {
    /// The checks of `[spool]`.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        let s = self;
        if s.max_bytes.0 < (1 << 20) {
            bail!("spool.max_bytes must be at least 1MiB");
        }
        if !(0.0..=1.0).contains(&s.ready_threshold) {
            bail!("spool.ready_threshold must be between 0 and 1");
        }
        Ok(())
    }
}

impl DeadLetterConfig {
    /// The checks of `[dead_letter]`.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if self.max_bytes.0 < 4096 {
            bail!("dead_letter.max_bytes must be at least 4KiB");
        }
        Ok(())
    }
}
