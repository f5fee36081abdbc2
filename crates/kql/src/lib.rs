//! The KQL of Azure Monitor data collection rule transformations (`transformKql`), parsed and
//! run locally with Kusto's semantics, one row at a time.
//!
//! ```
//! use mcas_kql::{Query, Schema, Type};
//!
//! let schema = Schema::new([
//!     ("DeviceVendor", Type::String),
//!     ("DestinationPort", Type::Int),
//!     ("AdditionalExtensions", Type::String),
//! ]);
//! let query = Query::compile(
//!     r#"source
//!        | where DeviceVendor == "Palo Alto Networks" and DestinationPort !in (80, 443)
//!        | project-away AdditionalExtensions"#,
//!     &schema,
//! )?;
//!
//! let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
//!     r#"{"DeviceVendor": "Palo Alto Networks", "DestinationPort": 23, "AdditionalExtensions": "x=1"}"#,
//! )?;
//! let out = query.run(&row).expect("the row passes the filter");
//! assert_eq!(
//!     serde_json::Value::Object(out.to_json()),
//!     serde_json::json!({"DeviceVendor": "Palo Alto Networks", "DestinationPort": 23}),
//! );
//!
//! // Outside the transformation subset: refused as Azure refuses it, with the position.
//! let err = Query::compile("source | summarize count() by DeviceVendor", &schema).unwrap_err();
//! assert_eq!(err.message(), "summarize is not supported in transformations");
//! assert_eq!((err.line(), err.column()), (1, 10));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The query dialect of scheduled alert rules (a table such as `CommonSecurityLog` as the
//! source, multi-row operators such as `summarize`, `sort` or `join`) is [`TableQuery`].
//!
//! What is supported, and what is not yet, is listed in the repository's `docs/kql.md`.

mod ast;
mod compile;
mod error;
mod eval;
mod functions;
mod kept;
mod layout;
mod parser;
mod print;
mod query;
mod time;
mod value;
mod xml;

use serde_json::{Map, Value as Json};

pub use error::{Error, ErrorKind};
pub use kept::KeptRow;
pub use value::{Type, Value};

/// Which KQL a query is compiled as.
///
/// Only the transformation dialect exists today. The tabular layer is the seam where a query
/// dialect (for alert rules) will accept multi-row operators such as `summarize` or `sort`;
/// the transformation dialect keeps refusing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// Azure Monitor DCR transformations: one row in, at most one row out.
    #[default]
    Transformation,
    /// The query dialect of scheduled alert rules: reads `CommonSecurityLog` or `Syslog` and
    /// may use multi-row operators (`summarize`, `sort`, `join`, ...). See [`TableQuery`].
    Query,
}

/// The input columns of a query: names and Kusto types, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    columns: Vec<(String, Type)>,
}

impl Schema {
    /// A schema of these columns.
    pub fn new<N: Into<String>>(columns: impl IntoIterator<Item = (N, Type)>) -> Schema {
        Schema {
            columns: columns.into_iter().map(|(n, t)| (n.into(), t)).collect(),
        }
    }

    /// The columns of a JSON row, typed by their values (string → `string`, integer → `long`,
    /// other number → `real`, bool → `bool`, object or array → `dynamic`); `overrides` give
    /// the type of named columns (e.g. a datetime written as an ISO string). A column that is
    /// `null` and not in `overrides` is `dynamic`.
    pub fn infer(row: &Map<String, Json>, overrides: &[(&str, Type)]) -> Schema {
        let columns = row
            .iter()
            .map(|(name, v)| {
                let ty = overrides
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|p| p.1)
                    .unwrap_or(match v {
                        Json::String(_) => Type::String,
                        Json::Number(n) if n.is_i64() || n.is_u64() => Type::Long,
                        Json::Number(_) => Type::Real,
                        Json::Bool(_) => Type::Bool,
                        _ => Type::Dynamic,
                    });
                (name.clone(), ty)
            })
            .collect();
        Schema { columns }
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[(String, Type)] {
        &self.columns
    }

    /// The type of a column.
    pub fn get(&self, name: &str) -> Option<Type> {
        self.columns.iter().find(|(n, _)| n == name).map(|p| p.1)
    }
}

