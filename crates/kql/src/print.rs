//! The canonical text of a parsed query, and the parsed query without its positions.
//!
//! The canonical form puts every `let` and every tabular operator on its own line, wraps every
//! binary, string, `in` and `matches regex` expression in parentheses (so no precedence rule
//! is needed to read it back), writes strings double-quoted, names `["quoted"]` only when they
//! are not plain identifiers, and literals in one spelling each (`int(5)`, `2d`, `1500ms`,
//! `datetime(2015-12-14T00:00:00.0000000Z)`, `dynamic({"a":1})`). Parsing the canonical text
//! gives the same syntax tree, positions aside.

use std::fmt::Write as _;

use crate::ast::{
    Assign, BinOp, Expr, ExprKind, Let, Lit, Operator, ParseKind, PatternItem, Pipeline, Query,
    SortKey, Source, StrKind,
};
use crate::time;
use crate::value::{Type, format_guid};

/// Words that read as something else than a name where a name may stand.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "typeof",
    "and",
    "or",
    "not",
    "in",
    "has",
    "contains",
    "startswith",
    "endswith",
    "matches",
    "with",
    "kind",
    "flags",
    "let",
    "source",
    "print",
    "datatable",
    "null",
];

fn plain(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
        && Type::from_name(name).is_none()
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn name(n: &str, out: &mut String) {
    if plain(n) {
        out.push_str(n);
    } else {
        out.push('[');
        string(n, out);
        out.push(']');
    }
}

fn real(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("real(nan)");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "real(inf)" } else { "real(-inf)" });
    } else {
        // `{:?}` writes the shortest text that reads back as the same f64, always with a `.` or
        // an exponent, so it reads back as a real.
        let _ = write!(out, "{v:?}");
    }
}

fn timespan(t: i64, out: &mut String) {
    const UNITS: &[(i64, &str)] = &[
        (time::TICKS_PER_DAY, "d"),
        (time::TICKS_PER_HOUR, "h"),
        (time::TICKS_PER_MINUTE, "m"),
        (time::TICKS_PER_SECOND, "s"),
        (time::TICKS_PER_MILLI, "ms"),
        (time::TICKS_PER_MICRO, "microsecond"),
        (1, "tick"),
    ];
    let (unit, word) = UNITS
        .iter()
        .find(|(u, _)| t % u == 0 && t != 0)
        .copied()
        .unwrap_or((1, "tick"));
    let _ = write!(out, "{}{word}", t / unit);
}

fn lit(l: &Lit, out: &mut String) {
    match l {
        Lit::Null(Some(t)) => {
            let _ = write!(out, "{}(null)", t.name());
        }
        Lit::Null(None) => out.push_str("dynamic(null)"),
        Lit::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Lit::Int(v) => {
            let _ = write!(out, "int({v})");
        }
        Lit::Long(v) if *v == i64::MIN => out.push_str("long(-9223372036854775808)"),
        Lit::Long(v) => {
            let _ = write!(out, "{v}");
        }
        Lit::Real(v) => real(*v, out),
        Lit::String(s) => string(s, out),
        Lit::DateTime(t) => {
            out.push_str("datetime(");
            time::format_datetime(*t, out);
            out.push(')');
        }
        Lit::Timespan(t) => timespan(*t, out),
        Lit::Guid(g) => {
            out.push_str("guid(");
            format_guid(*g, out);
            out.push(')');
        }
        Lit::Dynamic(j) => {
            out.push_str("dynamic(");
            out.push_str(&j.to_string());
            out.push(')');
        }
    }
}

fn binop(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::EqCi => "=~",
        BinOp::NeCi => "!~",
        BinOp::And => "and",
        BinOp::Or => "or",
    }
}

fn strkind(k: StrKind) -> &'static str {
    match k {
        StrKind::Has => "has",
        StrKind::Contains => "contains",
        StrKind::StartsWith => "startswith",
        StrKind::EndsWith => "endswith",
        StrKind::HasPrefix => "hasprefix",
        StrKind::HasSuffix => "hassuffix",
    }
}

fn list(items: &[Expr], out: &mut String) {
    for (k, e) in items.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        expr(e, out);
    }
}

