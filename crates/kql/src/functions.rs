//! Scalar functions, conversions, arithmetic and string predicates.

use std::borrow::Cow;

use base64::Engine as _;
use regex::Regex;
use serde_json::Value as Json;
use sha2::Digest as _;

use crate::ast::{BinOp, StrKind};
use crate::time::{
    self, TICKS_PER_DAY, TICKS_PER_HOUR, TICKS_PER_MICRO, TICKS_PER_MILLI, TICKS_PER_MINUTE,
    TICKS_PER_SECOND,
};
use crate::value::{Type, Value, json_scalar, parse_guid};

/// A builtin: evaluated arguments (and the compiled regex of regex functions) to a value.
pub(crate) type Builtin = for<'a> fn(&[Value<'a>], Option<&Regex>) -> Value<'a>;

/// How a builtin's result type follows from its arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ret {
    Fixed(Type),
    /// The type of the first argument (`abs`, `bin`, `max_of` ...).
    Arg0,
}

pub(crate) struct Spec {
    pub(crate) f: Builtin,
    pub(crate) min: usize,
    pub(crate) max: usize,
    ret_kind: Ret,
}

impl Spec {
    /// The result type for these argument types.
    pub(crate) fn ret_type(&self, args: &[Type]) -> Type {
        match self.ret_kind {
            Ret::Fixed(t) => t,
            Ret::Arg0 => match args.first() {
                Some(Type::Decimal) => Type::Real,
                Some(t) => *t,
                None => Type::Dynamic,
            },
        }
    }
}

const MANY: usize = 64;

/// Every builtin name `lookup` knows (for "did you mean" hints).
pub(crate) const NAMES: &[&str] = &[
    "tobool",
    "toboolean",
    "todatetime",
    "todouble",
    "toreal",
    "toguid",
    "toint",
    "tolong",
    "tostring",
    "totimespan",
    "totime",
    "todecimal",
    "datetime_add",
    "datetime_diff",
    "datetime_part",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "endofday",
    "endofweek",
    "endofmonth",
    "endofyear",
    "startofday",
    "startofweek",
    "startofmonth",
    "startofyear",
    "getmonth",
    "monthofyear",
    "getyear",
    "hourofday",
    "make_datetime",
    "make_timespan",
    "weekofyear",
    "week_of_year",
    "array_concat",
    "array_length",
    "pack_array",
    "pack",
    "bag_pack",
    "parse_json",
    "todynamic",
    "parse_xml",
    "zip",
    "abs",
    "bin",
    "floor",
    "ceiling",
    "exp",
    "exp10",
    "exp2",
    "isfinite",
    "isinf",
    "isnan",
    "log",
    "log10",
    "log2",
    "pow",
    "round",
    "sign",
    "sqrt",
    "max_of",
    "min_of",
    "base64_encodestring",
    "base64_decodestring",
    "base64_encode_tostring",
    "base64_decode_tostring",
    "countof",
    "indexof",
    "isempty",
    "isnotempty",
    "split",
    "strcat",
    "strcat_delim",
    "strlen",
    "substring",
    "tolower",
    "toupper",
    "hash_sha256",
    "replace_string",
    "isnull",
    "isnotnull",
    "parse_cef_dictionary",
    "binary_and",
    "binary_or",
    "binary_xor",
    "binary_not",
    "binary_shift_left",
    "binary_shift_right",
    "trim",
];

