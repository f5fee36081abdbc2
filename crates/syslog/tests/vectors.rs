//! Runs every case of `tests/data/syslog.jsonl` and names each mismatch.

use serde_json::{Value, json};

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn actual(m: &mcas_syslog::Message<'_>) -> Value {
    let sd: Vec<Value> = m
        .structured_data()
        .iter()
        .map(|e| {
            let params: Vec<Value> = e.params().map(|(n, v)| json!([n, v])).collect();
            json!({"id": e.id(), "params": params})
        })
        .collect();
    json!({
        "protocol": match m.protocol() {
            mcas_syslog::Protocol::Rfc3164 => "rfc3164",
            mcas_syslog::Protocol::Rfc5424 => "rfc5424",
        },
        "facility": m.facility(),
        "severity": m.severity(),
        "timestamp": opt(m.timestamp_str()),
        "hostname": opt(m.hostname()),
        "app_name": opt(m.app_name()),
        "proc_id": opt(m.proc_id()),
        "msg_id": opt(m.msg_id()),
        "structured_data": sd,
        "msg": m.msg_lossy(),
    })
}

#[test]
fn every_syslog_vector() {
    let data = include_str!("data/syslog.jsonl");
    let mut total = 0;
    let mut failures = Vec::new();
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        total += 1;
        let case: Value = serde_json::from_str(line).expect("valid JSON line");
        let name = case["name"].as_str().expect("name");
        let input = case["input"].as_str().expect("input");
        let expect = &case["expect"];
        let m = match mcas_syslog::parse(input.as_bytes()) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: parse error {e}"));
                continue;
            }
        };
        let got = actual(&m);
        let expect_obj = expect.as_object().expect("expect object");
        for (field, want) in expect_obj {
            if &got[field] != want {
                failures.push(format!(
                    "{name}: {field}: expected {want}, got {}",
                    got[field]
                ));
            }
        }
        // Every timestamp the parser accepted must also resolve to an instant.
        if m.timestamp_str().is_some() {
            assert!(
                m.timestamp().is_some(),
                "{name}: timestamp does not resolve"
            );
        }
        assert_eq!(m.raw(), input.as_bytes(), "{name}: raw bytes kept");
    }
    println!(
        "syslog vectors: {} of {total} passed",
        total - failures.len()
    );
    assert!(total >= 50, "expected at least 50 cases, found {total}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
