//! The PyPI `standardwebhooks` package as an independent oracle: it verifies what the worker
//! sent, refuses it under a wrong key, and signs a message that our verifier accepts.
//! Ignored: it needs `python3` with `standardwebhooks` (installed by `.ci/run` for the
//! test-ignored stage).

#![allow(missing_docs)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Check, Receiver, wait_for};
use mcas_webhook::sign::{self, Secret, StandardHeaders};
use mcas_webhook::{DeliveryConfig, Endpoint, EndpointUrl, Format, Outbox, OutboxLimits, Worker};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with the standardwebhooks package"]
async fn the_reference_library_verifies_our_deliveries_and_we_verify_its_signature() {
    let secret = Secret::parse_standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let rx = Receiver::start(Check::Standard(vec![secret.clone()]), vec![])
        .await
        .expect("receiver");
    let dir = tempfile::tempdir().unwrap();
    let ob = Arc::new(Outbox::open(dir.path(), OutboxLimits::default()).unwrap());
    let worker = Worker::start(
        Arc::clone(&ob),
        vec![Endpoint::new(
            "soc",
            EndpointUrl::parse(&rx.url()).unwrap(),
            Format::StandardWebhooks,
            vec![secret.clone()],
        )],
        DeliveryConfig::default(),
    )
    .unwrap();
    ob.enqueue(
        "soc",
        br#"{"AlertName":"Port scan","Entities":[{"ip":"10.0.0.1"}]}"#,
    )
    .unwrap();
    ob.enqueue_with_id(
        "soc",
        "alert-5b72f527",
        "{\"AlertName\":\"caf\u{e9}\"}".as_bytes(),
    )
    .unwrap();
    wait_for(Duration::from_secs(20), "two deliveries", || {
        ob.pending() == 0
    })
    .await;
    worker.shutdown().await;

    let deliveries: Vec<Value> = rx
        .hits()
        .iter()
        .map(|h| {
            let headers: serde_json::Map<String, Value> = h
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), Value::from(v.as_str())))
                .collect();
            json!({"headers": headers, "body": String::from_utf8(h.body.clone()).unwrap()})
        })
        .collect();
    assert_eq!(deliveries.len(), 2);
    let input = json!({"secret": &*secret.to_standard_string(), "deliveries": deliveries});

    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/standardwebhooks_oracle.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the reference library refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["verified"], 2);

    let signed = &answer["signed"];
    let h = StandardHeaders {
        id: signed["id"].as_str().unwrap(),
        timestamp: signed["timestamp"].as_str().unwrap(),
        signature: signed["signature"].as_str().unwrap(),
    };
    let body = signed["body"].as_str().unwrap().as_bytes();
    assert!(
        sign::verify_standard(
            std::slice::from_ref(&secret),
            &h,
            body,
            common::now_unix(),
            300
        )
        .is_ok()
    );
    let wrong = Secret::from_bytes(&[0x41; 24]).unwrap();
    assert!(sign::verify_standard(&[wrong], &h, body, common::now_unix(), 300).is_err());
}
