//! Exchanges: one trait that the strategy talks to, and its implementations.
//! See docs/bots.md, Exchanges.
//!
//! The trait is blocking and per account: a value implementing it is already bound to
//! one user's credentials (or, for `paper`, one user's simulated account). Every
//! order carries the bot's deterministic client order id, which is how the
//! bot finds its orders again after a restart instead of placing them twice.

pub mod bingx;
pub mod bybit;
pub mod key_info;
pub mod paper;
pub mod proxy;
pub mod public_cache;
pub mod rest;
pub mod stream;
pub mod streamed;

use std::sync::Arc;

use rust_decimal::Decimal;

use rest::{ApiKey, RestSettings};

pub use key_info::{KeyInfo, KeyProblem};

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
    /// A conditional reduce-only market order that the exchange triggers when the
    /// mark price crosses `trigger_price` (the exchange-side stop-loss, docs/bots.md).
    Stop,
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
    /// Limit price; `None` for market and stop orders.
    pub price: Option<Decimal>,
    /// Trigger (mark) price of a `Stop`; `None` for the other kinds.
    pub trigger_price: Option<Decimal>,
    pub qty: Decimal,
    pub reduce_only: bool,
    pub position_side: Side,
}

/// An order as the exchange reports it, with its fills aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Empty when the exchange keeps no client id for this kind of order (BingX
    /// stops): the bot then knows it by `exchange_id`.
    pub client_id: String,
    pub exchange_id: String,
    pub symbol: String,
    pub side: OrderSide,
    pub kind: OrderKind,
    pub price: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
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

/// One fill on the account, whoever's order it was (the bot's, a manual one, a
/// liquidation): how the bot learns the real exit of a close it did not make.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub exec_id: String,
    pub order_id: String,
    /// Empty for orders without a client id (manual, liquidation).
    pub client_id: String,
    pub side: OrderSide,
    pub qty: Decimal,
    pub price: Decimal,
    /// Fee in USDT (positive = paid).
    pub fee: Decimal,
    pub time_ms: i64,
    /// The exchange closed the position by liquidation (or auto-deleveraging).
    pub liquidation: bool,
}

/// One funding settlement on the account's position in a symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct FundingPayment {
    /// The exchange's id of the settlement (unique per account).
    pub id: String,
    pub symbol: String,
    /// USDT received (+) or paid (−).
    pub amount: Decimal,
    pub time_ms: i64,
    /// The position it was paid on, when the exchange says (Bybit does, BingX's
    /// income records do not): a bot counts only its own side's funding.
    pub side: Option<Side>,
}

/// What went wrong, in the terms a user can act on (they become `last_error`).
/// `is_retryable` splits them: another try may succeed, or it needs a person.
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
    #[error("the position limit of the account's risk tier is reached")]
    PositionLimit,
    #[error("the account is not in hedge (two-way) position mode: {0}")]
    PositionMode(String),
    #[error("the exchange rejected the API key")]
    InvalidKey,
    #[error("rate limited by the exchange")]
    RateLimited,
    /// The exchange is busy with the order or the account ("order is being
    /// processed", system busy): the same request later succeeds.
    #[error("the exchange is busy: {0}")]
    Busy(String),
    #[error("exchange unreachable: {0}")]
    Network(String),
    /// An answer without a field the bot needs, or with a garbled one.
    #[error("malformed exchange answer: {0}")]
    Malformed(String),
    #[error("order rejected: {0}")]
    Rejected(String),
}

impl ExchangeError {
    /// Errors that another try may fix: the bot keeps running and retries.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ExchangeError::RateLimited | ExchangeError::Busy(_) | ExchangeError::Network(_)
        )
    }
}

/// A user's account on one exchange.
pub trait Exchange: Send + Sync {
    /// The configuration name: `paper`, `bybit`, `bingx`.
    fn name(&self) -> &'static str;
    /// Tick size, quantity step and minimum quantity of `symbol` (e.g. `BTC/USDT`).
    fn market(&self, symbol: &str) -> Result<Market, ExchangeError>;
    /// Last traded price.
    fn ticker(&self, symbol: &str) -> Result<Decimal, ExchangeError>;
    /// Sets the leverage the bot's `side` trades at. Where the exchange keeps one
    /// leverage per side in hedge mode (BingX; Bybit in isolated margin) only that
    /// side changes, leaving a position the user holds in the other direction
    /// alone; Bybit in cross margin requires both sides equal, so both change.
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
    /// One order by the exchange's id (for orders without a client id).
    fn order_by_id(&self, symbol: &str, exchange_id: &str) -> Result<Option<Order>, ExchangeError>;
    /// Cancels by the exchange's id; as `cancel`, a closed order is not an error.
    fn cancel_by_id(&self, symbol: &str, exchange_id: &str) -> Result<(), ExchangeError>;
    /// Fills on `symbol` at or after `since_ms` (Unix ms), oldest first, from any order.
    fn executions(&self, symbol: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError>;
    /// Funding settlements on `symbol` at or after `since_ms`, oldest first.
    fn funding(&self, symbol: &str, since_ms: i64) -> Result<Vec<FundingPayment>, ExchangeError>;
    fn position(&self, symbol: &str, side: Side) -> Result<Position, ExchangeError>;
    /// Wallet balance in USDT.
    fn balance(&self) -> Result<Decimal, ExchangeError>;
    /// The permissions, expiry and IP whitelist of the account's API key, as the
    /// exchange reports them (checked when a key is saved, docs/bots.md, API keys).
    /// A rejected key is `InvalidKey`. Tried once and over by `by`: it answers an
    /// HTTP request. No default: a wrapper that forgot to pass it on would pass
    /// every key.
    fn key_info(&self, by: std::time::Instant) -> Result<KeyInfo, ExchangeError>;
    /// Whether the account holds `symbol` in hedge (two-way) position mode, which
    /// the bot's orders need (checked before a start). No default, as `key_info`.
    fn hedge_mode(&self, symbol: &str) -> Result<bool, ExchangeError>;
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
