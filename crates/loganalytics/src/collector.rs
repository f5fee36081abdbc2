//! The legacy HTTP Data Collector API client.
//!
//! Microsoft stopped this API on 14 September 2026; it is kept for
//! migrations and for environments that still run it. It cannot write to
//! `CommonSecurityLog`: the service appends `_CL` to the `Log-Type`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::batch::{DATA_COLLECTOR_MAX_BODY, Rows};
use crate::classify::{Api, RetryPolicy};
use crate::cloud::{Cloud, check_url};
use crate::engine::{Answer, Body, Engine, Sender};
use crate::error::Error;
use crate::ingestion::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_REQUEST_TIMEOUT, read_answer,
};
use crate::observer::SendObserver;
use crate::report::SendReport;
use crate::signature::{CONTENT_TYPE_JSON, SharedKey, authorization};

/// The only version of the Data Collector API.
pub const DATA_COLLECTOR_API_VERSION: &str = "2016-04-01";

/// The service truncates field values longer than 32 KB.
pub const DATA_COLLECTOR_MAX_FIELD_BYTES: usize = 32 * 1024;

/// Checks a `Log-Type`: letters, digits and `_` only, at most 100 characters.
///
/// # Errors
/// A configuration error naming the rule that failed.
pub fn validate_log_type(log_type: &str) -> Result<(), Error> {
    if log_type.is_empty() || log_type.len() > 100 {
        return Err(Error::builder("the Log-Type must have 1 to 100 characters"));
    }
    if !log_type
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::builder(
            "the Log-Type may hold only letters, digits and '_'",
        ));
    }
    Ok(())
}

/// A client of the HTTP Data Collector API for one workspace and `Log-Type`.
#[derive(Clone)]
pub struct DataCollectorClient {
    inner: Arc<Inner>,
}

struct Inner {
    url: reqwest::Url,
    workspace_id: String,
    key: SharedKey,
    log_type: String,
    time_generated_field: Option<String>,
    resource_id: Option<String>,
    http: reqwest::Client,
    engine: Engine,
}

impl fmt::Debug for DataCollectorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataCollectorClient")
            .field("url", &self.inner.url.as_str())
            .field("workspace_id", &self.inner.workspace_id)
            .field("key", &self.inner.key)
            .field("log_type", &self.inner.log_type)
            .finish_non_exhaustive()
    }
}

/// Builds a [`DataCollectorClient`].
#[derive(Debug)]
pub struct DataCollectorClientBuilder {
    workspace_id: String,
    key: SharedKey,
    log_type: String,
    cloud: Cloud,
    endpoint: Option<String>,
    time_generated_field: Option<String>,
    resource_id: Option<String>,
    max_in_flight: usize,
    retry: RetryPolicy,
    max_body: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    observer: Option<Arc<dyn SendObserver>>,
}

impl DataCollectorClient {
    /// Starts a builder for `workspace_id`, its shared key and the
    /// `Log-Type` (the table becomes `{log_type}_CL`).
    pub fn builder(
        workspace_id: impl Into<String>,
        key: SharedKey,
        log_type: impl Into<String>,
    ) -> DataCollectorClientBuilder {
        DataCollectorClientBuilder {
            workspace_id: workspace_id.into(),
            key,
            log_type: log_type.into(),
            cloud: Cloud::Public,
            endpoint: None,
            time_generated_field: None,
            resource_id: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry: RetryPolicy::default(),
            max_body: DATA_COLLECTOR_MAX_BODY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            observer: None,
        }
    }

    /// Sends rows, each serialised with serde_json as one JSON object.
    pub fn send<'a, T: Serialize>(
        &'a self,
        rows: &[T],
    ) -> impl Future<Output = SendReport> + Send + use<'a, T> {
        // Serialised before the future is built, so the future borrows
        // neither `rows` nor `T`.
        let rows = Rows::serialize(rows);
        async move { self.send_rows(&rows).await }
    }

    /// Sends newline-delimited JSON, one object per line.
    pub async fn send_ndjson(&self, ndjson: &[u8]) -> SendReport {
        let rows = Rows::from_ndjson(ndjson);
        self.send_rows(&rows).await
    }

    /// Sends prepared [`Rows`].
    pub async fn send_rows(&self, rows: &Rows<'_>) -> SendReport {
        for i in rows.valid_indices() {
            let row = rows.get(i);
            if row.len() > DATA_COLLECTOR_MAX_FIELD_BYTES && has_long_field(row) {
                tracing::warn!(
                    index = i,
                    "a field is longer than 32 KB; the service will truncate it"
                );
            }
        }
        self.inner.engine.run(&self.inner.as_ref(), rows).await
    }

    /// The request URL (safe to log).
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }
}

