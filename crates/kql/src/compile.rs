//! The binder: resolves names against the schema and the `let` statements, checks functions
//! and arities, infers types, and produces the plan that [`crate::eval`] runs.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::Regex;

use crate::Dialect;
use crate::ast::*;
use crate::error::{Error, ErrorKind};
use crate::functions::{self, Builtin};
use crate::value::{Type, Value};

/// Where a column's value lives while a row is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Read from the input row (index into the input schema).
    Input(usize),
    /// Computed by an earlier stage (index into the row's slots).
    Computed(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct Col {
    pub(crate) name: String,
    pub(crate) ty: Type,
    pub(crate) slot: Slot,
}

/// A compiled scalar expression.
#[derive(Debug, Clone)]
pub(crate) enum CExpr {
    Const(Value<'static>),
    Input(usize),
    Slot(usize),
    Neg(Box<CExpr>),
    Bin(BinOp, Box<CExpr>, Box<CExpr>),
    Str {
        kind: StrKind,
        cs: bool,
        negated: bool,
        lhs: Box<CExpr>,
        rhs: Box<CExpr>,
    },
    In {
        lhs: Box<CExpr>,
        list: Vec<CExpr>,
        negated: bool,
        ci: bool,
    },
    Regex(Box<CExpr>, Box<Regex>),
    Call(Builtin, Vec<CExpr>),
    /// A builtin whose regex argument was compiled once.
    CallRe(Builtin, Box<Regex>, Vec<CExpr>),
    Member(Box<CExpr>, String),
    Index(Box<CExpr>, Box<CExpr>),
    Iif(Box<CExpr>, Box<CExpr>, Box<CExpr>),
    Case(Vec<(CExpr, CExpr)>, Box<CExpr>),
    /// `now()`, offset by a timespan.
    Now(Option<Box<CExpr>>),
    /// `ago(timespan)`.
    Ago(Box<CExpr>),
}

/// One step of the plan, run in order on each row.
#[derive(Debug, Clone)]
pub(crate) enum Stage {
    /// Keep the row only when the predicate is true.
    Filter(CExpr),
    /// Compute each expression into its slot, in order.
    Compute(Vec<(usize, CExpr)>),
    /// `parse`: match the source text, write the typed captures into the slots.
    Parse {
        source: CExpr,
        regex: Box<Regex>,
        /// Slot, type, capture group.
        outputs: Vec<(usize, Type)>,
        relaxed: bool,
    },
}

/// Where the rows come from.
#[derive(Debug, Clone)]
pub(crate) enum PlanSource {
    Input,
    /// `print`: one row, computed by the first stage.
    Print,
    /// `datatable`: constant rows, one value per column, written into the columns' slots.
    Datatable {
        slots: Vec<usize>,
        rows: Vec<Vec<Value<'static>>>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) input: Vec<(String, Type)>,
    pub(crate) source: PlanSource,
    pub(crate) stages: Vec<Stage>,
    pub(crate) output: Vec<Col>,
    pub(crate) slots: usize,
    /// Whether an expression reads the clock (`now()`, `ago()`).
    pub(crate) uses_clock: bool,
}

enum LetDef {
    Scalar(CExpr, Type),
    Function {
        params: Vec<(String, Type)>,
        body: Expr,
    },
    Tabular(Fragment),
}

impl LetDef {
    fn kind(&self) -> &'static str {
        match self {
            LetDef::Scalar(..) => "a scalar",
            LetDef::Function { .. } => "a function",
            LetDef::Tabular(_) => TABULAR,
        }
    }
}

const TABULAR: &str = "a tabular expression";

/// A compiled pipeline: where its rows come from, its stages, and its output columns. A
/// tabular `let` is one; a pipeline that starts from its name continues from a copy of it,
/// so a row runs through the `let`'s stages and then the pipeline's, as if the two were
/// written as one.
#[derive(Clone)]
struct Fragment {
    source: PlanSource,
    stages: Vec<Stage>,
    layout: Vec<Col>,
    /// Expression nodes and columns bound for it (its own and its base's): what a copy costs.
    cost: usize,
}

struct Binder<'q> {
    src: &'q str,
    input: Vec<(String, Type)>,
    /// The schema's columns: the first `schema_len` of `input` (the rest are the columns a
    /// lenient compile found).
    schema_len: usize,
    lenient: bool,
    /// The names of the `let` being compiled and of the later ones: used by it, they are
    /// recursion.
    pending: Vec<String>,
    layout: Vec<Col>,
    lets: HashMap<String, LetDef>,
    params: Vec<HashMap<String, (CExpr, Type)>>,
    slots: usize,
    depth: usize,
    /// Expression nodes bound so far: inlined functions can multiply a query's size.
    nodes: usize,
    uses_clock: bool,
    dialect: Dialect,
}

/// The aggregation functions of `summarize` (query dialect): an error anywhere else.
pub(crate) const AGGREGATES: &[&str] = &[
    "count",
    "countif",
    "dcount",
    "dcountif",
    "min",
    "max",
    "sum",
    "sumif",
    "avg",
    "make_set",
    "makeset",
    "make_list",
    "makelist",
    "arg_max",
    "arg_min",
    "take_any",
    "any",
];

pub(crate) fn lit_value(l: &Lit) -> Value<'static> {
    match l {
        Lit::Null(Some(Type::String)) => Value::String(Cow::Borrowed("")),
        Lit::Null(_) => Value::Null,
        Lit::Bool(b) => Value::Bool(*b),
        Lit::Int(v) => Value::Int(*v),
        Lit::Long(v) => Value::Long(*v),
        Lit::Real(v) => Value::Real(*v),
        Lit::String(s) => Value::String(Cow::Owned(s.clone())),
        Lit::DateTime(t) => Value::DateTime(*t),
        Lit::Timespan(t) => Value::Timespan(*t),
        Lit::Guid(g) => Value::Guid(*g),
        Lit::Dynamic(j) => Value::Dynamic(Cow::Owned(j.clone())),
    }
}

