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

use super::api::Api;
use super::types::{Instrument, Kline, Page, Ticker};
use super::MAX_PAGES;
use crate::exchange::rest::{ApiKey, RestSettings};
use crate::exchange::ExchangeError;
use crate::market::candles::{self, Candle, Interval};
use crate::market::catalogue::MarketInfo;

/// The largest page and kline list Bybit serves.
const LIMIT: &str = "1000";

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

    /// Every USDT-settled linear contract that trades, with its last price and
    /// funding, in Bybit's order.
    pub fn markets(&self) -> Result<Vec<MarketInfo>, ExchangeError> {
        let tickers: HashMap<String, Ticker> = self
            .tickers()?
            .into_iter()
            .map(|t| (t.symbol.clone(), t))
            .collect();
        let mut out = Vec::new();
        for i in self.instruments()? {
            if i.status != "Trading" || i.settle_coin != "USDT" || i.quote_coin != "USDT" {
                continue;
            }
            let t = tickers.get(&i.symbol);
            out.push(MarketInfo {
                symbol: format!("{}/{}", i.base_coin, i.quote_coin),
                tick_size: i.price_filter.tick_size,
                qty_step: i.lot_size_filter.qty_step,
                min_qty: i.lot_size_filter.min_order_qty,
                min_notional: i.lot_size_filter.min_notional_value.unwrap_or_default(),
                max_leverage: whole_leverage(&i)?,
                last_price: t.map(|t| t.last_price),
                funding_rate: t.and_then(|t| t.funding_rate),
                next_funding_at: t.and_then(|t| t.next_funding_time).map(|ms| ms / 1000),
            });
        }
        Ok(out)
    }

    fn instruments(&self) -> Result<Vec<Instrument>, ExchangeError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_PAGES {
            let mut q = vec![("category", "linear".to_string()), ("limit", LIMIT.into())];
            if !cursor.is_empty() {
                q.push(("cursor", cursor.clone()));
            }
            let page: Page<Instrument> =
                self.api
                    .public("instruments", "/v5/market/instruments-info", &q)?;
            all.extend(page.list);
            if page.next.is_empty() {
                return Ok(all);
            }
            cursor = page.next;
        }
        Err(ExchangeError::Malformed(format!(
            "instruments: more than {MAX_PAGES} pages"
        )))
    }

    fn tickers(&self) -> Result<Vec<Ticker>, ExchangeError> {
        let q = [("category", "linear".to_string())];
        let page: Page<Ticker> = self.api.public("tickers", "/v5/market/tickers", &q)?;
        Ok(page.list)
    }

    /// The last 1000 candles of `symbol` (`BTC/USDT`), oldest first.
    pub fn candles(&self, symbol: &str, interval: Interval) -> Result<Vec<Candle>, ExchangeError> {
        let q = [
            ("category", "linear".to_string()),
            ("symbol", super::pair(symbol)?),
            ("interval", kline_interval(interval).into()),
            ("limit", LIMIT.into()),
        ];
        let page: Page<Kline> = self.api.public("klines", "/v5/market/kline", &q)?;
        let list = page.list.iter().map(Kline::candle).collect();
        Ok(candles::in_order(list))
    }
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
fn whole_leverage(i: &Instrument) -> Result<u32, ExchangeError> {
    let max = i.leverage_filter.max_leverage.trunc();
    u32::try_from(max).ok().filter(|m| *m >= 1).ok_or_else(|| {
        ExchangeError::Malformed(format!(
            "instruments: {} has a maximum leverage of {}",
            i.symbol, i.leverage_filter.max_leverage
        ))
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
