//! The Bybit adapter itself against the fake (which checks every request's
//! signature and documented parameters): the conditional stop, error codes,
//! malformed answers, executions and funding.

use blitz::exchange::bybit::Bybit;
use blitz::exchange::rest::{RestSettings, ATTEMPTS};
use blitz::exchange::{Exchange, ExchangeError, OrderKind, OrderSide, OrderStatus, Side};
use rust_decimal::{dec, Decimal};

use crate::common::fake_book::{Dir, TriggerBy};
use crate::common::fake_bybit::FakeBybit;
use crate::orders::{api_key, market, stop};
use crate::{KEY, SECRET};

const CREATE: &str = "/v5/order/create";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn adapter(fake: &FakeBybit) -> Bybit {
    let settings = RestSettings {
        bybit_url: fake.url(),
        timeout_ms: 3000,
        ..RestSettings::default()
    };
    let key = api_key();
    Bybit::new(&settings, key)
}

fn assert_nothing_refused(fake: &FakeBybit) {
    let b = fake.book();
    assert!(b.refused.is_empty(), "refused {:?}", b.refused);
}

#[test]
fn a_long_stop_is_placed_listed_triggered_by_the_mark_and_filled() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    let since = fake.book().server_ms() - 1000;
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.003), Side::Long))
        .unwrap();
    let placed = x
        .place(&stop("bz-1-1-sl1", dec!(64000), dec!(0.003), Side::Long))
        .unwrap();
    assert_eq!(
        (placed.kind, placed.status, placed.trigger_price),
        (OrderKind::Stop, OrderStatus::Open, Some(dec!(64000)))
    );
    assert_eq!(placed.client_id, "bz-1-1-sl1");
    // What reached the exchange: a conditional, reduce-only, close-on-trigger
    // sell on the long side, falling to the trigger, watching the mark.
    {
        let b = fake.book();
        let o = b.order("bz-1-1-sl1").unwrap();
        let t = o.trigger.unwrap();
        assert_eq!(
            (t.price, t.rise, t.by),
            (dec!(64000), false, TriggerBy::Mark)
        );
        assert!(o.close_on_trigger && !o.opens() && !o.buy && o.dir == Dir::Long);
        assert_eq!(
            (o.qty, placed.exchange_id.clone()),
            (dec!(0.003), o.id.to_string())
        );
    }
    let open = x.open_orders("BTC/USDT").unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!((open[0].kind, open[0].reduce_only), (OrderKind::Stop, true));
    assert_eq!(x.order("BTC/USDT", "bz-1-1-sl1").unwrap().unwrap(), open[0]);

    // The last price crossing does not fire a stop on the mark; the mark does.
    fake.book().set_mark(dec!(64500));
    fake.book().set_price(dec!(63900));
    let o = x.order("BTC/USDT", "bz-1-1-sl1").unwrap().unwrap();
    assert_eq!(o.status, OrderStatus::Open);
    fake.book().set_mark(dec!(63950));
    let o = x.order("BTC/USDT", "bz-1-1-sl1").unwrap().unwrap();
    assert_eq!((o.kind, o.status), (OrderKind::Stop, OrderStatus::Filled));
    assert_eq!(
        (o.filled_qty, o.avg_fill_price, o.fee),
        (dec!(0.003), dec!(63950), dec!(0.1055175))
    );
    assert!(x.open_orders("BTC/USDT").unwrap().is_empty());
    let fills = x.executions("BTC/USDT", since).unwrap();
    let ids: Vec<&str> = fills.iter().map(|f| f.client_id.as_str()).collect();
    assert_eq!(ids, ["bz-1-1-e", "bz-1-1-sl1"]);
    assert_eq!(
        (fills[1].side, fills[1].liquidation),
        (OrderSide::Sell, false)
    );
    assert_eq!(
        x.position("BTC/USDT", Side::Long).unwrap().size,
        Decimal::ZERO
    );
    assert_nothing_refused(&fake);
}

