//! Bybit v5 private WebSocket (`/v5/private`), as documented:
//! - connect and auth: bybit-exchange.github.io/docs/v5/ws/connect —
//!   `{"op":"auth","args":[key, expires, signature]}`, signature = hex
//!   HMAC_SHA256(secret, "GET/realtime" + expires), expires (ms) in the future;
//!   the answer `{"success":..,"ret_msg":..,"op":"auth","conn_id":..}`. A failed
//!   auth with a good key but a stale `expires` answers "Params Error", as seen in
//!   github.com/bybit-exchange/api-usage-examples/issues/70 and
//!   github.com/bybit-exchange/pybit/issues/300; the texts for an unknown key
//!   and a bad signature are the fake's own (a client must go by `success`).
//!   `expires` is compared with the fake's clock, which runs ahead of the wall
//!   clock (Book::skew_ms) as for REST: a client must sync its clock.
//! - ping: `{"op":"ping","req_id":..}` → on the private stream
//!   `{"req_id":..,"op":"pong","args":["<ms>"],"conn_id":..}`.
//! - topics `order`, `execution`, `position`, `wallet` (and their `.linear`
//!   forms): bybit-exchange.github.io/docs/v5/websocket/private/order,
//!   .../execution, .../position, .../wallet — `{"id","topic","creationTime",
//!   "data":[..]}` with numbers as strings.
//!
//! Bybit drops a connection that sends nothing for a while (the docs advise a
//! ping every 20 s); the fake keeps idle connections: a client's pings are
//! counted (`pings_answered`) so a test can check it sends them.

use std::collections::HashSet;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use serde_json::{json, Value};
use tungstenite::Message;

use super::fake_accounts::{Accounts, Shared};
use super::fake_book::{num, Dir, FakeOrder, Fill, Origin, Pos};
use super::fake_bybit::SYMBOL;
use super::fake_bybit_orders::order_json;
use super::fake_http::{hmac_hex, now_ms};
use super::fake_outbox::{Change, Event, Input};
use super::fake_private_ws::{Protocol, Step, Streams};

pub const TOPICS: [&str; 4] = ["order", "execution", "position", "wallet"];

pub struct BybitPrivate {
    accounts: Arc<Accounts>,
    conn_id: String,
    /// The authenticated account: index, book, and its position mode.
    account: Option<(usize, Shared, bool)>,
    topics: HashSet<String>,
    listening: bool,
}

impl BybitPrivate {
    pub fn new(accounts: Arc<Accounts>, n: u64) -> BybitPrivate {
        BybitPrivate {
            accounts,
            conn_id: format!("fake-conn-{n}"),
            account: None,
            topics: HashSet::new(),
            listening: false,
        }
    }

    fn answer(&self, op: &str, ok: bool, msg: &str, req_id: &Value) -> Step {
        let mut v = json!({"success": ok, "ret_msg": msg, "op": op, "conn_id": self.conn_id});
        if !req_id.is_null() {
            v["req_id"] = req_id.clone();
        }
        Step::send(Message::text(v.to_string()))
    }

    fn auth(&mut self, args: &Value, req_id: &Value, streams: &Streams) -> Step {
        let key = args[0].as_str().unwrap_or("");
        // `expires` is a number in the docs' example; a numeric string is taken too.
        let expires = args[1]
            .as_i64()
            .or_else(|| args[1].as_str().and_then(|s| s.parse().ok()));
        let sig = args[2].as_str().unwrap_or("");
        if streams.take_refusal() {
            return self.answer("auth", false, "Request not authorized", req_id);
        }
        let Some((i, book)) = self
            .accounts
            .index_of(key)
            .and_then(|i| Some((i, self.accounts.get(i)?)))
        else {
            return self.answer("auth", false, "Invalid apikey", req_id);
        };
        let (secret, server, hedge) = {
            let b = book.lock().unwrap();
            (b.secret.clone(), b.server_ms(), b.hedge)
        };
        let Some(expires) = expires.filter(|e| *e > server) else {
            return self.answer("auth", false, "Params Error", req_id);
        };
        if hmac_hex(&secret, &format!("GET/realtime{expires}")) != sig {
            return self.answer("auth", false, "Invalid sign", req_id);
        }
        self.account = Some((i, book, hedge));
        self.answer("auth", true, "", req_id)
    }

