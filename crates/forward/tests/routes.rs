//! Named outputs end to end: rows routed by a KQL `where` to two emulated workspaces and an
//! archive file, a `where` that drops what no output takes (counted), and one output down
//! for 30 s while the other keeps delivering and the down one catches up from its spool.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::time::{Duration, Instant};

use common::*;
use mcas_azure_emulator::Faults;
use serde_json::Value;

const CSL: &str = "CommonSecurityLog";

/// A `[[output]]` table into the emulator at `base`.
fn li_output(name: &str, base: &str, filter: Option<&str>) -> String {
    let filter = filter.map_or(String::new(), |w| format!("where = '{w}'\n"));
    mcas_testkit::logs_ingestion_output(
        "[[output]]",
        base,
        &format!("name = \"{name}\"\nretry_budget = \"2s\"\n{filter}"),
        "",
    )
}

/// The rest of the configuration: a TCP listener, spool, dead-letter, metrics.
fn base_config(outputs: &str, extra: &str) -> String {
    format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"
{outputs}{CONFIG_TAIL}{extra}
"#
    )
}

const VENDORS: [&str; 4] = ["Palo Alto Networks", "Fortinet", "Acme", "Noisy"];

/// Event `i`: vendor `VENDORS[i % 4]`, id `ev-i`.
fn event(i: usize) -> String {
    let vendor = VENDORS[i % VENDORS.len()];
    format!(
        "<134>2024-05-08T16:07:11Z fw01 CEF:0|{vendor}|P|1|100|conn|5|externalId=ev-{i} dpt=22\n"
    )
}

fn send(port: u16, range: std::ops::Range<usize>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let buf: String = range.map(event).collect();
    s.write_all(buf.as_bytes()).unwrap();
}

fn ids(rows: &[Value]) -> BTreeSet<usize> {
    rows.iter()
        .map(|r| r["ExtID"].as_str().unwrap()["ev-".len()..].parse().unwrap())
        .collect()
}

