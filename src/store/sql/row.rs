//! A result row, read by column index or name into Rust types (`FromValue`).

use std::borrow::Cow;

use super::error::{SqlError, SqlResult};
use super::pg;
use super::value::{FromValue, Value};

/// One row of a result, borrowed from the engine.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

/// A column by position or by name.
pub trait ColumnIndex {
    fn index(&self, row: &Row<'_>) -> SqlResult<usize>;
}

impl ColumnIndex for usize {
    fn index(&self, _: &Row<'_>) -> SqlResult<usize> {
        Ok(*self)
    }
}

impl ColumnIndex for &str {
    fn index(&self, row: &Row<'_>) -> SqlResult<usize> {
        let found = match row {
            Row::Sqlite(r) => r.as_ref().column_index(self).ok(),
            Row::Postgres(r) => r.columns().iter().position(|c| c.name() == *self),
        };
        found.ok_or_else(|| SqlError::NoColumn(self.to_string()))
    }
}

impl Row<'_> {
    /// Column `idx` as a `T`, as rusqlite's `Row::get`.
    pub fn get<I: ColumnIndex, T: FromValue>(&self, idx: I) -> SqlResult<T> {
        let column = idx.index(self)?;
        let value = self.value(column)?;
        T::from_value(value).map_err(|source| SqlError::Column { column, source })
    }

    /// Column `idx` as the engine gave it.
    pub fn value(&self, column: usize) -> SqlResult<Value<'_>> {
        match self {
            Row::Sqlite(r) => Ok(from_sqlite(r.get_ref(column)?, column)?),
            Row::Postgres(r) => pg::column(r, column),
        }
    }

    pub fn column_count(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.as_ref().column_count(),
            Row::Postgres(r) => r.len(),
        }
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>, column: usize) -> SqlResult<Value<'_>> {
    use rusqlite::types::ValueRef as R;
    Ok(match v {
        R::Null => Value::Null,
        R::Integer(i) => Value::Int(i),
        R::Real(f) => Value::Real(f),
        R::Text(t) => Value::Text(Cow::Borrowed(std::str::from_utf8(t).map_err(|e| {
            SqlError::Column {
                column,
                source: super::value::FromValueError::Other(Box::new(e)),
            }
        })?)),
        R::Blob(b) => Value::Blob(Cow::Borrowed(b)),
    })
}
