//! The delivery loop shared by both APIs: pack, send with bounded
//! concurrency, classify, retry, split, bisect.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Semaphore;

use crate::batch::{Rows, encode_array, gzip, pack, split_by_time};
use crate::classify::{Action, Api, RetryPolicy, classify};
use crate::error::{Error, Kind};
use crate::limiter::Limiter;
use crate::report::{PendingRow, RejectReason, RejectedRow, RetryLater, SendReport};

/// The window a batch's event times must stay within
/// (`RecordsTimeRangeIsMoreThan30Minutes`).
const TIME_WINDOW_MILLIS: i64 = 30 * 60 * 1000;

/// One HTTP answer, reduced to what classification needs.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) retry_after: Option<Duration>,
}

impl Answer {
    pub(crate) fn into_error(self) -> Error {
        let kind = match self.status {
            401 => Kind::Auth,
            400 | 413 => Kind::Rejected,
            408 | 429 | 500..=599 => Kind::Transient,
            _ => Kind::Config,
        };
        let mut e = Error::new(kind)
            .with_status(self.status)
            .with_code(self.code)
            .with_retry_after(self.retry_after);
        if let Some(m) = self.message {
            e = e.with_message(m);
        }
        e
    }
}

/// A request body ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) bytes: Bytes,
    pub(crate) gzipped: bool,
}

/// The API-specific part: turns a body into an HTTP answer.
pub(crate) trait Sender: Sync {
    fn send(&self, body: &Body) -> impl Future<Output = Result<Answer, Error>> + Send;
}

#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) api: Api,
    pub(crate) max_body: usize,
    pub(crate) gzip_level: Option<u32>,
    pub(crate) max_in_flight: usize,
    pub(crate) semaphore: Arc<Semaphore>,
    pub(crate) retry: RetryPolicy,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) time_field: String,
}

#[derive(Debug)]
struct Job {
    rows: Vec<usize>,
    time_split: bool,
}

enum Outcome {
    Delivered,
    Split(Vec<Job>),
    Reject(Error),
    RetryLater(Error),
}

