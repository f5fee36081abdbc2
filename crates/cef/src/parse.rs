//! The parser: nom for the header, a memchr scanner for the extension.

use std::borrow::Cow;

use memchr::{memchr, memchr2, memchr2_iter};
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::tag;
use nom::character::complete::{char, digit1, space0};
use nom::combinator::opt;

use crate::error::{ErrorKind, HeaderField, ParseError, Warning, WarningKind};
use crate::event::{Event, Severity};

/// Returns where `CEF:` begins in `input`, if anywhere.
///
/// The marker is case-sensitive; the first occurrence wins.
///
/// ```
/// assert_eq!(mcas_cef::find_start(b"<13>Oct 11 22:14:15 fw01 CEF:0|V|P|1|2|n|3|"), Some(25));
/// assert_eq!(mcas_cef::find_start(b"not cef"), None);
/// ```
pub fn find_start(input: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr(b'C', input.get(from..)?) {
        let at = from + i;
        if input[at..].starts_with(b"CEF:") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Parses one CEF event.
///
/// Text before `CEF:` (a syslog header, for example) is skipped; when the first
/// `CEF:` does not start a valid header, up to two later ones are tried. The input is one
/// event: a trailing line end (CR LF, LF or CR) and the spaces before it are dropped
/// from the last value. See the [crate documentation](crate) for the rules.
///
/// # Errors
///
/// When the input has no `CEF:` marker, the version is not a number, or the header
/// has fewer than seven pipe-terminated fields. Everything else is accepted and
/// recorded in [`Event::warnings`].
pub fn parse(input: &[u8]) -> Result<Event<'_>, ParseError> {
    let start = find_start(input).ok_or(ParseError::new(0, ErrorKind::MissingMarker))?;
    let first = match parse_at(input, start) {
        Ok(event) => return Ok(event),
        Err(e) => e,
    };
    // A relay may put `CEF:` in front of a line that has its own marker (a tag such as
    // `CEF: CEF:0|…`): try a few later markers before giving up. Bounded, so input made
    // of many markers stays linear.
    let mut from = start + 4;
    for _ in 0..MAX_EXTRA_MARKERS {
        let Some(next) = input.get(from..).and_then(find_start) else {
            break;
        };
        if let Ok(event) = parse_at(input, from + next) {
            return Ok(event);
        }
        from += next + 4;
    }
    Err(first)
}

/// How many later `CEF:` markers [`parse`] tries when the first one does not parse.
const MAX_EXTRA_MARKERS: usize = 2;

fn parse_at(input: &[u8], start: usize) -> Result<Event<'_>, ParseError> {
    let rest = &input[start..];
    match std::str::from_utf8(rest) {
        Ok(text) => parse_text(text, start),
        Err(_) => parse_lossy(rest, start),
    }
}

/// The rare path: the text after `CEF:` is not valid UTF-8. Parse a repaired copy and
/// map its offsets back to the input.
fn parse_lossy(rest: &[u8], start: usize) -> Result<Event<'static>, ParseError> {
    let repaired = String::from_utf8_lossy(rest);
    let map = OffsetMap::new(rest);
    let to_input = |off: usize| start + map.original(off);
    let mut event = parse_text(&repaired, 0)
        .map_err(|e| e.map_offset(to_input))?
        .into_owned();
    for w in &mut event.warnings {
        w.map_offset(to_input);
    }
    let first_bad = map
        .chunks
        .iter()
        .find(|c| c.invalid)
        .map(|c| start + c.orig + c.valid);
    let replaced = map.chunks.iter().filter(|c| c.invalid).count();
    event.warnings.insert(
        0,
        Warning::new(first_bad, WarningKind::InvalidUtf8 { replaced }),
    );
    Ok(event)
}

/// One chunk of lossily decoded text: a valid run, then (if `invalid`) one invalid
/// sequence that became U+FFFD (3 bytes).
#[derive(Debug)]
struct Chunk {
    repaired: usize,
    orig: usize,
    valid: usize,
    invalid: bool,
}

/// Maps offsets in the lossily repaired text back to the original bytes.
#[derive(Debug)]
struct OffsetMap {
    chunks: Vec<Chunk>,
}

