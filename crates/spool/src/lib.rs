/*!
The forwarder's spool batch file, format version 2: the pure codec, without I/O.

A batch file holds the request bodies of one output and route, ready to send: a small
header, an index of the bodies, then the bodies themselves stored back to back. [`encode`]
writes one; [`decode`] borrows one back from its bytes after verifying everything it can
without decompressing (checksums, bounds, totals, the gzip framing of gzip'd bodies), so a
torn or corrupt file is an [`Error`] with the byte where it went wrong, never a panic.

# Example

```
use mcas_spool::{Body, BodyKind, decode, encode, encoded_len, is_batch_file};

let array = br#"[{"Message":"a"},{"Message":"b"}]"#;
let ndjson = b"{\"Message\":\"c\"}\n";
let bodies = [
    Body { kind: BodyKind::Array, rows: 2, raw_len: array.len() as u32, data: array },
    Body { kind: BodyKind::Ndjson, rows: 1, raw_len: ndjson.len() as u32, data: ndjson },
];
let file = encode("sentinel", "mcas", &bodies);
assert_eq!(file.len(), encoded_len("sentinel", "mcas", &bodies));
assert!(is_batch_file(&file));

let batch = decode(&file)?;
assert_eq!((batch.output, batch.route), ("sentinel", "mcas"));
assert_eq!(batch.bodies, bodies);
assert_eq!(batch.rows, 3);
assert_eq!(batch.stored_bytes, (array.len() + ndjson.len()) as u64);

// One changed byte in a body, and decode says which body.
let mut torn = file.clone();
let last = torn.len() - 1;
torn[last] ^= 1;
let err = decode(&torn).unwrap_err();
assert_eq!(err.kind(), &mcas_spool::ErrorKind::BodyChecksum { index: 1 });
# Ok::<(), mcas_spool::Error>(())
```

# Layout

All integers are little-endian. Offsets are from the start of the file; `o` and `r` are the
lengths of the output and route names, `n` the number of bodies.

| Offset | Size | Field |
|---|---|---|
| 0 | 8 | magic, `MCASBTCH` ([`MAGIC`]) |
| 8 | 2 | version, 2 ([`VERSION`]) |
| 10 | 2 | flags, 0 |
| 12 | 4 | header_len: bytes from the start of the file to the first body, the header checksum included |
| 16 | 8 | rows: sum of the bodies' rows |
| 24 | 8 | raw_bytes: sum of the bodies' uncompressed sizes |
| 32 | 8 | stored_bytes: sum of the bodies' stored sizes |
| 40 | 4 | body_count, `n` |
| 44 | 2 | output_len, `o` |
| 46 | `o` | output name, UTF-8 |
| 46 + `o` | 2 | route_len, `r` |
| 48 + `o` | `r` | route name, UTF-8 |
| 48 + `o` + `r` | 25 × `n` | the index: one entry per body, in the order of the bodies (below) |
| header_len − 4 | 4 | CRC-32 of every header byte before it |
| header_len | … | the bodies, back to back in index order; the file ends after the last one |

An index entry (25 bytes):

| Offset in the entry | Size | Field |
|---|---|---|
| 0 | 8 | offset of the body from the start of the file |
| 8 | 4 | stored_len: bytes of the body in the file |
| 12 | 4 | raw_len: size of the body uncompressed |
| 16 | 4 | rows in the body |
| 20 | 1 | kind: 0 [`BodyKind::Array`], 1 [`BodyKind::GzipArray`], 2 [`BodyKind::Ndjson`] |
| 21 | 4 | CRC-32 of the body's stored bytes |

The CRC-32 is the common one (IEEE 802.3, as in gzip and zip). [`decode`] accepts at most
[`MAX_HEADER`] bytes of header, so a hostile or corrupt length never makes it read or
allocate more than the file holds.
*/

use std::ops::Range;

/// The first 8 bytes of a batch file.
pub const MAGIC: [u8; 8] = *b"MCASBTCH";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 2;
/// Largest header+index accepted by decode (bounds a hostile/corrupt file): 16 MiB.
pub const MAX_HEADER: usize = 16 << 20;

/// Bytes of the header before the names: magic to body_count.
const FIXED_LEN: usize = 44;
/// Bytes of one index entry.
const ENTRY_LEN: usize = 25;
/// Bytes of the header checksum.
const CRC_LEN: usize = 4;
/// The smallest header: no names, no bodies.
const MIN_HEADER: usize = FIXED_LEN + 2 + 2 + CRC_LEN;
/// The smallest gzip member: a 10-byte header and an 8-byte trailer.
const GZIP_MIN: usize = 18;
/// A gzip member's first bytes: ID1, ID2 and CM = 8 (deflate).
const GZIP_START: [u8; 3] = [0x1f, 0x8b, 0x08];

