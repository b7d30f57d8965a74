//! A local fake of both venues' public market data on one loopback port: the
//! WebSocket streams (Bybit `/v5/public/linear`, BingX `/swap-market`) and the
//! public REST tickers (Bybit `/v5/market/tickers` and `instruments-info`, BingX `quote/ticker` and
//! `quote/premiumIndex`), in the shapes of the venues' documentation.
//!
//! The test sets tickers and breaks things: refuse WebSocket upgrades, drop every
//! connection, send a malformed frame, go silent, fail REST. It reads what the
//! client did: REST calls and stream connections per venue, subscriptions,
//! Bybit pings answered, BingX pongs received.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum V {
    Bybit,
    Bingx,
}

impl V {
    fn index(self) -> usize {
        self as usize
    }

    /// `BTC/USDT` as the venue spells it.
    fn symbol(self, ours: &str) -> String {
        let (b, q) = ours.split_once('/').expect("BASE/QUOTE");
        match self {
            V::Bybit => format!("{b}{q}"),
            V::Bingx => format!("{b}-{q}"),
        }
    }
}

/// One symbol's ticker; prices as decimal text.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Ticker {
    pub last: String,
    pub bid: String,
    pub ask: String,
    pub mark: String,
    pub funding: String,
    pub next_funding_ms: i64,
}

impl Ticker {
    pub fn new(last: &str, bid: &str, ask: &str, mark: &str) -> Ticker {
        Ticker {
            last: last.into(),
            bid: bid.into(),
            ask: ask.into(),
            mark: mark.into(),
            funding: "0.0001".into(),
            next_funding_ms: 1_700_000_000_000,
        }
    }
}

#[derive(Default)]
struct State {
    /// (venue, venue symbol) → (ticker, version).
    tickers: Mutex<HashMap<(V, String), (Ticker, u64)>>,
    refuse_ws: AtomicBool,
    refuse_subscriptions: AtomicBool,
    rest_down: AtomicBool,
    silent: AtomicBool,
    bingx_pings: AtomicBool,
    drop_gen: AtomicU64,
    malformed_gen: AtomicU64,
    stalled: [AtomicBool; 2],
    no_bingx_book: AtomicBool,
    bingx_rate_limited: AtomicU64,
    drop_after_data: AtomicBool,
    stalled_requests: [AtomicU64; 2],
    rest_calls: [AtomicU64; 2],
    ws_connections: [AtomicU64; 2],
    subscriptions: Mutex<Vec<String>>,
    pongs: AtomicU64,
    pings_answered: AtomicU64,
}

pub struct FakePublic {
    pub port: u16,
    state: Arc<State>,
}

