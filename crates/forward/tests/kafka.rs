//! Collector → Kafka → shipper → Log Analytics, end to end, with the real `mcas-forward`
//! processes against librdkafka's in-process mock cluster (`rdkafka::mocking::MockCluster`:
//! a broker with consumer groups that listens on loopback ports, so the forwarder processes
//! reach it as they would a real one) and the in-process Azure emulator.
//!
//! Every test sends numbered CEF events (`externalId=N`) and counts, by number, the rows
//! the emulator holds (or the offsets the group committed): 0 lost, duplicates printed.
//!
//! What they show: the whole path delivers every number once; a collector rides out refused
//! produce requests and broker outages with its spool; two shippers of a group rebalance
//! mid-stream without loss, and one goes on reading while the group rebalances; a shipper
//! killed between reading and committing reads again exactly what it had not committed, and
//! one that stops cleanly commits everything it stored.

#![cfg(feature = "kafka")]

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use common::*;
use mcas_azure_emulator::EmulatorHandle;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const CSL: &str = "CommonSecurityLog";
const TOPIC: &str = "cef";
const PARTITIONS: i32 = 3;
const GROUP: &str = "shippers";

/// The numbered CEF line `n`, from one of 8 hosts (the collector's records are keyed by
/// host, so the numbers spread over the partitions).
fn line(n: usize) -> String {
    format!(
        "<134>2024-05-08T16:07:11Z host{} CEF:0|Vendor|Product|1.0|100|kafka test|5|externalId={n} src=10.0.0.1",
        n % 8
    )
}

/// The mock broker (one broker, id 1) with the topic of 3 partitions.
fn broker() -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
    let brokers = mock.bootstrap_servers();
    (mock, brokers)
}

/// How many rows carry each number in the emulator's CommonSecurityLog.
fn numbers(emu: &EmulatorHandle) -> HashMap<usize, u32> {
    ext_ids(&emu.rows(CSL))
}

/// Waits (up to `limit`) until the emulator holds every number below `n`.
async fn all_arrive(emu: &EmulatorHandle, n: usize, limit: Duration) -> bool {
    wait_until_async(limit, || {
        emu.count(CSL) >= n && {
            let seen = numbers(emu);
            (0..n).all(|i| seen.contains_key(&i))
        }
    })
    .await
}

/// (lost, extra copies) of numbers `0..n` in `seen`.
fn tally(seen: &HashMap<usize, u32>, n: usize) -> (Vec<usize>, u64) {
    let lost = (0..n).filter(|i| !seen.contains_key(i)).collect();
    let dups = seen.values().map(|&k| u64::from(k - 1)).sum();
    (lost, dups)
}

/// Sends lines `range` over one TCP connection to 127.0.0.1:`port`.
async fn send(port: u16, range: Range<usize>) {
    tokio::task::spawn_blocking(move || {
        let mut buf = String::new();
        for n in range {
            buf.push_str(&line(n));
            buf.push('\n');
        }
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(buf.as_bytes()).expect("send");
    })
    .await
    .expect("the sender");
}

/// Produces lines `range` straight to the topic as raw syslog records (no `mcas-row`
/// header), keyed by host, and waits until the broker acknowledged them all.
async fn produce(brokers: &str, range: Range<usize>) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("test producer");
    let mut pending = Vec::new();
    for n in range {
        let (text, key) = (line(n), format!("host{}", n % 8));
        let record = FutureRecord::to(TOPIC).payload(&text).key(&key);
        pending.push(p.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
    }
    for f in pending {
        f.await.expect("delivery").expect("acknowledged");
    }
}

/// A collector: a TCP listener (LF framing) and a Kafka output with `keys`.
async fn collector(dir: &Path, brokers: &str, keys: &str) -> Forwarder {
    let cfg = format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[output]
kind = "kafka"
brokers = ["{brokers}"]
topic = "{TOPIC}"
key = "host"
compression = "gzip"
{keys}
{CONFIG_TAIL}"#
    );
    start_forwarder(dir, cfg).await
}

