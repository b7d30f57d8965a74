//! `GET /api/trades` and `GET /api/pnl/summary` over all of the user's bots (or
//! one, `?bot_id=N`), and the admin summary.

use serde_json::json;

use super::ApiResult;
use crate::bots::pnl;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::money;
use crate::store::trades::{self, Scope};
use crate::store::user_bots;

/// The `bot_id` query parameter: one of the user's bots, 404 for anyone else's
/// (or none), `None` without it.
pub fn bot_filter(ctx: &mut Ctx<'_, '_>, uid: i64) -> Result<Option<i64>, super::ApiError> {
    let Some(raw) = input::query_param(ctx.req.query, "bot_id").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let conn = ctx.db.conn()?;
    match raw.parse::<i64>() {
        Ok(id) if user_bots::get(&conn, uid, id)?.is_some() => Ok(Some(id)),
        _ => Err(reply::error(404, "Not found").into()),
    }
}

pub fn list(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let bot = bot_filter(ctx, uid)?;
    trades_of(ctx, uid, bot)
}

/// User `uid`'s trades (of bot `bot` only, when given) as `GET /api/trades`
/// shows them, `?limit=N&before=ID`.
pub fn trades_of(ctx: &mut Ctx<'_, '_>, uid: i64, bot: Option<i64>) -> ApiResult {
    let q = ctx.req.query;
    let limit = input::query_number(q, "limit", 1, 500, 50)?;
    let before = input::query_number(q, "before", 1, i64::MAX, i64::MAX)?;
    let conn = ctx.db.conn()?;
    let rows = trades::list(&conn, uid, bot, limit as u32, Some(before))?;
    let shown: Vec<_> = rows
        .iter()
        .map(|t| {
            json!({"id": t.id, "bot_id": t.bot_id, "symbol": t.symbol, "side": t.side,
                   "size": money::json(t.size), "avg_entry": money::json(t.avg_entry),
                   "exit_price": money::json(t.exit_price), "pnl": money::json(t.pnl),
                   "fees": money::json(t.fees), "opened_at": t.opened_at,
                   "closed_at": t.closed_at, "cycle": t.cycle,
                   "close_reason": t.close_reason, "funding": money::json(t.funding)})
        })
        .collect();
    Ok(reply::json(200, &json!({"trades": shown})))
}

pub fn summary(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let bot = bot_filter(ctx, uid)?;
    summarise(
        ctx,
        Scope {
            user: Some(uid),
            bot,
        },
    )
}

/// `GET /api/admin/pnl/summary?user_id=`: one user, or everyone without it.
pub fn admin_summary(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = match input::query_param(ctx.req.query, "user_id").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                let mut e = FieldErrors::default();
                e.add("user_id", "must be a user id");
                e.finish()?;
                None
            }
        },
    };
    summarise(
        ctx,
        Scope {
            user: uid,
            bot: None,
        },
    )
}

/// The PnL summary of the trades in `scope` (C4.5's shape), `?days=N&tz=…`.
pub fn summarise(ctx: &mut Ctx<'_, '_>, scope: Scope) -> ApiResult {
    let q = ctx.req.query;
    let days = input::query_number(q, "days", 1, 3660, 30)? as u32;
    let tz = input::query_param(q, "tz").unwrap_or_else(|| "UTC".into());
    let window = match pnl::window(&tz, days, jiff::Timestamp::now()) {
        Ok(w) => w,
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.add(
                if e == pnl::PnlError::UnknownZone {
                    "tz"
                } else {
                    "days"
                },
                e.to_string(),
            );
            errors.finish()?;
            return Ok(reply::error(400, "Invalid input"));
        }
    };
    let conn = ctx.db.conn()?;
    let rows = trades::closed_since(&conn, scope, window.since)?;
    Ok(reply::json(200, &window.summarise(&rows)))
}
