//! The query dialect: a pipeline over a window of rows of a table (`CommonSecurityLog`,
//! `Syslog`), with the multi-row operators of scheduled alert rules.
//!
//! A query compiles to a tree of [`Pipe`]s. Every pipe starts from a source (a table read
//! through its row-level prefix) and runs steps over a [`Table`]: runs of row-level operators
//! are compiled as one-row [`crate::Query`]s against the columns at that point, and the
//! multi-row operators run here. Scalar expressions inside multi-row operators (`by` keys,
//! aggregate arguments, sort keys, `mv-expand` arrays) are compiled the same way, as a
//! `project` of the expressions, and run on every row.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value as Json};

use crate::ast::{self, Assign, Expr, ExprKind, JoinKind, Let, Operator, Pipeline, Source};
use crate::error::{Error, ErrorKind};
use crate::eval::compare;
use crate::kept::KeptRow;
use crate::value::{Type, Value, coerce};
use crate::{Dialect, Row, Schema};

/// The tables a query may read.
pub(crate) const TABLES: &[&str] = &["CommonSecurityLog", "Syslog"];

/// The most rows a `join` or an `mv-expand` produces (the rest are left out): a bound on the
/// memory of a run, the size of Kusto's own default result truncation.
pub(crate) const MAX_ROWS: usize = 500_000;

/// The most columns a `join` may output.
const MAX_COLUMNS: usize = 4_096;

/// The most steps a query may have once its tabular `let`s are copied where they are used.
const MAX_STEPS: usize = 10_000;

/// Steps of a pipe, its joins' pipes included.
fn size(p: &Pipe) -> usize {
    p.steps
        .iter()
        .map(|s| match s {
            Step::Join { right, .. } => 1 + size(right),
            _ => 1,
        })
        .sum::<usize>()
        + 1
}

/// Rows with named, typed columns.
#[derive(Debug, Clone, Default)]
struct Table {
    cols: Vec<(String, Type)>,
    rows: Vec<Vec<Value<'static>>>,
}

/// A row of a [`Table`], read by column name.
struct TRow<'t> {
    index: &'t HashMap<String, usize>,
    values: &'t [Value<'static>],
}

impl Row for TRow<'_> {
    fn get(&self, column: &str) -> Option<Value<'_>> {
        let i = *self.index.get(column)?;
        self.values.get(i).map(Value::reborrow)
    }
}

fn index_of(cols: &[(String, Type)]) -> HashMap<String, usize> {
    cols.iter()
        .enumerate()
        .map(|(i, (n, _))| (n.clone(), i))
        .collect()
}

/// The rows of a window: JSON objects, or kept rows standing for them.
#[derive(Clone, Copy)]
enum Window<'w> {
    Json(&'w [Map<String, Json>]),
    Kept(&'w [KeptRow]),
}

/// A kept row read by column name as the JSON object it stands for, with the places of the
/// columns it keeps.
struct KeptView<'r> {
    index: &'r HashMap<String, usize>,
    row: &'r KeptRow,
}

impl Row for KeptView<'_> {
    fn get(&self, column: &str) -> Option<Value<'_>> {
        Some(self.row.entry(*self.index.get(column)?)?.raw())
    }
}

/// A one-row query compiled against a table's columns, and how to run it on every row.
#[derive(Debug, Clone)]
struct RowQuery {
    query: crate::Query,
}

impl RowQuery {
    fn output(&self) -> &[(String, Type)] {
        self.query.output_schema()
    }

    /// Runs on every row of `t`; the kept rows' output values.
    fn run(&self, t: &Table, now: i64) -> Vec<Vec<Value<'static>>> {
        let index = index_of(&t.cols);
        t.rows
            .iter()
            .filter_map(|values| {
                let row = TRow {
                    index: &index,
                    values,
                };
                self.query
                    .run_at(&row, now)
                    .map(|o| o.values.into_iter().map(Value::into_owned).collect())
            })
            .collect()
    }

    /// The values of the (filter-free) query on each row, one vector per row.
    fn eval_each(&self, t: &Table, now: i64) -> Vec<Vec<Value<'static>>> {
        let index = index_of(&t.cols);
        t.rows
            .iter()
            .map(|values| {
                let row = TRow {
                    index: &index,
                    values,
                };
                match self.query.run_at(&row, now) {
                    Some(o) => o.values.into_iter().map(Value::into_owned).collect(),
                    None => vec![Value::Null; self.output().len()],
                }
            })
            .collect()
    }
}

/// A key that identifies a value for grouping and distinctness (type and text).
fn key_of(v: &Value<'_>, out: &mut String) {
    use std::fmt::Write as _;
    // An int and a long of the same number are the same key.
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{:?}\u{1}", Value::Long(i64::from(*i)));
        }
        v => {
            let _ = write!(out, "{v:?}\u{1}");
        }
    }
}

fn keys_of(values: &[Value<'_>]) -> String {
    let mut k = String::new();
    for v in values {
        key_of(v, &mut k);
    }
    k
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Count,
    CountIf,
    DCount,
    DCountIf,
    Min,
    Max,
    Sum,
    SumIf,
    Avg,
    MakeSet,
    MakeList,
    ArgMax,
    ArgMin,
    TakeAny,
}

/// What an `arg_max`/`arg_min`/`take_any` returns: a computed expression or an input column.
#[derive(Debug, Clone)]
enum Ret {
    Expr(usize),
    Column(usize),
}

#[derive(Debug, Clone)]
struct Agg {
    kind: AggKind,
    /// The aggregate's arguments: places in the evaluated expressions.
    args: Vec<usize>,
    /// `make_set`/`make_list` size limit.
    limit: usize,
    /// `arg_max`/`arg_min`/`take_any`: the values returned.
    rets: Vec<Ret>,
    /// Output columns (one, or the `rets` of `arg_max`/`take_any`).
    outputs: Vec<(String, Type)>,
}

#[derive(Debug, Clone)]
struct SortSpec {
    /// Place of the key in the evaluated expressions.
    key: usize,
    desc: bool,
    nulls_first: bool,
}

#[derive(Debug, Clone)]
enum Step {
    /// A run of row-level operators.
    Rows(RowQuery),
    Summarize {
        exprs: Option<RowQuery>,
        /// The first `by` places of `exprs` are the group keys.
        by: usize,
        aggs: Vec<Agg>,
        cols: Vec<(String, Type)>,
    },
    Sort {
        exprs: RowQuery,
        keys: Vec<SortSpec>,
        take: Option<usize>,
    },
    Take(usize),
    Distinct(Vec<usize>),
    Count,
    Reorder(Vec<usize>),
    MvExpand {
        exprs: RowQuery,
        /// Per expanded expression: the output column's place (existing or new) and type.
        targets: Vec<(usize, Option<Type>)>,
        limit: Option<usize>,
        cols: Vec<(String, Type)>,
    },
    Join {
        kind: JoinKind,
        right: Box<Pipe>,
        keys: Vec<(usize, usize)>,
        /// Right columns in the output (by place in the right table).
        right_out: Vec<usize>,
        left_out: bool,
        cols: Vec<(String, Type)>,
    },
}

/// A compiled pipeline: a source and the steps after it.
#[derive(Debug, Clone)]
struct Pipe {
    source: usize,
    steps: Vec<Step>,
    cols: Vec<(String, Type)>,
}

/// A table source: the table and its row-level prefix.
#[derive(Debug, Clone)]
struct SourcePrefix {
    table: String,
    prefix: crate::Query,
    /// How many of the pipeline's operators the prefix runs.
    split: usize,
}

/// A query of the query dialect, compiled (see [`crate::TableQuery`]).
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) tables: Vec<String>,
    sources: Vec<SourcePrefix>,
    main: Pipe,
    /// With one source: which of its prefix's output columns the rest of the query reads
    /// (`None`: all of them, or not known).
    keep: Option<Vec<bool>>,
    /// With `keep`: the prefix followed by a `project` of the kept columns, what
    /// `row_prefix` runs (it reads and converts only those).
    narrow: Option<crate::Query>,
    /// The table's columns (kept rows in shared mode carry them all).
    table_schema: Vec<(String, Type)>,
}

