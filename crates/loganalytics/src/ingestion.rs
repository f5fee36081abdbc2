//! The Logs Ingestion API client.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::batch::{LOGS_INGESTION_MAX_BODY, Rows};
use crate::body::{MAX_ANSWER_BYTES, code_from_prefix, read_capped};
use crate::classify::{Api, RetryPolicy, parse_retry_after, parse_retry_after_ms};
use crate::cloud::{Cloud, check_url};
use crate::credential::{TokenCredential, new_request_id};
use crate::engine::{Answer, Body, Engine, Sender};
use crate::error::Error;
use crate::limiter::{Limiter, RateLimit};
use crate::observer::SendObserver;
use crate::prepared::{Prepared, PreparedBody, PreparedReport};
use crate::report::SendReport;

/// The API version used: the stable `2023-01-01`.
pub const LOGS_INGESTION_API_VERSION: &str = "2023-01-01";

/// Default gzip level: 3. On CommonSecurityLog rows (zlib-rs backend, one
/// core) level 3 packs and compresses about 340 MiB/s of JSON at 9.2:1,
/// level 1 about 480 MiB/s at 6.7:1, level 6 about 135 MiB/s at 11:1 (see
/// `docs/benchmarks.md`). The service's limit is on the uncompressed size,
/// so the level trades only CPU for bandwidth.
pub const DEFAULT_GZIP_LEVEL: u32 = 3;

/// Default number of requests in flight per client: 4.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// Default connect timeout: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default timeout for a whole request, answer included: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default event-time field for time splitting: `TimeGenerated`.
pub const DEFAULT_TIME_FIELD: &str = "TimeGenerated";

/// A client of the Logs Ingestion API for one DCR stream.
///
/// Cheap to clone; clones share the connection pool, the in-flight limit
/// and the rate limiter.
#[derive(Clone)]
pub struct LogsIngestionClient {
    inner: Arc<Inner>,
}

struct Inner {
    url: reqwest::Url,
    scope: String,
    credential: Arc<dyn TokenCredential>,
    http: reqwest::Client,
    engine: Engine,
}

impl fmt::Debug for LogsIngestionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogsIngestionClient")
            .field("url", &self.inner.url.as_str())
            .field("scope", &self.inner.scope)
            .field("credential", &self.inner.credential)
            .field("engine", &self.inner.engine)
            .finish()
    }
}

/// Builds a [`LogsIngestionClient`].
#[derive(Debug)]
pub struct LogsIngestionClientBuilder {
    endpoint: String,
    dcr_immutable_id: String,
    stream: String,
    credential: Option<Arc<dyn TokenCredential>>,
    scope: String,
    gzip_level: Option<u32>,
    max_in_flight: usize,
    retry: RetryPolicy,
    max_body: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    observer: Option<Arc<dyn SendObserver>>,
    rate_limit: Option<RateLimit>,
    time_field: String,
}

impl LogsIngestionClient {
    /// Starts a builder for `endpoint` (the DCR's logs ingestion URL or a
    /// DCE URL, taken verbatim from the DCR), the DCR's immutable id
    /// (`dcr-…`) and the stream name (`Custom-…`).
    pub fn builder(
        endpoint: impl Into<String>,
        dcr_immutable_id: impl Into<String>,
        stream: impl Into<String>,
    ) -> LogsIngestionClientBuilder {
        LogsIngestionClientBuilder {
            endpoint: endpoint.into(),
            dcr_immutable_id: dcr_immutable_id.into(),
            stream: stream.into(),
            credential: None,
            scope: Cloud::Public.ingestion_scope().to_owned(),
            gzip_level: Some(DEFAULT_GZIP_LEVEL),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry: RetryPolicy::default(),
            max_body: LOGS_INGESTION_MAX_BODY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            observer: None,
            rate_limit: None,
            time_field: DEFAULT_TIME_FIELD.to_owned(),
        }
    }

