//! Listeners: UDP, TCP and TLS sockets that cut frames (with `mcas-syslog`'s codec) and hand
//! them, a chunk at a time, to the workers.
//!
//! Channels are bounded. A TCP or TLS reader waits when its worker's queue is full, so a slow
//! output pushes back on the sender's TCP window; a UDP reader cannot wait (the kernel would
//! drop instead), so a full queue drops the datagrams and counts them, and the datagrams the
//! kernel itself dropped for our sockets are read from `/proc/net/udp` and counted too.
//!
//! A hostile or broken peer must not hold what others need. A TCP/TLS connection takes a
//! slot of the listener (`max_connections`) and one of its source address
//! (`max_connections_per_source`); it must deliver a complete frame within
//! `first_frame_timeout` of the accept, finish every frame it begins within `frame_timeout`,
//! and is closed after `idle_timeout` without a complete frame. Bytes that never make a frame
//! keep nothing open. Events a peer can repeat at will (refusals, failed handshakes) are
//! counted, logged at debug, and summarised by a warning at most once a minute.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::budget::Budget;
use crate::config::{Cidr, FramingConfig, ListenConfig, OversizeConfig, Protocol, RelpConfig};
use crate::frames::{Chunk, Msg};
use crate::metrics::{DropReason, Metrics, Timeout};

#[cfg(feature = "kafka")]
mod kafka;
mod relp;

/// Messages per chunk handed to a worker.
pub(crate) const CHUNK: usize = 256;

/// Bytes at which a TCP/TLS reader hands its chunk over before it holds [`CHUNK`] messages.
const CHUNK_BYTES: usize = 1 << 20;

/// TCP/TLS read buffer: large reads mean few system calls at high rates.
const READ_BUF: usize = 256 * 1024;

/// The longest a TLS handshake may take (less when `first_frame_timeout` is shorter).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A rate-limited warning repeats at most this often.
const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// How often a UDP listener reads its socket's kernel drop counter.
const UDP_DROPS_EVERY: Duration = Duration::from_secs(1);

/// File descriptors the process needs besides its TCP/TLS connections (spool and
/// dead-letter files, output connections, listening sockets, the runtime), roughly.
const FD_RESERVE: u64 = 64;

/// The workers' queues; readers spread chunks over them round-robin.
#[derive(Debug, Clone)]
pub(crate) struct Workers {
    queues: Arc<[mpsc::Sender<Chunk>]>,
    next: Arc<AtomicUsize>,
    /// The bytes of messages in flight, shared by every listener.
    budget: Budget,
    /// What the RELP listeners share (`[relp]`; a reload keeps the value of the start).
    relp: RelpConfig,
}

impl Workers {
    pub(crate) fn new(
        queues: Vec<mpsc::Sender<Chunk>>,
        budget: Budget,
        relp: RelpConfig,
    ) -> Workers {
        Workers {
            queues: queues.into(),
            next: Arc::new(AtomicUsize::new(0)),
            budget,
            relp,
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
    Tcp(TcpListener, Option<crate::tls::AcceptorCell>),
    /// A Kafka listener's consumer, created and subscribed (or assigned).
    #[cfg(feature = "kafka")]
    Kafka(Box<kafka::Input>),
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Udp(s) => f.debug_tuple("Udp").field(s).finish(),
            Bound::Tcp(l, tls) => f.debug_tuple("Tcp").field(l).field(&tls.is_some()).finish(),
            #[cfg(feature = "kafka")]
            Bound::Kafka(k) => f.debug_tuple("Kafka").field(k).finish(),
        }
    }
}

