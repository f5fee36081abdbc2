//! The Azure outputs: Logs Ingestion (the DCR-based API, the only way into the real
//! `CommonSecurityLog` table) and the legacy Data Collector API. Both send through the
//! spool; their attempts are counted by [`Health`] as they happen.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::future::BoxFuture;

use super::{CheckResult, Destination, Sent};
use crate::batch::Route;
use crate::config::{AuthConfig, AuthKind, CloudConfig, DataCollectorConfig, LogsIngestionConfig};
use crate::metrics::{Metrics, OutputMetrics};

/// A client per route this output has a stream for.
#[derive(Debug)]
struct Streams<C> {
    csl: Option<(C, String)>,
    syslog: Option<(C, String)>,
}

impl<C> Streams<C> {
    fn new(
        csl_name: Option<&str>,
        syslog_name: Option<&str>,
        build: impl Fn(&str) -> anyhow::Result<C>,
    ) -> anyhow::Result<Streams<C>> {
        let one = |name: Option<&str>| -> anyhow::Result<Option<(C, String)>> {
            Ok(match name {
                Some(n) => Some((build(n)?, n.to_owned())),
                None => None,
            })
        };
        Ok(Streams {
            csl: one(csl_name)?,
            syslog: one(syslog_name)?,
        })
    }

    fn get(&self, r: Route) -> Option<&(C, String)> {
        match r {
            Route::Csl => self.csl.as_ref(),
            Route::Syslog => self.syslog.as_ref(),
        }
    }

    fn name(&self, r: Route) -> Option<&str> {
        self.get(r).map(|(_, n)| n.as_str())
    }

    fn client(&self, r: Route) -> Option<&C> {
        self.get(r).map(|(c, _)| c)
    }

    /// The streams, for messages.
    fn names(&self) -> String {
        let names: Vec<&str> = Route::ALL.iter().filter_map(|&r| self.name(r)).collect();
        names.join(" and ")
    }
}

/// Every row of a batch for a route this output has no stream for, refused with the reason.
fn no_stream(ndjson: &[u8]) -> Sent {
    let rejected = ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            (
                l.to_vec(),
                "this output has no stream for rows of this table".to_owned(),
            )
        })
        .collect();
    Sent {
        rejected,
        ..Sent::default()
    }
}

/// What the forwarder needs of the two Azure clients.
pub(crate) trait AzureClient: Send + Sync + std::fmt::Debug + 'static {
    fn send<'a>(&'a self, ndjson: &'a [u8]) -> BoxFuture<'a, mcas_loganalytics::SendReport>;

    /// Pack rows into request bodies ahead of the send; None where the API documents no
    /// compression (the Data Collector API), whose rows are packed at send time.
    fn prepare(&self, ndjson: &[u8]) -> Option<mcas_loganalytics::Prepared> {
        let _ = ndjson;
        None
    }

    /// Send a body [`AzureClient::prepare`] built; None for a client that prepares none.
    fn send_prepared<'a>(
        &'a self,
        body: &'a mcas_loganalytics::PreparedBody,
    ) -> Option<BoxFuture<'a, mcas_loganalytics::PreparedReport>> {
        let _ = body;
        None
    }
}

impl AzureClient for mcas_loganalytics::LogsIngestionClient {
    fn send<'a>(&'a self, ndjson: &'a [u8]) -> BoxFuture<'a, mcas_loganalytics::SendReport> {
        Box::pin(self.send_ndjson(ndjson))
    }

    fn prepare(&self, ndjson: &[u8]) -> Option<mcas_loganalytics::Prepared> {
        Some(self.prepare_ndjson(ndjson))
    }

    fn send_prepared<'a>(
        &'a self,
        body: &'a mcas_loganalytics::PreparedBody,
    ) -> Option<BoxFuture<'a, mcas_loganalytics::PreparedReport>> {
        Some(Box::pin(
            mcas_loganalytics::LogsIngestionClient::send_prepared(self, body),
        ))
    }
}

impl AzureClient for mcas_loganalytics::DataCollectorClient {
    fn send<'a>(&'a self, ndjson: &'a [u8]) -> BoxFuture<'a, mcas_loganalytics::SendReport> {
        Box::pin(self.send_ndjson(ndjson))
    }
}

