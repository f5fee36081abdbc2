//! The HTTP server: accept loop (with down windows), per-connection resets, routing, the
//! observing middleware (faults, request log) and the `/_emulator` control endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::EmulatorConfig;
use crate::faults::{FaultKind, FaultState, Faults, HugeBodyFault, RedirectFault};
use crate::http::{
    BodyBytes, ErrorCode, RowsStored, azure_error, collector_error, entra_error, with_retry_after,
};
use crate::store::{Endpoint, Metrics, RequestRecord, Store};
use crate::{collector, ingest, token};

/// State shared by every connection and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    /// HS256 key of the access tokens this emulator issues (random per start).
    pub(crate) token_key: [u8; 32],
    clock_offset_ms: AtomicI64,
    pub(crate) faults: Mutex<FaultState>,
    down_tx: watch::Sender<bool>,
    down_task: Mutex<Option<JoinHandle<()>>>,
    pub(crate) store: Store,
    pub(crate) started: Instant,
    pub(crate) collector_tables: Mutex<HashMap<String, collector::TableColumns>>,
}

impl Shared {
    /// The emulator's clock: system time plus the offset set by `advance_clock`.
    pub(crate) fn now(&self) -> SystemTime {
        let offset = self.clock_offset_ms.load(Ordering::Relaxed);
        let magnitude = Duration::from_millis(offset.unsigned_abs());
        if offset >= 0 {
            SystemTime::now() + magnitude
        } else {
            SystemTime::now()
                .checked_sub(magnitude)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }

    /// The emulator's clock in whole seconds since the Unix epoch.
    pub(crate) fn now_secs(&self) -> u64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn set_faults(self: &Arc<Self>, mut faults: Faults) {
        for r in [
            &mut faults.rate_429,
            &mut faults.rate_500,
            &mut faults.rate_503,
            &mut faults.rate_reset,
        ] {
            *r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
        }
        let windows = faults.down.clone();
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = FaultState::new(faults);
        let mut task = self.down_task.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = task.take() {
            t.abort();
        }
        self.down_tx.send_replace(false);
        if windows.is_empty() {
            return;
        }
        let tx = self.down_tx.clone();
        let base = tokio::time::Instant::now();
        let mut windows: Vec<_> = windows
            .iter()
            .map(|w| {
                let start = base + Duration::from_millis(w.start_ms);
                (start, start + Duration::from_millis(w.duration_ms))
            })
            .collect();
        windows.sort();
        *task = Some(tokio::spawn(async move {
            for (start, end) in windows {
                tokio::time::sleep_until(start).await;
                tx.send_replace(true);
                tokio::time::sleep_until(end).await;
                tx.send_replace(false);
            }
        }));
    }
}

/// Per-connection control, put into every request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct ConnCtl {
    reset: Arc<Notify>,
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The data directory could not be prepared.
    #[error("{0}")]
    Storage(String),
}

/// Entry point: [`Emulator::start`].
#[derive(Debug)]
pub struct Emulator {
    _private: (),
}

