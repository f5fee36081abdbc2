//! The `CommonSecurityLog` row type and its schema, generated from one list so
//! that the struct fields, their serde names and [`columns()`] cannot disagree.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

/// The type of a Log Analytics column, as declared in a DCR stream.
///
/// `CommonSecurityLog` uses only `string`, `int`, `long`, `real` and
/// `datetime`; `boolean` exists for custom `_CF` columns added by
/// [`MappingRules`](crate::MappingRules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ColumnType {
    /// `string`: UTF-8 text.
    String,
    /// `int`: a signed 32-bit integer.
    Int,
    /// `long`: a signed 64-bit integer.
    Long,
    /// `real`: a 64-bit float (always finite in our rows).
    Real,
    /// `datetime`: RFC 3339 UTC text with milliseconds, `2017-11-22T17:50:04.000Z`.
    Datetime,
    /// `boolean`: `true` or `false`.
    Boolean,
}

impl ColumnType {
    /// The type name used in DCR stream declarations and table schemas.
    pub fn as_azure_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Int => "int",
            ColumnType::Long => "long",
            ColumnType::Real => "real",
            ColumnType::Datetime => "datetime",
            ColumnType::Boolean => "boolean",
        }
    }
}

#[cfg(feature = "kql")]
impl ColumnType {
    /// The Kusto type of a column of this type, for a transformation's schema.
    pub fn kql_type(self) -> mcas_kql::Type {
        match self {
            ColumnType::String => mcas_kql::Type::String,
            ColumnType::Int => mcas_kql::Type::Int,
            ColumnType::Long => mcas_kql::Type::Long,
            ColumnType::Real => mcas_kql::Type::Real,
            ColumnType::Datetime => mcas_kql::Type::DateTime,
            ColumnType::Boolean => mcas_kql::Type::Bool,
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_azure_str())
    }
}

/// The Rust type of a field, by column type.
macro_rules! field_type {
    (String, $a:lifetime) => { Option<Cow<$a, str>> };
    (Int, $a:lifetime) => { Option<i32> };
    (Long, $a:lifetime) => { Option<i64> };
    (Real, $a:lifetime) => { Option<f64> };
    (Datetime, $a:lifetime) => { Option<Timestamp> };
}

/// An owned copy of a field, by column type.
macro_rules! field_into_owned {
    (String, $v:expr) => {
        $v.map(|v| Cow::Owned(v.into_owned()))
    };
    ($other:ident, $v:expr) => {
        $v
    };
}

/// A field's value as a borrowed [`CustomValue`], by column type.
macro_rules! column_value {
    (String, $v:expr) => {
        $v.as_deref().map(|s| CustomValue::String(Cow::Borrowed(s)))
    };
    (Int, $v:expr) => {
        $v.map(CustomValue::Int)
    };
    (Long, $v:expr) => {
        $v.map(CustomValue::Long)
    };
    (Real, $v:expr) => {
        $v.map(CustomValue::Real)
    };
    (Datetime, $v:expr) => {
        $v.map(CustomValue::Datetime)
    };
}

/// A field's value as a borrowed [`mcas_kql::Value`], by column type.
#[cfg(feature = "kql")]
macro_rules! kql_value {
    (String, $v:expr) => {
        $v.as_deref().map(mcas_kql::Value::str)
    };
    (Int, $v:expr) => {
        $v.map(mcas_kql::Value::Int)
    };
    (Long, $v:expr) => {
        $v.map(mcas_kql::Value::Long)
    };
    (Real, $v:expr) => {
        $v.map(mcas_kql::Value::Real)
    };
    (Datetime, $v:expr) => {
        $v.map(|t| mcas_kql::Value::DateTime(kusto_ticks(t)))
    };
}

/// The Kusto type of a column, by column type.
#[cfg(feature = "kql")]
macro_rules! kql_type {
    (String) => {
        mcas_kql::Type::String
    };
    (Int) => {
        mcas_kql::Type::Int
    };
    (Long) => {
        mcas_kql::Type::Long
    };
    (Real) => {
        mcas_kql::Type::Real
    };
    (Datetime) => {
        mcas_kql::Type::DateTime
    };
}

/// Writes a present field as a transformation's output writes it, by column type: an empty
/// string is left out, a datetime has Kusto's seven fraction digits.
#[cfg(feature = "kql")]
macro_rules! kusto_member {
    ($w:expr, $key:expr, $keep:expr, String, $v:expr) => {{
        if let Some(v) = $v.as_deref()
            && $keep
            && !v.is_empty()
        {
            crate::json::write_str($w.plain_key($key), v);
        }
    }};
    ($w:expr, $key:expr, $keep:expr, Datetime, $v:expr) => {{
        if let Some(t) = $v
            && $keep
        {
            mcas_kql::Value::DateTime(kusto_ticks(t)).write_json($w.plain_key($key));
        }
    }};
    ($w:expr, $key:expr, $keep:expr, $other:ident, $v:expr) => {{
        if let Some(v) = $v.as_ref()
            && $keep
        {
            crate::json::WriteJson::write_json(v, $w.plain_key($key));
        }
    }};
}

