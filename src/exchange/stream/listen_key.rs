//! BingX listen keys: the account stream's credential, created by REST, valid
//! an hour, extended every 30 minutes, deleted when the stream closes.
//!
//! `POST`, `PUT` (`listenKey=…`, extends to 60 min) and `DELETE`
//! `/openApi/user/auth/userDataStream` with the `X-BX-APIKEY` header; the
//! creation answers `{"listenKey": "…"}` (BingX API reference,
//! `skills/swap-ws-account`, "Listen Key REST APIs").

use serde::Deserialize;

use crate::exchange::rest::{wire, ApiKey, Http};
use crate::exchange::ExchangeError;

const PATH: &str = "/openApi/user/auth/userDataStream";

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "listenKey")]
    listen_key: String,
}

fn call(http: &Http, method: &str, url: &str, key: &ApiKey) -> Result<String, ExchangeError> {
    let headers = [("X-BX-APIKEY", key.key.as_str())];
    let body = (method != "GET").then_some("");
    let a = http.send(method, url, &headers, body)?;
    match a.status {
        200..=299 => Ok(a.body),
        401 | 403 => Err(ExchangeError::InvalidKey),
        429 => Err(ExchangeError::RateLimited),
        s => Err(ExchangeError::Rejected(format!(
            "listen key {method}: HTTP {s}"
        ))),
    }
}

/// A new listen key for `key`'s account.
pub fn create(http: &Http, base: &str, key: &ApiKey) -> Result<String, ExchangeError> {
    let body = call(http, "POST", &format!("{base}{PATH}"), key)?;
    let c: Created = wire::parse("listen key", &body)?;
    if c.listen_key.is_empty() {
        return Err(ExchangeError::Malformed("listen key: empty".into()));
    }
    Ok(c.listen_key)
}

/// Extends `listen_key` by an hour; an error means it must be recreated.
pub fn extend(
    http: &Http,
    base: &str,
    key: &ApiKey,
    listen_key: &str,
) -> Result<(), ExchangeError> {
    call(
        http,
        "PUT",
        &format!("{base}{PATH}?listenKey={listen_key}"),
        key,
    )
    .map(|_| ())
}

/// Deletes `listen_key` (the stream is closing).
pub fn delete(
    http: &Http,
    base: &str,
    key: &ApiKey,
    listen_key: &str,
) -> Result<(), ExchangeError> {
    call(
        http,
        "DELETE",
        &format!("{base}{PATH}?listenKey={listen_key}"),
        key,
    )
    .map(|_| ())
}
