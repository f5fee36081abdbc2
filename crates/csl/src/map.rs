//! CEF event → `CommonSecurityLog` row.

use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use mcas_cef::Event;

use crate::context::{Context, SOURCE_SYSTEM, TimeGeneratedPolicy};
use crate::keys::{self, KeyTarget};
use crate::rules::{MappingRules, Target};
use crate::schema::{Column, ColumnType, CommonSecurityLog, CustomValue, Slot};
use crate::time::in_kusto_range;

/// A mapped row and what the mapper noticed while building it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Mapped<'a> {
    /// The row.
    pub row: CommonSecurityLog<'a>,
    /// Values that were converted, moved, cut or dropped, in input order.
    /// Empty for a clean event (and then it has not allocated).
    pub warnings: Vec<Warning<'a>>,
}

/// Something the mapper did to a value other than copy it into its column.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning<'a> {
    /// The value of `key` is not a valid `expected` (for example `spt=http`):
    /// `column` stays empty and the raw `key=value` went to
    /// `AdditionalExtensions`.
    ConversionFailed {
        /// The CEF key.
        key: &'a str,
        /// The column it was meant for.
        column: &'a str,
        /// The column's type.
        expected: ColumnType,
    },
    /// `key` appeared again later; the later value won `column` and this
    /// earlier value was dropped (see
    /// [`MappingRules::set_keep_duplicates`](crate::MappingRules::set_keep_duplicates)).
    DuplicateDropped {
        /// The CEF key of the dropped pair.
        key: &'a str,
        /// The column the later pair filled.
        column: &'a str,
    },
    /// A value longer than the size cap was cut to `limit` bytes (at a
    /// character boundary). Azure would otherwise cut it silently.
    Truncated {
        /// The column.
        column: &'a str,
        /// The value's length before cutting, in bytes.
        len: usize,
        /// The cap, in bytes.
        limit: usize,
    },
    /// `key` holds no date the mapper can read, so `TimeGenerated` is the
    /// receive time instead.
    TimeGeneratedFallback {
        /// The CEF key named by the [`TimeGeneratedPolicy`].
        key: &'static str,
    },
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ConversionFailed {
                key,
                column,
                expected,
            } => write!(
                f,
                "value of `{key}` is not a valid {expected} for {column}; kept in AdditionalExtensions"
            ),
            Warning::DuplicateDropped { key, column } => {
                write!(
                    f,
                    "earlier value of `{key}` dropped; a later one filled {column}"
                )
            }
            Warning::Truncated { column, len, limit } => {
                write!(f, "{column} cut from {len} to at most {limit} bytes")
            }
            Warning::TimeGeneratedFallback { key } => {
                write!(
                    f,
                    "`{key}` holds no readable date; TimeGenerated is the receive time"
                )
            }
        }
    }
}

/// Maps with the default rules and `TimeGenerated` = receive time.
///
/// See [`Mapper::map`].
pub fn map<'a>(event: &'a Event<'_>, ctx: &Context<'a>) -> Mapped<'a> {
    static DEFAULT: Mapper = Mapper::DEFAULT;
    DEFAULT.map(event, ctx)
}

/// A configured mapper: [`MappingRules`] plus a [`TimeGeneratedPolicy`].
///
/// Cheap to share: mapping takes `&self`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapper {
    rules: MappingRules,
    time_generated: TimeGeneratedPolicy,
}

impl Default for Mapper {
    fn default() -> Self {
        Mapper::DEFAULT
    }
}

/// The resolved destination of one extension pair.
#[derive(Debug, Clone, Copy)]
struct Route {
    target: Target,
    legacy_int: Option<Column>,
}

impl Mapper {
    const DEFAULT: Mapper = Mapper {
        rules: MappingRules::new(),
        time_generated: TimeGeneratedPolicy::ReceiveTime,
    };

    /// A mapper with these rules and `TimeGenerated` policy.
    pub fn new(rules: MappingRules, time_generated: TimeGeneratedPolicy) -> Self {
        Mapper {
            rules,
            time_generated,
        }
    }

