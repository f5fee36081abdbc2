//! Request bodies built ahead of the send: rows packed under the body limit and gzip'd where
//! they are produced (a spool's writer), then sent as they are, with no re-encoding.
//!
//! Only the rare paths open a body again: a request refused for its data or its size is
//! decompressed, and its rows are split, bisected or sent one by one as
//! [`LogsIngestionClient::send_rows`](crate::LogsIngestionClient::send_rows) would.

use std::io::Read as _;

use bytes::Bytes;

use crate::batch::{LOGS_INGESTION_MAX_BODY, Rows, encode_array, gzip, pack};
use crate::error::Error;
use crate::report::SendReport;

/// A request body ready to send: a JSON array of rows, gzip'd or not.
#[derive(Debug, Clone)]
pub struct PreparedBody {
    pub(crate) bytes: Bytes,
    pub(crate) gzipped: bool,
    pub(crate) rows: usize,
    pub(crate) raw_len: usize,
}

impl PreparedBody {
    /// A body from its parts: `bytes` as sent, whether they are gzip'd, how many rows the
    /// array holds, and its size uncompressed (what the service's limit applies to).
    pub fn new(bytes: Bytes, gzipped: bool, rows: usize, raw_len: usize) -> PreparedBody {
        PreparedBody {
            bytes,
            gzipped,
            rows,
            raw_len,
        }
    }

    /// The bytes as sent.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Whether the bytes are gzip'd.
    pub fn is_gzipped(&self) -> bool {
        self.gzipped
    }

    /// Rows in the body.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The body's size uncompressed.
    pub fn raw_len(&self) -> usize {
        self.raw_len
    }

    /// The body's rows as NDJSON. A body larger than four times `max_body` (or the service's
    /// limit, whichever is larger) uncompressed,
    /// a bad gzip stream or a body that is not a JSON array is an error: the body cannot
    /// be narrowed down.
    pub fn unpack(&self, max_body: usize) -> Result<Vec<u8>, String> {
        // Bounded whatever the body claims: a spooled body comes from disk.
        let cap = max_body.max(LOGS_INGESTION_MAX_BODY).saturating_mul(4);
        let raw: std::borrow::Cow<'_, [u8]> = if self.gzipped {
            let mut out = Vec::with_capacity(self.raw_len.min(cap));
            let mut dec = flate2::read::GzDecoder::new(&self.bytes[..]).take(cap as u64 + 1);
            dec.read_to_end(&mut out)
                .map_err(|e| format!("the body does not decompress: {e}"))?;
            if out.len() > cap {
                return Err(format!("the body decompresses to more than {cap} bytes"));
            }
            out.into()
        } else {
            self.bytes[..].into()
        };
        let rows: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&raw)
            .map_err(|e| format!("the body is not a JSON array of rows: {e}"))?;
        let mut ndjson = Vec::with_capacity(raw.len());
        for r in rows {
            ndjson.extend_from_slice(r.get().as_bytes());
            ndjson.push(b'\n');
        }
        Ok(ndjson)
    }
}

/// Rows packed into bodies ahead of the send, as the client would pack them.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Prepared {
    /// The bodies, in row order.
    pub bodies: Vec<PreparedBody>,
    /// Rows no body can hold (not a JSON object, or too large alone), as NDJSON: sent
    /// through [`send_ndjson`](crate::LogsIngestionClient::send_ndjson), which rejects
    /// each with its reason.
    pub unpacked: Vec<u8>,
    /// How many rows are in `unpacked`.
    pub unpacked_rows: usize,
}

