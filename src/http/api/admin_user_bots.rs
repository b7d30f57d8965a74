//! Admin views and force operations per bot (CONTRACT C14; docs/http-api.md,
//! Admin): `GET /api/admin/users/<id>` (the user's row of the admin list, and
//! their bots) and `POST /api/admin/bots/<id>/start|stop|recover`.
//!
//! A force operation is the user's own command with the admin as actor: the
//! same outcomes (C4.4), recorded in the bot's events as `admin:<id>`, not rate
//! limited, but still under the owner's operation guard (one operation per user
//! at a time, across all their bots).

use serde_json::{json, Value};

use super::admin_bots::user_row_json;
use super::bot::command;
use super::bots::bot_json;
use super::owned;
use super::{ApiError, ApiResult};
use crate::http::ctx::Ctx;
use crate::http::reply;
use crate::runner::protocol::{Actor, Op};
use crate::store::{admin, user_bots};

fn user_not_found() -> ApiError {
    reply::error(404, "User not found").into()
}

/// `GET /api/admin/users/<id>`: the row `GET /api/admin/users` shows for the
/// user, plus `bots`, every bot of theirs as `GET /api/bots` shows it.
pub fn user(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let id = owned::path_id(ctx, "id").map_err(|_| user_not_found())?;
    let conn = ctx.db.conn()?;
    let Some(row) = admin::user(&conn, id)? else {
        return Err(user_not_found());
    };
    let list = user_bots::list(&conn, id)?;
    let default = list.first().map(|b| b.id);
    let bots = list
        .iter()
        .map(|b| bot_json(&conn, b, Some(b.id) == default))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    let mut shown = user_row_json(&row);
    shown["bots"] = json!(bots);
    Ok(reply::json(200, &shown))
}

/// Runs `op` on bot `<id>` for its owner, as the calling admin; 404 `Bot not
/// found` (as the user routes say `User not found`) for no such bot.
fn force(ctx: &mut Ctx<'_, '_>, op: Op) -> ApiResult {
    let not_found = || ApiError::from(reply::error(404, "Bot not found"));
    let id = owned::path_id(ctx, "id").map_err(|_| not_found())?;
    let bot = user_bots::by_id(&*ctx.db.conn()?, id)?.ok_or_else(not_found)?;
    let actor = Actor::Admin(owned::caller(ctx)?);
    command(ctx, bot.user_id, bot.id, op, actor)
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
