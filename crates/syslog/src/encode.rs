//! RFC 5424 and RFC 3164 encoders, for [`Message`] and [`MessageBuilder`].

use std::borrow::Cow;

use bytes::BufMut;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::message::{Message, Protocol};
use crate::time;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// PRI used when a message has none (D4: user.notice, BSD `DEFUPRI`).
pub const DEFAULT_PRI: u8 = 13;

fn put_pri<B: BufMut>(dst: &mut B, pri: u8) {
    dst.put_u8(b'<');
    let pri = pri.min(191);
    if pri >= 100 {
        dst.put_u8(b'0' + pri / 100);
    }
    if pri >= 10 {
        dst.put_u8(b'0' + (pri / 10) % 10);
    }
    dst.put_u8(b'0' + pri % 10);
    dst.put_u8(b'>');
}

/// An RFC 5424 header field: NILVALUE when absent or empty, otherwise PRINTUSASCII
/// (other bytes become `_`), cut to `max` bytes.
fn put_field<B: BufMut>(dst: &mut B, v: Option<&str>, max: usize) {
    match v {
        Some(v) if !v.is_empty() => {
            for &b in v.as_bytes().iter().take(max) {
                dst.put_u8(if (33..=126).contains(&b) { b } else { b'_' });
            }
        }
        _ => dst.put_u8(b'-'),
    }
}

/// SD-NAME: PRINTUSASCII except `=`, SP, `]`, `"` (others become `_`), at most 32 bytes.
fn put_sd_name<B: BufMut>(dst: &mut B, v: &str) {
    if v.is_empty() {
        dst.put_u8(b'_');
    }
    for &b in v.as_bytes().iter().take(32) {
        let ok = (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"');
        dst.put_u8(if ok { b } else { b'_' });
    }
}

/// PARAM-VALUE with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn put_sd_value<B: BufMut>(dst: &mut B, v: &str) {
    for &b in v.as_bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            dst.put_u8(b'\\');
        }
        dst.put_u8(b);
    }
}

fn put_sd_element<'p, B: BufMut>(
    dst: &mut B,
    id: &str,
    params: impl Iterator<Item = (&'p str, Cow<'p, str>)>,
) {
    dst.put_u8(b'[');
    put_sd_name(dst, id);
    for (name, value) in params {
        dst.put_u8(b' ');
        put_sd_name(dst, name);
        dst.put_slice(b"=\"");
        put_sd_value(dst, &value);
        dst.put_u8(b'"');
    }
    dst.put_u8(b']');
}

/// `[SP [BOM] MSG]`: the BOM is written when the message had one, and whenever the text
/// itself starts with BOM bytes (the parser strips one BOM, so it must not eat the text).
fn put_msg_5424<B: BufMut>(dst: &mut B, msg: &[u8], bom: bool) {
    let bom = bom || msg.starts_with(BOM);
    if msg.is_empty() && !bom {
        return;
    }
    dst.put_u8(b' ');
    if bom {
        dst.put_slice(BOM);
    }
    dst.put_slice(msg);
}

/// Writes bytes of an RFC 3164 header token, replacing the bytes in `bad` (and SP,
/// control bytes) with `_`.
fn put_token<B: BufMut>(dst: &mut B, v: &str, bad: &[u8]) {
    for &b in v.as_bytes() {
        dst.put_u8(if b <= b' ' || b == 0x7f || bad.contains(&b) {
            b'_'
        } else {
            b
        });
    }
}

#[allow(clippy::too_many_arguments)] // the RFC 3164 header has this many parts
fn put_3164<B: BufMut>(
    dst: &mut B,
    pri: u8,
    timestamp: Option<&[u8]>,
    hostname: Option<&str>,
    app_name: Option<&str>,
    proc_id: Option<&str>,
    msg: &[u8],
    bom: bool,
) {
    put_pri(dst, pri);
    if let Some(ts) = timestamp {
        dst.put_slice(ts);
        dst.put_u8(b' ');
    }
    if let Some(h) = hostname.filter(|h| !h.is_empty()) {
        put_token(dst, h, b"");
        dst.put_u8(b' ');
    }
    if let Some(tag) = app_name.filter(|t| !t.is_empty()) {
        put_token(dst, tag, b":[");
        if let Some(pid) = proc_id.filter(|p| !p.is_empty()) {
            dst.put_u8(b'[');
            put_token(dst, pid, b"[]");
            dst.put_u8(b']');
        }
        dst.put_slice(b": ");
    }
    if bom || msg.starts_with(BOM) {
        dst.put_slice(BOM);
    }
    dst.put_slice(msg);
}

