//! `/api/exchange-accounts` (CONTRACT C14, C16; docs/http-api.md, Exchange
//! accounts): a user's key pair on a real exchange, held once for the bots that
//! trade with it, and the egress proxy its requests go through. The key, the
//! secret and the proxy are write-only: sealed with the instance key before they
//! reach the store, shown only as `***abcd` and `scheme://host:port`. The paper
//! account has no row.
//!
//! Invariants: another user's account is the same 404 as none (`owned`); an
//! account a bot uses is not deleted (409 `in_use`, checked by the store in the
//! deleting statement itself); a user holds at most `BOTS_PER_USER` accounts —
//! one per bot is the most they can use, and the bound keeps a user from filling
//! the table; no key is stored that the exchange did not confirm can trade and
//! cannot withdraw (`key_check`), and a new proxy is tried by that same check.

use blitz_worker::Response;
use serde_json::{json, Value};

use super::key_check::{self, Candidate, Checker};
use super::owned::{self, caller};
use super::{ApiError, ApiResult};
use crate::bots::config::secret_value;
use crate::exchange::proxy::{self, Proxy};
use crate::exchange::rest::ApiKey;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors, JsonInput};
use crate::http::reply;
use crate::log::rfc3339;
use crate::market::Venue;
use crate::secrets::{Credentials, SecretKey};
use crate::store::exchange_accounts::{self, Account, Deleted, KeyCheck, NewAccount};
/// An account as the API shows it: masked key, the last key check (`null` for a
/// key saved before checks existed) and the proxy without credentials.
fn account_json(a: &Account) -> Value {
    let key = a.key.as_ref().map_or(Value::Null, |k| {
        json!({"trade": k.trade, "read_only": k.read_only,
               "expires_at": k.expires_at.map(rfc3339),
               "ip_whitelist": k.ip_whitelist, "checked_at": rfc3339(k.checked_at)})
    });
    json!({"id": a.id, "name": a.name, "exchange": a.exchange,
           "api_key": a.masked_key(), "created_at": rfc3339(a.created_at),
           "bots": a.bot_ids, "key": key, "proxy": a.proxy_shown})
}

/// `GET /api/exchange-accounts`: the caller's accounts, oldest first, each with
/// the ids of the bots configured with it.
pub fn list(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let conn = ctx.db.conn()?;
    let accounts: Vec<Value> = exchange_accounts::list(&conn, uid)?
        .iter()
        .map(account_json)
        .collect();
    Ok(reply::json(200, &json!({"accounts": accounts})))
}

/// What a body says about the proxy.
enum ProxyChange {
    Keep,
    Clear,
    Set(Proxy),
}

/// `proxy`: absent keeps it, `null` or `""` clears it, a URL sets it.
fn proxy_field(body: &JsonInput, errors: &mut FieldErrors) -> ProxyChange {
    match body.fields().get("proxy") {
        None => ProxyChange::Keep,
        Some(Value::Null) => ProxyChange::Clear,
        Some(Value::String(s)) if s.trim().is_empty() => ProxyChange::Clear,
        Some(Value::String(s)) => match proxy::parse(s.trim()) {
            Ok(p) => ProxyChange::Set(p),
            Err(e) => {
                errors.add("proxy", e.to_string());
                ProxyChange::Keep
            }
        },
        Some(_) => {
            errors.add("proxy", "must be a string (a proxy URL) or null");
            ProxyChange::Keep
        }
    }
}

/// An optional secret field: `None` when absent (or the masked form sent back).
fn secret_field(body: &JsonInput, field: &str, errors: &mut FieldErrors) -> Option<String> {
    match secret_value(body.fields().get(field)) {
        Ok(v) => v.filter(|s| !s.is_empty()),
        Err(msg) => {
            errors.add(field, msg);
            None
        }
    }
}

/// A valid `POST` body, secrets still in plaintext.
struct Submitted {
    name: String,
    venue: Venue,
    api_key: String,
    api_secret: String,
    proxy: Option<Proxy>,
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
    // `add` keeps a field's first message: a malformed value says so, not "required".
    let mut required = |field: &str| {
        let v = secret_field(body, field, &mut errors);
        if v.is_none() {
            errors.add(field, "is required");
        }
        v
    };
    let (api_key, api_secret) = (required("api_key"), required("api_secret"));
    let proxy = match proxy_field(body, &mut errors) {
        ProxyChange::Set(p) => Some(p),
        ProxyChange::Keep | ProxyChange::Clear => None,
    };
    errors.finish()?;
    match (name, venue, api_key, api_secret) {
        (Some(name), Some(venue), Some(api_key), Some(api_secret)) => Ok(Submitted {
            name,
            venue,
            api_key,
            api_secret,
            proxy,
        }),
        // `finish` has answered every missing part.
        _ => Err(reply::error(400, "Invalid input").into()),
    }
}

