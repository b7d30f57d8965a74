//! Order placement, cancels and fills: the exchange's rules, applied to the
//! in-memory book. Nothing here touches SQLite; every change is recorded in a
//! `Dirty` for the caller to write through. Price moves are in `prices`, the
//! stops' own rules in `stops`.

use rust_decimal::Decimal;

use super::book::{level, round_qty, side_ix, Book, Dirty, Fill, MktId, OrderRec};
use super::live::spread_price;
use super::stops;
use crate::bots::ladder::{floor_qty, gross_pnl, round_price, Market, Side};
use crate::exchange::{ExchangeError, NewOrder, Order, OrderKind, OrderSide, OrderStatus};

/// Taker fee: market orders and limits that are marketable when placed (0.055 %).
pub(super) const TAKER_FEE: Decimal = Decimal::from_parts(55, 0, 0, false, 5);
/// Maker fee: resting limit orders filled by a later price move (0.02 %).
pub(super) const MAKER_FEE: Decimal = Decimal::from_parts(2, 0, 0, false, 4);

/// What one price move reached: resting buys at or above `low`, sells at or below
/// `high` (the path of the last price, or the live bid and ask), stops by `mark`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Touch {
    pub low: Decimal,
    pub high: Decimal,
    pub mark: Decimal,
    /// The mark fell: what a fall reaches is executed first.
    pub falling: bool,
}

impl Book {
    /// Validates and executes a new order for `uid` on `mkt` (the duplicate check is
    /// the caller's: it needs the database). Marketable orders fill at once as taker;
    /// limits and stops rest. Nothing changes when it fails.
    pub fn place(
        &mut self,
        uid: i64,
        mkt: MktId,
        req: &NewOrder,
        now: i64,
        dirty: &mut Dirty,
    ) -> Result<Order, ExchangeError> {
        let spec = self.markets[mkt].spec;
        let current = self.markets[mkt].price;
        let qty = checked_qty(req.qty, &spec)?;
        let limit = checked_limit(req, &spec)?;
        let opens = req.side == OrderSide::opening(req.position_side);
        check_direction(req, opens)?;
        let trigger = stops::checked_trigger(req, &spec, current)?;
        if !opens && self.position(uid, mkt, req.position_side).size <= Decimal::ZERO {
            return Err(ExchangeError::Rejected(format!(
                "reduce-only order {} has no {:?} position to reduce",
                req.client_id, req.position_side
            )));
        }
        let buy = req.side == OrderSide::Buy;
        // What a marketable order takes: with live prices the ask (buy) or bid
        // (sell), for limits as for market orders, none while the market is
        // paused; walked or replayed, a market order the mark plus or minus the
        // half-spread, and a limit crossing the mark the better of its limit and
        // that spread price.
        let against = match limit {
            Some(_) if self.live.is_none() => Some(current),
            _ => self.touch_price(mkt, buy, now),
        };
        let marketable = trigger.is_none()
            && match (limit, against) {
                (None, _) => true,
                (Some(p), Some(a)) => (buy && p >= a) || (!buy && p <= a),
                // A live limit waits for the market's next fresh quote.
                (Some(_), None) => false,
            };
        let taken = match against {
            Some(a) => a,
            None if marketable => {
                return Err(ExchangeError::Network(format!(
                    "no fresh price for {} yet: the paper market is paused",
                    self.markets[mkt].symbol
                )))
            }
            None => current,
        };
        let taken = match limit {
            Some(p) if self.live.is_none() => {
                let spread = spread_price(current, buy, &spec);
                if buy {
                    spread.min(p)
                } else {
                    spread.max(p)
                }
            }
            _ => taken,
        };
        if opens {
            let price = if marketable {
                taken
            } else {
                limit.unwrap_or(current)
            };
            let margin = qty * price / Decimal::from(self.leverage(uid, mkt).max(1));
            if margin > self.available(uid) {
                return Err(ExchangeError::InsufficientBalance);
            }
        }
        let mut rec = self.new_order(uid, mkt, req, qty, (limit, trigger), now);
        self.account_mut(uid, dirty);
        if marketable {
            self.apply_fill(&mut rec, qty, taken, TAKER_FEE, now, dirty);
        } else {
            self.insert_open(rec.clone());
        }
        dirty.orders.insert(rec.id, rec.clone());
        Ok(rec.order)
    }

    /// A fresh order record with the next id; `prices` are its checked limit and
    /// trigger prices.
    pub(super) fn new_order(
        &mut self,
        uid: i64,
        mkt: MktId,
        req: &NewOrder,
        qty: Decimal,
        (limit, trigger): (Option<Decimal>, Option<Decimal>),
        now: i64,
    ) -> OrderRec {
        let id = self.next_id;
        self.next_id += 1;
        OrderRec {
            id,
            user_id: uid,
            mkt,
            updated_ms: now,
            order: Order {
                client_id: req.client_id.clone(),
                exchange_id: id.to_string(),
                symbol: self.markets[mkt].symbol.clone(),
                side: req.side,
                kind: req.kind,
                price: limit,
                trigger_price: trigger,
                qty,
                filled_qty: Decimal::ZERO,
                avg_fill_price: Decimal::ZERO,
                fee: Decimal::ZERO,
                reduce_only: req.reduce_only,
                position_side: req.position_side,
                status: OrderStatus::Open,
                created_ms: now,
            },
        }
    }

