//! RFC 6587 framing: the same byte stream decoded whole, split at every offset, byte by
//! byte and in random chunk sizes must give the same frames.

use bytes::{Bytes, BytesMut};
use mcas_syslog::codec::{Frame, Framing, Notice, OversizePolicy, SyslogCodec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::codec::{Decoder, Encoder};

/// Header slack allowed above the frame limit: a partial `MSG-LEN SP <`.
const HEADER: usize = 11;

/// Decodes `chunks` fed one after another, checking the buffer stays bounded after each
/// call that asks for more input, then drains at end of stream.
fn decode_chunks<'c>(
    mut codec: SyslogCodec,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> Vec<Frame> {
    let max = codec.max_frame();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(f) = codec.decode(&mut buf).expect("decode never fails") {
            out.push(f);
        }
        assert!(
            buf.len() <= max + HEADER,
            "buffer {} above limit {max}",
            buf.len()
        );
    }
    while let Some(f) = codec.decode_eof(&mut buf).expect("decode_eof never fails") {
        out.push(f);
    }
    assert!(buf.is_empty(), "bytes left after EOF");
    out
}

fn chunked<'s>(stream: &'s [u8], sizes: &[usize]) -> Vec<&'s [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let n = sizes[i % sizes.len()].max(1).min(stream.len() - at);
        out.push(&stream[at..at + n]);
        at += n;
        i += 1;
    }
    out
}

/// Every way of splitting `stream` we try gives `expected`.
fn check_all_splits(make: impl Fn() -> SyslogCodec, stream: &[u8], expected: &[Frame]) {
    assert_eq!(decode_chunks(make(), [stream]), expected, "whole stream");
    for i in 0..=stream.len() {
        let got = decode_chunks(make(), [&stream[..i], &stream[i..]]);
        assert_eq!(got, expected, "split at offset {i}");
    }
    assert_eq!(
        decode_chunks(make(), chunked(stream, &[1])),
        expected,
        "byte by byte"
    );
    let mut rng = SmallRng::seed_from_u64(0x5151_0c7e);
    for round in 0..300 {
        let sizes: Vec<usize> = (0..16).map(|_| rng.gen_range(1..40)).collect();
        let got = decode_chunks(make(), chunked(stream, &sizes));
        assert_eq!(got, expected, "random chunks round {round}: {sizes:?}");
    }
}

fn plain(data: &[u8]) -> Frame {
    let mut c = SyslogCodec::new(Framing::NonTransparent);
    let mut b = BytesMut::from(data);
    b.extend_from_slice(b"\n");
    c.decode(&mut b).expect("decode").expect("frame")
}

fn expect(data: &[u8], truncated: bool, notice: Option<Notice>) -> (Bytes, bool, Option<Notice>) {
    (Bytes::copy_from_slice(data), truncated, notice)
}

fn shape(frames: &[Frame]) -> Vec<(Bytes, bool, Option<Notice>)> {
    frames
        .iter()
        .map(|f| (f.data().clone(), f.is_truncated(), f.notice()))
        .collect()
}

