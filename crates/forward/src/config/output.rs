//! `[output]` and `[output.auth]`: the output kinds, credentials, secrets and their checks.

use super::*;

/// `[output]`: what every output kind has, and the kind's own settings.
///
/// The kind's fields and checks live in its variant of [`OutputKind`]; a key of another
/// kind is refused, so a `path` left on a Logs Ingestion output is a mistake reported at
/// load, not a silently ignored line.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawOutput")]
pub(crate) struct OutputConfig {
    /// Its name (`[[output]]` needs one; a single `[output]` is `default`).
    pub(crate) name: Option<String>,
    /// The rows it takes: CommonSecurityLog (CEF events) or Syslog (everything else).
    pub(crate) table: Table,
    /// `where`: a KQL predicate on rows of its table; only the rows it keeps go here.
    pub(crate) filter: Option<String>,
    /// Stream (logs-ingestion), Log-Type (data-collector), or any value (stdout, file) for
    /// non-CEF messages; unset: they go to the dead-letter file.
    pub(crate) syslog_stream: Option<String>,
    /// A DCR transformation (KQL, the subset Azure accepts in `transformKql`) run on every
    /// CommonSecurityLog row before it is batched: rows it drops are counted
    /// (`reason="transform"`), rows it keeps are sent as it leaves them.
    pub(crate) transform: Option<String>,
    /// The kind and its own settings.
    pub(crate) kind: OutputKind,
}

/// The table whose rows an output takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub(crate) enum Table {
    #[default]
    CommonSecurityLog,
    Syslog,
    /// The alert rows of the alert rules (`[rules]`), shaped like `SecurityAlert`, for the
    /// custom table `dcr-template --alerts` prints.
    #[serde(rename = "alerts", alias = "MCASForwardAlerts_CL")]
    Alerts,
}

/// The name of the output a single `[output]` table makes.
pub(crate) const DEFAULT_OUTPUT: &str = "default";

impl OutputConfig {
    /// Its name: the configured one, else `default`.
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(DEFAULT_OUTPUT)
    }

    /// The DCR input stream of its table's rows: the configured one for a Logs Ingestion
    /// output, else the default of its table (what `dcr-template` proposes).
    pub(crate) fn dcr_stream(&self) -> &str {
        match (&self.kind, self.table) {
            (OutputKind::LogsIngestion(c), _) => &c.stream,
            (_, Table::CommonSecurityLog) => DEFAULT_STREAM,
            (_, Table::Syslog) => DEFAULT_SYSLOG_STREAM,
            (_, Table::Alerts) => DEFAULT_ALERT_STREAM,
        }
    }

    /// The key prefix of its settings in messages: `output` for the single table,
    /// `output[NAME]` for a named one.
    pub(crate) fn key(&self) -> String {
        match &self.name {
            Some(n) => format!("output[{n}]"),
            None => "output".to_owned(),
        }
    }
}

/// `[output]` (one output) or `[[output]]` (named outputs, each with a `name`).
pub(super) fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<OutputConfig>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<OutputConfig>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an [output] table or [[output]] tables")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let one = OutputConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok(vec![one])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            while let Some(o) = seq.next_element::<OutputConfig>()? {
                if o.name.is_none() {
                    return Err(serde::de::Error::custom(format!(
                        "[[output]] number {}: every [[output]] needs a `name`",
                        all.len() + 1
                    )));
                }
                all.push(o);
            }
            Ok(all)
        }
    }
    d.deserialize_any(V)
}

/// The output kinds, each with the settings only it has.
#[derive(Debug, Clone)]
pub(crate) enum OutputKind {
    LogsIngestion(LogsIngestionConfig),
    DataCollector(DataCollectorConfig),
    Stdout(StdoutConfig),
    File(FileConfig),
    /// Rows produced to a Kafka topic (a collector); see [`KafkaOutputConfig`].
    Kafka(KafkaOutputConfig),
}

