//! The fakes' private side (tests/common/fake_*.rs), driven by small real clients
//! written here: several accounts on one fake, the Bybit private WebSocket and
//! the BingX user data stream (auth, subscriptions, pushes after a fill, pings,
//! listen keys, gzip frames, faults), the per-IP request limits, the key and
//! position-mode endpoints, and the fake proxies — so a regression in a fake
//! fails here, not as a puzzle in a product test.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::fake_accounts::KeyPerms;
use common::fake_bingx::FakeBingx;
use common::fake_bybit::{FakeBybit, Malformed};
use common::fake_http::hmac_hex;
use common::fake_proxy::FakeProxy;
use common::{request, wait_for};
use rust_decimal::dec;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const KEY: &str = "fake-key-0";
const SECRET: &str = "fake-secret-0";
const KEY1: &str = "fake-key-1";
const SECRET1: &str = "fake-secret-1";
const WAIT: Duration = Duration::from_secs(5);

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(url: &str) -> Ws {
    let (ws, _) = tungstenite::connect(url).expect("stream connects");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    ws
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("gzip frame");
    out
}

/// The next text (or gunzipped binary) frame, or None within `within`.
fn next_text(ws: &mut Ws, within: Duration) -> Option<String> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Binary(b)) => return Some(gunzip(&b)),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("stream ended: {e}"),
        }
    }
    None
}

/// Reads frames until one matches; panics after `WAIT`.
fn expect(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if let Some(t) = next_text(ws, Duration::from_millis(200)) {
            if let Ok(v) = serde_json::from_str::<Value>(&t) {
                if pred(&v) {
                    return v;
                }
            }
        }
    }
    panic!("no {what} within {WAIT:?}");
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// A string holding a decimal number.
fn is_num(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.parse::<rust_decimal::Decimal>().is_ok())
}

// ---- Bybit ----

fn bybit_send(
    f: &FakeBybit,
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
) -> common::Resp {
    let ts = f.book().server_ms().to_string();
    let payload = if method == "GET" { query } else { body };
    let sign = hmac_hex(secret, &format!("{ts}{key}5000{payload}"));
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\n\
         X-BAPI-API-KEY: {key}\r\nX-BAPI-TIMESTAMP: {ts}\r\nX-BAPI-RECV-WINDOW: 5000\r\n\
         X-BAPI-SIGN: {sign}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(f.http.port, raw.as_bytes())
}

fn bybit_auth(ws: &mut Ws, key: &str, secret: &str, expires: i64) -> Value {
    let sig = hmac_hex(secret, &format!("GET/realtime{expires}"));
    send(
        ws,
        json!({"op": "auth", "args": [key, expires, sig], "req_id": "a1"}),
    );
    expect(ws, "auth answer", |v| v["op"] == "auth")
}

fn bybit_stream(f: &FakeBybit, key: &str, secret: &str) -> Ws {
    let mut ws = connect(&f.private_ws_url());
    let expires = f.book().server_ms() + 10_000;
    let a = bybit_auth(&mut ws, key, secret, expires);
    assert_eq!(a["success"], true, "{a}");
    send(
        &mut ws,
        json!({"op": "subscribe", "args": ["order", "execution", "position", "wallet"]}),
    );
    let s = expect(&mut ws, "subscribe answer", |v| v["op"] == "subscribe");
    assert_eq!(s["success"], true, "{s}");
    ws
}

#[test]
fn bybit_auth_refuses_bad_signature_expired_unknown_key_and_injected_refusals() {
    let f = FakeBybit::start(KEY, SECRET);
    let mut ws = connect(&f.private_ws_url());
    // Subscribing before auth is refused.
    send(&mut ws, json!({"op": "subscribe", "args": ["order"]}));
    let s = expect(&mut ws, "subscribe answer", |v| v["op"] == "subscribe");
    assert_eq!(s["success"], false);
    let future = f.book().server_ms() + 10_000;
    let bad = bybit_auth(&mut ws, KEY, "wrong-secret", future);
    assert_eq!(
        (bad["success"].clone(), bad["op"].clone()),
        (json!(false), json!("auth"))
    );
    assert!(
        bad["conn_id"].is_string() && bad["ret_msg"].is_string(),
        "{bad}"
    );
    let past = f.book().server_ms() - 1;
    let expired = bybit_auth(&mut ws, KEY, SECRET, past);
    assert_eq!(expired["ret_msg"], "Params Error");
    let unknown = bybit_auth(&mut ws, "no-such-key", SECRET, future);
    assert_eq!(unknown["success"], false);
    f.refuse_auths(1);
    assert_eq!(bybit_auth(&mut ws, KEY, SECRET, future)["success"], false);
    let good = bybit_auth(&mut ws, KEY, SECRET, future);
    assert_eq!(
        (good["success"].clone(), good["req_id"].clone()),
        (json!(true), json!("a1"))
    );
    // Ping → the private stream's pong.
    send(&mut ws, json!({"op": "ping", "req_id": "p1"}));
    let pong = expect(&mut ws, "pong", |v| v["op"] == "pong");
    assert_eq!(pong["req_id"], "p1");
    assert!(is_num(&pong["args"][0]), "{pong}");
    assert_eq!(f.pings_answered(), 1);
}

