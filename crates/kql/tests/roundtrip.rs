//! The canonical text (`Query::to_kql`, `Syntax`'s `Display`) reads back as the same query:
//! for every query of the test data and for generated ones, print then parse gives an equal
//! syntax tree, and compiling the printed text against the same schema gives the same plan.

#![allow(missing_docs)]

use mcas_kql::{Dialect, Query, Schema, Syntax, Type};
use proptest::prelude::*;
use serde_json::Value as Json;

const T: Dialect = Dialect::Transformation;

/// Compiles a query text against a fixed schema (or leniently).
type Compile = dyn Fn(&str) -> Result<Query, mcas_kql::Error>;

/// Checks one query text; `compiled` is the query compiled from it, if it compiles.
fn check(text: &str, compiled: Option<(&Query, &Compile)>) -> Result<(), String> {
    let Ok(syntax) = Syntax::parse(text, T) else {
        return Ok(());
    };
    let printed = syntax.to_string();
    let again = Syntax::parse(&printed, T)
        .map_err(|e| format!("the canonical text does not parse:\n{printed}\n{e}"))?;
    if again != syntax {
        return Err(format!(
            "parse(print(q)) differs from q\n  text: {text}\n  printed: {printed}\n  {syntax:?}\n  {again:?}"
        ));
    }
    if again.to_string() != printed {
        return Err(format!("printing is not idempotent: {printed}"));
    }
    if let Some((q, compile)) = compiled {
        if q.to_kql() != printed {
            return Err(format!(
                "Query::to_kql differs from the syntax's text: {}",
                q.to_kql()
            ));
        }
        let q2 = compile(&printed)
            .map_err(|e| format!("printed text does not compile:\n{printed}\n{e}"))?;
        if !q.same_plan(&q2) {
            return Err(format!("different plan after printing: {printed}"));
        }
    }
    Ok(())
}

fn vector_case(case: &Json) -> Result<(), String> {
    let text = case["query"].as_str().unwrap_or_default();
    let types: Vec<(String, Type)> = case
        .get("input_types")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Type::from_name(v.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default();
    let overrides: Vec<(&str, Type)> = types.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let schema = case
        .get("input")
        .and_then(Json::as_array)
        .and_then(|a| a.first())
        .and_then(Json::as_object)
        .map(|r| Schema::infer(r, &overrides))
        .unwrap_or_default();
    let compile = move |t: &str| Query::compile(t, &schema);
    match compile(text) {
        Ok(q) => check(text, Some((&q, &compile))),
        Err(_) => check(text, None),
    }
}

fn transformation_case(case: &Json) -> Result<(), String> {
    let text = case["query"].as_str().unwrap_or_default();
    let compile: Box<Compile> = match case.get("columns").and_then(Json::as_array) {
        Some(cols) => {
            let schema = Schema::new(cols.iter().map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    Type::from_name(c["type"].as_str().unwrap_or_default()).expect("type"),
                )
            }));
            Box::new(move |t: &str| Query::compile(t, &schema))
        }
        None => Box::new(Query::compile_lenient),
    };
    let q = compile(text).map_err(|e| e.to_string())?;
    check(text, Some((&q, &*compile)))
}

