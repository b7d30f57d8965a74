//! BingX perpetual-swap transport: request signing, the `code` envelope, the server
//! clock, and retries of what is safe to repeat.
//!
//! Signing, from BingX's own reference (github.com/BingX-API/api-ai-skills,
//! `skills/references/authentication.md`; the interactive docs it mirrors are at
//! <https://bingx-api.github.io/docs/#/swapV2/introduce>): every parameter
//! including `timestamp` (and `recvWindow`), sorted by key in ASCII order, joined
//! as `k=v&k=v` without URL encoding, is signed as
//! `signature = hex(HMAC_SHA256(secret, that string))`; the request sends the same
//! string plus `&signature=…` as its query (for POST and DELETE too), and the key
//! in the `X-BX-APIKEY` header. The server rejects a timestamp more than
//! `recvWindow` (at most 5000 ms) away from its clock, hence the offset from
//! `GET /openApi/swap/v2/server/time`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::errors::{self, Class};
use super::types::ServerTime;
use crate::exchange::rest::{self, wire, ApiKey, Clock, Http, RestSettings};
use crate::exchange::ExchangeError;

/// A call the exchange refused, or that got no usable answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// `code` ≠ 0. `retried`: an earlier attempt of the same call may have reached
    /// the exchange.
    Code {
        code: i64,
        msg: String,
        retried: bool,
    },
    Failed(ExchangeError),
}

impl From<Refused> for ExchangeError {
    fn from(r: Refused) -> ExchangeError {
        match r {
            Refused::Failed(e) => e,
            Refused::Code { code, msg, .. } => errors::classify(code, &msg),
        }
    }
}

impl Refused {
    /// The class of a refusal with a code (`Gone`, `Duplicate`, …).
    pub fn class(&self) -> Option<Class> {
        match self {
            Refused::Code { code, msg, .. } => errors::class(*code, msg),
            Refused::Failed(_) => None,
        }
    }
}

pub struct Api {
    http: Http,
    base: String,
    key: ApiKey,
    recv_window: u64,
    clock: Clock,
}

impl Api {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Api {
        Api {
            http: Http::with_proxy(settings.timeout_ms, settings.proxy.as_ref()),
            base: settings.bingx_url.clone(),
            key,
            // BingX accepts at most 5000.
            recv_window: settings.recv_window_ms.min(5000),
            clock: Clock::default(),
        }
    }