/// Bind every listener first, so configuration errors (address in use, bad certificate)
/// surface before anything runs.
pub(crate) async fn bind(cfg: &ListenConfig, metrics: &Arc<Metrics>) -> anyhow::Result<Bound> {
    let at = || format!("listen {} {}", cfg.protocol, cfg.place());
    match cfg.protocol {
        #[cfg(feature = "kafka")]
        Protocol::Kafka => Ok(Bound::Kafka(Box::new(kafka::bind(
            cfg.kafka(),
            metrics.clone(),
            &at(),
        )?))),
        #[cfg(not(feature = "kafka"))]
        Protocol::Kafka => {
            let _ = metrics;
            anyhow::bail!(
                "{}: this mcas-forward was built without Kafka support; build it with `--features kafka`",
                at()
            )
        }
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
        Protocol::Tcp | Protocol::Tls | Protocol::Relp | Protocol::RelpTls => {
            let tls = if cfg.protocol.is_tls() {
                Some(crate::tls::AcceptorCell::new(
                    crate::tls::acceptor(cfg).with_context(at)?,
                ))
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

/// The acceptor of a bound TLS listener (None for the others).
pub(crate) fn acceptor_cell(b: &Bound) -> Option<crate::tls::AcceptorCell> {
    match b {
        Bound::Tcp(_, tls) => tls.clone(),
        Bound::Udp(_) => None,
        #[cfg(feature = "kafka")]
        Bound::Kafka(_) => None,
    }
}

/// The local address of a bound listener.
pub(crate) fn local_addr(b: &Bound) -> Option<SocketAddr> {
    match b {
        Bound::Udp(s) => s.local_addr().ok(),
        Bound::Tcp(l, _) => l.local_addr().ok(),
        #[cfg(feature = "kafka")]
        Bound::Kafka(_) => None,
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
    per_source: Arc<PerSource>,
    logs: Logs,
}

/// Lock a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A peer address in a log line, `-` when there is none.
struct Peer(Option<IpAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("-"),
        }
    }
}

/// When a rate-limited warning is due, and how many events it covers.
#[derive(Debug, Default)]
struct ThrottleState {
    last: Option<Instant>,
    pending: u64,
}

impl ThrottleState {
    /// Record one event at `now`; the number of events to report when a warning is due.
    fn hit(&mut self, now: Instant, interval: Duration) -> Option<u64> {
        self.pending = self.pending.saturating_add(1);
        self.due(now, interval, false)
    }

    /// The events not reported yet, when a warning is due (or `force`d) and there are any.
    fn due(&mut self, now: Instant, interval: Duration, force: bool) -> Option<u64> {
        if self.pending == 0 {
            return None;
        }
        let quiet = self
            .last
            .is_some_and(|l| now.saturating_duration_since(l) < interval);
        if quiet && !force {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// One kind of event a peer can repeat at will (a refusal, a failed handshake): each is
/// logged at debug; a warning reports the count at most once per [`LOG_INTERVAL`].
#[derive(Debug)]
struct Throttle {
    what: &'static str,
    state: Mutex<ThrottleState>,
}

impl Throttle {
    fn new(what: &'static str) -> Throttle {
        Throttle {
            what,
            state: Mutex::new(ThrottleState::default()),
        }
    }

    /// One event from `peer`.
    fn note(&self, peer: Option<IpAddr>, detail: &dyn fmt::Display) {
        tracing::debug!(peer = %Peer(peer), detail = %detail, "{}", self.what);
        let due = lock(&self.state).hit(Instant::now(), LOG_INTERVAL);
        if let Some(n) = due {
            tracing::warn!(
                count = n,
                last_peer = %Peer(peer),
                last = %detail,
                "{} (each is logged at debug; this warning repeats at most once a minute, with the count since the last)",
                self.what
            );
        }
    }

    /// Report the events not reported yet, once the interval has passed (or at once).
    fn flush(&self, force: bool) {
        let due = lock(&self.state).due(Instant::now(), LOG_INTERVAL, force);
        if let Some(n) = due {
            tracing::warn!(count = n, "{} (since the previous warning)", self.what);
        }
    }
}

/// The rate-limited logs of one listener.
#[derive(Debug)]
struct Logs {
    not_allowed: Throttle,
    connection_limit: Throttle,
    source_limit: Throttle,
    handshake: Throttle,
    framing: Throttle,
    accept: Throttle,
    relp: Throttle,
}

impl Logs {
    fn new() -> Logs {
        Logs {
            not_allowed: Throttle::new("connections refused by the allow-list (`allow`)"),
            connection_limit: Throttle::new("connections refused: `max_connections` reached"),
            source_limit: Throttle::new(
                "connections refused: `max_connections_per_source` reached for a source address",
            ),
            handshake: Throttle::new("TLS handshakes failed"),
            framing: Throttle::new("framing errors; the connections were closed"),
            accept: Throttle::new("accept failed (at the open-file limit?)"),
            relp: Throttle::new("RELP protocol errors; the sessions were closed"),
        }
    }

    fn flush(&self, force: bool) {
        for t in [
            &self.not_allowed,
            &self.connection_limit,
            &self.source_limit,
            &self.handshake,
            &self.framing,
            &self.accept,
            &self.relp,
        ] {
            t.flush(force);
        }
    }
}

/// The connections of one listener held per source address.
#[derive(Debug)]
struct PerSource {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place in [`PerSource`]; given back on drop.
#[derive(Debug)]
struct SourceSlot {
    table: Arc<PerSource>,
    ip: IpAddr,
}

/// One key per host: an IPv4-mapped IPv6 peer (a dual-stack listener) is its IPv4 address.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl PerSource {
    fn new(max: usize) -> PerSource {
        PerSource {
            max,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more connection from `ip`, unless it holds `max` already.
    fn try_hold(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let ip = source_key(ip);
        let mut held = lock(&self.held);
        let n = held.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Connections held by `ip`.
    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> usize {
        lock(&self.held).get(&source_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = lock(&self.table.held);
        if let Some(n) = held.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
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
    let per_source = Arc::new(PerSource::new(cfg.max_connections_per_source));
    let ctx = Arc::new(Ctx {
        index,
        cfg,
        workers,
        metrics,
        stop,
        per_source,
        logs: Logs::new(),
    });
    match bound {
        Bound::Udp(sock) => run_udp(ctx, sock).await,
        Bound::Tcp(l, tls) => run_tcp(ctx, l, tls).await,
        #[cfg(feature = "kafka")]
        Bound::Kafka(input) => kafka::run(ctx, *input).await,
    }
}

/// The largest UDP payload: each batch slot holds one datagram (or, with GRO, several of
/// the same size).
const DATAGRAM_MAX: usize = 65_536;

/// The datagrams of one batch receive, as the slots of `scratch` hold them.
struct UdpBatch {
    state: quinn_udp::UdpSocketState,
    scratch: Vec<Vec<u8>>,
    meta: Vec<quinn_udp::RecvMeta>,
}

impl UdpBatch {
    /// Batch receives on `sock` (`recvmmsg` on Linux, `quinn_udp::BATCH_SIZE` datagrams a
    /// call). None when the socket cannot be set up for it: datagrams are then read one by one.
    fn new(sock: &UdpSocket) -> Option<UdpBatch> {
        let state = quinn_udp::UdpSocketState::new(sock.into()).ok()?;
        let slots = quinn_udp::BATCH_SIZE;
        Some(UdpBatch {
            state,
            scratch: (0..slots).map(|_| vec![0u8; DATAGRAM_MAX]).collect(),
            meta: vec![quinn_udp::RecvMeta::default(); slots],
        })
    }

    /// One receive call: how many slots it filled (WouldBlock when none was waiting).
    fn recv(&mut self, sock: &UdpSocket) -> std::io::Result<usize> {
        let mut iovs: Vec<std::io::IoSliceMut<'_>> = self
            .scratch
            .iter_mut()
            .map(|b| std::io::IoSliceMut::new(b))
            .collect();
        let (state, meta) = (&self.state, &mut self.meta);
        sock.try_io(tokio::io::Interest::READABLE, || {
            state.recv(sock.into(), &mut iovs, meta)
        })
    }

    /// The datagrams of slot `i` and their sender: one, or several of `stride` bytes each
    /// when the kernel coalesced them (GRO).
    fn datagrams(&self, i: usize) -> (std::net::SocketAddr, std::slice::Chunks<'_, u8>) {
        let m = &self.meta[i];
        let len = m.len.min(DATAGRAM_MAX);
        let stride = if m.stride == 0 { len.max(1) } else { m.stride };
        (m.addr, self.scratch[i][..len].chunks(stride))
    }
}

async fn run_udp(ctx: Arc<Ctx>, sock: UdpSocket) {
    let max = usize::try_from(ctx.cfg.max_message_bytes.0).unwrap_or(usize::MAX);
    // Datagrams are packed into a large arena and split off it, so a message costs no
    // allocation of its own.
    let mut arena = BytesMut::with_capacity(1 << 20);
    let mut chunk: Vec<Msg> = Vec::with_capacity(CHUNK);
    let mut kernel = KernelDrops::of(&sock);
    let mut batch = UdpBatch::new(&sock);
    if batch.is_none() {
        tracing::warn!("UDP listener: batch receive unavailable, datagrams are read one by one");
    }
    let mut sample = tokio::time::interval(UDP_DROPS_EVERY);
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            _ = sample.tick() => {
                if let Some(k) = kernel.as_mut() {
                    k.sample(&ctx.metrics);
                }
                continue;
            }
            r = sock.readable() => { if r.is_err() { break; } }
        }
        let mut bytes_read = 0u64;
        while chunk.len() < CHUNK {
            if arena.capacity() - arena.len() < DATAGRAM_MAX {
                arena = BytesMut::with_capacity(1 << 20);
            }
            let got = match batch.as_mut() {
                Some(b) => b.recv(&sock).map(|n| {
                    for i in 0..n {
                        let (peer, datagrams) = b.datagrams(i);
                        for d in datagrams {
                            if arena.capacity() - arena.len() < d.len() {
                                arena = BytesMut::with_capacity(1 << 20);
                            }
                            arena.extend_from_slice(d);
                            let whole = arena.split().freeze();
                            bytes_read += d.len() as u64;
                            udp_message(&ctx, whole, peer, max, &mut chunk);
                        }
                    }
                }),
                // Reads into the spare capacity: no zero-filling per datagram.
                None => sock.try_recv_buf_from(&mut arena).map(|(n, peer)| {
                    let whole = arena.split().freeze();
                    bytes_read += n as u64;
                    udp_message(&ctx, whole, peer, max, &mut chunk);
                }),
            };
            match got {
                Ok(()) => {}
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
        // UDP cannot wait: with the byte budget spent, the datagrams go as with full queues.
        let Some(budget) = ctx.workers.budget.try_acquire(bytes_of(&msgs)) else {
            ctx.metrics.count_drop(DropReason::UdpOverflow, n);
            continue;
        };
        let c = Chunk {
            listener: ctx.index,
            received_at: jiff::Timestamp::now(),
            msgs,
            _budget: budget,
            ack: None,
            rows: None,
        };
        if ctx.workers.try_send(c).is_err() {
            ctx.metrics.count_drop(DropReason::UdpOverflow, n);
        }
    }
    if let Some(k) = kernel.as_mut() {
        k.sample(&ctx.metrics);
    }
}

/// One datagram from `peer`: refused (counted) when its source is not allowed, else its
/// syslog message (an oversize one truncated or discarded, as configured) joins `chunk`.
fn udp_message(
    ctx: &Ctx,
    whole: bytes::Bytes,
    peer: std::net::SocketAddr,
    max: usize,
    chunk: &mut Vec<Msg>,
) {
    if !allowed(&ctx.cfg.allow, peer.ip()) {
        ctx.metrics.count_drop(DropReason::NotAllowed, 1);
        return;
    }
    let body = mcas_syslog::datagram(&whole);
    let mut data = whole.slice_ref(body);
    let mut truncated = false;
    if data.len() > max {
        if ctx.cfg.oversize == OversizeConfig::Discard {
            ctx.metrics.count_drop(DropReason::Oversize, 1);
            return;
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

/// The kernel's drop counter of one UDP socket (`/proc/net/udp` or `/proc/net/udp6`,
/// found by the socket's inode), added to `dropped_total{reason="udp_kernel"}` as it grows.
#[derive(Debug)]
struct KernelDrops {
    table: &'static str,
    inode: u64,
    seen: u32,
}

impl KernelDrops {
    /// `None`, with a warning, where the counter cannot be read (no `/proc`).
    fn of(sock: &UdpSocket) -> Option<KernelDrops> {
        let table = match sock.local_addr() {
            Ok(a) if a.is_ipv6() => "/proc/net/udp6",
            _ => "/proc/net/udp",
        };
        let inode = socket_inode_of(sock);
        let found = inode.and_then(|inode| {
            let text = std::fs::read_to_string(table).ok()?;
            // The socket is ours since its creation: every drop it shows is ours to count.
            udp_drops(&text, inode).map(|_| KernelDrops {
                table,
                inode,
                seen: 0,
            })
        });
        if found.is_none() {
            tracing::warn!(
                table,
                "cannot read the kernel's drop counter of a UDP socket: datagrams dropped by the kernel are not counted (dropped_total{{reason=\"udp_kernel\"}} stays 0)"
            );
        }
        found
    }

    fn sample(&mut self, metrics: &Metrics) {
        let Ok(text) = std::fs::read_to_string(self.table) else {
            return;
        };
        if let Some(now) = udp_drops(&text, self.inode) {
            // The kernel's counter is 32 bits and wraps.
            let new = now.wrapping_sub(self.seen);
            self.seen = now;
            if new > 0 {
                metrics.count_drop(DropReason::UdpKernel, u64::from(new));
            }
        }
    }
}

/// The inode of a socket, from its `/proc/self/fd` link.
#[cfg(unix)]
fn socket_inode_of(sock: &UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd as _;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", sock.as_raw_fd())).ok()?;
    socket_inode(link.to_str()?)
}

#[cfg(not(unix))]
fn socket_inode_of(_: &UdpSocket) -> Option<u64> {
    None
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The `drops` column of the line of socket `inode` in a `/proc/net/udp` or `/proc/net/udp6`
/// table (`sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops`).
/// The kernel prints the 32-bit counter signed; it is read back as the unsigned count.
fn udp_drops(table: &str, inode: u64) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let ino: u64 = fields.nth(9)?.parse().ok()?;
        if ino != inode {
            return None;
        }
        let drops: i64 = fields.nth(2)?.parse().ok()?;
        u32::try_from(drops.rem_euclid(1 << 32)).ok()
    })
}

/// The open-file limit, (soft, hard), from `/proc/self/limits`; `None` for "unlimited".
fn open_file_limits(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    let mut fields = rest.split_whitespace();
    let value = |s: &str| match s {
        "unlimited" => Some(None),
        n => n.parse().ok().map(Some),
    };
    Some((value(fields.next()?)?, value(fields.next()?)?))
}

/// The connections the TCP/TLS listeners may hold together.
fn connections_wanted(listeners: &[ListenConfig]) -> u64 {
    listeners
        .iter()
        .filter(|l| l.protocol != Protocol::Udp)
        .map(|l| u64::try_from(l.max_connections).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add)
}

/// The descriptors needed, when they exceed the soft limit `soft`.
fn fd_shortfall(wanted: u64, soft: Option<u64>) -> Option<u64> {
    let need = wanted.checked_add(FD_RESERVE)?;
    (wanted > 0 && soft.is_some_and(|s| need > s)).then_some(need)
}

/// Warn when the listeners' `max_connections` (summed) do not fit the process's open-file
/// limit (RLIMIT_NOFILE, read from `/proc/self/limits`): past it, accepts and spool writes
/// fail with EMFILE.
pub(crate) fn check_open_file_limit(listeners: &[ListenConfig]) {
    let wanted = connections_wanted(listeners);
    let text = match std::fs::read_to_string("/proc/self/limits") {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the open-file limit; not checked");
            return;
        }
    };
    let Some((soft, hard)) = open_file_limits(&text) else {
        return;
    };
    if let (Some(need), Some(soft)) = (fd_shortfall(wanted, soft), soft) {
        let hard = hard.map_or_else(|| "unlimited".to_owned(), |h| h.to_string());
        tracing::warn!(
            max_connections_sum = wanted,
            open_file_limit = soft,
            hard_limit = %hard,
            "the listeners may hold {wanted} connections (the sum of their max_connections), but the open-file limit (RLIMIT_NOFILE) is {soft}, and about {FD_RESERVE} more descriptors are needed for the spool, the output and the runtime: at the limit new connections and spool writes fail with EMFILE. Raise the limit to at least {need} (LimitNOFILE= in the systemd unit, or ulimit -n; the hard limit is {hard}) or lower max_connections"
        );
    }
}

async fn run_tcp(ctx: Arc<Ctx>, listener: TcpListener, tls: Option<crate::tls::AcceptorCell>) {
    let limit = Arc::new(Semaphore::new(ctx.cfg.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    // Summaries of the rate-limited warnings come out on this tick, or at the next event.
    let mut report = tokio::time::interval(LOG_INTERVAL);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = report.tick() => {
                ctx.logs.flush(false);
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                ctx.logs.accept.note(None, &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !allowed(&ctx.cfg.allow, peer.ip()) {
            ctx.metrics.count_drop(DropReason::NotAllowed, 1);
            ctx.logs
                .not_allowed
                .note(Some(peer.ip()), &"not in `allow`");
            continue;
        }
        let Some(source_slot) = ctx.per_source.try_hold(peer.ip()) else {
            ctx.metrics.count_drop(DropReason::SourceConnectionLimit, 1);
            ctx.logs.source_limit.note(
                Some(peer.ip()),
                &format_args!(
                    "{} connections open from this address",
                    ctx.cfg.max_connections_per_source
                ),
            );
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            ctx.metrics.count_drop(DropReason::ConnectionLimit, 1);
            ctx.logs.connection_limit.note(
                Some(peer.ip()),
                &format_args!("{} connections open", ctx.cfg.max_connections),
            );
            continue;
        };
        let accepted_at = Instant::now();
        let _ = stream.set_nodelay(true);
        ctx.metrics.connections.fetch_add(1, Relaxed);
        // The gauge counts held slots: up with the permit, down only after it is released,
        // so "0 open" means a new connection will be accepted.
        ctx.metrics.connections_open.fetch_add(1, Relaxed);
        let ctx2 = ctx.clone();
        // The certificate current at this accept (a reload may have replaced it).
        let tls = tls.as_ref().map(crate::tls::AcceptorCell::current);
        conns.spawn(async move {
            match tls {
                None => serve(&ctx2, stream, peer.ip(), Duration::ZERO).await,
                Some(acc) => handshake(&ctx2, &acc, stream, peer.ip(), accepted_at).await,
            }
            drop(permit);
            drop(source_slot);
            ctx2.metrics.connections_open.fetch_sub(1, Relaxed);
        });
    }
    drop(listener);
    // Readers stop at `stop` too; wait for them so their last chunks reach the workers.
    while conns.join_next().await.is_some() {}
    ctx.logs.flush(true);
}

/// The TLS handshake, bounded by [`HANDSHAKE_TIMEOUT`] and `first_frame_timeout`, and
/// abandoned at shutdown; then the connection is read.
async fn handshake(
    ctx: &Ctx,
    acc: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: IpAddr,
    accepted_at: Instant,
) {
    let limit = HANDSHAKE_TIMEOUT.min(ctx.cfg.first_frame_timeout.0);
    let hs = tokio::select! {
        _ = ctx.stop.cancelled() => {
            tracing::debug!(%peer, "shutting down: TLS handshake abandoned");
            return;
        }
        hs = tokio::time::timeout(limit, acc.accept(stream)) => hs,
    };
    match hs {
        Ok(Ok(s)) => serve(ctx, s, peer, accepted_at.elapsed()).await,
        Ok(Err(e)) => {
            ctx.metrics.count_drop(DropReason::TlsHandshake, 1);
            ctx.logs.handshake.note(Some(peer), &e);
        }
        Err(_) => {
            ctx.metrics.count_drop(DropReason::TlsHandshake, 1);
            ctx.logs.handshake.note(
                Some(peer),
                &format_args!("timed out after {}ms", limit.as_millis()),
            );
        }
    }
}

/// The deadlines of one TCP/TLS connection. They are charged only with the time spent
/// waiting for the peer, never with the time spent waiting for the workers (back-pressure).
#[derive(Debug)]
struct Deadlines {
    first_frame: Duration,
    frame: Duration,
    idle: Duration,
    /// Whether a complete frame has arrived.
    got_frame: bool,
    /// Waited since the last complete frame, or since the accept.
    since_frame: Duration,
    /// Waited since the bytes of an unfinished frame began to arrive.
    since_partial: Option<Duration>,
}

impl Deadlines {
    /// `already`: what the connection has used before its first read (the TLS handshake).
    fn new(cfg: &ListenConfig, already: Duration) -> Deadlines {
        Deadlines {
            first_frame: cfg.first_frame_timeout.0,
            frame: cfg.frame_timeout.0,
            idle: cfg.idle_timeout.0,
            got_frame: false,
            since_frame: already,
            since_partial: None,
        }
    }

    /// How long the next read may wait, and the deadline that ends it.
    fn next(&self) -> (Duration, Timeout) {
        let mut next = (self.idle.saturating_sub(self.since_frame), Timeout::Idle);
        if !self.got_frame {
            let left = self.first_frame.saturating_sub(self.since_frame);
            if left <= next.0 {
                next = (left, Timeout::FirstFrame);
            }
        }
        if let Some(p) = self.since_partial {
            let left = self.frame.saturating_sub(p);
            if left < next.0 {
                next = (left, Timeout::Frame);
            }
        }
        next
    }

    /// Charge `d` of waiting for the peer.
    fn waited(&mut self, d: Duration) {
        self.since_frame = self.since_frame.saturating_add(d);
        if let Some(p) = &mut self.since_partial {
            *p = p.saturating_add(d);
        }
    }

    /// After the frames were cut: `frames` completed, whether bytes `arrived` since the
    /// last call, and whether bytes of an unfinished frame are `pending`. Only complete
    /// frames restart the clocks; bytes that make no frame start (or continue) the frame
    /// clock, including bytes the decoder consumes while skipping an oversize frame.
    fn progress(&mut self, frames: usize, arrived: bool, pending: bool) {
        if frames > 0 {
            self.got_frame = true;
            self.since_frame = Duration::ZERO;
            self.since_partial = pending.then_some(Duration::ZERO);
        } else if arrived || pending {
            self.since_partial.get_or_insert(Duration::ZERO);
        }
    }
}

/// The configuration key of a deadline, for logs.
fn timeout_key(t: Timeout) -> &'static str {
    match t {
        Timeout::FirstFrame => "first_frame_timeout",
        Timeout::Frame => "frame_timeout",
        Timeout::Idle => "idle_timeout",
    }
}

fn framing(f: FramingConfig) -> mcas_syslog::codec::Framing {
    match f {
        FramingConfig::Auto => mcas_syslog::codec::Framing::Auto,
        FramingConfig::OctetCounting => mcas_syslog::codec::Framing::OctetCounting,
        FramingConfig::Lf => mcas_syslog::codec::Framing::NonTransparent,
    }
}

/// Serve one accepted connection (after its TLS handshake) with the listener's protocol.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: S,
    peer: IpAddr,
    already: Duration,
) {
    if ctx.cfg.protocol.is_relp() {
        relp::serve(ctx, s, peer, already).await;
    } else {
        read_stream(ctx, s, peer, already).await;
    }
}

async fn read_stream<S: AsyncRead + Unpin>(ctx: &Ctx, mut s: S, peer: IpAddr, already: Duration) {
    let max = usize::try_from(ctx.cfg.max_message_bytes.0).unwrap_or(usize::MAX);
    let mut codec = crate::frames::codec(
        framing(ctx.cfg.framing),
        max,
        ctx.cfg.oversize == OversizeConfig::Truncate,
    );
    // Start small (thousands of idle connections stay cheap) and grow for busy senders.
    let mut want = 8 * 1024;
    let mut buf = BytesMut::with_capacity(want);
    let mut deadlines = Deadlines::new(&ctx.cfg, already);
    let mut arrived = false;
    let mut msgs: Vec<Msg> = Vec::with_capacity(CHUNK);
    let mut held = 0usize;
    let mut eof = false;
    loop {
        // Cut every complete frame in the buffer.
        let mut frames = 0usize;
        loop {
            let item = if eof {
                codec.decode_eof(&mut buf)
            } else {
                codec.decode(&mut buf)
            };
            match item {
                Ok(Some(frame)) => {
                    frames += 1;
                    if let Some(m) = crate::frames::into_msg(frame, peer, &ctx.metrics) {
                        held += m.data.len();
                        msgs.push(m);
                    }
                    // A chunk is handed over at CHUNK messages or CHUNK_BYTES, so big
                    // messages wait for the byte budget one chunk at a time.
                    if msgs.len() >= CHUNK || held >= CHUNK_BYTES {
                        held = 0;
                        if !flush(ctx, &mut msgs).await {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    ctx.logs.framing.note(Some(peer), &e);
                    flush(ctx, &mut msgs).await;
                    return;
                }
            }
        }
        held = 0;
        if eof || !flush(ctx, &mut msgs).await {
            return;
        }
        deadlines.progress(frames, std::mem::take(&mut arrived), !buf.is_empty());
        if buf.capacity() - buf.len() < want / 4 {
            buf.reserve(want);
        }
        let spare = buf.capacity() - buf.len();
        let (limit, deadline) = deadlines.next();
        let waiting = Instant::now();
        let read = tokio::select! {
            _ = ctx.stop.cancelled() => {
                // Stop reading new data; what is already buffered is cut with decode_eof.
                eof = true;
                continue;
            }
            r = tokio::time::timeout(limit, s.read_buf(&mut buf)) => r,
        };
        deadlines.waited(waiting.elapsed());
        match read {
            Ok(Ok(0)) => eof = true,
            Ok(Ok(n)) => {
                arrived = true;
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
                // What arrived is kept: an unfinished frame is cut as the last one.
                ctx.metrics.count_timeout(deadline);
                tracing::debug!(%peer, deadline = timeout_key(deadline), "deadline passed; closing the connection");
                eof = true;
            }
        }
    }
}

/// The bytes of a chunk's messages.
fn bytes_of(msgs: &[Msg]) -> usize {
    msgs.iter().map(|m| m.data.len()).sum()
}

/// Hand the messages to a worker; false when the workers are gone.
async fn flush(ctx: &Ctx, msgs: &mut Vec<Msg>) -> bool {
    if msgs.is_empty() {
        return true;
    }
    let batch = std::mem::replace(msgs, Vec::with_capacity(CHUNK));
    ctx.metrics.received.fetch_add(batch.len() as u64, Relaxed);
    // Back-pressure on bytes, not only on chunks: wait for room in the budget.
    let budget = ctx.workers.budget.acquire(bytes_of(&batch)).await;
    let chunk = Chunk {
        listener: ctx.index,
        received_at: jiff::Timestamp::now(),
        msgs: batch,
        _budget: budget,
        ack: None,
        rows: None,
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

    fn listen(extra: &str) -> ListenConfig {
        let text = format!(
            "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:5514\"\n{extra}\n[output]\nkind = \"stdout\"\n"
        );
        crate::config::Config::parse(&text)
            .unwrap()
            .listen
            .remove(0)
    }

    #[test]
    fn throttle_warns_once_per_interval_with_the_count() {
        let mut t = ThrottleState::default();
        let i = Duration::from_secs(60);
        let t0 = Instant::now();
        // The first event is reported at once.
        assert_eq!(t.hit(t0, i), Some(1));
        // The next ones within the interval are only counted...
        for k in 1..=99 {
            assert_eq!(t.hit(t0 + Duration::from_millis(k * 10), i), None);
        }
        assert_eq!(t.due(t0 + Duration::from_secs(59), i, false), None);
        // ...and reported together once it has passed.
        assert_eq!(t.due(t0 + Duration::from_secs(60), i, false), Some(99));
        assert_eq!(t.due(t0 + Duration::from_secs(200), i, false), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(61), i), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(121), i), Some(2));
        // At shutdown, what is pending is reported whatever the time.
        assert_eq!(t.hit(t0 + Duration::from_secs(122), i), None);
        assert_eq!(t.due(t0 + Duration::from_secs(122), i, true), Some(1));
        assert_eq!(t.due(t0 + Duration::from_secs(122), i, true), None);
    }

    #[test]
    fn per_source_slots_are_capped_and_given_back() {
        let table = Arc::new(PerSource::new(2));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = table.try_hold(a).unwrap();
        let s2 = table.try_hold(mapped).unwrap();
        // An IPv4-mapped peer is the same host.
        assert!(table.try_hold(a).is_none());
        assert!(table.try_hold(mapped).is_none());
        // Another source is not affected.
        let s3 = table.try_hold(b).unwrap();
        assert_eq!(table.held(a), 2);
        drop(s1);
        assert_eq!(table.held(a), 1);
        let s4 = table.try_hold(a).unwrap();
        drop((s2, s3, s4));
        // Nothing is kept for sources without connections.
        assert!(lock(&table.held).is_empty());
    }

    #[test]
    fn deadlines_first_frame() {
        let cfg = listen("first_frame_timeout = \"30s\"\nframe_timeout = \"20s\"");
        let mut d = Deadlines::new(&cfg, Duration::from_secs(4));
        // The handshake's time counts.
        assert_eq!(d.next(), (Duration::from_secs(26), Timeout::FirstFrame));
        // A silent connection ends at first_frame_timeout, not at idle_timeout.
        d.waited(Duration::from_secs(26));
        d.progress(0, false, false);
        assert_eq!(d.next(), (Duration::ZERO, Timeout::FirstFrame));
    }

    #[test]
    fn deadlines_dribbled_bytes_never_restart_the_clocks() {
        let cfg = listen("first_frame_timeout = \"30s\"\nframe_timeout = \"20s\"");
        let mut d = Deadlines::new(&cfg, Duration::ZERO);
        // A complete frame first.
        d.waited(Duration::from_secs(1));
        d.progress(1, true, false);
        assert_eq!(d.next(), (Duration::from_secs(600), Timeout::Idle));
        // Then a byte every 2 s, never a frame (the clock starts with the first byte).
        for _ in 0..10 {
            d.waited(Duration::from_secs(2));
            d.progress(0, true, true);
        }
        assert_eq!(d.next(), (Duration::from_secs(2), Timeout::Frame));
        d.waited(Duration::from_secs(2));
        d.progress(0, true, true);
        assert_eq!(d.next(), (Duration::ZERO, Timeout::Frame));
        // Bytes the decoder consumed while skipping an oversize frame count the same.
        let mut d = Deadlines::new(&cfg, Duration::ZERO);
        d.progress(1, true, false);
        d.waited(Duration::from_secs(5));
        d.progress(0, true, false);
        assert_eq!(d.next(), (Duration::from_secs(20), Timeout::Frame));
        d.waited(Duration::from_secs(20));
        d.progress(0, true, false);
        assert_eq!(d.next(), (Duration::ZERO, Timeout::Frame));
    }

    #[test]
    fn deadlines_restart_on_complete_frames() {
        let cfg = listen("frame_timeout = \"20s\"\nidle_timeout = \"60s\"");
        let mut d = Deadlines::new(&cfg, Duration::ZERO);
        for _ in 0..100 {
            // A frame and the start of the next one in each read: a busy sender.
            d.waited(Duration::from_secs(5));
            d.progress(1, true, true);
            assert_eq!(d.next(), (Duration::from_secs(20), Timeout::Frame));
        }
        // Frames that end with the read: idle between them.
        d.waited(Duration::from_secs(5));
        d.progress(2, true, false);
        assert_eq!(d.next(), (Duration::from_secs(60), Timeout::Idle));
        d.waited(Duration::from_secs(50));
        d.progress(0, false, false);
        assert_eq!(d.next(), (Duration::from_secs(10), Timeout::Idle));
        // An idle_timeout shorter than frame_timeout still applies.
        let cfg = listen("frame_timeout = \"20s\"\nidle_timeout = \"5s\"");
        let mut d = Deadlines::new(&cfg, Duration::ZERO);
        d.progress(1, true, true);
        assert_eq!(d.next(), (Duration::from_secs(5), Timeout::Idle));
    }

    // Captured from a real /proc/net/udp and /proc/net/udp6 (a socket with a 2,304-byte
    // receive buffer that was sent 50 datagrams and never read).
    const UDP4: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
  746: 00000000:B80D 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18065 2 00000000d3fe3be7 0         
 5087: 0100007F:C902 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 18063 2 00000000791fc7ba 49        
";
    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 8734: 00000000000000000000000000000000:9741 00000000000000000000000000000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 18064 2 00000000973afd79 49
10171: 00000000000000000000000000000000:DCDE 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18066 2 00000000b5e8c25c 0
";

    #[test]
    fn udp_drops_are_read_for_our_socket_only() {
        assert_eq!(udp_drops(UDP4, 18063), Some(49));
        assert_eq!(udp_drops(UDP4, 18065), Some(0));
        assert_eq!(udp_drops(UDP4, 18064), None);
        assert_eq!(udp_drops(UDP6, 18064), Some(49));
        assert_eq!(udp_drops(UDP6, 18066), Some(0));
        assert_eq!(udp_drops("", 1), None);
        // A short or garbled line is skipped, not a panic.
        assert_eq!(udp_drops("header\n 1: x y\n", 1), None);
        // The kernel prints the 32-bit counter signed: past 2^31 it is negative.
        let wrapped = UDP4.replace(" 49 ", " -2 ");
        assert_eq!(udp_drops(&wrapped, 18063), Some(u32::MAX - 1));
        assert_eq!(socket_inode("socket:[18063]"), Some(18063));
        assert_eq!(socket_inode("pipe:[18063]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[tokio::test]
    async fn kernel_drops_of_a_stalled_socket_are_counted() {
        // A tiny receive buffer, never read.
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_recv_buffer_size(1024).unwrap();
        s.set_nonblocking(true).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let sock = UdpSocket::from_std(s.into()).unwrap();
        // Another socket of ours, which must not be counted.
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut k = KernelDrops::of(&sock).expect("the drop counter of our socket");
        let mut k_other = KernelDrops::of(&other).expect("the drop counter of our socket");
        let metrics = Metrics::default();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let mut sent = 0u64;
        for _ in 0..50 {
            if tx.send_to(&[b'x'; 1000], to).is_ok() {
                sent += 1;
            }
        }
        k.sample(&metrics);
        k_other.sample(&metrics);
        let dropped = metrics.dropped(DropReason::UdpKernel);
        // What was not dropped is still queued in the socket.
        let mut queued = 0u64;
        let mut buf = [0u8; 2048];
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await
        {
            queued += 1;
        }
        assert!(dropped > 0, "sent {sent}, queued {queued}");
        assert_eq!(dropped + queued, sent);
        // Sampling again adds nothing new.
        k.sample(&metrics);
        assert_eq!(metrics.dropped(DropReason::UdpKernel), dropped);
    }

    // Captured from a real /proc/self/limits.
    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max processes             96362                96362                processes 
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
";

    #[test]
    fn open_file_limit_check() {
        assert_eq!(open_file_limits(LIMITS), Some((Some(20000), Some(20000))));
        let unlimited = LIMITS.replace(
            "Max open files            20000                20000",
            "Max open files            1024                 unlimited",
        );
        assert_eq!(open_file_limits(&unlimited), Some((Some(1024), None)));
        assert_eq!(open_file_limits("Max cpu time unlimited unlimited"), None);
        // The default 1,024 connections do not fit under `ulimit -n 1024`.
        assert_eq!(fd_shortfall(1024, Some(1024)), Some(1024 + FD_RESERVE));
        assert_eq!(fd_shortfall(1024, Some(65536)), None);
        assert_eq!(fd_shortfall(1024, None), None);
        assert_eq!(fd_shortfall(0, Some(10)), None);
        // Summed over the TCP/TLS listeners only.
        let text = "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:1\"\nmax_connections = 500\n\
            [[listen]]\nprotocol = \"udp\"\naddress = \"127.0.0.1:1\"\n\
            [[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:2\"\n\
            [output]\nkind = \"stdout\"\n";
        let cfg = crate::config::Config::parse(text).unwrap();
        assert_eq!(connections_wanted(&cfg.listen), 1524);
    }
}
