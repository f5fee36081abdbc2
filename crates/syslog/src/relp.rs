//! RELP (rsyslog's Reliable Event Logging Protocol): frames, answers, offers and the
//! server's view of a session, without I/O.
//!
//! A RELP frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. [`FrameDecoder`] is given
//! the bytes of a session as they arrive and returns whole frames borrowing from them
//! ([`Frame`]; [`Frame::into_owned`] detaches one), or asks for more. Unlike RFC 6587
//! framing there is no resynchronising after garbage: a RELP sender numbers its commands
//! and resends what was not answered on a new session, so a frame that breaks the grammar
//! or announces more than the DATALEN limit ([`DEFAULT_MAX_DATALEN`], 128 KiB as in
//! librelp) is an [`Error`] that ends that session: the caller closes the connection,
//! and the sender reconnects and resends.
//!
//! [`ServerSession`] checks what a client sends (`open` first, TXNRs increasing by one,
//! then `syslog` frames, then `close`) and tells what to answer. The answer to a `syslog`
//! command is the caller's to send ([`encode_ok`]) once the message is safe, in command
//! order. The encoders write what a server sends (answers, the `open` answer with its
//! offers, the `serverclose` hint) and what a client sends (`open`, `syslog`, `close`).
//!
//! ```
//! use mcas_syslog::relp::{self, Event, FrameDecoder, ServerSession, Txnr};
//!
//! /// Handles the whole frames at the front of `input`; keeps a partial one.
//! fn serve(
//!     decoder: &mut FrameDecoder,
//!     session: &mut ServerSession,
//!     input: &mut Vec<u8>,
//!     stored: &mut Vec<Vec<u8>>,
//!     answers: &mut Vec<u8>,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     while let Some((frame, len)) = decoder.decode(input)? {
//!         match session.receive(&frame)? {
//!             Event::Syslog { txnr, message } => {
//!                 stored.push(message.to_vec()); // make it durable first, then answer
//!                 relp::encode_ok(txnr, answers);
//!             }
//!             event => event.encode_answer(session, answers),
//!         }
//!         input.drain(..len);
//!     }
//!     Ok(())
//! }
//!
//! let (mut decoder, mut session) = (FrameDecoder::new(), ServerSession::new());
//! let (mut stored, mut answers) = (Vec::new(), Vec::new());
//! // What rsyslog's omrelp sends first, then the start of one message.
//! let mut input = b"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n2 syslog 9 <13>h".to_vec();
//! serve(&mut decoder, &mut session, &mut input, &mut stored, &mut answers)?;
//! assert!(stored.is_empty() && input.starts_with(b"2 syslog")); // needs more bytes
//! input.extend_from_slice(b"ello\n3 close 0\n");
//! serve(&mut decoder, &mut session, &mut input, &mut stored, &mut answers)?;
//! assert_eq!(stored, [b"<13>hello".to_vec()]);
//! assert_eq!(
//!     answers,
//!     b"1 rsp 64 200 OK\nrelp_version=0\nrelp_software=mcas-forward\ncommands=syslog\n2 rsp 6 200 OK\n3 rsp 0\n"
//! );
//! assert!(session.is_closed() && input.is_empty());
//!
//! // Garbage ends the session, with the byte where it went wrong.
//! let err = FrameDecoder::new().decode(b"1 open 3x").err().ok_or("no error")?;
//! assert_eq!((err.offset(), err.kind()), (8, relp::ErrorKind::DataLen));
//! assert_eq!(Txnr::MAX.next(), Txnr::FIRST); // 999,999,999 wraps to 1
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes};

/// librelp's default limit on DATALEN: 128 KiB.
pub const DEFAULT_MAX_DATALEN: usize = 128 * 1024;

/// The largest DATALEN the grammar can express (nine digits).
pub const MAX_DATALEN: usize = 999_999_999;

/// The longest command: 32 letters.
pub const MAX_COMMAND_LEN: usize = 32;

/// The longest text of an answer (`rsp`), in bytes.
pub const MAX_RSP_TEXT: usize = 80;

/// The RELP version this crate speaks: 0, as deployed librelp does (its document says 1,
/// but librelp 1.11.0 offers and accepts 0).
pub const PROTOCOL_VERSION: u32 = 0;

/// The longest header: TXNR, COMMAND and DATALEN with their separators.
const MAX_HEADER: usize = 9 + 1 + MAX_COMMAND_LEN + 1 + 9 + 1;

/// A transaction number: 1 to 999,999,999 for commands and their answers, 0 for hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Txnr(u32);

impl Txnr {
    /// 0: the number of hints (`serverclose`), never of a command.
    pub const HINT: Txnr = Txnr(0);
    /// 1: the number of a session's first command.
    pub const FIRST: Txnr = Txnr(1);
    /// 999,999,999: the largest number, followed by 1.
    pub const MAX: Txnr = Txnr(999_999_999);

