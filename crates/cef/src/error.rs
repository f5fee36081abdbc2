//! Parse errors and warnings.

use std::fmt;

use crate::dictionary::DataType;

/// A header field, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderField {
    /// `Version`, the digits after `CEF:`.
    Version,
    /// `Device Vendor`.
    DeviceVendor,
    /// `Device Product`.
    DeviceProduct,
    /// `Device Version`.
    DeviceVersion,
    /// `Device Event Class ID`.
    DeviceEventClassId,
    /// `Name`.
    Name,
    /// `Severity`.
    Severity,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderField::Version => "version",
            HeaderField::DeviceVendor => "device vendor",
            HeaderField::DeviceProduct => "device product",
            HeaderField::DeviceVersion => "device version",
            HeaderField::DeviceEventClassId => "device event class id",
            HeaderField::Name => "name",
            HeaderField::Severity => "severity",
        })
    }
}

/// Why an input is not a CEF event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input contains no `CEF:` marker.
    MissingMarker,
    /// The version after `CEF:` is not a decimal number that fits in a `u32`.
    InvalidVersion,
    /// A header field is not terminated by an unescaped `|`: the header has fewer than
    /// seven pipe-terminated fields.
    UnterminatedHeader(HeaderField),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::MissingMarker => f.write_str("no CEF: marker"),
            ErrorKind::InvalidVersion => f.write_str("invalid CEF version"),
            ErrorKind::UnterminatedHeader(field) => {
                write!(f, "unterminated header field {field}")
            }
        }
    }
}

/// An input that cannot be parsed as a CEF event.
///
/// `Display` reads like `unterminated header field name at byte 41`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParseError {
    offset: usize,
    kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        ParseError { offset, kind }
    }

    /// Byte offset into the input given to [`parse`](crate::parse), starting at 0.
    ///
    /// For [`ErrorKind::MissingMarker`] it is 0; for an unterminated header field it is
    /// where that field starts.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn map_offset(self, f: impl FnOnce(usize) -> usize) -> Self {
        ParseError {
            offset: f(self.offset),
            kind: self.kind,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// What the parser accepted leniently, or a value that failed type conversion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// A bare `=` inside a value that cannot start a key; it is kept as data.
    LiteralEquals,
    /// A backslash sequence that is not a CEF escape (or a lone trailing backslash);
    /// it is kept as written.
    UnknownEscape,
    /// Invalid UTF-8; each invalid sequence was replaced with U+FFFD.
    InvalidUtf8 {
        /// How many invalid sequences were replaced.
        replaced: usize,
    },
    /// Text at the start of the extension that is not a `key=value` pair. It is kept
    /// as a pair with an empty key.
    KeylessText,
    /// The value of a dictionary key does not convert to the key's data type (reported
    /// by [`Event::check_types`](crate::Event::check_types)). Empty values are not
    /// reported: they mean "no value".
    Conversion {
        /// The key as it appears in the event.
        key: String,
        /// The type the dictionary gives it.
        expected: DataType,
    },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::LiteralEquals => f.write_str("unescaped '=' kept in a value"),
            WarningKind::UnknownEscape => f.write_str("unknown escape kept as written"),
            WarningKind::InvalidUtf8 { replaced } => {
                write!(f, "{replaced} invalid UTF-8 sequence(s) replaced")
            }
            WarningKind::KeylessText => f.write_str("text without a key"),
            WarningKind::Conversion { key, expected } => {
                write!(f, "value of {key} is not a valid {expected}")
            }
        }
    }
}

/// A lenient acceptance recorded while parsing (or checking types); the event is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Warning {
    offset: Option<usize>,
    kind: WarningKind,
}

impl Warning {
    pub(crate) fn new(offset: Option<usize>, kind: WarningKind) -> Self {
        Warning { offset, kind }
    }

    /// Byte offset into the input given to [`parse`](crate::parse), where known.
    ///
    /// Conversion warnings have none. When the input had invalid UTF-8, offsets point at
    /// the start of the replaced sequence.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// What was accepted.
    pub fn kind(&self) -> &WarningKind {
        &self.kind
    }

    pub(crate) fn map_offset(&mut self, f: impl Fn(usize) -> usize) {
        self.offset = self.offset.map(f);
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at byte {o}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}