    fn subscribe(&mut self, args: &Value, req_id: &Value, tx: &Sender<Input>) -> Step {
        let Some((_, book, _)) = &self.account else {
            return self.answer("subscribe", false, "Request not authorized", req_id);
        };
        let asked: Vec<String> = args
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str())
                    .map(|t| t.trim_end_matches(".linear").to_string())
                    .collect()
            })
            .unwrap_or_default();
        if asked.is_empty() || asked.iter().any(|t| !TOPICS.contains(&t.as_str())) {
            let msg = format!("Invalid topic: {args}");
            return self.answer("subscribe", false, &msg, req_id);
        }
        if !self.listening {
            book.lock().unwrap().outbox.listen(tx.clone());
            self.listening = true;
        }
        self.topics.extend(asked);
        self.answer("subscribe", true, "", req_id)
    }

    fn push(&self, topic: &str, at_ms: i64, data: Value) -> Step {
        let v = json!({"id": format!("{}-{}", self.conn_id, now_ms()), "topic": topic,
            "creationTime": at_ms, "data": [data]});
        Step::send(Message::text(v.to_string()))
    }
}

impl Protocol for BybitPrivate {
    fn on_text(&mut self, text: &str, tx: &Sender<Input>, streams: &Streams) -> Step {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return self.answer("", false, "error:invalid json", &Value::Null);
        };
        let req_id = v["req_id"].clone();
        match v["op"].as_str().unwrap_or("") {
            "auth" => self.auth(&v["args"], &req_id, streams),
            "subscribe" => self.subscribe(&v["args"], &req_id, tx),
            "ping" if streams.deaf() => Step::default(),
            "ping" => {
                streams.count_ping();
                let mut pong = json!({"op": "pong", "args": [now_ms().to_string()],
                    "conn_id": self.conn_id});
                if !req_id.is_null() {
                    pong["req_id"] = req_id;
                }
                Step::send(Message::text(pong.to_string()))
            }
            op => self.answer(op, false, "error:invalid op", &req_id),
        }
    }

    fn on_event(&mut self, e: &Event) -> Step {
        let Some((account, _, hedge)) = &self.account else {
            return Step::default();
        };
        let (topic, data) = match &e.change {
            Change::Order(o) => ("order", order(o, *hedge)),
            Change::Execution { fill, order } => ("execution", execution(fill, order, *hedge)),
            Change::Position {
                dir,
                pos,
                mark,
                leverage,
                realized,
            } => {
                let idx = position_idx(*dir, *hedge);
                let p = position(idx, *dir, *pos, *mark, *leverage, *realized, e.at_ms);
                ("position", p)
            }
            Change::Wallet { balance, .. } => ("wallet", wallet(num(*balance))),
        };
        if !self.topics.contains(topic) {
            return Step::default();
        }
        let mut step = self.push(topic, e.at_ms, data);
        if let Change::Execution { fill, .. } = &e.change {
            step.execs
                .push((*account, fill.id.to_string(), fill.client_id.clone()));
        }
        step
    }
}

fn position_idx(dir: Dir, hedge: bool) -> i64 {
    match (hedge, dir) {
        (false, _) => 0,
        (true, Dir::Long) => 1,
        (true, Dir::Short) => 2,
    }
}

/// docs/v5/websocket/private/order: the open-order fields plus `category`.
fn order(o: &FakeOrder, hedge: bool) -> Value {
    let mut v = order_json(o);
    v["category"] = json!("linear");
    v["positionIdx"] = json!(position_idx(o.dir, hedge));
    v["feeCurrency"] = json!("");
    v["closedPnl"] = json!("0");
    v
}

