//! `exchange_accounts`: a user's credentials on a real exchange, held once for
//! the bots that trade with them (docs/bots.md, Several bots). The key and secret
//! are stored sealed (`crate::secrets`, bound to the owner as the `user` row's
//! were); this module never sees plaintext. The paper account has no row: each
//! user has one, implicitly.
//!
//! Every function takes the owner: another user's account is `None` or
//! `NotFound`, never theirs to read or change.
//!
//! - [`list`], [`get`]: a user's accounts with the ids of the bots using each;
//! - [`create`], [`set_keys`], [`rename`], [`delete`] (refused while a bot uses it);
//! - [`set_key_check`]: what the exchange said about the key when it was saved;
//! - [`set_proxy`], [`proxy`]: the sealed egress proxy and its credential-free form;
//! - [`active_bot`]: a bot trading with the account now;
//! - [`first_of`]: the user's first account on an exchange;
//! - [`credentials`]: the sealed pair, for the runner to open.

use crate::params;
use crate::store::sql::{Conn, OptionalExt, Row};

use super::users::StoredCredentials;
use super::StoreError;
use crate::bots::status::BotStatus;

/// An exchange account as listed (secrets only as the key's last four).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// `bybit` or `bingx`.
    pub exchange: String,
    pub api_key_last4: String,
    pub created_at: i64,
    /// The bots configured with this account, by id.
    pub bot_ids: Vec<i64>,
    /// The last check of its key; `None` for a key saved before checks existed.
    pub key: Option<KeyCheck>,
    /// The egress proxy without credentials (`socks5://host:port`); `None` = direct.
    pub proxy_shown: Option<String>,
}

/// What the exchange said about an account's key when it was saved (the refused
/// permissions are never stored: such a key is not saved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    pub trade: bool,
    pub read_only: bool,
    /// Unix seconds; `None` = never expires.
    pub expires_at: Option<i64>,
    /// `None` = works from any address.
    pub ip_whitelist: Option<Vec<String>>,
    /// Unix seconds.
    pub checked_at: i64,
}

impl Account {
    /// The key as the API shows it: `***abcd`.
    pub fn masked_key(&self) -> String {
        format!("***{}", self.api_key_last4)
    }
}

/// A new account's fields, its secrets already sealed.
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub exchange: &'a str,
    pub api_key_enc: &'a str,
    pub api_key_last4: &'a str,
    pub api_secret_enc: &'a str,
}

/// What [`delete`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Done,
    /// No such account of this user.
    NotFound,
    /// These bots use it.
    InUse(Vec<i64>),
}

const COLUMNS: &str = "a.id, a.user_id, a.name, a.exchange, a.api_key_last4, a.created_at,
    (SELECT GROUP_CONCAT(CAST(b.id AS TEXT), ' ') FROM user_bots b WHERE b.exchange_account_id = a.id),
    a.key_trade, a.key_read_only, a.key_expires_at, a.key_ip_whitelist, a.key_checked_at,
    a.proxy_shown";

/// Columns 7..=11: the key check, when there was one.
fn key_check(r: &Row<'_>) -> crate::store::SqlResult<Option<KeyCheck>> {
    let Some(checked_at) = r.get::<_, Option<i64>>(11)? else {
        return Ok(None);
    };
    let ips: Option<String> = r.get(10)?;
    let ip_whitelist = ips
        .map(|text| {
            serde_json::from_str::<Vec<String>>(&text)
                .map_err(|e| crate::store::SqlError::conversion(10, e))
        })
        .transpose()?;
    Ok(Some(KeyCheck {
        trade: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
        read_only: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
        expires_at: r.get(9)?,
        ip_whitelist,
        checked_at,
    }))
}

fn from_row(r: &Row<'_>) -> crate::store::SqlResult<Account> {
    let bots: Option<String> = r.get(6)?;
    let bot_ids = bots
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(|id| {
            id.parse()
                .map_err(|e| crate::store::SqlError::conversion(6, e))
        })
        .collect::<crate::store::SqlResult<Vec<i64>>>()?;
    Ok(Account {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        exchange: r.get(3)?,
        api_key_last4: r.get(4)?,
        created_at: r.get(5)?,
        bot_ids: sorted(bot_ids),
        key: key_check(r)?,
        proxy_shown: r.get(12)?,
    })
}

fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids
}

/// User `uid`'s accounts, oldest first.
pub fn list(conn: &Conn, uid: i64) -> Result<Vec<Account>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM exchange_accounts a WHERE a.user_id = ?1 ORDER BY a.id"
    ))?;
    let rows = stmt.query_map([uid], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Account `id` if it is user `uid`'s.
pub fn get(conn: &Conn, uid: i64, id: i64) -> Result<Option<Account>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM exchange_accounts a WHERE a.id = ?1 AND a.user_id = ?2"
        ))?
        .query_row(params![id, uid], from_row)
        .optional()?)
}

