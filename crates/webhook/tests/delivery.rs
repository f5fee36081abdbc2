//! The delivery worker against a scripted receiver on loopback: signatures verified by the
//! receiver, retries with the same `webhook-id`, 410, an outage, a restart, Retry-After.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Check, Receiver, Reply, free_addr, key, wait_for};
use mcas_webhook::sign::{HEADER_ID, HEADER_TIMESTAMP};
use mcas_webhook::{
    DeliveryConfig, Endpoint, EndpointUrl, Format, Outbox, OutboxLimits, StatusClass, Worker,
};

const BOUND: Duration = Duration::from_secs(20);

fn config(delay: Duration, retries: usize) -> DeliveryConfig {
    DeliveryConfig {
        timeout: Duration::from_secs(5),
        retry_delays: vec![delay; retries],
        jitter: 0.0,
        ..DeliveryConfig::default()
    }
}

fn endpoint(name: &str, url: &str, format: Format, secrets: Vec<mcas_webhook::Secret>) -> Endpoint {
    Endpoint::new(name, EndpointUrl::parse(url).unwrap(), format, secrets)
}

fn outbox(dir: &tempfile::TempDir) -> Arc<Outbox> {
    Arc::new(Outbox::open(dir.path(), OutboxLimits::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_verify_at_the_receiver() {
    // The receiver knows the old key only; the sender signs with the new and the old one
    // (a rotation), so the old key's entry is what verifies.
    let rx = Receiver::start(Check::Standard(vec![key(1)]), vec![])
        .await
        .expect("receiver");
    let gh = Receiver::start(Check::GitHub(vec![key(3)]), vec![])
        .await
        .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![
            endpoint(
                "soc",
                &rx.url(),
                Format::StandardWebhooks,
                vec![key(2), key(1)],
            ),
            endpoint("gh", &gh.url(), Format::GitHub, vec![key(3)]),
        ],
        config(Duration::from_millis(100), 3),
    )
    .unwrap();
    let mut ids = BTreeSet::new();
    for i in 0..5 {
        let body = format!(r#"{{"AlertName":"Port scan","n":{i}}}"#);
        ids.insert(ob.enqueue("soc", body.as_bytes()).unwrap());
        ob.enqueue_with_id("gh", &format!("alert-{i}"), body.as_bytes())
            .unwrap();
    }
    wait_for(BOUND, "10 deliveries", || ob.pending() == 0).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h.verified));
    assert!(
        hits.iter()
            .all(|h| h.header("content-type") == Some("application/json"))
    );
    assert!(
        hits.iter()
            .all(|h| h.header("webhook-signature").unwrap().split(' ').count() == 2)
    );
    let got: BTreeSet<String> = hits
        .iter()
        .map(|h| h.header(HEADER_ID).unwrap().to_owned())
        .collect();
    assert_eq!(got, ids);
    let gh_hits = gh.hits();
    assert_eq!(gh_hits.len(), 5);
    assert!(gh_hits.iter().all(|h| h.verified));
    assert!(
        gh_hits
            .iter()
            .all(|h| h.header("x-github-event") == Some("mcas_alert"))
    );
    let deliveries: BTreeSet<&str> = gh_hits
        .iter()
        .map(|h| h.header("x-github-delivery").unwrap())
        .collect();
    assert_eq!(deliveries.len(), 5);
    assert!(deliveries.contains("alert-0"));
    let m = worker.metrics();
    assert_eq!(m.endpoint("soc").unwrap().delivered, 5);
    assert_eq!(m.endpoint("gh").unwrap().delivered, 5);
    assert_eq!(m.outbox.enqueued, 10);
    // Neither the Debug of the worker nor the metrics show the URL's sig=.
    let mut text = String::new();
    m.render_prometheus("mcas_forward", &mut text);
    for shown in [text, format!("{worker:?}"), format!("{m:?}")] {
        assert!(!shown.contains("TopSecretSig42"), "{shown}");
    }
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_rejected_by_the_receiver() {
    let rx = Receiver::start(Check::Standard(vec![key(1)]), vec![])
        .await
        .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![endpoint(
            "soc",
            &rx.url(),
            Format::StandardWebhooks,
            vec![key(9)],
        )],
        config(Duration::from_millis(100), 3),
    )
    .unwrap();
    ob.enqueue("soc", b"{}").unwrap();
    wait_for(BOUND, "the refusal", || ob.pending() == 0).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    assert!(!hits[0].verified);
    let m = worker.metrics();
    let e = m.endpoint("soc").unwrap();
    // 401 is a permanent refusal: dead-lettered, not retried.
    assert_eq!((e.delivered, e.retried, e.dead_lettered), (0, 0, 1));
    assert_eq!(e.attempts_of(StatusClass::ClientError), 1);
    assert_eq!(std::fs::read_dir(ob.dead_dir()).unwrap().count(), 1);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_503s_then_200_deliver_once_with_one_webhook_id() {
    let rx = Receiver::start(
        Check::Standard(vec![key(1)]),
        vec![Reply::Status(503), Reply::Status(503)],
    )
    .await
    .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![endpoint(
            "soc",
            &rx.url(),
            Format::StandardWebhooks,
            vec![key(1)],
        )],
        config(Duration::from_millis(100), 5),
    )
    .unwrap();
    let id = ob.enqueue("soc", br#"{"AlertName":"x"}"#).unwrap();
    wait_for(BOUND, "the delivery", || ob.pending() == 0).await;
    // Nothing more comes after the 200 (several retry delays later).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.verified));
    assert!(
        hits.iter()
            .all(|h| h.header(HEADER_ID) == Some(id.as_str()))
    );
    assert!(hits.iter().all(|h| h.header(HEADER_TIMESTAMP).is_some()));
    let m = worker.metrics();
    let e = m.endpoint("soc").unwrap();
    assert_eq!(
        (e.delivered, e.retried, e.failed, e.dead_lettered),
        (1, 2, 0, 0)
    );
    assert_eq!(e.attempts_of(StatusClass::ServerError), 2);
    assert_eq!(e.attempts_of(StatusClass::Success), 1);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_until_restart() {
    let rx = Receiver::start(Check::Standard(vec![key(1)]), vec![Reply::Status(410)])
        .await
        .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let cfg = DeliveryConfig {
        concurrency: 1,
        ..config(Duration::from_millis(50), 5)
    };
    let eps = vec![endpoint(
        "soc",
        &rx.url(),
        Format::StandardWebhooks,
        vec![key(1)],
    )];
    // Enqueued before the worker starts: the first attempt meets the 410.
    for i in 0..3 {
        ob.enqueue_with_id("soc", &format!("a{i}"), b"{}").unwrap();
    }
    let worker = Worker::start(Arc::clone(&ob), eps.clone(), cfg.clone()).unwrap();
    wait_for(BOUND, "the 410", || {
        worker.metrics().endpoint("soc").unwrap().disabled
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits().len(), 1, "no attempt after the 410");
    let m = worker.metrics();
    let e = m.endpoint("soc").unwrap();
    assert_eq!((e.disabled_events, e.delivered, e.retried), (1, 0, 0));
    assert!(e.disabled);
    // The messages stay on disk, reported.
    assert_eq!(ob.pending_for("soc"), 3);
    assert_eq!(m.outbox.pending_by_endpoint, vec![("soc".to_owned(), 3)]);
    let mut text = String::new();
    m.render_prometheus("mcas_forward", &mut text);
    assert!(text.contains("mcas_forward_webhook_endpoint_disabled{endpoint=\"soc\"} 1\n"));
    assert!(text.contains(
        "mcas_forward_webhook_messages_total{endpoint=\"soc\",outcome=\"disabled\"} 1\n"
    ));
    worker.shutdown().await;

    // A new worker (a restart or a reload) enables it again; everything is delivered.
    let worker = Worker::start(Arc::clone(&ob), eps, cfg).unwrap();
    wait_for(BOUND, "the deliveries after re-enabling", || {
        ob.pending() == 0
    })
    .await;
    assert_eq!(worker.metrics().endpoint("soc").unwrap().delivered, 3);
    assert_eq!(rx.hits().len(), 4);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_30_s_gets_everything_from_the_outbox() {
    let addr = free_addr();
    let url = format!("http://{addr}/hook?sig=TopSecretSig42");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![endpoint(
            "soc",
            &url,
            Format::StandardWebhooks,
            vec![key(1)],
        )],
        config(Duration::from_millis(500), 200),
    )
    .unwrap();
    let mut ids = BTreeSet::new();
    for i in 0..10 {
        ids.insert(
            ob.enqueue("soc", format!(r#"{{"n":{i}}}"#).as_bytes())
                .unwrap(),
        );
    }
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let m = worker.metrics();
    let e = m.endpoint("soc").unwrap();
    assert_eq!(e.delivered, 0);
    assert!(e.attempts_of(StatusClass::Transport) >= 10, "{e:?}");
    assert_eq!(ob.pending(), 10);
    // Every message is on disk meanwhile.
    assert_eq!(
        std::fs::read_dir(dir.path().join("pending"))
            .unwrap()
            .count(),
        10
    );
    assert!(down.elapsed() >= Duration::from_secs(30));

    let rx = Receiver::start_on(addr, Check::Standard(vec![key(1)]), vec![])
        .await
        .expect("receiver");
    wait_for(BOUND, "the deliveries after the outage", || {
        ob.pending() == 0
    })
    .await;
    let hits = rx.hits();
    assert!(hits.iter().all(|h| h.verified));
    let got: BTreeSet<String> = hits
        .iter()
        .map(|h| h.header(HEADER_ID).unwrap().to_owned())
        .collect();
    assert_eq!(got, ids);
    assert_eq!(hits.len(), 10);
    assert_eq!(worker.metrics().endpoint("soc").unwrap().delivered, 10);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_outbox_delivers_what_was_enqueued_before() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_addr();
    {
        // First life: the receiver is not there; a few attempts fail, then the process stops.
        let ob = outbox(&dir);
        let worker = Worker::start(
            Arc::clone(&ob),
            vec![endpoint(
                "soc",
                &format!("http://{dead}/hook"),
                Format::StandardWebhooks,
                vec![key(1)],
            )],
            config(Duration::from_millis(100), 50),
        )
        .unwrap();
        ob.enqueue_with_id("soc", "alert-42", br#"{"AlertName":"kept"}"#)
            .unwrap();
        ob.enqueue_with_id("soc", "alert-43", br#"{"AlertName":"kept too"}"#)
            .unwrap();
        wait_for(BOUND, "failed attempts", || {
            worker
                .metrics()
                .endpoint("soc")
                .unwrap()
                .attempts_of(StatusClass::Transport)
                >= 2
        })
        .await;
        // Once shutdown returns the worker no longer touches the outbox; dropping the last
        // handle releases the directory's lock.
        worker.shutdown().await;
        drop(ob);
    }
    // Second life: a new outbox on the same directory, a receiver up.
    let rx = Receiver::start(Check::Standard(vec![key(1)]), vec![])
        .await
        .expect("receiver");
    let ob = outbox(&dir);
    assert_eq!(ob.pending(), 2);
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![endpoint(
            "soc",
            &rx.url(),
            Format::StandardWebhooks,
            vec![key(1)],
        )],
        config(Duration::from_millis(100), 50),
    )
    .unwrap();
    wait_for(BOUND, "the resumed deliveries", || ob.pending() == 0).await;
    let hits = rx.hits();
    let ids: BTreeSet<&str> = hits.iter().map(|h| h.header(HEADER_ID).unwrap()).collect();
    assert_eq!(ids, BTreeSet::from(["alert-42", "alert-43"]));
    let bodies: BTreeSet<&[u8]> = hits.iter().map(|h| h.body.as_slice()).collect();
    assert!(bodies.contains(br#"{"AlertName":"kept"}"#.as_slice()));
    assert!(hits.iter().all(|h| h.verified));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_in_seconds_and_as_a_date() {
    let rx = Receiver::start(
        Check::Standard(vec![key(1)]),
        vec![Reply::RetryAfterSecs(429, 2), Reply::RetryAfterDate(503, 3)],
    )
    .await
    .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![endpoint(
            "soc",
            &rx.url(),
            Format::StandardWebhooks,
            vec![key(1)],
        )],
        // The schedule alone would retry after 50 ms.
        config(Duration::from_millis(50), 5),
    )
    .unwrap();
    ob.enqueue("soc", b"{}").unwrap();
    wait_for(BOUND, "the delivery", || ob.pending() == 0).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 3);
    // The schedule keeps milliseconds: allow for the truncation of one.
    let first_gap = hits[1].at - hits[0].at;
    assert!(first_gap >= Duration::from_millis(1999), "{first_gap:?}");
    // An HTTP date has whole seconds: 3 s ahead, written truncated, is at least 2 s ahead.
    let second_gap = hits[2].at - hits[1].at;
    assert!(second_gap >= Duration::from_millis(1999), "{second_gap:?}");
    let e = worker.metrics().endpoint("soc").unwrap().clone();
    assert_eq!((e.retried, e.delivered), (2, 1));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_retry_failing_gives_up_to_dead_letters() {
    let rx = Receiver::start(
        Check::Standard(vec![key(1)]),
        vec![Reply::Status(500), Reply::Status(502), Reply::Status(503)],
    )
    .await
    .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![endpoint(
            "soc",
            &rx.url(),
            Format::StandardWebhooks,
            vec![key(1)],
        )],
        config(Duration::from_millis(50), 2),
    )
    .unwrap();
    ob.enqueue("soc", b"{}").unwrap();
    wait_for(BOUND, "giving up", || ob.pending() == 0).await;
    assert_eq!(rx.hits().len(), 3, "1 attempt + 2 retries");
    let e = worker.metrics().endpoint("soc").unwrap().clone();
    assert_eq!((e.retried, e.failed, e.delivered), (2, 1, 0));
    let dead: Vec<_> = std::fs::read_dir(ob.dead_dir()).unwrap().collect();
    assert_eq!(dead.len(), 1);
    let text = std::fs::read_to_string(dead[0].as_ref().unwrap().path()).unwrap();
    assert!(text.contains("\"attempts\":3"), "{text}");
    assert!(text.contains("retries exhausted"), "{text}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_request_leaves_the_message_for_the_next_worker() {
    // The first request is held for a minute: shutdown must not wait for it.
    let rx = Receiver::start(
        Check::Standard(vec![key(1)]),
        vec![Reply::Slow(200, Duration::from_secs(60))],
    )
    .await
    .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let eps = vec![endpoint(
        "soc",
        &rx.url(),
        Format::StandardWebhooks,
        vec![key(1)],
    )];
    let worker = Worker::start(
        Arc::clone(&ob),
        eps.clone(),
        config(Duration::from_millis(50), 3),
    )
    .unwrap();
    let id = ob.enqueue("soc", b"{}").unwrap();
    wait_for(BOUND, "the held request", || rx.hits().len() == 1).await;
    tokio::time::timeout(BOUND, worker.shutdown())
        .await
        .expect("shutdown does not wait for the held request");
    assert_eq!(ob.pending(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("pending"))
            .unwrap()
            .count(),
        1
    );

    // The same outbox, a new worker (a reload): the message is taken again, same id.
    let worker = Worker::start(Arc::clone(&ob), eps, config(Duration::from_millis(50), 3)).unwrap();
    wait_for(BOUND, "the delivery by the second worker", || {
        ob.pending() == 0
    })
    .await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 2);
    assert!(
        hits.iter()
            .all(|h| h.header(HEADER_ID) == Some(id.as_str()))
    );
    assert_eq!(worker.metrics().endpoint("soc").unwrap().delivered, 1);
    worker.shutdown().await;
}
