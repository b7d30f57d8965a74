//! Injected errors: the next N requests to a path (optionally only for one HTTP
//! method) get an exchange error instead of their normal answer, and the tables
//! of the error codes the trading core must classify, with each exchange's
//! documented text, so a test can inject exactly what the exchange would say.

use super::fake_book::Book;

/// An error the next `times` matching requests get instead of their answer.
#[derive(Clone, Debug)]
pub struct Injected {
    /// None: any method.
    pub method: Option<String>,
    pub path: String,
    pub code: i64,
    pub msg: String,
    pub times: usize,
}

impl Book {
    /// Takes one use of the first injection matching this request.
    pub fn take_injected(&mut self, method: &str, path: &str) -> Option<(i64, String)> {
        let i = self.inject.iter().position(|e| {
            e.path == path && e.times > 0 && e.method.as_deref().is_none_or(|m| m == method)
        })?;
        let e = &mut self.inject[i];
        e.times -= 1;
        let out = (e.code, e.msg.clone());
        if e.times == 0 {
            self.inject.remove(i);
        }
        Some(out)
    }

    /// Takes the raw body queued for this path, if any.
    pub fn take_raw(&mut self, path: &str) -> Option<String> {
        let i = self.raw_replies.iter().position(|(p, _)| p == path)?;
        Some(self.raw_replies.remove(i).1)
    }

    /// Takes the HTTP status and body queued for this path, if any.
    pub fn take_http(&mut self, path: &str) -> Option<(u16, String)> {
        let i = self.http_replies.iter().position(|(p, _, _)| p == path)?;
        let (_, status, body) = self.http_replies.remove(i);
        Some((status, body))
    }

    pub fn push_injected(
        &mut self,
        method: Option<&str>,
        path: &str,
        code: i64,
        msg: &str,
        times: usize,
    ) {
        self.inject.push(Injected {
            method: method.map(str::to_string),
            path: path.into(),
            code,
            msg: msg.into(),
            times,
        });
    }
}

/// Bybit v5 codes (bybit-exchange.github.io/docs/v5/error, "UTA" table) and what
/// they mean for a trading bot. The answer is HTTP 200 with `retCode`/`retMsg`.
///
/// | code   | documented text | meaning |
/// |--------|-----------------|---------|
/// | 10001  | Request parameter error | malformed request; also "position idx not match position mode" for a `positionIdx` that does not fit the account's position mode |
/// | 10002  | The request time exceeds the time window range. | clock/recvWindow |
/// | 10003  | API key is invalid. | credentials |
/// | 10004  | Error sign, please check your signature generation algorithm. | credentials/signing |
/// | 10006  | Too many visits. Exceeded the API Rate Limit. | retry after `X-Bapi-Limit-Reset-Timestamp` |
/// | 10016  | Server error. | transient |
/// | 110001 | Order does not exist | gone (filled, cancelled, never placed) |
/// | 110007 | Available balance is insufficient | funds |
/// | 110017 | orderQty will be truncated to zero | reduce-only order with no position to reduce |
/// | 110024 | You have an existing position, so the position mode cannot be switched. | position mode |
/// | 110025 | Position mode has not been modified. | position mode already set (harmless) |
/// | 110043 | Set leverage has not been modified. | leverage already set (harmless) |
/// | 110044 | Available margin is insufficient. | funds |
/// | 110045 | Wallet balance is insufficient. | funds |
/// | 110072 | OrderLinkedID is duplicate | the client id was used: read the order back |
/// | 110079 | The order is processing and can not be operated, please try again later | transient |
/// | 110090 | Order placement failed as your position may exceed the max limit. ... | leverage/risk limit |
/// | 110092 | expect Rising, but trigger_price[XXXXX] <= current[XXXXX]??laste | stop on the wrong side of the price |
/// | 110093 | expect Falling, but trigger_price[XXXXX] >= current[XXXXX]??last | stop on the wrong side of the price |
/// | 170136 | Order quantity lower than the minimum. | below the instrument minimum |
pub const BYBIT: &[(i64, &str)] = &[
    (10001, "Request parameter error"),
    (10002, "The request time exceeds the time window range."),
    (10003, "API key is invalid."),
    (10004, "Error sign, please check your signature generation algorithm."),
    (10006, "Too many visits. Exceeded the API Rate Limit."),
    (10016, "Server error."),
    (110001, "Order does not exist"),
    (110007, "Available balance is insufficient"),
    (110017, "orderQty will be truncated to zero"),
    (110024, "You have an existing position, so the position mode cannot be switched."),
    (110025, "Position mode has not been modified."),
    (110043, "Set leverage has not been modified."),
    (110044, "Available margin is insufficient."),
    (110045, "Wallet balance is insufficient."),
    (110072, "OrderLinkedID is duplicate"),
    (110079, "The order is processing and can not be operated, please try again later"),
    (110090, "Order placement failed as your position may exceed the max limit. Please adjust your leverage to 10 or below to increase the max. position limit"),
    (110092, "expect Rising, but trigger_price[XXXXX] <= current[XXXXX]??laste"),
    (110093, "expect Falling, but trigger_price[XXXXX] >= current[XXXXX]??last"),
    (170136, "Order quantity lower than the minimum."),
];

