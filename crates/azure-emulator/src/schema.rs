//! Built-in table schemas, transcribed from the project's spec.
//!
//! The CommonSecurityLog list is the native column order of the table (157 columns,
//! `spec/commonsecuritylog.md` §2), without the system columns (`TenantId`, `Type`,
//! `_ResourceId`, `_SubscriptionId`, `_BilledSize`, `_IsBillable`) that a client cannot write.
//! It is transcribed here on purpose rather than taken from `mcas-csl`, so the emulator is an
//! independent reading of the documentation.
//!
//! The Syslog list is the writable part of Microsoft's `Syslog` table reference
//! (Azure Monitor Logs reference, table `Syslog`).

use crate::config::ColumnType;

/// Columns of the `CommonSecurityLog` table, in native order, with their Kusto types.
pub const COMMON_SECURITY_LOG_COLUMNS: &[(&str, ColumnType)] = &[
    ("TimeGenerated", ColumnType::DateTime),
    ("DeviceVendor", ColumnType::String),
    ("DeviceProduct", ColumnType::String),
    ("DeviceVersion", ColumnType::String),
    ("DeviceEventClassID", ColumnType::String),
    ("Activity", ColumnType::String),
    ("LogSeverity", ColumnType::String),
    ("OriginalLogSeverity", ColumnType::String),
    ("AdditionalExtensions", ColumnType::String),
    ("DeviceAction", ColumnType::String),
    ("ApplicationProtocol", ColumnType::String),
    ("EventCount", ColumnType::Int),
    ("DestinationDnsDomain", ColumnType::String),
    ("DestinationServiceName", ColumnType::String),
    ("DestinationTranslatedAddress", ColumnType::String),
    ("DestinationTranslatedPort", ColumnType::Int),
    ("CommunicationDirection", ColumnType::String),
    ("DeviceDnsDomain", ColumnType::String),
    ("DeviceExternalID", ColumnType::String),
    ("DeviceFacility", ColumnType::String),
    ("DeviceInboundInterface", ColumnType::String),
    ("DeviceNtDomain", ColumnType::String),
    ("DeviceOutboundInterface", ColumnType::String),
    ("DevicePayloadId", ColumnType::String),
    ("ProcessName", ColumnType::String),
    ("DeviceTranslatedAddress", ColumnType::String),
    ("DestinationHostName", ColumnType::String),
    ("DestinationMACAddress", ColumnType::String),
    ("DestinationNTDomain", ColumnType::String),
    ("DestinationProcessId", ColumnType::Int),
    ("DestinationUserPrivileges", ColumnType::String),
    ("DestinationProcessName", ColumnType::String),
    ("DestinationPort", ColumnType::Int),
    ("DestinationIP", ColumnType::String),
    ("DeviceTimeZone", ColumnType::String),
    ("DestinationUserID", ColumnType::String),
    ("DestinationUserName", ColumnType::String),
    ("DeviceAddress", ColumnType::String),
    ("DeviceName", ColumnType::String),
    ("DeviceMacAddress", ColumnType::String),
    ("ProcessID", ColumnType::Int),
    ("EndTime", ColumnType::DateTime),
    ("ExternalID", ColumnType::Int),
    ("ExtID", ColumnType::String),
    ("FileCreateTime", ColumnType::String),
    ("FileHash", ColumnType::String),
    ("FileID", ColumnType::String),
    ("FileModificationTime", ColumnType::String),
    ("FilePath", ColumnType::String),
    ("FilePermission", ColumnType::String),
    ("FileType", ColumnType::String),
    ("FileName", ColumnType::String),
    ("FileSize", ColumnType::Int),
    ("ReceivedBytes", ColumnType::Long),
    ("Message", ColumnType::String),
    ("OldFileCreateTime", ColumnType::String),
    ("OldFileHash", ColumnType::String),
    ("OldFileID", ColumnType::String),
    ("OldFileModificationTime", ColumnType::String),
    ("OldFileName", ColumnType::String),
    ("OldFilePath", ColumnType::String),
    ("OldFilePermission", ColumnType::String),
    ("OldFileSize", ColumnType::Int),
    ("OldFileType", ColumnType::String),
    ("SentBytes", ColumnType::Long),
    ("EventOutcome", ColumnType::String),
    ("Protocol", ColumnType::String),
    ("Reason", ColumnType::String),
    ("RequestURL", ColumnType::String),
    ("RequestClientApplication", ColumnType::String),
    ("RequestContext", ColumnType::String),
    ("RequestCookies", ColumnType::String),
    ("RequestMethod", ColumnType::String),
    ("ReceiptTime", ColumnType::String),
    ("SourceHostName", ColumnType::String),
    ("SourceMACAddress", ColumnType::String),
    ("SourceNTDomain", ColumnType::String),
    ("SourceDnsDomain", ColumnType::String),
    ("SourceServiceName", ColumnType::String),
    ("SourceTranslatedAddress", ColumnType::String),
    ("SourceTranslatedPort", ColumnType::Int),
    ("SourceProcessId", ColumnType::Int),
    ("SourceUserPrivileges", ColumnType::String),
    ("SourceProcessName", ColumnType::String),
    ("SourcePort", ColumnType::Int),
    ("SourceIP", ColumnType::String),
    ("StartTime", ColumnType::DateTime),
    ("SourceUserID", ColumnType::String),
    ("SourceUserName", ColumnType::String),
    ("EventType", ColumnType::Int),
    ("DeviceEventCategory", ColumnType::String),
    ("DeviceCustomIPv6Address1", ColumnType::String),
    ("DeviceCustomIPv6Address1Label", ColumnType::String),
    ("DeviceCustomIPv6Address2", ColumnType::String),
    ("DeviceCustomIPv6Address2Label", ColumnType::String),
    ("DeviceCustomIPv6Address3", ColumnType::String),
    ("DeviceCustomIPv6Address3Label", ColumnType::String),
    ("DeviceCustomIPv6Address4", ColumnType::String),
    ("DeviceCustomIPv6Address4Label", ColumnType::String),
    ("DeviceCustomFloatingPoint1", ColumnType::Real),
    ("DeviceCustomFloatingPoint1Label", ColumnType::String),
    ("DeviceCustomFloatingPoint2", ColumnType::Real),
    ("DeviceCustomFloatingPoint2Label", ColumnType::String),
    ("DeviceCustomFloatingPoint3", ColumnType::Real),
    ("DeviceCustomFloatingPoint3Label", ColumnType::String),
    ("DeviceCustomFloatingPoint4", ColumnType::Real),
    ("DeviceCustomFloatingPoint4Label", ColumnType::String),
    ("DeviceCustomNumber1", ColumnType::Int),
    ("FieldDeviceCustomNumber1", ColumnType::Long),
    ("DeviceCustomNumber1Label", ColumnType::String),
    ("DeviceCustomNumber2", ColumnType::Int),
    ("FieldDeviceCustomNumber2", ColumnType::Long),
    ("DeviceCustomNumber2Label", ColumnType::String),
    ("DeviceCustomNumber3", ColumnType::Int),
    ("FieldDeviceCustomNumber3", ColumnType::Long),
    ("DeviceCustomNumber3Label", ColumnType::String),
    ("DeviceCustomString1", ColumnType::String),
    ("DeviceCustomString1Label", ColumnType::String),
    ("DeviceCustomString2", ColumnType::String),
    ("DeviceCustomString2Label", ColumnType::String),
    ("DeviceCustomString3", ColumnType::String),
    ("DeviceCustomString3Label", ColumnType::String),
    ("DeviceCustomString4", ColumnType::String),
    ("DeviceCustomString4Label", ColumnType::String),
    ("DeviceCustomString5", ColumnType::String),
    ("DeviceCustomString5Label", ColumnType::String),
    ("DeviceCustomString6", ColumnType::String),
    ("DeviceCustomString6Label", ColumnType::String),
    ("DeviceCustomDate1", ColumnType::String),
    ("DeviceCustomDate1Label", ColumnType::String),
    ("DeviceCustomDate2", ColumnType::String),
    ("DeviceCustomDate2Label", ColumnType::String),
    ("FlexDate1", ColumnType::String),
    ("FlexDate1Label", ColumnType::String),
    ("FlexNumber1", ColumnType::Int),
    ("FlexNumber1Label", ColumnType::String),
    ("FlexNumber2", ColumnType::Int),
    ("FlexNumber2Label", ColumnType::String),
    ("FlexString1", ColumnType::String),
    ("FlexString1Label", ColumnType::String),
    ("FlexString2", ColumnType::String),
    ("FlexString2Label", ColumnType::String),
    ("RemoteIP", ColumnType::String),
    ("RemotePort", ColumnType::String),
    ("MaliciousIP", ColumnType::String),
    ("ThreatSeverity", ColumnType::Int),
    ("IndicatorThreatType", ColumnType::String),
    ("ThreatDescription", ColumnType::String),
    ("ThreatConfidence", ColumnType::String),
    ("ReportReferenceLink", ColumnType::String),
    ("MaliciousIPLongitude", ColumnType::Real),
    ("MaliciousIPLatitude", ColumnType::Real),
    ("MaliciousIPCountry", ColumnType::String),
    ("Computer", ColumnType::String),
    ("SourceSystem", ColumnType::String),
    ("SimplifiedDeviceAction", ColumnType::String),
    ("CollectorHostName", ColumnType::String),
];