/// `kind = "logs-ingestion"`: the Azure Monitor Logs Ingestion API.
#[derive(Debug, Clone)]
pub(crate) struct LogsIngestionConfig {
    /// The DCR's logsIngestion URL or a DCE URL.
    pub(crate) endpoint: Option<String>,
    pub(crate) dcr_immutable_id: Option<String>,
    pub(crate) stream: String,
    /// Gzip level of request bodies (0-9); the library default when unset.
    pub(crate) gzip_level: Option<u32>,
    /// In-flight requests.
    pub(crate) concurrency: usize,
    /// Whole-request timeout.
    pub(crate) request_timeout: DurationStr,
    /// How long the client retries a batch before handing it back to the spool, which
    /// retries it again later (so delivery is never abandoned).
    pub(crate) retry_budget: DurationStr,
    pub(crate) auth: Option<AuthConfig>,
}

/// `kind = "data-collector"`: the legacy HTTP Data Collector API.
#[derive(Debug, Clone)]
pub(crate) struct DataCollectorConfig {
    pub(crate) workspace_id: Option<String>,
    /// Discouraged: prefer `MCAS_FORWARD_SHARED_KEY` or `shared_key_file`.
    pub(crate) shared_key: Option<Secret>,
    pub(crate) shared_key_file: Option<PathBuf>,
    pub(crate) log_type: String,
    /// Endpoint override (tests, sovereign clouds without a preset).
    pub(crate) endpoint: Option<String>,
    /// In-flight requests.
    pub(crate) concurrency: usize,
    /// Whole-request timeout.
    pub(crate) request_timeout: DurationStr,
    /// As for logs-ingestion.
    pub(crate) retry_budget: DurationStr,
    /// Only `cloud` is used: the workspace's sovereign cloud.
    pub(crate) auth: Option<AuthConfig>,
}

/// `kind = "stdout"`: JSON lines on standard output.
#[derive(Debug, Clone)]
pub(crate) struct StdoutConfig {}

/// `kind = "file"`: JSON lines appended to a file.
#[derive(Debug, Clone)]
pub(crate) struct FileConfig {
    pub(crate) path: Option<PathBuf>,
}

/// The `kind` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum KindName {
    LogsIngestion,
    DataCollector,
    Stdout,
    File,
    Kafka,
}

/// `[output]` as written: the keys of every kind, so that a type error is reported with its
/// line by the TOML reader. [`OutputConfig`] is made from it, each kind taking its own keys
/// and refusing the others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    kind: KindName,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    table: Table,
    #[serde(default, rename = "where")]
    filter: Option<String>,
    #[serde(default)]
    syslog_stream: Option<String>,
    #[serde(default)]
    transform: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    dcr_immutable_id: Option<String>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    gzip_level: Option<u32>,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    workspace_id: Option<String>,
    #[serde(default)]
    shared_key: Option<Secret>,
    #[serde(default)]
    shared_key_file: Option<PathBuf>,
    #[serde(default)]
    log_type: Option<String>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    request_timeout: Option<DurationStr>,
    #[serde(default)]
    retry_budget: Option<DurationStr>,
    #[serde(default)]
    auth: Option<AuthConfig>,
    #[serde(default)]
    brokers: Option<Vec<String>>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    key: Option<KafkaKey>,
    #[serde(default)]
    compression: Option<KafkaCompression>,
    #[serde(default)]
    rows_per_record: Option<usize>,
    #[serde(default)]
    acks: Option<String>,
    #[serde(default)]
    sasl: Option<Sasl>,
    #[serde(default)]
    connection_string_file: Option<PathBuf>,
    #[serde(default)]
    connection_string_env: Option<String>,
    #[serde(default)]
    tls: Option<bool>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

impl TryFrom<RawOutput> for OutputConfig {
    type Error = String;

