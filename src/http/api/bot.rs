//! Bot control: start / stop / recover go to the bot runner and answer with
//! its real outcome; status and events are read from the database, which every
//! worker sees alike. The `/api/bot/*` routes act on the user's default bot
//! (their first); the helpers here take a bot id for the per-bot routes.
//! See docs/http-api.md, Bot control.

use blitz_worker::Response;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{ApiError, ApiResult};
use crate::bots::config::{self, side_name};
use crate::bots::ids::BotRef;
use crate::bots::ladder;
use crate::bots::status::{BotStatus, StopMode};
use crate::coord::Backend;
use crate::exchange::paper::replay::PaperPrices;
use crate::exchange::paper::{snapshot, PaperError};
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::metrics;
use crate::money;
use crate::runner::client::{RpcError, REPLY_TIMEOUT};
use crate::runner::protocol::{Actor, Op, OpResult, Outcome, Redirect, Request};
use crate::runner::route;
use crate::store::bot_status::{self, BotStatusRow};
use crate::store::{self, bots, trades, user_bots};

pub(super) fn user_id(ctx: &Ctx<'_, '_>) -> Result<i64, ApiError> {
    ctx.identity
        .user_id()
        .ok_or_else(|| reply::error(401, "Authentication required").into())
}

/// Bot id 0 in a runner request: the user's default bot.
pub const DEFAULT_BOT: i64 = 0;

pub fn start(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    command(ctx, uid, DEFAULT_BOT, Op::Start, Actor::User)
}

pub fn stop(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    command(ctx, uid, DEFAULT_BOT, Op::Stop, Actor::User)
}

pub fn recover(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    command(ctx, uid, DEFAULT_BOT, Op::Recover, Actor::User)
}

/// User `uid`'s default bot, or the API's 404 when they have none.
pub fn default_bot(conn: &crate::store::Conn, uid: i64) -> Result<BotRef, ApiError> {
    match user_bots::default_of(conn, uid)? {
        Some(bot_id) => Ok(BotRef {
            user_id: uid,
            bot_id,
        }),
        None => Err(reply::error(404, "Not found").into()),
    }
}

/// The optional stop mode of the body, default `cancel_orders`.
fn stop_mode(ctx: &Ctx<'_, '_>) -> Result<Option<StopMode>, Response> {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let mode = match body.opt_string("mode", &mut errors).map(|m| m.parse()) {
        Some(Ok(mode)) => Some(mode),
        Some(Err(_)) => {
            errors.add(
                "mode",
                "must be keep, cancel_orders, close_position or after_cycle",
            );
            None
        }
        None => None,
    };
    errors.finish()?;
    Ok(mode)
}

/// Runs `op` on bot `bot_id` of user `uid` (`DEFAULT_BOT`: their default bot)
/// under the user's operation guard (one per user, across all their bots). The
/// runner checks that the bot is the user's (`not_found` → 404).
pub fn command(ctx: &mut Ctx<'_, '_>, uid: i64, bot_id: i64, op: Op, actor: Actor) -> ApiResult {
    let mode = if op == Op::Stop {
        stop_mode(ctx)?
    } else {
        None
    };
    let req = Request {
        op,
        user_id: uid,
        bot_id,
        mode,
        actor,
    };
    with_user_guard(ctx, uid, |ctx| run_command(ctx, op, uid, &req))
}

