//! Liquidation of isolated-margin positions (docs/bots.md, Paper exchange).
//!
//! As Bybit's isolated-margin documentation gives it, with `lev` the position's
//! leverage and `mmr` the listing's maintenance margin rate:
//! - long:  liquidation = entry × (1 − 1/lev + mmr), bankruptcy = entry × (1 − 1/lev)
//! - short: liquidation = entry × (1 + 1/lev − mmr), bankruptcy = entry × (1 + 1/lev)
//!
//! When the mark reaches the liquidation price the position is closed at its
//! bankruptcy price — the loss is exactly its initial margin — with no fee, its
//! resting orders of that side are cancelled, and the fill is marked as a
//! liquidation so the bot trading it records the cycle as liquidated.

use rust_decimal::Decimal;

use super::book::{Book, Dirty, MktId};
use crate::bots::ladder::{Market, Side};
use crate::exchange::{NewOrder, OrderKind, OrderSide, OrderStatus};

/// The mark price at which a position of `side` entered at `entry` with
/// `leverage` is liquidated.
pub fn liquidation_price(side: Side, entry: Decimal, leverage: u32, mmr: Decimal) -> Decimal {
    let inv = Decimal::ONE / Decimal::from(leverage.max(1));
    let factor = match side {
        Side::Long => Decimal::ONE - inv + mmr,
        Side::Short => Decimal::ONE + inv - mmr,
    };
    (entry * factor).max(Decimal::ZERO)
}

/// The price at which the position's margin is exactly gone.
pub fn bankruptcy_price(side: Side, entry: Decimal, leverage: u32) -> Decimal {
    let inv = Decimal::ONE / Decimal::from(leverage.max(1));
    let factor = match side {
        Side::Long => Decimal::ONE - inv,
        Side::Short => Decimal::ONE + inv,
    };
    (entry * factor).max(Decimal::ZERO)
}

/// Whether a path at `price` reached a `side` position's liquidation price `liq`.
fn reached(side: Side, liq: Decimal, price: Decimal) -> bool {
    match side {
        Side::Long => price <= liq,
        Side::Short => price >= liq,
    }
}

/// The liquidation price on the market's tick (a long's rounded down, a short's
/// up): the one price both shown and checked, so a mark at the shown price
/// liquidates and one a tick inside it does not.
pub fn liquidation_trigger(
    side: Side,
    entry: Decimal,
    leverage: u32,
    mmr: Decimal,
    spec: &Market,
) -> Decimal {
    to_tick(liquidation_price(side, entry, leverage, mmr), side, spec)
}

/// The bankruptcy price on the market's tick, rounded in the trader's favour
/// (a long's up, a short's down): isolated margin caps the loss at the
/// position's margin, so the rounding may not take a fraction of a tick more
/// from the free balance.
pub fn bankruptcy_fill(side: Side, entry: Decimal, leverage: u32, spec: &Market) -> Decimal {
    let opposite = match side {
        Side::Long => Side::Short,
        Side::Short => Side::Long,
    };
    to_tick(bankruptcy_price(side, entry, leverage), opposite, spec)
}

/// `price` on the tick: down for a long, up for a short; at least one tick.
fn to_tick(price: Decimal, side: Side, spec: &Market) -> Decimal {
    let ticks = price / spec.tick;
    let ticks = match side {
        Side::Long => ticks.floor(),
        Side::Short => ticks.ceil(),
    };
    (ticks * spec.tick).max(spec.tick)
}

impl Book {
    /// The liquidation price of the account's position, `None` when flat.
    pub fn liquidation_of(&self, uid: i64, mkt: MktId, side: Side) -> Option<Decimal> {
        let pos = self.position(uid, mkt, side);
        (pos.size > Decimal::ZERO).then(|| {
            let (lev, m) = (self.leverage(uid, mkt), &self.markets[mkt]);
            liquidation_trigger(side, pos.avg, lev, m.mmr, &m.spec)
        })
    }

