//! Properties of signing and verification: a signed delivery verifies, and any single-byte
//! change in the body, the id or the timestamp makes it fail.

#![allow(missing_docs)]

use mcas_webhook::sign::{self, Secret, StandardHeaders};
use proptest::prelude::*;

fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> StandardHeaders<'a> {
    StandardHeaders {
        id,
        timestamp: ts,
        signature: sig,
    }
}

/// A tolerance wide enough that only the signature decides.
const WIDE: u64 = u64::MAX / 2;
const EMPTY: &[u8] = b"{ }";

proptest! {
    #[test]
    fn sign_then_verify(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        id in "[!-~]{1,64}",
        ts in 0u64..4_000_000_000,
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let k = Secret::from_bytes(&key).unwrap();
        let sig = sign::standard_signature_header(std::slice::from_ref(&k), &id, ts, &body);
        let ts_text = ts.to_string();
        prop_assert_eq!(
            sign::verify_standard(std::slice::from_ref(&k), &headers(&id, &ts_text, &sig), &body, ts, 300),
            Ok(ts)
        );
        let gh = sign::github_signature(&k, &body);
        prop_assert!(sign::verify_github(std::slice::from_ref(&k), &gh, &body).is_ok());
        // Through the whsec_ text form and back.
        let again = Secret::parse_standard(&k.to_standard_string()).unwrap();
        prop_assert_eq!(sign::standard_signature(&again, &id, ts, &body), sig);
    }

    #[test]
    fn one_changed_body_byte_fails(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        body in proptest::collection::vec(any::<u8>(), 1..512),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let k = Secret::from_bytes(&key).unwrap();
        let sig = sign::standard_signature(&k, "msg_1", 1000, &body);
        let gh = sign::github_signature(&k, &body);
        let mut changed = body.clone();
        let i = at.index(changed.len());
        changed[i] ^= flip;
        prop_assert!(sign::verify_standard(std::slice::from_ref(&k), &headers("msg_1", "1000", &sig), &changed, 1000, WIDE).is_err());
        prop_assert!(sign::verify_github(std::slice::from_ref(&k), &gh, &changed).is_err());
    }

    #[test]
    fn one_changed_id_byte_fails(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        id in "[!-~]{1,64}",
        at in any::<prop::sample::Index>(),
        replacement in 0x21u8..=0x7e,
    ) {
        let k = Secret::from_bytes(&key).unwrap();
        let sig = sign::standard_signature(&k, &id, 1000, EMPTY);
        let mut bytes = id.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(sign::verify_standard(std::slice::from_ref(&k), &headers(&changed, "1000", &sig), EMPTY, 1000, WIDE).is_err());
    }

    #[test]
    fn one_changed_timestamp_byte_fails(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        ts in 1_000_000_000u64..4_000_000_000,
        at in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let k = Secret::from_bytes(&key).unwrap();
        let sig = sign::standard_signature(&k, "msg_1", ts, EMPTY);
        let mut bytes = ts.to_string().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        // A byte that is not UTF-8 cannot be a header string; it fails before verification.
        if let Ok(changed) = String::from_utf8(bytes) {
            prop_assert!(sign::verify_standard(std::slice::from_ref(&k), &headers("msg_1", &changed, &sig), EMPTY, ts, WIDE).is_err());
        }
    }

    #[test]
    fn arbitrary_headers_never_panic(
        id in ".{0,80}",
        ts in ".{0,30}",
        sig in ".{0,300}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let k = Secret::from_bytes(b"k").unwrap();
        let _ = sign::verify_standard(std::slice::from_ref(&k), &headers(&id, &ts, &sig), &body, 1000, 300);
        let _ = sign::verify_github(std::slice::from_ref(&k), &sig, &body);
    }
}
