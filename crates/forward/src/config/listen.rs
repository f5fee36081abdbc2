//! `[[listen]]`: protocols, framing, limits and their checks.

use super::*;

/// Listener protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Protocol {
    Udp,
    Tcp,
    Tls,
    /// RELP (rsyslog's acknowledged transport) over TCP: each message answered once stored.
    Relp,
    /// RELP over TLS (implicit from connect, as rsyslog's `tls="on"`).
    RelpTls,
    /// Records read from Kafka topics (a shipper): raw syslog lines, or rows a collector
    /// already mapped. No socket of its own.
    Kafka,
}

impl Protocol {
    /// Whether the listener speaks TLS (and needs `cert` and `key`).
    pub(crate) fn is_tls(self) -> bool {
        matches!(self, Protocol::Tls | Protocol::RelpTls)
    }

    /// Whether the listener speaks RELP.
    pub(crate) fn is_relp(self) -> bool {
        matches!(self, Protocol::Relp | Protocol::RelpTls)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Relp => "relp",
            Protocol::RelpTls => "relp-tls",
            Protocol::Kafka => "kafka",
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

/// `[relp]`: what the RELP listeners share.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RelpConfig {
    /// Group commit: while a RELP session waits for answers, open batches are closed and
    /// made durable at least this often (instead of at `pipeline.flush_interval`).
    #[serde(default = "default_commit_interval")]
    pub(crate) commit_interval: DurationStr,
    /// The largest RELP frame accepted (its DATALEN); a larger one is a protocol error that
    /// closes the session. Never below `max_message_bytes` of a RELP listener.
    #[serde(default = "default_max_datalen")]
    pub(crate) max_datalen: ByteSize,
    /// Messages of one session read but not yet answered before the session stops reading
    /// (a sender's window is far smaller; this bounds a client that ignores answers).
    #[serde(default = "default_max_unanswered")]
    pub(crate) max_unanswered: usize,
}

impl Default for RelpConfig {
    fn default() -> RelpConfig {
        RelpConfig {
            commit_interval: default_commit_interval(),
            max_datalen: default_max_datalen(),
            max_unanswered: default_max_unanswered(),
        }
    }
}

fn default_commit_interval() -> DurationStr {
    DurationStr(Duration::from_millis(2))
}
fn default_max_datalen() -> ByteSize {
    ByteSize(mcas_syslog::relp::DEFAULT_MAX_DATALEN as u64)
}
fn default_max_unanswered() -> usize {
    16_384
}

impl RelpConfig {
    /// The checks of `[relp]`, against the RELP listeners' message limits.
    pub(super) fn validate(&self, listen: &[ListenConfig]) -> anyhow::Result<()> {
        check_duration(
            "relp.commit_interval",
            self.commit_interval,
            Duration::from_micros(100),
            Duration::from_secs(1),
        )?;
        if self.max_datalen.0 < 1024 || self.max_datalen.0 > (16 << 20) {
            bail!("relp.max_datalen must be between 1KiB and 16MiB");
        }
        if self.max_unanswered == 0 {
            bail!("relp.max_unanswered must be at least 1");
        }
        for (i, l) in listen.iter().enumerate() {
            if l.protocol.is_relp() && l.max_message_bytes.0 > self.max_datalen.0 {
                bail!(
                    "listen[{i}] ({} {}): max_message_bytes ({}) is larger than relp.max_datalen ({}): such messages would end their session; raise relp.max_datalen",
                    l.protocol,
                    l.address,
                    l.max_message_bytes.0,
                    self.max_datalen.0
                );
            }
        }
        Ok(())
    }
}

/// One `[[listen]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenConfig {
    pub(crate) protocol: Protocol,
    /// The socket address; a Kafka listener has none (its brokers are in `brokers`).
    #[serde(default = "no_address")]
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
    /// Kafka: the connection and what to read (see [`KafkaListen`]).
    #[serde(default)]
    pub(crate) brokers: Vec<String>,
    #[serde(default)]
    pub(crate) topics: Vec<String>,
    #[serde(default)]
    pub(crate) group: Option<String>,
    #[serde(default)]
    pub(crate) start: Option<KafkaStart>,
    #[serde(default)]
    pub(crate) partitions: Option<Vec<i32>>,
    #[serde(default)]
    pub(crate) commit_interval: Option<DurationStr>,
    #[serde(default)]
    pub(crate) sasl: Option<Sasl>,
    #[serde(default)]
    pub(crate) connection_string_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) connection_string_env: Option<String>,
    #[serde(default)]
    pub(crate) tls: Option<bool>,
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) auth: Option<AuthConfig>,
}

/// What `address` is when a table has none: no listener may bind it (port 0 on every
/// interface is nothing a sender could be told).
pub(crate) fn no_address() -> SocketAddr {
    SocketAddr::from(([0u16; 8], 0))
}

impl ListenConfig {
    /// A Kafka listener's settings.
    pub(crate) fn kafka(&self) -> KafkaListen {
        KafkaListen {
            client: KafkaClient {
                brokers: self.brokers.clone(),
                sasl: self.sasl,
                connection_string_file: self.connection_string_file.clone(),
                connection_string_env: self.connection_string_env.clone(),
                tls: self.tls,
                ca_file: self.ca_file.clone(),
                auth: self.auth.clone(),
                placeholder: None,
            },
            topics: self.topics.clone(),
            group: self.group.clone().unwrap_or_default(),
            start: self.start.unwrap_or_default(),
            partitions: self.partitions.clone(),
            commit_interval: self
                .commit_interval
                .unwrap_or_else(default_kafka_commit_interval),
        }
    }

