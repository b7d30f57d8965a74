//! The budget under real threads: the window is never exceeded, urgent requests
//! go first, deadlines and bans refuse.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

fn budget(requests: u32, per_ms: u64) -> Arc<RequestBudget> {
    Arc::new(RequestBudget::new(
        Venue::Bybit,
        Limit {
            requests,
            per: Duration::from_millis(per_ms),
        },
    ))
}

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

#[test]
fn many_threads_never_exceed_the_window() {
    let b = budget(10, 200);
    let times = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let (b, times) = (b.clone(), times.clone());
            std::thread::spawn(move || {
                let p = Priority::ALL[k % 3];
                for _ in 0..10 {
                    // Each class waits its turn; nobody gives up within 10 s.
                    drop(b.acquire(p, soon(10_000)).unwrap());
                    times.lock().unwrap().push(Instant::now());
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let mut t = times.lock().unwrap().clone();
    t.sort();
    assert_eq!(t.len(), 80);
    // Any 10 + 1 consecutive sends span at least the window (a little less, for
    // the moment between a grant and its caller's clock reading).
    let most = t.windows(11).map(|w| w[10] - w[0]).min().unwrap();
    assert!(
        most >= Duration::from_millis(190),
        "11 sends within {most:?}"
    );
    // ...and the budget was used, not idled: 8 windows' worth in about 7 windows.
    let span = t[79] - t[0];
    assert!(span < Duration::from_millis(2_500), "took {span:?}");
}

#[test]
fn waiting_protective_requests_go_before_placements_and_reads() {
    // One request per 100 ms, answered before the next may go: the order in which
    // the threads record their turn is the order of the turns.
    let b = budget(1, 100);
    b.pause(Duration::from_millis(400));
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    // The least urgent start first: arriving early must not help them.
    for p in [
        Priority::Reconcile,
        Priority::Placement,
        Priority::Protective,
    ] {
        for _ in 0..3 {
            let (b, order) = (b.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let turn = b.acquire(p, soon(5_000)).unwrap();
                order.lock().unwrap().push(p);
                drop(turn);
            }));
        }
    }
    // All nine wait while the budget is paused.
    let t = Instant::now();
    while b.lock().waiting != [3, 3, 3] {
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            b.lock().waiting
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(order.lock().unwrap().is_empty());
    threads.into_iter().for_each(|t| t.join().unwrap());
    use Priority::*;
    assert_eq!(
        *order.lock().unwrap(),
        [
            Protective, Protective, Protective, Placement, Placement, Placement, Reconcile,
            Reconcile, Reconcile
        ]
    );
}

#[test]
fn reads_leave_room_for_protective_requests() {
    let b = budget(10, 10_000);
    // Reads stop at 6 of 10: the 7th is refused at once, not after its deadline.
    for _ in 0..6 {
        drop(b.acquire(Priority::Reconcile, soon(100)).unwrap());
    }
    let t = Instant::now();
    assert!(matches!(
        b.acquire(Priority::Reconcile, soon(1_000)),
        Err(ExchangeError::RateLimited)
    ));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    drop(b.acquire(Priority::Placement, soon(100)).unwrap());
    assert!(b.acquire(Priority::Placement, soon(100)).is_err());
    for _ in 0..3 {
        drop(b.acquire(Priority::Protective, soon(100)).unwrap());
    }
    assert!(b.acquire(Priority::Protective, soon(100)).is_err());
}

#[test]
fn a_request_waits_for_its_slot_within_its_deadline() {
    let b = budget(2, 300);
    drop(b.acquire(Priority::Protective, soon(100)).unwrap());
    drop(b.acquire(Priority::Protective, soon(100)).unwrap());
    let t = Instant::now();
    drop(b.acquire(Priority::Protective, soon(1_000)).unwrap());
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(900),
        "{waited:?}"
    );
}

#[test]
fn a_ban_closes_every_class_and_a_pause_is_waited_out() {
    let b = budget(100, 5_000);
    b.ban(Duration::from_secs(600));
    assert!(b.closed());
    for p in Priority::ALL {
        let t = Instant::now();
        assert!(matches!(
            b.acquire(p, soon(2_000)),
            Err(ExchangeError::RateLimited)
        ));
        assert!(t.elapsed() < Duration::from_millis(100));
    }
    let b = budget(100, 5_000);
    b.pause(Duration::from_millis(200));
    let t = Instant::now();
    drop(b.acquire(Priority::Reconcile, soon(1_000)).unwrap());
    assert!(
        t.elapsed() >= Duration::from_millis(180),
        "{:?}",
        t.elapsed()
    );
    assert!(!b.closed());
}

#[test]
fn each_exchange_and_base_has_one_budget() {
    let limit = Limits::default().bybit();
    let a = shared(Venue::Bybit, "ip", "http://test-a", limit);
    let again = shared(
        Venue::Bybit,
        "ip",
        "http://test-a",
        Limits::default().bingx(),
    );
    assert!(Arc::ptr_eq(&a, &again));
    // The first user's limit stays.
    assert_eq!(again.limit(), limit);
    let other = shared(Venue::Bybit, "ip", "http://test-b", limit);
    assert!(!Arc::ptr_eq(&a, &other));
    let bingx = shared(Venue::Bingx, "ip", "http://test-a", limit);
    assert!(!Arc::ptr_eq(&a, &bingx));
}

#[test]
fn closing_orders_and_stops_are_protective() {
    use crate::exchange::{OrderSide, Side};
    let mut o = NewOrder {
        client_id: "bz-1-1-l1".into(),
        symbol: "BTC/USDT".into(),
        side: OrderSide::Buy,
        kind: OrderKind::Limit,
        price: None,
        trigger_price: None,
        qty: rust_decimal::Decimal::ONE,
        reduce_only: false,
        position_side: Side::Long,
    };
    assert_eq!(Priority::of_order(&o), Priority::Placement);
    o.reduce_only = true;
    assert_eq!(Priority::of_order(&o), Priority::Protective);
    o.reduce_only = false;
    o.kind = OrderKind::Stop;
    assert_eq!(Priority::of_order(&o), Priority::Protective);
}

#[test]
fn an_optional_read_never_waits_and_fills_at_most_two_fifths() {
    let b = budget(10, 60_000);
    let far = soon(10_000);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(optional(|| b.acquire(Priority::Reconcile, far)).unwrap());
    }
    let t = Instant::now();
    assert_eq!(
        optional(|| b.acquire(Priority::Reconcile, far)).err(),
        Some(ExchangeError::RateLimited),
        "the fifth of ten is over 40 %"
    );
    assert!(t.elapsed() < Duration::from_millis(100), "refused at once");
    // A read the bot needs still gets the reconcile share (60 %), and an
    // order inside `optional` is not optional.
    held.push(b.acquire(Priority::Reconcile, far).unwrap());
    held.push(b.acquire(Priority::Reconcile, far).unwrap());
    held.push(optional(|| b.acquire(Priority::Protective, far)).unwrap());
    assert_eq!(held.len(), 7);
}