impl Emulator {
    /// Binds `config.listen` (default `127.0.0.1:0`) and serves until the handle is shut down
    /// or dropped. Must be called inside a tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, StartError> {
        let listener = bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let store = Store::new(config.storage.clone(), config.limits.request_log_capacity)
            .map_err(|e| StartError::Storage(e.to_string()))?;
        let (down_tx, down_rx) = watch::channel(false);
        let faults = config.faults.clone();
        let shared = Arc::new(Shared {
            token_key: rand::random(),
            clock_offset_ms: AtomicI64::new(0),
            faults: Mutex::new(FaultState::new(Faults::default())),
            down_tx,
            down_task: Mutex::new(None),
            store,
            started: Instant::now(),
            collector_tables: Mutex::new(HashMap::new()),
            config,
        });
        shared.set_faults(faults);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let router = router(shared.clone());
        let task = tokio::spawn(accept_loop(
            listener,
            addr,
            router,
            shared.clone(),
            down_rx,
            shutdown_rx,
        ));
        tracing::info!(%addr, "azure emulator listening");
        Ok(EmulatorHandle {
            addr,
            shared,
            shutdown_tx,
            task: Some(task),
        })
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash): the authority host, IMDS endpoint, DCE and
    /// Data Collector endpoint all at once.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{base_url}/{tenant}/oauth2/v2.0/token` for the configured tenant.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.base_url(),
            self.shared.config.tenant_id
        )
    }

    /// `{base_url}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`.
    pub fn ingestion_url(&self, dcr: &str, stream: &str) -> String {
        format!(
            "{}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01",
            self.base_url()
        )
    }

    /// Stored rows of `table` (each with an added `_IngestionTime`). Empty in counting mode.
    pub fn rows(&self, table: &str) -> Vec<Value> {
        self.shared.store.rows(table)
    }

    /// Rows accepted into `table` (stored or, in counting mode, counted).
    pub fn count(&self, table: &str) -> usize {
        usize::try_from(self.shared.store.row_count(table)).unwrap_or(usize::MAX)
    }

    /// Replaces the active faults. Rates are clamped to `[0, 1]`; down windows start counting
    /// now; the seeded generator restarts.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// The request log, oldest first (bounded by `Limits::request_log_capacity`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.store.requests()
    }

    /// Counters, as served at `/_emulator/metrics`.
    pub fn metrics(&self) -> Metrics {
        self.shared.store.metrics()
    }

    /// Moves the emulator's clock forward (token expiry, assertion times, `x-ms-date` skew,
    /// ingestion times) without waiting.
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.shared.clock_offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Sets the emulator's clock to `t` (it then runs on from there). Lets tests replay
    /// fixed-date requests such as the Data Collector signature vectors.
    pub fn set_clock(&self, t: SystemTime) {
        let now = SystemTime::now();
        let ms = match t.duration_since(now) {
            Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
        };
        self.shared.clock_offset_ms.store(ms, Ordering::Relaxed);
    }

    /// Issues an access token as the token endpoint would, for `client_id` and `resource`
    /// (e.g. `https://monitor.azure.com`), valid for the configured lifetime.
    pub fn issue_token(&self, client_id: &str, resource: &str) -> String {
        token::issue(&self.shared, client_id, resource).0
    }

    /// Stops accepting, closes connections and waits for the server task.
    pub async fn shutdown(mut self) {
        self.shutdown_tx.send_replace(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// A function that stops the server from elsewhere (e.g. a signal handler); after calling
    /// it, [`shutdown`](Self::shutdown) returns promptly.
    pub fn shutdown_sender(&self) -> impl Fn() + Send + Sync + 'static {
        let tx = self.shutdown_tx.clone();
        move || {
            tx.send_replace(true);
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.shutdown_tx.send_replace(true);
        let task = self
            .shared
            .down_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = task {
            t.abort();
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    shared: Arc<Shared>,
    mut down_rx: watch::Receiver<bool>,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let mut listener = Some(listener);
    loop {
        if *shutdown_rx.borrow() {
            break;
        }
        let down = *down_rx.borrow_and_update();
        if down {
            // Refuse connections: close the listening socket until the window ends.
            listener = None;
            tokio::select! {
                _ = shutdown_rx.changed() => {}
                _ = down_rx.changed() => {}
            }
            continue;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match rebind(addr).await {
                Some(l) => l,
                None => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown_rx.changed() => None,
            _ = down_rx.changed() => None,
            r = l.accept() => Some(r),
        };
        listener = Some(l);
        match accepted {
            Some(Ok((stream, _peer))) => {
                let conn = serve_connection(
                    stream,
                    router.clone(),
                    shared.clone(),
                    down_rx.clone(),
                    shutdown_rx.clone(),
                );
                tokio::spawn(conn);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            None => {}
        }
    }
}

async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..200 {
        match bind(addr) {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "rebinding after a down window failed; retrying");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
    tracing::error!(%addr, "could not rebind after a down window");
    None
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    shared: Arc<Shared>,
    mut down_rx: watch::Receiver<bool>,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    // Keep a second descriptor of the socket: to reset the connection we set SO_LINGER to
    // zero on it and close both descriptors, which makes the kernel send RST.
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let Ok(ctl_fd) = std_stream.try_clone() else {
        return;
    };
    let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
        return;
    };
    let reset = Arc::new(Notify::new());
    let svc = TowerToHyperService::new(router.layer(Extension(ConnCtl {
        reset: reset.clone(),
    })));
    let must_reset = {
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        let down = tokio::select! {
            _ = conn.as_mut() => return,
            _ = reset.notified() => false,
            _ = down_rx.wait_for(|d| *d) => true,
            _ = shutdown_rx.wait_for(|s| *s) => return,
        };
        if down {
            // A down window closes open connections. Let an answer being written finish (the
            // one that set the window, typically), then reset whatever is still busy.
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(Duration::from_millis(200), conn.as_mut())
                .await
                .is_err()
        } else {
            true
        }
    };
    if must_reset {
        let _ = socket2::SockRef::from(&ctl_fd).set_linger(Some(Duration::ZERO));
        shared.store.connection_reset();
    }
    drop(ctl_fd);
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token::token_endpoint))
        .route("/metadata/identity/oauth2/token", get(token::imds_endpoint))
        .route(
            "/dataCollectionRules/{dcr}/streams/{stream}",
            post(ingest::ingest_endpoint),
        )
        .route("/api/logs", post(collector::collector_endpoint))
        .route("/_emulator/tables/{table}/rows", get(control_rows))
        .route("/_emulator/tables/{table}/count", get(control_count))
        .route(
            "/_emulator/faults",
            post(control_set_faults).get(control_get_faults),
        )
        .route("/_emulator/metrics", get(control_metrics))
        .route("/_emulator/requests", get(control_requests))
        .route("/_emulator/health", get(|| async { "ok" }))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            observe,
        ))
        .with_state(shared)
}

