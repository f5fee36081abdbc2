//! Helpers shared by the loopback tests: start an emulator, build requests with plain reqwest.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcas_azure_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_DCR_ID, DEFAULT_TENANT_ID, Emulator,
    EmulatorConfig, EmulatorHandle,
};
use serde_json::Value;

pub const KEY_A: &str = include_str!("../data/test-rsa-a.key.pem");
pub const KEY_B: &str = include_str!("../data/test-rsa-b.key.pem");
pub const PUB_A: &str = include_str!("../data/test-rsa-a.pub.pem");

pub async fn start(config: EmulatorConfig) -> EmulatorHandle {
    Emulator::start(config).await.expect("emulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .expect("client")
}

/// POSTs a form to the token endpoint; returns status and JSON body.
pub async fn token_request(
    emu: &EmulatorHandle,
    tenant: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let url = format!("{}/{tenant}/oauth2/v2.0/token", emu.base_url());
    let resp = http()
        .post(url)
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A token for the default client and the monitor scope (double-slash form, as the SDKs send).
pub async fn token(emu: &EmulatorHandle) -> String {
    let (status, body) = token_request(
        emu,
        DEFAULT_TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("scope", "https://monitor.azure.com//.default"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Posts `body` (gzip'd) to the default DCR's `stream` with `token`.
pub async fn ingest(emu: &EmulatorHandle, token: &str, stream: &str, body: &[u8]) -> Answer {
    let resp = http()
        .post(emu.ingestion_url(DEFAULT_DCR_ID, stream))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(body))
        .send()
        .await
        .expect("ingest request");
    answer(resp).await
}

/// The Azure Core error code of an answer, checked against `x-ms-error-code`.
pub fn azure_code(a: &Answer) -> String {
    let code = a.body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        a.headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok()),
        Some(code.as_str()),
        "x-ms-error-code header matches the body"
    );
    code
}

/// A self-signed certificate (PEM) over `key_pem`, made with rcgen.
pub fn certificate(key_pem: &str) -> (String, Vec<u8>) {
    let kp = rcgen::KeyPair::from_pem_and_sign_algo(key_pem, &rcgen::PKCS_RSA_SHA256).expect("key");
    let params =
        rcgen::CertificateParams::new(vec!["emulator-test.invalid".to_owned()]).expect("params");
    let cert = params.self_signed(&kp).expect("cert");
    (cert.pem(), cert.der().to_vec())
}

pub fn x5t_sha1(der: &[u8]) -> String {
    use sha1::Digest as _;
    URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der))
}

pub fn x5t_sha256(der: &[u8]) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Signs `claims` with `key_pem`.
pub fn sign_jwt(header: jsonwebtoken::Header, claims: &Value, key_pem: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("rsa key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}
