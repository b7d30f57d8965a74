//! BingX perpetual-swap account stream: `wss://open-api-swap.bingx.com/swap-market?listenKey=…`,
//! every frame gzip-compressed, `Ping` answered with `Pong`, all account
//! events pushed without a subscription.
//!
//! From BingX's API reference (github.com/BingX-API/api-ai-skills,
//! `skills/swap-ws-account`; <https://bingx-api.github.io/docs/#/swapV2/socket/account.html>):
//! - `ORDER_TRADE_UPDATE`: `o` holds the order — `s` symbol (`BTC-USDT`), `c`
//!   client id, `i` order id, `S` side, `o` type, `q` quantity, `p` price, `sp`
//!   trigger price, `ap` average price, `x` execution type (`TRADE` for a fill),
//!   `X` status, `n` the fee of this fill (negative when paid), `ps` position
//!   side, `z` cumulative filled quantity, `T` the time of the order's last
//!   change (of its fill; 0 in some events, then the event time `E` is used).
//! - `ACCOUNT_UPDATE`: `a.B` balances (`a` asset, `wb` wallet balance), `a.P`
//!   positions (`s`, `pa` amount, `ep` entry price, `ps` side).
//! - `listenKeyExpired`: the key must be recreated and the socket reopened.

use std::io::Read;

use flate2::read::GzDecoder;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::update::Update;
use crate::exchange::bingx::parse;
use crate::exchange::rest::wire::{self, decimal, decimal_opt, id, int_opt};
use crate::exchange::{ExchangeError, Order, OrderKind, OrderSide, Position, Side};

/// Decompressed frames larger than this are refused (a bomb, not an event).
const MAX_FRAME: u64 = 1 << 20;

/// What one frame says.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// The server's heartbeat: answer `Pong`.
    Ping,
    Updates(Vec<Update>),
    ListenKeyExpired,
    /// An event the bots do not use (`ACCOUNT_CONFIG_UPDATE`, …).
    Other,
}

