//! Random rows never panic the evaluator; random text never panics the parser.

#![allow(missing_docs)]

use mcas_kql::{Query, Schema, Type};
use proptest::prelude::*;
use serde_json::{Map, Value as Json};

const QUERIES: &[&str] = &[
    "source | where A == 'x' and B in (1, 2, 3) and C has 'deny'",
    "source | where A != 'x' or B > 10 | project-away C",
    "source | extend L = strlen(A), U = toupper(A), S = split(A, ',')[1], N = toint(B) * 2 + B % 7 - B / 3",
    "source | extend T = todatetime(A), Span = totimespan(A), G = toguid(A), J = parse_json(A), R = toreal(A)",
    "source | extend D = parse_json(A), E = D.x, F = D[0], G = D['y'].z, H = array_length(D), I = gettype(D)",
    "source | where A contains 'a' or A startswith 'b' or A endswith_cs 'c' or A matches regex '[0-9]+'",
    "source | parse A with * 'k=' K:long ',' Rest",
    "source | parse kind=regex flags=U A with '(' X ')' *",
    "source | parse kind=relaxed A with * '=' V:real ';' W:datetime *",
    "source | extend B2 = bin(B, 5), R = round(toreal(B), 2), M = max_of(B, 3), P = pow(B, 2), Lg = log(B)",
    "source | extend S = substring(A, B, 3), I = indexof(A, 'a', B), C2 = countof(A, 'a'), E = extract('([a-z]+)', 1, A)",
    "source | extend Enc = base64_encodestring(A), Dec = base64_decodestring(A), H = hash_sha256(A), X = parse_xml(A)",
    "source | extend W = datetime_add('month', B, datetime(2024-01-31)), P = datetime_part('week_of_year', todatetime(A)), S = startofmonth(todatetime(A), B)",
    "source | extend Bits = binary_shift_left(B, B), N = binary_not(B), X = binary_xor(B, 255)",
    "source | extend C = case(B > 10, 'big', B > 5, 'mid', 'small'), I = iif(isempty(A), 'e', A)",
    "source | extend P = pack('a', A, 'b', B), Arr = pack_array(A, B, C), Z = zip(pack_array(A), pack_array(B))",
    "source | extend Cef = parse_cef_dictionary(A) | extend Src = tostring(Cef.Extension.src)",
    "source | project-rename X = A | where isnotnull(B) | project X, B",
];

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        ".{0,24}".prop_map(Json::String),
        "[a-z0-9=,;:(){}\\[\\] .-]{0,32}".prop_map(Json::String),
        Just(Json::String(
            "CEF:0|a|b|1|2|n|5|src=1.2.3.4 dst=5.6.7.8".into()
        )),
        Just(Json::String("2024-03-18T08:15:42Z".into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::hash_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn schemas() -> Vec<Schema> {
    let mut out = Vec::new();
    for a in [Type::String, Type::Dynamic, Type::Long] {
        for b in [
            Type::Long,
            Type::Int,
            Type::Real,
            Type::String,
            Type::DateTime,
            Type::Timespan,
        ] {
            out.push(Schema::new([("A", a), ("B", b), ("C", Type::String)]));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_rows_never_panic(a in json_value(), b in json_value(), c in json_value(), schema_idx in 0usize..18) {
        let schema = &schemas()[schema_idx];
        let mut row = Map::new();
        row.insert("A".into(), a);
        row.insert("B".into(), b);
        row.insert("C".into(), c);
        for q in QUERIES {
            let query = Query::compile(q, schema).unwrap_or_else(|e| panic!("{q}:\n{e}"));
            if let Some(out) = query.run_at(&row, 0) {
                let json = out.to_json();
                prop_assert_eq!(json.len(), query.output_schema().len());
            }
        }
    }

    #[test]
    fn random_text_never_panics_the_parser(text in ".{0,80}") {
        let _ = Query::compile_lenient(&text);
        let _ = Query::compile_lenient(&format!("source | where {text}"));
        let _ = Query::compile_lenient(&format!("print {text}"));
    }

    #[test]
    fn kql_like_text_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("source"), Just("|"), Just("where"), Just("extend"), Just("project"), Just("parse"), Just("with"),
        Just("x"), Just("=="), Just("("), Just(")"), Just("["), Just("]"), Just("'a'"), Just("\""), Just("1.5h"),
        Just("datetime("), Just("dynamic({"), Just("}"), Just(","), Just("*"), Just("let"), Just(";"), Just("{"),
        Just("kind=regex"), Just("has"), Just("!in"), Just("-"), Just("."), Just("@'"), Just("//"), Just("\n"),
        Just("0x"), Just("typeof("), Just("iff("), Just("case("), Just("f(a:long)"),
    ], 0..24)) {
        let text = parts.join(" ");
        let _ = Query::compile_lenient(&text);
        let _ = Query::compile_lenient(&parts.concat());
    }
}

/// Every prefix and every one-character deletion of every vector query compiles or fails
/// cleanly (no panic, error inside the text), and runs without input if it compiles.
#[test]
fn truncated_and_damaged_vector_queries_never_panic() {
    let data = include_str!("data/kql.jsonl");
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).expect("valid JSON");
        let query = case["query"].as_str().expect("query");
        let bounds: Vec<usize> = query
            .char_indices()
            .map(|(i, _)| i)
            .chain([query.len()])
            .collect();
        for w in bounds.windows(2) {
            let (cut, next) = (w[0], w[1]);
            for text in [
                query[..cut].to_string(),
                format!("{}{}", &query[..cut], &query[next..]),
            ] {
                match Query::compile_lenient(&text) {
                    Ok(q) => {
                        let _ = q.run_without_input_at(0);
                    }
                    Err(e) => assert!(e.offset() <= text.len() && !e.to_string().is_empty()),
                }
            }
        }
    }
}