/// The builtin called `name`.
pub(crate) fn lookup(name: &str) -> Option<Spec> {
    use Type::*;
    let s = |f: Builtin, min, max, ret_kind| {
        Some(Spec {
            f,
            min,
            max,
            ret_kind,
        })
    };
    match name {
        "tobool" | "toboolean" => s(tobool, 1, 1, Ret::Fixed(Bool)),
        "todatetime" => s(todatetime, 1, 1, Ret::Fixed(DateTime)),
        "todouble" | "toreal" | "todecimal" => s(toreal, 1, 1, Ret::Fixed(Real)),
        "toguid" => s(toguid, 1, 1, Ret::Fixed(Guid)),
        "toint" => s(toint, 1, 1, Ret::Fixed(Int)),
        "tolong" => s(tolong, 1, 1, Ret::Fixed(Long)),
        "tostring" => s(tostring, 1, 1, Ret::Fixed(String)),
        "totimespan" | "totime" => s(totimespan, 1, 1, Ret::Fixed(Timespan)),
        "datetime_add" => s(datetime_add, 3, 3, Ret::Fixed(DateTime)),
        "datetime_diff" => s(datetime_diff, 3, 3, Ret::Fixed(Long)),
        "datetime_part" => s(datetime_part, 2, 2, Ret::Fixed(Int)),
        "dayofmonth" => s(dayofmonth, 1, 1, Ret::Fixed(Int)),
        "dayofweek" => s(dayofweek, 1, 1, Ret::Fixed(Timespan)),
        "dayofyear" => s(dayofyear, 1, 1, Ret::Fixed(Int)),
        "endofday" => s(endofday, 1, 2, Ret::Fixed(DateTime)),
        "endofweek" => s(endofweek, 1, 2, Ret::Fixed(DateTime)),
        "endofmonth" => s(endofmonth, 1, 2, Ret::Fixed(DateTime)),
        "endofyear" => s(endofyear, 1, 2, Ret::Fixed(DateTime)),
        "startofday" => s(startofday, 1, 2, Ret::Fixed(DateTime)),
        "startofweek" => s(startofweek, 1, 2, Ret::Fixed(DateTime)),
        "startofmonth" => s(startofmonth, 1, 2, Ret::Fixed(DateTime)),
        "startofyear" => s(startofyear, 1, 2, Ret::Fixed(DateTime)),
        "getmonth" | "monthofyear" => s(getmonth, 1, 1, Ret::Fixed(Int)),
        "getyear" => s(getyear, 1, 1, Ret::Fixed(Int)),
        "hourofday" => s(hourofday, 1, 1, Ret::Fixed(Int)),
        "make_datetime" => s(make_datetime, 3, 7, Ret::Fixed(DateTime)),
        "make_timespan" => s(make_timespan, 2, 4, Ret::Fixed(Timespan)),
        "weekofyear" | "week_of_year" => s(weekofyear, 1, 1, Ret::Fixed(Int)),
        "array_concat" => s(array_concat, 1, MANY, Ret::Fixed(Dynamic)),
        "array_length" => s(array_length, 1, 1, Ret::Fixed(Long)),
        "pack_array" => s(pack_array, 1, MANY, Ret::Fixed(Dynamic)),
        "pack" | "bag_pack" => s(pack, 0, MANY, Ret::Fixed(Dynamic)),
        "parse_json" | "todynamic" => s(parse_json, 1, 1, Ret::Fixed(Dynamic)),
        "parse_xml" => s(parse_xml, 1, 1, Ret::Fixed(Dynamic)),
        "zip" => s(zip, 2, 16, Ret::Fixed(Dynamic)),
        "abs" => s(abs, 1, 1, Ret::Arg0),
        "bin" | "floor" => s(bin, 2, 2, Ret::Arg0),
        "ceiling" => s(ceiling, 1, 1, Ret::Arg0),
        "exp" => s(exp, 1, 1, Ret::Fixed(Real)),
        "exp10" => s(exp10, 1, 1, Ret::Fixed(Real)),
        "exp2" => s(exp2, 1, 1, Ret::Fixed(Real)),
        "isfinite" => s(isfinite, 1, 1, Ret::Fixed(Bool)),
        "isinf" => s(isinf, 1, 1, Ret::Fixed(Bool)),
        "isnan" => s(isnan, 1, 1, Ret::Fixed(Bool)),
        "log" => s(log, 1, 1, Ret::Fixed(Real)),
        "log10" => s(log10, 1, 1, Ret::Fixed(Real)),
        "log2" => s(log2, 1, 1, Ret::Fixed(Real)),
        "pow" => s(pow, 2, 2, Ret::Fixed(Real)),
        "sqrt" => s(sqrt, 1, 1, Ret::Fixed(Real)),
        "round" => s(round, 1, 2, Ret::Arg0),
        "sign" => s(sign, 1, 1, Ret::Arg0),
        "max_of" => s(max_of, 1, MANY, Ret::Arg0),
        "min_of" => s(min_of, 1, MANY, Ret::Arg0),
        "base64_encodestring" | "base64_encode_tostring" => {
            s(base64_encode, 1, 1, Ret::Fixed(String))
        }
        "base64_decodestring" | "base64_decode_tostring" => {
            s(base64_decode, 1, 1, Ret::Fixed(String))
        }
        "countof" => s(countof, 2, 3, Ret::Fixed(Long)),
        "indexof" => s(indexof, 2, 5, Ret::Fixed(Long)),
        "isempty" => s(isempty, 1, 1, Ret::Fixed(Bool)),
        "isnotempty" => s(isnotempty, 1, 1, Ret::Fixed(Bool)),
        "isnull" => s(isnull, 1, 1, Ret::Fixed(Bool)),
        "isnotnull" => s(isnotnull, 1, 1, Ret::Fixed(Bool)),
        "split" => s(split, 2, 3, Ret::Fixed(Dynamic)),
        "strcat" => s(strcat, 1, MANY, Ret::Fixed(String)),
        "strcat_delim" => s(strcat_delim, 3, MANY, Ret::Fixed(String)),
        "strlen" => s(strlen, 1, 1, Ret::Fixed(Long)),
        "substring" => s(substring, 2, 3, Ret::Fixed(String)),
        "tolower" => s(tolower, 1, 1, Ret::Fixed(String)),
        "toupper" => s(toupper, 1, 1, Ret::Fixed(String)),
        "trim" => s(trim, 2, 2, Ret::Fixed(String)),
        "hash_sha256" => s(hash_sha256, 1, 1, Ret::Fixed(String)),
        "replace_string" => s(replace_string, 3, 3, Ret::Fixed(String)),
        "binary_and" => s(binary_and, 2, 2, Ret::Fixed(Long)),
        "binary_or" => s(binary_or, 2, 2, Ret::Fixed(Long)),
        "binary_xor" => s(binary_xor, 2, 2, Ret::Fixed(Long)),
        "binary_not" => s(binary_not, 1, 1, Ret::Fixed(Long)),
        "binary_shift_left" => s(binary_shift_left, 2, 2, Ret::Fixed(Long)),
        "binary_shift_right" => s(binary_shift_right, 2, 2, Ret::Fixed(Long)),
        "parse_cef_dictionary" => s(parse_cef_dictionary, 1, 1, Ret::Fixed(Dynamic)),
        _ => None,
    }
}

// ---- conversions ------------------------------------------------------------------------

pub(crate) fn to_long(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(i64::from(*i)),
        Value::Long(i) => Some(*i),
        Value::Real(r) if r.is_finite() => Some(r.trunc() as i64),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && t.contains(['.', 'e', 'E']))
                    .map(|r| r.trunc() as i64)
            })
        }
        Value::DateTime(t) | Value::Timespan(t) => Some(*t),
        Value::Dynamic(d) if !d.is_array() && !d.is_object() => to_long(&json_scalar(d)),
        _ => None,
    }
}

pub(crate) fn to_real(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(f64::from(*i)),
        Value::Long(i) => Some(*i as f64),
        Value::Real(r) => Some(*r),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => match s.trim() {
            "NaN" => Some(f64::NAN),
            "Infinity" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            t => t.parse::<f64>().ok().filter(|r| r.is_finite()),
        },
        Value::DateTime(t) | Value::Timespan(t) => Some(*t as f64),
        Value::Dynamic(d) if !d.is_array() && !d.is_object() => to_real(&json_scalar(d)),
        _ => None,
    }
}

pub(crate) fn to_bool(v: &Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Long(i) => Some(*i != 0),
        Value::Real(r) => Some(*r != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Dynamic(d) if !d.is_array() && !d.is_object() => to_bool(&json_scalar(d)),
        _ => None,
    }
}

pub(crate) fn to_datetime(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::DateTime(t) => Some(*t),
        Value::String(s) => time::parse_datetime(s),
        Value::Dynamic(d) => match &**d {
            Json::String(s) => time::parse_datetime(s),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn to_timespan(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Timespan(t) => Some(*t),
        Value::Long(t) => Some(*t),
        Value::Int(t) => Some(i64::from(*t)),
        Value::String(s) => time::parse_timespan(s),
        Value::Dynamic(d) => match &**d {
            Json::String(s) => time::parse_timespan(s),
            Json::Number(n) => n.as_i64(),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn to_guid(v: &Value<'_>) -> Option<u128> {
    match v {
        Value::Guid(g) => Some(*g),
        Value::String(s) => parse_guid(s),
        Value::Dynamic(d) => d.as_str().and_then(parse_guid),
        _ => None,
    }
}

fn arg<'v, 'a>(args: &'v [Value<'a>], i: usize) -> &'v Value<'a> {
    const NULL: &Value<'static> = &Value::Null;
    args.get(i).unwrap_or(NULL)
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value<'static>) -> Value<'static> {
    v.map_or(Value::Null, f)
}

fn text<'v>(args: &'v [Value<'_>], i: usize) -> Cow<'v, str> {
    arg(args, i).to_kusto_string()
}

fn owned(s: String) -> Value<'static> {
    Value::String(Cow::Owned(s))
}

fn dynamic(j: Json) -> Value<'static> {
    Value::Dynamic(Cow::Owned(j))
}

fn tobool<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(to_bool(arg(a, 0)), Value::Bool)
}
fn todatetime<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(to_datetime(arg(a, 0)), Value::DateTime)
}
fn toreal<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(to_real(arg(a, 0)), Value::Real)
}
fn toguid<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(to_guid(arg(a, 0)), Value::Guid)
}
fn toint<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(
        to_long(arg(a, 0)).and_then(|l| i32::try_from(l).ok()),
        Value::Int,
    )
}
fn tolong<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(to_long(arg(a, 0)), Value::Long)
}
fn tostring<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    match arg(a, 0) {
        Value::String(s) => Value::String(s.clone()),
        Value::Dynamic(Cow::Borrowed(Json::String(s))) => Value::String(Cow::Borrowed(s)),
        v => owned(v.to_kusto_string().into_owned()),
    }
}
fn totimespan<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(to_timespan(arg(a, 0)), Value::Timespan)
}

