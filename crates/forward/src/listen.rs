//! Listeners: UDP, TCP and TLS sockets that cut frames (with `mcas-syslog`'s codec) and hand
//! them, a chunk at a time, to the workers.
//!
//! Channels are bounded. A TCP or TLS reader waits when its worker's queue is full, so a slow
//! output pushes back on the sender's TCP window; a UDP reader cannot wait (the kernel would
//! drop instead), so a full queue drops the datagrams and counts them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::config::{Cidr, FramingConfig, ListenConfig, OversizeConfig, Protocol};
use crate::metrics::{DropReason, Metrics};

/// Messages per chunk handed to a worker.
pub(crate) const CHUNK: usize = 256;

/// TCP/TLS read buffer: large reads mean few system calls at high rates.
const READ_BUF: usize = 256 * 1024;

/// One message as read from a socket.
#[derive(Debug)]
pub(crate) struct Msg {
    pub(crate) data: Bytes,
    pub(crate) peer: IpAddr,
    pub(crate) truncated: bool,
}

/// Messages read together, with the listener they came from and when.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) listener: usize,
    pub(crate) received_at: jiff::Timestamp,
    pub(crate) msgs: Vec<Msg>,
}

/// The workers' queues; readers spread chunks over them round-robin.
#[derive(Debug, Clone)]
pub(crate) struct Workers {
    queues: Arc<[mpsc::Sender<Chunk>]>,
    next: Arc<AtomicUsize>,
}

impl Workers {
    pub(crate) fn new(queues: Vec<mpsc::Sender<Chunk>>) -> Workers {
        Workers {
            queues: queues.into(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn pick(&self) -> &mpsc::Sender<Chunk> {
        let i = self.next.fetch_add(1, Relaxed) % self.queues.len();
        &self.queues[i]
    }

    /// Wait for room (TCP/TLS back-pressure). Errors only when the workers are gone.
    async fn send(&self, chunk: Chunk) -> Result<(), ()> {
        self.pick().send(chunk).await.map_err(|_| ())
    }

    /// Never wait (UDP); a full queue gives the chunk back.
    fn try_send(&self, chunk: Chunk) -> Result<(), Chunk> {
        // Try every queue once before giving up.
        let mut chunk = chunk;
        for _ in 0..self.queues.len() {
            match self.pick().try_send(chunk) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(c))
                | Err(mpsc::error::TrySendError::Closed(c)) => chunk = c,
            }
        }
        Err(chunk)
    }
}

/// A bound listener, ready to run.
pub(crate) enum Bound {
    Udp(UdpSocket),
    Tcp(TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Udp(s) => f.debug_tuple("Udp").field(s).finish(),
            Bound::Tcp(l, tls) => f.debug_tuple("Tcp").field(l).field(&tls.is_some()).finish(),
        }
    }
}

/// Bind every listener first, so configuration errors (address in use, bad certificate)
/// surface before anything runs.
pub(crate) async fn bind(cfg: &ListenConfig) -> anyhow::Result<Bound> {
    let at = || format!("listen {} {}", cfg.protocol, cfg.address);
    match cfg.protocol {
        Protocol::Udp => {
            let domain = socket2::Domain::for_address(cfg.address);
            let s =
                socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
                    .with_context(at)?;
            if let Some(size) = cfg.receive_buffer_bytes {
                let want = usize::try_from(size.0).unwrap_or(usize::MAX);
                s.set_recv_buffer_size(want)
                    .with_context(|| format!("{}: receive_buffer_bytes", at()))?;
                let got = s.recv_buffer_size().unwrap_or(0);
                if got < want {
                    tracing::warn!(listener = %cfg.address, want, got, "the kernel capped the UDP receive buffer (raise net.core.rmem_max)");
                }
            }
            s.set_nonblocking(true).with_context(at)?;
            s.bind(&cfg.address.into())
                .with_context(|| format!("{}: cannot bind", at()))?;
            let std: std::net::UdpSocket = s.into();
            Ok(Bound::Udp(UdpSocket::from_std(std).with_context(at)?))
        }
        Protocol::Tcp | Protocol::Tls => {
            let tls = if cfg.protocol == Protocol::Tls {
                Some(crate::tls::acceptor(cfg).with_context(at)?)
            } else {
                None
            };
            let l = TcpListener::bind(cfg.address)
                .await
                .with_context(|| format!("{}: cannot bind", at()))?;
            Ok(Bound::Tcp(l, tls))
        }
    }
}

