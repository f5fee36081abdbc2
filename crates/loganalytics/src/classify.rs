//! Outcome classification and retry timing, as pure functions.

use std::time::{Duration, SystemTime};

/// Which API answered: their error tables differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Api {
    /// The Logs Ingestion API (DCR based).
    LogsIngestion,
    /// The legacy HTTP Data Collector API.
    DataCollector,
}

/// What to do after an answer from the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// 2xx: the rows are accepted.
    Delivered,
    /// 401: drop the cached token, fetch a new one and retry once.
    RefreshToken,
    /// 413: the body is too large; split the batch in halves and send each.
    SplitHalves,
    /// 400 `RecordsTimeRangeIsMoreThan30Minutes`: split the batch by event time.
    SplitByTime,
    /// Any other 400: the data is refused; bisect to isolate the bad rows.
    Bisect,
    /// A 400 whose code concerns the request's content as a whole, not any row in it
    /// ([`WHOLE_REQUEST_CODES`]): smaller requests would be refused alike, so every row of
    /// the request is rejected at once, without bisection.
    RejectRequest,
    /// 403, 404 and other 4xx: the endpoint, rule, stream, role or key is
    /// wrong. Surface loudly; retry only slowly.
    ConfigError,
    /// 408, 429, 5xx, timeouts, connection errors: back off and retry,
    /// waiting at least `retry_after` when the service gave one.
    Transient {
        /// The service's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
}

/// The Logs Ingestion API's error code for a batch whose rows span more
/// than 30 minutes of event time.
pub const RECORDS_TIME_RANGE_CODE: &str = "RecordsTimeRangeIsMoreThan30Minutes";

/// Logs Ingestion API 400 codes that concern the setup (API version, stream, media type,
/// content encoding), never a row: retried slowly as configuration errors, rows kept. The
/// Data Collector API's setup codes (`InvalidLogType`, `MissingContentType`, …) are
/// handled alike.
pub const SETUP_CODES: &[&str] = &[
    "MissingApiVersionParameter",
    "MissingApiVersion",
    "UnsupportedApiVersion",
    "InvalidApiVersionParameter",
    "InvalidApiVersion",
    "UnsupportedMediaType",
    "UnsupportedContentType",
    "UnsupportedContentEncoding",
];

/// Logs Ingestion API 400 codes that refuse the request's content as a whole (the body
/// cannot be decoded at all), whatever rows it holds: bisection would be refused at every
/// level, so the request's rows are rejected at once ([`Action::RejectRequest`]).
pub const WHOLE_REQUEST_CODES: &[&str] = &["InvalidContentEncoding"];

fn is_one_of(code: Option<&str>, list: &[&str]) -> bool {
    code.is_some_and(|c| list.iter().any(|x| c.eq_ignore_ascii_case(x)))
}

/// Classifies an HTTP answer.
///
/// `error_code` is the service's code (`x-ms-error-code` or `error.code`
/// of the body); `retry_after` is what [`parse_retry_after`] read from the
/// headers.
pub fn classify(
    api: Api,
    status: u16,
    error_code: Option<&str>,
    retry_after: Option<Duration>,
) -> Action {
    match status {
        200..=299 => Action::Delivered,
        401 => Action::RefreshToken,
        413 => Action::SplitHalves,
        400 => match api {
            Api::LogsIngestion => {
                if error_code.is_some_and(|c| c.eq_ignore_ascii_case(RECORDS_TIME_RANGE_CODE)) {
                    Action::SplitByTime
                } else if is_one_of(error_code, SETUP_CODES) {
                    Action::ConfigError
                } else if is_one_of(error_code, WHOLE_REQUEST_CODES) {
                    Action::RejectRequest
                } else {
                    Action::Bisect
                }
            }
            // Data Collector API return codes: only InvalidDataFormat is about
            // the data; the others (InvalidLogType, MissingContentType,
            // InvalidCustomerId, InactiveCustomer, ...) are about the setup.
            Api::DataCollector => match error_code {
                Some(c) if c.eq_ignore_ascii_case("InvalidDataFormat") => Action::Bisect,
                None => Action::Bisect,
                Some(_) => Action::ConfigError,
            },
        },
        408 | 429 | 500..=599 => Action::Transient { retry_after },
        // A redirect or an unexpected 1xx: the endpoint is not the API.
        // 403, 404, 405, ...: configuration.
        _ => Action::ConfigError,
    }
}