/// A row a query reads: its columns by name. Strings may borrow from the row.
///
/// A value of another type than the column's declared one is converted when read (an ISO
/// string for a `datetime` column, a `long` for an `int` column); one that does not convert
/// reads as null. A missing column reads as null (`""` for a string column).
///
/// A row type whose columns sit at fixed places (a struct) can also give a [`layout`]: its
/// columns' names and types in a fixed order, and [`value_at`] to read one by its place. A
/// query binds its column references to those places once, on the first row that has the
/// layout, and from then on reads them without looking their names up.
///
/// [`layout`]: Row::layout
/// [`value_at`]: Row::value_at
///
/// ```
/// use mcas_kql::{Query, Row, Schema, Type, Value};
///
/// struct Conn<'a> {
///     vendor: &'a str,
///     port: i32,
/// }
///
/// static LAYOUT: &[(&str, Type)] = &[("DeviceVendor", Type::String), ("DestinationPort", Type::Int)];
///
/// impl Row for Conn<'_> {
///     fn get(&self, column: &str) -> Option<Value<'_>> {
///         let i = LAYOUT.iter().position(|c| c.0 == column)?;
///         self.value_at(i)
///     }
///     fn layout(&self) -> Option<&'static [(&'static str, Type)]> {
///         Some(LAYOUT)
///     }
///     fn value_at(&self, index: usize) -> Option<Value<'_>> {
///         match index {
///             0 => Some(Value::str(self.vendor)),
///             1 => Some(Value::Int(self.port)),
///             _ => None,
///         }
///     }
/// }
///
/// let q = Query::compile("source | where DestinationPort in (22, 23)", &Schema::new(LAYOUT.iter().copied()))?;
/// assert!(q.passes_at(&Conn { vendor: "Acme", port: 22 }, 0));
/// assert!(!q.passes_at(&Conn { vendor: "Acme", port: 443 }, 0));
/// # Ok::<(), mcas_kql::Error>(())
/// ```
pub trait Row {
    /// The value of a column, or `None` when the row does not have it.
    fn get(&self, column: &str) -> Option<Value<'_>>;

    /// The columns [`Row::value_at`] reads, by place: the same static list for every row of
    /// the type (a query recognises it by its address). `None`, the default, for rows whose
    /// columns have no fixed places.
    fn layout(&self) -> Option<&'static [(&'static str, Type)]> {
        None
    }

    /// The value of the column at `index` of [`Row::layout`]: the same as `get` with its
    /// name, including its type. Only called with an index of the layout.
    fn value_at(&self, index: usize) -> Option<Value<'_>> {
        let _ = index;
        None
    }

    /// Writes the row's layout columns marked in `keep` (by place) as
    /// [`OutputRow::write_json_compact`] writes an output row of those columns: the column
    /// `first` (when kept) first, then the others in layout order, null values and empty
    /// strings left out, in Azure's formats ([`Value::write_json`]). Returns false, having
    /// written nothing, when the row cannot: the default, and a row with values outside its
    /// layout (the output would have them too).
    ///
    /// [`Query::transform`] calls it for a kept row of a query that passes its input through
    /// ([`Query::layout_projection`]), instead of building the output row.
    fn write_json_kept(&self, keep: &[bool], first: Option<&str>, out: &mut Vec<u8>) -> bool {
        let _ = (keep, first, out);
        false
    }
}

/// A JSON object as a row: strings borrow, integers are `long`, other numbers `real`,
/// objects and arrays `dynamic`, `null` is null.
impl Row for Map<String, Json> {
    fn get(&self, column: &str) -> Option<Value<'_>> {
        Map::get(self, column).map(kept::json_value)
    }
}

struct NoRow;

impl Row for NoRow {
    fn get(&self, _: &str) -> Option<Value<'_>> {
        None
    }
}

/// Where a compiled query's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceKind {
    /// `source`: one run per input row ([`Query::run`]).
    Input,
    /// `print`: one row, no input ([`Query::run_without_input`]).
    Print,
    /// `datatable(...)[...]`: constant rows, no input ([`Query::run_without_input`]).
    Datatable,
}

