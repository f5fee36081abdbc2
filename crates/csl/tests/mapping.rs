//! Mapper behaviour beyond the vectors: TimeGenerated policies, rules
//! (key and label routes, dropped keys, size cap, duplicates), conversion
//! failures and warnings, the worked examples of the spec.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use mcas_csl::{
    ColumnType, Context, CustomValue, Mapper, MappingRules, TimeGeneratedPolicy, Warning,
};
use serde_json::Value;

const RECEIVED_MS: i64 = 1_732_700_000_000;

fn received() -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(RECEIVED_MS).unwrap()
}

fn event(extension: &str) -> mcas_cef::Event<'static> {
    let line = format!("CEF:0|Vendor|Product|1.0|id|name|5|{extension}");
    mcas_cef::parse(line.as_bytes()).unwrap().into_owned()
}

fn json(row: &mcas_csl::CommonSecurityLog<'_>) -> Value {
    common::row_json(row)
}

#[test]
fn time_generated_defaults_to_the_receive_time() {
    let e = event("rt=1511373004000 start=1500151350531");
    let m = mcas_csl::map(&e, &Context::new(received()));
    assert_eq!(m.row.time_generated, Some(received()));
    assert_eq!(json(&m.row)["TimeGenerated"], "2024-11-27T09:33:20.000Z");
    // rt stays text in ReceiptTime, start is a date in StartTime.
    assert_eq!(m.row.receipt_time.as_deref(), Some("1511373004000"));
    assert_eq!(json(&m.row)["StartTime"], "2017-07-15T20:42:30.531Z");
}

#[test]
fn time_generated_from_rt_or_start_with_fallback() {
    let ctx = Context::new(received());
    let rt = Mapper::new(MappingRules::new(), TimeGeneratedPolicy::Rt);
    let start = Mapper::new(MappingRules::new(), TimeGeneratedPolicy::Start);

    let e = event("rt=1511373004000 start=1500151350531");
    let m = rt.map(&e, &ctx);
    assert_eq!(json(&m.row)["TimeGenerated"], "2017-11-22T17:50:04.000Z");
    assert!(m.warnings.is_empty());
    let m = start.map(&e, &ctx);
    assert_eq!(json(&m.row)["TimeGenerated"], "2017-07-15T20:42:30.531Z");

    // The text forms of the CEF standard, with the event's dtz.
    let e = event("rt=Sep 07 2018 14:50:39 dtz=Europe/Amsterdam");
    let m = rt.map(&e, &ctx);
    assert_eq!(json(&m.row)["TimeGenerated"], "2018-09-07T12:50:39.000Z");
    assert_eq!(m.row.receipt_time.as_deref(), Some("Sep 07 2018 14:50:39"));

    // Missing: the receive time, silently. Unreadable: the receive time, with a warning.
    let e = event("start=1");
    let m = rt.map(&e, &ctx);
    assert_eq!(m.row.time_generated, Some(received()));
    assert!(m.warnings.is_empty());
    let e = event("rt=$common=event-formatted-receive_time");
    let m = rt.map(&e, &ctx);
    assert_eq!(m.row.time_generated, Some(received()));
    assert_eq!(m.warnings, [Warning::TimeGeneratedFallback { key: "rt" }]);
    let e = event("start=yesterday");
    let m = start.map(&e, &ctx);
    assert_eq!(m.row.time_generated, Some(received()));
    assert!(
        m.warnings
            .contains(&Warning::TimeGeneratedFallback { key: "start" })
    );
}

#[test]
fn policy_deserialises_in_snake_case() {
    for (text, want) in [
        ("\"receive_time\"", TimeGeneratedPolicy::ReceiveTime),
        ("\"rt\"", TimeGeneratedPolicy::Rt),
        ("\"start\"", TimeGeneratedPolicy::Start),
    ] {
        assert_eq!(
            serde_json::from_str::<TimeGeneratedPolicy>(text).unwrap(),
            want
        );
    }
    assert_eq!(
        TimeGeneratedPolicy::default(),
        TimeGeneratedPolicy::ReceiveTime
    );
    assert!(serde_json::from_str::<TimeGeneratedPolicy>("\"end\"").is_err());
}

