//! `mcas-forward kql`: run a DCR transformation (`transformKql`) on sample rows, locally and
//! with Azure's semantics (mcas-kql), or only check that it compiles.
//!
//! The query comes from `--query` or from a DCR (`--dcr FILE --stream NAME`, ARM template or
//! the DCR resource's JSON); the input columns from `--schema` (`commonsecuritylog`,
//! `syslog`, or a JSON array of `{"name", "type"}` as a DCR's `streamDeclarations` writes
//! them), from the DCR's stream declaration, or from the first input row. Rows come from
//! `--input` (NDJSON) or `--cef` (raw syslog/CEF lines, mapped as the forwarder maps them).

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use mcas_kql::{Query, Schema, SourceKind, Type};
use serde_json::{Map, Value};

use crate::config::Config;

/// The arguments of `kql`.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub(crate) query: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) input: Option<PathBuf>,
    pub(crate) dcr: Option<PathBuf>,
    pub(crate) stream: Option<String>,
    pub(crate) cef: Option<PathBuf>,
    pub(crate) check: bool,
}

/// Lines of input longer than this are refused (a line is one row).
const MAX_LINE: usize = 16 << 20;

pub(crate) fn kql(config: Option<&Path>, args: &Args) -> anyhow::Result<()> {
    let (text, dcr_columns) = query_text(args)?;
    let declared = match (&args.schema, dcr_columns) {
        (Some(s), _) => Some(schema_named(s)?),
        (None, Some(cols)) => Some(cols),
        (None, None) if args.cef.is_some() => Some(schema_named("commonsecuritylog")?),
        (None, None) => None,
    };
    let rows = read_rows(config, args)?;
    let schema = match declared {
        Some(s) => Some(s),
        None => rows.first().map(|r| Schema::infer(r, &[])),
    };
    let query = match &schema {
        Some(s) => Query::compile(&text, s),
        // No schema and nothing to infer it from: a check, or a `print`/`datatable`.
        None => Query::compile_lenient(&text),
    }
    .map_err(|e| anyhow::anyhow!("the query does not compile:\n{e}"))?;
    if args.check {
        let cols: Vec<String> = query
            .output_schema()
            .iter()
            .map(|(n, t)| format!("{n}:{}", t.name()))
            .collect();
        println!("ok: {}", cols.join(", "));
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let mut write = |row: Map<String, Value>| -> anyhow::Result<()> {
        serde_json::to_writer(&mut out, &Value::Object(row))?;
        out.write_all(b"\n")?;
        Ok(())
    };
    match query.source_kind() {
        SourceKind::Input => {
            for row in &rows {
                if let Some(r) = query.run(row) {
                    write(r.to_json())?;
                }
            }
        }
        _ => {
            for r in query.run_without_input() {
                write(r.to_json())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The query text, and the stream's columns when it comes from a DCR.
fn query_text(args: &Args) -> anyhow::Result<(String, Option<Schema>)> {
    match (&args.query, &args.dcr) {
        (Some(q), None) => Ok((q.clone(), None)),
        (None, Some(path)) => {
            let Some(stream) = &args.stream else {
                bail!("--dcr needs --stream NAME (the input stream whose data flow to run)")
            };
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let json: Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            let (query, schema) = from_dcr(&json, stream)
                .with_context(|| format!("{}: stream {stream}", path.display()))?;
            Ok((query, schema))
        }
        (Some(_), Some(_)) => bail!("give the query with --query or --dcr, not both"),
        (None, None) => bail!("no query: give --query 'KQL' or --dcr FILE --stream NAME"),
    }
}

/// A DCR's `properties` (the resource's JSON) or every DCR of an ARM template.
fn dcr_properties(json: &Value) -> Vec<&Value> {
    if let Some(p) = json.get("properties")
        && p.get("dataFlows").is_some()
    {
        return vec![p];
    }
    json.get("resources")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.get("properties"))
                .filter(|p| p.get("dataFlows").is_some())
                .collect()
        })
        .unwrap_or_default()
}

/// The `transformKql` of the data flow that reads `stream` (`source` when it has none),
/// and the stream's declared columns (None for a built-in `Microsoft-` stream).
pub(crate) fn from_dcr(json: &Value, stream: &str) -> anyhow::Result<(String, Option<Schema>)> {
    for props in dcr_properties(json) {
        let flows = props
            .get("dataFlows")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let flow = flows.iter().find(|f| {
            f.get("streams")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|n| n.as_str() == Some(stream)))
        });
        let Some(flow) = flow else { continue };
        let query = flow
            .get("transformKql")
            .and_then(Value::as_str)
            .unwrap_or("source")
            .to_owned();
        let columns = props
            .get("streamDeclarations")
            .and_then(|d| d.get(stream))
            .and_then(|d| d.get("columns"));
        let schema = columns.map(schema_from_declaration).transpose()?;
        return Ok((query, schema));
    }
    bail!("no data flow reads this stream")
}

/// A stream declaration's columns: `[{"name": "…", "type": "…"}]`.
fn schema_from_declaration(columns: &Value) -> anyhow::Result<Schema> {
    let Some(cols) = columns.as_array() else {
        bail!("the columns are not a JSON array of {{\"name\", \"type\"}}")
    };
    let mut out = Vec::with_capacity(cols.len());
    for c in cols {
        let name = c.get("name").and_then(Value::as_str);
        let ty = c.get("type").and_then(Value::as_str);
        let (Some(name), Some(ty)) = (name, ty) else {
            bail!("a column without a string `name` and `type`: {c}")
        };
        let t =
            Type::from_name(ty).with_context(|| format!("column {name}: unknown type {ty:?}"))?;
        out.push((name.to_owned(), t));
    }
    Ok(Schema::new(out))
}