struct QBinder<'q> {
    src: &'q str,
    schema: &'q Schema,
    /// Scalar lets and functions, passed to every compiled row-level query.
    scalar_lets: Vec<(String, usize, Let)>,
    tabular: HashMap<String, Pipe>,
    sources: Vec<SourcePrefix>,
}

type B<T> = Result<T, Error>;

impl QBinder<'_> {
    fn err<T>(&self, kind: ErrorKind, pos: usize) -> B<T> {
        Err(Error::new(kind, self.src, pos))
    }

    /// Compiles row-level operators against `cols` as a one-row query.
    fn row_query(
        &self,
        cols: &[(String, Type)],
        ops: Vec<(Operator, usize)>,
        pos: usize,
    ) -> B<crate::Query> {
        let q = ast::Query {
            lets: self.scalar_lets.clone(),
            pipeline: Pipeline {
                source: Source::Input,
                source_pos: pos,
                operators: ops,
            },
        };
        let plan = crate::compile::compile(self.src, &q, cols, false, Dialect::Query)?;
        Ok(crate::Query::from_plan(plan, q))
    }

    /// A `project` of these expressions as `__e0`, `__e1`, ...: evaluated on every row.
    fn exprs(&self, cols: &[(String, Type)], exprs: &[&Expr], pos: usize) -> B<RowQuery> {
        let items = exprs
            .iter()
            .enumerate()
            .map(|(k, e)| Assign {
                name: Some((format!("__e{k}"), e.pos)),
                expr: (*e).clone(),
            })
            .collect();
        Ok(RowQuery {
            query: self.row_query(cols, vec![(Operator::Project(items), pos)], pos)?,
        })
    }

    fn pipeline(&mut self, p: &Pipeline) -> B<Pipe> {
        let mut ops: &[(Operator, usize)] = &p.operators;
        let mut pipe = match &p.source {
            Source::Named(name) => {
                if let Some(t) = self.tabular.get(name) {
                    t.clone()
                } else if TABLES.contains(&name.as_str()) {
                    let mut split = ops
                        .iter()
                        .position(|(o, _)| !o.is_row_level())
                        .unwrap_or(ops.len());
                    // A step that reads the clock (`ago()`, `now()`) runs with the window, at
                    // the time of the run, not when the row arrives.
                    let prefix = loop {
                        let q = self.row_query(
                            self.schema.columns(),
                            ops[..split].to_vec(),
                            p.source_pos,
                        )?;
                        if !q.plan.uses_clock || split == 0 {
                            break q;
                        }
                        split -= 1;
                    };
                    ops = &ops[split..];
                    let cols = prefix.output_schema().to_vec();
                    self.sources.push(SourcePrefix {
                        table: name.clone(),
                        prefix,
                        split,
                    });
                    Pipe {
                        source: self.sources.len() - 1,
                        steps: Vec::new(),
                        cols,
                    }
                } else {
                    let names = TABLES
                        .iter()
                        .copied()
                        .chain(self.tabular.keys().map(String::as_str));
                    let suggestion = crate::compile::suggest(name, names);
                    return self.err(
                        ErrorKind::UnsupportedTable {
                            name: name.clone(),
                            suggestion,
                        },
                        p.source_pos,
                    );
                }
            }
            Source::Input => {
                return self.err(
                    ErrorKind::UnsupportedTable {
                        name: "source".into(),
                        suggestion: Some("CommonSecurityLog".into()),
                    },
                    p.source_pos,
                );
            }
            Source::Print(_) | Source::Datatable { .. } => {
                return self.err(
                    ErrorKind::UnsupportedInQuery("print and datatable as a query's input".into()),
                    p.source_pos,
                );
            }
        };
        let mut k = 0;
        while k < ops.len() {
            if ops[k].0.is_row_level() {
                let end = ops[k..]
                    .iter()
                    .position(|(o, _)| !o.is_row_level())
                    .map_or(ops.len(), |e| k + e);
                let q = self.row_query(&pipe.cols, ops[k..end].to_vec(), ops[k].1)?;
                pipe.cols = q.output_schema().to_vec();
                pipe.steps.push(Step::Rows(RowQuery { query: q }));
                k = end;
                continue;
            }
            let (op, pos) = &ops[k];
            let step = self.step(op, *pos, &pipe.cols)?;
            pipe.cols = step_cols(&step, &pipe.cols);
            pipe.steps.push(step);
            k += 1;
        }
        if size(&pipe) > MAX_STEPS || self.sources.len() > MAX_STEPS {
            return self.err(
                ErrorKind::Syntax("query too large once its lets are inlined".into()),
                p.source_pos,
            );
        }
        Ok(pipe)
    }

    fn count_arg(&self, e: &Expr) -> B<usize> {
        match &e.kind {
            ExprKind::Lit(ast::Lit::Long(n)) if *n >= 0 => {
                Ok(usize::try_from(*n).unwrap_or(usize::MAX))
            }
            ExprKind::Lit(ast::Lit::Int(n)) if *n >= 0 => Ok(usize::try_from(*n).unwrap_or(0)),
            ExprKind::Name(n) => match self.scalar_lets.iter().rev().find(|l| &l.0 == n) {
                Some((_, _, Let::Scalar(e))) => self.count_arg(e),
                _ => self.err(
                    ErrorKind::BadArguments("the row count must be a constant".into()),
                    e.pos,
                ),
            },
            _ => self.err(
                ErrorKind::BadArguments("the row count must be a non-negative constant".into()),
                e.pos,
            ),
        }
    }

    fn step(&mut self, op: &Operator, pos: usize, cols: &[(String, Type)]) -> B<Step> {
        Ok(match op {
            Operator::Summarize { aggs, by } => self.summarize(aggs, by, pos, cols)?,
            Operator::Sort(keys) | Operator::Top { by: keys, .. } => {
                let exprs: Vec<&Expr> = keys.iter().map(|k| &k.expr).collect();
                let take = match op {
                    Operator::Top { count, .. } => Some(self.count_arg(count)?),
                    _ => None,
                };
                Step::Sort {
                    exprs: self.exprs(cols, &exprs, pos)?,
                    keys: keys
                        .iter()
                        .enumerate()
                        .map(|(k, s)| SortSpec {
                            key: k,
                            desc: s.desc,
                            // Kusto: nulls first ascending, last descending.
                            nulls_first: s.nulls_first.unwrap_or(!s.desc),
                        })
                        .collect(),
                    take,
                }
            }
            Operator::Take(n) => Step::Take(self.count_arg(n)?),
            Operator::Distinct(names) => {
                let mut places = Vec::new();
                for (n, npos) in names {
                    places.push(self.column(cols, n, *npos)?);
                }
                if places.is_empty() {
                    places = (0..cols.len()).collect();
                }
                Step::Distinct(places)
            }
            Operator::Count => Step::Count,
            Operator::ProjectReorder(names) => {
                let mut order: Vec<usize> = Vec::new();
                for (n, npos) in names {
                    if n.contains('*') {
                        let re = wildcard(n);
                        for (i, (c, _)) in cols.iter().enumerate() {
                            if re.as_ref().is_some_and(|r| r.is_match(c)) && !order.contains(&i) {
                                order.push(i);
                            }
                        }
                    } else {
                        let i = self.column(cols, n, *npos)?;
                        if !order.contains(&i) {
                            order.push(i);
                        }
                    }
                }
                for i in 0..cols.len() {
                    if !order.contains(&i) {
                        order.push(i);
                    }
                }
                Step::Reorder(order)
            }
            Operator::MvExpand { items, limit } => {
                let exprs: Vec<&Expr> = items.iter().map(|(a, _)| &a.expr).collect();
                let mut out = cols.to_vec();
                let mut targets = Vec::new();
                for (a, ty) in items {
                    let name = match &a.name {
                        Some((n, _)) => n.clone(),
                        None => format!("Column{}", targets.len() + 1),
                    };
                    let t = ty.unwrap_or(Type::Dynamic);
                    let place = match out.iter().position(|c| c.0 == name) {
                        Some(p) => {
                            out[p].1 = t;
                            p
                        }
                        None => {
                            out.push((name, t));
                            out.len() - 1
                        }
                    };
                    targets.push((place, *ty));
                }
                let limit = match limit {
                    Some(n) => Some(self.count_arg(n)?),
                    None => None,
                };
                Step::MvExpand {
                    exprs: self.exprs(cols, &exprs, pos)?,
                    targets,
                    limit,
                    cols: out,
                }
            }
            Operator::Join { kind, right, on } => {
                let right = self.pipeline(right)?;
                let mut keys = Vec::new();
                for k in on {
                    let l = self.column(cols, &k.left.0, k.left.1)?;
                    let r = self.column(&right.cols, &k.right.0, k.right.1)?;
                    keys.push((l, r));
                }
                if cols.len() + right.cols.len() > MAX_COLUMNS {
                    return self.err(
                        ErrorKind::Syntax(format!("a join of more than {MAX_COLUMNS} columns")),
                        pos,
                    );
                }
                let left_out = !matches!(kind, JoinKind::RightAnti | JoinKind::RightSemi);
                let mut out: Vec<(String, Type)> =
                    if left_out { cols.to_vec() } else { Vec::new() };
                let right_out: Vec<usize> = match kind {
                    JoinKind::LeftAnti | JoinKind::LeftSemi => Vec::new(),
                    _ => (0..right.cols.len()).collect(),
                };
                let mut taken: HashSet<String> = out.iter().map(|c| c.0.clone()).collect();
                for &i in &right_out {
                    let (name, ty) = &right.cols[i];
                    let mut n = name.clone();
                    let mut k = 1;
                    while taken.contains(&n) {
                        n = format!("{name}{k}");
                        k += 1;
                    }
                    taken.insert(n.clone());
                    out.push((n, *ty));
                }
                Step::Join {
                    kind: *kind,
                    right: Box::new(right),
                    keys,
                    right_out,
                    left_out,
                    cols: out,
                }
            }
            _ => {
                return self.err(
                    ErrorKind::UnsupportedInQuery("this operator here".into()),
                    pos,
                );
            }
        })
    }

    fn column(&self, cols: &[(String, Type)], name: &str, pos: usize) -> B<usize> {
        match cols.iter().position(|c| c.0 == name) {
            Some(i) => Ok(i),
            None => self.err(
                ErrorKind::UnknownColumn {
                    name: name.to_string(),
                    suggestion: crate::compile::suggest(name, cols.iter().map(|c| c.0.as_str())),
                },
                pos,
            ),
        }
    }

    fn summarize(
        &mut self,
        aggs: &[Assign],
        by: &[Assign],
        pos: usize,
        cols: &[(String, Type)],
    ) -> B<Step> {
        let mut exprs: Vec<&Expr> = Vec::new();
        let mut out: Vec<(String, Type)> = Vec::new();
        let mut by_names = Vec::new();
        let mut unnamed = 0;
        for a in by {
            exprs.push(&a.expr);
            let name = match &a.name {
                Some((n, _)) => n.clone(),
                None => match by_name(&a.expr) {
                    Some(n) => n,
                    None => {
                        unnamed += 1;
                        format!("Column{unnamed}")
                    }
                },
            };
            by_names.push(name);
        }
        // Aggregates: their arguments are evaluated after the `by` keys.
        struct Pending<'e> {
            kind: AggKind,
            name: Option<String>,
            fname: String,
            args: Vec<&'e Expr>,
            limit: usize,
            pos: usize,
        }
        let mut pending = Vec::new();
        for a in aggs {
            let ExprKind::Call(fname, args) = &a.expr.kind else {
                return self.err(
                    ErrorKind::UnsupportedInQuery(
                        "an expression that is not an aggregate call in summarize".into(),
                    ),
                    a.expr.pos,
                );
            };
            let (kind, lo, hi) = match fname.as_str() {
                "count" => (AggKind::Count, 0, 0),
                "countif" => (AggKind::CountIf, 1, 1),
                "dcount" => (AggKind::DCount, 1, 2),
                "dcountif" => (AggKind::DCountIf, 2, 3),
                "min" => (AggKind::Min, 1, 1),
                "max" => (AggKind::Max, 1, 1),
                "sum" => (AggKind::Sum, 1, 1),
                "sumif" => (AggKind::SumIf, 2, 2),
                "avg" => (AggKind::Avg, 1, 1),
                "make_set" | "makeset" => (AggKind::MakeSet, 1, 2),
                "make_list" | "makelist" => (AggKind::MakeList, 1, 2),
                "arg_max" => (AggKind::ArgMax, 2, usize::MAX),
                "arg_min" => (AggKind::ArgMin, 2, usize::MAX),
                "take_any" | "any" => (AggKind::TakeAny, 1, usize::MAX),
                _ => {
                    return self.err(
                        ErrorKind::UnsupportedInQuery(format!("the aggregate {fname}()")),
                        a.expr.pos,
                    );
                }
            };
            if args.len() < lo || args.len() > hi {
                return self.err(
                    ErrorKind::BadArguments(format!(
                        "{fname}() takes {lo}{} arguments, {} given",
                        if hi == lo {
                            String::new()
                        } else if hi == usize::MAX {
                            " or more".into()
                        } else {
                            format!(" to {hi}")
                        },
                        args.len()
                    )),
                    a.expr.pos,
                );
            }
            let mut used: Vec<&Expr> = args.iter().collect();
            let mut limit = 1_048_576;
            match kind {
                AggKind::MakeSet | AggKind::MakeList if used.len() == 2 => {
                    limit = self.count_arg(used[1])?;
                    used.truncate(1);
                }
                // dcount's accuracy argument: the count here is exact.
                AggKind::DCount if used.len() == 2 => used.truncate(1),
                AggKind::DCountIf if used.len() == 3 => used.truncate(2),
                _ => {}
            }
            pending.push(Pending {
                kind,
                name: a.name.as_ref().map(|n| n.0.clone()),
                fname: fname.clone(),
                args: used,
                limit,
                pos: a.expr.pos,
            });
        }
        for (n, e) in by_names.iter().zip(by) {
            let _ = e;
            out.push((n.clone(), Type::Dynamic));
        }
        let mut result = Vec::new();
        for p in &pending {
            let mut args = Vec::new();
            let mut rets = Vec::new();
            let mut outputs = Vec::new();
            for (k, e) in p.args.iter().enumerate() {
                let star = matches!(&e.kind, ExprKind::Name(n) if n == "*");
                let returns =
                    matches!(p.kind, AggKind::ArgMax | AggKind::ArgMin | AggKind::TakeAny);
                if star {
                    if !returns || (k == 0 && p.kind != AggKind::TakeAny) {
                        return self.err(
                            ErrorKind::BadArguments(format!(
                                "{}() does not take '*' here",
                                p.fname
                            )),
                            e.pos,
                        );
                    }
                    for (i, (c, t)) in cols.iter().enumerate() {
                        if !by_names.contains(c)
                            && !outputs.iter().any(|o: &(String, Type)| &o.0 == c)
                        {
                            rets.push(Ret::Column(i));
                            outputs.push((c.clone(), *t));
                        }
                    }
                    continue;
                }
                exprs.push(e);
                let place = exprs.len() - 1;
                if returns {
                    // arg_max(X, ...) returns X too; take_any returns each argument.
                    rets.push(Ret::Expr(place));
                    let name = by_name(e).unwrap_or_else(|| format!("{}_{k}", p.fname));
                    // The deprecated any() prefixes its columns.
                    let name = if p.fname == "any" {
                        format!("any_{name}")
                    } else {
                        name
                    };
                    if !outputs.iter().any(|o| o.0 == name) {
                        outputs.push((name, Type::Dynamic));
                    } else {
                        rets.pop();
                    }
                    if k == 0 && p.kind != AggKind::TakeAny {
                        args.push(place);
                    }
                } else {
                    args.push(place);
                }
            }
            if !matches!(p.kind, AggKind::ArgMax | AggKind::ArgMin | AggKind::TakeAny) {
                let suffix = p.args.first().and_then(|e| by_name(e)).unwrap_or_default();
                let prefix = match p.kind {
                    AggKind::Count => "count",
                    AggKind::CountIf => "countif",
                    AggKind::DCount => "dcount",
                    AggKind::DCountIf => "dcountif",
                    AggKind::Min => "min",
                    AggKind::Max => "max",
                    AggKind::Sum => "sum",
                    AggKind::SumIf => "sumif",
                    AggKind::Avg => "avg",
                    AggKind::MakeSet => "set",
                    AggKind::MakeList => "list",
                    _ => "",
                };
                let suffix = if matches!(p.kind, AggKind::Count | AggKind::CountIf) {
                    String::new()
                } else {
                    suffix
                };
                outputs.push((format!("{prefix}_{suffix}"), Type::Dynamic));
            }
            if let Some(n) = &p.name
                && let Some(first) = outputs.first_mut()
            {
                first.0.clone_from(n);
            }
            let _ = p.pos;
            result.push(Agg {
                kind: p.kind,
                args,
                limit: p.limit,
                rets,
                outputs,
            });
        }
        let exprs_q = if exprs.is_empty() {
            None
        } else {
            Some(self.exprs(cols, &exprs, pos)?)
        };
        // Types: the `by` keys' and the aggregates', from the evaluated expressions.
        let types: Vec<Type> = exprs_q
            .as_ref()
            .map(|q| q.output().iter().map(|c| c.1).collect())
            .unwrap_or_default();
        for (k, c) in out.iter_mut().enumerate() {
            c.1 = types[k];
        }
        for a in &mut result {
            let arg_ty = a.args.first().map(|&i| types[i]);
            match a.kind {
                AggKind::Count | AggKind::CountIf | AggKind::DCount | AggKind::DCountIf => {
                    a.outputs[0].1 = Type::Long;
                }
                AggKind::Avg => a.outputs[0].1 = Type::Real,
                AggKind::MakeSet | AggKind::MakeList => a.outputs[0].1 = Type::Dynamic,
                AggKind::Min | AggKind::Max => a.outputs[0].1 = arg_ty.unwrap_or(Type::Dynamic),
                AggKind::Sum | AggKind::SumIf => {
                    a.outputs[0].1 = match arg_ty {
                        Some(Type::Int | Type::Long | Type::Bool) => Type::Long,
                        Some(Type::Timespan) => Type::Timespan,
                        Some(Type::Dynamic) | None => Type::Dynamic,
                        Some(_) => Type::Real,
                    };
                }
                AggKind::ArgMax | AggKind::ArgMin | AggKind::TakeAny => {
                    for (o, r) in a.outputs.iter_mut().zip(&a.rets) {
                        o.1 = match r {
                            Ret::Expr(i) => types[*i],
                            Ret::Column(i) => cols[*i].1,
                        };
                    }
                }
            }
            for o in &a.outputs {
                let mut n = o.0.clone();
                let mut k = 1;
                while out.iter().any(|c| c.0 == n) {
                    n = format!("{}{k}", o.0);
                    k += 1;
                }
                out.push((n, o.1));
            }
        }
        Ok(Step::Summarize {
            exprs: exprs_q,
            by: by.len(),
            aggs: result,
            cols: out,
        })
    }
}

