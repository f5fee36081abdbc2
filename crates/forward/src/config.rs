//! The TOML configuration: its types, defaults, the embedded default, and validation.
//!
//! Every key is documented in `docs/configuration.md`; `examples/config/mcas-forward.toml`
//! is a commented copy. Unknown keys are errors, so a typo never silently falls back to a
//! default.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// The configuration used when `--config` is not given: UDP and TCP on 127.0.0.1:5514,
/// CommonSecurityLog rows printed to stdout as JSON lines.
pub(crate) const EMBEDDED_DEFAULT: &str = r#"
[[listen]]
protocol = "udp"
address = "127.0.0.1:5514"

[[listen]]
protocol = "tcp"
address = "127.0.0.1:5514"

[output]
kind = "stdout"
"#;

/// Environment variable holding the client secret of `output.auth.kind = "client-secret"`.
pub(crate) const ENV_CLIENT_SECRET: &str = "MCAS_FORWARD_CLIENT_SECRET";
/// Environment variable holding the Data Collector shared key.
pub(crate) const ENV_SHARED_KEY: &str = "MCAS_FORWARD_SHARED_KEY";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Listeners; at least one for `run`.
    #[serde(default)]
    pub(crate) listen: Vec<ListenConfig>,
    /// Where rows go.
    pub(crate) output: OutputConfig,
    /// The durable spool (network outputs only).
    #[serde(default)]
    pub(crate) spool: Option<SpoolConfig>,
    /// Where rows rejected for good, and unroutable messages, are written.
    #[serde(default)]
    pub(crate) dead_letter: Option<DeadLetterConfig>,
    /// The `/metrics` and `/health` server.
    #[serde(default)]
    pub(crate) metrics: Option<MetricsConfig>,
    /// User mapping rules for mcas-csl, parsed once here.
    #[serde(default)]
    pub(crate) mapping: MappingConfig,
    /// Batching, workers and shutdown.
    #[serde(default)]
    pub(crate) pipeline: PipelineConfig,
    /// Logging.
    #[serde(default)]
    pub(crate) log: LogConfig,
}

/// `[mapping]`, parsed once at load: mcas-csl's `MappingRules`, plus `time_generated`
/// (`receive_time`, `rt`, `start`).
#[derive(Debug, Clone, Default)]
pub(crate) struct MappingConfig {
    pub(crate) rules: mcas_csl::MappingRules,
    pub(crate) time_generated: mcas_csl::TimeGeneratedPolicy,
}

impl MappingConfig {
    fn from_value(v: toml::Value) -> Result<MappingConfig, String> {
        let toml::Value::Table(mut table) = v else {
            return Err("[mapping] must be a table".to_owned());
        };
        let time_generated = match table.remove("time_generated") {
            None => mcas_csl::TimeGeneratedPolicy::default(),
            Some(p) => p.try_into().map_err(|e| {
                format!("[mapping] time_generated: {e} (use \"receive_time\", \"rt\" or \"start\")")
            })?,
        };
        let rules: mcas_csl::MappingRules = toml::Value::Table(table)
            .try_into()
            .map_err(|e| format!("[mapping]: {e}"))?;
        Ok(MappingConfig {
            rules,
            time_generated,
        })
    }
}

impl<'de> Deserialize<'de> for MappingConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = toml::Value::deserialize(d)?;
        MappingConfig::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// Listener protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Protocol {
    Udp,
    Tcp,
    Tls,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        })
    }
}

/// TCP/TLS framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FramingConfig {
    /// Per frame: a leading digit means octet counting, else LF.
    #[default]
    Auto,
    /// RFC 6587 octet counting only.
    OctetCounting,
    /// LF (also CR LF and NUL) delimited.
    Lf,
}

/// What to do with a frame longer than `max_message_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OversizeConfig {
    /// Keep the first `max_message_bytes`, flagged and counted.
    #[default]
    Truncate,
    /// Drop the frame, counted.
    Discard,
}

/// One `[[listen]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenConfig {
    pub(crate) protocol: Protocol,
    pub(crate) address: SocketAddr,
    #[serde(default)]
    pub(crate) framing: FramingConfig,
    #[serde(default = "default_max_message")]
    pub(crate) max_message_bytes: ByteSize,
    #[serde(default)]
    pub(crate) oversize: OversizeConfig,
    /// Source CIDRs; empty means everyone.
    #[serde(default)]
    pub(crate) allow: Vec<Cidr>,
    /// TLS server certificate chain (PEM).
    #[serde(default)]
    pub(crate) cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[serde(default)]
    pub(crate) key: Option<PathBuf>,
    /// CA bundle (PEM) for client certificates: turns on mutual TLS.
    #[serde(default)]
    pub(crate) client_ca: Option<PathBuf>,
    /// Zone for zone-less syslog timestamps (IANA name or fixed offset); UTC when unset.
    #[serde(default)]
    pub(crate) timezone: Option<String>,
    /// TCP/TLS: maximum simultaneous connections.
    #[serde(default = "default_max_connections")]
    pub(crate) max_connections: usize,
    /// TCP/TLS: close a connection idle this long.
    #[serde(default = "default_idle_timeout")]
    pub(crate) idle_timeout: DurationStr,
    /// UDP: the socket receive buffer (SO_RCVBUF); the OS default when unset.
    #[serde(default)]
    pub(crate) receive_buffer_bytes: Option<ByteSize>,
    /// TCP/TLS: simultaneous connections from one source address.
    #[serde(default = "default_max_connections_per_source")]
    pub(crate) max_connections_per_source: usize,
    /// TCP/TLS: a new connection must deliver its first complete frame (TLS handshake
    /// included) within this time.
    #[serde(default = "default_first_frame_timeout")]
    pub(crate) first_frame_timeout: DurationStr,
    /// TCP/TLS: once a frame has begun, it must complete within this time.
    #[serde(default = "default_frame_timeout")]
    pub(crate) frame_timeout: DurationStr,
}

