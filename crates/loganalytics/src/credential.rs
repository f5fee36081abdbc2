//! Microsoft Entra credentials behind one trait, with a token cache.
//!
//! Four flows are implemented directly over reqwest (the official
//! `azure_identity` crate pulls in a much larger tree):
//! client secret, client certificate (RS256 client assertion), managed
//! identity (IMDS) and workload identity (federated token file).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha1::Digest as _;
use zeroize::Zeroizing;

use crate::body::MAX_ANSWER_BYTES;
use crate::cloud::{AuthorityHost, check_url};
use crate::error::{Error, Kind};

/// A boxed future, as returned by [`TokenCredential::get_token`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tokens are refreshed when fewer than this many seconds remain, as the
/// Azure SDKs do (azure-core `BearerTokenCredentialPolicy`: 300 s). A token
/// issued for less than twice this long is refreshed at half its lifetime
/// instead, so a short-lived token is not fetched anew for every request.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// After a failed refresh, the cached (still unexpired) token is used without
/// asking again for this long, so a token endpoint that is down or hangs is
/// not called on every request.
const REFRESH_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The longest token lifetime believed: Entra issues access tokens for at most 24 hours, so
/// a longer `expires_in` or a later `expires_on` (up to `u64::MAX` from a hostile or broken
/// endpoint) is cut to this. The cache also refreshes any token, however long-lived, at
/// least this often.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The lifetime given to a token whose expiry is already over when it arrives (`expires_in`
/// of 0 or less, or an `expires_on` in the past). The local clock may be ahead of the
/// issuer's, and the service is the judge: a 401 drops the token at once. Until then it is
/// kept this long, so the token endpoint is not asked again for every request.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The assertion type of the client-assertion grant.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The default IMDS token endpoint of an Azure VM.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// An OAuth access token. Its value is redacted in `Debug` and zeroised on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: Zeroizing<String>,
    expires_at: SystemTime,
}

impl AccessToken {
    /// Wraps a token value and its expiry.
    pub fn new(token: impl Into<String>, expires_at: SystemTime) -> Self {
        Self {
            token: Zeroizing::new(token.into()),
            expires_at,
        }
    }

    /// The bearer token. Never log it.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// When a token received at `now` should be refreshed: [`REFRESH_MARGIN`] before
    /// it expires, or at half its lifetime when that is shorter.
    fn refresh_at(&self, now: SystemTime) -> SystemTime {
        let lifetime = self.expires_at.duration_since(now).unwrap_or_default();
        self.expires_at
            .checked_sub(REFRESH_MARGIN.min(lifetime / 2))
            .unwrap_or(now)
    }

    fn is_unexpired(&self, now: SystemTime) -> bool {
        self.expires_at > now
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A source of bearer tokens for a scope.
///
/// Implementations cache: [`get_token`](TokenCredential::get_token) answers
/// from the cache while the token has more than [`REFRESH_MARGIN`] left
/// (half its lifetime, for a token issued for less than twice that), and
/// concurrent callers share one refresh. [`TokenCache`] does this for
/// custom implementations.
pub trait TokenCredential: Send + Sync + fmt::Debug {
    /// A token for `scope`.
    fn get_token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>>;

    /// The service refused `token` (HTTP 401): the next
    /// [`get_token`](TokenCredential::get_token) must fetch a new one.
    fn invalidate(&self, scope: &str, token: &AccessToken);
}

/// A per-scope token cache that refreshes ahead of expiry and
/// single-flights refreshes.
///
/// A refresh that fails while the cached token is still unexpired returns
/// the cached token, and the cache asks again only after a short pause.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Cached>>,
    refresh: tokio::sync::Mutex<()>,
}

/// A cached token and when to fetch its successor.
struct Cached {
    token: AccessToken,
    refresh_at: SystemTime,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached token of `scope` while it needs no refresh.
    fn fresh(&self, scope: &str, now: SystemTime) -> Option<AccessToken> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(scope)
            .filter(|c| c.refresh_at > now)
            .map(|c| c.token.clone())
    }

