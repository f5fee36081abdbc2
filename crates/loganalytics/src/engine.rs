//! The delivery loop shared by both APIs: pack, send with bounded
//! concurrency, classify, retry, split, bisect.

use std::collections::{BTreeMap, HashMap, VecDeque};
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
use crate::observer::SendObserver;
use crate::prepared::{PreparedBody, PreparedReport};
use crate::report::{PendingRow, RejectReason, RejectedRow, RetryLater, SendReport};

/// The window a batch's event times must stay within
/// (`RecordsTimeRangeIsMoreThan30Minutes`).
const TIME_WINDOW_MILLIS: i64 = 30 * 60 * 1000;

/// Narrowing down refused rows: a refused batch is halved (plain bisection, cheap when bad
/// rows are few: about 2·k·log2(N/k) requests for k bad rows among N). When both halves of
/// a refused batch are refused again with the parent's status and code, and each holds at
/// most this many rows, bad rows are dense there and the halves' rows are sent one by one
/// instead: bisecting a half of h rows that are all bad costs 2h−1 requests, sending them
/// singly h. A batch of N rows that are all refused thus costs about N + 2N/32 requests
/// instead of 2N−1. The cap keeps the cost of a wrong guess small: two bad rows that
/// happen to fall in the two halves of a 64-row piece cost at most 64 single requests there,
/// where a large batch with a few bad rows is never sent row by row.
pub(crate) const DENSE_HALF_MAX: usize = 32;

/// One HTTP answer, reduced to what classification needs.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) retry_after: Option<Duration>,
}

