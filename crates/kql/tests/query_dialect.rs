//! The query dialect (`TableQuery`): each operator's semantics with hand-computed rows, the
//! errors (with positions) for what it does not support, and whole Sentinel-style rules.

use mcas_kql::{ErrorKind, Query, Schema, TableQuery, Type};
use serde_json::{Map, Value, json};

fn schema() -> Schema {
    Schema::new([
        ("TimeGenerated", Type::DateTime),
        ("DeviceVendor", Type::String),
        ("DeviceProduct", Type::String),
        ("DeviceAction", Type::String),
        ("Activity", Type::String),
        ("SourceIP", Type::String),
        ("DestinationIP", Type::String),
        ("DestinationPort", Type::Int),
        ("SentBytes", Type::Long),
        ("RequestURL", Type::String),
        ("AdditionalExtensions", Type::String),
    ])
}

/// 2024-05-01T10:00:00Z in ticks.
const NOW: i64 = 17_145_576_000_000_000;

fn rows(v: Value) -> Vec<Map<String, Value>> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|r| r.as_object().expect("an object").clone())
        .collect()
}

/// Runs `q` over `input`: the prefix on each row, then the rest over the kept rows.
fn run(q: &str, input: Value) -> Value {
    let q = TableQuery::compile(q, &schema()).unwrap_or_else(|e| panic!("{e}"));
    let window: Vec<_> = rows(input)
        .iter()
        .filter_map(|r| q.row_prefix(r, NOW))
        .collect();
    Value::Array(
        q.run_window(&window, NOW)
            .into_iter()
            .map(Value::Object)
            .collect(),
    )
}

fn err(q: &str) -> mcas_kql::Error {
    TableQuery::compile(q, &schema()).expect_err("an error")
}

fn conns() -> Value {
    json!([
        {"TimeGenerated": "2024-05-01T09:05:00Z", "SourceIP": "10.0.0.1", "DestinationIP": "8.8.8.8", "DestinationPort": 53, "DeviceAction": "allow", "SentBytes": 100},
        {"TimeGenerated": "2024-05-01T09:10:00Z", "SourceIP": "10.0.0.1", "DestinationIP": "1.1.1.1", "DestinationPort": 443, "DeviceAction": "deny", "SentBytes": 200},
        {"TimeGenerated": "2024-05-01T09:20:00Z", "SourceIP": "10.0.0.2", "DestinationIP": "8.8.8.8", "DestinationPort": 53, "DeviceAction": "allow", "SentBytes": 50},
        {"TimeGenerated": "2024-05-01T08:59:59Z", "SourceIP": "10.0.0.1", "DestinationIP": "8.8.8.8", "DestinationPort": 22, "DeviceAction": "deny", "SentBytes": 700},
        {"TimeGenerated": "2024-05-01T09:30:00Z", "SourceIP": "10.0.0.3", "DestinationIP": "9.9.9.9", "DestinationPort": 80, "DeviceAction": "allow"}
    ])
}

#[test]
fn summarize_count_by_names_and_order() {
    assert_eq!(
        run("CommonSecurityLog | summarize count() by SourceIP", conns()),
        json!([
            {"SourceIP": "10.0.0.1", "count_": 3},
            {"SourceIP": "10.0.0.2", "count_": 1},
            {"SourceIP": "10.0.0.3", "count_": 1},
        ])
    );
    // A named aggregate, two keys, a `where` after the summarize.
    assert_eq!(
        run(
            "CommonSecurityLog | summarize N = count() by SourceIP, DestinationIP | where N > 1",
            json!([
                {"SourceIP": "a", "DestinationIP": "x"},
                {"SourceIP": "a", "DestinationIP": "y"},
                {"SourceIP": "a", "DestinationIP": "x"},
            ])
        ),
        json!([{"SourceIP": "a", "DestinationIP": "x", "N": 2}])
    );
}

#[test]
fn summarize_aggregates() {
    let out = run(
        r#"CommonSecurityLog
        | summarize countif(DeviceAction == "deny"), dcount(DestinationIP), min(SentBytes),
            max(TimeGenerated), sum(SentBytes), avg(SentBytes), make_set(DestinationPort),
            make_list(DeviceAction), Last = max(DestinationPort)
            by SourceIP
        | sort by SourceIP asc"#,
        conns(),
    );
    assert_eq!(
        out,
        json!([
            {"SourceIP": "10.0.0.1", "countif_": 2, "dcount_DestinationIP": 2, "min_SentBytes": 100,
             "max_TimeGenerated": "2024-05-01T09:10:00.0000000Z", "sum_SentBytes": 1000,
             "avg_SentBytes": 1000.0 / 3.0, "set_DestinationPort": [53, 443, 22],
             "list_DeviceAction": ["allow", "deny", "deny"], "Last": 443},
            {"SourceIP": "10.0.0.2", "countif_": 0, "dcount_DestinationIP": 1, "min_SentBytes": 50,
             "max_TimeGenerated": "2024-05-01T09:20:00.0000000Z", "sum_SentBytes": 50,
             "avg_SentBytes": 50.0, "set_DestinationPort": [53],
             "list_DeviceAction": ["allow"], "Last": 53},
            // No SentBytes: min and sum and avg over no values are null.
            {"SourceIP": "10.0.0.3", "countif_": 0, "dcount_DestinationIP": 1, "min_SentBytes": null,
             "max_TimeGenerated": "2024-05-01T09:30:00.0000000Z", "sum_SentBytes": null,
             "avg_SentBytes": null, "set_DestinationPort": [80],
             "list_DeviceAction": ["allow"], "Last": 80},
        ])
    );
    // make_set's and makeset's size limit; makelist.
    assert_eq!(
        run(
            "CommonSecurityLog | summarize makeset(DestinationPort, 2), makelist(SourceIP, 1)",
            conns()
        ),
        json!([{"set_DestinationPort": [53, 443], "list_SourceIP": ["10.0.0.1"]}])
    );
}

