//! The parsed event and its accessors.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use crate::dictionary::{self, DataType};
use crate::error::{Warning, WarningKind};
use crate::types::{self, DateContext, Mac};

/// A CEF event. Text borrows from the parsed input unless unescaping changed it.
///
/// Build one with [`parse`](crate::parse) or [`EventBuilder`](crate::EventBuilder);
/// write it with [`Event::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    pub(crate) version: u32,
    /// Device vendor, device product, device version, device event class id, name.
    pub(crate) header: [Cow<'a, str>; 5],
    pub(crate) severity: Severity<'a>,
    pub(crate) extensions: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(crate) warnings: Vec<Warning>,
}

impl<'a> Event<'a> {
    /// The CEF version: the number after `CEF:` (`0`, `1`, ...).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The `Device Vendor` header field, unescaped.
    pub fn device_vendor(&self) -> &str {
        &self.header[0]
    }

    /// The `Device Product` header field, unescaped.
    pub fn device_product(&self) -> &str {
        &self.header[1]
    }

    /// The `Device Version` header field, unescaped.
    pub fn device_version(&self) -> &str {
        &self.header[2]
    }

    /// The `Device Event Class ID` header field, unescaped.
    pub fn device_event_class_id(&self) -> &str {
        &self.header[3]
    }

    /// The `Name` header field, unescaped.
    pub fn name(&self) -> &str {
        &self.header[4]
    }

