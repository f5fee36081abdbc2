//! The test kit's scripted webhook receiver, and small helpers.

#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use mcas_testkit::webhook::{Check, Hit, Receiver, Reply, now_unix};
use mcas_webhook::sign::Secret;

/// Polls `cond` every 20 ms; panics with `what` after `bound` (a bound on a hang, not a
/// speed assertion).
pub async fn wait_for(bound: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < bound,
            "gave up waiting for {what} after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn key(byte: u8) -> Secret {
    Secret::from_bytes(&[byte; 32]).unwrap()
}

/// A free loopback port: bound, then released (nothing listens on it afterwards).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
