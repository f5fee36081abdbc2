//! Logs Ingestion request packing and gzip throughput
//! (`cargo bench -p mcas-benches --bench batch`).
//!
//! Input: CommonSecurityLog JSON rows, one per line, made by mapping the
//! deterministic MCAS corpus through `mcas-cef` and `mcas-csl` (setup, not
//! timed). Timed: split the NDJSON into rows, pack them into bodies of at
//! most 1,000,000 uncompressed bytes, write each JSON array and gzip it.
//! Throughput is in bytes of uncompressed JSON. The compression ratio of
//! each level is printed once to stderr.
//!
//! With `--features peers`, the same bodies are also compressed with
//! `miniz_oxide` (flate2's default pure-Rust backend) at the same level, to
//! compare against the `zlib-rs` backend the client uses.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcas_benches::corpus;
use mcas_loganalytics::batch::{LOGS_INGESTION_MAX_BODY, Rows, encode_array, gzip, pack};

/// Rows in the input: about 9 MB of JSON.
const ROWS: usize = 8_000;

fn csl_ndjson(lines: usize) -> Vec<u8> {
    let text = corpus::mcas(lines, corpus::DEFAULT_SEED);
    let received = mcas_cef::jiff::Timestamp::from_second(1_732_776_284).expect("valid time");
    let mut out = Vec::with_capacity(lines * 1200);
    for line in corpus::lines(&text) {
        let event = mcas_cef::parse(line).expect("corpus lines are CEF");
        let ctx = mcas_csl::Context::new(received).with_computer(Some("mcas-agent-01"));
        let mapped = mcas_csl::map(&event, &ctx);
        serde_json::to_writer(&mut out, &mapped.row).expect("rows serialise");
        out.push(b'\n');
    }
    out
}

/// Packs and gzips every body; returns the compressed bytes.
fn pack_and_gzip(ndjson: &[u8], level: Option<u32>) -> usize {
    let rows = Rows::from_ndjson(ndjson);
    let packed = pack(&rows, &rows.valid_indices(), LOGS_INGESTION_MAX_BODY);
    let mut body = Vec::with_capacity(LOGS_INGESTION_MAX_BODY);
    let mut out = 0;
    for batch in &packed.batches {
        body.clear();
        encode_array(&rows, batch, &mut body);
        out += match level {
            Some(l) => gzip(&body, l).len(),
            None => body.len(),
        };
    }
    out
}

fn batch(c: &mut Criterion) {
    let ndjson = csl_ndjson(ROWS);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(ndjson.len() as u64));
    g.sample_size(20);

    let json_bytes = pack_and_gzip(&ndjson, None);
    for level in [1, 3, 6] {
        let z = pack_and_gzip(&ndjson, Some(level));
        eprintln!(
            "batch: {} rows, {} bytes of JSON bodies, gzip level {level}: {z} bytes, ratio {:.2}:1",
            ROWS,
            json_bytes,
            json_bytes as f64 / z as f64
        );
    }

    g.bench_function("pack", |b| {
        b.iter(|| pack_and_gzip(black_box(&ndjson), None))
    });
    for level in [1, 3, 6] {
        g.bench_function(format!("pack_gzip/level{level}"), |b| {
            b.iter(|| pack_and_gzip(black_box(&ndjson), Some(level)))
        });
    }

    // The `send<T: Serialize>` path: serialise mapped rows, then pack and gzip.
    let text = corpus::mcas(ROWS, corpus::DEFAULT_SEED);
    let received = mcas_cef::jiff::Timestamp::from_second(1_732_776_284).expect("valid time");
    let events: Vec<_> = corpus::lines(&text)
        .map(|l| mcas_cef::parse(l).expect("corpus lines are CEF"))
        .collect();
    let ctx = mcas_csl::Context::new(received).with_computer(Some("mcas-agent-01"));
    let mapped: Vec<_> = events.iter().map(|e| mcas_csl::map(e, &ctx).row).collect();
    g.bench_function("serialize_pack_gzip/level3", |b| {
        b.iter(|| {
            let rows = Rows::serialize(black_box(&mapped));
            let packed = pack(&rows, &rows.valid_indices(), LOGS_INGESTION_MAX_BODY);
            let mut body = Vec::with_capacity(LOGS_INGESTION_MAX_BODY);
            let mut out = 0;
            for batch in &packed.batches {
                body.clear();
                encode_array(&rows, batch, &mut body);
                out += gzip(&body, 3).len();
            }
            out
        })
    });

    #[cfg(feature = "peers")]
    {
        let rows = Rows::from_ndjson(&ndjson);
        let packed = pack(&rows, &rows.valid_indices(), LOGS_INGESTION_MAX_BODY);
        for level in [1u8, 6] {
            g.bench_function(format!("pack_deflate_miniz_oxide/level{level}"), |b| {
                b.iter(|| {
                    let mut body = Vec::with_capacity(LOGS_INGESTION_MAX_BODY);
                    let mut out = 0;
                    for batch in &packed.batches {
                        body.clear();
                        encode_array(&rows, batch, &mut body);
                        out += miniz_oxide::deflate::compress_to_vec(&body, level).len();
                    }
                    black_box(out)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, batch);
criterion_main!(benches);