#[test]
fn arg_max_arg_min_take_any() {
    let out = run(
        "CommonSecurityLog | project TimeGenerated, SourceIP, DestinationPort \
         | summarize arg_max(TimeGenerated, *) by SourceIP | sort by SourceIP asc",
        conns(),
    );
    assert_eq!(
        out,
        json!([
            {"SourceIP": "10.0.0.1", "TimeGenerated": "2024-05-01T09:10:00.0000000Z", "DestinationPort": 443},
            {"SourceIP": "10.0.0.2", "TimeGenerated": "2024-05-01T09:20:00.0000000Z", "DestinationPort": 53},
            {"SourceIP": "10.0.0.3", "TimeGenerated": "2024-05-01T09:30:00.0000000Z", "DestinationPort": 80},
        ])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | where SourceIP == '10.0.0.1' | summarize arg_min(SentBytes, DestinationPort, DeviceAction)",
            conns()
        ),
        json!([{"SentBytes": 100, "DestinationPort": 53, "DeviceAction": "allow"}])
    );
    // take_any of a column prefers a non-empty value.
    assert_eq!(
        run(
            "CommonSecurityLog | summarize take_any(RequestURL) by SourceIP",
            json!([
                {"SourceIP": "a"},
                {"SourceIP": "a", "RequestURL": "http://x/"},
                {"SourceIP": "a", "RequestURL": "http://y/"},
            ])
        ),
        json!([{"SourceIP": "a", "RequestURL": "http://x/"}])
    );
}

#[test]
fn summarize_over_no_rows() {
    // Without `by`: one row; with `by`: none.
    assert_eq!(
        run(
            "CommonSecurityLog | where SourceIP == 'none' | summarize count(), dcount(SourceIP), make_set(SourceIP)",
            conns()
        ),
        json!([{"count_": 0, "dcount_SourceIP": 0, "set_SourceIP": []}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | where SourceIP == 'none' | summarize count() by SourceIP",
            conns()
        ),
        json!([])
    );
}

#[test]
fn summarize_by_bin_and_expressions() {
    assert_eq!(
        run(
            "CommonSecurityLog | summarize count() by bin(TimeGenerated, 1h)",
            conns()
        ),
        json!([
            {"TimeGenerated": "2024-05-01T09:00:00.0000000Z", "count_": 4},
            {"TimeGenerated": "2024-05-01T08:00:00.0000000Z", "count_": 1},
        ])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | summarize Bytes = sum(SentBytes) by Hour = bin(TimeGenerated, 1h), Deny = DeviceAction == 'deny'",
            conns()
        ),
        json!([
            {"Hour": "2024-05-01T09:00:00.0000000Z", "Deny": false, "Bytes": 150},
            {"Hour": "2024-05-01T09:00:00.0000000Z", "Deny": true, "Bytes": 200},
            {"Hour": "2024-05-01T08:00:00.0000000Z", "Deny": true, "Bytes": 700},
        ])
    );
    // An expression key without a name is Column1.
    assert_eq!(
        run(
            "CommonSecurityLog | summarize count() by tolower(DeviceAction)",
            conns()
        ),
        json!([{"Column1": "allow", "count_": 3}, {"Column1": "deny", "count_": 2}])
    );
}

