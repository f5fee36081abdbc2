//! The subcommands other than `run`: validate, map, send-test, dcr-template,
//! replay-dead-letter.

use std::io::{BufRead as _, Write as _};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::batch::{Buffers, Route};
use crate::config::{Config, OutputKind};
use crate::deadletter::{DeadLetter, EntryIn};
use crate::metrics::Metrics;
use crate::output::Destination;
use crate::output::{CheckResult, Sent};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// `validate`: check the file, and build the output as `run` does (without contacting it);
/// online, also fetch a token and send an empty batch. Nothing is reported OK before every
/// check has passed, and each failure names the key to look at.
pub(crate) fn validate(config: Option<&Path>, offline: bool) -> anyhow::Result<()> {
    let (cfg, source) = Config::load(config)?;
    let mut notes = Vec::new();
    for (i, l) in cfg.listen.iter().enumerate() {
        if l.protocol.is_tls() {
            crate::tls::acceptor(l).with_context(|| {
                format!(
                    "listen[{i}] ({} {}): cert, key or client_ca",
                    l.protocol, l.address
                )
            })?;
        }
        // A shipper's connection string, read as `run` reads it at start. Offline (the
        // secret given only to the service) its absence is a note, as an output's is.
        if l.protocol == crate::config::Protocol::Kafka {
            let client = l.kafka().client;
            if client.sasl == Some(crate::config::Sasl::Plain)
                && let Err(e) = client.connection_string(&format!("listen[{i}]"))
            {
                if !offline {
                    return Err(e);
                }
                notes.push(format!(
                    "  listen[{i}] connection string: not available ({e:#}); `run` and `validate` online need it"
                ));
            }
        }
    }
    let dead_letter = cfg.dead_letter_path()?;
    let mut lines = Vec::new();
    let placeholders = cfg.with_placeholder_secrets();
    for (o, with_placeholders) in cfg.outputs.iter().zip(&placeholders.outputs) {
        let label = match &o.name {
            Some(n) => format!("output {n}"),
            None => "output".to_owned(),
        };
        let (what, spool) = validate_output(o, with_placeholders, offline, &mut notes)
            .with_context(|| format!("{label} ({})", o.name()))?;
        lines.push(format!("  {label}: {what}"));
        if spool {
            let s = cfg.spool_dir_of(o)?;
            let label = label.replacen("output", "spool", 1);
            lines.push(format!("  {label}: {}", s.display()));
        }
    }
    println!("{source}: configuration OK");
    for l in &cfg.listen {
        println!("  listen {} {}", l.protocol, l.place());
    }
    for l in lines {
        println!("{l}");
    }
    println!("  dead-letter: {}", dead_letter.display());
    for n in notes {
        println!("{n}");
    }
    Ok(())
}

