//! Hardening against a hostile host: signals that must not kill, a disk that cannot be
//! written at shutdown, and a flood of noise on a small disk. Disk faults run on a tmpfs the
//! test mounts (CI runs as root); where mounting is impossible the test says so and skips.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use mcas_azure_emulator::Faults;

const CSL: &str = "CommonSecurityLog";

fn line(id: usize) -> String {
    format!(
        "<134>2024-05-08T16:07:11Z fw01 CEF:0|Vendor|Product|1.0|100|event|5|externalId=ev-{id} src=10.0.0.1 msg=hello\n"
    )
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. "8m") at `at`; None (with the reason printed) where
    /// this process may not mount.
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(at.to_owned())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn signal(fwd: &mut Forwarder, sig: Signal) {
    fwd.signal(sig)
        .unwrap_or_else(|e| panic!("kill -{}: {e}", sig.name()));
}

/// Defect 5: HUP, USR1 and USR2 (logrotate scripts send HUP) neither kill the forwarder
/// nor lose a single event read.
#[test]
fn hup_usr1_and_usr2_never_kill_the_forwarder_or_lose_events() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{PORT}"

[output]
kind = "file"
path = "{DIR}/out.ndjson"

[metrics]
address = "127.0.0.1:{METRICS}"

[pipeline]
flush_interval = "100ms"
"#;
    let mut fwd = forwarder(dir.path(), cfg, &[]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
    let n = 2000;
    for (part, sig) in [Signal::Hup, Signal::Usr1, Signal::Usr2, Signal::Hup]
        .into_iter()
        .enumerate()
    {
        let buf: String = (part * 500..(part + 1) * 500).map(line).collect();
        s.write_all(buf.as_bytes()).unwrap();
        signal(&mut fwd, sig);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            fwd.is_running().unwrap(),
            "SIGHUP/USR killed the forwarder; stderr:\n{}",
            fwd.stderr_text()
        );
    }
    drop(s);
    assert!(wait_until(Duration::from_secs(20), || fwd
        .metric("mcas_forward_received_total")
        == Some(n as f64)));
    let st = fwd
        .terminate(Duration::from_secs(30))
        .expect("the forwarder exits");
    assert!(st.success(), "exit {st:?}; stderr:\n{}", fwd.stderr_text());
    let out = std::fs::read_to_string(dir.path().join("out.ndjson")).unwrap();
    assert_eq!(out.lines().count(), n, "every event read was written");
    let log = fwd.stderr_text();
    // SIGHUP reloads the configuration (the same file: nothing changes).
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("SIGUSR1: counters"), "{log}");
}

/// Defect 4: with the output down and the spool's disk turned read-only, SIGTERM still
/// ends the process by `shutdown_timeout`, and what could not be stored is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_an_unwritable_spool_exits_by_the_deadline_and_reports_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "4m") else {
        return;
    };
    let emu = emulator().await;
    emu.set_faults(Faults::none().with_down(Duration::ZERO, Duration::from_secs(3600)));
    let cfg = emulator_config(&emu.base_url(), "shutdown_timeout = \"3s\"")
        .replace("shutdown_grace = \"10s\"", "shutdown_grace = \"1s\"")
        .replace("dir = \"{DIR}/spool\"", "dir = \"{DIR}/disk/spool\"");
    let d = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut fwd = forwarder(&d, &cfg, &secret_env());
        disk.remount("ro");
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        let buf: String = (0..500).map(line).collect();
        s.write_all(buf.as_bytes()).unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || fwd
                .metric("mcas_forward_storage_failing")
                == Some(1.0)),
            "spool writes on a read-only disk are seen; stderr:\n{}",
            fwd.stderr_text()
        );
        let (status, _) = fwd.http_get("/health").unwrap();
        assert_eq!(status, 503, "not ready while the spool cannot be written");
        let t0 = Instant::now();
        let st = fwd
            .terminate(Duration::from_secs(20))
            .expect("the forwarder exits");
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(8),
            "exit took {took:?}, past the 3 s deadline; stderr:\n{}",
            fwd.stderr_text()
        );
        assert!(!st.success(), "a lossy shutdown is not a clean exit");
        let log = fwd.stderr_text();
        assert!(log.contains("shutdown deadline passed"), "{log}");
        assert!(log.contains("unstored_rows=500"), "{log}");
    })
    .await
    .unwrap();
    emu.shutdown().await;
}