/// A compiled query: parse and bind once, run on many rows.
#[derive(Debug, Clone)]
pub struct Query {
    plan: compile::Plan,
    output: Vec<(String, Type)>,
    syntax: Syntax,
    /// The plan bound to the layout of the first row that had one.
    bound: std::sync::OnceLock<layout::Binding>,
}

/// A parsed query, not yet bound to a schema, without the positions of its parts: two texts
/// that differ only in spacing, comments, parentheses, quoting or the spelling of a literal
/// parse to equal `Syntax`.
///
/// Its [`Display`](std::fmt::Display) is the canonical text: one `let` or tabular operator a
/// line, every binary, string and `in` expression parenthesized, strings double-quoted, names
/// quoted only when they are not plain identifiers, each literal in one spelling. Parsing the
/// canonical text gives an equal `Syntax`.
///
/// ```
/// use mcas_kql::{Dialect, Syntax};
///
/// let s = Syntax::parse("source|where a>1 and b has 'x'", Dialect::Transformation)?;
/// assert_eq!(s.to_string(), "source\n| where ((a > 1) and (b has \"x\"))");
/// assert_eq!(Syntax::parse(&s.to_string(), Dialect::Transformation)?, s);
/// # Ok::<(), mcas_kql::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Syntax(ast::Query);

impl Syntax {
    /// Parses a query in a dialect, without binding it to a schema.
    pub fn parse(text: &str, dialect: Dialect) -> Result<Syntax, Error> {
        Ok(Syntax(print::without_positions(parser::parse_query(
            text, dialect,
        )?)))
    }
}

impl PartialEq for Syntax {
    /// Structural equality; unlike the derived one, a `real(nan)` literal equals itself.
    fn eq(&self, other: &Syntax) -> bool {
        self.0 == other.0 || format!("{:?}", self.0) == format!("{:?}", other.0)
    }
}

impl std::fmt::Display for Syntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&print::to_kql(&self.0))
    }
}

/// One output row: the output columns in order, with their values.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRow<'a> {
    columns: &'a [(String, Type)],
    values: Vec<Value<'a>>,
}

impl<'a> OutputRow<'a> {
    /// The columns and their values, in output order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.columns
            .iter()
            .map(|c| c.0.as_str())
            .zip(self.values.iter())
    }

    /// The value of one column.
    pub fn get(&self, column: &str) -> Option<&Value<'a>> {
        self.columns
            .iter()
            .position(|c| c.0 == column)
            .map(|i| &self.values[i])
    }

    /// The row as a JSON object, in Azure's formats (see [`Value::to_json`]).
    pub fn to_json(&self) -> Map<String, Json> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_json()))
            .collect()
    }
    /// Appends the row to `out` as one compact JSON object, as an ingestion request wants
    /// it: null values and empty strings are left out (Kusto gives every column a value,
    /// `""` for an absent string; Log Analytics stores an absent column as empty), the
    /// column `first` (if present) comes first, and strings are written without a copy.
    ///
    /// ```
    /// # use mcas_kql::{Query, Schema, Type};
    /// let schema = Schema::new([("A", Type::String), ("B", Type::String), ("N", Type::Long)]);
    /// let q = Query::compile("source | extend C = strcat(A, '!')", &schema)?;
    /// let row: serde_json::Map<String, serde_json::Value> =
    ///     serde_json::from_str(r#"{"A": "x", "B": "", "N": null}"#)?;
    /// let mut out = Vec::new();
    /// q.run(&row).expect("kept").write_json_compact(Some("C"), &mut out);
    /// assert_eq!(out, br#"{"C":"x!","A":"x"}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_json_compact(&self, first: Option<&str>, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(out, &Compact { row: self, first });
    }
}

/// A row a query kept ([`Query::transform`]), to be written.
#[derive(Debug)]
pub struct Transformed<'a>(Kept<'a>);

enum Kept<'a> {
    /// The query passes its input through: the row's own columns at the kept places.
    Columns {
        query: &'a Query,
        row: &'a dyn Row,
        keep: &'a [bool],
        now: i64,
    },
    /// The output row the query built.
    Built(OutputRow<'a>),
}

