//! BingX perpetual-swap user data stream, as documented
//! (bingx-api.github.io/docs, USDT-M Perp Futures, "Websocket Account Data";
//! summarised at skills.sh/bingx-api/api-ai-skills/bingx-swap-ws-account; field
//! names as the maintained client github.com/JKorf/BingX.Net reads them,
//! BingXFuturesOrderUpdate.cs and BingXFuturesBalanceUpdate.cs):
//! - a listen key from `POST /openApi/user/auth/userDataStream` (API key header,
//!   no signature), valid 60 minutes, extended by `PUT` and deleted by `DELETE`
//!   with `listenKey` (HTTP 200, or 404 for an unknown key);
//! - `wss://…/swap-market?listenKey=KEY`: every event is pushed without a
//!   subscription, each frame gzip-compressed binary; the server sends `Ping`
//!   every 5 s and expects `Pong`;
//! - `ORDER_TRADE_UPDATE` (`o`: `s`, `c`, `i`, `S`, `o`, `q`, `p`, `sp`, `ap`,
//!   `x`, `X`, `N`, `n`, `T`, `wt`, `ps`, `rp`, `z`, and for a trade `l`, `L`,
//!   `t`), `ACCOUNT_UPDATE` (`a`: `m`, `B` [`a`, `wb`, `cw`, `bc`], `P` [`s`,
//!   `pa`, `ep`, `up`, `mt`, `iw`, `ps`, `cr`]) and `listenKeyExpired` (then the
//!   connection is closed).
//!
//! A connection with an unknown or expired key is refused at the upgrade (HTTP
//! 401). The fake does not close a client that never answers `Ping`; it counts
//! the `Pong`s (`pongs`) so a test can check the client answers.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::Message;

use super::fake_bingx::SYMBOL;
use super::fake_bingx_orders::order_type;
use super::fake_book::{num, Dir, FakeOrder, Fill, TriggerBy};
use super::fake_http::{hmac_hex, now_ms};
use super::fake_outbox::{Change, Event, Input};
use super::fake_private_ws::{Protocol, Step, Streams};

/// The documented lifetime of a listen key.
pub const LISTEN_KEY_TTL_MS: i64 = 60 * 60 * 1000;
pub const PING_MS: i64 = 5_000;

/// The fake's listen keys: key → (account, expiry in wall-clock ms).
pub struct ListenKeys {
    keys: Mutex<HashMap<String, (usize, i64)>>,
    ttl_ms: AtomicI64,
    ping_ms: AtomicI64,
    next: AtomicU64,
}

impl Default for ListenKeys {
    fn default() -> ListenKeys {
        ListenKeys {
            keys: Mutex::new(HashMap::new()),
            ttl_ms: AtomicI64::new(LISTEN_KEY_TTL_MS),
            ping_ms: AtomicI64::new(PING_MS),
            next: AtomicU64::new(1),
        }
    }
}

impl ListenKeys {
    pub fn set_ttl_ms(&self, ms: i64) {
        self.ttl_ms.store(ms, Ordering::SeqCst);
    }

    pub fn set_ping_ms(&self, ms: i64) {
        self.ping_ms.store(ms, Ordering::SeqCst);
    }

    /// A new key for `account` (64 hex characters, as BingX's).
    pub fn create(&self, account: usize) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let key = hmac_hex("listen-key", &format!("{account}-{n}-{}", now_ms()));
        let expires = now_ms() + self.ttl_ms.load(Ordering::SeqCst);
        self.keys
            .lock()
            .unwrap()
            .insert(key.clone(), (account, expires));
        key
    }

    /// Extends a live key by the lifetime; false when it is unknown or expired.
    pub fn extend(&self, key: &str) -> bool {
        let ttl = self.ttl_ms.load(Ordering::SeqCst);
        let mut keys = self.keys.lock().unwrap();
        match keys.get_mut(key) {
            Some((_, exp)) if *exp > now_ms() => {
                *exp = now_ms() + ttl;
                true
            }
            _ => false,
        }
    }

    pub fn delete(&self, key: &str) -> bool {
        self.keys.lock().unwrap().remove(key).is_some()
    }

    /// The account and expiry of a key.
    pub fn get(&self, key: &str) -> Option<(usize, i64)> {
        self.keys.lock().unwrap().get(key).copied()
    }

    /// Every key expires now.
    pub fn expire_all(&self) {
        let now = now_ms();
        for (_, exp) in self.keys.lock().unwrap().values_mut() {
            *exp = now;
        }
    }

    fn ping_ms(&self) -> i64 {
        self.ping_ms.load(Ordering::SeqCst)
    }
}

/// BingX's swap stream frames: gzip-compressed binary.
pub fn gzip(text: &str) -> Message {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(text.as_bytes());
    Message::binary(e.finish().unwrap_or_default())
}

pub struct BingxPrivate {
    keys: Arc<ListenKeys>,
    key: String,
    account: usize,
    next_ping: i64,
}

