//! BingX's public market data for the whole exchange: every USDT-M perpetual with
//! its ticker and funding (the market catalogue) and klines (candles). Unsigned:
//! BingX documents these as "No API KEY signature required".
//!
//! - contracts: `GET /openApi/swap/v2/quote/contracts` (no symbol = all)
//! - tickers: `GET /openApi/swap/v2/quote/ticker` (no symbol = all)
//! - funding: `GET /openApi/swap/v2/quote/premiumIndex` (no symbol = all)
//! - klines: `GET /openApi/swap/v3/quote/klines` (`limit` up to 1440)
//!
//! BingX publishes no per-contract leverage limit without a key (its signed
//! `trade/leverage` answers one per account and symbol): the catalogue shows
//! `MAX_LEVERAGE`, BingX's cap on every contract, and the exchange still refuses a
//! lower per-symbol limit when a bot starts.

use std::collections::HashMap;

use super::api::Api;
use super::types::{Contract, Kline, Premium, Ticker};
use crate::exchange::rest::{wire, ApiKey, RestSettings};
use crate::exchange::ExchangeError;
use crate::market::candles::{self, Candle, Interval};
use crate::market::catalogue::MarketInfo;

/// BingX's highest leverage on any USDT-M perpetual.
pub const MAX_LEVERAGE: u32 = 125;

/// `status` of a contract that trades.
const ONLINE: i64 = 1;

pub struct BingxPublic {
    api: Api,
}

impl BingxPublic {
    pub fn new(settings: &RestSettings) -> BingxPublic {
        let no_key = ApiKey {
            key: String::new(),
            secret: String::new(),
        };
        BingxPublic {
            api: Api::new(settings, no_key),
        }
    }

    fn list<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<T>, ExchangeError> {
        let data = self.api.public(path, params)?;
        wire::parse(what, &data)
    }

    /// Every online USDT-settled contract, with its last price and funding.
    pub fn markets(&self) -> Result<Vec<MarketInfo>, ExchangeError> {
        let contracts: Vec<Contract> =
            self.list("contracts", "/openApi/swap/v2/quote/contracts", &[])?;
        let tickers: HashMap<String, Ticker> = self
            .list::<Ticker>("tickers", "/openApi/swap/v2/quote/ticker", &[])?
            .into_iter()
            .map(|t| (t.symbol.clone(), t))
            .collect();
        let funding: HashMap<String, Premium> = self
            .list::<Premium>("funding", "/openApi/swap/v2/quote/premiumIndex", &[])?
            .into_iter()
            .map(|p| (p.symbol.clone(), p))
            .collect();
        let mut out = Vec::new();
        for c in contracts {
            if c.status != ONLINE || c.currency != "USDT" {
                continue;
            }
            let Some((base, quote)) = c.symbol.split_once('-') else {
                continue;
            };
            let f = funding.get(&c.symbol);
            out.push(MarketInfo {
                symbol: format!("{base}/{quote}"),
                tick_size: super::increment(c.price_precision),
                qty_step: super::increment(c.quantity_precision),
                min_qty: c.trade_min_quantity.unwrap_or_default(),
                min_notional: c.trade_min_usdt.unwrap_or_default(),
                max_leverage: MAX_LEVERAGE,
                last_price: tickers.get(&c.symbol).map(|t| t.last_price),
                funding_rate: f.and_then(|f| f.last_funding_rate),
                next_funding_at: f.and_then(|f| f.next_funding_time).map(|ms| ms / 1000),
            });
        }
        Ok(out)
    }

    /// The last 1000 candles of `symbol` (`BTC/USDT`), oldest first.
    pub fn candles(&self, symbol: &str, interval: Interval) -> Result<Vec<Candle>, ExchangeError> {
        let params = [
            ("symbol", super::pair(symbol)?),
            ("interval", interval.name().to_string()),
            ("limit", "1000".to_string()),
        ];
        let list: Vec<Kline> = self.list("klines", "/openApi/swap/v3/quote/klines", &params)?;
        let all = list
            .iter()
            .map(|k| Candle {
                start_ms: k.time,
                open: k.open,
                high: k.high,
                low: k.low,
                close: k.close,
                volume: k.volume,
            })
            .collect();
        Ok(candles::in_order(all))
    }
}