fn expr(e: &Expr, out: &mut String) {
    match &e.kind {
        ExprKind::Lit(l) => lit(l, out),
        ExprKind::Name(n) => name(n, out),
        ExprKind::Neg(x) => {
            out.push_str("-(");
            expr(x, out);
            out.push(')');
        }
        ExprKind::Binary(op, a, b) => {
            out.push('(');
            expr(a, out);
            let _ = write!(out, " {} ", binop(*op));
            expr(b, out);
            out.push(')');
        }
        ExprKind::Str {
            kind,
            cs,
            negated,
            lhs,
            rhs,
        } => {
            out.push('(');
            expr(lhs, out);
            out.push(' ');
            if *negated {
                out.push('!');
            }
            out.push_str(strkind(*kind));
            if *cs {
                out.push_str("_cs");
            }
            out.push(' ');
            expr(rhs, out);
            out.push(')');
        }
        ExprKind::In {
            lhs,
            list: items,
            negated,
            ci,
        } => {
            out.push('(');
            expr(lhs, out);
            out.push_str(if *negated { " !in" } else { " in" });
            if *ci {
                out.push('~');
            }
            out.push_str(" (");
            list(items, out);
            out.push_str("))");
        }
        ExprKind::MatchesRegex(a, b) => {
            out.push('(');
            expr(a, out);
            out.push_str(" matches regex ");
            expr(b, out);
            out.push(')');
        }
        ExprKind::Call(f, args) => {
            out.push_str(f);
            out.push('(');
            list(args, out);
            out.push(')');
        }
        ExprKind::TypeOf(t) => {
            let _ = write!(out, "typeof({})", t.name());
        }
        ExprKind::Member(x, m) => {
            postfix_base(x, out);
            if plain(m) {
                out.push('.');
                out.push_str(m);
            } else {
                out.push('[');
                string(m, out);
                out.push(']');
            }
        }
        ExprKind::Index(x, i) => {
            postfix_base(x, out);
            out.push('[');
            expr(i, out);
            out.push(']');
        }
        ExprKind::Between {
            lhs,
            lo,
            hi,
            negated,
        } => {
            out.push('(');
            expr(lhs, out);
            out.push_str(if *negated {
                " !between ("
            } else {
                " between ("
            });
            expr(lo, out);
            out.push_str(" .. ");
            expr(hi, out);
            out.push_str("))");
        }
        ExprKind::HasAny {
            lhs,
            list: items,
            all,
        } => {
            out.push('(');
            expr(lhs, out);
            out.push_str(if *all { " has_all (" } else { " has_any (" });
            list(items, out);
            out.push_str("))");
        }
    }
}

fn sort_keys(keys: &[SortKey], out: &mut String) {
    for (k, key) in keys.iter().enumerate() {
        out.push_str(if k > 0 { ", " } else { " " });
        expr(&key.expr, out);
        out.push_str(if key.desc { " desc" } else { " asc" });
        match key.nulls_first {
            Some(true) => out.push_str(" nulls first"),
            Some(false) => out.push_str(" nulls last"),
            None => {}
        }
    }
}

fn names(list: &[(String, usize)], out: &mut String) {
    for (k, (n, _)) in list.iter().enumerate() {
        out.push_str(if k > 0 { ", " } else { " " });
        column_name(n, out);
    }
}

/// The base of `.member` or `[index]`: a negative literal is parenthesized, or the `-` would
/// apply to the whole access (`-1.5.a` is `-(1.5.a)`).
fn postfix_base(x: &Expr, out: &mut String) {
    let mut base = String::new();
    expr(x, &mut base);
    if base.starts_with('-') {
        out.push('(');
        out.push_str(&base);
        out.push(')');
    } else {
        out.push_str(&base);
    }
}

fn assigns(items: &[Assign], out: &mut String) {
    for (k, a) in items.iter().enumerate() {
        out.push_str(if k > 0 { ", " } else { " " });
        if let Some((n, _)) = &a.name {
            name(n, out);
            out.push_str(" = ");
        }
        expr(&a.expr, out);
    }
}

fn column_name(n: &str, out: &mut String) {
    // `project-away` patterns (`Device*`) are written as they were.
    if n.contains('*') {
        out.push_str(n);
    } else {
        name(n, out);
    }
}