impl ListenConfig {
    /// Checks of the connection guards; `at` names the listener.
    fn validate_guards(&self, at: &str) -> anyhow::Result<()> {
        if self.max_connections_per_source == 0 {
            bail!("{at}: max_connections_per_source must be at least 1");
        }
        for (key, d) in [
            ("first_frame_timeout", self.first_frame_timeout),
            ("frame_timeout", self.frame_timeout),
        ] {
            if d.0 < Duration::from_millis(100) {
                bail!("{at}: {key} must be at least 100ms");
            }
        }
        Ok(())
    }
}

fn default_max_message() -> ByteSize {
    ByteSize(64 * 1024)
}
fn default_max_connections() -> usize {
    1024
}
fn default_idle_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(600))
}
fn default_max_connections_per_source() -> usize {
    64
}
fn default_first_frame_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}
fn default_frame_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}

/// Output kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OutputKind {
    LogsIngestion,
    DataCollector,
    Stdout,
    File,
}

impl OutputKind {
    /// The name used in the configuration file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OutputKind::LogsIngestion => "logs-ingestion",
            OutputKind::DataCollector => "data-collector",
            OutputKind::File => "file",
            OutputKind::Stdout => "stdout",
        }
    }

    /// Whether this output goes over the network, through the spool.
    pub(crate) fn is_network(self) -> bool {
        matches!(self, OutputKind::LogsIngestion | OutputKind::DataCollector)
    }
}

/// `[output]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputConfig {
    pub(crate) kind: OutputKind,
    #[serde(default)]
    pub(crate) endpoint: Option<String>,
    #[serde(default)]
    pub(crate) dcr_immutable_id: Option<String>,
    #[serde(default = "default_stream")]
    pub(crate) stream: String,
    /// Stream (logs-ingestion) or Log-Type (data-collector) for non-CEF messages.
    #[serde(default)]
    pub(crate) syslog_stream: Option<String>,
    /// `kind = "file"`.
    #[serde(default)]
    pub(crate) path: Option<PathBuf>,
    #[serde(default)]
    pub(crate) workspace_id: Option<String>,
    /// Discouraged: prefer `MCAS_FORWARD_SHARED_KEY` or `shared_key_file`.
    #[serde(default)]
    pub(crate) shared_key: Option<Secret>,
    #[serde(default)]
    pub(crate) shared_key_file: Option<PathBuf>,
    #[serde(default = "default_log_type")]
    pub(crate) log_type: String,
    /// In-flight requests.
    #[serde(default = "default_concurrency")]
    pub(crate) concurrency: usize,
    /// logs-ingestion: gzip level of request bodies (0-9); the library default when unset.
    #[serde(default)]
    pub(crate) gzip_level: Option<u32>,
    /// Whole-request timeout.
    #[serde(default = "default_request_timeout")]
    pub(crate) request_timeout: DurationStr,
    /// How long the client retries a batch before handing it back to the spool, which
    /// retries it again later (so delivery is never abandoned).
    #[serde(default = "default_retry_budget")]
    pub(crate) retry_budget: DurationStr,
    #[serde(default)]
    pub(crate) auth: Option<AuthConfig>,
}

fn default_stream() -> String {
    "Custom-CommonSecurityLog".to_owned()
}
fn default_log_type() -> String {
    "CommonSecurityLog".to_owned()
}
fn default_concurrency() -> usize {
    4
}
fn default_retry_budget() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}
fn default_request_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}

/// Credential kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum AuthKind {
    ClientSecret,
    ClientCertificate,
    ManagedIdentity,
    WorkloadIdentity,
}

/// Sovereign cloud preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CloudConfig {
    #[default]
    Public,
    Usgov,
    China,
}

/// `[output.auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthConfig {
    pub(crate) kind: AuthKind,
    #[serde(default)]
    pub(crate) tenant_id: Option<String>,
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) cloud: CloudConfig,
    #[serde(default)]
    pub(crate) authority_host: Option<String>,
    /// Token scope override (default: the cloud's monitor scope).
    #[serde(default)]
    pub(crate) scope: Option<String>,
    /// Discouraged: prefer `MCAS_FORWARD_CLIENT_SECRET` or `client_secret_file`.
    #[serde(default)]
    pub(crate) client_secret: Option<Secret>,
    #[serde(default)]
    pub(crate) client_secret_file: Option<PathBuf>,
    /// client-certificate: PEM certificate.
    #[serde(default)]
    pub(crate) certificate: Option<PathBuf>,
    /// client-certificate: PEM private key (may be the same file as `certificate`).
    #[serde(default)]
    pub(crate) private_key: Option<PathBuf>,
    /// managed-identity: the IMDS token URL override.
    #[serde(default)]
    pub(crate) imds_endpoint: Option<String>,
    /// workload-identity: the federated token file (default `AZURE_FEDERATED_TOKEN_FILE`).
    #[serde(default)]
    pub(crate) federated_token_file: Option<PathBuf>,
}

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

