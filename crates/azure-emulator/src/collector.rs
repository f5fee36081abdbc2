//! HTTP Data Collector API (legacy): `POST /api/logs?api-version=2016-04-01`.
//!
//! The target workspace is the first label of the `Host` header when that label is a GUID
//! (as with `{workspace}.ods.opinsights.azure.com`); otherwise the workspace named in the
//! `SharedKey` authorization. Rows go to `{Log-Type}_CL` with suffixed column names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::http::{BodyBytes, ReadBody, RowsStored, collector_error, read_capped};
use crate::ingest::{parse_datetime, truncate};
use crate::server::Shared;
use crate::signature;

/// Columns known per `_CL` table: name (with suffix) → suffix.
#[derive(Debug, Default)]
pub(crate) struct TableColumns {
    columns: BTreeMap<String, Suffix>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Suffix {
    S,
    B,
    D,
    T,
    G,
}

impl Suffix {
    fn as_str(self) -> &'static str {
        match self {
            Suffix::S => "_s",
            Suffix::B => "_b",
            Suffix::D => "_d",
            Suffix::T => "_t",
            Suffix::G => "_g",
        }
    }
}

fn looks_like_guid(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let dashed = s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let plain = s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit());
    if !(dashed || plain) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Infers the suffix of a value seen for the first time, with its stored form.
fn infer(v: &Value) -> Option<(Suffix, Value)> {
    match v {
        Value::Null => None,
        Value::Bool(_) => Some((Suffix::B, v.clone())),
        Value::Number(_) => Some((Suffix::D, v.clone())),
        Value::String(s) => {
            if let Some(g) = looks_like_guid(s) {
                Some((Suffix::G, Value::String(g)))
            } else if let Some(t) = iso_datetime(s) {
                Some((Suffix::T, Value::String(t)))
            } else {
                Some((Suffix::S, v.clone()))
            }
        }
        // Nested values are stored as their JSON text.
        Value::Array(_) | Value::Object(_) => Some((Suffix::S, Value::String(v.to_string()))),
    }
}