/// An Azure output: a client per stream, the health its attempts report to and, for Logs
/// Ingestion, what `validate` checks.
#[derive(Debug)]
pub(crate) struct Azure<C> {
    /// What it sends to, for `describe` (`logs-ingestion stream`).
    what: &'static str,
    streams: Streams<C>,
    check: Option<Check>,
    health: Arc<Health>,
}

/// `kind = "logs-ingestion"`.
pub(crate) type LogsIngestion = Azure<mcas_loganalytics::LogsIngestionClient>;
/// `kind = "data-collector"`.
pub(crate) type DataCollector = Azure<mcas_loganalytics::DataCollectorClient>;

impl<C: AzureClient> Destination for Azure<C> {
    fn describe(&self) -> String {
        format!("{} {}", self.what, self.streams.names())
    }

    fn spooled(&self) -> bool {
        true
    }

    fn stream_name(&self, route: Route) -> Option<&str> {
        self.streams.name(route)
    }

    fn send<'a>(
        &'a self,
        route: Route,
        ndjson: &'a [u8],
        _rows: usize,
    ) -> BoxFuture<'a, anyhow::Result<Sent>> {
        Box::pin(async move {
            Ok(match self.streams.client(route) {
                Some(c) => report_to_sent(c.send(ndjson).await),
                None => no_stream(ndjson),
            })
        })
    }

    fn prepare(&self, route: Route, ndjson: &[u8]) -> Option<Vec<super::Part>> {
        let prepared = self.streams.client(route)?.prepare(ndjson)?;
        Some(super::Part::of_prepared(prepared))
    }

    fn send_prepared<'a>(
        &'a self,
        route: Route,
        body: mcas_loganalytics::PreparedBody,
    ) -> BoxFuture<'a, anyhow::Result<Sent>> {
        Box::pin(async move {
            let client = self.streams.client(route);
            let Some(sending) = client.and_then(|c| c.send_prepared(&body)) else {
                // No stream for the route now, or a client that sends rows (the output's
                // kind changed since the file was written): open the body.
                return Ok(
                    match body.unpack(mcas_loganalytics::batch::LOGS_INGESTION_MAX_BODY) {
                        Ok(ndjson) => match client {
                            Some(c) => report_to_sent(c.send(&ndjson).await),
                            None => no_stream(&ndjson),
                        },
                        Err(why) => Sent {
                            corrupt: Some(why),
                            ..Sent::default()
                        },
                    },
                );
            };
            Ok(prepared_to_sent(&body, sending.await))
        })
    }

    fn check(&self) -> BoxFuture<'_, anyhow::Result<CheckResult>> {
        match &self.check {
            Some(c) => Box::pin(c.run()),
            None => Box::pin(async { Ok(CheckResult::Skipped) }),
        }
    }

    fn delivered(&self, spool_empty: bool) {
        self.health.delivered(spool_empty);
    }
}

impl LogsIngestion {
    /// Build the clients (and the credential) of a Logs Ingestion output.
    pub(crate) fn new(
        o: &LogsIngestionConfig,
        routes: super::RouteNames<'_>,
        metrics: Arc<Metrics>,
        out: Arc<OutputMetrics>,
    ) -> anyhow::Result<LogsIngestion> {
        let Some(auth) = &o.auth else {
            bail!("[output.auth] is required")
        };
        let health = Arc::new(Health::new(metrics.clone(), out));
        let observer: Arc<dyn mcas_loganalytics::SendObserver> = health.clone();
        let retry = mcas_loganalytics::RetryPolicy::bounded(o.retry_budget.0);
        let cred: Arc<dyn mcas_loganalytics::TokenCredential> = Arc::new(CountingCredential {
            inner: credential(auth)?,
            last: std::sync::Mutex::new(None),
            metrics,
        });
        let endpoint = o.endpoint.clone().unwrap_or_default();
        let dcr = o.dcr_immutable_id.clone().unwrap_or_default();
        let scope = auth
            .scope
            .clone()
            .unwrap_or_else(|| cloud(auth.cloud).ingestion_scope().to_owned());
        let streams = Streams::new(routes.csl, routes.syslog, |stream| {
            let mut b = mcas_loganalytics::LogsIngestionClient::builder(&endpoint, &dcr, stream)
                .credential(cred.clone())
                .scope(scope.clone())
                .max_in_flight(o.concurrency)
                .request_timeout(o.request_timeout.0)
                .observer(observer.clone())
                .retry(retry.clone());
            if let Some(level) = o.gzip_level {
                b = b.gzip_level(level);
            }
            b.build().with_context(|| format!("output stream {stream}"))
        })?;
        Ok(Azure {
            what: "logs-ingestion stream",
            streams,
            check: Some(Check {
                endpoint,
                dcr,
                stream: o.stream.clone(),
                scope,
                cred,
            }),
            health,
        })
    }
}

