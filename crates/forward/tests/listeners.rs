//! Listener guards: TLS with mutual authentication, the source allow-list, the connection
//! limit. Output to a file, so no emulator is needed.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt as _;

async fn tls_send(
    port: u16,
    pki: &Pki,
    identity: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    line: &str,
) -> std::io::Result<()> {
    let conn = tokio_rustls::TlsConnector::from(pki.client_config(identity));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut s = conn
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    s.write_all(line.as_bytes()).await?;
    s.flush().await?;
    // A refused client certificate shows up after the handshake on TLS 1.3: read the alert.
    let mut buf = [0u8; 1];
    let _ = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::io::AsyncReadExt::read(&mut s, &mut buf),
    )
    .await;
    s.shutdown().await
}

fn rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_only_clients_of_the_configured_ca() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki.write_server_files(dir.path());
    let cfg = format!(
        r#"
[[listen]]
protocol = "tls"
address = "127.0.0.1:{{PORT}}"
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"

[output]
kind = "file"
path = "{{DIR}}/rows.ndjson"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "50ms"
"#
    );
    let d = dir.path().to_owned();
    let fwd = tokio::task::spawn_blocking(move || forwarder(&d, &cfg, &[]))
        .await
        .unwrap();
    let ev = |id: &str| {
        format!("<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|tls|5|externalId={id}\n")
    };
    // The readiness probe of the test harness is a plain TCP connect: one failed handshake.
    let f = &fwd;
    let handshakes = || f.metric("mcas_forward_dropped_total{reason=\"tls_handshake\"}");
    assert!(wait_until_async(Duration::from_secs(15), || handshakes() == Some(1.0)).await);

    tls_send(fwd.port, &pki, Some(&pki.client), &ev("tls-ok"))
        .await
        .expect("a client of the CA is accepted");
    let _ = tls_send(fwd.port, &pki, None, &ev("tls-none")).await;
    let _ = tls_send(fwd.port, &pki, Some(&pki.stranger), &ev("tls-stranger")).await;

    let out = dir.path().join("rows.ndjson");
    assert!(
        wait_until_async(Duration::from_secs(10), || !rows(&out).is_empty()).await,
        "{}",
        fwd.stderr_text()
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || handshakes() == Some(3.0)).await,
        "two more refused handshakes: {:?}",
        handshakes()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = rows(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["ExtID"], "tls-ok");
    drop(fwd);
}

#[test]
fn allow_list_and_connection_limit_refuse_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let second = free_port();
    let cfg = format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"
max_connections = 1

[[listen]]
protocol = "tcp"
address = "127.0.0.1:{second}"
allow = ["10.0.0.0/8", "192.168.0.0/16"]

[[listen]]
protocol = "udp"
address = "127.0.0.1:{second}"
allow = ["10.0.0.0/8"]

[output]
kind = "file"
path = "{{DIR}}/rows.ndjson"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "50ms"
"#
    );
    let fwd = forwarder(dir.path(), &cfg, &[]);
    let ev = |id: &str| {
        format!("<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|guard|5|externalId={id}\n")
    };
    // The harness's readiness probe used the only slot for a moment: wait until it was
    // accepted and its slot is free again.
    assert!(wait_until(Duration::from_secs(10), || fwd
        .metric("mcas_forward_connections_total")
        .is_some_and(|n| n >= 1.0)
        && fwd.metric("mcas_forward_connections_open") == Some(0.0)));
    // The first connection holds the only slot; the second is refused.
    let mut first = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    first.write_all(ev("first").as_bytes()).unwrap();
    let out = dir.path().join("rows.ndjson");
    assert!(wait_until(Duration::from_secs(10), || rows(&out).len() == 1));
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    let _ = extra.write_all(ev("over-limit").as_bytes());
    assert!(wait_until(Duration::from_secs(10), || fwd.metric(
        "mcas_forward_dropped_total{reason=\"connection_limit\"}"
    ) == Some(1.0)));
    // Loopback is not in the allow-list of the second listener, over TCP or UDP.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", second)).unwrap();
    let _ = s.write_all(ev("not-allowed-tcp").as_bytes());
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(ev("not-allowed-udp").as_bytes(), ("127.0.0.1", second))
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || fwd
        .metric("mcas_forward_dropped_total{reason=\"not_allowed\"}")
        == Some(2.0)));
    // The slot frees when the first connection closes.
    drop(first);
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", fwd.port))
            .and_then(|mut s| s.write_all(ev("after").as_bytes()))
            .is_ok()
            && rows(&out).iter().any(|r| r["ExtID"] == "after")
    }));
    let ids: Vec<String> = rows(&out)
        .iter()
        .map(|r| r["ExtID"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&"first".to_owned()) && ids.contains(&"after".to_owned()));
    assert!(
        !ids.iter()
            .any(|i| i.starts_with("not-allowed") || i == "over-limit"),
        "{ids:?}"
    );
}

