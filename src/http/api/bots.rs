//! `/api/bots` and `/api/bots/<id>` (CONTRACT C14; docs/http-api.md, Several
//! bots): a user's bots listed, created within `BOTS_PER_USER`, read, updated in
//! part and deleted.
//!
//! The bot object is the configuration of `GET /api/bots/<id>/config` (the shape
//! of `GET /api/bot/config`, `pending` included) plus `id`, `name`, `default`,
//! `exchange_account_id`, `status`, `running`, `cycle` and `last_error`.
//!
//! Invariants:
//! - a new bot's settings are validated by the code that validates
//!   `PUT /api/bot/config` (`config::apply_update` and the catalogue's rule), from
//!   a new user's working configuration; its exchange account is one of the
//!   caller's on the bot's exchange, and a paper bot has none;
//! - the default bot (the first, which `/api/bot/*` acts on) is never deleted, nor
//!   a bot that runs or whose stopped cycle still holds a position or orders;
//! - a delete takes the user's operation guard, so it cannot interleave with a
//!   start of the same bot.

use crate::store::sql::Conn;
use blitz_worker::Response;
use serde_json::{json, Map, Value};

use super::bot::with_user_guard;
use super::owned::{self, caller};
use super::{bot_config, ApiError, ApiResult};
use crate::bots::config::{self, BotConfig};
use crate::bots::status::BotStatus;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors, JsonInput};
use crate::http::reply;
use crate::store::bot_config as stored_config;
use crate::store::exchange_accounts;
use crate::store::user_bots::{self, BotInfo, Created, Deleted, NewBot};
use crate::store::{self, bots};

/// Fields of the bot object a client may send back unchanged: they are ignored.
const READ_ONLY: [&str; 6] = ["id", "default", "status", "running", "cycle", "last_error"];

/// Secrets of `PUT /api/bot/config` that are not a bot's own: the key pair lives
/// on an exchange account, the Telegram token is the user's. Their masked or empty
/// form (a bot object sent back) is ignored; a value is refused by name.
const NOT_A_BOTS: [(&str, &str); 3] = [
    ("api_key", KEYS_ELSEWHERE),
    ("api_secret", KEYS_ELSEWHERE),
    (
        "telegram_token",
        "is the user's, for all bots: set it with PUT /api/bot/config",
    ),
];
const KEYS_ELSEWHERE: &str = "set keys on an exchange account (POST /api/exchange-accounts)";

/// The bot object of `info` (see the module doc).
pub fn bot_json(conn: &Conn, info: &BotInfo, is_default: bool) -> Result<Value, ApiError> {
    let (Some(mut shown), Some(row)) =
        (bot_config::shown(conn, info.id)?, bots::get(conn, info.id)?)
    else {
        return Err(owned::not_found());
    };
    let fields = [
        ("id", json!(info.id)),
        ("name", json!(info.name)),
        ("default", json!(is_default)),
        ("exchange_account_id", json!(info.exchange_account_id)),
        ("status", json!(row.status)),
        ("running", json!(row.status == BotStatus::Running)),
        ("cycle", json!(row.cycle.max(1))),
        ("last_error", json!(row.last_error)),
    ];
    for (k, v) in fields {
        shown[k] = v;
    }
    Ok(shown)
}

/// Bot `info` of user `uid` as the API shows it, saying whether it is the default.
fn shown(conn: &Conn, uid: i64, info: &BotInfo) -> Result<Value, ApiError> {
    let default = user_bots::default_of(conn, uid)?;
    bot_json(conn, info, default == Some(info.id))
}

/// `GET /api/bots`: the caller's bots by id, the default one first.
pub fn list(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let conn = ctx.db.conn()?;
    let bots = store::read(&conn, |c| {
        let list = user_bots::list(c, uid)?;
        let default = list.first().map(|b| b.id);
        list.iter()
            .map(|b| bot_json(c, b, Some(b.id) == default))
            .collect::<Result<Vec<Value>, ApiError>>()
    })?;
    Ok(reply::json(200, &json!({"bots": bots})))
}

