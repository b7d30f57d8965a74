//! Candles for `GET /api/markets/candles`: a live venue's klines through the
//! shared cache, or the paper exchange's recorded one-minute buckets.
//!
//! One cache entry per (venue, symbol, interval) holds the last 1000 candles (the
//! most the exchange returns); every request slices it. With the refresh periods
//! of `Interval::refresh_ms` and the claim of `market::refresh`, a thousand
//! dashboards polling one chart cost one exchange request per period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::store::sql::Conn;
use slog::Logger;

use super::candles::{self, Candle, Interval};
use super::catalogue::Source;
use super::refresh::{self, Copy};
use super::Venue;
use crate::exchange::bingx::public::BingxPublic;
use crate::exchange::bybit::public::BybitPublic;
use crate::exchange::rest::{Budget, RestSettings};
use crate::exchange::ExchangeError;
use crate::store::market_cache::{self, Schedule};
use crate::store::{now_ms, StoreError};

/// The most candles one request returns (and the cache holds).
pub const MAX_LIMIT: usize = 1000;

/// Candles nobody has read for this long (a closed chart) are dropped from the
/// cache, or for twice the longest refresh period when that is longer.
const SWEEP_AFTER_MS: i64 = 3_600_000;

/// Parsed copies kept per worker; past this many keys the map starts over.
const PARSED_KEYS: usize = 256;

/// What candles need from the deployment.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub rest: &'a RestSettings,
    /// `CANDLES_REFRESH_MS`: the refresh period of 1m and 5m candles.
    pub refresh_ms: u64,
    /// The request's deadline for exchange calls (`refresh::FETCH_BUDGET`).
    pub until: Instant,
}

/// The cache key of (venue, symbol, interval); `market_cache`'s sweep builds the
/// same text from the table's columns.
fn item(v: Venue, symbol: &str, interval: Interval) -> String {
    format!("candles:{}:{symbol}:{}", v.name(), interval.name())
}

/// The last `limit` candles of `symbol` at `interval` from `source`, oldest first;
/// `None` when a live venue has none cached and cannot answer now. The caller
/// checked that the symbol is listed (only listed keys enter the cache).
pub fn candles(
    conn: &mut Conn,
    source: Source,
    symbol: &str,
    interval: Interval,
    limit: usize,
    s: Settings<'_>,
    log: &Logger,
) -> Result<Option<Vec<Candle>>, StoreError> {
    let limit = limit.min(MAX_LIMIT);
    match source {
        Source::Paper => paper(conn, symbol, interval, limit).map(Some),
        Source::Live(v) => {
            let Copy::Present { fetched_ms } = live(conn, v, symbol, interval, s, log)? else {
                return Ok(None);
            };
            let all = parsed(conn, v, symbol, interval, fetched_ms)?;
            Ok(Some(candles::last(&all, limit).to_vec()))
        }
    }
}

/// Per worker: each key's candles as parsed, with the fetch time they are of.
type Parsed = HashMap<String, (i64, Arc<Vec<Candle>>)>;

/// The cached candles of a key as fetched at `fetched_ms`, parsed once per
/// worker and fetch rather than on every request (1000 rows of decimals).
fn parsed(
    conn: &Conn,
    v: Venue,
    symbol: &str,
    interval: Interval,
    fetched_ms: i64,
) -> Result<Arc<Vec<Candle>>, StoreError> {
    static PARSED: Mutex<Option<Parsed>> = Mutex::new(None);
    let key = item(v, symbol, interval);
    let lock = || PARSED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, list)) = lock().as_ref().and_then(|m| m.get(&key)) {
        if *at == fetched_ms {
            return Ok(list.clone());
        }
    }
    let rows = market_cache::candles(conn, (v.name(), symbol, interval.name()))?;
    let list = Arc::new(rows.unwrap_or_default());
    let mut guard = lock();
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= PARSED_KEYS {
        map.clear();
    }
    map.insert(key, (fetched_ms, list.clone()));
    Ok(list)
}

/// Refreshes the cached candles of (venue, symbol, interval) when due.
fn live(
    conn: &mut Conn,
    v: Venue,
    symbol: &str,
    interval: Interval,
    s: Settings<'_>,
    log: &Logger,
) -> Result<Copy, StoreError> {
    let period_ms = interval.refresh_ms(s.refresh_ms);
    let schedule = Schedule {
        period_ms,
        // A failing exchange is asked no more often than a working one.
        retry_ms: period_ms,
        hold_ms: refresh::HOLD_MS,
    };
    let item = item(v, symbol, interval);
    let key = (v.name(), symbol, interval.name());
    let keep_ms = SWEEP_AFTER_MS.max(Interval::D1.refresh_ms(s.refresh_ms).saturating_mul(2));
    let budget = Budget::new(s.rest, s.until);
    refresh::refresh(
        conn,
        &item,
        schedule,
        s.until,
        log,
        |_| fetch(v, s.rest, symbol, interval, &budget),
        |c, list, now| market_cache::save_candles(c, &item, key, &list, now, now - keep_ms),
    )
}

/// Calls the exchange (the one place candles do).
fn fetch(
    v: Venue,
    rest: &RestSettings,
    symbol: &str,
    interval: Interval,
    budget: &Budget,
) -> Result<Vec<Candle>, ExchangeError> {
    match v {
        Venue::Bybit => BybitPublic::new(rest).candles(symbol, interval, budget),
        Venue::Bingx => BingxPublic::new(rest).candles(symbol, interval, budget),
    }
}

/// The paper exchange's candles: its one-minute buckets of the last `limit`
/// periods, merged into `interval`.
fn paper(
    conn: &Conn,
    symbol: &str,
    interval: Interval,
    limit: usize,
) -> Result<Vec<Candle>, StoreError> {
    let width = interval.millis();
    let now = now_ms();
    let since = now - now.rem_euclid(width) - width * (limit as i64 - 1);
    let minutes = market_cache::paper_minutes(conn, symbol, since)?;
    let all = candles::aggregate(&minutes, interval);
    Ok(candles::last(&all, limit).to_vec())
}
