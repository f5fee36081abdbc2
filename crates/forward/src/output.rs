//! Outputs: stdout and file (rows written as they are batched), and the network outputs
//! (Logs Ingestion, Data Collector), which go through the spool and a pool of senders.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::batch::{Batch, Route};
use crate::config::{AuthConfig, AuthKind, CloudConfig, Config, OutputKind};
use crate::deadletter::{DeadLetter, EntryOut};
use crate::metrics::Metrics;
use crate::spool::{ReadOutcome, Spool, Spooled};

/// Result of sending one NDJSON batch.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Rows acknowledged (2xx).
    pub(crate) delivered: usize,
    /// Rows refused for good: (row JSON, reason).
    pub(crate) rejected: Vec<(Vec<u8>, String)>,
    /// Rows still to send (a transient failure outlasted the retry budget), as NDJSON.
    pub(crate) retry: Vec<u8>,
    /// How many rows are in `retry`.
    pub(crate) retry_rows: usize,
    /// The error that stopped the retries, for logs.
    pub(crate) last_error: Option<String>,
}

impl Sent {
    /// The NDJSON bytes of the delivered rows, out of a batch of `batch_len` bytes: neither
    /// the refused rows nor those left to retry.
    pub(crate) fn delivered_bytes(&self, batch_len: usize) -> usize {
        if self.delivered == 0 {
            return 0;
        }
        let refused: usize = self.rejected.iter().map(|(row, _)| row.len() + 1).sum();
        batch_len
            .saturating_sub(refused)
            .saturating_sub(self.retry.len())
    }
}

/// A network client for one route.
#[derive(Debug)]
enum Client {
    Logs(mcas_loganalytics::LogsIngestionClient),
    Collector(mcas_loganalytics::DataCollectorClient),
}