fn lit_type(l: &Lit) -> Type {
    match l {
        Lit::Null(t) => t.unwrap_or(Type::Dynamic),
        Lit::Bool(_) => Type::Bool,
        Lit::Int(_) => Type::Int,
        Lit::Long(_) => Type::Long,
        Lit::Real(_) => Type::Real,
        Lit::String(_) => Type::String,
        Lit::DateTime(_) => Type::DateTime,
        Lit::Timespan(_) => Type::Timespan,
        Lit::Guid(_) => Type::Guid,
        Lit::Dynamic(_) => Type::Dynamic,
    }
}

/// Levenshtein distance, case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The nearest candidate to `name`, when close enough to be a plausible typo.
pub(crate) fn suggest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Converts the `*` wildcards of a `project-away` pattern to a regex.
fn wildcard(pattern: &str) -> Option<Regex> {
    let mut re = String::from("^");
    for part in pattern.split('*').enumerate() {
        if part.0 > 0 {
            re.push_str(".*");
        }
        re.push_str(&regex::escape(part.1));
    }
    re.push('$');
    Regex::new(&re).ok()
}

type B<T> = Result<T, Error>;

impl Binder<'_> {
    fn err<T>(&self, kind: ErrorKind, pos: usize) -> B<T> {
        Err(Error::new(kind, self.src, pos))
    }

    fn new_slot(&mut self) -> usize {
        self.slots += 1;
        self.slots - 1
    }

    fn lookup_column(&self, name: &str) -> Option<&Col> {
        self.layout.iter().find(|c| c.name == name)
    }

    fn wrong_kind<T>(&self, name: &str, found: &str, expected: &str, pos: usize) -> B<T> {
        self.err(
            ErrorKind::WrongKind {
                name: name.to_string(),
                found: found.to_string(),
                expected: expected.to_string(),
            },
            pos,
        )
    }

    fn unknown(&self, name: &str, pos: usize) -> B<(CExpr, Type)> {
        let names = self.layout.iter().map(|c| c.name.as_str()).chain(
            self.lets
                .iter()
                .filter(|(_, d)| !matches!(d, LetDef::Tabular(_)))
                .map(|(n, _)| n.as_str()),
        );
        let suggestion = suggest(name, names);
        self.err(
            ErrorKind::UnknownColumn {
                name: name.to_string(),
                suggestion,
            },
            pos,
        )
    }

    fn name(&mut self, name: &str, pos: usize) -> B<(CExpr, Type)> {
        for scope in self.params.iter().rev() {
            if let Some((e, t)) = scope.get(name) {
                return Ok((e.clone(), *t));
            }
        }
        if let Some(c) = self.lookup_column(name) {
            return Ok(match c.slot {
                Slot::Input(i) => (CExpr::Input(i), c.ty),
                Slot::Computed(i) => (CExpr::Slot(i), c.ty),
            });
        }
        match self.lets.get(name) {
            Some(LetDef::Scalar(e, t)) => return Ok((e.clone(), *t)),
            Some(LetDef::Tabular(_)) => return self.wrong_kind(name, TABULAR, "a scalar", pos),
            _ => {}
        }
        if self.pending.iter().any(|p| p == name) {
            return self.err(
                ErrorKind::Recursion {
                    name: name.to_string(),
                },
                pos,
            );
        }
        if self.lenient {
            // Unknown columns are read from the row as dynamic values.
            let idx = match self.input.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    self.input.push((name.to_string(), Type::Dynamic));
                    self.input.len() - 1
                }
            };
            return Ok((CExpr::Input(idx), self.input[idx].1));
        }
        self.unknown(name, pos)
    }

    /// Counts bound nodes: inlined functions and copied tabular `let`s can multiply a query's
    /// size.
    fn add_nodes(&mut self, n: usize, pos: usize) -> B<()> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > 100_000 {
            return self.err(
                ErrorKind::Syntax("query too large once its lets and functions are inlined".into()),
                pos,
            );
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr) -> B<(CExpr, Type)> {
        self.depth += 1;
        self.add_nodes(1, e.pos)?;
        if self.depth > 200 {
            return self.err(
                ErrorKind::Syntax("expression nested too deeply".into()),
                e.pos,
            );
        }
        let r = self.expr_inner(e);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, e: &Expr) -> B<(CExpr, Type)> {
        Ok(match &e.kind {
            ExprKind::Lit(l) => (CExpr::Const(lit_value(l)), lit_type(l)),
            ExprKind::Name(n) => self.name(n, e.pos)?,
            ExprKind::TypeOf(_) => {
                return self.err(
                    ErrorKind::BadArguments(
                        "typeof() is only allowed as a function argument".into(),
                    ),
                    e.pos,
                );
            }
            ExprKind::Neg(x) => {
                let (x, t) = self.expr(x)?;
                (CExpr::Neg(Box::new(x)), t)
            }
            ExprKind::Binary(op, a, b) => {
                let (a, ta) = self.expr(a)?;
                let (b, tb) = self.expr(b)?;
                let t = binary_type(*op, ta, tb);
                (CExpr::Bin(*op, Box::new(a), Box::new(b)), t)
            }
            ExprKind::Str {
                kind,
                cs,
                negated,
                lhs,
                rhs,
            } => {
                let (l, _) = self.expr(lhs)?;
                let (r, _) = self.expr(rhs)?;
                (
                    CExpr::Str {
                        kind: *kind,
                        cs: *cs,
                        negated: *negated,
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                    },
                    Type::Bool,
                )
            }
            ExprKind::In {
                lhs,
                list,
                negated,
                ci,
            } => {
                let (l, _) = self.expr(lhs)?;
                let list = list
                    .iter()
                    .map(|x| self.expr(x).map(|p| p.0))
                    .collect::<B<Vec<_>>>()?;
                (
                    CExpr::In {
                        lhs: Box::new(l),
                        list,
                        negated: *negated,
                        ci: *ci,
                    },
                    Type::Bool,
                )
            }
            ExprKind::MatchesRegex(l, r) => {
                let (lc, _) = self.expr(l)?;
                let re = self.const_regex(r, "")?;
                (CExpr::Regex(Box::new(lc), Box::new(re)), Type::Bool)
            }
            ExprKind::Member(x, name) => {
                let (xc, _) = self.expr(x)?;
                (CExpr::Member(Box::new(xc), name.clone()), Type::Dynamic)
            }
            ExprKind::Index(x, i) => {
                let (xc, _) = self.expr(x)?;
                let (ic, _) = self.expr(i)?;
                (CExpr::Index(Box::new(xc), Box::new(ic)), Type::Dynamic)
            }
            ExprKind::Call(name, args) => self.call(name, args, e.pos)?,
            ExprKind::Between {
                lhs,
                lo,
                hi,
                negated,
            } => {
                let (l, tl) = self.expr(lhs)?;
                let (lo, tlo) = self.expr(lo)?;
                let (hi, thi) = self.expr(hi)?;
                // `t between (start .. 1h)`: the upper bound is the lower one plus the timespan.
                let hi = if thi == Type::Timespan && (tlo == Type::DateTime || tl == Type::DateTime)
                {
                    CExpr::Bin(BinOp::Add, Box::new(lo.clone()), Box::new(hi))
                } else {
                    hi
                };
                let within = CExpr::Bin(
                    BinOp::And,
                    Box::new(CExpr::Bin(BinOp::Ge, Box::new(l.clone()), Box::new(lo))),
                    Box::new(CExpr::Bin(BinOp::Le, Box::new(l), Box::new(hi))),
                );
                if *negated {
                    (CExpr::Call(functions::not, vec![within]), Type::Bool)
                } else {
                    (within, Type::Bool)
                }
            }
            ExprKind::HasAny { lhs, list, all } => {
                let mut args = vec![self.expr(lhs)?.0];
                for x in list {
                    args.push(self.expr(x)?.0);
                }
                let f: Builtin = if *all {
                    functions::has_all
                } else {
                    functions::has_any
                };
                (CExpr::Call(f, args), Type::Bool)
            }
        })
    }

    /// A regex argument that must be a constant string.
    fn const_regex(&mut self, e: &Expr, flags: &str) -> B<Regex> {
        let (c, _) = self.expr(e)?;
        let CExpr::Const(Value::String(s)) = c else {
            return self.err(
                ErrorKind::BadArguments("the regular expression must be a constant string".into()),
                e.pos,
            );
        };
        let pattern = if flags.is_empty() {
            s.to_string()
        } else {
            format!("(?{flags}){s}")
        };
        regex::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build()
            .or_else(|err| {
                self.err(
                    ErrorKind::BadLiteral(format!("bad regular expression: {err}")),
                    e.pos,
                )
            })
    }

    fn const_string(&mut self, e: &Expr, what: &str) -> B<String> {
        match self.expr(e)?.0 {
            CExpr::Const(Value::String(s)) => Ok(s.into_owned()),
            _ => self.err(
                ErrorKind::BadArguments(format!("{what} must be a constant string")),
                e.pos,
            ),
        }
    }

    fn call(&mut self, name: &str, args: &[Expr], pos: usize) -> B<(CExpr, Type)> {
        if let Some(LetDef::Tabular(_)) = self.lets.get(name) {
            return self.wrong_kind(name, TABULAR, "a function", pos);
        }
        if !self.lets.contains_key(name) && self.pending.iter().any(|p| p == name) {
            return self.err(
                ErrorKind::Recursion {
                    name: name.to_string(),
                },
                pos,
            );
        }
        // User-defined functions first.
        if let Some(LetDef::Function { params, body }) = self.lets.get(name) {
            let (params, body) = (params.clone(), body.clone());
            if params.len() != args.len() {
                return self.err(
                    ErrorKind::BadArguments(format!(
                        "{name}() takes {} arguments, {} given",
                        params.len(),
                        args.len()
                    )),
                    pos,
                );
            }
            let mut scope = HashMap::new();
            for ((pname, pty), a) in params.iter().zip(args) {
                let (c, _) = self.expr(a)?;
                scope.insert(pname.clone(), (c, *pty));
            }
            if self.params.len() > 32 {
                return self.err(
                    ErrorKind::BadArguments(format!("{name}(): user functions nested more than 32 calls deep (a recursive function?)")),
                    pos,
                );
            }
            self.params.push(scope);
            let r = self.expr(&body);
            self.params.pop();
            return r;
        }
        let argc = args.len();
        let arity = |lo: usize, hi: usize| -> B<()> {
            if argc < lo || argc > hi {
                let expect = if lo == hi {
                    format!("{lo}")
                } else if hi == usize::MAX {
                    format!("at least {lo}")
                } else {
                    format!("{lo} to {hi}")
                };
                let noun = if expect == "1" {
                    "argument"
                } else {
                    "arguments"
                };
                Err(Error::new(
                    ErrorKind::BadArguments(format!(
                        "{name}() takes {expect} {noun}, {argc} given"
                    )),
                    self.src,
                    pos,
                ))
            } else {
                Ok(())
            }
        };
        match name {
            "iif" | "iff" => {
                arity(3, 3)?;
                let (c, _) = self.expr(&args[0])?;
                let (a, ta) = self.expr(&args[1])?;
                let (b, tb) = self.expr(&args[2])?;
                return Ok((
                    CExpr::Iif(Box::new(c), Box::new(a), Box::new(b)),
                    if ta == Type::Dynamic { tb } else { ta },
                ));
            }
            "case" => {
                arity(3, usize::MAX)?;
                if argc.is_multiple_of(2) {
                    return self.err(
                        ErrorKind::BadArguments(
                            "case() takes predicate/value pairs and an else value".into(),
                        ),
                        pos,
                    );
                }
                let mut pairs = Vec::new();
                let mut ty = Type::Dynamic;
                for pair in args[..argc - 1].chunks(2) {
                    let (p, _) = self.expr(&pair[0])?;
                    let (v, t) = self.expr(&pair[1])?;
                    if ty == Type::Dynamic {
                        ty = t;
                    }
                    pairs.push((p, v));
                }
                let (e, te) = self.expr(&args[argc - 1])?;
                return Ok((
                    CExpr::Case(pairs, Box::new(e)),
                    if ty == Type::Dynamic { te } else { ty },
                ));
            }
            "now" => {
                arity(0, 1)?;
                self.uses_clock = true;
                let off = match args.first() {
                    Some(a) => Some(Box::new(self.expr(a)?.0)),
                    None => None,
                };
                return Ok((CExpr::Now(off), Type::DateTime));
            }
            "ago" => {
                arity(1, 1)?;
                self.uses_clock = true;
                return Ok((CExpr::Ago(Box::new(self.expr(&args[0])?.0)), Type::DateTime));
            }
            "columnifexists" => {
                arity(2, 2)?;
                let col = self.const_string(&args[0], "columnifexists()'s first argument")?;
                if let Some(c) = self.lookup_column(&col) {
                    let c = c.clone();
                    return Ok((
                        match c.slot {
                            Slot::Input(i) => CExpr::Input(i),
                            Slot::Computed(i) => CExpr::Slot(i),
                        },
                        c.ty,
                    ));
                }
                return self.expr(&args[1]);
            }
            "column_ifexists" if self.dialect == Dialect::Query => {
                return self.call("columnifexists", args, pos);
            }
            _ if self.dialect == Dialect::Query && AGGREGATES.contains(&name) => {
                return self.err(
                    ErrorKind::UnsupportedInQuery(format!(
                        "the aggregate {name}() outside summarize"
                    )),
                    pos,
                );
            }
            "column_ifexists" => {
                return self.err(
                    ErrorKind::UnsupportedFunction(
                        "transformations spell it columnifexists(), not column_ifexists()".into(),
                    ),
                    pos,
                );
            }
            "gettype" => {
                arity(1, 1)?;
                let (c, t) = self.expr(&args[0])?;
                if t != Type::Dynamic {
                    return Ok((CExpr::Const(Value::str(t.name())), Type::String));
                }
                return Ok((
                    CExpr::Call(functions::gettype_dynamic, vec![c]),
                    Type::String,
                ));
            }
            "geo_location" => {
                return self.err(
                    ErrorKind::UnsupportedFunction(
                        "geo_location() is not yet supported (it needs a geo database)".into(),
                    ),
                    pos,
                );
            }
            "not" => {
                arity(1, 1)?;
                let (c, _) = self.expr(&args[0])?;
                return Ok((CExpr::Call(functions::not, vec![c]), Type::Bool));
            }
            _ => {}
        }
        // Regex functions compile their pattern once.
        // Regex functions compile their pattern once. `order` lists the other arguments in the
        // order the builtin takes them: `replace(regex, rewrite, text)` (the deprecated form the
        // DCR pages use) and `replace_regex(text, regex, rewrite)` both become (rewrite, text).
        let regex_fn: Option<(usize, &[usize], Builtin, Type)> = match name {
            "extract" => Some((0, &[1, 2, 3], functions::extract as Builtin, Type::String)),
            "extract_all" => Some((0, &[1, 2], functions::extract_all as Builtin, Type::Dynamic)),
            "replace" => Some((
                0,
                &[1, 2],
                functions::replace_regex as Builtin,
                Type::String,
            )),
            "replace_regex" => Some((
                1,
                &[2, 0],
                functions::replace_regex as Builtin,
                Type::String,
            )),
            _ => None,
        };
        if let Some((ri, order, f, mut ty)) = regex_fn {
            match name {
                "extract" => arity(3, 4)?,
                "extract_all" => arity(2, 3)?,
                _ => arity(3, 3)?,
            }
            let re = self.const_regex(&args[ri], "")?;
            let mut cargs = Vec::new();
            for a in order.iter().filter_map(|&k| args.get(k)) {
                if let ExprKind::TypeOf(t) = a.kind {
                    ty = t;
                    cargs.push(CExpr::Const(Value::str(t.name())));
                } else {
                    cargs.push(self.expr(a)?.0);
                }
            }
            return Ok((CExpr::CallRe(f, Box::new(re), cargs), ty));
        }
        if name == "countof" && args.len() == 3 {
            let kind = self.const_string(&args[2], "countof()'s kind")?;
            if kind == "regex" {
                let re = self.const_regex(&args[1], "")?;
                let text = self.expr(&args[0])?.0;
                return Ok((
                    CExpr::CallRe(functions::countof_regex, Box::new(re), vec![text]),
                    Type::Long,
                ));
            }
            if kind != "normal" {
                return self.err(
                    ErrorKind::BadArguments("countof()'s kind is 'normal' or 'regex'".into()),
                    args[2].pos,
                );
            }
        }
        if name == "parse_cef_dictionary" {
            arity(1, 1)?;
        }
        let spec = match self.dialect {
            Dialect::Query => functions::lookup(name).or_else(|| functions::lookup_query(name)),
            _ => functions::lookup(name),
        };
        let Some(spec) = spec else {
            if self.dialect == Dialect::Query {
                let known = functions::NAMES
                    .iter()
                    .chain(functions::QUERY_NAMES)
                    .copied()
                    .chain(["iif", "iff", "case", "now", "ago", "column_ifexists", "not"]);
                let hint = suggest(name, known)
                    .map(|s| format!(" (did you mean {s}()?)"))
                    .unwrap_or_default();
                return self.err(
                    ErrorKind::UnsupportedInQuery(format!("the function {name}(){hint}")),
                    pos,
                );
            }
            let known = functions::NAMES.iter().copied().chain([
                "iif",
                "iff",
                "case",
                "now",
                "ago",
                "columnifexists",
                "gettype",
                "not",
                "extract",
                "extract_all",
                "replace_regex",
                "replace",
            ]);
            let hint = suggest(name, known)
                .map(|s| format!(" (did you mean {s}()?)"))
                .unwrap_or_default();
            return self.err(
                ErrorKind::UnsupportedFunction(format!(
                    "unknown or unsupported function {name}(){hint}"
                )),
                pos,
            );
        };
        arity(spec.min, spec.max)?;
        let mut cargs = Vec::with_capacity(argc);
        let mut types = Vec::with_capacity(argc);
        for a in args {
            if let ExprKind::TypeOf(t) = a.kind {
                cargs.push(CExpr::Const(Value::str(t.name())));
                types.push(t);
            } else {
                let (c, t) = self.expr(a)?;
                cargs.push(c);
                types.push(t);
            }
        }
        let ty = spec.ret_type(&types);
        Ok((CExpr::Call(spec.f, cargs), ty))
    }

    fn auto_name(&self, e: &Expr, used: &mut usize) -> String {
        match &e.kind {
            ExprKind::Name(n) => n.clone(),
            ExprKind::Member(x, m) => {
                let base = self.auto_name(x, used);
                format!("{base}_{m}")
            }
            _ => {
                *used += 1;
                format!("Column{used}")
            }
        }
    }

    fn set_column(&mut self, name: String, ty: Type, slot: usize) {
        let col = Col {
            name,
            ty,
            slot: Slot::Computed(slot),
        };
        match self.layout.iter_mut().find(|c| c.name == col.name) {
            Some(c) => *c = col,
            None => self.layout.push(col),
        }
    }

    fn operator(&mut self, op: &Operator, pos: usize, stages: &mut Vec<Stage>) -> B<()> {
        match op {
            Operator::Where(e) => {
                let (c, _) = self.expr(e)?;
                stages.push(Stage::Filter(c));
            }
            Operator::Extend(items) => {
                let mut computes = Vec::new();
                let mut unnamed = 0;
                for a in items {
                    let (c, t) = self.expr(&a.expr)?;
                    let name = match &a.name {
                        Some((n, _)) => n.clone(),
                        None => self.auto_name(&a.expr, &mut unnamed),
                    };
                    let slot = self.new_slot();
                    computes.push((slot, c));
                    // Later items of the same extend see the new column.
                    self.set_column(name, t, slot);
                }
                stages.push(Stage::Compute(computes));
            }
            Operator::Project(items) => {
                let mut computes = Vec::new();
                let mut new_layout: Vec<Col> = Vec::new();
                let mut unnamed = 0;
                for a in items {
                    if let (None, ExprKind::Name(n)) = (&a.name, &a.expr.kind)
                        && let Some(c) = self.lookup_column(n)
                    {
                        let c = c.clone();
                        new_layout.retain(|x| x.name != c.name);
                        new_layout.push(c);
                        continue;
                    }
                    let (c, t) = self.expr(&a.expr)?;
                    let name = match &a.name {
                        Some((n, _)) => n.clone(),
                        None => self.auto_name(&a.expr, &mut unnamed),
                    };
                    let slot = self.new_slot();
                    computes.push((slot, c));
                    new_layout.retain(|x| x.name != name);
                    new_layout.push(Col {
                        name,
                        ty: t,
                        slot: Slot::Computed(slot),
                    });
                }
                if !computes.is_empty() {
                    stages.push(Stage::Compute(computes));
                }
                self.layout = new_layout;
            }
            Operator::ProjectAway(names) => {
                for (n, npos) in names {
                    if n.contains('*') {
                        let Some(re) = wildcard(n) else {
                            return self.err(ErrorKind::Syntax("bad column pattern".into()), *npos);
                        };
                        self.layout.retain(|c| !re.is_match(&c.name));
                    } else {
                        // Leniently, a column the query never named is not in the output:
                        // there is nothing to remove.
                        if self.lookup_column(n).is_none() && !self.lenient {
                            self.unknown(n, *npos)?;
                        }
                        self.layout.retain(|c| &c.name != n);
                    }
                }
            }
            Operator::ProjectRename(pairs) => {
                for ((new, _), (old, opos)) in pairs {
                    if self.lookup_column(old).is_none() {
                        if !self.lenient {
                            self.unknown(old, *opos)?;
                        }
                        // Leniently, an unknown column is read from the row as dynamic.
                        let idx = match self.input.iter().position(|(n, _)| n == old) {
                            Some(i) => i,
                            None => {
                                self.input.push((old.clone(), Type::Dynamic));
                                self.input.len() - 1
                            }
                        };
                        self.layout.push(Col {
                            name: old.clone(),
                            ty: self.input[idx].1,
                            slot: Slot::Input(idx),
                        });
                    }
                    // The renamed column replaces any other column of the new name.
                    self.layout.retain(|c| c.name != *new || c.name == *old);
                    if let Some(c) = self.layout.iter_mut().find(|c| c.name == *old) {
                        c.name.clone_from(new);
                    }
                }
            }
            Operator::Parse {
                kind,
                flags,
                source,
                pattern,
            } => {
                let (src, _) = self.expr(source)?;
                let columns = pattern
                    .iter()
                    .filter(|p| matches!(p, PatternItem::Column { .. }))
                    .count();
                if columns > 10 {
                    return self.err(
                        ErrorKind::BadArguments(
                            "parse extracts at most 10 columns in a transformation".into(),
                        ),
                        pos,
                    );
                }
                let mut re = String::from(if *kind == ParseKind::Regex {
                    "(?s)"
                } else {
                    "(?s)\\A"
                });
                let mut outputs = Vec::new();
                let last_col = pattern
                    .iter()
                    .rposition(|p| matches!(p, PatternItem::Column { .. }));
                for (k, item) in pattern.iter().enumerate() {
                    match item {
                        PatternItem::Star => re.push_str(".*?"),
                        PatternItem::Text(t) => {
                            if *kind == ParseKind::Regex {
                                re.push_str(&format!("(?:{t})"));
                            } else {
                                re.push_str(&regex::escape(t));
                            }
                        }
                        PatternItem::Column { name, ty, .. } => {
                            let ty = ty.unwrap_or(Type::String);
                            let at_end = Some(k) == last_col && k + 1 == pattern.len();
                            let group = match (kind, ty) {
                                (ParseKind::Regex, Type::String | Type::Dynamic) => "(.*)",
                                (ParseKind::Simple, Type::Int | Type::Long) => "(-?\\d+)",
                                (ParseKind::Simple, Type::Real | Type::Decimal) => {
                                    "(-?\\d+(?:\\.\\d*)?(?:[eE][-+]?\\d+)?)"
                                }
                                (ParseKind::Simple, Type::Bool) => "((?i:true|false|1|0))",
                                (ParseKind::Regex, Type::Int | Type::Long) => "(-?\\d+)",
                                (ParseKind::Regex, Type::Real | Type::Decimal) => {
                                    "(-?\\d+(?:\\.\\d*)?(?:[eE][-+]?\\d+)?)"
                                }
                                // Relaxed: the type's shape when it is there, else anything
                                // (which then fails to convert and gives null).
                                (ParseKind::Relaxed, Type::Int | Type::Long) if !at_end => {
                                    "(-?\\d+|.*?)"
                                }
                                (ParseKind::Relaxed, Type::Real | Type::Decimal) if !at_end => {
                                    "(-?\\d+(?:\\.\\d*)?(?:[eE][-+]?\\d+)?|.*?)"
                                }
                                (ParseKind::Relaxed, Type::Bool) if !at_end => {
                                    "((?i:true|false)|.*?)"
                                }
                                _ if at_end => "(.*)",
                                _ => "(.*?)",
                            };
                            re.push_str(group);
                            let slot = self.new_slot();
                            outputs.push((slot, ty));
                            self.set_column(name.clone(), ty, slot);
                        }
                    }
                }
                let mut b = regex::RegexBuilder::new(&re);
                b.size_limit(1 << 22);
                for f in flags.chars() {
                    match f {
                        'U' => b.swap_greed(true),
                        'i' => b.case_insensitive(true),
                        'm' => b.multi_line(true),
                        's' => b.dot_matches_new_line(true),
                        _ => {
                            return self.err(
                                ErrorKind::BadArguments(format!(
                                    "unknown parse flag '{f}' (U, i, m or s)"
                                )),
                                pos,
                            );
                        }
                    };
                }
                let regex = match b.build() {
                    Ok(r) => r,
                    Err(e) => {
                        return self.err(
                            ErrorKind::BadLiteral(format!("bad parse pattern: {e}")),
                            pos,
                        );
                    }
                };
                stages.push(Stage::Parse {
                    source: src,
                    regex: Box::new(regex),
                    outputs,
                    relaxed: *kind == ParseKind::Relaxed,
                });
            }
            // Multi-row operators run on a window of rows (crate::query), never here.
            _ => {
                return self.err(
                    ErrorKind::UnsupportedInQuery(
                        "a multi-row operator in a one-row query (use TableQuery)".into(),
                    ),
                    pos,
                );
            }
        }
        Ok(())
    }
}

