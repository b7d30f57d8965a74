//! Public market data (C15): where the exchanges' prices, instruments and candles
//! come from, and the types every consumer shares.
//!
//! A `Quote` is one symbol's latest public ticker; a `QuoteSource` answers the
//! latest quote of a symbol and records that someone wants that symbol followed
//! (the market-data process subscribes to every wanted symbol).

pub mod board;
pub mod candle_cache;
pub mod candles;
pub mod catalogue;
pub mod feed;
pub mod refresh;

pub use board::Board;

use rust_decimal::Decimal;

/// A real exchange whose public data can be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Venue {
    Bybit,
    Bingx,
}

impl Venue {
    pub const ALL: [Venue; 2] = [Venue::Bybit, Venue::Bingx];

    /// The name used in settings and in the API (`bybit`, `bingx`).
    pub fn name(self) -> &'static str {
        match self {
            Venue::Bybit => "bybit",
            Venue::Bingx => "bingx",
        }
    }

    /// The venue named `s` (ASCII case-insensitive).
    pub fn parse(s: &str) -> Option<Venue> {
        Venue::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// One symbol's latest public ticker, in decimals as the exchange sent them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    pub last: Decimal,
    /// Best bid and ask.
    pub bid: Decimal,
    pub ask: Decimal,
    /// The exchange's mark price (what liquidation and stops compare with).
    pub mark: Decimal,
    /// The current funding rate and when it is next paid (Unix ms), when known.
    pub funding_rate: Option<Decimal>,
    pub next_funding_ms: Option<i64>,
    /// When this quote was received (Unix ms, local clock).
    pub time_ms: i64,
}

/// A price older than this is stale (C15): paper matching pauses and the bot
/// status says `price_stale`.
pub const STALE_AFTER_MS: i64 = 30_000;

impl Quote {
    /// Whether the quote is too old to trade on at `now_ms`.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        now_ms - self.time_ms > STALE_AFTER_MS
    }
}

/// Where live quotes are read: the shared-memory price board in production, a map
/// in tests. Symbols are the API's (`BTC/USDT`).
pub trait QuoteSource: Send + Sync {
    /// The latest quote of `symbol` on `venue`, `None` until one has arrived.
    fn quote(&self, venue: Venue, symbol: &str) -> Option<Quote>;
    /// Asks that `symbol` on `venue` be followed from now on.
    fn want(&self, venue: Venue, symbol: &str);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn venues_parse_by_name_in_any_case() {
        assert_eq!(Venue::parse("BYBIT"), Some(Venue::Bybit));
        assert_eq!(Venue::parse(" bingx "), Some(Venue::Bingx));
        assert_eq!(Venue::parse("paper"), None);
    }

    #[test]
    fn a_quote_is_stale_only_past_thirty_seconds() {
        let q = Quote {
            last: dec!(1),
            bid: dec!(1),
            ask: dec!(1),
            mark: dec!(1),
            funding_rate: None,
            next_funding_ms: None,
            time_ms: 1_000,
        };
        assert!(!q.is_stale(31_000));
        assert!(q.is_stale(31_001));
    }
}
