//! The market catalogue and candles (C15) against the Bybit and BingX fakes: shapes,
//! pagination, the hourly refresh, failures, the checks at save and the cache that
//! bounds exchange calls however many dashboards poll.

mod common;

use std::time::Duration;

use common::bots::{count, db, user, wait_status, User, CALM};
use common::fake_bingx::FakeBingx;
use common::fake_bybit::FakeBybit;
use common::{wait_for, Options, Server};
use serde_json::{json, Value};

fn server(env: &[(&'static str, &str)]) -> Server {
    let mut all = CALM.to_vec();
    all.extend_from_slice(env);
    Server::with(Options {
        workers: 2,
        env: all,
        ..Options::default()
    })
}

fn calls(f: &FakeBybit, prefix: &str) -> usize {
    f.book()
        .market_calls
        .iter()
        .filter(|c| c.starts_with(prefix))
        .count()
}

fn symbols(v: &Value) -> Vec<String> {
    v["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["symbol"].as_str().unwrap().to_string())
        .collect()
}

fn get(s: &Server, u: &User, path: &str) -> (u16, Value) {
    let r = u.call(s, "GET", path, "");
    (r.status, r.json())
}

#[test]
fn bybit_catalogue_walks_the_pages_and_keeps_usdt_contracts_that_trade() {
    let f = FakeBybit::start("k", "s");
    let url = f.url();
    let s = server(&[("BYBIT_BASE_URL", &url)]);
    let u = user(&s, "a@example.com", false);
    let v = u.get(&s, "/api/markets?exchange=bybit");
    assert_eq!(
        symbols(&v),
        [
            "1000PEPE/USDT",
            "BTC/USDT",
            "ETH/USDT",
            "SOL/USDT",
            "XRP/USDT"
        ]
    );
    let eth = &v["markets"][2];
    assert_eq!(
        *eth,
        json!({"symbol": "ETH/USDT", "tick_size": 0.01, "qty_step": 0.01, "min_qty": 0.01,
               "min_notional": 5.0, "max_leverage": 100, "last_price": 3000.25,
               "funding_rate": 0.0001, "next_funding_at": "2023-11-15T06:13:20Z"})
    );
    // The dated ETH future did not take the perpetual's row (above), and the
    // pre-launch contract's ticker without a price was left out, not the list.
    assert!(s.log().contains("field lastPrice"), "{}", s.log());
    assert_eq!(v["markets"][0]["max_leverage"], 12);
    // Seven instruments, three a page: three pages, the cursor followed.
    let pages: Vec<String> = f
        .book()
        .market_calls
        .iter()
        .filter(|c| c.starts_with("/v5/market/instruments-info"))
        .cloned()
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[0].contains("limit=1000") && !pages[0].contains("cursor"));
    assert!(pages[1].contains("cursor=3") && pages[2].contains("cursor=6"));
    // Served from the cache afterwards, by either worker.
    for _ in 0..6 {
        assert_eq!(symbols(&u.get(&s, "/api/markets?exchange=bybit")).len(), 5);
    }
    assert_eq!(calls(&f, "/v5/market/"), 4);
}

#[test]
fn bingx_and_paper_catalogues() {
    let f = FakeBingx::start("k", "s");
    let url = f.url();
    let s = server(&[("BINGX_BASE_URL", &url)]);
    let u = user(&s, "a@example.com", false);
    let v = u.get(&s, "/api/markets?exchange=bingx");
    assert_eq!(symbols(&v), ["BTC/USDT", "DOGE/USDT", "ETH/USDT"]);
    let doge = &v["markets"][1];
    assert_eq!(
        (
            doge["tick_size"].clone(),
            doge["qty_step"].clone(),
            doge["min_qty"].clone()
        ),
        (json!(0.00001), json!(1.0), json!(10.0))
    );
    assert_eq!(
        (doge["max_leverage"].clone(), doge["last_price"].clone()),
        (json!(125), json!(0.16234))
    );
    assert_eq!(doge["funding_rate"], json!(0.0001));
    let next = doge["next_funding_at"].as_str().unwrap();
    assert!(next.ends_with('Z') && next > "2023", "{next}");
    // The contract without a minimum quantity is left out (logged), not the list.
    assert!(s.log().contains("ADA-USDT has no tradeMinQuantity"));
    // Paper (walk): its own majors, limits from its listings, no trade yet.
    let p = u.get(&s, "/api/markets");
    assert_eq!(symbols(&p), ["BTC/USDT", "ETH/USDT", "SOL/USDT"]);
    assert_eq!(p["markets"][2]["max_leverage"], 75);
    assert_eq!(p["markets"][0]["last_price"], Value::Null);
    let (code, body) = get(&s, &u, "/api/markets?exchange=ftx");
    assert_eq!(
        (code, body["fields"]["exchange"].as_str()),
        (400, Some("must be one of paper, bybit, bingx"))
    );
    assert_eq!(common::client::get(s.port, "/api/markets").status, 401);
}

#[test]
fn paper_on_live_prices_mirrors_its_venue() {
    let f = FakeBybit::start("k", "s");
    let url = f.url();
    let s = server(&[("BYBIT_BASE_URL", &url), ("PAPER_PRICES", "bybit")]);
    let u = user(&s, "a@example.com", false);
    let v = u.get(&s, "/api/markets?exchange=paper");
    assert_eq!(
        symbols(&v),
        symbols(&u.get(&s, "/api/markets?exchange=bybit"))
    );
    let r = u.call(
        &s,
        "PUT",
        "/api/bot/config",
        &json!({"symbol": "1000PEPE/USDT", "leverage": 13}).to_string(),
    );
    assert_eq!(
        r.json()["fields"]["leverage"],
        "leverage 13 is above 1000PEPE/USDT's maximum of 12 on paper"
    );
}

#[test]
fn the_catalogue_is_refreshed_when_due_and_a_failure_keeps_the_old_copy() {
    let f = FakeBybit::start("k", "s");
    let url = f.url();
    let s = server(&[
        ("BYBIT_BASE_URL", &url),
        ("MARKETS_REFRESH_S", "1"),
        ("ENABLE_METRICS", "true"),
    ]);
    let u = user(&s, "a@example.com", false);
    let first = u.get(&s, "/api/markets?exchange=bybit");
    assert_eq!(calls(&f, "/v5/market/tickers"), 1);
    // Once due, the next request refreshes: the tickers answer garbage this time.
    f.inject_raw("/v5/market/tickers", "<html>bad gateway</html>");
    wait_for(Duration::from_secs(10), "a refresh", || {
        assert_eq!(u.get(&s, "/api/markets?exchange=bybit"), first);
        calls(&f, "/v5/market/tickers") == 2
    });
    // The old copy is served (the minute's pause after a failure is
    // market::refresh's unit tests', on a clock).
    for _ in 0..20 {
        assert_eq!(u.get(&s, "/api/markets?exchange=bybit"), first);
    }
    assert!(s.log().contains("market data refresh failed"));
    // An answer that lost most markets is a failed fetch too, not delistings:
    // the pause is skipped by hand, the instruments come back with one market.
    db(&s)
        .execute(
            "UPDATE market_refresh SET failed_ms = 0 WHERE item = 'catalogue:bybit'",
            [],
        )
        .unwrap();
    let one = json!({"retCode": 0, "retMsg": "OK", "result": {"category": "linear",
        "list": [{"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading",
            "baseCoin": "BTC", "quoteCoin": "USDT", "settleCoin": "USDT",
            "leverageFilter": {"maxLeverage": "100.00"}, "priceFilter": {"tickSize": "0.10"},
            "lotSizeFilter": {"minOrderQty": "0.001", "qtyStep": "0.001"}}],
        "nextPageCursor": ""}});
    f.inject_raw("/v5/market/instruments-info", &one.to_string());
    wait_for(Duration::from_secs(10), "a second refresh", || {
        assert_eq!(u.get(&s, "/api/markets?exchange=bybit"), first);
        s.log().contains("catalogue: 1 markets where 5 were listed")
    });
    assert_eq!(u.get(&s, "/api/markets?exchange=bybit"), first);
    let m = common::client::get(s.port, "/metrics").text();
    assert!(m.contains("blitz_market_refresh_failures_total 2"), "{m}");
}

#[test]
fn configs_are_checked_against_the_catalogue_unless_it_is_out_of_reach() {
    let f = FakeBybit::start("k", "s");
    let url = f.url();
    let s = server(&[("BYBIT_BASE_URL", &url)]);
    let u = user(&s, "a@example.com", false);
    let put = |body: Value| {
        let r = u.call(&s, "PUT", "/api/bot/config", &body.to_string());
        (r.status, r.json())
    };
    // Paper (walk): majors and any well-formed XXX/USDT, within the listing's maximum.
    let (code, b) = put(json!({"symbol": "SOL/USDT", "leverage": 80, "take_profit": 50}));
    assert_eq!(
        (code, b["fields"]["leverage"].as_str()),
        (
            400,
            Some("leverage 80 is above SOL/USDT's maximum of 75 on paper")
        )
    );
    let (code, b) = put(json!({"symbol": "BTC/USD"}));
    assert_eq!(
        (code, b["fields"]["symbol"].as_str()),
        (400, Some("symbol BTC/USD is not listed on paper"))
    );
    assert_eq!(put(json!({"symbol": "DOGE/USDT", "leverage": 50})).0, 200);
    // Bybit: its catalogue.
    let (code, b) = put(json!({"exchange": "bybit", "symbol": "BTC/USDX"}));
    assert_eq!(
        (code, b["fields"]["symbol"].as_str()),
        (400, Some("symbol BTC/USDX is not listed on bybit"))
    );
    let (code, b) =
        put(json!({"exchange": "bybit", "symbol": "BTC/USDT", "leverage": 101, "take_profit": 50}));
    assert_eq!(
        (code, b["fields"]["leverage"].as_str()),
        (
            400,
            Some("leverage 101 is above BTC/USDT's maximum of 100 on bybit")
        )
    );
    assert_eq!(
        put(json!({"exchange": "bybit", "symbol": "XRP/USDT", "leverage": 75, "take_profit": 50}))
            .0,
        200
    );
}

#[test]
fn only_edits_of_the_market_are_held_to_the_catalogue() {
    let f = FakeBybit::start("k", "s");
    let url = f.url();
    let s = server(&[("BYBIT_BASE_URL", &url)]);
    let u = user(&s, "a@example.com", false);
    let put = |body: Value| {
        let r = u.call(&s, "PUT", "/api/bot/config", &body.to_string());
        (r.status, r.json())
    };
    // Configurations saved before the rule: a leverage above the maximum.
    let set = |exchange: &str, symbol: &str, leverage: i64| {
        db(&s)
            .execute(
                "UPDATE user_bots SET exchange = ?1, symbol = ?2, leverage = ?3 WHERE user_id = ?4",
                rusqlite::params![exchange, symbol, leverage, u.id],
            )
            .unwrap();
    };
    set("bybit", "BTC/USDT", 125);
    let (code, b) = put(json!({"take_profit": 30}));
    assert_eq!(code, 200, "{b}");
    let (code, b) = put(json!({"leverage": 125}));
    assert_eq!(
        (code, b["fields"]["leverage"].as_str()),
        (
            400,
            Some("leverage 125 is above BTC/USDT's maximum of 100 on bybit")
        )
    );
    // A running bot's take-profit edit stays a pending change (C13.2), even when
    // its stored leverage is above what the market now allows (the paper exchange
    // refuses such a leverage at start, so it is stored once the bot runs).
    set("paper", "SOL/USDT", 50);
    let r = u.call(&s, "POST", "/api/bot/start", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    wait_status(&s, &u, "running");
    set("paper", "SOL/USDT", 80);
    let (code, b) = put(json!({"take_profit": 40}));
    assert_eq!((code, b["pending"].as_bool()), (200, Some(true)), "{b}");
    let (code, b) = put(json!({"leverage": 80}));
    assert_eq!(
        (code, b["fields"]["leverage"].as_str()),
        (
            400,
            Some("leverage 80 is above SOL/USDT's maximum of 75 on paper")
        )
    );
}

/// A server that accepts connections and never answers.
fn hanging_exchange() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    });
    url
}

