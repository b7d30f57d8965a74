//! `GET /api/markets` (the catalogue) and `GET /api/markets/candles`
//! (docs/http-api.md, Markets). Both read the shared cache; on a cache miss the
//! worker that wins the claim calls the exchange (`market::refresh`).

use std::time::Instant;

use serde_json::json;

use super::ApiResult;
use crate::http::ctx::Ctx;
use crate::http::input::{self, FieldErrors};
use crate::http::reply;
use crate::market::candle_cache::{self, MAX_LIMIT};
use crate::market::candles::Interval;
use crate::market::catalogue::{self, Listed, Source};
use crate::market::refresh::FETCH_BUDGET;
use crate::market::QuoteSource;

/// Candles per request when `limit` is absent.
const DEFAULT_LIMIT: i64 = 200;

fn bad(name: &str, message: &str) -> super::ApiError {
    let mut e = FieldErrors::default();
    e.add(name, message);
    match e.finish() {
        Err(r) => r.into(),
        Ok(()) => reply::error(400, "Invalid input").into(),
    }
}

/// `exchange=paper|bybit|bingx` (default `paper`) and where its data comes from.
fn source(ctx: &Ctx<'_, '_>) -> Result<(String, Source), super::ApiError> {
    let name = input::query_param(ctx.req.query, "exchange").unwrap_or_else(|| "paper".into());
    match Source::of(&name, &ctx.config.paper_prices) {
        Some(s) => Ok((name, s)),
        None => Err(bad("exchange", "must be one of paper, bybit, bingx")),
    }
}

fn unavailable() -> super::ApiError {
    reply::json(
        503,
        &json!({"success": false, "status": "unavailable",
        "error": "the exchange's market data cannot be fetched now"}),
    )
    .into()
}

/// The catalogue's settings for a request whose exchange calls must be over by
/// `until` (`FETCH_BUDGET` from its start).
pub fn catalogue_settings(
    config: &crate::config::Config,
    until: Instant,
) -> catalogue::Settings<'_> {
    catalogue::Settings {
        rest: &config.exchanges,
        refresh_ms: config.markets_refresh_s.saturating_mul(1000) as i64,
        until,
    }
}

pub fn list(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let (_, src) = source(ctx)?;
    let settings = catalogue_settings(ctx.config, Instant::now() + FETCH_BUDGET);
    let mut conn = ctx.db.conn()?;
    let Some(all) = catalogue::markets(&mut conn, src, settings, ctx.log)? else {
        return Err(unavailable());
    };
    let now = crate::store::now_ms();
    let shown: Vec<_> = all
        .into_iter()
        .map(|m| {
            let quote = match src {
                Source::Live(venue) => ctx.prices.quote(venue, &m.symbol),
                Source::Paper => None,
            };
            catalogue::with_quote(m, quote.filter(|q| !q.is_stale(now))).to_json()
        })
        .collect();
    Ok(reply::json(200, &json!({"markets": shown})))
}

pub fn candles(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let (exchange, src) = source(ctx)?;
    let q = ctx.req.query;
    let symbol = input::query_param(q, "symbol").unwrap_or_default();
    if crate::bots::config::symbol(&json!(symbol)).is_err() {
        return Err(bad("symbol", "must look like BTC/USDT"));
    }
    let Some(interval) = input::query_param(q, "interval").and_then(|i| Interval::parse(&i)) else {
        return Err(bad("interval", "must be one of 1m, 5m, 15m, 1h, 4h, 1d"));
    };
    let limit = input::query_number(q, "limit", 1, MAX_LIMIT as i64, DEFAULT_LIMIT)?;
    // One deadline for every exchange call of this request.
    let until = Instant::now() + FETCH_BUDGET;
    let mut conn = ctx.db.conn()?;
    // Only listed symbols reach the cache and the exchange: a junk symbol would
    // cost an exchange call and a row each.
    let listed = catalogue::lookup(
        &mut conn,
        src,
        &symbol,
        catalogue_settings(ctx.config, until),
        ctx.log,
    )?;
    match listed {
        Listed::Yes(_) => {}
        Listed::No => {
            return Ok(reply::error(
                404,
                format!("symbol {symbol} is not listed on {exchange}"),
            ))
        }
        // Nothing to check the symbol against: no candles either.
        Listed::Unknown => return Err(unavailable()),
    }
    let settings = candle_cache::Settings {
        rest: &ctx.config.exchanges,
        refresh_ms: ctx.config.candles_refresh_ms,
        until,
    };
    let got = candle_cache::candles(
        &mut conn,
        src,
        &symbol,
        interval,
        limit as usize,
        settings,
        ctx.log,
    )?;
    let Some(list) = got else {
        return Err(unavailable());
    };
    let shown: Vec<_> = list.iter().map(|c| c.to_json()).collect();
    Ok(reply::json(200, &json!({"candles": shown})))
}
