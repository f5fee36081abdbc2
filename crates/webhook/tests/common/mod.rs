//! A scripted webhook receiver on loopback, verifying signatures with the crate's verifier
//! (itself checked against the published vectors), and small helpers.

#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mcas_webhook::sign::{self, Secret, StandardHeaders};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    pub verified: bool,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    RetryAfterSecs(u16, u64),
    /// A status with `Retry-After: <HTTP date>` that many seconds after the request.
    RetryAfterDate(u16, u64),
    /// A status after holding the request that long.
    Slow(u16, Duration),
}

/// How the receiver checks signatures.
#[derive(Debug, Clone)]
pub enum Check {
    Standard(Vec<Secret>),
    GitHub(Vec<Secret>),
}

struct Inner {
    check: Check,
    script: Mutex<VecDeque<Reply>>,
    hits: Mutex<Vec<Hit>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let verified = match &inner.check {
        Check::Standard(keys) => {
            let h =
                StandardHeaders::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            sign::verify_standard(keys, &h, &body, now_unix(), sign::DEFAULT_TOLERANCE_SECS).is_ok()
        }
        Check::GitHub(keys) => {
            let sig = pairs
                .iter()
                .find(|(n, _)| n == sign::HEADER_GITHUB_SIGNATURE)
                .map_or("", |(_, v)| v.as_str());
            sign::verify_github(keys, sig, &body).is_ok()
        }
    };
    inner.hits.lock().unwrap().push(Hit {
        headers: pairs,
        body: body.to_vec(),
        at: Instant::now(),
        verified,
    });
    if !verified {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let reply = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status(200));
    let (status, retry_after) = match reply {
        Reply::Status(s) => (s, None),
        Reply::RetryAfterSecs(s, secs) => (s, Some(secs.to_string())),
        Reply::RetryAfterDate(s, secs) => (
            s,
            Some(httpdate::fmt_http_date(
                SystemTime::now() + Duration::from_secs(secs),
            )),
        ),
        Reply::Slow(s, hold) => {
            tokio::time::sleep(hold).await;
            (s, None)
        }
    };
    let mut resp = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(v) = retry_after {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_str(&v).unwrap());
    }
    resp
}

impl Receiver {
    pub async fn start(check: Check, script: Vec<Reply>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, check, script)
    }

    pub async fn start_on(addr: SocketAddr, check: Check, script: Vec<Reply>) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, check, script)
    }

    fn serve(listener: tokio::net::TcpListener, check: Check, script: Vec<Reply>) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            check,
            script: Mutex::new(script.into()),
            hits: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, inner, task }
    }

    /// The endpoint URL, with a Logic App-like `sig=` secret in the query.
    pub fn url(&self) -> String {
        format!(
            "http://{}/hook?api-version=2016-10-01&sig=TopSecretSig42",
            self.addr
        )
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.inner.hits.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

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
