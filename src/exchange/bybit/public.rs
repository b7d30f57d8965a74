//! Bybit's public market data for the whole exchange: every linear instrument with
//! its ticker (the market catalogue) and klines (candles). No key: these endpoints
//! are unsigned.
//!
//! - instruments: `GET /v5/market/instruments-info?category=linear&limit=1000`,
//!   paginated by `cursor` — <https://bybit-exchange.github.io/docs/v5/market/instrument>
//! - tickers: `GET /v5/market/tickers?category=linear` (every symbol at once) —
//!   <https://bybit-exchange.github.io/docs/v5/market/tickers>
//! - klines: `GET /v5/market/kline` (newest first, at most 1000) —
//!   <https://bybit-exchange.github.io/docs/v5/market/kline>

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::api::Api;
use super::types::{Instrument, Kline, Page, Ticker};
use super::MAX_PAGES;
use crate::exchange::rest::{wire, ApiKey, Budget, RestSettings};
use crate::exchange::ExchangeError;
use crate::market::candles::{self, Candle, Interval};
use crate::market::catalogue::{Fetched, MarketInfo};

/// The largest page and kline list Bybit serves.
const LIMIT: &str = "1000";

/// The contract type of a perpetual; `category=linear` also lists dated futures
/// (`LinearFutures`, `BTCUSDT-26DEC25`), which would take the perpetual's row.
const PERPETUAL: &str = "LinearPerpetual";

pub struct BybitPublic {
    api: Api,
}

impl BybitPublic {
    pub fn new(settings: &RestSettings) -> BybitPublic {
        let no_key = ApiKey {
            key: String::new(),
            secret: String::new(),
        };
        BybitPublic {
            api: Api::new(settings, no_key),
        }
    }

    /// One market-data call, tried once within `budget`, its `result` as `T`.
    fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
        budget: &Budget,
    ) -> Result<T, ExchangeError> {
        let raw = self.api.market_data(path, query, budget)?;
        wire::parse(what, &raw)
    }

    /// Every USDT-settled linear perpetual that trades, with its last price and
    /// funding, in Bybit's order; malformed entries are left out and described.
    pub fn markets(&self, budget: &Budget) -> Result<Fetched, ExchangeError> {
        let (tickers, mut skipped) = self.tickers(budget)?;
        let tickers: HashMap<String, Ticker> =
            tickers.into_iter().map(|t| (t.symbol.clone(), t)).collect();
        let (instruments, bad) = self.instruments(budget)?;
        skipped.extend(bad);
        let mut markets = Vec::new();
        for i in instruments.iter().filter(|i| usdt_perpetual(i)) {
            let max_leverage = match whole_leverage(i) {
                Ok(m) => m,
                Err(why) => {
                    skipped.push(why);
                    continue;
                }
            };
            let t = tickers.get(&i.symbol);
            markets.push(MarketInfo {
                symbol: format!("{}/{}", i.base_coin, i.quote_coin),
                tick_size: i.price_filter.tick_size,
                qty_step: i.lot_size_filter.qty_step,
                min_qty: i.lot_size_filter.min_order_qty,
                min_notional: i.lot_size_filter.min_notional_value.unwrap_or_default(),
                max_leverage,
                last_price: t.map(|t| t.last_price),
                funding_rate: t.and_then(|t| t.funding_rate),
                next_funding_at: t.and_then(|t| t.next_funding_time).map(|ms| ms / 1000),
            });
        }
        Ok(Fetched { markets, skipped })
    }

    fn instruments(
        &self,
        budget: &Budget,
    ) -> Result<(Vec<Instrument>, Vec<String>), ExchangeError> {
        let mut all = Vec::new();
        let mut skipped = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_PAGES {
            let mut q = vec![("category", "linear".to_string()), ("limit", LIMIT.into())];
            if !cursor.is_empty() {
                q.push(("cursor", cursor.clone()));
            }
            let page: Page<Box<RawValue>> =
                self.get("instruments", "/v5/market/instruments-info", &q, budget)?;
            let (good, bad) = wire::parse_each("instruments", &page.list);
            all.extend(good);
            skipped.extend(bad);
            if page.next.is_empty() {
                return Ok((all, skipped));
            }
            cursor = page.next;
        }
        Err(ExchangeError::Malformed(format!(
            "instruments: more than {MAX_PAGES} pages"
        )))
    }

    fn tickers(&self, budget: &Budget) -> Result<(Vec<Ticker>, Vec<String>), ExchangeError> {
        let q = [("category", "linear".to_string())];
        let page: Page<Box<RawValue>> = self.get("tickers", "/v5/market/tickers", &q, budget)?;
        Ok(wire::parse_each("tickers", &page.list))
    }

    /// The last 1000 candles of `symbol` (`BTC/USDT`), oldest first.
    pub fn candles(
        &self,
        symbol: &str,
        interval: Interval,
        budget: &Budget,
    ) -> Result<Vec<Candle>, ExchangeError> {
        let q = [
            ("category", "linear".to_string()),
            ("symbol", super::pair(symbol)?),
            ("interval", kline_interval(interval).into()),
            ("limit", LIMIT.into()),
        ];
        let page: Page<Kline> = self.get("klines", "/v5/market/kline", &q, budget)?;
        let list = page.list.iter().map(Kline::candle).collect();
        Ok(candles::in_order(list))
    }
}

/// A USDT-settled perpetual that trades, whose symbol is its base and quote (so
/// that nothing else can take its `BASE/USDT` row).
fn usdt_perpetual(i: &Instrument) -> bool {
    i.status == "Trading"
        && i.contract_type == PERPETUAL
        && i.settle_coin == "USDT"
        && i.quote_coin == "USDT"
        && i.symbol == format!("{}{}", i.base_coin, i.quote_coin)
}

/// Bybit's kline interval names: minutes, or `D`.
fn kline_interval(i: Interval) -> &'static str {
    match i {
        Interval::M1 => "1",
        Interval::M5 => "5",
        Interval::M15 => "15",
        Interval::H1 => "60",
        Interval::H4 => "240",
        Interval::D1 => "D",
    }
}

/// `maxLeverage` (`"100.00"`) as the whole number a bot configuration holds: a
/// fractional maximum (`"12.50"`) allows its whole part.
fn whole_leverage(i: &Instrument) -> Result<u32, String> {
    let max = i.leverage_filter.max_leverage.trunc();
    u32::try_from(max).ok().filter(|m| *m >= 1).ok_or_else(|| {
        format!(
            "instruments: {} has a maximum leverage of {}",
            i.symbol, i.leverage_filter.max_leverage
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_map_to_bybit_names() {
        let names: Vec<_> = Interval::ALL.into_iter().map(kline_interval).collect();
        assert_eq!(names, ["1", "5", "15", "60", "240", "D"]);
    }
}