fn want(n: usize, keep: impl Fn(&str) -> bool) -> BTreeSet<usize> {
    (0..n)
        .filter(|i| keep(VENDORS[i % VENDORS.len()]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_fan_out_to_every_output_whose_where_keeps_them() {
    let soc = emulator().await;
    let other = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = [
        li_output(
            "soc",
            &soc.base_url(),
            Some(r#"DeviceVendor in ("Palo Alto Networks", "Fortinet")"#),
        ),
        li_output("acme", &other.base_url(), Some(r#"DeviceVendor == "Acme""#)),
        "\n[[output]]\nname = \"archive\"\nkind = \"file\"\npath = \"{DIR}/archive.ndjson\"\n"
            .to_owned(),
    ]
    .concat();
    let fwd = start_forwarder(dir.path(), base_config(&outputs, "")).await;
    let n = 400;
    let port = fwd.port;
    tokio::task::spawn_blocking(move || send(port, 0..n))
        .await
        .unwrap();
    let (a, b) = (
        want(n, |v| v == "Palo Alto Networks" || v == "Fortinet"),
        want(n, |v| v == "Acme"),
    );
    assert!(
        wait_until_async(Duration::from_secs(30), || soc.count(CSL) >= a.len()
            && other.count(CSL) >= b.len()
            && fwd.metric("mcas_forward_output_sent_rows_total{output=\"archive\"}")
                == Some(n as f64))
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(ids(&soc.rows(CSL)), a, "soc holds exactly its two vendors");
    assert_eq!(ids(&other.rows(CSL)), b, "the other workspace exactly Acme");
    let archive = std::fs::read_to_string(dir.path().join("archive.ndjson")).unwrap();
    let archived: Vec<Value> = archive
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        ids(&archived),
        (0..n).collect(),
        "the archive holds every row"
    );
    // Per-output series, and the totals as their sum.
    for (name, rows) in [("soc", a.len()), ("acme", b.len()), ("archive", n)] {
        assert_eq!(
            fwd.metric(&format!(
                "mcas_forward_output_sent_rows_total{{output=\"{name}\"}}"
            )),
            Some(rows as f64),
            "{name}"
        );
    }
    assert_eq!(
        fwd.metric("mcas_forward_sent_rows_total"),
        Some((a.len() + b.len() + n) as f64)
    );
    let (status, health) = fwd.http_get("/health").unwrap();
    assert_eq!(status, 200, "{health}");
    let health: Value = serde_json::from_str(&health).unwrap();
    let names: Vec<&str> = health["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["soc", "acme", "archive"]);
    // Each network output has its own spool directory.
    assert!(dir.path().join("spool/outputs/soc").is_dir());
    assert!(dir.path().join("spool/outputs/acme").is_dir());
    drop(fwd);
    soc.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropping_where_cuts_the_ingested_rows_and_bytes_and_counts_the_drop() {
    let all = emulator().await;
    let kept = emulator().await;
    let n = 800;
    // The same corpus once without a `where`, once with one that drops a vendor.
    let mut fwds = Vec::new();
    for (emu, filter) in [(&all, None), (&kept, Some(r#"DeviceVendor != "Noisy""#))] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = base_config(
            &li_output("default", &emu.base_url(), filter),
            "[routing]\nunmatched = \"drop\"\n",
        );
        let fwd = start_forwarder(dir.path(), cfg).await;
        let port = fwd.port;
        tokio::task::spawn_blocking(move || send(port, 0..n))
            .await
            .unwrap();
        fwds.push((dir, fwd));
    }
    let noisy = want(n, |v| v == "Noisy").len();
    assert!(
        wait_until_async(Duration::from_secs(30), || all.count(CSL) == n
            && kept.count(CSL) == n - noisy)
        .await
    );
    assert_eq!(ids(&kept.rows(CSL)), want(n, |v| v != "Noisy"));
    let (_, filtered) = &fwds[1];
    assert!(
        wait_until_async(Duration::from_secs(10), || filtered
            .metric("mcas_forward_dropped_total{reason=\"unmatched\"}")
            == Some(noisy as f64))
        .await
    );
    let sent = |fwd: &Forwarder| {
        fwd.metric("mcas_forward_output_sent_uncompressed_bytes_total{output=\"default\"}")
            .unwrap()
    };
    let ratio = sent(filtered) / sent(&fwds[0].1);
    let rows_ratio = (n - noisy) as f64 / n as f64;
    assert!(
        (ratio - rows_ratio).abs() < 0.02,
        "bytes fall with the rows: {ratio} against {rows_ratio}"
    );
    let wire = |emu: &mcas_azure_emulator::EmulatorHandle| {
        emu.requests().iter().map(|r| r.bytes).sum::<u64>()
    };
    assert!(wire(&kept) < wire(&all), "fewer bytes on the wire");
    drop(fwds);
    all.shutdown().await;
    kept.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_output_down_for_30_s_never_stops_the_other_and_catches_up_from_its_spool() {
    let up = emulator().await;
    let down = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = [
        li_output("up", &up.base_url(), None),
        li_output("down", &down.base_url(), None),
    ]
    .concat();
    let fwd = start_forwarder(dir.path(), base_config(&outputs, "")).await;
    down.set_faults(Faults::none().with_rate_503(1.0));
    let outage = Instant::now();
    // 30 s of traffic, 20 events a second, while `down` answers 503 to everything.
    let port = fwd.port;
    let mut sent = 0;
    let mut delivered_meanwhile = Vec::new();
    while outage.elapsed() < Duration::from_secs(30) {
        let from = sent;
        sent += 20;
        tokio::task::spawn_blocking(move || send(port, from..from + 20))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        delivered_meanwhile.push(up.count(CSL));
    }
    // The healthy output delivered all along: within a few seconds of every second.
    assert!(
        wait_until_async(Duration::from_secs(10), || up.count(CSL) == sent).await,
        "{}",
        fwd.stderr_text()
    );
    let late = delivered_meanwhile.len() / 2;
    assert!(
        delivered_meanwhile[late] >= late * 20 - 60,
        "the healthy output kept delivering during the outage: {delivered_meanwhile:?}"
    );
    assert_eq!(down.count(CSL), 0);
    assert_eq!(
        fwd.metric("mcas_forward_output_up{output=\"down\"}"),
        Some(0.0)
    );
    assert_eq!(
        fwd.metric("mcas_forward_output_up{output=\"up\"}"),
        Some(1.0)
    );
    assert!(
        fwd.metric("mcas_forward_output_spool_bytes{output=\"down\"}")
            .unwrap()
            > 0.0
    );
    // The outage ends: the down output catches up from its spool, 0 lost, none twice.
    down.set_faults(Faults::none());
    assert!(
        wait_until_async(Duration::from_secs(120), || down.count(CSL) >= sent).await,
        "caught up {} of {sent}",
        down.count(CSL)
    );
    assert_eq!(ids(&down.rows(CSL)), (0..sent).collect());
    assert_eq!(down.count(CSL), sent, "no duplicates");
    assert_eq!(ids(&up.rows(CSL)), (0..sent).collect());
    drop(fwd);
    up.shutdown().await;
    down.shutdown().await;
}
