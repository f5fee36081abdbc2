//! Logs Ingestion API: `POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=…`.
//!
//! Order of checks: api-version (400), bearer token (401), DCR (404), role on the DCR (403),
//! stream (404), Content-Type (415), Content-Encoding (400), size on the wire (413), gzip
//! (400), size decoded (413), JSON array (400), records against the stream declaration (400),
//! the Auxiliary time range (400); then rows are stored and the answer is 204.

use std::io::Read as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{ColumnType, Dcr, Stream, TablePlan};
use crate::http::{BodyBytes, ReadBody, RowsStored, azure_error, azure_error_details, read_capped};
use crate::server::Shared;
use crate::store::count_array_elements;
use crate::token::{BearerError, verify_bearer};

/// api-versions the emulator accepts for the Logs Ingestion API.
pub const INGESTION_API_VERSIONS: &[&str] = &["2023-01-01", "2021-11-01-preview"];

/// Query string of the ingestion endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct IngestQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

fn too_large(limit: usize, provided: &str) -> Response {
    azure_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ContentLengthLimitExceeded",
        format!(
            "Maximum allowed content length: {limit} bytes ({} MB). Provided content length: {provided} bytes.",
            limit / (1024 * 1024)
        ),
    )
}

fn unauthorized(code: &str, message: &str) -> Response {
    let mut r = azure_error(StatusCode::UNAUTHORIZED, code, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", error=\"invalid_token\""),
    );
    r
}

/// `POST /dataCollectionRules/{dcr}/streams/{stream}`.
pub(crate) async fn ingest_endpoint(
    State(sh): State<Arc<Shared>>,
    Path((dcr_id, stream_name)): Path<(String, String)>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Read (or drain) the body first, whatever the answer: a client that is still writing
    // when the answer comes would see a reset instead of the error.
    let limit = sh.config.limits.ingestion_max_bytes;
    let body = read_capped(body, limit).await;
    let Some(api_version) = q.api_version.as_deref() else {
        return azure_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    if !INGESTION_API_VERSIONS.contains(&api_version) {
        return azure_error(
            StatusCode::BAD_REQUEST,
            "UnsupportedApiVersion",
            format!(
                "The HTTP resource does not support the api-version '{api_version}'. Supported versions: {}.",
                INGESTION_API_VERSIONS.join(", ")
            ),
        );
    }
    let claims = match verify_bearer(&sh, &headers, &sh.config.ingestion_audience) {
        Ok(c) => c,
        Err(BearerError::Missing) => {
            return unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            );
        }
        Err(BearerError::NotBearer) => {
            return unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format (expected 'Bearer <token>').",
            );
        }
        Err(BearerError::Invalid) => {
            return unauthorized(
                "InvalidAuthenticationToken",
                "The access token is invalid (not issued by this service, or malformed).",
            );
        }
        Err(BearerError::Expired) => {
            return unauthorized(
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            );
        }
        Err(BearerError::WrongAudience) => {
            return unauthorized(
                "InvalidAuthenticationTokenAudience",
                &format!(
                    "The access token has been obtained for the wrong audience or resource. It should be '{}'. Check that the token scope matches the cloud of the endpoint.",
                    sh.config.ingestion_audience
                ),
            );
        }
    };
    let Some(dcr) = sh.config.dcrs.iter().find(|d| d.immutable_id == dcr_id) else {
        return azure_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Data collection rule with immutable Id '{dcr_id}' not found."),
        );
    };
    if !allowed(dcr, &claims.appid) {
        return azure_error(
            StatusCode::FORBIDDEN,
            "OperationFailed",
            format!(
                "The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '{dcr_id}'."
            ),
        );
    }
    let Some(stream) = dcr.streams.iter().find(|s| s.name == stream_name) else {
        return azure_error(
            StatusCode::NOT_FOUND,
            "InvalidStream",
            format!("Stream '{stream_name}' is not declared in data collection rule '{dcr_id}'."),
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let json_type = content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return azure_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "Content-Type must be 'application/json', got '{}'.",
                content_type.unwrap_or("")
            ),
        );
    }
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None => false,
        Some(v) if v.trim().eq_ignore_ascii_case("gzip") => true,
        Some(v) if v.trim().eq_ignore_ascii_case("identity") => false,
        Some(v) => {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "UnsupportedContentEncoding",
                format!("Content-Encoding '{v}' is not supported; use 'gzip' or none."),
            );
        }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let wire = match body {
        ReadBody::Within(b) => b,
        ReadBody::Over { seen, complete } => {
            let provided = match declared {
                Some(n) => n.to_string(),
                None if complete => seen.to_string(),
                None => format!("more than {seen}"),
            };
            let mut r = too_large(limit, &provided);
            r.extensions_mut().insert(BodyBytes(seen));
            return r;
        }
        ReadBody::Failed => {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "InvalidPayload",
                "The request body could not be read.",
            );
        }
    };
    let wire_len = wire.len() as u64;
    let decoded: Vec<u8> = if gzip {
        match gunzip_bounded(&wire, limit) {
            Ok(d) => d,
            Err(GunzipError::TooLarge(n)) => {
                let mut r = too_large(limit, &n);
                r.extensions_mut().insert(BodyBytes(wire_len));
                return r;
            }
            Err(GunzipError::Invalid(e)) => {
                let mut r = azure_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidContentEncoding",
                    format!("The body is not valid gzip: {e}."),
                );
                r.extensions_mut().insert(BodyBytes(wire_len));
                return r;
            }
        }
    } else {
        wire
    };
    sh.store.add_bytes(wire_len, decoded.len() as u64);
    let mut resp = accept(&sh, stream, &decoded);
    resp.extensions_mut().insert(BodyBytes(wire_len));
    resp
}