fn binary_type(op: BinOp, a: Type, b: Type) -> Type {
    use Type::*;
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => match (op, a, b) {
            (_, Dynamic, _) | (_, _, Dynamic) => Dynamic,
            (BinOp::Sub, DateTime, DateTime) => Timespan,
            (BinOp::Add | BinOp::Sub, DateTime, Timespan) | (BinOp::Add, Timespan, DateTime) => {
                DateTime
            }
            (BinOp::Div, Timespan, Timespan) => Real,
            (_, Timespan, _) | (_, _, Timespan) => Timespan,
            (_, Real | Decimal, _) | (_, _, Real | Decimal) => Real,
            (_, Int, Int) => Int,
            (_, x, y) if x.is_numeric() && y.is_numeric() => Long,
            _ => Dynamic,
        },
        _ => Bool,
    }
}

impl Binder<'_> {
    /// Compiles a pipeline: its source (a tabular `let`'s name continues from a copy of the
    /// `let`'s compiled pipeline), then its operators.
    fn pipeline(&mut self, p: &Pipeline) -> B<Fragment> {
        let start = self.nodes;
        let mut stages = Vec::new();
        self.layout = Vec::new();
        let source = match &p.source {
            Source::Input => {
                self.layout = self.input[..self.schema_len]
                    .iter()
                    .enumerate()
                    .map(|(i, (n, t))| Col {
                        name: n.clone(),
                        ty: *t,
                        slot: Slot::Input(i),
                    })
                    .collect();
                PlanSource::Input
            }
            Source::Print(items) => {
                let mut computes = Vec::new();
                for (k, a) in items.iter().enumerate() {
                    let (c, t) = self.expr(&a.expr)?;
                    let name = match &a.name {
                        Some((n, _)) => n.clone(),
                        None => format!("print_{k}"),
                    };
                    let slot = self.new_slot();
                    computes.push((slot, c));
                    self.set_column(name, t, slot);
                }
                stages.push(Stage::Compute(computes));
                PlanSource::Print
            }
            Source::Datatable { columns, values } => {
                if columns.is_empty() || values.len() % columns.len() != 0 {
                    return self.err(
                        ErrorKind::BadArguments(format!(
                            "datatable has {} values for {} columns",
                            values.len(),
                            columns.len()
                        )),
                        p.source_pos,
                    );
                }
                let mut rows = Vec::new();
                for chunk in values.chunks(columns.len()) {
                    let mut row = Vec::new();
                    for (v, (_, ty)) in chunk.iter().zip(columns) {
                        match self.expr(v)?.0 {
                            CExpr::Const(c) => row.push(crate::value::coerce(c, *ty).into_owned()),
                            _ => {
                                return self.err(
                                    ErrorKind::BadArguments(
                                        "datatable values must be literals".into(),
                                    ),
                                    v.pos,
                                );
                            }
                        }
                    }
                    rows.push(row);
                }
                let mut slots = Vec::new();
                for (name, ty) in columns {
                    let slot = self.new_slot();
                    slots.push(slot);
                    self.set_column(name.clone(), *ty, slot);
                }
                PlanSource::Datatable { slots, rows }
            }
            Source::Named(name) => match self.lets.get(name) {
                Some(LetDef::Tabular(f)) => {
                    let f = f.clone();
                    self.add_nodes(f.cost, p.source_pos)?;
                    self.layout = f.layout;
                    stages = f.stages;
                    f.source
                }
                Some(other) => {
                    return self.wrong_kind(name, other.kind(), TABULAR, p.source_pos);
                }
                None if self.pending.iter().any(|n| n == name) => {
                    return self.err(ErrorKind::Recursion { name: name.clone() }, p.source_pos);
                }
                None => {
                    let tables = self
                        .lets
                        .iter()
                        .filter(|(_, d)| matches!(d, LetDef::Tabular(_)))
                        .map(|(n, _)| n.as_str())
                        .chain(["source"]);
                    let suggestion = suggest(name, tables);
                    return self.err(
                        ErrorKind::UnknownTable {
                            name: name.clone(),
                            suggestion,
                        },
                        p.source_pos,
                    );
                }
            },
        };
        for (op, pos) in &p.operators {
            self.operator(op, *pos, &mut stages)?;
        }
        let layout = std::mem::take(&mut self.layout);
        let cost = self.nodes - start + layout.len();
        Ok(Fragment {
            source,
            stages,
            layout,
            cost,
        })
    }
}