fn timestamp_5424(ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(27);
    time::write_rfc3339(ts, &mut out);
    out
}

impl Message<'_> {
    /// Appends this message as RFC 5424 to `dst` (a `Vec<u8>` or a `BytesMut`).
    ///
    /// A missing PRI is written as 13 (D4). The timestamp is copied when it already is a
    /// valid RFC 5424 TIMESTAMP; otherwise it is resolved (see
    /// [`timestamp`](Message::timestamp)) and written in UTC, or as `-` when it cannot be.
    /// Header fields are cut to the RFC limits and bytes outside printable ASCII become
    /// `_`. Parsing the output gives the same fields back for a message that came from
    /// RFC 5424 input.
    pub fn encode_rfc5424<B: BufMut>(&self, dst: &mut B) {
        put_pri(dst, self.priority().unwrap_or(DEFAULT_PRI));
        dst.put_slice(b"1 ");
        let resolved;
        let ts: &[u8] = match self.timestamp_str() {
            Some(t)
                if self.protocol() == Protocol::Rfc5424
                    || time::scan_rfc3339(t.as_bytes(), true).map(|(n, _)| n) == Some(t.len()) =>
            {
                t.as_bytes()
            }
            Some(_) => match self.timestamp() {
                Some(ts) => {
                    resolved = timestamp_5424(ts);
                    &resolved
                }
                None => b"-",
            },
            None => b"-",
        };
        dst.put_slice(ts);
        dst.put_u8(b' ');
        put_field(dst, self.hostname(), 255);
        dst.put_u8(b' ');
        put_field(dst, self.app_name(), 48);
        dst.put_u8(b' ');
        put_field(dst, self.proc_id(), 128);
        dst.put_u8(b' ');
        put_field(dst, self.msg_id(), 32);
        dst.put_u8(b' ');
        let sd = self.structured_data();
        if sd.is_empty() {
            dst.put_u8(b'-');
        }
        for e in sd.iter() {
            put_sd_element(dst, e.id(), e.params());
        }
        put_msg_5424(dst, self.msg(), self.had_bom());
    }

    /// Appends this message as RFC 3164 to `dst`:
    /// `<PRI>TIMESTAMP HOSTNAME TAG[PID]: MSG`, leaving out the parts the message lacks.
    ///
    /// The timestamp text is copied as received (an RFC 3339 stamp stays one; the tolerant
    /// parser reads it back). A missing PRI is written as 13. Structured data and MSGID
    /// have no place in RFC 3164 and are left out.
    pub fn encode_rfc3164<B: BufMut>(&self, dst: &mut B) {
        put_3164(
            dst,
            self.priority().unwrap_or(DEFAULT_PRI),
            self.timestamp_str().map(str::as_bytes),
            self.hostname(),
            self.app_name(),
            self.proc_id(),
            self.msg(),
            self.had_bom(),
        );
    }
}

/// Builds a syslog message from parts and encodes it, for senders, relays and tests.
///
/// ```
/// use mcas_syslog::MessageBuilder;
/// let mut out = Vec::new();
/// MessageBuilder::new()
///     .facility(16)
///     .severity(6)
///     .timestamp("2024-05-08T16:07:11Z".parse()?)
///     .hostname("fw01")
///     .app_name("app")
///     .sd_element("x@32473", &[("k", "v]w")])
///     .msg(b"CEF:0|Vendor|Product|1.0|100|Test|5|src=10.0.0.1")
///     .encode_rfc5424(&mut out);
/// assert_eq!(
///     out,
///     &b"<134>1 2024-05-08T16:07:11Z fw01 app - - [x@32473 k=\"v\\]w\"] CEF:0|Vendor|Product|1.0|100|Test|5|src=10.0.0.1"[..]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder<'a> {
    pri: u8,
    timestamp: Option<Timestamp>,
    zone: TimeZone,
    hostname: Option<&'a str>,
    app_name: Option<&'a str>,
    proc_id: Option<&'a str>,
    msg_id: Option<&'a str>,
    sd: Vec<(&'a str, Vec<(&'a str, &'a str)>)>,
    msg: &'a [u8],
    bom: bool,
}

