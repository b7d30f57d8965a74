//! A local stand-in for the Bybit v5 REST API (linear, hedge mode) that checks each
//! request as Bybit documents it (bybit-exchange.github.io/docs/v5/guide): the
//! `X-BAPI-*` headers, the signature
//! `HMAC_SHA256(secret, timestamp + key + recvWindow + queryString|jsonBody)`, the
//! timestamp window `server - recvWindow <= ts < server + 1000`, and each
//! endpoint's required parameters — refusing with Bybit's own error codes.
//! Orders live in fake_bybit_orders.rs, the transaction log in fake_bybit_ledger.rs.

use std::sync::{Arc, Mutex, MutexGuard};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tungstenite::Message;

use super::fake_accounts::{Accounts, KeyPerms, Shared};
use super::fake_book::{num, Book};
use super::fake_bybit_ws::BybitPrivate;
use super::fake_http::{hmac_hex, now_ms, FakeHttp, Request, Response};
use super::fake_inject::{text, BYBIT};
use super::fake_ip_limit::IpLimit;
use super::fake_private_ws::{self as private_ws, Emitted, Streams};
use super::{fake_bybit_ledger as ledger, fake_bybit_orders as orders};

pub const SYMBOL: &str = "BTCUSDT";

/// docs/v5/rate-limit "HTTP IP limit": 600 requests in any 5 s window, then a
/// ban of 10 minutes.
pub const IP_LIMIT: usize = 600;
pub const IP_WINDOW_MS: i64 = 5_000;
pub const IP_BAN_MS: i64 = 600_000;

/// A malformed frame for the private stream's client to refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all.
    InvalidJson,
    /// An `execution` push whose numbers are not numbers.
    GarbledNumber,
}

pub struct FakeBybit {
    pub http: FakeHttp,
    accounts: Arc<Accounts>,
    first: Shared,
    streams: Arc<Streams>,
    ip: Arc<IpLimit>,
}

impl FakeBybit {
    pub fn start(api_key: &str, secret: &str) -> FakeBybit {
        let accounts = Arc::new(Accounts::new(Book::new(api_key, secret)));
        let first = accounts.first();
        let streams = Arc::new(Streams::default());
        let ip = Arc::new(IpLimit::new(IP_LIMIT, IP_WINDOW_MS, IP_BAN_MS));
        let (a, l) = (accounts.clone(), ip.clone());
        let handler = Arc::new(move |req: &Request| handle(&a, &l, req));
        let (a, s) = (accounts.clone(), streams.clone());
        let ws = Arc::new(move |stream, target: &str| {
            let n = s
                .connections_total
                .load(std::sync::atomic::Ordering::SeqCst);
            let proto = BybitPrivate::new(a.clone(), n);
            let refuse = (!target.starts_with("/v5/private")).then_some((
                "404 Not Found",
                r#"{"success":false,"ret_msg":"not found"}"#,
            ));
            private_ws::serve(s.clone(), stream, refuse, proto, |_| {});
        });
        let http = FakeHttp::start_with_ws(handler, Some(ws));
        FakeBybit {
            http,
            accounts,
            first,
            streams,
            ip,
        }
    }

