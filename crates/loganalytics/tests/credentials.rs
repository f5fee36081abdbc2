//! Each credential kind against the emulator's token and IMDS endpoints,
//! then a send that must land exactly once.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use mcas_azure_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_MANAGED_IDENTITY_CLIENT_ID, DEFAULT_TENANT_ID, EmulatorConfig,
    EmulatorHandle, FaultScope, Faults, FederatedCredential, HugeBodyFault, LifetimeValue,
    RedirectFault,
};
use mcas_loganalytics::{
    ClientCertificateCredential, ClientSecretCredential, Cloud, MAX_ANSWER_BYTES,
    MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME, ManagedIdentityCredential, RetryPolicy,
    TokenCredential, WorkloadIdentityCredential,
};

const CERT_APP: &str = "c3a7e0f1-0000-4000-8000-00000000ce27";
const WORKLOAD_APP: &str = "d4b8f1a2-0000-4000-8000-0000000000ff";
const ISSUER: &str = "https://oidc.example.test/cluster";
const SUBJECT: &str = "system:serviceaccount:mcas:forwarder";

async fn send_and_check(emu: &EmulatorHandle, cred: Arc<dyn TokenCredential>, prefix: &str) {
    let client = builder_with(emu, cred).build().expect("test setup");
    let ids = ids(prefix, 7);
    let report = client.send(&rows_for(&ids)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_exactly_once(emu, CSL, "ExtID", &ids);
}

#[tokio::test]
async fn client_secret() {
    let emu = start_default().await;
    send_and_check(&emu, secret_credential(&emu), "secret").await;
    let t = token_requests(&emu);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].path, format!("/{DEFAULT_TENANT_ID}/oauth2/v2.0/token"));
}

#[tokio::test]
async fn wrong_secret_is_an_auth_error_not_a_hot_loop() {
    let emu = start_default().await;
    let cred = ClientSecretCredential::new(
        DEFAULT_TENANT_ID,
        DEFAULT_CLIENT_ID,
        "not-the-secret",
        authority(&emu),
    )
    .unwrap();
    // The secret never shows in Debug.
    assert!(!format!("{cred:?}").contains("not-the-secret"));
    let err = cred
        .get_token(Cloud::Public.ingestion_scope())
        .await
        .unwrap_err();
    assert!(err.is_auth() && !err.is_retryable(), "{err:?}");
    assert_eq!(err.code(), Some("invalid_client"));
    assert!(!err.to_string().contains("not-the-secret"));

    let client = builder_with(&emu, Arc::new(cred))
        .retry(
            RetryPolicy::bounded(Duration::from_millis(500))
                .config_error_delay(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("badsecret", 3))).await;
    let later = report.retry_later.expect("kept for later");
    assert!(later.error.is_auth());
    assert_eq!(later.rows.len(), 3);
    let n = token_requests(&emu).len();
    // One direct request above, then two or three slow tries.
    assert!((3..=4).contains(&n), "{n} token requests");
    assert_exactly_once(&emu, CSL, "ExtID", &[]);
}

fn cert_config() -> EmulatorConfig {
    let mut config = EmulatorConfig::default();
    let pem = String::from_utf8(test_data("test-client.crt")).expect("test setup");
    config.add_certificate(CERT_APP, pem);
    config
}

#[tokio::test]
async fn client_certificate_pkcs8_key() {
    let emu = start(cert_config()).await;
    let cred = ClientCertificateCredential::new(
        DEFAULT_TENANT_ID,
        CERT_APP,
        &test_data("test-client.crt"),
        &test_data("test-client.key"),
        authority(&emu),
    )
    .unwrap();
    assert!(!format!("{cred:?}").contains("PRIVATE"));
    assert_eq!(cred.thumbprint().len(), 27); // base64url of 20 bytes
    send_and_check(&emu, Arc::new(cred), "cert8").await;
    assert_eq!(token_requests(&emu)[0].status, Some(200));
}

