//! Bybit's error codes in the terms a user can act on: one table, each code with
//! the text of Bybit's error list (<https://bybit-exchange.github.io/docs/v5/error>,
//! "UTA"), and the HTTP statuses of the same page. Retryable classes (rate limit,
//! busy, clock) are retried by `api`; the others reach the bot as they are.

pub use crate::exchange::rest::class::Class;
use crate::exchange::ExchangeError;

use Class::*;

/// `(retCode, class, Bybit's text)`. Codes not listed are fatal `Rejected`.
pub const CODES: &[(i64, Class, &str)] = &[
    (10002, Clock, "The request time exceeds the time window range."),
    (10003, Key, "API key is invalid."),
    (10004, Key, "Error sign, please check your signature generation algorithm."),
    (10005, Key, "Permission denied, please check your API key permissions."),
    (10006, RateLimit, "Too many visits. Exceeded the API Rate Limit."),
    (10007, Key, "User authentication failed."),
    (10010, Key, "Unmatched IP, please check your API key's bound IP addresses."),
    (10000, Busy, "Server Timeout"),
    (10016, Busy, "Server error."),
    // Struck out of the current list; older gateways still answer it.
    (10018, RateLimit, "Exceeded the IP Rate Limit."),
    (10429, RateLimit, "System level frequency protection"),
    (33004, Key, "(Derivatives) Your api key has expired"),
    (110001, Gone, "Order does not exist"),
    (110004, Funds, "Wallet balance is insufficient"),
    (110007, Funds, "Available balance is insufficient"),
    (110008, Gone, "The order has been completed or cancelled."),
    (110010, Gone, "The order has been cancelled"),
    (110012, Funds, "Insufficient available balance."),
    // Bybit cuts a reduce-only quantity to what the position holds; with nothing
    // held it is zero. Not a minimum-quantity problem (170136 / 110094 are).
    (110017, NothingToClose, "orderQty will be truncated to zero"),
    (110024, PositionMode, "You have an existing position, so the position mode cannot be switched."),
    (110025, PositionMode, "Position mode has not been modified."),
    (110028, PositionMode, "You have existing open orders, so the position mode cannot be switched."),
    (110029, PositionMode, "Hedge mode is not supported for this symbol."),
    (110044, Funds, "Available margin is insufficient."),
    (110045, Funds, "Wallet balance is insufficient."),
    (110052, Funds, "Your available balance is insufficient to set the price"),
    (110072, Duplicate, "OrderLinkedID is duplicate"),
    (110079, Busy, "The order is processing and can not be operated, please try again later"),
    (110090, PositionLimit, "Order placement failed as your position may exceed the max limit. Please adjust your leverage to {{leverage}} or below to increase the max. position limit"),
    (110092, WrongSideStop, "expect Rising, but trigger_price[XXXXX] <= current[XXXXX]??laste"),
    (110093, WrongSideStop, "expect Falling, but trigger_price[XXXXX] >= current[XXXXX]??last"),
    (110094, BelowMinimum, "Order notional value below the lower limit"),
    (170136, BelowMinimum, "Order quantity lower than the minimum."),
];

/// The class of `code`; 10001 ("Request parameter error") by its text: Bybit
/// answers a `positionIdx` that does not fit the account's position mode, and
/// sometimes a wrong-side trigger, with it.
pub fn class(code: i64, msg: &str) -> Option<Class> {
    if code == 10001 {
        let m = msg.to_ascii_lowercase();
        if m.contains("position idx not match position mode") {
            return Some(PositionMode);
        }
        if m.contains("expect rising") || m.contains("expect falling") {
            return Some(WrongSideStop);
        }
        return None;
    }
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, k, _)| *k)
}

/// What a refusal with `retCode` `code` and `retMsg` `msg` means; codes not in
/// the table are fatal `Rejected` with Bybit's text.
pub fn classify(code: i64, msg: &str) -> ExchangeError {
    let said = format!("{msg} (retCode {code})");
    match class(code, msg) {
        Some(k) => k.error(said),
        None => ExchangeError::Rejected(said),
    }
}