impl OffsetMap {
    fn new(rest: &[u8]) -> Self {
        let mut chunks = Vec::new();
        let (mut repaired, mut orig) = (0, 0);
        for c in rest.utf8_chunks() {
            let valid = c.valid().len();
            let invalid = !c.invalid().is_empty();
            chunks.push(Chunk {
                repaired,
                orig,
                valid,
                invalid,
            });
            repaired += valid + if invalid { 3 } else { 0 };
            orig += valid + c.invalid().len();
        }
        OffsetMap { chunks }
    }

    fn original(&self, off: usize) -> usize {
        let i = self.chunks.partition_point(|c| c.repaired <= off);
        let Some(c) = i.checked_sub(1).and_then(|i| self.chunks.get(i)) else {
            return off;
        };
        // Inside the replacement character: the start of the invalid sequence.
        c.orig + (off - c.repaired).min(c.valid)
    }
}

/// `CEF:` [spaces] [`:`] [spaces] digits `|`; returns the digits.
fn version(input: &str) -> IResult<&str, &str> {
    let (input, _) = (tag("CEF:"), space0, opt(char(':')), space0).parse(input)?;
    let (input, digits) = digit1(input)?;
    let (input, _) = char('|')(input)?;
    Ok((input, digits))
}

/// A header field: a run of `\|`, `\\` or any character but `|`, then `|`.
/// Returns the raw field and whether it contains a backslash.
fn header_field(input: &str) -> IResult<&str, (&str, bool)> {
    let b = input.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while let Some(k) = b.get(i..).and_then(|s| memchr2(b'|', b'\\', s)) {
        let p = i + k;
        if b[p] == b'|' {
            return Ok((&input[p + 1..], (&input[..p], escaped)));
        }
        escaped = true;
        i = p + 2;
    }
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Char,
    )))
}

const FIELDS: [HeaderField; 6] = [
    HeaderField::DeviceVendor,
    HeaderField::DeviceProduct,
    HeaderField::DeviceVersion,
    HeaderField::DeviceEventClassId,
    HeaderField::Name,
    HeaderField::Severity,
];

/// Parses text that starts with `CEF:`; `base` is its offset in the caller's input.
pub(crate) fn parse_text(text: &str, base: usize) -> Result<Event<'_>, ParseError> {
    let off = |rest: &str| base + text.len() - rest.len();
    let mut warnings = Vec::new();

    let (mut rest, digits) = version(text).map_err(|_| {
        ParseError::new(
            base,
            if text.contains('|') {
                ErrorKind::InvalidVersion
            } else {
                ErrorKind::UnterminatedHeader(HeaderField::Version)
            },
        )
    })?;
    let version: u32 = digits.parse().map_err(|_| {
        // `rest` starts after the digits and their pipe.
        ParseError::new(off(rest) - 1 - digits.len(), ErrorKind::InvalidVersion)
    })?;

    // (raw field, contains a backslash, offset)
    let mut raw: [(&str, bool, usize); 6] = [("", false, 0); 6];
    for (slot, field) in raw.iter_mut().zip(FIELDS) {
        let at = off(rest);
        let (r, (f, escaped)) = header_field(rest)
            .map_err(|_| ParseError::new(at, ErrorKind::UnterminatedHeader(field)))?;
        *slot = (f, escaped, at);
        rest = r;
    }
    let mut header = raw.map(|(f, escaped, at)| {
        if escaped {
            unescape_header(f, at, &mut warnings)
        } else {
            Cow::Borrowed(f)
        }
    });
    let severity = Severity::new(std::mem::take(&mut header[5]));
    let [vendor, product, dev_version, class_id, name, _] = header;

    let ext_base = off(rest);
    let extensions = parse_extension(rest, ext_base, &mut warnings);

    Ok(Event {
        version,
        header: [vendor, product, dev_version, class_id, name],
        severity,
        extensions,
        warnings,
    })
}

/// Header unescaping: `\|` → `|`, `\\` → `\`; any other backslash stays.
fn unescape_header<'a>(f: &'a str, base: usize, warnings: &mut Vec<Warning>) -> Cow<'a, str> {
    let b = f.as_bytes();
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut i = 0;
    while let Some(k) = b.get(i..).and_then(|s| memchr(b'\\', s)) {
        let p = i + k;
        match b.get(p + 1) {
            Some(c @ (b'|' | b'\\')) => {
                let s = out.get_or_insert_with(|| String::with_capacity(f.len()));
                s.push_str(&f[last..p]);
                s.push(char::from(*c));
                i = p + 2;
                last = i;
            }
            _ => {
                warnings.push(Warning::new(Some(base + p), WarningKind::UnknownEscape));
                i = p + 1;
            }
        }
    }
    match out {
        Some(mut s) => {
            s.push_str(&f[last..]);
            Cow::Owned(s)
        }
        None => Cow::Borrowed(f),
    }
}

