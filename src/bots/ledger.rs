//! The cycle's ledger: every fill the bot observed on its orders, and what follows
//! from them alone — the position, its average entry, whether it is flat, how it
//! closed and the cycle's PnL. See docs/bots.md, Ledger.
//!
//! Fills are learnt from order reads, which report a running total
//! (`filled_qty`, `avg_fill_price`, `fee`); `delta` turns the difference between
//! such a read and what the ledger already holds for that order into one new fill
//! — or, when only the fee grew, into a row of quantity 0 carrying the fee, so
//! that Σ fees is the exchange's even when its fee lags its fill.

use rust_decimal::Decimal;

use super::ladder::Side;
use crate::exchange::{ExchangeError, Order, OrderSide};
use crate::money;
use crate::text_enum::text_enum;

text_enum! {
    /// What the order that filled was for (`bot_fills.purpose`).
    pub enum FillPurpose {
        Entry = "entry",
        Leg = "leg",
        TakeProfit = "take_profit",
        TrailingTakeProfit = "trailing_take_profit",
        StopLoss = "stop_loss",
        /// The market close of a `close_position` stop.
        Close = "close",
        /// Closed by someone else (manual, another tool).
        Outside = "outside",
        Liquidation = "liquidation",
    }
}

impl FillPurpose {
    /// Which kind names a close when a cycle's exits are of several kinds:
    /// liquidation > outside > stop-loss > trailing take-profit > manual >
    /// take-profit.
    fn exit_rank(self) -> u8 {
        match self {
            FillPurpose::Entry | FillPurpose::Leg => 0,
            FillPurpose::TakeProfit => 1,
            FillPurpose::Close => 2,
            FillPurpose::TrailingTakeProfit => 3,
            FillPurpose::StopLoss => 4,
            FillPurpose::Outside => 5,
            FillPurpose::Liquidation => 6,
        }
    }

    /// The `close_reason` of a cycle that closed this way (`Ledger::exit_kind`).
    pub fn close_reason(self) -> &'static str {
        match self {
            FillPurpose::TakeProfit | FillPurpose::Entry | FillPurpose::Leg => "take_profit",
            FillPurpose::TrailingTakeProfit => "trailing_take_profit",
            FillPurpose::StopLoss => "stop_loss",
            FillPurpose::Close => "manual",
            FillPurpose::Outside => "outside",
            FillPurpose::Liquidation => "liquidated",
        }
    }
}

/// One observed fill (a row of `bot_fills`).
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    pub cycle: i64,
    pub client_id: String,
    pub exchange_order_id: String,
    pub purpose: FillPurpose,
    pub leg: Option<usize>,
    pub side: OrderSide,
    pub qty: Decimal,
    pub price: Decimal,
    /// USDT, positive = paid.
    pub fee: Decimal,
    pub time_ms: i64,
    /// 0 for the first fill seen on `client_id`, then 1, 2, …
    pub seq: u32,
}

/// A new fill found by comparing an order read with the ledger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delta {
    pub qty: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub seq: u32,
}

/// Decimals kept for a fill price derived from two averages: far finer than any
/// tick, short enough to keep sums exact.
const PRICE_DP: u32 = 12;

/// The fills of one cycle, in the order they were seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    pub fills: Vec<Fill>,
}

impl Ledger {
    pub fn new(fills: Vec<Fill>) -> Ledger {
        Ledger { fills }
    }

    /// (qty, value, fee, count) of the fills already recorded for `client_id`.
    fn recorded(&self, client_id: &str) -> (Decimal, Decimal, Decimal, u32) {
        self.fills
            .iter()
            .filter(|f| f.client_id == client_id)
            .fold((Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, 0), |a, f| {
                (a.0 + f.qty, a.1 + f.qty * f.price, a.2 + f.fee, a.3 + 1)
            })
    }