#[test]
fn a_hanging_exchange_costs_a_request_seconds_and_never_the_worker() {
    let url = hanging_exchange();
    let mut env = CALM.to_vec();
    env.push(("BYBIT_BASE_URL", &url));
    // One worker, killed if silent for 20 s: each exchange call is tried once
    // and capped at 5 s (EXCHANGE_TIMEOUT_MS is 8 s), every request's calls end
    // within 10 s.
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--timeout", "20"],
        env,
    });
    let u = user(&s, "a@example.com", false);
    // A stale copy of the catalogue: due, so the request tries the exchange.
    let c = db(&s);
    c.execute(
        "INSERT INTO market_catalogue (exchange, symbol, tick_size, qty_step, min_qty,
             min_notional, max_leverage) VALUES ('bybit', 'BTC/USDT', '0.1', '0.001', '0.001', '5', 100)",
        [],
    )
    .unwrap();
    c.execute(
        "INSERT INTO market_refresh (item, fetched_ms) VALUES ('catalogue:bybit', 1)",
        [],
    )
    .unwrap();
    let bound = Duration::from_secs(11);
    let t = std::time::Instant::now();
    let v = u.get(&s, "/api/markets?exchange=bybit");
    assert_eq!(symbols(&v), ["BTC/USDT"]);
    assert!(t.elapsed() < bound, "{:?}", t.elapsed());
    // No candles cached: 503 within the bound, while /healthz waits its turn.
    let t = std::time::Instant::now();
    let health = std::thread::spawn({
        let port = s.port;
        move || {
            std::thread::sleep(Duration::from_millis(200));
            common::client::get(port, "/healthz").status
        }
    });
    let (code, b) = get(
        &s,
        &u,
        "/api/markets/candles?exchange=bybit&symbol=BTC/USDT&interval=1m",
    );
    assert_eq!((code, b["status"].as_str()), (503, Some("unavailable")));
    assert_eq!(health.join().unwrap(), 200);
    assert!(t.elapsed() < bound, "{:?}", t.elapsed());
    assert_eq!(s.get("/healthz").status, 200);
    assert!(s.log().contains("market data refresh failed"));
}

