//! Five real Sentinel rules (tests/data/sentinel) replayed over input corpora
//! (tests/data/corpora): one corpus that must fire each rule, one that must not.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;

use serde_json::{Value, json};

fn replay(rule: &str, corpus: &str) -> Vec<mcas_rules::Alert> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let (loaded, report) = mcas_rules::load_file(&dir.join("sentinel").join(rule));
    let loaded = loaded.unwrap_or_else(|| panic!("{rule}: {report:?}"));
    let input = std::fs::read(dir.join("corpora").join(corpus)).unwrap();
    let out =
        mcas_rules::replay(&[loaded], &input[..], mcas_rules::ReplayOptions::default()).unwrap();
    assert_eq!(out.skipped_lines, 0, "{corpus}");
    for a in &out.alerts {
        eprintln!("{}", a.to_json_line());
    }
    out.alerts
}

fn entities(a: &mcas_rules::Alert) -> Value {
    a.row["Entities"].clone()
}

#[test]
fn cisco_asa_threat_detection_message() {
    let rule = "Solutions/CiscoASA/Analytic Rules/CiscoASA-ThreatDetectionMessage.yaml";
    let alerts = replay(rule, "cisco-asa-threat-fires.log");
    // Schedules start at the first event (10:00:05); hourly evaluations at 11:00:05 and,
    // after the last event, 12:00:05.
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        alerts[0].row["TimeGenerated"],
        "2024-05-08T11:00:05.0000000Z"
    );
    assert_eq!(
        entities(&alerts[0]),
        json!([
            {"Type": "host", "FullName": "asa01"},
            {"Type": "ip", "Address": "198.51.100.7"},
            {"Type": "ip", "Address": "198.51.100.8"},
        ])
    );
    assert_eq!(
        alerts[0].row["ExtendedProperties"]["Search Query Results Overall Count"],
        2
    );
    assert_eq!(
        alerts[1].row["TimeGenerated"],
        "2024-05-08T12:00:05.0000000Z"
    );
    assert_eq!(
        entities(&alerts[1]),
        json!([{"Type": "host", "FullName": "asa02"}, {"Type": "ip", "Address": "203.0.113.9"}])
    );
    assert_eq!(alerts[0].row["AlertSeverity"], "Medium");
    assert_eq!(alerts[0].row["Tactics"], "Discovery, Impact");
    assert!(replay(rule, "cisco-asa-threat-quiet.log").is_empty());
}

#[test]
fn palo_alto_port_scanning() {
    let rule = "Solutions/PaloAlto-PAN-OS/Analytic Rules/PaloAlto-PortScanning.yaml";
    let alerts = replay(rule, "paloalto-portscan-fires.log");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        entities(&alerts[0]),
        json!([
            {"Type": "account", "FullName": "bob"},
            {"Type": "host", "FullName": "pa-fw01"},
            {"Type": "ip", "Address": "10.0.0.50"},
        ])
    );
    assert_eq!(alerts[0].results[0]["totalcount"], 12);
    // The alert spans the result's StartTimeUtc .. EndTimeUtc.
    assert_eq!(alerts[0].row["StartTime"], "2024-05-08T09:10:00.0000000Z");
    assert_eq!(alerts[0].row["EndTime"], "2024-05-08T09:21:00.0000000Z");
    // 9 incomplete sessions, 12 denied ones, 12 to an internal address: nothing.
    assert!(replay(rule, "paloalto-portscan-quiet.log").is_empty());
}

#[test]
fn runningrat_request_parameters() {
    let rule = "Detections/CommonSecurityLog/CreepySnailURLParameters.yaml";
    let alerts = replay(rule, "runningrat-fires.log");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        entities(&alerts[0]),
        json!([
            {"Type": "ip", "Address": "10.2.0.7"},
            {"Type": "ip", "Address": "192.0.2.80"},
            {"Type": "host", "HostName": "ws07"},
            {"Type": "url", "Url": "http://192.0.2.80/ui/chk?mactok=AA11"},
            {"Type": "url", "Url": "http://192.0.2.80/index.php?UsRnMe=bob"},
        ])
    );
    assert_eq!(alerts[0].row["AlertSeverity"], "High");
    assert!(replay(rule, "runningrat-quiet.log").is_empty());
}

#[test]
fn vectra_new_campaign() {
    let rule = "Solutions/Vectra AI Detect/Analytic Rules/VectraDetect-NewCampaign.yaml";
    let alerts = replay(rule, "vectra-campaign-fires.log");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        entities(&alerts[0]),
        json!([
            {"Type": "host", "HostName": "ws-12"},
            {"Type": "url", "Url": "https://vectra.example/campaigns/44"},
        ])
    );
    assert!(replay(rule, "vectra-campaign-quiet.log").is_empty());
}

#[test]
fn illusive_incidents_one_alert_per_result() {
    let rule = "Solutions/Illusive Platform/Analytic Rules/Illusive_Detection_Query.yaml";
    let alerts = replay(rule, "illusive-fires.log");
    assert_eq!(alerts.len(), 2);
    let names: Vec<&Value> = alerts.iter().map(|a| &a.row["AlertName"]).collect();
    assert_eq!(
        names,
        ["Illusive Incident: 1001", "Illusive Incident: 1002"]
    );
    assert_eq!(
        entities(&alerts[0]),
        json!([
            {"Type": "ip", "Address": "10.4.0.9"},
            {"Type": "host", "FullName": "ws-09"},
            {"Type": "host", "OMSAgentID": "illusive"},
        ])
    );
    assert_eq!(
        alerts[1].row["ExtendedProperties"]["Custom Details"],
        json!({"IllusiveIncidentId": [1002], "HasForensics": ["false"], "Account": ["mallory"]})
    );
    assert_ne!(alerts[0].id(), alerts[1].id());
    // The same input gives the same ids.
    let again = replay(rule, "illusive-fires.log");
    assert_eq!(again[0].id(), alerts[0].id());
    assert!(replay(rule, "illusive-quiet.log").is_empty());
}
