//! Emulator configuration: identities, data collection rules, workspaces, limits, storage.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::faults::Faults;
use crate::schema::{COMMON_SECURITY_LOG_COLUMNS, SYSLOG_COLUMNS};

/// Tenant (directory) id registered by [`EmulatorConfig::default`].
pub const DEFAULT_TENANT_ID: &str = "72f988bf-0000-4000-8000-00000000e301";
/// Application (client) id registered by [`EmulatorConfig::default`].
pub const DEFAULT_CLIENT_ID: &str = "0b6a2f3e-0000-4000-8000-00000000c11e";
/// Client secret of [`DEFAULT_CLIENT_ID`]. A made-up value, valid only against the emulator.
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-client-secret";
/// Immutable id of the built-in data collection rule.
pub const DEFAULT_DCR_ID: &str = "dcr-00000000000000000000000000e301";
/// Input stream of the built-in DCR routed to the `CommonSecurityLog` table.
pub const DEFAULT_CSL_STREAM: &str = "Custom-CommonSecurityLog";
/// Input stream of the built-in DCR routed to the `Syslog` table.
pub const DEFAULT_SYSLOG_STREAM: &str = "Custom-Syslog";
/// Workspace id of the built-in Data Collector workspace.
pub const DEFAULT_WORKSPACE_ID: &str = "00000000-1111-2222-3333-444444444444";
/// Base64 shared key of [`DEFAULT_WORKSPACE_ID`] (the bytes 0x00..0x3F, as in the spec's
/// signature vectors).
pub const DEFAULT_SHARED_KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// Client id of the user-assigned managed identity registered by default for IMDS.
pub const DEFAULT_MANAGED_IDENTITY_CLIENT_ID: &str = "5e1f0a2b-0000-4000-8000-0000000000a1";
/// Audience a token must carry for the Logs Ingestion API (public cloud).
pub const MONITOR_AUDIENCE: &str = "https://monitor.azure.com";
/// Audience of federated (workload identity) assertions.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Default access token lifetime (Entra's usual 3599 s).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Kusto column types usable in a stream declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ColumnType {
    /// `string`: a JSON string.
    String,
    /// `int`: a JSON integer within the signed 32-bit range.
    Int,
    /// `long`: a JSON integer within the signed 64-bit range.
    Long,
    /// `real`: any JSON number.
    Real,
    /// `boolean`: a JSON `true` / `false`.
    Boolean,
    /// `datetime`: an ISO 8601 string (RFC 3339, or without offset meaning UTC).
    DateTime,
    /// `dynamic`: any JSON value.
    Dynamic,
}

impl ColumnType {
    /// The Kusto name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Int => "int",
            ColumnType::Long => "long",
            ColumnType::Real => "real",
            ColumnType::Boolean => "boolean",
            ColumnType::DateTime => "datetime",
            ColumnType::Dynamic => "dynamic",
        }
    }
}

/// One declared column of an input stream.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// Table plan; only `Auxiliary` changes the emulator's behaviour (the TimeGenerated range rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum TablePlan {
    /// Analytics (the default plan).
    #[default]
    Analytics,
    /// Basic logs.
    Basic,
    /// Auxiliary logs: every request's records must lie within 30 minutes of TimeGenerated.
    Auxiliary,
}

/// An input stream of a DCR, with its columns and output table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stream {
    /// Input stream name, e.g. `Custom-CommonSecurityLog` (must start with `Custom-`).
    pub name: String,
    /// Destination table, e.g. `CommonSecurityLog` or `MyTable_CL`.
    pub table: String,
    /// Declared columns, in order.
    pub columns: Vec<Column>,
    /// Plan of the destination table.
    pub plan: TablePlan,
    /// The data flow's `transformKql`, applied to each record before it is stored (none:
    /// `source`, records pass one to one).
    pub transform: Option<Transform>,
}

/// A compiled `transformKql` (mcas-kql), with its text.
#[derive(Clone, Debug)]
pub struct Transform {
    text: String,
    query: std::sync::Arc<mcas_kql::Query>,
}

