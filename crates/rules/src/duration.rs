//! Rule durations: Sentinel's YAML form (`5m`, `1h`, `14d`) and ARM's ISO 8601 form
//! (`PT1H`, `P1D`, `P1DT12H`), in Kusto ticks (100 ns).

/// Ticks (100 ns) in a second: the clock unit of `mcas-kql` and of this crate.
pub const TICKS_PER_SECOND: i64 = 10_000_000;

/// Reads a duration: a whole number followed by `s`, `m`, `h` or `d` (Sentinel's YAML), or
/// an ISO 8601 duration of days, hours, minutes and seconds (ARM templates). `None` for
/// anything else, for zero, and for a duration past 100 years.
///
/// ```
/// use mcas_rules::{parse_duration, TICKS_PER_SECOND as S};
/// assert_eq!(parse_duration("5m"), Some(300 * S));
/// assert_eq!(parse_duration("PT1H"), Some(3600 * S));
/// assert_eq!(parse_duration("P1DT12H"), Some(36 * 3600 * S));
/// assert_eq!(parse_duration("1 hour"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<i64> {
    let t = text.trim();
    let secs = if let Some(iso) = t.strip_prefix('P').or_else(|| t.strip_prefix('p')) {
        iso_seconds(iso)?
    } else {
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().ok()?;
        let unit_secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        };
        n.checked_mul(unit_secs)?
    };
    if secs <= 0 || secs > 100 * 366 * 86_400 {
        return None;
    }
    secs.checked_mul(TICKS_PER_SECOND)
}

/// The seconds of the part of an ISO 8601 duration after `P`.
fn iso_seconds(iso: &str) -> Option<i64> {
    let (date, time) = match iso.split_once(['T', 't']) {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (iso, None),
    };
    let mut total = 0i64;
    let mut any = false;
    for (part, units) in [
        (date, &[('W', 7 * 86_400), ('D', 86_400)][..]),
        (time.unwrap_or(""), &[('H', 3600), ('M', 60), ('S', 1)][..]),
    ] {
        let mut rest = part;
        let mut allowed = units;
        while !rest.is_empty() {
            let split = rest.find(|c: char| !c.is_ascii_digit())?;
            if split == 0 {
                return None;
            }
            let n: i64 = rest[..split].parse().ok()?;
            let unit = rest[split..].chars().next()?.to_ascii_uppercase();
            let at = allowed.iter().position(|(u, _)| *u == unit)?;
            total = total.checked_add(n.checked_mul(allowed[at].1)?)?;
            allowed = &allowed[at + 1..];
            rest = &rest[split + 1..];
            any = true;
        }
    }
    any.then_some(total)
}

/// A duration in ticks written back in Sentinel's short form (`5m`, `1h`, `14d`, `90s`).
pub fn format_duration(ticks: i64) -> String {
    let s = ticks / TICKS_PER_SECOND;
    if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_iso_forms() {
        let s = TICKS_PER_SECOND;
        assert_eq!(parse_duration("14d"), Some(14 * 86_400 * s));
        assert_eq!(parse_duration("30s"), Some(30 * s));
        assert_eq!(parse_duration("PT5M"), Some(300 * s));
        assert_eq!(parse_duration("P1D"), Some(86_400 * s));
        assert_eq!(parse_duration("PT1H30M"), Some(5400 * s));
        assert_eq!(parse_duration("P2W"), Some(14 * 86_400 * s));
        for bad in [
            "",
            "0m",
            "m",
            "5",
            "5x",
            "PT",
            "P",
            "PT1M1H",
            "P1H",
            "99999999999999d",
            "-1h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(parse_duration("PT2H").unwrap_or(0)), "2h");
        assert_eq!(format_duration(90 * s), "90s");
    }
}
