//! `kind = "kafka"`: a collector's output. Rows of one key travel together, up to
//! `rows_per_record` of them (as NDJSON) in a record, produced by an idempotent producer with
//! `acks=all`; a batch leaves the spool only when the brokers have
//! acknowledged every record in it, and is sent again (as any output's) until then.
//!
//! This module also holds what the Kafka listener shares with the output: the client
//! settings of `brokers`, TLS and SASL (Azure Event Hubs' Kafka endpoint among them), and
//! the client context that fetches OAUTHBEARER tokens, logs through `tracing` and keeps
//! the consumer lag. The client is librdkafka, through `rdkafka`, built from the source that
//! crate ships.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rdkafka::ClientConfig;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

use futures_util::future::BoxFuture;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::batch::Route;
use crate::config::{KafkaClient, KafkaKey, KafkaOutputConfig, Sasl};
use crate::metrics::Metrics;
use crate::output::{Destination, RouteNames, Sent};

/// The largest request the Event Hubs Kafka endpoint takes; a larger one closes the
/// connection.
pub(crate) const EVENT_HUBS_MAX_REQUEST: usize = 1_046_528;

/// The largest record a Kafka output produces (payload, key and headers). librdkafka may
/// let a request exceed `message.max.bytes` by one record, so the request cap is
/// [`EVENT_HUBS_MAX_REQUEST`] less this.
pub(crate) const MAX_RECORD: usize = 64 * 1024;

/// Room in [`MAX_RECORD`] for the key, the headers and the record's own framing.
const RECORD_OVERHEAD: usize = 1024;

/// The largest row a Kafka output sends as one record.
pub(crate) const MAX_ROW: usize = MAX_RECORD - RECORD_OVERHEAD;

/// `message.max.bytes`: the producer's request cap, under Event Hubs' limit by one record.
pub(crate) const MAX_REQUEST: usize = EVENT_HUBS_MAX_REQUEST - MAX_RECORD;

/// The header a collector sets on the rows it produces: its value is the route
/// (`csl` or `syslog`). A record without it is a raw syslog line.
pub(crate) const ROW_HEADER: &str = "mcas-row";

/// The Event Hubs scope of a namespace's tokens, from its first broker's host.
pub(crate) fn event_hubs_scope(brokers: &[String]) -> String {
    let host = brokers
        .first()
        .and_then(|b| b.rsplit_once(':'))
        .map_or("", |(h, _)| h);
    if host.ends_with(".servicebus.windows.net") {
        format!("https://{host}/.default")
    } else {
        "https://eventhubs.azure.net/.default".to_owned()
    }
}

/// The client settings every Kafka client of the forwarder gets: the brokers, TLS, SASL,
/// and Microsoft's advice for Event Hubs, which suits any broker (idle connections closed
/// before Azure drops them at 240 s, metadata refreshed as often). `at` names the table.
pub(crate) fn client_config(c: &KafkaClient, at: &str) -> anyhow::Result<ClientConfig> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", c.brokers.join(","))
        .set("client.id", "mcas-forward")
        .set("connections.max.idle.ms", "180000")
        .set("metadata.max.age.ms", "180000")
        .set("socket.keepalive.enable", "true")
        .set("log.connection.close", "false");
    let protocol = match (c.sasl.is_some(), c.uses_tls()) {
        (false, false) => "plaintext",
        (false, true) => "ssl",
        (true, false) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    cfg.set("security.protocol", protocol);
    if let Some(ca) = &c.ca_file {
        cfg.set("ssl.ca.location", ca.to_string_lossy().into_owned());
    }
    match c.sasl {
        Some(Sasl::Plain) => {
            let secret = c.connection_string(at)?;
            cfg.set("sasl.mechanisms", "PLAIN")
                .set("sasl.username", "$ConnectionString")
                .set("sasl.password", secret.expose());
        }
        Some(Sasl::Oauthbearer) => {
            cfg.set("sasl.mechanisms", "OAUTHBEARER");
        }
        None => {}
    }
    Ok(cfg)
}

