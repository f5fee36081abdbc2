//! Writing events as CEF, and building them.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::event::{Event, Severity};

impl Event<'_> {
    /// Writes the event as one CEF line, without a line end.
    ///
    /// Header fields escape `\` and `|`; a raw CR or LF in a header field (which CEF
    /// cannot express) is written as a space. Extension values escape `\`, `=`, and
    /// write LF and CR as `\n` and `\r`. Pairs are separated by one space.
    ///
    /// The output parses back to an equal event, with one exception CEF cannot avoid:
    /// trailing spaces of the last value are dropped by every parser.
    ///
    /// # Errors
    ///
    /// Errors from `w`, and [`io::ErrorKind::InvalidInput`] when a key is not a valid
    /// CEF key (`[A-Za-z0-9_][A-Za-z0-9_.,\[\]-]*`). The one exception is an empty key on
    /// the first pair, which is how [`parse`](crate::parse) keeps text without a key:
    /// its value is written bare, and must then be non-empty and not start with a space.
    pub fn encode<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"CEF:")?;
        w.write_all(itoa::Buffer::new().format(self.version).as_bytes())?;
        w.write_all(b"|")?;
        for field in &self.header {
            write_header_field(w, field)?;
        }
        write_header_field(w, self.severity.raw())?;
        for (i, (k, v)) in self.extensions.iter().enumerate() {
            if i > 0 {
                w.write_all(b" ")?;
            }
            if k.is_empty() && i == 0 {
                if v.is_empty() || v.starts_with(' ') {
                    return Err(invalid(
                        "text without a key must be non-empty and not start with a space",
                    ));
                }
            } else if !is_valid_key(k) {
                return Err(invalid("not a valid CEF extension key"));
            } else {
                w.write_all(k.as_bytes())?;
                w.write_all(b"=")?;
            }
            write_value(w, v)?;
        }
        Ok(())
    }

    /// Starts building an event; see [`EventBuilder`].
    pub fn builder<'a>() -> EventBuilder<'a> {
        EventBuilder::new()
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Whether `k` can be written as an extension key.
pub(crate) fn is_valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    match b.first() {
        Some(&c) if c.is_ascii_alphanumeric() || c == b'_' => b[1..].iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b',' | b'[' | b']' | b'-')
        }),
        _ => false,
    }
}

fn write_header_field<W: Write + ?Sized>(w: &mut W, s: &str) -> io::Result<()> {
    write_escaped(w, s, |c| match c {
        b'\\' => Some(b"\\\\"),
        b'|' => Some(b"\\|"),
        b'\n' | b'\r' => Some(b" "),
        _ => None,
    })?;
    w.write_all(b"|")
}

fn write_value<W: Write + ?Sized>(w: &mut W, s: &str) -> io::Result<()> {
    write_escaped(w, s, |c| match c {
        b'\\' => Some(b"\\\\"),
        b'=' => Some(b"\\="),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        _ => None,
    })
}

fn write_escaped<W: Write + ?Sized>(
    w: &mut W,
    s: &str,
    escape: impl Fn(u8) -> Option<&'static [u8]>,
) -> io::Result<()> {
    let b = s.as_bytes();
    let mut last = 0;
    for (i, &c) in b.iter().enumerate() {
        if let Some(rep) = escape(c) {
            w.write_all(&b[last..i])?;
            w.write_all(rep)?;
            last = i + 1;
        }
    }
    w.write_all(&b[last..])
}

/// Builds an [`Event`] field by field.
///
/// ```
/// use mcas_cef::EventBuilder;
///
/// let event = EventBuilder::new()
///     .device_vendor("MCAS")
///     .device_product("SIEM_Agent")
///     .device_version("0.111.85")
///     .device_event_class_id("EVENT_CATEGORY_LOGOUT")
///     .name("Log out")
///     .severity("0")
///     .extension("msg", "Log out")
///     .extension("cs1", "https://x/#/audits?activity.id=eq(1,)")
///     .build();
/// let mut line = Vec::new();
/// event.encode(&mut line)?;
/// assert_eq!(
///     line,
///     b"CEF:0|MCAS|SIEM_Agent|0.111.85|EVENT_CATEGORY_LOGOUT|Log out|0|\
///       msg=Log out cs1=https://x/#/audits?activity.id\\=eq(1,)"
/// );
/// assert_eq!(mcas_cef::parse(&line)?, event);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventBuilder<'a> {
    event: Event<'a>,
}

