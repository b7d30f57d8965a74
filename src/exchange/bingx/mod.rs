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
//! - fills (fees): `GET /openApi/swap/v2/trade/allFillOrders`
//! - positions: `GET /openApi/swap/v2/user/positions`
//! - balance: `GET /openApi/swap/v3/user/balance`
//! - signing: `skills/references/authentication.md`; errors: `skills/references/error-codes.md`

mod api;
mod parse;

use std::collections::HashMap;
use std::sync::Mutex;

use rust_decimal::Decimal;
use serde_json::Value;

use self::api::{Api, Refused};
use super::rest::{self, decimal, num, num_or_zero, text, ApiKey, RestSettings};
use super::{Exchange, ExchangeError, Market, NewOrder, Order, OrderKind};
use super::{Position, Side};

pub struct Bingx {
    api: Api,
    markets: Mutex<HashMap<String, Market>>,
}

/// `BTC/USDT` → `BTC-USDT`.
fn pair(symbol: &str) -> Result<String, ExchangeError> {
    let (base, quote) = rest::split_symbol(symbol)?;
    Ok(format!("{base}-{quote}"))
}

fn sym(symbol: &str) -> Result<Vec<(&'static str, String)>, ExchangeError> {
    Ok(vec![("symbol", pair(symbol)?)])
}

/// 10^-precision: BingX gives decimal places (field `key` of `c`), the engine
/// wants increments.
fn increment(c: &Value, key: &str) -> Result<Decimal, ExchangeError> {
    let places = rest::int_field(c, key)?.clamp(0, 12);
    Ok(Decimal::new(1, places as u32))
}

/// "Order does not exist" (109421) — filled, cancelled or never placed.
fn is_unknown_order(r: &Refused) -> bool {
    matches!(r, Refused::Code { code: 109421, .. })
        || matches!(r, Refused::Code { msg, .. } if msg.to_lowercase().contains("not exist"))
}

/// Fills older than this are outside `allFillOrders`' window.
const FILL_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

impl Bingx {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Bingx {
        Bingx {
            api: Api::new(settings, key),
            markets: Mutex::new(HashMap::new()),
        }
    }

    fn find(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        let mut q = sym(symbol)?;
        q.push(("clientOrderId", client_id.to_string()));
        let data = match self.api.signed("GET", "/openApi/swap/v2/trade/order", &q) {
            Ok(d) => d,
            Err(r) if is_unknown_order(&r) => return Ok(None),
            Err(r) => return Err(r.into()),
        };
        let v = parse::unwrap(&data, "order");
        if v.is_null() || text(&v["clientOrderId"]).is_empty() && text(&v["orderId"]).is_empty() {
            return Ok(None);
        }
        let mut o = parse::order(v, symbol)?;
        if o.client_id.is_empty() {
            o.client_id = client_id.to_string();
        }
        if o.filled_qty > Decimal::ZERO {
            o.fee = self.fees(&o)?;
        }
        Ok(Some(o))
    }

    /// Fees paid on an order's fills (BingX reports them negative when paid).
    fn fees(&self, o: &Order) -> Result<Decimal, ExchangeError> {
        // The range is in the exchange's time, like the order's creation time.
        let end = self.api.now_ms();
        let start = (o.created_ms - 60_000).max(end - FILL_WINDOW_MS);
        let q = [
            ("tradingUnit", "COIN".to_string()),
            ("orderId", o.exchange_id.clone()),
            ("startTs", start.to_string()),
            ("endTs", end.to_string()),
        ];
        let data = self
            .api
            .signed("GET", "/openApi/swap/v2/trade/allFillOrders", &q)?;
        let fills = parse::unwrap(&data, "fill_orders");
        let Some(list) = fills.as_array() else {
            return Ok(Decimal::ZERO);
        };
        let paid: Decimal = list
            .iter()
            .map(|f| {
                let key = if f["fee"].is_null() {
                    "commission"
                } else {
                    "fee"
                };
                num(f, key)
            })
            .sum::<Result<Decimal, ExchangeError>>()?;
        Ok(-paid)
    }

    fn placed(&self, order: &NewOrder, exchange_id: String) -> Result<Order, ExchangeError> {
        rest::read_back(order, exchange_id, |symbol, id| self.find(symbol, id))
    }

