//! The market-data cache shared by every worker (tables `market_catalogue`,
//! `market_candles`, `market_refresh` of sql/0011_market_catalogue.sql) and the
//! paper exchange's one-minute buckets (`paper_candles`, read only).
//!
//! Invariant: a process fetches an item from an exchange only after `claim`
//! returned `true` for it, and the claim's UPDATE is one statement, so across all
//! workers at most one fetch per item runs per refresh period (and per retry pause
//! after a failure).

use crate::params;
use crate::store::sql::{Conn, OptionalExt};
use serde_json::Value;

use super::StoreError;
use crate::market::candles::Candle;
use crate::market::catalogue::MarketInfo;
use crate::money::{self, sql as money_sql};

/// When an item was last fetched, last failed, and until when it is claimed (ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshState {
    pub fetched_ms: i64,
    pub failed_ms: i64,
    pub claimed_until_ms: i64,
}

/// How often an item may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// A copy younger than this is served as it is.
    pub period_ms: i64,
    /// After a failed fetch, the next waits this long.
    pub retry_ms: i64,
    /// A claim lapses after this long (a claimant that died frees the item).
    pub hold_ms: i64,
}

/// Whether `item` in state `s` may be fetched at `now_ms`: nobody holds it, its
/// copy is older than the period, and the last failure is older than the pause.
/// The same condition as `claim`'s UPDATE, checked on a read first so that a
/// request that finds nothing due writes nothing.
pub fn due(s: &RefreshState, now_ms: i64, sch: Schedule) -> bool {
    s.claimed_until_ms <= now_ms
        && s.fetched_ms.saturating_add(sch.period_ms) <= now_ms
        && s.failed_ms.saturating_add(sch.retry_ms) <= now_ms
}

/// Takes the right to fetch `item` if it is due and nobody holds it: `true` when
/// this caller must fetch (and then call `fetched` or `failed`). One UPDATE, so
/// of concurrent claimers exactly one wins. It also records the read
/// (`read_ms`), hence at most once per period.
pub fn claim(conn: &Conn, item: &str, now_ms: i64, s: Schedule) -> Result<bool, StoreError> {
    let won = conn
        .prepare_cached(
            "UPDATE market_refresh SET claimed_until_ms = ?2 + ?5, read_ms = ?2
             WHERE item = ?1 AND claimed_until_ms <= ?2
               AND fetched_ms + ?3 <= ?2 AND failed_ms + ?4 <= ?2",
        )?
        .execute(params![item, now_ms, s.period_ms, s.retry_ms, s.hold_ms])?;
    Ok(won == 1)
}

/// Adds the bookkeeping row of a new item (validated by the caller: only listed
/// symbols get one).
pub fn add(conn: &Conn, item: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO market_refresh (item) VALUES (?1) ON CONFLICT (item) DO NOTHING",
    )?
    .execute([item])?;
    Ok(())
}

/// The bookkeeping of `item`; `None` when it has no row yet.
pub fn state(conn: &Conn, item: &str) -> Result<Option<RefreshState>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT fetched_ms, failed_ms, claimed_until_ms FROM market_refresh WHERE item = ?1",
        )?
        .query_row([item], |r| {
            Ok(RefreshState {
                fetched_ms: r.get(0)?,
                failed_ms: r.get(1)?,
                claimed_until_ms: r.get(2)?,
            })
        })
        .optional()?)
}

fn fetched(conn: &Conn, item: &str, now_ms: i64) -> crate::store::SqlResult<()> {
    conn.prepare_cached(
        "UPDATE market_refresh SET fetched_ms = ?2, claimed_until_ms = 0 WHERE item = ?1",
    )?
    .execute(params![item, now_ms])
    .map(drop)
}

/// Records a failed fetch: the old copy stays, the next try waits `retry_ms`.
pub fn failed(conn: &Conn, item: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE market_refresh SET failed_ms = ?2, claimed_until_ms = 0 WHERE item = ?1",
    )?
    .execute(params![item, now_ms])?;
    Ok(())
}

/// Replaces `exchange`'s catalogue with `markets` and marks `item` fetched, at once.
pub fn save_catalogue(
    conn: &mut Conn,
    item: &str,
    exchange: &str,
    markets: &[MarketInfo],
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM market_catalogue WHERE exchange = ?1",
        [exchange],
    )?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO market_catalogue (exchange, symbol, tick_size, qty_step,
                 min_qty, min_notional, max_leverage, last_price, funding_rate, next_funding_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (exchange, symbol) DO UPDATE SET tick_size = excluded.tick_size,
                 qty_step = excluded.qty_step, min_qty = excluded.min_qty,
                 min_notional = excluded.min_notional, max_leverage = excluded.max_leverage,
                 last_price = excluded.last_price, funding_rate = excluded.funding_rate,
                 next_funding_at = excluded.next_funding_at",
        )?;
        for m in markets {
            insert.execute(params![
                exchange,
                m.symbol,
                money_sql::Sql(m.tick_size),
                money_sql::Sql(m.qty_step),
                money_sql::Sql(m.min_qty),
                money_sql::Sql(m.min_notional),
                m.max_leverage,
                money_sql::opt(m.last_price),
                money_sql::opt(m.funding_rate),
                m.next_funding_at,
            ])?;
        }
    }
    fetched(&tx, item, now_ms)?;
    tx.commit()?;
    Ok(())
}

const MARKET_COLUMNS: &str = "symbol, tick_size, qty_step, min_qty, min_notional, max_leverage,
    last_price, funding_rate, next_funding_at";

