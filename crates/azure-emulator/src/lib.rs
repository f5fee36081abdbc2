//! A local stand-in for Azure's token, IMDS and log ingestion endpoints, written from
//! Microsoft's documentation, for tests and for trying a DCR or a forwarder configuration
//! before touching a workspace.
//!
//! One loopback HTTP server answers:
//!
//! * `POST /{tenant}/oauth2/v2.0/token`: Entra ID client credentials with a client secret,
//!   a certificate assertion (RS256/PS256 JWT with `x5t` or `x5t#S256`), or a workload
//!   identity (federated) assertion;
//! * `GET /metadata/identity/oauth2/token`: the IMDS managed identity endpoint;
//! * `POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`: the Logs
//!   Ingestion API, checking the bearer token, the DCR and stream, gzip, the 1 MB limit and
//!   each record against the stream's declared columns;
//! * `POST /api/logs?api-version=2016-04-01`: the legacy HTTP Data Collector API with its
//!   `SharedKey` signature;
//! * `/_emulator/…`: rows per table, counts, metrics, the request log and fault settings.
//!
//! [`EmulatorConfig::default`] registers [`DEFAULT_TENANT_ID`], [`DEFAULT_CLIENT_ID`] with
//! [`DEFAULT_CLIENT_SECRET`], the DCR [`DEFAULT_DCR_ID`] with the `Custom-CommonSecurityLog`
//! (→ `CommonSecurityLog`, all 157 columns) and `Custom-Syslog` (→ `Syslog`) streams, and the
//! Data Collector workspace [`DEFAULT_WORKSPACE_ID`] with key [`DEFAULT_SHARED_KEY`].
//!
//! # Example
//!
//! ```
//! use mcas_azure_emulator::{Emulator, EmulatorConfig, Faults, FaultKind, DEFAULT_DCR_ID};
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
//! // Point a client at emulator.base_url() (authority host and ingestion endpoint), or:
//! let url = emulator.ingestion_url(DEFAULT_DCR_ID, "Custom-CommonSecurityLog");
//! assert!(url.ends_with("/streams/Custom-CommonSecurityLog?api-version=2023-01-01"));
//! // The next ingestion or token request gets 429 with Retry-After: 1.
//! emulator.set_faults(Faults::scripted([FaultKind::TooManyRequests]));
//! assert_eq!(emulator.count("CommonSecurityLog"), 0);
//! emulator.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod collector;
mod config;
mod faults;
mod http;
mod ingest;
pub mod schema;
mod server;
pub mod signature;
mod store;
mod token;

pub use config::{
    Certificate, Client, Cloud, Column, ColumnType, ConfigError, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET, DEFAULT_CSL_STREAM, DEFAULT_DCR_ID, DEFAULT_MANAGED_IDENTITY_CLIENT_ID,
    DEFAULT_SHARED_KEY, DEFAULT_SYSLOG_STREAM, DEFAULT_TENANT_ID, DEFAULT_TOKEN_LIFETIME,
    DEFAULT_WORKSPACE_ID, Dcr, EmulatorConfig, FederatedCredential, Limits, MONITOR_AUDIENCE,
    ManagedIdentityConfig, Secret, Storage, Stream, TOKEN_EXCHANGE_AUDIENCE, TablePlan, Transform,
    Workspace,
};
pub use faults::{
    DownWindow, FaultKind, FaultScope, Faults, HugeBodyFault, LifetimeValue, RedirectFault,
};
pub use ingest::INGESTION_API_VERSIONS;
pub use server::{Emulator, EmulatorHandle, StartError};
pub use store::{Endpoint, Metrics, RequestRecord};
