//! Entra ID token endpoint (client secret, certificate assertion, workload identity assertion),
//! the IMDS managed identity endpoint, and the access tokens both issue.
//!
//! Access tokens are JWTs signed HS256 with a key drawn at start-up, so only this emulator
//! instance accepts them. Claims follow Entra's v1 app tokens: `aud` (the resource), `iss`
//! (`https://sts.windows.net/{tenant}/`), `appid`, `tid`, `iat`, `nbf`, `exp`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::config::{Certificate, Client, FederatedCredential};
use crate::http::{entra_error, imds_error, parse_form};
use crate::server::Shared;

/// `client_assertion_type` of JWT assertions.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Claims of an emulator access token.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) aud: String,
    pub(crate) iss: String,
    pub(crate) appid: String,
    pub(crate) tid: String,
    pub(crate) iat: u64,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    pub(crate) ver: String,
}

/// Issues a token; returns it with its lifetime in seconds and `expires_on`.
pub(crate) fn issue(sh: &Shared, client_id: &str, resource: &str) -> (String, u64, u64) {
    let now = sh.now_secs();
    let lifetime = sh.config.token_lifetime.as_secs();
    let claims = AccessClaims {
        aud: resource.to_owned(),
        iss: format!("https://sts.windows.net/{}/", sh.config.tenant_id),
        appid: client_id.to_owned(),
        tid: sh.config.tenant_id.clone(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        ver: "1.0".to_owned(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&sh.token_key),
    )
    // HS256 encoding of plain claims cannot fail; keep an unusable token rather than panic.
    .unwrap_or_default();
    (token, lifetime, now + lifetime)
}

/// Why a bearer token was refused by an ingestion endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerError {
    Missing,
    NotBearer,
    Invalid,
    Expired,
    WrongAudience,
}

/// Checks a bearer token: signed by this emulator, within `nbf..exp` on the emulator clock,
/// audience equal to `audience` (ignoring trailing slashes).
pub(crate) fn verify_bearer(
    sh: &Shared,
    headers: &HeaderMap,
    audience: &str,
) -> Result<AccessClaims, BearerError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(BearerError::Missing)?
        .to_str()
        .map_err(|_| BearerError::NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(BearerError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NotBearer);
    }
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AccessClaims>(
        token.trim(),
        &DecodingKey::from_secret(&sh.token_key),
        &v,
    )
    .map_err(|_| BearerError::Invalid)?;
    let now = sh.now_secs();
    if now >= data.claims.exp {
        return Err(BearerError::Expired);
    }
    if now < data.claims.nbf {
        return Err(BearerError::Invalid);
    }
    if trim_slashes(&data.claims.aud) != trim_slashes(audience) {
        return Err(BearerError::WrongAudience);
    }
    Ok(data.claims)
}

fn trim_slashes(s: &str) -> &str {
    s.trim_end_matches('/')
}

