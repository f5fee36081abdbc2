//! Transformations on mapped rows (`kql` feature): a query that only filters and drops
//! columns lets the row write itself (`mcas_kql::Query::transform`); the bytes must be the
//! ones the general path (the query's output row) writes, for every row and query. And a
//! `where` over the row's columns allocates nothing.

#![cfg(feature = "kql")]
#![allow(
    unsafe_code,
    reason = "a counting global allocator has to implement the unsafe GlobalAlloc trait"
)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mcas_csl::{CommonSecurityLog, Context, Mapper, MappingRules, TimeGeneratedPolicy};
use mcas_kql::{Query, Schema};

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

const VECTORS: &str = include_str!("data/csl.jsonl");

/// Syslog lines: the mapping vectors, plus events with reals, datetimes in and out of the
/// millisecond grid, empty values, strings that need JSON escapes, and a key a rule maps to
/// a custom column.
fn lines() -> Vec<String> {
    let mut lines: Vec<String> = VECTORS
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["input"].as_str().unwrap().to_string()
        })
        .collect();
    lines.extend(
        [
            r#"<134>2024-05-08T16:07:11Z fw01 CEF:0|Palo Alto Networks|PAN-OS|10.1|100|TRAFFIC deny|5|act=deny src=10.1.2.3 dst=52.96.10.20 dpt=22 cs1=rule-17 cs1Label=Rule cfp1=0.25 cfp1Label=score start=1715184431123 end=1715184432999 PanOSPacketsReceived=12"#,
            r#"<134>2024-05-08T16:07:11.123456Z fw01 CEF:0|Fortinet|FortiGate|7|1|session end|8|act=allow dpt=443 msg=quote " backslash \\ tab	bell done cs1= suser= cn1=-7 in=12345678901"#,
            r#"<134>2024-05-08T16:07:11Z fw01 CEF:0|MCAS|SIEM_Agent|0.1|EVENT_CATEGORY_LOGIN|Log on|3|ad.srccountry=NL msg=é ü 日本 cs1=x"#,
            r#"<134>2024-05-08T16:07:11Z fw01 CEF:0|MCAS|SIEM_Agent|0.1|EVENT_CATEGORY_LOGIN|Log on|8|dpt=3389 cfp2=-1e300 requestClientApplication="#,
        ]
        .map(String::from),
    );
    lines
}

const QUERIES: &[&str] = &[
    "source",
    r#"source | where DeviceVendor == "MCAS" and LogSeverity != "8" | project-away AdditionalExtensions, DeviceCustomString1"#,
    r#"source | where DeviceVendor == "Palo Alto Networks" and DestinationPort in (22, 23, 445, 3389) and Activity has "deny""#,
    "source | project-away TimeGenerated",
    "source | project-away Device*",
    "source | project TimeGenerated, DeviceVendor, Message, DeviceCustomFloatingPoint1, StartTime",
    "source | project Message, DeviceVendor, TimeGenerated",
    "source | where isnotempty(Message) | extend X = strlen(Message)",
    "source | project-rename Vendor = DeviceVendor",
    "source | where StartTime > datetime(2017-01-01) or DestinationPort == 443",
    "source | where TimeGenerated > ago(3650d) | project-away Computer",
    "source | extend DeviceVendor = toupper(DeviceVendor) | project-away Message",
    "source | project-away SrcCountry_CF",
];

/// The bytes the general path writes: the query's output row.
fn general(
    q: &Query,
    row: &CommonSecurityLog<'_>,
    now: i64,
    first: Option<&str>,
) -> Option<Vec<u8>> {
    let out = q.run_at(row, now)?;
    let mut buf = Vec::new();
    out.write_json_compact(first, &mut buf);
    Some(buf)
}

fn transformed(
    q: &Query,
    row: &CommonSecurityLog<'_>,
    now: i64,
    first: Option<&str>,
) -> Option<Vec<u8>> {
    let out = q.transform_at(row, now)?;
    let mut buf = Vec::new();
    out.write_json_compact(first, &mut buf);
    Some(buf)
}

#[test]
fn a_row_writes_itself_as_the_output_row_would() {
    let mut rules = MappingRules::new();
    rules.map_key("ad.srccountry", "SrcCountry_CF").unwrap();
    let mappers = [
        (
            Mapper::new(MappingRules::new(), TimeGeneratedPolicy::ReceiveTime),
            mcas_csl::columns_with(&MappingRules::new()),
        ),
        (
            Mapper::new(rules.clone(), TimeGeneratedPolicy::ReceiveTime),
            mcas_csl::columns_with(&rules),
        ),
    ];
    let lines = lines();
    let received = jiff::Timestamp::from_second(1_715_184_431).unwrap();
    let now = 17_151_844_310_000_000;
    let (mut fast, mut compared, mut kept) = (0, 0, 0);
    for (mapper, columns) in &mappers {
        let schema = Schema::new(columns.iter().map(|(n, t)| (n.as_str(), t.kql_type())));
        for text in QUERIES {
            let q = match Query::compile(text, &schema) {
                Ok(q) => q,
                // The custom column exists only with the rule.
                Err(_) if text.contains("_CF") => continue,
                Err(e) => panic!("{text}: {e}"),
            };
            for line in &lines {
                let msg = mcas_syslog::parse(line.as_bytes()).unwrap();
                let event = mcas_cef::parse(msg.msg()).unwrap();
                let ctx = Context::new(received).with_computer(msg.hostname());
                let row = mapper.map(&event, &ctx).row;
                if row.custom.is_empty() && q.layout_projection(&row).is_some() {
                    fast += 1;
                }
                for first in [
                    Some("TimeGenerated"),
                    Some("DeviceVendor"),
                    Some("Nope"),
                    None,
                ] {
                    let want = general(&q, &row, now, first);
                    let got = transformed(&q, &row, now, first);
                    kept += usize::from(want.is_some());
                    compared += 1;
                    assert_eq!(
                        got.as_deref().map(String::from_utf8_lossy),
                        want.as_deref().map(String::from_utf8_lossy),
                        "{text}\n{line}\nfirst {first:?}"
                    );
                }
            }
        }
    }
    // Both paths were taken, on rows kept and dropped.
    assert!(fast > 100 && fast < compared / 4, "{fast} of {compared}");
    assert!(kept > 100 && kept < compared, "{kept} of {compared}");
}

