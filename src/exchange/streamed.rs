//! A real-exchange account read through its private stream (C16): the REST
//! adapter for actions, the account's [`AccountView`] for reads.
//!
//! Reads answer from the view while the stream is live and the symbol was
//! reconciled less than a minute ago; otherwise they go to REST and the answer
//! (open orders, a position) becomes the symbol's snapshot. So reconciliation is
//! lazy — at most once a minute per symbol, and right after every reconnect —
//! and optional once the symbol was synced (`budget::optional`: when the budget
//! has no room, the stream's view serves until a later step). While the stream
//! is down, reads go to REST at the pace all down accounts share
//! (`stream::poll`), and in between answer from the last REST read. An order the view never saw goes to REST too. Actions go to REST and
//! their answers are applied to the view.

use std::sync::Arc;

use rust_decimal::Decimal;

use super::public_cache;
use super::rest::{budget, local_ms};
use super::stream::poll::PollPace;
use super::stream::view::AccountView;
use super::{Exchange, ExchangeError, Execution, FundingPayment, KeyInfo, Market, NewOrder, Order};
use super::{Position, Side};
use crate::market::{Quote, QuoteSource, Venue};

/// How long a read of an order just cancelled waits for the stream to confirm
/// the cancel before it asks REST.
const CANCEL_CONFIRM_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A public price younger than this answers `ticker` without REST.
const TICKER_FRESH_MS: i64 = 5_000;

pub struct Streamed {
    rest: Arc<dyn Exchange>,
    view: Arc<AccountView>,
    /// How often a down stream's account is read again.
    pace: Arc<PollPace>,
    /// The instance's price board (the market-data process fills it).
    quotes: Option<Arc<dyn QuoteSource>>,
}

impl Streamed {
    pub fn new(
        rest: Arc<dyn Exchange>,
        view: Arc<AccountView>,
        pace: Arc<PollPace>,
        quotes: Option<Arc<dyn QuoteSource>>,
    ) -> Streamed {
        Streamed {
            rest,
            view,
            pace,
            quotes,
        }
    }

    /// The board's quote of `symbol` if it is fresh (asking the market-data
    /// process to follow the symbol).
    fn fresh_quote(&self, symbol: &str) -> Option<Quote> {
        let venue = Venue::parse(self.rest.name())?;
        let quotes = self.quotes.as_ref()?;
        quotes.want(venue, symbol);
        quotes.quote(venue, symbol).filter(|q| {
            local_ms() - q.time_ms < TICKER_FRESH_MS
                && q.last > Decimal::ZERO
                && q.mark > Decimal::ZERO
        })
    }

    /// A position from the view with the board's fresh mark, or none (the
    /// engine then reads the ticker): a position event carries the mark of its
    /// moment, which may be long past.
    fn with_fresh_mark(&self, symbol: &str, mut p: Position) -> Position {
        p.mark_price = self.fresh_quote(symbol).map_or(Decimal::ZERO, |q| q.mark);
        p
    }

    /// Fills on `symbol` the engine now reads for the first time: how long
    /// after the exchange made them.
    fn fills_read(&self, symbol: &str) {
        let now = local_ms();
        for t in self.view.take_unread_fills(symbol) {
            let seconds = (now - t).max(0) as f64 / 1000.0;
            crate::metrics::stream_fill_to_engine(self.rest.name(), seconds);
        }
    }
}