/// The text of a binary (gzip) frame.
pub fn gunzip(bytes: &[u8]) -> Result<String, ExchangeError> {
    let mut text = String::new();
    GzDecoder::new(bytes)
        .take(MAX_FRAME)
        .read_to_string(&mut text)
        .map_err(|e| ExchangeError::Malformed(format!("bingx stream frame: gzip: {e}")))?;
    Ok(text)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    e: String,
    #[serde(rename = "E", default, deserialize_with = "int_opt")]
    time: Option<i64>,
    #[serde(borrow, default)]
    o: Option<&'a RawValue>,
    #[serde(borrow, default)]
    a: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WsOrder {
    s: String,
    #[serde(default, deserialize_with = "id")]
    c: String,
    #[serde(deserialize_with = "id")]
    i: String,
    #[serde(rename = "S")]
    side: String,
    o: String,
    #[serde(deserialize_with = "decimal")]
    q: Decimal,
    #[serde(default, deserialize_with = "decimal_opt")]
    p: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    sp: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    ap: Option<Decimal>,
    #[serde(default)]
    x: String,
    #[serde(rename = "X")]
    status: String,
    #[serde(default, deserialize_with = "decimal_opt")]
    n: Option<Decimal>,
    ps: String,
    #[serde(deserialize_with = "decimal")]
    z: Decimal,
    /// The order's last change (its fill's time); 0 in some events.
    #[serde(rename = "T", default, deserialize_with = "int_opt")]
    t: Option<i64>,
}

#[derive(Deserialize)]
struct WsAccount {
    #[serde(rename = "B", default)]
    balances: Vec<WsBalance>,
    #[serde(rename = "P", default)]
    positions: Vec<WsPosition>,
}

#[derive(Deserialize)]
struct WsBalance {
    a: String,
    #[serde(deserialize_with = "decimal")]
    wb: Decimal,
}

#[derive(Deserialize)]
struct WsPosition {
    s: String,
    #[serde(deserialize_with = "decimal")]
    pa: Decimal,
    #[serde(default, deserialize_with = "decimal_opt")]
    ep: Option<Decimal>,
    ps: String,
}

/// `BTC-USDT` → `BTC/USDT`.
pub fn symbol_of(pair: &str) -> Option<String> {
    let (base, quote) = pair.split_once('-')?;
    (!base.is_empty() && !quote.is_empty()).then(|| format!("{base}/{quote}"))
}

fn bad(what: &str, why: String) -> ExchangeError {
    ExchangeError::Malformed(format!("bingx {what}: {why}"))
}

fn side_of(ps: &str) -> Result<Side, ExchangeError> {
    match ps {
        "LONG" => Ok(Side::Long),
        "SHORT" => Ok(Side::Short),
        other => Err(bad("event", format!("unknown position side {other:?}"))),
    }
}

/// Reads one frame's text (after `gunzip`).
pub fn read(text: &str) -> Result<Frame, ExchangeError> {
    let t = text.trim();
    if t == "Ping" {
        return Ok(Frame::Ping);
    }
    let env: Envelope = wire::parse("bingx stream frame", t)?;
    let time = env.time.unwrap_or(0);
    match env.e.as_str() {
        "ORDER_TRADE_UPDATE" => {
            let o = env
                .o
                .ok_or_else(|| bad("ORDER_TRADE_UPDATE", "no `o`".into()))?;
            Ok(Frame::Updates(order(o.get(), time)?.into_iter().collect()))
        }
        "ACCOUNT_UPDATE" => {
            let a = env
                .a
                .ok_or_else(|| bad("ACCOUNT_UPDATE", "no `a`".into()))?;
            Ok(Frame::Updates(account(a.get(), time)?))
        }
        "listenKeyExpired" => Ok(Frame::ListenKeyExpired),
        _ => Ok(Frame::Other),
    }
}

fn order(text: &str, event_ms: i64) -> Result<Option<Update>, ExchangeError> {
    let w: WsOrder = wire::parse("bingx ORDER_TRADE_UPDATE", text)?;
    let time_ms = w.t.filter(|t| *t > 0).unwrap_or(event_ms);
    let Some(symbol) = symbol_of(&w.s) else {
        return Err(bad("ORDER_TRADE_UPDATE", format!("symbol {:?}", w.s)));
    };
    let side = parse::side("ORDER_TRADE_UPDATE", &w.side)?;
    let position_side = side_of(&w.ps)?;
    let kind = parse::kind(&w.o)?;
    let avg = w.ap.filter(|p| *p > Decimal::ZERO);
    if w.z > Decimal::ZERO && avg.is_none() {
        // Caught between two updates. Not skipped: this may be the fill's only
        // event (its fee `n` counts once), so the view reconciles with REST.
        return Err(ExchangeError::Busy(format!(
            "bingx order {} reports {} filled without an average price",
            w.i, w.z
        )));
    }
    let fee_delta = if w.x == "TRADE" {
        -w.n.ok_or_else(|| bad("ORDER_TRADE_UPDATE", "a fill without its fee `n`".into()))?
    } else {
        Decimal::ZERO
    };
    let order = Order {
        client_id: w.c,
        exchange_id: w.i,
        symbol,
        side,
        kind,
        price: w
            .p
            .filter(|p| *p > Decimal::ZERO && kind == OrderKind::Limit),
        trigger_price: w
            .sp
            .filter(|p| *p > Decimal::ZERO && kind == OrderKind::Stop),
        qty: w.q,
        filled_qty: w.z,
        avg_fill_price: avg.unwrap_or(Decimal::ZERO),
        fee: Decimal::ZERO,
        reduce_only: matches!(
            (position_side, side),
            (Side::Long, OrderSide::Sell) | (Side::Short, OrderSide::Buy)
        ),
        position_side,
        status: parse::status(&w.status)?,
        // Not in the event: the view keeps what it knew.
        created_ms: 0,
    };
    Ok(Some(Update::Order {
        order,
        time_ms,
        fee_delta: Some(fee_delta),
    }))
}

fn account(text: &str, time_ms: i64) -> Result<Vec<Update>, ExchangeError> {
    let a: WsAccount = wire::parse("bingx ACCOUNT_UPDATE", text)?;
    let mut out: Vec<Update> = a
        .balances
        .iter()
        .filter(|b| b.a == "USDT")
        .map(|b| Update::Wallet {
            balance: b.wb,
            time_ms,
        })
        .collect();
    for p in &a.positions {
        let symbol =
            symbol_of(&p.s).ok_or_else(|| bad("ACCOUNT_UPDATE", format!("symbol {:?}", p.s)))?;
        out.push(Update::Position {
            symbol,
            position: Position {
                side: side_of(&p.ps)?,
                size: p.pa.abs(),
                avg_entry: p.ep.unwrap_or(Decimal::ZERO),
                // Not in the event: the engine reads the ticker instead.
                mark_price: Decimal::ZERO,
            },
            time_ms,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "bingx_tests.rs"]
mod tests;