#[test]
fn bybit_fill_pushes_order_execution_position_and_wallet_to_its_account_only() {
    let f = FakeBybit::start(KEY, SECRET);
    assert_eq!(f.add_account(KEY1, SECRET1), 1);
    let mut mine = bybit_stream(&f, KEY1, SECRET1);
    let mut other = bybit_stream(&f, KEY, SECRET);
    let body = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
        "orderType": "Limit", "qty": "0.01", "price": "64000", "positionIdx": 1,
        "orderLinkId": "dca-1", "reduceOnly": false});
    let r = bybit_send(
        &f,
        KEY1,
        SECRET1,
        "POST",
        "/v5/order/create",
        "",
        &body.to_string(),
    );
    assert_eq!(r.json()["retCode"], 0, "{}", r.text());
    let new = expect(&mut mine, "order New", |v| v["topic"] == "order");
    assert_eq!(new["data"][0]["orderStatus"], "New");
    assert_eq!(new["data"][0]["orderLinkId"], "dca-1");
    assert!(new["creationTime"].is_i64() && new["id"].is_string());
    // The price moves on every account and fills the limit order.
    f.set_price(dec!(63900));
    assert_eq!(f.account(0).lock().unwrap().price, dec!(63900));
    let exec = expect(&mut mine, "execution", |v| v["topic"] == "execution");
    let e = &exec["data"][0];
    assert_eq!(
        (e["orderLinkId"].clone(), e["execPrice"].clone()),
        (json!("dca-1"), json!("64000"))
    );
    for k in ["execQty", "execFee", "execPrice", "execValue", "execTime"] {
        assert!(is_num(&e[k]), "{k} in {e}");
    }
    let filled = expect(&mut mine, "order Filled", |v| v["topic"] == "order");
    let o = &filled["data"][0];
    assert_eq!(
        (o["orderStatus"].clone(), o["cumExecQty"].clone()),
        (json!("Filled"), json!("0.01"))
    );
    assert_eq!(
        (o["avgPrice"].clone(), o["positionIdx"].clone()),
        (json!("64000"), json!(1))
    );
    assert!(is_num(&o["cumExecFee"]) && is_num(&o["updatedTime"]));
    let pos = expect(&mut mine, "position", |v| v["topic"] == "position");
    let p = &pos["data"][0];
    assert_eq!(
        (
            p["size"].clone(),
            p["side"].clone(),
            p["positionIdx"].clone()
        ),
        (json!("0.01"), json!("Buy"), json!(1))
    );
    assert_eq!(
        (p["avgPrice"].clone(), p["markPrice"].clone()),
        (json!("64000"), json!("63900"))
    );
    let wallet = expect(&mut mine, "wallet", |v| v["topic"] == "wallet");
    let coin = &wallet["data"][0]["coin"][0];
    assert_eq!(coin["coin"], "USDT");
    let fee = dec!(0.01) * dec!(64000) * dec!(0.0002);
    assert_eq!(
        coin["walletBalance"],
        json!((dec!(10000) - fee).normalize().to_string())
    );
    // The emission log names the execution; the other account heard nothing.
    let sent = f.emitted();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].account, sent[0].client_id.as_str()), (1, "dca-1"));
    assert_eq!(sent[0].exec_id, e["execId"].as_str().unwrap());
    assert!(next_text(&mut other, Duration::from_millis(300)).is_none());
    // The book's outbox has the same story.
    let events = f.account(1).lock().unwrap().outbox.events.len();
    assert_eq!(events, 5);
}