fn cef(id: &str) -> String {
    format!("<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|guard|5|externalId={id}\n")
}

/// Lines of the forwarder's log that contain `needle`.
fn log_lines(fwd: &Forwarder, needle: &str) -> Vec<String> {
    fwd.stderr_text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Wait until the harness's readiness probe (a plain connect) has come and gone.
fn probe_gone(fwd: &Forwarder) {
    assert!(
        wait_until(Duration::from_secs(10), || fwd
            .metric("mcas_forward_connections_total")
            .is_some_and(|n| n >= 1.0)
            && fwd.metric("mcas_forward_connections_open") == Some(0.0)),
        "{}",
        fwd.stderr_text()
    );
}

/// Issue 13, defect 6: one host dribbling bytes on many connections held every slot, for
/// ever. Now it gets at most `max_connections_per_source` slots, and its connections are
/// cut by the first-frame and frame-progress deadlines although bytes keep coming; a
/// sender on another address still gets through.
#[test]
fn slowloris_from_one_source_is_cut_while_another_source_gets_through() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{PORT}"
max_connections = 5
max_connections_per_source = 4
first_frame_timeout = "5s"
frame_timeout = "5s"

[output]
kind = "file"
path = "{DIR}/rows.ndjson"

[metrics]
address = "127.0.0.1:{METRICS}"

[pipeline]
flush_interval = "50ms"
"#;
    let fwd = forwarder(dir.path(), cfg, &[]);
    probe_gone(&fwd);
    let port = fwd.port;
    let out = dir.path().join("rows.ndjson");

    // Four holders from 127.0.0.1: two never finish a frame, two send one event and then
    // dribble a frame that never ends. Every 250 ms each sends one more byte.
    let mut holders = Vec::new();
    for i in 0..4 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        if i >= 2 {
            s.write_all(cef(&format!("held-{i}")).as_bytes()).unwrap();
        }
        s.write_all(b"<").unwrap();
        holders.push(s);
    }
    let dribbling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let dribbler = {
        let socks: Vec<_> = holders.iter().map(|s| s.try_clone().unwrap()).collect();
        let on = dribbling.clone();
        std::thread::spawn(move || {
            let end = std::time::Instant::now() + Duration::from_secs(30);
            while on.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < end {
                for mut s in &socks {
                    let _ = s.write_all(b"x");
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    assert!(wait_until(Duration::from_secs(5), || fwd
        .metric("mcas_forward_connections_open")
        == Some(4.0)));

    // More from the same address: refused at once, and counted, with one warning.
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = s.write_all(cef("over-source-limit").as_bytes());
        assert!(closed_by_peer(&mut s, Duration::from_secs(5)));
    }
    assert!(wait_until(Duration::from_secs(5), || fwd.metric(
        "mcas_forward_dropped_total{reason=\"source_connection_limit\"}"
    ) == Some(3.0)));

    // Another host takes the last slot, and its events arrive.
    let mut other = connect_from("127.0.0.2", port).unwrap();
    other.write_all(cef("other-host").as_bytes()).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || rows(&out)
            .iter()
            .any(|r| r["ExtID"] == "other-host")),
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(
        fwd.metric("mcas_forward_dropped_total{reason=\"connection_limit\"}"),
        Some(0.0)
    );

    // The holders are cut by the deadlines although they keep sending bytes.
    let timed_out = |t: &str| {
        fwd.metric(&format!(
            "mcas_forward_connections_timed_out_total{{timeout=\"{t}\"}}"
        ))
    };
    assert!(
        wait_until(Duration::from_secs(15), || timed_out("first_frame")
            == Some(2.0)
            && timed_out("frame") == Some(2.0)),
        "first_frame {:?}, frame {:?}",
        timed_out("first_frame"),
        timed_out("frame")
    );
    for s in &mut holders {
        assert!(closed_by_peer(s, Duration::from_secs(5)));
    }
    dribbling.store(false, std::sync::atomic::Ordering::Relaxed);
    dribbler.join().unwrap();
    // Once they are gone, the address may connect again.
    let mut again = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    again.write_all(cef("after-cut").as_bytes()).unwrap();
    assert!(wait_until(Duration::from_secs(10), || rows(&out)
        .iter()
        .any(|r| r["ExtID"] == "after-cut")));
    let ids: Vec<String> = rows(&out)
        .iter()
        .map(|r| r["ExtID"].as_str().unwrap().to_owned())
        .collect();
    for want in ["held-2", "held-3", "other-host", "after-cut"] {
        assert!(ids.iter().any(|i| i == want), "{want} missing from {ids:?}");
    }
    assert!(!ids.iter().any(|i| i == "over-source-limit"), "{ids:?}");
    // Three refusals, one warning.
    let warned = log_lines(&fwd, "max_connections_per_source");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("count=1"), "{warned:?}");
    drop(other);
}

fn tls_config(dir: &std::path::Path, pki: &Pki) -> String {
    let (_, cert, key) = pki.write_server_files(dir);
    format!(
        r#"
[[listen]]
protocol = "tls"
address = "127.0.0.1:{{PORT}}"
cert = "{cert}"
key = "{key}"

[output]
kind = "file"
path = "{{DIR}}/rows.ndjson"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "50ms"
"#
    )
}

/// Issue 13, defect 17c: each failed TLS handshake was logged at info. Now they are
/// counted, logged at debug, and summarised by one warning a minute with the count.
#[test]
fn failed_tls_handshakes_are_counted_and_warned_at_most_once_a_minute() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let mut fwd = forwarder(dir.path(), &tls_config(dir.path(), &pki), &[]);
    let handshakes = || fwd.metric("mcas_forward_dropped_total{reason=\"tls_handshake\"}");
    // The readiness probe was the first failure; five more peers that do not speak TLS.
    assert!(wait_until(Duration::from_secs(10), || handshakes() == Some(1.0)));
    for _ in 0..5 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        let _ = s.write_all(b"hello, this is not a ClientHello\r\n\r\n");
        assert!(closed_by_peer(&mut s, Duration::from_secs(5)));
    }
    assert!(wait_until(Duration::from_secs(10), || handshakes() == Some(6.0)));
    let lines = log_lines(&fwd, "TLS handshake");
    assert_eq!(lines.len(), 1, "one warning for six failures: {lines:?}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("count=1"),
        "{lines:?}"
    );
    // The rest is reported when the listener stops, with its count.
    assert!(
        fwd.terminate(Duration::from_secs(20))
            .expect("the forwarder exits")
            .success()
    );
    let lines = log_lines(&fwd, "TLS handshake");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("count=5"), "{lines:?}");
}