    /// The first account's book (the one the fake was started with).
    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.first.lock().unwrap()
    }

    /// Adds an account with its own API key and secret; returns its index (the
    /// first account is 0).
    pub fn add_account(&self, key: &str, secret: &str) -> usize {
        self.accounts.add(key, secret)
    }

    /// Account `i`'s book: `fake.account(i).lock().unwrap()`.
    pub fn account(&self, i: usize) -> Shared {
        self.accounts.get(i).expect("no such account")
    }

    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Moves the last price of every account.
    pub fn set_price(&self, price: Decimal) {
        self.accounts.set_price(price);
    }

    /// Pins the mark price of every account.
    pub fn set_mark(&self, mark: Decimal) {
        self.accounts.set_mark(mark);
    }

    /// Sets what account `i`'s key may do (`GET /v5/user/query-api`).
    pub fn set_key_perms(&self, i: usize, perms: KeyPerms) {
        self.account(i).lock().unwrap().perms = perms;
    }

    /// Hedge mode (true, the default) or one-way mode for account `i`.
    pub fn set_hedge(&self, i: usize, hedge: bool) {
        self.account(i).lock().unwrap().hedge = hedge;
    }

    pub fn url(&self) -> String {
        self.http.url()
    }

    /// The private stream: `ws://127.0.0.1:PORT/v5/private`.
    pub fn private_ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/v5/private", self.http.port)
    }

    /// Every execution pushed on a private stream, with the time it was sent.
    pub fn emitted(&self) -> Vec<Emitted> {
        self.streams.emitted()
    }

    /// When the execution with this exec id was first pushed (wall-clock ms).
    pub fn emitted_at(&self, exec_id: &str) -> Option<i64> {
        self.streams.emitted_at(exec_id)
    }

    /// Private stream connections open now, and ever opened.
    pub fn private_connections(&self) -> (usize, u64) {
        let total = self
            .streams
            .connections_total
            .load(std::sync::atomic::Ordering::SeqCst);
        (self.streams.live(), total)
    }

    /// Client pings answered on the private streams.
    pub fn pings_answered(&self) -> u64 {
        self.streams.pings_answered()
    }

    /// Closes every private socket now.
    pub fn drop_private_sockets(&self) {
        self.streams.drop_all();
    }

    /// The next `n` stream authentications fail.
    pub fn refuse_auths(&self, n: usize) {
        self.streams.refuse_auths(n);
    }

    /// Sends a malformed frame on every private stream.
    pub fn send_malformed(&self, kind: Malformed) {
        let frame = match kind {
            Malformed::InvalidJson => r#"{"topic":"execution","data":[{"execId":"#.to_string(),
            Malformed::GarbledNumber => json!({"id": "garbled", "topic": "execution",
                "creationTime": now_ms(), "data": [{"category": "linear", "symbol": SYMBOL,
                "orderId": "1", "orderLinkId": "garbled", "side": "Buy", "execId": "garbled-1",
                "execPrice": "65,000.x", "execQty": "0.0.1", "execFee": "NaN",
                "execTime": now_ms().to_string(), "execType": "Trade"}]})
            .to_string(),
        };
        self.streams.send_raw(Message::text(frame));
    }

    /// While on, pings on the private streams go unanswered.
    pub fn stop_answering_pings(&self, on: bool) {
        self.streams.set_deaf(on);
    }

    /// While on, the private streams push nothing (the book still changes).
    pub fn silence_streams(&self, on: bool) {
        self.streams.set_silent(on);
    }

    /// Every REST request received.
    pub fn requests_total(&self) -> u64 {
        self.ip.requests_total()
    }

    /// The largest number of REST requests seen in any 5 s window.
    pub fn requests_in_window_max(&self) -> usize {
        self.ip.requests_in_window_max()
    }

    /// REST requests received so far per method and path.
    pub fn requests_by_path(&self) -> std::collections::BTreeMap<String, u64> {
        self.ip.by_path()
    }

    /// REST requests refused with HTTP 403 for the IP limit.
    pub fn ip_limit_exceeded(&self) -> u64 {
        self.ip.exceeded()
    }

    /// How long the IP stays banned once over the limit (10 minutes by default).
    pub fn set_ip_ban_ms(&self, ms: i64) {
        self.ip.set_ban_ms(ms);
    }

    pub fn unban_ip(&self) {
        self.ip.unban();
    }

    /// The next request to `path` (any method) fails with this Bybit error.
    pub fn inject(&self, path: &str, code: i64, msg: &str) {
        self.book().push_injected(None, path, code, msg, 1);
    }

    /// The next `times` requests `METHOD path` fail with this Bybit error.
    pub fn inject_on(&self, method: &str, path: &str, code: i64, msg: &str, times: usize) {
        self.book()
            .push_injected(Some(method), path, code, msg, times);
    }

    /// The next request to `path` is answered with `body` as it is (HTTP 200).
    pub fn inject_raw(&self, path: &str, body: &str) {
        self.book().raw_replies.push((path.into(), body.into()));
    }

    /// The next request to `path` gets HTTP `status` with `body` as it is.
    pub fn inject_http(&self, path: &str, status: u16, body: &str) {
        self.book()
            .http_replies
            .push((path.into(), status, body.into()));
    }

    /// `inject_on` with the documented text of the code (fake_inject::BYBIT).
    pub fn inject_code(&self, method: &str, path: &str, code: i64, times: usize) {
        self.inject_on(method, path, code, text(BYBIT, code), times);
    }
}

