//! Routing: each message is parsed (syslog, then CEF) and goes to one place only:
//! - CEF → the CommonSecurityLog stream;
//! - anything else (a broken CEF header included, counted) → the Syslog stream when
//!   `output.syslog_stream` is set, else the dead-letter file.
//!
//! All parsing and mapping is done by the libraries; this module only calls them in order
//! and writes each row into its batch buffer.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::deadletter::DeadLetter;
use crate::frames::Msg;
use crate::metrics::Metrics;
use crate::spool::Batch;

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

/// The open batch buffers of one worker, one per route.
#[derive(Debug)]
pub(crate) struct Buffers {
    csl: RouteBuf,
    syslog: RouteBuf,
    pool: Arc<BufPool>,
}

impl Buffers {
    /// Buffers for batches of up to `batch_bytes`, with a pool of their own.
    pub(crate) fn with_capacity(batch_bytes: usize) -> Buffers {
        Buffers::with_pool(BufPool::new(batch_bytes))
    }

    /// Buffers drawn from (and, through their batches, given back to) `pool`.
    pub(crate) fn with_pool(pool: Arc<BufPool>) -> Buffers {
        Buffers {
            csl: RouteBuf {
                data: pool.get(),
                rows: 0,
            },
            syslog: RouteBuf::default(),
            pool,
        }
    }

    pub(crate) fn get(&self, r: Route) -> &RouteBuf {
        match r {
            Route::Csl => &self.csl,
            Route::Syslog => &self.syslog,
        }
    }

    fn get_mut(&mut self, r: Route) -> &mut RouteBuf {
        match r {
            Route::Csl => &mut self.csl,
            Route::Syslog => &mut self.syslog,
        }
    }

    /// True when any route's open batch holds a row.
    pub(crate) fn has_rows(&self) -> bool {
        self.csl.rows > 0 || self.syslog.rows > 0
    }

    /// Close the batch of `r`, if it holds rows.
    pub(crate) fn take(&mut self, r: Route) -> Option<Batch> {
        if self.get(r).rows == 0 {
            return None;
        }
        let pool = self.pool.clone();
        let b = self.get_mut(r);
        let data = std::mem::replace(&mut b.data, pool.get());
        let rows = std::mem::take(&mut b.rows);
        Some(Batch {
            route: r,
            data,
            rows,
            pool: Some(pool),
        })
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Routed(Route),
    DeadLettered,
}

/// The parse → map → serialise chain, configured once and shared by the workers.
#[derive(Debug)]
pub(crate) struct Router {
    /// Per listener: zone for zone-less timestamps.
    parsers: Vec<mcas_syslog::ParserConfig>,
    mapper: mcas_csl::Mapper,
    collector: String,
    syslog_route: bool,
    /// Data Collector API: `TimeGenerated` is a reserved property there; rows carry the
    /// same value as `CollectedTime`, named in the `time-generated-field` header.
    rename_time_generated: bool,
    metrics: Arc<Metrics>,
}

/// The field that carries `TimeGenerated` for the Data Collector API. Same length as
/// `TimeGenerated`, so the key is renamed in place in the serialised row.
pub(crate) const COLLECTED_TIME: &str = "CollectedTime";
const TIME_GENERATED_KEY: &[u8] = b"{\"TimeGenerated\":";

impl Router {
    pub(crate) fn new(
        parsers: Vec<mcas_syslog::ParserConfig>,
        mapper: mcas_csl::Mapper,
        syslog_route: bool,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            rename_time_generated: false,
            parsers,
            mapper,
            collector: collector_host_name(),
            syslog_route,
            metrics,
        }
    }

    /// For the Data Collector output: rename `TimeGenerated` to [`COLLECTED_TIME`].
    pub(crate) fn rename_time_generated(mut self, yes: bool) -> Router {
        self.rename_time_generated = yes;
        self
    }

    /// After a row was serialised from `start`: apply the output's key rename.
    fn finish_row(&self, data: &mut [u8], start: usize) {
        if self.rename_time_generated
            && let Some(row) = data.get_mut(start..)
            && row.starts_with(TIME_GENERATED_KEY)
        {
            row[2..2 + COLLECTED_TIME.len()].copy_from_slice(COLLECTED_TIME.as_bytes());
        }
    }