    fn try_from(r: RawOutput) -> Result<OutputConfig, String> {
        let (name, network) = match r.kind {
            KindName::LogsIngestion => ("logs-ingestion", true),
            KindName::DataCollector => ("data-collector", true),
            KindName::Stdout => ("stdout", false),
            KindName::File => ("file", false),
            KindName::Kafka => ("kafka", true),
        };
        // Every key that is set, and the kinds that have it.
        let set: [(&str, bool, &[KindName]); 24] = {
            use KindName::*;
            [
                (
                    "endpoint",
                    r.endpoint.is_some(),
                    &[LogsIngestion, DataCollector],
                ),
                (
                    "dcr_immutable_id",
                    r.dcr_immutable_id.is_some(),
                    &[LogsIngestion],
                ),
                ("stream", r.stream.is_some(), &[LogsIngestion]),
                ("gzip_level", r.gzip_level.is_some(), &[LogsIngestion]),
                ("path", r.path.is_some(), &[File]),
                ("workspace_id", r.workspace_id.is_some(), &[DataCollector]),
                ("shared_key", r.shared_key.is_some(), &[DataCollector]),
                (
                    "shared_key_file",
                    r.shared_key_file.is_some(),
                    &[DataCollector],
                ),
                ("log_type", r.log_type.is_some(), &[DataCollector]),
                (
                    "concurrency",
                    r.concurrency.is_some(),
                    &[LogsIngestion, DataCollector, Kafka],
                ),
                (
                    "request_timeout",
                    r.request_timeout.is_some(),
                    &[LogsIngestion, DataCollector, Kafka],
                ),
                (
                    "retry_budget",
                    r.retry_budget.is_some(),
                    &[LogsIngestion, DataCollector, Kafka],
                ),
                (
                    "auth",
                    r.auth.is_some(),
                    &[LogsIngestion, DataCollector, Kafka],
                ),
                ("brokers", r.brokers.is_some(), &[Kafka]),
                ("topic", r.topic.is_some(), &[Kafka]),
                ("key", r.key.is_some(), &[Kafka]),
                ("compression", r.compression.is_some(), &[Kafka]),
                ("rows_per_record", r.rows_per_record.is_some(), &[Kafka]),
                ("acks", r.acks.is_some(), &[Kafka]),
                ("sasl", r.sasl.is_some(), &[Kafka]),
                (
                    "connection_string_file",
                    r.connection_string_file.is_some(),
                    &[Kafka],
                ),
                (
                    "connection_string_env",
                    r.connection_string_env.is_some(),
                    &[Kafka],
                ),
                ("tls", r.tls.is_some(), &[Kafka]),
                ("ca_file", r.ca_file.is_some(), &[Kafka]),
            ]
        };
        if let Some((key, _, _)) = set
            .iter()
            .find(|(_, present, kinds)| *present && !kinds.contains(&r.kind))
        {
            return Err(format!(
                "output.{key}: not a setting of kind = \"{name}\"{}",
                if network {
                    ""
                } else {
                    " (it writes JSON lines locally)"
                }
            ));
        }
        let concurrency = r.concurrency.unwrap_or_else(default_concurrency);
        let request_timeout = r.request_timeout.unwrap_or_else(default_request_timeout);
        let retry_budget = r.retry_budget.unwrap_or_else(default_retry_budget);
        let kind = match r.kind {
            KindName::LogsIngestion => OutputKind::LogsIngestion(LogsIngestionConfig {
                endpoint: r.endpoint,
                dcr_immutable_id: r.dcr_immutable_id,
                stream: r.stream.unwrap_or_else(|| match r.table {
                    Table::CommonSecurityLog => default_stream(),
                    Table::Syslog => DEFAULT_SYSLOG_STREAM.to_owned(),
                    Table::Alerts => DEFAULT_ALERT_STREAM.to_owned(),
                }),
                gzip_level: r.gzip_level,
                concurrency,
                request_timeout,
                retry_budget,
                auth: r.auth,
            }),
            KindName::DataCollector => OutputKind::DataCollector(DataCollectorConfig {
                workspace_id: r.workspace_id,
                shared_key: r.shared_key,
                shared_key_file: r.shared_key_file,
                log_type: r.log_type.unwrap_or_else(|| match r.table {
                    Table::CommonSecurityLog => default_log_type(),
                    Table::Syslog => "Syslog".to_owned(),
                    Table::Alerts => DEFAULT_ALERT_LOG_TYPE.to_owned(),
                }),
                endpoint: r.endpoint,
                concurrency,
                request_timeout,
                retry_budget,
                auth: r.auth,
            }),
            KindName::Stdout => OutputKind::Stdout(StdoutConfig {}),
            KindName::File => OutputKind::File(FileConfig { path: r.path }),
            KindName::Kafka => {
                if let Some(a) = r.acks.as_deref()
                    && a != ACKS_ALL
                {
                    return Err(format!(
                        "output.acks = {a:?}: a Kafka output takes only \"all\" (a batch leaves the spool only when every in-sync replica has it)"
                    ));
                }
                let compression = r.compression.unwrap_or_else(|| {
                    KafkaCompression::default_for(r.brokers.as_deref().unwrap_or_default())
                });
                OutputKind::Kafka(KafkaOutputConfig {
                    client: KafkaClient {
                        brokers: r.brokers.unwrap_or_default(),
                        sasl: r.sasl,
                        connection_string_file: r.connection_string_file,
                        connection_string_env: r.connection_string_env,
                        tls: r.tls,
                        ca_file: r.ca_file,
                        auth: r.auth,
                        placeholder: None,
                    },
                    topic: r.topic.unwrap_or_default(),
                    key: r.key.unwrap_or_default(),
                    compression,
                    rows_per_record: r.rows_per_record.unwrap_or(DEFAULT_ROWS_PER_RECORD),
                    concurrency,
                    // Event Hubs: a request's timeout of 60 s is Microsoft's advice.
                    request_timeout: r
                        .request_timeout
                        .unwrap_or(DurationStr(Duration::from_secs(60))),
                    retry_budget,
                })
            }
        };
        Ok(OutputConfig {
            name: r.name,
            table: r.table,
            filter: r.filter,
            syslog_stream: r.syslog_stream,
            transform: r.transform,
            kind,
        })
    }
}

