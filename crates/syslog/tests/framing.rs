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

// A bogus octet count must not swallow the stream (Auto resynchronises, strict mode
// reports every byte it drops), and honest framing stays exactly as it was.

/// A CEF event as a sender writes it, told apart by its `externalId`.
fn cef_line(i: usize) -> Vec<u8> {
    format!("<134>Nov 28 06:44:44 h CEF:0|V|P|1|1|n|3|externalId={i}").into_bytes()
}

/// `count SP first LF`, then each of `lines` LF-terminated.
fn bogus_then(count: &str, first: &[u8], lines: &[Vec<u8>]) -> Vec<u8> {
    let mut s = format!("{count} ").into_bytes();
    s.extend_from_slice(first);
    s.push(b'\n');
    for l in lines {
        s.extend_from_slice(l);
        s.push(b'\n');
    }
    s
}

fn resync(declared: usize, skipped: usize) -> Option<Notice> {
    Some(Notice::Resync { declared, skipped })
}

fn skipped(bytes: usize) -> Option<Notice> {
    Some(Notice::Skipped { bytes })
}

fn oversize(declared: Option<usize>, discarded: bool) -> Option<Notice> {
    Some(Notice::Oversize {
        declared,
        discarded,
    })
}

/// A few ways of reading a stream too long for [`check_all_splits`].
fn check_some_splits(make: impl Fn() -> SyslogCodec, stream: &[u8], expected: &[Frame]) {
    for sizes in [&[1][..], &[2], &[7], &[100], &[1500], &[3, 64, 11, 1024, 1]] {
        let got = decode_chunks(make(), chunked(stream, sizes));
        assert_eq!(got, expected, "chunks of {sizes:?}");
    }
    let mut rng = SmallRng::seed_from_u64(0x0b06_c0de);
    for round in 0..20 {
        let sizes: Vec<usize> = (0..16).map(|_| rng.gen_range(1..200)).collect();
        let got = decode_chunks(make(), chunked(stream, &sizes));
        assert_eq!(got, expected, "random chunks round {round}: {sizes:?}");
    }
}

#[test]
fn auto_bogus_count_then_1000_cef_lines_loses_none() {
    // The campaign's reproduction: `999999999 <13>…` then 1,000 CEF lines, default limit.
    let first = cef_line(0);
    let lines: Vec<Vec<u8>> = (1..=1000).map(cef_line).collect();
    let s = bogus_then("999999999", &first, &lines);
    let mut want = vec![expect(&first, false, resync(999_999_999, 0))];
    want.extend(lines.iter().map(|l| expect(l, false, None)));
    for policy in [OversizePolicy::Truncate, OversizePolicy::Discard] {
        let make = || SyslogCodec::new(Framing::Auto).with_oversize_policy(policy);
        let frames = decode_chunks(make(), [&s[..]]);
        assert!(frames.len() >= 1000, "{} frames", frames.len());
        assert_eq!(shape(&frames), want, "{policy:?}");
        check_some_splits(make, &s, &frames);
    }
}

#[test]
fn auto_bogus_count_with_a_long_first_line_resyncs_after_the_head() {
    // The bogus frame's first line is longer than the limit: its head is delivered as
    // an oversize frame, then decoding resynchronises at the first line that follows.
    let first = [&b"<13>"[..], &[b'a'; 1000]].concat();
    let lines: Vec<Vec<u8>> = (1..=1000).map(cef_line).collect();
    let s = bogus_then("999999999", &first, &lines);
    let make = |policy| {
        move || {
            SyslogCodec::new(Framing::Auto)
                .with_max_frame(256)
                .with_oversize_policy(policy)
        }
    };
    let mut want = vec![
        expect(&first[..256], true, oversize(Some(999_999_999), false)),
        expect(b"", false, resync(999_999_999, 1004 - 256)),
    ];
    want.extend(lines.iter().map(|l| expect(l, false, None)));
    let frames = decode_chunks(make(OversizePolicy::Truncate)(), [&s[..]]);
    assert_eq!(shape(&frames), want);
    check_some_splits(make(OversizePolicy::Truncate), &s, &frames);

    want[0] = expect(b"", false, oversize(Some(999_999_999), true));
    want[1] = expect(b"", false, resync(999_999_999, 1004));
    let frames = decode_chunks(make(OversizePolicy::Discard)(), [&s[..]]);
    assert_eq!(shape(&frames), want);
    check_some_splits(make(OversizePolicy::Discard), &s, &frames);

    // Short enough to try every split.
    let s = bogus_then("999999999", &first[..300], &lines[..3]);
    let make = make(OversizePolicy::Truncate);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(frames.len(), 5);
    assert_eq!(frames[1].notice(), resync(999_999_999, 300 - 256));
    check_all_splits(make, &s, &frames);
}

