//! Exchanges: one trait that the strategy talks to, and its implementations.
//! See docs/bots.md, Exchanges.
//!
//! The trait is blocking and per account: a value implementing it is already bound to
//! one user's credentials (or, for `paper`, one user's simulated account). Every
//! order carries the bot's deterministic client order id, which is how the
//! bot finds its orders again after a restart instead of placing them twice.

pub mod bingx;
pub mod bybit;
pub mod paper;
pub mod rest;

use std::sync::Arc;

use rust_decimal::Decimal;

use rest::{ApiKey, RestSettings};

pub use crate::bots::ladder::{Market, Side};

/// Buy or sell, as the exchange sees an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSide {
    Buy,
    Sell,
}

impl OrderSide {
    /// The side that opens (or adds to) a position of direction `side`.
    pub fn opening(side: Side) -> OrderSide {
        match side {
            Side::Long => OrderSide::Buy,
            Side::Short => OrderSide::Sell,
        }
    }

    /// The side that reduces a position of direction `side`.
    pub fn closing(side: Side) -> OrderSide {
        match side {
            Side::Long => OrderSide::Sell,
            Side::Short => OrderSide::Buy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    Market,
    Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Resting, nothing filled yet.
    Open,
    /// Resting, partly filled.
    PartiallyFilled,
    Filled,
    /// Cancelled by anyone (possibly after a partial fill).
    Cancelled,
    Rejected,
}

impl OrderStatus {
    /// Still on the book.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::Open | OrderStatus::PartiallyFilled)
    }
}

/// An order to place. In hedge mode `position_side` names the position it belongs
/// to: a `Buy` for a `Long` opens, a `Sell` for a `Long` (reduce-only) closes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub client_id: String,
    pub symbol: String,
    pub side: OrderSide,
    pub kind: OrderKind,
    /// Limit price; `None` for market orders.
    pub price: Option<Decimal>,
    pub qty: Decimal,
    pub reduce_only: bool,
    pub position_side: Side,
}

/// An order as the exchange reports it, with its fills aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub client_id: String,
    pub exchange_id: String,
    pub symbol: String,
    pub side: OrderSide,
    pub kind: OrderKind,
    pub price: Option<Decimal>,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    /// Average fill price; 0 when nothing filled.
    pub avg_fill_price: Decimal,
    /// Fees paid on the fills, in USDT (positive = paid).
    pub fee: Decimal,
    pub reduce_only: bool,
    pub position_side: Side,
    pub status: OrderStatus,
    /// When the exchange accepted it (Unix ms).
    pub created_ms: i64,
}

/// One direction's position on a symbol; `size` 0 means flat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub side: Side,
    pub size: Decimal,
    pub avg_entry: Decimal,
    pub mark_price: Decimal,
}

/// What went wrong, in the terms a user can act on (they become `last_error`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExchangeError {
    #[error("an order with client id {0} already exists")]
    Duplicate(String),
    #[error("unknown symbol {0}")]
    UnknownSymbol(String),
    #[error("order quantity is below the exchange minimum")]
    BelowMinimum,
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("the exchange rejected the API key")]
    InvalidKey,
    #[error("rate limited by the exchange")]
    RateLimited,
    #[error("exchange unreachable: {0}")]
    Network(String),
    #[error("order rejected: {0}")]
    Rejected(String),
}

/// A user's account on one exchange.
pub trait Exchange: Send + Sync {
    /// The configuration name: `paper`, `bybit`, `bingx`.
    fn name(&self) -> &'static str;
    /// Tick size, quantity step and minimum quantity of `symbol` (e.g. `BTC/USDT`).
    fn market(&self, symbol: &str) -> Result<Market, ExchangeError>;
    /// Last traded price.
    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError>;
    /// Sets the leverage the bot's `side` trades at. Exchanges with one leverage
    /// per side in hedge mode (BingX) change only that side, leaving a position
    /// the user holds in the other direction alone.
    fn set_leverage(&self, symbol: &str, side: Side, leverage: u32) -> Result<(), ExchangeError>;
    /// Places an order. A client id that the account already used (open or not)
    /// fails with `Duplicate` and changes nothing.
    fn place(&self, order: &NewOrder) -> Result<Order, ExchangeError>;
    /// Cancels an open order; cancelling one that is no longer open is not an error.
    fn cancel(&self, symbol: &str, client_id: &str) -> Result<(), ExchangeError>;
    /// Every open order of the account on `symbol`, whoever placed it.
    fn open_orders(&self, symbol: &str) -> Result<Vec<Order>, ExchangeError>;
    /// One order by client id, open or not; `None` if the account never had it.
    fn order(&self, symbol: &str, client_id: &str) -> Result<Option<Order>, ExchangeError>;
    fn position(&self, symbol: &str, side: Side) -> Result<Position, ExchangeError>;
    /// Wallet balance in USDT.
    fn balance(&self) -> Result<Decimal, ExchangeError>;
}

/// The REST adapter named by a bot configuration (`bybit`, `bingx`), bound to one
/// user's key; `None` for any other name.
pub fn connect(name: &str, settings: &RestSettings, key: ApiKey) -> Option<Arc<dyn Exchange>> {
    match name {
        "bybit" => Some(Arc::new(bybit::Bybit::new(settings, key))),
        "bingx" => Some(Arc::new(bingx::Bingx::new(settings, key))),
        _ => None,
    }
}