pub fn reply(code: i64, msg: &str, result: Value) -> Response {
    Response::json(json!({"retCode": code, "retMsg": msg, "result": result,
        "retExtInfo": {}, "time": now_ms()}))
}

pub fn ok(result: Value) -> Response {
    reply(0, "OK", result)
}

pub fn refuse(b: &mut Book, req: &Request, code: i64, msg: &str) -> Response {
    b.refused.push((req.path.clone(), format!("{code} {msg}")));
    reply(code, msg, json!({}))
}

/// The IP limit first (every request counts), then the account of the key
/// header (the first account when there is none or it is unknown, which then
/// refuses the key as before).
fn handle(accounts: &Accounts, ip: &IpLimit, req: &Request) -> Response {
    if !ip.admit(&format!("{} {}", req.method, req.path)) {
        // The gateway's answer, not the API's JSON envelope.
        return Response {
            status: 403,
            headers: Vec::new(),
            body: "access too frequent".into(),
        };
    }
    let book = req
        .header("X-BAPI-API-KEY")
        .and_then(|k| accounts.by_key(k))
        .unwrap_or_else(|| accounts.first());
    handle_book(&book, req)
}

fn handle_book(book: &Mutex<Book>, req: &Request) -> Response {
    let mut b = book.lock().unwrap();
    b.seen.push(req.path.clone());
    if req.path.starts_with("/v5/market/") {
        if req.path != "/v5/market/time" {
            let call = format!("{}?{}", req.path, req.raw_query);
            b.market_calls.push(call);
        }
        if let Some(r) = injected(&mut b, req) {
            return r;
        }
        return market(&b, req);
    }
    // Parameters: the query for GET, the JSON body for POST.
    let (payload, params) = match req.method.as_str() {
        "GET" => (req.raw_query.clone(), query_json(req)),
        _ => match serde_json::from_str::<Value>(&req.body) {
            Ok(v) if v.is_object() => (req.body.clone(), v),
            _ => return refuse(&mut b, req, 10001, "request body is not a JSON object"),
        },
    };
    if let Some(r) = authenticate(&mut b, req, &payload) {
        return r;
    }
    if b.rate_limit_next > 0 {
        b.rate_limit_next -= 1;
        b.rate_limited += 1;
        return rate_limited(&b);
    }
    if let Some(r) = injected(&mut b, req) {
        return r;
    }
    let without_category = [
        "/v5/account/wallet-balance",
        "/v5/account/transaction-log",
        "/v5/account/info",
        "/v5/user/query-api",
    ];
    let category_ok = params["category"] == "linear"
        || (params.get("category").is_none() && without_category.contains(&req.path.as_str()));
    if !category_ok {
        return refuse(&mut b, req, 10001, "category must be linear");
    }
    let mut r = private(&mut b, req, &params);
    if b.take_lost(&format!("{} {}", req.method, req.path)) {
        r.status = 0;
    }
    let now = b.server_ms();
    r.headers = limit_headers(9, now);
    r
}

fn rate_limited(b: &Book) -> Response {
    // The text Bybit answers with; the error table has the documented one.
    let mut r = reply(10006, "Too many visits!", json!({}));
    r.headers = limit_headers(0, b.server_ms() + 300);
    r
}