/// Defect 2: 200,000 one-byte datagrams of noise on a 16 MiB disk that also holds the
/// spool: the dead-letter file stays small (sampled), the disk keeps room, CEF still
/// flows, and the forwarder stays ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_noise_neither_fills_the_disk_nor_stops_cef() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_disk) = Tmpfs::mount(&dir.path().join("disk"), "16m") else {
        return;
    };
    let emu = emulator().await;
    let cfg = emulator_config(&emu.base_url(), "")
        .replace("dir = \"{DIR}/spool\"", "dir = \"{DIR}/disk/spool\"")
        .replace(
            "path = \"{DIR}/dead-letter.ndjson\"",
            "path = \"{DIR}/disk/dead-letter.ndjson\"",
        );
    let fwd = start_forwarder(dir.path(), cfg).await;
    let port = fwd.port;
    let dl = dir.path().join("disk/dead-letter.ndjson");
    tokio::task::spawn_blocking(move || {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..200_000u32 {
            let _ = u.send_to(&[b'a' + (i % 26) as u8], ("127.0.0.1", port));
            if i % 2000 == 1999 {
                // Paced a little, so the noise reaches the pipeline rather than the kernel's
                // full receive buffer.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let buf: String = (0..1000).map(line).collect();
        s.write_all(buf.as_bytes()).unwrap();
    })
    .await
    .unwrap();
    assert!(
        wait_until_async(Duration::from_secs(30), || emu.count(CSL) >= 1000).await,
        "CEF delivered after the flood; stderr:\n{}",
        fwd.stderr_text()
    );
    dead_letter_flushed(&fwd).await;
    let size = std::fs::metadata(&dl).map(|m| m.len()).unwrap_or(0);
    assert!(
        size < 2 << 20,
        "the noise cost {size} bytes of dead-letter file"
    );
    let sampled = fwd
        .metric("mcas_forward_dropped_total{reason=\"dead_letter_sampled\"}")
        .unwrap_or(0.0);
    let kept = fwd
        .metric("mcas_forward_dead_lettered_total")
        .unwrap_or(0.0);
    let non_cef = fwd.metric("mcas_forward_non_cef_total").unwrap_or(0.0);
    assert!(sampled > 0.0, "the flood was summarised");
    assert_eq!(
        sampled + kept,
        non_cef,
        "every non-CEF message is kept or counted in a summary"
    );
    let (status, _) = fwd.http_get("/health").unwrap();
    assert_eq!(status, 200, "still ready");
    assert_eq!(emu.count(CSL), 1000);
    drop(fwd);
    emu.shutdown().await;
}

/// Waits until the dead-letter counters stop moving (the flush tick has run).
async fn dead_letter_flushed(fwd: &Forwarder) {
    let mut last = -1.0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = fwd
            .metric("mcas_forward_dropped_total{reason=\"dead_letter_sampled\"}")
            .unwrap_or(0.0)
            + fwd
                .metric("mcas_forward_dead_lettered_total")
                .unwrap_or(0.0);
        if now == last {
            return;
        }
        last = now;
    }
}