/// The local address of a bound listener.
pub(crate) fn local_addr(b: &Bound) -> Option<SocketAddr> {
    match b {
        Bound::Udp(s) => s.local_addr().ok(),
        Bound::Tcp(l, _) => l.local_addr().ok(),
    }
}

/// Shared by the tasks of one listener.
#[derive(Debug)]
struct Ctx {
    index: usize,
    cfg: ListenConfig,
    workers: Workers,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
}

fn allowed(allow: &[Cidr], ip: IpAddr) -> bool {
    allow.is_empty() || allow.iter().any(|c| c.contains(ip))
}

/// Run a bound listener until `stop`; returns when every connection it opened is finished.
pub(crate) async fn run(
    index: usize,
    cfg: ListenConfig,
    bound: Bound,
    workers: Workers,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let ctx = Arc::new(Ctx {
        index,
        cfg,
        workers,
        metrics,
        stop,
    });
    match bound {
        Bound::Udp(sock) => run_udp(ctx, sock).await,
        Bound::Tcp(l, tls) => run_tcp(ctx, l, tls).await,
    }
}

async fn run_udp(ctx: Arc<Ctx>, sock: UdpSocket) {
    let max = usize::try_from(ctx.cfg.max_message_bytes.0).unwrap_or(usize::MAX);
    // One datagram can be up to 64 KiB; read into a large arena and split messages off it.
    let mut arena = BytesMut::with_capacity(1 << 20);
    let mut chunk: Vec<Msg> = Vec::with_capacity(CHUNK);
    loop {
        if arena.capacity() - arena.len() < 65_536 {
            arena = BytesMut::with_capacity(1 << 20);
        }
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            r = sock.readable() => { if r.is_err() { break; } }
        }
        let mut bytes_read = 0u64;
        while chunk.len() < CHUNK {
            if arena.capacity() - arena.len() < 65_536 {
                arena = BytesMut::with_capacity(1 << 20);
            }
            // Reads into the spare capacity: no zero-filling per datagram.
            match sock.try_recv_buf_from(&mut arena) {
                Ok((n, peer)) => {
                    let whole = arena.split().freeze();
                    bytes_read += n as u64;
                    if !allowed(&ctx.cfg.allow, peer.ip()) {
                        ctx.metrics.count_drop(DropReason::NotAllowed, 1);
                        continue;
                    }
                    let body = mcas_syslog::datagram(&whole);
                    let mut data = whole.slice_ref(body);
                    let mut truncated = false;
                    if data.len() > max {
                        if ctx.cfg.oversize == OversizeConfig::Discard {
                            ctx.metrics.count_drop(DropReason::Oversize, 1);
                            continue;
                        }
                        data.truncate(max);
                        truncated = true;
                    }
                    chunk.push(Msg {
                        data,
                        peer: peer.ip(),
                        truncated,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive error");
                    break;
                }
            }
        }
        ctx.metrics.received_bytes.fetch_add(bytes_read, Relaxed);
        if chunk.is_empty() {
            continue;
        }
        let msgs = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
        let n = msgs.len() as u64;
        ctx.metrics.received.fetch_add(n, Relaxed);
        let c = Chunk {
            listener: ctx.index,
            received_at: jiff::Timestamp::now(),
            msgs,
        };
        if ctx.workers.try_send(c).is_err() {
            ctx.metrics.count_drop(DropReason::UdpOverflow, n);
        }
    }
}

async fn run_tcp(ctx: Arc<Ctx>, listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    let limit = Arc::new(Semaphore::new(ctx.cfg.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !allowed(&ctx.cfg.allow, peer.ip()) {
            ctx.metrics.count_drop(DropReason::NotAllowed, 1);
            tracing::debug!(%peer, "connection refused by the allow-list");
            continue;
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            ctx.metrics.count_drop(DropReason::ConnectionLimit, 1);
            tracing::warn!(%peer, max = ctx.cfg.max_connections, "connection refused: max_connections reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        ctx.metrics.connections.fetch_add(1, Relaxed);
        // The gauge counts held slots: up with the permit, down only after it is released,
        // so "0 open" means a new connection will be accepted.
        ctx.metrics.connections_open.fetch_add(1, Relaxed);
        let ctx2 = ctx.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            match tls {
                None => read_stream(&ctx2, stream, peer.ip()).await,
                Some(acc) => {
                    let hs =
                        tokio::time::timeout(Duration::from_secs(10), acc.accept(stream)).await;
                    match hs {
                        Ok(Ok(s)) => read_stream(&ctx2, s, peer.ip()).await,
                        Ok(Err(e)) => {
                            ctx2.metrics.count_drop(DropReason::TlsHandshake, 1);
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            ctx2.metrics.count_drop(DropReason::TlsHandshake, 1);
                            tracing::info!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            drop(permit);
            ctx2.metrics.connections_open.fetch_sub(1, Relaxed);
        });
    }
    drop(listener);
    // Readers stop at `stop` too; wait for them so their last chunks reach the workers.
    while conns.join_next().await.is_some() {}
}

fn framing(f: FramingConfig) -> mcas_syslog::codec::Framing {
    match f {
        FramingConfig::Auto => mcas_syslog::codec::Framing::Auto,
        FramingConfig::OctetCounting => mcas_syslog::codec::Framing::OctetCounting,
        FramingConfig::Lf => mcas_syslog::codec::Framing::NonTransparent,
    }
}

async fn read_stream<S: AsyncRead + Unpin>(ctx: &Ctx, mut s: S, peer: IpAddr) {
    let max = usize::try_from(ctx.cfg.max_message_bytes.0).unwrap_or(usize::MAX);
    let mut codec = crate::frames::codec(
        framing(ctx.cfg.framing),
        max,
        ctx.cfg.oversize == OversizeConfig::Truncate,
    );
    // Start small (thousands of idle connections stay cheap) and grow for busy senders.
    let mut want = 8 * 1024;
    let mut buf = BytesMut::with_capacity(want);
    let idle = ctx.cfg.idle_timeout.0;
    let mut msgs: Vec<Msg> = Vec::with_capacity(CHUNK);
    let mut eof = false;
    loop {
        // Cut every complete frame in the buffer.
        loop {
            let item = if eof {
                codec.decode_eof(&mut buf)
            } else {
                codec.decode(&mut buf)
            };
            match item {
                Ok(Some(frame)) => {
                    if let Some(m) = crate::frames::into_msg(frame, peer, &ctx.metrics) {
                        msgs.push(m);
                    }
                    if msgs.len() >= CHUNK && !flush(ctx, &mut msgs).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%peer, error = %e, "framing error; closing the connection");
                    flush(ctx, &mut msgs).await;
                    return;
                }
            }
        }
        if eof || !flush(ctx, &mut msgs).await {
            return;
        }
        if buf.capacity() - buf.len() < want / 4 {
            buf.reserve(want);
        }
        let spare = buf.capacity() - buf.len();
        let read = tokio::select! {
            _ = ctx.stop.cancelled() => {
                // Stop reading new data; what is already buffered is cut with decode_eof.
                eof = true;
                continue;
            }
            r = tokio::time::timeout(idle, s.read_buf(&mut buf)) => r,
        };
        match read {
            Ok(Ok(0)) => eof = true,
            Ok(Ok(n)) => {
                ctx.metrics.received_bytes.fetch_add(n as u64, Relaxed);
                if n >= spare / 2 {
                    want = (want * 2).min(READ_BUF);
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "read error");
                eof = true;
            }
            Err(_) => {
                tracing::debug!(%peer, "idle timeout; closing");
                eof = true;
            }
        }
    }
}

/// Hand the messages to a worker; false when the workers are gone.
async fn flush(ctx: &Ctx, msgs: &mut Vec<Msg>) -> bool {
    if msgs.is_empty() {
        return true;
    }
    let batch = std::mem::replace(msgs, Vec::with_capacity(CHUNK));
    ctx.metrics.received.fetch_add(batch.len() as u64, Relaxed);
    let chunk = Chunk {
        listener: ctx.index,
        received_at: jiff::Timestamp::now(),
        msgs: batch,
    };
    ctx.workers.send(chunk).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let allow = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        assert!(allowed(&allow, "10.1.1.1".parse().unwrap()));
        assert!(!allowed(&allow, "127.0.0.1".parse().unwrap()));
        assert!(allowed(&[], "127.0.0.1".parse().unwrap()));
    }
}
