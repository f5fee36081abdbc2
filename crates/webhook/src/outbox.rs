//! The durable outbox: one file per message under `DIR/pending/`, given up messages under
//! `DIR/dead/`.
//!
//! A message file is one JSON header line (`{"v":1,"id",…,"attempts","next_attempt_ms"}`)
//! followed by the body bytes verbatim. It is written as `NAME.tmp`, fsynced, renamed to
//! `NAME.msg`, and the directory is fsynced before [`Outbox::enqueue`] returns: a message that
//! was enqueued survives a crash. Rescheduling rewrites the file the same way, so a file is
//! always either its old or its new version. The file name is a hash of (endpoint, id), so one
//! alert id can go to several endpoints, and enqueueing the same pair again while it is pending
//! is a no-op ([`Enqueued::AlreadyQueued`]).
//!
//! The calls here do blocking file I/O (fsync); from async code call them through
//! `tokio::task::spawn_blocking`, or accept the few milliseconds.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::sign::MAX_ID_BYTES;

/// The longest endpoint name, in bytes.
pub const MAX_ENDPOINT_NAME_BYTES: usize = 128;
/// The longest header line a message file may have, in bytes.
const MAX_HEADER_BYTES: usize = 4096;

/// The outbox's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Pending messages at most; enqueue refuses past it.
    pub max_messages: usize,
    /// Pending bytes (files on disk) at most; enqueue refuses past it.
    pub max_bytes: u64,
    /// The largest body accepted.
    pub max_body_bytes: usize,
    /// Messages kept in `dead/` at most: past it the oldest are removed, and counted
    /// ([`OutboxSnapshot::dead_pruned`]), so a receiver refusing everything cannot fill the
    /// disk.
    pub max_dead_messages: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_messages: 10_000,
            max_bytes: 64 << 20,
            max_body_bytes: 1 << 20,
            max_dead_messages: 10_000,
        }
    }
}