    /// The number, if it is at most 999,999,999.
    pub const fn new(n: u32) -> Option<Txnr> {
        if n <= Self::MAX.0 {
            Some(Txnr(n))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The number after this one: 999,999,999 wraps to 1, and 0 (a hint's) is followed
    /// by 1.
    pub const fn next(self) -> Txnr {
        if self.0 >= Self::MAX.0 {
            Self::FIRST
        } else {
            Txnr(self.0 + 1)
        }
    }

    /// True for 0, the number of hints.
    pub const fn is_hint(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Txnr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A RELP command: 1 to 32 ASCII letters. The commands a syslog session uses are
/// associated constants, usable in patterns; other commands are kept as sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command<'a>(&'a str);

impl<'a> Command<'a> {
    /// `open`: the client's first command, carrying its offers.
    pub const OPEN: Command<'static> = Command("open");
    /// `syslog`: one message.
    pub const SYSLOG: Command<'static> = Command("syslog");
    /// `close`: the client ends the session.
    pub const CLOSE: Command<'static> = Command("close");
    /// `rsp`: an answer, carrying the TXNR of the command it answers.
    pub const RSP: Command<'static> = Command("rsp");
    /// `serverclose`: the server's hint that it is going away (TXNR 0).
    pub const SERVERCLOSE: Command<'static> = Command("serverclose");

    const KNOWN: [Command<'static>; 5] = [
        Self::OPEN,
        Self::SYSLOG,
        Self::CLOSE,
        Self::RSP,
        Self::SERVERCLOSE,
    ];

    /// The command, if `name` is 1 to 32 ASCII letters.
    pub fn new(name: &'a str) -> Option<Command<'a>> {
        let ok = (1..=MAX_COMMAND_LEN).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphabetic());
        ok.then_some(Command(name))
    }

    /// The command's name.
    pub fn as_str(self) -> &'a str {
        self.0
    }

    /// The name without a borrow: the known commands need no allocation.
    fn to_static(self) -> Cow<'static, str> {
        match Self::KNOWN.iter().find(|k| k.0 == self.0) {
            Some(k) => Cow::Borrowed(k.0),
            None => Cow::Owned(self.0.to_owned()),
        }
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One RELP frame, borrowing its command and data from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    txnr: Txnr,
    command: Command<'a>,
    data: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A frame to encode. Fails (with [`ErrorKind::TooLong`]) only when `data` is longer
    /// than [`MAX_DATALEN`], which nine digits cannot count.
    pub fn new(txnr: Txnr, command: Command<'a>, data: &'a [u8]) -> Result<Frame<'a>, Error> {
        if data.len() > MAX_DATALEN {
            return Err(Error::new(
                0,
                ErrorKind::TooLong {
                    datalen: data.len(),
                    max: MAX_DATALEN,
                },
            ));
        }
        Ok(Frame {
            txnr,
            command,
            data,
        })
    }

    /// The transaction number.
    pub fn txnr(&self) -> Txnr {
        self.txnr
    }

    /// The command.
    pub fn command(&self) -> Command<'a> {
        self.command
    }

    /// The data (DATALEN bytes; empty when DATALEN is 0).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The number of bytes [`encode`](Frame::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let data = if self.data.is_empty() {
            0
        } else {
            1 + self.data.len()
        };
        digits(self.txnr.0)
            + 1
            + self.command.0.len()
            + 1
            + digits(self.data.len() as u32)
            + data
            + 1
    }

    /// Appends the frame, trailer included. The decoder reads back the same frame, and a
    /// frame it decoded encodes to the bytes it came from.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        put_header(out, self.txnr, self.command, self.data.len());
        if !self.data.is_empty() {
            out.put_u8(b' ');
            out.put_slice(self.data);
        }
        out.put_u8(b'\n');
    }

    /// The frame without a borrow (the data is copied).
    pub fn into_owned(self) -> OwnedFrame {
        OwnedFrame {
            txnr: self.txnr,
            command: self.command.to_static(),
            data: Bytes::copy_from_slice(self.data),
        }
    }
}

/// A [`Frame`] that owns its data (and, for commands other than the known ones, its
/// command name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    txnr: Txnr,
    command: Cow<'static, str>,
    data: Bytes,
}

impl OwnedFrame {
    /// The frame, borrowing from this one.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            txnr: self.txnr,
            command: Command(&self.command),
            data: &self.data,
        }
    }

    /// The transaction number.
    pub fn txnr(&self) -> Txnr {
        self.txnr
    }

    /// The command.
    pub fn command(&self) -> Command<'_> {
        Command(&self.command)
    }

    /// The data.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Takes the data.
    pub fn into_data(self) -> Bytes {
        self.data
    }
}

impl From<Frame<'_>> for OwnedFrame {
    fn from(frame: Frame<'_>) -> Self {
        frame.into_owned()
    }
}

/// Why bytes are not RELP. For the decoder, a framing error ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    offset: u64,
    kind: ErrorKind,
}

/// The class of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// TXNR is not 1 to 9 digits (without a leading zero) followed by SP.
    Txnr,
    /// COMMAND is not 1 to 32 ASCII letters followed by SP.
    Command,
    /// DATALEN is not 1 to 9 digits (without a leading zero) followed by SP, or by the
    /// trailer when it is 0.
    DataLen,
    /// DATALEN is above the limit. The offset is that of DATALEN's first digit.
    TooLong {
        /// The DATALEN the frame announced (or the length of the data to encode).
        datalen: usize,
        /// The limit.
        max: usize,
    },
    /// The byte after DATA (or after DATALEN 0) is not the LF trailer.
    Trailer,
    /// The session ended inside a frame (see [`FrameDecoder::finish`]).
    Truncated,
    /// An offer line is not `name[=value[,value]...]` (a name of 1 to 32 printable ASCII
    /// characters other than `=`).
    Offer,
    /// The data of an answer is not `CODE SP TEXT [LF OFFERS]` with a 3-digit code, or
    /// (when encoding) the text is over 80 bytes or holds an LF.
    Response,
}

impl Error {
    fn new(offset: u64, kind: ErrorKind) -> Self {
        Self { offset, kind }
    }

    /// Byte offset of the problem: from the start of the session for the decoder, from
    /// the start of the data for offers and answers.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            ErrorKind::Txnr => write!(f, "RELP: bad TXNR at byte {at}"),
            ErrorKind::Command => write!(f, "RELP: bad command at byte {at}"),
            ErrorKind::DataLen => write!(f, "RELP: bad DATALEN at byte {at}"),
            ErrorKind::TooLong { datalen, max } => write!(
                f,
                "RELP: DATALEN {datalen} at byte {at} is above the limit of {max} bytes"
            ),
            ErrorKind::Trailer => write!(f, "RELP: missing LF trailer at byte {at}"),
            ErrorKind::Truncated => write!(f, "RELP: session ended inside a frame at byte {at}"),
            ErrorKind::Offer => write!(f, "RELP: bad offer at byte {at}"),
            ErrorKind::Response => write!(f, "RELP: bad answer at byte {at}"),
        }
    }
}