/// The client context: tokens for OAUTHBEARER, librdkafka's log lines in `tracing`, and
/// the consumer lag from its statistics.
pub(crate) struct Context {
    metrics: Arc<Metrics>,
    /// `sasl = "oauthbearer"`: the credential, its scope, and the runtime to fetch with.
    token: Option<TokenSource>,
}

struct TokenSource {
    credential: Arc<dyn mcas_loganalytics::TokenCredential>,
    scope: String,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("kafka::Context")
            .field("oauthbearer", &self.token.is_some())
            .finish()
    }
}

impl Context {
    /// The context of a client of `c`; builds the credential of `sasl = "oauthbearer"`.
    pub(crate) fn new(c: &KafkaClient, metrics: Arc<Metrics>) -> anyhow::Result<Context> {
        let token = match (c.sasl, &c.auth) {
            (Some(Sasl::Oauthbearer), Some(auth)) => Some(TokenSource {
                credential: crate::output::azure::credential(auth)?,
                scope: auth
                    .scope
                    .clone()
                    .unwrap_or_else(|| event_hubs_scope(&c.brokers)),
                runtime: tokio::runtime::Handle::try_current()
                    .context("the Kafka client needs the runtime for its tokens")?,
            }),
            _ => None,
        };
        Ok(Context { metrics, token })
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl ClientContext for Context {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(facility = fac, "kafka: {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "kafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility = fac, "kafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, "kafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!("kafka: {error}: {reason}");
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut lag = self
            .metrics
            .kafka
            .lag
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // -1 is librdkafka's internal partition; a negative lag is "not known yet".
                if partition >= 0 && p.consumer_lag >= 0 {
                    lag.insert((topic.clone(), partition), p.consumer_lag);
                }
            }
        }
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let Some(t) = &self.token else {
            return Err("this Kafka client has no OAUTHBEARER credential".into());
        };
        // librdkafka calls this on its own thread, never on the runtime's.
        let token = t
            .runtime
            .block_on(t.credential.get_token(&t.scope))
            .map_err(|e| format!("token for {}: {e}", t.scope))?;
        self.metrics.token_refreshes.fetch_add(1, Relaxed);
        let lifetime_ms = token
            .expires_at()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        Ok(OAuthToken {
            token: token.secret().to_owned(),
            principal_name: "mcas-forward".to_owned(),
            lifetime_ms: i64::try_from(lifetime_ms).unwrap_or(i64::MAX),
        })
    }
}

