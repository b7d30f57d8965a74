//! What a private stream tells about an account, already in the exchange
//! trait's types: the parsers (`bybit`, `bingx`) produce these, the account
//! view (`view`) applies them.

use rust_decimal::Decimal;

use crate::exchange::{Execution, Order, Position};

/// One change on the account. `time_ms` is the exchange's time of the change
/// (its `updatedTime`, event time or fill time): the view never lets an older
/// one overwrite a newer one.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// An order's whole state after the change. `fee_delta` is set by streams
    /// that report the fee of this fill only (BingX) rather than the order's
    /// running total (Bybit, whose `Order::fee` is already the total).
    Order {
        order: Order,
        time_ms: i64,
        fee_delta: Option<Decimal>,
    },
    /// One fill on `symbol` (ours, `BTC/USDT`).
    Execution { symbol: String, exec: Execution },
    /// One side's position on `symbol`.
    Position {
        symbol: String,
        position: Position,
        time_ms: i64,
    },
    /// The USDT wallet balance.
    Wallet { balance: Decimal, time_ms: i64 },
}

impl Update {
    /// The symbol the update concerns (none for the wallet).
    pub fn symbol(&self) -> Option<&str> {
        match self {
            Update::Order { order, .. } => Some(&order.symbol),
            Update::Execution { symbol, .. } | Update::Position { symbol, .. } => Some(symbol),
            Update::Wallet { .. } => None,
        }
    }

    /// The metric label of its kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Update::Order { .. } => "order",
            Update::Execution { .. } => "execution",
            Update::Position { .. } => "position",
            Update::Wallet { .. } => "wallet",
        }
    }

    /// Whether the bots trading its symbol should step now (an order changed or
    /// something filled).
    pub fn wakes(&self) -> bool {
        matches!(self, Update::Order { .. } | Update::Execution { .. })
    }
}
