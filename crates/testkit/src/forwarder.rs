//! The `mcas-forward` process: a configuration written from a template, the binary started
//! on it, readiness, signals, a bounded wait, its output captured, and a kill on drop.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::http::{self, Response};
use crate::ports::free_port;
use crate::prom::Scrape;

/// How often a wait asks the process again.
const POLL: Duration = Duration::from_millis(20);
/// How much of the end of the forwarder's log an error message quotes.
const LOG_TAIL: usize = 8 * 1024;

/// A signal sent with `kill(1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGTERM`: drain and stop.
    Term,
    /// `SIGKILL`.
    Kill,
    /// `SIGHUP`: reload the configuration.
    Hup,
    /// `SIGINT`.
    Int,
    /// `SIGUSR1`.
    Usr1,
    /// `SIGUSR2`.
    Usr2,
}

impl Signal {
    /// The name `kill -NAME` takes.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
        }
    }
}

/// When a started forwarder counts as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ready {
    /// The TCP port accepts a connection (one probe connection, which the forwarder counts),
    /// and, when the metrics check is on (see [`Launch::metrics_ready`]), `GET /metrics`
    /// answers 200.
    Listening,
    /// The captured standard error contains this text.
    LogContains(String),
}

/// Where the process's standard output and error go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Logs {
    /// `stdout-N.txt` and `stderr-N.txt` in the directory, N the number of entries the
    /// directory holds at the start (so that each start has its own files).
    PerStart,
    /// Both appended to one file, across restarts.
    Combined(PathBuf),
}

/// How to start a forwarder: the binary, its directory, its environment, its ports.
///
/// The configuration template may use `{PORT}` (the listener port), `{METRICS}` (the
/// metrics port) and `{DIR}` (the directory); [`Launch::start`] replaces them, writes the
/// result to the configuration file in the directory and runs
/// `BIN run --config FILE`.
#[derive(Debug, Clone)]
pub struct Launch {
    bin: PathBuf,
    dir: PathBuf,
    config_name: String,
    env: Vec<(OsString, OsString)>,
    ports: Option<(u16, u16)>,
    nofile: Option<u32>,
    ready: Ready,
    metrics_ready: Option<bool>,
    ready_within: Duration,
    logs: Logs,
}

impl Launch {
    /// `bin` (the `mcas-forward` binary) run in `dir`; `config.toml`, output per start, no
    /// extra environment, fresh ports, ready when listening, within 30 s.
    pub fn new(bin: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            dir: dir.into(),
            config_name: "config.toml".to_owned(),
            env: Vec::new(),
            ports: None,
            nofile: None,
            ready: Ready::Listening,
            metrics_ready: None,
            ready_within: Duration::from_secs(30),
            logs: Logs::PerStart,
        }
    }

    /// The configuration file's name in the directory.
    pub fn config_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.config_name);
        self
    }

    /// One more environment variable for the process.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// More environment variables.
    pub fn envs<K: Into<OsString>, V: Into<OsString>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The listener and metrics ports (`{PORT}`, `{METRICS}`, and what readiness probes);
    /// two [`free_port`]s otherwise.
    pub fn ports(mut self, port: u16, metrics_port: u16) -> Self {
        self.ports = Some((port, metrics_port));
        self
    }

    /// Run under `ulimit -n nofile` (through `sh`).
    pub fn nofile(mut self, nofile: u32) -> Self {
        self.nofile = Some(nofile);
        self
    }

    /// When the process counts as ready.
    pub fn ready(mut self, ready: Ready) -> Self {
        self.ready = ready;
        self
    }

    /// Whether [`Ready::Listening`] also waits for `GET /metrics` to answer 200. By default
    /// it does when the template names `{METRICS}`.
    pub fn metrics_ready(mut self, on: bool) -> Self {
        self.metrics_ready = Some(on);
        self
    }

    /// How long the process may take to become ready.
    pub fn ready_within(mut self, limit: Duration) -> Self {
        self.ready_within = limit;
        self
    }

    /// Where the process's output goes.
    pub fn logs(mut self, logs: Logs) -> Self {
        self.logs = logs;
        self
    }

    /// Writes the configuration from `template`, starts the process and waits until it is
    /// ready. A process that exits first, or is not ready in time (it is then killed), is
    /// an error quoting the end of its log.
    pub fn start(self, template: &str) -> io::Result<Forwarder> {
        let (port, metrics_port) = match self.ports {
            Some(p) => p,
            None => (free_port()?, free_port()?),
        };
        let text = template
            .replace("{PORT}", &port.to_string())
            .replace("{METRICS}", &metrics_port.to_string())
            .replace("{DIR}", &self.dir.display().to_string());
        let config = self.dir.join(&self.config_name);
        std::fs::write(&config, text)?;
        let metrics_ready = self
            .metrics_ready
            .unwrap_or_else(|| template.contains("{METRICS}"));
        let mut f = Forwarder {
            dir: self.dir.clone(),
            port,
            metrics_port,
            config,
            stdout: PathBuf::new(),
            stderr: PathBuf::new(),
            child: None,
            status: None,
            starts: 0,
            metrics_ready,
            launch: self,
        };
        f.spawn()?;
        Ok(f)
    }
}