    /// The fill that `order` (known as `client_id`) reports beyond the ledger, if
    /// any: the quantity delta, its price from the change of
    /// `avg_fill_price × filled_qty`, and the fee delta; or a fee adjustment
    /// (`fee_adjustment`). A fill without a price (an average of 0) is refused,
    /// never recorded: the order is read again.
    pub fn delta(&self, client_id: &str, order: &Order) -> Result<Option<Delta>, ExchangeError> {
        let (qty, value, fee, count) = self.recorded(client_id);
        if order.filled_qty <= qty {
            return Ok(fee_adjustment(order, qty, value, fee, count));
        }
        if order.avg_fill_price <= Decimal::ZERO {
            return Err(ExchangeError::Busy(format!(
                "order {client_id} reports a fill without an average price"
            )));
        }
        let dq = order.filled_qty - qty;
        let Some(total) = order.avg_fill_price.checked_mul(order.filled_qty) else {
            return Ok(None);
        };
        let mut price = (total - value)
            .checked_div(dq)
            .unwrap_or(order.avg_fill_price);
        // An exchange that re-rounds its average can make the derived price of a
        // tiny delta absurd; its own average is then the better estimate.
        if price <= Decimal::ZERO {
            price = order.avg_fill_price;
        }
        Ok(Some(Delta {
            qty: dq,
            price: price.round_dp(PRICE_DP).normalize(),
            fee: order.fee - fee,
            seq: count,
        }))
    }

    /// The rows that are fills, not fee adjustments.
    fn traded(&self) -> impl DoubleEndedIterator<Item = &Fill> {
        self.fills.iter().filter(|f| !f.qty.is_zero())
    }

    fn sum(&self, side: OrderSide) -> (Decimal, Decimal) {
        self.fills
            .iter()
            .filter(|f| f.side == side)
            .fold((Decimal::ZERO, Decimal::ZERO), |a, f| {
                (a.0 + f.qty, a.1 + f.qty * f.price)
            })
    }

    /// (qty, value) of the fills that opened the position of direction `dir`.
    pub fn entries(&self, dir: Side) -> (Decimal, Decimal) {
        self.sum(OrderSide::opening(dir))
    }

    /// (qty, value) of the fills that reduced it.
    pub fn exits(&self, dir: Side) -> (Decimal, Decimal) {
        self.sum(OrderSide::closing(dir))
    }

    pub fn has_entry(&self, dir: Side) -> bool {
        self.entries(dir).0 > Decimal::ZERO
    }

    /// The open size: entries minus exits, never below 0.
    pub fn size(&self, dir: Side) -> Decimal {
        (self.entries(dir).0 - self.exits(dir).0)
            .max(Decimal::ZERO)
            .normalize()
    }

    /// Volume-weighted average of the entries (exits do not move it).
    pub fn avg_entry(&self, dir: Side) -> Decimal {
        let (qty, value) = self.entries(dir);
        if qty <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        (value / qty).normalize()
    }

    /// The entry order's own average fill price (the ladder is measured from it).
    pub fn entry_price(&self) -> Option<Decimal> {
        let (q, v) = self
            .fills
            .iter()
            .filter(|f| f.purpose == FillPurpose::Entry)
            .fold((Decimal::ZERO, Decimal::ZERO), |a, f| {
                (a.0 + f.qty, a.1 + f.qty * f.price)
            });
        (q > Decimal::ZERO).then(|| (v / q).normalize())
    }

    /// Open: entries exist and the exits have not reached them (within half a step).
    pub fn is_open(&self, dir: Side, step: Decimal) -> bool {
        self.has_entry(dir) && self.size(dir) >= step / Decimal::TWO
    }

    /// Flat after being open: the exits reached the entries.
    pub fn is_flat(&self, dir: Side, step: Decimal) -> bool {
        self.has_entry(dir) && !self.is_open(dir, step)
    }

    pub fn leg_filled(&self, leg: usize) -> bool {
        self.fills
            .iter()
            .any(|f| f.purpose == FillPurpose::Leg && f.leg == Some(leg))
    }

    /// When the last fill was seen (Unix ms); 0 for none.
    pub fn last_fill_ms(&self) -> i64 {
        self.traded().map(|f| f.time_ms).max().unwrap_or(0)
    }

