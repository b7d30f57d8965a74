//! The exchange-scale benchmark (issue 22, CONTRACT C16): N Bybit bots, each of its
//! own user on its own fake account, trade ladders against the local Bybit fake
//! (tests/common/fake_bybit.rs, which enforces Bybit's per-IP limit) while the
//! price swings through their legs and take-profits. Ignored by default (minutes);
//! run it through `tests/bench/exchange-scale.sh [bots] [seconds]`, i.e.
//! `BENCH_BOTS=N BENCH_SECONDS=S cargo test --release --test exchange_scale
//! bench_exchange_scale -- --ignored --nocapture --exact`.
//!
//! It prints on its last line
//! `bots=N ip_limit_exceeded=K fill_to_engine_p99_ms=X rest_requests_per_5s_max=Y runner_cpu=Z runner_rss_mb=W`:
//! K and Y are the fake's counters; X the p99 of the server's histogram
//! `blitz_exchange_fill_to_engine_seconds{exchange="bybit"}` (or, on a build
//! without it, of the ledger cross-check below); Z the bot runner's CPU time over
//! the price run ÷ its wall time, W its resident memory at the end. A line before it
//! cross-checks X from both ends: each fill's time in the bot's ledger
//! (`bot_fills.time_ms`, when the engine first read it) minus the fake's time of
//! the same execution. It asserts only that the setup worked (every bot running,
//! fills happened): the figures are for the reader.

mod common;
#[path = "common/scale.rs"]
mod scale;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::api::call;
use common::fake_bybit::FakeBybit;
use common::fake_http::now_ms;
use common::{wait_for, Options, Server};
use serde_json::{json, Value};

use scale::Wave;

/// The fake's opening price (fake_book.rs) and where the wave turns.
const BASE: f64 = 65_000.0;
const LOW: f64 = BASE * (1.0 - 0.012);
const HIGH: f64 = BASE * (1.0 + 0.004);
/// The users' rate limits, raised: a thousand users starting bots within a minute
/// is the benchmark's setup, not an abuse to refuse.
const RAISED_LIMITS: [&str; 5] = [
    "RATE_LIMITS_START",
    "RATE_LIMITS_STOP",
    "RATE_LIMITS_RECOVER",
    "RATE_LIMITS_STATUS",
    "RATE_LIMITS_GLOBAL",
];
/// How often a start refused for the server's own request budget is sent again
/// (2 s apart).
const START_RETRIES: usize = 5;
/// How often the price moves.
const STEP: Duration = Duration::from_millis(250);

