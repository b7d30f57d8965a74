//! The real-exchange adapters and idempotent orders, against local fakes of Bybit v5 and
//! BingX swap that check every request's signature, timestamp and parameters as
//! the exchanges document them (tests/common/fake_*.rs). The real binary trades
//! a full cycle on each, re-adopts its orders after a runner kill and a service
//! restart, and reports exchange errors in the bot's `last_error`.

mod common;

// The adapters themselves, without the server (tests/exchanges/*.rs).
#[path = "exchanges/bingx_adapter.rs"]
mod bingx_adapter;
#[path = "exchanges/bybit_adapter.rs"]
mod bybit_adapter;
#[path = "exchanges/orders.rs"]
mod orders;

use std::sync::MutexGuard;
use std::time::Duration;

use common::bots::{user, wait_status, User, CALM};
use common::fake_bingx::FakeBingx;
use common::fake_book::Book;
use common::fake_bybit::FakeBybit;
use common::{wait_for, Options, Server};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{dec, Decimal};
use serde_json::{json, Value};

const KEY: &str = "tEsTkEy0123abcd";
const SECRET: &str = "s3cr3t-for-the-fake";

/// One fake exchange and how the bot configuration and the server name it.
struct Venue {
    name: &'static str,
    url_var: &'static str,
    create_path: &'static str,
    min_qty_error: (i64, &'static str),
    bybit: Option<FakeBybit>,
    bingx: Option<FakeBingx>,
}

impl Venue {
    fn bybit() -> Venue {
        Venue {
            name: "bybit",
            url_var: "BYBIT_BASE_URL",
            create_path: "/v5/order/create",
            min_qty_error: (170136, "Order quantity lower than the minimum."),
            bybit: Some(FakeBybit::start(KEY, SECRET)),
            bingx: None,
        }
    }

    fn bingx() -> Venue {
        Venue {
            name: "bingx",
            url_var: "BINGX_BASE_URL",
            create_path: "/openApi/swap/v2/trade/order",
            min_qty_error: (101400, "order amount is below the minimum"),
            bybit: None,
            bingx: Some(FakeBingx::start(KEY, SECRET)),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        match (&self.bybit, &self.bingx) {
            (Some(f), _) => f.book(),
            (_, Some(f)) => f.book(),
            _ => unreachable!(),
        }
    }

    fn url(&self) -> String {
        match (&self.bybit, &self.bingx) {
            (Some(f), _) => f.url(),
            (_, Some(f)) => f.url(),
            _ => unreachable!(),
        }
    }

    fn inject(&self, path: &str, code: i64, msg: &str) {
        match (&self.bybit, &self.bingx) {
            (Some(f), _) => f.inject(path, code, msg),
            (_, Some(f)) => f.inject(path, code, msg),
            _ => unreachable!(),
        }
    }

    fn set_down(&self, down: bool) {
        match (&self.bybit, &self.bingx) {
            (Some(f), _) => f.http.set_down(down),
            (_, Some(f)) => f.http.set_down(down),
            _ => unreachable!(),
        }
    }

    fn server(&self, url: &str) -> Server {
        Server::with(self.options(url))
    }

    fn options<'a>(&self, url: &'a str) -> Options<'a> {
        let mut env = CALM.to_vec();
        env.push((self.url_var, url));
        Options {
            workers: 2,
            env,
            ..Options::default()
        }
    }

    /// Requests the fake refused for a bad key, signature, timestamp or
    /// parameter — none, when the adapter follows the documentation.
    fn assert_nothing_refused(&self) {
        let b = self.book();
        assert!(
            b.refused.is_empty(),
            "{}: refused {:?}",
            self.name,
            b.refused
        );
        assert_eq!(b.duplicates, 0, "{}: duplicate client ids", self.name);
    }
}

fn post(s: &Server, u: &User, path: &str, body: Value) -> (u16, Value) {
    let r = u.call(s, "POST", path, &body.to_string());
    (r.status, r.json())
}

