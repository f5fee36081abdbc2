//! Configuration reload under load: 200,000 events over one TCP connection while the
//! configuration is reloaded 10 times by SIGHUP, alternating two route sets, one of the ten
//! files invalid and one reload with the TLS listener's certificate renewed in place. Every event is delivered exactly once, each
//! phase's events follow the routes of the configuration loaded before it, the sender's
//! connection is never reset, and the reload counters say 9 ok and 1 error.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use common::*;

/// A configuration whose output `main` takes `vendor_main` and `other` takes the rest, with
/// a TLS listener beside the TCP one (`tls`: its port, certificate and key files).
fn config(admin: u16, vendor_main: &str, tls: &(u16, String, String)) -> String {
    let (tls_port, cert, key) = tls;
    format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[[listen]]
protocol = "tls"
address = "127.0.0.1:{tls_port}"
cert = "{cert}"
key = "{key}"

[[output]]
name = "main"
kind = "file"
path = "{{DIR}}/main.ndjson"
where = 'DeviceVendor == "{vendor_main}"'

[[output]]
name = "other"
kind = "file"
path = "{{DIR}}/other.ndjson"
where = 'DeviceVendor != "{vendor_main}"'

[routing]
unmatched = "drop"

[admin]
address = "127.0.0.1:{admin}"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "100ms"
"#
    )
}

fn fill(text: &str, fwd: &Forwarder) -> String {
    text.replace("{PORT}", &fwd.port.to_string())
        .replace("{METRICS}", &fwd.metrics_port.to_string())
        .replace("{DIR}", &fwd.dir.display().to_string())
}

/// Event `i`: vendor A for even ids, B for odd ones.
fn event(i: usize) -> String {
    let v = if i.is_multiple_of(2) { "A" } else { "B" };
    format!("<134>2024-05-08T16:07:11Z fw01 CEF:0|{v}|P|1|100|conn|5|externalId={i}\n")
}