/// A Kafka output: the producer and where its records go.
pub(crate) struct Kafka {
    producer: FutureProducer<Context>,
    topic: String,
    key: KafkaKey,
    rows_per_record: usize,
    /// The topic, for each route the output takes (spool files name their route by it).
    csl: Option<String>,
    syslog: Option<String>,
    describe: String,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("topic", &self.topic)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Kafka {
    /// The producer of `[output]` `o` (it connects when the first batch is sent).
    pub(crate) fn new(
        o: &KafkaOutputConfig,
        names: RouteNames<'_>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Kafka> {
        let mut cfg = client_config(&o.client, "output")?;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string();
        cfg.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", o.compression.as_str())
            // gzip at level 1: about four times the speed of zlib's default level 6, for
            // a little more on the wire (lz4 ignores it).
            .set("compression.level", "1")
            .set("message.max.bytes", MAX_REQUEST.to_string())
            .set("batch.size", MAX_REQUEST.to_string())
            .set("linger.ms", "5")
            .set("request.timeout.ms", ms(o.request_timeout.0))
            .set("message.timeout.ms", ms(o.retry_budget.0))
            // What the producer holds unsent: the spool holds the rest.
            .set("queue.buffering.max.kbytes", "65536");
        let ctx = Context::new(&o.client, metrics.clone())?;
        let producer: FutureProducer<Context> = cfg
            .create_with_context(ctx)
            .context("output: cannot create the Kafka producer")?;
        let describe = format!(
            "kafka topic {} at {} (key {}, {} compression, acks=all, idempotent{})",
            o.topic,
            o.client.brokers.join(","),
            match o.key {
                KafkaKey::Host => "host",
                KafkaKey::Vendor => "vendor",
                KafkaKey::None => "none",
            },
            o.compression.as_str(),
            match o.client.sasl {
                Some(Sasl::Plain) => ", SASL PLAIN",
                Some(Sasl::Oauthbearer) => ", SASL OAUTHBEARER",
                None => "",
            }
        );
        Ok(Kafka {
            producer,
            topic: o.topic.clone(),
            key: o.key,
            rows_per_record: o.rows_per_record,
            csl: names.csl.map(|_| o.topic.clone()),
            syslog: names.syslog.map(|_| o.topic.clone()),
            describe,
            metrics,
        })
    }

    async fn produce(&self, route: Route, ndjson: &[u8]) -> Sent {
        let m = &self.metrics.kafka;
        let mut sent = Sent::default();
        // Rows of one key go together, in their order, up to `rows_per_record` rows and
        // MAX_ROW bytes a record.
        let mut records: Vec<Packed<'_>> = Vec::new();
        // Per key: the rows of its record being filled, and their bytes.
        let mut open: HashMap<Option<&[u8]>, Filling<'_>> = HashMap::new();
        for row in ndjson.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
            if row.len() > MAX_ROW {
                m.refused.fetch_add(1, Relaxed);
                sent.rejected.push((
                    row.to_vec(),
                    format!(
                        "row of {} bytes: a Kafka record holds at most {MAX_ROW} (the request cap of Event Hubs)",
                        row.len()
                    ),
                ));
                continue;
            }
            let key = row_key(row, self.key);
            let (rows, bytes) = open.entry(key).or_default();
            if !rows.is_empty()
                && (rows.len() >= self.rows_per_record || *bytes + 1 + row.len() > MAX_ROW)
            {
                records.push((key, std::mem::take(rows)));
                *bytes = 0;
            }
            *bytes += row.len() + 1;
            rows.push(row);
        }
        records.extend(open.into_iter().map(|(k, (rows, _))| (k, rows)));
        let mut pending = Vec::with_capacity(records.len());
        let mut payload = Vec::new();
        for (key, rows) in records {
            if rows.is_empty() {
                continue;
            }
            payload.clear();
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    payload.push(b'\n');
                }
                payload.extend_from_slice(row);
            }
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: ROW_HEADER,
                value: Some(route.as_str()),
            });
            let mut record = FutureRecord::to(&self.topic)
                .payload(&payload[..])
                .headers(headers);
            if let Some(k) = key {
                record = record.key(k);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        m.produced.fetch_add(rows.len() as u64, Relaxed);
                        m.records.fetch_add(1, Relaxed);
                        pending.push((rows, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // The producer's queue is full: wait for it to drain a little.
                        record = r;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => {
                        retry(&mut sent, &rows, &e);
                        break;
                    }
                }
            }
        }
        for (rows, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => sent.delivered += rows.len(),
                Ok(Err((e, _))) if refused_for_good(&e) => {
                    m.refused.fetch_add(rows.len() as u64, Relaxed);
                    for row in rows {
                        sent.rejected
                            .push((row.to_vec(), format!("refused by Kafka: {e}")));
                    }
                }
                Ok(Err((e, _))) => retry(&mut sent, &rows, &e),
                Err(_) => retry(&mut sent, &rows, &"the producer stopped"),
            }
        }
        m.acknowledged.fetch_add(sent.delivered as u64, Relaxed);
        m.retries.fetch_add(sent.retry_rows as u64, Relaxed);
        sent
    }
}

/// A record's key and its rows.
type Packed<'a> = (Option<&'a [u8]>, Vec<&'a [u8]>);

/// The rows of a record being filled, and their bytes.
type Filling<'a> = (Vec<&'a [u8]>, usize);

/// Rows not acknowledged: they go back to the spool with their batch's other such rows.
fn retry(sent: &mut Sent, rows: &[&[u8]], why: &dyn std::fmt::Display) {
    for row in rows {
        sent.retry.extend_from_slice(row);
        sent.retry.push(b'\n');
    }
    sent.retry_rows += rows.len();
    if sent.last_error.is_none() {
        sent.last_error = Some(why.to_string());
    }
}

/// Whether a delivery error is about the record itself (sending it again cannot help).
fn refused_for_good(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessage
        )
    )
}

