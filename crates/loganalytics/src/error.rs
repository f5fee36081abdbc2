//! The crate's opaque error type.

use std::fmt;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from this crate.
///
/// The type is opaque: ask it questions through its predicates
/// ([`is_retryable`](Error::is_retryable), [`is_auth`](Error::is_auth),
/// [`is_config`](Error::is_config), [`status`](Error::status)). No message
/// produced by this type ever contains a secret: bodies from the service are
/// reduced to their error code and a bounded message, and neither request
/// headers nor credentials are kept.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

/// What went wrong, in broad classes. Private: callers use the predicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The builder or a constructor was given something unusable.
    Builder,
    /// The connection could not be made, was reset, or the request timed out.
    Transport { timeout: bool },
    /// The service answered with a status that says "try again later".
    Transient,
    /// The token endpoint refused the credential, or the service refused the token.
    Auth,
    /// The service says the endpoint, rule, stream or role assignment is wrong.
    Config,
    /// The service refused the data itself.
    Rejected,
    /// A response could not be understood.
    Decode,
    /// A local file (certificate, federated token) could not be read.
    Io,
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                status: None,
                code: None,
                message: None,
                retry_after: None,
                source: None,
            }),
        }
    }

    pub(crate) fn builder(message: impl Into<String>) -> Self {
        Self::new(Kind::Builder).with_message(message)
    }

    pub(crate) fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        Self::new(Kind::Io)
            .with_message(message)
            .with_source(source)
    }

    pub(crate) fn decode(message: impl Into<String>) -> Self {
        Self::new(Kind::Decode).with_message(message)
    }

    /// Wraps a transport error. The URL is stripped: it can carry a tenant
    /// or query parameters, and messages must stay free of anything
    /// sensitive.
    pub(crate) fn transport(err: reqwest::Error) -> Self {
        let timeout = err.is_timeout();
        Self::new(Kind::Transport { timeout }).with_source(err.without_url())
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_code(mut self, code: Option<String>) -> Self {
        self.inner.code = code;
        self
    }

    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        let mut message = message.into();
        truncate_at_char(&mut message, 300);
        self.inner.message = Some(message);
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.inner.retry_after = retry_after;
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn kind(&self) -> Kind {
        self.inner.kind
    }

    pub(crate) fn message(&self) -> Option<&str> {
        self.inner.message.as_deref()
    }

    /// True when sending the same request again later may succeed: transport
    /// errors, timeouts, and 408, 429 and 5xx answers.
    pub fn is_retryable(&self) -> bool {
        matches!(self.inner.kind, Kind::Transport { .. } | Kind::Transient)
    }

    /// True when a credential was refused: by the token endpoint, or by the
    /// service (401, and 403 which means the identity lacks the role).
    pub fn is_auth(&self) -> bool {
        self.inner.kind == Kind::Auth || self.inner.status == Some(403)
    }

    /// True when the service says the configuration is wrong (403, 404, a
    /// bad Data Collector `Log-Type` or workspace), or a builder was given
    /// an unusable value. Such errors are retried only slowly.
    pub fn is_config(&self) -> bool {
        matches!(self.inner.kind, Kind::Config | Kind::Builder)
    }

    /// True when the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Transport { timeout: true })
    }

    /// True when the service refused the data itself (a 400 for a row, or
    /// a row too large to send).
    pub fn is_rejected(&self) -> bool {
        self.inner.kind == Kind::Rejected
    }

    /// The HTTP status of the answer that caused this error, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The service's error code (`x-ms-error-code`, or `error.code` of the
    /// body, or the token endpoint's `error`), if it sent one.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// How long the service asked the client to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(code) = &self.inner.code {
            d.field("code", code);
        }
        if let Some(message) = &self.inner.message {
            d.field("message", message);
        }
        if let Some(retry_after) = &self.inner.retry_after {
            d.field("retry_after", retry_after);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.inner.kind {
            Kind::Builder => "invalid configuration",
            Kind::Transport { timeout: true } => "request timed out",
            Kind::Transport { timeout: false } => "connection failed",
            Kind::Transient => "service temporarily unavailable",
            Kind::Auth => "authentication failed",
            Kind::Config => "service refused the configuration",
            Kind::Rejected => "data rejected",
            Kind::Decode => "unexpected response",
            Kind::Io => "cannot read a local file",
        };
        f.write_str(what)?;
        if let Some(status) = self.inner.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(code) = &self.inner.code {
            write!(f, ": {code}")?;
        }
        if let Some(message) = &self.inner.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_follow_kind_and_status() {
        let e = Error::new(Kind::Transient).with_status(503);
        assert!(e.is_retryable());
        assert!(!e.is_auth());
        assert_eq!(e.status(), Some(503));
        let e = Error::new(Kind::Config).with_status(403);
        assert!(e.is_config());
        assert!(e.is_auth());
        assert!(!e.is_retryable());
        let e = Error::new(Kind::Transport { timeout: true });
        assert!(e.is_timeout() && e.is_retryable());
    }

    #[test]
    fn display_is_bounded_and_names_status_and_code() {
        let long = "x".repeat(1000);
        let e = Error::new(Kind::Rejected)
            .with_status(400)
            .with_code(Some("InvalidStream".into()))
            .with_message(long);
        let s = e.to_string();
        assert!(s.starts_with("data rejected (HTTP 400): InvalidStream: xxx"));
        assert!(s.len() < 400, "{}", s.len());
    }
}