/// Extension value unescaping: `\\`, `\=`, `\n` (LF), `\r` (CR); any other backslash
/// sequence, or a lone trailing backslash, stays as written.
fn unescape_value<'a>(v: &'a str, base: usize, warnings: &mut Vec<Warning>) -> Cow<'a, str> {
    let b = v.as_bytes();
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut i = 0;
    while let Some(k) = b.get(i..).and_then(|s| memchr(b'\\', s)) {
        let p = i + k;
        let decoded = match b.get(p + 1) {
            Some(b'\\') => Some('\\'),
            Some(b'=') => Some('='),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                let s = out.get_or_insert_with(|| String::with_capacity(v.len()));
                s.push_str(&v[last..p]);
                s.push(c);
                i = p + 2;
                last = i;
            }
            None => {
                warnings.push(Warning::new(Some(base + p), WarningKind::UnknownEscape));
                i = p + 1;
            }
        }
    }
    match out {
        Some(mut s) => {
            s.push_str(&v[last..]);
            Cow::Owned(s)
        }
        None => Cow::Borrowed(v),
    }
}

/// Bytes allowed in a key: `[A-Za-z0-9_.,\[\]-]`.
static KEY_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b',' | b'[' | b']' | b'-');
        c += 1;
    }
    t
};

/// Bytes allowed as the first byte of a key: `[A-Za-z0-9_]`.
fn is_key_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// One pair found by the scanner, as byte ranges of the (trimmed) extension.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    /// `key_start..key_end`; empty for text without a key.
    key_start: usize,
    key_end: usize,
    value_start: usize,
    value_end: usize,
    /// The value contains a backslash.
    escaped: bool,
}

/// Pairs up to this count are collected on the stack and then copied into a `Vec` of
/// exactly the right size: one allocation, and no growth checks in the hot loop.
const STACK_PAIRS: usize = 64;

/// Splits the extension into pairs.
///
/// A key is `[A-Za-z0-9_][A-Za-z0-9_.,\[\]-]*` directly followed by `=`, at the start of
/// the extension or right after a space. A value runs to the space before the next key.
/// Key characters never include `\`, so an escaped `\=` can never end a key and the
/// scanner only needs to find bare `=` and look back over key characters.
fn parse_extension<'a>(ext: &'a str, base: usize, warnings: &mut Vec<Warning>) -> Pairs<'a> {
    let b = ext.as_bytes();
    // The last value loses one line end, then its trailing spaces.
    let mut end = b.len();
    if b[..end].ends_with(b"\r\n") {
        end -= 2;
    } else if matches!(b[..end].last(), Some(b'\n' | b'\r')) {
        end -= 1;
    }
    while end > 0 && b[end - 1] == b' ' {
        end -= 1;
    }
    // Leading spaces are not part of the first key.
    let mut begin = 0;
    while begin < end && b[begin] == b' ' {
        begin += 1;
    }
    let ext = &ext[begin..end];
    let base = base + begin;
    if ext.is_empty() {
        return Vec::new();
    }
    let warnings_before = warnings.len();

    let mut stack = [Span::default(); STACK_PAIRS];
    let mut n = 0;
    let fits = scan(ext.as_bytes(), base, warnings, |span| {
        match stack.get_mut(n) {
            Some(slot) => {
                *slot = span;
                n += 1;
                true
            }
            None => false,
        }
    });
    let pairs = if fits {
        stack[..n]
            .iter()
            .map(|s| make_pair(ext, s, base, warnings))
            .collect()
    } else {
        // More pairs than the stack holds: scan again straight into a `Vec` sized by
        // the number of '=' (every pair has one, plus possibly text without a key).
        warnings.truncate(warnings_before);
        let cap = memchr::memchr_iter(b'=', ext.as_bytes()).count() + 1;
        let mut pairs = Vec::with_capacity(cap);
        let mut value_warnings = Vec::new();
        scan(ext.as_bytes(), base, warnings, |span| {
            pairs.push(make_pair(ext, &span, base, &mut value_warnings));
            true
        });
        warnings.append(&mut value_warnings);
        pairs
    };
    if warnings.len() > warnings_before + 1 {
        // Literal '=' come from the scan, escapes from unescaping: restore input order.
        warnings[warnings_before..].sort_by_key(Warning::offset);
    }
    pairs
}

