//! Polling with a bound.

use std::time::{Duration, Instant};

/// How often [`wait_until`] and [`wait_until_async`] ask again.
pub const POLL: Duration = Duration::from_millis(20);

/// Calls `f` every [`POLL`] until it returns true or `timeout` passes; the result of the
/// last call (made at or after the deadline) otherwise.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    f()
}

/// [`wait_until`] for async code: sleeps on the tokio timer so that tasks on the same
/// runtime (an in-process emulator) keep running.
pub async fn wait_until_async(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_is_asked_again_until_it_holds() {
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(10), || {
            n += 1;
            n == 3
        }));
        assert_eq!(n, 3);
        assert!(!wait_until(Duration::ZERO, || false));
    }
}