#[test]
fn a_date_with_a_broken_multibyte_offset_is_a_conversion_failure_not_a_panic() {
    // Found by the csl_map fuzz target: the zone parser sliced "-\u{fffd}\u{1}" (four bytes)
    // inside a character. Every event with such a `start` or `end` reached it.
    for policy in [TimeGeneratedPolicy::ReceiveTime, TimeGeneratedPolicy::Rt] {
        let e = event("rt=Sep 27 2018 14:59:0 -\u{fffd}\u{1} end=Sep 27 2018 14:59:00 +\u{20ac}1");
        let mapper = Mapper::new(MappingRules::new(), policy);
        let m = mapper.map(&e, &Context::new(received()));
        let row = json(&m.row);
        assert!(row.get("EndTime").is_none(), "{row}");
        assert_eq!(row["TimeGenerated"], "2024-11-27T09:33:20.000Z");
        assert_eq!(
            row["AdditionalExtensions"],
            "end=Sep 27 2018 14:59:00 +\u{20ac}1"
        );
    }
}

#[test]
fn conversion_failures_keep_the_raw_pair() {
    let e = event("spt=http dpt=443 cfp1=NaN start=soon cn1=12x in=-5 fsize=2147483648");
    let m = mcas_csl::map(&e, &Context::new(received()));
    let row = json(&m.row);
    assert_eq!(row["DestinationPort"], 443);
    assert_eq!(row["ReceivedBytes"], -5);
    for absent in [
        "SourcePort",
        "DeviceCustomFloatingPoint1",
        "StartTime",
        "FieldDeviceCustomNumber1",
        "DeviceCustomNumber1",
        "FileSize",
    ] {
        assert!(row.get(absent).is_none(), "{absent}: {row}");
    }
    assert_eq!(
        row["AdditionalExtensions"],
        "spt=http;cfp1=NaN;start=soon;cn1=12x;fsize=2147483648"
    );
    let failed: Vec<(&str, &str, ColumnType)> = m
        .warnings
        .iter()
        .map(|w| match w {
            Warning::ConversionFailed {
                key,
                column,
                expected,
            } => (*key, *column, *expected),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        failed,
        [
            ("spt", "SourcePort", ColumnType::Int),
            ("cfp1", "DeviceCustomFloatingPoint1", ColumnType::Real),
            ("start", "StartTime", ColumnType::Datetime),
            ("cn1", "FieldDeviceCustomNumber1", ColumnType::Long),
            ("fsize", "FileSize", ColumnType::Int),
        ]
    );
    assert_eq!(
        m.warnings[0].to_string(),
        "value of `spt` is not a valid int for SourcePort; kept in AdditionalExtensions"
    );
}

#[test]
fn dates_outside_the_kusto_range_do_not_convert() {
    // Year 0 exists for jiff, not for Kusto.
    let e = event("start=-62198755200000 end=253402000000000");
    let m = mcas_csl::map(&e, &Context::new(received()));
    assert_eq!(m.row.start_time, None);
    assert_eq!(json(&m.row)["EndTime"], "9999-12-28T12:26:40.000Z");
    assert_eq!(
        m.row.additional_extensions.as_deref(),
        Some("start=-62198755200000")
    );
}

#[test]
fn rules_route_keys_and_labels_and_drop_keys() {
    let mut rules = MappingRules::new();
    rules.map_key("ad.srccountry", "SrcCountry_CF").unwrap();
    rules
        .map_key_as("riskScore", "RiskScore_CF", Some(ColumnType::Long))
        .unwrap();
    rules.map_key("eventId", "DeviceCustomString6").unwrap();
    rules
        .map_label("targetObjects", "TargetObjects_CF")
        .unwrap();
    rules
        .map_label_as("weight", "Weight_CF", Some(ColumnType::Real))
        .unwrap();
    rules.drop_key("rawEvent");
    let mapper = Mapper::new(rules, TimeGeneratedPolicy::ReceiveTime);
    let e = event(
        "ad.srccountry=NL riskScore=42 eventId=987 rawEvent=blob cs3=a@x,b@x \
         cs3Label=targetObjects deviceCustomFloatingPoint2=2.5 cfp2Label=weight cs2=other \
         cs2Label=unrouted left=over",
    );
    let m = mapper.map(&e, &Context::new(received()));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let row = json(&m.row);
    assert_eq!(row["SrcCountry_CF"], "NL");
    assert_eq!(row["RiskScore_CF"], 42);
    assert_eq!(row["DeviceCustomString6"], "987");
    assert_eq!(row["TargetObjects_CF"], "a@x,b@x");
    assert_eq!(row["Weight_CF"], 2.5);
    // The labels stay in their own columns; routed values leave theirs empty.
    assert_eq!(row["DeviceCustomString3Label"], "targetObjects");
    assert!(row.get("DeviceCustomString3").is_none());
    assert!(row.get("DeviceCustomFloatingPoint2").is_none());
    assert_eq!(row["DeviceCustomString2"], "other");
    assert_eq!(row["AdditionalExtensions"], "left=over");
    assert!(!row.to_string().contains("blob"));
    assert_eq!(
        m.row.custom.get("RiskScore_CF"),
        Some(&CustomValue::Long(42))
    );
    common::check_against_schema(&row, &mapper.columns()).unwrap();
    // Custom columns come after the table's own columns, in rule order.
    let text = serde_json::to_string(&m.row).unwrap();
    assert!(text.ends_with(
        r#""SrcCountry_CF":"NL","RiskScore_CF":42,"TargetObjects_CF":"a@x,b@x","Weight_CF":2.5}"#
    ), "{text}");
}

#[test]
fn a_custom_column_that_does_not_convert_keeps_the_raw_pair() {
    let mut rules = MappingRules::new();
    rules
        .map_key_as("riskScore", "RiskScore_CF", Some(ColumnType::Long))
        .unwrap();
    rules
        .map_key_as("ok", "Ok_CF", Some(ColumnType::Boolean))
        .unwrap();
    let mapper = Mapper::new(rules, TimeGeneratedPolicy::ReceiveTime);
    let e = event("riskScore=high ok=true");
    let m = mapper.map(&e, &Context::new(received()));
    let row = json(&m.row);
    assert!(row.get("RiskScore_CF").is_none());
    assert_eq!(row["Ok_CF"], true);
    assert_eq!(row["AdditionalExtensions"], "riskScore=high");
    assert_eq!(
        m.warnings,
        [Warning::ConversionFailed {
            key: "riskScore",
            column: "RiskScore_CF",
            expected: ColumnType::Long
        }]
    );
}

#[test]
fn values_over_the_cap_are_cut_with_a_warning() {
    let mut rules = MappingRules::new();
    rules.set_max_field_bytes(8);
    let mapper = Mapper::new(rules, TimeGeneratedPolicy::ReceiveTime);
    let e = event("msg=0123456789 suser=ééééé spt=123456 extra=abcdefgh");
    let m = mapper.map(&e, &Context::new(received()));
    assert_eq!(m.row.message.as_deref(), Some("01234567"));
    // Cut at a character boundary: four two-byte characters.
    assert_eq!(m.row.source_user_name.as_deref(), Some("éééé"));
    assert_eq!(m.row.source_port, Some(123_456));
    assert_eq!(m.row.additional_extensions.as_deref(), Some("extra=ab"));
    assert_eq!(
        m.warnings,
        [
            Warning::Truncated {
                column: "Message",
                len: 10,
                limit: 8
            },
            Warning::Truncated {
                column: "SourceUserName",
                len: 10,
                limit: 8
            },
            Warning::Truncated {
                column: "AdditionalExtensions",
                len: 14,
                limit: 8
            },
        ]
    );
    // The default cap is 64 KiB; 0 turns it off.
    assert_eq!(MappingRules::new().max_field_bytes(), 65_536);
    let big = "x".repeat(70_000);
    let e = event(&format!("msg={big}"));
    let m = mcas_csl::map(&e, &Context::new(received()));
    assert_eq!(m.row.message.as_deref().map(str::len), Some(65_536));
    let mut off = MappingRules::new();
    off.set_max_field_bytes(0);
    let off = Mapper::new(off, TimeGeneratedPolicy::ReceiveTime);
    let m = off.map(&e, &Context::new(received()));
    assert_eq!(m.row.message.as_deref().map(str::len), Some(70_000));
    assert!(m.warnings.is_empty());
}

#[test]
fn duplicates_last_wins_earlier_dropped_or_kept() {
    let e = event("cs1=first cs1Label=Rule spt=1111 cs1=second spt=x deviceCustomString1=third");
    let m = mcas_csl::map(&e, &Context::new(received()));
    assert_eq!(m.row.device_custom_string1.as_deref(), Some("third"));
    assert_eq!(m.row.source_port, None);
    assert_eq!(m.row.additional_extensions.as_deref(), Some("spt=x"));
    assert_eq!(
        m.warnings,
        [
            Warning::DuplicateDropped {
                key: "cs1",
                column: "DeviceCustomString1"
            },
            Warning::DuplicateDropped {
                key: "spt",
                column: "SourcePort"
            },
            Warning::DuplicateDropped {
                key: "cs1",
                column: "DeviceCustomString1"
            },
            Warning::ConversionFailed {
                key: "spt",
                column: "SourcePort",
                expected: ColumnType::Int
            },
        ]
    );
    let mut keep = MappingRules::new();
    keep.set_keep_duplicates(true);
    let keep = Mapper::new(keep, TimeGeneratedPolicy::ReceiveTime);
    let m = keep.map(&e, &Context::new(received()));
    assert_eq!(
        m.row.additional_extensions.as_deref(),
        Some("cs1=first;spt=1111;cs1=second;spt=x")
    );
    assert_eq!(m.warnings.len(), 1);
}

#[test]
fn externalid_and_custom_numbers_fill_the_legacy_columns_when_they_fit() {
    let e = event("externalId=-2147483648 cn1=2147483647 cn2=2147483648 cn3=-9");
    let m = mcas_csl::map(&e, &Context::new(received()));
    let r = &m.row;
    assert_eq!(
        (r.ext_id.as_deref(), r.external_id),
        (Some("-2147483648"), Some(i32::MIN))
    );
    assert_eq!(
        (r.field_device_custom_number1, r.device_custom_number1),
        (Some(2_147_483_647), Some(i32::MAX))
    );
    assert_eq!(
        (r.field_device_custom_number2, r.device_custom_number2),
        (Some(2_147_483_648), None)
    );
    assert_eq!(
        (r.field_device_custom_number3, r.device_custom_number3),
        (Some(-9), Some(-9))
    );
    // A later non-int value clears the legacy column of an earlier one.
    let e = event("externalId=5 externalId=abc");
    let m = mcas_csl::map(&e, &Context::new(received()));
    assert_eq!(
        (m.row.ext_id.as_deref(), m.row.external_id),
        (Some("abc"), None)
    );
}

#[test]
fn context_columns_and_header_verbatim() {
    let line = b"CEF:0|F-Secure|Computer Protection Premium and EDR||browsingProtection.blocked|Browsing Protection event|4|msg=Action: \"Blocked\"; Subject: \"\" details_reason=BP_Harmful accountName=some-comp details_alertType=online_safety.page.block details_categories=alcoholAndTobacco,gambling details_clientTimestamp=1661507240000 details_url=harmful.com shost=xhFKRWFRmqT3DWU";
    let e = mcas_cef::parse(line).unwrap();
    let ctx = Context::new(received())
        .with_computer(Some("127.0.0.1"))
        .with_collector_host_name(Some("collector-1"));
    let m = mcas_csl::map(&e, &ctx);
    let row = json(&m.row);
    // Spec section 8, example B.
    assert_eq!(row["DeviceVersion"], "");
    assert_eq!(row["LogSeverity"], "4");
    assert_eq!(row["Message"], "Action: \"Blocked\"; Subject: \"\"");
    assert_eq!(row["SourceHostName"], "xhFKRWFRmqT3DWU");
    assert_eq!(
        row["AdditionalExtensions"],
        "details_reason=BP_Harmful;accountName=some-comp;details_alertType=online_safety.page.block;details_categories=alcoholAndTobacco,gambling;details_clientTimestamp=1661507240000;details_url=harmful.com"
    );
    assert_eq!(row["Computer"], "127.0.0.1");
    assert_eq!(row["CollectorHostName"], "collector-1");
    assert_eq!(row["SourceSystem"], "OpsManager");
    assert!(row.get("DeviceAction").is_none());
}

#[test]
fn rows_can_outlive_the_event_as_owned_copies() {
    let owned = {
        let e = event("msg=hello suser=bob x=y");
        mcas_csl::map(&e, &Context::new(received()))
            .row
            .into_owned()
    };
    assert_eq!(owned.message.as_deref(), Some("hello"));
    assert_eq!(owned.additional_extensions.as_deref(), Some("x=y"));
}

#[test]
fn an_event_with_no_extension_has_only_header_and_context() {
    let e = mcas_cef::parse(b"CEF:1|V|P|1|id|n|Unknown|").unwrap();
    let m = mcas_csl::map(&e, &Context::new(received()));
    let text = serde_json::to_string(&m.row).unwrap();
    assert_eq!(
        text,
        r#"{"TimeGenerated":"2024-11-27T09:33:20.000Z","DeviceVendor":"V","DeviceProduct":"P","DeviceVersion":"1","DeviceEventClassID":"id","Activity":"n","LogSeverity":"Unknown","SourceSystem":"OpsManager"}"#
    );
}
