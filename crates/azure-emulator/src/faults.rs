//! Fault injection: deterministic (seeded) error answers, resets, latency and down windows.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

/// Which endpoints faults apply to. `/_emulator/*` is never faulted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultScope {
    /// Token, IMDS and both ingestion APIs.
    #[default]
    All,
    /// Logs Ingestion API and Data Collector API only.
    Ingestion,
    /// Token and IMDS endpoints only.
    Token,
}

impl FaultScope {
    pub(crate) fn covers(self, is_token: bool) -> bool {
        match self {
            FaultScope::All => true,
            FaultScope::Ingestion => !is_token,
            FaultScope::Token => is_token,
        }
    }
}

/// One injected outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FaultKind {
    /// Let the request through unchanged.
    #[serde(rename = "pass")]
    Pass,
    /// 429 with `Retry-After: retry_after_secs`.
    #[serde(rename = "429")]
    TooManyRequests,
    /// 500 `InternalServerError`.
    #[serde(rename = "500")]
    InternalError,
    /// 503 `ServiceUnavailable`.
    #[serde(rename = "503")]
    Unavailable,
    /// The TCP connection is reset (RST) without an answer.
    #[serde(rename = "reset")]
    Reset,
}

/// A value written into a token answer's `expires_in` or `expires_on`: a JSON number, or a
/// string (IMDS's form, and the way to send values beyond `u64` or that are not numbers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum LifetimeValue {
    /// Written as a JSON number.
    Number(u64),
    /// Written as a JSON string, verbatim.
    Text(String),
}

