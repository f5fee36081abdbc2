//! RFC 6587 framing for syslog over TCP/TLS: a tokio-util [`Decoder`] and [`Encoder`].
//!
//! The decoder yields one [`Frame`] per message and never ends the stream because of what
//! a sender wrote: a frame over the size limit, a bad octet count or a stream that ends
//! mid-frame each produce one frame carrying a [`Notice`], and decoding resumes at the
//! next frame boundary. The only errors are I/O errors from the transport.
//!
//! ```
//! use bytes::BytesMut;
//! use mcas_syslog::codec::{Framing, SyslogCodec};
//! use tokio_util::codec::Decoder;
//!
//! let mut codec = SyslogCodec::new(Framing::Auto);
//! // An octet-counted frame, then an LF-terminated one (framing is chosen per frame).
//! let mut buf = BytesMut::from(&b"10 <13>hello\n<13>world\n"[..]);
//! let a = codec.decode(&mut buf)?.ok_or("no frame")?;
//! let b = codec.decode(&mut buf)?.ok_or("no frame")?;
//! assert_eq!((&a.data()[..], &b.data()[..]), (&b"<13>hello\n"[..], &b"<13>world"[..]));
//! assert!(a.notice().is_none() && !a.is_truncated());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Default maximum frame size: 64 KiB (D2, D3; syslog-ng's default, AMA's guidance).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// Longest MSG-LEN accepted: nine digits. Anything longer is not a count.
const MAX_LEN_DIGITS: usize = 9;

/// How frames are delimited on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Per frame (D2): `MSG-LEN SP <` starts an octet-counted frame (the length has one
    /// to nine digits and no leading zero); anything else is read up to a delimiter as in
    /// [`NonTransparent`](Framing::NonTransparent). Requiring the `<` of a PRI after the
    /// count keeps PRI-less lines that start with digits (`2024 Jan 12 …`, `16261: …`)
    /// from being taken as counts. The encoder writes octet counting.
    Auto,
    /// RFC 6587 §3.4.1 (and RFC 5425): every frame is `MSG-LEN SP MSG`. Bytes that do not
    /// start with a valid count are delivered up to the next LF with
    /// [`Notice::BadCount`], and decoding resynchronises there.
    OctetCounting,
    /// RFC 6587 §3.4.2: frames end with LF; CR LF and NUL are accepted too. The trailer
    /// is not part of the frame.
    NonTransparent,
}

/// What happens to a frame above the size limit. Either way it is reported once with
/// [`Notice::Oversize`] and decoding resumes after the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OversizePolicy {
    /// Deliver the first `max_frame` bytes, flagged truncated (the default; D3).
    #[default]
    Truncate,
    /// Deliver an empty frame carrying the notice, and drop the bytes.
    Discard,
}

/// Something the decoder reports about a frame. Each event is reported once, on the
/// frame it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The frame was longer than the limit. `declared` is the octet count, when the frame
    /// had one (LF-delimited frames have no known length). `discarded` tells the policy:
    /// false means the frame holds the first `max_frame` bytes.
    Oversize {
        /// The MSG-LEN of an octet-counted frame.
        declared: Option<usize>,
        /// True when the bytes were dropped.
        discarded: bool,
    },
    /// [`Framing::OctetCounting`] expected `MSG-LEN SP` and found something else; the
    /// frame holds the bytes up to the next LF, where decoding resynchronised.
    BadCount,
    /// The stream ended inside an octet-counted frame: the frame holds the bytes that
    /// arrived, out of `declared`.
    Eof {
        /// The MSG-LEN the sender announced.
        declared: usize,
    },
}

/// One frame from the stream: the message bytes without framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    data: Bytes,
    truncated: bool,
    notice: Option<Notice>,
}

impl Frame {
    fn new(data: Bytes) -> Self {
        Self {
            data,
            truncated: false,
            notice: None,
        }
    }

    fn with(data: Bytes, truncated: bool, notice: Option<Notice>) -> Self {
        Self {
            data,
            truncated,
            notice,
        }
    }

