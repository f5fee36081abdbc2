//! The engine's semantics: trigger operators, suppression, alert grouping, windows across a
//! restart, and the window bound.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use mcas_rules::{Engine, Limits, ReplayOptions, TICKS_PER_SECOND as S, Table};
use serde_json::{Value, json};

fn rule(
    id: &str,
    frequency: &str,
    period: &str,
    op: &str,
    threshold: u32,
    query: &str,
    extra: &str,
) -> mcas_rules::LoadedRule {
    let text = format!(
        "id: {id}\nname: Rule {id}\nseverity: Low\nqueryFrequency: {frequency}\nqueryPeriod: {period}\n\
         triggerOperator: {op}\ntriggerThreshold: {threshold}\nquery: |\n  {query}\n\
         entityMappings:\n  - entityType: IP\n    fieldMappings:\n      - identifier: Address\n        columnName: SourceIP\n{extra}"
    );
    mcas_rules::load_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const DENIES: &str = "CommonSecurityLog | where DeviceAction == \"deny\"";

/// Denies at 3, 2, 1 and `last` per 5-minute window from 10:00, then an allow at 10:16:30.
fn denies(last: usize) -> String {
    let line = |min: u32, sec: u32, act: &str| {
        format!(
            "<134>2024-05-08T10:{min:02}:{sec:02}Z fw CEF:0|Acme|FW|1|100|Traffic|5|src=10.0.0.{min} act={act}"
        )
    };
    let mut lines = Vec::new();
    for (window, n) in [(0, 3), (5, 2), (10, 1), (15, last)] {
        for i in 0..n {
            lines.push(line(window, 10 + i as u32, "deny"));
        }
    }
    lines.sort();
    lines.push(line(16, 30, "allow"));
    lines.join("\n")
}

fn times(alerts: &[mcas_rules::Alert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a.row["TimeGenerated"].as_str().unwrap_or("")[11..16].to_owned())
        .collect()
}

fn run(rules: &[mcas_rules::LoadedRule], input: &str) -> mcas_rules::Replay {
    mcas_rules::replay(rules, input.as_bytes(), ReplayOptions::default()).unwrap()
}

#[test]
fn the_four_threshold_operators_in_both_spellings() {
    // Evaluations at 10:05, 10:10, 10:15 and (after the last event) 10:20 see 3, 2, 1, 0 rows.
    let input = denies(0);
    for (ops, want) in [
        (["gt", "GreaterThan"], vec!["10:05"]),
        (["lt", "LessThan"], vec!["10:15", "10:20"]),
        (["eq", "Equal"], vec!["10:10"]),
        (["ne", "NotEqual"], vec!["10:05", "10:15", "10:20"]),
    ] {
        for op in ops {
            let out = run(&[rule("ops", "5m", "5m", op, 2, DENIES, "")], &input);
            assert_eq!(out.evaluations.len(), 4, "{op}");
            let rows: Vec<usize> = out.evaluations.iter().map(|e| e.window_rows).collect();
            assert_eq!(rows, [3, 2, 1, 0], "{op}");
            assert_eq!(times(&out.alerts), want, "{op}");
        }
    }
}

#[test]
fn suppression_holds_back_alerts_for_its_duration() {
    let input = denies(1);
    let plain = run(&[rule("s", "5m", "5m", "gt", 0, DENIES, "")], &input);
    assert_eq!(times(&plain.alerts), ["10:05", "10:10", "10:15", "10:20"]);

    let suppressed = rule(
        "s",
        "5m",
        "5m",
        "gt",
        0,
        DENIES,
        "suppressionEnabled: true\nsuppressionDuration: 12m\n",
    );
    let out = run(&[suppressed], &input);
    // 10:05 fires and suppresses until 10:17: 10:10 and 10:15 are held back, 10:20 fires.
    assert_eq!(times(&out.alerts), ["10:05", "10:20"]);
    assert_eq!(out.stats[0].1.suppressed, 2);
    assert_eq!(out.stats[0].1.alerts, 2);

    // Disabled suppression is no suppression.
    let off = rule(
        "s",
        "5m",
        "5m",
        "gt",
        0,
        DENIES,
        "suppressionEnabled: false\nsuppressionDuration: 12m\n",
    );
    assert_eq!(run(&[off], &input).alerts.len(), 4);
}

#[test]
fn alert_per_result_and_single_alert() {
    let q = "CommonSecurityLog | where DeviceAction == \"deny\" | summarize n = count() by SourceIP | sort by SourceIP asc";
    let input = denies(0);
    let single = run(&[rule("g", "10m", "10m", "gt", 0, q, "")], &input);
    // Evaluations at 10:10 (10.0.0.0 ×3, 10.0.0.5 ×2) and 10:20 (10.0.0.10 ×1).
    assert_eq!(single.alerts.len(), 2);
    assert_eq!(
        single.alerts[0].row["Entities"],
        json!([{"Type": "ip", "Address": "10.0.0.0"}, {"Type": "ip", "Address": "10.0.0.5"}])
    );
    assert_eq!(single.alerts[0].results.len(), 2);

    let per = rule(
        "g",
        "10m",
        "10m",
        "gt",
        0,
        q,
        "eventGroupingSettings:\n  aggregationKind: AlertPerResult\n",
    );
    let out = run(&[per], &input);
    assert_eq!(out.alerts.len(), 3);
    let ips: Vec<&Value> = out
        .alerts
        .iter()
        .map(|a| &a.row["Entities"][0]["Address"])
        .collect();
    assert_eq!(ips, ["10.0.0.0", "10.0.0.5", "10.0.0.10"]);
    let counts: Vec<&Value> = out.alerts.iter().map(|a| &a.results[0]["n"]).collect();
    assert_eq!(counts, [3, 2, 1]);
    let mut ids: Vec<&str> = out.alerts.iter().map(|a| a.id()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

fn observe(engine: &mut Engine, line: &str, t: i64) {
    let event = mcas_cef::parse(line.as_bytes()).unwrap();
    let ts = jiff::Timestamp::from_second(t / S).unwrap();
    let row = mcas_csl::map(&event, &mcas_csl::Context::new(ts)).row;
    engine.observe(Table::CommonSecurityLog, &row, t, t);
}

const BURST: &str = "CommonSecurityLog | where DeviceAction == \"deny\" | summarize n = count() by SourceIP | where n >= 3";
const DENY: &str = "CEF:0|Acme|FW|1|100|Denied|5|src=10.9.9.9 act=deny";

#[test]
fn a_window_spans_a_restart() {
    let t0 = 1_715_162_400 * S; // 2024-05-08T10:00:00Z
    let dir = tempfile::tempdir().unwrap();
    let burst = || rule("burst", "5m", "15m", "gt", 0, BURST, "");

    let mut before = Engine::new(vec![burst()], Limits::default());
    before.start(t0);
    observe(&mut before, DENY, t0 + 60 * S);
    observe(&mut before, DENY, t0 + 120 * S);
    assert!(before.run_due(t0 + 300 * S).is_empty()); // two denies: not yet
    before.save_state(dir.path()).unwrap();
    drop(before);

    // After the restart, the third deny completes the burst only with the saved window.
    let mut after = Engine::new(vec![burst()], Limits::default());
    let report = after.load_state(dir.path());
    assert_eq!(report.restored, [("burst".to_owned(), 2)]);
    assert!(report.lost.is_empty());
    observe(&mut after, DENY, t0 + 400 * S);
    let alerts = after.run_due(t0 + 600 * S);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].results[0]["n"], 3);
    assert_eq!(
        alerts[0].row["TimeGenerated"],
        "2024-05-08T10:10:00.0000000Z"
    );

    // Without the state, the same rows give nothing, and the loss is reported.
    let empty = tempfile::tempdir().unwrap();
    let mut cold = Engine::new(vec![burst()], Limits::default());
    let report = cold.load_state(empty.path());
    assert_eq!(
        report.lost,
        [("burst".to_owned(), "no saved state".to_owned())]
    );
    cold.start(t0 + 300 * S);
    observe(&mut cold, DENY, t0 + 400 * S);
    assert!(cold.run_due(t0 + 600 * S).is_empty());

    // A rule whose query changed does not take the old window.
    let changed = rule(
        "burst",
        "5m",
        "15m",
        "gt",
        0,
        &BURST.replace(">= 3", ">= 2"),
        "",
    );
    let mut other = Engine::new(vec![changed], Limits::default());
    let report = other.load_state(dir.path());
    assert!(report.restored.is_empty());
    assert!(report.lost[0].1.contains("query changed"), "{report:?}");
}

/// An engine with one rule that alerts on any deny, every 5 minutes.
fn burst_of_one(limits: Limits) -> Engine {
    Engine::new(
        vec![rule(
            "b",
            "5m",
            "5m",
            "gt",
            0,
            BURST.replace(">= 3", ">= 1").as_str(),
            "",
        )],
        limits,
    )
}

#[test]
fn the_window_bound_drops_rows_and_reports_a_partial_window() {
    let t0 = 1_715_162_400 * S;
    let mut engine = burst_of_one(Limits::with_window(2, 1 << 20));
    engine.start(t0);
    for i in 1..=3 {
        observe(&mut engine, DENY, t0 + i * 10 * S);
    }
    let alerts = engine.run_due(t0 + 300 * S);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].partial);
    assert_eq!(alerts[0].results[0]["n"], 2); // the third row was dropped
    assert_eq!(alerts[0].row["ExtendedProperties"]["Partial Window"], true);
    assert_eq!(
        alerts[0].row["ExtendedProperties"]["Window Rows Dropped"],
        1
    );
    let ev = engine.take_evaluations();
    assert_eq!((ev[0].window_rows, ev[0].dropped), (2, 1));
    let stats = &engine.stats()[0].1;
    assert_eq!(
        (
            stats.rows_kept,
            stats.rows_dropped,
            stats.partial_evaluations
        ),
        (2, 1, 1)
    );

    // The next window has room again and is whole.
    observe(&mut engine, DENY, t0 + 310 * S);
    let alerts = engine.run_due(t0 + 600 * S);
    assert_eq!(alerts.len(), 1);
    assert!(!alerts[0].partial);

    // A byte bound smaller than one row keeps nothing.
    let tiny = Limits::with_window(1000, 10);
    let mut engine = Engine::new(vec![rule("b", "5m", "5m", "gt", 0, DENIES, "")], tiny);
    engine.start(t0);
    observe(&mut engine, DENY, t0 + 10 * S);
    assert!(engine.run_due(t0 + 300 * S).is_empty());
    assert_eq!(engine.stats()[0].1.rows_dropped, 1);
    assert_eq!(engine.take_evaluations()[0].dropped, 1);
}

