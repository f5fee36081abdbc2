//! Request packing, as pure functions: rows → JSON array bodies under a
//! byte limit → gzip.
//!
//! Rows are held once, serialised, in a [`Rows`] table; a batch is a list of
//! row indices into it. [`pack`] cuts a list of indices into batches whose
//! **uncompressed** JSON array body (`[` + rows joined by `,` + `]`) stays at
//! or under the limit, the rule of Microsoft's SDKs (the service's 1 MB limit
//! applies to the compressed and the uncompressed body alike). A row that
//! cannot fit in any body is returned apart, never sent.

use std::borrow::Cow;
use std::io::Write as _;
use std::ops::Range;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;

/// The largest uncompressed body the Logs Ingestion client sends:
/// 1,000,000 bytes, the strictest of the official SDKs' values (.NET and
/// JavaScript), which also keeps the compressed body under the service's
/// 1,048,576-byte limit.
pub const LOGS_INGESTION_MAX_BODY: usize = 1_000_000;

/// The Data Collector API's limit for one post: 30 MiB.
pub const DATA_COLLECTOR_MAX_BODY: usize = 30 * 1024 * 1024;

/// Serialised rows, each a JSON object, indexed from 0.
#[derive(Clone)]
pub struct Rows<'a> {
    buf: Cow<'a, [u8]>,
    spans: Vec<Range<usize>>,
    invalid: Vec<(usize, String)>,
}

impl<'a> Rows<'a> {
    /// Borrows newline-delimited JSON: one object per line. Empty lines are
    /// skipped and are not rows; a trailing `\r` is removed. A line that
    /// does not look like a JSON object (`{` … `}`) is a row marked invalid
    /// (see [`Rows::invalid`]); it is never put in a body, so it cannot
    /// spoil its neighbours.
    pub fn from_ndjson(ndjson: &'a [u8]) -> Self {
        let mut spans = Vec::with_capacity(ndjson.len() / 256 + 1);
        let mut invalid = Vec::new();
        let mut start = 0;
        while start < ndjson.len() {
            let end = memchr::memchr(b'\n', &ndjson[start..]).map_or(ndjson.len(), |i| start + i);
            let span = trim(ndjson, start..end);
            if !span.is_empty() {
                let row = &ndjson[span.clone()];
                if row[0] != b'{' || row[row.len() - 1] != b'}' {
                    invalid.push((spans.len(), "line is not a JSON object".to_owned()));
                }
                spans.push(span);
            }
            start = end + 1;
        }
        Self {
            buf: Cow::Borrowed(ndjson),
            spans,
            invalid,
        }
    }

    /// Serialises each value with `serde_json`. A value that fails to
    /// serialise (or is not a JSON object) becomes an invalid row; the
    /// others are kept with their indices unchanged.
    pub fn serialize<T: Serialize>(values: &[T]) -> Rows<'static> {
        let mut buf = Vec::with_capacity(values.len() * 256);
        let mut spans = Vec::with_capacity(values.len());
        let mut invalid = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let start = buf.len();
            match serde_json::to_writer(&mut buf, value) {
                Ok(()) if buf.get(start) == Some(&b'{') => spans.push(start..buf.len()),
                Ok(()) => {
                    buf.truncate(start);
                    invalid.push((i, "row does not serialise to a JSON object".to_owned()));
                    spans.push(start..start);
                }
                Err(e) => {
                    buf.truncate(start);
                    invalid.push((i, format!("row does not serialise: {e}")));
                    spans.push(start..start);
                }
            }
        }
        Rows {
            buf: Cow::Owned(buf),
            spans,
            invalid,
        }
    }

    /// Number of rows, valid or not.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The serialised bytes of row `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.buf[self.spans[i].clone()]
    }

    /// Rows that will not be sent, with the reason.
    pub fn invalid(&self) -> &[(usize, String)] {
        &self.invalid
    }

    /// Indices of all valid rows, in order.
    pub fn valid_indices(&self) -> Vec<usize> {
        let mut bad = self.invalid.iter().map(|(i, _)| *i).peekable();
        let mut out = Vec::with_capacity(self.len() - self.invalid.len());
        for i in 0..self.len() {
            if bad.peek() == Some(&i) {
                bad.next();
            } else {
                out.push(i);
            }
        }
        out
    }

    /// Total bytes of the serialised rows.
    pub fn total_bytes(&self) -> usize {
        self.spans.iter().map(|s| s.len()).sum()
    }
}

