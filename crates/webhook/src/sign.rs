//! Signing and verification: pure functions over bytes, no I/O and no clock (the caller passes
//! the time).
//!
//! Two forms:
//!
//! - **Standard Webhooks**: `webhook-id`, `webhook-timestamp` (Unix seconds) and
//!   `webhook-signature` = `v1,` + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)),
//!   one space-separated `v1,…` entry per signing key (key rotation).
//! - **GitHub's form**: `X-Hub-Signature-256: sha256=` + hex(HMAC-SHA256(key, body)). It signs
//!   no timestamp, so a receiver cannot tell a replay from a retry by the signature alone.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a Standard Webhooks secret (`whsec_` + base64 of the key bytes).
pub const SECRET_PREFIX: &str = "whsec_";
/// The largest key accepted, in bytes (the Standard Webhooks convention is 24–64).
pub const MAX_SECRET_BYTES: usize = 1024;
/// The longest `webhook-id` signed or verified, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The longest signature header a verifier reads, in bytes (longer ones are refused whole).
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 8192;
/// The timestamp tolerance receivers use by default: 5 minutes either side of now.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Header carrying the message id (Standard Webhooks).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the attempt's Unix time in seconds (Standard Webhooks).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures (Standard Webhooks).
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Header carrying `sha256=<hex>` (GitHub's form).
pub const HEADER_GITHUB_SIGNATURE: &str = "x-hub-signature-256";
/// Header carrying the message id (GitHub's form).
pub const HEADER_GITHUB_DELIVERY: &str = "x-github-delivery";
/// Header carrying the event name (GitHub's form).
pub const HEADER_GITHUB_EVENT: &str = "x-github-event";

/// Base64 with the standard alphabet; padding optional on input, written on output.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signing key. Its bytes are wiped on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretErrorKind {
    /// No key bytes.
    Empty,
    /// More than [`MAX_SECRET_BYTES`] key bytes.
    TooLong,
    /// The text after `whsec_` (or the whole text) is not base64.
    NotBase64,
}

/// A refused secret: its kind and the byte offset in the text where it went wrong. It never
/// holds any of the secret's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad webhook secret at byte {offset}: {kind:?}")]
pub struct SecretError {
    /// What is wrong.
    pub kind: SecretErrorKind,
    /// Byte offset in the given text.
    pub offset: usize,
}

impl Secret {
    /// A key from raw bytes (GitHub's form uses the secret text's bytes as they are).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.is_empty() {
            return Err(SecretError {
                kind: SecretErrorKind::Empty,
                offset: 0,
            });
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError {
                kind: SecretErrorKind::TooLong,
                offset: MAX_SECRET_BYTES,
            });
        }
        Ok(Secret(Zeroizing::new(bytes.to_vec())))
    }

    /// A Standard Webhooks key: `whsec_` + base64 of the key bytes. The prefix is optional
    /// (plain base64 is accepted too, as the reference libraries accept it), padding is
    /// optional, and surrounding whitespace (a secret file's trailing newline) is ignored.
    pub fn parse_standard(text: &str) -> Result<Self, SecretError> {
        let lead = text.len() - text.trim_start().len();
        let trimmed = text.trim();
        let (skip, b64) = match trimmed.strip_prefix(SECRET_PREFIX) {
            Some(rest) => (lead + SECRET_PREFIX.len(), rest),
            None => (lead, trimmed),
        };
        let bytes = Zeroizing::new(B64.decode(b64).map_err(|e| {
            let at = match e {
                base64::DecodeError::InvalidByte(at, _)
                | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                _ => b64.len(),
            };
            SecretError {
                kind: SecretErrorKind::NotBase64,
                offset: skip + at,
            }
        })?);
        Secret::from_bytes(&bytes).map_err(|e| SecretError {
            offset: skip + e.offset.min(b64.len()),
            ..e
        })
    }

    /// The keys of a Standard Webhooks secret file: one `whsec_…` key per non-empty line, the
    /// newest first (two lines during a rotation; every key signs). An error's offset is
    /// counted from the start of the file.
    pub fn parse_standard_file(text: &str) -> Result<Vec<Secret>, SecretError> {
        let mut keys = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            if !line.trim().is_empty() {
                let key = Secret::parse_standard(line).map_err(|e| SecretError {
                    offset: start + e.offset,
                    ..e
                })?;
                keys.push(key);
            }
            start += line.len();
        }
        if keys.is_empty() {
            return Err(SecretError {
                kind: SecretErrorKind::Empty,
                offset: 0,
            });
        }
        Ok(keys)
    }

    /// The key of a GitHub-form secret file: its text, without the trailing line break.
    pub fn parse_github_file(text: &str) -> Result<Secret, SecretError> {
        Secret::from_bytes(text.trim_end_matches(['\n', '\r']).as_bytes())
    }

    /// The key as a Standard Webhooks secret string (`whsec_…`), wiped on drop.
    pub fn to_standard_string(&self) -> Zeroizing<String> {
        let mut s = String::from(SECRET_PREFIX);
        B64.encode_string(&self.0[..], &mut s);
        Zeroizing::new(s)
    }

    /// Key length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a constructed key (empty keys are refused); here for completeness.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        }
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // Hmac<Sha256>::new_from_slice accepts every key length (InvalidLength is only for
    // fixed-key MACs); this cannot run.
    panic!("HMAC-SHA256 refused a key")
}