/// Reads a `Retry-After` value: delay-seconds (`120`, also `1.5`) or an
/// HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, taken relative to `now`;
/// a date in the past means no wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return value
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads Azure's millisecond variants (`retry-after-ms`,
/// `x-ms-retry-after-ms`).
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// How long a caller keeps retrying, and how fast.
///
/// The budget is the caller's choice: [`RetryPolicy::unbounded`] when a
/// durable spool sits behind the client (rows are never given up; a call
/// returns only when every row is delivered or rejected), or
/// [`RetryPolicy::bounded`] to get the undelivered rows back as
/// "retry later" when the time runs out.
///
/// Transient failures wait with exponential backoff and full jitter:
/// a uniform delay in `[0, min(max_delay, base_delay × 2^(attempt−1))]`;
/// when the service gave a `Retry-After`, the longer of the two (a
/// `Retry-After: 0` never makes a retry come sooner than the backoff). Configuration errors
/// (403, 404, a refused credential) wait `config_error_delay` between tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    budget: Option<Duration>,
    max_attempts: Option<u32>,
    base_delay: Duration,
    max_delay: Duration,
    config_error_delay: Duration,
}

/// The default time budget of [`RetryPolicy::default`]: 5 minutes.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(300);
/// The default backoff base: 0.8 s, azure-core's backoff factor.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(800);
/// The default backoff cap: 120 s, azure-core's maximum backoff.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(120);
/// The default wait between tries after a configuration error: 60 s.
pub const DEFAULT_CONFIG_ERROR_DELAY: Duration = Duration::from_secs(60);

impl Default for RetryPolicy {
    /// Bounded by [`DEFAULT_RETRY_BUDGET`].
    fn default() -> Self {
        Self::bounded(DEFAULT_RETRY_BUDGET)
    }
}

impl RetryPolicy {
    /// Retries for ever: for callers with a durable spool behind them.
    pub fn unbounded() -> Self {
        Self {
            budget: None,
            max_attempts: None,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            config_error_delay: DEFAULT_CONFIG_ERROR_DELAY,
        }
    }

    /// Retries until `budget` has passed since the call began; rows not
    /// delivered by then come back as "retry later".
    pub fn bounded(budget: Duration) -> Self {
        Self {
            budget: Some(budget),
            ..Self::unbounded()
        }
    }

    /// One attempt per request, no retry (splits and bisection still happen).
    pub fn no_retry() -> Self {
        Self::bounded(Duration::ZERO).max_attempts(1)
    }

    /// Also stops after this many attempts of one request.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Sets the backoff base (the first retry waits up to this long).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets the backoff cap.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the wait after a configuration error.
    pub fn config_error_delay(mut self, delay: Duration) -> Self {
        self.config_error_delay = delay;
        self
    }

    /// The time budget; `None` when unbounded.
    pub fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// The wait after a configuration error.
    pub fn config_delay(&self) -> Duration {
        self.config_error_delay
    }