    /// The message bytes (no count, no trailer). Parse them with
    /// [`parse`](crate::parse).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Takes the message bytes.
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// True when the sender's message was longer than [`data`](Frame::data): cut at the
    /// size limit, or at the end of the stream.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// What went wrong with this frame, if anything.
    pub fn notice(&self) -> Option<Notice> {
        self.notice
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary.
    Start,
    /// Reading a delimited frame; `notice` is attached when it completes.
    Line { notice: Option<Notice> },
    /// Reading an octet-counted frame of `len` bytes (header consumed).
    Octet { len: usize },
    /// Reading the first `max` bytes of an oversize octet-counted frame.
    OctetOversize { len: usize },
    /// Dropping the rest of an octet-counted frame.
    SkipBytes { remaining: usize },
    /// Dropping bytes up to the next delimiter.
    SkipLine,
}

/// RFC 6587 decoder and encoder. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SyslogCodec {
    framing: Framing,
    max_frame: usize,
    oversize: OversizePolicy,
    state: State,
    /// How far a delimited frame has been searched for its trailer.
    scanned: usize,
}

impl SyslogCodec {
    /// A codec with the default limit ([`DEFAULT_MAX_FRAME`]) and truncation.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            max_frame: DEFAULT_MAX_FRAME,
            oversize: OversizePolicy::Truncate,
            state: State::Start,
            scanned: 0,
        }
    }

    /// Sets the largest frame (message bytes, without count or trailer); at least 1.
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max.max(1);
        self
    }

    /// Sets what happens to frames above the limit.
    pub fn with_oversize_policy(mut self, policy: OversizePolicy) -> Self {
        self.oversize = policy;
        self
    }

    /// The framing this codec reads and writes.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The frame size limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Reads `MSG-LEN SP` at the start of `src`.
    /// `Err(())`: not a count. `Ok(None)`: need more bytes. `Ok(Some((len, header)))`.
    fn count(&self, src: &[u8]) -> Result<Option<(usize, usize)>, ()> {
        let digits = src
            .iter()
            .take(MAX_LEN_DIGITS + 1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if src.first() == Some(&b'0') || digits > MAX_LEN_DIGITS {
            return Err(());
        }
        if digits == src.len() {
            return Ok(None);
        }
        if digits == 0 || src[digits] != b' ' {
            return Err(());
        }
        if self.framing == Framing::Auto {
            match src.get(digits + 1) {
                None => return Ok(None),
                Some(b'<') => {}
                Some(_) => return Err(()),
            }
        }
        let len = src[..digits]
            .iter()
            .fold(0usize, |v, &b| v * 10 + usize::from(b - b'0'));
        Ok(Some((len, digits + 1)))
    }

    fn take_line(src: &mut BytesMut, end: usize) -> Bytes {
        let mut data = src.split_to(end);
        src.advance(1);
        if data.last() == Some(&b'\r') {
            data.truncate(data.len() - 1);
        }
        data.freeze()
    }
}

fn find_trailer(s: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\0', s)
}