    /// Sends rows, each serialised with serde_json as one JSON object.
    ///
    /// Returns when every row is delivered, rejected or (with a bounded
    /// [`RetryPolicy`]) returned for later; see [`SendReport`].
    pub fn send<'a, T: Serialize>(
        &'a self,
        rows: &[T],
    ) -> impl Future<Output = SendReport> + Send + use<'a, T> {
        // Serialised before the future is built, so the future borrows
        // neither `rows` nor `T`.
        let rows = Rows::serialize(rows);
        async move { self.send_rows(&rows).await }
    }

    /// Sends newline-delimited JSON: one JSON object per line, already
    /// serialised (a spool's format). Empty lines are skipped; row indices
    /// in the report count the non-empty lines.
    pub async fn send_ndjson(&self, ndjson: &[u8]) -> SendReport {
        let rows = Rows::from_ndjson(ndjson);
        self.send_rows(&rows).await
    }

    /// Sends prepared [`Rows`].
    pub async fn send_rows(&self, rows: &Rows<'_>) -> SendReport {
        self.inner.engine.run(&self.inner.as_ref(), rows).await
    }

    /// Packs NDJSON rows into request bodies as a send would, gzip'd at the client's
    /// level: for a writer that stores them, so that [`send_prepared`](Self::send_prepared)
    /// later sends each as it is.
    pub fn prepare_ndjson(&self, ndjson: &[u8]) -> Prepared {
        let e = &self.inner.engine;
        crate::prepared::prepare(ndjson, e.max_body, e.gzip_level)
    }

    /// Sends a body prepared ahead, as it is; it is opened only when the service refuses
    /// it for its data or size (see [`PreparedReport`]).
    pub async fn send_prepared(&self, body: &PreparedBody) -> PreparedReport {
        self.inner
            .engine
            .run_prepared(&self.inner.as_ref(), body)
            .await
    }

    /// The request URL (without secrets; safe to log).
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }
}

impl LogsIngestionClientBuilder {
    /// The credential that provides bearer tokens (required).
    pub fn credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Uses `cloud`'s token scope (default: [`Cloud::Public`]).
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.scope = cloud.ingestion_scope().to_owned();
        self
    }

    /// Overrides the token scope, e.g. `https://monitor.azure.com/.default`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// The gzip level, 0–9 (default [`DEFAULT_GZIP_LEVEL`]).
    pub fn gzip_level(mut self, level: u32) -> Self {
        self.gzip_level = Some(level.min(9));
        self
    }

    /// Sends bodies uncompressed (no `Content-Encoding`).
    pub fn no_gzip(mut self) -> Self {
        self.gzip_level = None;
        self
    }

    /// Requests in flight at once (default [`DEFAULT_MAX_IN_FLIGHT`], at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`], bounded).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The largest uncompressed body (default and maximum
    /// [`LOGS_INGESTION_MAX_BODY`]; lower it to leave headroom).
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body = n.clamp(16, LOGS_INGESTION_MAX_BODY);
        self
    }

    /// The connect timeout (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// The whole-request timeout (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// Enforces per-minute limits on this client (off by default); see
    /// [`RateLimit::logs_ingestion_per_dcr`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// The RFC 3339 event-time field used to split a batch the service
    /// refuses with `RecordsTimeRangeIsMoreThan30Minutes` (default
    /// [`DEFAULT_TIME_FIELD`]).
    pub fn time_field(mut self, field: impl Into<String>) -> Self {
        self.time_field = field.into();
        self
    }

    /// Tells `observer` of every HTTP attempt as it completes (none by default): each
    /// answer's status, each failure without an answer, retries and bisection included.
    pub fn observer(mut self, observer: Arc<dyn SendObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// Fails without a credential, for an endpoint that is not `https://`
    /// (plain `http://` is allowed only to loopback), or for a DCR id or
    /// stream name with characters outside `[A-Za-z0-9_.-]`.
    pub fn build(self) -> Result<LogsIngestionClient, Error> {
        let credential = self
            .credential
            .ok_or_else(|| Error::builder("a credential is required"))?;
        let base = check_url(&self.endpoint, false)?;
        for (what, v) in [
            ("DCR immutable id", &self.dcr_immutable_id),
            ("stream", &self.stream),
        ] {
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(Error::builder(format!(
                    "the {what} is empty or has characters outside [A-Za-z0-9_.-]"
                )));
            }
        }
        let url = format!(
            "{}/dataCollectionRules/{}/streams/{}?api-version={LOGS_INGESTION_API_VERSION}",
            base.as_str().trim_end_matches('/'),
            self.dcr_immutable_id,
            self.stream
        );
        let url = reqwest::Url::parse(&url)
            .map_err(|_| Error::builder("the endpoint is not a valid URL"))?;
        let http = reqwest::Client::builder()
            // A redirect is a configuration error, never followed: the rows and the token
            // would go wherever `Location` points.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::builder("cannot build the HTTP client").with_source(e))?;
        Ok(LogsIngestionClient {
            inner: Arc::new(Inner {
                url,
                scope: self.scope,
                credential,
                http,
                engine: Engine {
                    api: Api::LogsIngestion,
                    max_body: self.max_body,
                    gzip_level: self.gzip_level,
                    max_in_flight: self.max_in_flight,
                    semaphore: Arc::new(Semaphore::new(self.max_in_flight)),
                    retry: self.retry,
                    limiter: self.rate_limit.map(Limiter::new),
                    time_field: self.time_field,
                    observer: self.observer,
                },
            }),
        })
    }
}