/// Finds the pairs of a trimmed, non-empty extension and hands each to `emit`, which
/// returns `false` to stop. Returns `false` when stopped. Records literal-'=' warnings.
#[inline(always)]
fn scan(
    b: &[u8],
    base: usize,
    warnings: &mut Vec<Warning>,
    mut emit: impl FnMut(Span) -> bool,
) -> bool {
    let mut key = (0, 0);
    let mut value_start = 0;
    let mut value_escaped = false;
    let mut skip_to = 0;

    for i in memchr2_iter(b'=', b'\\', b) {
        if i < skip_to {
            continue;
        }
        if b[i] == b'\\' {
            // An escape pair: whatever follows the backslash is not a delimiter.
            value_escaped = true;
            skip_to = i + 2;
            continue;
        }
        // Step back over key characters (never past the start of the current value).
        let j = i - b[value_start..i]
            .iter()
            .rev()
            .take_while(|&&c| KEY_CHAR[usize::from(c)])
            .count();
        let starts_key = j < i
            && is_key_start(b[j])
            && if j == 0 {
                // Only the very first key can start at 0.
                value_start == 0
            } else {
                b[j - 1] == b' ' && j > value_start
            };
        if !starts_key {
            warnings.push(Warning::new(Some(base + i), WarningKind::LiteralEquals));
            continue;
        }
        if j > 0 {
            // The value ends before the single space that separates it from the key.
            let span = Span {
                key_start: key.0,
                key_end: key.1,
                value_start,
                value_end: j - 1,
                escaped: value_escaped,
            };
            if !emit(span) {
                return false;
            }
        }
        key = (j, i);
        value_start = i + 1;
        value_escaped = false;
    }
    emit(Span {
        key_start: key.0,
        key_end: key.1,
        value_start,
        value_end: b.len(),
        escaped: value_escaped,
    })
}

#[inline(always)]
fn make_pair<'a>(
    ext: &'a str,
    s: &Span,
    base: usize,
    warnings: &mut Vec<Warning>,
) -> (Cow<'a, str>, Cow<'a, str>) {
    let key = &ext[s.key_start..s.key_end];
    let value = &ext[s.value_start..s.value_end];
    if !s.escaped && !key.is_empty() {
        return (Cow::Borrowed(key), Cow::Borrowed(value));
    }
    make_pair_slow(key, value, s.escaped, base + s.value_start, warnings)
}