/// A running (or exited) forwarder; killed and reaped on drop if still running.
#[derive(Debug)]
pub struct Forwarder {
    /// The directory it runs in (configuration, output files).
    pub dir: PathBuf,
    /// The listener port (`{PORT}`).
    pub port: u16,
    /// The metrics port (`{METRICS}`).
    pub metrics_port: u16,
    config: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
    status: Option<ExitStatus>,
    starts: u32,
    metrics_ready: bool,
    launch: Launch,
}

impl Forwarder {
    /// `127.0.0.1:`[`Forwarder::port`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `127.0.0.1:`[`Forwarder::metrics_port`].
    pub fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.metrics_port))
    }

    /// The configuration file written.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// How many times the process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The process id, while the process has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        match (&self.child, self.status) {
            (Some(c), None) => Some(c.id()),
            _ => None,
        }
    }

    /// Whether the process is still running (reaping it when it has exited).
    pub fn is_running(&mut self) -> io::Result<bool> {
        Ok(self.try_status()?.is_none())
    }

    /// Its exit status, if it has exited (reaping it).
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none()
            && let Some(c) = self.child.as_mut()
        {
            self.status = c.try_wait()?;
        }
        Ok(self.status)
    }

    /// Starts the process again on the same configuration and ports (after it exited),
    /// and waits until it is ready.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.is_running()? {
            return Err(io::Error::other("restart: the forwarder is still running"));
        }
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let l = &self.launch;
        let (out, err) = match &l.logs {
            Logs::PerStart => {
                let n = std::fs::read_dir(&self.dir).map_or(0, Iterator::count);
                let (o, e) = (
                    self.dir.join(format!("stdout-{n}.txt")),
                    self.dir.join(format!("stderr-{n}.txt")),
                );
                let (fo, fe) = (File::create(&o)?, File::create(&e)?);
                self.stdout = o;
                self.stderr = e;
                (fo, fe)
            }
            Logs::Combined(path) => {
                let f = OpenOptions::new().create(true).append(true).open(path)?;
                self.stdout.clone_from(path);
                self.stderr.clone_from(path);
                (f.try_clone()?, f)
            }
        };
        let mut cmd = match l.nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" run --config \"$1\""))
                    .arg(&l.bin)
                    .arg(&self.config);
                c
            }
            None => {
                let mut c = Command::new(&l.bin);
                c.arg("run").arg("--config").arg(&self.config);
                c
            }
        };
        cmd.envs(l.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {}: {e}", l.bin.display())))?;
        self.child = Some(child);
        self.status = None;
        self.starts += 1;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.launch.ready_within;
        let mut accepted = false;
        loop {
            if let Some(st) = self.try_status()? {
                return Err(io::Error::other(format!(
                    "the forwarder exited at start: {st}; its log ends:\n{}",
                    self.log_tail()
                )));
            }
            let ready = match &self.launch.ready {
                Ready::Listening => {
                    // One successful probe only: the forwarder counts connections.
                    accepted = accepted
                        || TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200))
                            .is_ok();
                    accepted
                        && (!self.metrics_ready
                            || http::get(self.metrics_addr(), "/metrics")
                                .is_ok_and(|r| r.status == 200))
                }
                Ready::LogContains(text) => self.stderr_text().contains(text.as_str()),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill_and_reap();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the forwarder was not ready within {:?} ({:?}); its log ends:\n{}",
                        self.launch.ready_within,
                        self.launch.ready,
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `sig` to the process with `kill(1)`; an error if it has been reaped or `kill`
    /// fails.
    pub fn signal(&mut self, sig: Signal) -> io::Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| io::Error::other(format!("kill -{}: no process", sig.name())))?;
        let st = Command::new("kill")
            .arg(format!("-{}", sig.name()))
            .arg(pid.to_string())
            .status()?;
        if st.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill -{} {pid}: {st}",
                sig.name()
            )))
        }
    }

    /// Waits up to `limit` for the process to exit. At the deadline it is killed, reaped,
    /// and the wait is an error quoting the end of its log.
    pub fn wait(&mut self, limit: Duration) -> io::Result<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_status()? {
                return Ok(st);
            }
            if self.child.is_none() {
                return Err(io::Error::other("wait: the forwarder was never started"));
            }
            if Instant::now() > end {
                self.kill_and_reap();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the forwarder did not exit within {limit:?}; its log ends:\n{}",
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// `SIGTERM`, then [`Forwarder::wait`] up to `limit`. A process that already exited
    /// gives its status.
    pub fn terminate(&mut self, limit: Duration) -> io::Result<ExitStatus> {
        if let Some(st) = self.try_status()? {
            return Ok(st);
        }
        self.signal(Signal::Term)?;
        self.wait(limit)
    }

    /// `SIGKILL`, then reap. A process that already exited gives its status.
    pub fn kill9(&mut self) -> io::Result<ExitStatus> {
        if let Some(st) = self.try_status()? {
            return Ok(st);
        }
        self.signal(Signal::Kill)?;
        let c = self
            .child
            .as_mut()
            .ok_or_else(|| io::Error::other("kill9: no process"))?;
        let st = c.wait()?;
        self.status = Some(st);
        Ok(st)
    }

    fn kill_and_reap(&mut self) {
        if self.status.is_none()
            && let Some(c) = self.child.as_mut()
        {
            let _ = c.kill();
            self.status = c.wait().ok();
        }
    }

    /// The captured standard error so far (the combined log with [`Logs::Combined`]).
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The captured standard output so far (the combined log with [`Logs::Combined`]).
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The file standard error goes to.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    fn log_tail(&self) -> String {
        let t = self.stderr_text();
        let mut at = t.len().saturating_sub(LOG_TAIL);
        while !t.is_char_boundary(at) {
            at += 1;
        }
        t[at..].to_owned()
    }

    /// `GET path` on the metrics address.
    pub fn get(&self, path: &str) -> io::Result<Response> {
        http::get(self.metrics_addr(), path)
    }

    /// `GET path` on the metrics address as (status, body); `None` when it does not answer.
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        self.get(path).ok().map(|r| (r.status, r.body))
    }

    /// `GET /metrics`, which must answer 200.
    pub fn scrape(&self) -> io::Result<Scrape> {
        http::get_ok(self.metrics_addr(), "/metrics").map(Scrape::new)
    }

    /// One series from a fresh scrape (see [`Scrape::value`]); `None` when the endpoint
    /// does not answer or the series is absent.
    pub fn metric(&self, selector: &str) -> Option<f64> {
        self.scrape().ok()?.value(selector)
    }

    /// The process's peak resident memory (`VmHWM`) in kB; 0 when it cannot be read.
    pub fn peak_rss_kb(&self) -> u64 {
        self.pid()
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// What a bounded run of the binary printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit code (-1 when a signal ended it).
    pub code: i32,
    /// Standard output (UTF-8, lossy).
    pub stdout: String,
    /// Standard error (UTF-8, lossy).
    pub stderr: String,
}

