//! The market-data loop against local fakes of Bybit's and BingX's public
//! streams and REST tickers (C15): prices followed, REST fallback and recovery,
//! reconnects, malformed frames, BingX heartbeats, staleness.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use blitz::market::feed::clock::{Clock, ShiftedClock};
use blitz::market::feed::{run_loop, Endpoints};
use blitz::market::{Board, Quote, QuoteSource, Venue};
use common::fake_public_ws::{FakePublic, Ticker, V};
use common::wait_for;
use rust_decimal::Decimal;

/// The loop in a thread over a heap board, stopped on drop.
struct Feed {
    board: Arc<Board>,
    clock: Arc<ShiftedClock>,
    stop: Arc<AtomicBool>,
    /// Every log message of the loop.
    logged: Arc<Mutex<Vec<String>>>,
    /// The longest wait between two calls of the loop's `keep_going` (which the
    /// real process uses to heartbeat), in ms.
    max_gap_ms: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// A log drain keeping every message.
struct Capture(Arc<Mutex<Vec<String>>>);

impl slog::Drain for Capture {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        self.0.lock().unwrap().push(record.msg().to_string());
        Ok(())
    }
}

impl Feed {
    fn start(fake: &FakePublic) -> Feed {
        // Short, so recovery tests do not wait for the production cap.
        Feed::start_capped(fake, 1000)
    }

    fn start_capped(fake: &FakePublic, backoff_cap_ms: i64) -> Feed {
        let ends = Endpoints {
            bybit_ws: fake.bybit_ws_url(),
            bingx_ws: fake.bingx_ws_url(),
            bybit_rest: fake.base_url(),
            bingx_rest: fake.base_url(),
            timeout_ms: 2000,
            backoff_cap_ms,
        };
        let board = Arc::new(Board::heap(64));
        let clock = Arc::new(ShiftedClock::default());
        let stop = Arc::new(AtomicBool::new(false));
        let logged = Arc::new(Mutex::new(Vec::new()));
        let max_gap_ms = Arc::new(AtomicU64::new(0));
        let thread = {
            let (board, clock, stop) = (board.clone(), clock.clone(), stop.clone());
            let (logged, max_gap) = (logged.clone(), max_gap_ms.clone());
            std::thread::spawn(move || {
                let log = slog::Logger::root(Capture(logged), slog::o!());
                let mut last = Instant::now();
                run_loop(&board, &ends, &*clock, &log, &mut || {
                    let gap = last.elapsed().as_millis() as u64;
                    max_gap.fetch_max(gap, Ordering::SeqCst);
                    last = Instant::now();
                    !stop.load(Ordering::SeqCst)
                })
            })
        };
        Feed {
            board,
            clock,
            stop,
            logged,
            max_gap_ms,
            thread: Some(thread),
        }
    }