impl Engine {
    pub(crate) async fn run<S: Sender>(&self, sender: &S, rows: &Rows<'_>) -> SendReport {
        let start = Instant::now();
        let mut report = SendReport::default();
        for (i, why) in rows.invalid() {
            report.rejected.push(RejectedRow {
                index: *i,
                row: rows.get(*i).to_vec(),
                reason: RejectReason::Invalid(why.clone()),
            });
        }
        let packed = pack(rows, &rows.valid_indices(), self.max_body);
        for i in packed.oversize {
            let row = rows.get(i).to_vec();
            tracing::warn!(
                index = i,
                size = row.len(),
                limit = self.max_body,
                "row too large to send; rejected"
            );
            report.rejected.push(RejectedRow {
                index: i,
                reason: RejectReason::TooLarge {
                    size: row.len() + 2,
                    limit: self.max_body,
                },
                row,
            });
        }
        let mut queue: VecDeque<Job> = packed
            .batches
            .into_iter()
            .map(|rows| Job {
                rows,
                time_split: false,
            })
            .collect();
        let mut later: Vec<usize> = Vec::new();
        let mut later_error: Option<Error> = None;
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < self.max_in_flight {
                let Some(job) = queue.pop_front() else { break };
                // Once the budget is spent and a batch has already been
                // given up, the rest goes straight back to the caller: the
                // same outage would only spend one more try on each.
                let spent = self
                    .retry
                    .budget()
                    .is_some_and(|budget| start.elapsed() >= budget);
                if spent && later_error.is_some() {
                    later.extend(job.rows);
                    continue;
                }
                running.push(self.attempt(sender, rows, job, start));
            }
            let Some((job, outcome, requests)) = running.next().await else {
                break;
            };
            report.requests += requests;
            match outcome {
                Outcome::Delivered => report.delivered_rows += job.rows.len(),
                Outcome::Split(jobs) => queue.extend(jobs),
                Outcome::Reject(error) => {
                    // Only single rows are ever rejected by the service.
                    for i in job.rows {
                        report.rejected.push(RejectedRow {
                            index: i,
                            row: rows.get(i).to_vec(),
                            reason: RejectReason::Refused(clone_error(&error)),
                        });
                    }
                }
                Outcome::RetryLater(error) => {
                    later.extend(job.rows);
                    later_error = Some(error);
                }
            }
        }
        if let Some(error) = later_error {
            later.sort_unstable();
            report.retry_later = Some(RetryLater {
                rows: later
                    .into_iter()
                    .map(|i| PendingRow {
                        index: i,
                        row: rows.get(i).to_vec(),
                    })
                    .collect(),
                error,
            });
        }
        report.rejected.sort_by_key(|r| r.index);
        report
    }

    fn body(&self, rows: &Rows<'_>, job: &Job) -> Body {
        let mut raw = Vec::new();
        encode_array(rows, &job.rows, &mut raw);
        match self.gzip_level {
            Some(level) => Body {
                bytes: Bytes::from(gzip(&raw, level)),
                gzipped: true,
            },
            None => Body {
                bytes: Bytes::from(raw),
                gzipped: false,
            },
        }
    }

    async fn attempt<S: Sender>(
        &self,
        sender: &S,
        rows: &Rows<'_>,
        job: Job,
        start: Instant,
    ) -> (Job, Outcome, usize) {
        let body = self.body(rows, &job);
        let raw_len: usize = job
            .rows
            .iter()
            .map(|&i| rows.get(i).len() + 1)
            .sum::<usize>()
            + 1;
        let mut attempts = 0u32;
        let mut requests = 0usize;
        let mut refreshed = false;
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.acquire(raw_len).await;
            }
            let result = {
                let _permit = self.semaphore.acquire().await;
                attempts += 1;
                requests += 1;
                sender.send(&body).await
            };
            let (action, error) = match result {
                Ok(answer) => {
                    let action = classify(
                        self.api,
                        answer.status,
                        answer.code.as_deref(),
                        answer.retry_after,
                    );
                    (action, answer.into_error())
                }
                Err(error) if error.is_retryable() => (
                    Action::Transient {
                        retry_after: error.retry_after(),
                    },
                    error,
                ),
                Err(error) => (Action::ConfigError, error),
            };
            let delay = match action {
                Action::Delivered => return (job, Outcome::Delivered, requests),
                Action::RefreshToken if !refreshed => {
                    // The sender dropped the refused token; try once more at once.
                    refreshed = true;
                    attempts -= 1;
                    continue;
                }
                Action::SplitHalves | Action::Bisect => {
                    return self.split_or_reject(job, error, requests);
                }
                Action::SplitByTime => {
                    if !job.time_split && job.rows.len() > 1 {
                        let groups =
                            split_by_time(rows, &job.rows, &self.time_field, TIME_WINDOW_MILLIS);
                        if groups.len() > 1 {
                            tracing::info!(
                                rows = job.rows.len(),
                                groups = groups.len(),
                                "batch spans more than 30 minutes; split by time"
                            );
                            let jobs = groups
                                .into_iter()
                                .map(|rows| Job {
                                    rows,
                                    time_split: true,
                                })
                                .collect();
                            return (job, Outcome::Split(jobs), requests);
                        }
                    }
                    return self.split_or_reject(job, error, requests);
                }
                Action::RefreshToken | Action::ConfigError => {
                    tracing::error!(error = %error, "configuration or credential refused; retrying slowly");
                    self.retry.config_delay()
                }
                Action::Transient { retry_after } => match retry_after {
                    Some(wait) => wait,
                    None => self.retry.backoff(attempts, rand::random::<f64>()),
                },
            };
            if !self.retry.may_retry(attempts, start.elapsed(), delay) {
                tracing::warn!(error = %error, rows = job.rows.len(), "retry budget spent; rows returned for later");
                return (job, Outcome::RetryLater(error), requests);
            }
            tracing::debug!(error = %error, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn split_or_reject(&self, job: Job, error: Error, requests: usize) -> (Job, Outcome, usize) {
        if job.rows.len() > 1 {
            let mid = job.rows.len() / 2;
            let right = job.rows[mid..].to_vec();
            let left = job.rows[..mid].to_vec();
            let jobs = vec![
                Job {
                    rows: left,
                    time_split: job.time_split,
                },
                Job {
                    rows: right,
                    time_split: job.time_split,
                },
            ];
            (job, Outcome::Split(jobs), requests)
        } else {
            tracing::warn!(error = %error, "row refused by the service; rejected");
            (job, Outcome::Reject(error), requests)
        }
    }
}

/// A copy of an error's public facts (the source is not clonable).
fn clone_error(e: &Error) -> Error {
    let mut c = Error::new(e.kind())
        .with_code(e.code().map(str::to_owned))
        .with_retry_after(e.retry_after());
    if let Some(s) = e.status() {
        c = c.with_status(s);
    }
    if let Some(m) = e.message() {
        c = c.with_message(m);
    }
    c
}
