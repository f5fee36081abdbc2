//! `protocol = "kafka"`: a shipper's listener. It reads records from Kafka topics, hands them
//! to the workers a chunk at a time, and commits a partition's offset only once every
//! record up to it is durable (in the spool, or written by a local output and synced).
//!
//! Each chunk carries an [`Ack`]; its receiver resolves when every batch holding the chunk's
//! rows is stored. The listener keeps its chunks in read order and moves a partition's
//! durable offset forward only over the chunks at the front that are stored, so a crash
//! re-reads at most what was read since the last commit. When storing fails, the listener
//! goes back to the first record not stored and reads it again.
//!
//! In a consumer group, partitions move between shippers: before giving partitions up, the
//! listener commits what is durable of them, and it never commits for a partition it no
//! longer holds. With `partitions = [...]` it reads those partitions without joining the
//! group, and still commits under `group`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use super::{CHUNK, CHUNK_BYTES, Ctx, bytes_of};
use crate::ack::{Ack, Stored};
use crate::batch::Route;
use crate::config::{KafkaListen, KafkaStart, OversizeConfig};
use crate::frames::{Chunk, Msg};
use crate::metrics::{DropReason, Metrics};
use crate::output::kafka::{Context as ClientCtx, ROW_HEADER, client_config};

/// Chunks handed to the workers and not yet stored, before the listener stops reading (the
/// byte budget of `pipeline.max_queued_bytes` bounds the memory they hold first).
const MAX_PENDING: usize = 1024;

/// A chunk not full yet is handed over after this long without a record.
const LINGER: Duration = Duration::from_millis(2);

/// After storing failed, the listener waits this long before reading again.
const REWIND_PAUSE: Duration = Duration::from_secs(1);

/// The longest a stopping listener waits for its chunks to be stored before its last commit.
const DRAIN: Duration = Duration::from_secs(30);

/// Senders' address of records read from Kafka: they have no peer of their own.
const NO_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// A (topic, partition).
type Tp = (Arc<str>, i32);

/// The offsets to commit, shared with the rebalance callbacks.
#[derive(Debug, Default)]
struct Offsets {
    /// The partitions this listener holds now.
    owned: HashSet<Tp>,
    /// Per partition, the offset after the last durable record, not yet committed.
    durable: HashMap<Tp, i64>,
}

impl Offsets {
    /// The durable offsets of the partitions still held, taken for a commit.
    fn take(&mut self, only: Option<&HashSet<Tp>>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        let owned = &self.owned;
        self.durable.retain(|tp, off| {
            let wanted = only.is_none_or(|o| o.contains(tp));
            if !wanted {
                return true;
            }
            if owned.contains(tp) {
                let _ = tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(*off));
            }
            false
        });
        tpl
    }
}

/// The consumer's context: the shared client context, and the rebalance callbacks.
struct InputCtx {
    client: ClientCtx,
    offsets: Arc<Mutex<Offsets>>,
}

fn lock(m: &Mutex<Offsets>) -> std::sync::MutexGuard<'_, Offsets> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn tps(tpl: &TopicPartitionList) -> HashSet<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect()
}

impl ClientContext for InputCtx {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.client.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.client.error(error, reason);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.client.stats(statistics);
    }

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.client.generate_oauth_token(config)
    }
}

impl ConsumerContext for InputCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let metrics = self.client.metrics();
        metrics.kafka.rebalances.fetch_add(1, Relaxed);
        let revoked = tps(tpl);
        // Commit what is durable of the partitions given up, then stop holding them: what
        // was read of them and is not durable yet will be read again by their next holder.
        let commit = {
            let mut o = lock(&self.offsets);
            let commit = o.take(Some(&revoked));
            o.owned.retain(|tp| !revoked.contains(tp));
            commit
        };
        // Their lag is their next holder's to report.
        metrics
            .kafka
            .lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(t, p), _| !revoked.contains(&(Arc::from(t.as_str()), *p)));
        // Sent before the partitions are given up (the client sends requests in order);
        // not waited for: a commit waited for inside this callback never completes while
        // the group is rebalancing.
        if commit.count() > 0 {
            match consumer.commit(&commit, CommitMode::Async) {
                Ok(()) => metrics.kafka.commits.fetch_add(1, Relaxed),
                Err(e) => {
                    tracing::warn!("kafka: commit before a rebalance failed: {e}");
                    metrics.kafka.commit_errors.fetch_add(1, Relaxed)
                }
            };
        }
        tracing::info!(partitions = revoked.len(), "kafka: partitions revoked");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.client.metrics().kafka.rebalances.fetch_add(1, Relaxed);
            let got = tps(tpl);
            tracing::info!(partitions = got.len(), "kafka: partitions assigned");
            lock(&self.offsets).owned.extend(got);
        }
    }
}

