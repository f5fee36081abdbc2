//! CEF events mapped to rows of the Azure Log Analytics `CommonSecurityLog`
//! table (and, for plain syslog, the `Syslog` table).
//!
//! With the Logs Ingestion API the client, not the service, turns CEF into
//! columns. This crate does that mapping the way Microsoft documents it (the
//! post-February-2023 schema: `ExtID`, `FieldDeviceCustomNumberN`,
//! `EventOutcome`, `Reason`, `DeviceEventCategory`, unescaped values), and
//! adds what users ask for: rules that route unmapped keys to columns, a
//! choice of `TimeGenerated`, and warnings instead of silent loss.
//!
//! * [`map`] / [`Mapper::map`]: a parsed [`mcas_cef::Event`] plus a
//!   [`Context`] (syslog host name, receive time) gives a
//!   [`CommonSecurityLog`] row that borrows from the event, and a list of
//!   [`Warning`]s.
//! * [`columns()`] / [`columns_with`]: the ordered (name, type) list a row can
//!   emit, for DCR stream declarations.
//! * [`MappingRules`]: user routes, dropped keys, the 64 KB cap.
//! * [`SyslogRow`] / [`map_syslog`]: `Syslog` table rows for non-CEF messages.
//!
//! The crate depends on `mcas-cef` only; the syslog header reaches it through
//! [`Context`] and [`SyslogInput`].
//!
//! # Example
//!
//! ```
//! let line = b"CEF:0|Acme|Firewall|9.1|traffic:deny|Traffic denied|5|\
//!              src=10.1.1.10 spt=51514 dpt=443 act=deny ad.srccountry=NL";
//! let event = mcas_cef::parse(line)?;
//!
//! let received = jiff::Timestamp::from_second(1_700_000_000)?;
//! let ctx = mcas_csl::Context::new(received).with_computer(Some("fw01"));
//! let mapped = mcas_csl::map(&event, &ctx);
//!
//! let row = &mapped.row;
//! assert_eq!(row.source_ip.as_deref(), Some("10.1.1.10"));
//! assert_eq!(row.destination_port, Some(443));
//! assert_eq!(row.additional_extensions.as_deref(), Some("ad.srccountry=NL"));
//!
//! let json = serde_json::to_string(row)?;
//! assert!(json.starts_with(r#"{"TimeGenerated":"2023-11-14T22:13:20.000Z","DeviceVendor":"Acme""#));
//!
//! // The same event with a rule that gives the country its own column.
//! let mut rules = mcas_csl::MappingRules::new();
//! rules.map_key("ad.srccountry", "SrcCountry_CF")?;
//! let mapper = mcas_csl::Mapper::new(rules, mcas_csl::TimeGeneratedPolicy::ReceiveTime);
//! let mapped = mapper.map(&event, &ctx);
//! assert_eq!(mapped.row.additional_extensions, None);
//! assert!(serde_json::to_string(&mapped.row)?.ends_with(r#""SrcCountry_CF":"NL"}"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Key → column table
//!
//! Header fields go verbatim to `DeviceVendor`, `DeviceProduct`,
//! `DeviceVersion`, `DeviceEventClassID`, `Activity` (Name) and `LogSeverity`.
//! Extension keys (case-sensitive; a standard full name such as
//! `sourceAddress` counts as its short name `src`):
//!
//! | CEF key | Column | Type |
//! |---|---|---|
//! | `act` | DeviceAction | string |
//! | `app` | ApplicationProtocol | string |
//! | `cat` | DeviceEventCategory | string |
//! | `cnt` | EventCount | int |
//! | `destinationDnsDomain` | DestinationDnsDomain | string |
//! | `destinationServiceName` | DestinationServiceName | string |
//! | `destinationTranslatedAddress` | DestinationTranslatedAddress | string |
//! | `destinationTranslatedPort` | DestinationTranslatedPort | int |
//! | `deviceDirection` | CommunicationDirection | string |
//! | `deviceDnsDomain` | DeviceDnsDomain | string |
//! | `deviceExternalId` | DeviceExternalID | string |
//! | `deviceFacility` | DeviceFacility | string |
//! | `deviceInboundInterface` | DeviceInboundInterface | string |
//! | `deviceNtDomain` | DeviceNtDomain | string |
//! | `deviceOutboundInterface` | DeviceOutboundInterface | string |
//! | `devicePayloadId` | DevicePayloadId | string |
//! | `deviceProcessName` | ProcessName | string |
//! | `deviceTranslatedAddress` | DeviceTranslatedAddress | string |
//! | `dhost` | DestinationHostName | string |
//! | `dmac` | DestinationMACAddress | string |
//! | `dntdom` | DestinationNTDomain | string |
//! | `dpid` | DestinationProcessId | int |
//! | `dpriv` | DestinationUserPrivileges | string |
//! | `dproc` | DestinationProcessName | string |
//! | `dpt` | DestinationPort | int |
//! | `dst` | DestinationIP | string |
//! | `dtz` | DeviceTimeZone | string |
//! | `duid` | DestinationUserID | string |
//! | `duser` | DestinationUserName | string |
//! | `dvc` | DeviceAddress | string |
//! | `dvchost` | DeviceName | string |
//! | `dvcmac` | DeviceMacAddress | string |
//! | `dvcpid` | ProcessID | int |
//! | `end` | EndTime | datetime |
//! | `externalId` | ExtID, and ExternalID when it fits an `i32` | string, int |
//! | `fileCreateTime` | FileCreateTime (text kept) | string |
//! | `fileHash` | FileHash | string |
//! | `fileId` | FileID | string |
//! | `fileModificationTime` | FileModificationTime (text kept) | string |
//! | `filePath` | FilePath | string |
//! | `filePermission` | FilePermission | string |
//! | `fileType` | FileType | string |
//! | `fname` | FileName | string |
//! | `fsize` | FileSize | int |
//! | `in` | ReceivedBytes | long |
//! | `msg` | Message | string |
//! | `oldFileCreateTime` | OldFileCreateTime (text kept) | string |
//! | `oldFileHash` | OldFileHash | string |
//! | `oldFileId` | OldFileID | string |
//! | `oldFileModificationTime` | OldFileModificationTime (text kept) | string |
//! | `oldFileName` | OldFileName | string |
//! | `oldFilePath` | OldFilePath | string |
//! | `oldFilePermission` | OldFilePermission | string |
//! | `oldFileSize` | OldFileSize | int |
//! | `oldFileType` | OldFileType | string |
//! | `out` | SentBytes | long |
//! | `outcome` | EventOutcome | string |
//! | `proto` | Protocol | string |
//! | `reason` | Reason | string |
//! | `request` | RequestURL | string |
//! | `requestClientApplication` | RequestClientApplication | string |
//! | `requestContext` | RequestContext | string |
//! | `requestCookies` | RequestCookies | string |
//! | `requestMethod` | RequestMethod | string |
//! | `rt` | ReceiptTime (text kept) | string |
//! | `shost` | SourceHostName | string |
//! | `smac` | SourceMACAddress | string |
//! | `sntdom` | SourceNTDomain | string |
//! | `sourceDnsDomain` | SourceDnsDomain | string |
//! | `sourceServiceName` | SourceServiceName | string |
//! | `sourceTranslatedAddress` | SourceTranslatedAddress | string |
//! | `sourceTranslatedPort` | SourceTranslatedPort | int |
//! | `spid` | SourceProcessId | int |
//! | `spriv` | SourceUserPrivileges | string |
//! | `sproc` | SourceProcessName | string |
//! | `spt` | SourcePort | int |
//! | `src` | SourceIP | string |
//! | `start` | StartTime | datetime |
//! | `suid` | SourceUserID | string |
//! | `suser` | SourceUserName | string |
//! | `type` | EventType | int |
//! | `c6a1`…`c6a4` | DeviceCustomIPv6Address1…4 | string |
//! | `cfp1`…`cfp4` | DeviceCustomFloatingPoint1…4 | real |
//! | `cn1`…`cn3` | FieldDeviceCustomNumber1…3, and DeviceCustomNumber1…3 when it fits an `i32` | long, int |
//! | `cs1`…`cs6` | DeviceCustomString1…6 | string |
//! | `deviceCustomDate1`, `deviceCustomDate2` | DeviceCustomDate1, DeviceCustomDate2 (text kept) | string |
//! | `flexDate1` | FlexDate1 (text kept) | string |
//! | `flexNumber1`, `flexNumber2` | FlexNumber1, FlexNumber2 | int |
//! | `flexString1`, `flexString2` | FlexString1, FlexString2 | string |
//! | `<custom key>Label` (`cs1Label`, `cn2Label`, `c6a3Label`, `cfp4Label`, `flexDate1Label`, ...) | the value column's name + `Label` | string |
//!
//! Every other key goes to `AdditionalExtensions`. From the [`Context`]:
//! `Computer` (syslog HOSTNAME), `CollectorHostName`, `TimeGenerated`
//! (receive time unless a [`TimeGeneratedPolicy`] says otherwise);
//! `SourceSystem` is always `OpsManager`. The computed and enrichment columns
//! (`OriginalLogSeverity`, `RemoteIP`, `RemotePort`, `SimplifiedDeviceAction`,
//! threat-intelligence columns) are left empty.