impl PartialEq for Transform {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Transform {}

impl Transform {
    /// Compiles `text` against the stream's columns, as Azure does when the DCR is created:
    /// a query outside the transformation subset, or that names an unknown column, is
    /// refused with the same message.
    pub fn compile(text: &str, columns: &[Column]) -> Result<Self, ConfigError> {
        let schema =
            mcas_kql::Schema::new(columns.iter().map(|c| (c.name.as_str(), kql_type(c.ty))));
        let query = mcas_kql::Query::compile(text, &schema)
            .map_err(|e| ConfigError(format!("transformKql: {e}")))?;
        Ok(Self {
            text: text.to_owned(),
            query: std::sync::Arc::new(query),
        })
    }

    /// The query's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The record as the transformation leaves it, or `None` when it drops the record.
    pub fn apply(
        &self,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.query.run(record).map(|row| row.to_json())
    }
}

fn kql_type(t: ColumnType) -> mcas_kql::Type {
    match t {
        ColumnType::String => mcas_kql::Type::String,
        ColumnType::Int => mcas_kql::Type::Int,
        ColumnType::Long => mcas_kql::Type::Long,
        ColumnType::Real => mcas_kql::Type::Real,
        ColumnType::Boolean => mcas_kql::Type::Bool,
        ColumnType::DateTime => mcas_kql::Type::DateTime,
        ColumnType::Dynamic => mcas_kql::Type::Dynamic,
    }
}

impl Stream {
    /// A stream routed to `table` with the given columns.
    pub fn new(name: impl Into<String>, table: impl Into<String>, columns: Vec<Column>) -> Self {
        Self {
            name: name.into(),
            table: table.into(),
            columns,
            plan: TablePlan::Analytics,
            transform: None,
        }
    }

    /// Applies `transformKql` to this stream's records (compiled against its columns).
    pub fn with_transform(mut self, kql: &str) -> Result<Self, ConfigError> {
        self.transform = match kql.trim() {
            "source" => None,
            _ => Some(Transform::compile(kql, &self.columns)?),
        };
        Ok(self)
    }

    /// Sets the destination table's plan.
    pub fn with_plan(mut self, plan: TablePlan) -> Self {
        self.plan = plan;
        self
    }

    /// `Custom-CommonSecurityLog` → `CommonSecurityLog`, all 157 columns of the spec.
    pub fn common_security_log() -> Self {
        Self::new(
            DEFAULT_CSL_STREAM,
            "CommonSecurityLog",
            builtin_columns(COMMON_SECURITY_LOG_COLUMNS),
        )
    }

    /// `Custom-Syslog` → `Syslog`.
    pub fn syslog() -> Self {
        Self::new(
            DEFAULT_SYSLOG_STREAM,
            "Syslog",
            builtin_columns(SYSLOG_COLUMNS),
        )
    }
}

fn builtin_columns(list: &[(&str, ColumnType)]) -> Vec<Column> {
    list.iter().map(|(n, t)| Column::new(*n, *t)).collect()
}

/// A data collection rule: an immutable id and its input streams.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dcr {
    /// Immutable id, e.g. `dcr-0123…`.
    pub immutable_id: String,
    /// Input streams.
    pub streams: Vec<Stream>,
    /// Client ids holding "Monitoring Metrics Publisher" on this DCR. `None` = every client and
    /// managed identity the emulator knows; others get 403 `OperationFailed`.
    pub allowed_clients: Option<Vec<String>>,
}

impl Dcr {
    /// A DCR open to every registered client.
    pub fn new(immutable_id: impl Into<String>, streams: Vec<Stream>) -> Self {
        Self {
            immutable_id: immutable_id.into(),
            streams,
            allowed_clients: None,
        }
    }

