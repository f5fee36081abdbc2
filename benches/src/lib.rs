//! Benchmark support for mcas-forward: a deterministic CEF-over-syslog corpus
//! generator shared by the criterion benches, the `gen-corpus` and `loadgen`
//! binaries and the end-to-end harness (`scripts/bench-e2e.sh`).
//!
//! ```
//! use mcas_benches::corpus;
//!
//! let buf = corpus::mcas(100, corpus::DEFAULT_SEED);
//! assert_eq!(corpus::lines(&buf).count(), 100);
//! let first = corpus::lines(&buf).next().ok_or("empty corpus")?;
//! assert!(first.starts_with(b"<"));
//! assert!(std::str::from_utf8(first)?.contains("CEF:0|MCAS|SIEM_Agent|"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod corpus;
pub mod load;
