//! The admin endpoint (`[admin]`): off unless configured, on loopback by default. It serves
//! `GET /tap`, the live rows of an output, which `mcas-forward tap` prints, and
//! `POST /reload`, which `mcas-forward reload` calls.
//!
//! Kept apart from the metrics endpoint on purpose: that one is often opened to a
//! Prometheus server on the network, while this one shows event contents.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::tap::{TapError, TapRequest, Taps};

/// The admin endpoint's address for a client: an unspecified bind address is reached on
/// loopback.
fn client_addr(config: Option<&std::path::Path>, what: &str) -> anyhow::Result<SocketAddr> {
    let (cfg, source) = crate::config::Config::load(config)?;
    let Some(admin) = &cfg.admin else {
        anyhow::bail!(
            "{source} has no [admin] table: the admin endpoint is off (add `[admin]`, by default on 127.0.0.1:9102, and restart the forwarder){what}"
        );
    };
    let mut addr = admin.address;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(addr)
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// `mcas-forward reload`: ask the forwarder running with `config` to reload it, and print
/// what the reload did. Fails (status 2) when the reload failed.
pub(crate) fn reload_command(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let addr = client_addr(
        config,
        "; without it, reload with SIGHUP (`systemctl reload mcas-forward`)",
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let resp = client()?
            .post(format!("http://{addr}/reload"))
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot reach the admin endpoint on {addr} (is the forwarder running with this configuration?): {e}")
            })?;
        let ok = resp.status().is_success();
        let text = resp.text().await?;
        let body: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("the admin endpoint answered {text:?}: {e}"))?;
        println!("{}", serde_json::to_string_pretty(&body)?);
        if !ok {
            anyhow::bail!(
                "the reload failed; the running configuration stays: {}",
                body["error"].as_str().unwrap_or("unknown error")
            );
        }
        Ok(())
    })
}

/// `GET /tap` parameters.
#[derive(Debug, Deserialize)]
struct TapParams {
    /// The output to watch; the only one when absent.
    output: Option<String>,
    /// A KQL predicate on CommonSecurityLog rows.
    #[serde(rename = "where")]
    filter: Option<String>,
    limit: Option<u64>,
    #[serde(default)]
    filtered: bool,
}

/// What the endpoint serves.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) taps: Taps,
    pub(crate) reloader: std::sync::Arc<crate::reload::Reloader>,
}

/// Bind and serve until `stop`; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    state: State,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("admin.address {addr}: cannot bind: {e}"))?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        tracing::warn!(address = %local, "the admin endpoint is reachable from the network: it shows event contents to whoever connects");
    }
    let app = Router::new()
        .route("/tap", get(tap))
        .route("/reload", post(reload))
        .with_state(state);
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "admin server stopped");
        }
    });
    Ok(local)
}

async fn reload(axum::extract::State(s): axum::extract::State<State>) -> Response {
    let outcome = s.reloader.reload().await;
    let code = if outcome.error.is_none() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (code, axum::Json(outcome)).into_response()
}

async fn tap(
    axum::extract::State(s): axum::extract::State<State>,
    Query(p): Query<TapParams>,
) -> Response {
    let taps = s.taps;
    let found = match &p.output {
        Some(name) => taps.iter().find(|t| t.output() == name),
        None if taps.len() == 1 => taps.first(),
        None => None,
    };
    let Some(t) = found else {
        let names: Vec<&str> = taps.iter().map(|t| t.output()).collect();
        return (
            StatusCode::NOT_FOUND,
            format!(
                "no output {:?}; the outputs are: {}\n",
                p.output.as_deref().unwrap_or(""),
                names.join(", ")
            ),
        )
            .into_response();
    };
    let req = TapRequest {
        filter: p.filter,
        limit: p.limit,
        filtered: p.filtered,
    };
    match t.watch(&req) {
        Ok(rx) => {
            let lines = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|l| (Ok::<_, std::convert::Infallible>(l), rx))
            });
            (
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                Body::from_stream(lines),
            )
                .into_response()
        }
        Err(e @ TapError::Filter(_)) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        Err(e @ TapError::Busy) => {
            (StatusCode::TOO_MANY_REQUESTS, format!("{e}\n")).into_response()
        }
    }
}

/// `mcas-forward tap`: print the live rows of an output, from the admin endpoint of the
/// forwarder running with `config`, until the limit or until interrupted.
pub(crate) fn tap_command(
    config: Option<&std::path::Path>,
    output: Option<&str>,
    req: &TapRequest,
) -> anyhow::Result<()> {
    use std::io::Write as _;

    let addr = client_addr(config, "")?;
    let mut url = reqwest::Url::parse(&format!("http://{addr}/tap"))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(o) = output {
            q.append_pair("output", o);
        }
        if let Some(w) = &req.filter {
            q.append_pair("where", w);
        }
        if let Some(n) = req.limit {
            q.append_pair("limit", &n.to_string());
        }
        if req.filtered {
            q.append_pair("filtered", "true");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut resp = client()?
            .get(url).send().await.map_err(|e| {
            anyhow::anyhow!("cannot reach the admin endpoint on {addr} (is the forwarder running with this configuration?): {e}")
        })?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            anyhow::bail!("{status}: {}", body.trim_end());
        }
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = resp.chunk().await? {
            out.write_all(&chunk)?;
            out.flush()?;
        }
        Ok(())
    })
}
