//! The rows and queries of the KQL benches (`kql`, and `kql_vrl` with `peers`): synthetic,
//! deterministic CommonSecurityLog-shaped rows of which a quarter pass the filter.

use serde_json::{Map, Value, json};

/// Rows per pass.
pub(crate) const ROWS: usize = 10_000;

/// Issue 14's three-predicate filter.
pub(crate) const FILTER: &str = r#"source
| where DeviceVendor == "Palo Alto Networks" and DestinationPort in (22, 23, 445, 3389) and Activity has "deny""#;

/// A typical cost transformation: a two-column `where`, then `project-away` of two columns.
pub(crate) const COST: &str = r#"source
| where DeviceVendor == "Palo Alto Networks" and DeviceAction != "allow"
| project-away AdditionalExtensions, DeviceCustomString1"#;

/// The rows as JSON objects.
pub(crate) fn rows() -> Vec<Map<String, Value>> {
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

/// The same rows as CEF events, to be mapped to `CommonSecurityLog` rows by mcas-csl: what
/// the forwarder's `[output] transform` reads (fields directly, strings borrowed).
pub(crate) fn csl_events() -> Vec<Vec<u8>> {
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

/// The events parsed.
pub(crate) fn parse_events(lines: &[Vec<u8>]) -> Vec<mcas_cef::Event<'_>> {
    lines
        .iter()
        .map(|l| mcas_cef::parse(l).expect("CEF"))
        .collect()
}

/// The events mapped, received at a fixed instant.
pub(crate) fn csl_rows<'a>(
    events: &'a [mcas_cef::Event<'a>],
) -> Vec<mcas_csl::CommonSecurityLog<'a>> {
    let received = mcas_cef::jiff::Timestamp::from_second(1_710_749_742).expect("instant");
    let ctx = mcas_csl::Context::new(received);
    events.iter().map(|e| mcas_csl::map(e, &ctx).row).collect()
}

/// CommonSecurityLog's schema, as the forwarder compiles `[output] transform` against it.
pub(crate) fn csl_schema() -> mcas_kql::Schema {
    mcas_kql::Schema::new(mcas_csl::columns().iter().map(|(n, t)| (*n, t.kql_type())))
}
