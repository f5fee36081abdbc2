//! The spooled path of the network outputs: batches are written to the spool (durably),
//! then sent by a supervised pool of senders, and their files removed once every row is
//! delivered or dead-lettered.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::Destination;
use super::Part;
#[cfg(test)]
use super::Sent;
use crate::batch::Batch;
#[cfg(test)]
use crate::batch::Route;
use crate::deadletter::{DeadLetter, EntryOut};
use crate::metrics::DropReason;
use crate::metrics::{Metrics, OutputMetrics};
use crate::spool::{Format, ReadOutcome, Spool, Spooled};

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
///
/// A batch that comes as NDJSON (the alert rules' batches; the workers prepare theirs) is
/// turned into its spool file here first, off the runtime's threads.
pub(crate) async fn run_spooler(
    spool: Arc<Spool>,
    mut rx: mpsc::Receiver<Batch>,
    queue: mpsc::UnboundedSender<Spooled>,
    metrics: Arc<Metrics>,
    preparer: super::Preparer,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(SPOOL_WRITES_IN_FLIGHT));
    let mut writes = tokio::task::JoinSet::new();
    while let Some(mut b) = rx.recv().await {
        // Wait for a free slot before taking room in the spool, so a batch is never
        // admitted and then parked in memory.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let rows = b.rows as u64;
        if !b.prepared {
            let p = preparer.clone();
            b = match tokio::task::spawn_blocking(move || {
                p.prepare(&mut b);
                b
            })
            .await
            {
                Ok(b) => b,
                Err(e) => {
                    metrics.pending_rows.fetch_sub(rows, Relaxed);
                    tracing::error!(rows, error = %e, "preparing a batch failed; batch lost");
                    continue;
                }
            };
        }
        // RELP sessions waiting on this batch: confirmed once its file is durable; a batch
        // dropped or lost fails them (the shares are dropped unconfirmed).
        let acks = std::mem::take(&mut b.acks);
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
                    crate::ack::confirm_all(acks);
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

/// A spooled output's [`SendBatch`]: send, dead-letter refusals, delete or rewrite.
#[derive(Debug)]
pub(crate) struct SpooledSend {
    /// The destination, which a reload may replace.
    pub(crate) dest: super::DestinationCell,
    /// The output's own series.
    pub(crate) out: Arc<OutputMetrics>,
    pub(crate) spool: Arc<Spool>,
    pub(crate) dead: Arc<DeadLetter>,
    pub(crate) metrics: Arc<Metrics>,
}

impl SendBatch for SpooledSend {
    fn send<'a>(
        &'a self,
        s: &'a mut Spooled,
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(send_one(
            self.dest.current(),
            &self.out,
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
    dest: Arc<dyn Destination>,
    out: &OutputMetrics,
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
    match s.format {
        Format::Ndjson => send_ndjson(dest, out, spool, s, dead, metrics, data).await,
        Format::Batch => send_bodies(dest, out, spool, s, dead, metrics, data).await,
    }
}

/// A file of the first format: NDJSON rows, packed and compressed by the client.
async fn send_ndjson(
    dest: Arc<dyn Destination>,
    out: &OutputMetrics,
    spool: &Spool,
    s: &mut Spooled,
    dead: &DeadLetter,
    metrics: &Metrics,
    data: Vec<u8>,
) -> anyhow::Result<bool> {
    // A network destination answers every row; Err is a local failure, retried later.
    let sent = dest.send(s.route, &data, 0).await?;
    if sent.delivered > 0 {
        let bytes = sent.delivered_bytes(data.len()) as u64;
        out.delivered(metrics, sent.delivered as u64, bytes, bytes);
    }
    dead_letter(dest.as_ref(), s, dead, &sent.rejected);
    out.rejected_rows
        .fetch_add(sent.rejected.len() as u64, Relaxed);
    if sent.retry_rows == 0 {
        spool.remove(s);
        dest.delivered(spool.bytes() == 0);
        return Ok(true);
    }
    unavailable(out, metrics, sent.retry_rows, sent.last_error.as_deref());
    if sent.retry.len() != data.len() {
        spool.rewrite(s, &sent.retry)?;
    }
    Ok(false)
}

/// A file of format 2: each request body goes out as it is, all at once (the client's
/// in-flight limit paces them). What is left (bodies not delivered within the retry
/// budget, rows left over from a narrowed refusal) is written back in place of the file.
async fn send_bodies(
    dest: Arc<dyn Destination>,
    out: &OutputMetrics,
    spool: &Spool,
    s: &mut Spooled,
    dead: &DeadLetter,
    metrics: &Metrics,
    data: Vec<u8>,
) -> anyhow::Result<bool> {
    let data = bytes::Bytes::from(data);
    let file = match mcas_spool::decode(&data) {
        Ok(f) => f,
        Err(e) => {
            spool.quarantine(s, &e).await;
            return Ok(true);
        }
    };
    let route = s.route;
    let sends = file.bodies.iter().map(|b| {
        let dest = dest.clone();
        let part = data.slice_ref(b.data);
        let (kind, rows, raw_len) = (b.kind, b.rows as usize, b.raw_len as usize);
        async move {
            match kind {
                mcas_spool::BodyKind::Ndjson => dest.send(route, &part, rows).await,
                _ => {
                    let gz = kind == mcas_spool::BodyKind::GzipArray;
                    let body = mcas_loganalytics::PreparedBody::new(part, gz, rows, raw_len);
                    dest.send_prepared(route, body).await
                }
            }
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut left: Vec<Part> = Vec::new();
    let mut retry_rows = 0usize;
    let mut last_error = None;
    let mut failure = None;
    let (mut rows, mut raw, mut wire) = (0u64, 0u64, 0u64);
    for (i, (b, r)) in file.bodies.iter().zip(results).enumerate() {
        let sent = match r {
            Ok(sent) => sent,
            Err(e) => {
                // A local failure: the body stays as it is.
                left.push(Part::stored(b, &data));
                retry_rows += b.rows as usize;
                failure = Some(e);
                continue;
            }
        };
        if sent.delivered > 0 {
            rows += sent.delivered as u64;
            if sent.wire_bytes > 0 {
                raw += sent.raw_bytes as u64;
                wire += sent.wire_bytes as u64;
            } else {
                // Rows sent through the row path: their uncompressed size on both counts.
                let n = if b.kind == mcas_spool::BodyKind::Ndjson {
                    sent.delivered_bytes(b.data.len())
                } else {
                    sent.delivered_bytes(b.raw_len as usize)
                };
                raw += n as u64;
                wire += n as u64;
            }
        }
        dead_letter(dest.as_ref(), s, dead, &sent.rejected);
        out.rejected_rows
            .fetch_add(sent.rejected.len() as u64, Relaxed);
        if let Some(why) = &sent.corrupt {
            spool.quarantine_body(s, i, b.data, why);
            metrics.count_drop(DropReason::SpoolCorrupt, u64::from(b.rows));
        }
        if sent.keep {
            left.push(Part::stored(b, &data));
        } else if sent.retry_rows > 0 {
            left.push(Part::ndjson(sent.retry.into(), sent.retry_rows));
        }
        retry_rows += sent.retry_rows;
        if sent.last_error.is_some() {
            last_error = sent.last_error;
        }
    }
    if rows > 0 {
        out.delivered(metrics, rows, raw, wire);
    }
    if left.is_empty() {
        spool.remove(s);
        dest.delivered(spool.bytes() == 0);
        return Ok(true);
    }
    unavailable(out, metrics, retry_rows, last_error.as_deref());
    if left.len() != file.bodies.len()
        || left
            .iter()
            .zip(&file.bodies)
            .any(|(l, b)| l.rows != b.rows as usize)
    {
        let name = file.output.to_owned();
        spool.rewrite(s, &super::spool_file(&name, route, &left))?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(false),
    }
}

/// The output is failing: what is left stays spooled.
fn unavailable(out: &OutputMetrics, metrics: &Metrics, rows: usize, error: Option<&str>) {
    metrics.set_reachable(out, false);
    tracing::warn!(
        output = %out.name,
        rows,
        error = error.unwrap_or("transient failure"),
        "output unavailable; rows stay spooled and will be retried"
    );
}

/// Dead-letter the rows the output refused for good, with their reasons.
fn dead_letter(
    dest: &dyn Destination,
    s: &Spooled,
    dead: &DeadLetter,
    rejected: &[(Vec<u8>, String)],
) {
    if rejected.is_empty() {
        return;
    }
    let stream = dest.stream_name(s.route);
    let now = jiff::Timestamp::now();
    let mut lines = Vec::new();
    for (row, reason) in rejected {
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
    dead.write_lines(&lines, rejected.len() as u64);
    dead.flush();
    tracing::warn!(rows = rejected.len(), file = %dead.path().display(), "rows rejected by the output were dead-lettered");
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
            path: std::path::PathBuf::from(format!("{seq:020}.csl.batch")),
            len: 1,
            format: Format::Batch,
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