    /// How many log messages contain `text`.
    fn logged(&self, text: &str) -> usize {
        self.logged
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains(text))
            .count()
    }

    fn want(&self, v: Venue, symbol: &str) {
        self.board.want_at(v, symbol, self.clock.now_ms());
    }

    fn quote(&self, v: Venue, symbol: &str) -> Option<Quote> {
        self.board.quote(v, symbol)
    }

    /// Waits until the quote's last price is `last`.
    fn wait_last(&self, v: Venue, symbol: &str, last: &str, within: Duration) -> Quote {
        let want: Decimal = last.parse().unwrap();
        wait_for(within, &format!("{symbol} last {last}"), || {
            self.quote(v, symbol).is_some_and(|q| q.last == want)
        });
        self.quote(v, symbol).unwrap()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Holds while `f` stays true for `span` (checked every 50 ms).
fn stays(span: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + span;
    while Instant::now() < end {
        if !f() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn bybit_prices_follow_the_stream_and_deltas_merge_into_the_snapshot() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64000.5", "64000.4", "64000.6", "64001"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "BTC/USDT");
    let q = feed.wait_last(Venue::Bybit, "BTC/USDT", "64000.5", Duration::from_secs(3));
    assert_eq!(
        (q.bid, q.ask, q.mark),
        (d("64000.4"), d("64000.6"), d("64001"))
    );
    assert_eq!(q.funding_rate, Some(d("0.0001")));
    assert_eq!(q.next_funding_ms, Some(1_700_000_000_000));
    wait_for(Duration::from_secs(2), "the stream subscribed", || {
        fake.subscriptions()
            .contains(&"bybit tickers.BTCUSDT".to_string())
    });
    // A delta of the book only: the last price and mark stay from the snapshot.
    let mut t = Ticker::new("64000.5", "64010", "64011", "64001");
    fake.set_ticker(V::Bybit, "BTC/USDT", t.clone());
    wait_for(Duration::from_secs(1), "the delta", || {
        feed.quote(Venue::Bybit, "BTC/USDT")
            .is_some_and(|q| q.bid == d("64010"))
    });
    let q = feed.quote(Venue::Bybit, "BTC/USDT").unwrap();
    assert_eq!(
        (q.last, q.ask, q.mark),
        (d("64000.5"), d("64011"), d("64001"))
    );
    t.last = "64020".into();
    fake.set_ticker(V::Bybit, "BTC/USDT", t);
    feed.wait_last(Venue::Bybit, "BTC/USDT", "64020", Duration::from_secs(1));
    assert_eq!(fake.ws_connections(V::Bybit), 1);
    assert_eq!(
        feed.quote(Venue::Bingx, "BTC/USDT"),
        None,
        "not wanted there"
    );
}

#[test]
fn a_refused_stream_falls_back_to_rest_within_five_seconds_then_recovers() {
    let fake = FakePublic::start();
    fake.refuse_streams(true);
    fake.set_ticker(
        V::Bybit,
        "ETH/USDT",
        Ticker::new("3000", "2999.9", "3000.1", "3000"),
    );
    let feed = Feed::start(&fake);
    let asked = Instant::now();
    feed.want(Venue::Bybit, "ETH/USDT");
    feed.wait_last(Venue::Bybit, "ETH/USDT", "3000", Duration::from_secs(5));
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert_eq!(fake.ws_connections(V::Bybit), 0);
    // Still down: REST keeps the price moving, once a second or so.
    fake.set_ticker(
        V::Bybit,
        "ETH/USDT",
        Ticker::new("3001", "3000.9", "3001.1", "3001"),
    );
    feed.wait_last(Venue::Bybit, "ETH/USDT", "3001", Duration::from_secs(3));
    let polls = fake.rest_calls(V::Bybit);
    assert!(polls >= 2, "{polls} REST calls");
    // The stream comes back: the feed reconnects (back-off capped at 1 s here)
    // and stops polling REST once the stream delivers.
    fake.refuse_streams(false);
    wait_for(Duration::from_secs(5), "the stream back", || {
        fake.ws_connections(V::Bybit) == 1
    });
    fake.rest_down(true); // from now on only the stream can deliver
    fake.set_ticker(
        V::Bybit,
        "ETH/USDT",
        Ticker::new("3002", "3001.9", "3002.1", "3002"),
    );
    feed.wait_last(Venue::Bybit, "ETH/USDT", "3002", Duration::from_secs(2));
    // A poll may have been under way as the stream came back; then none (the
    // fallback polls every second, so 1.5 s without a call means it stopped).
    wait_for(Duration::from_secs(3), "REST polling to stop", || {
        let c = fake.rest_calls(V::Bybit);
        stays(Duration::from_millis(1500), || {
            fake.rest_calls(V::Bybit) == c
        })
    });
    let settled = fake.rest_calls(V::Bybit);
    assert!(
        stays(Duration::from_secs(2), || fake.rest_calls(V::Bybit)
            == settled),
        "REST polled after the stream recovered: {} > {settled}",
        fake.rest_calls(V::Bybit)
    );
}

#[test]
fn a_refused_subscription_is_followed_by_rest() {
    let fake = FakePublic::start();
    fake.refuse_subscriptions(true);
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64002"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bingx, "BTC/USDT");
    let q = feed.wait_last(Venue::Bingx, "BTC/USDT", "64000", Duration::from_secs(5));
    assert_eq!((q.bid, q.ask, q.mark), (d("63999"), d("64001"), d("64002")));
    assert_eq!(
        fake.ws_connections(V::Bingx),
        1,
        "the stream is up, the symbol refused"
    );
    // REST keeps following it, once a second or so.
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64010", "64009", "64011", "64012"),
    );
    feed.wait_last(Venue::Bingx, "BTC/USDT", "64010", Duration::from_secs(3));
}

#[test]
fn a_quiet_symbol_gets_a_rest_refresh_while_the_stream_is_up() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64000"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "BTC/USDT");
    feed.wait_last(Venue::Bybit, "BTC/USDT", "64000", Duration::from_secs(3));
    wait_for(Duration::from_secs(2), "subscribed", || {
        fake.subscriptions()
            .contains(&"bybit tickers.BTCUSDT".to_string())
    });
    let calls = fake.rest_calls(V::Bybit);
    assert!(
        stays(Duration::from_millis(1500), || fake.rest_calls(V::Bybit)
            == calls),
        "no REST while the stream delivers"
    );
    feed.clock.advance(10_500);
    wait_for(Duration::from_secs(3), "a REST refresh", || {
        fake.rest_calls(V::Bybit) > calls
    });
    assert_eq!(fake.ws_connections(V::Bybit), 1, "the stream stays");
}