/// The network clients, by route.
#[derive(Debug)]
pub(crate) struct Network {
    csl: Client,
    syslog: Option<Client>,
    csl_stream: String,
    syslog_stream: Option<String>,
    check: Option<Check>,
    health: Arc<Health>,
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

impl Network {
    /// Build the clients of a network output.
    pub(crate) fn new(cfg: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Network> {
        let o = &cfg.output;
        let timeout = o.request_timeout.0;
        let retry = mcas_loganalytics::RetryPolicy::bounded(o.retry_budget.0);
        let health = Arc::new(Health::new(metrics.clone()));
        let observer: Arc<dyn mcas_loganalytics::SendObserver> = health.clone();
        match o.kind {
            OutputKind::LogsIngestion => {
                let Some(auth) = &o.auth else {
                    bail!("[output.auth] is required")
                };
                let cred: Arc<dyn mcas_loganalytics::TokenCredential> =
                    Arc::new(CountingCredential {
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
                let build = |stream: &str| -> anyhow::Result<Client> {
                    let mut b =
                        mcas_loganalytics::LogsIngestionClient::builder(&endpoint, &dcr, stream)
                            .credential(cred.clone())
                            .scope(scope.clone())
                            .max_in_flight(o.concurrency)
                            .request_timeout(timeout)
                            .observer(observer.clone())
                            .retry(retry.clone());
                    if let Some(level) = o.gzip_level {
                        b = b.gzip_level(level);
                    }
                    let c = b
                        .build()
                        .with_context(|| format!("output stream {stream}"))?;
                    Ok(Client::Logs(c))
                };
                Ok(Network {
                    csl: build(&o.stream)?,
                    syslog: o.syslog_stream.as_deref().map(build).transpose()?,
                    csl_stream: o.stream.clone(),
                    syslog_stream: o.syslog_stream.clone(),
                    check: Some(Check {
                        endpoint: endpoint.clone(),
                        dcr: dcr.clone(),
                        stream: o.stream.clone(),
                        scope,
                        cred,
                    }),
                    health,
                })
            }
            OutputKind::DataCollector => {
                let key = o.resolve_shared_key()?;
                let ws = o.workspace_id.clone().unwrap_or_default();
                let build = |log_type: &str| -> anyhow::Result<Client> {
                    let key = mcas_loganalytics::SharedKey::from_base64(key.expose())
                        .map_err(|e| anyhow::anyhow!("the shared key is not valid base64: {e}"))?;
                    let mut b = mcas_loganalytics::DataCollectorClient::builder(&ws, key, log_type)
                        .max_in_flight(o.concurrency)
                        .request_timeout(timeout)
                        .time_generated_field(crate::route::COLLECTED_TIME)
                        .observer(observer.clone())
                        .retry(retry.clone());
                    if let Some(ep) = &o.endpoint {
                        b = b.endpoint(ep.clone());
                    }
                    if let Some(auth) = &o.auth {
                        b = b.cloud(cloud(auth.cloud));
                    }
                    Ok(Client::Collector(
                        b.build().context("data-collector output")?,
                    ))
                };
                Ok(Network {
                    csl: build(&o.log_type)?,
                    syslog: o.syslog_stream.as_deref().map(build).transpose()?,
                    csl_stream: o.log_type.clone(),
                    syslog_stream: o.syslog_stream.clone(),
                    check: None,
                    health,
                })
            }
            OutputKind::Stdout | OutputKind::File => bail!("not a network output"),
        }
    }

    /// The stream (or Log-Type) name of a route.
    pub(crate) fn stream_name(&self, r: Route) -> Option<&str> {
        match r {
            Route::Csl => Some(&self.csl_stream),
            Route::Syslog => self.syslog_stream.as_deref(),
        }
    }

    /// The route whose stream is `name`.
    pub(crate) fn route_of(&self, name: &str) -> Option<Route> {
        if name == self.csl_stream {
            Some(Route::Csl)
        } else if self.syslog_stream.as_deref() == Some(name) {
            Some(Route::Syslog)
        } else {
            None
        }
    }

    /// Send an NDJSON batch for `route`.
    pub(crate) async fn send(&self, route: Route, ndjson: &[u8]) -> Sent {
        let client = match route {
            Route::Csl => Some(&self.csl),
            Route::Syslog => self.syslog.as_ref(),
        };
        let Some(client) = client else {
            let rejected = ndjson
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    (
                        l.to_vec(),
                        "no syslog_stream is configured for Syslog rows".to_owned(),
                    )
                })
                .collect();
            return Sent {
                rejected,
                ..Sent::default()
            };
        };
        let report = match client {
            Client::Logs(c) => c.send_ndjson(ndjson).await,
            Client::Collector(c) => c.send_ndjson(ndjson).await,
        };
        report_to_sent(report)
    }

    /// The `validate` check, as Vector's healthcheck does it: a token, then an empty batch
    /// (`[]`) to the stream. Returns the HTTP status.
    pub(crate) async fn check(&self) -> anyhow::Result<CheckResult> {
        let Some(c) = &self.check else {
            return Ok(CheckResult::Skipped);
        };
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

/// What `validate` learnt from the output.
#[derive(Debug)]
pub(crate) enum CheckResult {
    /// Not a Logs Ingestion output.
    Skipped,
    /// The token request failed.
    Token(mcas_loganalytics::Error),
    /// The empty batch was answered with this status and body.
    Status(u16, String),
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
    /// When the current outage began; None while the output answers.
    down_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// Set from the recovery until the spool is empty again.
    draining: std::sync::atomic::AtomicBool,
    /// Batches delivered since the recovery.
    drained: std::sync::atomic::AtomicU64,
}

impl Health {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Health {
        Health {
            metrics,
            down_since: std::sync::Mutex::new(None),
            draining: std::sync::atomic::AtomicBool::new(false),
            drained: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn down(&self, why: &dyn std::fmt::Display) {
        self.metrics.output_reachable.store(false, Relaxed);
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if since.is_none() {
            *since = Some(std::time::Instant::now());
            tracing::warn!(error = %why, "the output is failing; rows stay spooled and are retried");
        }
    }

    fn up(&self) {
        self.metrics.output_reachable.store(true, Relaxed);
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

/// Write batches to stdout or a file as they come; returns when the channel closes.
pub(crate) async fn run_local(
    kind: OutputKind,
    path: Option<PathBuf>,
    mut rx: mpsc::Receiver<Batch>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let mut file = match (kind, path) {
        (OutputKind::File, Some(p)) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .with_context(|| format!("cannot open output.path {}", p.display()))?,
        ),
        _ => None,
    };
    while let Some(b) = rx.recv().await {
        let res = match file.as_mut() {
            Some(f) => f.write_all(&b.data),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&b.data).and_then(|()| out.flush())
            }
        };
        if let Err(e) = res {
            // stdout closed (a pipe reader went away) or the disk is full: say so and stop.
            return Err(anyhow::Error::new(e).context("cannot write the output"));
        }
        metrics.pending_rows.fetch_sub(b.rows as u64, Relaxed);
        metrics.sent_rows.fetch_add(b.rows as u64, Relaxed);
        metrics.sent_bytes.fetch_add(b.data.len() as u64, Relaxed);
        metrics
            .last_success_unix
            .store(jiff::Timestamp::now().as_second().max(0) as u64, Relaxed);
    }
    Ok(())
}

/// Spool files written (and fsync'd) at once. Each fsync costs a fixed latency (a journal
/// commit) on top of the bytes; overlapping a few of them lets the disk group the commits,
/// and one batch at a time capped the whole pipeline at the disk's fsync rate (see the
/// end-to-end section of `docs/benchmarks.md`). Bounds memory too: at most this many closed
/// batches are held here.
pub(crate) const SPOOL_WRITES_IN_FLIGHT: usize = 4;

/// Write batches to the spool, then queue them for the senders. Admission (the spool's cap
/// and `when_full` policy) is decided one batch at a time, in arrival order; the durable
/// writes then run up to [`SPOOL_WRITES_IN_FLIGHT`] at once, and each batch is queued for
/// sending only once its own write is durable. Returns when the channel is closed and every
/// write has finished.
pub(crate) async fn run_spooler(
    spool: Arc<Spool>,
    mut rx: mpsc::Receiver<Batch>,
    queue: mpsc::UnboundedSender<Spooled>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(SPOOL_WRITES_IN_FLIGHT));
    let mut writes = tokio::task::JoinSet::new();
    while let Some(b) = rx.recv().await {
        // Wait for a free slot before taking room in the spool, so a batch is never
        // admitted and then parked in memory.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let rows = b.rows as u64;
        if !spool.admit(&b).await {
            // Dropped and counted by the spool (drop-newest).
            metrics.pending_rows.fetch_sub(rows, Relaxed);
            continue;
        }
        let (spool, queue, metrics) = (spool.clone(), queue.clone(), metrics.clone());
        writes.spawn(async move {
            let _slot = slot;
            let result = spool.store(b).await;
            metrics.pending_rows.fetch_sub(rows, Relaxed);
            match result {
                Ok(s) => {
                    let _ = queue.send(s);
                }
                Err(e) => {
                    tracing::error!(rows, error = %format!("{e:#}"), "spool writer failed; batch lost");
                }
            }
        });
        // Reap finished writes so the set does not grow.
        while writes.try_join_next().is_some() {}
    }
    while writes.join_next().await.is_some() {}
}

/// One way of sending a spooled batch: Ok(true) when it is done with (its file removed),
/// Ok(false) or Err when it must be tried again later.
pub(crate) trait SendBatch: Send + Sync + 'static {
    fn send<'a>(
        &'a self,
        s: &'a mut Spooled,
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<bool>>;
}

/// The network output's [`SendBatch`]: send, dead-letter refusals, delete or rewrite.
#[derive(Debug)]
pub(crate) struct NetworkSend {
    pub(crate) net: Arc<Network>,
    pub(crate) spool: Arc<Spool>,
    pub(crate) dead: Arc<DeadLetter>,
    pub(crate) metrics: Arc<Metrics>,
}

impl SendBatch for NetworkSend {
    fn send<'a>(
        &'a self,
        s: &'a mut Spooled,
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(send_one(
            &self.net,
            &self.spool,
            s,
            &self.dead,
            &self.metrics,
        ))
    }
}

/// The batch a sender task has in hand.
type Slot = Arc<std::sync::Mutex<Option<Spooled>>>;

/// Counts a running sender in `senders_alive` for as long as it lives, panics included.
struct Alive<'a>(&'a Metrics);

impl<'a> Alive<'a> {
    fn new(m: &'a Metrics) -> Alive<'a> {
        m.senders_alive.fetch_add(1, Relaxed);
        Alive(m)
    }
}

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.senders_alive.fetch_sub(1, Relaxed);
    }
}

