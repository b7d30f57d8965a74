//! The fake exchanges themselves (tests/common/fake_*.rs), driven over HTTP with
//! requests signed here as each exchange documents: stop orders placed, listed,
//! triggered by a mark move and filled (or cancelled when there is nothing left to
//! close), funding pages, injected errors, a manual close and a liquidation — so
//! that a regression in a fake fails here, not as a puzzle in an adapter test.

mod common;

use common::fake_bingx::FakeBingx;
use common::fake_book::Dir;
use common::fake_bybit::FakeBybit;
use common::fake_http::hmac_hex;
use common::request;
use rust_decimal::dec;
use serde_json::{json, Value};

const KEY: &str = "fake-test-key";
const SECRET: &str = "fake-test-secret";
const HOUR: i64 = 3_600_000;

/// No number in a body carries binary-float noise (`0.009000000000000001`).
fn assert_exact(body: &str) {
    for noise in ["0000000", "9999999"] {
        let bad = body.match_indices(noise).any(|(i, _)| {
            let before = &body[..i];
            let digits = before.trim_end_matches(|c: char| c.is_ascii_digit());
            digits.ends_with('.')
        });
        assert!(!bad, "float noise in {body}");
    }
}

struct Bybit(FakeBybit);

impl Bybit {
    fn start() -> Bybit {
        Bybit(FakeBybit::start(KEY, SECRET))
    }

