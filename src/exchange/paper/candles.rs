//! One-minute OHLC of every paper market, recorded as its price moves (walk, replay
//! or live) and written with the call that moved it (`paper_candles`): what the
//! paper exchange's candles are read from. Rows older than a week are pruned about
//! once an hour.

use crate::params;
use crate::store::sql::{Conn, OptionalExt};
use rust_decimal::Decimal;

use super::book::{Book, Dirty, MktId};
use super::PaperError;
use crate::money::sql::{self as money_sql, Sql};

pub(super) const MINUTE_MS: i64 = 60_000;
/// How long recorded candles are kept.
const KEEP_MS: i64 = 7 * 24 * 3_600_000;
/// How often the old ones are deleted.
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// One minute of one market's prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Candle {
    pub start_ms: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
}

impl Candle {
    fn new(start_ms: i64, price: Decimal) -> Candle {
        Candle {
            start_ms,
            open: price,
            high: price,
            low: price,
            close: price,
        }
    }

    fn with(self, price: Decimal) -> Candle {
        Candle {
            high: self.high.max(price),
            low: self.low.min(price),
            close: price,
            ..self
        }
    }
}

impl Book {
    /// Records the market's current price as of `time_ms` in its minute's candle.
    /// A time before the current candle (a skipped catch-up) is not recorded: the
    /// minute it belongs to is already closed.
    pub fn record_price(&mut self, mkt: MktId, time_ms: i64, dirty: &mut Dirty) {
        let m = &mut self.markets[mkt];
        let start = time_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let candle = match m.candle {
            Some(c) if c.start_ms == start => c.with(m.price),
            Some(c) if c.start_ms > start => return,
            _ => Candle::new(start, m.price),
        };
        m.candle = Some(candle);
        dirty.candles.insert((mkt, start), candle);
    }

    /// Asks for the week-old candles to be deleted, at most once an hour.
    pub fn prune_candles(&mut self, now: i64, dirty: &mut Dirty) {
        if now.saturating_sub(self.pruned_ms) >= PRUNE_EVERY_MS {
            self.pruned_ms = now;
            dirty.prune_candles_before = Some(now - KEEP_MS);
        }
    }
}

/// Deletes one market's candles older than a time.
pub(super) const PRUNE_SQL: &str = "DELETE FROM paper_candles WHERE symbol = ?1 AND start_ms < ?2";

/// Writes the candles a call touched (inside its transaction).
pub(super) fn write(conn: &Conn, book: &Book, dirty: &Dirty) -> crate::store::SqlResult<()> {
    if let Some(before) = dirty.prune_candles_before {
        // Market by market, through the primary key: a bare `start_ms < ?`
        // would scan the whole table.
        let mut prune = conn.prepare_cached(PRUNE_SQL)?;
        for m in &book.markets {
            prune.execute(crate::params![m.symbol, before])?;
        }
    }
    for (&(mkt, start), c) in &dirty.candles {
        conn.prepare_cached(
            "INSERT INTO paper_candles (symbol, start_ms, open, high, low, close)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (symbol, start_ms) DO UPDATE SET
                 high = excluded.high, low = excluded.low, close = excluded.close",
        )?
        .execute(params![
            book.markets[mkt].symbol,
            start,
            Sql(c.open),
            Sql(c.high),
            Sql(c.low),
            Sql(c.close)
        ])?;
    }
    Ok(())
}

/// The latest recorded candle of `symbol`, so a restart within a minute goes on
/// with it instead of overwriting its high and low.
pub(super) fn load_last(conn: &Conn, symbol: &str) -> Result<Option<Candle>, PaperError> {
    let row = conn
        .prepare_cached(
            "SELECT start_ms, open, high, low, close FROM paper_candles
             WHERE symbol = ?1 ORDER BY start_ms DESC LIMIT 1",
        )?
        .query_row([symbol], |r| {
            Ok(Candle {
                start_ms: r.get(0)?,
                open: money_sql::get(r, 1)?,
                high: money_sql::get(r, 2)?,
                low: money_sql::get(r, 3)?,
                close: money_sql::get(r, 4)?,
            })
        })
        .optional()?;
    Ok(row)
}