/// The senders: `senders` tasks take spooled batches and send them; what must be retried
/// is put back after a pause. A send that panics (a bug, or a hostile answer that finds
/// one) puts its batch back and is counted; a sender task that ends anyway is restarted,
/// counted and logged, so the output never silently stops. Returns when `stop` fires.
pub(crate) async fn run_senders<S: SendBatch>(
    send: Arc<S>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Spooled>>>,
    requeue: mpsc::UnboundedSender<Spooled>,
    metrics: Arc<Metrics>,
    senders: usize,
    stop: CancellationToken,
) {
    metrics.senders_wanted.store(senders as u64, Relaxed);
    // Each task's batch in hand, so the batch of a task that dies goes back to the queue.
    let mut holding = std::collections::HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    let spawn = |set: &mut tokio::task::JoinSet<()>,
                 holding: &mut std::collections::HashMap<tokio::task::Id, Slot>| {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let task = set.spawn(sender_loop(
            send.clone(),
            queue.clone(),
            requeue.clone(),
            metrics.clone(),
            stop.clone(),
            slot.clone(),
        ));
        holding.insert(task.id(), slot);
    };
    for _ in 0..senders {
        spawn(&mut set, &mut holding);
    }
    while let Some(ended) = set.join_next_with_id().await {
        let id = match &ended {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        let held = holding
            .remove(&id)
            .and_then(|slot| slot.lock().unwrap_or_else(|p| p.into_inner()).take());
        if stop.is_cancelled() {
            continue;
        }
        metrics.sender_restarts.fetch_add(1, Relaxed);
        match ended {
            Err(e) if e.is_panic() => {
                tracing::error!(error = %e, "a sender task panicked; restarting it");
            }
            _ => tracing::error!("a sender task stopped; restarting it"),
        }
        if let Some(s) = held {
            let _ = requeue.send(s);
        }
        spawn(&mut set, &mut holding);
    }
}

async fn sender_loop<S: SendBatch>(
    send: Arc<S>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Spooled>>>,
    requeue: mpsc::UnboundedSender<Spooled>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    holding: Slot,
) {
    use futures_util::FutureExt as _;
    let _alive = Alive::new(&metrics);
    let mut failures: u32 = 0;
    loop {
        let next = {
            let mut q = queue.lock().await;
            tokio::select! {
                _ = stop.cancelled() => None,
                s = q.recv() => s,
            }
        };
        let Some(mut s) = next else { break };
        *holding.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
        let attempt = std::panic::AssertUnwindSafe(send.send(&mut s)).catch_unwind();
        let outcome = tokio::select! {
            _ = stop.cancelled() => break,
            o = attempt => o,
        };
        holding.lock().unwrap_or_else(|p| p.into_inner()).take();
        let outcome = outcome.unwrap_or_else(|panic| {
            metrics.sender_panics.fetch_add(1, Relaxed);
            let what = panic
                .downcast_ref::<&str>()
                .map(|m| (*m).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            tracing::error!(file = %s.path.display(), panic = %what, "sending a batch panicked; the batch stays spooled and is tried again");
            Err(anyhow::anyhow!("the send panicked: {what}"))
        });
        match outcome {
            Ok(true) => failures = 0,
            Ok(false) | Err(_) => {
                if let Err(e) = &outcome {
                    tracing::warn!(file = %s.path.display(), error = %format!("{e:#}"), "cannot send a spooled batch");
                }
                failures = failures.saturating_add(1);
                metrics.retries.fetch_add(1, Relaxed);
                let delay = Duration::from_millis(500u64.saturating_mul(1 << failures.min(7)))
                    .min(Duration::from_secs(60));
                let requeue = requeue.clone();
                let stop = stop.clone();
                // Put it back after a pause; the other batches keep flowing meanwhile.
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(delay) => { let _ = requeue.send(s); }
                    }
                });
            }
        }
    }
}

