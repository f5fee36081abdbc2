//! The subcommands other than `run`: validate, map, send-test, dcr-template,
//! replay-dead-letter.

use std::io::{BufRead as _, Write as _};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::config::{Config, OutputKind};
use crate::deadletter::{DeadLetter, EntryIn};
use crate::metrics::Metrics;
use crate::output::{CheckResult, Network};
use crate::route::{Buffers, Route};

/// The mcas-csl mapper for the configuration's `[mapping]` table.
pub(crate) fn mapper(cfg: &Config) -> anyhow::Result<mcas_csl::Mapper> {
    let (rules, policy) = mapping_rules(cfg)?;
    Ok(mcas_csl::Mapper::new(rules, policy))
}

/// `[mapping]`: mcas-csl's `MappingRules`, plus `time_generated` (`receive_time`, `rt`, `start`).
fn mapping_rules(
    cfg: &Config,
) -> anyhow::Result<(mcas_csl::MappingRules, mcas_csl::TimeGeneratedPolicy)> {
    let Some(v) = &cfg.mapping else {
        return Ok((
            mcas_csl::MappingRules::default(),
            mcas_csl::TimeGeneratedPolicy::default(),
        ));
    };
    let toml::Value::Table(mut table) = v.clone() else {
        bail!("[mapping] must be a table");
    };
    let policy = match table.remove("time_generated") {
        None => mcas_csl::TimeGeneratedPolicy::default(),
        Some(p) => p.try_into().map_err(|e| {
            anyhow::anyhow!(
                "[mapping] time_generated: {e} (use \"receive_time\", \"rt\" or \"start\")"
            )
        })?,
    };
    let rules: mcas_csl::MappingRules = toml::Value::Table(table)
        .try_into()
        .map_err(|e| anyhow::anyhow!("[mapping]: {e}"))?;
    Ok((rules, policy))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// `validate`: check the file; for network outputs, fetch a token and send an empty batch.
pub(crate) fn validate(config: Option<&Path>, offline: bool) -> anyhow::Result<()> {
    let (cfg, source) = Config::load(config)?;
    mapper(&cfg)?;
    for l in &cfg.listen {
        if l.protocol == crate::config::Protocol::Tls {
            crate::tls::acceptor(l).with_context(|| format!("listen tls {}", l.address))?;
        }
    }
    println!("{source}: configuration OK");
    for l in &cfg.listen {
        println!("  listen {} {}", l.protocol, l.address);
    }
    match cfg.output.kind {
        OutputKind::Stdout => println!("  output: stdout (JSON lines)"),
        OutputKind::File => println!(
            "  output: file {}",
            cfg.output
                .path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        OutputKind::LogsIngestion | OutputKind::DataCollector => {
            println!(
                "  output: {:?} stream {}",
                cfg.output.kind, cfg.output.stream
            );
            println!("  spool: {}", cfg.spool_dir()?.display());
        }
    }
    println!("  dead-letter: {}", cfg.dead_letter_path()?.display());
    if !cfg.output.kind.is_network() || offline {
        return Ok(());
    }
    let rt = runtime()?;
    rt.block_on(async {
        let net = Network::new(&cfg, Arc::new(Metrics::default()))?;
        let r = tokio::time::timeout(Duration::from_secs(60), net.check())
            .await
            .map_err(|_| anyhow::anyhow!("the output did not answer within 60 s: check the endpoint URL and the network path (proxy, firewall, private link)"))??;
        match r {
            CheckResult::Skipped => {
                println!("  output check: skipped (only the Logs Ingestion output has a check)");
                Ok(())
            }
            CheckResult::Token(e) => Err(anyhow::anyhow!("{}", advice(None, &e.to_string(), e.is_auth()))),
            CheckResult::Status(s, _) if (200..300).contains(&s) => {
                println!("  output check: token acquired, empty batch accepted (HTTP {s})");
                Ok(())
            }
            CheckResult::Status(s, body) => Err(anyhow::anyhow!("{}", advice(Some(s), &body, false))),
        }
    })
}

/// Plain advice for the usual failures of a first set-up.
fn advice(status: Option<u16>, detail: &str, auth: bool) -> String {
    let what = match status {
        Some(400) => {
            "400 Bad Request: the stream exists but the request does not match it. Check output.stream (it must be the DCR's input stream, \"Custom-...\") and that the DCR declares the columns (see `mcas-forward dcr-template`)."
        }
        Some(401) => {
            "401 Unauthorized: the token was refused. Check output.auth.cloud (and authority_host/scope): a token for one cloud is not valid in another; check tenant_id and client_id."
        }
        Some(403) => {
            "403 Forbidden: the identity has no right to ingest into this DCR. Assign the \"Monitoring Metrics Publisher\" role on the DCR to the app or managed identity; a new assignment can take up to 30 minutes to apply."
        }
        Some(404) => {
            "404 Not Found: wrong DCR id, stream or endpoint. Check output.dcr_immutable_id (the DCR's immutableId, \"dcr-...\"), output.stream, and that output.endpoint is the DCR's logsIngestion endpoint (or its DCE) in the same region and cloud."
        }
        Some(413) => {
            "413: the request was too large; this should not happen for an empty batch: check that the endpoint is a Logs Ingestion endpoint."
        }
        None if auth => {
            "authentication failed: the token endpoint refused the credentials. Check tenant_id, client_id, the secret or certificate, and output.auth.cloud / authority_host."
        }
        None => {
            "no token: the token endpoint could not be reached or failed. Check output.auth (cloud, authority_host, imds_endpoint) and the network path."
        }
        Some(_) => "the output answered with an unexpected status.",
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
    let router = crate::run::router(&cfg, metrics)?;
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
    let mut bufs = Buffers::with_capacity(64 * 1024);
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
            Ok(route) => {
                if let Some(b) = bufs.take(route) {
                    out.write_all(&b.data)?;
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

/// `dcr-template`: an ARM template for a DCR with our stream(s).
pub(crate) fn dcr_template(config: Option<&Path>, stream: Option<&str>) -> anyhow::Result<()> {
    let (cfg, _) = Config::load(config)?;
    let (rules, _) = mapping_rules(&cfg)?;
    let stream = stream
        .map(str::to_owned)
        .unwrap_or_else(|| cfg.output.stream.clone());
    if !stream.starts_with("Custom-") {
        bail!("--stream {stream:?}: a DCR input stream must begin with \"Custom-\"");
    }
    let t = template(&stream, cfg.output.syslog_stream.as_deref(), &rules);
    println!("{}", serde_json::to_string_pretty(&t)?);
    Ok(())
}

fn columns_json(cols: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Array(
        cols.iter()
            .map(|(n, t)| serde_json::json!({ "name": n, "type": t }))
            .collect(),
    )
}

/// The ARM template (a pure function of the stream names and mapping rules).
pub(crate) fn template(
    stream: &str,
    syslog_stream: Option<&str>,
    rules: &mcas_csl::MappingRules,
) -> serde_json::Value {
    let csl_cols: Vec<(String, String)> = mcas_csl::columns_with(rules)
        .into_iter()
        .map(|(n, t)| (n, t.as_azure_str().to_owned()))
        .collect();
    let mut decls = serde_json::Map::new();
    decls.insert(
        stream.to_owned(),
        serde_json::json!({ "columns": columns_json(&csl_cols) }),
    );
    let mut flows = vec![serde_json::json!({
        "streams": [stream],
        "destinations": ["workspace"],
        "transformKql": "source",
        "outputStream": "Microsoft-CommonSecurityLog",
    })];
    if let Some(s) = syslog_stream {
        let cols: Vec<(String, String)> = mcas_csl::syslog_columns()
            .iter()
            .map(|(n, t)| ((*n).to_owned(), t.as_azure_str().to_owned()))
            .collect();
        decls.insert(
            s.to_owned(),
            serde_json::json!({ "columns": columns_json(&cols) }),
        );
        flows.push(serde_json::json!({
            "streams": [s],
            "destinations": ["workspace"],
            "transformKql": "source",
            "outputStream": "Microsoft-Syslog",
        }));
    }
    let dcr = "[resourceId('Microsoft.Insights/dataCollectionRules', parameters('dataCollectionRuleName'))]";
    serde_json::json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "dataCollectionRuleName": { "type": "string", "defaultValue": "mcas-forward" },
            "location": { "type": "string", "defaultValue": "[resourceGroup().location]" },
            "workspaceResourceId": { "type": "string", "metadata": { "description": "Resource id of the Log Analytics workspace (with Microsoft Sentinel)." } }
        },
        "resources": [{
            "type": "Microsoft.Insights/dataCollectionRules",
            "apiVersion": "2023-03-11",
            "name": "[parameters('dataCollectionRuleName')]",
            "location": "[parameters('location')]",
            "kind": "Direct",
            "properties": {
                "streamDeclarations": decls,
                "destinations": { "logAnalytics": [{ "name": "workspace", "workspaceResourceId": "[parameters('workspaceResourceId')]" }] },
                "dataFlows": flows
            }
        }],
        "outputs": {
            "dcrImmutableId": { "type": "string", "value": format!("[reference({}).immutableId]", &dcr[1..dcr.len() - 1]) },
            "logsIngestionEndpoint": { "type": "string", "value": format!("[reference({}).endpoints.logsIngestion]", &dcr[1..dcr.len() - 1]) }
        }
    })
}

/// `replay-dead-letter`: send dead-lettered rows again, and re-route dead-lettered messages
/// (for example after setting `output.syslog_stream`). What fails again is dead-lettered
/// again, in a fresh file.
pub(crate) fn replay_dead_letter(config: Option<&Path>, file: Option<&Path>) -> anyhow::Result<()> {
    let (cfg, _) = Config::load(config)?;
    crate::run::init_logging(&cfg);
    let path = match file {
        Some(f) => f.to_owned(),
        None => cfg.dead_letter_path()?,
    };
    if !path.exists() {
        println!("{}: no dead-letter file, nothing to replay", path.display());
        return Ok(());
    }
    // Move the file aside first, so rows that fail again start a new dead-letter file.
    let stamp = jiff::Timestamp::now().as_millisecond();
    let taken = path.with_extension(format!("replaying-{stamp}"));
    std::fs::rename(&path, &taken)
        .with_context(|| format!("cannot move {} aside", path.display()))?;
    let metrics = Arc::new(Metrics::default());
    let router = crate::run::router(&cfg, metrics.clone())?;
    let dead = DeadLetter::new(cfg.dead_letter_path()?, metrics.clone());
    let parser = mcas_syslog::ParserConfig::new();
    let text = std::fs::read(&taken)?;
    let mut bufs = Buffers::with_capacity(1 << 20);
    let mut by_stream: Vec<(String, Vec<u8>, usize)> = Vec::new();
    let mut push = |stream: &str, row: &[u8]| {
        let i = match by_stream.iter().position(|(s, _, _)| s == stream) {
            Some(i) => i,
            None => {
                by_stream.push((stream.to_owned(), Vec::new(), 0));
                by_stream.len() - 1
            }
        };
        by_stream[i].1.extend_from_slice(row);
        if !row.ends_with(b"\n") {
            by_stream[i].1.push(b'\n');
        }
        by_stream[i].2 += 1;
    };
    let csl_name = cfg.output.stream.clone();
    let syslog_name = cfg.output.syslog_stream.clone();
    let (mut entries, mut bad) = (0usize, 0usize);
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        entries += 1;
        let keep = |line: &[u8]| {
            // Never lose an entry we cannot read: it goes back as it was.
            let mut l = line.to_vec();
            l.push(b'\n');
            dead.write_lines(&l, 1);
        };
        let Ok(e) = serde_json::from_slice::<EntryIn>(line) else {
            bad += 1;
            keep(line);
            continue;
        };
        match (e.row, e.raw) {
            (Some(row), _) => {
                let stream = e.stream.unwrap_or_else(|| csl_name.clone());
                push(&stream, row.get().as_bytes());
            }
            (None, Some(raw)) => {
                let when = e.time.unwrap_or_else(jiff::Timestamp::now);
                let peer = e.peer.unwrap_or(IpAddr::from([127, 0, 0, 1]));
                match router.map_into(&parser, raw.as_bytes(), peer, when, &mut bufs) {
                    Ok(route) => {
                        if let Some(b) = bufs.take(route) {
                            let name = match route {
                                Route::Csl => csl_name.clone(),
                                Route::Syslog => syslog_name.clone().unwrap_or_default(),
                            };
                            push(&name, &b.data);
                        }
                    }
                    Err(reason) => {
                        dead.write(&crate::deadletter::EntryOut {
                            time: when,
                            reason: &format!(
                                "{reason} (replayed; first: {})",
                                e.reason.as_deref().unwrap_or("?")
                            ),
                            stream: None,
                            row: None,
                            peer: e.peer,
                            raw: Some(&raw),
                        });
                    }
                }
            }
            (None, None) => {
                bad += 1;
                keep(line);
            }
        }
    }
    let rt = runtime()?;
    let mut delivered = 0usize;
    let mut failed = 0usize;
    rt.block_on(async {
        let out_kind = cfg.output.kind;
        let net = if out_kind.is_network() {
            Some(Network::new(&cfg, metrics.clone())?)
        } else {
            None
        };
        for (stream, data, rows) in &by_stream {
            match &net {
                Some(net) => {
                    let Some(route) = net.route_of(stream) else {
                        tracing::warn!(
                            stream,
                            rows,
                            "stream not in the configuration; rows kept in the dead-letter file"
                        );
                        dead.write_lines(
                            &rewrap(stream, data, "stream not configured at replay"),
                            *rows as u64,
                        );
                        failed += rows;
                        continue;
                    };
                    let sent = net.send(route, data).await;
                    delivered += sent.delivered;
                    let mut again = Vec::new();
                    let mut n_again = 0u64;
                    for (row, reason) in &sent.rejected {
                        again.extend_from_slice(&rewrap(stream, row, reason));
                        n_again += 1;
                    }
                    if sent.retry_rows > 0 {
                        again.extend_from_slice(&rewrap(
                            stream,
                            &sent.retry,
                            "output unavailable at replay",
                        ));
                        n_again += sent.retry_rows as u64;
                    }
                    failed += n_again as usize;
                    dead.write_lines(&again, n_again);
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(data)?;
                    delivered += rows;
                }
            }
        }
        anyhow::Ok(())
    })?;
    // A running forwarder may have appended to the file in the instant of the rename:
    // carry any such tail over before removing it.
    if let Ok(now) = std::fs::read(&taken)
        && now.len() > text.len()
    {
        let tail = &now[text.len()..];
        let n = tail.iter().filter(|&&b| b == b'\n').count() as u64;
        dead.write_lines(tail, n.max(1));
    }
    dead.flush();
    std::fs::remove_file(&taken).with_context(|| format!("cannot remove {}", taken.display()))?;
    println!(
        "replayed {entries} dead-letter entries: {delivered} rows delivered, {failed} dead-lettered again, {bad} unreadable lines kept as they were"
    );
    if bad > 0 || failed > 0 {
        println!("what failed again is in {}", dead.path().display());
    }
    Ok(())
}

/// Dead-letter lines for rows of `data` (NDJSON) that failed again.
fn rewrap(stream: &str, data: &[u8], reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let now = jiff::Timestamp::now();
    for l in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(s) = std::str::from_utf8(l) else {
            continue;
        };
        let Ok(rv) = serde_json::value::RawValue::from_string(s.to_owned()) else {
            continue;
        };
        let e = crate::deadletter::EntryOut {
            time: now,
            reason,
            stream: Some(stream),
            row: Some(&rv),
            peer: None,
            raw: None,
        };
        if serde_json::to_writer(&mut out, &e).is_ok() {
            out.push(b'\n');
        }
    }
    out
}