    /// The ceiling of the jittered backoff before retry number `attempt`
    /// (1 for the first retry).
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
    }

    /// Full jitter: `unit` (uniform in `[0, 1)`) times the ceiling.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        self.backoff_ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Whether another try may start after `attempts` tries, `elapsed`
    /// since the call began, and a wait of `delay`.
    pub fn may_retry(&self, attempts: u32, elapsed: Duration, delay: Duration) -> bool {
        if self.max_attempts.is_some_and(|max| attempts >= max) {
            return false;
        }
        match self.budget {
            None => true,
            Some(budget) => elapsed.saturating_add(delay) <= budget,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LI: Api = Api::LogsIngestion;
    const DC: Api = Api::DataCollector;

    #[test]
    fn logs_ingestion_error_table() {
        assert_eq!(classify(LI, 204, None, None), Action::Delivered);
        assert_eq!(classify(LI, 200, None, None), Action::Delivered);
        assert_eq!(classify(LI, 401, None, None), Action::RefreshToken);
        assert_eq!(
            classify(LI, 413, Some("ContentLengthLimitExceeded"), None),
            Action::SplitHalves
        );
        assert_eq!(
            classify(LI, 400, Some(RECORDS_TIME_RANGE_CODE), None),
            Action::SplitByTime
        );
        assert_eq!(
            classify(LI, 400, Some("InvalidStream"), None),
            Action::Bisect
        );
        assert_eq!(classify(LI, 400, None, None), Action::Bisect);
        assert_eq!(
            classify(LI, 400, Some("InvalidPayload"), None),
            Action::Bisect
        );
        for code in SETUP_CODES {
            assert_eq!(
                classify(LI, 400, Some(code), None),
                Action::ConfigError,
                "{code}"
            );
        }
        assert_eq!(
            classify(LI, 400, Some("invalidcontentencoding"), None),
            Action::RejectRequest
        );
        assert_eq!(
            classify(LI, 403, Some("OperationFailed"), None),
            Action::ConfigError
        );
        assert_eq!(classify(LI, 404, None, None), Action::ConfigError);
        assert_eq!(classify(LI, 301, None, None), Action::ConfigError);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(
                classify(LI, s, None, None),
                Action::Transient { retry_after: None },
                "{s}"
            );
        }
        let ra = Some(Duration::from_secs(7));
        assert_eq!(
            classify(LI, 429, None, ra),
            Action::Transient { retry_after: ra }
        );
    }

    #[test]
    fn data_collector_error_table() {
        assert_eq!(classify(DC, 200, None, None), Action::Delivered);
        assert_eq!(
            classify(DC, 400, Some("InvalidDataFormat"), None),
            Action::Bisect
        );
        for code in [
            "InvalidLogType",
            "MissingContentType",
            "InvalidCustomerId",
            "InactiveCustomer",
        ] {
            assert_eq!(classify(DC, 400, Some(code), None), Action::ConfigError);
        }
        assert_eq!(
            classify(DC, 403, Some("InvalidAuthorization"), None),
            Action::ConfigError
        );
        assert_eq!(classify(DC, 404, None, None), Action::ConfigError);
        assert!(matches!(
            classify(DC, 503, None, None),
            Action::Transient { .. }
        ));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:09 GMT", now),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after_ms("250"),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn backoff_is_exponential_capped_and_jittered() {
        let p = RetryPolicy::unbounded()
            .base_delay(Duration::from_millis(800))
            .max_delay(Duration::from_secs(120));
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(800));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(1600));
        assert_eq!(p.backoff_ceiling(5), Duration::from_millis(12_800));
        assert_eq!(p.backoff_ceiling(9), Duration::from_secs(120));
        assert_eq!(p.backoff_ceiling(1000), Duration::from_secs(120));
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(1600));
        assert!(p.backoff(3, 0.999_999) < Duration::from_millis(3200));
    }

    #[test]
    fn budgets() {
        let unbounded = RetryPolicy::unbounded();
        assert!(unbounded.may_retry(
            1_000_000,
            Duration::from_secs(1 << 40),
            Duration::from_secs(60)
        ));
        let bounded = RetryPolicy::bounded(Duration::from_secs(10));
        assert!(bounded.may_retry(3, Duration::from_secs(5), Duration::from_secs(5)));
        assert!(!bounded.may_retry(3, Duration::from_secs(5), Duration::from_secs(6)));
        let once = RetryPolicy::no_retry();
        assert!(!once.may_retry(1, Duration::ZERO, Duration::ZERO));
        let three = RetryPolicy::unbounded().max_attempts(3);
        assert!(three.may_retry(2, Duration::ZERO, Duration::ZERO));
        assert!(!three.may_retry(3, Duration::ZERO, Duration::ZERO));
    }
}
