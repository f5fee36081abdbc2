//! A RELP session: frames in, messages handed to the workers a chunk at a time, and each
//! `syslog` command answered `200 OK` only once its message is stored.
//!
//! Each chunk carries an [`Ack`]; the session keeps the chunks' answers in command order
//! and writes an answer when everything before it has been written and its own chunk is
//! stored (the batches holding its rows fdatasync'd; see [`crate::ack`]). Storage that
//! fails is never answered with an error (librelp treats a `500` as a broken session, and
//! historically lost messages on that path): the session is closed instead, and the sender
//! sends every unanswered message again on its next session. A frame that breaks the
//! protocol closes the session too, after the answers of what was already stored.
//!
//! At shutdown the session stops reading, waits for what it read to be stored, answers it,
//! and sends the `serverclose` hint before closing.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mcas_syslog::relp::{self, Event, FrameDecoder, ServerSession, Txnr};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::{CHUNK, CHUNK_BYTES, Ctx, Deadlines, READ_BUF, bytes_of, timeout_key};
use crate::ack::{Ack, Stored};
use crate::config::OversizeConfig;
use crate::frames::{Chunk, Msg};
use crate::metrics::DropReason;

/// An answer in waiting, in command order.
#[derive(Debug)]
enum Answer {
    /// Encoded and ready (the answers to `open`, `close`, and to messages settled without
    /// storing anything, such as an oversize message discarded by policy).
    Ready(Vec<u8>),
    /// The `200 OK`s of a chunk's messages, once the chunk is stored.
    Stored {
        txnrs: Vec<Txnr>,
        state: Storing,
        since: Instant,
    },
}

/// Where a chunk's storing stands.
#[derive(Debug)]
enum Storing {
    /// Not known yet: the receiver resolves once the chunk is stored, or is not.
    Waiting(Stored),
    /// Known: true when every message of the chunk is stored.
    Settled(bool),
}

/// Why a session stops reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client sent `close`, or its end of the stream.
    Client,
    /// A frame broke the protocol.
    Protocol,
    /// The forwarder is shutting down: answer what is stored, then `serverclose`.
    Shutdown,
    /// Storing a chunk failed, or the pipeline is gone: close without answering the rest.
    Unstored,
}

/// What one read's frames asked for, in command order.
#[derive(Debug)]
enum Item {
    /// A `syslog` command: its message, or `None` when policy discarded it (oversize).
    Message(Txnr, Option<Msg>),
    /// The encoded answer to another command.
    Answer(Vec<u8>),
}