    /// How the cycle closed: the most decisive kind among its reducing fills, so
    /// the answer never depends on the order the fills were read in (a stop that
    /// closed the rest after a partial take-profit is a stop-loss). See
    /// docs/bots.md, Stops and closes.
    pub fn exit_kind(&self, dir: Side) -> Option<FillPurpose> {
        let closing = OrderSide::closing(dir);
        self.traded()
            .filter(|f| f.side == closing)
            .map(|f| f.purpose)
            .max_by_key(|p| p.exit_rank())
    }

    pub fn fees(&self) -> Decimal {
        self.fills.iter().map(|f| f.fee).sum()
    }

    /// The closed cycle's numbers: Σ exit − Σ entry (signed by the direction) −
    /// Σ fees + `funding`, fees and PnL rounded to 8 decimals.
    pub fn result(&self, dir: Side, funding: Decimal) -> CycleResult {
        let (entry_qty, entry_value) = self.entries(dir);
        let (exit_qty, exit_value) = self.exits(dir);
        let fees = money::pnl(self.fees());
        let gross = dir.sign() * (exit_value - entry_value);
        let exit_price = if exit_qty > Decimal::ZERO {
            (exit_value / exit_qty).normalize()
        } else {
            Decimal::ZERO
        };
        CycleResult {
            size: entry_qty.normalize(),
            avg_entry: self.avg_entry(dir),
            exit_price,
            fees,
            funding: money::pnl(funding),
            pnl: money::pnl(gross - self.fees() + funding),
        }
    }
}

/// A read of an order the ledger holds in full (`qty` recorded, worth `value`,
/// with `fee`) whose cumulative fee moved further from 0 (more paid, or more
/// rebate): a row of quantity 0, at the recorded average, carrying the
/// difference. Cumulative fees only grow in size, so a smaller one is a stale
/// read and changes nothing.
fn fee_adjustment(
    order: &Order,
    qty: Decimal,
    value: Decimal,
    fee: Decimal,
    count: u32,
) -> Option<Delta> {
    let grew = qty > Decimal::ZERO && order.filled_qty == qty && order.fee.abs() > fee.abs();
    grew.then(|| Delta {
        qty: Decimal::ZERO,
        price: (value / qty).round_dp(PRICE_DP).normalize(),
        fee: order.fee - fee,
        seq: count,
    })
}

