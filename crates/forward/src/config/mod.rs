//! The TOML configuration: its types, defaults, the embedded default, and validation.
//!
//! Every key is documented in `docs/configuration.md`; `examples/config/mcas-forward.toml`
//! is a commented copy. Unknown keys are errors, so a typo never silently falls back to a
//! default.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

mod kafka;
mod listen;
mod mapping;
mod output;
mod pipeline;
mod rules;
mod storage;
mod values;

pub(crate) use kafka::*;
pub(crate) use listen::*;
pub(crate) use mapping::*;
pub(crate) use output::*;
pub(crate) use pipeline::*;
pub(crate) use rules::*;
pub(crate) use storage::*;
pub(crate) use values::*;

/// The configuration used when `--config` is not given: UDP and TCP on 127.0.0.1:5514,
/// CommonSecurityLog rows printed to stdout as JSON lines.
pub(crate) const EMBEDDED_DEFAULT: &str = r#"
[[listen]]
protocol = "udp"
address = "127.0.0.1:5514"

[[listen]]
protocol = "tcp"
address = "127.0.0.1:5514"

[output]
kind = "stdout"
"#;

/// Environment variable holding the client secret of `output.auth.kind = "client-secret"`.
pub(crate) const ENV_CLIENT_SECRET: &str = "MCAS_FORWARD_CLIENT_SECRET";
/// Environment variable holding the Data Collector shared key.
pub(crate) const ENV_SHARED_KEY: &str = "MCAS_FORWARD_SHARED_KEY";

/// An output's compiled queries.
#[derive(Debug)]
pub(crate) struct OutputQueries {
    /// `where`, as `source | where …`.
    pub(crate) filter: Option<mcas_kql::Query>,
    pub(crate) transform: Option<mcas_kql::Query>,
}

/// `[routing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutingConfig {
    #[serde(default)]
    pub(crate) unmatched: Unmatched,
}

/// What happens to a row no output takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Unmatched {
    /// Written to the dead-letter file (as the message received), to be replayed.
    #[default]
    DeadLetter,
    /// Dropped, and counted as `reason="unmatched"`.
    Drop,
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Listeners; at least one for `run`.
    #[serde(default)]
    pub(crate) listen: Vec<ListenConfig>,
    /// Where rows go: `[output]`, or named `[[output]]` tables (at least one).
    #[serde(rename = "output", deserialize_with = "one_or_many")]
    pub(crate) outputs: Vec<OutputConfig>,
    /// What happens to rows no output takes.
    #[serde(default)]
    pub(crate) routing: RoutingConfig,
    /// What the RELP listeners share (group commit, frame limit).
    #[serde(default)]
    pub(crate) relp: RelpConfig,
    /// The durable spool (network outputs only).
    #[serde(default)]
    pub(crate) spool: Option<SpoolConfig>,
    /// Where rows rejected for good, and unroutable messages, are written.
    #[serde(default)]
    pub(crate) dead_letter: Option<DeadLetterConfig>,
    /// The `/metrics` and `/health` server.
    #[serde(default)]
    pub(crate) metrics: Option<MetricsConfig>,
    /// The admin endpoint (`tap`); off when absent.
    #[serde(default)]
    pub(crate) admin: Option<AdminConfig>,
    /// User mapping rules for mcas-csl, parsed once here.
    #[serde(default)]
    pub(crate) mapping: MappingConfig,
    /// Batching, workers and shutdown.
    #[serde(default)]
    pub(crate) pipeline: PipelineConfig,
    /// Logging.
    #[serde(default)]
    pub(crate) log: LogConfig,
    /// Alert rules run on the stream; off when absent.
    #[serde(default)]
    pub(crate) rules: Option<RulesConfig>,
    /// Playbooks: signed webhooks that receive the rules' alerts.
    #[serde(default, rename = "playbook")]
    pub(crate) playbooks: Vec<PlaybookConfig>,
}

