//! The `user` table: accounts, roles, verification and the Telegram settings
//! (notifications are the user's, for all their bots). Exchange credentials are
//! `store::exchange_accounts`'s, bots `store::user_bots`'s.

use crate::params;
use crate::store::sql::{Conn, OptionalExt, Row};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// Always lower-case.
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub verified: bool,
    pub created_at: i64,
    /// Two-factor login is on (docs/http-api.md, Two-factor login).
    pub two_factor: bool,
}

/// The columns `from_row` reads, in its order; `u` is the table's alias. Whether
/// two-factor login is on is read from its table (`store::two_factor`'s).
pub const COLUMNS: &str =
    "u.id, u.email, u.password_hash, u.is_admin, u.disabled, u.verified_at, u.created_at,
     EXISTS (SELECT 1 FROM two_factor f WHERE f.user_id = u.id AND f.enabled_at IS NOT NULL)";

/// How many columns `COLUMNS` has: a query's own columns follow from this index.
pub const WIDTH: usize = 8;

/// Reads a `User` from the first `WIDTH` columns of a row selected with `COLUMNS`.
pub fn from_row(r: &Row<'_>) -> crate::store::SqlResult<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        is_admin: r.get(3)?,
        disabled: r.get(4)?,
        verified: r.get::<_, Option<i64>>(5)?.is_some(),
        created_at: r.get(6)?,
        two_factor: r.get(7)?,
    })
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
    /// None = verified now; Some((token hash, expiry)) = awaiting verification.
    pub verification: Option<(&'a str, i64)>,
}

/// Inserts a user and their default bot (a working paper configuration), both
/// or neither; `StoreError::Conflict` when the e-mail is taken.
pub fn create(conn: &Conn, new: &NewUser<'_>, now: i64) -> Result<i64, StoreError> {
    super::atomically(conn, |conn| {
        let id = insert(conn, new, now)?;
        super::user_bots::create_default(conn, id, now)?;
        Ok(id)
    })
}

fn insert(conn: &Conn, new: &NewUser<'_>, now: i64) -> Result<i64, StoreError> {
    let (verified_at, token, expires) = match new.verification {
        None => (Some(now), None, None),
        Some((hash, expires)) => (None, Some(hash), Some(expires)),
    };
    let id = conn
        .prepare_cached(
            "INSERT INTO user (email, password_hash, is_admin, verified_at, verification_token,
                           verification_expires, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        )?
        .insert(params![
            new.email,
            new.password_hash,
            new.is_admin,
            verified_at,
            token,
            expires,
            now
        ])
        .map_err(StoreError::from_write)?;
    Ok(id)
}

pub fn by_email(conn: &Conn, email: &str) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM user u WHERE u.email = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([email], from_row)
        .optional()?)
}

pub fn by_id(conn: &Conn, id: i64) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM user u WHERE u.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// Marks the account holding this unexpired verification token verified and
/// forgets the token (single use). Returns whether a token matched.
pub fn verify_by_token(conn: &Conn, token_hash: &str, now: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE user SET verified_at = ?2, verification_token = NULL,
                             verification_expires = NULL
             WHERE verification_token = ?1 AND verification_expires > ?2",
        )?
        .execute(params![token_hash, now])?;
    Ok(n > 0)
}

pub fn set_password(conn: &Conn, id: i64, password_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![id, password_hash])?;
    Ok(())
}

/// Marks the account verified (a reset link reached its mailbox, or an admin said so).
pub fn set_verified(conn: &Conn, id: i64, verified: bool, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE user SET verified_at = CASE WHEN ?2 THEN COALESCE(verified_at, ?3) END,
                         verification_token = CASE WHEN ?2 THEN NULL ELSE verification_token END
         WHERE id = ?1",
    )?
    .execute(params![id, verified, now])?;
    Ok(())
}

pub fn set_admin(conn: &Conn, id: i64, is_admin: bool) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user SET is_admin = ?2 WHERE id = ?1")?
        .execute(params![id, is_admin])?;
    Ok(())
}

pub fn set_disabled(conn: &Conn, id: i64, disabled: bool) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user SET disabled = ?2 WHERE id = ?1")?
        .execute(params![id, disabled])?;
    Ok(())
}

/// Whether any account has the admin role (disabled or not).
pub fn any_admin(conn: &Conn) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM user WHERE is_admin = 1)",
        (),
        |r| r.get(0),
    )?)
}

/// Stores the user's sealed Telegram token (already encrypted: this module never
/// sees plaintext).
pub fn set_telegram_token(conn: &Conn, id: i64, sealed: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user SET telegram_token_enc = ?2 WHERE id = ?1")?
        .execute(params![id, sealed])?;
    Ok(())
}

/// Sealed secrets as stored: an exchange account's key pair
/// (`exchange_accounts::credentials`) or a user's Telegram token
/// ([`credentials`]); what the other holds is `None`. Opened by
/// `SecretKey::open_credentials` for the owner.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredCredentials {
    pub api_key: Option<String>,
    pub api_key_last4: Option<String>,
    pub api_secret: Option<String>,
    pub telegram_token: Option<String>,
}

/// The user's sealed Telegram token; `None` for no such user.
pub fn credentials(conn: &Conn, id: i64) -> Result<Option<StoredCredentials>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT telegram_token_enc FROM user WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(StoredCredentials {
                telegram_token: r.get(0)?,
                ..StoredCredentials::default()
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> crate::store::testing::TestDb {
        crate::store::testing::migrated()
    }

    fn new<'a>(email: &'a str, verification: Option<(&'a str, i64)>) -> NewUser<'a> {
        NewUser {
            email,
            password_hash: "h",
            is_admin: false,
            verification,
        }
    }

    #[test]
    fn email_is_unique() {
        let c = db();
        create(&c, &new("a@x.io", None), 1).unwrap();
        assert!(matches!(
            create(&c, &new("a@x.io", None), 1),
            Err(StoreError::Conflict)
        ));
    }

    #[test]
    fn verification_token_is_single_use_and_expires() {
        let c = db();
        let id = create(&c, &new("a@x.io", Some(("t1", 100))), 1).unwrap();
        assert!(!by_id(&c, id).unwrap().unwrap().verified);
        assert!(!verify_by_token(&c, "t1", 100).unwrap(), "expired at 100");
        assert!(verify_by_token(&c, "t1", 99).unwrap());
        assert!(!verify_by_token(&c, "t1", 99).unwrap(), "single use");
        assert!(by_id(&c, id).unwrap().unwrap().verified);
    }

    #[test]
    fn new_users_get_a_default_bot_with_the_paper_defaults() {
        let c = db();
        let id = create(&c, &new("a@x.io", None), 1).unwrap();
        let (ex, sym, lev, rounds): (String, String, i64, i64) = c
            .query_row(
                "SELECT exchange, symbol, leverage, rounds FROM user_bots WHERE user_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            (ex.as_str(), sym.as_str(), lev, rounds),
            ("paper", "BTC/USDT", 10, 3)
        );
        // A refused user leaves no bot behind.
        assert!(create(&c, &new("a@x.io", None), 1).is_err());
        let bots: i64 = c
            .query_row("SELECT COUNT(*) FROM user_bots", (), |r| r.get(0))
            .unwrap();
        assert_eq!(bots, 1);
    }
}