fn operator(op: &Operator, out: &mut String) {
    match op {
        Operator::Where(e) => {
            out.push_str("where ");
            expr(e, out);
        }
        Operator::Extend(items) => {
            out.push_str("extend");
            assigns(items, out);
        }
        Operator::Project(items) => {
            out.push_str("project");
            assigns(items, out);
        }
        Operator::ProjectAway(names) => {
            out.push_str("project-away ");
            for (k, (n, _)) in names.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                column_name(n, out);
            }
        }
        Operator::ProjectRename(pairs) => {
            out.push_str("project-rename ");
            for (k, ((new, _), (old, _))) in pairs.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                name(new, out);
                out.push_str(" = ");
                name(old, out);
            }
        }
        Operator::Parse {
            kind,
            flags,
            source,
            pattern,
        } => {
            out.push_str("parse ");
            match kind {
                ParseKind::Simple => {}
                ParseKind::Regex => out.push_str("kind=regex "),
                ParseKind::Relaxed => out.push_str("kind=relaxed "),
            }
            if !flags.is_empty() {
                let _ = write!(out, "flags={flags} ");
            }
            expr(source, out);
            out.push_str(" with");
            for item in pattern {
                out.push(' ');
                match item {
                    PatternItem::Star => out.push('*'),
                    PatternItem::Text(t) => string(t, out),
                    PatternItem::Column { name: n, ty, .. } => {
                        name(n, out);
                        if let Some(t) = ty {
                            let _ = write!(out, ":{}", t.name());
                        }
                    }
                }
            }
        }
        Operator::Summarize { aggs, by } => {
            out.push_str("summarize");
            assigns(aggs, out);
            if !by.is_empty() {
                out.push_str(" by");
                assigns(by, out);
            }
        }
        Operator::Sort(keys) => {
            out.push_str("sort by");
            sort_keys(keys, out);
        }
        Operator::Top { count, by } => {
            out.push_str("top ");
            expr(count, out);
            out.push_str(" by");
            sort_keys(by, out);
        }
        Operator::Take(n) => {
            out.push_str("take ");
            expr(n, out);
        }
        Operator::Distinct(list) => {
            out.push_str("distinct");
            if list.is_empty() {
                out.push_str(" *");
            }
            names(list, out);
        }
        Operator::Count => out.push_str("count"),
        Operator::ProjectReorder(list) => {
            out.push_str("project-reorder");
            names(list, out);
        }
        Operator::MvExpand { items, limit } => {
            out.push_str("mv-expand");
            for (k, (a, ty)) in items.iter().enumerate() {
                assigns(std::slice::from_ref(a), out);
                if k + 1 < items.len() {
                    out.push(',');
                }
                if let Some(t) = ty {
                    let _ = write!(out, " to typeof({})", t.name());
                }
            }
            if let Some(n) = limit {
                out.push_str(" limit ");
                expr(n, out);
            }
        }
        Operator::Join { kind, right, on } => {
            let _ = write!(out, "join kind={} (", kind.name());
            pipeline(right, out);
            out.push_str(") on ");
            for (k, key) in on.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                out.push_str("$left.");
                name(&key.left.0, out);
                out.push_str(" == $right.");
                name(&key.right.0, out);
            }
        }
    }
}

fn pipeline(p: &Pipeline, out: &mut String) {
    match &p.source {
        Source::Input => out.push_str("source"),
        Source::Print(items) => {
            out.push_str("print");
            assigns(items, out);
        }
        Source::Datatable { columns, values } => {
            out.push_str("datatable(");
            for (k, (n, t)) in columns.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                name(n, out);
                let _ = write!(out, ":{}", t.name());
            }
            out.push_str(") [");
            list(values, out);
            out.push(']');
        }
        Source::Named(n) => name(n, out),
    }
    for (op, _) in &p.operators {
        out.push_str("\n| ");
        operator(op, out);
    }
}

/// The canonical text of a query.
pub(crate) fn to_kql(q: &Query) -> String {
    let mut out = String::new();
    for (n, _, l) in &q.lets {
        out.push_str("let ");
        name(n, &mut out);
        out.push_str(" = ");
        match l {
            Let::Scalar(e) => expr(e, &mut out),
            Let::Tabular(p) => pipeline(p, &mut out),
            Let::Function { params, body } => {
                out.push('(');
                for (k, (p, t)) in params.iter().enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    name(p, &mut out);
                    let _ = write!(out, ":{}", t.name());
                }
                out.push_str(") { ");
                expr(body, &mut out);
                out.push_str(" }");
            }
        }
        out.push_str(";\n");
    }
    pipeline(&q.pipeline, &mut out);
    out
}