/// Where the configuration came from, for messages.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Embedded,
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Embedded => f.write_str("the embedded default configuration"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Config {
    /// Load `path`, or the embedded default when `None`, and validate it.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<(Config, Source)> {
        let (text, source) = match path {
            Some(p) => (
                std::fs::read_to_string(p).with_context(|| {
                    format!("cannot read the configuration file {}", p.display())
                })?,
                Source::File(p.to_owned()),
            ),
            None => (EMBEDDED_DEFAULT.to_owned(), Source::Embedded),
        };
        let cfg = Config::parse(&text).with_context(|| format!("in {source}"))?;
        Ok((cfg, source))
    }

    /// Parse and validate TOML text. A syntax or type error names the line and the key,
    /// and never quotes a secret's value.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A copy in which a missing client secret or shared key is replaced by a placeholder,
    /// so the output can be built (every check but the secret's) by commands that do not
    /// talk to Azure. The placeholder is never sent anywhere: nothing built from this copy
    /// is used to connect.
    pub(crate) fn with_placeholder_secrets(&self) -> Config {
        let mut c = self.clone();
        for out in &mut c.outputs {
            match &mut out.kind {
                OutputKind::LogsIngestion(o) => {
                    if let Some(a) = o.auth.as_mut()
                        && a.kind == AuthKind::ClientSecret
                        && a.resolve_client_secret().is_err()
                    {
                        a.client_secret = Some(Secret("placeholder".to_owned()));
                        a.client_secret_file = None;
                    }
                }
                OutputKind::DataCollector(o) => {
                    if o.resolve_shared_key().is_err() {
                        o.shared_key = Some(Secret("AAAA".to_owned()));
                        o.shared_key_file = None;
                    }
                }
                OutputKind::Kafka(o) => {
                    let c = &mut o.client;
                    if c.sasl == Some(Sasl::Plain) && c.connection_string("output").is_err() {
                        c.placeholder = Some(Secret(
                            "Endpoint=sb://placeholder.servicebus.windows.net/".to_owned(),
                        ));
                    }
                }
                OutputKind::Stdout(_) | OutputKind::File(_) => {}
            }
        }
        c
    }

    /// Cross-field checks, each with a message that names the key and the fix. Each
    /// section checks itself, beside its struct.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        for (i, l) in self.listen.iter().enumerate() {
            l.validate(i)?;
        }
        check_unique_addresses(&self.listen)?;
        self.relp.validate(&self.listen)?;
        if self.outputs.is_empty() {
            bail!("no output: add an [output] table or [[output]] tables");
        }
        let mut names = std::collections::HashSet::new();
        for o in &self.outputs {
            o.validate()?;
            if !names.insert(o.name()) {
                bail!(
                    "two outputs are named {:?}: each needs its own name",
                    o.name()
                );
            }
            self.queries(o)?;
        }
        if let Some(s) = &self.spool {
            s.validate()?;
        }
        self.pipeline.validate()?;
        if let Some(d) = &self.dead_letter {
            d.validate()?;
        }
        if let Some(r) = &self.rules {
            r.validate()?;
        }
        validate_playbooks(&self.playbooks, self.rules.as_ref())?;
        if self.rules.is_none()
            && let Some(o) = self.outputs.iter().find(|o| o.table == Table::Alerts)
        {
            bail!(
                "{}: table = \"alerts\" takes the alerts of the alert rules, and there is no [rules] table",
                o.key()
            );
        }
        Ok(())
    }

    /// The spool directory: configured, else `$XDG_STATE_HOME/mcas-forward/spool`,
    /// else `~/.local/state/mcas-forward/spool`.
    pub(crate) fn spool_dir(&self) -> anyhow::Result<PathBuf> {
        match self.spool.as_ref().and_then(|s| s.dir.clone()) {
            Some(d) => Ok(d),
            None => Ok(state_dir()?.join("spool")),
        }
    }

    /// The output a command's `--output NAME` names, by index; without a name, the only
    /// one (with several, the error asks for `--output`, then says `what`).
    pub(crate) fn output_index(&self, name: Option<&str>, what: &str) -> anyhow::Result<usize> {
        match name {
            Some(name) => self
                .outputs
                .iter()
                .position(|o| o.name() == name)
                .with_context(|| {
                    let names: Vec<&str> = self.outputs.iter().map(|o| o.name()).collect();
                    format!(
                        "--output {name:?}: no such output; the outputs are: {}",
                        names.join(", ")
                    )
                }),
            None if self.outputs.len() == 1 => Ok(0),
            None => bail!("there are several outputs: name one with --output{what}"),
        }
    }

    /// The spool directory of one output: [`Config::spool_dir`] for the output named
    /// `default` (so a single `[output]` keeps the spool it always had), else its own
    /// subdirectory `outputs/NAME`.
    pub(crate) fn spool_dir_of(&self, o: &OutputConfig) -> anyhow::Result<PathBuf> {
        let root = self.spool_dir()?;
        Ok(match o.name() {
            DEFAULT_OUTPUT => root,
            name => root.join("outputs").join(name),
        })
    }

    /// The dead-letter file: configured, else under the state directory.
    pub(crate) fn dead_letter_path(&self) -> anyhow::Result<PathBuf> {
        match self.dead_letter.as_ref().and_then(|d| d.path.clone()) {
            Some(p) => Ok(p),
            None => Ok(state_dir()?.join("dead-letter.ndjson")),
        }
    }

    /// The CommonSecurityLog columns with the custom columns of `[mapping]`, as KQL sees
    /// them.
    pub(crate) fn csl_schema(&self) -> mcas_kql::Schema {
        let columns = mcas_csl::columns_with(&self.mapping.rules);
        mcas_kql::Schema::new(columns.iter().map(|(n, t)| (n.as_str(), t.kql_type())))
    }

    /// The columns of `table`, as KQL sees them (CommonSecurityLog with the custom columns
    /// of `[mapping]`).
    pub(crate) fn schema(&self, table: Table) -> mcas_kql::Schema {
        match table {
            Table::CommonSecurityLog => self.csl_schema(),
            Table::Syslog => mcas_kql::Schema::new(
                mcas_csl::syslog_columns()
                    .iter()
                    .map(|(n, t)| (*n, t.kql_type())),
            ),
            Table::Alerts => {
                mcas_kql::Schema::new(mcas_rules::ALERT_COLUMNS.iter().map(|(n, t)| {
                    (
                        *n,
                        match *t {
                            "datetime" => mcas_kql::Type::DateTime,
                            "dynamic" => mcas_kql::Type::Dynamic,
                            _ => mcas_kql::Type::String,
                        },
                    )
                }))
            }
        }
    }

    /// An output's `where` and `transform`, compiled against the columns of its table.
    pub(crate) fn queries(&self, o: &OutputConfig) -> anyhow::Result<OutputQueries> {
        let schema = self.schema(o.table);
        let filter = match &o.filter {
            Some(p) => Some(
                mcas_kql::Query::compile(&format!("source | where {p}"), &schema)
                    .map_err(|e| anyhow::anyhow!("{}.where does not compile:\n{e}", o.key()))?,
            ),
            None => None,
        };
        let transform = match &o.transform {
            Some(text) => {
                let q = mcas_kql::Query::compile(text, &schema)
                    .map_err(|e| anyhow::anyhow!("{}.transform does not compile:\n{e}", o.key()))?;
                if q.source_kind() != mcas_kql::SourceKind::Input {
                    bail!(
                        "{}.transform must start with `source` (it runs on every row)",
                        o.key()
                    );
                }
                Some(q)
            }
            None => None,
        };
        Ok(OutputQueries { filter, transform })
    }

    /// The mapper of `[mapping]`.
    pub(crate) fn mapper(&self) -> mcas_csl::Mapper {
        mcas_csl::Mapper::new(self.mapping.rules.clone(), self.mapping.time_generated)
    }

    /// The dead-letter file's limits.
    pub(crate) fn dead_letter_limits(&self) -> crate::deadletter::Limits {
        match &self.dead_letter {
            Some(d) => crate::deadletter::Limits {
                max_bytes: d.max_bytes.0,
                unroutable_per_second: d.unroutable_per_second,
            },
            None => crate::deadletter::Limits::default(),
        }
    }

    /// The effective spool settings.
    pub(crate) fn spool_settings(&self) -> SpoolConfig {
        self.spool.clone().unwrap_or_default()
    }
}