pub(crate) fn gettype_dynamic<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let name = match arg(a, 0) {
        Value::Dynamic(d) => match &**d {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Number(n) if n.is_i64() || n.is_u64() => "long",
            Json::Number(_) => "real",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "dictionary",
        },
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::Real(_) => "real",
        Value::String(_) => "string",
        Value::DateTime(_) => "datetime",
        Value::Timespan(_) => "timespan",
        Value::Guid(_) => "guid",
    };
    Value::str(name)
}

pub(crate) fn not<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(arg(a, 0).as_bool(), |b| Value::Bool(!b))
}

// ---- arithmetic -------------------------------------------------------------------------

/// `+ - * / %` with Kusto's promotions: int → long → real, datetime/timespan arithmetic.
pub(crate) fn arith<'a>(op: BinOp, a: Value<'a>, b: Value<'a>) -> Value<'a> {
    use Value::*;
    match (op, &a, &b) {
        (_, Null, _) | (_, _, Null) => Null,
        (BinOp::Sub, DateTime(x), DateTime(y)) => Timespan(x.wrapping_sub(*y)),
        (BinOp::Add, DateTime(x), Timespan(y)) | (BinOp::Add, Timespan(y), DateTime(x)) => {
            DateTime(x.wrapping_add(*y))
        }
        (BinOp::Sub, DateTime(x), Timespan(y)) => DateTime(x.wrapping_sub(*y)),
        (BinOp::Add, Timespan(x), Timespan(y)) => Timespan(x.wrapping_add(*y)),
        (BinOp::Sub, Timespan(x), Timespan(y)) => Timespan(x.wrapping_sub(*y)),
        (BinOp::Div, Timespan(x), Timespan(y)) => Real(*x as f64 / *y as f64),
        (BinOp::Mod, Timespan(x), Timespan(y)) => opt(x.checked_rem_euclid(*y), Timespan),
        (BinOp::Mul, Timespan(t), n) | (BinOp::Mul, n, Timespan(t)) => match n {
            Int(_) | Long(_) => opt(to_long(n), |k| Timespan(t.wrapping_mul(k))),
            Real(r) => Timespan((*t as f64 * r).round() as i64),
            _ => Null,
        },
        (BinOp::Div, Timespan(t), n) => match n {
            Int(_) | Long(_) => opt(to_long(n).and_then(|k| t.checked_div(k)), Timespan),
            Real(r) => Timespan((*t as f64 / r).round() as i64),
            _ => Null,
        },
        (_, Int(x), Int(y)) => match int_op(op, i64::from(*x), i64::from(*y)) {
            Some(v) => Int(v as i32),
            None => Null,
        },
        (_, Int(_) | Long(_), Int(_) | Long(_)) => opt(
            to_long(&a)
                .zip(to_long(&b))
                .and_then(|(x, y)| int_op(op, x, y)),
            Long,
        ),
        (_, Int(_) | Long(_) | Real(_), Int(_) | Long(_) | Real(_)) => {
            let (x, y) = (
                to_real(&a).unwrap_or(f64::NAN),
                to_real(&b).unwrap_or(f64::NAN),
            );
            Real(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                _ => {
                    let r = x % y;
                    if r < 0.0 { r + y.abs() } else { r }
                }
            })
        }
        _ => Null,
    }
}

fn int_op(op: BinOp, x: i64, y: i64) -> Option<i64> {
    Some(match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::Div => x.checked_div(y)?,
        _ => x.checked_rem_euclid(y)?,
    })
}

// ---- string predicates ------------------------------------------------------------------

/// Case-insensitive equality (ASCII fast path, full Unicode lowercase otherwise).
pub(crate) fn eq_ci(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn is_term_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Every start offset of `needle` in `hay`, case-insensitively when `ci`.
/// Whether `pred` holds for some start offset of `needle` in `hay` (case-insensitive when
/// `ci`). Allocates nothing.
fn any_match(hay: &str, needle: &str, ci: bool, mut pred: impl FnMut(usize) -> bool) -> bool {
    if !ci {
        return hay.match_indices(needle).any(|(i, _)| pred(i));
    }
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        let Some(&first) = n.first() else {
            return pred(0);
        };
        if n.len() > h.len() {
            return false;
        }
        let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
        return (0..=h.len() - n.len()).any(|i| {
            (h[i] == lo || h[i] == up) && h[i..i + n.len()].eq_ignore_ascii_case(n) && pred(i)
        });
    }
    // Unicode: compare char by char with lowercase folding.
    hay.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(hay.len()))
        .any(|i| prefix_ci(&hay[i..], needle).is_some() && pred(i))
}

/// When `hay` starts with `needle` ignoring case, the length in `hay` of the match.
fn prefix_ci(hay: &str, needle: &str) -> Option<usize> {
    let mut h = hay.char_indices();
    for nc in needle.chars() {
        let (_, hc) = h.next()?;
        if hc != nc && !hc.to_lowercase().eq(nc.to_lowercase()) {
            return None;
        }
    }
    Some(h.next().map_or(hay.len(), |(i, _)| i))
}

fn starts_ci(hay: &str, needle: &str, ci: bool) -> bool {
    if !ci {
        return hay.starts_with(needle);
    }
    if hay.is_ascii() && needle.is_ascii() {
        return hay.len() >= needle.len()
            && hay.as_bytes()[..needle.len()].eq_ignore_ascii_case(needle.as_bytes());
    }
    prefix_ci(hay, needle).is_some()
}

fn ends_ci(hay: &str, needle: &str, ci: bool) -> bool {
    if !ci {
        return hay.ends_with(needle);
    }
    if hay.is_ascii() && needle.is_ascii() {
        return hay.len() >= needle.len()
            && hay.as_bytes()[hay.len() - needle.len()..].eq_ignore_ascii_case(needle.as_bytes());
    }
    hay.to_lowercase().ends_with(&needle.to_lowercase())
}