    /// The cached token for `scope` when it is fresh, else the result of
    /// `fetch`, which is then cached. Only one fetch runs at a time.
    ///
    /// # Errors
    /// The error of `fetch`, when no unexpired token is cached.
    pub async fn get_or_fetch<F, Fut>(&self, scope: &str, fetch: F) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, Error>>,
    {
        if let Some(t) = self.fresh(scope, SystemTime::now()) {
            return Ok(t);
        }
        let _single_flight = self.refresh.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(t) = self.fresh(scope, SystemTime::now()) {
            return Ok(t);
        }
        let result = fetch().await;
        let now = SystemTime::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(token) => {
                // However long the token claims to live, ask again within a day.
                let refresh_at = token
                    .refresh_at(now)
                    .min(now.checked_add(MAX_TOKEN_LIFETIME).unwrap_or(now));
                tokens.insert(
                    scope.to_owned(),
                    Cached {
                        token: token.clone(),
                        refresh_at,
                    },
                );
                Ok(token)
            }
            Err(e) => match tokens.get_mut(scope).filter(|c| c.token.is_unexpired(now)) {
                Some(c) => {
                    tracing::warn!(error = %e, "token refresh failed; using the cached token until it expires");
                    c.refresh_at = now
                        .checked_add(REFRESH_RETRY_PAUSE)
                        .unwrap_or(now)
                        .min(c.token.expires_at);
                    Ok(c.token.clone())
                }
                None => Err(e),
            },
        }
    }

    /// Drops the cached token of `scope` if it is `token`.
    pub fn invalidate(&self, scope: &str, token: &AccessToken) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.get(scope).is_some_and(|c| c.token == *token) {
            tokens.remove(scope);
        }
    }
}

/// A secret string: redacted in `Debug`, zeroised on drop.
#[derive(Clone)]
struct Secret(Zeroizing<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn http_client(no_proxy: bool) -> Result<reqwest::Client, Error> {
    // Never follow a redirect: a 307 would repeat the POST, client secret or assertion
    // included, to wherever the `Location` points.
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    if no_proxy {
        b = b.no_proxy();
    }
    b.build()
        .map_err(|e| Error::builder("cannot build the HTTP client").with_source(e))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<NumOrString>,
    #[serde(default)]
    expires_on: Option<NumOrString>,
}

/// A number of seconds as a token endpoint writes it: a JSON number (the v2 endpoint), a
/// string (IMDS), or anything beyond `u64` (read as a float, which saturates).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Float(f64),
    Str(String),
}

impl NumOrString {
    /// The value in whole seconds: negative values read as 0, values beyond `u64` as
    /// `u64::MAX`; `None` when it is not a number at all.
    fn get(&self) -> Option<u64> {
        match self {
            NumOrString::Num(n) => Some(*n),
            NumOrString::Float(f) => float_secs(*f),
            NumOrString::Str(s) => {
                let s = s.trim();
                s.parse::<u64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(float_secs))
            }
        }
    }
}

fn float_secs(f: f64) -> Option<u64> {
    if f.is_nan() {
        None
    } else if f <= 0.0 {
        Some(0)
    } else {
        // `as` saturates: +inf and anything beyond u64 become u64::MAX.
        Some(f as u64)
    }
}

