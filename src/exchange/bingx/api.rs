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

use serde_json::Value;

use crate::exchange::rest::{self, ApiKey, Clock, Http, RestSettings};
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
    /// BingX's error codes (`skills/references/error-codes.md` of the reference
    /// above) in the terms a user can act on.
    fn from(r: Refused) -> ExchangeError {
        let (code, msg) = match r {
            Refused::Failed(e) => return e,
            Refused::Code { code, msg, .. } => (code, msg),
        };
        let lower = msg.to_lowercase();
        match code {
            100001 | 100004 | 100412 | 100413 | 100419 => ExchangeError::InvalidKey,
            100410 | 109403 => ExchangeError::RateLimited,
            101204 | 101206 | 101212 | 101253 => ExchangeError::InsufficientBalance,
            101202 | 101485 => ExchangeError::BelowMinimum,
            // 109201: "the same order number was submitted more than once in a
            // short period": a repeated client id, i.e. already placed.
            101481 | 109201 => ExchangeError::Duplicate(msg),
            101400 if lower.contains("minimum") => ExchangeError::BelowMinimum,
            101400 if lower.contains("clientorderid") => ExchangeError::Duplicate(msg),
            109425 => ExchangeError::UnknownSymbol(msg),
            100421 | 100500 | 109500 | 110500 => {
                ExchangeError::Network(format!("{msg} (code {code})"))
            }
            _ => ExchangeError::Rejected(format!("{msg} (code {code})")),
        }
    }
}

/// Codes another attempt may fix: timestamp (after a resync), rate limit, busy.
fn transient(code: i64) -> bool {
    matches!(code, 100410 | 100421 | 100500 | 109500 | 110500)
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
            http: Http::new(settings.timeout_ms),
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

    /// A signed request (`GET`, `POST` or `DELETE`), parameters in the query.
    /// Market data is signed too: BingX lists `timestamp` as required on every
    /// swap endpoint, and a signature costs nothing where none is checked.
    pub fn signed(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, Refused> {
        let mut attempt = 0;
        loop {
            let r = self.once(method, path, params, attempt > 0);
            let again = match &r {
                Err(Refused::Failed(ExchangeError::Network(_) | ExchangeError::RateLimited)) => {
                    true
                }
                Err(Refused::Code { code, .. }) => transient(*code),
                _ => false,
            };
            if !again || attempt + 1 >= rest::ATTEMPTS {
                return r;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(300 * u64::from(attempt)));
        }
    }

    fn once(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        retried: bool,
    ) -> Result<Value, Refused> {
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
        // Parameters travel in the query; POST and DELETE still say
        // `Content-Length: 0`, which some front ends insist on.
        let body = (method != "GET").then_some("");
        let answer = self
            .http
            .send(method, &url, &headers, body)
            .map_err(Refused::Failed)?;
        let r = envelope(answer.status, &answer.body, retried);
        if let Err(Refused::Code { code: 100421, .. }) = &r {
            self.clock.invalidate();
        }
        r
    }

    fn sync_clock(&self) -> Result<(), ExchangeError> {
        let sent = rest::local_ms();
        let url = format!("{}/openApi/swap/v2/server/time?timestamp={sent}", self.base);
        let a = self.http.send("GET", &url, &[], None)?;
        let v = envelope(a.status, &a.body, false).map_err(ExchangeError::from)?;
        let ms = rest::int(&v["serverTime"]).unwrap_or(0);
        if ms <= 0 {
            return Err(ExchangeError::Network(
                "no server time in the answer".into(),
            ));
        }
        self.clock.set(ms, sent);
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

/// The `data` of a `code` 0 answer, or why not.
fn envelope(status: u16, body: &str, retried: bool) -> Result<Value, Refused> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let Some(v) = parsed.filter(|v| v.get("code").is_some()) else {
        return Err(Refused::Failed(match status {
            401 => ExchangeError::InvalidKey,
            418 | 429 => ExchangeError::RateLimited,
            _ => ExchangeError::Network(format!("HTTP {status} without a BingX answer")),
        }));
    };
    // A garbled code is no success: -1 is no code BingX uses.
    let code = rest::int(&v["code"]).unwrap_or(-1);
    if code != 0 {
        return Err(Refused::Code {
            code,
            msg: rest::text(&v["msg"]),
            retried,
        });
    }
    Ok(v.get("data").cloned().unwrap_or(Value::Null))
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
    fn codes_map_to_user_terms() {
        let e = |code, msg: &str| {
            ExchangeError::from(Refused::Code {
                code,
                msg: msg.into(),
                retried: false,
            })
        };
        assert_eq!(e(100413, "x"), ExchangeError::InvalidKey);
        assert_eq!(e(101206, "x"), ExchangeError::InsufficientBalance);
        assert_eq!(
            e(101400, "amount below the minimum"),
            ExchangeError::BelowMinimum
        );
        assert_eq!(e(100410, "x"), ExchangeError::RateLimited);
        assert!(matches!(e(109201, "x"), ExchangeError::Duplicate(_)));
    }
}