/// `has`, `contains`, `startswith`, `endswith`, `hasprefix`, `hassuffix`.
pub(crate) fn str_match(kind: StrKind, cs: bool, hay: &str, needle: &str) -> bool {
    let ci = !cs;
    match kind {
        StrKind::Contains => any_match(hay, needle, ci, |_| true),
        StrKind::StartsWith => starts_ci(hay, needle, ci),
        StrKind::EndsWith => ends_ci(hay, needle, ci),
        StrKind::Has | StrKind::HasPrefix | StrKind::HasSuffix => {
            if needle.is_empty() {
                return true;
            }
            let first_is_term = needle.chars().next().is_some_and(is_term_char);
            let last_is_term = needle.chars().next_back().is_some_and(is_term_char);
            any_match(hay, needle, ci, |i| {
                let before_ok = !first_is_term
                    || kind == StrKind::HasSuffix
                    || hay[..i]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !is_term_char(c));
                let end = i + match_len(&hay[i..], needle, ci);
                let after_ok = !last_is_term
                    || kind == StrKind::HasPrefix
                    || hay[end..].chars().next().is_none_or(|c| !is_term_char(c));
                before_ok && after_ok
            })
        }
    }
}

fn match_len(hay: &str, needle: &str, ci: bool) -> usize {
    if !ci || (hay.is_ascii() && needle.is_ascii()) {
        needle.len().min(hay.len())
    } else {
        prefix_ci(hay, needle)
            .unwrap_or(needle.len())
            .min(hay.len())
    }
}

// ---- datetime ---------------------------------------------------------------------------

fn dt(a: &[Value<'_>], i: usize) -> Option<i64> {
    match arg(a, i) {
        Value::DateTime(t) => Some(*t),
        v @ (Value::String(_) | Value::Dynamic(_)) => to_datetime(v),
        _ => None,
    }
}

fn num(a: &[Value<'_>], i: usize) -> Option<i64> {
    match arg(a, i) {
        Value::String(_) => None,
        v => to_long(v),
    }
}

fn offset(a: &[Value<'_>]) -> Option<i64> {
    if a.len() > 1 { num(a, 1) } else { Some(0) }
}

fn period(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "year" | "years" => "year",
        "quarter" | "quarters" => "quarter",
        "month" | "months" => "month",
        "week" | "weeks" | "week_of_year" | "weekofyear" => "week",
        "day" | "days" | "d" => "day",
        "dayofyear" | "day_of_year" => "dayofyear",
        "hour" | "hours" | "h" => "hour",
        "minute" | "minutes" | "m" => "minute",
        "second" | "seconds" | "s" => "second",
        "millisecond" | "milliseconds" | "ms" => "millisecond",
        "microsecond" | "microseconds" => "microsecond",
        "nanosecond" | "nanoseconds" => "nanosecond",
        _ => return None,
    })
}

fn fixed_ticks(p: &str) -> Option<i64> {
    Some(match p {
        "week" => 7 * TICKS_PER_DAY,
        "day" => TICKS_PER_DAY,
        "hour" => TICKS_PER_HOUR,
        "minute" => TICKS_PER_MINUTE,
        "second" => TICKS_PER_SECOND,
        "millisecond" => TICKS_PER_MILLI,
        "microsecond" => TICKS_PER_MICRO,
        "nanosecond" => 1,
        _ => return None,
    })
}

fn datetime_add<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let r = (|| {
        let p = period(&text(a, 0))?;
        let n = num(a, 1)?;
        let t = dt(a, 2)?;
        match p {
            "year" => time::add_months(t, n.checked_mul(12)?),
            "quarter" => time::add_months(t, n.checked_mul(3)?),
            "month" => time::add_months(t, n),
            "nanosecond" => t.checked_add(n / 100),
            p => t.checked_add(n.checked_mul(fixed_ticks(p)?)?),
        }
    })();
    opt(r, Value::DateTime)
}

fn datetime_diff<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let r = (|| {
        let p = period(&text(a, 0))?;
        let (t1, t2) = (dt(a, 1)?, dt(a, 2)?);
        let (p1, p2) = (time::parts(t1), time::parts(t2));
        Some(match p {
            "year" => p1.year - p2.year,
            "quarter" => (p1.year * 4 + (p1.month - 1) / 3) - (p2.year * 4 + (p2.month - 1) / 3),
            "month" => (p1.year * 12 + p1.month) - (p2.year * 12 + p2.month),
            "week" => {
                let w1 = (p1.days - time::weekday(p1.days)).div_euclid(7);
                let w2 = (p2.days - time::weekday(p2.days)).div_euclid(7);
                w1 - w2
            }
            "nanosecond" => t1.checked_sub(t2)?.checked_mul(100)?,
            p => {
                let u = fixed_ticks(p)?;
                t1.div_euclid(u) - t2.div_euclid(u)
            }
        })
    })();
    opt(r, Value::Long)
}

fn datetime_part<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let r = (|| {
        let name = text(a, 0).to_ascii_lowercase();
        let t = dt(a, 1)?;
        let p = time::parts(t);
        Some(match name.as_str() {
            "year" => p.year,
            "quarter" => (p.month - 1) / 3 + 1,
            "month" => p.month,
            "week_of_year" | "weekofyear" | "week" => time::iso_week(t),
            "day" => p.day,
            "dayofyear" | "day_of_year" => p.days - time::days_from_civil(p.year, 1, 1) + 1,
            "hour" => p.hour,
            "minute" => p.minute,
            "second" => p.second,
            "millisecond" => p.frac / TICKS_PER_MILLI,
            "microsecond" => p.frac / TICKS_PER_MICRO,
            "nanosecond" => p.frac * 100,
            _ => return None,
        })
    })();
    opt(r, |v| Value::Int(v as i32))
}

fn part<'a>(a: &[Value<'a>], f: fn(i64) -> i64) -> Value<'a> {
    opt(dt(a, 0), |t| Value::Int(f(t) as i32))
}

fn dayofmonth<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    part(a, |t| time::parts(t).day)
}
fn dayofyear<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    part(a, |t| {
        let p = time::parts(t);
        p.days - time::days_from_civil(p.year, 1, 1) + 1
    })
}
fn getmonth<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    part(a, |t| time::parts(t).month)
}
fn getyear<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    part(a, |t| time::parts(t).year)
}
fn hourofday<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    part(a, |t| time::parts(t).hour)
}
fn weekofyear<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    part(a, time::iso_week)
}
fn dayofweek<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(dt(a, 0), |t| {
        Value::Timespan(time::weekday(t.div_euclid(TICKS_PER_DAY)) * TICKS_PER_DAY)
    })
}

