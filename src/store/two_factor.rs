//! The two-factor tables: `two_factor` (sealed TOTP secrets and the last step
//! used), `two_factor_recovery` (hashed recovery codes) and `login_tickets` (the
//! step between a right password and the code). Values arrive sealed or hashed:
//! this module never sees a secret or a code.

use crate::params;
use crate::store::sql::{Conn, OptionalExt};

use super::StoreError;

/// A user's two-factor row as stored (secrets still sealed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub secret: Option<String>,
    pub pending: Option<String>,
    pub last_step: Option<i64>,
}

impl Stored {
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }
}

pub fn get(conn: &Conn, user_id: i64) -> Result<Stored, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT secret_enc, pending_enc, last_step FROM two_factor WHERE user_id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok(Stored {
                secret: r.get(0)?,
                pending: r.get(1)?,
                last_step: r.get(2)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Stores the secret of a new setup, replacing any earlier pending one. The active
/// secret, if any, is untouched.
pub fn set_pending(conn: &Conn, user_id: i64, sealed: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO two_factor (user_id, pending_enc, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET pending_enc = ?2, updated_at = ?3",
    )?
    .execute(params![user_id, sealed, now])?;
    Ok(())
}

/// Makes the pending secret the active one, with `step` already used (the code
/// that confirmed it), and replaces the recovery codes. Returns false when there
/// was no pending secret to enable.
pub fn enable(
    conn: &Conn,
    user_id: i64,
    step: i64,
    recovery_hashes: &[String],
    now: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE two_factor SET secret_enc = pending_enc, pending_enc = NULL,
                                   enabled_at = ?3, last_step = ?2, updated_at = ?3
             WHERE user_id = ?1 AND pending_enc IS NOT NULL",
        )?
        .execute(params![user_id, step, now])?;
    if n == 0 {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM two_factor_recovery WHERE user_id = ?1")?
        .execute([user_id])?;
    let mut insert = conn
        .prepare_cached("INSERT INTO two_factor_recovery (user_id, code_hash) VALUES (?1, ?2)")?;
    for h in recovery_hashes {
        insert.execute(params![user_id, h])?;
    }
    Ok(true)
}

/// Forgets everything two-factor of the user: secrets, recovery codes, tickets.
pub fn disable(conn: &Conn, user_id: i64) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM two_factor WHERE user_id = ?1",
        "DELETE FROM two_factor_recovery WHERE user_id = ?1",
        "DELETE FROM login_tickets WHERE user_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([user_id])?;
    }
    Ok(())
}

/// Forgets the user's login tickets: a ticket stands for the password that won it,
/// and dies when that password is changed or reset.
pub fn delete_tickets(conn: &Conn, user_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM login_tickets WHERE user_id = ?1")?
        .execute([user_id])?;
    Ok(())
}

/// Records `step` as used if it is newer than the last one used. Returns false for
/// a replayed (or older) step: one statement, so two requests with the same code
/// cannot both pass.
pub fn use_step(conn: &Conn, user_id: i64, step: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE two_factor SET last_step = ?2
             WHERE user_id = ?1 AND secret_enc IS NOT NULL
               AND (last_step IS NULL OR last_step < ?2)",
        )?
        .execute(params![user_id, step])?;
    Ok(n > 0)
}

/// Spends an unused recovery code with this hash; false if there is none.
pub fn use_recovery(
    conn: &Conn,
    user_id: i64,
    code_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE two_factor_recovery SET used_at = ?3
             WHERE id = (SELECT id FROM two_factor_recovery
                         WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL LIMIT 1)",
        )?
        .execute(params![user_id, code_hash, now])?;
    Ok(n > 0)
}

pub fn recovery_left(conn: &Conn, user_id: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM two_factor_recovery WHERE user_id = ?1 AND used_at IS NULL",
        )?
        .query_row([user_id], |r| r.get(0))?)
}