fn injected(b: &mut Book, req: &Request) -> Option<Response> {
    if let Some((status, body)) = b.take_http(&req.path) {
        return Some(Response {
            status,
            headers: Vec::new(),
            body,
        });
    }
    if let Some(body) = b.take_raw(&req.path) {
        return Some(Response {
            status: 200,
            headers: Vec::new(),
            body,
        });
    }
    let (code, msg) = b.take_injected(&req.method, &req.path)?;
    let mut r = reply(code, &msg, json!({}));
    if code == 10006 {
        r.headers = limit_headers(0, b.server_ms() + 300);
    }
    Some(r)
}

fn limit_headers(left: i64, reset: i64) -> Vec<(String, String)> {
    vec![
        ("X-Bapi-Limit".into(), "10".into()),
        ("X-Bapi-Limit-Status".into(), left.to_string()),
        ("X-Bapi-Limit-Reset-Timestamp".into(), reset.to_string()),
    ]
}

fn query_json(req: &Request) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &req.query {
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}

/// Bybit's checks, in its order: key, timestamp window, signature.
fn authenticate(b: &mut Book, req: &Request, payload: &str) -> Option<Response> {
    let (Some(key), Some(ts), Some(sign)) = (
        req.header("X-BAPI-API-KEY"),
        req.header("X-BAPI-TIMESTAMP"),
        req.header("X-BAPI-SIGN"),
    ) else {
        return Some(refuse(b, req, 10003, "API key is invalid."));
    };
    let window = req.header("X-BAPI-RECV-WINDOW").unwrap_or("5000");
    if key != b.api_key {
        return Some(refuse(b, req, 10003, "API key is invalid."));
    }
    let (Ok(t), Ok(w)) = (ts.parse::<i64>(), window.parse::<i64>()) else {
        return Some(refuse(b, req, 10001, "bad timestamp or recv window"));
    };
    let server = b.server_ms();
    if !(server - w <= t && t < server + 1000) {
        let msg = format!(
            "invalid request, please check your server timestamp or recv_window param. \
             req_timestamp[{t}],server_timestamp[{server}],recv_window[{w}]"
        );
        return Some(refuse(b, req, 10002, &msg));
    }
    let want = hmac_hex(&b.secret, &format!("{ts}{key}{window}{payload}"));
    if sign != want {
        return Some(refuse(b, req, 10004, "error sign! origin_string[...]"));
    }
    None
}

fn market(b: &Book, req: &Request) -> Response {
    let sym = req.param("symbol").unwrap_or("");
    match req.path.as_str() {
        "/v5/market/time" => {
            let ms = b.server_ms();
            ok(json!({"timeSecond": (ms / 1000).to_string(),
                "timeNano": (ms as i128 * 1_000_000).to_string()}))
        }
        "/v5/market/instruments-info" if req.param("category") == Some("linear") => {
            instruments(req)
        }
        // docs/v5/market/tickers: the last, mark and index prices (the fake's index
        // is its mark); every symbol when none is named.
        "/v5/market/tickers" if req.param("category") == Some("linear") => {
            let list: Vec<Value> = INSTRUMENTS
                .iter()
                .filter(|i| sym.is_empty() || sym == i.0)
                .map(|i| ticker(b, i))
                .collect();
            if list.is_empty() {
                return reply(10001, "params error: symbol invalid", json!({}));
            }
            ok(json!({"category": "linear", "list": list}))
        }
        "/v5/market/kline" if req.param("category") == Some("linear") => kline(b, req),
        "/v5/market/tickers" => reply(10001, "params error: symbol invalid", json!({})),
        _ => reply(10001, "params error", json!({})),
    }
}

