/*!
A client for Azure Monitor's Logs Ingestion API (primary) and the legacy
HTTP Data Collector API, generic over [`serde::Serialize`].

The client respects every limit of the API:

- rows are packed into JSON array bodies of at most 1,000,000
  **uncompressed** bytes ([`batch::LOGS_INGESTION_MAX_BODY`]), then gzip'd;
  a row that cannot fit alone is never sent but returned as rejected;
- answers are classified by a pure function ([`classify`]): 2xx delivered,
  401 refresh the token once, 413 split in halves, 400
  `RecordsTimeRangeIsMoreThan30Minutes` split by event time, 400 codes
  naming the setup treated as configuration errors, 400
  `InvalidContentEncoding` rejecting the whole request at once, other 400
  bisected down to the bad rows (row by row where refused rows are dense),
  3xx/403/404 configuration errors retried slowly (redirects are never
  followed), 408/429/5xx and transport errors retried with full-jitter
  exponential backoff, never sooner than `Retry-After` nor than the backoff;
- at most [`MAX_ANSWER_BYTES`] of any answer body is read;
- an optional [`SendObserver`] is told of every HTTP attempt as it completes;
- the retry budget is the caller's ([`RetryPolicy`]), and every outcome comes
  back as data ([`SendReport`]);
- tokens come from a [`TokenCredential`] (client secret, client
  certificate, managed identity, workload identity) cached until five
  minutes before expiry (half-way, for tokens issued for less than ten
  minutes), with single-flight refresh; lifetimes are believed up to
  [`MAX_TOKEN_LIFETIME`];
- requests go out through a pool (default 4 in flight), optionally under a
  per-DCR [`RateLimit`]; plain `http://` is refused except to loopback.

# Example

Packing and signing are pure functions:

```
use mcas_loganalytics::batch::{Rows, pack, encode_array, gzip};
use mcas_loganalytics::{SharedKey, signature};

let ndjson = b"{\"DeviceVendor\":\"Contoso\",\"Message\":\"hello\"}\n";
let rows = Rows::from_ndjson(ndjson);
let packed = pack(&rows, &rows.valid_indices(), 1_000_000);
let mut body = Vec::new();
encode_array(&rows, &packed.batches[0], &mut body);
assert_eq!(body, br#"[{"DeviceVendor":"Contoso","Message":"hello"}]"#);
assert_eq!(&gzip(&body, 1)[..2], &[0x1f, 0x8b]);

// The Data Collector API signs the body's byte length.
let key = SharedKey::from_base64(
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
)?;
let sig = signature(&key, body.len(), "application/json", "Mon, 04 Apr 2016 08:00:00 GMT");
assert_eq!(sig, "pso6MJ61QTBY67epQ+0p6Y14BQKihuJf4QoFrKQykWA=");
# Ok::<(), Box<dyn std::error::Error>>(())
```

Sending, with a credential:

```no_run
use std::sync::Arc;
use mcas_loganalytics::{ClientSecretCredential, Cloud, LogsIngestionClient, RetryPolicy};

# async fn run() -> Result<(), Box<dyn std::error::Error>> {
let credential = ClientSecretCredential::new("tenant-id", "client-id", "secret", Cloud::Public)?;
let client = LogsIngestionClient::builder(
    "https://my-dce.westeurope-1.ingest.monitor.azure.com",
    "dcr-00000000000000000000000000000000",
    "Custom-CefForwarder",
)
.credential(Arc::new(credential))
.retry(RetryPolicy::unbounded())
.build()?;
let report = client
    .send(&[serde_json::json!({"TimeGenerated": "2026-01-01T00:00:00Z", "Message": "hi"})])
    .await;
assert_eq!(report.delivered_rows, 1);
# Ok(()) }
```

Delivery is at least once: a request that times out after the service
accepted it is sent again.
*/
#![deny(missing_docs)]

pub mod batch;
pub mod classify;

mod body;
mod cloud;
mod collector;
mod credential;
mod engine;
mod error;
mod ingestion;
mod limiter;
mod observer;
mod prepared;
mod report;
mod signature;

pub use body::MAX_ANSWER_BYTES;
pub use classify::{Action, Api, RetryPolicy};
pub use cloud::{AuthorityHost, Cloud};
pub use collector::{
    DATA_COLLECTOR_API_VERSION, DATA_COLLECTOR_MAX_FIELD_BYTES, DataCollectorClient,
    DataCollectorClientBuilder, validate_log_type,
};
pub use credential::{
    AccessToken, BoxFuture, ClientCertificateCredential, ClientSecretCredential,
    DEFAULT_IMDS_ENDPOINT, MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME, ManagedIdentityCredential,
    REFRESH_MARGIN, TokenCache, TokenCredential, WorkloadIdentityCredential,
};
pub use error::Error;
pub use ingestion::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_GZIP_LEVEL, DEFAULT_MAX_IN_FLIGHT, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TIME_FIELD, LOGS_INGESTION_API_VERSION, LogsIngestionClient,
    LogsIngestionClientBuilder,
};
pub use limiter::RateLimit;
pub use observer::SendObserver;
pub use prepared::{Prepared, PreparedBody, PreparedReport};
pub use report::{PendingRow, RejectReason, RejectedRow, RetryLater, SendReport};
pub use signature::{
    CONTENT_TYPE_JSON, DATA_COLLECTOR_RESOURCE, SharedKey, authorization, signature, string_to_sign,
};
