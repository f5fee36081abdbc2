//! Tabular `let` statements: `let T = source | ...; T | ...`, chains of them, lets that start
//! from `print` or `datatable`, and their errors.
//!
//! The Kusto reference page for all of them is `let-statement.md` (MicrosoftDocs
//! dataexplorer-docs, `data-explorer/kusto/query/`): "an expression with a tabular result
//! would be `let RecentLog = Logs | where Timestamp > ago(1h)`", and "if the variable
//! previously represented another value, the innermost `let` statement applies". Its examples
//! run on the help cluster's tables with multi-row operators (`range`, `take`, `count`), so the
//! cases here are written for one-row transformations instead.

#![allow(missing_docs)]

use mcas_kql::{ErrorKind, Query, Schema, SourceKind, Type};
use serde_json::{Map, Value as Json, json};

fn schema() -> Schema {
    Schema::new([
        ("TimeGenerated", Type::DateTime),
        ("DeviceVendor", Type::String),
        ("DeviceAction", Type::String),
        ("DestinationPort", Type::Int),
        ("X", Type::Long),
        ("A", Type::String),
        ("B", Type::String),
    ])
}

fn row(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => panic!("an object"),
    }
}

fn rows() -> Vec<Map<String, Json>> {
    [
        json!({"TimeGenerated": "2024-01-12T10:00:00Z", "DeviceVendor": "Fortinet", "DeviceAction": "deny", "DestinationPort": 22, "X": 0, "A": "a0", "B": "b0"}),
        json!({"TimeGenerated": "2024-01-12T10:00:01Z", "DeviceVendor": "Palo Alto Networks", "DeviceAction": "allow", "DestinationPort": 443, "X": 2, "A": "a2", "B": "b2"}),
        json!({"TimeGenerated": "2024-01-12T10:00:02Z", "DeviceVendor": "Fortinet", "DeviceAction": "drop", "DestinationPort": 3389, "X": 5, "A": "a5", "B": "b5"}),
        json!({"TimeGenerated": "2024-01-12T10:00:03Z", "DeviceVendor": "Check Point", "DeviceAction": "deny", "DestinationPort": 23, "X": 9, "A": "a9", "B": "b9"}),
        json!({"DeviceVendor": "Fortinet"}),
    ]
    .into_iter()
    .map(row)
    .collect()
}

fn compile(q: &str) -> Query {
    Query::compile(q, &schema()).unwrap_or_else(|e| panic!("{q}\n{e}"))
}

/// The output of a query on every test row (`None` for a dropped row), and a check that
/// `passes` agrees with `run`.
fn outputs(q: &Query) -> Vec<Option<Json>> {
    rows()
        .iter()
        .map(|r| {
            let out = q.run_at(r, 0).map(|o| Json::Object(o.to_json()));
            assert_eq!(q.passes_at(r, 0), out.is_some(), "{}", q.to_kql());
            out
        })
        .collect()
}

#[test]
fn a_row_runs_through_the_lets_operators_then_the_querys() {
    let q = compile("let T = source | where X > 1; T | project A");
    assert_eq!(q.source_kind(), SourceKind::Input);
    assert_eq!(q.output_schema(), &[("A".to_string(), Type::String)]);
    assert_eq!(
        outputs(&q),
        vec![
            None,
            Some(json!({"A": "a2"})),
            Some(json!({"A": "a5"})),
            Some(json!({"A": "a9"})),
            None
        ]
    );
}

#[test]
fn a_lets_name_alone_is_the_query() {
    let q = compile("let Kept = source | where DeviceAction != 'allow' | project-away B;\nKept");
    let direct = compile("source | where DeviceAction != 'allow' | project-away B");
    assert_eq!(q.output_schema(), direct.output_schema());
    assert_eq!(outputs(&q), outputs(&direct));
    assert_eq!(outputs(&q).iter().filter(|o| o.is_some()).count(), 4);
}

/// Splitting a pipeline into a tabular let and the rest, at every place, gives the same
/// output schema and the same output on every row: the pipelines are concatenated.
#[test]
fn splitting_a_pipeline_into_lets_changes_nothing() {
    let ops = [
        "where DeviceVendor has 'fortinet' or X > 4",
        "extend Port = DestinationPort + 1, Tag = strcat(A, '-', B)",
        "parse Tag with Left:string '-' Right:string",
        "project-rename Vendor = DeviceVendor",
        "where Port > 23",
        "project-away A, B",
        "project Vendor, Port, Left, Right, Doubled = X * 2",
    ];
    let whole = compile(&format!("source | {}", ops.join(" | ")));
    let expected = outputs(&whole);
    assert_eq!(expected.iter().filter(|o| o.is_some()).count(), 2);
    for k in 0..=ops.len() {
        for m in k..=ops.len() {
            let pipe = |from: &str, part: &[&str]| {
                std::iter::once(from.to_string())
                    .chain(part.iter().map(|o| o.to_string()))
                    .collect::<Vec<_>>()
                    .join("\n| ")
            };
            // Two lets in a chain, then the rest of the pipeline.
            let text = format!(
                "let First = {};\nlet Second = {};\n{}",
                pipe("source", &ops[..k]),
                pipe("First", &ops[k..m]),
                pipe("Second", &ops[m..])
            );
            let q = compile(&text);
            assert_eq!(q.output_schema(), whole.output_schema(), "{text}");
            assert_eq!(outputs(&q), expected, "{text}");
        }
    }
}

