//! A DCR transformation applied end to end: the forwarder sends a corpus to the emulator,
//! whose DCR data flow carries a `transformKql` that drops half the events and removes a
//! column; the emulator holds exactly the expected rows and columns.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::*;
use mcas_azure_emulator::{DEFAULT_DCR_ID, Dcr, Stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_applies_the_dcr_transformation_to_what_the_forwarder_sends() {
    let stream = Stream::common_security_log()
        .with_transform("source | where DestinationPort != 443 | project-away AdditionalExtensions")
        .unwrap();
    let emu = EmulatorSetup::new()
        .configure(|c| c.dcrs = vec![Dcr::new(DEFAULT_DCR_ID, vec![stream])])
        .start()
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().unwrap();
    let fwd = start_forwarder(dir.path(), emulator_config(&emu.base_url(), "")).await;
    let port = fwd.port;
    let n = 200;
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        for i in 0..n {
            let dpt = if i % 2 == 0 { 443 } else { 22 };
            writeln!(
                s,
                "<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|conn|5|externalId=ev-{i} dpt={dpt} cs1=kept-{i} unknownKey=goes-to-additional-extensions"
            )
            .unwrap();
        }
    })
    .await
    .unwrap();
    // Every request is answered 204 whether or not the transformation keeps its rows, so
    // wait for the forwarder to have delivered all it sent.
    assert!(
        wait_until_async(Duration::from_secs(30), || fwd
            .metric("mcas_forward_sent_rows_total")
            == Some(f64::from(n)))
        .await,
        "{}",
        fwd.stderr_text()
    );
    let rows = emu.rows("CommonSecurityLog");
    assert_eq!(rows.len(), (n / 2) as usize, "the odd half, port 22");
    let mut ids: Vec<u32> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["DestinationPort"], 22);
            assert!(
                r.get("AdditionalExtensions").is_none(),
                "projected away: {r}"
            );
            assert!(
                r["DeviceCustomString1"]
                    .as_str()
                    .unwrap()
                    .starts_with("kept-")
            );
            r["ExtID"].as_str().unwrap()[3..].parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..n).filter(|i| i % 2 == 1).collect::<Vec<_>>());
    drop(fwd);
    emu.shutdown().await;
}

/// `[output] transform`: the forwarder runs the transformation before batching. The rows it
/// drops are counted (`reason="transform"`), never sent nor dead-lettered; the rows it keeps
/// arrive as it leaves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_applies_output_transform_before_sending() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "").replace(
        "stream = \"Custom-CommonSecurityLog\"\n",
        "stream = \"Custom-CommonSecurityLog\"\ntransform = 'source | where DestinationPort != 443 | project-away AdditionalExtensions | extend DeviceCustomString2 = strcat(\"port \", DestinationPort)'\n",
    );
    let fwd = start_forwarder(dir.path(), cfg).await;
    let port = fwd.port;
    let n = 200u32;
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        for i in 0..n {
            let dpt = if i % 2 == 0 { 443 } else { 22 };
            writeln!(
                s,
                "<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|conn|5|externalId=ev-{i} dpt={dpt} unknownKey=extension"
            )
            .unwrap();
        }
    })
    .await
    .unwrap();
    assert!(
        wait_until_async(Duration::from_secs(30), || emu.count("CommonSecurityLog")
            == (n / 2) as usize)
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || fwd
            .metric("mcas_forward_dropped_total{reason=\"transform\"}")
            == Some(f64::from(n / 2)))
        .await
    );
    for r in emu.rows("CommonSecurityLog") {
        assert_eq!(r["DestinationPort"], 22);
        assert_eq!(r["DeviceCustomString2"], "port 22");
        assert!(r.get("AdditionalExtensions").is_none(), "{r}");
        assert_eq!(r["DeviceVendor"], "V");
    }
    assert_eq!(fwd.metric("mcas_forward_dead_lettered_total"), Some(0.0));
    drop(fwd);
    emu.shutdown().await;
}

/// A transformation that does not compile stops `validate` and `run`, with the caret.
#[test]
fn a_bad_output_transform_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[output]\nkind = \"stdout\"\ntransform = 'source | summarize count() by DeviceVendor'\n",
    )
    .unwrap();
    let (code, _, err) = common::run_cli(
        &["validate", "--offline", "--config", cfg.to_str().unwrap()],
        None,
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("output.transform does not compile")
            && err.contains("summarize is not supported in transformations"),
        "{err}"
    );
}