/// A Kafka listener, created (not yet connected).
pub(crate) struct Input {
    consumer: StreamConsumer<InputCtx>,
    offsets: Arc<Mutex<Offsets>>,
    cfg: KafkaListen,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("kafka::Input")
            .field("group", &self.cfg.group)
            .field("topics", &self.cfg.topics)
            .finish_non_exhaustive()
    }
}

/// Create the consumer of a Kafka listener, and subscribe or assign.
pub(crate) fn bind(cfg: KafkaListen, metrics: Arc<Metrics>, at: &str) -> anyhow::Result<Input> {
    let mut c = client_config(&cfg.client, at)?;
    c.set("group.id", &cfg.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set(
            "auto.offset.reset",
            match cfg.start {
                KafkaStart::Earliest => "earliest",
                KafkaStart::Latest => "latest",
            },
        )
        // Larger fetches, fewer round trips: a collector's records hold many rows.
        .set("max.partition.fetch.bytes", "8388608")
        // When the records read ahead fill the client's queue, it fetches again after this
        // long (librdkafka's default, 1 s, made the shipper read in bursts while its outputs
        // were busy: half the throughput in the end-to-end harness).
        .set("fetch.queue.backoff.ms", "20")
        // Read ahead at most 16 MiB a partition (librdkafka's default is 64 MiB): the
        // records wait in the spool, not in memory.
        .set("queued.max.messages.kbytes", "16384")
        // Incremental rebalancing: a shipper joining or leaving moves only the partitions
        // that change hands; the others are read (and committed) on.
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Microsoft's advice for Event Hubs.
        .set("session.timeout.ms", "30000")
        .set("statistics.interval.ms", "5000");
    let offsets = Arc::new(Mutex::new(Offsets::default()));
    let ctx = InputCtx {
        client: ClientCtx::new(&cfg.client, metrics)?,
        offsets: offsets.clone(),
    };
    let consumer: StreamConsumer<InputCtx> = c
        .create_with_context(ctx)
        .with_context(|| format!("{at}: cannot create the Kafka consumer"))?;
    match &cfg.partitions {
        Some(parts) => {
            let topic = cfg.topics.first().map_or("", String::as_str);
            let mut tpl = TopicPartitionList::new();
            let mut o = lock(&offsets);
            for &p in parts {
                // Offset::Stored: the group's committed offset, else `start`.
                tpl.add_partition_offset(topic, p, Offset::Stored)
                    .with_context(|| format!("{at}: partition {p}"))?;
                o.owned.insert((Arc::from(topic), p));
            }
            drop(o);
            consumer
                .assign(&tpl)
                .with_context(|| format!("{at}: cannot assign the partitions"))?;
        }
        None => {
            let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
            consumer
                .subscribe(&topics)
                .with_context(|| format!("{at}: cannot subscribe"))?;
        }
    }
    Ok(Input {
        consumer,
        offsets,
        cfg,
    })
}

/// A chunk handed to the workers, and the offsets it covers.
struct Pending {
    stored: Stored,
    /// Per partition: the first offset in the chunk, and the one after its last.
    spans: Vec<(Tp, i64, i64)>,
}

/// The chunk being filled.
#[derive(Default)]
struct Filling {
    msgs: Vec<Msg>,
    bytes: usize,
    rows: Option<Route>,
    spans: Vec<(Tp, i64, i64)>,
}

impl Filling {
    fn add_offset(&mut self, tp: &Tp, offset: i64) {
        match self.spans.iter_mut().find(|(t, _, _)| t == tp) {
            Some(span) => span.2 = offset + 1,
            None => self.spans.push((tp.clone(), offset, offset + 1)),
        }
    }
}

/// Read until `stop`, then hand over what was read, wait for it to be stored, and commit.
pub(super) async fn run(ctx: Arc<Ctx>, input: Input) {
    let Input {
        consumer,
        offsets,
        cfg,
    } = input;
    // Shared with the commits, which run on a blocking thread: a commit waits for the group
    // coordinator, which answers after any rebalance in progress, and reading goes on
    // meanwhile.
    let consumer = Arc::new(consumer);
    let mut committing: Option<tokio::task::JoinHandle<()>> = None;
    let m = &ctx.metrics;
    let max = usize::try_from(ctx.cfg.max_message_bytes.0).unwrap_or(usize::MAX);
    let truncate = ctx.cfg.oversize == OversizeConfig::Truncate;
    let topics: Vec<Arc<str>> = cfg.topics.iter().map(|t| Arc::from(t.as_str())).collect();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut filling = Filling::default();
    let mut commit_tick = tokio::time::interval(cfg.commit_interval.0);
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let linger = tokio::time::sleep(LINGER);
    tokio::pin!(linger);
    loop {
        tokio::select! {
            biased;
            () = ctx.stop.cancelled() => break,
            r = async {
                match pending.front_mut() {
                    Some(p) => (&mut p.stored).await,
                    None => std::future::pending().await,
                }
            }, if !pending.is_empty() => {
                let Some(done) = pending.pop_front() else { continue };
                if r == Ok(true) {
                    let mut o = lock(&offsets);
                    for (tp, _, next) in done.spans {
                        let e = o.durable.entry(tp).or_insert(next);
                        *e = (*e).max(next);
                    }
                } else {
                    rewind(&consumer, &ctx.metrics, done, &mut pending, &mut filling).await;
                }
            }
            _ = commit_tick.tick() => {
                // One commit at a time; the next tick carries what a slow one did not.
                if committing.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
                    let (c, o, m) = (consumer.clone(), offsets.clone(), ctx.metrics.clone());
                    committing = Some(tokio::task::spawn_blocking(move || commit(&c, &o, &m)));
                }
            }
            msg = consumer.recv(), if pending.len() < MAX_PENDING => {
                let msg = match msg {
                    Ok(msg) => msg,
                    Err(e) => {
                        tracing::warn!("kafka: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                m.kafka.consumed.fetch_add(1, Relaxed);
                let rows = msg.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == ROW_HEADER)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(Route::from_str)
                });
                let tp = (
                    topics
                        .iter()
                        .find(|t| ***t == *msg.topic())
                        .cloned()
                        .unwrap_or_else(|| Arc::from(msg.topic())),
                    msg.partition(),
                );
                let offset = msg.offset();
                let payload = msg.payload().unwrap_or_default();
                m.received_bytes.fetch_add(payload.len() as u64, Relaxed);
                // A raw line over max_message_bytes is cut or dropped as on any listener; a
                // mapped row is taken whole (its collector bounded it).
                let oversize = payload.len() > max && rows.is_none();
                let (data, truncated) = match (oversize, truncate) {
                    (true, true) => (Bytes::copy_from_slice(&payload[..max]), true),
                    (true, false) => (Bytes::new(), false),
                    (false, _) => (Bytes::copy_from_slice(payload), false),
                };
                drop(msg);
                if filling.rows != rows && !filling.msgs.is_empty()
                    && !hand_over(&ctx, &mut filling, &mut pending).await
                {
                    return;
                }
                filling.rows = rows;
                filling.add_offset(&tp, offset);
                if data.is_empty() {
                    // Oversize under `oversize = "discard"` (counted), or an empty record:
                    // nothing to store; its offset is covered by the chunk it sits in.
                    if oversize {
                        m.count_drop(DropReason::Oversize, 1);
                    }
                } else if rows.is_some() {
                    // A collector's record: one or more rows, one per line.
                    filling.bytes += data.len();
                    let mut n = 0;
                    for row in data.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
                        filling.msgs.push(Msg { data: data.slice_ref(row), peer: NO_PEER, truncated: false });
                        n += 1;
                    }
                    m.kafka.consumed_rows.fetch_add(n, Relaxed);
                } else {
                    filling.bytes += data.len();
                    filling.msgs.push(Msg { data, peer: NO_PEER, truncated });
                }
                if (filling.msgs.len() >= CHUNK || filling.bytes >= CHUNK_BYTES)
                    && !hand_over(&ctx, &mut filling, &mut pending).await
                {
                    return;
                }
                linger.as_mut().reset(tokio::time::Instant::now() + LINGER);
            }
            () = &mut linger, if !filling.spans.is_empty() => {
                if !hand_over(&ctx, &mut filling, &mut pending).await {
                    return;
                }
            }
        }
    }
    // Stopping: hand over what was read, wait for it to be stored, commit it.
    if !hand_over(&ctx, &mut filling, &mut pending).await {
        return;
    }
    let deadline = tokio::time::Instant::now() + DRAIN;
    while let Some(p) = pending.pop_front() {
        match tokio::time::timeout_at(deadline, p.stored).await {
            Ok(Ok(true)) => {
                let mut o = lock(&offsets);
                for (tp, _, next) in p.spans {
                    let e = o.durable.entry(tp).or_insert(next);
                    *e = (*e).max(next);
                }
            }
            // Not stored, or not in time: it is read again at the next start.
            _ => break,
        }
    }
    if let Some(c) = committing.take() {
        let _ = c.await;
    }
    let (c, o, m) = (consumer.clone(), offsets.clone(), ctx.metrics.clone());
    let _ = tokio::task::spawn_blocking(move || commit(&c, &o, &m)).await;
}