/// Error bodies: the Logs Ingestion API's `{"error":{"code","message"}}` or
/// the Data Collector API's `{"Error","Message"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    Azure {
        error: ErrorDetail,
    },
    Collector {
        #[serde(rename = "Error")]
        code: Option<String>,
        #[serde(rename = "Message", default)]
        message: Option<String>,
    },
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads `Retry-After` (seconds or HTTP date) or Azure's millisecond
/// variants.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    get("retry-after-ms")
        .or_else(|| get("x-ms-retry-after-ms"))
        .and_then(parse_retry_after_ms)
        .or_else(|| get(RETRY_AFTER.as_str()).and_then(|v| parse_retry_after(v, SystemTime::now())))
}

/// Reads an error answer: the code from `x-ms-error-code` or the body's
/// `error.code`, and the body's `error.message`.
pub(crate) async fn read_answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let header_code = resp
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (body_code, message) = if (200..300).contains(&status) {
        (None, None)
    } else if (300..400).contains(&status) {
        // Never followed, never read: the endpoint is not the API.
        (
            None,
            Some("the service answered with a redirect, which is never followed".to_owned()),
        )
    } else {
        // At most MAX_ANSWER_BYTES are read; a cut body still gives its code.
        match read_capped(resp, MAX_ANSWER_BYTES).await {
            Ok(body) => match serde_json::from_slice::<ErrorBody>(&body.bytes) {
                Ok(ErrorBody::Azure { error }) => (error.code, error.message),
                Ok(ErrorBody::Collector { code, message }) => (code, message),
                Err(_) => (
                    code_from_prefix(&body.bytes),
                    body.truncated.then(|| {
                        format!(
                            "the error answer is too large; read its first {MAX_ANSWER_BYTES} bytes"
                        )
                    }),
                ),
            },
            Err(_) => (None, None),
        }
    };
    Answer {
        status,
        code: header_code.or(body_code),
        message,
        retry_after,
    }
}

impl Sender for &Inner {
    async fn send(&self, body: &Body) -> Result<Answer, Error> {
        let token = self.credential.get_token(&self.scope).await?;
        let mut req = self
            .http
            .post(self.url.clone())
            .bearer_auth(token.secret())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header("x-ms-client-request-id", new_request_id())
            .body(body.bytes.clone());
        if body.gzipped {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        let resp = req.send().await.map_err(Error::transport)?;
        let answer = read_answer(resp).await;
        if answer.status == 401 {
            self.credential.invalidate(&self.scope, &token);
        }
        Ok(answer)
    }
}