/// BingX perpetual swap codes (bingx-api.github.io/docs, "Common Business Error
/// Codes" and the error list of "Place order"). The answer is HTTP 200 with
/// `code`/`msg`.
///
/// | code   | documented text | meaning |
/// |--------|-----------------|---------|
/// | 80001  | request failed / account assets are being processed | transient |
/// | 80012  | Service unavailable ("The current system is busy, please try again later") | transient |
/// | 80014  | Invalid parameter | malformed request |
/// | 80016  | Order does not exist | gone |
/// | 80017  | Position does not exist | no position |
/// | 80018  | Order already filled | gone (filled) |
/// | 80019  | The order is being processed | transient: look the order up later |
/// | 80020  | Risk forbidden | refused by risk control |
/// | 100001 | Signature verification failed | credentials/signing |
/// | 100400 | Invalid parameter | malformed request |
/// | 100410 | Rate limit exceeded | retry later |
/// | 100412 | Null signature | signing |
/// | 100413 | Incorrect API key | credentials |
/// | 100419 | IP does not match IP whitelist | credentials |
/// | 100421 | Timestamp mismatch | clock/recvWindow |
/// | 100500 | Internal system error | transient |
/// | 101204 | Insufficient margin | funds |
/// | 101205 | No position to close | closing order with nothing to close |
/// | 101209 | The maximum position value for this leverage is ... USDT. | leverage/risk limit |
/// | 101400 | order amount/nominal value below the minimum | below the minimum |
/// | 101481 | clientOrderID cannot be repeated | the client id was used: read the order back |
/// | 109400 | (parameter error, e.g. "In the Hedge mode, the 'PositionSide' field can only be set to LONG or SHORT.") | malformed request |
/// | 109414 | order not exist | gone (cancel) |
/// | 109421 | order not exist | gone (observed answer to a cancel, e.g. ccxt maps it to OrderNotFound) |
/// | 110411 | Stop Loss price should be lower than the current price | stop on the wrong side |
/// | 110412 | Stop Loss price should be greater than the current price | stop on the wrong side |
pub const BINGX: &[(i64, &str)] = &[
    (80001, "request failed"),
    (80012, "The current system is busy, please try again later"),
    (80014, "Invalid parameter"),
    (80016, "Order does not exist"),
    (80017, "position not exist"),
    (80018, "order is already filled"),
    (80019, "The order is being processed"),
    (80020, "risk forbidden"),
    (100001, "Signature verification failed"),
    (100400, "Invalid parameter"),
    (100410, "Rate limit exceeded"),
    (100412, "Null signature"),
    (100413, "Incorrect apiKey"),
    (100419, "IP does not match IP whitelist"),
    (100421, "Null timestamp or timestamp mismatch"),
    (100500, "Internal system error"),
    (101204, "Insufficient margin"),
    (101205, "No position to close"),
    (
        101209,
        "The maximum position value for this leverage is 170000 USDT.",
    ),
    (
        101400,
        "Please ensure that the minimum nominal value of the order placed must be greater than 2u",
    ),
    (101481, "clientOrderID cannot be repeated"),
    (
        109400,
        "In the Hedge mode, the 'PositionSide' field can only be set to LONG or SHORT.",
    ),
    (109414, "order not exist"),
    (109421, "order not exist"),
    (
        110411,
        "Stop Loss price should be lower than the current price",
    ),
    (
        110412,
        "Stop Loss price should be greater than the current price",
    ),
];

/// The documented text of a code in one of the tables above.
pub fn text(table: &[(i64, &'static str)], code: i64) -> &'static str {
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, m)| *m)
        .unwrap_or_else(|| panic!("code {code} is not in the table"))
}