/// Send one spooled batch. Ok(true): done (file removed). Ok(false): rows remain to retry.
async fn send_one(
    net: &Network,
    spool: &Spool,
    s: &mut Spooled,
    dead: &DeadLetter,
    metrics: &Metrics,
) -> anyhow::Result<bool> {
    let data = match spool.read(s).await {
        ReadOutcome::Data(d) => d,
        // Vanished or quarantined: released, counted and logged by the spool.
        ReadOutcome::Gone => return Ok(true),
        ReadOutcome::Retry(e) => return Err(e),
    };
    let sent = net.send(s.route, &data).await;
    if sent.delivered > 0 {
        metrics.sent_rows.fetch_add(sent.delivered as u64, Relaxed);
        metrics
            .last_success_unix
            .store(jiff::Timestamp::now().as_second().max(0) as u64, Relaxed);
    }
    if !sent.rejected.is_empty() {
        let stream = net.stream_name(s.route);
        let now = jiff::Timestamp::now();
        let mut lines = Vec::new();
        for (row, reason) in &sent.rejected {
            let raw = String::from_utf8_lossy(row).into_owned();
            let e = match serde_json::value::RawValue::from_string(raw.clone()) {
                Ok(rv) => serde_json::to_writer(
                    &mut lines,
                    &EntryOut {
                        time: now,
                        reason,
                        stream,
                        row: Some(&rv),
                        peer: None,
                        raw: None,
                    },
                ),
                Err(_) => serde_json::to_writer(
                    &mut lines,
                    &EntryOut {
                        time: now,
                        reason,
                        stream,
                        row: None,
                        peer: None,
                        raw: Some(&raw),
                    },
                ),
            };
            if e.is_ok() {
                lines.push(b'\n');
            }
        }
        dead.write_lines(&lines, sent.rejected.len() as u64);
        dead.flush();
        tracing::warn!(rows = sent.rejected.len(), file = %dead.path().display(), "rows rejected by the output were dead-lettered");
    }
    if sent.delivered > 0 {
        metrics
            .sent_bytes
            .fetch_add(sent.delivered_bytes(data.len()) as u64, Relaxed);
    }
    if sent.retry_rows == 0 {
        spool.remove(s);
        net.health.delivered(spool.bytes() == 0);
        return Ok(true);
    }
    metrics.output_reachable.store(false, Relaxed);
    tracing::warn!(
        rows = sent.retry_rows,
        error = sent.last_error.as_deref().unwrap_or("transient failure"),
        "output unavailable; rows stay spooled and will be retried"
    );
    if sent.retry.len() != data.len() {
        spool.rewrite(s, &sent.retry)?;
    }
    Ok(false)
}

