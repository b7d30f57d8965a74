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
use crate::bots::ladder::{round_price, Side};
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

impl Book {
    /// The liquidation price of the account's position, `None` when flat.
    pub fn liquidation_of(&self, uid: i64, mkt: MktId, side: Side) -> Option<Decimal> {
        let pos = self.position(uid, mkt, side);
        (pos.size > Decimal::ZERO).then(|| {
            let lev = self.leverage(uid, mkt);
            liquidation_price(side, pos.avg, lev, self.markets[mkt].mmr)
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
        let holders: Vec<i64> = self.markets[mkt].holders.iter().copied().collect();
        let mut done = 0;
        for uid in holders {
            for side in [Side::Long, Side::Short] {
                let reached = self
                    .liquidation_of(uid, mkt, side)
                    .is_some_and(|liq| match side {
                        Side::Long => mark <= liq,
                        Side::Short => mark >= liq,
                    });
                if reached {
                    self.liquidate(uid, mkt, side, now, dirty);
                    done += 1;
                }
            }
        }
        done
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
        let bankrupt = bankruptcy_price(side, pos.avg, self.leverage(uid, mkt));
        let price = round_price(bankrupt, &spec).max(spec.tick);
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