#[test]
fn a_clock_jump_runs_at_most_the_catch_up_bound() {
    let t0 = 1_715_162_400 * S;
    let mut engine = Engine::new(
        vec![rule("j", "1m", "1m", "eq", 0, DENIES, "")],
        Limits::default(),
    );
    engine.start(t0);
    // 2000 evaluations are due; the last MAX_CATCH_UP run, each on an empty window.
    let alerts = engine.run_due(t0 + 2000 * 60 * S);
    assert_eq!(alerts.len(), 1000);
    let stats = &engine.stats()[0].1;
    assert_eq!((stats.evaluations, stats.missed_evaluations), (1000, 1000));
    assert_eq!(mcas_rules::MAX_CATCH_UP, 1000);
    assert_eq!(
        alerts[0].row["TimeGenerated"],
        "2024-05-09T02:41:00.0000000Z"
    ); // t0 + 1001 min
}

#[test]
fn a_rule_over_syslog_reads_plain_syslog_lines() {
    let q = "Syslog | where ProcessName == \"sshd\" and SyslogMessage has \"Failed password\" \
             | summarize Failures = count() by HostName | where Failures >= 3";
    let text = format!(
        "id: ssh\nname: SSH failures\nseverity: Medium\nqueryFrequency: 5m\nqueryPeriod: 5m\n\
         triggerOperator: gt\ntriggerThreshold: 0\nquery: {q}\n\
         entityMappings:\n  - entityType: Host\n    fieldMappings:\n      - identifier: HostName\n        columnName: HostName\n\
         alertDetailsOverride:\n  alertDisplayNameFormat: SSH failures on {{{{HostName}}}}\n"
    );
    let ssh = mcas_rules::load_str(&text).unwrap();
    assert_eq!(ssh.tables(), [Table::Syslog]);
    let mut input = String::new();
    for (i, host) in ["srv1", "srv1", "srv2", "srv1"].iter().enumerate() {
        input.push_str(&format!(
            "<38>2024-05-08T10:00:0{i}Z {host} sshd[4242]: Failed password for root from 192.0.2.{i} port 22 ssh2\n"
        ));
    }
    input.push_str(
        "<134>2024-05-08T10:00:09Z fw CEF:0|Acme|FW|1|100|Denied|5|src=10.0.0.9 act=deny\n",
    );
    let out = run(&[ssh, rule("d", "5m", "5m", "gt", 0, DENIES, "")], &input);
    assert_eq!(out.rows, 5);
    let names: Vec<&Value> = out.alerts.iter().map(|a| &a.row["AlertName"]).collect();
    assert_eq!(names, ["SSH failures on srv1", "Rule d"]);
    assert_eq!(
        out.alerts[0].row["Entities"],
        json!([{"Type": "host", "HostName": "srv1"}])
    );

    // Without a rule over Syslog, plain lines are skipped and counted.
    let out = run(&[rule("d", "5m", "5m", "gt", 0, DENIES, "")], &input);
    assert_eq!((out.rows, out.skipped_lines), (1, 4));
}