    fn send(&self, method: &str, path: &str, query: &str, body: &str) -> (Value, common::Resp) {
        let ts = self.0.book().server_ms().to_string();
        let payload = if method == "GET" { query } else { body };
        let sign = hmac_hex(SECRET, &format!("{ts}{KEY}5000{payload}"));
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let raw = format!(
            "{method} {target} HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\n\
             X-BAPI-API-KEY: {KEY}\r\nX-BAPI-TIMESTAMP: {ts}\r\nX-BAPI-RECV-WINDOW: 5000\r\n\
             X-BAPI-SIGN: {sign}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = request(self.0.http.port, raw.as_bytes());
        assert_exact(&r.text());
        (r.json(), r)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let mut full = json!({"category": "linear", "symbol": "BTCUSDT"});
        full.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        self.send("POST", path, "", &full.to_string()).0
    }

    fn get(&self, path: &str, query: &str) -> Value {
        self.send("GET", path, query, "").0
    }

    fn order(&self, link: &str) -> Value {
        let q = format!("category=linear&symbol=BTCUSDT&orderLinkId={link}");
        let v = self.get("/v5/order/realtime", &q);
        v["result"]["list"][0].clone()
    }

    fn open_long(&self, link: &str, qty: &str) {
        let v = self.post(
            "/v5/order/create",
            json!({"side": "Buy", "orderType": "Market", "qty": qty, "positionIdx": 1,
                "reduceOnly": false, "orderLinkId": link}),
        );
        assert_eq!(v["retCode"], 0, "{v}");
    }

    /// A stop-loss of the long side as the trading core places it.
    fn stop(&self, link: &str, qty: &str, trigger: &str, direction: i64) -> Value {
        self.post(
            "/v5/order/create",
            json!({"side": "Sell", "orderType": "Market", "qty": qty, "positionIdx": 1,
                "triggerPrice": trigger, "triggerDirection": direction,
                "triggerBy": "MarkPrice", "reduceOnly": true, "closeOnTrigger": true,
                "orderLinkId": link}),
        )
    }
}

#[test]
fn bybit_stop_is_listed_triggered_by_the_mark_and_filled() {
    let x = Bybit::start();
    x.open_long("e-1", "0.003");
    // Rising to a trigger below the mark: Bybit's direction error.
    let v = x.stop("sl-0", "0.003", "64000", 1);
    assert_eq!(v["retCode"], 110092, "{v}");
    assert_eq!(x.stop("sl-1", "0.003", "64000", 2)["retCode"], 0);

    let q = "category=linear&symbol=BTCUSDT&openOnly=0&orderFilter=StopOrder";
    let list = x.get("/v5/order/realtime", q)["result"]["list"].clone();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let o = &list[0];
    assert_eq!(
        (&o["orderStatus"], &o["stopOrderType"], &o["triggerPrice"]),
        (&json!("Untriggered"), &json!("Stop"), &json!("64000"))
    );
    assert_eq!(
        (&o["triggerDirection"], &o["triggerBy"]),
        (&json!(2), &json!("MarkPrice"))
    );
    assert_eq!(
        (&o["reduceOnly"], &o["closeOnTrigger"]),
        (&json!(true), &json!(true))
    );
    let q = "category=linear&symbol=BTCUSDT&orderFilter=Order";
    assert_eq!(x.get("/v5/order/realtime", q)["result"]["list"], json!([]));

    // The last price crossing does not trigger a stop that watches the mark.
    x.0.book().set_mark(dec!(64500));
    x.0.book().set_price(dec!(63900));
    assert_eq!(x.order("sl-1")["orderStatus"], "Untriggered");
    x.0.book().set_mark(dec!(63950));
    let o = x.order("sl-1");
    assert_eq!(
        (&o["orderStatus"], &o["avgPrice"]),
        (&json!("Filled"), &json!("63950"))
    );
    // 0.003 × 63950 × 0.055 %, exactly.
    assert_eq!(
        (&o["cumExecQty"], &o["cumExecFee"]),
        (&json!("0.003"), &json!("0.1055175"))
    );
    let q = "category=linear&symbol=BTCUSDT&orderLinkId=sl-1";
    let fills = x.get("/v5/execution/list", q)["result"]["list"].clone();
    assert_eq!(
        (&fills[0]["execPrice"], &fills[0]["execFee"]),
        (&json!("63950"), &json!("0.1055175"))
    );
    let pos = x.get("/v5/position/list", "category=linear&symbol=BTCUSDT");
    assert_eq!(pos["result"]["list"][0]["size"], "0");
    assert!(x.0.book().long.size.is_zero());
}

#[test]
fn bybit_stop_cancel_close_all_and_nothing_left_to_close() {
    let x = Bybit::start();
    // A reduce-only order with no position: truncated to zero.
    assert_eq!(x.stop("sl-0", "0.001", "64000", 2)["retCode"], 110017);
    x.open_long("e-1", "0.002");
    assert_eq!(x.stop("sl-1", "0.002", "64000", 2)["retCode"], 0);
    let v = x.post("/v5/order/cancel", json!({"orderLinkId": "sl-1"}));
    assert_eq!(v["retCode"], 0, "{v}");
    assert_eq!(x.order("sl-1")["orderStatus"], "Deactivated");
    assert_eq!(
        x.post("/v5/order/cancel", json!({"orderLinkId": "sl-1"}))["retCode"],
        110001
    );

    // qty "0" with reduceOnly and closeOnTrigger closes whatever is held.
    assert_eq!(x.stop("sl-2", "0", "64000", 2)["retCode"], 0);
    x.open_long("e-2", "0.001");
    x.0.book().set_price(dec!(63999.9));
    let o = x.order("sl-2");
    assert_eq!(
        (&o["orderStatus"], &o["cumExecQty"]),
        (&json!("Filled"), &json!("0.003"))
    );

    // Closed on the site before the mark falls: the stop finds nothing to close.
    x.0.book().set_price(dec!(65000));
    x.open_long("e-3", "0.001");
    assert_eq!(x.stop("sl-3", "0.001", "64000", 2)["retCode"], 0);
    let manual = x.0.book().close_position(Dir::Long).unwrap();
    let fills = x.0.book().fills.len();
    x.0.book().set_mark(dec!(63000));
    let o = x.order("sl-3");
    assert_eq!(
        (&o["orderStatus"], &o["cancelType"]),
        (&json!("Cancelled"), &json!("CancelByReduceOnly"))
    );
    let b = x.0.book();
    assert_eq!(b.fills.len(), fills, "nothing filled");
    assert!(b.long.size.is_zero() && b.short.size.is_zero());
    assert_eq!(b.order_by_id(manual).unwrap().status, "filled");
}

#[test]
fn bybit_reduce_only_fills_at_most_the_position() {
    let x = Bybit::start();
    x.open_long("e-1", "0.002");
    let v = x.post(
        "/v5/order/create",
        json!({"side": "Sell", "orderType": "Limit", "qty": "0.003", "price": "66000",
            "timeInForce": "GTC", "positionIdx": 1, "reduceOnly": true, "orderLinkId": "tp-1"}),
    );
    assert_eq!(v["retCode"], 0, "{v}");
    x.0.book().set_price(dec!(66000));
    let o = x.order("tp-1");
    assert_eq!(
        (&o["orderStatus"], &o["qty"], &o["cumExecQty"]),
        (&json!("Filled"), &json!("0.002"), &json!("0.002"))
    );
    let b = x.0.book();
    assert!(
        b.long.size.is_zero() && b.short.size.is_zero(),
        "{:?} {:?}",
        b.long,
        b.short
    );
}

#[test]
fn bybit_liquidation_cancels_the_side_and_takes_the_position_over() {
    let x = Bybit::start();
    x.open_long("e-1", "0.002");
    assert_eq!(x.stop("sl-1", "0.002", "60000", 2)["retCode"], 0);
    x.0.book().set_mark(dec!(61000));
    let id = x.0.book().liquidate(Dir::Long).unwrap();
    let o = x.order("sl-1");
    assert_eq!(
        (&o["orderStatus"], &o["cancelType"]),
        (&json!("Cancelled"), &json!("CancelAllBeforeLiq"))
    );
    let q = format!("category=linear&symbol=BTCUSDT&orderId={id}");
    let liq = x.get("/v5/order/realtime", &q)["result"]["list"][0].clone();
    assert_eq!(
        (&liq["createType"], &liq["avgPrice"]),
        (&json!("CreateByTakeOver_PassThrough"), &json!("61000"))
    );
    let fills = x.get("/v5/execution/list", &q)["result"]["list"].clone();
    assert_eq!(fills[0]["execType"], "BustTrade");
    assert!(x.0.book().long.size.is_zero());
}

#[test]
fn bybit_funding_is_paged_newest_first_within_seven_days() {
    let x = Bybit::start();
    x.open_long("e-1", "0.003");
    let now = x.0.book().server_ms();
    for (i, amount) in [dec!(-0.5), dec!(0.25), dec!(-0.125)]
        .into_iter()
        .enumerate()
    {
        x.0.book().add_funding(amount, now - (3 - i as i64) * HOUR);
    }
    let base = format!(
        "accountType=UNIFIED&category=linear&type=SETTLEMENT&startTime={}&endTime={now}&limit=2",
        now - 6 * HOUR
    );
    let first = x.get("/v5/account/transaction-log", &base)["result"].clone();
    let rows = first["list"].as_array().unwrap().clone();
    let got: Vec<&Value> = rows.iter().map(|r| &r["funding"]).collect();
    assert_eq!(got, [&json!("-0.125"), &json!("0.25")]);
    let r = &rows[0];
    assert_eq!(
        (&r["type"], &r["side"], &r["size"]),
        (&json!("SETTLEMENT"), &json!("Buy"), &json!("0.003"))
    );
    assert_eq!(
        (&r["change"], &r["fee"], &r["cashFlow"]),
        (&json!("-0.125"), &json!("0"), &json!("0"))
    );
    assert_eq!(r["transactionTime"], (now - HOUR).to_string());
    let cursor = first["nextPageCursor"].as_str().unwrap().to_string();
    assert!(!cursor.is_empty());
    let next = x.get(
        "/v5/account/transaction-log",
        &format!("{base}&cursor={cursor}"),
    )["result"]
        .clone();
    assert_eq!(next["list"][0]["funding"], "-0.5");
    assert_eq!(next["nextPageCursor"], "");
    // The balance moved by what was received and paid.
    let bal = x.get("/v5/account/wallet-balance", "accountType=UNIFIED");
    let fee = dec!(0.003) * dec!(65000) * dec!(0.00055);
    let want = dec!(10000) - fee - dec!(0.375);
    assert_eq!(
        bal["result"]["list"][0]["coin"][0]["walletBalance"],
        want.normalize().to_string()
    );
    // More than seven days between startTime and endTime is refused.
    let wide = format!(
        "accountType=UNIFIED&category=linear&startTime={}&endTime={now}",
        now - 8 * 24 * HOUR
    );
    assert_eq!(
        x.get("/v5/account/transaction-log", &wide)["retCode"],
        10001
    );
}

#[test]
fn bybit_injected_errors_by_method_and_count() {
    let x = Bybit::start();
    x.0.inject_code("POST", "/v5/order/create", 110079, 2);
    x.0.inject_code("GET", "/v5/order/create", 10016, 1);
    for _ in 0..2 {
        let v = x.post(
            "/v5/order/create",
            json!({"side": "Buy", "orderType": "Market", "qty": "0.001", "positionIdx": 1,
                "reduceOnly": false, "orderLinkId": "e-1"}),
        );
        assert_eq!(v["retCode"], 110079, "{v}");
    }
    x.open_long("e-1", "0.001");
    x.0.inject_code("GET", "/v5/position/list", 10006, 1);
    let (v, r) = x.send(
        "GET",
        "/v5/position/list",
        "category=linear&symbol=BTCUSDT",
        "",
    );
    assert_eq!(v["retCode"], 10006);
    assert_eq!(r.header("X-Bapi-Limit-Status"), Some("0"));
    assert_eq!(
        x.get("/v5/position/list", "category=linear&symbol=BTCUSDT")["retCode"],
        0
    );
}

struct Bingx(FakeBingx);

impl Bingx {
    fn start() -> Bingx {
        Bingx(FakeBingx::start(KEY, SECRET))
    }