    /// Map one message and append its row (and a newline) to its batch buffer, or write it
    /// to the dead-letter file.
    pub(crate) fn process(
        &self,
        listener: usize,
        msg: &Msg,
        received_at: jiff::Timestamp,
        bufs: &mut Buffers,
        dead: &DeadLetter,
    ) -> Outcome {
        if msg.truncated {
            self.metrics.truncated.fetch_add(1, Relaxed);
        }
        let default_parser;
        let parser = match self.parsers.get(listener) {
            Some(p) => p,
            None => {
                default_parser = mcas_syslog::ParserConfig::new();
                &default_parser
            }
        };
        match self.map_into(parser, &msg.data, msg.peer, received_at, bufs) {
            Ok(route) => Outcome::Routed(route),
            Err(reason) => {
                dead.unroutable(received_at, reason, msg.peer, &msg.data);
                Outcome::DeadLettered
            }
        }
    }

    /// The core: parse and map `data`, serialise the row into `bufs`. Err is the
    /// dead-letter reason.
    pub(crate) fn map_into(
        &self,
        parser: &mcas_syslog::ParserConfig,
        data: &[u8],
        peer: IpAddr,
        received_at: jiff::Timestamp,
        bufs: &mut Buffers,
    ) -> Result<Route, &'static str> {
        let m = &self.metrics;
        let mut cfg = parser.clone();
        cfg.reference_time(received_at);
        let parsed = mcas_syslog::parse_with(&cfg, data);
        m.parsed.fetch_add(1, Relaxed);
        let (host, body) = match &parsed {
            Ok(msg) => (msg.hostname(), msg.msg()),
            Err(_) => (None, data),
        };
        let peer_text;
        let computer = match host {
            Some(h) => h,
            None => {
                peer_text = peer.to_string();
                peer_text.as_str()
            }
        };
        let zone = parser.zone();
        let ctx = mcas_csl::Context::new(received_at)
            .with_computer(Some(computer))
            .with_collector_host_name(Some(&self.collector))
            .with_host_ip(Some(peer))
            .with_default_zone(Some(zone));
        match mcas_cef::parse(body) {
            Ok(event) => {
                m.cef.fetch_add(1, Relaxed);
                let mapped = self.mapper.map(&event, &ctx);
                return Ok(self.append_row(bufs, Route::Csl, |out| mapped.row.write_json(out)));
            }
            // No `CEF:` at all is plain syslog; a marker with a broken header is counted.
            Err(e) if *e.kind() == mcas_cef::ErrorKind::MissingMarker => {}
            Err(_) => {
                m.malformed_cef.fetch_add(1, Relaxed);
            }
        }
        m.non_cef.fetch_add(1, Relaxed);
        if !self.syslog_route {
            return Err("not CEF, and output.syslog_stream is not set");
        }
        let input = match &parsed {
            Ok(msg) => mcas_csl::SyslogInput {
                facility: msg.facility(),
                severity: msg.severity(),
                hostname: msg.hostname(),
                process_name: msg.app_name(),
                process_id: msg.proc_id(),
                message: msg.msg(),
                event_time: msg.timestamp(),
            },
            Err(_) => mcas_csl::SyslogInput {
                message: data,
                ..Default::default()
            },
        };
        let row = mcas_csl::map_syslog(input, &ctx);
        Ok(self.append_row(bufs, Route::Syslog, |out| row.write_json(out)))
    }

    /// Append one NDJSON line to `route`'s batch buffer: the row `write` writes, then a newline.
    fn append_row(
        &self,
        bufs: &mut Buffers,
        route: Route,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Route {
        let b = bufs.get_mut(route);
        let start = b.data.len();
        write(&mut b.data);
        self.finish_row(&mut b.data, start);
        b.data.push(b'\n');
        b.rows += 1;
        route
    }
}

/// This host's name, for CollectorHostName.
pub(crate) fn collector_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_batch_gives_its_buffer_back_for_the_next_one() {
        let pool = BufPool::new(4096);
        let mut bufs = Buffers::with_pool(pool.clone());
        let first = bufs.get(Route::Csl).data.as_ptr();
        bufs.get_mut(Route::Csl).data.extend_from_slice(b"{}\n");
        bufs.get_mut(Route::Csl).rows = 1;
        let batch = bufs.take(Route::Csl).expect("a batch");
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