fn env_number(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

/// The benchmark's knobs, from the environment (the script passes the first two).
struct Plan {
    bots: usize,
    run: Duration,
    /// One round trip of the wave: three per run by default, so every bot closes
    /// cycles repeatedly, within 20–120 s.
    swing: Duration,
    /// Starts per second: each costs the fake about fifteen requests (mode
    /// check, leverage, entry, ladder, take-profit, the lookups of a first
    /// step, the polling until its stream is up), so 3 a second is half the
    /// runner's 80 requests a second; and a thousand users do not all press
    /// start in the same second.
    start_rate: f64,
}

impl Plan {
    fn from_env() -> Plan {
        let bots = env_number("BENCH_BOTS", 1000.0) as usize;
        let secs = env_number("BENCH_SECONDS", 300.0);
        let swing = env_number("BENCH_SWING_S", (secs / 3.0).clamp(20.0, 120.0));
        assert!(
            bots >= 1 && secs >= 1.0 && swing >= 1.0,
            "bad benchmark knobs"
        );
        Plan {
            bots,
            run: Duration::from_secs_f64(secs),
            swing: Duration::from_secs_f64(swing),
            start_rate: env_number("BENCH_START_RATE", 3.0),
        }
    }
}

/// Account `i`'s API key and secret on the fake.
fn key(i: usize) -> (String, String) {
    (format!("bench{i:05}key"), format!("bench-secret-{i:05}"))
}

/// A user of the benchmark: id and bearer token.
struct Trader {
    token: String,
}

impl Trader {
    fn call(&self, s: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let r = call(s.port, method, path, &[("Authorization", &auth)], &text);
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }
}

/// `n` verified users with one API token each, written in one transaction with
/// the product's own store and token functions (as `blitz loadtest` provisions
/// its users) before the server starts: one password hash serves them all.
fn seed_users(db: &std::path::Path, n: usize) -> Vec<Trader> {
    use blitz::auth::{password, token};
    use blitz::store::{self, tokens, users};
    let (conn, _) = store::open_migrated(db).expect("migrate the bench database");
    let hash = password::hash(&token::random_password()).expect("hash a password");
    let tx = conn.transaction().unwrap();
    let now = store::now();
    let traders = (0..n)
        .map(|i| {
            let email = format!("bench-{i}@bench.invalid");
            let new = users::NewUser {
                email: &email,
                password_hash: &hash,
                is_admin: false,
                verification: None,
            };
            let id = users::create(&tx, &new, now).expect("create a user");
            let t = token::new_api_token();
            tokens::create(&tx, &token::hash(&t), "bench", id, now).expect("create a token");
            Trader { token: t }
        })
        .collect();
    tx.commit().unwrap();
    traders
}

/// The bot every user runs: BTC/USDT long, 10×, an entry and two legs of 0.001 BTC
/// each, take-profit 2 % of margin (0.2 % of price), repeating. The legs' gap
/// varies over five values (0.20 … 0.40 %), so fills come in several waves rather
/// than all at one price.
fn bot_body(i: usize, account: i64) -> Value {
    let gap = 0.20 + 0.05 * (i % 5) as f64;
    json!({"name": "bench", "exchange": "bybit", "exchange_account_id": account,
           "symbol": "BTC/USDT", "side": "long", "leverage": 10,
           "take_profit": 2, "stop_loss": 0, "rounds": 3,
           "grids": [{"amount": 10, "gap": 0}, {"amount": 10, "gap": gap},
                     {"amount": 10, "gap": gap}],
           "repeat": true, "cooldown": 0})
}

/// Creates each user's exchange account (the product seals its keys and checks
/// them with the fake) and bot; the bot ids, in order.
fn create_bots(s: &Server, traders: &[Trader]) -> Vec<i64> {
    // Each save costs the fake one key check: stay well inside its IP window.
    scale::paced(traders.len(), 20.0, 8, |i| {
        let t = &traders[i];
        let (k, secret) = key(i);
        let body = json!({"name": "main", "exchange": "bybit", "api_key": k,
                          "api_secret": secret});
        let (code, acc) = t.call(s, "POST", "/api/exchange-accounts", &body);
        assert_eq!(code, 201, "account {i}: {acc}");
        let (code, bot) = t.call(
            s,
            "POST",
            "/api/bots",
            &bot_body(i, acc["id"].as_i64().unwrap()),
        );
        assert_eq!(code, 201, "bot {i}: {bot}");
        bot["id"].as_i64().expect("bot id")
    })
}

/// Starts every bot at `rate` per second; answers how many starts were refused.
/// 504 means the runner is still at it (it finishes the start). A start refused
/// as rate limited is sent again a few times; a refusal is a failed setup unless
/// it is that, or the fake has banned the IP by then: a server that cannot get
/// its bots started within the exchange's limit is the benchmark's finding, not
/// a broken harness.
fn start_bots(s: &Server, f: &Fake, traders: &[Trader], ids: &[i64], rate: f64) -> usize {
    let retried = std::sync::atomic::AtomicUsize::new(0);
    let codes = scale::paced(ids.len(), rate, 64, |i| {
        let path = format!("/api/bots/{}/start", ids[i]);
        let mut answer = traders[i].call(s, "POST", &path, &Value::Null);
        // "Rate limited by the exchange": the server's own request budget had no
        // turn in time; a user presses start again a little later.
        for _ in 0..START_RETRIES {
            if !(answer.0 == 502 && answer.1["message"] == "rate limited by the exchange") {
                break;
            }
            retried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(2));
            answer = traders[i].call(s, "POST", &path, &Value::Null);
        }
        let (code, body) = answer;
        // Still refused after the retries, or refused after an IP ban: the
        // server could not start it, which the summary counts.
        let limited = code == 502 && body["message"] == "rate limited by the exchange";
        let banned = f.ip_limit_exceeded() > 0;
        assert!(
            code == 200 || code == 504 || banned || limited,
            "start bot {}: {code} {body}",
            ids[i]
        );
        code
    });
    let late = codes.iter().filter(|&&c| c == 504).count();
    let refused = codes.iter().filter(|&&c| c != 200 && c != 504).count();
    println!(
        "  starts: {} done, {late} still running after 10 s, {refused} refused (rate limited \
         after {START_RETRIES} retries, or the fake banned the IP); {} retries after \
         \"rate limited by the exchange\"",
        ids.len() - late - refused,
        retried.into_inner()
    );
    refused
}