// Field offsets in the fixed part of the header.
const AT_VERSION: usize = 8;
const AT_FLAGS: usize = 10;
const AT_HEADER_LEN: usize = 12;
const AT_ROWS: usize = 16;
const AT_RAW_BYTES: usize = 24;
const AT_STORED_BYTES: usize = 32;
const AT_BODY_COUNT: usize = 40;
// Field offsets in an index entry.
const ENTRY_RAW_LEN: usize = 12;
const ENTRY_KIND: usize = 20;

/// What a body holds, and so how it is sent.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// A JSON array of rows, ready to send uncompressed.
    Array,
    /// A JSON array of rows, gzip'd: ready to send with Content-Encoding: gzip.
    GzipArray,
    /// NDJSON rows (one JSON object per line), sent through the row-by-row path (rows that
    /// could not be packed, or an output that packs at send time).
    Ndjson,
}

impl BodyKind {
    fn to_byte(self) -> u8 {
        match self {
            BodyKind::Array => 0,
            BodyKind::GzipArray => 1,
            BodyKind::Ndjson => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(BodyKind::Array),
            1 => Some(BodyKind::GzipArray),
            2 => Some(BodyKind::Ndjson),
            _ => None,
        }
    }
}

/// One request body of a batch file, borrowed from the file's bytes (or from the caller's,
/// for [`encode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body<'a> {
    /// What the body holds.
    pub kind: BodyKind,
    /// Rows in the body.
    pub rows: u32,
    /// Size of the body uncompressed (equal to data.len() for Array and Ndjson).
    pub raw_len: u32,
    /// The stored bytes, sent as they are.
    pub data: &'a [u8],
}

impl Body<'_> {
    /// A copy that owns its bytes.
    pub fn to_owned_body(&self) -> OwnedBody {
        OwnedBody {
            kind: self.kind,
            rows: self.rows,
            raw_len: self.raw_len,
            data: self.data.to_vec(),
        }
    }
}

/// A decoded batch file, borrowing from the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFile<'a> {
    /// The output the bodies are for.
    pub output: &'a str,
    /// The route the bodies came through.
    pub route: &'a str,
    /// Sum of the bodies' rows.
    pub rows: u64,
    /// Sum of the bodies' raw_len.
    pub raw_bytes: u64,
    /// Sum of the bodies' data.len().
    pub stored_bytes: u64,
    /// The bodies, in the order they are stored.
    pub bodies: Vec<Body<'a>>,
}

impl BatchFile<'_> {
    /// A copy that owns its names and bytes.
    pub fn into_owned(self) -> OwnedBatchFile {
        OwnedBatchFile {
            output: self.output.to_owned(),
            route: self.route.to_owned(),
            rows: self.rows,
            raw_bytes: self.raw_bytes,
            stored_bytes: self.stored_bytes,
            bodies: self.bodies.iter().map(Body::to_owned_body).collect(),
        }
    }
}

/// A [`Body`] that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedBody {
    /// What the body holds.
    pub kind: BodyKind,
    /// Rows in the body.
    pub rows: u32,
    /// Size of the body uncompressed.
    pub raw_len: u32,
    /// The stored bytes.
    pub data: Vec<u8>,
}

impl OwnedBody {
    /// The body, borrowed (what [`encode`] takes).
    pub fn as_body(&self) -> Body<'_> {
        Body {
            kind: self.kind,
            rows: self.rows,
            raw_len: self.raw_len,
            data: &self.data,
        }
    }
}

/// A [`BatchFile`] that owns its names and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedBatchFile {
    /// The output the bodies are for.
    pub output: String,
    /// The route the bodies came through.
    pub route: String,
    /// Sum of the bodies' rows.
    pub rows: u64,
    /// Sum of the bodies' raw_len.
    pub raw_bytes: u64,
    /// Sum of the bodies' stored lengths.
    pub stored_bytes: u64,
    /// The bodies, in the order they are stored.
    pub bodies: Vec<OwnedBody>,
}

/// Why bytes are not a valid batch file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spool batch file: {kind} at byte {pos}")]
pub struct Error {
    pos: usize,
    kind: ErrorKind,
}

impl Error {
    fn new(pos: usize, kind: ErrorKind) -> Self {
        Error { pos, kind }
    }