impl LifetimeValue {
    fn to_json(&self) -> serde_json::Value {
        match self {
            LifetimeValue::Number(n) => serde_json::Value::from(*n),
            LifetimeValue::Text(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

/// Every request to the faulted endpoints is answered with a redirect instead of being served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedirectFault {
    /// The status, 300 to 399 (default 307, which tells a client to repeat the POST with its
    /// body at `location`).
    #[serde(default = "default_redirect_status")]
    pub status: u16,
    /// The `Location` header.
    pub location: String,
    /// Endpoints redirected (default all: token, IMDS and both ingestion APIs).
    #[serde(default)]
    pub scope: FaultScope,
}

fn default_redirect_status() -> u16 {
    307
}

impl RedirectFault {
    /// A 307 to `location` for every faultable endpoint.
    pub fn new(location: impl Into<String>) -> Self {
        Self {
            status: 307,
            location: location.into(),
            scope: FaultScope::All,
        }
    }

    /// Sets the status (300 to 399).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Restricts the endpoints redirected.
    pub fn with_scope(mut self, scope: FaultScope) -> Self {
        self.scope = scope;
        self
    }
}

/// Every request to the faulted endpoints is answered with a body of `bytes` bytes, streamed
/// in chunks as the client reads it (never held in memory). The body starts like the endpoint's
/// usual JSON (`{"access_token":"AAAA…` for tokens, `{"error":{"code":"HugeAnswer","message":"xxxx…`
/// for the Logs Ingestion API, `{"Error":"HugeAnswer","Message":"xxxx…` for the Data Collector
/// API) and never ends it. The bytes actually handed to the connection are counted in
/// `huge_body_bytes_sent` of the metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HugeBodyFault {
    /// Length of the body in bytes.
    pub bytes: u64,
    /// The answer's status (default 200).
    #[serde(default = "default_huge_status")]
    pub status: u16,
    /// Send `Content-Length` (default false: chunked, so the client learns the size only by
    /// reading).
    #[serde(default)]
    pub content_length: bool,
    /// Endpoints answered so (default all).
    #[serde(default)]
    pub scope: FaultScope,
}

fn default_huge_status() -> u16 {
    200
}

impl HugeBodyFault {
    /// A chunked 200 answer of `bytes` bytes for every faultable endpoint.
    pub fn new(bytes: u64) -> Self {
        Self {
            bytes,
            status: 200,
            content_length: false,
            scope: FaultScope::All,
        }
    }

    /// Sets the status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sends `Content-Length` instead of chunked encoding.
    pub fn with_content_length(mut self, on: bool) -> Self {
        self.content_length = on;
        self
    }

    /// Restricts the endpoints answered so.
    pub fn with_scope(mut self, scope: FaultScope) -> Self {
        self.scope = scope;
        self
    }
}

/// A window, relative to when the faults were set, during which the emulator refuses
/// connections: the listener is closed (connects get `ECONNREFUSED`) and open connections are
/// reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownWindow {
    /// Start, in milliseconds after the faults were set.
    pub start_ms: u64,
    /// Length in milliseconds.
    pub duration_ms: u64,
}

/// Fault settings. All rates are fractions in `[0, 1]` of faultable requests; they are drawn
/// from one seeded generator in arrival order, so a sequential client sees the same sequence
/// on every run. `script` entries are consumed first, one per request.
///
/// The hostile answers (`redirect`, `huge_body`, and the token lifetime overrides) are not
/// drawn: while set they apply to every request of their scope, before the script and rates.
///
/// As JSON (for `POST /_emulator/faults`), every field is optional:
/// `{"seed":7,"rate_429":0.1,"retry_after_secs":2,"rate_500":0,"rate_503":0,"rate_reset":0,
///   "latency_ms":0,"latency_jitter_ms":0,"down":[{"start_ms":0,"duration_ms":500}],
///   "token_outage":false,"scope":"all","script":["429","pass","reset"],
///   "token_expires_in":10000000000000000000,"token_expires_on":"18446744073709551615",
///   "token_omit_expires_in":false,
///   "redirect":{"status":307,"location":"http://127.0.0.1:9/x","scope":"token"},
///   "huge_body":{"bytes":1073741824,"status":200,"content_length":false,"scope":"token"}}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Faults {
    /// Seed of the generator (default 0).
    pub seed: u64,
    /// Fraction answered 429 with `Retry-After`.
    pub rate_429: f64,
    /// `Retry-After` seconds sent with 429 (default 1).
    pub retry_after_secs: u64,
    /// Fraction answered 500.
    pub rate_500: f64,
    /// Fraction answered 503.
    pub rate_503: f64,
    /// Fraction whose connection is reset.
    pub rate_reset: f64,
    /// Added latency before every faultable answer, in milliseconds.
    pub latency_ms: u64,
    /// Extra random latency, uniform in `[0, latency_jitter_ms]`, drawn from the seeded generator.
    pub latency_jitter_ms: u64,
    /// Windows during which connections are refused.
    pub down: Vec<DownWindow>,
    /// The token and IMDS endpoints answer 503 `temporarily_unavailable`.
    pub token_outage: bool,
    /// Endpoints the rates, script and latency apply to.
    pub scope: FaultScope,
    /// Outcomes for the next requests, in order, before the rates apply.
    pub script: Vec<FaultKind>,
    /// Replaces `expires_in` (and `ext_expires_in`) in every successful token and IMDS answer.
    pub token_expires_in: Option<LifetimeValue>,
    /// Sets `expires_on` in every successful token and IMDS answer (the token endpoint
    /// normally sends none).
    pub token_expires_on: Option<LifetimeValue>,
    /// Leaves `expires_in` and `ext_expires_in` out of successful token and IMDS answers, so a
    /// client has only `expires_on` (or nothing) to go by.
    pub token_omit_expires_in: bool,
    /// Redirect every request of its scope.
    pub redirect: Option<RedirectFault>,
    /// Answer every request of its scope with a huge streamed body.
    pub huge_body: Option<HugeBodyFault>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            seed: 0,
            rate_429: 0.0,
            retry_after_secs: 1,
            rate_500: 0.0,
            rate_503: 0.0,
            rate_reset: 0.0,
            latency_ms: 0,
            latency_jitter_ms: 0,
            down: Vec::new(),
            token_outage: false,
            scope: FaultScope::All,
            script: Vec::new(),
            token_expires_in: None,
            token_expires_on: None,
            token_omit_expires_in: false,
            redirect: None,
            huge_body: None,
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Answers the next requests with `script`, then behaves normally.
    pub fn scripted(script: impl IntoIterator<Item = FaultKind>) -> Self {
        Self {
            script: script.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the `Retry-After` value sent with 429.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = secs;
        self
    }

    /// Sets the fraction of 429 answers.
    pub fn with_rate_429(mut self, rate: f64) -> Self {
        self.rate_429 = rate;
        self
    }

    /// Sets the fraction of 500 answers.
    pub fn with_rate_500(mut self, rate: f64) -> Self {
        self.rate_500 = rate;
        self
    }

    /// Sets the fraction of 503 answers.
    pub fn with_rate_503(mut self, rate: f64) -> Self {
        self.rate_503 = rate;
        self
    }

    /// Sets the fraction of connection resets.
    pub fn with_rate_reset(mut self, rate: f64) -> Self {
        self.rate_reset = rate;
        self
    }

    /// Adds fixed latency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Adds a down window starting `start` after the faults are set, lasting `duration`.
    pub fn with_down(mut self, start: Duration, duration: Duration) -> Self {
        self.down.push(DownWindow {
            start_ms: u64::try_from(start.as_millis()).unwrap_or(u64::MAX),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        });
        self
    }

    /// Turns the token endpoint outage on or off.
    pub fn with_token_outage(mut self, on: bool) -> Self {
        self.token_outage = on;
        self
    }

    /// Restricts which endpoints are faulted.
    pub fn with_scope(mut self, scope: FaultScope) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the `expires_in` of successful token answers (a number or a string).
    pub fn with_token_expires_in(mut self, value: LifetimeValue) -> Self {
        self.token_expires_in = Some(value);
        self
    }

    /// Sets the `expires_on` of successful token answers (a number or a string).
    pub fn with_token_expires_on(mut self, value: LifetimeValue) -> Self {
        self.token_expires_on = Some(value);
        self
    }

    /// Leaves `expires_in` out of successful token answers.
    pub fn with_token_omit_expires_in(mut self, on: bool) -> Self {
        self.token_omit_expires_in = on;
        self
    }

    /// Redirects every request of the redirect's scope.
    pub fn with_redirect(mut self, redirect: RedirectFault) -> Self {
        self.redirect = Some(redirect);
        self
    }

    /// Answers every request of the fault's scope with a huge streamed body.
    pub fn with_huge_body(mut self, huge: HugeBodyFault) -> Self {
        self.huge_body = Some(huge);
        self
    }

    /// Applies the token lifetime overrides to a successful token answer.
    pub(crate) fn apply_token_lifetime(&self, body: &mut serde_json::Value) {
        let Some(obj) = body.as_object_mut() else {
            return;
        };
        if self.token_omit_expires_in {
            obj.remove("expires_in");
            obj.remove("ext_expires_in");
        }
        if let Some(v) = &self.token_expires_in {
            obj.insert("expires_in".to_owned(), v.to_json());
            obj.insert("ext_expires_in".to_owned(), v.to_json());
        }
        if let Some(v) = &self.token_expires_on {
            obj.insert("expires_on".to_owned(), v.to_json());
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(r) = &self.redirect {
            if !(300..=399).contains(&r.status) {
                return Err("redirect.status must be within 300..=399".to_owned());
            }
            if axum::http::HeaderValue::from_str(&r.location).is_err() {
                return Err("redirect.location is not a valid header value".to_owned());
            }
        }
        if let Some(h) = &self.huge_body
            && axum::http::StatusCode::from_u16(h.status).is_err()
        {
            return Err("huge_body.status is not an HTTP status".to_owned());
        }
        let rates = [self.rate_429, self.rate_500, self.rate_503, self.rate_reset];
        if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err("every rate must be within [0, 1]".to_owned());
        }
        if rates.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err("the rates add up to more than 1".to_owned());
        }
        Ok(())
    }
}