    /// Cancels the account's open order `client_id`; an unknown or closed one is
    /// silently ignored, as the trait asks.
    pub fn cancel(&mut self, uid: i64, mkt: MktId, client_id: &str, now: i64, dirty: &mut Dirty) {
        if let Some(id) = self.open_by_client(uid, mkt, client_id).map(|r| r.id) {
            self.cancel_open(id, now, dirty);
        }
    }

    /// Cancels the account's open order with exchange id `id` on a market; as
    /// `cancel`, anything else is ignored.
    pub fn cancel_by_id(&mut self, uid: i64, mkt: MktId, id: i64, now: i64, dirty: &mut Dirty) {
        let owned = self
            .orders
            .get(&id)
            .is_some_and(|r| r.user_id == uid && r.mkt == mkt);
        if owned {
            self.cancel_open(id, now, dirty);
        }
    }

    pub(super) fn cancel_open(&mut self, id: i64, now: i64, dirty: &mut Dirty) {
        if let Some(mut rec) = self.remove_open(id) {
            rec.order.status = OrderStatus::Cancelled;
            rec.updated_ms = now;
            dirty.orders.insert(id, rec);
        }
    }

    /// Fills `qty` of `rec` at `price`: moves the position, credits realised PnL,
    /// debits the fee, records the fill. A reducing fill is clipped to the position.
    /// Orders always fill completely (there is no depth to run out of), so the
    /// order ends `Filled`.
    pub(super) fn apply_fill(
        &mut self,
        rec: &mut OrderRec,
        qty: Decimal,
        price: Decimal,
        fee_rate: Decimal,
        now: i64,
        dirty: &mut Dirty,
    ) {
        let spec = self.markets[rec.mkt].spec;
        let (opens, side) = (rec.opens(), rec.order.position_side);
        let acct = self.account_mut(rec.user_id, dirty);
        let pos = &mut acct.positions.entry(rec.mkt).or_default()[side_ix(side)];
        let filled = if opens {
            pos.avg = ((pos.size * pos.avg + qty * price) / (pos.size + qty)).normalize();
            pos.size = round_qty(pos.size + qty, &spec);
            qty
        } else {
            let q = qty.min(pos.size);
            acct.balance += gross_pnl(side, q, pos.avg, price);
            pos.size = round_qty(pos.size - q, &spec);
            if pos.size <= Decimal::ZERO {
                *pos = Default::default();
            }
            q
        };
        // Fees are money: 8 decimals, like every fee and PnL (docs/bots.md, Money).
        let fee = crate::money::pnl(filled * price * fee_rate);
        acct.balance -= fee;
        let o = &mut rec.order;
        if !(o.filled_qty + filled).is_zero() {
            o.avg_fill_price = ((o.avg_fill_price * o.filled_qty + filled * price)
                / (o.filled_qty + filled))
                .normalize();
        }
        o.filled_qty = round_qty(o.filled_qty + filled, &spec);
        o.fee += fee;
        o.status = OrderStatus::Filled;
        rec.updated_ms = now;
        if filled > Decimal::ZERO {
            dirty.fills.push(Fill {
                user_id: rec.user_id,
                order_id: rec.id,
                mkt: rec.mkt,
                side: o.side,
                qty: filled,
                price,
                fee,
                time_ms: now,
                liquidation: false,
            });
        }
        dirty.balances.insert(rec.user_id);
        dirty
            .positions
            .insert((rec.user_id, rec.mkt, side_ix(side)));
        self.note_holder(rec.user_id, rec.mkt);
    }

    /// Fills a resting order at its limit price as maker, or cancels it when it is
    /// reduce-only and its position is already flat. Returns whether it filled.
    fn fill_resting(&mut self, id: i64, now: i64, dirty: &mut Dirty) -> bool {
        let Some(mut rec) = self.remove_open(id) else {
            return false;
        };
        let pos = self.position(rec.user_id, rec.mkt, rec.order.position_side);
        let filled = rec.opens() || pos.size > Decimal::ZERO;
        if filled {
            let (qty, price) = (
                rec.remaining(),
                rec.order.price.unwrap_or(self.markets[rec.mkt].price),
            );
            self.apply_fill(&mut rec, qty, price, MAKER_FEE, now, dirty);
        } else {
            rec.order.status = OrderStatus::Cancelled;
            rec.updated_ms = now;
        }
        dirty.orders.insert(id, rec);
        filled
    }

