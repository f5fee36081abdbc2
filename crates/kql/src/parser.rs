//! The KQL parser: nom combinators for the tokens, precedence climbing for expressions.
//!
//! Every parser takes the remaining input and returns it with its result; positions are byte
//! offsets into the whole query (`src.len() - rest.len()`). A committed failure (`nom::Err::Failure`)
//! carries the message that the user sees.

use std::cell::Cell;

use nom::IResult;
use nom::bytes::complete::{take_while, take_while1};
use nom::error::{ErrorKind as NomKind, ParseError};
use serde_json::Value as Json;

use crate::Dialect;
use crate::ast::*;
use crate::error::{Error, ErrorKind};
use crate::time;
use crate::value::{Type, parse_guid};

/// The parser's error: where it happened and, for committed failures, what went wrong.
#[derive(Debug)]
pub(crate) struct PErr<'a> {
    input: &'a str,
    kind: Option<ErrorKind>,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _: NomKind) -> Self {
        PErr { input, kind: None }
    }
    fn append(_: &'a str, _: NomKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        // Keep the error that got further.
        if other.input.len() <= self.input.len() {
            other
        } else {
            self
        }
    }
}

type R<'a, T> = IResult<&'a str, T, PErr<'a>>;

fn failure<T>(input: &str, kind: ErrorKind) -> R<'_, T> {
    Err(nom::Err::Failure(PErr {
        input,
        kind: Some(kind),
    }))
}

fn syntax<T>(input: &str, msg: impl Into<String>) -> R<'_, T> {
    failure(input, ErrorKind::Syntax(msg.into()))
}

fn backtrack<T>(input: &str) -> R<'_, T> {
    Err(nom::Err::Error(PErr { input, kind: None }))
}

/// Multi-row (or otherwise out-of-subset) tabular operators, refused by the transformation dialect.
const KNOWN_OPERATORS: &[&str] = &[
    "summarize",
    "join",
    "union",
    "take",
    "limit",
    "sort",
    "order",
    "top",
    "distinct",
    "count",
    "mv-expand",
    "mv-apply",
    "make-series",
    "lookup",
    "evaluate",
    "render",
    "sample",
    "sample-distinct",
    "top-nested",
    "top-hitters",
    "as",
    "consume",
    "facet",
    "fork",
    "getschema",
    "invoke",
    "range",
    "reduce",
    "scan",
    "serialize",
    "partition",
    "project-reorder",
    "project-keep",
    "externaldata",
    "find",
    "search",
    "macro-expand",
    "graph-match",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Skips whitespace and `//` comments.
fn ws(mut i: &str) -> &str {
    loop {
        let t = i.trim_start();
        if let Some(rest) = t.strip_prefix("//") {
            i = rest.find('\n').map_or("", |p| &rest[p..]);
        } else {
            return t;
        }
    }
}

fn ident(i: &str) -> R<'_, &str> {
    match i.chars().next() {
        Some(c) if is_ident_start(c) => take_while1(|c: char| is_ident_char(c) || c == '$')(i),
        _ => backtrack(i),
    }
}

/// A keyword: the word, not followed by an identifier character.
fn keyword<'a>(i: &'a str, kw: &str) -> Option<&'a str> {
    let rest = i.strip_prefix(kw)?;
    match rest.chars().next() {
        Some(c) if is_ident_char(c) => None,
        _ => Some(rest),
    }
}

/// Strings in all of Kusto's forms: `'..'`, `".."`, `@'..'` (verbatim), `h'..'`/`H@".."`
/// (obfuscated), and multi-line ```` ```..``` ````.
fn string_lit(i: &str) -> R<'_, String> {
    let (i, _) = take_while(|c| c == 'h' || c == 'H')(i).and_then(|(rest, h): (&str, &str)| {
        if h.len() <= 1 && (rest.starts_with(['\'', '"', '@']) || rest.starts_with("```")) {
            Ok((rest, h))
        } else {
            backtrack(i)
        }
    })?;
    if let Some(rest) = i.strip_prefix("```") {
        return match rest.find("```") {
            Some(p) => Ok((&rest[p + 3..], rest[..p].to_string())),
            None => syntax(i, "unterminated ``` string"),
        };
    }
    let (i, verbatim) = match i.strip_prefix('@') {
        Some(r) => (r, true),
        None => (i, false),
    };
    let Some(q) = i.chars().next().filter(|c| *c == '\'' || *c == '"') else {
        return backtrack(i);
    };
    let start = i;
    let mut out = String::new();
    let mut chars = i[1..].char_indices();
    while let Some((k, c)) = chars.next() {
        if c == q {
            if verbatim && i[1 + k + 1..].starts_with(q) {
                out.push(q);
                chars.next();
                continue;
            }
            return Ok((&i[1 + k + 1..], out));
        }
        if c == '\n' && !verbatim {
            break;
        }
        if c == '\\' && !verbatim {
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                'u' | 'x' | 'U' => {
                    let len = match e {
                        'u' => 4,
                        'U' => 8,
                        _ => 2,
                    };
                    let rest = chars.as_str();
                    let hex = rest
                        .get(..len)
                        .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
                    match hex
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .and_then(char::from_u32)
                    {
                        Some(ch) => {
                            out.push(ch);
                            for _ in 0..len {
                                chars.next();
                            }
                        }
                        None => return syntax(&i[1 + k..], "bad \\u escape in string literal"),
                    }
                }
                other => out.push(other),
            }
            continue;
        }
        out.push(c);
    }
    syntax(start, "unterminated string literal")
}

fn type_name(i: &str) -> R<'_, Type> {
    let (rest, name) = ident(i)?;
    match Type::from_name(name) {
        Some(t) => Ok((rest, t)),
        None => syntax(i, format!("unknown type '{name}'")),
    }
}

/// The text between the parentheses of `datetime(...)`, `guid(...)`, `timespan(...)`.
fn raw_parens(i: &str) -> R<'_, &str> {
    let Some(body) = i.strip_prefix('(') else {
        return backtrack(i);
    };
    match body.find(')') {
        Some(p) => Ok((&body[p + 1..], body[..p].trim())),
        None => syntax(i, "missing ')'"),
    }
}

/// The text inside one pair of matching double or single quotes, else the text itself.
fn unquoted(body: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = body.strip_prefix(q).and_then(|b| b.strip_suffix(q))
            && !inner.contains(q)
        {
            return inner.trim();
        }
    }
    body
}

