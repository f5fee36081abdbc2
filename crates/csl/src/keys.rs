//! The default CEF key → column table (Microsoft's "CEF and CommonSecurityLog
//! field mapping", post-2023 columns). The crate documentation shows the same
//! table; `tests/keys.rs` holds it against the table in the spec.

use crate::schema::Column;

/// Where a CEF key goes by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyTarget {
    /// The column that receives the value (converted to its type).
    pub(crate) column: Column,
    /// A legacy `int` column that also receives the value when it parses as
    /// an `i32` (`ExternalID`, `DeviceCustomNumberN`); never a conversion
    /// failure when it does not.
    pub(crate) legacy_int: Option<Column>,
}

macro_rules! key_table {
    ($( $key:literal => $column:ident $(+ $legacy:ident)? ; )*) => {
        /// The default target of a CEF key (case-sensitive, as in the CEF standard).
        pub(crate) fn default_target(key: &str) -> Option<KeyTarget> {
            let (column, legacy_int) = match key {
                $( $key => (Column::$column, key_table!(@legacy $($legacy)?)), )*
                _ => return None,
            };
            Some(KeyTarget { column, legacy_int })
        }

        /// Every (key, column, legacy column) of the default table, for tests and docs.
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) static DEFAULT_KEYS: &[(&str, Column, Option<Column>)] = &[
            $( ($key, Column::$column, key_table!(@legacy $($legacy)?)), )*
        ];
    };
    (@legacy) => { None };
    (@legacy $legacy:ident) => { Some(Column::$legacy) };
}

key_table! {
    "act" => DeviceAction;
    "app" => ApplicationProtocol;
    "cat" => DeviceEventCategory;
    "cnt" => EventCount;
    "destinationDnsDomain" => DestinationDnsDomain;
    "destinationServiceName" => DestinationServiceName;
    "destinationTranslatedAddress" => DestinationTranslatedAddress;
    "destinationTranslatedPort" => DestinationTranslatedPort;
    "deviceDirection" => CommunicationDirection;
    "deviceDnsDomain" => DeviceDnsDomain;
    "deviceExternalId" => DeviceExternalID;
    "deviceFacility" => DeviceFacility;
    "deviceInboundInterface" => DeviceInboundInterface;
    "deviceNtDomain" => DeviceNtDomain;
    "deviceOutboundInterface" => DeviceOutboundInterface;
    "devicePayloadId" => DevicePayloadId;
    "deviceProcessName" => ProcessName;
    "deviceTranslatedAddress" => DeviceTranslatedAddress;
    "dhost" => DestinationHostName;
    "dmac" => DestinationMACAddress;
    "dntdom" => DestinationNTDomain;
    "dpid" => DestinationProcessId;
    "dpriv" => DestinationUserPrivileges;
    "dproc" => DestinationProcessName;
    "dpt" => DestinationPort;
    "dst" => DestinationIP;
    "dtz" => DeviceTimeZone;
    "duid" => DestinationUserID;
    "duser" => DestinationUserName;
    "dvc" => DeviceAddress;
    "dvchost" => DeviceName;
    "dvcmac" => DeviceMacAddress;
    "dvcpid" => ProcessID;
    "end" => EndTime;
    "externalId" => ExtID + ExternalID;
    "fileCreateTime" => FileCreateTime;
    "fileHash" => FileHash;
    "fileId" => FileID;
    "fileModificationTime" => FileModificationTime;
    "filePath" => FilePath;
    "filePermission" => FilePermission;
    "fileType" => FileType;
    "fname" => FileName;
    "fsize" => FileSize;
    "in" => ReceivedBytes;
    "msg" => Message;
    "oldFileCreateTime" => OldFileCreateTime;
    "oldFileHash" => OldFileHash;
    "oldFileId" => OldFileID;
    "oldFileModificationTime" => OldFileModificationTime;
    "oldFileName" => OldFileName;
    "oldFilePath" => OldFilePath;
    "oldFilePermission" => OldFilePermission;
    "oldFileSize" => OldFileSize;
    "oldFileType" => OldFileType;
    "out" => SentBytes;
    "outcome" => EventOutcome;
    "proto" => Protocol;
    "reason" => Reason;
    "request" => RequestURL;
    "requestClientApplication" => RequestClientApplication;
    "requestContext" => RequestContext;
    "requestCookies" => RequestCookies;
    "requestMethod" => RequestMethod;
    "rt" => ReceiptTime;
    "shost" => SourceHostName;
    "smac" => SourceMACAddress;
    "sntdom" => SourceNTDomain;
    "sourceDnsDomain" => SourceDnsDomain;
    "sourceServiceName" => SourceServiceName;
    "sourceTranslatedAddress" => SourceTranslatedAddress;
    "sourceTranslatedPort" => SourceTranslatedPort;
    "spid" => SourceProcessId;
    "spriv" => SourceUserPrivileges;
    "sproc" => SourceProcessName;
    "spt" => SourcePort;
    "src" => SourceIP;
    "start" => StartTime;
    "suid" => SourceUserID;
    "suser" => SourceUserName;
    "type" => EventType;
    "c6a1" => DeviceCustomIPv6Address1;
    "c6a1Label" => DeviceCustomIPv6Address1Label;
    "c6a2" => DeviceCustomIPv6Address2;
    "c6a2Label" => DeviceCustomIPv6Address2Label;
    "c6a3" => DeviceCustomIPv6Address3;
    "c6a3Label" => DeviceCustomIPv6Address3Label;
    "c6a4" => DeviceCustomIPv6Address4;
    "c6a4Label" => DeviceCustomIPv6Address4Label;
    "cfp1" => DeviceCustomFloatingPoint1;
    "cfp1Label" => DeviceCustomFloatingPoint1Label;
    "cfp2" => DeviceCustomFloatingPoint2;
    "cfp2Label" => DeviceCustomFloatingPoint2Label;
    "cfp3" => DeviceCustomFloatingPoint3;
    "cfp3Label" => DeviceCustomFloatingPoint3Label;
    "cfp4" => DeviceCustomFloatingPoint4;
    "cfp4Label" => DeviceCustomFloatingPoint4Label;
    "cn1" => FieldDeviceCustomNumber1 + DeviceCustomNumber1;
    "cn1Label" => DeviceCustomNumber1Label;
    "cn2" => FieldDeviceCustomNumber2 + DeviceCustomNumber2;
    "cn2Label" => DeviceCustomNumber2Label;
    "cn3" => FieldDeviceCustomNumber3 + DeviceCustomNumber3;
    "cn3Label" => DeviceCustomNumber3Label;
    "cs1" => DeviceCustomString1;
    "cs1Label" => DeviceCustomString1Label;
    "cs2" => DeviceCustomString2;
    "cs2Label" => DeviceCustomString2Label;
    "cs3" => DeviceCustomString3;
    "cs3Label" => DeviceCustomString3Label;
    "cs4" => DeviceCustomString4;
    "cs4Label" => DeviceCustomString4Label;
    "cs5" => DeviceCustomString5;
    "cs5Label" => DeviceCustomString5Label;
    "cs6" => DeviceCustomString6;
    "cs6Label" => DeviceCustomString6Label;
    "deviceCustomDate1" => DeviceCustomDate1;
    "deviceCustomDate1Label" => DeviceCustomDate1Label;
    "deviceCustomDate2" => DeviceCustomDate2;
    "deviceCustomDate2Label" => DeviceCustomDate2Label;
    "flexDate1" => FlexDate1;
    "flexDate1Label" => FlexDate1Label;
    "flexNumber1" => FlexNumber1;
    "flexNumber1Label" => FlexNumber1Label;
    "flexNumber2" => FlexNumber2;
    "flexNumber2Label" => FlexNumber2Label;
    "flexString1" => FlexString1;
    "flexString1Label" => FlexString1Label;
    "flexString2" => FlexString2;
    "flexString2Label" => FlexString2Label;
}

