//! Syslog header parse and RFC 6587 framing throughput
//! (`cargo bench -p mcas-benches --bench syslog`, add `--features peers` for the peer).
//!
//! Header parse runs over the whole deterministic MCAS and mixed corpora, in bytes per
//! second. With the `peers` feature, `syslog_loose` parses the same lines in the same run
//! and the ratio of mean times is printed at the end (above 1.0 means mcas-syslog is faster).
//! Framing decodes the corpus as one TCP stream, LF-terminated and octet-counted, fed to
//! the codec in 64 KiB reads.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use std::hint::black_box;

use bytes::BytesMut;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mcas_benches::corpus;
use mcas_syslog::codec::{Framing, SyslogCodec};
use tokio_util::codec::Decoder;

/// Lines per corpus (about 3.6 MB of MCAS text, 2.8 MB of mixed text).
const CORPUS_LINES: usize = 5_000;
/// Bytes handed to the decoder per simulated socket read.
const READ: usize = 64 * 1024;

fn parse_benches(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, buf: &[u8]) {
    let lines: Vec<&[u8]> = corpus::lines(buf).collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    assert!(
        lines
            .iter()
            .all(|l| mcas_syslog::parse(l).is_ok_and(|m| m.msg().starts_with(b"CEF:"))),
        "every corpus line parses and its message starts with CEF:"
    );
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(format!("header_parse/{name}"), |b| {
        b.iter(|| {
            let mut n = 0;
            for l in &lines {
                let m = mcas_syslog::parse(black_box(l)).expect("parses");
                n += m.msg().len() + m.hostname().map_or(0, str::len);
            }
            n
        })
    });
    // A fixed reference time, as a listener passes the receive time: no clock read per line.
    let mut cfg = mcas_syslog::ParserConfig::new();
    cfg.reference_time(jiff::Timestamp::from_second(1_732_776_284).expect("in range"));
    g.bench_function(format!("header_parse_with_timestamp/{name}"), |b| {
        b.iter(|| {
            let mut n = 0i64;
            for l in &lines {
                let m = mcas_syslog::parse_with(&cfg, black_box(l)).expect("parses");
                n += m.timestamp().map_or(0, |t| t.as_second());
            }
            n
        })
    });
    #[cfg(feature = "peers")]
    {
        let text: Vec<&str> = lines
            .iter()
            .map(|l| std::str::from_utf8(l).expect("the corpus is UTF-8"))
            .collect();
        g.bench_function(format!("syslog_loose_parse/{name}"), |b| {
            b.iter(|| {
                let mut n = 0;
                for l in &text {
                    let m =
                        syslog_loose::parse_message(black_box(l), syslog_loose::Variant::Either);
                    n += m.msg.len() + m.hostname.map_or(0, str::len);
                }
                n
            })
        });
    }
}

fn framing_benches(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, buf: &[u8]) {
    let lines: Vec<&[u8]> = corpus::lines(buf).collect();
    let mut octet = BytesMut::new();
    let encoder = SyslogCodec::new(Framing::OctetCounting);
    for l in &lines {
        encoder.encode_frame(l, &mut octet);
    }
    for (label, framing, stream) in [
        ("lf", Framing::NonTransparent, buf),
        ("lf_auto", Framing::Auto, buf),
        ("octet", Framing::OctetCounting, &octet[..]),
        ("octet_auto", Framing::Auto, &octet[..]),
    ] {
        assert_eq!(
            decode_stream(framing, stream),
            lines.len(),
            "{label}: one frame per line"
        );
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function(format!("framing_{label}/{name}"), |b| {
            b.iter(|| decode_stream(framing, black_box(stream)))
        });
    }
}

fn decode_stream(framing: Framing, stream: &[u8]) -> usize {
    let mut codec = SyslogCodec::new(framing);
    let mut buf = BytesMut::with_capacity(2 * READ);
    let mut frames = 0;
    for chunk in stream.chunks(READ) {
        buf.extend_from_slice(chunk);
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            frames += usize::from(!f.data().is_empty());
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).expect("decode") {
        frames += usize::from(!f.data().is_empty());
    }
    frames
}

fn syslog(c: &mut Criterion) {
    let mcas = corpus::mcas(CORPUS_LINES, corpus::DEFAULT_SEED);
    let mixed = corpus::mixed(CORPUS_LINES, corpus::DEFAULT_SEED);
    let mut g = c.benchmark_group("syslog");
    parse_benches(&mut g, "mcas", &mcas);
    parse_benches(&mut g, "mixed", &mixed);
    framing_benches(&mut g, "mcas", &mcas);
    framing_benches(&mut g, "mixed", &mixed);
    g.finish();
    #[cfg(feature = "peers")]
    print_ratios();
}

/// Reads the mean times criterion just saved and prints syslog_loose / mcas-syslog.
#[cfg(feature = "peers")]
fn print_ratios() {
    let Some(dir) = criterion_dir() else {
        println!("ratio: criterion output directory not found");
        return;
    };
    for corpus in ["mcas", "mixed"] {
        let peer = mean_ns(&dir, &format!("syslog_loose_parse_{corpus}"));
        for ours in ["header_parse", "header_parse_with_timestamp"] {
            match (mean_ns(&dir, &format!("{ours}_{corpus}")), peer) {
                (Some(o), Some(p)) => println!(
                    "ratio syslog/{corpus}: {ours} is {:.2}x syslog_loose (mean {:.3} ms vs {:.3} ms per corpus)",
                    p / o,
                    o / 1e6,
                    p / 1e6
                ),
                _ => println!("ratio syslog/{corpus}/{ours}: estimates not found (filtered out?)"),
            }
        }
    }
}

#[cfg(feature = "peers")]
fn mean_ns(dir: &std::path::Path, id: &str) -> Option<f64> {
    let path = dir
        .join("syslog")
        .join(id)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// The directory criterion writes to, found the way criterion finds it.
#[cfg(feature = "peers")]
fn criterion_dir() -> Option<std::path::PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(std::path::PathBuf::from(target).join("criterion"));
    }
    let out = std::process::Command::new(std::env::var_os("CARGO")?)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(std::path::PathBuf::from(v["target_directory"].as_str()?).join("criterion"))
}

criterion_group!(benches, syslog);
criterion_main!(benches);
