//! A JSON writer for rows: the same bytes `serde_json` writes, faster.
//!
//! Row serialisation is most of the per-event cost of the forwarder, and most
//! of that is string escaping. `serde_json` looks at every byte of a string
//! through a table; row values are long runs of bytes that need no escape, so
//! this writer scans eight bytes at a time and copies clean runs in one piece.
//! Column names are constants known to need no escape and are written with
//! their quotes and colon as one slice.
//!
//! The output is byte-for-byte what `serde_json::to_writer` gives for the same
//! row (tests hold the two together), so the two may be mixed freely.

use jiff::Timestamp;

/// Bytes that `serde_json` writes as an escape: control characters, `"` and `\`.
/// The value is the short escape letter, or `u` for the `\u00XX` form.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when any byte of `w` is below 0x20, or is `"` or `\`.
///
/// The classic "has a zero byte" test applied three times. It may report a
/// byte after a real hit as a hit too, never miss one; the caller looks at the
/// chunk byte by byte when it says yes.
#[inline]
fn needs_escape(w: u64) -> bool {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGHS != 0
}

/// Writes `s` as a JSON string, quotes included, escaped as `serde_json` does.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0; // first byte not yet copied
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(w)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let esc = ESCAPE[usize::from(b)];
        if esc != 0 {
            out.extend_from_slice(&bytes[start..i]);
            write_escape(out, b, esc);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cold]
fn write_escape(out: &mut Vec<u8>, b: u8, esc: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if esc == b'u' {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
    } else {
        out.extend_from_slice(&[b'\\', esc]);
    }
}

/// Writes a timestamp as a `datetime` value (see [`crate::time`]).
pub(crate) fn write_timestamp(out: &mut Vec<u8>, ts: Timestamp) {
    let mut buf = [0u8; 24];
    match crate::time::format_millis(ts, &mut buf) {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        None => write_str(out, &ts.to_string()),
    }
}

/// Writes a float. `real` columns are rare, and `serde_json`'s exact float form
/// (shortest round trip, `1e+300`, `null` when not finite) is its own choice, so
/// `serde_json` writes it.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if serde_json::to_writer(&mut *out, &v).is_err() {
        // Writing a float into a Vec has no failure path.
        out.extend_from_slice(b"null");
    }
}

/// Writes an integer.
pub(crate) fn write_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A column value that writes itself as JSON.
pub(crate) trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl WriteJson for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteJson for std::borrow::Cow<'_, str> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteJson for &str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteJson for i32 {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_int(out, *self);
    }
}

impl WriteJson for i64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_int(out, *self);
    }
}

impl WriteJson for f64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_f64(out, *self);
    }
}

impl WriteJson for Timestamp {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_timestamp(out, *self);
    }
}

impl WriteJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl WriteJson for std::net::IpAddr {
    fn write_json(&self, out: &mut Vec<u8>) {
        // Addresses never need an escape.
        use std::io::Write as _;
        out.push(b'"');
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{self}");
        out.push(b'"');
    }
}

/// Builds one JSON object member by member.
pub(crate) struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> ObjectWriter<'o> {
    pub(crate) fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    /// Writes `"key":` for a key that needs no escape (a column name of the table).
    #[inline]
    pub(crate) fn plain_key(&mut self, quoted_key_colon: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(quoted_key_colon.as_bytes());
        self.out
    }

    /// Writes `"key":value` when `value` is present (`quoted_key_colon` as for [`plain_key`](Self::plain_key)).
    #[inline]
    pub(crate) fn optional<T: WriteJson + ?Sized>(
        &mut self,
        quoted_key_colon: &str,
        value: Option<&T>,
    ) {
        if let Some(v) = value {
            v.write_json(self.plain_key(quoted_key_colon));
        }
    }

    /// Writes `"key":` for any key.
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_single_character_escapes_as_serde_json_does() {
        for c in (0u32..0x300).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(
                ours(&s),
                serde_json::to_string(&s).unwrap(),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn escapes_are_found_at_every_offset_of_a_chunk() {
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', '\t'] {
            for len in 0..24 {
                for at in 0..=len {
                    let mut s: String =
                        "ab\u{e9}cdefghijklmnopqrstuvwx".chars().take(len).collect();
                    let at = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
                    s.insert(at, special);
                    assert_eq!(ours(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn bytes_just_above_the_escapes_are_copied() {
        // 0x20 (space), 0x21, 0x23, 0x5b, 0x5d and 0x7f need no escape.
        let s = " !#[]\u{7f} !#[]\u{7f}  ";
        assert_eq!(ours(s), format!("\"{s}\""));
    }

    #[test]
    fn floats_and_integers_match_serde_json() {
        for v in [
            0.0,
            -0.0,
            1.5,
            1e300,
            -2.5e-10,
            123456789.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut out = Vec::new();
            write_f64(&mut out, v);
            assert_eq!(out, serde_json::to_vec(&v).unwrap(), "{v}");
        }
        for v in [0i64, -1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_int(&mut out, v);
            assert_eq!(out, serde_json::to_vec(&v).unwrap());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_matches_serde_json(s in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(ours(&s), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn any_ascii_string_matches_serde_json(s in "[\\x00-\\x7f]*") {
            proptest::prop_assert_eq!(ours(&s), serde_json::to_string(&s).unwrap());
        }
    }
}
