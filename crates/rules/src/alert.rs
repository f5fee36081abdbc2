//! Alerts: rows shaped like Sentinel's `SecurityAlert`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::duration::format_duration;
use crate::rule::Rule;

/// `ProviderName` of every alert.
pub const PROVIDER_NAME: &str = "mcas-forward";
/// `ProductName` of every alert.
pub const PRODUCT_NAME: &str = "mcas-forward rules";

/// The alert columns and their Log Analytics types, in order: the custom table that
/// `dcr-template --alerts` declares.
pub const ALERT_COLUMNS: &[(&str, &str)] = &[
    ("TimeGenerated", "datetime"),
    ("AlertName", "string"),
    ("AlertSeverity", "string"),
    ("Description", "string"),
    ("ProviderName", "string"),
    ("ProductName", "string"),
    ("SystemAlertId", "string"),
    ("AlertType", "string"),
    ("StartTime", "datetime"),
    ("EndTime", "datetime"),
    ("Entities", "dynamic"),
    ("ExtendedProperties", "dynamic"),
    ("Tactics", "string"),
    ("Techniques", "string"),
];

/// One alert raised by a rule's evaluation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Alert {
    /// The id of the rule that raised it.
    pub rule_id: String,
    /// The row: the [`ALERT_COLUMNS`], in that order. `SystemAlertId` is stable: derived from
    /// the rule id, the evaluation time and the result index, so a replay and every
    /// delivery attempt give the same id.
    pub row: Map<String, Value>,
    /// Up to [`Limits::max_alert_results`](crate::Limits::max_alert_results) result rows
    /// behind the alert (for playbook bodies).
    pub results: Vec<Map<String, Value>>,
    /// The evaluation ran on a partial window (rows were dropped at the window bound).
    pub partial: bool,
}

impl Alert {
    /// `SystemAlertId`.
    pub fn id(&self) -> &str {
        self.row
            .get("SystemAlertId")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The row as one NDJSON line (no newline).
    pub fn to_json_line(&self) -> String {
        Value::Object(self.row.clone()).to_string()
    }

    /// The playbook body: the row plus `Results` (the result rows) and `RuleId`.
    pub fn to_playbook_json(&self) -> Value {
        let mut body = self.row.clone();
        body.insert("RuleId".into(), Value::String(self.rule_id.clone()));
        body.insert(
            "Results".into(),
            Value::Array(self.results.iter().cloned().map(Value::Object).collect()),
        );
        Value::Object(body)
    }
}

/// What an evaluation hands to [`build`].
pub(crate) struct Evaluated<'a> {
    pub(crate) rule: &'a Rule,
    pub(crate) now: i64,
    pub(crate) results: &'a [Map<String, Value>],
    pub(crate) total: usize,
    pub(crate) partial: bool,
    pub(crate) dropped: u64,
    pub(crate) max_results: usize,
}

