//! The key check on save (CONTRACT C16; docs/bots.md, API keys): before an
//! exchange account's key is stored, the exchange is asked what the key may do,
//! through the account's proxy (the address a whitelist must allow). A key that
//! can withdraw, is read-only or cannot trade futures is refused (400 on
//! `api_key`), as is a key the exchange rejects.
//!
//! When the exchange cannot be asked (unreachable, rate-limited, busy), nothing is
//! saved and the answer is 503 with `Retry-After`: saving an unchecked key would
//! let a withdrawal-capable key in silently, which is what the check exists to
//! prevent, and the user can simply send the same request again. An answer that
//! cannot be read is 502. The call is bounded by [`CHECK_TIME`] (it runs inside an
//! HTTP worker's request), and tried a second time after a transient failure only
//! when enough of that time is left.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::ApiError;
use crate::exchange::proxy::Proxy;
use crate::exchange::rest::{ApiKey, RestSettings};
use crate::exchange::{self, ExchangeError};
use crate::http::reply;
use crate::store::exchange_accounts::KeyCheck;

/// The longest a key check may take, clock sync included.
pub const CHECK_TIME: Duration = Duration::from_secs(6);

/// A failed check is tried again only with at least this much of `CHECK_TIME`
/// left: after a call that timed out (3 s), there is still room for a whole one.
const RETRY_IF_LEFT: Duration = Duration::from_secs(2);

/// Each HTTP call of the check (the clock sync, the key query) ends within this.
const CALL_TIMEOUT_MS: u64 = 3000;

/// What to check: the exchange's name, the key pair, the proxy it goes through.
pub struct Candidate<'a> {
    pub exchange: &'a str,
    pub key: ApiKey,
    pub proxy: Option<&'a Proxy>,
}

/// Where the check runs: the deployment's exchange settings and the log.
#[derive(Clone, Copy)]
pub struct Checker<'a> {
    pub settings: &'a RestSettings,
    pub log: &'a slog::Logger,
}

/// Asks the exchange about `c`'s key; the check to store, or the refusal to answer.
pub fn check(on: Checker<'_>, c: Candidate<'_>) -> Result<KeyCheck, ApiError> {
    let (settings, log) = (on.settings, on.log);
    let settings = RestSettings {
        timeout_ms: settings.timeout_ms.min(CALL_TIMEOUT_MS),
        proxy: c.proxy.cloned(),
        ..settings.clone()
    };
    let Some(ex) = exchange::connect(c.exchange, &settings, c.key) else {
        return Err(field("exchange", "must be bybit or bingx"));
    };
    let via = c.proxy.map_or_else(|| "direct".to_string(), Proxy::shown);
    let by = Instant::now() + CHECK_TIME;
    let mut answer = ex.key_info(by);
    // One more try for a transient failure (a dropped connection, a busy
    // exchange) when there is still time for a whole call.
    let left = by.saturating_duration_since(Instant::now());
    if answer.as_ref().is_err_and(ExchangeError::is_retryable) && left >= RETRY_IF_LEFT {
        answer = ex.key_info(by);
    }
    let info = answer.map_err(|e| {
        let ms = (CHECK_TIME.saturating_sub(by.saturating_duration_since(Instant::now())))
            .as_millis() as u64;
        slog::info!(log, "API key check failed"; "exchange" => c.exchange, "via" => &via,
                    "error" => %e, "elapsed_ms" => ms);
        refusal(c.exchange, &e)
    })?;
    if let Some(problem) = info.problem() {
        return Err(field("api_key", problem.message()));
    }
    Ok(KeyCheck {
        trade: info.trade,
        read_only: info.read_only,
        expires_at: info.expires_at,
        ip_whitelist: info.ip_whitelist,
        checked_at: crate::store::now(),
    })
}

fn field(name: &str, message: &str) -> ApiError {
    reply::invalid_fields(&BTreeMap::from([(name, message)])).into()
}

fn venue(exchange: &str) -> &'static str {
    match exchange {
        "bingx" => "BingX",
        _ => "Bybit",
    }
}

/// The answer for a check that did not get the key's permissions.
fn refusal(exchange: &str, e: &ExchangeError) -> ApiError {
    let name = venue(exchange);
    match e {
        ExchangeError::InvalidKey => field(
            "api_key",
            &format!(
                "{name} rejected this API key: check the key and the secret, and that the key \
                 allows requests from this server's address (or its proxy's)"
            ),
        ),
        e if e.is_retryable() => reply::json(
            503,
            &json!({"success": false, "status": "exchange_unavailable",
                    "error": format!("Could not reach {name} to check the API key ({e}); \
                                      nothing was saved, try again")}),
        )
        .header("Retry-After", "5")
        .into(),
        e => reply::json(
            502,
            &json!({"success": false, "status": "exchange_error",
                    "error": format!("{name} did not confirm the API key's permissions ({e}); \
                                      nothing was saved")}),
        )
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_body(e: ApiError) -> (u16, serde_json::Value) {
        match e {
            ApiError::Reply(r) => (r.status, serde_json::from_slice(r.body.as_slice()).unwrap()),
            _ => panic!("not a reply"),
        }
    }

    #[test]
    fn failures_answer_what_the_user_can_do() {
        let (s, b) = status_and_body(refusal("bybit", &ExchangeError::InvalidKey));
        assert_eq!(s, 400);
        assert!(b["fields"]["api_key"]
            .as_str()
            .unwrap()
            .contains("Bybit rejected"));
        let (s, b) = status_and_body(refusal("bingx", &ExchangeError::Network("refused".into())));
        assert_eq!(
            (s, b["status"].as_str()),
            (503, Some("exchange_unavailable"))
        );
        assert!(b["error"].as_str().unwrap().contains("BingX"), "{b}");
        let (s, _) = status_and_body(refusal("bybit", &ExchangeError::RateLimited));
        assert_eq!(s, 503);
        let (s, b) = status_and_body(refusal("bybit", &ExchangeError::Malformed("x".into())));
        assert_eq!((s, b["status"].as_str()), (502, Some("exchange_error")));
    }
}
