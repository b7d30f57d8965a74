//! `GET/PUT /api/bot/config`: validated partial updates, write-only secrets
//! sealed with the instance key, and no changes while the bot runs.

use rusqlite::TransactionBehavior;
use serde_json::json;

use super::ApiResult;
use crate::bots::config::{self, SecretUpdate};
use crate::http::ctx::Ctx;
use crate::http::input;
use crate::http::reply;
use crate::secrets::{Credentials, SecretKey};
use crate::store::{bots, users};

pub fn get(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let conn = ctx.db.conn()?;
    match config::load(&conn, uid)? {
        Some(stored) => Ok(reply::json(200, &stored.to_json())),
        None => Ok(reply::error(404, "Not found")),
    }
}

pub fn put(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let body = input::json(ctx.req)?;
    let key = secret_key(ctx)?;
    let mut conn = ctx.db.conn()?;
    // Immediate: the status check and the write are one step, so a start that
    // begins meanwhile either sees the new configuration or makes us answer 409.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(stored) = config::load(&tx, uid)? else {
        return Ok(reply::error(404, "Not found"));
    };
    if let Some(row) = bots::get(&tx, uid)? {
        if row.status.is_active() {
            return Ok(reply::json(
                409,
                &json!({"success": false, "status": row.status,
                        "error": "Stop the bot before changing its configuration"}),
            ));
        }
    }
    let (new, secrets) = config::apply_update(&stored.config, body.fields())
        .map_err(|fields| reply::invalid_fields(&fields))?;
    config::save(&tx, uid, &new)?;
    if !secrets.is_empty() {
        store_secrets(&tx, uid, &key, secrets)?;
    }
    let shown = config::load(&tx, uid)?.map(|s| s.to_json());
    tx.commit()?;
    Ok(reply::json(200, &shown))
}

fn secret_key(ctx: &Ctx<'_, '_>) -> Result<SecretKey, super::ApiError> {
    ctx.secret_key().map_err(|e| {
        slog::error!(ctx.log, "no secret key for sealing credentials"; "error" => %e);
        reply::error(500, "Internal server error").into()
    })
}

fn store_secrets(
    conn: &rusqlite::Connection,
    uid: i64,
    key: &SecretKey,
    s: SecretUpdate,
) -> Result<(), crate::store::StoreError> {
    let sealed = key.seal_credentials(
        uid,
        &Credentials {
            api_key: s.api_key,
            api_secret: s.api_secret,
            telegram_token: s.telegram_token,
        },
    );
    users::set_credentials(conn, uid, &sealed.as_update())
}
