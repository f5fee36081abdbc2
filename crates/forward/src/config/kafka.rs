//! Kafka and Azure Event Hubs: the connection keys a `kind = "kafka"` output and a
//! `protocol = "kafka"` listener share, and each one's own keys.
//!
//! These parse in every build, so a configuration that names Kafka is checked the same
//! everywhere; a build without the `kafka` feature refuses it at validation, by name.

use super::*;

/// How a Kafka client reaches its brokers: addresses, TLS, SASL.
#[derive(Debug, Clone, Default)]
pub(crate) struct KafkaClient {
    /// `host:port` of one or more brokers (Event Hubs: `<namespace>.servicebus.windows.net:9093`).
    pub(crate) brokers: Vec<String>,
    pub(crate) sasl: Option<Sasl>,
    /// `sasl = "plain"`: the file holding the Event Hubs connection string.
    pub(crate) connection_string_file: Option<PathBuf>,
    /// `sasl = "plain"`: the environment variable holding it.
    pub(crate) connection_string_env: Option<String>,
    /// TLS to the brokers; on by default when `sasl` is set.
    pub(crate) tls: Option<bool>,
    /// A CA bundle (PEM) to verify the brokers with, instead of the system's.
    pub(crate) ca_file: Option<PathBuf>,
    /// `sasl = "oauthbearer"`: the credential (`[output.auth]` / `[listen.auth]`).
    pub(crate) auth: Option<AuthConfig>,
    /// Not a key: the placeholder of commands that build the client but never connect.
    pub(crate) placeholder: Option<Secret>,
}

/// `sasl`: how a Kafka client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sasl {
    /// Username `$ConnectionString`, password the Event Hubs connection string.
    Plain,
    /// An Entra ID token from the forwarder's credential kinds.
    Oauthbearer,
}

impl KafkaClient {
    /// Whether the connection uses TLS: `tls`, else on when SASL is set.
    pub(crate) fn uses_tls(&self) -> bool {
        self.tls.unwrap_or(self.sasl.is_some())
    }

    /// The Event Hubs connection string of `sasl = "plain"`: the environment variable,
    /// else the file.
    pub(crate) fn connection_string(&self, at: &str) -> anyhow::Result<Secret> {
        if let Some(p) = &self.placeholder {
            return Ok(p.clone());
        }
        if let Some(var) = &self.connection_string_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_owned())),
                _ => bail!("{at}.connection_string_env: the variable {var} is not set"),
            };
        }
        if let Some(f) = &self.connection_string_file {
            let v = std::fs::read_to_string(f).with_context(|| {
                format!("cannot read {at}.connection_string_file {}", f.display())
            })?;
            let v = v.trim();
            if v.is_empty() {
                bail!("{at}.connection_string_file {} is empty", f.display());
            }
            return Ok(Secret(v.to_owned()));
        }
        bail!("{at}: sasl = \"plain\" needs connection_string_file or connection_string_env")
    }

    /// The checks of the connection keys; `at` names the table.
    pub(super) fn validate(&self, at: &str) -> anyhow::Result<()> {
        if !cfg!(feature = "kafka") {
            bail!(
                "{at}: this mcas-forward was built without Kafka support; build it with `--features kafka`"
            );
        }
        if self.brokers.is_empty() {
            bail!("{at}: Kafka needs `brokers` (\"host:port\", one or more)");
        }
        for b in &self.brokers {
            let ok = b
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok || b.contains(',') || b.contains("://") {
                bail!("{at}.brokers: {b:?} is not \"host:port\"");
            }
        }
        let plain_keys =
            self.connection_string_file.is_some() || self.connection_string_env.is_some();
        match self.sasl {
            Some(Sasl::Plain) => {
                if self.connection_string_file.is_some() == self.connection_string_env.is_some() {
                    bail!(
                        "{at}: sasl = \"plain\" needs one of connection_string_file and connection_string_env"
                    );
                }
                if self.auth.is_some() {
                    bail!("{at}.auth is for sasl = \"oauthbearer\"");
                }
            }
            Some(Sasl::Oauthbearer) => {
                if plain_keys {
                    bail!(
                        "{at}: connection_string_file and connection_string_env are for sasl = \"plain\""
                    );
                }
                if self.auth.is_none() {
                    bail!(
                        "{at}: sasl = \"oauthbearer\" needs an auth table (the credential, as for logs-ingestion)"
                    );
                }
            }
            None => {
                if plain_keys || self.auth.is_some() {
                    bail!(
                        "{at}: connection strings and auth need `sasl` (\"plain\" or \"oauthbearer\")"
                    );
                }
            }
        }
        if self.sasl.is_some() && self.tls == Some(false) {
            bail!(
                "{at}: sasl without TLS would send the credential in clear; remove `tls = false`"
            );
        }
        if self.ca_file.is_some() && !self.uses_tls() {
            bail!("{at}.ca_file needs tls = true");
        }
        Ok(())
    }
}