/// Whether a key's value is (or may be) a secret: never quoted in an error.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_file") {
        return false;
    }
    ["secret", "secr", "passw", "token", "shared", "key", "cred"]
        .iter()
        .any(|w| k.contains(w))
}

/// The bare key just before an `=` (the last segment of a dotted key, quotes removed).
fn key_before(s: &str) -> &str {
    let s = s.trim_end();
    let start = s
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "_-.\"'".contains(c)))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let k = &s[start..];
    let k = k.rsplit('.').next().unwrap_or(k);
    k.trim_matches(|c| c == '"' || c == '\'')
}

/// The extent of a TOML value at the start of `v`: its length, its content, and the
/// delimiter of a multi-line string that goes on after this line.
fn value_extent(v: &str) -> (usize, &str, Option<&'static str>) {
    for delim in ["\"\"\"", "'''"] {
        if let Some(rest) = v.strip_prefix(delim) {
            return match rest.find(delim) {
                Some(k) => (3 + k + 3, &rest[..k], None),
                None => (v.len(), rest, Some(delim)),
            };
        }
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return (1 + i + 1, &rest[..i], None),
                _ => {}
            }
        }
        return (v.len(), rest, None);
    }
    if let Some(rest) = v.strip_prefix('\'') {
        return match rest.find('\'') {
            Some(i) => (1 + i + 1, &rest[..i], None),
            None => (v.len(), rest, None),
        };
    }
    if v.starts_with(['{', '[']) {
        // A table or array where a secret goes: hide the rest of the line.
        return (v.len(), v, None);
    }
    let end = v
        .find(|c: char| c == ',' || c == '}' || c == '#' || c.is_whitespace())
        .unwrap_or(v.len());
    (end, &v[..end], None)
}

