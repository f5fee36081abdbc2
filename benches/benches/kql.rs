//! KQL transformation throughput (`cargo bench -p mcas-benches --bench kql`).
//!
//! The three-predicate filter of issue 14 (`DeviceVendor == ... and DestinationPort in (...)
//! and Activity has ...`) compiled once and run on CommonSecurityLog-shaped JSON rows, in rows
//! per second; plus the same filter followed by a `project-away`, the typical cost
//! transformation. The rows are synthetic and deterministic (a quarter of them pass).
//! `kql_vrl` (with `peers`) runs the filter against the same condition in VRL.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

#[path = "common/kql_rows.rs"]
mod kql_rows;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kql_rows::{COST, FILTER, csl_events, csl_rows, csl_schema, parse_events, rows};
use mcas_kql::{Query, Schema, Type};

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

criterion_group!(benches, kql, kql_csl);
criterion_main!(benches);