    /// The rules.
    pub fn rules(&self) -> &MappingRules {
        &self.rules
    }

    /// The `TimeGenerated` policy.
    pub fn time_generated(&self) -> TimeGeneratedPolicy {
        self.time_generated
    }

    /// Maps one CEF event to a `CommonSecurityLog` row.
    ///
    /// * The header goes verbatim to `DeviceVendor`, `DeviceProduct`,
    ///   `DeviceVersion`, `DeviceEventClassID`, `Activity` and `LogSeverity`.
    /// * Each extension key with a column (Microsoft's table, the rules, or a
    ///   standard full name such as `sourceAddress` for `src`) fills it,
    ///   converted to the column's type. An empty value leaves the column
    ///   empty. A value that does not convert leaves it empty and goes to
    ///   `AdditionalExtensions` as `key=value`, with a warning.
    /// * `externalId` fills `ExtID`, and `ExternalID` when it fits an `i32`;
    ///   `cnN` fills `FieldDeviceCustomNumberN`, and `DeviceCustomNumberN`
    ///   when it fits an `i32`.
    /// * A key that appears more than once: the last value wins; earlier
    ///   values are dropped with a warning, or kept in `AdditionalExtensions`
    ///   (see [`MappingRules::set_keep_duplicates`]).
    /// * Every other pair goes to `AdditionalExtensions` in input order, as
    ///   `key=value` joined by `;`. Values are not escaped there: a value
    ///   that contains `;` or `=` makes the column ambiguous to split, as it
    ///   is in Microsoft's own rows.
    /// * `Computer`, `CollectorHostName` and `TimeGenerated` come from the
    ///   [`Context`] (and the policy); `SourceSystem` is `OpsManager`.
    pub fn map<'a>(&'a self, event: &'a Event<'_>, ctx: &Context<'a>) -> Mapped<'a> {
        // Built in place and returned as is: the row is a few KB, so it is
        // worth not moving it between helper structs.
        let mut out = Mapped {
            row: CommonSecurityLog::default(),
            warnings: Vec::new(),
        };
        let mut m = Mapping {
            rules: &self.rules,
            event,
            ctx,
            row: &mut out.row,
            warnings: &mut out.warnings,
            date_ctx: None,
        };
        m.header();
        m.extensions();
        let time_generated = m.time_generated(self.time_generated);
        out.row.time_generated = Some(time_generated);
        out
    }

    /// The columns rows of this mapper can carry: [`columns()`](crate::columns)
    /// followed by the rules' custom columns.
    pub fn columns(&self) -> Vec<(String, ColumnType)> {
        crate::columns_with(&self.rules)
    }
}

/// The state of one `map` call.
struct Mapping<'a, 'm> {
    rules: &'a MappingRules,
    event: &'a Event<'a>,
    ctx: &'m Context<'a>,
    row: &'m mut CommonSecurityLog<'a>,
    warnings: &'m mut Vec<Warning<'a>>,
    date_ctx: Option<mcas_cef::DateContext>,
}