/// The lines of `text` with the value of every secret key replaced, and the values found.
fn mask_secrets(text: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut secrets = Vec::new();
    let mut open: Option<&'static str> = None;
    for line in text.lines() {
        if let Some(delim) = open {
            match line.find(delim) {
                Some(i) => {
                    secrets.push(line[..i].to_owned());
                    lines.push(format!("<redacted>{}", &line[i..]));
                    open = None;
                }
                None => {
                    secrets.push(line.to_owned());
                    lines.push("<redacted>".to_owned());
                }
            }
            continue;
        }
        let mut masked = String::with_capacity(line.len());
        let (mut from, mut copied) = (0, 0);
        while let Some(off) = line[from..].find('=') {
            let eq = from + off;
            from = eq + 1;
            if !is_secret_key(key_before(&line[..eq])) {
                continue;
            }
            let rest = &line[from..];
            let start = from + (rest.len() - rest.trim_start().len());
            let (len, inner, multi) = value_extent(&line[start..]);
            secrets.push(line[start..start + len].to_owned());
            secrets.push(inner.to_owned());
            masked.push_str(&line[copied..start]);
            masked.push_str("\"<redacted>\"");
            copied = start + len;
            from = copied;
            if multi.is_some() {
                open = multi;
                break;
            }
        }
        masked.push_str(&line[copied..]);
        lines.push(masked);
    }
    secrets.retain(|s| !s.trim().is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    (lines, secrets)
}

/// A TOML error as a message that names the line and the key (`table.key`) and quotes the
/// line with every secret value replaced; a secret in the message itself is replaced too.
fn toml_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let (lines, secrets) = mask_secrets(text);
    let mut msg = e.message().trim_end().to_owned();
    for s in &secrets {
        msg = msg.replace(s.as_str(), "<redacted>");
    }
    let Some(span) = e.span() else {
        return anyhow::anyhow!("TOML error: {msg}");
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count();
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let shown = lines.get(line).map_or("", String::as_str);
    // The table the line is in, and the key it sets, when it sets one.
    let table = text
        .lines()
        .take(line + 1)
        .filter_map(|l| {
            let t = l.trim();
            t.starts_with('[')
                .then(|| t.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
        })
        .last();
    let key = text
        .lines()
        .nth(line)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''))
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let at = match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}: "),
        (None, Some(k)) => format!("{k}: "),
        _ => String::new(),
    };
    anyhow::anyhow!(
        "{at}{msg} (line {}, column {column})\n  {} | {shown}",
        line + 1,
        line + 1
    )
}

