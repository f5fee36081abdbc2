//! `mcas-forward tap` against a running forwarder: the live rows of the output, narrowed by
//! a KQL `where`, the rows its transformation drops on request, and clear refusals.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Send a mix of vendors (Acme, Other, Noisy) until `stop`, at most for 30 s.
fn feed(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            for vendor in ["Acme", "Other", "Noisy"] {
                writeln!(
                    s,
                    "<134>2024-05-08T16:07:11Z fw01 CEF:0|{vendor}|P|1|100|conn|5|externalId=ev-{n} dpt=22"
                )
                .unwrap();
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    })
}

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn tap_prints_the_live_rows_a_where_keeps_and_on_request_the_filtered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let toml = format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[output]
kind = "file"
path = "{{DIR}}/out.ndjson"
transform = 'source | where DeviceVendor != "Noisy"'

[admin]
address = "127.0.0.1:{admin}"
"#
    );
    let fwd = forwarder(dir.path(), &toml, &[]);
    let cfg = dir.path().join("config.toml");
    let cfg = cfg.to_str().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let feeder = feed(fwd.port, stop.clone());
    let (code, out, err) = run_cli_within(
        &[
            "--config",
            cfg,
            "tap",
            "--where",
            r#"DeviceVendor == "Acme""#,
            "--limit",
            "3",
        ],
        &[],
        Duration::from_secs(30),
    )
    .expect("tap ends at its limit");
    assert_eq!(code, 0, "{err}");
    let got = lines(&out);
    assert_eq!(got.len(), 3, "{out}");
    for l in &got {
        assert_eq!(l["output"], "default");
        assert_eq!(l["fate"], "sent");
        assert_eq!(l["table"], "CommonSecurityLog");
        assert_eq!(l["row"]["DeviceVendor"], "Acme");
    }

    // The rows the transformation drops: only with --filtered.
    let (code, out, err) = run_cli_within(
        &[
            "--config",
            cfg,
            "tap",
            "--filtered",
            "--where",
            r#"DeviceVendor == "Noisy""#,
            "--limit",
            "2",
        ],
        &[],
        Duration::from_secs(30),
    )
    .expect("tap ends at its limit");
    assert_eq!(code, 0, "{err}");
    let got = lines(&out);
    assert_eq!(got.len(), 2, "{out}");
    assert!(
        got.iter()
            .all(|l| l["fate"] == "filtered" && l["row"]["DeviceVendor"] == "Noisy")
    );
    stop.store(true, Ordering::Relaxed);
    let sent = feeder.join().unwrap();
    assert!(sent >= 6);

    // A predicate that does not compile: refused with the compiler's message.
    let (code, _, err) = run_cli_within(
        &["--config", cfg, "tap", "--where", "NoSuchColum == 1"],
        &[],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("400") && err.contains("NoSuchColum"), "{err}");
    // An output that does not exist.
    let (code, _, err) = run_cli_within(
        &[
            "--config", cfg, "tap", "--output", "archive", "--limit", "1",
        ],
        &[],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_ne!(code, 0);
    assert!(
        err.contains("no output \"archive\"") && err.contains("default"),
        "{err}"
    );
    drop(fwd);
}

#[test]
fn tap_without_an_admin_endpoint_says_how_to_turn_it_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[output]\nkind = \"stdout\"\n").unwrap();
    let (code, _, err) = run_cli_within(
        &["--config", cfg.to_str().unwrap(), "tap"],
        &[],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("[admin]"), "{err}");
}