fn default_spool_max() -> ByteSize {
    ByteSize(10 << 30)
}
fn default_ready_threshold() -> f64 {
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

fn default_dead_letter_max() -> ByteSize {
    ByteSize(crate::deadletter::DEFAULT_MAX_BYTES)
}
fn default_unroutable_per_second() -> u32 {
    crate::deadletter::DEFAULT_UNROUTABLE_PER_SECOND
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsConfig {
    pub(crate) address: SocketAddr,
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

fn default_flush() -> DurationStr {
    DurationStr(Duration::from_secs(1))
}
fn default_linger() -> DurationStr {
    DurationStr(Duration::from_millis(50))
}
fn default_batch_rows() -> usize {
    10_000
}
fn default_batch_bytes() -> ByteSize {
    ByteSize(4 << 20)
}
fn default_queue() -> usize {
    16 * 1024
}
fn default_max_queued_bytes() -> ByteSize {
    ByteSize(256 << 20)
}
fn default_grace() -> DurationStr {
    DurationStr(Duration::from_secs(10))
}
fn default_shutdown_timeout() -> DurationStr {
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

/// A byte size: an integer, or a string such as `"64KiB"`, `"10GiB"`, `"500MB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl ByteSize {
    /// Parse `"10GiB"`, `"64 KiB"`, `"1000"`, `"5MB"`.
    pub(crate) fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "m" | "mb" => 1_000_000,
            "g" | "gb" => 1_000_000_000,
            "t" | "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                    "unknown size unit {unit:?} in {s:?} (use B, KB, MB, GB, KiB, MiB, GiB, TiB)"
                ));
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("not a size: {s:?} (examples: 65536, \"64KiB\", \"10GiB\")"))?;
        let v = n * mult as f64;
        if !(0.0..1.8e19).contains(&v) {
            return Err(format!("size out of range: {s:?}"));
        }
        Ok(ByteSize(v as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration: a string such as `"1s"`, `"250ms"`, `"5m"`, `"1h"`, or an integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DurationStr(pub(crate) Duration);

impl DurationStr {
    /// Parse `"1s"`, `"250ms"`, `"5m"`, `"2h"`, `"1.5s"`.
    pub(crate) fn parse(s: &str) -> Result<DurationStr, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let secs_per: f64 = match unit.trim() {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            u => {
                return Err(format!(
                    "unknown duration unit {u:?} in {s:?} (use ms, s, m, h)"
                ));
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("not a duration: {s:?} (examples: \"1s\", \"250ms\", \"5m\")"))?;
        let v = n * secs_per;
        if !(0.0..MAX_DURATION_SECS as f64).contains(&v) {
            return Err(format!(
                "duration out of range: {s:?} (at most {})",
                describe(Duration::from_secs(MAX_DURATION_SECS))
            ));
        }
        Ok(DurationStr(Duration::from_secs_f64(v)))
    }

    /// Seconds given as an integer, range-checked like the string form.
    fn from_int(n: i64) -> Result<DurationStr, String> {
        match u64::try_from(n) {
            Ok(secs) if secs < MAX_DURATION_SECS => Ok(DurationStr(Duration::from_secs(secs))),
            Ok(_) => Err(format!(
                "duration out of range: {n} seconds (at most {})",
                describe(Duration::from_secs(MAX_DURATION_SECS))
            )),
            Err(_) => Err(format!("a duration cannot be negative: {n}")),
        }
    }
}

/// Beyond any sane setting, and far enough below the overflow of a clock reading plus a
/// duration. Each key has its own, tighter, bound (see [`Config::validate`]).
const MAX_DURATION_SECS: u64 = 1_000_000_000;

/// The upper bound of every duration key: one day.
const MAX_DURATION_KEY: Duration = Duration::from_secs(24 * 3600);

/// `90s`, `2h`, `250ms`: a duration as a person writes it.
fn describe(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 && d.subsec_nanos() == 0 {
        "0s".to_owned()
    } else if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A duration key outside `min..=max`: an error naming the key.
fn check_duration(key: &str, d: DurationStr, min: Duration, max: Duration) -> anyhow::Result<()> {
    if d.0 < min || d.0 > max {
        bail!(
            "{key} = {} is out of range: it must be between {} and {}",
            describe(d.0),
            describe(min),
            describe(max)
        );
    }
    Ok(())
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => DurationStr::from_int(n).map_err(serde::de::Error::custom),
            Raw::S(s) => DurationStr::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// An IPv4 or IPv6 network, `10.0.0.0/8`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parse `"10.0.0.0/8"`, `"::1"`, `"192.168.1.7"`.
    pub(crate) fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("not an address or CIDR: {s:?} (example: \"10.0.0.0/8\")"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("bad prefix length in {s:?} (0..={max})"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside this network. IPv4-mapped IPv6 peers match IPv4 networks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A secret string: never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(String);

impl Secret {
    #[cfg(test)]
    pub(crate) fn new(s: String) -> Secret {
        Secret(s)
    }
    /// The secret itself, for handing to a credential.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the configuration came from, for messages.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Embedded,
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Embedded => f.write_str("the embedded default configuration"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Config {
    /// Load `path`, or the embedded default when `None`, and validate it.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<(Config, Source)> {
        let (text, source) = match path {
            Some(p) => (
                std::fs::read_to_string(p).with_context(|| {
                    format!("cannot read the configuration file {}", p.display())
                })?,
                Source::File(p.to_owned()),
            ),
            None => (EMBEDDED_DEFAULT.to_owned(), Source::Embedded),
        };
        let cfg = Config::parse(&text).with_context(|| format!("in {source}"))?;
        Ok((cfg, source))
    }

    /// Parse and validate TOML text. A syntax or type error names the line and the key,
    /// and never quotes a secret's value.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A copy in which a missing client secret or shared key is replaced by a placeholder,
    /// so the output can be built (every check but the secret's) by commands that do not
    /// talk to Azure. The placeholder is never sent anywhere: nothing built from this copy
    /// is used to connect.
    pub(crate) fn with_placeholder_secrets(&self) -> Config {
        let mut c = self.clone();
        if let Some(a) = c.output.auth.as_mut()
            && a.kind == AuthKind::ClientSecret
            && a.resolve_client_secret().is_err()
        {
            a.client_secret = Some(Secret("placeholder".to_owned()));
            a.client_secret_file = None;
        }
        if c.output.kind == OutputKind::DataCollector && c.output.resolve_shared_key().is_err() {
            c.output.shared_key = Some(Secret("AAAA".to_owned()));
            c.output.shared_key_file = None;
        }
        c
    }

    /// Cross-field checks, each with a message that names the key and the fix.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        for (i, l) in self.listen.iter().enumerate() {
            let at = format!("listen[{i}] ({} {})", l.protocol, l.address);
            if l.protocol == Protocol::Tls && (l.cert.is_none() || l.key.is_none()) {
                bail!("{at}: protocol = \"tls\" needs both `cert` and `key` (PEM files)");
            }
            if l.protocol != Protocol::Tls
                && (l.cert.is_some() || l.key.is_some() || l.client_ca.is_some())
            {
                bail!("{at}: `cert`, `key` and `client_ca` apply only to protocol = \"tls\"");
            }
            if l.protocol == Protocol::Udp && l.framing != FramingConfig::Auto {
                bail!(
                    "{at}: `framing` applies only to tcp and tls; UDP is one message per datagram"
                );
            }
            if l.max_message_bytes.0 < 64 || l.max_message_bytes.0 > (16 << 20) {
                bail!("{at}: max_message_bytes must be between 64 bytes and 16MiB");
            }
            if l.max_connections == 0 {
                bail!("{at}: max_connections must be at least 1");
            }
            check_duration(
                &format!("listen[{i}].idle_timeout"),
                l.idle_timeout,
                Duration::from_secs(1),
                MAX_DURATION_KEY,
            )?;
            for (key, d) in [
                ("first_frame_timeout", l.first_frame_timeout),
                ("frame_timeout", l.frame_timeout),
            ] {
                // The lower bound is validate_guards'.
                check_duration(
                    &format!("listen[{i}].{key}"),
                    d,
                    Duration::ZERO,
                    MAX_DURATION_KEY,
                )?;
            }
            l.validate_guards(&at)?;
            if let Some(tz) = &l.timezone {
                parse_timezone(tz).with_context(|| format!("{at}: timezone"))?;
            }
        }
        for (i, a) in self.listen.iter().enumerate() {
            for b in &self.listen[i + 1..] {
                let same_kind = (a.protocol == Protocol::Udp) == (b.protocol == Protocol::Udp);
                if same_kind && a.address == b.address {
                    bail!(
                        "two listeners use {} {}: each address may be used once per transport",
                        a.protocol,
                        a.address
                    );
                }
            }
        }
        let o = &self.output;
        match o.kind {
            OutputKind::LogsIngestion => {
                let Some(ep) = &o.endpoint else {
                    bail!(
                        "output.kind = \"logs-ingestion\" needs `endpoint` (the DCR's logsIngestion URL or a DCE URL)"
                    );
                };
                check_url("output.endpoint", ep, false)?;
                match &o.dcr_immutable_id {
                    None => bail!(
                        "output.kind = \"logs-ingestion\" needs `dcr_immutable_id` (\"dcr-\" followed by 32 hex digits)"
                    ),
                    Some(id) if !id.starts_with("dcr-") => {
                        bail!(
                            "output.dcr_immutable_id must start with \"dcr-\" (it is the DCR's immutableId, not its name or resource id), got {id:?}"
                        )
                    }
                    _ => {}
                }
                for (key, s) in [
                    ("stream", Some(&o.stream)),
                    ("syslog_stream", o.syslog_stream.as_ref()),
                ] {
                    if let Some(s) = s
                        && !s.starts_with("Custom-")
                    {
                        bail!(
                            "output.{key} = {s:?}: input streams of a DCR must begin with \"Custom-\""
                        );
                    }
                }
                let Some(auth) = &o.auth else {
                    bail!(
                        "output.kind = \"logs-ingestion\" needs an [output.auth] table (kind = \"client-secret\", \"client-certificate\", \"managed-identity\" or \"workload-identity\")"
                    );
                };
                auth.validate()?;
            }
            OutputKind::DataCollector => {
                if o.workspace_id.is_none() {
                    bail!("output.kind = \"data-collector\" needs `workspace_id`");
                }
                // The shared key itself is read where the client is built: only the
                // commands that talk to Azure need it.
                if let Some(ep) = &o.endpoint {
                    check_url("output.endpoint", ep, false)?;
                }
            }
            OutputKind::File => {
                if o.path.is_none() {
                    bail!("output.kind = \"file\" needs `path`");
                }
            }
            OutputKind::Stdout => {}
        }
        if o.gzip_level.is_some_and(|l| l > 9) {
            bail!("output.gzip_level must be between 0 and 9");
        }
        if o.concurrency == 0 || o.concurrency > 64 {
            bail!("output.concurrency must be between 1 and 64");
        }
        check_duration(
            "output.request_timeout",
            o.request_timeout,
            Duration::from_millis(100),
            MAX_DURATION_KEY,
        )?;
        check_duration(
            "output.retry_budget",
            o.retry_budget,
            Duration::ZERO,
            MAX_DURATION_KEY,
        )?;
        if let Some(a) = &o.auth {
            if let Some(h) = &a.authority_host {
                check_url("output.auth.authority_host", h, false)?;
            }
            if let Some(h) = &a.imds_endpoint {
                check_url("output.auth.imds_endpoint", h, true)?;
            }
        }
        if let Some(s) = &self.spool {
            if s.max_bytes.0 < (1 << 20) {
                bail!("spool.max_bytes must be at least 1MiB");
            }
            if !(0.0..=1.0).contains(&s.ready_threshold) {
                bail!("spool.ready_threshold must be between 0 and 1");
            }
        }
        let p = &self.pipeline;
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
        if let Some(d) = &self.dead_letter
            && d.max_bytes.0 < 4096
        {
            bail!("dead_letter.max_bytes must be at least 4KiB");
        }
        Ok(())
    }

    /// The spool directory: configured, else `$XDG_STATE_HOME/mcas-forward/spool`,
    /// else `~/.local/state/mcas-forward/spool`.
    pub(crate) fn spool_dir(&self) -> anyhow::Result<PathBuf> {
        match self.spool.as_ref().and_then(|s| s.dir.clone()) {
            Some(d) => Ok(d),
            None => Ok(state_dir()?.join("spool")),
        }
    }

    /// The dead-letter file: configured, else under the state directory.
    pub(crate) fn dead_letter_path(&self) -> anyhow::Result<PathBuf> {
        match self.dead_letter.as_ref().and_then(|d| d.path.clone()) {
            Some(p) => Ok(p),
            None => Ok(state_dir()?.join("dead-letter.ndjson")),
        }
    }

    /// The mapper of `[mapping]`.
    pub(crate) fn mapper(&self) -> mcas_csl::Mapper {
        mcas_csl::Mapper::new(self.mapping.rules.clone(), self.mapping.time_generated)
    }

    /// The dead-letter file's limits.
    pub(crate) fn dead_letter_limits(&self) -> crate::deadletter::Limits {
        match &self.dead_letter {
            Some(d) => crate::deadletter::Limits {
                max_bytes: d.max_bytes.0,
                unroutable_per_second: d.unroutable_per_second,
            },
            None => crate::deadletter::Limits::default(),
        }
    }

    /// The effective spool settings.
    pub(crate) fn spool_settings(&self) -> SpoolConfig {
        self.spool.clone().unwrap_or_default()
    }
}

impl AuthConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let need = |v: &Option<String>, key: &str| -> anyhow::Result<()> {
            if v.as_deref().is_none_or(str::is_empty) {
                bail!(
                    "output.auth.kind = {:?} needs `{key}`",
                    kind_name(self.kind)
                );
            }
            Ok(())
        };
        match self.kind {
            AuthKind::ClientSecret => {
                // The secret itself is read where the credential is built: only the
                // commands that talk to Azure need it.
                need(&self.tenant_id, "tenant_id")?;
                need(&self.client_id, "client_id")?;
            }
            AuthKind::ClientCertificate => {
                need(&self.tenant_id, "tenant_id")?;
                need(&self.client_id, "client_id")?;
                if self.certificate.is_none() {
                    bail!(
                        "output.auth.kind = \"client-certificate\" needs `certificate` (a PEM file)"
                    );
                }
            }
            AuthKind::ManagedIdentity => {}
            AuthKind::WorkloadIdentity => {
                if self.tenant_id.is_none() && !env_set("AZURE_TENANT_ID") {
                    bail!(
                        "output.auth.kind = \"workload-identity\" needs `tenant_id` or AZURE_TENANT_ID"
                    );
                }
                if self.client_id.is_none() && !env_set("AZURE_CLIENT_ID") {
                    bail!(
                        "output.auth.kind = \"workload-identity\" needs `client_id` or AZURE_CLIENT_ID"
                    );
                }
                if self.federated_token_file.is_none() && !env_set("AZURE_FEDERATED_TOKEN_FILE") {
                    bail!(
                        "output.auth.kind = \"workload-identity\" needs `federated_token_file` or AZURE_FEDERATED_TOKEN_FILE"
                    );
                }
            }
        }
        Ok(())
    }

    /// The client secret: `MCAS_FORWARD_CLIENT_SECRET`, else `client_secret_file`, else inline.
    pub(crate) fn resolve_client_secret(&self) -> anyhow::Result<Secret> {
        resolve_secret(
            ENV_CLIENT_SECRET,
            self.client_secret_file.as_deref(),
            self.client_secret.as_ref(),
            "output.auth.client_secret",
        )
    }
}

impl OutputConfig {
    /// The shared key: `MCAS_FORWARD_SHARED_KEY`, else `shared_key_file`, else inline.
    pub(crate) fn resolve_shared_key(&self) -> anyhow::Result<Secret> {
        resolve_secret(
            ENV_SHARED_KEY,
            self.shared_key_file.as_deref(),
            self.shared_key.as_ref(),
            "output.shared_key",
        )
    }
}

fn resolve_secret(
    env: &str,
    file: Option<&Path>,
    inline: Option<&Secret>,
    key: &str,
) -> anyhow::Result<Secret> {
    if let Ok(v) = std::env::var(env)
        && !v.is_empty()
    {
        return Ok(Secret(v));
    }
    if let Some(f) = file {
        let v = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {key}_file {}", f.display()))?;
        let v = v.trim().to_owned();
        if v.is_empty() {
            bail!("{key}_file {} is empty", f.display());
        }
        return Ok(Secret(v));
    }
    match inline {
        Some(s) => Ok(s.clone()),
        None => bail!("{key}: no secret: set {env} or `{key}_file`"),
    }
}

/// Refuse a URL that the output's client would refuse: anything but `https://`, except
/// plain `http://` to a loopback host (the emulator), or to the IMDS address where
/// `allow_imds` (that service is plain HTTP only).
fn check_url(key: &str, url: &str, allow_imds: bool) -> anyhow::Result<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("{key} = {url:?}: not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("");
    if host.is_empty() {
        bail!("{key} = {url:?}: the URL has no host");
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare.eq_ignore_ascii_case("localhost")
                || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback || (allow_imds && bare == "169.254.169.254") {
                Ok(())
            } else {
                bail!(
                    "{key} = {url:?}: plain http:// is refused except to a loopback host; use https://"
                )
            }
        }
        other => bail!("{key} = {url:?}: the scheme must be https, not {other}"),
    }
}

/// Whether a key's value is (or may be) a secret: never quoted in an error.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_file") {
        return false;
    }
    ["secret", "secr", "passw", "token", "shared", "key", "cred"]
        .iter()
        .any(|w| k.contains(w))
}

/// The bare key just before an `=` (the last segment of a dotted key, quotes removed).
fn key_before(s: &str) -> &str {
    let s = s.trim_end();
    let start = s
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "_-.\"'".contains(c)))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let k = &s[start..];
    let k = k.rsplit('.').next().unwrap_or(k);
    k.trim_matches(|c| c == '"' || c == '\'')
}

