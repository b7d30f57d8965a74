//! What the real-exchange adapters share: where the exchanges are (per deployment),
//! one HTTP client with timeouts, HMAC-SHA256 signing, the server-clock offset and
//! the retry policy. `wire` reads their answers into typed structs; `budget` keeps
//! every exchange's requests within its per-IP limit.

pub mod budget;
pub mod class;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use rust_decimal::Decimal;

use super::ExchangeError;
use crate::money;

/// Deployment settings of the real exchanges (`BYBIT_BASE_URL`, `BINGX_BASE_URL`,
/// `EXCHANGE_TIMEOUT_MS`, `EXCHANGE_RECV_WINDOW_MS`, the request budgets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestSettings {
    /// No trailing slash, e.g. `https://api.bybit.com` or a testnet.
    pub bybit_url: String,
    pub bingx_url: String,
    /// Whole-request timeout (connect, send, read).
    pub timeout_ms: u64,
    /// How long a signed request stays valid at the exchange.
    pub recv_window_ms: u64,
    /// The per-process request budgets of both exchanges.
    pub limits: budget::Limits,
    /// The exchange account's egress proxy (docs/bots.md, Proxies); `None` goes
    /// direct. Set per account by the runner and the key check, never globally.
    pub proxy: Option<super::proxy::Proxy>,
}

impl RestSettings {
    /// Where requests leave from, as far as the exchange's per-IP limits are
    /// concerned: this server, or the account's proxy. Each egress has its own
    /// request budget (`budget::shared`).
    pub fn egress(&self) -> String {
        match &self.proxy {
            Some(p) => format!("via {}", p.shown()),
            None => "direct".into(),
        }
    }
}

impl Default for RestSettings {
    fn default() -> Self {
        RestSettings {
            bybit_url: "https://api.bybit.com".into(),
            bingx_url: "https://open-api.bingx.com".into(),
            timeout_ms: 8000,
            recv_window_ms: 5000,
            limits: budget::Limits::default(),
            proxy: None,
        }
    }
}