    /// Reads a data collection rule in Azure's JSON form: an ARM resource (with
    /// `properties`) or its `properties` object alone, as exported from the portal or
    /// returned by the REST API. Each `Custom-…` stream named in `dataFlows` becomes a stream
    /// whose columns come from `streamDeclarations` and whose table comes from `outputStream`
    /// (`Microsoft-CommonSecurityLog` → `CommonSecurityLog`, `Custom-X_CL` → `X_CL`; without
    /// `outputStream`, the input stream's name without `Custom-`). The immutable id is
    /// `immutable_id` if given, else `properties.immutableId`. A data flow's `transformKql` is
    /// compiled against the stream's columns (mcas-kql) and applied to every record before it
    /// is stored, as Azure does; a query Azure would refuse is refused here, with its message.
    pub fn from_azure_json(text: &str, immutable_id: Option<&str>) -> Result<Self, ConfigError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError(format!("DCR JSON: {e}")))?;
        let props = v.get("properties").unwrap_or(&v);
        let id = immutable_id
            .map(str::to_owned)
            .or_else(|| {
                props
                    .get("immutableId")
                    .and_then(|x| x.as_str())
                    .map(str::to_owned)
            })
            .ok_or_else(|| {
                ConfigError("DCR JSON has no properties.immutableId; give one".to_owned())
            })?;
        let decls = props
            .get("streamDeclarations")
            .and_then(|d| d.as_object())
            .ok_or_else(|| ConfigError("DCR JSON has no streamDeclarations".to_owned()))?;
        let flows = props
            .get("dataFlows")
            .and_then(|d| d.as_array())
            .ok_or_else(|| ConfigError("DCR JSON has no dataFlows".to_owned()))?;
        let mut streams: Vec<Stream> = Vec::new();
        for flow in flows {
            let output = flow.get("outputStream").and_then(|o| o.as_str());
            let kql = flow.get("transformKql").and_then(|k| k.as_str());
            let names = flow
                .get("streams")
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten();
            for name in names.filter_map(|n| n.as_str()) {
                if !name.starts_with("Custom-") {
                    continue; // agent streams such as Microsoft-Syslog are not for the API
                }
                if streams.iter().any(|s| s.name == name) {
                    tracing::warn!(dcr = %id, stream = name, "stream has several data flows; the emulator uses the first");
                    continue;
                }
                let decl = decls.get(name).ok_or_else(|| {
                    ConfigError(format!(
                        "stream {name} is used in dataFlows but not declared"
                    ))
                })?;
                let mut columns = Vec::new();
                for c in decl
                    .get("columns")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                {
                    let cname = c.get("name").and_then(|x| x.as_str());
                    let ctype = c
                        .get("type")
                        .and_then(|x| x.as_str())
                        .map(str::to_ascii_lowercase);
                    let (Some(cname), Some(ctype)) = (cname, ctype) else {
                        return Err(ConfigError(format!(
                            "stream {name}: a column lacks name or type"
                        )));
                    };
                    let ty: ColumnType =
                        serde_json::from_value(serde_json::Value::String(ctype.clone())).map_err(
                            |_| ConfigError(format!("stream {name}: unknown column type {ctype}")),
                        )?;
                    columns.push(Column::new(cname, ty));
                }
                let table = match output {
                    Some(o) => o
                        .strip_prefix("Microsoft-")
                        .or_else(|| o.strip_prefix("Custom-"))
                        .unwrap_or(o),
                    None => name.strip_prefix("Custom-").unwrap_or(name),
                };
                let mut stream = Stream::new(name, table, columns);
                if let Some(kql) = kql {
                    stream = stream
                        .with_transform(kql)
                        .map_err(|e| ConfigError(format!("stream {name}: {}", e.0)))?;
                }
                streams.push(stream);
            }
        }
        if streams.is_empty() {
            return Err(ConfigError("DCR JSON routes no Custom- stream".to_owned()));
        }
        Ok(Self::new(id, streams))
    }

    /// The built-in DCR: [`DEFAULT_DCR_ID`] with `Custom-CommonSecurityLog` and `Custom-Syslog`.
    pub fn builtin() -> Self {
        Self::new(
            DEFAULT_DCR_ID,
            vec![Stream::common_security_log(), Stream::syslog()],
        )
    }
}

/// A certificate registered on an application, for client assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The certificate in PEM form (`-----BEGIN CERTIFICATE-----`). Its RSA public key verifies
    /// the assertion; its SHA-1 (`x5t`) and SHA-256 (`x5t#S256`) thumbprints select it.
    pub pem: String,
}

/// A federated identity credential (workload identity) registered on an application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FederatedCredential {
    /// Accepted `iss` of the external token.
    pub issuer: String,
    /// Accepted `sub` of the external token.
    pub subject: String,
    /// Accepted `aud` (default [`TOKEN_EXCHANGE_AUDIENCE`]).
    pub audience: String,
    /// The issuer's RSA public key in PEM (`PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE`).
    pub public_key_pem: String,
}

impl FederatedCredential {
    /// A credential with the default `api://AzureADTokenExchange` audience.
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        public_key_pem: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            audience: TOKEN_EXCHANGE_AUDIENCE.to_owned(),
            public_key_pem: public_key_pem.into(),
        }
    }
}

