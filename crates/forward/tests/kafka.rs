//! Kafka collectors and shippers against librdkafka's mock cluster: an in-process broker
//! (consumer groups included) that listens on loopback, so the forwarder processes reach it
//! as they would a real one.
//!
//! - a collector rides out refused produce requests and a broker outage with its spool;
//! - two shippers of one group share the partitions, and a rebalance mid-stream loses
//!   nothing and commits what is durable before the partitions move;
//! - a shipper killed between reading and committing reads again what it had not committed,
//!   and a clean stop commits everything it stored.

#![cfg(feature = "kafka")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// The numbered CEF line `n`, from one of 8 hosts.
fn line(n: usize) -> String {
    format!(
        "<134>2024-05-08T16:07:11Z host{} mcas: CEF:0|Vendor|Product|1.0|100|kafka test|5|externalId={n} src=10.0.0.1",
        n % 8
    )
}

/// How often each number is among the emulator's CommonSecurityLog rows.
fn numbers(emu: &mcas_azure_emulator::EmulatorHandle) -> HashMap<usize, u32> {
    let mut seen = HashMap::new();
    for r in emu.rows("CommonSecurityLog") {
        if let Some(n) = r["ExtID"].as_str().and_then(|s| s.parse().ok()) {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// Produce lines `range` as raw syslog records (no `mcas-row` header), keyed by host.
async fn produce(brokers: &str, range: std::ops::Range<usize>) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("test producer");
    let mut pending = Vec::new();
    for n in range {
        let text = line(n);
        let key = format!("host{}", n % 8);
        let f = p
            .send_result(FutureRecord::to("cef").payload(&text).key(&key))
            .expect("enqueue");
        pending.push(f);
    }
    for f in pending {
        f.await.expect("delivery").expect("acknowledged");
    }
}

/// A shipper (Kafka listener, logs-ingestion output into `emu`), ready once it logs its
/// listener.
async fn shipper(
    dir: &std::path::Path,
    brokers: &str,
    emu: &mcas_azure_emulator::EmulatorHandle,
    extra: &str,
) -> mcas_testkit::Forwarder {
    let azure = mcas_testkit::logs_ingestion_output(
        "[output]",
        &emu.base_url(),
        "retry_budget = \"2s\"",
        "",
    );
    let cfg = format!(
        r#"
[[listen]]
protocol = "kafka"
brokers = ["{brokers}"]
topics = ["cef"]
group = "shippers"
{extra}
{azure}{CONFIG_TAIL}"#
    );
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

fn metric(f: &mcas_testkit::Forwarder, name: &str) -> u64 {
    f.metric(name).unwrap_or(0.0) as u64
}

/// The offsets committed under group `shippers`, summed over the topic's partitions.
fn committed(brokers: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "shippers")
        .create()
        .expect("test consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition("cef", p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// A collector whose produce requests are refused for a while, then whose broker goes down
/// for longer than its retry budget: the rows wait in its spool and all reach the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_rides_out_refusals_and_an_outage_with_its_spool() {
    const N: usize = 3_000;
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("cef", 3, 1).expect("topic");
    let brokers = mock.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[output]
kind = "kafka"
brokers = ["{brokers}"]
topic = "cef"
retry_budget = "1s"
{CONFIG_TAIL}"#
    );
    let fwd = start_forwarder(dir.path(), cfg).await;
    let send = |range: std::ops::Range<usize>| {
        let port = fwd.port;
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            for n in range {
                writeln!(s, "{}", line(n)).unwrap();
            }
        })
        .join()
        .unwrap();
    };
    // Transient refusals: the idempotent producer retries them itself.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 5],
    );
    send(0..N / 3);
    assert!(
        wait_until_async(Duration::from_secs(30), || {
            metric(&fwd, "mcas_forward_kafka_acknowledged_total") >= (N / 3) as u64
        })
        .await,
        "refusals: {}",
        fwd.stderr_text()
    );
    // An outage longer than the retry budget: the batches go back to the spool.
    mock.broker_down(1).expect("broker down");
    send(N / 3..N);
    assert!(
        wait_until_async(Duration::from_secs(30), || {
            metric(&fwd, "mcas_forward_kafka_retries_total") > 0
        })
        .await,
        "no retry counted during the outage: {}",
        fwd.stderr_text()
    );
    let spooled = fwd.metric("mcas_forward_spool_files").unwrap_or(0.0);
    mock.broker_up(1).expect("broker up");
    assert!(
        wait_until_async(Duration::from_secs(60), || {
            metric(&fwd, "mcas_forward_kafka_acknowledged_total") >= N as u64
        })
        .await,
        "after the outage: {}",
        fwd.stderr_text()
    );
    // Every number is in the topic, read back by an independent consumer.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&["cef"]).unwrap();
    let mut seen: HashMap<usize, u32> = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < N && std::time::Instant::now() < deadline {
        let Some(Ok(m)) = tokio::task::block_in_place(|| c.poll(Duration::from_millis(200))) else {
            continue;
        };
        let payload = m.payload().unwrap_or_default();
        for row in payload.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(row).unwrap();
            let n: usize = v["ExtID"].as_str().unwrap().parse().unwrap();
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    let lost: Vec<usize> = (0..N).filter(|n| !seen.contains_key(n)).collect();
    let dups: u32 = seen.values().map(|&k| k - 1).sum();
    eprintln!(
        "collector: {N} sent, {} in the topic, {} lost, {dups} duplicates; spool files during the outage {spooled}; retries {}",
        seen.len(),
        lost.len(),
        metric(&fwd, "mcas_forward_kafka_retries_total")
    );
    assert!(lost.is_empty(), "lost {:?}", &lost[..lost.len().min(20)]);
}

