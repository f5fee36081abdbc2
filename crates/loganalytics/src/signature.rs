//! `SharedKey` signing for the HTTP Data Collector API, as pure functions.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;

/// The `Content-Type` the Data Collector API accepts, and the one that is signed.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The resource part of the string to sign: the request path, without query.
pub const DATA_COLLECTOR_RESOURCE: &str = "/api/logs";

/// A Log Analytics workspace key (primary or secondary), held decoded.
///
/// It redacts itself in `Debug` and `Display` and its bytes are zeroised
/// when it is dropped.
#[derive(Clone)]
pub struct SharedKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl SharedKey {
    /// Decodes a workspace key given in its usual base64 form.
    ///
    /// # Errors
    /// Fails when the text is empty or not valid base64. The error does not
    /// repeat the text.
    pub fn from_base64(key: &str) -> Result<Self, Error> {
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::builder("the shared key is empty"));
        }
        let bytes = STANDARD
            .decode(key)
            .map_err(|_| Error::builder("the shared key is not valid base64"))?;
        Ok(Self {
            bytes: Zeroizing::new(bytes),
        })
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey(<redacted>)")
    }
}

impl fmt::Display for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The string the Data Collector API signs (five lines joined by `\n`, no
/// trailing newline):
///
/// ```text
/// POST\n{content_length}\n{content_type}\nx-ms-date:{x_ms_date}\n/api/logs
/// ```
///
/// `content_length` is the body's length in **bytes** (not characters).
pub fn string_to_sign(content_length: usize, content_type: &str, x_ms_date: &str) -> String {
    format!(
        "POST\n{content_length}\n{content_type}\nx-ms-date:{x_ms_date}\n{DATA_COLLECTOR_RESOURCE}"
    )
}

/// The base64 HMAC-SHA256 signature of [`string_to_sign`] under `key`.
///
/// ```
/// use mcas_loganalytics::{SharedKey, signature};
/// let key = SharedKey::from_base64(
///     "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
/// )?;
/// let sig = signature(&key, 1024, "application/json", "Mon, 04 Apr 2016 08:00:00 GMT");
/// assert_eq!(sig, "kQfMluP3yBFQzfwH0Ye5adOjNq2FCEIWGh0n4uEtCrg=");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn signature(
    key: &SharedKey,
    content_length: usize,
    content_type: &str,
    x_ms_date: &str,
) -> String {
    let mut message = string_to_sign(content_length, content_type, x_ms_date);
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key.bytes) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(message.as_bytes());
    message.zeroize();
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The full `Authorization` header value:
/// `SharedKey {workspace_id}:{signature}`.
///
/// The value is a credential for the request it signs; it is returned in a
/// zeroising wrapper and must not be logged.
pub fn authorization(
    workspace_id: &str,
    key: &SharedKey,
    content_length: usize,
    content_type: &str,
    x_ms_date: &str,
) -> Zeroizing<String> {
    let sig = signature(key, content_length, content_type, x_ms_date);
    Zeroizing::new(format!("SharedKey {workspace_id}:{sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_redacted() {
        let key = SharedKey::from_base64("AAECAw==").unwrap();
        assert_eq!(format!("{key:?}"), "SharedKey(<redacted>)");
        assert_eq!(format!("{key}"), "<redacted>");
    }

    #[test]
    fn bad_keys_are_refused_without_echo() {
        let err = SharedKey::from_base64("not base64 !!").unwrap_err();
        assert!(err.is_config());
        assert!(!err.to_string().contains("!!"));
        assert!(SharedKey::from_base64("   ").is_err());
    }
}
