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
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::AsyncWriteExt as _;

struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key: String,
    client: (CertificateDer<'static>, PrivateKeyDer<'static>),
    stranger: (CertificateDer<'static>, PrivateKeyDer<'static>),
    ca_der: CertificateDer<'static>,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    (p.self_signed(&key).unwrap(), key)
}

fn leaf(
    names: &[&str],
    client: bool,
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .unwrap();
    p.extended_key_usages = vec![if client {
        rcgen::ExtendedKeyUsagePurpose::ClientAuth
    } else {
        rcgen::ExtendedKeyUsagePurpose::ServerAuth
    }];
    (p.signed_by(&key, ca, ca_key).unwrap(), key)
}

fn pki() -> Pki {
    let (ca_cert, ca_key) = ca("mcas-forward test CA");
    let (srv, srv_key) = leaf(&["localhost"], false, &ca_cert, &ca_key);
    let (cli, cli_key) = leaf(&["sensor-1"], true, &ca_cert, &ca_key);
    let (other_ca, other_key) = ca("another CA");
    let (str_cert, str_key) = leaf(&["intruder"], true, &other_ca, &other_key);
    let der =
        |k: &rcgen::KeyPair| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der()));
    Pki {
        ca_pem: ca_cert.pem(),
        server_pem: srv.pem(),
        server_key: srv_key.serialize_pem(),
        client: (cli.der().clone(), der(&cli_key)),
        stranger: (str_cert.der().clone(), der(&str_key)),
        ca_der: ca_cert.der().clone(),
    }
}

async fn tls_send(
    port: u16,
    pki: &Pki,
    identity: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    line: &str,
) -> std::io::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((c, k)) => b
            .with_client_auth_cert(vec![c.clone()], k.clone_key())
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
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
    let p = |n: &str, t: &str| {
        let f = dir.path().join(n);
        std::fs::write(&f, t).unwrap();
        f.display().to_string()
    };
    let (ca, cert, key) = (
        p("ca.pem", &pki.ca_pem),
        p("server.pem", &pki.server_pem),
        p("server.key", &pki.server_key),
    );
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
    let fwd = tokio::task::spawn_blocking(move || Forwarder::start(&d, &cfg, &[]))
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
    let fwd = Forwarder::start(dir.path(), &cfg, &[]);
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