/// `GET /api/bots/<id>`.
pub fn get(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    let conn = ctx.db.conn()?;
    Ok(reply::json(200, &shown(&conn, b.user_id, &b)?))
}

/// `exchange_account_id` as sent: absent (`None`), `null` (`Some(None)`) or an id.
fn account_field(body: &JsonInput, errors: &mut FieldErrors) -> Option<Option<i64>> {
    match body.fields().get("exchange_account_id")? {
        Value::Null => Some(None),
        v => match v.as_i64().filter(|id| *id > 0) {
            Some(id) => Some(Some(id)),
            None => {
                errors.add(
                    "exchange_account_id",
                    "must be an exchange account's id or null",
                );
                None
            }
        },
    }
}

/// Checks that the caller's account `account` may serve a bot on `exchange`.
fn check_account(
    conn: &Conn,
    uid: i64,
    exchange: &str,
    account: Option<i64>,
    errors: &mut FieldErrors,
) -> Result<(), ApiError> {
    const FIELD: &str = "exchange_account_id";
    match account {
        None if exchange != "paper" => errors.add(
            FIELD,
            format!("is required for a {exchange} bot: the id of one of your {exchange} exchange accounts"),
        ),
        None => {}
        Some(_) if exchange == "paper" => {
            errors.add(FIELD, "must be null: a paper bot trades on your paper account")
        }
        Some(id) => match exchange_accounts::get(conn, uid, id)? {
            None => errors.add(FIELD, "is not one of your exchange accounts"),
            Some(a) if a.exchange != exchange => errors.add(
                FIELD,
                format!("is a {} account; the bot trades on {exchange}", a.exchange),
            ),
            Some(_) => {}
        },
    }
    Ok(())
}

/// The body's bot settings: everything but the name, the account and the
/// read-only fields, with secrets that are not a bot's refused by name.
fn settings(body: &JsonInput, errors: &mut FieldErrors) -> Map<String, Value> {
    let mut rest = body.fields().clone();
    for field in READ_ONLY.iter().chain(&["name", "exchange_account_id"]) {
        rest.remove(*field);
    }
    for (field, why) in NOT_A_BOTS {
        if !matches!(config::secret_value(rest.remove(field).as_ref()), Ok(None)) {
            errors.add(field, why);
        }
    }
    rest
}

/// The user's Telegram chat (the same for all their bots), as their default bot's
/// configuration shows it.
fn user_chat(conn: &Conn, uid: i64) -> Result<Option<String>, ApiError> {
    let Some(default) = user_bots::default_of(conn, uid)? else {
        return Ok(None);
    };
    Ok(stored_config::load(conn, default)?.and_then(|s| s.config.telegram_chat_id))
}

/// Adds `problems` (field → message) to `errors`.
fn add_all(errors: &mut FieldErrors, problems: config::Problems) {
    for (field, msg) in problems {
        errors.add(&field, msg);
    }
}

