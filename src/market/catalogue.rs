//! The market catalogue (C15): which symbols an exchange lists, their increments
//! and leverage limit, and the last price and funding seen with them.
//!
//! A real exchange's catalogue is fetched from its public instruments and tickers,
//! kept in the shared cache and refreshed every `MARKETS_REFRESH_S` (an hour) by
//! whichever worker first finds it due (`market::refresh`); a failed refresh keeps
//! the old copy and is retried at most once a minute. The paper exchange mirrors
//! the venue its prices follow (`PAPER_PRICES=bybit|bingx`), else lists its own
//! markets. Bot configurations are checked against it by `check`, the one place
//! that rule lives.

use std::time::Instant;

use crate::store::sql::Conn;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use slog::{warn, Logger};

use super::refresh::{self, Copy};
use super::{Quote, Venue};
use crate::exchange::bingx::public::BingxPublic;
use crate::exchange::bybit::public::BybitPublic;
use crate::exchange::paper::listings;
use crate::exchange::paper::replay::PaperPrices;
use crate::exchange::rest::{Budget, RestSettings};
use crate::exchange::ExchangeError;
use crate::log::rfc3339;
use crate::money;
use crate::store::market_cache::{self, Schedule};
use crate::store::StoreError;

/// After a failed refresh of a catalogue that has a copy, the next try waits this
/// long: an exchange outage costs one request a minute, not one per request.
const RETRY_MS: i64 = 60_000;

/// One market as `GET /api/markets` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketInfo {
    /// Our form: `BTC/USDT`.
    pub symbol: String,
    pub tick_size: Decimal,
    pub qty_step: Decimal,
    pub min_qty: Decimal,
    /// Smallest order value in USDT; 0 when the exchange sets none.
    pub min_notional: Decimal,
    pub max_leverage: u32,
    pub last_price: Option<Decimal>,
    pub funding_rate: Option<Decimal>,
    /// Unix seconds (the API shows it in RFC 3339, like every `*_at`).
    pub next_funding_at: Option<i64>,
}

/// A real exchange's catalogue as fetched: its markets, and the entries left out
/// because they were malformed (described, for the log).
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub markets: Vec<MarketInfo>,
    pub skipped: Vec<String>,
}

/// A fetched catalogue smaller than this share of the cached one (in %) is taken
/// for a bad answer, not for delistings: one bad answer must not wipe it.
const MIN_KEPT_PERCENT: usize = 50;

impl MarketInfo {
    pub fn to_json(&self) -> Value {
        json!({
            "symbol": self.symbol,
            "tick_size": money::json(self.tick_size),
            "qty_step": money::json(self.qty_step),
            "min_qty": money::json(self.min_qty),
            "min_notional": money::json(self.min_notional),
            "max_leverage": self.max_leverage,
            "last_price": money::json_opt(self.last_price),
            "funding_rate": money::json_opt(self.funding_rate),
            "next_funding_at": self.next_funding_at.map(rfc3339),
        })
    }
}

/// Where an exchange's catalogue comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The paper exchange's own listings (walk and replay prices).
    Paper,
    /// A real exchange's public data (that exchange, or paper following it).
    Live(Venue),
}

impl Source {
    /// The source of `exchange` (`paper`, `bybit`, `bingx`) under `PAPER_PRICES`.
    pub fn of(exchange: &str, paper: &PaperPrices) -> Option<Source> {
        match exchange {
            "paper" => Some(match paper {
                PaperPrices::Live(v) => Source::Live(*v),
                _ => Source::Paper,
            }),
            other => Venue::parse(other)
                .filter(|v| v.name() == other)
                .map(Source::Live),
        }
    }
}

/// What the catalogue needs from the deployment.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub rest: &'a RestSettings,
    /// `MARKETS_REFRESH_S` in ms.
    pub refresh_ms: i64,
    /// The request's deadline for exchange calls (`refresh::FETCH_BUDGET`).
    pub until: Instant,
}

/// The cache key of a venue's catalogue.
fn item(v: Venue) -> String {
    format!("catalogue:{}", v.name())
}

/// Refreshes `venue`'s cached catalogue if it is due (one worker fetches, the
/// others keep serving the old copy); whether a copy exists afterwards.
pub fn ensure(
    conn: &mut Conn,
    venue: Venue,
    s: Settings<'_>,
    log: &Logger,
) -> Result<Copy, StoreError> {
    let schedule = Schedule {
        period_ms: s.refresh_ms,
        retry_ms: RETRY_MS,
        hold_ms: refresh::HOLD_MS,
    };
    let key = item(venue);
    let budget = Budget::new(s.rest, s.until);
    refresh::refresh(
        conn,
        &key,
        schedule,
        s.until,
        log,
        |c| fetch(c, venue, s.rest, &budget, log),
        |c, markets, now| market_cache::save_catalogue(c, &key, venue.name(), &markets, now),
    )
}