#[test]
fn every_test_data_query_prints_and_reparses_to_the_same_plan() {
    let mut failures = Vec::new();
    let mut n = 0;
    for file in [
        include_str!("data/kql.jsonl"),
        include_str!("data/reference.jsonl"),
    ] {
        for line in file.lines().filter(|l| !l.trim().is_empty()) {
            let case: Json = serde_json::from_str(line).expect("JSON");
            n += 1;
            if let Err(e) = vector_case(&case) {
                failures.push(format!("{}: {e}", case["name"]));
            }
        }
    }
    for line in include_str!("data/transformations.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let case: Json = serde_json::from_str(line).expect("JSON");
        n += 1;
        if let Err(e) = transformation_case(&case) {
            failures.push(format!("{}: {e}", case["name"]));
        }
    }
    eprintln!("round trip: {} of {n} queries", n - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn canonical_text_examples() {
    let p = |t: &str| Syntax::parse(t, T).expect("parses").to_string();
    assert_eq!(
        p("let x = 1; source | where A == x // c\n| project-away B*, ['my col']"),
        "let x = 1;\nsource\n| where (A == x)\n| project-away B*, [\"my col\"]"
    );
    assert_eq!(
        p("print a = -1, b = 1.5e3, c = 90m, d = 1.5h, e = int(-2), f = long(null), g = h'x'"),
        "print a = -1, b = 1500.0, c = 90m, d = 90m, e = int(-2), f = long(null), g = \"x\""
    );
    assert_eq!(
        p(
            "print d = dynamic({'a': [1, 2s]}), t = datetime(2015-12-14), g = guid(74be27de-1e4e-49d9-b579-fe0b331d3642)"
        ),
        "print d = dynamic({\"a\":[1,\"00:00:02\"]}), t = datetime(2015-12-14T00:00:00.0000000Z), g = guid(74be27de-1e4e-49d9-b579-fe0b331d3642)"
    );
    assert_eq!(
        p(
            "source | parse kind=regex flags=Ui A with '(\\\\d+)' N:long * | where not(B !in~ ('x'))"
        ),
        "source\n| parse kind=regex flags=Ui A with \"(\\\\d+)\" N:long *\n| where not((B !in~ (\"x\")))"
    );
    assert_eq!(
        p("let T = source | where A>1;let ['U 2'] = T;let P = print x=1; ['U 2'] | project A"),
        "let T = source\n| where (A > 1);\nlet [\"U 2\"] = T;\nlet P = print x = 1;\n[\"U 2\"]\n| project A"
    );
}

/// A generated query cut into tabular lets compiles to the same output as the pipeline
/// written out (the lets are concatenated), and the split text prints and re-parses.
#[test]
fn generated_queries_cut_into_lets_keep_their_output_schema() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let schema = Schema::new(COLUMNS.iter().map(|(n, t)| (*n, *t)));
    let mut runner = TestRunner::deterministic();
    let mut compared = 0;
    for _ in 0..200 {
        let ops = prop::collection::vec(operator(), 0..5)
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        let cuts = cuts().new_tree(&mut runner).expect("tree").current();
        let whole = with_lets("source", &ops, &(Vec::new(), false));
        let split = with_lets("source", &ops, &cuts);
        match (
            Query::compile(&whole, &schema),
            Query::compile(&split, &schema),
        ) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.output_schema(), b.output_schema(), "{split}");
                compared += 1;
            }
            (Err(a), Err(b)) => assert_eq!(a.message(), b.message(), "{split}"),
            (a, b) => panic!("{whole}: {:?}\n{split}: {:?}", a.err(), b.err()),
        }
        let per_case = schema.clone();
        let compile = move |t: &str| Query::compile(t, &per_case);
        let r = match compile(&split) {
            Ok(q) => check(&split, Some((&q, &compile))),
            Err(_) => check(&split, None),
        };
        assert!(r.is_ok(), "{}", r.unwrap_err());
    }
    eprintln!("cut into lets: {compared} of 200 compile");
    assert!(compared > 50, "{compared} compile");
}

// Generated queries over a fixed schema: columns of every type and names that need quoting.
const COLUMNS: &[(&str, Type)] = &[
    ("s", Type::String),
    ("n", Type::Long),
    ("i", Type::Int),
    ("r", Type::Real),
    ("b", Type::Bool),
    ("t", Type::DateTime),
    ("ts", Type::Timespan),
    ("d", Type::Dynamic),
    ("my col", Type::String),
    ("true", Type::Long),
    ("string", Type::String),
];

fn column() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "s",
        "n",
        "i",
        "r",
        "b",
        "t",
        "ts",
        "d",
        "['my col']",
        "['true']",
        "['string']",
    ])
    .prop_map(str::to_string)
}