/// `POST /api/exchange-accounts` → 201 with the account, after the exchange
/// confirmed the key (`key_check`; nothing is written otherwise).
pub fn create(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let new = submitted(&input::json(ctx.req)?)?;
    let key = secret_key(ctx)?;
    let limit = ctx.config.bots_per_user;
    // A user at the limit is told so before the exchange is asked anything.
    if exchange_accounts::list(&*ctx.db.conn()?, uid)?.len() >= limit as usize {
        return Ok(limit_reached(limit));
    }
    let candidate = Candidate {
        exchange: new.venue.name(),
        key: ApiKey {
            key: new.api_key.clone(),
            secret: new.api_secret.clone(),
        },
        proxy: new.proxy.as_ref(),
    };
    let check = key_check::check(checker(ctx), candidate)?;
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
    let conn = ctx.db.conn()?;
    // Immediate: the count and the insert are one step for concurrent creations.
    let tx = conn.transaction_immediate()?;
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
    exchange_accounts::set_key_check(&tx, uid, id, &check)?;
    if let Some(p) = &new.proxy {
        exchange_accounts::set_proxy(&tx, uid, id, Some((&p.seal(&key, uid), &p.shown())))?;
    }
    let account = exchange_accounts::get(&tx, uid, id)?;
    tx.commit()?;
    let account =
        account.ok_or_else(|| ApiError::from(reply::error(500, "Internal server error")))?;
    Ok(reply::json(201, &account_json(&account)))
}

/// A valid `PUT` body: each part optional, secrets still in plaintext.
struct Changes {
    name: Option<String>,
    api_key: Option<String>,
    api_secret: Option<String>,
    proxy: ProxyChange,
}

impl Changes {
    /// A new key half or a new proxy: the exchange is asked again.
    fn rechecks(&self) -> bool {
        self.api_key.is_some()
            || self.api_secret.is_some()
            || !matches!(self.proxy, ProxyChange::Keep)
    }
}

fn changes(body: &JsonInput) -> Result<Changes, ApiError> {
    let mut errors = FieldErrors::default();
    if body.fields().contains_key("exchange") {
        errors.add("exchange", "cannot be changed: create another account");
    }
    let changes = Changes {
        name: body.label("name", false, &mut errors),
        api_key: secret_field(body, "api_key", &mut errors),
        api_secret: secret_field(body, "api_secret", &mut errors),
        proxy: proxy_field(body, &mut errors),
    };
    errors.finish()?;
    Ok(changes)
}

/// `PUT /api/exchange-accounts/<id>`: renames the account, replaces either half
/// of its key, sets or clears (`null`) its proxy. A new key half or proxy is
/// checked with the exchange — through the proxy the account will have — before
/// anything is written; 409 while a bot trades with the account (it keeps the
/// key and proxy it started with).
pub fn update(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = caller(ctx)?;
    let id = owned::path_id(ctx, "id")?;
    let account =
        exchange_accounts::get(&*ctx.db.conn()?, uid, id)?.ok_or_else(owned::not_found)?;
    let ch = changes(&input::json(ctx.req)?)?;
    let key = secret_key(ctx)?;
    let check = match ch.rechecks() {
        true => Some(recheck(ctx, &key, &account, &ch)?),
        false => None,
    };
    let conn = ctx.db.conn()?;
    let tx = conn.transaction_immediate()?;
    if ch.rechecks() {
        refuse_in_use(&tx, uid, id)?;
    }
    if let Some(name) = &ch.name {
        exchange_accounts::rename(&tx, uid, id, name)?;
    }
    let sealed = key.seal_credentials(
        uid,
        &Credentials {
            api_key: ch.api_key.clone(),
            api_secret: ch.api_secret.clone(),
            telegram_token: None,
        },
    );
    let pair = sealed
        .api_key
        .as_ref()
        .map(|(k, l)| (k.as_str(), l.as_str()));
    exchange_accounts::set_keys(&tx, uid, id, pair, sealed.api_secret.as_deref())?;
    if let Some(check) = &check {
        exchange_accounts::set_key_check(&tx, uid, id, check)?;
    }
    match &ch.proxy {
        ProxyChange::Keep => {}
        ProxyChange::Clear => {
            exchange_accounts::set_proxy(&tx, uid, id, None)?;
        }
        ProxyChange::Set(p) => {
            exchange_accounts::set_proxy(&tx, uid, id, Some((&p.seal(&key, uid), &p.shown())))?;
        }
    }
    let account = exchange_accounts::get(&tx, uid, id)?.ok_or_else(owned::not_found)?;
    tx.commit()?;
    Ok(reply::json(200, &account_json(&account)))
}