/// When a token received at `now` expires, from the answer's `expires_in` (preferred) or
/// `expires_on` (seconds since the epoch), with checked arithmetic only: the lifetime is
/// cut to [`MAX_TOKEN_LIFETIME`], an expiry already over becomes [`MIN_TOKEN_LIFETIME`]
/// from now, and without either field the shortest lifetime Entra issues (1 h) is assumed.
/// Also says whether the expiry was already over.
fn token_expiry(
    expires_in: Option<u64>,
    expires_on: Option<u64>,
    now: SystemTime,
) -> (SystemTime, bool) {
    let lifetime = match (expires_in, expires_on) {
        (Some(secs), _) => Duration::from_secs(secs),
        (None, Some(on)) => match UNIX_EPOCH.checked_add(Duration::from_secs(on)) {
            // The past (or now): zero left.
            Some(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
            // Beyond what the platform's clock can represent.
            None => MAX_TOKEN_LIFETIME,
        },
        (None, None) => Duration::from_secs(3600),
    };
    let over = lifetime.is_zero();
    let lifetime = if over {
        MIN_TOKEN_LIFETIME
    } else {
        lifetime.min(MAX_TOKEN_LIFETIME)
    };
    // At most a day ahead of a real clock: this cannot overflow, but stay checked.
    (now.checked_add(lifetime).unwrap_or(now), over)
}

#[derive(Deserialize)]
struct TokenErrorBody {
    #[serde(default)]
    error: Option<String>,
}

/// Sends a token request and reads the answer. Token endpoint errors keep
/// only the `error` code: `error_description` can echo request details.
async fn token_request(req: reqwest::RequestBuilder) -> Result<AccessToken, Error> {
    let resp = req.send().await.map_err(Error::transport)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::classify::parse_retry_after(v, SystemTime::now()));
    if (300..400).contains(&status) {
        return Err(Error::new(Kind::Config)
            .with_status(status)
            .with_message("the token endpoint answered with a redirect, which is never followed"));
    }
    let body = crate::body::read_capped(resp, MAX_ANSWER_BYTES).await?;
    // A cut error answer goes on: its first bytes may still name the error.
    if body.truncated && (200..300).contains(&status) {
        return Err(Error::decode(format!(
            "the token endpoint's answer is too large (over {MAX_ANSWER_BYTES} bytes)"
        ))
        .with_status(status));
    }
    let body = body.bytes;
    if !(200..300).contains(&status) {
        let code = serde_json::from_slice::<TokenErrorBody>(&body)
            .ok()
            .and_then(|b| b.error);
        let kind = if matches!(status, 408 | 429 | 500..=599) {
            Kind::Transient
        } else {
            Kind::Auth
        };
        return Err(Error::new(kind)
            .with_status(status)
            .with_code(code)
            .with_retry_after(retry_after)
            .with_message("the token endpoint refused the request"));
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| Error::decode("the token endpoint's answer is not a token"))?;
    let now = SystemTime::now();
    let expires_in = parsed.expires_in.as_ref().and_then(NumOrString::get);
    let expires_on = parsed.expires_on.as_ref().and_then(NumOrString::get);
    let (expires_at, over) = token_expiry(expires_in, expires_on, now);
    if over {
        tracing::warn!(
            "the token endpoint sent a token whose expiry is already over; keeping it for a minute"
        );
    }
    Ok(AccessToken::new(parsed.access_token, expires_at))
}

/// `https://monitor.azure.com//.default` → `https://monitor.azure.com/`
/// (the v1 resource IMDS wants).
fn scope_to_resource(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

fn guid() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]),
        u16::from_be_bytes([b[8], b[9]]),
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

pub(crate) fn new_request_id() -> String {
    guid()
}

// ---------------------------------------------------------------------------

/// The client credentials grant with a client secret.
#[derive(Debug)]
pub struct ClientSecretCredential {
    tenant_id: String,
    client_id: String,
    secret: Secret,
    authority: AuthorityHost,
    http: reqwest::Client,
    cache: TokenCache,
}

impl ClientSecretCredential {
    /// A credential for app `client_id` in `tenant_id`, with `secret`, at
    /// `authority` (a [`Cloud`](crate::Cloud) or an [`AuthorityHost`]).
    ///
    /// # Errors
    /// Fails when the HTTP client cannot be built.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<String>,
        authority: impl Into<AuthorityHost>,
    ) -> Result<Self, Error> {
        Ok(Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            secret: Secret(Zeroizing::new(secret.into())),
            authority: authority.into(),
            http: http_client(false)?,
            cache: TokenCache::new(),
        })
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, Error> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.0.as_str()),
            ("scope", scope),
        ];
        token_request(
            self.http
                .post(self.authority.token_url(&self.tenant_id))
                .form(&form),
        )
        .await
    }
}