fn has_long_field(row: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(row) else {
        return false;
    };
    map.values().any(|v| match v {
        serde_json::Value::String(s) => s.len() > DATA_COLLECTOR_MAX_FIELD_BYTES,
        other => other.to_string().len() > DATA_COLLECTOR_MAX_FIELD_BYTES,
    })
}

impl DataCollectorClientBuilder {
    /// The cloud whose Data Collector host to use (default public).
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// Overrides the endpoint, e.g. `http://127.0.0.1:8080` for the emulator;
    /// `/api/logs` is appended.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The field of each row whose ISO 8601 value becomes `TimeGenerated`
    /// (header `time-generated-field`).
    pub fn time_generated_field(mut self, field: impl Into<String>) -> Self {
        self.time_generated_field = Some(field.into());
        self
    }

    /// The Azure resource id to associate (header `x-ms-AzureResourceId`).
    pub fn resource_id(mut self, id: impl Into<String>) -> Self {
        self.resource_id = Some(id.into());
        self
    }

    /// Requests in flight at once (default 4).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The largest body (default and maximum 30 MiB).
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body = n.clamp(16, DATA_COLLECTOR_MAX_BODY);
        self
    }

    /// The connect timeout.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// The whole-request timeout.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
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
    /// Fails for a bad `Log-Type`, a workspace id that is not a GUID-like
    /// token, or an endpoint that is not `https://` (or loopback `http://`).
    pub fn build(self) -> Result<DataCollectorClient, Error> {
        validate_log_type(&self.log_type)?;
        if self.workspace_id.is_empty()
            || !self
                .workspace_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return Err(Error::builder("the workspace id must be a GUID"));
        }
        if let Some(f) = &self.time_generated_field {
            validate_log_type(f).map_err(|_| {
                Error::builder(
                    "the time-generated-field must be a property name (letters, digits, '_')",
                )
            })?;
        }
        let base = match &self.endpoint {
            Some(e) => check_url(e, false)?
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            None => format!(
                "https://{}.{}",
                self.workspace_id,
                self.cloud.data_collector_suffix()
            ),
        };
        let url = reqwest::Url::parse(&format!(
            "{base}/api/logs?api-version={DATA_COLLECTOR_API_VERSION}"
        ))
        .map_err(|_| Error::builder("the endpoint is not a valid URL"))?;
        let http = reqwest::Client::builder()
            // A redirect is a configuration error, never followed: the signed rows would go
            // wherever `Location` points.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|e| Error::builder("cannot build the HTTP client").with_source(e))?;
        Ok(DataCollectorClient {
            inner: Arc::new(Inner {
                url,
                workspace_id: self.workspace_id,
                key: self.key,
                log_type: self.log_type,
                time_generated_field: self.time_generated_field,
                resource_id: self.resource_id,
                http,
                engine: Engine {
                    api: Api::DataCollector,
                    max_body: self.max_body,
                    // The Data Collector API documents no compression.
                    gzip_level: None,
                    max_in_flight: self.max_in_flight,
                    semaphore: Arc::new(Semaphore::new(self.max_in_flight)),
                    retry: self.retry,
                    limiter: None,
                    time_field: String::new(),
                    observer: self.observer,
                },
            }),
        })
    }
}

impl Sender for &Inner {
    async fn send(&self, body: &Body) -> Result<Answer, Error> {
        // Signed per attempt: the date must be current.
        let date = httpdate::fmt_http_date(SystemTime::now());
        let auth = authorization(
            &self.workspace_id,
            &self.key,
            body.bytes.len(),
            CONTENT_TYPE_JSON,
            &date,
        );
        let mut auth_value = reqwest::header::HeaderValue::from_str(&auth)
            .map_err(|_| Error::builder("the workspace id is not a valid header value"))?;
        auth_value.set_sensitive(true);
        let mut req = self
            .http
            .post(self.url.clone())
            .header(AUTHORIZATION, auth_value)
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON)
            .header("Log-Type", &self.log_type)
            .header("x-ms-date", &date)
            .body(body.bytes.clone());
        if let Some(f) = &self.time_generated_field {
            req = req.header("time-generated-field", f);
        }
        if let Some(r) = &self.resource_id {
            req = req.header("x-ms-AzureResourceId", r);
        }
        let resp = req.send().await.map_err(Error::transport)?;
        Ok(read_answer(resp).await)
    }
}