impl std::fmt::Debug for Kept<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::Columns { keep, .. } => f
                .debug_struct("Columns")
                .field("kept", &keep.iter().filter(|k| **k).count())
                .finish_non_exhaustive(),
            Kept::Built(o) => f.debug_tuple("Built").field(o).finish(),
        }
    }
}

impl Transformed<'_> {
    /// Appends the row as one compact JSON object: the bytes
    /// [`OutputRow::write_json_compact`] writes for the query's output row.
    ///
    /// ```
    /// # use mcas_kql::{Query, Schema, Type};
    /// let schema = Schema::new([("A", Type::String), ("B", Type::String), ("N", Type::Long)]);
    /// let q = Query::compile("source | where N > 1 | project-away B", &schema)?;
    /// let row: serde_json::Map<String, serde_json::Value> =
    ///     serde_json::from_str(r#"{"A": "x", "B": "y", "N": 2}"#)?;
    /// let mut out = Vec::new();
    /// q.transform(&row).expect("kept").write_json_compact(None, &mut out);
    /// assert_eq!(out, br#"{"A":"x","N":2}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_json_compact(&self, first: Option<&str>, out: &mut Vec<u8>) {
        match &self.0 {
            Kept::Columns {
                query,
                row,
                keep,
                now,
            } => {
                if !row.write_json_kept(keep, first, out)
                    && let Some(o) = query.run_at(*row, *now)
                {
                    o.write_json_compact(first, out);
                }
            }
            Kept::Built(o) => o.write_json_compact(first, out),
        }
    }
}

/// [`OutputRow::write_json_compact`]'s serialisation.
struct Compact<'r, 'a> {
    row: &'r OutputRow<'a>,
    first: Option<&'r str>,
}

impl serde::Serialize for Compact<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let entry = |m: &mut S::SerializeMap, k: &str, v: &Value<'_>| match v {
            Value::Null => Ok(()),
            Value::String(t) if t.is_empty() => Ok(()),
            Value::String(t) => m.serialize_entry(k, t.as_ref()),
            other => m.serialize_entry(k, &other.to_json()),
        };
        let mut m = s.serialize_map(None)?;
        if let Some(f) = self.first
            && let Some(v) = self.row.get(f)
        {
            entry(&mut m, f, v)?;
        }
        for (k, v) in self.row.iter() {
            if Some(k) != self.first {
                entry(&mut m, k, v)?;
            }
        }
        m.end()
    }
}

fn system_now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX)
}

impl Query {
    /// Parses and compiles a transformation against an input schema. Unknown columns are an
    /// error that names the nearest column.
    pub fn compile(text: &str, schema: &Schema) -> Result<Query, Error> {
        Query::compile_with(text, schema, Dialect::Transformation, false)
    }

    /// Parses and compiles with no schema: every column the query names is read from the row
    /// as `dynamic`, and a `source` row passes through no column it does not name. For checking
    /// a transformation of any table.
    pub fn compile_lenient(text: &str) -> Result<Query, Error> {
        Query::compile_with(text, &Schema::default(), Dialect::Transformation, true)
    }

    /// Parses and compiles in a dialect; `lenient` accepts unknown columns as `dynamic`.
    pub fn compile_with(
        text: &str,
        schema: &Schema,
        dialect: Dialect,
        lenient: bool,
    ) -> Result<Query, Error> {
        let ast = parser::parse_query(text, dialect)?;
        let plan = compile::compile(text, &ast, &schema.columns, lenient, dialect)?;
        let output = plan.output.iter().map(|c| (c.name.clone(), c.ty)).collect();
        let syntax = Syntax(print::without_positions(ast));
        Ok(Query {
            plan,
            output,
            syntax,
            bound: std::sync::OnceLock::new(),
        })
    }

    /// A query of an already compiled plan (the query dialect's row-level steps).
    pub(crate) fn from_plan(plan: compile::Plan, ast: ast::Query) -> Query {
        let output = plan.output.iter().map(|c| (c.name.clone(), c.ty)).collect();
        Query {
            plan,
            output,
            syntax: Syntax(print::without_positions(ast)),
            bound: std::sync::OnceLock::new(),
        }
    }