/// `POST /api/bots` → 201 with the bot; 409 `limit_reached` beyond
/// `BOTS_PER_USER`.
pub fn create(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let name = body.label("name", true, &mut errors);
    let account = account_field(&body, &mut errors).flatten();
    let fields = settings(&body, &mut errors);
    let conn = ctx.db.conn()?;
    // A new user's working configuration, with the user's chat: a bot object sent
    // back as a new bot keeps it; another chat would change every bot's.
    let base = BotConfig {
        telegram_chat_id: user_chat(&conn, uid)?,
        ..BotConfig::default()
    };
    let new = match config::apply_update(&base, &fields) {
        Ok((new, _)) if new.telegram_chat_id != base.telegram_chat_id => {
            errors.add(
                "telegram_chat_id",
                "is the user's, for all bots: set it with PUT /api/bot/config",
            );
            None
        }
        Ok((new, _)) => Some(new),
        Err(problems) => {
            add_all(&mut errors, problems);
            None
        }
    };
    if let Some(new) = &new {
        check_account(&conn, uid, &new.exchange, account, &mut errors)?;
    }
    errors.finish()?;
    let (Some(name), Some(new)) = (name, new) else {
        return Err(reply::error(400, "Invalid input").into());
    };
    drop(conn);
    bot_config::check_new(ctx, &new)?;
    let conn = ctx.db.conn()?;
    let bot = NewBot {
        name: &name,
        config: &new,
        exchange_account_id: account,
    };
    let limit = ctx.config.bots_per_user;
    let refused = |msg: &str| {
        let fields = std::collections::BTreeMap::from([("exchange_account_id", msg)]);
        Ok(reply::invalid_fields(&fields))
    };
    match user_bots::create(&conn, uid, &bot, limit, store::now())? {
        Created::Bot(id) => {
            let info = user_bots::get(&conn, uid, id)?.ok_or_else(owned::not_found)?;
            Ok(reply::json(201, &shown(&conn, uid, &info)?))
        }
        Created::LimitReached => Ok(reply::json(
            409,
            &json!({"success": false, "status": "limit_reached",
                    "message": format!("At most {limit} bots per user; delete one first")}),
        )),
        // The account went or changed since the check above.
        Created::NoSuchAccount => refused("is not one of your exchange accounts"),
        Created::WrongExchange => refused("is on another exchange than the bot"),
    }
}

/// `PUT /api/bots/<id>` (partial): `name`, `exchange_account_id` and the bot's
/// settings (the fields of `PUT /api/bots/<id>/config` but the secrets, as for
/// `POST /api/bots`), all applied or none. The configuration follows
/// the rules of `PUT /api/bot/config` (pending while the bot runs; its market and
/// credentials, the account included, only while it is stopped).
pub fn update(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let name = body.label("name", false, &mut errors);
    let account = account_field(&body, &mut errors);
    let fields = settings(&body, &mut errors);
    {
        let conn = ctx.db.conn()?;
        // Every problem named at once: the settings' against the stored ones, the
        // account's against the exchange the bot will have.
        let stored = stored_config::load(&conn, b.id)?.ok_or_else(owned::not_found)?;
        let exchange = match config::apply_update(&stored.config, &fields) {
            Ok((new, _)) => Some(new.exchange),
            Err(problems) => {
                add_all(&mut errors, problems);
                None
            }
        };
        if let (Some(Some(id)), Some(exchange)) = (account, &exchange) {
            check_account(&conn, b.user_id, exchange, Some(id), &mut errors)?;
        }
    }
    errors.finish()?;
    let extra = bot_config::BotFields { name, account };
    bot_config::update(ctx, b.user_id, b.id, &fields, &extra)?;
    let conn = ctx.db.conn()?;
    let info = owned::bot_of(&conn, b.user_id, b.id)?;
    Ok(reply::json(200, &shown(&conn, b.user_id, &info)?))
}

/// `DELETE /api/bots/<id>` → 200 `{"success":true}`; 409 `default_bot`,
/// `running` or `position_open`.
pub fn delete(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    let conn = ctx.db.conn()?;
    if user_bots::default_of(&conn, b.user_id)? == Some(b.id) {
        return Ok(refusal(
            "default_bot",
            "The default bot cannot be deleted: the /api/bot/* endpoints act on it",
        ));
    }
    with_user_guard(ctx, b.user_id, |ctx| match deleted(&conn, &b) {
        Ok(resp) => resp,
        Err(e) => super::respond(Err(e), ctx.log),
    })
}

fn deleted(conn: &Conn, b: &BotInfo) -> ApiResult {
    Ok(match user_bots::delete(conn, b.user_id, b.id)? {
        Deleted::Done => reply::json(200, &json!({"success": true})),
        Deleted::NotFound => return Err(owned::not_found()),
        Deleted::Active => refusal("running", "Stop the bot before deleting it"),
        Deleted::CycleOpen => refusal(
            "position_open",
            "The bot's cycle still holds a position or resting orders: start the bot and \
             stop it with close_position first",
        ),
    })
}

fn refusal(status: &str, message: &str) -> Response {
    reply::json(
        409,
        &json!({"success": false, "status": status, "message": message}),
    )
}
