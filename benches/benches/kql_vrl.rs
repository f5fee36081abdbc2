//! Issue 14's three-predicate filter in mcas-kql against the same condition in VRL (Vector's
//! language, compiled once and run the way Vector's `filter` transform runs a VRL condition),
//! on the same rows, in one run:
//!
//! ```text
//! cargo bench -p mcas-benches --features peers --bench kql_vrl
//! ```
//!
//! Ours reads mapped `CommonSecurityLog` rows in place (what the forwarder's
//! `[output] transform` reads); VRL reads the same rows as VRL objects (what a Vector event
//! holds after its CEF is parsed), built before the measurement. Both must keep the same rows.
//! Criterion reports both throughputs; at the end the bench also times both over all the
//! rows, interleaved (best of several passes), and prints the ratio.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

#[path = "common/kql_rows.rs"]
#[allow(dead_code, reason = "each KQL bench uses a part of the shared rows")]
mod kql_rows;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use kql_rows::{FILTER, csl_events, csl_rows, csl_schema, parse_events};
use mcas_kql::Query;
use vrl::compiler::state::RuntimeState;
use vrl::compiler::{Context, Program, TargetValue, TimeZone};
use vrl::value::{Secrets, Value};

/// FILTER in VRL. Kusto's `has "deny"` is a case-insensitive match of the whole term: not
/// preceded or followed by a letter or digit (`char::is_alphanumeric`).
const VRL_FILTER: &str = r#".DeviceVendor == "Palo Alto Networks" && includes([22, 23, 445, 3389], .DestinationPort) && match(string(.Activity) ?? "", r'(?i)(?:^|[^\p{Alphabetic}\p{N}])deny(?:[^\p{Alphabetic}\p{N}]|$)')"#;

fn vrl_program() -> Program {
    let functions = vrl::stdlib::all();
    vrl::compiler::compile(VRL_FILTER, &functions)
        .expect("the condition compiles")
        .program
}

/// The condition on one event: true when it holds (an error counts as false, as in
/// Vector's `filter`).
fn run_vrl(
    program: &Program,
    state: &mut RuntimeState,
    tz: &TimeZone,
    target: &mut TargetValue,
) -> bool {
    state.clear();
    let mut ctx = Context::new(target, state, tz);
    matches!(program.resolve(&mut ctx), Ok(Value::Boolean(true)))
}

fn pass(n: usize, f: &mut impl FnMut(usize) -> bool) -> Duration {
    let start = Instant::now();
    let mut kept = 0;
    for i in 0..n {
        kept += usize::from(f(black_box(i)));
    }
    black_box(kept);
    start.elapsed()
}

fn main() {
    let lines = csl_events();
    let events = parse_events(&lines);
    let rows = csl_rows(&events);
    let query = Query::compile(FILTER, &csl_schema()).expect("compiles");

    let program = vrl_program();
    let tz = TimeZone::default();
    let mut state = RuntimeState::default();
    let mut targets: Vec<TargetValue> = rows
        .iter()
        .map(|r| TargetValue {
            value: Value::from(serde_json::to_value(r).expect("a row serialises")),
            metadata: Value::Object(BTreeMap::new()),
            secrets: Secrets::default(),
        })
        .collect();

    // The same rows pass both.
    let ours: Vec<bool> = rows.iter().map(|r| query.passes_at(r, 0)).collect();
    let theirs: Vec<bool> = targets
        .iter_mut()
        .map(|t| run_vrl(&program, &mut state, &tz, t))
        .collect();
    assert_eq!(ours, theirs, "mcas-kql and VRL keep the same rows");
    let kept = ours.iter().filter(|k| **k).count();
    assert!(kept > 0 && kept < rows.len(), "the filter keeps {kept}");

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("kql_vrl/three_predicate_filter");
        g.throughput(Throughput::Elements(rows.len() as u64));
        g.bench_function("mcas_kql", |b| {
            b.iter(|| {
                rows.iter()
                    .filter(|r| query.passes_at(black_box(*r), 0))
                    .count()
            })
        });
        g.bench_function("vrl", |b| {
            b.iter(|| {
                let mut kept = 0;
                for t in targets.iter_mut() {
                    kept += usize::from(run_vrl(&program, &mut state, &tz, black_box(t)));
                }
                kept
            })
        });
        g.finish();
    }
    c.final_summary();

    // The ratio, measured here so it comes from one run: interleaved passes, best of 9.
    let n = rows.len();
    let (mut ours, mut theirs) = (Duration::MAX, Duration::MAX);
    for _ in 0..9 {
        ours = ours.min(pass(n, &mut |i| query.passes_at(&rows[i], 0)));
        theirs = theirs.min(pass(n, &mut |i| {
            run_vrl(&program, &mut state, &tz, &mut targets[i])
        }));
    }
    let mrows = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!(
        "three-predicate filter, {n} CommonSecurityLog rows ({kept} kept): mcas-kql {:.2} M rows/s, \
         vrl {:.2} M rows/s; ratio {:.2}x",
        mrows(ours),
        mrows(theirs),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
