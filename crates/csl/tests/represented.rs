//! Property: for any event from `mcas-cef`'s encoder, every extension pair is
//! represented exactly once: in its column(s) or in `AdditionalExtensions`,
//! never both, never neither. A key with two target columns (`externalId`,
//! `cnN`) counts once. For a repeated key the last value wins its column and
//! the earlier ones go to `AdditionalExtensions` (with
//! `keep_duplicates`) or are reported as dropped (the default).
//!
//! The oracle below is written from the spec's key table, not from the
//! mapper's code.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use mcas_csl::{ColumnType, Context, Mapper, MappingRules, TimeGeneratedPolicy, Warning};
use proptest::prelude::*;
use serde_json::Value;

/// (key, column, column type, legacy int column): the keys the generator uses.
const MAPPED: &[(&str, &str, ColumnType, Option<&str>)] = &[
    ("act", "DeviceAction", ColumnType::String, None),
    ("msg", "Message", ColumnType::String, None),
    ("suser", "SourceUserName", ColumnType::String, None),
    ("src", "SourceIP", ColumnType::String, None),
    ("sourceAddress", "SourceIP", ColumnType::String, None),
    ("cs1", "DeviceCustomString1", ColumnType::String, None),
    (
        "deviceCustomString1",
        "DeviceCustomString1",
        ColumnType::String,
        None,
    ),
    (
        "cs1Label",
        "DeviceCustomString1Label",
        ColumnType::String,
        None,
    ),
    ("cat", "DeviceEventCategory", ColumnType::String, None),
    ("outcome", "EventOutcome", ColumnType::String, None),
    ("rt", "ReceiptTime", ColumnType::String, None),
    ("flexDate1", "FlexDate1", ColumnType::String, None),
    ("spt", "SourcePort", ColumnType::Int, None),
    ("cnt", "EventCount", ColumnType::Int, None),
    ("flexNumber1", "FlexNumber1", ColumnType::Int, None),
    ("in", "ReceivedBytes", ColumnType::Long, None),
    ("bytesIn", "ReceivedBytes", ColumnType::Long, None),
    ("out", "SentBytes", ColumnType::Long, None),
    ("cfp1", "DeviceCustomFloatingPoint1", ColumnType::Real, None),
    ("start", "StartTime", ColumnType::Datetime, None),
    ("end", "EndTime", ColumnType::Datetime, None),
    (
        "externalId",
        "ExtID",
        ColumnType::String,
        Some("ExternalID"),
    ),
    (
        "cn1",
        "FieldDeviceCustomNumber1",
        ColumnType::Long,
        Some("DeviceCustomNumber1"),
    ),
    (
        "cn2",
        "FieldDeviceCustomNumber2",
        ColumnType::Long,
        Some("DeviceCustomNumber2"),
    ),
];

/// Keys with no column of their own (unless the rules give one).
const UNMAPPED: &[&str] = &[
    "ad.srccountry",
    "eventId",
    "agt",
    "custom_key",
    "x1",
    "a[0]",
];

/// The routes added by the rules in the `with_rules` runs.
const RULES: &[(&str, &str, ColumnType)] = &[
    ("custom_key", "Custom_CF", ColumnType::String),
    ("x1", "X1_CF", ColumnType::Long),
    ("eventId", "DeviceCustomString6", ColumnType::String),
];

fn rules(with_routes: bool, keep_duplicates: bool) -> MappingRules {
    let mut r = MappingRules::new();
    if with_routes {
        for (key, column, ty) in RULES {
            r.map_key_as(key, column, Some(*ty)).unwrap();
        }
    }
    r.set_keep_duplicates(keep_duplicates);
    r
}

/// Where a key goes: (column, type, legacy int column).
fn target(
    key: &str,
    with_routes: bool,
) -> Option<(&'static str, ColumnType, Option<&'static str>)> {
    if with_routes && let Some((_, c, t)) = RULES.iter().find(|(k, _, _)| *k == key) {
        return Some((c, *t, None));
    }
    MAPPED
        .iter()
        .find(|(k, _, _, _)| *k == key)
        .map(|(_, c, t, l)| (*c, *t, *l))
}