impl DataCollector {
    /// Build the clients of a Data Collector output (the shared key is read here).
    pub(crate) fn new(
        o: &DataCollectorConfig,
        routes: super::RouteNames<'_>,
        metrics: Arc<Metrics>,
        out: Arc<OutputMetrics>,
    ) -> anyhow::Result<DataCollector> {
        let health = Arc::new(Health::new(metrics, out));
        let observer: Arc<dyn mcas_loganalytics::SendObserver> = health.clone();
        let retry = mcas_loganalytics::RetryPolicy::bounded(o.retry_budget.0);
        let key = o.resolve_shared_key()?;
        let ws = o.workspace_id.clone().unwrap_or_default();
        let streams = Streams::new(routes.csl, routes.syslog, |log_type| {
            let key = mcas_loganalytics::SharedKey::from_base64(key.expose())
                .map_err(|e| anyhow::anyhow!("the shared key is not valid base64: {e}"))?;
            let mut b = mcas_loganalytics::DataCollectorClient::builder(&ws, key, log_type)
                .max_in_flight(o.concurrency)
                .request_timeout(o.request_timeout.0)
                .time_generated_field(COLLECTED_TIME)
                .observer(observer.clone())
                .retry(retry.clone());
            if let Some(ep) = &o.endpoint {
                b = b.endpoint(ep.clone());
            }
            if let Some(auth) = &o.auth {
                b = b.cloud(cloud(auth.cloud));
            }
            b.build().context("data-collector output")
        })?;
        Ok(Azure {
            what: "data-collector Log-Type",
            streams,
            check: None,
            health,
        })
    }
}

/// The field that carries `TimeGenerated` for the Data Collector API, where
/// `TimeGenerated` is a reserved property: rows carry the same value under this name, which
/// the `time-generated-field` header names. Same length as `TimeGenerated`, so the key is
/// renamed in place in the serialised row.
pub(crate) const COLLECTED_TIME: &str = "CollectedTime";
const TIME_GENERATED_KEY: &[u8] = b"{\"TimeGenerated\":";

/// The Data Collector output's row rewrite: a row that opens with `TimeGenerated` (every
/// row the mappers and the transformation write does) gets [`COLLECTED_TIME`] instead.
pub(crate) fn rename_time_generated(row: &mut [u8]) {
    if row.starts_with(TIME_GENERATED_KEY) {
        row[2..2 + COLLECTED_TIME.len()].copy_from_slice(COLLECTED_TIME.as_bytes());
    }
}

fn cloud(c: CloudConfig) -> mcas_loganalytics::Cloud {
    match c {
        CloudConfig::Public => mcas_loganalytics::Cloud::Public,
        CloudConfig::Usgov => mcas_loganalytics::Cloud::UsGov,
        CloudConfig::China => mcas_loganalytics::Cloud::China,
    }
}

fn authority(a: &AuthConfig) -> anyhow::Result<mcas_loganalytics::AuthorityHost> {
    Ok(match &a.authority_host {
        Some(h) => {
            mcas_loganalytics::AuthorityHost::new(h).context("output.auth.authority_host")?
        }
        None => mcas_loganalytics::AuthorityHost::from(cloud(a.cloud)),
    })
}