fn standard_mac(secret: &Secret, id: &str, timestamp: u64, body: &[u8]) -> [u8; 32] {
    let mut mac = secret.mac();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// One Standard Webhooks signature entry: `v1,<base64>`.
pub fn standard_signature(secret: &Secret, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut out = String::from("v1,");
    B64.encode_string(standard_mac(secret, id, timestamp, body), &mut out);
    out
}

/// The `webhook-signature` header value: one `v1,…` entry per key, space-separated, in the
/// order given (during a rotation, give the new key and the old one).
pub fn standard_signature_header(
    secrets: &[Secret],
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    let mut out = String::with_capacity(secrets.len() * 48);
    for (i, s) in secrets.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&standard_signature(s, id, timestamp, body));
    }
    out
}

/// GitHub's `X-Hub-Signature-256` value: `sha256=<lowercase hex>`.
pub fn github_signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = secret.mac();
    mac.update(body);
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The three Standard Webhooks headers as received (missing ones are empty strings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StandardHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

impl<'a> StandardHeaders<'a> {
    /// Picks the three headers out of `(name, value)` pairs, names compared without case.
    /// The first occurrence of each wins.
    pub fn from_pairs<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut h = StandardHeaders::default();
        let (mut id, mut ts, mut sig) = (false, false, false);
        for (name, value) in pairs {
            if !id && name.eq_ignore_ascii_case(HEADER_ID) {
                h.id = value;
                id = true;
            } else if !ts && name.eq_ignore_ascii_case(HEADER_TIMESTAMP) {
                h.timestamp = value;
                ts = true;
            } else if !sig && name.eq_ignore_ascii_case(HEADER_SIGNATURE) {
                h.signature = value;
                sig = true;
            }
        }
        h
    }
}

/// Why a delivery failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyErrorKind {
    /// No `webhook-id` (or an empty one).
    MissingId,
    /// A `webhook-id` over [`MAX_ID_BYTES`].
    IdTooLong,
    /// No `webhook-timestamp`.
    MissingTimestamp,
    /// A timestamp that is not a decimal count of seconds.
    BadTimestamp,
    /// A timestamp older than the tolerance.
    TooOld,
    /// A timestamp further ahead than the tolerance.
    TooNew,
    /// No signature header (or an empty one).
    MissingSignature,
    /// A signature header over [`MAX_SIGNATURE_HEADER_BYTES`].
    SignatureTooLong,
    /// A GitHub signature not of the form `sha256=<64 hex digits>`.
    MalformedSignature,
    /// No signature matches any key.
    NoMatch,
}

/// A failed verification: its kind and the byte offset, in the header concerned, where it was
/// found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("webhook verification failed at byte {offset}: {kind:?}")]
pub struct VerifyError {
    /// What is wrong.
    pub kind: VerifyErrorKind,
    /// Byte offset in the header the kind names (0 where none applies).
    pub offset: usize,
}

fn fail(kind: VerifyErrorKind, offset: usize) -> VerifyError {
    VerifyError { kind, offset }
}

/// Equality that looks at every byte whatever the first difference (the lengths, 32 bytes
/// for HMAC-SHA256, are public).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Parses a `webhook-timestamp`: ASCII digits only, at most 20 of them.
pub fn parse_timestamp(text: &str) -> Result<u64, VerifyError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(fail(VerifyErrorKind::MissingTimestamp, 0));
    }
    let lead = text.len() - text.trim_start().len();
    if let Some(at) = t.bytes().position(|b| !b.is_ascii_digit()) {
        return Err(fail(VerifyErrorKind::BadTimestamp, lead + at));
    }
    t.parse::<u64>()
        .map_err(|_| fail(VerifyErrorKind::BadTimestamp, lead))
}

