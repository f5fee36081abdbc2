//! `mcas_webhook` verification on arbitrary headers and bodies: never panics. The input is
//! `id \n timestamp \n signature \n body`; the first byte also picks a key text to parse.
//! Whatever the verifier says of the input, a delivery freshly signed over the same id and
//! body must verify, and fail once its body changes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcas_webhook::sign::{self, Secret, StandardHeaders};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let id = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("");
    let ts = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("");
    let sig = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("");
    let body = parts.next().unwrap_or_default();

    // Key texts from the input itself: never panics, errors point inside the text.
    for text in [id, ts, sig] {
        if let Err(e) = Secret::parse_standard(text) {
            assert!(e.offset <= text.len());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match Secret::parse_standard_file(text) {
            Ok(keys) => assert!(!keys.is_empty()),
            Err(e) => assert!(e.offset <= text.len()),
        }
    }

    let Ok(key) = Secret::from_bytes(b"fuzzing key, 24 bytes ok") else {
        return;
    };
    let keys = std::slice::from_ref(&key);
    let now = 1_700_000_000;
    let headers = StandardHeaders {
        id,
        timestamp: ts,
        signature: sig,
    };
    let _ = sign::verify_standard(keys, &headers, body, now, sign::DEFAULT_TOLERANCE_SECS);
    let _ = sign::verify_standard(keys, &headers, body, now, u64::MAX);
    let _ = sign::verify_github(keys, sig, body);
    let picked = StandardHeaders::from_pairs([
        ("Webhook-Id", id),
        ("webhook-timestamp", ts),
        ("WEBHOOK-SIGNATURE", sig),
    ]);
    assert_eq!(picked, headers);

    if !id.is_empty() && id.len() <= sign::MAX_ID_BYTES {
        let good = sign::standard_signature_header(keys, id, now, body);
        let ts_text = now.to_string();
        let fresh = StandardHeaders {
            id,
            timestamp: &ts_text,
            signature: &good,
        };
        assert_eq!(sign::verify_standard(keys, &fresh, body, now, 300), Ok(now));
        let mut changed = body.to_vec();
        changed.push(b'x');
        assert!(sign::verify_standard(keys, &fresh, &changed, now, 300).is_err());
    }
    let gh = sign::github_signature(&key, body);
    assert!(sign::verify_github(keys, &gh, body).is_ok());
});