#[test]
fn auto_resyncs_on_counted_frames_nul_and_crlf() {
    let mut s = Vec::new();
    s.extend_from_slice(b"999999999 <13>a\n");
    s.extend_from_slice(b"12 <13>counted\n"); // a counted frame after the trailer
    s.extend_from_slice(b"99999 <14>b\0<15>c\n"); // NUL-terminated
    s.extend_from_slice(b"70000 <16>d\r\n<17>e\n"); // CR LF
    // A count that ends inside the next frame, itself counted.
    s.extend_from_slice(b"100 <18>f\n5 <19>g\n");
    let make = || SyslogCodec::new(Framing::Auto).with_max_frame(64);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(b"<13>a", false, resync(999_999_999, 0)),
            expect(b"<13>counted\n", false, None),
            expect(b"<14>b", false, resync(99_999, 0)),
            expect(b"<15>c", false, None),
            expect(b"<16>d", false, resync(70_000, 0)),
            expect(b"<17>e", false, None),
            expect(b"<18>f", false, resync(100, 0)),
            expect(b"<19>g", false, None),
        ]
    );
    check_all_splits(make, &s, &frames);
}

#[test]
fn auto_honest_oversize_frames_are_not_resynchronised() {
    let mut s = Vec::new();
    // An LF inside, followed by text that starts no frame.
    s.extend_from_slice(b"30 <13>first line\nsecond line end");
    // The frame's trailing LF inside its count, then the next frame.
    s.extend_from_slice(b"20 <13>abcdefghijklmno\n");
    // Ends in LF and digits that, with the next frame's count, would read `125 <`: the
    // bytes of the next frame never make a boundary inside this one.
    s.extend_from_slice(b"20 <13>xxxxxxxxxxxxx\n12");
    s.extend_from_slice(b"5 <13>b");
    // Within the limit, a count is honoured whatever the frame holds.
    s.extend_from_slice(b"16 <13>a\n<14>b\n<15>");
    let make = || SyslogCodec::new(Framing::Auto).with_max_frame(16);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(b"<13>first line\ns", true, oversize(Some(30), false)),
            expect(b"<13>abcdefghijkl", true, oversize(Some(20), false)),
            expect(b"<13>xxxxxxxxxxxx", true, oversize(Some(20), false)),
            // The dropped tail `x\n12` held a line break: reported.
            expect(b"", false, skipped(4)),
            expect(b"<13>b", false, None),
            expect(b"<13>a\n<14>b\n<15>", false, None),
        ]
    );
    check_all_splits(make, &s, &frames);
}

#[test]
fn auto_lines_a_bogus_count_swallows_are_reported() {
    // Lines without a PRI after a bogus count do not look like frames, so the count is
    // honoured; but the dropped bytes held line breaks, so they are reported.
    let lines: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("CEF:0|V|P|1|1|n|3|a={i}").into_bytes())
        .collect();
    let s = bogus_then("999999999", b"<13>start", &lines);
    let data_len = s.len() - "999999999 ".len();
    let make = || SyslogCodec::new(Framing::Auto).with_max_frame(64);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(&s[10..10 + 64], true, oversize(Some(999_999_999), false)),
            expect(b"", false, skipped(data_len - 64)),
        ]
    );
    check_all_splits(make, &s, &frames);
    // The same lines then a line with a PRI: decoding resumes there.
    let mut s = s;
    s.extend_from_slice(b"<13>back\n");
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(&s[10..10 + 64], true, oversize(Some(999_999_999), false)),
            expect(b"", false, resync(999_999_999, data_len - 1 - 64)),
            expect(b"<13>back", false, None),
        ]
    );
    check_all_splits(make, &s, &frames);
}

