//! User mapping rules: extra key → column routes, label routes, dropped keys,
//! the field size cap and the duplicate-key policy.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::schema::{Column, ColumnType};

/// The largest value, in bytes, that the mapper writes into one column by
/// default: the Logs Ingestion API truncates any field over 64 KB silently,
/// so the mapper truncates first and says so with a
/// [`Warning::Truncated`](crate::Warning::Truncated).
pub const DEFAULT_MAX_FIELD_BYTES: usize = 64 * 1024;

/// Columns a rule may not write: the mapper fills them from the CEF header,
/// the [`Context`](crate::Context) or the other rules.
const RESERVED: &[Column] = &[
    Column::TimeGenerated,
    Column::DeviceVendor,
    Column::DeviceProduct,
    Column::DeviceVersion,
    Column::DeviceEventClassID,
    Column::Activity,
    Column::LogSeverity,
    Column::AdditionalExtensions,
    Column::Computer,
    Column::SourceSystem,
    Column::CollectorHostName,
];

/// Where a rule sends a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A column of the table.
    Column(Column),
    /// A custom `_CF` column: index into [`MappingRules::custom_columns`].
    Custom(usize),
}

/// User rules that change how CEF keys reach columns.
///
/// Without rules ([`MappingRules::default()`]) the mapper follows
/// Microsoft's table. Rules can:
///
/// * send a CEF key to another column of the table or to a custom
///   `<Name>_CF` column (for example `ad.srccountry` → `SrcCountry_CF`);
/// * send the value of a custom field to a column by its label
///   (`cs3Label=targetObjects` sends `cs3` to the chosen column; the label
///   itself stays in `DeviceCustomString3Label`);
/// * drop keys entirely;
/// * cap values at a byte size ([`DEFAULT_MAX_FIELD_BYTES`] unless set), with
///   a warning;
/// * keep the earlier values of a repeated key in `AdditionalExtensions`
///   instead of dropping them.
///
/// Rules are checked when they are built or deserialised, so a
/// [`Mapper`](crate::Mapper) never meets an invalid one.
///
/// # Serialised form
///
/// ```
/// # #[derive(serde::Deserialize)] struct Config { mapping: mcas_csl::MappingRules }
/// let config: Config = toml::from_str(r#"
///     [mapping]
///     drop = ["rawEvent"]
///     keep_duplicates = true
///     max_field_bytes = 32768          # 0 turns the cap off
///
///     [mapping.keys]
///     "ad.srccountry" = "SrcCountry_CF"                    # a string column
///     "riskScore" = { column = "RiskScore_CF", type = "long" }
///     "eventId" = "DeviceCustomString6"                    # an existing column
///
///     [mapping.labels]
///     targetObjects = "TargetObjects_CF"
/// "#)?;
/// let rules = config.mapping;
/// assert_eq!(rules.custom_columns().len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawRules")]
pub struct MappingRules {
    /// Sorted by key.
    keys: Vec<(String, Target)>,
    /// Sorted by label.
    labels: Vec<(String, Target)>,
    /// Sorted.
    drop: Vec<String>,
    /// Distinct custom columns, in the order the rules name them.
    custom: Vec<(String, ColumnType)>,
    max_field_bytes: usize,
    keep_duplicates: bool,
}

impl Default for MappingRules {
    fn default() -> Self {
        MappingRules::new()
    }
}

impl MappingRules {
    /// No routes, nothing dropped, the default size cap, earlier duplicates dropped.
    pub const fn new() -> Self {
        MappingRules {
            keys: Vec::new(),
            labels: Vec::new(),
            drop: Vec::new(),
            custom: Vec::new(),
            max_field_bytes: DEFAULT_MAX_FIELD_BYTES,
            keep_duplicates: false,
        }
    }

    /// Sends CEF key `key` to `column`: an existing column (converted to its
    /// type) or a custom `<Name>_CF` column of type `string`. A later rule for
    /// the same key replaces the earlier one.
    ///
    /// # Errors
    /// When `column` is neither a writable column of the table nor a valid
    /// `_CF` name, or names a custom column already declared with another type.
    pub fn map_key(&mut self, key: &str, column: &str) -> Result<&mut Self, RulesError> {
        self.map_key_as(key, column, None)
    }