#[test]
fn between_has_any_in_ci() {
    assert_eq!(
        run(
            "CommonSecurityLog | where DestinationPort between (50 .. 100) | project DestinationPort",
            conns()
        ),
        json!([{"DestinationPort": 53}, {"DestinationPort": 53}, {"DestinationPort": 80}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | where DestinationPort !between (50 .. 100) | project DestinationPort",
            conns()
        ),
        json!([{"DestinationPort": 443}, {"DestinationPort": 22}])
    );
    // A datetime range given as a start and a timespan (both ends included).
    assert_eq!(
        run(
            "CommonSecurityLog | where TimeGenerated between (datetime(2024-05-01T09:10:00Z) .. 10m) | project SourceIP",
            conns()
        ),
        json!([{"SourceIP": "10.0.0.1"}, {"SourceIP": "10.0.0.2"}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | where TimeGenerated between (ago(1h) .. now()) | count",
            conns()
        ),
        json!([{"Count": 4}])
    );
    let urls = json!([
        {"RequestURL": "http://evil.example/payload.exe"},
        {"RequestURL": "http://good.example/index.html"},
        {"RequestURL": "http://x.example/PowerShell/run"},
    ]);
    assert_eq!(
        run(
            "CommonSecurityLog | where RequestURL has_any ('payload.exe', 'powershell') | project RequestURL",
            urls.clone()
        ),
        json!([
            {"RequestURL": "http://evil.example/payload.exe"},
            {"RequestURL": "http://x.example/PowerShell/run"},
        ])
    );
    // has_any over a dynamic array from a let; has_all.
    assert_eq!(
        run(
            "let terms = dynamic(['index.html', 'nothing']);\nCommonSecurityLog | where RequestURL has_any (terms) | count",
            urls.clone()
        ),
        json!([{"Count": 1}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | where RequestURL has_all ('x', 'run') | count",
            urls
        ),
        json!([{"Count": 1}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | where DeviceAction in~ ('DENY', 'Drop') | count",
            conns()
        ),
        json!([{"Count": 2}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | where DeviceAction !in~ ('DENY', 'Drop') | count",
            conns()
        ),
        json!([{"Count": 3}])
    );
}

#[test]
fn sort_top_take_distinct_count_reorder() {
    assert_eq!(
        run(
            "CommonSecurityLog | sort by SentBytes | project SentBytes",
            conns()
        ),
        // Descending by default, nulls last.
        json!([{"SentBytes": 700}, {"SentBytes": 200}, {"SentBytes": 100}, {"SentBytes": 50}, {"SentBytes": null}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | order by SentBytes asc | project SentBytes",
            conns()
        ),
        // Ascending: nulls first.
        json!([{"SentBytes": null}, {"SentBytes": 50}, {"SentBytes": 100}, {"SentBytes": 200}, {"SentBytes": 700}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | sort by SentBytes asc nulls last, SourceIP desc | project SentBytes | take 2",
            conns()
        ),
        json!([{"SentBytes": 50}, {"SentBytes": 100}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | sort by SourceIP asc, DestinationPort desc | project SourceIP, DestinationPort",
            conns()
        ),
        json!([
            {"SourceIP": "10.0.0.1", "DestinationPort": 443},
            {"SourceIP": "10.0.0.1", "DestinationPort": 53},
            {"SourceIP": "10.0.0.1", "DestinationPort": 22},
            {"SourceIP": "10.0.0.2", "DestinationPort": 53},
            {"SourceIP": "10.0.0.3", "DestinationPort": 80},
        ])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | top 2 by DestinationPort | project DestinationPort",
            conns()
        ),
        json!([{"DestinationPort": 443}, {"DestinationPort": 80}])
    );
    assert_eq!(
        run("CommonSecurityLog | limit 1 | project SourceIP", conns()),
        json!([{"SourceIP": "10.0.0.1"}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | distinct SourceIP, DeviceAction",
            conns()
        ),
        json!([
            {"SourceIP": "10.0.0.1", "DeviceAction": "allow"},
            {"SourceIP": "10.0.0.1", "DeviceAction": "deny"},
            {"SourceIP": "10.0.0.2", "DeviceAction": "allow"},
            {"SourceIP": "10.0.0.3", "DeviceAction": "allow"},
        ])
    );
    assert_eq!(
        run("CommonSecurityLog | count", conns()),
        json!([{"Count": 5}])
    );
    let q = TableQuery::compile(
        "CommonSecurityLog | project SourceIP, DestinationPort, DeviceAction | project-reorder Dev*, DestinationPort",
        &schema(),
    )
    .expect("compiles");
    assert_eq!(
        q.output_schema(),
        [
            ("DeviceAction".to_string(), Type::String),
            ("DestinationPort".to_string(), Type::Int),
            ("SourceIP".to_string(), Type::String),
        ]
    );
}

#[test]
fn mv_expand() {
    assert_eq!(
        run(
            "CommonSecurityLog | where SourceIP == '10.0.0.2' | extend Parts = split(DestinationIP, '.') | mv-expand Parts | project Parts",
            conns()
        ),
        json!([{"Parts": "8"}, {"Parts": "8"}, {"Parts": "8"}, {"Parts": "8"}])
    );
    assert_eq!(
        run(
            "CommonSecurityLog | take 1 | mvexpand Port = dynamic([1, 2, 3]) to typeof(long) limit 2 | project Port",
            conns()
        ),
        json!([{"Port": 1}, {"Port": 2}])
    );
    // An empty array gives no rows.
    assert_eq!(
        run(
            "CommonSecurityLog | mv-expand X = dynamic([]) | count",
            conns()
        ),
        json!([{"Count": 0}])
    );
}

#[test]
fn join_of_the_table_with_itself() {
    let input = json!([
        {"SourceIP": "a", "DeviceAction": "deny", "DestinationPort": 22},
        {"SourceIP": "a", "DeviceAction": "deny", "DestinationPort": 23},
        {"SourceIP": "b", "DeviceAction": "deny", "DestinationPort": 22},
        {"SourceIP": "a", "DeviceAction": "allow", "DestinationPort": 443},
        {"SourceIP": "c", "DeviceAction": "allow", "DestinationPort": 80},
    ]);
    let q = "CommonSecurityLog | where DeviceAction == 'deny' | summarize Denied = count() by SourceIP \
             | join kind=inner (CommonSecurityLog | where DeviceAction == 'allow' | project SourceIP, DestinationPort) on SourceIP";
    let compiled = TableQuery::compile(q, &schema()).expect("compiles");
    assert_eq!(compiled.tables(), ["CommonSecurityLog"]);
    assert_eq!(
        run(q, input.clone()),
        json!([{"SourceIP": "a", "Denied": 2, "SourceIP1": "a", "DestinationPort": 443}])
    );
    // innerunique (the default): one left row per key.
    assert_eq!(
        run(
            "CommonSecurityLog | where DeviceAction == 'deny' | project SourceIP, DestinationPort \
             | join (CommonSecurityLog | where DeviceAction == 'allow' | project Src = SourceIP) on $left.SourceIP == $right.Src",
            input.clone()
        ),
        json!([{"SourceIP": "a", "DestinationPort": 22, "Src": "a"}])
    );
    // inner keeps every pair.
    assert_eq!(
        run(
            "CommonSecurityLog | where DeviceAction == 'deny' | project SourceIP, DestinationPort \
             | join kind=inner (CommonSecurityLog | where DeviceAction == 'allow' | project Src = SourceIP) on $left.SourceIP == $right.Src",
            input.clone()
        ),
        json!([
            {"SourceIP": "a", "DestinationPort": 22, "Src": "a"},
            {"SourceIP": "a", "DestinationPort": 23, "Src": "a"},
        ])
    );
    // leftanti: the denied sources never allowed.
    assert_eq!(
        run(
            "let allowed = CommonSecurityLog | where DeviceAction == 'allow';\n\
             CommonSecurityLog | where DeviceAction == 'deny' | join kind=leftanti (allowed) on SourceIP | distinct SourceIP",
            input.clone()
        ),
        json!([{"SourceIP": "b"}])
    );
    // The prefix keeps a row that passes either side's filter; the rest is left out.
    let rows = rows(json!([
        {"SourceIP": "a", "DeviceAction": "deny"},
        {"SourceIP": "a", "DeviceAction": "allow"},
        {"SourceIP": "a", "DeviceAction": "drop"},
    ]));
    let kept: Vec<_> = rows
        .iter()
        .filter_map(|r| compiled.row_prefix(r, NOW))
        .collect();
    assert_eq!(kept.len(), 2);
}

#[test]
fn lets_and_materialize() {
    assert_eq!(
        run(
            "let threshold = 1;\nlet ports = dynamic([22, 23]);\n\
             let denied = materialize(CommonSecurityLog | where DeviceAction == 'deny');\n\
             denied | where DestinationPort in (ports) or SentBytes > 600 | summarize c = count() by SourceIP | where c >= threshold",
            conns()
        ),
        json!([{"SourceIP": "10.0.0.1", "c": 1}])
    );
}

#[test]
fn functions_of_the_query_dialect() {
    let out = run(
        r#"CommonSecurityLog | take 1
        | extend A = iff(DestinationPort == 53, "dns", "other"),
                 B = column_ifexists("NoSuchColumn", "fallback"),
                 C = column_ifexists("SourceIP", ""),
                 D = arraylength(dynamic([1, 2, 3])),
                 E = not(DeviceAction == "deny"),
                 F = replace(@"(\d+)\.(\d+)", @"\2-\1", "10.20"),
                 G = replace_string("a.b.c", ".", "/"),
                 H = coalesce(RequestURL, AdditionalExtensions, "none"),
                 I = ipv4_is_private(SourceIP),
                 J = ipv4_is_private("8.8.8.8"),
                 K = ipv4_is_in_range("192.168.1.7", "192.168.0.0/16"),
                 L = ipv4_is_in_range("192.169.1.7", "192.168.0.0/16"),
                 M = todecimal("1.5"),
                 N = parse_url("https://u:p@host.example:8443/a/b?x=1&y=a%20b#frag"),
                 O = parse_urlquery("k1=v1&k2=v%2F2"),
                 P = trim(@"[ ]+", "  padded  ")
        | project A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P"#,
        conns(),
    );
    assert_eq!(
        out,
        json!([{
            "A": "dns", "B": "fallback", "C": "10.0.0.1", "D": 3, "E": true, "F": "20-10",
            "G": "a/b/c", "H": "none", "I": true, "J": false, "K": true, "L": false, "M": 1.5,
            "N": {"Scheme": "https", "Host": "host.example", "Port": "8443", "Path": "/a/b",
                  "Username": "u", "Password": "p", "Query Parameters": {"x": "1", "y": "a b"},
                  "Fragment": "frag"},
            "O": {"Query Parameters": {"k1": "v1", "k2": "v/2"}},
            "P": "padded",
        }])
    );
}

#[test]
fn errors_have_positions() {
    let e = err("CommonSecurityLog\n| union Syslog");
    assert_eq!((e.line(), e.column()), (2, 3));
    assert_eq!(
        e.kind(),
        &ErrorKind::UnsupportedInQuery("the 'union' operator".into())
    );
    let e = err("CommonSecurityLog | where DeviceAction == 'deny' | evaluate bag_unpack(x)");
    assert_eq!(e.offset(), 51);
    assert_eq!(
        e.message(),
        "the 'evaluate' operator is not supported in the query dialect"
    );
    let e = err("CommonSecurityLog | extend x = geo_info_from_ip_address(SourceIP)");
    assert_eq!(e.offset(), 31);
    assert!(
        matches!(e.kind(), ErrorKind::UnsupportedInQuery(m) if m.contains("geo_info_from_ip_address()"))
    );
    let e = err("SecurityEvent | where EventID == 4625");
    assert_eq!(e.offset(), 0);
    assert!(
        matches!(e.kind(), ErrorKind::UnsupportedTable { name, .. } if name == "SecurityEvent")
    );
    let e = err("CommonSecurityLog | join kind=inner (CommonSecurityLg) on SourceIP");
    assert_eq!(e.offset(), 37);
    assert_eq!(
        e.kind(),
        &ErrorKind::UnsupportedTable {
            name: "CommonSecurityLg".into(),
            suggestion: Some("CommonSecurityLog".into())
        }
    );
    let e = err("CommonSecurityLog | summarize percentile(SentBytes, 95) by SourceIP");
    assert_eq!(e.offset(), 30);
    assert_eq!(
        e.kind(),
        &ErrorKind::UnsupportedInQuery("the aggregate percentile()".into())
    );
    let e = err("CommonSecurityLog | extend n = count()");
    assert_eq!(e.offset(), 31);
    let e = err("CommonSecurityLog | join kind=fullouter (CommonSecurityLog) on SourceIP");
    assert_eq!(e.offset(), 30);
    let e = err("CommonSecurityLog | summarize count() by SourceIp");
    assert!(
        matches!(e.kind(), ErrorKind::UnknownColumn { suggestion: Some(s), .. } if s == "SourceIP")
    );
    assert_eq!(e.offset(), 41);
}

#[test]
fn the_transformation_dialect_still_refuses_the_query_dialect() {
    let s = schema();
    for (q, msg) in [
        (
            "source | summarize count() by SourceIP",
            "summarize is not supported in transformations",
        ),
        (
            "source | sort by SourceIP",
            "sort by is not supported in transformations",
        ),
        (
            "source | mv-expand x",
            "mv-expand is not supported in transformations",
        ),
        (
            "source | where DestinationPort between (1 .. 2)",
            "syntax error: the 'between' operator is not supported in transformations",
        ),
        (
            "source | where RequestURL has_any ('a')",
            "syntax error: the 'has_any' operator is not supported in transformations",
        ),
        (
            "source | extend x = column_ifexists('a', 1)",
            "transformations spell it columnifexists(), not column_ifexists()",
        ),
        (
            "source | extend x = coalesce(SourceIP, 'a')",
            "unknown or unsupported function coalesce()",
        ),
        (
            "source | extend x = ipv4_is_private(SourceIP)",
            "unknown or unsupported function ipv4_is_private()",
        ),
    ] {
        let e = Query::compile(q, &s).expect_err(q);
        assert_eq!(e.message(), msg, "{q}");
    }
}

// ---- whole rules ----------------------------------------------------------------------------

/// The Azure-Sentinel rule "Palo Alto - possible internal to external port scanning".
#[test]
fn rule_palo_alto_port_scan() {
    let q = r#"CommonSecurityLog
| where isnotempty(DestinationPort) and DeviceAction !in ("reset-both", "deny")
| where DestinationPort !between (toint(49512) .. toint(65535))
| summarize StartTimeUtc = min(TimeGenerated), EndTimeUtc = max(TimeGenerated), count() by SourceIP, DestinationPort
| where count_ >= 3
| extend IPCustomEntity = SourceIP"#;
    let mut input = Vec::new();
    // 10.1.1.1 hits port 445 four times (allowed): fires.
    for m in 0..4 {
        input.push(
            json!({"TimeGenerated": format!("2024-05-01T09:0{m}:00Z"), "SourceIP": "10.1.1.1",
                          "DestinationPort": 445, "DeviceAction": "allow"}),
        );
    }
    // 10.1.1.2 three times, but denied: not counted.
    for m in 0..3 {
        input.push(
            json!({"TimeGenerated": format!("2024-05-01T09:1{m}:00Z"), "SourceIP": "10.1.1.2",
                          "DestinationPort": 445, "DeviceAction": "deny"}),
        );
    }
    // 10.1.1.3 three times to an ephemeral port: excluded by !between.
    for m in 0..3 {
        input.push(
            json!({"TimeGenerated": format!("2024-05-01T09:2{m}:00Z"), "SourceIP": "10.1.1.3",
                          "DestinationPort": 50000, "DeviceAction": "allow"}),
        );
    }
    // 10.1.1.4 twice: under the threshold; and a row without a port.
    for m in 0..2 {
        input.push(
            json!({"TimeGenerated": format!("2024-05-01T09:3{m}:00Z"), "SourceIP": "10.1.1.4",
                          "DestinationPort": 3389, "DeviceAction": "allow"}),
        );
    }
    input.push(json!({"TimeGenerated": "2024-05-01T09:40:00Z", "SourceIP": "10.1.1.4", "DeviceAction": "allow"}));
    assert_eq!(
        run(q, Value::Array(input)),
        json!([{
            "SourceIP": "10.1.1.1", "DestinationPort": 445,
            "StartTimeUtc": "2024-05-01T09:00:00.0000000Z", "EndTimeUtc": "2024-05-01T09:03:00.0000000Z",
            "count_": 4, "IPCustomEntity": "10.1.1.1",
        }])
    );
}

/// A burst of denies from one source in 5-minute bins (in the style of the Fortinet and
/// Palo Alto "high volume of denies" rules).
#[test]
fn rule_burst_of_denies() {
    let q = r#"let threshold = 3;
let timeframe = 1h;
CommonSecurityLog
| where TimeGenerated > ago(timeframe)
| where DeviceVendor in~ ("Fortinet", "Palo Alto Networks")
| where DeviceAction has_any ("deny", "drop", "block")
| summarize Denies = count(), Targets = make_set(DestinationIP), Ports = dcount(DestinationPort)
    by SourceIP, DeviceVendor, Window = bin(TimeGenerated, 5m)
| where Denies >= threshold
| top 10 by Denies desc
| project-reorder Window, SourceIP"#;
    let mut input = Vec::new();
    let push = |input: &mut Vec<Value>,
                t: &str,
                src: &str,
                vendor: &str,
                action: &str,
                dst: &str,
                port: i32| {
        input.push(
            json!({"TimeGenerated": t, "SourceIP": src, "DeviceVendor": vendor,
                          "DeviceAction": action, "DestinationIP": dst, "DestinationPort": port}),
        );
    };
    // 4 denies from 10.9.9.9 in the 09:10 bin (two targets, three ports).
    push(
        &mut input,
        "2024-05-01T09:10:01Z",
        "10.9.9.9",
        "Fortinet",
        "deny",
        "1.1.1.1",
        22,
    );
    push(
        &mut input,
        "2024-05-01T09:11:00Z",
        "10.9.9.9",
        "Fortinet",
        "Deny",
        "1.1.1.1",
        23,
    );
    push(
        &mut input,
        "2024-05-01T09:12:00Z",
        "10.9.9.9",
        "Fortinet",
        "client-rst drop",
        "2.2.2.2",
        22,
    );
    push(
        &mut input,
        "2024-05-01T09:14:59Z",
        "10.9.9.9",
        "Fortinet",
        "deny",
        "2.2.2.2",
        25,
    );
    // The 5th is in the next bin.
    push(
        &mut input,
        "2024-05-01T09:15:00Z",
        "10.9.9.9",
        "Fortinet",
        "deny",
        "2.2.2.2",
        25,
    );
    // 3 from 10.8.8.8 via Palo Alto (vendor matched case-insensitively).
    push(
        &mut input,
        "2024-05-01T09:20:00Z",
        "10.8.8.8",
        "palo alto networks",
        "block-url",
        "3.3.3.3",
        80,
    );
    push(
        &mut input,
        "2024-05-01T09:21:00Z",
        "10.8.8.8",
        "palo alto networks",
        "block-url",
        "3.3.3.3",
        80,
    );
    push(
        &mut input,
        "2024-05-01T09:22:00Z",
        "10.8.8.8",
        "palo alto networks",
        "block-url",
        "3.3.3.3",
        80,
    );
    // Too old (more than an hour before NOW), or allowed, or another vendor.
    push(
        &mut input,
        "2024-05-01T08:00:00Z",
        "10.7.7.7",
        "Fortinet",
        "deny",
        "4.4.4.4",
        1,
    );
    push(
        &mut input,
        "2024-05-01T08:00:01Z",
        "10.7.7.7",
        "Fortinet",
        "deny",
        "4.4.4.4",
        1,
    );
    push(
        &mut input,
        "2024-05-01T08:00:02Z",
        "10.7.7.7",
        "Fortinet",
        "deny",
        "4.4.4.4",
        1,
    );
    push(
        &mut input,
        "2024-05-01T09:30:00Z",
        "10.6.6.6",
        "Fortinet",
        "accept",
        "5.5.5.5",
        1,
    );
    push(
        &mut input,
        "2024-05-01T09:31:00Z",
        "10.6.6.6",
        "Cisco",
        "deny",
        "5.5.5.5",
        1,
    );
    assert_eq!(
        run(q, Value::Array(input)),
        json!([
            {"Window": "2024-05-01T09:10:00.0000000Z", "SourceIP": "10.9.9.9", "DeviceVendor": "Fortinet",
             "Denies": 4, "Targets": ["1.1.1.1", "2.2.2.2"], "Ports": 3},
            {"Window": "2024-05-01T09:20:00.0000000Z", "SourceIP": "10.8.8.8", "DeviceVendor": "palo alto networks",
             "Denies": 3, "Targets": ["3.3.3.3"], "Ports": 1},
        ])
    );
}

/// A rare destination: a destination contacted by only one internal source in the window,
/// and never before the last hour (a join of the table with itself).
#[test]
fn rule_rare_destination() {
    let q = r#"let lookback = 2h;
let recent = 30m;
let known = CommonSecurityLog
  | where TimeGenerated between (ago(lookback) .. ago(recent))
  | distinct DestinationIP;
CommonSecurityLog
| where TimeGenerated > ago(recent)
| where ipv4_is_private(SourceIP) and not(ipv4_is_private(DestinationIP))
| summarize Sources = dcount(SourceIP), FirstSeen = min(TimeGenerated), Src = take_any(SourceIP) by DestinationIP
| where Sources == 1
| join kind=leftanti known on DestinationIP
| extend HostCustomEntity = Src
| order by DestinationIP asc"#;
    let input = json!([
        // Seen an hour ago: known.
        {"TimeGenerated": "2024-05-01T09:00:00Z", "SourceIP": "10.0.0.5", "DestinationIP": "20.0.0.1"},
        {"TimeGenerated": "2024-05-01T09:45:00Z", "SourceIP": "10.0.0.5", "DestinationIP": "20.0.0.1"},
        // New, one source: fires.
        {"TimeGenerated": "2024-05-01T09:40:00Z", "SourceIP": "10.0.0.6", "DestinationIP": "30.0.0.1"},
        {"TimeGenerated": "2024-05-01T09:50:00Z", "SourceIP": "10.0.0.6", "DestinationIP": "30.0.0.1"},
        // New, two sources: not rare.
        {"TimeGenerated": "2024-05-01T09:41:00Z", "SourceIP": "10.0.0.7", "DestinationIP": "40.0.0.1"},
        {"TimeGenerated": "2024-05-01T09:42:00Z", "SourceIP": "10.0.0.8", "DestinationIP": "40.0.0.1"},
        // Internal destination: not counted. New, one source: fires.
        {"TimeGenerated": "2024-05-01T09:43:00Z", "SourceIP": "10.0.0.9", "DestinationIP": "192.168.1.1"},
        {"TimeGenerated": "2024-05-01T09:44:00Z", "SourceIP": "172.16.0.1", "DestinationIP": "31.0.0.1"},
    ]);
    let compiled = TableQuery::compile(q, &schema()).expect("compiles");
    assert_eq!(compiled.tables(), ["CommonSecurityLog"]);
    assert_eq!(
        run(q, input),
        json!([
            {"DestinationIP": "30.0.0.1", "Sources": 1, "FirstSeen": "2024-05-01T09:40:00.0000000Z",
             "Src": "10.0.0.6", "HostCustomEntity": "10.0.0.6"},
            {"DestinationIP": "31.0.0.1", "Sources": 1, "FirstSeen": "2024-05-01T09:44:00.0000000Z",
             "Src": "172.16.0.1", "HostCustomEntity": "172.16.0.1"},
        ])
    );
}

#[test]
fn syslog_is_a_table_too() {
    let s = Schema::new([
        ("TimeGenerated", Type::DateTime),
        ("Computer", Type::String),
        ("SyslogMessage", Type::String),
    ]);
    let q = TableQuery::compile(
        "Syslog | where SyslogMessage has 'Failed password' | summarize Failures = count() by Computer",
        &s,
    )
    .expect("compiles");
    assert_eq!(q.tables(), ["Syslog"]);
    let input = rows(json!([
        {"Computer": "h1", "SyslogMessage": "Failed password for root"},
        {"Computer": "h1", "SyslogMessage": "Accepted password for root"},
        {"Computer": "h1", "SyslogMessage": "Failed password for bob"},
    ]));
    let window: Vec<_> = input.iter().filter_map(|r| q.row_prefix(r, NOW)).collect();
    // The prefix keeps the matching rows, without their empty columns.
    assert_eq!(window.len(), 2);
    assert_eq!(
        Value::Array(
            q.run_window(&window, NOW)
                .into_iter()
                .map(Value::Object)
                .collect()
        ),
        json!([{"Computer": "h1", "Failures": 2}])
    );
}

#[test]
fn clock_steps_run_with_the_window() {
    // `ago()` is evaluated when the window runs, not when the row arrives: a row kept at
    // 09:00 is out of the last 30 minutes at 10:00.
    let q = TableQuery::compile(
        "CommonSecurityLog | where DeviceAction == 'deny' | where TimeGenerated > ago(30m) | count",
        &schema(),
    )
    .expect("compiles");
    let input = rows(json!([
        {"TimeGenerated": "2024-05-01T09:00:00Z", "DeviceAction": "deny"},
        {"TimeGenerated": "2024-05-01T09:45:00Z", "DeviceAction": "deny"},
        {"TimeGenerated": "2024-05-01T09:46:00Z", "DeviceAction": "allow"},
    ]));
    const NINE: i64 = NOW - 36_000_000_000;
    let window: Vec<_> = input.iter().filter_map(|r| q.row_prefix(r, NINE)).collect();
    assert_eq!(window.len(), 2);
    assert_eq!(
        Value::Array(
            q.run_window(&window, NOW)
                .into_iter()
                .map(Value::Object)
                .collect()
        ),
        json!([{"Count": 1}])
    );
}

#[test]
fn join_keys_compare_numbers_across_types() {
    // An int column on the left, a long (a count) on the right.
    assert_eq!(
        run(
            "CommonSecurityLog | where SourceIP == '10.0.0.2' | project DestinationPort \
             | join kind=inner (CommonSecurityLog | where SourceIP == '10.0.0.3' | summarize C = count() by SourceIP \
                 | extend DestinationPort = C + 52) on DestinationPort",
            conns()
        ),
        json!([{"DestinationPort": 53, "SourceIP": "10.0.0.3", "C": 1, "DestinationPort1": 53}])
    );
}

#[test]
fn the_rule_queries_of_the_test_data_compile() {
    let data = include_str!("data/rules.jsonl");
    let mut n = 0;
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("JSON");
        let text = case["query"].as_str().expect("a query");
        let q = TableQuery::compile(text, &schema())
            .unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        assert_eq!(q.tables(), ["CommonSecurityLog"], "{}", case["name"]);
        // Each runs over the connections without panicking, to a table of its output columns.
        let window: Vec<_> = rows(conns())
            .iter()
            .filter_map(|r| q.row_prefix(r, NOW))
            .collect();
        for row in q.run_window(&window, NOW) {
            let names: Vec<&str> = q.output_schema().iter().map(|c| c.0.as_str()).collect();
            let mut got: Vec<&str> = row.keys().map(String::as_str).collect();
            let mut want = names.clone();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{}", case["name"]);
        }
        n += 1;
    }
    assert_eq!(n, 7);
}

#[test]
fn mv_expand_of_a_set_of_ports() {
    let data = include_str!("data/rules.jsonl");
    let line = data
        .lines()
        .find(|l| l.contains("mv_expand_ports"))
        .expect("the case");
    let case: Value = serde_json::from_str(line).expect("JSON");
    assert_eq!(
        run(case["query"].as_str().expect("a query"), conns()),
        json!([
            {"SourceIP": "10.0.0.1", "Port": 22},
            {"SourceIP": "10.0.0.1", "Port": 443},
        ])
    );
}

#[test]
fn join_kinds() {
    let input = json!([
        {"SourceIP": "a", "DeviceAction": "deny"},
        {"SourceIP": "b", "DeviceAction": "deny"},
        {"SourceIP": "a", "DeviceAction": "allow", "DestinationPort": 1},
        {"SourceIP": "c", "DeviceAction": "allow", "DestinationPort": 2},
    ]);
    let q = |kind: &str| {
        format!(
            "CommonSecurityLog | where DeviceAction == 'deny' | project SourceIP \
             | join kind={kind} (CommonSecurityLog | where DeviceAction == 'allow' | project SourceIP, DestinationPort) on SourceIP \
             | sort by SourceIP asc"
        )
    };
    assert_eq!(
        run(&q("leftouter"), input.clone()),
        json!([
            {"SourceIP": "a", "SourceIP1": "a", "DestinationPort": 1},
            {"SourceIP": "b", "SourceIP1": "", "DestinationPort": null},
        ])
    );
    assert_eq!(
        run(&q("leftsemi"), input.clone()),
        json!([{"SourceIP": "a"}])
    );
    assert_eq!(
        run(&q("rightanti"), input.clone()),
        json!([{"SourceIP": "c", "DestinationPort": 2}])
    );
    assert_eq!(
        run(&q("rightsemi"), input),
        json!([{"SourceIP": "a", "DestinationPort": 1}])
    );
}

#[test]
fn conditional_aggregates_and_any() {
    assert_eq!(
        run(
            "CommonSecurityLog | summarize dcountif(DestinationIP, DeviceAction == 'allow'), \
             sumif(SentBytes, DeviceAction == 'deny'), any(SourceIP)",
            conns()
        ),
        json!([{"dcountif_DestinationIP": 2, "sumif_SentBytes": 900, "any_SourceIP": "10.0.0.1"}])
    );
}

#[test]
fn blow_ups_are_bounded() {
    // Lets that double at each step are an error, not a hang: in steps, and in columns.
    for (kind, msg) in [
        (
            "leftsemi",
            "syntax error: query too large once its lets are inlined",
        ),
        ("inner", "syntax error: a join of more than 4096 columns"),
    ] {
        let mut q = String::from("let t0 = CommonSecurityLog | take 1;\n");
        for k in 1..20 {
            q.push_str(&format!(
                "let t{k} = t{} | join kind={kind} (t{}) on SourceIP;\n",
                k - 1,
                k - 1
            ));
        }
        q.push_str("t19 | count");
        assert_eq!(err(&q).message(), msg);
    }
    // Deeply nested joins are an error, not a stack overflow.
    let mut q = String::from("CommonSecurityLog");
    for _ in 0..200 {
        q.push_str(" | join (CommonSecurityLog");
    }
    q.push_str(&") on SourceIP".repeat(200));
    assert!(matches!(err(&q).kind(), ErrorKind::Syntax(m) if m.contains("nested")));
}

#[test]
fn mv_expand_is_bounded() {
    // mv-expand stops at 500,000 rows.
    let arr: Vec<i32> = (0..800).collect();
    let text = format!(
        "let a = dynamic({arr:?});\nCommonSecurityLog | take 1 | project x = a | mv-expand x | mv-expand y = a | count"
    );
    assert_eq!(run(&text, conns()), json!([{"Count": 500_000}]));
}

#[test]
fn a_table_query_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<TableQuery>();
}

#[test]
fn summarize_without_aggregates_and_take_any_star() {
    assert_eq!(
        run("CommonSecurityLog | summarize by DeviceAction", conns()),
        json!([{"DeviceAction": "allow"}, {"DeviceAction": "deny"}])
    );
    // take_any(*): every column but the `by` keys, from one row of the group.
    assert_eq!(
        run(
            "CommonSecurityLog | project SourceIP, DestinationPort | summarize take_any(*) by SourceIP | where SourceIP == '10.0.0.2'",
            conns()
        ),
        json!([{"SourceIP": "10.0.0.2", "DestinationPort": 53}])
    );
}

#[test]
fn kept_rows_hold_only_the_columns_the_rest_reads() {
    let kept = |q: &str| -> Vec<String> {
        let q = TableQuery::compile(q, &schema()).expect("compiles");
        let row = rows(conns()).remove(0);
        let mut k: Vec<String> = q
            .row_prefix(&row, NOW)
            .expect("kept")
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    // Up to a summarize: its keys and arguments.
    assert_eq!(
        kept(
            "CommonSecurityLog | where DeviceAction == 'allow' | summarize count(), dcount(DestinationIP) by SourceIP, bin(TimeGenerated, 1h)"
        ),
        ["DestinationIP", "SourceIP", "TimeGenerated"]
    );
    // Steps before the closing one add theirs; column_ifexists names a column by text.
    assert_eq!(
        kept(
            "CommonSecurityLog | sort by SentBytes | extend P = column_ifexists('DestinationPort', 0) | project SourceIP, P"
        ),
        ["DestinationPort", "SentBytes", "SourceIP"]
    );
    // The columns reach the output, or '*' reads them all: every (non-empty) column.
    let all = [
        "DestinationIP",
        "DestinationPort",
        "DeviceAction",
        "SentBytes",
        "SourceIP",
        "TimeGenerated",
    ];
    assert_eq!(kept("CommonSecurityLog | sort by SentBytes"), all);
    assert_eq!(
        kept("CommonSecurityLog | summarize arg_max(TimeGenerated, *) by SourceIP"),
        all
    );
}