#[test]
fn prefixes_on_other_threads_keep_into_the_engine_and_a_full_window_counts_the_drop() {
    // The forwarder's split: workers run the prefixes and hand kept rows over (`keep`), or,
    // once the window is full, only the row's time (`dropped`). Same result as `observe`.
    let t0 = 1_715_162_400 * S;
    let mut engine = burst_of_one(Limits::with_window(2, 1 << 20));
    engine.start(t0);
    let prefixes = engine.prefixes();
    assert!(prefixes.reads(Table::CommonSecurityLog));
    assert!(!prefixes.reads(Table::Syslog));
    let rows: Vec<_> = (1..=3)
        .map(|i| {
            let t = t0 + i * 10 * S;
            let event = mcas_cef::parse(DENY.as_bytes()).unwrap();
            let ts = jiff::Timestamp::from_second(t / S).unwrap();
            let row = mcas_csl::map(&event, &mcas_csl::Context::new(ts)).row;
            let mut kept = Vec::new();
            std::thread::scope(|s| {
                s.spawn(|| {
                    prefixes.run(Table::CommonSecurityLog, &row, t, |rule, r| {
                        kept.push((rule, r));
                    });
                });
            });
            (t, kept)
        })
        .collect();
    let mut full_seen = 0;
    for (t, kept) in rows {
        assert_eq!(kept.len(), 1, "the one rule keeps the deny");
        for (rule, row) in kept {
            if engine.is_full(rule) {
                full_seen += 1;
                engine.dropped(rule, t);
            } else {
                engine.keep(rule, t, row);
            }
        }
    }
    assert_eq!(full_seen, 1, "the third row finds the window full");
    let alerts = engine.run_due(t0 + 300 * S);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].partial);
    assert_eq!(alerts[0].results[0]["n"], 2);
    assert_eq!(
        alerts[0].row["ExtendedProperties"]["Window Rows Dropped"],
        1
    );
    // The window slid past the kept rows: room again.
    assert!(!engine.is_full(0));
    // A row older than any window still to run is not counted as dropped.
    engine.dropped(0, t0);
    assert_eq!(engine.stats()[0].1.rows_dropped, 1);
}