/// Runs `f` holding `uid`'s operation guard (C6.2): one operation per user at a
/// time, across workers (and instances); 429 while another one holds it.
pub(super) fn with_user_guard(
    ctx: &Ctx<'_, '_>,
    uid: i64,
    f: impl FnOnce(&Ctx<'_, '_>) -> Response,
) -> ApiResult {
    let held = match ctx.coord.acquire_guard(uid) {
        Ok(Some(held)) => Some(held),
        Ok(None) => {
            metrics::guard_conflict();
            let body = json!({"success": false,
                "message": "Bot operation already in progress for this user. Please wait.",
                "retry_after": 30});
            return Ok(reply::json(429, &body).header("Retry-After", "30"));
        }
        // Only if even the local table fails; the runner still serialises per user.
        Err(e) => {
            slog::error!(ctx.log, "cannot take the operation guard"; "error" => %e);
            None
        }
    };
    let resp = f(ctx);
    if let Some(held) = held {
        if let Err(e) = ctx.coord.release_guard(&held) {
            slog::warn!(ctx.log, "cannot release the operation guard; it expires by itself"; "error" => %e);
        }
    }
    Ok(resp)
}

/// Sends the command to the bot runner (in a cluster, the one that drives the
/// user: `route::call`) and turns its outcome into the answer.
fn run_command(ctx: &Ctx<'_, '_>, op: Op, uid: i64, req: &Request) -> Response {
    match ask_runner::<_, OpResult>(ctx, req) {
        Ok(result) => answer(op, uid, &result),
        Err(RpcError::Timeout) => reply::json(
            504,
            &json!({"success": false, "status": "timeout",
                    "message": "The bot runner is still working on it; check the status shortly"}),
        ),
        Err(e) => {
            slog::error!(ctx.log, "bot runner unreachable"; "error" => %e);
            reply::json(
                503,
                &json!({"success": false, "status": "unavailable",
                        "message": "The bot runner is not available; try again shortly"}),
            )
        }
    }
}

/// Sends `req` to the runner that drives the user (C18): this instance's, or
/// through Redis the one its refusal names, whose real outcome is the answer.
pub(super) fn ask_runner<Q: Serialize, A: DeserializeOwned + Redirect>(
    ctx: &Ctx<'_, '_>,
    req: &Q,
) -> Result<A, RpcError> {
    let socket = crate::runner::socket_path(ctx.config);
    let here = ctx
        .config
        .redis_url
        .as_deref()
        .map(|redis_url| route::Here {
            redis_url,
            instance: Some(ctx.config.instance_name.as_str()),
        });
    route::call(&socket, here, req, REPLY_TIMEOUT, ctx.log)
}

/// The HTTP status of an outcome.
fn http_code(outcome: Outcome) -> u16 {
    match outcome {
        Outcome::Started
        | Outcome::Stopped
        | Outcome::Recovered
        | Outcome::StoppingAfterCycle
        | Outcome::Listed => 200,
        Outcome::AlreadyRunning | Outcome::NotRunning | Outcome::Conflict => 409,
        Outcome::NotFound => 404,
        Outcome::InvalidConfig | Outcome::MissingCredentials => 400,
        Outcome::Error => 502,
    }
}

/// The answer to an operation: its outcome's HTTP status, and the outcome's word
/// as the body's `status`.
fn answer(op: Op, uid: i64, r: &OpResult) -> Response {
    let (code, status) = (http_code(r.outcome), r.outcome.as_str());
    metrics::bot_operation(op.as_str(), uid, status);
    let mut body = json!({"success": code == 200, "status": status, "message": r.message});
    if op == Op::Recover && code == 200 {
        body =
            json!({"success": true, "message": "Recovery process completed", "actions": r.actions});
    }
    reply::json(code, &body)
}

/// `GET /api/bot/status`: the default bot's.
pub fn status(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let conn = ctx.db.conn()?;
    // One read transaction for the handful of reads: each implicit one would take
    // and drop SQLite's shared-memory read lock (fcntl calls) again.
    let body = store::read(&conn, |c| {
        let bot = bot_status::default_of(c, uid)?.ok_or_else(not_found)?;
        status_with_prices(ctx, c, &bot)
    })?;
    Ok(reply::json(200, &body))
}