/// A shipper: a Kafka listener of group `shippers` with `keys`, and the logs-ingestion
/// output into `emu`. (It also listens on TCP, unused, so that it is ready when it serves.)
async fn shipper(dir: &Path, brokers: &str, emu: &EmulatorHandle, keys: &str) -> Forwarder {
    let azure = mcas_testkit::logs_ingestion_output(
        "[output]",
        &emu.base_url(),
        "retry_budget = \"2s\"",
        "",
    );
    let cfg = format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[[listen]]
protocol = "kafka"
brokers = ["{brokers}"]
topics = ["{TOPIC}"]
group = "{GROUP}"
start = "earliest"
{keys}
{azure}{CONFIG_TAIL}"#
    );
    start_forwarder(dir, cfg).await
}

/// A counter from a fresh scrape of `f`'s /metrics (0 when absent).
fn metric(f: &Forwarder, name: &str) -> u64 {
    f.metric(name).unwrap_or(0.0) as u64
}

/// The offsets group `shippers` committed for the topic's partitions, summed (the number
/// of records committed, the topic starting at offset 0).
fn committed(brokers: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", GROUP)
        .create()
        .expect("test consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
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

/// The whole path: numbered events into a collector's TCP listener, one row a number
/// through the topic, a shipper reading them into the emulator. Every number arrives
/// exactly once, the collector counts every row acknowledged (acks=all), the shipper every
/// mapped row consumed, and it commits its offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collector_to_shipper_delivers_every_number() {
    const N: usize = 5_000;
    let (_mock, brokers) = broker();
    let emu = emulator().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = collector(a_dir.path(), &brokers, "").await;
    let b = shipper(b_dir.path(), &brokers, &emu, "").await;
    send(a.port, 0..N).await;
    assert!(
        all_arrive(&emu, N, Duration::from_secs(90)).await,
        "{} of {N} numbers arrived\ncollector:\n{}\nshipper:\n{}",
        numbers(&emu).len(),
        a.stderr_text(),
        b.stderr_text()
    );
    let (lost, dups) = tally(&numbers(&emu), N);
    assert!(
        wait_until_async(Duration::from_secs(15), || metric(
            &b,
            "mcas_forward_kafka_commits_total"
        ) > 0)
        .await,
        "the shipper never committed:\n{}",
        b.stderr_text()
    );
    let (acked, records) = (
        metric(&a, "mcas_forward_kafka_acknowledged_total"),
        metric(&a, "mcas_forward_kafka_records_total"),
    );
    let (consumed, rows) = (
        metric(&b, "mcas_forward_kafka_consumed_total"),
        metric(&b, "mcas_forward_kafka_consumed_rows_total"),
    );
    eprintln!(
        "collector→shipper: {N} sent, {} delivered distinct, {} lost, {dups} duplicates; collector acknowledged {acked} rows in {records} records; shipper consumed {consumed} records, {rows} rows, {} commits",
        N - lost.len(),
        lost.len(),
        metric(&b, "mcas_forward_kafka_commits_total"),
    );
    assert!(lost.is_empty(), "lost {:?}", &lost[..lost.len().min(20)]);
    assert_eq!(dups, 0, "duplicates without any failure");
    assert_eq!(acked, N as u64, "rows the collector saw acknowledged");
    assert_eq!(rows, N as u64, "rows the shipper consumed");
    assert_eq!(consumed, records, "the shipper read each record once");
}

/// Refused produce requests, then a broker outage longer than the collector's retry budget
/// (2 s): the idempotent producer retries the refusals itself; the rows not acknowledged in
/// the outage go back to the collector's spool, are counted as retries, and are sent again
/// once the broker is back; a shipper started then delivers every number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_fills_the_spool_and_loses_nothing() {
    const N: usize = 3_000;
    let (mock, brokers) = broker();
    let emu = emulator().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = collector(a_dir.path(), &brokers, "retry_budget = \"2s\"").await;
    // A first third while the broker is up but refuses a few requests (transient errors).
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 5],
    );
    send(a.port, 0..N / 3).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || {
            metric(&a, "mcas_forward_kafka_acknowledged_total") >= (N / 3) as u64
        })
        .await,
        "before the outage:\n{}",
        a.stderr_text()
    );
    // The rest while it is down.
    mock.broker_down(1).expect("broker down");
    send(a.port, N / 3..N).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || {
            metric(&a, "mcas_forward_kafka_retries_total") > 0
                && metric(&a, "mcas_forward_spool_files") > 0
        })
        .await,
        "no retry, or an empty spool, during the outage: retries {}, spool files {}\n{}",
        metric(&a, "mcas_forward_kafka_retries_total"),
        metric(&a, "mcas_forward_spool_files"),
        a.stderr_text()
    );
    let (retries, spooled) = (
        metric(&a, "mcas_forward_kafka_retries_total"),
        metric(&a, "mcas_forward_spool_files"),
    );
    let acked_during = metric(&a, "mcas_forward_kafka_acknowledged_total");
    assert!(
        acked_during < N as u64,
        "acknowledged while the broker was down"
    );
    mock.broker_up(1).expect("broker up");
    assert!(
        wait_until_async(Duration::from_secs(60), || {
            metric(&a, "mcas_forward_kafka_acknowledged_total") >= N as u64
                && metric(&a, "mcas_forward_spool_files") == 0
        })
        .await,
        "after the outage: acknowledged {}, spool files {}\n{}",
        metric(&a, "mcas_forward_kafka_acknowledged_total"),
        metric(&a, "mcas_forward_spool_files"),
        a.stderr_text()
    );
    let b = shipper(b_dir.path(), &brokers, &emu, "").await;
    assert!(
        all_arrive(&emu, N, Duration::from_secs(60)).await,
        "{} of {N} numbers arrived\ncollector:\n{}\nshipper:\n{}",
        numbers(&emu).len(),
        a.stderr_text(),
        b.stderr_text()
    );
    let (lost, dups) = tally(&numbers(&emu), N);
    eprintln!(
        "broker outage: {N} sent, {} delivered distinct, {} lost, {dups} duplicates; during the outage {retries} rows retried, {spooled} spool files, {acked_during} acknowledged; in the end {} acknowledged",
        N - lost.len(),
        lost.len(),
        metric(&a, "mcas_forward_kafka_acknowledged_total"),
    );
    assert!(lost.is_empty(), "lost {:?}", &lost[..lost.len().min(20)]);
}

