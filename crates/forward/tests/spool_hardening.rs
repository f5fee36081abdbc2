//! The spool under hostile conditions, through the real binary: a second instance on the
//! same spool directory, and the spool directory deleted while the output is down.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::*;
use mcas_azure_emulator::Faults;

const CSL: &str = "CommonSecurityLog";

fn line(id: usize) -> String {
    format!(
        "<134>2024-05-08T16:07:11Z fw01 CEF:0|Vendor|Product|1.0|100|event|5|externalId=ev-{id} src=10.0.0.1\n"
    )
}

/// Run `mcas-forward run --config <cfg>` and wait (bounded) for it to exit; a process still
/// running at the deadline is killed and reported as `None`.
fn run_until_exit(cfg: &std::path::Path, timeout: Duration) -> Option<(i32, String)> {
    let cfg = cfg.to_str().expect("a UTF-8 path");
    run_cli_within(&["run", "--config", cfg], &secret_env(), timeout)
        .map(|(code, _, err)| (code, err))
}

#[test]
fn a_second_forwarder_on_the_same_spool_directory_is_refused_and_the_first_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the endpoint: the batches stay spooled, which is the case where
    // two instances used to overwrite each other's files.
    let cfg = emulator_config("http://127.0.0.1:9", "");
    let mut first = forwarder(dir.path(), &cfg, &secret_env());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", first.port)).unwrap();
    for i in 0..20 {
        s.write_all(line(i).as_bytes()).unwrap();
    }
    assert!(wait_until(Duration::from_secs(20), || first
        .metric("mcas_forward_spool_files")
        .is_some_and(|n| n >= 1.0)));

    // The second instance: its own ports, the same spool directory.
    let second_dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let text = cfg
        .replace("{PORT}", &free_port().to_string())
        .replace("{METRICS}", &free_port().to_string())
        .replace("{DIR}/spool", &spool.display().to_string())
        .replace("{DIR}", &second_dir.path().display().to_string());
    let second_cfg = second_dir.path().join("second.toml");
    std::fs::write(&second_cfg, text).unwrap();
    let (code, err) = run_until_exit(&second_cfg, Duration::from_secs(30))
        .expect("the second forwarder must exit, not run beside the first");
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("is in use by another mcas-forward process")
            && err.contains(&spool.display().to_string()),
        "the error names the directory and the cause: {err}"
    );

    // The first one is untouched: alive, still reading, its batches still there.
    assert!(first.is_running().unwrap(), "first exited");
    for i in 20..30 {
        s.write_all(line(i).as_bytes()).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(20), || first
            .metric("mcas_forward_received_total")
            == Some(30.0)),
        "{}",
        first.stderr_text()
    );
    assert_eq!(first.http_get("/health/live").map(|r| r.0), Some(200));
    drop(s);
    assert!(
        first
            .terminate(Duration::from_secs(30))
            .expect("the forwarder exits")
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_spool_directory_does_not_wedge_delivery() {
    let emu = emulator().await;
    emu.set_faults(Faults::none().with_down(Duration::ZERO, Duration::from_secs(3600)));
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "");
    let fwd = start_forwarder(dir.path(), cfg).await;
    let spool = dir.path().join("spool");
    let port = fwd.port;
    let fwd = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        for i in 0..50 {
            s.write_all(line(i).as_bytes()).unwrap();
        }
        assert!(wait_until(Duration::from_secs(20), || fwd
            .metric("mcas_forward_received_total")
            == Some(50.0)));
        // Every closed batch is on disk (none left in memory to be written after).
        assert!(wait_until(Duration::from_secs(20), || {
            let closed = fwd.metric("mcas_forward_batches_total");
            closed.is_some_and(|n| n >= 1.0)
                && closed == fwd.metric("mcas_forward_spool_written_total")
        }));
        // An operator deletes the spool while the output is down.
        std::fs::remove_dir_all(&spool).unwrap();
        // The lost batches are released and counted at their next try, not retried for
        // ever (a send already under way when the files went keeps its copy until it fails).
        assert!(
            wait_until(Duration::from_secs(90), || fwd
                .metric("mcas_forward_spool_bytes")
                == Some(0.0)
                && fwd.metric("mcas_forward_spool_files") == Some(0.0)
                && fwd
                    .metric("mcas_forward_dropped_total{reason=\"spool_lost\"}")
                    .is_some_and(|n| n >= 1.0)),
            "{}\n{:?}",
            fwd.stderr_text(),
            fwd.http_get("/metrics")
        );
        assert!(fwd.stderr_text().contains("vanished before it was sent"));
        fwd
    })
    .await
    .unwrap();
    emu.set_faults(Faults::none());
    let fwd = tokio::task::spawn_blocking(move || {
        // ...and what comes next is delivered.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        for i in 100..110 {
            s.write_all(line(i).as_bytes()).unwrap();
        }
        fwd
    })
    .await
    .unwrap();
    let mut delivered = false;
    for _ in 0..1000 {
        if emu.count(CSL) >= 10 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        delivered,
        "new events delivered after the spool was deleted"
    );
    let rows = emu.rows(CSL);
    assert!(
        rows.iter().all(|r| r["ExtID"]
            .as_str()
            .and_then(|x| x.strip_prefix("ev-"))
            .and_then(|x| x.parse::<usize>().ok())
            .is_some_and(|i| (100..110).contains(&i))),
        "only the new events: the deleted ones are gone"
    );
    let mut fwd = fwd;
    tokio::task::spawn_blocking(move || {
        assert!(
            fwd.terminate(Duration::from_secs(30))
                .expect("the forwarder exits")
                .success()
        )
    })
    .await
    .unwrap();
    emu.shutdown().await;
}
