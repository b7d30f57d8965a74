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
//! `MAX_LEVERAGE`, BingX's cap on every contract, so the check at save refuses
//! only what no BingX contract takes; the effective check of a lower per-symbol
//! limit is the exchange's own, when the bot starts.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::api::Api;
use super::types::{Contract, Kline, Premium, Ticker};
use crate::exchange::rest::{wire, ApiKey, Budget, RestSettings};
use crate::exchange::ExchangeError;
use crate::market::candles::{self, Candle, Interval};
use crate::market::catalogue::{Fetched, MarketInfo};

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

    /// An all-symbols list, each entry read on its own (malformed ones described
    /// in `skipped`).
    fn list<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        budget: &Budget,
        skipped: &mut Vec<String>,
    ) -> Result<Vec<T>, ExchangeError> {
        let data = self.api.public(path, &[], budget)?;
        let raw: Vec<Box<RawValue>> = wire::parse(what, &data)?;
        let (good, bad) = wire::parse_each(what, &raw);
        skipped.extend(bad);
        Ok(good)
    }

    /// Every online USDT-margined perpetual, with its last price and funding;
    /// malformed entries are left out and described.
    pub fn markets(&self, budget: &Budget) -> Result<Fetched, ExchangeError> {
        let mut skipped = Vec::new();
        let contracts: Vec<Contract> = self.list(
            "contracts",
            "/openApi/swap/v2/quote/contracts",
            budget,
            &mut skipped,
        )?;
        let tickers: HashMap<String, Ticker> = self
            .list::<Ticker>(
                "tickers",
                "/openApi/swap/v2/quote/ticker",
                budget,
                &mut skipped,
            )?
            .into_iter()
            .map(|t| (t.symbol.clone(), t))
            .collect();
        let funding: HashMap<String, Premium> = self
            .list::<Premium>(
                "funding",
                "/openApi/swap/v2/quote/premiumIndex",
                budget,
                &mut skipped,
            )?
            .into_iter()
            .map(|p| (p.symbol.clone(), p))
            .collect();
        let mut markets = Vec::new();
        for c in contracts {
            let Some(base) = usdt_perpetual(&c) else {
                continue;
            };
            // The smallest order is needed (a bot sizes its legs by it): no
            // silent 0.
            let Some(min_qty) = c.trade_min_quantity else {
                skipped.push(format!("contracts: {} has no tradeMinQuantity", c.symbol));
                continue;
            };
            let f = funding.get(&c.symbol);
            markets.push(MarketInfo {
                symbol: format!("{base}/USDT"),
                tick_size: super::increment(c.price_precision),
                qty_step: super::increment(c.quantity_precision),
                min_qty,
                min_notional: c.trade_min_usdt.unwrap_or_default(),
                max_leverage: MAX_LEVERAGE,
                last_price: tickers.get(&c.symbol).map(|t| t.last_price),
                funding_rate: f.and_then(|f| f.last_funding_rate),
                next_funding_at: f.and_then(|f| f.next_funding_time).map(|ms| ms / 1000),
            });
        }
        Ok(Fetched { markets, skipped })
    }

    /// The last 1000 candles of `symbol` (`BTC/USDT`), oldest first.
    pub fn candles(
        &self,
        symbol: &str,
        interval: Interval,
        budget: &Budget,
    ) -> Result<Vec<Candle>, ExchangeError> {
        let params = [
            ("symbol", super::pair(symbol)?),
            ("interval", interval.name().to_string()),
            ("limit", "1000".to_string()),
        ];
        let data = self
            .api
            .public("/openApi/swap/v3/quote/klines", &params, budget)?;
        let list: Vec<Kline> = wire::parse("klines", &data)?;
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

/// The base asset of an online USDT-margined perpetual (`BTC` of `BTC-USDT`);
/// `None` for anything else (another margin asset, an odd symbol).
fn usdt_perpetual(c: &Contract) -> Option<&str> {
    let (base, quote) = c.symbol.split_once('-')?;
    let plain = !base.is_empty() && !quote.contains('-');
    (c.status == ONLINE && c.currency == "USDT" && quote == "USDT" && plain).then_some(base)
}
