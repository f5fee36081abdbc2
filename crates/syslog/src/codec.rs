//! RFC 6587 framing for syslog over TCP/TLS: a tokio-util [`Decoder`] and [`Encoder`].
//!
//! The decoder yields one [`Frame`] per message and never ends the stream because of what
//! a sender wrote: a frame over the size limit, a bad octet count or a stream that ends
//! mid-frame each produce a frame carrying a [`Notice`], and decoding resumes at the next
//! frame boundary. The only errors are I/O errors from the transport.
//!
//! No count is trusted blindly. In [`Framing::Auto`], an octet count above the frame limit
//! is honoured only while the counted bytes do not look like more frames: as soon as a
//! trailer (LF or NUL) inside them is followed by `<PRI>` or `MSG-LEN SP <`, decoding
//! resynchronises there and reports [`Notice::Resync`]. Bytes that no frame holds are
//! reported, once the decoder is done dropping them, on an empty frame with
//! [`Notice::Skipped`] where [`Notice::Oversize`] does not already account for them (see
//! each variant).
//!
//! ```
//! use bytes::BytesMut;
//! use mcas_syslog::codec::{Framing, Notice, SyslogCodec};
//! use tokio_util::codec::Decoder;
//!
//! let mut codec = SyslogCodec::new(Framing::Auto);
//! // An octet-counted frame, then an LF-terminated one (framing is chosen per frame).
//! let mut buf = BytesMut::from(&b"10 <13>hello\n<13>world\n"[..]);
//! let a = codec.decode(&mut buf)?.ok_or("no frame")?;
//! let b = codec.decode(&mut buf)?.ok_or("no frame")?;
//! assert_eq!((&a.data()[..], &b.data()[..]), (&b"<13>hello\n"[..], &b"<13>world"[..]));
//! assert!(a.notice().is_none() && !a.is_truncated());
//!
//! // A count no frame within the limit can have, then LF-framed lines: the count is not
//! // honoured, and nothing after it is lost.
//! let mut buf = BytesMut::from(&b"999999999 <13>one\n<13>two\n"[..]);
//! let a = codec.decode(&mut buf)?.ok_or("no frame")?;
//! let b = codec.decode(&mut buf)?.ok_or("no frame")?;
//! assert_eq!((&a.data()[..], &b.data()[..]), (&b"<13>one"[..], &b"<13>two"[..]));
//! let resync = Notice::Resync { declared: 999_999_999, skipped: 0 };
//! assert_eq!((a.notice(), b.notice()), (Some(resync), None));
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
    ///
    /// A count within the frame limit is always honoured, whatever the frame holds (LFs
    /// included). A count above the limit cannot be checked, so while its bytes are read
    /// (or skipped) the decoder watches for a trailer followed by the start of a frame,
    /// and resynchronises there with [`Notice::Resync`]: a bogus count cannot swallow the
    /// LF-framed messages after it.
    Auto,
    /// RFC 6587 §3.4.1 (and RFC 5425): every frame is `MSG-LEN SP MSG`. Bytes that do not
    /// start with a valid count are delivered up to the next LF with
    /// [`Notice::BadCount`], and decoding resynchronises there. Every count is honoured;
    /// every byte dropped (the rest of an oversize frame, of an over-long line) is
    /// reported with [`Notice::Skipped`].
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
    /// [`Framing::Auto`] did not honour an octet count above the frame limit: inside the
    /// counted bytes, a trailer (LF or NUL) was followed by what starts a frame (`<PRI>`
    /// with PRI 0–191, or `MSG-LEN SP <`, wholly within the counted bytes), so the count
    /// is taken as bogus and decoding resumed after that trailer. A count within the limit
    /// is never second-guessed.
    ///
    /// When the trailer came within the first `max_frame` bytes, this notice rides on the
    /// frame holding the message bytes after the count up to the trailer (not truncated,
    /// `skipped` is 0), as if the line had been LF-framed. Otherwise the first bytes were
    /// already delivered (or discarded) with [`Notice::Oversize`], and this notice comes on
    /// an empty frame.
    Resync {
        /// The MSG-LEN the sender announced.
        declared: usize,
        /// Bytes between the count and the trailer that no frame holds (a discarded head
        /// included; the trailer itself not).
        skipped: usize,
    },
    /// The decoder dropped `bytes` bytes that no frame holds, and is done dropping them
    /// (at the end of the counted frame, at the LF ending an over-long line, or at the end
    /// of the stream). It comes on an empty frame, once per frame whose bytes were dropped,
    /// after that frame was reported with [`Notice::Oversize`] (or [`Notice::BadCount`]
    /// for a line). `bytes` counts the rest after a truncated head, or all of a discarded
    /// frame.
    ///
    /// - [`Framing::OctetCounting`]: always, so the sum of `bytes` is every byte dropped:
    ///   from oversize frames, and from over-long lines without a valid count.
    /// - [`Framing::Auto`]: when the bytes dropped from an oversize octet-counted frame
    ///   held a trailer before the frame's last byte, so LF-framed messages (without a
    ///   PRI, or [`Notice::Resync`] would have ended the drop) may have been among them.
    ///   A drop without one is the tail an honest oversize frame announced with its
    ///   count, which [`Notice::Oversize`] `declared` accounts for.
    /// - [`Framing::NonTransparent`]: never (an over-long line's tail is reported by
    ///   [`Notice::Oversize`]).
    Skipped {
        /// The number of bytes dropped (trailers included).
        bytes: usize,
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
    /// Strict octet counting: reading the first `max` bytes of an oversize frame.
    OctetOversize { len: usize },
    /// Auto: a count of `len` above the limit (header consumed). Reading the first `max`
    /// bytes while watching for a trailer followed by the start of a frame.
    Suspect { len: usize },
    /// Dropping the rest of an octet-counted frame announced as `declared` bytes:
    /// `remaining` to go, `skipped` dropped so far, `breaks` when a trailer was among
    /// them. In Auto, a trailer followed by a frame start ends the skip early.
    SkipBytes {
        declared: usize,
        remaining: usize,
        skipped: usize,
        breaks: bool,
    },
    /// Dropping bytes up to the next delimiter; `skipped` so far.
    SkipLine { skipped: usize },
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

/// Whether `s` starts the way a frame does: `<PRI>` (one to three digits, at most 191)
/// or `MSG-LEN SP <` (a count as [`Framing::Auto`] reads it). `None`: too few bytes to
/// tell, which needs at most [`MAX_LEN_DIGITS`] + 2 bytes. `complete`: `s` is all there
/// is, so a partial start is not a start.
fn frame_start(s: &[u8], complete: bool) -> Option<bool> {
    let undecided = if complete { Some(false) } else { None };
    let Some((&first, rest)) = s.split_first() else {
        return undecided;
    };
    match first {
        b'<' => {
            let digits = rest
                .iter()
                .take(4)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 3 {
                return Some(false);
            }
            match rest.get(digits) {
                None => undecided,
                Some(b'>') if digits > 0 => {
                    let pri = rest[..digits]
                        .iter()
                        .fold(0u16, |v, &b| v * 10 + u16::from(b - b'0'));
                    Some(pri <= 191)
                }
                Some(_) => Some(false),
            }
        }
        b'1'..=b'9' => {
            let digits = s
                .iter()
                .take(MAX_LEN_DIGITS + 1)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > MAX_LEN_DIGITS {
                return Some(false);
            }
            match (s.get(digits), s.get(digits + 1)) {
                (None, _) | (Some(b' '), None) => undecided,
                (Some(b' '), Some(b'<')) => Some(true),
                _ => Some(false),
            }
        }
        _ => Some(false),
    }
}

/// Where a search for a resynchronisation point ended.
enum Hunt {
    /// A trailer at this offset is followed by the start of a frame.
    Found(usize),
    /// The trailer at this offset needs more bytes after it to tell.
    Pending(usize),
    /// No trailer before the end of the search starts a frame.
    Clear,
}

/// Looks for a trailer at an offset in `from..end` followed by the start of a frame,
/// where only the first `frame` bytes of `src` (the rest of the counted frame) may show
/// that start: bytes of the next frame never make a trailer inside this one look like a
/// boundary. `eof`: no more bytes will come.
fn hunt(src: &[u8], from: usize, end: usize, frame: usize, eof: bool) -> Hunt {
    let seen = src.len().min(frame);
    let complete = eof || src.len() >= frame;
    let mut at = from;
    while at < end {
        let Some(i) = find_trailer(&src[at..end]) else {
            break;
        };
        let p = at + i;
        match frame_start(&src[p + 1..seen], complete) {
            Some(true) => return Hunt::Found(p),
            Some(false) => at = p + 1,
            None => return Hunt::Pending(p),
        }
    }
    Hunt::Clear
}

fn empty_with(notice: Notice) -> Frame {
    Frame::with(Bytes::new(), false, Some(notice))
}

impl SyslogCodec {
    /// The notice for a finished run of `skipped` dropped bytes (`breaks`: a trailer was
    /// among them), if this framing reports it (see [`Notice::Skipped`]).
    fn skipped(&self, skipped: usize, breaks: bool) -> Option<Frame> {
        let report = match self.framing {
            Framing::OctetCounting => skipped > 0,
            Framing::Auto => breaks,
            Framing::NonTransparent => false,
        };
        report.then(|| empty_with(Notice::Skipped { bytes: skipped }))
    }

    /// Delivers (or discards) the first `n` bytes of an oversize octet-counted frame of
    /// `len` bytes, and drops the rest after it.
    fn oversize_head(&mut self, src: &mut BytesMut, len: usize, n: usize) -> Frame {
        let notice = |discarded| {
            Some(Notice::Oversize {
                declared: Some(len),
                discarded,
            })
        };
        if self.oversize == OversizePolicy::Discard {
            let breaks = find_trailer(&src[..n]).is_some();
            src.advance(n);
            self.state = State::SkipBytes {
                declared: len,
                remaining: len - n,
                skipped: n,
                breaks,
            };
            Frame::with(Bytes::new(), false, notice(true))
        } else {
            self.state = State::SkipBytes {
                declared: len,
                remaining: len - n,
                skipped: 0,
                breaks: false,
            };
            Frame::with(src.split_to(n).freeze(), true, notice(false))
        }
    }

    fn decode_inner(&mut self, src: &mut BytesMut, eof: bool) -> Result<Option<Frame>, io::Error> {
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
                            } else if self.framing == Framing::Auto {
                                self.state = State::Suspect { len };
                            } else if self.oversize == OversizePolicy::Discard {
                                self.state = State::SkipBytes {
                                    declared: len,
                                    remaining: len,
                                    skipped: 0,
                                    breaks: false,
                                };
                                return Ok(Some(empty_with(Notice::Oversize {
                                    declared: Some(len),
                                    discarded: true,
                                })));
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
                    let discard = self.oversize == OversizePolicy::Discard;
                    self.state = State::SkipLine {
                        skipped: if discard { self.max_frame } else { 0 },
                    };
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
                    return Ok(Some(self.oversize_head(src, len, self.max_frame)));
                }
                State::Suspect { len } => {
                    // Candidates are the trailers within the head, the one that would
                    // end a line of exactly `max_frame` bytes included (`max_frame < len`).
                    let last = self.max_frame;
                    let end = src.len().min(last + 1);
                    match hunt(src, self.scanned, end, len, eof) {
                        Hunt::Found(p) => {
                            self.state = State::Start;
                            let data = Self::take_line(src, p);
                            let notice = Notice::Resync {
                                declared: len,
                                skipped: 0,
                            };
                            return Ok(Some(Frame::with(data, false, Some(notice))));
                        }
                        Hunt::Pending(p) => {
                            self.scanned = p;
                            return Ok(None);
                        }
                        Hunt::Clear if end <= last => {
                            self.scanned = end;
                            return Ok(None);
                        }
                        Hunt::Clear => {}
                    }
                    // Nothing in the head looks like another frame: an oversize frame,
                    // as its count says. `end > last` means at least `max_frame` bytes.
                    self.scanned = 0;
                    return Ok(Some(self.oversize_head(src, len, self.max_frame)));
                }
                State::SkipBytes {
                    declared,
                    remaining,
                    skipped,
                    breaks,
                } => {
                    let avail = remaining.min(src.len());
                    if self.framing == Framing::Auto {
                        match hunt(src, 0, avail, remaining, eof) {
                            Hunt::Found(p) => {
                                src.advance(p + 1);
                                self.state = State::Start;
                                return Ok(Some(empty_with(Notice::Resync {
                                    declared,
                                    skipped: skipped + p,
                                })));
                            }
                            Hunt::Pending(p) => {
                                // Drop up to the trailer; keep it and what follows.
                                let breaks = breaks || find_trailer(&src[..p]).is_some();
                                src.advance(p);
                                self.state = State::SkipBytes {
                                    declared,
                                    remaining: remaining - p,
                                    skipped: skipped + p,
                                    breaks,
                                };
                                return Ok(None);
                            }
                            Hunt::Clear => {}
                        }
                    }
                    // The frame's own last byte may be its trailer: not a line break.
                    let inner = avail.min(remaining - 1);
                    let breaks = breaks || find_trailer(&src[..inner]).is_some();
                    src.advance(avail);
                    let skipped = skipped + avail;
                    if avail < remaining {
                        self.state = State::SkipBytes {
                            declared,
                            remaining: remaining - avail,
                            skipped,
                            breaks,
                        };
                        return Ok(None);
                    }
                    self.state = State::Start;
                    if let Some(frame) = self.skipped(skipped, breaks) {
                        return Ok(Some(frame));
                    }
                }
                State::SkipLine { skipped } => match find_trailer(src) {
                    Some(i) => {
                        src.advance(i + 1);
                        self.state = State::Start;
                        let bytes = skipped.saturating_add(i);
                        if self.framing == Framing::OctetCounting && bytes > 0 {
                            return Ok(Some(empty_with(Notice::Skipped { bytes })));
                        }
                    }
                    None => {
                        self.state = State::SkipLine {
                            skipped: skipped.saturating_add(src.len()),
                        };
                        src.clear();
                        return Ok(None);
                    }
                },
            }
        }
    }
}

impl Decoder for SyslogCodec {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        self.decode_inner(src, false)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        if let Some(frame) = self.decode_inner(src, true)? {
            return Ok(Some(frame));
        }
        self.scanned = 0;
        match self.state {
            // The stream ended within the head of a suspect frame (no more than
            // `max_frame` bytes are left, or the head would have been delivered): what
            // arrived is the head.
            State::Suspect { len } => {
                let n = src.len();
                return Ok(Some(self.oversize_head(src, len, n)));
            }
            // `decode_inner` dropped what was left of the frame.
            State::SkipBytes {
                skipped, breaks, ..
            } => {
                self.state = State::Start;
                return Ok(self.skipped(skipped, breaks));
            }
            State::SkipLine { skipped } => {
                self.state = State::Start;
                let report = self.framing == Framing::OctetCounting && skipped > 0;
                return Ok(report.then(|| empty_with(Notice::Skipped { bytes: skipped })));
            }
            _ => {}
        }
        let state = std::mem::replace(&mut self.state, State::Start);
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
            State::Suspect { .. } | State::SkipBytes { .. } | State::SkipLine { .. } => None,
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