    /// The byte of the file where the problem was found: the start of the field that is
    /// wrong, or the file's length when it ends early.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

/// The class of an [`Error`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file does not start with [`MAGIC`].
    #[error("not a batch file (bad magic)")]
    BadMagic,
    /// The version is not [`VERSION`].
    #[error("unsupported version {0}")]
    UnsupportedVersion(u16),
    /// The file ends before its header or one of its bodies does.
    #[error("truncated")]
    Truncated,
    /// header_len is above [`MAX_HEADER`].
    #[error("header of {0} bytes is too large")]
    HeaderTooLarge(u64),
    /// The header's CRC-32 does not match.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// An index entry names a kind this version does not know.
    #[error("unknown body kind {0}")]
    UnknownBodyKind(u8),
    /// A body's offset and length point outside the file's body region.
    #[error("body {index} out of bounds")]
    BodyOutOfBounds {
        /// The body's place in the index.
        index: usize,
    },
    /// A body's CRC-32 does not match.
    #[error("body {index} checksum mismatch")]
    BodyChecksum {
        /// The body's place in the index.
        index: usize,
    },
    /// A GzipArray body is not framed as gzip, or its size trailer disagrees with raw_len.
    #[error("body {index} is not gzip of its raw_len")]
    BadGzip {
        /// The body's place in the index.
        index: usize,
    },
    /// The fields disagree with each other (lengths, totals, layout, trailing bytes).
    #[error("inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The output or route name is not UTF-8.
    #[error("name is not UTF-8")]
    NotUtf8,
}

/// Bytes of the header and index for these names and this many bodies (saturating: a size
/// that does not fit is refused by [`encode`] anyway).
fn header_len(output: &str, route: &str, body_count: usize) -> usize {
    (FIXED_LEN + 2 + 2 + CRC_LEN)
        .saturating_add(output.len())
        .saturating_add(route.len())
        .saturating_add(body_count.saturating_mul(ENTRY_LEN))
}

/// The encoded size, without encoding (for accounting before writing).
pub fn encoded_len(output: &str, route: &str, bodies: &[Body<'_>]) -> usize {
    bodies
        .iter()
        .fold(header_len(output, route, bodies.len()), |n, b| {
            n.saturating_add(b.data.len())
        })
}

fn name_len(name: &str, what: &str) -> u16 {
    match u16::try_from(name.len()) {
        Ok(n) => n,
        Err(_) => panic!(
            "spool batch file: {what} name of {} bytes (at most 65535)",
            name.len()
        ),
    }
}

fn body_len(body: &Body<'_>) -> u32 {
    match u32::try_from(body.data.len()) {
        Ok(n) => n,
        Err(_) => panic!(
            "spool batch file: body of {} bytes (at most 4 GiB - 1)",
            body.data.len()
        ),
    }
}

/// Encode a batch file: header, index, bodies. Totals are computed from the bodies.
///
/// The bodies are written as given; [`decode`] refuses a file whose Array or Ndjson body has
/// a raw_len other than its length, or whose GzipArray body is not gzip of raw_len bytes.
///
/// # Panics
///
/// If a name is longer than 65535 bytes, a body longer than `u32::MAX` bytes, or the header
/// and index longer than [`MAX_HEADER`] (about 670,000 bodies): files [`decode`] would refuse.
pub fn encode(output: &str, route: &str, bodies: &[Body<'_>]) -> Vec<u8> {
    let output_len = name_len(output, "output");
    let route_len = name_len(route, "route");
    let header_len = header_len(output, route, bodies.len());
    assert!(
        header_len <= MAX_HEADER,
        "spool batch file: header of {header_len} bytes for {} bodies (at most {MAX_HEADER})",
        bodies.len()
    );
    // Both fit: MAX_HEADER is below u32::MAX, and every body takes more than one header byte.
    let header_len_u32 = header_len as u32;
    let body_count = bodies.len() as u32;

    let (mut rows, mut raw_bytes, mut stored_bytes) = (0u64, 0u64, 0u64);
    for b in bodies {
        rows += u64::from(b.rows);
        raw_bytes += u64::from(b.raw_len);
        stored_bytes += u64::from(body_len(b));
    }

    let mut out = Vec::with_capacity(encoded_len(output, route, bodies));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&header_len_u32.to_le_bytes());
    out.extend_from_slice(&rows.to_le_bytes());
    out.extend_from_slice(&raw_bytes.to_le_bytes());
    out.extend_from_slice(&stored_bytes.to_le_bytes());
    out.extend_from_slice(&body_count.to_le_bytes());
    out.extend_from_slice(&output_len.to_le_bytes());
    out.extend_from_slice(output.as_bytes());
    out.extend_from_slice(&route_len.to_le_bytes());
    out.extend_from_slice(route.as_bytes());
    let mut offset = header_len as u64;
    for b in bodies {
        let stored_len = body_len(b);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&stored_len.to_le_bytes());
        out.extend_from_slice(&b.raw_len.to_le_bytes());
        out.extend_from_slice(&b.rows.to_le_bytes());
        out.push(b.kind.to_byte());
        out.extend_from_slice(&crc32fast::hash(b.data).to_le_bytes());
        offset += u64::from(stored_len);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len(), header_len);
    for b in bodies {
        out.extend_from_slice(b.data);
    }
    out
}