fn market_row(r: &crate::store::Row<'_>) -> crate::store::SqlResult<MarketInfo> {
    Ok(MarketInfo {
        symbol: r.get(0)?,
        tick_size: money_sql::get(r, 1)?,
        qty_step: money_sql::get(r, 2)?,
        min_qty: money_sql::get(r, 3)?,
        min_notional: money_sql::get(r, 4)?,
        max_leverage: r.get(5)?,
        last_price: money_sql::get_opt(r, 6)?,
        funding_rate: money_sql::get_opt(r, 7)?,
        next_funding_at: r.get(8)?,
    })
}

/// How many markets of `exchange` are cached.
pub fn count(conn: &Conn, exchange: &str) -> Result<usize, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM market_catalogue WHERE exchange = ?1")?
        .query_row([exchange], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// `exchange`'s cached catalogue, by symbol.
pub fn catalogue(conn: &Conn, exchange: &str) -> Result<Vec<MarketInfo>, StoreError> {
    let sql = format!(
        "SELECT {MARKET_COLUMNS} FROM market_catalogue WHERE exchange = ?1 ORDER BY symbol"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([exchange], market_row)?;
    Ok(rows.collect::<crate::store::SqlResult<_>>()?)
}

/// One market of `exchange`'s cached catalogue.
pub fn market(conn: &Conn, exchange: &str, symbol: &str) -> Result<Option<MarketInfo>, StoreError> {
    let sql = format!(
        "SELECT {MARKET_COLUMNS} FROM market_catalogue WHERE exchange = ?1 AND symbol = ?2"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([exchange, symbol], market_row)
        .optional()?)
}

/// Stores the candles of `item` (oldest first) and marks it fetched, at once;
/// drops the candles nobody has read since `unread_before_ms` (charts closed), so
/// the table holds what is being watched, not every key ever asked.
pub fn save_candles(
    conn: &mut Conn,
    item: &str,
    key: (&str, &str, &str),
    candles: &[Candle],
    now_ms: i64,
    unread_before_ms: i64,
) -> Result<(), StoreError> {
    let rows: Vec<Value> = candles
        .iter()
        .map(|c| {
            let t = |d| Value::String(money::text(d));
            serde_json::json!([
                c.start_ms,
                t(c.open),
                t(c.high),
                t(c.low),
                t(c.close),
                t(c.volume)
            ])
        })
        .collect();
    let text = Value::Array(rows).to_string();
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO market_candles (exchange, symbol, interval, candles)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (exchange, symbol, interval) DO UPDATE SET candles = excluded.candles",
        params![key.0, key.1, key.2, text],
    )?;
    fetched(&tx, item, now_ms)?;
    sweep_candles(&tx, unread_before_ms)?;
    tx.commit()?;
    Ok(())
}

/// Forgets candle items last read before `before_ms`, and their candles.
fn sweep_candles(conn: &Conn, before_ms: i64) -> crate::store::SqlResult<()> {
    conn.prepare_cached(
        "DELETE FROM market_refresh WHERE item LIKE 'candles:%' AND read_ms < ?1
           AND claimed_until_ms < ?1",
    )?
    .execute([before_ms])?;
    conn.prepare_cached(
        "DELETE FROM market_candles WHERE 'candles:' || exchange || ':' || symbol || ':' || interval
           NOT IN (SELECT item FROM market_refresh WHERE item LIKE 'candles:%')",
    )?
    .execute(())?;
    Ok(())
}

/// The cached candles of (exchange, symbol, interval), oldest first; `None` when
/// never fetched.
pub fn candles(conn: &Conn, key: (&str, &str, &str)) -> Result<Option<Vec<Candle>>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT candles FROM market_candles WHERE exchange = ?1 AND symbol = ?2 AND interval = ?3",
        )?
        .query_row([key.0, key.1, key.2], |r| r.get(0))
        .optional()?;
    text.map(|t| parse_candles(&t)).transpose()
}

type Row = (i64, String, String, String, String, String);

fn parse_candles(text: &str) -> Result<Vec<Candle>, StoreError> {
    let rows: Vec<Row> = serde_json::from_str(text).map_err(|e| corrupt(&e.to_string()))?;
    rows.into_iter()
        .map(|(t, o, h, l, c, v)| {
            let d = |s: &str| money::parse(s).map_err(|e| corrupt(&e.to_string()));
            Ok(Candle {
                start_ms: t,
                open: d(&o)?,
                high: d(&h)?,
                low: d(&l)?,
                close: d(&c)?,
                volume: d(&v)?,
            })
        })
        .collect()
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Value(format!("market_candles.candles: {why}"))
}

/// The paper exchange's one-minute buckets of `symbol` from `since_ms` on, oldest
/// first (volume 0: paper records prices, not trades).
pub fn paper_minutes(conn: &Conn, symbol: &str, since_ms: i64) -> Result<Vec<Candle>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT start_ms, open, high, low, close FROM paper_candles
         WHERE symbol = ?1 AND start_ms >= ?2 ORDER BY start_ms",
    )?;
    let rows = stmt.query_map(params![symbol, since_ms], |r| {
        Ok(Candle {
            start_ms: r.get(0)?,
            open: money_sql::get(r, 1)?,
            high: money_sql::get(r, 2)?,
            low: money_sql::get(r, 3)?,
            close: money_sql::get(r, 4)?,
            volume: rust_decimal::Decimal::ZERO,
        })
    })?;
    Ok(rows.collect::<crate::store::SqlResult<_>>()?)
}