#[test]
fn a_reload_storm_loses_nothing_and_each_route_change_applies_from_its_point() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    // The TLS listener's certificate, renewed in place before reload 7.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = p.self_signed(&ca_key).unwrap();
    let (old_der, old_pem, old_key) = server_cert(&ca, &ca_key);
    let (new_der, new_pem, new_key) = server_cert(&ca, &ca_key);
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert, &old_pem).unwrap();
    std::fs::write(&key, &old_key).unwrap();
    let tls = (
        free_port(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served = |port: u16| rt.block_on(tls_connect(port, ca.der())).1;
    let mut fwd = forwarder(dir.path(), &config(admin, "A", &tls), &[]);
    assert_eq!(served(tls.0), old_der.to_vec());
    let cfg_path = dir.path().join("config.toml");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    let n = 200_000;
    let phases = 11;
    let per_phase = n / phases + 1;
    // The vendor `main` takes in each phase: phase 0 runs the start configuration (A);
    // reload k (before phase k) alternates A and B, and reload 5 is an invalid file, which
    // leaves phase 5 with the routes of phase 4.
    let mut main_vendor = vec!["A"; phases];
    let mut sent = 0;
    for phase in 0..phases {
        if phase > 0 {
            let vendor = if phase.is_multiple_of(2) { "A" } else { "B" };
            let invalid = phase == 5;
            let text = if invalid {
                // Does not compile: the running routes stay.
                config(admin, vendor, &tls).replace("DeviceVendor ==", "DeviceVendr ==")
            } else {
                config(admin, vendor, &tls)
            };
            std::fs::write(&cfg_path, fill(&text, &fwd)).unwrap();
            if phase == 7 {
                // The certificate renewed in place, read again by this reload.
                std::fs::write(&cert, &new_pem).unwrap();
                std::fs::write(&key, &new_key).unwrap();
            }
            let before = fwd.metric("mcas_forward_config_generation").unwrap();
            fwd.signal(Signal::Hup).expect("kill -HUP");
            let want_gen = if invalid { before } else { before + 1.0 };
            assert!(
                wait_until(Duration::from_secs(20), || {
                    fwd.metric("mcas_forward_config_reloads_total{result=\"ok\"}")
                        .unwrap_or(0.0)
                        + fwd
                            .metric("mcas_forward_config_reloads_total{result=\"error\"}")
                            .unwrap_or(0.0)
                        == phase as f64
                }),
                "reload {phase} not done:\n{}",
                fwd.stderr_text()
            );
            assert_eq!(fwd.metric("mcas_forward_config_generation"), Some(want_gen));
            main_vendor[phase] = if invalid {
                main_vendor[phase - 1]
            } else {
                vendor
            };
            let want_cert = if phase >= 7 { &new_der } else { &old_der };
            assert_eq!(served(tls.0), want_cert.to_vec(), "reload {phase}");
        }
        // The phase's events, in steady slices, on the same connection all along.
        let end = (sent + per_phase).min(n);
        let mut buf = String::new();
        for i in sent..end {
            buf.push_str(&event(i));
            if buf.len() > 64 * 1024 {
                conn.write_all(buf.as_bytes())
                    .expect("the connection is never reset");
                buf.clear();
            }
        }
        conn.write_all(buf.as_bytes())
            .expect("the connection is never reset");
        sent = end;
        // Everything sent is through the router before the next reload: each phase runs
        // on one configuration, a recorded point.
        assert!(
            wait_until(Duration::from_secs(60), || fwd
                .metric("mcas_forward_parsed_total")
                == Some(sent as f64)),
            "{}",
            fwd.stderr_text()
        );
    }
    assert_eq!(sent, n);
    let total = || {
        fwd.metric("mcas_forward_output_sent_rows_total{output=\"main\"}")
            .unwrap_or(0.0)
            + fwd
                .metric("mcas_forward_output_sent_rows_total{output=\"other\"}")
                .unwrap_or(0.0)
    };
    assert!(wait_until(Duration::from_secs(30), || total() == n as f64));
    assert_eq!(
        fwd.metric("mcas_forward_config_reloads_total{result=\"ok\"}"),
        Some(9.0)
    );
    assert_eq!(
        fwd.metric("mcas_forward_config_reloads_total{result=\"error\"}"),
        Some(1.0)
    );
    assert!(fwd.stderr_text().contains("configuration reload failed"));
    assert!(
        fwd.metric("mcas_forward_config_last_reload_success_timestamp_seconds")
            .unwrap()
            > 0.0
    );
    let st = fwd
        .terminate(Duration::from_secs(30))
        .expect("the forwarder exits");
    assert!(st.success(), "{}", fwd.stderr_text());

    // Every event exactly once, in the output its phase's routes chose.
    let mut seen: HashMap<usize, &str> = HashMap::new();
    for out in ["main", "other"] {
        let text = std::fs::read_to_string(dir.path().join(format!("{out}.ndjson"))).unwrap();
        for l in text.lines() {
            let row: serde_json::Value = serde_json::from_str(l).unwrap();
            let id: usize = row["ExtID"].as_str().unwrap().parse().unwrap();
            assert!(seen.insert(id, out).is_none(), "event {id} delivered twice");
        }
    }
    assert_eq!(seen.len(), n, "every event delivered");
    for (id, out) in &seen {
        let phase = id / per_phase;
        let vendor = if id.is_multiple_of(2) { "A" } else { "B" };
        let want = if vendor == main_vendor[phase] {
            "main"
        } else {
            "other"
        };
        assert_eq!(*out, want, "event {id} (phase {phase}, vendor {vendor})");
    }
}

#[test]
fn reload_without_an_admin_endpoint_points_to_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[output]\nkind = \"stdout\"\n").unwrap();
    let (code, _, err) = run_cli_within(
        &["--config", cfg.to_str().unwrap(), "reload"],
        &[],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("[admin]") && err.contains("SIGHUP"), "{err}");
}

/// A CA and a server certificate for `localhost` it signed: (ca der, cert pem, key pem).
fn server_cert(
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
) -> (rustls::pki_types::CertificateDer<'static>, String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = p.signed_by(&key, ca, ca_key).unwrap();
    (cert.der().clone(), cert.pem(), key.serialize_pem())
}

