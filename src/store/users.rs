//! The `user` table: accounts, roles, verification and the stored bot secrets.

use rusqlite::{params, Connection, OptionalExtension, Row};

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
pub fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
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

/// Inserts a user; `StoreError::Conflict` when the e-mail is taken.
pub fn create(conn: &Connection, new: &NewUser<'_>, now: i64) -> Result<i64, StoreError> {
    let (verified_at, token, expires) = match new.verification {
        None => (Some(now), None, None),
        Some((hash, expires)) => (None, Some(hash), Some(expires)),
    };
    conn.prepare_cached(
        "INSERT INTO user (email, password_hash, is_admin, verified_at, verification_token,
                           verification_expires, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.email,
        new.password_hash,
        new.is_admin,
        verified_at,
        token,
        expires,
        now
    ])
    .map_err(StoreError::from_write)?;
    Ok(conn.last_insert_rowid())
}

pub fn by_email(conn: &Connection, email: &str) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM user u WHERE u.email = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([email], from_row)
        .optional()?)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM user u WHERE u.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// Marks the account holding this unexpired verification token verified and
/// forgets the token (single use). Returns whether a token matched.
pub fn verify_by_token(conn: &Connection, token_hash: &str, now: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE user SET verified_at = ?2, verification_token = NULL,
                             verification_expires = NULL
             WHERE verification_token = ?1 AND verification_expires > ?2",
        )?
        .execute(params![token_hash, now])?;
    Ok(n > 0)
}

pub fn set_password(conn: &Connection, id: i64, password_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![id, password_hash])?;
    Ok(())
}

/// Marks the account verified (a reset link reached its mailbox, or an admin said so).
pub fn set_verified(
    conn: &Connection,
    id: i64,
    verified: bool,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE user SET verified_at = CASE WHEN ?2 THEN COALESCE(verified_at, ?3) END,
                         verification_token = CASE WHEN ?2 THEN NULL ELSE verification_token END
         WHERE id = ?1",
    )?
    .execute(params![id, verified, now])?;
    Ok(())
}

pub fn set_admin(conn: &Connection, id: i64, is_admin: bool) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user SET is_admin = ?2 WHERE id = ?1")?
        .execute(params![id, is_admin])?;
    Ok(())
}

pub fn set_disabled(conn: &Connection, id: i64, disabled: bool) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user SET disabled = ?2 WHERE id = ?1")?
        .execute(params![id, disabled])?;
    Ok(())
}

/// Whether any account has the admin role (disabled or not).
pub fn any_admin(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM user WHERE is_admin = 1)",
        [],
        |r| r.get(0),
    )?)
}

/// Sealed exchange and Telegram secrets; see `crate::secrets`.
pub struct SealedCredentials<'a> {
    pub api_key: Option<(&'a str, &'a str)>,
    pub api_secret: Option<&'a str>,
    pub telegram_token: Option<&'a str>,
}

/// Stores the given sealed secrets; `None` fields are left as they are. Values are
/// already encrypted: this module never sees plaintext.
pub fn set_credentials(
    conn: &Connection,
    id: i64,
    c: &SealedCredentials<'_>,
) -> Result<(), StoreError> {
    let (key, last4) = c.api_key.unzip();
    conn.prepare_cached(
        "UPDATE user SET api_key_enc = COALESCE(?2, api_key_enc),
                         api_key_last4 = COALESCE(?3, api_key_last4),
                         api_secret_enc = COALESCE(?4, api_secret_enc),
                         telegram_token_enc = COALESCE(?5, telegram_token_enc)
         WHERE id = ?1",
    )?
    .execute(params![id, key, last4, c.api_secret, c.telegram_token])?;
    Ok(())
}

/// The sealed secrets as stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredCredentials {
    pub api_key: Option<String>,
    pub api_key_last4: Option<String>,
    pub api_secret: Option<String>,
    pub telegram_token: Option<String>,
}

pub fn credentials(conn: &Connection, id: i64) -> Result<Option<StoredCredentials>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT api_key_enc, api_key_last4, api_secret_enc, telegram_token_enc
             FROM user WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(StoredCredentials {
                api_key: r.get(0)?,
                api_key_last4: r.get(1)?,
                api_secret: r.get(2)?,
                telegram_token: r.get(3)?,
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        c
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
    fn new_users_get_the_paper_defaults() {
        let c = db();
        let id = create(&c, &new("a@x.io", None), 1).unwrap();
        let (ex, sym, lev, rounds): (String, String, i64, i64) = c
            .query_row(
                "SELECT exchange, symbol, leverage, rounds FROM user WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            (ex.as_str(), sym.as_str(), lev, rounds),
            ("paper", "BTC/USDT", 10, 3)
        );
    }
}
