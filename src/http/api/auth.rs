//! `/api/auth/*`: register, verify, login, logout, me, password, forgot, reset.
//! See docs/http-api.md, Accounts.

use blitz_worker::Response;
use serde_json::json;

use super::{user_json, ApiError, ApiResult};
use crate::auth::accounts::{LoggedIn, LoginStep};
use crate::auth::{accounts, cookie, csrf, AccountError, Via};
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::secrets::SecretKey;

pub fn register(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let email = body.string("email", &mut errors);
    let password = body.string("password", &mut errors);
    errors.finish()?;
    let key = mail_key(ctx)?;
    let mailing = accounts::Mailing {
        public_url: &ctx.config.public_url,
        key: &key,
    };
    accounts::register(&mut *ctx.db.conn()?, &email, &password, &mailing)?;
    Ok(reply::json(
        201,
        &json!({"success": true, "message": "Verification email sent"}),
    ))
}

/// The instance key that seals queued mail (`mail::sealing`).
fn mail_key(ctx: &Ctx<'_, '_>) -> Result<SecretKey, ApiError> {
    SecretKey::resolve(ctx.config.secret_key.as_deref(), ctx.config.instance_dir())
        .map_err(|e| AccountError::Internal(format!("no secret key for sealing mail: {e}")).into())
}

pub fn verify(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let token = body.string("token", &mut errors);
    errors.finish()?;
    accounts::verify(&*ctx.db.conn()?, &token)?;
    Ok(reply::success(200, "Email verified"))
}

pub fn login(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let email = body.string("email", &mut errors);
    let password = body.string("password", &mut errors);
    errors.finish()?;
    let step = accounts::login(
        &mut *ctx.db.conn()?,
        ctx.coord,
        &email,
        &password,
        ctx.client_ip,
    )
    .inspect_err(|e| {
        if matches!(e, AccountError::TooManyAttempts { .. }) {
            slog::warn!(ctx.log, "login refused: too many failures";
                    "client" => ctx.client_ip,
                    "email" => email.trim().chars().take(254).collect::<String>());
        }
    })?;
    Ok(match step {
        LoginStep::Done(done) => logged_in(&done, ctx.config.session_secure),
        // No session yet: the ticket goes with the code to `POST /api/auth/2fa/verify`.
        LoginStep::SecondFactor { ticket } => reply::json(
            200,
            &json!({"success": true, "two_factor_required": true, "ticket": ticket}),
        ),
    })
}

/// The answer of a finished login (password, or password and code): the user, the
/// CSRF token and the session cookie.
pub fn logged_in(done: &LoggedIn, secure: bool) -> Response {
    reply::json(
        200,
        &json!({"success": true, "csrf_token": done.csrf_token, "user": user_json(&done.user)}),
    )
    .header("Set-Cookie", cookie::set(&done.cookie, secure))
}

/// Revokes the session server-side and clears the cookie. Bearer tokens are revoked
/// with `DELETE /api/auth/tokens/<id>`, not here.
pub fn logout(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    if let Some(Via::Session { id, .. }) = ctx.identity.principal().map(|p| &p.via) {
        accounts::logout(&*ctx.db.conn()?, *id)?;
    }
    Ok(reply::success(200, "Logged out")
        .header("Set-Cookie", cookie::clear(ctx.config.session_secure)))
}

/// The caller, a freshly masked CSRF token (null for bearer callers, who need none)
/// and whether two-factor login is on.
pub fn me(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let Some(p) = ctx.identity.principal() else {
        return Ok(reply::error(401, "Authentication required"));
    };
    let csrf_token = match &p.via {
        Via::Session { csrf_secret, .. } => Some(csrf::masked(csrf_secret)),
        Via::Bearer { .. } => None,
    };
    Ok(reply::json(
        200,
        &json!({"success": true, "user": user_json(&p.user), "csrf_token": csrf_token,
                "two_factor": p.user.two_factor}),
    ))
}

pub fn change_password(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let current = body.string("current_password", &mut errors);
    let new = body.string("new_password", &mut errors);
    let keep_tokens = body.opt_bool("keep_tokens", &mut errors);
    errors.finish()?;
    let api_tokens = match keep_tokens {
        Some(true) => accounts::ApiTokens::Keep,
        _ => accounts::ApiTokens::Revoke,
    };
    let Some(p) = ctx.identity.principal() else {
        return Ok(reply::error(401, "Authentication required"));
    };
    let keep = match p.via {
        Via::Session { id, .. } => Some(id),
        Via::Bearer { .. } => None,
    };
    let change = accounts::PasswordChange {
        current: &current,
        new: &new,
        keep_session: keep,
        api_tokens,
    };
    accounts::change_password(
        &mut *ctx.db.conn()?,
        ctx.coord,
        ctx.client_ip,
        &p.user,
        &change,
    )?;
    Ok(reply::success(200, "Password changed"))
}

/// Always 202, whatever the address: the answer must not tell who has an account.
pub fn forgot(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let email = body.string("email", &mut errors);
    errors.finish()?;
    let key = mail_key(ctx)?;
    let mailing = accounts::Mailing {
        public_url: &ctx.config.public_url,
        key: &key,
    };
    accounts::forgot(&mut *ctx.db.conn()?, &email, &mailing)?;
    Ok(reply::success(
        202,
        "If an account exists for that address, a reset link has been sent",
    ))
}

pub fn reset(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let token = body.string("token", &mut errors);
    let new = body.string("new_password", &mut errors);
    errors.finish()?;
    accounts::reset(&mut *ctx.db.conn()?, &token, &new)?;
    Ok(reply::success(200, "Password has been reset"))
}
