//! Trading scenarios on replayed paper prices (docs/bots.md, Replayed paper prices):
//! a server started with `PAPER_PRICES=replay:<file>` whose BTC/USDT path the test
//! writes, a user logged in through the API, and calls that remember every body
//! they received so a scenario can end by scanning them all for float artefacts.
//!
//! Replay time counts from the paper exchange's epoch, the moment its state was first
//! created: after the server was spawned (`spawned`) and before the first bot start
//! returned (`traded`). So "still before replay second S" is checked against
//! `spawned` and "replay second S has passed" is waited for from `traded`; a machine
//! too slow for a path fails the guard loudly instead of testing something else.

use std::cell::RefCell;
use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::api::{self, Browser};
use super::client::Resp;
use super::floats::float_artefact;
use super::{blitz_cmd, Options, Server};

pub const SYMBOL: &str = "BTC/USDT";

/// Seconds the path holds its opening price: time for the server, the login, the
/// configuration and the bot's entry on a loaded 2-core machine.
pub const LEAD: u64 = 20;

/// Fast ticks, rate limits far above what polling sends, and no funding: the
/// paper exchange settles it at 00:00, 08:00 and 16:00 UTC of the wall clock, so
/// a scenario's exact PnL would depend on the hour it runs (tests/paper_market.rs moves
/// the clock to a boundary and checks funding there).
const ENV: [(&str, &str); 9] = [
    ("BOT_TICK_MS", "100"),
    ("PAPER_TICK_MS", "100"),
    ("PAPER_SEED", "7"),
    ("PAPER_FUNDING_RATE", "0"),
    ("RATE_LIMITS_START", "10000/minute"),
    ("RATE_LIMITS_STOP", "10000/minute"),
    ("RATE_LIMITS_RECOVER", "10000/minute"),
    ("RATE_LIMITS_STATUS", "10000/minute"),
    ("RATE_LIMITS_GLOBAL", "10000/minute"),
];

