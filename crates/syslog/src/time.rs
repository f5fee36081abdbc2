//! Timestamp scanning (RFC 3339 and the BSD forms of D6) and resolution to an instant
//! (year inference D7, default zone D8).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// The fields of a scanned timestamp. The year is absent for the classic BSD form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) year: Option<i16>,
    pub(crate) month: i8,
    pub(crate) day: i8,
    pub(crate) hour: i8,
    pub(crate) minute: i8,
    pub(crate) second: i8,
    pub(crate) nanos: i32,
    /// Seconds east of UTC, when the text carries an offset.
    pub(crate) offset: Option<i32>,
}

const MONTHS: [&[u8]; 12] = [
    b"january",
    b"february",
    b"march",
    b"april",
    b"may",
    b"june",
    b"july",
    b"august",
    b"september",
    b"october",
    b"november",
    b"december",
];

const WEEKDAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];

/// Month abbreviations as written by RFC 3164 senders, for the encoder.
pub(crate) const MONTH_ABBR: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn digits<const N: usize>(s: &[u8], at: usize) -> Option<i32> {
    let bytes = s.get(at..at + N)?;
    let mut v = 0i32;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i32::from(b - b'0');
    }
    Some(v)
}

fn byte_is(s: &[u8], at: usize, want: u8) -> bool {
    s.get(at) == Some(&want)
}

/// Narrowing that cannot fail for values already range-checked by the scanner.
fn small(v: i32) -> i8 {
    i8::try_from(v).unwrap_or(0)
}