/// A value converted to an existing column's type, if it converts.
fn convert(v: &Value, to: Suffix) -> Option<Value> {
    match (to, v) {
        (Suffix::S, Value::String(_)) => Some(v.clone()),
        (Suffix::S, Value::Number(n)) => Some(Value::String(n.to_string())),
        (Suffix::S, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (Suffix::S, Value::Array(_) | Value::Object(_)) => Some(Value::String(v.to_string())),
        (Suffix::B, Value::Bool(_)) => Some(v.clone()),
        (Suffix::D, Value::Number(_)) => Some(v.clone()),
        (Suffix::T, Value::String(s)) => iso_datetime(s).map(Value::String),
        (Suffix::G, Value::String(s)) => looks_like_guid(s).map(Value::String),
        _ => None,
    }
}

fn iso_datetime(s: &str) -> Option<String> {
    // Only strings that start like a date: plain words must stay strings.
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    parse_datetime(s).map(|t| t.to_string())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `POST /api/logs`.
pub(crate) async fn collector_endpoint(
    State(sh): State<Arc<Shared>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // Read (or drain) the body first, so a client still writing sees the answer.
    let limit = sh.config.limits.collector_max_bytes;
    let body = read_capped(body, limit).await;
    let api_version = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("api-version="));
    match api_version {
        None => {
            return collector_error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersion",
                "The API version wasn't specified.",
            );
        }
        Some("2016-04-01") => {}
        Some(_) => {
            return collector_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersion",
                "The API version that you specified wasn't recognized by the service.",
            );
        }
    }
    let hv = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(content_type) = hv("content-type") else {
        return collector_error(
            StatusCode::BAD_REQUEST,
            "MissingContentType",
            "The content type wasn't specified.",
        );
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return collector_error(
            StatusCode::BAD_REQUEST,
            "UnsupportedContentType",
            "The content type wasn't set to application/json.",
        );
    }
    let Some(log_type) = hv("log-type") else {
        return collector_error(
            StatusCode::BAD_REQUEST,
            "MissingLogType",
            "The value type LogType wasn't specified.",
        );
    };
    if !valid_name(log_type) || log_type.len() > 100 {
        return collector_error(
            StatusCode::BAD_REQUEST,
            "InvalidLogType",
            "The log type contained special characters or numerics. Only letters, numbers, and the underscore (_) character are allowed, up to 100 characters.",
        );
    }
    let forbidden = |msg: &str| collector_error(StatusCode::FORBIDDEN, "InvalidAuthorization", msg);
    let Some(auth) = hv("authorization").and_then(signature::parse_authorization) else {
        return forbidden(
            "An invalid scheme was specified in the Authorization header (expected 'SharedKey {workspaceId}:{signature}').",
        );
    };
    let host_ws = hv("host")
        .and_then(|h| h.split('.').next())
        .filter(|label| looks_like_guid(label).is_some() && label.len() == 36);
    let target = host_ws.unwrap_or(auth.workspace_id);
    let Some(ws) = sh
        .config
        .workspaces
        .iter()
        .find(|w| w.id.eq_ignore_ascii_case(target))
    else {
        return collector_error(
            StatusCode::BAD_REQUEST,
            "InvalidCustomerId",
            "The workspace ID specified is invalid.",
        );
    };
    if !auth.workspace_id.eq_ignore_ascii_case(&ws.id) {
        return forbidden(
            "The workspace ID in the Authorization header does not match the target workspace.",
        );
    }
    if ws.inactive {
        return collector_error(
            StatusCode::BAD_REQUEST,
            "InactiveCustomer",
            "The workspace has been closed.",
        );
    }
    let Some(date) = hv("x-ms-date") else {
        return forbidden("The x-ms-date header is missing.");
    };
    let Ok(sent) = httpdate::parse_http_date(date) else {
        return forbidden("The x-ms-date header is not an RFC 1123 date.");
    };
    let now = sh.now();
    let skew = now
        .duration_since(sent)
        .or_else(|_| sent.duration_since(now))
        .unwrap_or(Duration::ZERO);
    if skew > sh.config.limits.collector_max_clock_skew {
        return forbidden(
            "The x-ms-date header is more than 15 minutes away from the service clock.",
        );
    }
    let Some(length) = hv("content-length").and_then(|v| v.parse::<u64>().ok()) else {
        return forbidden("The Content-Length header is required to verify the signature.");
    };
    let too_large = matches!(body, ReadBody::Over { .. });
    if length > limit as u64 || too_large {
        // Documented: 404 "request too large".
        return collector_error(
            StatusCode::NOT_FOUND,
            "RequestTooLarge",
            "The request is larger than the 30 MB limit for one post.",
        );
    }
    let string_to_sign = signature::string_to_sign(length, content_type, date);
    if !signature::verify(
        ws.shared_keys.iter().map(|k| k.expose()),
        &string_to_sign,
        auth.signature,
    ) {
        return forbidden(
            "The signature does not match: check the workspace ID and key, Content-Length in bytes, Content-Type and x-ms-date.",
        );
    }
    let ReadBody::Within(body) = body else {
        return collector_error(
            StatusCode::BAD_REQUEST,
            "InvalidDataFormat",
            "The request body could not be read.",
        );
    };
    let wire = body.len() as u64;
    sh.store.add_bytes(wire, wire);
    let mut resp = store_records(
        &sh,
        log_type,
        hv("time-generated-field"),
        hv("x-ms-azureresourceid"),
        &body,
    );
    resp.extensions_mut().insert(BodyBytes(wire));
    resp
}

