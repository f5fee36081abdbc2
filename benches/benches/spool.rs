//! Spool batch file decoding (`cargo bench -p mcas-benches --bench spool`).
//!
//! Input (setup, not timed): CommonSecurityLog rows made from the deterministic MCAS corpus
//! through `mcas-cef` and `mcas-csl`, packed into Logs Ingestion bodies of at most 1,000,000
//! bytes and gzip'd at level 3; the first four bodies (about 110 KB each) encoded into one
//! batch file. Timed: `decode`, which checks the header and every body's CRC-32 and gzip
//! framing. Reference in the same run: a CRC-32 of the whole file, the floor of any verified
//! read. Throughput is in bytes of the file. Sizes are printed once to stderr.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcas_benches::corpus;
use mcas_loganalytics::batch::{LOGS_INGESTION_MAX_BODY, Rows, encode_array, gzip, pack};
use mcas_spool::{Body, BodyKind, decode, encode};

/// Rows in the input: enough for four full bodies.
const ROWS: usize = 4_500;
const BODIES: usize = 4;

/// Four gzip'd JSON array bodies: (rows, raw_len, gzip bytes).
fn gzip_bodies() -> Vec<(u32, u32, Vec<u8>)> {
    let text = corpus::mcas(ROWS, corpus::DEFAULT_SEED);
    let received = mcas_cef::jiff::Timestamp::from_second(1_732_776_284).expect("valid time");
    let ctx = mcas_csl::Context::new(received).with_computer(Some("mcas-agent-01"));
    let mut ndjson = Vec::new();
    for line in corpus::lines(&text) {
        let event = mcas_cef::parse(line).expect("corpus lines are CEF");
        serde_json::to_writer(&mut ndjson, &mcas_csl::map(&event, &ctx).row)
            .expect("rows serialise");
        ndjson.push(b'\n');
    }
    let rows = Rows::from_ndjson(&ndjson);
    let packed = pack(&rows, &rows.valid_indices(), LOGS_INGESTION_MAX_BODY);
    assert!(
        packed.batches.len() >= BODIES,
        "{} bodies",
        packed.batches.len()
    );
    packed.batches[..BODIES]
        .iter()
        .map(|batch| {
            let mut body = Vec::with_capacity(LOGS_INGESTION_MAX_BODY);
            encode_array(&rows, batch, &mut body);
            let raw_len = u32::try_from(body.len()).expect("bodies are under 1 MB");
            let rows = u32::try_from(batch.len()).expect("rows fit u32");
            (rows, raw_len, gzip(&body, 3))
        })
        .collect()
}

fn spool(c: &mut Criterion) {
    let owned = gzip_bodies();
    let bodies: Vec<Body<'_>> = owned
        .iter()
        .map(|(rows, raw_len, data)| Body {
            kind: BodyKind::GzipArray,
            rows: *rows,
            raw_len: *raw_len,
            data,
        })
        .collect();
    let file = encode("sentinel", "mcas", &bodies);
    let sizes: Vec<usize> = owned.iter().map(|b| b.2.len()).collect();
    eprintln!(
        "spool: batch file of {} bytes, {BODIES} gzip bodies of {sizes:?} bytes ({} rows, {} bytes of JSON)",
        file.len(),
        bodies.iter().map(|b| u64::from(b.rows)).sum::<u64>(),
        bodies.iter().map(|b| u64::from(b.raw_len)).sum::<u64>(),
    );
    assert_eq!(decode(&file).expect("a valid file").bodies, bodies);

    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| decode(black_box(&file)).map(|f| f.bodies.len()))
    });
    g.bench_function("crc32_reference", |b| {
        b.iter(|| crc32fast::hash(black_box(&file)))
    });
    g.finish();
}

criterion_group!(benches, spool);
criterion_main!(benches);