/// Whether an answer is Bybit's IP rate-limit ban: HTTP 403 with the body
/// "403, access too frequent" (docs/v5/rate-limit: "terminate all HTTP sessions
/// and wait for at least 10 minutes"). Bybit's error page lists other causes of a
/// 403 (a U.S. IP, a GET with a JSON body), and a firewall in front of it answers
/// 403 too: those are not this.
pub fn ip_rate_limited(status: u16, body: &str) -> bool {
    status == 403 && body.to_ascii_lowercase().contains("access too frequent")
}

/// An HTTP answer without a Bybit envelope (docs/v5/error, "HTTP Code").
pub fn http_status(status: u16, body: &str) -> ExchangeError {
    match status {
        401 => ExchangeError::InvalidKey,
        403 if ip_rate_limited(status, body) => ExchangeError::RateLimited,
        // Retrying does not lift a region block or a firewall rule.
        403 => ExchangeError::Rejected(format!(
            "HTTP 403 from Bybit (access denied, not its rate limit): Bybit refuses some \
             regions (U.S. IPs among them), or a firewall blocked the request; the \
             answer was {:?}",
            excerpt(body)
        )),
        // 429: "System level frequency protection".
        429 => ExchangeError::RateLimited,
        500..=599 => ExchangeError::Busy(format!("HTTP {status} from Bybit")),
        _ => ExchangeError::Rejected(format!("HTTP {status} without a Bybit answer")),
    }
}

/// The start of an answer's text on one line, for an error message.
fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(120).collect()
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
            let e = classify(*code, text);
            assert_eq!(e.is_retryable(), k.is_retryable(), "{code} {e:?}");
        }
    }

    #[test]
    fn the_issue_list_maps_as_documented() {
        let e = |code| classify(code, "x");
        assert_eq!(
            e(110017),
            ExchangeError::Rejected(
                "nothing to close: the position is already flat or smaller: x (retCode 110017)"
                    .into()
            )
        );
        assert_eq!(e(110044), ExchangeError::InsufficientBalance);
        assert_eq!(e(110045), ExchangeError::InsufficientBalance);
        assert_eq!(e(110090), ExchangeError::PositionLimit);
        assert!(matches!(e(110079), ExchangeError::Busy(_)));
        assert_eq!(e(10006), ExchangeError::RateLimited);
        assert_eq!(e(10018), ExchangeError::RateLimited);
        assert!(e(10002).is_retryable());
        for code in [10003, 10004, 10005, 33004] {
            assert_eq!(e(code), ExchangeError::InvalidKey);
        }
        assert!(matches!(e(110025), ExchangeError::PositionMode(_)));
        assert!(matches!(
            classify(10001, "position idx not match position mode"),
            ExchangeError::PositionMode(_)
        ));
        assert!(matches!(e(10016), ExchangeError::Busy(_)));
        assert!(matches!(
            classify(10001, "expect Rising, but trigger_price[1] <= current[2]??MarkPrice"),
            ExchangeError::Rejected(m) if m.contains("wrong side")
        ));
        assert_eq!(
            e(424242),
            ExchangeError::Rejected("x (retCode 424242)".into())
        );
        assert!(http_status(502, "").is_retryable());
        assert!(!http_status(404, "").is_retryable());
    }

    #[test]
    fn only_the_documented_403_is_the_ip_rate_limit() {
        for body in ["403, access too frequent", "Access too frequent."] {
            assert!(ip_rate_limited(403, body), "{body}");
            assert_eq!(http_status(403, body), ExchangeError::RateLimited);
        }
        assert!(!ip_rate_limited(200, "access too frequent"));
        let blocked = "<html><head><title>403 Forbidden</title></head>\n<body>The \
                       request could not be satisfied. Request blocked.</body></html>";
        for body in [blocked, "", "Forbidden"] {
            assert!(!ip_rate_limited(403, body), "{body}");
            let e = http_status(403, body);
            assert!(
                matches!(&e, ExchangeError::Rejected(m) if m.contains("HTTP 403") && m.contains("region")),
                "{e:?}"
            );
            assert!(!e.is_retryable());
        }
        assert_eq!(http_status(429, ""), ExchangeError::RateLimited);
    }
}
