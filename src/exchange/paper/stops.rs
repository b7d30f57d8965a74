//! Conditional stops (docs/bots.md, Exchanges): reduce-only market orders that rest
//! untriggered until the mark price reaches their trigger — a long's stop (a sell)
//! when the mark falls to it, a short's (a buy) when the mark rises to it — and then
//! execute at that mark as taker, capped at the position.

use rust_decimal::Decimal;

use super::book::{Book, Dirty};
use super::matching::TAKER_FEE;
use crate::bots::ladder::{round_stop, Market};
use crate::exchange::{ExchangeError, NewOrder, OrderKind, OrderSide, OrderStatus};

/// The trigger price of a new stop, rounded to the tick toward its position's
/// entry — up for a long's stop, down for a short's — so the loss it allows is
/// never larger than asked (`None` for the other kinds, whose `trigger_price` is
/// ignored). Refused, as Bybit refuses them: a stop that is not reduce-only, a
/// trigger that is not a positive price, and a trigger on the wrong side of the
/// mark `current` (it would fire at once).
pub(super) fn checked_trigger(
    req: &NewOrder,
    spec: &Market,
    current: Decimal,
) -> Result<Option<Decimal>, ExchangeError> {
    if req.kind != OrderKind::Stop {
        return Ok(None);
    }
    let cid = &req.client_id;
    if !req.reduce_only {
        return Err(ExchangeError::Rejected(format!(
            "stop order {cid} must be reduce-only: a stop closes a position"
        )));
    }
    let trigger = req
        .trigger_price
        .filter(|t| *t > Decimal::ZERO)
        .map(|t| round_stop(t, req.position_side, spec))
        .filter(|t| *t > Decimal::ZERO)
        .ok_or_else(|| {
            ExchangeError::Rejected(format!(
                "stop order {cid} needs a trigger price of at least one tick, got {:?}",
                req.trigger_price
            ))
        })?;
    let (wrong_side, must_be) = match req.side {
        OrderSide::Sell => (trigger >= current, "below"),
        OrderSide::Buy => (trigger <= current, "above"),
    };
    if wrong_side {
        return Err(ExchangeError::Rejected(format!(
            "stop order {cid}: the trigger price {trigger} must be {must_be} the mark price \
             {current} for a {:?} position's stop",
            req.position_side
        )));
    }
    Ok(Some(trigger))
}

impl Book {
    /// Executes the triggered stop `id` as a taker market order for at most the
    /// position's size — at the price a market order gets (the live ask or bid,
    /// or `mark` plus or minus the half-spread) — or cancels it when the position
    /// is already flat. Returns whether it filled.
    pub(super) fn trigger_stop(
        &mut self,
        id: i64,
        mark: Decimal,
        now: i64,
        dirty: &mut Dirty,
    ) -> bool {
        let Some(mut rec) = self.remove_open(id) else {
            return false;
        };
        let pos = self.position(rec.user_id, rec.mkt, rec.order.position_side);
        let filled = pos.size > Decimal::ZERO;
        if filled {
            let qty = rec.remaining().min(pos.size);
            let buy = rec.order.side == OrderSide::Buy;
            let price = self.stop_fill_price(rec.mkt, buy, mark, now);
            self.apply_fill(&mut rec, qty, price, TAKER_FEE, now, dirty);
        } else {
            rec.order.status = OrderStatus::Cancelled;
            rec.updated_ms = now;
        }
        dirty.orders.insert(id, rec);
        filled
    }
}