/// The user's first (lowest id) account on `exchange`.
pub fn first_of(conn: &Conn, uid: i64, exchange: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(id) FROM exchange_accounts WHERE user_id = ?1 AND exchange = ?2",
        )?
        .query_row(params![uid, exchange], |r| r.get(0))?)
}

/// Creates an account; returns its id.
pub fn create(conn: &Conn, uid: i64, new: &NewAccount<'_>, now: i64) -> Result<i64, StoreError> {
    let id = conn
        .prepare_cached(
            "INSERT INTO exchange_accounts (user_id, name, exchange, api_key_enc, api_key_last4,
             api_secret_enc, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        )?
        .insert(params![
            uid,
            new.name,
            new.exchange,
            new.api_key_enc,
            new.api_key_last4,
            new.api_secret_enc,
            now
        ])
        .map_err(StoreError::from_write)?;
    Ok(id)
}

/// Replaces the given halves of account `id`'s key pair (`None` keeps one);
/// whether the account is the user's.
pub fn set_keys(
    conn: &Conn,
    uid: i64,
    id: i64,
    api_key: Option<(&str, &str)>,
    api_secret: Option<&str>,
) -> Result<bool, StoreError> {
    let (key, last4) = api_key.unzip();
    let n = conn
        .prepare_cached(
            "UPDATE exchange_accounts SET api_key_enc = COALESCE(?3, api_key_enc),
                 api_key_last4 = COALESCE(?4, api_key_last4),
                 api_secret_enc = COALESCE(?5, api_secret_enc)
             WHERE id = ?1 AND user_id = ?2",
        )?
        .execute(params![id, uid, key, last4, api_secret])?;
    Ok(n == 1)
}

/// Records the check of the key just saved on account `id`; whether the account
/// is the user's.
pub fn set_key_check(conn: &Conn, uid: i64, id: i64, check: &KeyCheck) -> Result<bool, StoreError> {
    let ips = check
        .ip_whitelist
        .as_ref()
        .map(|ips| serde_json::Value::from(ips.clone()).to_string());
    let n = conn
        .prepare_cached(
            "UPDATE exchange_accounts SET key_trade = ?3, key_read_only = ?4,
                 key_expires_at = ?5, key_ip_whitelist = ?6, key_checked_at = ?7
             WHERE id = ?1 AND user_id = ?2",
        )?
        .execute(params![
            id,
            uid,
            check.trade,
            check.read_only,
            check.expires_at,
            ips,
            check.checked_at
        ])?;
    Ok(n == 1)
}

/// Sets (sealed value and credential-free form) or clears (`None`) account
/// `id`'s egress proxy; whether the account is the user's.
pub fn set_proxy(
    conn: &Conn,
    uid: i64,
    id: i64,
    proxy: Option<(&str, &str)>,
) -> Result<bool, StoreError> {
    let (sealed, shown) = proxy.unzip();
    let n = conn
        .prepare_cached(
            "UPDATE exchange_accounts SET proxy_enc = ?3, proxy_shown = ?4
             WHERE id = ?1 AND user_id = ?2",
        )?
        .execute(params![id, uid, sealed, shown])?;
    Ok(n == 1)
}