    /// Like [`map_key`](Self::map_key), with the type of a custom column
    /// (`None` means `string`). For an existing column the type, if given,
    /// must be the column's own.
    ///
    /// # Errors
    /// As [`map_key`](Self::map_key), and when `ty` contradicts an existing column.
    pub fn map_key_as(
        &mut self,
        key: &str,
        column: &str,
        ty: Option<ColumnType>,
    ) -> Result<&mut Self, RulesError> {
        let target = self.target(column, ty)?;
        insert_sorted(&mut self.keys, key, target);
        Ok(self)
    }

    /// Sends the value of any custom field whose label is `label`
    /// (`cs3` when `cs3Label=targetObjects`) to `column`.
    ///
    /// # Errors
    /// As [`map_key`](Self::map_key).
    pub fn map_label(&mut self, label: &str, column: &str) -> Result<&mut Self, RulesError> {
        self.map_label_as(label, column, None)
    }

    /// Like [`map_label`](Self::map_label), with the type of a custom column.
    ///
    /// # Errors
    /// As [`map_key_as`](Self::map_key_as).
    pub fn map_label_as(
        &mut self,
        label: &str,
        column: &str,
        ty: Option<ColumnType>,
    ) -> Result<&mut Self, RulesError> {
        let target = self.target(column, ty)?;
        insert_sorted(&mut self.labels, label, target);
        Ok(self)
    }

    /// Drops CEF key `key`: it reaches neither a column nor `AdditionalExtensions`.
    pub fn drop_key(&mut self, key: &str) -> &mut Self {
        if let Err(i) = self.drop.binary_search_by(|k| k.as_str().cmp(key)) {
            self.drop.insert(i, key.to_owned());
        }
        self
    }

    /// Caps every string value, including `AdditionalExtensions`, at `bytes`
    /// (cut at a character boundary, with a warning). `0` turns the cap off.
    pub fn set_max_field_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_field_bytes = bytes;
        self
    }

    /// For a key that appears more than once, the last value always wins the
    /// column. With `keep = true` the earlier values go to
    /// `AdditionalExtensions` (nothing is lost); with `false` (the default,
    /// which matches the project's test vectors) they are dropped with a
    /// [`Warning::DuplicateDropped`](crate::Warning::DuplicateDropped).
    pub fn set_keep_duplicates(&mut self, keep: bool) -> &mut Self {
        self.keep_duplicates = keep;
        self
    }

    /// The size cap in bytes (`0`: none).
    pub fn max_field_bytes(&self) -> usize {
        self.max_field_bytes
    }

    /// Whether earlier duplicates are kept in `AdditionalExtensions`.
    pub fn keep_duplicates(&self) -> bool {
        self.keep_duplicates
    }

    /// The custom `_CF` columns these rules can write, with their types.
    pub fn custom_columns(&self) -> &[(String, ColumnType)] {
        &self.custom
    }

    /// True when the rules route, drop nothing and add no column: the mapper
    /// skips rule look-ups entirely.
    pub(crate) fn has_routes(&self) -> bool {
        !(self.keys.is_empty() && self.labels.is_empty() && self.drop.is_empty())
    }

    pub(crate) fn has_label_routes(&self) -> bool {
        !self.labels.is_empty()
    }

    pub(crate) fn key_target(&self, key: &str) -> Option<Target> {
        lookup(&self.keys, key)
    }

    pub(crate) fn label_target(&self, label: &str) -> Option<Target> {
        lookup(&self.labels, label)
    }

    pub(crate) fn is_dropped(&self, key: &str) -> bool {
        self.drop.binary_search_by(|k| k.as_str().cmp(key)).is_ok()
    }

    pub(crate) fn custom_name(&self, index: usize) -> (&str, ColumnType) {
        let (name, ty) = &self.custom[index];
        (name, *ty)
    }

    fn target(&mut self, column: &str, ty: Option<ColumnType>) -> Result<Target, RulesError> {
        if let Some(c) = Column::from_name(column) {
            if RESERVED.contains(&c) {
                return Err(RulesError::new(column, RulesErrorKind::ReservedColumn));
            }
            if let Some(ty) = ty
                && ty != c.column_type()
            {
                return Err(RulesError::new(column, RulesErrorKind::TypeConflict));
            }
            return Ok(Target::Column(c));
        }
        if !is_custom_column_name(column) {
            return Err(RulesError::new(column, RulesErrorKind::UnknownColumn));
        }
        let ty = ty.unwrap_or(ColumnType::String);
        match self.custom.iter().position(|(n, _)| n == column) {
            Some(i) if self.custom[i].1 == ty => Ok(Target::Custom(i)),
            Some(_) => Err(RulesError::new(column, RulesErrorKind::TypeConflict)),
            None => {
                self.custom.push((column.to_owned(), ty));
                Ok(Target::Custom(self.custom.len() - 1))
            }
        }
    }
}

