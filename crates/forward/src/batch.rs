//! Batches: the routes a row can take, the open batch buffers of a worker, the pool their
//! buffers come from and go back to, and the closed [`Batch`] handed to the output stage.

use std::sync::Arc;

/// Where a row goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Route {
    /// CommonSecurityLog rows (`output.stream`).
    Csl,
    /// Syslog rows (`output.syslog_stream`).
    Syslog,
}

impl Route {
    pub(crate) const ALL: [Route; 2] = [Route::Csl, Route::Syslog];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Route::Csl => "csl",
            Route::Syslog => "syslog",
        }
    }

    pub(crate) fn from_str(s: &str) -> Option<Route> {
        match s {
            "csl" => Some(Route::Csl),
            "syslog" => Some(Route::Syslog),
            _ => None,
        }
    }
}

/// An open batch buffer.
#[derive(Debug, Default)]
pub(crate) struct RouteBuf {
    pub(crate) data: Vec<u8>,
    pub(crate) rows: usize,
    /// The acknowledgements of the RELP chunks whose rows are in `data`, one share each.
    pub(crate) acks: Vec<crate::ack::Ack>,
}

impl RouteBuf {
    /// Record that a row of the chunk acknowledged by `ack` is in this buffer.
    pub(crate) fn hold(&mut self, ack: &crate::ack::Ack) {
        if !self.acks.last().is_some_and(|a| a.same(ack)) {
            self.acks.push(ack.share());
        }
    }
}

/// Bytes a batch may run past its byte limit without its buffer growing: a batch closes
/// after the row that crosses `batch_max_bytes`, so buffers are sized for the limit plus
/// one ordinary row.
const ROW_HEADROOM: usize = 64 * 1024;

/// Batch buffers given back once their batch is written (a [`Batch`] returns its buffer
/// when dropped). Without it every batch mapped, faulted in and unmapped megabytes of fresh
/// memory, and a buffer that started below the batch limit was copied each time it grew.
#[derive(Debug)]
pub(crate) struct BufPool {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    capacity: usize,
}

impl BufPool {
    /// Idle buffers kept; more are freed.
    const MAX_FREE: usize = 4;

    /// A pool of buffers for batches of up to `batch_bytes`.
    pub(crate) fn new(batch_bytes: usize) -> Arc<BufPool> {
        Arc::new(BufPool {
            free: std::sync::Mutex::new(Vec::new()),
            capacity: batch_bytes.saturating_add(ROW_HEADROOM),
        })
    }

    fn get(&self) -> Vec<u8> {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    pub(crate) fn put(&self, mut buf: Vec<u8>) {
        // A buffer an outsized row grew far past the limit is not kept.
        if buf.capacity() < self.capacity || buf.capacity() > 2 * self.capacity {
            return;
        }
        buf.clear();
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if free.len() < Self::MAX_FREE {
            free.push(buf);
        }
    }
}

/// What became of a mapped row at one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Appended to the output's batch of this route.
    Appended(Route),
    /// Taken by the output (its `where` matched) and dropped by its transformation.
    Filtered,
    /// Not for this output: another table, or its `where` did not match.
    Skipped,
}

/// The open batch buffers of one worker: one per output and route.
#[derive(Debug)]
pub(crate) struct Buffers {
    /// By output: the CommonSecurityLog and the Syslog buffer.
    outputs: Vec<[RouteBuf; 2]>,
    /// The fate of the last row at each output, set by the router.
    fates: Vec<Fate>,
    pool: Arc<BufPool>,
}

fn slot(r: Route) -> usize {
    match r {
        Route::Csl => 0,
        Route::Syslog => 1,
    }
}

impl Buffers {
    /// Buffers for `outputs` outputs' batches of up to `batch_bytes`, with a pool of
    /// their own.
    pub(crate) fn with_capacity(batch_bytes: usize, outputs: usize) -> Buffers {
        Buffers::with_pool(BufPool::new(batch_bytes), outputs)
    }

    /// Buffers for `outputs` outputs, drawn from (and, through their batches, given back
    /// to) `pool`. A buffer takes its memory from the pool when its first row comes.
    pub(crate) fn with_pool(pool: Arc<BufPool>, outputs: usize) -> Buffers {
        Buffers {
            outputs: (0..outputs.max(1)).map(|_| Default::default()).collect(),
            fates: Vec::with_capacity(outputs),
            pool,
        }
    }

    /// How many outputs these buffers serve.
    pub(crate) fn outputs(&self) -> usize {
        self.outputs.len()
    }

