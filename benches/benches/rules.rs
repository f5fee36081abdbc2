//! The cost of alert rules on the stream (`cargo bench -p mcas-benches --bench rules`).
//!
//! Eight rules are loaded: the five real Sentinel rules of `mcas-rules`' replay tests and the
//! port scan, deny burst and rare destination examples. 10,000 firewall CEF events (a tenth
//! of them denied, ports spread so that the port scan has work) are mapped to
//! CommonSecurityLog rows, 100 ms apart:
//! - `map_only`: the mapping alone, the reference of the same run;
//! - `map_and_observe`: the mapping plus every rule's row prefix, kept rows into the windows;
//! - `map_observe_evaluate`: the same, then one evaluation of every rule over its window.
//!
//! The ratio `map_only / map_and_observe` is the share of mapping throughput left with the
//! rules loaded. Each iteration starts from empty windows, so the windows' growth (and the
//! freeing of 10,000 kept rows for each of the two rules that keep nearly every row) is
//! counted in `map_and_observe`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcas_rules::{Engine, Limits, TICKS_PER_SECOND};

const RULES: &[&str] = &[
    "crates/rules/tests/data/sentinel/Solutions/CiscoASA/Analytic Rules/CiscoASA-ThreatDetectionMessage.yaml",
    "crates/rules/tests/data/sentinel/Solutions/PaloAlto-PAN-OS/Analytic Rules/PaloAlto-PortScanning.yaml",
    "crates/rules/tests/data/sentinel/Detections/CommonSecurityLog/CreepySnailURLParameters.yaml",
    "crates/rules/tests/data/sentinel/Solutions/Vectra AI Detect/Analytic Rules/VectraDetect-NewCampaign.yaml",
    "crates/rules/tests/data/sentinel/Solutions/Illusive Platform/Analytic Rules/Illusive_Detection_Query.yaml",
    "examples/rules/port-scan.yaml",
    "examples/rules/deny-burst.yaml",
    "examples/rules/rare-destination.yaml",
];

fn rules() -> Vec<mcas_rules::LoadedRule> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    RULES
        .iter()
        .map(|p| {
            let (rule, report) = mcas_rules::load_file(&root.join(p));
            rule.unwrap_or_else(|| panic!("{}", report.to_line()))
        })
        .collect()
}

fn lines() -> Vec<String> {
    (0..10_000u32)
        .map(|i| {
            let act = if i % 10 == 0 { "deny" } else { "allow" };
            format!(
                "CEF:0|Palo Alto Networks|PAN-OS|10.1|end|TRAFFIC|1|src=10.0.{}.{} dst=203.0.113.{} \
                 dpt={} spt={} proto=TCP act={act} app=ssl dvchost=pa-fw01 suid=user{}",
                i % 7,
                i % 251,
                i % 199,
                1 + i % 1024,
                40_000 + i % 20_000,
                i % 13
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let lines = lines();
    let events: Vec<mcas_cef::Event<'_>> = lines
        .iter()
        .map(|l| mcas_cef::parse(l.as_bytes()).expect("CEF"))
        .collect();
    let t0 = 1_715_162_400 * TICKS_PER_SECOND;
    let step = TICKS_PER_SECOND / 10;
    let received = jiff::Timestamp::from_second(1_715_162_400).expect("time");
    let ctx = mcas_csl::Context::new(received).with_computer(Some("pa-fw01"));

    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("map_only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                let row = mcas_csl::map(black_box(e), &ctx).row;
                n += usize::from(row.source_ip.is_some());
            }
            n
        })
    });
    for evaluate in [false, true] {
        let name = if evaluate {
            "map_observe_evaluate"
        } else {
            "map_and_observe"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut engine = Engine::new(rules.clone(), Limits::default());
                engine.start(t0);
                for (i, e) in events.iter().enumerate() {
                    let row = mcas_csl::map(black_box(e), &ctx).row;
                    let t = t0 + i as i64 * step;
                    engine.observe(mcas_rules::Table::CommonSecurityLog, &row, t, t);
                }
                let alerts = if evaluate {
                    engine.run_next_of_each().len()
                } else {
                    0
                };
                (engine.stats().len(), alerts)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