fn insert_sorted(list: &mut Vec<(String, Target)>, key: &str, target: Target) {
    match list.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
        Ok(i) => list[i].1 = target,
        Err(i) => list.insert(i, (key.to_owned(), target)),
    }
}

fn lookup(list: &[(String, Target)], key: &str) -> Option<Target> {
    list.binary_search_by(|(k, _)| k.as_str().cmp(key))
        .ok()
        .map(|i| list[i].1)
}

/// A custom column of a built-in table: a name that starts with a letter,
/// has at most 45 ASCII letters, digits or underscores, and ends in `_CF`.
fn is_custom_column_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() <= 45
        && b.len() > 3
        && name.ends_with("_CF")
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The serialised form of [`MappingRules`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    keys: BTreeMap<String, RawTarget>,
    #[serde(default)]
    labels: BTreeMap<String, RawTarget>,
    #[serde(default)]
    drop: Vec<String>,
    #[serde(default = "default_max_field_bytes")]
    max_field_bytes: usize,
    #[serde(default)]
    keep_duplicates: bool,
}

fn default_max_field_bytes() -> usize {
    DEFAULT_MAX_FIELD_BYTES
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTarget {
    Column(String),
    Typed {
        column: String,
        #[serde(rename = "type")]
        ty: ColumnType,
    },
}

impl RawTarget {
    fn parts(&self) -> (&str, Option<ColumnType>) {
        match self {
            RawTarget::Column(c) => (c, None),
            RawTarget::Typed { column, ty } => (column, Some(*ty)),
        }
    }
}

impl TryFrom<RawRules> for MappingRules {
    type Error = RulesError;

    fn try_from(raw: RawRules) -> Result<Self, RulesError> {
        let mut rules = MappingRules::new();
        for (key, target) in &raw.keys {
            let (column, ty) = target.parts();
            rules.map_key_as(key, column, ty)?;
        }
        for (label, target) in &raw.labels {
            let (column, ty) = target.parts();
            rules.map_label_as(label, column, ty)?;
        }
        for key in &raw.drop {
            rules.drop_key(key);
        }
        rules.set_max_field_bytes(raw.max_field_bytes);
        rules.set_keep_duplicates(raw.keep_duplicates);
        Ok(rules)
    }
}

/// A rule that names a column the mapper cannot write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    column: String,
    kind: RulesErrorKind,
}

/// Why a rule was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RulesErrorKind {
    /// Not a column of `CommonSecurityLog`, and not a valid custom name
    /// (`<Name>_CF`: a letter first, at most 45 letters, digits or `_`).
    UnknownColumn,
    /// A column the mapper fills itself (header, context, `TimeGenerated`,
    /// `AdditionalExtensions`).
    ReservedColumn,
    /// A type that contradicts the column's own, or a custom column declared
    /// with two types.
    TypeConflict,
}

impl RulesError {
    fn new(column: &str, kind: RulesErrorKind) -> Self {
        RulesError {
            column: column.to_owned(),
            kind,
        }
    }