#[test]
fn bybit_stream_faults_drop_malformed_deaf_and_silent() {
    let f = FakeBybit::start(KEY, SECRET);
    let mut ws = bybit_stream(&f, KEY, SECRET);
    f.send_malformed(Malformed::InvalidJson);
    let bad = next_text(&mut ws, WAIT).unwrap();
    assert!(serde_json::from_str::<Value>(&bad).is_err());
    f.send_malformed(Malformed::GarbledNumber);
    let garbled = expect(&mut ws, "garbled execution", |v| v["topic"] == "execution");
    assert!(!is_num(&garbled["data"][0]["execPrice"]));
    f.stop_answering_pings(true);
    send(&mut ws, json!({"op": "ping"}));
    assert!(next_text(&mut ws, Duration::from_millis(300)).is_none());
    f.stop_answering_pings(false);
    // Silent: the book changes, nothing is pushed.
    f.silence_streams(true);
    let body = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
        "orderType": "Market", "qty": "0.01", "positionIdx": 1, "orderLinkId": "quiet-1", "reduceOnly": false});
    let r = bybit_send(
        &f,
        KEY,
        SECRET,
        "POST",
        "/v5/order/create",
        "",
        &body.to_string(),
    );
    assert_eq!(r.json()["retCode"], 0);
    assert!(next_text(&mut ws, Duration::from_millis(300)).is_none());
    assert_eq!(f.book().long.size, dec!(0.01));
    f.silence_streams(false);
    assert_eq!(f.private_connections().0, 1);
    f.drop_private_sockets();
    let end = Instant::now() + WAIT;
    let dropped = loop {
        match ws.read() {
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) | Ok(Message::Close(_)) => break true,
            Ok(_) => {}
        }
        if Instant::now() > end {
            break false;
        }
    };
    assert!(dropped, "the socket was dropped");
    wait_for(WAIT, "no live stream", || f.private_connections().0 == 0);
}

#[test]
fn bybit_bans_the_ip_with_403_after_600_requests_in_5_seconds() {
    let f = FakeBybit::start(KEY, SECRET);
    for _ in 0..600 {
        let r = common::get(f.http.port, "/v5/market/time");
        assert_eq!(r.status, 200);
    }
    let r = common::get(f.http.port, "/v5/market/time");
    assert_eq!(
        (r.status, r.text()),
        (403, "access too frequent".to_string())
    );
    // Banned: even a request well after stays refused.
    assert_eq!(common::get(f.http.port, "/v5/market/time").status, 403);
    assert_eq!(f.ip_limit_exceeded(), 2);
    assert_eq!(f.requests_total(), 602);
    assert!(f.requests_in_window_max() >= 601);
    f.unban_ip();
    assert_eq!(common::get(f.http.port, "/v5/market/time").status, 200);
}

#[test]
fn bybit_private_answers_carry_the_uid_limit_headers() {
    let f = FakeBybit::start(KEY, SECRET);
    let r = bybit_send(
        &f,
        KEY,
        SECRET,
        "GET",
        "/v5/position/list",
        "category=linear&symbol=BTCUSDT",
        "",
    );
    for h in [
        "X-Bapi-Limit",
        "X-Bapi-Limit-Status",
        "X-Bapi-Limit-Reset-Timestamp",
    ] {
        assert!(r.header(h).is_some_and(|v| v.parse::<i64>().is_ok()), "{h}");
    }
}

