//! Compiles every real `transformKql` query kept in `tests/data/transformations.jsonl`.
//!
//! Each line is one query as published in a public DCR template, sample or documentation page,
//! with its `source` (`owner/repository:path`). A query whose source declares the stream's
//! columns (`columns`, as a DCR's `streamDeclarations` writes them) is compiled against them,
//! strictly: an unknown column is an error. A query whose source names no columns (a sample on
//! a documentation page, or a workspace transformation of a built-in table such as `Event`,
//! whose columns this crate does not carry) is compiled with `Query::compile_lenient`, as
//! `mcas-forward kql --check` does.

#![allow(missing_docs)]

use std::collections::BTreeSet;

use mcas_kql::{Query, Schema, Type};
use serde_json::Value as Json;

/// Queries that do not compile yet, each with the reason. The test fails if this list is not
/// exact.
const KNOWN_GAPS: &[(&str, &str)] = &[];

fn schema_of(columns: &[Json]) -> Result<Schema, String> {
    let mut out = Vec::new();
    for c in columns {
        let name = c["name"].as_str().ok_or("column without a name")?;
        let ty = c["type"].as_str().ok_or("column without a type")?;
        let ty = Type::from_name(ty).ok_or_else(|| format!("unknown type {ty} of {name}"))?;
        out.push((name.to_string(), ty));
    }
    Ok(Schema::new(out))
}

fn compile_case(case: &Json) -> Result<Query, String> {
    let query = case["query"].as_str().ok_or("no query")?;
    match case.get("columns").and_then(Json::as_array) {
        Some(columns) => {
            let schema = schema_of(columns)?;
            Query::compile(query, &schema).map_err(|e| format!("against its columns:\n{e}"))
        }
        None => Query::compile_lenient(query).map_err(|e| format!("lenient:\n{e}")),
    }
}

fn normalized(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn every_real_transformation_compiles() {
    let data = include_str!("data/transformations.jsonl");
    let mut names = BTreeSet::new();
    let mut distinct = BTreeSet::new();
    let mut failures = Vec::new();
    let mut with_columns = 0;
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).expect("valid JSON line");
        let name = case["name"].as_str().expect("a name").to_string();
        let source = case["source"].as_str().unwrap_or("");
        assert!(
            source.contains('/') && source.contains(':'),
            "{name}: source must be repository:path, got {source:?}"
        );
        assert!(names.insert(name.clone()), "duplicate name {name}");
        distinct.insert(normalized(case["query"].as_str().unwrap_or("")));
        if case.get("columns").is_some() {
            with_columns += 1;
        }
        if let Err(msg) = compile_case(&case) {
            failures.push((name, msg));
        }
    }
    let mut report = String::new();
    for (name, msg) in &failures {
        if !KNOWN_GAPS.iter().any(|g| g.0 == name) {
            report.push_str(&format!("\n--- {name}: {msg}\n"));
        }
    }
    for (gap, _) in KNOWN_GAPS {
        if !failures.iter().any(|f| f.0 == *gap) {
            report.push_str(&format!(
                "\n--- {gap} is in KNOWN_GAPS but compiles: remove it\n"
            ));
        }
    }
    eprintln!(
        "real transformations: {} kept ({} distinct, {with_columns} with declared columns), {} compile",
        names.len(),
        distinct.len(),
        names.len() - failures.len()
    );
    assert!(distinct.len() >= 30, "at least 30 distinct real queries");
    assert!(report.is_empty(), "{report}");
}

/// The output schema follows the query: a declared-columns query's output names are checked
/// for a few cases whose sources state the target table's columns in the query itself.
#[test]
fn output_columns_of_projecting_transformations() {
    let data = include_str!("data/transformations.jsonl");
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).expect("valid JSON line");
        let name = case["name"].as_str().unwrap_or("?");
        let Ok(q) = compile_case(&case) else { continue };
        let out: Vec<&str> = q.output_schema().iter().map(|c| c.0.as_str()).collect();
        match name {
            "rule_samples_text_log_split" => assert_eq!(
                out,
                ["TimeGenerated", "Code", "Severity", "Module", "Message"],
                "{name}"
            ),
            "rule_samples_logs_ingestion_api" => assert_eq!(
                out,
                [
                    "TimeGenerated",
                    "Computer",
                    "AdditionalContext",
                    "ExtendedColumn"
                ],
                "{name}"
            ),
            "sentinel_box_events" => {
                for gone in ["type", "accessible_by", "created_by", "source"] {
                    assert!(!out.contains(&gone), "{name}: {gone} was projected away");
                }
                assert!(out.contains(&"source_classification_definition"), "{name}");
            }
            "sentinel_auth0" => {
                assert!(!out.contains(&"date") && !out.contains(&"type"), "{name}");
                assert!(
                    out.contains(&"IsMobile") && out.contains(&"EventType"),
                    "{name}"
                );
            }
            _ => {}
        }
    }
}