/// The custom-field keys that carry a value described by a `<key>Label` pair
/// (`cs3` with `cs3Label`, ...). Label rules apply to these keys only.
pub(crate) fn is_labelled_value_key(key: &str) -> bool {
    matches!(
        key,
        "c6a1"
            | "c6a2"
            | "c6a3"
            | "c6a4"
            | "cfp1"
            | "cfp2"
            | "cfp3"
            | "cfp4"
            | "cn1"
            | "cn2"
            | "cn3"
            | "cs1"
            | "cs2"
            | "cs3"
            | "cs4"
            | "cs5"
            | "cs6"
            | "deviceCustomDate1"
            | "deviceCustomDate2"
            | "flexDate1"
            | "flexNumber1"
            | "flexNumber2"
            | "flexString1"
            | "flexString2"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_resolves_to_its_row() {
        for &(key, column, legacy) in DEFAULT_KEYS {
            let t = default_target(key).unwrap();
            assert_eq!((t.column, t.legacy_int), (column, legacy), "{key}");
        }
        assert_eq!(default_target("Act"), None);
        assert_eq!(default_target("ad.srccountry"), None);
    }

    #[test]
    fn no_column_is_the_target_of_two_keys() {
        let mut seen = std::collections::HashSet::new();
        for &(key, column, legacy) in DEFAULT_KEYS {
            assert!(seen.insert(column), "{key}");
            if let Some(l) = legacy {
                assert!(seen.insert(l), "{key}");
            }
        }
    }

    #[test]
    fn labelled_keys_have_a_label_key() {
        for &(key, _, _) in DEFAULT_KEYS {
            if is_labelled_value_key(key) {
                let label = format!("{key}Label");
                assert!(default_target(&label).is_some(), "{label}");
            }
        }
    }
}