#[test]
fn bybit_key_information_and_one_way_mode() {
    let f = FakeBybit::start(KEY, SECRET);
    f.add_account(KEY1, SECRET1);
    f.set_key_perms(
        1,
        KeyPerms {
            read_only: true,
            withdraw: true,
            ips: vec!["10.0.0.1".into()],
            expired_at: String::new(),
        },
    );
    let mine = bybit_send(&f, KEY1, SECRET1, "GET", "/v5/user/query-api", "", "").json();
    let k = &mine["result"];
    assert_eq!(
        (k["apiKey"].clone(), k["readOnly"].clone()),
        (json!(KEY1), json!(1))
    );
    assert!(k["permissions"]["Wallet"]
        .as_array()
        .unwrap()
        .contains(&json!("Withdraw")));
    assert_eq!(k["ips"], json!(["10.0.0.1"]));
    let first = bybit_send(&f, KEY, SECRET, "GET", "/v5/user/query-api", "", "").json();
    assert_eq!(first["result"]["readOnly"], 0);
    assert_eq!(
        first["result"]["permissions"]["ContractTrade"],
        json!(["Order", "Position"])
    );
    // An unknown key is refused as before.
    let none = bybit_send(&f, "nobody", SECRET, "GET", "/v5/user/query-api", "", "").json();
    assert_eq!(none["retCode"], 10003);
    // One-way mode: positionIdx 0 only.
    f.set_hedge(1, false);
    let order = |idx: i64, link: &str| {
        let body = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
            "orderType": "Market", "qty": "0.01", "positionIdx": idx, "reduceOnly": false, "orderLinkId": link});
        bybit_send(
            &f,
            KEY1,
            SECRET1,
            "POST",
            "/v5/order/create",
            "",
            &body.to_string(),
        )
        .json()
    };
    let wrong = order(1, "ow-1");
    assert_eq!(
        (wrong["retCode"].clone(), wrong["retMsg"].clone()),
        (json!(10001), json!("position idx not match position mode"))
    );
    assert_eq!(order(0, "ow-2")["retCode"], 0);
    let list = bybit_send(
        &f,
        KEY1,
        SECRET1,
        "GET",
        "/v5/position/list",
        "category=linear&symbol=BTCUSDT",
        "",
    )
    .json();
    let positions = list["result"]["list"].as_array().unwrap().clone();
    assert_eq!(positions.len(), 1);
    assert_eq!(
        (
            positions[0]["positionIdx"].clone(),
            positions[0]["size"].clone()
        ),
        (json!(0), json!("0.01"))
    );
    // The first account is still in hedge mode.
    let hedge = bybit_send(
        &f,
        KEY,
        SECRET,
        "GET",
        "/v5/position/list",
        "category=linear&symbol=BTCUSDT",
        "",
    )
    .json();
    assert_eq!(hedge["result"]["list"].as_array().unwrap().len(), 2);
}

// ---- BingX ----

fn bingx_send(
    f: &FakeBingx,
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
) -> common::Resp {
    let ts = f.book().server_ms().to_string();
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.push(("timestamp", &ts));
    all.sort();
    let query: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let query = query.join("&");
    let sign = hmac_hex(secret, &query);
    let raw = format!(
        "{method} {path}?{query}&signature={sign} HTTP/1.1\r\nHost: fake\r\n\
         X-BX-APIKEY: {key}\r\nContent-Length: 0\r\n\r\n"
    );
    request(f.http.port, raw.as_bytes())
}

/// A listen-key request: the API key header, no signature.
fn listen_key(f: &FakeBingx, method: &str, key: &str, listen: &str) -> common::Resp {
    let query = if listen.is_empty() {
        String::new()
    } else {
        format!("?listenKey={listen}")
    };
    let raw = format!(
        "{method} /openApi/user/auth/userDataStream{query} HTTP/1.1\r\nHost: fake\r\n\
         X-BX-APIKEY: {key}\r\nContent-Length: 0\r\n\r\n"
    );
    request(f.http.port, raw.as_bytes())
}

