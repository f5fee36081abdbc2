//! The whole per-event path of the forwarder (`cargo bench -p mcas-benches --bench pipeline`):
//! syslog parse → CEF parse → map to a `CommonSecurityLog` row → JSON into a
//! reused buffer.
//!
//! * `pipeline/corpus_events/{mcas,mixed}` and `pipeline/corpus_bytes/...`: the
//!   same loop over a whole deterministic corpus, reported once in events per
//!   second and once in bytes (of syslog input) per second, with the row
//!   written by `serde_json`.
//! * `.../write_json`: the same, with the row written by the crate's own
//!   `CommonSecurityLog::write_json` (the same bytes; what the forwarder uses).
//! * `.../write_json+transform`: the same with a typical cost transformation (`where` on
//!   two columns, `project-away` of two) run on each mapped row, as `[output] transform`
//!   does (`Query::transform`): rows it keeps are written as it leaves them.
//! * `pipeline/line/...`: one MCAS activity line, end to end and stage by stage
//!   (`syslog`, `cef`, `map`, `json`), to show where the time goes.
//!
//! At the end the bench also times `corpus_events/mcas/write_json` and
//! `.../write_json+transform` over the whole corpus, interleaved (best of several passes, so
//! that load from other processes hits both alike), and prints the ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use mcas_benches::corpus;
use mcas_csl::Context;

/// Lines per corpus (about 3.6 MB of MCAS text).
const CORPUS_LINES: usize = 5_000;

/// A fixed receive time: the forwarder reads the clock once per datagram or
/// read, not per column, so the clock is left out of the measurement.
fn received() -> mcas_cef::jiff::Timestamp {
    mcas_cef::jiff::Timestamp::from_millisecond(1_732_776_284_000).expect("valid instant")
}

/// Which JSON writer serialises the row.
#[derive(Clone, Copy)]
enum Writer {
    SerdeJson,
    WriteJson,
}

/// The transformation of `.../write_json+transform`.
/// On the MCAS corpus it keeps 98% of the rows (those of severity 8 go).
const COST_TRANSFORM: &str = r#"source
| where DeviceVendor == "MCAS" and LogSeverity != "8"
| project-away AdditionalExtensions, DeviceCustomString1"#;

fn csl_schema() -> mcas_kql::Schema {
    mcas_kql::Schema::new(mcas_csl::columns().iter().map(|(n, t)| (*n, t.kql_type())))
}

/// One event through every stage with the transformation after the map.
fn pipeline_transformed(
    line: &[u8],
    received: mcas_cef::jiff::Timestamp,
    query: &mcas_kql::Query,
    out: &mut Vec<u8>,
) -> usize {
    let msg = mcas_syslog::parse(line).expect("syslog");
    let event = mcas_cef::parse(msg.msg()).expect("CEF");
    let ctx = Context::new(received).with_computer(msg.hostname());
    let mapped = mcas_csl::map(&event, &ctx);
    out.clear();
    // As the forwarder runs and writes a transformed row.
    if let Some(row) = query.transform_at(&mapped.row, 0) {
        row.write_json_compact(Some("TimeGenerated"), out);
    }
    out.len()
}

/// One event through every stage; returns the JSON length so nothing is optimised out.
fn pipeline_one(
    line: &[u8],
    received: mcas_cef::jiff::Timestamp,
    writer: Writer,
    out: &mut Vec<u8>,
) -> usize {
    let msg = mcas_syslog::parse(line).expect("syslog");
    let event = mcas_cef::parse(msg.msg()).expect("CEF");
    let ctx = Context::new(received).with_computer(msg.hostname());
    let mapped = mcas_csl::map(&event, &ctx);
    out.clear();
    match writer {
        Writer::SerdeJson => serde_json::to_writer(&mut *out, &mapped.row).expect("serialises"),
        Writer::WriteJson => mapped.row.write_json(out),
    }
    out.len()
}

fn corpus_benches(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, buf: &[u8]) {
    let lines: Vec<&[u8]> = corpus::lines(buf).collect();
    let bytes: u64 = lines.iter().map(|l| l.len() as u64).sum();
    let received = received();
    let mut out = Vec::with_capacity(8 * 1024);
    for (writer, suffix) in [(Writer::SerdeJson, ""), (Writer::WriteJson, "/write_json")] {
        let mut run = |b: &mut criterion::Bencher<'_>| {
            b.iter(|| {
                let mut total = 0;
                for l in &lines {
                    total += pipeline_one(black_box(l), received, writer, &mut out);
                }
                total
            })
        };
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.bench_function(format!("corpus_events/{name}{suffix}"), &mut run);
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(format!("corpus_bytes/{name}{suffix}"), &mut run);
    }
    let query = mcas_kql::Query::compile(COST_TRANSFORM, &csl_schema()).expect("compiles");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function(format!("corpus_events/{name}/write_json+transform"), |b| {
        b.iter(|| {
            let mut total = 0;
            for l in &lines {
                total += pipeline_transformed(black_box(l), received, &query, &mut out);
            }
            total
        })
    });
}