/// What an outbox call failed on. Carries no body bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// A file operation failed.
    #[error("outbox: {op} {path}: {source}")]
    Io {
        /// The operation (`"create"`, `"fsync"`, `"rename"`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The outbox holds `max_messages` messages already.
    #[error("outbox full: {pending} messages pending, at most {max}")]
    FullMessages {
        /// Messages pending.
        pending: usize,
        /// The bound.
        max: usize,
    },
    /// The message would take the outbox past `max_bytes`.
    #[error("outbox full: {pending_bytes} bytes pending + {len} would pass the bound of {max}")]
    FullBytes {
        /// Bytes pending.
        pending_bytes: u64,
        /// The message's file size.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// A body over `max_body_bytes`.
    #[error("webhook body of {len} bytes is over the limit of {max}")]
    BodyTooLarge {
        /// The body's length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A message id that is empty, too long, or holds a byte that is not visible ASCII.
    #[error("bad message id at byte {offset} (1 to 256 visible ASCII characters)")]
    BadId {
        /// Byte offset of the offending byte.
        offset: usize,
    },
    /// Another `Outbox` (this process or another) holds the directory's lock file.
    #[error("the webhook outbox {} is in use by another outbox (it holds {}): give each instance its own directory", dir.display(), lock.display())]
    InUse {
        /// The outbox directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// An endpoint name that is empty, too long, or holds a control character.
    #[error("bad endpoint name at byte {offset}")]
    BadEndpointName {
        /// Byte offset of the offending byte.
        offset: usize,
    },
}

/// What [`Outbox::enqueue_with_id`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Written and fsynced.
    Queued,
    /// The same (endpoint, id) was pending already; nothing was written.
    AlreadyQueued,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    v: u32,
    id: String,
    endpoint: String,
    attempts: u32,
    next_attempt_ms: u64,
    created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    endpoint: String,
    attempts: u32,
    next_attempt_ms: u64,
    created_ms: u64,
    file_bytes: u64,
    in_flight: bool,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    bytes: u64,
}

/// Counters of the outbox itself.
#[derive(Debug, Default)]
struct Counters {
    enqueued: AtomicU64,
    duplicates: AtomicU64,
    rejected_full: AtomicU64,
    rejected_invalid: AtomicU64,
    corrupt: AtomicU64,
    dead_lettered: AtomicU64,
    dead_pruned: AtomicU64,
    io_errors: AtomicU64,
}

/// A point-in-time copy of the outbox's counters and gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxSnapshot {
    /// Messages written by enqueue.
    pub enqueued: u64,
    /// Enqueues of a pending (endpoint, id), not written again.
    pub duplicates: u64,
    /// Enqueues refused because the outbox was full.
    pub rejected_full: u64,
    /// Enqueues refused for a bad id, endpoint name or body size.
    pub rejected_invalid: u64,
    /// Unreadable message files found on open, moved to `dead/`.
    pub corrupt: u64,
    /// Messages moved to `dead/` (given up or refused by the receiver).
    pub dead_lettered: u64,
    /// The oldest messages of `dead/` removed to keep it within
    /// [`OutboxLimits::max_dead_messages`].
    pub dead_pruned: u64,
    /// File operations that failed.
    pub io_errors: u64,
    /// Messages pending now.
    pub pending_messages: u64,
    /// Bytes pending now.
    pub pending_bytes: u64,
    /// Pending messages by endpoint name, sorted by name.
    pub pending_by_endpoint: Vec<(String, u64)>,
}

/// A message handed to the delivery worker; it stays on disk until
/// [`Outbox::complete`], [`Outbox::reschedule`] or [`Outbox::dead_letter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    key: String,
    /// The message id (`webhook-id`).
    pub id: String,
    /// The endpoint name.
    pub endpoint: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// The durable outbox. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Outbox {
    pending_dir: PathBuf,
    dead_dir: PathBuf,
    limits: OutboxLimits,
    state: Mutex<State>,
    counters: Counters,
    wake: tokio::sync::Notify,
    /// `DIR/lock`, locked (`flock`) while this outbox is open.
    _lock: fs::File,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutboxError + 'a {
    move |source| OutboxError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn fsync_dir(dir: &Path) -> Result<(), OutboxError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Checks a message id: 1 to [`MAX_ID_BYTES`] bytes of visible ASCII (it goes into a header).
pub fn check_id(id: &str) -> Result<(), OutboxError> {
    if id.is_empty() {
        return Err(OutboxError::BadId { offset: 0 });
    }
    if id.len() > MAX_ID_BYTES {
        return Err(OutboxError::BadId {
            offset: MAX_ID_BYTES,
        });
    }
    match id.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
        Some(offset) => Err(OutboxError::BadId { offset }),
        None => Ok(()),
    }
}

fn check_endpoint_name(name: &str) -> Result<(), OutboxError> {
    if name.is_empty() {
        return Err(OutboxError::BadEndpointName { offset: 0 });
    }
    if name.len() > MAX_ENDPOINT_NAME_BYTES {
        return Err(OutboxError::BadEndpointName {
            offset: MAX_ENDPOINT_NAME_BYTES,
        });
    }
    match name.char_indices().find(|(_, c)| c.is_control()) {
        Some((offset, _)) => Err(OutboxError::BadEndpointName { offset }),
        None => Ok(()),
    }
}

/// A new message id: `msg_` and 24 random alphanumerics (about 143 bits).
pub fn new_message_id() -> String {
    let mut id = String::with_capacity(28);
    id.push_str("msg_");
    let mut rng = rand::thread_rng();
    for _ in 0..24 {
        id.push(char::from(rng.sample(rand::distributions::Alphanumeric)));
    }
    id
}

