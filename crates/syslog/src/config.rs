use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Settings for [`parse_with`](crate::parse_with).
///
/// Setters take `&mut self` and return `&mut Self`, so they chain:
///
/// ```
/// use mcas_syslog::ParserConfig;
/// let mut cfg = ParserConfig::new();
/// cfg.reference_time("2024-01-02T00:00:00Z".parse()?)
///     .default_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(2)));
/// let m = mcas_syslog::parse_with(&cfg, b"<13>Dec 31 23:00:00 host app: hi")?;
/// // December seen in January is last year (D7), read at +02:00 (D8).
/// assert_eq!(m.timestamp().map(|t| t.to_string()).as_deref(), Some("2023-12-31T21:00:00Z"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ParserConfig {
    pub(crate) reference: Option<Timestamp>,
    pub(crate) zone: TimeZone,
    pub(crate) year_after_time: bool,
}

impl Default for ParserConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ParserConfig {
    /// The defaults: year inference against the clock at the time
    /// [`Message::timestamp`](crate::Message::timestamp) is called, zone-less timestamps
    /// read as UTC, no year after the time.
    pub fn new() -> Self {
        Self {
            reference: None,
            zone: TimeZone::UTC,
            year_after_time: false,
        }
    }

    /// Sets the instant that year-less RFC 3164 timestamps are placed near (D7). Use the
    /// receive time of the message. Without it, the current clock is read when the
    /// timestamp is resolved.
    pub fn reference_time(&mut self, now: Timestamp) -> &mut Self {
        self.reference = Some(now);
        self
    }

    /// Clears the reference time, so the clock is read on demand.
    pub fn clear_reference_time(&mut self) -> &mut Self {
        self.reference = None;
        self
    }

    /// Sets the zone in which timestamps without an offset are read (D8). The default
    /// is UTC, which does not depend on the forwarder host's settings; set the zone
    /// of the devices behind a listener when they send local wall-clock time.
    pub fn default_zone(&mut self, zone: TimeZone) -> &mut Self {
        self.zone = zone;
        self
    }

    /// Accepts a year after the time (`Dec  3 09:10:12 2019`, Linksys/PIX style). Off
    /// by default, because a host name made of four digits would be taken as a year.
    pub fn year_after_time(&mut self, yes: bool) -> &mut Self {
        self.year_after_time = yes;
        self
    }

    /// The reference time, if one is set.
    pub fn reference(&self) -> Option<Timestamp> {
        self.reference
    }

    /// The zone used for timestamps without an offset.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }
}