    /// The exchange's clock as far as we know it (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A signed request (`GET`, `POST` or `DELETE`), parameters in the query;
    /// the text of its `data`. Market data is signed too: BingX lists `timestamp`
    /// as required on every swap endpoint, and a signature costs nothing where
    /// none is checked. Retryable refusals are tried again after a growing pause:
    /// the calls that come here are safe to repeat (reads, cancels, leverage, and
    /// placements carrying a `clientOrderId`, which BingX refuses to place twice).
    pub fn signed(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<String, Refused> {
        let mut attempt = 0;
        loop {
            let r = self.once(method, path, params, attempt > 0, None);
            let again = match &r {
                Err(e) => ExchangeError::from(e.clone()).is_retryable(),
                Ok(_) => false,
            };
            if !again || attempt + 1 >= rest::ATTEMPTS {
                return r;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(300 * u64::from(attempt)));
        }
    }

    /// `signed` tried once: for a placement that carries no client id (a stop),
    /// which a blind repeat could place twice.
    pub fn signed_once(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<String, Refused> {
        self.once(method, path, params, false, None)
    }

    /// `signed` tried once and over by `by`: for a check that answers an HTTP
    /// request now (the key check on save).
    pub fn signed_within(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        by: std::time::Instant,
    ) -> Result<String, Refused> {
        self.once(method, path, params, false, Some(by))
    }

    fn once(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        retried: bool,
        by: Option<std::time::Instant>,
    ) -> Result<String, Refused> {
        if self.clock.stale() {
            self.sync_clock().map_err(Refused::Failed)?;
        }
        let mut all = params.to_vec();
        all.push(("recvWindow", self.recv_window.to_string()));
        all.push(("timestamp", self.clock.now_ms().to_string()));
        let signing = canonical(&all);
        let signature = rest::hmac_hex(&self.key.secret, &signing);
        let url = format!("{}{path}?{signing}&signature={signature}", self.base);
        let headers = [("X-BX-APIKEY", self.key.key.as_str())];
        self.send(method, &url, &headers, retried, by)
    }

    /// An unsigned market-data GET ("No API KEY signature required"): only the
    /// `timestamp` every swap endpoint asks for, from the local clock. Tried once
    /// and over within `budget`: the caches that call it serve HTTP requests and
    /// retry on their own schedule.
    pub fn public(
        &self,
        path: &str,
        params: &[(&str, String)],
        budget: &rest::Budget,
    ) -> Result<String, Refused> {
        let by = budget.next_call().map_err(Refused::Failed)?;
        let mut all = params.to_vec();
        all.push(("timestamp", rest::local_ms().to_string()));
        let url = format!("{}{path}?{}", self.base, canonical(&all));
        self.send("GET", &url, &[], false, Some(by))
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        retried: bool,
        by: Option<std::time::Instant>,
    ) -> Result<String, Refused> {
        // Parameters travel in the query; POST and DELETE still say
        // `Content-Length: 0`, which some front ends insist on.
        let body = (method != "GET").then_some("");
        let answer = self
            .http
            .send_by(method, url, headers, body, by)
            .map_err(Refused::Failed)?;
        let r = envelope(answer.status, &answer.body, retried);
        if let Err(e) = &r {
            if e.class() == Some(Class::Clock) {
                self.clock.invalidate();
            }
        }
        r
    }

    fn sync_clock(&self) -> Result<(), ExchangeError> {
        let sent = rest::local_ms();
        let url = format!("{}/openApi/swap/v2/server/time?timestamp={sent}", self.base);
        let a = self.http.send("GET", &url, &[], None)?;
        let raw = envelope(a.status, &a.body, false).map_err(ExchangeError::from)?;
        let t: ServerTime = wire::parse("server time", &raw)?;
        if t.server_time <= 0 {
            return Err(ExchangeError::Malformed(format!(
                "server time: {} ms",
                t.server_time
            )));
        }
        self.clock.set(t.server_time, sent);
        Ok(())
    }
}

/// Parameters sorted by key (ASCII), `k=v` joined by `&`, values as they are: the
/// signed string. Our values are symbols, numbers, enums and client ids — none
/// holds `&`, `=` or a character that would need encoding.
pub fn canonical(params: &[(&str, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// BingX's envelope: `code` 0 is success, `data` the payload.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(deserialize_with = "wire::int")]
    code: i64,
    #[serde(default)]
    msg: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// The `data` text of a `code` 0 answer (`null` when absent), or why not. A body
/// that is no BingX envelope is judged by its HTTP status (a proxy's error page,
/// an overloaded gateway), or is `Malformed` when the status says success.
fn envelope(status: u16, body: &str, retried: bool) -> Result<String, Refused> {
    let env = match wire::parse::<Envelope>("BingX answer", body) {
        Ok(env) => env,
        Err(e) if status == 200 => return Err(Refused::Failed(e)),
        Err(_) => return Err(Refused::Failed(errors::http_status(status))),
    };
    if env.code != 0 {
        return Err(Refused::Code {
            code: env.code,
            msg: env.msg,
            retried,
        });
    }
    Ok(env
        .data
        .map_or_else(|| "null".to_string(), |r| r.get().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_is_sorted_and_unencoded() {
        // The documented example: symbol, recvWindow, timestamp.
        let p = [
            ("symbol", "BTC-USDT".to_string()),
            ("recvWindow", "0".into()),
            ("timestamp", "1696751141337".into()),
        ];
        assert_eq!(
            canonical(&p),
            "recvWindow=0&symbol=BTC-USDT&timestamp=1696751141337"
        );
    }

    #[test]
    fn documented_body_example_signs_its_sorted_string() {
        let p = [
            ("recvWindow", "5000".to_string()),
            ("symbol", "ETH-USDT".into()),
            ("type", "MARKET".into()),
            ("side", "SELL".into()),
            ("positionSide", "SHORT".into()),
            ("quantity", "0.01".into()),
            ("timestamp", "1696751141337".into()),
        ];
        assert_eq!(
            canonical(&p),
            "positionSide=SHORT&quantity=0.01&recvWindow=5000&side=SELL&symbol=ETH-USDT\
             &timestamp=1696751141337&type=MARKET"
        );
    }

    #[test]
    fn envelopes_and_bodies_that_are_none() {
        let ok = envelope(200, r#"{"code":0,"msg":"","data":{"a":1}}"#, false);
        assert_eq!(ok.unwrap(), r#"{"a":1}"#);
        let e = envelope(200, r#"{"code":101204,"msg":"Insufficient margin"}"#, false);
        assert_eq!(
            ExchangeError::from(e.unwrap_err()),
            ExchangeError::InsufficientBalance
        );
        let e = envelope(503, "<html>busy</html>", false).unwrap_err();
        assert!(ExchangeError::from(e).is_retryable());
        for body in ["<html>", r#"{"code":"x"}"#, r#"{"data":[]}"#] {
            let e = ExchangeError::from(envelope(200, body, false).unwrap_err());
            assert!(matches!(e, ExchangeError::Malformed(_)), "{body}: {e:?}");
        }
    }
}