#[test]
fn bingx_listen_key_lifecycle_and_gzip_pushes_after_a_fill() {
    let f = FakeBingx::start(KEY, SECRET);
    f.add_account(KEY1, SECRET1);
    f.set_ping_interval_ms(200);
    let created = listen_key(&f, "POST", KEY1, "").json();
    let key = created["listenKey"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    assert_eq!(f.listen_key_account(&key), Some(1));
    assert_eq!(listen_key(&f, "PUT", KEY1, &key).status, 200);
    assert_eq!(listen_key(&f, "POST", "nobody", "").json()["code"], 100413);
    // An unknown key cannot open the stream.
    assert!(tungstenite::connect(format!("{}?listenKey=nope", f.user_ws_url())).is_err());
    let mut ws = connect(&format!("{}?listenKey={key}", f.user_ws_url()));
    // The server pings (gzip "Ping"); the client answers "Pong".
    let end = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < end, "no Ping");
        if next_text(&mut ws, Duration::from_millis(100)).as_deref() == Some("Ping") {
            break;
        }
    }
    ws.send(Message::text("Pong")).unwrap();
    wait_for(WAIT, "the pong counted", || f.pongs() == 1);
    let r = bingx_send(
        &f,
        KEY1,
        SECRET1,
        "POST",
        "/openApi/swap/v2/trade/order",
        &[
            ("symbol", "BTC-USDT"),
            ("side", "BUY"),
            ("positionSide", "LONG"),
            ("type", "MARKET"),
            ("quantity", "0.01"),
            ("clientOrderId", "bx-1"),
        ],
    );
    assert_eq!(r.json()["code"], 0, "{}", r.text());
    let trade = expect(&mut ws, "trade update", |v| {
        v["e"] == "ORDER_TRADE_UPDATE" && v["o"]["x"] == "TRADE"
    });
    let o = &trade["o"];
    assert_eq!(
        (o["c"].clone(), o["X"].clone(), o["ps"].clone()),
        (json!("bx-1"), json!("FILLED"), json!("LONG"))
    );
    for k in ["q", "ap", "z", "n", "l", "L"] {
        assert!(is_num(&o[k]), "{k} in {o}");
    }
    let account = expect(&mut ws, "position update", |v| {
        v["e"] == "ACCOUNT_UPDATE" && !v["a"]["P"].as_array().unwrap().is_empty()
    });
    assert_eq!(account["a"]["P"][0]["pa"], "0.01");
    let wallet = expect(&mut ws, "balance update", |v| {
        v["e"] == "ACCOUNT_UPDATE" && !v["a"]["B"].as_array().unwrap().is_empty()
    });
    assert!(is_num(&wallet["a"]["B"][0]["wb"]));
    let sent = f.emitted();
    assert_eq!(
        (sent.len(), sent[0].account, sent[0].exec_id.clone()),
        (1, 1, o["t"].as_str().unwrap().to_string())
    );
    // Expired now: listenKeyExpired, then the connection closes; PUT is 404.
    f.expire_listen_keys();
    let gone = expect(&mut ws, "listenKeyExpired", |v| {
        v["e"] == "listenKeyExpired"
    });
    assert_eq!(gone["listenKey"], json!(key));
    wait_for(WAIT, "the stream closed", || f.private_connections().0 == 0);
    assert_eq!(listen_key(&f, "PUT", KEY1, &key).status, 404);
    // A short lifetime expires on its own; DELETE forgets a key.
    f.set_listen_key_ttl_ms(1_000);
    let short = listen_key(&f, "POST", KEY, "").json()["listenKey"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = connect(&format!("{}?listenKey={short}", f.user_ws_url()));
    expect(&mut ws, "listenKeyExpired", |v| {
        v["e"] == "listenKeyExpired"
    });
    assert_eq!(listen_key(&f, "DELETE", KEY, &short).status, 200);
    assert_eq!(listen_key(&f, "DELETE", KEY, &short).status, 404);
}

#[test]
fn bingx_stream_malformed_frames_and_refused_connections() {
    let f = FakeBingx::start(KEY, SECRET);
    let key = listen_key(&f, "POST", KEY, "").json()["listenKey"]
        .as_str()
        .unwrap()
        .to_string();
    f.refuse_auths(1);
    let url = format!("{}?listenKey={key}", f.user_ws_url());
    assert!(tungstenite::connect(&url).is_err());
    let mut ws = connect(&url);
    wait_for(WAIT, "the stream registered", || {
        f.private_connections().0 == 1
    });
    f.send_malformed(false);
    let end = Instant::now() + WAIT;
    let raw = loop {
        assert!(Instant::now() < end, "no malformed frame");
        if let Ok(Message::Binary(b)) = ws.read() {
            break b;
        }
    };
    let mut out = String::new();
    assert!(flate2::read::GzDecoder::new(&raw[..])
        .read_to_string(&mut out)
        .is_err());
    f.send_malformed(true);
    let garbled = expect(&mut ws, "garbled update", |v| {
        v["e"] == "ORDER_TRADE_UPDATE"
    });
    assert!(!is_num(&garbled["o"]["ap"]));
}

#[test]
fn bingx_market_ip_limit_answers_429_with_100410() {
    let f = FakeBingx::start(KEY, SECRET);
    for _ in 0..500 {
        assert_eq!(
            common::get(f.http.port, "/openApi/swap/v2/server/time").status,
            200
        );
    }
    let r = common::get(f.http.port, "/openApi/swap/v2/server/time");
    assert_eq!((r.status, r.json()["code"].clone()), (429, json!(100410)));
    assert_eq!((f.ip_limit_exceeded(), f.requests_total()), (1, 501));
    assert_eq!(f.market_requests_in_window_max(), 501);
    // The account group has its own budget.
    let k = bingx_send(
        &f,
        KEY,
        SECRET,
        "GET",
        "/openApi/swap/v1/positionSide/dual",
        &[],
    );
    assert_eq!(k.status, 200);
    assert_eq!(f.requests_in_window_max(), 1);
}