impl std::error::Error for Error {}

/// The result of reading the start of a buffer.
enum Parsed<'a> {
    /// A whole frame of `len` bytes.
    Frame(Frame<'a>, usize),
    /// A partial frame: at least this many bytes in all are needed (the codec reserves
    /// room for them).
    Need(#[cfg_attr(not(feature = "codec"), allow(dead_code, reason = "read by the codec"))] usize),
}

/// Reads 1 to 9 digits from `at`, without a leading zero. `Ok(None)`: the buffer ends
/// inside the number. On success, the value and the offset of the byte after it.
fn number(
    buf: &[u8],
    at: usize,
    kind: ErrorKind,
) -> Result<Option<(u32, usize)>, (usize, ErrorKind)> {
    // Ten bytes are enough to tell: nine digits and what follows them.
    let rest = buf.get(at..).unwrap_or_default();
    let window = &rest[..rest.len().min(10)];
    let n = window.iter().take_while(|b| b.is_ascii_digit()).count();
    if n >= 2 && window[0] == b'0' {
        return Err((at + 1, kind));
    }
    if n == 10 {
        return Err((at + 9, kind));
    }
    if n == window.len() {
        return Ok(None);
    }
    if n == 0 {
        return Err((at, kind));
    }
    let value = window[..n]
        .iter()
        .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    Ok(Some((value, at + n)))
}

fn parse(buf: &[u8], max_datalen: usize) -> Result<Parsed<'_>, (usize, ErrorKind)> {
    let more = Parsed::Need(buf.len() + 1);
    // TXNR SP
    let Some((txnr, at)) = number(buf, 0, ErrorKind::Txnr)? else {
        return Ok(more);
    };
    match buf.get(at) {
        None => return Ok(more),
        Some(b' ') => {}
        Some(_) => return Err((at, ErrorKind::Txnr)),
    }
    // COMMAND SP
    let start = at + 1;
    let rest = buf.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_COMMAND_LEN + 1)];
    let n = window
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    if n > MAX_COMMAND_LEN {
        return Err((start + MAX_COMMAND_LEN, ErrorKind::Command));
    }
    match window.get(n) {
        None => return Ok(more),
        Some(b' ') if n > 0 => {}
        Some(_) => return Err((start + n, ErrorKind::Command)),
    }
    let at = start + n;
    let Ok(command) = std::str::from_utf8(&buf[start..at]) else {
        return Err((start, ErrorKind::Command));
    };
    // DATALEN, then SP DATA or nothing, then LF.
    let len_at = at + 1;
    let Some((datalen, at)) = number(buf, len_at, ErrorKind::DataLen)? else {
        return Ok(more);
    };
    let datalen = datalen as usize;
    let data_at = if datalen == 0 {
        at
    } else {
        match buf.get(at) {
            None => return Ok(more),
            Some(b' ') => {}
            Some(_) => return Err((at, ErrorKind::DataLen)),
        }
        if datalen > max_datalen {
            return Err((
                len_at,
                ErrorKind::TooLong {
                    datalen,
                    max: max_datalen,
                },
            ));
        }
        at + 1
    };
    let end = data_at + datalen;
    match buf.get(end) {
        None => Ok(Parsed::Need(end + 1)),
        Some(b'\n') => {
            let frame = Frame {
                // Nine digits at most: always within range.
                txnr: Txnr(txnr),
                command: Command(command),
                data: &buf[data_at..end],
            };
            Ok(Parsed::Frame(frame, end + 1))
        }
        Some(_) => Err((end, ErrorKind::Trailer)),
    }
}

/// Reads one frame from the start of `buf`, without a session: `Ok(None)` when `buf`
/// holds only the beginning of a frame, otherwise the frame and its length in bytes.
/// Error offsets count from the start of `buf`.
///
/// ```
/// use mcas_syslog::relp::{Command, parse_frame};
/// let (frame, len) = parse_frame(b"5 rsp 0\n6 rsp", 1024)?.ok_or("partial")?;
/// assert_eq!((frame.txnr().get(), frame.command(), frame.data(), len), (5, Command::RSP, &b""[..], 8));
/// assert!(parse_frame(b"6 rsp", 1024)?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_frame(buf: &[u8], max_datalen: usize) -> Result<Option<(Frame<'_>, usize)>, Error> {
    match parse(buf, max_datalen) {
        Ok(Parsed::Frame(frame, len)) => Ok(Some((frame, len))),
        Ok(Parsed::Need(_)) => Ok(None),
        Err((at, kind)) => Err(Error::new(at as u64, kind)),
    }
}