/// One user's API key pair. The secret never leaves this struct except into the
/// HMAC, and `Debug` hides both.
#[derive(Clone)]
pub struct ApiKey {
    pub key: String,
    pub secret: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Lowercase hex HMAC-SHA256 of `message` under `secret` (both exchanges' recipe).
pub fn hmac_hex(secret: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The exchange's clock minus ours, learnt from its server-time endpoint: signed
/// requests carry the exchange's idea of "now", so a drifting host clock does not
/// get every request rejected.
#[derive(Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    synced_at: AtomicI64,
}

/// Resync this often even without a timestamp error.
const RESYNC_MS: i64 = 10 * 60 * 1000;

impl Clock {
    /// The process's clock of the exchange at `base` (its REST base URL): the
    /// exchange's time is the same for every account, so a thousand accounts
    /// read it once, not once each.
    pub fn shared(base: &str) -> Arc<Clock> {
        static ALL: OnceLock<Mutex<HashMap<String, Arc<Clock>>>> = OnceLock::new();
        let all = ALL.get_or_init(|| Mutex::new(HashMap::new()));
        let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(base.to_string()).or_default().clone()
    }

    pub fn now_ms(&self) -> i64 {
        local_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn stale(&self) -> bool {
        local_ms() - self.synced_at.load(Ordering::Relaxed) > RESYNC_MS
    }

    /// Records the server time `server_ms` read between `sent` and now (local ms);
    /// the midpoint of the round trip is the best guess of when it was read.
    pub fn set(&self, server_ms: i64, sent: i64) {
        let now = local_ms();
        let mid = sent + (now - sent) / 2;
        self.offset_ms.store(server_ms - mid, Ordering::Relaxed);
        self.synced_at.store(now, Ordering::Relaxed);
    }

    /// Forces a resync before the next signed request.
    pub fn invalidate(&self) {
        self.synced_at.store(0, Ordering::Relaxed);
    }
}

/// One attempt's result as a call with retries answers it. A rate-limit refusal
/// (`limited`: no turn in the budget, or the exchange's own limit) means the
/// request was not taken; after an earlier attempt that may have been (a
/// timeout, kept in `maybe_sent`), that attempt's error answers instead. So
/// `RateLimited` from a call always means "not done", and a placement refused
/// so can free its client id.
pub fn not_taken_after<T, R: Clone>(
    r: Result<T, R>,
    maybe_sent: &mut Option<R>,
    limited: impl Fn(&R) -> bool,
) -> Result<T, R> {
    match r {
        Err(e) if limited(&e) => Err(maybe_sent.clone().unwrap_or(e)),
        Err(e) => {
            maybe_sent.get_or_insert_with(|| e.clone());
            Err(e)
        }
        ok => ok,
    }
}

/// An HTTP answer: status, body, and the rate-limit headers Bybit sends.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub limit_status: Option<i64>,
    pub limit_reset_ms: Option<i64>,
    /// `Retry-After` in seconds, when the exchange says how long to back off.
    pub retry_after_s: Option<i64>,
}

/// The HTTP client: one agent (connection pool) per adapter.
pub struct Http {
    agent: ureq::Agent,
    /// `Proxy-Authorization` for plain-`http` targets, which ureq sends to an
    /// HTTP proxy in absolute form without credentials (it adds them only to
    /// `CONNECT`, used for `https`).
    proxy_authorization: Option<String>,
}

impl Http {
    pub fn new(timeout_ms: u64) -> Http {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_millis(timeout_ms.min(5000)))
            .timeout(Duration::from_millis(timeout_ms))
            .build();
        Http {
            agent,
            proxy_authorization: None,
        }
    }

    /// `new`, through `proxy` when there is one (ureq speaks HTTP `CONNECT` and
    /// SOCKS5 itself). Known: ureq 2.12 runs a SOCKS handshake in a thread and
    /// can miss its wake-up when the handshake finishes first (a local proxy on a
    /// loaded machine), so that call waits out its timeout and fails as a network
    /// error, which the callers retry.
    pub fn with_proxy(timeout_ms: u64, proxy: Option<&super::proxy::Proxy>) -> Http {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_millis(timeout_ms.min(5000)))
            .timeout(Duration::from_millis(timeout_ms));
        // `parse` accepted only what ureq reads, so this cannot fail in practice;
        // if it did, going direct would bypass the user's whitelist, so the
        // agent gets an unusable proxy and every request fails instead.
        if let Some(p) = proxy {
            b = b.proxy(p.to_ureq().unwrap_or_else(|_| unusable_proxy()));
        }
        Http {
            agent: b.build(),
            proxy_authorization: proxy.and_then(|p| p.basic_authorization()),
        }
    }

    /// Sends one request; any HTTP status is an `Answer`, only transport failures
    /// (refused, reset, timeout, TLS) are errors.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Answer, ExchangeError> {
        self.send_by(method, url, headers, body, None)
    }

    /// `send`, over by `by` at the latest (the whole request: connect, send, read).
    pub fn send_by(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
        by: Option<Instant>,
    ) -> Result<Answer, ExchangeError> {
        let mut req = self.agent.request(method, url);
        if let Some(by) = by {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ExchangeError::Network("out of time for this fetch".into()));
            }
            req = req.timeout(left);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        // Never on `https`: there the header would travel inside the tunnel, to
        // the exchange.
        if let Some(auth) = self.proxy_authorization.as_deref() {
            if url.starts_with("http://") {
                req = req.set("Proxy-Authorization", auth);
            }
        }
        let sent = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let resp = match sent {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(ExchangeError::Network(transport_message(&t)))
            }
        };
        let header = |name: &str| resp.header(name).and_then(|v| v.trim().parse::<i64>().ok());
        let limit_status = header("X-Bapi-Limit-Status");
        let limit_reset_ms = header("X-Bapi-Limit-Reset-Timestamp");
        let retry_after_s = header("Retry-After");
        let status = resp.status();
        let body = resp
            .into_string()
            .map_err(|e| ExchangeError::Network(format!("reading the answer: {e}")))?;
        Ok(Answer {
            status,
            body,
            limit_status,
            limit_reset_ms,
            retry_after_s,
        })
    }
}