/// docs/v5/websocket/private/execution.
fn execution(f: &Fill, o: &FakeOrder, hedge: bool) -> Value {
    let leaves = if o.is_open() {
        o.qty - o.filled
    } else {
        rust_decimal::Decimal::ZERO
    };
    json!({"category": "linear", "symbol": SYMBOL, "isLeverage": "0",
        "orderId": o.id.to_string(), "orderLinkId": f.client_id,
        "side": if o.buy { "Buy" } else { "Sell" },
        "orderPrice": if o.market { num(f.price) } else { num(o.price) },
        "orderQty": num(o.qty), "leavesQty": num(leaves),
        "createType": if o.origin == Origin::Api { "CreateByUser" } else { "CreateByClosing" },
        "orderType": if o.market { "Market" } else { "Limit" },
        "stopOrderType": if o.is_conditional() { "Stop" } else { "UNKNOWN" },
        "execFee": num(f.fee), "execId": f.id.to_string(), "execPrice": num(f.price),
        "execQty": num(f.qty),
        "execType": if o.origin == Origin::Liquidation { "BustTrade" } else { "Trade" },
        "execValue": num(f.price * f.qty), "execTime": f.time_ms.to_string(),
        "isMaker": !o.market, "feeRate": if o.market { "0.00055" } else { "0.0002" },
        "tradeIv": "", "markIv": "", "markPrice": num(f.price), "indexPrice": "",
        "underlyingPrice": "", "blockTradeId": "",
        "closedSize": if o.opens() { "0".to_string() } else { num(f.qty) },
        "positionIdx": position_idx(o.dir, hedge), "seq": f.id})
}

/// docs/v5/websocket/private/position (`entryPrice` as the older pages name the
/// average entry price, `avgPrice` as the newer ones do).
fn position(
    idx: i64,
    dir: Dir,
    p: Pos,
    mark: rust_decimal::Decimal,
    leverage: u32,
    realized: rust_decimal::Decimal,
    at_ms: i64,
) -> Value {
    let side = match (p.size.is_zero(), dir) {
        (true, _) => "",
        (false, Dir::Long) => "Buy",
        (false, Dir::Short) => "Sell",
    };
    let upnl = match dir {
        Dir::Long => (mark - p.avg) * p.size,
        Dir::Short => (p.avg - mark) * p.size,
    };
    json!({"category": "linear", "symbol": SYMBOL, "side": side, "size": num(p.size),
        "positionIdx": idx, "tradeMode": 0, "positionValue": num(p.size * p.avg),
        "riskId": 1, "riskLimitValue": "2000000", "entryPrice": num(p.avg),
        "avgPrice": num(p.avg), "markPrice": num(mark), "leverage": leverage.to_string(),
        "positionBalance": "0", "autoAddMargin": 0, "positionIM": "0", "positionMM": "0",
        "liqPrice": "", "bustPrice": "", "tpslMode": "Full", "takeProfit": "0",
        "stopLoss": "0", "trailingStop": "0", "unrealisedPnl": num(upnl),
        "curRealisedPnl": num(realized), "cumRealisedPnl": num(realized),
        "sessionAvgPrice": "", "createdTime": at_ms.to_string(),
        "updatedTime": at_ms.to_string(), "positionStatus": "Normal",
        "adlRankIndicator": 2, "isReduceOnly": false, "seq": at_ms})
}

/// docs/v5/websocket/private/wallet: the unified account with its USDT coin.
fn wallet(balance: String) -> Value {
    json!({"accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0",
        "accountLTV": "0", "totalEquity": balance, "totalWalletBalance": balance,
        "totalMarginBalance": balance, "totalAvailableBalance": balance,
        "totalPerpUPL": "0", "totalInitialMargin": "0", "totalMaintenanceMargin": "0",
        "coin": [{"coin": "USDT", "equity": balance, "usdValue": balance,
            "walletBalance": balance, "availableToWithdraw": "", "availableToBorrow": "",
            "borrowAmount": "0", "accruedInterest": "0", "totalOrderIM": "0",
            "totalPositionIM": "0", "totalPositionMM": "0", "unrealisedPnl": "0",
            "cumRealisedPnl": "0", "bonus": "0", "collateralSwitch": true,
            "marginCollateral": true, "locked": "0", "spotHedgingQty": "0"}]})
}
