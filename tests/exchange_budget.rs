//! The request budget (CONTRACT C16) with the real Bybit adapter against the fake:
//! many threads, each with its own adapter (one per bot, as in the runner), never
//! send more than the budget in any 5 s, and protective requests still get
//! through while reads saturate it.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blitz::exchange::bybit::Bybit;
use blitz::exchange::rest::budget::Limits;
use blitz::exchange::rest::{ApiKey, RestSettings};
use blitz::exchange::{Exchange, ExchangeError, NewOrder, OrderKind, OrderSide, Side};
use rust_decimal::{dec, Decimal};

use common::fake_bybit::FakeBybit;

const KEY: &str = "tEsTkEy0123abcd";
const SECRET: &str = "s3cr3t-for-the-fake";
const WINDOW: Duration = Duration::from_secs(5);

/// An adapter on `fake` whose process budget is `per_5s` (each fake has its own
/// budget: they are keyed by base URL).
fn adapter(fake: &FakeBybit, per_5s: u32) -> Bybit {
    let settings = RestSettings {
        bybit_url: fake.url(),
        timeout_ms: 3000,
        limits: Limits {
            bybit_per_5s: per_5s,
            ..Limits::default()
        },
        ..RestSettings::default()
    };
    let key = ApiKey {
        key: KEY.into(),
        secret: SECRET.into(),
    };
    Bybit::new(&settings, key)
}

fn order(id: &str, side: OrderSide, kind: OrderKind, trigger: Option<Decimal>) -> NewOrder {
    NewOrder {
        client_id: id.into(),
        symbol: "BTC/USDT".into(),
        side,
        kind,
        price: None,
        trigger_price: trigger,
        qty: dec!(0.001),
        reduce_only: side == OrderSide::Sell,
        position_side: Side::Long,
    }
}

/// Ok, or the budget's refusal; anything else fails the test.
fn counted<T>(r: Result<T, ExchangeError>, refused: &AtomicUsize) {
    match r {
        Ok(_) => {}
        Err(ExchangeError::RateLimited) => {
            refused.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => panic!("{e:?}"),
    }
}

/// At the default budget (500 per 5 s) against the fake's Bybit IP limit (600 per
/// 5 s, then 403 and a ban): ten threads with their own adapters, each as fast as
/// the fake answers, never send more than the budget in any window.
#[test]
fn many_threads_never_send_more_than_the_budget() {
    let budget = Limits::default().bybit_per_5s as usize;
    let fake = Arc::new(FakeBybit::start(KEY, SECRET));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let x = adapter(&fake, budget as u32);
            let (stop, refused) = (stop.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut k = 0;
                while !stop.load(Ordering::SeqCst) {
                    k += 1;
                    // Reads, an opening order, its close and a cancel: every class.
                    counted(x.open_orders("BTC/USDT"), &refused);
                    counted(x.position("BTC/USDT", Side::Long), &refused);
                    if k % 3 == 0 {
                        // Opened and closed again, so the margin lasts.
                        let id = format!("bz-{t}-{k}-e");
                        let o = order(&id, OrderSide::Buy, OrderKind::Market, None);
                        match x.place(&o) {
                            Ok(opened) => {
                                let id = format!("bz-{t}-{k}-tp1");
                                let close = order(&id, OrderSide::Sell, OrderKind::Market, None);
                                counted(x.place(&close), &refused);
                                counted(x.cancel("BTC/USDT", &opened.client_id), &refused);
                            }
                            r => counted(r, &refused),
                        }
                    }
                }
            })
        })
        .collect();
    // Longer than a window, so that the window slides under full load.
    std::thread::sleep(WINDOW + Duration::from_millis(2_500));
    stop.store(true, Ordering::SeqCst);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(fake.ip_limit_exceeded(), 0);
    let most = fake.requests_in_window_max();
    assert!(most <= budget, "{most} requests within 5 s");
    // The budget was the bound: requests were refused, and the window filled
    // beyond the reads' 60 %.
    assert!(refused.load(Ordering::Relaxed) > 0);
    assert!(most > budget * 6 / 10, "only {most} in 5 s");
}

