//! Acknowledgements that wait for the disk: how a RELP session learns that the messages of
//! one of its chunks are stored.
//!
//! A session that must answer only after its messages are durable gives each chunk an
//! [`Ack`] and keeps the matching [`Stored`] receiver. The chunk's holders clone the `Ack`:
//! the worker, then every open batch that takes one of the chunk's rows, then the closed
//! batch on its way to the spool or the local output. Each clone is [`Ack::confirm`]ed by
//! its holder once its part is done (the batch's file fsync'd, the row filtered by policy,
//! the dead-letter file synced). When the last clone is gone the receiver resolves: `true`
//! when every clone was confirmed, `false` when any was dropped unconfirmed (a batch lost
//! to a failed write, a full spool dropping the newest, an output that stopped). A clone
//! that is merely dropped is a failure, so a path that forgets to confirm can never answer
//! for data it did not store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

/// One holder's share of a chunk's acknowledgement. Dropping it unconfirmed fails the
/// whole chunk.
#[derive(Debug)]
pub(crate) struct Ack {
    shared: Arc<Shared>,
    confirmed: bool,
}

#[derive(Debug)]
struct Shared {
    failed: AtomicBool,
    /// Whether the waiter is in a hurry (a RELP sender waits for its answers): the batches
    /// holding the chunk are then closed at once (group commit). A Kafka listener only
    /// needs the answer to commit, and lets batches close on their own limits.
    urgent: bool,
    done: std::sync::Mutex<Option<oneshot::Sender<bool>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let tx = self
            .done
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(tx) = tx {
            // The session may be gone (its connection closed): nobody to tell.
            let _ = tx.send(!self.failed.load(Ordering::Acquire));
        }
    }
}

/// What the session waits on: resolves to `true` when the chunk is stored, `false` when
/// some of it was not.
pub(crate) type Stored = oneshot::Receiver<bool>;

impl Ack {
    /// A new acknowledgement and the receiver that learns its outcome; its batches are
    /// closed at once (group commit).
    pub(crate) fn new() -> (Ack, Stored) {
        Ack::with_urgency(true)
    }

    /// An acknowledgement whose waiter is in no hurry: its batches close on their limits.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn unhurried() -> (Ack, Stored) {
        Ack::with_urgency(false)
    }

    fn with_urgency(urgent: bool) -> (Ack, Stored) {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            failed: AtomicBool::new(false),
            urgent,
            done: std::sync::Mutex::new(Some(tx)),
        });
        (
            Ack {
                shared,
                confirmed: false,
            },
            rx,
        )
    }

    /// Another holder's share, unconfirmed.
    pub(crate) fn share(&self) -> Ack {
        Ack {
            shared: self.shared.clone(),
            confirmed: false,
        }
    }

    /// Whether its batches are to be closed at once.
    pub(crate) fn urgent(&self) -> bool {
        self.shared.urgent
    }

    /// True when `other` is a share of the same acknowledgement.
    pub(crate) fn same(&self, other: &Ack) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// This holder's part is done (stored, or settled by policy).
    pub(crate) fn confirm(mut self) {
        self.confirmed = true;
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if !self.confirmed {
            self.shared.failed.store(true, Ordering::Release);
        }
    }
}

/// Confirm every share in `acks` (a batch's, once it is durable).
pub(crate) fn confirm_all(acks: Vec<Ack>) {
    for a in acks {
        a.confirm();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_when_every_share_is_confirmed() {
        let (ack, mut rx) = Ack::new();
        let a = ack.share();
        let b = ack.share();
        assert!(a.same(&b));
        ack.confirm();
        a.confirm();
        assert!(rx.try_recv().is_err(), "one share still out");
        b.confirm();
        assert_eq!(rx.try_recv(), Ok(true));
    }

    #[test]
    fn one_share_dropped_unconfirmed_fails_the_chunk() {
        let (ack, mut rx) = Ack::new();
        let lost = ack.share();
        ack.confirm();
        drop(lost);
        assert_eq!(rx.try_recv(), Ok(false));
    }

    #[test]
    fn shares_of_different_chunks_differ() {
        let (a, _ra) = Ack::new();
        let (b, _rb) = Ack::new();
        assert!(!a.same(&b));
        a.confirm();
        b.confirm();
    }
}