impl Answer {
    /// The error of an answer classified as `action`.
    pub(crate) fn into_error(self, action: Action) -> Error {
        let kind = match (self.status, action) {
            // A 400 whose code names the setup, not the data.
            (_, Action::ConfigError) if self.status != 401 => Kind::Config,
            (401, _) => Kind::Auth,
            (400 | 413, _) => Kind::Rejected,
            (408 | 429 | 500..=599, _) => Kind::Transient,
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
    pub(crate) observer: Option<Arc<dyn SendObserver>>,
}

#[derive(Debug)]
struct Job {
    rows: Vec<usize>,
    time_split: bool,
    /// Set when the job is one half of a batch refused for its data.
    half: Option<Half>,
}

impl Job {
    fn new(rows: Vec<usize>, time_split: bool) -> Self {
        Self {
            rows,
            time_split,
            half: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Half {
    /// Shared with the other half.
    pair: usize,
    /// How the parent batch was refused.
    parent: Refusal,
}

/// A refusal's status and code: halves refused "alike" their parent match on both.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: Option<u16>,
    code: Option<String>,
}

impl Refusal {
    fn of(e: &Error) -> Self {
        Self {
            status: e.status(),
            code: e.code().map(str::to_owned),
        }
    }
}

enum Outcome {
    Delivered,
    Split(Vec<Job>),
    /// A batch of several rows refused for its data: to be narrowed down.
    Refused(Error),
    /// Every row of the job is refused: a single row refused alone, or a request refused
    /// as a whole.
    Reject(Error),
    RetryLater(Error),
}

/// What became of one body's requests.
enum Tried {
    Delivered,
    /// Refused for its data, its size or as a whole request (the action says which).
    Refused(Action, Error),
    /// The retry budget is spent.
    Later(Error),
}

/// The bookkeeping of bisection: which halves are waiting for their sibling's outcome.
#[derive(Default)]
struct Narrowing {
    /// Pairs one half of which has finished: with that half and its error when it was
    /// refused alike its parent (parked until its sibling's outcome is known).
    done: HashMap<usize, Option<(Job, Error)>>,
    next_pair: usize,
}

impl Narrowing {
    /// Halves a refused batch into a new pair.
    fn halve(&mut self, job: Job, error: &Error) -> Vec<Job> {
        let pair = self.next_pair;
        self.next_pair += 1;
        let half = Half {
            pair,
            parent: Refusal::of(error),
        };
        let mut left = job.rows;
        let right = left.split_off(left.len() / 2);
        vec![
            Job {
                rows: left,
                time_split: job.time_split,
                half: Some(half.clone()),
            },
            Job {
                rows: right,
                time_split: job.time_split,
                half: Some(half),
            },
        ]
    }

    fn singles(job: Job, out: &mut Vec<Job>) {
        let time_split = job.time_split;
        out.extend(job.rows.into_iter().map(|i| Job::new(vec![i], time_split)));
    }

    /// A job has finished; `refused` is the job and its error when it held several rows
    /// and was refused for its data. Returns the jobs to send next.
    fn finished(&mut self, half: Option<Half>, refused: Option<(Job, Error)>) -> Vec<Job> {
        let mut out = Vec::new();
        let Some(half) = half else {
            if let Some((job, error)) = refused {
                out.extend(self.halve(job, &error));
            }
            return out;
        };
        let alike = match refused {
            Some((job, error))
                if Refusal::of(&error) == half.parent && job.rows.len() <= DENSE_HALF_MAX =>
            {
                Some((job, error))
            }
            Some((job, error)) => {
                out.extend(self.halve(job, &error));
                None
            }
            None => None,
        };
        match self.done.remove(&half.pair) {
            // The first of the pair to finish: wait for the other.
            None => {
                self.done.insert(half.pair, alike);
            }
            Some(parked) => match (parked, alike) {
                (Some((a, _)), Some((b, _))) => {
                    tracing::debug!(
                        rows = a.rows.len() + b.rows.len(),
                        "both halves refused alike; sending their rows one by one"
                    );
                    Self::singles(a, &mut out);
                    Self::singles(b, &mut out);
                }
                (Some((a, error)), None) | (None, Some((a, error))) => {
                    out.extend(self.halve(a, &error));
                }
                (None, None) => {}
            },
        }
        out
    }

    /// Halves every parked job (a safety net: each pair's second half always finishes).
    fn release(&mut self) -> Vec<Job> {
        let parked: Vec<_> = self.done.drain().filter_map(|(_, p)| p).collect();
        let mut out = Vec::new();
        for (job, error) in parked {
            out.extend(self.halve(job, &error));
        }
        out
    }
}

impl Engine {
    pub(crate) async fn run<S: Sender>(&self, sender: &S, rows: &Rows<'_>) -> SendReport {
        let start = Instant::now();
        let mut report = SendReport::default();
        reject_invalid(rows, &mut report);
        let packed = pack(rows, &rows.valid_indices(), self.max_body);
        for i in packed.oversize {
            let row = rows.get(i).to_vec();
            tracing::debug!(
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
        let queue: VecDeque<Job> = packed
            .batches
            .into_iter()
            .map(|rows| Job::new(rows, false))
            .collect();
        self.drive(sender, rows, queue, Narrowing::default(), report, start)
            .await
    }

    /// Send `queue`'s jobs (and what their outcomes call for: halves, splits, single rows)
    /// until every row is delivered, rejected or left for later; completes `report`.
    async fn drive<S: Sender>(
        &self,
        sender: &S,
        rows: &Rows<'_>,
        mut queue: VecDeque<Job>,
        mut narrowing: Narrowing,
        mut report: SendReport,
        start: Instant,
    ) -> SendReport {
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
                    let mut job = job;
                    queue.extend(narrowing.finished(job.half.take(), None));
                    later.extend(job.rows);
                    continue;
                }
                running.push(self.attempt(sender, rows, job, start));
            }
            let Some((mut job, outcome, requests)) = running.next().await else {
                let parked = narrowing.release();
                if parked.is_empty() {
                    break;
                }
                queue.extend(parked);
                continue;
            };
            report.requests += requests;
            let half = job.half.take();
            match outcome {
                Outcome::Delivered => {
                    report.delivered_rows += job.rows.len();
                    queue.extend(narrowing.finished(half, None));
                }
                Outcome::Split(jobs) => {
                    queue.extend(jobs);
                    queue.extend(narrowing.finished(half, None));
                }
                Outcome::Refused(error) => {
                    queue.extend(narrowing.finished(half, Some((job, error))));
                }
                Outcome::Reject(error) => {
                    queue.extend(narrowing.finished(half, None));
                    // Rows refused alone, or by a whole-request refusal.
                    reject_job(rows, job, &error, &mut report);
                }
                Outcome::RetryLater(error) => {
                    queue.extend(narrowing.finished(half, None));
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
        summarise_rejections(&report);
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
        let (tried, requests) = self.try_body(sender, &body, raw_len, start).await;
        match tried {
            Tried::Delivered => (job, Outcome::Delivered, requests),
            Tried::Later(error) => (job, Outcome::RetryLater(error), requests),
            Tried::Refused(action, error) => self.decide(rows, job, action, error, requests),
        }
    }

    /// Send one body until it is delivered, refused for its data or setup, or the retry
    /// budget is spent; returns what happened and the requests it took.
    async fn try_body<S: Sender>(
        &self,
        sender: &S,
        body: &Body,
        raw_len: usize,
        start: Instant,
    ) -> (Tried, usize) {
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
                sender.send(body).await
            };
            if let Some(observer) = &self.observer {
                match &result {
                    Ok(answer) => observer.answered(answer.status),
                    Err(error) => observer.failed(error),
                }
            }
            let (action, error) = match result {
                Ok(answer) => {
                    let action = classify(
                        self.api,
                        answer.status,
                        answer.code.as_deref(),
                        answer.retry_after,
                    );
                    (action, answer.into_error(action))
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
                Action::Delivered => return (Tried::Delivered, requests),
                Action::RefreshToken if !refreshed => {
                    // The sender dropped the refused token; try once more at once.
                    refreshed = true;
                    attempts -= 1;
                    continue;
                }
                Action::SplitHalves
                | Action::Bisect
                | Action::RejectRequest
                | Action::SplitByTime => return (Tried::Refused(action, error), requests),
                Action::RefreshToken | Action::ConfigError => {
                    tracing::error!(error = %error, "configuration or credential refused; retrying slowly");
                    self.retry.config_delay()
                }
                // Never sooner than the backoff: a `Retry-After: 0` (or a date in the past)
                // must not turn retries into a hot loop.
                Action::Transient { retry_after } => {
                    let backoff = self.retry.backoff(attempts, rand::random::<f64>());
                    retry_after.map_or(backoff, |wait| wait.max(backoff))
                }
            };
            if !self.retry.may_retry(attempts, start.elapsed(), delay) {
                tracing::warn!(error = %error, bytes = raw_len, "retry budget spent; rows returned for later");
                return (Tried::Later(error), requests);
            }
            tracing::debug!(error = %error, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// What a job refused for its data (or as a whole request) becomes.
    fn decide(
        &self,
        rows: &Rows<'_>,
        job: Job,
        action: Action,
        error: Error,
        requests: usize,
    ) -> (Job, Outcome, usize) {
        match action {
            Action::SplitHalves => self.split_or_reject(job, error, requests),
            Action::Bisect if job.rows.len() > 1 => (job, Outcome::Refused(error), requests),
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
                            .map(|rows| Job::new(rows, true))
                            .collect();
                        return (job, Outcome::Split(jobs), requests);
                    }
                }
                self.split_or_reject(job, error, requests)
            }
            _ => {
                tracing::debug!(error = %error, rows = job.rows.len(), "refused by the service; rejected");
                (job, Outcome::Reject(error), requests)
            }
        }
    }

    /// Send a body prepared ahead (see [`crate::PreparedBody`]) as it is. Only when the
    /// service refuses it for its data or its size is it decompressed and its rows split,
    /// bisected or sent one by one, as [`Engine::run`] does with rows.
    pub(crate) async fn run_prepared<S: Sender>(
        &self,
        sender: &S,
        prepared: &PreparedBody,
    ) -> PreparedReport {
        let start = Instant::now();
        let body = Body {
            bytes: prepared.bytes.clone(),
            gzipped: prepared.gzipped,
        };
        let (tried, requests) = self.try_body(sender, &body, prepared.raw_len, start).await;
        let (action, error) = match tried {
            Tried::Delivered => return PreparedReport::Delivered { requests },
            Tried::Later(error) => return PreparedReport::Later { error, requests },
            Tried::Refused(action, error) => (action, error),
        };
        let ndjson = match prepared.unpack(self.max_body) {
            Ok(n) => n,
            Err(why) => return PreparedReport::Corrupt { why, requests },
        };
        let rows = Rows::from_ndjson(&ndjson);
        let mut report = SendReport {
            requests,
            ..SendReport::default()
        };
        reject_invalid(&rows, &mut report);
        let job = Job::new(rows.valid_indices(), false);
        let mut narrowing = Narrowing::default();
        let mut queue = VecDeque::new();
        if !job.rows.is_empty() {
            let (job, outcome, _) = self.decide(&rows, job, action, error, 0);
            match outcome {
                Outcome::Split(jobs) => queue.extend(jobs),
                Outcome::Refused(error) => {
                    queue.extend(narrowing.finished(None, Some((job, error))))
                }
                Outcome::Reject(error) => reject_job(&rows, job, &error, &mut report),
                // decide never answers these.
                Outcome::Delivered | Outcome::RetryLater(_) => {}
            }
        }
        let report = self
            .drive(sender, &rows, queue, narrowing, report, start)
            .await;
        PreparedReport::Narrowed(report)
    }

    fn split_or_reject(&self, job: Job, error: Error, requests: usize) -> (Job, Outcome, usize) {
        if job.rows.len() > 1 {
            let mid = job.rows.len() / 2;
            let right = job.rows[mid..].to_vec();
            let left = job.rows[..mid].to_vec();
            let jobs = vec![
                Job::new(left, job.time_split),
                Job::new(right, job.time_split),
            ];
            (job, Outcome::Split(jobs), requests)
        } else {
            tracing::debug!(error = %error, "row refused by the service; rejected");
            (job, Outcome::Reject(error), requests)
        }
    }
}

/// Rows that are not JSON objects: rejected without being sent.
fn reject_invalid(rows: &Rows<'_>, report: &mut SendReport) {
    for (i, why) in rows.invalid() {
        report.rejected.push(RejectedRow {
            index: *i,
            row: rows.get(*i).to_vec(),
            reason: RejectReason::Invalid(why.clone()),
        });
    }
}

/// Every row of `job`, refused with `error`.
fn reject_job(rows: &Rows<'_>, job: Job, error: &Error, report: &mut SendReport) {
    for i in job.rows {
        report.rejected.push(RejectedRow {
            index: i,
            row: rows.get(i).to_vec(),
            reason: RejectReason::Refused(clone_error(error)),
        });
    }
}

/// One warning per send for all its rejected rows, counted by reason (status and code for
/// refusals), instead of one per row.
fn summarise_rejections(report: &SendReport) {
    if report.rejected.is_empty() {
        return;
    }
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for r in &report.rejected {
        let key = match &r.reason {
            RejectReason::Refused(e) => match (e.status(), e.code()) {
                (Some(s), Some(c)) => format!("HTTP {s} {c}"),
                (Some(s), None) => format!("HTTP {s}"),
                (None, Some(c)) => c.to_owned(),
                (None, None) => "refused".to_owned(),
            },
            RejectReason::TooLarge { .. } => "too large".to_owned(),
            RejectReason::Invalid(_) => "not a JSON object".to_owned(),
        };
        *by_reason.entry(key).or_default() += 1;
    }
    let summary = by_reason
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    tracing::warn!(
        rows = report.rejected.len(),
        requests = report.requests,
        by_reason = %summary,
        "rows rejected"
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Refuses (400 with `code`) any request holding a row with `"bad":true`.
    struct Fake {
        requests: AtomicUsize,
        code: &'static str,
        sizes: Mutex<Vec<usize>>,
        /// More rows than this in one request: 413.
        max_rows: usize,
    }

    impl Fake {
        fn new(code: &'static str) -> Self {
            Self {
                requests: AtomicUsize::new(0),
                code,
                sizes: Mutex::new(Vec::new()),
                max_rows: usize::MAX,
            }
        }
    }

    impl Sender for Fake {
        async fn send(&self, body: &Body) -> Result<Answer, Error> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let raw = if body.gzipped {
                let mut out = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&body.bytes[..]),
                    &mut out,
                )
                .unwrap();
                out
            } else {
                body.bytes.to_vec()
            };
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&raw).unwrap();
            self.sizes.lock().unwrap().push(rows.len());
            if rows.len() > self.max_rows {
                return Ok(Answer {
                    status: 413,
                    code: None,
                    message: None,
                    retry_after: None,
                });
            }
            let bad = rows.iter().any(|r| r["bad"] == true);
            Ok(Answer {
                status: if bad { 400 } else { 204 },
                code: bad.then(|| self.code.to_owned()),
                message: None,
                retry_after: None,
            })
        }
    }

    fn engine() -> Engine {
        Engine {
            api: Api::LogsIngestion,
            max_body: 1_000_000,
            gzip_level: None,
            max_in_flight: 4,
            semaphore: Arc::new(Semaphore::new(4)),
            retry: RetryPolicy::no_retry(),
            limiter: None,
            time_field: "TimeGenerated".into(),
            observer: None,
        }
    }

    fn ndjson(bad: impl Fn(usize) -> bool, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(format!("{{\"i\":{i},\"bad\":{}}}\n", bad(i)).as_bytes());
        }
        out
    }

    async fn run(bad: impl Fn(usize) -> bool, n: usize, code: &'static str) -> (SendReport, Fake) {
        let fake = Fake::new(code);
        let text = ndjson(bad, n);
        let rows = Rows::from_ndjson(&text);
        let report = engine().run(&fake, &rows).await;
        (report, fake)
    }

    fn rejected(report: &SendReport) -> Vec<usize> {
        report.rejected.iter().map(|r| r.index).collect()
    }

    #[tokio::test]
    async fn all_rows_refused_costs_about_n_not_2n() {
        let (report, fake) = run(|_| true, 64, "InvalidPayload").await;
        assert_eq!(report.rejected.len(), 64);
        assert_eq!(report.delivered_rows, 0);
        // 1 (64) + 2 (32 + 32, both refused alike) + 64 singles; bisection took 127.
        assert_eq!(report.requests, 67);
        assert_eq!(fake.requests.load(Ordering::SeqCst), 67);
        // Every rejected row was refused alone.
        let singles = fake
            .sizes
            .lock()
            .unwrap()
            .iter()
            .filter(|&&n| n == 1)
            .count();
        assert_eq!(singles, 64);
        // 1,000 rows: halved down to pieces of 32 or fewer, then one by one.
        let (report, _) = run(|_| true, 1000, "InvalidPayload").await;
        assert_eq!(report.rejected.len(), 1000);
        assert!(
            report.requests <= 1000 + 2 * 1000 / 16,
            "{}",
            report.requests
        );
    }

    /// Counts warning events per thread. Installed as the global subscriber: a scoped one
    /// races with the callsite interest cache of tests running on other threads.
    struct Warnings;

    static WARNINGS: Mutex<Vec<(std::thread::ThreadId, usize)>> = Mutex::new(Vec::new());

    fn warnings_here() -> usize {
        let me = std::thread::current().id();
        let all = WARNINGS.lock().unwrap();
        all.iter().find(|(t, _)| *t == me).map_or(0, |(_, n)| *n)
    }

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                let me = std::thread::current().id();
                let mut all = WARNINGS.lock().unwrap();
                match all.iter_mut().find(|(t, _)| *t == me) {
                    Some((_, n)) => *n += 1,
                    None => all.push((me, 1)),
                }
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_summary_warning_per_send_not_one_per_row() {
        let _ = tracing::subscriber::set_global_default(Warnings);
        let before = warnings_here();
        let (report, _) = run(|i| i % 3 != 0, 64, "InvalidPayload").await;
        assert_eq!(report.rejected.len(), 42);
        assert_eq!(warnings_here() - before, 1);
        let (report, _) = run(|_| false, 8, "InvalidPayload").await;
        assert!(report.is_complete());
        assert_eq!(warnings_here() - before, 1);
    }

    #[tokio::test]
    async fn one_good_row_among_bad_ones_is_delivered() {
        for good in [0, 17, 63] {
            let (report, _) = run(|i| i != good, 64, "InvalidPayload").await;
            assert_eq!(report.delivered_rows, 1, "good row {good}");
            assert_eq!(report.rejected.len(), 63);
            assert!(!rejected(&report).contains(&good));
            assert!(report.requests <= 67, "{}", report.requests);
            assert!(report.is_settled());
        }
    }

    #[tokio::test]
    async fn few_bad_rows_are_still_found_by_bisection() {
        // One bad row among 1,000: about 2·log2(1000) requests, never row by row.
        let (report, fake) = run(|i| i == 500, 1000, "InvalidPayload").await;
        assert_eq!(rejected(&report), [500]);
        assert_eq!(report.delivered_rows, 999);
        assert!(report.requests <= 2 * 10 + 1, "{}", report.requests);
        let singles = fake
            .sizes
            .lock()
            .unwrap()
            .iter()
            .filter(|&&n| n == 1)
            .count();
        assert!(singles <= 2, "{singles}");
        // Two bad rows far apart in a large batch: still bisection.
        let (report, _) = run(|i| i == 10 || i == 900, 1000, "InvalidPayload").await;
        assert_eq!(rejected(&report), [10, 900]);
        assert!(report.requests <= 4 * 10 + 1, "{}", report.requests);
    }

    #[tokio::test]
    async fn whole_request_refusal_rejects_every_row_in_one_request() {
        let (report, fake) = run(|_| true, 64, "InvalidContentEncoding").await;
        assert_eq!(report.rejected.len(), 64);
        assert_eq!(report.requests, 1);
        assert_eq!(fake.requests.load(Ordering::SeqCst), 1);
        assert!(report.rejected.iter().all(|r| matches!(
            &r.reason,
            RejectReason::Refused(e) if e.code() == Some("InvalidContentEncoding")
        )));
    }

    #[tokio::test]
    async fn setup_codes_reject_nothing() {
        let (report, _) = run(|_| true, 8, "UnsupportedApiVersion").await;
        assert!(report.rejected.is_empty());
        let later = report.retry_later.expect("kept for later");
        assert_eq!(later.rows.len(), 8);
        assert!(later.error.is_config());
        assert_eq!(report.requests, 1);
    }

    fn prepared(text: &[u8], gzip_level: Option<u32>) -> PreparedBody {
        let p = crate::prepared::prepare(text, 1_000_000, gzip_level);
        assert_eq!(p.bodies.len(), 1);
        p.bodies.into_iter().next().unwrap()
    }

    #[tokio::test]
    async fn a_prepared_body_goes_out_as_it_is_in_one_request() {
        let fake = Fake::new("InvalidPayload");
        let body = prepared(&ndjson(|_| false, 200), Some(3));
        let r = engine().run_prepared(&fake, &body).await;
        assert!(
            matches!(r, PreparedReport::Delivered { requests: 1 }),
            "{r:?}"
        );
        assert_eq!(*fake.sizes.lock().unwrap(), vec![200]);
    }

    #[tokio::test]
    async fn a_refused_prepared_body_is_opened_and_bisected() {
        let fake = Fake::new("InvalidPayload");
        let body = prepared(&ndjson(|i| i == 17 || i == 150, 200), Some(3));
        let PreparedReport::Narrowed(report) = engine().run_prepared(&fake, &body).await else {
            panic!("narrowed down");
        };
        assert_eq!(rejected(&report), vec![17, 150]);
        assert_eq!(report.delivered_rows, 198);
        assert!(report.retry_later.is_none());
        assert_eq!(report.requests, fake.requests.load(Ordering::SeqCst));
        let row: serde_json::Value = serde_json::from_slice(&report.rejected[0].row).unwrap();
        assert_eq!(row["i"], 17);
    }

    #[tokio::test]
    async fn a_prepared_body_too_large_for_the_service_is_split() {
        let mut fake = Fake::new("InvalidPayload");
        fake.max_rows = 60;
        let body = prepared(&ndjson(|_| false, 200), None);
        let PreparedReport::Narrowed(report) = engine().run_prepared(&fake, &body).await else {
            panic!("narrowed down");
        };
        assert_eq!(report.delivered_rows, 200);
        assert!(report.rejected.is_empty());
        // 200 (413), 100 + 100 (413 each), then four quarters of 50.
        assert_eq!(
            *fake.sizes.lock().unwrap(),
            vec![200, 100, 100, 50, 50, 50, 50]
        );
    }

    #[tokio::test]
    async fn a_refused_body_that_cannot_be_opened_is_reported_corrupt() {
        // A body cut short, as a damaged spool body would be: refused, and not an array.
        let corrupt = PreparedBody::new(Bytes::from_static(b"[{\"bad\":true},"), false, 1, 15);
        let r = engine().run_prepared(&FakeAnswer(400), &corrupt).await;
        assert!(
            matches!(r, PreparedReport::Corrupt { requests: 1, .. }),
            "{r:?}"
        );
    }

    /// Answers every request with one status.
    struct FakeAnswer(u16);

    impl Sender for FakeAnswer {
        async fn send(&self, _body: &Body) -> Result<Answer, Error> {
            Ok(Answer {
                status: self.0,
                code: Some("InvalidPayload".into()),
                message: None,
                retry_after: None,
            })
        }
    }
}
