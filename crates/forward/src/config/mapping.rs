//! `[mapping]`: mcas-csl's mapping rules, parsed once at load.

use super::*;

/// `[mapping]`, parsed once at load: mcas-csl's `MappingRules`, plus `time_generated`
/// (`receive_time`, `rt`, `start`).
#[derive(Debug, Clone, Default)]
pub(crate) struct MappingConfig {
    pub(crate) rules: mcas_csl::MappingRules,
    pub(crate) time_generated: mcas_csl::TimeGeneratedPolicy,
}

impl MappingConfig {
    fn from_value(v: toml::Value) -> Result<MappingConfig, String> {
        let toml::Value::Table(mut table) = v else {
            return Err("[mapping] must be a table".to_owned());
        };
        let time_generated = match table.remove("time_generated") {
            None => mcas_csl::TimeGeneratedPolicy::default(),
            Some(p) => p.try_into().map_err(|e| {
                format!("[mapping] time_generated: {e} (use \"receive_time\", \"rt\" or \"start\")")
            })?,
        };
        let rules: mcas_csl::MappingRules = toml::Value::Table(table)
            .try_into()
            .map_err(|e| format!("[mapping]: {e}"))?;
        Ok(MappingConfig {
            rules,
            time_generated,
        })
    }
}

impl<'de> Deserialize<'de> for MappingConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = toml::Value::deserialize(d)?;
        MappingConfig::from_value(v).map_err(serde::de::Error::custom)
    }
}