/// The input schema used when compiling, and whether unknown columns are an error.
pub(crate) fn compile(
    src: &str,
    q: &Query,
    input: &[(String, Type)],
    lenient: bool,
    dialect: Dialect,
) -> B<Plan> {
    let mut b = Binder {
        dialect,
        src,
        input: input.to_vec(),
        schema_len: input.len(),
        lenient,
        pending: Vec::new(),
        layout: Vec::new(),
        lets: HashMap::new(),
        params: Vec::new(),
        slots: 0,
        depth: 0,
        nodes: 0,
        uses_clock: false,
    };
    for (k, (name, _pos, l)) in q.lets.iter().enumerate() {
        // A let sees the lets before it: its own name and later ones are recursion.
        b.pending = q.lets[k..].iter().map(|l| l.0.clone()).collect();
        let def = match l {
            Let::Scalar(e) => {
                let (c, t) = b.expr(e)?;
                LetDef::Scalar(c, t)
            }
            Let::Function { params, body } => LetDef::Function {
                params: params.clone(),
                body: body.clone(),
            },
            Let::Tabular(p) => LetDef::Tabular(b.pipeline(p)?),
        };
        b.lets.insert(name.clone(), def);
    }
    b.pending = Vec::new();
    let f = b.pipeline(&q.pipeline)?;
    Ok(Plan {
        input: b.input,
        source: f.source,
        stages: f.stages,
        output: f.layout,
        slots: b.slots,
        uses_clock: b.uses_clock,
    })
}