/// The default name of a `by` key or an aggregate's argument: a column's name, `a_b` for
/// `a.b`, the binned column for `bin(X, ...)`; `None` for other expressions.
fn by_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n) => Some(n.clone()),
        ExprKind::Member(x, m) => by_name(x).map(|b| format!("{b}_{m}")),
        ExprKind::Call(f, args)
            if matches!(f.as_str(), "bin" | "floor" | "bin_at") && !args.is_empty() =>
        {
            by_name(&args[0])
        }
        _ => None,
    }
}

fn wildcard(pattern: &str) -> Option<regex::Regex> {
    let parts: Vec<String> = pattern.split('*').map(regex::escape).collect();
    regex::Regex::new(&format!("^{}$", parts.join(".*"))).ok()
}

fn step_cols(step: &Step, cols: &[(String, Type)]) -> Vec<(String, Type)> {
    match step {
        Step::Rows(q) => q.output().to_vec(),
        Step::Summarize { cols, .. } | Step::MvExpand { cols, .. } | Step::Join { cols, .. } => {
            cols.clone()
        }
        Step::Sort { .. } | Step::Take(_) => cols.to_vec(),
        Step::Distinct(places) => places.iter().map(|&i| cols[i].clone()).collect(),
        Step::Count => vec![("Count".into(), Type::Long)],
        Step::Reorder(order) => order.iter().map(|&i| cols[i].clone()).collect(),
    }
}