/// An application registration (service principal) that can get tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Client {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret, if secrets are allowed.
    pub secret: Option<Secret>,
    /// Certificates for client assertions.
    pub certificates: Vec<Certificate>,
    /// Federated credentials (workload identity).
    pub federated: Vec<FederatedCredential>,
}

impl Client {
    /// A client with a secret.
    pub fn with_secret(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            secret: Some(Secret::new(secret)),
            certificates: Vec::new(),
            federated: Vec::new(),
        }
    }

    /// A client with no credential yet (add certificates or federated credentials).
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            secret: None,
            certificates: Vec::new(),
            federated: Vec::new(),
        }
    }
}

/// A Data Collector API workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Workspace {
    /// Workspace (customer) id.
    pub id: String,
    /// Base64 shared keys (primary and optionally secondary); either verifies.
    pub shared_keys: Vec<Secret>,
    /// A closed workspace answers 400 `InactiveCustomer`.
    pub inactive: bool,
}

impl Workspace {
    /// An active workspace with one shared key.
    pub fn new(id: impl Into<String>, shared_key_base64: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            shared_keys: vec![Secret::new(shared_key_base64)],
            inactive: false,
        }
    }
}

/// Managed identities served by the IMDS endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagedIdentityConfig {
    /// Whether a system-assigned identity exists (used when no `client_id` is given).
    pub system_assigned: bool,
    /// Client id that tokens of the system-assigned identity carry.
    pub system_assigned_client_id: String,
    /// Client ids of user-assigned identities (selected with `client_id=`).
    pub user_assigned: Vec<String>,
}

impl Default for ManagedIdentityConfig {
    fn default() -> Self {
        Self {
            system_assigned: true,
            system_assigned_client_id: "5e1f0a2b-0000-4000-8000-000000000000".to_owned(),
            user_assigned: vec![DEFAULT_MANAGED_IDENTITY_CLIENT_ID.to_owned()],
        }
    }
}

/// Size and time limits. Defaults are Azure's documented values; tests may lower them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Logs Ingestion API: max body, on the wire and after gzip decoding (1,048,576).
    pub ingestion_max_bytes: usize,
    /// Logs Ingestion API: string values longer than this many bytes are truncated (64 KiB).
    pub ingestion_field_max_bytes: usize,
    /// Auxiliary tables: max spread of TimeGenerated within one request (30 minutes).
    pub auxiliary_time_range: Duration,
    /// Data Collector API: max body (30 MiB; larger answers 404 as documented).
    pub collector_max_bytes: usize,
    /// Data Collector API: string values longer than this are truncated (32 KiB).
    pub collector_field_max_bytes: usize,
    /// Data Collector API: max distance of `x-ms-date` from the emulator clock (15 minutes).
    pub collector_max_clock_skew: Duration,
    /// Data Collector API: max columns per table (500); more go into `AdditionalFields`.
    pub collector_max_columns: usize,
    /// Allowed clock skew for client assertion `exp` / `nbf` (60 s).
    pub assertion_leeway: Duration,
    /// Entries kept in the request log (oldest dropped first).
    pub request_log_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ingestion_max_bytes: 1_048_576,
            ingestion_field_max_bytes: 64 * 1024,
            auxiliary_time_range: Duration::from_secs(30 * 60),
            collector_max_bytes: 30 * 1024 * 1024,
            collector_field_max_bytes: 32 * 1024,
            collector_max_clock_skew: Duration::from_secs(15 * 60),
            collector_max_columns: 500,
            assertion_leeway: Duration::from_secs(60),
            request_log_capacity: 100_000,
        }
    }
}

/// Where accepted rows go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// Keep rows in memory (default; for tests).
    #[default]
    Memory,
    /// Append rows to `<dir>/<table>.jsonl`, one JSON object per line.
    Dir(PathBuf),
    /// Acknowledge ingestion without decoding records: rows are counted (top-level objects of
    /// the array) but neither validated nor stored. For load tests.
    CountOnly,
}

/// The Azure cloud an emulator stands in for (spec B.10): it fixes the audience the Logs
/// Ingestion API requires and the authority hosts accepted in certificate assertions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cloud {
    /// Azure public cloud: `https://monitor.azure.com`, `login.microsoftonline.com`.
    #[default]
    Public,
    /// Azure US Government: `https://monitor.azure.us`, `login.microsoftonline.us`.
    UsGovernment,
    /// Azure China (21Vianet): `https://monitor.azure.cn`, `login.chinacloudapi.cn` and
    /// `login.partner.microsoftonline.cn`.
    China,
}