macro_rules! csl_columns {
    ($( $(#[$meta:meta])* $variant:ident $field:ident: $ty:ident = $name:literal, )*) => {
        /// One row of the Log Analytics `CommonSecurityLog` table.
        ///
        /// Every column of the table is a field, in the table's own (schema)
        /// order, serialised under its exact column name. A `None` field is left
        /// out of the JSON object, which Log Analytics stores as an empty
        /// column. String values borrow from the CEF event where they can.
        ///
        /// Types follow the table: `string` columns are `Option<Cow<str>>`,
        /// `int` is `i32`, `long` is `i64`, `real` is `f64` and `datetime` is a
        /// [`jiff::Timestamp`] written as RFC 3339 UTC with milliseconds.
        /// [`custom`](Self::custom) holds the `_CF` columns added by
        /// [`MappingRules`](crate::MappingRules).
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        pub struct CommonSecurityLog<'a> {
            $(
                $(#[$meta])*
                #[serde(
                    rename = $name,
                    skip_serializing_if = "Option::is_none",
                    serialize_with = "serialize_column"
                )]
                pub $field: field_type!($ty, 'a),
            )*
            /// Custom `_CF` columns produced by [`MappingRules`](crate::MappingRules),
            /// serialised after the table's own columns.
            #[serde(flatten)]
            pub custom: CustomColumns<'a>,
        }

        impl CommonSecurityLog<'_> {
            /// Copies every borrowed value so the row no longer borrows the event.
            pub fn into_owned(self) -> CommonSecurityLog<'static> {
                CommonSecurityLog {
                    $( $field: field_into_owned!($ty, self.$field), )*
                    custom: self.custom.into_owned(),
                }
            }
        }

        impl CommonSecurityLog<'_> {
            /// Appends the row as one JSON object to `out`: the same bytes as
            /// `serde_json::to_writer(out, self)`, written faster (column
            /// names are constants, and clean runs of a value are copied in
            /// one piece). No newline is added.
            ///
            /// ```
            /// let event = mcas_cef::parse(b"CEF:0|Acme|Fw|1|7|Deny|5|src=10.0.0.1 msg=a\\=b")?;
            /// let ctx = mcas_csl::Context::new(jiff::Timestamp::from_second(0)?);
            /// let row = mcas_csl::map(&event, &ctx).row;
            /// let mut out = Vec::new();
            /// row.write_json(&mut out);
            /// assert_eq!(out, serde_json::to_vec(&row)?);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn write_json(&self, out: &mut Vec<u8>) {
                use crate::json::WriteJson as _;
                let mut w = crate::json::ObjectWriter::new(out);
                $( w.optional(concat!("\"", $name, "\":"), self.$field.as_ref()); )*
                for (name, value) in self.custom.iter() {
                    value.write_json(w.key(name));
                }
                w.end();
            }
        }

        impl CommonSecurityLog<'_> {
            /// The value of the column `name` (a table column or a custom `_CF` one),
            /// borrowed; `None` when the column is unset or unknown.
            ///
            /// ```
            /// let event = mcas_cef::parse(b"CEF:0|Acme|Fw|1|7|Deny|5|dpt=22")?;
            /// let ctx = mcas_csl::Context::new(jiff::Timestamp::from_second(0)?);
            /// let row = mcas_csl::map(&event, &ctx).row;
            /// assert_eq!(row.value("DeviceVendor"), Some(mcas_csl::CustomValue::String("Acme".into())));
            /// assert_eq!(row.value("DestinationPort"), Some(mcas_csl::CustomValue::Int(22)));
            /// assert_eq!(row.value("SourceIP"), None);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn value(&self, name: &str) -> Option<CustomValue<'_>> {
                match name {
                    $( $name => column_value!($ty, self.$field), )*
                    _ => self.custom.get(name).map(CustomValue::reborrow),
                }
            }
        }

        /// The table's columns with their Kusto types, in schema order: the row's
        /// [`mcas_kql::Row::layout`].
        #[cfg(feature = "kql")]
        pub(crate) static KQL_LAYOUT: &[(&str, mcas_kql::Type)] = &[ $( ($name, kql_type!($ty)), )* ];

        #[cfg(feature = "kql")]
        impl CommonSecurityLog<'_> {
            /// The value of the table column at `index` of [`KQL_LAYOUT`].
            pub(crate) fn kql_value_at(&self, index: usize) -> Option<mcas_kql::Value<'_>> {
                match Column::ALL.get(index)? {
                    $( Column::$variant => kql_value!($ty, self.$field), )*
                }
            }

            /// Writes the table columns marked in `keep` (by schema order) as
            /// [`mcas_kql::OutputRow::write_json_compact`] writes them: `first` (when kept)
            /// first, then the others in order; unset values and empty strings left out. The
            /// custom columns are not written.
            pub(crate) fn write_kusto_json(&self, keep: &[bool], first: Option<usize>, out: &mut Vec<u8>) {
                const N: usize = Column::ALL.len();
                let mut mask = [false; N];
                for (m, k) in mask.iter_mut().zip(keep) {
                    *m = *k;
                }
                let mut w = crate::json::ObjectWriter::new(out);
                if let Some(f) = first.filter(|f| mask.get(*f).copied().unwrap_or(false)) {
                    mask[f] = false;
                    match Column::ALL[f] {
                        $( Column::$variant => {
                            kusto_member!(w, concat!("\"", $name, "\":"), true, $ty, self.$field)
                        } )*
                    }
                }
                $(
                    kusto_member!(
                        w,
                        concat!("\"", $name, "\":"),
                        mask[Column::$variant as usize],
                        $ty,
                        self.$field
                    );
                )*
                w.end();
            }
        }

        impl<'a> CommonSecurityLog<'a> {
            /// Mutable access to one column, typed by its column type.
            pub(crate) fn slot(&mut self, column: Column) -> Slot<'_, 'a> {
                match column {
                    $( Column::$variant => Slot::$ty(&mut self.$field), )*
                }
            }
        }

        /// A column of `CommonSecurityLog`, in schema order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub(crate) enum Column {
            $( $variant, )*
        }

        impl Column {
            /// Every column in schema order.
            pub(crate) const ALL: &'static [Column] = &[ $( Column::$variant, )* ];
        }

        /// (name, type) of every column, in schema order.
        static COLUMNS: &[(&str, ColumnType)] = &[ $( ($name, ColumnType::$ty), )* ];
    };
}