/// Defect 8: memory is bounded by bytes, not by chunks. With 16 MiB messages allowed, the
/// output down and the spool full, a sender of 4 MiB messages is pushed back once
/// `max_queued_bytes` is in flight, and the forwarder's peak memory stays near that budget
/// (chunk counting alone let it grow to gigabytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_messages_are_bounded_by_the_byte_budget() {
    let emu = emulator().await;
    emu.set_faults(Faults::none().with_down(Duration::ZERO, Duration::from_secs(3600)));
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "max_queued_bytes = \"16MiB\"\nworkers = 2")
        .replace(
            "address = \"127.0.0.1:{PORT}\"\n\n[output]",
            "address = \"127.0.0.1:{PORT}\"\nmax_message_bytes = \"16MiB\"\n\n[output]",
        )
        .replace(
            "dir = \"{DIR}/spool\"",
            "dir = \"{DIR}/spool\"\nmax_bytes = \"1MiB\"\nwhen_full = \"block\"",
        );
    let d = dir.path().to_owned();
    let (sent, peak_kb) = tokio::task::spawn_blocking(move || {
        let fwd = forwarder(&d, &cfg, &secret_env());
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut msg = b"<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|1|big|5|msg=".to_vec();
        // Letters that do not compress away: the spool holds gzip'd bodies, and a message of
        // one repeated byte would take almost none of its 1 MiB.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while msg.len() < 4 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            msg.push(b'a' + (x % 26) as u8);
        }
        msg.push(b'\n');
        let mut sent = 0;
        for _ in 0..200 {
            if s.write_all(&msg).is_err() {
                break;
            }
            sent += 1;
        }
        let peak = fwd.peak_rss_kb();
        (sent, peak)
    })
    .await
    .unwrap();
    assert!(
        sent < 200,
        "the sender was never pushed back ({sent} messages of 4 MiB taken)"
    );
    assert!(
        peak_kb < 400 * 1024,
        "peak RSS {peak_kb} kB with a 16 MiB budget ({sent} messages of 4 MiB taken)"
    );
    emu.shutdown().await;
}

/// Defect 16: an outage shows at the first failed attempt (not when a send's 20 s retry
/// budget is spent), every attempt is counted as it happens, and the recovery is logged
/// with the number of batches drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_at_the_first_attempt_and_the_recovery_is_logged() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "")
        .replace("retry_budget = \"2s\"", "retry_budget = \"20s\"")
        .replace("[spool]", "[spool]\nready_threshold = 0.0");
    let fwd = start_forwarder(dir.path(), cfg).await;
    let port = fwd.port;
    let send = move |from: usize| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let buf: String = (from..from + 100).map(line).collect();
        s.write_all(buf.as_bytes()).unwrap();
    };
    send(0);
    assert!(wait_until_async(Duration::from_secs(20), || emu.count(CSL) == 100).await);
    emu.set_faults(Faults::none().with_rate_503(1.0));
    let t0 = Instant::now();
    send(100);
    assert!(
        wait_until_async(Duration::from_secs(10), || fwd
            .metric("mcas_forward_responses_total{status=\"503\"}")
            .is_some_and(|v| v >= 1.0))
        .await,
        "a 503 is counted as it arrives"
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || fwd
            .http_get("/health")
            .is_some_and(|(st, _)| st == 503))
        .await
    );
    let seen = t0.elapsed();
    assert!(
        seen < Duration::from_secs(15),
        "the outage took {seen:?} to show, the retry budget is 20 s"
    );
    emu.set_faults(Faults::none());
    assert!(
        wait_until_async(Duration::from_secs(60), || emu.count(CSL) == 200).await,
        "{}",
        fwd.stderr_text()
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || fwd
            .stderr_text()
            .contains("recovered: the spool is drained"))
        .await,
        "{}",
        fwd.stderr_text()
    );
    let log = fwd.stderr_text();
    assert!(log.contains("the output is failing"), "{log}");
    assert!(log.contains("the output answers again"), "{log}");
    let (st, _) = fwd.http_get("/health").unwrap();
    assert_eq!(st, 200, "ready again");
    drop(fwd);
    emu.shutdown().await;
}
