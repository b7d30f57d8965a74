//! Bybit v5 transport: request signing, the `retCode` envelope, the server clock,
//! the per-endpoint rate-limit headers, and retries of what is safe to repeat.
//!
//! Signing (<https://bybit-exchange.github.io/docs/v5/guide>, "Create A Request"):
//! `X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp + apiKey + recvWindow + payload))`
//! where the payload is the query string exactly as sent (GET) or the JSON body
//! exactly as sent (POST); headers `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP`,
//! `X-BAPI-RECV-WINDOW`, `X-BAPI-SIGN`. A timestamp is accepted when
//! `server_time - recv_window <= timestamp < server_time + 1000`, hence the clock
//! offset from `GET /v5/market/time`.
//!
//! Rate limits (<https://bybit-exchange.github.io/docs/v5/rate-limit>): every
//! answer carries `X-Bapi-Limit-Status` (requests left) and
//! `X-Bapi-Limit-Reset-Timestamp`; `retCode` 10006 means the limit was hit.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::exchange::rest::{self, ApiKey, Clock, Http, RestSettings};
use crate::exchange::ExchangeError;

/// A call the exchange refused, or that got no usable answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// `retCode` ≠ 0. `retried`: an earlier attempt of the same call may have
    /// reached the exchange.
    Code {
        code: i64,
        msg: String,
        retried: bool,
    },
    Failed(ExchangeError),
}

impl From<Refused> for ExchangeError {
    /// Bybit's error codes (<https://bybit-exchange.github.io/docs/v5/error>) in
    /// the terms a user can act on.
    fn from(r: Refused) -> ExchangeError {
        let (code, msg) = match r {
            Refused::Failed(e) => return e,
            Refused::Code { code, msg, .. } => (code, msg),
        };
        match code {
            10003 | 10004 | 10005 | 10010 | 33004 => ExchangeError::InvalidKey,
            10006 => ExchangeError::RateLimited,
            110004 | 110007 | 110012 => ExchangeError::InsufficientBalance,
            110017 | 110094 | 170136 => ExchangeError::BelowMinimum,
            110072 => ExchangeError::Duplicate(msg),
            10002 | 10016 => ExchangeError::Network(format!("{msg} (retCode {code})")),
            _ => ExchangeError::Rejected(format!("{msg} (retCode {code})")),
        }
    }
}

pub struct Api {
    http: Http,
    base: String,
    key: ApiKey,
    recv_window: u64,
    clock: Clock,
    /// When the exhausted rate limit resets (exchange ms); 0 = not exhausted.
    limited_until: Mutex<i64>,
}

/// Waiting longer than this for a rate limit to reset is left to the next step.
const MAX_WAIT_MS: i64 = 1500;

impl Api {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Api {
        Api {
            http: Http::new(settings.timeout_ms),
            base: settings.bybit_url.clone(),
            key,
            recv_window: settings.recv_window_ms,
            clock: Clock::default(),
            limited_until: Mutex::new(0),
        }
    }

    /// An unsigned market-data GET.
    pub fn public(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Refused> {
        self.call("GET", path, &encode(query), false)
    }

    /// A signed GET.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Refused> {
        self.call("GET", path, &encode(query), true)
    }

