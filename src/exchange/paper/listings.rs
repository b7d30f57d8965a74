//! Read-only views of the paper exchange for the market catalogue
//! (`market::catalogue`): what it lists and at what price its markets last
//! traded. Nothing here changes the exchange's state.

use crate::store::sql::Conn;
use rust_decimal::Decimal;

use super::markets;
use crate::bots::ladder::Market;
use crate::money::sql as money_sql;

/// The symbols listed from the start; any other well-formed `XXX/USDT` is listed
/// on demand (`listing`).
pub(crate) const MAJORS: [&str; 3] = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];

/// A paper market's trading rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PaperListing {
    pub market: Market,
    pub max_leverage: u32,
}

/// The rules of `symbol`, `None` when the paper exchange cannot trade it.
pub(crate) fn listing(symbol: &str) -> Option<PaperListing> {
    markets::listing(symbol).map(|l| PaperListing {
        market: l.market,
        max_leverage: l.max_leverage,
    })
}

/// The maintenance margin rate and the opening price of `symbol` on the paper
/// exchange, for estimates (the configuration preview).
pub(crate) fn margin_rate_and_start(symbol: &str) -> Option<(Decimal, Decimal)> {
    markets::listing(symbol).map(|l| (l.maintenance_margin_rate, l.start_price))
}

/// Every market the paper exchange has traded, with its persisted price, by symbol.
pub(crate) fn traded(conn: &Conn) -> crate::store::SqlResult<Vec<(String, Decimal)>> {
    let mut stmt =
        conn.prepare_cached("SELECT symbol, price FROM paper_markets ORDER BY symbol")?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, money_sql::get(r, 1)?)))?;
    rows.collect()
}
