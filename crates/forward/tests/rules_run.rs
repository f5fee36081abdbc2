//! Alert rules in `run`, end to end: CEF events over TCP raise alerts that land as rows in
//! the emulator's alert table (an output of `table = "alerts"`) and reach playbooks as
//! signed webhooks, checked by a receiver that verifies every signature:
//! - two 503 answers, then 200: delivered once, with the same `webhook-id` (the alert's
//!   `SystemAlertId`) on every attempt;
//! - a 410 disables its playbook (counted), GitHub's form, and a playbook limited to some
//!   rules;
//! - a receiver down for 30 s, with the forwarder killed (`kill -9`) and restarted meanwhile:
//!   the alert waits in the outbox and is delivered once the receiver is back.
//!
//! The rule is the MCAS example of `examples/rules/`, evaluated every minute instead of every
//! 5: the first evaluation comes a minute after the start, so each test takes a minute or two.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use mcas_azure_emulator::{Column, ColumnType, EmulatorHandle, Stream};
use mcas_testkit::webhook::{Check, Receiver, Reply};
use mcas_webhook::Secret;
use serde_json::Value;

const ALERTS: &str = "MCASForwardAlerts_CL";
const ALERT_STREAM: &str = "Custom-MCASForwardAlerts_CL";
const RULE_NAME: &str = "Defender for Cloud Apps alert";

/// An emulator whose DCR also takes the alert stream into `MCASForwardAlerts_CL`.
async fn emulator_with_alerts() -> EmulatorHandle {
    let columns = mcas_rules::ALERT_COLUMNS
        .iter()
        .map(|(n, t)| {
            let ty = match *t {
                "datetime" => ColumnType::DateTime,
                "dynamic" => ColumnType::Dynamic,
                _ => ColumnType::String,
            };
            Column::new(*n, ty)
        })
        .collect();
    EmulatorSetup::new()
        .configure(|c| {
            c.dcrs[0]
                .streams
                .push(Stream::new(ALERT_STREAM, ALERTS, columns));
        })
        .start()
        .await
        .unwrap()
}

/// The MCAS example rule, evaluated every minute (the shortest `queryFrequency`) over the
/// last minute (windows that do not overlap: each event raises one alert), in `dir/rules`.
fn write_rule(dir: &Path) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/rules/mcas-alert.yaml"
    ))
    .unwrap();
    let fast = text.replace(
        "queryFrequency: 5m\nqueryPeriod: 5m",
        "queryFrequency: 1m\nqueryPeriod: 1m",
    );
    assert_ne!(
        fast, text,
        "the example's schedule is where the test expects it"
    );
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/mcas-alert.yaml"), fast).unwrap();
}

/// A Standard Webhooks key file (`whsec_…`) for `key`.
fn write_key(dir: &Path, name: &str, key: &Secret) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", &*key.to_standard_string())).unwrap();
    path.display().to_string()
}

fn key(byte: u8) -> Secret {
    Secret::from_bytes(&[byte; 32]).unwrap()
}

/// The configuration: TCP in, CommonSecurityLog and alerts into the emulator, the rule,
/// and the `[[playbook]]` tables in `playbooks`.
fn config(base: &str, playbooks: &str) -> String {
    let csl = mcas_testkit::logs_ingestion_output(
        "[[output]]",
        base,
        "name = \"csl\"\nretry_budget = \"2s\"",
        "",
    );
    let alerts = mcas_testkit::logs_ingestion_output(
        "[[output]]",
        base,
        "name = \"alerts\"\ntable = \"alerts\"\nretry_budget = \"2s\"",
        "",
    )
    .replace(
        "stream = \"Custom-CommonSecurityLog\"",
        &format!("stream = \"{ALERT_STREAM}\""),
    );
    // A retry every second, for a minute.
    let retry = vec!["\"1s\""; 60].join(", ");
    format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"
{csl}
{alerts}
[rules]
dir = "{{DIR}}/rules"
state_dir = "{{DIR}}/rules-state"
delivery_retry = [{retry}]
delivery_timeout = "2s"
{playbooks}{CONFIG_TAIL}"#
    )
}