/// Incremental frame decoder for one session. See the [module docs](self).
///
/// Give [`decode`](FrameDecoder::decode) the bytes not yet consumed, starting at a frame
/// boundary. It returns a frame and its length, which the decoder counts as consumed:
/// drop that many bytes from the front before the next call. `Ok(None)` asks for more
/// bytes (nothing is consumed). Before a frame or an error comes out the buffer holds at
/// most [`max_frame_len`](FrameDecoder::max_frame_len) bytes, so a caller that reads only
/// when asked never buffers more.
///
/// An error ends the session: from then on every call returns the same error.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_datalen: usize,
    /// Bytes consumed since the session started.
    position: u64,
    failed: Option<Error>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the default DATALEN limit ([`DEFAULT_MAX_DATALEN`]).
    pub fn new() -> Self {
        Self {
            max_datalen: DEFAULT_MAX_DATALEN,
            position: 0,
            failed: None,
        }
    }

    /// Sets the DATALEN limit (at most [`MAX_DATALEN`]). A frame announcing more is an
    /// [`ErrorKind::TooLong`] error, reported as soon as its DATALEN is read.
    pub fn with_max_datalen(mut self, max: usize) -> Self {
        self.max_datalen = max.min(MAX_DATALEN);
        self
    }

    /// The DATALEN limit.
    pub fn max_datalen(&self) -> usize {
        self.max_datalen
    }

    /// The most bytes a frame within the limit can take, header and trailer included.
    pub fn max_frame_len(&self) -> usize {
        MAX_HEADER + self.max_datalen + 1
    }

    /// Bytes consumed since the session started: the offset of the next frame.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Reads the next frame from the start of `buf`. See the [type docs](FrameDecoder).
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(Frame<'a>, usize)>, Error> {
        match self.step(buf)? {
            Parsed::Frame(frame, len) => Ok(Some((frame, len))),
            Parsed::Need(_) => Ok(None),
        }
    }

    /// Like `decode`, with the number of bytes a partial frame needs at least.
    fn step<'a>(&mut self, buf: &'a [u8]) -> Result<Parsed<'a>, Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match parse(buf, self.max_datalen) {
            Ok(Parsed::Frame(frame, len)) => {
                self.position += len as u64;
                Ok(Parsed::Frame(frame, len))
            }
            Ok(need) => Ok(need),
            Err((at, kind)) => Err(self.fail(self.position + at as u64, kind)),
        }
    }

    fn fail(&mut self, offset: u64, kind: ErrorKind) -> Error {
        let e = Error::new(offset, kind);
        self.failed = Some(e.clone());
        e
    }

    /// Call when the session's input ended, with the bytes not consumed: an error
    /// ([`ErrorKind::Truncated`], at the offset of the partial frame) if any are left.
    pub fn finish(&mut self, rest: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if rest.is_empty() {
            return Ok(());
        }
        // `rest` holds no whole frame, or `decode` would have returned it.
        Err(self.fail(self.position, ErrorKind::Truncated))
    }
}

/// Writes the decimal digits of `n`.
fn put_number<B: BufMut>(out: &mut B, n: u32) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&tmp[i..]);
}

fn digits(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

fn put_header<B: BufMut>(out: &mut B, txnr: Txnr, command: Command<'_>, datalen: usize) {
    put_number(out, txnr.0);
    out.put_u8(b' ');
    out.put_slice(command.0.as_bytes());
    out.put_u8(b' ');
    // Callers keep DATALEN within nine digits.
    put_number(out, datalen.min(MAX_DATALEN) as u32);
}

/// The data of an answer: `CODE SP TEXT [LF OFFERS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    code: u16,
    text: &'a [u8],
    offers: &'a [u8],
}

impl<'a> Response<'a> {
    /// `200 OK`.
    pub const OK: Response<'static> = Response {
        code: 200,
        text: b"OK",
        offers: b"",
    };

    /// An answer with a 3-digit code (`200` ok, `500` error) and a text of at most 80
    /// bytes without LF.
    pub fn new(code: u16, text: &'a str) -> Result<Response<'a>, Error> {
        if !(100..=999).contains(&code) {
            return Err(Error::new(0, ErrorKind::Response));
        }
        if text.len() > MAX_RSP_TEXT {
            return Err(Error::new(4 + MAX_RSP_TEXT as u64, ErrorKind::Response));
        }
        if let Some(i) = text.bytes().position(|b| b == b'\n') {
            return Err(Error::new(4 + i as u64, ErrorKind::Response));
        }
        Ok(Response {
            code,
            text: text.as_bytes(),
            offers: b"",
        })
    }

    /// The same answer followed by offers (`name=value` lines, see [`Offers`]).
    pub fn with_offers(self, offers: &'a [u8]) -> Response<'a> {
        Response { offers, ..self }
    }

    /// Reads an answer's data. The text may be longer than 80 bytes (it is the peer's).
    pub fn parse(data: &'a [u8]) -> Result<Response<'a>, Error> {
        let bad = |at: usize| Error::new(at as u64, ErrorKind::Response);
        let [a, b, c, rest @ ..] = data else {
            return Err(bad(data.len()));
        };
        let mut code = 0u16;
        for (i, d) in [a, b, c].into_iter().enumerate() {
            if !d.is_ascii_digit() {
                return Err(bad(i));
            }
            code = code * 10 + u16::from(d - b'0');
        }
        let (text, offers) = match rest {
            [] => (&rest[..0], &rest[..0]),
            [b' ', tail @ ..] => match memchr::memchr(b'\n', tail) {
                Some(i) => (&tail[..i], &tail[i + 1..]),
                None => (tail, &tail[tail.len()..]),
            },
            [b'\n', tail @ ..] => (&rest[..0], tail),
            _ => return Err(bad(3)),
        };
        Ok(Response { code, text, offers })
    }

    /// The code: 200 is ok, anything else an error.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// True for code 200.
    pub fn is_ok(&self) -> bool {
        self.code == 200
    }

    /// The text after the code.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// The offers after the text's LF, if any (parse them with [`Offers::parse`]).
    pub fn offers(&self) -> &'a [u8] {
        self.offers
    }

    /// The length of the answer's data.
    fn data_len(&self) -> usize {
        let offers = if self.offers.is_empty() {
            0
        } else {
            1 + self.offers.len()
        };
        4 + self.text.len() + offers
    }

    /// Appends the `rsp` frame answering `txnr`.
    pub fn encode<B: BufMut>(&self, txnr: Txnr, out: &mut B) {
        put_header(out, txnr, Command::RSP, self.data_len());
        out.put_u8(b' ');
        put_number(out, u32::from(self.code));
        out.put_u8(b' ');
        out.put_slice(self.text);
        if !self.offers.is_empty() {
            out.put_u8(b'\n');
            out.put_slice(self.offers);
        }
        out.put_u8(b'\n');
    }
}

/// Appends `TXNR rsp 6 200 OK`: the answer to a stored message.
pub fn encode_ok<B: BufMut>(txnr: Txnr, out: &mut B) {
    Response::OK.encode(txnr, out);
}

/// Appends `TXNR rsp 0`, the answer to `close` (DATALEN 0, no SP before the LF).
pub fn encode_close_answer<B: BufMut>(txnr: Txnr, out: &mut B) {
    put_header(out, txnr, Command::RSP, 0);
    out.put_u8(b'\n');
}

/// Appends the hint `0 serverclose 0`: the server is going away. Send it after the
/// answers owed, then close.
pub fn encode_serverclose<B: BufMut>(out: &mut B) {
    put_header(out, Txnr::HINT, Command::SERVERCLOSE, 0);
    out.put_u8(b'\n');
}

/// True for a name or value fit for an offer: printable ASCII, no `=`, `,` or SP.
fn offer_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (33..=126).contains(&b) && b != b'=' && b != b',')
}