fn strip_expr(e: &mut Expr) {
    e.pos = 0;
    match &mut e.kind {
        ExprKind::Lit(_) | ExprKind::Name(_) | ExprKind::TypeOf(_) => {}
        ExprKind::Neg(x) | ExprKind::Member(x, _) => strip_expr(x),
        ExprKind::Binary(_, a, b) | ExprKind::MatchesRegex(a, b) | ExprKind::Index(a, b) => {
            strip_expr(a);
            strip_expr(b);
        }
        ExprKind::Str { lhs, rhs, .. } => {
            strip_expr(lhs);
            strip_expr(rhs);
        }
        ExprKind::In { lhs, list, .. } => {
            strip_expr(lhs);
            list.iter_mut().for_each(strip_expr);
        }
        ExprKind::Call(_, args) => args.iter_mut().for_each(strip_expr),
        ExprKind::Between { lhs, lo, hi, .. } => {
            strip_expr(lhs);
            strip_expr(lo);
            strip_expr(hi);
        }
        ExprKind::HasAny { lhs, list, .. } => {
            strip_expr(lhs);
            list.iter_mut().for_each(strip_expr);
        }
    }
}

fn strip_assigns(items: &mut [Assign]) {
    for a in items {
        if let Some((_, p)) = &mut a.name {
            *p = 0;
        }
        strip_expr(&mut a.expr);
    }
}

/// The query with every position set to 0, so that two parses of the same query compare equal
/// whatever their spacing.
pub(crate) fn without_positions(mut q: Query) -> Query {
    for (_, p, l) in &mut q.lets {
        *p = 0;
        match l {
            Let::Scalar(e) | Let::Function { body: e, .. } => strip_expr(e),
            Let::Tabular(p) => strip_pipeline(p),
        }
    }
    strip_pipeline(&mut q.pipeline);
    q
}

fn strip_pipeline(p: &mut Pipeline) {
    p.source_pos = 0;
    match &mut p.source {
        Source::Input | Source::Named(_) => {}
        Source::Print(items) => strip_assigns(items),
        Source::Datatable { values, .. } => values.iter_mut().for_each(strip_expr),
    }
    for (op, pos) in &mut p.operators {
        *pos = 0;
        match op {
            Operator::Where(e) => strip_expr(e),
            Operator::Extend(items) | Operator::Project(items) => strip_assigns(items),
            Operator::ProjectAway(names) => names.iter_mut().for_each(|n| n.1 = 0),
            Operator::ProjectRename(pairs) => pairs.iter_mut().for_each(|(a, b)| {
                a.1 = 0;
                b.1 = 0;
            }),
            Operator::Parse {
                source, pattern, ..
            } => {
                strip_expr(source);
                for item in pattern {
                    if let PatternItem::Column { pos, .. } = item {
                        *pos = 0;
                    }
                }
            }
            Operator::Summarize { aggs, by } => {
                strip_assigns(aggs);
                strip_assigns(by);
            }
            Operator::Sort(keys) => keys.iter_mut().for_each(|k| strip_expr(&mut k.expr)),
            Operator::Top { count, by } => {
                strip_expr(count);
                by.iter_mut().for_each(|k| strip_expr(&mut k.expr));
            }
            Operator::Take(n) => strip_expr(n),
            Operator::Distinct(list) | Operator::ProjectReorder(list) => {
                list.iter_mut().for_each(|n| n.1 = 0);
            }
            Operator::Count => {}
            Operator::MvExpand { items, limit } => {
                for (a, _) in items.iter_mut() {
                    strip_assigns(std::slice::from_mut(a));
                }
                if let Some(n) = limit {
                    strip_expr(n);
                }
            }
            Operator::Join { right, on, .. } => {
                strip_pipeline(right);
                for k in on {
                    k.left.1 = 0;
                    k.right.1 = 0;
                }
            }
        }
    }
}