#[inline(never)]
fn make_pair_slow<'a>(
    key: &'a str,
    value: &'a str,
    escaped: bool,
    offset: usize,
    warnings: &mut Vec<Warning>,
) -> (Cow<'a, str>, Cow<'a, str>) {
    if key.is_empty() {
        warnings.push(Warning::new(Some(offset), WarningKind::KeylessText));
    }
    let value = if escaped {
        unescape_value(value, offset, warnings)
    } else {
        Cow::Borrowed(value)
    };
    (Cow::Borrowed(key), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str) -> Vec<(String, String)> {
        let e = parse(line.as_bytes()).expect("parses");
        e.extensions()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    const H: &str = "CEF:0|V|P|1|2|n|3|";

    #[test]
    fn keyless_text_is_kept_under_an_empty_key() {
        let line = format!("{H}just words here a=b");
        assert_eq!(pairs(&line), [p("", "just words here"), p("a", "b")]);
        let e = parse(line.as_bytes()).expect("parses");
        assert_eq!(e.warnings().len(), 1);
        assert_eq!(*e.warnings()[0].kind(), WarningKind::KeylessText);
        assert_eq!(e.warnings()[0].offset(), Some(H.len()));
    }

    #[test]
    fn warnings_point_at_the_bytes() {
        let line = format!("{H}a=x=y b=c\\qd");
        let e = parse(line.as_bytes()).expect("parses");
        let w: Vec<_> = e
            .warnings()
            .iter()
            .map(|w| (w.kind().clone(), w.offset()))
            .collect();
        assert_eq!(
            w,
            [
                (WarningKind::LiteralEquals, Some(H.len() + 3)),
                (WarningKind::UnknownEscape, Some(H.len() + 9)),
            ]
        );
        assert_eq!(&line[H.len() + 3..H.len() + 4], "=");
        assert_eq!(&line[H.len() + 9..H.len() + 10], "\\");
    }

    #[test]
    fn a_later_marker_is_tried_when_the_first_fails() {
        let e = parse(b"<13>Oct 11 22:14:15 host CEF: CEF:0|V|P|1|2|n|3|a=b").expect("parses");
        assert_eq!((e.device_vendor(), e.get("a")), ("V", Some("b")));
        // The error reported is the first marker's.
        let err = parse(b"CEF:x CEF:y|").expect_err("no marker parses");
        assert_eq!((*err.kind(), err.offset()), (ErrorKind::InvalidVersion, 0));
    }

    #[test]
    fn more_pairs_than_the_stack_holds() {
        let mut line = format!("{H}lead text ");
        for i in 0..100 {
            line.push_str(&format!("k{i}=a\\=b{i} lit=x=y esc=\\q "));
        }
        let e = parse(line.as_bytes()).expect("parses");
        assert_eq!(e.extensions().len(), 301);
        assert_eq!(e.extensions().next(), Some(("", "lead text")));
        assert_eq!(e.get("k99"), Some("a=b99"));
        assert_eq!(e.get("lit"), Some("x=y"));
        assert_eq!(e.get("esc"), Some("\\q"));
        let kinds: Vec<_> = e.warnings().iter().map(|w| w.kind().clone()).collect();
        assert_eq!(kinds.len(), 201);
        assert_eq!(kinds[0], WarningKind::KeylessText);
        assert_eq!(kinds[1], WarningKind::LiteralEquals);
        assert_eq!(kinds[2], WarningKind::UnknownEscape);
        let offsets: Vec<_> = e.warnings().iter().map(Warning::offset).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "in input order");
    }

    #[test]
    fn backslash_before_separator_space() {
        // Not decided by the rulings; the backslash stays with the value.
        assert_eq!(
            pairs(&format!("{H}a=x\\ b=1")),
            [p("a", "x\\"), p("b", "1")]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_and_offsets_map_back() {
        let line = b"<1>\xff CEF:0|V\xfe|P|1|2|n|3|a=\xc3 b=x=y".to_vec();
        let e = parse(&line).expect("parses");
        assert_eq!(e.device_vendor(), "V\u{fffd}");
        assert_eq!(
            e.extensions().collect::<Vec<_>>(),
            [("a", "\u{fffd}"), ("b", "x=y")]
        );
        let kinds: Vec<_> = e
            .warnings()
            .iter()
            .map(|w| (w.kind().clone(), w.offset()))
            .collect();
        let eq_at = line.len() - 2;
        assert_eq!(line[eq_at], b'=');
        assert_eq!(
            kinds,
            [
                (WarningKind::InvalidUtf8 { replaced: 2 }, Some(12)),
                (WarningKind::LiteralEquals, Some(eq_at)),
            ]
        );
        assert_eq!(line[12], 0xfe);
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let err = parse(b"xx CEF:0|V|P|1.0|100|name|").expect_err("short header");
        assert_eq!(
            *err.kind(),
            ErrorKind::UnterminatedHeader(HeaderField::Severity)
        );
        assert_eq!(err.offset(), 26);
        assert_eq!(
            err.to_string(),
            "unterminated header field severity at byte 26"
        );
        let err = parse(b"CEF:x|V|P|1|2|n|3|").expect_err("bad version");
        assert_eq!(*err.kind(), ErrorKind::InvalidVersion);
        let err = parse(b"CEF:99999999999|V|P|1|2|n|3|").expect_err("huge version");
        assert_eq!(*err.kind(), ErrorKind::InvalidVersion);
        assert_eq!(err.offset(), 4);
        let err = parse(b"CEF:0").expect_err("only version");
        assert_eq!(
            *err.kind(),
            ErrorKind::UnterminatedHeader(HeaderField::Version)
        );
        let err = parse(b"cef:0|V|P|1|2|n|3|").expect_err("lowercase");
        assert_eq!(*err.kind(), ErrorKind::MissingMarker);
        assert_eq!(err.to_string(), "no CEF: marker at byte 0");
    }

    #[test]
    fn original_offsets() {
        let raw = b"a\xffb\xf0\x9fc";
        // repaired: "a" U+FFFD "b" U+FFFD "c"
        let map = OffsetMap::new(raw);
        let got: Vec<usize> = (0..10).map(|o| map.original(o)).collect();
        assert_eq!(got, [0, 1, 1, 1, 2, 3, 3, 3, 5, 6]);
        assert_eq!(OffsetMap::new(b"").original(0), 0);
    }
}
