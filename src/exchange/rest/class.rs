//! The classes of exchange refusals both adapters sort their error codes into
//! (each exchange's `errors` table), and the `ExchangeError` each becomes: the
//! retryable ones (rate limit, busy, clock) are tried again, the others reach the
//! bot as something a person has to act on (docs/bots.md, Exchanges).

use crate::exchange::ExchangeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The key is wrong, expired, lacks a permission, or the IP is not bound to it.
    Key,
    RateLimit,
    /// The exchange is busy with the order or the service: the same call later works.
    Busy,
    /// The request time is outside the receive window: resync the clock and retry.
    Clock,
    Funds,
    BelowMinimum,
    PositionLimit,
    /// The account is not in hedge (two-way) mode, or the symbol does not allow it.
    PositionMode,
    Duplicate,
    UnknownSymbol,
    /// A conditional order whose trigger is on the wrong side of the current price.
    WrongSideStop,
    /// A reduce-only (closing) order with nothing, or less, left to close.
    NothingToClose,
    /// The order does not exist (any more): filled, cancelled or never placed.
    Gone,
}

impl Class {
    /// The error of a refusal of this class; `said` is the exchange's text with its
    /// code (`Insufficient margin (code 101204)`).
    pub fn error(self, said: String) -> ExchangeError {
        match self {
            Class::Key => ExchangeError::InvalidKey,
            Class::RateLimit => ExchangeError::RateLimited,
            Class::Busy => ExchangeError::Busy(said),
            Class::Clock => ExchangeError::Network(format!(
                "the exchange refused the request time; resyncing the clock: {said}"
            )),
            Class::Funds => ExchangeError::InsufficientBalance,
            Class::BelowMinimum => ExchangeError::BelowMinimum,
            Class::PositionLimit => ExchangeError::PositionLimit,
            Class::PositionMode => ExchangeError::PositionMode(said),
            Class::Duplicate => ExchangeError::Duplicate(said),
            Class::UnknownSymbol => ExchangeError::UnknownSymbol(said),
            Class::WrongSideStop => ExchangeError::Rejected(format!(
                "the stop's trigger price is on the wrong side of the current price: {said}"
            )),
            Class::NothingToClose => ExchangeError::Rejected(format!(
                "nothing to close: the position is already flat or smaller: {said}"
            )),
            Class::Gone => ExchangeError::Rejected(format!("the order does not exist: {said}")),
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, Class::RateLimit | Class::Busy | Class::Clock)
    }
}