/// `$XDG_STATE_HOME/mcas-forward`, else `~/.local/state/mcas-forward`.
pub(crate) fn state_dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("mcas-forward"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/state/mcas-forward")),
        None => bail!(
            "neither XDG_STATE_HOME nor HOME is set: configure [spool] dir and [dead_letter] path"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert!(matches!(c.outputs[0].kind, OutputKind::Stdout(_)));
        assert_eq!(c.pipeline.flush_interval.0, Duration::from_secs(1));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(ByteSize::parse("10GiB").unwrap().0, 10 << 30);
        assert_eq!(ByteSize::parse("64 KiB").unwrap().0, 65536);
        assert_eq!(ByteSize::parse("5MB").unwrap().0, 5_000_000);
        assert_eq!(ByteSize::parse("1000").unwrap().0, 1000);
        assert!(ByteSize::parse("10 parsecs").is_err());
        assert_eq!(
            DurationStr::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            DurationStr::parse("5m").unwrap().0,
            Duration::from_secs(300)
        );
        assert!(DurationStr::parse("soon").is_err());
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        let l = Cidr::parse("::1").unwrap();
        assert!(l.contains("::1".parse().unwrap()));
        assert!(!l.contains("127.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn timezones() {
        assert!(parse_timezone("+02:00").is_ok());
        assert!(parse_timezone("UTC").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
    }

    const LI: &str = "[output]\nkind = \"logs-ingestion\"\nendpoint = \"https://x.ingest.monitor.azure.com\"\ndcr_immutable_id = \"dcr-00000000000000000000000000000000\"\n[output.auth]\nkind = \"client-secret\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";

    #[test]
    fn toml_errors_never_quote_a_secret() {
        let secret = "Hunter2-Very-Secret~Value";
        let cases = [
            (
                format!("{LI}client_secret = \"{secret}\" trailing\n"),
                "output.auth.client_secret",
            ),
            (
                format!("{LI}client_secret = '{secret}\n"),
                "output.auth.client_secret",
            ),
            (
                format!("{LI}client_secret = {{ v = \"{secret}\" }}\n"),
                "output.auth.client_secret",
            ),
            (
                format!("{LI}client_secret = \"\"\"\n{secret}\n\"\"\" x\n"),
                "",
            ),
            (
                format!("{LI}client_secrt = \"{secret}\"\n"),
                "output.auth.client_secrt",
            ),
            (
                format!("{LI}extra = {{ client_secret = \"{secret}\", n = 1 }}\n"),
                "output.auth.extra",
            ),
            (
                format!(
                    "[output]\nkind = \"data-collector\"\nworkspace_id = \"w\"\nshared_key = \"{secret}\" ,\n"
                ),
                "output.shared_key",
            ),
        ];
        for (text, key) in cases {
            let e = format!("{:#}", Config::parse(&text).unwrap_err());
            assert!(!e.contains(secret), "secret quoted in: {e}");
            assert!(!e.contains("Hunter2"), "part of the secret quoted in: {e}");
            assert!(e.contains(key), "{key} not named in: {e}");
            assert!(e.contains("line "), "no position in: {e}");
        }
        // A numeric value under a secret key is not quoted either.
        let e = format!(
            "{:#}",
            Config::parse(&format!("{LI}client_secret = 987654321\n")).unwrap_err()
        );
        assert!(!e.contains("987654321"), "{e}");
        assert!(e.contains("expected a string"), "{e}");
        // Other values are still shown, to help.
        let e = format!(
            "{:#}",
            Config::parse("[output]\nkind = \"splunk\"\n").unwrap_err()
        );
        assert!(
            e.contains("unknown variant `splunk`") && e.contains("output.kind"),
            "{e}"
        );
    }

    #[test]
    fn every_duration_is_range_checked_in_both_forms_naming_the_key() {
        let base = "[output]\nkind = \"stdout\"\n";
        for (table, key) in [
            ("pipeline", "shutdown_grace"),
            ("pipeline", "flush_interval"),
            ("pipeline", "linger"),
            ("output", "request_timeout"),
            ("output", "retry_budget"),
        ] {
            for v in [
                "9223372036854775807",
                "100000",
                "\"100000s\"",
                "\"999999h\"",
                "-5",
            ] {
                let text = if table == "output" {
                    format!(
                        "[output]\nkind = \"data-collector\"\nworkspace_id = \"w\"\n{key} = {v}\n"
                    )
                } else {
                    format!("{base}[{table}]\n{key} = {v}\n")
                };
                let e = format!("{:#}", Config::parse(&text).unwrap_err());
                assert!(e.contains(&format!("{table}.{key}")), "{text}: {e}");
            }
            let ok = if table == "output" {
                format!("[output]\nkind = \"data-collector\"\nworkspace_id = \"w\"\n{key} = 20\n")
            } else {
                format!("{base}[{table}]\n{key} = 20\n")
            };
            Config::parse(&ok).unwrap();
        }
        let e = Config::parse(&format!(
            "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:1\"\nidle_timeout = 100000000\n{base}"
        ))
        .unwrap_err();
        assert!(format!("{e:#}").contains("listen[0].idle_timeout"), "{e:#}");
        assert_eq!(
            DurationStr::from_int(30).unwrap().0,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn plain_http_is_refused_off_loopback_naming_the_key() {
        let text = LI.replace("https://x", "http://x");
        let e = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(
            e.contains("output.endpoint") && e.contains("plain http://"),
            "{e}"
        );
        for ok in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
            Config::parse(&LI.replace("https://x.ingest.monitor.azure.com", ok)).unwrap();
        }
        let e = Config::parse(&format!(
            "{LI}authority_host = \"http://login.example.com\"\n"
        ))
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("output.auth.authority_host"),
            "{e:#}"
        );
    }

    #[test]
    fn the_secret_is_not_needed_to_load_the_configuration() {
        // Checked where the credential is built, by the commands that talk to Azure.
        let c = Config::parse(LI).unwrap();
        let a = c.outputs[0].kind.auth().unwrap();
        assert!(a.client_secret.is_none() && a.client_secret_file.is_none());
        let p = c.with_placeholder_secrets();
        assert!(p.outputs[0].kind.auth().unwrap().client_secret.is_some());
        let dc =
            Config::parse("[output]\nkind = \"data-collector\"\nworkspace_id = \"w\"\n").unwrap();
        let OutputKind::DataCollector(o) = &dc.outputs[0].kind else {
            panic!("{:?}", dc.outputs[0].kind)
        };
        assert!(o.shared_key.is_none());
        let p = dc.with_placeholder_secrets();
        let OutputKind::DataCollector(o) = &p.outputs[0].kind else {
            panic!("{:?}", p.outputs[0].kind)
        };
        assert!(o.shared_key.is_some());
    }

    #[test]
    fn clear_errors() {
        let e = Config::parse("[output]\nkind = \"logs-ingestion\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("needs `endpoint`"), "{e:#}");
        let e = Config::parse("[output]\nkind = \"stdout\"\nbogus = 1\n").unwrap_err();
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");
        // Each kind owns its keys: another kind's key is refused, not ignored.
        let e = Config::parse("[output]\nkind = \"stdout\"\npath = \"x\"\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("output.path: not a setting of kind = \"stdout\""),
            "{e:#}"
        );
        let e =
            Config::parse("[output]\nkind = \"file\"\npath = \"x\"\ngzip_level = 1\n").unwrap_err();
        assert!(format!("{e:#}").contains("gzip_level"), "{e:#}");
        let e = Config::parse("[output]\nkind = \"carrier-pigeon\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("carrier-pigeon"), "{e:#}");
        let e = Config::parse("[[listen]]\nprotocol = \"tls\"\naddress = \"127.0.0.1:6514\"\n[output]\nkind = \"stdout\"\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("needs both `cert` and `key`"),
            "{e:#}"
        );
        let e = Config::parse("[spool]\nmax_bytes = \"lots\"\n[output]\nkind = \"stdout\"\n")
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown size unit \"lots\""),
            "{e:#}"
        );
    }

    #[test]
    fn connection_guards() {
        let listen = |extra: &str| {
            format!(
                "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:5514\"\n{extra}\n[output]\nkind = \"stdout\"\n"
            )
        };
        let c = Config::parse(&listen("")).unwrap();
        let l = &c.listen[0];
        assert_eq!(l.max_connections_per_source, 64);
        assert_eq!(l.first_frame_timeout.0, Duration::from_secs(30));
        assert_eq!(l.frame_timeout.0, Duration::from_secs(30));
        let c = Config::parse(&listen(
            "max_connections_per_source = 4\nfirst_frame_timeout = \"2s\"\nframe_timeout = \"500ms\"",
        ))
        .unwrap();
        assert_eq!(c.listen[0].max_connections_per_source, 4);
        assert_eq!(c.listen[0].frame_timeout.0, Duration::from_millis(500));
        for (bad, msg) in [
            (
                "max_connections_per_source = 0",
                "max_connections_per_source must be at least 1",
            ),
            (
                "first_frame_timeout = \"0s\"",
                "first_frame_timeout must be at least 100ms",
            ),
            (
                "frame_timeout = \"10ms\"",
                "frame_timeout must be at least 100ms",
            ),
        ] {
            let e = Config::parse(&listen(bad)).unwrap_err();
            assert!(format!("{e:#}").contains(msg), "{e:#}");
            assert!(format!("{e:#}").contains("listen[0]"), "{e:#}");
        }
    }
}