/// A number, possibly followed by a timespan unit (`10`, `0xf`, `1.5`, `1e3`, `2d`, `100ms`).
fn number(i: &str) -> R<'_, Lit> {
    if let Some(hex) = i.strip_prefix("0x").or_else(|| i.strip_prefix("0X")) {
        let (rest, digits) = take_while1(|c: char| c.is_ascii_hexdigit())(hex)?;
        return match i64::from_str_radix(digits, 16) {
            Ok(v) => Ok((rest, Lit::Long(v))),
            Err(_) => failure(i, ErrorKind::BadLiteral("hex literal out of range".into())),
        };
    }
    let (mut rest, _) = take_while1(|c: char| c.is_ascii_digit())(i)?;
    let mut real = false;
    if let Some(r) = rest.strip_prefix('.')
        && r.starts_with(|c: char| c.is_ascii_digit())
    {
        let (r, _) = take_while(|c: char| c.is_ascii_digit())(r)?;
        rest = r;
        real = true;
    }
    if let Some(r) = rest.strip_prefix(['e', 'E']) {
        let r2 = r.strip_prefix(['+', '-']).unwrap_or(r);
        if r2.starts_with(|c: char| c.is_ascii_digit()) {
            let (r3, _) = take_while(|c: char| c.is_ascii_digit())(r2)?;
            rest = r3;
            real = true;
        }
    }
    let text = &i[..i.len() - rest.len()];
    // A unit directly after the number makes a timespan.
    if let Ok((after, unit)) = ident(rest) {
        return match time::unit_ticks(unit) {
            Some(ticks) => {
                let v: f64 = text.parse().unwrap_or(0.0);
                let t = if real {
                    (v * ticks as f64).round() as i64
                } else {
                    match text.parse::<i64>() {
                        Ok(n) => n.saturating_mul(ticks),
                        // Not 0: a count beyond a long is out of range, as in Kusto.
                        Err(_) => {
                            return failure(
                                i,
                                ErrorKind::BadLiteral(format!(
                                    "timespan '{text}{unit}' out of range"
                                )),
                            );
                        }
                    }
                };
                Ok((after, Lit::Timespan(t)))
            }
            None => syntax(rest, format!("unknown timespan unit '{unit}'")),
        };
    }
    if !real && let Ok(v) = text.parse::<i64>() {
        return Ok((rest, Lit::Long(v)));
    }
    match text.parse::<f64>() {
        Ok(v) => Ok((rest, Lit::Real(v))),
        Err(_) => failure(i, ErrorKind::BadLiteral(format!("bad number '{text}'"))),
    }
}

/// A timespan literal body: `null`, `2` (days), `15 seconds`, `1.5h`, `0.12:34:56.7`.
fn timespan_body(text: &str) -> Option<Lit> {
    if text == "null" {
        return Some(Lit::Null(Some(Type::Timespan)));
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (neg, body) = match compact.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, compact.as_str()),
    };
    if let Ok((rest, lit)) = number(body)
        && rest.is_empty()
    {
        let t = match lit {
            Lit::Timespan(t) => t,
            Lit::Long(d) => d.checked_mul(time::TICKS_PER_DAY)?,
            Lit::Real(d) => (d * time::TICKS_PER_DAY as f64) as i64,
            _ => return None,
        };
        return Some(Lit::Timespan(if neg { -t } else { t }));
    }
    time::parse_timespan(text).map(Lit::Timespan)
}

/// A dynamic literal: JSON with single-quoted strings allowed, plus typed literals.
fn dyn_value(i: &str, depth: usize) -> R<'_, Json> {
    let i = ws(i);
    if depth > MAX_DEPTH {
        return syntax(
            i,
            format!("dynamic literal nested more than {MAX_DEPTH} levels deep"),
        );
    }
    if let Some(mut r) = i.strip_prefix('[') {
        let mut items = Vec::new();
        loop {
            r = ws(r);
            if let Some(r2) = r.strip_prefix(']') {
                return Ok((r2, Json::Array(items)));
            }
            let (r2, v) = dyn_value(r, depth + 1)?;
            items.push(v);
            r = ws(r2);
            if let Some(r2) = r.strip_prefix(',') {
                r = r2;
            } else if !r.starts_with(']') {
                return syntax(r, "expected ',' or ']' in dynamic array");
            }
        }
    }
    if let Some(mut r) = i.strip_prefix('{') {
        let mut map = serde_json::Map::new();
        loop {
            r = ws(r);
            if let Some(r2) = r.strip_prefix('}') {
                return Ok((r2, Json::Object(map)));
            }
            let Ok((r2, key)) = string_lit(r) else {
                return syntax(r, "expected a quoted key in dynamic object");
            };
            let r2 = ws(r2);
            let Some(r2) = r2.strip_prefix(':') else {
                return syntax(r2, "expected ':' in dynamic object");
            };
            let (r2, v) = dyn_value(r2, depth + 1)?;
            map.insert(key, v);
            r = ws(r2);
            if let Some(r2) = r.strip_prefix(',') {
                r = r2;
            } else if !r.starts_with('}') {
                return syntax(r, "expected ',' or '}' in dynamic object");
            }
        }
    }
    if let Ok((r, s)) = string_lit(i) {
        return Ok((r, Json::String(s)));
    }
    let (neg, body) = match i.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, i),
    };
    if body.starts_with(|c: char| c.is_ascii_digit()) {
        let (r, lit) = number(body)?;
        let j = match lit {
            Lit::Long(v) => Json::from(if neg { -v } else { v }),
            Lit::Real(v) => serde_json::Number::from_f64(if neg { -v } else { v })
                .map_or(Json::Null, Json::Number),
            Lit::Timespan(t) => crate::value::Value::Timespan(if neg { -t } else { t }).to_json(),
            _ => Json::Null,
        };
        return Ok((r, j));
    }
    if let Some(r) = keyword(i, "null") {
        return Ok((r, Json::Null));
    }
    if let Some(r) = keyword(i, "true") {
        return Ok((r, Json::Bool(true)));
    }
    if let Some(r) = keyword(i, "false") {
        return Ok((r, Json::Bool(false)));
    }
    if let Ok((
        r,
        Expr {
            kind: ExprKind::Lit(lit),
            ..
        },
    )) = Parser::typed_literal_standalone(i)
    {
        return Ok((r, crate::compile::lit_value(&lit).to_json()));
    }
    syntax(i, "expected a value in dynamic literal")
}

/// How deeply expressions (and dynamic literals) may nest: far beyond real queries, well
/// within the stack.
const MAX_DEPTH: usize = 64;

pub(crate) struct Parser<'s> {
    src: &'s str,
    dialect: Dialect,
    depth: Cell<usize>,
}

impl<'s> Parser<'s> {
    fn pos(&self, i: &str) -> usize {
        self.src.len() - i.len()
    }

