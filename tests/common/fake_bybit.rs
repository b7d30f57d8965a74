//! A local stand-in for the Bybit v5 REST API (linear, hedge mode) that checks each
//! request as Bybit documents it: the `X-BAPI-*` headers, the signature
//! `HMAC_SHA256(secret, timestamp + key + recvWindow + queryString|jsonBody)`, the
//! timestamp window `server - recvWindow <= ts < server + 1000`, and each
//! endpoint's required parameters — refusing with Bybit's own error codes.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use super::fake_book::{Book, Dir, FakeOrder, Injected};
use super::fake_http::{hmac_hex, now_ms, FakeHttp, Request, Response};

pub const SYMBOL: &str = "BTCUSDT";

pub struct FakeBybit {
    pub http: FakeHttp,
    book: Arc<Mutex<Book>>,
}

impl FakeBybit {
    pub fn start(api_key: &str, secret: &str) -> FakeBybit {
        let book = Arc::new(Mutex::new(Book::new(api_key, secret)));
        let b = book.clone();
        let http = FakeHttp::start(Arc::new(move |req: &Request| handle(&b, req)));
        FakeBybit { http, book }
    }

    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap()
    }

    pub fn url(&self) -> String {
        self.http.url()
    }

    /// The next request to `path` fails with this Bybit error.
    pub fn inject(&self, path: &str, code: i64, msg: &str) {
        self.book().inject.push_back(Injected {
            path: path.into(),
            code,
            msg: msg.into(),
        });
    }
}

fn reply(code: i64, msg: &str, result: Value) -> Response {
    Response::json(json!({"retCode": code, "retMsg": msg, "result": result,
        "retExtInfo": {}, "time": now_ms()}))
}

fn refuse(b: &mut Book, req: &Request, code: i64, msg: &str) -> Response {
    b.refused.push((req.path.clone(), format!("{code} {msg}")));
    reply(code, msg, json!({}))
}

fn handle(book: &Mutex<Book>, req: &Request) -> Response {
    let mut b = book.lock().unwrap();
    b.seen.push(req.path.clone());
    let public = req.path.starts_with("/v5/market/");
    if public {
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
        let mut r = reply(10006, "Too many visits!", json!({}));
        let reset = b.server_ms() + 300;
        r.headers = limit_headers(0, reset);
        return r;
    }
    if let Some(e) = b.take_injected(&req.path) {
        return reply(e.code, &e.msg, json!({}));
    }
    if params["category"] != "linear" && req.path != "/v5/account/wallet-balance" {
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
            reply(
                0,
                "OK",
                json!({"timeSecond": (ms / 1000).to_string(),
                "timeNano": (ms as i128 * 1_000_000).to_string()}),
            )
        }
        "/v5/market/instruments-info" if req.param("category") == Some("linear") => {
            let list = if sym == SYMBOL {
                vec![json!({"symbol": SYMBOL, "status": "Trading",
                    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
                    "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001",
                        "qtyStep": "0.001"}})]
            } else {
                vec![]
            };
            reply(
                0,
                "OK",
                json!({"category": "linear", "list": list, "nextPageCursor": ""}),
            )
        }
        "/v5/market/tickers" if req.param("category") == Some("linear") && sym == SYMBOL => reply(
            0,
            "OK",
            json!({"category": "linear", "list": [{"symbol": SYMBOL,
                "lastPrice": b.price.to_string(), "markPrice": b.price.to_string()}]}),
        ),
        "/v5/market/tickers" => reply(10001, "params error: symbol invalid", json!({})),
        _ => reply(10001, "params error", json!({})),
    }
}