fn unusable_proxy() -> ureq::Proxy {
    match ureq::Proxy::new("http://0.0.0.0:1") {
        Ok(p) => p,
        Err(_) => unreachable!("a literal proxy URL parses"),
    }
}

/// A short, key-free description (the URL is ours, never a secret: signatures and
/// keys travel in headers or are cut off here).
fn transport_message(t: &ureq::Transport) -> String {
    let kind = t.kind().to_string();
    match t.message() {
        Some(m) => format!("{kind}: {m}"),
        None => kind,
    }
}

/// The longest one public market-data call may take (or `EXCHANGE_TIMEOUT_MS`
/// when shorter): these calls run inside HTTP requests, which must not stall a
/// worker.
pub const MARKET_CALL_CAP: Duration = Duration::from_secs(5);

/// The time a public market-data fetch (one or several chained calls) may take:
/// each call is tried once, ends within the per-call cap, and none runs past
/// `until`. A caller that must answer an HTTP request sets `until`, so however
/// many calls a fetch chains, it is over by then.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub until: Instant,
    pub call_cap: Duration,
}

impl Budget {
    pub fn new(settings: &RestSettings, until: Instant) -> Budget {
        Budget {
            until,
            call_cap: MARKET_CALL_CAP.min(Duration::from_millis(settings.timeout_ms)),
        }
    }

    /// When the next call must be over; an error once the budget is spent.
    pub fn next_call(&self) -> Result<Instant, ExchangeError> {
        let now = Instant::now();
        if now >= self.until {
            return Err(ExchangeError::Network("out of time for this fetch".into()));
        }
        Ok(self.until.min(now + self.call_cap))
    }
}

/// How many times a call is tried in all. Only transient failures (network, rate
/// limit, busy, clock: `ExchangeError::is_retryable`) are retried, after a growing
/// pause — and only calls that are safe to repeat go through that loop: reads,
/// cancels, leverage, and order placements with the same client order id (a
/// repeat is answered as a duplicate, never executed twice). A BingX stop, which
/// keeps no client id, is sent once.
pub const ATTEMPTS: u32 = 3;

/// A decimal number as the exchanges want it: no exponent, no trailing zeros.
pub fn decimal(x: Decimal) -> String {
    money::text(x)
}

pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// How far past our estimate of the exchange's clock a history query reaches:
/// the estimate can trail the exchange by a round trip, and a fill made in that
/// moment must not fall outside every window (a window ending in the future costs
/// nothing).
pub const CLOCK_MARGIN_MS: i64 = 60_000;

/// `[start, end]` windows of at most `width` ms covering `since..=now`, oldest
/// first, starting no earlier than `kept` ms back (what the exchange still has);
/// the next window starts 1 ms after the previous one ends. Both exchanges cap a
/// history query's range (7 days), so a long cycle is read window by window.
pub fn windows(since: i64, now: i64, width: i64, kept: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut start = since.max(now - kept);
    while start <= now {
        let end = (start + width).min(now);
        out.push((start, end));
        start = end + 1;
    }
    out
}

/// `BTC/USDT` → (`BTC`, `USDT`).
pub fn split_symbol(symbol: &str) -> Result<(&str, &str), ExchangeError> {
    symbol
        .split_once('/')
        .filter(|(b, q)| !b.is_empty() && !q.is_empty())
        .ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))
}

