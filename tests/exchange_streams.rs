//! The private account streams (C16) with the real binary against the fake
//! exchanges' private WebSockets (tests/common/fake_bybit_ws.rs,
//! fake_bingx_ws.rs): bots driven by stream events with REST reads far below
//! polling, a fill reaching the strategy without waiting for its tick, a
//! reconnect reconciling what the stream missed, REST polling while the stream
//! is down, malformed frames, and BingX listen-key expiry.

mod common;

use std::time::{Duration, Instant};

use common::bots::{user, wait_status, User, CALM};
use common::fake_bingx::FakeBingx;
use common::fake_book::Book;
use common::fake_bybit::{FakeBybit, Malformed};
use common::{wait_for, Options, Server};
use rust_decimal::{dec, Decimal};
use serde_json::json;

const KEY: &str = "tEsTkEy0123abcd";
const SECRET: &str = "s3cr3t-for-the-fake";
/// A slow tick: anything the bot does within it was not its polling.
const SLOW_TICK: &str = "10000";
const WAIT: Duration = Duration::from_secs(20);

/// One fake exchange with its private stream.
enum Fake {
    Bybit(FakeBybit),
    Bingx(FakeBingx),
}

impl Fake {
    fn bybit() -> Fake {
        Fake::Bybit(FakeBybit::start(KEY, SECRET))
    }

    fn bingx() -> Fake {
        Fake::Bingx(FakeBingx::start(KEY, SECRET))
    }

    fn name(&self) -> &'static str {
        match self {
            Fake::Bybit(_) => "bybit",
            Fake::Bingx(_) => "bingx",
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        match self {
            Fake::Bybit(f) => f.book(),
            Fake::Bingx(f) => f.book(),
        }
    }

    fn set_price(&self, p: Decimal) {
        match self {
            Fake::Bybit(f) => f.set_price(p),
            Fake::Bingx(f) => f.set_price(p),
        }
    }

    /// Private stream connections open now, and ever opened.
    fn connections(&self) -> (usize, u64) {
        match self {
            Fake::Bybit(f) => f.private_connections(),
            Fake::Bingx(f) => f.private_connections(),
        }
    }

    fn drop_sockets(&self) {
        match self {
            Fake::Bybit(f) => f.drop_private_sockets(),
            Fake::Bingx(f) => f.drop_private_sockets(),
        }
    }

    fn silence(&self, on: bool) {
        match self {
            Fake::Bybit(f) => f.silence_streams(on),
            Fake::Bingx(f) => f.silence_streams(on),
        }
    }

    fn refuse_auths(&self, n: usize) {
        match self {
            Fake::Bybit(f) => f.refuse_auths(n),
            Fake::Bingx(f) => f.refuse_auths(n),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Fake::Bybit(f) => vec![
                ("BYBIT_BASE_URL", f.url()),
                ("BYBIT_WS_PRIVATE_URL", f.private_ws_url()),
            ],
            Fake::Bingx(f) => vec![
                ("BINGX_BASE_URL", f.url()),
                ("BINGX_WS_USER_URL", f.user_ws_url()),
            ],
        }
    }
}

fn server(f: &Fake, tick: &'static str) -> Server {
    let owned = f.env();
    let mut env: Vec<(&str, &str)> = CALM
        .iter()
        .copied()
        .filter(|(k, _)| *k != "BOT_TICK_MS")
        .collect();
    env.push(("BOT_TICK_MS", tick));
    env.push(("ENABLE_METRICS", "true"));
    env.extend(owned.iter().map(|(k, v)| (*k, v.as_str())));
    Server::with(Options {
        workers: 2,
        env,
        ..Options::default()
    })
}