pub fn create_ticket(
    conn: &Conn,
    token_hash: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    // Spent and expired tickets are useless; dropping them keeps the table bounded.
    conn.prepare_cached(
        "DELETE FROM login_tickets WHERE user_id = ?1 AND (expires_at <= ?2 OR used_at IS NOT NULL)",
    )?
    .execute(params![user_id, now])?;
    conn.prepare_cached(
        "INSERT INTO login_tickets (token_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token_hash, user_id, now, expires_at])
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// A live ticket: not used, not expired, fewer than `max_failures` wrong codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub user_id: i64,
}

pub fn live_ticket(
    conn: &Conn,
    token_hash: &str,
    now: i64,
    max_failures: i64,
) -> Result<Option<Ticket>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id FROM login_tickets
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 AND failures < ?3",
        )?
        .query_row(params![token_hash, now, max_failures], |r| {
            Ok(Ticket {
                id: r.get(0)?,
                user_id: r.get(1)?,
            })
        })
        .optional()?)
}

/// Spends the ticket (a login finished with it).
pub fn use_ticket(conn: &Conn, id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE login_tickets SET used_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Counts a wrong code against the ticket.
pub fn ticket_failed(conn: &Conn, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE login_tickets SET failures = failures + 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (crate::store::testing::TestDb, i64) {
        let c = crate::store::testing::migrated();
        let new = crate::store::users::NewUser {
            email: "t@x.io",
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let id = crate::store::users::create(&c, &new, 1).unwrap();
        (c, id)
    }

    #[test]
    fn pending_becomes_active_and_steps_only_move_forward() {
        let (c, u) = db();
        assert!(!get(&c, u).unwrap().enabled());
        assert!(!enable(&c, u, 10, &[], 1).unwrap(), "nothing pending");
        set_pending(&c, u, "sealed-1", 1).unwrap();
        assert!(!get(&c, u).unwrap().enabled(), "pending is not active");
        assert!(!use_step(&c, u, 11).unwrap(), "no active secret yet");
        assert!(enable(&c, u, 10, &["h1".into(), "h2".into()], 2).unwrap());
        let s = get(&c, u).unwrap();
        assert_eq!(
            (s.secret.as_deref(), s.pending, s.last_step),
            (Some("sealed-1"), None, Some(10))
        );
        assert!(
            !use_step(&c, u, 10).unwrap(),
            "the confirming step is spent"
        );
        assert!(!use_step(&c, u, 9).unwrap());
        assert!(use_step(&c, u, 11).unwrap());
        assert!(!use_step(&c, u, 11).unwrap(), "replay");
        assert_eq!(recovery_left(&c, u).unwrap(), 2);
        assert!(use_recovery(&c, u, "h1", 3).unwrap());
        assert!(!use_recovery(&c, u, "h1", 3).unwrap(), "single use");
        assert!(!use_recovery(&c, u + 1, "h2", 3).unwrap(), "another user's");
        assert_eq!(recovery_left(&c, u).unwrap(), 1);
        // A new setup while enabled keeps the active secret.
        set_pending(&c, u, "sealed-2", 4).unwrap();
        assert_eq!(get(&c, u).unwrap().secret.as_deref(), Some("sealed-1"));
        disable(&c, u).unwrap();
        assert_eq!(get(&c, u).unwrap(), Stored::default());
        assert_eq!(recovery_left(&c, u).unwrap(), 0);
    }

    #[test]
    fn tickets_expire_are_spent_and_burn_after_failures() {
        let (c, u) = db();
        create_ticket(&c, "t1", u, 100, 400).unwrap();
        let t = live_ticket(&c, "t1", 399, 5).unwrap().unwrap();
        assert_eq!(t.user_id, u);
        assert_eq!(live_ticket(&c, "t1", 400, 5).unwrap(), None, "expired");
        for _ in 0..4 {
            ticket_failed(&c, t.id).unwrap();
        }
        assert!(live_ticket(&c, "t1", 200, 5).unwrap().is_some());
        ticket_failed(&c, t.id).unwrap();
        assert_eq!(live_ticket(&c, "t1", 200, 5).unwrap(), None, "burnt");
        create_ticket(&c, "t2", u, 100, 400).unwrap();
        let t2 = live_ticket(&c, "t2", 200, 5).unwrap().unwrap();
        use_ticket(&c, t2.id, 200).unwrap();
        assert_eq!(live_ticket(&c, "t2", 200, 5).unwrap(), None, "single use");
    }
}