/// The fake's linear contracts: (symbol, base, settle coin, status, tick, qty step,
/// min qty, min notional, max leverage, last price). BTCUSDT trades at the book's
/// price; the USDC-settled and pre-launch ones, and the dated ETH future (listed by
/// `category=linear` too, as `LinearFutures`), must not reach a USDT catalogue.
/// The pre-launch one has no last price yet (`lastPrice: ""`).
type Listing = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

pub const INSTRUMENTS: [Listing; 8] = [
    (
        "BTCUSDT", "BTC", "USDT", "Trading", "0.10", "0.001", "0.001", "5", "100.00", "",
    ),
    (
        "ETHUSDT", "ETH", "USDT", "Trading", "0.01", "0.01", "0.01", "5", "100.00", "3000.25",
    ),
    (
        "SOLUSDT", "SOL", "USDT", "Trading", "0.010", "0.1", "0.1", "5", "75.00", "150.125",
    ),
    (
        "XRPUSDT", "XRP", "USDT", "Trading", "0.0001", "1", "1", "5", "75.00", "0.5123",
    ),
    (
        "1000PEPEUSDT",
        "1000PEPE",
        "USDT",
        "Trading",
        "0.0000001",
        "100",
        "100",
        "5",
        "12.50",
        "0.0101234",
    ),
    (
        "BTCPERP", "BTC", "USDC", "Trading", "0.5", "0.001", "0.001", "5", "100.00", "60010",
    ),
    (
        "ETHUSDT-26DEC25",
        "ETH",
        "USDT",
        "Trading",
        "0.05",
        "0.01",
        "0.01",
        "5",
        "50.00",
        "3100.5",
    ),
    (
        "NEWUSDT",
        "NEW",
        "USDT",
        "PreLaunch",
        "0.0001",
        "1",
        "1",
        "5",
        "25.00",
        "1",
    ),
];

/// Instruments per page: small, so that the catalogue walks the cursor.
const PAGE: usize = 3;

/// docs/v5/market/instrument: one symbol, or every one a page at a time
/// (`cursor` is the index of the page's first entry).
fn instruments(req: &Request) -> Response {
    let sym = req.param("symbol").unwrap_or("");
    let all: Vec<Value> = INSTRUMENTS
        .iter()
        .filter(|i| sym.is_empty() || sym == i.0)
        .map(|i| {
            let kind = if i.0.contains('-') {
                "LinearFutures"
            } else {
                "LinearPerpetual"
            };
            json!({"symbol": i.0, "contractType": kind, "status": i.3,
                "baseCoin": i.1, "quoteCoin": if i.2 == "USDC" { "USDC" } else { "USDT" },
                "settleCoin": i.2, "priceScale": "2",
                "leverageFilter": {"minLeverage": "1", "maxLeverage": i.8, "leverageStep": "0.01"},
                "priceFilter": {"minPrice": i.4, "maxPrice": "1999999.80", "tickSize": i.4},
                "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": i.6,
                    "qtyStep": i.5, "minNotionalValue": i.7},
                "fundingInterval": 480})
        })
        .collect();
    let from: usize = req
        .param("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(from).take(PAGE).cloned().collect();
    let next = if from + PAGE < all.len() {
        (from + PAGE).to_string()
    } else {
        String::new()
    };
    ok(json!({"category": "linear", "list": page, "nextPageCursor": next}))
}

fn ticker(b: &Book, i: &Listing) -> Value {
    let (last, mark) = if i.0 == SYMBOL {
        (num(b.price), num(b.mark()))
    } else if i.3 == "PreLaunch" {
        (String::new(), String::new())
    } else {
        (i.9.to_string(), i.9.to_string())
    };
    json!({"symbol": i.0, "lastPrice": last, "markPrice": mark, "indexPrice": mark,
        "fundingRate": "0.0001", "nextFundingTime": "1700028800000"})
}