    /// Executes every resting order that the move `old → new` crosses (walked,
    /// replayed and set prices, where the price is also the mark). Returns the fills.
    pub fn cross(
        &mut self,
        mkt: MktId,
        old: Decimal,
        new: Decimal,
        now: i64,
        dirty: &mut Dirty,
    ) -> usize {
        let touch = Touch {
            low: old.min(new),
            high: old.max(new),
            mark: new,
            falling: new < old,
        };
        self.touch(mkt, touch, now, dirty)
    }

    /// Executes every resting order a price move reached, in the order the path
    /// reaches them (nearest price first, then oldest): limits fill at their
    /// price, stops whose trigger the mark reached execute at the mark. A
    /// position's liquidation price is a level on that path like an order's: a
    /// long is liquidated before the fall reaches orders below its liquidation
    /// price (a gap never fills legs or a stop past it), a short likewise on a
    /// rise. Returns the fills.
    pub fn touch(&mut self, mkt: MktId, t: Touch, now: i64, dirty: &mut Dirty) -> usize {
        let m = &self.markets[mkt];
        // What a fall reaches: buys at or above the low, sell stops at or above the
        // mark; highest first. A rise: sells and buy stops, lowest first.
        let mut falling: Vec<_> = m.bids.range(level(t.low, i64::MIN)..).copied().collect();
        falling.extend(m.stops_fall.range(level(t.mark, i64::MIN)..).copied());
        falling.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut rising: Vec<_> = m.asks.range(..=level(t.high, i64::MAX)).copied().collect();
        rising.extend(m.stops_rise.range(..=level(t.mark, i64::MAX)).copied());
        rising.sort();
        let (first, second) = if t.falling {
            ((Side::Long, falling), (Side::Short, rising))
        } else {
            ((Side::Short, rising), (Side::Long, falling))
        };
        let mut fills = 0;
        for (side, path) in [first, second] {
            if path.is_empty() {
                continue;
            }
            // The liquidations the mark reaches, in the order the path does.
            let mut due = self.liquidations_reached(mkt, side, t.mark).into_iter();
            let mut next = due.next();
            for (price, id) in path {
                // Those at or before this order's level come first.
                while let Some((liq, uid)) = next.filter(|&(liq, _)| match side {
                    Side::Long => liq >= price,
                    Side::Short => liq <= price,
                }) {
                    fills += self.liquidate_if_reached(uid, mkt, side, liq, now, dirty);
                    next = due.next();
                }
                fills += usize::from(self.execute_resting(id, t.mark, now, dirty));
            }
        }
        fills + self.liquidate_at(mkt, t.mark, now, dirty)
    }

    /// Executes a crossed order: a stop at the mark, a limit at its price.
    fn execute_resting(&mut self, id: i64, mark: Decimal, now: i64, dirty: &mut Dirty) -> bool {
        match self.orders.get(&id).map(|r| r.order.kind) {
            Some(OrderKind::Stop) => self.trigger_stop(id, mark, now, dirty),
            Some(_) => self.fill_resting(id, now, dirty),
            None => false,
        }
    }
}

/// The quantity floored to the step; `BelowMinimum` when that is under the minimum
/// (or not a positive number at all).
fn checked_qty(qty: Decimal, spec: &Market) -> Result<Decimal, ExchangeError> {
    if qty <= Decimal::ZERO {
        return Err(ExchangeError::BelowMinimum);
    }
    let qty = floor_qty(qty, spec);
    if qty <= Decimal::ZERO || qty < spec.min_qty {
        return Err(ExchangeError::BelowMinimum);
    }
    Ok(qty)
}

/// The limit price rounded to the tick (`None` for market and stop orders).
fn checked_limit(req: &NewOrder, spec: &Market) -> Result<Option<Decimal>, ExchangeError> {
    match (req.kind, req.price) {
        (OrderKind::Market | OrderKind::Stop, _) => Ok(None),
        (OrderKind::Limit, Some(p)) if p > Decimal::ZERO => {
            let p = round_price(p, spec);
            if p > Decimal::ZERO {
                Ok(Some(p))
            } else {
                Err(ExchangeError::Rejected(format!(
                    "price {p} is below one tick"
                )))
            }
        }
        (OrderKind::Limit, p) => Err(ExchangeError::Rejected(format!(
            "limit order {} needs a positive price, got {p:?}",
            req.client_id
        ))),
    }
}

/// Hedge mode: only reduce-only orders may reduce, and reduce-only orders may only
/// reduce.
fn check_direction(req: &NewOrder, opens: bool) -> Result<(), ExchangeError> {
    match (opens, req.reduce_only) {
        (true, true) => Err(ExchangeError::Rejected(format!(
            "reduce-only order {} would increase the {:?} position",
            req.client_id, req.position_side
        ))),
        (false, false) => Err(ExchangeError::Rejected(format!(
            "order {} would reduce the {:?} position but is not reduce-only",
            req.client_id, req.position_side
        ))),
        _ => Ok(()),
    }
}