    pub(crate) fn get(&self, output: usize, r: Route) -> &RouteBuf {
        &self.outputs[output][slot(r)]
    }

    /// The buffer of `output`'s `r` batch, ready for a row.
    pub(crate) fn get_mut(&mut self, output: usize, r: Route) -> &mut RouteBuf {
        let b = &mut self.outputs[output][slot(r)];
        if b.data.capacity() == 0 {
            b.data = self.pool.get();
        }
        b
    }

    /// The fate of the last row at each output, in output order.
    pub(crate) fn fates(&self) -> &[Fate] {
        &self.fates
    }

    /// Where the router records the fates of the row it is routing.
    pub(crate) fn fates_mut(&mut self) -> &mut Vec<Fate> {
        &mut self.fates
    }

    /// True when any open batch holds a row.
    pub(crate) fn has_rows(&self) -> bool {
        self.outputs.iter().flatten().any(|b| b.rows > 0)
    }

    /// True when an open batch holds a row that a RELP session waits on.
    pub(crate) fn has_acks(&self) -> bool {
        self.outputs.iter().flatten().any(|b| !b.acks.is_empty())
    }

    /// Close the batch of `output`'s route `r`, if it holds rows.
    pub(crate) fn take(&mut self, output: usize, r: Route) -> Option<Batch> {
        let b = &mut self.outputs[output][slot(r)];
        if b.rows == 0 {
            return None;
        }
        let data = std::mem::replace(&mut b.data, self.pool.get());
        let rows = std::mem::take(&mut b.rows);
        let acks = std::mem::take(&mut b.acks);
        Some(Batch {
            route: r,
            data,
            rows,
            acks,
            pool: Some(self.pool.clone()),
            prepared: false,
        })
    }
}

/// A closed batch: NDJSON rows for one route or, once prepared for a spooled output, its
/// spool file (format v2: the request bodies, packed and compressed).
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) route: Route,
    pub(crate) data: Vec<u8>,
    pub(crate) rows: usize,
    /// The RELP acknowledgements waiting for this batch: confirmed by whoever makes it
    /// durable; dropped unconfirmed (the batch lost) they fail their chunks.
    pub(crate) acks: Vec<crate::ack::Ack>,
    /// Where `data` goes back when the batch is dropped (after it was written).
    pub(crate) pool: Option<Arc<BufPool>>,
    /// True when `data` is a spool file (the output stage's `Preparer` made it), false for NDJSON.
    pub(crate) prepared: bool,
}

#[cfg(test)]
impl Batch {
    /// A batch whose buffer goes back to no pool.
    pub(crate) fn unpooled(route: Route, data: Vec<u8>, rows: usize) -> Batch {
        Batch {
            route,
            data,
            rows,
            acks: Vec::new(),
            pool: None,
            prepared: false,
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.put(std::mem::take(&mut self.data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_batch_gives_its_buffer_back_for_the_next_one() {
        let pool = BufPool::new(4096);
        let mut bufs = Buffers::with_pool(pool.clone(), 2);
        assert_eq!(bufs.outputs(), 2);
        let first = bufs.get_mut(1, Route::Csl).data.as_ptr();
        bufs.get_mut(1, Route::Csl).data.extend_from_slice(b"{}\n");
        bufs.get_mut(1, Route::Csl).rows = 1;
        assert!(bufs.take(0, Route::Csl).is_none(), "no rows for output 0");
        let batch = bufs.take(1, Route::Csl).expect("a batch");
        assert_eq!(batch.route, Route::Csl);
        assert_eq!(batch.data.as_ptr(), first);
        assert!(batch.data.capacity() >= 4096 + ROW_HEADROOM);
        drop(batch);
        // The next buffer taken from the pool is the one just given back, emptied.
        let again = pool.get();
        assert_eq!(again.as_ptr(), first);
        assert!(again.is_empty());
    }

    #[test]
    fn the_pool_keeps_a_few_buffers_of_its_size_only() {
        let pool = BufPool::new(4096);
        pool.put(Vec::with_capacity(16)); // too small
        pool.put(Vec::with_capacity(1 << 20)); // grown by an outsized row
        assert!(pool.free.lock().unwrap().is_empty());
        for _ in 0..10 {
            pool.put(Vec::with_capacity(4096 + ROW_HEADROOM));
        }
        assert_eq!(pool.free.lock().unwrap().len(), BufPool::MAX_FREE);
    }
}
