//! One user's view of the paper exchange: the `Exchange` implementation the bots
//! talk to. Every call locks the shared state once and touches only this account's
//! entries (plus, for `place`, one indexed database lookup).

use std::sync::Arc;

use rust_decimal::Decimal;

use super::book::Book;
use super::{fills, markets, persist, wall_ms, Paper, PaperError};
use crate::bots::ladder::{Market, Side};
use crate::exchange::{
    Exchange, ExchangeError, Execution, FundingPayment, NewOrder, Order, Position,
};

/// Leverage the paper exchange accepts, like the real ones' usual range.
const LEVERAGE: std::ops::RangeInclusive<u32> = 1..=125;

/// A user's paper account; cheap to create, holds the shared exchange.
pub struct PaperAccount {
    pub(super) paper: Arc<Paper>,
    pub(super) user_id: i64,
}

impl PaperAccount {
    pub(super) fn new(paper: Arc<Paper>, user_id: i64) -> PaperAccount {
        PaperAccount { paper, user_id }
    }

    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// Whether `symbol`'s paper market is paused for want of a fresh live quote
    /// (never with walked or replayed prices).
    pub fn price_stale(&self, symbol: &str) -> bool {
        self.paper
            .read(|book, _| {
                Ok::<_, PaperError>(match book.lookup(symbol).ok().flatten() {
                    Some(mkt) => book.paused(mkt, wall_ms()),
                    None => book.live.is_some(),
                })
            })
            .unwrap_or(true)
    }
}