    /// A signed POST with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Refused> {
        self.call("POST", path, &body.to_string(), true)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        payload: &str,
        signed: bool,
    ) -> Result<Value, Refused> {
        let mut attempt = 0;
        loop {
            let r = self.once(method, path, payload, signed, attempt > 0);
            let again = match &r {
                Err(Refused::Failed(ExchangeError::Network(_))) => true,
                // Time window (10002), rate limit (10006), server error (10016).
                Err(Refused::Code { code, .. }) => matches!(code, 10002 | 10006 | 10016),
                _ => false,
            };
            if !again || attempt + 1 >= rest::ATTEMPTS {
                return r;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(150 * u64::from(attempt)));
        }
    }

    fn once(
        &self,
        method: &str,
        path: &str,
        payload: &str,
        signed: bool,
        retried: bool,
    ) -> Result<Value, Refused> {
        if signed && self.clock.stale() {
            self.sync_clock().map_err(Refused::Failed)?;
        }
        self.wait_for_limit().map_err(Refused::Failed)?;
        if ip_banned(self.clock.now_ms()) {
            return Err(Refused::Failed(ExchangeError::RateLimited));
        }
        let url = match (method, payload.is_empty()) {
            ("GET", false) => format!("{}{path}?{payload}", self.base),
            _ => format!("{}{path}", self.base),
        };
        let ts = self.clock.now_ms().to_string();
        let window = self.recv_window.to_string();
        let sign = rest::hmac_hex(
            &self.key.secret,
            &string_to_sign(&ts, &self.key.key, &window, payload),
        );
        let mut headers = vec![("Content-Type", "application/json")];
        if signed {
            headers.extend([
                ("X-BAPI-API-KEY", self.key.key.as_str()),
                ("X-BAPI-TIMESTAMP", ts.as_str()),
                ("X-BAPI-RECV-WINDOW", window.as_str()),
                ("X-BAPI-SIGN", sign.as_str()),
            ]);
        }
        let body = (method == "POST").then_some(payload);
        let answer = self
            .http
            .send(method, &url, &headers, body)
            .map_err(Refused::Failed)?;
        self.note_limit(answer.limit_status, answer.limit_reset_ms);
        if answer.status == 403 {
            note_ip_ban(self.clock.now_ms());
        }
        let r = envelope(answer.status, &answer.body, retried);
        if let Err(Refused::Code { code, .. }) = &r {
            match code {
                10002 => self.clock.invalidate(),
                10006 => self.limit_hit(answer.limit_reset_ms),
                _ => {}
            }
        }
        r
    }

    fn sync_clock(&self) -> Result<(), ExchangeError> {
        let sent = rest::local_ms();
        let url = format!("{}/v5/market/time", self.base);
        let a = self.http.send("GET", &url, &[], None)?;
        let v = envelope(a.status, &a.body, false).map_err(ExchangeError::from)?;
        let nanos = rest::int(&v["timeNano"]).unwrap_or(0);
        let ms = if nanos > 0 {
            nanos / 1_000_000
        } else {
            rest::int(&v["timeSecond"])
                .unwrap_or(0)
                .saturating_mul(1000)
        };
        if ms <= 0 {
            return Err(ExchangeError::Network(
                "no server time in the answer".into(),
            ));
        }
        self.clock.set(ms, sent);
        Ok(())
    }

    fn note_limit(&self, left: Option<i64>, reset: Option<i64>) {
        if let (Some(0), Some(reset)) = (left, reset) {
            *lock(&self.limited_until) = reset;
        }
    }

    fn limit_hit(&self, reset: Option<i64>) {
        *lock(&self.limited_until) = reset.unwrap_or_else(|| self.clock.now_ms() + 1000);
    }

    /// Sleeps until an exhausted limit resets, if that is soon; else reports it.
    fn wait_for_limit(&self) -> Result<(), ExchangeError> {
        let until = *lock(&self.limited_until);
        let wait = until - self.clock.now_ms();
        if wait <= 0 {
            return Ok(());
        }
        if wait > MAX_WAIT_MS {
            return Err(ExchangeError::RateLimited);
        }
        std::thread::sleep(Duration::from_millis(wait as u64));
        Ok(())
    }
}

/// Bybit answers HTTP 403 when this machine's IP went over its limit, and bans
/// the IP for at least 10 minutes. Every bot trades from the same IP, so the ban
/// is shared: nobody sends a request until it is over (more would prolong it).
static IP_BANNED_UNTIL_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
const IP_BAN_MS: i64 = 10 * 60 * 1000;

fn note_ip_ban(now_ms: i64) {
    IP_BANNED_UNTIL_MS.fetch_max(now_ms + IP_BAN_MS, std::sync::atomic::Ordering::Relaxed);
}

