//! Workers: each takes chunks of messages from its queue, turns each message into a row
//! (through the current [`crate::route::Router`]), serialises the row straight into the open batch buffer of its
//! route, and closes a batch when it reaches `batch_max_rows`/`batch_max_bytes`, when
//! `flush_interval` has passed, or when no input has arrived for `linger`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::batch::{Batch, BufPool, Buffers, Fate, Route};
use crate::deadletter::DeadLetter;
use crate::frames::Chunk;
use crate::metrics::Metrics;
use crate::output::OutputTx;
use crate::route::Outcome;

/// Batch limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) flush_interval: Duration,
    /// Close open batches after this long without input (zero: never).
    pub(crate) linger: Duration,
    pub(crate) max_rows: usize,
    pub(crate) max_bytes: usize,
    /// Group commit: a batch holding rows a RELP session waits on is closed within this
    /// time (`relp.commit_interval`), instead of at `flush_interval`.
    pub(crate) commit: Duration,
}

/// One worker; returns when its queue is closed and drained, after closing its batches.
pub(crate) async fn worker(
    mut rx: mpsc::Receiver<Chunk>,
    routers: Arc<crate::reload::RouterCell>,
    out: Arc<[OutputTx]>,
    dead: Arc<DeadLetter>,
    metrics: Arc<Metrics>,
    limits: Limits,
    pool: Arc<BufPool>,
) {
    // The outputs are the same in every generation: a reload changes only their routing.
    let mut bufs = Buffers::with_pool(pool, routers.current().outputs());
    let mut tick = tokio::time::interval(limits.flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // Time-based closing also runs between chunks, so a busy queue cannot starve it (a
    // quiet route's rows never wait longer than flush_interval, even under load).
    let mut last_close = Instant::now();
    // Armed while a batch is open: fires `linger` after the last chunk arrived.
    let idle = tokio::time::sleep(limits.linger);
    tokio::pin!(idle);
    // Armed while an open batch holds rows a RELP session waits on: the batches close as
    // soon as this worker's queue is empty, and at the latest `commit` after the first
    // such row, so the sessions waiting meanwhile share one durable write.
    let commit = tokio::time::sleep(limits.commit);
    tokio::pin!(commit);
    let mut committing = false;
    loop {
        let open = !limits.linger.is_zero() && bufs.has_rows();
        let close_now = tokio::select! {
            c = rx.recv() => {
                let Some(mut chunk) = c else { break };
                // The router of the current generation, taken once a chunk.
                let router = routers.current();
                idle.as_mut().reset(tokio::time::Instant::now() + limits.linger);
                let ack = chunk.ack.take();
                let mut dead_lettered = false;
                for msg in &chunk.msgs {
                    let outcome = match chunk.rows {
                        None => router.process(chunk.listener, msg, chunk.received_at, &mut bufs, &dead),
                        Some(route) => router.process_row(route, msg, chunk.received_at, &mut bufs, &dead),
                    };
                    if outcome != Outcome::Routed {
                        dead_lettered |= outcome == Outcome::DeadLettered;
                        continue;
                    }
                    for i in 0..bufs.outputs() {
                        let Some(&Fate::Appended(route)) = bufs.fates().get(i) else { continue };
                        if let Some(a) = &ack {
                            bufs.get_mut(i, route).hold(a);
                        }
                        let b = bufs.get(i, route);
                        if (b.rows >= limits.max_rows || b.data.len() >= limits.max_bytes)
                            && !close(&mut bufs, i, route, &out, &metrics).await
                        {
                            return;
                        }
                    }
                }
                if let Some(a) = ack {
                    let urgent = a.urgent();
                    // The chunk's own share: its rows are now in batches (each holding a
                    // share of its own), filtered or dropped by policy, or dead-lettered,
                    // which counts once the dead-letter file is synced.
                    if !dead_lettered || dead.sync() {
                        a.confirm();
                    }
                    if !committing && urgent && bufs.has_acks() {
                        committing = true;
                        commit.as_mut().reset(tokio::time::Instant::now() + limits.commit);
                    }
                }
                // Group commit: a session waits on these rows, and nothing else is queued
                // for this worker, so waiting longer would only add latency.
                (committing && rx.is_empty()) || last_close.elapsed() >= limits.flush_interval
            }
            () = &mut idle, if open => true,
            () = &mut commit, if committing => true,
            _ = tick.tick() => true,
        };
        if close_now {
            if !close_all(&mut bufs, &out, &metrics, &dead).await {
                return;
            }
            last_close = Instant::now();
            committing = false;
        }
    }
    if !close_all(&mut bufs, &out, &metrics, &dead).await {
        // close_all flushes the dead-letter file only while the output stage is there.
        dead.flush();
    }
}

/// Close every open batch and flush the dead-letter file. False when the output stage is gone.
async fn close_all(
    bufs: &mut Buffers,
    out: &[OutputTx],
    metrics: &Metrics,
    dead: &DeadLetter,
) -> bool {
    for i in 0..bufs.outputs() {
        for route in Route::ALL {
            if !close(bufs, i, route, out, metrics).await {
                return false;
            }
        }
    }
    dead.flush();
    true
}

/// Hand the open batch of output `i`'s `route` to that output's stage (waiting for room).
/// False when the output stage is gone.
async fn close(
    bufs: &mut Buffers,
    i: usize,
    route: Route,
    out: &[OutputTx],
    metrics: &Metrics,
) -> bool {
    let Some(mut batch) = bufs.take(i, route) else {
        return true;
    };
    let Some(out) = out.get(i) else {
        return false;
    };
    count_closed(metrics, &batch);
    // A spooled output's batch becomes its spool file here, on this worker's thread: the
    // compression of every output runs on every worker.
    if let Some(p) = &out.prepare {
        p.prepare(&mut batch);
    }
    out.tx.send(batch).await.is_ok()
}

/// Count a batch handed to an output stage: pending until the stage has stored (or
/// written, or dropped and counted) it.
pub(crate) fn count_closed(metrics: &Metrics, batch: &Batch) {
    metrics.batches.fetch_add(1, Relaxed);
    metrics.pending_rows.fetch_add(batch.rows as u64, Relaxed);
}
