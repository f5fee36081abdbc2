//! Kusto's scalar types and values.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value as Json;

use crate::time;

/// A Kusto scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Type {
    /// `bool`.
    Bool,
    /// `int`: 32-bit signed.
    Int,
    /// `long`: 64-bit signed.
    Long,
    /// `real` (`double`): 64-bit floating point.
    Real,
    /// `decimal`: evaluated as `real` here (128-bit decimals are not implemented).
    Decimal,
    /// `string`: never null (an absent string is `""`).
    String,
    /// `datetime`: 100 ns ticks, UTC.
    DateTime,
    /// `timespan`: 100 ns ticks.
    Timespan,
    /// `guid`.
    Guid,
    /// `dynamic`: any JSON value.
    Dynamic,
}

impl Type {
    /// The type named by a Kusto type name (`long`, `datetime`, `date`, `double`, `boolean`, ...).
    pub fn from_name(name: &str) -> Option<Type> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => Type::Bool,
            "int" | "int32" => Type::Int,
            "long" | "int64" => Type::Long,
            "real" | "double" | "float" => Type::Real,
            "decimal" => Type::Decimal,
            "string" => Type::String,
            "datetime" | "date" => Type::DateTime,
            "timespan" | "time" => Type::Timespan,
            "guid" | "uniqueid" => Type::Guid,
            "dynamic" => Type::Dynamic,
            _ => return None,
        })
    }

    /// Kusto's name of the type, as `gettype` reports it.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Long => "long",
            Type::Real => "real",
            Type::Decimal => "decimal",
            Type::String => "string",
            Type::DateTime => "datetime",
            Type::Timespan => "timespan",
            Type::Guid => "guid",
            Type::Dynamic => "dynamic",
        }
    }

    pub(crate) fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Long | Type::Real | Type::Decimal)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Kusto value. Strings and dynamic values borrow from the row or the query when they can.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// The null value of any non-string type.
    Null,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i32),
    /// `long`.
    Long(i64),
    /// `real`.
    Real(f64),
    /// `string`.
    String(Cow<'a, str>),
    /// `datetime`: 100 ns ticks since 1970-01-01T00:00:00Z.
    DateTime(i64),
    /// `timespan`: 100 ns ticks.
    Timespan(i64),
    /// `guid`, as a big-endian 128-bit number of its canonical text.
    Guid(u128),
    /// `dynamic`.
    Dynamic(Cow<'a, Json>),
}

impl<'a> Value<'a> {
    /// A borrowed string value.
    pub fn str(s: &'a str) -> Value<'a> {
        Value::String(Cow::Borrowed(s))
    }

    /// A value borrowing from this one (strings and dynamic values are not copied).
    pub fn reborrow(&self) -> Value<'_> {
        match self {
            Value::String(s) => Value::String(Cow::Borrowed(s)),
            Value::Dynamic(d) => Value::Dynamic(Cow::Borrowed(d)),
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(v) => Value::Int(*v),
            Value::Long(v) => Value::Long(*v),
            Value::Real(v) => Value::Real(*v),
            Value::DateTime(v) => Value::DateTime(*v),
            Value::Timespan(v) => Value::Timespan(*v),
            Value::Guid(v) => Value::Guid(*v),
        }
    }

    /// The value with no borrow left.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::Dynamic(d) => Value::Dynamic(Cow::Owned(d.into_owned())),
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(v) => Value::Int(v),
            Value::Long(v) => Value::Long(v),
            Value::Real(v) => Value::Real(v),
            Value::DateTime(v) => Value::DateTime(v),
            Value::Timespan(v) => Value::Timespan(v),
            Value::Guid(v) => Value::Guid(v),
        }
    }

    /// Whether this is the null value (a dynamic JSON `null` is null too).
    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Dynamic(d) => d.is_null(),
            _ => false,
        }
    }

    /// A dynamic scalar (string, number, bool) as the matching Kusto value; other values as they are.
    #[inline]
    pub(crate) fn undyn(self) -> Value<'a> {
        if !matches!(self, Value::Dynamic(_)) {
            return self;
        }
        match self {
            Value::Dynamic(Cow::Borrowed(j)) => json_scalar(j),
            Value::Dynamic(Cow::Owned(j)) => match j {
                Json::String(s) => Value::String(Cow::Owned(s)),
                other => json_scalar(&other).into_owned(),
            },
            v => v,
        }
    }

    /// The value as a `bool` (`None` for null and non-bool values).
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Dynamic(d) => d.as_bool(),
            _ => None,
        }
    }

    /// The value as a Rust string, in Kusto's `tostring` format (null gives `""`).
    pub fn to_kusto_string(&self) -> Cow<'_, str> {
        match self {
            Value::String(s) => Cow::Borrowed(s),
            Value::Null => Cow::Borrowed(""),
            Value::Dynamic(d) => match &**d {
                Json::String(s) => Cow::Borrowed(s),
                Json::Null => Cow::Borrowed(""),
                other => Cow::Owned(other.to_string()),
            },
            other => {
                let mut s = String::new();
                other.write_scalar(&mut s);
                Cow::Owned(s)
            }
        }
    }

    fn write_scalar(&self, out: &mut String) {
        use fmt::Write as _;
        match self {
            Value::Null => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Long(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Real(v) => format_real(*v, out),
            Value::String(s) => out.push_str(s),
            Value::DateTime(t) => time::format_datetime(*t, out),
            Value::Timespan(t) => time::format_timespan(*t, out),
            Value::Guid(g) => format_guid(*g, out),
            Value::Dynamic(d) => {
                let _ = write!(out, "{d}");
            }
        }
    }

    /// The value as JSON, in the formats Azure writes (datetime ISO 8601 with 7 fractional
    /// digits and `Z`, timespan `[-][d.]hh:mm:ss[.fffffff]`, guid lowercase). Non-finite reals
    /// become `null`.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(v) => Json::from(*v),
            Value::Long(v) => Json::from(*v),
            Value::Real(v) => serde_json::Number::from_f64(*v).map_or(Json::Null, Json::Number),
            Value::String(s) => Json::String(s.to_string()),
            Value::Dynamic(d) => (**d).clone(),
            other => {
                let mut s = String::new();
                other.write_scalar(&mut s);
                Json::String(s)
            }
        }
    }
}

