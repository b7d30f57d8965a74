//! SQL on either engine: SQLite (the embedded default) or PostgreSQL (several
//! hosts, CONTRACT C18), behind one connection type with rusqlite's shape, so the
//! store modules are written once.
//!
//! - `conn`: the connection, its statements, rows and transactions;
//! - `value`: the values both ways (`Param`, `FromValue`);
//! - `dialect`: the PostgreSQL spelling of the store's SQL;
//! - `sqlite`, `pg`: each engine's edge;
//! - `manager`: the r2d2 pool manager for either engine.

mod conn;
pub mod dialect;
mod error;
pub mod manager;
mod params;
mod pg;
mod row;
mod sqlite;
mod value;

pub use conn::{Conn, Kind, Rows, Stmt, Tx};
pub use error::{chain, OptionalExt, SqlError, SqlResult};
pub use params::Params;
pub use row::{ColumnIndex, Row};
pub use value::{FromValue, FromValueError, Param, Value};
