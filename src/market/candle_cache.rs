//! Candles for `GET /api/markets/candles`: a live venue's klines through the
//! shared cache, or the paper exchange's recorded one-minute buckets.
//!
//! One cache entry per (venue, symbol, interval) holds the last 1000 candles (the
//! most the exchange returns); every request slices it. With the refresh periods
//! of `Interval::refresh_ms` and the claim of `market::refresh`, a thousand
//! dashboards polling one chart cost one exchange request per period.

use std::time::Duration;

use rusqlite::Connection;
use slog::Logger;

use super::candles::{self, Candle, Interval};
use super::catalogue::Source;
use super::refresh::{self, Copy};
use super::Venue;
use crate::exchange::bingx::public::BingxPublic;
use crate::exchange::bybit::public::BybitPublic;
use crate::exchange::rest::RestSettings;
use crate::exchange::ExchangeError;
use crate::store::market_cache::{self, Schedule};
use crate::store::{now_ms, StoreError};

/// The most candles one request returns (and the cache holds).
pub const MAX_LIMIT: usize = 1000;

/// What candles need from the deployment.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub rest: &'a RestSettings,
    /// `CANDLES_REFRESH_MS`: the refresh period of 1m and 5m candles.
    pub refresh_ms: u64,
}

/// The last `limit` candles of `symbol` at `interval` from `source`, oldest first;
/// `None` when a live venue has none cached and cannot answer now.
pub fn candles(
    conn: &mut Connection,
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
            let key = (v.name(), symbol, interval.name());
            if live(conn, v, symbol, interval, s, log)? == Copy::Missing {
                return Ok(None);
            }
            let all = market_cache::candles(conn, key)?.unwrap_or_default();
            Ok(Some(candles::last(&all, limit).to_vec()))
        }
    }
}

/// Refreshes the cached candles of (venue, symbol, interval) when due.
fn live(
    conn: &mut Connection,
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
        hold_ms: s.rest.timeout_ms as i64 * 3 + 1000,
    };
    let item = format!("candles:{}:{symbol}:{}", v.name(), interval.name());
    let key = (v.name(), symbol, interval.name());
    refresh::refresh(
        conn,
        &item,
        schedule,
        Duration::from_millis(s.rest.timeout_ms + 1000),
        log,
        || fetch(v, s.rest, symbol, interval),
        |c, list, now| market_cache::save_candles(c, &item, key, &list, now),
    )
}

/// Calls the exchange (the one place candles do).
fn fetch(
    v: Venue,
    rest: &RestSettings,
    symbol: &str,
    interval: Interval,
) -> Result<Vec<Candle>, ExchangeError> {
    match v {
        Venue::Bybit => BybitPublic::new(rest).candles(symbol, interval),
        Venue::Bingx => BingxPublic::new(rest).candles(symbol, interval),
    }
}

/// The paper exchange's candles: its one-minute buckets of the last `limit`
/// periods, merged into `interval`.
fn paper(
    conn: &Connection,
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