impl Value<'_> {
    /// Appends the value as JSON to `out`: the bytes `serde_json` writes for
    /// [`Value::to_json`], without building that JSON value (a datetime is formatted in
    /// place).
    ///
    /// ```
    /// use mcas_kql::Value;
    ///
    /// let mut out = Vec::new();
    /// Value::DateTime(17_107_497_420_000_000).write_json(&mut out);
    /// assert_eq!(out, br#""2024-03-18T08:15:42.0000000Z""#);
    /// ```
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        match self {
            Value::String(s) => {
                let _ = serde_json::to_writer(&mut *out, s.as_ref());
            }
            Value::Int(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Value::Long(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Value::DateTime(t) => match time::datetime_json(*t) {
                Some(json) => out.extend_from_slice(&json),
                None => {
                    let _ = serde_json::to_writer(&mut *out, &self.to_json());
                }
            },
            other => {
                let _ = serde_json::to_writer(&mut *out, &other.to_json());
            }
        }
    }
}

impl fmt::Display for Value<'_> {
    /// The value as `tostring` writes it (null is empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_kusto_string())
    }
}

/// A JSON scalar as a Kusto value (arrays and objects stay dynamic).
pub(crate) fn json_scalar(j: &Json) -> Value<'_> {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Long(i),
            None => n.as_f64().map_or(Value::Null, Value::Real),
        },
        Json::String(s) => Value::String(Cow::Borrowed(s)),
        other => Value::Dynamic(Cow::Borrowed(other)),
    }
}

/// Formats a real the way `tostring` does: shortest round-trip digits, no `.0` for integers.
pub(crate) fn format_real(v: f64, out: &mut String) {
    use fmt::Write as _;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let _ = write!(out, "{v}");
    }
}

pub(crate) fn format_guid(g: u128, out: &mut String) {
    use fmt::Write as _;
    let _ = write!(
        out,
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (g >> 96) as u32,
        (g >> 80) as u16,
        (g >> 64) as u16,
        (g >> 48) as u16,
        g & 0xffff_ffff_ffff
    );
}

/// Parses a guid: 32 hex digits, hyphens anywhere, optional braces.
pub(crate) fn parse_guid(s: &str) -> Option<u128> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(s);
    let mut v: u128 = 0;
    let mut n = 0;
    for c in s.chars() {
        if c == '-' {
            continue;
        }
        let d = c.to_digit(16)?;
        v = (v << 4) | u128::from(d);
        n += 1;
        if n > 32 {
            return None;
        }
    }
    (n == 32).then_some(v)
}

/// Converts a value read from a row to the column's declared type (a datetime column given as
/// an ISO string, an `int` column given as a JSON integer, ...). Values that do not convert
/// become null.
#[inline]
pub(crate) fn coerce<'a>(v: Value<'a>, ty: Type) -> Value<'a> {
    // A value of the type already (or null) is its own conversion.
    match (ty, &v) {
        (_, Value::Null)
        | (Type::String, Value::String(_))
        | (Type::Long, Value::Long(_))
        | (Type::Int, Value::Int(_))
        | (Type::Real | Type::Decimal, Value::Real(_))
        | (Type::Bool, Value::Bool(_))
        | (Type::DateTime, Value::DateTime(_))
        | (Type::Timespan, Value::Timespan(_))
        | (Type::Guid, Value::Guid(_))
        | (Type::Dynamic, Value::Dynamic(_)) => v,
        _ => convert(v, ty),
    }
}

fn convert(v: Value<'_>, ty: Type) -> Value<'_> {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        (Type::Dynamic, Value::Dynamic(d)) => Value::Dynamic(d),
        (Type::Dynamic, v) => Value::Dynamic(Cow::Owned(v.to_json())),
        (_, v @ Value::Dynamic(_)) => match v.undyn() {
            Value::Dynamic(_) => Value::Null,
            s => coerce(s, ty),
        },
        (Type::String, v @ Value::String(_)) => v,
        (Type::String, v) => Value::String(Cow::Owned(v.to_kusto_string().into_owned())),
        (Type::Long, v) => crate::functions::to_long(&v).map_or(Value::Null, Value::Long),
        (Type::Int, v) => {
            crate::functions::to_long(&v).map_or(Value::Null, |l| Value::Int(l as i32))
        }
        (Type::Real | Type::Decimal, v) => {
            crate::functions::to_real(&v).map_or(Value::Null, Value::Real)
        }
        (Type::Bool, v) => crate::functions::to_bool(&v).map_or(Value::Null, Value::Bool),
        (Type::DateTime, v) => {
            crate::functions::to_datetime(&v).map_or(Value::Null, Value::DateTime)
        }
        (Type::Timespan, v) => {
            crate::functions::to_timespan(&v).map_or(Value::Null, Value::Timespan)
        }
        (Type::Guid, v) => crate::functions::to_guid(&v).map_or(Value::Null, Value::Guid),
    }
}