/// Account `id`'s sealed proxy (`Ok(None)`: direct, or no such account of the
/// user's).
pub fn proxy(conn: &Conn, uid: i64, id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT proxy_enc FROM exchange_accounts WHERE id = ?1 AND user_id = ?2")?
        .query_row(params![id, uid], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// Renames account `id`; whether the account is the user's.
pub fn rename(conn: &Conn, uid: i64, id: i64, name: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("UPDATE exchange_accounts SET name = ?3 WHERE id = ?1 AND user_id = ?2")?
        .execute(params![id, uid, name])?;
    Ok(n == 1)
}

/// The first of user `uid`'s bots on account `id` that runs or is meant to, with
/// its status: while one does, the account's keys are the ones it trades with.
pub fn active_bot(conn: &Conn, uid: i64, id: i64) -> Result<Option<(i64, BotStatus)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, status FROM user_bots
             WHERE user_id = ?1 AND exchange_account_id = ?2
               AND (desired_state = 'running' OR status IN ('starting', 'running', 'stopping'))
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![uid, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Deletes account `id` of user `uid` unless a bot uses it. One statement: a bot
/// linked to it meanwhile makes the delete fail on its foreign key, not succeed.
pub fn delete(conn: &Conn, uid: i64, id: i64) -> Result<Deleted, StoreError> {
    let Some(account) = get(conn, uid, id)? else {
        return Ok(Deleted::NotFound);
    };
    if !account.bot_ids.is_empty() {
        return Ok(Deleted::InUse(account.bot_ids));
    }
    let n = conn
        .prepare_cached(
            "DELETE FROM exchange_accounts WHERE id = ?1 AND user_id = ?2
               AND NOT EXISTS (SELECT 1 FROM user_bots WHERE exchange_account_id = ?1)",
        )?
        .execute(params![id, uid])?;
    match n {
        1 => Ok(Deleted::Done),
        _ => Ok(match get(conn, uid, id)? {
            Some(a) => Deleted::InUse(a.bot_ids),
            None => Deleted::NotFound,
        }),
    }
}

/// The sealed key pair of account `id` of user `uid` (open it with
/// `SecretKey::open_credentials` for that user).
pub fn credentials(
    conn: &Conn,
    uid: i64,
    id: i64,
) -> Result<Option<StoredCredentials>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT api_key_enc, api_key_last4, api_secret_enc FROM exchange_accounts
             WHERE id = ?1 AND user_id = ?2",
        )?
        .query_row(params![id, uid], |r| {
            Ok(StoredCredentials {
                api_key: r.get(0)?,
                api_key_last4: r.get(1)?,
                api_secret: r.get(2)?,
                telegram_token: None,
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests_checks;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::user_bots;
    use crate::store::users::{self, NewUser};

    fn user(c: &Conn, email: &str) -> i64 {
        let new = NewUser {
            email,
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        users::create(c, &new, 1).unwrap()
    }

    fn account(exchange: &str) -> NewAccount<'_> {
        NewAccount {
            name: "Main",
            exchange,
            api_key_enc: "sealed-key",
            api_key_last4: "wxyz",
            api_secret_enc: "sealed-secret",
        }
    }

    #[test]
    fn accounts_are_their_owners_and_in_use_ones_stay() {
        let c = crate::store::testing::migrated();
        let (a, b) = (user(&c, "a@x.io"), user(&c, "b@x.io"));
        let id = create(&c, a, &account("bybit"), 5).unwrap();
        assert!(
            create(&c, a, &account("ftx"), 5).is_err(),
            "unknown exchange"
        );
        assert_eq!(get(&c, b, id).unwrap(), None, "another user's");
        assert_eq!(credentials(&c, b, id).unwrap(), None);
        assert!(!set_keys(&c, b, id, None, Some("x")).unwrap());
        assert_eq!(delete(&c, b, id).unwrap(), Deleted::NotFound);
        assert_eq!(first_of(&c, a, "bybit").unwrap(), Some(id));
        assert_eq!(first_of(&c, a, "bingx").unwrap(), None);

        let bot = user_bots::default_of(&c, a).unwrap().unwrap();
        let bybit = crate::bots::config::BotConfig {
            exchange: "bybit".into(),
            ..Default::default()
        };
        crate::store::bot_config::save(&c, bot, &bybit).unwrap();
        user_bots::set_account(&c, a, bot, Some(id)).unwrap();
        let listed = list(&c, a).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].bot_ids.clone(), listed[0].masked_key()),
            (vec![bot], "***wxyz".into())
        );
        assert_eq!(delete(&c, a, id).unwrap(), Deleted::InUse(vec![bot]));
        assert_eq!(active_bot(&c, a, id).unwrap(), None, "linked, stopped");
        let running = (
            crate::bots::status::DesiredState::Running,
            BotStatus::Running,
        );
        crate::store::bots::set_state(&c, bot, running.0, running.1, None, 6).unwrap();
        assert_eq!(
            active_bot(&c, a, id).unwrap(),
            Some((bot, BotStatus::Running))
        );
        assert_eq!(active_bot(&c, b, id).unwrap(), None, "not b's");
        let stopped = (
            crate::bots::status::DesiredState::Stopped,
            BotStatus::Stopped,
        );
        crate::store::bots::set_state(&c, bot, stopped.0, stopped.1, None, 7).unwrap();
        assert!(set_keys(&c, a, id, Some(("k2", "9876")), None).unwrap());
        let sealed = credentials(&c, a, id).unwrap().unwrap();
        assert_eq!(
            (
                sealed.api_key.as_deref(),
                sealed.api_key_last4.as_deref(),
                sealed.api_secret.as_deref()
            ),
            (Some("k2"), Some("9876"), Some("sealed-secret"))
        );
        user_bots::set_account(&c, a, bot, None).unwrap();
        assert_eq!(delete(&c, a, id).unwrap(), Deleted::Done);
        assert!(!set_proxy(&c, a, id, None).unwrap(), "gone");
        assert!(list(&c, a).unwrap().is_empty());
    }
}
