//! Issue 14: "A `where` that reads only existing columns allocates nothing": the filter of a
//! compiled query runs on a row without allocating, whether the row's columns are read by
//! name (a JSON object) or by place (a row with a layout). The same test on mapped
//! `CommonSecurityLog` rows is in mcas-csl's `tests/kql.rs` (mcas-csl depends on this crate).

#![allow(
    unsafe_code,
    reason = "a counting global allocator has to implement the unsafe GlobalAlloc trait"
)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mcas_kql::{Query, Row, Schema, Type, Value};
use serde_json::{Map, Value as Json};

struct Counting;

thread_local! {
    // Per thread, so other tests running at the same time do not count.
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

static LAYOUT: &[(&str, Type)] = &[
    ("TimeGenerated", Type::DateTime),
    ("DeviceVendor", Type::String),
    ("DestinationPort", Type::Int),
    ("Activity", Type::String),
    ("ReceivedBytes", Type::Long),
    ("Score", Type::Real),
];

/// A struct row with a layout, as a mapped row type implements it.
struct Event<'a> {
    time: i64,
    vendor: &'a str,
    port: Option<i32>,
    activity: &'a str,
    received: i64,
    score: f64,
}

impl Row for Event<'_> {
    fn get(&self, column: &str) -> Option<Value<'_>> {
        let i = LAYOUT.iter().position(|c| c.0 == column)?;
        self.value_at(i)
    }

    fn layout(&self) -> Option<&'static [(&'static str, Type)]> {
        Some(LAYOUT)
    }

    fn value_at(&self, index: usize) -> Option<Value<'_>> {
        match index {
            0 => Some(Value::DateTime(self.time)),
            1 => Some(Value::str(self.vendor)),
            2 => self.port.map(Value::Int),
            3 => Some(Value::str(self.activity)),
            4 => Some(Value::Long(self.received)),
            5 => Some(Value::Real(self.score)),
            _ => None,
        }
    }
}

const FILTERS: &[(&str, bool)] = &[
    (
        r#"source | where DeviceVendor == "Palo Alto Networks" and DestinationPort in (22, 23, 445, 3389) and Activity has "deny""#,
        true,
    ),
    (
        r#"source | where DeviceVendor =~ "palo alto networks" and Activity contains "DENY" and Activity !has "allow""#,
        true,
    ),
    (
        r#"source | where DeviceVendor in~ ("fortinet", "PALO ALTO NETWORKS") and Activity startswith "traffic""#,
        true,
    ),
    (
        "source | where ReceivedBytes > 1000 and Score >= 0.5 and Score <= 1.0 and TimeGenerated > datetime(2024-01-01)",
        true,
    ),
    (
        "source | where isnotnull(DestinationPort) and not(DestinationPort in (80, 443)) and strlen(Activity) < 40",
        true,
    ),
    (
        "source | where TimeGenerated < now() and ReceivedBytes % 2 == 0",
        false,
    ),
    (
        r#"source | where Activity hasprefix "den" or DeviceVendor endswith "works""#,
        true,
    ),
];

fn json_row() -> Map<String, Json> {
    serde_json::from_str(
        r#"{"TimeGenerated": "2024-03-18T08:15:42Z", "DeviceVendor": "Palo Alto Networks",
            "DestinationPort": 22, "Activity": "TRAFFIC deny", "ReceivedBytes": 4097,
            "Score": 0.75}"#,
    )
    .unwrap()
}

fn schema() -> Schema {
    Schema::new(LAYOUT.iter().copied())
}

#[test]
fn a_where_over_a_json_rows_columns_allocates_nothing() {
    let row = json_row();
    for (text, passes) in FILTERS {
        let q = Query::compile(text, &schema()).unwrap();
        // Once first, as for the struct row (a JSON row has no layout to bind to).
        assert_eq!(q.passes(&row), *passes, "{text}");
        let (n, got) = allocations_of(|| q.passes(&row));
        assert_eq!(got, *passes, "{text}");
        assert_eq!(n, 0, "{text} allocated");
    }
}

#[test]
fn a_where_over_a_struct_rows_columns_allocates_nothing() {
    let row = Event {
        time: 17_107_497_420_000_000,
        vendor: "Palo Alto Networks",
        port: Some(22),
        activity: "TRAFFIC deny",
        received: 4097,
        score: 0.75,
    };
    for (text, passes) in FILTERS {
        let q = Query::compile(text, &schema()).unwrap();
        // The first row binds the query to the layout (once per query).
        assert_eq!(q.passes(&row), *passes, "{text}");
        let (n, got) = allocations_of(|| (0..100).filter(|_| q.passes(&row)).count());
        assert_eq!(got, if *passes { 100 } else { 0 }, "{text}");
        assert_eq!(n, 0, "{text} allocated");
        assert_eq!(
            q.layout_projection(&row).map(<[bool]>::len),
            Some(LAYOUT.len())
        );
    }
}