/// A TLS connection to the forwarder, trusting `ca`, and the certificate it was served.
async fn tls_connect(
    port: u16,
    ca: &rustls::pki_types::CertificateDer<'static>,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    #[allow(
        deprecated,
        reason = "the ring provider is chosen on purpose: no C toolchain or cmake for aws-lc; rustls 0.23.48 deprecates it for lacking post-quantum key exchange"
    )]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let s = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let served = s.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (s, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_renewed_in_place_is_served_to_new_handshakes_and_open_ones_keep_theirs() {
    use tokio::io::AsyncWriteExt as _;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = p.self_signed(&ca_key).unwrap();
    let (old_der, old_pem, old_key) = server_cert(&ca, &ca_key);
    let (new_der, new_pem, new_key) = server_cert(&ca, &ca_key);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert, &old_pem).unwrap();
    std::fs::write(&key, &old_key).unwrap();
    let admin = free_port();
    let toml = format!(
        r#"
[[listen]]
protocol = "tls"
address = "127.0.0.1:{{PORT}}"
cert = "{}"
key = "{}"

[output]
kind = "file"
path = "{{DIR}}/out.ndjson"

[admin]
address = "127.0.0.1:{admin}"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "100ms"
"#,
        cert.display(),
        key.display()
    );
    let d = dir.path().to_owned();
    let fwd = tokio::task::spawn_blocking(move || forwarder(&d, &toml, &[]))
        .await
        .unwrap();
    let cfg = dir.path().join("config.toml").display().to_string();
    let reload = |cfg: String| async move {
        tokio::task::spawn_blocking(move || {
            run_cli_within(&["--config", &cfg, "reload"], &[], Duration::from_secs(30)).unwrap()
        })
        .await
        .unwrap()
    };
    let ca_der = ca.der().clone();
    let (mut first, served) = tls_connect(fwd.port, &ca_der).await;
    assert_eq!(served, old_der.to_vec());
    first.write_all(event(0).as_bytes()).await.unwrap();
    first.flush().await.unwrap();

    // Renewed in place: same paths, new files.
    std::fs::write(&cert, &new_pem).unwrap();
    std::fs::write(&key, &new_key).unwrap();
    let (code, out, err) = reload(cfg.clone()).await;
    assert_eq!(code, 0, "{out}{err}");
    let (mut second, served) = tls_connect(fwd.port, &ca_der).await;
    assert_eq!(
        served,
        new_der.to_vec(),
        "new handshakes get the new certificate"
    );
    // The connection opened before the reload carries on.
    first.write_all(event(1).as_bytes()).await.unwrap();
    first.flush().await.unwrap();
    second.write_all(event(2).as_bytes()).await.unwrap();
    second.flush().await.unwrap();

    // A broken certificate file: the reload fails, the running certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    let (code, out, _) = reload(cfg.clone()).await;
    assert_ne!(code, 0);
    assert!(
        out.contains("\"result\": \"error\"") && out.contains("cert"),
        "{out}"
    );
    let (mut third, served) = tls_connect(fwd.port, &ca_der).await;
    assert_eq!(served, new_der.to_vec());
    third.write_all(event(3).as_bytes()).await.unwrap();
    for s in [&mut first, &mut second, &mut third] {
        s.shutdown().await.unwrap();
    }
    let path = dir.path().join("out.ndjson");
    assert!(
        wait_until_async(Duration::from_secs(20), || std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .count()
            == 4)
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(
        fwd.metric("mcas_forward_config_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        fwd.metric("mcas_forward_config_reloads_total{result=\"error\"}"),
        Some(1.0)
    );
}

/// Listeners `[[listen]]` on TCP ports `ports` (the first is `{PORT}`), a file output.
fn listeners_config(admin: u16, ports: &[String], extra_first: &str) -> String {
    let mut text = String::new();
    for (i, p) in ports.iter().enumerate() {
        text.push_str(&format!(
            "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:{p}\"\n{}\n",
            if i == 0 { extra_first } else { "" }
        ));
    }
    text.push_str(&format!(
        r#"
[output]
kind = "file"
path = "{{DIR}}/out.ndjson"

[admin]
address = "127.0.0.1:{admin}"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "100ms"
"#
    ));
    text
}

#[test]
fn a_reload_binds_new_listeners_closes_removed_ones_and_keeps_the_others_open() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let (b, c) = (free_port(), free_port());
    let start = listeners_config(admin, &["{PORT}".to_owned(), b.to_string()], "");
    let fwd = forwarder(dir.path(), &start, &[]);
    let cfg = dir.path().join("config.toml");
    let cfg_arg = cfg.to_str().unwrap().to_owned();
    let send = |s: &mut std::net::TcpStream, r: std::ops::Range<usize>| {
        let buf: String = r.map(event).collect();
        s.write_all(buf.as_bytes())
            .expect("the connection stays open");
        s.flush().unwrap();
    };
    let mut on_a = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    let mut on_b = std::net::TcpStream::connect(("127.0.0.1", b)).unwrap();
    send(&mut on_a, 0..100);
    send(&mut on_b, 100..200);
    // Read before B goes (closing a listener closes its connections).
    assert!(wait_until(Duration::from_secs(20), || fwd
        .metric("mcas_forward_parsed_total")
        == Some(200.0)));

    // Keep A, drop B, add C.
    let next = listeners_config(admin, &[fwd.port.to_string(), c.to_string()], "");
    std::fs::write(&cfg, fill(&next, &fwd)).unwrap();
    let (code, out, err) = run_cli_within(
        &["--config", &cfg_arg, "reload"],
        &[],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("listen[tcp 127.0.0.1:{c}] added")),
        "{out}"
    );
    assert!(
        out.contains(&format!("listen[tcp 127.0.0.1:{b}] removed")),
        "{out}"
    );
    // A's connection carries on; C takes connections; B is closed.
    send(&mut on_a, 200..300);
    let mut on_c = std::net::TcpStream::connect(("127.0.0.1", c)).unwrap();
    send(&mut on_c, 300..400);
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            b
        ))
        .is_err()),
        "the removed listener is closed"
    );

    // Changed settings on a running address need a restart: reported, left as it runs.
    let changed = listeners_config(
        admin,
        &[fwd.port.to_string(), c.to_string()],
        "max_connections = 7\n",
    );
    std::fs::write(&cfg, fill(&changed, &fwd)).unwrap();
    let (code, out, err) = run_cli_within(
        &["--config", &cfg_arg, "reload"],
        &[],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("listen[tcp 127.0.0.1:{}]", fwd.port))
            && out.contains("restart_required"),
        "{out}"
    );
    send(&mut on_a, 400..450);
    drop((on_a, on_b, on_c));
    let path = dir.path().join("out.ndjson");
    assert!(
        wait_until(Duration::from_secs(20), || std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .count()
            == 450),
        "{}",
        fwd.stderr_text()
    );
    let mut fwd = fwd;
    let st = fwd
        .terminate(Duration::from_secs(30))
        .expect("the forwarder exits");
    assert!(st.success(), "{}", fwd.stderr_text());
}