    /// The parsed query the plan was compiled from.
    pub fn syntax(&self) -> &Syntax {
        &self.syntax
    }

    /// The query's canonical text (see [`Syntax`]): compiled against the same schema, it gives
    /// the same plan.
    pub fn to_kql(&self) -> String {
        self.syntax.to_string()
    }

    /// Whether two compiled queries have the same plan: equal syntax (positions aside) bound
    /// to the same output schema.
    pub fn same_plan(&self, other: &Query) -> bool {
        self.syntax == other.syntax && self.output == other.output
    }

    /// The output columns and their types, known at compile time.
    pub fn output_schema(&self) -> &[(String, Type)] {
        &self.output
    }

    /// Where the rows come from.
    pub fn source_kind(&self) -> SourceKind {
        match self.plan.source {
            compile::PlanSource::Input => SourceKind::Input,
            compile::PlanSource::Print => SourceKind::Print,
            compile::PlanSource::Datatable { .. } => SourceKind::Datatable,
        }
    }

    /// Runs a `source` query on one row, reading the clock once for `now()` and `ago()`.
    /// `None` when the row is filtered out.
    pub fn run<'a>(&'a self, row: &'a dyn Row) -> Option<OutputRow<'a>> {
        self.run_at(row, system_now())
    }

    /// [`Query::run`] with `now()` fixed at `now` (100 ns ticks since the Unix epoch).
    pub fn run_at<'a>(&'a self, row: &'a dyn Row, now: i64) -> Option<OutputRow<'a>> {
        let slots = vec![Value::Null; self.plan.slots];
        let reads = self.binding(row).map(|b| &*b.reads);
        let values = eval::run(&self.plan, row, reads, slots, now)?;
        Some(OutputRow {
            columns: &self.output,
            values,
        })
    }

