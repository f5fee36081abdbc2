//! `dcr-template` declares what the forwarder sends: an output's transformation's output
//! columns when it has one, the table's columns otherwise; `--output` picks among several.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use common::*;
use serde_json::Value;

fn template(cfg: &str, args: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cfg).unwrap();
    let mut all = vec!["--config", path.to_str().unwrap(), "dcr-template"];
    all.extend_from_slice(args);
    let (code, out, err) = run_cli(&all, None, &[]);
    let json = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, json, err)
}

/// The declared columns of `stream`, as (name, type).
fn columns(t: &Value, stream: &str) -> Vec<(String, String)> {
    t["resources"][0]["properties"]["streamDeclarations"][stream]["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("no declaration of {stream} in {t}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const OUTPUTS: &str = r#"
[[output]]
name = "soc"
kind = "stdout"
transform = 'source | where DeviceVendor == "Acme" | project TimeGenerated, DeviceVendor, DestinationPort | extend Tier = "gold", Score = 1.5'

[[output]]
name = "linux"
kind = "stdout"
table = "Syslog"

[[output]]
name = "all"
kind = "stdout"
syslog_stream = "Custom-Syslog"
"#;

#[test]
fn the_declared_columns_are_those_the_output_sends() {
    let (code, t, err) = template(OUTPUTS, &["--output", "soc"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        columns(&t, "Custom-CommonSecurityLog"),
        [
            ("TimeGenerated", "datetime"),
            ("DeviceVendor", "string"),
            ("DestinationPort", "int"),
            ("Tier", "string"),
            ("Score", "real"),
        ]
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
    );
    let flows = &t["resources"][0]["properties"]["dataFlows"];
    assert_eq!(flows.as_array().unwrap().len(), 1);
    assert_eq!(flows[0]["outputStream"], "Microsoft-CommonSecurityLog");

    // A Syslog output: its stream into Microsoft-Syslog, the Syslog table's columns.
    let (code, t, err) = template(OUTPUTS, &["--output", "linux"]);
    assert_eq!(code, 0, "{err}");
    let cols = columns(&t, "Custom-Syslog");
    assert!(cols.contains(&("SyslogMessage".to_owned(), "string".to_owned())));
    let flows = &t["resources"][0]["properties"]["dataFlows"];
    assert_eq!(flows.as_array().unwrap().len(), 1);
    assert_eq!(flows[0]["outputStream"], "Microsoft-Syslog");

    // No transformation: every CommonSecurityLog column, and the Syslog stream beside.
    let (code, t, err) = template(OUTPUTS, &["--output", "all"]);
    assert_eq!(code, 0, "{err}");
    assert!(columns(&t, "Custom-CommonSecurityLog").len() > 150);
    assert!(!columns(&t, "Custom-Syslog").is_empty());
}

#[test]
fn several_outputs_need_output_and_a_wrong_name_lists_them() {
    let (code, _, err) = template(OUTPUTS, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--output"), "{err}");
    let (code, _, err) = template(OUTPUTS, &["--output", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("soc, linux, all"), "{err}");
}