/// A logs-ingestion `[output]` into the emulator at `base`, its secret read from a file.
fn li_config(admin: u16, base: &str) -> String {
    format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[output]
kind = "logs-ingestion"
endpoint = "{base}"
dcr_immutable_id = "{dcr}"
stream = "Custom-CommonSecurityLog"
retry_budget = "1s"

[output.auth]
kind = "client-secret"
tenant_id = "{tenant}"
client_id = "{client}"
authority_host = "{base}"
client_secret_file = "{{DIR}}/secret"

[spool]
dir = "{{DIR}}/spool"

[admin]
address = "127.0.0.1:{admin}"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "100ms"
"#,
        dcr = mcas_azure_emulator::DEFAULT_DCR_ID,
        tenant = mcas_azure_emulator::DEFAULT_TENANT_ID,
        client = mcas_azure_emulator::DEFAULT_CLIENT_ID,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rotates_the_secret_and_moves_the_endpoint_and_the_spool_follows() {
    let first = emulator().await;
    let second = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    // A wrong secret: the token is refused, rows stay spooled.
    std::fs::write(dir.path().join("secret"), "not-the-secret").unwrap();
    let admin = free_port();
    let d = dir.path().to_owned();
    let text = li_config(admin, &first.base_url());
    let fwd = tokio::task::spawn_blocking(move || forwarder(&d, &text, &[]))
        .await
        .unwrap();
    let cfg = dir.path().join("config.toml").display().to_string();
    let reload = |cfg: String| async move {
        tokio::task::spawn_blocking(move || {
            run_cli_within(&["--config", &cfg, "reload"], &[], Duration::from_secs(30)).unwrap()
        })
        .await
        .unwrap()
    };
    let port = fwd.port;
    let send = move |r: std::ops::Range<usize>| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let buf: String = r.map(event).collect();
        s.write_all(buf.as_bytes()).unwrap();
    };
    send(0..50);
    assert!(
        wait_until_async(Duration::from_secs(20), || fwd
            .metric("mcas_forward_output_spool_files{output=\"default\"}")
            .is_some_and(|v| v > 0.0)
            && fwd.metric("mcas_forward_output_up{output=\"default\"}") == Some(0.0))
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(first.count("CommonSecurityLog"), 0);

    // The secret file is fixed in place; the file of settings does not change.
    std::fs::write(
        dir.path().join("secret"),
        mcas_azure_emulator::DEFAULT_CLIENT_SECRET,
    )
    .unwrap();
    let (code, out, err) = reload(cfg.clone()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        wait_until_async(Duration::from_secs(90), || first.count("CommonSecurityLog")
            == 50)
        .await,
        "the spooled rows go out with the new secret:\n{}",
        fwd.stderr_text()
    );

    // The endpoint moves to another workspace: applied, and new rows go there.
    let moved = fill(&li_config(admin, &second.base_url()), &fwd);
    std::fs::write(dir.path().join("config.toml"), moved).unwrap();
    let (code, out, err) = reload(cfg.clone()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("output[0].endpoint"), "{out}");
    assert!(!out.contains("\"restart_required\": [\n"), "{out}");
    send(50..80);
    assert!(
        wait_until_async(Duration::from_secs(30), || second
            .count("CommonSecurityLog")
            == 30)
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(first.count("CommonSecurityLog"), 50);
    drop(fwd);
    first.shutdown().await;
    second.shutdown().await;
}