/// True when `file` starts with MAGIC (a v2 file, as opposed to the v1 NDJSON files).
pub fn is_batch_file(file: &[u8]) -> bool {
    file.starts_with(&MAGIC)
}

/// A reader of little-endian fields; `None` when the bytes run out.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let bytes = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

/// The message of a header field read past the header's end (header_len disagrees with the
/// lengths inside it).
const SHORT_HEADER: &str = "header_len is shorter than the fields it holds";

/// Decode and verify: magic, version, header checksum, index bounds, each body's checksum,
/// totals, and for GzipArray bodies the gzip structure cheaply (at least 18 bytes, starts
/// 1f 8b 08, and the gzip trailer's ISIZE equals raw_len mod 2^32) — no decompression.
pub fn decode(file: &[u8]) -> Result<BatchFile<'_>, Error> {
    let truncated = || Error::new(file.len(), ErrorKind::Truncated);
    if let Some(at) = MAGIC.iter().zip(file).position(|(m, b)| m != b) {
        return Err(Error::new(at, ErrorKind::BadMagic));
    }
    let mut c = Cursor {
        buf: file,
        pos: MAGIC.len(),
    };
    let version = c.u16().ok_or_else(truncated)?;
    if version != VERSION {
        return Err(Error::new(
            AT_VERSION,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let flags = c.u16().ok_or_else(truncated)?;
    let claimed = c.u32().ok_or_else(truncated)?;
    let header_len = match usize::try_from(claimed) {
        Ok(n) if n <= MAX_HEADER => n,
        _ => {
            return Err(Error::new(
                AT_HEADER_LEN,
                ErrorKind::HeaderTooLarge(u64::from(claimed)),
            ));
        }
    };
    if header_len < MIN_HEADER {
        return Err(Error::new(
            AT_HEADER_LEN,
            ErrorKind::Inconsistent("header_len is shorter than the smallest header"),
        ));
    }
    let crc_at = header_len - CRC_LEN;
    let (Some(header), Some(crc)) = (file.get(..crc_at), file.get(crc_at..header_len)) else {
        return Err(truncated());
    };
    let crc = Cursor { buf: crc, pos: 0 }.u32().ok_or_else(truncated)?;
    if crc32fast::hash(header) != crc {
        return Err(Error::new(crc_at, ErrorKind::HeaderChecksum));
    }
    // From here on the header is as its writer wrote it: what disagrees is inconsistent.
    if flags != 0 {
        return Err(Error::new(
            AT_FLAGS,
            ErrorKind::Inconsistent("unknown flags"),
        ));
    }
    let mut h = Cursor {
        buf: header,
        pos: AT_ROWS,
    };
    let short = |pos: usize| Error::new(pos, ErrorKind::Inconsistent(SHORT_HEADER));
    let rows = h.u64().ok_or_else(|| short(AT_ROWS))?;
    let raw_bytes = h.u64().ok_or_else(|| short(AT_RAW_BYTES))?;
    let stored_bytes = h.u64().ok_or_else(|| short(AT_STORED_BYTES))?;
    let body_count = h.u32().ok_or_else(|| short(AT_BODY_COUNT))?;
    let output = name(&mut h)?;
    let route = name(&mut h)?;

    // The index fills the rest of the header exactly; this bounds body_count by the bytes
    // present before anything is allocated for it.
    let index_len = u64::from(body_count) * ENTRY_LEN as u64;
    if index_len != (header.len() - h.pos) as u64 {
        return Err(Error::new(
            AT_BODY_COUNT,
            ErrorKind::Inconsistent("the index does not fill the header"),
        ));
    }
    let count = (header.len() - h.pos) / ENTRY_LEN;
    let mut bodies = Vec::with_capacity(count);
    let (mut sum_rows, mut sum_raw, mut sum_stored) = (0u64, 0u64, 0u64);
    let mut next = header_len;
    for index in 0..count {
        let entry_at = h.pos;
        let entry = index_entry(&mut h).ok_or_else(|| short(entry_at))?;
        let kind = BodyKind::from_byte(entry.kind).ok_or_else(|| {
            Error::new(
                entry_at + ENTRY_KIND,
                ErrorKind::UnknownBodyKind(entry.kind),
            )
        })?;
        let range = body_range(file, header_len, next, entry_at, index, &entry)?;
        let start = range.start;
        next = range.end;
        let data = file.get(range).ok_or_else(truncated)?;
        if crc32fast::hash(data) != entry.crc {
            return Err(Error::new(start, ErrorKind::BodyChecksum { index }));
        }
        match kind {
            BodyKind::GzipArray => {
                if !is_gzip_of(data, entry.raw_len) {
                    return Err(Error::new(start, ErrorKind::BadGzip { index }));
                }
            }
            _ => {
                if entry.raw_len != entry.stored_len {
                    return Err(Error::new(
                        entry_at + ENTRY_RAW_LEN,
                        ErrorKind::Inconsistent(
                            "raw_len of an uncompressed body differs from its length",
                        ),
                    ));
                }
            }
        }
        // No overflow: fewer than 2^20 bodies of under 2^32 each.
        sum_rows += u64::from(entry.rows);
        sum_raw += u64::from(entry.raw_len);
        sum_stored += u64::from(entry.stored_len);
        bodies.push(Body {
            kind,
            rows: entry.rows,
            raw_len: entry.raw_len,
            data,
        });
    }
    if next != file.len() {
        return Err(Error::new(
            next,
            ErrorKind::Inconsistent("bytes after the last body"),
        ));
    }
    for (total, sum, at, what) in [
        (rows, sum_rows, AT_ROWS, "rows differs from the bodies' sum"),
        (
            raw_bytes,
            sum_raw,
            AT_RAW_BYTES,
            "raw_bytes differs from the bodies' sum",
        ),
        (
            stored_bytes,
            sum_stored,
            AT_STORED_BYTES,
            "stored_bytes differs from the bodies' sum",
        ),
    ] {
        if total != sum {
            return Err(Error::new(at, ErrorKind::Inconsistent(what)));
        }
    }
    Ok(BatchFile {
        output,
        route,
        rows,
        raw_bytes,
        stored_bytes,
        bodies,
    })
}

/// A length-prefixed UTF-8 name of the header.
fn name<'a>(h: &mut Cursor<'a>) -> Result<&'a str, Error> {
    let at = h.pos;
    let short = || Error::new(at, ErrorKind::Inconsistent(SHORT_HEADER));
    let len = h.u16().ok_or_else(short)?;
    let bytes = h.take(usize::from(len)).ok_or_else(short)?;
    std::str::from_utf8(bytes).map_err(|_| Error::new(at + 2, ErrorKind::NotUtf8))
}

