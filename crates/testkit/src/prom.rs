//! The Prometheus text exposition format (version 0.0.4), read line by line.
//!
//! [`lines`] parses a scrape into [`Line`]s that borrow from the text; a line that does not
//! parse is an [`Err`] item carrying its position, and the lines after it are still read.
//! [`Scrape`] owns a body and looks samples up by a [`Selector`]: a metric name, with or
//! without a label set, written as it appears in the exposition
//! (`mcas_forward_dropped_total{reason="oversize"}`).

use std::fmt;

/// The longest line read; longer lines are reported as [`ErrorKind::TooLong`].
pub const MAX_LINE: usize = 64 * 1024;

/// One line of an exposition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Line<'a> {
    /// A sample: `name{labels} value [timestamp]`.
    Sample(Sample<'a>),
    /// `# TYPE name kind`.
    Type {
        /// The metric family.
        name: &'a str,
        /// `counter`, `gauge`, `histogram`, `summary` or `untyped`, as written.
        kind: &'a str,
    },
    /// `# HELP name text` (the text still escaped).
    Help {
        /// The metric family.
        name: &'a str,
        /// The help text.
        text: &'a str,
    },
    /// Any other `#` line.
    Comment(&'a str),
    /// An empty line.
    Blank,
}

/// A sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The series' metric name.
    pub name: &'a str,
    /// Label names and values in the order written; values are still escaped (`\"`, `\\`,
    /// `\n`) exactly as in the text.
    pub labels: Vec<(&'a str, &'a str)>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
    /// The optional timestamp, in milliseconds.
    pub timestamp: Option<i64>,
}

impl<'a> Sample<'a> {
    /// The (escaped) value of label `name`.
    pub fn label(&self, name: &str) -> Option<&'a str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|&(_, v)| v)
    }
}

/// A line that did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// The line, counted from 1.
    pub line: usize,
    /// The byte offset within the line where the problem was found.
    pub column: usize,
    /// What was wrong.
    pub kind: ErrorKind,
}

/// Why a line did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A sample without a metric name.
    NoName,
    /// A label set that is not `name="value"` pairs separated by commas.
    BadLabel,
    /// A label set without its closing `}`.
    UnclosedLabels,
    /// A sample without a value.
    NoValue,
    /// A value that is not a number.
    BadValue,
    /// A timestamp that is not an integer, or more text after it.
    BadTimestamp,
    /// `# TYPE` or `# HELP` without a metric name (or `# TYPE` without a kind).
    BadDescriptor,
    /// A line longer than [`MAX_LINE`].
    TooLong,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, byte {}: {:?}",
            self.line, self.column, self.kind
        )
    }
}

impl std::error::Error for ParseError {}

/// Every line of `text`, in order; a line that does not parse is an `Err` item and reading
/// goes on with the next line.
pub fn lines(text: &str) -> impl Iterator<Item = Result<Line<'_>, ParseError>> {
    text.lines().enumerate().map(|(i, l)| {
        parse_line(l).map_err(|(column, kind)| ParseError {
            line: i + 1,
            column,
            kind,
        })
    })
}

/// Every sample of `text` that parses.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    lines(text).filter_map(|l| match l {
        Ok(Line::Sample(s)) => Some(s),
        _ => None,
    })
}

/// One line (without its line feed); the error is (byte offset, kind).
pub fn parse_line(line: &str) -> Result<Line<'_>, (usize, ErrorKind)> {
    if line.len() > MAX_LINE {
        return Err((MAX_LINE, ErrorKind::TooLong));
    }
    let trimmed = line.trim_start();
    let lead = line.len() - trimmed.len();
    if trimmed.is_empty() {
        return Ok(Line::Blank);
    }
    if let Some(comment) = trimmed.strip_prefix('#') {
        return Ok(descriptor(comment.trim_start()).unwrap_or(Line::Comment(comment)));
    }
    let (series, after) = series(trimmed, lead)?;
    let mut rest = after.split_ascii_whitespace();
    let at = lead + (trimmed.len() - after.len());
    let value_at = at + (after.len() - after.trim_start().len());
    let value = rest.next().ok_or((value_at, ErrorKind::NoValue))?;
    let value: f64 = value.parse().map_err(|_| (value_at, ErrorKind::BadValue))?;
    let timestamp = match rest.next() {
        None => None,
        Some(t) => Some(t.parse().map_err(|_| (at, ErrorKind::BadTimestamp))?),
    };
    if rest.next().is_some() {
        return Err((at, ErrorKind::BadTimestamp));
    }
    let (name, labels) = series;
    Ok(Line::Sample(Sample {
        name,
        labels,
        value,
        timestamp,
    }))
}