#[test]
fn chains_aliases_and_scalar_lets_inside() {
    let q = compile(
        "let threshold = 1;
         let Denied = source | where DeviceAction in ('deny', 'drop');
         let Wide = Denied | extend Port = DestinationPort * 10;
         let Alias = Wide;
         Alias | where X > threshold | project DeviceVendor, Port",
    );
    assert_eq!(
        outputs(&q),
        vec![
            None,
            None,
            Some(json!({"DeviceVendor": "Fortinet", "Port": 33890})),
            Some(json!({"DeviceVendor": "Check Point", "Port": 230})),
            None
        ]
    );
}

/// let-statement.md: "If the variable previously represented another value ... the innermost
/// `let` statement applies": a let may rebind a name, and its body sees the earlier binding.
#[test]
fn a_let_can_rebind_a_name_from_the_earlier_binding() {
    let q = compile(
        "let T = source | where X > 1;\nlet T = T | where X < 6 | project X;\nT | extend Y = X + 1",
    );
    assert_eq!(
        outputs(&q),
        vec![
            None,
            Some(json!({"X": 2, "Y": 3})),
            Some(json!({"X": 5, "Y": 6})),
            None,
            None
        ]
    );
}

/// Kusto accepts a let that no statement uses (a query needs one tabular expression
/// statement, statements.md; a let is a statement of its own): it is compiled and checked,
/// and does not change the output.
#[test]
fn an_unused_tabular_let_is_accepted_and_changes_nothing() {
    let q = compile(
        "let Unused = source | where X > 100 | extend Z = now();\nlet P = print n = 1;\nsource | project A, X",
    );
    let direct = compile("source | project A, X");
    assert_eq!(q.output_schema(), direct.output_schema());
    assert_eq!(outputs(&q), outputs(&direct));
    // An error in an unused let is still an error, as Kusto binds every statement.
    let e = Query::compile("let U = source | where Nope > 1;\nsource", &schema()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::UnknownColumn { .. }), "{e}");
    assert_eq!((e.line(), e.column()), (1, 24));
}

#[test]
fn lets_that_start_from_print_or_datatable() {
    let q = compile("let P = print a = 1, 'x';\nP | extend c = a + 1 | where c > 1");
    assert_eq!(q.source_kind(), SourceKind::Print);
    let out: Vec<Json> = q
        .run_without_input_at(0)
        .iter()
        .map(|o| Json::Object(o.to_json()))
        .collect();
    assert_eq!(out, vec![json!({"a": 1, "print_1": "x", "c": 2})]);

    // A datatable after another let that computes columns: its rows still land in its own
    // columns.
    let q = compile(
        "let Unused = print z = 5, w = 6;\nlet D = datatable(N:long, S:string) [1, 'one', 2, 'two', 3, 'three'];\nlet Big = D | where N >= 2;\nBig | extend L = strlen(S)",
    );
    assert_eq!(q.source_kind(), SourceKind::Datatable);
    let out: Vec<Json> = q
        .run_without_input_at(0)
        .iter()
        .map(|o| Json::Object(o.to_json()))
        .collect();
    assert_eq!(
        out,
        vec![
            json!({"N": 2, "S": "two", "L": 3}),
            json!({"N": 3, "S": "three", "L": 5})
        ]
    );
    // A source query gives no rows without input.
    assert!(
        compile("let T = source; T")
            .run_without_input_at(0)
            .is_empty()
    );
}

fn err(q: &str) -> mcas_kql::Error {
    Query::compile(q, &schema()).expect_err(q)
}

#[test]
fn a_tabular_let_where_a_scalar_is_expected() {
    let e = err("let T = source | where X > 1;\nsource | where T > 1");
    assert_eq!(
        e.kind(),
        &ErrorKind::WrongKind {
            name: "T".into(),
            found: "a tabular expression".into(),
            expected: "a scalar".into()
        }
    );
    assert_eq!((e.line(), e.column()), (2, 16));
    assert_eq!(
        e.to_string(),
        "line 2, column 16: 'T' is a tabular expression, not a scalar\n  source | where T > 1\n                 ^"
    );
    let e = err("let T = source;\nprint a = strlen(T)");
    assert_eq!((e.line(), e.column()), (2, 18));
    let e = err("let T = source;\nsource | extend y = T()");
    assert_eq!(
        e.message(),
        "'T' is a tabular expression, not a function",
        "{e}"
    );
    assert_eq!((e.line(), e.column()), (2, 21));
}

