//! Bounded reads of answer bodies.

use crate::error::Error;

/// The most bytes read of any answer body: token answers and the error bodies of both
/// ingestion APIs. Real ones are a few kilobytes; a longer body is cut here (an error body
/// keeps its first bytes for the error code, a token answer is refused as too large), so a
/// hostile or broken endpoint cannot make the client hold an unbounded answer in memory.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The first bytes of a body, and whether more followed.
#[derive(Debug)]
pub(crate) struct Capped {
    pub(crate) bytes: Vec<u8>,
    pub(crate) truncated: bool,
}

/// Reads at most `cap` bytes of `resp`'s body, chunk by chunk, and stops there: the rest is
/// never read (the connection is dropped with the response). A `Content-Length` over the cap
/// is believed without reading anything.
pub(crate) async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Capped, Error> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        // Keep the first bytes anyway: an error body's code is at its start.
        let mut bytes = Vec::new();
        if let Some(chunk) = resp.chunk().await.map_err(Error::transport)? {
            bytes.extend_from_slice(&chunk[..chunk.len().min(cap)]);
        }
        return Ok(Capped {
            bytes,
            truncated: true,
        });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Error::transport)? {
        let room = cap - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Capped {
                bytes,
                truncated: true,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Capped {
        bytes,
        truncated: false,
    })
}

/// The error code at the start of a JSON error body that could not be parsed whole (cut at
/// the cap): the first string value of a `"code"` or `"Error"` key, if it is a plain
/// identifier of at most 128 characters.
pub(crate) fn code_from_prefix(body: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&body[..e.valid_up_to()]).ok()?,
    };
    ["\"code\"", "\"Error\""].iter().find_map(|key| {
        let at = text.find(key)? + key.len();
        let rest = text[at..].trim_start().strip_prefix(':')?;
        let rest = rest.trim_start().strip_prefix('"')?;
        let end = rest.find('"')?;
        let code = &rest[..end];
        (!code.is_empty()
            && code.len() <= 128
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
        .then(|| code.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_cut_bodies() {
        assert_eq!(
            code_from_prefix(br#"{"error":{"code":"HugeAnswer","message":"xxxxxxxx"#).as_deref(),
            Some("HugeAnswer")
        );
        assert_eq!(
            code_from_prefix(br#"{"Error" : "InvalidDataFormat","Message":"xx"#).as_deref(),
            Some("InvalidDataFormat")
        );
        assert_eq!(code_from_prefix(br#"{"error":{"code":"Huge"#), None);
        assert_eq!(code_from_prefix(br#"{"error":{"code":"a b"}}"#), None);
        assert_eq!(code_from_prefix(b"\xff\xfe"), None);
        assert_eq!(code_from_prefix(b""), None);
    }
}
