//! `/api/auth/tokens`: API bearer tokens, shown once at creation, at most
//! `accounts::TOKENS_PER_USER` per user; the list pages.

use serde_json::json;

use super::ApiResult;
use crate::auth::{accounts, AccountError, Via};
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::log::rfc3339;
use crate::store::tokens;

const DEFAULT_NAME: &str = "API token";

/// Only a browser session may mint tokens: a leaked token must not be able to
/// create more of itself.
pub fn create(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let Some(p) = ctx.identity.principal() else {
        return Ok(reply::error(401, "Authentication required"));
    };
    if matches!(p.via, Via::Bearer { .. }) {
        return Ok(reply::error(
            403,
            "API tokens can only be created from a logged-in session",
        ));
    }
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let name = body.opt_string("name", &mut errors);
    errors.finish()?;
    let new = accounts::create_token(
        &mut *ctx.db.conn()?,
        p.user.id,
        name.as_deref().unwrap_or(DEFAULT_NAME),
    )?;
    Ok(reply::json(
        201,
        &json!({"id": new.id, "name": new.name, "token": new.token}),
    ))
}

/// Tokens per page when `limit` is not given, and the most a page may hold.
pub const PAGE_DEFAULT: i64 = 50;
pub const PAGE_MAX: i64 = 100;

/// One page of the caller's tokens, newest first (`limit`, `offset`), with the
/// total.
pub fn list(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let Some(user_id) = ctx.identity.user_id() else {
        return Ok(reply::error(401, "Authentication required"));
    };
    let query = ctx.req.query;
    let limit = input::query_number(query, "limit", 1, PAGE_MAX, PAGE_DEFAULT)?;
    let offset = input::query_number(query, "offset", 0, i64::from(i32::MAX), 0)?;
    let conn = ctx.db.conn()?;
    let total = tokens::count(&conn, user_id)?;
    let rows = tokens::list(&conn, user_id, limit, offset)?;
    let tokens: Vec<_> = rows
        .iter()
        .map(|t| {
            json!({"id": t.id, "name": t.name, "created_at": rfc3339(t.created_at),
                   "last_used_at": t.last_used_at.map(rfc3339)})
        })
        .collect();
    Ok(reply::json(
        200,
        &json!({"tokens": tokens, "total": total, "limit": limit, "offset": offset}),
    ))
}

pub fn delete(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let Some(user_id) = ctx.identity.user_id() else {
        return Ok(reply::error(401, "Authentication required"));
    };
    let Some(id) = ctx.params.get("id").and_then(|s| s.parse::<i64>().ok()) else {
        return Err(AccountError::NotFound.into());
    };
    accounts::delete_token(&*ctx.db.conn()?, user_id, id)?;
    Ok(reply::success(200, "Token deleted"))
}