#[test]
fn strict_octet_counting_reports_every_skipped_byte() {
    let mut s = Vec::new();
    s.extend_from_slice(b"20 <13>aaaaaaaaaaaaaaaa"); // 20 bytes, limit 8
    s.extend_from_slice(b"5 <13>b");
    s.extend_from_slice(b"abcdefghijklmnop\n"); // not a count, longer than the limit
    s.extend_from_slice(b"999999999 <13>x\n<13>y\n"); // the stream ends inside it
    let make = |policy| {
        move || {
            SyslogCodec::new(Framing::OctetCounting)
                .with_max_frame(8)
                .with_oversize_policy(policy)
        }
    };
    let frames = decode_chunks(make(OversizePolicy::Truncate)(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(b"<13>aaaa", true, oversize(Some(20), false)),
            expect(b"", false, skipped(12)),
            expect(b"<13>b", false, None),
            expect(b"abcdefgh", true, Some(Notice::BadCount)),
            expect(b"", false, skipped(8)),
            expect(b"<13>x\n<1", true, oversize(Some(999_999_999), false)),
            expect(b"", false, skipped(4)),
        ]
    );
    check_all_splits(make(OversizePolicy::Truncate), &s, &frames);

    let frames = decode_chunks(make(OversizePolicy::Discard)(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(b"", false, oversize(Some(20), true)),
            expect(b"", false, skipped(20)),
            expect(b"<13>b", false, None),
            expect(b"", false, Some(Notice::BadCount)),
            expect(b"", false, skipped(16)),
            expect(b"", false, oversize(Some(999_999_999), true)),
            expect(b"", false, skipped(12)),
        ]
    );
    check_all_splits(make(OversizePolicy::Discard), &s, &frames);
}