impl Default for EventBuilder<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> EventBuilder<'a> {
    /// An event with version 0, empty header fields and no extension.
    pub fn new() -> Self {
        EventBuilder {
            event: Event {
                version: 0,
                header: Default::default(),
                severity: Severity::new(""),
                extensions: Vec::new(),
                warnings: Vec::new(),
            },
        }
    }

    /// Sets the CEF version.
    #[must_use]
    pub fn version(mut self, version: u32) -> Self {
        self.event.version = version;
        self
    }

    /// Sets `Device Vendor`.
    #[must_use]
    pub fn device_vendor(mut self, v: impl Into<Cow<'a, str>>) -> Self {
        self.event.header[0] = v.into();
        self
    }

    /// Sets `Device Product`.
    #[must_use]
    pub fn device_product(mut self, v: impl Into<Cow<'a, str>>) -> Self {
        self.event.header[1] = v.into();
        self
    }

    /// Sets `Device Version`.
    #[must_use]
    pub fn device_version(mut self, v: impl Into<Cow<'a, str>>) -> Self {
        self.event.header[2] = v.into();
        self
    }

    /// Sets `Device Event Class ID`.
    #[must_use]
    pub fn device_event_class_id(mut self, v: impl Into<Cow<'a, str>>) -> Self {
        self.event.header[3] = v.into();
        self
    }

    /// Sets `Name`.
    #[must_use]
    pub fn name(mut self, v: impl Into<Cow<'a, str>>) -> Self {
        self.event.header[4] = v.into();
        self
    }

    /// Sets `Severity` (any text; see [`Severity`]).
    #[must_use]
    pub fn severity(mut self, v: impl Into<Cow<'a, str>>) -> Self {
        self.event.severity = Severity::new(v);
        self
    }

    /// Appends an extension pair. Values are written escaped by
    /// [`Event::encode`]; keys must be valid CEF keys.
    #[must_use]
    pub fn extension(
        mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Self {
        self.event.extensions.push((key.into(), value.into()));
        self
    }

    /// Appends an extension pair in place (for loops).
    pub fn push_extension(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.event.extensions.push((key.into(), value.into()));
    }

    /// The event.
    pub fn build(self) -> Event<'a> {
        self.event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(e: &Event<'_>) -> String {
        let mut out = Vec::new();
        e.encode(&mut out).expect("encodes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn escapes_everything() {
        let e = EventBuilder::new()
            .version(1)
            .device_vendor("a|b\\c")
            .device_product("line\nbreak\r")
            .severity("|10")
            .extension("msg", "x=y \\ z\nw\rv|u")
            .extension("empty", "")
            .build();
        assert_eq!(
            encode(&e),
            "CEF:1|a\\|b\\\\c|line break ||||\\|10|msg=x\\=y \\\\ z\\nw\\rv|u empty="
        );
    }

    #[test]
    fn rejects_bad_keys() {
        for key in ["", "a b", "-a", "a=b", "ä", "a\\b"] {
            let e = EventBuilder::new()
                .extension("k", "v")
                .extension(key, "v")
                .build();
            let err = e.encode(&mut Vec::new()).expect_err(key);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{key}");
        }
        for key in ["a", "ad.Error_,Code", "field[0]", "x-y", "_1", "9a"] {
            assert!(is_valid_key(key), "{key}");
        }
    }

    #[test]
    fn keyless_text_round_trips() {
        let line = b"CEF:0|V|P|1|2|n|3|some words a\\=b c=d";
        let e = crate::parse(line).expect("parses");
        assert_eq!(encode(&e).as_bytes(), line);
        let bad = EventBuilder::new().extension("", " x").build();
        assert!(bad.encode(&mut Vec::new()).is_err());
    }
}