/// The key of a row: the string value of its `Computer` or `DeviceVendor`, as written
/// (escapes included: the key only needs to be stable). Rows are written compact by the
/// mapper, so the field is `"Name":"value"`.
pub(crate) fn row_key(row: &[u8], key: KafkaKey) -> Option<&[u8]> {
    let field: &[u8] = match key {
        KafkaKey::Host => b"\"Computer\":\"",
        KafkaKey::Vendor => b"\"DeviceVendor\":\"",
        KafkaKey::None => return None,
    };
    let start = memchr::memmem::find(row, field)? + field.len();
    let rest = row.get(start..)?;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b'"' => return rest.get(..i).map(|k| &k[..k.len().min(255)]),
            _ => i += 1,
        }
    }
    None
}

impl Destination for Kafka {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn spooled(&self) -> bool {
        true
    }

    fn stream_name(&self, route: Route) -> Option<&str> {
        match route {
            Route::Csl => self.csl.as_deref(),
            Route::Syslog => self.syslog.as_deref(),
        }
    }

    fn send<'a>(
        &'a self,
        route: Route,
        ndjson: &'a [u8],
        _rows: usize,
    ) -> BoxFuture<'a, anyhow::Result<Sent>> {
        Box::pin(async move { Ok(self.produce(route, ndjson).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(extra: impl FnOnce(&mut KafkaClient)) -> KafkaClient {
        let mut c = KafkaClient {
            brokers: vec!["ns.servicebus.windows.net:9093".to_owned()],
            ..KafkaClient::default()
        };
        extra(&mut c);
        c
    }

    #[test]
    fn the_request_cap_stays_under_event_hubs_limit_by_one_record() {
        assert_eq!(MAX_REQUEST + MAX_RECORD, EVENT_HUBS_MAX_REQUEST);
        const { assert!(MAX_ROW + RECORD_OVERHEAD <= MAX_RECORD) };
    }

    #[test]
    fn event_hubs_plain_uses_the_connection_string_over_tls() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cs");
        std::fs::write(
            &f,
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s\n",
        )
        .unwrap();
        let c = client(|c| {
            c.sasl = Some(Sasl::Plain);
            c.connection_string_file = Some(f.clone());
        });
        let cfg = client_config(&c, "output").unwrap();
        assert_eq!(cfg.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(cfg.get("sasl.mechanisms"), Some("PLAIN"));
        assert_eq!(cfg.get("sasl.username"), Some("$ConnectionString"));
        assert_eq!(
            cfg.get("sasl.password"),
            Some(
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s"
            )
        );
        assert_eq!(cfg.get("connections.max.idle.ms"), Some("180000"));
        assert_eq!(cfg.get("metadata.max.age.ms"), Some("180000"));
    }

    #[test]
    fn no_sasl_and_no_tls_is_plaintext() {
        let c = client(|_| {});
        let cfg = client_config(&c, "output").unwrap();
        assert_eq!(cfg.get("security.protocol"), Some("plaintext"));
        assert_eq!(cfg.get("sasl.mechanisms"), None);
    }

    #[test]
    fn keys_are_the_host_or_the_vendor_as_written() {
        let row = br#"{"TimeGenerated":"2026-01-01T00:00:00Z","Computer":"web\"01","DeviceVendor":"Microsoft"}"#;
        assert_eq!(row_key(row, KafkaKey::Host), Some(&br#"web\"01"#[..]));
        assert_eq!(row_key(row, KafkaKey::Vendor), Some(&b"Microsoft"[..]));
        assert_eq!(row_key(row, KafkaKey::None), None);
        assert_eq!(row_key(br#"{"Computer":"cut"#, KafkaKey::Host), None);
        assert_eq!(row_key(br#"{"Message":"x"}"#, KafkaKey::Vendor), None);
    }

    #[test]
    fn the_scope_follows_the_namespace() {
        assert_eq!(
            event_hubs_scope(&["ns.servicebus.windows.net:9093".to_owned()]),
            "https://ns.servicebus.windows.net/.default"
        );
        assert_eq!(
            event_hubs_scope(&["127.0.0.1:9092".to_owned()]),
            "https://eventhubs.azure.net/.default"
        );
    }
}