#[test]
fn a_scalar_or_function_where_a_table_is_expected() {
    let e = err("let n = 5;\nn | project A");
    assert_eq!(
        e.message(),
        "'n' is a scalar, not a tabular expression",
        "{e}"
    );
    assert_eq!((e.line(), e.column()), (2, 1));
    let e = err("let n = 5;\nlet T = n | where X > 1;\nT");
    assert_eq!(
        e.message(),
        "'n' is a scalar, not a tabular expression",
        "{e}"
    );
    assert_eq!((e.line(), e.column()), (2, 9));
    let e = err("let f = (a:long) { a + 1 };\nf");
    assert_eq!(
        e.message(),
        "'f' is a function, not a tabular expression",
        "{e}"
    );
    assert_eq!((e.line(), e.column()), (2, 1));
}

#[test]
fn an_unknown_table_names_the_nearest_tabular_let() {
    let e = err("let Filtered = source | where X > 1;\nFilterd | project A");
    assert_eq!(
        e.kind(),
        &ErrorKind::UnknownTable {
            name: "Filterd".into(),
            suggestion: Some("Filtered".into())
        }
    );
    assert_eq!((e.line(), e.column()), (2, 1));
    assert!(
        e.message()
            .starts_with("unknown table 'Filterd' (did you mean 'Filtered'?)")
    );
    // A table of the workspace is not a transformation's input.
    let e = err("CommonSecurityLog | where X > 1");
    assert_eq!(
        e.kind(),
        &ErrorKind::UnknownTable {
            name: "CommonSecurityLog".into(),
            suggestion: None
        }
    );
    let e = err("let T = source;\nlet U = Tx | where X > 1;\nU");
    assert_eq!((e.line(), e.column()), (2, 9));
}

#[test]
fn recursion_is_an_error_at_the_use() {
    for (q, name, at) in [
        ("let T = T | where X > 1;\nsource", "T", (1, 9)),
        ("let A = B | where X > 1;\nlet B = A;\nB", "B", (1, 9)),
        ("let T = source | where X > n;\nlet n = 1;\nT", "n", (1, 28)),
        ("let n = n + 1;\nsource", "n", (1, 9)),
        (
            "let T = source | extend y = f(X);\nlet f = (a:long) { a };\nT",
            "f",
            (1, 29),
        ),
    ] {
        let e = err(q);
        assert_eq!(
            e.kind(),
            &ErrorKind::Recursion {
                name: name.to_string()
            },
            "{q}\n{e}"
        );
        assert_eq!((e.line(), e.column()), at, "{q}");
    }
    // Leniently too: the name is a let's, not a column of the row.
    let e = Query::compile_lenient("let T = T | where X > 1;\nT").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Recursion { .. }), "{e}");
}

#[test]
fn multi_row_operators_stay_refused_inside_a_let() {
    let e = err("let T = source | summarize count() by DeviceVendor;\nT");
    assert_eq!(
        e.kind(),
        &ErrorKind::UnsupportedOperator {
            operator: "summarize".into()
        }
    );
    assert_eq!((e.line(), e.column()), (1, 18));
    let e = err("let T = source;\nT | take 10");
    assert_eq!((e.line(), e.column()), (2, 5));
    assert_eq!(e.message(), "take is not supported in transformations");
}