fn line_benches(g: &mut BenchmarkGroup<'_, WallTime>, line: &[u8]) {
    let received = received();
    let mut out = Vec::with_capacity(8 * 1024);
    g.throughput(Throughput::Elements(1));
    g.bench_function("line/mcas_activity/all", |b| {
        b.iter(|| pipeline_one(black_box(line), received, Writer::SerdeJson, &mut out))
    });
    g.bench_function("line/mcas_activity/all/write_json", |b| {
        b.iter(|| pipeline_one(black_box(line), received, Writer::WriteJson, &mut out))
    });
    g.bench_function("line/mcas_activity/syslog", |b| {
        b.iter(|| {
            mcas_syslog::parse(black_box(line))
                .expect("syslog")
                .msg()
                .len()
        })
    });
    let msg = mcas_syslog::parse(line).expect("syslog");
    g.bench_function("line/mcas_activity/cef", |b| {
        b.iter(|| mcas_cef::parse(black_box(msg.msg())).expect("CEF"))
    });
    let event = mcas_cef::parse(msg.msg()).expect("CEF");
    let ctx = Context::new(received).with_computer(msg.hostname());
    g.bench_function("line/mcas_activity/map", |b| {
        b.iter(|| mcas_csl::map(black_box(&event), &ctx))
    });
    let mapped = mcas_csl::map(&event, &ctx);
    g.bench_function("line/mcas_activity/json", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&mapped.row)).expect("serialises");
            out.len()
        })
    });
    g.bench_function("line/mcas_activity/write_json", |b| {
        b.iter(|| {
            out.clear();
            black_box(&mapped.row).write_json(&mut out);
            out.len()
        })
    });
}

fn pipeline(c: &mut Criterion) {
    let mcas = corpus::mcas(CORPUS_LINES, corpus::DEFAULT_SEED);
    let mixed = corpus::mixed(CORPUS_LINES, corpus::DEFAULT_SEED);
    let activity = corpus::lines(&mcas)
        .find(|l| l.windows(15).any(|w| w == b"EVENT_CATEGORY_"))
        .expect("the corpus has an activity line");

    let mut g = c.benchmark_group("pipeline");
    corpus_benches(&mut g, "mcas", &mcas);
    corpus_benches(&mut g, "mixed", &mixed);
    line_benches(&mut g, activity);
    g.finish();
}

/// The transformation's cost as a ratio, from one run: the MCAS corpus through the pipeline
/// with and without it, passes interleaved, best of 25 each.
fn transform_ratio() {
    let mcas = corpus::mcas(CORPUS_LINES, corpus::DEFAULT_SEED);
    let lines: Vec<&[u8]> = corpus::lines(&mcas).collect();
    let received = received();
    let query = mcas_kql::Query::compile(COST_TRANSFORM, &csl_schema()).expect("compiles");
    let mut out = Vec::with_capacity(8 * 1024);
    let mut pass = |transform: bool| {
        let start = Instant::now();
        let mut total = 0;
        for l in &lines {
            total += if transform {
                pipeline_transformed(black_box(l), received, &query, &mut out)
            } else {
                pipeline_one(black_box(l), received, Writer::WriteJson, &mut out)
            };
        }
        black_box(total);
        start.elapsed()
    };
    let (mut plain, mut transformed) = (Duration::MAX, Duration::MAX);
    for _ in 0..25 {
        plain = plain.min(pass(false));
        transformed = transformed.min(pass(true));
    }
    let keps = |d: Duration| lines.len() as f64 / d.as_secs_f64() / 1e3;
    println!(
        "MCAS corpus, {} events: write_json {:.0} K events/s, write_json+transform {:.0} K \
         events/s; ratio {:.3}x",
        lines.len(),
        keps(plain),
        keps(transformed),
        plain.as_secs_f64() / transformed.as_secs_f64()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    pipeline(&mut c);
    c.final_summary();
    // Not when the bench runs as a test (`cargo test --benches`) or lists its benches.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--test" || a == "--list") {
        transform_ratio();
    }
}