#[tokio::test]
async fn client_certificate_pkcs1_key_from_one_pem_file() {
    let emu = start(cert_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("combined.pem");
    let mut combined = test_data("test-client.crt");
    combined.extend(test_data("test-client-pkcs1.key"));
    std::fs::write(&path, combined).unwrap();
    let cred = ClientCertificateCredential::from_pem_file(
        DEFAULT_TENANT_ID,
        CERT_APP,
        &path,
        authority(&emu),
    )
    .unwrap();
    send_and_check(&emu, Arc::new(cred), "cert1").await;
}

#[tokio::test]
async fn certificate_of_another_app_is_refused() {
    let emu = start_default().await; // no certificate registered
    let cred = ClientCertificateCredential::new(
        DEFAULT_TENANT_ID,
        CERT_APP,
        &test_data("test-client.crt"),
        &test_data("test-client.key"),
        authority(&emu),
    )
    .unwrap();
    let err = cred
        .get_token(Cloud::Public.ingestion_scope())
        .await
        .unwrap_err();
    assert!(err.is_auth() && !err.is_retryable(), "{err:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &[]);
}

#[test]
fn bad_pem_is_refused_at_construction() {
    let cert = test_data("test-client.crt");
    assert!(
        ClientCertificateCredential::new(
            "t",
            "c",
            b"nothing",
            &test_data("test-client.key"),
            Cloud::Public
        )
        .is_err()
    );
    assert!(ClientCertificateCredential::new("t", "c", &cert, &cert, Cloud::Public).is_err());
}

#[tokio::test]
async fn managed_identity_system_assigned() {
    let emu = start_default().await;
    let cred = ManagedIdentityCredential::system_assigned()
        .unwrap()
        .with_endpoint(&format!(
            "{}/metadata/identity/oauth2/token",
            emu.base_url()
        ))
        .unwrap();
    send_and_check(&emu, Arc::new(cred), "mi-sys").await;
    let t = token_requests(&emu);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].method, "GET");
    assert_eq!(t[0].status, Some(200));
}

#[tokio::test]
async fn managed_identity_user_assigned_and_unknown_id() {
    let emu = start_default().await;
    let imds = format!("{}/metadata/identity/oauth2/token", emu.base_url());
    let cred = ManagedIdentityCredential::user_assigned(DEFAULT_MANAGED_IDENTITY_CLIENT_ID)
        .unwrap()
        .with_endpoint(&imds)
        .unwrap();
    send_and_check(&emu, Arc::new(cred), "mi-user").await;
    let unknown = ManagedIdentityCredential::user_assigned("00000000-dead-4000-8000-000000000000")
        .unwrap()
        .with_endpoint(&imds)
        .unwrap();
    let err = unknown
        .get_token(Cloud::Public.ingestion_scope())
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(
        ManagedIdentityCredential::system_assigned()
            .unwrap()
            .with_endpoint("http://imds.example.com/token")
            .is_err()
    );
}

fn federated_token(expires_in: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("test setup")
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": ["api://AzureADTokenExchange"],
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
    });
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(&test_data("test-issuer.key")).expect("test setup");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("test setup")
}

#[tokio::test]
async fn workload_identity_rereads_the_token_file() {
    let mut config = EmulatorConfig::default();
    // Due for refresh after 2 s (half its lifetime), expired after 4 s.
    config.token_lifetime = Duration::from_secs(4);
    let public = String::from_utf8(test_data("test-issuer.pub")).unwrap();
    config.add_federated(
        WORKLOAD_APP,
        FederatedCredential::new(ISSUER, SUBJECT, public),
    );
    let emu = start(config).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", federated_token(600))).unwrap();
    let cred = Arc::new(
        WorkloadIdentityCredential::new(DEFAULT_TENANT_ID, WORKLOAD_APP, &file, authority(&emu))
            .unwrap(),
    );
    send_and_check(&emu, cred.clone(), "wi").await;

    // The file is re-read on every token request: garbage in it is sent
    // and refused (the cached, still unexpired token is kept meanwhile)...
    tokio::time::sleep(Duration::from_millis(2100)).await;
    std::fs::write(&file, "not-a-jwt").unwrap();
    assert!(
        cred.get_token(Cloud::Public.ingestion_scope())
            .await
            .is_ok()
    );
    // ...and a rotated, valid token is read on the next request (once the cached one
    // has expired: after a failed refresh the cache waits before asking again).
    std::fs::write(&file, federated_token(600)).unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        cred.get_token(Cloud::Public.ingestion_scope())
            .await
            .is_ok()
    );
    let statuses: Vec<_> = token_requests(&emu).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200), Some(400), Some(200)]);

    // Without a cached token, a refused assertion is an auth error and a
    // missing file an I/O error; neither is retryable.
    let fresh =
        WorkloadIdentityCredential::new(DEFAULT_TENANT_ID, WORKLOAD_APP, &file, authority(&emu))
            .unwrap();
    std::fs::write(&file, "not-a-jwt").unwrap();
    let err = fresh
        .get_token(Cloud::Public.ingestion_scope())
        .await
        .unwrap_err();
    assert!(err.is_auth() && !err.is_retryable(), "{err:?}");
    std::fs::remove_file(&file).unwrap();
    let err = fresh
        .get_token(Cloud::Public.ingestion_scope())
        .await
        .unwrap_err();
    assert!(!err.is_retryable() && !err.is_auth(), "{err:?}");
    assert_exactly_once(&emu, CSL, "ExtID", &ids("wi", 7));
}