/// docs/v5/market/kline: `[start, open, high, low, close, volume, turnover]` as
/// strings, newest first; the fake's candles are one per interval ending now.
fn kline(b: &Book, req: &Request) -> Response {
    let sym = req.param("symbol").unwrap_or("");
    if !INSTRUMENTS.iter().any(|i| i.0 == sym) {
        return reply(10001, "params error: symbol invalid", json!({}));
    }
    let width: i64 = match req.param("interval").unwrap_or("") {
        "D" => 86_400_000,
        m => match m.parse::<i64>() {
            Ok(n) if [1, 3, 5, 15, 30, 60, 120, 240, 360, 720].contains(&n) => n * 60_000,
            _ => return reply(10001, "params error: interval invalid", json!({})),
        },
    };
    let limit: i64 = req
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return reply(10001, "params error: limit invalid", json!({}));
    }
    let now = b.server_ms();
    let newest = now - now.rem_euclid(width);
    let list: Vec<Value> = (0..limit)
        .map(|k| {
            let t = newest - k * width;
            // Prices that tell candles apart: the close is 1000 + the candle's index
            // counted from the oldest.
            let close = 1000 + (limit - 1 - k);
            json!([
                t.to_string(),
                (close - 1).to_string(),
                (close + 2).to_string(),
                (close - 3).to_string(),
                close.to_string(),
                "12.5",
                "12500"
            ])
        })
        .collect();
    ok(json!({"category": "linear", "symbol": sym, "list": list}))
}

fn private(b: &mut Book, req: &Request, p: &Value) -> Response {
    let sym = p["symbol"].as_str().unwrap_or("");
    let without_symbol = [
        "/v5/account/wallet-balance",
        "/v5/account/transaction-log",
        "/v5/account/info",
        "/v5/user/query-api",
    ];
    if !without_symbol.contains(&req.path.as_str()) && sym != SYMBOL {
        return refuse(b, req, 10001, "params error: symbol invalid");
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v5/position/set-leverage") => set_leverage(b, req, p),
        ("POST", "/v5/order/create") => orders::create(b, req, p),
        ("POST", "/v5/order/cancel") => orders::cancel(b, req, p),
        ("GET", "/v5/order/realtime") => orders::realtime(b, req),
        // Every order is still in the realtime list here.
        ("GET", "/v5/order/history") => {
            ok(json!({"category": "linear", "list": [], "nextPageCursor": ""}))
        }
        ("GET", "/v5/execution/list") => orders::executions(b, req),
        ("GET", "/v5/position/list") => positions(b),
        ("POST", "/v5/position/switch-mode") => switch_mode(b, req, p),
        ("GET", "/v5/user/query-api") => key_info(b),
        ("GET", "/v5/account/wallet-balance") => {
            if req.param("accountType") != Some("UNIFIED") {
                return refuse(b, req, 10001, "accountType only support UNIFIED");
            }
            ok(json!({"list": [{"accountType": "UNIFIED",
                "coin": [{"coin": "USDT", "walletBalance": num(b.balance)}]}]}))
        }
        ("GET", "/v5/account/transaction-log") => ledger::transaction_log(b, req),
        // docs/v5/account/account-info.
        ("GET", "/v5/account/info") => ok(json!({"unifiedMarginStatus": 5,
            "marginMode": b.margin_mode, "isMasterTrader": false, "spotHedgingStatus": "OFF",
            "updatedTime": b.server_ms().to_string()})),
        _ => refuse(b, req, 10017, "Route not found"),
    }
}

