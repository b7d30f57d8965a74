//! `GET /api/status`, the admin maintenance switches and the banner.

use serde_json::json;

use super::ApiResult;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::store::{self, settings};

/// The banner's length limit, in characters.
const MAX_BANNER: usize = 500;

pub fn status(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let n = ctx.notice.current(ctx.db)?;
    Ok(reply::json(
        200,
        &json!({"maintenance_enabled": n.maintenance, "banner_message": n.banner}),
    ))
}

fn write(ctx: &mut Ctx<'_, '_>, key: &str, value: &str) -> Result<(), super::ApiError> {
    settings::set(&*ctx.db.conn()?, key, value, store::now())?;
    ctx.notice.changed(ctx.coord);
    slog::info!(ctx.log, "setting changed"; "key" => key,
        "by_user_id" => ctx.identity.user_id().unwrap_or_default());
    Ok(())
}

pub fn enable(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    write(ctx, settings::MAINTENANCE, "true")?;
    Ok(reply::json(
        200,
        &json!({"success": true, "maintenance_enabled": true}),
    ))
}

pub fn disable(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    write(ctx, settings::MAINTENANCE, "false")?;
    Ok(reply::json(
        200,
        &json!({"success": true, "maintenance_enabled": false}),
    ))
}

pub fn banner(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let body = input::json(ctx.req)?;
    let mut errors = FieldErrors::default();
    let message = body.string("message", &mut errors).trim().to_string();
    // A missing or non-string field is already reported; the first error wins.
    if !valid_banner(&message) {
        errors.add("message", format!("must be 1 to {MAX_BANNER} characters"));
    }
    errors.finish()?;
    write(ctx, settings::BANNER, &message)?;
    Ok(reply::json(
        200,
        &json!({"success": true, "banner_message": message}),
    ))
}

/// 1–500 characters of text (a line break is fine, other control characters not).
fn valid_banner(message: &str) -> bool {
    (1..=MAX_BANNER).contains(&message.chars().count())
        && !message.chars().any(|c| c.is_control() && c != '\n')
}

pub fn clear_banner(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    write(ctx, settings::BANNER, "")?;
    Ok(reply::json(
        200,
        &json!({"success": true, "banner_message": ""}),
    ))
}
