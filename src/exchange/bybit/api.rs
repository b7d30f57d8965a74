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
//! `X-Bapi-Limit-Reset-Timestamp`; `retCode` 10006 means the limit was hit (per
//! UID and endpoint: this key waits). Over the per-IP limit (600 requests per 5 s)
//! Bybit answers HTTP 403 "access too frequent" and bans the IP for at least 10
//! minutes: every request of the process passes the shared `RequestBudget` first,
//! and a ban closes it. HTTP 429 ("System level frequency protection",
//! docs/v5/error) pauses it for a second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::errors;
use super::types::ServerTime;
use crate::exchange::rest::budget::{self, Priority, RequestBudget, Turn};
use crate::exchange::rest::{self, wire, ApiKey, Clock, Http, RestSettings};
use crate::exchange::ExchangeError;
use crate::market::Venue;

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
    /// Not sent: the request budget had no turn for it before its deadline. A
    /// rate limit to the bot, which tries again on its next step; not retried
    /// here, which would only hold the thread longer.
    NoTurn,
}

impl From<Refused> for ExchangeError {
    fn from(r: Refused) -> ExchangeError {
        match r {
            Refused::Failed(e) => e,
            Refused::NoTurn => ExchangeError::RateLimited,
            Refused::Code { code, msg, .. } => errors::classify(code, &msg),
        }
    }
}

impl Refused {
    /// The `retCode` of a refusal, if the exchange gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Refused::Code { code, .. } => Some(*code),
            Refused::Failed(_) | Refused::NoTurn => None,
        }
    }
}

pub struct Api {
    http: Http,
    base: String,
    key: ApiKey,
    recv_window: u64,
    /// Shared by every account of the exchange (`Clock::shared`).
    clock: Arc<Clock>,
    /// When the exhausted rate limit resets (exchange ms); 0 = not exhausted.
    limited_until: Mutex<i64>,
    /// The process's budget for this Bybit (shared by every key).
    budget: Arc<RequestBudget>,
    timeout: Duration,
}

/// Waiting longer than this for a rate limit to reset is left to the next step.
const MAX_WAIT_MS: i64 = 1500;

/// One request: what is sent, signed or not, and how urgent it is.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    payload: &'a str,
    signed: bool,
    priority: Priority,
}

impl Api {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Api {
        let limit = settings.limits.bybit();
        Api {
            http: Http::with_proxy(settings.timeout_ms, settings.proxy.as_ref()),
            base: settings.bybit_url.clone(),
            key,
            recv_window: settings.recv_window_ms,
            clock: Clock::shared(&settings.bybit_url),
            limited_until: Mutex::new(0),
            budget: budget::shared(
                Venue::Bybit,
                &format!("ip {}", settings.egress()),
                &settings.bybit_url,
                limit,
            ),
            timeout: Duration::from_millis(settings.timeout_ms),
        }
    }

    /// The exchange's clock as far as we know it (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// An unsigned market-data GET; its `result` read as `T` (`what` names it in
    /// a `Malformed` error).
    pub fn public<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Refused> {
        let raw = self.call(&Request {
            method: "GET",
            path,
            payload: &encode(query),
            signed: false,
            priority: Priority::Reconcile,
        })?;
        wire::parse(what, &raw).map_err(Refused::Failed)
    }

    /// An unsigned market-data GET for a cache that serves HTTP requests: tried
    /// once, never waiting out a rate limit, and over within `budget` (the cache
    /// retries on its own schedule). Its `result` text.
    pub fn market_data(
        &self,
        path: &str,
        query: &[(&str, String)],
        budget: &rest::Budget,
    ) -> Result<String, Refused> {
        let by = budget.next_call().map_err(Refused::Failed)?;
        let req = Request {
            method: "GET",
            path,
            payload: &encode(query),
            signed: false,
            priority: Priority::Reconcile,
        };
        self.once(&req, false, by, true)
    }

