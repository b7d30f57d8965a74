//! Decimals in SQLite: stored as canonical TEXT (`0.009`), since a REAL column would
//! turn them back into binary floats. `Sql` wraps a `Decimal` for `params!` and
//! `row.get`; reading also accepts INTEGER and REAL, for rows written before the
//! money columns became TEXT.

use rust_decimal::Decimal;

use crate::store::sql::{ColumnIndex, FromValue, FromValueError, Param, Row, SqlResult, Value};

/// A decimal as a SQL value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sql(pub Decimal);

impl Param for Sql {
    fn value(&self) -> Value<'_> {
        Value::Text(super::text(self.0).into())
    }
}

impl FromValue for Sql {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        let parsed = match v {
            Value::Text(t) => super::parse(&t),
            Value::Int(i) => Ok(Decimal::from(i)),
            Value::Numeric(d) => Ok(d),
            // Rust prints a float in its shortest round-trip form (0.009, not
            // 0.00899999…), which is the decimal that was meant.
            Value::Real(f) if f.is_finite() => super::parse(&f.to_string()),
            other => {
                return Err(FromValueError::Type {
                    wanted: "decimal",
                    found: other.kind(),
                })
            }
        };
        parsed
            .map(Sql)
            .map_err(|e| FromValueError::Other(Box::new(e)))
    }
}

/// Reads column `idx` of `row` as a decimal.
pub fn get<I: ColumnIndex>(row: &Row<'_>, idx: I) -> SqlResult<Decimal> {
    row.get::<_, Sql>(idx).map(|s| s.0)
}

/// Reads a nullable column `idx` of `row` as an optional decimal.
pub fn get_opt<I: ColumnIndex>(row: &Row<'_>, idx: I) -> SqlResult<Option<Decimal>> {
    row.get::<_, Option<Sql>>(idx).map(|s| s.map(|s| s.0))
}

/// An optional decimal for `params!`: NULL when absent.
pub fn opt(d: Option<Decimal>) -> Option<Sql> {
    d.map(Sql)
}

#[cfg(test)]
mod tests {
    use crate::store::sql::Conn;
    use rust_decimal::dec;

    use super::*;

    #[test]
    fn stores_text_and_reads_every_storage_class() {
        let c = Conn::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        c.execute("INSERT INTO t VALUES (?1)", [Sql(dec!(0.0090))])
            .unwrap();
        let (v, kind): (String, String) = c
            .query_row("SELECT v, typeof(v) FROM t", (), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((v.as_str(), kind.as_str()), ("0.009", "text"));
        let read = |sql: &str| c.query_row(sql, (), |r| get_opt(r, 0));
        assert_eq!(read("SELECT v FROM t").unwrap(), Some(dec!(0.009)));
        assert_eq!(read("SELECT 0.009").unwrap(), Some(dec!(0.009)));
        assert_eq!(read("SELECT 42").unwrap(), Some(dec!(42)));
        assert_eq!(read("SELECT NULL").unwrap(), None);
        assert!(read("SELECT 'x'").is_err());
        assert!(read("SELECT x'00'").is_err());
    }
}