impl Decoder for SyslogCodec {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        loop {
            match self.state {
                State::Start => {
                    // Empty frames (blank lines, stray trailers between counted frames).
                    let blank = src
                        .iter()
                        .take_while(|&&b| matches!(b, b'\n' | b'\r' | b'\0'))
                        .count();
                    src.advance(blank);
                    if src.is_empty() {
                        return Ok(None);
                    }
                    self.scanned = 0;
                    let counted = match self.framing {
                        Framing::NonTransparent => Err(()),
                        Framing::Auto if !matches!(src[0], b'1'..=b'9') => Err(()),
                        _ => self.count(src),
                    };
                    match counted {
                        Ok(None) => return Ok(None),
                        Ok(Some((len, header))) => {
                            src.advance(header);
                            if len <= self.max_frame {
                                self.state = State::Octet { len };
                            } else if self.oversize == OversizePolicy::Discard {
                                self.state = State::SkipBytes { remaining: len };
                                return Ok(Some(Frame::with(
                                    Bytes::new(),
                                    false,
                                    Some(Notice::Oversize {
                                        declared: Some(len),
                                        discarded: true,
                                    }),
                                )));
                            } else {
                                self.state = State::OctetOversize { len };
                            }
                        }
                        Err(()) => {
                            let notice = (self.framing == Framing::OctetCounting)
                                .then_some(Notice::BadCount);
                            self.state = State::Line { notice };
                        }
                    }
                }
                State::Line { notice } => {
                    let window = src.len().min(self.max_frame + 1);
                    if let Some(i) = find_trailer(&src[self.scanned..window]) {
                        let end = self.scanned + i;
                        self.state = State::Start;
                        let data = Self::take_line(src, end);
                        return Ok(Some(Frame::with(data, false, notice)));
                    }
                    if src.len() <= self.max_frame {
                        self.scanned = src.len();
                        return Ok(None);
                    }
                    self.state = State::SkipLine;
                    let discard = self.oversize == OversizePolicy::Discard;
                    let data = if discard {
                        src.advance(self.max_frame);
                        Bytes::new()
                    } else {
                        src.split_to(self.max_frame).freeze()
                    };
                    let notice = notice.or(Some(Notice::Oversize {
                        declared: None,
                        discarded: discard,
                    }));
                    return Ok(Some(Frame::with(data, !discard, notice)));
                }
                State::Octet { len } => {
                    if src.len() < len {
                        return Ok(None);
                    }
                    self.state = State::Start;
                    return Ok(Some(Frame::new(src.split_to(len).freeze())));
                }
                State::OctetOversize { len } => {
                    if src.len() < self.max_frame {
                        return Ok(None);
                    }
                    self.state = State::SkipBytes {
                        remaining: len - self.max_frame,
                    };
                    let data = src.split_to(self.max_frame).freeze();
                    return Ok(Some(Frame::with(
                        data,
                        true,
                        Some(Notice::Oversize {
                            declared: Some(len),
                            discarded: false,
                        }),
                    )));
                }
                State::SkipBytes { remaining } => {
                    let n = remaining.min(src.len());
                    src.advance(n);
                    if n < remaining {
                        self.state = State::SkipBytes {
                            remaining: remaining - n,
                        };
                        return Ok(None);
                    }
                    self.state = State::Start;
                }
                State::SkipLine => match find_trailer(src) {
                    Some(i) => {
                        src.advance(i + 1);
                        self.state = State::Start;
                    }
                    None => {
                        src.clear();
                        return Ok(None);
                    }
                },
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        let state = std::mem::replace(&mut self.state, State::Start);
        self.scanned = 0;
        let rest = src.split().freeze();
        let frame = match state {
            State::Start | State::Line { .. } if rest.is_empty() => None,
            State::Start => {
                // A partial count at the end of the stream: a last line without trailer.
                // It is at most a few bytes, but may still exceed a tiny limit.
                let notice = (self.framing == Framing::OctetCounting).then_some(Notice::BadCount);
                let mut rest = trim_cr(rest);
                if rest.len() > self.max_frame {
                    rest.truncate(self.max_frame);
                    let notice = notice.or(Some(Notice::Oversize {
                        declared: None,
                        discarded: false,
                    }));
                    Some(Frame::with(rest, true, notice))
                } else {
                    Some(Frame::with(rest, false, notice))
                }
            }
            State::Line { notice } => Some(Frame::with(trim_cr(rest), false, notice)),
            State::Octet { len } => {
                Some(Frame::with(rest, true, Some(Notice::Eof { declared: len })))
            }
            State::OctetOversize { len } => Some(Frame::with(
                rest,
                true,
                Some(Notice::Oversize {
                    declared: Some(len),
                    discarded: false,
                }),
            )),
            State::SkipBytes { .. } | State::SkipLine => None,
        };
        Ok(frame)
    }
}

fn trim_cr(mut b: Bytes) -> Bytes {
    if b.last() == Some(&b'\r') {
        b.truncate(b.len() - 1);
    }
    b
}

impl SyslogCodec {
    /// Appends one framed message: `MSG-LEN SP MSG` for octet counting and
    /// [`Auto`](Framing::Auto), `MSG LF` for [`NonTransparent`](Framing::NonTransparent)
    /// (an LF inside the message would split it; use octet counting for such messages).
    pub fn encode_frame(&self, msg: &[u8], dst: &mut BytesMut) {
        match self.framing {
            Framing::NonTransparent => {
                dst.reserve(msg.len() + 1);
                dst.put_slice(msg);
                dst.put_u8(b'\n');
            }
            Framing::Auto | Framing::OctetCounting => {
                dst.reserve(msg.len() + 11);
                // Writing to a BytesMut cannot fail.
                let _ = write!(dst, "{} ", msg.len());
                dst.put_slice(msg);
            }
        }
    }
}

impl Encoder<&[u8]> for SyslogCodec {
    type Error = io::Error;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), io::Error> {
        self.encode_frame(item, dst);
        Ok(())
    }
}

impl Encoder<Bytes> for SyslogCodec {
    type Error = io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), io::Error> {
        self.encode_frame(&item, dst);
        Ok(())
    }
}

/// Encodes the message as RFC 5424 and frames it.
impl Encoder<&crate::Message<'_>> for SyslogCodec {
    type Error = io::Error;

    fn encode(&mut self, item: &crate::Message<'_>, dst: &mut BytesMut) -> Result<(), io::Error> {
        let mut msg = Vec::with_capacity(item.raw().len() + 32);
        item.encode_rfc5424(&mut msg);
        self.encode_frame(&msg, dst);
        Ok(())
    }
}
