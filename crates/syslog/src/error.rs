use std::fmt;

/// Why [`parse`](crate::parse) gave up on an input.
///
/// The parser is tolerant: anything that is not a well-formed header ends up in the
/// message text, so the only failures are inputs that carry no message at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    offset: usize,
    kind: ErrorKind,
}

/// The class of a [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is empty (after removing a datagram trailer, if any).
    Empty,
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        Self { offset, kind }
    }

    /// Byte offset into the input given to `parse`, starting at 0.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Empty => write!(f, "empty syslog message at byte {}", self.offset),
        }
    }
}

impl std::error::Error for ParseError {}
