//! The RELP listener through the real binary, driven by the test kit's own RELP client
//! (no code shared with the forwarder's codec): answers only after the message is on disk,
//! in order, through a full window, a cut session, a failed spool write, `kill -9` and
//! SIGTERM.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::*;
use mcas_testkit::relp::Client;

/// Numbered CEF events, one per message.
fn event(n: usize) -> Vec<u8> {
    format!("<134>2024-05-08T16:07:11Z fw01 CEF:0|Vendor|Product|1.0|100|relp|5|externalId={n} src=10.0.0.1").into_bytes()
}

/// How many times each number is in the file output.
fn numbers_in(path: &Path) -> HashMap<usize, u32> {
    let mut seen = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let n: usize = row["ExtID"].as_str().unwrap().parse().unwrap();
        *seen.entry(n).or_insert(0) += 1;
    }
    seen
}

/// A RELP listener into the file `rows.ndjson`, with the default group commit (2 ms) and
/// the default flush interval (1 s), so answers cannot wait for the batch timer.
const FILE_CONFIG: &str = r#"
[[listen]]
protocol = "relp"
address = "127.0.0.1:{PORT}"

[output]
kind = "file"
path = "{DIR}/rows.ndjson"

[dead_letter]
path = "{DIR}/dead-letter.ndjson"

[metrics]
address = "127.0.0.1:{METRICS}"

[pipeline]
shutdown_grace = "5s"
"#;

fn connect(port: u16, window: usize) -> Client<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    Client::open(s, window).unwrap()
}

#[test]
fn a_full_window_is_answered_in_order_and_every_answer_is_already_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let fwd = forwarder(dir.path(), FILE_CONFIG, &[]);
    let mut c = connect(fwd.port, 1024);
    for n in 0..20_000 {
        c.send(&event(n)).unwrap();
    }
    c.close().unwrap();
    // Answered means fdatasync'd: the file holds every message now, without waiting.
    let seen = numbers_in(&dir.path().join("rows.ndjson"));
    assert_eq!(seen.len(), 20_000);
    assert!(seen.values().all(|&k| k == 1), "a message written twice");
    assert_eq!(
        fwd.metric("mcas_forward_relp_answered_total"),
        Some(20_000.0)
    );
    assert_eq!(fwd.metric("mcas_forward_relp_sessions_total"), Some(1.0));
    assert_eq!(
        fwd.metric("mcas_forward_relp_protocol_errors_total"),
        Some(0.0)
    );
    // Every `syslog` frame, the `open` and the `close`.
    assert_eq!(fwd.metric("mcas_forward_relp_frames_total"), Some(20_002.0));
}

#[test]
fn a_session_cut_mid_window_is_resumed_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let fwd = forwarder(dir.path(), FILE_CONFIG, &[]);
    let mut c = connect(fwd.port, 1024);
    for n in 0..3_000 {
        c.send(&event(n)).unwrap();
    }
    c.flush().unwrap();
    // The sender's side breaks with a window in flight.
    let _ = c.get_mut().shutdown(std::net::Shutdown::Both);
    let again = c.into_unanswered();
    assert!(again.len() <= 1024, "{} unanswered", again.len());
    // A new session: what was not answered first, then the rest.
    let mut c = connect(fwd.port, 1024);
    for m in &again {
        c.send(m).unwrap();
    }
    for n in 3_000..5_000 {
        c.send(&event(n)).unwrap();
    }
    c.close().unwrap();
    let seen = numbers_in(&dir.path().join("rows.ndjson"));
    let lost: Vec<usize> = (0..5_000).filter(|n| !seen.contains_key(n)).collect();
    assert!(lost.is_empty(), "lost {lost:?}");
    let duplicates: u32 = seen.values().map(|&k| k - 1).sum();
    assert!(
        duplicates as usize <= again.len(),
        "{duplicates} duplicates, {} resent",
        again.len()
    );
    assert_eq!(fwd.metric("mcas_forward_relp_sessions_total"), Some(2.0));
}