fn private(b: &mut Book, req: &Request, p: &Value) -> Response {
    let sym = p["symbol"].as_str().unwrap_or("");
    let needs_symbol = req.path != "/v5/account/wallet-balance";
    if needs_symbol && sym != SYMBOL {
        return refuse(b, req, 10001, "params error: symbol invalid");
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v5/position/set-leverage") => set_leverage(b, req, p),
        ("POST", "/v5/order/create") => create(b, req, p),
        ("POST", "/v5/order/cancel") => {
            let link = p["orderLinkId"].as_str().unwrap_or("");
            let Some(o) = b.order(link).cloned() else {
                return reply(110001, "Order does not exist", json!({}));
            };
            if !b.cancel(link) {
                return reply(110001, "Order does not exist", json!({}));
            }
            reply(
                0,
                "OK",
                json!({"orderId": o.id.to_string(), "orderLinkId": link}),
            )
        }
        ("GET", "/v5/order/realtime") => realtime(b, req),
        ("GET", "/v5/order/history") => {
            // Every order is still in the realtime list here.
            reply(
                0,
                "OK",
                json!({"category": "linear", "list": [], "nextPageCursor": ""}),
            )
        }
        ("GET", "/v5/execution/list") => {
            let link = req.param("orderLinkId").unwrap_or("");
            let list: Vec<Value> = b
                .fills
                .iter()
                .filter(|f| f.client_id == link)
                .map(|f| {
                    json!({
                "symbol": SYMBOL, "orderId": f.order_id.to_string(), "orderLinkId": f.client_id,
                "execPrice": f.price.to_string(), "execQty": f.qty.to_string(),
                "execFee": f.fee.to_string(), "execTime": f.time_ms.to_string()})
                })
                .collect();
            reply(
                0,
                "OK",
                json!({"category": "linear", "list": list, "nextPageCursor": ""}),
            )
        }
        ("GET", "/v5/position/list") => {
            let mark = b.price;
            let list: Vec<Value> = [(1, b.long, "Buy"), (2, b.short, "Sell")]
                .iter()
                .map(|(idx, p, side)| {
                    json!({
                "positionIdx": idx, "symbol": SYMBOL, "side": if p.size > 0.0 { *side } else { "" },
                "size": p.size.to_string(), "avgPrice": p.avg.to_string(),
                "markPrice": mark.to_string(), "leverage": "10"})
                })
                .collect();
            reply(
                0,
                "OK",
                json!({"category": "linear", "list": list, "nextPageCursor": ""}),
            )
        }
        ("GET", "/v5/account/wallet-balance") => {
            if req.param("accountType") != Some("UNIFIED") {
                return refuse(b, req, 10001, "accountType only support UNIFIED");
            }
            reply(
                0,
                "OK",
                json!({"list": [{"accountType": "UNIFIED",
                "coin": [{"coin": "USDT", "walletBalance": b.balance.to_string()}]}]}),
            )
        }
        _ => refuse(b, req, 10017, "Route not found"),
    }
}

fn set_leverage(b: &mut Book, req: &Request, p: &Value) -> Response {
    let (Some(buy), Some(sell)) = (p["buyLeverage"].as_str(), p["sellLeverage"].as_str()) else {
        return refuse(b, req, 10001, "buyLeverage and sellLeverage are strings");
    };
    let Ok(lev) = buy.parse::<u32>() else {
        return refuse(b, req, 10001, "bad leverage");
    };
    if buy != sell {
        return refuse(b, req, 10001, "buy and sell leverage differ");
    }
    if lev == b.leverage {
        return reply(110043, "Set leverage has not been modified.", json!({}));
    }
    b.leverage = lev;
    reply(0, "OK", json!({}))
}

fn multiple(x: f64, unit: f64) -> bool {
    ((x / unit) - (x / unit).round()).abs() < 1e-6
}