    fn order_params(order: &NewOrder) -> Result<Vec<(&'static str, String)>, ExchangeError> {
        let mut q = sym(&order.symbol)?;
        q.extend([
            ("side", parse::side_name(order.side).to_string()),
            (
                "positionSide",
                parse::position_side(order.position_side).into(),
            ),
            ("quantity", decimal(order.qty)),
            ("clientOrderId", order.client_id.clone()),
        ]);
        match (order.kind, order.price) {
            (OrderKind::Limit, Some(p)) => q.extend([
                ("type", "LIMIT".to_string()),
                ("price", decimal(p)),
                ("timeInForce", "GTC".into()),
            ]),
            _ => q.push(("type", "MARKET".into())),
        }
        Ok(q)
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
        let data = self
            .api
            .signed("GET", "/openApi/swap/v2/quote/contracts", &sym(symbol)?)?;
        let c = data
            .as_array()
            .and_then(|l| l.iter().find(|c| text(&c["symbol"]) == want))
            .ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?;
        let m = Market {
            tick: increment(c, "pricePrecision")?,
            step: increment(c, "quantityPrecision")?,
            min_qty: num_or_zero(c, "tradeMinQuantity")?,
            min_notional: num_or_zero(c, "tradeMinUSDT")?,
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
        let t = match data.as_array() {
            Some(l) => l.first().cloned().unwrap_or(Value::Null),
            None => data,
        };
        let price = num(&t, "lastPrice")?;
        if price <= Decimal::ZERO {
            return Err(ExchangeError::UnknownSymbol(symbol.to_string()));
        }
        Ok(price)
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
        let q = Self::order_params(order)?;
        match self.api.signed("POST", "/openApi/swap/v2/trade/order", &q) {
            Ok(data) => {
                let o = parse::unwrap(&data, "order");
                let mut id = text(&o["orderID"]);
                if id.is_empty() {
                    id = text(&o["orderId"]);
                }
                self.placed(order, id)
            }
            Err(r) => match ExchangeError::from(r.clone()) {
                // An earlier attempt of this very call got through: read it.
                ExchangeError::Duplicate(_) if matches!(r, Refused::Code { retried: true, .. }) => {
                    self.placed(order, String::new())
                }
                ExchangeError::Duplicate(_) => {
                    Err(ExchangeError::Duplicate(order.client_id.clone()))
                }
                e => Err(e),
            },
        }
    }

    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError> {
        let mut q = sym(symbol)?;
        q.push(("clientOrderId", client_id.to_string()));
        match self
            .api
            .signed("DELETE", "/openApi/swap/v2/trade/order", &q)
        {
            Ok(_) => Ok(()),
            Err(r) if is_unknown_order(&r) => Ok(()),
            Err(r) => Err(r.into()),
        }
    }

    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
        let data = self
            .api
            .signed("GET", "/openApi/swap/v2/trade/openOrders", &sym(symbol)?)?;
        let list = parse::unwrap(&data, "orders");
        let mut open = Vec::new();
        for v in list.as_array().map_or(&[][..], Vec::as_slice) {
            let o = parse::order(v, symbol)?;
            if o.status.is_open() {
                open.push(o);
            }
        }
        Ok(open)
    }

    fn order_by_id(
        &self,
        _symbol: &str,
        _exchange_id: &str,
    ) -> Result<Option<Order>, ExchangeError> {
        Err(ExchangeError::Rejected(
            "order lookup by id is not supported yet".into(),
        ))
    }

    fn cancel_by_id(&self, _symbol: &str, _exchange_id: &str) -> Result<(), ExchangeError> {
        Err(ExchangeError::Rejected(
            "cancel by id is not supported yet".into(),
        ))
    }

    fn executions(
        &self,
        _symbol: &str,
        _since_ms: i64,
    ) -> Result<Vec<crate::exchange::Execution>, ExchangeError> {
        Err(ExchangeError::Rejected(
            "executions are not supported yet".into(),
        ))
    }

    fn funding(
        &self,
        _symbol: &str,
        _since_ms: i64,
    ) -> Result<Vec<crate::exchange::FundingPayment>, ExchangeError> {
        Err(ExchangeError::Rejected(
            "funding reads are not supported yet".into(),
        ))
    }

    fn order(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        self.find(symbol, client_id)
    }

    fn position(&self, symbol: &str, side: Side) -> Result<Position, ExchangeError> {
        let data = self
            .api
            .signed("GET", "/openApi/swap/v2/user/positions", &sym(symbol)?)?;
        // A missing list is not "flat": reading it so would close the cycle.
        if !data.is_array() {
            return Err(ExchangeError::Network(
                "the position answer has no list; trying again".into(),
            ));
        }
        parse::position(&data, side)
    }

    fn balance(&self) -> Result<Decimal, ExchangeError> {
        let data = self
            .api
            .signed("GET", "/openApi/swap/v3/user/balance", &[])?;
        let usdt = data
            .as_array()
            .and_then(|l| l.iter().find(|a| text(&a["asset"]) == "USDT"));
        usdt.map_or(Ok(Decimal::ZERO), |a| num(a, "balance"))
    }
}