/// Waits until every started bot runs. After a ban only a moment: whatever runs
/// by then is what the server got going.
fn wait_running(s: &Server, plan: &Plan, refused: usize) -> usize {
    if refused == 0 {
        let wait = Duration::from_secs(120) + Duration::from_millis(200 * plan.bots as u64);
        wait_for(wait, "every bot running", || running_bots(s) == plan.bots);
    }
    running_bots(s)
}

fn running_bots(s: &Server) -> usize {
    let db = rusqlite::Connection::open(s.path("instance/database.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM user_bots WHERE exchange = 'bybit' AND status = 'running'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

/// Fills the bots recorded: (client id, time the engine read it, ms).
fn ledger_fills(s: &Server) -> Vec<(String, i64)> {
    let db = rusqlite::Connection::open(s.path("instance/database.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut q = db
        .prepare("SELECT client_id, time_ms FROM bot_fills WHERE seq = 0")
        .unwrap();
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

/// Waits (at most a minute) until every account holds its bot's two legs and
/// take-profit, so the first swing meets every ladder; says how many did if not.
fn wait_ladders(f: &Fake, bots: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = f.ladders_ready();
    while ready < bots && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        ready = f.ladders_ready();
    }
    if ready < bots {
        println!("  only {ready} of {bots} ladders resting after a minute; running anyway");
    }
}

/// Waits until every account's private stream is connected (Bybit allows 500
/// WebSocket connects per 5 minutes per IP, and the server paces itself at 400:
/// a thousand accounts take more than five minutes to be all live), at most
/// 12 minutes. The price run measures the streams, not the start-up.
fn wait_streams(s: &Server, bots: usize) -> usize {
    let connected = || {
        let scrape = s.get("/metrics").text();
        scrape
            .lines()
            .find(|l| {
                l.starts_with("blitz_exchange_streams{")
                    && l.contains("exchange=\"bybit\"")
                    && l.contains("state=\"connected\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as usize
    };
    let deadline = Instant::now() + Duration::from_secs(720);
    let mut now = connected();
    while now < bots && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        now = connected();
    }
    now
}

/// What the run measured on the runner process.
struct RunnerUse {
    cores: f64,
    rss_mb: f64,
}

/// Moves the fake's price along the wave every `STEP` for `plan.run`, and measures
/// the runner's CPU over exactly that time.
fn run_prices(f: &Fake, runner: i32, plan: &Plan) -> RunnerUse {
    let wave = Wave {
        base: BASE,
        low: LOW,
        high: HIGH,
        period: plan.swing,
    };
    let (t0, _) = scale::cpu_ticks_and_rss_kb(runner);
    let begun = Instant::now();
    let mut next = begun;
    while begun.elapsed() < plan.run {
        f.set_price(wave.at(begun.elapsed()));
        next += STEP;
        // Pacing the price path, not waiting for a condition.
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let (t1, rss_kb) = scale::cpu_ticks_and_rss_kb(runner);
    RunnerUse {
        cores: (t1 - t0) as f64 / scale::clock_ticks_per_second() / begun.elapsed().as_secs_f64(),
        rss_mb: rss_kb as f64 / 1024.0,
    }
}

/// p99 of the server's fill-to-engine histogram, in ms, if it exports one.
fn histogram_p99_ms(s: &Server) -> Option<f64> {
    let scrape = s.get("/metrics").text();
    // The exchange families but the histogram's buckets: what the streams and the
    // budget did, for the reader.
    for line in scrape.lines().filter(|l| {
        l.starts_with("blitz_exchange_") && !l.starts_with("blitz_exchange_fill_to_engine")
    }) {
        println!("  {line}");
    }
    let buckets = scale::histogram_buckets(
        &scrape,
        "blitz_exchange_fill_to_engine_seconds",
        "exchange=\"bybit\"",
    );
    let n = buckets.last().map_or(0.0, |b| b.1);
    println!("  histogram blitz_exchange_fill_to_engine_seconds{{exchange=\"bybit\"}}: {n} fills");
    scale::quantile_of_buckets(&buckets, 0.99).map(|q| q * 1000.0)
}

/// The cross-check from both ends: for each execution of `emitted` (order link
/// id, the fake's time of it), the time until the bot's ledger recorded it; one
/// no bot has read by `end_ms` counts as its age then (a lower bound: a frozen
/// fleet must not look fast). Prints it under `what` and answers its p99 (ms).
fn cross_check_p99_ms(
    what: &str,
    emitted: &[(String, i64)],
    ledger: &[(String, i64)],
    end_ms: i64,
) -> Option<i64> {
    let read: HashMap<&str, i64> = ledger.iter().map(|(id, t)| (id.as_str(), *t)).collect();
    let mut unread = 0;
    let mut lags: Vec<i64> = emitted
        .iter()
        .map(|(id, at)| match read.get(id.as_str()) {
            Some(r) => r - at,
            None => {
                unread += 1;
                end_ms - at
            }
        })
        .collect();
    let p50 = scale::percentile(&mut lags, 0.50);
    let p99 = scale::percentile(&mut lags, 0.99);
    let max = lags.last().copied();
    let ms = |v: Option<i64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    println!(
        "  cross-check, {what}: {} executions, {unread} not in the bots' ledgers by the end; \
         ledger time - fake time: p50 {}, p99 {}, max {}",
        emitted.len(),
        ms(p50),
        ms(p99),
        ms(max)
    );
    p99
}

#[test]
#[ignore = "a benchmark of minutes: tests/bench/exchange-scale.sh"]
fn bench_exchange_scale() {
    let plan = Plan::from_env();
    println!(
        "  {} bots, {} s of prices, a swing every {} s, starts at {}/s",
        plan.bots,
        plan.run.as_secs(),
        plan.swing.as_secs(),
        plan.start_rate
    );
    let f = Fake::start(plan.bots);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("instance")).unwrap();
    let begun = Instant::now();
    let traders = seed_users(&dir.path().join("instance/database.db"), plan.bots);
    let (url, ws) = (f.url(), f.private_ws_url());
    let mut env = vec![
        ("BYBIT_BASE_URL", url.as_str()),
        ("BYBIT_WS_PRIVATE_URL", ws.as_str()),
        ("ENABLE_METRICS", "true"),
        ("BOTS_PER_USER", "2"),
    ];
    env.extend(RAISED_LIMITS.iter().map(|v| (*v, "100000/minute")));
    let s = Server::start_in(
        dir,
        Options {
            workers: 2,
            env,
            ..Options::default()
        },
    );
    let ids = create_bots(&s, &traders);
    println!(
        "  {} users, accounts and bots in {:.1} s",
        ids.len(),
        begun.elapsed().as_secs_f64()
    );
    let refused = start_bots(&s, &f, &traders, &ids, plan.start_rate);
    let running = wait_running(&s, &plan, refused);
    println!(
        "  {running} of {} bots running after {:.1} s",
        plan.bots,
        begun.elapsed().as_secs_f64()
    );
    // The price run measures the bots that run, once their streams are up
    // (after a ban nothing would come up: it starts at once).
    if f.ip_limit_exceeded() == 0 {
        wait_ladders(&f, running);
        println!(
            "  ladders resting after {:.1} s",
            begun.elapsed().as_secs_f64()
        );
        let streams = wait_streams(&s, running);
        println!(
            "  {streams} private streams connected after {:.1} s",
            begun.elapsed().as_secs_f64()
        );
    }

    let runner = s.runner_pids()[0];
    let setup = f.requests_by_path();
    print_requests("the setup", &BTreeMap::new(), &setup);
    let used = run_prices(&f, runner, &plan);
    print_requests("the price run", &setup, &f.requests_by_path());
    let still = running_bots(&s);
    let histogram = histogram_p99_ms(&s);
    let (ledger, end_ms) = (ledger_fills(&s), now_ms());
    let crossed = cross_check_p99_ms(
        "from the execution on the fake",
        &f.fills(),
        &ledger,
        end_ms,
    );
    let pushed = f.pushed();
    if !pushed.is_empty() {
        cross_check_p99_ms(
            "from its push on the private stream",
            &pushed,
            &ledger,
            end_ms,
        );
    }
    let cycles: i64 = {
        let db = rusqlite::Connection::open(s.path("instance/database.db")).unwrap();
        db.query_row("SELECT COUNT(*) FROM trades", [], |r| r.get(0))
            .unwrap()
    };
    println!(
        "  {cycles} cycles closed; {still} of {} bots still running; fake: {} requests",
        plan.bots,
        f.requests_total()
    );
    assert!(!f.fills().is_empty(), "the price path filled nothing");
    let p99 = match histogram {
        Some(ms) => ms,
        None => {
            println!("  (no fill-to-engine histogram in this build: X is the cross-check's)");
            crossed.expect("fills in the ledgers") as f64
        }
    };
    println!(
        "bots={} ip_limit_exceeded={} fill_to_engine_p99_ms={:.0} rest_requests_per_5s_max={} \
         runner_cpu={:.3} runner_rss_mb={:.1}",
        plan.bots,
        f.ip_limit_exceeded(),
        p99,
        f.requests_in_window_max(),
        used.cores,
        used.rss_mb
    );
}

/// The benchmark's view of the Bybit fake: one account per bot, the price moved
/// for all, the fake's counters and its executions with their times.
struct Fake {
    bybit: FakeBybit,
}

impl Fake {
    fn start(accounts: usize) -> Fake {
        let (k, secret) = key(0);
        let bybit = FakeBybit::start(&k, &secret);
        // The product measures from the exchange's timestamps: a fake clock running
        // ahead (the fake's default, for the time-sync tests) would add its skew.
        // Set before adding accounts: they take the first one's clock.
        bybit.book().skew_ms = 0;
        for i in 1..accounts {
            let (k, secret) = key(i);
            bybit.add_account(&k, &secret);
        }
        Fake { bybit }
    }

    fn url(&self) -> String {
        self.bybit.url()
    }

    fn private_ws_url(&self) -> String {
        self.bybit.private_ws_url()
    }

    fn set_price(&self, price: rust_decimal::Decimal) {
        self.bybit.set_price(price);
    }

    /// Every execution of every account: (order link id, the execution's time on
    /// the exchange, ms) — what the product's histogram measures from.
    fn fills(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for i in 0..self.bybit.account_count() {
            let acc = self.bybit.account(i);
            let b = acc.lock().unwrap();
            out.extend(b.fills.iter().map(|f| (f.client_id.clone(), f.time_ms)));
        }
        out
    }

    /// Accounts with at least the two legs and the take-profit open.
    fn ladders_ready(&self) -> usize {
        (0..self.bybit.account_count())
            .filter(|&i| self.bybit.account(i).lock().unwrap().open_count() >= 3)
            .count()
    }

    /// Executions pushed on the private streams: (order link id, time sent, ms).
    fn pushed(&self) -> Vec<(String, i64)> {
        self.bybit
            .emitted()
            .into_iter()
            .map(|e| (e.client_id, e.emitted_ms))
            .collect()
    }

    fn requests_total(&self) -> u64 {
        self.bybit.requests_total()
    }

    fn requests_in_window_max(&self) -> usize {
        self.bybit.requests_in_window_max()
    }

    fn ip_limit_exceeded(&self) -> u64 {
        self.bybit.ip_limit_exceeded()
    }

    fn requests_by_path(&self) -> BTreeMap<String, u64> {
        self.bybit.requests_by_path()
    }
}

/// Prints the requests of a phase per path: `now` minus `before`, busiest first.
fn print_requests(phase: &str, before: &BTreeMap<String, u64>, now: &BTreeMap<String, u64>) {
    let mut rows: Vec<(u64, &String)> = now
        .iter()
        .map(|(path, n)| (n - before.get(path).copied().unwrap_or(0), path))
        .filter(|(n, _)| *n > 0)
        .collect();
    rows.sort_by(|a, b| b.cmp(a));
    let total: u64 = rows.iter().map(|r| r.0).sum();
    println!("  requests during {phase}: {total}");
    for (n, path) in rows {
        println!("    {n:>8}  {path}");
    }
}