    /// [`Query::run_at`], the output row packed as a kept row of a window: no output row
    /// built, and slots on the stack for a query with few computed columns.
    pub(crate) fn run_kept(&self, row: &dyn Row, now: i64) -> Option<KeptRow> {
        const STACK: usize = 8;
        let null = |_| Value::Null;
        let reads = self.binding(row).map(|b| &*b.reads);
        let mut stack: [Value<'_>; STACK];
        let mut heap: Vec<Value<'_>>;
        let slots: &mut [Value<'_>] = match self.plan.slots {
            0 => &mut [],
            n if n <= STACK => {
                stack = std::array::from_fn(null);
                &mut stack[..n]
            }
            n => {
                heap = vec![Value::Null; n];
                &mut heap
            }
        };
        if !eval::run_stages(&self.plan, row, reads, slots, now) {
            return None;
        }
        let env = eval::Env {
            plan: &self.plan,
            row,
            reads,
            slots,
            now,
        };
        let cols = &self.plan.output;
        if cols.len() <= STACK {
            let mut values: [Value<'_>; STACK] = std::array::from_fn(null);
            for (v, c) in values.iter_mut().zip(cols) {
                *v = env.output(c);
            }
            Some(KeptRow::build(&self.output, &values[..cols.len()]))
        } else {
            let values: Vec<Value<'_>> = cols.iter().map(|c| env.output(c)).collect();
            Some(KeptRow::build(&self.output, &values))
        }
    }

    /// Whether [`Query::run`] keeps `row`, without building the output row. The clock is
    /// read only when the query uses it. A query that only has `where`s over the row's
    /// columns allocates nothing.
    pub fn passes(&self, row: &dyn Row) -> bool {
        let now = if self.plan.uses_clock {
            system_now()
        } else {
            0
        };
        self.passes_at(row, now)
    }

    /// [`Query::passes`] with `now()` fixed at `now`.
    pub fn passes_at(&self, row: &dyn Row, now: i64) -> bool {
        let reads = self.binding(row).map(|b| &*b.reads);
        if self.plan.slots == 0 {
            eval::run_stages(&self.plan, row, reads, &mut [], now)
        } else {
            let mut slots = vec![Value::Null; self.plan.slots];
            eval::run_stages(&self.plan, row, reads, &mut slots, now)
        }
    }

    /// When the query passes its input through (it only has `where`, `project-away`, or a
    /// `project` of input columns in their order), the columns of `row`'s
    /// [layout](Row::layout) that its output keeps, by place: for a row that
    /// [passes](Query::passes), the output row is the row's own values at the places marked
    /// `true`, in layout order, unchanged, plus the output columns that are not in the
    /// layout, read by name (a row with no value for them has none in the output). `None`
    /// for other queries and for rows without a layout.
    ///
    /// A row type can then write a kept row itself, leaving the other columns out, instead
    /// of building an [`OutputRow`].
    pub fn layout_projection(&self, row: &dyn Row) -> Option<&[bool]> {
        self.binding(row)?.kept.as_deref()
    }

    /// Runs a `source` query on one row for writing it: `None` when the row is filtered out.
    /// The clock is read only when the query uses it.
    ///
    /// For a query that passes its input through ([`Query::layout_projection`]) this only
    /// runs the filters, and the kept row is written by the row itself
    /// ([`Row::write_json_kept`]), leaving the dropped columns out; other queries build the
    /// output row. Either way [`Transformed::write_json_compact`] writes the bytes
    /// [`OutputRow::write_json_compact`] writes.
    pub fn transform<'a>(&'a self, row: &'a dyn Row) -> Option<Transformed<'a>> {
        let now = if self.plan.uses_clock {
            system_now()
        } else {
            0
        };
        self.transform_at(row, now)
    }

    /// [`Query::transform`] with `now()` fixed at `now`.
    pub fn transform_at<'a>(&'a self, row: &'a dyn Row, now: i64) -> Option<Transformed<'a>> {
        if let Some(keep) = self.layout_projection(row) {
            return self
                .passes_at(row, now)
                .then_some(Transformed(Kept::Columns {
                    query: self,
                    row,
                    keep,
                    now,
                }));
        }
        self.run_at(row, now).map(|o| Transformed(Kept::Built(o)))
    }

    /// The plan bound to `row`'s layout: bound on the first row with a layout, and used for
    /// every later row of that layout.
    fn binding(&self, row: &dyn Row) -> Option<&layout::Binding> {
        let layout = row.layout()?;
        let b = self
            .bound
            .get_or_init(|| layout::Binding::new(&self.plan, layout));
        b.is_for(layout).then_some(b)
    }

    /// Runs a `print` or `datatable` query (no input); a `source` query gives no rows.
    pub fn run_without_input(&self) -> Vec<OutputRow<'_>> {
        self.run_without_input_at(system_now())
    }

    /// [`Query::run_without_input`] with `now()` fixed at `now`.
    pub fn run_without_input_at(&self, now: i64) -> Vec<OutputRow<'_>> {
        static NO_ROW: NoRow = NoRow;
        match &self.plan.source {
            compile::PlanSource::Input => Vec::new(),
            compile::PlanSource::Print => self.run_at(&NO_ROW, now).into_iter().collect(),
            compile::PlanSource::Datatable {
                slots: places,
                rows,
            } => rows
                .iter()
                .filter_map(|r| {
                    let mut slots = vec![Value::Null; self.plan.slots];
                    for (&k, v) in places.iter().zip(r) {
                        slots[k] = v.reborrow();
                    }
                    let values = eval::run(&self.plan, &NO_ROW, None, slots, now)?;
                    Some(OutputRow {
                        columns: &self.output,
                        values,
                    })
                })
                .collect(),
        }
    }
}

