//! `/api/exchange-accounts` (CONTRACT C14; docs/http-api.md, Exchange accounts):
//! a user's key pair on a real exchange, held once for the bots that trade with
//! it. The key and secret are write-only: sealed with the instance key before
//! they reach the store, shown only as `***abcd`. The paper account has no row.
//!
//! Invariants: another user's account is the same 404 as none (`owned`); an
//! account a bot uses is not deleted (409 `in_use`, checked by the store in the
//! deleting statement itself); a user holds at most `BOTS_PER_USER` accounts —
//! one per bot is the most they can use, and the bound keeps a user from filling
//! the table.

use blitz_worker::Response;
use rusqlite::TransactionBehavior;
use serde_json::{json, Value};

use super::owned::{self, caller};
use super::{ApiError, ApiResult};
use crate::bots::config::secret_value;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors, JsonInput};
use crate::http::reply;
use crate::log::rfc3339;
use crate::market::Venue;
use crate::secrets::{Credentials, SecretKey};
use crate::store::exchange_accounts::{self, Deleted, NewAccount};

/// `GET /api/exchange-accounts`: the caller's accounts, oldest first, each with
/// the ids of the bots configured with it.
pub fn list(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let conn = ctx.db.conn()?;
    let accounts: Vec<Value> = exchange_accounts::list(&conn, uid)?
        .iter()
        .map(|a| {
            json!({"id": a.id, "name": a.name, "exchange": a.exchange,
                   "api_key": a.masked_key(), "created_at": rfc3339(a.created_at),
                   "bots": a.bot_ids})
        })
        .collect();
    Ok(reply::json(200, &json!({"accounts": accounts})))
}

/// A valid `POST` body, secrets still in plaintext.
struct Submitted {
    name: String,
    venue: Venue,
    api_key: String,
    api_secret: String,
}

/// Every field checked, every problem named.
fn submitted(body: &JsonInput) -> Result<Submitted, ApiError> {
    let mut errors = FieldErrors::default();
    let name = body.label("name", true, &mut errors);
    let venue = match body.fields().get("exchange") {
        None => {
            errors.add("exchange", "is required");
            None
        }
        Some(v) => {
            let venue = v.as_str().and_then(Venue::parse).filter(|x| v == x.name());
            if venue.is_none() {
                errors.add("exchange", "must be bybit or bingx");
            }
            venue
        }
    };
    let mut secret = |field: &str| match secret_value(body.fields().get(field)) {
        Ok(Some(s)) if !s.is_empty() => Some(s),
        Ok(_) => {
            errors.add(field, "is required");
            None
        }
        Err(msg) => {
            errors.add(field, msg);
            None
        }
    };
    let (api_key, api_secret) = (secret("api_key"), secret("api_secret"));
    errors.finish()?;
    match (name, venue, api_key, api_secret) {
        (Some(name), Some(venue), Some(api_key), Some(api_secret)) => Ok(Submitted {
            name,
            venue,
            api_key,
            api_secret,
        }),
        // `finish` has answered every missing part.
        _ => Err(reply::error(400, "Invalid input").into()),
    }
}

/// `POST /api/exchange-accounts` → 201 `{"id","name","exchange","api_key"}`.
pub fn create(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let new = submitted(&input::json(ctx.req)?)?;
    let key = secret_key(ctx)?;
    let sealed = key.seal_credentials(
        uid,
        &Credentials {
            api_key: Some(new.api_key),
            api_secret: Some(new.api_secret),
            telegram_token: None,
        },
    );
    let (Some((api_key_enc, last4)), Some(api_secret_enc)) = (sealed.api_key, sealed.api_secret)
    else {
        return Err(reply::error(500, "Internal server error").into());
    };
    let limit = ctx.config.bots_per_user;
    let mut conn = ctx.db.conn()?;
    // Immediate: the count and the insert are one step for concurrent creations.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if exchange_accounts::list(&tx, uid)?.len() >= limit as usize {
        return Ok(limit_reached(limit));
    }
    let row = NewAccount {
        name: &new.name,
        exchange: new.venue.name(),
        api_key_enc: &api_key_enc,
        api_key_last4: &last4,
        api_secret_enc: &api_secret_enc,
    };
    let id = exchange_accounts::create(&tx, uid, &row, crate::store::now())?;
    tx.commit()?;
    Ok(reply::json(
        201,
        &json!({"id": id, "name": new.name, "exchange": new.venue.name(),
                "api_key": format!("***{last4}")}),
    ))
}

fn limit_reached(limit: u32) -> Response {
    reply::json(
        409,
        &json!({"success": false, "status": "limit_reached",
                "message": format!("At most {limit} exchange accounts per user; delete one first")}),
    )
}

/// `DELETE /api/exchange-accounts/<id>`: 409 `in_use` while a bot is configured
/// with it.
pub fn delete(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let id = owned::path_id(ctx, "id")?;
    let conn = ctx.db.conn()?;
    match exchange_accounts::delete(&conn, uid, id)? {
        Deleted::Done => Ok(reply::json(200, &json!({"success": true}))),
        Deleted::NotFound => Err(owned::not_found()),
        Deleted::InUse(bots) => Ok(reply::json(
            409,
            &json!({"success": false, "status": "in_use",
                    "message": format!("Bots {bots:?} trade with this account: move them to \
                                        another account or delete them first")}),
        )),
    }
}

fn secret_key(ctx: &Ctx<'_, '_>) -> Result<SecretKey, ApiError> {
    ctx.secret_key().map_err(|e| {
        slog::error!(ctx.log, "no secret key for sealing credentials"; "error" => %e);
        reply::error(500, "Internal server error").into()
    })
}
