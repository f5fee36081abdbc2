//! Kept rows of an alert rule's window ([`KeptRow`]): the values of a row prefix's output
//! packed in one allocation, read back as the JSON object [`crate::TableQuery::row_prefix`]
//! gives reads back.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use crate::value::{Type, Value, coerce};

/// A kept row of a window, as [`crate::TableQuery::row_prefix_kept`] gives it: the same row as
/// the JSON object [`crate::TableQuery::row_prefix`] gives, packed.
///
/// The object's values are JSON (a datetime is a string, an `int` a number), and a window run
/// converts each back to its column's type. A kept row keeps a value in its own type when that
/// round trip gives it back unchanged (a non-empty string in a `string` column, an `int`, a
/// `long`, a finite `real`, a `bool`, a datetime of the years 1 to 9999 in a column of its
/// type), in one byte buffer with the column's place, so that keeping a row allocates once
/// and formats nothing; any other value is kept as its JSON, and converted as the object's
/// would be.
///
/// A kept row belongs to the query that made it: its columns are the query's (see
/// [`crate::TableQuery::kept_to_json`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRow {
    /// Entries in column order: the column's place (`u16`), a tag, the value.
    bytes: Box<[u8]>,
    /// The values kept as JSON (an entry with the tag [`JSON`] holds an index here); none
    /// mostly.
    json: Option<Box<[Json]>>,
    /// The row's size as JSON, as [`KeptRow::json_len`] counts it.
    json_len: usize,
}

const STRING: u8 = 0;
const LONG: u8 = 1;
const INT: u8 = 2;
const REAL: u8 = 3;
const BOOL: u8 = 4;
const DATETIME: u8 = 5;
const JSON: u8 = 6;

/// A datetime's JSON string, quotes included, for the years a kept row holds natively.
const DATETIME_JSON_LEN: usize = 30;

/// One value of a kept row: in its own type, or as the JSON the object holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry<'a> {
    Native(Value<'a>),
    Json(&'a Json),
}

impl<'a> Entry<'a> {
    /// The value a window run reads for a column of type `ty`: what the JSON object's value
    /// converts to.
    pub(crate) fn value(self, ty: Type) -> Value<'a> {
        match self {
            Entry::Native(v) => v,
            Entry::Json(j) => coerce(json_value(j), ty),
        }
    }

    /// The value as the JSON object gives it, before any conversion (a native value is
    /// already its column's type, which converting to that type keeps).
    pub(crate) fn raw(self) -> Value<'a> {
        match self {
            Entry::Native(v) => v,
            Entry::Json(j) => json_value(j),
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Entry::Native(v) => v.to_json(),
            Entry::Json(j) => (*j).clone(),
        }
    }
}

/// A JSON value as a row of JSON gives it: strings borrow, integers are `long`, other
/// numbers `real`, objects and arrays `dynamic`, `null` is null.
pub(crate) fn json_value(v: &Json) -> Value<'_> {
    match v {
        Json::Null => Value::Null,
        Json::String(s) => Value::String(Cow::Borrowed(s)),
        Json::Array(_) | Json::Object(_) => Value::Dynamic(Cow::Borrowed(v)),
        other => crate::value::json_scalar(other),
    }
}

/// The size of a value as JSON as [`KeptRow::json_len`] counts it.
fn json_value_len(v: &Json) -> usize {
    match v {
        Json::Null | Json::Bool(_) => 5,
        Json::Number(_) => 8,
        Json::String(s) => s.len() + 2,
        Json::Array(a) => 2 + a.iter().map(|v| json_value_len(v) + 1).sum::<usize>(),
        Json::Object(o) => {
            2 + o
                .iter()
                .map(|(k, v)| k.len() + 4 + json_value_len(v))
                .sum::<usize>()
        }
    }
}

/// Datetimes of the years 1 to 9999: formatted with four year digits, and parsed back to the
/// same ticks.
fn native_datetime(t: i64) -> bool {
    // 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in ticks since the Unix epoch.
    const MIN: i64 = -621_355_968_000_000_000;
    const END: i64 = 2_534_023_008_000_000_000;
    (MIN..END).contains(&t)
}

