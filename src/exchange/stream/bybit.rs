//! Bybit v5 private stream (`wss://stream.bybit.com/v5/private`): the
//! authentication message, the subscription, the heartbeat, and the `order`,
//! `execution`, `position` and `wallet` topics read into [`Update`]s.
//!
//! From Bybit's documentation:
//! - connect, authenticate (`op: auth`, args `[apiKey, expires, signature]` with
//!   the signature the HMAC-SHA256 of `GET/realtime{expires}`), heartbeat (`op:
//!   ping` every 20 s): <https://bybit-exchange.github.io/docs/v5/ws/connect>
//! - order topic (the fields of the REST order list, plus `updatedTime`):
//!   <https://bybit-exchange.github.io/docs/v5/websocket/private/order>
//! - execution topic: <https://bybit-exchange.github.io/docs/v5/websocket/private/execution>
//! - position topic (`entryPrice`, `updatedTime`):
//!   <https://bybit-exchange.github.io/docs/v5/websocket/private/position>
//! - wallet topic: <https://bybit-exchange.github.io/docs/v5/websocket/private/wallet>

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::update::Update;
use crate::exchange::bybit::parse;
use crate::exchange::bybit::types::{RawExecution, RawOrder};
use crate::exchange::rest::wire::{self, decimal, decimal_opt, int, int_opt};
use crate::exchange::rest::{hmac_hex, ApiKey};
use crate::exchange::{ExchangeError, Position, Side};

/// The topics subscribed after authentication.
pub const TOPICS: [&str; 4] = ["order", "execution", "position", "wallet"];
/// How long a signed authentication stays valid.
const AUTH_VALID_MS: i64 = 10_000;

/// The authentication message for `key`, valid until `now_ms` + 10 s.
pub fn auth(key: &ApiKey, now_ms: i64) -> String {
    let expires = now_ms + AUTH_VALID_MS;
    let signature = hmac_hex(&key.secret, &format!("GET/realtime{expires}"));
    serde_json::json!({"op": "auth", "args": [key.key, expires, signature]}).to_string()
}

pub fn subscribe() -> String {
    serde_json::json!({"op": "subscribe", "args": TOPICS}).to_string()
}

pub fn ping() -> String {
    r#"{"op":"ping"}"#.to_string()
}

/// What one text frame says.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// The answer to our `auth` or `subscribe`.
    Ack {
        op: String,
        success: bool,
        msg: String,
    },
    Updates(Vec<Update>),
    /// A pong, or a topic the bot does not use.
    Other,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    ret_msg: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(rename = "creationTime", default, deserialize_with = "int_opt")]
    creation_time: Option<i64>,
}

/// What a topic entry says besides the REST fields (`RawOrder`,
/// `RawExecution`, read from the same entry).
#[derive(Deserialize)]
struct Head {
    category: String,
    symbol: String,
    #[serde(rename = "updatedTime", default, deserialize_with = "int_opt")]
    updated_time: Option<i64>,
}