impl<'a> Mapping<'a, '_> {
    fn header(&mut self) {
        let e = self.event;
        let ctx = self.ctx;
        let header = [
            (Column::DeviceVendor, e.device_vendor()),
            (Column::DeviceProduct, e.device_product()),
            (Column::DeviceVersion, e.device_version()),
            (Column::DeviceEventClassID, e.device_event_class_id()),
            (Column::Activity, e.name()),
            (Column::LogSeverity, e.severity().raw()),
        ];
        for (column, value) in header {
            // Header fields are kept verbatim (empty stays empty), capped like any value.
            let value = self.cap(column.name(), value);
            if let Slot::String(slot) = self.row.slot(column) {
                *slot = Some(Cow::Borrowed(value));
            }
        }
        self.row.computer = ctx.computer.map(Cow::Borrowed);
        self.row.collector_host_name = ctx.collector_host_name.map(Cow::Borrowed);
        self.row.source_system = Some(Cow::Borrowed(SOURCE_SYSTEM));
    }

    /// Routes every extension pair. Pairs are visited last to first, so the
    /// first pair seen for a column is the one that wins it; `extra` collects
    /// the pairs bound for `AdditionalExtensions`, written in input order at
    /// the end.
    fn extensions(&mut self) {
        let event = self.event;
        let n = event.extensions().len();
        let mut extra = BitSet::new(n);
        let mut claimed = BitSet::new(Column::ALL.len() + self.rules.custom_columns().len());
        let labels = self.label_routes();
        let routed = self.rules.has_routes();
        for (i, (key, value)) in event.extensions().enumerate().rev() {
            if routed && self.rules.is_dropped(key) {
                continue;
            }
            let Some(route) = self.route(key, &labels) else {
                extra.insert(i);
                continue;
            };
            let bit = match route.target {
                Target::Column(c) => c as usize,
                Target::Custom(i) => Column::ALL.len() + i,
            };
            if !claimed.insert(bit) {
                // A later pair already filled this column.
                if self.rules.keep_duplicates() {
                    extra.insert(i);
                } else {
                    let column = self.target_name(route.target);
                    self.warnings
                        .push(Warning::DuplicateDropped { key, column });
                }
                continue;
            }
            if !self.assign(route, key, value) {
                extra.insert(i);
            }
        }
        self.warnings.reverse();
        if self.row.custom.len() > 1 {
            // Set last to first; serialise in the rules' order, as `columns_with` lists them.
            let custom = self.rules.custom_columns();
            self.row.custom.sort_by_rank(|name| {
                custom
                    .iter()
                    .position(|(n, _)| n == name)
                    .unwrap_or(usize::MAX)
            });
        }
        if !extra.is_empty() {
            self.additional_extensions(&extra);
        }
    }

    fn additional_extensions(&mut self, extra: &BitSet) {
        // Sized first, so the column costs exactly one allocation.
        let len: usize = self
            .event
            .extensions()
            .enumerate()
            .filter(|(i, _)| extra.contains(*i))
            .map(|(_, (k, v))| k.len() + v.len() + 2)
            .sum();
        let mut out = String::with_capacity(len);
        for (i, (key, value)) in self.event.extensions().enumerate() {
            if extra.contains(i) {
                if !out.is_empty() {
                    out.push(';');
                }
                out.push_str(key);
                out.push('=');
                out.push_str(value);
            }
        }
        let limit = self.rules.max_field_bytes();
        if limit != 0 && out.len() > limit {
            self.warnings.push(Warning::Truncated {
                column: Column::AdditionalExtensions.name(),
                len: out.len(),
                limit,
            });
            out.truncate(floor_char_boundary(&out, limit));
        }
        self.row.additional_extensions = Some(Cow::Owned(out));
    }

    /// The custom-field keys (short names) whose label has a label rule.
    fn label_routes(&self) -> Vec<(&'static str, Target)> {
        if !self.rules.has_label_routes() {
            return Vec::new();
        }
        self.event
            .custom_fields()
            .filter_map(|(label, key, _)| Some((key, self.rules.label_target(label?)?)))
            .collect()
    }

    fn route(&self, key: &'a str, labels: &[(&'static str, Target)]) -> Option<Route> {
        if self.rules.has_routes() {
            if let Some(target) = self.rules.key_target(key) {
                return Some(Route {
                    target,
                    legacy_int: None,
                });
            }
            if !labels.is_empty() {
                let short = match mcas_cef::dictionary::lookup(key) {
                    Some(def) => def.short,
                    None => key,
                };
                if keys::is_labelled_value_key(short)
                    && let Some((_, target)) = labels.iter().find(|(k, _)| *k == short)
                {
                    return Some(Route {
                        target: *target,
                        legacy_int: None,
                    });
                }
            }
        }
        keys::lookup(key).map(|KeyTarget { column, legacy_int }| Route {
            target: Target::Column(column),
            legacy_int,
        })
    }

    fn target_name(&self, target: Target) -> &'a str {
        match target {
            Target::Column(c) => c.name(),
            Target::Custom(i) => self.rules.custom_name(i).0,
        }
    }

    /// Converts and stores one value; false when it does not convert.
    fn assign(&mut self, route: Route, key: &'a str, value: &'a str) -> bool {
        let (name, ty) = match route.target {
            Target::Column(c) => (c.name(), c.column_type()),
            Target::Custom(i) => self.rules.custom_name(i),
        };
        let converted = if value.is_empty() {
            // An empty value leaves the column empty; it is not a failure.
            None
        } else {
            match self.convert(ty, name, key, value) {
                Some(v) => Some(v),
                None => {
                    self.warnings.push(Warning::ConversionFailed {
                        key,
                        column: name,
                        expected: ty,
                    });
                    if let Some(legacy) = route.legacy_int {
                        set_int(self.row, legacy, None);
                    }
                    return false;
                }
            }
        };
        if let Some(legacy) = route.legacy_int {
            set_int(self.row, legacy, parse_int(value));
        }
        match route.target {
            Target::Column(c) => store(self.row, c, converted),
            Target::Custom(_) => {
                if let Some(v) = converted {
                    self.row.custom.set(name, v);
                }
            }
        }
        true
    }

    fn convert(
        &mut self,
        ty: ColumnType,
        column: &'a str,
        key: &str,
        value: &'a str,
    ) -> Option<CustomValue<'a>> {
        Some(match ty {
            ColumnType::String => CustomValue::String(Cow::Borrowed(self.cap(column, value))),
            ColumnType::Int => CustomValue::Int(parse_int(value)?),
            ColumnType::Long => CustomValue::Long(parse_int(value)?),
            ColumnType::Real => CustomValue::Real(parse_real(value)?),
            ColumnType::Datetime => CustomValue::Datetime(self.timestamp(key, value)?),
            ColumnType::Boolean => CustomValue::Boolean(match value {
                "true" | "TRUE" | "True" => true,
                "false" | "FALSE" | "False" => false,
                _ => return None,
            }),
        })
    }

    /// The date of `value`, the last pair of `key` (pairs are visited last to
    /// first), using the event's `dtz` for zone-less dates.
    fn timestamp(&mut self, key: &str, value: &str) -> Option<Timestamp> {
        // Fast path for the common form, epoch milliseconds, with the same
        // result as `mcas-cef`'s reader (which also tries it first).
        let digits = value.strip_prefix('-').unwrap_or(value);
        if digits.len() <= 18
            && let Some(ms) = parse_int::<i64>(value)
            && let Ok(t) = Timestamp::from_millisecond(ms)
        {
            return Some(t).filter(|t| in_kusto_range(*t));
        }
        let ctx = self.ctx;
        let date_ctx = self.date_ctx.get_or_insert_with(|| ctx.date_context());
        self.event
            .get_timestamp(key, date_ctx)
            .filter(|t| in_kusto_range(*t))
    }

    fn cap(&mut self, column: &'a str, value: &'a str) -> &'a str {
        let limit = self.rules.max_field_bytes();
        if limit == 0 || value.len() <= limit {
            return value;
        }
        self.warnings.push(Warning::Truncated {
            column,
            len: value.len(),
            limit,
        });
        &value[..floor_char_boundary(value, limit)]
    }

    fn time_generated(&mut self, policy: TimeGeneratedPolicy) -> Timestamp {
        let key = match policy {
            TimeGeneratedPolicy::ReceiveTime => return self.ctx.received_at,
            TimeGeneratedPolicy::Rt => "rt",
            TimeGeneratedPolicy::Start => "start",
        };
        match self.event.get(key) {
            None | Some("") => self.ctx.received_at,
            Some(value) => match self.timestamp(key, value) {
                Some(t) => t,
                None => {
                    self.warnings.push(Warning::TimeGeneratedFallback { key });
                    self.ctx.received_at
                }
            },
        }
    }
}