/// The fields of one index entry.
struct Entry {
    offset: u64,
    stored_len: u32,
    raw_len: u32,
    rows: u32,
    kind: u8,
    crc: u32,
}

fn index_entry(h: &mut Cursor<'_>) -> Option<Entry> {
    Some(Entry {
        offset: h.u64()?,
        stored_len: h.u32()?,
        raw_len: h.u32()?,
        rows: h.u32()?,
        kind: h.u8()?,
        crc: h.u32()?,
    })
}

/// Where a body's bytes are: it must start where the previous one ended (`next`) and end
/// within the file.
fn body_range(
    file: &[u8],
    header_len: usize,
    next: usize,
    entry_at: usize,
    index: usize,
    entry: &Entry,
) -> Result<Range<usize>, Error> {
    let start = usize::try_from(entry.offset).ok();
    let end = start.and_then(|s| s.checked_add(usize::try_from(entry.stored_len).ok()?));
    match (start, end) {
        (Some(start), Some(end)) if start == next => {
            if end <= file.len() {
                Ok(start..end)
            } else {
                Err(Error::new(file.len(), ErrorKind::Truncated))
            }
        }
        (Some(start), Some(end)) if start >= header_len && end <= file.len() => Err(Error::new(
            entry_at,
            ErrorKind::Inconsistent("bodies are not stored back to back in index order"),
        )),
        _ => Err(Error::new(entry_at, ErrorKind::BodyOutOfBounds { index })),
    }
}

/// The cheap gzip check: long enough for a member, starts with the deflate member magic, and
/// the trailer's ISIZE (the uncompressed size mod 2^32) is `raw_len`.
fn is_gzip_of(data: &[u8], raw_len: u32) -> bool {
    if data.len() < GZIP_MIN || !data.starts_with(&GZIP_START) {
        return false;
    }
    let isize = data
        .get(data.len() - 4..)
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map(u32::from_le_bytes);
    isize == Some(raw_len)
}

#[cfg(test)]
mod tests;
