//! Syslog header parse and RFC 6587 framing throughput
//! (`cargo bench -p mcas-benches --bench syslog`, add `--features peers` for the peer).
//!
//! Header parse runs over the whole deterministic MCAS and mixed corpora, in bytes per
//! second. With the `peers` feature, `syslog_loose` parses the same lines in the same run
//! and the ratio of mean times is printed at the end (above 1.0 means mcas-syslog is faster).
//! Framing decodes the corpus as one TCP stream, LF-terminated and octet-counted, fed to
//! the codec in 64 KiB reads.
//!
//! RELP decodes the MCAS corpus as one RELP session (`open`, one `syslog` frame per line,
//! `close`) in 64 KiB reads, with the pure `FrameDecoder` (frames borrowed from the read
//! buffer) and with the tokio-util `RelpCodec`, and the octet-counting decoder decodes
//! the same lines in the same run as the reference. Throughput is in frames per second;
//! the summary at the end prints frames/s, wire and payload bytes/s, and the ratio of
//! each RELP decoder to octet counting (above 1.0 means faster than the reference).

#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use std::hint::black_box;

use bytes::BytesMut;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mcas_benches::corpus;
use mcas_syslog::codec::{Framing, SyslogCodec};
use mcas_syslog::relp::{self, FrameDecoder, RelpCodec, Txnr};
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

/// The same lines as one RELP session, one octet-counted stream, and their byte count.
struct RelpStreams {
    relp: Vec<u8>,
    octet: Vec<u8>,
    lines: usize,
    payload: usize,
}

fn relp_streams(buf: &[u8]) -> RelpStreams {
    let lines: Vec<&[u8]> = corpus::lines(buf).collect();
    let mut relp = Vec::new();
    relp::encode_open(
        Txnr::FIRST,
        "librelp,1.11.0,http://librelp.adiscon.com",
        &mut relp,
    );
    let mut txnr = Txnr::FIRST;
    for l in &lines {
        txnr = txnr.next();
        relp::encode_syslog(txnr, l, &mut relp).expect("a corpus line fits a frame");
    }
    relp::encode_close(txnr.next(), &mut relp);
    let mut octet = BytesMut::new();
    let encoder = SyslogCodec::new(Framing::OctetCounting);
    for l in &lines {
        encoder.encode_frame(l, &mut octet);
    }
    RelpStreams {
        relp,
        octet: octet.to_vec(),
        lines: lines.len(),
        payload: lines.iter().map(|l| l.len()).sum(),
    }
}

/// The pure decoder as a listener would drive it: a read buffer compacted once per
/// read, frames borrowed from it. Returns the `syslog` frames and their data bytes.
fn relp_decode(stream: &[u8]) -> (usize, usize) {
    let mut decoder = FrameDecoder::new();
    let mut buf: Vec<u8> = Vec::with_capacity(2 * READ);
    let mut at = 0;
    let (mut frames, mut bytes) = (0, 0);
    for chunk in stream.chunks(READ) {
        buf.drain(..at);
        at = 0;
        buf.extend_from_slice(chunk);
        while let Some((frame, len)) = decoder.decode(&buf[at..]).expect("decode") {
            if frame.command() == relp::Command::SYSLOG {
                frames += 1;
                bytes += frame.data().len();
            }
            at += len;
        }
    }
    decoder.finish(&buf[at..]).expect("whole frames");
    (frames, bytes)
}

/// The tokio-util codec: each frame's data is a `Bytes` slice of the read buffer.
fn relp_codec(stream: &[u8]) -> (usize, usize) {
    let mut codec = RelpCodec::new();
    let mut buf = BytesMut::with_capacity(2 * READ);
    let (mut frames, mut bytes) = (0, 0);
    for chunk in stream.chunks(READ) {
        buf.extend_from_slice(chunk);
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            if f.command() == relp::Command::SYSLOG {
                frames += 1;
                bytes += f.data().len();
            }
        }
    }
    assert!(codec.decode_eof(&mut buf).expect("whole frames").is_none());
    (frames, bytes)
}

fn relp_benches(c: &mut Criterion, name: &str, buf: &[u8]) -> RelpStreams {
    let s = relp_streams(buf);
    let want = (s.lines, s.payload);
    assert_eq!(relp_decode(&s.relp), want, "every line, once");
    assert_eq!(relp_codec(&s.relp), want, "every line, once");
    assert_eq!(decode_stream(Framing::OctetCounting, &s.octet), s.lines);
    let mut g = c.benchmark_group("relp");
    g.throughput(Throughput::Elements(s.lines as u64));
    g.bench_function(format!("relp_decoder/{name}"), |b| {
        b.iter(|| relp_decode(black_box(&s.relp)))
    });
    g.bench_function(format!("relp_codec/{name}"), |b| {
        b.iter(|| relp_codec(black_box(&s.relp)))
    });
    g.bench_function(format!("octet_reference/{name}"), |b| {
        b.iter(|| decode_stream(Framing::OctetCounting, black_box(&s.octet)))
    });
    g.finish();
    s
}

/// Reads the mean times criterion just saved and prints frames/s, bytes/s and the
/// ratio of each RELP decoder to the octet-counting reference.
fn print_relp_summary(name: &str, s: &RelpStreams) {
    let Some(dir) = criterion_dir() else {
        println!("relp: criterion output directory not found");
        return;
    };
    let mean = |id: &str| mean_ns(&dir, "relp", &format!("{id}_{name}"));
    let Some(reference) = mean("octet_reference") else {
        println!("relp/{name}: reference estimate not found (filtered out?)");
        return;
    };
    let rate = |ns: f64, n: usize| n as f64 / (ns / 1e9);
    println!(
        "relp/{name}: octet_reference {:.2} M frames/s, {:.0} MiB/s wire ({} frames, {} payload bytes)",
        rate(reference, s.lines) / 1e6,
        rate(reference, s.octet.len()) / (1 << 20) as f64,
        s.lines,
        s.payload
    );
    for id in ["relp_decoder", "relp_codec"] {
        match mean(id) {
            Some(ns) => println!(
                "relp/{name}: {id} {:.2} M frames/s, {:.0} MiB/s wire, {:.0} MiB/s payload; {:.2}x octet counting (mean {:.3} ms vs {:.3} ms)",
                rate(ns, s.lines) / 1e6,
                rate(ns, s.relp.len()) / (1 << 20) as f64,
                rate(ns, s.payload) / (1 << 20) as f64,
                reference / ns,
                ns / 1e6,
                reference / 1e6
            ),
            None => println!("relp/{name}/{id}: estimate not found (filtered out?)"),
        }
    }
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
    let streams = relp_benches(c, "mcas", &mcas);
    #[cfg(feature = "peers")]
    print_ratios();
    print_relp_summary("mcas", &streams);
}

/// Reads the mean times criterion just saved and prints syslog_loose / mcas-syslog.
#[cfg(feature = "peers")]
fn print_ratios() {
    let Some(dir) = criterion_dir() else {
        println!("ratio: criterion output directory not found");
        return;
    };
    for corpus in ["mcas", "mixed"] {
        let peer = mean_ns(&dir, "syslog", &format!("syslog_loose_parse_{corpus}"));
        for ours in ["header_parse", "header_parse_with_timestamp"] {
            match (mean_ns(&dir, "syslog", &format!("{ours}_{corpus}")), peer) {
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

fn mean_ns(dir: &std::path::Path, group: &str, id: &str) -> Option<f64> {
    let path = dir.join(group).join(id).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// The directory criterion writes to, found the way criterion finds it.
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
