//! Runs every case of `tests/data/kql.jsonl` (the shared vectors) and of
//! `tests/data/reference.jsonl` (cases built from the Kusto reference pages' examples, same
//! format) and names each mismatch.
//!
//! Comparison rules (from the vectors' README): every output column must be present and no
//! other; numbers compare by value (reals with a relative tolerance of 1e-9); datetimes compare
//! as instants; dynamic objects compare with free key order; rows compare in order.

#![allow(missing_docs)]

use mcas_kql::{Query, Row, Schema, SourceKind, Type, Value};
use serde_json::{Map, Value as Json};

/// A JSON row with a layout: its columns read by place (`Row::value_at`).
struct Placed<'r> {
    row: &'r Map<String, Json>,
    layout: &'static [(&'static str, Type)],
}

impl Row for Placed<'_> {
    fn get(&self, column: &str) -> Option<Value<'_>> {
        Row::get(self.row, column)
    }

    fn layout(&self) -> Option<&'static [(&'static str, Type)]> {
        Some(self.layout)
    }

    fn value_at(&self, index: usize) -> Option<Value<'_>> {
        Row::get(self.row, self.layout[index].0)
    }
}

/// Runs a `source` query on rows read by place, with the columns in schema order and
/// reversed, and checks it gives what it gives on the rows read by name.
fn check_by_place(
    query: &str,
    schema: &Schema,
    rows: &[Map<String, Json>],
    now: i64,
    by_name: &[Json],
) -> Result<(), String> {
    // Leaked: a layout is a static list. A few hundred small cases.
    let names: Vec<(&'static str, Type)> = schema
        .columns()
        .iter()
        .map(|(n, t)| (&*Box::leak(n.clone().into_boxed_str()), *t))
        .collect();
    let mut reversed = names.clone();
    reversed.reverse();
    for layout in [names, reversed] {
        let layout: &'static [(&'static str, Type)] = Box::leak(layout.into_boxed_slice());
        let q = Query::compile(query, schema).map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        for row in rows {
            let placed = Placed { row, layout };
            let out = q.run_at(&placed, now);
            if out.is_some() != q.passes_at(&placed, now) {
                return Err(format!("passes_at disagrees with run_at on {row:?}"));
            }
            // `transform` (the row does not write itself here: the output row is built).
            let written = |w: &dyn Fn(&mut Vec<u8>)| {
                let mut buf = Vec::new();
                w(&mut buf);
                buf
            };
            let want = out
                .as_ref()
                .map(|o| written(&|b| o.write_json_compact(Some("A"), b)));
            let transformed = q
                .transform_at(&placed, now)
                .map(|t| written(&|b| t.write_json_compact(Some("A"), b)));
            if transformed != want {
                return Err(format!("transform_at disagrees with run_at on {row:?}"));
            }
            got.extend(out.map(|o| Json::Object(o.to_json())));
        }
        if got != by_name {
            return Err(format!(
                "read by place: {}\n   by name: {}",
                serde_json::to_string(&got).unwrap_or_default(),
                serde_json::to_string(by_name).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Cases that do not pass yet, each with the reason. The test fails if this list is not exact,
/// so a gap cannot grow, or stay listed once fixed, silently.
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// The same, for `reference.jsonl`.
const REFERENCE_GAPS: &[(&str, &str)] = &[];

fn datetime_instant(s: &str) -> Option<(i64, i64)> {
    // "YYYY-MM-DDTHH:MM:SS[.f+]Z" → (seconds-ish key, fraction in 100 ns)
    let s = s.strip_suffix('Z')?;
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, f),
        None => (s, ""),
    };
    if main.len() != 19 || main.as_bytes()[10] != b'T' {
        return None;
    }
    let digits: String = main.chars().filter(char::is_ascii_digit).collect();
    let key: i64 = digits.parse().ok()?;
    let mut f = frac.to_string();
    if !f.chars().all(|c| c.is_ascii_digit()) || f.len() > 7 {
        return None;
    }
    while f.len() < 7 {
        f.push('0');
    }
    Some((key, f.parse().ok()?))
}

fn same(expected: &Json, actual: &Json) -> bool {
    match (expected, actual) {
        (Json::Number(a), Json::Number(b)) => {
            if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
                return x == y;
            }
            let (x, y) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Json::String(a), Json::String(b)) => {
            if a == b {
                return true;
            }
            matches!((datetime_instant(a), datetime_instant(b)), (Some(x), Some(y)) if x == y)
        }
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => expected == actual,
    }
}

fn run_case(case: &Json) -> Result<(), String> {
    let query = case["query"].as_str().ok_or("no query")?;
    let types: Vec<(String, Type)> = case
        .get("input_types")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Type::from_name(v.as_str().unwrap_or("")).expect("known type"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let overrides: Vec<(&str, Type)> = types.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let rows: Vec<Map<String, Json>> = case
        .get("input")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .map(|r| r.as_object().cloned().expect("object row"))
                .collect()
        })
        .unwrap_or_default();
    let schema = rows
        .first()
        .map(|r| Schema::infer(r, &overrides))
        .unwrap_or_default();
    let compiled = Query::compile(query, &schema);
    if case.get("expect_error").is_some() {
        return match compiled {
            Err(_) => Ok(()),
            Ok(_) => Err("compiled, but the case expects an error".into()),
        };
    }
    let q = compiled.map_err(|e| format!("compile error:\n{e}"))?;
    let now = 638_400_000_000_000_000 - 621_355_968_000_000_000;
    let actual: Vec<Json> = match q.source_kind() {
        SourceKind::Input => rows
            .iter()
            .filter_map(|r| q.run_at(r, now))
            .map(|o| Json::Object(o.to_json()))
            .collect(),
        _ => q
            .run_without_input_at(now)
            .iter()
            .map(|o| Json::Object(o.to_json()))
            .collect(),
    };
    if q.source_kind() == SourceKind::Input {
        check_by_place(query, &schema, &rows, now, &actual)?;
    }
    let expected = case["expect"].as_array().ok_or("no expect")?;
    if expected.len() != actual.len() || !expected.iter().zip(&actual).all(|(e, a)| same(e, a)) {
        return Err(format!(
            "expected {}\n     got {}",
            serde_json::to_string(expected).unwrap_or_default(),
            serde_json::to_string(&actual).unwrap_or_default()
        ));
    }
    Ok(())
}

