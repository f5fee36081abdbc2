//! mcas-cef against Vector's `parse_cef`, run as a compiled VRL program the way Vector's
//! `remap` transform runs it, on the same MCAS corpus, in one run:
//!
//! ```text
//! cargo bench -p mcas-benches --features peers --bench compare
//! ```
//!
//! Criterion reports both throughputs; at the end the bench also times both over the
//! whole corpus, interleaved (best of several passes), and prints the ratio.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mcas_benches::corpus;
use vrl::compiler::state::RuntimeState;
use vrl::compiler::{Context, Program, TargetValue, TimeZone};
use vrl::value::{Secrets, Value};

/// About 0.7 MB of MCAS lines: VRL needs tens of milliseconds per pass.
const LINES: usize = 1_000;

fn vrl_program() -> Program {
    // `parse_cef` skips everything before `CEF:`, so the syslog prefix stays on.
    let functions = vrl::stdlib::all();
    vrl::compiler::compile(". = parse_cef!(.message)", &functions)
        .expect("the program compiles")
        .program
}

/// Runs the program on one line as Vector does: the event is a map with `message`.
/// Returns the number of fields, or 0 when `parse_cef` failed.
fn run_vrl(program: &Program, tz: &TimeZone, line: &[u8]) -> usize {
    let mut event = BTreeMap::new();
    event.insert("message".into(), Value::Bytes(bytes_of(line)));
    let mut target = TargetValue {
        value: Value::Object(event),
        metadata: Value::Object(BTreeMap::new()),
        secrets: Secrets::default(),
    };
    let mut state = RuntimeState::default();
    let mut ctx = Context::new(&mut target, &mut state, tz);
    match program.resolve(&mut ctx) {
        Ok(_) => target.value.as_object().map_or(0, BTreeMap::len),
        Err(_) => 0,
    }
}

fn bytes_of(line: &[u8]) -> vrl::prelude::Bytes {
    vrl::prelude::Bytes::copy_from_slice(line)
}

fn run_ours(line: &[u8]) -> usize {
    mcas_cef::parse(line).map_or(0, |e| e.extensions().len() + 7)
}

fn pass(lines: &[&[u8]], f: &mut impl FnMut(&[u8]) -> usize) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    for l in lines {
        n += f(black_box(l));
    }
    black_box(n);
    start.elapsed()
}

fn main() {
    let buf = corpus::mcas(LINES, corpus::DEFAULT_SEED);
    let lines: Vec<&[u8]> = corpus::lines(&buf).collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let program = vrl_program();
    let tz = TimeZone::default();

    let failed = lines
        .iter()
        .filter(|l| run_vrl(&program, &tz, l) == 0)
        .count();
    assert!(lines.iter().all(|l| mcas_cef::parse(l).is_ok()));

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("compare/mcas_corpus");
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("mcas_cef", |b| {
            b.iter(|| lines.iter().map(|l| run_ours(black_box(l))).sum::<usize>())
        });
        g.sample_size(10);
        g.bench_function("vrl_parse_cef", |b| {
            b.iter(|| {
                lines
                    .iter()
                    .map(|l| run_vrl(&program, &tz, black_box(l)))
                    .sum::<usize>()
            })
        });
        g.finish();
    }
    c.final_summary();

    // The ratio, measured here so it comes from one run: interleaved passes, best of 7.
    let (mut ours, mut theirs) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        ours = ours.min(pass(&lines, &mut run_ours));
        theirs = theirs.min(pass(&lines, &mut |l| run_vrl(&program, &tz, l)));
    }
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "MCAS corpus, {} lines, {bytes} bytes: mcas-cef {:.0} MB/s, vrl parse_cef {:.1} MB/s \
         ({failed} lines rejected by vrl); ratio {:.0}x",
        lines.len(),
        mbps(ours),
        mbps(theirs),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