/// An order just placed, as the exchange reports it: read back with `find` (a
/// market order until it is no longer open, a few tries 100 ms apart), or, if the
/// exchange does not list it yet or the read fails, as it was sent. Either way
/// with the client id the bot asked for, even where the exchange keeps none (BingX
/// stops): the engine records client id ↔ exchange id from this answer. Never an
/// error: the exchange accepted the order, and a placement reported as failed
/// would be sent again or forgotten; the bot reads the order on its next step.
pub fn read_back(
    order: &super::NewOrder,
    exchange_id: String,
    find: impl Fn() -> Result<Option<super::Order>, ExchangeError>,
) -> Result<super::Order, ExchangeError> {
    use super::{OrderKind, OrderStatus};
    for i in 0..4 {
        match find() {
            Ok(Some(mut o)) => {
                if o.kind != OrderKind::Market || !o.status.is_open() || i == 3 {
                    if o.client_id.is_empty() {
                        o.client_id = order.client_id.clone();
                    }
                    return Ok(o);
                }
            }
            Ok(None) => {}
            // A momentary inconsistency (a fill without its price yet): ask again.
            Err(ExchangeError::Busy(_)) => {}
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(super::Order {
        client_id: order.client_id.clone(),
        exchange_id,
        symbol: order.symbol.clone(),
        side: order.side,
        kind: order.kind,
        price: order.price,
        trigger_price: order.trigger_price,
        qty: order.qty,
        filled_qty: Decimal::ZERO,
        avg_fill_price: Decimal::ZERO,
        fee: Decimal::ZERO,
        reduce_only: order.reduce_only,
        position_side: order.position_side,
        status: OrderStatus::Open,
        created_ms: local_ms(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231, test case 2: key "Jefe".
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn windows_cover_the_span_without_overlap() {
        let week = 7 * DAY_MS;
        assert_eq!(windows(100, 100, week, week), [(100, 100)]);
        let w = windows(0, 20 * DAY_MS, week, 100 * DAY_MS);
        assert_eq!(
            w,
            [
                (0, week),
                (week + 1, 2 * week + 1),
                (2 * week + 2, 20 * DAY_MS)
            ]
        );
        // Older than what is kept: from `kept` back only.
        assert_eq!(
            windows(0, 300 * DAY_MS, week, 100 * DAY_MS)[0].0,
            200 * DAY_MS
        );
        assert!(windows(11, 10, week, week).is_empty());
    }

    fn sent() -> crate::exchange::NewOrder {
        crate::exchange::NewOrder {
            client_id: "bz-1-1-l1".into(),
            symbol: "BTC/USDT".into(),
            side: crate::exchange::OrderSide::Buy,
            kind: crate::exchange::OrderKind::Limit,
            price: Some(dec!(60000)),
            trigger_price: None,
            qty: dec!(0.002),
            reduce_only: false,
            position_side: crate::exchange::Side::Long,
        }
    }

    #[test]
    fn a_placed_order_that_cannot_be_read_back_is_still_placed() {
        use crate::exchange::OrderStatus;
        for e in [
            ExchangeError::Network("timed out".into()),
            ExchangeError::RateLimited,
            ExchangeError::Malformed("order: field avgPrice".into()),
            ExchangeError::Busy("filled without a price yet".into()),
        ] {
            let calls = std::cell::Cell::new(0);
            let o = read_back(&sent(), "777".into(), || {
                calls.set(calls.get() + 1);
                Err(e.clone())
            });
            let o = o.unwrap_or_else(|err| panic!("{e:?} failed the placement: {err:?}"));
            assert_eq!(
                (o.client_id.as_str(), o.exchange_id.as_str()),
                ("bz-1-1-l1", "777")
            );
            assert_eq!(
                (o.status, o.filled_qty, o.price),
                (OrderStatus::Open, Decimal::ZERO, Some(dec!(60000)))
            );
            // Only the momentary inconsistency is asked again.
            let again = matches!(e, ExchangeError::Busy(_));
            assert_eq!(calls.get(), if again { 4 } else { 1 }, "{e:?}");
        }
    }

    #[test]
    fn decimals_are_plain() {
        assert_eq!(decimal(dec!(0.1) + dec!(0.2)), "0.3");
        assert_eq!(decimal(dec!(65000.00)), "65000");
        assert_eq!(decimal(dec!(0.001)), "0.001");
        assert_eq!(decimal(Decimal::ZERO), "0");
    }
}
