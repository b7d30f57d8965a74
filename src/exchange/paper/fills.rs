//! The account's fill history (`paper_fills`): every execution of every order,
//! written with the call that made it, read back by `executions` — how a bot learns
//! the exit of a close it did not make (docs/bots.md, Exchanges).

use crate::params;
use crate::store::sql::Conn;

use super::book::{Book, Fill};
use super::persist::{order_side_str, parse_order_side};
use super::PaperError;
use crate::exchange::Execution;
use crate::money::sql::{self as money_sql, Sql};

/// Records one fill (inside the caller's transaction, after its order's row).
pub(super) fn write(conn: &Conn, book: &Book, f: &Fill) -> crate::store::SqlResult<()> {
    conn.prepare_cached(
        "INSERT INTO paper_fills
             (user_id, order_id, symbol, side, qty, price, fee, time_ms, liquidation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        f.user_id,
        f.order_id,
        book.markets[f.mkt].symbol,
        order_side_str(f.side),
        Sql(f.qty),
        Sql(f.price),
        Sql(f.fee),
        f.time_ms,
        f.liquidation,
    ])?;
    Ok(())
}

/// The account's fills on `symbol` at or after `since_ms`, in the order they
/// happened, whoever placed the order.
pub(super) fn executions(
    conn: &Conn,
    uid: i64,
    symbol: &str,
    since_ms: i64,
) -> Result<Vec<Execution>, PaperError> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.id, f.order_id, o.client_id, f.side, f.qty, f.price, f.fee, f.time_ms,
                f.liquidation
         FROM paper_fills f JOIN paper_orders o ON o.id = f.order_id
         WHERE f.user_id = ?1 AND f.symbol = ?2 AND f.time_ms >= ?3
         ORDER BY f.id",
    )?;
    let mut rows = stmt.query(params![uid, symbol, since_ms])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Execution {
            exec_id: r.get::<_, i64>(0)?.to_string(),
            order_id: r.get::<_, i64>(1)?.to_string(),
            client_id: r.get(2)?,
            side: parse_order_side(&r.get::<_, String>(3)?)?,
            qty: money_sql::get(&r, 4)?,
            price: money_sql::get(&r, 5)?,
            fee: money_sql::get(&r, 6)?,
            time_ms: r.get(7)?,
            liquidation: r.get(8)?,
        });
    }
    Ok(out)
}
