//! Shared helpers for the end-to-end tests: free ports, a forwarder child process, waiting.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mcas-forward");

/// Starts a forwarder with `cfg` and the emulator's client secret in its environment, on a
/// blocking thread so that an in-process emulator keeps serving while the child starts.
pub(crate) async fn start_forwarder(dir: &Path, cfg: String) -> Forwarder {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || Forwarder::start(&dir, &cfg, &secret_env()))
        .await
        .expect("the forwarder start task")
}

/// A port free for both TCP and UDP on 127.0.0.1 (racy by nature, retried by callers).
pub(crate) fn free_port() -> u16 {
    for _ in 0..100 {
        let t = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = t.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Poll `f` every 20 ms until it returns true or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Async flavour of [`wait_until`].
pub(crate) async fn wait_until_async(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// A running forwarder; killed on drop.
pub(crate) struct Forwarder {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    pub(crate) metrics_port: u16,
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
}

impl Forwarder {
    /// Start `mcas-forward run --config <dir>/config.toml` with the given TOML body; the
    /// caller's text may use `{PORT}`, `{METRICS}` and `{DIR}`, replaced here.
    pub(crate) fn start(dir: &Path, toml: &str, env: &[(&str, &str)]) -> Forwarder {
        Self::start_on(dir, toml, env, free_port(), free_port())
    }

    pub(crate) fn start_on(
        dir: &Path,
        toml: &str,
        env: &[(&str, &str)],
        port: u16,
        metrics_port: u16,
    ) -> Forwarder {
        let text = toml
            .replace("{PORT}", &port.to_string())
            .replace("{METRICS}", &metrics_port.to_string())
            .replace("{DIR}", &dir.display().to_string());
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, text).expect("write config");
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let stdout = dir.join(format!("stdout-{n}.txt"));
        let stderr = dir.join(format!("stderr-{n}.txt"));
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn mcas-forward");
        let f = Forwarder {
            child,
            dir: dir.to_owned(),
            port,
            metrics_port,
            stdout,
            stderr,
        };
        f.wait_ready();
        f
    }

    /// Wait until the TCP listener accepts (and the metrics endpoint, when configured).
    fn wait_ready(&self) {
        let ok = wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(
            ok,
            "forwarder did not start; stderr:\n{}",
            self.stderr_text()
        );
    }

    pub(crate) fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub(crate) fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// GET a path on the metrics address; (status, body).
    pub(crate) fn http_get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.split(' ').nth(1)?.parse().ok()?;
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    }

    /// A counter or gauge from `/metrics` (first sample whose line starts with `name`).
    pub(crate) fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics")?;
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub(crate) fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.wait(timeout)
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill9(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        let _ = self.child.wait();
    }

    pub(crate) fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!(
                    "forwarder did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TOML config for the logs-ingestion output into an emulator at `base`.
pub(crate) fn emulator_config(base: &str, extra: &str) -> String {
    format!(
        r#"
[[listen]]
protocol = "udp"
address = "127.0.0.1:{{PORT}}"

[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[output]
kind = "logs-ingestion"
endpoint = "{base}"
dcr_immutable_id = "{dcr}"
stream = "Custom-CommonSecurityLog"
retry_budget = "2s"

[output.auth]
kind = "client-secret"
tenant_id = "{tenant}"
client_id = "{client}"
authority_host = "{base}"

[spool]
dir = "{{DIR}}/spool"

[dead_letter]
path = "{{DIR}}/dead-letter.ndjson"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "100ms"
shutdown_grace = "10s"
{extra}
"#,
        dcr = mcas_azure_emulator::DEFAULT_DCR_ID,
        tenant = mcas_azure_emulator::DEFAULT_TENANT_ID,
        client = mcas_azure_emulator::DEFAULT_CLIENT_ID,
    )
}

/// The environment that carries the emulator's client secret.
pub(crate) fn secret_env() -> [(&'static str, &'static str); 1] {
    [(
        "MCAS_FORWARD_CLIENT_SECRET",
        mcas_azure_emulator::DEFAULT_CLIENT_SECRET,
    )]
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

/// Run the binary with `args`, bounded; (status code, stdout, stderr).
pub(crate) fn run_cli(
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(input).expect("write stdin");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("mcas-forward CLI timed out")
        .expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

/// Run the binary with `args` for at most `timeout`; a process still running then is
/// killed and `None` returned. (status code, stdout, stderr) otherwise.
pub(crate) fn run_cli_within(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Option<(i32, String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Some((
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    ))
}
