//! The delivery worker: takes due messages from the outbox, signs and POSTs them, and records
//! the outcome on disk.
//!
//! Outcomes, by answer:
//!
//! - **2xx**: delivered; the file is removed.
//! - **410 Gone**: the endpoint is disabled (counted, logged once). Its messages stay on disk,
//!   reported in the metrics, and are not attempted again until the worker is started anew
//!   (a restart or a configuration reload).
//! - **408, 429, 5xx, no answer** (refused, reset, TLS failure, timeout): scheduled again after
//!   the next delay of the retry schedule, jittered, and never sooner than a `Retry-After`
//!   (seconds or an HTTP date, capped at [`DeliveryConfig::max_retry_after`]). After the last
//!   delay the message is given up: moved to `dead/`, counted as `failed`.
//! - **any other 4xx, and 3xx** (redirects are not followed): refused for good; moved to
//!   `dead/`, counted as `dead_lettered`.
//!
//! Ordering: messages are taken oldest-due first, up to [`DeliveryConfig::concurrency`] at a
//! time over all endpoints, so an endpoint's messages may arrive out of order (a retried one
//! after a newer one). Receivers deduplicate on `webhook-id`; they should not rely on order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::metrics::{EndpointCounters, MetricsSnapshot, StatusClass};
use crate::outbox::{Claim, Outbox, now_ms};
use crate::sign::{
    self, HEADER_GITHUB_DELIVERY, HEADER_GITHUB_EVENT, HEADER_GITHUB_SIGNATURE, HEADER_ID,
    HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret,
};
use crate::url::EndpointUrl;

/// How an endpoint's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (one entry per secret).
    StandardWebhooks,
    /// `X-Hub-Signature-256` (first secret only), `X-GitHub-Delivery` (the message id) and
    /// `X-GitHub-Event` (the endpoint's event name).
    GitHub,
}

impl Format {
    /// Parses the configuration spelling: `standard-webhooks` or `github`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "standard-webhooks" => Some(Format::StandardWebhooks),
            "github" => Some(Format::GitHub),
            _ => None,
        }
    }
}

/// The event name sent in `X-GitHub-Event` unless the endpoint sets another.
pub const DEFAULT_EVENT: &str = "mcas_alert";

/// One webhook endpoint (a `[[playbook]]`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The name: the outbox key, the metrics label and what logs show.
    pub name: String,
    /// Where to POST.
    pub url: EndpointUrl,
    /// How to sign.
    pub format: Format,
    /// Signing keys; the first signs GitHub's form, all sign Standard Webhooks.
    pub secrets: Vec<Secret>,
    /// `X-GitHub-Event` for the GitHub form.
    pub event: String,
}

impl Endpoint {
    /// An endpoint with the default event name.
    pub fn new(name: &str, url: EndpointUrl, format: Format, secrets: Vec<Secret>) -> Self {
        Endpoint {
            name: name.to_owned(),
            url,
            format,
            secrets,
            event: DEFAULT_EVENT.to_owned(),
        }
    }
}

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Whole-request timeout (connect, send, answer head).
    pub timeout: Duration,
    /// Delays before the 2nd, 3rd, … attempt (the first is immediate); a message is given up
    /// after `retry_delays.len() + 1` attempts.
    pub retry_delays: Vec<Duration>,
    /// Each delay is multiplied by a random factor in `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
    /// The longest `Retry-After` believed.
    pub max_retry_after: Duration,
    /// Deliveries in flight at most, over all endpoints.
    pub concurrency: usize,
    /// `User-Agent` of the requests.
    pub user_agent: String,
}

