//! Compile errors: a kind, a position (line and column) and the query line with a caret.

use std::fmt;

/// What went wrong while parsing or compiling a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not valid KQL (or not in the subset this crate parses).
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A tabular operator that the dialect does not allow, e.g.
    /// `summarize is not supported in transformations`.
    #[error("{operator} is not supported in transformations")]
    UnsupportedOperator {
        /// The operator as written (`summarize`, `order by`, ...).
        operator: String,
    },
    /// A scalar function that is not known, or not allowed in transformations.
    #[error("{0}")]
    UnsupportedFunction(String),
    /// A column name that is not in the input schema (or no longer in the row).
    #[error("unknown column '{name}'{}", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    UnknownColumn {
        /// The name as written.
        name: String,
        /// The nearest existing column, when one is close enough.
        suggestion: Option<String>,
    },
    /// A function called with the wrong number or kind of arguments.
    #[error("{0}")]
    BadArguments(String),
    /// A literal that does not denote a value (`datetime(2024-13-01)`, a bad regex ...).
    #[error("{0}")]
    BadLiteral(String),
    /// A pipeline that starts from a name that is neither `source` nor a tabular `let`.
    #[error("unknown table '{name}'{}: a transformation starts with 'source', 'print', 'datatable' or the name of a tabular let", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    UnknownTable {
        /// The name as written.
        name: String,
        /// The nearest tabular `let`, when one is close enough.
        suggestion: Option<String>,
    },
    /// A `let` name used as another kind of thing than it is: a tabular `let` where a scalar
    /// is expected (`where T > 1`), or a scalar `let` or a function where a table is
    /// expected (`n | project A`).
    #[error("'{name}' is {found}, not {expected}")]
    WrongKind {
        /// The name as written.
        name: String,
        /// What the name is: `a tabular expression`, `a scalar`, `a function`.
        found: String,
        /// What the place needs: `a scalar`, `a tabular expression`, `a function`.
        expected: String,
    },
    /// Something the query dialect does not support (yet): an operator, a function, a
    /// form of an operator. The text names it, e.g. `the 'union' operator`.
    #[error("{0} is not supported in the query dialect")]
    UnsupportedInQuery(String),
    /// A query-dialect pipeline that starts from a name that is neither a table this crate
    /// knows (`CommonSecurityLog`, `Syslog`) nor a tabular `let`.
    #[error("unknown table '{name}': a query reads CommonSecurityLog, Syslog or a tabular let{}", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    UnsupportedTable {
        /// The name as written.
        name: String,
        /// The nearest known table or tabular `let`, when one is close enough.
        suggestion: Option<String>,
    },
    /// A `let` statement that uses its own name or the name of a later `let`: a `let` sees
    /// only the statements before it, so it cannot be recursive.
    #[error(
        "'{name}' is used before it is defined: a let statement sees only the lets before it, not itself or a later one (recursion is not supported)"
    )]
    Recursion {
        /// The name as written.
        name: String,
    },
}

/// A compile error, with the position in the query it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    offset: usize,
    line: usize,
    column: usize,
    source_line: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, query: &str, offset: usize) -> Error {
        let offset = offset.min(query.len());
        let offset = (0..=offset)
            .rev()
            .find(|&o| query.is_char_boundary(o))
            .unwrap_or(0);
        let before = &query[..offset];
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        let line = before.matches('\n').count() + 1;
        let column = query[line_start..offset].chars().count() + 1;
        let line_end = query[offset..]
            .find('\n')
            .map_or(query.len(), |p| offset + p);
        let source_line = query[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        Error {
            kind,
            offset,
            line,
            column,
            source_line,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// 1-based line of the error in the query.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column (in characters) of the error in its line.
    pub fn column(&self) -> usize {
        self.column
    }

    /// Byte offset of the error in the query.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The message without the position and the caret.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for Error {
    /// `line L, column C: message`, then the query line and a caret under the column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.kind
        )?;
        writeln!(f, "  {}", self.source_line)?;
        write!(f, "  {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl std::error::Error for Error {}
