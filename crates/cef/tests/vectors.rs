//! Runs every case of `tests/data/cef.jsonl` and names each mismatch.

use serde_json::Value;

const VECTORS: &str = include_str!("data/cef.jsonl");

/// What the parser produced, in the shape of the vectors' `expect`.
fn actual(input: &str) -> Value {
    match mcas_cef::parse(input.as_bytes()) {
        Err(_) => serde_json::json!({ "error": true }),
        Ok(e) => serde_json::json!({
            "version": e.version(),
            "device_vendor": e.device_vendor(),
            "device_product": e.device_product(),
            "device_version": e.device_version(),
            "device_event_class_id": e.device_event_class_id(),
            "name": e.name(),
            "severity": e.severity().raw(),
            "extensions": e.extensions().map(|(k, v)| [k, v]).collect::<Vec<_>>(),
        }),
    }
}

#[test]
fn every_vector_passes() {
    let mut cases = 0;
    let mut mismatches = Vec::new();
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("valid JSON line");
        let name = case["name"].as_str().expect("name");
        let input = case["input"].as_str().expect("input");
        let got = actual(input);
        cases += 1;
        if got != case["expect"] {
            mismatches.push(format!(
                "{name}\n  input:  {input:?}\n  expect: {}\n  got:    {got}",
                case["expect"]
            ));
        }
    }
    println!(
        "cef.jsonl: {cases} cases, {} passed",
        cases - mismatches.len()
    );
    assert_eq!(cases, 125, "the vector file has 125 cases");
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// The vectors also pass when fed through `into_owned`, and the warnings of accepted
/// events point inside the input.
#[test]
fn vectors_into_owned_and_offsets() {
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("valid JSON line");
        let input = case["input"].as_str().expect("input");
        if let Ok(e) = mcas_cef::parse(input.as_bytes()) {
            for w in e.warnings() {
                let off = w.offset().expect("parse warnings carry an offset");
                assert!(off < input.len(), "{}: {w}", case["name"]);
            }
            let owned = e.clone().into_owned();
            assert_eq!(owned, e, "{}", case["name"]);
        }
    }
}
