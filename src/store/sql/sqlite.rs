//! The SQLite edge: a [`Value`] bound as the storage class it names.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

use super::value::Value;

/// A value as rusqlite binds it.
pub struct Bind<'a>(&'a Value<'a>);

pub fn binds<'a>(values: &'a [Value<'a>]) -> impl Iterator<Item = Bind<'a>> {
    values.iter().map(Bind)
}

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Numeric(d) => return Ok(ToSqlOutput::from(d.to_string())),
        }))
    }
}