    /// A name: an identifier or `['quoted']` / `["quoted"]`.
    fn name<'a>(&self, i: &'a str) -> R<'a, String> {
        if let Some(r) = i.strip_prefix('[') {
            let r = ws(r);
            if r.starts_with(['\'', '"']) {
                let (r, s) = string_lit(r)?;
                let r = ws(r);
                return match r.strip_prefix(']') {
                    Some(r) => Ok((r, s)),
                    None => syntax(r, "expected ']' after quoted name"),
                };
            }
            return backtrack(i);
        }
        ident(i).map(|(r, s)| (r, s.to_string()))
    }

    fn expect<'a>(&self, i: &'a str, t: &str) -> R<'a, ()> {
        let i = ws(i);
        match i.strip_prefix(t) {
            Some(r) => Ok((r, ())),
            None => syntax(i, format!("expected '{t}'")),
        }
    }

    pub(crate) fn query(&self) -> Result<Query, Error> {
        let r = self.query_inner(self.src);
        match r {
            Ok((rest, q)) => {
                let rest = ws(rest);
                if rest.is_empty() {
                    Ok(q)
                } else {
                    Err(Error::new(
                        ErrorKind::Syntax("unexpected text after the query".into()),
                        self.src,
                        self.pos(rest),
                    ))
                }
            }
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                let kind = e
                    .kind
                    .unwrap_or_else(|| ErrorKind::Syntax("unexpected input".into()));
                Err(Error::new(kind, self.src, self.pos(e.input)))
            }
            Err(nom::Err::Incomplete(_)) => Err(Error::new(
                ErrorKind::Syntax("incomplete query".into()),
                self.src,
                self.src.len(),
            )),
        }
    }

    fn query_inner<'a>(&self, i: &'a str) -> R<'a, Query>
    where
        's: 'a,
    {
        let mut i = ws(i);
        let mut lets: Vec<(String, usize, Let)> = Vec::new();
        while let Some(r) = keyword(i, "let") {
            let r = ws(r);
            let name_pos = self.pos(r);
            let Ok((r, name)) = self.name(r) else {
                return syntax(r, "expected a name after 'let'");
            };
            let (r, _) = self.expect(r, "=")?;
            let r = ws(r);
            if keyword(r, "view").is_some() {
                return syntax(r, "views are not supported in transformations");
            }
            let materialized = keyword(r, "materialize")
                .map(ws)
                .and_then(|m| m.strip_prefix('('))
                .filter(|_| self.dialect == Dialect::Query);
            let (r, value) = if let Some(m) = materialized {
                // `materialize(T)` caches a result in Kusto; here it is the expression itself.
                let (r, p) = self.pipeline(m)?;
                let (r, _) = self.expect(r, ")")?;
                (r, Let::Tabular(p))
            } else if self.tabular_body(r, &lets) {
                let (r, p) = self.pipeline(r)?;
                (r, Let::Tabular(p))
            } else {
                match self.function_def(r) {
                    Ok(v) => v,
                    Err(nom::Err::Error(_)) => {
                        let (r, e) = self.expr(r)?;
                        (r, Let::Scalar(e))
                    }
                    Err(e) => return Err(e),
                }
            };
            let (r, _) = self.expect(r, ";")?;
            lets.push((name, name_pos, value));
            i = ws(r);
        }
        let (i, pipeline) = self.pipeline(i)?;
        let i = ws(i);
        let i = i.strip_prefix(';').unwrap_or(i);
        Ok((i, Query { lets, pipeline }))
    }

    /// Whether a `let`'s body is a tabular expression: it starts with `source`, `print` or
    /// `datatable`, or with a name followed by `|`, or is the name of an earlier tabular `let`
    /// (an alias). A scalar expression never has a `|` after a name.
    fn tabular_body(&self, i: &str, lets: &[(String, usize, Let)]) -> bool {
        if ["source", "print", "datatable"]
            .iter()
            .any(|k| keyword(i, k).is_some())
        {
            return true;
        }
        let Ok((r, name)) = self.name(i) else {
            return false;
        };
        let r = ws(r);
        (r.starts_with('|') && !r.starts_with("||"))
            || ((r.starts_with(';') || r.is_empty())
                && lets
                    .iter()
                    .rev()
                    .find(|l| l.0 == name)
                    .is_some_and(|l| matches!(l.2, Let::Tabular(_))))
    }

    /// `(a:long, b:string) { body }`; backtracks when the text is not a function definition.
    fn function_def<'a>(&self, i: &'a str) -> R<'a, Let>
    where
        's: 'a,
    {
        let Some(mut r) = i.strip_prefix('(') else {
            return backtrack(i);
        };
        let mut params = Vec::new();
        loop {
            r = ws(r);
            if let Some(r2) = r.strip_prefix(')') {
                r = r2;
                break;
            }
            let (r2, name) = self.name(r).map_err(|_| {
                nom::Err::Error(PErr {
                    input: i,
                    kind: None,
                })
            })?;
            let r2 = ws(r2);
            let Some(r2) = r2.strip_prefix(':') else {
                return backtrack(i);
            };
            let r2 = ws(r2);
            if r2.starts_with('(') {
                return syntax(
                    r2,
                    "tabular function parameters are not supported in transformations",
                );
            }
            let (r2, ty) = type_name(r2)?;
            params.push((name, ty));
            r = ws(r2);
            if let Some(r2) = r.strip_prefix(',') {
                r = r2;
            } else if !r.starts_with(')') {
                return backtrack(i);
            }
        }
        let r = ws(r);
        let Some(r) = r.strip_prefix('{') else {
            return backtrack(i);
        };
        let r = ws(r);
        if let Some(t) = ["let", "source", "print", "datatable"]
            .iter()
            .find(|k| keyword(r, k).is_some())
        {
            return syntax(
                r,
                format!("only scalar functions are supported ('{t}' in a function body)"),
            );
        }
        let (r, body) = self.expr(r)?;
        let (r, _) = self.expect(r, "}")?;
        Ok((r, Let::Function { params, body }))
    }

    fn pipeline<'a>(&self, i: &'a str) -> R<'a, Pipeline>
    where
        's: 'a,
    {
        let i = ws(i);
        let source_pos = self.pos(i);
        let (mut i, source) = if let Some(r) = keyword(i, "source") {
            (r, Source::Input)
        } else if let Some(r) = keyword(i, "print") {
            let (r, items) = self.assigns(r)?;
            (r, Source::Print(items))
        } else if let Some(r) = keyword(i, "datatable") {
            self.datatable(r)?
        } else if let Ok((r, name)) = self.name(i) {
            (r, Source::Named(name))
        } else {
            return syntax(
                i,
                "a transformation starts with 'source', 'print', 'datatable' or the name of a tabular let",
            );
        };
        let mut operators = Vec::new();
        loop {
            let r = ws(i);
            let Some(r) = r.strip_prefix('|') else { break };
            let r = ws(r);
            let pos = self.pos(r);
            let (r, op) = self.operator(r)?;
            operators.push((op, pos));
            i = r;
        }
        Ok((
            i,
            Pipeline {
                source,
                source_pos,
                operators,
            },
        ))
    }

    fn datatable<'a>(&self, i: &'a str) -> R<'a, Source>
    where
        's: 'a,
    {
        let (mut r, _) = self.expect(i, "(")?;
        let mut columns = Vec::new();
        loop {
            r = ws(r);
            let Ok((r2, name)) = self.name(r) else {
                return syntax(r, "expected a column name in datatable");
            };
            let (r2, _) = self.expect(r2, ":")?;
            let (r2, ty) = type_name(ws(r2))?;
            columns.push((name, ty));
            r = ws(r2);
            if let Some(r2) = r.strip_prefix(',') {
                r = r2;
            } else {
                break;
            }
        }
        let (r, _) = self.expect(r, ")")?;
        let (mut r, _) = self.expect(r, "[")?;
        let mut values = Vec::new();
        loop {
            r = ws(r);
            if let Some(r2) = r.strip_prefix(']') {
                r = r2;
                break;
            }
            let (r2, e) = self.expr(r)?;
            values.push(e);
            r = ws(r2);
            if let Some(r2) = r.strip_prefix(',') {
                r = r2;
            } else if !r.starts_with(']') {
                return syntax(r, "expected ',' or ']' in datatable values");
            }
        }
        Ok((r, Source::Datatable { columns, values }))
    }

    fn operator_name<'a>(&self, i: &'a str) -> R<'a, &'a str> {
        let (mut r, _) = ident(i)?;
        while let Some(r2) = r.strip_prefix('-')
            && let Ok((r3, _)) = ident(r2)
        {
            r = r3;
        }
        Ok((r, &i[..i.len() - r.len()]))
    }

    fn operator<'a>(&self, i: &'a str) -> R<'a, Operator>
    where
        's: 'a,
    {
        let Ok((r, name)) = self.operator_name(i) else {
            return syntax(i, "expected a tabular operator after '|'");
        };
        match name {
            "where" | "filter" => {
                let (r, e) = self.expr(r)?;
                Ok((r, Operator::Where(e)))
            }
            "extend" => {
                let (r, a) = self.assigns(r)?;
                Ok((r, Operator::Extend(a)))
            }
            "project" => {
                let (r, a) = self.assigns(r)?;
                Ok((r, Operator::Project(a)))
            }
            "project-away" => {
                let (r, names) = self.name_list(r, true)?;
                Ok((r, Operator::ProjectAway(names)))
            }
            "project-rename" => {
                let mut r = r;
                let mut pairs = Vec::new();
                loop {
                    r = ws(r);
                    let (r2, new) = self.name_list_item(r, false)?;
                    let (r2, _) = self.expect(r2, "=")?;
                    let r2 = ws(r2);
                    let (r2, old) = self.name_list_item(r2, false)?;
                    pairs.push((new, old));
                    r = ws(r2);
                    match r.strip_prefix(',') {
                        Some(r2) => r = r2,
                        None => break,
                    }
                }
                Ok((r, Operator::ProjectRename(pairs)))
            }
            "parse" => self.parse_op(r),
            _ if self.dialect == Dialect::Query => self.query_operator(i, name, r),
            _ => {
                let display = if name == "order" || name == "sort" {
                    let after = ws(r);
                    if keyword(after, "by").is_some() {
                        format!("{name} by")
                    } else {
                        name.to_string()
                    }
                } else {
                    name.to_string()
                };
                if KNOWN_OPERATORS.contains(&name) || name == "print" {
                    // The seam for multi-row operators: a dialect that allows them parses them
                    // here; the transformation dialect refuses them all, as Azure does.
                    return failure(i, ErrorKind::UnsupportedOperator { operator: display });
                }
                syntax(i, format!("unknown tabular operator '{name}'"))
            }
        }
    }

    /// The multi-row operators of the query dialect; `i` is at the operator's name, `r` after it.
    fn query_operator<'a>(&self, i: &'a str, name: &str, r: &'a str) -> R<'a, Operator>
    where
        's: 'a,
    {
        match name {
            "summarize" => {
                let r = ws(r);
                let (r, aggs) = if keyword(r, "by").is_some() {
                    (r, Vec::new())
                } else {
                    self.assigns(r)?
                };
                let r2 = ws(r);
                let (r, by) = match keyword(r2, "by") {
                    Some(r3) => self.assigns(r3)?,
                    None => (r, Vec::new()),
                };
                if aggs.is_empty() && by.is_empty() {
                    return syntax(r, "summarize needs an aggregate or a 'by' clause");
                }
                Ok((r, Operator::Summarize { aggs, by }))
            }
            "sort" | "order" => {
                let r2 = ws(r);
                let Some(r2) = keyword(r2, "by") else {
                    return syntax(r2, format!("expected 'by' after '{name}'"));
                };
                let (r, keys) = self.sort_keys(r2)?;
                Ok((r, Operator::Sort(keys)))
            }
            "top" => {
                let (r, count) = self.expr(r)?;
                let r2 = ws(r);
                let Some(r2) = keyword(r2, "by") else {
                    return syntax(r2, "expected 'by' in top");
                };
                let (r, by) = self.sort_keys(r2)?;
                Ok((r, Operator::Top { count, by }))
            }
            "take" | "limit" => {
                let (r, n) = self.expr(r)?;
                Ok((r, Operator::Take(n)))
            }
            "distinct" => {
                let r2 = ws(r);
                if let Some(r3) = r2.strip_prefix('*') {
                    return Ok((r3, Operator::Distinct(Vec::new())));
                }
                let (r, names) = self.name_list(r, false)?;
                Ok((r, Operator::Distinct(names)))
            }
            "count" => Ok((r, Operator::Count)),
            "project-reorder" => {
                let (r, names) = self.name_list(r, true)?;
                Ok((r, Operator::ProjectReorder(names)))
            }
            "mv-expand" | "mvexpand" => self.mv_expand(r),
            "join" => self.join(r),
            _ => {
                let display =
                    if (name == "order" || name == "sort") && keyword(ws(r), "by").is_some() {
                        format!("{name} by")
                    } else {
                        name.to_string()
                    };
                if KNOWN_OPERATORS.contains(&name) || name == "print" {
                    return failure(
                        i,
                        ErrorKind::UnsupportedInQuery(format!("the '{display}' operator")),
                    );
                }
                syntax(i, format!("unknown tabular operator '{name}'"))
            }
        }
    }

    fn sort_keys<'a>(&self, i: &'a str) -> R<'a, Vec<SortKey>>
    where
        's: 'a,
    {
        let mut r = i;
        let mut keys = Vec::new();
        loop {
            let (r2, expr) = self.expr(r)?;
            let mut r2 = ws(r2);
            // Kusto sorts descending unless told otherwise.
            let mut desc = true;
            if let Some(r3) = keyword(r2, "asc") {
                desc = false;
                r2 = ws(r3);
            } else if let Some(r3) = keyword(r2, "desc") {
                r2 = ws(r3);
            }
            let mut nulls_first = None;
            if let Some(r3) = keyword(r2, "nulls") {
                let r3 = ws(r3);
                if let Some(r4) = keyword(r3, "first") {
                    nulls_first = Some(true);
                    r2 = r4;
                } else if let Some(r4) = keyword(r3, "last") {
                    nulls_first = Some(false);
                    r2 = r4;
                } else {
                    return syntax(r3, "expected 'first' or 'last' after 'nulls'");
                }
            }
            keys.push(SortKey {
                expr,
                desc,
                nulls_first,
            });
            let r3 = ws(r2);
            match r3.strip_prefix(',') {
                Some(r4) => r = r4,
                None => return Ok((r2, keys)),
            }
        }
    }

    fn mv_expand<'a>(&self, i: &'a str) -> R<'a, Operator>
    where
        's: 'a,
    {
        let mut r = ws(i);
        // `bagexpansion=array|bag` and `with_itemindex=...` are not supported.
        for k in ["bagexpansion", "with_itemindex", "kind"] {
            if keyword(r, k).is_some() {
                return failure(
                    r,
                    ErrorKind::UnsupportedInQuery(format!("mv-expand's {k}=")),
                );
            }
        }
        let mut items = Vec::new();
        loop {
            r = ws(r);
            let (r2, mut a) = self.assigns_one(r)?;
            let mut r2 = ws(r2);
            let mut ty = None;
            if let Some(r3) = keyword(r2, "to") {
                let r3 = ws(r3);
                let Some(r3) = keyword(r3, "typeof") else {
                    return syntax(r3, "expected typeof(...) after 'to'");
                };
                let (r3, _) = self.expect(r3, "(")?;
                let (r3, t) = type_name(ws(r3))?;
                let (r3, _) = self.expect(r3, ")")?;
                ty = Some(t);
                r2 = ws(r3);
            }
            if a.name.is_none()
                && let ExprKind::Name(n) = &a.expr.kind
            {
                a.name = Some((n.clone(), a.expr.pos));
            }
            items.push((a, ty));
            match r2.strip_prefix(',') {
                Some(r3) => r = r3,
                None => {
                    r = r2;
                    break;
                }
            }
        }
        let r2 = ws(r);
        if let Some(r3) = keyword(r2, "limit") {
            let (r3, n) = self.expr(r3)?;
            return Ok((
                r3,
                Operator::MvExpand {
                    items,
                    limit: Some(n),
                },
            ));
        }
        Ok((r, Operator::MvExpand { items, limit: None }))
    }

    /// One `name = expr` or `expr`.
    fn assigns_one<'a>(&self, r: &'a str) -> R<'a, Assign>
    where
        's: 'a,
    {
        let pos = self.pos(r);
        let named = self.name(r).ok().and_then(|(r2, n)| {
            let r2 = ws(r2);
            (r2.starts_with('=') && !r2.starts_with("==") && !r2.starts_with("=~"))
                .then(|| (&r2[1..], n))
        });
        let (r2, name) = match named {
            Some((r2, n)) => (r2, Some((n, pos))),
            None => (r, None),
        };
        let (r2, expr) = self.expr(r2)?;
        Ok((r2, Assign { name, expr }))
    }

    fn join<'a>(&self, i: &'a str) -> R<'a, Operator>
    where
        's: 'a,
    {
        let mut r = ws(i);
        let mut kind = JoinKind::InnerUnique;
        loop {
            if let Some(r2) = keyword(r, "kind") {
                let (r2, _) = self.expect(r2, "=")?;
                let r2 = ws(r2);
                let (r3, k) = ident(r2).or_else(|_| syntax(r2, "expected a join kind"))?;
                kind = match k {
                    "innerunique" => JoinKind::InnerUnique,
                    "inner" => JoinKind::Inner,
                    "leftouter" => JoinKind::LeftOuter,
                    "leftanti" | "anti" | "leftantisemi" => JoinKind::LeftAnti,
                    "leftsemi" => JoinKind::LeftSemi,
                    "rightanti" | "rightantisemi" => JoinKind::RightAnti,
                    "rightsemi" => JoinKind::RightSemi,
                    _ => {
                        return failure(
                            r2,
                            ErrorKind::UnsupportedInQuery(format!("join kind={k}")),
                        );
                    }
                };
                r = ws(r3);
            } else if r.starts_with("hint.") {
                // Hints change how Kusto distributes a join, not its result.
                let (r2, _) = take_while1(|c: char| is_ident_char(c) || c == '.')(r)?;
                let (r2, _) = self.expect(r2, "=")?;
                let r2 = ws(r2);
                let (r2, _) = take_while1(|c: char| is_ident_char(c) || c == '.')(r2)?;
                r = ws(r2);
            } else {
                break;
            }
        }
        let (r, right) = if let Some(r2) = r.strip_prefix('(') {
            let depth = self.depth.get() + 1;
            if depth > MAX_DEPTH {
                return syntax(r, format!("joins nested more than {MAX_DEPTH} levels deep"));
            }
            self.depth.set(depth);
            let parsed = self.pipeline(r2);
            self.depth.set(depth - 1);
            let (r2, p) = parsed?;
            let (r2, _) = self.expect(r2, ")")?;
            (r2, p)
        } else {
            let source_pos = self.pos(r);
            let Ok((r2, name)) = self.name(r) else {
                return syntax(r, "expected a table or '(' after join");
            };
            (
                r2,
                Pipeline {
                    source: Source::Named(name),
                    source_pos,
                    operators: Vec::new(),
                },
            )
        };
        let r = ws(r);
        let Some(mut r) = keyword(r, "on") else {
            return syntax(r, "expected 'on' in join");
        };
        let mut on = Vec::new();
        loop {
            r = ws(r);
            let (r2, key) = self.join_key(r)?;
            on.push(key);
            let r3 = ws(r2);
            match r3.strip_prefix(',') {
                Some(r4) => r = r4,
                None => {
                    r = r2;
                    break;
                }
            }
        }
        Ok((
            r,
            Operator::Join {
                kind,
                right: Box::new(right),
                on,
            },
        ))
    }

    fn join_key<'a>(&self, i: &'a str) -> R<'a, JoinKey> {
        let side = |i: &'a str| -> R<'a, (bool, (String, usize))> {
            let (r, left) = if let Some(r) = i.strip_prefix("$left") {
                (r, true)
            } else if let Some(r) = i.strip_prefix("$right") {
                (r, false)
            } else {
                return backtrack(i);
            };
            let (r, _) = self.expect(r, ".")?;
            let r = ws(r);
            let pos = self.pos(r);
            let Ok((r, n)) = self.name(r) else {
                return syntax(r, "expected a column name");
            };
            Ok((r, (left, (n, pos))))
        };
        if i.starts_with('$') {
            let (r, (l1, a)) = side(i)?;
            let (r, _) = self.expect(r, "==")?;
            let r = ws(r);
            let (r, (l2, b)) = side(r).or_else(|_| syntax(r, "expected $left.X or $right.X"))?;
            if l1 == l2 {
                return syntax(i, "a join key compares a $left column with a $right one");
            }
            let (left, right) = if l1 { (a, b) } else { (b, a) };
            return Ok((r, JoinKey { left, right }));
        }
        let (r, n) = self.name_list_item(i, false)?;
        Ok((
            r,
            JoinKey {
                left: n.clone(),
                right: n,
            },
        ))
    }

    fn name_list_item<'a>(&self, i: &'a str, wildcard: bool) -> R<'a, (String, usize)> {
        let pos = self.pos(i);
        if wildcard && i.starts_with(|c: char| is_ident_char(c) || c == '*') {
            let (r, n) = take_while1(|c: char| is_ident_char(c) || c == '*')(i)?;
            return Ok((r, (n.to_string(), pos)));
        }
        match self.name(i) {
            Ok((r, n)) => Ok((r, (n, pos))),
            Err(_) => syntax(i, "expected a column name"),
        }
    }

    fn name_list<'a>(&self, i: &'a str, wildcard: bool) -> R<'a, Vec<(String, usize)>> {
        let mut r = i;
        let mut names = Vec::new();
        loop {
            r = ws(r);
            let (r2, n) = self.name_list_item(r, wildcard)?;
            names.push(n);
            r = ws(r2);
            match r.strip_prefix(',') {
                Some(r2) => r = r2,
                None => return Ok((r, names)),
            }
        }
    }

    fn parse_op<'a>(&self, i: &'a str) -> R<'a, Operator>
    where
        's: 'a,
    {
        let mut r = ws(i);
        let mut kind = ParseKind::Simple;
        let mut flags = String::new();
        loop {
            if let Some(r2) = keyword(r, "kind") {
                let (r2, _) = self.expect(r2, "=")?;
                let r2 = ws(r2);
                let (r3, k) =
                    ident(r2).or_else(|_| syntax(r2, "expected simple, regex or relaxed"))?;
                kind = match k {
                    "simple" => ParseKind::Simple,
                    "regex" => ParseKind::Regex,
                    "relaxed" => ParseKind::Relaxed,
                    _ => {
                        return syntax(
                            r2,
                            format!("unknown parse kind '{k}' (simple, regex or relaxed)"),
                        );
                    }
                };
                r = ws(r3);
            } else if let Some(r2) = keyword(r, "flags") {
                let (r2, _) = self.expect(r2, "=")?;
                let r2 = ws(r2);
                let (r3, f) = take_while1(|c: char| c.is_ascii_alphabetic())(r2)
                    .or_else(|_: nom::Err<PErr<'a>>| syntax(r2, "expected regex flags"))?;
                flags = f.to_string();
                r = ws(r3);
            } else {
                break;
            }
        }
        let (r, source) = self.expr(r)?;
        let r = ws(r);
        let Some(mut r) = keyword(r, "with") else {
            return syntax(r, "expected 'with' in parse");
        };
        let mut pattern = Vec::new();
        loop {
            r = ws(r);
            if r.is_empty() || r.starts_with(['|', ';', ')']) {
                break;
            }
            if let Some(r2) = r.strip_prefix('*') {
                pattern.push(PatternItem::Star);
                r = r2;
            } else if let Ok((r2, s)) = string_lit(r) {
                pattern.push(PatternItem::Text(s));
                r = r2;
            } else if let Ok((r2, name)) = self.name(r) {
                let pos = self.pos(r);
                let r2 = ws(r2);
                let (r2, ty) = match r2.strip_prefix(':') {
                    Some(r3) => {
                        let (r3, t) = type_name(ws(r3))?;
                        (r3, Some(t))
                    }
                    None => (r2, None),
                };
                pattern.push(PatternItem::Column { name, ty, pos });
                r = r2;
            } else {
                return syntax(
                    r,
                    "expected '*', a string or a column name in the parse pattern",
                );
            }
            r = ws(r);
            if let Some(r2) = r.strip_prefix(',') {
                r = r2;
            }
        }
        if pattern.is_empty() {
            return syntax(r, "empty parse pattern");
        }
        Ok((
            r,
            Operator::Parse {
                kind,
                flags,
                source,
                pattern,
            },
        ))
    }

    fn assigns<'a>(&self, i: &'a str) -> R<'a, Vec<Assign>>
    where
        's: 'a,
    {
        let mut r = i;
        let mut items = Vec::new();
        loop {
            r = ws(r);
            let pos = self.pos(r);
            // `name = expr` (but not `name == expr`).
            let named = self.name(r).ok().and_then(|(r2, n)| {
                let r2 = ws(r2);
                (r2.starts_with('=') && !r2.starts_with("==") && !r2.starts_with("=~"))
                    .then(|| (&r2[1..], n))
            });
            let (r2, name) = match named {
                Some((r2, n)) => (r2, Some((n, pos))),
                None => (r, None),
            };
            let (r2, expr) = self.expr(r2)?;
            items.push(Assign { name, expr });
            r = ws(r2);
            match r.strip_prefix(',') {
                Some(r2) => r = r2,
                None => return Ok((r, items)),
            }
        }
    }

    pub(crate) fn expr<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        self.or_expr(ws(i))
    }

    fn or_expr<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let (mut r, mut lhs) = self.and_expr(i)?;
        loop {
            let r1 = ws(r);
            let Some(r2) = keyword(r1, "or") else {
                return Ok((r, lhs));
            };
            let (r3, rhs) = self.and_expr(ws(r2))?;
            let pos = lhs.pos;
            lhs = Expr {
                kind: ExprKind::Binary(BinOp::Or, Box::new(lhs), Box::new(rhs)),
                pos,
            };
            r = r3;
        }
    }

    fn and_expr<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let (mut r, mut lhs) = self.cmp_expr(i)?;
        loop {
            let r1 = ws(r);
            let Some(r2) = keyword(r1, "and") else {
                return Ok((r, lhs));
            };
            let (r3, rhs) = self.cmp_expr(ws(r2))?;
            let pos = lhs.pos;
            lhs = Expr {
                kind: ExprKind::Binary(BinOp::And, Box::new(lhs), Box::new(rhs)),
                pos,
            };
            r = r3;
        }
    }

    fn cmp_expr<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let (mut r, mut lhs) = self.add_expr(i)?;
        loop {
            let r1 = ws(r);
            let pos = lhs.pos;
            // Symbolic comparisons.
            let sym: Option<(&str, BinOp)> = [
                ("==", BinOp::Eq),
                ("!=", BinOp::Ne),
                ("<>", BinOp::Ne),
                ("=~", BinOp::EqCi),
                ("!~", BinOp::NeCi),
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
            ]
            .into_iter()
            .find(|(t, _)| r1.starts_with(t));
            if let Some((t, op)) = sym {
                let (r2, rhs) = self.add_expr(ws(&r1[t.len()..]))?;
                lhs = Expr {
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                    pos,
                };
                r = r2;
                continue;
            }
            let (negated, word_start) = match r1.strip_prefix('!') {
                Some(w) => (true, w),
                None => (false, r1),
            };
            let Ok((after_word, word)) = ident(word_start) else {
                return Ok((r, lhs));
            };
            if let Some(rest) = after_word.strip_prefix('~').filter(|_| word == "in") {
                let (r2, list) = self.in_list(rest)?;
                lhs = Expr {
                    kind: ExprKind::In {
                        lhs: Box::new(lhs),
                        list,
                        negated,
                        ci: true,
                    },
                    pos,
                };
                r = r2;
                continue;
            }
            let (kind, cs) = match word {
                "in" => {
                    let (r2, list) = self.in_list(after_word)?;
                    lhs = Expr {
                        kind: ExprKind::In {
                            lhs: Box::new(lhs),
                            list,
                            negated,
                            ci: false,
                        },
                        pos,
                    };
                    r = r2;
                    continue;
                }
                "matches" if !negated => {
                    let r2 = ws(after_word);
                    let Some(r2) = keyword(r2, "regex") else {
                        return syntax(r2, "expected 'regex' after 'matches'");
                    };
                    let (r2, rhs) = self.add_expr(ws(r2))?;
                    lhs = Expr {
                        kind: ExprKind::MatchesRegex(Box::new(lhs), Box::new(rhs)),
                        pos,
                    };
                    r = r2;
                    continue;
                }
                "has" => (StrKind::Has, false),
                "has_cs" => (StrKind::Has, true),
                "contains" => (StrKind::Contains, false),
                "contains_cs" => (StrKind::Contains, true),
                "startswith" => (StrKind::StartsWith, false),
                "startswith_cs" => (StrKind::StartsWith, true),
                "endswith" => (StrKind::EndsWith, false),
                "endswith_cs" => (StrKind::EndsWith, true),
                "hasprefix" => (StrKind::HasPrefix, false),
                "hasprefix_cs" => (StrKind::HasPrefix, true),
                "hassuffix" => (StrKind::HasSuffix, false),
                "hassuffix_cs" => (StrKind::HasSuffix, true),
                "between" if self.dialect == Dialect::Query => {
                    let (r2, _) = self.expect(after_word, "(")?;
                    let (r2, lo) = self.add_expr(ws(r2))?;
                    let (r2, _) = self.expect(r2, "..")?;
                    let (r2, hi) = self.add_expr(ws(r2))?;
                    let (r2, _) = self.expect(r2, ")")?;
                    lhs = Expr {
                        kind: ExprKind::Between {
                            lhs: Box::new(lhs),
                            lo: Box::new(lo),
                            hi: Box::new(hi),
                            negated,
                        },
                        pos,
                    };
                    r = r2;
                    continue;
                }
                "has_any" | "has_all" if self.dialect == Dialect::Query && !negated => {
                    let (r2, list) = self.in_list(after_word)?;
                    lhs = Expr {
                        kind: ExprKind::HasAny {
                            lhs: Box::new(lhs),
                            list,
                            all: word == "has_all",
                        },
                        pos,
                    };
                    r = r2;
                    continue;
                }
                "between" | "has_any" | "has_all" | "like" | "notlike"
                    if self.dialect == Dialect::Query =>
                {
                    return failure(
                        word_start,
                        ErrorKind::UnsupportedInQuery(format!(
                            "the '{}{word}' operator",
                            if negated { "!" } else { "" }
                        )),
                    );
                }
                "between" | "has_any" | "has_all" | "like" | "notlike" => {
                    return failure(
                        word_start,
                        ErrorKind::Syntax(format!(
                            "the '{word}' operator is not supported in transformations"
                        )),
                    );
                }
                _ => return Ok((r, lhs)),
            };
            let (r2, rhs) = self.add_expr(ws(after_word))?;
            lhs = Expr {
                kind: ExprKind::Str {
                    kind,
                    cs,
                    negated,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                pos,
            };
            r = r2;
        }
    }

    fn in_list<'a>(&self, i: &'a str) -> R<'a, Vec<Expr>>
    where
        's: 'a,
    {
        let (mut r, _) = self.expect(i, "(")?;
        let mut list = Vec::new();
        loop {
            r = ws(r);
            if let Some(r2) = r.strip_prefix(')') {
                return Ok((r2, list));
            }
            let (r2, e) = self.expr(r)?;
            list.push(e);
            r = ws(r2);
            if let Some(r2) = r.strip_prefix(',') {
                r = r2;
            } else if !r.starts_with(')') {
                return syntax(r, "expected ',' or ')' in the list");
            }
        }
    }

    fn add_expr<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let (mut r, mut lhs) = self.mul_expr(i)?;
        loop {
            let r1 = ws(r);
            let op = if r1.starts_with('+') {
                BinOp::Add
            } else if r1.starts_with('-') {
                BinOp::Sub
            } else {
                return Ok((r, lhs));
            };
            let (r2, rhs) = self.mul_expr(ws(&r1[1..]))?;
            let pos = lhs.pos;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                pos,
            };
            r = r2;
        }
    }

    fn mul_expr<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let (mut r, mut lhs) = self.unary(i)?;
        loop {
            let r1 = ws(r);
            let op = match r1.chars().next() {
                Some('*') => BinOp::Mul,
                Some('/') if !r1.starts_with("//") => BinOp::Div,
                Some('%') => BinOp::Mod,
                _ => return Ok((r, lhs)),
            };
            let (r2, rhs) = self.unary(ws(&r1[1..]))?;
            let pos = lhs.pos;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                pos,
            };
            r = r2;
        }
    }

    fn unary<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return syntax(
                i,
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            );
        }
        self.depth.set(depth);
        let r = self.unary_inner(i);
        self.depth.set(depth - 1);
        r
    }

    fn unary_inner<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let pos = self.pos(i);
        if let Some(r) = i.strip_prefix('-') {
            let (r, e) = self.unary(ws(r))?;
            // Fold negative numeric literals so `-9223372036854775808`-style bounds and `-1` stay literals.
            return Ok((
                r,
                match e.kind {
                    ExprKind::Lit(Lit::Long(v)) => Expr {
                        kind: ExprKind::Lit(Lit::Long(v.wrapping_neg())),
                        pos,
                    },
                    ExprKind::Lit(Lit::Real(v)) => Expr {
                        kind: ExprKind::Lit(Lit::Real(-v)),
                        pos,
                    },
                    ExprKind::Lit(Lit::Timespan(v)) => Expr {
                        kind: ExprKind::Lit(Lit::Timespan(-v)),
                        pos,
                    },
                    kind => Expr {
                        kind: ExprKind::Neg(Box::new(Expr { kind, pos: e.pos })),
                        pos,
                    },
                },
            ));
        }
        if let Some(r) = i.strip_prefix('+') {
            return self.unary(ws(r));
        }
        self.postfix(i)
    }

    fn postfix<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let (mut r, mut e) = self.primary(i)?;
        loop {
            let r1 = ws(r);
            let pos = e.pos;
            if let Some(r2) = r1.strip_prefix('.').filter(|r2| !r2.starts_with('.')) {
                let r2 = ws(r2);
                let Ok((r3, name)) = self.name(r2) else {
                    return syntax(r2, "expected a property name after '.'");
                };
                e = Expr {
                    kind: ExprKind::Member(Box::new(e), name),
                    pos,
                };
                r = r3;
            } else if let Some(r2) = r1.strip_prefix('[') {
                let (r3, idx) = self.expr(r2)?;
                let (r3, _) = self.expect(r3, "]")?;
                e = match idx.kind {
                    ExprKind::Lit(Lit::String(s)) => Expr {
                        kind: ExprKind::Member(Box::new(e), s),
                        pos,
                    },
                    kind => Expr {
                        kind: ExprKind::Index(Box::new(e), Box::new(Expr { kind, pos: idx.pos })),
                        pos,
                    },
                };
                r = r3;
            } else {
                return Ok((r, e));
            }
        }
    }

    /// `datetime(..)`, `long(null)`, `dynamic(..)` ... with no parser state (for dynamic literals).
    fn typed_literal_standalone(i: &str) -> R<'_, Expr> {
        let p = Parser {
            src: i,
            dialect: Dialect::Transformation,
            depth: Cell::new(0),
        };
        match p.typed_literal(i) {
            Ok((r, Some(e))) => Ok((r, e)),
            Ok(_) => backtrack(i),
            Err(e) => Err(e),
        }
    }

    /// A typed literal, or `None` when the name is not a literal type (then it is a call).
    fn typed_literal<'a>(&self, i: &'a str) -> R<'a, Option<Expr>> {
        let pos = self.pos(i);
        let (after, word) = ident(i)?;
        let lit = |r, l| {
            Ok((
                r,
                Some(Expr {
                    kind: ExprKind::Lit(l),
                    pos,
                }),
            ))
        };
        let paren = ws(after);
        if !paren.starts_with('(') {
            return Ok((i, None));
        }
        let Some(ty) = Type::from_name(word) else {
            return Ok((i, None));
        };
        match ty {
            Type::DateTime => {
                let (r, body) = raw_parens(paren)?;
                // Kusto also accepts the text quoted: `datetime("2015-12-14")`.
                let body = unquoted(body);
                if body == "null" {
                    return lit(r, Lit::Null(Some(Type::DateTime)));
                }
                match time::parse_datetime(body) {
                    Some(t) => lit(r, Lit::DateTime(t)),
                    None => failure(
                        paren,
                        ErrorKind::BadLiteral(format!("bad datetime literal '{body}'")),
                    ),
                }
            }
            Type::Timespan => {
                let (r, body) = raw_parens(paren)?;
                match timespan_body(body) {
                    Some(l) => lit(r, l),
                    None => failure(
                        paren,
                        ErrorKind::BadLiteral(format!("bad timespan literal '{body}'")),
                    ),
                }
            }
            Type::Guid => {
                let (r, body) = raw_parens(paren)?;
                if body == "null" {
                    return lit(r, Lit::Null(Some(Type::Guid)));
                }
                match parse_guid(body) {
                    Some(g) => lit(r, Lit::Guid(g)),
                    None => failure(
                        paren,
                        ErrorKind::BadLiteral(format!("bad guid literal '{body}'")),
                    ),
                }
            }
            Type::Dynamic => {
                let (r, j) = dyn_value(&paren[1..], 0)?;
                let (r, _) = self.expect(r, ")")?;
                lit(r, Lit::Dynamic(j))
            }
            Type::String => Ok((i, None)),
            _ => {
                let body = ws(&paren[1..]);
                if let Some(r) = keyword(body, "null") {
                    let (r, _) = self.expect(r, ")")?;
                    return lit(r, Lit::Null(Some(ty)));
                }
                let (neg, b) = match body.strip_prefix('-') {
                    Some(b) => (true, ws(b)),
                    None => (false, body),
                };
                let value = if ty == Type::Bool {
                    if let Some(r) = keyword(b, "true") {
                        Some((r, Lit::Bool(true)))
                    } else {
                        keyword(b, "false").map(|r| (r, Lit::Bool(false)))
                    }
                } else if let Ok((r, l)) = number(b) {
                    Some((r, l))
                } else {
                    ["nan", "inf", "+inf", "-inf"].iter().find_map(|k| {
                        keyword(b, k).map(|r| {
                            (
                                r,
                                Lit::Real(match *k {
                                    "nan" => f64::NAN,
                                    "-inf" => f64::NEG_INFINITY,
                                    _ => f64::INFINITY,
                                }),
                            )
                        })
                    })
                };
                let Some((r, l)) = value else {
                    return Ok((i, None));
                };
                let (r, _) = self.expect(r, ")")?;
                let sign = if neg { -1.0 } else { 1.0 };
                let l = match (ty, l) {
                    (Type::Bool, l) => l,
                    (Type::Int, Lit::Long(v)) => Lit::Int((if neg { -v } else { v }) as i32),
                    (Type::Long, Lit::Long(v)) => Lit::Long(if neg { -v } else { v }),
                    (Type::Int | Type::Long, Lit::Real(v)) => Lit::Long((sign * v) as i64),
                    (_, Lit::Long(v)) => Lit::Real(sign * v as f64),
                    (_, Lit::Real(v)) => Lit::Real(sign * v),
                    _ => return failure(paren, ErrorKind::BadLiteral(format!("bad {ty} literal"))),
                };
                lit(r, l)
            }
        }
    }

    fn primary<'a>(&self, i: &'a str) -> R<'a, Expr>
    where
        's: 'a,
    {
        let pos = self.pos(i);
        let lit = |r, l| {
            Ok((
                r,
                Expr {
                    kind: ExprKind::Lit(l),
                    pos,
                },
            ))
        };
        if i.is_empty() {
            return syntax(i, "unexpected end of query: expected an expression");
        }
        if let Some(r) = i.strip_prefix('(') {
            let (r, e) = self.expr(r)?;
            let (r, _) = self.expect(r, ")")?;
            return Ok((r, e));
        }
        if i.starts_with(|c: char| c.is_ascii_digit()) {
            let (r, l) = number(i)?;
            return lit(r, l);
        }
        if i.starts_with(['\'', '"', '@']) || i.starts_with("```") {
            let (r, s) = string_lit(i)?;
            return lit(r, Lit::String(s));
        }
        if (i.starts_with(['h', 'H']))
            && let Ok((r, s)) = string_lit(i)
        {
            return lit(r, Lit::String(s));
        }
        if i.starts_with('[') {
            let (r, name) = self
                .name(i)
                .or_else(|_| syntax(i, "expected an expression"))?;
            return Ok((
                r,
                Expr {
                    kind: ExprKind::Name(name),
                    pos,
                },
            ));
        }
        let Ok((after, word)) = ident(i) else {
            return syntax(i, "expected an expression");
        };
        match word {
            "true" | "True" | "TRUE" => return lit(after, Lit::Bool(true)),
            "false" | "False" | "FALSE" => return lit(after, Lit::Bool(false)),
            "typeof" => {
                let (r, _) = self.expect(after, "(")?;
                let (r, t) = type_name(ws(r))?;
                let (r, _) = self.expect(r, ")")?;
                return Ok((
                    r,
                    Expr {
                        kind: ExprKind::TypeOf(t),
                        pos,
                    },
                ));
            }
            _ => {}
        }
        if let (r, Some(e)) = self.typed_literal(i)? {
            return Ok((r, e));
        }
        let paren = ws(after);
        if let Some(mut r) = paren.strip_prefix('(') {
            let mut args = Vec::new();
            loop {
                r = ws(r);
                if let Some(r2) = r.strip_prefix(')') {
                    r = r2;
                    break;
                }
                let star = r
                    .strip_prefix('*')
                    .filter(|r2| self.dialect == Dialect::Query && ws(r2).starts_with([',', ')']));
                let (r2, a) = match star {
                    // `arg_max(TimeGenerated, *)`, `take_any(*)`: every column.
                    Some(r2) => (
                        r2,
                        Expr {
                            kind: ExprKind::Name("*".into()),
                            pos: self.pos(r),
                        },
                    ),
                    None => self.expr(r)?,
                };
                args.push(a);
                r = ws(r2);
                if let Some(r2) = r.strip_prefix(',') {
                    r = r2;
                } else if !r.starts_with(')') {
                    return syntax(r, "expected ',' or ')' in the argument list");
                }
            }
            return Ok((
                r,
                Expr {
                    kind: ExprKind::Call(word.to_string(), args),
                    pos,
                },
            ));
        }
        Ok((
            after,
            Expr {
                kind: ExprKind::Name(word.to_string()),
                pos,
            },
        ))
    }
}

/// Parses a whole query.
pub(crate) fn parse_query(src: &str, dialect: Dialect) -> Result<Query, Error> {
    Parser {
        src,
        dialect,
        depth: Cell::new(0),
    }
    .query()
}
