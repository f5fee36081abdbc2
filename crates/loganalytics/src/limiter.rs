//! An optional client-side rate limiter for the per-DCR limits.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-minute limits to stay under, enforced with two token buckets (each
/// holding one minute's allowance, refilled continuously).
///
/// The Logs Ingestion API allows, per DCR, 12,000 requests and 2 GB per
/// minute, and answers 429 with `Retry-After` beyond that
/// ([`RateLimit::logs_ingestion_per_dcr`]). Several processes sending to
/// one DCR share the service's limit but not this limiter: give each a
/// share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Body bytes per minute (uncompressed, the stricter count).
    pub bytes_per_minute: u64,
}

impl RateLimit {
    /// The service's per-DCR limits: 12,000 requests and 2 GB a minute.
    pub fn logs_ingestion_per_dcr() -> Self {
        Self {
            requests_per_minute: 12_000,
            bytes_per_minute: 2_000_000_000,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    requests: f64,
    bytes: f64,
    at: Instant,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            state: Mutex::new(State {
                requests: f64::from(limit.requests_per_minute),
                bytes: limit.bytes_per_minute as f64,
                at: Instant::now(),
            }),
        }
    }

    /// How long to wait before a request of `bytes` may start at `now`;
    /// zero means it was admitted and the allowance was taken.
    pub(crate) fn try_acquire(&self, bytes: usize, now: Instant) -> Duration {
        let req_cap = f64::from(self.limit.requests_per_minute.max(1));
        let byte_cap = self.limit.bytes_per_minute.max(1) as f64;
        // A body larger than a minute's allowance could never pass; let it
        // through when the bucket is full rather than block for ever.
        let want_bytes = (bytes as f64).min(byte_cap);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let dt = now.saturating_duration_since(s.at).as_secs_f64();
        s.at = now.max(s.at);
        s.requests = (s.requests + dt * req_cap / 60.0).min(req_cap);
        s.bytes = (s.bytes + dt * byte_cap / 60.0).min(byte_cap);
        if s.requests >= 1.0 && s.bytes >= want_bytes {
            s.requests -= 1.0;
            s.bytes -= want_bytes;
            return Duration::ZERO;
        }
        let wait_req = ((1.0 - s.requests).max(0.0)) * 60.0 / req_cap;
        let wait_bytes = ((want_bytes - s.bytes).max(0.0)) * 60.0 / byte_cap;
        Duration::from_secs_f64(wait_req.max(wait_bytes)).max(Duration::from_millis(1))
    }

    pub(crate) async fn acquire(&self, bytes: usize) {
        loop {
            let wait = self.try_acquire(bytes, Instant::now());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bucket_refills_at_its_rate() {
        let l = Limiter::new(RateLimit {
            requests_per_minute: 60,
            bytes_per_minute: 1 << 40,
        });
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(l.try_acquire(10, t0).is_zero());
        }
        let wait = l.try_acquire(10, t0);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            l.try_acquire(10, t0 + Duration::from_millis(1001))
                .is_zero()
        );
    }

    #[test]
    fn byte_bucket_limits_volume() {
        let l = Limiter::new(RateLimit {
            requests_per_minute: 12_000,
            bytes_per_minute: 6_000_000,
        });
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(l.try_acquire(1_000_000, t0).is_zero());
        }
        // 1 MB more needs 10 s of refill.
        let wait = l.try_acquire(1_000_000, t0);
        assert!((wait.as_secs_f64() - 10.0).abs() < 0.01, "{wait:?}");
        assert!(
            l.try_acquire(1_000_000, t0 + Duration::from_secs(10))
                .is_zero()
        );
    }
}