/// Build the credential of `[output.auth]`.
pub(crate) fn credential(
    a: &AuthConfig,
) -> anyhow::Result<Arc<dyn mcas_loganalytics::TokenCredential>> {
    let tenant = a.tenant_id.clone().unwrap_or_default();
    let client = a.client_id.clone().unwrap_or_default();
    Ok(match a.kind {
        AuthKind::ClientSecret => {
            let secret = a.resolve_client_secret()?;
            Arc::new(mcas_loganalytics::ClientSecretCredential::new(
                tenant,
                client,
                secret.expose(),
                authority(a)?,
            )?)
        }
        AuthKind::ClientCertificate => {
            let Some(cert_path) = &a.certificate else {
                bail!("output.auth.certificate is required")
            };
            let cert = std::fs::read(cert_path).with_context(|| {
                format!(
                    "cannot read output.auth.certificate {}",
                    cert_path.display()
                )
            })?;
            let key = match &a.private_key {
                Some(k) => std::fs::read(k).with_context(|| {
                    format!("cannot read output.auth.private_key {}", k.display())
                })?,
                None => cert.clone(),
            };
            Arc::new(mcas_loganalytics::ClientCertificateCredential::new(
                tenant,
                client,
                &cert,
                &key,
                authority(a)?,
            )?)
        }
        AuthKind::ManagedIdentity => {
            let mut c = match &a.client_id {
                Some(id) => {
                    mcas_loganalytics::ManagedIdentityCredential::user_assigned(id.clone())?
                }
                None => mcas_loganalytics::ManagedIdentityCredential::system_assigned()?,
            };
            if let Some(ep) = &a.imds_endpoint {
                c = c.with_endpoint(ep).context("output.auth.imds_endpoint")?;
            }
            Arc::new(c)
        }
        AuthKind::WorkloadIdentity => {
            let tenant = a
                .tenant_id
                .clone()
                .or_else(|| std::env::var("AZURE_TENANT_ID").ok())
                .unwrap_or_default();
            let client = a
                .client_id
                .clone()
                .or_else(|| std::env::var("AZURE_CLIENT_ID").ok())
                .unwrap_or_default();
            let file: PathBuf = match &a.federated_token_file {
                Some(f) => f.clone(),
                None => std::env::var_os("AZURE_FEDERATED_TOKEN_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_default(),
            };
            Arc::new(mcas_loganalytics::WorkloadIdentityCredential::new(
                tenant,
                client,
                file,
                authority(a)?,
            )?)
        }
    })
}

/// At most `cap` bytes of an answer's body, as text: a hostile endpoint cannot make
/// `validate` read a gigabyte.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// What the `validate` check needs.
#[derive(Debug)]
struct Check {
    endpoint: String,
    dcr: String,
    stream: String,
    scope: String,
    cred: Arc<dyn mcas_loganalytics::TokenCredential>,
}

/// Wraps a credential to count token refreshes (a token different from the last one).
#[derive(Debug)]
struct CountingCredential {
    inner: Arc<dyn mcas_loganalytics::TokenCredential>,
    last: std::sync::Mutex<Option<std::time::SystemTime>>,
    metrics: Arc<Metrics>,
}

impl mcas_loganalytics::TokenCredential for CountingCredential {
    fn get_token<'a>(
        &'a self,
        scope: &'a str,
    ) -> mcas_loganalytics::BoxFuture<
        'a,
        Result<mcas_loganalytics::AccessToken, mcas_loganalytics::Error>,
    > {
        Box::pin(async move {
            let t = self.inner.get_token(scope).await?;
            if let Ok(mut last) = self.last.lock()
                && *last != Some(t.expires_at())
            {
                *last = Some(t.expires_at());
                self.metrics.token_refreshes.fetch_add(1, Relaxed);
            }
            Ok(t)
        })
    }

    fn invalidate(&self, scope: &str, token: &mcas_loganalytics::AccessToken) {
        self.inner.invalidate(scope, token);
    }
}

/// The output's health as seen from every HTTP attempt: counts each attempt as it completes,
/// flips reachability at the first failure (not when a send's retry budget is spent), and
/// logs the recovery, then the draining of what the outage left in the spool.
#[derive(Debug)]
pub(crate) struct Health {
    metrics: Arc<Metrics>,
    /// The output's own series.
    out: Arc<OutputMetrics>,
    /// When the current outage began; None while the output answers.
    down_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// Set from the recovery until the spool is empty again.
    draining: std::sync::atomic::AtomicBool,
    /// Batches delivered since the recovery.
    drained: std::sync::atomic::AtomicU64,
}

