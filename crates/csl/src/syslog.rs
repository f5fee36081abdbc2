//! Rows of the Log Analytics `Syslog` table, for messages that carry no CEF.

use std::borrow::Cow;
use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::context::{Context, SOURCE_SYSTEM};
use crate::schema::ColumnType;

/// The parts of a syslog message that the `Syslog` table keeps.
///
/// A plain struct, so this crate needs no syslog parser: the caller fills it
/// from whatever parsed the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyslogInput<'a> {
    /// The facility code, 0–23 (`None` when the message had no PRI).
    pub facility: Option<u8>,
    /// The severity code, 0–7 (`None` when the message had no PRI).
    pub severity: Option<u8>,
    /// The header HOSTNAME.
    pub hostname: Option<&'a str>,
    /// The APP-NAME or RFC 3164 TAG.
    pub process_name: Option<&'a str>,
    /// The PROCID or the `[pid]` of the TAG, as written.
    pub process_id: Option<&'a str>,
    /// The MSG part (not necessarily UTF-8; invalid bytes become U+FFFD).
    pub message: &'a [u8],
    /// The header timestamp, already resolved to an instant.
    pub event_time: Option<Timestamp>,
}

/// One row of the Log Analytics `Syslog` table.
///
/// `None` fields are left out of the JSON object. Log Analytics cuts values
/// over 64 KB; this row does not cut them itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyslogRow<'a> {
    /// When the collector received the message (UTC).
    #[serde(
        rename = "TimeGenerated",
        serialize_with = "crate::time::serialize_timestamp"
    )]
    pub time_generated: Timestamp,
    /// The [`Context`]'s `computer`, else the header HOSTNAME.
    #[serde(rename = "Computer", skip_serializing_if = "Option::is_none")]
    pub computer: Option<Cow<'a, str>>,
    /// The header HOSTNAME.
    #[serde(rename = "HostName", skip_serializing_if = "Option::is_none")]
    pub host_name: Option<Cow<'a, str>>,
    /// The sender's address ([`Context::host_ip`]).
    #[serde(
        rename = "HostIP",
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_ip"
    )]
    pub host_ip: Option<IpAddr>,
    /// The facility keyword (`auth`, `local4`, ...).
    #[serde(rename = "Facility", skip_serializing_if = "Option::is_none")]
    pub facility: Option<&'static str>,
    /// The severity keyword (`err`, `warning`, `info`, ...).
    #[serde(rename = "SeverityLevel", skip_serializing_if = "Option::is_none")]
    pub severity_level: Option<&'static str>,
    /// The APP-NAME or TAG.
    #[serde(rename = "ProcessName", skip_serializing_if = "Option::is_none")]
    pub process_name: Option<Cow<'a, str>>,
    /// The process id, when the PROCID is a decimal `i32`.
    #[serde(rename = "ProcessID", skip_serializing_if = "Option::is_none")]
    pub process_id: Option<i32>,
    /// The MSG part.
    #[serde(rename = "SyslogMessage", skip_serializing_if = "Option::is_none")]
    pub syslog_message: Option<Cow<'a, str>>,
    /// The header timestamp.
    #[serde(
        rename = "EventTime",
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_opt_timestamp"
    )]
    pub event_time: Option<Timestamp>,
    /// Always `OpsManager`.
    #[serde(rename = "SourceSystem")]
    pub source_system: &'static str,
}

impl SyslogRow<'_> {
    /// Copies every borrowed value.
    pub fn into_owned(self) -> SyslogRow<'static> {
        let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
        SyslogRow {
            time_generated: self.time_generated,
            computer: own(self.computer),
            host_name: own(self.host_name),
            host_ip: self.host_ip,
            facility: self.facility,
            severity_level: self.severity_level,
            process_name: own(self.process_name),
            process_id: self.process_id,
            syslog_message: own(self.syslog_message),
            event_time: self.event_time,
            source_system: self.source_system,
        }
    }
}

impl SyslogRow<'_> {
    /// Appends the row as one JSON object to `out`: the same bytes as
    /// `serde_json::to_writer(out, self)`, written faster. No newline is added.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json::WriteJson as _;
        let mut w = crate::json::ObjectWriter::new(out);
        self.time_generated
            .write_json(w.plain_key("\"TimeGenerated\":"));
        w.optional("\"Computer\":", self.computer.as_ref());
        w.optional("\"HostName\":", self.host_name.as_ref());
        w.optional("\"HostIP\":", self.host_ip.as_ref());
        w.optional("\"Facility\":", self.facility.as_ref());
        w.optional("\"SeverityLevel\":", self.severity_level.as_ref());
        w.optional("\"ProcessName\":", self.process_name.as_ref());
        w.optional("\"ProcessID\":", self.process_id.as_ref());
        w.optional("\"SyslogMessage\":", self.syslog_message.as_ref());
        w.optional("\"EventTime\":", self.event_time.as_ref());
        self.source_system
            .write_json(w.plain_key("\"SourceSystem\":"));
        w.end();
    }
}