    /// Parameters sorted by key and signed as `k=v&…`, `signature` appended.
    fn send(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Value {
        let ts = self.0.book().server_ms().to_string();
        let mut all: Vec<(&str, &str)> = params.to_vec();
        all.push(("timestamp", &ts));
        all.sort();
        let query: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query = query.join("&");
        let sign = hmac_hex(SECRET, &query);
        let raw = format!(
            "{method} {path}?{query}&signature={sign} HTTP/1.1\r\nHost: fake\r\n\
             X-BX-APIKEY: {KEY}\r\nContent-Length: 0\r\n\r\n"
        );
        let r = request(self.0.http.port, raw.as_bytes());
        assert_exact(&r.text());
        r.json()
    }

    fn order(&self, params: &[(&str, &str)]) -> Value {
        let mut p = vec![("symbol", "BTC-USDT")];
        p.extend_from_slice(params);
        self.send("POST", "/openApi/swap/v2/trade/order", &p)
    }

    fn stop(&self, stop: &str, extra: &[(&str, &str)]) -> Value {
        let mut p = vec![
            ("side", "SELL"),
            ("positionSide", "LONG"),
            ("type", "STOP_MARKET"),
            ("stopPrice", stop),
            ("workingType", "MARK_PRICE"),
        ];
        p.extend_from_slice(extra);
        self.order(&p)
    }

    fn query(&self, id: &str) -> Value {
        let p = [("symbol", "BTC-USDT"), ("orderId", id)];
        self.send("GET", "/openApi/swap/v2/trade/order", &p)["data"]["order"].clone()
    }

    fn open_long(&self, cid: &str, qty: &str) {
        let v = self.order(&[
            ("side", "BUY"),
            ("positionSide", "LONG"),
            ("type", "MARKET"),
            ("quantity", qty),
            ("clientOrderId", cid),
        ]);
        assert_eq!(v["code"], 0, "{v}");
    }
}

#[test]
fn bingx_stop_market_is_listed_triggered_by_the_mark_and_filled() {
    let x = Bingx::start();
    // Nothing to close yet.
    assert_eq!(x.stop("64000", &[("quantity", "0.003")])["code"], 101205);
    x.open_long("e1", "0.003");
    assert_eq!(x.stop("66000", &[("quantity", "0.003")])["code"], 110411);
    // closePosition is not used with quantity.
    let both = x.stop("64000", &[("quantity", "0.003"), ("closePosition", "true")]);
    assert_eq!(both["code"], 109400);
    x.0.book().refused.clear();
    // clientOrderId only applies to LIMIT/MARKET: a stop has none.
    let v = x.stop("64000", &[("quantity", "0.003"), ("clientOrderId", "sl1")]);
    assert_eq!(v["code"], 0, "{v}");
    let placed = v["data"]["order"].clone();
    assert_eq!(
        (&placed["type"], &placed["clientOrderId"]),
        (&json!("STOP_MARKET"), &json!(""))
    );
    let id = placed["orderID"].as_str().unwrap().to_string();

    let p = [("symbol", "BTC-USDT"), ("type", "STOP_MARKET")];
    let open = x.send("GET", "/openApi/swap/v2/trade/openOrders", &p)["data"]["orders"].clone();
    assert_eq!(open.as_array().map(Vec::len), Some(1), "{open}");
    let o = &open[0];
    assert_eq!(
        (&o["stopPrice"], &o["workingType"], &o["status"]),
        (&json!("64000"), &json!("MARK_PRICE"), &json!("NEW"))
    );
    assert_eq!(
        (&o["side"], &o["positionSide"], &o["origQty"]),
        (&json!("SELL"), &json!("LONG"), &json!("0.003"))
    );
    let p = [("symbol", "BTC-USDT"), ("type", "LIMIT")];
    assert_eq!(
        x.send("GET", "/openApi/swap/v2/trade/openOrders", &p)["data"]["orders"],
        json!([])
    );

    x.0.book().set_mark(dec!(64100));
    assert_eq!(x.query(&id)["status"], "NEW");
    x.0.book().set_mark(dec!(63950));
    let o = x.query(&id);
    assert_eq!(
        (&o["status"], &o["avgPrice"], &o["executedQty"]),
        (&json!("FILLED"), &json!("63950"), &json!("0.003"))
    );
    assert_eq!(o["commission"], "-0.1055175");
    assert_eq!(o["profit"], "-3.15");
    assert!(x.0.book().long.size.is_zero());
    assert!(x.0.book().refused.is_empty(), "{:?}", x.0.book().refused);
}

#[test]
fn bingx_stop_cancel_and_close_position() {
    let x = Bingx::start();
    x.open_long("e1", "0.002");
    let v = x.stop("64000", &[("closePosition", "true")]);
    let id = v["data"]["order"]["orderID"].as_str().unwrap().to_string();
    let p = [("symbol", "BTC-USDT"), ("orderId", id.as_str())];
    let c = x.send("DELETE", "/openApi/swap/v2/trade/order", &p);
    assert_eq!(c["data"]["order"]["status"], "CANCELLED", "{c}");
    assert_eq!(
        x.send("DELETE", "/openApi/swap/v2/trade/order", &p)["code"],
        109421
    );

    // closePosition: the whole position, as it is at the trigger.
    let v = x.stop(
        "64000",
        &[("closePosition", "true"), ("workingType", "CONTRACT_PRICE")],
    );
    let id = v["data"]["order"]["orderID"].as_str().unwrap().to_string();
    x.open_long("e2", "0.001");
    x.0.book().set_price(dec!(63000));
    let o = x.query(&id);
    assert_eq!(
        (&o["status"], &o["executedQty"], &o["closePosition"]),
        (&json!("FILLED"), &json!("0.003"), &json!("true"))
    );
}

#[test]
fn bingx_income_lists_funding_with_its_sign() {
    let x = Bingx::start();
    x.open_long("e1", "0.001");
    let now = x.0.book().server_ms();
    x.0.book().add_funding(dec!(-0.0292), now - 2 * HOUR);
    x.0.book().add_funding(dec!(0.01), now - HOUR);
    let start = (now - 3 * HOUR).to_string();
    let end = now.to_string();
    let p = [
        ("incomeType", "FUNDING_FEE"),
        ("startTime", start.as_str()),
        ("endTime", end.as_str()),
        ("limit", "1"),
    ];
    let v = x.send("GET", "/openApi/swap/v2/user/income", &p);
    let rows = v["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{v}");
    let r = &rows[0];
    assert_eq!(
        (&r["incomeType"], &r["income"], &r["asset"]),
        (&json!("FUNDING_FEE"), &json!("-0.0292"), &json!("USDT"))
    );
    assert_eq!(r["time"], now - 2 * HOUR);
    assert!(r["tranId"].as_str().is_some_and(|t| !t.is_empty()));
    // Without a type: the entry's trading fee too; without a window: the last 7 days.
    let all = x.send("GET", "/openApi/swap/v2/user/income", &[])["data"].clone();
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["incomeType"].as_str())
        .collect();
    assert_eq!(kinds, ["FUNDING_FEE", "FUNDING_FEE", "TRADING_FEE"]);
    assert_eq!(all[2]["income"], "-0.03575");
}

#[test]
fn bingx_injected_errors_by_method_and_count() {
    let x = Bingx::start();
    let path = "/openApi/swap/v2/trade/order";
    x.0.inject_code("POST", path, 80012, 1);
    x.0.inject_code("DELETE", path, 80019, 1);
    let v = x.order(&[
        ("side", "BUY"),
        ("positionSide", "LONG"),
        ("type", "MARKET"),
        ("quantity", "0.001"),
        ("clientOrderId", "e1"),
    ]);
    assert_eq!(
        (&v["code"], &v["msg"]),
        (
            &json!(80012),
            &json!("The current system is busy, please try again later")
        )
    );
    x.open_long("e1", "0.001");
    let p = [("symbol", "BTC-USDT"), ("clientOrderId", "e1")];
    assert_eq!(x.send("DELETE", path, &p)["code"], 80019);
    // Filled already: nothing to cancel.
    assert_eq!(x.send("DELETE", path, &p)["code"], 109421);
}
