//! The user's paper account (docs/http-api.md, Paper account): `GET
//! /api/paper/account` reads it from the database; `POST /api/paper/account/reset`
//! asks the bot runner, which owns the paper exchange, to put it back to its start.

use serde_json::json;

use super::bot::{paper_error, user_id};
use super::ApiResult;
use crate::bots::ladder::Side;
use crate::exchange::paper::snapshot;
use crate::http::ctx::Ctx;
use crate::http::reply;
use crate::runner::client::{self, REPLY_TIMEOUT};
use crate::runner::protocol::{PaperOp, PaperReply, PaperRequest};

/// `GET /api/paper/account`.
pub fn account(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let conn = ctx.db.conn()?;
    let view = snapshot::read(&conn, uid).map_err(paper_error)?;
    Ok(reply::json(200, &view.to_json()))
}

/// `POST /api/paper/account/reset`: 409 `bot_running` while the user's bot is
/// active.
pub fn reset(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = user_id(ctx)?;
    let req = PaperRequest {
        op: PaperOp::ResetAccount,
        user_id: uid,
        symbol: String::new(),
        side: Side::Long,
    };
    let socket = crate::runner::socket_path(ctx.config);
    let body = match client::call_as::<_, PaperReply>(&socket, &req, REPLY_TIMEOUT) {
        Ok(r) if r.done => (200, json!({"success": true, "message": r.message})),
        Ok(r) if r.bot_active => (
            409,
            json!({"success": false, "status": "bot_running", "message": r.message}),
        ),
        Ok(r) => (
            502,
            json!({"success": false, "status": "error", "message": r.message}),
        ),
        Err(e) => {
            slog::error!(ctx.log, "bot runner unreachable"; "error" => %e);
            (
                503,
                json!({"success": false, "status": "unavailable",
                       "message": "The bot runner is not available; try again shortly"}),
            )
        }
    };
    Ok(reply::json(body.0, &body.1))
}
