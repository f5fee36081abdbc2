//! What a send returns: every outcome as data.

use std::fmt;

use crate::error::Error;

/// The outcome of one `send`: how many rows were delivered, which rows were
/// refused and why, and which rows should be tried again later.
///
/// Every row given to `send` ends up in exactly one of the three.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SendReport {
    /// Rows the service accepted.
    pub delivered_rows: usize,
    /// Rows that will never be accepted as they are, each with its reason.
    pub rejected: Vec<RejectedRow>,
    /// Rows not delivered within the retry budget.
    pub retry_later: Option<RetryLater>,
    /// HTTP requests made (including retries, splits and bisection).
    pub requests: usize,
}

impl SendReport {
    /// True when no row is left to retry (every row was delivered or rejected).
    pub fn is_settled(&self) -> bool {
        self.retry_later.is_none()
    }

    /// True when every row was delivered.
    pub fn is_complete(&self) -> bool {
        self.rejected.is_empty() && self.retry_later.is_none()
    }

    /// The rows to retry later, as newline-delimited JSON (for a spool).
    pub fn retry_later_ndjson(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(later) = &self.retry_later {
            for r in &later.rows {
                out.extend_from_slice(&r.row);
                out.push(b'\n');
            }
        }
        out
    }
}

/// A row the service will not accept as it is.
#[derive(Debug)]
#[non_exhaustive]
pub struct RejectedRow {
    /// Position of the row in the call's input (for NDJSON: among the
    /// non-empty lines), from 0.
    pub index: usize,
    /// The row's serialised JSON.
    pub row: Vec<u8>,
    /// Why it was rejected.
    pub reason: RejectReason,
}

/// Why a row was rejected.
#[derive(Debug)]
#[non_exhaustive]
pub enum RejectReason {
    /// Alone, the row's body exceeds the request size limit; it was never sent.
    TooLarge {
        /// The size of a body holding only this row.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The row is not a JSON object (or failed to serialise); it was never sent.
    Invalid(String),
    /// The service refused a request holding only this row.
    Refused(Error),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::TooLarge { size, limit } => {
                write!(f, "row too large: {size} bytes as a body, limit {limit}")
            }
            RejectReason::Invalid(why) => write!(f, "invalid row: {why}"),
            RejectReason::Refused(e) => write!(f, "refused by the service: {e}"),
        }
    }
}

/// Rows not delivered within the retry budget, and the last error seen.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryLater {
    /// The rows, in input order.
    pub rows: Vec<PendingRow>,
    /// The last error that stopped a retry.
    pub error: Error,
}

/// A row to try again later.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingRow {
    /// Position of the row in the call's input, from 0.
    pub index: usize,
    /// The row's serialised JSON.
    pub row: Vec<u8>,
}