/// Appends the answer to `open`: `200 OK` then the offers `relp_version`,
/// `relp_software` and `commands=syslog`, which deployed librelp needs before it sends
/// `syslog` frames. `software` is a comma-separated list of values, each printable
/// ASCII without SP, `=` or `,` (the offer is left out otherwise).
pub fn encode_open_answer<B: BufMut>(txnr: Txnr, version: u32, software: &str, out: &mut B) {
    let mut offers = Vec::with_capacity(64);
    offers.extend_from_slice(b"relp_version=");
    put_number(&mut offers, version);
    if software.split(',').all(offer_token) {
        offers.extend_from_slice(b"\nrelp_software=");
        offers.extend_from_slice(software.as_bytes());
    }
    offers.extend_from_slice(b"\ncommands=syslog");
    Response::OK.with_offers(&offers).encode(txnr, out);
}

/// Appends a client's `open`: `relp_version=0`, `relp_software=SOFTWARE` and
/// `commands=syslog`, in librelp's order. `software` is a comma-separated value list
/// (librelp sends `librelp,1.11.0,http://librelp.adiscon.com`); values that are not
/// printable ASCII without SP, `=` or `,` are left out.
pub fn encode_open<B: BufMut>(txnr: Txnr, software: &str, out: &mut B) {
    let mut offers = Vec::with_capacity(96);
    offers.extend_from_slice(b"relp_version=");
    put_number(&mut offers, PROTOCOL_VERSION);
    let values: Vec<&str> = software.split(',').filter(|v| offer_token(v)).collect();
    if !values.is_empty() {
        offers.extend_from_slice(b"\nrelp_software=");
        offers.extend_from_slice(values.join(",").as_bytes());
    }
    offers.extend_from_slice(b"\ncommands=syslog");
    put_header(out, txnr, Command::OPEN, offers.len());
    out.put_u8(b' ');
    out.put_slice(&offers);
    out.put_u8(b'\n');
}

/// Appends a `syslog` frame. Fails only for a message longer than [`MAX_DATALEN`].
pub fn encode_syslog<B: BufMut>(txnr: Txnr, message: &[u8], out: &mut B) -> Result<(), Error> {
    Frame::new(txnr, Command::SYSLOG, message)?.encode(out);
    Ok(())
}

/// Appends `TXNR close 0`.
pub fn encode_close<B: BufMut>(txnr: Txnr, out: &mut B) {
    put_header(out, txnr, Command::CLOSE, 0);
    out.put_u8(b'\n');
}

/// One offer: `name` or `name=value[,value]...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer<'a> {
    name: &'a str,
    value: &'a [u8],
}

impl<'a> Offer<'a> {
    /// The offer's name (`relp_version`, `relp_software`, `commands`...).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Everything after `=` (empty without it).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The comma-separated values (none for an offer without `=`).
    pub fn values(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let v = self.value;
        v.split(|&b| b == b',').filter(move |_| !v.is_empty())
    }

    /// The value as a number, when it is 1 to 9 digits.
    pub fn number(&self) -> Option<u32> {
        let v = self.value;
        let canonical = (1..=9).contains(&v.len())
            && v.iter().all(u8::is_ascii_digit)
            && (v[0] != b'0' || v.len() == 1);
        canonical.then(|| v.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    }

    /// True when one of the values is `value`.
    pub fn has_value(&self, value: &[u8]) -> bool {
        self.values().any(|v| v == value)
    }
}

/// The offers of an `open` (or of its answer): LF-separated lines, each `name` or
/// `name=value[,value]...`. Empty lines are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offers<'a> {
    list: Vec<Offer<'a>>,
}

impl<'a> Offers<'a> {
    /// Reads every line. A name is 1 to 32 printable ASCII characters other than `=`;
    /// a value may hold any byte but LF. Offsets count from the start of `data`.
    pub fn parse(data: &'a [u8]) -> Result<Offers<'a>, Error> {
        let mut list = Vec::new();
        let mut at = 0;
        for line in data.split(|&b| b == b'\n') {
            let start = at;
            at += line.len() + 1;
            if line.is_empty() {
                continue;
            }
            let (name, value) = match memchr::memchr(b'=', line) {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (line, &line[line.len()..]),
            };
            if let Some(i) = name.iter().position(|b| !(33..=126).contains(b)) {
                return Err(Error::new((start + i) as u64, ErrorKind::Offer));
            }
            if name.is_empty() || name.len() > MAX_COMMAND_LEN {
                return Err(Error::new(start as u64, ErrorKind::Offer));
            }
            let Ok(name) = std::str::from_utf8(name) else {
                return Err(Error::new(start as u64, ErrorKind::Offer));
            };
            list.push(Offer { name, value });
        }
        Ok(Offers { list })
    }

    /// The first offer called `name`.
    pub fn get(&self, name: &str) -> Option<Offer<'a>> {
        self.list.iter().find(|o| o.name == name).copied()
    }

    /// Every offer, in order.
    pub fn iter(&self) -> impl Iterator<Item = Offer<'a>> + '_ {
        self.list.iter().copied()
    }

    /// The number of offers.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Checks that the TXNRs of a client's commands increase by one, wrapping from
/// 999,999,999 to 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnrSequence {
    expected: Txnr,
}

impl Default for TxnrSequence {
    fn default() -> Self {
        Self::new()
    }
}