/// A query of the query dialect ([`Dialect::Query`]), as scheduled alert rules write them: it
/// reads a named table (`CommonSecurityLog`, `Syslog`) and may use multi-row operators
/// (`summarize`, `sort`, `top`, `join`, `mv-expand`, ...).
///
/// It runs in two parts, so that a rule can keep a window of rows as they stream past:
/// - [`TableQuery::row_prefix`]: the leading row-level steps (`where`, `extend`, `project`,
///   `project-away`, `project-rename`, `parse`, up to the first multi-row operator), on each
///   row as it arrives. A kept row is an owned JSON object; null values and empty strings are
///   left out of it (they read back the same). The object holds the columns the prefix
///   outputs (all the table's columns when the prefix does not `project`), narrowed, in a
///   query of one pipeline (no tabular `let`, no `join`), to those the rest of the query
///   reads before a `summarize`, `project`, `distinct` of columns or `count`.
/// - [`TableQuery::run_window`]: the rest of the query over the kept rows of a window.
///
/// A query that reads its table more than once (a `join` of `CommonSecurityLog` with itself,
/// or two tabular `let`s over it) has a prefix per read. Then the kept row is the table row
/// itself (every non-empty column), kept when it passes any of the prefixes, and
/// `run_window` runs each read's prefix over the window rows before the rest of that side.
///
/// `now` (100 ns ticks since the Unix epoch, as in [`Query::run_at`]) is the time of `now()`
/// and `ago()`. The prefix ends before the first step that reads the clock, so such a step
/// (`where TimeGenerated > ago(1h)`) runs in `run_window`, at the time of the run, as Sentinel
/// runs it; a prefix never reads the clock today, and `row_prefix`'s `now` is there for a
/// prefix that would.
///
/// ```
/// use mcas_kql::{Schema, TableQuery, Type};
/// use serde_json::json;
///
/// let schema = Schema::new([
///     ("TimeGenerated", Type::DateTime),
///     ("DeviceVendor", Type::String),
///     ("SourceIP", Type::String),
///     ("DestinationPort", Type::Int),
///     ("DeviceAction", Type::String),
/// ]);
/// let q = TableQuery::compile(
///     r#"CommonSecurityLog
///        | where DeviceVendor == "Palo Alto Networks" and DeviceAction == "deny"
///        | summarize Ports = dcount(DestinationPort) by SourceIP, bin(TimeGenerated, 5m)
///        | where Ports >= 3"#,
///     &schema,
/// )?;
/// assert_eq!(q.tables(), ["CommonSecurityLog"]);
///
/// let mut window = Vec::new();
/// for (t, port, action) in [("10:00:01", 22, "deny"), ("10:00:02", 23, "deny"),
///                           ("10:01:00", 80, "allow"), ("10:02:00", 3389, "deny")] {
///     let row = json!({
///         "TimeGenerated": format!("2024-05-01T{t}Z"), "DeviceVendor": "Palo Alto Networks",
///         "SourceIP": "10.0.0.9", "DestinationPort": port, "DeviceAction": action,
///     });
///     let row = row.as_object().expect("an object");
///     if let Some(kept) = q.row_prefix(row, 0) {
///         window.push(kept);
///     }
/// }
/// assert_eq!(window.len(), 3); // the allowed connection is not kept
///
/// let out = q.run_window(&window, 0);
/// assert_eq!(out.len(), 1);
/// assert_eq!(
///     serde_json::Value::Object(out[0].clone()),
///     json!({"SourceIP": "10.0.0.9", "TimeGenerated": "2024-05-01T10:00:00.0000000Z", "Ports": 3}),
/// );
///
/// // An unsupported operator is an error with its position.
/// let err = TableQuery::compile("CommonSecurityLog\n| evaluate bag_unpack(x)", &schema).unwrap_err();
/// assert_eq!((err.line(), err.column()), (2, 3));
/// assert_eq!(err.message(), "the 'evaluate' operator is not supported in the query dialect");
/// # Ok::<(), mcas_kql::Error>(())
/// ```
///
/// What the dialect supports, and what it does not yet, is listed in the repository's
/// `docs/kql.md`.
#[derive(Debug, Clone)]
pub struct TableQuery {
    inner: query::Compiled,
}

impl TableQuery {
    /// Compiles a query against the schema of the table it reads (the same schema serves
    /// every table the query names). An unsupported operator, function or table is an
    /// [`Error`] with its position.
    pub fn compile(text: &str, schema: &Schema) -> Result<TableQuery, Error> {
        Ok(TableQuery {
            inner: query::compile(text, schema)?,
        })
    }

    /// The tables the query reads, each once, in the order the query first names them
    /// (both sides of a `join` included).
    pub fn tables(&self) -> &[String] {
        &self.inner.tables
    }