#[test]
fn bingx_key_permissions_and_dual_side_mode() {
    let f = FakeBingx::start(KEY, SECRET);
    f.add_account(KEY1, SECRET1);
    f.set_key_perms(
        1,
        KeyPerms {
            read_only: false,
            withdraw: true,
            ips: vec!["10.0.0.2".into()],
            expired_at: String::new(),
        },
    );
    let p = bingx_send(
        &f,
        KEY1,
        SECRET1,
        "GET",
        "/openApi/v1/account/apiPermissions",
        &[],
    )
    .json();
    assert_eq!(p["data"]["permissions"], json!([2, 3, 5]));
    assert_eq!(p["data"]["ipAddresses"], json!(["10.0.0.2"]));
    let p0 = bingx_send(
        &f,
        KEY,
        SECRET,
        "GET",
        "/openApi/v1/account/apiPermissions",
        &[],
    )
    .json();
    assert_eq!(
        (
            p0["data"]["permissions"].clone(),
            p0["data"]["ipAddresses"].clone()
        ),
        (json!([2, 3]), json!([]))
    );
    let dual = |key, secret| {
        bingx_send(
            &f,
            key,
            secret,
            "GET",
            "/openApi/swap/v1/positionSide/dual",
            &[],
        )
        .json()
    };
    assert_eq!(dual(KEY1, SECRET1)["data"]["dualSidePosition"], "true");
    f.set_dual_side(1, false);
    assert_eq!(dual(KEY1, SECRET1)["data"]["dualSidePosition"], "false");
    assert_eq!(dual(KEY, SECRET)["data"]["dualSidePosition"], "true");
    let bad = bingx_send(
        &f,
        "nobody",
        SECRET,
        "GET",
        "/openApi/swap/v1/positionSide/dual",
        &[],
    )
    .json();
    assert_eq!(bad["code"], 100413);
}

// ---- Proxies ----

/// `GET /v5/market/time` over an open tunnel.
fn time_over(mut s: TcpStream) -> String {
    s.write_all(b"GET /v5/market/time HTTP/1.1\r\nHost: fake\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn http_connect_proxy_tunnels_and_checks_credentials() {
    let f = FakeBybit::start(KEY, SECRET);
    let target = format!("127.0.0.1:{}", f.http.port);
    let p = FakeProxy::http(None);
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let mut head = [0u8; 39];
    s.read_exact(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"));
    assert!(time_over(s).contains("timeSecond"));
    // The absolute form of a plain-HTTP request is forwarded.
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    write!(
        s,
        "GET http://{target}/v5/market/time HTTP/1.1\r\nHost: {target}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.contains("timeSecond"), "{out}");
    assert_eq!(p.tunnels(), vec![target.clone(), target.clone()]);
    // With credentials: none → 407, right ones → tunnel.
    let p = FakeProxy::http(Some(("u", "pw")));
    assert_eq!(p.url(), format!("http://u:pw@127.0.0.1:{}", p.port));
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    write!(s, "CONNECT {target} HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 407"), "{out}");
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    write!(
        s,
        "CONNECT {target} HTTP/1.1\r\nProxy-Authorization: Basic dTpwdw==\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 39];
    s.read_exact(&mut head).unwrap();
    assert!(time_over(s).contains("timeSecond"));
    assert_eq!((p.tunnel_count(), p.refused()), (1, 1));
}

/// A SOCKS5 handshake to `port` on 127.0.0.1 as a domain name; `auth` offered
/// when given. Returns the stream once the proxy says it connected.
fn socks5(proxy: u16, port: u16, auth: Option<(&str, &str)>) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", proxy)).unwrap();
    let method = if auth.is_some() { 2 } else { 0 };
    s.write_all(&[5, 1, method]).unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).ok()?;
    if choice[1] != method {
        return None;
    }
    if let Some((u, p)) = auth {
        let mut m = vec![1, u.len() as u8];
        m.extend_from_slice(u.as_bytes());
        m.push(p.len() as u8);
        m.extend_from_slice(p.as_bytes());
        s.write_all(&m).unwrap();
        let mut ok = [0u8; 2];
        s.read_exact(&mut ok).ok()?;
        if ok[1] != 0 {
            return None;
        }
    }
    let host = b"localhost";
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).ok()?;
    (reply[1] == 0).then_some(s)
}

