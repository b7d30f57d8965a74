//! `GET/PUT /api/bot/config` of the user's default bot, and the same for any of
//! their bots (`/api/bots/<id>/config`, and the settings part of
//! `POST /api/bots` and `PUT /api/bots/<id>`): validated partial updates,
//! write-only secrets sealed with the instance key (the keys go to the bot's
//! exchange account, `bot_keys`). While the bot runs, a change of anything but
//! the market (exchange, symbol, side) and the credentials is kept as pending and
//! applied by the bot at the start of its next cycle (docs/http-api.md).

use crate::store::sql::Conn;
use serde_json::{json, Map, Value};

use super::bot::{default_bot, user_id};
use super::{bot_keys, markets, ApiError, ApiResult};
use crate::bots::config::{self, BotConfig, SecretUpdate, StoredConfig};
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::http::reply;
use crate::market::catalogue::{self, Listed, Source};
use crate::secrets::SecretKey;
use crate::store::{bot_config, bots, exchange_accounts, user_bots, StoreError};

pub fn get(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let bot = default_bot(&*ctx.db.conn()?, uid)?;
    get_of(ctx, bot.bot_id)
}

/// The configuration of bot `bot_id` (the caller checked whose it is).
pub fn get_of(ctx: &mut Ctx<'_, '_>, bot_id: i64) -> ApiResult {
    let conn = ctx.db.conn()?;
    match shown(&conn, bot_id)? {
        Some(shown) => Ok(reply::json(200, &shown)),
        None => Ok(reply::error(404, "Not found")),
    }
}

/// Bot `bot_id`'s configuration as `GET /api/bot/config` shows it.
pub fn shown(conn: &Conn, bot_id: i64) -> Result<Option<Value>, StoreError> {
    let Some(stored) = bot_config::load(conn, bot_id)? else {
        return Ok(None);
    };
    let pending = bot_config::load_pending(conn, bot_id)?;
    Ok(Some(with_pending(&stored, pending.as_ref())))
}