#[test]
fn a_short_stop_rises_and_wrong_side_or_flat_stops_are_refused_clearly() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    // Reduce-only with no position: 110017 "truncated to zero" is no minimum.
    let e = x
        .place(&stop("bz-1-1-sl1", dec!(66000), dec!(0.002), Side::Short))
        .unwrap_err();
    assert!(
        matches!(&e, ExchangeError::Rejected(m) if m.contains("nothing to close")),
        "{e}"
    );
    x.place(&market(
        "bz-1-1-e",
        OrderSide::Sell,
        dec!(0.002),
        Side::Short,
    ))
    .unwrap();
    // A short's stop below the price: Bybit's 110092, a clear refusal.
    let e = x
        .place(&stop("bz-1-1-sl2", dec!(64000), dec!(0.002), Side::Short))
        .unwrap_err();
    assert!(
        matches!(&e, ExchangeError::Rejected(m) if m.contains("wrong side")),
        "{e}"
    );
    assert!(!e.is_retryable());
    let o = x
        .place(&stop("bz-1-1-sl3", dec!(66000), dec!(0.002), Side::Short))
        .unwrap();
    let t = fake.book().order("bz-1-1-sl3").unwrap().trigger.unwrap();
    assert!(t.rise, "a short's stop rises to its trigger");
    // Cancelled by exchange id before it fires: gone from the open orders,
    // cancelled when asked for, and cancelling again is no error.
    x.cancel_by_id("BTC/USDT", &o.exchange_id).unwrap();
    x.cancel_by_id("BTC/USDT", &o.exchange_id).unwrap();
    let again = x.order_by_id("BTC/USDT", &o.exchange_id).unwrap().unwrap();
    assert_eq!(again.status, OrderStatus::Cancelled);
    assert!(x.open_orders("BTC/USDT").unwrap().is_empty());
    assert_eq!(x.order("BTC/USDT", "never-placed").unwrap(), None);
}

/// Injects `code` into the next `times` placements and returns what `place` says.
/// What a refusal must become.
type Expect = fn(&ExchangeError) -> bool;

fn place_with(
    fake: &FakeBybit,
    x: &Bybit,
    code: i64,
    msg: &str,
    times: usize,
    n: usize,
) -> Result<(), ExchangeError> {
    fake.inject_on("POST", CREATE, code, msg, times);
    let id = format!("bz-1-{n}-e");
    x.place(&market(&id, OrderSide::Buy, dec!(0.001), Side::Long))
        .map(|_| ())
}

#[test]
fn each_error_code_is_classified_and_only_transient_ones_retried() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    let fatal: &[(i64, &str, Expect)] = &[
        (10003, "API key is invalid.", |e| {
            *e == ExchangeError::InvalidKey
        }),
        (10004, "Error sign", |e| *e == ExchangeError::InvalidKey),
        (10005, "Permission denied", |e| {
            *e == ExchangeError::InvalidKey
        }),
        (33004, "Your api key has expired", |e| {
            *e == ExchangeError::InvalidKey
        }),
        (110007, "Available balance is insufficient", |e| {
            *e == ExchangeError::InsufficientBalance
        }),
        (110044, "Available margin is insufficient.", |e| {
            *e == ExchangeError::InsufficientBalance
        }),
        (110045, "Wallet balance is insufficient.", |e| {
            *e == ExchangeError::InsufficientBalance
        }),
        (110090, "position may exceed the max limit", |e| {
            *e == ExchangeError::PositionLimit
        }),
        (170136, "Order quantity lower than the minimum.", |e| {
            *e == ExchangeError::BelowMinimum
        }),
        (10001, "position idx not match position mode", |e| {
            matches!(e, ExchangeError::PositionMode(_))
        }),
        (110025, "Position mode has not been modified.", |e| {
            matches!(e, ExchangeError::PositionMode(_))
        }),
        (10001, "params error: qty", |e| {
            matches!(e, ExchangeError::Rejected(_))
        }),
        (
            123456,
            "something new",
            |e| matches!(e, ExchangeError::Rejected(m) if m.contains("123456")),
        ),
    ];
    for (n, (code, msg, is)) in fatal.iter().enumerate() {
        let seen = fake.book().seen.len();
        let e = place_with(&fake, &x, *code, msg, 1, n).unwrap_err();
        assert!(is(&e) && !e.is_retryable(), "{code}: {e:?}");
        let tries = fake.book().seen[seen..]
            .iter()
            .filter(|p| *p == CREATE)
            .count();
        assert_eq!(tries, 1, "{code} is not retried");
    }
    let transient: &[(i64, &str)] = &[
        (10002, "The request time exceeds the time window range."),
        (10006, "Too many visits. Exceeded the API Rate Limit."),
        (10018, "Exceeded the IP Rate Limit."),
        (10016, "Server error."),
        (
            110079,
            "The order is processing and can not be operated, please try again later",
        ),
    ];
    for (n, (code, msg)) in transient.iter().enumerate() {
        // Every attempt refused: the error says so and may be retried later.
        let e = place_with(&fake, &x, *code, msg, ATTEMPTS as usize, 100 + n).unwrap_err();
        assert!(e.is_retryable(), "{code}: {e:?}");
        // Refused once: the adapter's own retry gets it through.
        place_with(&fake, &x, *code, msg, 1, 200 + n).unwrap();
    }
    assert_eq!(
        x.place(&market(
            "bz-1-200-e",
            OrderSide::Buy,
            dec!(0.001),
            Side::Long
        )),
        Err(ExchangeError::Duplicate("bz-1-200-e".into()))
    );
}

