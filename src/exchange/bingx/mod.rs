//! BingX perpetual-swap (USDT-M) REST adapter, hedge mode: every order
//! names its position with `positionSide` `LONG`/`SHORT`, and closing is a `SELL`
//! on `LONG` (or `BUY` on `SHORT`) — BingX does not accept `reduceOnly` in hedge
//! mode. Orders carry our client id as `clientOrderId` (BingX lowercases it; ours
//! are lowercase already).
//!
//! Endpoints, from BingX's own API reference (github.com/BingX-API/api-ai-skills,
//! `skills/swap-trade`, `skills/swap-account` and `skills/swap-market`
//! `api-reference.md`; the interactive docs: <https://bingx-api.github.io/docs/#/swapV2/introduce>):
//! - contracts (tick, step, minimum): `GET /openApi/swap/v2/quote/contracts`
//! - ticker: `GET /openApi/swap/v2/quote/ticker`
//! - server time: `GET /openApi/swap/v2/server/time`
//! - leverage: `POST /openApi/swap/v2/trade/leverage` (per side: `LONG`, `SHORT`)
//! - place: `POST /openApi/swap/v2/trade/order`
//! - cancel: `DELETE /openApi/swap/v2/trade/order`
//! - open orders: `GET /openApi/swap/v2/trade/openOrders`
//! - one order in any state: `GET /openApi/swap/v2/trade/order`
//! - fills (fees, executions): `GET /openApi/swap/v2/trade/allFillOrders`
//! - liquidations and ADL: `GET /openApi/swap/v2/trade/forceOrders`
//! - funding: `GET /openApi/swap/v2/user/income` (`incomeType=FUNDING_FEE`)
//! - positions: `GET /openApi/swap/v2/user/positions`
//! - balance: `GET /openApi/swap/v3/user/balance`
//! - API key permissions: `GET /openApi/v1/account/apiPermissions`, position mode:
//!   `GET /openApi/swap/v1/positionSide/dual` (see `key_info`)
//! - signing: `skills/references/authentication.md`; errors:
//!   `skills/references/error-codes.md` (see `errors`)

mod api;
mod errors;
mod history;
mod key_info;
mod orders;
pub(crate) mod parse;
pub mod public;
pub(crate) mod types;

use std::collections::HashMap;
use std::sync::Mutex;

use rust_decimal::Decimal;

use self::api::Api;
use self::types::{Balance, Contract, RawPosition, Ticker};
use super::rest::{self, ApiKey, RestSettings};
use super::{Exchange, ExchangeError, Execution, FundingPayment, KeyInfo, Market, NewOrder};
use super::{Order, Position, Side};

pub struct Bingx {
    api: Api,
    markets: Mutex<HashMap<String, Market>>,
}

/// `BTC/USDT` → `BTC-USDT`.
pub(crate) fn pair(symbol: &str) -> Result<String, ExchangeError> {
    let (base, quote) = rest::split_symbol(symbol)?;
    Ok(format!("{base}-{quote}"))
}

fn sym(symbol: &str) -> Result<Vec<(&'static str, String)>, ExchangeError> {
    Ok(vec![("symbol", pair(symbol)?)])
}

/// 10^-places: BingX gives decimal places, the engine wants increments.
fn increment(places: i64) -> Decimal {
    Decimal::new(1, places.clamp(0, 12) as u32)
}

impl Bingx {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Bingx {
        Bingx {
            api: Api::new(settings, key),
            markets: Mutex::new(HashMap::new()),
        }
    }

    /// A signed call's `data`, unwrapped from `key` where BingX wraps it, as `T`.
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        key: &str,
    ) -> Result<T, api::Refused> {
        let data = self.api.signed(method, path, params)?;
        types::unwrap(what, key, &data).map_err(api::Refused::Failed)
    }
}