/// What to do with one faultable request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) kind: FaultKind,
    pub(crate) latency: Duration,
}

/// The live fault state: settings plus the seeded generator and the script position.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub(crate) faults: Faults,
    rng: StdRng,
    script_pos: usize,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        Self {
            faults,
            rng,
            script_pos: 0,
        }
    }

    pub(crate) fn applies(&self, is_token: bool) -> bool {
        self.faults.scope.covers(is_token)
    }

    /// Draws the outcome of the next faultable request.
    pub(crate) fn decide(&mut self) -> Decision {
        let f = &self.faults;
        let mut latency = Duration::from_millis(f.latency_ms);
        if f.latency_jitter_ms > 0 {
            latency += Duration::from_millis(self.rng.gen_range(0..=f.latency_jitter_ms));
        }
        if let Some(k) = f.script.get(self.script_pos) {
            self.script_pos += 1;
            return Decision { kind: *k, latency };
        }
        let any = f.rate_429 + f.rate_500 + f.rate_503 + f.rate_reset > 0.0;
        if !any {
            return Decision {
                kind: FaultKind::Pass,
                latency,
            };
        }
        let u: f64 = self.rng.r#gen();
        let table = [
            (f.rate_429, FaultKind::TooManyRequests),
            (f.rate_500, FaultKind::InternalError),
            (f.rate_503, FaultKind::Unavailable),
            (f.rate_reset, FaultKind::Reset),
        ];
        let mut edge = 0.0;
        let mut kind = FaultKind::Pass;
        for (rate, k) in table {
            edge += rate;
            if u < edge {
                kind = k;
                break;
            }
        }
        Decision { kind, latency }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: &Faults, n: usize) -> Vec<FaultKind> {
        let mut s = FaultState::new(f.clone());
        (0..n).map(|_| s.decide().kind).collect()
    }

    #[test]
    fn same_seed_same_sequence_and_rates_roughly_hold() {
        let f = Faults::default()
            .with_seed(42)
            .with_rate_429(0.25)
            .with_rate_503(0.25);
        let a = run(&f, 2000);
        assert_eq!(a, run(&f, 2000));
        let n429 = a
            .iter()
            .filter(|k| **k == FaultKind::TooManyRequests)
            .count();
        let n503 = a.iter().filter(|k| **k == FaultKind::Unavailable).count();
        assert!((400..600).contains(&n429), "{n429}");
        assert!((400..600).contains(&n503), "{n503}");
        assert!(!a.contains(&FaultKind::InternalError));
        let b = run(&f.clone().with_seed(43), 2000);
        assert_ne!(a, b);
    }

    #[test]
    fn script_comes_first() {
        let f = Faults::scripted([FaultKind::Reset, FaultKind::TooManyRequests]);
        assert_eq!(
            run(&f, 3),
            [
                FaultKind::Reset,
                FaultKind::TooManyRequests,
                FaultKind::Pass
            ]
        );
    }

    #[test]
    fn json_form() {
        let f: Faults =
            serde_json::from_str(r#"{"rate_500":1,"script":["429","pass"],"scope":"token"}"#)
                .unwrap();
        assert_eq!(f.rate_500, 1.0);
        assert_eq!(f.retry_after_secs, 1);
        assert_eq!(f.scope, FaultScope::Token);
        assert_eq!(f.script, [FaultKind::TooManyRequests, FaultKind::Pass]);
        assert!(f.validate().is_ok());
        assert!(
            Faults::default()
                .with_rate_429(0.7)
                .with_rate_500(0.7)
                .validate()
                .is_err()
        );
        assert!(serde_json::from_str::<Faults>(r#"{"bogus":1}"#).is_err());
    }
}
