//! Test support shared by the forwarder's integration tests (`crates/forward/tests`) and
//! the chaos suite (`benches/src/bin/chaos.rs`): one implementation of each of
//!
//! * free loopback ports ([`free_port`], [`free_addr`]);
//! * the `mcas-forward` process ([`Launch`], [`Forwarder`], [`run_within`]): a
//!   configuration written from a template, the binary (whose path the caller passes)
//!   started on it, readiness, signals, a bounded wait, its output captured, and a kill on
//!   drop so that no test leaks a process;
//! * the metrics scrape ([`Scrape`], and [`prom`] for the exposition format itself);
//! * a RELP client of its own ([`relp::Client`]): a window kept full, answers checked for
//!   order, the unanswered messages given back after a broken session;
//! * the in-process `mcas-azure-emulator` as the tests set it up ([`EmulatorSetup`]), what
//!   it holds, and the forwarder configuration that sends to it.
//!
//! The crate depends on the emulator library but never on `mcas-forward`: it only spawns
//! its binary. Everything fallible returns [`std::io::Result`]; tests `expect` it.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mcas_testkit::{EmulatorSetup, Scrape, free_port, wait_until};
//!
//! let port = free_port()?; // free for TCP and UDP on 127.0.0.1
//! assert_ne!(port, 0);
//!
//! // What a forwarder's /metrics answers, looked up by series.
//! let scrape = Scrape::new(
//!     "# TYPE mcas_forward_dropped_total counter\n\
//!      mcas_forward_dropped_total{reason=\"oversize\"} 3\n\
//!      mcas_forward_received_total 10\n",
//! );
//! assert_eq!(scrape.value("mcas_forward_received_total"), Some(10.0));
//! assert_eq!(scrape.count("mcas_forward_dropped_total{reason=\"oversize\"}"), 3);
//! assert_eq!(scrape.count("mcas_forward_dropped_total{reason=\"spool_full\"}"), 0);
//!
//! // An emulator on its own runtime, empty at first.
//! let emulator = EmulatorSetup::new().start_owned()?;
//! assert!(wait_until(Duration::from_secs(5), || emulator.count("CommonSecurityLog") == 0));
//! emulator.stop();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Starting a forwarder (the binary path comes from the caller, here an integration test
//! of `mcas-forward`):
//!
//! ```no_run
//! use std::time::Duration;
//! use mcas_testkit::{Launch, Signal};
//!
//! let dir = std::env::temp_dir().join("example");
//! std::fs::create_dir_all(&dir)?;
//! let mut fwd = Launch::new("target/debug/mcas-forward", &dir).start(
//!     "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:{PORT}\"\n\
//!      [output]\nkind = \"stdout\"\n\
//!      [metrics]\naddress = \"127.0.0.1:{METRICS}\"\n",
//! )?;
//! assert_eq!(fwd.metric("mcas_forward_received_total"), Some(0.0));
//! fwd.signal(Signal::Hup)?;
//! assert!(fwd.terminate(Duration::from_secs(20))?.success());
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod emulator;
pub mod forwarder;
pub mod http;
pub mod ports;
pub mod prom;
pub mod relp;
pub mod wait;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use emulator::{
    CLIENT_SECRET_ENV, CSL, EmulatorSetup, OwnedEmulator, ext_ids, logs_ingestion_output,
    secret_env, stored_rows,
};
pub use forwarder::{Finished, Forwarder, Launch, Logs, Ready, Signal, run_within};
pub use ports::{free_addr, free_port};
pub use prom::Scrape;
pub use wait::{wait_until, wait_until_async};