#[test]
fn rows_dropped_at_the_bound_are_counted_per_second_and_survive_a_restart() {
    let t0 = 1_715_162_400 * S;
    let dir = tempfile::tempdir().unwrap();
    let mut before = burst_of_one(Limits::with_window(1, 1 << 20));
    before.start(t0);
    // One row kept, then 1,000 dropped in the same second and one a minute later.
    observe(&mut before, DENY, t0 + 10 * S);
    for _ in 0..1000 {
        before.dropped(0, t0 + 11 * S + 5);
    }
    before.dropped(0, t0 + 70 * S);
    assert_eq!(before.stats()[0].1.rows_dropped, 1001);
    before.save_state(dir.path()).unwrap();
    let saved = std::fs::read_to_string(dir.path().join("b.ndjson")).unwrap();
    let header: Value = serde_json::from_str(saved.lines().next().unwrap()).unwrap();
    assert_eq!(
        header["dropped"],
        json!([[t0 + 11 * S, 1000], [t0 + 70 * S, 1]]),
        "a count per second, not a time per row"
    );
    drop(before);

    let mut after = burst_of_one(Limits::with_window(1, 1 << 20));
    let report = after.load_state(dir.path());
    assert_eq!(report.restored, vec![("b".to_owned(), 1)]);
    let alerts = after.run_due(t0 + 300 * S);
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].row["ExtendedProperties"]["Window Rows Dropped"],
        1001
    );
}