#[test]
fn an_exchange_outage_does_not_block_a_save_but_answers_503_for_market_data() {
    let f = FakeBingx::start("k", "s");
    let url = f.url();
    f.http.set_down(true);
    let s = server(&[("BINGX_BASE_URL", &url), ("EXCHANGE_TIMEOUT_MS", "500")]);
    let u = user(&s, "a@example.com", false);
    let r = u.call(
        &s,
        "PUT",
        "/api/bot/config",
        &json!({"exchange": "bingx", "take_profit": 5}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s
        .log()
        .contains("market catalogue unavailable; saving without the market check"));
    let (code, b) = get(&s, &u, "/api/markets?exchange=bingx");
    assert_eq!(
        (code, b["status"].as_str(), b["success"].as_bool()),
        (503, Some("unavailable"), Some(false))
    );
    let (code, _) = get(
        &s,
        &u,
        "/api/markets/candles?exchange=bingx&symbol=BTC/USDT&interval=1m",
    );
    assert_eq!(code, 503);
}

#[test]
fn candles_come_oldest_first_sliced_from_one_fetch_of_a_thousand() {
    let by = FakeBybit::start("k", "s");
    let bx = FakeBingx::start("k", "s");
    let (by_url, bx_url) = (by.url(), bx.url());
    let s = server(&[("BYBIT_BASE_URL", &by_url), ("BINGX_BASE_URL", &bx_url)]);
    let u = user(&s, "a@example.com", false);
    for (exchange, interval, width, asked) in [
        ("bybit", "15m", 900_000, "interval=15"),
        ("bybit", "1d", 86_400_000, "interval=D"),
        ("bingx", "4h", 14_400_000, "interval=4h"),
    ] {
        let path = format!(
            "/api/markets/candles?exchange={exchange}&symbol=ETH/USDT&interval={interval}&limit=5"
        );
        let c = u.get(&s, &path)["candles"].as_array().unwrap().clone();
        assert_eq!(c.len(), 5, "{exchange} {interval}");
        for (k, row) in c.iter().enumerate() {
            let t = row[0].as_i64().unwrap();
            assert_eq!(t % width, 0);
            // The fake's newest close is 1999 (1000 candles asked).
            let close = 1995.0 + k as f64;
            assert_eq!(
                *row,
                json!([t, close - 1.0, close + 2.0, close - 3.0, close, 12.5])
            );
            if k > 0 {
                assert_eq!(t - c[k - 1][0].as_i64().unwrap(), width);
            }
        }
        let book_calls = match exchange {
            "bybit" => by.book().market_calls.clone(),
            _ => bx.book().market_calls.clone(),
        };
        let last = book_calls
            .iter()
            .rev()
            .find(|c| c.contains("kline"))
            .unwrap()
            .clone();
        assert!(
            last.contains(asked) && last.contains("limit=1000"),
            "{last}"
        );
    }
    let all = u.get(
        &s,
        "/api/markets/candles?exchange=bybit&symbol=ETH/USDT&interval=15m",
    );
    assert_eq!(all["candles"].as_array().unwrap().len(), 200);
    let max = u.get(
        &s,
        "/api/markets/candles?exchange=bybit&symbol=ETH/USDT&interval=15m&limit=1000",
    );
    assert_eq!(max["candles"].as_array().unwrap().len(), 1000);
    for (query, field) in [
        ("exchange=ftx&symbol=BTC/USDT&interval=1m", "exchange"),
        ("exchange=bybit&symbol=btc&interval=1m", "symbol"),
        ("exchange=bybit&interval=1m", "symbol"),
        ("exchange=bybit&symbol=BTC/USDT&interval=2m", "interval"),
        (
            "exchange=bybit&symbol=BTC/USDT&interval=1m&limit=0",
            "limit",
        ),
        (
            "exchange=bybit&symbol=BTC/USDT&interval=1m&limit=1001",
            "limit",
        ),
    ] {
        let (code, b) = get(&s, &u, &format!("/api/markets/candles?{query}"));
        assert_eq!(code, 400, "{query}");
        assert!(b["fields"][field].is_string(), "{query}: {b}");
    }
    let (code, b) = get(
        &s,
        &u,
        "/api/markets/candles?exchange=bybit&symbol=FOO/USDT&interval=1m",
    );
    assert_eq!(
        (code, b["error"].as_str()),
        (404, Some("symbol FOO/USDT is not listed on bybit"))
    );
    assert_eq!(
        calls(&by, "/v5/market/kline?category=linear&symbol=FOOUSDT"),
        0
    );
    // Junk symbols leave no trace in the cache either.
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM market_refresh WHERE item LIKE '%FOO%'"
        ),
        0
    );
    let anon = common::client::get(
        s.port,
        "/api/markets/candles?exchange=bybit&symbol=BTC/USDT&interval=1m",
    );
    assert_eq!(anon.status, 401);
}

