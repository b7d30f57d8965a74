//! The r2d2 manager for pooled connections of either engine. Pools are built
//! after fork, in the process that uses them (docs/operations.md, Storage).

use r2d2_postgres::PostgresConnectionManager;
use r2d2_sqlite::SqliteConnectionManager;

use super::conn::Conn;
use super::error::SqlError;

pub enum Manager {
    Sqlite(SqliteConnectionManager),
    Postgres(PostgresConnectionManager<postgres::NoTls>),
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = SqlError;

    fn connect(&self) -> Result<Conn, SqlError> {
        match self {
            Manager::Sqlite(m) => Ok(Conn::from(m.connect()?)),
            Manager::Postgres(m) => Ok(Conn::from(m.connect()?)),
        }
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), SqlError> {
        conn.execute_batch("")
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.is_broken()
    }
}