impl TokenCredential for ClientSecretCredential {
    fn get_token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(self.cache.get_or_fetch(scope, || self.fetch(scope)))
    }

    fn invalidate(&self, scope: &str, token: &AccessToken) {
        self.cache.invalidate(scope, token);
    }
}

// ---------------------------------------------------------------------------

/// The client credentials grant with a certificate: an RS256 client
/// assertion signed by the certificate's private key, with the SHA-1
/// (`x5t`) and SHA-256 (`x5t#S256`) thumbprints in its header.
pub struct ClientCertificateCredential {
    tenant_id: String,
    client_id: String,
    key: jsonwebtoken::EncodingKey,
    x5t: String,
    x5t_s256: String,
    authority: AuthorityHost,
    http: reqwest::Client,
    cache: TokenCache,
}

impl fmt::Debug for ClientCertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificateCredential")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("x5t", &self.x5t)
            .field("key", &"<redacted>")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl ClientCertificateCredential {
    /// A credential from PEM text: `certificate_pem` holds the certificate
    /// (the first `CERTIFICATE` block is used) and `key_pem` its RSA private
    /// key (PKCS#1 or PKCS#8). Both may be the same combined PEM.
    ///
    /// # Errors
    /// Fails when no certificate or no RSA key can be read. Messages never
    /// include key material.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        certificate_pem: &[u8],
        key_pem: &[u8],
        authority: impl Into<AuthorityHost>,
    ) -> Result<Self, Error> {
        let cert = rustls_pemfile::certs(&mut &certificate_pem[..])
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| Error::builder("no CERTIFICATE block in the certificate PEM"))?;
        let x5t = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(cert.as_ref()));
        let x5t_s256 = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(cert.as_ref()));
        let key_block = find_key_block(key_pem).ok_or_else(|| {
            Error::builder("no RSA PRIVATE KEY or PRIVATE KEY block in the key PEM")
        })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_block)
            .map_err(|_| Error::builder("the private key is not a readable RSA key"))?;
        Ok(Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            key,
            x5t,
            x5t_s256,
            authority: authority.into(),
            http: http_client(false)?,
            cache: TokenCache::new(),
        })
    }

    /// Reads a PEM file holding the certificate and its key.
    ///
    /// # Errors
    /// As [`ClientCertificateCredential::new`], or when the file cannot be read.
    pub fn from_pem_file(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        path: impl AsRef<Path>,
        authority: impl Into<AuthorityHost>,
    ) -> Result<Self, Error> {
        let pem = Zeroizing::new(
            std::fs::read(path.as_ref())
                .map_err(|e| Error::io("cannot read the certificate file", e))?,
        );
        Self::new(tenant_id, client_id, &pem, &pem, authority)
    }

    /// The SHA-1 thumbprint of the certificate, base64url (the `x5t` header).
    pub fn thumbprint(&self) -> &str {
        &self.x5t
    }

    fn assertion(&self, token_url: &str) -> Result<Zeroizing<String>, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.x5t = Some(self.x5t.clone());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        let claims = AssertionClaims {
            aud: token_url,
            iss: &self.client_id,
            sub: &self.client_id,
            jti: guid(),
            nbf: now,
            iat: now,
            exp: now.saturating_add(600),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Zeroizing::new)
            .map_err(|_| Error::builder("cannot sign the client assertion"))
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, Error> {
        let url = self.authority.token_url(&self.tenant_id);
        let assertion = self.assertion(&url)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
            ("scope", scope),
        ];
        token_request(self.http.post(url.as_str()).form(&form)).await
    }
}

fn find_key_block(pem: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(pem).ok()?;
    for (begin, end) in [
        (
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----END RSA PRIVATE KEY-----",
        ),
        ("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"),
    ] {
        if let Some(start) = text.find(begin) {
            let stop = text[start..].find(end)? + start + end.len();
            return Some(&pem[start..stop]);
        }
    }
    None
}

