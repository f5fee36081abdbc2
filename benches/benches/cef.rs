//! CEF parse and encode throughput (`cargo bench -p mcas-benches --bench cef`).
//!
//! Single lines (an MCAS activity with the `\=` escape in `cs1`, an MCAS alert, a
//! mixed-vendor line) and whole deterministic corpora, all reported in bytes per second.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mcas_benches::corpus;

/// Lines per corpus: about 3.6 MB of MCAS text, 2.8 MB of mixed text.
const CORPUS_LINES: usize = 5_000;

fn first_line_matching<'a>(buf: &'a [u8], needle: &[u8]) -> &'a [u8] {
    corpus::lines(buf)
        .find(|l| l.windows(needle.len()).any(|w| w == needle))
        .expect("the corpus has such a line")
}

fn line_benches(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, line: &[u8]) {
    g.throughput(Throughput::Bytes(line.len() as u64));
    g.bench_function(format!("parse/{name}"), |b| {
        b.iter(|| mcas_cef::parse(black_box(line)).expect("valid CEF"))
    });
    g.bench_function(format!("parse_into_owned/{name}"), |b| {
        b.iter(|| {
            mcas_cef::parse(black_box(line))
                .expect("valid CEF")
                .into_owned()
        })
    });
    let event = mcas_cef::parse(line).expect("valid CEF");
    let mut out = Vec::with_capacity(line.len() * 2);
    g.bench_function(format!("encode/{name}"), |b| {
        b.iter(|| {
            out.clear();
            black_box(&event).encode(&mut out).expect("encodes");
            black_box(out.len())
        })
    });
}

fn corpus_bench(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, buf: &[u8]) {
    let lines: Vec<&[u8]> = corpus::lines(buf).collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    assert!(
        lines.iter().all(|l| mcas_cef::parse(l).is_ok()),
        "every corpus line is CEF"
    );
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(format!("parse_corpus/{name}"), |b| {
        b.iter(|| {
            let mut pairs = 0;
            for l in &lines {
                let e = mcas_cef::parse(black_box(l)).expect("valid CEF");
                pairs += e.extensions().len();
            }
            pairs
        })
    });
}

fn cef(c: &mut Criterion) {
    let mcas = corpus::mcas(CORPUS_LINES, corpus::DEFAULT_SEED);
    let mixed = corpus::mixed(CORPUS_LINES, corpus::DEFAULT_SEED);

    let mut g = c.benchmark_group("cef");
    line_benches(
        &mut g,
        "mcas_activity",
        first_line_matching(&mcas, b"EVENT_CATEGORY_"),
    );
    line_benches(&mut g, "mcas_alert", first_line_matching(&mcas, b"|ALERT_"));
    line_benches(
        &mut g,
        "mixed_fortigate",
        first_line_matching(&mixed, b"|Fortinet|"),
    );
    corpus_bench(&mut g, "mcas", &mcas);
    corpus_bench(&mut g, "mixed", &mixed);
    g.finish();
}

criterion_group!(benches, cef);
criterion_main!(benches);
