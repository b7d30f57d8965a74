//! Setting the bot's leverage (docs/v5/position/leverage). Bybit takes both
//! sides' leverage in one call, `buyLeverage` (the long side in hedge mode) and
//! `sellLeverage` (the short side), and lets them differ only in isolated margin:
//! "Hedge mode: isolated margin: `buyLeverage` and `sellLeverage` can be different;
//! cross margin: `buyLeverage` must be the same as `sellLeverage`". The account's
//! margin mode is read from `GET /v5/account/info` (`marginMode`:
//! `ISOLATED_MARGIN`, `REGULAR_MARGIN` = cross, `PORTFOLIO_MARGIN`). In isolated
//! margin the other side keeps the leverage it has, so a position the user holds
//! in the other direction is not re-levered; in cross and portfolio margin Bybit
//! keeps one leverage per symbol, and the bot's becomes the other side's too
//! (docs/bots.md, Exchanges).

use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use serde_json::json;

use super::api::Refused;
use super::types::{AccountInfo, Page, RawPosition};
use super::{linear, pair, parse, Bybit};
use crate::exchange::rest::budget::Priority;
use crate::exchange::rest::decimal;
use crate::exchange::{ExchangeError, Side};

pub fn set(x: &Bybit, symbol: &str, side: Side, leverage: u32) -> Result<(), ExchangeError> {
    let ours = leverage.to_string();
    let theirs = kept(x, symbol, side)?.unwrap_or_else(|| ours.clone());
    let (buy, sell) = match side {
        Side::Long => (ours, theirs),
        Side::Short => (theirs, ours),
    };
    let body = json!({"category": "linear", "symbol": pair(symbol)?,
        "buyLeverage": buy, "sellLeverage": sell});
    match x.api.post::<IgnoredAny>(
        "leverage",
        "/v5/position/set-leverage",
        &body,
        Priority::Placement,
    ) {
        // 110043: "Set leverage has not been modified" — already those values.
        Ok(_) | Err(Refused::Code { code: 110043, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The other side's current leverage, when the account is in isolated margin
/// and Bybit reports one; `None`: both sides get the bot's.
fn kept(x: &Bybit, symbol: &str, side: Side) -> Result<Option<String>, ExchangeError> {
    let info: AccountInfo = x.api.get("account info", "/v5/account/info", &[])?;
    if info.margin_mode != "ISOLATED_MARGIN" {
        return Ok(None);
    }
    let other = parse::position_idx(match side {
        Side::Long => Side::Short,
        Side::Short => Side::Long,
    });
    let r: Page<RawPosition> = x
        .api
        .get("positions", "/v5/position/list", &linear(symbol)?)?;
    Ok(r.list
        .iter()
        .find(|p| p.position_idx == other)
        .and_then(|p| p.leverage)
        .filter(|l| *l > Decimal::ZERO)
        .map(decimal))
}