proptest! {
    /// Extreme numbers, datetimes and timespans through every arithmetic and calendar function:
    /// no overflow panic (tests run with overflow checks on).
    #[test]
    fn extreme_values_never_overflow(x in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(0i64), any::<i64>()],
                                     y in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(0i64), any::<i64>()]) {
        let schema = Schema::new([("X", Type::Long), ("Y", Type::Long), ("T", Type::DateTime), ("S", Type::Timespan)]);
        let mut row = Map::new();
        row.insert("X".into(), Json::from(x));
        row.insert("Y".into(), Json::from(y));
        row.insert("T".into(), Json::from(x));
        row.insert("S".into(), Json::from(y));
        for q in [
            "source | extend a = X + Y, b = X - Y, c = X * Y, d = X / Y, e = X % Y, f = -X, g = abs(X), h = bin(X, Y), i = round(X, Y)",
            "source | extend a = T + S, b = T - S, c = S * X, d = S / X, e = S / S, f = S % S, g = bin(T, S), h = bin(S, S), i = -S",
            "source | extend a = startofday(T, X), b = endofweek(T, X), c = startofmonth(T, X), d = endofyear(T, X), e = datetime_add('nanosecond', X, T), f = datetime_diff('nanosecond', T, todatetime(Y))",
            "source | extend a = datetime_add('year', X, T), b = datetime_add('hour', X, T), c = datetime_part('week_of_year', T), d = dayofweek(T), e = weekofyear(T), f = tostring(T), g = tostring(S)",
            "source | extend a = substring('abcdef', X, Y), b = indexof('abcabc', 'b', X, Y, 2), c = split('a,b', ',', X), d = binary_shift_left(X, Y), e = make_timespan(X, Y), f = make_datetime(X, Y, 1)",
            "source | extend a = now(S), b = ago(S), c = S / 0, d = X / 0, e = toint(X), f = tobool(X), g = X > Y, h = max_of(X, Y)",
        ] {
            let query = Query::compile(q, &schema).unwrap_or_else(|e| panic!("{q}:\n{e}"));
            if let Some(out) = query.run_at(&row, 0) {
                let _ = out.to_json();
            }
        }
    }
}