    /// The column named by the rejected rule.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// Why it was rejected.
    pub fn kind(&self) -> RulesErrorKind {
        self.kind
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            RulesErrorKind::UnknownColumn => {
                "is not a CommonSecurityLog column nor a custom <Name>_CF column"
            }
            RulesErrorKind::ReservedColumn => "is filled by the mapper and cannot be a rule target",
            RulesErrorKind::TypeConflict => "is given a type that contradicts its declared type",
        };
        write!(f, "mapping rule column `{}` {why}", self.column)
    }
}

impl std::error::Error for RulesError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked() {
        let mut r = MappingRules::new();
        assert!(r.map_key("a", "DeviceCustomString5").is_ok());
        assert!(r.map_key("b", "Good_Name_CF").is_ok());
        let e = r.map_key("c", "NoSuchColumn").unwrap_err();
        assert_eq!(e.kind(), RulesErrorKind::UnknownColumn);
        assert_eq!(e.column(), "NoSuchColumn");
        let e = r.map_key("c", "TimeGenerated").unwrap_err();
        assert_eq!(e.kind(), RulesErrorKind::ReservedColumn);
        let e = r
            .map_key_as("c", "SourcePort", Some(ColumnType::String))
            .unwrap_err();
        assert_eq!(e.kind(), RulesErrorKind::TypeConflict);
        assert!(
            r.map_key_as("c", "SourcePort", Some(ColumnType::Int))
                .is_ok()
        );
        let e = r
            .map_key_as("d", "Good_Name_CF", Some(ColumnType::Long))
            .unwrap_err();
        assert_eq!(e.kind(), RulesErrorKind::TypeConflict);
        for bad in [
            "_CF",
            "1x_CF",
            "a-b_CF",
            "x_cf",
            &format!("{}_CF", "a".repeat(43)),
        ] {
            assert_eq!(
                r.map_key("k", bad).unwrap_err().kind(),
                RulesErrorKind::UnknownColumn,
                "{bad}"
            );
        }
        assert!(r.map_key("k", &format!("{}_CF", "a".repeat(42))).is_ok());
    }

    #[test]
    fn lookups_find_what_was_set() {
        let mut r = MappingRules::new();
        r.map_key("z", "A_CF")
            .unwrap()
            .map_key("a", "B_CF")
            .unwrap();
        r.map_key("z", "C_CF").unwrap();
        r.map_label("targetObjects", "A_CF").unwrap();
        r.drop_key("rawEvent").drop_key("agt").drop_key("rawEvent");
        assert_eq!(r.key_target("z"), Some(Target::Custom(2)));
        assert_eq!(r.key_target("a"), Some(Target::Custom(1)));
        assert_eq!(r.key_target("m"), None);
        assert_eq!(r.label_target("targetObjects"), Some(Target::Custom(0)));
        assert!(r.is_dropped("rawEvent") && r.is_dropped("agt") && !r.is_dropped("x"));
        assert_eq!(r.custom_columns().len(), 3);
        assert!(r.has_routes() && r.has_label_routes());
        assert!(!MappingRules::new().has_routes());
    }

    #[test]
    fn deserialises_from_json_and_rejects_bad_rules() {
        let r: MappingRules = serde_json::from_str(
            r#"{"keys":{"ad.srccountry":"SrcCountry_CF","n":{"column":"N_CF","type":"long"}},
                "labels":{"riskScore":"DeviceCustomString6"},"drop":["x"],"max_field_bytes":0}"#,
        )
        .unwrap();
        assert_eq!(
            r.custom_columns(),
            &[
                ("SrcCountry_CF".to_owned(), ColumnType::String),
                ("N_CF".to_owned(), ColumnType::Long)
            ]
        );
        assert_eq!(r.max_field_bytes(), 0);
        assert_eq!(
            r.label_target("riskScore"),
            Some(Target::Column(Column::DeviceCustomString6))
        );
        let empty: MappingRules = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, MappingRules::new());
        assert!(serde_json::from_str::<MappingRules>(r#"{"keys":{"a":"Nope"}}"#).is_err());
        assert!(serde_json::from_str::<MappingRules>(r#"{"unknown":1}"#).is_err());
        let e = serde_json::from_str::<MappingRules>(r#"{"keys":{"a":"Computer"}}"#).unwrap_err();
        assert!(e.to_string().contains("Computer"), "{e}");
    }
}