/// How a value of a column of type `ty` is kept: its tag and payload size, `None` when it is
/// kept as JSON.
fn native(v: &Value<'_>, ty: Type) -> Option<(u8, usize)> {
    Some(match (ty, v) {
        (Type::String, Value::String(s)) if !s.is_empty() && u32::try_from(s.len()).is_ok() => {
            (STRING, 4 + s.len())
        }
        (Type::Long, Value::Long(_)) => (LONG, 8),
        (Type::Int, Value::Int(_)) => (INT, 4),
        (Type::Real, Value::Real(f)) if f.is_finite() => (REAL, 8),
        (Type::Bool, Value::Bool(_)) => (BOOL, 1),
        (Type::DateTime, Value::DateTime(t)) if native_datetime(*t) => (DATETIME, 8),
        _ => return None,
    })
}

/// Whether a value is left out of a kept row (it reads back the same when absent).
fn left_out(v: &Value<'_>) -> bool {
    v.is_null() || matches!(v, Value::String(s) if s.is_empty())
}

impl KeptRow {
    /// Packs `values`, the values of columns `cols` by place: nulls and empty strings left
    /// out.
    pub(crate) fn build(cols: &[(String, Type)], values: &[Value<'_>]) -> KeptRow {
        let mut size = 0;
        for (v, (_, ty)) in values.iter().zip(cols) {
            if !left_out(v) {
                size += 3 + native(v, *ty).map_or(4, |(_, n)| n);
            }
        }
        let mut bytes = Vec::with_capacity(size);
        let mut json = Vec::new();
        let mut json_len = 2;
        for (i, (v, (name, ty))) in values.iter().zip(cols).enumerate() {
            if left_out(v) {
                continue;
            }
            let Ok(place) = u16::try_from(i) else {
                continue;
            };
            json_len += name.len() + 4;
            bytes.extend_from_slice(&place.to_le_bytes());
            match native(v, *ty) {
                Some((tag, _)) => {
                    bytes.push(tag);
                    json_len += put(v, &mut bytes);
                }
                None => {
                    let j = v.to_json();
                    json_len += json_value_len(&j);
                    push_json(&mut bytes, &mut json, j);
                }
            }
        }
        KeptRow {
            bytes: bytes.into_boxed_slice(),
            json: (!json.is_empty()).then(|| json.into_boxed_slice()),
            json_len,
        }
    }

    /// The kept row of a JSON object of columns `cols` (as [`crate::TableQuery::row_prefix`]
    /// gives it, or as saved): members that are not columns are left out.
    pub(crate) fn from_json(cols: &[(String, Type)], row: &Map<String, Json>) -> KeptRow {
        let mut entries: Vec<(usize, &Json)> = row
            .iter()
            .filter_map(|(k, v)| Some((cols.iter().position(|c| c.0 == *k)?, v)))
            .collect();
        entries.sort_by_key(|e| e.0);
        let mut bytes = Vec::new();
        let mut json = Vec::new();
        let mut json_len = 2;
        for (i, j) in entries {
            let Ok(place) = u16::try_from(i) else {
                continue;
            };
            json_len += cols[i].0.len() + 4;
            bytes.extend_from_slice(&place.to_le_bytes());
            // Only values whose JSON is the value's own are kept in their type.
            let v = match (cols[i].1, j) {
                (Type::String, Json::String(s)) => Some(Value::str(s)),
                (Type::Long, Json::Number(n)) => n.as_i64().map(Value::Long),
                (Type::Bool, Json::Bool(b)) => Some(Value::Bool(*b)),
                _ => None,
            };
            match v.and_then(|v| native(&v, cols[i].1).map(|(tag, _)| (tag, v))) {
                Some((tag, v)) => {
                    bytes.push(tag);
                    json_len += put(&v, &mut bytes);
                }
                None => {
                    json_len += json_value_len(j);
                    push_json(&mut bytes, &mut json, j.clone());
                }
            }
        }
        KeptRow {
            bytes: bytes.into_boxed_slice(),
            json: (!json.is_empty()).then(|| json.into_boxed_slice()),
            json_len,
        }
    }

    /// The row's size as JSON, about: 2 for the braces, and for each member its name's
    /// length plus 4, and its value's: a string's length plus 2, 8 for a number, 5 for a
    /// bool or null (arrays and objects counted the same way, member by member).
    pub fn json_len(&self) -> usize {
        self.json_len
    }

    /// The kept values: column place and value, in column order.
    pub(crate) fn entries(&self) -> Entries<'_> {
        Entries { row: self, at: 0 }
    }

