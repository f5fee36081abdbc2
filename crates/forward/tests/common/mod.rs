//! The end-to-end tests' view of `mcas-testkit`: its forwarder bound to this package's
//! binary with the settings these tests use, and the few helpers only they need.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::io::Read as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mcas_azure_emulator::EmulatorHandle;
pub(crate) use mcas_testkit::{
    EmulatorSetup, Forwarder, Launch, Ready, Signal, secret_env, wait_until, wait_until_async,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mcas-forward");

/// How long a started forwarder may take to listen.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A port free for both TCP and UDP on 127.0.0.1 (racy by nature, retried by callers).
pub(crate) fn free_port() -> u16 {
    mcas_testkit::free_port().expect("a free loopback port")
}

/// This package's forwarder in `dir`, with its state under `dir/state` and info logs.
pub(crate) fn launch(dir: &Path) -> Launch {
    Launch::new(BIN, dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("RUST_LOG", "info")
        .ready_within(READY_WITHIN)
}

/// Starts `mcas-forward run` on `toml` (which may use `{PORT}`, `{METRICS}` and `{DIR}`)
/// with `env`, and waits until it listens (and serves `/metrics` when `toml` names
/// `{METRICS}`).
pub(crate) fn forwarder(dir: &Path, toml: &str, env: &[(&str, &str)]) -> Forwarder {
    launch(dir)
        .envs(env.iter().copied())
        .start(toml)
        .expect("start mcas-forward")
}

/// [`forwarder`] on the given listener and metrics ports.
pub(crate) fn forwarder_on(
    dir: &Path,
    toml: &str,
    env: &[(&str, &str)],
    port: u16,
    metrics_port: u16,
) -> Forwarder {
    launch(dir)
        .envs(env.iter().copied())
        .ports(port, metrics_port)
        .start(toml)
        .expect("start mcas-forward")
}

/// Starts a forwarder with `cfg` and the emulator's client secret in its environment, on a
/// blocking thread so that an in-process emulator keeps serving while the child starts.
pub(crate) async fn start_forwarder(dir: &Path, cfg: String) -> Forwarder {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || forwarder(&dir, &cfg, &secret_env()))
        .await
        .expect("the forwarder start task")
}

/// The emulator these tests use (the default configuration), on the test's runtime.
pub(crate) async fn emulator() -> EmulatorHandle {
    EmulatorSetup::new().start().await.expect("emulator")
}

/// What every end-to-end configuration has after its listeners and outputs: the spool and
/// dead-letter file under `{DIR}`, metrics on `{METRICS}`, a quick flush and a short grace.
pub(crate) const CONFIG_TAIL: &str = r#"
[spool]
dir = "{DIR}/spool"

[dead_letter]
path = "{DIR}/dead-letter.ndjson"

[metrics]
address = "127.0.0.1:{METRICS}"

[pipeline]
flush_interval = "100ms"
shutdown_grace = "10s"
"#;

/// A TOML config for the logs-ingestion output into an emulator at `base`.
pub(crate) fn emulator_config(base: &str, extra: &str) -> String {
    let output = mcas_testkit::logs_ingestion_output("[output]", base, "retry_budget = \"2s\"", "");
    format!(
        r#"
[[listen]]
protocol = "udp"
address = "127.0.0.1:{{PORT}}"

[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"
{output}{CONFIG_TAIL}{extra}
"#
    )
}

/// Run the binary with `args` (bounded: 60 s); (status code, stdout, stderr).
pub(crate) fn run_cli(
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let done = mcas_testkit::run_within(Path::new(BIN), args, stdin, env, Duration::from_secs(60))
        .expect("run mcas-forward")
        .expect("mcas-forward CLI timed out");
    (done.code, done.stdout, done.stderr)
}

/// Run the binary with `args` for at most `timeout`; a process still running then is
/// killed and `None` returned. (status code, stdout, stderr) otherwise.
pub(crate) fn run_cli_within(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Option<(i32, String, String)> {
    mcas_testkit::run_within(Path::new(BIN), args, None, env, timeout)
        .expect("run mcas-forward")
        .map(|d| (d.code, d.stdout, d.stderr))
}

/// Run util-linux `logger` with `args` (bounded in time); panics when it fails.
pub(crate) fn logger(args: &[&str]) {
    let mut child = Command::new("logger")
        .args(args)
        .spawn()
        .expect("run logger (util-linux)");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().expect("wait logger") {
            assert!(st.success(), "logger {args:?} failed: {st}");
            return;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("logger {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// This machine's host name as `logger` writes it.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `source` (such as
/// 127.0.0.2), so that a test can play a second sending host.
pub(crate) fn connect_from(source: &str, port: u16) -> std::io::Result<TcpStream> {
    let from: std::net::IpAddr = source
        .parse()
        .map_err(|_| std::io::Error::other("not an address"))?;
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&std::net::SocketAddr::new(from, 0).into())?;
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(s.into())
}

/// Whether the other end closed `s` (end of stream or reset) within `timeout`.
pub(crate) fn closed_by_peer(s: &mut TcpStream, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    while Instant::now() < end {
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// The private rsyslogd, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl KillOnDrop {
    pub(crate) fn stop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The rsyslogd binary, where Debian puts it.
pub(crate) fn rsyslogd() -> Option<std::path::PathBuf> {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd", "/usr/bin/rsyslogd"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

/// A private foreground `rsyslogd` on `conf`, its pid file in `dir` and its stderr in
/// `dir/rsyslogd.err`; killed when dropped, a failed assertion included.
pub(crate) fn start_rsyslogd(bin: &Path, conf: &Path, dir: &Path) -> KillOnDrop {
    let child = Command::new(bin)
        .args(["-n", "-f"])
        .arg(conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("rsyslogd.err")).expect("rsyslogd.err"))
        .spawn()
        .expect("start rsyslogd");
    KillOnDrop(child)
}

/// How often each number (the `externalId` the tests send, mapped to `ExtID`) is among
/// `rows`.
pub(crate) fn ext_ids<'a>(
    rows: impl IntoIterator<Item = &'a serde_json::Value>,
) -> std::collections::HashMap<usize, u32> {
    let mut seen = std::collections::HashMap::new();
    for r in rows {
        if let Some(n) = r["ExtID"].as_str().and_then(|s| s.parse().ok()) {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// The JSON rows of a `file` output (lines that do not parse are left out).
pub(crate) fn file_rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits up to `limit`, checking once a second (the rows are many), until the emulator's
/// CommonSecurityLog holds `n` distinct numbers.
pub(crate) async fn every_number_arrives(emu: &EmulatorHandle, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if emu.count("CommonSecurityLog") >= n && ext_ids(&emu.rows("CommonSecurityLog")).len() >= n
        {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

/// A test PKI: a CA, a server certificate for `localhost`, a client certificate of the same
/// CA and one of another CA (a stranger), for the TLS and RELP-over-TLS listeners.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) server_pem: String,
    pub(crate) server_key: String,
    pub(crate) client: (CertificateDer<'static>, PrivateKeyDer<'static>),
    pub(crate) stranger: (CertificateDer<'static>, PrivateKeyDer<'static>),
    pub(crate) ca_der: CertificateDer<'static>,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().expect("the test PKI");
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("the test PKI");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    (p.self_signed(&key).expect("the test PKI"), key)
}

fn leaf(
    names: &[&str],
    client: bool,
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().expect("the test PKI");
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("the test PKI");
    p.extended_key_usages = vec![if client {
        rcgen::ExtendedKeyUsagePurpose::ClientAuth
    } else {
        rcgen::ExtendedKeyUsagePurpose::ServerAuth
    }];
    (p.signed_by(&key, ca, ca_key).expect("the test PKI"), key)
}

pub(crate) fn pki() -> Pki {
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

impl Pki {
    /// A client configuration that trusts the test CA and shows `identity`, if any.
    pub(crate) fn client_config(
        &self,
        identity: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    ) -> std::sync::Arc<rustls::ClientConfig> {
        #[allow(
            deprecated,
            reason = "the ring provider is chosen on purpose: no C toolchain or cmake for aws-lc; rustls 0.23.48 deprecates it for lacking post-quantum key exchange"
        )]
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("the test PKI");
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the test PKI")
            .with_root_certificates(roots);
        std::sync::Arc::new(match identity {
            Some((c, k)) => b
                .with_client_auth_cert(vec![c.clone()], k.clone_key())
                .expect("the test PKI"),
            None => b.with_no_client_auth(),
        })
    }

    /// Write the CA, the server certificate and its key into `dir`; their paths, in that
    /// order, for a listener's `client_ca`, `cert` and `key`.
    pub(crate) fn write_server_files(&self, dir: &Path) -> (String, String, String) {
        let p = |n: &str, t: &str| {
            let f = dir.join(n);
            std::fs::write(&f, t).expect("write a test PKI file");
            f.display().to_string()
        };
        (
            p("ca.pem", &self.ca_pem),
            p("server.pem", &self.server_pem),
            p("server.key", &self.server_key),
        )
    }
}