fn configure(s: &Server, u: &User, exchange: &str, key: &str) {
    let body = json!({"exchange": exchange, "api_key": key, "api_secret": SECRET});
    let r = u.call(s, "PUT", "/api/bot/config", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let c = r.json();
    assert_eq!(c["api_key"], format!("***{}", &key[key.len() - 4..]));
    assert_eq!(c["has_api_secret"], true);
}

/// Waits until the cycle's entry filled and its two legs and take-profit rest.
fn wait_ladder(v: &Venue, uid: i64, cycle: i64) {
    let tp = format!("bz-{uid}-{cycle}-tp1");
    wait_for(Duration::from_secs(20), "legs and take-profit", || {
        let b = v.book();
        b.open_count() == 3 && b.order(&tp).is_some_and(|o| o.is_open())
    });
}

fn full_cycle(v: &Venue) {
    let url = v.url();
    let s = v.server(&url);
    let u = user(&s, "cycle@example.com", false);
    configure(&s, &u, v.name, KEY);
    let (code, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(code, 200, "{body}");
    wait_ladder(v, u.id, 1);
    let entry = format!("bz-{}-1-e", u.id);
    let tp_price = {
        let b = v.book();
        let e = b.order(&entry).expect("entry placed").clone();
        assert_eq!(
            (e.status, e.market, e.filled),
            ("filled", true, dec!(0.001))
        );
        for leg in 1..=2 {
            let o = b
                .order(&format!("bz-{}-1-l{leg}", u.id))
                .expect("leg placed");
            assert!(o.is_open() && !o.market && o.price < e.avg, "{o:?}");
        }
        b.order(&format!("bz-{}-1-tp1", u.id)).unwrap().price
    };
    if v.bingx.is_some() {
        // Only the long bot's side: a short position the user holds keeps its own.
        assert_eq!(v.book().leverage_sides, ["LONG"]);
    }
    let st = wait_status(&s, &u, "running");
    assert_eq!(st["exchange"], v.name);
    assert_eq!(st["position"]["size"], 0.001, "{st}");
    assert_eq!(st["open_orders"], 3, "{st}");

    // The take-profit fills: the cycle closes with a trade net of the fees.
    v.book().set_price(tp_price + dec!(50));
    let mut trades = Value::Null;
    wait_for(Duration::from_secs(20), "a recorded trade", || {
        trades = u.get(&s, "/api/trades");
        !trades["trades"].as_array().unwrap().is_empty()
    });
    let t = trades["trades"][0].clone();
    let (fees_paid, entry_avg) = {
        let b = v.book();
        let fees: Decimal = b.fills.iter().map(|f| f.fee).sum();
        (fees, b.order(&entry).unwrap().avg)
    };
    assert_eq!(t["cycle"], 1, "{t}");
    assert_eq!(t["size"], 0.001, "{t}");
    assert_eq!(t["avg_entry"].as_f64(), entry_avg.to_f64(), "{t}");
    assert_eq!(t["exit_price"].as_f64(), tp_price.to_f64(), "{t}");
    let fees = t["fees"].as_f64().unwrap();
    let fees_paid = fees_paid.to_f64().unwrap();
    assert!(
        (fees - fees_paid).abs() < 1e-9,
        "fees {fees} vs {fees_paid}"
    );
    let pnl = ((tp_price - entry_avg) * dec!(0.001)).to_f64().unwrap() - fees_paid;
    assert!((t["pnl"].as_f64().unwrap() - pnl).abs() < 1e-9, "{t}");
    // Its leftover legs are cancelled and, with repeat, cycle 2 starts.
    wait_ladder(v, u.id, 2);
    assert!(v
        .book()
        .orders
        .iter()
        .filter(|o| o.client_id.starts_with(&format!("bz-{}-1-l", u.id)))
        .all(|o| o.status == "cancelled"));
    // The exchange clock runs 15 s ahead: every signed request was accepted only
    // because the adapter synced with the server-time endpoint.
    v.assert_nothing_refused();
    // Stop closing the position: a reduce-only market order, a second trade.
    let (code, body) = post(&s, &u, "/api/bot/stop", json!({"mode": "close_position"}));
    assert_eq!(code, 200, "{body}");
    let b = v.book();
    assert_eq!(b.open_count(), 0, "stop cancels the bot's orders");
    assert!(
        b.long.size.is_zero() && b.short.size.is_zero(),
        "position closed"
    );
    let close = b.order(&format!("bz-{}-2-x1", u.id)).expect("close order");
    assert!(
        close.market && !close.opens() && close.status == "filled",
        "{close:?}"
    );
    drop(b);
    let trades = u.get(&s, "/api/trades");
    assert_eq!(
        trades["trades"].as_array().map(Vec::len),
        Some(2),
        "{trades}"
    );
    v.assert_nothing_refused();
}

#[test]
fn bybit_runs_a_full_cycle() {
    full_cycle(&Venue::bybit());
}

#[test]
fn bingx_runs_a_full_cycle() {
    full_cycle(&Venue::bingx());
}

fn kill_runner(s: &Server) -> Vec<i32> {
    let old = s.runner_pids();
    assert_eq!(old.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    old
}

fn resumed(s: &Server, u: &User) -> usize {
    u.events(s).iter().filter(|k| *k == "resumed").count()
}

fn restart_re_adopts(v: &Venue) {
    let url = v.url();
    let s = v.server(&url);
    let u = user(&s, "restart@example.com", false);
    configure(&s, &u, v.name, KEY);
    // The entry is placed but its answer is lost: the adapter repeats the same
    // client id, the exchange refuses the repeat as a duplicate, and the order is
    // read back instead of placed twice.
    v.book().lose_reply = Some(format!("POST {}", v.create_path));
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    wait_ladder(v, u.id, 1);
    let placed = v.book().accepted.clone();
    assert_eq!(placed.len(), 4, "{placed:?}");
    assert_eq!(placed[0], format!("bz-{}-1-e", u.id));
    assert_eq!(
        std::mem::take(&mut v.book().duplicates),
        1,
        "the lost placement was repeated once"
    );

    let old = kill_runner(&s);
    wait_for(Duration::from_secs(20), "resumed after kill -9", || {
        resumed(&s, &u) == 1
    });
    assert_ne!(s.runner_pids(), old);
    assert_eq!(wait_status(&s, &u, "running")["open_orders"], 3);
    assert_eq!(v.book().accepted, placed, "nothing placed again");

    let (dir, _) = s.terminate();
    let s = Server::start_in(dir, v.options(&url));
    wait_for(Duration::from_secs(20), "resumed after restart", || {
        resumed(&s, &u) == 2
    });
    let st = wait_status(&s, &u, "running");
    assert_eq!(
        (st["open_orders"].as_i64(), st["cycle"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(v.book().accepted, placed, "nothing placed again");
    // The adopted orders are still the bot's: a leg fill moves the take-profit.
    let leg = v.book().order(&format!("bz-{}-1-l1", u.id)).unwrap().price;
    v.book().set_price(leg);
    let tp2 = format!("bz-{}-1-tp2", u.id);
    wait_for(
        Duration::from_secs(20),
        "take-profit follows the average",
        || v.book().order(&tp2).is_some_and(|o| o.is_open()),
    );
    let b = v.book();
    assert_eq!(
        b.order(&format!("bz-{}-1-tp1", u.id)).unwrap().status,
        "cancelled"
    );
    let mut ids = b.accepted.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), b.accepted.len(), "every client id placed once");
    drop(b);
    v.assert_nothing_refused();
}

#[test]
fn bybit_restart_re_adopts_orders() {
    restart_re_adopts(&Venue::bybit());
}

#[test]
fn bingx_restart_re_adopts_orders() {
    restart_re_adopts(&Venue::bingx());
}

/// Starts the bot and expects it to fail with `status` and a message (also the
/// bot's `last_error`) containing `says`.
fn start_fails(s: &Server, u: &User, code: u16, status: &str, says: &str) {
    let (c, body) = post(s, u, "/api/bot/start", json!({}));
    assert_eq!((c, body["status"].as_str()), (code, Some(status)), "{body}");
    let msg = body["message"].as_str().unwrap_or("");
    assert!(msg.contains(says), "{msg:?} should say {says:?}");
    let st = u.status(s);
    assert_eq!(st["status"], "error", "{st}");
    assert!(
        st["last_error"].as_str().unwrap_or("").contains(says),
        "{st}"
    );
}

fn errors_are_reported(v: &Venue) {
    let url = v.url();
    let s = v.server(&url);
    let u = user(&s, "errors@example.com", false);

    // A key the exchange rejects is refused when it is saved (the key check).
    let wrong = json!({"exchange": v.name, "api_key": "not-the-right-key", "api_secret": SECRET});
    let r = u.call(&s, "PUT", "/api/bot/config", &wrong.to_string());
    let said = r.json()["fields"]["api_key"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(said.contains("rejected this API key"), "{said}");
    assert!(!v.book().refused.is_empty(), "the fake refused the key");
    v.book().refused.clear();
    configure(&s, &u, v.name, KEY);

    v.book().balance = dec!(1);
    start_fails(&s, &u, 400, "invalid_config", "insufficient balance");
    v.book().balance = dec!(10_000);

    let (code, msg) = v.min_qty_error;
    v.inject(v.create_path, code, msg);
    start_fails(&s, &u, 400, "invalid_config", "below the exchange minimum");

    v.set_down(true);
    start_fails(&s, &u, 502, "error", "exchange unreachable");
    v.set_down(false);

    // Rate limited twice: the calls are retried and the start succeeds.
    v.book().rate_limit_next = 2;
    let (c, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(c, 200, "{body}");
    assert_eq!(v.book().rate_limited, 2);
    wait_ladder(v, u.id, 1);
    assert_eq!(wait_status(&s, &u, "running")["last_error"], Value::Null);

    // An outage while running: the bot keeps running, says why, and recovers.
    v.set_down(true);
    wait_for(
        Duration::from_secs(20),
        "last_error names the outage",
        || {
            let st = u.status(&s);
            st["status"] == "running"
                && st["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("exchange unreachable"))
        },
    );
    v.set_down(false);
    wait_for(Duration::from_secs(20), "last_error cleared", || {
        u.status(&s)["last_error"].is_null()
    });
    assert_eq!(v.book().open_count(), 3);
    v.assert_nothing_refused();
}

#[test]
fn bybit_errors_reach_last_error() {
    errors_are_reported(&Venue::bybit());
}

#[test]
fn bingx_errors_reach_last_error() {
    errors_are_reported(&Venue::bingx());
}

/// Isolation: a real exchange that accepts connections and never answers holds only
/// its own threads. Six Bybit bots keep failing to resume against it (each try
/// waits out the timeout) while a paper bot on a fast, volatile market must still
/// trade whole cycles.
#[test]
fn a_silent_exchange_does_not_stall_other_bots() {
    // Accepted by the kernel, never read: every request waits for its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let env = vec![
        ("BYBIT_BASE_URL", url.as_str()),
        ("EXCHANGE_TIMEOUT_MS", "3000"),
        ("BOT_TICK_MS", "50"),
        ("PAPER_TICK_MS", "20"),
        ("PAPER_VOLATILITY", "0.004"),
        ("PAPER_SEED", "11"),
        ("RATE_LIMITS_START", "10000/minute"),
        ("RATE_LIMITS_STATUS", "10000/minute"),
        ("RATE_LIMITS_GLOBAL", "10000/minute"),
    ];
    // The keys are saved (checked) while Bybit answers; the restart is silent.
    let answering = FakeBybit::start(KEY, SECRET);
    let answering_url = answering.url();
    let mut first = env.clone();
    first[0] = ("BYBIT_BASE_URL", answering_url.as_str());
    let s = Server::with(Options {
        workers: 2,
        env: first,
        ..Options::default()
    });
    let silent_users: Vec<User> = (0..6)
        .map(|i| {
            let u = user(&s, &format!("silent{i}@example.com"), false);
            configure(&s, &u, "bybit", KEY);
            u
        })
        .collect();
    // They were running when the service stopped: the restart resumes them.
    let (dir, _) = s.terminate();
    let db = rusqlite::Connection::open(dir.path().join("instance/database.db")).unwrap();
    for u in &silent_users {
        db.execute(
            "UPDATE user_bots SET cycle = 1, updated_at = 0, desired_state = 'running',
                 status = 'running'
             WHERE user_id = ?1",
            [u.id],
        )
        .unwrap();
    }
    drop(db);
    let s = Server::start_in(
        dir,
        Options {
            workers: 2,
            env,
            ..Options::default()
        },
    );
    let trader = user(&s, "paper@example.com", false);
    let (code, body) = post(&s, &trader, "/api/bot/start", json!({}));
    assert_eq!(code, 200, "{body}");
    // A paper cycle takes about a second here; six resumes stuck for 3 s x 3
    // attempts each on shared threads would hold it back for many seconds.
    let paper_trades = || {
        common::bots::count(
            &s,
            &format!("SELECT COUNT(*) FROM trades WHERE user_id = {}", trader.id),
        )
    };
    wait_for(
        Duration::from_secs(6),
        "paper cycles while Bybit is silent",
        || paper_trades() >= 2,
    );
    // Meanwhile the Bybit resumes were still waiting on the silent exchange:
    // their first attempts end only later.
    assert!(!s.log().contains("bot resume failed; retrying"));
    wait_for(Duration::from_secs(40), "Bybit resumes failed", || {
        s.log().contains("bot resume failed; retrying")
    });
    drop(silent);
}