pub(super) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: S,
    peer: IpAddr,
    already: Duration,
) {
    let m = &ctx.metrics.relp;
    m.sessions_open.fetch_add(1, Relaxed);
    let ending = session(ctx, s, peer, already).await;
    m.sessions_open.fetch_sub(1, Relaxed);
    tracing::debug!(%peer, ?ending, "RELP session ended");
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: S,
    peer: IpAddr,
    already: Duration,
) -> Ending {
    let relp_cfg = ctx.workers.relp;
    let max_message = usize::try_from(ctx.cfg.max_message_bytes.0).unwrap_or(usize::MAX);
    let max_datalen = usize::try_from(relp_cfg.max_datalen.0).unwrap_or(usize::MAX);
    let (mut rd, mut wr) = tokio::io::split(s);
    let mut decoder = FrameDecoder::new().with_max_datalen(max_datalen);
    let mut session = ServerSession::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut answers: VecDeque<Answer> = VecDeque::new();
    let mut unanswered = 0usize;
    let mut deadlines = Deadlines::new(&ctx.cfg, already);
    let mut ending: Option<Ending> = None;
    let mut out = Vec::with_capacity(4096);
    loop {
        // Answer, in order, everything that is ready at the front.
        if let Err(e) = take_ready(ctx, &mut answers, &mut unanswered, &mut out) {
            ending = Some(e);
            break;
        }
        if !out.is_empty() {
            let w = tokio::time::timeout(ctx.cfg.idle_timeout.0, wr.write_all(&out)).await;
            out.clear();
            if !matches!(w, Ok(Ok(()))) {
                tracing::debug!(%peer, "RELP: cannot write answers; closing");
                return ending.unwrap_or(Ending::Client);
            }
        }
        if ending.is_some() && answers.is_empty() {
            break;
        }
        let reading = ending.is_none() && unanswered < relp_cfg.max_unanswered;
        let (limit, deadline) = if answers.is_empty() {
            deadlines.next()
        } else {
            // The client waits for us: no deadline runs against it.
            (
                ctx.cfg.idle_timeout.0.max(Duration::from_secs(3600)),
                crate::metrics::Timeout::Idle,
            )
        };
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(READ_BUF.min(buf.capacity().max(64 * 1024)));
        }
        let waiting = Instant::now();
        tokio::select! {
            biased;
            () = ctx.stop.cancelled(), if ending.is_none() => {
                ending = Some(Ending::Shutdown);
            }
            r = front(&mut answers) => {
                // The front chunk is settled: take_ready answers it (or ends the session).
                if let Some(Answer::Stored { state, .. }) = answers.front_mut() {
                    *state = Storing::Settled(r == Ok(true));
                }
            }
            r = tokio::time::timeout(limit, rd.read_buf(&mut buf)), if reading => {
                deadlines.waited(waiting.elapsed());
                match r {
                    Ok(Ok(0)) => ending = Some(Ending::Client),
                    Ok(Ok(n)) => {
                        ctx.metrics.received_bytes.fetch_add(n as u64, Relaxed);
                        let (items, frames, end) = decode(
                            ctx, &mut decoder, &mut session, &mut buf, max_message, peer,
                        );
                        deadlines.progress(frames, true, !buf.is_empty());
                        if let Err(e) = hand_over(ctx, items, &mut answers, &mut unanswered).await {
                            ending = Some(e);
                        } else if end.is_some() {
                            ending = end;
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "RELP read error");
                        ending = Some(Ending::Client);
                    }
                    Err(_) => {
                        ctx.metrics.count_timeout(deadline);
                        tracing::debug!(%peer, deadline = timeout_key(deadline), "deadline passed; closing the RELP session");
                        ending = Some(Ending::Client);
                    }
                }
            }
        }
    }
    let ending = ending.unwrap_or(Ending::Client);
    if ending == Ending::Shutdown {
        relp::encode_serverclose(&mut out);
        if matches!(
            tokio::time::timeout(Duration::from_secs(1), wr.write_all(&out)).await,
            Ok(Ok(()))
        ) {
            ctx.metrics.relp.serverclose.fetch_add(1, Relaxed);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    ending
}

/// Waits until the front answer's chunk is settled; pending for ever when the front is
/// ready, settled, or there is none (the loop answers those without waiting).
async fn front(answers: &mut VecDeque<Answer>) -> Result<bool, ()> {
    match answers.front_mut() {
        Some(Answer::Stored {
            state: Storing::Waiting(stored),
            ..
        }) => stored.await.map_err(|_| ()),
        _ => std::future::pending().await,
    }
}

/// Move the ready answers at the front into `out`, in order. An error when a chunk was
/// not stored: the session must close without answering it or anything after it.
fn take_ready(
    ctx: &Ctx,
    answers: &mut VecDeque<Answer>,
    unanswered: &mut usize,
    out: &mut Vec<u8>,
) -> Result<(), Ending> {
    while let Some(front) = answers.front_mut() {
        match front {
            Answer::Ready(bytes) => out.extend_from_slice(bytes),
            Answer::Stored {
                txnrs,
                state,
                since,
            } => match settled(state) {
                Some(true) => {
                    for &t in txnrs.iter() {
                        relp::encode_ok(t, out);
                    }
                    let n = txnrs.len();
                    *unanswered = unanswered.saturating_sub(n);
                    ctx.metrics.relp.answered(n as u64, since.elapsed());
                }
                None => return Ok(()),
                Some(false) => {
                    let lost: usize = answers
                        .iter()
                        .map(|a| match a {
                            Answer::Stored { txnrs, .. } => txnrs.len(),
                            Answer::Ready(_) => 0,
                        })
                        .sum();
                    ctx.metrics.relp.unstored.fetch_add(lost as u64, Relaxed);
                    tracing::warn!(
                        messages = lost,
                        "RELP: messages could not be stored; closing the session unanswered, so the sender sends them again"
                    );
                    answers.clear();
                    return Err(Ending::Unstored);
                }
            },
        }
        answers.pop_front();
    }
    Ok(())
}

/// A chunk's outcome if it is known: true when stored. A receiver that resolves settles
/// the state, so the outcome is read once.
fn settled(state: &mut Storing) -> Option<bool> {
    if let Storing::Waiting(rx) = state {
        use tokio::sync::oneshot::error::TryRecvError;
        *state = Storing::Settled(match rx.try_recv() {
            Ok(ok) => ok,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Closed) => false,
        });
    }
    match state {
        Storing::Settled(ok) => Some(*ok),
        Storing::Waiting(_) => None,
    }
}

