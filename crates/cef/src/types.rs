//! Conversions of extension values to the dictionary's data types.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

pub(crate) fn parse_i64(v: &str) -> Option<i64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

pub(crate) fn parse_f64(v: &str) -> Option<f64> {
    // Rust's float syntax also accepts "inf", "NaN" and a leading '+'; CEF producers
    // write plain decimals, so accept only digits, one '.', a sign and an exponent.
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    v.parse::<f64>().ok().filter(|f| f.is_finite())
}

pub(crate) fn parse_ip(v: &str) -> Option<IpAddr> {
    v.parse().ok()
}

/// A MAC address (six octets). `Display` writes the normalised form: lower-case hex
/// octets separated by colons (`00:0d:60:af:1b:61`).
///
/// Parsing accepts six colon- or hyphen-separated octets of one or two hex digits
/// (`00:0D:60:AF:1B:61`, `0-d-60-af-1b-61`), three dot-separated groups of four
/// (`000d.60af.1b61`), or twelve hex digits (`000D60AF1B61`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

impl Mac {
    /// Builds an address from its octets.
    pub fn new(octets: [u8; 6]) -> Self {
        Mac(octets)
    }

    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The text is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidMac;

impl fmt::Display for InvalidMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address")
    }
}

impl std::error::Error for InvalidMac {}

fn hex_group(s: &str, min: usize, max: usize) -> Option<u64> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl FromStr for Mac {
    type Err = InvalidMac;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let sep = s.bytes().find(|b| matches!(b, b':' | b'-' | b'.'));
        match sep {
            Some(sep @ (b':' | b'-')) => {
                let mut n = 0;
                for part in s.split(char::from(sep)) {
                    let slot = out.get_mut(n).ok_or(InvalidMac)?;
                    *slot = u8::try_from(hex_group(part, 1, 2).ok_or(InvalidMac)?)
                        .map_err(|_| InvalidMac)?;
                    n += 1;
                }
                if n != 6 {
                    return Err(InvalidMac);
                }
            }
            Some(_) => {
                let mut n = 0;
                for part in s.split('.') {
                    let g = hex_group(part, 4, 4).ok_or(InvalidMac)?;
                    let pair = out.get_mut(n..n + 2).ok_or(InvalidMac)?;
                    pair.copy_from_slice(&g.to_be_bytes()[6..]);
                    n += 2;
                }
                if n != 6 {
                    return Err(InvalidMac);
                }
            }
            None => {
                let v = hex_group(s, 12, 12).ok_or(InvalidMac)?;
                out.copy_from_slice(&v.to_be_bytes()[2..]);
            }
        }
        Ok(Mac(out))
    }
}

/// What a date conversion needs besides the value: a reference time for dates written
/// without a year, and the zone for dates written without one (when the event has no
/// usable `dtz` either).
///
/// Accepted forms (CEF standard, appendix A): epoch milliseconds (`1511373004000`,
/// optionally with a fraction of a millisecond), and `MMM dd[ yyyy] HH:mm:ss[.SSS][ zzz]`
/// (English month names, 1 to 9 fraction digits). The zone `zzz` may be `UTC`, `GMT`,
/// `Z`, an offset (`+0300`, `-07:00`, `GMT+01:00`), a common North-American or European
/// abbreviation (`EST`, `PDT`, `CET`, ...) or an IANA name (`Europe/Moscow`). RFC 3339
/// timestamps (`2025-06-29T23:35:00Z`) are accepted too.
///
/// A date without a year gets the reference time's year, or the year before when that
/// would put it more than two days after the reference, or the year after when that
/// is within two days of the reference (a device clock slightly ahead at New Year).
#[derive(Debug, Clone)]
pub struct DateContext {
    reference: Timestamp,
    default_zone: TimeZone,
}

impl DateContext {
    /// A context with the given reference time and UTC as default zone.
    pub fn new(reference: Timestamp) -> Self {
        DateContext {
            reference,
            default_zone: TimeZone::UTC,
        }
    }

    /// A context with the current time as reference and UTC as default zone.
    pub fn now() -> Self {
        Self::new(Timestamp::now())
    }

    /// Sets the zone used when neither the value nor the event's `dtz` gives one.
    #[must_use]
    pub fn with_default_zone(mut self, zone: TimeZone) -> Self {
        self.default_zone = zone;
        self
    }

    /// The reference time.
    pub fn reference(&self) -> Timestamp {
        self.reference
    }

    /// The default zone.
    pub fn default_zone(&self) -> &TimeZone {
        &self.default_zone
    }
}