/// Compiles a query of the query dialect.
pub(crate) fn compile(text: &str, schema: &Schema) -> B<Compiled> {
    let q = crate::parser::parse_query(text, Dialect::Query)?;
    let mut b = QBinder {
        src: text,
        schema,
        scalar_lets: Vec::new(),
        tabular: HashMap::new(),
        sources: Vec::new(),
    };
    for (name, pos, l) in &q.lets {
        match l {
            Let::Tabular(p) => {
                let pipe = b.pipeline(p)?;
                b.tabular.insert(name.clone(), pipe);
            }
            other => {
                b.scalar_lets.push((name.clone(), *pos, other.clone()));
                // Compile it now, so an error points at the let even if it is never used.
                b.row_query(schema.columns(), Vec::new(), *pos)?;
            }
        }
    }
    let main = b.pipeline(&q.pipeline)?;
    let mut tables: Vec<String> = Vec::new();
    for s in &b.sources {
        if !tables.contains(&s.table) {
            tables.push(s.table.clone());
        }
    }
    // A query with one pipeline over its table: the kept rows need only the columns the rest
    // of the query reads before an operator that closes the column set.
    let keep = match (
        &b.sources[..],
        q.lets.iter().any(|l| matches!(l.2, Let::Tabular(_))),
    ) {
        ([s], false) => {
            let mut names = HashSet::new();
            let mut all = false;
            for (_, _, l) in &q.lets {
                match l {
                    Let::Scalar(e) | Let::Function { body: e, .. } => {
                        all |= expr_names(e, &mut names)
                    }
                    Let::Tabular(_) => {}
                }
            }
            let closed = !all && needed(&q.pipeline.operators[s.split..], &mut names);
            closed.then(|| {
                s.prefix
                    .output_schema()
                    .iter()
                    .map(|(n, _)| names.contains(n))
                    .collect::<Vec<bool>>()
            })
        }
        _ => None,
    };
    let narrow = match (&keep, b.sources.first()) {
        (Some(k), Some(s)) => {
            let mut ops = q.pipeline.operators[..s.split].to_vec();
            let items = s
                .prefix
                .output_schema()
                .iter()
                .zip(k.iter())
                .filter(|(_, k)| **k)
                .map(|((n, _), _): (&(String, Type), &bool)| Assign {
                    name: None,
                    expr: Expr {
                        kind: ExprKind::Name(n.clone()),
                        pos: q.pipeline.source_pos,
                    },
                })
                .collect();
            ops.push((Operator::Project(items), q.pipeline.source_pos));
            Some(b.row_query(schema.columns(), ops, q.pipeline.source_pos)?)
        }
        _ => None,
    };
    Ok(Compiled {
        tables,
        sources: b.sources,
        main,
        keep,
        narrow,
        table_schema: schema.columns().to_vec(),
    })
}