impl Cloud {
    /// Audience of Logs Ingestion API tokens in this cloud.
    pub fn monitor_audience(self) -> &'static str {
        match self {
            Cloud::Public => MONITOR_AUDIENCE,
            Cloud::UsGovernment => "https://monitor.azure.us",
            Cloud::China => "https://monitor.azure.cn",
        }
    }

    /// Entra authority hosts of this cloud.
    pub fn authority_hosts(self) -> &'static [&'static str] {
        match self {
            Cloud::Public => &["https://login.microsoftonline.com"],
            Cloud::UsGovernment => &["https://login.microsoftonline.us"],
            Cloud::China => &[
                "https://login.chinacloudapi.cn",
                "https://login.partner.microsoftonline.cn",
            ],
        }
    }
}

/// Full emulator configuration. Start from [`EmulatorConfig::default`] and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// Address to listen on (default `127.0.0.1:0`, an ephemeral loopback port).
    pub listen: std::net::SocketAddr,
    /// The tenant id accepted in token URLs.
    pub tenant_id: String,
    /// Registered applications.
    pub clients: Vec<Client>,
    /// Managed identities (IMDS).
    pub managed_identities: ManagedIdentityConfig,
    /// Resources a token may be requested for (`{resource}/.default` scopes); `resource` for
    /// IMDS. Compared without trailing slashes.
    pub resources: Vec<String>,
    /// Audience the Logs Ingestion API requires (default `https://monitor.azure.com`).
    pub ingestion_audience: String,
    /// Authority hosts whose token URL is accepted as a certificate assertion `aud`, besides the
    /// emulator's own URL (default `https://login.microsoftonline.com`).
    pub authority_hosts: Vec<String>,
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
    /// Data collection rules.
    pub dcrs: Vec<Dcr>,
    /// Data Collector API workspaces.
    pub workspaces: Vec<Workspace>,
    /// Limits.
    pub limits: Limits,
    /// Storage mode.
    pub storage: Storage,
    /// Faults active from start-up.
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    /// The default tenant, client and secret, the built-in DCR, the default workspace, in-memory
    /// storage, Azure's limits, a 3599 s token lifetime and no faults.
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            clients: vec![Client::with_secret(
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
            )],
            managed_identities: ManagedIdentityConfig::default(),
            resources: vec![
                MONITOR_AUDIENCE.to_owned(),
                "https://monitor.azure.us".to_owned(),
                "https://monitor.azure.cn".to_owned(),
                "https://management.azure.com".to_owned(),
            ],
            ingestion_audience: MONITOR_AUDIENCE.to_owned(),
            authority_hosts: vec!["https://login.microsoftonline.com".to_owned()],
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            dcrs: vec![Dcr::builtin()],
            workspaces: vec![Workspace::new(DEFAULT_WORKSPACE_ID, DEFAULT_SHARED_KEY)],
            limits: Limits::default(),
            storage: Storage::Memory,
            faults: Faults::default(),
        }
    }
}

impl EmulatorConfig {
    /// The default configuration for another cloud: the ingestion audience and the authority
    /// hosts accepted in assertions are that cloud's (tokens for any of the three monitor
    /// resources can still be requested, so a wrong-cloud scope shows up as 401 at ingestion).
    pub fn for_cloud(cloud: Cloud) -> Self {
        Self {
            ingestion_audience: cloud.monitor_audience().to_owned(),
            authority_hosts: cloud
                .authority_hosts()
                .iter()
                .map(|h| (*h).to_owned())
                .collect(),
            ..Self::default()
        }
    }

    /// The client registered under `client_id`, creating it (without credentials) if needed.
    pub fn client_mut(&mut self, client_id: &str) -> &mut Client {
        if let Some(i) = self.clients.iter().position(|c| c.client_id == client_id) {
            &mut self.clients[i]
        } else {
            self.clients.push(Client::new(client_id));
            let last = self.clients.len() - 1;
            &mut self.clients[last]
        }
    }

    /// Registers a certificate (PEM) for client assertions of `client_id`.
    pub fn add_certificate(&mut self, client_id: &str, pem: impl Into<String>) -> &mut Self {
        self.client_mut(client_id)
            .certificates
            .push(Certificate { pem: pem.into() });
        self
    }