#[test]
fn a_query_too_large_once_its_lets_are_copied_is_an_error() {
    // Each let copies the one before it: the copies count toward the size limit.
    let mut q = String::from("let T0 = source | extend ");
    q.push_str(
        &(0..200)
            .map(|k| format!("c{k} = X + {k}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    q.push_str(";\n");
    for k in 1..2000 {
        q.push_str(&format!("let T{k} = T{} | where X > 0;\n", k - 1));
    }
    q.push_str("T1999");
    let e = Query::compile(&q, &schema()).unwrap_err();
    assert!(e.message().contains("too large"), "{e}");
}

/// A transformation in the style of a DCR's `transformKql` on CommonSecurityLog, written for
/// this test (no published DCR sample with a tabular let was found): the denied traffic to
/// remote-access ports, with the port as a number.
#[test]
fn a_dcr_style_transformation_with_tabular_lets() {
    let text = r#"let Denied = source
| where DeviceAction !in ("allow", "accept")
| extend Port = toint(DestinationPort);
let RemoteAccess = Denied
| where Port in (22, 23, 3389);
RemoteAccess
| project TimeGenerated, DeviceVendor, DeviceAction, Port"#;
    let q = compile(text);
    assert_eq!(
        outputs(&q),
        vec![
            Some(
                json!({"TimeGenerated": "2024-01-12T10:00:00.0000000Z", "DeviceVendor": "Fortinet", "DeviceAction": "deny", "Port": 22})
            ),
            None,
            Some(
                json!({"TimeGenerated": "2024-01-12T10:00:02.0000000Z", "DeviceVendor": "Fortinet", "DeviceAction": "drop", "Port": 3389})
            ),
            Some(
                json!({"TimeGenerated": "2024-01-12T10:00:03.0000000Z", "DeviceVendor": "Check Point", "DeviceAction": "deny", "Port": 23})
            ),
            None,
        ]
    );
    // Its canonical text compiles to the same plan.
    let again = compile(&q.to_kql());
    assert!(q.same_plan(&again), "{}", q.to_kql());
    assert_eq!(
        q.to_kql(),
        "let Denied = source\n| where (DeviceAction !in (\"allow\", \"accept\"))\n| extend Port = toint(DestinationPort);\nlet RemoteAccess = Denied\n| where (Port in (22, 23, 3389));\nRemoteAccess\n| project TimeGenerated, DeviceVendor, DeviceAction, Port"
    );
}

/// Leniently (no schema), a let gives the same output columns as the pipeline written out:
/// the columns a let reads are not added to a later `source`.
#[test]
fn lenient_lets_are_concatenated_too() {
    for (with_let, direct) in [
        (
            "let T = source | where Vendor has 'x';\nT | extend P = toint(Port)",
            "source | where Vendor has 'x' | extend P = toint(Port)",
        ),
        (
            "let v = Vendor;\nlet T = source | extend W = v;\nT",
            "source | extend W = Vendor",
        ),
    ] {
        let a = Query::compile_lenient(with_let).expect("compiles");
        let b = Query::compile_lenient(direct).expect("compiles");
        assert_eq!(a.output_schema(), b.output_schema(), "{with_let}");
        let r = row(json!({"Vendor": "x y", "Port": "22"}));
        assert_eq!(
            a.run_at(&r, 0).map(|o| o.to_json()),
            b.run_at(&r, 0).map(|o| o.to_json())
        );
    }
}

/// A row type with fixed places, as a mapped row implements it.
struct Conn<'a> {
    vendor: &'a str,
    port: i32,
    ext: &'a str,
}

static LAYOUT: &[(&str, Type)] = &[
    ("DeviceVendor", Type::String),
    ("DestinationPort", Type::Int),
    ("AdditionalExtensions", Type::String),
];

impl mcas_kql::Row for Conn<'_> {
    fn get(&self, column: &str) -> Option<mcas_kql::Value<'_>> {
        let i = LAYOUT.iter().position(|c| c.0 == column)?;
        self.value_at(i)
    }
    fn layout(&self) -> Option<&'static [(&'static str, Type)]> {
        Some(LAYOUT)
    }
    fn value_at(&self, index: usize) -> Option<mcas_kql::Value<'_>> {
        match index {
            0 => Some(mcas_kql::Value::str(self.vendor)),
            1 => Some(mcas_kql::Value::Int(self.port)),
            2 => Some(mcas_kql::Value::str(self.ext)),
            _ => None,
        }
    }
}

/// A filter-only query through a let still passes its input through by place, as the
/// forwarder's fast write path needs.
#[test]
fn a_filter_through_a_let_keeps_the_layout_projection() {
    let schema = Schema::new(LAYOUT.iter().copied());
    let with_let = Query::compile(
        "let Denied = source | where DestinationPort != 443;\nDenied | project-away AdditionalExtensions",
        &schema,
    )
    .expect("compiles");
    let direct = Query::compile(
        "source | where DestinationPort != 443 | project-away AdditionalExtensions",
        &schema,
    )
    .expect("compiles");
    let kept = Conn {
        vendor: "Acme",
        port: 22,
        ext: "x=1",
    };
    let dropped = Conn {
        vendor: "Acme",
        port: 443,
        ext: "",
    };
    assert_eq!(
        with_let.layout_projection(&kept),
        Some(&[true, true, false][..])
    );
    assert_eq!(
        with_let.layout_projection(&kept),
        direct.layout_projection(&kept)
    );
    assert!(with_let.passes_at(&kept, 0));
    assert!(!with_let.passes_at(&dropped, 0));
    let mut a = Vec::new();
    with_let
        .transform_at(&kept, 0)
        .expect("kept")
        .write_json_compact(None, &mut a);
    assert_eq!(a, br#"{"DeviceVendor":"Acme","DestinationPort":22}"#);
}
