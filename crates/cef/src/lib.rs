//! ArcSight Common Event Format (CEF): a zero-copy parser and an encoder.
//!
//! [`parse`] takes one line, with or without a syslog prefix, finds `CEF:` and returns an
//! [`Event`] that borrows from the input. A value is copied only when unescaping changed
//! it, so a typical event costs one allocation (the table of pairs).
//!
//! ```
//! let line = b"2017-11-22T17:50:04.000Z CEF:0|MCAS|SIEM_Agent|0.111.85|EVENT_CATEGORY_LOGOUT|\
//!     Log out|0|externalId=1511373015679_167ae3eb rt=1511373004000 msg=Log out \
//!     suser=admin@contoso.com cs1Label=portalURL \
//!     cs1=https://contoso.portal.cloudappsecurity.com/#/audits?activity.id\\=eq(1511373015679,) \
//!     c6a1Label=\"Device IPv6 Address\" c6a1=";
//! let event = mcas_cef::parse(line)?;
//! assert_eq!(event.device_vendor(), "MCAS");
//! assert_eq!(event.name(), "Log out");
//! assert_eq!(event.severity().number(), Some(0));
//! assert_eq!(event.get("msg"), Some("Log out"));
//! assert_eq!(event.get("sourceUserName"), Some("admin@contoso.com")); // full name of suser
//! assert_eq!(
//!     event.get("cs1"),
//!     Some("https://contoso.portal.cloudappsecurity.com/#/audits?activity.id=eq(1511373015679,)")
//! );
//! let ctx = mcas_cef::DateContext::now();
//! assert_eq!(event.get_timestamp("rt", &ctx), Some("2017-11-22T17:50:04Z".parse()?));
//! let labelled: Vec<_> = event.custom_fields().collect();
//! assert_eq!(labelled[1], (Some("\"Device IPv6 Address\""), "c6a1", Some("")));
//! assert!(event.warnings().is_empty());
//!
//! // Encoding writes every escape back.
//! let mut out = Vec::new();
//! event.encode(&mut out)?;
//! assert_eq!(mcas_cef::parse(&out)?, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Rules
//!
//! * **Header.** Exactly seven pipe-terminated fields after `CEF:`: version, device
//!   vendor, device product, device version, device event class id, name, severity.
//!   Fewer is an error. Spaces and one stray `:` between `CEF:` and the version digits
//!   are skipped (`CEF: 0|`, `CEF:: 0|`). Only `\|` and `\\` are header escapes; any
//!   other backslash sequence is kept as written. Header values are not trimmed.
//! * **Extension.** Pairs are separated by one space (0x20). A key is
//!   `[A-Za-z0-9_][A-Za-z0-9_.,\[\]-]*` directly followed by `=`, at the start of the
//!   extension or after a space; a value runs up to the space before the next key, so
//!   values may contain spaces, and with several spaces before a key all but the last
//!   stay in the value. An `=` that cannot start a key is kept as data (and warned
//!   about). Leading spaces of the extension are skipped; the last value loses a
//!   trailing line end (CR LF, LF or CR) and then its trailing spaces. TAB, CR and LF
//!   are never separators.
//! * **Escapes in values.** `\\` → `\`, `\=` → `=`, `\n` → LF, `\r` → CR. Any other
//!   backslash sequence, including a final lone backslash, is kept as written (and
//!   warned about).
//! * **Text.** Invalid UTF-8 is replaced with U+FFFD and reported, never rejected.
//!   Double quotes have no meaning.
//! * **Text without a key** at the start of the extension is kept as a pair with an
//!   empty key, with a warning.
//!
//! Every lenient acceptance is listed in [`Event::warnings`]; the event is always kept.
//!
//! # Types
//!
//! Values stay strings. The [`dictionary`] gives every standard key's type, and typed
//! accessors convert on demand: [`Event::get_i64`], [`Event::get_f64`],
//! [`Event::get_ip`], [`Event::get_mac`] and [`Event::get_timestamp`] (see
//! [`DateContext`]). A failed conversion is `None`; [`Event::check_types`] records one
//! warning per failing value.

#![deny(missing_docs)]

pub mod dictionary;
mod encode;
mod error;
mod event;
mod parse;
mod types;

pub use encode::EventBuilder;
pub use error::{ErrorKind, HeaderField, ParseError, Warning, WarningKind};
pub use event::{Event, Extensions, Severity, SeverityLevel};
pub use parse::{find_start, parse};
pub use types::{DateContext, InvalidMac, Mac};

/// The `jiff` crate, whose types appear in this crate's API ([`jiff::Timestamp`],
/// [`jiff::tz::TimeZone`]).
pub use jiff;