/// Decode the whole frames in `buf` and cut them off. Returns what they asked for in
/// command order, how many frames there were, and, when the session must stop reading,
/// why.
fn decode(
    ctx: &Ctx,
    decoder: &mut FrameDecoder,
    session: &mut ServerSession,
    buf: &mut BytesMut,
    max_message: usize,
    peer: IpAddr,
) -> (Vec<Item>, usize, Option<Ending>) {
    let m = &ctx.metrics.relp;
    let mut frames = 0;
    // Messages are first noted as (TXNR, offset, length) in `buf`, then cut out of it.
    let mut noted: Vec<Result<(Txnr, usize, usize), Vec<u8>>> = Vec::new();
    let mut consumed = 0;
    let mut end = None;
    let base = buf.as_ptr() as usize;
    while end.is_none() {
        let (frame, len) = match decoder.decode(&buf[consumed..]) {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => {
                m.protocol_errors.fetch_add(1, Relaxed);
                ctx.logs.relp.note(Some(peer), &e);
                end = Some(Ending::Protocol);
                break;
            }
        };
        frames += 1;
        m.frames.fetch_add(1, Relaxed);
        match session.receive(&frame) {
            Ok(Event::Syslog { txnr, message }) => {
                noted.push(Ok((txnr, message.as_ptr() as usize - base, message.len())));
            }
            Ok(event) => {
                let mut bytes = Vec::new();
                event.encode_answer(session, &mut bytes);
                match event {
                    Event::Open { .. } => {
                        m.sessions.fetch_add(1, Relaxed);
                    }
                    Event::Close { .. } => end = Some(Ending::Client),
                    _ => {}
                }
                noted.push(Err(bytes));
            }
            Err(e) => {
                m.protocol_errors.fetch_add(1, Relaxed);
                ctx.logs.relp.note(Some(peer), &e);
                end = Some(Ending::Protocol);
                break;
            }
        }
        consumed += len;
    }
    let whole = buf.split_to(consumed).freeze();
    let items = noted
        .into_iter()
        .map(|n| match n {
            Err(answer) => Item::Answer(answer),
            Ok((txnr, off, len)) => {
                let body = mcas_syslog::datagram(&whole[off..off + len]);
                let mut data = whole.slice_ref(body);
                let mut truncated = false;
                if data.len() > max_message {
                    if ctx.cfg.oversize == OversizeConfig::Discard {
                        ctx.metrics.count_drop(DropReason::Oversize, 1);
                        return Item::Message(txnr, None);
                    }
                    data.truncate(max_message);
                    truncated = true;
                }
                if data.is_empty() {
                    return Item::Message(txnr, None);
                }
                Item::Message(
                    txnr,
                    Some(Msg {
                        data,
                        peer,
                        truncated,
                    }),
                )
            }
        })
        .collect();
    (items, frames, end)
}

/// Hand the messages of `items` to the workers, a chunk at a time, each chunk with an
/// [`Ack`] whose answers join `answers` in command order. Errors when the workers are gone.
async fn hand_over(
    ctx: &Ctx,
    items: Vec<Item>,
    answers: &mut VecDeque<Answer>,
    unanswered: &mut usize,
) -> Result<(), Ending> {
    let mut msgs: Vec<Msg> = Vec::new();
    let mut txnrs: Vec<Txnr> = Vec::new();
    let mut held = 0usize;
    for item in items {
        match item {
            Item::Message(txnr, msg) => {
                txnrs.push(txnr);
                if let Some(msg) = msg {
                    held += msg.data.len();
                    msgs.push(msg);
                }
                if msgs.len() >= CHUNK || held >= CHUNK_BYTES {
                    send(ctx, &mut msgs, &mut txnrs, answers, unanswered).await?;
                    held = 0;
                }
            }
            Item::Answer(bytes) => {
                send(ctx, &mut msgs, &mut txnrs, answers, unanswered).await?;
                held = 0;
                answers.push_back(Answer::Ready(bytes));
            }
        }
    }
    send(ctx, &mut msgs, &mut txnrs, answers, unanswered).await
}

/// Hand one chunk over and queue its answers.
async fn send(
    ctx: &Ctx,
    msgs: &mut Vec<Msg>,
    txnrs: &mut Vec<Txnr>,
    answers: &mut VecDeque<Answer>,
    unanswered: &mut usize,
) -> Result<(), Ending> {
    if txnrs.is_empty() {
        return Ok(());
    }
    let txnrs = std::mem::take(txnrs);
    *unanswered += txnrs.len();
    let since = Instant::now();
    if msgs.is_empty() {
        // Every message was settled by policy (discarded, counted): nothing to store.
        let mut bytes = Vec::new();
        for &t in &txnrs {
            relp::encode_ok(t, &mut bytes);
        }
        *unanswered -= txnrs.len();
        ctx.metrics
            .relp
            .answered(txnrs.len() as u64, Duration::ZERO);
        answers.push_back(Answer::Ready(bytes));
        return Ok(());
    }
    let msgs = std::mem::take(msgs);
    ctx.metrics.received.fetch_add(msgs.len() as u64, Relaxed);
    let budget = ctx.workers.budget.acquire(bytes_of(&msgs)).await;
    let (ack, stored) = Ack::new();
    let chunk = Chunk {
        listener: ctx.index,
        received_at: jiff::Timestamp::now(),
        msgs,
        _budget: budget,
        ack: Some(ack),
        rows: None,
    };
    answers.push_back(Answer::Stored {
        txnrs,
        state: Storing::Waiting(stored),
        since,
    });
    ctx.workers.send(chunk).await.map_err(|()| Ending::Unstored)
}