impl FakePublic {
    pub fn start() -> FakePublic {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || serve(stream, &st));
            }
        });
        FakePublic { port, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn bybit_ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/v5/public/linear", self.port)
    }

    pub fn bingx_ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/swap-market", self.port)
    }

    /// Sets `symbol`'s (ours, `BTC/USDT`) ticker on venue `v`; streams push it.
    pub fn set_ticker(&self, v: V, symbol: &str, t: Ticker) {
        let mut all = self.state.tickers.lock().unwrap();
        let e = all.entry((v, v.symbol(symbol))).or_default();
        e.0 = t;
        e.1 += 1;
    }

    /// Refuses WebSocket upgrades with 503 (already open streams stay).
    pub fn refuse_streams(&self, on: bool) {
        self.state.refuse_ws.store(on, Ordering::SeqCst);
    }

    /// Subscriptions are answered as refused (Bybit `success:false`, BingX a
    /// non-zero `code`), as for an unknown symbol.
    pub fn refuse_subscriptions(&self, on: bool) {
        self.state.refuse_subscriptions.store(on, Ordering::SeqCst);
    }

    /// REST calls are closed unanswered (the client sees a network error).
    pub fn rest_down(&self, on: bool) {
        self.state.rest_down.store(on, Ordering::SeqCst);
    }

    /// Streams send nothing at all (no data, no pongs, no pings).
    pub fn silence(&self, on: bool) {
        self.state.silent.store(on, Ordering::SeqCst);
    }

    /// BingX streams send a gzip `Ping` every 100 ms.
    pub fn bingx_pings(&self, on: bool) {
        self.state.bingx_pings.store(on, Ordering::SeqCst);
    }

    /// Venue `v` accepts TCP and reads the request but never answers, neither a
    /// WebSocket upgrade nor a REST call (a hung venue, or a black hole between).
    pub fn stall(&self, v: V, on: bool) {
        self.state.stalled[v.index()].store(on, Ordering::SeqCst);
    }

    /// Every stream connection is cut right after it sent its first ticker.
    pub fn drop_after_data(&self, on: bool) {
        self.state.drop_after_data.store(on, Ordering::SeqCst);
    }

    /// The next `n` BingX subscriptions are answered "too many requests".
    pub fn rate_limit_bingx_subscriptions(&self, n: u64) {
        self.state.bingx_rate_limited.store(n, Ordering::SeqCst);
    }

    /// BingX streams send no `bookTicker` (the last and mark prices only).
    pub fn no_bingx_book(&self, on: bool) {
        self.state.no_bingx_book.store(on, Ordering::SeqCst);
    }

    /// Requests (stream or REST) venue `v` received while stalled.
    pub fn stalled_requests(&self, v: V) -> u64 {
        self.state.stalled_requests[v.index()].load(Ordering::SeqCst)
    }

    /// Cuts every open stream connection (no close frame).
    pub fn drop_connections(&self) {
        self.state.drop_gen.fetch_add(1, Ordering::SeqCst);
    }

    /// Every open stream sends one malformed frame.
    pub fn send_malformed(&self) {
        self.state.malformed_gen.fetch_add(1, Ordering::SeqCst);
    }

    pub fn rest_calls(&self, v: V) -> u64 {
        self.state.rest_calls[v.index()].load(Ordering::SeqCst)
    }

    pub fn ws_connections(&self, v: V) -> u64 {
        self.state.ws_connections[v.index()].load(Ordering::SeqCst)
    }

    pub fn subscriptions(&self) -> Vec<String> {
        self.state.subscriptions.lock().unwrap().clone()
    }

    /// BingX `Pong`s received.
    pub fn pongs(&self) -> u64 {
        self.state.pongs.load(Ordering::SeqCst)
    }

    /// Bybit `{"op":"ping"}`s answered.
    pub fn pings_answered(&self) -> u64 {
        self.state.pings_answered.load(Ordering::SeqCst)
    }
}