impl Exchange for PaperAccount {
    fn name(&self) -> &'static str {
        "paper"
    }

    fn market(&self, symbol: &str) -> Result<Market, ExchangeError> {
        self.paper.mutate(|book, conn, dirty| {
            let mkt = book.ensure_market(conn, symbol, dirty)?;
            Ok(book.markets[mkt].spec)
        })
    }

    /// The mark; a live market not quoted yet has none (a retryable error).
    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError> {
        self.paper.mutate(|book, conn, dirty| {
            let mkt = book.ensure_market(conn, symbol, dirty)?;
            if book.unpriced(mkt) {
                return Err(ExchangeError::Network(format!(
                    "no price for {symbol} yet: the paper market waits for its first quote"
                )));
            }
            Ok(book.markets[mkt].price)
        })
    }

    fn set_leverage(&self, symbol: &str, _side: Side, leverage: u32) -> Result<(), ExchangeError> {
        if !LEVERAGE.contains(&leverage) {
            return Err(ExchangeError::Rejected(format!(
                "leverage {leverage} is outside {}–{}",
                LEVERAGE.start(),
                LEVERAGE.end()
            )));
        }
        self.paper.mutate(|book, conn, dirty| {
            let mkt = book.ensure_market(conn, symbol, dirty)?;
            // As a real exchange does: above the listing's maximum the maintenance
            // margin would exceed the initial one (liquidation at the entry).
            let max = book.markets[mkt].max_leverage;
            if leverage > max {
                return Err(ExchangeError::Rejected(format!(
                    "leverage {leverage} is above {symbol}'s maximum of {max}"
                )));
            }
            book.set_leverage(self.user_id, mkt, leverage, dirty);
            Ok(())
        })
    }

    fn place(&self, order: &NewOrder) -> Result<Order, ExchangeError> {
        if order.client_id.is_empty() {
            return Err(ExchangeError::Rejected("an order needs a client id".into()));
        }
        self.paper.mutate(|book, conn, dirty| {
            let mkt = book.ensure_market(conn, &order.symbol, dirty)?;
            if persist::client_id_used(conn, self.user_id, &order.client_id)? {
                return Err(ExchangeError::Duplicate(order.client_id.clone()));
            }
            book.place(self.user_id, mkt, order, wall_ms(), dirty)
        })
    }

    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError> {
        self.paper.mutate(|book, _, dirty| {
            if let Some(mkt) = book.lookup(symbol)? {
                book.cancel(self.user_id, mkt, client_id, wall_ms(), dirty);
            }
            Ok(())
        })
    }

    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
        self.paper.read(|book, _| {
            let Some(mkt) = book.lookup(symbol)? else {
                return Ok(Vec::new());
            };
            Ok(book
                .open_ids(self.user_id, mkt)
                .iter()
                .filter_map(|id| book.orders.get(id))
                .map(|r| r.order.clone())
                .collect())
        })
    }

    fn order_by_id(&self, symbol: &str, exchange_id: &str) -> Result<Option<Order>, ExchangeError> {
        let Some(id) = parse_id(exchange_id) else {
            return Ok(None);
        };
        self.paper.read(|book, conn| {
            let Some(mkt) = book.lookup(symbol)? else {
                return Ok(None);
            };
            if let Some(rec) = book.orders.get(&id) {
                let mine = rec.user_id == self.user_id && rec.mkt == mkt;
                return Ok(mine.then(|| rec.order.clone()));
            }
            let stored = persist::find_order_by_id(conn, self.user_id, id)?;
            Ok(stored.filter(|o| o.symbol == symbol))
        })
    }

    fn cancel_by_id(&self, symbol: &str, exchange_id: &str) -> Result<(), ExchangeError> {
        let Some(id) = parse_id(exchange_id) else {
            return Ok(());
        };
        self.paper.mutate(|book, _, dirty| {
            if let Some(mkt) = book.lookup(symbol)? {
                book.cancel_by_id(self.user_id, mkt, id, wall_ms(), dirty);
            }
            Ok(())
        })
    }

    fn executions(&self, symbol: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError> {
        self.paper.read(|book, conn| {
            if book.lookup(symbol)?.is_none() {
                return Ok(Vec::new());
            }
            Ok(fills::executions(conn, self.user_id, symbol, since_ms)?)
        })
    }

    /// The 8-hourly settlements (`funding`) of the account's positions.
    fn funding(&self, symbol: &str, since_ms: i64) -> Result<Vec<FundingPayment>, ExchangeError> {
        self.paper.read(|book, conn| {
            if book.lookup(symbol)?.is_none() {
                return Ok(Vec::new());
            }
            Ok(super::funding::read(conn, self.user_id, symbol, since_ms)?)
        })
    }

    fn order(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        self.paper.read(|book, conn| {
            let Some(mkt) = book.lookup(symbol)? else {
                return Ok(None);
            };
            if let Some(rec) = book.open_by_client(self.user_id, mkt, client_id) {
                return Ok(Some(rec.order.clone()));
            }
            let stored = persist::find_order(conn, self.user_id, client_id)?;
            Ok(stored.filter(|o| o.symbol == symbol))
        })
    }

    fn position(&self, symbol: &str, side: Side) -> Result<Position, ExchangeError> {
        self.paper
            .read(|book, _| position(book, self.user_id, symbol, side))
    }

    fn balance(&self) -> Result<Decimal, ExchangeError> {
        self.paper
            .read(|book, _| Ok::<_, PaperError>(book.balance(self.user_id)))
            .map_err(ExchangeError::from)
    }

    /// The paper account has no API key to check.
    fn key_info(&self, _by: std::time::Instant) -> Result<crate::exchange::KeyInfo, ExchangeError> {
        Ok(crate::exchange::KeyInfo::keyless())
    }

    /// The paper exchange keeps both directions of a symbol apart: always hedge.
    fn hedge_mode(&self, _symbol: &str) -> Result<bool, ExchangeError> {
        Ok(true)
    }
}

/// An exchange id as the paper exchange writes them; anything else names no order.
fn parse_id(exchange_id: &str) -> Option<i64> {
    exchange_id.parse().ok()
}

/// The position, marked at the current price (or the start price of a symbol that
/// is not listed yet, which nobody can hold; 0 with live prices, which have no
/// price before a quote).
fn position(book: &Book, uid: i64, symbol: &str, side: Side) -> Result<Position, ExchangeError> {
    let (size, avg_entry, mark_price) = match book.lookup(symbol)? {
        Some(mkt) => {
            let pos = book.position(uid, mkt, side);
            (pos.size, pos.avg, book.markets[mkt].price)
        }
        None => {
            let start = match book.live {
                Some(_) => Decimal::ZERO,
                None => markets::listing(symbol).map_or(Decimal::ZERO, |l| l.start_price),
            };
            (Decimal::ZERO, Decimal::ZERO, start)
        }
    };
    Ok(Position {
        side,
        size,
        avg_entry,
        mark_price,
    })
}
