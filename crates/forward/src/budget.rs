//! The byte budget of messages in flight: read from a socket, not yet mapped by a worker.
//!
//! Queues count chunks of messages, and a chunk can hold up to 256 messages of up to
//! `max_message_bytes` each, so counting chunks alone let memory grow with the message size
//! (3.2 GB with 16 MiB messages). Every chunk holds a [`Permit`] for its bytes from the moment
//! a listener hands it over until its worker has mapped it, so the bytes in queues never
//! exceed the budget: TCP and TLS readers wait for room (their senders are pushed back
//! through the TCP window), and UDP datagrams that find no room are dropped and counted, as
//! with a full queue.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The shared budget.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    room: Arc<Semaphore>,
    total: usize,
}

/// Room held for some bytes; given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct Permit {
    _held: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// A budget of `bytes` (at least 1).
    pub(crate) fn new(bytes: usize) -> Budget {
        let total = bytes.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            room: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The permits for `bytes`: a message larger than the whole budget takes all of it.
    fn units(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.clamp(1, self.total)).unwrap_or(u32::MAX)
    }

    /// Wait for room for `bytes`.
    pub(crate) async fn acquire(&self, bytes: usize) -> Permit {
        match self
            .room
            .clone()
            .acquire_many_owned(self.units(bytes))
            .await
        {
            Ok(p) => Permit { _held: Some(p) },
            // Never closed; an empty permit keeps the pipeline going if it were.
            Err(_) => Permit { _held: None },
        }
    }

    /// Room for `bytes` now, or None.
    pub(crate) fn try_acquire(&self, bytes: usize) -> Option<Permit> {
        self.room
            .clone()
            .try_acquire_many_owned(self.units(bytes))
            .ok()
            .map(|p| Permit { _held: Some(p) })
    }

    /// Bytes of room left.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.room.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_comes_back_when_the_permit_is_dropped() {
        let b = Budget::new(1000);
        let p = b.acquire(600).await;
        assert_eq!(b.available(), 400);
        assert!(b.try_acquire(500).is_none(), "over the budget");
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(500).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a reader waits for room");
        drop(p);
        let q = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.available(), 500);
        drop(q);
        assert_eq!(b.available(), 1000);
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_takes_all_of_it() {
        let b = Budget::new(1000);
        let p = b.acquire(16 << 20).await;
        assert_eq!(b.available(), 0);
        drop(p);
        assert_eq!(b.available(), 1000);
    }
}
