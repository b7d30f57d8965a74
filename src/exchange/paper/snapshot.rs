//! A user's paper account as stored (`GET /api/paper/account`, docs/http-api.md):
//! balance, positions marked at each market's last persisted price, their
//! liquidation prices, equity and available margin. Read from SQLite by whoever
//! asks (an HTTP worker), never from the runner's memory; the runner writes every
//! change through before a call returns, so this is at most one advance behind.

use crate::params;
use crate::store::sql::{Conn, OptionalExt};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::book::{DEFAULT_LEVERAGE, START_BALANCE};
use super::liquidation::liquidation_trigger;
use super::{markets, persist, PaperError};
use crate::bots::ladder::{gross_pnl, Side};
use crate::money::sql as money_sql;

/// One open position, marked.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionView {
    pub symbol: String,
    pub side: Side,
    pub size: Decimal,
    pub avg_entry: Decimal,
    pub mark_price: Decimal,
    pub liquidation_price: Decimal,
    pub unrealized_pnl: Decimal,
}

/// The account as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    pub balance: Decimal,
    pub equity: Decimal,
    pub available: Decimal,
    pub unrealized_pnl: Decimal,
    pub positions: Vec<PositionView>,
}

impl AccountView {
    pub fn to_json(&self) -> Value {
        use crate::money::json as num;
        let positions: Vec<Value> = self
            .positions
            .iter()
            .map(|p| {
                json!({
                    "symbol": p.symbol,
                    "side": crate::bots::config::side_name(p.side),
                    "size": num(p.size),
                    "avg_entry": num(p.avg_entry),
                    "mark_price": num(p.mark_price),
                    "liquidation_price": num(p.liquidation_price),
                    "unrealized_pnl": num(p.unrealized_pnl),
                })
            })
            .collect();
        json!({
            "balance": num(self.balance),
            "equity": num(self.equity),
            "available": num(self.available),
            "unrealized_pnl": num(self.unrealized_pnl),
            "positions": positions,
        })
    }
}

/// Reads user `uid`'s paper account; an account that never traded has the
/// starting balance and nothing else.
pub fn read(conn: &Conn, uid: i64) -> Result<AccountView, PaperError> {
    let tx = conn.unchecked_transaction()?;
    let balance = tx
        .query_row(
            "SELECT balance FROM paper_accounts WHERE user_id = ?1",
            [uid],
            |r| money_sql::get(r, 0),
        )
        .optional()?
        .unwrap_or(START_BALANCE);
    let positions = positions(&tx, uid)?;
    let unrealized_pnl: Decimal = positions.iter().map(|p| p.unrealized_pnl).sum();
    let losses: Decimal = positions
        .iter()
        .map(|p| p.unrealized_pnl.min(Decimal::ZERO))
        .sum();
    let margin = position_margin(&tx, uid, &positions)? + order_margin(&tx, uid)?;
    Ok(AccountView {
        balance,
        equity: balance + unrealized_pnl,
        available: balance - margin + losses,
        unrealized_pnl,
        positions,
    })
}

fn leverage(conn: &Conn, uid: i64, symbol: &str) -> Result<u32, PaperError> {
    Ok(conn
        .prepare_cached("SELECT leverage FROM paper_leverage WHERE user_id = ?1 AND symbol = ?2")?
        .query_row(params![uid, symbol], |r| r.get(0))
        .optional()?
        .unwrap_or(DEFAULT_LEVERAGE))
}

fn positions(conn: &Conn, uid: i64) -> Result<Vec<PositionView>, PaperError> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.symbol, p.side, p.size, p.avg_entry, m.price
         FROM paper_positions p JOIN paper_markets m ON m.symbol = p.symbol
         WHERE p.user_id = ?1 ORDER BY p.symbol, p.side",
    )?;
    let mut rows = stmt.query([uid])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let symbol: String = r.get(0)?;
        let side = persist::parse_side(&r.get::<_, String>(1)?)?;
        let (size, avg_entry, mark_price) = (
            money_sql::get(&r, 2)?,
            money_sql::get(&r, 3)?,
            money_sql::get(&r, 4)?,
        );
        let Some(listing) = markets::listing(&symbol) else {
            continue;
        };
        let lev = leverage(conn, uid, &symbol)?;
        let mmr = listing.maintenance_margin_rate;
        out.push(PositionView {
            liquidation_price: liquidation_trigger(side, avg_entry, lev, mmr, &listing.market),
            unrealized_pnl: crate::money::pnl(gross_pnl(side, size, avg_entry, mark_price)),
            symbol,
            side,
            size,
            avg_entry,
            mark_price,
        });
    }
    Ok(out)
}

/// The initial margin of the positions, at their leverage.
fn position_margin(
    conn: &Conn,
    uid: i64,
    positions: &[PositionView],
) -> Result<Decimal, PaperError> {
    let mut sum = Decimal::ZERO;
    for p in positions {
        sum += p.size * p.avg_entry / Decimal::from(leverage(conn, uid, &p.symbol)?.max(1));
    }
    Ok(sum)
}

/// The margin held by open limit orders that open or add to a position.
fn order_margin(conn: &Conn, uid: i64) -> Result<Decimal, PaperError> {
    let mut stmt = conn.prepare_cached(
        "SELECT symbol, price, qty, filled_qty FROM paper_orders
         WHERE user_id = ?1 AND status IN ('open', 'partially_filled') AND reduce_only = 0",
    )?;
    let mut rows = stmt.query([uid])?;
    let mut sum = Decimal::ZERO;
    while let Some(r) = rows.next()? {
        let symbol: String = r.get(0)?;
        let price = money_sql::get_opt(&r, 1)?.unwrap_or(Decimal::ZERO);
        let left = (money_sql::get(&r, 2)? - money_sql::get(&r, 3)?).max(Decimal::ZERO);
        sum += left * price / Decimal::from(leverage(conn, uid, &symbol)?.max(1));
    }
    Ok(sum)
}

/// The liquidation price of user `uid`'s paper position on `symbol` entered at
/// `avg_entry` (for the bot status), at the account's leverage there.
pub fn liquidation_price_of(
    conn: &Conn,
    uid: i64,
    symbol: &str,
    side: Side,
    avg_entry: Decimal,
) -> Result<Option<Decimal>, PaperError> {
    let Some(listing) = markets::listing(symbol) else {
        return Ok(None);
    };
    let lev = leverage(conn, uid, symbol)?;
    let mmr = listing.maintenance_margin_rate;
    Ok(Some(liquidation_trigger(
        side,
        avg_entry,
        lev,
        mmr,
        &listing.market,
    )))
}

/// Whether the paper market of `symbol` has not moved for longer than a quote
/// stays fresh (with live prices: the runner has no fresh quote for it).
pub fn market_stale(conn: &Conn, symbol: &str, now_ms: i64) -> Result<bool, PaperError> {
    let updated: Option<i64> = conn
        .prepare_cached("SELECT updated_ms FROM paper_markets WHERE symbol = ?1")?
        .query_row([symbol], |r| r.get(0))
        .optional()?;
    Ok(updated.is_none_or(|t| now_ms - t > crate::market::STALE_AFTER_MS))
}