/// `(seconds after the epoch, BTC/USDT price)` lines, in time order.
pub type Path<'a> = &'a [(u64, &'a str)];

pub struct Scenario {
    pub server: Server,
    pub browser: Browser,
    pub email: String,
    password: String,
    prices: PathBuf,
    spawned: Instant,
    traded: Option<Instant>,
    /// `(request, body)` of every answer received, for the artefact scan.
    seen: RefCell<Vec<(String, String)>>,
}

impl Scenario {
    /// A fresh server replaying `path` for BTC/USDT, with one logged-in user.
    pub fn start(path: Path<'_>) -> Scenario {
        Scenario::start_with(path, &[])
    }

    /// As `start`, with `extra` variables for the server (after `ENV`, so they
    /// win).
    pub fn start_with(path: Path<'_>, extra: &[(&str, &str)]) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let prices = dir.path().join("prices.csv");
        let mut csv = String::from("seconds,symbol,price\n");
        for (secs, price) in path {
            csv.push_str(&format!("{secs},{SYMBOL},{price}\n"));
        }
        fs::write(&prices, csv).unwrap();
        let spawned = Instant::now();
        let server = serve(dir, &env(&prices, extra));
        let email = "trader@example.com".to_string();
        let out = cli(&server, &["user", "create", "--email", &email]);
        let password = out.lines().next().unwrap_or_default().trim().to_string();
        assert!(!password.is_empty(), "no generated password in {out:?}");
        let browser = api::login(server.port, &email, &password);
        Scenario {
            server,
            browser,
            email,
            password,
            prices,
            spawned,
            traded: None,
            seen: RefCell::new(Vec::new()),
        }
    }

    pub fn uid(&self) -> i64 {
        self.browser.user_id
    }

    /// The client id `bz-<uid>-<cycle>-<purpose>` (docs/bots.md, Client order ids).
    pub fn client_id(&self, cycle: u32, purpose: &str) -> String {
        format!("bz-{}-{cycle}-{purpose}", self.uid())
    }

    /// Stops the server (TERM) and starts it again on the same directory and price
    /// file with `extra` variables added. The session is kept as it was: after a
    /// jump in time it may have expired (`login_again`).
    pub fn restart(self, extra: &[(&str, &str)]) -> Scenario {
        let Scenario {
            server,
            browser,
            email,
            password,
            prices,
            spawned,
            traded,
            seen,
        } = self;
        let (dir, _) = server.terminate();
        let server = serve(dir, &env(&prices, extra));
        Scenario {
            server,
            browser,
            email,
            password,
            prices,
            spawned,
            traded,
            seen,
        }
    }

    pub fn login_again(&mut self) {
        self.browser = api::login(self.server.port, &self.email, &self.password);
    }

    /// One request with the session; the answer is remembered for the scan.
    pub fn call(&self, method: &str, path: &str, body: &str) -> Resp {
        let r = self.browser.call(self.server.port, method, path, body);
        self.seen
            .borrow_mut()
            .push((format!("{method} {path} → {}", r.status), r.text()));
        r
    }

    pub fn get(&self, path: &str) -> Value {
        let r = self.call("GET", path, "");
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    pub fn status(&self) -> Value {
        self.get("/api/bot/status")
    }

    /// The bot's open orders as the exchange lists them.
    pub fn orders(&self) -> Vec<Value> {
        let o = self.get("/api/bot/orders");
        o["orders"]
            .as_array()
            .unwrap_or_else(|| panic!("no orders array: {o}"))
            .clone()
    }

    /// Closed cycles, newest first.
    pub fn trades(&self) -> Vec<Value> {
        self.get("/api/trades")["trades"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Events, newest first.
    pub fn events(&self) -> Vec<Value> {
        self.get("/api/bot/events?limit=500")["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn put_config(&self, body: &Value) -> Resp {
        self.call("PUT", "/api/bot/config", &body.to_string())
    }

    /// Puts a configuration that must be accepted.
    pub fn configure(&self, body: &Value) -> Value {
        let r = self.put_config(body);
        assert_eq!(r.status, 200, "PUT /api/bot/config {body}: {}", r.text());
        r.json()
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.call("POST", path, &body.to_string());
        (r.status, r.json())
    }

    /// Starts the bot (200 expected) for its first entry, at the path's opening
    /// price; this also bounds the epoch from above.
    pub fn start_bot(&mut self) {
        let (code, body) = self.post("/api/bot/start", &json!({}));
        assert_eq!(code, 200, "start: {body}");
        self.before(LEAD, "the bot's first entry");
        self.traded.get_or_insert_with(Instant::now);
    }

    /// Asserts that replay second `secs` has not come yet (we are still in the part
    /// of the path that the next step relies on).
    pub fn before(&self, secs: u64, what: &str) {
        let now = self.spawned.elapsed();
        assert!(
            now < Duration::from_secs(secs),
            "too slow for the price path: {what} happened {now:?} after the server was \
             spawned, the path moves at {secs} s"
        );
    }

    /// Waits until replay second `secs` has certainly passed. Only for moments the
    /// test cannot observe (the runner is frozen or gone); everything else polls.
    pub fn sleep_past(&self, secs: u64) {
        let since = self.traded.expect("the bot was started");
        let until = since + Duration::from_secs(secs);
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
    }

    /// Polls `cond` every 50 ms for up to `secs` seconds; on time-out the panic
    /// shows what the API said last.
    pub fn wait(&self, secs: u64, what: &str, mut cond: impl FnMut(&Scenario) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond(self) {
            if Instant::now() > deadline {
                panic!(
                    "timed out after {secs} s waiting for {what}\nstatus: {}\norders: {}\n\
                     trades: {}\nevents: {}",
                    self.call("GET", "/api/bot/status", "").text(),
                    self.call("GET", "/api/bot/orders", "").text(),
                    self.call("GET", "/api/trades", "").text(),
                    self.call("GET", "/api/bot/events?limit=15", "").text(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Checks `invariant` on every poll for `secs` seconds (e.g. "nothing re-enters"):
    /// many bot ticks pass, each one observed.
    pub fn hold(&self, secs: u64, what: &str, mut invariant: impl FnMut(&Scenario) -> bool) {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            assert!(invariant(self), "{what} no longer holds");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the `n`-th closed cycle and returns the newest.
    pub fn wait_trade(&self, n: usize, secs: u64) -> Value {
        let mut last = Vec::new();
        self.wait(secs, &format!("{n} closed cycle(s)"), |sc| {
            last = sc.trades();
            last.len() >= n
        });
        last[0].clone()
    }

    /// The bot runner's pid (exactly one).
    pub fn runner_pid(&self) -> i32 {
        let pids = self.server.runner_pids();
        assert_eq!(pids.len(), 1, "runner pids {pids:?}");
        pids[0]
    }

    /// `blitz <args> --database instance/database.db` in the server's directory;
    /// asserts success and returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(&self.server, args)
    }

    /// Reads every view once more and scans every body received in this scenario
    /// for binary-float artefacts (`0.009000000000000001`).
    pub fn finish(&self) {
        for path in [
            "/api/bot/status",
            "/api/bot/orders",
            "/api/bot/events?limit=500",
            "/api/trades",
            "/api/pnl/summary?days=7",
            "/api/bot/config",
            "/api/paper/account",
        ] {
            self.get(path);
        }
        let seen = self.seen.borrow();
        for (request, body) in seen.iter() {
            if let Some(noise) = float_artefact(body) {
                panic!("float artefact {noise:?} in {request}: {body}");
            }
        }
        assert!(seen.len() > 6, "the scan saw the scenario's answers");
    }
}

/// The variables of a scenario's server: `ENV`, the price file, and `extra`.
fn env(prices: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ENV
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push((
        "PAPER_PRICES".into(),
        format!("replay:{}", prices.display()),
    ));
    env
}

/// Starts a scenario's server in `dir` with `env`.
fn serve(dir: tempfile::TempDir, env: &[(String, String)]) -> Server {
    Server::start_in(
        dir,
        Options {
            workers: 1,
            // A runner frozen on purpose must not be killed by the master first.
            args: vec!["--timeout", "60"],
            env: env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        },
    )
}

fn cli(s: &Server, args: &[&str]) -> String {
    let out = blitz_cmd(s.dir.path())
        .args(args)
        .args(["--database", &s.database()])
        .stdin(Stdio::null())
        .output()
        .expect("run blitz");
    assert!(
        out.status.success(),
        "blitz {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A JSON number as the exact decimal it prints as.
pub fn dec(v: &Value) -> Decimal {
    assert!(v.is_number(), "not a number: {v}");
    Decimal::from_str(&v.to_string())
        .or_else(|_| Decimal::from_scientific(&v.to_string()))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// A decimal written in the test.
pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Asserts that `v` is the number `want` exactly.
pub fn assert_dec(v: &Value, want: &str, what: &str) {
    assert!(v.is_number(), "{what}: not a number: {v}");
    assert_eq!(dec(v), d(want), "{what}: {v}");
}

/// Seconds since 1970 of a time the API gives as a number or in RFC 3339.
pub fn unix(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| panic!("not whole seconds: {v}")),
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .as_second(),
        _ => panic!("not a time: {v}"),
    }
}

/// The orders of one kind (`entry`, `leg`, `take_profit`, `stop_loss`).
pub fn of_kind<'a>(orders: &'a [Value], kind: &str) -> Vec<&'a Value> {
    orders.iter().filter(|o| o["kind"] == kind).collect()
}

/// The one order of `kind` (and leg number), if exactly one rests.
pub fn one<'a>(orders: &'a [Value], kind: &str, leg: Option<u32>) -> Option<&'a Value> {
    let found: Vec<_> = of_kind(orders, kind)
        .into_iter()
        .filter(|o| leg.is_none_or(|n| o["leg"] == n))
        .collect();
    (found.len() == 1).then(|| found[0])
}

/// Asserts an order's price (`price` or `trigger_price`) and quantity.
pub fn assert_order(o: &Value, price_field: &str, price: &str, qty: &str) {
    assert_dec(&o[price_field], price, &format!("{price_field} of {o}"));
    assert_dec(&o["qty"], qty, &format!("qty of {o}"));
}

/// A fill the test knows from the path: quantity, price and fee rate.
pub struct Fill<'a> {
    pub qty: &'a str,
    pub price: &'a str,
    pub fee_rate: &'a str,
}

/// A `Fill` in one line.
pub fn fill<'a>(qty: &'a str, price: &'a str, fee_rate: &'a str) -> Fill<'a> {
    Fill {
        qty,
        price,
        fee_rate,
    }
}

/// Paper fees (docs/bots.md, Exchanges): taker for market orders and triggered
/// stops, maker for resting limits.
pub const TAKER: &str = "0.00055";
pub const MAKER: &str = "0.0002";

/// Σ fees of `fills`.
pub fn fees(fills: &[Fill<'_>]) -> Decimal {
    fills
        .iter()
        .map(|f| d(f.qty) * d(f.price) * d(f.fee_rate))
        .sum()
}

/// A long cycle's PnL: Σ exits − Σ entries − Σ fees + funding.
pub fn long_pnl(entries: &[Fill<'_>], exits: &[Fill<'_>], funding: Decimal) -> Decimal {
    let value = |fs: &[Fill<'_>]| -> Decimal { fs.iter().map(|f| d(f.qty) * d(f.price)).sum() };
    value(exits) - value(entries) - fees(entries) - fees(exits) + funding
}