#[test]
fn a_dropped_connection_is_reconnected_and_prices_go_on() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bybit,
        "SOL/USDT",
        Ticker::new("150", "149.9", "150.1", "150"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "SOL/USDT");
    feed.wait_last(Venue::Bybit, "SOL/USDT", "150", Duration::from_secs(3));
    wait_for(Duration::from_secs(2), "connected", || {
        fake.ws_connections(V::Bybit) == 1
    });
    fake.drop_connections();
    wait_for(Duration::from_secs(5), "a second connection", || {
        fake.ws_connections(V::Bybit) == 2
    });
    fake.rest_down(true);
    fake.set_ticker(
        V::Bybit,
        "SOL/USDT",
        Ticker::new("151", "150.9", "151.1", "151"),
    );
    feed.wait_last(Venue::Bybit, "SOL/USDT", "151", Duration::from_secs(2));
}

#[test]
fn a_malformed_frame_is_ignored_and_the_old_quote_stays() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64000"),
    );
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64100", "64099", "64101", "64100"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "BTC/USDT");
    feed.want(Venue::Bingx, "BTC/USDT");
    feed.wait_last(Venue::Bybit, "BTC/USDT", "64000", Duration::from_secs(3));
    feed.wait_last(Venue::Bingx, "BTC/USDT", "64100", Duration::from_secs(3));
    wait_for(Duration::from_secs(2), "both connected", || {
        fake.ws_connections(V::Bybit) == 1 && fake.ws_connections(V::Bingx) == 1
    });
    fake.rest_down(true);
    // Bybit's bad frame carries lastPrice "not-a-number"; BingX's is not gzip.
    fake.send_malformed();
    assert!(stays(Duration::from_millis(500), || {
        feed.quote(Venue::Bybit, "BTC/USDT")
            .is_some_and(|q| q.last == d("64000"))
            && feed
                .quote(Venue::Bingx, "BTC/USDT")
                .is_some_and(|q| q.last == d("64100"))
    }));
    // Both streams survive: the next good frames arrive on the same connections.
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64005", "64004", "64006", "64005"),
    );
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64105", "64104", "64106", "64105"),
    );
    feed.wait_last(Venue::Bybit, "BTC/USDT", "64005", Duration::from_secs(2));
    feed.wait_last(Venue::Bingx, "BTC/USDT", "64105", Duration::from_secs(2));
    assert_eq!(fake.ws_connections(V::Bybit), 1);
    assert_eq!(fake.ws_connections(V::Bingx), 1);
}

#[test]
fn bingx_gzip_channels_merge_and_pings_are_answered() {
    let fake = FakePublic::start();
    fake.bingx_pings(true);
    fake.set_ticker(
        V::Bingx,
        "ETH/USDT",
        Ticker::new("3000.5", "3000.4", "3000.6", "3000.7"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bingx, "ETH/USDT");
    wait_for(Duration::from_secs(3), "all three channels", || {
        feed.quote(Venue::Bingx, "ETH/USDT").is_some_and(|q| {
            (q.last, q.bid, q.ask, q.mark) == (d("3000.5"), d("3000.4"), d("3000.6"), d("3000.7"))
        })
    });
    // The fake pushes every channel after the first subscription.
    wait_for(Duration::from_secs(2), "three subscriptions", || {
        let subs = fake.subscriptions();
        ["bookTicker", "lastPrice", "markPrice"]
            .iter()
            .all(|c| subs.contains(&format!("bingx ETH-USDT@{c}")))
    });
    // Funding comes from REST premiumIndex.
    wait_for(Duration::from_secs(3), "the funding rate", || {
        feed.quote(Venue::Bingx, "ETH/USDT")
            .is_some_and(|q| q.funding_rate == Some(d("0.0001")))
    });
    wait_for(Duration::from_secs(3), "Pongs", || fake.pongs() >= 3);
    assert_eq!(
        fake.ws_connections(V::Bingx),
        1,
        "kept alive, not reconnected"
    );
}

#[test]
fn bybit_pings_every_twenty_seconds() {
    let fake = FakePublic::start();
    fake.set_ticker(V::Bybit, "BTC/USDT", Ticker::new("1", "1", "1", "1"));
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "BTC/USDT");
    feed.wait_last(Venue::Bybit, "BTC/USDT", "1", Duration::from_secs(3));
    wait_for(Duration::from_secs(2), "connected", || {
        fake.ws_connections(V::Bybit) == 1
    });
    assert_eq!(fake.pings_answered(), 0);
    feed.clock.advance(20_000);
    wait_for(Duration::from_secs(2), "a ping", || {
        fake.pings_answered() == 1
    });
}