impl OutputKind {
    /// Whether this output goes over the network, through the spool.
    pub(crate) fn is_network(&self) -> bool {
        matches!(
            self,
            OutputKind::LogsIngestion(_) | OutputKind::DataCollector(_) | OutputKind::Kafka(_)
        )
    }

    /// The senders of a network output: how many requests at once, each bounded by a
    /// timeout and a retry budget. None for the local kinds.
    pub(crate) fn delivery(&self) -> Option<Delivery> {
        match self {
            OutputKind::LogsIngestion(c) => Some(Delivery {
                concurrency: c.concurrency,
                request_timeout: c.request_timeout.0,
                retry_budget: c.retry_budget.0,
            }),
            OutputKind::DataCollector(c) => Some(Delivery {
                concurrency: c.concurrency,
                request_timeout: c.request_timeout.0,
                retry_budget: c.retry_budget.0,
            }),
            OutputKind::Kafka(c) => Some(Delivery {
                concurrency: c.concurrency,
                request_timeout: c.request_timeout.0,
                retry_budget: c.retry_budget.0,
            }),
            OutputKind::Stdout(_) | OutputKind::File(_) => None,
        }
    }

    /// The `[output.auth]` table, where the kind has one.
    pub(crate) fn auth(&self) -> Option<&AuthConfig> {
        match self {
            OutputKind::LogsIngestion(c) => c.auth.as_ref(),
            OutputKind::DataCollector(c) => c.auth.as_ref(),
            OutputKind::Kafka(c) => c.client.auth.as_ref(),
            OutputKind::Stdout(_) | OutputKind::File(_) => None,
        }
    }
}

/// The sending settings of a network output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) concurrency: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) retry_budget: Duration,
}

impl Delivery {
    fn validate(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.concurrency > 64 {
            bail!("output.concurrency must be between 1 and 64");
        }
        check_duration(
            "output.request_timeout",
            DurationStr(self.request_timeout),
            Duration::from_millis(100),
            MAX_DURATION_KEY,
        )?;
        check_duration(
            "output.retry_budget",
            DurationStr(self.retry_budget),
            Duration::ZERO,
            MAX_DURATION_KEY,
        )
    }
}

/// The default DCR input stream of CommonSecurityLog rows.
pub(crate) const DEFAULT_STREAM: &str = "Custom-CommonSecurityLog";
/// The default DCR input stream of Syslog rows (a `table = "Syslog"` output).
pub(crate) const DEFAULT_SYSLOG_STREAM: &str = "Custom-Syslog";
/// The default DCR input stream of alert rows (a `table = "alerts"` output), for the custom
/// table `MCASForwardAlerts_CL` that `dcr-template --alerts` prints.
pub(crate) const DEFAULT_ALERT_STREAM: &str = "Custom-MCASForwardAlerts_CL";
/// The Data Collector Log-Type of alert rows (the table `MCASForwardAlerts_CL`).
pub(crate) const DEFAULT_ALERT_LOG_TYPE: &str = "MCASForwardAlerts";