/// An MCAS alert event (`ALERT_…`) for `user`, as the SIEM agent sends it, stamped now.
fn mcas_alert(user: &str, n: u32) -> String {
    let now = jiff::Timestamp::now();
    format!(
        "<131>{now} mcas-agent CEF:0|MCAS|SIEM_Agent|0.102.17|ALERT_CABINET_EVENT_MATCH_AUDIT|Mass download by a single user|3|externalId=663b4c100c204203a33a{n:04} start=1715162400000 end=1715162400000 msg=Activity policy ''Mass download by a single user'' was triggered by ''{user}'' suser={user} destinationServiceName=Box dvc=203.0.113.40 cs1Label=portalURL cs1=https://contoso.portal.cloudappsecurity.com/#/alerts/663b4c100c204203a33a{n:04}\n"
    )
}

/// A login event of the same source, which the rule does not keep.
fn mcas_login(n: u32) -> String {
    let now = jiff::Timestamp::now();
    format!(
        "<134>{now} mcas-agent CEF:0|MCAS|SIEM_Agent|0.112.68|EVENT_CATEGORY_LOGIN|Log on|0|externalId=login-{n} msg=Log on suser=adele@contoso.com destinationServiceName=Box\n"
    )
}

async fn send(port: u16, lines: Vec<String>) {
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(lines.concat().as_bytes()).unwrap();
    })
    .await
    .unwrap();
}