#[test]
fn many_dashboards_on_two_workers_cost_one_kline_call_per_key_and_period() {
    let f = FakeBybit::start("k", "s");
    let url = f.url();
    // A period far longer than the burst, however slow the machine: the next
    // period is brought forward by hand below.
    let s = server(&[("BYBIT_BASE_URL", &url), ("CANDLES_REFRESH_MS", "600000")]);
    let u = user(&s, "a@example.com", false);
    let keys = ["symbol=BTCUSDT&interval=1", "symbol=ETHUSDT&interval=1"];
    let paths = [
        "/api/markets/candles?exchange=bybit&symbol=BTC/USDT&interval=1m&limit=10",
        "/api/markets/candles?exchange=bybit&symbol=ETH/USDT&interval=1m&limit=10",
    ];
    std::thread::scope(|scope| {
        for t in 0..16 {
            let (s, u) = (&s, &u);
            scope.spawn(move || {
                for _ in 0..4 {
                    let (code, b) = get(s, u, paths[t % 2]);
                    assert_eq!(
                        (code, b["candles"].as_array().map(Vec::len)),
                        (200, Some(10)),
                        "{b}"
                    );
                }
            });
        }
    });
    let per_key = |k: &str| calls(&f, &format!("/v5/market/kline?category=linear&{k}&"));
    assert_eq!((per_key(keys[0]), per_key(keys[1])), (1, 1));
    // The period of BTC's candles is over (as if ten minutes had passed): one
    // more call, by whichever request comes first.
    db(&s)
        .execute(
            "UPDATE market_refresh SET fetched_ms = fetched_ms - 600000
             WHERE item = 'candles:bybit:BTC/USDT:1m'",
            [],
        )
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (s, u) = (&s, &u);
            scope.spawn(move || assert_eq!(get(s, u, paths[0]).0, 200));
        }
    });
    assert_eq!((per_key(keys[0]), per_key(keys[1])), (2, 1));
}