/// Pack `ndjson`'s rows into JSON array bodies of at most `max_body` bytes, each gzip'd at
/// `gzip_level` (or left raw with `None`).
pub(crate) fn prepare(ndjson: &[u8], max_body: usize, gzip_level: Option<u32>) -> Prepared {
    let rows = Rows::from_ndjson(ndjson);
    let packed = pack(&rows, &rows.valid_indices(), max_body);
    let mut out = Prepared::default();
    let mut raw = Vec::new();
    for batch in &packed.batches {
        raw.clear();
        encode_array(&rows, batch, &mut raw);
        let (bytes, gzipped) = match gzip_level {
            Some(level) => (Bytes::from(gzip(&raw, level)), true),
            None => (Bytes::copy_from_slice(&raw), false),
        };
        out.bodies.push(PreparedBody {
            bytes,
            gzipped,
            rows: batch.len(),
            raw_len: raw.len(),
        });
    }
    let mut left: Vec<usize> = rows.invalid().iter().map(|(i, _)| *i).collect();
    left.extend(packed.oversize);
    left.sort_unstable();
    for i in left {
        out.unpacked.extend_from_slice(rows.get(i));
        out.unpacked.push(b'\n');
        out.unpacked_rows += 1;
    }
    out
}

/// What became of a prepared body.
#[derive(Debug)]
#[non_exhaustive]
pub enum PreparedReport {
    /// Every row was delivered, in one request (and its retries).
    Delivered {
        /// HTTP requests made.
        requests: usize,
    },
    /// Not delivered within the retry budget: the body stays as it is, to send later.
    Later {
        /// The last error.
        error: Error,
        /// HTTP requests made.
        requests: usize,
    },
    /// Refused for its data or size: the body was opened and its rows sent on their own;
    /// the report's row indices count the body's rows.
    Narrowed(SendReport),
    /// Refused, and the body cannot be opened to narrow the refusal down.
    Corrupt {
        /// Why it cannot be opened.
        why: String,
        /// HTTP requests made.
        requests: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ndjson(n: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let pad = "x".repeat(len);
            out.extend_from_slice(format!("{{\"i\":{i},\"p\":\"{pad}\"}}\n").as_bytes());
        }
        out
    }

    #[test]
    fn prepared_bodies_hold_every_row_once_under_the_limit() {
        let mut text = ndjson(500, 300);
        text.extend_from_slice(b"not json\n");
        text.extend_from_slice(format!("{{\"big\":\"{}\"}}\n", "y".repeat(5000)).as_bytes());
        let p = prepare(&text, 4096, Some(3));
        assert_eq!(p.unpacked_rows, 2);
        assert!(p.unpacked.starts_with(b"not json\n{\"big\""));
        let mut all = Vec::new();
        for b in &p.bodies {
            assert!(b.gzipped);
            assert!(b.raw_len <= 4096, "body of {} bytes", b.raw_len);
            let rows = b.unpack(4096).unwrap();
            assert_eq!(rows.iter().filter(|&&c| c == b'\n').count(), b.rows);
            all.extend_from_slice(&rows);
        }
        assert_eq!(all, ndjson(500, 300), "every packed row, in order, once");
    }

    #[test]
    fn a_raw_body_unpacks_too_and_garbage_does_not() {
        let p = prepare(&ndjson(3, 10), 1_000_000, None);
        assert_eq!(p.bodies.len(), 1);
        assert!(!p.bodies[0].gzipped);
        assert_eq!(p.bodies[0].unpack(1_000_000).unwrap(), ndjson(3, 10));
        let bad = PreparedBody::new(Bytes::from_static(b"\x1f\x8b\x08garbage"), true, 1, 10);
        assert!(bad.unpack(1000).unwrap_err().contains("decompress"));
        let not_array = PreparedBody::new(Bytes::from_static(b"{\"a\":1}"), false, 1, 7);
        assert!(not_array.unpack(1000).unwrap_err().contains("JSON array"));
    }

    #[test]
    fn a_body_that_inflates_past_the_cap_is_refused() {
        let huge = format!("[{{\"p\":\"{}\"}}]", "z".repeat(100_000));
        let gz = gzip(huge.as_bytes(), 6);
        let b = PreparedBody::new(Bytes::from(gz), true, 1, 100);
        assert!(
            b.unpack(1000).is_ok(),
            "within four times the service's limit"
        );
        let huge = format!("[{{\"p\":\"{}\"}}]", "z".repeat(4_000_001));
        let b = PreparedBody::new(Bytes::from(gzip(huge.as_bytes(), 1)), true, 1, 100);
        assert!(b.unpack(1000).unwrap_err().contains("more than"));
    }
}
