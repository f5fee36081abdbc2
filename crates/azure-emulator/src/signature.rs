//! The Data Collector API `SharedKey` signature (spec A.4), as the emulator verifies it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The resource part of the string to sign (the path, without query string).
pub const RESOURCE: &str = "/api/logs";

/// The five-line string to sign: `POST\n{len}\n{content type}\nx-ms-date:{date}\n/api/logs`.
pub fn string_to_sign(content_length: u64, content_type: &str, x_ms_date: &str) -> String {
    format!("POST\n{content_length}\n{content_type}\nx-ms-date:{x_ms_date}\n{RESOURCE}")
}

/// Why a shared key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is not valid standard base64.
    #[error("shared key is not valid base64")]
    InvalidBase64,
    /// The key decodes to zero bytes.
    #[error("shared key is empty")]
    Empty,
}

/// `base64(HMAC-SHA256(base64_decode(key), string_to_sign))`.
pub fn sign(shared_key_base64: &str, string_to_sign: &str) -> Result<String, KeyError> {
    let key = STANDARD
        .decode(shared_key_base64.trim())
        .map_err(|_| KeyError::InvalidBase64)?;
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| KeyError::Empty)?;
    mac.update(string_to_sign.as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// The parts of an `Authorization: SharedKey {workspace}:{signature}` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeyHeader<'a> {
    /// Workspace id.
    pub workspace_id: &'a str,
    /// Base64 signature.
    pub signature: &'a str,
}

/// Splits an `Authorization` header value of the `SharedKey` scheme.
pub fn parse_authorization(value: &str) -> Option<SharedKeyHeader<'_>> {
    let rest = value.strip_prefix("SharedKey ")?;
    let (workspace_id, signature) = rest.split_once(':')?;
    if workspace_id.is_empty() || signature.is_empty() {
        return None;
    }
    Some(SharedKeyHeader {
        workspace_id,
        signature,
    })
}

/// Checks `signature` against any of the workspace keys, comparing the decoded MACs in
/// constant time.
pub fn verify<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    string_to_sign: &str,
    signature: &str,
) -> bool {
    let Ok(given) = STANDARD.decode(signature) else {
        return false;
    };
    keys.into_iter().any(|k| {
        let Ok(key) = STANDARD.decode(k.trim()) else {
            return false;
        };
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
            return false;
        };
        mac.update(string_to_sign.as_bytes());
        !key.is_empty() && mac.verify_slice(&given).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_header() {
        let h = parse_authorization("SharedKey ws:abc=").unwrap();
        assert_eq!(h.workspace_id, "ws");
        assert_eq!(h.signature, "abc=");
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization("SharedKey ws").is_none());
        assert!(parse_authorization("SharedKey :sig").is_none());
    }

    #[test]
    fn bad_keys() {
        assert_eq!(sign("***", "x"), Err(KeyError::InvalidBase64));
        assert_eq!(sign("", "x"), Err(KeyError::Empty));
        assert!(!verify(["***"], "x", "AAAA"));
        assert!(!verify([""], "x", "AAAA"));
    }
}