/// Hand the chunk being filled to a worker. False when the workers are gone.
async fn hand_over(ctx: &Ctx, filling: &mut Filling, pending: &mut VecDeque<Pending>) -> bool {
    let f = std::mem::take(filling);
    if f.spans.is_empty() {
        return true;
    }
    let (ack, stored) = Ack::unhurried();
    pending.push_back(Pending {
        stored,
        spans: f.spans,
    });
    if f.msgs.is_empty() {
        // Nothing to store (every record was settled by policy): durable at once.
        ack.confirm();
        return true;
    }
    ctx.metrics.received.fetch_add(f.msgs.len() as u64, Relaxed);
    let budget = ctx.workers.budget.acquire(bytes_of(&f.msgs)).await;
    let chunk = Chunk {
        listener: ctx.index,
        received_at: jiff::Timestamp::now(),
        msgs: f.msgs,
        _budget: budget,
        ack: Some(ack),
        rows: f.rows,
    };
    ctx.workers.send(chunk).await.is_ok()
}

/// Storing the chunk `failed` failed: forget it and every chunk after it, and read their
/// partitions again from the first record not stored.
async fn rewind(
    consumer: &StreamConsumer<InputCtx>,
    metrics: &Metrics,
    failed: Pending,
    pending: &mut VecDeque<Pending>,
    filling: &mut Filling,
) {
    metrics.kafka.rewinds.fetch_add(1, Relaxed);
    let mut from: HashMap<Tp, i64> = HashMap::new();
    let later = std::mem::take(pending);
    let current = std::mem::take(filling);
    for (tp, first, _) in std::iter::once(failed)
        .chain(later)
        .flat_map(|p| p.spans)
        .chain(current.spans)
    {
        let e = from.entry(tp).or_insert(first);
        *e = (*e).min(first);
    }
    tracing::warn!(
        partitions = from.len(),
        "kafka: records could not be stored; reading them again"
    );
    tokio::time::sleep(REWIND_PAUSE).await;
    for ((topic, partition), offset) in from {
        if let Err(e) = consumer.seek(
            &topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(5),
        ) {
            tracing::error!(%topic, partition, offset, "kafka: cannot go back to records not stored: {e}");
        }
    }
}

/// Commit the durable offsets of the partitions held, and wait for the answer (a round trip
/// to the group coordinator, or longer during a rebalance), so that the counters say what
/// the broker took. Runs on a blocking thread.
fn commit(consumer: &StreamConsumer<InputCtx>, offsets: &Mutex<Offsets>, metrics: &Metrics) {
    let tpl = lock(offsets).take(None);
    if tpl.count() == 0 {
        return;
    }
    let r = consumer.commit(&tpl, CommitMode::Sync);
    match r {
        Ok(()) => {
            metrics.kafka.commits.fetch_add(1, Relaxed);
        }
        Err(e) => {
            tracing::warn!("kafka: offset commit failed: {e}");
            metrics.kafka.commit_errors.fetch_add(1, Relaxed);
            // Put them back: the next commit carries them.
            let mut o = lock(offsets);
            for e in tpl.elements() {
                if let Offset::Offset(off) = e.offset() {
                    let d = o
                        .durable
                        .entry((Arc::from(e.topic()), e.partition()))
                        .or_insert(off);
                    *d = (*d).max(off);
                }
            }
        }
    }
}