#[test]
fn protective_requests_get_through_while_reads_saturate_the_budget() {
    const BUDGET: u32 = 30;
    let fake = Arc::new(FakeBybit::start(KEY, SECRET));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let x = adapter(&fake, BUDGET);
            let (stop, refused) = (stop.clone(), refused.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    counted(x.open_orders("BTC/USDT"), &refused);
                }
            })
        })
        .collect();
    common::wait_for(Duration::from_secs(10), "reads refused", || {
        refused.load(Ordering::Relaxed) > 0
    });
    let x = adapter(&fake, BUDGET);
    // An opening order (85 % of the window) and then what protects it (100 %).
    let refused_before = refused.load(Ordering::Relaxed);
    let entry = order("bz-9-1-e", OrderSide::Buy, OrderKind::Market, None);
    x.place(&entry).expect("the entry");
    let stop_loss = order(
        "bz-9-1-sl1",
        OrderSide::Sell,
        OrderKind::Stop,
        Some(dec!(30000)),
    );
    let t = Instant::now();
    x.place(&stop_loss).expect("the stop");
    x.cancel("BTC/USDT", "bz-9-1-sl1").expect("its cancel");
    let close = order("bz-9-1-tp1", OrderSide::Sell, OrderKind::Market, None);
    x.place(&close).expect("the close");
    let took = t.elapsed();
    // Reads went on being refused: the window stayed saturated.
    common::wait_for(Duration::from_secs(5), "reads refused again", || {
        refused.load(Ordering::Relaxed) > refused_before
    });
    stop.store(true, Ordering::SeqCst);
    readers.into_iter().for_each(|t| t.join().unwrap());
    // Each placement reads its order back (a read, which may wait up to 1 s).
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(fake.ip_limit_exceeded(), 0);
    assert!(fake.requests_in_window_max() <= BUDGET as usize);
    let b = fake.book();
    for id in ["bz-9-1-e", "bz-9-1-sl1", "bz-9-1-tp1"] {
        assert!(b.order(id).is_some(), "{id} never reached the exchange");
    }
    assert!(
        !b.order("bz-9-1-sl1").unwrap().is_open(),
        "the stop stayed open"
    );
}

