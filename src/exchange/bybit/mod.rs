//! Bybit v5 REST adapter: USDT linear perpetuals (`category=linear`) in
//! hedge mode (`positionIdx` 1 = long, 2 = short). Orders carry our client id as
//! `orderLinkId`, which Bybit keeps unique per account — the base of idempotent orders.
//!
//! Endpoints, from Bybit's own documentation (bybit-exchange/docs, v5):
//! - instruments: `GET /v5/market/instruments-info` — <https://bybit-exchange.github.io/docs/v5/market/instrument>
//! - ticker: `GET /v5/market/tickers` — <https://bybit-exchange.github.io/docs/v5/market/tickers>
//! - server time: `GET /v5/market/time` — <https://bybit-exchange.github.io/docs/v5/market/time>
//! - leverage: `POST /v5/position/set-leverage` — <https://bybit-exchange.github.io/docs/v5/position/leverage>
//! - margin mode: `GET /v5/account/info` — <https://bybit-exchange.github.io/docs/v5/account/account-info>
//! - place (active and conditional): `POST /v5/order/create` — <https://bybit-exchange.github.io/docs/v5/order/create-order>
//! - cancel: `POST /v5/order/cancel` — <https://bybit-exchange.github.io/docs/v5/order/cancel-order>
//! - open and recent orders: `GET /v5/order/realtime` — <https://bybit-exchange.github.io/docs/v5/order/open-order>
//! - older orders: `GET /v5/order/history` — <https://bybit-exchange.github.io/docs/v5/order/order-list>
//! - fills: `GET /v5/execution/list` — <https://bybit-exchange.github.io/docs/v5/order/execution>
//! - funding: `GET /v5/account/transaction-log` — <https://bybit-exchange.github.io/docs/v5/account/transaction-log>
//! - positions: `GET /v5/position/list` — <https://bybit-exchange.github.io/docs/v5/position>
//! - balance: `GET /v5/account/wallet-balance` — <https://bybit-exchange.github.io/docs/v5/account/wallet-balance>
//! - API key permissions: `GET /v5/user/query-api` — <https://bybit-exchange.github.io/docs/v5/user/apikey-info> (see `key_info`)
//! - signing, headers, recv window: <https://bybit-exchange.github.io/docs/v5/guide>
//! - error codes: <https://bybit-exchange.github.io/docs/v5/error> (see `errors`)
//!
//! The account must be in hedge mode on the symbol: orders with `positionIdx`
//! 1/2 are refused in one-way mode, and that refusal is `PositionMode`.

mod api;
mod errors;
mod history;
mod key_info;
mod leverage;
mod orders;
pub(crate) mod parse;
pub mod public;
pub(crate) mod types;

use std::collections::HashMap;
use std::sync::Mutex;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;

use self::api::Api;
use self::types::{Instrument, Page, RawPosition, Ticker, Wallet};
use super::rest::{self, ApiKey, RestSettings};
use super::{Exchange, ExchangeError, Execution, FundingPayment, KeyInfo, Market, NewOrder};
use super::{Order, Position, Side};

pub struct Bybit {
    api: Api,
    markets: Mutex<HashMap<String, Market>>,
}

/// `BTC/USDT` → `BTCUSDT`.
pub(crate) fn pair(symbol: &str) -> Result<String, ExchangeError> {
    let (base, quote) = rest::split_symbol(symbol)?;
    Ok(format!("{base}{quote}"))
}

fn linear(symbol: &str) -> Result<Vec<(&'static str, String)>, ExchangeError> {
    Ok(vec![
        ("category", "linear".into()),
        ("symbol", pair(symbol)?),
    ])
}

/// Pages one list answer walks at most: far beyond what one symbol of one
/// account holds, and a bound if a cursor never ends.
const MAX_PAGES: usize = 50;

impl Bybit {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Bybit {
        Bybit {
            api: Api::new(settings, key),
            markets: Mutex::new(HashMap::new()),
        }
    }

    /// Every entry of a cursor-paginated list (`query` without `cursor`).
    fn pages<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<Vec<T>, ExchangeError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_PAGES {
            let mut q = query.to_vec();
            if !cursor.is_empty() {
                q.push(("cursor", cursor.clone()));
            }
            let page: Page<T> = self.api.get(what, path, &q)?;
            all.extend(page.list);
            if page.next.is_empty() {
                return Ok(all);
            }
            cursor = page.next;
        }
        Err(ExchangeError::Malformed(format!(
            "{what}: more than {MAX_PAGES} pages"
        )))
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
        let r: Page<Instrument> = self.api.public(
            "instrument",
            "/v5/market/instruments-info",
            &linear(symbol)?,
        )?;
        let i = r
            .list
            .first()
            .ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?;
        let m = Market {
            tick: i.price_filter.tick_size,
            step: i.lot_size_filter.qty_step,
            min_qty: i.lot_size_filter.min_order_qty,
            min_notional: i
                .lot_size_filter
                .min_notional_value
                .unwrap_or(Decimal::ZERO),
        };
        if m.tick <= Decimal::ZERO || m.step <= Decimal::ZERO {
            return Err(ExchangeError::Malformed(format!(
                "instrument: Bybit lists {symbol} without a tick size or quantity step"
            )));
        }
        if let Ok(mut all) = self.markets.lock() {
            all.insert(symbol.to_string(), m);
        }
        Ok(m)
    }

    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError> {
        let r: Page<Ticker> = self
            .api
            .public("ticker", "/v5/market/tickers", &linear(symbol)?)?;
        let t = r
            .list
            .first()
            .ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?;
        Ok(t.last_price)
    }

    /// The bot's side only in isolated margin; both sides in cross margin, where
    /// Bybit requires them equal (`leverage`).
    fn set_leverage(&self, symbol: &str, side: Side, leverage: u32) -> Result<(), ExchangeError> {
        leverage::set(self, symbol, side, leverage)
    }

    fn place(&self, order: &NewOrder) -> Result<Order, ExchangeError> {
        orders::place(self, order)
    }

    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError> {
        orders::cancel(self, symbol, ("orderLinkId", client_id))
    }

    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
        orders::open(self, symbol)
    }

    fn order(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        orders::find(self, symbol, ("orderLinkId", client_id))
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
        let r: Page<RawPosition> =
            self.api
                .get("positions", "/v5/position/list", &linear(symbol)?)?;
        Ok(parse::position(&r.list, side))
    }

    fn balance(&self) -> Result<Decimal, ExchangeError> {
        let q = [
            ("accountType", "UNIFIED".to_string()),
            ("coin", "USDT".into()),
        ];
        let r: Page<Wallet> = self
            .api
            .get("wallet balance", "/v5/account/wallet-balance", &q)?;
        // A unified account that never held USDT lists no USDT coin: none held.
        let usdt = r
            .list
            .iter()
            .flat_map(|w| &w.coin)
            .find(|c| c.coin == "USDT");
        Ok(usdt.map_or(Decimal::ZERO, |c| c.wallet_balance))
    }

    fn key_info(&self, by: std::time::Instant) -> Result<KeyInfo, ExchangeError> {
        key_info::key_info(self, by)
    }

    fn hedge_mode(&self, symbol: &str) -> Result<bool, ExchangeError> {
        key_info::hedge_mode(self, symbol)
    }
}