impl std::fmt::Debug for Rows<'_> {
    // Row contents can be large (and are the caller's data): show the shape only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("rows", &self.spans.len())
            .field("bytes", &self.total_bytes())
            .field("invalid", &self.invalid.len())
            .finish()
    }
}

fn trim(buf: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && buf[r.start].is_ascii_whitespace() {
        r.start += 1;
    }
    while r.end > r.start && buf[r.end - 1].is_ascii_whitespace() {
        r.end -= 1;
    }
    r
}

/// The size of the JSON array body holding rows of these lengths.
pub fn body_len(row_lens: impl IntoIterator<Item = usize>) -> usize {
    let mut n = 0usize;
    let mut total = 2; // [ ]
    for len in row_lens {
        total += len;
        n += 1;
    }
    total + n.saturating_sub(1) // commas
}

/// The result of [`pack`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    /// Batches of row indices, each fitting the limit, in input order.
    pub batches: Vec<Vec<usize>>,
    /// Rows too large to fit in any body on their own.
    pub oversize: Vec<usize>,
}

/// Cuts `indices` into batches whose JSON array body is at most
/// `max_body` bytes. Greedy and order-keeping: a batch is closed when the
/// next row would not fit.
pub fn pack(rows: &Rows<'_>, indices: &[usize], max_body: usize) -> Packed {
    let mut out = Packed::default();
    let mut current: Vec<usize> = Vec::new();
    let mut size = 2usize;
    for &i in indices {
        let len = rows.spans[i].len();
        if len + 2 > max_body {
            out.oversize.push(i);
            continue;
        }
        let added = len + usize::from(!current.is_empty());
        if size + added > max_body {
            out.batches.push(std::mem::take(&mut current));
            size = 2;
        }
        size += len + usize::from(!current.is_empty());
        current.push(i);
    }
    if !current.is_empty() {
        out.batches.push(current);
    }
    out
}

/// Appends the JSON array of the given rows to `out`.
pub fn encode_array(rows: &Rows<'_>, indices: &[usize], out: &mut Vec<u8>) {
    out.reserve(body_len(indices.iter().map(|&i| rows.spans[i].len())));
    out.push(b'[');
    for (n, &i) in indices.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(rows.get(i));
    }
    out.push(b']');
}

/// Gzips `body` at `level` (0–9, clamped).
pub fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        Compression::new(level.min(9)),
    );
    // Writing into a Vec cannot fail.
    match enc.write_all(body).and_then(|()| enc.finish()) {
        Ok(v) => v,
        Err(_) => unreachable!("writing into a Vec cannot fail"),
    }
}

/// Event time of a row in milliseconds since the Unix epoch, read from the
/// string field `field` (RFC 3339). `None` when absent or unreadable.
pub fn row_time_millis(row: &[u8], field: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(row).ok()?;
    parse_rfc3339_millis(value.get(field)?.as_str()?)
}

/// Splits `indices` into groups whose event times (field `field`) each span
/// less than `window_millis`. Rows are ordered by time; rows without a
/// readable time form a group of their own at the end.
pub fn split_by_time(
    rows: &Rows<'_>,
    indices: &[usize],
    field: &str,
    window_millis: i64,
) -> Vec<Vec<usize>> {
    let mut timed: Vec<(i64, usize)> = Vec::with_capacity(indices.len());
    let mut untimed = Vec::new();
    for &i in indices {
        match row_time_millis(rows.get(i), field) {
            Some(t) => timed.push((t, i)),
            None => untimed.push(i),
        }
    }
    timed.sort_by_key(|&(t, i)| (t, i));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut start = i64::MIN;
    for (t, i) in timed {
        match groups.last_mut() {
            Some(g) if t - start < window_millis => g.push(i),
            _ => {
                start = t;
                groups.push(vec![i]);
            }
        }
    }
    if !untimed.is_empty() {
        groups.push(untimed);
    }
    groups
}