fn file_key(endpoint: &str, id: &str) -> String {
    let mut h = Sha256::new();
    h.update(endpoint.as_bytes());
    h.update([0u8]);
    h.update(id.as_bytes());
    let digest = h.finalize();
    let mut key = String::with_capacity(32);
    for b in &digest[..16] {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

fn encode(header: &Header, body: &[u8]) -> Vec<u8> {
    // A header of strings and integers always serialises.
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Splits a message file into its header and body. `None` if it is not one.
fn decode(bytes: &[u8]) -> Option<(Header, &[u8])> {
    let nl = bytes
        .iter()
        .take(MAX_HEADER_BYTES)
        .position(|&b| b == b'\n')?;
    let header: Header = serde_json::from_slice(&bytes[..nl]).ok()?;
    if header.v != 1
        || check_id(&header.id).is_err()
        || check_endpoint_name(&header.endpoint).is_err()
    {
        return None;
    }
    Some((header, &bytes[nl + 1..]))
}

/// Writes `bytes` to `dir/name` through `name.tmp`, with fsyncs of the file and the directory.
fn write_durable(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), OutboxError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    fsync_dir(dir)
}

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir` and loads every pending message. The
    /// directory is locked while the outbox is open: a second open fails with
    /// [`OutboxError::InUse`] (two instances would deliver everything twice). Files
    /// that are not message files are moved to `dead/` with a `.corrupt` suffix and counted;
    /// leftover `.tmp` files (a write cut by a crash, never acknowledged) are removed. Pending
    /// messages beyond the limits are kept: only new enqueues are refused.
    pub fn open(dir: impl AsRef<Path>, limits: OutboxLimits) -> Result<Outbox, OutboxError> {
        let dir = dir.as_ref();
        let pending_dir = dir.join("pending");
        let dead_dir = dir.join("dead");
        fs::create_dir_all(&pending_dir).map_err(io_err("create", &pending_dir))?;
        fs::create_dir_all(&dead_dir).map_err(io_err("create", &dead_dir))?;
        let lock_path = dir.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("create", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(OutboxError::InUse {
                    dir: dir.to_owned(),
                    lock: lock_path,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        let outbox = Outbox {
            pending_dir,
            dead_dir,
            limits,
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            wake: tokio::sync::Notify::new(),
            _lock: lock,
        };
        outbox.load()?;
        Ok(outbox)
    }

    fn load(&self) -> Result<(), OutboxError> {
        let dir = &self.pending_dir;
        let mut state = self.lock();
        for item in fs::read_dir(dir).map_err(io_err("read", dir))? {
            let item = item.map_err(io_err("read", dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let path = item.path();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(key) = name.strip_suffix(".msg") else {
                continue;
            };
            let limit = self.limits.max_body_bytes.max(1 << 20) + MAX_HEADER_BYTES;
            let mut bytes = Vec::new();
            let read = fs::File::open(&path)
                .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes));
            if read.is_err() {
                self.counters.io_errors.fetch_add(1, Relaxed);
                continue;
            }
            let decoded = decode(&bytes)
                .filter(|(h, _)| bytes.len() <= limit && file_key(&h.endpoint, &h.id) == key);
            let Some((header, _)) = decoded else {
                self.counters.corrupt.fetch_add(1, Relaxed);
                let to = self.dead_dir.join(format!("{name}.corrupt"));
                if fs::rename(&path, &to).is_err() {
                    self.counters.io_errors.fetch_add(1, Relaxed);
                }
                continue;
            };
            let file_bytes = bytes.len() as u64;
            state.bytes += file_bytes;
            state.entries.insert(
                key.to_owned(),
                Entry {
                    id: header.id,
                    endpoint: header.endpoint,
                    attempts: header.attempts,
                    next_attempt_ms: header.next_attempt_ms,
                    created_ms: header.created_ms,
                    file_bytes,
                    in_flight: false,
                },
            );
        }
        drop(state);
        fsync_dir(&self.dead_dir)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the index consistent (updates are single
        // assignments after the file work), so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enqueues `body` for `endpoint` under a new id; returns the id once the message is on
    /// disk (fsynced).
    pub fn enqueue(&self, endpoint: &str, body: &[u8]) -> Result<String, OutboxError> {
        let id = new_message_id();
        self.enqueue_with_id(endpoint, &id, body)?;
        Ok(id)
    }

    /// Enqueues `body` for `endpoint` under the caller's `id` (an alert's stable id, say). It
    /// becomes the `webhook-id` of every attempt. A pending (endpoint, id) is not written twice.
    pub fn enqueue_with_id(
        &self,
        endpoint: &str,
        id: &str,
        body: &[u8],
    ) -> Result<Enqueued, OutboxError> {
        let checked = check_endpoint_name(endpoint).and_then(|()| check_id(id));
        if let Err(e) = checked {
            self.counters.rejected_invalid.fetch_add(1, Relaxed);
            return Err(e);
        }
        if body.len() > self.limits.max_body_bytes {
            self.counters.rejected_invalid.fetch_add(1, Relaxed);
            return Err(OutboxError::BodyTooLarge {
                len: body.len(),
                max: self.limits.max_body_bytes,
            });
        }
        let key = file_key(endpoint, id);
        let now = now_ms();
        let header = Header {
            v: 1,
            id: id.to_owned(),
            endpoint: endpoint.to_owned(),
            attempts: 0,
            next_attempt_ms: now,
            created_ms: now,
            reason: None,
        };
        let bytes = encode(&header, body);
        let len = bytes.len() as u64;
        {
            // Reserve the slot under the lock; the write happens outside it.
            let mut state = self.lock();
            if state.entries.contains_key(&key) {
                self.counters.duplicates.fetch_add(1, Relaxed);
                return Ok(Enqueued::AlreadyQueued);
            }
            if state.entries.len() >= self.limits.max_messages {
                self.counters.rejected_full.fetch_add(1, Relaxed);
                return Err(OutboxError::FullMessages {
                    pending: state.entries.len(),
                    max: self.limits.max_messages,
                });
            }
            if state.bytes.saturating_add(len) > self.limits.max_bytes {
                self.counters.rejected_full.fetch_add(1, Relaxed);
                return Err(OutboxError::FullBytes {
                    pending_bytes: state.bytes,
                    len,
                    max: self.limits.max_bytes,
                });
            }
            state.bytes += len;
            state.entries.insert(
                key.clone(),
                Entry {
                    id: header.id.clone(),
                    endpoint: header.endpoint.clone(),
                    attempts: 0,
                    next_attempt_ms: now,
                    created_ms: now,
                    file_bytes: len,
                    // Not deliverable until it is on disk.
                    in_flight: true,
                },
            );
        }
        if let Err(e) = write_durable(&self.pending_dir, &format!("{key}.msg"), &bytes) {
            self.counters.io_errors.fetch_add(1, Relaxed);
            let mut state = self.lock();
            if state.entries.remove(&key).is_some() {
                state.bytes = state.bytes.saturating_sub(len);
            }
            return Err(e);
        }
        if let Some(entry) = self.lock().entries.get_mut(&key) {
            entry.in_flight = false;
        }
        self.counters.enqueued.fetch_add(1, Relaxed);
        self.wake.notify_one();
        Ok(Enqueued::Queued)
    }

    /// Claims up to `max` messages due at `now_ms` whose endpoint `deliverable` accepts,
    /// oldest due first. Claimed messages are not handed out again until released.
    pub fn take_due(
        &self,
        now_ms: u64,
        max: usize,
        deliverable: impl Fn(&str) -> bool,
    ) -> Vec<Claim> {
        let mut state = self.lock();
        let mut due: Vec<(&String, &Entry)> = state
            .entries
            .iter()
            .filter(|(_, e)| {
                !e.in_flight && e.next_attempt_ms <= now_ms && deliverable(&e.endpoint)
            })
            .collect();
        due.sort_by_key(|(_, e)| (e.next_attempt_ms, e.created_ms));
        let keys: Vec<String> = due.into_iter().take(max).map(|(k, _)| k.clone()).collect();
        let mut claims = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(e) = state.entries.get_mut(&key) {
                e.in_flight = true;
                claims.push(Claim {
                    key,
                    id: e.id.clone(),
                    endpoint: e.endpoint.clone(),
                    attempts: e.attempts,
                });
            }
        }
        claims
    }

    /// The earliest next-attempt time among unclaimed messages of endpoints `deliverable`
    /// accepts.
    pub fn next_due_ms(&self, deliverable: impl Fn(&str) -> bool) -> Option<u64> {
        self.lock()
            .entries
            .values()
            .filter(|e| !e.in_flight && deliverable(&e.endpoint))
            .map(|e| e.next_attempt_ms)
            .min()
    }

    /// Waits until a message is enqueued (a wake-up is kept if none is waiting).
    pub async fn enqueued(&self) {
        self.wake.notified().await;
    }

    /// Reads a claimed message's body from disk.
    pub fn read_body(&self, claim: &Claim) -> Result<Vec<u8>, OutboxError> {
        let path = self.pending_dir.join(format!("{}.msg", claim.key));
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        match decode(&bytes) {
            Some((_, body)) => Ok(body.to_vec()),
            None => Err(OutboxError::Io {
                op: "decode",
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "not a message file"),
            }),
        }
    }

    /// Delivered: removes the message file (and the directory entry, fsynced).
    pub fn complete(&self, claim: &Claim) -> Result<(), OutboxError> {
        let path = self.pending_dir.join(format!("{}.msg", claim.key));
        let removed = match fs::remove_file(&path) {
            Ok(()) => fsync_dir(&self.pending_dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        };
        if removed.is_err() {
            self.counters.io_errors.fetch_add(1, Relaxed);
        }
        self.forget(claim);
        removed
    }

    fn forget(&self, claim: &Claim) {
        let mut state = self.lock();
        if let Some(e) = state.entries.remove(&claim.key) {
            state.bytes = state.bytes.saturating_sub(e.file_bytes);
        }
    }

    /// Records `attempts` and the next attempt time on disk, and releases the claim.
    pub fn reschedule(
        &self,
        claim: &Claim,
        attempts: u32,
        next_attempt_ms: u64,
    ) -> Result<(), OutboxError> {
        let result = self.rewrite(claim, attempts, next_attempt_ms);
        let mut state = self.lock();
        if let Some(e) = state.entries.get_mut(&claim.key) {
            e.attempts = attempts;
            e.next_attempt_ms = next_attempt_ms;
            e.in_flight = false;
        }
        if result.is_err() {
            self.counters.io_errors.fetch_add(1, Relaxed);
        }
        result
    }

    fn rewrite(
        &self,
        claim: &Claim,
        attempts: u32,
        next_attempt_ms: u64,
    ) -> Result<(), OutboxError> {
        let name = format!("{}.msg", claim.key);
        let path = self.pending_dir.join(&name);
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        let Some((mut header, body)) = decode(&bytes) else {
            return Err(OutboxError::Io {
                op: "decode",
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "not a message file"),
            });
        };
        header.attempts = attempts;
        header.next_attempt_ms = next_attempt_ms;
        write_durable(&self.pending_dir, &name, &encode(&header, body))
    }

    /// Releases a claim without recording an attempt (shutdown during a delivery).
    pub fn release(&self, claim: &Claim) {
        if let Some(e) = self.lock().entries.get_mut(&claim.key) {
            e.in_flight = false;
        }
    }

    /// Gives up on a message: it moves to `dead/` with `reason` and `attempts` in its header.
    pub fn dead_letter(
        &self,
        claim: &Claim,
        attempts: u32,
        reason: &str,
    ) -> Result<(), OutboxError> {
        let name = format!("{}.msg", claim.key);
        let path = self.pending_dir.join(&name);
        let result = (|| {
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            let Some((mut header, body)) = decode(&bytes) else {
                return Err(OutboxError::Io {
                    op: "decode",
                    path: path.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidData, "not a message file"),
                });
            };
            header.attempts = attempts;
            header.reason = Some(reason.to_owned());
            write_durable(&self.dead_dir, &name, &encode(&header, body))?;
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            fsync_dir(&self.pending_dir)?;
            self.prune_dead()
        })();
        self.counters.dead_lettered.fetch_add(1, Relaxed);
        if result.is_err() {
            self.counters.io_errors.fetch_add(1, Relaxed);
        }
        self.forget(claim);
        result
    }

    /// Removes the oldest messages of `dead/` (by modification time, then name) past
    /// [`OutboxLimits::max_dead_messages`].
    fn prune_dead(&self) -> Result<(), OutboxError> {
        let dir = &self.dead_dir;
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
            .map_err(io_err("read_dir", dir))?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "msg"))
            .map(|e| {
                let modified = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, e.path())
            })
            .collect();
        let excess = files.len().saturating_sub(self.limits.max_dead_messages);
        if excess == 0 {
            return Ok(());
        }
        files.sort();
        for (_, path) in files.into_iter().take(excess) {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            self.counters.dead_pruned.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Pending messages (in flight included).
    pub fn pending(&self) -> usize {
        self.lock().entries.len()
    }

    /// Pending messages of one endpoint.
    pub fn pending_for(&self, endpoint: &str) -> usize {
        self.lock()
            .entries
            .values()
            .filter(|e| e.endpoint == endpoint)
            .count()
    }

    /// The directory of given-up messages.
    pub fn dead_dir(&self) -> &Path {
        &self.dead_dir
    }

    /// The counters and gauges, now.
    pub fn snapshot(&self) -> OutboxSnapshot {
        let (pending_messages, pending_bytes, mut by) = {
            let state = self.lock();
            let mut by: HashMap<&str, u64> = HashMap::new();
            for e in state.entries.values() {
                *by.entry(e.endpoint.as_str()).or_default() += 1;
            }
            let by: Vec<(String, u64)> = by.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            (state.entries.len() as u64, state.bytes, by)
        };
        by.sort();
        let c = &self.counters;
        OutboxSnapshot {
            enqueued: c.enqueued.load(Relaxed),
            duplicates: c.duplicates.load(Relaxed),
            rejected_full: c.rejected_full.load(Relaxed),
            rejected_invalid: c.rejected_invalid.load(Relaxed),
            corrupt: c.corrupt.load(Relaxed),
            dead_lettered: c.dead_lettered.load(Relaxed),
            dead_pruned: c.dead_pruned.load(Relaxed),
            io_errors: c.io_errors.load(Relaxed),
            pending_messages,
            pending_bytes,
            pending_by_endpoint: by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> OutboxLimits {
        OutboxLimits {
            max_messages: 3,
            max_bytes: 1 << 20,
            max_body_bytes: 1000,
            max_dead_messages: 2,
        }
    }

    #[test]
    fn enqueue_is_on_disk_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), small()).unwrap();
        let id = ob.enqueue("soc", br#"{"a":1}"#).unwrap();
        assert!(id.starts_with("msg_") && id.len() == 28);
        assert_eq!(
            ob.enqueue_with_id("soc", "alert-1", b"{}").unwrap(),
            Enqueued::Queued
        );
        assert_eq!(
            ob.enqueue_with_id("soc", "alert-1", b"{}").unwrap(),
            Enqueued::AlreadyQueued
        );
        // The same alert id for another endpoint is another message.
        assert_eq!(
            ob.enqueue_with_id("ticket", "alert-1", b"{}").unwrap(),
            Enqueued::Queued
        );
        drop(ob);
        let files = fs::read_dir(dir.path().join("pending")).unwrap().count();
        assert_eq!(files, 3);
        let ob = Outbox::open(dir.path(), small()).unwrap();
        // The directory is locked while open.
        let again = Outbox::open(dir.path(), small()).unwrap_err();
        assert!(matches!(again, OutboxError::InUse { .. }), "{again}");
        assert_eq!(ob.pending(), 3);
        assert_eq!(ob.pending_for("soc"), 2);
        let claims = ob.take_due(u64::MAX, 10, |e| e == "soc");
        assert_eq!(claims.len(), 2);
        let with_body = claims.iter().find(|c| c.id == id).unwrap();
        assert_eq!(ob.read_body(with_body).unwrap(), br#"{"a":1}"#);
        // Claimed messages are not handed out twice.
        assert!(ob.take_due(u64::MAX, 10, |e| e == "soc").is_empty());
    }

    #[test]
    fn bounds_refuse_with_a_clear_error_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), small()).unwrap();
        for _ in 0..3 {
            ob.enqueue("soc", b"{}").unwrap();
        }
        let e = ob.enqueue("soc", b"{}").unwrap_err();
        assert!(
            matches!(e, OutboxError::FullMessages { pending: 3, max: 3 }),
            "{e}"
        );
        assert!(e.to_string().contains("outbox full"));
        let e = ob.enqueue("soc", &[b' '; 1001]).unwrap_err();
        assert!(matches!(
            e,
            OutboxError::BodyTooLarge {
                len: 1001,
                max: 1000
            }
        ));
        let e = ob.enqueue_with_id("soc", "has space", b"{}").unwrap_err();
        assert!(matches!(e, OutboxError::BadId { offset: 3 }));
        let snap = ob.snapshot();
        assert_eq!(snap.rejected_full, 1);
        assert_eq!(snap.rejected_invalid, 2);
        assert_eq!(snap.enqueued, 3);

        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(
            dir.path(),
            OutboxLimits {
                max_messages: 100,
                max_bytes: 300,
                max_body_bytes: 1000,
                max_dead_messages: 10,
            },
        )
        .unwrap();
        ob.enqueue("soc", &[b'x'; 100]).unwrap();
        let e = ob.enqueue("soc", &[b'x'; 100]).unwrap_err();
        assert!(matches!(e, OutboxError::FullBytes { max: 300, .. }), "{e}");
    }

    #[test]
    fn dead_keeps_the_newest_messages_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), small()).unwrap();
        for round in 0..2 {
            for id in ["a", "b", "c"] {
                ob.enqueue_with_id("soc", &format!("{id}{round}"), b"{}")
                    .unwrap();
            }
            let claims = ob.take_due(u64::MAX, 10, |_| true);
            for c in &claims {
                ob.dead_letter(c, 1, "http 404").unwrap();
                // Distinct modification times, so "oldest" is well defined.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let left: Vec<_> = std::fs::read_dir(ob.dead_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "msg"))
            .collect();
        assert_eq!(left.len(), 2, "max_dead_messages of small()");
        let snap = ob.snapshot();
        assert_eq!((snap.dead_lettered, snap.dead_pruned), (6, 4));
        // The two kept are of the last round.
        for p in left {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                text.contains("\"id\":\"b1\"")
                    || text.contains("\"id\":\"c1\"")
                    || text.contains("\"id\":\"a1\""),
                "{text}"
            );
        }
    }

    #[test]
    fn reschedule_dead_letter_complete_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), small()).unwrap();
        ob.enqueue_with_id("soc", "a", b"{\"n\":1}").unwrap();
        ob.enqueue_with_id("soc", "b", b"{\"n\":2}").unwrap();
        let mut claims = ob.take_due(u64::MAX, 10, |_| true);
        claims.sort_by(|x, y| x.id.cmp(&y.id));
        ob.reschedule(&claims[0], 2, 5_000).unwrap();
        ob.dead_letter(&claims[1], 1, "http 404").unwrap();
        assert_eq!(ob.next_due_ms(|_| true), Some(5_000));
        assert!(ob.take_due(4_999, 10, |_| true).is_empty());
        fs::write(dir.path().join("pending/zz.msg"), b"garbage").unwrap();
        fs::write(dir.path().join("pending/yy.msg.tmp"), b"half").unwrap();
        drop(ob);

        let ob = Outbox::open(dir.path(), small()).unwrap();
        let snap = ob.snapshot();
        assert_eq!(snap.corrupt, 1);
        assert_eq!(snap.pending_messages, 1);
        let c = ob.take_due(5_000, 10, |_| true);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].id.as_str(), c[0].attempts), ("a", 2));
        ob.complete(&c[0]).unwrap();
        assert_eq!(ob.pending(), 0);
        assert_eq!(fs::read_dir(dir.path().join("pending")).unwrap().count(), 0);
        let dead: Vec<String> = fs::read_dir(ob.dead_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(dead.len(), 2, "{dead:?}");
        let dl = dead.iter().find(|n| !n.ends_with(".corrupt")).unwrap();
        let text = fs::read_to_string(ob.dead_dir().join(dl)).unwrap();
        assert!(text.contains("\"reason\":\"http 404\""), "{text}");
        assert!(text.ends_with("{\"n\":2}"), "{text}");
    }
}