fn start_of(a: &[Value<'_>], unit: char) -> Option<i64> {
    let t = dt(a, 0)?;
    let off = offset(a)?;
    let p = time::parts(t);
    let day0 = p.days.checked_mul(TICKS_PER_DAY)?;
    match unit {
        'd' => day0.checked_add(off.checked_mul(TICKS_PER_DAY)?),
        'w' => (p.days - time::weekday(p.days))
            .checked_mul(TICKS_PER_DAY)?
            .checked_add(off.checked_mul(7 * TICKS_PER_DAY)?),
        'm' => time::add_months(time::from_parts(p.year, p.month, 1, 0, 0, 0, 0)?, off),
        _ => time::add_months(
            time::from_parts(p.year, 1, 1, 0, 0, 0, 0)?,
            off.checked_mul(12)?,
        ),
    }
}

fn end_of(a: &[Value<'_>], unit: char) -> Option<i64> {
    let start = start_of(a, unit)?;
    let next = match unit {
        'd' => start.checked_add(TICKS_PER_DAY)?,
        'w' => start.checked_add(7 * TICKS_PER_DAY)?,
        'm' => time::add_months(start, 1)?,
        _ => time::add_months(start, 12)?,
    };
    Some(next - 1)
}

fn startofday<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(start_of(a, 'd'), Value::DateTime)
}
fn startofweek<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(start_of(a, 'w'), Value::DateTime)
}
fn startofmonth<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(start_of(a, 'm'), Value::DateTime)
}
fn startofyear<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(start_of(a, 'y'), Value::DateTime)
}
fn endofday<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(end_of(a, 'd'), Value::DateTime)
}
fn endofweek<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(end_of(a, 'w'), Value::DateTime)
}
fn endofmonth<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(end_of(a, 'm'), Value::DateTime)
}
fn endofyear<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(end_of(a, 'y'), Value::DateTime)
}

fn make_datetime<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let r = (|| {
        let y = num(a, 0)?;
        let mo = num(a, 1)?;
        let d = num(a, 2)?;
        let h = if a.len() > 3 { num(a, 3)? } else { 0 };
        let mi = if a.len() > 4 { num(a, 4)? } else { 0 };
        let s = if a.len() > 5 {
            to_real(arg(a, 5))?
        } else {
            0.0
        };
        if !(0.0..60.0).contains(&s) {
            return None;
        }
        let whole = s.trunc() as i64;
        let frac = ((s - s.trunc()) * TICKS_PER_SECOND as f64).round() as i64;
        time::from_parts(y, mo, d, h, mi, whole, frac.min(TICKS_PER_SECOND - 1))
    })();
    opt(r, Value::DateTime)
}

fn make_timespan<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let r = (|| {
        let vals: Vec<f64> = (0..a.len())
            .map(|i| to_real(arg(a, i)))
            .collect::<Option<_>>()?;
        let (d, h, m, s) = match vals.as_slice() {
            [h, m] => (0.0, *h, *m, 0.0),
            [h, m, s] => (0.0, *h, *m, *s),
            [d, h, m, s] => (*d, *h, *m, *s),
            _ => return None,
        };
        let ticks = d * TICKS_PER_DAY as f64
            + h * TICKS_PER_HOUR as f64
            + m * TICKS_PER_MINUTE as f64
            + s * TICKS_PER_SECOND as f64;
        ticks.is_finite().then(|| ticks.round() as i64)
    })();
    opt(r, Value::Timespan)
}

// ---- dynamic ----------------------------------------------------------------------------

fn to_dyn(v: &Value<'_>) -> Json {
    v.to_json()
}

fn array_concat<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let mut out = Vec::new();
    for v in a {
        match v {
            Value::Dynamic(d) => match &**d {
                Json::Array(items) => out.extend(items.iter().cloned()),
                _ => return Value::Null,
            },
            _ => return Value::Null,
        }
    }
    dynamic(Json::Array(out))
}

fn array_length<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    match arg(a, 0) {
        Value::Dynamic(d) => opt(d.as_array(), |x| Value::Long(x.len() as i64)),
        _ => Value::Null,
    }
}

fn pack_array<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    dynamic(Json::Array(a.iter().map(to_dyn).collect()))
}

fn pack<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let mut map = serde_json::Map::new();
    for kv in a.chunks(2) {
        let key = kv[0].to_kusto_string().into_owned();
        map.insert(key, kv.get(1).map_or(Json::Null, to_dyn));
    }
    dynamic(Json::Object(map))
}

fn parse_json<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    match arg(a, 0) {
        Value::Dynamic(d) => match &**d {
            Json::String(s) => parse_json_text(s),
            _ => Value::Dynamic(d.clone()),
        },
        Value::String(s) => parse_json_text(s),
        Value::Null => Value::Null,
        v => dynamic(v.to_json()),
    }
}

fn parse_json_text(s: &str) -> Value<'static> {
    if s.trim().is_empty() {
        return Value::Null;
    }
    match serde_json::from_str::<Json>(s) {
        Ok(j) => dynamic(j),
        Err(_) => dynamic(Json::String(s.to_string())),
    }
}

fn parse_xml<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(crate::xml::to_json(&text(a, 0)), dynamic)
}

fn zip<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let mut arrays = Vec::new();
    for v in a {
        match v {
            Value::Dynamic(d) if d.is_array() => {
                arrays.push(d.as_array().cloned().unwrap_or_default())
            }
            _ => return Value::Null,
        }
    }
    let n = arrays.iter().map(Vec::len).max().unwrap_or(0);
    let out = (0..n)
        .map(|i| {
            Json::Array(
                arrays
                    .iter()
                    .map(|arr| arr.get(i).cloned().unwrap_or(Json::Null))
                    .collect(),
            )
        })
        .collect();
    dynamic(Json::Array(out))
}

fn parse_cef_dictionary<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let msg = text(a, 0);
    let Ok(event) = mcas_cef::parse(msg.as_bytes()) else {
        return Value::Null;
    };
    let mut ext = serde_json::Map::new();
    for (k, v) in event.extensions() {
        ext.insert(k.to_string(), Json::String(v.to_string()));
    }
    let mut map = serde_json::Map::new();
    map.insert("Extension".to_string(), Json::Object(ext));
    dynamic(Json::Object(map))
}

// ---- math -------------------------------------------------------------------------------

fn real_fn<'a>(a: &[Value<'a>], f: fn(f64) -> f64) -> Value<'a> {
    opt(
        to_real(&arg(a, 0).clone().undyn()).filter(|_| !matches!(arg(a, 0), Value::String(_))),
        |x| Value::Real(f(x)),
    )
}

