//! Datetimes and timespans in 100 ns ticks: the civil calendar, parsing and Kusto's formats.
//!
//! A datetime is a count of ticks since the Unix epoch (UTC); a timespan is a count of ticks.

use std::fmt::Write as _;

/// Ticks in one microsecond.
pub(crate) const TICKS_PER_MICRO: i64 = 10;
/// Ticks in one millisecond.
pub(crate) const TICKS_PER_MILLI: i64 = 10_000;
/// Ticks in one second.
pub(crate) const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks in one minute.
pub(crate) const TICKS_PER_MINUTE: i64 = 60 * TICKS_PER_SECOND;
/// Ticks in one hour.
pub(crate) const TICKS_PER_HOUR: i64 = 60 * TICKS_PER_MINUTE;
/// Ticks in one day.
pub(crate) const TICKS_PER_DAY: i64 = 24 * TICKS_PER_HOUR;
/// Ticks from 0001-01-01 (.NET's origin) to the Unix epoch.
pub(crate) const EPOCH_FROM_YEAR_ONE: i64 = 621_355_968_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1-12, day 1-31) of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Broken-down parts of a datetime.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    pub(crate) year: i64,
    pub(crate) month: i64,
    pub(crate) day: i64,
    pub(crate) hour: i64,
    pub(crate) minute: i64,
    pub(crate) second: i64,
    /// Ticks within the second.
    pub(crate) frac: i64,
    /// Days since the epoch.
    pub(crate) days: i64,
}

pub(crate) fn parts(ticks: i64) -> Parts {
    let days = ticks.div_euclid(TICKS_PER_DAY);
    let rem = ticks.rem_euclid(TICKS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: rem / TICKS_PER_HOUR,
        minute: rem % TICKS_PER_HOUR / TICKS_PER_MINUTE,
        second: rem % TICKS_PER_MINUTE / TICKS_PER_SECOND,
        frac: rem % TICKS_PER_SECOND,
        days,
    }
}

pub(crate) fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Ticks of a civil date and time, or `None` when a part is out of range.
pub(crate) fn from_parts(
    y: i64,
    mo: i64,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
    frac: i64,
) -> Option<i64> {
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..60).contains(&s)
        || !(0..TICKS_PER_SECOND).contains(&frac)
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(
        days * TICKS_PER_DAY
            + h * TICKS_PER_HOUR
            + mi * TICKS_PER_MINUTE
            + s * TICKS_PER_SECOND
            + frac,
    )
}

/// Adds calendar months, clamping the day to the end of the target month.
pub(crate) fn add_months(ticks: i64, months: i64) -> Option<i64> {
    let p = parts(ticks);
    let total = p
        .year
        .checked_mul(12)?
        .checked_add(p.month - 1)?
        .checked_add(months)?;
    let y = total.div_euclid(12);
    let m = total.rem_euclid(12) + 1;
    let d = p.day.min(days_in_month(y, m));
    from_parts(y, m, d, p.hour, p.minute, p.second, p.frac)
}

/// Day of week, 0 = Sunday.
pub(crate) fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// ISO 8601 week number.
pub(crate) fn iso_week(ticks: i64) -> i64 {
    let p = parts(ticks);
    // Monday-based weekday, 1..=7.
    let wd = (weekday(p.days) + 6) % 7 + 1;
    // The Thursday of this week decides the year.
    let thursday = p.days - wd + 4;
    let (ty, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(ty, 1, 1);
    (thursday - jan1) / 7 + 1
}

/// Formats a datetime as ISO 8601 with 7 fractional digits and `Z`.
pub(crate) fn format_datetime(ticks: i64, out: &mut String) {
    let p = parts(ticks);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.frac
    );
}

