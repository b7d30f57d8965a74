//! The `password_resets` table: single-use, expiring reset tokens (stored hashed).

use crate::params;
use crate::store::sql::{Conn, OptionalExt};

use super::StoreError;

pub fn create(
    conn: &Conn,
    token_hash: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM password_resets WHERE expires_at <= ?1")?
        .execute([now])?;
    conn.prepare_cached(
        "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token_hash, user_id, now, expires_at])
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// Uses the token: marks it used and returns its user, if it is unused and unexpired.
/// Invariant: one UPDATE both checks and consumes, so two racing resets cannot both win.
pub fn consume(conn: &Conn, token_hash: &str, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE password_resets SET used_at = ?2
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
             RETURNING user_id",
        )?
        .query_row(params![token_hash, now], |r| r.get(0))
        .optional()?)
}

/// Marks every unused reset of the user used (after a password change or reset).
pub fn revoke_all(conn: &Conn, user_id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE password_resets SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
    )?
    .execute(params![user_id, now])?;
    Ok(())
}

/// Whether a reset was issued for the user at or after `since`.
pub fn created_since(conn: &Conn, user_id: i64, since: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM password_resets WHERE user_id = ?1 AND created_at >= ?2)",
        )?
        .query_row(params![user_id, since], |r| r.get(0))?)
}

/// Whether the token would be accepted now (for showing the reset page).
pub fn is_valid(conn: &Conn, token_hash: &str, now: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM password_resets
                            WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2)",
        )?
        .query_row(params![token_hash, now], |r| r.get(0))?)
}
