//! The seam between rules and `mcas-kql`: a rule's query split into the row-level prefix,
//! run on each streamed row, and the rest, run over a window of kept rows.
//!
//! The query dialect is `mcas_kql::TableQuery`; this module maps its tables to the stream's
//! tables and its errors to rule load errors.

use mcas_kql::KeptRow;
use serde_json::{Map, Value};

/// The tables a rule can read on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Table {
    /// `CommonSecurityLog`: rows mapped from CEF events.
    CommonSecurityLog,
    /// `Syslog`: rows mapped from plain syslog messages.
    Syslog,
}

impl Table {
    /// The table of a name, case-sensitively as KQL names tables.
    pub fn from_name(name: &str) -> Option<Table> {
        match name {
            "CommonSecurityLog" => Some(Table::CommonSecurityLog),
            "Syslog" => Some(Table::Syslog),
            _ => None,
        }
    }

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Table::CommonSecurityLog => "CommonSecurityLog",
            Table::Syslog => "Syslog",
        }
    }

    /// The table's columns as a query schema.
    pub fn schema(self) -> mcas_kql::Schema {
        let cols = match self {
            Table::CommonSecurityLog => mcas_csl::columns(),
            Table::Syslog => mcas_csl::syslog_columns(),
        };
        mcas_kql::Schema::new(cols.iter().map(|(n, t)| (*n, t.kql_type())))
    }
}

/// Why a query does not compile: the message and its place in the query text (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) message: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// The query reads a table that is not on the stream.
    pub(crate) table: Option<String>,
}

/// A rule's compiled query.
#[derive(Debug)]
pub(crate) struct RuleQuery {
    query: mcas_kql::TableQuery,
    tables: Vec<Table>,
}

impl RuleQuery {
    pub(crate) fn compile(text: &str) -> Result<RuleQuery, QueryError> {
        let (name, start) = leading_table(text);
        if name == "let" || Table::from_name(name).is_some() || name.is_empty() {
            // Compiled below; the compiler places errors.
        } else {
            let (line, column) = line_column(text, start);
            return Err(QueryError {
                message: format!("reads table `{name}`"),
                line,
                column,
                table: Some(name.to_owned()),
            });
        }
        let err = |e: mcas_kql::Error| QueryError {
            table: match e.kind() {
                mcas_kql::ErrorKind::UnsupportedTable { name, .. } => Some(name.clone()),
                _ => None,
            },
            message: e.message(),
            line: e.line(),
            column: e.column(),
        };
        // The schema is the table's: try CommonSecurityLog's, then Syslog's for a query that
        // reads Syslog's columns (the first error is the one reported).
        let mut query =
            match mcas_kql::TableQuery::compile(text, &Table::CommonSecurityLog.schema()) {
                Ok(q) => q,
                Err(e) => match mcas_kql::TableQuery::compile(text, &Table::Syslog.schema()) {
                    Ok(q) if q.tables().iter().all(|t| t == "Syslog") => q,
                    _ => return Err(err(e)),
                },
            };
        let mut tables = Vec::new();
        for t in query.tables() {
            match Table::from_name(t) {
                Some(t) => tables.push(t),
                None => {
                    return Err(QueryError {
                        message: format!("reads table `{t}`"),
                        line: 0,
                        column: 0,
                        table: Some(t.clone()),
                    });
                }
            }
        }
        match tables.as_slice() {
            [Table::CommonSecurityLog] => {}
            [Table::Syslog] => {
                query =
                    mcas_kql::TableQuery::compile(text, &Table::Syslog.schema()).map_err(err)?;
            }
            _ => {
                return Err(QueryError {
                    message: "reads both CommonSecurityLog and Syslog".to_owned(),
                    line: 0,
                    column: 0,
                    table: None,
                });
            }
        }
        Ok(RuleQuery { query, tables })
    }

    /// The tables the query reads.
    pub(crate) fn tables(&self) -> Vec<Table> {
        self.tables.clone()
    }

    /// The row-level prefix on one streamed row: the row to keep, or `None`.
    pub(crate) fn row_prefix(&self, row: &dyn mcas_kql::Row, now: i64) -> Option<KeptRow> {
        self.query.row_prefix_kept(row, now)
    }

    /// Whether the row-level prefix keeps `row`, without building the row to keep.
    pub(crate) fn row_passes(&self, row: &dyn mcas_kql::Row, now: i64) -> bool {
        self.query.row_passes(row, now)
    }

    /// The rest of the query over the kept rows of a window.
    pub(crate) fn run_window(&self, rows: &[KeptRow], now: i64) -> Vec<Map<String, Value>> {
        self.query.run_window_kept(rows, now)
    }

    /// A kept row as the JSON object it stands for (the saved state).
    pub(crate) fn kept_to_json(&self, row: &KeptRow) -> Map<String, Value> {
        self.query.kept_to_json(row)
    }

    /// A kept row from its JSON object (a restored state).
    pub(crate) fn kept_from_json(&self, row: &Map<String, Value>) -> KeptRow {
        self.query.kept_from_json(row)
    }
}

/// The first identifier of a query after blank lines and `//` comments, and its offset.
fn leading_table(text: &str) -> (&str, usize) {
    let mut at = 0;
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("//") {
            at += trimmed.find('\n').map_or(trimmed.len(), |i| i + 1);
            continue;
        }
        let end = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        return (&trimmed[..end], at);
    }
}

/// The 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