/// `TYPE name kind` or `HELP name text`; `None` for any other comment. A `TYPE` or `HELP`
/// without its parts is still only a comment (the format allows free comments).
fn descriptor(comment: &str) -> Option<Line<'_>> {
    let (word, rest) = comment.split_once(' ')?;
    let rest = rest.trim_start();
    match word {
        "TYPE" => {
            let (name, kind) = rest.split_once(' ')?;
            let kind = kind.trim();
            (!name.is_empty() && !kind.is_empty()).then_some(Line::Type { name, kind })
        }
        "HELP" => {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            (!name.is_empty()).then_some(Line::Help { name, text })
        }
        _ => None,
    }
}

type Series<'a> = (&'a str, Vec<(&'a str, &'a str)>);

/// `name` or `name{k="v",...}` at the start of `s`; the rest of `s` after it. `base` is the
/// offset of `s` in its line, for error positions.
fn series(s: &str, base: usize) -> Result<(Series<'_>, &str), (usize, ErrorKind)> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err((base, ErrorKind::NoName));
    }
    let rest = &s[end..];
    let Some(mut rest) = rest.strip_prefix('{') else {
        return Ok(((name, Vec::new()), rest));
    };
    let pos = |r: &str| base + (s.len() - r.len());
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(((name, labels), after));
        }
        if rest.is_empty() {
            return Err((pos(rest), ErrorKind::UnclosedLabels));
        }
        let k_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let key = &rest[..k_end];
        if key.is_empty() {
            return Err((pos(rest), ErrorKind::BadLabel));
        }
        let after_key = rest[k_end..].trim_start();
        let Some(after_eq) = after_key.strip_prefix('=') else {
            return Err((pos(after_key), ErrorKind::BadLabel));
        };
        let after_eq = after_eq.trim_start();
        let Some(quoted) = after_eq.strip_prefix('"') else {
            return Err((pos(after_eq), ErrorKind::BadLabel));
        };
        let close = closing_quote(quoted).ok_or((pos(quoted), ErrorKind::UnclosedLabels))?;
        labels.push((key, &quoted[..close]));
        rest = quoted[close + 1..].trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.starts_with('}') {
            return Err((pos(rest), ErrorKind::BadLabel));
        }
    }
}

/// The index of the first `"` in `s` that a backslash does not escape.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A series to look up: a metric name and the exact label set it must carry (none for a
/// series without labels). Written as in the exposition: `name` or `name{k="v",...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
}

impl<'a> Selector<'a> {
    /// Parses `name` or `name{k="v",...}` (label values escaped as in the exposition).
    pub fn parse(text: &'a str) -> Result<Self, (usize, ErrorKind)> {
        let ((name, labels), rest) = series(text.trim(), 0)?;
        if !rest.trim().is_empty() {
            return Err((text.len() - rest.len(), ErrorKind::BadLabel));
        }
        Ok(Self { name, labels })
    }

    /// Whether `s` is this series: the same name and the same label set, in any order. A
    /// selector without labels matches only the series without labels.
    pub fn matches(&self, s: &Sample<'_>) -> bool {
        s.name == self.name
            && s.labels.len() == self.labels.len()
            && self.labels.iter().all(|&(k, v)| s.label(k) == Some(v))
    }
}

/// A `/metrics` body, looked up by series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrape {
    text: String,
}

