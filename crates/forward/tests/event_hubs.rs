//! The Event Hubs configuration on the wire: a local TLS stub of the Kafka endpoint checks
//! that a collector with `sasl = "plain"` speaks TLS (verified against the stub's CA),
//! negotiates SASL PLAIN, and authenticates as `$ConnectionString` with the connection
//! string as password, as Event Hubs requires. The stub answers `ApiVersions`,
//! `SaslHandshake` and `SaslAuthenticate` (enough for the client to authenticate) and
//! records what it was sent.

#![cfg(feature = "kafka")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the stub saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    tls_connections: usize,
    mechanism: Option<String>,
    auth: Option<Vec<u8>>,
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// ApiVersions' answer: the APIs the stub speaks. Version 3 is flexible (compact array,
/// tagged fields); any other version gets the version 0 layout (and a client asking for a
/// version above 3 is told UNSUPPORTED_VERSION, after which it asks again with 3).
fn api_versions(version: i16) -> Vec<u8> {
    let apis: [(i16, i16, i16); 3] = [(18, 0, 3), (17, 0, 1), (36, 0, 1)];
    let mut b = Vec::new();
    if version == 3 {
        put_i16(&mut b, 0);
        b.push(apis.len() as u8 + 1);
        for (k, min, max) in apis {
            put_i16(&mut b, k);
            put_i16(&mut b, min);
            put_i16(&mut b, max);
            b.push(0);
        }
        put_i32(&mut b, 0);
        b.push(0);
    } else {
        put_i16(&mut b, if version > 3 { 35 } else { 0 });
        put_i32(&mut b, apis.len() as i32);
        for (k, min, max) in apis {
            put_i16(&mut b, k);
            put_i16(&mut b, min);
            put_i16(&mut b, max);
        }
    }
    b
}

/// Serve one TLS connection: answer each request, record the SASL exchange.
async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    seen: Arc<Mutex<Seen>>,
) -> std::io::Result<()> {
    loop {
        let len = s.read_i32().await? as usize;
        let mut req = vec![0u8; len];
        s.read_exact(&mut req).await?;
        let api = i16::from_be_bytes([req[0], req[1]]);
        let version = i16::from_be_bytes([req[2], req[3]]);
        let corr = i32::from_be_bytes([req[4], req[5], req[6], req[7]]);
        let client_len = i16::from_be_bytes([req[8], req[9]]).max(0) as usize;
        let body = &req[10 + client_len..];
        let answer = match api {
            18 => api_versions(version),
            17 => {
                let n = u16::from_be_bytes([body[0], body[1]]) as usize;
                let mechanism = String::from_utf8_lossy(&body[2..2 + n]).into_owned();
                seen.lock().expect("stub state").mechanism = Some(mechanism);
                let mut b = Vec::new();
                put_i16(&mut b, 0);
                put_i32(&mut b, 1);
                put_i16(&mut b, 5);
                b.extend_from_slice(b"PLAIN");
                b
            }
            36 => {
                let n = i32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
                seen.lock().expect("stub state").auth = Some(body[4..4 + n].to_vec());
                let mut b = Vec::new();
                put_i16(&mut b, 0);
                put_i16(&mut b, -1);
                put_i32(&mut b, 0);
                if version >= 1 {
                    b.extend_from_slice(&0i64.to_be_bytes());
                }
                b
            }
            // Anything after the authentication: the stub has seen what it needs.
            _ => return Ok(()),
        };
        let mut frame = Vec::with_capacity(answer.len() + 8);
        put_i32(&mut frame, answer.len() as i32 + 4);
        put_i32(&mut frame, corr);
        frame.extend_from_slice(&answer);
        s.write_all(&frame).await?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_authenticates_to_event_hubs_as_connection_string_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    // The stub's CA and its certificate for `localhost`.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "event hubs stub CA");
    let ca = p.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    #[allow(
        deprecated,
        reason = "ring, as the forwarder's own listeners use: no C toolchain for aws-lc"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = stub_seen.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    seen.lock().unwrap().tls_connections += 1;
                    let _ = serve(tls, seen).await;
                }
            });
        }
    });

    let connection_string = "Endpoint=sb://stub.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c3R1Yi1rZXk=";
    let cfg = format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[output]
kind = "kafka"
brokers = ["localhost:{port}"]
topic = "cef"
sasl = "plain"
connection_string_env = "EVENT_HUBS_CONNECTION_STRING"
ca_file = "{}"
{CONFIG_TAIL}"#,
        ca_file.display()
    );
    let dir_path = dir.path().to_owned();
    let fwd = tokio::task::spawn_blocking(move || {
        forwarder(
            &dir_path,
            &cfg,
            &[("EVENT_HUBS_CONNECTION_STRING", connection_string)],
        )
    })
    .await
    .unwrap();
    // One event, so that the producer has a reason to connect.
    {
        use std::io::Write as _;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        writeln!(
            s,
            "<134>2024-05-08T16:07:11Z host1 mcas: CEF:0|Vendor|Product|1.0|100|stub|5|externalId=1"
        )
        .unwrap();
    }
    assert!(
        wait_until_async(Duration::from_secs(30), || seen
            .lock()
            .unwrap()
            .auth
            .is_some())
        .await,
        "the stub saw no SASL authentication: {:?}\n{}",
        seen.lock().unwrap(),
        fwd.stderr_text()
    );
    let seen = seen.lock().unwrap().clone();
    assert!(seen.tls_connections >= 1);
    assert_eq!(seen.mechanism.as_deref(), Some("PLAIN"));
    let mut want = b"\0$ConnectionString\0".to_vec();
    want.extend_from_slice(connection_string.as_bytes());
    assert_eq!(seen.auth.as_deref(), Some(&want[..]));
    // The connection string never reaches the log.
    assert!(!fwd.stderr_text().contains("c3R1Yi1rZXk="));
}