impl TxnrSequence {
    /// A sequence starting at 1, as every RELP session does.
    pub fn new() -> Self {
        Self::starting_at(Txnr::FIRST)
    }

    /// A sequence that expects `first` next.
    pub fn starting_at(first: Txnr) -> Self {
        Self { expected: first }
    }

    /// The TXNR the next command must carry.
    pub fn expected(&self) -> Txnr {
        self.expected
    }

    /// Accepts `txnr` if it is the expected one, and moves on; otherwise returns the
    /// expected one and stays.
    pub fn check(&mut self, txnr: Txnr) -> Result<(), Txnr> {
        if txnr != self.expected {
            return Err(self.expected);
        }
        self.expected = txnr.next();
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitOpen,
    Open,
    Closed,
}

/// The server's view of one RELP session, without I/O: `open` first (TXNR 1), then
/// `syslog` commands, then `close`, every TXNR one more than the last. Feed it every
/// frame the [`FrameDecoder`] returns; an error is a protocol error that ends the
/// session ([`SessionError::encode_reply`] tells what to send before closing).
///
/// Answers must go out in command order. The answers to `open` and `close` are known at
/// once ([`Event::encode_answer`]); a `syslog` message is answered with [`encode_ok`]
/// when it is safe, and never with an error for a transient problem (withhold the answer
/// instead: the sender's window stops it).
#[derive(Debug, Clone)]
pub struct ServerSession {
    phase: Phase,
    sequence: TxnrSequence,
    version: u32,
    software: &'static str,
}

impl Default for ServerSession {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerSession {
    /// A session awaiting `open`, answering with `relp_software=mcas-forward`.
    pub fn new() -> Self {
        Self {
            phase: Phase::AwaitOpen,
            sequence: TxnrSequence::new(),
            version: PROTOCOL_VERSION,
            software: "mcas-forward",
        }
    }

    /// Sets the `relp_software` value of the open answer: comma-separated values of
    /// printable ASCII without SP or `=` (the offer is left out otherwise).
    pub fn with_software(mut self, software: &'static str) -> Self {
        self.software = software;
        self
    }

    /// The agreed RELP version (valid once `open` was accepted).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// True between an accepted `open` and `close`.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// True once `close` was accepted: send its answer, then close the connection.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The TXNR the next command must carry.
    pub fn expected_txnr(&self) -> Txnr {
        self.sequence.expected()
    }

    /// Checks one frame from the client and tells what it asks for.
    pub fn receive<'a>(&mut self, frame: &Frame<'a>) -> Result<Event<'a>, SessionError> {
        let txnr = frame.txnr();
        let err = |kind| Err(SessionError { txnr, kind });
        if self.phase == Phase::Closed {
            return err(SessionErrorKind::AfterClose);
        }
        if txnr.is_hint() {
            return err(SessionErrorKind::Hint);
        }
        if let Err(expected) = self.sequence.check(txnr) {
            return err(SessionErrorKind::Sequence { expected });
        }
        match (self.phase, frame.command()) {
            (Phase::AwaitOpen, Command::OPEN) => {
                let offers = match Offers::parse(frame.data()) {
                    Ok(offers) => offers,
                    Err(e) => return err(SessionErrorKind::Offers { offset: e.offset }),
                };
                // The agreed version is the lower of the client's and ours; ours, 0, is
                // the lowest there is, so only a number is required of the client.
                if offers
                    .get("relp_version")
                    .and_then(|o| o.number())
                    .is_none()
                {
                    return err(SessionErrorKind::Version);
                }
                if !offers
                    .get("commands")
                    .is_some_and(|o| o.has_value(b"syslog"))
                {
                    return err(SessionErrorKind::NoSyslog);
                }
                self.version = PROTOCOL_VERSION;
                self.phase = Phase::Open;
                Ok(Event::Open {
                    txnr,
                    version: self.version,
                    offers,
                })
            }
            (Phase::AwaitOpen, _) => err(SessionErrorKind::NotOpen),
            (Phase::Open, Command::SYSLOG) => Ok(Event::Syslog {
                txnr,
                message: frame.data(),
            }),
            (Phase::Open, Command::CLOSE) => {
                self.phase = Phase::Closed;
                Ok(Event::Close { txnr })
            }
            // librelp's own server tolerates a repeated open (its clients sent one).
            (Phase::Open, Command::OPEN) => Ok(Event::Reopen { txnr }),
            (Phase::Open, _) => err(SessionErrorKind::Unexpected),
            (Phase::Closed, _) => err(SessionErrorKind::AfterClose),
        }
    }
}

/// What a client's frame asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The session opened: answer with [`Event::encode_answer`] (the open answer with
    /// the agreed `relp_version` and `commands=syslog`).
    Open {
        /// The command's TXNR.
        txnr: Txnr,
        /// The agreed version: the lower of the client's and [`PROTOCOL_VERSION`].
        version: u32,
        /// What the client offered.
        offers: Offers<'a>,
    },
    /// A second `open` within the session: answered `200` and otherwise ignored, as
    /// librelp's server does.
    Reopen {
        /// The command's TXNR.
        txnr: Txnr,
    },
    /// A message: store it, then answer with [`encode_ok`] (after the answers owed for
    /// earlier commands).
    Syslog {
        /// The command's TXNR.
        txnr: Txnr,
        /// The syslog message (the frame's data).
        message: &'a [u8],
    },
    /// The client closes: answer `rsp 0` (after the answers owed), then close.
    Close {
        /// The command's TXNR.
        txnr: Txnr,
    },
}