#[test]
fn a_silent_venue_with_rest_down_leaves_the_quote_to_go_stale() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64000"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "BTC/USDT");
    let q = feed.wait_last(Venue::Bybit, "BTC/USDT", "64000", Duration::from_secs(3));
    assert!(!q.is_stale(feed.clock.now_ms()));
    fake.silence(true);
    fake.rest_down(true);
    let rest_before = fake.rest_calls(V::Bybit);
    feed.clock.advance(31_000);
    // The feed notices: a silent stream is dropped and reconnected, REST is tried.
    wait_for(Duration::from_secs(5), "a reconnect and a REST try", || {
        fake.ws_connections(V::Bybit) >= 2 && fake.rest_calls(V::Bybit) > rest_before
    });
    let q = feed.quote(Venue::Bybit, "BTC/USDT").unwrap();
    assert_eq!(q.last, d("64000"), "never a zero price");
    assert!(
        q.is_stale(feed.clock.now_ms()),
        "{q:?} at {}",
        feed.clock.now_ms()
    );
    // The venue speaks again: fresh.
    fake.silence(false);
    fake.rest_down(false);
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64050", "64049", "64051", "64050"),
    );
    let q = feed.wait_last(Venue::Bybit, "BTC/USDT", "64050", Duration::from_secs(5));
    assert!(!q.is_stale(feed.clock.now_ms()));
}

#[test]
fn symbols_not_wanted_for_ten_minutes_are_unsubscribed() {
    let fake = FakePublic::start();
    fake.set_ticker(V::Bybit, "BTC/USDT", Ticker::new("1", "1", "1", "1"));
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "BTC/USDT");
    feed.wait_last(Venue::Bybit, "BTC/USDT", "1", Duration::from_secs(3));
    wait_for(Duration::from_secs(2), "connected", || {
        fake.ws_connections(V::Bybit) == 1
    });
    feed.clock.advance(10 * 60 * 1000 + 1000);
    wait_for(Duration::from_secs(3), "the unsubscription", || {
        fake.subscriptions()
            .contains(&"bybit -tickers.BTCUSDT".to_string())
    });
    // Its board slot is freed for other symbols, the quote with it.
    wait_for(Duration::from_secs(2), "the slot reclaimed", || {
        feed.board.wanted().is_empty()
    });
    assert_eq!(feed.quote(Venue::Bybit, "BTC/USDT"), None);
    // Nothing left to follow: no new price arrives and REST is not polled.
    let calls = fake.rest_calls(V::Bybit);
    fake.set_ticker(V::Bybit, "BTC/USDT", Ticker::new("2", "2", "2", "2"));
    assert!(stays(Duration::from_secs(2), || {
        feed.quote(Venue::Bybit, "BTC/USDT").is_none() && fake.rest_calls(V::Bybit) == calls
    }));
    // Forgotten once: not followed (and forgotten, and logged) again each turn.
    assert_eq!(feed.logged("no longer wanted; unsubscribing"), 1);
    assert_eq!(feed.logged("slots freed"), 1);
    assert_eq!(
        fake.subscriptions()
            .iter()
            .filter(|s| *s == "bybit tickers.BTCUSDT")
            .count(),
        1,
        "not subscribed again"
    );
    // Wanted again: a slot, a subscription and a price again.
    feed.want(Venue::Bybit, "BTC/USDT");
    feed.wait_last(Venue::Bybit, "BTC/USDT", "2", Duration::from_secs(3));
}

