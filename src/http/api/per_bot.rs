//! `/api/bots/<id>/…` (CONTRACT C14; docs/http-api.md, Several bots): the
//! commands, status, configuration, orders, events, trades and PnL of one of the
//! caller's bots, answered by the same code as their `/api/bot/*`, `/api/trades`
//! and `/api/pnl/summary` counterparts with the bot named by the path.
//!
//! Invariant: the bot is resolved (`owned::bot`) before anything else is read —
//! body, query, runner — so another user's bot is the same 404 as none. The rate
//! limits and the operation guard are the user's, across all their bots (the
//! routing table gives these routes the groups of their `/api/bot/*` twins).

use super::bot::{self, command};
use super::owned;
use super::{bot_config, pnl, ApiResult};
use crate::http::ctx::Ctx;
use crate::http::reply;
use crate::runner::protocol::{Actor, Op};
use crate::store::trades::Scope;
use crate::store::{self, bot_status};

fn run(ctx: &mut Ctx<'_, '_>, op: Op) -> ApiResult {
    let b = owned::bot(ctx)?;
    command(ctx, b.user_id, b.id, op, Actor::User)
}

/// `POST /api/bots/<id>/start`.
pub fn start(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    run(ctx, Op::Start)
}

/// `POST /api/bots/<id>/stop` with the optional `{"mode"}` of `/api/bot/stop`.
pub fn stop(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    run(ctx, Op::Stop)
}

/// `POST /api/bots/<id>/recover`.
pub fn recover(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    run(ctx, Op::Recover)
}

/// `GET /api/bots/<id>/status`: the status object of `/api/bot/status`.
pub fn status(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = owned::caller(ctx)?;
    let id = owned::path_id(ctx, "id")?;
    let conn = ctx.db.conn()?;
    // One read transaction, as for `/api/bot/status`; the ownership check is the
    // status query's own `WHERE` (another user's bot reads as none).
    let body = store::read(&conn, |c| {
        let b = bot_status::owned(c, uid, id)?.ok_or_else(owned::not_found)?;
        bot::status_with_prices(ctx, c, &b)
    })?;
    Ok(reply::json(200, &body))
}

/// `GET /api/bots/<id>/config`.
pub fn config(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    bot_config::get_of(ctx, b.id)
}

/// `PUT /api/bots/<id>/config` (partial), as `PUT /api/bot/config`.
pub fn put_config(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    bot_config::put_of(ctx, b.user_id, b.id)
}

/// `GET /api/bots/<id>/orders`.
pub fn orders(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    bot::orders_of(ctx, b.user_id, b.id)
}

/// `GET /api/bots/<id>/events?limit=N&before=ID`.
pub fn events(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    bot::events_of(ctx, b.id)
}

/// `GET /api/bots/<id>/trades?limit=N&before=ID`: `/api/trades?bot_id=<id>`.
pub fn trades(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    pnl::trades_of(ctx, b.user_id, Some(b.id))
}

/// `GET /api/bots/<id>/pnl/summary?days=N&tz=…`: `/api/pnl/summary?bot_id=<id>`.
pub fn pnl_summary(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let b = owned::bot(ctx)?;
    let scope = Scope {
        user: Some(b.user_id),
        bot: Some(b.id),
    };
    pnl::summarise(ctx, scope)
}
