//! `rules check` over a directory: every file reported, broken ones skipped with a position.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

const GOOD: &str = "id: r1\nname: Denies\nseverity: Low\nqueryFrequency: 5m\nqueryPeriod: 5m\n\
                    triggerOperator: gt\ntriggerThreshold: 0\nincidentConfiguration:\n  createIncident: true\n\
                    query: |\n  CommonSecurityLog\n  | where DeviceAction == 'deny'\n";

#[test]
fn a_directory_reports_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    put("a-good.yaml", GOOD);
    put("b-duplicate.yml", GOOD);
    put(
        "c-disabled.yaml",
        &GOOD.replace("id: r1", "id: r3\nenabled: false"),
    );
    put(
        "d-operator.yaml",
        &GOOD
            .replace("id: r1", "id: r4")
            .replace("| where", "| evaluate bag_unpack(x)\n  | where"),
    );
    put("e-broken.yaml", "id: r5\nname: [unclosed\n");
    put(
        "f-table.yaml",
        &GOOD
            .replace("id: r1", "id: r6")
            .replace("CommonSecurityLog", "SecurityEvent"),
    );
    put("notes.txt", "not a rule");

    let (rules, reports) = mcas_rules::load_dir(dir.path()).unwrap();
    assert_eq!(rules.len(), 1);
    let lines: Vec<String> = reports
        .iter()
        .map(|r| {
            let line = r.to_line();
            line[line.rfind('/').map_or(0, |i| i + 1)..].to_owned()
        })
        .collect();
    assert_eq!(
        lines,
        [
            "a-good.yaml: loaded: Denies (r1) (ignored keys: incidentConfiguration)",
            "b-duplicate.yml:0:0: skipped: duplicate id r1 (ignored keys: incidentConfiguration)",
            "c-disabled.yaml:0:0: skipped: disabled (enabled: false) (ignored keys: incidentConfiguration)",
            "d-operator.yaml:12:5: skipped: query: the 'evaluate' operator is not supported in the query dialect (ignored keys: incidentConfiguration)",
            "e-broken.yaml:3:1: skipped: not YAML: did not find expected ',' or ']'",
            "f-table.yaml:11:3: skipped: query reads table `SecurityEvent`, which is not on the stream (CommonSecurityLog, Syslog) (ignored keys: incidentConfiguration)",
        ]
    );
    let json = serde_json::to_value(&reports[3]).unwrap();
    assert_eq!(json["id"], "r4");
    assert_eq!(json["loaded"], false);
    assert_eq!(
        (json["line"].as_u64(), json["column"].as_u64()),
        (Some(12), Some(5))
    );
}
