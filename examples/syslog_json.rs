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

use serde_json::{Value, json};

fn text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// The fields in the order of the vectors' `expect` objects (serde_json's `Map` would sort
/// them, so the object is written field by field).
fn write_json(out: &mut impl Write, m: &mcas_syslog::Message<'_>) -> io::Result<()> {
    let sd: Vec<Value> = m
        .structured_data()
        .iter()
        .map(|e| {
            let params: Vec<Value> = e.params().map(|(n, v)| json!([n, v])).collect();
            json!({ "id": e.id(), "params": params })
        })
        .collect();
    let protocol = match m.protocol() {
        mcas_syslog::Protocol::Rfc3164 => "rfc3164",
        mcas_syslog::Protocol::Rfc5424 => "rfc5424",
    };
    let fields: [(&str, Value); 10] = [
        ("protocol", protocol.into()),
        ("facility", m.facility().into()),
        ("severity", m.severity().into()),
        ("timestamp", text(m.timestamp_str())),
        ("hostname", text(m.hostname())),
        ("app_name", text(m.app_name())),
        ("proc_id", text(m.proc_id())),
        ("msg_id", text(m.msg_id())),
        ("structured_data", Value::Array(sd)),
        ("msg", m.msg_lossy().into_owned().into()),
    ];
    out.write_all(b"{")?;
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b":")?;
        serde_json::to_writer(&mut *out, value)?;
    }
    out.write_all(b"}")
}

fn main() -> io::Result<()> {
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    for line in stdin.split(b'\n') {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        match mcas_syslog::parse(&line) {
            Ok(m) => write_json(&mut out, &m)?,
            Err(e) => serde_json::to_writer(&mut out, &json!({ "error": e.to_string() }))?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}
