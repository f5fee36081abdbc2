//! Compile errors: positions, the caret rendering, refusals, unknown columns.

#![allow(missing_docs)]

use mcas_kql::{ErrorKind, Query, Schema, Type};

fn csl() -> Schema {
    Schema::new([
        ("TimeGenerated", Type::DateTime),
        ("DeviceVendor", Type::String),
        ("DeviceAction", Type::String),
        ("DestinationPort", Type::Int),
        ("AdditionalExtensions", Type::String),
    ])
}

fn err(q: &str) -> mcas_kql::Error {
    Query::compile(q, &csl()).expect_err(q)
}

#[test]
fn multi_row_operators_are_refused_by_name() {
    for (q, op) in [
        ("source | summarize count() by DeviceVendor", "summarize"),
        ("source | join kind=inner (source) on DeviceVendor", "join"),
        ("source | union source", "union"),
        ("source | take 10", "take"),
        ("source | limit 1", "limit"),
        ("source | sort by TimeGenerated desc", "sort by"),
        ("source | order by TimeGenerated asc", "order by"),
        ("source | top 5 by DestinationPort", "top"),
        ("source | distinct DeviceVendor", "distinct"),
        ("source | count", "count"),
        ("source | mv-expand AdditionalExtensions", "mv-expand"),
    ] {
        let e = err(q);
        assert_eq!(
            e.kind(),
            &ErrorKind::UnsupportedOperator {
                operator: op.to_string()
            },
            "{q}"
        );
        assert_eq!(
            e.message(),
            format!("{op} is not supported in transformations")
        );
        assert_eq!((e.line(), e.column()), (1, 10), "{q}");
    }
}

#[test]
fn refusal_on_a_later_line_points_at_the_operator() {
    let e = err("source\n| where DeviceVendor == 'x'\n|   summarize count()");
    assert_eq!((e.line(), e.column()), (3, 5));
    assert_eq!(
        e.to_string(),
        "line 3, column 5: summarize is not supported in transformations\n  |   summarize count()\n      ^"
    );
}

#[test]
fn unknown_column_suggests_the_nearest() {
    let e = err("source | where DeviceVender == 'Fortinet'");
    assert_eq!(
        e.kind(),
        &ErrorKind::UnknownColumn {
            name: "DeviceVender".into(),
            suggestion: Some("DeviceVendor".into())
        }
    );
    assert_eq!((e.line(), e.column()), (1, 16));
    assert!(
        e.to_string().contains("did you mean 'DeviceVendor'?"),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("  source | where DeviceVender == 'Fortinet'\n                 ^"),
        "{e}"
    );

    // Nothing close: no suggestion.
    let e = err("source | project Zzzzzzzzzzzz");
    assert_eq!(
        e.kind(),
        &ErrorKind::UnknownColumn {
            name: "Zzzzzzzzzzzz".into(),
            suggestion: None
        }
    );

    // A column removed by project-away is unknown afterwards.
    let e = err("source | project-away DeviceAction | where DeviceAction == 'x'");
    assert!(matches!(e.kind(), ErrorKind::UnknownColumn { .. }), "{e}");
    assert_eq!(e.column(), 44);

    // project-away and project-rename check their columns too.
    assert!(matches!(
        err("source | project-away Nope").kind(),
        ErrorKind::UnknownColumn { .. }
    ));
    assert!(matches!(
        err("source | project-rename A = Nope").kind(),
        ErrorKind::UnknownColumn { .. }
    ));
}

#[test]
fn lenient_mode_accepts_unknown_columns() {
    let q = Query::compile_lenient("source | where Anything has 'x' | project Anything, Other")
        .expect("compiles");
    assert_eq!(q.output_schema().len(), 2);
    assert_eq!(
        q.output_schema()[0],
        ("Anything".to_string(), Type::Dynamic)
    );
}

/// Found by the real transformations: `project-away` and `project-rename` of a column the
/// lenient query never named before (a documentation sample's `project-away RawData`).
#[test]
fn lenient_mode_accepts_unknown_columns_in_project_away_and_rename() {
    let q = Query::compile_lenient("source | project-away RawData").expect("compiles");
    assert!(q.output_schema().is_empty());
    let q = Query::compile_lenient("source | extend C = parse_json(Ctx) | project-away Ctx, C")
        .expect("compiles");
    assert!(q.output_schema().is_empty());
    let q =
        Query::compile_lenient("source | project-rename B = A | extend D = B").expect("compiles");
    let names: Vec<&str> = q.output_schema().iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["B", "D"]);
    let row: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"A": 7}"#).expect("json");
    let out = q.run(&row).expect("a row").to_json();
    assert_eq!(out["B"], 7);
    assert_eq!(out["D"], 7);
    // Strictly, both stay errors.
    let schema = Schema::new([("A", Type::Long)]);
    assert!(Query::compile("source | project-away RawData", &schema).is_err());
    assert!(Query::compile("source | project-rename B = Z", &schema).is_err());
}

