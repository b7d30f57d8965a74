//! BingX's error codes in the terms a user can act on: one table, each code with
//! the text of BingX's reference (github.com/BingX-API/api-ai-skills,
//! `skills/references/error-codes.md`: "Common Error Codes" and "Futures Error
//! Codes"; the 800xx codes from the interactive docs' "Common Business Error
//! Codes", <https://bingx-api.github.io/docs/#/swapV2/base-info.html>), and the
//! HTTP statuses of the same pages. Retryable classes are retried by `api`.

pub use crate::exchange::rest::class::Class;
use crate::exchange::ExchangeError;

use Class::*;

/// `(code, class, BingX's text)`. Codes not listed are fatal `Rejected`.
pub const CODES: &[(i64, Class, &str)] = &[
    (80001, Busy, "request failed / account assets are being processed"),
    (80012, Busy, "Service unavailable"),
    (80016, Gone, "Order does not exist"),
    (80017, NothingToClose, "Position does not exist"),
    (80018, Gone, "Order already filled"),
    (80019, Busy, "The order is being processed"),
    (100001, Key, "Request signature verification failed."),
    (100004, Key, "The API key does not have the required trading permission."),
    (100410, RateLimit, "Request rate limit exceeded."),
    (100412, Key, "Request is missing the signature parameter."),
    (100413, Key, "API Key is incorrect or missing."),
    (100419, Key, "The request IP is not in the API Key IP whitelist."),
    // The swap reference's common table: a clock matter. (Its spot table gives the
    // same code another meaning, "Request rejected", and old spot docs "system
    // busy": retryable under every reading.)
    (100421, Clock, "Null timestamp or timestamp mismatch with server time."),
    (100500, Busy, "System busy. Please retry later."),
    (101202, BelowMinimum, "Order value is below the contract minimum."),
    (101204, Funds, "Insufficient margin to place the order."),
    (101205, NothingToClose, "No position exists to close."),
    (101206, Funds, "Account available balance is insufficient."),
    (101209, PositionLimit, "The maximum position value for the current leverage has been reached."),
    (101212, Funds, "Available balance is insufficient for this order."),
    (101214, Busy, "Funding fee settlement is in progress. Retry in a few seconds."),
    (101219, Busy, "Account assets are being processed and temporarily unavailable."),
    (101253, Funds, "Insufficient margin (including adjustable margin)."),
    (101290, NothingToClose, "A Reduce Only order can only decrease an existing position."),
    (101429, PositionLimit, "This order exceeds the current position limit."),
    (101481, Duplicate, "The clientOrderID has already been used."),
    (101485, BelowMinimum, "The closing order size is below the minimum."),
    (104108, PositionMode, "One-way position mode does not support separate isolated margin mode."),
    (109201, Duplicate, "The same order number was submitted more than once in a short period."),
    (109403, RateLimit, "Request blocked by risk control — rate too high or cancellation rate exceeded."),
    (109414, Gone, "order not exist"),
    (109420, NothingToClose, "No position exists for the specified symbol."),
    (109421, Gone, "The specified order does not exist — it may have been filled, cancelled, or the order ID is incorrect."),
    (109425, UnknownSymbol, "The trading pair does not exist or is not supported."),
    (109429, RateLimit, "Too many invalid requests in a short period; temporarily restricted."),
    (109500, Busy, "Internal server error."),
    (109701, Busy, "Network request exception."),
    (110203, NothingToClose, "Available amount for closing is insufficient."),
    (110287, PositionLimit, "The maximum position value for the current leverage has been reached."),
    (110411, WrongSideStop, "For long positions, the Stop Loss price should be lower than the current price."),
    (110412, WrongSideStop, "For short positions, the Stop Loss price should be greater than the current price."),
    (110422, BelowMinimum, "The order size is below the minimum per-order requirement."),
    (110424, Funds, "Order size exceeds available balance."),
    (110500, Busy, "Order system busy. Please retry later."),
    (112414, PositionLimit, "The total position amount has reached the platform limit."),
];

/// The class of `code`. Two catch-all codes by their text: 101400 ("Order
/// parameter validation failed. Possible reasons: order amount or quantity below
/// minimum; …; duplicate clientOrderID; …") and 109400 ("Invalid request
/// parameters … position mode mismatch (e.g. PositionSide must be BOTH in one-way
/// mode)").
pub fn class(code: i64, msg: &str) -> Option<Class> {
    let m = msg.to_ascii_lowercase();
    match code {
        101400 if m.contains("minimum") => Some(BelowMinimum),
        101400 if m.contains("clientorderid") => Some(Duplicate),
        109400 if m.contains("positionside") || m.contains("position mode") => Some(PositionMode),
        _ => CODES
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(_, k, _)| *k),
    }
}

/// What a refusal with `code` and `msg` means; codes not in the table are fatal
/// `Rejected` with BingX's text.
pub fn classify(code: i64, msg: &str) -> ExchangeError {
    let said = format!("{msg} (code {code})");
    match class(code, msg) {
        Some(k) => k.error(said),
        None => ExchangeError::Rejected(said),
    }
}

/// An HTTP answer without a BingX envelope ("HTTP Error Codes"): 418 is an IP
/// banned for going on after 429; 504 "does not mean that the request failed"
/// (only calls safe to repeat are retried).
pub fn http_status(status: u16) -> ExchangeError {
    match status {
        401 => ExchangeError::InvalidKey,
        418 | 429 => ExchangeError::RateLimited,
        500..=599 => ExchangeError::Busy(format!("HTTP {status} from BingX")),
        _ => ExchangeError::Rejected(format!("HTTP {status} without a BingX answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_code_has_one_class_and_retryable_ones_are_transient() {
        for (code, k, text) in CODES {
            assert_eq!(
                CODES.iter().filter(|(c, _, _)| c == code).count(),
                1,
                "{code}"
            );
            assert_eq!(
                classify(*code, text).is_retryable(),
                k.is_retryable(),
                "{code}"
            );
        }
    }

    #[test]
    fn catch_all_codes_are_read_by_their_text() {
        let e = |code, msg: &str| classify(code, msg);
        assert_eq!(
            e(101400, "the minimum nominal value is 2u"),
            ExchangeError::BelowMinimum
        );
        assert!(matches!(
            e(101400, "clientOrderID repeated"),
            ExchangeError::Duplicate(_)
        ));
        assert!(matches!(
            e(101400, "pair suspended"),
            ExchangeError::Rejected(_)
        ));
        assert!(matches!(
            e(
                109400,
                "In the Hedge mode, the 'PositionSide' field can only be set to LONG or SHORT."
            ),
            ExchangeError::PositionMode(_)
        ));
        assert_eq!(
            e(101204, "Insufficient margin"),
            ExchangeError::InsufficientBalance
        );
        assert!(e(100421, "Null timestamp or timestamp mismatch").is_retryable());
        assert_eq!(e(1, "new"), ExchangeError::Rejected("new (code 1)".into()));
        assert!(http_status(504).is_retryable());
    }
}