/// Issue 13, defect 17f: a connection that never sends its ClientHello delayed exit by up
/// to 10 s (the handshake timeout). The handshake is now abandoned when the listener stops.
#[test]
fn pending_tls_handshake_does_not_delay_sigterm() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let mut fwd = forwarder(dir.path(), &tls_config(dir.path(), &pki), &[]);
    probe_gone(&fwd);
    let _silent = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    assert!(wait_until(Duration::from_secs(5), || fwd
        .metric("mcas_forward_connections_open")
        == Some(1.0)));
    let t0 = std::time::Instant::now();
    // `terminate` fails the test when the process is still running after 5 s.
    assert!(
        fwd.terminate(Duration::from_secs(5))
            .expect("the forwarder exits")
            .success()
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

/// Start the forwarder under `ulimit -n <nofile>`; (forwarder, its log once started).
fn start_with_nofile(dir: &std::path::Path, toml: &str, nofile: u32) -> (Forwarder, String) {
    let fwd = launch(dir)
        .nofile(nofile)
        .ready(Ready::LogContains("started".to_owned()))
        .start(toml)
        .expect("start mcas-forward under ulimit -n");
    let log = fwd.stderr_text();
    (fwd, log)
}

/// Issue 13, defect 6: with `ulimit -n 1024` and the default `max_connections` of 1,024,
/// spool writes failed with EMFILE. The start now warns, with the numbers and the fix.
#[test]
fn max_connections_over_the_open_file_limit_is_warned_at_start() {
    let toml = |max: u32| {
        format!(
            r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[[listen]]
protocol = "tcp"
address = "127.0.0.1:0"
max_connections = {max}

[[listen]]
protocol = "udp"
address = "127.0.0.1:0"

[output]
kind = "file"
path = "{{DIR}}/rows.ndjson"
"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (fwd, log) = start_with_nofile(dir.path(), &toml(100), 1024);
    drop(fwd);
    let warning: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("RLIMIT_NOFILE"))
        .collect();
    assert_eq!(warning.len(), 1, "{log}");
    let w = warning[0];
    assert!(w.contains("WARN"), "{w}");
    // The sum of max_connections, the limit, and the limit to set.
    assert!(w.contains("max_connections_sum=1124"), "{w}");
    assert!(w.contains("open_file_limit=1024"), "{w}");
    assert!(w.contains("at least 1188"), "{w}");
    assert!(w.contains("LimitNOFILE"), "{w}");

    // Within the limit: no warning.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, log) = start_with_nofile(dir.path(), &toml(100), 4096);
    drop(fwd);
    assert!(!log.contains("RLIMIT_NOFILE"), "{log}");
}

/// Issue 13, defect 16: 590 of 10,000 unpaced datagrams vanished in the kernel while every
/// counter stayed at 0. The kernel's drops for our socket are now counted: with a tiny
/// receive buffer and a burst, what was sent is exactly what was read plus what the kernel
/// dropped (so the counter reads our socket, and only ours).
#[test]
fn kernel_udp_drops_are_counted_for_our_socket() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
[[listen]]
protocol = "udp"
address = "127.0.0.1:{PORT}"
receive_buffer_bytes = "1KiB"
# Every datagram is read and refused: counted, and nothing to write.
allow = ["10.0.0.0/8"]

[[listen]]
protocol = "tcp"
address = "127.0.0.1:{PORT}"

[output]
kind = "file"
path = "{DIR}/rows.ndjson"

[metrics]
address = "127.0.0.1:{METRICS}"
"#;
    let fwd = forwarder(dir.path(), cfg, &[]);
    let kernel = || fwd.metric("mcas_forward_dropped_total{reason=\"udp_kernel\"}");
    assert_eq!(kernel(), Some(0.0));
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = [b'x'; 1400];
    let mut sent = 0u64;
    for _ in 0..20_000 {
        if tx.send_to(&datagram, ("127.0.0.1", fwd.port)).is_ok() {
            sent += 1;
        }
    }
    let refused = || fwd.metric("mcas_forward_dropped_total{reason=\"not_allowed\"}");
    let settled = wait_until(
        Duration::from_secs(15),
        || matches!((refused(), kernel()), (Some(r), Some(k)) if (r + k) as u64 == sent),
    );
    assert!(
        settled,
        "sent {sent}, read and refused {:?}, dropped by the kernel {:?}",
        refused(),
        kernel()
    );
    assert!(kernel().is_some_and(|k| k > 0.0), "{:?}", kernel());
}