impl Default for DateContext {
    /// Same as [`DateContext::now`].
    fn default() -> Self {
        Self::now()
    }
}

/// Converts a date value; `dtz` is the event's `dtz` value, if any.
pub(crate) fn parse_timestamp(v: &str, dtz: Option<&str>, ctx: &DateContext) -> Option<Timestamp> {
    let v = v.trim_matches(' ');
    let b = v.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b[0].is_ascii_digit() || b[0] == b'-' {
        if let Some(t) = parse_epoch_millis(v) {
            return Some(t);
        }
        if let Ok(t) = v.parse::<Timestamp>() {
            return Some(t);
        }
        let dt = v.parse::<DateTime>().ok()?;
        let tz = fallback_zone(dtz, ctx);
        return tz
            .to_ambiguous_zoned(dt)
            .compatible()
            .ok()
            .map(|z| z.timestamp());
    }
    parse_text_date(v, dtz, ctx)
}

fn fallback_zone(dtz: Option<&str>, ctx: &DateContext) -> TimeZone {
    dtz.and_then(zone_from_text)
        .unwrap_or_else(|| ctx.default_zone.clone())
}

fn parse_epoch_millis(v: &str) -> Option<Timestamp> {
    let (neg, rest) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    if int.is_empty() || int.len() > 18 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i128 = int.parse().ok()?;
    let mut nanos = ms * 1_000_000;
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Sub-millisecond digits: keep nanosecond precision, drop the rest.
        let mut sub: i128 = 0;
        for (i, d) in f.bytes().take(6).enumerate() {
            sub += i128::from(d - b'0') * 10i128.pow(5 - u32::try_from(i).ok()?);
        }
        nanos += sub;
    }
    if neg {
        nanos = -nanos;
    }
    Timestamp::from_nanosecond(nanos).ok()
}

fn month(s: &str) -> Option<i8> {
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if s.len() < 3 || !s.is_ascii() {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|n| {
            *n == lower
                || (lower.len() == 3 && n.starts_with(&lower))
                || (lower == "sept" && *n == "september")
        })
        .and_then(|i| i8::try_from(i + 1).ok())
}

fn small_number<T: TryFrom<u32>>(s: &str, min_len: usize, max_len: usize) -> Option<T> {
    if s.len() < min_len || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    T::try_from(s.parse::<u32>().ok()?).ok()
}

/// `HH:mm:ss[.fraction]` → time.
fn parse_clock(s: &str) -> Option<Time> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let h: i8 = small_number(parts.next()?, 1, 2)?;
    let m: i8 = small_number(parts.next()?, 1, 2)?;
    let sec: i8 = small_number(parts.next()?, 1, 2)?;
    if parts.next().is_some() {
        return None;
    }
    let mut ns: i32 = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: i32 = f.parse().ok()?;
        ns = digits * 10i32.pow(9 - u32::try_from(f.len()).ok()?);
    }
    Time::new(h, m, sec, ns).ok()
}

fn parse_text_date(v: &str, dtz: Option<&str>, ctx: &DateContext) -> Option<Timestamp> {
    let mut tokens = v.split(' ').filter(|t| !t.is_empty());
    let mon = month(tokens.next()?)?;
    let day: i8 = small_number(tokens.next()?, 1, 2)?;
    let mut next = tokens.next()?;
    let mut year: Option<i16> = None;
    if !next.contains(':') {
        year = Some(small_number(next, 4, 4)?);
        next = tokens.next()?;
    }
    let time = parse_clock(next)?;
    let zone = match tokens.next() {
        Some(z) => Some(zone_from_text(z)?),
        None => None,
    };
    if tokens.next().is_some() {
        return None;
    }
    let tz = zone.unwrap_or_else(|| fallback_zone(dtz, ctx));
    let at = |y: i16| -> Option<Timestamp> {
        let date = Date::new(y, mon, day).ok()?;
        tz.to_ambiguous_zoned(DateTime::from_parts(date, time))
            .compatible()
            .ok()
            .map(|z| z.timestamp())
    };
    match year {
        Some(y) => at(y),
        None => {
            let y = ctx.reference.to_zoned(tz.clone()).year();
            let limit = ctx
                .reference
                .checked_add(SignedDuration::from_hours(48))
                .ok()?;
            let mut last = None;
            for cand in [y.checked_add(1), Some(y), y.checked_sub(1)] {
                let Some(t) = cand.and_then(at) else {
                    continue;
                };
                if t <= limit {
                    return Some(t);
                }
                last = Some(t);
            }
            last
        }
    }
}

