//! What a trader does by hand on the exchange's site, for the paper exchange: close
//! a position with a market order that no bot placed (`blitz paper close-position`,
//! docs/operations.md). Bots see it as a close from outside (docs/bots.md).

use rusqlite::Connection;

use super::account::PaperAccount;
use super::{persist, wall_ms, PaperError};
use crate::bots::ladder::Side;
use crate::exchange::{ExchangeError, NewOrder, Order, OrderKind, OrderSide};

/// Client ids of manual orders start with this; a bot's never do (docs/bots.md,
/// Client order ids).
pub const MANUAL_PREFIX: &str = "manual-";

impl PaperAccount {
    /// Closes the whole `side` position on `symbol` with a reduce-only market order
    /// (taker fee, at the current price) whose client id is `manual-<ms>`. `None`
    /// when there is no such position.
    pub fn close_position(&self, symbol: &str, side: Side) -> Result<Option<Order>, ExchangeError> {
        let uid = self.user_id;
        self.paper.mutate(|book, conn, dirty| {
            let Some(mkt) = book.lookup(symbol)? else {
                return Ok(None);
            };
            let size = book.position(uid, mkt, side).size;
            if size.is_sign_negative() || size.is_zero() {
                return Ok(None);
            }
            let now = wall_ms();
            let order = NewOrder {
                client_id: manual_client_id(conn, uid, now)?,
                symbol: symbol.to_owned(),
                side: OrderSide::closing(side),
                kind: OrderKind::Market,
                price: None,
                trigger_price: None,
                qty: size,
                reduce_only: true,
                position_side: side,
            };
            book.place(uid, mkt, &order, now, dirty).map(Some)
        })
    }
}

/// `manual-<ms>`, or `manual-<ms>-<n>` when the account already used that in the
/// same millisecond.
fn manual_client_id(conn: &Connection, uid: i64, now: i64) -> Result<String, PaperError> {
    let base = format!("{MANUAL_PREFIX}{now}");
    let mut candidate = base.clone();
    let mut n = 1;
    while persist::client_id_used(conn, uid, &candidate)? {
        n += 1;
        candidate = format!("{base}-{n}");
    }
    Ok(candidate)
}
