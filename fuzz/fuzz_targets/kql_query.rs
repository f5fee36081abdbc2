//! Arbitrary text compiled in the query dialect (`TableQuery`) and, when it compiles, run over
//! a small fixed window: never panics, and every result row has exactly the columns of the
//! query's output schema.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcas_kql::{Schema, TableQuery, Type};
use serde_json::{Map, Value, json};

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        Schema::new([
            ("TimeGenerated", Type::DateTime),
            ("DeviceVendor", Type::String),
            ("DeviceAction", Type::String),
            ("SourceIP", Type::String),
            ("DestinationIP", Type::String),
            ("DestinationPort", Type::Int),
            ("SentBytes", Type::Long),
            ("AdditionalExtensions", Type::String),
        ])
    })
}

fn rows() -> &'static [Map<String, Value>] {
    static R: OnceLock<Vec<Map<String, Value>>> = OnceLock::new();
    R.get_or_init(|| {
        let v = json!([
            {"TimeGenerated": "2024-05-01T09:00:00Z", "DeviceVendor": "Fortinet", "DeviceAction": "deny",
             "SourceIP": "10.0.0.1", "DestinationIP": "8.8.8.8", "DestinationPort": 53, "SentBytes": 10,
             "AdditionalExtensions": "a=1;b=[1,2]"},
            {"TimeGenerated": "2024-05-01T09:30:00Z", "DeviceVendor": "Palo Alto Networks", "DeviceAction": "allow",
             "SourceIP": "10.0.0.2", "DestinationIP": "1.1.1.1", "DestinationPort": 443},
            {"TimeGenerated": "2024-05-01T10:15:00Z", "DeviceAction": "deny", "SourceIP": "10.0.0.1",
             "DestinationPort": 22, "SentBytes": -5, "AdditionalExtensions": "{\"x\": [1, \"y\"]}"},
            {"SourceIP": "", "DestinationPort": "not a number"},
        ]);
        v.as_array()
            .map(|a| a.iter().filter_map(|r| r.as_object().cloned()).collect())
            .unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = TableQuery::compile(text, schema()) else {
        return;
    };
    let now = 17_145_576_000_000_000;
    let window: Vec<_> = rows().iter().filter_map(|r| q.row_prefix(r, now)).collect();
    let columns: Vec<&str> = q.output_schema().iter().map(|c| c.0.as_str()).collect();
    for row in q.run_window(&window, now) {
        let mut got: Vec<&str> = row.keys().map(String::as_str).collect();
        let mut want = columns.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(
            got, want,
            "the result row's columns are the output schema's"
        );
    }
});
