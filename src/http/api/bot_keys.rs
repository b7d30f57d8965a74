//! The credentials of `PUT /api/bot/config` (docs/http-api.md, Bot
//! configuration): keys sent with a bot's configuration create or update the
//! bot's exchange account, as they once updated the user's only pair.
//!
//! Rules, checked after the configuration itself is valid:
//! - keys for a paper bot → 400 on `api_key` (paper needs none);
//! - the bot's account (or, without one, the user's first account on the bot's
//!   exchange) gets the halves given; with no account at all, a new one is
//!   created, named after the exchange, which needs both halves (400 on the
//!   missing one);
//! - without keys, a bot on a real exchange that has no account is linked to the
//!   user's first account on that exchange, if there is one (switching a bot
//!   between exchanges finds the keys given for each);
//! - keys are checked with the exchange before the write (`precheck`, the same
//!   check as `POST /api/exchange-accounts`, through the account's proxy) and the
//!   result is stored with the account.

use std::collections::BTreeMap;

use crate::store::sql::Conn;

use super::key_check::{self, Candidate, Checker};
use super::ApiError;
use crate::bots::config::{BotConfig, SecretUpdate};
use crate::bots::ids::BotRef;
use crate::exchange::proxy;
use crate::exchange::rest::ApiKey;
use crate::http::reply;
use crate::secrets::{Credentials, SecretKey};
use crate::store::exchange_accounts::KeyCheck;
use crate::store::{self, exchange_accounts, user_bots, users};

/// The name of the account created for `exchange`'s keys.
fn account_name(exchange: &str) -> &'static str {
    match exchange {
        "bingx" => "BingX",
        _ => "Bybit",
    }
}

fn field_error(field: &str, message: &str) -> ApiError {
    reply::invalid_fields(&BTreeMap::from([(field, message)])).into()
}

/// Refuses keys the bot cannot use; call before anything is written.
pub fn check(new: &BotConfig, s: &SecretUpdate, account: Option<i64>) -> Result<(), ApiError> {
    if s.api_key.is_none() && s.api_secret.is_none() {
        return Ok(());
    }
    if new.exchange == "paper" {
        let field = if s.api_key.is_some() {
            "api_key"
        } else {
            "api_secret"
        };
        return Err(field_error(
            field,
            "the paper exchange needs no API key; set exchange to bybit or bingx with the keys",
        ));
    }
    if account.is_some() {
        return Ok(());
    }
    match (&s.api_key, &s.api_secret) {
        (Some(_), None) => Err(field_error(
            "api_secret",
            "is required with api_key: the bot has no exchange account yet",
        )),
        (None, Some(_)) => Err(field_error(
            "api_key",
            "is required with api_secret: the bot has no exchange account yet",
        )),
        _ => Ok(()),
    }
}

/// The account the bot's keys belong to after a save of `new`: its own, or the
/// user's first on the bot's exchange. `None` for paper.
pub fn account_for(
    conn: &Conn,
    bot: BotRef,
    new: &BotConfig,
    current: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    if new.exchange == "paper" {
        return Ok(None);
    }
    if let Some(id) = current {
        let same = exchange_accounts::get(conn, bot.user_id, id)?
            .is_some_and(|a| a.exchange == new.exchange);
        if same {
            return Ok(Some(id));
        }
    }
    Ok(exchange_accounts::first_of(
        conn,
        bot.user_id,
        &new.exchange,
    )?)
}

/// The exchange's check of the key pair a save of `new` with `s` would give the
/// bot's account (`account`, from `account_for`): the halves given, the others
/// as stored. `None` when no key half is given, or when the pair is incomplete or
/// the bot is on paper (`check` then refuses the save). Runs before the write
/// transaction: it waits for the exchange.
pub fn precheck(
    conn: &Conn,
    on: Checker<'_>,
    bot: BotRef,
    new: &BotConfig,
    account: Option<i64>,
    key: &SecretKey,
    s: &SecretUpdate,
) -> Result<Option<KeyCheck>, ApiError> {
    if (s.api_key.is_none() && s.api_secret.is_none()) || new.exchange == "paper" {
        return Ok(None);
    }
    let uid = bot.user_id;
    let stored = match account {
        Some(id) => exchange_accounts::credentials(conn, uid, id)?
            .and_then(|sealed| key.open_credentials(uid, &sealed).ok()),
        None => None,
    };
    let api_key = s
        .api_key
        .clone()
        .or_else(|| stored.as_ref()?.api_key.clone());
    let secret = s
        .api_secret
        .clone()
        .or_else(|| stored.as_ref()?.api_secret.clone());
    let (Some(api_key), Some(secret)) = (api_key, secret) else {
        return Ok(None);
    };
    let sealed_proxy = match account {
        Some(id) => exchange_accounts::proxy(conn, uid, id)?,
        None => None,
    };
    let proxy = sealed_proxy
        .map(|p| proxy::open(key, uid, &p))
        .transpose()
        .map_err(|e| field_error("api_key", &format!("the account's proxy: {e}")))?;
    let candidate = Candidate {
        exchange: &new.exchange,
        key: ApiKey {
            key: api_key,
            secret,
        },
        proxy: proxy.as_ref(),
    };
    key_check::check(on, candidate).map(Some)
}

