//! What the mapper needs besides the CEF event.

use std::net::IpAddr;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;

/// The value of `SourceSystem` for agent-collected CEF and syslog.
pub const SOURCE_SYSTEM: &str = "OpsManager";

/// Facts about one received message that do not come from its CEF text.
///
/// The forwarder fills this from the syslog header and the connection, so
/// the mapper needs no syslog types:
///
/// ```
/// let received = jiff::Timestamp::from_second(1_700_000_000)?;
/// let mut ctx = mcas_csl::Context::new(received);
/// ctx.computer = Some("fw01"); // the syslog HOSTNAME
/// ctx.collector_host_name = Some("collector-1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Context<'a> {
    /// When the collector received the message (UTC); the default `TimeGenerated`.
    pub received_at: Timestamp,
    /// `Computer`: the syslog header HOSTNAME. When the header has none, the
    /// forwarder may pass the sender's address as text.
    pub computer: Option<&'a str>,
    /// `CollectorHostName`: the name of the machine running the forwarder.
    pub collector_host_name: Option<&'a str>,
    /// The sender's address (`HostIP` of a [`SyslogRow`](crate::SyslogRow);
    /// `CommonSecurityLog` has no such column).
    pub host_ip: Option<IpAddr>,
    /// The zone of CEF dates written without one when the event has no usable
    /// `dtz` either (`start`, `end`, and `rt` for [`TimeGeneratedPolicy::Rt`]).
    /// `None` means UTC.
    pub default_zone: Option<&'a TimeZone>,
}

impl<'a> Context<'a> {
    /// A context with only the receive time set.
    pub fn new(received_at: Timestamp) -> Self {
        Context {
            received_at,
            computer: None,
            collector_host_name: None,
            host_ip: None,
            default_zone: None,
        }
    }

    /// Sets `computer` (the syslog HOSTNAME).
    #[must_use]
    pub fn with_computer(mut self, computer: Option<&'a str>) -> Self {
        self.computer = computer;
        self
    }

    /// Sets `collector_host_name`.
    #[must_use]
    pub fn with_collector_host_name(mut self, name: Option<&'a str>) -> Self {
        self.collector_host_name = name;
        self
    }

    /// Sets `host_ip`.
    #[must_use]
    pub fn with_host_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.host_ip = ip;
        self
    }

    /// Sets `default_zone`.
    #[must_use]
    pub fn with_default_zone(mut self, zone: Option<&'a TimeZone>) -> Self {
        self.default_zone = zone;
        self
    }

    /// The date context for CEF date conversions.
    pub(crate) fn date_context(&self) -> mcas_cef::DateContext {
        let ctx = mcas_cef::DateContext::new(self.received_at);
        match self.default_zone {
            Some(zone) => ctx.with_default_zone(zone.clone()),
            None => ctx,
        }
    }
}

/// Where `TimeGenerated` comes from.
///
/// Microsoft's agents always use the receive time; Sentinel users often want
/// the device's own time instead. The CEF-based choices fall back to the
/// receive time when the key is missing or its date cannot be read (the
/// latter with a [`Warning::TimeGeneratedFallback`](crate::Warning::TimeGeneratedFallback)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimeGeneratedPolicy {
    /// The time the collector received the message (the default, as Microsoft does).
    #[default]
    ReceiveTime,
    /// The event's `rt` (device receipt time).
    Rt,
    /// The event's `start`.
    Start,
}
