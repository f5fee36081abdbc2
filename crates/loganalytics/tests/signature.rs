//! Known-answer tests of the Data Collector `SharedKey` signature, from the
//! spec's vectors (tests/data/signature.json).

use mcas_loganalytics::{SharedKey, authorization, signature, string_to_sign};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = include_str!("data/signature.json");
    serde_json::from_str(text).expect("vectors parse")
}

#[test]
fn every_vector_matches() {
    let vectors = vectors();
    assert!(vectors.len() >= 7);
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let key = SharedKey::from_base64(v["shared_key_base64"].as_str().unwrap()).unwrap();
        let len = v["content_length"].as_u64().unwrap() as usize;
        let ct = v["content_type"].as_str().unwrap();
        let date = v["x_ms_date"].as_str().unwrap();
        assert_eq!(v["method"], "POST", "{name}");
        assert_eq!(v["resource"], "/api/logs", "{name}");
        assert_eq!(
            string_to_sign(len, ct, date),
            v["string_to_sign"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            signature(&key, len, ct, date),
            v["signature"].as_str().unwrap(),
            "{name}"
        );
        let ws = v["workspace_id"].as_str().unwrap();
        assert_eq!(
            authorization(ws, &key, len, ct, date).as_str(),
            v["authorization"].as_str().unwrap(),
            "{name}"
        );
        // Where a body is given, its UTF-8 byte length is the signed length.
        if let Some(body) = v["body"].as_str() {
            assert_eq!(body.len(), len, "{name}: Content-Length is the byte length");
        }
    }
}

#[test]
fn character_count_is_not_the_length() {
    let v = vectors()
        .into_iter()
        .find(|v| v["name"] == "v3_utf8_body_27_bytes")
        .unwrap();
    let key = SharedKey::from_base64(v["shared_key_base64"].as_str().unwrap()).unwrap();
    let body = v["body"].as_str().unwrap();
    let date = v["x_ms_date"].as_str().unwrap();
    assert_eq!(body.chars().count(), 23);
    let right = signature(&key, body.len(), "application/json", date);
    let wrong = signature(&key, body.chars().count(), "application/json", date);
    assert_eq!(right, v["signature"].as_str().unwrap());
    assert_eq!(wrong, v["must_not_equal"].as_str().unwrap());
    assert_ne!(right, wrong);
}

#[test]
fn content_type_is_part_of_the_mac() {
    let key = SharedKey::from_base64(vectors()[1]["shared_key_base64"].as_str().unwrap()).unwrap();
    let date = "Mon, 04 Apr 2016 08:00:00 GMT";
    assert_ne!(
        signature(&key, 46, "application/json", date),
        signature(&key, 46, "application/json; charset=utf-8", date)
    );
}
