use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::time;

/// Which parser produced a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The tolerant BSD parser (RFC 3164 and the many variants real senders use).
    Rfc3164,
    /// A well-formed RFC 5424 header.
    Rfc5424,
}

/// A byte range in [`Message::raw`]. Fields are stored as ranges, so
/// [`Message::into_owned`] copies the input once and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ElementSpan {
    pub(crate) id: Span,
    pub(crate) params_start: usize,
    pub(crate) params_end: usize,
}

/// Structured data stored as ranges: elements, and all params back to back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SdStore {
    pub(crate) elements: Vec<ElementSpan>,
    pub(crate) params: Vec<(Span, Span)>,
}

/// One parsed syslog message. It borrows the input; [`into_owned`](Message::into_owned)
/// detaches it.
///
/// Text fields are `&str`: the parser only accepts a header field that is valid UTF-8
/// (RFC 5424 fields are printable ASCII), and leaves anything else in the message text.
/// The message text itself is bytes ([`msg`](Message::msg)), with a lossy view
/// ([`msg_lossy`](Message::msg_lossy)).
#[derive(Clone)]
pub struct Message<'a> {
    pub(crate) raw: Cow<'a, [u8]>,
    pub(crate) pri: Option<u8>,
    pub(crate) protocol: Protocol,
    pub(crate) timestamp: Option<Span>,
    pub(crate) hostname: Option<Span>,
    pub(crate) app_name: Option<Span>,
    pub(crate) proc_id: Option<Span>,
    pub(crate) msg_id: Option<Span>,
    pub(crate) sequence: Option<Span>,
    pub(crate) sd: SdStore,
    pub(crate) sd_malformed: bool,
    pub(crate) msg: Span,
    pub(crate) bom: bool,
    pub(crate) reference: Option<Timestamp>,
    pub(crate) zone: TimeZone,
}

impl<'a> Message<'a> {
    fn bytes(&self, span: Span) -> &[u8] {
        &self.raw[span.start..span.end]
    }

    fn text(&self, span: Option<Span>) -> Option<&str> {
        // The parser checked these ranges are UTF-8; the fallback is never taken.
        span.map(|s| std::str::from_utf8(self.bytes(s)).unwrap_or_default())
    }

    /// The PRI value (facility × 8 + severity), or `None` when the message had no
    /// valid `<PRI>` (D4). Use 13 (user.notice) where a value is required.
    pub fn priority(&self) -> Option<u8> {
        self.pri
    }

    /// Facility code 0–23, or `None` without a PRI.
    pub fn facility(&self) -> Option<u8> {
        self.pri.map(|p| p >> 3)
    }

    /// Severity code 0–7, or `None` without a PRI.
    pub fn severity(&self) -> Option<u8> {
        self.pri.map(|p| p & 7)
    }

    /// Which header format was recognised.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The timestamp text exactly as received (`Feb  5 17:32:18`,
    /// `2003-10-11T22:14:15.003Z`); `None` when absent or the RFC 5424 NILVALUE.
    /// A weekday before a BSD timestamp and a trailing `:` are not part of it.
    pub fn timestamp_str(&self) -> Option<&str> {
        self.text(self.timestamp)
    }

    /// The timestamp as an instant, computed on each call with the settings the message
    /// was parsed with: a missing year is inferred (D7) and a missing offset means the
    /// configured zone (D8). `None` when there is no timestamp or it names an impossible
    /// date (Feb 29 of a common year); use the receive time then.
    pub fn timestamp(&self) -> Option<Timestamp> {
        let text = self.bytes(self.timestamp?);
        let stamp = time::scan_any(text)?;
        time::resolve(&stamp, self.reference, &self.zone)
    }

    /// HOSTNAME, if the header has one (D9). Fall back to the peer address otherwise.
    pub fn hostname(&self) -> Option<&str> {
        self.text(self.hostname)
    }

    /// APP-NAME (RFC 5424) or the TAG without `[pid]` and `:` (RFC 3164).
    pub fn app_name(&self) -> Option<&str> {
        self.text(self.app_name)
    }

    /// PROCID (RFC 5424) or the text inside `[...]` after the TAG (RFC 3164).
    pub fn proc_id(&self) -> Option<&str> {
        self.text(self.proc_id)
    }

    /// MSGID (RFC 5424 only).
    pub fn msg_id(&self) -> Option<&str> {
        self.text(self.msg_id)
    }

    /// A Cisco sequence number in front of an RFC 3164 header (`<189>16261: May 28 …`).
    pub fn sequence_id(&self) -> Option<&str> {
        self.text(self.sequence)
    }