/// Stores a converted value in a built-in column (types always agree: the
/// value was converted to the column's own type).
fn store<'a>(row: &mut CommonSecurityLog<'a>, column: Column, value: Option<CustomValue<'a>>) {
    match (row.slot(column), value) {
        (Slot::String(s), Some(CustomValue::String(v))) => *s = Some(v),
        (Slot::Int(s), Some(CustomValue::Int(v))) => *s = Some(v),
        (Slot::Long(s), Some(CustomValue::Long(v))) => *s = Some(v),
        (Slot::Real(s), Some(CustomValue::Real(v))) => *s = Some(v),
        (Slot::Datetime(s), Some(CustomValue::Datetime(v))) => *s = Some(v),
        (Slot::String(s), _) => *s = None,
        (Slot::Int(s), _) => *s = None,
        (Slot::Long(s), _) => *s = None,
        (Slot::Real(s), _) => *s = None,
        (Slot::Datetime(s), _) => *s = None,
    }
}

fn set_int(row: &mut CommonSecurityLog<'_>, column: Column, value: Option<i32>) {
    if let Slot::Int(s) = row.slot(column) {
        *s = value;
    }
}

/// A decimal integer: an optional `-` and ASCII digits, nothing else.
fn parse_int<T: std::str::FromStr>(v: &str) -> Option<T> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A finite decimal number (`35.46`, `-0.5`, `1e3`); not `inf`, `NaN` or `+1`.
fn parse_real(v: &str) -> Option<f64> {
    let body = v.strip_prefix('-').unwrap_or(v);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    v.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The largest index ≤ `limit` that is a character boundary of `s`.
fn floor_char_boundary(s: &str, limit: usize) -> usize {
    let mut i = limit.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A set of small integers: 256 on the stack, more on the heap.
struct BitSet {
    inline: [u64; 4],
    heap: Vec<u64>,
    any: bool,
}

impl BitSet {
    fn new(capacity: usize) -> Self {
        let words = capacity.div_ceil(64);
        BitSet {
            inline: [0; 4],
            heap: if words > 4 {
                vec![0; words]
            } else {
                Vec::new()
            },
            any: false,
        }
    }

    fn words(&mut self) -> &mut [u64] {
        if self.heap.is_empty() {
            &mut self.inline
        } else {
            &mut self.heap
        }
    }

    /// Adds `i`; false when it was already present.
    fn insert(&mut self, i: usize) -> bool {
        self.any = true;
        let w = &mut self.words()[i / 64];
        let bit = 1u64 << (i % 64);
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }

    fn contains(&self, i: usize) -> bool {
        let words: &[u64] = if self.heap.is_empty() {
            &self.inline
        } else {
            &self.heap
        };
        words
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    fn is_empty(&self) -> bool {
        !self.any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_inline_and_heap() {
        for cap in [10, 256, 1000] {
            let mut s = BitSet::new(cap);
            assert!(s.is_empty());
            assert!(s.insert(cap - 1));
            assert!(!s.insert(cap - 1));
            assert!(s.insert(0));
            assert!(s.contains(0) && s.contains(cap - 1) && !s.contains(1));
            assert!(!s.is_empty());
        }
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_int::<i32>("443"), Some(443));
        assert_eq!(parse_int::<i32>("-12"), Some(-12));
        assert_eq!(parse_int::<i32>("+1"), None);
        assert_eq!(parse_int::<i32>("2147483648"), None);
        assert_eq!(parse_int::<i64>("2147483648"), Some(2_147_483_648));
        assert_eq!(parse_int::<i32>(" 1"), None);
        assert_eq!(parse_int::<i32>("-"), None);
        assert_eq!(parse_real("35.46"), Some(35.46));
        assert_eq!(parse_real("-0.5"), Some(-0.5));
        assert_eq!(parse_real("1e3"), Some(1000.0));
        assert_eq!(parse_real(".5"), Some(0.5));
        for bad in ["inf", "NaN", "+1", "1e999", "", "-", "e5", "0x10"] {
            assert_eq!(parse_real(bad), None, "{bad}");
        }
    }

    #[test]
    fn char_boundaries() {
        assert_eq!(floor_char_boundary("abc", 2), 2);
        assert_eq!(floor_char_boundary("aé", 2), 1);
        assert_eq!(floor_char_boundary("aé", 9), 3);
    }
}