#[cfg(test)]
mod sender_tests {
    use super::*;

    #[test]
    fn sent_bytes_count_only_delivered_rows() {
        let batch = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        let all_refused = Sent {
            rejected: vec![
                (b"{\"a\":1}".to_vec(), "400".into()),
                (b"{\"b\":2}".to_vec(), "400".into()),
                (b"{\"c\":3}".to_vec(), "400".into()),
            ],
            ..Sent::default()
        };
        assert_eq!(all_refused.delivered_bytes(batch.len()), 0);
        let one_refused_one_later = Sent {
            delivered: 1,
            rejected: vec![(b"{\"a\":1}".to_vec(), "400".into())],
            retry: b"{\"c\":3}\n".to_vec(),
            retry_rows: 1,
            ..Sent::default()
        };
        assert_eq!(one_refused_one_later.delivered_bytes(batch.len()), 8);
        let all = Sent {
            delivered: 3,
            ..Sent::default()
        };
        assert_eq!(all.delivered_bytes(batch.len()), batch.len());
    }

    /// Panics on the first attempt at each batch, then delivers it.
    #[derive(Debug, Default)]
    struct PanicsOnce {
        tried: std::sync::Mutex<std::collections::HashSet<u64>>,
        delivered: std::sync::Mutex<Vec<u64>>,
    }

