//! The `api_tokens` table: bearer tokens, stored as SHA-256, shown once at creation.

use crate::params;
use crate::store::sql::{Conn, OptionalExt};

use super::users::{self, User};
use super::StoreError;

/// `last_used_at` is refreshed at most this often, so bearer reads do not write.
pub const TOUCH_INTERVAL_S: i64 = 60;

pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub struct Bearer {
    pub token: TokenInfo,
    pub user: User,
}

pub fn create(
    conn: &Conn,
    token_hash: &str,
    name: &str,
    user_id: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let id = conn.prepare_cached(
        "INSERT INTO api_tokens (token_hash, name, user_id, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )?
    .insert(params![token_hash, name, user_id, now])
    .map_err(StoreError::from_write)?;
    Ok(id)
}

/// The token with this hash and its user, unless the user is disabled.
pub fn lookup(conn: &Conn, token_hash: &str) -> Result<Option<Bearer>, StoreError> {
    let sql = format!(
        "SELECT {}, t.id, t.name, t.created_at, t.last_used_at
         FROM api_tokens t JOIN user u ON u.id = t.user_id
         WHERE t.token_hash = ?1 AND u.disabled = 0",
        users::COLUMNS
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([token_hash], |r| {
            Ok(Bearer {
                user: users::from_row(r)?,
                token: TokenInfo {
                    id: r.get(users::WIDTH)?,
                    name: r.get(users::WIDTH + 1)?,
                    created_at: r.get(users::WIDTH + 2)?,
                    last_used_at: r.get(users::WIDTH + 3)?,
                },
            })
        })
        .optional()?)
}

/// Records use, at most once per `TOUCH_INTERVAL_S` (the caller checks the age).
pub fn touch(conn: &Conn, id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// One page of the user's tokens, newest first.
pub fn list(
    conn: &Conn,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<TokenInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, created_at, last_used_at FROM api_tokens
         WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![user_id, limit, offset], |r| {
        Ok(TokenInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            created_at: r.get(2)?,
            last_used_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many tokens the user has (every stored token is active).
pub fn count(conn: &Conn, user_id: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM api_tokens WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))?)
}

/// Deletes every token of the user; returns how many.
pub fn revoke_all(conn: &Conn, user_id: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM api_tokens WHERE user_id = ?1")?
        .execute([user_id])?)
}

/// Deletes one of the user's tokens; false when the user has no such token.
pub fn delete(conn: &Conn, user_id: i64, id: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM api_tokens WHERE id = ?1 AND user_id = ?2")?
        .execute(params![id, user_id])?;
    Ok(n > 0)
}
