//! The published test vectors (tests/data/vectors.json): the Standard Webhooks project's and
//! GitHub's documented example, through the signer and the verifier.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use mcas_webhook::sign::{self, Secret, StandardHeaders, VerifyErrorKind};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/vectors.json")).unwrap()
}

#[test]
fn standard_webhooks_vector() {
    let v = &vectors()["standard_webhooks"];
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let ts = v["timestamp"].as_u64().unwrap();
    let tol = v["tolerance_seconds"].as_u64().unwrap();
    let body = s("payload");
    for secret in [s("secret"), s("secret_without_prefix")] {
        let key = Secret::parse_standard(&secret).unwrap();
        assert_eq!(
            sign::standard_signature(&key, &s("msg_id"), ts, body.as_bytes()),
            s("signature")
        );
        let id = s("msg_id");
        let ts_text = ts.to_string();
        let good = s("signature");
        let ok = StandardHeaders {
            id: &id,
            timestamp: &ts_text,
            signature: &good,
        };
        let keys = [key];
        assert_eq!(
            sign::verify_standard(&keys, &ok, body.as_bytes(), ts, tol),
            Ok(ts)
        );
        let bad_sig = s("invalid_signature");
        let bad = StandardHeaders {
            signature: &bad_sig,
            ..ok
        };
        assert_eq!(
            sign::verify_standard(&keys, &bad, body.as_bytes(), ts, tol)
                .unwrap_err()
                .kind,
            VerifyErrorKind::NoMatch
        );
        let decoys: Vec<&str> = v["decoy_signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let only_decoys = decoys.join(" ");
        let with_good = format!("{only_decoys} {good}");
        let h = StandardHeaders {
            signature: &with_good,
            ..ok
        };
        assert!(sign::verify_standard(&keys, &h, body.as_bytes(), ts, tol).is_ok());
        let h = StandardHeaders {
            signature: &only_decoys,
            ..ok
        };
        assert!(sign::verify_standard(&keys, &h, body.as_bytes(), ts, tol).is_err());
        // One second past the tolerance either way.
        assert_eq!(
            sign::verify_standard(&keys, &ok, body.as_bytes(), ts + tol + 1, tol)
                .unwrap_err()
                .kind,
            VerifyErrorKind::TooOld
        );
        assert_eq!(
            sign::verify_standard(&keys, &ok, body.as_bytes(), ts - tol - 1, tol)
                .unwrap_err()
                .kind,
            VerifyErrorKind::TooNew
        );
    }
}

#[test]
fn github_documented_example() {
    let v = &vectors()["github"];
    let key = Secret::from_bytes(v["secret"].as_str().unwrap().as_bytes()).unwrap();
    let body = v["payload"].as_str().unwrap().as_bytes();
    let sig = v["signature"].as_str().unwrap();
    assert_eq!(sign::github_signature(&key, body), sig);
    assert!(sign::verify_github(std::slice::from_ref(&key), sig, body).is_ok());
    let upper = format!("sha256={}", sig[7..].to_uppercase());
    assert!(sign::verify_github(std::slice::from_ref(&key), &upper, body).is_ok());
    assert!(sign::verify_github(&[key], sig, b"Hello, World?").is_err());
}