/// Mutable access to a column of a row, with its type.
#[derive(Debug)]
pub(crate) enum Slot<'r, 'a> {
    String(&'r mut Option<Cow<'a, str>>),
    Int(&'r mut Option<i32>),
    Long(&'r mut Option<i64>),
    Real(&'r mut Option<f64>),
    Datetime(&'r mut Option<Timestamp>),
}

impl Column {
    /// The column's name in the table.
    pub(crate) fn name(self) -> &'static str {
        COLUMNS[self as usize].0
    }

    /// The column's type in the table.
    pub(crate) fn column_type(self) -> ColumnType {
        COLUMNS[self as usize].1
    }

    /// The column with this exact name.
    pub(crate) fn from_name(name: &str) -> Option<Column> {
        COLUMNS
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| Column::ALL[i])
    }
}

/// The ordered (name, Azure type) list of every column a
/// [`CommonSecurityLog`] row can emit.
///
/// This is the table's own schema (157 columns in `getschema` order, without
/// the system columns such as `TenantId` or `_ResourceId`, which a client
/// cannot write). A DCR stream declaration can be generated from it; use
/// [`columns_with`](crate::columns_with) when [`MappingRules`](crate::MappingRules)
/// add `_CF` columns.
///
/// ```
/// let cols = mcas_csl::columns();
/// assert_eq!(cols[0], ("TimeGenerated", mcas_csl::ColumnType::Datetime));
/// assert_eq!(cols.len(), 157);
/// ```
pub fn columns() -> &'static [(&'static str, ColumnType)] {
    COLUMNS
}

/// The value of a custom `_CF` column.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CustomValue<'a> {
    /// A `string` value.
    String(Cow<'a, str>),
    /// An `int` value.
    Int(i32),
    /// A `long` value.
    Long(i64),
    /// A `real` value (finite).
    Real(f64),
    /// A `datetime` value.
    Datetime(Timestamp),
    /// A `boolean` value.
    Boolean(bool),
}

impl CustomValue<'_> {
    /// A copy that borrows from this value (strings are not copied).
    pub fn reborrow(&self) -> CustomValue<'_> {
        match self {
            CustomValue::String(s) => CustomValue::String(Cow::Borrowed(s)),
            CustomValue::Int(v) => CustomValue::Int(*v),
            CustomValue::Long(v) => CustomValue::Long(*v),
            CustomValue::Real(v) => CustomValue::Real(*v),
            CustomValue::Datetime(v) => CustomValue::Datetime(*v),
            CustomValue::Boolean(v) => CustomValue::Boolean(*v),
        }
    }

    /// The column type this value belongs to.
    pub fn column_type(&self) -> ColumnType {
        match self {
            CustomValue::String(_) => ColumnType::String,
            CustomValue::Int(_) => ColumnType::Int,
            CustomValue::Long(_) => ColumnType::Long,
            CustomValue::Real(_) => ColumnType::Real,
            CustomValue::Datetime(_) => ColumnType::Datetime,
            CustomValue::Boolean(_) => ColumnType::Boolean,
        }
    }

    /// Copies a borrowed string.
    pub fn into_owned(self) -> CustomValue<'static> {
        match self {
            CustomValue::String(s) => CustomValue::String(Cow::Owned(s.into_owned())),
            CustomValue::Int(v) => CustomValue::Int(v),
            CustomValue::Long(v) => CustomValue::Long(v),
            CustomValue::Real(v) => CustomValue::Real(v),
            CustomValue::Datetime(v) => CustomValue::Datetime(v),
            CustomValue::Boolean(v) => CustomValue::Boolean(v),
        }
    }
}