fn exp<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_fn(a, f64::exp)
}
fn exp10<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_fn(a, |x| 10f64.powf(x))
}
fn exp2<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_fn(a, f64::exp2)
}
fn log<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_fn(a, f64::ln)
}
fn log10<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_fn(a, f64::log10)
}
fn log2<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_fn(a, f64::log2)
}
fn sqrt<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_fn(a, f64::sqrt)
}
fn pow<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    opt(to_real(arg(a, 0)).zip(to_real(arg(a, 1))), |(x, y)| {
        Value::Real(x.powf(y))
    })
}

fn real_pred<'a>(a: &[Value<'a>], f: fn(f64) -> bool) -> Value<'a> {
    match arg(a, 0).clone().undyn() {
        Value::Int(_) | Value::Long(_) => Value::Bool(f(0.0)),
        Value::Real(r) => Value::Bool(f(r)),
        _ => Value::Null,
    }
}
fn isfinite<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_pred(a, f64::is_finite)
}
fn isinf<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_pred(a, f64::is_infinite)
}
fn isnan<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    real_pred(a, f64::is_nan)
}

fn abs<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    match arg(a, 0).clone().undyn() {
        Value::Int(v) => Value::Int(v.wrapping_abs()),
        Value::Long(v) => Value::Long(v.wrapping_abs()),
        Value::Real(v) => Value::Real(v.abs()),
        Value::Timespan(v) => Value::Timespan(v.wrapping_abs()),
        _ => Value::Null,
    }
}

fn sign<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    match arg(a, 0).clone().undyn() {
        Value::Int(v) => Value::Int(v.signum()),
        Value::Long(v) => Value::Long(v.signum()),
        Value::Real(v) => Value::Real(if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }),
        _ => Value::Null,
    }
}

fn ceiling<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    match arg(a, 0).clone().undyn() {
        v @ (Value::Int(_) | Value::Long(_)) => v,
        Value::Real(v) => Value::Real(v.ceil()),
        _ => Value::Null,
    }
}

fn bin<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let (v, size) = (arg(a, 0).clone().undyn(), arg(a, 1).clone().undyn());
    match (v, size) {
        (Value::DateTime(t), Value::Timespan(s)) if s > 0 => {
            let from_one = i128::from(t) + i128::from(time::EPOCH_FROM_YEAR_ONE);
            let binned = from_one
                - from_one.rem_euclid(i128::from(s))
                - i128::from(time::EPOCH_FROM_YEAR_ONE);
            opt(i64::try_from(binned).ok(), Value::DateTime)
        }
        (Value::Timespan(t), Value::Timespan(s)) if s > 0 => {
            opt(t.checked_sub(t.rem_euclid(s)), Value::Timespan)
        }
        (Value::Int(x), s @ (Value::Int(_) | Value::Long(_))) => {
            opt(to_long(&s).filter(|s| *s > 0), |s| {
                Value::Int((i64::from(x) - i64::from(x).rem_euclid(s)) as i32)
            })
        }
        (Value::Long(x), s @ (Value::Int(_) | Value::Long(_))) => opt(
            to_long(&s)
                .filter(|s| *s > 0)
                .and_then(|s| x.checked_sub(x.rem_euclid(s))),
            Value::Long,
        ),
        (Value::Long(x), Value::Real(s)) if s > 0.0 => {
            Value::Long(((x as f64 / s).floor() * s) as i64)
        }
        (Value::Real(x), s) => opt(to_real(&s).filter(|s| *s > 0.0), |s| {
            Value::Real((x / s).floor() * s)
        }),
        _ => Value::Null,
    }
}

fn round<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let p = if a.len() > 1 {
        to_long(arg(a, 1)).unwrap_or(0)
    } else {
        0
    };
    match arg(a, 0).clone().undyn() {
        v @ (Value::Int(_) | Value::Long(_)) if p >= 0 => v,
        v @ (Value::Int(_) | Value::Long(_) | Value::Real(_)) => {
            let x = to_real(&v).unwrap_or(f64::NAN);
            let r = if p >= 0 {
                let scale = 10f64.powi(p.min(300) as i32);
                (x * scale).round() / scale
            } else {
                let scale = 10f64.powi(p.saturating_neg().min(300) as i32);
                (x / scale).round() * scale
            };
            match v {
                Value::Int(_) => Value::Int(r as i32),
                Value::Long(_) => Value::Long(r as i64),
                _ => Value::Real(r),
            }
        }
        _ => Value::Null,
    }
}

fn extreme<'a>(a: &[Value<'a>], want: std::cmp::Ordering) -> Value<'a> {
    let mut best: Option<Value<'a>> = None;
    for v in a {
        let v = v.clone().undyn();
        if v.is_null() {
            continue;
        }
        best = match best {
            None => Some(v),
            Some(b) => {
                if crate::eval::compare(&v, &b) == Some(want) {
                    Some(v)
                } else {
                    Some(b)
                }
            }
        };
    }
    best.unwrap_or(Value::Null)
}
fn max_of<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    extreme(a, std::cmp::Ordering::Greater)
}
fn min_of<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    extreme(a, std::cmp::Ordering::Less)
}

fn bits<'a>(a: &[Value<'a>], f: fn(i64, i64) -> i64) -> Value<'a> {
    let x = to_long(arg(a, 0));
    let y = if a.len() > 1 {
        to_long(arg(a, 1))
    } else {
        Some(0)
    };
    opt(x.zip(y), |(x, y)| Value::Long(f(x, y)))
}
fn binary_and<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    bits(a, |x, y| x & y)
}
fn binary_or<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    bits(a, |x, y| x | y)
}
fn binary_xor<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    bits(a, |x, y| x ^ y)
}
fn binary_not<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    bits(a, |x, _| !x)
}
fn binary_shift_left<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    bits(a, |x, y| {
        if (0..64).contains(&y) {
            x.wrapping_shl(y as u32)
        } else {
            0
        }
    })
}
fn binary_shift_right<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    bits(a, |x, y| {
        if (0..64).contains(&y) {
            x.wrapping_shr(y as u32)
        } else {
            0
        }
    })
}

// ---- strings ----------------------------------------------------------------------------

fn base64_encode<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    owned(base64::engine::general_purpose::STANDARD.encode(text(a, 0).as_bytes()))
}

fn base64_decode<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let t = text(a, 0);
    let s = base64::engine::general_purpose::STANDARD
        .decode(t.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    owned(s.unwrap_or_default())
}

fn countof<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let (hay, needle) = (text(a, 0), text(a, 1));
    if needle.is_empty() {
        return Value::Long(0);
    }
    let mut n = 0;
    let mut from = 0;
    while let Some(p) = hay[from..].find(needle.as_ref()) {
        n += 1;
        from += p + hay[from + p..].chars().next().map_or(1, char::len_utf8);
    }
    Value::Long(n)
}