/// docs/v5/position (hedge mode: one entry per side, `side` "" when empty;
/// one-way mode: one entry, `positionIdx` 0, the side that holds a position).
fn positions(b: &Book) -> Response {
    let mark = b.mark();
    let mut sides = vec![
        (1, b.long, "Buy", b.leverage),
        (2, b.short, "Sell", b.sell_leverage),
    ];
    if !b.hedge {
        let one = if b.long.size.is_zero() && !b.short.size.is_zero() {
            sides[1]
        } else {
            sides[0]
        };
        sides = vec![one];
    }
    let hedge = b.hedge;
    let list: Vec<Value> = sides
        .iter()
        .map(|(idx, p, side, lev)| {
            let upnl = if *idx == 1 {
                (mark - p.avg) * p.size
            } else {
                (p.avg - mark) * p.size
            };
            let idx = if hedge { *idx } else { 0 };
            json!({"positionIdx": idx, "symbol": SYMBOL,
                "side": if p.size.is_zero() { "" } else { *side },
                "size": num(p.size), "avgPrice": num(p.avg), "markPrice": num(mark),
                "positionValue": num(p.size * p.avg), "unrealisedPnl": num(upnl),
                "leverage": lev.to_string()})
        })
        .collect();
    ok(json!({"category": "linear", "list": list, "nextPageCursor": ""}))
}

/// docs/v5/position/leverage: `buyLeverage` and `sellLeverage` may differ in
/// isolated margin only.
fn set_leverage(b: &mut Book, req: &Request, p: &Value) -> Response {
    let (Some(buy), Some(sell)) = (p["buyLeverage"].as_str(), p["sellLeverage"].as_str()) else {
        return refuse(b, req, 10001, "buyLeverage and sellLeverage are strings");
    };
    let (Ok(buy), Ok(sell)) = (buy.parse::<u32>(), sell.parse::<u32>()) else {
        return refuse(b, req, 10001, "bad leverage");
    };
    if buy != sell && b.margin_mode != "ISOLATED_MARGIN" {
        return refuse(
            b,
            req,
            10001,
            "buy and sell leverage differ in cross margin",
        );
    }
    if (buy, sell) == (b.leverage, b.sell_leverage) {
        return reply(110043, "Set leverage has not been modified.", json!({}));
    }
    (b.leverage, b.sell_leverage) = (buy, sell);
    ok(json!({}))
}

/// docs/v5/position/position-mode: `mode` 0 (one-way) or 3 (hedge), refused
/// while a position is open (110024) and answered 110025 when already set.
fn switch_mode(b: &mut Book, req: &Request, p: &Value) -> Response {
    let hedge = match p["mode"].as_i64() {
        Some(0) => false,
        Some(3) => true,
        _ => return refuse(b, req, 10001, "params error: mode"),
    };
    if hedge == b.hedge {
        return reply(110025, "Position mode has not been modified.", json!({}));
    }
    if !b.long.size.is_zero() || !b.short.size.is_zero() {
        let msg = "You have an existing position, so the position mode cannot be switched.";
        return reply(110024, msg, json!({}));
    }
    b.hedge = hedge;
    ok(json!({}))
}

/// docs/v5/user/apikey-info: the key's permissions (trading under
/// `ContractTrade`, withdrawal under `Wallet`), `readOnly`, `ips`, `expiredAt`.
fn key_info(b: &Book) -> Response {
    let k = &b.perms;
    let trade: Vec<&str> = if k.read_only {
        Vec::new()
    } else {
        vec!["Order", "Position"]
    };
    let mut wallet = vec!["AccountTransfer", "SubMemberTransfer"];
    if k.withdraw {
        wallet.push("Withdraw");
    }
    ok(json!({"id": "1", "note": "fake", "apiKey": b.api_key,
        "readOnly": if k.read_only { 1 } else { 0 }, "secret": "",
        "permissions": {"ContractTrade": trade, "Spot": [], "Wallet": wallet,
            "Options": [], "Derivatives": [], "CopyTrading": [], "BlockTrade": [],
            "Exchange": [], "NFT": [], "Affiliate": []},
        "ips": k.ips, "type": 1, "deadlineDay": if k.expired_at.is_empty() { 0 } else { 90 },
        "expiredAt": k.expired_at, "createdAt": "2024-01-01T00:00:00Z", "unified": 0,
        "uta": 1, "userID": 100_000, "inviterID": 0, "vipLevel": "No VIP",
        "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "", "isMaster": true,
        "parentUid": "0", "kycLevel": "LEVEL_1", "kycRegion": ""}))
}