#[test]
fn paper_candles_are_its_minutes_merged_into_the_interval() {
    let s = server(&[]);
    let u = user(&s, "a@example.com", false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let p = now - now % 300_000;
    let c = db(&s);
    let rows = [
        (p - 300_000, "100", "105", "99", "101"),
        (p - 240_000, "101", "110", "100", "108"),
        (p - 60_000, "108", "109", "95", "96"),
        (p, "96", "97", "96", "97"),
        (p - 900_000, "1", "1", "1", "1"),
    ];
    for (t, o, h, l, cl) in rows {
        c.execute(
            "INSERT INTO paper_candles (symbol, start_ms, open, high, low, close) VALUES ('BTC/USDT', ?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![t, o, h, l, cl],
        )
        .unwrap();
    }
    let v = u.get(
        &s,
        "/api/markets/candles?symbol=BTC/USDT&interval=5m&limit=3",
    );
    assert_eq!(
        v["candles"],
        json!([
            [p - 300_000, 100.0, 110.0, 95.0, 96.0, 0.0],
            [p, 96.0, 97.0, 96.0, 97.0, 0.0]
        ])
    );
    let minutes = u.get(
        &s,
        "/api/markets/candles?symbol=BTC/USDT&interval=1m&limit=1000",
    );
    let minutes = minutes["candles"].as_array().unwrap().clone();
    assert_eq!(minutes.len(), 5);
    assert_eq!(minutes[0], json!([p - 900_000, 1.0, 1.0, 1.0, 1.0, 0.0]));
    assert_eq!(minutes[4], json!([p, 96.0, 97.0, 96.0, 97.0, 0.0]));
    let (code, _) = get(&s, &u, "/api/markets/candles?symbol=BTC/USD&interval=1m");
    assert_eq!(code, 404);
}

/// The measurement of tests/bench/candles.sh (ignored in the normal run): 1,000
/// simulated dashboards, each polling the candles of one of six charts (three
/// symbols, 1m and 15m) every 5 s for `BENCH_SECONDS` (default 60), spread evenly
/// over the 5 s; prints the fake's kline calls per minute and per key.
#[test]
#[ignore]
fn bench_dashboards_polling_candles() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let f = FakeBybit::start("k", "s");
    let url = f.url();
    // One user stands for the 1,000 dashboards (12,000 requests a minute): its
    // limits are raised so that the bench measures the cache, not the limiter.
    let s = server(&[
        ("BYBIT_BASE_URL", &url),
        ("RATE_LIMITS_STATUS", "100000/minute"),
        ("RATE_LIMITS_GLOBAL", "100000/minute"),
    ]);
    let u = user(&s, "bench@example.com", false);
    let charts = [
        ("BTC/USDT", "1m"),
        ("ETH/USDT", "1m"),
        ("SOL/USDT", "1m"),
        ("BTC/USDT", "15m"),
        ("ETH/USDT", "15m"),
        ("SOL/USDT", "15m"),
    ];
    let dashboards = 1000u64;
    let threads = 16u64;
    let start = std::time::Instant::now();
    let failed = std::sync::atomic::AtomicU64::new(0);
    let served = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (s, u, failed, served) = (&s, &u, &failed, &served);
            scope.spawn(move || {
                // This thread's dashboards' polls in time order: dashboard d polls at
                // d * 5 ms + k * 5 s.
                let mut polls: Vec<(u64, u64)> = (0..dashboards)
                    .filter(|d| d % threads == t)
                    .flat_map(|d| (0..seconds / 5).map(move |k| (d * 5 + k * 5000, d)))
                    .collect();
                polls.sort();
                for (at_ms, d) in polls {
                    let due = start + Duration::from_millis(at_ms);
                    if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let (sym, iv) = charts[(d % 6) as usize];
                    let path = format!(
                        "/api/markets/candles?exchange=bybit&symbol={sym}&interval={iv}&limit=200"
                    );
                    let r = u.call(s, "GET", &path, "");
                    let counter = if r.status == 200 { served } else { failed };
                    if counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0
                        && r.status != 200
                    {
                        println!("first failure: {path}: {} {}", r.status, r.text());
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let klines: Vec<String> = f
        .book()
        .market_calls
        .iter()
        .filter(|c| c.starts_with("/v5/market/kline"))
        .cloned()
        .collect();
    println!(
        "{dashboards} dashboards, every 5 s for {elapsed:.1} s: {} candle requests served, {} failed",
        served.into_inner(),
        failed.into_inner()
    );
    println!(
        "kline calls to the exchange: {} in total, {:.1} per minute",
        klines.len(),
        klines.len() as f64 * 60.0 / elapsed
    );
    let mut per_key = std::collections::BTreeMap::new();
    for c in &klines {
        let key: Vec<&str> = c
            .split('&')
            .filter(|p| p.starts_with("symbol=") || p.starts_with("interval="))
            .collect();
        *per_key.entry(key.join("&")).or_insert(0) += 1;
    }
    for (key, n) in &per_key {
        println!(
            "  {key}: {n} ({:.1} per minute)",
            *n as f64 * 60.0 / elapsed
        );
    }
    // At most one call per key per refresh period (5 s for 1m, 15 s for 15m), plus
    // the first.
    for (key, n) in per_key {
        let period = if key.ends_with("interval=1") {
            5.0
        } else {
            15.0
        };
        assert!(n as f64 <= (elapsed / period).ceil() + 1.0, "{key}: {n}");
    }
}