/// `validate` for one output: build it as `run` does (a network output with placeholder
/// secrets, when its own are not there); online, also check it. Returns what it is, and
/// whether it has a spool.
fn validate_output(
    o: &crate::config::OutputConfig,
    with_placeholders: &crate::config::OutputConfig,
    offline: bool,
    notes: &mut Vec<String>,
) -> anyhow::Result<(String, bool)> {
    if !o.kind.is_network() {
        // Built by `run` only: building a file output creates its file.
        let what = match &o.kind {
            OutputKind::File(f) => format!(
                "file {}",
                f.path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            _ => "stdout (JSON lines)".to_owned(),
        };
        return Ok((what, false));
    }
    let rt = runtime()?;
    let _enter = rt.enter();
    // The output as `run` builds it: URLs, ids, names, certificate files, credential
    // settings. Without its secret (not there yet, or given only to the service), a
    // placeholder stands in: only the commands that talk to Azure need the secret.
    let secret = match &o.kind {
        OutputKind::LogsIngestion(c) => c
            .auth
            .as_ref()
            .filter(|a| a.kind == crate::config::AuthKind::ClientSecret)
            .and_then(|a| a.resolve_client_secret().err()),
        OutputKind::DataCollector(c) => c.resolve_shared_key().err(),
        OutputKind::Kafka(c) => match c.client.sasl {
            Some(crate::config::Sasl::Plain) => c.client.connection_string("output").err(),
            _ => None,
        },
        OutputKind::Stdout(_) | OutputKind::File(_) => None,
    };
    let dest = crate::output::build(with_placeholders, Arc::new(Metrics::default()))?;
    if let Some(e) = &secret {
        if !offline {
            return Err(anyhow::anyhow!("{e:#}"));
        }
        let whose = match &o.name {
            Some(n) => format!("secret of {n}"),
            None => "secret".to_owned(),
        };
        notes.push(format!(
            "  {whose}: not available ({e:#}); `run`, `validate` online and `replay-dead-letter` need it"
        ));
    }
    if !offline {
        notes.push(rt.block_on(check_online(o))?);
    }
    Ok((dest.describe(), true))
}

/// The online part of `validate`: a token, then an empty batch. Returns the line to print.
async fn check_online(o: &crate::config::OutputConfig) -> anyhow::Result<String> {
    let dest = crate::output::build(o, Arc::new(Metrics::default()))?;
    let r = tokio::time::timeout(Duration::from_secs(60), dest.check())
        .await
        .map_err(|_| anyhow::anyhow!("output.endpoint: the output did not answer within 60 s: check the endpoint URL and the network path (proxy, firewall, private link)"))?
        .context("output.endpoint")?;
    match r {
        CheckResult::Skipped => {
            Ok("  output check: skipped (only the Logs Ingestion output has a check)".to_owned())
        }
        CheckResult::Token(e) => Err(anyhow::anyhow!(
            "{}",
            advice(None, &e.to_string(), e.is_auth())
        )),
        CheckResult::Status(s, _) if (200..300).contains(&s) => Ok(format!(
            "  output check: token acquired, empty batch accepted (HTTP {s})"
        )),
        CheckResult::Status(s, body) => Err(anyhow::anyhow!("{}", advice(Some(s), &body, false))),
    }
}

/// Plain advice for the usual failures of a first set-up, starting with the key to check.
fn advice(status: Option<u16>, detail: &str, auth: bool) -> String {
    let what = match status {
        Some(400) => {
            "output.stream: 400 Bad Request: the stream exists but the request does not match it. Check output.stream (it must be the DCR's input stream, \"Custom-...\") and that the DCR declares the columns (see `mcas-forward dcr-template`)."
        }
        Some(401) => {
            "output.auth.cloud: 401 Unauthorized: the token was refused. Check output.auth.cloud (and authority_host/scope): a token for one cloud is not valid in another; check tenant_id and client_id."
        }
        Some(403) => {
            "output.auth.client_id: 403 Forbidden: the identity has no right to ingest into this DCR. Assign the \"Monitoring Metrics Publisher\" role on the DCR to the app or managed identity; a new assignment can take up to 30 minutes to apply."
        }
        Some(404) => {
            "output.dcr_immutable_id: 404 Not Found: wrong DCR id, stream or endpoint. Check output.dcr_immutable_id (the DCR's immutableId, \"dcr-...\"), output.stream, and that output.endpoint is the DCR's logsIngestion endpoint (or its DCE) in the same region and cloud."
        }
        Some(413) => {
            "output.endpoint: 413: the request was too large; this should not happen for an empty batch: check that the endpoint is a Logs Ingestion endpoint."
        }
        None if auth => {
            "output.auth: authentication failed: the token endpoint refused the credentials. Check tenant_id, client_id, the secret or certificate, and output.auth.cloud / authority_host."
        }
        None => {
            "output.auth: no token: the token endpoint could not be reached or failed. Check output.auth (cloud, authority_host, imds_endpoint) and the network path."
        }
        Some(_) => "output.endpoint: the output answered with an unexpected status.",
    };
    let status = status.map(|s| format!("HTTP {s}: ")).unwrap_or_default();
    format!("{what}\n  (detail: {status}{})", detail.trim())
}

/// `map`: one JSON row per input line.
pub(crate) fn map(
    config: Option<&Path>,
    file: Option<&Path>,
    received_at: Option<jiff::Timestamp>,
    peer: IpAddr,
) -> anyhow::Result<()> {
    let (cfg, _) = Config::load(config)?;
    let metrics = Arc::new(Metrics::default());
    let router = crate::route::from_config(&cfg, metrics)?;
    let mut parser = mcas_syslog::ParserConfig::new();
    if let Some(tz) = cfg.listen.first().and_then(|l| l.timezone.as_deref()) {
        parser.default_zone(crate::config::parse_timezone(tz)?);
    }
    let input: Box<dyn std::io::BufRead> = match file {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bufs = Buffers::with_capacity(64 * 1024, router.outputs());
    let names: Vec<&str> = cfg.outputs.iter().map(|o| o.name()).collect();
    let mut line = Vec::new();
    let mut input = input;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let data = strip_eol(&line);
        if data.is_empty() {
            continue;
        }
        let now = received_at.unwrap_or_else(jiff::Timestamp::now);
        match router.map_into(&parser, data, peer, now, &mut bufs) {
            // The row of each output that takes it; none for a row a transformation drops.
            Ok(()) => {
                for (i, name) in names.iter().enumerate() {
                    let Some(&crate::route::Fate::Appended(route)) = bufs.fates().get(i) else {
                        continue;
                    };
                    let Some(b) = bufs.take(i, route) else {
                        continue;
                    };
                    if names.len() == 1 {
                        out.write_all(&b.data)?;
                    } else {
                        // Several outputs: say whose row it is.
                        out.write_all(b"{\"output\":")?;
                        serde_json::to_writer(&mut out, name)?;
                        out.write_all(b",\"row\":")?;
                        out.write_all(strip_eol(&b.data))?;
                        out.write_all(b"}\n")?;
                    }
                }
            }
            Err(reason) => {
                serde_json::to_writer(&mut out, &serde_json::json!({ "dead_letter": reason }))?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn strip_eol(l: &[u8]) -> &[u8] {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Sample MCAS events (activity and alert shapes from the SIEM agent's documented output),
/// stamped with the current time and a unique id so each test run can be found.
pub(crate) fn sample_events(count: u64, now: jiff::Timestamp, host: &str) -> Vec<String> {
    let ms = now.as_millisecond();
    let iso = now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
    let run = ms;
    (0..count)
        .map(|i| {
            let id = format!("mcas-forward-test-{run}-{i}");
            if i % 2 == 0 {
                format!(
                    "<134>{iso} {host} CEF:0|MCAS|SIEM_Agent|0.112.68|EVENT_CATEGORY_LOGIN|Log on|0|externalId={id} rt={ms} start={ms} end={ms} msg=Log on suser=admin@contoso.com destinationServiceName=Microsoft Exchange Online dvc=13.82.149.151 requestClientApplication=Mozilla/5.0 (Windows NT 10.0; Win64; x64) cs1Label=portalURL cs1=https://contoso.portal.cloudappsecurity.com/#/audits?activity.id\\=eq({id},) cs2Label=uniqueServiceAppIds cs2=APPID_OUTLOOK cs3Label=targetObjects cs3=admin@contoso.com cs4Label=policyIDs cs4= c6a1Label=\"Device IPv6 Address\" c6a1="
                )
            } else {
                format!(
                    "<131>{iso} {host} CEF:0|MCAS|SIEM_Agent|0.112.68|ALERT_CABINET_EVENT_MATCH_AUDIT|mcas-forward test policy|3|externalId={id} start={ms} end={ms} msg=Activity policy ''mcas-forward test policy'' was triggered by ''admin@contoso.com'' suser=admin@contoso.com destinationServiceName=Microsoft 365 cn1Label=riskScore cn1= cs1Label=portalURL cs1=https://contoso.portal.cloudappsecurity.com/#/alerts/{id} cs2Label=uniqueServiceAppIds cs2=APPID_O365 cs3Label=relatedAudits cs3={id} cs4Label=policyIDs cs4="
                )
            }
        })
        .collect()
}

/// `send-test`: send sample events to a listener.
pub(crate) fn send_test(to: &str, count: u64, framing: &str) -> anyhow::Result<()> {
    let (scheme, addr) = to
        .split_once("://")
        .with_context(|| format!("--to {to:?}: expected tcp://HOST:PORT or udp://HOST:PORT"))?;
    let octet = match framing {
        "lf" => false,
        "octet-counting" => true,
        other => bail!("--framing {other:?}: expected lf or octet-counting"),
    };
    let host = crate::route::collector_host_name();
    let events = sample_events(count, jiff::Timestamp::now(), &host);
    match scheme {
        "tcp" => {
            let mut s = std::net::TcpStream::connect(addr)
                .with_context(|| format!("cannot connect to {addr}"))?;
            let mut buf = Vec::new();
            for e in &events {
                if octet {
                    buf.extend_from_slice(format!("{} ", e.len()).as_bytes());
                    buf.extend_from_slice(e.as_bytes());
                } else {
                    buf.extend_from_slice(e.as_bytes());
                    buf.push(b'\n');
                }
            }
            s.write_all(&buf)?;
            s.flush()?;
        }
        "udp" => {
            let s = std::net::UdpSocket::bind(if addr.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            })?;
            s.connect(addr)
                .with_context(|| format!("cannot resolve {addr}"))?;
            for e in &events {
                s.send(e.as_bytes())?;
            }
        }
        other => bail!("--to: unknown scheme {other:?}: expected tcp or udp"),
    }
    let first = events
        .first()
        .and_then(|e| e.split("externalId=").nth(1))
        .and_then(|r| r.split(' ').next())
        .unwrap_or("");
    let prefix = first.rsplit_once('-').map_or(first, |(p, _)| p);
    println!("sent {} sample MCAS events to {to}", events.len());
    println!(
        "check with KQL: CommonSecurityLog | where DeviceVendor == \"MCAS\" and ExtID startswith \"{prefix}\""
    );
    Ok(())
}

/// `dcr-template`: an ARM template for the DCR of one output (`--output`, else the only
/// one), with its stream(s). The declared columns are those the forwarder sends: the
/// output's transformation's output columns when it has one, else the table's.
pub(crate) fn dcr_template(
    config: Option<&Path>,
    output: Option<&str>,
    stream: Option<&str>,
) -> anyhow::Result<()> {
    let (cfg, _) = Config::load(config)?;
    let o = &cfg.outputs[cfg.output_index(output, "")?];
    let stream = stream
        .map(str::to_owned)
        .unwrap_or_else(|| o.dcr_stream().to_owned());
    if !stream.starts_with("Custom-") {
        bail!("--stream {stream:?}: a DCR input stream must begin with \"Custom-\"");
    }
    let transform = cfg.queries(o)?.transform;
    let sent = |table: crate::config::Table| -> Vec<(String, String)> {
        match &transform {
            Some(q) if o.table == table => q
                .output_schema()
                .iter()
                .map(|(n, t)| (n.clone(), dcr_type(*t).to_owned()))
                .collect(),
            _ => match table {
                crate::config::Table::CommonSecurityLog => {
                    mcas_csl::columns_with(&cfg.mapping.rules)
                        .into_iter()
                        .map(|(n, t)| (n, t.as_azure_str().to_owned()))
                        .collect()
                }
                crate::config::Table::Syslog => syslog_columns(),
                crate::config::Table::Alerts => alert_columns(),
            },
        }
    };
    let t = match o.table {
        crate::config::Table::CommonSecurityLog => template(
            Some((&stream, sent(crate::config::Table::CommonSecurityLog))),
            o.syslog_stream
                .as_deref()
                .map(|s| (s, sent(crate::config::Table::Syslog))),
            None,
        ),
        crate::config::Table::Syslog => template(
            None,
            Some((&stream, sent(crate::config::Table::Syslog))),
            None,
        ),
        crate::config::Table::Alerts => return alerts_template(Some(&stream)),
    };
    println!("{}", serde_json::to_string_pretty(&t)?);
    Ok(())
}

/// `dcr-template --alerts`: the custom table `MCASForwardAlerts_CL` (or the one `--stream`
/// names, `Custom-NAME_CL`) and the DCR that feeds it, for the alert rows of the alert
/// rules (what a `table = "alerts"` output sends).
pub(crate) fn alerts_template(stream: Option<&str>) -> anyhow::Result<()> {
    let stream = stream.unwrap_or(crate::config::DEFAULT_ALERT_STREAM);
    if !stream.starts_with("Custom-") || !stream.ends_with("_CL") {
        bail!(
            "--stream {stream:?}: an alert stream is \"Custom-\" followed by a custom table name ending in \"_CL\""
        );
    }
    let t = template(None, None, Some((stream, alert_columns())));
    println!("{}", serde_json::to_string_pretty(&t)?);
    Ok(())
}

/// The DCR column type of a Kusto type (DCR stream declarations know string, int, long,
/// real, boolean, datetime and dynamic; a timespan or guid travels as a string).
fn dcr_type(t: mcas_kql::Type) -> &'static str {
    use mcas_kql::Type as T;
    match t {
        T::Bool => "boolean",
        T::Int => "int",
        T::Long => "long",
        T::Real | T::Decimal => "real",
        T::DateTime => "datetime",
        T::Dynamic => "dynamic",
        // String, timespan, guid, and any type a later version adds.
        _ => "string",
    }
}

/// The alert rows' columns (shaped like `SecurityAlert`) with their DCR types.
pub(crate) fn alert_columns() -> Vec<(String, String)> {
    mcas_rules::ALERT_COLUMNS
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect()
}

/// The Syslog table's columns with their DCR types.
fn syslog_columns() -> Vec<(String, String)> {
    mcas_csl::syslog_columns()
        .iter()
        .map(|(n, t)| ((*n).to_owned(), t.as_azure_str().to_owned()))
        .collect()
}

fn columns_json(cols: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Array(
        cols.iter()
            .map(|(n, t)| serde_json::json!({ "name": n, "type": t }))
            .collect(),
    )
}

/// The ARM template: a pure function of the CommonSecurityLog, Syslog and alert input
/// streams, each with the columns it declares. An alert stream `Custom-NAME` flows into the
/// custom table `NAME` (which must end in `_CL`), created by the template with the same
/// columns.
pub(crate) fn template(
    csl: Option<(&str, Vec<(String, String)>)>,
    syslog: Option<(&str, Vec<(String, String)>)>,
    alert: Option<(&str, Vec<(String, String)>)>,
) -> serde_json::Value {
    let mut decls = serde_json::Map::new();
    let mut flows = Vec::new();
    let mut tables = Vec::new();
    let alert_table = alert.as_ref().map(|(s, cols)| {
        (
            s.strip_prefix("Custom-").unwrap_or(s).to_owned(),
            cols.clone(),
        )
    });
    let alert_out = alert_table.as_ref().map(|(t, _)| format!("Custom-{t}"));
    for (input, out) in [
        (csl, "Microsoft-CommonSecurityLog"),
        (syslog, "Microsoft-Syslog"),
        (alert, alert_out.as_deref().unwrap_or_default()),
    ] {
        let Some((stream, cols)) = input else {
            continue;
        };
        decls.insert(
            stream.to_owned(),
            serde_json::json!({ "columns": columns_json(&cols) }),
        );
        flows.push(serde_json::json!({
            "streams": [stream],
            "destinations": ["workspace"],
            "transformKql": "source",
            "outputStream": out,
        }));
    }
    let dcr = "[resourceId('Microsoft.Insights/dataCollectionRules', parameters('dataCollectionRuleName'))]";
    let mut depends = Vec::new();
    if let Some((table, cols)) = &alert_table {
        // The custom table, in the workspace named by the last segment of its resource id.
        let name =
            format!("[concat(last(split(parameters('workspaceResourceId'), '/')), '/{table}')]");
        depends.push(format!(
            "[resourceId('Microsoft.OperationalInsights/workspaces/tables', last(split(parameters('workspaceResourceId'), '/')), '{table}')]"
        ));
        tables.push(serde_json::json!({
            "type": "Microsoft.OperationalInsights/workspaces/tables",
            "apiVersion": "2022-10-01",
            "name": name,
            "properties": {
                "schema": { "name": table, "columns": columns_json(cols) },
                "retentionInDays": 90
            }
        }));
    }
    let mut resources = tables;
    resources.push(serde_json::json!({
        "type": "Microsoft.Insights/dataCollectionRules",
        "apiVersion": "2023-03-11",
        "name": "[parameters('dataCollectionRuleName')]",
        "location": "[parameters('location')]",
        "kind": "Direct",
        "dependsOn": depends,
        "properties": {
            "streamDeclarations": decls,
            "destinations": { "logAnalytics": [{ "name": "workspace", "workspaceResourceId": "[parameters('workspaceResourceId')]" }] },
            "dataFlows": flows
        }
    }));
    serde_json::json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "dataCollectionRuleName": { "type": "string", "defaultValue": "mcas-forward" },
            "location": { "type": "string", "defaultValue": "[resourceGroup().location]" },
            "workspaceResourceId": { "type": "string", "metadata": { "description": "Resource id of the Log Analytics workspace (with Microsoft Sentinel)." } }
        },
        "resources": resources,
        "outputs": {
            "dcrImmutableId": { "type": "string", "value": format!("[reference({}).immutableId]", &dcr[1..dcr.len() - 1]) },
            "logsIngestionEndpoint": { "type": "string", "value": format!("[reference({}).endpoints.logsIngestion]", &dcr[1..dcr.len() - 1]) }
        }
    })
}

/// Longest dead-letter line `replay-dead-letter` reads into memory (a 16 MiB message, the
/// largest a listener takes, with room for JSON escaping). A longer line is copied aside as
/// it is, piece by piece, and counted.
pub(crate) const REPLAY_MAX_LINE: usize = 32 << 20;

/// `replay-dead-letter`: send dead-lettered rows again, and re-route dead-lettered messages
/// (for example after setting `output.syslog_stream`). What fails again is dead-lettered
/// again, in a fresh file, with its first reason. The file is read line by line: memory
/// stays bounded by one line and one batch per stream, whatever the file's size.
pub(crate) fn replay_dead_letter(
    config: Option<&Path>,
    file: Option<&Path>,
    output: Option<&str>,
) -> anyhow::Result<()> {
    let (cfg, _) = Config::load(config)?;
    let target = cfg.output_index(
        output,
        " to replay to (rows that other outputs take are written back, to be replayed to them)",
    )?;
    crate::run::init_logging(&cfg);
    let path = match file {
        Some(f) => f.to_owned(),
        None => cfg.dead_letter_path()?,
    };
    if !path.exists() {
        println!("{}: no dead-letter file, nothing to replay", path.display());
        return Ok(());
    }
    let metrics = Arc::new(Metrics::default());
    let router = crate::route::from_config(&cfg, metrics.clone())?;
    // Build the output (and its credential) before touching the file.
    let rt = runtime()?;
    let dest = {
        let _enter = rt.enter();
        crate::output::build(&cfg.outputs[target], metrics.clone())?
    };
    let csl_name = dest.stream_name(Route::Csl).unwrap_or_default().to_owned();
    let syslog_name = dest.stream_name(Route::Syslog).map(str::to_owned);
    let mut output = DestinationReplay { dest, rt };
    // Move the file aside first, so rows that fail again start a new dead-letter file.
    let stamp = jiff::Timestamp::now().as_millisecond();
    let taken = path.with_extension(format!("replaying-{stamp}"));
    std::fs::rename(&path, &taken)
        .with_context(|| format!("cannot move {} aside", path.display()))?;
    let dead = DeadLetter::with_limits(
        cfg.dead_letter_path()?,
        cfg.dead_letter_limits(),
        metrics.clone(),
    );
    let aside = path.with_extension(format!("overlong-{stamp}.ndjson"));
    let input =
        std::fs::File::open(&taken).with_context(|| format!("cannot open {}", taken.display()))?;
    let mut replay = Replay {
        router: &router,
        target,
        names: cfg.outputs.iter().map(|o| o.name().to_owned()).collect(),
        parser: mcas_syslog::ParserConfig::new(),
        csl_name,
        syslog_name,
        dead: &dead,
        output: &mut output,
        limits: ReplayLimits {
            max_line: REPLAY_MAX_LINE,
            batch_rows: cfg.pipeline.batch_max_rows,
            batch_bytes: usize::try_from(cfg.pipeline.batch_max_bytes.0).unwrap_or(usize::MAX),
        },
        aside: Aside::new(aside),
        pending: Vec::new(),
        counts: ReplayCounts::default(),
    };
    // A running forwarder may append to the file in the instant of the rename: reading the
    // same open file on to its end carries that over too.
    replay.run(std::io::BufReader::with_capacity(64 * 1024, input))?;
    let counts = replay.counts;
    let aside_path = replay.aside.used().map(Path::to_owned);
    dead.flush();
    let written = metrics
        .dead_lettered
        .load(std::sync::atomic::Ordering::Relaxed);
    let want = counts.again + counts.malformed;
    if written != want {
        bail!(
            "only {written} of {want} entries could be written back to {}: {} is kept, replay it again once the cause is fixed (rows delivered meanwhile may then be sent twice)",
            dead.path().display(),
            taken.display()
        );
    }
    std::fs::remove_file(&taken).with_context(|| format!("cannot remove {}", taken.display()))?;
    println!(
        "replayed {} dead-letter entries: {} rows delivered, {} dead-lettered again, {} unreadable and {} over-long lines skipped (kept as they were)",
        counts.entries, counts.sent, counts.again, counts.malformed, counts.overlong
    );
    if counts.again > 0 || counts.malformed > 0 {
        println!("what failed again is in {}", dead.path().display());
    }
    if let Some(p) = aside_path {
        println!("over-long lines are in {}", p.display());
    }
    Ok(())
}

/// Where `replay-dead-letter` sends rows.
pub(crate) trait ReplayOutput {
    /// Whether rows of `stream` can be sent here.
    fn accepts(&self, stream: &str) -> bool;
    /// Send NDJSON rows of `stream`; every row ends delivered, rejected or to retry.
    fn send(&mut self, stream: &str, ndjson: &[u8], rows: usize) -> anyhow::Result<Sent>;
}

/// The configured output, for a replay. A local output (stdout, file) takes every row.
struct DestinationReplay {
    dest: Arc<dyn Destination>,
    rt: tokio::runtime::Runtime,
}

impl ReplayOutput for DestinationReplay {
    fn accepts(&self, stream: &str) -> bool {
        !self.dest.spooled() || crate::output::route_of(self.dest.as_ref(), stream).is_some()
    }

    fn send(&mut self, stream: &str, ndjson: &[u8], rows: usize) -> anyhow::Result<Sent> {
        let route = match crate::output::route_of(self.dest.as_ref(), stream) {
            Some(r) => r,
            None if !self.dest.spooled() => Route::Csl,
            None => bail!("stream {stream} is not configured"),
        };
        self.rt.block_on(self.dest.send(route, ndjson, rows))
    }
}

/// The bounds of a replay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayLimits {
    /// Longest line read into memory.
    pub(crate) max_line: usize,
    /// Rows held before the pending batches are sent.
    pub(crate) batch_rows: usize,
    /// Bytes held before the pending batches are sent.
    pub(crate) batch_bytes: usize,
}

/// What a replay did. Every entry read is counted once: delivered (`sent`, in rows: an
/// entry is one row), dead-lettered again, or skipped (malformed or over-long).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayCounts {
    /// Non-empty lines read.
    pub(crate) entries: u64,
    /// Rows delivered.
    pub(crate) sent: u64,
    /// Entries written to the fresh dead-letter file with their first reason.
    pub(crate) again: u64,
    /// Lines that are not a dead-letter entry: written back as they were.
    pub(crate) malformed: u64,
    /// Lines over the length limit: copied aside as they were.
    pub(crate) overlong: u64,
    /// The most bytes held in pending batches at once.
    pub(crate) peak_pending: usize,
    /// The longest line held in memory.
    pub(crate) peak_line: usize,
    /// Sends made.
    pub(crate) sends: u64,
}