/// Two shippers of one group: the second joins mid-stream, the group moves partitions
/// from the first to it (the first sees a revocation), the second reads some of the
/// stream, and every number reaches the emulator. (About a minute: the mock broker waits
/// `session.timeout.ms` less 1 s, 29 s, before each round of the incremental rebalance.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_shippers_rebalance_mid_stream() {
    const N: usize = 10_000;
    let (_mock, brokers) = broker();
    let emu = emulator().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let c = collector(dirs[0].path(), &brokers, "").await;
    let s1 = shipper(dirs[1].path(), &brokers, &emu, "").await;
    send(c.port, 0..N / 2).await;
    assert!(
        wait_until_async(Duration::from_secs(60), || emu.count(CSL) >= N / 4).await,
        "the first shipper:\n{}",
        s1.stderr_text()
    );
    let s2 = shipper(dirs[2].path(), &brokers, &emu, "").await;
    // The first shipper gives partitions up: an assignment, then a revocation at least.
    assert!(
        wait_until_async(Duration::from_secs(60), || {
            metric(&s1, "mcas_forward_kafka_rebalances_total") >= 2
        })
        .await,
        "no rebalance on the first shipper:\n{}",
        s1.stderr_text()
    );
    send(c.port, N / 2..N).await;
    assert!(
        all_arrive(&emu, N, Duration::from_secs(90)).await,
        "{} of {N} numbers arrived\nshipper 1:\n{}\nshipper 2:\n{}",
        numbers(&emu).len(),
        s1.stderr_text(),
        s2.stderr_text()
    );
    let (lost, dups) = tally(&numbers(&emu), N);
    let rows = |f: &Forwarder| metric(f, "mcas_forward_kafka_consumed_rows_total");
    let rebalances = |f: &Forwarder| metric(f, "mcas_forward_kafka_rebalances_total");
    eprintln!(
        "group of two: {N} sent, {} delivered distinct, {} lost, {dups} duplicates; rows read: shipper 1 {}, shipper 2 {}; rebalances: shipper 1 {}, shipper 2 {}",
        N - lost.len(),
        lost.len(),
        rows(&s1),
        rows(&s2),
        rebalances(&s1),
        rebalances(&s2),
    );
    assert!(lost.is_empty(), "lost {:?}", &lost[..lost.len().min(20)]);
    assert!(rebalances(&s1) > 0);
    assert!(rows(&s2) > 0, "the second shipper read nothing");
    assert!(
        rows(&s1) + rows(&s2) >= N as u64,
        "the two read less than the stream"
    );
}

