//! RELP: golden frames as rsyslog 8.2302 with librelp 1.11.0 sends them, the decoder fed
//! every split of a stream, errors with their positions, the session checker, a
//! proptest round trip, and (ignored: it needs rsyslog and rsyslog-relp) a private
//! rsyslogd sending through `omrelp` to a server written on the codec.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

use bytes::BytesMut;
use mcas_syslog::relp::{
    self, Command, ErrorKind, Event, FrameDecoder, Offers, OwnedFrame, RelpCodec, Response,
    ServerSession, SessionErrorKind, Txnr, TxnrSequence,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// The `open` rsyslog 8.2302 + librelp 1.11.0 sends (observed on Debian 12).
const RSYSLOG_OPEN: &[u8] = b"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n";

fn txnr(n: u32) -> Txnr {
    Txnr::new(n).unwrap()
}

/// Decodes `chunks` fed one after another with the pure decoder, returning the frames,
/// or the error and the frames before it.
fn decode_chunks<'c>(
    mut decoder: FrameDecoder,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> (Vec<OwnedFrame>, Option<relp::Error>) {
    let max = decoder.max_frame_len();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&buf) {
                Ok(Some((frame, len))) => {
                    assert_eq!(frame.encoded_len(), len);
                    let mut again = Vec::new();
                    frame.encode(&mut again);
                    assert_eq!(again, &buf[..len], "a frame re-encodes to its bytes");
                    out.push(frame.into_owned());
                    buf.drain(..len);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert!(buf.len() <= max, "buffer {} above {max}", buf.len());
    }
    let end = decoder.finish(&buf).err();
    (out, end)
}

/// The same stream fed whole, split in two at every offset, and byte by byte gives the
/// same frames and the same error.
fn check_every_split(
    make: impl Fn() -> FrameDecoder,
    stream: &[u8],
) -> (Vec<OwnedFrame>, Option<relp::Error>) {
    let whole = decode_chunks(make(), [stream]);
    for i in 0..=stream.len() {
        let got = decode_chunks(make(), [&stream[..i], &stream[i..]]);
        assert_eq!(got, whole, "split at offset {i}");
    }
    assert_eq!(
        decode_chunks(make(), stream.chunks(1)),
        whole,
        "byte by byte"
    );
    // The tokio codec agrees.
    let mut codec = RelpCodec::with_decoder(make());
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut err = None;
    'feed: for b in stream.chunks(3) {
        buf.extend_from_slice(b);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(relp::CodecError::Frame(e)) => {
                    err = Some(e);
                    break 'feed;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    if err.is_none() {
        match codec.decode_eof(&mut buf) {
            Ok(None) => {}
            Ok(Some(f)) => panic!("frame at eof: {f:?}"),
            Err(relp::CodecError::Frame(e)) => err = Some(e),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((frames, err), whole, "tokio codec");
    whole
}

#[test]
fn rsyslog_open_golden() {
    let (frame, len) = FrameDecoder::new().decode(RSYSLOG_OPEN).unwrap().unwrap();
    assert_eq!(len, RSYSLOG_OPEN.len());
    assert_eq!(frame.txnr(), Txnr::FIRST);
    assert_eq!(frame.command(), Command::OPEN);
    assert_eq!(frame.data().len(), 86);
    let offers = Offers::parse(frame.data()).unwrap();
    let names: Vec<&str> = offers.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["relp_version", "relp_software", "commands"]);
    assert_eq!(offers.get("relp_version").unwrap().number(), Some(0));
    let software: Vec<&[u8]> = offers.get("relp_software").unwrap().values().collect();
    assert_eq!(
        software,
        [&b"librelp"[..], b"1.11.0", b"http://librelp.adiscon.com"]
    );
    assert!(offers.get("commands").unwrap().has_value(b"syslog"));

    // Our client encoder writes the same bytes for the same software.
    let mut ours = Vec::new();
    relp::encode_open(
        Txnr::FIRST,
        "librelp,1.11.0,http://librelp.adiscon.com",
        &mut ours,
    );
    assert_eq!(ours, RSYSLOG_OPEN);

    // The server echoes relp_version and commands=syslog.
    let mut session = ServerSession::new().with_software("mcas-forward,0.1.0");
    let event = session.receive(&frame).unwrap();
    assert!(matches!(event, Event::Open { version: 0, .. }));
    let mut answer = Vec::new();
    event.encode_answer(&session, &mut answer);
    assert_eq!(
        answer,
        b"1 rsp 70 200 OK\nrelp_version=0\nrelp_software=mcas-forward,0.1.0\ncommands=syslog\n"
    );
    // The answer reads back as a frame whose offers the client checks.
    let (rsp, _) = FrameDecoder::new().decode(&answer).unwrap().unwrap();
    assert_eq!(rsp.command(), Command::RSP);
    let r = Response::parse(rsp.data()).unwrap();
    assert!(r.is_ok());
    assert_eq!(r.text(), b"OK");
    let offers = Offers::parse(r.offers()).unwrap();
    assert_eq!(offers.get("relp_version").unwrap().number(), Some(0));
    assert!(offers.get("commands").unwrap().has_value(b"syslog"));
    assert_eq!(session.version(), 0);
}

#[test]
fn answers_golden() {
    let mut out = Vec::new();
    relp::encode_ok(txnr(2), &mut out);
    relp::encode_close_answer(txnr(5), &mut out);
    relp::encode_serverclose(&mut out);
    Response::new(500, "error")
        .unwrap()
        .encode(txnr(999_999_999), &mut out);
    assert_eq!(
        out,
        b"2 rsp 6 200 OK\n5 rsp 0\n0 serverclose 0\n999999999 rsp 9 500 error\n"
    );
    let (frames, err) = check_every_split(FrameDecoder::new, &out);
    assert_eq!(err, None);
    let summary: Vec<(u32, &str, &[u8])> = frames
        .iter()
        .map(|f| (f.txnr().get(), f.command().as_str(), &f.data()[..]))
        .collect();
    assert_eq!(
        summary,
        [
            (2, "rsp", &b"200 OK"[..]),
            (5, "rsp", b""),
            (0, "serverclose", b""),
            (999_999_999, "rsp", b"500 error"),
        ]
    );
    // An answer with offers after the text.
    let mut out = Vec::new();
    Response::new(200, "OK")
        .unwrap()
        .with_offers(b"relp_version=0\ncommands=syslog")
        .encode(txnr(1), &mut out);
    assert_eq!(out, b"1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n");
}

#[test]
fn rsp_zero_has_no_space() {
    let (frame, len) = FrameDecoder::new().decode(b"5 rsp 0\n").unwrap().unwrap();
    assert_eq!(
        (frame.txnr().get(), frame.command(), frame.data(), len),
        (5, Command::RSP, &b""[..], 8)
    );
    // A SP after DATALEN 0 is where the trailer should be.
    let e = FrameDecoder::new().decode(b"5 rsp 0 \n").unwrap_err();
    assert_eq!((e.offset(), e.kind()), (7, ErrorKind::Trailer));
    // A frame with data needs the SP.
    let e = FrameDecoder::new()
        .decode(b"5 rsp 6\n200 OK\n")
        .unwrap_err();
    assert_eq!((e.offset(), e.kind()), (7, ErrorKind::DataLen));
}

#[test]
fn offers() {
    let o = Offers::parse(b"relp_version=0\nstarttls\n\ncommands=syslog,eventlog\n").unwrap();
    assert_eq!(o.len(), 3);
    let starttls = o.get("starttls").unwrap();
    assert_eq!(starttls.value(), b"");
    assert_eq!(starttls.values().count(), 0);
    let cmds: Vec<&[u8]> = o.get("commands").unwrap().values().collect();
    assert_eq!(cmds, [&b"syslog"[..], b"eventlog"]);
    assert!(o.get("missing").is_none());
    // A value may hold `=` and SP; a name may not hold SP or control bytes.
    let o = Offers::parse(b"x=a=b c").unwrap();
    assert_eq!(o.get("x").unwrap().value(), b"a=b c");
    let e = Offers::parse(b"relp_version=0\nbad name=1").unwrap_err();
    assert_eq!((e.offset(), e.kind()), (18, ErrorKind::Offer));
    let e = Offers::parse(b"=1").unwrap_err();
    assert_eq!((e.offset(), e.kind()), (0, ErrorKind::Offer));
    let long = format!("{}=1", "n".repeat(33));
    assert_eq!(
        Offers::parse(long.as_bytes()).unwrap_err().kind(),
        ErrorKind::Offer
    );
    assert!(Offers::parse(b"").unwrap().is_empty());
    // Numbers are canonical decimals.
    for (v, n) in [
        ("0", Some(0)),
        ("1", Some(1)),
        ("01", None),
        ("", None),
        ("1a", None),
        ("1234567890", None),
    ] {
        let text = format!("relp_version={v}");
        let o = Offers::parse(text.as_bytes()).unwrap();
        assert_eq!(o.get("relp_version").unwrap().number(), n, "{v:?}");
    }
}

#[test]
fn txnr_wraps() {
    assert_eq!(Txnr::MAX.get(), 999_999_999);
    assert_eq!(Txnr::MAX.next(), Txnr::FIRST);
    assert_eq!(Txnr::HINT.next(), Txnr::FIRST);
    assert_eq!(txnr(41).next(), txnr(42));
    assert_eq!(Txnr::new(1_000_000_000), None);

    let mut seq = TxnrSequence::starting_at(txnr(999_999_998));
    for n in [999_999_998, 999_999_999, 1, 2] {
        seq.check(txnr(n)).unwrap();
    }
    assert_eq!(seq.check(txnr(4)), Err(txnr(3)));
    assert_eq!(
        seq.expected(),
        txnr(3),
        "a refused TXNR does not move the sequence"
    );

    // The largest TXNR encodes in nine digits and decodes back.
    let mut out = Vec::new();
    relp::encode_syslog(Txnr::MAX, b"last", &mut out).unwrap();
    relp::encode_syslog(Txnr::MAX.next(), b"first again", &mut out).unwrap();
    assert_eq!(out, b"999999999 syslog 4 last\n1 syslog 11 first again\n");
    let (frames, err) = check_every_split(FrameDecoder::new, &out);
    assert_eq!(err, None);
    assert_eq!(frames[0].txnr(), Txnr::MAX);
    assert_eq!(frames[1].txnr(), Txnr::FIRST);
}

#[test]
fn oversize_datalen() {
    // The default limit is librelp's 128 KiB: exactly that is a frame, one more is not.
    let max = relp::DEFAULT_MAX_DATALEN;
    assert_eq!(max, 131_072);
    let data = vec![b'x'; max];
    let mut ok = Vec::new();
    relp::encode_syslog(txnr(2), &data, &mut ok).unwrap();
    let (frame, len) = FrameDecoder::new().decode(&ok).unwrap().unwrap();
    assert_eq!((frame.data().len(), len), (max, ok.len()));

    let mut big = Vec::new();
    relp::encode_syslog(txnr(2), &vec![b'x'; max + 1], &mut big).unwrap();
    // Refused as soon as the header is in, before the data arrives.
    let e = FrameDecoder::new().decode(&big[..20]).unwrap_err();
    assert_eq!(e.offset(), 9);
    assert_eq!(
        e.kind(),
        ErrorKind::TooLong {
            datalen: max + 1,
            max
        }
    );
    assert!(e.to_string().contains("131073"), "{e}");

    // A configured limit, after a good frame: the offset counts from the session start.
    let mut stream = b"1 syslog 3 abc\n".to_vec();
    stream.extend_from_slice(b"2 syslog 17 0123456789abcdefg\n3 close 0\n");
    let (frames, err) = check_every_split(|| FrameDecoder::new().with_max_datalen(16), &stream);
    assert_eq!(frames.len(), 1);
    let e = err.unwrap();
    assert_eq!(
        (e.offset(), e.kind()),
        (
            24,
            ErrorKind::TooLong {
                datalen: 17,
                max: 16
            }
        )
    );
    // The limit cannot exceed what nine digits count.
    assert_eq!(
        FrameDecoder::new()
            .with_max_datalen(usize::MAX)
            .max_datalen(),
        relp::MAX_DATALEN
    );
}

#[test]
fn garbage_is_an_error_with_its_position() {
    let cases: &[(&[u8], u64, ErrorKind)] = &[
        (b"x syslog 1 a\n", 0, ErrorKind::Txnr),
        (b" 1 syslog 1 a\n", 0, ErrorKind::Txnr),
        (b"-1 syslog 1 a\n", 0, ErrorKind::Txnr),
        (b"01 syslog 1 a\n", 1, ErrorKind::Txnr),
        (b"1234567890 syslog 1 a\n", 9, ErrorKind::Txnr),
        (b"12x syslog 1 a\n", 2, ErrorKind::Txnr),
        (b"1\tsyslog 1 a\n", 1, ErrorKind::Txnr),
        (b"\n", 0, ErrorKind::Txnr),
        (b"1  syslog 1 a\n", 2, ErrorKind::Command),
        (b"1 sys1og 1 a\n", 5, ErrorKind::Command),
        (b"1 syslog\n", 8, ErrorKind::Command),
        (
            b"1 abcdefghijklmnopqrstuvwxyzabcdefg 0\n",
            34,
            ErrorKind::Command,
        ),
        (b"1 syslog x\n", 9, ErrorKind::DataLen),
        (b"1 syslog 01 a\n", 10, ErrorKind::DataLen),
        (b"1 syslog 1234567890 a\n", 18, ErrorKind::DataLen),
        (b"1 syslog -1 a\n", 9, ErrorKind::DataLen),
        (b"1 syslog 1 ab\n", 12, ErrorKind::Trailer),
        (b"1 syslog 1 a\r\n", 12, ErrorKind::Trailer),
        (b"1 close 0\r\n", 9, ErrorKind::Trailer),
    ];
    for &(input, offset, kind) in cases {
        let (frames, err) = check_every_split(FrameDecoder::new, input);
        assert!(frames.is_empty(), "{input:?}");
        let e = err.unwrap_or_else(|| panic!("{:?} decoded", String::from_utf8_lossy(input)));
        assert_eq!(
            (e.offset(), e.kind()),
            (offset, kind),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // 32 letters is the longest command.
    let ok = format!("1 {} 0\n", "a".repeat(32));
    assert!(FrameDecoder::new().decode(ok.as_bytes()).unwrap().is_some());

    // Positions count from the start of the session, after good frames.
    let mut stream = RSYSLOG_OPEN.to_vec();
    stream.extend_from_slice(b"2 syslog 5 hello\nGET / HTTP/1.1\r\n");
    let (frames, err) = check_every_split(FrameDecoder::new, &stream);
    assert_eq!(frames.len(), 2);
    let e = err.unwrap();
    let at = (RSYSLOG_OPEN.len() + 17) as u64;
    assert_eq!((e.offset(), e.kind()), (at, ErrorKind::Txnr));
    assert_eq!(e.to_string(), format!("RELP: bad TXNR at byte {at}"));
}

#[test]
fn truncated_at_end_of_session() {
    let (frames, err) = check_every_split(FrameDecoder::new, b"2 syslog 5 hello\n3 syslog 5 hel");
    assert_eq!(frames.len(), 1);
    let e = err.unwrap();
    assert_eq!((e.offset(), e.kind()), (17, ErrorKind::Truncated));
    let mut d = FrameDecoder::new();
    assert_eq!(d.finish(b""), Ok(()));
}

/// A whole session, with an LF inside a message, split at every offset.
#[test]
fn session_split_at_every_offset() {
    let messages: [&[u8]; 4] = [
        b"<134>Oct 11 22:14:15 fw01 CEF:0|Vendor|Product|1.0|100|Test|5|src=10.0.0.1",
        b"two\nlines",
        b"",
        b"\n",
    ];
    let mut stream = RSYSLOG_OPEN.to_vec();
    for (i, m) in messages.iter().enumerate() {
        relp::encode_syslog(txnr(i as u32 + 2), m, &mut stream).unwrap();
    }
    relp::encode_close(txnr(6), &mut stream);
    let (frames, err) = check_every_split(FrameDecoder::new, &stream);
    assert_eq!(err, None);
    assert_eq!(frames.len(), 6);

    let mut session = ServerSession::new();
    let mut answers = Vec::new();
    let mut got = Vec::new();
    for f in &frames {
        match session.receive(&f.as_frame()).unwrap() {
            Event::Syslog { txnr, message } => {
                got.push(message.to_vec());
                relp::encode_ok(txnr, &mut answers);
            }
            event => event.encode_answer(&session, &mut answers),
        }
    }
    assert_eq!(got, messages.map(|m| m.to_vec()));
    assert!(session.is_closed());
    let text = String::from_utf8(answers).unwrap();
    assert!(
        text.starts_with(
            "1 rsp 64 200 OK\nrelp_version=0\nrelp_software=mcas-forward\ncommands=syslog\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("2 rsp 6 200 OK\n3 rsp 6 200 OK\n4 rsp 6 200 OK\n5 rsp 6 200 OK\n6 rsp 0\n"),
        "{text}"
    );
}

#[test]
fn session_protocol_errors() {
    fn run(frames: &[&[u8]]) -> Result<Vec<String>, relp::SessionError> {
        let mut session = ServerSession::new();
        let mut kinds = Vec::new();
        for bytes in frames {
            let (f, _) = FrameDecoder::new().decode(bytes).unwrap().unwrap();
            let event = session.receive(&f)?;
            kinds.push(format!("{:?}", std::mem::discriminant(&event)));
            assert_eq!(event.txnr(), f.txnr());
        }
        Ok(kinds)
    }
    let kind = |frames: &[&[u8]]| run(frames).unwrap_err().kind();
    assert_eq!(kind(&[b"1 syslog 1 a\n"]), SessionErrorKind::NotOpen);
    assert_eq!(
        kind(&[b"2 open 0\n"]),
        SessionErrorKind::Sequence {
            expected: Txnr::FIRST
        }
    );
    assert_eq!(kind(&[b"0 open 0\n"]), SessionErrorKind::Hint);
    assert_eq!(
        kind(&[b"1 open 15 commands=syslog\n"]),
        SessionErrorKind::Version
    );
    assert_eq!(
        kind(&[b"1 open 14 relp_version=x\n"]),
        SessionErrorKind::Version
    );
    assert_eq!(
        kind(&[b"1 open 14 relp_version=0\n"]),
        SessionErrorKind::NoSyslog
    );
    assert_eq!(
        kind(&[b"1 open 8 bad name\n"]),
        SessionErrorKind::Offers { offset: 3 }
    );
    assert_eq!(
        kind(&[RSYSLOG_OPEN, b"2 syslog 1 a\n", b"4 syslog 1 b\n"]),
        SessionErrorKind::Sequence { expected: txnr(3) }
    );
    assert_eq!(
        kind(&[RSYSLOG_OPEN, b"2 rsp 6 200 OK\n"]),
        SessionErrorKind::Unexpected
    );
    assert_eq!(
        kind(&[RSYSLOG_OPEN, b"0 serverclose 0\n"]),
        SessionErrorKind::Hint
    );
    assert_eq!(
        kind(&[RSYSLOG_OPEN, b"2 starttls 0\n"]),
        SessionErrorKind::Unexpected
    );
    assert_eq!(
        kind(&[RSYSLOG_OPEN, b"2 close 0\n", b"3 syslog 1 a\n"]),
        SessionErrorKind::AfterClose
    );
    // A repeated open is answered and ignored, as librelp's server does.
    assert_eq!(
        run(&[RSYSLOG_OPEN, b"2 open 0\n", b"3 syslog 1 a\n"])
            .unwrap()
            .len(),
        3
    );

    // What to send before closing: a 500 to a refused open, the hint otherwise.
    let mut out = Vec::new();
    run(&[b"1 open 14 relp_version=0\n"])
        .unwrap_err()
        .encode_reply(&mut out);
    assert_eq!(out, b"1 rsp 39 500 required command syslog not offered\n");
    let mut out = Vec::new();
    let e = run(&[RSYSLOG_OPEN, b"3 syslog 1 a\n"]).unwrap_err();
    e.encode_reply(&mut out);
    assert_eq!(out, b"0 serverclose 0\n");
    assert_eq!(
        (e.txnr(), e.to_string()),
        (
            txnr(3),
            "RELP: TXNR 3 out of sequence, expected 2".to_owned()
        )
    );

    let mut session = ServerSession::new();
    let (open, _) = FrameDecoder::new().decode(RSYSLOG_OPEN).unwrap().unwrap();
    let event = session.receive(&open).unwrap();
    assert!(session.is_open());
    let (reopen, _) = FrameDecoder::new().decode(b"2 open 0\n").unwrap().unwrap();
    let mut out = Vec::new();
    let again = session.receive(&reopen).unwrap();
    again.encode_answer(&session, &mut out);
    assert!(out.starts_with(b"2 rsp "), "{out:?}");
    let (rsp, _) = FrameDecoder::new().decode(&out).unwrap().unwrap();
    assert!(Response::parse(rsp.data()).unwrap().is_ok());
    assert_eq!(event.txnr(), Txnr::FIRST);
    assert_eq!(session.expected_txnr(), txnr(3));
}

#[test]
fn codec_encodes_frames() {
    let mut codec = RelpCodec::new();
    let mut buf = BytesMut::new();
    let frame = relp::Frame::new(txnr(7), Command::SYSLOG, b"a\nb").unwrap();
    codec.encode(frame, &mut buf).unwrap();
    let owned = frame.into_owned();
    codec.encode(&owned, &mut buf).unwrap();
    assert_eq!(&buf[..], b"7 syslog 3 a\nb\n7 syslog 3 a\nb\n");
    let a = codec.decode(&mut buf).unwrap().unwrap();
    let b = codec.decode_eof(&mut buf).unwrap().unwrap();
    assert_eq!((&a, &b), (&owned, &owned));
    assert_eq!(a.as_frame(), frame);
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    assert_eq!(codec.decoder().position(), 30);
    // A command other than the known ones survives into_owned.
    let f = relp::Frame::new(txnr(1), Command::new("custom").unwrap(), b"").unwrap();
    assert_eq!(f.into_owned().command().as_str(), "custom");
}

fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("syslog".to_owned()),
        Just("rsp".to_owned()),
        proptest::string::string_regex("[a-zA-Z]{1,32}").unwrap(),
    ]
}

fn frame_parts() -> impl Strategy<Value = (u32, String, Vec<u8>)> {
    (
        0u32..=999_999_999,
        command(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            // LF-heavy data: the trailer inside DATA never ends the frame.
            proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b' '), any::<u8>()], 0..600),
        ],
    )
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_frame((t, cmd, data) in frame_parts()) {
        let frame = relp::Frame::new(txnr(t), Command::new(&cmd).unwrap(), &data).unwrap();
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        prop_assert_eq!(bytes.len(), frame.encoded_len());
        let (back, len) = FrameDecoder::new().decode(&bytes).unwrap().unwrap();
        prop_assert_eq!(back, frame);
        prop_assert_eq!(len, bytes.len());
        // Every proper prefix asks for more.
        for i in 0..bytes.len() {
            prop_assert!(FrameDecoder::new().decode(&bytes[..i]).unwrap().is_none());
        }
    }

    #[test]
    fn streams_decode_the_same_in_any_chunks(
        parts in proptest::collection::vec(frame_parts(), 1..8),
        sizes in proptest::collection::vec(1usize..50, 1..8),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (t, cmd, data) in &parts {
            let f = relp::Frame::new(txnr(*t), Command::new(cmd).unwrap(), data).unwrap();
            f.encode(&mut stream);
            want.push(f.into_owned());
        }
        let mut chunks = Vec::new();
        let mut at = 0;
        for &n in sizes.iter().cycle() {
            if at == stream.len() {
                break;
            }
            let n = n.min(stream.len() - at);
            chunks.push(&stream[at..at + n]);
            at += n;
        }
        let (got, err) = decode_chunks(FrameDecoder::new(), chunks);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn any_bytes_never_panic_and_errors_do_not_depend_on_chunks(
        bytes in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'\n'), Just(b'1'), Just(b'0'), Just(b'a'), any::<u8>()], 0..80),
        split in 0usize..80,
    ) {
        let split = split.min(bytes.len());
        let whole = decode_chunks(FrameDecoder::new().with_max_datalen(20), [&bytes[..]]);
        let two = decode_chunks(FrameDecoder::new().with_max_datalen(20), [&bytes[..split], &bytes[split..]]);
        prop_assert_eq!(whole, two);
    }
}