fn ip_banned(now_ms: i64) -> bool {
    now_ms < IP_BANNED_UNTIL_MS.load(std::sync::atomic::Ordering::Relaxed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What Bybit signs: `timestamp + apiKey + recvWindow + (queryString | jsonBody)`.
fn string_to_sign(ts: &str, key: &str, window: &str, payload: &str) -> String {
    format!("{ts}{key}{window}{payload}")
}

/// `k=v&k=v` in the given order, values percent-encoded; the same string is sent
/// and signed.
fn encode(query: &[(&str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The `result` of a `retCode` 0 answer, or why not.
fn envelope(status: u16, body: &str, retried: bool) -> Result<Value, Refused> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let Some(v) = parsed.filter(|v| v.get("retCode").is_some()) else {
        return Err(Refused::Failed(match status {
            401 => ExchangeError::InvalidKey,
            // "403, access too frequent": the IP limit.
            403 | 429 => ExchangeError::RateLimited,
            _ => ExchangeError::Network(format!("HTTP {status} without a Bybit answer")),
        }));
    };
    // A garbled code is no success: -1 is no code Bybit uses.
    let code = rest::int(&v["retCode"]).unwrap_or(-1);
    if code != 0 {
        return Err(Refused::Code {
            code,
            msg: rest::text(&v["retMsg"]),
            retried,
        });
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_keep_their_order_and_encode_values() {
        let q = [
            ("category", "linear".to_string()),
            ("symbol", "BTC USDT".into()),
        ];
        assert_eq!(encode(&q), "category=linear&symbol=BTC+USDT");
    }

    #[test]
    fn strings_to_sign_match_the_documented_examples() {
        // docs/v5/guide, "Create A Request": the GET and POST examples.
        assert_eq!(
            string_to_sign(
                "1658384314791",
                "XXXXXXXXXX",
                "5000",
                "category=option&symbol=BTC-29JUL22-25000-C"
            ),
            "1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C"
        );
        assert_eq!(
            string_to_sign(
                "1658385579423",
                "XXXXXXXXXX",
                "5000",
                r#"{"category": "option"}"#
            ),
            r#"1658385579423XXXXXXXXXX5000{"category": "option"}"#
        );
    }

    #[test]
    fn an_exhausted_limit_is_waited_out_or_reported() {
        let key = ApiKey {
            key: "k".into(),
            secret: "s".into(),
        };
        let api = Api::new(&RestSettings::default(), key);
        // `X-Bapi-Limit-Status: 0` with a reset 200 ms away: the next call waits.
        api.note_limit(Some(0), Some(rest::local_ms() + 200));
        let t = std::time::Instant::now();
        assert_eq!(api.wait_for_limit(), Ok(()));
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        // Requests left: no wait.
        api.note_limit(Some(3), Some(rest::local_ms() + 60_000));
        assert_eq!(api.wait_for_limit(), Ok(()));
        // A reset far away is the next step's business.
        api.limit_hit(Some(rest::local_ms() + 60_000));
        assert_eq!(api.wait_for_limit(), Err(ExchangeError::RateLimited));
    }

    #[test]
    fn an_ip_ban_holds_every_request_for_ten_minutes() {
        // Small clock values: the ban set here is long over in real time.
        note_ip_ban(1_000);
        assert!(ip_banned(1_000 + 599_999));
        assert!(!ip_banned(1_000 + 600_001));
    }

    #[test]
    fn envelope_maps_codes() {
        let e = envelope(200, r#"{"retCode":10004,"retMsg":"error sign!"}"#, false);
        assert_eq!(
            ExchangeError::from(e.unwrap_err()),
            ExchangeError::InvalidKey
        );
        let ok = envelope(
            200,
            r#"{"retCode":0,"retMsg":"OK","result":{"a":1}}"#,
            false,
        );
        assert_eq!(ok.unwrap()["a"], 1);
        let e = envelope(403, "access too frequent", false).unwrap_err();
        assert_eq!(ExchangeError::from(e), ExchangeError::RateLimited);
    }
}