/// Runs only as the child of `workload_identity_from_environment`, which
/// sets the environment (tests must not mutate their own process's).
#[tokio::test]
async fn workload_identity_from_env_child() {
    if std::env::var_os("MCAS_LA_FROM_ENV_CHILD").is_none() {
        return;
    }
    let cred = WorkloadIdentityCredential::from_env(Cloud::Public).expect("variables are set");
    let token = cred
        .get_token(Cloud::Public.ingestion_scope())
        .await
        .expect("token from the emulator");
    assert!(!token.secret().is_empty());
}

#[tokio::test]
async fn workload_identity_from_environment() {
    let mut config = EmulatorConfig::default();
    let public = String::from_utf8(test_data("test-issuer.pub")).unwrap();
    config.add_federated(
        WORKLOAD_APP,
        FederatedCredential::new(ISSUER, SUBJECT, public),
    );
    let emu = start(config).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, federated_token(600)).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "workload_identity_from_env_child", "--nocapture"])
        .env("MCAS_LA_FROM_ENV_CHILD", "1")
        .env("AZURE_TENANT_ID", DEFAULT_TENANT_ID)
        .env("AZURE_CLIENT_ID", WORKLOAD_APP)
        .env("AZURE_FEDERATED_TOKEN_FILE", &file)
        .env("AZURE_AUTHORITY_HOST", emu.base_url());
    let out = tokio::task::spawn_blocking(move || child.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    let t = token_requests(&emu);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].status, Some(200));
    assert_eq!(t[0].path, format!("/{DEFAULT_TENANT_ID}/oauth2/v2.0/token"));
    assert_exactly_once(&emu, CSL, "ExtID", &[]);
}

const SCOPE: &str = "https://monitor.azure.com//.default";

fn imds_credential(emu: &EmulatorHandle) -> Arc<dyn TokenCredential> {
    Arc::new(
        ManagedIdentityCredential::system_assigned()
            .expect("test setup")
            .with_endpoint(&format!(
                "{}/metadata/identity/oauth2/token",
                emu.base_url()
            ))
            .expect("test setup"),
    )
}

/// A token fetched from each flow under `faults` expires within `expect` of now (± slack),
/// and is cached: a second call asks no endpoint.
async fn lifetime_is(emu: &EmulatorHandle, faults: Faults, expect: Duration, what: &str) {
    emu.set_faults(faults);
    for (flow, cred) in [
        ("token endpoint", secret_credential(emu)),
        ("IMDS", imds_credential(emu)),
    ] {
        let before = token_requests(emu).len();
        let now = SystemTime::now();
        let token = cred
            .get_token(SCOPE)
            .await
            .unwrap_or_else(|e| panic!("{what}, {flow}: {e}"));
        let left = token.expires_at().duration_since(now).unwrap_or_default();
        assert!(
            left <= expect + Duration::from_secs(1) && left + Duration::from_secs(5) >= expect,
            "{what}, {flow}: expires in {left:?}, expected {expect:?}"
        );
        let again = cred.get_token(SCOPE).await.expect("cached");
        assert_eq!(again, token, "{what}, {flow}");
        assert_eq!(token_requests(emu).len(), before + 1, "{what}, {flow}");
    }
}