/// The value of the sample `series` (exactly as rendered) on `/metrics`.
fn sample(s: &common::Server, series: &str) -> f64 {
    let r = common::get(s.port, "/metrics");
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Requests of the bot runner (signed, private endpoints) the fake has seen.
fn private_requests(fake: &FakeBybit) -> usize {
    let b = fake.book();
    b.seen
        .iter()
        .filter(|p| !p.starts_with("/v5/market/"))
        .count()
}

/// The real server: a Bybit bot's requests are counted by class on `/metrics`,
/// and Bybit's 403 ban closes the runner's budget — no private request reaches
/// the exchange afterwards, the ban is counted once.
#[test]
fn the_runner_counts_its_requests_and_stops_sending_when_banned() {
    use common::bots::{user, CALM};
    use serde_json::json;
    let fake = FakeBybit::start(KEY, SECRET);
    let url = fake.url();
    let mut env = CALM.to_vec();
    env.extend([
        ("BYBIT_BASE_URL", url.as_str()),
        ("ENABLE_METRICS", "true"),
        ("BYBIT_REQUESTS_PER_5S", "120"),
    ]);
    let s = common::Server::with(common::Options {
        env,
        ..common::Options::default()
    });
    let u = user(&s, "budget@example.com", false);
    let body = json!({"exchange": "bybit", "api_key": KEY, "api_secret": SECRET});
    let r = u.call(&s, "PUT", "/api/bot/config", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let r = u.call(&s, "POST", "/api/bot/start", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    // The take-profit is reduce-only: protective.
    let tp = format!("bz-{}-1-tp1", u.id);
    common::wait_for(Duration::from_secs(20), "the take-profit", || {
        fake.book().order(&tp).is_some_and(|o| o.is_open())
    });
    let series =
        |p: &str| format!(r#"blitz_exchange_requests_total{{exchange="bybit",priority="{p}"}}"#);
    common::wait_for(Duration::from_secs(5), "requests of every class", || {
        ["protective", "placement", "reconcile"]
            .iter()
            .all(|p| sample(&s, &series(p)) >= 1.0)
    });
    // Polling at a 50 ms tick wants more reads than 60 % of 120 per 5 s.
    common::wait_for(Duration::from_secs(10), "reads held back", || {
        sample(
            &s,
            r#"blitz_exchange_budget_waits_total{exchange="bybit",priority="reconcile"}"#,
        ) + sample(
            &s,
            r#"blitz_exchange_budget_refused_total{exchange="bybit",priority="reconcile"}"#,
        ) > 0.0
    });
    assert_eq!(fake.ip_limit_exceeded(), 0);
    let bans = r#"blitz_exchange_ip_bans_total{exchange="bybit"}"#;
    assert_eq!(sample(&s, bans), 0.0);
    assert_eq!(
        sample(&s, r#"blitz_exchange_ip_bans_total{exchange="bingx"}"#),
        0.0
    );

    // Bybit bans the IP: its documented answer to the next open-orders read.
    fake.inject_http("/v5/order/realtime", 403, "403, access too frequent");
    common::wait_for(Duration::from_secs(10), "the ban counted", || {
        sample(&s, bans) == 1.0
    });
    let after_ban = private_requests(&fake);
    // The bot keeps stepping every 50 ms; for two seconds nothing reaches Bybit.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        private_requests(&fake),
        after_ban,
        "requests during the ban"
    );
    assert_eq!(sample(&s, bans), 1.0, "one ban, counted once");
    assert!(
        sample(
            &s,
            r#"blitz_exchange_budget_refused_total{exchange="bybit",priority="reconcile"}"#
        ) > 0.0
    );
}

/// BingX at the default budgets (1,600 account and 400 market-data requests per
/// 10 s) against the fake's per-IP limits (2,000 and 500, then HTTP 429): ten
/// threads with their own adapters stay within both, each group on its own.
#[test]
fn bingx_groups_never_exceed_their_budgets() {
    use blitz::exchange::bingx::Bingx;
    use common::fake_bingx::FakeBingx;
    let fake = Arc::new(FakeBingx::start(KEY, SECRET));
    let settings = RestSettings {
        bingx_url: fake.url(),
        timeout_ms: 3000,
        ..RestSettings::default()
    };
    let limits = Limits::default();
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let key = ApiKey {
                key: KEY.into(),
                secret: SECRET.into(),
            };
            let x = Bingx::new(&settings, key);
            let (stop, refused) = (stop.clone(), refused.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    counted(x.open_orders("BTC/USDT"), &refused);
                    counted(x.ticker("BTC/USDT"), &refused);
                }
            })
        })
        .collect();
    // Longer than BingX's 10 s window.
    std::thread::sleep(Duration::from_secs(12));
    stop.store(true, Ordering::SeqCst);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(fake.ip_limit_exceeded(), 0);
    let (account, market) = (
        fake.requests_in_window_max(),
        fake.market_requests_in_window_max(),
    );
    assert!(
        account <= limits.bingx_per_10s as usize,
        "{account} account requests in 10 s"
    );
    assert!(
        market <= limits.bingx_market_per_10s as usize,
        "{market} market requests in 10 s"
    );
    // Market data is the scarcer group: its budget was the bound, the tickers
    // (reads) filling their 60 % of it and no more.
    assert!(refused.load(Ordering::Relaxed) > 0);
    let reads = limits.bingx_market_per_10s as usize * 6 / 10;
    assert!(
        market <= reads && market > reads * 9 / 10,
        "{market} of {reads}"
    );
}
