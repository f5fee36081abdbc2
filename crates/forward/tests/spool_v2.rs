//! The spool's batch files, through the real binary and the emulator: files of the first
//! format (NDJSON) are sent at start-up, damaged files are quarantined without blocking the
//! rest, and a compressed body the service refuses for one row, or for its size, is opened
//! and narrowed down so the emulator holds exactly the good rows, once each.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use common::*;

const CSL: &str = "CommonSecurityLog";

/// A CommonSecurityLog row; `bad` gives it a column of the wrong type, which the service
/// refuses (400 `InvalidColumnType`).
fn row(id: &str, bad: bool) -> String {
    let class = if bad { "5" } else { "\"100\"" };
    format!(
        r#"{{"TimeGenerated":"{}","DeviceVendor":"Vendor","DeviceProduct":"Product","DeviceEventClassID":{class},"ExtID":"{id}","Message":"{}"}}"#,
        jiff::Timestamp::now(),
        "m".repeat(200)
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(3));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A gzip'd JSON array body of `rows`.
fn array_body(rows: &[String]) -> (Vec<u8>, u32, u32) {
    let raw = format!("[{}]", rows.join(","));
    (gzip(raw.as_bytes()), rows.len() as u32, raw.len() as u32)
}

/// A format-2 batch file of gzip'd array bodies.
fn batch_file(bodies: &[(Vec<u8>, u32, u32)]) -> Vec<u8> {
    let bodies: Vec<mcas_spool::Body<'_>> = bodies
        .iter()
        .map(|(data, rows, raw_len)| mcas_spool::Body {
            kind: mcas_spool::BodyKind::GzipArray,
            rows: *rows,
            raw_len: *raw_len,
            data,
        })
        .collect();
    mcas_spool::encode("default", "csl", &bodies)
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn spool_file(dir: &Path, seq: u64, ext: &str, data: &[u8]) {
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join(format!("{seq:020}.csl.{ext}")), data).unwrap();
}

fn stored(emu: &mcas_azure_emulator::EmulatorHandle) -> Vec<String> {
    let mut got: Vec<String> = emu
        .rows(CSL)
        .iter()
        .filter_map(|r| r.get("ExtID").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    got.sort();
    got
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_the_first_format_are_sent_at_start_up_beside_new_ones() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    // What an earlier version left: NDJSON rows, one file per batch.
    let old: Vec<String> = ids("old", 120);
    let ndjson: String = old.iter().map(|id| row(id, false) + "\n").collect();
    spool_file(dir.path(), 1, "ndjson", ndjson.as_bytes());
    // And a file of the current format after it.
    let new = ids("new", 80);
    let rows: Vec<String> = new.iter().map(|id| row(id, false)).collect();
    spool_file(dir.path(), 2, "batch", &batch_file(&[array_body(&rows)]));
    let fwd = start_forwarder(dir.path(), emulator_config(&emu.base_url(), "")).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || emu.count(CSL) == 200).await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(stored(&emu), sorted([old, new].concat()));
    assert!(
        wait_until_async(Duration::from_secs(10), || fwd
            .metric("mcas_forward_spool_files")
            == Some(0.0))
        .await
    );
    assert_eq!(fwd.metric("mcas_forward_spool_bytes"), Some(0.0));
    assert_eq!(fwd.metric("mcas_forward_sent_rows_total"), Some(200.0));
    assert_eq!(
        fwd.metric("mcas_forward_spool_quarantined_total"),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_batch_files_are_quarantined_and_never_block_the_others() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let good = ids("good", 50);
    let rows: Vec<String> = good.iter().map(|id| row(id, false)).collect();
    let file = batch_file(&[array_body(&rows)]);
    let lost = |p: &str| -> Vec<u8> {
        let r: Vec<String> = ids(p, 10).iter().map(|id| row(id, false)).collect();
        batch_file(&[array_body(&r)])
    };
    // 1: cut inside its header.
    spool_file(dir.path(), 1, "batch", &lost("cut")[..30]);
    // 2: a flipped byte in its header (the index's checksum).
    let mut flipped = lost("flip");
    flipped[20] ^= 0x40;
    spool_file(dir.path(), 2, "batch", &flipped);
    // 3: a flipped byte inside its gzip'd body.
    let mut body = lost("body");
    let n = body.len();
    body[n - 40] ^= 0x01;
    spool_file(dir.path(), 3, "batch", &body);
    // 4: a body whose checksum matches but that is not gzip (hand-made).
    let not_gzip = vec![b'x'; 64];
    let bad = [mcas_spool::Body {
        kind: mcas_spool::BodyKind::GzipArray,
        rows: 3,
        raw_len: 64,
        data: &not_gzip,
    }];
    spool_file(
        dir.path(),
        4,
        "batch",
        &mcas_spool::encode("default", "csl", &bad),
    );
    // 5: a good file, after the damaged ones.
    spool_file(dir.path(), 5, "batch", &file);
    let fwd = start_forwarder(dir.path(), emulator_config(&emu.base_url(), "")).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || emu.count(CSL) == 50).await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(stored(&emu), sorted(good));
    assert!(
        wait_until_async(Duration::from_secs(10), || fwd
            .metric("mcas_forward_spool_quarantined_total")
            == Some(4.0))
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(fwd.metric("mcas_forward_spool_files"), Some(0.0));
    assert_eq!(fwd.metric("mcas_forward_spool_bytes"), Some(0.0));
    let mut kept: Vec<String> = std::fs::read_dir(dir.path().join("spool/quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    let want: Vec<String> = (1..=4).map(|s| format!("{s:020}.csl.batch")).collect();
    assert_eq!(kept, want, "each damaged file moved aside whole");
    assert!(
        fwd.stderr_text().contains("cannot be read or is damaged"),
        "logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_body_refused_for_two_rows_is_bisected_and_the_rest_stored_once() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let all = ids("r", 300);
    let rows: Vec<String> = all
        .iter()
        .enumerate()
        .map(|(i, id)| row(id, i == 41 || i == 250))
        .collect();
    spool_file(dir.path(), 1, "batch", &batch_file(&[array_body(&rows)]));
    let fwd = start_forwarder(dir.path(), emulator_config(&emu.base_url(), "")).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || fwd
            .metric("mcas_forward_dead_lettered_total")
            == Some(2.0)
            && fwd.metric("mcas_forward_spool_files") == Some(0.0))
        .await,
        "{}",
        fwd.stderr_text()
    );
    let want: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 41 && *i != 250)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(stored(&emu), sorted(want), "every good row once");
    assert_eq!(fwd.metric("mcas_forward_sent_rows_total"), Some(298.0));
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.ndjson")).unwrap();
    assert!(dead.contains("\"ExtID\":\"r-41\"") && dead.contains("\"ExtID\":\"r-250\""));
    assert!(dead.contains("HTTP 400"), "{dead}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_body_too_large_for_the_service_is_split_and_stored_once() {
    // The service's limit lowered under the body's size: 413, then halves.
    let emu = EmulatorSetup::new()
        .configure(|c| c.limits.ingestion_max_bytes = 40_000)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let all = ids("s", 400);
    let rows: Vec<String> = all.iter().map(|id| row(id, false)).collect();
    let (gz, n, raw_len) = array_body(&rows);
    assert!(
        raw_len > 40_000 * 2 && gz.len() < 40_000,
        "too large only uncompressed"
    );
    spool_file(dir.path(), 1, "batch", &batch_file(&[(gz, n, raw_len)]));
    let fwd = start_forwarder(dir.path(), emulator_config(&emu.base_url(), "")).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || emu.count(CSL) == 400
            && fwd.metric("mcas_forward_spool_files") == Some(0.0))
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(stored(&emu), sorted(all), "every row once");
    assert_eq!(fwd.metric("mcas_forward_dead_lettered_total"), Some(0.0));
    assert!(
        fwd.metric("mcas_forward_responses_total{status=\"413\"}")
            .is_some_and(|n| n >= 1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_holds_compressed_bodies_and_the_metrics_count_both_sizes() {
    let emu = emulator().await;
    emu.set_faults(
        mcas_azure_emulator::Faults::none().with_down(Duration::ZERO, Duration::from_secs(3600)),
    );
    let dir = tempfile::tempdir().unwrap();
    let fwd = start_forwarder(dir.path(), emulator_config(&emu.base_url(), "")).await;
    let port = fwd.port;
    let n = 2_000usize;
    let sent_bytes = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut total = 0usize;
        for i in 0..n {
            let line = format!(
                "<134>2024-05-08T16:07:11Z fw01 CEF:0|Vendor|Product|1.0|100|event|5|externalId=z-{i} src=10.0.0.{} msg=the same words again and again\n",
                i % 250
            );
            total += line.len();
            s.write_all(line.as_bytes()).unwrap();
        }
        total
    })
    .await
    .unwrap();
    // Every spooled file is format 2, with gzip'd array bodies; the spool holds far less
    // than the rows it carries.
    let spool = dir.path().join("spool");
    let look = || {
        let (mut rows, mut raw, mut on_disk) = (0u64, 0u64, 0u64);
        for e in std::fs::read_dir(&spool).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".batch") {
                assert!(!name.ends_with(".ndjson"), "{name}");
                continue;
            }
            let data = std::fs::read(e.path()).unwrap();
            on_disk += data.len() as u64;
            let f = mcas_spool::decode(&data).unwrap();
            assert_eq!(f.route, "csl");
            assert_eq!(f.output, "default");
            for b in &f.bodies {
                assert_eq!(b.kind, mcas_spool::BodyKind::GzipArray);
                assert!(b.raw_len <= 1_000_000);
            }
            rows += f.rows;
            raw += f.raw_bytes;
        }
        (rows, raw, on_disk)
    };
    assert!(
        wait_until_async(Duration::from_secs(20), || look().0 == n as u64).await,
        "{}",
        fwd.stderr_text()
    );
    let (rows, raw, on_disk) = look();
    assert_eq!(rows, n as u64);
    assert_eq!(fwd.metric("mcas_forward_spool_bytes"), Some(on_disk as f64));
    assert!(on_disk * 4 < raw, "compressed on disk: {on_disk} of {raw}");
    assert!(raw as usize > sent_bytes, "rows are larger than the lines");
    // The service answers again: all delivered, both sizes counted.
    emu.set_faults(mcas_azure_emulator::Faults::none());
    assert!(
        wait_until_async(Duration::from_secs(60), || emu.count(CSL) == n
            && fwd.metric("mcas_forward_spool_files") == Some(0.0))
        .await,
        "{}",
        fwd.stderr_text()
    );
    let wire = fwd.metric("mcas_forward_sent_bytes_total").unwrap();
    let unc = fwd
        .metric("mcas_forward_sent_uncompressed_bytes_total")
        .unwrap();
    assert_eq!(unc, raw as f64, "uncompressed: the bodies' raw size");
    assert!(
        wire < unc / 4.0,
        "on the wire: compressed ({wire} of {unc})"
    );
    let wire_at_emu: u64 = emu
        .requests()
        .iter()
        .filter(|r| r.status == Some(204))
        .map(|r| r.bytes)
        .sum();
    assert_eq!(wire, wire_at_emu as f64, "what the emulator received");
}