/// `key`: what a Kafka output keys its records by (records of one key keep their order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KafkaKey {
    /// The row's `Computer` (the sender's host name).
    #[default]
    Host,
    /// The row's `DeviceVendor` (CommonSecurityLog rows; Syslog rows have none).
    Vendor,
    /// No key: records spread over the partitions.
    None,
}

/// `compression`: the producer's record batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KafkaCompression {
    None,
    /// The one Event Hubs accepts (the default there).
    Gzip,
    /// The default elsewhere: about twice the collector's throughput of gzip.
    #[default]
    Lz4,
}

// Read by the Kafka client, which only the `kafka` feature builds.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
impl KafkaCompression {
    /// The default for `brokers`: gzip for Event Hubs (the only codec it takes), else lz4.
    pub(crate) fn default_for(brokers: &[String]) -> KafkaCompression {
        let event_hubs = !brokers.is_empty()
            && brokers.iter().all(|b| {
                b.rsplit_once(':')
                    .is_some_and(|(h, _)| h.ends_with(".servicebus.windows.net"))
            });
        if event_hubs {
            KafkaCompression::Gzip
        } else {
            KafkaCompression::Lz4
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Lz4 => "lz4",
        }
    }
}

/// `kind = "kafka"`: rows produced to a topic (a collector).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) struct KafkaOutputConfig {
    pub(crate) client: KafkaClient,
    pub(crate) topic: String,
    pub(crate) key: KafkaKey,
    pub(crate) compression: KafkaCompression,
    /// Rows of one key in a record (NDJSON), at most; 1: one JSON row per record.
    pub(crate) rows_per_record: usize,
    /// Batches being produced at once.
    pub(crate) concurrency: usize,
    /// A request's timeout (`request.timeout.ms`).
    pub(crate) request_timeout: DurationStr,
    /// How long the producer retries a batch before handing it back to the spool
    /// (`message.timeout.ms`).
    pub(crate) retry_budget: DurationStr,
}

/// The only `acks` a Kafka output takes: every in-sync replica.
pub(crate) const ACKS_ALL: &str = "all";

impl KafkaOutputConfig {
    pub(super) fn validate(&self, at: &str) -> anyhow::Result<()> {
        self.client.validate(at)?;
        if self.topic.is_empty()
            || self.topic.len() > 249
            || !self
                .topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            bail!(
                "{at}.topic {:?}: a Kafka topic is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'",
                self.topic
            );
        }
        if self.rows_per_record == 0 || self.rows_per_record > 10_000 {
            bail!("{at}.rows_per_record must be between 1 and 10000");
        }
        if self.retry_budget.0 < Duration::from_secs(1) {
            bail!(
                "{at}.retry_budget must be at least 1s for a Kafka output (the producer's message timeout)"
            );
        }
        Ok(())
    }
}

/// `start`: where a listener reads a partition that has no committed offset in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KafkaStart {
    /// The oldest record still held: nothing already in the topic is skipped.
    #[default]
    Earliest,
    /// Only records produced from now on.
    Latest,
}

/// A `protocol = "kafka"` listener's own settings (a shipper).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) struct KafkaListen {
    pub(crate) client: KafkaClient,
    pub(crate) topics: Vec<String>,
    /// The consumer group: it balances partitions over shippers and holds their offsets.
    pub(crate) group: String,
    pub(crate) start: KafkaStart,
    /// Static assignment (no group membership; offsets still committed under `group`).
    pub(crate) partitions: Option<Vec<i32>>,
    /// How often the durable offsets are committed.
    pub(crate) commit_interval: DurationStr,
}

impl KafkaListen {
    pub(super) fn validate(&self, at: &str) -> anyhow::Result<()> {
        self.client.validate(at)?;
        if self.topics.is_empty() {
            bail!("{at}: a Kafka listener needs `topics`");
        }
        if self.group.is_empty() {
            bail!("{at}: a Kafka listener needs `group` (its committed offsets are kept under it)");
        }
        if let Some(p) = &self.partitions {
            if p.is_empty() || p.iter().any(|&n| n < 0) {
                bail!("{at}.partitions: list partition numbers, 0 or more");
            }
            if self.topics.len() != 1 {
                bail!("{at}.partitions: static assignment takes exactly one topic");
            }
        }
        check_duration(
            &format!("{at}.commit_interval"),
            self.commit_interval,
            Duration::from_millis(10),
            Duration::from_secs(60),
        )
    }
}

