//! Bybit v5 REST adapter: USDT linear perpetuals (`category=linear`) in
//! hedge mode (`positionIdx` 1 = long, 2 = short). Orders carry our client id as
//! `orderLinkId`, which Bybit keeps unique per account — the base of idempotent orders.
//!
//! Endpoints, from Bybit's own documentation (bybit-exchange/docs, v5):
//! - instruments: `GET /v5/market/instruments-info` — <https://bybit-exchange.github.io/docs/v5/market/instrument>
//! - ticker: `GET /v5/market/tickers` — <https://bybit-exchange.github.io/docs/v5/market/tickers>
//! - server time: `GET /v5/market/time` — <https://bybit-exchange.github.io/docs/v5/market/time>
//! - leverage: `POST /v5/position/set-leverage` — <https://bybit-exchange.github.io/docs/v5/position/leverage>
//! - place: `POST /v5/order/create` — <https://bybit-exchange.github.io/docs/v5/order/create-order>
//! - cancel: `POST /v5/order/cancel` — <https://bybit-exchange.github.io/docs/v5/order/cancel-order>
//! - open and recent orders: `GET /v5/order/realtime` — <https://bybit-exchange.github.io/docs/v5/order/open-order>
//! - older orders: `GET /v5/order/history` — <https://bybit-exchange.github.io/docs/v5/order/order-list>
//! - fills (fees): `GET /v5/execution/list` — <https://bybit-exchange.github.io/docs/v5/order/execution>
//! - positions: `GET /v5/position/list` — <https://bybit-exchange.github.io/docs/v5/position>
//! - balance: `GET /v5/account/wallet-balance` — <https://bybit-exchange.github.io/docs/v5/account/wallet-balance>
//! - signing, headers, recv window: <https://bybit-exchange.github.io/docs/v5/guide>
//! - error codes: <https://bybit-exchange.github.io/docs/v5/error>
//!
//! The account must be in hedge mode on the symbol: orders with `positionIdx`
//! 1/2 are refused in one-way mode, and that refusal is reported as is.

mod api;
mod parse;

use std::collections::HashMap;
use std::sync::Mutex;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use self::api::{Api, Refused};
use super::rest::{self, decimal, num, num_or_zero, text, ApiKey, RestSettings};
use super::{Exchange, ExchangeError, Market, NewOrder, Order, OrderKind};
use super::{Position, Side};

pub struct Bybit {
    api: Api,
    markets: Mutex<HashMap<String, Market>>,
}

/// `BTC/USDT` → `BTCUSDT`.
fn pair(symbol: &str) -> Result<String, ExchangeError> {
    let (base, quote) = rest::split_symbol(symbol)?;
    Ok(format!("{base}{quote}"))
}

fn linear(symbol: &str) -> Result<Vec<(&'static str, String)>, ExchangeError> {
    Ok(vec![
        ("category", "linear".into()),
        ("symbol", pair(symbol)?),
    ])
}

fn first(result: &Value) -> Option<&Value> {
    result["list"].as_array().and_then(|l| l.first())
}

impl Bybit {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Bybit {
        Bybit {
            api: Api::new(settings, key),
            markets: Mutex::new(HashMap::new()),
        }
    }

    /// An order by client id: `/v5/order/realtime` knows open and recently closed
    /// orders; older ones are in `/v5/order/history`.
    fn find(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        let mut q = linear(symbol)?;
        q.push(("orderLinkId", client_id.to_string()));
        let mut found = first(&self.api.get("/v5/order/realtime", &q)?).cloned();
        if found.is_none() {
            found = first(&self.api.get("/v5/order/history", &q)?).cloned();
        }
        let Some(v) = found else { return Ok(None) };
        let mut o = parse::order(&v, symbol)?;
        if o.filled_qty > Decimal::ZERO {
            o.fee = self.fees(symbol, client_id)?;
        }
        Ok(Some(o))
    }

    /// Fees paid on an order's fills, from its executions (`execFee`, positive =
    /// paid). The list covers the last 7 days by default, longer than any order
    /// the bot still asks about.
    fn fees(&self, symbol: &str, client_id: &str) -> Result<Decimal, ExchangeError> {
        let mut q = linear(symbol)?;
        q.push(("orderLinkId", client_id.to_string()));
        q.push(("limit", "100".into()));
        let r = self.api.get("/v5/execution/list", &q)?;
        let Some(list) = r["list"].as_array() else {
            return Ok(Decimal::ZERO);
        };
        list.iter().map(|e| num(e, "execFee")).sum()
    }

    /// The placed order as the exchange reports it; a market order's fill may
    /// take a moment to show, so it is asked for a few times.
    fn placed(&self, order: &NewOrder, exchange_id: String) -> Result<Order, ExchangeError> {
        rest::read_back(order, exchange_id, |symbol, id| self.find(symbol, id))
    }

