//! Loading rule files and directories, with a report per file (`rules check`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::query::RuleQuery;
use crate::rule::{LoadError, LoadErrorKind, Rule};

/// A rule whose query compiled: ready for the [`Engine`](crate::Engine).
#[derive(Debug, Clone)]
pub struct LoadedRule {
    pub(crate) rule: Arc<Rule>,
    pub(crate) query: Arc<RuleQuery>,
}

impl LoadedRule {
    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The tables its query reads.
    pub fn tables(&self) -> Vec<crate::Table> {
        self.query.tables()
    }
}

/// Reads and compiles one rule from its YAML text. Query errors are placed in the file
/// (the query's line and column shifted to where the query text starts).
///
/// ```
/// let r = mcas_rules::load_str(
///     "id: r1\nname: R\nseverity: Low\nqueryFrequency: 5m\nqueryPeriod: 5m\ntriggerOperator: gt\n\
///      triggerThreshold: 0\nquery: |\n  CommonSecurityLog\n  | where DeviceAction == 'deny'\n",
/// )?;
/// assert_eq!(r.rule().name, "R");
///
/// let e = mcas_rules::load_str(
///     "id: r2\nname: R\nseverity: Low\nqueryFrequency: 5m\nqueryPeriod: 5m\ntriggerOperator: gt\n\
///      triggerThreshold: 0\nquery: |\n  SecurityEvent\n  | take 1\n",
/// ).unwrap_err();
/// assert_eq!((e.line, e.column), (9, 3));
/// # Ok::<(), mcas_rules::LoadError>(())
/// ```
pub fn load_str(text: &str) -> Result<LoadedRule, LoadError> {
    let rule = Rule::from_yaml(text)?;
    let query = compile_rule_query(text, &rule)?;
    Ok(LoadedRule {
        rule: Arc::new(rule),
        query: Arc::new(query),
    })
}

fn compile_rule_query(text: &str, rule: &Rule) -> Result<RuleQuery, LoadError> {
    RuleQuery::compile(&rule.query).map_err(|e| {
        // A block scalar is indented: find the indent of the query's first line.
        let indent = text
            .lines()
            .nth(rule.query_line.saturating_sub(1))
            .map_or(0, |l| l.len() - l.trim_start().len());
        let inline = text
            .lines()
            .nth(rule.query_line.saturating_sub(1))
            .is_some_and(|l| l.starts_with("query:"));
        let (line, column) = if inline {
            (rule.query_line, e.column)
        } else {
            (
                rule.query_line + e.line.saturating_sub(1),
                e.column + indent,
            )
        };
        LoadError {
            kind: match e.table {
                Some(t) => LoadErrorKind::Table(t),
                None => LoadErrorKind::Query(e.message),
            },
            line,
            column,
        }
    })
}

/// One rule file as `rules check` reports it. Serializes to the `--json` shape
/// `{"file", "id", "name", "loaded", "reason"}` plus `line`, `column` and `ignored_keys`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    /// The file, as found in the directory.
    pub file: PathBuf,
    /// The rule's `id`, when the file got that far.
    pub id: Option<String>,
    /// The rule's `name`, when the file got that far.
    pub name: Option<String>,
    /// Whether the rule loaded and will run.
    pub loaded: bool,
    /// Why not (with its position), or `None` when loaded.
    pub reason: Option<String>,
    /// The line of the reason (1-based; 0 when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The column of the reason (1-based; 0 when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// Keys the rule does not use: kept and ignored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_keys: Vec<String>,
}

impl CheckReport {
    /// The human line of `rules check`: `file: loaded (id, name)` or `file:line:col: skipped: reason`.
    pub fn to_line(&self) -> String {
        let f = self.file.display();
        let mut s = if self.loaded {
            format!(
                "{f}: loaded: {} ({})",
                self.name.as_deref().unwrap_or(""),
                self.id.as_deref().unwrap_or("")
            )
        } else {
            format!(
                "{f}:{}:{}: skipped: {}",
                self.line.unwrap_or(0),
                self.column.unwrap_or(0),
                self.reason.as_deref().unwrap_or("")
            )
        };
        if !self.ignored_keys.is_empty() {
            s.push_str(&format!(
                " (ignored keys: {})",
                self.ignored_keys.join(", ")
            ));
        }
        s
    }
}

/// Reads one rule file: the loaded rule (when it loads and is enabled) and its report.
pub fn load_file(path: &Path) -> (Option<LoadedRule>, CheckReport) {
    let mut report = CheckReport {
        file: path.to_owned(),
        id: None,
        name: None,
        loaded: false,
        reason: None,
        line: None,
        column: None,
        ignored_keys: Vec::new(),
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.reason = Some(format!("cannot read: {e}"));
            return (None, report);
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    // Id and name, even for a rule that does not compile.
    match Rule::from_yaml(&text) {
        Ok(rule) => {
            report.id = Some(rule.id.clone());
            report.name = Some(rule.name.clone());
            report.ignored_keys = rule.ignored_keys.clone();
            if !rule.enabled {
                report.reason = Some("disabled (enabled: false)".to_owned());
                return (None, report);
            }
            match compile_rule_query(&text, &rule) {
                Ok(q) => {
                    report.loaded = true;
                    let loaded = LoadedRule {
                        rule: Arc::new(rule),
                        query: Arc::new(q),
                    };
                    (Some(loaded), report)
                }
                Err(e) => {
                    fail(&mut report, &e);
                    (None, report)
                }
            }
        }
        Err(e) => {
            fail(&mut report, &e);
            (None, report)
        }
    }
}

fn fail(report: &mut CheckReport, e: &LoadError) {
    report.reason = Some(e.kind.to_string());
    report.line = Some(e.line);
    report.column = Some(e.column);
}

/// The rule files of a directory: `*.yaml` and `*.yml`, sorted by name, not recursive.
pub fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| {
                    x.eq_ignore_ascii_case("yaml") || x.eq_ignore_ascii_case("yml")
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `rules check DIR`: a report for every rule file of the directory. A broken file is a
/// skipped rule with its reason; two loaded rules with the same id: the second is skipped.
pub fn check_dir(dir: &Path) -> std::io::Result<Vec<CheckReport>> {
    Ok(load_dir(dir)?.1)
}

/// Every rule of a directory that loads, and the report of every file ([`check_dir`]).
pub fn load_dir(dir: &Path) -> std::io::Result<(Vec<LoadedRule>, Vec<CheckReport>)> {
    let mut rules: Vec<LoadedRule> = Vec::new();
    let mut reports = Vec::new();
    for path in rule_files(dir)? {
        let (rule, mut report) = load_file(&path);
        if let Some(rule) = rule {
            if rules.iter().any(|r| r.rule.id == rule.rule.id) {
                report.loaded = false;
                report.reason = Some(format!("duplicate id {}", rule.rule.id));
                report.line = Some(0);
                report.column = Some(0);
            } else {
                rules.push(rule);
            }
        }
        reports.push(report);
    }
    Ok((rules, reports))
}