/// The first reason and time of a pending row.
#[derive(Debug)]
struct Origin {
    time: Option<jiff::Timestamp>,
    reason: Option<String>,
    len: usize,
}

/// Rows waiting to be sent to one stream.
#[derive(Debug)]
struct Pending {
    stream: String,
    data: Vec<u8>,
    origins: Vec<Origin>,
}

/// The file for over-long lines, created at the first one.
#[derive(Debug)]
struct Aside {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl Aside {
    fn new(path: std::path::PathBuf) -> Aside {
        Aside { path, file: None }
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let f = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .with_context(|| format!("cannot create {}", self.path.display()))?,
            ),
        };
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn used(&self) -> Option<&Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }
}

/// How a line was read.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// No more input.
    Eof,
    /// A line (without its newline) is in the buffer.
    Line,
    /// The line was longer than the limit: it went to the `aside` writer as it was.
    TooLong,
}

/// Read one line into `buf` (cleared first), holding at most `max` bytes; the bytes of a
/// longer line are handed to `aside` as they come, newline included, and the rest of it is
/// read through without being kept.
fn read_line_limited(
    r: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    max: usize,
    aside: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            if too_long {
                aside(b"\n")?;
                return Ok(LineRead::TooLong);
            }
            return Ok(if any { LineRead::Line } else { LineRead::Eof });
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        let used = part.len() + usize::from(done);
        if !too_long && buf.len() + part.len() > max {
            too_long = true;
            aside(buf)?;
            buf.clear();
        }
        if too_long {
            aside(part)?;
        } else {
            buf.extend_from_slice(part);
        }
        r.consume(used);
        if done {
            if too_long {
                aside(b"\n")?;
                return Ok(LineRead::TooLong);
            }
            return Ok(LineRead::Line);
        }
    }
}

