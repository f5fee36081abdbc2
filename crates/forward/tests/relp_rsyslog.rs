//! Zero loss through `kill -9` of the forwarder, with a real sender: a private rsyslogd
//! takes numbered CEF lines on `imtcp` and forwards them with `omrelp` (window 128,
//! unlimited retries, a disk-assisted queue) to the forwarder's RELP listener, which
//! sends them to the emulator. The forwarder is killed three times mid-stream and
//! restarted 2 s later each time; every number must reach the emulator.
//!
//! The forwarder also writes every row to a file output. A file output never sends a row
//! twice, so its duplicates are exactly those of RELP resends (messages stored but not
//! yet answered at a kill); the emulator's duplicates beyond them are the spooled batches
//! that were in flight at a kill (delivered, but their files not yet removed).
//!
//! Ignored: it needs `rsyslog` and `rsyslog-relp` (`.ci/run` installs them and runs it).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::*;

/// Events sent.
const N: usize = 300_000;
/// omrelp's window.
const WINDOW: usize = 128;
/// The forwarder is killed when the emulator holds this many distinct numbers.
const KILLS: [usize; 3] = [60_000, 150_000, 240_000];

/// TLS material: a CA, the forwarder's certificate for `localhost`, rsyslog's client
/// certificate. Written as PEM files in `dir`; returns their paths.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki(dir: &std::path::Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "relp test CA");
    let ca = p.self_signed(&ca_key).unwrap();
    let leaf = |name: &str, client: bool| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        (p.signed_by(&key, &ca, &ca_key).unwrap(), key)
    };
    let (srv, srv_key) = leaf("localhost", false);
    let (cli, cli_key) = leaf("rsyslog-sender", true);
    let write = |name: &str, pem: String| {
        let f = dir.join(name);
        std::fs::write(&f, pem).unwrap();
        f.display().to_string()
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", srv.pem()),
        server_key: write("server.key", srv_key.serialize_pem()),
        client_cert: write("client.pem", cli.pem()),
        client_key: write("client.key", cli_key.serialize_pem()),
    }
}

async fn crash_test(tls: bool) {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let listen = if tls {
        format!(
            "protocol = \"relp-tls\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"",
            pki.server_cert, pki.server_key, pki.ca
        )
    } else {
        "protocol = \"relp\"".to_owned()
    };
    let azure = mcas_testkit::logs_ingestion_output(
        "[[output]]",
        &emu.base_url(),
        "name = \"azure\"\nretry_budget = \"2s\"",
        "",
    );
    let cfg = format!(
        r#"
[[listen]]
{listen}
address = "127.0.0.1:{{PORT}}"

[[output]]
name = "file"
kind = "file"
path = "{{DIR}}/rows.ndjson"
{azure}{CONFIG_TAIL}"#
    );
    let mut fwd = start_forwarder(dir.path(), cfg).await;

    let relay_port = free_port();
    let work = dir.path().join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let tls_params = if tls {
        format!(
            r#" tls="on" tls.caCert="{}" tls.myCert="{}" tls.myPrivKey="{}" tls.authMode="name" tls.permittedPeer=["localhost"]"#,
            pki.ca, pki.client_cert, pki.client_key
        )
    } else {
        String::new()
    };
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="8k")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="{relay_port}")
action(type="omrelp" target="127.0.0.1" port="{fwd_port}" windowSize="{WINDOW}" timeout="5"{tls_params}
       action.resumeRetryCount="-1" action.resumeInterval="1"
       queue.type="LinkedList" queue.filename="relpq" queue.size="500000"
       queue.maxDiskSpace="1g" queue.saveOnShutdown="on")
"#,
            work = work.display(),
            fwd_port = fwd.port,
        ),
    )
    .unwrap();
    let rsyslogd = rsyslogd().expect("rsyslogd not found: apt-get install rsyslog rsyslog-relp");
    let _rs = start_rsyslogd(&rsyslogd, &conf, dir.path());
    let rs_err = || std::fs::read_to_string(dir.path().join("rsyslogd.err")).unwrap_or_default();
    assert!(
        wait_until_async(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", relay_port)).is_ok()
        })
        .await,
        "rsyslogd did not listen: {}",
        rs_err()
    );

    // The numbered events, written to imtcp as fast as it takes them (TCP back-pressure).
    let writer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", relay_port)).unwrap();
        let mut buf = Vec::with_capacity(1 << 20);
        for n in 0..N {
            let _ = writeln!(
                buf,
                "<134>2024-05-08T16:07:11Z fw01 mcas: CEF:0|Vendor|Product|1.0|100|relp crash test|5|externalId={n} src=10.0.0.1"
            );
            if buf.len() >= 1 << 20 {
                s.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        s.write_all(&buf).unwrap();
    });

    let started = Instant::now();
    let count = || emu.count("CommonSecurityLog") as usize;
    for (k, at) in KILLS.iter().enumerate() {
        let reached = wait_until_async(Duration::from_secs(120), || count() >= *at).await;
        assert!(
            reached,
            "kill {k}: only {} rows; forwarder:\n{}\nrsyslog:\n{}",
            count(),
            fwd.stderr_text(),
            rs_err()
        );
        let status = tokio::task::block_in_place(|| fwd.kill9()).unwrap();
        assert!(!status.success());
        tokio::time::sleep(Duration::from_secs(2)).await;
        fwd = tokio::task::block_in_place(move || {
            fwd.restart().unwrap();
            fwd
        });
    }
    writer.join().unwrap();
    let done = every_number_arrives(&emu, N, Duration::from_secs(240)).await;
    let elapsed = started.elapsed();
    let emu_seen = ext_ids(&emu.rows("CommonSecurityLog"));
    let lost: Vec<usize> = (0..N).filter(|n| !emu_seen.contains_key(n)).collect();
    assert!(
        done && lost.is_empty(),
        "{} lost (first {:?}); forwarder:\n{}\nrsyslog:\n{}",
        lost.len(),
        &lost[..lost.len().min(20)],
        fwd.stderr_text(),
        rs_err()
    );
    // Let the file output catch up with the emulator (it is written first, so this is quick).
    let file = dir.path().join("rows.ndjson");
    assert!(
        wait_until_async(Duration::from_secs(30), || ext_ids(&file_rows(&file)).len()
            >= N)
        .await
    );
    let file_seen = ext_ids(&file_rows(&file));
    let relp_duplicates: u32 = file_seen.values().map(|&k| k - 1).sum();
    let emu_duplicates: u32 = emu_seen.values().map(|&k| k - 1).sum();
    let spool_duplicates = emu_duplicates.saturating_sub(relp_duplicates);
    let per_kill = relp_duplicates as f64 / KILLS.len() as f64;
    eprintln!(
        "RELP crash test ({}): sent {N}, delivered {} distinct, 0 lost, {} kills; duplicates from RELP resends {relp_duplicates} ({per_kill:.0} per kill, window {WINDOW}); duplicates from spooled batches in flight {spool_duplicates}; {:.1} s",
        if tls { "relp-tls" } else { "relp" },
        emu_seen.len(),
        KILLS.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        relp_duplicates as usize <= WINDOW * KILLS.len(),
        "{relp_duplicates} RELP duplicates for {} kills of window {WINDOW}",
        KILLS.len()
    );
    assert_eq!(file_seen.len(), N, "the file output lost rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rsyslog and rsyslog-relp"]
async fn rsyslog_omrelp_through_three_kill_9_loses_nothing() {
    crash_test(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rsyslog and rsyslog-relp"]
async fn rsyslog_omrelp_tls_through_three_kill_9_loses_nothing() {
    crash_test(true).await;
}
