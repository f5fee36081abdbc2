//! RFC 6587 decoding of random input in random chunks: no panic, the buffer never holds
//! more than the frame limit plus a count header, no frame exceeds the limit, and the
//! frames do not depend on how the input was split.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcas_syslog::codec::{Frame, Framing, OversizePolicy, SyslogCodec};
use tokio_util::codec::Decoder;

/// A partial `MSG-LEN SP <` may wait in the buffer on top of a frame.
const HEADER: usize = 11;

fn codec(cfg: &[u8; 3]) -> SyslogCodec {
    let framing = match cfg[0] % 3 {
        0 => Framing::Auto,
        1 => Framing::OctetCounting,
        _ => Framing::NonTransparent,
    };
    let policy = if cfg[1] & 1 == 0 {
        OversizePolicy::Truncate
    } else {
        OversizePolicy::Discard
    };
    SyslogCodec::new(framing)
        .with_max_frame(usize::from(cfg[2]) + 1)
        .with_oversize_policy(policy)
}

fn run(mut c: SyslogCodec, chunks: &[&[u8]]) -> Vec<Frame> {
    let max = c.max_frame();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(f) = c.decode(&mut buf).expect("decode never fails") {
            out.push(f);
        }
        assert!(
            buf.len() <= max + HEADER,
            "buffer {} above limit {max}",
            buf.len()
        );
    }
    while let Some(f) = c.decode_eof(&mut buf).expect("decode_eof never fails") {
        out.push(f);
    }
    assert!(buf.is_empty());
    for f in &out {
        assert!(f.data().len() <= max);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((cfg, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let Some((&seed, stream)) = rest.split_first() else {
        return;
    };
    // Chunk sizes from a tiny generator seeded by the input.
    let mut state = u32::from(seed) | 1;
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % 64 + 1).min(stream.len() - at);
        chunks.push(&stream[at..at + n]);
        at += n;
    }
    let chunked = run(codec(cfg), &chunks);
    let whole = run(codec(cfg), &[stream]);
    assert_eq!(chunked, whole);
});