impl Health {
    pub(crate) fn new(metrics: Arc<Metrics>, out: Arc<OutputMetrics>) -> Health {
        Health {
            metrics,
            out,
            down_since: std::sync::Mutex::new(None),
            draining: std::sync::atomic::AtomicBool::new(false),
            drained: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn down(&self, why: &dyn std::fmt::Display) {
        self.metrics.set_reachable(&self.out, false);
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if since.is_none() {
            *since = Some(std::time::Instant::now());
            tracing::warn!(output = %self.out.name, error = %why, "the output is failing; rows stay spooled and are retried");
        }
    }

    fn up(&self) {
        self.metrics.set_reachable(&self.out, true);
        let was = self
            .down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = was {
            self.drained.store(0, Relaxed);
            self.draining.store(true, Relaxed);
            tracing::info!(
                outage_seconds = t.elapsed().as_secs(),
                spooled_batches = self.metrics.spool_files.load(Relaxed),
                "the output answers again; sending what was spooled"
            );
        }
    }

    /// A batch was delivered (and its file removed); `spool_empty` after it.
    fn delivered(&self, spool_empty: bool) {
        if !self.draining.load(Relaxed) {
            return;
        }
        let n = self.drained.fetch_add(1, Relaxed) + 1;
        if spool_empty && self.draining.swap(false, Relaxed) {
            tracing::info!(
                batches = n,
                "recovered: the spool is drained of what the outage left"
            );
        }
    }
}

impl mcas_loganalytics::SendObserver for Health {
    fn answered(&self, status: u16) {
        self.metrics.requests.fetch_add(1, Relaxed);
        self.out.requests.fetch_add(1, Relaxed);
        self.metrics.status(status);
        match status {
            200..=299 => self.up(),
            // Refused rows: the output is there, the rows are at fault.
            400 | 413 => {}
            _ => self.down(&format_args!("HTTP {status}")),
        }
    }

    fn failed(&self, error: &mcas_loganalytics::Error) {
        self.metrics.requests.fetch_add(1, Relaxed);
        self.metrics.request_errors.fetch_add(1, Relaxed);
        self.out.requests.fetch_add(1, Relaxed);
        self.out.request_errors.fetch_add(1, Relaxed);
        self.down(error);
    }
}

/// A send's report as the forwarder uses it. The attempts themselves (requests, statuses,
/// errors) were counted by [`Health`] as they happened.
fn report_to_sent(r: mcas_loganalytics::SendReport) -> Sent {
    let retry = r.retry_later_ndjson();
    let mut sent = Sent {
        delivered: r.delivered_rows,
        retry,
        ..Sent::default()
    };
    for x in r.rejected {
        sent.rejected.push((x.row, x.reason.to_string()));
    }
    if let Some(later) = r.retry_later {
        sent.retry_rows = later.rows.len();
        sent.last_error = Some(later.error.to_string());
    }
    sent
}

/// What became of a prepared body, as the forwarder uses it.
fn prepared_to_sent(
    body: &mcas_loganalytics::PreparedBody,
    r: mcas_loganalytics::PreparedReport,
) -> Sent {
    use mcas_loganalytics::PreparedReport as R;
    match r {
        R::Delivered { .. } => Sent {
            delivered: body.rows(),
            wire_bytes: body.bytes().len(),
            raw_bytes: body.raw_len(),
            ..Sent::default()
        },
        R::Later { error, .. } => Sent {
            retry_rows: body.rows(),
            last_error: Some(error.to_string()),
            keep: true,
            ..Sent::default()
        },
        R::Narrowed(report) => report_to_sent(report),
        R::Corrupt { why, .. } => Sent {
            corrupt: Some(why),
            ..Sent::default()
        },
        // A report kind this build does not know: keep the body, to send again.
        _ => Sent {
            retry_rows: body.rows(),
            keep: true,
            ..Sent::default()
        },
    }
}

impl Check {
    /// The `validate` check, as Vector's healthcheck does it: a token, then an empty batch
    /// (`[]`) to the stream. Returns the HTTP status.
    async fn run(&self) -> anyhow::Result<CheckResult> {
        let c = self;
        let token = match c.cred.get_token(&c.scope).await {
            Ok(t) => t,
            Err(e) => return Ok(CheckResult::Token(e)),
        };
        let url = format!(
            "{}/dataCollectionRules/{}/streams/{}?api-version={}",
            c.endpoint.trim_end_matches('/'),
            c.dcr,
            c.stream,
            mcas_loganalytics::LOGS_INGESTION_API_VERSION
        );
        // As the clients do: never follow a redirect (it would carry the token elsewhere).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        let resp = http
            .post(&url)
            .bearer_auth(token.secret())
            .header("Content-Type", "application/json")
            .body("[]")
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, mcas_loganalytics::MAX_ANSWER_BYTES).await;
        Ok(CheckResult::Status(status, body))
    }
}