/// Each entry of a topic's `data` as its head and its REST-shaped body.
fn entries<T: DeserializeOwned>(what: &str, data: &str) -> Result<Vec<(Head, T)>, ExchangeError> {
    let list: Vec<&RawValue> = wire::parse(what, data)?;
    let mut out = Vec::with_capacity(list.len());
    for (k, raw) in list.iter().enumerate() {
        let at = format!("{what}[{k}]");
        out.push((wire::parse(&at, raw.get())?, wire::parse(&at, raw.get())?));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct WsPosition {
    category: String,
    symbol: String,
    #[serde(rename = "positionIdx", deserialize_with = "int")]
    position_idx: i64,
    #[serde(deserialize_with = "decimal")]
    size: Decimal,
    /// `entryPrice` in the stream's older pages, `avgPrice` in the newer ones
    /// (as in the REST list); empty when flat.
    #[serde(rename = "entryPrice", default, deserialize_with = "decimal_opt")]
    entry_price: Option<Decimal>,
    #[serde(rename = "avgPrice", default, deserialize_with = "decimal_opt")]
    avg_price: Option<Decimal>,
    #[serde(rename = "markPrice", default, deserialize_with = "decimal_opt")]
    mark_price: Option<Decimal>,
    #[serde(rename = "updatedTime", deserialize_with = "int")]
    updated_time: i64,
}

#[derive(Deserialize)]
struct WsWallet {
    coin: Vec<WsCoin>,
}

#[derive(Deserialize)]
struct WsCoin {
    coin: String,
    #[serde(rename = "walletBalance", deserialize_with = "decimal")]
    wallet_balance: Decimal,
}

/// `BTCUSDT` → `BTC/USDT` (the bots trade USDT perpetuals only); `None` for
/// anything else.
pub fn symbol_of(pair: &str) -> Option<String> {
    let base = pair.strip_suffix("USDT").filter(|b| !b.is_empty())?;
    Some(format!("{base}/USDT"))
}

/// Reads one text frame. A frame that is not JSON, or a topic entry without a
/// field the view needs, is `Malformed` (the caller counts and logs it); entries
/// of other categories (spot, options) are left out.
pub fn read(text: &str) -> Result<Frame, ExchangeError> {
    let env: Envelope = wire::parse("bybit stream frame", text)?;
    if let (Some(op), Some(success)) = (&env.op, env.success) {
        if op == "auth" || op == "subscribe" {
            return Ok(Frame::Ack {
                op: op.clone(),
                success,
                msg: env.ret_msg,
            });
        }
    }
    let (Some(topic), Some(data)) = (env.topic.as_deref(), env.data) else {
        return Ok(Frame::Other);
    };
    let data = data.get();
    let updates = match topic {
        "order" => orders(data)?,
        "execution" => executions(data)?,
        "position" => positions(data)?,
        "wallet" => wallet(data, env.creation_time.unwrap_or(0))?,
        _ => return Ok(Frame::Other),
    };
    Ok(Frame::Updates(updates))
}

fn orders(data: &str) -> Result<Vec<Update>, ExchangeError> {
    let list: Vec<(Head, RawOrder)> = entries("bybit order topic", data)?;
    let mut out = Vec::new();
    for (head, raw) in list.iter().filter(|(h, _)| h.category == "linear") {
        let Some(symbol) = symbol_of(&head.symbol) else {
            continue;
        };
        let time_ms = head.updated_time.ok_or_else(|| {
            ExchangeError::Malformed(format!(
                "bybit order topic: {} without updatedTime",
                raw.order_id
            ))
        })?;
        // Filled without an average price yet (`Busy`): an error too, so the
        // view reconciles with REST rather than wait for an update that may
        // never come (a final `Filled` is not repeated).
        out.push(Update::Order {
            order: parse::order(raw, &symbol)?,
            time_ms,
            fee_delta: None,
        });
    }
    Ok(out)
}

fn executions(data: &str) -> Result<Vec<Update>, ExchangeError> {
    let list: Vec<(Head, RawExecution)> = entries("bybit execution topic", data)?;
    let mut out = Vec::new();
    for (head, raw) in list.iter().filter(|(h, _)| h.category == "linear") {
        let Some(symbol) = symbol_of(&head.symbol) else {
            continue;
        };
        if !parse::is_fill(raw) {
            continue;
        }
        out.push(Update::Execution {
            symbol,
            exec: parse::execution(raw)?,
        });
    }
    Ok(out)
}

fn positions(data: &str) -> Result<Vec<Update>, ExchangeError> {
    let list: Vec<WsPosition> = wire::parse("bybit position topic", data)?;
    let mut out = Vec::new();
    for p in list.iter().filter(|p| p.category == "linear") {
        let Some(symbol) = symbol_of(&p.symbol) else {
            continue;
        };
        let side = match p.position_idx {
            1 => Side::Long,
            2 => Side::Short,
            // One-way mode: not a position the bots (hedge mode) trade.
            _ => continue,
        };
        out.push(Update::Position {
            symbol,
            position: Position {
                side,
                size: p.size,
                avg_entry: p.entry_price.or(p.avg_price).unwrap_or(Decimal::ZERO),
                mark_price: p.mark_price.unwrap_or(Decimal::ZERO),
            },
            time_ms: p.updated_time,
        });
    }
    Ok(out)
}

fn wallet(data: &str, time_ms: i64) -> Result<Vec<Update>, ExchangeError> {
    let list: Vec<WsWallet> = wire::parse("bybit wallet topic", data)?;
    Ok(list
        .iter()
        .flat_map(|w| w.coin.iter())
        .filter(|c| c.coin == "USDT")
        .map(|c| Update::Wallet {
            balance: c.wallet_balance,
            time_ms,
        })
        .collect())
}

#[cfg(test)]
#[path = "bybit_tests.rs"]
mod tests;
