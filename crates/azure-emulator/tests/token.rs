//! Entra ID token endpoint and IMDS over loopback HTTP: every documented error path, the three
//! credential kinds, and token lifetime / expiry.

mod common;

use std::time::Duration;

use common::{KEY_A, KEY_B, PUB_A, now, sign_jwt, token_request};
use jsonwebtoken::{Algorithm, Header};
use mcas_azure_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CSL_STREAM,
    DEFAULT_MANAGED_IDENTITY_CLIENT_ID, DEFAULT_TENANT_ID, EmulatorConfig, FederatedCredential,
};
use serde_json::{Value, json};

const SCOPE: &str = "https://monitor.azure.com//.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CERT_CLIENT: &str = "11111111-0000-4000-8000-00000000ce57";
const WI_CLIENT: &str = "22222222-0000-4000-8000-0000000000f1";
const WI_ISSUER: &str = "https://oidc.cluster.invalid/issuer";
const WI_SUBJECT: &str = "system:serviceaccount:logging:mcas-forward";

fn assert_entra(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"][0], code, "{body}");
    let desc = body["error_description"].as_str().unwrap_or_default();
    assert!(desc.starts_with(&format!("AADSTS{code}:")), "{desc}");
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
}

fn secret_form<'a>(secret: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn client_secret_flow_and_its_errors() {
    let emu = common::start(EmulatorConfig::default()).await;
    let t = DEFAULT_TENANT_ID;

    let (s, b) = token_request(&emu, t, &secret_form(DEFAULT_CLIENT_SECRET, SCOPE)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 3599);
    assert_eq!(b["ext_expires_in"], 3599);
    assert!(
        b["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    // Single-slash scope works too.
    let (s, _) = token_request(
        &emu,
        t,
        &secret_form(DEFAULT_CLIENT_SECRET, "https://monitor.azure.com/.default"),
    )
    .await;
    assert_eq!(s, 200);

    let (s, b) = token_request(&emu, t, &secret_form("wrong", SCOPE)).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 7000215);

    let (s, b) = token_request(
        &emu,
        "00000000-dead-4000-8000-000000000000",
        &secret_form(DEFAULT_CLIENT_SECRET, SCOPE),
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_request", 90002);

    let (s, b) = token_request(
        &emu,
        t,
        &secret_form(
            DEFAULT_CLIENT_SECRET,
            "https://monitor.azure.com/user_impersonation",
        ),
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_scope", 1002012);

    let (s, b) = token_request(
        &emu,
        t,
        &secret_form(DEFAULT_CLIENT_SECRET, "https://vault.azure.net/.default"),
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_scope", 500011);

    let (s, b) = token_request(
        &emu,
        t,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_request", 900144);

    let (s, b) = token_request(
        &emu,
        t,
        &[
            ("grant_type", "password"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "unsupported_grant_type", 70003);

    let (s, b) = token_request(
        &emu,
        t,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "x"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_request", 900144);
    assert!(
        b["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("'client_id'"))
    );

    let (s, b) = token_request(
        &emu,
        t,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "99999999-0000-4000-8000-000000000000"),
            ("client_secret", "x"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "unauthorized_client", 700016);

    let (s, b) = token_request(
        &emu,
        t,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_request", 900144);
    assert!(
        b["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("'scope'"))
    );

    let (s, b) = token_request(
        &emu,
        t,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 7000218);

    // A JSON body instead of a form is a body without parameters.
    let resp = common::http()
        .post(emu.token_url())
        .header("Content-Type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .expect("send");
    let a = common::answer(resp).await;
    assert_eq!(a.status, 400);
    assert_entra(&a.body, "invalid_request", 900144);

    // The request log recorded every answer with its error code.
    let log = emu.requests();
    assert!(
        log.iter()
            .any(|r| r.error_code.as_deref() == Some("invalid_client") && r.status == Some(401))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn token_lifetime_is_configurable_and_expiry_is_enforced_by_ingestion() {
    let mut config = EmulatorConfig::default();
    config.token_lifetime = Duration::from_secs(120);
    let emu = common::start(config).await;
    let (s, b) = token_request(
        &emu,
        DEFAULT_TENANT_ID,
        &secret_form(DEFAULT_CLIENT_SECRET, SCOPE),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["expires_in"], 120);
    let tok = b["access_token"].as_str().expect("token").to_owned();
    let body = br#"[{"DeviceVendor":"a"}]"#;
    assert_eq!(
        common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, body)
            .await
            .status,
        204
    );
    emu.advance_clock(Duration::from_secs(119));
    assert_eq!(
        common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, body)
            .await
            .status,
        204
    );
    emu.advance_clock(Duration::from_secs(2));
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, body).await;
    assert_eq!(a.status, 401);
    assert_eq!(common::azure_code(&a), "ExpiredAuthenticationToken");
    assert!(a.headers.contains_key("www-authenticate"));
    // A fresh token works again: what a refreshing client does.
    let fresh = common::token(&emu).await;
    assert_eq!(
        common::ingest(&emu, &fresh, DEFAULT_CSL_STREAM, body)
            .await
            .status,
        204
    );
    assert_eq!(emu.count("CommonSecurityLog"), 3);
    emu.shutdown().await;
}

struct Cert {
    pem: String,
    der: Vec<u8>,
}

fn cert_config() -> (EmulatorConfig, Cert) {
    let (pem, der) = common::certificate(KEY_A);
    let mut config = EmulatorConfig::default();
    config.add_certificate(CERT_CLIENT, pem.clone());
    (config, Cert { pem, der })
}

fn cert_claims(aud: &str, nbf: u64, exp: u64) -> Value {
    json!({
        "aud": aud,
        "iss": CERT_CLIENT,
        "sub": CERT_CLIENT,
        "jti": "6a0c2a4c-0000-4000-8000-000000000001",
        "nbf": nbf,
        "exp": exp,
        "iat": nbf,
    })
}

fn rs256_x5t(der: &[u8]) -> Header {
    let mut h = Header::new(Algorithm::RS256);
    h.x5t = Some(common::x5t_sha1(der));
    h
}

async fn assertion_request(
    emu: &mcas_azure_emulator::EmulatorHandle,
    client: &str,
    assertion: &str,
) -> (u16, Value) {
    token_request(
        emu,
        DEFAULT_TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", SCOPE),
        ],
    )
    .await
}

#[tokio::test]
async fn certificate_assertions() {
    let (config, cert) = cert_config();
    assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let emu = common::start(config).await;
    let aud = emu.token_url();
    let t = now();

    // RS256 with x5t (SHA-1), audience = the emulator's own token URL.
    let jwt = sign_jwt(rs256_x5t(&cert.der), &cert_claims(&aud, t, t + 600), KEY_A);
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 200, "{b}");
    let tok = b["access_token"].as_str().expect("token").to_owned();
    let a = common::ingest(
        &emu,
        &tok,
        DEFAULT_CSL_STREAM,
        br#"[{"DeviceVendor":"cert"}]"#,
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.body);

    // PS256 with x5t#S256, audience = the public cloud authority's token URL.
    let mut h = Header::new(Algorithm::PS256);
    h.x5t_s256 = Some(common::x5t_sha256(&cert.der));
    let public_aud =
        format!("https://login.microsoftonline.com/{DEFAULT_TENANT_ID}/oauth2/v2.0/token");
    let jwt = sign_jwt(h, &cert_claims(&public_aud, t, t + 600), KEY_A);
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 200, "{b}");

    // Signed by another key under the registered thumbprint.
    let jwt = sign_jwt(rs256_x5t(&cert.der), &cert_claims(&aud, t, t + 600), KEY_B);
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700027);

    // Unknown thumbprint.
    let (_, other_der) = common::certificate(KEY_B);
    let jwt = sign_jwt(rs256_x5t(&other_der), &cert_claims(&aud, t, t + 600), KEY_B);
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700027);

    // No thumbprint at all.
    let jwt = sign_jwt(
        Header::new(Algorithm::RS256),
        &cert_claims(&aud, t, t + 600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700027);

    // Expired, and not yet valid (beyond the 60 s leeway).
    let jwt = sign_jwt(
        rs256_x5t(&cert.der),
        &cert_claims(&aud, t - 1200, t - 600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700024);
    let jwt = sign_jwt(
        rs256_x5t(&cert.der),
        &cert_claims(&aud, t + 600, t + 1200),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700024);
    // Missing nbf.
    let mut c = cert_claims(&aud, t, t + 600);
    c.as_object_mut().expect("object").remove("nbf");
    let jwt = sign_jwt(rs256_x5t(&cert.der), &c, KEY_A);
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700024);

    // Wrong audience.
    let jwt = sign_jwt(
        rs256_x5t(&cert.der),
        &cert_claims(
            "https://login.microsoftonline.com/other/oauth2/v2.0/token",
            t,
            t + 600,
        ),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 50013);

    // sub differs from iss/client_id.
    let mut c = cert_claims(&aud, t, t + 600);
    c["sub"] = json!("someone-else");
    let jwt = sign_jwt(rs256_x5t(&cert.der), &c, KEY_A);
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700021);

    // Garbage and a wrong assertion type.
    let (s, b) = assertion_request(&emu, CERT_CLIENT, "not-a-jwt").await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_request", 50027);
    let (s, b) = token_request(
        &emu,
        DEFAULT_TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CERT_CLIENT),
            ("client_assertion_type", "jwt"),
            ("client_assertion", "a.b.c"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_request", 900144);

    // The emulator clock moves: an assertion valid now is expired 20 minutes later.
    let jwt = sign_jwt(rs256_x5t(&cert.der), &cert_claims(&aud, t, t + 600), KEY_A);
    emu.advance_clock(Duration::from_secs(1200));
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700024);
    emu.shutdown().await;
}

fn wi_config() -> EmulatorConfig {
    let mut config = EmulatorConfig::default();
    config.add_federated(
        WI_CLIENT,
        FederatedCredential::new(WI_ISSUER, WI_SUBJECT, PUB_A),
    );
    config
}

fn wi_claims(iss: &str, sub: &str, aud: &str, nbf: u64, exp: u64) -> Value {
    json!({ "iss": iss, "sub": sub, "aud": [aud], "nbf": nbf, "exp": exp, "iat": nbf })
}

#[tokio::test]
async fn workload_identity_assertions() {
    let emu = common::start(wi_config()).await;
    let t = now();
    let aud = "api://AzureADTokenExchange";
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("k1".to_owned());

    let jwt = sign_jwt(
        h.clone(),
        &wi_claims(WI_ISSUER, WI_SUBJECT, aud, t, t + 3600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, WI_CLIENT, &jwt).await;
    assert_eq!(s, 200, "{b}");
    let tok = b["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, b"[]")
            .await
            .status,
        204
    );

    let jwt = sign_jwt(
        h.clone(),
        &wi_claims("https://other.invalid", WI_SUBJECT, aud, t, t + 3600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, WI_CLIENT, &jwt).await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_client", 700211);

    let jwt = sign_jwt(
        h.clone(),
        &wi_claims(WI_ISSUER, "system:serviceaccount:x:y", aud, t, t + 3600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, WI_CLIENT, &jwt).await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_client", 70021);

    let jwt = sign_jwt(
        h.clone(),
        &wi_claims(WI_ISSUER, WI_SUBJECT, "api://Other", t, t + 3600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, WI_CLIENT, &jwt).await;
    assert_eq!(s, 400);
    assert_entra(&b, "invalid_client", 700212);

    let jwt = sign_jwt(
        h.clone(),
        &wi_claims(WI_ISSUER, WI_SUBJECT, aud, t, t + 3600),
        KEY_B,
    );
    let (s, b) = assertion_request(&emu, WI_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700027);

    let jwt = sign_jwt(
        h,
        &wi_claims(WI_ISSUER, WI_SUBJECT, aud, t - 7200, t - 3600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, WI_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 700024);
    emu.shutdown().await;
}

async fn imds(
    emu: &mcas_azure_emulator::EmulatorHandle,
    query: &str,
    metadata: bool,
) -> common::Answer {
    let mut req = common::http().get(format!(
        "{}/metadata/identity/oauth2/token?{query}",
        emu.base_url()
    ));
    if metadata {
        req = req.header("Metadata", "true");
    }
    common::answer(req.send().await.expect("imds")).await
}

#[tokio::test]
async fn imds_managed_identity_and_its_errors() {
    let emu = common::start(EmulatorConfig::default()).await;
    let ok = "api-version=2018-02-01&resource=https%3A%2F%2Fmonitor.azure.com%2F";

    let a = imds(&emu, ok, true).await;
    assert_eq!(a.status, 200, "{}", a.body);
    for k in [
        "access_token",
        "expires_in",
        "expires_on",
        "not_before",
        "resource",
        "token_type",
        "client_id",
    ] {
        assert!(a.body[k].is_string(), "{k} is a string: {}", a.body);
    }
    assert_eq!(a.body["expires_in"], "3599");
    assert_eq!(a.body["resource"], "https://monitor.azure.com/");
    let expires_on: u64 = a.body["expires_on"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("expires_on");
    assert!(expires_on >= now() + 3590);
    let tok = a.body["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        common::ingest(
            &emu,
            &tok,
            DEFAULT_CSL_STREAM,
            br#"[{"DeviceVendor":"mi"}]"#
        )
        .await
        .status,
        204
    );

    let a = imds(
        &emu,
        &format!("{ok}&client_id={DEFAULT_MANAGED_IDENTITY_CLIENT_ID}"),
        true,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["client_id"], DEFAULT_MANAGED_IDENTITY_CLIENT_ID);

    let a = imds(&emu, ok, false).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        a.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("metadata header"))
    );

    let a = imds(&emu, "resource=https%3A%2F%2Fmonitor.azure.com%2F", true).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        a.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("api-version"))
    );

    let a = imds(
        &emu,
        "api-version=1999-01-01&resource=https%3A%2F%2Fmonitor.azure.com%2F",
        true,
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let a = imds(&emu, "api-version=2018-02-01", true).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        a.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("resource"))
    );

    let a = imds(
        &emu,
        &format!("{ok}&client_id=00000000-0000-4000-8000-000000000bad"),
        true,
    )
    .await;
    assert_eq!(
        (a.status, a.body["error_description"].as_str()),
        (400, Some("Identity not found"))
    );

    let a = imds(
        &emu,
        "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
        true,
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_resource"))
    );

    let resp = common::http()
        .get(format!(
            "{}/metadata/identity/oauth2/token?{ok}",
            emu.base_url()
        ))
        .header("Metadata", "true")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn imds_without_system_identity_needs_a_client_id() {
    let mut config = EmulatorConfig::default();
    config.managed_identities.system_assigned = false;
    let emu = common::start(config).await;
    let a = imds(
        &emu,
        "api-version=2018-02-01&resource=https%3A%2F%2Fmonitor.azure.com%2F",
        true,
    )
    .await;
    assert_eq!(
        (a.status, a.body["error_description"].as_str()),
        (400, Some("Identity not found"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn us_government_cloud_wants_its_own_audience_and_authority() {
    let (_, cert) = cert_config();
    let mut config = EmulatorConfig::for_cloud(mcas_azure_emulator::Cloud::UsGovernment);
    config.add_certificate(CERT_CLIENT, cert.pem.clone());
    let emu = common::start(config).await;
    let body = br#"[{"DeviceVendor":"gov"}]"#;
    let (s, b) = token_request(
        &emu,
        DEFAULT_TENANT_ID,
        &secret_form(DEFAULT_CLIENT_SECRET, "https://monitor.azure.us//.default"),
    )
    .await;
    assert_eq!(s, 200);
    let gov = b["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        common::ingest(&emu, &gov, DEFAULT_CSL_STREAM, body)
            .await
            .status,
        204
    );
    // A public-cloud scope is the classic sovereign mistake: 401 wrong audience.
    let public = common::token(&emu).await;
    let a = common::ingest(&emu, &public, DEFAULT_CSL_STREAM, body).await;
    assert_eq!(
        (a.status, common::azure_code(&a).as_str()),
        (401, "InvalidAuthenticationTokenAudience")
    );
    // Assertions name the US Government authority, not the public one.
    let t = now();
    let gov_aud = format!("https://login.microsoftonline.us/{DEFAULT_TENANT_ID}/oauth2/v2.0/token");
    let jwt = sign_jwt(
        rs256_x5t(&cert.der),
        &cert_claims(&gov_aud, t, t + 600),
        KEY_A,
    );
    assert_eq!(assertion_request(&emu, CERT_CLIENT, &jwt).await.0, 200);
    let pub_aud =
        format!("https://login.microsoftonline.com/{DEFAULT_TENANT_ID}/oauth2/v2.0/token");
    let jwt = sign_jwt(
        rs256_x5t(&cert.der),
        &cert_claims(&pub_aud, t, t + 600),
        KEY_A,
    );
    let (s, b) = assertion_request(&emu, CERT_CLIENT, &jwt).await;
    assert_eq!(s, 401);
    assert_entra(&b, "invalid_client", 50013);
    emu.shutdown().await;
}
