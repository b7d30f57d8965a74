//! The PostgreSQL edge: binding a [`Value`] to whatever type PostgreSQL inferred
//! for the parameter, and reading a column of whatever type into a [`Value`].
//!
//! The schema (sql/postgres) keeps SQLite's value kinds: BIGINT for integers and
//! flags, TEXT for text and decimals, DOUBLE PRECISION for reals, BYTEA for blobs.
//! Expressions may still answer INTEGER, BOOLEAN (`EXISTS`) or NUMERIC (`SUM`),
//! and a parameter may be inferred as any of these, so both directions convert.

use std::borrow::Cow;
use std::error::Error;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use rust_decimal::Decimal;

use super::error::{SqlError, SqlResult};
use super::value::{FromValueError, Value};

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => int_to_sql(*i, ty, out),
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::NUMERIC => Decimal::try_from(*f)?.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => f.to_string().to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Value::Text(t) => match *ty {
                Type::NUMERIC => t.parse::<Decimal>()?.to_sql(ty, out),
                _ => t.as_ref().to_sql(ty, out),
            },
            Value::Blob(b) => b.as_ref().to_sql(ty, out),
            Value::Numeric(d) => match *ty {
                Type::TEXT | Type::VARCHAR => d.to_string().to_sql(ty, out),
                _ => d.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which knows the value's kind.
        true
    }

    to_sql_checked!();
}

fn int_to_sql(i: i64, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
        Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
        Type::BOOL => (i != 0).to_sql(ty, out),
        Type::FLOAT8 => (i as f64).to_sql(ty, out),
        Type::NUMERIC => Decimal::from(i).to_sql(ty, out),
        Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
        _ => i.to_sql(ty, out),
    }
}

/// Column `i` of `row` as a [`Value`].
pub fn column(row: &postgres::Row, i: usize) -> SqlResult<Value<'_>> {
    let ty = row
        .columns()
        .get(i)
        .ok_or_else(|| SqlError::NoColumn(i.to_string()))?
        .type_()
        .clone();
    let value = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Value::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Value::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|v| Value::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)?
            .map(|v| Value::Real(v.into())),
        Type::NUMERIC => row.try_get::<_, Option<Decimal>>(i)?.map(Value::Numeric),
        Type::BYTEA => row
            .try_get::<_, Option<&[u8]>>(i)?
            .map(|b| Value::Blob(Cow::Borrowed(b))),
        _ => match row.try_get::<_, Option<&str>>(i) {
            Ok(t) => t.map(|t| Value::Text(Cow::Borrowed(t))),
            Err(_) => {
                return Err(SqlError::Column {
                    column: i,
                    source: FromValueError::Type {
                        wanted: "a supported column type",
                        found: "another PostgreSQL type",
                    },
                })
            }
        },
    };
    Ok(value.unwrap_or(Value::Null))
}