/// A closed cycle as `trades` records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CycleResult {
    pub size: Decimal,
    pub avg_entry: Decimal,
    pub exit_price: Decimal,
    pub fees: Decimal,
    pub funding: Decimal,
    pub pnl: Decimal,
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;
    use crate::exchange::{OrderKind, OrderStatus};

    fn order(filled: Decimal, avg: Decimal, fee: Decimal) -> Order {
        Order {
            client_id: "bz-1-1-l1".into(),
            exchange_id: "9".into(),
            symbol: "BTC/USDT".into(),
            side: OrderSide::Buy,
            kind: OrderKind::Limit,
            price: Some(dec!(100)),
            trigger_price: None,
            qty: dec!(3),
            filled_qty: filled,
            avg_fill_price: avg,
            fee,
            reduce_only: false,
            position_side: Side::Long,
            status: OrderStatus::PartiallyFilled,
            created_ms: 0,
        }
    }

    fn fill(purpose: FillPurpose, side: OrderSide, qty: Decimal, price: Decimal) -> Fill {
        Fill {
            cycle: 1,
            client_id: format!("{purpose}-{qty}"),
            exchange_order_id: String::new(),
            purpose,
            leg: None,
            side,
            qty,
            price,
            fee: dec!(0.1),
            time_ms: 5,
            seq: 0,
        }
    }

    #[test]
    fn a_partly_filled_order_gives_one_delta_per_new_part() {
        let mut l = Ledger::default();
        let first = l.delta("bz-1-1-l1", &order(dec!(1), dec!(100), dec!(0.02)));
        let d = first.unwrap().unwrap();
        assert_eq!(
            (d.qty, d.price, d.fee, d.seq),
            (dec!(1), dec!(100), dec!(0.02), 0)
        );
        l.fills.push(Fill {
            client_id: "bz-1-1-l1".into(),
            ..fill(FillPurpose::Leg, OrderSide::Buy, d.qty, d.price)
        });
        l.fills[0].fee = d.fee;
        // Two more at 103: the average becomes (100 + 206) / 3 = 102.
        let d = l
            .delta("bz-1-1-l1", &order(dec!(3), dec!(102), dec!(0.06)))
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.qty, d.price, d.fee, d.seq),
            (dec!(2), dec!(103), dec!(0.04), 1)
        );
        // The same read again: nothing new.
        l.fills.push(Fill {
            client_id: "bz-1-1-l1".into(),
            seq: 1,
            ..fill(FillPurpose::Leg, OrderSide::Buy, d.qty, d.price)
        });
        assert_eq!(
            l.delta("bz-1-1-l1", &order(dec!(3), dec!(102), dec!(0.06))),
            Ok(None)
        );
    }

    #[test]
    fn a_fee_that_lags_its_fill_is_recorded_when_it_arrives() {
        let mut l = Ledger::default();
        // The fill is read before its fee: recorded with fee 0.
        let d = l
            .delta("bz-1-1-l1", &order(dec!(1), dec!(100), Decimal::ZERO))
            .unwrap()
            .unwrap();
        l.fills.push(Fill {
            client_id: "bz-1-1-l1".into(),
            fee: d.fee,
            ..fill(FillPurpose::Leg, OrderSide::Buy, d.qty, d.price)
        });
        // The same quantity with its fee: a row of quantity 0 carrying it.
        let d = l
            .delta("bz-1-1-l1", &order(dec!(1), dec!(100), dec!(0.02)))
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.qty, d.price, d.fee, d.seq),
            (Decimal::ZERO, dec!(100), dec!(0.02), 1)
        );
        l.fills.push(Fill {
            client_id: "bz-1-1-l1".into(),
            fee: d.fee,
            seq: d.seq,
            time_ms: 99,
            ..fill(FillPurpose::Leg, OrderSide::Buy, d.qty, d.price)
        });
        assert_eq!(l.fees(), dec!(0.02));
        assert_eq!(
            (l.size(Side::Long), l.avg_entry(Side::Long)),
            (dec!(1), dec!(100))
        );
        assert_eq!(l.last_fill_ms(), 5, "an adjustment is not a fill");
        // Read again, or read stale: nothing more.
        for stale in [dec!(0.02), dec!(0.01), Decimal::ZERO] {
            assert_eq!(
                l.delta("bz-1-1-l1", &order(dec!(1), dec!(100), stale)),
                Ok(None)
            );
        }
        // Nothing recorded for an order: no fee to adjust.
        assert_eq!(
            Ledger::default().delta("bz-1-1-l1", &order(Decimal::ZERO, Decimal::ZERO, dec!(1))),
            Ok(None)
        );
    }

    #[test]
    fn an_exits_fee_adjustment_does_not_change_how_the_cycle_closed() {
        let mut l = Ledger::new(vec![
            fill(FillPurpose::Entry, OrderSide::Buy, dec!(2), dec!(100)),
            fill(FillPurpose::TakeProfit, OrderSide::Sell, dec!(1), dec!(101)),
            fill(FillPurpose::StopLoss, OrderSide::Sell, dec!(1), dec!(95)),
        ]);
        l.fills.push(Fill {
            fee: dec!(0.01),
            ..fill(
                FillPurpose::TakeProfit,
                OrderSide::Sell,
                Decimal::ZERO,
                dec!(101),
            )
        });
        assert_eq!(l.exit_kind(Side::Long), Some(FillPurpose::StopLoss));
        assert_eq!(l.result(Side::Long, Decimal::ZERO).fees, dec!(0.31));
    }

    #[test]
    fn a_fill_without_a_price_is_refused_never_recorded_at_0() {
        let l = Ledger::default();
        let e = l
            .delta("bz-1-1-l1", &order(dec!(1), Decimal::ZERO, dec!(0.02)))
            .unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        // Nothing filled yet: no price needed, nothing to record.
        assert_eq!(
            l.delta(
                "bz-1-1-l1",
                &order(Decimal::ZERO, Decimal::ZERO, Decimal::ZERO)
            ),
            Ok(None)
        );
    }

    #[test]
    fn position_flatness_and_pnl_come_from_the_fills() {
        let mut l = Ledger::new(vec![
            fill(FillPurpose::Entry, OrderSide::Buy, dec!(1), dec!(100)),
            fill(FillPurpose::Leg, OrderSide::Buy, dec!(1), dec!(90)),
        ]);
        let step = dec!(0.001);
        assert!(l.is_open(Side::Long, step) && !l.is_flat(Side::Long, step));
        assert_eq!(
            (l.size(Side::Long), l.avg_entry(Side::Long)),
            (dec!(2), dec!(95))
        );
        assert_eq!(l.entry_price(), Some(dec!(100)));
        l.fills.push(fill(
            FillPurpose::TakeProfit,
            OrderSide::Sell,
            dec!(0.5),
            dec!(100),
        ));
        assert_eq!(l.size(Side::Long), dec!(1.5));
        assert_eq!(
            l.avg_entry(Side::Long),
            dec!(95),
            "exits do not move the average"
        );
        l.fills.push(fill(
            FillPurpose::TakeProfit,
            OrderSide::Sell,
            dec!(1.5),
            dec!(98),
        ));
        assert!(l.is_flat(Side::Long, step));
        assert_eq!(l.exit_kind(Side::Long), Some(FillPurpose::TakeProfit));
        // Exits 50 + 147 = 197, entries 190, fees 0.4, funding −0.25.
        let r = l.result(Side::Long, dec!(-0.25));
        assert_eq!(r.pnl, dec!(6.35));
        assert_eq!(
            (r.size, r.exit_price, r.fees),
            (dec!(2), dec!(98.5), dec!(0.4))
        );
        // A short with the same prices loses what the long made, before costs.
        let short = Ledger::new(
            l.fills
                .iter()
                .map(|f| Fill {
                    side: match f.side {
                        OrderSide::Buy => OrderSide::Sell,
                        OrderSide::Sell => OrderSide::Buy,
                    },
                    ..f.clone()
                })
                .collect(),
        );
        assert_eq!(short.result(Side::Short, Decimal::ZERO).pnl, dec!(-7.4));
    }

    #[test]
    fn the_close_kind_is_the_most_decisive_exit_whatever_the_read_order() {
        let entry = fill(FillPurpose::Entry, OrderSide::Buy, dec!(1), dec!(100));
        let tp = fill(
            FillPurpose::TakeProfit,
            OrderSide::Sell,
            dec!(0.4),
            dec!(101),
        );
        let sl = fill(FillPurpose::StopLoss, OrderSide::Sell, dec!(0.6), dec!(95));
        for exits in [[tp.clone(), sl.clone()], [sl.clone(), tp.clone()]] {
            let mut fills = vec![entry.clone()];
            fills.extend(exits);
            let l = Ledger::new(fills);
            assert_eq!(l.exit_kind(Side::Long), Some(FillPurpose::StopLoss));
        }
        let l = Ledger::new(vec![
            entry.clone(),
            fill(
                FillPurpose::Liquidation,
                OrderSide::Sell,
                dec!(0.5),
                dec!(90),
            ),
            sl,
            fill(FillPurpose::Outside, OrderSide::Sell, dec!(0.1), dec!(91)),
        ]);
        assert_eq!(l.exit_kind(Side::Long), Some(FillPurpose::Liquidation));
        let l = Ledger::new(vec![
            entry,
            fill(FillPurpose::Close, OrderSide::Sell, dec!(0.5), dec!(99)),
            tp,
        ]);
        assert_eq!(l.exit_kind(Side::Long), Some(FillPurpose::Close));
    }

    #[test]
    fn each_close_kind_has_its_reason() {
        for (p, want) in [
            (FillPurpose::StopLoss, "stop_loss"),
            (FillPurpose::TrailingTakeProfit, "trailing_take_profit"),
            (FillPurpose::Close, "manual"),
            (FillPurpose::Outside, "outside"),
            (FillPurpose::Liquidation, "liquidated"),
        ] {
            assert_eq!(p.close_reason(), want);
        }
    }
}