impl Scrape {
    /// Wraps an exposition body.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The body as fetched.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every line, parsed (see [`lines`]).
    pub fn lines(&self) -> impl Iterator<Item = Result<Line<'_>, ParseError>> {
        lines(&self.text)
    }

    /// The value of the series `selector` names (see [`Selector`]): `None` when no sample
    /// is exactly that series, or when `selector` does not parse.
    pub fn value(&self, selector: &str) -> Option<f64> {
        let sel = Selector::parse(selector).ok()?;
        samples(&self.text)
            .find(|s| sel.matches(s))
            .map(|s| s.value)
    }

    /// [`Scrape::value`] as a count: 0 when the series is absent (a labelled counter
    /// appears once it has counted), the value truncated otherwise.
    pub fn count(&self, selector: &str) -> u64 {
        self.value(selector).map_or(0, |v| v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP mcas_forward_spool_bytes Bytes in the spool.\n\
        # TYPE mcas_forward_spool_bytes gauge\n\
        mcas_forward_spool_bytes 42\n\
        mcas_forward_spool_bytes_max 7\n\
        \n\
        # TYPE mcas_forward_dropped_total counter\n\
        mcas_forward_dropped_total{reason=\"spool_full\"} 5\n\
        mcas_forward_dropped_total{reason=\"oversize\"} 2 1700000000000\n\
        mcas_forward_output_up{output=\"a b\",kind=\"x\\\"y\"} 1\n\
        not a sample line\n\
        mcas_forward_inf +Inf\n";

    #[test]
    fn series_are_read_exactly() {
        let s = Scrape::new(TEXT);
        assert_eq!(s.value("mcas_forward_spool_bytes"), Some(42.0));
        assert_eq!(s.value("mcas_forward_spool_bytes_max"), Some(7.0));
        assert_eq!(
            s.value("mcas_forward_dropped_total{reason=\"spool_full\"}"),
            Some(5.0)
        );
        assert_eq!(
            s.count("mcas_forward_dropped_total{reason=\"oversize\"}"),
            2
        );
        // A name alone is the series without labels, not the first labelled one.
        assert_eq!(s.value("mcas_forward_dropped_total"), None);
        assert_eq!(s.count("mcas_forward_missing"), 0);
        // Label order does not matter; escaped values compare as written.
        assert_eq!(
            s.value("mcas_forward_output_up{kind=\"x\\\"y\", output=\"a b\"}"),
            Some(1.0)
        );
        assert_eq!(s.value("mcas_forward_output_up{output=\"a b\"}"), None);
        assert_eq!(s.value("mcas_forward_inf"), Some(f64::INFINITY));
    }

    #[test]
    fn descriptors_and_bad_lines_are_items() {
        let all: Vec<_> = lines(TEXT).collect();
        assert_eq!(
            all[0],
            Ok(Line::Help {
                name: "mcas_forward_spool_bytes",
                text: "Bytes in the spool."
            })
        );
        assert_eq!(
            all[1],
            Ok(Line::Type {
                name: "mcas_forward_spool_bytes",
                kind: "gauge"
            })
        );
        assert_eq!(all[4], Ok(Line::Blank));
        let Ok(Line::Sample(ts)) = &all[7] else {
            panic!("{:?}", all[7]);
        };
        assert_eq!(ts.timestamp, Some(1_700_000_000_000));
        assert_eq!(
            all[9],
            Err(ParseError {
                line: 10,
                column: 4,
                kind: ErrorKind::BadValue
            })
        );
        // The line after the bad one is still read.
        assert!(matches!(all[10], Ok(Line::Sample(_))));
    }

    #[test]
    fn malformed_label_sets_are_refused_with_a_position() {
        assert_eq!(parse_line("a{b=\"c\" 1"), Err((8, ErrorKind::BadLabel)));
        assert_eq!(parse_line("a{b=\"c"), Err((5, ErrorKind::UnclosedLabels)));
        assert_eq!(parse_line("a{b} 1"), Err((3, ErrorKind::BadLabel)));
        assert_eq!(parse_line("{b=\"c\"} 1"), Err((0, ErrorKind::NoName)));
        assert_eq!(parse_line("a"), Err((1, ErrorKind::NoValue)));
        assert_eq!(parse_line("a 1 2 3"), Err((1, ErrorKind::BadTimestamp)));
        let long = format!("a {}", "1".repeat(MAX_LINE));
        assert_eq!(parse_line(&long), Err((MAX_LINE, ErrorKind::TooLong)));
        assert!(Selector::parse("a{b=\"c\"} trailing").is_err());
    }
}