#[test]
fn syntax_errors_have_positions() {
    let e = err("source | where DeviceVendor == ");
    assert!(matches!(e.kind(), ErrorKind::Syntax(_)), "{e}");
    assert_eq!(e.line(), 1);
    assert_eq!(e.column(), 32);

    let e = err("source\n| where (DeviceVendor == 'x'");
    assert_eq!(e.line(), 2);
    assert!(e.message().contains("')'"), "{e}");

    let e = err("source | where DeviceVendor == 'unterminated");
    assert!(e.message().contains("unterminated"), "{e}");
    assert_eq!(e.column(), 32);

    let e = err("source | frobnicate");
    assert_eq!(
        e.message(),
        "syntax error: unknown tabular operator 'frobnicate'"
    );

    let e = err("DeviceEvents | where true");
    assert!(e.message().contains("starts with 'source'"), "{e}");

    let e = err("source | where DeviceVendor == 'x' garbage");
    assert!(e.message().contains("unexpected text"), "{e}");
    assert_eq!(e.column(), 36);
}

#[test]
fn function_errors() {
    let e = err("source | extend x = nosuchfn(1)");
    assert!(matches!(e.kind(), ErrorKind::UnsupportedFunction(_)), "{e}");
    assert_eq!(e.column(), 21);
    let e = err("source | extend x = tolower_(DeviceVendor)");
    assert!(e.message().contains("did you mean tolower()?"), "{e}");
    let e = err("source | extend x = strlen(1, 2)");
    assert_eq!(e.message(), "strlen() takes 1 argument, 2 given");
    let e = err("source | extend g = geo_location('1.2.3.4')");
    assert!(e.message().contains("not yet supported"), "{e}");
    let e = err("source | extend c = column_ifexists('x', 1)");
    assert!(e.message().contains("columnifexists"), "{e}");
    let e = err("source | where DeviceVendor matches regex '('");
    assert!(matches!(e.kind(), ErrorKind::BadLiteral(_)), "{e}");
    let e = err("print d = datetime(2024-13-01)");
    assert!(matches!(e.kind(), ErrorKind::BadLiteral(_)), "{e}");
}

#[test]
fn multi_byte_columns_count_characters() {
    let e = err("print s = 'é' | where Nope == 1");
    assert_eq!(e.column(), 23);
}

#[test]
fn output_schema_is_known_at_compile_time() {
    let q = Query::compile(
        "source | where DestinationPort > 1000 | extend Port = tolong(DestinationPort), Hour = bin(TimeGenerated, 1h) | project-away AdditionalExtensions, DestinationPort",
        &csl(),
    )
    .expect("compiles");
    let names: Vec<(&str, Type)> = q
        .output_schema()
        .iter()
        .map(|(n, t)| (n.as_str(), *t))
        .collect();
    assert_eq!(
        names,
        [
            ("TimeGenerated", Type::DateTime),
            ("DeviceVendor", Type::String),
            ("DeviceAction", Type::String),
            ("Port", Type::Long),
            ("Hour", Type::DateTime),
        ]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("print x = {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = Query::compile(&deep, &Schema::default()).expect_err("too deep");
    assert!(e.message().contains("nested"), "{e}");
    let neg = format!("print x = {}1", "-".repeat(10_000));
    assert!(Query::compile(&neg, &Schema::default()).is_err());
    let dynamic = format!(
        "print x = dynamic({}{})",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(Query::compile(&dynamic, &Schema::default()).is_err());
    // Functions that double at each level: refused by size, quickly.
    let mut q = String::from("let f0 = (x:long) { x + x };\n");
    for k in 1..40 {
        q.push_str(&format!(
            "let f{k} = (x:long) {{ f{}(x) + f{}(x) }};\n",
            k - 1,
            k - 1
        ));
    }
    q.push_str("print y = f39(1)");
    let e = Query::compile(&q, &Schema::default()).expect_err("too large");
    assert!(
        e.message().contains("too large") || e.message().contains("nested"),
        "{e}"
    );
}
