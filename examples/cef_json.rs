//! Reads CEF lines (with or without a syslog prefix) on stdin and prints one JSON object
//! per line, in the shape of the `expect` objects of the CEF test vectors:
//!
//! ```text
//! printf 'CEF:0|MCAS|SIEM_Agent|0.111.85|EVENT_CATEGORY_LOGOUT|Log out|0|msg=Log out cs1=a\\=b\n' \
//!     | cargo run -q -p mcas-examples --example cef_json
//! {"version":0,"device_vendor":"MCAS","device_product":"SIEM_Agent","device_version":"0.111.85","device_event_class_id":"EVENT_CATEGORY_LOGOUT","name":"Log out","severity":"0","extensions":[["msg","Log out"],["cs1","a=b"]]}
//! ```
//!
//! A line that is not CEF prints `{"error": true}`. The line end (LF or CR LF) is removed
//! before parsing.

use std::io::{self, BufRead, BufWriter, Write};

use serde_json::Value;

fn to_json(line: &[u8]) -> String {
    let Ok(e) = mcas_cef::parse(line) else {
        return r#"{"error": true}"#.to_owned();
    };
    let s = |v: &str| Value::String(v.to_owned()).to_string();
    let pairs: Vec<String> = e
        .extensions()
        .map(|(k, v)| format!("[{},{}]", s(k), s(v)))
        .collect();
    format!(
        "{{\"version\":{},\"device_vendor\":{},\"device_product\":{},\"device_version\":{},\
         \"device_event_class_id\":{},\"name\":{},\"severity\":{},\"extensions\":[{}]}}",
        e.version(),
        s(e.device_vendor()),
        s(e.device_product()),
        s(e.device_version()),
        s(e.device_event_class_id()),
        s(e.name()),
        s(e.severity().raw()),
        pairs.join(",")
    )
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let mut l = line.as_slice();
        l = l.strip_suffix(b"\n").unwrap_or(l);
        l = l.strip_suffix(b"\r").unwrap_or(l);
        writeln!(out, "{}", to_json(l))?;
    }
    out.flush()
}
