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
//!
//! Rate limits (<https://bingx.com/en/support/articles/31103871611289>): account
//! endpoints share 2,000 requests per 10 s per IP, market data endpoints (`quote`,
//! the server time) 500 per 10 s per IP; each group has its own `RequestBudget`.
//! HTTP 429 ("breaking a request rate limit") or code 100410 pauses the group for
//! `Retry-After` or a second; HTTP 418, an IP "auto-banned for continuing to send
//! requests after receiving 429 codes" (<https://bingx-api.github.io/docs/swap/base-info.html>),
//! closes it for the 5 minutes after which BingX lifts the restriction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::errors::{self, Class};
use super::types::ServerTime;
use crate::exchange::rest::budget::{self, Priority, RequestBudget};
use crate::exchange::rest::{self, wire, ApiKey, Clock, Http, RestSettings};
use crate::exchange::ExchangeError;
use crate::market::Venue;

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
    /// The class of a refusal with a code (`Gone`, `Duplicate`, …).
    pub fn class(&self) -> Option<Class> {
        match self {
            Refused::Code { code, msg, .. } => errors::class(*code, msg),
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
    /// The process's budgets for this BingX: account endpoints, market data.
    account: Arc<RequestBudget>,
    market: Arc<RequestBudget>,
    timeout: Duration,
}

/// How long BingX restricts an IP that kept sending after a 429 (HTTP 418).
const IP_BAN: Duration = Duration::from_secs(5 * 60);

impl Api {
    pub fn new(settings: &RestSettings, key: ApiKey) -> Api {
        let base = &settings.bingx_url;
        let limits = settings.limits;
        let group = |name: &str| format!("{name} {}", settings.egress());
        Api {
            http: Http::with_proxy(settings.timeout_ms, settings.proxy.as_ref()),
            base: base.clone(),
            key,
            // BingX accepts at most 5000.
            recv_window: settings.recv_window_ms.min(5000),
            clock: Clock::shared(base),
            account: budget::shared(Venue::Bingx, &group("account"), base, limits.bingx()),
            market: budget::shared(Venue::Bingx, &group("market"), base, limits.bingx_market()),
            timeout: Duration::from_millis(settings.timeout_ms),
        }
    }

    /// The budget of `path`'s endpoint group: market data (`…/quote/…`, the
    /// server time) or the account's endpoints.
    fn budget(&self, path: &str) -> &RequestBudget {
        if path.contains("/quote/") || path.ends_with("/server/time") {
            &self.market
        } else {
            &self.account
        }
    }

    /// The exchange's clock as far as we know it (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A signed request (`GET`, `POST` or `DELETE`), parameters in the query;
    /// the text of its `data`. Its budget class: a read (`GET`) is `Reconcile`, a
    /// write `Placement`; protective writes go through `signed_as`.
    pub fn signed(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<String, Refused> {
        let priority = match method {
            "GET" => Priority::Reconcile,
            _ => Priority::Placement,
        };
        self.signed_as(priority, method, path, params)
    }

    /// `signed` in the budget class `priority`. Market data is signed too: BingX
    /// lists `timestamp` as required on every swap endpoint, and a signature costs
    /// nothing where none is checked. Retryable refusals are tried again after a
    /// growing pause: the calls that come here are safe to repeat (reads,
    /// cancels, leverage, and placements carrying a `clientOrderId`, which BingX
    /// refuses to place twice).
    pub fn signed_as(
        &self,
        priority: Priority,
        method: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<String, Refused> {
        let mut attempt = 0;
        let mut maybe_sent = None;
        loop {
            let r = self.once(priority, method, path, params, attempt > 0, None);
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
            std::thread::sleep(Duration::from_millis(300 * u64::from(attempt)));
        }
    }

    /// `signed_as` tried once: for a placement that carries no client id (a
    /// stop), which a blind repeat could place twice.
    pub fn signed_once(
        &self,
        priority: Priority,
        method: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<String, Refused> {
        self.once(priority, method, path, params, false, None)
    }

    /// `signed` tried once and over by `by` (its turn in the budget included):
    /// for a check that answers an HTTP request now (the key check on save).
    pub fn signed_within(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        by: Instant,
    ) -> Result<String, Refused> {
        self.once(Priority::Reconcile, method, path, params, false, Some(by))
    }

    /// One attempt, after its turn in the budget (waiting at most its class's
    /// `max_wait`).
    fn once(
        &self,
        priority: Priority,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        retried: bool,
        within: Option<Instant>,
    ) -> Result<String, Refused> {
        // A call that answers an HTTP request now (`within`) waits for its turn
        // no longer than it may take in all.
        let by = within.unwrap_or_else(|| Instant::now() + priority.max_wait(self.timeout));
        if self.clock.stale() {
            // The clock read is as urgent as the request that needs it.
            let _turn = self
                .market
                .acquire(priority, by)
                .map_err(|_| Refused::NoTurn)?;
            self.sync_clock().map_err(Refused::Failed)?;
        }
        // Held until the answer is in.
        let _turn = self
            .budget(path)
            .acquire(priority, by)
            .map_err(|_| Refused::NoTurn)?;
        let mut all = params.to_vec();
        all.push(("recvWindow", self.recv_window.to_string()));
        all.push(("timestamp", self.clock.now_ms().to_string()));
        let signing = canonical(&all);
        let signature = rest::hmac_hex(&self.key.secret, &signing);
        let url = format!("{}{path}?{signing}&signature={signature}", self.base);
        let headers = [("X-BX-APIKEY", self.key.key.as_str())];
        self.send(method, path, &url, &headers, retried, within)
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
        let _turn = self
            .budget(path)
            .acquire(Priority::Reconcile, by)
            .map_err(|_| Refused::NoTurn)?;
        let mut all = params.to_vec();
        all.push(("timestamp", rest::local_ms().to_string()));
        let url = format!("{}{path}?{}", self.base, canonical(&all));
        self.send("GET", path, &url, &[], false, Some(by))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        url: &str,
        headers: &[(&str, &str)],
        retried: bool,
        by: Option<Instant>,
    ) -> Result<String, Refused> {
        // Parameters travel in the query; POST and DELETE still say
        // `Content-Length: 0`, which some front ends insist on.
        let body = (method != "GET").then_some("");
        let answer = self
            .http
            .send_by(method, url, headers, body, by)
            .map_err(Refused::Failed)?;
        let r = envelope(answer.status, &answer.body, retried);
        let code = match &r {
            Err(Refused::Code { code, .. }) => Some(*code),
            _ => None,
        };
        self.note_limits(path, answer.status, code, answer.retry_after_s);
        if let Err(e) = &r {
            if e.class() == Some(Class::Clock) {
                self.clock.invalidate();
            }
        }
        r
    }

    /// Backs the endpoint group off as BingX asks: 418, the IP is banned; 429 or
    /// code 100410, a limit was broken (which BingX does not say: every bot of the
    /// group waits, lest the IP's limit be the one).
    fn note_limits(&self, path: &str, status: u16, code: Option<i64>, retry_after: Option<i64>) {
        let group = self.budget(path);
        if status == 418 {
            group.ban(IP_BAN);
        } else if status == 429 || code == Some(100410) {
            let s = retry_after.unwrap_or(1).clamp(1, 60) as u64;
            group.pause(Duration::from_secs(s));
        }
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
    fn rate_limit_answers_back_off_their_endpoint_group() {
        let settings = RestSettings {
            bingx_url: "http://bingx-limits.invalid".into(),
            ..RestSettings::default()
        };
        let key = ApiKey {
            key: "k".into(),
            secret: "s".into(),
        };
        let api = Api::new(&settings, key);
        let orders = "/openApi/swap/v2/trade/openOrders";
        let quote = "/openApi/swap/v2/quote/ticker";
        assert!(std::ptr::eq(api.budget(quote), &*api.market));
        assert!(std::ptr::eq(
            api.budget("/openApi/swap/v2/server/time"),
            &*api.market
        ));
        assert!(std::ptr::eq(api.budget(orders), &*api.account));
        // An answer that is no limit changes nothing.
        api.note_limits(orders, 200, Some(101204), None);
        assert!(!api.account.closed());
        // 429 on market data pauses market data only.
        api.note_limits(quote, 429, None, Some(2));
        assert!(api.market.closed() && !api.account.closed());
        // Code 100410 pauses the account's endpoints; 418 bans them for minutes:
        // the next signed request is refused without being sent.
        api.note_limits(orders, 200, Some(100410), None);
        assert!(api.account.closed());
        api.note_limits(orders, 418, None, None);
        // (A synced clock: the market-data pause would hold its sync.)
        api.clock.set(rest::local_ms(), rest::local_ms());
        let t = Instant::now();
        let r = api.once(Priority::Protective, "DELETE", orders, &[], false, None);
        assert_eq!(r, Err(Refused::NoTurn));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
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