/// Calls the exchange (the one place the catalogue does). Malformed entries are
/// logged and left out; an empty answer, or one that lost more than half of the
/// cached markets, is a failed fetch (the old copy stays).
fn fetch(
    conn: &Conn,
    venue: Venue,
    rest: &RestSettings,
    budget: &Budget,
    log: &Logger,
) -> Result<Vec<MarketInfo>, ExchangeError> {
    let got = match venue {
        Venue::Bybit => BybitPublic::new(rest).markets(budget)?,
        Venue::Bingx => BingxPublic::new(rest).markets(budget)?,
    };
    if !got.skipped.is_empty() {
        warn!(log, "market catalogue: malformed entries left out";
              "exchange" => venue.name(), "count" => got.skipped.len(),
              "first" => got.skipped.iter().take(5).cloned().collect::<Vec<_>>().join("; "));
    }
    let before = market_cache::count(conn, venue.name())
        .map_err(|e| ExchangeError::Malformed(format!("reading the cached catalogue: {e}")))?;
    plausible(got.markets.len(), before)?;
    Ok(got.markets)
}

/// Whether a catalogue of `now` markets may replace one of `before`.
fn plausible(now: usize, before: usize) -> Result<(), ExchangeError> {
    if now == 0 || now * 100 < before * MIN_KEPT_PERCENT {
        return Err(ExchangeError::Malformed(format!(
            "catalogue: {now} markets where {before} were listed"
        )));
    }
    Ok(())
}

/// Every market of `source`, by symbol; `None` when a real exchange's catalogue has
/// never been fetched and cannot be now.
pub fn markets(
    conn: &mut Conn,
    source: Source,
    s: Settings<'_>,
    log: &Logger,
) -> Result<Option<Vec<MarketInfo>>, StoreError> {
    match source {
        Source::Paper => paper_markets(conn).map(Some),
        Source::Live(v) => {
            if ensure(conn, v, s, log)? == Copy::Missing {
                return Ok(None);
            }
            let all = market_cache::catalogue(conn, v.name())?;
            Ok(Some(all))
        }
    }
}

/// A live quote applied to a cached market: the one place fresher prices from
/// the price board replace the catalogue's (hourly) last price and funding. Only
/// symbols someone follows are on the board; the others keep the cached figures.
pub fn with_quote(mut m: MarketInfo, quote: Option<Quote>) -> MarketInfo {
    if let Some(q) = quote {
        m.last_price = Some(q.last);
        if q.funding_rate.is_some() {
            m.funding_rate = q.funding_rate;
            m.next_funding_at = q.next_funding_ms.map(|ms| ms / 1000);
        }
    }
    m
}

/// The paper exchange's majors and every market it has traded, with the price it
/// last traded at (its start price is not a price anyone traded at: `null`).
fn paper_markets(conn: &Conn) -> Result<Vec<MarketInfo>, StoreError> {
    let traded = listings::traded(conn)?;
    let mut symbols: Vec<String> = listings::MAJORS.iter().map(|s| s.to_string()).collect();
    symbols.extend(traded.iter().map(|(s, _)| s.clone()));
    symbols.sort();
    symbols.dedup();
    Ok(symbols
        .into_iter()
        .filter_map(|symbol| {
            let l = listings::listing(&symbol)?;
            let last = traded.iter().find(|(s, _)| *s == symbol).map(|(_, p)| *p);
            Some(paper_info(symbol, l, last))
        })
        .collect())
}

fn paper_info(symbol: String, l: listings::PaperListing, last: Option<Decimal>) -> MarketInfo {
    MarketInfo {
        symbol,
        tick_size: l.market.tick,
        qty_step: l.market.step,
        min_qty: l.market.min_qty,
        min_notional: l.market.min_notional,
        max_leverage: l.max_leverage,
        last_price: last,
        funding_rate: None,
        next_funding_at: None,
    }
}

/// What the catalogue says of one symbol.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    Yes(MarketInfo),
    No,
    /// A real exchange's catalogue was never fetched and cannot be now.
    Unknown,
}

/// `symbol` in `source`'s catalogue, refreshing a live one when due.
pub fn lookup(
    conn: &mut Conn,
    source: Source,
    symbol: &str,
    s: Settings<'_>,
    log: &Logger,
) -> Result<Listed, StoreError> {
    if let Source::Live(v) = source {
        ensure(conn, v, s, log)?;
    }
    cached(conn, source, symbol)
}