/// Runs `bin args` with `stdin` (or none) and `env`, for at most `limit`. `Ok(None)` when
/// it was still running then: it is killed and reaped.
pub fn run_within<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    bin: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(K, V)],
    limit: Duration,
) -> io::Result<Option<Finished>> {
    use std::io::{Read as _, Write as _};
    let mut cmd = Command::new(bin);
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
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("spawn {}: {e}", bin.display())))?;
    // Readers and the writer on their own threads, so that no pipe fills while we wait.
    let drain = |r: Option<Box<dyn io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
    );
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(POLL);
    };
    let text = |h: std::thread::JoinHandle<Vec<u8>>| {
        h.join()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|_| io::Error::other("an output reader panicked"))
    };
    Ok(Some(Finished {
        code: status.code().unwrap_or(-1),
        stdout: text(out)?,
        stderr: text(err)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> PathBuf {
        PathBuf::from("/bin/sh")
    }

    /// An executable shell script `dir/name`. It is written and made executable by a child
    /// process, so that no file descriptor open for writing on it can leak into a process
    /// another test forks meanwhile (which makes exec fail with "text file busy").
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let src = dir.join(format!("{name}.txt"));
        std::fs::write(&src, format!("#!/bin/sh\n{body}")).expect("write");
        let bin = dir.join(name);
        let st = Command::new("install")
            .arg("-m")
            .arg("755")
            .arg(&src)
            .arg(&bin)
            .status()
            .expect("install");
        assert!(st.success());
        bin
    }

    #[test]
    fn a_bounded_run_reports_its_output_or_is_killed() {
        let done = run_within(
            &sh(),
            &["-c", "cat; echo err >&2; exit 3"],
            Some(b"in"),
            &[("X", "1")],
            Duration::from_secs(20),
        )
        .expect("run")
        .expect("finished");
        assert_eq!(
            done,
            Finished {
                code: 3,
                stdout: "in".into(),
                stderr: "err\n".into()
            }
        );
        let none: &[(&str, &str)] = &[];
        let hung = run_within(
            &sh(),
            &["-c", "sleep 30"],
            None,
            none,
            Duration::from_millis(200),
        )
        .expect("run");
        assert_eq!(hung, None);
    }

    /// A stand-in for the forwarder: a shell script that takes `run --config FILE`, reads
    /// the port from the file and logs; readiness by log line, signals, the bounded wait.
    #[test]
    fn a_process_is_started_signalled_and_waited_for() {
        let dir = tempfile::tempdir().expect("dir");
        let bin = script(
            dir.path(),
            "fake-forward",
            "trap 'echo hup >&2' HUP\ntrap 'echo bye >&2; exit 0' TERM\n\
             echo \"started with $(cat \"$3\")\" >&2\nwhile :; do sleep 0.05; done\n",
        );
        let mut f = Launch::new(&bin, dir.path())
            .ports(4242, 4343)
            .ready(Ready::LogContains("started".into()))
            .ready_within(Duration::from_secs(20))
            .start("port={PORT} metrics={METRICS}")
            .expect("start");
        assert!(
            f.stderr_text()
                .contains("started with port=4242 metrics=4343")
        );
        assert!(f.is_running().expect("running"));
        f.signal(Signal::Hup).expect("hup");
        assert!(crate::wait_until(Duration::from_secs(20), || f
            .stderr_text()
            .contains("hup")));
        let st = f.terminate(Duration::from_secs(20)).expect("exit");
        assert!(st.success(), "{st}");
        assert!(f.stderr_text().contains("bye"));
        assert!(f.pid().is_none());
        assert!(
            f.signal(Signal::Term).is_err(),
            "a reaped process has no pid"
        );
        // A second start on the same configuration.
        f.restart().expect("restart");
        assert_eq!(f.starts(), 2);
        let st = f.kill9().expect("kill");
        assert!(!st.success());
    }

    #[test]
    fn a_process_that_exits_at_start_is_an_error_with_its_log() {
        let dir = tempfile::tempdir().expect("dir");
        let bin = script(dir.path(), "fails", "echo 'bad config' >&2\nexit 1\n");
        let e = Launch::new(&bin, dir.path()).start("").expect_err("exits");
        assert!(e.to_string().contains("bad config"), "{e}");
    }
}
