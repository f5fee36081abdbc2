//! The pipeline with routing: the per-event pipeline (syslog → CEF → row → JSON) with one
//! output, against the same with four outputs, each with a `where`, as `[[output]]` tables
//! route: each mapped row is offered to every output, whose compiled predicate decides
//! whether it is serialised into that output's batch.
//!
//! * `routes/mcas/one-output`: every row serialised into one batch buffer (no `where`).
//! * `routes/mcas/four-outputs`: four predicates on `LogSeverity` that split the rows between
//!   the outputs (each row goes to exactly one), four batch buffers.
//! * `routes/mcas/four-outputs-fan-out`: the same four outputs plus a fifth without a
//!   `where` (an archive), so each row is serialised twice.
//!
//! The bench ends by timing one-output and four-outputs over the whole corpus, passes
//! interleaved (best of several, so load from other processes hits both alike), and prints
//! their ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mcas_benches::corpus;
use mcas_csl::Context;

/// Lines of the corpus (about 3.6 MB of MCAS text).
const CORPUS_LINES: usize = 5_000;

/// The four outputs' predicates: a split of the rows by severity, as a SOC routes them.
const WHERES: [&str; 4] = [
    r#"LogSeverity in ("0", "1", "2")"#,
    r#"LogSeverity in ("3", "4", "5")"#,
    r#"LogSeverity in ("6", "7")"#,
    r#"LogSeverity !in ("0", "1", "2", "3", "4", "5", "6", "7")"#,
];

fn received() -> mcas_cef::jiff::Timestamp {
    mcas_cef::jiff::Timestamp::from_millisecond(1_732_776_284_000).expect("valid instant")
}

fn predicates() -> Vec<mcas_kql::Query> {
    let schema = mcas_kql::Schema::new(mcas_csl::columns().iter().map(|(n, t)| (*n, t.kql_type())));
    WHERES
        .iter()
        .map(|w| {
            mcas_kql::Query::compile(&format!("source | where {w}"), &schema).expect("compiles")
        })
        .collect()
}

/// One event to the outputs: `preds[i]` is output i's `where` (None: it takes every row).
/// Returns the bytes written, so nothing is optimised out.
fn route_one(
    line: &[u8],
    received: mcas_cef::jiff::Timestamp,
    preds: &[Option<&mcas_kql::Query>],
    bufs: &mut [Vec<u8>],
) -> usize {
    let msg = mcas_syslog::parse(line).expect("syslog");
    let event = mcas_cef::parse(msg.msg()).expect("CEF");
    let ctx = Context::new(received).with_computer(msg.hostname());
    let mapped = mcas_csl::map(&event, &ctx);
    let mut written = 0;
    for (p, buf) in preds.iter().zip(bufs.iter_mut()) {
        if p.is_some_and(|q| !q.passes_at(&mapped.row, 0)) {
            continue;
        }
        let start = buf.len();
        mapped.row.write_json(buf);
        buf.push(b'\n');
        written += buf.len() - start;
        // A batch closes well before this; keep the buffers small and warm.
        if buf.len() > 1 << 20 {
            buf.clear();
        }
    }
    written
}

fn pass(lines: &[&[u8]], preds: &[Option<&mcas_kql::Query>], bufs: &mut [Vec<u8>]) -> usize {
    let received = received();
    lines
        .iter()
        .map(|l| route_one(black_box(l), received, preds, bufs))
        .sum()
}

fn bench(c: &mut Criterion) {
    let mcas = corpus::mcas(CORPUS_LINES, corpus::DEFAULT_SEED);
    let lines: Vec<&[u8]> = corpus::lines(&mcas).collect();
    let queries = predicates();
    let four: Vec<Option<&mcas_kql::Query>> = queries.iter().map(Some).collect();
    let mut five = four.clone();
    five.push(None);
    let mut bufs: Vec<Vec<u8>> = (0..5).map(|_| Vec::with_capacity(2 << 20)).collect();
    // Every row goes to exactly one of the four.
    let split: usize = lines
        .iter()
        .map(|l| {
            let n = route_one(l, received(), &four, &mut bufs);
            usize::from(n > 0)
        })
        .sum();
    assert_eq!(split, lines.len(), "the four predicates split the corpus");

    let mut g = c.benchmark_group("routes/mcas");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("one-output", |b| {
        b.iter(|| pass(&lines, &[None], &mut bufs[..1]))
    });
    g.bench_function("four-outputs", |b| {
        b.iter(|| pass(&lines, &four, &mut bufs[..4]))
    });
    g.bench_function("four-outputs-fan-out", |b| {
        b.iter(|| pass(&lines, &five, &mut bufs[..5]))
    });
    g.finish();

    // The ratio from one run: passes interleaved, best of 25 each.
    let (mut one, mut routed) = (Duration::MAX, Duration::MAX);
    let mut timed = |preds: &[Option<&mcas_kql::Query>], n: usize| {
        let start = Instant::now();
        black_box(pass(&lines, preds, &mut bufs[..n]));
        start.elapsed()
    };
    for _ in 0..25 {
        one = one.min(timed(&[None], 1));
        routed = routed.min(timed(&four, 4));
    }
    let keps = |d: Duration| lines.len() as f64 / d.as_secs_f64() / 1e3;
    println!(
        "MCAS corpus, {} events: one output {:.0} K events/s, four outputs with a where {:.0} K \
         events/s; ratio {:.3}x",
        lines.len(),
        keps(one),
        keps(routed),
        one.as_secs_f64() / routed.as_secs_f64()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