impl BingxPrivate {
    pub fn new(keys: Arc<ListenKeys>, key: &str, account: usize) -> BingxPrivate {
        let next_ping = now_ms() + keys.ping_ms();
        BingxPrivate {
            keys,
            key: key.into(),
            account,
            next_ping,
        }
    }

    fn expired(&self) -> Step {
        let v = json!({"e": "listenKeyExpired", "E": now_ms(), "listenKey": self.key});
        Step {
            out: vec![gzip(&v.to_string())],
            close: true,
            ..Step::default()
        }
    }

    fn expiry(&self) -> i64 {
        self.keys.get(&self.key).map_or(0, |(_, e)| e)
    }
}

impl Protocol for BingxPrivate {
    fn on_text(&mut self, text: &str, _tx: &Sender<Input>, streams: &Streams) -> Step {
        match text {
            "Pong" => {
                streams.count_pong();
                Step::default()
            }
            "Ping" if !streams.deaf() => {
                streams.count_ping();
                Step::send(gzip("Pong"))
            }
            _ => Step::default(),
        }
    }

    fn on_event(&mut self, e: &Event) -> Step {
        let now = now_ms();
        let v = match &e.change {
            // A fill's order change goes out with its trade.
            Change::Order(o) if matches!(o.status, "filled" | "partial") => return Step::default(),
            Change::Order(o) => {
                let x = if o.is_open() { "NEW" } else { "CANCELED" };
                order_update(o, x, None, now)
            }
            Change::Execution { fill, order } => order_update(order, "TRADE", Some(fill), now),
            Change::Position {
                dir,
                pos,
                mark,
                realized,
                ..
            } => {
                let upnl = match dir {
                    Dir::Long => (*mark - pos.avg) * pos.size,
                    Dir::Short => (pos.avg - *mark) * pos.size,
                };
                let p = json!({"s": SYMBOL, "pa": num(pos.size), "ep": num(pos.avg),
                    "up": num(upnl), "mt": "cross", "iw": "0",
                    "ps": if *dir == Dir::Long { "LONG" } else { "SHORT" },
                    "cr": num(*realized)});
                json!({"e": "ACCOUNT_UPDATE", "E": now, "a": {"m": "ORDER", "B": [], "P": [p]}})
            }
            Change::Wallet { balance, delta } => {
                let b = json!({"a": "USDT", "wb": num(*balance), "cw": num(*balance),
                    "bc": num(*delta)});
                json!({"e": "ACCOUNT_UPDATE", "E": now, "a": {"m": "ORDER", "B": [b], "P": []}})
            }
        };
        let mut step = Step::send(gzip(&v.to_string()));
        if let Change::Execution { fill, .. } = &e.change {
            step.execs
                .push((self.account, fill.id.to_string(), fill.client_id.clone()));
        }
        step
    }

    fn wait(&self) -> Duration {
        let next = self.next_ping.min(self.expiry());
        Duration::from_millis((next - now_ms()).clamp(1, 3_600_000) as u64)
    }

    fn on_tick(&mut self) -> Step {
        let now = now_ms();
        if now >= self.expiry() {
            return self.expired();
        }
        if now >= self.next_ping {
            self.next_ping = now + self.keys.ping_ms();
            return Step::send(gzip("Ping"));
        }
        Step::default()
    }

    fn on_expire(&mut self) -> Step {
        self.expired()
    }
}

/// One `ORDER_TRADE_UPDATE`; `fill` for a trade (`x` "TRADE").
fn order_update(o: &FakeOrder, x: &str, fill: Option<&Fill>, now: i64) -> Value {
    let status = match o.status {
        "open" | "untriggered" => "NEW",
        "partial" => "PARTIALLY_FILLED",
        "filled" => "FILLED",
        _ => "CANCELED",
    };
    let working = match o.trigger {
        Some(t) if t.by == TriggerBy::Last => "CONTRACT_PRICE",
        _ => "MARK_PRICE",
    };
    // The client id as `c` (BingX's page) and `C` (what BingX.Net reads).
    let mut v = json!({"s": SYMBOL, "c": o.client_id, "C": o.client_id, "i": o.id,
        "S": if o.buy { "BUY" } else { "SELL" }, "o": order_type(o),
        "q": num(o.qty), "p": if o.market { "0".to_string() } else { num(o.price) },
        "sp": o.trigger.map_or("0".to_string(), |t| num(t.price)),
        "ap": num(o.avg), "x": x, "X": status, "N": "USDT", "n": num(-o.fee),
        "T": o.updated_ms, "wt": working,
        "ps": if o.dir == Dir::Long { "LONG" } else { "SHORT" },
        "rp": "0", "z": num(o.filled)});
    if let Some(f) = fill {
        v["l"] = json!(num(f.qty));
        v["L"] = json!(num(f.price));
        v["t"] = json!(f.id.to_string());
        v["n"] = json!(num(-f.fee));
        v["rp"] = json!(num(f.realized));
    }
    json!({"e": "ORDER_TRADE_UPDATE", "E": now, "o": v})
}