#[test]
fn auto_mixed_framings_with_oversize_recovery() {
    let octet_msg = b"<13>1 - host app - - - two\nlines";
    let big_octet = [b'x'; 70];
    let big_line = vec![b'y'; 90];
    let mut s = Vec::new();
    s.extend_from_slice(format!("{} ", octet_msg.len()).as_bytes());
    s.extend_from_slice(octet_msg);
    s.extend_from_slice(b"<134>Oct 11 22:14:15 fw01 CEF:0|V|P|1|1|n|5|a=b\n");
    s.extend_from_slice(b"<13>crlf line\r\n");
    s.extend_from_slice(b"<13>nul terminated\0");
    s.extend_from_slice(b"\n\n"); // blank lines are skipped
    s.extend_from_slice(b"2017-11-22T17:50:04.000Z CEF:0|MCAS|SIEM_Agent|0.1|X|Y|0|a=b\n");
    s.extend_from_slice(b"2024 Jan 12 10:00:00 host app: year first\n");
    s.extend_from_slice(b"16261: May 28 16:09:56.185: %SYS-5-CONFIG_I: x\n");
    s.extend_from_slice(format!("70 <{}", "x".repeat(69)).as_bytes()); // oversize octet frame
    s.extend_from_slice(b"5 <13>a");
    s.extend_from_slice(&big_line); // oversize line
    s.extend_from_slice(b"\n<13>after oversize\n");
    s.extend_from_slice(b"<13>last line without trailer");
    let make = || SyslogCodec::new(Framing::Auto).with_max_frame(64);
    let frames = decode_chunks(make(), [&s[..]]);
    let mut big_octet_first = big_octet[..64].to_vec();
    big_octet_first[0] = b'<';
    let want = vec![
        expect(octet_msg, false, None),
        expect(
            b"<134>Oct 11 22:14:15 fw01 CEF:0|V|P|1|1|n|5|a=b",
            false,
            None,
        ),
        expect(b"<13>crlf line", false, None),
        expect(b"<13>nul terminated", false, None),
        expect(
            b"2017-11-22T17:50:04.000Z CEF:0|MCAS|SIEM_Agent|0.1|X|Y|0|a=b",
            false,
            None,
        ),
        expect(b"2024 Jan 12 10:00:00 host app: year first", false, None),
        expect(
            b"16261: May 28 16:09:56.185: %SYS-5-CONFIG_I: x",
            false,
            None,
        ),
        expect(
            &big_octet_first,
            true,
            Some(Notice::Oversize {
                declared: Some(70),
                discarded: false,
            }),
        ),
        expect(b"<13>a", false, None),
        expect(
            &big_line[..64],
            true,
            Some(Notice::Oversize {
                declared: None,
                discarded: false,
            }),
        ),
        expect(b"<13>after oversize", false, None),
        expect(b"<13>last line without trailer", false, None),
    ];
    assert_eq!(shape(&frames), want);
    check_all_splits(make, &s, &frames);
}

#[test]
fn discard_policy_reports_once_and_resumes() {
    let mut s = Vec::new();
    s.extend_from_slice(format!("40 <{}", "z".repeat(39)).as_bytes());
    s.extend_from_slice(b"9 <13>ok #1");
    s.extend_from_slice(&[b'w'; 50]);
    s.extend_from_slice(b"\n<13>ok #2\n");
    let make = || {
        SyslogCodec::new(Framing::Auto)
            .with_max_frame(16)
            .with_oversize_policy(OversizePolicy::Discard)
    };
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(
                b"",
                false,
                Some(Notice::Oversize {
                    declared: Some(40),
                    discarded: true
                })
            ),
            expect(b"<13>ok #1", false, None),
            expect(
                b"",
                false,
                Some(Notice::Oversize {
                    declared: None,
                    discarded: true
                })
            ),
            expect(b"<13>ok #2", false, None),
        ]
    );
    check_all_splits(make, &s, &frames);
}

#[test]
fn octet_counting_bad_counts_resynchronise_at_lf() {
    let mut s = Vec::new();
    s.extend_from_slice(b"8 <13>good");
    s.extend_from_slice(b"abc not a count\n");
    s.extend_from_slice(b"0 leading zero\n");
    s.extend_from_slice(b"12x no space\n");
    s.extend_from_slice(b"1234567890 ten digits\n");
    s.extend_from_slice(b"10 <13>again\n"); // counted frame whose message ends in LF
    s.extend_from_slice(b"4 <1>x"); // no `<` needed after the count in strict mode
    let make = || SyslogCodec::new(Framing::OctetCounting).with_max_frame(32);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(b"<13>good", false, None),
            expect(b"abc not a count", false, Some(Notice::BadCount)),
            expect(b"0 leading zero", false, Some(Notice::BadCount)),
            expect(b"12x no space", false, Some(Notice::BadCount)),
            expect(b"1234567890 ten digits", false, Some(Notice::BadCount)),
            expect(b"<13>again\n", false, None),
            expect(b"<1>x", false, None),
        ]
    );
    check_all_splits(make, &s, &frames);
}

#[test]
fn eof_mid_octet_frame_is_reported() {
    let s = b"5 <13>a20 <13>only part";
    let make = || SyslogCodec::new(Framing::Auto);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(b"<13>a", false, None),
            expect(b"<13>only part", true, Some(Notice::Eof { declared: 20 })),
        ]
    );
    check_all_splits(make, s, &frames);
}

