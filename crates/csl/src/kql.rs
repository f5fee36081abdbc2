//! Transformations (`mcas-kql`) on mapped rows: the row read in place, and a kept row written
//! by the row itself when the query only filters and drops columns
//! ([`mcas_kql::Query::transform`]).

use crate::schema::{Column, CommonSecurityLog, CustomValue, KQL_LAYOUT, kusto_ticks};

/// A mapped row as a transformation's input, without serialising it: strings stay
/// borrowed, datetimes become Kusto ticks (100 ns). The table's columns have a
/// [layout](mcas_kql::Row::layout) (schema order), so a query reads them by place; custom
/// `_CF` columns are read by name. For a query that only filters and drops columns,
/// [`mcas_kql::Query::transform`] builds no output row: the kept row writes itself.
///
/// ```
/// let event = mcas_cef::parse(b"CEF:0|Acme|Fw|1|7|Deny|5|dpt=22 cs1=rule-9 msg=hi")?;
/// let ctx = mcas_csl::Context::new(jiff::Timestamp::from_second(1_700_000_000)?);
/// let row = mcas_csl::map(&event, &ctx).row;
/// let schema = mcas_kql::Schema::new(
///     mcas_csl::columns().iter().map(|(n, t)| (*n, t.kql_type())),
/// );
///
/// let q = mcas_kql::Query::compile(
///     "source | where DestinationPort == 22 | project-away DeviceCustomString1, Message",
///     &schema,
/// )?;
/// let mut out = Vec::new();
/// q.transform(&row).expect("kept").write_json_compact(Some("TimeGenerated"), &mut out);
/// let out = String::from_utf8(out)?;
/// assert!(out.starts_with(r#"{"TimeGenerated":"2023-11-14T22:13:20.0000000Z","DeviceVendor":"Acme","#));
/// assert!(out.contains(r#""DestinationPort":22"#) && !out.contains("Message"));
///
/// // The bytes the general path writes.
/// let mut general = Vec::new();
/// q.run(&row).expect("kept").write_json_compact(Some("TimeGenerated"), &mut general);
/// assert_eq!(out.as_bytes(), general);
///
/// let q = mcas_kql::Query::compile("source | where DestinationPort == 443", &schema)?;
/// assert!(q.transform(&row).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl mcas_kql::Row for CommonSecurityLog<'_> {
    fn get(&self, column: &str) -> Option<mcas_kql::Value<'_>> {
        use mcas_kql::Value as V;
        Some(match self.value(column)? {
            CustomValue::String(s) => V::String(s),
            CustomValue::Int(v) => V::Int(v),
            CustomValue::Long(v) => V::Long(v),
            CustomValue::Real(v) => V::Real(v),
            CustomValue::Boolean(v) => V::Bool(v),
            CustomValue::Datetime(t) => V::DateTime(kusto_ticks(t)),
        })
    }

    fn layout(&self) -> Option<&'static [(&'static str, mcas_kql::Type)]> {
        Some(KQL_LAYOUT)
    }

    fn value_at(&self, index: usize) -> Option<mcas_kql::Value<'_>> {
        self.kql_value_at(index)
    }

    /// The kept table columns, written by the row's own writer: empty strings and unset
    /// values left out, datetimes with seven fraction digits. A row with custom columns
    /// declines (they are outside the layout).
    fn write_json_kept(&self, keep: &[bool], first: Option<&str>, out: &mut Vec<u8>) -> bool {
        if !self.custom.is_empty() {
            return false;
        }
        let first = first.and_then(Column::from_name).map(|c| c as usize);
        self.write_kusto_json(keep, first, out);
        true
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    #[test]
    fn ticks_are_the_nanoseconds_divided_by_100() {
        let mut nanos = vec![
            0i128,
            1,
            -1,
            99,
            -99,
            100,
            -100,
            -101,
            1_999_999_999,
            -1_999_999_999,
            Timestamp::MIN.as_nanosecond(),
            Timestamp::MAX.as_nanosecond(),
        ];
        let mut x: i64 = 0x5eed;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            nanos.push(i128::from(x) * 37);
        }
        for n in nanos {
            let Ok(t) = Timestamp::from_nanosecond(n) else {
                continue;
            };
            let want = i64::try_from(t.as_nanosecond() / 100).unwrap();
            assert_eq!(super::kusto_ticks(t), want, "{n}");
        }
    }
}