/// The extent of a TOML value at the start of `v`: its length, its content, and the
/// delimiter of a multi-line string that goes on after this line.
fn value_extent(v: &str) -> (usize, &str, Option<&'static str>) {
    for delim in ["\"\"\"", "'''"] {
        if let Some(rest) = v.strip_prefix(delim) {
            return match rest.find(delim) {
                Some(k) => (3 + k + 3, &rest[..k], None),
                None => (v.len(), rest, Some(delim)),
            };
        }
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return (1 + i + 1, &rest[..i], None),
                _ => {}
            }
        }
        return (v.len(), rest, None);
    }
    if let Some(rest) = v.strip_prefix('\'') {
        return match rest.find('\'') {
            Some(i) => (1 + i + 1, &rest[..i], None),
            None => (v.len(), rest, None),
        };
    }
    if v.starts_with(['{', '[']) {
        // A table or array where a secret goes: hide the rest of the line.
        return (v.len(), v, None);
    }
    let end = v
        .find(|c: char| c == ',' || c == '}' || c == '#' || c.is_whitespace())
        .unwrap_or(v.len());
    (end, &v[..end], None)
}

/// The lines of `text` with the value of every secret key replaced, and the values found.
fn mask_secrets(text: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut secrets = Vec::new();
    let mut open: Option<&'static str> = None;
    for line in text.lines() {
        if let Some(delim) = open {
            match line.find(delim) {
                Some(i) => {
                    secrets.push(line[..i].to_owned());
                    lines.push(format!("<redacted>{}", &line[i..]));
                    open = None;
                }
                None => {
                    secrets.push(line.to_owned());
                    lines.push("<redacted>".to_owned());
                }
            }
            continue;
        }
        let mut masked = String::with_capacity(line.len());
        let (mut from, mut copied) = (0, 0);
        while let Some(off) = line[from..].find('=') {
            let eq = from + off;
            from = eq + 1;
            if !is_secret_key(key_before(&line[..eq])) {
                continue;
            }
            let rest = &line[from..];
            let start = from + (rest.len() - rest.trim_start().len());
            let (len, inner, multi) = value_extent(&line[start..]);
            secrets.push(line[start..start + len].to_owned());
            secrets.push(inner.to_owned());
            masked.push_str(&line[copied..start]);
            masked.push_str("\"<redacted>\"");
            copied = start + len;
            from = copied;
            if multi.is_some() {
                open = multi;
                break;
            }
        }
        masked.push_str(&line[copied..]);
        lines.push(masked);
    }
    secrets.retain(|s| !s.trim().is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    (lines, secrets)
}

/// A TOML error as a message that names the line and the key (`table.key`) and quotes the
/// line with every secret value replaced; a secret in the message itself is replaced too.
fn toml_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let (lines, secrets) = mask_secrets(text);
    let mut msg = e.message().trim_end().to_owned();
    for s in &secrets {
        msg = msg.replace(s.as_str(), "<redacted>");
    }
    let Some(span) = e.span() else {
        return anyhow::anyhow!("TOML error: {msg}");
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count();
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let shown = lines.get(line).map_or("", String::as_str);
    // The table the line is in, and the key it sets, when it sets one.
    let table = text
        .lines()
        .take(line + 1)
        .filter_map(|l| {
            let t = l.trim();
            t.starts_with('[')
                .then(|| t.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
        })
        .last();
    let key = text
        .lines()
        .nth(line)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''))
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let at = match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}: "),
        (None, Some(k)) => format!("{k}: "),
        _ => String::new(),
    };
    anyhow::anyhow!(
        "{at}{msg} (line {}, column {column})\n  {} | {shown}",
        line + 1,
        line + 1
    )
}

