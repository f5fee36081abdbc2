//! The parsers: PRI (D4), strict RFC 5424 (D5, D13) and tolerant RFC 3164 (D6, D9, D10).

use std::borrow::Cow;

use crate::config::ParserConfig;
use crate::error::{ErrorKind, ParseError};
use crate::message::{ElementSpan, Message, Protocol, SdStore, Span};
use crate::time;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Fields found by one of the header parsers; everything is a range in the input.
#[derive(Default)]
struct Fields {
    timestamp: Option<Span>,
    hostname: Option<Span>,
    app_name: Option<Span>,
    proc_id: Option<Span>,
    msg_id: Option<Span>,
    sequence: Option<Span>,
    sd: SdStore,
    sd_malformed: bool,
    msg_start: usize,
}

pub(crate) fn parse_with<'a>(
    cfg: &ParserConfig,
    input: &'a [u8],
) -> Result<Message<'a>, ParseError> {
    if input.is_empty() {
        return Err(ParseError::new(0, ErrorKind::Empty));
    }
    let (pri, after_pri) = match pri(input) {
        Some((p, n)) => (Some(p), n),
        None => (None, 0),
    };
    let mut protocol = Protocol::Rfc3164;
    let fields = if input.get(after_pri..after_pri + 2) == Some(b"1 ") && pri.is_some() {
        match rfc5424(input, after_pri + 2) {
            Some(f) => {
                protocol = Protocol::Rfc5424;
                f
            }
            // D5: a line that announces RFC 5424 but does not follow it is read as 3164.
            None => rfc3164(cfg, input, after_pri, pri.is_some()),
        }
    } else {
        rfc3164(cfg, input, after_pri, pri.is_some())
    };
    let mut msg_start = fields.msg_start;
    let bom = input[msg_start..].starts_with(BOM);
    if bom {
        msg_start += BOM.len();
    }
    Ok(Message {
        raw: Cow::Borrowed(input),
        pri,
        protocol,
        timestamp: fields.timestamp,
        hostname: fields.hostname,
        app_name: fields.app_name,
        proc_id: fields.proc_id,
        msg_id: fields.msg_id,
        sequence: fields.sequence,
        sd: fields.sd,
        sd_malformed: fields.sd_malformed,
        msg: Span::new(msg_start, input.len()),
        bom,
        reference: cfg.reference,
        zone: cfg.zone.clone(),
    })
}

/// `<` 1–3 digits `>` with a value 0–191 (RFC 5424 PRIVAL). Returns (value, bytes used).
fn pri(input: &[u8]) -> Option<(u8, usize)> {
    if input.first() != Some(&b'<') {
        return None;
    }
    let mut v: u16 = 0;
    let mut i = 1;
    while i < input.len() && i <= 4 {
        match input[i] {
            d @ b'0'..=b'9' if i <= 3 => v = v * 10 + u16::from(d - b'0'),
            b'>' if i > 1 => {
                return u8::try_from(v)
                    .ok()
                    .filter(|&v| v <= 191)
                    .map(|v| (v, i + 1));
            }
            _ => return None,
        }
        i += 1;
    }
    None
}