#[test]
fn kill_9_mid_stream_loses_nothing_and_duplicates_stay_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut fwd = forwarder(dir.path(), FILE_CONFIG, &[]);
    let total = 30_000;
    let window = 1024;
    let mut next = 0;
    let mut resend: Vec<Vec<u8>> = Vec::new();
    let mut resent = Vec::new();
    for kill_at in [8_000, 19_000, usize::MAX] {
        let mut c = connect(fwd.port, window);
        let mut broken = false;
        for m in std::mem::take(&mut resend) {
            if c.send(&m).is_err() {
                broken = true;
                break;
            }
        }
        while !broken && next < total {
            if next == kill_at {
                c.flush().unwrap();
                fwd.kill9().unwrap();
                broken = true;
                break;
            }
            if c.send(&event(next)).is_err() {
                broken = true;
                break;
            }
            next += 1;
        }
        if broken {
            resend = c.into_unanswered();
            assert!(resend.len() <= window);
            resent.push(resend.len());
            fwd.restart().unwrap();
        } else {
            c.close().unwrap();
        }
    }
    assert_eq!(next, total);
    let seen = numbers_in(&dir.path().join("rows.ndjson"));
    let lost: Vec<usize> = (0..total).filter(|n| !seen.contains_key(n)).collect();
    assert!(
        lost.is_empty(),
        "{} lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    let duplicates: usize = seen.values().map(|&k| k as usize - 1).sum();
    // Only messages stored but not yet answered at a kill come twice.
    assert!(
        duplicates <= resent.iter().sum::<usize>(),
        "{duplicates} duplicates for {resent:?} resent"
    );
    eprintln!(
        "kill -9 ×2: {total} sent, 0 lost, {duplicates} duplicates, resent per kill {resent:?}"
    );
}

#[test]
fn sigterm_answers_what_was_read_then_sends_serverclose() {
    let dir = tempfile::tempdir().unwrap();
    let mut fwd = forwarder(dir.path(), FILE_CONFIG, &[]);
    let mut c = connect(fwd.port, 4096);
    for n in 0..4_000 {
        c.send(&event(n)).unwrap();
    }
    c.flush().unwrap();
    fwd.signal(mcas_testkit::Signal::Term).unwrap();
    let err = c.wait_all().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted, "{err}");
    assert!(c.server_closed());
    let answered = c.answered();
    assert!(fwd.wait(Duration::from_secs(30)).unwrap().success());
    // Exactly what was answered is in the file: the rest was never read, and is the
    // sender's to send again.
    let seen = numbers_in(&dir.path().join("rows.ndjson"));
    assert_eq!(seen.len() as u64, answered);
    assert!((0..answered as usize).all(|n| seen.get(&n) == Some(&1)));
    assert!(
        fwd.stderr_text().contains("stopped"),
        "{}",
        fwd.stderr_text()
    );
}