#[test]
fn the_pass_through_shapes_are_recognised() {
    let schema = Schema::new(mcas_csl::columns().iter().map(|(n, t)| (*n, t.kql_type())));
    let event = mcas_cef::parse(b"CEF:0|V|P|1|100|n|5|dpt=22").unwrap();
    let row = mcas_csl::map(&event, &Context::new(jiff::Timestamp::UNIX_EPOCH)).row;
    let projection = |text: &str| {
        Query::compile(text, &schema)
            .unwrap()
            .layout_projection(&row)
            .map(|keep| keep.iter().filter(|k| !**k).count())
    };
    // How many table columns each leaves out, when the row can write itself.
    assert_eq!(projection("source"), Some(0));
    assert_eq!(
        projection("source | where DestinationPort == 22 | project-away Message, Activity"),
        Some(2)
    );
    assert_eq!(
        projection("source | project TimeGenerated, DeviceVendor"),
        Some(155)
    );
    let device = mcas_csl::columns()
        .iter()
        .filter(|c| c.0.starts_with("Device"))
        .count();
    assert_eq!(
        projection("source | project-away Device* | where Activity has 'n'"),
        Some(device)
    );
    // The output is not the row's columns in place.
    assert_eq!(
        projection("source | project DeviceVendor, TimeGenerated"),
        None
    );
    assert_eq!(projection("source | extend X = 1"), None);
    assert_eq!(projection("source | project-rename V = DeviceVendor"), None);
    assert_eq!(projection("source | parse Message with 'a' X"), None);
}

const MCAS: &[u8] = b"<134>2017-11-22T17:50:04.000Z host CEF:0|MCAS|SIEM_Agent|0.111.85|EVENT_CATEGORY_LOGOUT|Log out|0|externalId=1511373015679_167ae3eb-ed33-454a-b548-c2ed6cea6ef0 rt=1511373004000 start=1511373004000 end=1511373004000 msg=Log out suser=admin@contoso.com destinationServiceName=ServiceNow dvc=13.82.149.151 dpt=443 cs1Label=portalURL cs1=https://contoso.portal.cloudappsecurity.com/ cs2Label=uniqueServiceAppIds cs2=APPID_SERVICENOW";

/// Issue 14: "A `where` that reads only existing columns allocates nothing".
#[test]
fn a_where_over_the_rows_columns_allocates_nothing() {
    let schema = Schema::new(mcas_csl::columns().iter().map(|(n, t)| (*n, t.kql_type())));
    let msg = mcas_syslog::parse(MCAS).unwrap();
    let event = mcas_cef::parse(msg.msg()).unwrap();
    let received = jiff::Timestamp::from_second(1_511_373_004).unwrap();
    let row = mcas_csl::map(&event, &Context::new(received)).row;
    let filters = [
        (
            r#"source | where DeviceVendor == "MCAS" and DestinationPort in (22, 443, 3389) and Activity has "out""#,
            true,
        ),
        (
            r#"source | where DeviceVendor =~ "mcas" and Message contains "LOG" and StartTime > datetime(2017-01-01)"#,
            true,
        ),
        (
            r#"source | where DeviceVendor != "MCAS" or DestinationPort !in (443) or SourceUserName endswith "contoso.com""#,
            true,
        ),
        (
            r#"source | where Activity has "in" and isnotempty(DeviceCustomString1)"#,
            false,
        ),
        (
            "source | where TimeGenerated < now() and isnull(EventCount)",
            true,
        ),
        (
            "source | where TimeGenerated > ago(1h) or EventCount < 5",
            false,
        ),
    ];
    for (text, passes) in filters {
        let q = Query::compile(text, &schema).unwrap();
        // The first row binds the query to the row's layout (once per query).
        assert_eq!(q.passes(&row), passes, "{text}");
        let (n, got) = allocations_of(|| q.passes(&row));
        assert_eq!(got, passes, "{text}");
        assert_eq!(n, 0, "{text} allocated");
    }

    // The forwarder's whole step for a cost transformation: run, keep, write into a buffer
    // with room.
    let q = Query::compile(
        r#"source | where DeviceVendor == "MCAS" and LogSeverity != "8" | project-away AdditionalExtensions, DeviceCustomString1"#,
        &schema,
    )
    .unwrap();
    let mut out = Vec::with_capacity(16 * 1024);
    drop(q.transform(&row));
    let (n, len) = allocations_of(|| {
        q.transform(&row)
            .unwrap()
            .write_json_compact(Some("TimeGenerated"), &mut out);
        out.len()
    });
    assert!(len > 300, "{}", String::from_utf8_lossy(&out));
    assert_eq!(n, 0);
}
