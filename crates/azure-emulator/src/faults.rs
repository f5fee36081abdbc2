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
/// As JSON (for `POST /_emulator/faults`), every field is optional:
/// `{"seed":7,"rate_429":0.1,"retry_after_secs":2,"rate_500":0,"rate_503":0,"rate_reset":0,
///   "latency_ms":0,"latency_jitter_ms":0,"down":[{"start_ms":0,"duration_ms":500}],
///   "token_outage":false,"scope":"all","script":["429","pass","reset"]}`
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

    pub(crate) fn validate(&self) -> Result<(), String> {
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
        match self.faults.scope {
            FaultScope::All => true,
            FaultScope::Ingestion => !is_token,
            FaultScope::Token => is_token,
        }
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