/// Writes the keys and token of `s` (after `check`) and the key check (after
/// `precheck`) and links the bot to the account that holds its keys, in the
/// caller's transaction.
pub fn store(
    conn: &Conn,
    bot: BotRef,
    new: &BotConfig,
    account: Option<i64>,
    key: &SecretKey,
    s: SecretUpdate,
    checked: Option<&KeyCheck>,
) -> Result<(), ApiError> {
    let uid = bot.user_id;
    let sealed = key.seal_credentials(
        uid,
        &Credentials {
            api_key: s.api_key,
            api_secret: s.api_secret,
            telegram_token: s.telegram_token,
        },
    );
    if let Some(token) = &sealed.telegram_token {
        users::set_telegram_token(conn, uid, token)?;
    }
    let key_pair = sealed
        .api_key
        .as_ref()
        .map(|(k, l)| (k.as_str(), l.as_str()));
    let account = match (account, key_pair, sealed.api_secret.as_deref()) {
        (Some(id), None, None) => Some(id),
        (Some(id), k, sec) => {
            exchange_accounts::set_keys(conn, uid, id, k, sec)?;
            Some(id)
        }
        (None, Some((api_key_enc, api_key_last4)), Some(api_secret_enc)) => {
            let fresh = exchange_accounts::NewAccount {
                name: account_name(&new.exchange),
                exchange: &new.exchange,
                api_key_enc,
                api_key_last4,
                api_secret_enc,
            };
            Some(exchange_accounts::create(conn, uid, &fresh, store::now())?)
        }
        (None, _, _) => None,
    };
    if let Some(id) = account {
        user_bots::set_account(conn, uid, bot.bot_id, account)?;
        if let Some(c) = checked {
            exchange_accounts::set_key_check(conn, uid, id, c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bot_config;
    use crate::store::users::{self, NewUser};

    fn keys(api_key: Option<&str>, api_secret: Option<&str>) -> SecretUpdate {
        SecretUpdate {
            api_key: api_key.map(String::from),
            api_secret: api_secret.map(String::from),
            telegram_token: None,
        }
    }

    fn on(exchange: &str) -> BotConfig {
        BotConfig {
            exchange: exchange.into(),
            ..BotConfig::default()
        }
    }

    /// The field a refusal names.
    fn refused_field(r: Result<(), ApiError>) -> Option<String> {
        match r {
            Err(ApiError::Reply(resp)) => {
                let body: serde_json::Value = serde_json::from_slice(resp.body.as_slice()).ok()?;
                body["fields"].as_object()?.keys().next().cloned()
            }
            _ => None,
        }
    }

    #[test]
    fn keys_need_a_real_exchange_and_both_halves_for_a_new_account() {
        let paper = on("paper");
        let pair = keys(Some("k"), Some("s"));
        assert_eq!(
            refused_field(check(&paper, &pair, None)).as_deref(),
            Some("api_key")
        );
        let bybit = on("bybit");
        assert!(check(&bybit, &pair, None).is_ok());
        let half = keys(Some("k"), None);
        assert_eq!(
            refused_field(check(&bybit, &half, None)).as_deref(),
            Some("api_secret")
        );
        assert!(
            check(&bybit, &half, Some(3)).is_ok(),
            "the account has a secret"
        );
        let other_half = keys(None, Some("s"));
        assert_eq!(
            refused_field(check(&bybit, &other_half, None)).as_deref(),
            Some("api_key")
        );
        assert!(check(&paper, &keys(None, None), None).is_ok());
    }

    #[test]
    fn keys_make_an_account_that_follows_the_bot_between_exchanges() {
        let c = crate::store::testing::migrated();
        let new = NewUser {
            email: "k@x.io",
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let user_id = users::create(&c, &new, 1).unwrap();
        let bot_id = user_bots::default_of(&c, user_id).unwrap().unwrap();
        let bot = BotRef { user_id, bot_id };
        let key = SecretKey::derive(b"test");
        let save = |cfg: &BotConfig, s: SecretUpdate| {
            let current = bot_config::load(&c, bot_id)
                .unwrap()
                .unwrap()
                .exchange_account_id;
            let account = account_for(&c, bot, cfg, current).ok().flatten();
            check(cfg, &s, account).ok().unwrap();
            bot_config::save(&c, bot_id, cfg).unwrap();
            store(&c, bot, cfg, account, &key, s, None).ok().unwrap();
            bot_config::load(&c, bot_id).unwrap().unwrap()
        };
        let bybit = save(&on("bybit"), keys(Some("KEY-abcd1234"), Some("secret")));
        let account = bybit.exchange_account_id.unwrap();
        assert_eq!(bybit.api_key_last4.as_deref(), Some("1234"));
        let listed = exchange_accounts::get(&c, user_id, account)
            .unwrap()
            .unwrap();
        assert_eq!(
            (listed.name.as_str(), listed.exchange.as_str()),
            ("Bybit", "bybit")
        );
        // A new key alone replaces the key of the same account.
        let again = save(&on("bybit"), keys(Some("KEY-wxyz9876"), None));
        assert_eq!(
            (again.exchange_account_id, again.api_key_last4.as_deref()),
            (Some(account), Some("9876"))
        );
        // Another exchange without keys: no account there yet; back: found again.
        assert_eq!(
            save(&on("bingx"), keys(None, None)).exchange_account_id,
            None
        );
        assert_eq!(
            save(&on("paper"), keys(None, None)).exchange_account_id,
            None
        );
        assert_eq!(
            save(&on("bybit"), keys(None, None)).exchange_account_id,
            Some(account)
        );
        assert_eq!(exchange_accounts::list(&c, user_id).unwrap().len(), 1);
        let sealed = exchange_accounts::credentials(&c, user_id, account)
            .unwrap()
            .unwrap();
        let opened = key.open_credentials(user_id, &sealed).unwrap();
        assert_eq!(opened.api_key.as_deref(), Some("KEY-wxyz9876"));
        assert_eq!(opened.api_secret.as_deref(), Some("secret"));
    }
}