/// The default schedule: now, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h
/// (about 3 days and 6 hours in all).
pub fn default_retry_delays() -> Vec<Duration> {
    [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(30),
            retry_delays: default_retry_delays(),
            jitter: 0.1,
            max_retry_after: Duration::from_secs(86_400),
            concurrency: 4,
            user_agent: concat!("mcas-webhook/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why the worker did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The HTTP client could not be built.
    #[error("webhook HTTP client: {0}")]
    Client(String),
    /// Two endpoints with one name.
    #[error("two webhook endpoints are named {0:?}")]
    DuplicateName(String),
    /// An endpoint without a secret.
    #[error("webhook endpoint {0:?} has no secret")]
    NoSecret(String),
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP date (the time until it from `now`,
/// zero if it is past). `None` if it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Gone,
    Retry(Option<Duration>),
    Refused(u16),
}

/// The verdict for an HTTP status (and its `Retry-After`, if any).
fn judge(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        408 | 429 | 500..=599 => Verdict::Retry(retry_after),
        _ => Verdict::Refused(status),
    }
}

struct EndpointState {
    endpoint: Endpoint,
    counters: EndpointCounters,
}

struct Shared {
    outbox: Arc<Outbox>,
    endpoints: HashMap<String, Arc<EndpointState>>,
    order: Vec<String>,
    config: DeliveryConfig,
    client: reqwest::Client,
    blocking: Arc<Blocking>,
}

/// Outbox file work running on the blocking pool. An aborted delivery cannot stop it, so
/// shutdown waits for it: once `shutdown` returns, the worker no longer touches the outbox.
#[derive(Default)]
struct Blocking {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Runs `f` on the blocking pool, counted in `blocking`. `f` (and what it holds, an
/// `Arc<Outbox>`) is dropped before the count goes down.
fn spawn_counted<T: Send + 'static>(
    blocking: &Arc<Blocking>,
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    blocking.running.fetch_add(1, Relaxed);
    let b = Arc::clone(blocking);
    tokio::task::spawn_blocking(move || {
        let out = f();
        b.running.fetch_sub(1, Relaxed);
        b.idle.notify_waiters();
        out
    })
}

impl Shared {
    fn deliverable(&self, name: &str) -> bool {
        self.endpoints
            .get(name)
            .is_some_and(|e| !e.counters.disabled.load(Relaxed))
    }

    fn snapshot(&self) -> MetricsSnapshot {
        let outbox = self.outbox.snapshot();
        let orphaned = outbox
            .pending_by_endpoint
            .iter()
            .filter(|(n, _)| !self.endpoints.contains_key(n))
            .map(|(_, c)| c)
            .sum();
        MetricsSnapshot {
            outbox,
            endpoints: self
                .order
                .iter()
                .filter_map(|n| self.endpoints.get(n).map(|e| e.counters.snapshot(n)))
                .collect(),
            orphaned,
        }
    }
}

/// A handle on the worker's counters that outlives the worker.
#[derive(Clone)]
pub struct MetricsHandle(Arc<Shared>);

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.0.snapshot()
    }
}

/// The running delivery worker. Dropping it stops the loop (in-flight requests are
/// abandoned; their messages stay pending on disk).
#[derive(Debug)]
pub struct Worker {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    metrics: MetricsHandle,
}

impl Worker {
    /// Starts delivering `outbox`'s messages to `endpoints`. Must be called inside a Tokio
    /// runtime. Messages of endpoints not listed stay on disk (counted as orphaned).
    pub fn start(
        outbox: Arc<Outbox>,
        endpoints: Vec<Endpoint>,
        config: DeliveryConfig,
    ) -> Result<Worker, WorkerError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| WorkerError::Client(e.without_url().to_string()))?;
        let mut map = HashMap::new();
        let mut order = Vec::new();
        for endpoint in endpoints {
            if endpoint.secrets.is_empty() {
                return Err(WorkerError::NoSecret(endpoint.name));
            }
            if map.contains_key(&endpoint.name) {
                return Err(WorkerError::DuplicateName(endpoint.name));
            }
            order.push(endpoint.name.clone());
            map.insert(
                endpoint.name.clone(),
                Arc::new(EndpointState {
                    endpoint,
                    counters: EndpointCounters::default(),
                }),
            );
        }
        let shared = Arc::new(Shared {
            outbox,
            endpoints: map,
            order,
            config,
            client,
            blocking: Arc::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&shared), stopped));
        Ok(Worker {
            stop,
            task: Some(task),
            metrics: MetricsHandle(shared),
        })
    }

    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// A handle on the counters, for a metrics endpoint.
    pub fn metrics_handle(&self) -> MetricsHandle {
        self.metrics.clone()
    }

    /// Stops: no new attempt starts, in-flight requests are abandoned, and every message not
    /// delivered stays pending on disk.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    loop {
        if *stopped.borrow() {
            break;
        }
        let free = shared.config.concurrency.max(1).saturating_sub(tasks.len());
        if free > 0 {
            let due = shared
                .outbox
                .take_due(now_ms(), free, |n| shared.deliverable(n));
            for claim in due {
                let s = Arc::clone(&shared);
                tasks.spawn(async move { deliver(s, claim).await });
            }
        }
        let wait = shared
            .outbox
            .next_due_ms(|n| shared.deliverable(n))
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
        // With every slot busy, only a finished delivery frees one; else sleep to the next due.
        let sleep = if tasks.len() >= shared.config.concurrency.max(1) {
            Duration::from_secs(3600)
        } else {
            wait.unwrap_or(Duration::from_secs(3600))
        };
        tokio::select! {
            _ = stopped.changed() => break,
            _ = shared.outbox.enqueued() => {}
            _ = tokio::time::sleep(sleep) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Deliveries cut short leave their files untouched; their guards free the claims.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let blocking = Arc::clone(&shared.blocking);
    drop(shared);
    loop {
        let idle = blocking.idle.notified();
        if blocking.running.load(Relaxed) == 0 {
            break;
        }
        // Bounded: a wake-up lost between the load and the wait costs at most 50 ms.
        let _ = tokio::time::timeout(Duration::from_millis(50), idle).await;
    }
}

