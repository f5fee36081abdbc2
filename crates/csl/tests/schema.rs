//! The code against the spec's tables (copied into `tests/data/`): the column
//! list and types, and Microsoft's key → column table.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::collections::BTreeSet;

use mcas_csl::{ColumnType, Context, MappingRules, columns};
use serde_json::Value;

const COLUMN_TABLE: &str = include_str!("data/commonsecuritylog-columns.md");
const KEY_TABLE: &str = include_str!("data/commonsecuritylog-key-map.md");

fn azure_type(s: &str) -> ColumnType {
    match s {
        "string" => ColumnType::String,
        "int" => ColumnType::Int,
        "long" => ColumnType::Long,
        "real" => ColumnType::Real,
        "datetime" => ColumnType::Datetime,
        other => panic!("unknown type {other}"),
    }
}

fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

/// The numbered rows of the spec's column table: (name, type) in schema order.
fn spec_columns() -> Vec<(String, ColumnType)> {
    COLUMN_TABLE
        .lines()
        .map(cells)
        .filter(|c| c.len() == 4 && c[0].parse::<u32>().is_ok())
        .map(|c| (c[1].to_owned(), azure_type(c[2])))
        .collect()
}

/// Expands the spec's shorthand: `c6a1..c6a4`, `DeviceCustomNumber1..3`,
/// `DeviceCustomIPv6Address1..4Label`, `flexString1/2 (+Label)`,
/// `flexDate1 (+Label)`; drops trailing remarks in parentheses.
fn expand(cell: &str) -> Vec<String> {
    let mut out = Vec::new();
    for alt in cell.split(" / ") {
        let plus_label = alt.contains("(+Label)");
        let token = alt.split_whitespace().next().unwrap_or("");
        let mut names = Vec::new();
        if let Some((left, right)) = token.split_once("..") {
            // left = prefix + digit (+ suffix); right = [prefix] digit [suffix].
            let digit_at = left.rfind(|c: char| c.is_ascii_digit()).unwrap();
            let (prefix, rest) = left.split_at(digit_at);
            let suffix = &rest[1..];
            let from: u32 = rest[..1].parse().unwrap();
            let right = right.strip_prefix(prefix).unwrap_or(right);
            let to: u32 = right[..1].parse().unwrap();
            let suffix = if suffix.is_empty() {
                &right[1..]
            } else {
                suffix
            };
            for n in from..=to {
                names.push(format!("{prefix}{n}{suffix}"));
            }
        } else if let Some((left, right)) = token.split_once('/') {
            let prefix = left.trim_end_matches(|c: char| c.is_ascii_digit());
            names.push(left.to_owned());
            names.push(format!("{prefix}{right}"));
        } else {
            names.push(token.to_owned());
        }
        for n in names {
            if plus_label {
                out.push(format!("{n}Label"));
            }
            out.push(n);
        }
    }
    out
}

/// The extension-key rows of the spec's key table, expanded:
/// (key, columns) with the columns in the order written.
fn spec_keys() -> Vec<(String, Vec<String>)> {
    let body = KEY_TABLE
        .split("Extension keys")
        .nth(1)
        .expect("extension key table");
    let mut out = Vec::new();
    for line in body.lines() {
        let c = cells(line);
        if c.len() != 4 || c[0] == "CEF key" || c[0].starts_with("---") {
            continue;
        }
        for pair in [(c[0], c[1]), (c[2], c[3])] {
            if pair.0.is_empty() {
                continue;
            }
            let keys = expand(pair.0);
            let alternatives: Vec<Vec<String>> = pair.1.split(" / ").map(expand).collect();
            for (i, key) in keys.iter().enumerate() {
                let cols = alternatives
                    .iter()
                    .map(|a| {
                        if a.len() == keys.len() {
                            a[i].clone()
                        } else {
                            assert_eq!(a.len(), 1, "{line}");
                            a[0].clone()
                        }
                    })
                    .collect();
                out.push((key.clone(), cols));
            }
        }
    }
    out
}

fn column_type(name: &str) -> ColumnType {
    columns()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("{name} is not a column"))
}