impl Exchange for Streamed {
    fn name(&self) -> &'static str {
        self.rest.name()
    }

    fn market(&self, symbol: &str) -> Result<Market, ExchangeError> {
        public_cache::market(self.rest.name(), symbol, || self.rest.market(symbol))
    }

    /// The board's fresh price, else one REST price a second for the whole
    /// process (`public_cache`).
    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError> {
        match self.fresh_quote(symbol) {
            Some(q) => Ok(q.last),
            None => public_cache::ticker(self.rest.name(), symbol, || self.rest.ticker(symbol)),
        }
    }

    fn set_leverage(&self, symbol: &str, side: Side, leverage: u32) -> Result<(), ExchangeError> {
        self.rest.set_leverage(symbol, side, leverage)
    }

    fn place(&self, order: &NewOrder) -> Result<Order, ExchangeError> {
        self.view.acted(&order.symbol);
        let placed = self.rest.place(order)?;
        if !placed.exchange_id.is_empty() {
            self.view.learn_order(&placed);
        }
        Ok(placed)
    }

    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError> {
        self.view.acted(symbol);
        self.rest.cancel(symbol, client_id)?;
        self.view.cancel_sent(symbol, Some(client_id), None);
        Ok(())
    }

    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
        let now = local_ms();
        if let Some(open) = self.view.open_orders(symbol, now) {
            self.fills_read(symbol);
            return Ok(open);
        }
        let polled = self
            .view
            .open_orders_polled(symbol, now, self.pace.interval_ms());
        if let Some(open) = polled {
            return Ok(open);
        }
        let mark = self.view.mark();
        let open = match self.view.open_orders_kept(symbol) {
            // Only the minute's reconciliation is due: if the budget has no
            // room now, the stream's view serves until a later step.
            Some(kept) => match budget::optional(|| self.rest.open_orders(symbol)) {
                Err(ExchangeError::RateLimited) => {
                    self.fills_read(symbol);
                    return Ok(kept);
                }
                answer => answer?,
            },
            None => self.rest.open_orders(symbol)?,
        };
        self.view.snapshot_orders(symbol, &open, mark, local_ms());
        self.fills_read(symbol);
        Ok(open)
    }

    fn order(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        if let Some(o) = self
            .view
            .order_after_cancel(symbol, client_id, CANCEL_CONFIRM_WAIT)
        {
            self.fills_read(symbol);
            return Ok(Some(o));
        }
        let found = self.rest.order(symbol, client_id)?;
        if let Some(o) = found.as_ref().filter(|o| !o.exchange_id.is_empty()) {
            self.view.learn_order(o);
        }
        Ok(found)
    }

    fn order_by_id(&self, symbol: &str, exchange_id: &str) -> Result<Option<Order>, ExchangeError> {
        if let Some(o) = self.view.order_by_id(symbol, exchange_id) {
            return Ok(Some(o));
        }
        let found = self.rest.order_by_id(symbol, exchange_id)?;
        if let Some(o) = found.as_ref().filter(|o| !o.exchange_id.is_empty()) {
            self.view.learn_order(o);
        }
        Ok(found)
    }

    fn cancel_by_id(&self, symbol: &str, exchange_id: &str) -> Result<(), ExchangeError> {
        self.view.acted(symbol);
        self.rest.cancel_by_id(symbol, exchange_id)?;
        self.view.cancel_sent(symbol, None, Some(exchange_id));
        Ok(())
    }

    fn executions(&self, symbol: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError> {
        if let Some(list) = self.view.executions(symbol, since_ms) {
            return Ok(list);
        }
        let mark = self.view.mark();
        let list = self.rest.executions(symbol, since_ms)?;
        self.view.learn_executions(symbol, since_ms, &list, mark);
        Ok(list)
    }

    fn funding(&self, symbol: &str, since_ms: i64) -> Result<Vec<FundingPayment>, ExchangeError> {
        // Read at closes only (and paced by the engine): not worth a cache.
        self.rest.funding(symbol, since_ms)
    }

    fn position(&self, symbol: &str, side: Side) -> Result<Position, ExchangeError> {
        let now = local_ms();
        if let Some(p) = self.view.position(symbol, side, now) {
            return Ok(self.with_fresh_mark(symbol, p));
        }
        let polled = self
            .view
            .position_polled(symbol, side, now, self.pace.interval_ms());
        if let Some(p) = polled {
            return Ok(self.with_fresh_mark(symbol, p));
        }
        let mark = self.view.mark();
        let p = match self.view.position_kept(symbol, side) {
            Some(kept) => match budget::optional(|| self.rest.position(symbol, side)) {
                Err(ExchangeError::RateLimited) => return Ok(self.with_fresh_mark(symbol, kept)),
                answer => answer?,
            },
            None => self.rest.position(symbol, side)?,
        };
        self.view.snapshot_position(symbol, p, mark, local_ms());
        Ok(p)
    }

    fn balance(&self) -> Result<Decimal, ExchangeError> {
        match self.view.balance() {
            Some(b) => Ok(b),
            None => self.rest.balance(),
        }
    }

    /// Always the exchange's own answer: a key check or a mode check from a
    /// cache would let a wrong account through.
    fn key_info(&self, by: std::time::Instant) -> Result<KeyInfo, ExchangeError> {
        self.rest.key_info(by)
    }

    fn hedge_mode(&self, symbol: &str) -> Result<bool, ExchangeError> {
        self.rest.hedge_mode(symbol)
    }
}

#[cfg(test)]
#[path = "streamed_tests.rs"]
mod tests;
