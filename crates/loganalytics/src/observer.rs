//! A hook told of every HTTP attempt as it completes.

use crate::error::Error;

/// Told of every HTTP attempt as it completes, before any retry is decided.
///
/// Set one with `observer` on [`LogsIngestionClientBuilder`](crate::LogsIngestionClientBuilder)
/// or [`DataCollectorClientBuilder`](crate::DataCollectorClientBuilder) to see an outage
/// (or a recovery) at the first attempt, instead of when a send's retry budget is spent.
/// Calls come from the sending tasks, possibly concurrently; keep them cheap (count, flip a
/// flag) and never block.
pub trait SendObserver: Send + Sync + std::fmt::Debug {
    /// An answer arrived with this status (any status, 2xx included).
    fn answered(&self, status: u16);
    /// The request failed without an answer (connect, reset, timeout, body read), or could
    /// not be made because no token could be had: the error says which
    /// ([`Error::is_auth`], [`Error::status`] of the token endpoint's answer,
    /// [`Error::is_timeout`], …).
    fn failed(&self, error: &Error);
}