/// A Syslog row as a query's input (routes and transformations of Syslog outputs), without
/// serialising it: strings stay borrowed, datetimes become Kusto ticks (100 ns).
#[cfg(feature = "kql")]
impl mcas_kql::Row for SyslogRow<'_> {
    fn get(&self, column: &str) -> Option<mcas_kql::Value<'_>> {
        use mcas_kql::Value as V;
        let ticks = |t: Timestamp| i64::try_from(t.as_nanosecond() / 100).unwrap_or(i64::MAX);
        match column {
            "TimeGenerated" => Some(V::DateTime(ticks(self.time_generated))),
            "Computer" => self
                .computer
                .as_deref()
                .map(|s| V::String(Cow::Borrowed(s))),
            "HostName" => self
                .host_name
                .as_deref()
                .map(|s| V::String(Cow::Borrowed(s))),
            "HostIP" => self.host_ip.map(|ip| V::String(Cow::Owned(ip.to_string()))),
            "Facility" => self.facility.map(|s| V::String(Cow::Borrowed(s))),
            "SeverityLevel" => self.severity_level.map(|s| V::String(Cow::Borrowed(s))),
            "ProcessName" => self
                .process_name
                .as_deref()
                .map(|s| V::String(Cow::Borrowed(s))),
            "ProcessID" => self.process_id.map(V::Int),
            "SyslogMessage" => self
                .syslog_message
                .as_deref()
                .map(|s| V::String(Cow::Borrowed(s))),
            "EventTime" => self.event_time.map(|t| V::DateTime(ticks(t))),
            "SourceSystem" => Some(V::String(Cow::Borrowed(self.source_system))),
            _ => None,
        }
    }
}

static SYSLOG_COLUMNS: &[(&str, ColumnType)] = &[
    ("TimeGenerated", ColumnType::Datetime),
    ("Computer", ColumnType::String),
    ("HostName", ColumnType::String),
    ("HostIP", ColumnType::String),
    ("Facility", ColumnType::String),
    ("SeverityLevel", ColumnType::String),
    ("ProcessName", ColumnType::String),
    ("ProcessID", ColumnType::Int),
    ("SyslogMessage", ColumnType::String),
    ("EventTime", ColumnType::Datetime),
    ("SourceSystem", ColumnType::String),
];

/// The (name, Azure type) of every column a [`SyslogRow`] can emit, in order.
pub fn syslog_columns() -> &'static [(&'static str, ColumnType)] {
    SYSLOG_COLUMNS
}

/// Builds a `Syslog` table row.
///
/// `TimeGenerated` is the receive time; `EventTime` the header time.
/// Facility and severity codes become the keywords the table uses:
/// `kern user mail daemon auth syslog lpr news uucp cron authpriv ftp ntp
/// audit alert at local0`…`local7` and `emerg alert crit err warning notice
/// info debug`.
///
/// ```
/// use mcas_csl::{map_syslog, Context, SyslogInput};
///
/// let ctx = Context::new(jiff::Timestamp::from_second(1_700_000_000)?);
/// let input = SyslogInput {
///     facility: Some(4),
///     severity: Some(6),
///     hostname: Some("host1"),
///     process_name: Some("sshd"),
///     process_id: Some("811"),
///     message: b"Accepted publickey for alice",
///     ..SyslogInput::default()
/// };
/// let row = map_syslog(input, &ctx);
/// let json = serde_json::to_string(&row)?;
/// assert!(json.contains(r#""Facility":"auth","SeverityLevel":"info","ProcessName":"sshd","ProcessID":811"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn map_syslog<'a>(input: SyslogInput<'a>, ctx: &Context<'a>) -> SyslogRow<'a> {
    SyslogRow {
        time_generated: ctx.received_at,
        computer: ctx.computer.or(input.hostname).map(Cow::Borrowed),
        host_name: input.hostname.map(Cow::Borrowed),
        host_ip: ctx.host_ip,
        facility: input.facility.and_then(facility_keyword),
        severity_level: input.severity.and_then(severity_keyword),
        process_name: input.process_name.map(Cow::Borrowed),
        process_id: input.process_id.and_then(|p| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse().ok()
            } else {
                None
            }
        }),
        syslog_message: Some(String::from_utf8_lossy(input.message)),
        event_time: input.event_time,
        source_system: SOURCE_SYSTEM,
    }
}

/// The facility keyword of a code (RFC 5424 table 1, with the keywords of
/// the fluentd syslog input that Microsoft's legacy agent used).
pub fn facility_keyword(code: u8) -> Option<&'static str> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3",
        "local4", "local5", "local6", "local7",
    ];
    NAMES.get(usize::from(code)).copied()
}

/// The severity keyword of a code, as the `Syslog` table writes it
/// (`warning`, where fluentd's tag said `warn`).
pub fn severity_keyword(code: u8) -> Option<&'static str> {
    const NAMES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    NAMES.get(usize::from(code)).copied()
}

