//! A local stand-in for the BingX perpetual-swap REST API (hedge mode) that checks
//! each request as BingX documents it (bingx-api.github.io/docs, "USDT-M Perp
//! Futures"): the `X-BX-APIKEY` header, `timestamp` within `recvWindow` (at most
//! 5000 ms) of its clock, and
//! `signature = HMAC_SHA256(secret, every other parameter sorted by key as k=v&…)`
//! — refusing with BingX's own error codes. Orders live in fake_bingx_orders.rs,
//! the fund flow in fake_bingx_ledger.rs.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use super::fake_book::{num, Book};
use super::fake_http::{hmac_hex, FakeHttp, Request, Response};
use super::fake_inject::{text, BINGX};
use super::{fake_bingx_ledger as ledger, fake_bingx_orders as orders};

pub const SYMBOL: &str = "BTC-USDT";

pub struct FakeBingx {
    pub http: FakeHttp,
    book: Arc<Mutex<Book>>,
}

impl FakeBingx {
    pub fn start(api_key: &str, secret: &str) -> FakeBingx {
        let book = Arc::new(Mutex::new(Book::new(api_key, secret)));
        let b = book.clone();
        let http = FakeHttp::start(Arc::new(move |req: &Request| handle(&b, req)));
        FakeBingx { http, book }
    }

    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap()
    }

    pub fn url(&self) -> String {
        self.http.url()
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

pub fn reply(code: i64, msg: &str, data: Value) -> Response {
    Response::json(json!({"code": code, "msg": msg, "data": data}))
}

pub fn refuse(b: &mut Book, req: &Request, code: i64, msg: &str) -> Response {
    b.refused.push((req.path.clone(), format!("{code} {msg}")));
    reply(code, msg, json!({}))
}

fn handle(book: &Mutex<Book>, req: &Request) -> Response {
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