    /// The `Severity` header field.
    pub fn severity(&self) -> &Severity<'a> {
        &self.severity
    }

    /// The extension pairs `(key, value)` in input order, duplicates included; values are
    /// unescaped.
    pub fn extensions(&self) -> Extensions<'_> {
        Extensions {
            inner: self.extensions.iter(),
        }
    }

    /// The value of the last pair whose key is `key`.
    ///
    /// Standard keys can be named by their short or full name, and match pairs written
    /// either way: `get("src")` and `get("sourceAddress")` both find `src=…` and
    /// `sourceAddress=…`.
    pub fn get(&self, key: &str) -> Option<&str> {
        match dictionary::lookup(key) {
            Some(def) => self
                .extensions
                .iter()
                .rev()
                .find(|(k, _)| k == def.short || k == def.full)
                .map(|(_, v)| &**v),
            None => self
                .extensions
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| &**v),
        }
    }

    /// What the parser accepted leniently: literal `=`, unknown escapes, invalid UTF-8,
    /// text without a key; plus conversion failures found by [`Event::check_types`].
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The value of `key` as an integer, or `None` when absent, empty or not a decimal
    /// `i64`.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        types::parse_i64(self.get(key)?)
    }

    /// The value of `key` as a finite floating-point number.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        types::parse_f64(self.get(key)?)
    }

    /// The value of `key` as an IPv4 or IPv6 address.
    pub fn get_ip(&self, key: &str) -> Option<IpAddr> {
        types::parse_ip(self.get(key)?)
    }

    /// The value of `key` as a MAC address (`00:0D:60:AF:1B:61`, `00-0d-60-af-1b-61`,
    /// `000d.60af.1b61` or `000d60af1b61`).
    pub fn get_mac(&self, key: &str) -> Option<Mac> {
        self.get(key)?.parse().ok()
    }

    /// The value of `key` as an instant, in any date form of the CEF standard (see
    /// [`DateContext`]). The zone is the one written in the value, else the event's
    /// `dtz` (deviceTimeZone), else the context's default zone.
    pub fn get_timestamp(&self, key: &str, ctx: &DateContext) -> Option<jiff::Timestamp> {
        types::parse_timestamp(self.get(key)?, self.get("dtz"), ctx)
    }

    /// Checks every pair whose key is in the dictionary with a non-string type and
    /// records a [`WarningKind::Conversion`] warning for each non-empty value that does
    /// not convert. Returns how many were recorded. The values themselves are kept.
    pub fn check_types(&mut self, ctx: &DateContext) -> usize {
        let dtz = self.get("dtz").map(str::to_owned);
        let mut found = Vec::new();
        for (k, v) in &self.extensions {
            let Some(def) = dictionary::lookup(k) else {
                continue;
            };
            if v.is_empty() {
                continue;
            }
            let ok = match def.data_type {
                DataType::String => true,
                DataType::Integer | DataType::Long => types::parse_i64(v).is_some(),
                DataType::Double => types::parse_f64(v).is_some(),
                DataType::Ipv4Address | DataType::Ipv6Address | DataType::IpAddress => {
                    types::parse_ip(v).is_some()
                }
                DataType::MacAddress => v.parse::<Mac>().is_ok(),
                DataType::Timestamp => types::parse_timestamp(v, dtz.as_deref(), ctx).is_some(),
            };
            if !ok {
                found.push(Warning::new(
                    None,
                    WarningKind::Conversion {
                        key: k.to_string(),
                        expected: def.data_type,
                    },
                ));
            }
        }
        let n = found.len();
        self.warnings.extend(found);
        n
    }

    /// The custom fields of the standard folded with their `…Label` companions, as
    /// `(label, key, value)`: `cs1..6`, `cn1..3`, `cfp1..4`, `c6a1..4`,
    /// `deviceCustomDate1..2`, `flexString1..2`, `flexDate1` and `flexNumber1..2`.
    ///
    /// `key` is the short name (`cs1`) even when the event used the full name
    /// (`deviceCustomString1`). A label without a value, or a value without a label, is
    /// reported with `None` for the missing side. When a key repeats, its last value
    /// wins. Fields come in the order in which the label or the value first appears.
    pub fn custom_fields(
        &self,
    ) -> impl Iterator<Item = (Option<&str>, &'static str, Option<&str>)> {
        // first position, label, value; indexed like CUSTOM_SLOTS.
        let mut slots: [(usize, Option<&str>, Option<&str>); CUSTOM_SLOTS.len()] =
            [(usize::MAX, None, None); CUSTOM_SLOTS.len()];
        for (pos, (k, v)) in self.extensions.iter().enumerate() {
            let Some((slot, is_label)) = custom_slot(k) else {
                continue;
            };
            let entry = &mut slots[slot];
            entry.0 = entry.0.min(pos);
            if is_label {
                entry.1 = Some(&**v);
            } else {
                entry.2 = Some(&**v);
            }
        }
        let mut out: Vec<(usize, Option<&str>, &'static str, Option<&str>)> = slots
            .iter()
            .zip(CUSTOM_SLOTS)
            .filter(|(s, _)| s.0 != usize::MAX)
            .map(|(s, (key, _))| (s.0, s.1, key, s.2))
            .collect();
        out.sort_unstable_by_key(|f| f.0);
        out.into_iter().map(|(_, l, k, v)| (l, k, v))
    }

    /// An owned copy that no longer borrows the input.
    pub fn into_owned(self) -> Event<'static> {
        let [a, b, c, d, e] = self.header;
        Event {
            version: self.version,
            header: [owned(a), owned(b), owned(c), owned(d), owned(e)],
            severity: self.severity.into_owned(),
            extensions: self
                .extensions
                .into_iter()
                .map(|(k, v)| (owned(k), owned(v)))
                .collect(),
            warnings: self.warnings,
        }
    }
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// The custom-field slots: (short key, full key). Labels are `<key>Label`.
const CUSTOM_SLOTS: [(&str, &str); 24] = [
    ("cs1", "deviceCustomString1"),
    ("cs2", "deviceCustomString2"),
    ("cs3", "deviceCustomString3"),
    ("cs4", "deviceCustomString4"),
    ("cs5", "deviceCustomString5"),
    ("cs6", "deviceCustomString6"),
    ("cn1", "deviceCustomNumber1"),
    ("cn2", "deviceCustomNumber2"),
    ("cn3", "deviceCustomNumber3"),
    ("cfp1", "deviceCustomFloatingPoint1"),
    ("cfp2", "deviceCustomFloatingPoint2"),
    ("cfp3", "deviceCustomFloatingPoint3"),
    ("cfp4", "deviceCustomFloatingPoint4"),
    ("c6a1", "deviceCustomIPv6Address1"),
    ("c6a2", "deviceCustomIPv6Address2"),
    ("c6a3", "deviceCustomIPv6Address3"),
    ("c6a4", "deviceCustomIPv6Address4"),
    ("deviceCustomDate1", "deviceCustomDate1"),
    ("deviceCustomDate2", "deviceCustomDate2"),
    ("flexString1", "flexString1"),
    ("flexString2", "flexString2"),
    ("flexDate1", "flexDate1"),
    ("flexNumber1", "flexNumber1"),
    ("flexNumber2", "flexNumber2"),
];

/// The slot of a custom-field key or label, and whether it is the label.
fn custom_slot(key: &str) -> Option<(usize, bool)> {
    let (base, is_label) = match key.strip_suffix("Label") {
        Some(base) => (base, true),
        None => (key, false),
    };
    CUSTOM_SLOTS
        .iter()
        .position(|(short, full)| base == *short || base == *full)
        .map(|i| (i, is_label))
}

/// Iterator over the extension pairs of an [`Event`], see [`Event::extensions`].
#[derive(Debug, Clone)]
pub struct Extensions<'e> {
    inner: std::slice::Iter<'e, (Cow<'e, str>, Cow<'e, str>)>,
}