/// Parses an RFC 3339 timestamp (`2024-02-29T23:59:59.123Z`,
/// `…+01:00`) to milliseconds since the Unix epoch.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let frac_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == frac_start {
            return None;
        }
        let digits = &b[frac_start..pos.min(frac_start + 3)];
        for (k, &c) in digits.iter().enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][k];
        }
    }
    let offset_minutes = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let m = num(pos + 1..pos + 3)? * 60 + num(pos + 4..pos + 6)?;
            if sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(len: usize) -> String {
        // {"a":"xxx"} has 8 bytes of framing.
        format!("{{\"a\":\"{}\"}}", "x".repeat(len - 8))
    }

    #[test]
    fn ndjson_rows_skip_blank_lines_and_mark_non_objects() {
        let input = b"{\"a\":1}\r\n\n  \n{\"b\":2}\nnot json\n{\"c\":3}";
        let rows = Rows::from_ndjson(input);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows.get(0), b"{\"a\":1}");
        assert_eq!(rows.get(1), b"{\"b\":2}");
        assert_eq!(rows.get(3), b"{\"c\":3}");
        assert_eq!(rows.invalid().len(), 1);
        assert_eq!(rows.invalid()[0].0, 2);
        assert_eq!(rows.valid_indices(), vec![0, 1, 3]);
    }

    #[test]
    fn serialize_keeps_indices_of_bad_values() {
        let rows = Rows::serialize(&[
            serde_json::json!({"a": 1}),
            serde_json::json!(5),
            serde_json::json!({"b": "x"}),
        ]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.get(2), br#"{"b":"x"}"#);
        assert_eq!(rows.valid_indices(), vec![0, 2]);
    }

    #[test]
    fn pack_fills_exactly_to_the_limit() {
        // Ten rows of 99 bytes: body = 2 + 10*99 + 9 = 1001.
        let text: String = (0..10).map(|_| row(99) + "\n").collect();
        let rows = Rows::from_ndjson(text.as_bytes());
        let all = rows.valid_indices();
        let p = pack(&rows, &all, 1001);
        assert_eq!(p.batches.len(), 1);
        let mut body = Vec::new();
        encode_array(&rows, &p.batches[0], &mut body);
        assert_eq!(body.len(), 1001);
        serde_json::from_slice::<serde_json::Value>(&body).unwrap();
        // One byte less and the last row moves to a second batch.
        let p = pack(&rows, &all, 1000);
        assert_eq!(p.batches.len(), 2);
        assert_eq!(p.batches[0].len(), 9);
        assert_eq!(p.batches[1], vec![9]);
        for b in &p.batches {
            let mut body = Vec::new();
            encode_array(&rows, b, &mut body);
            assert!(body.len() <= 1000);
            assert_eq!(body.len(), body_len(b.iter().map(|&i| rows.get(i).len())));
        }
    }

    #[test]
    fn lone_oversize_row_is_set_apart() {
        let text = format!("{}\n{}\n{}\n", row(50), row(200), row(50));
        let rows = Rows::from_ndjson(text.as_bytes());
        let p = pack(&rows, &rows.valid_indices(), 150);
        assert_eq!(p.oversize, vec![1]);
        assert_eq!(p.batches, vec![vec![0, 2]]);
        // A row whose array body is exactly the limit still fits.
        let p = pack(&rows, &[1], 202);
        assert!(p.oversize.is_empty());
        let p = pack(&rows, &[1], 201);
        assert_eq!(p.oversize, vec![1]);
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let body = br#"[{"DeviceVendor":"Contoso","Message":"hello"}]"#.repeat(100);
        let z = gzip(&body, 6);
        assert_eq!(&z[..2], &[0x1f, 0x8b]);
        assert!(z.len() < body.len() / 5);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn rfc3339_parsing() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T23:59:59.5Z"),
            Some(1_709_251_199_500)
        );
        assert_eq!(
            parse_rfc3339_millis("2024-03-01T00:59:59.123+01:00"),
            Some(1_709_251_199_123)
        );
        assert_eq!(parse_rfc3339_millis("2024-02-29 23:59:59"), None);
        assert_eq!(parse_rfc3339_millis("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_millis("2024-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn time_split_groups_within_window() {
        let text = [
            r#"{"TimeGenerated":"2024-01-01T00:00:00Z","n":0}"#,
            r#"{"TimeGenerated":"2024-01-01T02:00:00Z","n":1}"#,
            r#"{"TimeGenerated":"2024-01-01T00:29:59Z","n":2}"#,
            r#"{"n":3}"#,
            r#"{"TimeGenerated":"2024-01-01T00:30:00Z","n":4}"#,
        ]
        .join("\n");
        let rows = Rows::from_ndjson(text.as_bytes());
        let groups = split_by_time(&rows, &rows.valid_indices(), "TimeGenerated", 30 * 60_000);
        assert_eq!(groups, vec![vec![0, 2], vec![4], vec![1], vec![3]]);
    }
}