impl Default for MessageBuilder<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> MessageBuilder<'a> {
    /// An empty message with PRI 13 (user.notice) and no timestamp.
    pub fn new() -> Self {
        Self {
            pri: DEFAULT_PRI,
            timestamp: None,
            zone: TimeZone::UTC,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            sd: Vec::new(),
            msg: b"",
            bom: false,
        }
    }

    /// Sets the PRI value; values above 191 are written as 191.
    pub fn priority(&mut self, pri: u8) -> &mut Self {
        self.pri = pri.min(191);
        self
    }

    /// Sets the facility (0–23, higher values are clamped), keeping the severity.
    pub fn facility(&mut self, facility: u8) -> &mut Self {
        self.pri = (facility.min(23) << 3) | (self.pri & 7);
        self
    }

    /// Sets the severity (0–7, higher values are clamped), keeping the facility.
    pub fn severity(&mut self, severity: u8) -> &mut Self {
        self.pri = (self.pri & !7) | severity.min(7);
        self
    }

    /// Sets the timestamp. RFC 5424 output writes it in UTC with microseconds; RFC 3164
    /// output writes `Mmm dd hh:mm:ss` in the [`zone`](MessageBuilder::zone).
    pub fn timestamp(&mut self, ts: Timestamp) -> &mut Self {
        self.timestamp = Some(ts);
        self
    }

    /// The zone for RFC 3164 timestamps (default UTC).
    pub fn zone(&mut self, zone: TimeZone) -> &mut Self {
        self.zone = zone;
        self
    }

    /// Sets HOSTNAME.
    pub fn hostname(&mut self, v: &'a str) -> &mut Self {
        self.hostname = Some(v);
        self
    }

    /// Sets APP-NAME (the TAG in RFC 3164).
    pub fn app_name(&mut self, v: &'a str) -> &mut Self {
        self.app_name = Some(v);
        self
    }

    /// Sets PROCID (the `[pid]` in RFC 3164).
    pub fn proc_id(&mut self, v: &'a str) -> &mut Self {
        self.proc_id = Some(v);
        self
    }

    /// Sets MSGID (RFC 5424 only).
    pub fn msg_id(&mut self, v: &'a str) -> &mut Self {
        self.msg_id = Some(v);
        self
    }

    /// Adds an SD-ELEMENT (RFC 5424 only); values are escaped when written.
    pub fn sd_element(&mut self, id: &'a str, params: &[(&'a str, &'a str)]) -> &mut Self {
        self.sd.push((id, params.to_vec()));
        self
    }

    /// Sets the message text.
    pub fn msg(&mut self, v: &'a [u8]) -> &mut Self {
        self.msg = v;
        self
    }

    /// Writes a UTF-8 BOM before the message text (RFC 5424 MSG-UTF8).
    pub fn bom(&mut self, yes: bool) -> &mut Self {
        self.bom = yes;
        self
    }

    /// Appends the message as RFC 5424.
    pub fn encode_rfc5424<B: BufMut>(&self, dst: &mut B) {
        put_pri(dst, self.pri);
        dst.put_slice(b"1 ");
        match self.timestamp {
            Some(ts) => dst.put_slice(&timestamp_5424(ts)),
            None => dst.put_u8(b'-'),
        }
        dst.put_u8(b' ');
        put_field(dst, self.hostname, 255);
        dst.put_u8(b' ');
        put_field(dst, self.app_name, 48);
        dst.put_u8(b' ');
        put_field(dst, self.proc_id, 128);
        dst.put_u8(b' ');
        put_field(dst, self.msg_id, 32);
        dst.put_u8(b' ');
        if self.sd.is_empty() {
            dst.put_u8(b'-');
        }
        for (id, params) in &self.sd {
            put_sd_element(dst, id, params.iter().map(|&(n, v)| (n, Cow::Borrowed(v))));
        }
        put_msg_5424(dst, self.msg, self.bom);
    }

    /// Appends the message as RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`).
    pub fn encode_rfc3164<B: BufMut>(&self, dst: &mut B) {
        let ts = self.timestamp.map(|ts| {
            let mut v = Vec::with_capacity(15);
            time::write_bsd(ts, &self.zone, &mut v);
            v
        });
        put_3164(
            dst,
            self.pri,
            ts.as_deref(),
            self.hostname,
            self.app_name,
            self.proc_id,
            self.msg,
            self.bom,
        );
    }
}