impl<'e> Iterator for Extensions<'e> {
    type Item = (&'e str, &'e str);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (&**k, &**v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Extensions<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(k, v)| (&**k, &**v))
    }
}

impl ExactSizeIterator for Extensions<'_> {}

/// The severity levels of the CEF standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SeverityLevel {
    /// `Unknown`.
    Unknown,
    /// `Low`, or 0–3.
    Low,
    /// `Medium`, or 4–6.
    Medium,
    /// `High`, or 7–8.
    High,
    /// `Very-High`, or 9–10.
    VeryHigh,
}

impl fmt::Display for SeverityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SeverityLevel::Unknown => "Unknown",
            SeverityLevel::Low => "Low",
            SeverityLevel::Medium => "Medium",
            SeverityLevel::High => "High",
            SeverityLevel::VeryHigh => "Very-High",
        })
    }
}

/// The `Severity` header field: the raw text, and its meaning when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Severity<'a> {
    raw: Cow<'a, str>,
    number: Option<u8>,
    level: Option<SeverityLevel>,
}

impl<'a> Severity<'a> {
    /// Reads a severity: an integer 0–10, or one of `Unknown`, `Low`, `Medium`, `High`,
    /// `Very-High` (ASCII case ignored). Anything else keeps only its raw text.
    pub fn new(raw: impl Into<Cow<'a, str>>) -> Self {
        let raw = raw.into();
        let (number, level) = classify_severity(&raw);
        Severity { raw, number, level }
    }

    /// The field as written (after header unescaping).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The number 0–10, when the field is one.
    pub fn number(&self) -> Option<u8> {
        self.number
    }

    /// The level: named directly, or the band of the number (0–3 Low, 4–6 Medium, 7–8
    /// High, 9–10 Very-High). `None` when the field is neither.
    pub fn level(&self) -> Option<SeverityLevel> {
        self.level
    }

    /// An owned copy.
    pub fn into_owned(self) -> Severity<'static> {
        Severity {
            raw: owned(self.raw),
            number: self.number,
            level: self.level,
        }
    }
}

fn classify_severity(raw: &str) -> (Option<u8>, Option<SeverityLevel>) {
    let b = raw.as_bytes();
    if !b.is_empty() && b.len() <= 2 && b.iter().all(u8::is_ascii_digit) {
        let n = b.iter().fold(0u8, |acc, d| acc * 10 + (d - b'0'));
        let level = match n {
            0..=3 => SeverityLevel::Low,
            4..=6 => SeverityLevel::Medium,
            7..=8 => SeverityLevel::High,
            9..=10 => SeverityLevel::VeryHigh,
            _ => return (None, None),
        };
        return (Some(n), Some(level));
    }
    let level = [
        ("Unknown", SeverityLevel::Unknown),
        ("Low", SeverityLevel::Low),
        ("Medium", SeverityLevel::Medium),
        ("High", SeverityLevel::High),
        ("Very-High", SeverityLevel::VeryHigh),
    ]
    .iter()
    .find(|(name, _)| name.eq_ignore_ascii_case(raw))
    .map(|(_, l)| *l);
    (None, level)
}

impl fmt::Display for Severity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_bands() {
        let s = |r: &str| {
            let s = Severity::new(r.to_owned());
            (s.number(), s.level())
        };
        assert_eq!(s("0"), (Some(0), Some(SeverityLevel::Low)));
        assert_eq!(s("3"), (Some(3), Some(SeverityLevel::Low)));
        assert_eq!(s("4"), (Some(4), Some(SeverityLevel::Medium)));
        assert_eq!(s("8"), (Some(8), Some(SeverityLevel::High)));
        assert_eq!(s("10"), (Some(10), Some(SeverityLevel::VeryHigh)));
        assert_eq!(s("11"), (None, None));
        assert_eq!(s("+5"), (None, None));
        assert_eq!(s(""), (None, None));
        assert_eq!(s("Very-High"), (None, Some(SeverityLevel::VeryHigh)));
        assert_eq!(s("unknown"), (None, Some(SeverityLevel::Unknown)));
        assert_eq!(s("severity"), (None, None));
    }

    #[test]
    fn custom_slots_cover_labels_and_full_names() {
        assert_eq!(custom_slot("cs1"), Some((0, false)));
        assert_eq!(custom_slot("cs1Label"), Some((0, true)));
        assert_eq!(custom_slot("deviceCustomString1Label"), Some((0, true)));
        assert_eq!(custom_slot("flexNumber2Label"), Some((23, true)));
        assert_eq!(custom_slot("cs7"), None);
        assert_eq!(custom_slot("Label"), None);
    }
}