fn strict_int(v: &str) -> Option<i64> {
    let d = v.strip_prefix('-').unwrap_or(v);
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// The JSON a value converts to in a column of type `ty`, or `None` when it
/// does not convert. Dates use `mcas-cef`'s own reader (the pair is the last
/// of its key, which is what `get_timestamp` reads).
fn converted(ty: ColumnType, key: &str, v: &str, event: &mcas_cef::Event<'_>) -> Option<Value> {
    match ty {
        ColumnType::String => Some(Value::from(v)),
        ColumnType::Int => strict_int(v)
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Value::from),
        ColumnType::Long => strict_int(v).map(Value::from),
        ColumnType::Real => {
            let numeric = v
                .bytes()
                .all(|b| b.is_ascii_digit() || b"-.eE+".contains(&b))
                && v.starts_with(|c: char| c.is_ascii_digit() || c == '-');
            v.parse::<f64>()
                .ok()
                .filter(|f| numeric && f.is_finite())
                .map(Value::from)
        }
        ColumnType::Datetime => {
            let ctx = mcas_cef::DateContext::new(jiff::Timestamp::UNIX_EPOCH);
            let ts = event.get_timestamp(key, &ctx)?;
            let year = jiff::tz::Offset::UTC.to_datetime(ts).year();
            if !(1..=9999).contains(&year) {
                return None;
            }
            // The calendar time, with its fraction cut to milliseconds.
            Some(Value::from(
                ts.strftime("%Y-%m-%dT%H:%M:%S.%3fZ").to_string(),
            ))
        }
        _ => unreachable!(),
    }
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z][a-zA-Z0-9 ,.:/=_\\\\-]{0,16}",
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (-100_000i64..100_000).prop_map(|n| n.to_string()),
        1 => (0i64..4_102_444_800_000).prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        1 => Just(String::new()),
    ]
}

fn key_strategy() -> impl Strategy<Value = String> {
    let keys: Vec<&'static str> = MAPPED
        .iter()
        .map(|(k, _, _, _)| *k)
        .chain(UNMAPPED.iter().copied())
        .collect();
    proptest::sample::select(keys).prop_map(str::to_owned)
}

fn event_line() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((key_strategy(), value_strategy()), 0..14).prop_map(|pairs| {
        let mut b = mcas_cef::EventBuilder::new()
            .device_vendor("V")
            .device_product("P")
            .device_version("1")
            .device_event_class_id("id")
            .name("n")
            .severity("5");
        for (k, v) in pairs {
            b.push_extension(k, v);
        }
        let mut out = Vec::new();
        b.build().encode(&mut out).unwrap();
        out
    })
}

