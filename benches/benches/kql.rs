//! KQL transformation throughput (`cargo bench -p mcas-benches --bench kql`).
//!
//! The three-predicate filter of issue 14 (`DeviceVendor == ... and DestinationPort in (...)
//! and Activity has ...`) compiled once and run on CommonSecurityLog-shaped JSON rows, in rows
//! per second; plus the same filter followed by a `project-away`, the typical cost
//! transformation. The rows are synthetic and deterministic (a quarter of them pass).
//! `kql_vrl` (with `peers`) runs the filter against the same condition in VRL.
//!
//! `kql_query` measures the query dialect of alert rules (`TableQuery`) on the same rows, with
//! `TimeGenerated` one second apart: the row prefix on each row, and a `summarize ... by
//! SourceIP, bin(TimeGenerated, 1h)` over a window of all of them, beside the three-predicate
//! filter over the same rows as the reference of the same run.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

#[path = "common/kql_rows.rs"]
mod kql_rows;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kql_rows::{COST, FILTER, csl_events, csl_rows, csl_schema, parse_events, rows};
use mcas_kql::{Query, Schema, TableQuery, Type};

fn kql(c: &mut Criterion) {
    let rows = rows();
    let schema = Schema::infer(
        &rows[0],
        &[
            ("TimeGenerated", Type::DateTime),
            ("DestinationPort", Type::Int),
        ],
    );
    run_group(c, "kql", &rows, &schema);
}

/// FILTER and COST over `rows`, in rows per second: `three_predicate_filter` is the filter's
/// decision (`Query::passes`, what the forwarder runs for a query that only filters); the
/// `/output_row` variant and `cost_transformation` also build each kept row's output row
/// (`Query::run`).
fn run_group<R: mcas_kql::Row>(c: &mut Criterion, group: &str, rows: &[R], schema: &Schema) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(rows.len() as u64));
    let filter = Query::compile(FILTER, schema).expect("compiles");
    let kept = rows.iter().filter(|r| filter.passes_at(*r, 0)).count();
    assert!(kept > 0 && kept < rows.len(), "the filter keeps {kept}");
    g.bench_function("three_predicate_filter", |b| {
        b.iter(|| {
            rows.iter()
                .filter(|r| filter.passes_at(black_box(*r), 0))
                .count()
        })
    });
    for (name, text) in [
        ("three_predicate_filter/output_row", FILTER),
        ("cost_transformation", COST),
    ] {
        let q = Query::compile(text, schema).expect("compiles");
        let kept = rows.iter().filter(|r| q.run_at(*r, 0).is_some()).count();
        assert!(
            kept > 0 && kept < rows.len(),
            "{name} keeps some rows: {kept}"
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut kept = 0usize;
                for r in rows {
                    if let Some(out) = q.run_at(black_box(r), 0) {
                        kept += out.iter().count();
                    }
                }
                black_box(kept)
            })
        });
    }
    g.finish();
}

/// The same rows as CEF events, mapped to `CommonSecurityLog` rows by mcas-csl: what the
/// forwarder's `[output] transform` reads (fields directly, strings borrowed).
fn kql_csl(c: &mut Criterion) {
    let lines = csl_events();
    let events = parse_events(&lines);
    let rows = csl_rows(&events);
    run_group(c, "kql_csl", &rows, &csl_schema());
}

/// The summarize of a scheduled rule over a 10,000-row window.
const SUMMARIZE: &str = r#"CommonSecurityLog
| summarize Events = count(), Ports = dcount(DestinationPort), First = min(TimeGenerated)
    by SourceIP, bin(TimeGenerated, 1h)
| where Events > 2"#;

fn kql_query(c: &mut Criterion) {
    let mut rows = rows();
    for (i, r) in rows.iter_mut().enumerate() {
        let t = format!(
            "2024-03-18T{:02}:{:02}:{:02}Z",
            i / 3600,
            (i / 60) % 60,
            i % 60
        );
        r.insert("TimeGenerated".into(), serde_json::Value::String(t));
    }
    let schema = Schema::infer(
        &rows[0],
        &[
            ("TimeGenerated", Type::DateTime),
            ("DestinationPort", Type::Int),
        ],
    );
    let q = TableQuery::compile(SUMMARIZE, &schema).expect("compiles");
    let window: Vec<_> = rows.iter().filter_map(|r| q.row_prefix(r, 0)).collect();
    assert_eq!(window.len(), rows.len());
    let groups = q.run_window(&window, 0).len();
    assert!(groups > 0 && groups < rows.len(), "{groups} groups");
    let filter = Query::compile(FILTER, &schema).expect("compiles");
    let mut g = c.benchmark_group("kql_query");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("reference/three_predicate_filter", |b| {
        b.iter(|| {
            rows.iter()
                .filter(|r| filter.passes_at(black_box(*r), 0))
                .count()
        })
    });
    g.bench_function("row_prefix", |b| {
        b.iter(|| {
            rows.iter()
                .filter_map(|r| q.row_prefix(black_box(r), 0))
                .count()
        })
    });
    g.bench_function("run_window/summarize_by_10k", |b| {
        b.iter(|| q.run_window(black_box(&window), 0).len())
    });
    g.finish();
}

criterion_group!(benches, kql, kql_csl, kql_query);
criterion_main!(benches);