    /// Registers a federated credential (workload identity) for `client_id`.
    pub fn add_federated(&mut self, client_id: &str, cred: FederatedCredential) -> &mut Self {
        self.client_mut(client_id).federated.push(cred);
        self
    }

    /// Applies a configuration file (TOML, or JSON when the name ends in `.json`) on top of
    /// this configuration. See the crate README for the format.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let file: FileConfig = if is_json {
            serde_json::from_str(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
        } else {
            toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
        };
        self.apply(file, base)
    }

    /// Applies a configuration given as TOML text; relative paths resolve against `base`.
    pub fn apply_toml(&mut self, text: &str, base: &Path) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        self.apply(file, base)
    }

    fn apply(&mut self, file: FileConfig, base: &Path) -> Result<(), ConfigError> {
        let read = |p: &str| {
            let path = base.join(p);
            std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))
        };
        if let Some(t) = file.tenant_id {
            self.tenant_id = t;
        }
        if let Some(s) = file.token_lifetime_secs {
            self.token_lifetime = Duration::from_secs(s);
        }
        if let Some(a) = file.ingestion_audience {
            self.ingestion_audience = a;
        }
        if let Some(r) = file.resources {
            self.resources = r;
        }
        for c in file.clients {
            let client = self.client_mut(&c.client_id);
            if let Some(s) = c.client_secret {
                client.secret = Some(s);
            }
            for cert in c.certificates {
                client.certificates.push(Certificate { pem: read(&cert)? });
            }
            for f in c.federated {
                client.federated.push(FederatedCredential {
                    issuer: f.issuer,
                    subject: f.subject,
                    audience: f
                        .audience
                        .unwrap_or_else(|| TOKEN_EXCHANGE_AUDIENCE.to_owned()),
                    public_key_pem: read(&f.public_key)?,
                });
            }
        }
        if let Some(mi) = file.managed_identities {
            self.managed_identities.user_assigned = mi;
        }
        if !file.dcrs.is_empty() || !file.azure_dcrs.is_empty() {
            if !file.keep_builtin_dcr.unwrap_or(true) {
                self.dcrs.clear();
            }
            for a in file.azure_dcrs {
                let dcr = Dcr::from_azure_json(&read(&a.path)?, a.immutable_id.as_deref())?;
                self.dcrs.retain(|x| x.immutable_id != dcr.immutable_id);
                self.dcrs.push(dcr);
            }
            for d in file.dcrs {
                let mut streams = Vec::new();
                for s in d.streams {
                    streams.push(s.into_stream()?);
                }
                for (name, decl) in d.stream_declarations {
                    let table = decl.table.ok_or_else(|| {
                        ConfigError(format!("stream declaration {name} needs a `table`"))
                    })?;
                    streams.push(Stream {
                        name,
                        table,
                        columns: decl.columns,
                        plan: decl.plan,
                        transform: None,
                    });
                }
                for s in &streams {
                    if !s.name.starts_with("Custom-") {
                        return Err(ConfigError(format!(
                            "stream {} must start with `Custom-`",
                            s.name
                        )));
                    }
                }
                self.dcrs.retain(|x| x.immutable_id != d.immutable_id);
                self.dcrs.push(Dcr {
                    immutable_id: d.immutable_id,
                    streams,
                    allowed_clients: d.allowed_clients,
                });
            }
        }
        for w in file.workspaces {
            self.workspaces.retain(|x| x.id != w.id);
            self.workspaces.push(Workspace {
                id: w.id,
                shared_keys: w.shared_keys,
                inactive: w.inactive,
            });
        }
        Ok(())
    }
}

