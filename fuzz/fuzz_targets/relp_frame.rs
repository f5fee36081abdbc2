//! RELP decoding of random input in random chunks: no panic; a frame never takes more
//! bytes than were given; every frame re-encodes to the bytes it came from and stays
//! within the DATALEN limit; the buffer stays under a frame's maximum while the decoder
//! asks for more; an error points inside the bytes seen; and neither frames nor error
//! depend on how the input was split (the tokio codec agrees with the pure decoder).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcas_syslog::relp::{
    CodecError, Error, Event, FrameDecoder, Offers, OwnedFrame, RelpCodec, Response,
    ServerSession,
};
use tokio_util::codec::Decoder;

fn decoder(limit: u8) -> FrameDecoder {
    FrameDecoder::new().with_max_datalen(usize::from(limit) * 8)
}

/// The pure decoder over `chunks`: the frames, then the error that ended the session.
fn run(limit: u8, chunks: &[&[u8]]) -> (Vec<OwnedFrame>, Option<Error>) {
    let mut d = decoder(limit);
    let max = d.max_frame_len();
    let mut session = ServerSession::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut answers = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = d.position();
            match d.decode(&buf) {
                Ok(Some((frame, len))) => {
                    assert!(len <= buf.len(), "consumed {len} of {}", buf.len());
                    assert_eq!(d.position(), before + len as u64);
                    assert!(frame.data().len() <= d.max_datalen());
                    assert_eq!(frame.encoded_len(), len);
                    let mut again = Vec::with_capacity(len);
                    frame.encode(&mut again);
                    assert_eq!(again, &buf[..len], "re-encodes to its bytes");
                    // The other readers of frame contents never panic either.
                    let _ = Offers::parse(frame.data());
                    let _ = Response::parse(frame.data());
                    if let Ok(event) = session.receive(&frame) {
                        if !matches!(event, Event::Syslog { .. }) {
                            event.encode_answer(&session, &mut answers);
                        }
                    }
                    out.push(frame.into_owned());
                    buf.drain(..len);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.offset() <= before + buf.len() as u64);
                    // The session is over: the same error again.
                    assert_eq!(d.decode(&buf).err().as_ref(), Some(&e));
                    return (out, Some(e));
                }
            }
        }
        assert!(buf.len() <= max, "buffer {} above {max}", buf.len());
    }
    let end = d.finish(&buf).err();
    (out, end)
}

/// The tokio codec over the same chunks.
fn run_codec(limit: u8, chunks: &[&[u8]]) -> (Vec<OwnedFrame>, Option<Error>) {
    let mut codec = RelpCodec::with_decoder(decoder(limit));
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(CodecError::Frame(e)) => return (out, Some(e)),
                Err(e) => panic!("{e}"),
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(None) => (out, None),
        Ok(Some(f)) => panic!("a frame at the end that decode did not give: {f:?}"),
        Err(CodecError::Frame(e)) => (out, Some(e)),
        Err(e) => panic!("{e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[limit, seed], stream)) = data.split_first_chunk::<2>() else {
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
    let chunked = run(limit, &chunks);
    let whole = run(limit, &[stream]);
    assert_eq!(chunked, whole);
    assert_eq!(run_codec(limit, &chunks), whole);
});