#[test]
fn a_prefix_passes_exactly_the_rows_it_keeps() {
    // `run_with` asks `row_passes` for the rules whose rows are not wanted (a full window):
    // it must agree with `row_prefix` on every rule and row.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut rules = mcas_rules::load_dir(std::path::Path::new(&format!("{root}/examples/rules")))
        .unwrap()
        .0;
    // Every real rule of the corpus that loads (the files sit in nested directories).
    let mut dirs = vec![std::path::PathBuf::from(format!(
        "{root}/crates/rules/tests/data/sentinel"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "yaml") {
                rules.extend(mcas_rules::load_file(&path).0);
            }
        }
    }
    assert!(rules.len() > 20, "{} rules", rules.len());
    let engine = Engine::new(rules, Limits::default());
    let prefixes = engine.prefixes();
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(format!("{root}/examples/rules/input")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    let (mut rows, mut kept_any) = (0, 0);
    for line in &lines {
        let Some(cef) = line.find("CEF:") else {
            continue;
        };
        let Ok(event) = mcas_cef::parse(&line.as_bytes()[cef..]) else {
            continue;
        };
        let ts = jiff::Timestamp::from_second(1_715_162_400).unwrap();
        let row = mcas_csl::map(&event, &mcas_csl::Context::new(ts)).row;
        let now = 1_715_162_400 * S;
        let mut kept = Vec::new();
        prefixes.run(Table::CommonSecurityLog, &row, now, |i, _| kept.push(i));
        let mut passed = Vec::new();
        prefixes.run_with(
            Table::CommonSecurityLog,
            &row,
            now,
            |_| false,
            |i, r| {
                assert!(r.is_none(), "no row is built for an unwanted rule");
                passed.push(i);
            },
        );
        assert_eq!(kept, passed, "{line}");
        rows += 1;
        kept_any += usize::from(!kept.is_empty());
    }
    assert!(
        rows > 100 && kept_any > 50,
        "{rows} rows, {kept_any} kept by some rule"
    );
}