/// The alert of the result rows `rows` (all of them for a single alert, one for an alert
/// per result), `index` its place among the evaluation's alerts.
pub(crate) fn build(ev: &Evaluated<'_>, rows: &[Map<String, Value>], index: usize) -> Alert {
    let rule = ev.rule;
    let first = rows.first();
    let name = match &rule.display_name_format {
        Some(f) => fill(f, first).trim().to_owned(),
        None => rule.name.trim().to_owned(),
    };
    let description = match &rule.description_format {
        Some(f) => fill(f, first).trim().to_owned(),
        None => rule.description.trim().to_owned(),
    };
    let severity = rule
        .severity_column
        .as_ref()
        .and_then(|c| first.and_then(|r| r.get(c)))
        .and_then(Value::as_str)
        .filter(|s| {
            ["Informational", "Low", "Medium", "High"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(s))
        })
        .map_or_else(|| rule.severity.clone(), str::to_owned);
    let (start, end) = time_span(rows).unwrap_or((ev.now - rule.period, ev.now));
    let mut entities: Vec<Value> = Vec::new();
    for r in rows {
        for e in &rule.entities {
            let mut obj = Map::new();
            obj.insert("Type".into(), Value::String(entity_type(&e.entity_type)));
            let mut any = false;
            for (ident, col) in &e.fields {
                if let Some(v) = r.get(col).filter(|v| !is_empty(v)) {
                    obj.insert(ident.clone(), v.clone());
                    any = true;
                }
            }
            let obj = Value::Object(obj);
            if any && !entities.contains(&obj) {
                entities.push(obj);
            }
        }
    }
    let mut details = Map::new();
    for (detail, col) in &rule.custom_details {
        let mut values: Vec<Value> = Vec::new();
        for r in rows {
            if let Some(v) = r.get(col).filter(|v| !is_empty(v))
                && !values.contains(v)
            {
                values.push(v.clone());
            }
        }
        details.insert(detail.clone(), Value::Array(values));
    }
    let mut ext = Map::new();
    ext.insert(
        "Analytic Rule Name".into(),
        Value::String(rule.name.clone()),
    );
    ext.insert("Analytic Rule Id".into(), Value::String(rule.id.clone()));
    ext.insert(
        "Query Period".into(),
        Value::String(format_duration(rule.period)),
    );
    ext.insert(
        "Trigger Operator".into(),
        Value::String(rule.trigger_operator.arm_name().into()),
    );
    ext.insert("Trigger Threshold".into(), rule.trigger_threshold.into());
    ext.insert("Search Query Results Overall Count".into(), ev.total.into());
    if !details.is_empty() {
        ext.insert("Custom Details".into(), Value::Object(details));
    }
    if ev.partial {
        ext.insert("Partial Window".into(), Value::Bool(true));
        ext.insert("Window Rows Dropped".into(), ev.dropped.into());
    }
    let mut row = Map::new();
    row.insert("TimeGenerated".into(), Value::String(iso(ev.now)));
    row.insert("AlertName".into(), Value::String(name));
    row.insert("AlertSeverity".into(), Value::String(severity));
    row.insert("Description".into(), Value::String(description));
    row.insert("ProviderName".into(), PROVIDER_NAME.into());
    row.insert("ProductName".into(), PRODUCT_NAME.into());
    row.insert(
        "SystemAlertId".into(),
        Value::String(alert_id(&rule.id, ev.now, index)),
    );
    row.insert("AlertType".into(), Value::String(rule.id.clone()));
    row.insert("StartTime".into(), Value::String(iso(start)));
    row.insert("EndTime".into(), Value::String(iso(end)));
    row.insert("Entities".into(), Value::Array(entities));
    row.insert("ExtendedProperties".into(), Value::Object(ext));
    row.insert("Tactics".into(), Value::String(rule.tactics.join(", ")));
    row.insert(
        "Techniques".into(),
        Value::String(rule.techniques.join(", ")),
    );
    Alert {
        rule_id: rule.id.clone(),
        row,
        results: rows.iter().take(ev.max_results).cloned().collect(),
        partial: ev.partial,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Sentinel's entity type names as they appear in `SecurityAlert.Entities`.
fn entity_type(t: &str) -> String {
    match t.to_ascii_lowercase().as_str() {
        "cloudapplication" => "cloud-application".into(),
        "registrykey" => "registry-key".into(),
        "registryvalue" => "registry-value".into(),
        "securitygroup" => "security-group".into(),
        "azureresource" => "azure-resource".into(),
        "mailmessage" => "mail-message".into(),
        "submissionmail" => "submission-mail".into(),
        "iotdevice" => "iotdevice".into(),
        other => other.to_owned(),
    }
}

/// `{{Column}}` placeholders filled from a result row (missing columns read as empty).
fn fill(format: &str, row: Option<&Map<String, Value>>) -> String {
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let col = rest[open + 2..open + 2 + close].trim();
        match row.and_then(|r| r.get(col)) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {}
            Some(v) => out.push_str(&v.to_string()),
        }
        rest = &rest[open + 2 + close + 2..];
    }
    out.push_str(rest);
    out
}

/// The earliest and latest `TimeGenerated` (or `StartTime*`/`EndTime*`) of result rows.
fn time_span(rows: &[Map<String, Value>]) -> Option<(i64, i64)> {
    let mut span: Option<(i64, i64)> = None;
    for r in rows {
        for (k, v) in r {
            let is_time = k == "TimeGenerated"
                || k.starts_with("StartTime")
                || k.starts_with("EndTime")
                || k == "FirstSeen"
                || k == "LastSeen";
            if !is_time {
                continue;
            }
            if let Some(t) = v.as_str().and_then(parse_iso) {
                span = Some(match span {
                    None => (t, t),
                    Some((a, b)) => (a.min(t), b.max(t)),
                });
            }
        }
    }
    span
}

/// Ticks (100 ns since the Unix epoch) as ISO 8601 UTC with 7 fractional digits.
pub(crate) fn iso(ticks: i64) -> String {
    let secs = ticks.div_euclid(crate::TICKS_PER_SECOND);
    let frac = ticks.rem_euclid(crate::TICKS_PER_SECOND);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => format!("{}.{frac:07}Z", ts.strftime("%Y-%m-%dT%H:%M:%S")),
        Err(_) => String::new(),
    }
}

/// An ISO 8601 date-time as ticks.
pub(crate) fn parse_iso(s: &str) -> Option<i64> {
    let ts: jiff::Timestamp = s.parse().ok()?;
    let ns = ts.as_nanosecond();
    i64::try_from(ns / 100).ok()
}

/// A stable alert id shaped like a GUID: SHA-256 of rule id, evaluation time and index.
pub(crate) fn alert_id(rule_id: &str, now: i64, index: usize) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update(b"\n");
    h.update(now.to_be_bytes());
    h.update((index as u64).to_be_bytes());
    let d = h.finalize();
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_times_and_ids() {
        let row: Map<String, Value> =
            serde_json::from_str(r#"{"SourceIP":"10.0.0.1","n":3}"#).unwrap();
        assert_eq!(
            fill(
                "Scan from {{SourceIP}} ({{ n }} ports){{Missing}}",
                Some(&row)
            ),
            "Scan from 10.0.0.1 (3 ports)"
        );
        assert_eq!(fill("open {{ only", Some(&row)), "open {{ only");
        let t = 1_700_000_000 * crate::TICKS_PER_SECOND + 5;
        assert_eq!(iso(t), "2023-11-14T22:13:20.0000005Z");
        assert_eq!(parse_iso(&iso(t)), Some(t));
        assert_eq!(alert_id("r", t, 0), alert_id("r", t, 0));
        assert_ne!(alert_id("r", t, 0), alert_id("r", t, 1));
        assert_eq!(alert_id("r", t, 0).len(), 36);
    }
}
