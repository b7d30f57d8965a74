//! Admin bot views and force operations (docs/http-api.md, Admin).

use serde_json::{json, Map, Value};

use super::bot::{self, command};
use super::ApiResult;
use crate::bots::status::BotStatus;
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::http::reply;
use crate::runner::protocol::{Actor, Op};
use crate::store::{self, admin, cluster, users};

fn uptime(status: BotStatus, started_at: Option<i64>) -> i64 {
    match (status.is_active(), started_at) {
        (true, Some(t)) => (store::now() - t).max(0),
        _ => 0,
    }
}

/// `GET /admin/simple/status`: every user with their default bot, every bot,
/// and the totals (of bots).
pub fn overview(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let conn = ctx.db.conn()?;
    let (rows, all, holders) = store::read(&conn, |c| {
        let now = cluster::db_now_ms(c)?;
        let holders = cluster::holders(c, now)?;
        Ok::<_, super::ApiError>((admin::managed(c)?, admin::bots(c)?, holders))
    })?;
    let mut users = Map::new();
    for u in &rows {
        users.insert(
            u.id.to_string(),
            json!({"email": u.email, "running": u.status == BotStatus::Running,
                   "status": u.status, "uptime": uptime(u.status, u.started_at),
                   "exchange": u.exchange, "symbol": u.symbol}),
        );
    }
    let mut bots = Map::new();
    let mut running = 0;
    for b in &all {
        let is_running = b.status == BotStatus::Running;
        running += usize::from(is_running);
        bots.insert(
            b.id.to_string(),
            json!({"user_id": b.user_id, "running": is_running, "status": b.status,
                   "exchange": b.exchange, "symbol": b.symbol, "side": b.side,
                   "instance": holders.get(&b.user_id)}),
        );
    }
    let timestamp = crate::log::rfc3339_now();
    Ok(reply::json(
        200,
        &json!({"users": users, "bots": bots, "totals": {"total_managed": all.len(),
                "total_running": running, "timestamp": timestamp}}),
    ))
}

/// `GET /api/admin/users?query=&limit=&offset=`.
pub fn list(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let q = ctx.req.query;
    let query = input::query_param(q, "query").unwrap_or_default();
    let limit = input::query_number(q, "limit", 1, 500, 50)?;
    let offset = input::query_number(q, "offset", 0, i64::from(u32::MAX), 0)?;
    let conn = ctx.db.conn()?;
    let (rows, total) = admin::search(&conn, query.trim(), limit as u32, offset as u32)?;
    let users: Vec<Value> = rows.iter().map(user_row_json).collect();
    Ok(reply::json(
        200,
        &json!({"users": users, "total": total, "limit": limit, "offset": offset}),
    ))
}

/// One user as the admin list shows them: their default bot's state and the PnL
/// of all their bots (also the head of `GET /api/admin/users/<id>`).
pub fn user_row_json(u: &admin::UserBot) -> Value {
    json!({"id": u.id, "email": u.email, "is_admin": u.is_admin,
           "disabled": u.disabled, "verified": u.verified, "created_at": u.created_at,
           "bot": {"status": u.status, "running": u.status == BotStatus::Running,
                   "uptime": uptime(u.status, u.started_at), "exchange": u.exchange,
                   "symbol": u.symbol, "cycle": u.cycle.max(1)},
           "pnl_total": crate::money::json(crate::money::pnl(u.pnl_total)),
           "trades": u.trades})
}

fn target(ctx: &mut Ctx<'_, '_>) -> Result<i64, super::ApiError> {
    let id = ctx.params.get("id").and_then(|s| s.parse::<i64>().ok());
    let conn = ctx.db.conn()?;
    match id {
        Some(id) if users::by_id(&conn, id)?.is_some() => Ok(id),
        _ => Err(reply::error(404, "User not found").into()),
    }
}

/// A force operation on the user's default bot.
fn force(ctx: &mut Ctx<'_, '_>, op: Op) -> ApiResult {
    let uid = target(ctx)?;
    let actor = Actor::Admin(ctx.identity.user_id().unwrap_or_default());
    command(ctx, uid, bot::DEFAULT_BOT, op, actor)
}

pub fn start(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    force(ctx, Op::Start)
}

pub fn stop(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    force(ctx, Op::Stop)
}

pub fn recover(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    force(ctx, Op::Recover)
}

/// `GET /api/admin/users/<id>/bot/status`: the user's default bot's status
/// object.
pub fn status(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = target(ctx)?;
    let conn = ctx.db.conn()?;
    let body = store::read(&conn, |c| {
        let default = bot::default_bot(c, uid)?;
        bot::status_json(c, default.bot_id)
    })?;
    Ok(reply::json(200, &body))
}
