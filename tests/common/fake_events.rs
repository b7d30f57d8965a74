//! Things that happen to the account outside the API client: funding payments, a
//! trader closing the position on the exchange's site, and a liquidation.

use rust_decimal::Decimal;

use super::fake_book::{Book, Cancel, Dir, FakeOrder, Origin};
use super::fake_outbox::Change;

/// One funding settlement.
#[derive(Clone, Debug)]
pub struct Funding {
    pub id: u64,
    /// The side whose position paid or received it.
    pub dir: Dir,
    /// Positive: received; negative: paid.
    pub amount: Decimal,
    pub time_ms: i64,
    /// The position's size and the mark price at the settlement.
    pub size: Decimal,
    pub mark: Decimal,
    /// The wallet balance after it.
    pub balance_after: Decimal,
}

impl Funding {
    /// The `feeRate` Bybit lists with it (docs/v5/account/transaction-log): the
    /// market rate r for `side=Buy`, -r for `side=Sell`. A long pays
    /// `value × r` and a short receives it, so both come to `-amount / value`.
    pub fn fee_rate(&self) -> Decimal {
        let value = self.size * self.mark;
        if value.is_zero() {
            return Decimal::ZERO;
        }
        (-self.amount / value).round_dp(8)
    }
}

impl Book {
    /// Settles a funding payment on the side that holds a position (the long side
    /// when both or neither do): `amount` > 0 is received, < 0 paid. It moves the
    /// balance and is listed by the funding endpoints. Returns its id.
    pub fn add_funding(&mut self, amount: Decimal, time_ms: i64) -> u64 {
        let dir = if self.long.size.is_zero() && !self.short.size.is_zero() {
            Dir::Short
        } else {
            Dir::Long
        };
        self.add_funding_on(dir, amount, time_ms)
    }

    pub fn add_funding_on(&mut self, dir: Dir, amount: Decimal, time_ms: i64) -> u64 {
        self.balance += amount;
        self.outbox.push(Change::Wallet {
            balance: self.balance,
            delta: amount,
        });
        let id = self.next_id;
        self.next_id += 1;
        self.funding.push(Funding {
            id,
            dir,
            amount,
            time_ms,
            size: self.position(dir).size,
            mark: self.mark(),
            balance_after: self.balance,
        });
        id
    }

    /// A trader closes the whole position on the exchange's site: a market order
    /// without a client id, at the last price, with the taker fee. The client's
    /// own orders stay as they are. Returns the order's id, or None when flat.
    pub fn close_position(&mut self, dir: Dir) -> Option<u64> {
        let size = self.position(dir).size;
        if size.is_zero() {
            return None;
        }
        let mut o = FakeOrder::new("", dir == Dir::Short, dir, size);
        o.origin = Origin::Site;
        Some(self.add(o).id)
    }

    /// The exchange liquidates a side: its open orders (stops included) are
    /// cancelled first, then the position is taken over at the mark with the taker
    /// fee. Returns the liquidation order's id, or None when flat.
    pub fn liquidate(&mut self, dir: Dir) -> Option<u64> {
        let size = self.position(dir).size;
        if size.is_zero() {
            return None;
        }
        let now = self.server_ms();
        for o in self
            .orders
            .iter_mut()
            .filter(|o| o.dir == dir && o.is_open())
        {
            o.status = "cancelled";
            o.cancel = Cancel::Liquidation;
            o.updated_ms = now;
            self.outbox.push(Change::Order(o.clone()));
        }
        let mut o = FakeOrder::new("", dir == Dir::Short, dir, size);
        o.origin = Origin::Liquidation;
        let mark = self.mark();
        let id = self.add_at(o, mark).id;
        Some(id)
    }
}
