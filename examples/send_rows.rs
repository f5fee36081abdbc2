//! Sends two CommonSecurityLog rows through the Logs Ingestion API.
//!
//! ```text
//! cargo run -p mcas-examples --example send_rows -- \
//!     --endpoint https://my-dce.westeurope-1.ingest.monitor.azure.com \
//!     --dcr dcr-00000000000000000000000000000000 --stream Custom-CefForwarder
//! ```
//!
//! Every flag can come from the environment instead:
//! `MCAS_LA_ENDPOINT`, `MCAS_LA_DCR`, `MCAS_LA_STREAM`, `MCAS_LA_CLOUD`
//! (`public`, `usgov`, `china`). The credential is chosen from the usual
//! Azure variables: `AZURE_FEDERATED_TOKEN_FILE` (workload identity), else
//! `AZURE_CLIENT_SECRET` (client secret), else `AZURE_CLIENT_CERTIFICATE_PATH`
//! (a PEM with certificate and key), else the VM's managed identity
//! (`AZURE_CLIENT_ID` selects a user-assigned one). `AZURE_AUTHORITY_HOST`
//! and `--imds-endpoint` point at another authority or IMDS, for example the
//! emulator (`cargo run -p mcas-azure-emulator`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mcas_loganalytics::{
    AuthorityHost, ClientCertificateCredential, ClientSecretCredential, Cloud, LogsIngestionClient,
    ManagedIdentityCredential, RetryPolicy, TokenCredential, WorkloadIdentityCredential,
};

struct Args {
    endpoint: String,
    dcr: String,
    stream: String,
    cloud: Cloud,
    imds_endpoint: Option<String>,
}

fn usage() -> &'static str {
    "usage: send_rows --endpoint URL --dcr DCR_IMMUTABLE_ID --stream Custom-NAME \
     [--cloud public|usgov|china] [--imds-endpoint URL]"
}

fn parse_args() -> Result<Args, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut endpoint = env("MCAS_LA_ENDPOINT");
    let mut dcr = env("MCAS_LA_DCR");
    let mut stream = env("MCAS_LA_STREAM");
    let mut cloud = env("MCAS_LA_CLOUD");
    let mut imds_endpoint = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => endpoint = Some(value()?),
            "--dcr" => dcr = Some(value()?),
            "--stream" => stream = Some(value()?),
            "--cloud" => cloud = Some(value()?),
            "--imds-endpoint" => imds_endpoint = Some(value()?),
            "-h" | "--help" => return Err(usage().to_owned()),
            other => return Err(format!("unknown flag {other}\n{}", usage())),
        }
    }
    let cloud = match cloud.as_deref().unwrap_or("public") {
        "public" => Cloud::Public,
        "usgov" => Cloud::UsGov,
        "china" => Cloud::China,
        other => return Err(format!("unknown cloud {other} (public, usgov, china)")),
    };
    let need =
        |v: Option<String>, what: &str| v.ok_or_else(|| format!("missing {what}\n{}", usage()));
    Ok(Args {
        endpoint: need(endpoint, "--endpoint")?,
        dcr: need(dcr, "--dcr")?,
        stream: need(stream, "--stream")?,
        cloud,
        imds_endpoint,
    })
}

fn credential(args: &Args) -> Result<Arc<dyn TokenCredential>, Box<dyn std::error::Error>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let authority = match env("AZURE_AUTHORITY_HOST") {
        Some(host) => AuthorityHost::new(&host)?,
        None => AuthorityHost::from(args.cloud),
    };
    if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return Ok(Arc::new(WorkloadIdentityCredential::from_env(args.cloud)?));
    }
    let (tenant, client) = (env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID"));
    if let (Some(tenant), Some(client), Some(secret)) =
        (tenant.clone(), client.clone(), env("AZURE_CLIENT_SECRET"))
    {
        return Ok(Arc::new(ClientSecretCredential::new(
            tenant, client, secret, authority,
        )?));
    }
    if let (Some(tenant), Some(client), Some(path)) =
        (tenant, client.clone(), env("AZURE_CLIENT_CERTIFICATE_PATH"))
    {
        return Ok(Arc::new(ClientCertificateCredential::from_pem_file(
            tenant, client, path, authority,
        )?));
    }
    let mi = match client {
        Some(id) => ManagedIdentityCredential::user_assigned(id)?,
        None => ManagedIdentityCredential::system_assigned()?,
    };
    Ok(Arc::new(match &args.imds_endpoint {
        Some(url) => mi.with_endpoint(url)?,
        None => mi,
    }))
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client = LogsIngestionClient::builder(&args.endpoint, &args.dcr, &args.stream)
        .credential(credential(args)?)
        .cloud(args.cloud)
        .retry(RetryPolicy::bounded(std::time::Duration::from_secs(60)))
        .build()?;
    let now = now_rfc3339();
    let rows = [
        serde_json::json!({
            "TimeGenerated": now,
            "DeviceVendor": "Microsoft",
            "DeviceProduct": "MCAS",
            "DeviceVersion": "0.1",
            "DeviceEventClassID": "EVENT_CATEGORY_LOGIN",
            "Activity": "Log on",
            "LogSeverity": "0",
            "SourceIP": "203.0.113.7",
            "SourceUserName": "alice@contoso.com",
            "Message": "send_rows example: sign-in",
        }),
        serde_json::json!({
            "TimeGenerated": now,
            "DeviceVendor": "Microsoft",
            "DeviceProduct": "MCAS",
            "DeviceVersion": "0.1",
            "DeviceEventClassID": "ALERT_CABINET_EVENT_MATCH_AUDIT",
            "Activity": "Impossible travel activity",
            "LogSeverity": "8",
            "SourceIP": "198.51.100.23",
            "DestinationPort": 443,
            "Message": "send_rows example: alert",
        }),
    ];
    println!("POST {}", client.url());
    let report = client.send(&rows).await;
    println!(
        "delivered {} of {} rows in {} request(s)",
        report.delivered_rows,
        rows.len(),
        report.requests
    );
    for r in &report.rejected {
        println!("rejected row {}: {}", r.index, r.reason);
    }
    if let Some(later) = &report.retry_later {
        println!("{} row(s) not delivered: {}", later.rows.len(), later.error);
    }
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