/// The status object of `bot` (see `status_of`), saying whether a running paper
/// bot's live price is stale. Run it inside `store::read`.
pub fn status_with_prices(
    ctx: &Ctx<'_, '_>,
    c: &crate::store::Conn,
    bot: &BotStatusRow,
) -> Result<Value, ApiError> {
    let live = matches!(ctx.config.paper_prices, PaperPrices::Live(_));
    let mut body = status_of(c, bot)?;
    if live && body["exchange"] == "paper" && body["status"] == "running" {
        let symbol = body["symbol"].as_str().unwrap_or_default().to_owned();
        body["price_stale"] = snapshot::market_stale(c, &symbol, store::now_ms())
            .map_err(paper_error)?
            .into();
    }
    Ok(body)
}

/// The status object of bot `bot_id`, whoever owns it (the caller checked; also
/// used by the admin views and pages).
pub fn status_json(conn: &crate::store::Conn, bot_id: i64) -> Result<Value, ApiError> {
    let bot = bot_status::by_id(conn, bot_id)?.ok_or_else(not_found)?;
    status_of(conn, &bot)
}

fn not_found() -> ApiError {
    reply::error(404, "Not found").into()
}

/// The status object of `bot`, read with its market and runner state.
fn status_of(conn: &crate::store::Conn, bot: &BotStatusRow) -> Result<Value, ApiError> {
    let (c, row) = (&bot.market, &bot.state);
    let status = row.status;
    let active = status.is_active();
    let (exchange, symbol, side) = match (active, &row.cycle_symbol) {
        (true, Some(sym)) => (
            row.cycle_exchange
                .clone()
                .unwrap_or_else(|| c.exchange.clone()),
            sym.clone(),
            row.cycle_side
                .clone()
                .unwrap_or_else(|| side_name(c.side).into()),
        ),
        _ => (
            c.exchange.clone(),
            c.symbol.clone(),
            side_name(c.side).into(),
        ),
    };
    let uptime = match (active, row.started_at) {
        (true, Some(t)) => (store::now() - t).max(0),
        _ => 0,
    };
    let has_position = active && row.position_size > rust_decimal::Decimal::ZERO;
    let next_entry_at = cooldown_end(active, row.next_entry_at);
    let position = if row.position_size > rust_decimal::Decimal::ZERO {
        let mark = trades::price(conn, &exchange, &symbol)?;
        let dir = config::parse_side(&side).unwrap_or(c.side);
        let upnl = mark.map(|m| {
            ladder::unrealized_pnl(dir, row.position_size, row.position_avg, m)
                .round_dp_with_strategy(6, money::RoundingStrategy::MidpointAwayFromZero)
        });
        // Only the paper exchange's liquidation price is known here (its formula,
        // the account's leverage); a real exchange's is not stored.
        let liq = if exchange == "paper" {
            snapshot::liquidation_price_of(conn, row.user_id, &symbol, dir, row.position_avg)
                .map_err(paper_error)?
        } else {
            None
        };
        json!({
            "size": money::json(row.position_size),
            "avg_entry": money::json(row.position_avg),
            "unrealized_pnl": money::json_opt(upnl),
            "mark_price": money::json_opt(mark),
            "liquidation_price": money::json_opt(liq),
        })
    } else {
        Value::Null
    };
    let message = match status {
        BotStatus::Running => match &row.last_error {
            Some(e) => format!("Bot is running; the exchange did not answer and the bot is {e}"),
            None if row.after_cycle => {
                "Bot is running; it stops when the current cycle closes".to_string()
            }
            None => "Bot is running".to_string(),
        },
        BotStatus::Starting => "Bot is starting".to_string(),
        BotStatus::Stopping => "Bot is stopping".to_string(),
        BotStatus::Error => format!(
            "Bot stopped with an error: {}",
            row.last_error.as_deref().unwrap_or("unknown")
        ),
        BotStatus::SafetyStop => {
            "Bot stopped by the safety check: an order it did not place appeared".to_string()
        }
        BotStatus::Stopped => "Bot is stopped".to_string(),
    };
    Ok(json!({
        "running": status == BotStatus::Running,
        "status": status,
        "uptime": uptime,
        "message": message,
        "exchange": exchange,
        "symbol": symbol,
        "side": side,
        "cycle": row.cycle.max(1),
        "position": position,
        // A bot that ended with an error or a safety stop may have left orders.
        "open_orders": if status == BotStatus::Stopped { 0 } else { row.open_orders },
        "last_error": row.last_error,
        "take_profit_price": money::json_opt(row.take_profit_price.filter(|_| has_position)),
        "stop_loss_price": money::json_opt(row.stop_loss_price.filter(|_| has_position)),
        "stop_on_exchange": has_position && row.stop_on_exchange,
        "after_cycle": active && row.after_cycle,
        "pending_config": c.has_pending,
        "stop_reason": if active { None } else { row.stop_reason },
        "next_entry_at": next_entry_at,
        // Set by `status` for a running paper bot on live prices.
        "price_stale": false,
    }))
}