/// One replay: its configuration, its output and what it holds.
struct Replay<'a> {
    router: &'a crate::route::Router,
    /// The output replayed to (its index).
    target: usize,
    /// Every output's name, by index.
    names: Vec<String>,
    parser: mcas_syslog::ParserConfig,
    csl_name: String,
    syslog_name: Option<String>,
    dead: &'a DeadLetter,
    output: &'a mut dyn ReplayOutput,
    limits: ReplayLimits,
    aside: Aside,
    pending: Vec<Pending>,
    counts: ReplayCounts,
}

impl Replay<'_> {
    /// Read `input` to its end, sending as batches fill, then send what is left; read on
    /// while the input still grows.
    fn run(&mut self, mut input: impl std::io::BufRead) -> anyhow::Result<()> {
        let mut line = Vec::new();
        let mut bufs = Buffers::with_capacity(64 * 1024, self.router.outputs());
        loop {
            let mut read_any = false;
            loop {
                let aside = &mut self.aside;
                let got =
                    read_line_limited(&mut input, &mut line, self.limits.max_line, &mut |b| {
                        aside.write(b)
                    })?;
                match got {
                    LineRead::Eof => break,
                    LineRead::TooLong => {
                        read_any = true;
                        self.counts.entries += 1;
                        self.counts.overlong += 1;
                        tracing::warn!(
                            limit = self.limits.max_line,
                            file = %self.aside.path.display(),
                            "a dead-letter line is longer than the limit: skipped and copied aside as it was"
                        );
                    }
                    LineRead::Line => {
                        read_any = true;
                        self.counts.peak_line = self.counts.peak_line.max(line.len());
                        let l = strip_eol(&line);
                        if l.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        self.counts.entries += 1;
                        self.entry(l, &mut bufs)?;
                    }
                }
            }
            self.flush()?;
            if !read_any {
                return Ok(());
            }
        }
    }

    /// One dead-letter line.
    fn entry(&mut self, line: &[u8], bufs: &mut Buffers) -> anyhow::Result<()> {
        let e = match serde_json::from_slice::<EntryIn>(line) {
            Ok(e) if e.row.is_some() || e.raw.is_some() => e,
            _ => {
                // Never lose an entry we cannot read: it goes back as it was.
                let mut l = line.to_vec();
                l.push(b'\n');
                self.dead.write_lines(&l, 1);
                self.counts.malformed += 1;
                return Ok(());
            }
        };
        if let Some(row) = &e.row {
            let stream = e.stream.clone().unwrap_or_else(|| self.csl_name.clone());
            return self.push(&stream, row.get().as_bytes(), e.time, e.reason);
        }
        let Some(raw) = e.raw.as_deref() else {
            return Ok(());
        };
        let when = e.time.unwrap_or_else(jiff::Timestamp::now);
        let peer = e.peer.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        match self
            .router
            .map_into(&self.parser, raw.as_bytes(), peer, when, bufs)
        {
            Ok(()) => {
                // Rows for the other outputs are not sent from here: the entry goes back,
                // to be replayed to them (once, whatever their number).
                let mut elsewhere = None;
                for i in (0..bufs.outputs()).filter(|&i| i != self.target) {
                    if let Some(&crate::route::Fate::Appended(route)) = bufs.fates().get(i) {
                        bufs.take(i, route);
                        elsewhere.get_or_insert(i);
                    }
                }
                if let Some(i) = elsewhere {
                    let reason = format!(
                        "output {:?} takes this row too: replay it with --output {}",
                        self.names[i], self.names[i]
                    );
                    self.dead.write(&crate::deadletter::EntryOut {
                        time: when,
                        reason: &reason,
                        stream: None,
                        row: None,
                        peer: e.peer,
                        raw: Some(raw),
                    });
                    self.counts.again += 1;
                }
                // Dropped by the transformation, as `run` would drop it (counted), or not
                // for this output at all.
                let Some(&crate::route::Fate::Appended(route)) = bufs.fates().get(self.target)
                else {
                    return Ok(());
                };
                let Some(b) = bufs.take(self.target, route) else {
                    return Ok(());
                };
                let name = match route {
                    Route::Csl => self.csl_name.clone(),
                    Route::Syslog => self.syslog_name.clone().unwrap_or_default(),
                };
                let row = strip_eol(&b.data).to_vec();
                self.push(&name, &row, e.time, e.reason)
            }
            Err(reason) => {
                // Still unroutable: back in the file as it was, first reason kept.
                self.dead.write(&crate::deadletter::EntryOut {
                    time: when,
                    reason: e.reason.as_deref().unwrap_or(reason),
                    stream: None,
                    row: None,
                    peer: e.peer,
                    raw: Some(raw),
                });
                self.counts.again += 1;
                Ok(())
            }
        }
    }

    /// Queue a row for `stream`, sending the pending batches when they are full.
    fn push(
        &mut self,
        stream: &str,
        row: &[u8],
        time: Option<jiff::Timestamp>,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        if !self.output.accepts(stream) {
            self.again(
                stream,
                row,
                time,
                reason
                    .as_deref()
                    .unwrap_or("stream not configured at replay"),
            );
            return Ok(());
        }
        let i = match self.pending.iter().position(|p| p.stream == stream) {
            Some(i) => i,
            None => {
                self.pending.push(Pending {
                    stream: stream.to_owned(),
                    data: Vec::new(),
                    origins: Vec::new(),
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[i];
        p.data.extend_from_slice(row);
        p.data.push(b'\n');
        p.origins.push(Origin {
            time,
            reason,
            len: row.len() + 1,
        });
        let (bytes, rows) = self
            .pending
            .iter()
            .fold((0, 0), |(b, r), p| (b + p.data.len(), r + p.origins.len()));
        self.counts.peak_pending = self.counts.peak_pending.max(bytes);
        if bytes >= self.limits.batch_bytes || rows >= self.limits.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Send every pending batch; dead-letter again what is refused or left to retry.
    fn flush(&mut self) -> anyhow::Result<()> {
        for p in std::mem::take(&mut self.pending) {
            if p.origins.is_empty() {
                continue;
            }
            self.counts.sends += 1;
            let sent = self.output.send(&p.stream, &p.data, p.origins.len())?;
            self.counts.sent += sent.delivered as u64;
            if sent.rejected.is_empty() && sent.retry_rows == 0 {
                continue;
            }
            // Find each failed row's first reason by its bytes.
            let mut first: std::collections::HashMap<&[u8], &Origin> =
                std::collections::HashMap::with_capacity(p.origins.len());
            let mut at = 0;
            for o in &p.origins {
                let row = &p.data[at..at + o.len - 1];
                first.entry(row).or_insert(o);
                at += o.len;
            }
            for (row, reason) in &sent.rejected {
                let o = first.get(row.as_slice());
                let reason = o.and_then(|o| o.reason.as_deref()).unwrap_or(reason);
                self.again(&p.stream, row, o.and_then(|o| o.time), reason);
            }
            let retry_reason = format!(
                "output unavailable at replay: {}",
                sent.last_error.as_deref().unwrap_or("transient failure")
            );
            for row in sent.retry.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let o = first.get(row);
                let reason = o.and_then(|o| o.reason.as_deref()).unwrap_or(&retry_reason);
                self.again(&p.stream, row, o.and_then(|o| o.time), reason);
            }
        }
        Ok(())
    }

    /// Write a row back to the dead-letter file with its first reason.
    fn again(&mut self, stream: &str, row: &[u8], time: Option<jiff::Timestamp>, reason: &str) {
        let text = String::from_utf8_lossy(row).into_owned();
        let rv = serde_json::value::RawValue::from_string(text.clone()).ok();
        let e = crate::deadletter::EntryOut {
            time: time.unwrap_or_else(jiff::Timestamp::now),
            reason,
            stream: Some(stream),
            row: rv.as_deref(),
            peer: None,
            raw: if rv.is_some() { None } else { Some(&text) },
        };
        self.dead.write(&e);
        self.counts.again += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that takes the main stream only, refuses rows that contain `bad`, leaves
    /// rows that contain `later` to retry, and delivers the rest.
    #[derive(Default)]
    struct Fake {
        sends: usize,
    }

    fn has(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    impl ReplayOutput for Fake {
        fn accepts(&self, stream: &str) -> bool {
            stream == "Custom-CommonSecurityLog"
        }

        fn send(&mut self, _stream: &str, ndjson: &[u8], rows: usize) -> anyhow::Result<Sent> {
            self.sends += 1;
            let mut sent = Sent::default();
            let lines: Vec<&[u8]> = ndjson
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(lines.len(), rows);
            for l in lines {
                if has(l, b"bad") {
                    sent.rejected
                        .push((l.to_vec(), "refused by the service: 400 (now)".to_owned()));
                } else if has(l, b"later") {
                    sent.retry.extend_from_slice(l);
                    sent.retry.push(b'\n');
                    sent.retry_rows += 1;
                    sent.last_error = Some("HTTP 503".to_owned());
                } else {
                    sent.delivered += 1;
                }
            }
            Ok(sent)
        }
    }

    /// Replay `input` into a fresh dead-letter file `out`.
    fn replay(input: &[u8], out: &Path, limits: ReplayLimits) -> (ReplayCounts, usize) {
        let cfg = Config::parse("[output]\nkind = \"stdout\"\n").unwrap();
        let metrics = Arc::new(Metrics::default());
        let router = crate::route::from_config(&cfg, metrics.clone()).unwrap();
        let dead = DeadLetter::new(out.to_owned(), metrics.clone());
        let mut fake = Fake::default();
        let mut r = Replay {
            router: &router,
            parser: mcas_syslog::ParserConfig::new(),
            target: 0,
            names: vec!["default".to_owned()],
            csl_name: cfg.outputs[0].dcr_stream().to_owned(),
            syslog_name: None,
            dead: &dead,
            output: &mut fake,
            limits,
            aside: Aside::new(out.with_extension("overlong")),
            pending: Vec::new(),
            counts: ReplayCounts::default(),
        };
        r.run(std::io::BufReader::with_capacity(4096, input))
            .unwrap();
        let counts = r.counts;
        dead.flush();
        assert_eq!(
            metrics
                .dead_lettered
                .load(std::sync::atomic::Ordering::Relaxed),
            counts.again + counts.malformed,
            "every entry written back is counted"
        );
        (counts, fake.sends)
    }

    fn reasons(path: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(e) => e["reason"].as_str().unwrap_or("").to_owned(),
                Err(_) => format!("as it was: {l}"),
            })
            .collect();
        v.sort();
        v
    }

    const SMALL: ReplayLimits = ReplayLimits {
        max_line: 1024,
        batch_rows: 10_000,
        batch_bytes: 1 << 20,
    };

    #[test]
    fn replay_counts_each_entry_once_and_keeps_the_first_reason_over_two_replays() {
        let d = tempfile::tempdir().unwrap();
        let mut input = String::new();
        let t = "2024-01-01T00:00:00Z";
        for l in [
            format!(
                r#"{{"time":"{t}","reason":"r0","stream":"Custom-CommonSecurityLog","row":{{"ExtID":"ok-1"}}}}"#
            ),
            format!(
                r#"{{"time":"{t}","reason":"first: refused 400 column","stream":"Custom-CommonSecurityLog","row":{{"ExtID":"bad-1"}}}}"#
            ),
            format!(
                r#"{{"time":"{t}","reason":"first: 503","stream":"Custom-CommonSecurityLog","row":{{"ExtID":"later-1"}}}}"#
            ),
            format!(
                r#"{{"time":"{t}","reason":"not CEF and no syslog_stream","peer":"10.0.0.1","raw":"<13>Jan  1 00:00:00 host app: hello"}}"#
            ),
            format!(
                r#"{{"time":"{t}","reason":"earlier failure","raw":"<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|n|5|externalId=ev-1"}}"#
            ),
            format!(
                r#"{{"time":"{t}","reason":"first other","stream":"Custom-Other","row":{{"a":1}}}}"#
            ),
            "not json at all".to_owned(),
            "x".repeat(SMALL.max_line + 10),
            String::new(),
        ] {
            input.push_str(&l);
            input.push('\n');
        }
        let out1 = d.path().join("dl1.ndjson");
        let (c1, _) = replay(input.as_bytes(), &out1, SMALL);
        assert_eq!(
            (c1.entries, c1.sent, c1.again, c1.malformed, c1.overlong),
            (8, 2, 4, 1, 1),
            "{c1:?}"
        );
        assert_eq!(c1.sent + c1.again + c1.malformed + c1.overlong, c1.entries);
        let first = reasons(&out1);
        assert_eq!(
            first,
            vec![
                "as it was: not json at all".to_owned(),
                "first other".to_owned(),
                "first: 503".to_owned(),
                "first: refused 400 column".to_owned(),
                "not CEF and no syslog_stream".to_owned(),
            ]
        );
        // The over-long line was copied aside whole, not kept in memory.
        let aside = std::fs::read(out1.with_extension("overlong")).unwrap();
        assert_eq!(aside.len(), SMALL.max_line + 11);
        assert!(c1.peak_line <= SMALL.max_line);

        // The second replay of what failed: same counts for the same entries, same reasons.
        let out2 = d.path().join("dl2.ndjson");
        let (c2, _) = replay(&std::fs::read(&out1).unwrap(), &out2, SMALL);
        assert_eq!(
            (c2.entries, c2.sent, c2.again, c2.malformed, c2.overlong),
            (5, 0, 4, 1, 0),
            "{c2:?}"
        );
        assert_eq!(reasons(&out2), first, "no reason wrapped again");
        // The original times are kept too.
        let text = std::fs::read_to_string(&out2).unwrap();
        assert_eq!(text.matches(t).count(), 4, "{text}");
    }

    #[test]
    fn a_large_file_is_replayed_with_bounded_buffering() {
        let d = tempfile::tempdir().unwrap();
        let n = 20_000usize;
        let mut input = Vec::new();
        for i in 0..n {
            writeln!(
                input,
                r#"{{"time":"2024-01-01T00:00:00Z","reason":"refused","stream":"Custom-CommonSecurityLog","row":{{"ExtID":"ev-{i}","Message":"{}"}}}}"#,
                "m".repeat(40)
            )
            .unwrap();
        }
        let limits = ReplayLimits {
            max_line: 4096,
            batch_rows: 10_000,
            batch_bytes: 64 * 1024,
        };
        let (c, sends) = replay(&input, &d.path().join("dl.ndjson"), limits);
        assert_eq!((c.entries, c.sent, c.again), (n as u64, n as u64, 0));
        // Held at most one batch (plus the row that filled it) and one line, whatever the
        // size of the input (about 40 batches here).
        assert!(input.len() > 30 * limits.batch_bytes);
        assert!(c.peak_pending < limits.batch_bytes + 256, "{c:?}");
        assert!(c.peak_line < 256, "{c:?}");
        // Each row is over 60 bytes: the rows went out in many batches, not one.
        assert!(sends >= n * 60 / limits.batch_bytes, "{sends}");
        assert_eq!(c.sends as usize, sends);
    }

    #[test]
    fn read_line_limited_hands_over_long_lines_aside_whole() {
        let text = format!("short\n{}\nnext", "y".repeat(100));
        let mut r = std::io::BufReader::with_capacity(7, text.as_bytes());
        let mut buf = Vec::new();
        let mut aside = Vec::new();
        let mut got = Vec::new();
        loop {
            let mut put = |b: &[u8]| {
                aside.extend_from_slice(b);
                Ok(())
            };
            match read_line_limited(&mut r, &mut buf, 10, &mut put).unwrap() {
                LineRead::Eof => break,
                LineRead::Line => got.push(String::from_utf8(buf.clone()).unwrap()),
                LineRead::TooLong => got.push("<too long>".to_owned()),
            }
        }
        assert_eq!(got, vec!["short", "<too long>", "next"]);
        assert_eq!(aside, format!("{}\n", "y".repeat(100)).into_bytes());
    }
}
