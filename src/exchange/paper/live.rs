//! Live paper prices (`PAPER_PRICES=bybit|bingx`, C15): every paper market follows
//! a real venue's public quote, read from a `QuoteSource` (the market-data
//! process's price board in production). Resting limits fill when the last trade,
//! bid or ask crosses them, stops trigger on the venue's mark, market orders take
//! the ask (buy) or bid (sell). Without a fresh quote (none yet, or older than
//! `STALE_AFTER_MS`) the market is paused: nothing matches and market orders are
//! refused with a retryable error.

use std::sync::Arc;

use rust_decimal::Decimal;
use slog::Logger;

use super::book::{Book, Dirty, MktId};
use super::matching::Touch;
use crate::bots::ladder::round_price;
use crate::market::{Quote, QuoteSource, Venue};

/// Where live quotes come from.
#[derive(Clone)]
pub(super) struct Live {
    pub venue: Venue,
    pub source: Arc<dyn QuoteSource>,
    /// Where what the operator should know goes (`Paper::set_log`).
    pub log: Logger,
}

impl Live {
    /// Asks the source to follow `symbol`.
    pub fn want(&self, symbol: &str) {
        self.source.want(self.venue, symbol);
    }

    /// The latest quote of `symbol` unless it is stale at `now`.
    fn fresh(&self, symbol: &str, now: i64) -> Option<Quote> {
        self.source
            .quote(self.venue, symbol)
            .filter(|q| !q.is_stale(now))
    }
}

impl Book {
    /// Moves a live market to its latest fresh quote and matches it; no fresh quote
    /// pauses the market. The first quote of a market listed unpriced only sets
    /// its price: there was no earlier price to move from, so it crosses nothing.
    /// Returns the fills.
    pub fn live_to(&mut self, mkt: MktId, live: &Live, now: i64, dirty: &mut Dirty) -> usize {
        let m = &mut self.markets[mkt];
        // A market that still holds a position or an order (a stopped bot's kept
        // position and its exchange-side stop among them) keeps being followed:
        // the market-data process forgets what nobody wanted for 10 minutes, and
        // a forgotten market would pause its stops and liquidation for good.
        if m.in_use() {
            live.want(&m.symbol);
        }
        let Some(q) = live.fresh(&m.symbol, now) else {
            m.quote = None;
            return 0;
        };
        if m.quote.is_some_and(|had| had.time_ms == q.time_ms) {
            return 0;
        }
        let old = m.price;
        let mark = round_price(q.mark, &m.spec).max(m.spec.tick);
        m.price = mark;
        m.quote = Some(q);
        m.updated_ms = now;
        dirty.markets.insert(mkt);
        self.record_price(mkt, now, dirty);
        if old <= Decimal::ZERO {
            return 0;
        }
        let touch = Touch {
            low: q.last.min(q.ask),
            high: q.last.max(q.bid),
            mark,
            falling: mark < old,
        };
        self.touch(mkt, touch, now, dirty)
    }

    /// Whether a live market has no fresh quote at `now` (never for walked or
    /// replayed markets).
    pub fn paused(&self, mkt: MktId, now: i64) -> bool {
        self.live.is_some()
            && self.markets[mkt]
                .quote
                .is_none_or(|q: Quote| q.is_stale(now))
    }

    /// The price a market order of this side takes at `now`: the live ask or bid,
    /// or the mark plus or minus the half-spread (`HALF_SPREAD`), rounded to the
    /// tick against the trader; `None` while a live market is paused.
    pub fn touch_price(&self, mkt: MktId, buy: bool, now: i64) -> Option<Decimal> {
        let m = &self.markets[mkt];
        if self.live.is_some() {
            let q = m.quote.filter(|q| !q.is_stale(now))?;
            return Some(quote_price(q, buy, &m.spec));
        }
        Some(spread_price(m.price, buy, &m.spec))
    }
}

impl Book {
    /// What a triggered stop (a market order) fills at: the fresh live ask or
    /// bid, else `mark` plus or minus the half-spread, rounded against the trader.
    pub fn stop_fill_price(&self, mkt: MktId, buy: bool, mark: Decimal, now: i64) -> Decimal {
        let m = &self.markets[mkt];
        match m.quote.filter(|q| self.live.is_some() && !q.is_stale(now)) {
            Some(q) => quote_price(q, buy, &m.spec),
            None => spread_price(mark, buy, &m.spec),
        }
    }
}

/// What a live market order of this side takes: the ask rounded up to the tick
/// (buy) or the bid rounded down (sell) — fills stay on the tick grid, and the
/// rounding is never in the trader's favour.
fn quote_price(q: Quote, buy: bool, spec: &crate::bots::ladder::Market) -> Decimal {
    let tick = spec.tick;
    if buy {
        (q.ask / tick).ceil() * tick
    } else {
        ((q.bid / tick).floor() * tick).max(tick)
    }
}

/// Half the simulated bid-ask spread of walked and replayed markets (0.01 %).
pub(super) const HALF_SPREAD: Decimal = Decimal::from_parts(1, 0, 0, false, 4);

/// `mark` moved by the half-spread — up for a buy, down for a sell — and rounded
/// to the tick away from the trader's favour (a buy up, a sell down).
pub(super) fn spread_price(
    mark: Decimal,
    buy: bool,
    spec: &crate::bots::ladder::Market,
) -> Decimal {
    let tick = spec.tick;
    if buy {
        ((mark * (Decimal::ONE + HALF_SPREAD)) / tick).ceil() * tick
    } else {
        (((mark * (Decimal::ONE - HALF_SPREAD)) / tick).floor() * tick).max(tick)
    }
}