    /// A signed GET (a read: `Priority::Reconcile`); its `result` read as `T`.
    pub fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Refused> {
        let raw = self.call(&Request {
            method: "GET",
            path,
            payload: &encode(query),
            signed: true,
            priority: Priority::Reconcile,
        })?;
        wire::parse(what, &raw).map_err(Refused::Failed)
    }

    /// A signed GET tried once and over by `by` (its turn in the budget
    /// included), never waiting out a rate limit: for a check that answers an
    /// HTTP request now (the key check on save). Its `result` text.
    pub fn get_within(
        &self,
        path: &str,
        query: &[(&str, String)],
        by: Instant,
    ) -> Result<String, Refused> {
        let req = Request {
            method: "GET",
            path,
            payload: &encode(query),
            signed: true,
            priority: Priority::Reconcile,
        };
        self.once(&req, false, by, true)
    }

    /// A signed POST with a JSON body, of the budget class `priority`; its
    /// `result` read as `T` (`serde::de::IgnoredAny` when nothing in it is needed).
    pub fn post<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        body: &Value,
        priority: Priority,
    ) -> Result<T, Refused> {
        let raw = self.call(&Request {
            method: "POST",
            path,
            payload: &body.to_string(),
            signed: true,
            priority,
        })?;
        wire::parse(what, &raw).map_err(Refused::Failed)
    }

    /// The `result` text of a successful call. Retryable refusals (rate limit,
    /// busy, clock, network) are tried again after a growing pause: every call
    /// here is safe to repeat (reads, cancels, leverage, and placements carrying
    /// an `orderLinkId`, which Bybit refuses to place twice). Each attempt waits
    /// for the budget at most its class's `max_wait`.
    fn call(&self, req: &Request) -> Result<String, Refused> {
        let mut attempt = 0;
        let mut maybe_sent = None;
        loop {
            let by = Instant::now() + req.priority.max_wait(self.timeout);
            let r = self.once(req, attempt > 0, by, false);
            let r = rest::not_taken_after(r, &mut maybe_sent, |e| {
                ExchangeError::from(e.clone()) == ExchangeError::RateLimited
            });
            let again = match &r {
                Err(Refused::NoTurn) | Ok(_) => false,
                Err(e) => ExchangeError::from(e.clone()).is_retryable(),
            };
            if !again || attempt + 1 >= rest::ATTEMPTS {
                return r;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(150 * u64::from(attempt)));
        }
    }

    /// One attempt: its turn in the budget by `by`, then the request. A
    /// market-data request (`market`) must also be answered by `by`, and does not
    /// sleep for a key's exhausted limit: it serves an HTTP request now.
    fn once(
        &self,
        req: &Request,
        retried: bool,
        by: Instant,
        market: bool,
    ) -> Result<String, Refused> {
        if req.signed && self.clock.stale() {
            // The clock read is as urgent as the request that needs it.
            let _turn = self.turn(req.priority, by)?;
            self.sync_clock().map_err(Refused::Failed)?;
        }
        let max_wait = if market { 0 } else { MAX_WAIT_MS };
        self.wait_for_limit(max_wait).map_err(Refused::Failed)?;
        // Held until the answer is in.
        let _turn = self.turn(req.priority, by)?;
        let url = match (req.method, req.payload.is_empty()) {
            ("GET", false) => format!("{}{}?{}", self.base, req.path, req.payload),
            _ => format!("{}{}", self.base, req.path),
        };
        let ts = self.clock.now_ms().to_string();
        let window = self.recv_window.to_string();
        let sign = rest::hmac_hex(
            &self.key.secret,
            &string_to_sign(&ts, &self.key.key, &window, req.payload),
        );
        let mut headers = vec![("Content-Type", "application/json")];
        if req.signed {
            headers.extend([
                ("X-BAPI-API-KEY", self.key.key.as_str()),
                ("X-BAPI-TIMESTAMP", ts.as_str()),
                ("X-BAPI-RECV-WINDOW", window.as_str()),
                ("X-BAPI-SIGN", sign.as_str()),
            ]);
        }
        let body = (req.method == "POST").then_some(req.payload);
        let answer = self
            .http
            .send_by(req.method, &url, &headers, body, market.then_some(by))
            .map_err(Refused::Failed)?;
        self.note_answer(&answer);
        let r = envelope(answer.status, &answer.body, retried);
        if let Err(Refused::Code { code, msg, .. }) = &r {
            match errors::class(*code, msg) {
                Some(errors::Class::Clock) => self.clock.invalidate(),
                Some(errors::Class::RateLimit) => self.limit_hit(answer.limit_reset_ms),
                _ => {}
            }
        }
        r
    }

    /// What an answer says about the limits: this key's (headers), the IP's (a
    /// 403 ban), the system's (429).
    fn note_answer(&self, answer: &rest::Answer) {
        self.note_limit(answer.limit_status, answer.limit_reset_ms);
        if errors::ip_rate_limited(answer.status, &answer.body) {
            self.budget.ban(IP_BAN);
        } else if answer.status == 429 {
            let s = answer.retry_after_s.unwrap_or(1).clamp(1, 60) as u64;
            self.budget.pause(Duration::from_secs(s));
        }
    }

    /// A request's turn in the budget, by `by`.
    fn turn(&self, priority: Priority, by: Instant) -> Result<Turn<'_>, Refused> {
        self.budget
            .acquire(priority, by)
            .map_err(|_| Refused::NoTurn)
    }

    fn sync_clock(&self) -> Result<(), ExchangeError> {
        let sent = rest::local_ms();
        let url = format!("{}/v5/market/time", self.base);
        let a = self.http.send("GET", &url, &[], None)?;
        let raw = envelope(a.status, &a.body, false).map_err(ExchangeError::from)?;
        let t: ServerTime = wire::parse("server time", &raw)?;
        // Nanoseconds when given (finer), else seconds.
        let ms = match t.nanos.parse::<i128>() {
            Ok(n) if n > 0 => (n / 1_000_000) as i64,
            _ => t.seconds.saturating_mul(1000),
        };
        if ms <= 0 {
            return Err(ExchangeError::Malformed(format!("server time: {ms} ms")));
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

    /// Sleeps until an exhausted limit resets, if that is within `max_wait_ms`;
    /// else reports it.
    fn wait_for_limit(&self, max_wait_ms: i64) -> Result<(), ExchangeError> {
        let until = *lock(&self.limited_until);
        let wait = until - self.clock.now_ms();
        if wait <= 0 {
            return Ok(());
        }
        if wait > max_wait_ms {
            return Err(ExchangeError::RateLimited);
        }
        std::thread::sleep(Duration::from_millis(wait as u64));
        Ok(())
    }
}

/// Bybit answers HTTP 403 "access too frequent" when this machine's IP went over
/// its limit, and bans the IP for at least 10 minutes (any other 403 is no ban).
/// Every bot trades from the same IP, so the ban closes the shared budget: nobody
/// sends a request until it is over (more would prolong it).
const IP_BAN: Duration = Duration::from_secs(10 * 60);

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

/// Bybit's envelope (docs/v5/guide, "Response"): `retCode` 0 is success.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "retCode", deserialize_with = "wire::int")]
    ret_code: i64,
    #[serde(rename = "retMsg", default)]
    ret_msg: String,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
}

