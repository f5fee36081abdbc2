//! The packaged Grafana dashboard and Prometheus alerting rules use only metric names (and
//! `reason`/`timeout` label values) that a running forwarder exports on `/metrics`.
//!
//! A metric renamed or removed in `metrics.rs` fails this test until
//! `packaging/grafana/mcas-forward.json` and `packaging/prometheus/alerts.yml` follow.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use mcas_testkit::prom::Line;

const DASHBOARD: &str = "packaging/grafana/mcas-forward.json";
const ALERTS: &str = "packaging/prometheus/alerts.yml";

fn workspace_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `/metrics` exports: family name → type, and label name → the values seen.
struct Exported {
    families: BTreeMap<String, String>,
    labels: BTreeMap<String, BTreeSet<String>>,
}

fn parse_exposition(text: &str) -> Exported {
    let mut families = BTreeMap::new();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in mcas_testkit::prom::lines(text) {
        match line.unwrap_or_else(|e| panic!("/metrics: {e}\n{text}")) {
            Line::Type { name, kind } => {
                families.insert(name.to_owned(), kind.to_owned());
            }
            Line::Sample(s) => {
                for (k, v) in s.labels {
                    labels.entry(k.to_owned()).or_default().insert(v.to_owned());
                }
            }
            _ => {}
        }
    }
    Exported { families, labels }
}

/// Every `mcas_forward_*` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mcas_forward_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if end > "mcas_forward_".len() {
            out.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// The values matched against `label` in `text` (`label="v"`, `=~"a|b"`, `!~"a|b"`, `!="v"`).
fn label_values(text: &str, label: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for op in ["=\"", "=~\"", "!~\"", "!=\""] {
        // In the dashboard JSON the quotes are escaped.
        for (pat, quote) in [
            (format!("{label}{op}"), "\""),
            (format!("{label}{}", op.replace('"', "\\\"")), "\\\""),
        ] {
            let mut rest = text;
            while let Some(i) = rest.find(&pat) {
                let tail = &rest[i + pat.len()..];
                let end = tail.find(quote).unwrap_or(tail.len());
                for v in tail[..end].split('|') {
                    out.insert(v.to_owned());
                }
                rest = &tail[end..];
            }
        }
    }
    out
}

/// A name used in a query exists when it is a family, or a histogram's or summary's series.
fn exported(name: &str, e: &Exported) -> bool {
    if e.families.contains_key(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|s| {
        name.strip_suffix(s)
            .and_then(|base| e.families.get(base))
            .is_some_and(|k| k == "histogram" || k == "summary")
    })
}

#[test]
fn dashboard_and_alerts_use_only_exported_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let f = forwarder(
        dir.path(),
        "[[listen]]\nprotocol = \"udp\"\naddress = \"127.0.0.1:{PORT}\"\n\
         [[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:{PORT}\"\n\
         [output]\nkind = \"stdout\"\n\
         [metrics]\naddress = \"127.0.0.1:{METRICS}\"\n",
        &[],
    );
    let mut body = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            match f.http_get("/metrics") {
                Some((200, b)) => {
                    body = b;
                    true
                }
                _ => false,
            }
        }),
        "no /metrics; stderr:\n{}",
        f.stderr_text()
    );
    let e = parse_exposition(&body);
    assert!(e.families.len() > 20, "too few families:\n{body}");

    let dashboard = workspace_file(DASHBOARD);
    let alerts = workspace_file(ALERTS);
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert_eq!(json["uid"], "mcas-forward");
    assert!(json["panels"].as_array().is_some_and(|p| p.len() > 10));

    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    for (file, text) in [(DASHBOARD, &dashboard), (ALERTS, &alerts)] {
        let names = metric_names(text);
        assert!(names.len() > 5, "{file}: too few metric names");
        for name in names {
            if !exported(&name, &e) {
                missing.push(format!("{file}: {name}"));
            }
            used.insert(name);
        }
        for label in ["reason", "timeout"] {
            let seen = e.labels.get(label).cloned().unwrap_or_default();
            for v in label_values(text, label) {
                if !seen.contains(&v) {
                    missing.push(format!("{file}: {label}=\"{v}\""));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "used but not exported by /metrics:\n{}\nexported: {:?}",
        missing.join("\n"),
        e.families.keys().collect::<Vec<_>>()
    );

    // The four kinds of alert the issue asks for.
    for rule in [
        "McasForwardOutputDown",
        "McasForwardSpoolFilling",
        "McasForwardDropsRising",
        "McasForwardNoSender",
    ] {
        assert!(alerts.contains(&format!("alert: {rule}\n")), "{rule}");
    }

    // Not a failure (the dashboard need not chart everything), but say what it leaves out,
    // so that a new metric gets a panel.
    let unused: Vec<_> = e
        .families
        .keys()
        .filter(|n| !used.contains(n.as_str()))
        .collect();
    if !unused.is_empty() {
        eprintln!("exported but on neither the dashboard nor the alerts: {unused:?}");
    }
}

#[test]
fn label_values_reads_every_matcher_form() {
    let text = r#"a{reason="x"} b{reason=~"y|z"} c{reason!~"w"} d{job=\"j\", reason=\"v\"}"#;
    let v: Vec<_> = label_values(text, "reason").into_iter().collect();
    assert_eq!(v, ["v", "w", "x", "y", "z"]);
    let names: Vec<_> =
        metric_names("rate(mcas_forward_a_total[5m]) / mcas_forward_b, mcas_forward_*")
            .into_iter()
            .collect();
    assert_eq!(names, ["mcas_forward_a_total", "mcas_forward_b"]);
}