fn allowed(dcr: &Dcr, appid: &str) -> bool {
    dcr.allowed_clients
        .as_ref()
        .is_none_or(|list| list.iter().any(|c| c.eq_ignore_ascii_case(appid)))
}

enum GunzipError {
    TooLarge(String),
    Invalid(std::io::Error),
}

/// Decodes gzip, refusing output over `limit`; counts the full decoded size up to 64 × limit
/// for the error message.
fn gunzip_bounded(wire: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(wire).take(limit as u64 + 1);
    dec.read_to_end(&mut out).map_err(GunzipError::Invalid)?;
    if out.len() > limit {
        let mut rest = dec.into_inner().take((limit as u64).saturating_mul(64));
        let extra = std::io::copy(&mut rest, &mut std::io::sink()).unwrap_or(0);
        let total = out.len() as u64 + extra;
        let shown = if extra >= (limit as u64).saturating_mul(64) {
            format!("more than {total}")
        } else {
            total.to_string()
        };
        return Err(GunzipError::TooLarge(shown));
    }
    Ok(out)
}

fn bad_payload(message: impl Into<String>, details: Vec<Value>) -> Response {
    azure_error_details(StatusCode::BAD_REQUEST, "InvalidPayload", message, details)
}

fn accept(sh: &Shared, stream: &Stream, body: &[u8]) -> Response {
    if sh.store.counting_only() {
        let Some(n) = count_array_elements(body) else {
            return bad_payload(
                "The request body must be a JSON array of records.",
                Vec::new(),
            );
        };
        sh.store.count(&stream.table, n);
        return no_content(n);
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return bad_payload(
                format!("The request body is malformed JSON: {e}."),
                Vec::new(),
            );
        }
    };
    let Value::Array(records) = value else {
        return bad_payload(
            "The request body must be a JSON array of records.",
            Vec::new(),
        );
    };
    let now = sh.now();
    let now_ts = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let ingestion_time = now_ts.to_string();
    let field_max = sh.config.limits.ingestion_field_max_bytes;
    let mut rows = Vec::with_capacity(records.len());
    let mut details = Vec::new();
    let mut min_max: Option<(jiff::Timestamp, jiff::Timestamp)> = None;
    for (i, rec) in records.into_iter().enumerate() {
        let Value::Object(obj) = rec else {
            details.push(json!({
                "code": "InvalidRecord",
                "message": format!("Record {i} is not a JSON object."),
                "target": format!("[{i}]"),
            }));
            continue;
        };
        match check_record(i, obj, stream, field_max) {
            Ok(row) => {
                // The data flow's transformation, as Azure applies it before storage.
                let mut row = match &stream.transform {
                    None => row,
                    Some(t) => match t.apply(&row) {
                        Some(out) => out,
                        None => continue,
                    },
                };
                let tg = row
                    .get("TimeGenerated")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                    .unwrap_or(now_ts);
                if !row.contains_key("TimeGenerated") {
                    row.insert(
                        "TimeGenerated".to_owned(),
                        Value::String(ingestion_time.clone()),
                    );
                }
                min_max = Some(match min_max {
                    None => (tg, tg),
                    Some((lo, hi)) => (lo.min(tg), hi.max(tg)),
                });
                row.insert(
                    "_IngestionTime".to_owned(),
                    Value::String(ingestion_time.clone()),
                );
                rows.push(Value::Object(row));
            }
            Err(mut d) => details.append(&mut d),
        }
    }
    if !details.is_empty() {
        let count = details.len();
        details.truncate(20);
        return bad_payload(
            format!(
                "{count} problem(s) with records of stream '{}'; the request was rejected.",
                stream.name
            ),
            details,
        );
    }
    if stream.plan == TablePlan::Auxiliary
        && let Some((lo, hi)) = min_max
    {
        let spread = hi.duration_since(lo).unsigned_abs();
        if spread > sh.config.limits.auxiliary_time_range {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "RecordsTimeRangeIsMoreThan30Minutes",
                format!(
                    "The records' TimeGenerated values span {}s; one request to table '{}' (Auxiliary plan) may span at most {}s.",
                    spread.as_secs(),
                    stream.table,
                    sh.config.limits.auxiliary_time_range.as_secs()
                ),
            );
        }
    }
    let n = rows.len() as u64;
    if let Err(e) = sh.store.append(&stream.table, rows) {
        tracing::error!(error = %e, "storing rows failed");
        return azure_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The emulator could not store the rows.",
        );
    }
    no_content(n)
}