/// Reads `.ddd…` at `at`; returns (nanoseconds, bytes consumed). No dot: (0, 0).
fn fraction(s: &[u8], at: usize, max_digits: usize) -> Option<(i32, usize)> {
    if !byte_is(s, at, b'.') {
        return Some((0, 0));
    }
    let n = s[at + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > max_digits {
        return None;
    }
    let mut nanos = 0i32;
    for (i, &b) in s[at + 1..at + 1 + n].iter().enumerate() {
        if i < 9 {
            nanos = nanos * 10 + i32::from(b - b'0');
        }
    }
    for _ in n..9 {
        nanos *= 10;
    }
    Some((nanos, n + 1))
}

/// Scans an RFC 3339 timestamp at the start of `s`.
///
/// Strict (RFC 5424 §6.2.3): upper-case `T` and `Z`, `±hh:mm` offsets, at most six
/// fraction digits, no leap second. Lenient (RFC 3164 lines): lower-case `t`/`z`, `±hhmm`
/// and `±hh` offsets, a missing offset (read in the default zone), up to nine fraction
/// digits (more are cut), second 60.
pub(crate) fn scan_rfc3339(s: &[u8], strict: bool) -> Option<(usize, Stamp)> {
    let year = digits::<4>(s, 0)?;
    if !byte_is(s, 4, b'-') || !byte_is(s, 7, b'-') {
        return None;
    }
    let month = digits::<2>(s, 5)?;
    let day = digits::<2>(s, 8)?;
    match s.get(10) {
        Some(b'T') => {}
        Some(b't') if !strict => {}
        _ => return None,
    }
    let hour = digits::<2>(s, 11)?;
    let minute = digits::<2>(s, 14)?;
    let second = digits::<2>(s, 17)?;
    if !byte_is(s, 13, b':') || !byte_is(s, 16, b':') {
        return None;
    }
    let max_second = if strict { 59 } else { 60 };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > max_second
    {
        return None;
    }
    let (nanos, flen) = fraction(s, 19, if strict { 6 } else { 18 })?;
    let mut at = 19 + flen;
    let offset = match s.get(at) {
        Some(b'Z') => {
            at += 1;
            Some(0)
        }
        Some(b'z') if !strict => {
            at += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits::<2>(s, at + 1)?;
            let (om, used) = if byte_is(s, at + 3, b':') {
                (digits::<2>(s, at + 4)?, 6)
            } else if strict {
                return None;
            } else if let Some(m) = digits::<2>(s, at + 3) {
                (m, 5)
            } else {
                (0, 3)
            };
            if oh > 23 || om > 59 {
                return None;
            }
            at += used;
            let secs = oh * 3600 + om * 60;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ if strict => return None,
        _ => None,
    };
    Some((
        at,
        Stamp {
            year: i16::try_from(year).ok(),
            month: small(month),
            day: small(day),
            hour: small(hour),
            minute: small(minute),
            second: small(second),
            nanos,
            offset,
        },
    ))
}

/// Matches an English month name (three-letter abbreviation or full name, any case).
/// Returns (month 1–12, bytes consumed).
fn month_name(s: &[u8], at: usize) -> Option<(i8, usize)> {
    let abbr = s.get(at..at + 3)?;
    for (i, name) in MONTHS.iter().enumerate() {
        if abbr.eq_ignore_ascii_case(&name[..3]) {
            // A full month name ("July") is accepted by its prefix; anything else that
            // continues with letters ("Mayday") is not a month.
            let rest = &s[at + 3..];
            let extra = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
            if extra == 0 {
                return Some((small(i as i32 + 1), 3));
            }
            if 3 + extra == name.len() && rest[..extra].eq_ignore_ascii_case(&name[3..]) {
                return Some((small(i as i32 + 1), 3 + extra));
            }
            return None;
        }
    }
    None
}

/// `hh:mm:ss[.fff]` at `at`; returns (h, m, s, nanos, consumed).
fn clock(s: &[u8], at: usize) -> Option<(i8, i8, i8, i32, usize)> {
    let h = digits::<2>(s, at)?;
    let m = digits::<2>(s, at + 3)?;
    let sec = digits::<2>(s, at + 6)?;
    if !byte_is(s, at + 2, b':') || !byte_is(s, at + 5, b':') || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let (nanos, flen) = fraction(s, at + 8, 9)?;
    Some((small(h), small(m), small(sec), nanos, 8 + flen))
}

/// Scans a BSD-style timestamp at the start of `s` (D6):
/// `Mmm d hh:mm:ss[.fff]` (one or two spaces before the day, zero padding allowed),
/// `Mmm dd yyyy hh:mm:ss[.fff]` (Cisco), `yyyy Mmm dd hh:mm:ss[.fff]` (Brocade) and, when
/// `year_after` is set, `Mmm dd hh:mm:ss yyyy` (Linksys). Month names match in any case and
/// may be spelled out.
pub(crate) fn scan_bsd(s: &[u8], year_after: bool) -> Option<(usize, Stamp)> {
    let mut at = 0;
    let mut year = None;
    if let Some(y) = digits::<4>(s, 0) {
        if !byte_is(s, 4, b' ') {
            return None;
        }
        year = Some(y);
        at = 5;
    }
    let (month, mlen) = month_name(s, at)?;
    at += mlen;
    if !byte_is(s, at, b' ') {
        return None;
    }
    at += 1;
    if byte_is(s, at, b' ') {
        at += 1;
    }
    let dlen = s[at..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if dlen == 0 || dlen > 2 {
        return None;
    }
    let day = s[at..at + dlen]
        .iter()
        .fold(0i32, |v, &b| v * 10 + i32::from(b - b'0'));
    if !(1..=31).contains(&day) {
        return None;
    }
    at += dlen;
    if !byte_is(s, at, b' ') {
        return None;
    }
    at += 1;
    if year.is_none()
        && let Some(y) = digits::<4>(s, at)
        && byte_is(s, at + 4, b' ')
    {
        year = Some(y);
        at += 5;
    }
    let (hour, minute, second, nanos, clen) = clock(s, at)?;
    at += clen;
    if year_after
        && year.is_none()
        && byte_is(s, at, b' ')
        && let Some(y) = digits::<4>(s, at + 1)
        && matches!(s.get(at + 5), None | Some(b' ' | b':'))
    {
        year = Some(y);
        at += 5;
    }
    Some((
        at,
        Stamp {
            year: year.and_then(|y| i16::try_from(y).ok()),
            month,
            day: small(day),
            hour,
            minute,
            second,
            nanos,
            offset: None,
        },
    ))
}

/// Length of an English weekday abbreviation plus one space at the start of `s`
/// (`Tue Sep 23 …`, rsyslog's whitepaper example), if present.
pub(crate) fn weekday_prefix(s: &[u8]) -> usize {
    match s.get(..4) {
        Some(w) if w[3] == b' ' && WEEKDAYS.iter().any(|d| w[..3].eq_ignore_ascii_case(*d)) => 4,
        _ => 0,
    }
}

/// Scans a timestamp text previously accepted by the parser.
pub(crate) fn scan_any(s: &[u8]) -> Option<Stamp> {
    scan_rfc3339(s, false)
        .or_else(|| scan_bsd(s, true))
        .map(|(_, st)| st)
}

/// Year inference (D7, syslog-ng `determine_year_for_month`): a December stamp seen in
/// January belongs to the previous year, a January stamp seen in December to the next.
pub(crate) fn infer_year(month: i8, now_year: i16, now_month: i8) -> i16 {
    match (month, now_month) {
        (12, 1) => now_year - 1,
        (1, 12) => now_year + 1,
        _ => now_year,
    }
}

/// Turns a scanned stamp into an instant. A stamp without a year takes one from
/// `reference` (or now) per [`infer_year`]; a stamp without an offset is civil time in
/// `zone` (a DST gap or overlap resolves the way jiff's "compatible" rule does). Impossible
/// dates (Feb 29 of a common year, April 31) give `None`.
pub(crate) fn resolve(
    st: &Stamp,
    reference: Option<Timestamp>,
    zone: &TimeZone,
) -> Option<Timestamp> {
    let year = match st.year {
        Some(y) => y,
        None => {
            let now = zone.to_datetime(reference.unwrap_or_else(Timestamp::now));
            infer_year(st.month, now.year(), now.month())
        }
    };
    let dt = DateTime::new(
        year,
        st.month,
        st.day,
        st.hour,
        st.minute,
        st.second.min(59),
        st.nanos,
    )
    .ok()?;
    match st.offset {
        Some(secs) => Offset::from_seconds(secs).ok()?.to_timestamp(dt).ok(),
        None => zone.to_timestamp(dt).ok(),
    }
}

/// Writes `ts` as an RFC 5424 TIMESTAMP in UTC: `YYYY-MM-DDThh:mm:ss.ffffffZ`
/// (microseconds; the fraction is left out when it is zero).
pub(crate) fn write_rfc3339(ts: Timestamp, out: &mut Vec<u8>) {
    let dt = TimeZone::UTC.to_datetime(ts);
    let micros = dt.subsec_nanosecond() / 1000;
    let mut buf = itoa_pad(i32::from(dt.year()), 4);
    buf.push(b'-');
    buf.extend(itoa_pad(i32::from(dt.month()), 2));
    buf.push(b'-');
    buf.extend(itoa_pad(i32::from(dt.day()), 2));
    buf.push(b'T');
    buf.extend(itoa_pad(i32::from(dt.hour()), 2));
    buf.push(b':');
    buf.extend(itoa_pad(i32::from(dt.minute()), 2));
    buf.push(b':');
    buf.extend(itoa_pad(i32::from(dt.second()), 2));
    if micros != 0 {
        buf.push(b'.');
        buf.extend(itoa_pad(micros, 6));
    }
    buf.push(b'Z');
    out.extend_from_slice(&buf);
}

/// Writes `ts`, seen in `zone`, as an RFC 3164 TIMESTAMP `Mmm dd hh:mm:ss` (day padded
/// with a space, as RFC 3164 §4.1.2 asks).
pub(crate) fn write_bsd(ts: Timestamp, zone: &TimeZone, out: &mut Vec<u8>) {
    let dt = zone.to_datetime(ts);
    let month = usize::try_from(dt.month() - 1).unwrap_or(0);
    out.extend_from_slice(MONTH_ABBR[month].as_bytes());
    out.push(b' ');
    let day = dt.day();
    if day < 10 {
        out.push(b' ');
        out.push(b'0' + u8::try_from(day).unwrap_or(0));
    } else {
        out.extend(itoa_pad(i32::from(day), 2));
    }
    out.push(b' ');
    out.extend(itoa_pad(i32::from(dt.hour()), 2));
    out.push(b':');
    out.extend(itoa_pad(i32::from(dt.minute()), 2));
    out.push(b':');
    out.extend(itoa_pad(i32::from(dt.second()), 2));
}

fn itoa_pad(v: i32, width: usize) -> Vec<u8> {
    let s = format!("{:0width$}", v.max(0), width = width);
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_strict_and_lenient() {
        let (n, st) = scan_rfc3339(b"2003-08-24T05:14:15.000003-07:00 x", true).unwrap();
        assert_eq!(n, 32);
        assert_eq!(st.offset, Some(-7 * 3600));
        assert_eq!(st.nanos, 3000);
        assert!(scan_rfc3339(b"2003-08-24t05:14:15Z", true).is_none());
        assert!(scan_rfc3339(b"2003-08-24T05:14:15.1234567Z", true).is_none());
        assert!(scan_rfc3339(b"2003-08-24T05:14:15", true).is_none());
        let (n, st) = scan_rfc3339(b"2003-08-24T05:14:15 host", false).unwrap();
        assert_eq!((n, st.offset), (19, None));
        let (_, st) = scan_rfc3339(b"2003-08-24T05:14:15+0130", false).unwrap();
        assert_eq!(st.offset, Some(5400));
    }

    #[test]
    fn bsd_forms() {
        let (n, st) = scan_bsd(b"Feb  5 17:32:18 host", false).unwrap();
        assert_eq!((n, st.month, st.day, st.year), (15, 2, 5, None));
        let (n, st) = scan_bsd(b"Aug 04 2021 11:31:32 x", false).unwrap();
        assert_eq!((n, st.year), (20, Some(2021)));
        let (n, st) = scan_bsd(b"2008 May 21 10:00:00 x", false).unwrap();
        assert_eq!((n, st.year, st.month), (20, Some(2008), 5));
        let (n, st) = scan_bsd(b"May 28 16:09:56.185: %SYS", false).unwrap();
        assert_eq!((n, st.nanos), (19, 185_000_000));
        let (n, st) = scan_bsd(b"JULY 16 10:34:23 host", false).unwrap();
        assert_eq!((n, st.month), (16, 7));
        assert!(scan_bsd(b"Mayday 16 10:34:23", false).is_none());
        let (n, st) = scan_bsd(b"Dec  3 09:10:12 2019 host", true).unwrap();
        assert_eq!((n, st.year), (20, Some(2019)));
        assert_eq!(scan_bsd(b"Dec  3 09:10:12 2019 host", false).unwrap().0, 15);
    }

    #[test]
    fn year_inference_follows_syslog_ng() {
        assert_eq!(infer_year(1, 2017, 12), 2018);
        assert_eq!(infer_year(12, 2018, 1), 2017);
        assert_eq!(infer_year(10, 2017, 12), 2017);
    }

    #[test]
    fn resolve_uses_zone_and_reference() {
        let reference: Timestamp = "2017-12-13T12:00:00Z".parse().unwrap();
        let cet =
            TimeZone::get("Europe/Paris").unwrap_or_else(|_| TimeZone::fixed(Offset::constant(1)));
        let (_, st) = scan_bsd(b"Jan  3 17:46:12.000", false).unwrap();
        let ts = resolve(&st, Some(reference), &cet).unwrap();
        assert_eq!(ts.to_string(), "2018-01-03T16:46:12Z");
        let (_, st) = scan_bsd(b"Feb 29 14:07:19", false).unwrap();
        let ref2019: Timestamp = "2019-03-01T00:00:00Z".parse().unwrap();
        assert!(resolve(&st, Some(ref2019), &TimeZone::UTC).is_none());
    }

    #[test]
    fn writers() {
        let ts: Timestamp = "2024-05-08T16:07:11.123456Z".parse().unwrap();
        let mut out = Vec::new();
        write_rfc3339(ts, &mut out);
        assert_eq!(out, b"2024-05-08T16:07:11.123456Z");
        out.clear();
        let ts: Timestamp = "2024-02-05T07:08:09Z".parse().unwrap();
        write_bsd(ts, &TimeZone::UTC, &mut out);
        assert_eq!(out, b"Feb  5 07:08:09");
    }
}
