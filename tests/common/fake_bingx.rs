//! A local stand-in for the BingX perpetual-swap REST API (hedge mode) that checks
//! each request as BingX documents it: the `X-BX-APIKEY` header, `timestamp` within
//! `recvWindow` (at most 5000 ms) of its clock, and
//! `signature = HMAC_SHA256(secret, every other parameter sorted by key as k=v&…)`
//! — refusing with BingX's own error codes.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use super::fake_book::{Book, Dir, FakeOrder, Injected};
use super::fake_http::{hmac_hex, FakeHttp, Request, Response};

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

    pub fn inject(&self, path: &str, code: i64, msg: &str) {
        self.book().inject.push_back(Injected {
            path: path.into(),
            code,
            msg: msg.into(),
        });
    }
}

fn reply(code: i64, msg: &str, data: Value) -> Response {
    Response::json(json!({"code": code, "msg": msg, "data": data}))
}

fn refuse(b: &mut Book, req: &Request, code: i64, msg: &str) -> Response {
    b.refused.push((req.path.clone(), format!("{code} {msg}")));
    reply(code, msg, json!({}))
}

fn handle(book: &Mutex<Book>, req: &Request) -> Response {
    let mut b = book.lock().unwrap();
    b.seen.push(req.path.clone());
    if req.path == "/openApi/swap/v2/server/time" {
        return reply(0, "", json!({"serverTime": b.server_ms()}));
    }
    if let Some(r) = authenticate(&mut b, req) {
        return r;
    }
    match req.path.as_str() {
        "/openApi/swap/v2/quote/contracts" => return contracts(req),
        "/openApi/swap/v2/quote/ticker" => {
            if req.param("symbol") != Some(SYMBOL) {
                return reply(109425, "symbol not exist", json!({}));
            }
            return reply(
                0,
                "",
                json!({"symbol": SYMBOL, "lastPrice": b.price.to_string()}),
            );
        }
        _ => {}
    }
    if b.rate_limit_next > 0 {
        b.rate_limit_next -= 1;
        b.rate_limited += 1;
        return reply(100410, "rate limited, please retry later", json!({}));
    }
    if let Some(e) = b.take_injected(&req.path) {
        return reply(e.code, &e.msg, json!({}));
    }
    let mut r = private(&mut b, req);
    if b.take_lost(&format!("{} {}", req.method, req.path)) {
        r.status = 0;
    }
    r
}

fn contracts(req: &Request) -> Response {
    let all = vec![
        json!({"contractId": "100", "symbol": SYMBOL, "size": "0.0001",
        "quantityPrecision": 3, "pricePrecision": 1, "feeRate": 0.0005, "makerFeeRate": 0.0002,
        "takerFeeRate": 0.0005, "tradeMinLimit": 0, "tradeMinQuantity": 0.001,
        "tradeMinUSDT": 2, "currency": "USDT", "asset": "BTC", "status": 1,
        "apiStateOpen": "true", "apiStateClose": "true"}),
    ];
    let list: Vec<Value> = match req.param("symbol") {
        Some(s) => all.into_iter().filter(|c| c["symbol"] == s).collect(),
        None => all,
    };
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
    let needs_symbol = req.path != "/openApi/swap/v3/user/balance"
        && req.path != "/openApi/swap/v2/trade/allFillOrders";
    if needs_symbol && req.param("symbol") != Some(SYMBOL) {
        return refuse(b, req, 109400, "symbol must be like BTC-USDT");
    }
    let cid = req.param("clientOrderId").unwrap_or("").to_string();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/openApi/swap/v2/trade/leverage") => {
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
        ("POST", "/openApi/swap/v2/trade/order") => create(b, req),
        ("DELETE", "/openApi/swap/v2/trade/order") => {
            if b.cancel(&cid) {
                let o = b.order(&cid).cloned().unwrap();
                reply(0, "", json!({"order": order_json(&o)}))
            } else {
                reply(109421, "order not exist", json!({}))
            }
        }
        ("GET", "/openApi/swap/v2/trade/openOrders") => {
            let list: Vec<Value> = b
                .orders
                .iter()
                .filter(|o| o.is_open())
                .map(order_json)
                .collect();
            reply(0, "", json!({"orders": list}))
        }
        ("GET", "/openApi/swap/v2/trade/order") => match b.order(&cid) {
            Some(o) => reply(0, "", json!({"order": order_json(o)})),
            None => reply(109421, "order not exist", json!({})),
        },
        ("GET", "/openApi/swap/v2/trade/allFillOrders") => fills(b, req),
        ("GET", "/openApi/swap/v2/user/positions") => {
            let price = b.price;
            let list: Vec<Value> = [("LONG", b.long), ("SHORT", b.short)].iter()
                .filter(|(_, p)| p.size > 0.0)
                .map(|(side, p)| json!({"symbol": SYMBOL, "positionId": "1", "positionSide": side,
                    "isolated": false, "positionAmt": p.size.to_string(), "availableAmt": p.size.to_string(),
                    "avgPrice": p.avg.to_string(), "positionValue": (p.size * price).to_string(),
                    "leverage": 10, "currency": "USDT"})).collect();
            reply(0, "", json!(list))
        }
        ("GET", "/openApi/swap/v3/user/balance") => reply(
            0,
            "",
            json!([{"asset": "USDT",
            "balance": b.balance.to_string(), "equity": b.balance.to_string()}]),
        ),
        _ => refuse(b, req, 100404, "api not exist"),
    }
}

