//! The rule model and the YAML loader.

use serde_yaml_ng::Value as Yaml;

use crate::duration::{TICKS_PER_SECOND, parse_duration};

/// How the result row count is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum TriggerOperator {
    /// `gt` / `GreaterThan`.
    GreaterThan,
    /// `lt` / `LessThan`.
    LessThan,
    /// `eq` / `Equal`.
    Equal,
    /// `ne` / `NotEqual`.
    NotEqual,
}

impl TriggerOperator {
    /// Reads the YAML (`gt`) or ARM (`GreaterThan`) spelling, case-insensitively.
    pub fn parse(text: &str) -> Option<TriggerOperator> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "gt" | "greaterthan" => TriggerOperator::GreaterThan,
            "lt" | "lessthan" => TriggerOperator::LessThan,
            "eq" | "equal" => TriggerOperator::Equal,
            "ne" | "notequal" => TriggerOperator::NotEqual,
            _ => return None,
        })
    }

    /// Whether `count` compares true with `threshold`.
    pub fn fires(self, count: u64, threshold: u64) -> bool {
        match self {
            TriggerOperator::GreaterThan => count > threshold,
            TriggerOperator::LessThan => count < threshold,
            TriggerOperator::Equal => count == threshold,
            TriggerOperator::NotEqual => count != threshold,
        }
    }

    /// The ARM spelling.
    pub fn arm_name(self) -> &'static str {
        match self {
            TriggerOperator::GreaterThan => "GreaterThan",
            TriggerOperator::LessThan => "LessThan",
            TriggerOperator::Equal => "Equal",
            TriggerOperator::NotEqual => "NotEqual",
        }
    }
}

/// `eventGroupingSettings.aggregationKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Aggregation {
    /// One alert for the whole result (the default).
    #[default]
    SingleAlert,
    /// One alert for each result row.
    AlertPerResult,
}

/// One entity of `entityMappings`: its type and (identifier, column) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityMapping {
    /// `entityType` as written (`IP`, `Host`, `Account`, `URL`, …).
    pub entity_type: String,
    /// `fieldMappings`: identifier (`Address`, `HostName`, …) and the result column.
    pub fields: Vec<(String, String)>,
}

/// A Sentinel scheduled analytics rule, read from its YAML file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Rule {
    /// `id` (a GUID in Sentinel's files).
    pub id: String,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `severity` (`Informational`, `Low`, `Medium`, `High`).
    pub severity: String,
    /// `query`, the KQL text.
    pub query: String,
    /// The line of the file where the query text starts (1-based), to place query errors.
    pub query_line: usize,
    /// `queryFrequency`, in ticks.
    pub frequency: i64,
    /// `queryPeriod`, in ticks.
    pub period: i64,
    /// `triggerOperator`.
    pub trigger_operator: TriggerOperator,
    /// `triggerThreshold`.
    pub trigger_threshold: u64,
    /// `suppressionDuration` in ticks when `suppressionEnabled` is true.
    pub suppression: Option<i64>,
    /// `eventGroupingSettings.aggregationKind`.
    pub aggregation: Aggregation,
    /// `entityMappings`.
    pub entities: Vec<EntityMapping>,
    /// `customDetails`: (detail name, column), in file order.
    pub custom_details: Vec<(String, String)>,
    /// `alertDetailsOverride.alertDisplayNameFormat`.
    pub display_name_format: Option<String>,
    /// `alertDetailsOverride.alertDescriptionFormat`.
    pub description_format: Option<String>,
    /// `alertDetailsOverride.alertSeverityColumnName`.
    pub severity_column: Option<String>,
    /// `tactics`.
    pub tactics: Vec<String>,
    /// `relevantTechniques`.
    pub techniques: Vec<String>,
    /// `enabled` (true when absent).
    pub enabled: bool,
    /// `kind` (`Scheduled` when absent; `NRT` runs every minute over the last minute).
    pub kind: String,
    /// Top-level keys the rule does not use (kept, ignored, noted by `rules check`).
    pub ignored_keys: Vec<String>,
}

/// Why a rule file is not a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The file is not YAML (the parser's message).
    #[error("not YAML: {0}")]
    Yaml(String),
    /// The document is not a mapping of keys.
    #[error("not a mapping of rule keys")]
    NotAMapping,
    /// A required key is missing.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// A key has a value of the wrong shape.
    #[error("`{key}`: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The rule's `kind` is not one this crate runs.
    #[error("kind `{0}` is not a scheduled rule")]
    Kind(String),
    /// The query does not compile in the query dialect (the compiler's message).
    #[error("query: {0}")]
    Query(String),
    /// The query reads a table that is not on the stream.
    #[error("query reads table `{0}`, which is not on the stream (CommonSecurityLog, Syslog)")]
    Table(String),
}