#[test]
fn a_protocol_error_closes_only_its_own_session() {
    let dir = tempfile::tempdir().unwrap();
    let fwd = forwarder(dir.path(), FILE_CONFIG, &[]);
    let mut good = connect(fwd.port, 16);
    good.send(&event(1)).unwrap();
    good.wait_all().unwrap();
    // A frame announcing more than the DATALEN limit (128 KiB).
    let mut bad = TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    use std::io::{Read as _, Write as _};
    let offers = "relp_version=0\ncommands=syslog";
    bad.write_all(format!("1 open {} {offers}\n2 syslog 999999 <13>x", offers.len()).as_bytes())
        .unwrap();
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest);
    // The open was answered, the oversize frame closed the session without an answer.
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("1 rsp "), "{text:?}");
    assert!(!text.contains("2 rsp"), "{text:?}");
    assert!(wait_until(Duration::from_secs(5), || fwd
        .metric("mcas_forward_relp_protocol_errors_total")
        == Some(1.0)));
    good.send(&event(2)).unwrap();
    good.close().unwrap();
    let seen = numbers_in(&dir.path().join("rows.ndjson"));
    assert_eq!(seen.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_spool_write_sends_no_answer_and_a_later_success_does() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "").replace(
        "[[listen]]\nprotocol = \"tcp\"",
        "[[listen]]\nprotocol = \"relp\"",
    );
    // The RELP listener takes the TCP port; the UDP listener stays.
    let fwd = start_forwarder(dir.path(), cfg).await;
    let spool = dir.path().join("spool");
    let port = fwd.port;
    let (fwd, answered_while_failing, answered_after) = tokio::task::spawn_blocking(move || {
        let mut c = connect(port, 64);
        c.send(&event(0)).unwrap();
        c.wait_all().unwrap();
        assert!(wait_until(Duration::from_secs(20), || fwd
            .metric("mcas_forward_sent_rows_total")
            == Some(1.0)));
        // The spool directory becomes a plain file: every spool write fails, even as root.
        std::fs::remove_dir_all(&spool).unwrap();
        std::fs::write(&spool, b"not a directory").unwrap();
        for n in 1..=10 {
            c.send(&event(n)).unwrap();
        }
        c.flush().unwrap();
        c.get_mut()
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let failing = match c.wait_all() {
            Ok(()) => c.answered(),
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "{e}"
                );
                c.answered()
            }
        };
        assert!(
            wait_until(Duration::from_secs(10), || fwd
                .stderr_text()
                .contains("cannot write a spool file; retrying")),
            "{}",
            fwd.stderr_text()
        );
        // The disk comes back: the retried write succeeds, and only then the answers come.
        std::fs::remove_file(&spool).unwrap();
        c.get_mut()
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        c.wait_all().unwrap();
        let after = c.answered();
        c.close().unwrap();
        (fwd, failing, after)
    })
    .await
    .unwrap();
    assert_eq!(
        answered_while_failing, 1,
        "answered while the spool could not be written"
    );
    assert_eq!(answered_after, 11);
    let mut got = 0;
    for _ in 0..500 {
        got = emu.count("CommonSecurityLog");
        if got >= 11 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(got, 11, "{}", fwd.stderr_text());
    drop(fwd);
}

/// RELP over TLS from the first byte (`relp-tls`, rsyslog's `tls="on"`) with mutual TLS,
/// through rustls on the client side: a client of the configured CA has every message
/// answered once it is on disk; a client of another CA gets no session, and nothing of it
/// is stored or answered.
#[test]
fn relp_tls_answers_clients_of_the_configured_ca_and_refuses_strangers() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki.write_server_files(dir.path());
    let cfg = FILE_CONFIG.replacen(
        "protocol = \"relp\"",
        &format!(
            "protocol = \"relp-tls\"\ncert = \"{cert}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\""
        ),
        1,
    );
    let fwd = forwarder(dir.path(), &cfg, &[]);
    let tls = |identity| {
        let conn = rustls::ClientConnection::new(
            pki.client_config(identity),
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let s = TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        rustls::StreamOwned::new(conn, s)
    };

    let mut c = Client::open(tls(Some(&pki.client)), 256).unwrap();
    for n in 0..5_000 {
        c.send(&event(n)).unwrap();
    }
    c.close().unwrap();
    // Answered means fdatasync'd: every message is in the file once, without waiting.
    let rows = dir.path().join("rows.ndjson");
    let seen = numbers_in(&rows);
    assert_eq!(seen.len(), 5_000);
    assert!(seen.values().all(|&k| k == 1), "a message written twice");
    assert_eq!(
        fwd.metric("mcas_forward_relp_answered_total"),
        Some(5_000.0)
    );
    assert_eq!(fwd.metric("mcas_forward_relp_sessions_total"), Some(1.0));

    let stranger = Client::open(tls(Some(&pki.stranger)), 16).and_then(|mut c| {
        c.send(&event(5_000))?;
        c.wait_all()
    });
    assert!(stranger.is_err(), "a stranger's session was answered");
    assert_eq!(fwd.metric("mcas_forward_relp_sessions_total"), Some(1.0));
    assert_eq!(
        fwd.metric("mcas_forward_relp_answered_total"),
        Some(5_000.0)
    );
    assert_eq!(numbers_in(&rows).len(), 5_000);
}