/// Verifies a Standard Webhooks delivery: the id, a timestamp within `tolerance_secs` of
/// `now_unix`, and at least one `v1,` entry of the signature header matching one of `secrets`
/// (entries of other versions, and malformed entries, are skipped). Returns the timestamp.
pub fn verify_standard(
    secrets: &[Secret],
    headers: &StandardHeaders<'_>,
    body: &[u8],
    now_unix: u64,
    tolerance_secs: u64,
) -> Result<u64, VerifyError> {
    if headers.id.is_empty() {
        return Err(fail(VerifyErrorKind::MissingId, 0));
    }
    if headers.id.len() > MAX_ID_BYTES {
        return Err(fail(VerifyErrorKind::IdTooLong, MAX_ID_BYTES));
    }
    let ts = parse_timestamp(headers.timestamp)?;
    if ts < now_unix.saturating_sub(tolerance_secs) {
        return Err(fail(VerifyErrorKind::TooOld, 0));
    }
    if ts > now_unix.saturating_add(tolerance_secs) {
        return Err(fail(VerifyErrorKind::TooNew, 0));
    }
    let sig = headers.signature;
    if sig.trim().is_empty() {
        return Err(fail(VerifyErrorKind::MissingSignature, 0));
    }
    if sig.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(fail(
            VerifyErrorKind::SignatureTooLong,
            MAX_SIGNATURE_HEADER_BYTES,
        ));
    }
    let expected: Vec<[u8; 32]> = secrets
        .iter()
        .map(|s| standard_mac(s, headers.id, ts, body))
        .collect();
    let mut matched = false;
    for entry in sig.split(' ') {
        let Some(b64) = entry.strip_prefix("v1,") else {
            continue;
        };
        let Ok(candidate) = B64.decode(b64) else {
            continue;
        };
        for e in &expected {
            // No early exit: every entry is compared against every key.
            matched |= ct_eq(e, &candidate);
        }
    }
    if matched {
        Ok(ts)
    } else {
        Err(fail(VerifyErrorKind::NoMatch, 0))
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Verifies GitHub's form: `header` is the `X-Hub-Signature-256` value, matched against
/// each of `secrets`.
pub fn verify_github(secrets: &[Secret], header: &str, body: &[u8]) -> Result<(), VerifyError> {
    if header.is_empty() {
        return Err(fail(VerifyErrorKind::MissingSignature, 0));
    }
    let Some(hex) = header.strip_prefix("sha256=") else {
        return Err(fail(VerifyErrorKind::MalformedSignature, 0));
    };
    if hex.len() != 64 {
        return Err(fail(
            VerifyErrorKind::MalformedSignature,
            7 + hex.len().min(64),
        ));
    }
    let mut candidate = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(h), Some(l)) => candidate[i] = (h << 4) | l,
            _ => return Err(fail(VerifyErrorKind::MalformedSignature, 7 + 2 * i)),
        }
    }
    let mut matched = false;
    for s in secrets {
        let mut mac = s.mac();
        mac.update(body);
        let digest: [u8; 32] = mac.finalize().into_bytes().into();
        matched |= ct_eq(&digest, &candidate);
    }
    if matched {
        Ok(())
    } else {
        Err(fail(VerifyErrorKind::NoMatch, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks project's published vector (its libraries' tests).
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TS: u64 = 1_614_265_330;
    const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_vector() {
        let s = Secret::parse_standard(SW_SECRET).unwrap();
        assert_eq!(s.len(), 24);
        assert_eq!(standard_signature(&s, SW_ID, SW_TS, SW_BODY), SW_SIG);
        // Without the prefix, and with a trailing newline as a secret file has it.
        let bare = Secret::parse_standard("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        assert_eq!(standard_signature(&bare, SW_ID, SW_TS, SW_BODY), SW_SIG);
        assert_eq!(&*s.to_standard_string(), SW_SECRET);
    }

    #[test]
    fn standard_vector_verifies_and_the_published_bad_one_does_not() {
        let s = [Secret::parse_standard(SW_SECRET).unwrap()];
        let h = StandardHeaders {
            id: SW_ID,
            timestamp: "1614265330",
            signature: SW_SIG,
        };
        assert_eq!(verify_standard(&s, &h, SW_BODY, SW_TS, 300), Ok(SW_TS));
        // The reference tests' invalid signature: last base64 character changed.
        let bad = StandardHeaders {
            signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            ..h
        };
        assert_eq!(
            verify_standard(&s, &bad, SW_BODY, SW_TS, 300)
                .unwrap_err()
                .kind,
            VerifyErrorKind::NoMatch
        );
        // Several entries, other versions among them (the reference multi-signature case).
        let multi = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SW_SIG} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        let h2 = StandardHeaders {
            signature: &multi,
            ..h
        };
        assert_eq!(verify_standard(&s, &h2, SW_BODY, SW_TS, 300), Ok(SW_TS));
    }

    #[test]
    fn tolerance_is_five_minutes_either_side() {
        let s = [Secret::parse_standard(SW_SECRET).unwrap()];
        let h = StandardHeaders {
            id: SW_ID,
            timestamp: "1614265330",
            signature: SW_SIG,
        };
        assert!(verify_standard(&s, &h, SW_BODY, SW_TS + 300, 300).is_ok());
        assert!(verify_standard(&s, &h, SW_BODY, SW_TS - 300, 300).is_ok());
        assert_eq!(
            verify_standard(&s, &h, SW_BODY, SW_TS + 301, 300)
                .unwrap_err()
                .kind,
            VerifyErrorKind::TooOld
        );
        assert_eq!(
            verify_standard(&s, &h, SW_BODY, SW_TS - 301, 300)
                .unwrap_err()
                .kind,
            VerifyErrorKind::TooNew
        );
    }

    #[test]
    fn rotation_signs_with_every_key_and_either_verifies() {
        let old = Secret::parse_standard(SW_SECRET).unwrap();
        let new = Secret::from_bytes(&[7u8; 32]).unwrap();
        let header = standard_signature_header(&[new.clone(), old.clone()], "m1", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        let h = StandardHeaders {
            id: "m1",
            timestamp: "10",
            signature: &header,
        };
        assert!(verify_standard(&[old], &h, b"{}", 10, 300).is_ok());
        assert!(verify_standard(&[new], &h, b"{}", 10, 300).is_ok());
        let other = Secret::from_bytes(&[8u8; 32]).unwrap();
        assert!(verify_standard(&[other], &h, b"{}", 10, 300).is_err());
    }

    #[test]
    fn github_documented_example() {
        let s = Secret::from_bytes(b"It's a Secret to Everybody").unwrap();
        let sig = github_signature(&s, b"Hello, World!");
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_github(std::slice::from_ref(&s), &sig, b"Hello, World!").is_ok());
        assert_eq!(
            verify_github(std::slice::from_ref(&s), &sig, b"Hello, World?")
                .unwrap_err()
                .kind,
            VerifyErrorKind::NoMatch
        );
        assert_eq!(
            verify_github(&[s], "sha256=75zz", b"Hello, World!")
                .unwrap_err()
                .kind,
            VerifyErrorKind::MalformedSignature
        );
    }

    #[test]
    fn header_errors_have_kinds_and_positions() {
        let s = [Secret::parse_standard(SW_SECRET).unwrap()];
        let h = StandardHeaders {
            id: SW_ID,
            timestamp: "16142x5330",
            signature: SW_SIG,
        };
        assert_eq!(
            verify_standard(&s, &h, SW_BODY, SW_TS, 300),
            Err(VerifyError {
                kind: VerifyErrorKind::BadTimestamp,
                offset: 5
            })
        );
        let none = StandardHeaders::default();
        assert_eq!(
            verify_standard(&s, &none, SW_BODY, SW_TS, 300)
                .unwrap_err()
                .kind,
            VerifyErrorKind::MissingId
        );
        let picked = StandardHeaders::from_pairs([
            ("Webhook-Id", "a"),
            ("WEBHOOK-TIMESTAMP", "1"),
            ("webhook-signature", "v1,x"),
            ("webhook-id", "b"),
        ]);
        assert_eq!(
            picked,
            StandardHeaders {
                id: "a",
                timestamp: "1",
                signature: "v1,x"
            }
        );
    }

    #[test]
    fn secret_files() {
        let keys = Secret::parse_standard_file(&format!(
            "{SW_SECRET}\n\nwhsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
        ))
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(standard_signature(&keys[0], SW_ID, SW_TS, SW_BODY), SW_SIG);
        let e = Secret::parse_standard_file(&format!("{SW_SECRET}\nwhsec_ab!d\n")).unwrap_err();
        assert_eq!(e.kind, SecretErrorKind::NotBase64);
        assert_eq!(e.offset, SW_SECRET.len() + 1 + 8);
        assert_eq!(
            Secret::parse_standard_file("\n \n").unwrap_err().kind,
            SecretErrorKind::Empty
        );
        let gh = Secret::parse_github_file("It's a Secret to Everybody\r\n").unwrap();
        assert_eq!(
            github_signature(&gh, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn secrets_never_show() {
        let s = Secret::parse_standard(SW_SECRET).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert_eq!(shown, "Secret(<redacted>)");
        let e = Secret::parse_standard("whsec_abc$def").unwrap_err();
        assert_eq!(e.kind, SecretErrorKind::NotBase64);
        assert_eq!(e.offset, 9);
        assert!(!e.to_string().contains("abc"));
        assert_eq!(
            Secret::parse_standard("whsec_").unwrap_err().kind,
            SecretErrorKind::Empty
        );
        assert_eq!(
            Secret::from_bytes(&[0; MAX_SECRET_BYTES + 1])
                .unwrap_err()
                .kind,
            SecretErrorKind::TooLong
        );
    }
}