impl Serialize for CustomValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CustomValue::String(v) => s.serialize_str(v),
            CustomValue::Int(v) => s.serialize_i32(*v),
            CustomValue::Long(v) => s.serialize_i64(*v),
            CustomValue::Real(v) => s.serialize_f64(*v),
            CustomValue::Datetime(v) => crate::time::serialize_timestamp(v, s),
            CustomValue::Boolean(v) => s.serialize_bool(*v),
        }
    }
}

impl crate::json::WriteJson for CustomValue<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            CustomValue::String(v) => v.write_json(out),
            CustomValue::Int(v) => v.write_json(out),
            CustomValue::Long(v) => v.write_json(out),
            CustomValue::Real(v) => v.write_json(out),
            CustomValue::Datetime(v) => v.write_json(out),
            CustomValue::Boolean(v) => v.write_json(out),
        }
    }
}

/// The `_CF` columns of a row, in the order they were set. Serialised as
/// extra members of the row's JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomColumns<'a> {
    columns: Vec<(Cow<'a, str>, CustomValue<'a>)>,
}

impl<'a> CustomColumns<'a> {
    /// No custom columns.
    pub fn new() -> Self {
        CustomColumns::default()
    }

    /// The value of the column `name`, if set.
    pub fn get(&self, name: &str) -> Option<&CustomValue<'a>> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets `name` to `value`, replacing an earlier value of that column.
    pub fn set(&mut self, name: impl Into<Cow<'a, str>>, value: CustomValue<'a>) {
        let name = name.into();
        match self.columns.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.columns.push((name, value)),
        }
    }

    /// Removes the column `name`; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<CustomValue<'a>> {
        let i = self.columns.iter().position(|(n, _)| n == name)?;
        Some(self.columns.remove(i).1)
    }

    /// The set columns as (name, value), in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &CustomValue<'a>)> {
        self.columns.iter().map(|(n, v)| (n.as_ref(), v))
    }

    /// The number of set columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True when no custom column is set.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Reorders the columns by `rank` of their names.
    pub(crate) fn sort_by_rank(&mut self, rank: impl Fn(&str) -> usize) {
        self.columns.sort_by_key(|(n, _)| rank(n));
    }

    /// Copies every borrowed name and value.
    pub fn into_owned(self) -> CustomColumns<'static> {
        CustomColumns {
            columns: self
                .columns
                .into_iter()
                .map(|(n, v)| (Cow::Owned(n.into_owned()), v.into_owned()))
                .collect(),
        }
    }
}

impl Serialize for CustomColumns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.columns.len()))?;
        for (name, value) in &self.columns {
            map.serialize_entry(name.as_ref(), value)?;
        }
        map.end()
    }
}

/// A column value that serialises as its column type (`serialize_with` target).
trait ColumnValue {
    fn serialize_value<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
}

impl ColumnValue for Cow<'_, str> {
    fn serialize_value<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl ColumnValue for i32 {
    fn serialize_value<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*self)
    }
}

impl ColumnValue for i64 {
    fn serialize_value<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*self)
    }
}

impl ColumnValue for f64 {
    fn serialize_value<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*self)
    }
}

impl ColumnValue for Timestamp {
    fn serialize_value<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::time::serialize_timestamp(self, s)
    }
}

/// Serialises a present column value (None is skipped before this is called).
fn serialize_column<T: ColumnValue, S: Serializer>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => v.serialize_value(s),
        None => s.serialize_none(),
    }
}