/// An invalid configuration file.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub(crate) String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tenant_id: Option<String>,
    token_lifetime_secs: Option<u64>,
    ingestion_audience: Option<String>,
    resources: Option<Vec<String>>,
    #[serde(default)]
    clients: Vec<FileClient>,
    managed_identities: Option<Vec<String>>,
    keep_builtin_dcr: Option<bool>,
    #[serde(default)]
    azure_dcrs: Vec<FileAzureDcr>,
    #[serde(default)]
    dcrs: Vec<FileDcr>,
    #[serde(default)]
    workspaces: Vec<FileWorkspace>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAzureDcr {
    path: String,
    immutable_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClient {
    client_id: String,
    client_secret: Option<Secret>,
    #[serde(default)]
    certificates: Vec<String>,
    #[serde(default)]
    federated: Vec<FileFederated>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFederated {
    issuer: String,
    subject: String,
    audience: Option<String>,
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDcr {
    immutable_id: String,
    #[serde(default)]
    streams: Vec<FileStream>,
    /// The Azure DCR JSON shape: `{"Custom-X": {"columns": [...]}}` plus our `table`.
    #[serde(default, rename = "streamDeclarations")]
    stream_declarations: BTreeMap<String, FileDeclaration>,
    allowed_clients: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDeclaration {
    table: Option<String>,
    #[serde(default)]
    columns: Vec<Column>,
    #[serde(default)]
    plan: TablePlan,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStream {
    name: String,
    table: String,
    /// `CommonSecurityLog` or `Syslog`: take that built-in column list.
    builtin: Option<String>,
    #[serde(default)]
    columns: Vec<Column>,
    #[serde(default)]
    plan: TablePlan,
    /// The data flow's `transformKql`.
    #[serde(default)]
    transform_kql: Option<String>,
}

impl FileStream {
    fn into_stream(self) -> Result<Stream, ConfigError> {
        let mut columns = match self.builtin.as_deref() {
            None => Vec::new(),
            Some("CommonSecurityLog") => builtin_columns(COMMON_SECURITY_LOG_COLUMNS),
            Some("Syslog") => builtin_columns(SYSLOG_COLUMNS),
            Some(other) => {
                return Err(ConfigError(format!(
                    "unknown builtin column list `{other}` (CommonSecurityLog, Syslog)"
                )));
            }
        };
        columns.extend(self.columns);
        let name = self.name;
        let stream = Stream {
            name: name.clone(),
            table: self.table,
            columns,
            plan: self.plan,
            transform: None,
        };
        match &self.transform_kql {
            None => Ok(stream),
            Some(kql) => stream
                .with_transform(kql)
                .map_err(|e| ConfigError(format!("stream {name}: {}", e.0))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorkspace {
    id: String,
    shared_keys: Vec<Secret>,
    #[serde(default)]
    inactive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_reach_debug() {
        let c = EmulatorConfig::default();
        let text = format!("{c:?}");
        assert!(!text.contains(DEFAULT_CLIENT_SECRET));
        assert!(!text.contains(DEFAULT_SHARED_KEY));
        assert!(text.contains(DEFAULT_CLIENT_ID));
    }

    #[test]
    fn toml_file_adds_dcr_and_keeps_builtin() {
        let mut c = EmulatorConfig::default();
        c.apply_toml(
            r#"
            token_lifetime_secs = 5
            [[dcrs]]
            immutable_id = "dcr-abc"
            [[dcrs.streams]]
            name = "Custom-Mine"
            table = "Mine_CL"
            plan = "Auxiliary"
            columns = [{ name = "TimeGenerated", type = "datetime" }, { name = "N", type = "long" }]
            [dcrs.streamDeclarations.Custom-Other]
            table = "CommonSecurityLog"
            columns = [{ name = "DeviceVendor", type = "string" }]
            "#,
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.token_lifetime, Duration::from_secs(5));
        assert_eq!(c.dcrs.len(), 2);
        let d = &c.dcrs[1];
        assert_eq!(d.streams.len(), 2);
        assert_eq!(d.streams[0].plan, TablePlan::Auxiliary);
        assert_eq!(d.streams[0].columns[1], Column::new("N", ColumnType::Long));
        assert_eq!(d.streams[1].name, "Custom-Other");
    }

    #[test]
    fn json_file_with_certificate_and_federated_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cert.pem"),
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("issuer.pem"),
            "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let path = dir.path().join("emulator.json");
        std::fs::write(
            &path,
            r#"{
              "tenant_id": "t-1",
              "clients": [{
                "client_id": "c-1",
                "client_secret": "s",
                "certificates": ["cert.pem"],
                "federated": [{"issuer": "https://i", "subject": "sub", "public_key": "issuer.pem"}]
              }],
              "keep_builtin_dcr": false,
              "dcrs": [{"immutable_id": "dcr-x", "streams": [{"name": "Custom-S", "table": "Syslog", "builtin": "Syslog"}]}],
              "workspaces": [{"id": "w-1", "shared_keys": ["AAAA"], "inactive": true}]
            }"#,
        )
        .unwrap();
        let mut c = EmulatorConfig::default();
        c.apply_file(&path).unwrap();
        assert_eq!(c.tenant_id, "t-1");
        let client = c.clients.iter().find(|x| x.client_id == "c-1").unwrap();
        assert_eq!(client.secret.as_ref().map(Secret::expose), Some("s"));
        assert!(client.certificates[0].pem.contains("BEGIN CERTIFICATE"));
        assert_eq!(client.federated[0].audience, TOKEN_EXCHANGE_AUDIENCE);
        assert!(client.federated[0].public_key_pem.contains("PUBLIC KEY"));
        assert_eq!(c.dcrs.len(), 1);
        assert_eq!(c.dcrs[0].streams[0].columns.len(), SYSLOG_COLUMNS.len());
        assert!(c.workspaces.iter().any(|w| w.id == "w-1" && w.inactive));
        // A missing referenced file and an unknown key are errors.
        std::fs::write(
            &path,
            r#"{"clients":[{"client_id":"c","certificates":["nope.pem"]}]}"#,
        )
        .unwrap();
        assert!(EmulatorConfig::default().apply_file(&path).is_err());
        std::fs::write(&path, r#"{"bogus":1}"#).unwrap();
        assert!(EmulatorConfig::default().apply_file(&path).is_err());
    }

    #[test]
    fn azure_dcr_json_is_understood() {
        let arm = r#"{
          "location": "westeurope",
          "kind": "Direct",
          "properties": {
            "immutableId": "dcr-0123",
            "streamDeclarations": {
              "Custom-CefForwarder": { "columns": [
                { "name": "TimeGenerated", "type": "datetime" },
                { "name": "DeviceVendor", "type": "string" },
                { "name": "EventCount", "type": "int" } ] },
              "Custom-Mine_CL": { "columns": [ { "name": "Raw", "type": "dynamic" } ] }
            },
            "destinations": { "logAnalytics": [ { "name": "la", "workspaceResourceId": "/x" } ] },
            "dataFlows": [
              { "streams": ["Custom-CefForwarder"], "destinations": ["la"],
                "transformKql": "source", "outputStream": "Microsoft-CommonSecurityLog" },
              { "streams": ["Custom-Mine_CL", "Microsoft-Syslog"], "destinations": ["la"] }
            ]
          }
        }"#;
        let d = Dcr::from_azure_json(arm, None).unwrap();
        assert_eq!(d.immutable_id, "dcr-0123");
        assert_eq!(d.streams[0].name, "Custom-CefForwarder");
        assert_eq!(d.streams[0].table, "CommonSecurityLog");
        assert_eq!(
            d.streams[0].columns[2],
            Column::new("EventCount", ColumnType::Int)
        );
        assert_eq!(d.streams[1].table, "Mine_CL");
        assert_eq!(d.streams.len(), 2);
        let props_only = serde_json::to_string(
            &serde_json::from_str::<serde_json::Value>(arm).unwrap()["properties"],
        )
        .unwrap();
        assert_eq!(
            Dcr::from_azure_json(&props_only, Some("dcr-x"))
                .unwrap()
                .immutable_id,
            "dcr-x"
        );
        assert!(
            Dcr::from_azure_json(
                r#"{"properties":{"streamDeclarations":{},"dataFlows":[]}}"#,
                None
            )
            .is_err()
        );
        assert!(Dcr::from_azure_json(r#"{"immutableId":"d","streamDeclarations":{},"dataFlows":[{"streams":["Custom-Undeclared"]}]}"#, None).is_err());
        let bad_type = r#"{"immutableId":"d","streamDeclarations":{"Custom-A":{"columns":[{"name":"x","type":"guid"}]}},"dataFlows":[{"streams":["Custom-A"]}]}"#;
        assert!(Dcr::from_azure_json(bad_type, None).is_err());
    }

    #[test]
    fn stream_names_must_start_with_custom() {
        let mut c = EmulatorConfig::default();
        let err = c
            .apply_toml(
                "[[dcrs]]\nimmutable_id = \"d\"\n[[dcrs.streams]]\nname = \"Microsoft-X\"\ntable = \"X\"\n",
                Path::new("."),
            )
            .unwrap_err();
        assert!(err.to_string().contains("Custom-"));
    }
}