    /// Runs the leading row-level steps on one row: `None` when the row is not kept, else the
    /// row to keep in the window (see the type's documentation for its columns).
    pub fn row_prefix(&self, row: &dyn Row, now: i64) -> Option<Map<String, Json>> {
        self.inner.row_prefix(row, now)
    }

    /// Whether [`row_prefix`](TableQuery::row_prefix) would keep `row`, without building the
    /// row to keep (for a caller that would drop it anyway, a full window say).
    pub fn row_passes(&self, row: &dyn Row, now: i64) -> bool {
        self.inner.row_passes(row, now)
    }

    /// Runs the rest of the query over the kept rows of a window, in arrival order: the
    /// result rows, each with every output column (in [`TableQuery::output_schema`] order;
    /// values in Azure's JSON formats, see [`Value::to_json`]).
    pub fn run_window(&self, rows: &[Map<String, Json>], now: i64) -> Vec<Map<String, Json>> {
        self.inner.run_window(rows, now)
    }

    /// [`TableQuery::row_prefix`], the kept row packed ([`KeptRow`]): what a window on the
    /// stream keeps. Nothing is built for a row the prefix drops, and a kept row is one
    /// allocation, with no value formatted.
    ///
    /// ```
    /// use mcas_kql::{Schema, TableQuery, Type};
    /// use serde_json::json;
    ///
    /// let schema = Schema::new([
    ///     ("TimeGenerated", Type::DateTime),
    ///     ("SourceIP", Type::String),
    ///     ("DestinationPort", Type::Int),
    /// ]);
    /// let q = TableQuery::compile(
    ///     "CommonSecurityLog | where DestinationPort < 1024 | summarize count() by SourceIP",
    ///     &schema,
    /// )?;
    /// let rows = [
    ///     json!({"TimeGenerated": "2024-05-01T10:00:00Z", "SourceIP": "10.0.0.9", "DestinationPort": 22}),
    ///     json!({"TimeGenerated": "2024-05-01T10:00:01Z", "SourceIP": "10.0.0.9", "DestinationPort": 8080}),
    /// ];
    /// let window: Vec<_> = rows
    ///     .iter()
    ///     .filter_map(|r| q.row_prefix_kept(r.as_object()?, 0))
    ///     .collect();
    /// assert_eq!(window.len(), 1);
    /// // Only the column the rest of the query reads is kept.
    /// assert_eq!(json!(q.kept_to_json(&window[0])), json!({"SourceIP": "10.0.0.9"}));
    /// assert_eq!(json!(q.run_window_kept(&window, 0)), json!([{"SourceIP": "10.0.0.9", "count_": 1}]));
    /// # Ok::<(), mcas_kql::Error>(())
    /// ```
    pub fn row_prefix_kept(&self, row: &dyn Row, now: i64) -> Option<KeptRow> {
        self.inner.row_prefix_kept(row, now)
    }

    /// [`TableQuery::run_window`] over kept rows of [`TableQuery::row_prefix_kept`]: the
    /// same result as over the JSON objects they stand for.
    pub fn run_window_kept(&self, rows: &[KeptRow], now: i64) -> Vec<Map<String, Json>> {
        self.inner.run_window_kept(rows, now)
    }

    /// The JSON object a kept row of this query stands for: what
    /// [`TableQuery::row_prefix`] gives for the same row.
    pub fn kept_to_json(&self, row: &KeptRow) -> Map<String, Json> {
        row.to_json(self.inner.kept_cols())
    }

    /// A kept row of this query from the JSON object it stands for (a window's row as saved):
    /// members that are not the kept row's columns are left out (a window run does not read
    /// them).
    pub fn kept_from_json(&self, row: &Map<String, Json>) -> KeptRow {
        KeptRow::from_json(self.inner.kept_cols(), row)
    }

    /// The result's columns and types, known at compile time. A type the compiler cannot
    /// know (a `dynamic` expression's minimum, ...) is `dynamic`.
    pub fn output_schema(&self) -> &[(String, Type)] {
        self.inner.output_schema()
    }
}
