//! `rules check`, `rules test` and `dcr-template --alerts` through the binary, on the
//! example rules and their corpora (`examples/rules/`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::path::PathBuf;

use common::*;

fn cli(args: &[&str]) -> (i32, String, String) {
    run_cli(args, None, &[])
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/rules")
}

/// One example rule alone in a directory.
fn only(rule: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(examples().join(rule), d.path().join(rule)).unwrap();
    d
}

fn alerts(rule: &str, input: &str) -> Vec<serde_json::Value> {
    let d = only(rule);
    let input = examples().join("input").join(input);
    let (code, out, err) = cli(&[
        "rules",
        "test",
        "--rules",
        d.path().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn rules_check_loads_every_example_and_says_so_as_json() {
    let dir = examples();
    let (code, out, err) = cli(&["rules", "check", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let reports: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 5);
    for r in &reports {
        assert_eq!(r["loaded"], true, "{r}");
        for key in ["file", "id", "name", "reason"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
    }
}

#[test]
fn rules_check_fails_and_points_at_a_broken_rule() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("bad.yaml"),
        "id: 1\nname: bad\nseverity: Low\nqueryFrequency: 5m\nqueryPeriod: 5m\ntriggerOperator: gt\ntriggerThreshold: 0\nquery: |\n  CommonSecurityLog\n  | evaluate bag_unpack(x)\n",
    )
    .unwrap();
    let (code, out, _) = cli(&["rules", "check", d.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(out.contains("bad.yaml"), "{out}");
    assert!(out.contains("evaluate"), "{out}");
    assert!(out.contains("0 of 1 rule files loaded"), "{out}");
}

#[test]
fn rules_test_fires_the_mcas_alert_rule_on_its_corpus_only() {
    let fired = alerts("mcas-alert.yaml", "mcas-fires.log");
    assert_eq!(fired.len(), 2, "{fired:?}");
    for a in &fired {
        assert_eq!(a["ProviderName"], "mcas-forward");
        assert_eq!(a["AlertSeverity"], "High");
        assert!(a["SystemAlertId"].as_str().is_some_and(|s| !s.is_empty()));
    }
    // The same input gives the same stable ids.
    let again = alerts("mcas-alert.yaml", "mcas-fires.log");
    assert_eq!(
        fired
            .iter()
            .map(|a| &a["SystemAlertId"])
            .collect::<Vec<_>>(),
        again
            .iter()
            .map(|a| &a["SystemAlertId"])
            .collect::<Vec<_>>()
    );
    assert!(alerts("mcas-alert.yaml", "mcas-quiet.log").is_empty());
}

#[test]
fn dcr_template_alerts_creates_the_custom_table_and_its_flow() {
    let (code, out, err) = cli(&["dcr-template", "--alerts"]);
    assert_eq!(code, 0, "{err}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    let resources = t["resources"].as_array().unwrap();
    let table = resources
        .iter()
        .find(|r| r["type"] == "Microsoft.OperationalInsights/workspaces/tables")
        .unwrap();
    assert_eq!(
        table["properties"]["schema"]["name"],
        "MCASForwardAlerts_CL"
    );
    let cols: Vec<&str> = table["properties"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in [
        "TimeGenerated",
        "AlertName",
        "AlertSeverity",
        "SystemAlertId",
        "Entities",
        "ExtendedProperties",
    ] {
        assert!(cols.contains(&c), "{c} missing: {cols:?}");
    }
    let dcr = resources
        .iter()
        .find(|r| r["type"] == "Microsoft.Insights/dataCollectionRules")
        .unwrap();
    let flow = &dcr["properties"]["dataFlows"][0];
    assert_eq!(flow["streams"][0], "Custom-MCASForwardAlerts_CL");
    assert_eq!(flow["outputStream"], "Custom-MCASForwardAlerts_CL");
    assert!(dcr["properties"]["streamDeclarations"]["Custom-MCASForwardAlerts_CL"].is_object());
    let (code, _, err) = cli(&["dcr-template", "--alerts", "--stream", "Custom-NoSuffix"]);
    assert_ne!(code, 0);
    assert!(err.contains("_CL"), "{err}");
}
