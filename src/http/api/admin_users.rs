//! `PATCH /api/admin/users/<id>`: role, disabled and verified flags.

use serde_json::json;

use super::{ApiError, ApiResult};
use crate::auth::AccountError;
use crate::bots::status::DesiredState;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::runner::protocol::{Actor, Op, OpResult, Request};
use crate::store::{self, sessions, user_bots, users};

pub fn update(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let is_admin = body.opt_bool("is_admin", &mut errors);
    let disabled = body.opt_bool("disabled", &mut errors);
    let verified = body.opt_bool("verified", &mut errors);
    let Some(id) = ctx.params.get("id").and_then(|s| s.parse::<i64>().ok()) else {
        return Err(AccountError::NotFound.into());
    };
    // An admin cannot lock themselves out: another admin must do it.
    if ctx.identity.user_id() == Some(id) {
        if is_admin == Some(false) {
            errors.add("is_admin", "you cannot remove your own admin role");
        }
        if disabled == Some(true) {
            errors.add("disabled", "you cannot disable your own account");
        }
    }
    errors.finish()?;
    let conn = ctx.db.conn()?;
    let tx = conn.transaction_immediate()?;
    if users::by_id(&tx, id)?.is_none() {
        return Err(AccountError::NotFound.into());
    }
    if let Some(v) = is_admin {
        users::set_admin(&tx, id, v)?;
    }
    if let Some(v) = disabled {
        users::set_disabled(&tx, id, v)?;
        // Re-enabling must not bring back sessions from before the disable.
        if v {
            sessions::revoke_others(&tx, id, None, store::now())?;
        }
    }
    if let Some(v) = verified {
        users::set_verified(&tx, id, v, store::now())?;
    }
    let user = users::by_id(&tx, id)?.ok_or(AccountError::NotFound)?;
    tx.commit()?;
    drop(conn);
    if disabled == Some(true) {
        stop_bots(ctx, id);
    }
    Ok(reply::json(
        200,
        &json!({"success": true, "user": {"id": user.id, "email": user.email,
                "is_admin": user.is_admin, "disabled": user.disabled,
                "verified": user.verified}}),
    ))
}

/// A disabled user's bots stop. If the runner cannot be reached now, its
/// periodic sweep stops the bots of a disabled account within seconds.
fn stop_bots(ctx: &mut Ctx<'_, '_>, id: i64) {
    let active: Vec<i64> = match ctx.db.conn().map_err(ApiError::from).and_then(|c| {
        Ok(user_bots::list(&c, id)?
            .into_iter()
            .filter(|b| b.status.is_active() || b.desired_state == DesiredState::Running)
            .map(|b| b.id)
            .collect())
    }) {
        Ok(ids) => ids,
        Err(_) => {
            slog::warn!(ctx.log, "cannot list a disabled user's bots; the runner stops them"; "user_id" => id);
            return;
        }
    };
    for bot_id in active {
        let req = Request {
            op: Op::Stop,
            user_id: id,
            bot_id,
            mode: None,
            actor: Actor::Admin(ctx.identity.user_id().unwrap_or_default()),
        };
        if let Err(e) = super::bot::ask_runner::<_, OpResult>(ctx, &req) {
            slog::warn!(ctx.log, "could not stop a disabled user's bot now; the runner will"; "user_id" => id, "bot_id" => bot_id, "error" => %e);
        }
    }
}