impl TokenCredential for ClientCertificateCredential {
    fn get_token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(self.cache.get_or_fetch(scope, || self.fetch(scope)))
    }

    fn invalidate(&self, scope: &str, token: &AccessToken) {
        self.cache.invalidate(scope, token);
    }
}

// ---------------------------------------------------------------------------

/// A managed identity, through the Azure Instance Metadata Service (IMDS).
///
/// `GET {endpoint}?api-version=2018-02-01&resource=…[&client_id=…]` with
/// `Metadata: true`, bypassing any proxy.
#[derive(Debug)]
pub struct ManagedIdentityCredential {
    endpoint: reqwest::Url,
    client_id: Option<String>,
    http: reqwest::Client,
    cache: TokenCache,
}

impl ManagedIdentityCredential {
    /// The VM's system-assigned identity.
    ///
    /// # Errors
    /// Fails when the HTTP client cannot be built.
    pub fn system_assigned() -> Result<Self, Error> {
        Ok(Self {
            endpoint: check_url(DEFAULT_IMDS_ENDPOINT, true)?,
            client_id: None,
            http: http_client(true)?,
            cache: TokenCache::new(),
        })
    }

    /// A user-assigned identity, selected by its client id.
    ///
    /// # Errors
    /// Fails when the HTTP client cannot be built.
    pub fn user_assigned(client_id: impl Into<String>) -> Result<Self, Error> {
        let mut c = Self::system_assigned()?;
        c.client_id = Some(client_id.into());
        Ok(c)
    }

    /// Uses another IMDS token endpoint (the emulator, a sidecar).
    ///
    /// # Errors
    /// Fails for plain `http://` to a host that is neither loopback nor
    /// the IMDS address.
    pub fn with_endpoint(mut self, endpoint: &str) -> Result<Self, Error> {
        self.endpoint = check_url(endpoint, true)?;
        Ok(self)
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, Error> {
        let mut query = vec![
            ("api-version", "2018-02-01"),
            ("resource", scope_to_resource(scope)),
        ];
        if let Some(id) = &self.client_id {
            query.push(("client_id", id.as_str()));
        }
        token_request(
            self.http
                .get(self.endpoint.clone())
                .query(&query)
                .header("Metadata", "true"),
        )
        .await
    }
}

impl TokenCredential for ManagedIdentityCredential {
    fn get_token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(self.cache.get_or_fetch(scope, || self.fetch(scope)))
    }

    fn invalidate(&self, scope: &str, token: &AccessToken) {
        self.cache.invalidate(scope, token);
    }
}

// ---------------------------------------------------------------------------

/// Workload identity federation: the client assertion is an external token
/// (a Kubernetes service-account token) read from a file, re-read on every
/// token request because the kubelet rotates it.
#[derive(Debug)]
pub struct WorkloadIdentityCredential {
    tenant_id: String,
    client_id: String,
    token_file: PathBuf,
    authority: AuthorityHost,
    http: reqwest::Client,
    cache: TokenCache,
}

impl WorkloadIdentityCredential {
    /// A credential for app `client_id` in `tenant_id`, asserting with the
    /// token in `token_file`.
    ///
    /// # Errors
    /// Fails when the HTTP client cannot be built.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        token_file: impl Into<PathBuf>,
        authority: impl Into<AuthorityHost>,
    ) -> Result<Self, Error> {
        Ok(Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            token_file: token_file.into(),
            authority: authority.into(),
            http: http_client(false)?,
            cache: TokenCache::new(),
        })
    }

    /// From the environment contract of the Azure SDKs: `AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and optionally
    /// `AZURE_AUTHORITY_HOST` (else `default_cloud`'s).
    ///
    /// # Errors
    /// Fails when a required variable is missing or the authority is unusable.
    pub fn from_env(default_cloud: crate::Cloud) -> Result<Self, Error> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::builder(format!("{name} is not set")))
        };
        let authority = match std::env::var("AZURE_AUTHORITY_HOST") {
            Ok(host) if !host.is_empty() => AuthorityHost::new(&host)?,
            _ => AuthorityHost::from(default_cloud),
        };
        Self::new(
            var("AZURE_TENANT_ID")?,
            var("AZURE_CLIENT_ID")?,
            var("AZURE_FEDERATED_TOKEN_FILE")?,
            authority,
        )
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, Error> {
        let assertion = Zeroizing::new(
            tokio::fs::read_to_string(&self.token_file)
                .await
                .map_err(|e| Error::io("cannot read the federated token file", e))?,
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.trim()),
            ("scope", scope),
        ];
        token_request(
            self.http
                .post(self.authority.token_url(&self.tenant_id))
                .form(&form),
        )
        .await
    }
}