    impl SendBatch for PanicsOnce {
        fn send<'a>(
            &'a self,
            s: &'a mut Spooled,
        ) -> futures_util::future::BoxFuture<'a, anyhow::Result<bool>> {
            Box::pin(async move {
                let first = self.tried.lock().unwrap().insert(s.seq);
                if first {
                    // What an overflow on a hostile token lifetime did to every sender.
                    panic!("overflow when adding duration to instant");
                }
                self.delivered.lock().unwrap().push(s.seq);
                Ok(true)
            })
        }
    }

    fn spooled(seq: u64) -> Spooled {
        Spooled {
            seq,
            route: Route::Csl,
            path: std::path::PathBuf::from(format!("{seq:020}.csl.ndjson")),
            len: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_send_keeps_its_batch_and_the_senders_keep_running() {
        let metrics = Arc::new(Metrics::default());
        let send = Arc::new(PanicsOnce::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let pool = tokio::spawn(run_senders(
            send.clone(),
            Arc::new(Mutex::new(rx)),
            tx.clone(),
            metrics.clone(),
            2,
            stop.clone(),
        ));
        for seq in 1..=6 {
            tx.send(spooled(seq)).unwrap();
        }
        // Paused time: the retry pauses (up to a minute) pass at once.
        for _ in 0..600 {
            if send.delivered.lock().unwrap().len() == 6 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut got = send.delivered.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6], "every batch delivered once");
        assert_eq!(metrics.sender_panics.load(Relaxed), 6);
        assert_eq!(metrics.senders_alive.load(Relaxed), 2);
        assert_eq!(metrics.senders_wanted.load(Relaxed), 2);
        stop.cancel();
        pool.await.unwrap();
        assert_eq!(metrics.senders_alive.load(Relaxed), 0);
        assert_eq!(metrics.sender_restarts.load(Relaxed), 0);
    }

    /// Panics outside the guarded send: in the queue handling itself.
    #[derive(Debug, Default)]
    struct Dies {
        calls: std::sync::atomic::AtomicU64,
    }

    impl SendBatch for Dies {
        fn send<'a>(
            &'a self,
            _s: &'a mut Spooled,
        ) -> futures_util::future::BoxFuture<'a, anyhow::Result<bool>> {
            if self.calls.fetch_add(1, Relaxed) == 0 {
                // Before the future exists, so catch_unwind around it cannot see it.
                panic!("the sender task itself dies");
            }
            Box::pin(async { Ok(true) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_task_that_dies_is_restarted_and_counted() {
        let metrics = Arc::new(Metrics::default());
        let send = Arc::new(Dies::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let pool = tokio::spawn(run_senders(
            send.clone(),
            Arc::new(Mutex::new(rx)),
            tx.clone(),
            metrics.clone(),
            1,
            stop.clone(),
        ));
        tx.send(spooled(1)).unwrap();
        tx.send(spooled(2)).unwrap();
        for _ in 0..100 {
            if send.calls.load(Relaxed) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            send.calls.load(Relaxed),
            3,
            "the restarted sender took the dead task's batch again, then the next one"
        );
        assert_eq!(metrics.sender_restarts.load(Relaxed), 1);
        assert_eq!(metrics.senders_alive.load(Relaxed), 1);
        stop.cancel();
        pool.await.unwrap();
    }
}
