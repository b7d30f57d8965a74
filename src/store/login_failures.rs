//! The `login_failures` table: the failed-login window shared by every worker.

use rusqlite::{params, Connection};

use super::StoreError;

/// Failures of `key` at or after `since_ms`: how many, and the time of the oldest of
/// the most recent `limit` (when the window will next admit an attempt).
pub fn recent(
    conn: &Connection,
    key: &str,
    since_ms: i64,
    limit: u32,
) -> Result<(u32, Option<i64>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms FROM login_failures WHERE key = ?1 AND at_ms >= ?2
         ORDER BY at_ms DESC LIMIT ?3",
    )?;
    let times: Vec<i64> = stmt
        .query_map(params![key, since_ms, limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((times.len() as u32, times.last().copied()))
}

/// Records one failure for each key and forgets failures older than `prune_before_ms`.
pub fn record(
    conn: &Connection,
    keys: &[&str],
    now_ms: i64,
    prune_before_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM login_failures WHERE at_ms < ?1")?
        .execute([prune_before_ms])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO login_failures (key, at_ms) VALUES (?1, ?2)")?;
    for key in keys {
        insert.execute(params![key, now_ms])?;
    }
    Ok(())
}

pub fn clear(conn: &Connection, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}