pub(super) fn default_stream() -> String {
    DEFAULT_STREAM.to_owned()
}
pub(super) fn default_log_type() -> String {
    "CommonSecurityLog".to_owned()
}
pub(super) fn default_concurrency() -> usize {
    4
}
pub(super) fn default_retry_budget() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}
pub(super) fn default_request_timeout() -> DurationStr {
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

impl DataCollectorConfig {
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

pub(super) fn resolve_secret(
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
pub(super) fn check_url(key: &str, url: &str, allow_imds: bool) -> anyhow::Result<()> {
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

/// Whether an environment variable is set to something non-empty.
pub(super) fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

pub(super) fn kind_name(k: AuthKind) -> &'static str {
    match k {
        AuthKind::ClientSecret => "client-secret",
        AuthKind::ClientCertificate => "client-certificate",
        AuthKind::ManagedIdentity => "managed-identity",
        AuthKind::WorkloadIdentity => "workload-identity",
    }
}

impl OutputConfig {
    /// The checks of `[output]` and `[output.auth]`: each kind checks its own fields.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if let Some(n) = &self.name
            && (n.is_empty()
                || n.len() > 64
                || !n.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }))
        {
            bail!(
                "output name {n:?}: use 1 to 64 of a-z, 0-9, - and _ (it names a spool directory and a metrics label)"
            );
        }
        if self.table == Table::Alerts
            && (self.syslog_stream.is_some() || self.filter.is_some() || self.transform.is_some())
        {
            bail!(
                "{}: an output of table = \"alerts\" takes the rules' alert rows as they are: `where`, `transform` and `syslog_stream` do not apply",
                self.key()
            );
        }
        if self.table == Table::Syslog && self.syslog_stream.is_some() {
            bail!(
                "{}: syslog_stream is for CommonSecurityLog outputs; this one takes Syslog rows (table = \"Syslog\") on its own stream",
                self.key()
            );
        }
        match &self.kind {
            OutputKind::LogsIngestion(o) => o.validate(self.syslog_stream.as_deref())?,
            OutputKind::DataCollector(o) => o.validate()?,
            OutputKind::File(o) => {
                if o.path.is_none() {
                    bail!("output.kind = \"file\" needs `path`");
                }
            }
            OutputKind::Stdout(_) => {}
            OutputKind::Kafka(o) => {
                if self.table == Table::Alerts {
                    bail!(
                        "{}: a Kafka output carries CommonSecurityLog and Syslog rows; alert rows go to a logs-ingestion, data-collector or local output",
                        self.key()
                    );
                }
                o.validate(&self.key())?
            }
        }
        if let Some(d) = self.kind.delivery() {
            d.validate()?;
        }
        if let Some(a) = self.kind.auth() {
            if let Some(h) = &a.authority_host {
                check_url("output.auth.authority_host", h, false)?;
            }
            if let Some(h) = &a.imds_endpoint {
                check_url("output.auth.imds_endpoint", h, true)?;
            }
        }
        Ok(())
    }
}

impl LogsIngestionConfig {
    fn validate(&self, syslog_stream: Option<&str>) -> anyhow::Result<()> {
        let o = self;
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
            ("stream", Some(o.stream.as_str())),
            ("syslog_stream", syslog_stream),
        ] {
            if let Some(s) = s
                && !s.starts_with("Custom-")
            {
                bail!("output.{key} = {s:?}: input streams of a DCR must begin with \"Custom-\"");
            }
        }
        let Some(auth) = &o.auth else {
            bail!(
                "output.kind = \"logs-ingestion\" needs an [output.auth] table (kind = \"client-secret\", \"client-certificate\", \"managed-identity\" or \"workload-identity\")"
            );
        };
        auth.validate()?;
        if o.gzip_level.is_some_and(|l| l > 9) {
            bail!("output.gzip_level must be between 0 and 9");
        }
        Ok(())
    }
}

impl DataCollectorConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.workspace_id.is_none() {
            bail!("output.kind = \"data-collector\" needs `workspace_id`");
        }
        // The shared key itself is read where the client is built: only the commands
        // that talk to Azure need it.
        if let Some(ep) = &self.endpoint {
            check_url("output.endpoint", ep, false)?;
        }
        Ok(())
    }
}
