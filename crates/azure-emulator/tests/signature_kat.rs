//! Known-answer tests for every vector in `signature.json`, against the emulator's verifier:
//! first the pure functions, then over loopback HTTP with the emulator's clock set to the
//! vector's `x-ms-date`.

mod common;

use std::time::Duration;

use mcas_azure_emulator::signature::{self, parse_authorization};
use mcas_azure_emulator::{EmulatorConfig, Limits, Workspace};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    workspace_id: String,
    shared_key_base64: String,
    method: String,
    content_length: u64,
    content_type: String,
    x_ms_date: String,
    resource: String,
    string_to_sign: String,
    signature: String,
    authorization: String,
    body: Option<String>,
    must_not_equal: Option<String>,
}

fn vectors() -> Vec<Vector> {
    let v: Vec<Vector> =
        serde_json::from_str(include_str!("data/signature.json")).expect("vectors parse");
    assert_eq!(v.len(), 7, "every vector of the spec is present");
    v
}

#[test]
fn string_to_sign_signature_and_header_match_every_vector() {
    for v in vectors() {
        assert_eq!(v.method, "POST", "{}", v.name);
        assert_eq!(v.resource, signature::RESOURCE, "{}", v.name);
        let sts = signature::string_to_sign(v.content_length, &v.content_type, &v.x_ms_date);
        assert_eq!(sts, v.string_to_sign, "{}", v.name);
        assert!(!sts.ends_with('\n'), "{}: no trailing newline", v.name);
        let sig = signature::sign(&v.shared_key_base64, &sts).expect("key decodes");
        assert_eq!(sig, v.signature, "{}", v.name);
        assert!(
            signature::verify([v.shared_key_base64.as_str()], &sts, &v.signature),
            "{}",
            v.name
        );
        let h = parse_authorization(&v.authorization).expect("header parses");
        assert_eq!(h.workspace_id, v.workspace_id, "{}", v.name);
        assert_eq!(h.signature, v.signature, "{}", v.name);
        if let Some(body) = &v.body {
            assert_eq!(
                body.len() as u64,
                v.content_length,
                "{}: Content-Length is the UTF-8 byte length",
                v.name
            );
        }
    }
}

#[test]
fn v3_character_count_signature_is_rejected() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name.starts_with("v3"))
        .expect("v3");
    let wrong = v.must_not_equal.as_deref().expect("v3 has must_not_equal");
    let body = v.body.as_deref().expect("body");
    let chars = body.chars().count() as u64;
    assert_eq!(chars, 23);
    // The character count signs to the "wrong" value, which the verifier refuses for the real length.
    let sts_chars = signature::string_to_sign(chars, &v.content_type, &v.x_ms_date);
    assert_eq!(
        signature::sign(&v.shared_key_base64, &sts_chars).expect("sign"),
        wrong
    );
    let sts = signature::string_to_sign(v.content_length, &v.content_type, &v.x_ms_date);
    assert!(!signature::verify(
        [v.shared_key_base64.as_str()],
        &sts,
        wrong
    ));
}

#[test]
fn v4_content_type_is_part_of_the_mac() {
    let all = vectors();
    let v2 = all.iter().find(|v| v.name.starts_with("v2")).expect("v2");
    let v4 = all.iter().find(|v| v.name.starts_with("v4")).expect("v4");
    assert_ne!(v2.signature, v4.signature);
    let sts_plain = signature::string_to_sign(v4.content_length, "application/json", &v4.x_ms_date);
    assert!(!signature::verify(
        [v4.shared_key_base64.as_str()],
        &sts_plain,
        &v4.signature
    ));
}

/// A body of exactly `len` bytes: a JSON array with one record padded to size.
fn padded_body(len: usize) -> Vec<u8> {
    let overhead = r#"[{"Message":""}]"#.len();
    let mut s = String::with_capacity(len);
    s.push_str(r#"[{"Message":""#);
    s.extend(std::iter::repeat_n('x', len - overhead));
    s.push_str(r#""}]"#);
    assert_eq!(s.len(), len);
    s.into_bytes()
}

#[tokio::test]
async fn every_vector_is_accepted_over_http_and_tampering_is_refused() {
    let mut config = EmulatorConfig::default();
    config.workspaces.clear();
    for v in vectors() {
        if !config.workspaces.iter().any(|w| w.id == v.workspace_id) {
            config.workspaces.push(Workspace::new(
                v.workspace_id.clone(),
                v.shared_key_base64.clone(),
            ));
        } else {
            let ws = config
                .workspaces
                .iter_mut()
                .find(|w| w.id == v.workspace_id)
                .expect("ws");
            ws.shared_keys.push(mcas_azure_emulator::Secret::new(
                v.shared_key_base64.clone(),
            ));
        }
    }
    config.limits = Limits::default();
    let emu = common::start(config).await;
    let client = common::http();
    for v in vectors() {
        let date = httpdate::parse_http_date(&v.x_ms_date).expect("vector date parses");
        emu.set_clock(date + Duration::from_secs(30));
        let body = match &v.body {
            Some(b) => b.clone().into_bytes(),
            None => padded_body(usize::try_from(v.content_length).expect("fits")),
        };
        let send = |auth: String, body: Vec<u8>| {
            client
                .post(format!(
                    "{}/api/logs?api-version=2016-04-01",
                    emu.base_url()
                ))
                .header("Content-Type", v.content_type.clone())
                .header("Log-Type", "Kat")
                .header("x-ms-date", v.x_ms_date.clone())
                .header("Authorization", auth)
                .body(body)
                .send()
        };
        let a = common::answer(
            send(v.authorization.clone(), body.clone())
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(a.status, 200, "{}: {}", v.name, a.body);
        if let Some(wrong) = &v.must_not_equal {
            let a = common::answer(
                send(
                    format!("SharedKey {}:{wrong}", v.workspace_id),
                    body.clone(),
                )
                .await
                .expect("send"),
            )
            .await;
            assert_eq!(a.status, 403, "{}", v.name);
            assert_eq!(a.body["Error"], "InvalidAuthorization");
        }
        // One byte less: the signed Content-Length no longer matches.
        let mut shorter = body.clone();
        shorter.remove(1);
        let a = common::answer(send(v.authorization.clone(), shorter).await.expect("send")).await;
        assert_eq!(a.status, 403, "{}", v.name);
        assert_eq!(a.body["Error"], "InvalidAuthorization", "{}", v.name);
        // One byte more: a signature mismatch, except above the 30 MiB post limit (V7 is
        // exactly the limit), which is refused first, with the documented 404.
        let mut longer = body;
        longer.insert(1, b' ');
        let a = common::answer(send(v.authorization.clone(), longer).await.expect("send")).await;
        if v.content_length == 30 * 1024 * 1024 {
            assert_eq!(a.status, 404, "{}", v.name);
        } else {
            assert_eq!(a.status, 403, "{}", v.name);
            assert_eq!(a.body["Error"], "InvalidAuthorization", "{}", v.name);
        }
    }
    assert!(emu.count("Kat_CL") >= 7);
    emu.shutdown().await;
}
