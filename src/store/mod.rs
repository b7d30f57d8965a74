//! Storage: SQLite through per-process r2d2 pools created after fork.
//!
//! Each table is read and written through exactly one module here, with plain Rust
//! types in and out; handlers never write SQL.

pub mod admin;
pub mod bots;
mod db;
pub mod ledger;
pub mod mail_queue;
pub mod market_cache;
pub mod migrate;
pub mod resets;
pub mod sessions;
pub mod settings;
pub mod tokens;
pub mod trades;
pub mod two_factor;
pub mod users;

pub use db::{open, open_migrated, Db, StoreError};

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
/// statements, not re-parsed per request.
pub fn read<T, E: From<rusqlite::Error>>(
    conn: &rusqlite::Connection,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, E>,
) -> Result<T, E> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let open = Open(conn);
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    std::mem::forget(open);
    Ok(out)
}

/// Ends a read transaction left open by an error or a panic, so the pooled
/// connection goes back clean.
struct Open<'c>(&'c rusqlite::Connection);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]));
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn read_ends_its_transaction_on_success_error_and_panic() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let one: i64 = read(&conn, |c| c.query_row("SELECT 1", [], |r| r.get(0))).unwrap();
        assert_eq!(one, 1);
        assert!(conn.is_autocommit());
        let err: Result<i64, rusqlite::Error> =
            read(&conn, |c| c.query_row("SELECT x", [], |r| r.get(0)));
        assert!(err.is_err() && conn.is_autocommit());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), rusqlite::Error> = read(&conn, |_| panic!("handler bug"));
        }));
        assert!(caught.is_err() && conn.is_autocommit());
    }
}
