//! Every case of `tests/data/csl.jsonl`: syslog line → syslog parse → CEF
//! parse → map → JSON, compared column by column.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use mcas_csl::{ColumnType, Context, columns};
use serde_json::Value;

const VECTORS: &str = include_str!("data/csl.jsonl");

fn column_type(name: &str) -> ColumnType {
    columns()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("vector names unknown column {name}"))
}

/// Maps one input line and returns the row as JSON.
fn map_line(input: &str) -> Value {
    let msg = mcas_syslog::parse(input.as_bytes()).expect("syslog parse");
    let event = mcas_cef::parse(msg.msg()).expect("CEF parse");
    let received = jiff::Timestamp::from_second(1_732_700_000).unwrap();
    let ctx = Context::new(received).with_computer(msg.hostname());
    let mapped = mcas_csl::map(&event, &ctx);
    common::row_json(&mapped.row)
}

fn matches(name: &str, got: &Value, want: &Value) -> bool {
    match column_type(name) {
        ColumnType::Int | ColumnType::Long => {
            got.as_i64().is_some() && got.as_i64() == want.as_i64()
        }
        ColumnType::Real => got.as_f64().is_some() && got.as_f64() == want.as_f64(),
        ColumnType::Datetime => {
            let parse = |v: &Value| v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok());
            // The exact text form, and the same instant.
            got == want && parse(got).is_some() && parse(got) == parse(want)
        }
        _ => got.is_string() && got == want,
    }
}

#[test]
fn every_csl_vector_maps_as_expected() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let name = case["name"].as_str().unwrap();
        let row = map_line(case["input"].as_str().unwrap());
        cases += 1;
        for (column, want) in case["expect"].as_object().unwrap() {
            match row.get(column) {
                Some(got) if matches(column, got, want) => {}
                got => failures.push(format!("{name}: {column} = {got:?}, want {want}")),
            }
        }
        for column in case["absent"].as_array().unwrap() {
            let column = column.as_str().unwrap();
            column_type(column);
            match row.get(column) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.is_empty() => {}
                Some(got) => failures.push(format!("{name}: {column} = {got}, want absent")),
            }
        }
        if let Err(e) = common::check_against_schema(&row, &common::default_columns()) {
            failures.push(format!("{name}: {e}"));
        }
        // Every row carries the context columns.
        assert_eq!(row["SourceSystem"], "OpsManager", "{name}");
        assert_eq!(row["TimeGenerated"], "2024-11-27T09:33:20.000Z", "{name}");
    }
    assert_eq!(cases, 19);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