#[test]
fn an_optional_read_gives_way_to_waiting_requests_and_closings() {
    let b = budget(10, 60_000);
    b.pause(Duration::from_secs(60));
    assert!(optional(|| b.acquire(Priority::Reconcile, soon(10_000))).is_err());
    let b = budget(10, 60_000);
    b.lock().waiting[Priority::Placement.rank()] += 1;
    assert!(optional(|| b.acquire(Priority::Reconcile, soon(10_000))).is_err());
}

#[test]
fn the_runner_takes_four_fifths_and_the_others_split_the_rest() {
    let bybit = Limits::default().bybit();
    assert_eq!(bybit.part(RUNNER_SHARE_PERMILLE).requests, 400);
    // Two workers and the market-data process.
    let other = other_share_permille(3);
    assert_eq!(bybit.part(other).requests, 33);
    assert!(400 + 3 * 33 <= bybit.requests);
    // However many processes, each may send something.
    assert_eq!(bybit.part(other_share_permille(300)).requests, 1);
    assert_eq!(
        Limit {
            requests: 1,
            per: Duration::from_secs(5)
        }
        .part(1)
        .requests,
        1
    );
}

#[test]
fn an_urgent_read_takes_the_placement_share() {
    let b = budget(10, 60_000);
    let far = soon(10_000);
    let mut held: Vec<_> = (0..6)
        .map(|_| b.acquire(Priority::Reconcile, far).unwrap())
        .collect();
    // The reads' 60 % is full: a plain read is refused, an urgent one goes.
    assert!(b.acquire(Priority::Reconcile, soon(50)).is_err());
    held.push(urgent(|| b.acquire(Priority::Reconcile, far)).unwrap());
    assert!(
        b.acquire(Priority::Reconcile, soon(50)).is_err(),
        "only inside"
    );
    assert_eq!(held.len(), 7);
}

#[test]
fn a_request_that_waiters_would_keep_past_its_deadline_is_refused_at_once() {
    // One per 400 ms, used: the first waiter gets the slot freed ~400 ms on; a
    // second one behind it, with 600 ms, could not get the next (~800 ms).
    let b = budget(1, 400);
    drop(b.acquire(Priority::Protective, soon(100)).unwrap());
    let first = {
        let b = b.clone();
        std::thread::spawn(move || b.acquire(Priority::Protective, soon(1_000)).map(drop))
    };
    let waiting = Instant::now();
    while b.lock().waiting_before(Priority::Protective) == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(5), "no waiter");
        std::thread::yield_now();
    }
    let t = Instant::now();
    assert!(matches!(
        b.acquire(Priority::Protective, soon(600)),
        Err(ExchangeError::RateLimited)
    ));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    assert!(first.join().unwrap().is_ok(), "the waiter got its turn");
}

#[test]
fn a_bounded_step_waits_at_most_its_total_for_every_request() {
    // The window frees in ~500 ms: alone, a request with a second would wait.
    let b = budget(1, 500);
    drop(b.acquire(Priority::Protective, soon(100)).unwrap());
    let t = Instant::now();
    let refused = bounded(Duration::from_millis(150), || {
        (0..3)
            .filter(|_| b.acquire(Priority::Protective, soon(1_000)).is_err())
            .count()
    });
    assert_eq!(refused, 3);
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    // Outside the step the bound is gone: the request waits for its turn.
    drop(b.acquire(Priority::Protective, soon(1_000)).unwrap());
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
}
