//! `azure-emulator`: run the Azure token and ingestion emulator from the command line.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use mcas_azure_emulator::{
    Cloud, DEFAULT_CLIENT_ID, DEFAULT_DCR_ID, DEFAULT_TENANT_ID, DEFAULT_WORKSPACE_ID, Dcr,
    Emulator, EmulatorConfig, Storage,
};

/// A local stand-in for Entra ID, IMDS, the Logs Ingestion API and the Data Collector API.
#[derive(Debug, Parser)]
#[command(name = "azure-emulator", version)]
struct Args {
    /// Address to listen on. Loopback by default; other addresses expose the emulator's
    /// well-known test credentials to the network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for `<table>.jsonl` files. Without it rows are kept in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML (or `.json`) file adding clients, DCRs, streams and workspaces.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A data collection rule in Azure's JSON form (ARM resource or its `properties`), with
    /// `properties.immutableId`. Repeatable.
    #[arg(long = "dcr", value_name = "FILE")]
    dcrs: Vec<PathBuf>,
    /// Count rows without decoding or storing them (load tests).
    #[arg(long, conflicts_with = "data_dir")]
    count_only: bool,
    /// The cloud to stand in for: `public`, `us-government` or `china` (ingestion audience
    /// and assertion authority hosts).
    #[arg(long, default_value = "public", value_parser = parse_cloud)]
    cloud: Cloud,
    /// Access token lifetime in seconds.
    #[arg(long)]
    token_lifetime_secs: Option<u64>,
}

fn parse_cloud(s: &str) -> Result<Cloud, String> {
    match s {
        "public" => Ok(Cloud::Public),
        "us-government" => Ok(Cloud::UsGovernment),
        "china" => Ok(Cloud::China),
        other => Err(format!(
            "unknown cloud `{other}` (public, us-government, china)"
        )),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr (stdout carries the banner), coloured only when stderr is a terminal
    // and NO_COLOR is unset: a log redirected to a file must hold no escape codes.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let args = Args::parse();
    let mut config = EmulatorConfig::for_cloud(args.cloud);
    config.listen = args.listen;
    if let Some(path) = &args.config {
        config
            .apply_file(path)
            .with_context(|| format!("loading {}", path.display()))?;
    }
    for path in &args.dcrs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let dcr = Dcr::from_azure_json(&text, None)
            .with_context(|| format!("loading {}", path.display()))?;
        tracing::info!(dcr = %dcr.immutable_id, file = %path.display(), "registered DCR");
        config.dcrs.retain(|d| d.immutable_id != dcr.immutable_id);
        config.dcrs.push(dcr);
    }
    if let Some(s) = args.token_lifetime_secs {
        config.token_lifetime = std::time::Duration::from_secs(s);
    }
    config.storage = match (&args.data_dir, args.count_only) {
        (Some(dir), _) => Storage::Dir(dir.clone()),
        (None, true) => Storage::CountOnly,
        (None, false) => Storage::Memory,
    };
    if !args.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "listening beyond loopback: the emulator's built-in credentials are public"
        );
    }
    let handle = Emulator::start(config).await?;
    let base = handle.base_url();
    println!("azure-emulator listening on {base}");
    println!(
        "  token:      POST {base}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token (client {DEFAULT_CLIENT_ID})"
    );
    println!(
        "  ingestion:  POST {base}/dataCollectionRules/{DEFAULT_DCR_ID}/streams/Custom-CommonSecurityLog?api-version=2023-01-01"
    );
    println!(
        "  collector:  POST {base}/api/logs?api-version=2016-04-01 (workspace {DEFAULT_WORKSPACE_ID})"
    );
    println!("  rows:       GET  {base}/_emulator/tables/CommonSecurityLog/rows");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    handle.shutdown().await;
    Ok(())
}