/// The active configuration plus `"pending": {…}|null`, what the next cycle gets.
fn with_pending(stored: &StoredConfig, pending: Option<&BotConfig>) -> Value {
    let mut shown = stored.to_json();
    shown["pending"] = pending.map_or(Value::Null, config::settings_json);
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
fn target_source(ctx: &Ctx<'_, '_>, body: &Map<String, Value>, stored: &str) -> Option<Source> {
    let named = body.get("exchange").and_then(|v| v.as_str());
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
pub(super) fn names_market(body: &Map<String, Value>) -> bool {
    MARKET_FIELDS.iter().any(|f| body.contains_key(*f))
}

/// Whether `new` differs from `stored` in what the catalogue's rule is about.
pub(super) fn market_differs(stored: &BotConfig, new: &BotConfig) -> bool {
    stored.exchange != new.exchange
        || stored.symbol != new.symbol
        || stored.leverage != new.leverage
}

/// The catalogue's rule (`market::catalogue::check`) on the configuration to save,
/// when `applies`; a catalogue out of reach lets it through (logged): editing a
/// take-profit must work during an exchange outage.
fn check_market(
    ctx: &Ctx<'_, '_>,
    conn: &crate::store::Conn,
    c: &BotConfig,
    applies: bool,
) -> Result<(), ApiError> {
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
    catalogue_rule(&c.exchange, &c.symbol, c.leverage, &listed)
}

/// `catalogue::check` as the API answers it: 400 with the field's error.
pub fn catalogue_rule(
    exchange: &str,
    symbol: &str,
    leverage: u32,
    listed: &Listed,
) -> Result<(), ApiError> {
    catalogue::check(exchange, symbol, leverage, listed).map_err(|(field, msg)| {
        let fields = std::collections::BTreeMap::from([(field, msg)]);
        reply::invalid_fields(&fields).into()
    })
}

pub fn put(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let bot = default_bot(&*ctx.db.conn()?, uid)?;
    put_of(ctx, bot.user_id, bot.bot_id)
}

/// `PUT` of bot `bot_id`'s configuration (the caller checked it is user `uid`'s).
pub fn put_of(ctx: &mut Ctx<'_, '_>, uid: i64, bot_id: i64) -> ApiResult {
    let body = input::json(ctx.req)?;
    update(ctx, uid, bot_id, body.fields(), &BotFields::default())
}

/// What `PUT /api/bots/<id>` changes besides the configuration: the bot's name
/// and (`Some(None)` to unlink) its exchange account.
#[derive(Debug, Default)]
pub struct BotFields {
    pub name: Option<String>,
    pub account: Option<Option<i64>>,
}

/// The catalogue is refreshed (maybe from the exchange, within the request's
/// budget) before a write transaction, which then only reads the cached copy.
fn refresh_catalogue(
    ctx: &Ctx<'_, '_>,
    conn: &mut Conn,
    source: Option<Source>,
) -> Result<(), ApiError> {
    if let Some(Source::Live(v)) = source {
        let until = std::time::Instant::now() + crate::market::refresh::FETCH_BUDGET;
        catalogue::ensure(
            conn,
            v,
            markets::catalogue_settings(ctx.config, until),
            ctx.log,
        )?;
    }
    Ok(())
}

/// The catalogue's rule on a new bot's configuration (`POST /api/bots`).
pub fn check_new(ctx: &mut Ctx<'_, '_>, c: &BotConfig) -> Result<(), ApiError> {
    let mut conn = ctx.db.conn()?;
    refresh_catalogue(
        ctx,
        &mut conn,
        Source::of(&c.exchange, &ctx.config.paper_prices),
    )?;
    check_market(ctx, &conn, c, true)
}

/// Applies `fields` (a partial configuration) and `extra` to bot `bot_id` of user
/// `uid`, all or nothing, with the rules of `PUT /api/bot/config`; answers with
/// the configuration. Every refusal is an `Err`, so a caller that answers with
/// something else cannot mistake one for success.
pub fn update(
    ctx: &mut Ctx<'_, '_>,
    uid: i64,
    bot_id: i64,
    fields: &Map<String, Value>,
    extra: &BotFields,
) -> ApiResult {
    let key = secret_key(ctx)?;
    let mut conn = ctx.db.conn()?;
    if let Some(stored) = bot_config::load(&conn, bot_id)?.filter(|_| names_market(fields)) {
        let source = target_source(ctx, fields, &stored.config.exchange);
        refresh_catalogue(ctx, &mut conn, source)?;
    }
    // Immediate: the status check and the write are one step, so a start that
    // begins meanwhile either sees the new configuration or makes us answer 409.
    let checked = precheck_keys(ctx, &conn, bot_id, fields, extra, &key)?;
    let tx = conn.transaction_immediate()?;
    let Some(stored) = bot_config::load(&tx, bot_id)? else {
        return Err(reply::error(404, "Not found").into());
    };
    let bot = stored.bot;
    if let Some(name) = &extra.name {
        user_bots::rename(&tx, uid, bot_id, name)?;
    }
    let running = bots::get(&tx, bot_id)?.filter(|row| row.status.is_active());
    if let Some(row) = running {
        let base = update_base(&tx, bot_id, &stored.config, true)?;
        let (new, secrets) =
            config::apply_update(&base, fields).map_err(|fields| reply::invalid_fields(&fields))?;
        let applies = names_market(fields) || market_differs(&stored.config, &new);
        check_market(ctx, &tx, &new, applies)?;
        let relinks = extra
            .account
            .is_some_and(|a| a != stored.exchange_account_id);
        if changes_market(&stored.config, &new, &secrets) || relinks {
            return Err(reply::json(
                409,
                &json!({"success": false, "status": row.status,
                        "error": "Stop the bot before changing its exchange, symbol, side or \
                                  credentials"}),
            )
            .into());
        }
        bot_config::save_pending(&tx, bot_id, Some(&new))?;
        tx.commit()?;
        let mut shown = config::settings_json(&new);
        shown["api_key"] = stored.to_json()["api_key"].clone();
        shown["has_api_secret"] = json!(stored.has_api_secret);
        shown["has_telegram_token"] = json!(stored.has_telegram_token);
        shown["pending"] = json!(true);
        return Ok(reply::json(200, &shown));
    }
    let base = update_base(&tx, bot_id, &stored.config, false)?;
    let (new, secrets) =
        config::apply_update(&base, fields).map_err(|fields| reply::invalid_fields(&fields))?;
    let applies = names_market(fields) || market_differs(&stored.config, &new);
    check_market(ctx, &tx, &new, applies)?;
    let account = match extra.account {
        Some(chosen) => chosen_account(&tx, uid, &new, chosen)?,
        None => bot_keys::account_for(&tx, bot, &new, stored.exchange_account_id)?,
    };
    bot_keys::check(&new, &secrets, account)?;
    refuse_keys_in_use(&tx, uid, account, &secrets)?;
    bot_config::save(&tx, bot_id, &new)?;
    bot_keys::store(&tx, bot, &new, account, &key, secrets, checked.as_ref())?;
    if extra.account == Some(None) {
        user_bots::set_account(&tx, uid, bot_id, None)?;
    }
    // A change made while stopped replaces anything still pending.
    bot_config::save_pending(&tx, bot_id, None)?;
    let shown = shown(&tx, bot_id)?;
    tx.commit()?;
    Ok(reply::json(200, &shown))
}

/// The configuration an update of bot `bot_id` applies its fields to: while the
/// bot is `running`, what is already pending, so two changes in one cycle add up;
/// when stopped, the stored one (a save then replaces anything pending). The
/// preview builds on the same.
pub(super) fn update_base(
    conn: &Conn,
    bot_id: i64,
    stored: &BotConfig,
    running: bool,
) -> Result<BotConfig, StoreError> {
    if !running {
        return Ok(stored.clone());
    }
    Ok(bot_config::load_pending(conn, bot_id)?.unwrap_or_else(|| stored.clone()))
}

/// The exchange's check of the keys in `fields` (`bot_keys::precheck`), asked
/// before the write transaction so that no lock is held while the exchange
/// answers; `None` without keys (or with input the transaction refuses anyway).
fn precheck_keys(
    ctx: &Ctx<'_, '_>,
    conn: &Conn,
    bot_id: i64,
    fields: &Map<String, Value>,
    extra: &BotFields,
    key: &SecretKey,
) -> Result<Option<exchange_accounts::KeyCheck>, ApiError> {
    let Some(stored) = bot_config::load(conn, bot_id)? else {
        return Ok(None);
    };
    // A running bot's keys are refused in the transaction (409): no exchange call.
    if bots::get(conn, bot_id)?.is_some_and(|row| row.status.is_active()) {
        return Ok(None);
    }
    let Ok((new, secrets)) = config::apply_update(&stored.config, fields) else {
        return Ok(None);
    };
    let account = match extra.account {
        Some(chosen) => chosen,
        None => bot_keys::account_for(conn, stored.bot, &new, stored.exchange_account_id)?,
    };
    // Nor for keys of an account another bot trades with (`refuse_keys_in_use`).
    if let Some(id) = account {
        if exchange_accounts::active_bot(conn, stored.bot.user_id, id)?.is_some() {
            return Ok(None);
        }
    }
    let on = super::key_check::Checker {
        settings: &ctx.config.exchanges,
        log: ctx.log,
    };
    bot_keys::precheck(conn, on, stored.bot, &new, account, key, &secrets)
}

/// New keys for `account` while another of the user's bots trades with it → 409
/// (that bot's status), as for a running bot's own keys: a running bot keeps the
/// keys it started with, and after a restart would trade with the new ones —
/// maybe on another exchange account than its cycle's. Checked in the write
/// transaction: a start writes `starting` before it reads the keys.
fn refuse_keys_in_use(
    conn: &Conn,
    uid: i64,
    account: Option<i64>,
    secrets: &SecretUpdate,
) -> Result<(), ApiError> {
    let Some(account) =
        account.filter(|_| secrets.api_key.is_some() || secrets.api_secret.is_some())
    else {
        return Ok(());
    };
    let Some((other, status)) = exchange_accounts::active_bot(conn, uid, account)? else {
        return Ok(());
    };
    Err(reply::json(
        409,
        &json!({"success": false, "status": status,
                "error": format!("Bot {other} trades with this exchange account's keys; stop it \
                                  before changing them")}),
    )
    .into())
}

/// The account named by `PUT /api/bots/<id>`, checked in the write transaction:
/// one of the user's, on the exchange the bot will have; none for paper.
fn chosen_account(
    conn: &Conn,
    uid: i64,
    new: &BotConfig,
    chosen: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    let problem = match chosen {
        None => return Ok(None),
        Some(_) if new.exchange == "paper" => {
            "must be null: a paper bot trades on your paper account"
        }
        Some(id) => match exchange_accounts::get(conn, uid, id)? {
            Some(a) if a.exchange == new.exchange => return Ok(Some(id)),
            Some(_) => "is on another exchange than the bot",
            None => "is not one of your exchange accounts",
        },
    };
    let fields = std::collections::BTreeMap::from([("exchange_account_id", problem)]);
    Err(reply::invalid_fields(&fields).into())
}

fn secret_key(ctx: &Ctx<'_, '_>) -> Result<SecretKey, ApiError> {
    ctx.secret_key().map_err(|e| {
        slog::error!(ctx.log, "no secret key for sealing credentials"; "error" => %e);
        reply::error(500, "Internal server error").into()
    })
}