impl Event<'_> {
    /// The TXNR of the command.
    pub fn txnr(&self) -> Txnr {
        match self {
            Event::Open { txnr, .. }
            | Event::Reopen { txnr }
            | Event::Syslog { txnr, .. }
            | Event::Close { txnr } => *txnr,
        }
    }

    /// Appends the answer for `open`, a repeated `open` and `close`; nothing for
    /// `syslog`, whose answer waits until the message is safe.
    pub fn encode_answer<B: BufMut>(&self, session: &ServerSession, out: &mut B) {
        match self {
            Event::Open { txnr, version, .. } => {
                encode_open_answer(*txnr, *version, session.software, out)
            }
            Event::Reopen { txnr } => Response {
                code: 200,
                text: b"session already open, ignored",
                offers: b"",
            }
            .encode(*txnr, out),
            Event::Close { txnr } => encode_close_answer(*txnr, out),
            Event::Syslog { .. } => {}
        }
    }
}

/// A protocol error in a session: the frame with this TXNR broke the session's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError {
    txnr: Txnr,
    kind: SessionErrorKind,
}

/// The class of a [`SessionError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionErrorKind {
    /// The TXNR is not one more than the last (1 for the first command).
    Sequence {
        /// The TXNR the command should have carried.
        expected: Txnr,
    },
    /// TXNR 0, which only hints carry, on a client's frame.
    Hint,
    /// A command other than `open` before the session was opened.
    NotOpen,
    /// The offers of `open` are not offer lines; `offset` counts from the data's start.
    Offers {
        /// Where the bad line is.
        offset: u64,
    },
    /// `open` offered no numeric `relp_version`.
    Version,
    /// `open` did not offer `commands=syslog`.
    NoSyslog,
    /// A command a client does not send to a syslog server (`rsp`, `serverclose`, or
    /// one we do not know).
    Unexpected,
    /// A frame after `close`.
    AfterClose,
}

impl SessionError {
    /// The TXNR of the offending frame.
    pub fn txnr(&self) -> Txnr {
        self.txnr
    }

    /// What went wrong.
    pub fn kind(&self) -> SessionErrorKind {
        self.kind
    }

    /// Appends what to send before closing the connection: a `500` answer to a refused
    /// `open` (nothing else can be owed then), the `serverclose` hint otherwise (after
    /// the answers owed for earlier commands).
    pub fn encode_reply<B: BufMut>(&self, out: &mut B) {
        let text: &[u8] = match self.kind {
            SessionErrorKind::Offers { .. } => b"bad offers",
            SessionErrorKind::Version => b"required offer relp_version missing",
            SessionErrorKind::NoSyslog => b"required command syslog not offered",
            _ => {
                encode_serverclose(out);
                return;
            }
        };
        Response {
            code: 500,
            text,
            offers: b"",
        }
        .encode(self.txnr, out);
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.txnr;
        match self.kind {
            SessionErrorKind::Sequence { expected } => {
                write!(f, "RELP: TXNR {t} out of sequence, expected {expected}")
            }
            SessionErrorKind::Hint => write!(f, "RELP: TXNR 0 on a client's command"),
            SessionErrorKind::NotOpen => write!(f, "RELP: command {t} before open"),
            SessionErrorKind::Offers { offset } => {
                write!(f, "RELP: bad offer at byte {offset} of open {t}")
            }
            SessionErrorKind::Version => write!(f, "RELP: open {t} offers no relp_version"),
            SessionErrorKind::NoSyslog => {
                write!(f, "RELP: open {t} does not offer commands=syslog")
            }
            SessionErrorKind::Unexpected => write!(f, "RELP: unexpected command {t}"),
            SessionErrorKind::AfterClose => write!(f, "RELP: command {t} after close"),
        }
    }
}

impl std::error::Error for SessionError {}

#[cfg(feature = "codec")]
pub use self::codec::{CodecError, RelpCodec};

#[cfg(feature = "codec")]
mod codec {
    use std::{fmt, io};

    use bytes::{Buf, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    use super::{Error, Frame, FrameDecoder, OwnedFrame, Parsed};

    /// A tokio-util [`Decoder`] and [`Encoder`] for RELP frames (features `relp` and
    /// `codec`). Decoded frames share the read buffer's memory ([`OwnedFrame::data`] is a
    /// slice of it). A framing error is returned once and ends the session; so does a
    /// stream that ends inside a frame.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mcas_syslog::relp::{Command, RelpCodec};
    /// use tokio_util::codec::Decoder;
    ///
    /// let mut codec = RelpCodec::new();
    /// let mut buf = BytesMut::from(&b"2 syslog 9 <13>hello\n3 clo"[..]);
    /// let frame = codec.decode(&mut buf)?.ok_or("no frame")?;
    /// assert_eq!((frame.txnr().get(), frame.command(), &frame.data()[..]), (2, Command::SYSLOG, &b"<13>hello"[..]));
    /// assert!(codec.decode(&mut buf)?.is_none());
    /// assert!(codec.decode_eof(&mut buf).is_err()); // ended inside `3 close 0`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone, Default)]
    pub struct RelpCodec {
        decoder: FrameDecoder,
    }

    impl RelpCodec {
        /// A codec with the default DATALEN limit.
        pub fn new() -> Self {
            Self::default()
        }

        /// A codec around a configured decoder.
        pub fn with_decoder(decoder: FrameDecoder) -> Self {
            Self { decoder }
        }

        /// The decoder (its limit and position).
        pub fn decoder(&self) -> &FrameDecoder {
            &self.decoder
        }
    }

    /// What stops a [`RelpCodec`]: bytes that are not RELP, or the transport.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum CodecError {
        /// The peer sent something that is not a RELP frame within the limit.
        Frame(Error),
        /// The transport failed.
        Io(io::Error),
    }

