//! The allocation budget: an event costs one heap allocation (the table of pairs), plus
//! one per value whose unescaping changed it.

#![allow(
    unsafe_code,
    reason = "a counting global allocator has to implement the unsafe GlobalAlloc trait"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use serde_json::Value;

struct Counting;

thread_local! {
    // Per thread, so other tests of the harness running at the same time do not count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to the system allocator with the caller's arguments;
// counting touches only a const-initialised thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; `ptr` came from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

/// The MCAS SIEM agent's published samples, from the vectors.
fn mcas_samples() -> Vec<(String, String)> {
    include_str!("data/cef.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("valid JSON"))
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("mcas_")))
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_owned(),
                c["input"].as_str().expect("input").to_owned(),
            )
        })
        .collect()
}

#[test]
fn mcas_events_stay_within_budget() {
    let samples = mcas_samples();
    let (mut activities, mut alerts) = (0, 0);
    for (name, line) in &samples {
        let (n, event) = allocations_of(|| mcas_cef::parse(line.as_bytes()).expect("parses"));
        assert!(event.warnings().is_empty(), "{name}");
        if name.starts_with("mcas_activity") {
            // The table of pairs, plus cs1 whose `\=` was unescaped.
            assert!(line.contains("\\="), "{name}");
            assert_eq!(n, 2, "{name}: allocations");
            activities += 1;
        } else {
            // Alerts carry no escape: the table of pairs only.
            assert!(!line.contains('\\'), "{name}");
            assert_eq!(n, 1, "{name}: allocations");
            alerts += 1;
        }
        drop(event);
    }
    println!(
        "allocation budget held for {activities} MCAS activities (2 each) and {alerts} alerts (1 each)"
    );
    assert!(activities >= 5 && alerts >= 5);
}

#[test]
fn every_vector_stays_within_budget() {
    let mut checked = 0;
    for l in include_str!("data/cef.jsonl").lines() {
        let c: Value = serde_json::from_str(l).expect("valid JSON");
        let input = c["input"].as_str().expect("input").as_bytes();
        let (n, event) = allocations_of(|| mcas_cef::parse(input));
        let Ok(event) = event else {
            assert_eq!(n, 0, "{}: an error allocates nothing", c["name"]);
            continue;
        };
        // Count what the budget allows: one table (only when there are pairs), one per
        // header field or value that unescaping may have changed (it holds a character
        // that only an escape can produce, or a literal one: an upper bound), and one
        // for the warnings list.
        let changed_header = [
            event.device_vendor(),
            event.device_product(),
            event.device_version(),
            event.device_event_class_id(),
            event.name(),
            event.severity().raw(),
        ]
        .iter()
        .filter(|f| f.contains(['\\', '|']))
        .count();
        let changed_values = event
            .extensions()
            .filter(|(_, v)| v.contains(['\\', '=', '\n', '\r']))
            .count();
        let budget = usize::from(event.extensions().len() > 0)
            + changed_header
            + changed_values
            + usize::from(!event.warnings().is_empty());
        assert!(
            n <= budget,
            "{}: {n} allocations, budget {budget}",
            c["name"]
        );
        checked += 1;
    }
    assert!(checked > 100);
}

#[test]
fn a_line_without_escapes_allocates_once() {
    let line = b"CEF:0|Vendor|Product|1.0|100|name|5|src=10.0.0.1 dst=10.0.0.2 msg=hello world";
    let (n, event) = allocations_of(|| mcas_cef::parse(line).expect("parses"));
    assert_eq!(n, 1);
    assert_eq!(event.extensions().len(), 3);
    let header_only = b"CEF:0|Vendor|Product|1.0|100|name|5|";
    let (n, _) = allocations_of(|| mcas_cef::parse(header_only).expect("parses"));
    assert_eq!(n, 0);
}

#[test]
fn many_pairs_still_allocate_once() {
    // More pairs than the parser keeps on its stack.
    let mut line = String::from("CEF:0|Vendor|Product|1.0|100|name|5|");
    for i in 0..200 {
        line.push_str(&format!("k{i}=v{i} "));
    }
    let (n, event) = allocations_of(|| mcas_cef::parse(line.as_bytes()).expect("parses"));
    assert_eq!(event.extensions().len(), 200);
    assert_eq!(event.get("k199"), Some("v199"));
    assert_eq!(n, 1);
}
