//! The syntax tree of a query. Every node keeps the byte offset where it starts.

use serde_json::Value as Json;

use crate::value::Type;

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    /// A typed null (`long(null)`); `None` is an untyped null.
    Null(Option<Type>),
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    String(String),
    DateTime(i64),
    Timespan(i64),
    Guid(u128),
    Dynamic(Json),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    EqCi,
    NeCi,
    And,
    Or,
}

/// String predicates: `has`, `contains`, ... with their case sensitivity and negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrKind {
    Has,
    Contains,
    StartsWith,
    EndsWith,
    HasPrefix,
    HasSuffix,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprKind {
    Lit(Lit),
    /// A column, a `let` name or a function parameter.
    Name(String),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Str {
        kind: StrKind,
        cs: bool,
        negated: bool,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    In {
        lhs: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
        ci: bool,
    },
    MatchesRegex(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    /// `typeof(long)` (only as an argument).
    TypeOf(Type),
    /// `a.b` and `a['b']`.
    Member(Box<Expr>, String),
    /// `a[expr]`.
    Index(Box<Expr>, Box<Expr>),
    /// `x between (lo .. hi)` and `x !between (lo .. hi)` (query dialect).
    Between {
        lhs: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        negated: bool,
    },
    /// `x has_any (a, b)` and `x has_all (a, b)` (query dialect).
    HasAny {
        lhs: Box<Expr>,
        list: Vec<Expr>,
        all: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub(crate) kind: ExprKind,
    pub(crate) pos: usize,
}

/// `name = expr` or a bare `expr` in `extend`, `project`, `print`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assign {
    pub(crate) name: Option<(String, usize)>,
    pub(crate) expr: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseKind {
    Simple,
    Regex,
    Relaxed,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PatternItem {
    Star,
    Text(String),
    Column {
        name: String,
        ty: Option<Type>,
        pos: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operator {
    Where(Expr),
    Extend(Vec<Assign>),
    Project(Vec<Assign>),
    ProjectAway(Vec<(String, usize)>),
    ProjectRename(Vec<((String, usize), (String, usize))>),
    Parse {
        kind: ParseKind,
        flags: String,
        source: Expr,
        pattern: Vec<PatternItem>,
    },
    // The multi-row operators of the query dialect (the transformation dialect refuses them
    // while parsing).
    /// `summarize [Name =] Aggregate(...), ... [by [Name =] Expr, ...]`.
    Summarize {
        aggs: Vec<Assign>,
        by: Vec<Assign>,
    },
    /// `sort by` / `order by`.
    Sort(Vec<SortKey>),
    /// `top N by key [asc|desc] [nulls first|last]`.
    Top {
        count: Expr,
        by: Vec<SortKey>,
    },
    /// `take N` / `limit N`.
    Take(Expr),
    /// `distinct A, B` (no columns: `distinct *`).
    Distinct(Vec<(String, usize)>),
    /// `count`.
    Count,
    /// `project-reorder A, B*`.
    ProjectReorder(Vec<(String, usize)>),
    /// `mv-expand [Name =] Expr [to typeof(T)], ... [limit N]`.
    MvExpand {
        items: Vec<(Assign, Option<Type>)>,
        limit: Option<Expr>,
    },
    /// `join kind=K (right) on keys`.
    Join {
        kind: JoinKind,
        right: Box<Pipeline>,
        on: Vec<JoinKey>,
    },
}

impl Operator {
    /// Whether the operator runs on one row at a time (the transformation subset).
    pub(crate) fn is_row_level(&self) -> bool {
        matches!(
            self,
            Operator::Where(_)
                | Operator::Extend(_)
                | Operator::Project(_)
                | Operator::ProjectAway(_)
                | Operator::ProjectRename(_)
                | Operator::Parse { .. }
        )
    }
}

/// One key of `sort by` / `top N by`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortKey {
    pub(crate) expr: Expr,
    pub(crate) desc: bool,
    /// `nulls first` / `nulls last`; `None` is the default (first ascending, last descending).
    pub(crate) nulls_first: Option<bool>,
}

/// The kinds of `join` the query dialect runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    InnerUnique,
    Inner,
    LeftOuter,
    LeftAnti,
    LeftSemi,
    RightAnti,
    RightSemi,
}

impl JoinKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            JoinKind::InnerUnique => "innerunique",
            JoinKind::Inner => "inner",
            JoinKind::LeftOuter => "leftouter",
            JoinKind::LeftAnti => "leftanti",
            JoinKind::LeftSemi => "leftsemi",
            JoinKind::RightAnti => "rightanti",
            JoinKind::RightSemi => "rightsemi",
        }
    }
}

/// A `join` key: `on A` (the same column on both sides) or `on $left.A == $right.B`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinKey {
    pub(crate) left: (String, usize),
    pub(crate) right: (String, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// `source`: the input row.
    Input,
    Print(Vec<Assign>),
    Datatable {
        columns: Vec<(String, Type)>,
        values: Vec<Expr>,
    },
    /// The name of a tabular `let` (or, until it is bound, any name that starts a pipeline).
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    pub(crate) source: Source,
    pub(crate) source_pos: usize,
    pub(crate) operators: Vec<(Operator, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Let {
    Scalar(Expr),
    Function {
        params: Vec<(String, Type)>,
        body: Expr,
    },
    /// `let T = source | ...;`: a pipeline, which a later pipeline can start from.
    Tabular(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub(crate) lets: Vec<(String, usize, Let)>,
    pub(crate) pipeline: Pipeline,
}