fn create(b: &mut Book, req: &Request, p: &Value) -> Response {
    let link = p["orderLinkId"].as_str().unwrap_or("");
    let ok_link = !link.is_empty()
        && link.len() <= 36
        && link
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let side = p["side"].as_str().unwrap_or("");
    let kind = p["orderType"].as_str().unwrap_or("");
    let idx = p["positionIdx"].as_i64().unwrap_or(0);
    let qty: f64 = p["qty"]
        .as_str()
        .and_then(|q| q.parse().ok())
        .unwrap_or(-1.0);
    let price: Option<f64> = p["price"].as_str().and_then(|q| q.parse().ok());
    if !ok_link || !matches!(side, "Buy" | "Sell") || !matches!(kind, "Market" | "Limit") {
        return refuse(
            b,
            req,
            10001,
            "params error: orderLinkId, side or orderType",
        );
    }
    if idx != 1 && idx != 2 {
        return refuse(b, req, 10001, "position idx not match position mode");
    }
    if !p["reduceOnly"].is_boolean() || qty <= 0.0 || !multiple(qty, 0.001) {
        return refuse(b, req, 10001, "params error: qty or reduceOnly");
    }
    if kind == "Limit" && !price.is_some_and(|x| x > 0.0 && multiple(x, 0.1)) {
        return refuse(b, req, 10001, "params error: price");
    }
    if b.order(link).is_some() {
        b.duplicates += 1;
        return reply(110072, "OrderLinkedID is duplicate", json!({}));
    }
    if qty < 0.001 {
        return reply(170136, "Order quantity lower than the minimum.", json!({}));
    }
    let dir = if idx == 1 { Dir::Long } else { Dir::Short };
    let mut o = FakeOrder {
        id: 0,
        client_id: link.into(),
        buy: side == "Buy",
        market: kind == "Market",
        price: price.unwrap_or(b.price),
        qty,
        filled: 0.0,
        avg: 0.0,
        fee: 0.0,
        dir,
        status: "open",
        created_ms: 0,
    };
    let reduce = p["reduceOnly"] == true;
    if reduce == o.opens() {
        return refuse(
            b,
            req,
            10001,
            "reduceOnly does not match side and positionIdx",
        );
    }
    if !reduce && b.used_margin() + b.margin(qty, o.price) > b.balance {
        return reply(110007, "Available balance is insufficient", json!({}));
    }
    o = b.add(o);
    reply(
        0,
        "OK",
        json!({"orderId": o.id.to_string(), "orderLinkId": o.client_id}),
    )
}

fn order_json(o: &FakeOrder) -> Value {
    let status = match o.status {
        "open" => "New",
        "partial" => "PartiallyFilled",
        "filled" => "Filled",
        _ => "Cancelled",
    };
    json!({"orderId": o.id.to_string(), "orderLinkId": o.client_id, "symbol": SYMBOL,
        "price": if o.market { "0".to_string() } else { o.price.to_string() },
        "qty": o.qty.to_string(), "side": if o.buy { "Buy" } else { "Sell" },
        "positionIdx": if o.dir == Dir::Long { 1 } else { 2 }, "orderStatus": status,
        "avgPrice": if o.filled > 0.0 { o.avg.to_string() } else { String::new() },
        "leavesQty": (o.qty - o.filled).to_string(), "cumExecQty": o.filled.to_string(),
        "cumExecFee": o.fee.to_string(), "orderType": if o.market { "Market" } else { "Limit" },
        "timeInForce": if o.market { "IOC" } else { "GTC" }, "reduceOnly": !o.opens(),
        "createdTime": o.created_ms.to_string(), "updatedTime": o.created_ms.to_string()})
}

fn realtime(b: &Book, req: &Request) -> Response {
    let list: Vec<Value> = match req.param("orderLinkId") {
        // By id: any state (the recent closed orders are kept too).
        Some(link) => b.order(link).map(order_json).into_iter().collect(),
        None if req.param("openOnly").unwrap_or("0") == "0" => b
            .orders
            .iter()
            .filter(|o| o.is_open())
            .map(order_json)
            .collect(),
        None => b
            .orders
            .iter()
            .filter(|o| !o.is_open())
            .map(order_json)
            .collect(),
    };
    reply(
        0,
        "OK",
        json!({"category": "linear", "list": list, "nextPageCursor": ""}),
    )
}