#[test]
fn socks5_proxy_with_and_without_credentials() {
    let f = FakeBybit::start(KEY, SECRET);
    let open = FakeProxy::socks5(None);
    let s = socks5(open.port, f.http.port, None).expect("tunnel");
    assert!(time_over(s).contains("timeSecond"));
    assert_eq!(open.tunnels(), vec![format!("localhost:{}", f.http.port)]);
    let locked = FakeProxy::socks5(Some(("bot", "secret")));
    assert_eq!(
        locked.url(),
        format!("socks5://bot:secret@127.0.0.1:{}", locked.port)
    );
    assert!(socks5(locked.port, f.http.port, None).is_none());
    assert!(socks5(locked.port, f.http.port, Some(("bot", "wrong"))).is_none());
    let s = socks5(locked.port, f.http.port, Some(("bot", "secret"))).expect("tunnel");
    assert!(time_over(s).contains("timeSecond"));
    assert_eq!((locked.tunnel_count(), locked.refused()), (1, 2));
}

#[test]
fn bybit_partial_fill_is_pushed_as_partially_filled_then_filled() {
    let f = FakeBybit::start(KEY, SECRET);
    let mut ws = bybit_stream(&f, KEY, SECRET);
    let body = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
        "orderType": "Limit", "qty": "0.03", "price": "64000", "positionIdx": 1,
        "orderLinkId": "part-1", "reduceOnly": false});
    let r = bybit_send(
        &f,
        KEY,
        SECRET,
        "POST",
        "/v5/order/create",
        "",
        &body.to_string(),
    );
    assert_eq!(r.json()["retCode"], 0);
    assert!(f.book().fill_partial("part-1", dec!(0.01)));
    // Bybit pushes the execution, then the order.
    let exec = expect(&mut ws, "execution", |v| v["topic"] == "execution");
    assert_eq!(exec["data"][0]["execQty"], "0.01");
    let part = expect(&mut ws, "partial order", |v| {
        v["topic"] == "order" && v["data"][0]["orderStatus"] == "PartiallyFilled"
    });
    let o = &part["data"][0];
    assert_eq!(
        (o["cumExecQty"].clone(), o["leavesQty"].clone()),
        (json!("0.01"), json!("0.02"))
    );
    // The rest fills when the price reaches it.
    f.set_price(dec!(63990));
    let done = expect(&mut ws, "filled order", |v| {
        v["topic"] == "order" && v["data"][0]["orderStatus"] == "Filled"
    });
    assert_eq!(done["data"][0]["cumExecQty"], "0.03");
    assert_eq!(f.book().long.size, dec!(0.03));
    assert_eq!(f.emitted().len(), 2);
}

#[test]
fn a_thousand_accounts_on_one_fake_each_reach_their_own_book() {
    let f = FakeBybit::start(KEY, SECRET);
    for i in 1..1000 {
        assert_eq!(
            f.add_account(&format!("key-{i}"), &format!("secret-{i}")),
            i
        );
    }
    assert_eq!(f.account_count(), 1000);
    let mut ws = bybit_stream(&f, "key-999", "secret-999");
    let body = json!({"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
        "orderType": "Limit", "qty": "0.01", "price": "64000", "positionIdx": 1,
        "orderLinkId": "last-1", "reduceOnly": false});
    let r = bybit_send(
        &f,
        "key-999",
        "secret-999",
        "POST",
        "/v5/order/create",
        "",
        &body.to_string(),
    );
    assert_eq!(r.json()["retCode"], 0);
    // One price move reaches every account; only the last one had an order.
    f.set_price(dec!(63000));
    let exec = expect(&mut ws, "execution", |v| v["topic"] == "execution");
    let id = exec["data"][0]["execId"].as_str().unwrap().to_string();
    assert!(f.emitted_at(&id).is_some());
    assert_eq!(f.account(999).lock().unwrap().long.size, dec!(0.01));
    assert_eq!(f.account(500).lock().unwrap().price, dec!(63000));
    assert!(f.book().orders.is_empty());
}