/// [`format_datetime`] as a JSON string (quotes included), without allocating: `None` for a
/// year outside 0..=9999, which has no four-digit form.
pub(crate) fn datetime_json(ticks: i64) -> Option<[u8; 30]> {
    fn put(dst: &mut [u8], mut v: u32) {
        for b in dst.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    let p = parts(ticks);
    if !(0..=9999).contains(&p.year) {
        return None;
    }
    // Every part is in range here (year checked; month, day, hour, minute, second and the
    // fraction are bounded by the calendar), so the casts keep their values.
    let mut buf = *b"\"0000-00-00T00:00:00.0000000Z\"";
    put(&mut buf[1..5], p.year as u32);
    put(&mut buf[6..8], p.month as u32);
    put(&mut buf[9..11], p.day as u32);
    put(&mut buf[12..14], p.hour as u32);
    put(&mut buf[15..17], p.minute as u32);
    put(&mut buf[18..20], p.second as u32);
    put(&mut buf[21..28], p.frac as u32);
    Some(buf)
}

/// Formats a timespan in .NET's `c` format: `[-][d.]hh:mm:ss[.fffffff]`.
pub(crate) fn format_timespan(ticks: i64, out: &mut String) {
    let neg = ticks < 0;
    let t = ticks.unsigned_abs();
    let day = TICKS_PER_DAY as u64;
    let days = t / day;
    let rem = t % day;
    let h = rem / TICKS_PER_HOUR as u64;
    let m = rem % TICKS_PER_HOUR as u64 / TICKS_PER_MINUTE as u64;
    let s = rem % TICKS_PER_MINUTE as u64 / TICKS_PER_SECOND as u64;
    let f = rem % TICKS_PER_SECOND as u64;
    if neg {
        out.push('-');
    }
    if days > 0 {
        let _ = write!(out, "{days}.");
    }
    let _ = write!(out, "{h:02}:{m:02}:{s:02}");
    if f > 0 {
        let _ = write!(out, ".{f:07}");
    }
}

fn digits(s: &[u8], i: &mut usize, min: usize, max: usize) -> Option<i64> {
    let start = *i;
    let mut v: i64 = 0;
    while *i < s.len() && *i - start < max && s[*i].is_ascii_digit() {
        v = v * 10 + i64::from(s[*i] - b'0');
        *i += 1;
    }
    (*i - start >= min).then_some(v)
}

/// Fractional digits after a `.`, as ticks (7 digits; more are truncated).
fn fraction(s: &[u8], i: &mut usize) -> i64 {
    let mut v = 0;
    let mut n = 0;
    while *i < s.len() && s[*i].is_ascii_digit() {
        if n < 7 {
            v = v * 10 + i64::from(s[*i] - b'0');
            n += 1;
        }
        *i += 1;
    }
    while n < 7 {
        v *= 10;
        n += 1;
    }
    v
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Parses the datetime forms Kusto accepts: ISO 8601 (`T` or space, optional fraction,
/// `Z` or an offset), `MM/DD/YYYY[ HH:MM[:SS]]`, and RFC 1123 (`Sat, 8 Nov 2014 15:05:02 GMT`).
pub(crate) fn parse_datetime(text: &str) -> Option<i64> {
    let s = text.trim().as_bytes();
    if s.is_empty() {
        return None;
    }
    let mut i = 0;
    let (y, mo, d);
    if s.len() >= 5 && s[2] == b'/' {
        mo = digits(s, &mut i, 1, 2)?;
        expect(s, &mut i, b'/')?;
        d = digits(s, &mut i, 1, 2)?;
        expect(s, &mut i, b'/')?;
        y = digits(s, &mut i, 4, 4)?;
    } else if s[0].is_ascii_digit() {
        y = digits(s, &mut i, 4, 4)?;
        expect(s, &mut i, b'-')?;
        mo = digits(s, &mut i, 1, 2)?;
        expect(s, &mut i, b'-')?;
        d = digits(s, &mut i, 1, 2)?;
    } else {
        return parse_rfc1123(text.trim());
    }
    let (mut h, mut mi, mut sec, mut frac) = (0, 0, 0, 0);
    if i < s.len() && (s[i] == b'T' || s[i] == b' ') {
        i += 1;
        h = digits(s, &mut i, 1, 2)?;
        expect(s, &mut i, b':')?;
        mi = digits(s, &mut i, 2, 2)?;
        if i < s.len() && s[i] == b':' {
            i += 1;
            sec = digits(s, &mut i, 2, 2)?;
            if i < s.len() && s[i] == b'.' {
                i += 1;
                frac = fraction(s, &mut i);
            }
        }
    }
    let mut offset = 0;
    if i < s.len() {
        match s[i] {
            b'Z' | b'z' if i + 1 == s.len() => i += 1,
            b'+' | b'-' => {
                let sign = if s[i] == b'-' { -1 } else { 1 };
                i += 1;
                let oh = digits(s, &mut i, 2, 2)?;
                if i < s.len() && s[i] == b':' {
                    i += 1;
                }
                let om = digits(s, &mut i, 2, 2)?;
                offset = sign * (oh * TICKS_PER_HOUR + om * TICKS_PER_MINUTE);
            }
            _ => return None,
        }
    }
    if i != s.len() {
        return None;
    }
    from_parts(y, mo, d, h, mi, sec, frac).map(|t| t - offset)
}

fn expect(s: &[u8], i: &mut usize, c: u8) -> Option<()> {
    if *i < s.len() && s[*i] == c {
        *i += 1;
        Some(())
    } else {
        None
    }
}

fn parse_rfc1123(s: &str) -> Option<i64> {
    let rest = s.split_once(',').map_or(s, |(_, r)| r).trim();
    let mut it = rest.split_ascii_whitespace();
    let d: i64 = it.next()?.parse().ok()?;
    let mon = it.next()?.to_ascii_lowercase();
    let mo = MONTHS.iter().position(|m| mon.starts_with(m))? as i64 + 1;
    let y: i64 = it.next()?.parse().ok()?;
    let time = it.next().unwrap_or("00:00:00");
    let mut tp = time.split(':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let sec: i64 = tp.next().map_or(Some(0), |v| v.parse().ok())?;
    match it.next() {
        None | Some("GMT" | "UTC" | "Z") => {}
        _ => return None,
    }
    from_parts(y, mo, d, h, mi, sec, 0)
}

/// Parses a timespan in `c` form: `[-][d.]hh:mm[:ss[.fffffff]]`, or a bare number of days.
pub(crate) fn parse_timespan(text: &str) -> Option<i64> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let s = t.as_bytes();
    if s.is_empty() {
        return None;
    }
    let mut i = 0;
    let first = digits(s, &mut i, 1, 9)?;
    let ticks = if i == s.len() {
        first.checked_mul(TICKS_PER_DAY)?
    } else {
        let (days, h) = if s[i] == b'.' {
            i += 1;
            (first, digits(s, &mut i, 1, 2)?)
        } else {
            (0, first)
        };
        expect(s, &mut i, b':')?;
        let m = digits(s, &mut i, 1, 2)?;
        let (mut sec, mut frac) = (0, 0);
        if i < s.len() && s[i] == b':' {
            i += 1;
            sec = digits(s, &mut i, 1, 2)?;
            if i < s.len() && s[i] == b'.' {
                i += 1;
                frac = fraction(s, &mut i);
            }
        }
        if i != s.len() || h > 23 || m > 59 || sec > 59 {
            return None;
        }
        days.checked_mul(TICKS_PER_DAY)?.checked_add(
            h * TICKS_PER_HOUR + m * TICKS_PER_MINUTE + sec * TICKS_PER_SECOND + frac,
        )?
    };
    Some(if neg { -ticks } else { ticks })
}

/// The ticks of one unit of a timespan literal suffix (`d`, `h`, `ms`, `tick` ...).
pub(crate) fn unit_ticks(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "d" | "day" | "days" => TICKS_PER_DAY,
        "h" | "hr" | "hrs" | "hour" | "hours" => TICKS_PER_HOUR,
        "m" | "min" | "minute" | "minutes" => TICKS_PER_MINUTE,
        "s" | "sec" | "second" | "seconds" => TICKS_PER_SECOND,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => TICKS_PER_MILLI,
        "microsecond" | "microseconds" | "micro" | "micros" => TICKS_PER_MICRO,
        "nanosecond" | "nanoseconds" | "nano" | "nanos" => 0,
        "tick" | "ticks" => 1,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 365, 10_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn the_fixed_datetime_format_is_the_string_one() {
        // Both ends of Kusto's range, the epoch, odd ticks, and years with no 4-digit form.
        let year_one = -EPOCH_FROM_YEAR_ONE;
        let mut ticks = vec![
            0,
            -1,
            1,
            year_one,
            year_one - 1,
            i64::MIN,
            i64::MAX,
            from_parts(9999, 12, 31, 23, 59, 59, TICKS_PER_SECOND - 1).unwrap(),
            from_parts(2024, 2, 29, 8, 15, 42, 1_234_567).unwrap(),
        ];
        let mut x: i64 = 0x1234_5678_9abc;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ticks.push(x % (400 * 366 * TICKS_PER_DAY * 25));
        }
        for t in ticks {
            let mut s = String::new();
            format_datetime(t, &mut s);
            match datetime_json(t) {
                Some(json) => assert_eq!(json, format!("\"{s}\"").as_bytes(), "{t}"),
                None => assert!(!(0..=9999).contains(&parts(t).year), "{t}: {s}"),
            }
        }
    }

    #[test]
    fn formats() {
        let mut s = String::new();
        format_timespan(TICKS_PER_DAY + 12 * TICKS_PER_HOUR + 1_230_000, &mut s);
        assert_eq!(s, "1.12:00:00.1230000");
        s.clear();
        format_datetime(0, &mut s);
        assert_eq!(s, "1970-01-01T00:00:00.0000000Z");
        assert_eq!(
            parse_datetime("2015-12-31 23:59:59.9"),
            parse_datetime("2015-12-31T23:59:59.900Z")
        );
        assert_eq!(parse_timespan("0.00:03:00"), Some(3 * TICKS_PER_MINUTE));
        assert_eq!(iso_week(parse_datetime("2017-10-30").unwrap_or(0)), 44);
    }
}