    impl fmt::Display for CodecError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                CodecError::Frame(e) => e.fmt(f),
                CodecError::Io(e) => e.fmt(f),
            }
        }
    }

    impl std::error::Error for CodecError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            match self {
                CodecError::Frame(e) => Some(e),
                CodecError::Io(e) => Some(e),
            }
        }
    }

    impl From<io::Error> for CodecError {
        fn from(e: io::Error) -> Self {
            CodecError::Io(e)
        }
    }

    impl From<Error> for CodecError {
        fn from(e: Error) -> Self {
            CodecError::Frame(e)
        }
    }

    impl Decoder for RelpCodec {
        type Item = OwnedFrame;
        type Error = CodecError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<OwnedFrame>, CodecError> {
            let (txnr, command, start, end, len) = match self.decoder.step(src)? {
                Parsed::Frame(frame, len) => {
                    // The data's place in the frame: just before the trailer.
                    let end = len - 1;
                    let start = end - frame.data().len();
                    (frame.txnr(), frame.command().to_static(), start, end, len)
                }
                Parsed::Need(n) => {
                    src.reserve(n.saturating_sub(src.len()));
                    return Ok(None);
                }
            };
            // Header and trailer dropped in place: the data is the only handle taken.
            src.advance(start);
            let data = src.split_to(end - start).freeze();
            src.advance(len - end);
            Ok(Some(OwnedFrame {
                txnr,
                command,
                data,
            }))
        }

        fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<OwnedFrame>, CodecError> {
            if let Some(frame) = self.decode(src)? {
                return Ok(Some(frame));
            }
            let finished = self.decoder.finish(src);
            src.advance(src.len());
            finished?;
            Ok(None)
        }
    }

    impl Encoder<Frame<'_>> for RelpCodec {
        type Error = CodecError;

        fn encode(&mut self, item: Frame<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
            dst.reserve(item.encoded_len());
            item.encode(dst);
            Ok(())
        }
    }

    impl Encoder<&OwnedFrame> for RelpCodec {
        type Error = CodecError;

        fn encode(&mut self, item: &OwnedFrame, dst: &mut BytesMut) -> Result<(), CodecError> {
            self.encode(item.as_frame(), dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, Error> {
        FrameDecoder::new().decode(buf)
    }

    #[test]
    fn number_rules() {
        assert_eq!(number(b"0 ", 0, ErrorKind::Txnr), Ok(Some((0, 1))));
        assert_eq!(
            number(b"999999999 ", 0, ErrorKind::Txnr),
            Ok(Some((999_999_999, 9)))
        );
        assert_eq!(
            number(b"1000000000 ", 0, ErrorKind::Txnr),
            Err((9, ErrorKind::Txnr))
        );
        assert_eq!(
            number(b"01 ", 0, ErrorKind::Txnr),
            Err((1, ErrorKind::Txnr))
        );
        assert_eq!(number(b" ", 0, ErrorKind::Txnr), Err((0, ErrorKind::Txnr)));
        assert_eq!(number(b"12", 0, ErrorKind::Txnr), Ok(None));
    }

    #[test]
    fn digits_and_put_number_agree() {
        for n in [0, 1, 9, 10, 99, 100, 123_456, 999_999_999, u32::MAX] {
            let mut v = Vec::new();
            put_number(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
            assert_eq!(digits(n), v.len());
        }
    }

    #[test]
    fn encoded_len_matches_encode() {
        for (t, c, d) in [
            (0, Command::SERVERCLOSE, &b""[..]),
            (7, Command::SYSLOG, &b"x"[..]),
            (999_999_999, Command::RSP, &[b'a'; 1000][..]),
        ] {
            let f = Frame::new(Txnr(t), c, d).unwrap();
            let mut v = Vec::new();
            f.encode(&mut v);
            assert_eq!(v.len(), f.encoded_len());
        }
    }

    #[test]
    fn need_counts_are_lower_bounds() {
        let full = b"12 syslog 5 hello\n";
        for i in 0..full.len() {
            match parse(&full[..i], 100) {
                Ok(Parsed::Need(n)) => assert!(n > i && n <= full.len(), "at {i}: {n}"),
                _ => panic!("prefix {i} is partial"),
            }
        }
        assert!(matches!(parse(full, 100), Ok(Parsed::Frame(_, 18))));
    }

    #[test]
    fn command_patterns() {
        let (f, _) = one(b"3 close 0\n").unwrap().unwrap();
        assert!(matches!(f.command(), Command::CLOSE));
        assert_eq!(
            Command::new("starttls").map(Command::as_str),
            Some("starttls")
        );
        assert_eq!(Command::new("two words"), None);
        assert_eq!(Command::new(""), None);
        assert_eq!(Command::new(&"a".repeat(33)), None);
        assert_eq!(Command::SYSLOG.to_static(), Cow::Borrowed("syslog"));
        assert!(matches!(Command("abc").to_static(), Cow::Owned(_)));
    }

    #[test]
    fn failed_decoder_stays_failed() {
        let mut d = FrameDecoder::new();
        let (_, n) = d.decode(b"1 syslog 1 a\n").unwrap().unwrap();
        assert_eq!(n, 13);
        let e = d.decode(b"x").unwrap_err();
        assert_eq!((e.offset(), e.kind()), (13, ErrorKind::Txnr));
        assert_eq!(d.decode(b"2 syslog 1 a\n").unwrap_err(), e);
        assert_eq!(d.finish(b"").unwrap_err(), e);
    }

    #[test]
    fn response_validation() {
        assert!(Response::new(200, &"x".repeat(80)).is_ok());
        assert_eq!(
            Response::new(200, &"x".repeat(81)).unwrap_err().kind(),
            ErrorKind::Response
        );
        assert!(Response::new(200, "a\nb").is_err());
        assert!(Response::new(20, "x").is_err());
        assert!(Response::new(1000, "x").is_err());
        let r = Response::parse(b"200 OK\nrelp_version=0").unwrap();
        assert_eq!(
            (r.code(), r.text(), r.offers()),
            (200, &b"OK"[..], &b"relp_version=0"[..])
        );
        assert_eq!(Response::parse(b"500").unwrap().code(), 500);
        assert_eq!(Response::parse(b"20").unwrap_err().offset(), 2);
        assert_eq!(Response::parse(b"2x0 OK").unwrap_err().offset(), 1);
        assert_eq!(Response::parse(b"200OK").unwrap_err().offset(), 3);
    }
}