/// A failed read of the paper exchange's tables, as the API reports it.
pub(super) fn paper_error(e: PaperError) -> ApiError {
    match e {
        PaperError::Db(db) => db.into(),
        // A corrupt row: nothing the client can do about it.
        _ => reply::error(500, "Internal error").into(),
    }
}

/// The end of a running bot's cooldown, as RFC 3339, while it lasts.
fn cooldown_end(active: bool, at: Option<i64>) -> Value {
    let Some(at) = at.filter(|at| active && *at > store::now()) else {
        return Value::Null;
    };
    jiff::Timestamp::from_second(at).map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// `GET /api/bot/orders`: the default bot's open orders.
pub fn orders(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    orders_of(ctx, uid, DEFAULT_BOT)
}

/// Bot `bot_id`'s (of user `uid`; `DEFAULT_BOT`: their default bot) open orders
/// as the exchange lists them, read by the bot runner (which holds the exchange
/// accounts), running or not.
pub fn orders_of(ctx: &Ctx<'_, '_>, uid: i64, bot_id: i64) -> ApiResult {
    let req = Request {
        op: Op::Orders,
        user_id: uid,
        bot_id,
        mode: None,
        actor: Actor::User,
    };
    Ok(match ask_runner::<_, OpResult>(ctx, &req) {
        Ok(OpResult {
            outcome: Outcome::Listed,
            data: Some(data),
            ..
        }) => reply::json(200, &data),
        Ok(r) if r.outcome == Outcome::NotFound => reply::error(404, "Not found"),
        Ok(r) => reply::json(
            502,
            &json!({"success": false, "status": r.outcome, "error": r.message}),
        ),
        Err(RpcError::Timeout) => reply::json(
            504,
            &json!({"success": false, "status": "timeout",
                    "error": "The exchange did not answer in time; try again shortly"}),
        ),
        Err(e) => {
            slog::error!(ctx.log, "bot runner unreachable"; "error" => %e);
            reply::json(
                503,
                &json!({"success": false, "status": "unavailable",
                        "error": "The bot runner is not available; try again shortly"}),
            )
        }
    })
}

/// `GET /api/bot/events?limit=N&before=ID`: the default bot's.
pub fn events(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let bot = default_bot(&*ctx.db.conn()?, uid)?;
    events_of(ctx, bot.bot_id)
}

/// Bot `bot_id`'s events (the caller checked whose it is), `?limit=N&before=ID`.
pub fn events_of(ctx: &mut Ctx<'_, '_>, bot_id: i64) -> ApiResult {
    let q = ctx.req.query;
    let limit = input::query_number(q, "limit", 1, 500, 50)?;
    let before = input::query_number(q, "before", 1, i64::MAX, i64::MAX)?;
    let conn = ctx.db.conn()?;
    let events = bots::events(&conn, bot_id, limit as u32, Some(before))?;
    Ok(reply::json(200, &json!({"events": events})))
}