fn no_content(rows: u64) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.extensions_mut().insert(RowsStored(rows));
    r
}

/// Validates one record against the declaration: declared columns are type-checked (null
/// means absent), strings are truncated, datetimes normalised to RFC 3339 UTC, and undeclared
/// properties are dropped.
fn check_record(
    i: usize,
    mut obj: Map<String, Value>,
    stream: &Stream,
    field_max: usize,
) -> Result<Map<String, Value>, Vec<Value>> {
    let mut row = Map::new();
    let mut errors = Vec::new();
    for col in &stream.columns {
        let Some(v) = obj.remove(&col.name) else {
            continue;
        };
        match check_value(v, col.ty, field_max) {
            Ok(Some(v)) => {
                row.insert(col.name.clone(), v);
            }
            Ok(None) => {}
            Err(got) => errors.push(json!({
                "code": "InvalidColumnType",
                "message": format!(
                    "Record {i}: column '{}' is declared as {} but the value is {got}.",
                    col.name,
                    col.ty.as_str()
                ),
                "target": format!("[{i}].{}", col.name),
            })),
        }
    }
    if errors.is_empty() {
        Ok(row)
    } else {
        Err(errors)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a non-integer number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses an ISO 8601 datetime: RFC 3339 with an offset, or a civil date-time read as UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    let dt = s
        .trim_end_matches('Z')
        .parse::<jiff::civil::DateTime>()
        .ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

fn check_value(v: Value, ty: ColumnType, field_max: usize) -> Result<Option<Value>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let wrong = |v: &Value| kind(v).to_owned();
    match ty {
        ColumnType::String => match v {
            Value::String(s) => Ok(Some(Value::String(truncate(s, field_max)))),
            other => Err(wrong(&other)),
        },
        ColumnType::Int => match v.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(Some(v)),
            Some(_) => Err("an integer outside the 32-bit range".to_owned()),
            None => Err(wrong(&v)),
        },
        ColumnType::Long => match (v.as_i64(), v.is_u64()) {
            (Some(_), _) => Ok(Some(v)),
            (None, true) => Err("an integer outside the 64-bit range".to_owned()),
            _ => Err(wrong(&v)),
        },
        ColumnType::Real => {
            if v.is_number() {
                Ok(Some(v))
            } else {
                Err(wrong(&v))
            }
        }
        ColumnType::Boolean => {
            if v.is_boolean() {
                Ok(Some(v))
            } else {
                Err(wrong(&v))
            }
        }
        ColumnType::DateTime => match &v {
            Value::String(s) => match parse_datetime(s) {
                Some(t) => Ok(Some(Value::String(t.to_string()))),
                None => Err(format!(
                    "the string {s:?}, which is not an ISO 8601 datetime"
                )),
            },
            other => Err(wrong(other)),
        },
        ColumnType::Dynamic => Ok(Some(v)),
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Column;

    #[test]
    fn value_checks() {
        let max = 8;
        assert_eq!(
            check_value(json!("abc"), ColumnType::String, max),
            Ok(Some(json!("abc")))
        );
        assert_eq!(
            check_value(json!("ääääää"), ColumnType::String, max),
            Ok(Some(json!("ääää")))
        );
        assert!(check_value(json!(5), ColumnType::String, max).is_err());
        assert_eq!(
            check_value(json!(5), ColumnType::Int, max),
            Ok(Some(json!(5)))
        );
        assert!(check_value(json!(3_000_000_000i64), ColumnType::Int, max).is_err());
        assert!(check_value(json!(1.5), ColumnType::Int, max).is_err());
        assert!(check_value(json!("5"), ColumnType::Int, max).is_err());
        assert_eq!(
            check_value(json!(3_000_000_000i64), ColumnType::Long, max),
            Ok(Some(json!(3_000_000_000i64)))
        );
        assert!(check_value(json!(u64::MAX), ColumnType::Long, max).is_err());
        assert_eq!(
            check_value(json!(1), ColumnType::Real, max),
            Ok(Some(json!(1)))
        );
        assert!(check_value(json!("x"), ColumnType::Boolean, max).is_err());
        assert_eq!(
            check_value(
                json!("2024-02-29T23:59:59+01:00"),
                ColumnType::DateTime,
                max
            ),
            Ok(Some(json!("2024-02-29T22:59:59Z")))
        );
        assert_eq!(
            check_value(json!("2024-02-29T23:59:59.5"), ColumnType::DateTime, max),
            Ok(Some(json!("2024-02-29T23:59:59.5Z")))
        );
        assert!(check_value(json!("yesterday"), ColumnType::DateTime, max).is_err());
        assert_eq!(
            check_value(json!({"a":[1]}), ColumnType::Dynamic, max),
            Ok(Some(json!({"a":[1]})))
        );
        assert_eq!(check_value(Value::Null, ColumnType::Int, max), Ok(None));
    }

    #[test]
    fn records_drop_unknown_columns() {
        let s = Stream::new("Custom-X", "X", vec![Column::new("A", ColumnType::String)]);
        let Value::Object(obj) = json!({"A":"x","B":1}) else {
            unreachable!()
        };
        let row = check_record(0, obj, &s, 100).unwrap();
        assert_eq!(Value::Object(row), json!({"A":"x"}));
    }
}