    /// Where it listens, for messages: the address, or a Kafka listener's group and topics.
    pub(crate) fn place(&self) -> String {
        if self.protocol == Protocol::Kafka {
            format!(
                "group {} topics {}",
                self.group.as_deref().unwrap_or(""),
                self.topics.join(",")
            )
        } else {
            self.address.to_string()
        }
    }

    /// Whether any Kafka key is set.
    fn has_kafka_keys(&self) -> bool {
        !self.brokers.is_empty()
            || !self.topics.is_empty()
            || self.group.is_some()
            || self.start.is_some()
            || self.partitions.is_some()
            || self.commit_interval.is_some()
            || self.sasl.is_some()
            || self.connection_string_file.is_some()
            || self.connection_string_env.is_some()
            || self.tls.is_some()
            || self.ca_file.is_some()
            || self.auth.is_some()
    }
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

pub(super) fn default_max_message() -> ByteSize {
    ByteSize(64 * 1024)
}
pub(super) fn default_max_connections() -> usize {
    1024
}
pub(super) fn default_idle_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(600))
}
pub(super) fn default_max_connections_per_source() -> usize {
    64
}
pub(super) fn default_first_frame_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}
pub(super) fn default_frame_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}

impl ListenConfig {
    /// The checks of `listen[i]`.
    pub(super) fn validate(&self, i: usize) -> anyhow::Result<()> {
        let at = format!("listen[{i}] ({} {})", self.protocol, self.place());
        if self.protocol == Protocol::Kafka {
            if self.address != no_address() {
                bail!("{at}: a Kafka listener has no `address`; its brokers are in `brokers`");
            }
            if self.cert.is_some() || self.key.is_some() || self.client_ca.is_some() {
                bail!(
                    "{at}: `cert`, `key` and `client_ca` are for listeners that accept TLS; a Kafka listener's TLS is `tls` and `ca_file`"
                );
            }
            if self.framing != FramingConfig::Auto || self.receive_buffer_bytes.is_some() {
                bail!(
                    "{at}: `framing` and `receive_buffer_bytes` do not apply to Kafka, whose records are messages"
                );
            }
            if !self.allow.is_empty() {
                bail!("{at}: `allow` does not apply to Kafka (the brokers are who we read from)");
            }
            if let Some(tz) = &self.timezone {
                parse_timezone(tz).with_context(|| format!("{at}: timezone"))?;
            }
            return self.kafka().validate(&format!("listen[{i}]"));
        }
        if self.address == no_address() {
            bail!("listen[{i}] ({}): needs `address`", self.protocol);
        }
        if self.has_kafka_keys() {
            bail!(
                "{at}: brokers, topics, group, start, partitions, commit_interval, sasl, connection strings, tls, ca_file and auth are for protocol = \"kafka\""
            );
        }
        if self.protocol.is_tls() && (self.cert.is_none() || self.key.is_none()) {
            bail!(
                "{at}: protocol = \"{}\" needs both `cert` and `key` (PEM files)",
                self.protocol
            );
        }
        if !self.protocol.is_tls()
            && (self.cert.is_some() || self.key.is_some() || self.client_ca.is_some())
        {
            bail!(
                "{at}: `cert`, `key` and `client_ca` apply only to protocol = \"tls\" and \"relp-tls\""
            );
        }
        if self.protocol == Protocol::Udp && self.framing != FramingConfig::Auto {
            bail!("{at}: `framing` applies only to tcp and tls; UDP is one message per datagram");
        }
        if self.protocol.is_relp() && self.framing != FramingConfig::Auto {
            bail!("{at}: `framing` does not apply to RELP, which has frames of its own");
        }
        if self.max_message_bytes.0 < 64 || self.max_message_bytes.0 > (16 << 20) {
            bail!("{at}: max_message_bytes must be between 64 bytes and 16MiB");
        }
        if self.max_connections == 0 {
            bail!("{at}: max_connections must be at least 1");
        }
        check_duration(
            &format!("listen[{i}].idle_timeout"),
            self.idle_timeout,
            Duration::from_secs(1),
            MAX_DURATION_KEY,
        )?;
        for (key, d) in [
            ("first_frame_timeout", self.first_frame_timeout),
            ("frame_timeout", self.frame_timeout),
        ] {
            // The lower bound is validate_guards'.
            check_duration(
                &format!("listen[{i}].{key}"),
                d,
                Duration::ZERO,
                MAX_DURATION_KEY,
            )?;
        }
        self.validate_guards(&at)?;
        if let Some(tz) = &self.timezone {
            parse_timezone(tz).with_context(|| format!("{at}: timezone"))?;
        }
        Ok(())
    }
}

/// Two listeners of the same transport may not share an address.
pub(super) fn check_unique_addresses(listen: &[ListenConfig]) -> anyhow::Result<()> {
    for (i, a) in listen.iter().enumerate() {
        for b in &listen[i + 1..] {
            let same_kind = (a.protocol == Protocol::Udp) == (b.protocol == Protocol::Udp);
            let kafka = a.protocol == Protocol::Kafka || b.protocol == Protocol::Kafka;
            if same_kind && !kafka && a.address == b.address {
                bail!(
                    "two listeners use {} {}: each address may be used once per transport",
                    a.protocol,
                    a.address
                );
            }
        }
    }
    Ok(())
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