/// Adds the names an expression reads (columns, lets; the text of `column_ifexists`) to
/// `names`; true when it reads every column (`*`).
fn expr_names(e: &Expr, names: &mut HashSet<String>) -> bool {
    match &e.kind {
        ExprKind::Lit(_) | ExprKind::TypeOf(_) => false,
        ExprKind::Name(n) => {
            if n == "*" {
                return true;
            }
            names.insert(n.clone());
            false
        }
        ExprKind::Neg(x) | ExprKind::Member(x, _) => expr_names(x, names),
        ExprKind::Binary(_, a, b) | ExprKind::MatchesRegex(a, b) | ExprKind::Index(a, b) => {
            expr_names(a, names) | expr_names(b, names)
        }
        ExprKind::Str { lhs, rhs, .. } => expr_names(lhs, names) | expr_names(rhs, names),
        ExprKind::In { lhs, list, .. } | ExprKind::HasAny { lhs, list, .. } => {
            let mut all = expr_names(lhs, names);
            for x in list {
                all |= expr_names(x, names);
            }
            all
        }
        ExprKind::Between { lhs, lo, hi, .. } => {
            expr_names(lhs, names) | expr_names(lo, names) | expr_names(hi, names)
        }
        ExprKind::Call(f, args) => {
            if matches!(f.as_str(), "column_ifexists" | "columnifexists")
                && let Some(ExprKind::Lit(ast::Lit::String(c))) = args.first().map(|a| &a.kind)
            {
                names.insert(c.clone());
            }
            let mut all = false;
            for a in args {
                all |= expr_names(a, names);
            }
            all
        }
    }
}

/// Adds the names the operators read to `names`, up to the first operator that closes the
/// column set (`summarize`, `project`, `distinct` of columns, `count`): true when one does,
/// false when the columns reach the output (or an operator reads every column).
fn needed(ops: &[(Operator, usize)], names: &mut HashSet<String>) -> bool {
    let assigns = |items: &[Assign], names: &mut HashSet<String>| {
        items
            .iter()
            .fold(false, |all, a| all | expr_names(&a.expr, names))
    };
    for (op, _) in ops {
        let all = match op {
            Operator::Where(e) | Operator::Take(e) => expr_names(e, names),
            Operator::Extend(items) => assigns(items, names),
            Operator::Project(items) => return !assigns(items, names),
            Operator::ProjectAway(_) | Operator::ProjectReorder(_) => false,
            Operator::ProjectRename(pairs) => {
                names.extend(pairs.iter().map(|(_, (old, _))| old.clone()));
                false
            }
            Operator::Parse { source, .. } => expr_names(source, names),
            Operator::Summarize { aggs, by } => {
                return !(assigns(aggs, names) | assigns(by, names));
            }
            Operator::Sort(keys) => keys
                .iter()
                .fold(false, |all, k| all | expr_names(&k.expr, names)),
            Operator::Top { count, by } => by.iter().fold(expr_names(count, names), |all, k| {
                all | expr_names(&k.expr, names)
            }),
            Operator::Distinct(cols) => {
                if cols.is_empty() {
                    return false;
                }
                names.extend(cols.iter().map(|c| c.0.clone()));
                return true;
            }
            Operator::Count => return true,
            Operator::MvExpand { items, .. } => items
                .iter()
                .fold(false, |all, (a, _)| all | expr_names(&a.expr, names)),
            Operator::Join { .. } => true,
        };
        if all {
            return false;
        }
    }
    false
}

/// The row's non-empty values as a JSON object (a null or empty string reads back the same).
fn compact_json<'a>(cols: impl Iterator<Item = (&'a str, Value<'a>)>) -> Map<String, Json> {
    cols.filter(|(_, v)| !v.is_null() && !matches!(v, Value::String(s) if s.is_empty()))
        .map(|(n, v)| (n.to_string(), v.to_json()))
        .collect()
}

impl Compiled {
    /// Whether kept rows carry the table's columns (several sources), rather than the output
    /// of the only source's prefix.
    fn shared(&self) -> bool {
        self.sources.len() > 1
    }

    pub(crate) fn output_schema(&self) -> &[(String, Type)] {
        &self.main.cols
    }