/// `symbol` in the catalogue as cached now, without calling any exchange (for a
/// check inside a write transaction, after `ensure`).
pub fn cached(conn: &Conn, source: Source, symbol: &str) -> Result<Listed, StoreError> {
    match source {
        Source::Paper => Ok(listings::listing(symbol).map_or(Listed::No, |l| {
            Listed::Yes(paper_info(symbol.to_string(), l, None))
        })),
        Source::Live(v) => {
            let s = market_cache::state(conn, &item(v))?;
            if s.is_none_or(|s| s.fetched_ms == 0) {
                return Ok(Listed::Unknown);
            }
            Ok(market_cache::market(conn, v.name(), symbol)?.map_or(Listed::No, Listed::Yes))
        }
    }
}

/// A configuration's market against the catalogue: the symbol must be listed on
/// `exchange` and `leverage` within its maximum. `Unknown` passes (the exchange
/// is out of reach: the other checks still apply, and the exchange refuses at
/// start what it does not take). The error is `(field, message)`.
pub fn check(
    exchange: &str,
    symbol: &str,
    leverage: u32,
    listed: &Listed,
) -> Result<(), (&'static str, String)> {
    match listed {
        Listed::Unknown => Ok(()),
        Listed::No => Err((
            "symbol",
            format!("symbol {symbol} is not listed on {exchange}"),
        )),
        Listed::Yes(m) if leverage > m.max_leverage => Err((
            "leverage",
            format!(
                "leverage {leverage} is above {symbol}'s maximum of {} on {exchange}",
                m.max_leverage
            ),
        )),
        Listed::Yes(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    fn btc(max_leverage: u32) -> MarketInfo {
        MarketInfo {
            symbol: "BTC/USDT".into(),
            tick_size: dec!(0.1),
            qty_step: dec!(0.001),
            min_qty: dec!(0.001),
            min_notional: dec!(5),
            max_leverage,
            last_price: Some(dec!(60000.5)),
            funding_rate: Some(dec!(0.0001)),
            next_funding_at: Some(1_700_000_000),
        }
    }

    #[test]
    fn the_rule_names_the_symbol_the_exchange_and_the_maximum() {
        let yes = Listed::Yes(btc(100));
        assert_eq!(check("bybit", "BTC/USDT", 100, &yes), Ok(()));
        assert_eq!(
            check("bybit", "BTC/USDT", 150, &yes),
            Err((
                "leverage",
                "leverage 150 is above BTC/USDT's maximum of 100 on bybit".to_string()
            ))
        );
        assert_eq!(
            check("bybit", "BTC/USDX", 10, &Listed::No),
            Err((
                "symbol",
                "symbol BTC/USDX is not listed on bybit".to_string()
            ))
        );
        assert_eq!(check("bybit", "BTC/USDT", 125, &Listed::Unknown), Ok(()));
    }

    #[test]
    fn an_empty_or_shrunken_catalogue_is_a_failed_fetch() {
        assert!(plausible(5, 0).is_ok());
        assert!(plausible(0, 0).is_err());
        assert!(plausible(0, 5).is_err());
        assert!(plausible(50, 100).is_ok());
        assert!(plausible(49, 100).is_err());
        // Growth and small delistings are normal.
        assert!(plausible(120, 100).is_ok());
        assert!(plausible(97, 100).is_ok());
    }

    #[test]
    fn paper_follows_its_live_venue_else_its_own_listings() {
        assert_eq!(Source::of("paper", &PaperPrices::Walk), Some(Source::Paper));
        assert_eq!(
            Source::of("paper", &PaperPrices::Live(Venue::Bingx)),
            Some(Source::Live(Venue::Bingx))
        );
        assert_eq!(
            Source::of("bybit", &PaperPrices::Walk),
            Some(Source::Live(Venue::Bybit))
        );
        assert_eq!(Source::of("BYBIT", &PaperPrices::Walk), None);
        assert_eq!(Source::of("ftx", &PaperPrices::Walk), None);
    }

    #[test]
    fn a_live_quote_replaces_the_cached_price_and_funding() {
        let q = Quote {
            last: dec!(61000),
            bid: dec!(60999.9),
            ask: dec!(61000.1),
            mark: dec!(61000),
            funding_rate: Some(dec!(0.0002)),
            next_funding_ms: Some(1_700_028_800_000),
            time_ms: 1,
        };
        let m = with_quote(btc(100), Some(q));
        assert_eq!(
            (m.last_price, m.funding_rate, m.next_funding_at),
            (Some(dec!(61000)), Some(dec!(0.0002)), Some(1_700_028_800))
        );
        assert_eq!(with_quote(btc(100), None), btc(100));
        let shown = btc(100).to_json();
        assert_eq!(shown["tick_size"], json!(0.1));
        assert_eq!(shown["next_funding_at"], json!("2023-11-14T22:13:20Z"));
    }
}
