//! `datetime` columns: RFC 3339 UTC with exactly three fraction digits.

use jiff::Timestamp;
use jiff::tz::Offset;
use serde::Serializer;

/// Kusto `datetime` covers years 0001 to 9999; values outside are rejected by
/// the mapper rather than written in a form the service cannot read.
pub(crate) fn in_kusto_range(ts: Timestamp) -> bool {
    let year = Offset::UTC.to_datetime(ts).year();
    (1..=9999).contains(&year)
}

/// Writes `ts` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds, truncated
/// towards the past). Returns `None` for a year outside 0000..=9999, which has
/// no four-digit form.
pub(crate) fn format_millis(ts: Timestamp, buf: &mut [u8; 24]) -> Option<&str> {
    let dt = Offset::UTC.to_datetime(ts);
    let year = dt.year();
    if !(0..=9999).contains(&year) {
        return None;
    }
    // The casts below are of values that jiff keeps in range: month 1..=12,
    // day 1..=31, hour 0..=23, minute and second 0..=59, millis 0..=999.
    let millis = dt.subsec_nanosecond() / 1_000_000;
    put(&mut buf[0..4], year as u32);
    buf[4] = b'-';
    put(&mut buf[5..7], dt.month() as u32);
    buf[7] = b'-';
    put(&mut buf[8..10], dt.day() as u32);
    buf[10] = b'T';
    put(&mut buf[11..13], dt.hour() as u32);
    buf[13] = b':';
    put(&mut buf[14..16], dt.minute() as u32);
    buf[16] = b':';
    put(&mut buf[17..19], dt.second() as u32);
    buf[19] = b'.';
    put(&mut buf[20..23], millis as u32);
    buf[23] = b'Z';
    std::str::from_utf8(buf).ok()
}

/// Fills `dst` with the decimal digits of `v`, zero-padded on the left.
fn put(dst: &mut [u8], mut v: u32) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Serialises a timestamp as a `datetime` column value.
pub(crate) fn serialize_timestamp<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 24];
    match format_millis(*ts, &mut buf) {
        Some(text) => s.serialize_str(text),
        // Unreachable for rows built by the mapper (it rejects such years);
        // a hand-built row still serialises, in jiff's extended-year form.
        None => s.collect_str(ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ts: Timestamp) -> String {
        let mut buf = [0u8; 24];
        format_millis(ts, &mut buf)
            .map(str::to_owned)
            .unwrap_or_default()
    }

    #[test]
    fn epoch_millis_are_written_with_three_digits() {
        let ts = Timestamp::from_millisecond(1_511_373_004_000).unwrap();
        assert_eq!(fmt(ts), "2017-11-22T17:50:04.000Z");
        let ts = Timestamp::from_millisecond(1_500_151_350_531).unwrap();
        assert_eq!(fmt(ts), "2017-07-15T20:42:30.531Z");
    }

    #[test]
    fn sub_millisecond_digits_are_truncated() {
        let ts = Timestamp::new(0, 999_999_999).unwrap();
        assert_eq!(fmt(ts), "1970-01-01T00:00:00.999Z");
        // Before the epoch, truncation still goes towards the past.
        let ts = Timestamp::new(-1, 500_000_000).unwrap();
        assert_eq!(fmt(ts), "1969-12-31T23:59:59.500Z");
    }

    #[test]
    fn the_format_matches_jiff_for_ordinary_dates() {
        for ms in [
            0_i64,
            1,
            86_399_999,
            951_782_400_000,
            4_102_444_799_999,
            -62_135_596_800_000,
        ] {
            let ts = Timestamp::from_millisecond(ms).unwrap();
            let want = ts.strftime("%Y-%m-%dT%H:%M:%S.%3fZ").to_string();
            assert_eq!(fmt(ts), want, "{ms}");
        }
    }

    #[test]
    fn kusto_range_is_years_1_to_9999() {
        assert!(in_kusto_range(Timestamp::from_second(0).unwrap()));
        assert!(!in_kusto_range(
            Timestamp::from_second(-62_135_596_801).unwrap()
        ));
        assert!(in_kusto_range(
            Timestamp::from_second(-62_135_596_800).unwrap()
        ));
        // jiff stops a day before the end of year 9999, inside the Kusto range.
        assert!(in_kusto_range(Timestamp::MAX));
        assert!(!in_kusto_range(Timestamp::MIN));
    }
}