/// A rule file that does not load: what is wrong and where (1-based line and column; 0
/// when unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {kind}")]
pub struct LoadError {
    /// What is wrong.
    pub kind: LoadErrorKind,
    /// Line in the file.
    pub line: usize,
    /// Column in the file.
    pub column: usize,
}

/// The top-level keys the loader reads.
const USED_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "severity",
    "query",
    "queryFrequency",
    "queryPeriod",
    "triggerOperator",
    "triggerThreshold",
    "suppressionEnabled",
    "suppressionDuration",
    "eventGroupingSettings",
    "entityMappings",
    "customDetails",
    "alertDetailsOverride",
    "tactics",
    "relevantTechniques",
    "enabled",
    "kind",
];

/// Keys that describe a rule without changing what it does: not reported as ignored.
const DESCRIPTIVE_KEYS: &[&str] = &["version", "metadata", "requiredDataConnectors", "tags"];

/// The largest rule file the loader reads.
pub const MAX_RULE_FILE_BYTES: usize = 1 << 20;

impl Rule {
    /// Reads one rule from the text of its YAML file. Semantic errors are placed on the
    /// line of the offending key.
    ///
    /// ```
    /// let rule = mcas_rules::Rule::from_yaml(
    ///     "id: r1\nname: Denies\nseverity: Low\nqueryFrequency: 5m\nqueryPeriod: 1h\n\
    ///      triggerOperator: gt\ntriggerThreshold: 0\nquery: CommonSecurityLog | where DeviceAction == 'deny'\n\
    ///      version: 1.0.0\nincidentConfiguration: {createIncident: true}\n",
    /// )?;
    /// assert_eq!(rule.frequency, 300 * mcas_rules::TICKS_PER_SECOND);
    /// assert_eq!(rule.ignored_keys, ["incidentConfiguration"]);
    /// # Ok::<(), mcas_rules::LoadError>(())
    /// ```
    pub fn from_yaml(text: &str) -> Result<Rule, LoadError> {
        if text.len() > MAX_RULE_FILE_BYTES {
            return Err(LoadError {
                kind: LoadErrorKind::Invalid {
                    key: "file",
                    message: format!("over {MAX_RULE_FILE_BYTES} bytes"),
                },
                line: 0,
                column: 0,
            });
        }
        let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            LoadError {
                kind: LoadErrorKind::Yaml(yaml_message(&e)),
                line,
                column,
            }
        })?;
        let Yaml::Mapping(map) = doc else {
            return Err(LoadError {
                kind: LoadErrorKind::NotAMapping,
                line: 1,
                column: 1,
            });
        };
        let fields = Fields { text, map: &map };
        fields.rule()
    }

    /// Whether an evaluation with `result_rows` result rows raises an alert.
    pub fn triggers(&self, result_rows: u64) -> bool {
        self.trigger_operator
            .fires(result_rows, self.trigger_threshold)
    }
}

/// The parser's message without its trailing position (the error carries it apart).
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let m = e.to_string();
    match m.find(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m,
    }
}

