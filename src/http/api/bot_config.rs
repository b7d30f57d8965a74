//! `GET/PUT /api/bot/config` of the user's default bot: validated partial
//! updates, write-only secrets sealed with the instance key (the keys go to the
//! bot's exchange account, `bot_keys`). While the bot runs, a change of anything
//! but the market (exchange, symbol, side) and the credentials is kept as pending
//! and applied by the bot at the start of its next cycle (docs/http-api.md).

use rusqlite::TransactionBehavior;
use serde_json::json;

use super::bot::{default_bot, user_id};
use super::{bot_keys, markets, ApiResult};
use crate::bots::config::{self, BotConfig, SecretUpdate, StoredConfig};
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::http::reply;
use crate::market::catalogue::{self, Listed, Source};
use crate::secrets::SecretKey;
use crate::store::{bot_config, bots};

pub fn get(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let conn = ctx.db.conn()?;
    let bot = default_bot(&conn, uid)?;
    let Some(stored) = bot_config::load(&conn, bot.bot_id)? else {
        return Ok(reply::error(404, "Not found"));
    };
    let pending = bot_config::load_pending(&conn, bot.bot_id)?;
    Ok(reply::json(200, &with_pending(&stored, pending.as_ref())))
}

/// The active configuration plus `"pending": {…}|null`, what the next cycle gets.
fn with_pending(stored: &StoredConfig, pending: Option<&BotConfig>) -> serde_json::Value {
    let mut shown = stored.to_json();
    shown["pending"] = pending.map_or(serde_json::Value::Null, config::settings_json);
    shown
}

/// The fields a running bot cannot take without a stop: its market and keys.
fn changes_market(active: &BotConfig, new: &BotConfig, secrets: &SecretUpdate) -> bool {
    active.exchange != new.exchange
        || active.symbol != new.symbol
        || active.side != new.side
        || !secrets.is_empty()
}

/// Where the catalogue of the exchange the saved configuration will name comes
/// from: the body's `exchange` when it is valid, else the stored one.
fn target_source(ctx: &Ctx<'_, '_>, body: &input::JsonInput, stored: &str) -> Option<Source> {
    let named = body.fields().get("exchange").and_then(|v| v.as_str());
    let exchange = named
        .filter(|e| config::EXCHANGES.contains(e))
        .unwrap_or(stored);
    Source::of(exchange, &ctx.config.paper_prices)
}

/// The fields the catalogue's rule is about.
const MARKET_FIELDS: [&str; 3] = ["exchange", "symbol", "leverage"];

/// Whether the request touches the market: it names the exchange, the symbol or
/// the leverage. Other edits (a take-profit) are not held to a rule the stored
/// configuration may predate.
fn names_market(body: &input::JsonInput) -> bool {
    MARKET_FIELDS.iter().any(|f| body.fields().contains_key(*f))
}

/// Whether `new` differs from `stored` in what the catalogue's rule is about.
fn market_differs(stored: &BotConfig, new: &BotConfig) -> bool {
    stored.exchange != new.exchange
        || stored.symbol != new.symbol
        || stored.leverage != new.leverage
}

/// The catalogue's rule (`market::catalogue::check`) on the configuration to save,
/// when `applies`; a catalogue out of reach lets it through (logged): editing a
/// take-profit must work during an exchange outage.
fn check_market(
    ctx: &Ctx<'_, '_>,
    conn: &rusqlite::Connection,
    c: &BotConfig,
    applies: bool,
) -> Result<(), super::ApiError> {
    if !applies {
        return Ok(());
    }
    let Some(source) = Source::of(&c.exchange, &ctx.config.paper_prices) else {
        return Ok(());
    };
    let listed = catalogue::cached(conn, source, &c.symbol)?;
    if listed == Listed::Unknown {
        slog::warn!(ctx.log, "market catalogue unavailable; saving without the market check";
                    "exchange" => &c.exchange, "symbol" => &c.symbol);
    }
    catalogue::check(&c.exchange, &c.symbol, c.leverage, &listed).map_err(|(field, msg)| {
        let fields = std::collections::BTreeMap::from([(field, msg)]);
        reply::invalid_fields(&fields).into()
    })
}

pub fn put(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let body = input::json(ctx.req)?;
    let key = secret_key(ctx)?;
    let mut conn = ctx.db.conn()?;
    let bot = default_bot(&conn, uid)?;
    // The catalogue is refreshed (maybe from the exchange, within the request's
    // budget) before the write transaction, which then only reads the cached copy.
    if let Some(stored) = bot_config::load(&conn, bot.bot_id)?.filter(|_| names_market(&body)) {
        if let Some(Source::Live(v)) = target_source(ctx, &body, &stored.config.exchange) {
            let until = std::time::Instant::now() + crate::market::refresh::FETCH_BUDGET;
            catalogue::ensure(
                &mut conn,
                v,
                markets::catalogue_settings(ctx.config, until),
                ctx.log,
            )?;
        }
    }
    // Immediate: the status check and the write are one step, so a start that
    // begins meanwhile either sees the new configuration or makes us answer 409.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(stored) = bot_config::load(&tx, bot.bot_id)? else {
        return Ok(reply::error(404, "Not found"));
    };
    let running = bots::get(&tx, bot.bot_id)?.filter(|row| row.status.is_active());
    if let Some(row) = running {
        // Built on what is already pending, so two changes in one cycle add up.
        let base =
            bot_config::load_pending(&tx, bot.bot_id)?.unwrap_or_else(|| stored.config.clone());
        let (new, secrets) = config::apply_update(&base, body.fields())
            .map_err(|fields| reply::invalid_fields(&fields))?;
        let applies = names_market(&body) || market_differs(&stored.config, &new);
        check_market(ctx, &tx, &new, applies)?;
        if changes_market(&stored.config, &new, &secrets) {
            return Ok(reply::json(
                409,
                &json!({"success": false, "status": row.status,
                        "error": "Stop the bot before changing its exchange, symbol, side or \
                                  credentials"}),
            ));
        }
        bot_config::save_pending(&tx, bot.bot_id, Some(&new))?;
        tx.commit()?;
        let mut shown = config::settings_json(&new);
        shown["api_key"] = stored.to_json()["api_key"].clone();
        shown["has_api_secret"] = json!(stored.has_api_secret);
        shown["has_telegram_token"] = json!(stored.has_telegram_token);
        shown["pending"] = json!(true);
        return Ok(reply::json(200, &shown));
    }
    let (new, secrets) = config::apply_update(&stored.config, body.fields())
        .map_err(|fields| reply::invalid_fields(&fields))?;
    let applies = names_market(&body) || market_differs(&stored.config, &new);
    check_market(ctx, &tx, &new, applies)?;
    let account = bot_keys::account_for(&tx, bot, &new, stored.exchange_account_id)?;
    bot_keys::check(&new, &secrets, account)?;
    bot_config::save(&tx, bot.bot_id, &new)?;
    bot_keys::store(&tx, bot, &new, account, &key, secrets)?;
    // A change made while stopped replaces anything still pending.
    bot_config::save_pending(&tx, bot.bot_id, None)?;
    let shown = bot_config::load(&tx, bot.bot_id)?.map(|s| with_pending(&s, None));
    tx.commit()?;
    Ok(reply::json(200, &shown))
}

fn secret_key(ctx: &Ctx<'_, '_>) -> Result<SecretKey, super::ApiError> {
    ctx.secret_key().map_err(|e| {
        slog::error!(ctx.log, "no secret key for sealing credentials"; "error" => %e);
        reply::error(500, "Internal server error").into()
    })
}
