//! A scripted webhook receiver on loopback (feature `webhook`). It verifies every request's
//! signature with `mcas-webhook`'s verifier, which the project checks against the
//! published Standard Webhooks and GitHub vectors and against the PyPI `standardwebhooks`
//! package; requests that do not verify are answered `401` and recorded as such.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
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
    /// Its headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
    /// When it came.
    pub at: Instant,
    /// Whether its signature verified.
    pub verified: bool,
}

impl Hit {
    /// A header's value by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer; once the script is used up, requests that verify get `200`.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status.
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
    /// Standard Webhooks, with these keys.
    Standard(Vec<Secret>),
    /// GitHub's `X-Hub-Signature-256`, with these keys.
    GitHub(Vec<Secret>),
}

struct Inner {
    check: Check,
    script: Mutex<VecDeque<Reply>>,
    hits: Mutex<Vec<Hit>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The receiver: `POST /hook` on a loopback port, until dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    lock(&inner.hits).push(Hit {
        headers: pairs,
        body: body.to_vec(),
        at: Instant::now(),
        verified,
    });
    if !verified {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let reply = lock(&inner.script)
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
    let mut resp = StatusCode::from_u16(status)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        .into_response();
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}

impl Receiver {
    /// A receiver on a free loopback port (inside a Tokio runtime).
    pub async fn start(check: Check, script: Vec<Reply>) -> io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, check, script)
    }

    /// A receiver on `addr` (one that was down comes back on its address).
    pub async fn start_on(
        addr: SocketAddr,
        check: Check,
        script: Vec<Reply>,
    ) -> io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Self::serve(listener, check, script)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        check: Check,
        script: Vec<Reply>,
    ) -> io::Result<Receiver> {
        let addr = listener.local_addr()?;
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
        Ok(Receiver { addr, inner, task })
    }

    /// The endpoint URL, with a Logic App-like `sig=` secret in the query.
    pub fn url(&self) -> String {
        format!(
            "http://{}/hook?api-version=2016-10-01&sig=TopSecretSig42",
            self.addr
        )
    }

    /// The secret in [`Receiver::url`]'s query, which must never show in logs or metrics.
    pub const URL_SECRET: &'static str = "TopSecretSig42";

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.inner.hits).clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