fn is_printusascii(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// RFC 5424 header field: NILVALUE or 1..=max PRINTUSASCII, then SP.
/// Returns (value range or None for `-`, position after the SP).
fn header_field(s: &[u8], at: usize, max: usize) -> Option<(Option<Span>, usize)> {
    let len = s[at.min(s.len())..]
        .iter()
        .take_while(|&&b| is_printusascii(b))
        .count();
    if len == 0 || len > max || s.get(at + len) != Some(&b' ') {
        return None;
    }
    let value = if len == 1 && s[at] == b'-' {
        None
    } else {
        Some(Span::new(at, at + len))
    };
    Some((value, at + len + 1))
}

/// Strict RFC 5424 header after `<PRI>1 `. `None` sends the line to the 3164 parser.
fn rfc5424(s: &[u8], at: usize) -> Option<Fields> {
    let mut f = Fields::default();
    // TIMESTAMP = NILVALUE / FULL-DATE "T" FULL-TIME
    let at = if s.get(at..at + 2) == Some(b"- ") {
        at + 2
    } else {
        let (n, _) = time::scan_rfc3339(&s[at..], true)?;
        if s.get(at + n) != Some(&b' ') {
            return None;
        }
        f.timestamp = Some(Span::new(at, at + n));
        at + n + 1
    };
    // HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32 (RFC 5424 §6 ABNF).
    let (hostname, at) = header_field(s, at, 255)?;
    let (app_name, at) = header_field(s, at, 48)?;
    let (proc_id, at) = header_field(s, at, 128)?;
    // MSGID is followed by SP and STRUCTURED-DATA, which is never empty.
    let (msg_id, at) = header_field(s, at, 32)?;
    if at >= s.len() {
        return None;
    }
    f.hostname = hostname;
    f.app_name = app_name;
    f.proc_id = proc_id;
    f.msg_id = msg_id;
    // STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT, then [SP MSG].
    let end = if s[at] == b'-' {
        Some(at + 1)
    } else if s[at] == b'[' {
        structured_data(s, at, &mut f.sd)
    } else {
        None
    };
    match end {
        Some(e) if e == s.len() => f.msg_start = e,
        Some(e) if s[e] == b' ' => f.msg_start = e + 1,
        _ => {
            // D13: drop a malformed SD but keep the MSG after it.
            f.sd = SdStore::default();
            f.sd_malformed = true;
            f.msg_start = skip_malformed_sd(s, at);
        }
    }
    Some(f)
}

/// SD-NAME = 1*32PRINTUSASCII except `=`, SP, `]`, `"`.
fn sd_name(s: &[u8], at: usize) -> Option<usize> {
    let len = s[at.min(s.len())..]
        .iter()
        .take_while(|&&b| is_printusascii(b) && !matches!(b, b'=' | b']' | b'"'))
        .count();
    (1..=32).contains(&len).then_some(at + len)
}

/// Parses 1*SD-ELEMENT starting at `at` (which holds `[`). Returns the position after
/// the last `]`. Lenient where no data is lost: spaces around `=` and before `]`, and
/// unquoted values (VMware ESXi `[Originator@6876 sub=Vimsvc]`, syslog-ng accepts both).
fn structured_data(s: &[u8], mut at: usize, sd: &mut SdStore) -> Option<usize> {
    while s.get(at) == Some(&b'[') {
        let id = Span::new(at + 1, sd_name(s, at + 1)?);
        let params_start = sd.params.len();
        at = id.end;
        loop {
            match s.get(at)? {
                b']' => {
                    at += 1;
                    break;
                }
                b' ' => {
                    while s.get(at) == Some(&b' ') {
                        at += 1;
                    }
                    if s.get(at) == Some(&b']') {
                        continue;
                    }
                    let name_end = sd_name(s, at)?;
                    let name = Span::new(at, name_end);
                    at = name_end;
                    while s.get(at) == Some(&b' ') {
                        at += 1;
                    }
                    if s.get(at) != Some(&b'=') {
                        return None;
                    }
                    at += 1;
                    while s.get(at) == Some(&b' ') {
                        at += 1;
                    }
                    let value;
                    if s.get(at) == Some(&b'"') {
                        let start = at + 1;
                        let mut i = start;
                        loop {
                            match s.get(i)? {
                                b'\\' => i += 2,
                                b'"' => break,
                                _ => i += 1,
                            }
                        }
                        value = Span::new(start, i);
                        at = i + 1;
                    } else {
                        let len = s[at..]
                            .iter()
                            .take_while(|&&b| !matches!(b, b' ' | b']' | b'"' | b'[' | b'='))
                            .count();
                        if len == 0 {
                            return None;
                        }
                        value = Span::new(at, at + len);
                        at += len;
                    }
                    sd.params.push((name, value));
                }
                _ => return None,
            }
        }
        sd.elements.push(ElementSpan {
            id,
            params_start,
            params_end: sd.params.len(),
        });
    }
    Some(at)
}

/// Finds where a malformed STRUCTURED-DATA part ends: after the first `]` (outside a
/// quoted value) followed by SP or the end. Without one, the MSG starts at the SD.
fn skip_malformed_sd(s: &[u8], at: usize) -> usize {
    let mut quoted = false;
    let mut i = at;
    while i < s.len() {
        match s[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b']' if !quoted => match s.get(i + 1) {
                None => return s.len(),
                Some(b' ') => return i + 2,
                _ => {}
            },
            _ => {}
        }
        i += 1;
    }
    // Unbalanced quotes: retry ignoring them.
    let mut from = at;
    while let Some(p) = memchr::memchr(b']', &s[from..]) {
        let i = from + p;
        match s.get(i + 1) {
            None => return s.len(),
            Some(b' ') => return i + 2,
            _ => from = i + 1,
        }
    }
    at
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// The D9 hostname rule: a run of `[A-Za-z0-9._-]` (or an IPv6 literal: hex digits, `:`
/// and `.` with at least two colons) that ends in an alphanumeric and is followed by SP.
/// A token followed by `:` (`CEF:`, `%ASA-6-302013:`, `su:`) is never a host name.
fn hostname(s: &[u8], at: usize) -> Option<usize> {
    let rest = &s[at..];
    let mut len = rest.iter().take_while(|&&b| is_host_byte(b)).count();
    if rest.get(len) == Some(&b':') {
        let v6 = rest
            .iter()
            .take_while(|&&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            .count();
        if rest[..v6].iter().filter(|&&b| b == b':').count() >= 2 {
            len = v6;
        }
    }
    (len > 0 && rest[len - 1].is_ascii_alphanumeric() && rest.get(len) == Some(&b' '))
        .then_some(at + len)
}

/// Tolerant RFC 3164 parser, starting after the PRI (or at 0 without one).
fn rfc3164(cfg: &ParserConfig, s: &[u8], mut at: usize, has_pri: bool) -> Fields {
    let mut f = Fields::default();
    // Cisco sequence number: `<189>16261: May 28 …` (syslog-ng stores it as meta.sequenceId).
    let digits = s[at..]
        .iter()
        .take(11)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if (1..=10).contains(&digits) && s.get(at + digits..at + digits + 2) == Some(b": ") {
        f.sequence = Some(Span::new(at, at + digits));
        at += digits + 2;
    }
    // One SP straight after the PRI (HP ProCurve, `<134> Feb 29 …`).
    if has_pri && s.get(at) == Some(&b' ') {
        at += 1;
    }
    // TIMESTAMP: RFC 3339 first, then the BSD forms (D6); optional weekday before it,
    // optional `:` after it, then SP or the end.
    let wd = time::weekday_prefix(&s[at..]);
    let found = time::scan_rfc3339(&s[at..], false)
        .map(|(n, _)| (0, n))
        .or_else(|| time::scan_bsd(&s[at + wd..], cfg.year_after_time).map(|(n, _)| (wd, n)));
    if let Some((skip, n)) = found {
        let start = at + skip;
        let mut end = start + n;
        let ts = Span::new(start, end);
        if s.get(end) == Some(&b':') {
            end += 1;
        }
        match s.get(end) {
            None => {
                f.timestamp = Some(ts);
                at = end;
            }
            Some(b' ') => {
                f.timestamp = Some(ts);
                at = end + 1;
            }
            _ => {}
        }
    }
    // Without PRI and timestamp there is no header to read: the line is all message.
    if !has_pri && f.timestamp.is_none() {
        f.msg_start = at;
        return f;
    }
    if let Some(end) = hostname(s, at) {
        f.hostname = Some(Span::new(at, end));
        at = end + 1;
        // A lone `:` after the host name (Cisco ASA `ASADEVICE : %ASA-…`).
        if s.get(at..at + 2) == Some(b": ") {
            at += 2;
        }
    }
    // D10: content that starts with `CEF:` has no TAG.
    if s[at..].starts_with(b"CEF:") {
        f.msg_start = at;
        return f;
    }
    // TAG: up to `:`, SP or `[`; recognised only as `TAG:` or `TAG[pid]:`.
    let tag_len = s[at..]
        .iter()
        .take_while(|&&b| !matches!(b, b':' | b' ' | b'[' | b'\n' | b'\r' | b'\t'))
        .count();
    let tag = Span::new(at, at + tag_len);
    let mut after = None;
    let mut pid = None;
    if tag_len > 0 && std::str::from_utf8(&s[tag.start..tag.end]).is_ok() {
        match s.get(tag.end) {
            Some(b':') => after = Some(tag.end + 1),
            Some(b'[') => {
                let open = tag.end + 1;
                let plen = s[open..]
                    .iter()
                    .take_while(|&&b| !matches!(b, b']' | b' ' | b'[' | b'\n'))
                    .count();
                let close = open + plen;
                if plen > 0
                    && s.get(close) == Some(&b']')
                    && s.get(close + 1) == Some(&b':')
                    && std::str::from_utf8(&s[open..close]).is_ok()
                {
                    pid = Some(Span::new(open, close));
                    after = Some(close + 2);
                }
            }
            _ => {}
        }
    }
    if let Some(mut p) = after {
        f.app_name = Some(tag);
        f.proc_id = pid;
        if s.get(p) == Some(&b' ') {
            p += 1;
        }
        at = p;
    }
    f.msg_start = at;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_rules() {
        assert_eq!(pri(b"<0>x"), Some((0, 3)));
        assert_eq!(pri(b"<191>x"), Some((191, 5)));
        assert_eq!(pri(b"<192>x"), None);
        assert_eq!(pri(b"<1234>x"), None);
        assert_eq!(pri(b"<>x"), None);
        assert_eq!(pri(b"<13"), None);
        assert_eq!(pri(b"<013>"), Some((13, 5)));
    }

    #[test]
    fn hostname_rule() {
        assert_eq!(hostname(b"fw01 CEF:0", 0), Some(4));
        assert_eq!(hostname(b"CEF:0|V|P", 0), None);
        assert_eq!(hostname(b"su: x", 0), None);
        assert_eq!(hostname(b"::FFFF:129.144.52.38 su", 0), Some(20));
        assert_eq!(hostname(b"app:msg here", 0), None);
        assert_eq!(hostname(b"host- x", 0), None);
    }
}