#[test]
fn eof_inside_a_count_or_a_skipped_frame() {
    // A partial count at EOF is a last line in Auto, a bad count in strict mode.
    let f = decode_chunks(SyslogCodec::new(Framing::Auto), [&b"<13>a\n12"[..]]);
    assert_eq!(
        shape(&f),
        vec![expect(b"<13>a", false, None), expect(b"12", false, None)]
    );
    let f = decode_chunks(SyslogCodec::new(Framing::OctetCounting), [&b"12"[..]]);
    assert_eq!(
        shape(&f),
        vec![expect(b"12", false, Some(Notice::BadCount))]
    );
    // A partial count longer than a tiny limit is cut to the limit too (found by fuzzing).
    let codec = SyslogCodec::new(Framing::OctetCounting).with_max_frame(1);
    let f = decode_chunks(codec, [&b"11"[..]]);
    assert_eq!(shape(&f), vec![expect(b"1", true, Some(Notice::BadCount))]);
    let codec = SyslogCodec::new(Framing::Auto).with_max_frame(2);
    let f = decode_chunks(codec, [&b"12 "[..]]);
    assert_eq!(
        shape(&f),
        vec![expect(
            b"12",
            true,
            Some(Notice::Oversize {
                declared: None,
                discarded: false
            })
        )]
    );
    // EOF while dropping the rest of an oversize frame: nothing more is reported.
    let codec = SyslogCodec::new(Framing::Auto).with_max_frame(4);
    let f = decode_chunks(codec, [&b"100 <13>abcdef"[..]]);
    assert_eq!(
        shape(&f),
        vec![expect(
            b"<13>",
            true,
            Some(Notice::Oversize {
                declared: Some(100),
                discarded: false
            })
        )]
    );
    // EOF inside an oversize frame before the limit is reached.
    let codec = SyslogCodec::new(Framing::Auto).with_max_frame(8);
    let f = decode_chunks(codec, [&b"100 <13>ab"[..]]);
    assert_eq!(
        shape(&f),
        vec![expect(
            b"<13>ab",
            true,
            Some(Notice::Oversize {
                declared: Some(100),
                discarded: false
            })
        )]
    );
}

#[test]
fn non_transparent_never_reads_counts() {
    let s = b"12 <13>not counted\n<13>b\r\n";
    let make = || SyslogCodec::new(Framing::NonTransparent);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(frames, vec![plain(b"12 <13>not counted"), plain(b"<13>b")]);
    check_all_splits(make, s, &frames);
}

#[test]
fn line_exactly_at_the_limit_is_not_oversize() {
    let make = || SyslogCodec::new(Framing::NonTransparent).with_max_frame(8);
    let s = b"12345678\n123456789\nok\n";
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(b"12345678", false, None),
            expect(
                b"12345678",
                true,
                Some(Notice::Oversize {
                    declared: None,
                    discarded: false
                })
            ),
            expect(b"ok", false, None),
        ]
    );
    check_all_splits(make, s, &frames);
}

#[test]
fn encoder_output_decodes_to_the_same_messages() {
    let msgs: [&[u8]; 4] = [
        b"<13>one",
        b"<13>1 - h a - - - multi\nline",
        b"<14>three",
        b"<0>",
    ];
    for framing in [
        Framing::Auto,
        Framing::OctetCounting,
        Framing::NonTransparent,
    ] {
        let mut codec = SyslogCodec::new(framing);
        let mut buf = BytesMut::new();
        for m in msgs {
            if framing == Framing::NonTransparent && m.contains(&b'\n') {
                continue;
            }
            codec.encode(m, &mut buf).unwrap();
        }
        let frames = decode_chunks(SyslogCodec::new(framing), [&buf[..]]);
        let want: Vec<&[u8]> = msgs
            .iter()
            .copied()
            .filter(|m| framing != Framing::NonTransparent || !m.contains(&b'\n'))
            .collect();
        let got: Vec<&[u8]> = frames.iter().map(|f| &f.data()[..]).collect();
        assert_eq!(got, want, "{framing:?}");
    }
    // A parsed message encodes as RFC 5424 in a frame.
    let m = mcas_syslog::parse(b"<34>Oct 11 22:14:15 mymachine su: hi").unwrap();
    let mut codec = SyslogCodec::new(Framing::OctetCounting);
    let mut buf = BytesMut::new();
    codec.encode(&m, &mut buf).unwrap();
    let frame = codec.decode(&mut buf).unwrap().unwrap();
    let back = mcas_syslog::parse(frame.data()).unwrap();
    assert_eq!(back.app_name(), Some("su"));
    assert_eq!(back.msg(), b"hi");
}