    /// Liquidates every position on the market whose liquidation price `mark`
    /// reached. Returns how many.
    pub fn liquidate_at(
        &mut self,
        mkt: MktId,
        mark: Decimal,
        now: i64,
        dirty: &mut Dirty,
    ) -> usize {
        self.liquidate_reached(mkt, Side::Long, mark, now, dirty)
            + self.liquidate_reached(mkt, Side::Short, mark, now, dirty)
    }

    /// Liquidates the market's `side` positions whose liquidation price a path
    /// reaching `price` passed (longs at or above it, shorts at or below it).
    /// Returns how many.
    pub fn liquidate_reached(
        &mut self,
        mkt: MktId,
        side: Side,
        price: Decimal,
        now: i64,
        dirty: &mut Dirty,
    ) -> usize {
        let due = self.liquidations_reached(mkt, side, price);
        due.into_iter()
            .map(|(_, uid)| {
                self.liquidate(uid, mkt, side, now, dirty);
                1
            })
            .sum()
    }

    /// The market's `side` positions whose liquidation price a path reaching
    /// `price` passes, as (liquidation price, user) in the order the path
    /// reaches them: longs highest first, shorts lowest first.
    pub fn liquidations_reached(
        &self,
        mkt: MktId,
        side: Side,
        price: Decimal,
    ) -> Vec<(Decimal, i64)> {
        let mut due: Vec<(Decimal, i64)> = self.markets[mkt]
            .holders
            .iter()
            .filter_map(|&uid| {
                let liq = self.liquidation_of(uid, mkt, side)?;
                reached(side, liq, price).then_some((liq, uid))
            })
            .collect();
        match side {
            Side::Long => due.sort_by(|a, b| b.cmp(a)),
            Side::Short => due.sort(),
        }
        due
    }

    /// Liquidates the position if its liquidation price is still `liq` (a fill
    /// on the way may have moved it). Returns 1 if it did.
    pub fn liquidate_if_reached(
        &mut self,
        uid: i64,
        mkt: MktId,
        side: Side,
        liq: Decimal,
        now: i64,
        dirty: &mut Dirty,
    ) -> usize {
        if self.liquidation_of(uid, mkt, side) != Some(liq) {
            return 0;
        }
        self.liquidate(uid, mkt, side, now, dirty);
        1
    }

    /// Closes the position at its bankruptcy price (rounded to the tick), without
    /// a fee, after cancelling its resting orders.
    fn liquidate(&mut self, uid: i64, mkt: MktId, side: Side, now: i64, dirty: &mut Dirty) {
        let resting: Vec<i64> = self
            .open_ids(uid, mkt)
            .iter()
            .copied()
            .filter(|id| {
                self.orders
                    .get(id)
                    .is_some_and(|r| r.order.position_side == side)
            })
            .collect();
        for id in resting {
            self.cancel_open(id, now, dirty);
        }
        let pos = self.position(uid, mkt, side);
        let spec = self.markets[mkt].spec;
        let price = bankruptcy_fill(side, pos.avg, self.leverage(uid, mkt), &spec);
        let req = NewOrder {
            client_id: format!("liquidation-{}", self.next_id),
            symbol: self.markets[mkt].symbol.clone(),
            side: OrderSide::closing(side),
            kind: OrderKind::Market,
            price: None,
            trigger_price: None,
            qty: pos.size,
            reduce_only: true,
            position_side: side,
        };
        let mut rec = self.new_order(uid, mkt, &req, pos.size, (None, None), now);
        self.apply_fill(&mut rec, pos.size, price, Decimal::ZERO, now, dirty);
        if let Some(fill) = dirty.fills.last_mut() {
            fill.liquidation = true;
        }
        rec.order.status = OrderStatus::Filled;
        dirty.orders.insert(rec.id, rec);
    }
}