/// Rows of one key in a record by default: the per-record cost of the client is paid once
/// for them all.
pub(crate) const DEFAULT_ROWS_PER_RECORD: usize = 64;

pub(super) fn default_kafka_commit_interval() -> DurationStr {
    DurationStr(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text).unwrap_err())
    }

    #[cfg(feature = "kafka")]
    const SHIPPER: &str =
        "[[listen]]\nprotocol = \"kafka\"\nbrokers = [\"127.0.0.1:9092\"]\ntopics = [\"cef\"]\n";
    const STDOUT: &str = "[output]\nkind = \"stdout\"\n";

    #[test]
    fn kafka_keys_belong_to_kafka() {
        let e = err(&format!(
            "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:1\"\ngroup = \"g\"\n{STDOUT}"
        ));
        assert!(e.contains("are for protocol = \"kafka\""), "{e}");
        let e = err(&format!("[[listen]]\nprotocol = \"tcp\"\n{STDOUT}"));
        assert!(e.contains("needs `address`"), "{e}");
        let e = err("[output]\nkind = \"stdout\"\ntopic = \"t\"\n");
        assert!(e.contains("output.topic: not a setting"), "{e}");
        let e = err("[output]\nkind = \"kafka\"\nacks = \"1\"\n");
        assert!(e.contains("takes only \"all\""), "{e}");
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn a_kafka_listener_is_checked_key_by_key() {
        let e = err(&format!("{SHIPPER}{STDOUT}"));
        assert!(e.contains("needs `group`"), "{e}");
        let ok = format!("{SHIPPER}group = \"g\"\npartitions = [0, 2]\n{STDOUT}");
        let c = Config::parse(&ok).unwrap();
        let k = c.listen[0].kafka();
        assert_eq!(k.partitions, Some(vec![0, 2]));
        assert_eq!(k.start, KafkaStart::Earliest);
        assert_eq!(k.commit_interval.0, Duration::from_secs(1));
        let e = err(&format!(
            "{SHIPPER}group = \"g\"\naddress = \"127.0.0.1:1\"\n{STDOUT}"
        ));
        assert!(e.contains("has no `address`"), "{e}");
        let e = err(&format!(
            "{SHIPPER}group = \"g\"\nsasl = \"plain\"\n{STDOUT}"
        ));
        assert!(e.contains("connection_string_file"), "{e}");
        let e = err(&format!(
            "{SHIPPER}group = \"g\"\nsasl = \"plain\"\nconnection_string_env = \"X\"\ntls = false\n{STDOUT}"
        ));
        assert!(e.contains("in clear"), "{e}");
        let e = err(&format!(
            "[[listen]]\nprotocol = \"kafka\"\nbrokers = [\"http://b:1\"]\ntopics = [\"t\"]\ngroup = \"g\"\n{STDOUT}"
        ));
        assert!(e.contains("is not \"host:port\""), "{e}");
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn a_kafka_output_has_event_hubs_defaults() {
        let c = Config::parse(
            "[output]\nkind = \"kafka\"\nbrokers = [\"ns.servicebus.windows.net:9093\"]\ntopic = \"cef\"\nsasl = \"plain\"\nconnection_string_env = \"EH\"\n",
        )
        .unwrap();
        let OutputKind::Kafka(k) = &c.outputs[0].kind else {
            panic!("not kafka")
        };
        assert!(k.client.uses_tls());
        assert_eq!(
            k.compression,
            KafkaCompression::Gzip,
            "Event Hubs takes gzip only"
        );
        assert_eq!(k.key, KafkaKey::Host);
        assert_eq!(k.request_timeout.0, Duration::from_secs(60));
        let c = Config::parse("[output]\nkind = \"kafka\"\nbrokers = [\"b:1\"]\ntopic = \"t\"\n")
            .unwrap();
        let OutputKind::Kafka(k) = &c.outputs[0].kind else {
            panic!("not kafka")
        };
        assert_eq!(k.compression, KafkaCompression::Lz4);
        assert_eq!(k.rows_per_record, DEFAULT_ROWS_PER_RECORD);
        let e = err("[output]\nkind = \"kafka\"\nbrokers = [\"b:1\"]\ntopic = \"bad topic\"\n");
        assert!(e.contains("a Kafka topic is"), "{e}");
    }

    #[cfg(not(feature = "kafka"))]
    #[test]
    fn a_build_without_kafka_says_so() {
        let e = err("[output]\nkind = \"kafka\"\nbrokers = [\"b:1\"]\ntopic = \"t\"\n");
        assert!(e.contains("--features kafka"), "{e}");
    }
}
