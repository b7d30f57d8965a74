//! The `mail_queue` table: mail is committed here with the change that caused it and
//! delivered by the mailer process, which retries until it succeeds.
//!
//! Invariant: `body` is stored sealed (`mail::seal_body`), never as the text with its
//! one-time link, and is emptied once the mail was delivered. Rows written by an
//! older release hold plaintext until `mail::seal_stored` seals them at start.

use crate::params;
use crate::store::sql::Conn;

use super::StoreError;

pub struct Mail {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    /// As stored: sealed (or, from an older release, plaintext).
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
}

/// Queues a mail; `sealed_body` is the body as `mail::seal_body` sealed it.
pub fn enqueue(
    conn: &Conn,
    recipient: &str,
    subject: &str,
    sealed_body: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let id = conn
        .prepare_cached(
            "INSERT INTO mail_queue (recipient, subject, body, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
        )?
        .insert(params![recipient, subject, sealed_body, now])?;
    Ok(id)
}

/// Unsent mail whose next attempt is due, oldest first.
pub fn due(conn: &Conn, now: i64, limit: u32) -> Result<Vec<Mail>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, recipient, subject, body, created_at, attempts FROM mail_queue
         WHERE sent_at IS NULL AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], mail)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records delivery and erases the body: a delivered link lives only in the
/// recipient's mailbox.
pub fn mark_sent(conn: &Conn, id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE mail_queue SET sent_at = ?2, attempts = attempts + 1, last_error = NULL,
                body = ''
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

pub fn mark_failed(
    conn: &Conn,
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

/// Unsent mails whose body is not in the sealed format (`is_sealed`): rows queued
/// by an older release.
pub fn unsealed(conn: &Conn, is_sealed: fn(&str) -> bool) -> Result<Vec<Mail>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, recipient, subject, body, created_at, attempts FROM mail_queue
         WHERE sent_at IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map((), mail)?;
    let all: Vec<Mail> = rows.collect::<Result<_, _>>()?;
    Ok(all.into_iter().filter(|m| !is_sealed(&m.body)).collect())
}

pub fn set_body(conn: &Conn, id: i64, body: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE mail_queue SET body = ?2 WHERE id = ?1")?
        .execute(params![id, body])?;
    Ok(())
}

/// Empties the bodies of delivered mails (an older release kept them); returns how
/// many.
pub fn erase_sent_bodies(conn: &Conn) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE mail_queue SET body = '' WHERE sent_at IS NOT NULL AND body <> ''")?
        .execute(())?)
}

/// A `Mail` from a row of `id, recipient, subject, body, created_at, attempts`.
fn mail(r: &crate::store::Row<'_>) -> crate::store::SqlResult<Mail> {
    Ok(Mail {
        id: r.get(0)?,
        recipient: r.get(1)?,
        subject: r.get(2)?,
        body: r.get(3)?,
        created_at: r.get(4)?,
        attempts: r.get(5)?,
    })
}