#![deny(missing_docs)]

mod context;
mod json;
mod keys;
#[cfg(feature = "kql")]
mod kql;
mod map;
mod rules;
mod schema;
mod syslog;
mod time;

pub use context::{Context, SOURCE_SYSTEM, TimeGeneratedPolicy};
pub use map::{Mapped, Mapper, Warning, map};
pub use rules::{DEFAULT_MAX_FIELD_BYTES, MappingRules, RulesError, RulesErrorKind};
pub use schema::{ColumnType, CommonSecurityLog, CustomColumns, CustomValue, columns};
pub use syslog::{
    SyslogInput, SyslogRow, facility_keyword, map_syslog, severity_keyword, syslog_columns,
};

/// [`columns()`] followed by the custom `_CF` columns of `rules`, as owned
/// (name, type) pairs.
///
/// ```
/// let mut rules = mcas_csl::MappingRules::new();
/// rules.map_key_as("riskScore", "RiskScore_CF", Some(mcas_csl::ColumnType::Long))?;
/// let cols = mcas_csl::columns_with(&rules);
/// assert_eq!(cols.len(), 158);
/// assert_eq!(cols[157], ("RiskScore_CF".to_owned(), mcas_csl::ColumnType::Long));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn columns_with(rules: &MappingRules) -> Vec<(String, ColumnType)> {
    columns()
        .iter()
        .map(|(n, t)| ((*n).to_owned(), *t))
        .chain(rules.custom_columns().iter().cloned())
        .collect()
}