pub(crate) fn countof_regex<'a>(a: &[Value<'a>], re: Option<&Regex>) -> Value<'a> {
    match re {
        Some(re) => Value::Long(re.find_iter(&text(a, 0)).count() as i64),
        None => Value::Null,
    }
}

pub(crate) fn extract<'a>(a: &[Value<'a>], re: Option<&Regex>) -> Value<'a> {
    // Arguments after the regex: group, text, [typeof].
    let (Some(re), Some(group)) = (re, to_long(arg(a, 0))) else {
        return owned(String::new());
    };
    let t = text(a, 1);
    let found = usize::try_from(group).ok().and_then(|g| {
        re.captures(&t)
            .and_then(|c| c.get(g))
            .map(|m| m.as_str().to_string())
    });
    let ty = if a.len() > 2 {
        Type::from_name(&text(a, 2)).unwrap_or(Type::String)
    } else {
        Type::String
    };
    match found {
        Some(s) => crate::value::coerce(owned(s), ty),
        None if ty == Type::String => owned(String::new()),
        None => Value::Null,
    }
}

pub(crate) fn extract_all<'a>(a: &[Value<'a>], re: Option<&Regex>) -> Value<'a> {
    let Some(re) = re else { return Value::Null };
    let (groups, t) = if a.len() > 1 {
        let g: Option<Vec<usize>> = match arg(a, 0) {
            Value::Dynamic(d) => d.as_array().map(|arr| {
                arr.iter()
                    .filter_map(|x| x.as_u64().map(|v| v as usize))
                    .collect()
            }),
            _ => None,
        };
        (g, text(a, 1))
    } else {
        (None, text(a, 0))
    };
    let n_groups = re.captures_len() - 1;
    let groups: Vec<usize> = groups.unwrap_or_else(|| {
        if n_groups == 0 {
            vec![0]
        } else {
            (1..=n_groups).collect()
        }
    });
    let mut out = Vec::new();
    for caps in re.captures_iter(&t) {
        let item: Vec<Json> = groups
            .iter()
            .map(|g| {
                caps.get(*g)
                    .map_or(Json::Null, |m| Json::String(m.as_str().to_string()))
            })
            .collect();
        if groups.len() == 1 {
            out.extend(item);
        } else {
            out.push(Json::Array(item));
        }
    }
    if out.is_empty() {
        Value::Null
    } else {
        dynamic(Json::Array(out))
    }
}

pub(crate) fn replace_regex<'a>(a: &[Value<'a>], re: Option<&Regex>) -> Value<'a> {
    let Some(re) = re else {
        return owned(String::new());
    };
    let (rewrite, t) = (text(a, 0), text(a, 1));
    // Kusto writes groups as \1; the regex crate as ${1}.
    let mut rep = String::new();
    let mut chars = rewrite.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                rep.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    rep.push(d);
                    chars.next();
                }
                rep.push('}');
            }
            '$' => rep.push_str("$$"),
            c => rep.push(c),
        }
    }
    owned(re.replace_all(&t, rep.as_str()).into_owned())
}

fn replace_string<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let (t, lookup, rewrite) = (text(a, 0), text(a, 1), text(a, 2));
    if lookup.is_empty() {
        return owned(t.into_owned());
    }
    owned(t.replace(lookup.as_ref(), &rewrite))
}

fn indexof<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    if a.iter().any(Value::is_null) {
        return Value::Null;
    }
    let hay: Vec<char> = text(a, 0).chars().collect();
    let needle: Vec<char> = text(a, 1).chars().collect();
    let len = hay.len() as i64;
    let mut start = if a.len() > 2 {
        to_long(arg(a, 2)).unwrap_or(0)
    } else {
        0
    };
    let length = if a.len() > 3 {
        to_long(arg(a, 3)).unwrap_or(-1)
    } else {
        -1
    };
    let occurrence = if a.len() > 4 {
        to_long(arg(a, 4)).unwrap_or(1)
    } else {
        1
    };
    if start < 0 {
        start = len.saturating_add(start).max(0);
    }
    if start > len || length < -1 || occurrence < 1 {
        return Value::Long(-1);
    }
    let mut pos = start;
    let mut found = 0;
    loop {
        let end = if length == -1 {
            len
        } else {
            pos.saturating_add(length).min(len)
        };
        let n = needle.len() as i64;
        let hit =
            (pos..=end - n).find(|&i| i >= 0 && hay[i as usize..(i + n) as usize] == needle[..]);
        match hit {
            Some(i) => {
                found += 1;
                if found == occurrence {
                    return Value::Long(i);
                }
                pos = i + 1;
            }
            None => return Value::Long(-1),
        }
    }
}

fn is_empty_value(v: &Value<'_>) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Dynamic(d) => matches!(&**d, Json::Null) || d.as_str().is_some_and(str::is_empty),
        _ => false,
    }
}

fn isempty<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    Value::Bool(is_empty_value(arg(a, 0)))
}
fn isnotempty<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    Value::Bool(!is_empty_value(arg(a, 0)))
}
fn isnull<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    Value::Bool(arg(a, 0).is_null())
}
fn isnotnull<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    Value::Bool(!arg(a, 0).is_null())
}

fn split<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let (t, d) = (text(a, 0), text(a, 1));
    let parts: Vec<Json> = if d.is_empty() {
        vec![Json::String(t.to_string())]
    } else {
        t.split(d.as_ref())
            .map(|p| Json::String(p.to_string()))
            .collect()
    };
    if a.len() > 2 {
        let Some(i) = to_long(arg(a, 2)) else {
            return Value::Null;
        };
        return match usize::try_from(i).ok().and_then(|i| parts.get(i)) {
            Some(p) => dynamic(Json::Array(vec![p.clone()])),
            None => dynamic(Json::Array(Vec::new())),
        };
    }
    dynamic(Json::Array(parts))
}

fn strcat<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let mut s = String::new();
    for v in a {
        s.push_str(&v.to_kusto_string());
    }
    owned(s)
}

fn strcat_delim<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let d = text(a, 0);
    let parts: Vec<Cow<'_, str>> = a[1..].iter().map(Value::to_kusto_string).collect();
    owned(parts.join(d.as_ref()))
}

fn strlen<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    Value::Long(text(a, 0).chars().count() as i64)
}

fn substring<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let t = text(a, 0);
    let chars: Vec<char> = t.chars().collect();
    let len = chars.len() as i64;
    let Some(mut start) = to_long(arg(a, 1)) else {
        return owned(String::new());
    };
    if start < 0 {
        start = len.saturating_add(start).max(0);
    }
    let start = start.min(len);
    let count = if a.len() > 2 {
        to_long(arg(a, 2)).unwrap_or(len)
    } else {
        len
    };
    let end = start.saturating_add(count.max(0)).min(len);
    owned(chars[start as usize..end as usize].iter().collect())
}