/// The `result` text of a `retCode` 0 answer (`null` when absent), or why not. A
/// body that is no Bybit envelope is judged by its HTTP status: an error page of
/// a proxy or an overloaded gateway, or a garbled answer (`Malformed`).
fn envelope(status: u16, body: &str, retried: bool) -> Result<String, Refused> {
    let env = match wire::parse::<Envelope>("Bybit answer", body) {
        Ok(env) => env,
        Err(e) if status == 200 => return Err(Refused::Failed(e)),
        Err(_) => return Err(Refused::Failed(errors::http_status(status, body))),
    };
    if env.ret_code != 0 {
        return Err(Refused::Code {
            code: env.ret_code,
            msg: env.ret_msg,
            retried,
        });
    }
    Ok(env
        .result
        .map_or_else(|| "null".to_string(), |r| r.get().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_after_an_attempt_that_may_have_been_taken_is_not_the_answer() {
        let timeout = Refused::Failed(ExchangeError::Network("timed out".into()));
        let limited = Refused::Code {
            code: 10006,
            msg: "Too many visits!".into(),
            retried: true,
        };
        let is_limit = |e: &Refused| ExchangeError::from(e.clone()) == ExchangeError::RateLimited;
        let mut maybe_sent = None;
        // A first attempt refused for the rate limit was not taken...
        let r: Result<(), Refused> =
            rest::not_taken_after(Err(Refused::NoTurn), &mut maybe_sent, is_limit);
        assert_eq!(r, Err(Refused::NoTurn));
        assert_eq!(maybe_sent, None);
        // ...but after a timeout, a later refusal answers with the timeout.
        let r: Result<(), Refused> =
            rest::not_taken_after(Err(timeout.clone()), &mut maybe_sent, is_limit);
        assert_eq!(r, Err(timeout.clone()));
        for later in [Refused::NoTurn, limited] {
            let r: Result<(), Refused> =
                rest::not_taken_after(Err(later), &mut maybe_sent, is_limit);
            assert_eq!(r, Err(timeout.clone()));
        }
        assert_eq!(
            rest::not_taken_after(Ok(7), &mut maybe_sent, is_limit),
            Ok(7)
        );
    }

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
        assert_eq!(api.wait_for_limit(MAX_WAIT_MS), Ok(()));
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        // Requests left: no wait.
        api.note_limit(Some(3), Some(rest::local_ms() + 60_000));
        assert_eq!(api.wait_for_limit(MAX_WAIT_MS), Ok(()));
        // A reset far away is the next step's business.
        api.limit_hit(Some(rest::local_ms() + 60_000));
        assert_eq!(
            api.wait_for_limit(MAX_WAIT_MS),
            Err(ExchangeError::RateLimited)
        );
    }

    #[test]
    fn an_ip_ban_closes_the_budget_every_key_shares() {
        let settings = RestSettings {
            bybit_url: "http://ban-test.invalid".into(),
            ..RestSettings::default()
        };
        let key = |k: &str| ApiKey {
            key: k.into(),
            secret: "s".into(),
        };
        let (a, b) = (Api::new(&settings, key("a")), Api::new(&settings, key("b")));
        let answer = |status: u16, body: &str| rest::Answer {
            status,
            body: body.into(),
            limit_status: None,
            limit_reset_ms: None,
            retry_after_s: None,
        };
        // A firewall's 403 is no ban.
        a.note_answer(&answer(403, "<html>Request blocked.</html>"));
        assert!(!b.budget.closed());
        a.note_answer(&answer(403, "403, access too frequent"));
        assert!(b.budget.closed());
        // The other key's next request is refused at once, never sent (the URL
        // does not resolve: sending would be a network error).
        let t = Instant::now();
        let r = b.get::<Value>("wallet", "/v5/account/wallet-balance", &[]);
        assert_eq!(r, Err(Refused::NoTurn));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
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
        assert_eq!(ok.unwrap(), r#"{"a":1}"#);
        let e = envelope(403, "403, access too frequent", false).unwrap_err();
        assert_eq!(ExchangeError::from(e), ExchangeError::RateLimited);
        let e = envelope(403, "<html>Request blocked.</html>", false).unwrap_err();
        assert!(matches!(ExchangeError::from(e), ExchangeError::Rejected(_)));
        let e = envelope(502, "<html>bad gateway</html>", false).unwrap_err();
        assert!(ExchangeError::from(e).is_retryable());
        // A garbled success is no success, and no retry either.
        for body in ["<html>", r#"{"retCode":"zero"}"#, r#"{"retMsg":"OK"}"#] {
            let e = ExchangeError::from(envelope(200, body, false).unwrap_err());
            assert!(matches!(e, ExchangeError::Malformed(_)), "{body}: {e:?}");
        }
    }
}
