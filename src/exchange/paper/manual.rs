//! What a trader does by hand on the exchange's site, for the paper exchange: close
//! a position with a market order that no bot placed (`blitz paper close-position`,
//! docs/operations.md). Bots see it as a close from outside (docs/bots.md).

use crate::store::sql::Conn;

use super::account::PaperAccount;
use super::book::{Account, Book, Dirty, START_BALANCE};
use super::{persist, wall_ms, Paper, PaperError};
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

impl Paper {
    /// Puts user `uid`'s paper account back to its start (`POST
    /// /api/paper/account/reset`): the starting balance, no positions, orders,
    /// fills, funding or leverage settings. The caller makes sure no bot trades it.
    pub fn reset_account(&self, uid: i64) -> Result<(), PaperError> {
        self.mutate(|book, _, dirty| {
            book.reset(uid, dirty);
            Ok(())
        })
    }
}

impl Book {
    fn reset(&mut self, uid: i64, dirty: &mut Dirty) {
        let Some(acct) = self.accounts.get(&uid) else {
            self.account_mut(uid, dirty);
            dirty.resets.insert(uid);
            return;
        };
        let open: Vec<i64> = acct.open.values().flatten().copied().collect();
        let held: Vec<usize> = acct.positions.keys().copied().collect();
        // The funding clock stays: a reset changes no boundary already settled.
        let funded = acct.funded_ms;
        for id in open {
            self.remove_open(id);
        }
        self.accounts
            .insert(uid, Account::new(START_BALANCE, funded));
        for mkt in held {
            self.note_holder(uid, mkt);
        }
        dirty.resets.insert(uid);
        dirty.balances.insert(uid);
    }
}

/// `manual-<ms>`, or `manual-<ms>-<n>` when the account already used that in the
/// same millisecond.
fn manual_client_id(conn: &Conn, uid: i64, now: i64) -> Result<String, PaperError> {
    let base = format!("{MANUAL_PREFIX}{now}");
    let mut candidate = base.clone();
    let mut n = 1;
    while persist::client_id_used(conn, uid, &candidate)? {
        n += 1;
        candidate = format!("{base}-{n}");
    }
    Ok(candidate)
}