#[test]
fn strict_bogus_count_then_1000_lines_counts_every_byte() {
    // No resync in strict mode: the count is honoured, and every byte it swallows is
    // reported.
    let lines: Vec<Vec<u8>> = (1..=1000).map(cef_line).collect();
    let s = bogus_then("999999999", &cef_line(0), &lines);
    let data_len = s.len() - "999999999 ".len();
    let make = || SyslogCodec::new(Framing::OctetCounting).with_max_frame(1024);
    let frames = decode_chunks(make(), [&s[..]]);
    assert_eq!(
        shape(&frames),
        vec![
            expect(&s[10..10 + 1024], true, oversize(Some(999_999_999), false)),
            expect(b"", false, skipped(data_len - 1024)),
        ]
    );
    check_some_splits(make, &s, &frames);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// One honest frame on the stream.
    #[derive(Debug, Clone)]
    enum Item {
        /// `MSG-LEN SP MSG`.
        Counted(Vec<u8>),
        /// `MSG LF`.
        Line(Vec<u8>),
    }

    fn is_trailer(b: u8) -> bool {
        b == b'\n' || b == b'\0'
    }

    /// Bytes rich in what framing looks at.
    fn wild_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            4 => any::<u8>(),
            2 => prop::sample::select(b"\n\0\r <>".to_vec()),
            2 => b'0'..=b'9',
            2 => b'a'..=b'z',
        ]
    }

    /// Honest frames for [`Framing::Auto`] with limit `max`. Counted frames start with
    /// `<`; oversize ones never have a trailer followed by more bytes that could start a
    /// frame (an oversize frame with such content would be split, by design). Lines hold
    /// no trailer, do not start with a digit or a blank, and do not end with CR.
    fn auto_item(max: usize) -> impl Strategy<Value = Item> {
        let counted = prop::collection::vec(wild_byte(), 0..3 * max).prop_map(move |mut v| {
            v.insert(0, b'<');
            if v.len() > max {
                for i in 0..v.len() - 1 {
                    if is_trailer(v[i]) {
                        v[i + 1] = b'x';
                    }
                }
            }
            Item::Counted(v)
        });
        let line = (
            prop::sample::select(b"<abcCEF".to_vec()),
            prop::collection::vec(wild_byte(), 0..2 * max),
        )
            .prop_map(|(first, rest)| {
                let mut v = vec![first];
                v.extend(rest.into_iter().filter(|&b| !is_trailer(b)));
                while v.last() == Some(&b'\r') {
                    v.pop();
                }
                Item::Line(v)
            });
        prop_oneof![counted, line]
    }

    fn stream(items: &[Item]) -> Vec<u8> {
        let mut s = Vec::new();
        for item in items {
            match item {
                Item::Counted(v) => {
                    s.extend_from_slice(format!("{} ", v.len()).as_bytes());
                    s.extend_from_slice(v);
                }
                Item::Line(v) => {
                    s.extend_from_slice(v);
                    s.push(b'\n');
                }
            }
        }
        s
    }

    /// The frames honest items must give.
    fn model(
        framing: Framing,
        max: usize,
        policy: OversizePolicy,
        items: &[Item],
    ) -> Vec<(Bytes, bool, Option<Notice>)> {
        let discard = policy == OversizePolicy::Discard;
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Counted(v) if v.len() <= max => out.push(expect(v, false, None)),
                Item::Counted(v) => {
                    let len = v.len();
                    let (head, dropped) = if discard {
                        (expect(b"", false, oversize(Some(len), true)), 0..len)
                    } else {
                        (
                            expect(&v[..max], true, oversize(Some(len), false)),
                            max..len,
                        )
                    };
                    out.push(head);
                    // The frame's own last byte is not a line break.
                    let breaks = v[dropped.start..len - 1].iter().any(|&b| is_trailer(b));
                    if framing == Framing::OctetCounting || breaks {
                        out.push(expect(b"", false, skipped(dropped.len())));
                    }
                }
                Item::Line(v) if v.len() <= max => out.push(expect(v, false, None)),
                Item::Line(v) if discard => out.push(expect(b"", false, oversize(None, true))),
                Item::Line(v) => out.push(expect(&v[..max], true, oversize(None, false))),
            }
        }
        out
    }

    fn chunks(stream: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
        chunked(stream, sizes)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn policy() -> impl Strategy<Value = OversizePolicy> {
        prop_oneof![
            Just(OversizePolicy::Truncate),
            Just(OversizePolicy::Discard)
        ]
    }

    fn auto_case() -> impl Strategy<Value = (usize, OversizePolicy, Vec<Item>, Vec<usize>)> {
        (4usize..48, policy()).prop_flat_map(|(max, policy)| {
            (
                Just(max),
                Just(policy),
                prop::collection::vec(auto_item(max), 0..12),
                prop::collection::vec(1usize..48, 1..8),
            )
        })
    }

    fn strict_case() -> impl Strategy<Value = (usize, OversizePolicy, Vec<Item>, Vec<usize>)> {
        (1usize..48, policy()).prop_flat_map(|(max, policy)| {
            let item = prop::collection::vec(wild_byte(), 1..3 * max + 2).prop_map(Item::Counted);
            (
                Just(max),
                Just(policy),
                prop::collection::vec(item, 0..12),
                prop::collection::vec(1usize..48, 1..8),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any sequence of honest frames, read in any split, gives the same frames in
        /// Auto: counted frames (LFs inside included) and lines exactly, oversize frames
        /// as before, and no resynchronisation.
        #[test]
        fn auto_honest_frames_survive_any_split((max, policy, items, sizes) in auto_case()) {
            let s = stream(&items);
            let make = || SyslogCodec::new(Framing::Auto).with_max_frame(max).with_oversize_policy(policy);
            let want = model(Framing::Auto, max, policy, &items);
            let parts = chunks(&s, &sizes);
            let got = decode_chunks(make(), parts.iter().map(Vec::as_slice));
            prop_assert_eq!(shape(&got), want.clone());
            prop_assert_eq!(shape(&decode_chunks(make(), [&s[..]])), want);
        }

        /// Strict octet counting: any honest counted frames (any bytes, any size), any
        /// split: the same frames, and every dropped byte is reported with `Skipped`.
        #[test]
        fn strict_honest_frames_survive_any_split((max, policy, items, sizes) in strict_case()) {
            let s = stream(&items);
            let make = || SyslogCodec::new(Framing::OctetCounting).with_max_frame(max).with_oversize_policy(policy);
            let want = model(Framing::OctetCounting, max, policy, &items);
            let parts = chunks(&s, &sizes);
            let got = decode_chunks(make(), parts.iter().map(Vec::as_slice));
            prop_assert_eq!(shape(&got), want.clone());
            prop_assert_eq!(shape(&decode_chunks(make(), [&s[..]])), want);
            // Delivered, skipped and header bytes add up to the stream.
            let delivered: usize = got.iter().map(|f| f.data().len()).sum();
            let dropped: usize = got.iter().map(|f| match f.notice() {
                Some(Notice::Skipped { bytes }) => bytes,
                _ => 0,
            }).sum();
            let headers: usize = items.iter().map(|i| match i {
                Item::Counted(v) => v.len().to_string().len() + 1,
                Item::Line(_) => 0,
            }).sum();
            prop_assert_eq!(delivered + dropped + headers, s.len());
        }

        /// A bogus count above the limit, then lines with a PRI (some octet-counted):
        /// every one of those lines comes out exactly, after one `Resync`.
        #[test]
        fn auto_bogus_count_never_swallows_frames(
            max in 16usize..128,
            policy in policy(),
            declared in 1_000_000usize..=999_999_999,
            body in prop::collection::vec(wild_byte(), 0..300),
            lines in prop::collection::vec(
                (0u8..=191, prop::collection::vec(b' '..=b'~', 0..10), any::<bool>()),
                1..20,
            ),
            sizes in prop::collection::vec(1usize..64, 1..8),
        ) {
            let first: Vec<u8> = std::iter::once(b'<')
                .chain(body.into_iter().filter(|&b| !is_trailer(b)))
                .collect();
            let mut s = format!("{declared} ").into_bytes();
            s.extend_from_slice(&first);
            let mut want_lines = Vec::new();
            for (pri, text, counted) in &lines {
                let mut msg = format!("<{pri}>").into_bytes();
                msg.extend_from_slice(text);
                s.push(b'\n');
                if *counted {
                    s.extend_from_slice(format!("{} ", msg.len()).as_bytes());
                    s.extend_from_slice(&msg);
                } else {
                    s.extend_from_slice(&msg);
                }
                want_lines.push(expect(&msg, false, None));
            }
            let make = || SyslogCodec::new(Framing::Auto).with_max_frame(max).with_oversize_policy(policy);
            let mut want = if first.len() <= max {
                // Delivered as a line: one CR before the LF is the trailer's.
                let line = first.strip_suffix(b"\r").unwrap_or(&first);
                vec![expect(line, false, resync(declared, 0))]
            } else if policy == OversizePolicy::Discard {
                vec![
                    expect(b"", false, oversize(Some(declared), true)),
                    expect(b"", false, resync(declared, first.len())),
                ]
            } else {
                vec![
                    expect(&first[..max], true, oversize(Some(declared), false)),
                    expect(b"", false, resync(declared, first.len() - max)),
                ]
            };
            want.extend(want_lines);
            let parts = chunks(&s, &sizes);
            let got = decode_chunks(make(), parts.iter().map(Vec::as_slice));
            prop_assert_eq!(shape(&got), want.clone());
            prop_assert_eq!(shape(&decode_chunks(make(), [&s[..]])), want);
        }

        /// Any bytes, any framing and limit, any split: no panic, the buffer and every
        /// frame stay within the limit, and the frames do not depend on the split.
        #[test]
        fn any_input_gives_the_same_frames_in_any_split(
            framing in prop_oneof![Just(Framing::Auto), Just(Framing::OctetCounting), Just(Framing::NonTransparent)],
            max in 1usize..40,
            policy in policy(),
            s in prop::collection::vec(wild_byte(), 0..400),
            sizes in prop::collection::vec(1usize..32, 1..8),
        ) {
            let make = || SyslogCodec::new(framing).with_max_frame(max).with_oversize_policy(policy);
            let whole = decode_chunks(make(), [&s[..]]);
            let parts = chunks(&s, &sizes);
            let split = decode_chunks(make(), parts.iter().map(Vec::as_slice));
            prop_assert!(whole.iter().all(|f| f.data().len() <= max));
            prop_assert_eq!(split, whole);
        }
    }
}
