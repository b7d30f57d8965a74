//! Opening the database: the documented pragmas on every connection, pools per process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use super::engine::Engine;
use super::pg_migrate::PgMigrateError;
use super::sql::manager::Manager;
use super::sql::{Conn, SqlError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create database file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {}", super::sql::chain(source))]
    PgConnect {
        url: super::engine::PgUrl,
        source: postgres::Error,
    },
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database: {0}")]
    Sql(#[from] SqlError),
    #[error(transparent)]
    PgMigrate(#[from] PgMigrateError),
    #[error("the database connection is closed")]
    Closed,
    /// A stored value that cannot be read back, or a value that cannot be stored.
    #[error("database value: {0}")]
    Value(String),
    #[error("migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "the database schema is at version {found}, newer than this binary knows ({known}); \
         run the newer blitz or restore a backup"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// A uniqueness constraint refused the write (e.g. an e-mail already taken).
    #[error("already exists")]
    Conflict,
    /// A bot's write refused because this instance no longer holds the user's
    /// lease at the epoch it wrote under (`store::cluster::LeaseToken`).
    #[error("this instance no longer holds the user's lease")]
    Fenced,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sql(SqlError::Sqlite(e))
    }
}

impl StoreError {
    /// Maps a constraint failure to `Conflict`, anything else to `Sql`.
    pub fn from_write(e: SqlError) -> StoreError {
        if e.is_constraint() {
            StoreError::Conflict
        } else {
            StoreError::Sql(e)
        }
    }
}

/// How long a worker waits for a pooled connection before reporting failure.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection. rusqlite keeps 16 by default, fewer than
/// the distinct statements a bot step or the request mix runs on one connection (about
/// 60 since several bots per user), so the cache evicted what it would soon need and
/// SQL was parsed again: 9 % of the runner's time under the load test's mix.
const STATEMENT_CACHE: usize = 256;

/// The pragmas of docs/operations.md (Storage), applied to every new connection.
fn apply_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    for pragma in [
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA cache_size=10000",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA mmap_size=268435456",
        "PRAGMA foreign_keys=ON",
    ] {
        // Some pragmas answer with a row; step once and ignore it.
        let mut stmt = conn.prepare(pragma)?;
        let mut rows = stmt.query([])?;
        let _ = rows.next()?;
    }
    Ok(())
}

/// Opens one connection with the pragmas, creating the directory and the file.
/// For the master before forking (closed again before any fork) and the CLI commands.
pub fn open(path: &Path) -> Result<Conn, StoreError> {
    open_sqlite(path).map(Conn::from)
}

fn open_sqlite(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    create_private(path).map_err(|source| StoreError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    apply_pragmas(&conn).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(conn)
}

/// `open` without memory-mapped reads, for a process whose threads each hold a
/// connection and all write: a connection that finds the database changed by
/// another one drops its whole mapping (`munmap`, a TLB shoot-down on every core)
/// and faults the pages in again, which was a quarter of the bot runner's CPU while
/// it resumed thousands of bots. Plain reads from the page cache cost less there.
pub fn open_unmapped(path: &Path) -> Result<Conn, StoreError> {
    let conn = open_sqlite(path)?;
    conn.pragma_update(None, "mmap_size", 0)
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Conn::from(conn))
}

/// Creates a new database file readable by its owner only: it holds password hashes
/// and sealed secrets. SQLite gives the `-wal` and `-shm` files the same mode.
/// An existing file is left as the operator made it.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// One connection to `engine`: `open` for SQLite, a client for PostgreSQL.
pub fn connect(engine: &Engine) -> Result<Conn, StoreError> {
    match engine {
        Engine::Sqlite(path) => open(path),
        Engine::Postgres(url) => connect_pg(url),
    }
}

/// `connect`, with `open_unmapped` for SQLite: for the bot runner's connections.
pub fn connect_unmapped(engine: &Engine) -> Result<Conn, StoreError> {
    match engine {
        Engine::Sqlite(path) => open_unmapped(path),
        Engine::Postgres(url) => connect_pg(url),
    }
}

fn connect_pg(url: &super::engine::PgUrl) -> Result<Conn, StoreError> {
    url.config()
        .connect(postgres::NoTls)
        .map(Conn::from)
        .map_err(|source| StoreError::PgConnect {
            url: url.clone(),
            source,
        })
}

/// `connect`, then the pending migrations; returns the names applied.
pub fn connect_migrated(engine: &Engine) -> Result<(Conn, Vec<&'static str>), StoreError> {
    let mut conn = connect(engine)?;
    let applied = super::migrate::migrate(&mut conn)?;
    Ok((conn, applied))
}

/// Opens the database and applies pending migrations; returns the names applied.
pub fn open_migrated(path: &Path) -> Result<(Conn, Vec<&'static str>), StoreError> {
    let mut conn = open(path)?;
    let applied = super::migrate::migrate(&mut conn)?;
    Ok((conn, applied))
}

/// A process's handle on the database; the pool is built on first use, after fork.
pub struct Db {
    engine: Engine,
    pool: Option<Pool<Manager>>,
    max_size: u32,
}

impl Db {
    pub fn new(engine: &Engine, max_size: u32) -> Db {
        Db {
            engine: engine.clone(),
            pool: None,
            max_size,
        }
    }

    fn pool(&mut self) -> &Pool<Manager> {
        let (engine, max) = (&self.engine, self.max_size);
        self.pool.get_or_insert_with(|| {
            let builder = Pool::builder()
                .max_size(max)
                .min_idle(Some(0))
                .connection_timeout(CHECKOUT_TIMEOUT);
            match engine {
                Engine::Sqlite(path) => builder.build_unchecked(Manager::Sqlite(
                    SqliteConnectionManager::file(path)
                        .with_init(|c: &mut Connection| apply_pragmas(c)),
                )),
                // No test query on every checkout: it would be a round trip per
                // request. A connection the server closed is found broken and
                // replaced (`Manager::has_broken`).
                Engine::Postgres(url) => {
                    builder
                        .test_on_check_out(false)
                        .build_unchecked(Manager::Postgres(PostgresConnectionManager::new(
                            url.config().clone(),
                            postgres::NoTls,
                        )))
                }
            }
        })
    }

    pub fn conn(&mut self) -> Result<PooledConnection<Manager>, StoreError> {
        Ok(self.pool().get()?)
    }

    /// A trivial query, for `/readyz`.
    pub fn ping(&mut self) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.query_row("SELECT 1", (), |r| r.get::<_, i64>(0))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pragmas_hold_on_pooled_connections() {
        let dir = std::env::temp_dir().join(format!("blitz-db-{}", std::process::id()));
        let path = dir.join("sub/test.db");
        open(&path).unwrap();
        let mut db = Db::new(&Engine::Sqlite(path.clone()), 2);
        db.ping().unwrap();
        let c = db.conn().unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", (), |r| r.get(0))
            .unwrap();
        let sync: i64 = c.query_row("PRAGMA synchronous", (), |r| r.get(0)).unwrap();
        let fk: i64 = c
            .query_row("PRAGMA foreign_keys", (), |r| r.get(0))
            .unwrap();
        let busy: i64 = c
            .query_row("PRAGMA busy_timeout", (), |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync, fk), ("wal", 1, 1));
        assert!(busy >= 5000);
        drop(c);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