/// A zone written in a value or in `dtz`.
pub(crate) fn zone_from_text(s: &str) -> Option<TimeZone> {
    let upper_eq = |a: &str| s.eq_ignore_ascii_case(a);
    if upper_eq("UTC") || upper_eq("GMT") || upper_eq("UT") || upper_eq("Z") {
        return Some(TimeZone::UTC);
    }
    let offset_text = ["GMT", "UTC", "UT"]
        .iter()
        .find_map(|p| {
            s.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &s[p.len()..])
        })
        .unwrap_or(s);
    if let Some(off) = parse_offset(offset_text) {
        return Some(TimeZone::fixed(off));
    }
    const ABBREVIATIONS: [(&str, i32); 14] = [
        ("EST", -5),
        ("EDT", -4),
        ("CST", -6),
        ("CDT", -5),
        ("MST", -7),
        ("MDT", -6),
        ("PST", -8),
        ("PDT", -7),
        ("AKST", -9),
        ("AKDT", -8),
        ("CET", 1),
        ("CEST", 2),
        ("EET", 2),
        ("EEST", 3),
    ];
    if let Some((_, h)) = ABBREVIATIONS.iter().find(|(a, _)| upper_eq(a)) {
        return Offset::from_seconds(h * 3600).ok().map(TimeZone::fixed);
    }
    if s.contains('/') {
        return TimeZone::get(s).ok();
    }
    None
}