/// A value that converts to the type, and its expected JSON.
fn sample(ty: ColumnType, key: &str) -> (String, Value) {
    match ty {
        ColumnType::Int | ColumnType::Long => ("7".into(), Value::from(7)),
        ColumnType::Real => ("1.5".into(), Value::from(1.5)),
        ColumnType::Datetime => (
            "1511373004000".into(),
            Value::from("2017-11-22T17:50:04.000Z"),
        ),
        _ => (format!("v {key}"), Value::from(format!("v {key}"))),
    }
}

fn map_json(extension: &str, rules: &MappingRules) -> Value {
    let line = format!("CEF:0|Vendor|Product|1.0|id|name|5|{extension}");
    let event = mcas_cef::parse(line.as_bytes()).unwrap();
    let ctx = Context::new(jiff::Timestamp::UNIX_EPOCH);
    let mapper = mcas_csl::Mapper::new(rules.clone(), mcas_csl::TimeGeneratedPolicy::default());
    common::row_json(&mapper.map(&event, &ctx).row)
}

/// Members of a row that are not filled from the header or the context.
fn extension_columns(row: &Value) -> BTreeSet<String> {
    const FIXED: [&str; 9] = [
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
    row.as_object()
        .unwrap()
        .keys()
        .filter(|k| !FIXED.contains(&k.as_str()))
        .cloned()
        .collect()
}

#[test]
fn columns_are_the_spec_table_in_order_with_types() {
    let spec = spec_columns();
    assert_eq!(spec.len(), 157);
    let ours: Vec<(String, ColumnType)> = columns()
        .iter()
        .map(|(n, t)| ((*n).to_owned(), *t))
        .collect();
    assert_eq!(ours, spec);
    let names: BTreeSet<&str> = columns().iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), 157, "no column twice");
}

#[test]
fn every_spec_key_fills_its_columns() {
    let keys = spec_keys();
    // 81 single keys + c6a (8) + cfp (8) + cn (6) + cs (12) + deviceCustomDate (4)
    // + flexString/flexNumber (8) + flexDate (2).
    assert_eq!(keys.len(), 129, "{keys:?}");
    for (key, cols) in &keys {
        // The last alternative is the post-2023 column (`ExtID`,
        // `FieldDeviceCustomNumberN`); the sample is of its type.
        let primary = cols.last().unwrap();
        let (raw, want) = sample(column_type(primary), key);
        let row = map_json(&format!("{key}={raw}"), &MappingRules::new());
        let mut want_cols = BTreeSet::new();
        for col in cols {
            if col == "ExternalID" {
                // The sample `v externalId` is no int: the legacy column stays empty.
                assert!(row.get(col).is_none(), "{row}");
                continue;
            }
            assert_eq!(row.get(col), Some(&want), "{key} → {col}: {row}");
            want_cols.insert(col.clone());
        }
        assert_eq!(extension_columns(&row), want_cols, "{key}");
        assert!(row.get("AdditionalExtensions").is_none(), "{key}: {row}");
    }
    // externalId: ExtID always, ExternalID when it fits an i32.
    let row = map_json("externalId=12345", &MappingRules::new());
    assert_eq!(
        (&row["ExtID"], &row["ExternalID"]),
        (&Value::from("12345"), &Value::from(12345))
    );
    let row = map_json("externalId=4294967296", &MappingRules::new());
    assert_eq!(row["ExtID"], "4294967296");
    assert!(row.get("ExternalID").is_none());
    // cnN: FieldDeviceCustomNumberN always, DeviceCustomNumberN when it fits.
    let row = map_json("cn2=4294967297", &MappingRules::new());
    assert_eq!(row["FieldDeviceCustomNumber2"], 4_294_967_297_i64);
    assert!(row.get("DeviceCustomNumber2").is_none());
}

#[test]
fn dictionary_keys_outside_the_table_go_to_additional_extensions() {
    let spec: BTreeSet<String> = spec_keys().into_iter().map(|(k, _)| k).collect();
    let mut checked = 0;
    for def in mcas_cef::dictionary::all() {
        if spec.contains(def.short) {
            // A full name counts as its short name (our choice; see the crate docs).
            if def.full != def.short && !def.full.contains(' ') {
                let short = map_json(&format!("{}=1", def.short), &MappingRules::new());
                let full = map_json(&format!("{}=1", def.full), &MappingRules::new());
                assert_eq!(
                    extension_columns(&short),
                    extension_columns(&full),
                    "{}",
                    def.full
                );
            }
            continue;
        }
        let row = map_json(&format!("{}=x", def.short), &MappingRules::new());
        assert_eq!(row["AdditionalExtensions"], format!("{}=x", def.short));
        assert!(extension_columns(&row).is_empty(), "{}: {row}", def.short);
        checked += 1;
    }
    assert!(checked > 40, "{checked}");
}