/// While its group rebalances (a second shipper joins), a shipper goes on reading the
/// partitions it still holds (incremental rebalancing): events sent during the join reach
/// it long before the join ends (29 s on the mock broker, which waits
/// `session.timeout.ms` less 1 s for members to join).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shipper_reads_on_while_its_group_rebalances() {
    const N: usize = 2_000;
    let (_mock, brokers) = broker();
    let emu = emulator().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let c = collector(dirs[0].path(), &brokers, "").await;
    let s1 = shipper(dirs[1].path(), &brokers, &emu, "").await;
    send(c.port, 0..N).await;
    assert!(
        all_arrive(&emu, N, Duration::from_secs(60)).await,
        "{}",
        s1.stderr_text()
    );
    let _s2 = shipper(dirs[2].path(), &brokers, &emu, "").await;
    // For 10 s of the join, 100 events a second: the first shipper reads each slice.
    let rows = |f: &Forwarder| metric(f, "mcas_forward_kafka_consumed_rows_total");
    let start = rows(&s1);
    for i in 0..10 {
        let from = N + i * 100;
        send(c.port, from..from + 100).await;
        let want = start + (i as u64 + 1) * 100;
        assert!(
            wait_until_async(Duration::from_secs(5), || rows(&s1) >= want).await,
            "the first shipper stopped reading {i} s into the rebalance ({} of {want} rows \
             read; commit errors {}):\n{}",
            rows(&s1),
            metric(&s1, "mcas_forward_kafka_commit_errors_total"),
            s1.stderr_text()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A shipper that commits every 3 s, killed with SIGKILL right after delivering the whole
/// stream (its last commit behind it) and restarted on the same group and spool: nothing is
/// lost, and what reaches the emulator twice is at most what it had read since its last
/// commit (read before the kill, less the offsets the group holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_shipper_rereads_only_what_it_had_not_committed() {
    const N: usize = 6_000;
    let (_mock, brokers) = broker();
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = shipper(dir.path(), &brokers, &emu, "commit_interval = \"3s\"").await;
    // A first half, stored and committed.
    produce(&brokers, 0..N / 2).await;
    assert!(
        all_arrive(&emu, N / 2, Duration::from_secs(60)).await,
        "{}",
        s.stderr_text()
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || committed(&brokers)
            >= (N / 2) as i64)
        .await,
        "the first half not committed ({}):\n{}",
        committed(&brokers),
        s.stderr_text()
    );
    // The second half, read whole and delivered, then the kill: the next commit (every
    // 3 s) has likely not covered it yet.
    produce(&brokers, N / 2..N).await;
    assert!(
        all_arrive(&emu, N, Duration::from_secs(30)).await,
        "{}",
        s.stderr_text()
    );
    assert_eq!(metric(&s, "mcas_forward_kafka_consumed_total"), N as u64);
    tokio::task::block_in_place(|| s.kill9()).expect("kill -9");
    let read = N as i64;
    let at_kill = committed(&brokers);
    let delivered_before = emu.count(CSL);
    tokio::task::block_in_place(|| s.restart()).expect("restart");
    // The restarted shipper reads again what was not committed and delivers it again (it
    // joins the group once the killed member's session has expired: about a minute here).
    let uncommitted = (read - at_kill) as u64;
    assert!(
        wait_until_async(Duration::from_secs(120), || {
            metric(&s, "mcas_forward_kafka_consumed_total") >= uncommitted
                && emu.count(CSL) as u64 >= delivered_before as u64 + uncommitted
                && metric(&s, "mcas_forward_spool_files") == 0
        })
        .await,
        "read {} again, emulator {}\n{}",
        metric(&s, "mcas_forward_kafka_consumed_total"),
        emu.count(CSL),
        s.stderr_text()
    );
    let (lost, dups) = tally(&numbers(&emu), N);
    let reread = metric(&s, "mcas_forward_kafka_consumed_total");
    eprintln!(
        "killed shipper: {N} produced, {} delivered distinct, {} lost, {dups} duplicates; before the kill: {read} records read, {at_kill} committed, {delivered_before} rows delivered; after the restart {reread} records read",
        N - lost.len(),
        lost.len(),
    );
    assert!(lost.is_empty(), "lost {:?}", &lost[..lost.len().min(20)]);
    assert!(at_kill >= (N / 2) as i64, "the first half was committed");
    assert_eq!(
        reread as i64,
        read - at_kill,
        "read again: what was not committed"
    );
    assert!(
        dups as i64 <= read - at_kill,
        "{dups} duplicates, more than the {} records read since the last commit",
        read - at_kill
    );
}