fn alert_ids(emulator: &EmulatorHandle) -> Vec<String> {
    emulator
        .rows(ALERTS)
        .iter()
        .map(|r| r["SystemAlertId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_the_alert_table_and_a_playbook_through_two_503s() {
    let emulator = emulator_with_alerts().await;
    let k = key(7);
    let rx = Receiver::start(
        Check::Standard(vec![k.clone()]),
        vec![Reply::Status(503), Reply::Status(503)],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_rule(dir.path());
    let key_file = write_key(dir.path(), "soc.key", &k);
    let playbook = format!(
        "[[playbook]]\nname = \"soc\"\nurl = \"{}\"\nsecret_file = \"{key_file}\"\n",
        rx.url()
    );
    let fwd = start_forwarder(dir.path(), config(&emulator.base_url(), &playbook)).await;
    send(
        fwd.port,
        vec![
            mcas_login(1),
            mcas_alert("adele@contoso.com", 1),
            mcas_login(2),
        ],
    )
    .await;

    // The alert row lands in the alert table, and the playbook gets it on the 3rd attempt.
    let delivered = |rx: &Receiver| rx.hits().len() >= 3;
    assert!(
        wait_until_async(Duration::from_secs(150), || emulator.count(ALERTS) >= 1
            && delivered(&rx))
        .await,
        "alerts {}, hits {}\n{}",
        emulator.count(ALERTS),
        rx.hits().len(),
        fwd.stderr_text()
    );
    // Nothing more comes: one alert, delivered once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rows = emulator.rows(ALERTS);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        row["AlertName"],
        "MCAS: Mass download by a single user (adele@contoso.com)"
    );
    assert_eq!(row["AlertSeverity"], "High");
    assert_eq!(row["ProviderName"], "mcas-forward");
    assert_eq!(row["Tactics"], "InitialAccess");
    let entities = row["Entities"].to_string();
    assert!(entities.contains("adele@contoso.com"), "{entities}");
    assert!(
        entities.contains("cloudappsecurity.com/#/alerts/663b4c100c204203a33a0001"),
        "{entities}"
    );
    let id = row["SystemAlertId"].as_str().unwrap();
    // The three CEF events reach CommonSecurityLog as well.
    assert_eq!(emulator.count("CommonSecurityLog"), 3);

    let hits = rx.hits();
    assert_eq!(hits.len(), 3, "503, 503, then 200: three attempts");
    for h in &hits {
        assert!(h.verified, "every attempt is signed with the key");
        assert_eq!(
            h.header("webhook-id"),
            Some(id),
            "the alert's id on every attempt"
        );
        assert_eq!(h.body, hits[0].body, "the same body on every attempt");
    }
    let body: Value = serde_json::from_slice(&hits[0].body).unwrap();
    assert_eq!(body["SystemAlertId"], id);
    assert_eq!(body["AlertName"], row["AlertName"]);
    assert_eq!(body["Results"][0]["SourceUserName"], "adele@contoso.com");

    // Counted: the rule's alert, the two 5xx attempts, one delivery.
    let scrape = fwd.scrape().unwrap();
    assert_eq!(
        scrape
            .count("mcas_forward_rule_alerts_total{rule=\"6c3f1e2a-3b1d-4f55-9d8e-0a1b2c3d4e01\"}"),
        1
    );
    assert!(
        scrape.count(
            "mcas_forward_rule_evaluations_total{rule=\"6c3f1e2a-3b1d-4f55-9d8e-0a1b2c3d4e01\"}"
        ) >= 1
    );
    assert_eq!(scrape.count("mcas_forward_rules_loaded"), 1);
    assert_eq!(scrape.count("mcas_forward_rules_alert_rows_total"), 1);
    assert_eq!(
        scrape.count("mcas_forward_rules_playbook_enqueued_total"),
        1
    );
    assert_eq!(
        scrape.count("mcas_forward_webhook_attempts_total{endpoint=\"soc\",class=\"5xx\"}"),
        2
    );
    assert_eq!(
        scrape.count("mcas_forward_webhook_messages_total{endpoint=\"soc\",outcome=\"delivered\"}"),
        1
    );
    // The URL's secret never shows, in metrics or logs.
    let text = mcas_testkit::http::get_ok(fwd.metrics_addr(), "/metrics").unwrap();
    assert!(!text.contains(Receiver::URL_SECRET));
    assert!(!fwd.stderr_text().contains(Receiver::URL_SECRET));

    // At shutdown the rule's state (schedule, suppression, window) is saved for the next start.
    let mut fwd = fwd;
    let status = tokio::task::spawn_blocking(move || {
        let s = fwd.terminate(Duration::from_secs(30)).unwrap();
        (s, fwd)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{}", status.1.stderr_text());
    let saved = std::fs::read_to_string(
        dir.path()
            .join("rules-state/windows/6c3f1e2a-3b1d-4f55-9d8e-0a1b2c3d4e01.ndjson"),
    )
    .unwrap();
    let lines: Vec<&str> = saved.lines().collect();
    assert!(
        lines[0].contains("\"rule\":\"6c3f1e2a-3b1d-4f55-9d8e-0a1b2c3d4e01\""),
        "{saved}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_its_playbook_while_another_gets_every_alert_in_githubs_form() {
    let emulator = emulator_with_alerts().await;
    let (k1, k2) = (key(1), key(2));
    let gone = Receiver::start(Check::Standard(vec![k1.clone()]), vec![Reply::Status(410)])
        .await
        .unwrap();
    let gh = Receiver::start(Check::GitHub(vec![k2.clone()]), vec![])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_rule(dir.path());
    let k1_file = write_key(dir.path(), "gone.key", &k1);
    let k2_file = dir.path().join("gh.key");
    std::fs::write(&k2_file, [2u8; 32]).unwrap();
    let playbooks = format!(
        "[[playbook]]\nname = \"gone\"\nurl = \"{}\"\nsecret_file = \"{k1_file}\"\n\
         [[playbook]]\nname = \"gh\"\nurl = \"{}\"\nsecret_file = \"{}\"\nformat = \"github\"\nrules = [\"{RULE_NAME}\"]\n\
         [[playbook]]\nname = \"other\"\nurl = \"{}\"\nsecret_file = \"{k1_file}\"\nrules = [\"another-rule\"]\n",
        gone.url(),
        gh.url(),
        k2_file.display(),
        gone.url(),
    );
    let fwd = start_forwarder(dir.path(), config(&emulator.base_url(), &playbooks)).await;
    send(fwd.port, vec![mcas_alert("adele@contoso.com", 1)]).await;
    assert!(
        wait_until_async(Duration::from_secs(150), || gone.hits().len() == 1
            && gh.hits().len() == 1)
        .await,
        "{}",
        fwd.stderr_text()
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || fwd
            .metric("mcas_forward_webhook_endpoint_disabled{endpoint=\"gone\"}")
            == Some(1.0))
        .await
    );
    // A second alert: the disabled playbook gets nothing more, the other gets it.
    send(fwd.port, vec![mcas_alert("lee@contoso.com", 2)]).await;
    assert!(
        wait_until_async(Duration::from_secs(150), || gh.hits().len() == 2).await,
        "{}",
        fwd.stderr_text()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        gone.hits().len(),
        1,
        "a 410 disables the playbook until restart"
    );
    for h in gh.hits() {
        assert!(h.verified, "GitHub's X-Hub-Signature-256 verifies");
        assert!(
            h.header("x-hub-signature-256")
                .unwrap()
                .starts_with("sha256=")
        );
    }
    let ids = alert_ids(&emulator);
    assert_eq!(ids.len(), 2);
    let delivered: Vec<String> = gh
        .hits()
        .iter()
        .map(|h| h.header("x-github-delivery").unwrap().to_owned())
        .collect();
    let mut a = ids.clone();
    let mut b = delivered.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the GitHub delivery ids are the alert ids");
    let scrape = fwd.scrape().unwrap();
    assert_eq!(
        scrape.count("mcas_forward_webhook_attempts_total{endpoint=\"gone\",class=\"4xx\"}"),
        1
    );
    // "other" takes the alerts of another rule only: nothing was queued for it, and the
    // second alert waits for "gone" in the outbox (2 enqueued for gh, 2 for gone).
    assert_eq!(
        scrape.count("mcas_forward_rules_playbook_enqueued_total"),
        4
    );
    assert_eq!(
        scrape.count("mcas_forward_webhook_outbox_messages{endpoint=\"other\"}"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_30_s_and_a_killed_forwarder_still_get_the_alert_delivered() {
    let emulator = emulator_with_alerts().await;
    let k = key(9);
    let addr = mcas_testkit::free_addr().unwrap();
    let url = format!(
        "http://{addr}/hook?api-version=2016-10-01&sig={}",
        Receiver::URL_SECRET
    );
    let dir = tempfile::tempdir().unwrap();
    write_rule(dir.path());
    let key_file = write_key(dir.path(), "soc.key", &k);
    let playbook =
        format!("[[playbook]]\nname = \"soc\"\nurl = \"{url}\"\nsecret_file = \"{key_file}\"\n");
    let down_since = Instant::now();
    let mut fwd = start_forwarder(dir.path(), config(&emulator.base_url(), &playbook)).await;
    send(fwd.port, vec![mcas_alert("adele@contoso.com", 1)]).await;
    // Raised, stored in the outbox, and tried against the closed port.
    assert!(
        wait_until_async(Duration::from_secs(150), || emulator.count(ALERTS) == 1
            && fwd
                .metric("mcas_forward_webhook_attempts_total{endpoint=\"soc\",class=\"error\"}")
                .unwrap_or(0.0)
                >= 1.0)
        .await,
        "{}",
        fwd.stderr_text()
    );
    let id = alert_ids(&emulator).remove(0);
    // The forwarder dies with the alert undelivered, and comes back.
    fwd = tokio::task::spawn_blocking(move || {
        fwd.kill9().unwrap();
        fwd.restart().unwrap();
        fwd
    })
    .await
    .unwrap();
    let rest = Duration::from_secs(30).saturating_sub(down_since.elapsed());
    tokio::time::sleep(rest).await;
    let rx = Receiver::start_on(addr, Check::Standard(vec![k.clone()]), vec![])
        .await
        .unwrap();
    assert!(
        wait_until_async(Duration::from_secs(30), || !rx.hits().is_empty()).await,
        "{}",
        fwd.stderr_text()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 1, "delivered once");
    assert!(hits[0].verified);
    assert_eq!(hits[0].header("webhook-id"), Some(id.as_str()));
    assert_eq!(
        fwd.scrape()
            .unwrap()
            .count("mcas_forward_webhook_outbox_messages{endpoint=\"soc\"}"),
        0,
        "the outbox is empty"
    );
}
