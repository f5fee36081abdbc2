//! The example rules of the repository (examples/rules): each fires on its `-fires` corpus
//! and stays quiet on its `-quiet` one.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/rules")
}

fn replay(rule: &str, corpus: &str) -> Vec<mcas_rules::Alert> {
    let (loaded, report) = mcas_rules::load_file(&dir().join(rule));
    let loaded = loaded.unwrap_or_else(|| panic!("{rule}: {report:?}"));
    assert!(report.ignored_keys.is_empty(), "{report:?}");
    let input = std::fs::read(dir().join("input").join(corpus)).unwrap();
    let out =
        mcas_rules::replay(&[loaded], &input[..], mcas_rules::ReplayOptions::default()).unwrap();
    assert_eq!(out.skipped_lines, 0, "{corpus}");
    out.alerts
}

#[test]
fn every_example_rule_loads() {
    let reports = mcas_rules::check_dir(&dir()).unwrap();
    assert_eq!(reports.len(), 5);
    for r in &reports {
        assert!(r.loaded, "{}", r.to_line());
    }
}

#[test]
fn an_mcas_alert_raises_an_edge_alert() {
    let alerts = replay("mcas-alert.yaml", "mcas-fires.log");
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        alerts[0].row["AlertName"],
        "MCAS: Mass download by a single user (adele@contoso.com)"
    );
    assert_eq!(
        alerts[1].row["AlertName"],
        "MCAS: Impossible travel (lee@contoso.com)"
    );
    assert_eq!(
        alerts[0].row["Description"],
        "Activity policy ''Mass download by a single user'' was triggered by ''adele@contoso.com''"
    );
    assert_eq!(
        alerts[0].row["Entities"],
        json!([
            {"Type": "account", "FullName": "adele@contoso.com"},
            {"Type": "ip", "Address": "203.0.113.40"},
            {"Type": "url", "Url": "https://contoso.portal.cloudappsecurity.com/#/alerts/663b4c100c204203a33a0001"},
        ])
    );
    assert_eq!(
        alerts[1].row["ExtendedProperties"]["Custom Details"],
        json!({"MCASAlertId": ["663b4c100c204203a33a0002"], "CloudApp": ["Box"]})
    );
    // The playbook body carries the result row.
    let body = alerts[1].to_playbook_json();
    assert_eq!(body["Results"][0]["Policy"], "Impossible travel");
    assert!(replay("mcas-alert.yaml", "mcas-quiet.log").is_empty());
}

#[test]
fn mcas_mass_download() {
    let alerts = replay("mcas-mass-download.yaml", "mcas-download-fires.log");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].row["AlertName"],
        "adele@contoso.com downloaded 6 files from Box"
    );
    assert_eq!(
        alerts[0].row["Entities"],
        json!([
            {"Type": "account", "FullName": "adele@contoso.com"},
            {"Type": "cloud-application", "Name": "Box"},
        ])
    );
    assert!(replay("mcas-mass-download.yaml", "mcas-download-quiet.log").is_empty());
}

#[test]
fn port_scan() {
    let alerts = replay("port-scan.yaml", "port-scan-fires.log");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].row["Entities"],
        json!([{"Type": "ip", "Address": "10.1.1.66"}, {"Type": "ip", "Address": "10.1.2.20"}])
    );
    assert_eq!(
        alerts[0].row["ExtendedProperties"]["Custom Details"]["PortsTried"],
        json!([12])
    );
    assert!(replay("port-scan.yaml", "port-scan-quiet.log").is_empty());
}

#[test]
fn burst_of_denies() {
    let alerts = replay("deny-burst.yaml", "deny-burst-fires.log");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].row["AlertName"],
        "25 denied connections from 198.51.100.77"
    );
    assert_eq!(
        alerts[0].row["Entities"],
        json!([{"Type": "ip", "Address": "198.51.100.77"}])
    );
    assert!(replay("deny-burst.yaml", "deny-burst-quiet.log").is_empty());
}

#[test]
fn rare_destination() {
    let alerts = replay("rare-destination.yaml", "rare-destination-fires.log");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].row["Entities"],
        json!([{"Type": "ip", "Address": "185.220.101.5"}, {"Type": "ip", "Address": "10.1.1.12"}])
    );
    assert_eq!(
        alerts[0].row["TimeGenerated"],
        "2024-05-08T01:10:00.0000000Z"
    );
    let quiet: Vec<Value> = replay("rare-destination.yaml", "rare-destination-quiet.log")
        .iter()
        .map(|a| a.row["Entities"].clone())
        .collect();
    assert!(quiet.is_empty(), "{quiet:?}");
}
