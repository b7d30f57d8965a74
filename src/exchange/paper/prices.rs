//! How the book's prices move — the seeded walk, the replayed file
//! (`PAPER_PRICES=replay:`, docs/bots.md, Replayed paper prices) and explicit sets —
//! with every resting order matched against each new price in turn.

use rust_decimal::Decimal;

use super::book::{Book, Dirty, MktId};
use super::replay::Replay;
use crate::bots::ladder::round_price;

/// At most this many walk steps per market and `advance`, so a long downtime costs
/// a bounded catch-up instead of stalling the runner's startup. Replayed markets
/// have no such cap: the file's lines are few and each may fill an order.
pub(super) const MAX_STEPS: i64 = 600;

impl Book {
    /// Brings every market up to `now`: walked ones through the whole ticks elapsed
    /// since their last step (at most `MAX_STEPS`; a longer gap is skipped),
    /// replayed ones through every line of the file since their last update, in
    /// order. Returns the fills.
    /// Live markets move to their latest fresh quote instead (`live`). Then the
    /// funding boundaries crossed are settled and old candles pruned.
    pub fn advance(&mut self, now: i64, dirty: &mut Dirty) -> usize {
        let mut fills = 0;
        let live = self.live.clone();
        for mkt in 0..self.markets.len() {
            fills += match (&live, self.replay_of(&self.markets[mkt].symbol)) {
                (Some(live), _) => self.live_to(mkt, live, now, dirty),
                (None, Some(replay)) => self.replay_to(mkt, &replay, now, dirty),
                (None, None) => self.walk_to(mkt, now, dirty),
            };
        }
        self.clock_ms = self.clock_ms.max(now);
        self.settle_funding(now, dirty);
        self.prune_candles(now, dirty);
        fills
    }

    /// Walks one market through the ticks due by `now`, matching each step.
    fn walk_to(&mut self, mkt: MktId, now: i64, dirty: &mut Dirty) -> usize {
        let tick = i64::try_from(self.tick_ms.max(1)).unwrap_or(i64::MAX);
        let due = (now - self.markets[mkt].updated_ms).div_euclid(tick);
        if due <= 0 {
            return 0;
        }
        let steps = due.min(MAX_STEPS);
        let first = self.markets[mkt].updated_ms;
        let fills = (1..=steps)
            .map(|i| self.step(mkt, first + i * tick, now, dirty))
            .sum();
        let m = &mut self.markets[mkt];
        m.updated_ms = if due > MAX_STEPS {
            now
        } else {
            m.updated_ms + steps * tick
        };
        dirty.markets.insert(mkt);
        fills
    }

    /// One walk step of one market, standing for time `at`, with its matching.
    fn step(&mut self, mkt: MktId, at: i64, now: i64, dirty: &mut Dirty) -> usize {
        let m = &mut self.markets[mkt];
        let old = m.price;
        m.price = self.walk.next_price(m.stream, m.step_no, old, &m.spec);
        m.step_no += 1;
        let new = m.price;
        self.record_price(mkt, at, dirty);
        self.cross(mkt, old, new, now, dirty)
    }

    /// Applies, in file order, every replayed price of the market's symbol after
    /// its last update and up to `now` (both counted from the epoch), matching each:
    /// a dip and recovery between two calls fills and triggers what the dip reached.
    fn replay_to(&mut self, mkt: MktId, replay: &Replay, now: i64, dirty: &mut Dirty) -> usize {
        let m = &self.markets[mkt];
        let (from, to) = (m.updated_ms - self.epoch_ms, now - self.epoch_ms);
        if to <= from {
            return 0;
        }
        let changes: Vec<(i64, Decimal)> = replay.changes_between(&m.symbol, from, to).collect();
        let epoch = self.epoch_ms;
        let fills = changes
            .into_iter()
            .map(|(at, price)| self.move_to(mkt, price, epoch + at, now, dirty))
            .sum();
        self.markets[mkt].updated_ms = now;
        dirty.markets.insert(mkt);
        fills
    }

    /// Moves a market to `price` (rounded, at least one tick) and matches the move.
    pub fn set_price(&mut self, mkt: MktId, price: Decimal, now: i64, dirty: &mut Dirty) -> usize {
        self.move_to(mkt, price, now, now, dirty)
    }

    /// `set_price` of a price that stands for time `at` (its candle's).
    fn move_to(
        &mut self,
        mkt: MktId,
        price: Decimal,
        at: i64,
        now: i64,
        dirty: &mut Dirty,
    ) -> usize {
        let m = &mut self.markets[mkt];
        let old = m.price;
        m.price = round_price(price, &m.spec).max(m.spec.tick);
        let new = m.price;
        dirty.markets.insert(mkt);
        self.record_price(mkt, at, dirty);
        self.cross(mkt, old, new, now, dirty)
    }
}