fn tolower<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    owned(text(a, 0).to_lowercase())
}
fn toupper<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    owned(text(a, 0).to_uppercase())
}

fn trim<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let (pat, t) = (text(a, 0), text(a, 1));
    let Ok(re) = Regex::new(&format!("^(?:{pat})+|(?:{pat})+$")) else {
        return owned(t.into_owned());
    };
    owned(re.replace_all(&t, "").into_owned())
}

fn hash_sha256<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(text(a, 0).as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    owned(s)
}

// ---- the query dialect's functions --------------------------------------------------------

/// Functions only the query dialect knows (the transformation dialect keeps refusing them).
pub(crate) const QUERY_NAMES: &[&str] = &[
    "coalesce",
    "ipv4_is_private",
    "ipv4_is_in_range",
    "parse_url",
    "parse_urlquery",
    "arraylength",
];

/// A query-dialect builtin called `name`.
pub(crate) fn lookup_query(name: &str) -> Option<Spec> {
    use Type::*;
    let s = |f: Builtin, min, max, ret_kind| {
        Some(Spec {
            f,
            min,
            max,
            ret_kind,
        })
    };
    match name {
        "coalesce" => s(coalesce, 1, MANY, Ret::Arg0),
        "ipv4_is_private" => s(ipv4_is_private, 1, 1, Ret::Fixed(Bool)),
        "ipv4_is_in_range" => s(ipv4_is_in_range, 2, 2, Ret::Fixed(Bool)),
        "parse_url" => s(parse_url, 1, 1, Ret::Fixed(Dynamic)),
        "parse_urlquery" => s(parse_urlquery, 1, 1, Ret::Fixed(Dynamic)),
        "arraylength" => s(array_length, 1, 1, Ret::Fixed(Long)),
        _ => None,
    }
}

/// `x has_any (a, b, ...)`: the first argument is the text, the others the terms (a dynamic
/// array gives each of its items).
pub(crate) fn has_any<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    Value::Bool(has_terms(a, false))
}

/// `x has_all (a, b, ...)`.
pub(crate) fn has_all<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    Value::Bool(has_terms(a, true))
}

fn has_terms(a: &[Value<'_>], all: bool) -> bool {
    let hay = text(a, 0);
    let mut terms: Vec<Cow<'_, str>> = Vec::new();
    for v in a.iter().skip(1) {
        match v {
            Value::Dynamic(d) if d.is_array() => {
                if let Json::Array(items) = &**d {
                    terms.extend(items.iter().map(|j| match j {
                        Json::String(s) => Cow::Borrowed(s.as_str()),
                        other => Cow::Owned(json_scalar(other).to_kusto_string().into_owned()),
                    }));
                }
            }
            v => terms.push(v.to_kusto_string()),
        }
    }
    let mut hits = terms
        .iter()
        .map(|t| str_match(StrKind::Has, false, &hay, t));
    if all {
        hits.all(|h| h)
    } else {
        hits.any(|h| h)
    }
}

fn coalesce<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    a.iter()
        .find(|v| !is_empty_value(v))
        .cloned()
        .unwrap_or_else(|| match a.first() {
            Some(Value::String(_)) => Value::String(Cow::Borrowed("")),
            _ => Value::Null,
        })
}

/// An IPv4 address with an optional `/prefix` (the prefix defaults to 32).
fn ipv4_prefix(s: &str) -> Option<(u32, u32)> {
    let s = s.trim();
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, p)) => (ip, p.trim().parse::<u32>().ok().filter(|p| *p <= 32)?),
        None => (s, 32),
    };
    let ip: std::net::Ipv4Addr = ip.trim().parse().ok()?;
    Some((u32::from(ip), prefix))
}

fn mask(prefix: u32) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

fn ipv4_is_private<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let Some((ip, prefix)) = ipv4_prefix(&text(a, 0)) else {
        return Value::Null;
    };
    let ip = ip & mask(prefix);
    // RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16.
    let private = [(0x0a00_0000u32, 8u32), (0xac10_0000, 12), (0xc0a8_0000, 16)]
        .iter()
        .any(|(net, bits)| prefix >= *bits && ip & mask(*bits) == *net);
    Value::Bool(private)
}

fn ipv4_is_in_range<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let (Some((ip, _)), Some((net, bits))) = (ipv4_prefix(&text(a, 0)), ipv4_prefix(&text(a, 1)))
    else {
        return Value::Null;
    };
    Value::Bool(ip & mask(bits) == net & mask(bits))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        if b[k] == b'%'
            && let Some(h) = s.get(k + 1..k + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            k += 3;
            continue;
        }
        out.push(if b[k] == b'+' { b' ' } else { b[k] });
        k += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_parameters(q: &str) -> Json {
    let mut m = serde_json::Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.insert(percent_decode(k), Json::String(percent_decode(v)));
    }
    Json::Object(m)
}

fn parse_urlquery<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let t = text(a, 0);
    let q = t.strip_prefix('?').unwrap_or(&t);
    let mut m = serde_json::Map::new();
    m.insert("Query Parameters".into(), query_parameters(q));
    dynamic(Json::Object(m))
}

/// `parse_url`: scheme, host, port, path, user name, password, query parameters and fragment
/// of an absolute URL; every part empty when the text is not one.
fn parse_url<'a>(a: &[Value<'a>], _: Option<&Regex>) -> Value<'a> {
    let t = text(a, 0);
    let mut parts: [(&str, String); 7] = [
        ("Scheme", String::new()),
        ("Host", String::new()),
        ("Port", String::new()),
        ("Path", String::new()),
        ("Username", String::new()),
        ("Password", String::new()),
        ("Fragment", String::new()),
    ];
    let mut params = Json::Object(serde_json::Map::new());
    if let Some((scheme, rest)) = t.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(p) => (&rest[..p], &rest[p..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (u, h),
            None => ("", authority),
        };
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let (host, port) = if let Some(end) = hostport.strip_prefix('[').and_then(|h| h.find(']')) {
            let host = &hostport[1..=end];
            let port = hostport[end + 2..].strip_prefix(':').unwrap_or("");
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p),
                _ => (hostport, ""),
            }
        };
        for (slot, v) in parts
            .iter_mut()
            .zip([scheme, host, port, path, user, password, fragment])
        {
            slot.1 = v.to_string();
        }
        params = query_parameters(query);
    }
    let mut m = serde_json::Map::new();
    for (k, v) in parts.iter().take(6) {
        m.insert((*k).into(), Json::String(v.clone()));
    }
    m.insert("Query Parameters".into(), params);
    m.insert("Fragment".into(), Json::String(parts[6].1.clone()));
    dynamic(Json::Object(m))
}