    fn create_body(order: &NewOrder) -> Result<Value, ExchangeError> {
        let mut body = json!({
            "category": "linear",
            "symbol": pair(&order.symbol)?,
            "side": parse::side_name(order.side),
            "orderType": if order.kind == OrderKind::Market { "Market" } else { "Limit" },
            "qty": decimal(order.qty),
            "positionIdx": parse::position_idx(order.position_side),
            "orderLinkId": order.client_id,
            "reduceOnly": order.reduce_only,
        });
        if let (OrderKind::Limit, Some(p)) = (order.kind, order.price) {
            body["price"] = json!(decimal(p));
            body["timeInForce"] = json!("GTC");
        }
        Ok(body)
    }
}

impl Exchange for Bybit {
    fn name(&self) -> &'static str {
        "bybit"
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
        let r = self
            .api
            .public("/v5/market/instruments-info", &linear(symbol)?)?;
        let i = first(&r).ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?;
        let m = Market {
            tick: num(&i["priceFilter"], "tickSize")?,
            step: num(&i["lotSizeFilter"], "qtyStep")?,
            min_qty: num(&i["lotSizeFilter"], "minOrderQty")?,
            // Absent on older listings: no value minimum then.
            min_notional: num_or_zero(&i["lotSizeFilter"], "minNotionalValue")?,
        };
        if m.tick <= Decimal::ZERO || m.step <= Decimal::ZERO {
            return Err(ExchangeError::Rejected(format!(
                "Bybit lists {symbol} without a tick size or quantity step"
            )));
        }
        if let Ok(mut all) = self.markets.lock() {
            all.insert(symbol.to_string(), m);
        }
        Ok(m)
    }

    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError> {
        let r = self.api.public("/v5/market/tickers", &linear(symbol)?)?;
        let t = first(&r).ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?;
        num(t, "lastPrice")
    }

    /// Bybit takes both sides' leverage in one call; both get the bot's value.
    fn set_leverage(&self, symbol: &str, _side: Side, leverage: u32) -> Result<(), ExchangeError> {
        let body = json!({"category": "linear", "symbol": pair(symbol)?,
            "buyLeverage": leverage.to_string(), "sellLeverage": leverage.to_string()});
        match self.api.post("/v5/position/set-leverage", &body) {
            // 110043: "Set leverage has not been modified" — already that value.
            Ok(_) | Err(Refused::Code { code: 110043, .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn place(&self, order: &NewOrder) -> Result<Order, ExchangeError> {
        match self
            .api
            .post("/v5/order/create", &Self::create_body(order)?)
        {
            Ok(r) => self.placed(order, text(&r["orderId"])),
            // Our own earlier attempt of this very call got through (its answer
            // was lost): the order exists, read it.
            Err(Refused::Code {
                code: 110072,
                retried: true,
                ..
            }) => self.placed(order, String::new()),
            Err(Refused::Code { code: 110072, .. }) => {
                Err(ExchangeError::Duplicate(order.client_id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError> {
        let body = json!({"category": "linear", "symbol": pair(symbol)?, "orderLinkId": client_id});
        match self.api.post("/v5/order/cancel", &body) {
            // 110001: the order does not exist (any more); 110008: it is already
            // filled or cancelled; 110010: already cancelled. A take-profit that
            // fills while it is being moved is not an error.
            Ok(_)
            | Err(Refused::Code {
                code: 110001 | 110008 | 110010,
                ..
            }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        // 50 per page; 20 pages is far beyond what one symbol of one bot holds.
        for _ in 0..20 {
            let mut q = linear(symbol)?;
            q.extend([("openOnly", "0".into()), ("limit", "50".into())]);
            if !cursor.is_empty() {
                q.push(("cursor", cursor.clone()));
            }
            let r = self.api.get("/v5/order/realtime", &q)?;
            if let Some(list) = r["list"].as_array() {
                for v in list {
                    all.push(parse::order(v, symbol)?);
                }
            }
            cursor = text(&r["nextPageCursor"]);
            if cursor.is_empty() {
                break;
            }
        }
        all.retain(|o| o.status.is_open());
        Ok(all)
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
        let r = self.api.get("/v5/position/list", &linear(symbol)?)?;
        // A missing list is not "flat": reading it so would close the cycle.
        if !r["list"].is_array() {
            return Err(ExchangeError::Network(
                "the position answer has no list; trying again".into(),
            ));
        }
        parse::position(&r["list"], side)
    }

    fn balance(&self) -> Result<Decimal, ExchangeError> {
        let q = [
            ("accountType", "UNIFIED".to_string()),
            ("coin", "USDT".into()),
        ];
        let r = self.api.get("/v5/account/wallet-balance", &q)?;
        let coins = first(&r).and_then(|a| a["coin"].as_array());
        coins
            .and_then(|c| c.iter().find(|c| text(&c["coin"]) == "USDT"))
            .map_or(Ok(Decimal::ZERO), |c| num(c, "walletBalance"))
    }
}
