//! The user's paper account (docs/http-api.md, Paper account): `GET
//! /api/paper/account` reads it from the database; `POST /api/paper/account/reset`
//! asks the bot runner, which owns the paper exchange, to put it back to its start
//! (in a cluster, the runner that drives the user's account, wherever it arrives).

use serde_json::{json, Value};

use super::bot::{paper_error, user_id};
use super::ApiResult;
use crate::bots::ladder::Side;
use crate::exchange::paper::snapshot;
use crate::http::ctx::Ctx;
use crate::http::reply;
use crate::runner::client::RpcError;
use crate::runner::protocol::{PaperOp, PaperReply, PaperRequest};

/// `GET /api/paper/account`.
pub fn account(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let conn = ctx.db.conn()?;
    let view = snapshot::read(&conn, uid).map_err(paper_error)?;
    Ok(reply::json(200, &view.to_json()))
}

/// `POST /api/paper/account/reset`: 409 `bot_running` while the user's bot is
/// active, 409 `position_open` while its cycle still holds a position. It takes
/// the per-user operation guard like the bot commands, so it never runs beside a
/// start or stop of the same user's bot.
pub fn reset(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    super::bot::with_user_guard(ctx, uid, |ctx| {
        let (code, body) = ask_runner(ctx, uid);
        reply::json(code, &body)
    })
}

/// Sends the reset to the bot runner and turns its reply into the answer.
fn ask_runner(ctx: &Ctx<'_, '_>, uid: i64) -> (u16, Value) {
    let req = PaperRequest {
        op: PaperOp::ResetAccount,
        user_id: uid,
        symbol: String::new(),
        side: Side::Long,
    };
    let refused = |status: &str, message: String| {
        (
            409,
            json!({"success": false, "status": status, "message": message}),
        )
    };
    match super::bot::ask_runner::<_, PaperReply>(ctx, &req) {
        Ok(r) if r.done => (200, json!({"success": true, "message": r.message})),
        Ok(r) if r.bot_active => refused("bot_running", r.message),
        Ok(r) if r.position_open => refused("position_open", r.message),
        Ok(r) => (
            502,
            json!({"success": false, "status": "error", "message": r.message}),
        ),
        Err(RpcError::Timeout) => (
            504,
            json!({"success": false, "status": "timeout",
                   "message": "The bot runner is still working on it; check the account shortly"}),
        ),
        Err(e) => {
            slog::error!(ctx.log, "bot runner unreachable"; "error" => %e);
            (
                503,
                json!({"success": false, "status": "unavailable",
                       "message": "The bot runner is not available; try again shortly"}),
            )
        }
    }
}