struct Fields<'a> {
    text: &'a str,
    map: &'a serde_yaml_ng::Mapping,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Yaml> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The line where a top-level key is written (1-based; 0 when not found).
    fn line_of(&self, key: &str) -> usize {
        key_line(self.text, key)
    }

    fn err(&self, key: &'static str, message: impl Into<String>) -> LoadError {
        LoadError {
            kind: LoadErrorKind::Invalid {
                key,
                message: message.into(),
            },
            line: self.line_of(key),
            column: 1,
        }
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => scalar_text(v)
                .map(Some)
                .ok_or_else(|| self.err(key, "not a string")),
        }
    }

    fn required(&self, key: &'static str) -> Result<String, LoadError> {
        self.string(key)?.ok_or(LoadError {
            kind: LoadErrorKind::Missing(key),
            line: 1,
            column: 1,
        })
    }

    fn duration(&self, key: &'static str) -> Result<Option<i64>, LoadError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => parse_duration(&s)
                .map(Some)
                .ok_or_else(|| self.err(key, format!("{s:?} is not a duration"))),
        }
    }

    fn bool(&self, key: &'static str) -> Result<Option<bool>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Bool(b)) => Ok(Some(*b)),
            Some(Yaml::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Yaml::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(self.err(key, "not true or false")),
        }
    }

    fn strings(&self, key: &'static str) -> Result<Vec<String>, LoadError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Yaml::Sequence(items)) => items
                .iter()
                .map(|v| scalar_text(v).ok_or_else(|| self.err(key, "an item is not a string")))
                .collect(),
            Some(v) => scalar_text(v)
                .map(|s| vec![s])
                .ok_or_else(|| self.err(key, "not a list of strings")),
        }
    }

    fn rule(&self) -> Result<Rule, LoadError> {
        let kind = self
            .string("kind")?
            .unwrap_or_else(|| "Scheduled".to_owned());
        let nrt = kind.eq_ignore_ascii_case("NRT");
        if !nrt && !kind.eq_ignore_ascii_case("Scheduled") {
            return Err(LoadError {
                kind: LoadErrorKind::Kind(kind),
                line: self.line_of("kind"),
                column: 1,
            });
        }
        let id = self.required("id")?;
        let name = self.required("name")?;
        let query = self.required("query")?;
        let minute = 60 * TICKS_PER_SECOND;
        let (frequency, period) = if nrt {
            (minute, minute)
        } else {
            let f = self.duration("queryFrequency")?.ok_or(LoadError {
                kind: LoadErrorKind::Missing("queryFrequency"),
                line: 1,
                column: 1,
            })?;
            let p = self.duration("queryPeriod")?.ok_or(LoadError {
                kind: LoadErrorKind::Missing("queryPeriod"),
                line: 1,
                column: 1,
            })?;
            let bounds = TICKS_PER_SECOND * 60..=TICKS_PER_SECOND * 14 * 86_400;
            if !bounds.contains(&f) {
                return Err(self.err("queryFrequency", "not between 1m and 14d"));
            }
            if !bounds.contains(&p) {
                return Err(self.err("queryPeriod", "not between 1m and 14d"));
            }
            (f, p)
        };
        let trigger_operator = match self.string("triggerOperator")? {
            None if nrt => TriggerOperator::GreaterThan,
            None => {
                return Err(LoadError {
                    kind: LoadErrorKind::Missing("triggerOperator"),
                    line: 1,
                    column: 1,
                });
            }
            Some(s) => TriggerOperator::parse(&s).ok_or_else(|| {
                self.err("triggerOperator", format!("{s:?} is not gt, lt, eq or ne"))
            })?,
        };
        let trigger_threshold = match self.get("triggerThreshold") {
            None if nrt => 0,
            None => {
                return Err(LoadError {
                    kind: LoadErrorKind::Missing("triggerThreshold"),
                    line: 1,
                    column: 1,
                });
            }
            Some(v) => scalar_text(v)
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| self.err("triggerThreshold", "not a whole number ≥ 0"))?,
        };
        let suppression = if self.bool("suppressionEnabled")?.unwrap_or(false) {
            Some(
                self.duration("suppressionDuration")?
                    .ok_or_else(|| self.err("suppressionEnabled", "no suppressionDuration"))?,
            )
        } else {
            None
        };
        let aggregation = match self.get("eventGroupingSettings") {
            None => Aggregation::SingleAlert,
            Some(v) => match v.get("aggregationKind").and_then(scalar_text).as_deref() {
                None | Some("SingleAlert") => Aggregation::SingleAlert,
                Some("AlertPerResult") => Aggregation::AlertPerResult,
                Some(other) => {
                    return Err(self.err(
                        "eventGroupingSettings",
                        format!("aggregationKind {other:?} is not SingleAlert or AlertPerResult"),
                    ));
                }
            },
        };
        let entities = self.entities()?;
        let custom_details = match self.get("customDetails") {
            None => Vec::new(),
            Some(Yaml::Mapping(m)) => m
                .iter()
                .map(|(k, v)| match (scalar_text(k), scalar_text(v)) {
                    (Some(k), Some(v)) => Ok((k, v)),
                    _ => Err(self.err("customDetails", "not a mapping of names to columns")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(self.err("customDetails", "not a mapping")),
        };
        let (display_name_format, description_format, severity_column) =
            match self.get("alertDetailsOverride") {
                None => (None, None, None),
                Some(v @ Yaml::Mapping(_)) => (
                    v.get("alertDisplayNameFormat").and_then(scalar_text),
                    v.get("alertDescriptionFormat").and_then(scalar_text),
                    v.get("alertSeverityColumnName").and_then(scalar_text),
                ),
                Some(_) => return Err(self.err("alertDetailsOverride", "not a mapping")),
            };
        let mut ignored_keys = Vec::new();
        for k in self.map.keys() {
            let k = scalar_text(k).unwrap_or_default();
            if !USED_KEYS.contains(&k.as_str()) && !DESCRIPTIVE_KEYS.contains(&k.as_str()) {
                ignored_keys.push(k);
            }
        }
        Ok(Rule {
            id,
            name,
            description: self.string("description")?.unwrap_or_default(),
            severity: self
                .string("severity")?
                .unwrap_or_else(|| "Medium".to_owned()),
            query_line: self.query_line(),
            query,
            frequency,
            period,
            trigger_operator,
            trigger_threshold,
            suppression,
            aggregation,
            entities,
            custom_details,
            display_name_format,
            description_format,
            severity_column,
            tactics: self.strings("tactics")?,
            techniques: self.strings("relevantTechniques")?,
            enabled: self.bool("enabled")?.unwrap_or(true),
            kind,
            ignored_keys,
        })
    }

    fn entities(&self) -> Result<Vec<EntityMapping>, LoadError> {
        let Some(v) = self.get("entityMappings") else {
            return Ok(Vec::new());
        };
        let Yaml::Sequence(items) = v else {
            return Err(self.err("entityMappings", "not a list"));
        };
        let mut out = Vec::new();
        for item in items {
            let entity_type = item
                .get("entityType")
                .and_then(scalar_text)
                .ok_or_else(|| self.err("entityMappings", "an entity without entityType"))?;
            let mut fields = Vec::new();
            if let Some(Yaml::Sequence(fm)) = item.get("fieldMappings") {
                for f in fm {
                    match (
                        f.get("identifier").and_then(scalar_text),
                        f.get("columnName").and_then(scalar_text),
                    ) {
                        (Some(i), Some(c)) => fields.push((i, c)),
                        _ => {
                            return Err(self.err(
                                "entityMappings",
                                "a field mapping without identifier and columnName",
                            ));
                        }
                    }
                }
            } else {
                return Err(self.err("entityMappings", "an entity without fieldMappings"));
            }
            out.push(EntityMapping {
                entity_type,
                fields,
            });
        }
        Ok(out)
    }

    /// The first line of the query text: the line after `query: |` (a block), or the
    /// `query:` line itself.
    fn query_line(&self) -> usize {
        let line = self.line_of("query");
        let block = self
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .and_then(|l| l.split_once(':'))
            .is_some_and(|(_, rest)| {
                let r = rest.trim();
                r.starts_with('|') || r.starts_with('>') || r.is_empty()
            });
        if block { line + 1 } else { line }
    }
}

/// A scalar as text (numbers and booleans too), `None` for mappings and lists.
fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Tagged(t) => scalar_text(&t.value),
        _ => None,
    }
}

