//! Storage: SQLite or PostgreSQL (`engine`) through per-process r2d2 pools created
//! after fork. The modules write their SQL once, against `sql::Conn`, which runs it
//! on either engine.
//!
//! Each table is read and written through exactly one module here, with plain Rust
//! types in and out; handlers never write SQL.

pub mod admin;
pub mod bot_config;
pub mod bot_status;
pub mod bots;
pub mod cluster;
mod db;
pub mod engine;
pub mod exchange_accounts;
pub mod ledger;
pub mod mail_queue;
pub mod market_cache;
pub mod migrate;
pub mod pg_migrate;
pub mod resets;
pub mod sessions;
pub mod settings;
pub mod sql;
#[cfg(test)]
pub mod testing;
pub mod tokens;
pub mod trades;
pub mod two_factor;
pub mod user_bots;
pub mod users;

pub use db::{
    connect, connect_migrated, connect_unmapped, open, open_migrated, open_unmapped, Db, StoreError,
};
pub use engine::Engine;
pub use sql::{Conn, Kind, OptionalExt, Row, SqlError, SqlResult};

/// Unix seconds, the unit of every `*_at` column.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix milliseconds, for the `*_ms` columns.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs `f`'s reads in one read transaction: one snapshot, and SQLite's shared
/// read lock taken once instead of per statement. `BEGIN`/`COMMIT` are cached
/// statements, not re-parsed per request. On PostgreSQL a transaction at its
/// default READ COMMITTED level still takes a snapshot per statement, so it would
/// only add two round trips: `f` runs without one.
pub fn read<T, E: From<SqlError>>(
    conn: &Conn,
    f: impl FnOnce(&Conn) -> Result<T, E>,
) -> Result<T, E> {
    if conn.kind() == Kind::Postgres {
        return f(conn);
    }
    conn.prepare_cached("BEGIN")?.execute(())?;
    let open = Open(conn);
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute(())?;
    std::mem::forget(open);
    Ok(out)
}

/// Runs `f` inside a SAVEPOINT: all of its writes or none, whether or not the
/// caller already holds a transaction (a savepoint nests in one; outside one, it is
/// a transaction of its own, since PostgreSQL has no savepoint outside one).
pub fn atomically<T, E: From<SqlError>>(
    conn: &Conn,
    f: impl FnOnce(&Conn) -> Result<T, E>,
) -> Result<T, E> {
    if conn.is_autocommit() {
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        return Ok(out);
    }
    conn.prepare_cached("SAVEPOINT atomically")?.execute(())?;
    let open = Savepoint(conn);
    let out = f(conn)?;
    conn.prepare_cached("RELEASE atomically")?.execute(())?;
    std::mem::forget(open);
    Ok(out)
}

/// Undoes a savepoint left open by an error or a panic.
struct Savepoint<'c>(&'c Conn);

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .execute_batch("ROLLBACK TO atomically; RELEASE atomically");
    }
}

/// Ends a read transaction left open by an error or a panic, so the pooled
/// connection goes back clean.
struct Open<'c>(&'c Conn);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute(()));
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn read_ends_its_transaction_on_success_error_and_panic() {
        let conn = crate::store::Conn::open_in_memory().unwrap();
        let one: i64 = read(&conn, |c| c.query_row("SELECT 1", (), |r| r.get(0))).unwrap();
        assert_eq!(one, 1);
        assert!(conn.is_autocommit());
        let err: Result<i64, crate::store::SqlError> =
            read(&conn, |c| c.query_row("SELECT x", (), |r| r.get(0)));
        assert!(err.is_err() && conn.is_autocommit());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), crate::store::SqlError> = read(&conn, |_| panic!("handler bug"));
        }));
        assert!(caught.is_err() && conn.is_autocommit());
    }

    #[test]
    fn atomically_keeps_all_or_nothing_inside_and_outside_a_transaction() {
        let conn = crate::store::Conn::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let insert = |c: &crate::store::Conn, fail: bool| {
            atomically(c, |c| {
                c.execute("INSERT INTO t VALUES (1)", [])?;
                if fail {
                    c.query_row("SELECT nope", (), |r| r.get::<_, i64>(0))?;
                }
                Ok::<_, crate::store::SqlError>(())
            })
        };
        let count = |c: &crate::store::Conn| -> i64 {
            c.query_row("SELECT COUNT(*) FROM t", (), |r| r.get(0))
                .unwrap()
        };
        insert(&conn, false).unwrap();
        assert!(insert(&conn, true).is_err());
        assert_eq!((count(&conn), conn.is_autocommit()), (1, true));
        conn.execute_batch("BEGIN").unwrap();
        assert!(insert(&conn, true).is_err());
        insert(&conn, false).unwrap();
        assert!(!conn.is_autocommit(), "the caller's transaction stays open");
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(count(&conn), 2);
    }
}
