//! One error type for both engines, so callers match on what happened (no row, a
//! constraint refused the write) rather than on an engine's error codes.

use super::value::FromValueError;

pub type SqlResult<T> = Result<T, SqlError>;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// `query_row` found no row (`optional()` turns it into `None`).
    #[error("query returned no rows")]
    NoRows,
    /// Column `column` could not be read as the type asked for.
    #[error("column {column}: {source}")]
    Column {
        column: usize,
        source: FromValueError,
    },
    #[error("no column named {0}")]
    NoColumn(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// Shown with its causes: the client's own text is only "db error".
    #[error("{}", chain(.0))]
    Postgres(#[from] postgres::Error),
}

/// A PostgreSQL error with its causes (the server's message, a lost connection's
/// I/O error), as one line.
pub fn chain(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl SqlError {
    /// Column `column` holds something its type cannot be made from.
    pub fn conversion(
        column: usize,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> SqlError {
        SqlError::Column {
            column,
            source: FromValueError::Other(e.into()),
        }
    }

    /// A failure another try may get past: a lock held elsewhere, failing I/O,
    /// a lost connection.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                DatabaseBusy
                    | DatabaseLocked
                    | SystemIoFailure
                    | DiskFull
                    | CannotOpen
                    | FileLockingProtocolFailed
            ),
            SqlError::Postgres(e) => e.is_closed() || e.code().is_none() || self.is_busy(),
            _ => false,
        }
    }

    /// A uniqueness, foreign-key, NOT NULL or CHECK constraint refused the write.
    pub fn is_constraint(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.code == rusqlite::ErrorCode::ConstraintViolation
            }
            // Class 23: integrity constraint violation.
            SqlError::Postgres(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }

    /// Another transaction holds what this one needs (SQLite's busy or locked,
    /// PostgreSQL's serialization failure or deadlock): trying again may succeed.
    pub fn is_busy(&self) -> bool {
        match self {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            SqlError::Postgres(e) => e
                .code()
                .is_some_and(|c| matches!(c.code(), "40001" | "40P01" | "55P03")),
            _ => false,
        }
    }
}

/// `query_row`'s "no row" as `None`, as rusqlite's `OptionalExtension` does.
pub trait OptionalExt<T> {
    fn optional(self) -> SqlResult<Option<T>>;
}

impl<T> OptionalExt<T> for SqlResult<T> {
    fn optional(self) -> SqlResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