impl TokenCredential for WorkloadIdentityCredential {
    fn get_token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(self.cache.get_or_fetch(scope, || self.fetch(scope)))
    }

    fn invalidate(&self, scope: &str, token: &AccessToken) {
        self.cache.invalidate(scope, token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn token_debug_is_redacted() {
        let t = AccessToken::new("eyJsecret", SystemTime::now());
        assert!(!format!("{t:?}").contains("eyJ"));
        let s = Secret(Zeroizing::new("hunter2".into()));
        assert_eq!(format!("{s:?}"), "<redacted>");
    }

    #[test]
    fn token_expiry_is_checked_and_capped() {
        let now = SystemTime::now();
        let at = |i, o, now| token_expiry(i, o, now).0;
        let day = now + MAX_TOKEN_LIFETIME;
        // The hostile values of the issue: no panic, a day at most.
        assert_eq!(at(Some(10_000_000_000_000_000_000), None, now), day);
        assert_eq!(at(Some(u64::MAX), None, now), day);
        assert_eq!(at(None, Some(u64::MAX), now), day);
        assert_eq!(at(Some(u64::MAX), Some(u64::MAX), now), day);
        // Ordinary values are kept.
        assert_eq!(at(Some(3599), None, now), now + Duration::from_secs(3599));
        let on = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
        let soon = at(None, Some(on), now);
        assert!(soon <= now + Duration::from_secs(600) && soon > now + Duration::from_secs(598));
        assert_eq!(at(None, None, now), now + Duration::from_secs(3600));
        // Already over: kept briefly, not refreshed on every call, and said so.
        assert!(token_expiry(Some(0), None, now).1);
        assert!(!token_expiry(Some(60), None, now).1);
        assert_eq!(at(Some(0), None, now), now + MIN_TOKEN_LIFETIME);
        assert_eq!(at(None, Some(1000), now), now + MIN_TOKEN_LIFETIME);
        assert_eq!(at(None, Some(0), now), now + MIN_TOKEN_LIFETIME);
    }

    #[test]
    fn lifetimes_read_in_every_spelling() {
        let read = |json: &str| {
            serde_json::from_str::<TokenResponse>(json)
                .unwrap()
                .expires_in
                .as_ref()
                .and_then(NumOrString::get)
        };
        let t = |v: &str| format!(r#"{{"access_token":"x","expires_in":{v}}}"#);
        assert_eq!(read(&t("3599")), Some(3599));
        assert_eq!(read(&t("\"3599\"")), Some(3599));
        assert_eq!(
            read(&t("10000000000000000000")),
            Some(10_000_000_000_000_000_000)
        );
        assert_eq!(
            read(&t("\"10000000000000000000\"")),
            Some(10_000_000_000_000_000_000)
        );
        assert_eq!(read(&t("18446744073709551615")), Some(u64::MAX));
        assert_eq!(read(&t("99999999999999999999999")), Some(u64::MAX));
        assert_eq!(read(&t("\"99999999999999999999999\"")), Some(u64::MAX));
        assert_eq!(read(&t("1e300")), Some(u64::MAX));
        assert_eq!(read(&t("-5")), Some(0));
        assert_eq!(read(&t("\"-5\"")), Some(0));
        assert_eq!(read(&t("3599.5")), Some(3599));
        assert_eq!(read(&t("\"soon\"")), None);
    }

    #[tokio::test]
    async fn cache_refreshes_far_future_tokens_within_a_day() {
        let cache = TokenCache::new();
        let far = UNIX_EPOCH + Duration::from_secs(1 << 40);
        let t = AccessToken::new("far", far);
        let now = SystemTime::now();
        cache
            .get_or_fetch("s", || async move { Ok(t) })
            .await
            .unwrap();
        let tokens = cache.tokens.lock().unwrap();
        let refresh_at = tokens.get("s").unwrap().refresh_at;
        assert!(refresh_at <= SystemTime::now() + MAX_TOKEN_LIFETIME);
        assert!(refresh_at >= now + MAX_TOKEN_LIFETIME - Duration::from_secs(5));
    }

    #[test]
    fn resource_from_scope() {
        assert_eq!(
            scope_to_resource("https://monitor.azure.com//.default"),
            "https://monitor.azure.com/"
        );
        assert_eq!(
            scope_to_resource("https://monitor.azure.com/.default"),
            "https://monitor.azure.com"
        );
    }

    #[test]
    fn guids_are_v4() {
        let g = guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert!(matches!(&g[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(g, guid());
    }

    #[tokio::test]
    async fn cache_refreshes_at_margin_and_single_flights() {
        let cache = Arc::new(TokenCache::new());
        let fetches = Arc::new(AtomicUsize::new(0));
        let fetch = |lifetime: u64| {
            let fetches = fetches.clone();
            move || async move {
                let n = fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(AccessToken::new(
                    format!("t{n}"),
                    SystemTime::now() + Duration::from_secs(lifetime),
                ))
            }
        };
        // Ten concurrent callers, one fetch.
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let cache = cache.clone();
            let f = fetch(3600);
            tasks.push(tokio::spawn(
                async move { cache.get_or_fetch("s", f).await },
            ));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().secret(), "t0");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // A token issued for less than twice the margin is kept for half its lifetime,
        // not fetched anew at every call.
        let short = cache.get_or_fetch("short", fetch(299)).await.unwrap();
        let same = cache.get_or_fetch("short", fetch(3600)).await.unwrap();
        assert_eq!(short, same);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // A token past its refresh time is refreshed (here: one issued for 1 s).
        let brief = cache.get_or_fetch("brief", fetch(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let next = cache.get_or_fetch("brief", fetch(3600)).await.unwrap();
        assert_ne!(brief, next);
        assert_eq!(fetches.load(Ordering::SeqCst), 4);
        // Invalidating the refused token forces a fetch; a stale one does not.
        cache.invalidate("s", &short);
        let same = cache.get_or_fetch("s", fetch(3600)).await.unwrap();
        assert_eq!(same.secret(), "t0");
        cache.invalidate("s", &same);
        let new = cache.get_or_fetch("s", fetch(3600)).await.unwrap();
        assert_eq!(new.secret(), "t4");
    }

    #[tokio::test]
    async fn failed_refresh_falls_back_to_unexpired_token() {
        let cache = TokenCache::new();
        // Issued for 2 s: due for refresh after 1 s, unexpired until 2 s.
        let near_expiry = AccessToken::new("old", SystemTime::now() + Duration::from_secs(2));
        let t = near_expiry.clone();
        cache
            .get_or_fetch("s", || async move { Ok(t) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let failures = AtomicUsize::new(0);
        let failing = || async {
            failures.fetch_add(1, Ordering::SeqCst);
            Err(Error::new(Kind::Transient).with_status(503))
        };
        let got = cache.get_or_fetch("s", failing).await.unwrap();
        assert_eq!(got, near_expiry);
        // The endpoint is not asked again at once: the cached token serves meanwhile.
        let got = cache.get_or_fetch("s", failing).await.unwrap();
        assert_eq!(got, near_expiry);
        assert_eq!(failures.load(Ordering::SeqCst), 1);
        let err = cache
            .get_or_fetch("other", || async {
                Err(Error::new(Kind::Transient).with_status(503))
            })
            .await
            .unwrap_err();
        assert!(err.is_retryable());
    }
}
