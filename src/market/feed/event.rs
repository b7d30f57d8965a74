//! What a venue's stream frame or REST answer means to the loop, whichever the
//! venue.

use super::partial::Partial;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Ticker fields of a symbol (the venue's spelling). A snapshot replaces what
    /// was known; anything else merges into it.
    Ticker {
        symbol: String,
        fields: Partial,
        snapshot: bool,
    },
    /// The venue refused a subscription to this symbol (Bybit).
    SubscribeFailed { symbol: String, reason: String },
    /// The venue refused request `id` (BingX); `rate_limited`: only for now.
    RequestFailed {
        id: String,
        reason: String,
        rate_limited: bool,
    },
    /// The venue accepted request `id` (BingX).
    Answered(String),
    /// A heartbeat the venue expects answered with this text (BingX's `Ping`).
    Answer(String),
    /// Anything else well formed: acknowledgements, pongs.
    Other,
}