fn known_resource(sh: &Shared, resource: &str) -> bool {
    sh.config
        .resources
        .iter()
        .any(|r| trim_slashes(r) == trim_slashes(resource))
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token_endpoint(
    State(sh): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !tenant.eq_ignore_ascii_case(&sh.config.tenant_id) {
        return entra_error(
            None,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let form_ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let form: HashMap<String, String> = if form_ok {
        parse_form(&body).into_iter().collect()
    } else {
        HashMap::new()
    };
    let missing = |name: &str| {
        entra_error(
            None,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    let Some(grant_type) = form.get("grant_type") else {
        return missing("grant_type");
    };
    if grant_type != "client_credentials" {
        return entra_error(
            None,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = form.get("client_id") else {
        return missing("client_id");
    };
    let Some(client) = sh
        .config
        .clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
    else {
        return entra_error(
            Some(StatusCode::BAD_REQUEST),
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                sh.config.tenant_id
            ),
        );
    };
    let Some(scope) = form.get("scope") else {
        return missing("scope");
    };

    if let Some(secret) = form.get("client_secret") {
        let ok = client
            .secret
            .as_ref()
            .is_some_and(|s| constant_time_eq(s.expose().as_bytes(), secret.as_bytes()));
        if !ok {
            return entra_error(
                None,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    client.client_id
                ),
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return entra_error(
                None,
                "invalid_request",
                900144,
                &format!(
                    "The request body must contain the following parameter: 'client_assertion_type' with the value '{JWT_BEARER}'."
                ),
            );
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let own_url = format!("http://{host}/{tenant}/oauth2/v2.0/token");
        if let Err(e) = verify_assertion(&sh, client, assertion, &own_url) {
            return e.into_response();
        }
    } else {
        return entra_error(
            None,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }

    let Some(resource) = scope.strip_suffix("/.default") else {
        return entra_error(
            None,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    if !known_resource(&sh, resource) {
        return entra_error(
            None,
            "invalid_scope",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}.",
                sh.config.tenant_id
            ),
        );
    }
    let (access_token, lifetime, _) = issue(&sh, &client.client_id, resource);
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    apply_lifetime_faults(&sh, &mut body);
    Json(body).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes the payload of a compact JWT without verifying it.
fn peek_claims(jwt: &str) -> Option<Value> {
    let mut parts = jwt.split('.');
    let (_h, p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn aud_contains(claims: &Value, wanted: &[String]) -> bool {
    let matches = |a: &str| wanted.iter().any(|w| trim_slashes(w) == trim_slashes(a));
    match claims.get("aud") {
        Some(Value::String(a)) => matches(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(matches),
        _ => false,
    }
}

/// An Entra error not yet rendered (keeps `Result`s small).
#[derive(Debug)]
struct EntraErr {
    status: Option<StatusCode>,
    error: &'static str,
    code: u32,
    message: String,
}

impl EntraErr {
    fn new(status: Option<StatusCode>, error: &'static str, code: u32, message: &str) -> Self {
        Self {
            status,
            error,
            code,
            message: message.to_owned(),
        }
    }

    fn into_response(self) -> Response {
        entra_error(self.status, self.error, self.code, &self.message)
    }
}

fn invalid_client(code: u32, msg: &str) -> EntraErr {
    EntraErr::new(None, "invalid_client", code, msg)
}

fn verify_assertion(
    sh: &Shared,
    client: &Client,
    assertion: &str,
    own_url: &str,
) -> Result<(), EntraErr> {
    let malformed = || {
        EntraErr::new(
            None,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    };
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
    let claims = peek_claims(assertion).ok_or_else(malformed)?;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if !matches!(
        header.alg,
        Algorithm::RS256
            | Algorithm::PS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS384
            | Algorithm::PS512
    ) {
        return Err(invalid_client(
            5002738,
            &format!(
                "The client assertion uses an unsupported signing algorithm {:?}; use RS256 or PS256.",
                header.alg
            ),
        ));
    }
    if iss.eq_ignore_ascii_case(&client.client_id) {
        certificate_assertion(sh, client, assertion, &header, &claims, own_url)
    } else {
        federated_assertion(sh, client, assertion, &header, &claims, iss)
    }
}

fn check_times(sh: &Shared, claims: &Value) -> Result<(), EntraErr> {
    let now = sh.now_secs();
    let leeway = sh.config.limits.assertion_leeway.as_secs();
    let expired = || {
        invalid_client(
            700024,
            "Client assertion is not within its valid time range.",
        )
    };
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(expired)?;
    let nbf = claims
        .get("nbf")
        .and_then(Value::as_u64)
        .ok_or_else(expired)?;
    if now > exp.saturating_add(leeway) || now.saturating_add(leeway) < nbf {
        return Err(expired());
    }
    Ok(())
}

fn decoding_key_from_pem(pem: &str) -> Option<DecodingKey> {
    DecodingKey::from_rsa_pem(pem.as_bytes()).ok()
}

fn verify_signature(assertion: &str, key: &DecodingKey, alg: Algorithm) -> bool {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(assertion, key, &v).is_ok()
}

/// DER bytes of the first `CERTIFICATE` block of a PEM text.
pub(crate) fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = pem[start..].find("-----END CERTIFICATE-----")? + start;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

fn thumbprints(cert: &Certificate) -> Option<(String, String)> {
    let der = pem_der(&cert.pem)?;
    let sha1 = URL_SAFE_NO_PAD.encode(Sha1::digest(&der));
    let sha256 = URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
    Some((sha1, sha256))
}

fn certificate_assertion(
    sh: &Shared,
    client: &Client,
    assertion: &str,
    header: &Header,
    claims: &Value,
    own_url: &str,
) -> Result<(), EntraErr> {
    // Entra selects the key by the thumbprint in the header.
    let x5t_s256 = header.x5t_s256.as_deref().map(|t| t.trim_end_matches('='));
    let x5t = header.x5t.as_deref().map(|t| t.trim_end_matches('='));
    if x5t.is_none() && x5t_s256.is_none() {
        return Err(invalid_client(
            700027,
            "Client assertion failed signature validation: the header has neither 'x5t' nor 'x5t#S256'.",
        ));
    }
    let cert = client.certificates.iter().find(|c| {
        thumbprints(c)
            .is_some_and(|(s1, s256)| x5t == Some(s1.as_str()) || x5t_s256 == Some(s256.as_str()))
    });
    let Some(cert) = cert else {
        return Err(invalid_client(
            700027,
            &format!(
                "Client assertion failed signature validation: no certificate with the given thumbprint is registered for app '{}'.",
                client.client_id
            ),
        ));
    };
    let key = decoding_key_from_pem(&cert.pem).ok_or_else(|| {
        invalid_client(700027, "Client assertion failed signature validation: the registered certificate has no usable RSA key.")
    })?;
    if !verify_signature(assertion, &key, header.alg) {
        return Err(invalid_client(
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    check_times(sh, claims)?;
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    if !sub.eq_ignore_ascii_case(&client.client_id) {
        return Err(invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter ('iss' and 'sub' must both be the client id).",
        ));
    }
    let tenant = &sh.config.tenant_id;
    let mut accepted: Vec<String> = sh
        .config
        .authority_hosts
        .iter()
        .map(|h| format!("{}/{tenant}/oauth2/v2.0/token", trim_slashes(h)))
        .collect();
    accepted.push(own_url.to_owned());
    if !aud_contains(claims, &accepted) {
        return Err(invalid_client(
            50013,
            &format!(
                "Assertion audience claim does not match the required value. Expected one of: {}.",
                accepted.join(", ")
            ),
        ));
    }
    Ok(())
}

fn federated_assertion(
    sh: &Shared,
    client: &Client,
    assertion: &str,
    header: &Header,
    claims: &Value,
    iss: &str,
) -> Result<(), EntraErr> {
    let creds: Vec<&FederatedCredential> = client
        .federated
        .iter()
        .filter(|f| f.issuer == iss)
        .collect();
    if creds.is_empty() {
        return Err(EntraErr::new(
            Some(StatusCode::BAD_REQUEST),
            "invalid_client",
            700211,
            &format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'."
            ),
        ));
    }
    let signed_by_issuer = creds.iter().any(|c| {
        decoding_key_from_pem(&c.public_key_pem)
            .is_some_and(|k| verify_signature(assertion, &k, header.alg))
    });
    if !signed_by_issuer {
        return Err(invalid_client(
            700027,
            "Client assertion failed signature validation: not signed by the federated issuer's key.",
        ));
    }
    check_times(sh, claims)?;
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    let by_sub: Vec<_> = creds.iter().filter(|c| c.subject == sub).collect();
    let aud_text = claims.get("aud").map(Value::to_string).unwrap_or_default();
    if by_sub.is_empty() {
        return Err(EntraErr::new(
            Some(StatusCode::BAD_REQUEST),
            "invalid_client",
            70021,
            &format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud_text}'."
            ),
        ));
    }
    if !by_sub
        .iter()
        .any(|c| aud_contains(claims, std::slice::from_ref(&c.audience)))
    {
        return Err(EntraErr::new(
            Some(StatusCode::BAD_REQUEST),
            "invalid_client",
            700212,
            &format!(
                "No matching federated identity record found for presented assertion audience '{aud_text}'."
            ),
        ));
    }
    Ok(())
}

/// Query of the IMDS token endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct ImdsQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
    resource: Option<String>,
    client_id: Option<String>,
    object_id: Option<String>,
    msi_res_id: Option<String>,
    mi_res_id: Option<String>,
}

/// IMDS api-versions the emulator accepts.
pub(crate) const IMDS_API_VERSIONS: &[&str] = &[
    "2018-02-01",
    "2019-08-01",
    "2019-11-01",
    "2020-06-01",
    "2021-02-01",
];

/// `GET /metadata/identity/oauth2/token`.
pub(crate) async fn imds_endpoint(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<ImdsQuery>,
) -> Response {
    let metadata = headers.get("metadata").and_then(|v| v.to_str().ok());
    if !metadata.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if headers.contains_key("x-forwarded-for") {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Request cannot be forwarded through a proxy (X-Forwarded-For is present)",
        );
    }
    let Some(api_version) = q.api_version.as_deref() else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    };
    if !IMDS_API_VERSIONS.contains(&api_version) {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid api-version",
        );
    }
    let Some(resource) = q.resource.as_deref().filter(|r| !r.is_empty()) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let mi = &sh.config.managed_identities;
    let identity = if let Some(id) = q.client_id.as_deref() {
        mi.user_assigned
            .iter()
            .find(|c| c.eq_ignore_ascii_case(id))
            .cloned()
    } else if q.object_id.is_some() || q.msi_res_id.is_some() || q.mi_res_id.is_some() {
        // The emulator registers user-assigned identities by client id only.
        None
    } else if mi.system_assigned {
        Some(mi.system_assigned_client_id.clone())
    } else {
        None
    };
    let Some(client_id) = identity else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    if !known_resource(&sh, resource) {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}.",
                sh.config.tenant_id
            ),
        );
    }
    let (access_token, lifetime, expires_on) = issue(&sh, &client_id, resource);
    let now = sh.now_secs();
    let mut body = json!({
        "access_token": access_token,
        "client_id": client_id,
        "expires_in": lifetime.to_string(),
        "expires_on": expires_on.to_string(),
        "ext_expires_in": lifetime.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    apply_lifetime_faults(&sh, &mut body);
    Json(body).into_response()
}

/// The `token_expires_in` / `token_expires_on` / `token_omit_expires_in` faults.
fn apply_lifetime_faults(sh: &Shared, body: &mut Value) {
    sh.faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .faults
        .apply_token_lifetime(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_claims_and_audiences() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"aud":["x","https://a/"],"iss":"i"}"#);
        let jwt = format!("e30.{payload}.sig");
        let c = peek_claims(&jwt).unwrap();
        assert!(aud_contains(&c, &["https://a".to_owned()]));
        assert!(!aud_contains(&c, &["https://b".to_owned()]));
        assert!(peek_claims("a.b").is_none());
        assert!(peek_claims("a.b.c.d").is_none());
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