/// The 1-based line where `key:` starts a line at column 1 (0 when absent).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.strip_prefix('"').unwrap_or(l);
            l.strip_prefix(key)
                .is_some_and(|r| r.starts_with(':') || r.starts_with("\":"))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "id: a\nname: A\nseverity: High\nqueryFrequency: 1h\nqueryPeriod: 1h\n\
                        triggerOperator: gt\ntriggerThreshold: 0\nquery: |\n  CommonSecurityLog\n";

    #[test]
    fn arm_spellings_and_grouping() {
        let text = format!(
            "{}suppressionEnabled: true\nsuppressionDuration: PT5H\n\
             eventGroupingSettings:\n  aggregationKind: AlertPerResult\n",
            BASE.replace("gt", "GreaterThan").replace("1h", "PT1H")
        );
        let r = Rule::from_yaml(&text).unwrap();
        assert_eq!(r.trigger_operator, TriggerOperator::GreaterThan);
        assert_eq!(r.suppression, Some(5 * 3600 * TICKS_PER_SECOND));
        assert_eq!(r.aggregation, Aggregation::AlertPerResult);
        assert_eq!(r.query_line, 9);
    }

    #[test]
    fn errors_carry_the_line() {
        let e =
            Rule::from_yaml(&BASE.replace("queryPeriod: 1h", "queryPeriod: an hour")).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.to_string().contains("queryPeriod"), "{e}");
        let e = Rule::from_yaml(&BASE.replace("queryPeriod: 1h", "queryPeriod: 15d")).unwrap_err();
        assert_eq!(e.to_string(), "5:1: `queryPeriod`: not between 1m and 14d");
        let e = Rule::from_yaml(&BASE.replace("queryFrequency: 1h", "queryFrequency: 30s"))
            .unwrap_err();
        assert_eq!(e.line, 4);
        let e = Rule::from_yaml("id: a\nname: [unclosed\n").unwrap_err();
        assert!(matches!(e.kind, LoadErrorKind::Yaml(_)));
        assert!(e.line >= 2, "{e}");
        let e = Rule::from_yaml(&BASE.replace("name: A\n", "")).unwrap_err();
        assert_eq!(e.kind, LoadErrorKind::Missing("name"));
        let e = Rule::from_yaml("- a\n- b\n").unwrap_err();
        assert_eq!(e.kind, LoadErrorKind::NotAMapping);
        let e = Rule::from_yaml(&format!("{BASE}kind: Fusion\n")).unwrap_err();
        assert_eq!(e.kind, LoadErrorKind::Kind("Fusion".into()));
        assert_eq!(e.line, 10);
    }
}
