//! `[output]` and `[output.auth]`: the output kinds, credentials, secrets and their checks.

use super::*;

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
    /// A DCR transformation (KQL, the subset Azure accepts in `transformKql`) run on every
    /// CommonSecurityLog row before it is batched: rows it drops are counted
    /// (`reason="transform"`), rows it keeps are sent as it leaves them.
    #[serde(default)]
    pub(crate) transform: Option<String>,
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

pub(super) fn default_stream() -> String {
    "Custom-CommonSecurityLog".to_owned()
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
    /// The checks of `[output]` and `[output.auth]`.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        let o = self;
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
        Ok(())
    }
}