    /// The value of column `place`, if kept.
    pub(crate) fn entry(&self, place: usize) -> Option<Entry<'_>> {
        self.entries().find(|e| e.0 == place).map(|e| e.1)
    }

    /// The row as the JSON object it stands for, with the names of `cols`.
    pub(crate) fn to_json(&self, cols: &[(String, Type)]) -> Map<String, Json> {
        self.entries()
            .filter_map(|(i, e)| Some((cols.get(i)?.0.clone(), e.to_json())))
            .collect()
    }
}

fn push_json(bytes: &mut Vec<u8>, json: &mut Vec<Json>, j: Json) {
    bytes.push(JSON);
    // Fewer than 2^32 values: a row has at most 2^16 columns.
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    json.push(j);
}

/// Writes a native value's payload; its size as JSON.
fn put(v: &Value<'_>, out: &mut Vec<u8>) -> usize {
    match v {
        Value::String(s) => {
            // `native` checked the length fits.
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            s.len() + 2
        }
        Value::Long(x) => {
            out.extend_from_slice(&x.to_le_bytes());
            8
        }
        Value::Int(x) => {
            out.extend_from_slice(&x.to_le_bytes());
            8
        }
        Value::Real(x) => {
            out.extend_from_slice(&x.to_bits().to_le_bytes());
            8
        }
        Value::Bool(b) => {
            out.push(u8::from(*b));
            5
        }
        Value::DateTime(t) => {
            out.extend_from_slice(&t.to_le_bytes());
            DATETIME_JSON_LEN
        }
        // `native` keeps no other type.
        _ => 0,
    }
}

/// The entries of a kept row.
pub(crate) struct Entries<'a> {
    row: &'a KeptRow,
    at: usize,
}

