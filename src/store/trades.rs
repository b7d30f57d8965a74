//! `trades`: closed cycles with PnL net of fees, and the market prices the
//! runner publishes for status reads.

use crate::params;
use crate::store::sql::Conn;
use rust_decimal::Decimal;
use serde::Serialize;

use super::StoreError;
use crate::money::sql::{self as money_sql, Sql};

/// A closed cycle; money serialises as JSON numbers (`money::json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trade {
    pub id: i64,
    pub user_id: i64,
    /// The bot that traded the cycle; `None` once that bot was deleted.
    pub bot_id: Option<i64>,
    pub symbol: String,
    pub side: String,
    #[serde(with = "crate::money::number")]
    pub size: Decimal,
    #[serde(with = "crate::money::number")]
    pub avg_entry: Decimal,
    #[serde(with = "crate::money::number")]
    pub exit_price: Decimal,
    #[serde(with = "crate::money::number")]
    pub pnl: Decimal,
    #[serde(with = "crate::money::number")]
    pub fees: Decimal,
    pub cycle: i64,
    pub opened_at: i64,
    pub closed_at: i64,
    /// How the cycle closed (docs/bots.md, Stops and closes); `None` for cycles
    /// recorded before it was kept.
    pub close_reason: Option<String>,
    /// Funding received (+) or paid (−) during the cycle, included in `pnl`.
    #[serde(with = "crate::money::number")]
    pub funding: Decimal,
}

/// Records a closed cycle once per bot: a second record of the same cycle (a
/// restarted runner seeing the same close) changes nothing. Returns whether it
/// was new.
pub fn record(conn: &Conn, t: &Trade) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO trades (user_id, bot_id, symbol, side, size, avg_entry,
                 exit_price, pnl, fees, cycle, opened_at, closed_at, close_reason, funding)
             VALUES (?1, ?14, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            t.user_id,
            t.symbol,
            t.side,
            Sql(t.size),
            Sql(t.avg_entry),
            Sql(t.exit_price),
            Sql(t.pnl),
            Sql(t.fees),
            t.cycle,
            t.opened_at,
            t.closed_at,
            t.close_reason,
            Sql(t.funding),
            t.bot_id
        ])?;
    Ok(n == 1)
}

const COLUMNS: &str = "id, user_id, symbol, side, size, avg_entry, exit_price, pnl, fees, cycle,
    opened_at, closed_at, close_reason, funding, bot_id";

fn from_row(r: &crate::store::Row<'_>) -> crate::store::SqlResult<Trade> {
    Ok(Trade {
        id: r.get(0)?,
        user_id: r.get(1)?,
        symbol: r.get(2)?,
        side: r.get(3)?,
        size: money_sql::get(r, 4)?,
        avg_entry: money_sql::get(r, 5)?,
        exit_price: money_sql::get(r, 6)?,
        pnl: money_sql::get(r, 7)?,
        fees: money_sql::get(r, 8)?,
        cycle: r.get(9)?,
        opened_at: r.get(10)?,
        closed_at: r.get(11)?,
        close_reason: r.get(12)?,
        funding: money_sql::get(r, 13)?,
        bot_id: r.get(14)?,
    })
}

/// User `uid`'s trades (of bot `bot` only, when given), newest first (by id),
/// below `before` when given.
pub fn list(
    conn: &Conn,
    uid: i64,
    bot: Option<i64>,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<Trade>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM trades
         WHERE user_id = ?1 AND (CAST(?4 AS BIGINT) IS NULL OR bot_id = ?4) AND id < ?2
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![uid, before.unwrap_or(i64::MAX), limit, bot],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Which trades a summary covers: one user's or everyone's, one bot's or all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    pub user: Option<i64>,
    pub bot: Option<i64>,
}

/// (closed_at, pnl) of the trades in `scope` closed at or after `since`.
pub fn closed_since(
    conn: &Conn,
    scope: Scope,
    since: i64,
) -> Result<Vec<(i64, Decimal)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT closed_at, pnl FROM trades
         WHERE (CAST(?1 AS BIGINT) IS NULL OR user_id = ?1)
           AND (CAST(?3 AS BIGINT) IS NULL OR bot_id = ?3) AND closed_at >= ?2
         ORDER BY closed_at",
    )?;
    let rows = stmt
        .query_map(params![scope.user, since, scope.bot], |r| {
            Ok((r.get(0)?, money_sql::get(r, 1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Total PnL of user `uid` over all time, summed exactly (SQLite's SUM of the
/// TEXT column would add binary floats).
pub fn total_pnl(conn: &Conn, uid: i64) -> Result<Decimal, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT pnl FROM trades WHERE user_id = ?1")?;
    let mut total = Decimal::ZERO;
    for pnl in stmt.query_map([uid], |r| money_sql::get(r, 0))? {
        total += pnl?;
    }
    Ok(total)
}

/// Total PnL of every user's trades, summed exactly.
pub fn total_pnl_all(conn: &Conn) -> Result<Decimal, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT pnl FROM trades")?;
    let mut total = Decimal::ZERO;
    for pnl in stmt.query_map((), |r| money_sql::get(r, 0))? {
        total += pnl?;
    }
    Ok(total)
}

/// Total PnL of each of user `uid`'s bots that has closed a cycle, summed exactly.
pub fn total_pnl_by_bot(
    conn: &Conn,
    uid: i64,
) -> Result<std::collections::HashMap<i64, Decimal>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT bot_id, pnl FROM trades WHERE user_id = ?1 AND bot_id IS NOT NULL",
    )?;
    let mut totals = std::collections::HashMap::new();
    for row in stmt.query_map([uid], |r| Ok((r.get::<_, i64>(0)?, money_sql::get(r, 1)?)))? {
        let (bot, pnl) = row?;
        *totals.entry(bot).or_insert(Decimal::ZERO) += pnl;
    }
    Ok(totals)
}

/// Publishes a market's last price.
pub fn set_price(
    conn: &Conn,
    exchange: &str,
    symbol: &str,
    price: Decimal,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO market_prices (exchange, symbol, price, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (exchange, symbol) DO UPDATE SET price = ?3, updated_at = ?4",
    )?
    .execute(params![exchange, symbol, Sql(price), now])?;
    Ok(())
}

pub fn price(conn: &Conn, exchange: &str, symbol: &str) -> Result<Option<Decimal>, StoreError> {
    use crate::store::sql::OptionalExt;
    Ok(conn
        .prepare_cached("SELECT price FROM market_prices WHERE exchange = ?1 AND symbol = ?2")?
        .query_row([exchange, symbol], |r| money_sql::get(r, 0))
        .optional()?)
}