    pub(crate) fn row_passes(&self, row: &dyn Row, now: i64) -> bool {
        if self.shared() {
            return self.sources.iter().any(|s| s.prefix.passes_at(row, now));
        }
        match (&self.narrow, self.sources.first()) {
            (Some(q), _) => q.passes_at(row, now),
            (None, Some(s)) => s.prefix.passes_at(row, now),
            (None, None) => false,
        }
    }

    pub(crate) fn row_prefix(&self, row: &dyn Row, now: i64) -> Option<Map<String, Json>> {
        if !self.shared() {
            let prefix = match &self.narrow {
                Some(q) => q,
                None => &self.sources.first()?.prefix,
            };
            let out = prefix.run_at(row, now)?;
            return Some(compact_json(out.iter().map(|(n, v)| (n, v.reborrow()))));
        }
        if !self.sources.iter().any(|s| s.prefix.passes_at(row, now)) {
            return None;
        }
        Some(compact_json(self.table_schema.iter().map(|(n, t)| {
            let v = row.get(n).map_or(Value::Null, |v| coerce(v, *t));
            (n.as_str(), v)
        })))
    }

    /// The columns of a kept row: the table's in shared mode, else the output of the prefix
    /// `row_prefix` runs.
    pub(crate) fn kept_cols(&self) -> &[(String, Type)] {
        if self.shared() {
            return &self.table_schema;
        }
        match (&self.narrow, self.sources.first()) {
            (Some(q), _) => q.output_schema(),
            (None, Some(s)) => s.prefix.output_schema(),
            (None, None) => &[],
        }
    }

    /// [`Compiled::row_prefix`], the kept row packed.
    pub(crate) fn row_prefix_kept(&self, row: &dyn Row, now: i64) -> Option<KeptRow> {
        if !self.shared() {
            let prefix = match &self.narrow {
                Some(q) => q,
                None => &self.sources.first()?.prefix,
            };
            return prefix.run_kept(row, now);
        }
        if !self.sources.iter().any(|s| s.prefix.passes_at(row, now)) {
            return None;
        }
        let values: Vec<Value<'_>> = self
            .table_schema
            .iter()
            .map(|(n, t)| row.get(n).map_or(Value::Null, |v| coerce(v, *t)))
            .collect();
        Some(KeptRow::build(&self.table_schema, &values))
    }

    pub(crate) fn run_window_kept(&self, window: &[KeptRow], now: i64) -> Vec<Map<String, Json>> {
        self.run_main(Window::Kept(window), now)
    }

    /// The rows of a source over the window: its prefix's output columns.
    fn source_table(&self, source: usize, window: Window<'_>, now: i64) -> Table {
        let Some(s) = self.sources.get(source) else {
            return Table::default();
        };
        let cols = s.prefix.output_schema().to_vec();
        // A column the rest does not read is not looked up.
        let read = |i: usize| self.keep.as_ref().is_none_or(|k| k[i]);
        let absent = |t: Type| {
            if t == Type::String {
                Value::String(Cow::Borrowed(""))
            } else {
                Value::Null
            }
        };
        let run = |r: &dyn Row| {
            s.prefix
                .run_at(r, now)
                .map(|o| o.values.into_iter().map(Value::into_owned).collect())
        };
        let rows = match window {
            Window::Json(window) if self.shared() => window.iter().filter_map(|r| run(r)).collect(),
            Window::Kept(window) if self.shared() => {
                let index = index_of(&self.table_schema);
                window
                    .iter()
                    .filter_map(|row| run(&KeptView { index: &index, row }))
                    .collect()
            }
            Window::Json(window) => window
                .iter()
                .map(|r| {
                    cols.iter()
                        .enumerate()
                        .map(|(i, (n, t))| match Row::get(r, n).filter(|_| read(i)) {
                            Some(v) => coerce(v, *t).into_owned(),
                            None => absent(*t),
                        })
                        .collect()
                })
                .collect(),
            Window::Kept(window) => {
                // Each kept column's place among the prefix's output columns.
                let places: Vec<Option<usize>> = self
                    .kept_cols()
                    .iter()
                    .map(|(n, _)| cols.iter().position(|c| c.0 == *n).filter(|&i| read(i)))
                    .collect();
                window
                    .iter()
                    .map(|r| {
                        let mut values: Vec<Value<'static>> =
                            cols.iter().map(|(_, t)| absent(*t)).collect();
                        for (k, e) in r.entries() {
                            if let Some(&Some(i)) = places.get(k) {
                                values[i] = e.value(cols[i].1).into_owned();
                            }
                        }
                        values
                    })
                    .collect()
            }
        };
        Table { cols, rows }
    }

    fn run_pipe(&self, pipe: &Pipe, window: Window<'_>, now: i64) -> Table {
        let mut t = self.source_table(pipe.source, window, now);
        for step in &pipe.steps {
            t = self.run_step(step, t, window, now);
        }
        t
    }

    pub(crate) fn run_window(
        &self,
        window: &[Map<String, Json>],
        now: i64,
    ) -> Vec<Map<String, Json>> {
        self.run_main(Window::Json(window), now)
    }

    fn run_main(&self, window: Window<'_>, now: i64) -> Vec<Map<String, Json>> {
        let t = self.run_pipe(&self.main, window, now);
        t.rows
            .iter()
            .map(|r| {
                t.cols
                    .iter()
                    .zip(r)
                    .map(|((n, _), v)| (n.clone(), v.to_json()))
                    .collect()
            })
            .collect()
    }

