//! Kept rows (`TableQuery::row_prefix_kept`, `run_window_kept`) against the JSON objects they
//! stand for (`row_prefix`, `run_window`): the same rows kept, the same objects, the same
//! window results, the same sizes, on random rows of every column type.

#![allow(missing_docs)]

use mcas_kql::{Schema, TableQuery, Type};
use proptest::prelude::*;
use serde_json::{Map, Value as Json};

fn schema() -> Schema {
    Schema::new([
        ("TimeGenerated", Type::DateTime),
        ("S", Type::String),
        ("T", Type::String),
        ("I", Type::Int),
        ("L", Type::Long),
        ("R", Type::Real),
        ("B", Type::Bool),
        ("D", Type::Dynamic),
        ("Span", Type::Timespan),
        ("G", Type::Guid),
        ("When", Type::DateTime),
    ])
}

/// Queries of every shape: a prefix that passes every column through, that computes columns
/// of every type, that projects, narrowed to what the rest reads, and shared (several reads).
const QUERIES: &[&str] = &[
    "CommonSecurityLog | where isnotempty(S)",
    "CommonSecurityLog | where S != 'x' | sort by TimeGenerated asc",
    "CommonSecurityLog | summarize count(), make_set(S), min(When), max(R), sum(L), dcount(I) by T, B",
    "CommonSecurityLog | extend X = strcat(S, T), N = L * 2, F = toreal(I) / 3, Dt = todatetime(S), Ts = totimespan(T), Gd = toguid(S), Dy = parse_json(S), Bo = S == T | project-away D",
    "CommonSecurityLog | extend N = toint(S), M = tolong(T), V = D.x, W = D[0] | summarize make_list(N), make_list(M), make_list(V), make_list(W), make_list(Span), make_list(G) by I",
    "CommonSecurityLog | project TimeGenerated, S, D, When, R | where isnotnull(R) or isnotempty(S) | extend K = tostring(D)",
    "CommonSecurityLog | where I > 0 or L < 0 | summarize arg_max(TimeGenerated, *) by S",
    "CommonSecurityLog | project-rename Src = S | summarize c = count() by Src, bin(When, 1h)",
    "CommonSecurityLog | distinct S, I",
    "CommonSecurityLog | mv-expand D | project D, S",
    "CommonSecurityLog | where S has 'a' | join kind=inner (CommonSecurityLog | where T !has 'a' | project T, I) on I",
    "let a = CommonSecurityLog | where B == true | project S, L; let b = CommonSecurityLog | where isnotempty(T) | project S, R; a | join kind=leftouter b on S",
    "CommonSecurityLog | where When > ago(1d) | summarize max(Span), min(G), count() by S",
];

/// 2024-05-01T10:00:00Z in ticks.
const NOW: i64 = 17_145_576_000_000_000;

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        (-5i64..5).prop_map(Json::from),
        any::<i32>().prop_map(Json::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        Just(Json::from(2.5)),
        Just(Json::String(String::new())),
        "[ab ]{0,4}".prop_map(Json::String),
        ".{0,12}".prop_map(Json::String),
        Just(Json::String("2024-05-01T09:15:42.1234567Z".into())),
        Just(Json::String("2024-05-01T09:15:42Z".into())),
        Just(Json::String("0001-01-01T00:00:00Z".into())),
        Just(Json::String("12:30:00".into())),
        Just(Json::String("1.02:03:04.5".into())),
        Just(Json::String("0123456789abcdef0123456789ABCDEF".into())),
        Just(Json::String("{\"x\": [1, 2]}".into())),
        Just(Json::String("42".into())),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            prop::collection::hash_map("[xy]", inner, 0..3)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn row() -> impl Strategy<Value = Map<String, Json>> {
    let names: Vec<String> = schema().columns().iter().map(|c| c.0.clone()).collect();
    prop::collection::vec(prop::option::weighted(0.8, json_value()), names.len()).prop_map(
        move |values| {
            names
                .iter()
                .zip(values)
                .filter_map(|(n, v)| Some((n.clone(), v?)))
                .collect()
        },
    )
}

/// The size the rules engine counts for a kept row: its JSON object's members.
fn json_len(row: &Map<String, Json>) -> usize {
    fn value_len(v: &Json) -> usize {
        match v {
            Json::Null | Json::Bool(_) => 5,
            Json::Number(_) => 8,
            Json::String(s) => s.len() + 2,
            Json::Array(a) => 2 + a.iter().map(|v| value_len(v) + 1).sum::<usize>(),
            Json::Object(o) => {
                2 + o
                    .iter()
                    .map(|(k, v)| k.len() + 4 + value_len(v))
                    .sum::<usize>()
            }
        }
    }
    2 + row
        .iter()
        .map(|(k, v)| k.len() + 4 + value_len(v))
        .sum::<usize>()
}

fn check(q: &TableQuery, rows: &[Map<String, Json>]) {
    let mut maps = Vec::new();
    let mut kept = Vec::new();
    for r in rows {
        let m = q.row_prefix(r, NOW);
        let k = q.row_prefix_kept(r, NOW);
        assert_eq!(m.is_some(), k.is_some(), "{r:?}");
        if let (Some(m), Some(k)) = (m, k) {
            assert_eq!(q.kept_to_json(&k), m, "{r:?}");
            assert_eq!(k.json_len(), json_len(&m), "{m:?}");
            // As saved and restored.
            let back = q.kept_from_json(&m);
            assert_eq!(q.kept_to_json(&back), m);
            assert_eq!(back.json_len(), k.json_len());
            maps.push(m);
            kept.push(k);
        }
    }
    let want = q.run_window(&maps, NOW);
    assert_eq!(q.run_window_kept(&kept, NOW), want);
    let restored: Vec<_> = maps.iter().map(|m| q.kept_from_json(m)).collect();
    assert_eq!(q.run_window_kept(&restored, NOW), want);
}

#[test]
fn every_query_compiles() {
    for text in QUERIES {
        TableQuery::compile(text, &schema()).unwrap_or_else(|e| panic!("{text}:\n{e}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn kept_rows_read_back_as_their_json(rows in prop::collection::vec(row(), 0..8)) {
        let schema = schema();
        for text in QUERIES {
            let q = TableQuery::compile(text, &schema).unwrap_or_else(|e| panic!("{text}:\n{e}"));
            check(&q, &rows);
        }
    }
}

#[test]
fn kept_rows_of_fixed_rows() {
    let rows: Vec<Map<String, Json>> = serde_json::from_value(serde_json::json!([
        {"TimeGenerated": "2024-05-01T09:00:00Z", "S": "a", "T": "b", "I": 1, "L": 7, "R": 0.5,
         "B": true, "D": {"x": [1]}, "Span": "01:00:00", "G": "0123456789abcdef0123456789abcdef",
         "When": "2024-05-01T09:30:00.5Z"},
        {"TimeGenerated": "2024-05-01T09:01:00Z", "S": "a b", "T": "", "I": "3", "L": 1.5,
         "R": "x", "B": "true", "D": [1, 2], "Span": 5, "G": "no", "When": 17},
        {"S": "", "I": null, "D": "text", "When": "10000-01-01T00:00:00Z"},
        {}
    ]))
    .expect("rows");
    for text in QUERIES {
        let q = TableQuery::compile(text, &schema()).unwrap_or_else(|e| panic!("{text}:\n{e}"));
        check(&q, &rows);
    }
}
