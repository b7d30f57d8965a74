//! A bot's configuration: the configuration columns of `user_bots`, read with
//! what may be said about its secrets (its exchange account's masked key, its
//! owner's Telegram token) and written with the owner's Telegram chat, which is
//! the user's for all their bots. Keyed by bot id; whose bot it is, is
//! `store::user_bots`'s question. See docs/bots.md, Configuration.
//!
//! Invariant: a bot's exchange account is one of its owner's, on the bot's
//! exchange; a paper bot has none. `save` keeps it so when the exchange changes.

use crate::params;
use crate::store::sql::{Conn, OptionalExt, Row};
use serde_json::Value;

use super::StoreError;
use crate::bots::config::{self, parse_side, side_name, BotConfig, BotMarket, StoredConfig};
use crate::bots::ids::BotRef;
use crate::bots::ladder::Side;
use crate::money::{self, sql::Sql};

pub(super) const MARKET: &str = "b.exchange, b.exchange_account_id, b.symbol, b.side,
    b.pending_config IS NOT NULL";

pub(super) fn market_from(r: &Row<'_>, at: usize) -> crate::store::SqlResult<BotMarket> {
    let side: String = r.get(at + 3)?;
    Ok(BotMarket {
        exchange: r.get(at)?,
        exchange_account_id: r.get(at + 1)?,
        symbol: r.get(at + 2)?,
        side: parse_side(&side).unwrap_or(Side::Long),
        has_pending: r.get(at + 4)?,
    })
}

/// The market of bot `bot_id` (see `BotMarket`); `None` for no such bot.
pub fn market(conn: &Conn, bot_id: i64) -> Result<Option<BotMarket>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {MARKET} FROM user_bots b WHERE b.id = ?1"))?
        .query_row([bot_id], |r| market_from(r, 0))
        .optional()?)
}

