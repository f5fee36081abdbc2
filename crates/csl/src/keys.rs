//! The default CEF key → column table (Microsoft's "CEF and CommonSecurityLog
//! field mapping", post-2023 columns). The crate documentation shows the same
//! table; `tests/keys.rs` holds it against the table in the spec.

use std::sync::OnceLock;

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
        /// Every (key, column, legacy column) of the default table.
        pub(crate) static DEFAULT_KEYS: &[(&str, Column, Option<Column>)] = &[
            $( ($key, Column::$column, key_table!(@legacy $($legacy)?)), )*
        ];
    };
    (@legacy) => { None };
    (@legacy $legacy:ident) => { Some(Column::$legacy) };
}

/// Where a key goes by default: a short name of the table, or the standard
/// full name of one (`sourceAddress` for `src`, from `mcas-cef`'s dictionary).
///
/// This runs for every extension pair, so it is a hash look-up (one string
/// comparison on a hit) rather than a `match` over 130 strings.
pub(crate) fn lookup(key: &str) -> Option<KeyTarget> {
    static INDEX: OnceLock<KeyIndex> = OnceLock::new();
    INDEX.get_or_init(KeyIndex::build).get(key)
}

/// The default target of a short key, by a plain scan (tests only).
#[cfg(test)]
pub(crate) fn default_target(key: &str) -> Option<KeyTarget> {
    DEFAULT_KEYS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, column, legacy_int)| KeyTarget { column, legacy_int })
}

/// Open addressing with linear probing; `SLOTS` is a power of two well above
/// the ~220 names, so probes stay short.
struct KeyIndex {
    slots: Vec<Option<(u64, &'static str, KeyTarget)>>,
}

const SLOTS: usize = 1024;

/// FNV-1a: keys are short ASCII names, this is fast and spreads them well.
fn hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl KeyIndex {
    fn build() -> KeyIndex {
        let mut index = KeyIndex {
            slots: vec![None; SLOTS],
        };
        for &(key, column, legacy_int) in DEFAULT_KEYS {
            index.insert(key, KeyTarget { column, legacy_int });
        }
        for def in mcas_cef::dictionary::all() {
            if def.full == def.short || def.full.contains(' ') {
                continue;
            }
            if let Some(target) = index.get(def.short)
                && index.get(def.full).is_none()
            {
                index.insert(def.full, target);
            }
        }
        index
    }

    fn insert(&mut self, key: &'static str, target: KeyTarget) {
        let h = hash(key);
        // Truncation is the point: the low bits pick the slot.
        let mut i = h as usize & (SLOTS - 1);
        while self.slots[i].is_some() {
            i = (i + 1) & (SLOTS - 1);
        }
        self.slots[i] = Some((h, key, target));
    }

    fn get(&self, key: &str) -> Option<KeyTarget> {
        let h = hash(key);
        let mut i = h as usize & (SLOTS - 1);
        loop {
            match &self.slots[i] {
                None => return None,
                Some((sh, k, t)) if *sh == h && *k == key => return Some(*t),
                Some(_) => i = (i + 1) & (SLOTS - 1),
            }
        }
    }
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
        for &(key, column, legacy) in DEFAULT_KEYS {
            let t = lookup(key).unwrap();
            assert_eq!((t.column, t.legacy_int), (column, legacy), "{key}");
        }
        assert_eq!(default_target("Act"), None);
        assert_eq!(lookup("Act"), None);
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("ad.srccountry"), None);
        assert_eq!(lookup("sourceAddress"), lookup("src"));
        assert_eq!(lookup("deviceCustomNumber1"), lookup("cn1"));
        // Full names of keys without a column stay unmapped.
        assert_eq!(lookup("agentHostName"), None);
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
