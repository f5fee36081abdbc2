//! The allocation budget of `map`: nothing for an event whose keys all have a
//! column, one `String` when some pairs go to `AdditionalExtensions`, and no
//! allocation from serialising into a buffer that is already large enough.

#![allow(
    unsafe_code,
    reason = "a counting global allocator has to implement the unsafe GlobalAlloc trait"
)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Per thread, so other tests running at the same time do not count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to the system allocator with the caller's
// arguments; counting touches only a const-initialised thread-local Cell,
// which never allocates.
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

const MCAS: &[u8] = b"CEF:0|MCAS|SIEM_Agent|0.111.85|EVENT_CATEGORY_LOGOUT|Log out|0|externalId=1511373015679_167ae3eb-ed33-454a-b548-c2ed6cea6ef0 rt=1511373004000 start=1511373004000 end=1511373004000 msg=Log out suser=admin@contoso.com destinationServiceName=ServiceNow dvc=13.82.149.151 requestClientApplication= cs1Label=portalURL cs1=https://contoso.portal.cloudappsecurity.com/#/audits?activity.id=eq(1511373015679_167ae3eb-ed33-454a-b548-c2ed6cea6ef0,) cs2Label=uniqueServiceAppIds cs2=APPID_SERVICENOW cs3Label=targetObjects cs3=admin@contoso.com cs4Label=policyIDs cs4= c6a1Label=\"Device IPv6 Address\" c6a1=";

#[test]
fn a_fully_mapped_event_maps_and_serialises_without_allocating() {
    let event = mcas_cef::parse(MCAS).unwrap();
    let ctx = mcas_csl::Context::new(jiff::Timestamp::UNIX_EPOCH).with_computer(Some("host"));
    // Warm the key index (built once per process).
    drop(mcas_csl::map(&event, &ctx));
    let mut buf = Vec::with_capacity(16 * 1024);
    let (n, len) = allocations_of(|| {
        let mapped = mcas_csl::map(&event, &ctx);
        assert!(mapped.row.additional_extensions.is_none());
        serde_json::to_writer(&mut buf, &mapped.row).unwrap();
        buf.len()
    });
    assert!(len > 500);
    assert_eq!(n, 0);
}

#[test]
fn unmapped_pairs_cost_one_allocation() {
    let line = b"CEF:0|V|P|1|id|n|5|src=10.0.0.1 a=1 b=2 c=3 spt=80 d=4";
    let event = mcas_cef::parse(line).unwrap();
    let ctx = mcas_csl::Context::new(jiff::Timestamp::UNIX_EPOCH);
    drop(mcas_csl::map(&event, &ctx));
    let (n, mapped) = allocations_of(|| mcas_csl::map(&event, &ctx));
    assert_eq!(
        mapped.row.additional_extensions.as_deref(),
        Some("a=1;b=2;c=3;d=4")
    );
    assert_eq!(n, 1);
}
