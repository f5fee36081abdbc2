//! Arbitrary bytes → syslog parse → CEF parse → `mcas_csl` map → `serde_json`.
//!
//! Never panics; the crate's `write_json` gives the same bytes as `serde_json`;
//! the output is valid JSON whose every member is a declared
//! column holding a value of that column's type. Messages without CEF go
//! through `map_syslog` with the same checks. The first byte picks the
//! mapper: default, or rules (custom columns, a label route, a dropped key, a
//! small size cap, kept duplicates) with an `rt` or `start` TimeGenerated.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcas_csl::{ColumnType, Context, Mapper, MappingRules, TimeGeneratedPolicy};
use serde_json::Value;

fn mappers() -> &'static [(Mapper, Vec<(String, ColumnType)>)] {
    static MAPPERS: OnceLock<Vec<(Mapper, Vec<(String, ColumnType)>)>> = OnceLock::new();
    MAPPERS.get_or_init(|| {
        let mut rules = MappingRules::new();
        rules
            .map_key("ad.srccountry", "SrcCountry_CF")
            .and_then(|r| r.map_key_as("x", "X_CF", Some(ColumnType::Long)))
            .and_then(|r| r.map_key_as("d", "D_CF", Some(ColumnType::Datetime)))
            .and_then(|r| r.map_key_as("f", "F_CF", Some(ColumnType::Real)))
            .and_then(|r| r.map_key_as("b", "B_CF", Some(ColumnType::Boolean)))
            .and_then(|r| r.map_key("eventId", "DeviceCustomString6"))
            .and_then(|r| r.map_label("targetObjects", "Targets_CF"))
            .and_then(|r| r.map_label_as("riskScore", "Risk_CF", Some(ColumnType::Int)))
            .expect("valid rules");
        rules
            .drop_key("rawEvent")
            .set_max_field_bytes(16)
            .set_keep_duplicates(true);
        [
            Mapper::default(),
            Mapper::new(rules.clone(), TimeGeneratedPolicy::Rt),
            Mapper::new(rules, TimeGeneratedPolicy::Start),
        ]
        .into_iter()
        .map(|m| {
            let cols = m.columns();
            (m, cols)
        })
        .collect()
    })
}

fn check(json: &[u8], columns: &[(String, ColumnType)]) {
    let value: Value = serde_json::from_slice(json).expect("valid JSON");
    let obj = value.as_object().expect("an object");
    for (name, v) in obj {
        let ty = columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("{name} is not a declared column"));
        let ok = match ty {
            ColumnType::String => v.is_string(),
            ColumnType::Int => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            ColumnType::Long => v.as_i64().is_some(),
            ColumnType::Real => v.as_f64().is_some_and(f64::is_finite),
            ColumnType::Datetime => v.as_str().is_some_and(|s| {
                s.len() == 24 && s.ends_with('Z') && s.parse::<jiff::Timestamp>().is_ok()
            }),
            ColumnType::Boolean => v.is_boolean(),
            _ => false,
        };
        assert!(ok, "{name} = {v} is not a valid {ty}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let Ok(msg) = mcas_syslog::parse(data) else {
        return;
    };
    let received = jiff::Timestamp::from_second(1_700_000_000).expect("valid instant");
    let ctx = Context::new(received)
        .with_computer(msg.hostname())
        .with_host_ip(Some([192, 0, 2, 1].into()));
    let (mapper, columns) = &mappers()[usize::from(selector) % 3];
    let mut out = Vec::new();
    match mcas_cef::parse(msg.msg()) {
        Ok(event) => {
            let mapped = mapper.map(&event, &ctx);
            for w in &mapped.warnings {
                assert!(!w.to_string().is_empty());
            }
            serde_json::to_writer(&mut out, &mapped.row).expect("serialises");
            check(&out, columns);
            let mut ours = Vec::new();
            mapped.row.write_json(&mut ours);
            assert_eq!(ours, out, "write_json and serde_json disagree");
            let owned = mapped.row.clone().into_owned();
            assert_eq!(owned, mapped.row);
        }
        Err(_) => {
            let input = mcas_csl::SyslogInput {
                facility: msg.facility(),
                severity: msg.severity(),
                hostname: msg.hostname(),
                process_name: msg.app_name(),
                process_id: msg.proc_id(),
                message: msg.msg(),
                event_time: msg.timestamp(),
            };
            let row = mcas_csl::map_syslog(input, &ctx);
            serde_json::to_writer(&mut out, &row).expect("serialises");
            let mut ours = Vec::new();
            row.write_json(&mut ours);
            assert_eq!(ours, out, "write_json and serde_json disagree");
            let cols: Vec<(String, ColumnType)> = mcas_csl::syslog_columns()
                .iter()
                .map(|(n, t)| ((*n).to_owned(), *t))
                .collect();
            check(&out, &cols);
        }
    }
});