/// Two shippers of one group: the second joins mid-stream, the group moves partitions from
/// the first to it, and every number reaches the emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shippers_rebalance_mid_stream_and_lose_nothing() {
    const N: usize = 20_000;
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("cef", 4, 1).expect("topic");
    let brokers = mock.bootstrap_servers();
    let emu = emulator().await;
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = shipper(a_dir.path(), &brokers, &emu, "").await;
    produce(&brokers, 0..N / 2).await;
    assert!(
        wait_until_async(Duration::from_secs(60), || emu.count("CommonSecurityLog")
            as usize
            >= N / 4)
        .await,
        "shipper a: {}",
        a.stderr_text()
    );
    let b = shipper(b_dir.path(), &brokers, &emu, "").await;
    // The stream goes on, a slice at a time, while the group moves partitions to b.
    let mut next = N / 2;
    let slice = 500;
    while next < N {
        produce(&brokers, next..(next + slice).min(N)).await;
        next += slice;
        if metric(&b, "mcas_forward_kafka_consumed_total") == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(
        wait_until_async(Duration::from_secs(90), || numbers(&emu).len() >= N).await,
        "{} of {N}; a:\n{}\nb:\n{}",
        numbers(&emu).len(),
        a.stderr_text(),
        b.stderr_text()
    );
    let seen = numbers(&emu);
    let dups: u32 = seen.values().map(|&k| k - 1).sum();
    let (a_read, b_read) = (
        metric(&a, "mcas_forward_kafka_consumed_total"),
        metric(&b, "mcas_forward_kafka_consumed_total"),
    );
    eprintln!(
        "group of two: {N} produced, {} delivered distinct, 0 lost, {dups} duplicates; a read {a_read}, b read {b_read}; rebalances a {} b {}; commits a {} b {}",
        seen.len(),
        metric(&a, "mcas_forward_kafka_rebalances_total"),
        metric(&b, "mcas_forward_kafka_rebalances_total"),
        metric(&a, "mcas_forward_kafka_commits_total"),
        metric(&b, "mcas_forward_kafka_commits_total"),
    );
    // a held every partition, then gave some up: an assignment, a revocation, another
    // assignment at least; b got some.
    assert!(metric(&a, "mcas_forward_kafka_rebalances_total") >= 3);
    assert!(b_read > 0, "the second shipper read nothing");
    assert!(
        u64::from(dups) <= a_read,
        "more duplicates than the first shipper read"
    );
}

/// A shipper killed after storing everything it read but before any commit reads it all
/// again at its next start (nothing is lost, and the duplicates are what it had read); a
/// clean stop then commits everything stored, so the next start reads nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shipper_rereads_only_what_it_had_not_committed() {
    const N: usize = 5_000;
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("cef", 2, 1).expect("topic");
    let brokers = mock.bootstrap_servers();
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    // Commits far apart: the kill comes after the rows are stored and before any commit.
    let mut s = shipper(dir.path(), &brokers, &emu, "commit_interval = \"60s\"").await;
    produce(&brokers, 0..N).await;
    assert!(
        wait_until_async(Duration::from_secs(60), || numbers(&emu).len() >= N).await,
        "{}",
        s.stderr_text()
    );
    let read_before = metric(&s, "mcas_forward_kafka_consumed_total");
    assert_eq!(metric(&s, "mcas_forward_kafka_commits_total"), 0);
    assert_eq!(
        committed(&brokers, 2),
        0,
        "nothing committed before the kill"
    );
    tokio::task::block_in_place(|| s.kill9()).unwrap();
    s = tokio::task::block_in_place(move || {
        s.restart().unwrap();
        s
    });
    // It reads everything again: its rows reach the emulator a second time.
    assert!(
        wait_until_async(Duration::from_secs(60), || {
            numbers(&emu).values().all(|&k| k >= 2)
        })
        .await,
        "{}",
        s.stderr_text()
    );
    let seen = numbers(&emu);
    let dups: u32 = seen.values().map(|&k| k - 1).sum();
    assert_eq!(seen.len(), N, "lost rows");
    assert!(u64::from(dups) <= read_before, "{dups} > {read_before}");
    // A clean stop commits what is stored: every offset of both partitions.
    let st = tokio::task::block_in_place(|| s.terminate(Duration::from_secs(40))).unwrap();
    assert!(st.success(), "a clean stop: {st}");
    assert_eq!(committed(&brokers, 2), N as i64, "a clean stop commits all");
    s = tokio::task::block_in_place(move || {
        s.restart().unwrap();
        s
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again: u32 = numbers(&emu).values().map(|&k| k - 1).sum();
    eprintln!(
        "killed shipper: {N} produced, {} delivered distinct, 0 lost; read {read_before} before the kill, {dups} read again after it (no commit before the kill); after a clean stop and a restart, {} more",
        seen.len(),
        again - dups
    );
    assert_eq!(again, dups, "read again after a clean stop");
    assert_eq!(metric(&s, "mcas_forward_kafka_consumed_total"), 0);
}
