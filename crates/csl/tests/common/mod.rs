//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use mcas_csl::ColumnType;
use serde_json::Value;

/// Checks that every member of a serialised row is a declared column and
/// holds a value of that column's type. Returns the first problem.
pub fn check_against_schema(row: &Value, columns: &[(String, ColumnType)]) -> Result<(), String> {
    let obj = row.as_object().ok_or("row is not a JSON object")?;
    for (name, value) in obj {
        let ty = columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| format!("{name} is not a declared column"))?;
        let ok = match ty {
            ColumnType::String => value.is_string(),
            ColumnType::Int => value.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
            ColumnType::Long => value.as_i64().is_some(),
            ColumnType::Real => value.as_f64().is_some_and(f64::is_finite),
            ColumnType::Datetime => value.as_str().is_some_and(is_rfc3339_millis_utc),
            ColumnType::Boolean => value.is_boolean(),
            _ => false,
        };
        if !ok {
            return Err(format!("{name} = {value} is not a valid {ty}"));
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, and a real instant.
pub fn is_rfc3339_millis_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    shape && s.parse::<jiff::Timestamp>().is_ok()
}

/// The owned (name, type) list of the default schema.
pub fn default_columns() -> Vec<(String, ColumnType)> {
    mcas_csl::columns_with(&mcas_csl::MappingRules::new())
}

/// The row as JSON, through both writers: `serde_json` and the crate's own
/// `write_json` must give the same bytes. Returns the row as a JSON value.
pub fn row_json(row: &mcas_csl::CommonSecurityLog<'_>) -> Value {
    let by_serde = serde_json::to_vec(row).expect("row serialises");
    let mut ours = Vec::new();
    row.write_json(&mut ours);
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&by_serde),
        "write_json and serde_json disagree"
    );
    // The value straight from the row: reading the text back would round some
    // floats by one unit in the last place (serde_json's fast float reader).
    serde_json::from_slice::<Value>(&ours).expect("write_json gives valid JSON");
    serde_json::to_value(row).expect("row serialises")
}
