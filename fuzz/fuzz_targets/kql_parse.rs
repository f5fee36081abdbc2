//! `mcas_kql` compile on arbitrary text: never panics, in the strict mode (against a small
//! CommonSecurityLog-like schema) and in the lenient mode; every error's position lies inside
//! the query and renders with a caret.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcas_kql::{Query, Schema, Type};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let schema = Schema::new([
        ("TimeGenerated", Type::DateTime),
        ("DeviceVendor", Type::String),
        ("DestinationPort", Type::Int),
        ("AdditionalExtensions", Type::String),
        ("Ctx", Type::Dynamic),
    ]);
    for result in [Query::compile(text, &schema), Query::compile_lenient(text)] {
        match result {
            Err(e) => {
                assert!(e.offset() <= text.len());
                assert!(e.line() >= 1 && e.column() >= 1);
                assert!(e.to_string().contains('^'));
            }
            Ok(q) => {
                // print and datatable queries run without input: that must not panic either.
                let _ = q.run_without_input_at(0);
            }
        }
    }
});