/// The check of the key pair and proxy `account` will have after `ch`: the
/// halves and proxy not given are the stored ones.
fn recheck(
    ctx: &mut Ctx<'_, '_>,
    key: &SecretKey,
    account: &Account,
    ch: &Changes,
) -> Result<KeyCheck, ApiError> {
    let (uid, id) = (account.user_id, account.id);
    let conn = ctx.db.conn()?;
    refuse_in_use(&conn, uid, id)?;
    let unreadable = |field: &str| -> ApiError {
        let msg = "the stored key cannot be read (was SECRET_KEY changed?): send api_key and \
                   api_secret together";
        reply::invalid_fields(&std::collections::BTreeMap::from([(field, msg)])).into()
    };
    let stored = match exchange_accounts::credentials(&conn, uid, id)? {
        Some(sealed) => key.open_credentials(uid, &sealed).ok(),
        None => return Err(owned::not_found()),
    };
    let api_key = ch
        .api_key
        .clone()
        .or_else(|| stored.as_ref()?.api_key.clone());
    let secret = ch
        .api_secret
        .clone()
        .or_else(|| stored.as_ref()?.api_secret.clone());
    let (Some(api_key), Some(secret)) = (api_key, secret) else {
        let field = if ch.api_key.is_some() {
            "api_secret"
        } else {
            "api_key"
        };
        return Err(unreadable(field));
    };
    let proxy = match &ch.proxy {
        ProxyChange::Set(p) => Some(p.clone()),
        ProxyChange::Clear => None,
        ProxyChange::Keep => stored_proxy(&conn, key, uid, id)?,
    };
    drop(conn);
    let candidate = Candidate {
        exchange: &account.exchange,
        key: ApiKey {
            key: api_key,
            secret,
        },
        proxy: proxy.as_ref(),
    };
    key_check::check(checker(ctx), candidate)
}

/// Account `id`'s proxy, opened; a stored one that no longer opens is a 400 on
/// `proxy` (set it again) rather than a silent direct connection.
fn stored_proxy(
    conn: &crate::store::Conn,
    key: &SecretKey,
    uid: i64,
    id: i64,
) -> Result<Option<Proxy>, ApiError> {
    let Some(sealed) = exchange_accounts::proxy(conn, uid, id)? else {
        return Ok(None);
    };
    proxy::open(key, uid, &sealed).map(Some).map_err(|e| {
        let msg = e.to_string();
        reply::invalid_fields(&std::collections::BTreeMap::from([("proxy", msg)])).into()
    })
}

/// 409 while a bot of the user trades with account `id` (or is meant to): it
/// keeps the key and proxy it started with, and after a restart would trade with
/// new ones.
fn refuse_in_use(conn: &crate::store::Conn, uid: i64, id: i64) -> Result<(), ApiError> {
    let Some((bot, status)) = exchange_accounts::active_bot(conn, uid, id)? else {
        return Ok(());
    };
    Err(reply::json(
        409,
        &json!({"success": false, "status": status,
                "error": format!("Bot {bot} trades with this exchange account; stop it before \
                                  changing its key or proxy")}),
    )
    .into())
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

fn checker<'a>(ctx: &'a Ctx<'_, '_>) -> Checker<'a> {
    Checker {
        settings: &ctx.config.exchanges,
        log: ctx.log,
    }
}

fn secret_key(ctx: &Ctx<'_, '_>) -> Result<SecretKey, ApiError> {
    ctx.secret_key().map_err(|e| {
        slog::error!(ctx.log, "no secret key for sealing credentials"; "error" => %e);
        reply::error(500, "Internal server error").into()
    })
}
