//! A fixed set of compiled `mcas_kql` transformations run on arbitrary rows: never panics,
//! every output row has exactly the columns of the query's output schema, and the row read
//! by place (through a layout, in reverse schema order) gives the same output as read by name.
//!
//! The input is a JSON object when it parses as one (any value in any column); otherwise it is
//! split on NUL into the string columns `A`, `B`, `C`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcas_kql::{Query, Row, Schema, Type};
use serde_json::{Map, Value};

/// The columns in reverse schema order, so that a place is never the schema's ordinal.
static LAYOUT: &[(&str, Type)] = &[("C", Type::String), ("B", Type::String), ("A", Type::String)];

/// The JSON row with a layout.
struct Placed<'r>(&'r Map<String, Value>);

impl Row for Placed<'_> {
    fn get(&self, column: &str) -> Option<mcas_kql::Value<'_>> {
        Row::get(self.0, column)
    }

    fn layout(&self) -> Option<&'static [(&'static str, Type)]> {
        Some(LAYOUT)
    }

    fn value_at(&self, index: usize) -> Option<mcas_kql::Value<'_>> {
        Row::get(self.0, LAYOUT.get(index)?.0)
    }
}

const QUERIES: &[&str] = &[
    "source | where A == 'x' and B in ('1', '2') and C has 'deny'",
    "source | where A !contains 'a' or B startswith 'b' or C matches regex '[0-9]+' | project-away C",
    "source | extend L = strlen(A), U = toupper(B), S = split(C, ',')[1], N = toint(B) * 2 + tolong(C) % 7",
    "source | extend T = todatetime(A), Sp = totimespan(B), G = toguid(C), R = toreal(A), Bo = tobool(B)",
    "source | extend J = parse_json(A) | extend E = J.x, F = J[0], G = J['y'].z, H = array_length(J), I = gettype(J)",
    "source | parse A with * 'k=' K:long ',' Rest",
    "source | parse kind=regex flags=U B with '(' X ')' *",
    "source | parse kind=relaxed C with * '=' V:real ';' W:datetime *",
    "source | extend S = substring(A, toint(B), 3), I = indexof(A, C, toint(B)), Co = countof(A, C), E = extract('([a-z]+)=([0-9]+)', 2, A, typeof(long))",
    "source | extend Enc = base64_encodestring(A), Dec = base64_decodestring(B), H = hash_sha256(C), X = parse_xml(A)",
    "source | extend W = datetime_add('month', toint(B), todatetime(A)), P = datetime_part('week_of_year', todatetime(C)), St = startofmonth(todatetime(A), toint(B))",
    "source | extend Ca = case(strlen(A) > 10, 'big', strlen(A) > 5, 'mid', 'small'), I = iif(isempty(B), 'e', B), M = max_of(strlen(A), strlen(C))",
    "source | extend P = pack('a', A, 'b', B), Arr = pack_array(A, B, C), Z = zip(parse_json(A), parse_json(B)), Ac = array_concat(parse_json(B), parse_json(C))",
    "source | extend D = parse_cef_dictionary(A) | extend Src = tostring(D.Extension.src)",
    "source | extend Ea = extract_all('([a-z])([0-9])', A), Rr = replace_regex(B, '([0-9]+)', 'n\\\\1'), Rs = replace_string(C, ',', ';'), Tr = trim(' ', A)",
];

fn queries() -> &'static [Query] {
    static Q: OnceLock<Vec<Query>> = OnceLock::new();
    Q.get_or_init(|| {
        let schema = Schema::new([
            ("A", Type::String),
            ("B", Type::String),
            ("C", Type::String),
        ]);
        QUERIES
            .iter()
            .map(|q| Query::compile(q, &schema).unwrap_or_else(|e| panic!("{q}\n{e}")))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let row: Map<String, Value> = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(m)) => m,
        _ => {
            let text = String::from_utf8_lossy(data);
            let mut parts = text.splitn(3, '\0');
            ["A", "B", "C"]
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        Value::String(parts.next().unwrap_or("").to_string()),
                    )
                })
                .collect()
        }
    };
    let placed = Placed(&row);
    for q in queries() {
        let by_name = q.run_at(&row, 0).map(|out| out.to_json());
        if let Some(json) = &by_name {
            assert_eq!(json.len(), q.output_schema().len());
        }
        assert_eq!(q.passes_at(&row, 0), by_name.is_some());
        let by_place = q.run_at(&placed, 0).map(|out| out.to_json());
        assert_eq!(by_place, by_name);
        assert_eq!(q.passes_at(&placed, 0), by_name.is_some());
    }
});