/// Static assignment (`partitions = [0, 1, 2]`, no group membership): the shipper commits
/// under its group, and after a SIGKILL taken once everything is committed and sent, the
/// restarted shipper resumes at the committed offsets: it reads only the new records, and
/// nothing arrives twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_shipper_resumes_from_its_committed_offsets() {
    const N: usize = 4_000;
    let (_mock, brokers) = broker();
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = "partitions = [0, 1, 2]\ncommit_interval = \"200ms\"";
    let mut s = shipper(dir.path(), &brokers, &emu, keys).await;
    produce(&brokers, 0..N / 2).await;
    assert!(
        all_arrive(&emu, N / 2, Duration::from_secs(60)).await,
        "{}",
        s.stderr_text()
    );
    assert!(
        wait_until_async(Duration::from_secs(20), || {
            metric(&s, "mcas_forward_spool_files") == 0 && committed(&brokers) == (N / 2) as i64
        })
        .await,
        "committed {} of {}, spool files {}\n{}",
        committed(&brokers),
        N / 2,
        metric(&s, "mcas_forward_spool_files"),
        s.stderr_text()
    );
    tokio::task::block_in_place(|| s.kill9()).expect("kill -9");
    produce(&brokers, N / 2..N).await;
    tokio::task::block_in_place(|| s.restart()).expect("restart");
    assert!(
        all_arrive(&emu, N, Duration::from_secs(60)).await,
        "{} of {N} numbers arrived\n{}",
        numbers(&emu).len(),
        s.stderr_text()
    );
    let (lost, dups) = tally(&numbers(&emu), N);
    let read_after = metric(&s, "mcas_forward_kafka_consumed_total");
    eprintln!(
        "static shipper: {N} produced, {} delivered distinct, {} lost, {dups} duplicates; {read_after} records read after the restart",
        N - lost.len(),
        lost.len(),
    );
    assert!(lost.is_empty(), "lost {:?}", &lost[..lost.len().min(20)]);
    assert_eq!(dups, 0, "read again what was committed");
    assert_eq!(read_after, (N / 2) as u64, "records read after the restart");
    assert!(
        wait_until_async(Duration::from_secs(20), || committed(&brokers) == N as i64).await,
        "committed {} of {N} after the restart",
        committed(&brokers)
    );
}

/// A shipper killed after storing everything it read but before any commit reads it all
/// again at its next start (nothing is lost, and the duplicates are what it had read); a
/// clean stop then commits everything stored, so the next start reads nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipper_killed_before_any_commit_rereads_all_and_a_clean_stop_commits_all() {
    const N: usize = 5_000;
    let (_mock, brokers) = broker();
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
    assert_eq!(committed(&brokers), 0, "nothing committed before the kill");
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
    assert_eq!(committed(&brokers), N as i64, "a clean stop commits all");
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
