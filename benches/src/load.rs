//! Sending a corpus to a syslog listener on loopback, and waiting for its
//! delivery: the pieces of the `loadgen` binary, reusable by the fault suite.
//!
//! Every function refuses non-loopback addresses: the harness only ever talks
//! to processes it started on this machine.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// How messages are delimited on a TCP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Each message followed by `\n` (non-transparent framing).
    Lf,
    /// Each message preceded by its length and a space (RFC 6587 octet counting).
    Octet,
}

/// What one sender did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendReport {
    /// Messages written (TCP) or handed to the kernel (UDP).
    pub messages: u64,
    /// Payload bytes written, framing included.
    pub bytes: u64,
    /// Messages not sent: UDP messages too large for a datagram, or failed sends.
    pub skipped: u64,
    /// From the first byte written to the last, in seconds.
    pub seconds: f64,
}

/// Errors out unless `addr` is a loopback address.
pub fn require_loopback(addr: SocketAddr) -> io::Result<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} is not a loopback address"),
        ))
    }
}

/// Splits `lines` into `parts` contiguous, nearly equal runs.
pub fn split<'a>(lines: &'a [&'a [u8]], parts: usize) -> Vec<&'a [&'a [u8]]> {
    let parts = parts.max(1);
    let per = lines.len().div_ceil(parts).max(1);
    lines.chunks(per).collect()
}

/// Encodes messages (without terminators) into one TCP byte stream.
pub fn frame(lines: &[&[u8]], framing: Framing) -> Vec<u8> {
    let total: usize = lines.iter().map(|l| l.len() + 8).sum();
    let mut out = Vec::with_capacity(total);
    for line in lines {
        frame_into(&mut out, line, framing);
    }
    out
}

/// Appends one message, framed, to `out`.
fn frame_into(out: &mut Vec<u8>, line: &[u8], framing: Framing) {
    if framing == Framing::Octet {
        out.extend_from_slice(line.len().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(line);
    } else {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
}

/// The `i`-th of `n` nearly equal shares of `total` (the first `total % n` shares get one
/// more), so that the shares add up to `total`.
pub fn share(total: u64, n: usize, i: usize) -> u64 {
    let n = n.max(1) as u64;
    let i = i as u64;
    total / n + u64::from(i < total % n)
}

/// When the `sent`-th message is due at `rate` messages per second, counted from the start
/// of sending (zero when `rate` is 0: unpaced).
pub fn due(sent: u64, rate: u64) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let secs = sent / rate;
    let rest = sent % rate;
    // rest < rate, so rest * 1e9 / rate fits and is below 1e9.
    let nanos = u128::from(rest) * 1_000_000_000 / u128::from(rate);
    Duration::new(secs, u32::try_from(nanos).unwrap_or(999_999_999))
}

/// Sleeps until the `sent`-th message is due (see [`due`]); returns at once when late.
fn pace(start: Instant, sent: u64, rate: u64) {
    let due = due(sent, rate);
    let now = start.elapsed();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Messages written between two looks at the clock when pacing: 1 ms worth at `rate`
/// (everything at once when unpaced).
fn pace_slice(rate: u64) -> u64 {
    if rate == 0 {
        u64::MAX
    } else {
        (rate / 1000).max(1)
    }
}

/// Shuts the write side of `sock` down and drains it until the peer closes or `linger`
/// passes (a listener that keeps the connection open is fine).
fn finish_tcp(mut sock: TcpStream, linger: Duration) -> io::Result<()> {
    sock.shutdown(std::net::Shutdown::Write)?;
    sock.set_read_timeout(Some(linger.max(Duration::from_millis(1))))?;
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + linger;
    while Instant::now() < deadline {
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Writes `stream` (already framed, `messages` messages) over one TCP
/// connection to `addr`, then shuts the write side down and waits (up to
/// `linger`) for the peer to close, so the bytes are all read.
pub fn send_tcp(
    addr: SocketAddr,
    stream: &[u8],
    messages: u64,
    linger: Duration,
) -> io::Result<SendReport> {
    require_loopback(addr)?;
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_nodelay(true)?;
    let start = Instant::now();
    for chunk in stream.chunks(256 * 1024) {
        sock.write_all(chunk)?;
    }
    sock.flush()?;
    let seconds = start.elapsed().as_secs_f64();
    finish_tcp(sock, linger)?;
    Ok(SendReport {
        messages,
        bytes: stream.len() as u64,
        skipped: 0,
        seconds,
    })
}

/// Writes `count` messages over one TCP connection to `addr`, taking `lines` in turn and
/// starting again from the first when they run out, framing them as it goes (so a small
/// corpus makes a long run without being copied). At most `rate` messages a second when
/// `rate` is not 0: the `n`-th message is not written before `n / rate` seconds, and a
/// receiver that holds the connection back is caught up with afterwards. Ends like
/// [`send_tcp`].
pub fn send_tcp_cycle(
    addr: SocketAddr,
    lines: &[&[u8]],
    framing: Framing,
    count: u64,
    rate: u64,
    linger: Duration,
) -> io::Result<SendReport> {
    require_loopback(addr)?;
    if lines.is_empty() && count > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no messages to send",
        ));
    }
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_nodelay(true)?;
    let slice = pace_slice(rate);
    let mut buf = Vec::with_capacity(CHUNK + 70_000);
    let mut next = lines.iter().cycle();
    let mut report = SendReport::default();
    let start = Instant::now();
    while report.messages < count {
        buf.clear();
        let mut n = 0u64;
        while report.messages + n < count && n < slice && buf.len() < CHUNK {
            let Some(line) = next.next() else { break };
            frame_into(&mut buf, line, framing);
            n += 1;
        }
        sock.write_all(&buf)?;
        report.messages += n;
        report.bytes += buf.len() as u64;
        pace(start, report.messages, rate);
    }
    sock.flush()?;
    report.seconds = start.elapsed().as_secs_f64();
    finish_tcp(sock, linger)?;
    Ok(report)
}

/// The most bytes [`send_tcp_cycle`] frames before it writes.
const CHUNK: usize = 256 * 1024;

/// Sends `lines` over one RELP session to `addr` with at most `window` messages
/// unanswered (the test kit's client), and returns once every message is answered and
/// the session closed: with mcas-forward, once every message is durable.
pub fn send_relp(addr: SocketAddr, lines: &[&[u8]], window: usize) -> io::Result<SendReport> {
    require_loopback(addr)?;
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(60)))?;
    let start = Instant::now();
    let mut client = mcas_testkit::relp::Client::open(sock, window)?;
    let mut bytes = 0u64;
    for line in lines {
        client.send(line)?;
        bytes += line.len() as u64;
    }
    client.close()?;
    Ok(SendReport {
        messages: lines.len() as u64,
        bytes,
        skipped: 0,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Sends one datagram per message to `addr`, at most `rate` messages per
/// second (0: as fast as the socket takes them).
pub fn send_udp(addr: SocketAddr, lines: &[&[u8]], rate: u64) -> io::Result<SendReport> {
    send_udp_cycle(addr, lines, lines.len() as u64, rate)
}

/// [`send_udp`] for `count` messages, taking `lines` in turn and starting again from the
/// first when they run out.
pub fn send_udp_cycle(
    addr: SocketAddr,
    lines: &[&[u8]],
    count: u64,
    rate: u64,
) -> io::Result<SendReport> {
    require_loopback(addr)?;
    if lines.is_empty() && count > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no messages to send",
        ));
    }
    let sock = UdpSocket::bind((addr.ip(), 0))?;
    sock.connect(addr)?;
    let mut report = SendReport::default();
    let start = Instant::now();
    // Pace in slices of 1 ms worth of messages.
    let slice = pace_slice(rate);
    let counts = usize::try_from(count).unwrap_or(usize::MAX);
    for (i, line) in lines.iter().cycle().take(counts).enumerate() {
        if line.len() > 65_000 {
            report.skipped += 1;
            continue;
        }
        match sock.send(line) {
            Ok(_) => {
                report.messages += 1;
                report.bytes += line.len() as u64;
            }
            Err(_) => report.skipped += 1,
        }
        let sent = i as u64 + 1;
        if rate != 0 && sent.is_multiple_of(slice) {
            pace(start, sent, rate);
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Counts the lines of a file as it grows, reading only what was added.
#[derive(Debug)]
pub struct LineCounter {
    file: Option<std::fs::File>,
    path: std::path::PathBuf,
    lines: u64,
    buf: Vec<u8>,
}

impl LineCounter {
    /// A counter for `path`, which need not exist yet.
    pub fn new(path: &Path) -> Self {
        Self {
            file: None,
            path: path.to_owned(),
            lines: 0,
            buf: vec![0; 1 << 20],
        }
    }

    /// Reads what was appended since the last call; returns the line count.
    pub fn poll(&mut self) -> io::Result<u64> {
        if self.file.is_none() {
            match std::fs::File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        if let Some(f) = self.file.as_mut() {
            loop {
                let n = f.read(&mut self.buf)?;
                if n == 0 {
                    break;
                }
                self.lines += memchr_count(&self.buf[..n]) as u64;
            }
        }
        Ok(self.lines)
    }
}

fn memchr_count(buf: &[u8]) -> usize {
    buf.iter().filter(|&&b| b == b'\n').count()
}

/// `GET path` over HTTP/1.1 on loopback; the body of a 200 answer.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    require_loopback(addr)?;
    mcas_testkit::http::get_ok(addr, path)
}

/// Reads a count from an HTTP/1.1 endpoint on loopback: the body's first
/// unsigned integer, or the integer after `"<field>":` when `field` is given (or, on a
/// Prometheus text page, the value of the series `<field>`).
pub fn http_count(addr: SocketAddr, path: &str, field: Option<&str>) -> io::Result<u64> {
    let body = http_get(addr, path)?;
    let rest = match field {
        Some(f) => {
            // A JSON field, or a series of a Prometheus text page (its sample line).
            let (json, prom) = (format!("\"{f}\""), format!("\n{f} "));
            let (at, len) = body
                .find(&json)
                .map(|at| (at, json.len()))
                .or_else(|| body.find(&prom).map(|at| (at, prom.len())))
                .ok_or_else(|| io::Error::other(format!("no {f} in {body}")))?;
            &body[at + len..]
        }
        None => &body,
    };
    let digits: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .map_err(|_| io::Error::other(format!("no count in {rest}")))
}

/// When [`wait_for`] gives up.
#[derive(Debug, Clone, Copy)]
pub struct WaitLimits {
    /// Give up this long after `since`, whatever happens.
    pub timeout: Duration,
    /// Give up when the count has not moved for this long (UDP loss, a
    /// receiver that dropped rows).
    pub idle: Duration,
    /// Time between polls.
    pub interval: Duration,
}

/// Polls `count` until it returns at least `expect`, or a limit is reached.
/// Returns the last count seen and when it was first seen, relative to `since`.
pub fn wait_for(
    mut count: impl FnMut() -> io::Result<u64>,
    expect: u64,
    since: Instant,
    limits: WaitLimits,
) -> (u64, Duration) {
    let mut last = 0;
    let mut at = since.elapsed();
    loop {
        if let Ok(n) = count() {
            if n != last {
                last = n;
                at = since.elapsed();
            }
            if n >= expect {
                return (n, at);
            }
        }
        let now = since.elapsed();
        if now > limits.timeout || now.saturating_sub(at) > limits.idle {
            return (last, at);
        }
        std::thread::sleep(limits.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead as _;
    use std::net::TcpListener;

    #[test]
    fn framing_encodes_both_ways() {
        let lines: Vec<&[u8]> = vec![b"<13>a b", b"xyz"];
        assert_eq!(frame(&lines, Framing::Lf), b"<13>a b\nxyz\n");
        assert_eq!(frame(&lines, Framing::Octet), b"7 <13>a b3 xyz");
    }

    #[test]
    fn split_keeps_every_line_in_order() {
        let owned: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
        let lines: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let parts = split(&lines, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), lines);
        assert_eq!(split(&lines, 20).concat(), lines);
    }

    #[test]
    fn refuses_other_addresses() {
        let addr: SocketAddr = "192.0.2.1:514".parse().expect("addr");
        assert!(send_udp(addr, &[b"x"], 0).is_err());
        assert!(require_loopback("[::1]:514".parse().expect("addr")).is_ok());
    }

    #[test]
    fn tcp_bytes_all_arrive() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read");
            got
        });
        let lines: Vec<&[u8]> = vec![b"one", b"two"];
        let stream = frame(&lines, Framing::Lf);
        let report = send_tcp(addr, &stream, 2, Duration::from_secs(2)).expect("send");
        assert_eq!(report.messages, 2);
        assert_eq!(report.bytes, 8);
        assert_eq!(reader.join().expect("join"), b"one\ntwo\n");
    }

    #[test]
    fn shares_add_up_and_differ_by_one_at_most() {
        let shares: Vec<u64> = (0..3).map(|i| share(10, 3, i)).collect();
        assert_eq!(shares, vec![4, 3, 3]);
        assert_eq!(share(10_000_000, 1, 0), 10_000_000);
        assert_eq!((0..8).map(|i| share(5, 8, i)).sum::<u64>(), 5);
        assert_eq!(share(7, 0, 0), 7);
    }

    #[test]
    fn due_spreads_messages_over_the_second() {
        assert_eq!(due(0, 100_000), Duration::ZERO);
        assert_eq!(due(100, 100_000), Duration::from_millis(1));
        assert_eq!(due(250_000, 100_000), Duration::from_millis(2500));
        assert_eq!(due(10_000_000, 100_000), Duration::from_secs(100));
        assert_eq!(due(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(due(u64::MAX, 0), Duration::ZERO);
        assert_eq!(pace_slice(100_000), 100);
        assert_eq!(pace_slice(10), 1);
    }

    /// Accepts one connection on a fresh loopback port and returns everything read from it.
    fn one_connection() -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read");
            got
        });
        (addr, reader)
    }

    #[test]
    fn tcp_cycle_starts_again_from_the_first_line() {
        let lines: Vec<&[u8]> = vec![b"a", b"bc", b"def"];
        let (addr, reader) = one_connection();
        let report =
            send_tcp_cycle(addr, &lines, Framing::Lf, 7, 0, Duration::from_secs(2)).expect("send");
        assert_eq!((report.messages, report.bytes), (7, 20));
        assert_eq!(reader.join().expect("join"), b"a\nbc\ndef\na\nbc\ndef\na\n");

        let (addr, reader) = one_connection();
        let report = send_tcp_cycle(addr, &lines, Framing::Octet, 4, 0, Duration::from_secs(2))
            .expect("send");
        assert_eq!((report.messages, report.bytes), (4, 15));
        assert_eq!(reader.join().expect("join"), b"1 a2 bc3 def1 a");
    }

    #[test]
    fn tcp_cycle_paced_sends_every_message_once() {
        // 2,500 messages at 1,000,000/s: slices of 1,000 messages, the last one partial.
        let owned: Vec<Vec<u8>> = (0..7).map(|i| format!("m{i}").into_bytes()).collect();
        let lines: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let (addr, reader) = one_connection();
        let report = send_tcp_cycle(
            addr,
            &lines,
            Framing::Lf,
            2500,
            1_000_000,
            Duration::from_secs(2),
        )
        .expect("send");
        assert_eq!(report.messages, 2500);
        let got = reader.join().expect("join");
        let want: Vec<u8> = (0..2500)
            .flat_map(|i| format!("m{}\n", i % 7).into_bytes())
            .collect();
        assert_eq!(got, want);
        assert_eq!(report.bytes, want.len() as u64);
    }

    #[test]
    fn cycles_refuse_an_empty_corpus() {
        // Refused before connecting: nothing listens on this port.
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let err = send_tcp_cycle(addr, &[], Framing::Lf, 1, 0, Duration::ZERO).expect_err("empty");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let err = send_udp_cycle(rx.local_addr().expect("addr"), &[], 1, 0).expect_err("empty");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn udp_cycle_starts_again_from_the_first_line() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let lines: Vec<&[u8]> = vec![b"a", b"bc"];
        let report = send_udp_cycle(rx.local_addr().expect("addr"), &lines, 3, 0).expect("send");
        assert_eq!((report.messages, report.bytes), (3, 4));
        let mut buf = [0u8; 16];
        for want in [&b"a"[..], b"bc", b"a"] {
            let n = rx.recv(&mut buf).expect("recv");
            assert_eq!(&buf[..n], want);
        }
    }

    #[test]
    fn udp_datagrams_arrive_and_oversize_is_skipped() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let big = vec![b'x'; 70_000];
        let lines: Vec<&[u8]> = vec![b"a", &big, b"bc"];
        let report = send_udp(rx.local_addr().expect("addr"), &lines, 1000).expect("send");
        assert_eq!((report.messages, report.skipped, report.bytes), (2, 1, 3));
        let mut buf = [0u8; 16];
        let n = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"a");
        let n = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"bc");
    }

    #[test]
    fn line_counter_reads_appended_lines_only() {
        let dir = std::env::temp_dir().join(format!("mcas-benches-lc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("out.json");
        let _ = std::fs::remove_file(&path);
        let mut c = LineCounter::new(&path);
        assert_eq!(c.poll().expect("poll"), 0);
        std::fs::write(&path, b"{}\n{}\n").expect("write");
        assert_eq!(c.poll().expect("poll"), 2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(b"{}\n{").expect("append");
        assert_eq!(c.poll().expect("poll"), 3);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn wait_for_stops_on_target_or_idle() {
        let since = Instant::now();
        let limits = WaitLimits {
            timeout: Duration::from_secs(30),
            idle: Duration::from_millis(50),
            interval: Duration::from_millis(1),
        };
        let mut n = 0;
        let (got, _) = wait_for(
            || {
                n += 1;
                Ok(n)
            },
            10,
            since,
            limits,
        );
        assert_eq!(got, 10);
        // A count stuck below the target ends by the idle limit, not the timeout.
        let (got, _) = wait_for(|| Ok(3), 10, since, limits);
        assert_eq!(got, 3);
        assert!(since.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn http_count_reads_a_field() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().expect("accept");
                let mut req = io::BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                while req.read_line(&mut line).expect("read") > 2 {
                    line.clear();
                }
                s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n{\"batches\":3,\"rows\":12345}",
                )
                .expect("write");
            }
        });
        assert_eq!(
            http_count(addr, "/stats", Some("rows")).expect("rows"),
            12_345
        );
        assert_eq!(http_count(addr, "/stats", None).expect("first"), 3);
        server.join().expect("join");
    }
}