fn string_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ,;=]{0,8}".prop_map(|s| format!("'{s}'")),
        "[a-z\"']{0,6}".prop_map(|s| format!("@\"{}\"", s.replace('"', "\"\""))),
        any::<String>().prop_map(|s| {
            let mut out = String::from("\"");
            for c in s.chars().take(8) {
                out.push_str(&format!("\\u{:04x}", u32::from(c).min(0xFFFF)));
            }
            out.push('"');
            out
        }),
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| format!("long({v})")),
        any::<i32>().prop_map(|v| format!("int({v})")),
        (-1e12f64..1e12).prop_map(|v| format!("real({v})")),
        (0u32..1_000_000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b:03}")),
        any::<bool>().prop_map(|b| b.to_string()),
        (
            0i64..100_000,
            prop::sample::select(vec!["d", "h", "m", "s", "ms", "tick", "microseconds"])
        )
            .prop_map(|(v, u)| format!("{v}{u}")),
        (1900i32..2100, 1u32..13, 1u32..29, 0u32..24)
            .prop_map(|(y, m, d, h)| format!("datetime({y:04}-{m:02}-{d:02} {h:02}:30:00.25)")),
        any::<u128>().prop_map(|g| {
            let h = format!("{g:032x}");
            format!(
                "guid({}-{}-{}-{}-{})",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }),
        Just("dynamic({'a': [1, 'x', 2.5, null, true], \"b\": {}})".to_string()),
        Just("dynamic(null)".to_string()),
        prop::sample::select(vec![
            "long(null)",
            "datetime(null)",
            "real(nan)",
            "real(-inf)",
            "timespan(null)",
            "guid(null)"
        ])
        .prop_map(str::to_string),
        string_lit(),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![literal(), column()];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "%", "==", "!=", "<", ">=", "=~", "!~", "and", "or"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "has",
                    "!has",
                    "contains_cs",
                    "!startswith",
                    "endswith",
                    "hasprefix_cs",
                    "!hassuffix"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            (
                inner.clone(),
                prop::sample::select(vec!["in", "!in", "in~", "!in~"]),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(a, op, l)| format!("({a}) {op} ({})", l.join(", "))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) matches regex ({b})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("not({a})")),
            (
                prop::sample::select(vec![
                    "strcat",
                    "tostring",
                    "iif",
                    "case",
                    "strlen",
                    "tolower",
                    "pack_array",
                    "max_of"
                ]),
                prop::collection::vec(inner.clone(), 1..4)
            )
                .prop_map(|(f, a)| format!("{f}({})", a.join(", "))),
            (
                inner.clone(),
                prop::sample::select(vec![".a", "['b c']", "[0]", "[-1]", ".a.b", "['true']"])
            )
                .prop_map(|(a, m)| format!("({a}){m}")),
            inner.clone().prop_map(|a| format!("gettype({a})")),
            Just("typeof(long)".to_string()).prop_map(|t| format!("columnifexists('s', {t})")),
        ]
    })
}

fn operator() -> impl Strategy<Value = String> {
    prop_oneof![
        expr().prop_map(|e| format!("where {e}")),
        prop::collection::vec((prop::option::of("[A-Z][a-z]{0,3}"), expr()), 1..3).prop_map(
            |items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(n, e)| n.map_or(e.clone(), |n| format!("{n} = {e}")))
                    .collect();
                format!("extend {}", items.join(", "))
            }
        ),
        prop::collection::vec(column(), 1..3).prop_map(|c| format!("project {}", c.join(", "))),
        prop::collection::vec(prop_oneof![column(), Just("s*".to_string())], 1..3)
            .prop_map(|c| format!("project-away {}", c.join(", "))),
        column().prop_map(|c| format!("project-rename ['new name'] = {c}")),
        (
            prop::sample::select(vec![
                "",
                "kind=regex ",
                "kind=relaxed ",
                "kind=regex flags=Ui "
            ]),
            string_lit()
        )
            .prop_map(|(k, t)| format!("parse {k}s with * {t} P1:long {t} P2")),
    ]
}

fn query() -> impl Strategy<Value = String> {
    (
        prop::option::of(expr()),
        prop_oneof![
            Just("source".to_string()),
            prop::collection::vec(expr(), 1..3).prop_map(|e| format!("print {}", e.join(", "))),
            prop::collection::vec(literal(), 0..4).prop_map(|v| format!("datatable(['a b']: dynamic) [{}]", v.join(", "))),
        ],
        prop::collection::vec(operator(), 0..4),
        cuts(),
    )
        .prop_map(|(l, src, ops, cuts)| {
            let mut q = String::new();
            if let Some(e) = l {
                q.push_str(&format!("let v = {e};\nlet f = (x: long, ['y z']: string) {{ strcat(x, ['y z'], v) }};\n"));
            }
            q.push_str(&with_lets(&src, &ops, &cuts));
            q
        })
}

/// Where a generated pipeline is cut into tabular lets (none, one or two cuts), and whether
/// the last let is used through an alias.
fn cuts() -> impl Strategy<Value = (Vec<usize>, bool)> {
    (prop::collection::vec(0usize..5, 0..3), any::<bool>())
}

/// The pipeline `src | ops...` written as a chain of tabular lets cut at `cuts`: `let L0 = src
/// | ...; let L1 = L0 | ...; L1 | ...`. The same query, so it must compile to the same plan as
/// the pipeline written out, and print and re-parse as any other.
fn with_lets(src: &str, ops: &[String], (cuts, alias): &(Vec<usize>, bool)) -> String {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(ops.len())).collect();
    cuts.sort_unstable();
    let mut q = String::new();
    let mut from = src.to_string();
    let mut start = 0;
    for (k, &c) in cuts.iter().enumerate() {
        q.push_str(&format!("let L{k} = {from}"));
        for op in &ops[start..c] {
            q.push_str(&format!("\n| {op}"));
        }
        q.push_str(";\n");
        from = format!("L{k}");
        start = c;
    }
    if *alias && !cuts.is_empty() {
        q.push_str(&format!("let ['the alias'] = {from};\n"));
        from = "['the alias']".to_string();
    }
    q.push_str(&from);
    for op in &ops[start..] {
        q.push_str(" | ");
        q.push_str(op);
    }
    q
}

