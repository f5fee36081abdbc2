//! KQL transformation throughput (`cargo bench -p mcas-benches --bench kql`).
//!
//! The three-predicate filter of issue 14 (`DeviceVendor == ... and DestinationPort in (...)
//! and Activity has ...`) compiled once and run on CommonSecurityLog-shaped JSON rows, in rows
//! per second; plus the same filter followed by a `project-away`, the typical cost
//! transformation. The rows are synthetic and deterministic (a quarter of them pass).

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcas_kql::{Query, Schema, Type};
use serde_json::{Map, Value, json};

const ROWS: usize = 10_000;

const FILTER: &str = r#"source
| where DeviceVendor == "Palo Alto Networks" and DestinationPort in (22, 23, 445, 3389) and Activity has "deny""#;

const COST: &str = r#"source
| where DeviceVendor == "Palo Alto Networks" and DeviceAction != "allow"
| project-away AdditionalExtensions, DeviceCustomString1"#;

fn rows() -> Vec<Map<String, Value>> {
    let vendors = ["Palo Alto Networks", "Fortinet", "Check Point", "Microsoft"];
    let activities = [
        "TRAFFIC deny",
        "TRAFFIC allow",
        "THREAT Deny-All",
        "session end",
    ];
    let ports = [22, 443, 445, 80, 3389, 53, 23, 8080];
    (0..ROWS)
        .map(|i| {
            let row = json!({
                "TimeGenerated": "2024-03-18T08:15:42Z",
                "DeviceVendor": vendors[i % 4],
                "DeviceProduct": "PAN-OS",
                "DeviceVersion": "10.1",
                "Activity": activities[(i / 4) % 4],
                "DeviceAction": if i % 3 == 0 { "allow" } else { "deny" },
                "SourceIP": format!("10.1.{}.{}", i % 250, i % 200),
                "DestinationIP": "52.96.10.20",
                "DestinationPort": ports[(i / 16) % 8],
                "LogSeverity": "5",
                "DeviceCustomString1": "rule-17",
                "AdditionalExtensions": "PanOSPacketsReceived=12;PanOSPacketsSent=4",
            });
            match row {
                Value::Object(m) => m,
                _ => unreachable!("a JSON object"),
            }
        })
        .collect()
}

fn kql(c: &mut Criterion) {
    let rows = rows();
    let schema = Schema::infer(
        &rows[0],
        &[
            ("TimeGenerated", Type::DateTime),
            ("DestinationPort", Type::Int),
        ],
    );
    run_group(c, "kql", &rows, &schema);
}

/// FILTER and COST over `rows`, in rows per second.
fn run_group<R: mcas_kql::Row>(c: &mut Criterion, group: &str, rows: &[R], schema: &Schema) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(rows.len() as u64));
    for (name, text) in [
        ("three_predicate_filter", FILTER),
        ("cost_transformation", COST),
    ] {
        let q = Query::compile(text, schema).expect("compiles");
        let kept = rows.iter().filter(|r| q.run_at(*r, 0).is_some()).count();
        assert!(
            kept > 0 && kept < rows.len(),
            "{name} keeps some rows: {kept}"
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut kept = 0usize;
                for r in rows {
                    if let Some(out) = q.run_at(black_box(r), 0) {
                        kept += out.iter().count();
                    }
                }
                black_box(kept)
            })
        });
    }
    g.finish();
}

/// The same rows as CEF events, mapped to `CommonSecurityLog` rows by mcas-csl: what the
/// forwarder's `[output] transform` reads (fields directly, strings borrowed).
fn csl_events() -> Vec<Vec<u8>> {
    rows()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            format!(
                "CEF:0|{}|{}|{}|100|{}|5|act={} src={} dst={} dpt={} cs1={} cs1Label=Rule PanOSPacketsReceived=12",
                s("DeviceVendor"),
                s("DeviceProduct"),
                s("DeviceVersion"),
                s("Activity"),
                s("DeviceAction"),
                s("SourceIP"),
                s("DestinationIP"),
                r["DestinationPort"],
                s("DeviceCustomString1"),
            )
            .into_bytes()
        })
        .collect()
}

fn kql_csl(c: &mut Criterion) {
    let lines = csl_events();
    let events: Vec<mcas_cef::Event<'_>> = lines
        .iter()
        .map(|l| mcas_cef::parse(l).expect("CEF"))
        .collect();
    let received = mcas_cef::jiff::Timestamp::from_second(1_710_749_742).expect("instant");
    let ctx = mcas_csl::Context::new(received);
    let rows: Vec<mcas_csl::CommonSecurityLog<'_>> =
        events.iter().map(|e| mcas_csl::map(e, &ctx).row).collect();
    let schema = Schema::new(mcas_csl::columns().iter().map(|(n, t)| (*n, t.kql_type())));
    run_group(c, "kql_csl", &rows, &schema);
}

criterion_group!(benches, kql, kql_csl);
criterion_main!(benches);
