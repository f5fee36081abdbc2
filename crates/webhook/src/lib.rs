/*!
Signed webhook delivery through a durable outbox: what sends an alert to a playbook (a Logic
App's HTTP trigger, or any webhook receiver).

- [`sign`]: pure signing and verification of the two forms, Standard Webhooks
  (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`, several
  keys for rotation) and GitHub's `X-Hub-Signature-256: sha256=<hex>`. Keys ([`Secret`]) are
  wiped on drop and never printed.
- [`EndpointUrl`]: a URL whose `Debug`/`Display` never show the query (a Logic App's `sig=` is
  a secret) nor user info.
- [`Outbox`]: one fsynced file per message; enqueue returns once the message is durable, a
  reopened outbox resumes its messages, and it is bounded in messages and bytes.
- [`Worker`]: the Tokio task that POSTs due messages with fresh signatures (same id on every
  attempt), retries 408/429/5xx/no answer on a schedule honouring `Retry-After`, disables an
  endpoint on `410 Gone`, and moves refused messages to `dead/`.
- [`MetricsSnapshot`]: counters per endpoint and answer class, with a Prometheus rendering.

# Example

Signing and verifying (Standard Webhooks, with the project's published test vector):

```
use mcas_webhook::sign::{self, Secret, StandardHeaders};

let key = Secret::parse_standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
let body = br#"{"test": 2432232314}"#;
let signature = sign::standard_signature_header(
    std::slice::from_ref(&key), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

// The receiving side: headers as received, the body's exact bytes, the time now.
let headers = StandardHeaders::from_pairs([
    ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
    ("webhook-timestamp", "1614265330"),
    ("webhook-signature", signature.as_str()),
]);
let now = 1614265330 + 60;
sign::verify_standard(std::slice::from_ref(&key), &headers, body, now, sign::DEFAULT_TOLERANCE_SECS)?;
// One changed byte, and it fails.
assert!(sign::verify_standard(&[key.clone()], &headers, b"{\"test\": 2432232315}", now, 300).is_err());
// Secrets never show.
assert_eq!(format!("{key:?}"), "Secret(<redacted>)");

// GitHub's form (GitHub's documented example).
let gh = Secret::from_bytes(b"It's a Secret to Everybody")?;
assert_eq!(
    sign::github_signature(&gh, b"Hello, World!"),
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
);
# Ok::<(), Box<dyn std::error::Error>>(())
```

Delivering (needs a receiver):

```no_run
# #[cfg(feature = "delivery")]
# async fn demo() -> Result<(), Box<dyn std::error::Error>> {
use std::sync::Arc;
use mcas_webhook::{DeliveryConfig, Endpoint, EndpointUrl, Format, Outbox, OutboxLimits, Secret, Worker};

let outbox = Arc::new(Outbox::open("/var/lib/mcas-forward/webhooks", OutboxLimits::default())?);
let endpoint = Endpoint::new(
    "soc-playbook",
    EndpointUrl::parse("https://example.com/hooks/alerts")?,
    Format::StandardWebhooks,
    vec![Secret::parse_standard(&std::fs::read_to_string("/etc/mcas-forward/playbook.key")?)?],
);
let worker = Worker::start(Arc::clone(&outbox), vec![endpoint], DeliveryConfig::default())?;
// Durable once this returns; the alert's stable id becomes `webhook-id`.
outbox.enqueue_with_id("soc-playbook", "alert-5b72f527", br#"{"AlertName":"Port scan"}"#)?;
// ...
worker.shutdown().await; // undelivered messages stay on disk for the next start
# Ok(())
# }
```
*/

pub mod sign;

#[cfg(feature = "delivery")]
mod metrics;
#[cfg(feature = "delivery")]
pub mod outbox;
#[cfg(feature = "delivery")]
mod url;
#[cfg(feature = "delivery")]
pub mod worker;

pub use sign::{Secret, SecretError, VerifyError, VerifyErrorKind};

#[cfg(feature = "delivery")]
pub use metrics::{EndpointSnapshot, MetricsSnapshot, StatusClass};
#[cfg(feature = "delivery")]
pub use outbox::{Enqueued, Outbox, OutboxError, OutboxLimits, OutboxSnapshot};
#[cfg(feature = "delivery")]
pub use url::{EndpointUrl, UrlError};
#[cfg(feature = "delivery")]
pub use worker::{DeliveryConfig, Endpoint, Format, MetricsHandle, Worker, WorkerError};
