//! Syslog (RFC 3164, RFC 5424) parsing and encoding, with RFC 6587 TCP framing.
//!
//! [`parse`] reads one message from bytes, without I/O, borrowing from the input. A
//! line that starts `<PRI>1 ` is read as RFC 5424 (strictly; a line that breaks the
//! grammar falls back to the tolerant reader). Anything else goes to a tolerant RFC 3164
//! reader that accepts what real senders emit: ISO timestamps, no PRI, no host name,
//! `CEF:` straight after the header, Cisco years and sequence numbers.
//!
//! ```
//! let m = mcas_syslog::parse(b"<134>Oct 11 22:14:15 fw01 CEF:0|Vendor|Product|1.0|100|Test|5|src=10.0.0.1")?;
//! assert_eq!((m.facility(), m.severity()), (Some(16), Some(6)));
//! assert_eq!(m.timestamp_str(), Some("Oct 11 22:14:15"));
//! assert_eq!(m.hostname(), Some("fw01"));
//! assert_eq!(m.app_name(), None); // `CEF:` is never a host name or a tag
//! assert!(m.msg().starts_with(b"CEF:0|"));
//!
//! let m = mcas_syslog::parse(
//!     b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An entry",
//! )?;
//! assert_eq!(m.protocol(), mcas_syslog::Protocol::Rfc5424);
//! let sd = m.structured_data().get("exampleSDID@32473").ok_or("no SD")?;
//! assert_eq!(sd.param("iut").as_deref(), Some("3"));
//! assert_eq!(m.timestamp().map(|t| t.to_string()).as_deref(), Some("2003-10-11T22:14:15.003Z"));
//!
//! let mut out = Vec::new();
//! m.encode_rfc5424(&mut out);
//! assert_eq!(mcas_syslog::parse(&out)?, m);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Over UDP, one datagram is one message ([`datagram`]). Over TCP, the `codec` feature
//! provides `codec::SyslogCodec`, a tokio-util decoder and encoder for octet counting and
//! LF framing with a frame size limit.
//!
//! The `relp` feature adds the `relp` module: rsyslog's acknowledged transport (RELP)
//! as pure functions over bytes: an incremental frame decoder with a DATALEN limit,
//! encoders for answers and commands, offers, and a session checker. With `codec` too,
//! `relp::RelpCodec` is its tokio-util codec.
//!
//! Decisions followed (numbered as in the project's syslog notes):
//! D1 one datagram per message; D4 PRI 0–191 or none; D5 5424 when `<PRI>1 ` follows,
//! else 3164; D6 timestamp forms; D7 year inference; D8 zone for zone-less stamps
//! (default UTC); D9 host name rule; D10 tag and `CEF:` rule; D12 raw bytes kept;
//! D13 SD escapes, malformed SD dropped, MSG kept; D14 BOM removed, non-UTF-8 accepted.

#![deny(missing_docs)]

mod config;
mod encode;
mod error;
mod message;
mod parse;
mod time;

#[cfg(feature = "codec")]
pub mod codec;

#[cfg(feature = "relp")]
pub mod relp;

pub use config::ParserConfig;
pub use encode::{DEFAULT_PRI, MessageBuilder};
pub use error::{ErrorKind, ParseError};
pub use message::{Message, Protocol, SdElement, StructuredData};

/// Parses one syslog message with the default [`ParserConfig`] (UTC for zone-less
/// timestamps, year inferred against the clock when the timestamp is resolved).
///
/// Fails only on empty input: any other bytes give a message, with whatever the header
/// parsers could not read left in [`Message::msg`].
pub fn parse(input: &[u8]) -> Result<Message<'_>, ParseError> {
    static DEFAULT: std::sync::OnceLock<ParserConfig> = std::sync::OnceLock::new();
    parse::parse_with(DEFAULT.get_or_init(ParserConfig::new), input)
}

/// Parses one syslog message with the given settings.
pub fn parse_with<'a>(config: &ParserConfig, input: &'a [u8]) -> Result<Message<'a>, ParseError> {
    parse::parse_with(config, input)
}

/// The message in one UDP datagram (D1, RFC 5426 §3.1): the payload less one trailing
/// LF, CR LF or NUL. An LF inside the datagram is kept: it never splits the message.
///
/// ```
/// assert_eq!(mcas_syslog::datagram(b"<13>hi\r\n"), b"<13>hi");
/// assert_eq!(mcas_syslog::datagram(b"<13>a\nb\n\n"), b"<13>a\nb\n");
/// assert_eq!(mcas_syslog::datagram(b"<13>hi\0"), b"<13>hi");
/// ```
pub fn datagram(payload: &[u8]) -> &[u8] {
    match payload {
        [rest @ .., b'\r', b'\n'] => rest,
        [rest @ .., b'\n' | b'\0'] => rest,
        _ => payload,
    }
}
