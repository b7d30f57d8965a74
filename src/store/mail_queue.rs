//! The `mail_queue` table: mail is committed here with the change that caused it and
//! delivered by the mailer process, which retries until it succeeds.

use rusqlite::{params, Connection};

use super::StoreError;

pub struct Mail {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
}

pub fn enqueue(
    conn: &Connection,
    recipient: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO mail_queue (recipient, subject, body, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![recipient, subject, body, now])?;
    Ok(conn.last_insert_rowid())
}

/// Unsent mail whose next attempt is due, oldest first.
pub fn due(conn: &Connection, now: i64, limit: u32) -> Result<Vec<Mail>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, recipient, subject, body, created_at, attempts FROM mail_queue
         WHERE sent_at IS NULL AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], |r| {
        Ok(Mail {
            id: r.get(0)?,
            recipient: r.get(1)?,
            subject: r.get(2)?,
            body: r.get(3)?,
            created_at: r.get(4)?,
            attempts: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn mark_sent(conn: &Connection, id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE mail_queue SET sent_at = ?2, attempts = attempts + 1, last_error = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

pub fn mark_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    next_attempt_at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE mail_queue SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
         WHERE id = ?1",
    )?
    .execute(params![id, error, next_attempt_at])?;
    Ok(())
}
