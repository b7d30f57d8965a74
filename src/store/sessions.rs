//! The `sessions` table: server-side browser sessions, keyed by the SHA-256 of the
//! cookie value (the value itself is never stored).

use crate::params;
use crate::store::sql::{Conn, OptionalExt};

use super::users::{self, User};
use super::StoreError;

pub struct Session {
    pub id: i64,
    pub csrf_token: String,
    pub user: User,
}

pub fn create(
    conn: &Conn,
    token_hash: &str,
    csrf_token: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<i64, StoreError> {
    // Expired rows are useless; dropping them here keeps the table bounded.
    conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2")?
        .execute(params![user_id, now])?;
    let id = conn
        .prepare_cached(
            "INSERT INTO sessions (token_hash, csrf_token, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )?
        .insert(params![token_hash, csrf_token, user_id, now, expires_at])
        .map_err(StoreError::from_write)?;
    Ok(id)
}

/// The live session with this hash: not revoked, not expired, user not disabled.
pub fn lookup(conn: &Conn, token_hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
    let sql = format!(
        "SELECT {}, s.id, s.csrf_token FROM sessions s JOIN user u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2
           AND u.disabled = 0",
        users::COLUMNS
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![token_hash, now], |r| {
            Ok(Session {
                user: users::from_row(r)?,
                id: r.get(users::WIDTH)?,
                csrf_token: r.get(users::WIDTH + 1)?,
            })
        })
        .optional()?)
}

pub fn revoke(conn: &Conn, id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Revokes every live session of the user except `keep`; returns how many.
pub fn revoke_others(
    conn: &Conn,
    user_id: i64,
    keep: Option<i64>,
    now: i64,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?3
             WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2",
        )?
        .execute(params![user_id, keep, now])?)
}