#[test]
fn a_placement_the_exchange_took_is_placed_even_if_reading_it_back_fails() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    // The create succeeds; the read-back gets a garbled answer.
    fake.inject_raw(
        "/v5/order/realtime",
        r#"{"retCode":0,"retMsg":"OK","result":{"list":[{"orderId":"1"}]}}"#,
    );
    let placed = x
        .place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.002), Side::Long))
        .unwrap();
    let id = fake.book().order("bz-1-1-e").unwrap().id.to_string();
    // As sent, with the exchange's id: the bot learns the fill on its next read.
    assert_eq!(
        (placed.client_id.as_str(), placed.exchange_id.as_str()),
        ("bz-1-1-e", id.as_str())
    );
    assert_eq!(
        (placed.qty, placed.filled_qty, placed.status),
        (dec!(0.002), Decimal::ZERO, OrderStatus::Open)
    );
    let o = x.order("BTC/USDT", "bz-1-1-e").unwrap().unwrap();
    assert_eq!((o.status, o.filled_qty), (OrderStatus::Filled, dec!(0.002)));
    assert_nothing_refused(&fake);
}

#[test]
fn an_orders_fee_comes_with_its_quantity_even_if_the_execution_list_lags() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.002), Side::Long))
        .unwrap();
    // The execution list has not caught up with the fill yet.
    let lagging = r#"{"retCode":0,"retMsg":"OK","result":{"list":[],"nextPageCursor":""}}"#;
    fake.inject_raw("/v5/execution/list", lagging);
    let o = x.order("BTC/USDT", "bz-1-1-e").unwrap().unwrap();
    let fee = fake.book().order("bz-1-1-e").unwrap().fee;
    assert!(fee > Decimal::ZERO);
    assert_eq!((o.filled_qty, o.fee), (dec!(0.002), fee));
    assert_nothing_refused(&fake);
}

#[test]
fn a_403_that_is_not_the_ip_rate_limit_is_fatal_and_bans_nothing() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    let page = "<html><head><title>403 Forbidden</title></head><body>The request \
                could not be satisfied. Request blocked.</body></html>";
    x.balance().unwrap();
    fake.inject_http("/v5/position/list", 403, page);
    let seen = fake.book().seen.len();
    let e = x.position("BTC/USDT", Side::Long).unwrap_err();
    assert!(
        matches!(&e, ExchangeError::Rejected(m) if m.contains("HTTP 403") && m.contains("Request blocked")),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert_eq!(fake.book().seen.len() - seen, 1, "not retried");
    // No ten-minute IP ban was taken from it: the next request goes out.
    assert_eq!(
        x.position("BTC/USDT", Side::Long).unwrap().size,
        Decimal::ZERO
    );
}

/// (long side's, short side's) leverage on the fake.
fn levels(fake: &FakeBybit) -> (u32, u32) {
    let b = fake.book();
    (b.leverage, b.sell_leverage)
}

#[test]
fn leverage_leaves_the_other_side_alone_where_bybit_allows_it() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    // Cross margin (the default): Bybit wants both sides equal.
    x.set_leverage("BTC/USDT", Side::Long, 10).unwrap();
    assert_eq!(levels(&fake), (10, 10));
    // Isolated margin: the user's short keeps its own 3x.
    {
        let mut b = fake.book();
        b.margin_mode = "ISOLATED_MARGIN".into();
        b.sell_leverage = 3;
    }
    x.set_leverage("BTC/USDT", Side::Long, 20).unwrap();
    assert_eq!(levels(&fake), (20, 3));
    x.set_leverage("BTC/USDT", Side::Short, 5).unwrap();
    assert_eq!(levels(&fake), (20, 5));
    // Already so: "not modified" is no error.
    x.set_leverage("BTC/USDT", Side::Short, 5).unwrap();
    assert_nothing_refused(&fake);
}

