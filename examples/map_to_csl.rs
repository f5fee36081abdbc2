//! Reads syslog lines carrying CEF on stdin and prints one `CommonSecurityLog`
//! row per line as JSON, the way the forwarder would send it; lines without
//! CEF become `Syslog` table rows. Warnings go to stderr.
//!
//! ```text
//! printf '<134>Oct 11 22:14:15 fw01 CEF:0|Acme|Firewall|9.1|deny|Denied|5|src=10.1.1.10 dpt=443 ad.srccountry=NL\n' \
//!   | cargo run -p mcas-examples --example map_to_csl
//! {"TimeGenerated":"...","DeviceVendor":"Acme",...,"AdditionalExtensions":"ad.srccountry=NL",...,"Computer":"fw01"}
//! ```
//!
//! `--rt` takes `TimeGenerated` from the event's `rt`; `--route KEY=COLUMN` adds
//! a mapping rule (for example `--route ad.srccountry=SrcCountry_CF`).

use std::io::{self, BufRead, BufWriter, Write};

use mcas_csl::{Context, Mapper, MappingRules, SyslogInput, TimeGeneratedPolicy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rules = MappingRules::new();
    let mut policy = TimeGeneratedPolicy::ReceiveTime;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rt" => policy = TimeGeneratedPolicy::Rt,
            "--route" => {
                let route = args.next().ok_or("--route needs KEY=COLUMN")?;
                let (key, column) = route.split_once('=').ok_or("--route needs KEY=COLUMN")?;
                rules.map_key(key, column)?;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mapper = Mapper::new(rules, policy);

    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut json = Vec::with_capacity(4096);
    for line in stdin.split(b'\n') {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let Ok(msg) = mcas_syslog::parse(&line) else {
            continue; // an empty line
        };
        let ctx = Context::new(jiff_now()).with_computer(msg.hostname());
        json.clear();
        match mcas_cef::parse(msg.msg()) {
            Ok(event) => {
                let mapped = mapper.map(&event, &ctx);
                for w in &mapped.warnings {
                    eprintln!("warning: {w}");
                }
                serde_json::to_writer(&mut json, &mapped.row)?;
            }
            Err(_) => {
                let input = SyslogInput {
                    facility: msg.facility(),
                    severity: msg.severity(),
                    hostname: msg.hostname(),
                    process_name: msg.app_name(),
                    process_id: msg.proc_id(),
                    message: msg.msg(),
                    event_time: msg.timestamp(),
                };
                serde_json::to_writer(&mut json, &mcas_csl::map_syslog(input, &ctx))?;
            }
        }
        json.push(b'\n');
        out.write_all(&json)?;
    }
    out.flush()?;
    Ok(())
}

fn jiff_now() -> mcas_cef::jiff::Timestamp {
    mcas_cef::jiff::Timestamp::now()
}
