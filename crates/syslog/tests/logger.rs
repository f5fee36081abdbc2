//! A real client: util-linux `logger` sends to a loopback TCP or UDP socket; every message
//! must come out of the codec (or the datagram helper) and the parser intact.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mcas_syslog::codec::{Frame, Framing, SyslogCodec};
use mcas_syslog::{Message, Protocol};
use tokio_util::codec::Decoder;

const TIMEOUT: Duration = Duration::from_secs(20);

fn lines() -> Vec<String> {
    let mut v = vec![
        "CEF:0|Vendor|Product|1.0|100|Port scan|5|src=10.0.0.1 dst=10.0.0.2 msg=scan: 1024 ports"
            .to_owned(),
        "plain text with [brackets] and \"quotes\" and = signs".to_owned(),
        "unicode: héllo wörld ✓".to_owned(),
        "Oct 11 22:14:15 looks like a timestamp".to_owned(),
        "x".repeat(700),
    ];
    for i in 0..20 {
        v.push(format!("message number {i} CEF:0|V|P|1|{i}|n|3|cnt={i}"));
    }
    v
}

fn spawn_logger(args: &[&str]) -> Child {
    let mut child = Command::new("logger")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("util-linux `logger` must be installed (it ships with the base system)");
    let mut stdin = child.stdin.take().expect("stdin");
    let body: String = lines().iter().map(|l| format!("{l}\n")).collect();
    std::thread::spawn(move || {
        let _ = stdin.write_all(body.as_bytes());
    });
    child
}

fn wait(mut child: Child) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "logger failed: {status}");
            return;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("logger did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn short_hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(h.trim().split('.').next()?.to_owned())
}

fn check(messages: &[Message<'_>], rfc3164: bool) {
    let want = lines();
    assert_eq!(messages.len(), want.len(), "every message arrives");
    let host = short_hostname();
    for (m, line) in messages.iter().zip(&want) {
        assert_eq!(
            m.protocol(),
            if rfc3164 {
                Protocol::Rfc3164
            } else {
                Protocol::Rfc5424
            }
        );
        assert_eq!(
            (m.facility(), m.severity()),
            (Some(20), Some(4)),
            "local4.warning"
        );
        assert_eq!(m.app_name(), Some("mcas-test"));
        assert_eq!(m.msg_lossy(), line.as_str());
        assert!(m.hostname().is_some_and(|h| !h.is_empty()));
        if let (Some(h), Some(got)) = (&host, m.hostname()) {
            assert_eq!(got, h);
        }
        let ts = m.timestamp().expect("timestamp resolves");
        let age = jiff::Timestamp::now().duration_since(ts).as_secs().abs();
        assert!(age < 3600, "timestamp {ts} is near now");
        if !rfc3164 {
            let tq = m
                .structured_data()
                .get("timeQuality")
                .expect("logger writes timeQuality");
            assert_eq!(tq.param("tzKnown").as_deref(), Some("1"));
        }
    }
}

/// Runs logger against a loopback TCP listener and feeds each read into a codec.
fn tcp_run(extra: &[&str]) -> (Vec<Frame>, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port().to_string();
    let mut args = vec![
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-T",
        "-p",
        "local4.warning",
        "-t",
        "mcas-test",
    ];
    args.extend_from_slice(extra);
    let child = spawn_logger(&args);
    let start = Instant::now();
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("no connection from logger: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut codec = SyslogCodec::new(Framing::Auto);
    let mut buf = BytesMut::new();
    let mut wire = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 1500];
    loop {
        let n = stream
            .read(&mut chunk)
            .expect("read (bounded by a timeout)");
        if n == 0 {
            break;
        }
        wire.extend_from_slice(&chunk[..n]);
        buf.extend_from_slice(&chunk[..n]);
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            frames.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).expect("decode_eof") {
        frames.push(f);
    }
    wait(child);
    (frames, wire)
}

fn parse_frames(frames: &[Frame]) -> Vec<Message<'_>> {
    frames
        .iter()
        .map(|f| {
            assert!(
                f.notice().is_none() && !f.is_truncated(),
                "clean frame: {f:?}"
            );
            mcas_syslog::parse(f.data()).expect("parses")
        })
        .collect()
}

fn redecode(framing: Framing, wire: &[u8]) -> Vec<Frame> {
    let mut codec = SyslogCodec::new(framing);
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Some(f) = codec.decode_eof(&mut buf).expect("decode") {
        out.push(f);
    }
    out
}

#[test]
fn logger_tcp_lf_framing() {
    let (frames, wire) = tcp_run(&[]);
    assert!(wire.ends_with(b"\n"), "logger ends TCP frames with LF");
    check(&parse_frames(&frames), false);
    assert_eq!(redecode(Framing::NonTransparent, &wire), frames);
}

#[test]
fn logger_tcp_octet_counting() {
    let (frames, wire) = tcp_run(&["--octet-count"]);
    assert!(wire[0].is_ascii_digit(), "logger wrote an octet count");
    check(&parse_frames(&frames), false);
    assert_eq!(redecode(Framing::OctetCounting, &wire), frames);
}

#[test]
fn logger_tcp_rfc3164() {
    let (frames, _) = tcp_run(&["--rfc3164"]);
    check(&parse_frames(&frames), true);
}

#[test]
fn logger_udp() {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port().to_string();
    let child = spawn_logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-d",
        "-p",
        "local4.warning",
        "-t",
        "mcas-test",
    ]);
    let want = lines().len();
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while datagrams.len() < want {
        let (n, _) = sock
            .recv_from(&mut buf)
            .expect("datagram within the timeout");
        datagrams.push(buf[..n].to_vec());
    }
    wait(child);
    let messages: Vec<Message<'_>> = datagrams
        .iter()
        .map(|d| mcas_syslog::parse(mcas_syslog::datagram(d)).expect("parses"))
        .collect();
    check(&messages, false);
}