/// Writable columns of the `Syslog` table with their Kusto types.
pub const SYSLOG_COLUMNS: &[(&str, ColumnType)] = &[
    ("TimeGenerated", ColumnType::DateTime),
    ("Computer", ColumnType::String),
    ("EventTime", ColumnType::DateTime),
    ("Facility", ColumnType::String),
    ("HostIP", ColumnType::String),
    ("HostName", ColumnType::String),
    ("ProcessID", ColumnType::Int),
    ("ProcessName", ColumnType::String),
    ("SeverityLevel", ColumnType::String),
    ("SourceSystem", ColumnType::String),
    ("SyslogMessage", ColumnType::String),
    ("CollectorHostName", ColumnType::String),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn common_security_log_has_157_unique_columns_in_spec_order() {
        assert_eq!(COMMON_SECURITY_LOG_COLUMNS.len(), 157);
        let names: HashSet<_> = COMMON_SECURITY_LOG_COLUMNS.iter().map(|c| c.0).collect();
        assert_eq!(names.len(), 157);
        assert_eq!(COMMON_SECURITY_LOG_COLUMNS[0].0, "TimeGenerated");
        assert_eq!(COMMON_SECURITY_LOG_COLUMNS[156].0, "CollectorHostName");
        // Spot checks of the type notes in the spec.
        let ty = |n: &str| {
            COMMON_SECURITY_LOG_COLUMNS
                .iter()
                .find(|c| c.0 == n)
                .map(|c| c.1)
        };
        assert_eq!(ty("RemotePort"), Some(ColumnType::String));
        assert_eq!(ty("ReceivedBytes"), Some(ColumnType::Long));
        assert_eq!(ty("FieldDeviceCustomNumber1"), Some(ColumnType::Long));
        assert_eq!(ty("DeviceCustomNumber1"), Some(ColumnType::Int));
        assert_eq!(ty("ReceiptTime"), Some(ColumnType::String));
        assert_eq!(ty("StartTime"), Some(ColumnType::DateTime));
        assert_eq!(ty("MaliciousIPLatitude"), Some(ColumnType::Real));
        let datetimes: Vec<_> = COMMON_SECURITY_LOG_COLUMNS
            .iter()
            .filter(|c| c.1 == ColumnType::DateTime)
            .map(|c| c.0)
            .collect();
        assert_eq!(datetimes, ["TimeGenerated", "EndTime", "StartTime"]);
    }

    #[test]
    fn syslog_columns_are_unique() {
        let names: HashSet<_> = SYSLOG_COLUMNS.iter().map(|c| c.0).collect();
        assert_eq!(names.len(), SYSLOG_COLUMNS.len());
    }
}