async fn fallback() -> Response {
    azure_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "The requested path does not exist on the emulator.",
    )
}

fn classify(path: &str) -> Endpoint {
    if path.starts_with("/_emulator/") {
        Endpoint::Control
    } else if path.starts_with("/dataCollectionRules/") {
        Endpoint::LogsIngestion
    } else if path == "/api/logs" {
        Endpoint::DataCollector
    } else if path == "/metadata/identity/oauth2/token" {
        Endpoint::Imds
    } else if path.ends_with("/oauth2/v2.0/token") {
        Endpoint::Token
    } else {
        Endpoint::Other
    }
}

/// Faults, latency and the request log, around every request.
async fn observe(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let endpoint = classify(req.uri().path());
    let mut rec = RequestRecord {
        seq: sh.store.next_seq(),
        at: sh.now(),
        since_start: sh.started.elapsed(),
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        endpoint,
        status: None,
        fault: None,
        retry_after: None,
        error_code: None,
        bytes: 0,
        rows: 0,
        client_request_id: req
            .headers()
            .get("x-ms-client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let is_token = matches!(endpoint, Endpoint::Token | Endpoint::Imds);
    let faultable =
        is_token || matches!(endpoint, Endpoint::LogsIngestion | Endpoint::DataCollector);
    let mut injected = None;
    if faultable {
        let (redirect, huge) = {
            let f = sh.faults.lock().unwrap_or_else(|p| p.into_inner());
            (
                f.faults
                    .redirect
                    .clone()
                    .filter(|r| r.scope.covers(is_token)),
                f.faults
                    .huge_body
                    .clone()
                    .filter(|h| h.scope.covers(is_token)),
            )
        };
        if let Some(r) = redirect {
            injected = Some(redirect_response(&r));
        } else if let Some(h) = huge {
            injected = Some(huge_response(&sh, &h, endpoint));
        }
    }
    if faultable && injected.is_none() {
        let (decision, outage, retry_after) = {
            let mut f = sh.faults.lock().unwrap_or_else(|p| p.into_inner());
            let outage = is_token && f.faults.token_outage;
            let d = if f.applies(is_token) {
                Some(f.decide())
            } else {
                None
            };
            (d, outage, f.faults.retry_after_secs)
        };
        if let Some(d) = decision {
            if !d.latency.is_zero() {
                tokio::time::sleep(d.latency).await;
            }
            injected = fault_response(d.kind, endpoint, retry_after);
            if d.kind != FaultKind::Pass {
                rec.fault = Some(d.kind);
            }
            if d.kind == FaultKind::Reset
                && let Some(ctl) = req.extensions().get::<ConnCtl>()
            {
                sh.store.log(rec);
                ctl.reset.notify_one();
                // The connection task drops this future when it resets the socket.
                std::future::pending::<()>().await;
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
        if injected.is_none() && outage {
            let resp = if endpoint == Endpoint::Imds {
                crate::http::imds_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "The managed identity endpoint is unavailable (emulated outage).",
                )
            } else {
                entra_error(
                    Some(StatusCode::SERVICE_UNAVAILABLE),
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again (emulated outage).",
                )
            };
            injected = Some(resp);
        }
    }
    let resp = match injected {
        Some(r) => r,
        None => next.run(req).await,
    };
    rec.status = Some(resp.status().as_u16());
    rec.retry_after = resp
        .headers()
        .get(axum::http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    rec.error_code = resp.extensions().get::<ErrorCode>().map(|c| c.0.clone());
    rec.rows = resp.extensions().get::<RowsStored>().map_or(0, |r| r.0);
    rec.bytes = resp.extensions().get::<BodyBytes>().map_or(0, |r| r.0);
    tracing::debug!(
        method = %rec.method,
        path = %rec.path,
        status = rec.status,
        fault = ?rec.fault,
        error = rec.error_code.as_deref().unwrap_or(""),
        rows = rec.rows,
        "request"
    );
    sh.store.log(rec);
    resp
}

/// A redirect to the configured location, with an empty body.
fn redirect_response(r: &RedirectFault) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&r.location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.extensions_mut()
        .insert(ErrorCode("EmulatedRedirect".to_owned()));
    resp
}

/// The size of each chunk of a huge body.
const HUGE_CHUNK: usize = 64 * 1024;

/// A body of `h.bytes` bytes, produced chunk by chunk as the connection takes them.
fn huge_response(sh: &Arc<Shared>, h: &HugeBodyFault, endpoint: Endpoint) -> Response {
    let (prefix, fill): (&[u8], u8) = match endpoint {
        Endpoint::Token | Endpoint::Imds => (b"{\"access_token\":\"", b'A'),
        Endpoint::DataCollector => (b"{\"Error\":\"HugeAnswer\",\"Message\":\"", b'x'),
        _ => (b"{\"error\":{\"code\":\"HugeAnswer\",\"message\":\"", b'x'),
    };
    let total = h.bytes;
    let prefix_len = (prefix.len() as u64).min(total);
    let first = Bytes::copy_from_slice(&prefix[..usize::try_from(prefix_len).unwrap_or(0)]);
    let chunk = Bytes::from(vec![fill; HUGE_CHUNK]);
    let sh = sh.clone();
    // State: bytes still to send, and whether the prefix went out.
    let stream = futures_util::stream::unfold((total, false), move |(left, prefixed)| {
        let sh = sh.clone();
        let first = first.clone();
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let piece = if prefixed {
                let n = usize::try_from(left.min(HUGE_CHUNK as u64)).unwrap_or(HUGE_CHUNK);
                chunk.slice(..n)
            } else {
                first
            };
            let n = piece.len() as u64;
            sh.store.add_streamed(n);
            Some((Ok::<_, std::convert::Infallible>(piece), (left - n, true)))
        }
    });
    let status = StatusCode::from_u16(h.status).unwrap_or(StatusCode::OK);
    let mut resp = Response::new(axum::body::Body::from_stream(stream));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if h.content_length {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    }
    resp.extensions_mut()
        .insert(ErrorCode("HugeAnswer".to_owned()));
    resp
}

fn fault_response(kind: FaultKind, endpoint: Endpoint, retry_after: u64) -> Option<Response> {
    let token = matches!(endpoint, Endpoint::Token | Endpoint::Imds);
    let collector = endpoint == Endpoint::DataCollector;
    let (status, code, msg) = match kind {
        FaultKind::Pass | FaultKind::Reset => return None,
        FaultKind::TooManyRequests => (
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Request rate is too high (emulated). Retry after the number of seconds in Retry-After.",
        ),
        FaultKind::InternalError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            if collector {
                "UnspecifiedError"
            } else {
                "InternalServerError"
            },
            "An internal error occurred (emulated).",
        ),
        FaultKind::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is unavailable (emulated).",
        ),
    };
    let resp = if token {
        let error = match kind {
            FaultKind::TooManyRequests => "temporarily_unavailable",
            FaultKind::InternalError => "server_error",
            _ => "temporarily_unavailable",
        };
        if endpoint == Endpoint::Imds {
            crate::http::imds_error(status, error, msg)
        } else {
            entra_error(Some(status), error, 90033, msg)
        }
    } else if collector {
        collector_error(status, code, msg)
    } else {
        azure_error(status, code, msg)
    };
    Some(if kind == FaultKind::TooManyRequests {
        with_retry_after(resp, retry_after)
    } else {
        resp
    })
}

async fn control_rows(State(sh): State<Arc<Shared>>, Path(table): Path<String>) -> Response {
    Json(Value::Array(sh.store.rows(&table))).into_response()
}

async fn control_count(State(sh): State<Arc<Shared>>, Path(table): Path<String>) -> Response {
    Json(json!({ "table": table, "count": sh.store.row_count(&table) })).into_response()
}

async fn control_metrics(State(sh): State<Arc<Shared>>) -> Response {
    Json(sh.store.metrics()).into_response()
}

async fn control_requests(State(sh): State<Arc<Shared>>) -> Response {
    Json(sh.store.requests()).into_response()
}

async fn control_get_faults(State(sh): State<Arc<Shared>>) -> Response {
    let f = sh
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .faults
        .clone();
    Json(f).into_response()
}

async fn control_set_faults(
    State(sh): State<Arc<Shared>>,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return azure_error(StatusCode::BAD_REQUEST, "InvalidFaults", e.to_string()),
    };
    if let Err(e) = faults.validate() {
        return azure_error(StatusCode::BAD_REQUEST, "InvalidFaults", e);
    }
    sh.set_faults(faults.clone());
    Json(faults).into_response()
}