    fn run_step(&self, step: &Step, t: Table, window: Window<'_>, now: i64) -> Table {
        match step {
            Step::Rows(q) => Table {
                rows: q.run(&t, now),
                cols: q.output().to_vec(),
            },
            Step::Summarize {
                exprs,
                by,
                aggs,
                cols,
            } => summarize(&t, exprs.as_ref(), *by, aggs, cols, now),
            Step::Sort { exprs, keys, take } => {
                let vals = exprs.eval_each(&t, now);
                let mut order: Vec<usize> = (0..t.rows.len()).collect();
                order.sort_by(|&a, &b| {
                    for k in keys {
                        let o = sort_cmp(&vals[a][k.key], &vals[b][k.key], k.desc, k.nulls_first);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
                if let Some(n) = take {
                    order.truncate(*n);
                }
                let mut rows: Vec<Option<Vec<Value<'static>>>> =
                    t.rows.into_iter().map(Some).collect();
                Table {
                    cols: t.cols,
                    rows: order.into_iter().filter_map(|i| rows[i].take()).collect(),
                }
            }
            Step::Take(n) => {
                let mut t = t;
                t.rows.truncate(*n);
                t
            }
            Step::Distinct(places) => {
                let mut seen = HashSet::new();
                let cols = places.iter().map(|&i| t.cols[i].clone()).collect();
                let rows = t
                    .rows
                    .into_iter()
                    .filter_map(|r| {
                        let v: Vec<Value<'static>> = places.iter().map(|&i| r[i].clone()).collect();
                        seen.insert(keys_of(&v)).then_some(v)
                    })
                    .collect();
                Table { cols, rows }
            }
            Step::Count => Table {
                cols: vec![("Count".into(), Type::Long)],
                rows: vec![vec![Value::Long(t.rows.len() as i64)]],
            },
            Step::Reorder(order) => Table {
                cols: order.iter().map(|&i| t.cols[i].clone()).collect(),
                rows: t
                    .rows
                    .into_iter()
                    .map(|r| order.iter().map(|&i| r[i].clone()).collect())
                    .collect(),
            },
            Step::MvExpand {
                exprs,
                targets,
                limit,
                cols,
            } => mv_expand(&t, exprs, targets, *limit, cols, now),
            Step::Join {
                kind,
                right,
                keys,
                right_out,
                left_out,
                cols,
            } => {
                let r = self.run_pipe(right, window, now);
                join(t, r, *kind, keys, right_out, *left_out, cols)
            }
        }
    }
}

/// Orders two sort keys: nulls where `nulls_first` says, the rest by value.
fn sort_cmp(a: &Value<'_>, b: &Value<'_>, desc: bool, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (false, false) => {
            let o = compare(a, b).unwrap_or(Ordering::Equal);
            if desc { o.reverse() } else { o }
        }
    }
}

/// One aggregate's running state for one group.
#[derive(Debug, Clone)]
enum State {
    Count(i64),
    Distinct(HashSet<String>),
    Extreme(Option<Value<'static>>),
    SumLong(Option<i64>),
    SumReal(Option<f64>),
    SumSpan(Option<i64>),
    Avg(f64, i64),
    Set(HashSet<String>, Vec<Json>),
    List(Vec<Json>),
    /// arg_max/arg_min: the best value and its row; take_any: the chosen row.
    Pick(Option<Value<'static>>, Option<usize>),
}

fn init(a: &Agg, types: &[Type]) -> State {
    match a.kind {
        AggKind::Count | AggKind::CountIf => State::Count(0),
        AggKind::DCount | AggKind::DCountIf => State::Distinct(HashSet::new()),
        AggKind::Min | AggKind::Max => State::Extreme(None),
        AggKind::Sum | AggKind::SumIf => match a.args.first().map(|&i| types[i]) {
            Some(Type::Int | Type::Long | Type::Bool) => State::SumLong(None),
            Some(Type::Timespan) => State::SumSpan(None),
            _ => State::SumReal(None),
        },
        AggKind::Avg => State::Avg(0.0, 0),
        AggKind::MakeSet => State::Set(HashSet::new(), Vec::new()),
        AggKind::MakeList => State::List(Vec::new()),
        AggKind::ArgMax | AggKind::ArgMin | AggKind::TakeAny => State::Pick(None, None),
    }
}

fn truthy(v: &Value<'_>) -> bool {
    v.as_bool() == Some(true)
}

fn update(a: &Agg, st: &mut State, vals: &[Value<'static>], row: usize) {
    let arg = |k: usize| a.args.get(k).map_or(&Value::Null, |&i| &vals[i]);
    match (a.kind, st) {
        (AggKind::Count, State::Count(n)) => *n += 1,
        (AggKind::CountIf, State::Count(n)) if truthy(arg(0)) => *n += 1,
        (AggKind::DCount | AggKind::DCountIf, State::Distinct(set)) => {
            let v = arg(0);
            if !v.is_null() && (a.kind == AggKind::DCount || truthy(arg(1))) {
                let mut k = String::new();
                key_of(v, &mut k);
                set.insert(k);
            }
        }
        (AggKind::Min | AggKind::Max, State::Extreme(best)) => {
            let v = arg(0);
            if v.is_null() {
                return;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let o = compare(v, b);
                    if a.kind == AggKind::Min {
                        o == Some(Ordering::Less)
                    } else {
                        o == Some(Ordering::Greater)
                    }
                }
            };
            if better {
                *best = Some(v.clone());
            }
        }
        (AggKind::Sum | AggKind::SumIf, st) => {
            if a.kind == AggKind::SumIf && !truthy(arg(1)) {
                return;
            }
            let v = arg(0).clone().undyn();
            match st {
                State::SumLong(s) => {
                    if let Some(x) = crate::functions::to_long(&v) {
                        *s = Some(s.unwrap_or(0).wrapping_add(x));
                    }
                }
                State::SumSpan(s) => {
                    if let Value::Timespan(x) = v {
                        *s = Some(s.unwrap_or(0).saturating_add(x));
                    }
                }
                State::SumReal(s) => {
                    if !v.is_null()
                        && let Some(x) = crate::functions::to_real(&v)
                    {
                        *s = Some(s.unwrap_or(0.0) + x);
                    }
                }
                _ => {}
            }
        }
        (AggKind::Avg, State::Avg(sum, n)) => {
            let v = arg(0).clone().undyn();
            if !v.is_null()
                && let Some(x) = crate::functions::to_real(&v)
            {
                *sum += x;
                *n += 1;
            }
        }
        (AggKind::MakeSet, State::Set(seen, items)) => {
            let v = arg(0);
            if v.is_null() || items.len() >= a.limit {
                return;
            }
            let mut k = String::new();
            key_of(&v.clone().undyn(), &mut k);
            if seen.insert(k) {
                items.push(v.to_json());
            }
        }
        (AggKind::MakeList, State::List(items)) => {
            let v = arg(0);
            if !v.is_null() && items.len() < a.limit {
                items.push(v.to_json());
            }
        }
        (AggKind::ArgMax | AggKind::ArgMin, State::Pick(best, at)) => {
            let v = arg(0);
            if v.is_null() {
                if at.is_none() {
                    *at = Some(row);
                }
                return;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let o = compare(v, b);
                    if a.kind == AggKind::ArgMin {
                        o == Some(Ordering::Less)
                    } else {
                        o == Some(Ordering::Greater)
                    }
                }
            };
            if better {
                *best = Some(v.clone());
                *at = Some(row);
            }
        }
        (AggKind::TakeAny, State::Pick(found, at)) => {
            // The first row whose (first) value is not null or empty.
            if found.is_some() {
                return;
            }
            let v = match a.rets.first() {
                Some(Ret::Expr(i)) => &vals[*i],
                _ => &Value::Null,
            };
            let empty = v.is_null() || matches!(v, Value::String(s) if s.is_empty());
            if at.is_none() || !empty {
                *at = Some(row);
            }
            if !empty || a.rets.len() > 1 || !matches!(a.rets.first(), Some(Ret::Expr(_))) {
                *found = Some(Value::Bool(true));
            }
        }
        _ => {}
    }
}

fn finish(
    a: &Agg,
    st: State,
    t: &Table,
    evals: &[Vec<Value<'static>>],
    out: &mut Vec<Value<'static>>,
) {
    match st {
        State::Count(n) => out.push(Value::Long(n)),
        State::Distinct(s) => out.push(Value::Long(s.len() as i64)),
        State::Extreme(v) => out.push(v.unwrap_or(Value::Null)),
        State::SumLong(s) => out.push(s.map_or(Value::Null, Value::Long)),
        State::SumReal(s) => out.push(s.map_or(Value::Null, Value::Real)),
        State::SumSpan(s) => out.push(s.map_or(Value::Null, Value::Timespan)),
        State::Avg(sum, n) => out.push(if n == 0 {
            Value::Null
        } else {
            Value::Real(sum / n as f64)
        }),
        State::Set(_, items) | State::List(items) => {
            out.push(Value::Dynamic(Cow::Owned(Json::Array(items))));
        }
        State::Pick(_, at) => {
            for r in &a.rets {
                let v = match (at, r) {
                    (Some(row), Ret::Expr(i)) => evals[row][*i].clone(),
                    (Some(row), Ret::Column(i)) => t.rows[row][*i].clone(),
                    (None, _) => Value::Null,
                };
                out.push(v);
            }
        }
    }
}

fn summarize(
    t: &Table,
    exprs: Option<&RowQuery>,
    by: usize,
    aggs: &[Agg],
    cols: &[(String, Type)],
    now: i64,
) -> Table {
    let evals = match exprs {
        Some(q) => q.eval_each(t, now),
        None => vec![Vec::new(); t.rows.len()],
    };
    let types: Vec<Type> = exprs
        .map(|q| q.output().iter().map(|c| c.1).collect())
        .unwrap_or_default();
    let mut groups: HashMap<String, usize> = HashMap::new();
    let mut states: Vec<(Vec<Value<'static>>, Vec<State>)> = Vec::new();
    if by == 0 {
        // No `by`: one row, even over no input.
        states.push((Vec::new(), aggs.iter().map(|a| init(a, &types)).collect()));
    }
    for (row, vals) in evals.iter().enumerate() {
        let g = if by == 0 {
            0
        } else {
            let key = keys_of(&vals[..by]);
            let next = states.len();
            let g = *groups.entry(key).or_insert(next);
            if g == next {
                states.push((
                    vals[..by].to_vec(),
                    aggs.iter().map(|a| init(a, &types)).collect(),
                ));
            }
            g
        };
        for (a, st) in aggs.iter().zip(states[g].1.iter_mut()) {
            update(a, st, vals, row);
        }
    }
    let rows = states
        .into_iter()
        .map(|(keys, sts)| {
            let mut out = keys;
            for (a, st) in aggs.iter().zip(sts) {
                finish(a, st, t, &evals, &mut out);
            }
            // Values as the output column's type (a `long` sum of ints, ...).
            out.into_iter()
                .zip(cols)
                .map(|(v, (_, ty))| match (ty, v) {
                    (Type::String, Value::Null) => Value::String(Cow::Borrowed("")),
                    (_, v) => v,
                })
                .collect()
        })
        .collect();
    Table {
        cols: cols.to_vec(),
        rows,
    }
}

fn mv_expand(
    t: &Table,
    exprs: &RowQuery,
    targets: &[(usize, Option<Type>)],
    limit: Option<usize>,
    cols: &[(String, Type)],
    now: i64,
) -> Table {
    let evals = exprs.eval_each(t, now);
    let mut rows = Vec::new();
    for (row, vals) in t.rows.iter().zip(&evals) {
        // Each expression's items: an array's elements, a bag's properties as one-property
        // bags, a scalar as itself.
        let lists: Vec<Vec<Json>> = vals
            .iter()
            .map(|v| match v {
                Value::Dynamic(d) => match &**d {
                    Json::Array(a) => a.clone(),
                    Json::Object(m) => m
                        .iter()
                        .map(|(k, v)| {
                            let mut one = Map::new();
                            one.insert(k.clone(), v.clone());
                            Json::Object(one)
                        })
                        .collect(),
                    Json::Null => Vec::new(),
                    other => vec![other.clone()],
                },
                Value::Null => Vec::new(),
                other => vec![other.to_json()],
            })
            .collect();
        let mut n = lists.iter().map(Vec::len).max().unwrap_or(0);
        if let Some(l) = limit {
            n = n.min(l);
        }
        for k in 0..n {
            if rows.len() >= MAX_ROWS {
                break;
            }
            let mut out = row.clone();
            out.resize(cols.len(), Value::Null);
            for ((place, ty), list) in targets.iter().zip(&lists) {
                let item = list.get(k).cloned().unwrap_or(Json::Null);
                let v = Value::Dynamic(Cow::Owned(item));
                out[*place] = match ty {
                    Some(t) => coerce(v, *t).into_owned(),
                    None => v,
                };
            }
            rows.push(out);
        }
    }
    Table {
        cols: cols.to_vec(),
        rows,
    }
}

fn join(
    left: Table,
    right: Table,
    kind: JoinKind,
    keys: &[(usize, usize)],
    right_out: &[usize],
    left_out: bool,
    cols: &[(String, Type)],
) -> Table {
    // A key with a null part matches nothing.
    let key = |r: &[Value<'static>], side: fn(&(usize, usize)) -> usize| -> Option<String> {
        let mut k = String::new();
        for p in keys {
            let v = &r[side(p)];
            if v.is_null() {
                return None;
            }
            key_of(&v.clone().undyn(), &mut k);
        }
        Some(k)
    };
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in right.rows.iter().enumerate() {
        if let Some(k) = key(r, |p| p.1) {
            by_key.entry(k).or_default().push(i);
        }
    }
    let mut rows = Vec::new();
    let right_rows = &right.rows;
    let right_values = |i: usize| right_out.iter().map(move |&c| right_rows[i][c].clone());
    match kind {
        JoinKind::Inner | JoinKind::InnerUnique | JoinKind::LeftOuter => {
            let mut seen = HashSet::new();
            for l in &left.rows {
                let k = key(l, |p| p.0);
                if kind == JoinKind::InnerUnique {
                    // innerunique: one left row per key (the first here).
                    match &k {
                        Some(k) if !seen.insert(k.clone()) => continue,
                        _ => {}
                    }
                }
                let matches = k.as_ref().and_then(|k| by_key.get(k));
                match matches {
                    Some(m) => {
                        for &i in m {
                            if rows.len() >= MAX_ROWS {
                                break;
                            }
                            let mut out = l.clone();
                            out.extend(right_values(i));
                            rows.push(out);
                        }
                    }
                    None if kind == JoinKind::LeftOuter => {
                        let mut out = l.clone();
                        out.extend(right_out.iter().map(|&c| match right.cols[c].1 {
                            Type::String => Value::String(Cow::Borrowed("")),
                            _ => Value::Null,
                        }));
                        rows.push(out);
                    }
                    None => {}
                }
            }
        }
        JoinKind::LeftAnti | JoinKind::LeftSemi => {
            for l in &left.rows {
                let hit = key(l, |p| p.0).is_some_and(|k| by_key.contains_key(&k));
                if hit == (kind == JoinKind::LeftSemi) {
                    rows.push(l.clone());
                }
            }
        }
        JoinKind::RightAnti | JoinKind::RightSemi => {
            let left_keys: HashSet<String> =
                left.rows.iter().filter_map(|l| key(l, |p| p.0)).collect();
            for (i, r) in right.rows.iter().enumerate() {
                let hit = key(r, |p| p.1).is_some_and(|k| left_keys.contains(&k));
                if hit == (kind == JoinKind::RightSemi) {
                    rows.push(right_values(i).collect());
                }
            }
        }
    }
    let _ = left_out;
    Table {
        cols: cols.to_vec(),
        rows,
    }
}