fn serialize_ip<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
    match ip {
        Some(ip) => s.collect_str(ip),
        None => s.serialize_none(),
    }
}

fn serialize_opt_timestamp<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => crate::time::serialize_timestamp(ts, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        assert_eq!(facility_keyword(16), Some("local0"));
        assert_eq!(facility_keyword(20), Some("local4"));
        assert_eq!(facility_keyword(4), Some("auth"));
        assert_eq!(facility_keyword(24), None);
        assert_eq!(severity_keyword(4), Some("warning"));
        assert_eq!(severity_keyword(6), Some("info"));
        assert_eq!(severity_keyword(8), None);
    }

    #[test]
    fn row_fields_and_json() {
        let received = Timestamp::from_millisecond(1_700_000_000_123).unwrap();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let ctx = Context::new(received).with_host_ip(Some(ip));
        let input = SyslogInput {
            facility: Some(20),
            severity: Some(4),
            hostname: Some("fw01"),
            process_name: Some("kernel"),
            process_id: Some("x12"),
            message: b"bad \xff byte",
            event_time: Some(Timestamp::from_second(1_699_999_999).unwrap()),
        };
        let row = map_syslog(input, &ctx);
        assert_eq!(row.computer.as_deref(), Some("fw01"));
        assert_eq!(row.process_id, None);
        assert_eq!(row.syslog_message.as_deref(), Some("bad \u{fffd} byte"));
        let v: serde_json::Value = serde_json::to_value(&row).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj["TimeGenerated"], "2023-11-14T22:13:20.123Z");
        assert_eq!(obj["EventTime"], "2023-11-14T22:13:19.000Z");
        assert_eq!(obj["HostIP"], "192.0.2.9");
        assert_eq!(obj["Facility"], "local4");
        assert_eq!(obj["SeverityLevel"], "warning");
        assert_eq!(obj["SourceSystem"], "OpsManager");
        assert!(!obj.contains_key("ProcessID"));
        for key in obj.keys() {
            assert!(syslog_columns().iter().any(|(n, _)| n == key), "{key}");
        }
        let owned: SyslogRow<'static> = row.clone().into_owned();
        assert_eq!(owned, row);
    }

    #[test]
    fn context_computer_wins_over_hostname() {
        let ctx = Context::new(Timestamp::UNIX_EPOCH).with_computer(Some("relay"));
        let row = map_syslog(
            SyslogInput {
                hostname: Some("origin"),
                ..SyslogInput::default()
            },
            &ctx,
        );
        assert_eq!(row.computer.as_deref(), Some("relay"));
        assert_eq!(row.host_name.as_deref(), Some("origin"));
        assert_eq!(row.facility, None);
        assert_eq!(row.syslog_message.as_deref(), Some(""));
    }

    #[test]
    fn write_json_gives_the_bytes_serde_json_gives() {
        let ip6: IpAddr = "2001:db8::7".parse().unwrap();
        let full = SyslogInput {
            facility: Some(1),
            severity: Some(3),
            hostname: Some("h\"q"),
            process_name: Some("sshd"),
            process_id: Some("4242"),
            message: b"tab\there \\ \x01 \"quoted\" \xe2\x82\xac",
            event_time: Some(Timestamp::from_millisecond(-1).unwrap()),
        };
        let rows = [
            map_syslog(full, &Context::new(Timestamp::MAX).with_host_ip(Some(ip6))),
            map_syslog(SyslogInput::default(), &Context::new(Timestamp::MIN)),
        ];
        for row in rows {
            let mut ours = Vec::new();
            row.write_json(&mut ours);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&row).unwrap()
            );
        }
    }

    #[cfg(feature = "kql")]
    #[test]
    fn a_syslog_row_answers_queries_column_by_column() {
        use mcas_kql::Row as _;
        let ctx = Context::new("2024-05-08T16:07:11Z".parse().unwrap())
            .with_host_ip(Some("10.1.2.3".parse().unwrap()));
        let row = map_syslog(
            SyslogInput {
                facility: Some(4),
                severity: Some(3),
                hostname: Some("web01"),
                process_name: Some("sshd"),
                process_id: Some("42"),
                message: b"Failed password for root",
                event_time: None,
            },
            &ctx,
        );
        let schema =
            mcas_kql::Schema::new(syslog_columns().iter().map(|(n, t)| (*n, t.kql_type())));
        let q = mcas_kql::Query::compile(
            r#"source | where Facility == "auth" and SeverityLevel == "err" and ProcessID == 42 and SyslogMessage has "password" and HostIP == "10.1.2.3""#,
            &schema,
        )
        .unwrap();
        assert!(q.run(&row).is_some());
        assert_eq!(row.get("Nope"), None);
        let q =
            mcas_kql::Query::compile(r#"source | where ProcessName != "sshd""#, &schema).unwrap();
        assert!(q.run(&row).is_none());
    }
}