impl Exchange for Bingx {
    fn name(&self) -> &'static str {
        "bingx"
    }

    fn market(&self, symbol: &str) -> Result<Market, ExchangeError> {
        if let Some(m) = self
            .markets
            .lock()
            .ok()
            .and_then(|m| m.get(symbol).copied())
        {
            return Ok(m);
        }
        let want = pair(symbol)?;
        let all: Vec<Contract> = self.call(
            "contracts",
            "GET",
            "/openApi/swap/v2/quote/contracts",
            &sym(symbol)?,
            "",
        )?;
        let c = all
            .iter()
            .find(|c| c.symbol == want)
            .ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?;
        let m = Market {
            tick: increment(c.price_precision),
            step: increment(c.quantity_precision),
            min_qty: c.trade_min_quantity.unwrap_or(Decimal::ZERO),
            min_notional: c.trade_min_usdt.unwrap_or(Decimal::ZERO),
        };
        if let Ok(mut all) = self.markets.lock() {
            all.insert(symbol.to_string(), m);
        }
        Ok(m)
    }

    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError> {
        let data = self
            .api
            .signed("GET", "/openApi/swap/v2/quote/ticker", &sym(symbol)?)?;
        // One symbol asked: an object, or a list of one.
        let t: Ticker = if data.trim_start().starts_with('[') {
            let mut l: Vec<Ticker> = rest::wire::parse("ticker", &data)?;
            l.pop()
                .ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?
        } else {
            rest::wire::parse("ticker", &data)?
        };
        if t.last_price <= Decimal::ZERO {
            return Err(ExchangeError::UnknownSymbol(symbol.to_string()));
        }
        Ok(t.last_price)
    }

    /// Hedge mode keeps one leverage per side: only the bot's side is set, so a
    /// position the user holds the other way keeps its own.
    fn set_leverage(&self, symbol: &str, side: Side, leverage: u32) -> Result<(), ExchangeError> {
        let mut q = sym(symbol)?;
        q.extend([
            ("side", parse::position_side(side).to_string()),
            ("leverage", leverage.to_string()),
        ]);
        self.api
            .signed("POST", "/openApi/swap/v2/trade/leverage", &q)?;
        Ok(())
    }

    fn place(&self, order: &NewOrder) -> Result<Order, ExchangeError> {
        orders::place(self, order)
    }

    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError> {
        orders::cancel(self, symbol, ("clientOrderId", client_id))
    }

    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
        orders::open(self, symbol)
    }

    /// BingX keeps no client id on a stop: such a stop is found by `order_by_id`.
    fn order(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        orders::find(self, symbol, ("clientOrderId", client_id))
    }

    fn order_by_id(&self, symbol: &str, exchange_id: &str) -> Result<Option<Order>, ExchangeError> {
        orders::find(self, symbol, ("orderId", exchange_id))
    }

    fn cancel_by_id(&self, symbol: &str, exchange_id: &str) -> Result<(), ExchangeError> {
        orders::cancel(self, symbol, ("orderId", exchange_id))
    }

    fn executions(&self, symbol: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError> {
        history::executions(self, symbol, since_ms)
    }

    fn funding(&self, symbol: &str, since_ms: i64) -> Result<Vec<FundingPayment>, ExchangeError> {
        history::funding(self, symbol, since_ms)
    }

    fn position(&self, symbol: &str, side: Side) -> Result<Position, ExchangeError> {
        let list: Vec<RawPosition> = self.call(
            "positions",
            "GET",
            "/openApi/swap/v2/user/positions",
            &sym(symbol)?,
            "",
        )?;
        Ok(parse::position(&list, side))
    }

    fn balance(&self) -> Result<Decimal, ExchangeError> {
        let all: Vec<Balance> =
            self.call("balance", "GET", "/openApi/swap/v3/user/balance", &[], "")?;
        // An account that never held USDT lists no USDT asset: none held.
        let usdt = all.iter().find(|a| a.asset == "USDT");
        Ok(usdt.map_or(Decimal::ZERO, |a| a.balance))
    }

    fn key_info(&self, by: std::time::Instant) -> Result<KeyInfo, ExchangeError> {
        let data = self
            .api
            .signed_within("GET", "/openApi/v1/account/apiPermissions", &[], by)?;
        key_info::read(&data)
    }

    fn hedge_mode(&self, _symbol: &str) -> Result<bool, ExchangeError> {
        let data = self
            .api
            .signed("GET", "/openApi/swap/v1/positionSide/dual", &[])?;
        key_info::dual(&data)
    }
}