#[test]
fn garbled_or_missing_fields_are_malformed_never_zero() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.002), Side::Long))
        .unwrap();
    let ok = |result: &str| format!(r#"{{"retCode":0,"retMsg":"OK","result":{result}}}"#);
    let cases: &[(&str, String, &str)] = &[
        (
            "/v5/position/list",
            ok(r#"{"list":[{"positionIdx":1,"size":"0.0O2","avgPrice":"65000"}]}"#),
            "list[0].size",
        ),
        (
            "/v5/position/list",
            ok(r#"{"list":[{"positionIdx":1}]}"#),
            "missing field `size`",
        ),
        (
            "/v5/market/tickers",
            ok(r#"{"list":[{"lastPrice":""}]}"#),
            "list[0].lastPrice",
        ),
        (
            "/v5/account/wallet-balance",
            ok(r#"{"list":[{"coin":[{"coin":"USDT","walletBalance":"1e"}]}]}"#),
            "walletBalance",
        ),
        (
            "/v5/order/realtime",
            ok(r#"{"list":[{"orderId":"1","side":"Buy"}],"nextPageCursor":""}"#),
            "missing field",
        ),
        (
            "/v5/position/list",
            "<html>502</html>".into(),
            "Bybit answer",
        ),
    ];
    for (path, body, says) in cases {
        fake.inject_raw(path, body);
        let e = match *path {
            "/v5/position/list" => x.position("BTC/USDT", Side::Long).map(|_| ()),
            "/v5/market/tickers" => x.ticker("BTC/USDT").map(|_| ()),
            "/v5/account/wallet-balance" => x.balance().map(|_| ()),
            _ => x.open_orders("BTC/USDT").map(|_| ()),
        }
        .unwrap_err();
        assert!(
            matches!(&e, ExchangeError::Malformed(m) if m.contains(says)),
            "{path}: {e:?}"
        );
        assert!(!e.is_retryable());
    }
    // And the same reads work once the answers are whole again.
    assert_eq!(
        x.position("BTC/USDT", Side::Long).unwrap().size,
        dec!(0.002)
    );
}

#[test]
fn funding_is_read_with_its_sign_across_windows_and_pages() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.003), Side::Long))
        .unwrap();
    let now = fake.book().server_ms();
    // Every 2 hours for 10 days, alternately paid and received: two 7-day
    // windows, the first of more than one 50-row page.
    let mut want = Vec::new();
    for i in 0..120 {
        let amount = if i % 2 == 0 {
            dec!(-0.0125)
        } else {
            dec!(0.005)
        };
        let t = now - 10 * DAY + i * 2 * HOUR;
        fake.book().add_funding(amount, t);
        want.push((t, amount));
    }
    let got = x.funding("BTC/USDT", now - 10 * DAY).unwrap();
    let got: Vec<(i64, Decimal)> = got.iter().map(|f| (f.time_ms, f.amount)).collect();
    assert_eq!(got, want);
    let total: Decimal = got.iter().map(|(_, a)| *a).sum();
    assert_eq!(total, dec!(-0.45));
    // Only what is at or after `since`.
    let later = x.funding("BTC/USDT", now - DAY).unwrap();
    assert_eq!(later.len(), 12);
    assert!(later
        .iter()
        .all(|f| f.symbol == "BTC/USDT" && !f.id.is_empty()));
    assert_nothing_refused(&fake);
}

#[test]
fn executions_span_windows_and_pages_and_flag_liquidations() {
    let fake = FakeBybit::start(KEY, SECRET);
    let x = adapter(&fake);
    let start = fake.book().server_ms();
    for i in 0..105 {
        let id = format!("bz-1-{i}-e");
        x.place(&market(&id, OrderSide::Buy, dec!(0.001), Side::Long))
            .unwrap();
    }
    {
        // The first ten happened nine days ago: an older window.
        let mut b = fake.book();
        for f in b.fills.iter_mut().take(10) {
            f.time_ms -= 9 * DAY;
        }
        b.set_mark(dec!(64000));
        b.liquidate(Dir::Long).unwrap();
    }
    let all = x.executions("BTC/USDT", start - 10 * DAY).unwrap();
    assert_eq!(all.len(), 106);
    assert!(all.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    assert_eq!(all[0].client_id, "bz-1-0-e");
    let liq = all.last().unwrap();
    assert!(liq.liquidation && liq.client_id.is_empty());
    assert_eq!(
        (liq.side, liq.qty, liq.price),
        (OrderSide::Sell, dec!(0.105), dec!(64000))
    );
    assert_eq!(all.iter().filter(|e| e.liquidation).count(), 1);
    let recent = x.executions("BTC/USDT", start).unwrap();
    assert_eq!(recent.len(), 96);
    assert_nothing_refused(&fake);
}