#[test]
fn a_stalled_venue_holds_neither_the_other_venue_nor_the_loop() {
    let fake = FakePublic::start();
    fake.stall(V::Bybit, true);
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64000"),
    );
    fake.set_ticker(
        V::Bingx,
        "ETH/USDT",
        Ticker::new("3000", "2999", "3001", "3000"),
    );
    let feed = Feed::start(&fake); // connect budget 2 s
    feed.want(Venue::Bybit, "BTC/USDT");
    feed.want(Venue::Bingx, "ETH/USDT");
    feed.wait_last(Venue::Bingx, "ETH/USDT", "3000", Duration::from_secs(3));
    // Longer than two Bybit connect budgets: every BingX change shows within 1 s.
    for i in 1..=10 {
        let last = format!("{}", 3000 + i);
        fake.set_ticker(
            V::Bingx,
            "ETH/USDT",
            Ticker::new(&last, "2999", "3001", "3000"),
        );
        feed.wait_last(Venue::Bingx, "ETH/USDT", &last, Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(500));
    }
    // Bybit was tried on both paths, gave up at its deadline and tried again.
    assert!(
        fake.stalled_requests(V::Bybit) >= 3,
        "{}",
        fake.stalled_requests(V::Bybit)
    );
    assert_eq!(feed.quote(Venue::Bybit, "BTC/USDT"), None);
    // The loop kept turning (the real process heartbeats on each turn).
    let gap = feed.max_gap_ms.load(Ordering::SeqCst);
    assert!(gap < 500, "the loop stood still for {gap} ms");
    // The venue answers again: followed within the back-off and a poll.
    fake.stall(V::Bybit, false);
    feed.wait_last(Venue::Bybit, "BTC/USDT", "64000", Duration::from_secs(5));
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// The real binary: with `PAPER_PRICES=bybit` the `market-data` child follows the
/// configured paper bot's market (the admin's default `BTC/USDT`) on the fake
/// and its metrics show the stream up, messages and a malformed frame.
#[test]
fn the_market_data_process_follows_paper_bots_on_the_live_venue() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64000"),
    );
    // Listed by the fake's catalogue too, but nobody runs a bot on it.
    fake.set_ticker(
        V::Bybit,
        "ETH/USDT",
        Ticker::new("3100", "3099.9", "3100.1", "3100"),
    );
    let (ws, base, bingx_ws) = (fake.bybit_ws_url(), fake.base_url(), fake.bingx_ws_url());
    let mut env = common::bots::CALM.to_vec();
    env.extend([
        ("ENABLE_METRICS", "true"),
        ("PAPER_PRICES", "bybit"),
        ("BYBIT_WS_PUBLIC_URL", ws.as_str()),
        ("BYBIT_BASE_URL", base.as_str()),
        ("BINGX_WS_PUBLIC_URL", bingx_ws.as_str()),
        ("BINGX_BASE_URL", base.as_str()),
    ]);
    let s = common::Server::with(common::Options {
        workers: 1,
        env,
        ..common::Options::default()
    });
    let children = common::children_with_title(s.pid(), "blitz: market-data");
    assert_eq!(children.len(), 1, "one market-data process: {children:?}");
    // A configured bot that is not started is not followed; a started one is.
    let idle = common::bots::user(&s, "idle@example.com", false);
    let eth = serde_json::json!({"exchange": "paper", "symbol": "ETH/USDT",
        "side": "long", "leverage": 10, "take_profit": 10, "stop_loss": 0, "rounds": 1,
        "grids": [{"amount": 10, "gap": 0}], "repeat": false});
    let r = idle.call(&s, "PUT", "/api/bot/config", &eth.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let u = common::bots::user(&s, "runs@example.com", false);
    let r = u.call(&s, "POST", "/api/bot/start", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let metrics = || common::get(s.port, "/metrics").text();
    wait_for(Duration::from_secs(10), "the bybit stream up", || {
        sample(&metrics(), r#"blitz_market_data_stream_up{venue="bybit"}"#) == Some(1.0)
    });
    assert!(fake
        .subscriptions()
        .contains(&"bybit tickers.BTCUSDT".to_string()));
    let m = metrics();
    assert_eq!(
        sample(&m, r#"blitz_market_data_stream_up{venue="bingx"}"#),
        Some(0.0)
    );
    assert!(sample(&m, r#"blitz_market_data_messages_total{venue="bybit"}"#) >= Some(2.0));
    assert_eq!(
        sample(&m, r#"blitz_market_data_malformed_total{venue="bybit"}"#),
        Some(0.0)
    );
    assert_eq!(fake.ws_connections(V::Bingx), 0, "nothing wanted on BingX");
    assert!(
        !fake.subscriptions().iter().any(|s| s.contains("ETHUSDT")),
        "a stopped bot's market is followed: {:?}",
        fake.subscriptions()
    );
    fake.send_malformed();
    wait_for(
        Duration::from_secs(5),
        "the malformed frame counted",
        || {
            sample(
                &metrics(),
                r#"blitz_market_data_malformed_total{venue="bybit"}"#,
            ) == Some(1.0)
        },
    );
    assert!(sample(
        &metrics(),
        r#"process_resident_memory_bytes{process="market-data"}"#
    )
    .is_some_and(|v| v > 1e6));
}

/// What a new user sees with `PAPER_PRICES=bybit`: the paper bot enters at the
/// fake's best ask (not its last or mark), the status marks the position at the
/// exchange's mark price and follows it, and when both the stream and
/// REST go quiet the status says `price_stale` once the quote is 30 s old.
#[test]
fn a_paper_bot_on_live_bybit_prices_trades_at_the_book_and_notices_staleness() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64000", "63990", "64010.5", "63995"),
    );
    let (ws, base, bingx_ws) = (fake.bybit_ws_url(), fake.base_url(), fake.bingx_ws_url());
    let mut env = common::bots::CALM.to_vec();
    env.extend([
        ("PAPER_PRICES", "bybit"),
        ("BYBIT_WS_PUBLIC_URL", ws.as_str()),
        ("BYBIT_BASE_URL", base.as_str()),
        ("BINGX_WS_PUBLIC_URL", bingx_ws.as_str()),
        ("BINGX_BASE_URL", base.as_str()),
    ]);
    let s = common::Server::with(common::Options {
        workers: 1,
        env,
        ..common::Options::default()
    });
    let u = common::bots::user(&s, "live@example.com", false);
    let config = serde_json::json!({"exchange": "paper", "symbol": "BTC/USDT",
        "side": "long", "leverage": 10, "take_profit": 10, "stop_loss": 0, "rounds": 1,
        "grids": [{"amount": 64.0105, "gap": 0}], "repeat": false});
    let r = u.call(&s, "PUT", "/api/bot/config", &config.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let r = u.call(&s, "POST", "/api/bot/start", "");
    assert_eq!(r.status, 200, "{}", r.text());

    let mut st = serde_json::Value::Null;
    wait_for(
        Duration::from_secs(20),
        "the entry filled and marked",
        || {
            st = u.status(&s);
            st["position"]["mark_price"].is_number()
        },
    );
    let p = &st["position"];
    // 64.0105 USDT × 10 at the ask 64,010.5 = 0.01 BTC.
    assert_eq!(p["avg_entry"].as_f64(), Some(64010.5), "{st}");
    assert_eq!(p["size"].as_f64(), Some(0.01), "{st}");
    assert_eq!(p["mark_price"].as_f64(), Some(63995.0), "{st}");
    assert_eq!(st["price_stale"], false, "{st}");

    // The feed follows the fake: a new mark reaches the status.
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64100", "64090", "64110", "64105"),
    );
    wait_for(Duration::from_secs(10), "the new mark", || {
        u.status(&s)["position"]["mark_price"].as_f64() == Some(64105.0)
    });

    // Nothing arrives any more, from the stream or REST: stale after 30 s.
    fake.silence(true);
    fake.rest_down(true);
    wait_for(Duration::from_secs(60), "price_stale", || {
        u.status(&s)["price_stale"] == true
    });
    fake.silence(false);
    fake.rest_down(false);
    fake.set_ticker(
        V::Bybit,
        "BTC/USDT",
        Ticker::new("64200", "64190", "64210", "64205"),
    );
    wait_for(Duration::from_secs(30), "fresh prices again", || {
        let st = u.status(&s);
        st["price_stale"] == false && st["position"]["mark_price"].as_f64() == Some(64205.0)
    });
}

/// The catalogue's hourly last price gives way to the price board's for the
/// symbols the market-data process follows; the others keep the cached figure.
#[test]
fn the_catalogue_shows_followed_symbols_at_their_live_price() {
    let public = FakePublic::start();
    public.set_ticker(
        V::Bybit,
        "ETH/USDT",
        Ticker::new("3123.5", "3123.4", "3123.6", "3123.5"),
    );
    let rest = common::fake_bybit::FakeBybit::start("k", "s");
    let (ws, base) = (public.bybit_ws_url(), rest.url());
    let mut env = common::bots::CALM.to_vec();
    env.extend([
        ("PAPER_PRICES", "bybit"),
        ("BYBIT_WS_PUBLIC_URL", ws.as_str()),
        ("BYBIT_BASE_URL", base.as_str()),
    ]);
    let s = common::Server::with(common::Options {
        workers: 1,
        env,
        ..common::Options::default()
    });
    let u = common::bots::user(&s, "eth@example.com", false);
    let config = serde_json::json!({"exchange": "paper", "symbol": "ETH/USDT",
        "side": "long", "leverage": 10, "take_profit": 10, "stop_loss": 0, "rounds": 1,
        "grids": [{"amount": 50, "gap": 0}], "repeat": false});
    let r = u.call(&s, "PUT", "/api/bot/config", &config.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let r = u.call(&s, "POST", "/api/bot/start", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let last = |symbol: &str| {
        let v = u.get(&s, "/api/markets?exchange=bybit");
        v["markets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["symbol"] == symbol)
            .map(|m| m["last_price"].clone())
    };
    wait_for(Duration::from_secs(15), "ETH at the streamed price", || {
        last("ETH/USDT").and_then(|p| p.as_f64()) == Some(3123.5)
    });
    // BTC is not followed: the catalogue's own figure, the REST fake's price.
    let cached: f64 = rest.book().price.to_string().parse().unwrap();
    assert_eq!(last("BTC/USDT").and_then(|p| p.as_f64()), Some(cached));
}

#[test]
fn a_symbol_rest_does_not_list_is_not_polled_for_again() {
    let fake = FakePublic::start();
    fake.refuse_streams(true);
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "NOPE/USDT");
    wait_for(Duration::from_secs(5), "a REST poll", || {
        fake.rest_calls(V::Bybit) >= 1
    });
    wait_for(Duration::from_secs(2), "the symbol marked unlisted", || {
        feed.logged("not listed by the REST tickers") == 1
    });
    let calls = fake.rest_calls(V::Bybit);
    assert!(
        stays(Duration::from_millis(2500), || fake.rest_calls(V::Bybit)
            == calls),
        "REST polled again for an unlisted symbol: {} > {calls}",
        fake.rest_calls(V::Bybit)
    );
    assert_eq!(feed.quote(Venue::Bybit, "NOPE/USDT"), None);
    assert_eq!(feed.logged("not listed by the REST tickers"), 1);
}

#[test]
fn failing_rest_polls_back_off() {
    let fake = FakePublic::start();
    fake.refuse_streams(true);
    fake.rest_down(true);
    fake.set_ticker(V::Bybit, "BTC/USDT", Ticker::new("1", "1", "1", "1"));
    let feed = Feed::start(&fake);
    feed.want(Venue::Bybit, "BTC/USDT");
    wait_for(Duration::from_secs(3), "a first REST poll", || {
        fake.rest_calls(V::Bybit) >= 1
    });
    let first = fake.rest_calls(V::Bybit);
    // Once a second without back-off: 6 more; with it (1, 2, 4 s): at most 3.
    std::thread::sleep(Duration::from_secs(6));
    let more = fake.rest_calls(V::Bybit) - first;
    assert!((1..=3).contains(&more), "{more} REST calls in 6 s");
    // REST answers again: the next try (within the current delay) delivers.
    fake.rest_down(false);
    feed.wait_last(Venue::Bybit, "BTC/USDT", "1", Duration::from_secs(9));
}

#[test]
fn a_stream_of_heartbeats_without_tickers_falls_back_to_rest_then_reconnects() {
    let fake = FakePublic::start();
    fake.bingx_pings(true);
    fake.set_ticker(V::Bingx, "BTC/USDT", Ticker::new("5", "5", "5", "5"));
    let feed = Feed::start(&fake);
    feed.want(Venue::Bingx, "BTC/USDT");
    feed.wait_last(Venue::Bingx, "BTC/USDT", "5", Duration::from_secs(3));
    wait_for(Duration::from_secs(3), "pings answered", || {
        fake.pongs() >= 2
    });
    // The fake sends tickers only on change: from now on only `Ping`s come.
    wait_for(Duration::from_secs(3), "REST quiet", || {
        let c = fake.rest_calls(V::Bingx);
        stays(Duration::from_millis(1200), || {
            fake.rest_calls(V::Bingx) == c
        })
    });
    let calls = fake.rest_calls(V::Bingx);
    feed.clock.advance(5_500);
    wait_for(Duration::from_secs(3), "the REST fallback", || {
        fake.rest_calls(V::Bingx) > calls
    });
    assert_eq!(fake.ws_connections(V::Bingx), 1);
    feed.clock.advance(20_000);
    wait_for(Duration::from_secs(3), "a reconnect", || {
        fake.ws_connections(V::Bingx) == 2
    });
}

#[test]
fn no_quote_before_the_book_and_a_missing_book_is_filled_from_rest() {
    let fake = FakePublic::start();
    fake.no_bingx_book(true);
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64002"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bingx, "BTC/USDT");
    wait_for(Duration::from_secs(3), "the stream subscribed", || {
        fake.subscriptions()
            .contains(&"bingx BTC-USDT@lastPrice".to_string())
    });
    // The last price streams in, the book does not: no quote with a made-up book.
    assert!(stays(Duration::from_millis(1500), || feed
        .quote(Venue::Bingx, "BTC/USDT")
        .is_none()));
    // REST fills the book once the stream has not for 3 s.
    let q = feed.wait_last(Venue::Bingx, "BTC/USDT", "64000", Duration::from_secs(5));
    assert_eq!((q.bid, q.ask, q.mark), (d("63999"), d("64001"), d("64002")));
    assert_eq!(fake.ws_connections(V::Bingx), 1, "the stream stays");
}

#[test]
fn a_quote_is_as_old_as_its_oldest_part() {
    let fake = FakePublic::start();
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64002"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bingx, "BTC/USDT");
    let first = feed.wait_last(Venue::Bingx, "BTC/USDT", "64000", Duration::from_secs(3));
    // Later only the last price moves on BingX's own channel: the book (and
    // so the quote) is as old as before.
    feed.clock.advance(2_000);
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64010", "63999", "64001", "64002"),
    );
    let q = feed.wait_last(Venue::Bingx, "BTC/USDT", "64010", Duration::from_secs(3));
    assert!(
        q.time_ms < first.time_ms + 2_000,
        "{} vs {}",
        q.time_ms,
        first.time_ms
    );
}

#[test]
fn a_rate_limited_bingx_subscription_is_retried_not_refused() {
    let fake = FakePublic::start();
    fake.rest_down(true); // only the stream can deliver
    fake.rate_limit_bingx_subscriptions(2);
    fake.set_ticker(
        V::Bingx,
        "BTC/USDT",
        Ticker::new("64000", "63999", "64001", "64002"),
    );
    let feed = Feed::start(&fake);
    feed.want(Venue::Bingx, "BTC/USDT");
    let q = feed.wait_last(Venue::Bingx, "BTC/USDT", "64000", Duration::from_secs(5));
    assert_eq!((q.bid, q.ask), (d("63999"), d("64001")));
    // The fake pushes every channel once one is subscribed: wait for the retry.
    wait_for(Duration::from_secs(5), "the retried subscriptions", || {
        fake.subscriptions().len() >= 3
    });
    let subs = fake.subscriptions();
    for c in ["bookTicker", "lastPrice", "markPrice"] {
        let n = subs
            .iter()
            .filter(|s| **s == format!("bingx BTC-USDT@{c}"))
            .count();
        assert_eq!(n, 1, "{c} accepted once: {subs:?}");
    }
    assert_eq!(feed.logged("subscription rate-limited"), 1);
    assert_eq!(feed.logged("subscription refused"), 0);
    assert_eq!(fake.ws_connections(V::Bingx), 1);
}

#[test]
fn a_stream_that_drops_after_its_first_ticker_keeps_backing_off() {
    let fake = FakePublic::start();
    fake.drop_after_data(true);
    fake.rest_down(true);
    fake.set_ticker(V::Bybit, "BTC/USDT", Ticker::new("7", "7", "7", "7"));
    let feed = Feed::start_capped(&fake, 30_000);
    feed.want(Venue::Bybit, "BTC/USDT");
    feed.wait_last(Venue::Bybit, "BTC/USDT", "7", Duration::from_secs(3));
    let first = Instant::now();
    let at_first = fake.ws_connections(V::Bybit);
    // Delivering once does not reset the back-off: 0.5 s, 1 s, 2 s … apart
    // (each up to a quarter less), not every 0.5 s.
    std::thread::sleep(Duration::from_millis(3200));
    let more = fake.ws_connections(V::Bybit) - at_first;
    assert!(
        (1..=3).contains(&more),
        "{more} reconnects in {:?}",
        first.elapsed()
    );
}