#[test]
fn a_row_with_every_key_serialises_in_schema_order_with_declared_types() {
    let mut ext = String::new();
    for (key, cols) in spec_keys() {
        let (mut raw, _) = sample(column_type(cols.last().unwrap()), &key);
        if key == "externalId" {
            raw = "12345".into(); // fills ExternalID too
        }
        ext.push_str(&format!("{key}={raw} "));
    }
    ext.push_str("unmapped=1 also.unmapped=two");
    let mut rules = MappingRules::new();
    rules
        .map_key_as("also.unmapped", "Also_CF", Some(ColumnType::String))
        .unwrap();
    let line = format!("CEF:0|Vendor|Product|1.0|id|name|5|{ext}");
    let event = mcas_cef::parse(line.as_bytes()).unwrap();
    let ctx = Context::new(jiff::Timestamp::UNIX_EPOCH)
        .with_computer(Some("host"))
        .with_collector_host_name(Some("collector"));
    let mapper = mcas_csl::Mapper::new(rules.clone(), Default::default());
    let mapped = mapper.map(&event, &ctx);
    assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
    let text = serde_json::to_string(&mapped.row).unwrap();
    let row: Value = serde_json::from_str(&text).unwrap();
    common::check_against_schema(&row, &mcas_csl::columns_with(&rules)).unwrap();
    assert_eq!(row["AdditionalExtensions"], "unmapped=1");
    assert_eq!(row["Also_CF"], "two");
    assert_eq!(row["Computer"], "host");
    assert_eq!(row["CollectorHostName"], "collector");
    // Members appear in schema order, custom columns last.
    let order = mcas_csl::columns_with(&rules);
    let positions: Vec<usize> = row_keys_in_text_order(&text)
        .iter()
        .map(|k| order.iter().position(|(n, _)| n == k).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // Every column that has a CEF source is set (all but the computed and
    // enrichment columns).
    let unset: Vec<&str> = columns()
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| row.get(*n).is_none())
        .collect();
    assert_eq!(
        unset,
        [
            "OriginalLogSeverity",
            "RemoteIP",
            "RemotePort",
            "MaliciousIP",
            "ThreatSeverity",
            "IndicatorThreatType",
            "ThreatDescription",
            "ThreatConfidence",
            "ReportReferenceLink",
            "MaliciousIPLongitude",
            "MaliciousIPLatitude",
            "MaliciousIPCountry",
            "SimplifiedDeviceAction",
        ]
    );
}

/// The member names of a flat JSON object in the order they are written.
fn row_keys_in_text_order(text: &str) -> Vec<String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let ordered: OrderedKeys = serde::Deserialize::deserialize(&mut de).unwrap();
    ordered.0
}

struct OrderedKeys(Vec<String>);

impl<'de> serde::Deserialize<'de> for OrderedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<OrderedKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(OrderedKeys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

#[test]
fn columns_with_appends_the_custom_columns() {
    let mut rules = MappingRules::new();
    rules.map_key("a", "A_CF").unwrap();
    rules
        .map_label_as("risk", "Risk_CF", Some(ColumnType::Real))
        .unwrap();
    rules.map_key("b", "DeviceCustomString6").unwrap();
    let cols = mcas_csl::columns_with(&rules);
    assert_eq!(cols.len(), 159);
    assert_eq!(
        &cols[157..],
        &[
            ("A_CF".to_owned(), ColumnType::String),
            ("Risk_CF".to_owned(), ColumnType::Real)
        ]
    );
    assert_eq!(
        columns()
            .iter()
            .map(|(_, t)| t.as_azure_str())
            .collect::<BTreeSet<_>>(),
        ["datetime", "int", "long", "real", "string"]
            .into_iter()
            .collect()
    );
}
