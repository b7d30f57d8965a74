//! `trades`: closed cycles with PnL net of fees, and the market prices the
//! runner publishes for status reads.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trade {
    pub id: i64,
    pub user_id: i64,
    pub symbol: String,
    pub side: String,
    pub size: f64,
    pub avg_entry: f64,
    pub exit_price: f64,
    pub pnl: f64,
    pub fees: f64,
    pub cycle: i64,
    pub opened_at: i64,
    pub closed_at: i64,
}

/// Records a closed cycle once: a second record of the same cycle (a restarted
/// runner seeing the same close) changes nothing. Returns whether it was new.
pub fn record(conn: &Connection, t: &Trade) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO trades (user_id, symbol, side, size, avg_entry, exit_price,
                 pnl, fees, cycle, opened_at, closed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            t.user_id,
            t.symbol,
            t.side,
            t.size,
            t.avg_entry,
            t.exit_price,
            t.pnl,
            t.fees,
            t.cycle,
            t.opened_at,
            t.closed_at
        ])?;
    Ok(n == 1)
}

const COLUMNS: &str = "id, user_id, symbol, side, size, avg_entry, exit_price, pnl, fees, cycle,
    opened_at, closed_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Trade> {
    Ok(Trade {
        id: r.get(0)?,
        user_id: r.get(1)?,
        symbol: r.get(2)?,
        side: r.get(3)?,
        size: r.get(4)?,
        avg_entry: r.get(5)?,
        exit_price: r.get(6)?,
        pnl: r.get(7)?,
        fees: r.get(8)?,
        cycle: r.get(9)?,
        opened_at: r.get(10)?,
        closed_at: r.get(11)?,
    })
}

/// Newest first (by id), below `before` when given.
pub fn list(
    conn: &Connection,
    uid: i64,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<Trade>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM trades WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(params![uid, before.unwrap_or(i64::MAX), limit], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// (closed_at, pnl) of the trades closed at or after `since`, of one user or all.
pub fn closed_since(
    conn: &Connection,
    uid: Option<i64>,
    since: i64,
) -> Result<Vec<(i64, f64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT closed_at, pnl FROM trades
         WHERE (?1 IS NULL OR user_id = ?1) AND closed_at >= ?2 ORDER BY closed_at",
    )?;
    let rows = stmt
        .query_map(params![uid, since], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Total PnL of user `uid` over all time.
pub fn total_pnl(conn: &Connection, uid: i64) -> Result<f64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(SUM(pnl), 0) FROM trades WHERE user_id = ?1")?
        .query_row([uid], |r| r.get(0))?)
}

/// Publishes a market's last price.
pub fn set_price(
    conn: &Connection,
    exchange: &str,
    symbol: &str,
    price: f64,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO market_prices (exchange, symbol, price, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (exchange, symbol) DO UPDATE SET price = ?3, updated_at = ?4",
    )?
    .execute(params![exchange, symbol, price, now])?;
    Ok(())
}

pub fn price(conn: &Connection, exchange: &str, symbol: &str) -> Result<Option<f64>, StoreError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT price FROM market_prices WHERE exchange = ?1 AND symbol = ?2")?
        .query_row([exchange, symbol], |r| r.get(0))
        .optional()?)
}