// Well-typed generated queries, so that most of them compile and the plan comparison is not
// limited to the few untyped ones that happen to bind.
fn str_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_lit(),
        prop::sample::select(vec![
            "s",
            "['my col']",
            "['string']",
            "tostring(d.a)",
            "tostring(n)"
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4)
                .prop_map(|a| format!("strcat({})", a.join(", "))),
            inner.clone().prop_map(|a| format!("tolower({a})")),
            (inner.clone(), 0i64..5).prop_map(|(a, k)| format!("substring({a}, {k}, 2)")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("replace_string({a}, 'x', {b})")),
            (num_leaf(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("iif({c} > 1, {a}, {b})")),
        ]
    })
}

fn num_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|v| v.to_string()),
        (-1e6f64..1e6).prop_map(|v| format!("{v:?}")),
        prop::sample::select(vec![
            "n",
            "i",
            "r",
            "['true']",
            "strlen(s)",
            "toint(s)",
            "tolong(d.a)"
        ])
        .prop_map(str::to_string),
    ]
}

fn num_expr() -> impl Strategy<Value = String> {
    num_leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/", "%"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max_of({a}, {b})")),
            inner.clone().prop_map(|a| format!("abs({a})")),
        ]
    })
}

fn bool_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (
            num_expr(),
            prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
            num_expr()
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (
            str_expr(),
            prop::sample::select(vec![
                "==",
                "=~",
                "!~",
                "has",
                "!has",
                "contains",
                "!startswith_cs",
                "hasprefix",
                "endswith",
                "matches regex"
            ]),
            str_expr()
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (
            str_expr(),
            prop::sample::select(vec!["in", "!in", "in~", "!in~"]),
            prop::collection::vec(str_expr(), 1..3)
        )
            .prop_map(|(a, op, l)| format!("{a} {op} ({})", l.join(", "))),
        Just("b".to_string()),
        Just("isnotempty(s)".to_string()),
        Just("t > datetime(2020-01-01) and ts < 1d".to_string()),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["and", "or"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("not({a})")),
        ]
    })
}

fn typed_query() -> impl Strategy<Value = String> {
    let op = prop_oneof![
        bool_expr().prop_map(|e| format!("where {e}")),
        (str_expr(), num_expr(), bool_expr())
            .prop_map(|(a, b, c)| format!("extend S1 = {a}, N1 = {b}, ['B 1'] = {c}, {a}")),
        Just("project-away ['my col'], d".to_string()),
        Just("project-rename Renamed = s".to_string()),
        Just("project s, n, X = n * 2".to_string()),
        string_lit().prop_map(|t| format!("parse s with * {t} P1:long {t} P2")),
    ];
    (prop::collection::vec(op, 1..4), cuts())
        .prop_map(|(ops, cuts)| with_lets("source", &ops, &cuts))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_queries_print_and_reparse_to_the_same_plan(text in prop_oneof![query(), typed_query()]) {
        let schema = Schema::new(COLUMNS.iter().map(|(n, t)| (*n, *t)));
        let compile = move |t: &str| Query::compile(t, &schema);
        let r = match compile(&text) {
            Ok(q) => check(&text, Some((&q, &compile))),
            Err(_) => check(&text, None),
        };
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

/// How many generated queries parse and compile: the property is not vacuous.
#[test]
fn generated_queries_mostly_parse() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let schema = Schema::new(COLUMNS.iter().map(|(n, t)| (*n, *t)));
    let mut runner = TestRunner::deterministic();
    let (mut parsed, mut compiled) = (0, 0);
    for k in 0..300 {
        let text = if k % 2 == 0 {
            query().new_tree(&mut runner).expect("tree").current()
        } else {
            typed_query().new_tree(&mut runner).expect("tree").current()
        };
        parsed += usize::from(Syntax::parse(&text, T).is_ok());
        compiled += usize::from(Query::compile(&text, &schema).is_ok());
    }
    eprintln!("generated: {parsed} of 300 parse, {compiled} compile");
    assert!(parsed > 200, "{parsed} parse");
    assert!(compiled > 120, "{compiled} compile");
}