/// `+hh`, `+hhmm`, `+hh:mm` (or `-`).
fn parse_offset(s: &str) -> Option<Offset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &s[1..];
    let (h, m) = match (rest.len(), rest.split_once(':')) {
        (_, Some((h, m))) => (h, m),
        (1 | 2, None) => (rest, "0"),
        // Four bytes need not be four characters: slice only on a boundary.
        (4, None) => (rest.get(..2)?, rest.get(2..)?),
        _ => return None,
    };
    let h: i32 = small_number(h, 1, 2)?;
    let m: i32 = small_number(m, 1, 2)?;
    if h > 18 || m > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> DateContext {
        DateContext::new("2017-11-22T17:50:04Z".parse().expect("valid"))
    }

    fn ts(v: &str, dtz: Option<&str>) -> Option<String> {
        parse_timestamp(v, dtz, &ctx()).map(|t| t.to_string())
    }

    #[test]
    fn epoch_millis() {
        assert_eq!(
            ts("1511373004000", None).as_deref(),
            Some("2017-11-22T17:50:04Z")
        );
        assert_eq!(
            ts("1616623591694.176789", None).as_deref(),
            Some("2021-03-24T22:06:31.694176789Z")
        );
        assert_eq!(ts("0", None).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(ts("12a", None), None);
        assert_eq!(ts("", None), None);
        assert_eq!(ts("99999999999999999999999", None), None);
    }

    #[test]
    fn the_nine_layouts() {
        let cases = [
            ("Jul 19 10:50:21.127 UTC", "2017-07-19T10:50:21.127Z"),
            ("Jul 19 10:50:21.127", "2017-07-19T10:50:21.127Z"),
            ("Jul 19 10:50:21 GMT", "2017-07-19T10:50:21Z"),
            ("Jul 19 10:50:21", "2017-07-19T10:50:21Z"),
            ("Jul 19 2017 10:50:21.127 UTC", "2017-07-19T10:50:21.127Z"),
            ("Jul 19 2017 10:50:21.127", "2017-07-19T10:50:21.127Z"),
            ("Sep 07 2018 14:50:39 GMT", "2018-09-07T14:50:39Z"),
            ("Sep 07 2018 14:50:39", "2018-09-07T14:50:39Z"),
        ];
        for (input, want) in cases {
            assert_eq!(ts(input, None).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn an_offset_of_four_bytes_that_are_not_four_characters_is_no_offset() {
        // Found by the csl_map fuzz target: `-` then U+FFFD and U+0001 is four bytes,
        // and byte 2 is inside the first character.
        assert_eq!(ts("Sep 27 2018 14:59:0 -\u{fffd}\u{1}", None), None);
        assert_eq!(
            ts("Sep 27 2018 14:59:00", Some("+\u{20ac}1")).as_deref(),
            Some("2018-09-27T14:59:00Z")
        );
        assert!(zone_from_text("UTC+\u{20ac}1").is_none());
    }

    #[test]
    fn zones_from_value_dtz_and_default() {
        // Logstash's test: dtz=Europe/Moscow (UTC+3 in 2017).
        assert_eq!(
            ts("Jul 19 2017 10:50:21.127", Some("Europe/Moscow")).as_deref(),
            Some("2017-07-19T07:50:21.127Z")
        );
        // A zone in the value wins over dtz.
        assert_eq!(
            ts("Jul 19 2017 10:50:21 UTC", Some("Europe/Moscow")).as_deref(),
            Some("2017-07-19T10:50:21Z")
        );
        assert_eq!(
            ts("Jul 19 2017 10:50:21 -07:00", None).as_deref(),
            Some("2017-07-19T17:50:21Z")
        );
        assert_eq!(
            ts("Jul 19 2017 10:50:21 GMT+0100", None).as_deref(),
            Some("2017-07-19T09:50:21Z")
        );
        assert_eq!(
            ts("Jan 19 2017 10:50:21 PST", None).as_deref(),
            Some("2017-01-19T18:50:21Z")
        );
        let c = ctx().with_default_zone(TimeZone::fixed(Offset::constant(2)));
        assert_eq!(
            parse_timestamp("Jul 19 2017 10:50:21", None, &c).map(|t| t.to_string()),
            Some("2017-07-19T08:50:21Z".to_owned())
        );
        // An unusable dtz falls back to the default zone.
        assert_eq!(
            ts("Jul 19 2017 10:50:21", Some("Not/AZone")).as_deref(),
            Some("2017-07-19T10:50:21Z")
        );
        // An unknown zone written in the value fails the conversion.
        assert_eq!(ts("Jul 19 2017 10:50:21 XYZ", None), None);
    }

    #[test]
    fn year_inference() {
        // Reference 2017-11-22: a December date is from last year, a date within two
        // days ahead stays in this year.
        assert_eq!(
            ts("Dec 01 10:00:00", None).as_deref(),
            Some("2016-12-01T10:00:00Z")
        );
        assert_eq!(
            ts("Nov 24 10:00:00", None).as_deref(),
            Some("2017-11-24T10:00:00Z")
        );
        let ny = DateContext::new("2017-12-31T23:59:00Z".parse().expect("valid"));
        assert_eq!(
            parse_timestamp("Jan 01 00:01:00", None, &ny).map(|t| t.to_string()),
            Some("2018-01-01T00:01:00Z".to_owned())
        );
        // Feb 29 takes the nearest earlier leap year that fits.
        let leap = DateContext::new("2017-03-01T00:00:00Z".parse().expect("valid"));
        assert_eq!(
            parse_timestamp("Feb 29 12:00:00", None, &leap).map(|t| t.to_string()),
            Some("2016-02-29T12:00:00Z".to_owned())
        );
    }

    #[test]
    fn iso_and_rejects() {
        assert_eq!(
            ts("2025-06-29T23:35:00Z", None).as_deref(),
            Some("2025-06-29T23:35:00Z")
        );
        assert_eq!(ts("Foo 19 2017 10:50:21", None), None);
        assert_eq!(ts("Jul 32 2017 10:50:21", None), None);
        assert_eq!(ts("Jul 19 2017 25:50:21", None), None);
        assert_eq!(ts("Jul 19 2017 10:50", None), None);
        assert_eq!(ts("Jul 19 2017 10:50:21 UTC extra", None), None);
    }

    #[test]
    fn macs() {
        let want = Mac::new([0x00, 0x0d, 0x60, 0xaf, 0x1b, 0x61]);
        for s in [
            "00:0D:60:AF:1B:61",
            "00-0d-60-af-1b-61",
            "000d.60af.1b61",
            "000D60AF1B61",
            "0:d:60:af:1b:61",
        ] {
            assert_eq!(s.parse::<Mac>(), Ok(want), "{s}");
        }
        assert_eq!(want.to_string(), "00:0d:60:af:1b:61");
        for s in [
            "",
            "00:0D:60:AF:1B",
            "00:0D:60:AF:1B:61:00",
            "00:0D:60:AF:1B:6G",
            "000:D:60:AF:1B:61",
            "00:0D-60:AF:1B:61",
            "000d.60af",
            "000D60AF1B6",
        ] {
            assert_eq!(s.parse::<Mac>(), Err(InvalidMac), "{s}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_i64("4294967296"), Some(4_294_967_296));
        assert_eq!(parse_i64("-12"), Some(-12));
        assert_eq!(parse_i64("+12"), None);
        assert_eq!(parse_i64(""), None);
        assert_eq!(parse_i64(" 1"), None);
        assert_eq!(parse_i64("9223372036854775808"), None);
        assert_eq!(parse_f64("-33.5"), Some(-33.5));
        assert_eq!(parse_f64("2.5e3"), Some(2500.0));
        assert_eq!(parse_f64("NaN"), None);
        assert_eq!(parse_f64("inf"), None);
        assert_eq!(parse_f64("1e999"), None);
    }
}