/// `commonsecuritylog`, `syslog`, or a file holding a stream declaration's columns.
fn schema_named(name: &str) -> anyhow::Result<Schema> {
    let from_csl = |cols: &[(&str, mcas_csl::ColumnType)]| {
        Schema::new(cols.iter().map(|(n, t)| (*n, t.kql_type())))
    };
    match name.to_ascii_lowercase().as_str() {
        "commonsecuritylog" => Ok(from_csl(mcas_csl::columns())),
        "syslog" => Ok(from_csl(mcas_csl::syslog_columns())),
        _ => {
            let text = std::fs::read_to_string(name).with_context(|| {
                format!("--schema {name}: not commonsecuritylog, syslog, or a readable file")
            })?;
            let json: Value = serde_json::from_str(&text)
                .with_context(|| format!("--schema {name}: not JSON"))?;
            schema_from_declaration(&json).with_context(|| format!("--schema {name}"))
        }
    }
}

/// The input rows: NDJSON objects from `--input`, or raw lines from `--cef` mapped as the
/// forwarder maps them (with the configuration's `[mapping]`).
fn read_rows(config: Option<&Path>, args: &Args) -> anyhow::Result<Vec<Map<String, Value>>> {
    match (&args.input, &args.cef) {
        (Some(_), Some(_)) => bail!("give rows with --input or --cef, not both"),
        (Some(path), None) => {
            let mut rows = Vec::new();
            for (i, line) in lines(path)?.into_iter().enumerate() {
                let v: Value = serde_json::from_str(&line)
                    .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
                let Value::Object(row) = v else {
                    bail!("{}:{}: not a JSON object", path.display(), i + 1)
                };
                rows.push(row);
            }
            Ok(rows)
        }
        (None, Some(path)) => {
            let (cfg, _) = Config::load(config)?;
            let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
            // The rows as mapped: no output's `where` or transformation applies here.
            let router = crate::route::Router::new(
                Vec::new(),
                cfg.mapper(),
                vec![crate::route::OutputRoute::new(
                    crate::batch::Route::Csl,
                    false,
                )],
                metrics,
            );
            let parser = mcas_syslog::ParserConfig::new();
            let now = jiff::Timestamp::now();
            let peer = std::net::IpAddr::from([127, 0, 0, 1]);
            let mut rows = Vec::new();
            for line in lines(path)? {
                let mut bufs = crate::batch::Buffers::with_capacity(1 << 16, 1);
                if router
                    .map_into(&parser, line.as_bytes(), peer, now, &mut bufs)
                    .is_err()
                    || bufs.fates() != [crate::route::Fate::Appended(crate::batch::Route::Csl)]
                {
                    continue;
                }
                let data = &bufs.get(0, crate::batch::Route::Csl).data;
                if let Ok(Value::Object(row)) = serde_json::from_slice(data.trim_ascii_end()) {
                    rows.push(row);
                }
            }
            Ok(rows)
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// The non-empty lines of a file, each at most [`MAX_LINE`] bytes.
fn lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if line.len() > MAX_LINE {
            bail!("{}:{}: a line over {MAX_LINE} bytes", path.display(), i + 1);
        }
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dcr_gives_the_flow_query_and_the_stream_columns() {
        let arm = serde_json::json!({
            "resources": [{
                "type": "Microsoft.Insights/dataCollectionRules",
                "properties": {
                    "streamDeclarations": {"Custom-Cef": {"columns": [
                        {"name": "TimeGenerated", "type": "datetime"},
                        {"name": "DeviceVendor", "type": "string"},
                        {"name": "DestinationPort", "type": "int"}
                    ]}},
                    "dataFlows": [{
                        "streams": ["Custom-Cef"],
                        "transformKql": "source | where DestinationPort != 443",
                        "outputStream": "Microsoft-CommonSecurityLog"
                    }]
                }
            }]
        });
        let (q, schema) = from_dcr(&arm, "Custom-Cef").unwrap();
        assert_eq!(q, "source | where DestinationPort != 443");
        let schema = schema.unwrap();
        assert_eq!(schema.get("DestinationPort"), Some(Type::Int));
        assert!(from_dcr(&arm, "Custom-Other").is_err());
        // The DCR resource's own JSON, a flow without transformKql: `source`.
        let res =
            serde_json::json!({"properties": {"dataFlows": [{"streams": ["Microsoft-Syslog"]}]}});
        assert_eq!(from_dcr(&res, "Microsoft-Syslog").unwrap().0, "source");
    }

    #[test]
    fn named_schemas_cover_the_tables() {
        let csl = schema_named("commonsecuritylog").unwrap();
        assert_eq!(csl.get("DeviceVendor"), Some(Type::String));
        assert_eq!(csl.get("TimeGenerated"), Some(Type::DateTime));
        assert!(
            schema_named("syslog")
                .unwrap()
                .get("SyslogMessage")
                .is_some()
        );
        assert!(schema_named("no-such-file.json").is_err());
    }
}