/// Checks the property for one line; returns a description of the first violation.
fn check(line: &[u8], with_routes: bool, keep_duplicates: bool) -> Result<(), String> {
    let event = mcas_cef::parse(line).map_err(|e| format!("parse: {e}"))?;
    let rules = rules(with_routes, keep_duplicates);
    let mapper = Mapper::new(rules.clone(), TimeGeneratedPolicy::ReceiveTime);
    let ctx = Context::new(jiff::Timestamp::UNIX_EPOCH);
    let mapped = mapper.map(&event, &ctx);
    let row = common::row_json(&mapped.row);
    common::check_against_schema(&row, &mcas_csl::columns_with(&rules))?;

    let pairs: Vec<(&str, &str)> = event.extensions().collect();
    let mut expected_extra = Vec::new();
    let mut expected_columns = serde_json::Map::new();
    let mut failures = 0;
    let mut dropped = 0;
    for (i, &(key, value)) in pairs.iter().enumerate() {
        let Some((column, ty, legacy)) = target(key, with_routes) else {
            expected_extra.push(format!("{key}={value}"));
            continue;
        };
        let later = pairs[i + 1..]
            .iter()
            .any(|(k, _)| target(k, with_routes).is_some_and(|t| t.0 == column));
        if later {
            if keep_duplicates {
                expected_extra.push(format!("{key}={value}"));
            } else {
                dropped += 1;
            }
            continue;
        }
        if value.is_empty() {
            continue;
        }
        match converted(ty, key, value, &event) {
            Some(json) => {
                expected_columns.insert(column.to_owned(), json);
                if let Some(legacy) = legacy
                    && let Some(n) = strict_int(value).filter(|n| i32::try_from(*n).is_ok())
                {
                    expected_columns.insert(legacy.to_owned(), Value::from(n));
                }
            }
            None => {
                failures += 1;
                expected_extra.push(format!("{key}={value}"));
            }
        }
    }

    // AdditionalExtensions: exactly the pairs expected there, in input order.
    let want_extra = (!expected_extra.is_empty()).then(|| expected_extra.join(";"));
    let got_extra = row
        .get("AdditionalExtensions")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if got_extra != want_extra {
        return Err(format!(
            "AdditionalExtensions {got_extra:?}, want {want_extra:?}"
        ));
    }
    // The columns: exactly the converted winners, nothing else.
    let fixed = [
        "TimeGenerated",
        "DeviceVendor",
        "DeviceProduct",
        "DeviceVersion",
        "DeviceEventClassID",
        "Activity",
        "LogSeverity",
        "SourceSystem",
        "AdditionalExtensions",
    ];
    let got_columns: serde_json::Map<String, Value> = row
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !fixed.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if got_columns != expected_columns {
        return Err(format!(
            "columns {got_columns:?}, want {expected_columns:?}"
        ));
    }
    // The warnings say what happened.
    let count = |f: fn(&Warning<'_>) -> bool| mapped.warnings.iter().filter(|w| f(w)).count();
    let got_failures = count(|w| matches!(w, Warning::ConversionFailed { .. }));
    let got_dropped = count(|w| matches!(w, Warning::DuplicateDropped { .. }));
    if (got_failures, got_dropped) != (failures, dropped)
        || mapped.warnings.len() != failures + dropped
    {
        return Err(format!(
            "warnings {:?}, want {failures} conversion failures and {dropped} dropped",
            mapped.warnings
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_pair_is_represented_once_keeping_duplicates(line in event_line(), routes in any::<bool>()) {
        if let Err(e) = check(&line, routes, true) {
            prop_assert!(false, "{}\n{}", String::from_utf8_lossy(&line), e);
        }
    }

    #[test]
    fn every_pair_is_represented_once_or_reported_dropped(line in event_line(), routes in any::<bool>()) {
        if let Err(e) = check(&line, routes, false) {
            prop_assert!(false, "{}\n{}", String::from_utf8_lossy(&line), e);
        }
    }
}

#[test]
fn the_oracle_sees_the_cases_it_is_meant_to() {
    // Hand-picked lines for each branch of the oracle, so a broken generator
    // cannot make the property vacuous.
    let lines: &[&[u8]] = &[
        b"CEF:0|V|P|1|id|n|5|spt=1 spt=http src=a sourceAddress=b x1=7 x1=q",
        b"CEF:0|V|P|1|id|n|5|externalId=12 cn1=99999999999 cn2=x start=1.5 end=abc",
        b"CEF:0|V|P|1|id|n|5|cfp1=1e3 in= eventId=e custom_key=c a[0]=z",
    ];
    for line in lines {
        for routes in [false, true] {
            for keep in [false, true] {
                check(line, routes, keep).unwrap();
            }
        }
    }
    let event = mcas_cef::parse(lines[0]).unwrap();
    let mapper = Mapper::new(rules(false, true), TimeGeneratedPolicy::ReceiveTime);
    let row = mapper
        .map(&event, &Context::new(jiff::Timestamp::UNIX_EPOCH))
        .row;
    assert_eq!(row.source_port, None);
    assert_eq!(row.source_ip.as_deref(), Some("b"));
    assert_eq!(
        row.additional_extensions.as_deref(),
        Some("spt=1;spt=http;src=a;x1=7;x1=q")
    );
}