    /// RFC 5424 STRUCTURED-DATA. Empty for RFC 3164, for `-`, and when the SD part was
    /// malformed (see [`structured_data_malformed`](Message::structured_data_malformed)).
    pub fn structured_data(&self) -> StructuredData<'_> {
        StructuredData {
            raw: &self.raw,
            store: &self.sd,
        }
    }

    /// True when an RFC 5424 STRUCTURED-DATA part could not be parsed and was dropped,
    /// keeping the MSG after it (D13).
    pub fn structured_data_malformed(&self) -> bool {
        self.sd_malformed
    }

    /// The message text (CONTENT for RFC 3164, MSG for RFC 5424), without a leading BOM.
    /// Empty when the message has none.
    pub fn msg(&self) -> &[u8] {
        self.bytes(self.msg)
    }

    /// True when a UTF-8 BOM preceded the message text and was removed (D14).
    pub fn had_bom(&self) -> bool {
        self.bom
    }

    /// The message text decoded as UTF-8, with each invalid sequence replaced by U+FFFD.
    /// Borrowed when the text is valid UTF-8.
    pub fn msg_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.msg())
    }

    /// How many U+FFFD replacements [`msg_lossy`](Message::msg_lossy) makes: 0 means the
    /// text is valid UTF-8.
    pub fn msg_replacements(&self) -> usize {
        self.msg()
            .utf8_chunks()
            .filter(|c| !c.invalid().is_empty())
            .count()
    }

    /// The input exactly as given to the parser (D12).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The zone used for timestamps without an offset.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// Detaches the message from its input by copying the input once.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            raw: Cow::Owned(self.raw.into_owned()),
            pri: self.pri,
            protocol: self.protocol,
            timestamp: self.timestamp,
            hostname: self.hostname,
            app_name: self.app_name,
            proc_id: self.proc_id,
            msg_id: self.msg_id,
            sequence: self.sequence,
            sd: self.sd,
            sd_malformed: self.sd_malformed,
            msg: self.msg,
            bom: self.bom,
            reference: self.reference,
            zone: self.zone,
        }
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("protocol", &self.protocol)
            .field("facility", &self.facility())
            .field("severity", &self.severity())
            .field("timestamp", &self.timestamp_str())
            .field("hostname", &self.hostname())
            .field("app_name", &self.app_name())
            .field("proc_id", &self.proc_id())
            .field("msg_id", &self.msg_id())
            .field("structured_data", &self.structured_data())
            .field("msg", &self.msg_lossy())
            .finish()
    }
}

/// Two messages are equal when every field reads the same; the raw bytes, the BOM flag
/// and the time settings are not compared.
impl PartialEq for Message<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.pri == other.pri
            && self.protocol == other.protocol
            && self.timestamp_str() == other.timestamp_str()
            && self.hostname() == other.hostname()
            && self.app_name() == other.app_name()
            && self.proc_id() == other.proc_id()
            && self.msg_id() == other.msg_id()
            && self.sequence_id() == other.sequence_id()
            && self.structured_data() == other.structured_data()
            && self.msg() == other.msg()
    }
}

/// RFC 5424 STRUCTURED-DATA: the SD-ELEMENTs in input order.
#[derive(Clone, Copy)]
pub struct StructuredData<'m> {
    raw: &'m [u8],
    store: &'m SdStore,
}

impl<'m> StructuredData<'m> {
    /// Number of SD-ELEMENTs.
    pub fn len(&self) -> usize {
        self.store.elements.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.store.elements.is_empty()
    }

    /// The elements in input order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SdElement<'m>> + 'm {
        let (raw, store) = (self.raw, self.store);
        store.elements.iter().map(move |e| SdElement {
            raw,
            id: e.id,
            params: &store.params[e.params_start..e.params_end],
        })
    }

    /// The first element with this SD-ID.
    pub fn get(&self, id: &str) -> Option<SdElement<'m>> {
        self.iter().find(|e| e.id() == id)
    }
}

impl fmt::Debug for StructuredData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for StructuredData<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// One SD-ELEMENT: an SD-ID and its parameters.
#[derive(Clone, Copy)]
pub struct SdElement<'m> {
    raw: &'m [u8],
    id: Span,
    params: &'m [(Span, Span)],
}

impl<'m> SdElement<'m> {
    /// The SD-ID (`exampleSDID@32473`, `timeQuality`).
    pub fn id(&self) -> &'m str {
        std::str::from_utf8(&self.raw[self.id.start..self.id.end]).unwrap_or_default()
    }

    /// The parameters in input order (a repeated name is kept), with values unescaped:
    /// `\"`, `\\` and `\]` become `"`, `\` and `]`; any other backslash pair stays as
    /// written (RFC 5424 §6.3.3, D13). A value that is not UTF-8 is decoded lossily.
    pub fn params(&self) -> impl ExactSizeIterator<Item = (&'m str, Cow<'m, str>)> + 'm {
        let raw = self.raw;
        self.params.iter().map(move |(n, v)| {
            let name = std::str::from_utf8(&raw[n.start..n.end]).unwrap_or_default();
            (name, unescape(&raw[v.start..v.end]))
        })
    }

    /// The value of the first parameter with this name.
    pub fn param(&self, name: &str) -> Option<Cow<'m, str>> {
        self.params().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl fmt::Debug for SdElement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdElement")
            .field("id", &self.id())
            .field("params", &self.params().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for SdElement<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id() && self.params().eq(other.params())
    }
}

fn unescape(v: &[u8]) -> Cow<'_, str> {
    if memchr::memchr(b'\\', v).is_none() {
        return String::from_utf8_lossy(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        if b == b'\\' && matches!(v.get(i + 1), Some(b'"' | b'\\' | b']')) {
            out.push(v[i + 1]);
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}