fn fills(b: &mut Book, req: &Request) -> Response {
    let (Some(unit), Some(start), Some(end)) = (
        req.param("tradingUnit"),
        req.param("startTs").and_then(|s| s.parse::<i64>().ok()),
        req.param("endTs").and_then(|s| s.parse::<i64>().ok()),
    ) else {
        return refuse(
            b,
            req,
            109400,
            "tradingUnit, startTs and endTs are required",
        );
    };
    if unit != "COIN" || end - start > 7 * 24 * 3600 * 1000 {
        return refuse(b, req, 109400, "bad tradingUnit or a range over 7 days");
    }
    let id = req.param("orderId").unwrap_or("");
    // Fills are timed by the exchange's clock; the range is the client's.
    let list: Vec<Value> = b
        .fills
        .iter()
        .filter(|f| f.order_id.to_string() == id)
        .map(|f| {
            json!({"tradeId": "1", "symbol": SYMBOL, "orderId": f.order_id.to_string(),
            "price": f.price.to_string(), "qty": f.qty.to_string(),
            "fee": (-f.fee).to_string(), "time": f.time_ms})
        })
        .collect();
    reply(0, "", json!({"fill_orders": list}))
}

fn create(b: &mut Book, req: &Request) -> Response {
    let p = |k| req.param(k).unwrap_or("");
    let (side, pos, kind, cid) = (p("side"), p("positionSide"), p("type"), p("clientOrderId"));
    if !matches!(side, "BUY" | "SELL") || !matches!(kind, "MARKET" | "LIMIT") {
        return refuse(b, req, 109400, "side or type invalid");
    }
    if !matches!(pos, "LONG" | "SHORT") || req.param("reduceOnly").is_some() {
        return refuse(
            b,
            req,
            109400,
            "hedge mode: positionSide LONG/SHORT, no reduceOnly",
        );
    }
    if cid.is_empty() || cid.len() > 40 || cid != cid.to_lowercase() {
        return refuse(b, req, 109400, "clientOrderId must be 1-40 characters");
    }
    let qty: f64 = p("quantity").parse().unwrap_or(-1.0);
    let price: Option<f64> = req.param("price").and_then(|x| x.parse().ok());
    if qty <= 0.0 || (kind == "LIMIT" && (price.is_none() || p("timeInForce") != "GTC")) {
        return refuse(b, req, 109400, "quantity, price or timeInForce invalid");
    }
    if b.order(cid).is_some() {
        b.duplicates += 1;
        return reply(101481, "The clientOrderID has already been used", json!({}));
    }
    if qty < 0.001 {
        return reply(
            101400,
            "the order quantity is below the minimum 0.001",
            json!({}),
        );
    }
    let dir = if pos == "LONG" { Dir::Long } else { Dir::Short };
    let o = FakeOrder {
        id: 0,
        client_id: cid.into(),
        buy: side == "BUY",
        market: kind == "MARKET",
        price: price.unwrap_or(b.price),
        qty,
        filled: 0.0,
        avg: 0.0,
        fee: 0.0,
        dir,
        status: "open",
        created_ms: 0,
    };
    if o.opens() && b.used_margin() + b.margin(qty, o.price) > b.balance {
        return reply(101204, "Insufficient margin", json!({}));
    }
    let o = b.add(o);
    reply(0, "", json!({"order": order_json(&o)}))
}

fn order_json(o: &FakeOrder) -> Value {
    let status = match o.status {
        "open" => "NEW",
        "partial" => "PARTIALLY_FILLED",
        "filled" => "FILLED",
        _ => "CANCELLED",
    };
    // orderId as a JSON number above 2^53, as BingX sends it; orderID as a string.
    json!({"orderId": o.id, "orderID": o.id.to_string(), "symbol": SYMBOL,
        "side": if o.buy { "BUY" } else { "SELL" },
        "positionSide": if o.dir == Dir::Long { "LONG" } else { "SHORT" },
        "type": if o.market { "MARKET" } else { "LIMIT" }, "origQty": o.qty.to_string(),
        "executedQty": o.filled.to_string(), "price": if o.market { "0".into() } else { o.price.to_string() },
        "avgPrice": o.avg.to_string(), "status": status, "time": o.created_ms,
        "updateTime": o.created_ms, "clientOrderId": o.client_id, "commission": (-o.fee).to_string()})
}
