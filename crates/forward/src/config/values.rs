//! The value types of the file: byte sizes, durations (with their bounds), CIDRs, secrets.

use super::*;

/// A byte size: an integer, or a string such as `"64KiB"`, `"10GiB"`, `"500MB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl ByteSize {
    /// Parse `"10GiB"`, `"64 KiB"`, `"1000"`, `"5MB"`.
    pub(crate) fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "m" | "mb" => 1_000_000,
            "g" | "gb" => 1_000_000_000,
            "t" | "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                    "unknown size unit {unit:?} in {s:?} (use B, KB, MB, GB, KiB, MiB, GiB, TiB)"
                ));
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("not a size: {s:?} (examples: 65536, \"64KiB\", \"10GiB\")"))?;
        let v = n * mult as f64;
        if !(0.0..1.8e19).contains(&v) {
            return Err(format!("size out of range: {s:?}"));
        }
        Ok(ByteSize(v as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration: a string such as `"1s"`, `"250ms"`, `"5m"`, `"1h"`, or an integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DurationStr(pub(crate) Duration);

impl DurationStr {
    /// Parse `"1s"`, `"250ms"`, `"5m"`, `"2h"`, `"1.5s"`.
    pub(crate) fn parse(s: &str) -> Result<DurationStr, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let secs_per: f64 = match unit.trim() {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            u => {
                return Err(format!(
                    "unknown duration unit {u:?} in {s:?} (use ms, s, m, h)"
                ));
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("not a duration: {s:?} (examples: \"1s\", \"250ms\", \"5m\")"))?;
        let v = n * secs_per;
        if !(0.0..MAX_DURATION_SECS as f64).contains(&v) {
            return Err(format!(
                "duration out of range: {s:?} (at most {})",
                describe(Duration::from_secs(MAX_DURATION_SECS))
            ));
        }
        Ok(DurationStr(Duration::from_secs_f64(v)))
    }

    /// Seconds given as an integer, range-checked like the string form.
    pub(super) fn from_int(n: i64) -> Result<DurationStr, String> {
        match u64::try_from(n) {
            Ok(secs) if secs < MAX_DURATION_SECS => Ok(DurationStr(Duration::from_secs(secs))),
            Ok(_) => Err(format!(
                "duration out of range: {n} seconds (at most {})",
                describe(Duration::from_secs(MAX_DURATION_SECS))
            )),
            Err(_) => Err(format!("a duration cannot be negative: {n}")),
        }
    }
}

/// Beyond any sane setting, and far enough below the overflow of a clock reading plus a
/// duration. Each key has its own, tighter, bound (see [`Config::validate`]).
pub(super) const MAX_DURATION_SECS: u64 = 1_000_000_000;

/// The upper bound of every duration key: one day.
pub(super) const MAX_DURATION_KEY: Duration = Duration::from_secs(24 * 3600);

/// `90s`, `2h`, `250ms`: a duration as a person writes it.
pub(super) fn describe(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 && d.subsec_nanos() == 0 {
        "0s".to_owned()
    } else if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A duration key outside `min..=max`: an error naming the key.
pub(super) fn check_duration(
    key: &str,
    d: DurationStr,
    min: Duration,
    max: Duration,
) -> anyhow::Result<()> {
    if d.0 < min || d.0 > max {
        bail!(
            "{key} = {} is out of range: it must be between {} and {}",
            describe(d.0),
            describe(min),
            describe(max)
        );
    }
    Ok(())
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => DurationStr::from_int(n).map_err(serde::de::Error::custom),
            Raw::S(s) => DurationStr::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// An IPv4 or IPv6 network, `10.0.0.0/8`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parse `"10.0.0.0/8"`, `"::1"`, `"192.168.1.7"`.
    pub(crate) fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("not an address or CIDR: {s:?} (example: \"10.0.0.0/8\")"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("bad prefix length in {s:?} (0..={max})"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside this network. IPv4-mapped IPv6 peers match IPv4 networks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A secret string: never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(pub(super) String);

impl Secret {
    #[cfg(test)]
    pub(crate) fn new(s: String) -> Secret {
        Secret(s)
    }
    /// The secret itself, for handing to a credential.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