/// The request head, peeked (not consumed) so that tungstenite can read it again.
fn peek_head(stream: &TcpStream) -> Option<String> {
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = stream.peek(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.contains("\r\n\r\n") {
            return Some(text);
        }
        if n == 0 || n == buf.len() || Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn serve(mut stream: TcpStream, st: &State) {
    let Some(head) = peek_head(&stream) else {
        return;
    };
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let v = if path.starts_with("/swap-market") || path.starts_with("/openApi") {
        V::Bingx
    } else {
        V::Bybit
    };
    if st.stalled[v.index()].load(Ordering::SeqCst) {
        st.stalled_requests[v.index()].fetch_add(1, Ordering::SeqCst);
        // Hold the connection open, silent, until the stall ends (or a minute).
        let end = Instant::now() + Duration::from_secs(60);
        while st.stalled[v.index()].load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    if head.to_ascii_lowercase().contains("upgrade: websocket") {
        if st.refuse_ws.load(Ordering::SeqCst) {
            let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        stream_loop(stream, v, st);
    } else {
        // Consume the head (GET requests have no body).
        let end = head.find("\r\n\r\n").unwrap() + 4;
        let mut sink = vec![0u8; end];
        let _ = stream.read_exact(&mut sink);
        rest(stream, &path, st);
    }
}

fn bybit_fields(t: &Ticker, symbol: &str) -> Value {
    json!({"symbol": symbol, "lastPrice": t.last, "bid1Price": t.bid, "ask1Price": t.ask,
        "markPrice": t.mark, "indexPrice": t.mark, "fundingRate": t.funding,
        "nextFundingTime": t.next_funding_ms.to_string(), "volume24h": "1000"})
}

fn rest(mut stream: TcpStream, path: &str, st: &State) {
    let v = if path.starts_with("/openApi") {
        V::Bingx
    } else {
        V::Bybit
    };
    st.rest_calls[v.index()].fetch_add(1, Ordering::SeqCst);
    if st.rest_down.load(Ordering::SeqCst) {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let route = path.split('?').next().unwrap_or("");
    let all: Vec<(String, Ticker)> = {
        let t = st.tickers.lock().unwrap();
        t.iter()
            .filter(|((tv, _), _)| *tv == v)
            .map(|((_, s), (t, _))| (s.clone(), t.clone()))
            .collect()
    };
    let body = match route {
        "/v5/market/tickers" => {
            let list: Vec<Value> = all.iter().map(|(s, t)| bybit_fields(t, s)).collect();
            json!({"retCode": 0, "retMsg": "OK",
                "result": {"category": "linear", "list": list}, "retExtInfo": {}, "time": 1})
        }
        // The symbols with a ticker, as USDT perpetuals trading on a 0.1 tick (what
        // live paper markets are listed on, `GET /api/markets`).
        "/v5/market/instruments-info" => {
            let list: Vec<Value> = all
                .iter()
                .map(|(s, _)| {
                    json!({"symbol": s, "contractType": "LinearPerpetual", "status": "Trading",
                    "baseCoin": s.trim_end_matches("USDT"), "quoteCoin": "USDT",
                    "settleCoin": "USDT",
                    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00"},
                    "priceFilter": {"tickSize": "0.10"},
                    "lotSizeFilter": {"minOrderQty": "0.001", "qtyStep": "0.001",
                        "minNotionalValue": "5"}})
                })
                .collect();
            json!({"retCode": 0, "retMsg": "OK",
                "result": {"category": "linear", "list": list, "nextPageCursor": ""},
                "retExtInfo": {}, "time": 1})
        }
        "/openApi/swap/v2/quote/ticker" => {
            let data: Vec<Value> = all
                .iter()
                .map(|(s, t)| {
                    json!({"symbol": s, "lastPrice": t.last, "bidPrice": t.bid,
                    "askPrice": t.ask, "priceChange": "0", "volume": "1"})
                })
                .collect();
            json!({"code": 0, "msg": "", "data": data})
        }
        "/openApi/swap/v2/quote/premiumIndex" => {
            let data: Vec<Value> = all
                .iter()
                .map(|(s, t)| {
                    json!({"symbol": s, "markPrice": t.mark, "indexPrice": t.mark,
                    "lastFundingRate": t.funding, "nextFundingTime": t.next_funding_ms})
                })
                .collect();
            json!({"code": 0, "msg": "", "data": data})
        }
        _ => json!({"retCode": 10001, "code": 100404, "msg": "api not exist"}),
    }
    .to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// What one stream connection has subscribed and already sent.
struct Conn {
    v: V,
    /// venue symbol → last ticker sent and its version.
    sent: HashMap<String, (Ticker, u64)>,
}

fn stream_loop(stream: TcpStream, v: V, st: &State) {
    let raw = stream.try_clone().unwrap();
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    // After the handshake: a timeout during it would abort it.
    raw.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    st.ws_connections[v.index()].fetch_add(1, Ordering::SeqCst);
    let drop_gen = st.drop_gen.load(Ordering::SeqCst);
    let mut malformed_gen = st.malformed_gen.load(Ordering::SeqCst);
    let mut last_ping = Instant::now();
    let mut conn = Conn {
        v,
        sent: HashMap::new(),
    };
    loop {
        if st.drop_gen.load(Ordering::SeqCst) != drop_gen {
            let _ = raw.shutdown(Shutdown::Both);
            return;
        }
        let silent = st.silent.load(Ordering::SeqCst);
        match ws.read() {
            Ok(Message::Text(t)) if !silent => {
                if handle(&mut ws, &mut conn, t.as_str(), st).is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) => return,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        if silent {
            continue;
        }
        let m = st.malformed_gen.load(Ordering::SeqCst);
        if m != malformed_gen {
            malformed_gen = m;
            let bad = match v {
                V::Bybit => Message::text(
                    r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","lastPrice":"not-a-number"}}"#,
                ),
                V::Bingx => Message::binary(b"\x1f\x8bnot really gzip".to_vec()),
            };
            if ws.send(bad).is_err() {
                return;
            }
        }
        if v == V::Bingx
            && st.bingx_pings.load(Ordering::SeqCst)
            && last_ping.elapsed() >= Duration::from_millis(100)
        {
            last_ping = Instant::now();
            if ws.send(Message::binary(gzip("Ping"))).is_err() {
                return;
            }
        }
        if push(&mut ws, &mut conn, st).is_err() {
            return;
        }
        let sent_data = conn.sent.values().any(|(_, version)| *version > 0);
        if sent_data && st.drop_after_data.load(Ordering::SeqCst) {
            let _ = raw.shutdown(Shutdown::Both);
            return;
        }
    }
}

type Ws = WebSocket<TcpStream>;

fn send_json(ws: &mut Ws, v: V, value: Value) -> tungstenite::Result<()> {
    match v {
        V::Bybit => ws.send(Message::text(value.to_string())),
        V::Bingx => ws.send(Message::binary(gzip(&value.to_string()))),
    }
}

/// A client frame: subscriptions, Bybit pings, BingX pongs.
fn handle(ws: &mut Ws, conn: &mut Conn, text: &str, st: &State) -> tungstenite::Result<()> {
    if text == "Pong" {
        st.pongs.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    let Ok(req) = serde_json::from_str::<Value>(text) else {
        return Ok(());
    };
    match conn.v {
        V::Bybit => match req["op"].as_str() {
            Some("ping") => {
                st.pings_answered.fetch_add(1, Ordering::SeqCst);
                send_json(
                    ws,
                    V::Bybit,
                    json!({"success": true, "ret_msg": "pong",
                    "conn_id": "fake", "req_id": req["req_id"], "op": "ping"}),
                )
            }
            Some("subscribe") if st.refuse_subscriptions.load(Ordering::SeqCst) => send_json(
                ws,
                V::Bybit,
                json!({"success": false,
                    "ret_msg": format!("Invalid symbol :{}", req["args"]), "conn_id": "fake",
                    "req_id": req["req_id"], "op": "subscribe"}),
            ),
            Some("subscribe") => {
                for topic in req["args"].as_array().cloned().unwrap_or_default() {
                    let topic = topic.as_str().unwrap_or("").to_string();
                    st.subscriptions
                        .lock()
                        .unwrap()
                        .push(format!("bybit {topic}"));
                    if let Some(s) = topic.strip_prefix("tickers.") {
                        conn.sent.insert(s.to_string(), (Ticker::default(), 0));
                    }
                }
                send_json(
                    ws,
                    V::Bybit,
                    json!({"success": true, "ret_msg": "",
                    "conn_id": "fake", "req_id": req["req_id"], "op": "subscribe"}),
                )
            }
            Some("unsubscribe") => {
                for topic in req["args"].as_array().cloned().unwrap_or_default() {
                    let topic = topic.as_str().unwrap_or("").to_string();
                    st.subscriptions
                        .lock()
                        .unwrap()
                        .push(format!("bybit -{topic}"));
                    if let Some(s) = topic.strip_prefix("tickers.") {
                        conn.sent.remove(s);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        },
        V::Bingx => {
            let data_type = req["dataType"].as_str().unwrap_or("").to_string();
            let limited = req["reqType"] == "sub"
                && st
                    .bingx_rate_limited
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if limited {
                return send_json(
                    ws,
                    V::Bingx,
                    json!({"id": req["id"], "code": 109429,
                    "msg": "Too many invalid requests in a short period"}),
                );
            }
            if req["reqType"] == "sub" && st.refuse_subscriptions.load(Ordering::SeqCst) {
                return send_json(
                    ws,
                    V::Bingx,
                    json!({"id": req["id"], "code": 80015,
                    "msg": "symbol not exist"}),
                );
            }
            if req["reqType"] == "sub" {
                st.subscriptions
                    .lock()
                    .unwrap()
                    .push(format!("bingx {data_type}"));
                if let Some((s, _)) = data_type.split_once('@') {
                    conn.sent
                        .entry(s.to_string())
                        .or_insert((Ticker::default(), 0));
                }
            }
            send_json(ws, V::Bingx, json!({"id": req["id"], "code": 0, "msg": ""}))
        }
    }
}

/// Sends what changed since the last push of each subscribed symbol: Bybit a
/// snapshot first, then deltas of the changed fields only; BingX each channel
/// whose value changed.
fn push(ws: &mut Ws, conn: &mut Conn, st: &State) -> tungstenite::Result<()> {
    let tickers = st.tickers.lock().unwrap().clone();
    for (symbol, (sent, sent_version)) in conn.sent.iter_mut() {
        let Some((t, version)) = tickers.get(&(conn.v, symbol.clone())) else {
            continue;
        };
        if version == sent_version {
            continue;
        }
        match conn.v {
            V::Bybit => {
                let msg = if *sent_version == 0 {
                    json!({"topic": format!("tickers.{symbol}"), "type": "snapshot",
                        "data": bybit_fields(t, symbol), "cs": version, "ts": 1})
                } else {
                    let mut d = serde_json::Map::new();
                    d.insert("symbol".into(), json!(symbol));
                    for (k, new, old) in [
                        ("lastPrice", &t.last, &sent.last),
                        ("bid1Price", &t.bid, &sent.bid),
                        ("ask1Price", &t.ask, &sent.ask),
                        ("markPrice", &t.mark, &sent.mark),
                        ("fundingRate", &t.funding, &sent.funding),
                    ] {
                        if new != old {
                            d.insert(k.into(), json!(new));
                        }
                    }
                    json!({"topic": format!("tickers.{symbol}"), "type": "delta",
                        "data": d, "cs": version, "ts": 1})
                };
                send_json(ws, V::Bybit, msg)?;
            }
            V::Bingx => {
                let fresh = *sent_version == 0;
                let book = !st.no_bingx_book.load(Ordering::SeqCst);
                if book && (fresh || t.bid != sent.bid || t.ask != sent.ask) {
                    send_json(
                        ws,
                        V::Bingx,
                        json!({"code": 0, "dataType": format!("{symbol}@bookTicker"),
                        "data": {"e": "bookTicker", "u": version, "E": 1, "T": 1, "s": symbol,
                            "b": t.bid, "B": "1", "a": t.ask, "A": "1"}}),
                    )?;
                }
                if fresh || t.last != sent.last {
                    send_json(
                        ws,
                        V::Bingx,
                        json!({"code": 0, "dataType": format!("{symbol}@lastPrice"),
                        "data": {"e": "lastPriceUpdate", "E": 1, "s": symbol, "c": t.last}}),
                    )?;
                }
                if fresh || t.mark != sent.mark {
                    send_json(
                        ws,
                        V::Bingx,
                        json!({"code": 0, "dataType": format!("{symbol}@markPrice"),
                        "data": {"e": "markPriceUpdate", "E": 1, "s": symbol, "p": t.mark}}),
                    )?;
                }
            }
        }
        *sent = t.clone();
        *sent_version = *version;
    }
    Ok(())
}