/// Whether an environment variable is set to something non-empty.
fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

fn kind_name(k: AuthKind) -> &'static str {
    match k {
        AuthKind::ClientSecret => "client-secret",
        AuthKind::ClientCertificate => "client-certificate",
        AuthKind::ManagedIdentity => "managed-identity",
        AuthKind::WorkloadIdentity => "workload-identity",
    }
}

/// `$XDG_STATE_HOME/mcas-forward`, else `~/.local/state/mcas-forward`.
pub(crate) fn state_dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("mcas-forward"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/state/mcas-forward")),
        None => bail!(
            "neither XDG_STATE_HOME nor HOME is set: configure [spool] dir and [dead_letter] path"
        ),
    }
}

/// Resolve a listener `timezone`: an IANA name (`Europe/Paris`) or a fixed offset (`+02:00`).
pub(crate) fn parse_timezone(tz: &str) -> anyhow::Result<jiff::tz::TimeZone> {
    if tz.eq_ignore_ascii_case("utc") || tz == "Z" {
        return Ok(jiff::tz::TimeZone::UTC);
    }
    if let Some(first) = tz.chars().next()
        && (first == '+' || first == '-')
    {
        let parts: Vec<&str> = tz[1..].split(':').collect();
        let h: Option<i32> = parts.first().and_then(|h| h.parse().ok());
        let m: Option<i32> = parts.get(1).map_or(Some(0), |m| m.parse().ok());
        let off = match (h, m) {
            (Some(h), Some(m)) if parts.len() <= 2 && h <= 18 && m < 60 => {
                let secs = (h * 3600 + m * 60) * if first == '-' { -1 } else { 1 };
                jiff::tz::Offset::from_seconds(secs).ok()
            }
            _ => None,
        }
        .ok_or_else(|| anyhow::anyhow!("bad UTC offset {tz:?} (example: \"+02:00\")"))?;
        return Ok(jiff::tz::TimeZone::fixed(off));
    }
    jiff::tz::TimeZone::get(tz).map_err(|e| anyhow::anyhow!("unknown time zone {tz:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.output.kind, OutputKind::Stdout);
        assert_eq!(c.pipeline.flush_interval.0, Duration::from_secs(1));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(ByteSize::parse("10GiB").unwrap().0, 10 << 30);
        assert_eq!(ByteSize::parse("64 KiB").unwrap().0, 65536);
        assert_eq!(ByteSize::parse("5MB").unwrap().0, 5_000_000);
        assert_eq!(ByteSize::parse("1000").unwrap().0, 1000);
        assert!(ByteSize::parse("10 parsecs").is_err());
        assert_eq!(
            DurationStr::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            DurationStr::parse("5m").unwrap().0,
            Duration::from_secs(300)
        );
        assert!(DurationStr::parse("soon").is_err());
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        let l = Cidr::parse("::1").unwrap();
        assert!(l.contains("::1".parse().unwrap()));
        assert!(!l.contains("127.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn timezones() {
        assert!(parse_timezone("+02:00").is_ok());
        assert!(parse_timezone("UTC").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
    }

    const LI: &str = "[output]\nkind = \"logs-ingestion\"\nendpoint = \"https://x.ingest.monitor.azure.com\"\ndcr_immutable_id = \"dcr-00000000000000000000000000000000\"\n[output.auth]\nkind = \"client-secret\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";

    #[test]
    fn toml_errors_never_quote_a_secret() {
        let secret = "Hunter2-Very-Secret~Value";
        let cases = [
            (
                format!("{LI}client_secret = \"{secret}\" trailing\n"),
                "output.auth.client_secret",
            ),
            (
                format!("{LI}client_secret = '{secret}\n"),
                "output.auth.client_secret",
            ),
            (
                format!("{LI}client_secret = {{ v = \"{secret}\" }}\n"),
                "output.auth.client_secret",
            ),
            (
                format!("{LI}client_secret = \"\"\"\n{secret}\n\"\"\" x\n"),
                "",
            ),
            (
                format!("{LI}client_secrt = \"{secret}\"\n"),
                "output.auth.client_secrt",
            ),
            (
                format!("{LI}extra = {{ client_secret = \"{secret}\", n = 1 }}\n"),
                "output.auth.extra",
            ),
            (
                format!(
                    "[output]\nkind = \"data-collector\"\nworkspace_id = \"w\"\nshared_key = \"{secret}\" ,\n"
                ),
                "output.shared_key",
            ),
        ];
        for (text, key) in cases {
            let e = format!("{:#}", Config::parse(&text).unwrap_err());
            assert!(!e.contains(secret), "secret quoted in: {e}");
            assert!(!e.contains("Hunter2"), "part of the secret quoted in: {e}");
            assert!(e.contains(key), "{key} not named in: {e}");
            assert!(e.contains("line "), "no position in: {e}");
        }
        // A numeric value under a secret key is not quoted either.
        let e = format!(
            "{:#}",
            Config::parse(&format!("{LI}client_secret = 987654321\n")).unwrap_err()
        );
        assert!(!e.contains("987654321"), "{e}");
        assert!(e.contains("expected a string"), "{e}");
        // Other values are still shown, to help.
        let e = format!(
            "{:#}",
            Config::parse("[output]\nkind = \"kafka\"\n").unwrap_err()
        );
        assert!(
            e.contains("unknown variant `kafka`") && e.contains("output.kind"),
            "{e}"
        );
    }

    #[test]
    fn every_duration_is_range_checked_in_both_forms_naming_the_key() {
        let base = "[output]\nkind = \"stdout\"\n";
        for (table, key) in [
            ("pipeline", "shutdown_grace"),
            ("pipeline", "flush_interval"),
            ("pipeline", "linger"),
            ("output", "request_timeout"),
            ("output", "retry_budget"),
        ] {
            for v in [
                "9223372036854775807",
                "100000",
                "\"100000s\"",
                "\"999999h\"",
                "-5",
            ] {
                let text = if table == "output" {
                    format!("[output]\nkind = \"stdout\"\n{key} = {v}\n")
                } else {
                    format!("{base}[{table}]\n{key} = {v}\n")
                };
                let e = format!("{:#}", Config::parse(&text).unwrap_err());
                assert!(e.contains(&format!("{table}.{key}")), "{text}: {e}");
            }
            let ok = if table == "output" {
                format!("[output]\nkind = \"stdout\"\n{key} = 20\n")
            } else {
                format!("{base}[{table}]\n{key} = 20\n")
            };
            Config::parse(&ok).unwrap();
        }
        let e = Config::parse(&format!(
            "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:1\"\nidle_timeout = 100000000\n{base}"
        ))
        .unwrap_err();
        assert!(format!("{e:#}").contains("listen[0].idle_timeout"), "{e:#}");
        assert_eq!(
            DurationStr::from_int(30).unwrap().0,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn plain_http_is_refused_off_loopback_naming_the_key() {
        let text = LI.replace("https://x", "http://x");
        let e = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(
            e.contains("output.endpoint") && e.contains("plain http://"),
            "{e}"
        );
        for ok in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
            Config::parse(&LI.replace("https://x.ingest.monitor.azure.com", ok)).unwrap();
        }
        let e = Config::parse(&format!(
            "{LI}authority_host = \"http://login.example.com\"\n"
        ))
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("output.auth.authority_host"),
            "{e:#}"
        );
    }

    #[test]
    fn the_secret_is_not_needed_to_load_the_configuration() {
        // Checked where the credential is built, by the commands that talk to Azure.
        let c = Config::parse(LI).unwrap();
        let a = c.output.auth.as_ref().unwrap();
        assert!(a.client_secret.is_none() && a.client_secret_file.is_none());
        let p = c.with_placeholder_secrets();
        assert!(p.output.auth.unwrap().client_secret.is_some());
        let dc =
            Config::parse("[output]\nkind = \"data-collector\"\nworkspace_id = \"w\"\n").unwrap();
        assert!(dc.output.shared_key.is_none());
    }

    #[test]
    fn clear_errors() {
        let e = Config::parse("[output]\nkind = \"logs-ingestion\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("needs `endpoint`"), "{e:#}");
        let e = Config::parse("[output]\nkind = \"stdout\"\nbogus = 1\n").unwrap_err();
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");
        let e = Config::parse("[[listen]]\nprotocol = \"tls\"\naddress = \"127.0.0.1:6514\"\n[output]\nkind = \"stdout\"\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("needs both `cert` and `key`"),
            "{e:#}"
        );
        let e = Config::parse("[spool]\nmax_bytes = \"lots\"\n[output]\nkind = \"stdout\"\n")
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown size unit \"lots\""),
            "{e:#}"
        );
    }

    #[test]
    fn connection_guards() {
        let listen = |extra: &str| {
            format!(
                "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:5514\"\n{extra}\n[output]\nkind = \"stdout\"\n"
            )
        };
        let c = Config::parse(&listen("")).unwrap();
        let l = &c.listen[0];
        assert_eq!(l.max_connections_per_source, 64);
        assert_eq!(l.first_frame_timeout.0, Duration::from_secs(30));
        assert_eq!(l.frame_timeout.0, Duration::from_secs(30));
        let c = Config::parse(&listen(
            "max_connections_per_source = 4\nfirst_frame_timeout = \"2s\"\nframe_timeout = \"500ms\"",
        ))
        .unwrap();
        assert_eq!(c.listen[0].max_connections_per_source, 4);
        assert_eq!(c.listen[0].frame_timeout.0, Duration::from_millis(500));
        for (bad, msg) in [
            (
                "max_connections_per_source = 0",
                "max_connections_per_source must be at least 1",
            ),
            (
                "first_frame_timeout = \"0s\"",
                "first_frame_timeout must be at least 100ms",
            ),
            (
                "frame_timeout = \"10ms\"",
                "frame_timeout must be at least 100ms",
            ),
        ] {
            let e = Config::parse(&listen(bad)).unwrap_err();
            assert!(format!("{e:#}").contains(msg), "{e:#}");
            assert!(format!("{e:#}").contains("listen[0]"), "{e:#}");
        }
    }
}