/// Frees a claim that was not settled (the delivery was aborted), so that a later worker on
/// the same outbox takes the message again.
struct ClaimGuard {
    outbox: Arc<Outbox>,
    claim: Option<Claim>,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(claim) = self.claim.take() {
            self.outbox.release(&claim);
        }
    }
}

fn jittered(d: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || d.is_zero() {
        return d;
    }
    let j = jitter.min(1.0);
    let factor = rand::thread_rng().gen_range((1.0 - j)..=(1.0 + j));
    // try_: a configured delay near Duration::MAX must not overflow.
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(d)
}

async fn deliver(shared: Arc<Shared>, claim: Claim) {
    let mut guard = ClaimGuard {
        outbox: Arc::clone(&shared.outbox),
        claim: Some(claim.clone()),
    };
    let Some(state) = shared.endpoints.get(&claim.endpoint).cloned() else {
        return;
    };
    let ep = &state.endpoint;
    let outbox = Arc::clone(&shared.outbox);
    let c2 = claim.clone();
    let body = match spawn_counted(&shared.blocking, move || outbox.read_body(&c2)).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            tracing::warn!(endpoint = %ep.name, error = %e, "webhook message unreadable; moved to dead/");
            guard.claim = None;
            settle(
                &shared,
                claim.clone(),
                Settle::Dead(claim.attempts, "unreadable"),
            )
            .await;
            return;
        }
        Err(_) => return,
    };
    let attempt = claim.attempts.saturating_add(1);
    let ts = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut req = shared
        .client
        .post(ep.url.expose().clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    match ep.format {
        Format::StandardWebhooks => {
            req = req
                .header(HEADER_ID, claim.id.as_str())
                .header(HEADER_TIMESTAMP, ts.to_string())
                .header(
                    HEADER_SIGNATURE,
                    sign::standard_signature_header(&ep.secrets, &claim.id, ts, &body),
                );
        }
        Format::GitHub => {
            if let Some(first) = ep.secrets.first() {
                req = req.header(
                    HEADER_GITHUB_SIGNATURE,
                    sign::github_signature(first, &body),
                );
            }
            req = req
                .header(HEADER_GITHUB_DELIVERY, claim.id.as_str())
                .header(HEADER_GITHUB_EVENT, ep.event.as_str());
        }
    }
    let verdict = match req.body(body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            state.counters.attempt(StatusClass::of(status));
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            judge(status, retry_after)
        }
        Err(e) => {
            state.counters.attempt(StatusClass::Transport);
            // Without the URL: it may carry a secret (a Logic App's sig=).
            tracing::debug!(endpoint = %ep.name, url = %ep.url, error = %e.without_url(), "webhook attempt got no answer");
            Verdict::Retry(None)
        }
    };
    let c = &state.counters;
    let outcome = match verdict {
        Verdict::Delivered => {
            c.delivered.fetch_add(1, Relaxed);
            Settle::Done
        }
        Verdict::Gone => {
            c.disabled_events.fetch_add(1, Relaxed);
            if !c.disabled.swap(true, Relaxed) {
                tracing::warn!(
                    endpoint = %ep.name,
                    url = %ep.url,
                    pending = shared.outbox.pending_for(&ep.name),
                    "webhook endpoint answered 410 Gone: disabled until restart; its messages stay in the outbox"
                );
            }
            // Attempt recorded; due at once when the endpoint is enabled again.
            Settle::Again(attempt, now_ms())
        }
        Verdict::Retry(hint) => match shared
            .config
            .retry_delays
            .get(usize::try_from(claim.attempts).unwrap_or(usize::MAX))
        {
            Some(&delay) => {
                let mut wait = jittered(delay, shared.config.jitter);
                if let Some(h) = hint {
                    wait = wait.max(h.min(shared.config.max_retry_after));
                }
                c.retried.fetch_add(1, Relaxed);
                let at =
                    now_ms().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                Settle::Again(attempt, at)
            }
            None => {
                c.failed.fetch_add(1, Relaxed);
                tracing::warn!(endpoint = %ep.name, attempts = attempt, "webhook message given up after its last retry; moved to dead/");
                Settle::Dead(attempt, "retries exhausted")
            }
        },
        Verdict::Refused(status) => {
            c.dead_lettered.fetch_add(1, Relaxed);
            tracing::warn!(endpoint = %ep.name, url = %ep.url, status, "webhook refused by the receiver; moved to dead/");
            Settle::Dead(attempt, refused_reason(status))
        }
    };
    guard.claim = None;
    settle(&shared, claim, outcome).await;
}