fn store_records(
    sh: &Shared,
    log_type: &str,
    time_field: Option<&str>,
    resource_id: Option<&str>,
    body: &[u8],
) -> Response {
    let invalid = |msg: String| collector_error(StatusCode::BAD_REQUEST, "InvalidDataFormat", &msg);
    let table = format!("{log_type}_CL");
    if sh.store.counting_only() {
        return match crate::store::count_array_elements(body) {
            Some(n) => {
                sh.store.count(&table, n);
                ok(n)
            }
            None => invalid("The body must be a JSON array of records.".to_owned()),
        };
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return invalid(format!("Invalid JSON: {e}")),
    };
    let records = match value {
        Value::Array(a) => a,
        Value::Object(o) => vec![Value::Object(o)],
        _ => return invalid("The body must be a JSON array of records.".to_owned()),
    };
    let now = jiff::Timestamp::try_from(sh.now()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let field_max = sh.config.limits.collector_field_max_bytes;
    let max_columns = sh.config.limits.collector_max_columns;
    let mut tables = sh
        .collector_tables
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    // Work on a copy so a rejected request adds no columns.
    let mut cols = tables
        .get(&table)
        .map(|t| t.columns.clone())
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(records.len());
    for (i, rec) in records.into_iter().enumerate() {
        let Value::Object(obj) = rec else {
            return invalid(format!("Record {i} is not a JSON object."));
        };
        let mut row = Map::new();
        let mut additional = Map::new();
        let mut time_generated = None;
        for (name, v) in obj {
            if !valid_name(&name) {
                return invalid(format!(
                    "Record {i}: property name '{name}' may contain only letters, digits and '_'."
                ));
            }
            if ["tenant", "TimeGenerated", "RawData"]
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&name))
            {
                return invalid(format!("Record {i}: '{name}' is a reserved property name."));
            }
            if time_field == Some(name.as_str()) {
                time_generated = v.as_str().and_then(parse_datetime);
            }
            // Existing column of a convertible type first, else a new suffixed column.
            let existing = [Suffix::S, Suffix::D, Suffix::B, Suffix::T, Suffix::G]
                .into_iter()
                .filter(|s| cols.get(&format!("{name}{}", s.as_str())) == Some(s))
                .find_map(|s| convert(&v, s).map(|c| (s, c)));
            let Some((suffix, stored)) = existing.or_else(|| infer(&v)) else {
                continue;
            };
            let column = format!("{name}{}", suffix.as_str());
            let stored = match stored {
                Value::String(s) => Value::String(truncate(s, field_max)),
                other => other,
            };
            if !cols.contains_key(&column) {
                if cols.len() >= max_columns || column.len() > 45 {
                    additional.insert(name, stored);
                    continue;
                }
                cols.insert(column.clone(), suffix);
            }
            row.insert(column, stored);
        }
        let tg = time_generated
            .filter(|t| {
                let age = now.duration_since(*t);
                age <= jiff::SignedDuration::from_hours(48)
                    && age >= jiff::SignedDuration::from_hours(-24)
            })
            .unwrap_or(now);
        row.insert("TimeGenerated".to_owned(), Value::String(tg.to_string()));
        if !additional.is_empty() {
            row.insert("AdditionalFields".to_owned(), Value::Object(additional));
        }
        if let Some(r) = resource_id {
            row.insert("_ResourceId".to_owned(), Value::String(r.to_owned()));
        }
        row.insert("_IngestionTime".to_owned(), Value::String(now.to_string()));
        rows.push(Value::Object(row));
    }
    let n = rows.len() as u64;
    if let Err(e) = sh.store.append(&table, rows) {
        tracing::error!(error = %e, "storing rows failed");
        return collector_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UnspecifiedError",
            "The emulator could not store the rows.",
        );
    }
    tables.entry(table).or_default().columns = cols;
    ok(n)
}

fn ok(rows: u64) -> Response {
    let mut r = StatusCode::OK.into_response();
    r.extensions_mut().insert(RowsStored(rows));
    r
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guid_detection_normalises() {
        assert_eq!(
            looks_like_guid("0123456789ABCDEF0123456789abcdef").as_deref(),
            Some("01234567-89ab-cdef-0123-456789abcdef")
        );
        assert!(looks_like_guid("00000000-1111-2222-3333-444444444444").is_some());
        assert!(looks_like_guid("hello").is_none());
    }

    #[test]
    fn inference_and_conversion() {
        assert_eq!(infer(&json!("hello")).unwrap().0, Suffix::S);
        assert_eq!(infer(&json!(1)).unwrap().0, Suffix::D);
        assert_eq!(infer(&json!(true)).unwrap().0, Suffix::B);
        assert_eq!(infer(&json!("2016-05-12T20:00:00Z")).unwrap().0, Suffix::T);
        assert_eq!(
            infer(&json!("9ae1e1ad-0000-4000-8000-000000000000"))
                .unwrap()
                .0,
            Suffix::G
        );
        assert!(infer(&Value::Null).is_none());
        assert_eq!(convert(&json!(2), Suffix::S), Some(json!("2")));
        assert_eq!(convert(&json!("x"), Suffix::D), None);
    }
}