/// A private rsyslogd reads numbered lines from `imtcp` and sends them with `omrelp`
/// (window 128) to a RELP server written here on [`RelpCodec`] and [`ServerSession`],
/// which answers `200 OK` at once. Every number must arrive exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rsyslog and rsyslog-relp"]
async fn rsyslog_omrelp_delivers_every_line_once() {
    use std::process::{Command as Process, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const N: usize = 20_000;

    let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd", "/usr/bin/rsyslogd"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
        .expect("rsyslogd not found: apt-get install rsyslog rsyslog-relp");

    // The RELP server: one task per connection (omrelp reconnects after a failure).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relp_port = listener.local_addr().unwrap().port();
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sessions = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let received = received.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let received = received.clone();
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    let outcome = serve(&mut sock, &received).await;
                    sessions.lock().unwrap().push(outcome);
                });
            }
        });
    }

    async fn serve(sock: &mut tokio::net::TcpStream, received: &Mutex<Vec<Vec<u8>>>) -> String {
        let mut codec = RelpCodec::new();
        let mut session = ServerSession::new();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut out = Vec::new();
        loop {
            let n = match sock.read_buf(&mut buf).await {
                Ok(n) => n,
                Err(e) => return format!("read error: {e}"),
            };
            loop {
                let decoded = if n == 0 {
                    codec.decode_eof(&mut buf)
                } else {
                    codec.decode(&mut buf)
                };
                let frame = match decoded {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return format!("codec error: {e}"),
                };
                if frame.command() == Command::OPEN {
                    received
                        .lock()
                        .unwrap()
                        .push(frame.as_frame().into_owned().into_data().to_vec());
                }
                match session.receive(&frame.as_frame()) {
                    Ok(Event::Syslog { txnr, message }) => {
                        received.lock().unwrap().push(message.to_vec());
                        relp::encode_ok(txnr, &mut out);
                    }
                    Ok(event) => event.encode_answer(&session, &mut out),
                    Err(e) => {
                        e.encode_reply(&mut out);
                        let _ = sock.write_all(&out).await;
                        return format!("session error: {e}");
                    }
                }
            }
            if !out.is_empty() {
                if let Err(e) = sock.write_all(&out).await {
                    return format!("write error: {e}");
                }
                out.clear();
            }
            if session.is_closed() {
                return "closed".to_owned();
            }
            if n == 0 {
                return "eof".to_owned();
            }
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let tcp_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
action(type="omrelp" target="127.0.0.1" port="{relp_port}" windowSize="128" timeout="5"
       action.resumeRetryCount="-1" queue.type="LinkedList")
"#,
            work = work.display(),
        ),
    )
    .unwrap();
    let stderr = dir.path().join("rsyslogd.err");
    let child = Process::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start rsyslogd");
    /// Kills the private rsyslogd on every path, a failed assertion included.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _rs = Reap(child);
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();

    // Wait for imtcp (a guard against a hung start, not a measurement).
    let start = Instant::now();
    let mut tcp = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", tcp_port)).await {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("rsyslogd did not listen: {e}\n{}", log()),
        }
    };
    let mut lines = Vec::new();
    for i in 0..N {
        lines.extend_from_slice(
            format!(
                "<134>Dec  4 13:05:00 fw01 CEF:0|MCAS|SIEM_Agent|0.112.68|EVENT_CATEGORY_LOGIN|Log on|0|externalId=relp-{i} suser=admin@contoso.com msg=relp line {i} end\n"
            )
            .as_bytes(),
        );
    }
    tcp.write_all(&lines).await.unwrap();
    tcp.shutdown().await.unwrap();

    let start = Instant::now();
    let messages = || {
        let r = received.lock().unwrap();
        r.iter()
            .filter(|m| !m.starts_with(b"relp_version="))
            .count()
    };
    while messages() < N && start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment for a duplicate that would follow the last line.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The opens' data (first in each session) apart from the messages.
    let (opens, received): (Vec<Vec<u8>>, Vec<Vec<u8>>) = received
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .partition(|m| m.starts_with(b"relp_version="));
    assert!(!opens.is_empty());
    for open in &opens {
        let offers = Offers::parse(open).unwrap();
        assert_eq!(offers.get("relp_version").unwrap().number(), Some(0));
        assert!(offers.get("commands").unwrap().has_value(b"syslog"));
        let software = offers.get("relp_software").unwrap();
        assert_eq!(software.values().next(), Some(&b"librelp"[..]));
    }
    let mut seen = vec![0u32; N];
    println!(
        "{} sessions, {} messages; open: {:?}",
        opens.len(),
        received.len(),
        String::from_utf8_lossy(&opens[0])
    );
    for m in &received {
        let text = String::from_utf8_lossy(m);
        let at = text
            .find("externalId=relp-")
            .unwrap_or_else(|| panic!("no number in {text:?}"));
        let rest = &text[at + "externalId=relp-".len()..];
        let n: usize = rest[..rest.find(' ').unwrap()].parse().unwrap();
        seen[n] += 1;
    }
    let missing: Vec<usize> = (0..N).filter(|&i| seen[i] == 0).collect();
    let twice: Vec<usize> = (0..N).filter(|&i| seen[i] > 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "{} received; missing {} (first {:?}), duplicated {} (first {:?}); sessions {:?}\nrsyslogd:\n{}",
        received.len(),
        missing.len(),
        missing.first(),
        twice.len(),
        twice.first(),
        sessions.lock().unwrap(),
        log()
    );
    assert_eq!(received.len(), N);
    // No session ended on a codec or protocol error.
    for s in sessions.lock().unwrap().iter() {
        assert!(!s.contains("error"), "{s}");
    }
}
