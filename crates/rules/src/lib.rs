//! Microsoft Sentinel scheduled analytics rules, run on the stream at the edge.
//!
//! The rule files are the YAML that Sentinel users already have (the Azure-Sentinel
//! repository's `Detections/` and `Solutions/*/Analytic Rules/`). Each rule's query is split
//! by `mcas-kql`: its row-level prefix runs on every mapped row as it passes, the rows it
//! keeps go to a per-rule window of `queryPeriod`, and every `queryFrequency` the rest of
//! the query runs over `[now − queryPeriod, now)`. The number of result rows is compared
//! with the trigger threshold; alerts are rows shaped like `SecurityAlert`, with stable ids.
//!
//! ```
//! use mcas_rules::{Engine, Limits, Table, TICKS_PER_SECOND as S};
//!
//! let rule = mcas_rules::load_str(r#"
//! id: 0b7e3d5c-0000-4000-8000-000000000001
//! name: Denied traffic
//! severity: Medium
//! queryFrequency: 5m
//! queryPeriod: 10m
//! triggerOperator: gt
//! triggerThreshold: 0
//! query: |
//!   CommonSecurityLog
//!   | where DeviceAction == "deny"
//!   | extend IPCustomEntity = SourceIP
//! entityMappings:
//!   - entityType: IP
//!     fieldMappings:
//!       - identifier: Address
//!         columnName: IPCustomEntity
//! "#)?;
//!
//! let mut engine = Engine::new(vec![rule], Limits::default());
//! let t0 = 1_700_000_000 * S;
//! engine.start(t0);
//!
//! let event = mcas_cef::parse(b"CEF:0|Acme|FW|1|100|Denied|5|src=10.0.0.9 act=deny")?;
//! let received = jiff::Timestamp::from_second(1_700_000_060)?;
//! let row = mcas_csl::map(&event, &mcas_csl::Context::new(received)).row;
//! engine.observe(Table::CommonSecurityLog, &row, t0 + 60 * S, t0 + 60 * S);
//!
//! assert!(engine.run_due(t0 + 299 * S).is_empty()); // the first evaluation is at t0 + 5m
//! let alerts = engine.run_due(t0 + 300 * S);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].row["AlertName"], "Denied traffic");
//! assert_eq!(alerts[0].row["Entities"], serde_json::json!([{"Type": "ip", "Address": "10.0.0.9"}]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `rules check` is [`check_dir`] (or [`load_dir`]); `rules test` is [`replay`]. The
//! repository's `docs/rules.md` describes writing, testing and importing rules.

mod alert;
mod check;
mod duration;
mod engine;
mod query;
mod replay;
mod rule;

pub use alert::{ALERT_COLUMNS, Alert, PRODUCT_NAME, PROVIDER_NAME};
pub use check::{CheckReport, LoadedRule, check_dir, load_dir, load_file, load_str, rule_files};
pub use duration::{TICKS_PER_SECOND, format_duration, parse_duration};
pub use engine::{Engine, Evaluation, Limits, MAX_CATCH_UP, Prefixes, RuleStats, StateReport};
pub use query::Table;
pub use replay::{MAX_REPLAY_LINE, Replay, ReplayOptions, replay};
pub use rule::{
    Aggregation, EntityMapping, LoadError, LoadErrorKind, MAX_RULE_FILE_BYTES, Rule,
    TriggerOperator,
};

/// Ticks (100 ns since the Unix epoch) of a timestamp, the engine's clock unit.
pub fn ticks(ts: jiff::Timestamp) -> i64 {
    i64::try_from(ts.as_nanosecond() / 100).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    /// The forwarder moves the engine into its observer task and shares loaded rules.
    #[test]
    fn the_engine_is_send_and_rules_are_shared() {
        fn send<T: Send>() {}
        fn shared<T: Send + Sync>() {}
        send::<crate::Engine>();
        shared::<crate::Prefixes>();
        shared::<crate::LoadedRule>();
        shared::<crate::Alert>();
    }
}
