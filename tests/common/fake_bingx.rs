//! A local stand-in for the BingX perpetual-swap REST API (hedge mode) that checks
//! each request as BingX documents it (bingx-api.github.io/docs, "USDT-M Perp
//! Futures"): the `X-BX-APIKEY` header, `timestamp` within `recvWindow` (at most
//! 5000 ms) of its clock, and
//! `signature = HMAC_SHA256(secret, every other parameter sorted by key as k=v&…)`
//! — refusing with BingX's own error codes. Orders live in fake_bingx_orders.rs,
//! the fund flow in fake_bingx_ledger.rs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tungstenite::Message;

use super::fake_accounts::{Accounts, KeyPerms, Shared};
use super::fake_bingx_ws::{gzip, BingxPrivate, ListenKeys};
use super::fake_book::{num, Book};
use super::fake_http::{hmac_hex, FakeHttp, Request, Response};
use super::fake_inject::{text, BINGX};
use super::fake_ip_limit::IpLimit;
use super::fake_private_ws::{self as private_ws, Emitted, Streams};
use super::{fake_bingx_ledger as ledger, fake_bingx_orders as orders};

pub const SYMBOL: &str = "BTC-USDT";

/// bingx.com/en/support/articles/31103871611289: all account endpoints of one IP
/// share 2,000 requests per 10 s, all market-data endpoints 500 per 10 s.
pub const ACCOUNT_IP_LIMIT: usize = 2_000;
pub const MARKET_IP_LIMIT: usize = 500;
pub const IP_WINDOW_MS: i64 = 10_000;

pub struct FakeBingx {
    pub http: FakeHttp,
    accounts: Arc<Accounts>,
    first: Shared,
    streams: Arc<Streams>,
    keys: Arc<ListenKeys>,
    limits: Arc<Limits>,
}

/// The two per-IP groups; over a limit a request is refused until the window
/// has room again (no ban is documented).
pub struct Limits {
    pub account: IpLimit,
    pub market: IpLimit,
}

struct Shares {
    accounts: Arc<Accounts>,
    keys: Arc<ListenKeys>,
    limits: Arc<Limits>,
}