csl_columns! {
    /// Set by pipeline: time the collector/ingestion received the event (UTC), not taken from the CEF.
    TimeGenerated time_generated: Datetime = "TimeGenerated",
    /// CEF header field 2 (Device Vendor).
    DeviceVendor device_vendor: String = "DeviceVendor",
    /// CEF header field 3 (Device Product).
    DeviceProduct device_product: String = "DeviceProduct",
    /// CEF header field 4 (Device Version).
    DeviceVersion device_version: String = "DeviceVersion",
    /// CEF header field 5 (Device Event Class ID).
    DeviceEventClassID device_event_class_id: String = "DeviceEventClassID",
    /// CEF header field 6 (Name).
    Activity activity: String = "Activity",
    /// CEF header field 7 (Severity), copied as text (e.g. `4`, `High`).
    LogSeverity log_severity: String = "LogSeverity",
    /// Not from CEF (documented as always empty, kept for Cisco ASA; newer doc: vendor severity before normalisation).
    OriginalLogSeverity original_log_severity: String = "OriginalLogSeverity",
    /// Every extension key with no dedicated column, as `key=value;key=value` .
    AdditionalExtensions additional_extensions: String = "AdditionalExtensions",
    /// From CEF key `act`.
    DeviceAction device_action: String = "DeviceAction",
    /// From CEF key `app`.
    ApplicationProtocol application_protocol: String = "ApplicationProtocol",
    /// From CEF key `cnt`.
    EventCount event_count: Int = "EventCount",
    /// From CEF key `destinationDnsDomain`.
    DestinationDnsDomain destination_dns_domain: String = "DestinationDnsDomain",
    /// From CEF key `destinationServiceName`.
    DestinationServiceName destination_service_name: String = "DestinationServiceName",
    /// From CEF key `destinationTranslatedAddress`.
    DestinationTranslatedAddress destination_translated_address: String = "DestinationTranslatedAddress",
    /// From CEF key `destinationTranslatedPort`.
    DestinationTranslatedPort destination_translated_port: Int = "DestinationTranslatedPort",
    /// From CEF key `deviceDirection`.
    CommunicationDirection communication_direction: String = "CommunicationDirection",
    /// From CEF key `deviceDnsDomain`.
    DeviceDnsDomain device_dns_domain: String = "DeviceDnsDomain",
    /// From CEF key `deviceExternalId`.
    DeviceExternalID device_external_id: String = "DeviceExternalID",
    /// From CEF key `deviceFacility`.
    DeviceFacility device_facility: String = "DeviceFacility",
    /// From CEF key `deviceInboundInterface`.
    DeviceInboundInterface device_inbound_interface: String = "DeviceInboundInterface",
    /// From CEF key `deviceNtDomain`.
    DeviceNtDomain device_nt_domain: String = "DeviceNtDomain",
    /// From CEF key `deviceOutboundInterface`.
    DeviceOutboundInterface device_outbound_interface: String = "DeviceOutboundInterface",
    /// From CEF key `devicePayloadId`.
    DevicePayloadId device_payload_id: String = "DevicePayloadId",
    /// From CEF key `deviceProcessName`.
    ProcessName process_name: String = "ProcessName",
    /// From CEF key `deviceTranslatedAddress`.
    DeviceTranslatedAddress device_translated_address: String = "DeviceTranslatedAddress",
    /// From CEF key `dhost`.
    DestinationHostName destination_host_name: String = "DestinationHostName",
    /// From CEF key `dmac`.
    DestinationMACAddress destination_mac_address: String = "DestinationMACAddress",
    /// From CEF key `dntdom`.
    DestinationNTDomain destination_nt_domain: String = "DestinationNTDomain",
    /// From CEF key `dpid`.
    DestinationProcessId destination_process_id: Int = "DestinationProcessId",
    /// From CEF key `dpriv`.
    DestinationUserPrivileges destination_user_privileges: String = "DestinationUserPrivileges",
    /// From CEF key `dproc`.
    DestinationProcessName destination_process_name: String = "DestinationProcessName",
    /// From CEF key `dpt`.
    DestinationPort destination_port: Int = "DestinationPort",
    /// From CEF key `dst`.
    DestinationIP destination_ip: String = "DestinationIP",
    /// From CEF key `dtz`.
    DeviceTimeZone device_time_zone: String = "DeviceTimeZone",
    /// From CEF key `duid`.
    DestinationUserID destination_user_id: String = "DestinationUserID",
    /// From CEF key `duser`.
    DestinationUserName destination_user_name: String = "DestinationUserName",
    /// From CEF key `dvc`.
    DeviceAddress device_address: String = "DeviceAddress",
    /// From CEF key `dvchost`.
    DeviceName device_name: String = "DeviceName",
    /// From CEF key `dvcmac`.
    DeviceMacAddress device_mac_address: String = "DeviceMacAddress",
    /// From CEF key `dvcpid`.
    ProcessID process_id: Int = "ProcessID",
    /// From CEF key `end` (parsed to datetime).
    EndTime end_time: Datetime = "EndTime",
    /// From CEF key `externalId` (legacy int column, pre-2023).
    ExternalID external_id: Int = "ExternalID",
    /// From CEF key `externalId` (string column since Feb 2023).
    ExtID ext_id: String = "ExtID",
    /// From CEF key `fileCreateTime` (kept as string).
    FileCreateTime file_create_time: String = "FileCreateTime",
    /// From CEF key `fileHash`.
    FileHash file_hash: String = "FileHash",
    /// From CEF key `fileId`.
    FileID file_id: String = "FileID",
    /// From CEF key `fileModificationTime` (kept as string).
    FileModificationTime file_modification_time: String = "FileModificationTime",
    /// From CEF key `filePath`.
    FilePath file_path: String = "FilePath",
    /// From CEF key `filePermission`.
    FilePermission file_permission: String = "FilePermission",
    /// From CEF key `fileType`.
    FileType file_type: String = "FileType",
    /// From CEF key `fname`.
    FileName file_name: String = "FileName",
    /// From CEF key `fsize`.
    FileSize file_size: Int = "FileSize",
    /// From CEF key `in`.
    ReceivedBytes received_bytes: Long = "ReceivedBytes",
    /// From CEF key `msg`.
    Message message: String = "Message",
    /// From CEF key `oldFileCreateTime` (string).
    OldFileCreateTime old_file_create_time: String = "OldFileCreateTime",
    /// From CEF key `oldFileHash`.
    OldFileHash old_file_hash: String = "OldFileHash",
    /// From CEF key `oldFileId`.
    OldFileID old_file_id: String = "OldFileID",
    /// From CEF key `oldFileModificationTime` (string).
    OldFileModificationTime old_file_modification_time: String = "OldFileModificationTime",
    /// From CEF key `oldFileName`.
    OldFileName old_file_name: String = "OldFileName",
    /// From CEF key `oldFilePath`.
    OldFilePath old_file_path: String = "OldFilePath",
    /// From CEF key `oldFilePermission`.
    OldFilePermission old_file_permission: String = "OldFilePermission",
    /// From CEF key `oldFileSize`.
    OldFileSize old_file_size: Int = "OldFileSize",
    /// From CEF key `oldFileType`.
    OldFileType old_file_type: String = "OldFileType",
    /// From CEF key `out`.
    SentBytes sent_bytes: Long = "SentBytes",
    /// From CEF key `outcome` (own column since Feb 2023; before: in AdditionalExtensions).
    EventOutcome event_outcome: String = "EventOutcome",
    /// From CEF key `proto`.
    Protocol protocol: String = "Protocol",
    /// From CEF key `reason` (own column since Feb 2023).
    Reason reason: String = "Reason",
    /// From CEF key `request`.
    RequestURL request_url: String = "RequestURL",
    /// From CEF key `requestClientApplication`.
    RequestClientApplication request_client_application: String = "RequestClientApplication",
    /// From CEF key `requestContext`.
    RequestContext request_context: String = "RequestContext",
    /// From CEF key `requestCookies`.
    RequestCookies request_cookies: String = "RequestCookies",
    /// From CEF key `requestMethod`.
    RequestMethod request_method: String = "RequestMethod",
    /// From CEF key `rt`, kept as a string.
    ReceiptTime receipt_time: String = "ReceiptTime",
    /// From CEF key `shost`.
    SourceHostName source_host_name: String = "SourceHostName",
    /// From CEF key `smac`.
    SourceMACAddress source_mac_address: String = "SourceMACAddress",
    /// From CEF key `sntdom`.
    SourceNTDomain source_nt_domain: String = "SourceNTDomain",
    /// From CEF key `sourceDnsDomain`.
    SourceDnsDomain source_dns_domain: String = "SourceDnsDomain",
    /// From CEF key `sourceServiceName`.
    SourceServiceName source_service_name: String = "SourceServiceName",
    /// From CEF key `sourceTranslatedAddress`.
    SourceTranslatedAddress source_translated_address: String = "SourceTranslatedAddress",
    /// From CEF key `sourceTranslatedPort`.
    SourceTranslatedPort source_translated_port: Int = "SourceTranslatedPort",
    /// From CEF key `spid`.
    SourceProcessId source_process_id: Int = "SourceProcessId",
    /// From CEF key `spriv`.
    SourceUserPrivileges source_user_privileges: String = "SourceUserPrivileges",
    /// From CEF key `sproc`.
    SourceProcessName source_process_name: String = "SourceProcessName",
    /// From CEF key `spt`.
    SourcePort source_port: Int = "SourcePort",
    /// From CEF key `src`.
    SourceIP source_ip: String = "SourceIP",
    /// From CEF key `start` (parsed to datetime).
    StartTime start_time: Datetime = "StartTime",
    /// From CEF key `suid`.
    SourceUserID source_user_id: String = "SourceUserID",
    /// From CEF key `suser`.
    SourceUserName source_user_name: String = "SourceUserName",
    /// From CEF key `type`.
    EventType event_type: Int = "EventType",
    /// From CEF key `cat` (own column since Feb 2023).
    DeviceEventCategory device_event_category: String = "DeviceEventCategory",
    /// From CEF key `c6a1`.
    DeviceCustomIPv6Address1 device_custom_ipv6_address1: String = "DeviceCustomIPv6Address1",
    /// From CEF key `c6a1Label`.
    DeviceCustomIPv6Address1Label device_custom_ipv6_address1_label: String = "DeviceCustomIPv6Address1Label",
    /// From CEF key `c6a2`.
    DeviceCustomIPv6Address2 device_custom_ipv6_address2: String = "DeviceCustomIPv6Address2",
    /// From CEF key `c6a2Label`.
    DeviceCustomIPv6Address2Label device_custom_ipv6_address2_label: String = "DeviceCustomIPv6Address2Label",
    /// From CEF key `c6a3`.
    DeviceCustomIPv6Address3 device_custom_ipv6_address3: String = "DeviceCustomIPv6Address3",
    /// From CEF key `c6a3Label`.
    DeviceCustomIPv6Address3Label device_custom_ipv6_address3_label: String = "DeviceCustomIPv6Address3Label",
    /// From CEF key `c6a4`.
    DeviceCustomIPv6Address4 device_custom_ipv6_address4: String = "DeviceCustomIPv6Address4",
    /// From CEF key `c6a4Label`.
    DeviceCustomIPv6Address4Label device_custom_ipv6_address4_label: String = "DeviceCustomIPv6Address4Label",
    /// From CEF key `cfp1`.
    DeviceCustomFloatingPoint1 device_custom_floating_point1: Real = "DeviceCustomFloatingPoint1",
    /// From CEF key `cfp1Label`.
    DeviceCustomFloatingPoint1Label device_custom_floating_point1_label: String = "DeviceCustomFloatingPoint1Label",
    /// From CEF key `cfp2`.
    DeviceCustomFloatingPoint2 device_custom_floating_point2: Real = "DeviceCustomFloatingPoint2",
    /// From CEF key `cfp2Label`.
    DeviceCustomFloatingPoint2Label device_custom_floating_point2_label: String = "DeviceCustomFloatingPoint2Label",
    /// From CEF key `cfp3`.
    DeviceCustomFloatingPoint3 device_custom_floating_point3: Real = "DeviceCustomFloatingPoint3",
    /// From CEF key `cfp3Label`.
    DeviceCustomFloatingPoint3Label device_custom_floating_point3_label: String = "DeviceCustomFloatingPoint3Label",
    /// From CEF key `cfp4`.
    DeviceCustomFloatingPoint4 device_custom_floating_point4: Real = "DeviceCustomFloatingPoint4",
    /// From CEF key `cfp4Label`.
    DeviceCustomFloatingPoint4Label device_custom_floating_point4_label: String = "DeviceCustomFloatingPoint4Label",
    /// From CEF key `cn1` (legacy int column).
    DeviceCustomNumber1 device_custom_number1: Int = "DeviceCustomNumber1",
    /// From CEF key `cn1` (long, since Feb 2023).
    FieldDeviceCustomNumber1 field_device_custom_number1: Long = "FieldDeviceCustomNumber1",
    /// From CEF key `cn1Label`.
    DeviceCustomNumber1Label device_custom_number1_label: String = "DeviceCustomNumber1Label",
    /// From CEF key `cn2` (legacy int column).
    DeviceCustomNumber2 device_custom_number2: Int = "DeviceCustomNumber2",
    /// From CEF key `cn2` (long, since Feb 2023).
    FieldDeviceCustomNumber2 field_device_custom_number2: Long = "FieldDeviceCustomNumber2",
    /// From CEF key `cn2Label`.
    DeviceCustomNumber2Label device_custom_number2_label: String = "DeviceCustomNumber2Label",
    /// From CEF key `cn3` (legacy int column).
    DeviceCustomNumber3 device_custom_number3: Int = "DeviceCustomNumber3",
    /// From CEF key `cn3` (long, since Feb 2023).
    FieldDeviceCustomNumber3 field_device_custom_number3: Long = "FieldDeviceCustomNumber3",
    /// From CEF key `cn3Label`.
    DeviceCustomNumber3Label device_custom_number3_label: String = "DeviceCustomNumber3Label",
    /// From CEF key `cs1`.
    DeviceCustomString1 device_custom_string1: String = "DeviceCustomString1",
    /// From CEF key `cs1Label`.
    DeviceCustomString1Label device_custom_string1_label: String = "DeviceCustomString1Label",
    /// From CEF key `cs2`.
    DeviceCustomString2 device_custom_string2: String = "DeviceCustomString2",
    /// From CEF key `cs2Label`.
    DeviceCustomString2Label device_custom_string2_label: String = "DeviceCustomString2Label",
    /// From CEF key `cs3`.
    DeviceCustomString3 device_custom_string3: String = "DeviceCustomString3",
    /// From CEF key `cs3Label`.
    DeviceCustomString3Label device_custom_string3_label: String = "DeviceCustomString3Label",
    /// From CEF key `cs4`.
    DeviceCustomString4 device_custom_string4: String = "DeviceCustomString4",
    /// From CEF key `cs4Label`.
    DeviceCustomString4Label device_custom_string4_label: String = "DeviceCustomString4Label",
    /// From CEF key `cs5`.
    DeviceCustomString5 device_custom_string5: String = "DeviceCustomString5",
    /// From CEF key `cs5Label`.
    DeviceCustomString5Label device_custom_string5_label: String = "DeviceCustomString5Label",
    /// From CEF key `cs6`.
    DeviceCustomString6 device_custom_string6: String = "DeviceCustomString6",
    /// From CEF key `cs6Label`.
    DeviceCustomString6Label device_custom_string6_label: String = "DeviceCustomString6Label",
    /// From CEF key `deviceCustomDate1` (kept as string).
    DeviceCustomDate1 device_custom_date1: String = "DeviceCustomDate1",
    /// From CEF key `deviceCustomDate1Label`.
    DeviceCustomDate1Label device_custom_date1_label: String = "DeviceCustomDate1Label",
    /// From CEF key `deviceCustomDate2` (kept as string).
    DeviceCustomDate2 device_custom_date2: String = "DeviceCustomDate2",
    /// From CEF key `deviceCustomDate2Label`.
    DeviceCustomDate2Label device_custom_date2_label: String = "DeviceCustomDate2Label",
    /// From CEF key `flexDate1` (kept as string).
    FlexDate1 flex_date1: String = "FlexDate1",
    /// From CEF key `flexDate1Label`.
    FlexDate1Label flex_date1_label: String = "FlexDate1Label",
    /// From CEF key `flexNumber1`.
    FlexNumber1 flex_number1: Int = "FlexNumber1",
    /// From CEF key `flexNumber1Label`.
    FlexNumber1Label flex_number1_label: String = "FlexNumber1Label",
    /// From CEF key `flexNumber2`.
    FlexNumber2 flex_number2: Int = "FlexNumber2",
    /// From CEF key `flexNumber2Label`.
    FlexNumber2Label flex_number2_label: String = "FlexNumber2Label",
    /// From CEF key `flexString1`.
    FlexString1 flex_string1: String = "FlexString1",
    /// From CEF key `flexString1Label`.
    FlexString1Label flex_string1_label: String = "FlexString1Label",
    /// From CEF key `flexString2`.
    FlexString2 flex_string2: String = "FlexString2",
    /// From CEF key `flexString2Label`.
    FlexString2Label flex_string2_label: String = "FlexString2Label",
    /// Computed from SourceIP/DestinationIP using CommunicationDirection, when possible.
    RemoteIP remote_ip: String = "RemoteIP",
    /// Computed like RemoteIP (note: string type).
    RemotePort remote_port: String = "RemotePort",
    /// Sentinel threat-intel enrichment.
    MaliciousIP malicious_ip: String = "MaliciousIP",
    /// TI enrichment.
    ThreatSeverity threat_severity: Int = "ThreatSeverity",
    /// TI enrichment.
    IndicatorThreatType indicator_threat_type: String = "IndicatorThreatType",
    /// TI enrichment.
    ThreatDescription threat_description: String = "ThreatDescription",
    /// TI enrichment.
    ThreatConfidence threat_confidence: String = "ThreatConfidence",
    /// TI enrichment.
    ReportReferenceLink report_reference_link: String = "ReportReferenceLink",
    /// TI/geo enrichment.
    MaliciousIPLongitude malicious_ip_longitude: Real = "MaliciousIPLongitude",
    /// TI/geo enrichment.
    MaliciousIPLatitude malicious_ip_latitude: Real = "MaliciousIPLatitude",
    /// TI/geo enrichment.
    MaliciousIPCountry malicious_ip_country: String = "MaliciousIPCountry",
    /// Syslog HOSTNAME of the received message ("Host, from Syslog").
    Computer computer: String = "Computer",
    /// From CEF key `OpsManager` for agent-collected CEF.
    SourceSystem source_system: String = "SourceSystem",
    /// Computed: DeviceAction mapped to a fixed vocabulary (e.g. `Denied` → `Deny`).
    SimplifiedDeviceAction simplified_device_action: String = "SimplifiedDeviceAction",
    /// Hostname of the machine running the collecting agent (AMA); empty for legacy-agent data.
    CollectorHostName collector_host_name: String = "CollectorHostName",
}

/// A datetime as Kusto ticks (100 ns), as a transformation reads it.
#[cfg(feature = "kql")]
pub(crate) fn kusto_ticks(t: Timestamp) -> i64 {
    // `as_nanosecond() / 100` without its 128-bit division: the seconds and the fraction
    // have the same sign, and jiff's range (about ±3.8e11 s) fits in i64 ticks.
    t.as_second() * 10_000_000 + i64::from(t.subsec_nanosecond() / 100)
}
