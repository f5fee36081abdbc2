//! Response helpers: the three error body shapes (Azure Core, Entra ID, Data Collector) and
//! the response extensions the request log reads.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Error code of an answer, read by the request log.
#[derive(Clone, Debug)]
pub(crate) struct ErrorCode(pub(crate) String);

/// Rows stored by a request, read by the request log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowsStored(pub(crate) u64);

/// Body bytes received, read by the request log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyBytes(pub(crate) u64);

/// An Azure Core error (`{"error":{"code","message"}}` plus `x-ms-error-code`), as the Logs
/// Ingestion API answers.
pub(crate) fn azure_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    azure_error_details(status, code, message, Vec::new())
}

/// An Azure Core error with `details`.
pub(crate) fn azure_error_details(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    details: Vec<serde_json::Value>,
) -> Response {
    let mut err = json!({ "code": code, "message": message.into() });
    if !details.is_empty() {
        err["details"] = serde_json::Value::Array(details);
    }
    let mut resp = (status, axum::Json(json!({ "error": err }))).into_response();
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-ms-error-code", v);
    }
    resp.extensions_mut().insert(ErrorCode(code.to_owned()));
    resp
}

/// An Entra ID (OAuth 2.0) error: `invalid_client` answers 401, every other code 400 unless
/// `status` says otherwise.
pub(crate) fn entra_error(
    status: Option<StatusCode>,
    error: &str,
    aadsts: u32,
    description: &str,
) -> Response {
    let status = status.unwrap_or(if error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    });
    let trace = random_guid();
    let correlation = random_guid();
    let timestamp = jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M:%SZ")
        .to_string();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
        ),
        "error_codes": [aadsts],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={aadsts}"),
    });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.extensions_mut().insert(ErrorCode(error.to_owned()));
    resp
}

/// An IMDS error: `{"error","error_description"}`.
pub(crate) fn imds_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.extensions_mut().insert(ErrorCode(error.to_owned()));
    resp
}

/// A Data Collector API error: `{"Error","Message"}`.
pub(crate) fn collector_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "Error": code, "Message": message });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.extensions_mut().insert(ErrorCode(code.to_owned()));
    resp
}

/// How far past its limit a request body is still read (and thrown away) before the answer,
/// so that a client writing a too-large body reads the error instead of a broken pipe.
pub(crate) const DRAIN_CAP: u64 = 64 * 1024 * 1024;

/// A request body read up to a limit.
#[derive(Debug)]
pub(crate) enum ReadBody {
    /// The whole body, within the limit.
    Within(Vec<u8>),
    /// Over the limit: bytes seen, and whether the body was read to its end.
    Over { seen: u64, complete: bool },
    /// The client went away or the body was malformed.
    Failed,
}

/// Reads the body, keeping it if it fits in `keep` bytes and draining it up to [`DRAIN_CAP`]
/// otherwise.
pub(crate) async fn read_capped(body: axum::body::Body, keep: usize) -> ReadBody {
    use futures_util::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0u64;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return ReadBody::Failed;
        };
        seen += chunk.len() as u64;
        if seen <= keep as u64 {
            buf.extend_from_slice(&chunk);
        } else if !buf.is_empty() {
            buf = Vec::new();
        }
        if seen > DRAIN_CAP.max(keep as u64) {
            return ReadBody::Over {
                seen,
                complete: false,
            };
        }
    }
    if seen > keep as u64 {
        ReadBody::Over {
            seen,
            complete: true,
        }
    } else {
        ReadBody::Within(buf)
    }
}

/// Adds `Retry-After: secs`.
pub(crate) fn with_retry_after(mut resp: Response, secs: u64) -> Response {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// A random GUID-shaped string (version 4 layout).
pub(crate) fn random_guid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

/// Percent-decodes an `application/x-www-form-urlencoded` body into pairs.
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let f =
            parse_form(b"a=1&scope=https%3A%2F%2Fmonitor.azure.com%2F.default&b=x+y&c&d=%zz&e=%4");
        assert_eq!(f[0], ("a".into(), "1".into()));
        assert_eq!(f[1].1, "https://monitor.azure.com/.default");
        assert_eq!(f[2].1, "x y");
        assert_eq!(f[3], ("c".into(), String::new()));
        assert_eq!(f[4].1, "%zz");
        assert_eq!(f[5].1, "%4");
    }

    #[test]
    fn guid_shape() {
        let g = random_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.as_bytes()[14], b'4');
        assert_eq!(g.matches('-').count(), 4);
    }
}