fn refused_reason(status: u16) -> &'static str {
    match status {
        300..=399 => "refused: redirect (not followed)",
        400 => "refused: 400",
        401 => "refused: 401",
        403 => "refused: 403",
        404 => "refused: 404",
        413 => "refused: 413",
        _ => "refused: client error",
    }
}

enum Settle {
    Done,
    Again(u32, u64),
    Dead(u32, &'static str),
}

async fn settle(shared: &Arc<Shared>, claim: Claim, how: Settle) {
    let outbox = Arc::clone(&shared.outbox);
    let result = spawn_counted(&shared.blocking, move || match how {
        Settle::Done => outbox.complete(&claim),
        Settle::Again(attempts, at) => outbox.reschedule(&claim, attempts, at),
        Settle::Dead(attempts, reason) => outbox.dead_letter(&claim, attempts, reason),
    })
    .await;
    if let Ok(Err(e)) = result {
        tracing::warn!(error = %e, "webhook outbox update failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(judge(200, None), Verdict::Delivered);
        assert_eq!(judge(204, None), Verdict::Delivered);
        assert_eq!(judge(410, None), Verdict::Gone);
        assert_eq!(judge(503, None), Verdict::Retry(None));
        assert_eq!(
            judge(429, Some(Duration::from_secs(3))),
            Verdict::Retry(Some(Duration::from_secs(3)))
        );
        assert_eq!(judge(408, None), Verdict::Retry(None));
        assert_eq!(judge(404, None), Verdict::Refused(404));
        assert_eq!(judge(301, None), Verdict::Refused(301));
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn jitter_stays_in_bounds() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100), 0.1);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert_eq!(
            jittered(Duration::from_secs(5), 0.0),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn an_endpoint_shows_neither_its_key_nor_its_sig() {
        let ep = Endpoint::new(
            "logic-app",
            EndpointUrl::parse(
                "https://prod-1.logic.azure.com/workflows/w/invoke?sp=run&sig=S3cr3tSig",
            )
            .unwrap(),
            Format::StandardWebhooks,
            vec![Secret::parse_standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()],
        );
        let shown = format!("{ep:?}");
        assert!(!shown.contains("S3cr3tSig"), "{shown}");
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert!(
            shown.contains("logic-app") && shown.contains("prod-1.logic.azure.com"),
            "{shown}"
        );
    }

    #[test]
    fn default_schedule_is_the_spec_one() {
        let total: u64 = default_retry_delays().iter().map(Duration::as_secs).sum();
        assert_eq!(default_retry_delays().len(), 9);
        // 5 s + 5 min + 30 min + 2 h + 5 h + 10 h + 14 h + 20 h + 24 h.
        assert_eq!(
            total,
            5 + 300 + 1800 + 7200 + 18_000 + 36_000 + 50_400 + 72_000 + 86_400
        );
        assert_eq!(Format::parse("github"), Some(Format::GitHub));
        assert_eq!(
            Format::parse("standard-webhooks"),
            Some(Format::StandardWebhooks)
        );
        assert_eq!(Format::parse("svix"), None);
    }
}