/// Runs every case of a JSONL file; returns the number of cases, how many pass, and a report of
/// every failure not in `gaps` and every gap that passes.
fn run_file(data: &str, gaps: &[(&str, &str)]) -> (usize, usize, String) {
    let mut failures = Vec::new();
    let mut total = 0;
    let mut names = std::collections::BTreeSet::new();
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).expect("valid JSON line");
        let name = case["name"].as_str().unwrap_or("?").to_string();
        assert!(names.insert(name.clone()), "duplicate case name {name}");
        total += 1;
        if let Err(msg) = run_case(&case) {
            failures.push((name, msg));
        }
    }
    let failed: Vec<&str> = failures.iter().map(|f| f.0.as_str()).collect();
    let mut report = String::new();
    for (name, msg) in &failures {
        if !gaps.iter().any(|g| g.0 == name) {
            report.push_str(&format!("\n--- {name}: {msg}\n"));
        }
    }
    for (gap, _) in gaps {
        if !failed.contains(gap) {
            report.push_str(&format!(
                "\n--- {gap} is listed as a known gap but passes: remove it\n"
            ));
        }
    }
    (total, total - failures.len(), report)
}

#[test]
fn every_vector() {
    let (total, passed, report) = run_file(include_str!("data/kql.jsonl"), KNOWN_GAPS);
    eprintln!("kql vectors: {passed} of {total} pass");
    assert_eq!(total, 176, "the vector file has 176 cases");
    assert!(report.is_empty(), "{report}");
}

#[test]
fn every_reference_case() {
    let data = include_str!("data/reference.jsonl");
    let (total, passed, report) = run_file(data, REFERENCE_GAPS);
    eprintln!("kusto reference cases: {passed} of {total} pass");
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).expect("valid JSON line");
        let source = case["source"].as_str().unwrap_or("");
        assert!(
            source.starts_with("data-explorer/kusto/query/") || source.starts_with("hand: "),
            "{}: a reference case names its page or its rule, got {source:?}",
            case["name"]
        );
    }
    assert!(report.is_empty(), "{report}");
}
