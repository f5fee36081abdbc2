//! Reads syslog lines on stdin and prints one JSON object per line, in the shape of the
//! `expect` objects of the syslog test vectors:
//!
//! ```text
//! printf '<34>Oct 11 22:14:15 mymachine su: hello\n' | cargo run -p mcas-examples --example syslog_json
//! {"protocol":"rfc3164","facility":4,"severity":2,"timestamp":"Oct 11 22:14:15",...,"msg":"hello"}
//! ```
//!
//! The line end (LF or CR LF) is removed before parsing. An empty line prints
//! `{"error":"..."}`. The message text is decoded lossily (U+FFFD for invalid UTF-8).

use std::io::{self, BufRead, BufWriter, Write};

use serde_json::{Map, Value, json};

fn text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn to_json(m: &mcas_syslog::Message<'_>) -> Value {
    let sd: Vec<Value> = m
        .structured_data()
        .iter()
        .map(|e| {
            let params: Vec<Value> = e.params().map(|(n, v)| json!([n, v])).collect();
            json!({ "id": e.id(), "params": params })
        })
        .collect();
    let mut o = Map::new();
    let protocol = match m.protocol() {
        mcas_syslog::Protocol::Rfc3164 => "rfc3164",
        mcas_syslog::Protocol::Rfc5424 => "rfc5424",
    };
    o.insert("protocol".into(), protocol.into());
    o.insert("facility".into(), m.facility().into());
    o.insert("severity".into(), m.severity().into());
    o.insert("timestamp".into(), text(m.timestamp_str()));
    o.insert("hostname".into(), text(m.hostname()));
    o.insert("app_name".into(), text(m.app_name()));
    o.insert("proc_id".into(), text(m.proc_id()));
    o.insert("msg_id".into(), text(m.msg_id()));
    o.insert("structured_data".into(), Value::Array(sd));
    o.insert("msg".into(), m.msg_lossy().into_owned().into());
    Value::Object(o)
}

fn main() -> io::Result<()> {
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    for line in stdin.split(b'\n') {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let value = match mcas_syslog::parse(&line) {
            Ok(m) => to_json(&m),
            Err(e) => json!({ "error": e.to_string() }),
        };
        serde_json::to_writer(&mut out, &value)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