/// The markets of user `uid`'s bots that run or are meant to (bot id, market):
/// what a start of another of their bots must not trade as well.
pub fn wanted_markets_of(conn: &Conn, uid: i64) -> Result<Vec<(i64, BotMarket)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT b.id, {MARKET} FROM user_bots b
         WHERE b.user_id = ?1
           AND (b.desired_state = 'running' OR b.status IN ('starting', 'running', 'stopping'))
         ORDER BY b.id"
    ))?;
    let rows = stmt
        .query_map([uid], |r| Ok((r.get(0)?, market_from(r, 1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Reads the configuration of bot `bot_id`.
pub fn load(conn: &Conn, bot_id: i64) -> Result<Option<StoredConfig>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT b.exchange, b.symbol, b.side, b.leverage, b.take_profit, b.stop_loss,
                    b.rounds, b.grids, b.repeat, u.telegram_chat_id, a.api_key_last4,
                    a.id IS NOT NULL, u.telegram_token_enc IS NOT NULL, b.after_stop_loss,
                    b.cooldown, b.max_active_legs, b.trailing_take_profit,
                    b.pending_config IS NOT NULL, b.id, b.user_id, b.name, a.id
             FROM user_bots b JOIN user u ON u.id = b.user_id
             LEFT JOIN exchange_accounts a
                 ON a.id = b.exchange_account_id AND a.user_id = b.user_id
             WHERE b.id = ?1",
        )?
        .query_row([bot_id], |r| {
            let grids: String = r.get(7)?;
            let side: String = r.get(2)?;
            let has_account: bool = r.get(11)?;
            Ok(StoredConfig {
                bot: BotRef {
                    bot_id: r.get(18)?,
                    user_id: r.get(19)?,
                },
                name: r.get(20)?,
                exchange_account_id: r.get(21)?,
                config: BotConfig {
                    exchange: r.get(0)?,
                    symbol: r.get(1)?,
                    side: parse_side(&side).unwrap_or(Side::Long),
                    leverage: r.get(3)?,
                    take_profit: money::sql::get(r, 4)?,
                    stop_loss: money::sql::get(r, 5)?,
                    rounds: r.get::<_, i64>(6)?.max(1) as usize,
                    grids: serde_json::from_str(&grids).unwrap_or_default(),
                    repeat: r.get(8)?,
                    telegram_chat_id: r.get(9)?,
                    after_stop_loss: r.get(13)?,
                    cooldown: r.get::<_, i64>(14)?.clamp(0, i64::from(u32::MAX)) as u32,
                    max_active_legs: r.get::<_, i64>(15)?.max(0) as usize,
                    trailing_take_profit: money::sql::get(r, 16)?,
                },
                api_key_last4: r.get(10)?,
                // An account holds both halves of the key pair.
                has_api_key: has_account,
                has_api_secret: has_account,
                has_telegram_token: r.get(12)?,
                has_pending: r.get(17)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// The grids as stored: a JSON array.
pub(super) fn grids_text(c: &BotConfig) -> Result<String, StoreError> {
    serde_json::to_string(&c.grids).map_err(|e| StoreError::Value(format!("grids: {e}")))
}

/// Writes the non-secret fields of `c` for bot `bot_id`, and the chat id for its
/// owner. The bot keeps its exchange account only while it names the bot's
/// exchange (a paper bot has none).
pub fn save(conn: &Conn, bot_id: i64, c: &BotConfig) -> Result<(), StoreError> {
    let grids = grids_text(c)?;
    conn.prepare_cached(
        "UPDATE user_bots SET exchange = ?2, symbol = ?3, side = ?4, leverage = ?5,
             take_profit = ?6, stop_loss = ?7, rounds = ?8, grids = ?9, repeat = ?10,
             after_stop_loss = ?11, cooldown = ?12, max_active_legs = ?13,
             trailing_take_profit = ?14,
             exchange_account_id = (SELECT a.id FROM exchange_accounts a
                 WHERE a.id = user_bots.exchange_account_id AND a.exchange = ?2)
         WHERE id = ?1",
    )?
    .execute(params![
        bot_id,
        c.exchange,
        c.symbol,
        side_name(c.side),
        c.leverage,
        Sql(c.take_profit),
        Sql(c.stop_loss),
        c.rounds as i64,
        grids,
        c.repeat,
        c.after_stop_loss,
        c.cooldown,
        c.max_active_legs as i64,
        Sql(c.trailing_take_profit)
    ])?;
    conn.prepare_cached(
        "UPDATE user SET telegram_chat_id = ?2
         WHERE id = (SELECT user_id FROM user_bots WHERE id = ?1)",
    )?
    .execute(params![bot_id, c.telegram_chat_id])?;
    Ok(())
}

/// The change waiting for the next cycle of bot `bot_id`, validated again against
/// the active configuration (`None` when there is none, or when it no longer
/// passes the rules).
pub fn load_pending(conn: &Conn, bot_id: i64) -> Result<Option<BotConfig>, StoreError> {
    let Some(active) = load(conn, bot_id)? else {
        return Ok(None);
    };
    let text: Option<String> = conn
        .prepare_cached("SELECT pending_config FROM user_bots WHERE id = ?1")?
        .query_row([bot_id], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(Value::Object(body)) = text.and_then(|t| serde_json::from_str(&t).ok()) else {
        return Ok(None);
    };
    Ok(config::apply_update(&active.config, &body)
        .ok()
        .map(|(c, _)| c))
}

/// Stores (or, with `None`, clears) the change for the next cycle.
pub fn save_pending(conn: &Conn, bot_id: i64, c: Option<&BotConfig>) -> Result<(), StoreError> {
    let text = c.map(|c| config::settings_json(c).to_string());
    conn.prepare_cached("UPDATE user_bots SET pending_config = ?2 WHERE id = ?1")?
        .execute(params![bot_id, text])?;
    Ok(())
}

/// Applies a pending change (if any) to the active configuration, in the caller's
/// transaction; returns the configuration now active when it changed.
pub fn apply_pending(conn: &Conn, bot_id: i64) -> Result<Option<BotConfig>, StoreError> {
    let pending = load_pending(conn, bot_id)?;
    if let Some(c) = &pending {
        save(conn, bot_id, c)?;
    }
    save_pending(conn, bot_id, None)?;
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use serde_json::json;

    use super::*;
    use crate::store::users::{self, NewUser};
    use crate::store::{exchange_accounts, user_bots};

    fn db() -> (crate::store::testing::TestDb, BotRef) {
        let c = crate::store::testing::migrated();
        let new = NewUser {
            email: "a@x.io",
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let user_id = users::create(&c, &new, 1).unwrap();
        let bot_id = user_bots::default_of(&c, user_id).unwrap().unwrap();
        (c, BotRef { user_id, bot_id })
    }

    #[test]
    fn a_new_bot_has_the_defaults_and_saves_round_trip() {
        let (c, bot) = db();
        let stored = load(&c, bot.bot_id).unwrap().unwrap();
        assert_eq!(stored.config, BotConfig::default());
        assert_eq!((stored.bot, stored.name.as_str()), (bot, "Default"));
        assert!(!stored.has_api_key && !stored.has_pending);
        let body = json!({"symbol": "ETH/USDT", "side": "short", "stop_loss": 50,
                          "telegram_chat_id": "42"});
        let (new, _) = config::apply_update(&stored.config, body.as_object().unwrap()).unwrap();
        save(&c, bot.bot_id, &new).unwrap();
        let again = load(&c, bot.bot_id).unwrap().unwrap();
        assert_eq!(again.config, new);
        assert_eq!(again.config.stop_loss, Decimal::from(50));
        let m = market(&c, bot.bot_id).unwrap().unwrap();
        assert_eq!((m.symbol.as_str(), m.side), ("ETH/USDT", Side::Short));
        assert_eq!(market(&c, bot.bot_id + 1).unwrap(), None);
    }

    #[test]
    fn pending_changes_apply_once_and_the_account_follows_the_exchange() {
        let (c, bot) = db();
        let account = exchange_accounts::NewAccount {
            name: "Main",
            exchange: "bybit",
            api_key_enc: "k",
            api_key_last4: "abcd",
            api_secret_enc: "s",
        };
        let acc = exchange_accounts::create(&c, bot.user_id, &account, 1).unwrap();
        let mut cfg = BotConfig {
            exchange: "bybit".into(),
            ..BotConfig::default()
        };
        save(&c, bot.bot_id, &cfg).unwrap();
        let linked = user_bots::set_account(&c, bot.user_id, bot.bot_id, Some(acc)).unwrap();
        assert_eq!(linked, user_bots::Linked::Done);
        let stored = load(&c, bot.bot_id).unwrap().unwrap();
        assert_eq!(
            (stored.exchange_account_id, stored.api_key_last4.as_deref()),
            (Some(acc), Some("abcd"))
        );
        cfg.take_profit = Decimal::from(7);
        save_pending(&c, bot.bot_id, Some(&cfg)).unwrap();
        assert!(market(&c, bot.bot_id).unwrap().unwrap().has_pending);
        assert_eq!(apply_pending(&c, bot.bot_id).unwrap(), Some(cfg.clone()));
        assert_eq!(apply_pending(&c, bot.bot_id).unwrap(), None);
        let active = load(&c, bot.bot_id).unwrap().unwrap();
        assert_eq!(active.config.take_profit, Decimal::from(7));
        assert_eq!(active.exchange_account_id, Some(acc), "same exchange");
        cfg.exchange = "bingx".into();
        save(&c, bot.bot_id, &cfg).unwrap();
        assert_eq!(
            load(&c, bot.bot_id).unwrap().unwrap().exchange_account_id,
            None
        );
    }

    #[test]
    fn wanted_markets_are_those_of_bots_that_run_or_are_meant_to() {
        use crate::bots::status::{BotStatus, DesiredState};
        let (c, bot) = db();
        assert!(wanted_markets_of(&c, bot.user_id).unwrap().is_empty());
        let (d, s) = (DesiredState::Stopped, BotStatus::Starting);
        crate::store::bots::set_state(&c, bot.bot_id, d, s, None, 2).unwrap();
        let wanted = wanted_markets_of(&c, bot.user_id).unwrap();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].0, bot.bot_id);
        assert!(wanted[0]
            .1
            .same_position(&market(&c, bot.bot_id).unwrap().unwrap()));
    }
}