impl FakeBingx {
    pub fn start(api_key: &str, secret: &str) -> FakeBingx {
        let accounts = Arc::new(Accounts::new(Book::new(api_key, secret)));
        let first = accounts.first();
        let streams = Arc::new(Streams::default());
        let keys = Arc::new(ListenKeys::default());
        let limits = Arc::new(Limits {
            account: IpLimit::new(ACCOUNT_IP_LIMIT, IP_WINDOW_MS, 0),
            market: IpLimit::new(MARKET_IP_LIMIT, IP_WINDOW_MS, 0),
        });
        let shares = Shares {
            accounts: accounts.clone(),
            keys: keys.clone(),
            limits: limits.clone(),
        };
        let handler = Arc::new(move |req: &Request| handle(&shares, req));
        let (s, k, a) = (streams.clone(), keys.clone(), accounts.clone());
        let ws = Arc::new(move |stream, target: &str| {
            let key = listen_key_of(target);
            let live = k
                .get(&key)
                .filter(|(_, exp)| *exp > super::fake_http::now_ms());
            // A refused connection (a test's fault) looks like a bad key.
            let refused = s.take_refusal();
            let bad = refused || !target.starts_with("/swap-market") || live.is_none();
            let refuse = bad.then_some((
                "401 Unauthorized",
                r#"{"code":100413,"msg":"listenKey invalid"}"#,
            ));
            let account = live.map_or(0, |(i, _)| i);
            let proto = BingxPrivate::new(k.clone(), &key, account);
            private_ws::serve(s.clone(), stream, refuse, proto, |tx| {
                if let Some(b) = a.get(account) {
                    b.lock().unwrap().outbox.listen(tx.clone());
                }
            });
        });
        let http = FakeHttp::start_with_ws(handler, Some(ws));
        FakeBingx {
            http,
            accounts,
            first,
            streams,
            keys,
            limits,
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

    /// Sets what account `i`'s key may do (`GET /openApi/v1/account/apiPermissions`).
    pub fn set_key_perms(&self, i: usize, perms: KeyPerms) {
        self.account(i).lock().unwrap().perms = perms;
    }

    /// What `GET /openApi/swap/v1/positionSide/dual` answers for account `i`
    /// (true: dual-side/hedge mode, the default). The fake's orders stay hedge-mode.
    pub fn set_dual_side(&self, i: usize, dual: bool) {
        self.account(i).lock().unwrap().hedge = dual;
    }

    pub fn url(&self) -> String {
        self.http.url()
    }

    /// The user data stream's base; the client appends `?listenKey=KEY`.
    pub fn user_ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/swap-market", self.http.port)
    }

    /// Listen keys live this long after creation or extension (60 min by default).
    pub fn set_listen_key_ttl_ms(&self, ms: i64) {
        self.keys.set_ttl_ms(ms);
    }

    /// The server's `Ping` interval on the user stream (5 s by default).
    pub fn set_ping_interval_ms(&self, ms: i64) {
        self.keys.set_ping_ms(ms);
    }

    /// Expires every listen key now: each stream gets `listenKeyExpired` and is
    /// closed; `PUT` answers 404 for them.
    pub fn expire_listen_keys(&self) {
        self.keys.expire_all();
        self.streams.expire_all();
    }

    /// The account a listen key belongs to, if it is known.
    pub fn listen_key_account(&self, key: &str) -> Option<usize> {
        self.keys.get(key).map(|(a, _)| a)
    }

    /// Every execution pushed on a user stream, with the time it was sent.
    pub fn emitted(&self) -> Vec<Emitted> {
        self.streams.emitted()
    }

    /// When the execution with this exec id was first pushed (wall-clock ms).
    pub fn emitted_at(&self, exec_id: &str) -> Option<i64> {
        self.streams.emitted_at(exec_id)
    }

    /// User stream connections open now, and ever opened.
    pub fn private_connections(&self) -> (usize, u64) {
        let total = self.streams.connections_total.load(Ordering::SeqCst);
        (self.streams.live(), total)
    }

    /// `Pong`s the clients sent for the server's `Ping`s.
    pub fn pongs(&self) -> u64 {
        self.streams.pongs()
    }

    /// Closes every user stream socket now.
    pub fn drop_private_sockets(&self) {
        self.streams.drop_all();
    }

    /// The next `n` user stream connections are refused (as with a bad key).
    pub fn refuse_auths(&self, n: usize) {
        self.streams.refuse_auths(n);
    }

    /// Sends a malformed frame on every user stream: not gzip at all
    /// (`invalid`), or gzip of an order update whose numbers are garbled.
    pub fn send_malformed(&self, garbled_number: bool) {
        let frame = if garbled_number {
            let v = json!({"e": "ORDER_TRADE_UPDATE", "E": super::fake_http::now_ms(),
                "o": {"s": SYMBOL, "c": "garbled", "i": 1, "S": "BUY", "o": "MARKET",
                "q": "0.0.1", "p": "0", "ap": "65,000.x", "x": "TRADE", "X": "FILLED",
                "z": "abc", "n": "NaN", "t": "garbled-1", "ps": "LONG"}});
            gzip(&v.to_string())
        } else {
            Message::binary(b"\x1f\x8bnot really gzip".to_vec())
        };
        self.streams.send_raw(frame);
    }

    /// While on, client `Ping`s (text or control) go unanswered.
    pub fn stop_answering_pings(&self, on: bool) {
        self.streams.set_deaf(on);
    }

    /// While on, the user streams push nothing (the book still changes).
    pub fn silence_streams(&self, on: bool) {
        self.streams.set_silent(on);
    }

    /// Every REST request received (account and market groups).
    pub fn requests_total(&self) -> u64 {
        self.limits.account.requests_total() + self.limits.market.requests_total()
    }

    /// The largest number of account-group requests seen in any 10 s window.
    pub fn requests_in_window_max(&self) -> usize {
        self.limits.account.requests_in_window_max()
    }

    /// The same for the market-data group.
    pub fn market_requests_in_window_max(&self) -> usize {
        self.limits.market.requests_in_window_max()
    }

    /// Requests refused for an IP limit (both groups).
    pub fn ip_limit_exceeded(&self) -> u64 {
        self.limits.account.exceeded() + self.limits.market.exceeded()
    }

    /// The next request to `path` (any method) fails with this BingX error.
    pub fn inject(&self, path: &str, code: i64, msg: &str) {
        self.book().push_injected(None, path, code, msg, 1);
    }

    /// The next `times` requests `METHOD path` fail with this BingX error.
    pub fn inject_on(&self, method: &str, path: &str, code: i64, msg: &str, times: usize) {
        self.book()
            .push_injected(Some(method), path, code, msg, times);
    }

    /// The next request to `path` is answered with `body` as it is (HTTP 200).
    pub fn inject_raw(&self, path: &str, body: &str) {
        self.book().raw_replies.push((path.into(), body.into()));
    }

    /// `inject_on` with the documented text of the code (fake_inject::BINGX).
    pub fn inject_code(&self, method: &str, path: &str, code: i64, times: usize) {
        self.inject_on(method, path, code, text(BINGX, code), times);
    }
}

/// The `listenKey` query parameter of a stream URL.
fn listen_key_of(target: &str) -> String {
    target
        .split_once('?')
        .and_then(|(_, q)| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "listenKey")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

/// The IP limit of the request's group first, then the listen-key endpoints,
/// then the account of the key header (the first account when there is none or
/// it is unknown, which then refuses the key as before).
fn handle(sh: &Shares, req: &Request) -> Response {
    let market = req.path.starts_with("/openApi/swap/v2/quote/")
        || req.path.starts_with("/openApi/swap/v3/quote/")
        || req.path == "/openApi/swap/v2/server/time";
    let limit = if market {
        &sh.limits.market
    } else {
        &sh.limits.account
    };
    if !limit.admit(&format!("{} {}", req.method, req.path)) {
        return Response {
            status: 429,
            headers: Vec::new(),
            body:
                json!({"code": 100410, "msg": "rate limit exceeded: too many requests from this IP",
                "data": {}})
                .to_string(),
        };
    }
    if req.path == "/openApi/user/auth/userDataStream" {
        return listen_key(sh, req);
    }
    let book = req
        .header("X-BX-APIKEY")
        .and_then(|k| sh.accounts.by_key(k))
        .unwrap_or_else(|| sh.accounts.first());
    handle_book(&book, req)
}

/// `POST` (create), `PUT` (extend) and `DELETE` a listen key: the API key
/// header names the account, no signature.
fn listen_key(sh: &Shares, req: &Request) -> Response {
    let Some(account) = req
        .header("X-BX-APIKEY")
        .and_then(|k| sh.accounts.index_of(k))
    else {
        return reply(100413, "Incorrect apiKey", json!({}));
    };
    let key = req.param("listenKey").unwrap_or("");
    let done = match req.method.as_str() {
        "POST" => return Response::json(json!({"listenKey": sh.keys.create(account)})),
        "PUT" => sh.keys.extend(key),
        "DELETE" => sh.keys.delete(key),
        _ => return reply(100404, "api not exist", json!({})),
    };
    let owned = sh.keys.get(key).is_none_or(|(a, _)| a == account);
    if done && owned {
        Response::json(json!({}))
    } else {
        Response {
            status: 404,
            headers: Vec::new(),
            body: json!({"code": 100404, "msg": "listenKey not found"}).to_string(),
        }
    }
}

pub fn reply(code: i64, msg: &str, data: Value) -> Response {
    Response::json(json!({"code": code, "msg": msg, "data": data}))
}

pub fn refuse(b: &mut Book, req: &Request, code: i64, msg: &str) -> Response {
    b.refused.push((req.path.clone(), format!("{code} {msg}")));
    reply(code, msg, json!({}))
}

fn handle_book(book: &Mutex<Book>, req: &Request) -> Response {
    let mut b = book.lock().unwrap();
    b.seen.push(req.path.clone());
    if req.path == "/openApi/swap/v2/server/time" {
        return reply(0, "", json!({"serverTime": b.server_ms()}));
    }
    let quote = req.path.starts_with("/openApi/swap/v2/quote/")
        || req.path.starts_with("/openApi/swap/v3/quote/");
    // Market data needs no key ("No API KEY signature required"); a signed call
    // to it is still checked.
    let public = quote && req.header("X-BX-APIKEY").is_none();
    if public {
        if req.param("timestamp").is_none() {
            return refuse(&mut b, req, 100001, "timestamp is required");
        }
        let call = format!("{}?{}", req.path, req.raw_query);
        b.market_calls.push(call);
    } else if let Some(r) = authenticate(&mut b, req) {
        return r;
    }
    if !quote && b.rate_limit_next > 0 {
        b.rate_limit_next -= 1;
        b.rate_limited += 1;
        return reply(100410, "rate limited, please retry later", json!({}));
    }
    if let Some(body) = b.take_raw(&req.path) {
        return Response {
            status: 200,
            headers: Vec::new(),
            body,
        };
    }
    if let Some((code, msg)) = b.take_injected(&req.method, &req.path) {
        return reply(code, &msg, json!({}));
    }
    if quote {
        return market(&b, req);
    }
    let mut r = private(&mut b, req);
    if b.take_lost(&format!("{} {}", req.method, req.path)) {
        r.status = 0;
    }
    r
}

fn market(b: &Book, req: &Request) -> Response {
    let sym = req.param("symbol");
    let sym_ok = sym.is_none_or(|s| CONTRACTS.iter().any(|c| c.0 == s));
    match req.path.as_str() {
        "/openApi/swap/v2/quote/contracts" => contracts(req),
        "/openApi/swap/v2/quote/ticker" if sym_ok => {
            let all: Vec<Value> = listed(sym)
                .map(|c| json!({"symbol": c.0, "lastPrice": last(b, c)}))
                .collect();
            one_or_all(sym, all)
        }
        // "Mark Price and Funding Rate" (the fake's index is its mark).
        "/openApi/swap/v2/quote/premiumIndex" if sym_ok => {
            let all: Vec<Value> = listed(sym)
                .map(|c| {
                    let mark = if c.0 == SYMBOL {
                        json!(num(b.mark()))
                    } else {
                        last(b, c)
                    };
                    json!({"symbol": c.0, "markPrice": mark, "indexPrice": mark,
                        "lastFundingRate": "0.0001", "nextFundingTime": b.server_ms() + 3_600_000})
                })
                .collect();
            one_or_all(sym, all)
        }
        "/openApi/swap/v3/quote/klines" if sym.is_some() && sym_ok => klines(b, req),
        "/openApi/swap/v2/quote/ticker"
        | "/openApi/swap/v2/quote/premiumIndex"
        | "/openApi/swap/v3/quote/klines" => reply(109425, "symbol not exist", json!({})),
        _ => reply(100404, "api not exist", json!({})),
    }
}

/// The fake's contracts: (symbol, quantity precision, price precision, min qty
/// (negative: absent), min USDT, status, last price). BTC-USDT trades at the
/// book's price; the offline one, the USDC-margined one and the one without a
/// minimum quantity must not reach the catalogue.
type Listing = (&'static str, i64, i64, f64, f64, i64, &'static str);

pub const CONTRACTS: [Listing; 6] = [
    ("BTC-USDT", 3, 1, 0.001, 2.0, 1, ""),
    ("ETH-USDT", 2, 2, 0.01, 2.0, 1, "3000.25"),
    ("DOGE-USDT", 0, 5, 10.0, 2.0, 1, "0.16234"),
    ("OLD-USDT", 0, 4, 1.0, 2.0, 0, "1"),
    ("BTC-USDC", 4, 1, 0.0001, 2.0, 1, "60005"),
    ("ADA-USDT", 0, 4, -1.0, 2.0, 1, "0.35"),
];

fn listed(sym: Option<&str>) -> impl Iterator<Item = &'static Listing> + '_ {
    CONTRACTS
        .iter()
        .filter(move |c| sym.is_none_or(|s| s == c.0))
}

fn last(b: &Book, c: &Listing) -> Value {
    if c.0 == SYMBOL {
        json!(num(b.price))
    } else {
        json!(c.6)
    }
}

/// One symbol asked: its object; none: the list of all.
fn one_or_all(sym: Option<&str>, mut all: Vec<Value>) -> Response {
    match (sym, all.pop()) {
        (Some(_), Some(one)) => reply(0, "", one),
        (Some(_), None) => reply(109425, "symbol not exist", json!({})),
        (None, last) => {
            all.extend(last);
            reply(0, "", json!(all))
        }
    }
}

fn contracts(req: &Request) -> Response {
    let all: Vec<Value> = listed(req.param("symbol"))
        .map(|c| {
            let (asset, currency) = c.0.split_once('-').unwrap_or((c.0, ""));
            let mut v = json!({"contractId": "100", "symbol": c.0, "size": "0.0001",
            "quantityPrecision": c.1, "pricePrecision": c.2, "feeRate": 0.0005,
            "makerFeeRate": 0.0002, "takerFeeRate": 0.0005, "tradeMinLimit": 0,
            "tradeMinQuantity": c.3, "tradeMinUSDT": c.4, "currency": currency,
            "asset": asset, "status": c.5,
            "apiStateOpen": "true", "apiStateClose": "true"});
            if c.3 < 0.0 {
                v.as_object_mut().unwrap().remove("tradeMinQuantity");
            }
            v
        })
        .collect();
    reply(0, "", json!(all))
}

/// Kline/Candlestick Data: objects, newest first here (the adapter sorts).
fn klines(b: &Book, req: &Request) -> Response {
    let width: i64 = match req.param("interval").unwrap_or("") {
        "1m" => 60_000,
        "5m" => 300_000,
        "15m" => 900_000,
        "1h" => 3_600_000,
        "4h" => 14_400_000,
        "1d" => 86_400_000,
        _ => return reply(109400, "interval invalid", json!({})),
    };
    let limit: i64 = req
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(500);
    if !(1..=1440).contains(&limit) {
        return reply(109400, "limit invalid", json!({}));
    }
    let now = b.server_ms();
    let newest = now - now.rem_euclid(width);
    let list: Vec<Value> = (0..limit)
        .map(|k| {
            let close = 1000 + (limit - 1 - k);
            json!({"open": (close - 1).to_string(), "close": close.to_string(),
                "high": (close + 2).to_string(), "low": (close - 3).to_string(),
                "volume": "12.5", "time": newest - k * width})
        })
        .collect();
    reply(0, "", json!(list))
}

/// BingX's checks: key, signature present, timestamp within the window, signature.
fn authenticate(b: &mut Book, req: &Request) -> Option<Response> {
    if req.header("X-BX-APIKEY") != Some(b.api_key.as_str()) {
        return Some(refuse(b, req, 100413, "Incorrect apiKey"));
    }
    let Some(sig) = req.param("signature") else {
        return Some(refuse(b, req, 100412, "Null signature"));
    };
    let ts: i64 = req
        .param("timestamp")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let window: i64 = req
        .param("recvWindow")
        .and_then(|t| t.parse().ok())
        .unwrap_or(5000);
    if window > 5000 || (b.server_ms() - ts).abs() > window {
        return Some(refuse(
            b,
            req,
            100421,
            "Null timestamp or timestamp mismatch",
        ));
    }
    let mut rest: Vec<&(String, String)> =
        req.query.iter().filter(|(k, _)| k != "signature").collect();
    rest.sort_by(|x, y| x.0.cmp(&y.0));
    let signing: Vec<String> = rest.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if hmac_hex(&b.secret, &signing.join("&")) != sig {
        return Some(refuse(b, req, 100001, "Signature verification failed"));
    }
    None
}

fn private(b: &mut Book, req: &Request) -> Response {
    let without_symbol = [
        "/openApi/v1/account/apiPermissions",
        "/openApi/swap/v1/positionSide/dual",
        "/openApi/swap/v3/user/balance",
        "/openApi/swap/v2/trade/allFillOrders",
        "/openApi/swap/v2/user/income",
    ];
    if !without_symbol.contains(&req.path.as_str()) && req.param("symbol") != Some(SYMBOL) {
        return refuse(b, req, 109400, "symbol must be like BTC-USDT");
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/openApi/swap/v2/trade/leverage") => set_leverage(b, req),
        ("POST", "/openApi/swap/v2/trade/order") => orders::create(b, req),
        ("DELETE", "/openApi/swap/v2/trade/order") => orders::cancel(b, req),
        ("GET", "/openApi/swap/v2/trade/openOrders") => orders::open_orders(b, req),
        ("GET", "/openApi/swap/v2/trade/order") => orders::query(b, req),
        ("GET", "/openApi/swap/v2/trade/allFillOrders") => orders::fills(b, req),
        ("GET", "/openApi/swap/v2/trade/forceOrders") => orders::force_orders(b, req),
        ("GET", "/openApi/swap/v2/user/positions") => positions(b),
        ("GET", "/openApi/v1/account/apiPermissions") => key_perms(b),
        ("GET", "/openApi/swap/v1/positionSide/dual") => dual_side(b),
        ("POST", "/openApi/swap/v1/positionSide/dual") => {
            match req.param("dualSidePosition") {
                Some("true") => b.hedge = true,
                Some("false") => b.hedge = false,
                _ => return refuse(b, req, 109400, "dualSidePosition must be true or false"),
            }
            dual_side(b)
        }
        ("GET", "/openApi/swap/v2/user/income") => ledger::income(b, req),
        ("GET", "/openApi/swap/v3/user/balance") => reply(
            0,
            "",
            json!([{"asset": "USDT",
            "balance": num(b.balance), "equity": num(b.balance)}]),
        ),
        _ => refuse(b, req, 100404, "api not exist"),
    }
}

fn set_leverage(b: &mut Book, req: &Request) -> Response {
    let side_ok = matches!(req.param("side"), Some("LONG" | "SHORT"));
    match req.param("leverage").and_then(|l| l.parse::<u32>().ok()) {
        Some(l) if side_ok => {
            b.leverage = l;
            let side = req.param("side").unwrap_or_default().to_string();
            b.leverage_sides.push(side);
            reply(0, "", json!({"leverage": l, "symbol": SYMBOL}))
        }
        _ => refuse(b, req, 109400, "side must be LONG or SHORT in hedge mode"),
    }
}

/// "Query position data": the sides that hold a position.
fn positions(b: &Book) -> Response {
    let mark = b.mark();
    let list: Vec<Value> = [("LONG", b.long), ("SHORT", b.short)]
        .iter()
        .filter(|(_, p)| !p.size.is_zero())
        .map(|(side, p)| {
            let upnl = if *side == "LONG" {
                (mark - p.avg) * p.size
            } else {
                (p.avg - mark) * p.size
            };
            json!({"symbol": SYMBOL, "positionId": "1", "positionSide": side,
                "isolated": false, "positionAmt": num(p.size), "availableAmt": num(p.size),
                "avgPrice": num(p.avg), "positionValue": num(p.size * mark),
                "markPrice": num(mark), "unrealizedProfit": num(upnl),
                "leverage": 10, "currency": "USDT"})
        })
        .collect();
    reply(0, "", json!(list))
}

/// "Query API Key Permissions": `permissions` as numbers (1 spot trading, 2
/// read, 3 perpetual futures trading, 4 universal transfer, 5 withdraw), the IPs
/// the key is bound to (none: empty).
fn key_perms(b: &Book) -> Response {
    let k = &b.perms;
    let mut perms = vec![2];
    if !k.read_only {
        perms.push(3);
    }
    if k.withdraw {
        perms.push(5);
    }
    let ips: Vec<&String> = k.ips.iter().filter(|ip| *ip != "*").collect();
    reply(
        0,
        "",
        json!({"apiKey": b.api_key, "permissions": perms, "ipAddresses": ips, "note": "fake"}),
    )
}

/// "Query position mode": `dualSidePosition` "true" (hedge) or "false".
fn dual_side(b: &Book) -> Response {
    reply(0, "", json!({"dualSidePosition": b.hedge.to_string()}))
}
