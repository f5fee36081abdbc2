//! `mcas-forward kql` through the real binary: a transformation run on sample rows, from
//! the command line, from a DCR, on raw CEF lines, and the compile-error exit.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use common::run_cli;
use serde_json::Value;

fn rows(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_transformation_filters_and_reshapes_ndjson_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.ndjson");
    std::fs::write(
        &input,
        concat!(
            r#"{"DeviceVendor":"Palo Alto Networks","DestinationPort":23,"Activity":"deny"}"#,
            "\n",
            r#"{"DeviceVendor":"Fortinet","DestinationPort":443,"Activity":"allow"}"#,
            "\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &[
            "kql",
            "--query",
            "source | where DestinationPort != 443 | project-away Activity",
            "--input",
            input.to_str().unwrap(),
        ],
        None,
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&out),
        vec![serde_json::json!({"DeviceVendor": "Palo Alto Networks", "DestinationPort": 23})]
    );
}

#[test]
fn a_query_outside_the_subset_exits_2_with_a_caret() {
    let (code, out, err) = run_cli(
        &[
            "kql",
            "--check",
            "--query",
            "source\n| summarize count() by DeviceVendor",
        ],
        None,
        &[],
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("line 2, column 3: summarize is not supported in transformations"),
        "{err}"
    );
    assert!(
        err.contains("| summarize count() by DeviceVendor\n    ^"),
        "{err}"
    );
}

#[test]
fn a_dcr_gives_the_query_and_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let dcr = dir.path().join("dcr.json");
    std::fs::write(
        &dcr,
        serde_json::to_vec(&serde_json::json!({
            "resources": [{
                "type": "Microsoft.Insights/dataCollectionRules",
                "properties": {
                    "streamDeclarations": {"Custom-Cef": {"columns": [
                        {"name": "DeviceVendor", "type": "string"},
                        {"name": "DestinationPort", "type": "int"}
                    ]}},
                    "dataFlows": [{
                        "streams": ["Custom-Cef"],
                        "transformKql": "source | where DestinationPort in (22, 23) | extend Note = strcat(DeviceVendor, ':', DestinationPort)"
                    }]
                }
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    let input = dir.path().join("rows.ndjson");
    std::fs::write(
        &input,
        "{\"DeviceVendor\":\"V\",\"DestinationPort\":22}\n{\"DeviceVendor\":\"V\",\"DestinationPort\":80}\n",
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &[
            "kql",
            "--dcr",
            dcr.to_str().unwrap(),
            "--stream",
            "Custom-Cef",
            "--input",
            input.to_str().unwrap(),
        ],
        None,
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&out),
        vec![serde_json::json!({"DeviceVendor": "V", "DestinationPort": 22, "Note": "V:22"})]
    );
    // An unknown column is refused against the declared columns, with the nearest one.
    let (code, _, err) = run_cli(
        &[
            "kql",
            "--check",
            "--schema",
            "commonsecuritylog",
            "--query",
            "source | where DeviceVender == 'x'",
        ],
        None,
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("DeviceVendor"), "{err}");
}

#[test]
fn raw_cef_lines_are_mapped_first() {
    let dir = tempfile::tempdir().unwrap();
    let cef = dir.path().join("cef.txt");
    std::fs::write(
        &cef,
        "<134>2024-05-08T16:07:11Z fw01 CEF:0|Palo Alto Networks|PAN-OS|9|100|deny|5|src=10.0.0.1 dpt=23 act=deny\n\
         <134>2024-05-08T16:07:11Z fw01 CEF:0|Fortinet|FortiGate|9|100|allow|5|src=10.0.0.2 dpt=443 act=allow\n",
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &[
            "kql",
            "--cef",
            cef.to_str().unwrap(),
            "--query",
            "source | where DestinationPort != 443 | project DeviceVendor, DestinationPort, DeviceAction, Computer",
        ],
        None,
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&out),
        vec![serde_json::json!({
            "DeviceVendor": "Palo Alto Networks",
            "DestinationPort": 23,
            "DeviceAction": "deny",
            "Computer": "fw01"
        })]
    );
}