#[tokio::test]
async fn overflowing_token_lifetimes_are_capped_in_every_spelling() {
    let emu = start_default().await;
    let huge_in = 10_000_000_000_000_000_000u64;
    let cases = [
        (
            Faults::default().with_token_expires_in(LifetimeValue::Number(huge_in)),
            "expires_in number",
        ),
        (
            Faults::default().with_token_expires_in(LifetimeValue::Text(huge_in.to_string())),
            "expires_in string",
        ),
        (
            Faults::default()
                .with_token_expires_in(LifetimeValue::Text("99999999999999999999999".into())),
            "expires_in string beyond u64",
        ),
        (
            Faults::default()
                .with_token_omit_expires_in(true)
                .with_token_expires_on(LifetimeValue::Number(u64::MAX)),
            "expires_on number",
        ),
        (
            Faults::default()
                .with_token_omit_expires_in(true)
                .with_token_expires_on(LifetimeValue::Text(u64::MAX.to_string())),
            "expires_on string",
        ),
    ];
    for (faults, what) in cases {
        lifetime_is(&emu, faults, MAX_TOKEN_LIFETIME, what).await;
    }
    // And the capped token is used: rows go through.
    emu.set_faults(Faults::default().with_token_expires_in(LifetimeValue::Number(huge_in)));
    send_and_check(&emu, secret_credential(&emu), "huge-life").await;
}

#[tokio::test]
async fn an_expiry_already_past_is_kept_briefly_not_refetched_per_call() {
    let emu = start_default().await;
    let past = Faults::default()
        .with_token_omit_expires_in(true)
        .with_token_expires_on(LifetimeValue::Number(1000));
    lifetime_is(&emu, past, MIN_TOKEN_LIFETIME, "expires_on in the past").await;
    let zero = Faults::default().with_token_expires_in(LifetimeValue::Text("0".into()));
    lifetime_is(&emu, zero, MIN_TOKEN_LIFETIME, "expires_in 0").await;
}

#[tokio::test]
async fn token_redirects_are_refused_and_never_followed() {
    let emu = start_default().await;
    let (target, hits) = counting_server().await;
    emu.set_faults(
        Faults::default().with_redirect(RedirectFault::new(&target).with_scope(FaultScope::Token)),
    );
    for (flow, cred) in [
        ("token endpoint", secret_credential(&emu)),
        ("IMDS", imds_credential(&emu)),
    ] {
        let err = cred.get_token(SCOPE).await.expect_err(flow);
        assert_eq!(err.status(), Some(307), "{flow}: {err}");
        assert!(err.is_config() && !err.is_retryable(), "{flow}: {err}");
        assert!(err.to_string().contains("redirect"), "{flow}: {err}");
    }
    // Through a client: the rows come back for later, and the secret went nowhere.
    let client = builder(&emu)
        .retry(RetryPolicy::no_retry())
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("redir", 3))).await;
    let later = report.retry_later.expect("kept");
    assert_eq!(later.rows.len(), 3);
    assert!(later.error.is_config(), "{}", later.error);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(ingestion_requests(&emu).is_empty());
}

#[tokio::test]
async fn huge_token_answers_are_refused_after_the_cap() {
    let emu = start_default().await;
    for content_length in [false, true] {
        let sent_before = emu.metrics().huge_body_bytes_sent;
        emu.set_faults(
            Faults::default().with_huge_body(
                HugeBodyFault::new(1 << 30)
                    .with_content_length(content_length)
                    .with_scope(FaultScope::Token),
            ),
        );
        for (flow, cred) in [
            ("token endpoint", secret_credential(&emu)),
            ("IMDS", imds_credential(&emu)),
        ] {
            let err = cred.get_token(SCOPE).await.expect_err(flow);
            assert!(err.to_string().contains("too large"), "{flow}: {err}");
            assert!(!err.is_retryable(), "{flow}: {err}");
        }
        // Of 2 GiB offered, little more than the cap was taken (socket buffers aside).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = emu.metrics().huge_body_bytes_sent - sent_before;
        assert!(
            sent < 32 << 20,
            "content_length {content_length}: {sent} bytes streamed (cap {MAX_ANSWER_BYTES})"
        );
    }
}

#[tokio::test]
async fn retry_after_zero_from_the_token_endpoint_is_no_hot_loop() {
    let mut config = EmulatorConfig::default();
    config.faults = Faults::default()
        .with_rate_429(1.0)
        .with_retry_after(0)
        .with_scope(FaultScope::Token);
    let emu = start(config).await;
    let client = builder(&emu)
        .retry(
            RetryPolicy::bounded(Duration::from_secs(2))
                .base_delay(Duration::from_millis(100))
                .max_delay(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let report = client.send(&rows_for(&ids("ra0t", 3))).await;
    assert_eq!(report.retry_later.expect("kept").rows.len(), 3);
    // Backoff from 100 ms up to 1 s within 2 s: about 6 tries; a hot loop made thousands.
    let n = token_requests(&emu).len();
    assert!((2..=30).contains(&n), "{n} token requests");
}