impl<'a> Entries<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b = self.row.bytes.get(self.at..self.at + N)?;
        self.at += N;
        b.try_into().ok()
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = (usize, Entry<'a>);

    fn next(&mut self) -> Option<(usize, Entry<'a>)> {
        let place = usize::from(u16::from_le_bytes(self.take()?));
        let [tag] = self.take()?;
        let e = match tag {
            STRING => {
                let n = u32::from_le_bytes(self.take()?) as usize;
                let b = self.row.bytes.get(self.at..self.at + n)?;
                self.at += n;
                // Written from a `str`.
                Entry::Native(Value::str(std::str::from_utf8(b).ok()?))
            }
            LONG => Entry::Native(Value::Long(i64::from_le_bytes(self.take()?))),
            INT => Entry::Native(Value::Int(i32::from_le_bytes(self.take()?))),
            REAL => Entry::Native(Value::Real(f64::from_bits(u64::from_le_bytes(
                self.take()?,
            )))),
            BOOL => Entry::Native(Value::Bool(self.take::<1>()? != [0])),
            DATETIME => Entry::Native(Value::DateTime(i64::from_le_bytes(self.take()?))),
            _ => {
                let k = u32::from_le_bytes(self.take()?) as usize;
                Entry::Json(self.row.json.as_ref()?.get(k)?)
            }
        };
        Some((place, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The round trip a kept value stands for: to JSON, read back, converted to the column's
    /// type.
    fn round_trip(v: &Value<'_>, ty: Type) -> Value<'static> {
        coerce(json_value(&v.to_json()), ty).into_owned()
    }

    #[test]
    fn native_values_are_their_own_round_trip() {
        let mut x: u64 = 0x5eed_1234;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x
        };
        let mut values = vec![
            (Value::DateTime(-621_355_968_000_000_000), Type::DateTime),
            (
                Value::DateTime(2_534_023_008_000_000_000 - 1),
                Type::DateTime,
            ),
            (Value::DateTime(0), Type::DateTime),
            (Value::DateTime(-1), Type::DateTime),
            (Value::Long(i64::MIN), Type::Long),
            (Value::Long(i64::MAX), Type::Long),
            (Value::Int(i32::MIN), Type::Int),
            (Value::Int(i32::MAX), Type::Int),
            (Value::Real(0.1), Type::Real),
            (Value::Real(-0.0), Type::Real),
            (Value::Real(3.0), Type::Real),
            (Value::Real(f64::MAX), Type::Real),
            (Value::Real(f64::MIN_POSITIVE), Type::Real),
            (Value::Real(5e-324), Type::Real),
            (Value::Bool(true), Type::Bool),
            (Value::Bool(false), Type::Bool),
            (Value::str("x"), Type::String),
            (Value::str(" 12 "), Type::String),
            (Value::str("2024-01-01"), Type::String),
            (Value::str("é\"\\\u{0}"), Type::String),
        ];
        for _ in 0..20_000 {
            let r = next();
            let span = 2_534_023_008_000_000_000u64 + 621_355_968_000_000_000;
            let t = (r % span) as i64 - 621_355_968_000_000_000;
            values.push((Value::DateTime(t), Type::DateTime));
            values.push((Value::Long(r as i64), Type::Long));
            values.push((Value::Int(r as i32), Type::Int));
            let f = f64::from_bits(next());
            values.push((Value::Real(f), Type::Real));
        }
        let mut checked = 0;
        for (v, ty) in values {
            if native(&v, ty).is_none() {
                continue;
            }
            checked += 1;
            assert_eq!(round_trip(&v, ty), v, "{v:?} as {ty}");
            // And the kept row reads it back, with the JSON's size.
            let cols = [("C".to_owned(), ty)];
            let k = KeptRow::build(&cols, std::slice::from_ref(&v));
            let read: Vec<_> = k.entries().map(|(i, e)| (i, e.value(ty))).collect();
            assert_eq!(read, [(0, v.clone())]);
            let j = k.to_json(&cols);
            assert_eq!(j, Map::from_iter([("C".to_owned(), v.to_json())]));
            assert_eq!(
                k.json_len(),
                2 + 1 + 4 + json_value_len(&v.to_json()),
                "{v:?}"
            );
        }
        assert!(checked > 70_000, "{checked}");
    }

    #[test]
    fn other_values_are_kept_as_json() {
        let cols: Vec<(String, Type)> = [
            ("S", Type::String),
            ("D", Type::Dynamic),
            ("L", Type::Long),
            ("R", Type::Real),
            ("G", Type::Guid),
            ("T", Type::Timespan),
            ("E", Type::String),
            ("N", Type::Long),
            ("I", Type::Int),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t))
        .collect();
        let arr = serde_json::json!([1, "a", {"b": null}]);
        let values = [
            Value::Long(7),
            Value::Dynamic(Cow::Owned(arr.clone())),
            Value::str("12"),
            Value::Real(f64::NAN),
            Value::Guid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            Value::Timespan(-36_000_000_001),
            Value::str(""),
            Value::Null,
            Value::Long(1 << 40),
        ];
        let k = KeptRow::build(&cols, &values);
        let want: Map<String, Json> = cols
            .iter()
            .zip(&values)
            .filter(|(_, v)| !left_out(v))
            .map(|(c, v)| (c.0.clone(), v.to_json()))
            .collect();
        assert_eq!(k.to_json(&cols), want);
        for (i, e) in k.entries() {
            assert_eq!(e.value(cols[i].1), round_trip(&values[i], cols[i].1), "{i}");
        }
        assert!(k.entry(6).is_none() && k.entry(7).is_none());
        assert_eq!(KeptRow::from_json(&cols, &want), k.clone());
        let len = 2 + want
            .iter()
            .map(|(k, v)| k.len() + 4 + json_value_len(v))
            .sum::<usize>();
        assert_eq!(k.json_len(), len);
    }
}