/// A user whose bot trades on `f` with the fake's key, started.
fn start_bot(s: &Server, f: &Fake, email: &str) -> User {
    let u = user(s, email, false);
    let body = json!({"exchange": f.name(), "api_key": KEY, "api_secret": SECRET});
    let r = u.call(s, "PUT", "/api/bot/config", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let r = u.call(s, "POST", "/api/bot/start", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    u
}

/// Waits until cycle `cycle`'s two legs and its take-profit rest.
fn wait_ladder(f: &Fake, uid: i64, cycle: i64) {
    let tp = format!("bz-{uid}-{cycle}-tp1");
    wait_for(WAIT, "legs and take-profit", || {
        let b = f.book();
        b.open_count() == 3 && b.order(&tp).is_some_and(|o| o.is_open())
    });
}

fn wait_live(f: &Fake) {
    wait_for(WAIT, "the account stream connected", || {
        f.connections().0 == 1
    });
}

fn metric(s: &Server, name: &str, labels: &str) -> f64 {
    let r = common::api::call(s.port, "GET", "/metrics", &[], "");
    assert_eq!(r.status, 200);
    let text = r.text();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in the scrape"))
}

/// The account's REST requests (not the public market data the market-data
/// process may poll) over `window`, by path.
fn requests_over(f: &Fake, window: Duration) -> Vec<String> {
    let before = f.book().seen.len();
    // A measurement window, not a wait for a condition.
    std::thread::sleep(window);
    f.book().seen[before..]
        .iter()
        .filter(|p| !p.contains("/market/") && !p.contains("/quote/"))
        .cloned()
        .collect()
}

/// The stream drives the bot: a quiet bot makes (almost) no REST reads, and a
/// leg fill reaches the strategy — its take-profit moves — long before the
/// five-second tick would have polled it.
fn driven_by_the_stream(f: Fake) {
    let s = server(&f, SLOW_TICK);
    let u = start_bot(&s, &f, "stream@example.com");
    wait_ladder(&f, u.id, 1);
    wait_live(&f);
    wait_status(&s, &u, "running");
    // After the first reconciliation the reads come from the stream: over
    // 12 s (above a tick) at most one reconciliation (open orders and the
    // position), where polling reads both at every step.
    let quiet = requests_over(&f, Duration::from_secs(12));
    assert!(
        quiet.len() <= 2,
        "{}: REST requests in 12 s: {quiet:?}",
        f.name()
    );

    let leg = f
        .book()
        .order(&format!("bz-{}-1-l1", u.id))
        .expect("leg")
        .price;
    let tp2 = format!("bz-{}-1-tp2", u.id);
    let filled_at = Instant::now();
    f.set_price(leg);
    wait_for(WAIT, "the take-profit follows the leg's fill", || {
        f.book().order(&tp2).is_some_and(|o| o.is_open())
    });
    let took = filled_at.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "{}: the fill reached the bot after {took:?} (tick 10 s)",
        f.name()
    );
    assert!(u.events(&s).iter().any(|k| k == "leg_filled"));
    // The leg fill (the entry filled before the stream was up) was read
    // within a second of the exchange making it.
    let exchange = format!("exchange=\"{}\"", f.name());
    let fills = metric(&s, "blitz_exchange_fill_to_engine_seconds_count", &exchange);
    let within = metric(
        &s,
        "blitz_exchange_fill_to_engine_seconds_bucket",
        &format!("{exchange},le=\"1\""),
    );
    assert!(
        fills >= 1.0 && within == fills,
        "{within} of {fills} fills within 1 s"
    );
    assert_eq!(
        metric(
            &s,
            "blitz_exchange_streams",
            &format!("{exchange},state=\"connected\"")
        ),
        1.0
    );

    // The take-profit fills: the cycle closes, a trade is recorded, cycle 2.
    let tp = f.book().order(&tp2).unwrap().price;
    f.set_price(tp + dec!(50));
    wait_for(WAIT, "a recorded trade", || {
        !u.get(&s, "/api/trades")["trades"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    wait_ladder(&f, u.id, 2);
    assert!(f.book().refused.is_empty(), "{:?}", f.book().refused);

    // The last bot stops: its account's stream closes.
    let r = u.call(&s, "POST", "/api/bot/stop", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(WAIT, "the stream closed", || f.connections().0 == 0);
}

#[test]
fn a_bybit_bot_is_driven_by_its_stream() {
    driven_by_the_stream(Fake::bybit());
}

#[test]
fn a_bingx_bot_is_driven_by_its_stream() {
    driven_by_the_stream(Fake::bingx());
}

/// A fill the stream never reported (silent, then dropped) is found by the
/// reconciliation after the reconnect; while the stream cannot reconnect the
/// bot polls REST and keeps working.
fn reconnect_reconciles(f: Fake) {
    let s = server(&f, "1000");
    let u = start_bot(&s, &f, "reconnect@example.com");
    wait_ladder(&f, u.id, 1);
    wait_live(&f);
    // Silent: the book changes, the stream says nothing.
    f.silence(true);
    let leg = f
        .book()
        .order(&format!("bz-{}-1-l1", u.id))
        .expect("leg")
        .price;
    f.set_price(leg);
    let tp2 = format!("bz-{}-1-tp2", u.id);
    let (_, before) = f.connections();
    f.drop_sockets();
    f.silence(false);
    wait_for(WAIT, "a reconnect", || f.connections().1 > before);
    wait_for(WAIT, "the missed fill reconciled", || {
        f.book().order(&tp2).is_some_and(|o| o.is_open())
    });

    // Down for good (every authentication refused): the bot polls REST.
    f.refuse_auths(1_000);
    f.drop_sockets();
    wait_for(WAIT, "the stream down", || f.connections().0 == 0);
    let leg2 = f
        .book()
        .order(&format!("bz-{}-1-l2", u.id))
        .expect("leg 2")
        .price;
    f.set_price(leg2);
    let tp3 = format!("bz-{}-1-tp3", u.id);
    wait_for(WAIT, "the fill seen by polling", || {
        f.book().order(&tp3).is_some_and(|o| o.is_open())
    });
    let polled = requests_over(&f, Duration::from_secs(3));
    assert!(
        polled.len() >= 3,
        "{}: requests while down: {polled:?}",
        f.name()
    );
    let exchange = format!("exchange=\"{}\"", f.name());
    assert!(metric(&s, "blitz_exchange_stream_reconnects_total", &exchange) >= 3.0);
    assert_eq!(wait_status(&s, &u, "running")["status"], "running");
}

#[test]
fn bybit_reconnect_reconciles_and_polls_while_down() {
    reconnect_reconciles(Fake::bybit());
}

#[test]
fn bingx_reconnect_reconciles_and_polls_while_down() {
    reconnect_reconciles(Fake::bingx());
}

#[test]
fn malformed_frames_are_counted_and_change_nothing() {
    let f = Fake::bybit();
    let s = server(&f, "1000");
    let u = start_bot(&s, &f, "malformed@example.com");
    wait_ladder(&f, u.id, 1);
    wait_live(&f);
    let Fake::Bybit(fb) = &f else { unreachable!() };
    fb.send_malformed(Malformed::InvalidJson);
    fb.send_malformed(Malformed::GarbledNumber);
    wait_for(WAIT, "two malformed frames counted", || {
        metric(
            &s,
            "blitz_exchange_stream_malformed_total",
            "exchange=\"bybit\"",
        ) >= 2.0
    });
    // Nothing was read as a fill, the stream stays up, the bot runs on.
    assert_eq!(f.connections().0, 1);
    let st = wait_status(&s, &u, "running");
    assert_eq!(st["open_orders"], 3, "{st}");
    assert!(!u.events(&s).iter().any(|k| k == "leg_filled"));
}

/// A frame the bot cannot read may have carried a fill: the account
/// reconciles with REST at once, rather than trust its view until the next
/// scheduled reconciliation (a minute) while the position grew.
#[test]
fn a_malformed_frame_makes_the_account_reconcile_at_once() {
    let f = Fake::bybit();
    let s = server(&f, "1000");
    let u = start_bot(&s, &f, "lostframe@example.com");
    wait_ladder(&f, u.id, 1);
    wait_live(&f);
    // Reconciled: the steps (every second) read the account's view.
    wait_for(WAIT, "reads served by the stream", || {
        requests_over(&f, Duration::from_millis(1500)).is_empty()
    });
    // The leg fills and its event is lost on the way (here: not pushed, and
    // a garbled frame arrives instead; the stream stays silent after it).
    f.silence(true);
    let leg = f
        .book()
        .order(&format!("bz-{}-1-l1", u.id))
        .expect("leg")
        .price;
    f.set_price(leg);
    let Fake::Bybit(fb) = &f else { unreachable!() };
    fb.send_malformed(Malformed::GarbledNumber);
    let tp2 = format!("bz-{}-1-tp2", u.id);
    // Well within the minute between scheduled reconciliations.
    wait_for(Duration::from_secs(10), "the fill reconciled", || {
        f.book().order(&tp2).is_some_and(|o| o.is_open())
    });
    assert_eq!(f.connections().0, 1, "the stream stays up");
}

#[test]
fn bingx_listen_keys_are_renewed_when_they_expire() {
    let f = Fake::bingx();
    let s = server(&f, SLOW_TICK);
    let u = start_bot(&s, &f, "listenkey@example.com");
    wait_ladder(&f, u.id, 1);
    wait_live(&f);
    let Fake::Bingx(fx) = &f else { unreachable!() };
    let (_, before) = f.connections();
    fx.expire_listen_keys();
    wait_for(WAIT, "a new stream with a new listen key", || {
        let (live, total) = f.connections();
        live == 1 && total > before
    });
    // The new stream delivers: a fill wakes the bot before its tick.
    let leg = f
        .book()
        .order(&format!("bz-{}-1-l1", u.id))
        .expect("leg")
        .price;
    let at = Instant::now();
    f.set_price(leg);
    let tp2 = format!("bz-{}-1-tp2", u.id);
    wait_for(WAIT, "the fill after the renewal", || {
        f.book().order(&tp2).is_some_and(|o| o.is_open())
    });
    assert!(
        at.elapsed() < Duration::from_millis(2500),
        "{:?}",
        at.elapsed()
    );
}

/// A listen key that expires again right after each renewal (here: keys that
/// live 300 ms) makes the account back off, not reconnect and create keys as
/// fast as BingX answers.
#[test]
fn bingx_listen_keys_that_keep_expiring_back_off() {
    let f = Fake::bingx();
    let s = server(&f, SLOW_TICK);
    let u = start_bot(&s, &f, "keystorm@example.com");
    wait_ladder(&f, u.id, 1);
    wait_live(&f);
    let Fake::Bingx(fx) = &f else { unreachable!() };
    fx.set_listen_key_ttl_ms(300);
    fx.expire_listen_keys();
    let (_, before) = f.connections();
    // A measurement window: at once, the connections would follow each
    // other every 300 ms (about 20 in 6 s); backing off from 0.5 s they are
    // at most 0.3 + 0.5, 0.3 + 1, 0.3 + 2 s apart.
    std::thread::sleep(Duration::from_secs(6));
    let (_, after) = f.connections();
    assert!(after - before <= 6, "{} connections in 6 s", after - before);
    assert!(after > before, "it does reconnect");
    assert_eq!(wait_status(&s, &u, "running")["status"], "running");
}

/// Many accounts, one loop: three hundred Bybit accounts each get their own
/// authenticated stream, all driven by the one `account-streams` thread (and
/// the few connect threads), and an order on the last account wakes exactly
/// its bot.
#[test]
fn many_accounts_share_one_event_loop() {
    use std::sync::{Arc, Mutex};

    use blitz::exchange::bybit::Bybit;
    use blitz::exchange::rest::{ApiKey, RestSettings};
    use blitz::exchange::stream::{connect, Streams};
    use blitz::exchange::{Exchange, NewOrder, OrderKind, OrderSide, Side};

    const ACCOUNTS: usize = 300;
    let fake = FakeBybit::start("key-0", "secret-0");
    for i in 1..ACCOUNTS {
        fake.add_account(&format!("key-{i}"), &format!("secret-{i}"));
    }
    let rest = RestSettings {
        bybit_url: fake.url(),
        timeout_ms: 5000,
        ..RestSettings::default()
    };
    let settings = connect::Settings {
        bybit_ws: fake.private_ws_url(),
        bingx_ws: "ws://127.0.0.1:9/swap-market".into(),
        bybit_rest: fake.url(),
        bingx_rest: "http://127.0.0.1:9".into(),
        timeout: Duration::from_secs(5),
    };
    let woken = Arc::new(Mutex::new(Vec::new()));
    let w = woken.clone();
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let limits = blitz::exchange::rest::budget::Limits::default();
    let streams = Streams::new(
        settings,
        blitz::exchange::stream::poll::Paces::new(limits.bybit(), limits.bingx()),
        None,
        Box::new(move |bot| w.lock().unwrap().push(bot)),
        log,
    );
    let mut exchanges: Vec<Arc<dyn Exchange>> = Vec::new();
    for i in 0..ACCOUNTS {
        let key = ApiKey {
            key: format!("key-{i}"),
            secret: format!("secret-{i}"),
        };
        let adapter: Arc<dyn Exchange> = Arc::new(Bybit::new(&rest, key.clone()));
        exchanges.push(streams.attach(i as i64, "BTC/USDT", &key, None, adapter));
    }
    wait_for(
        Duration::from_secs(60),
        "every account's stream live",
        || fake.private_connections().0 == ACCOUNTS,
    );
    let names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect();
    let ours = |prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).count();
    assert_eq!(ours("account-stream"), 1, "{names:?}");
    assert_eq!(ours("stream-connect"), 4, "{names:?}");
    // The clock offset for the authentications is read once, not per
    // account (those reads are outside the request budget): at most one per
    // connect thread racing the first.
    let clock_reads = || {
        fake.book()
            .seen
            .iter()
            .filter(|p| *p == "/v5/market/time")
            .count()
    };
    assert!(clock_reads() <= 4, "{} server-time reads", clock_reads());

    let last = ACCOUNTS - 1;
    let order = NewOrder {
        client_id: "many-1".into(),
        symbol: "BTC/USDT".into(),
        side: OrderSide::Buy,
        kind: OrderKind::Limit,
        price: Some(dec!(60000)),
        trigger_price: None,
        qty: dec!(0.001),
        reduce_only: false,
        position_side: Side::Long,
    };
    exchanges[last].place(&order).expect("placed");
    wait_for(WAIT, "the last account's bot woken", || {
        woken.lock().unwrap().contains(&(last as i64))
    });
    assert!(woken.lock().unwrap().iter().all(|b| *b == last as i64));
}
