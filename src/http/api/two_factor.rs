//! `/api/auth/2fa/*`: setup, enable, verify (the login's second step) and disable.
//! See docs/http-api.md, Two-factor login.

use std::collections::BTreeMap;

use blitz_worker::Response;
use serde_json::json;

use super::{account_error, ApiError, ApiResult};
use crate::auth::two_factor::{self, TwoFactorError};
use crate::auth::Via;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::secrets::SecretKey;
use crate::store::users::User;

pub fn setup(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let ((user, _), key) = (session_caller(ctx)?, key(ctx)?);
    let e = two_factor::setup(&mut *ctx.db.conn()?, &key, &user).map_err(|e| refusal(ctx, e))?;
    Ok(reply::json(
        200,
        &json!({"secret": e.secret, "otpauth_uri": e.otpauth_uri}),
    ))
}

pub fn enable(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let (user, session) = session_caller(ctx)?;
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let code = body.string("code", &mut errors);
    errors.finish()?;
    let key = key(ctx)?;
    let codes = two_factor::enable(&mut *ctx.db.conn()?, &key, user.id, &code, session)
        .map_err(|e| refusal(ctx, e))?;
    Ok(reply::json(200, &json!({"recovery_codes": codes})))
}

/// The login's second step: anonymous, like `POST /api/auth/login`.
pub fn verify(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let ticket = body.string("ticket", &mut errors);
    let code = body.string("code", &mut errors);
    errors.finish()?;
    let key = key(ctx)?;
    let done = two_factor::verify_login(
        &mut *ctx.db.conn()?,
        ctx.coord,
        &key,
        &ticket,
        &code,
        ctx.client_ip,
    )
    .map_err(|e| refusal(ctx, e))?;
    Ok(super::auth::logged_in(&done, ctx.config.session_secure))
}

pub fn disable(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let (user, _) = session_caller(ctx)?;
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let password = body.string("password", &mut errors);
    let code = body.string("code", &mut errors);
    errors.finish()?;
    let key = key(ctx)?;
    two_factor::disable(
        &mut *ctx.db.conn()?,
        ctx.coord,
        &key,
        &user,
        &password,
        &code,
        ctx.client_ip,
    )
    .map_err(|e| refusal(ctx, e))?;
    Ok(reply::success(200, "Two-factor login turned off"))
}

/// The caller and their session. Bearer callers are refused: a leaked API token
/// must not be able to enrol its own authenticator (locking the owner out) or turn
/// the owner's off.
fn session_caller(ctx: &Ctx<'_, '_>) -> Result<(User, i64), ApiError> {
    let Some(p) = ctx.identity.principal() else {
        return Err(reply::error(401, "Authentication required").into());
    };
    match p.via {
        Via::Session { id, .. } => Ok((p.user.clone(), id)),
        Via::Bearer { .. } => Err(reply::error(
            403,
            "Two-factor login can only be changed from a logged-in session",
        )
        .into()),
    }
}

fn key(ctx: &Ctx<'_, '_>) -> Result<SecretKey, ApiError> {
    ctx.secret_key().map_err(|e| {
        slog::error!(ctx.log, "no secret key for two-factor secrets"; "error" => %e);
        reply::error(500, "Internal server error").into()
    })
}

/// The documented status and message for each two-factor outcome.
fn refusal(ctx: &Ctx<'_, '_>, e: TwoFactorError) -> ApiError {
    let field = |name: &'static str, msg: &str| {
        reply::invalid_fields(&BTreeMap::from([(name, msg.to_string())]))
    };
    let r: Response = match e {
        TwoFactorError::AlreadyOn => reply::error(409, "Two-factor login is already on"),
        TwoFactorError::NotOn => reply::error(409, "Two-factor login is off"),
        TwoFactorError::NotPending => reply::error(
            409,
            "No two-factor setup in progress: start with POST /api/auth/2fa/setup",
        ),
        TwoFactorError::InvalidCode => {
            field("code", "is not a current code or an unused recovery code")
        }
        TwoFactorError::WrongPassword => field("password", "is incorrect"),
        TwoFactorError::LoginCode => reply::error(401, "Invalid two-factor code"),
        TwoFactorError::LoginTicket => {
            reply::error(401, "Login ticket invalid or expired; log in again")
        }
        TwoFactorError::NeedsSession => reply::error(
            403,
            "Two-factor login can only be changed from a logged-in session",
        ),
        TwoFactorError::Account(e) => account_error(e, ctx.log),
    };
    r.into()
}
