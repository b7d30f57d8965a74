//! The BingX adapter itself against the fake (which checks every request's
//! signature and documented parameters): the STOP_MARKET stop, error codes,
//! malformed answers, executions and funding.

use blitz::exchange::bingx::Bingx;
use blitz::exchange::rest::{RestSettings, ATTEMPTS};
use blitz::exchange::{Exchange, ExchangeError, OrderKind, OrderSide, OrderStatus, Side};
use rust_decimal::{dec, Decimal};

use crate::common::fake_bingx::FakeBingx;
use crate::common::fake_book::{Dir, TriggerBy};
use crate::orders::{api_key, market, stop};
use crate::{KEY, SECRET};

const ORDER: &str = "/openApi/swap/v2/trade/order";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn adapter(fake: &FakeBingx) -> Bingx {
    let settings = RestSettings {
        bingx_url: fake.url(),
        timeout_ms: 3000,
        ..RestSettings::default()
    };
    let key = api_key();
    Bingx::new(&settings, key)
}

fn assert_nothing_refused(fake: &FakeBingx) {
    let b = fake.book();
    assert!(b.refused.is_empty(), "refused {:?}", b.refused);
}

#[test]
fn a_stop_market_is_placed_known_by_its_id_triggered_and_filled() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
    let since = fake.book().server_ms() - 1000;
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.003), Side::Long))
        .unwrap();
    let placed = x
        .place(&stop("bz-1-1-sl1", dec!(64000), dec!(0.003), Side::Long))
        .unwrap();
    // BingX keeps no client id on a stop; the answer still carries ours.
    assert_eq!(placed.client_id, "bz-1-1-sl1");
    assert_eq!(
        (placed.kind, placed.status, placed.trigger_price),
        (OrderKind::Stop, OrderStatus::Open, Some(dec!(64000)))
    );
    {
        let b = fake.book();
        let o = b.order_by_id(placed.exchange_id.parse().unwrap()).unwrap();
        let t = o.trigger.unwrap();
        assert_eq!(
            (t.price, t.rise, t.by),
            (dec!(64000), false, TriggerBy::Mark)
        );
        assert!(!o.buy && o.dir == Dir::Long && o.qty == dec!(0.003) && !o.close_all);
        assert!(o.client_id.is_empty());
    }
    let open = x.open_orders("BTC/USDT").unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0].kind, open[0].client_id.as_str()),
        (OrderKind::Stop, "")
    );
    assert_eq!(open[0].exchange_id, placed.exchange_id);
    assert_eq!(x.order("BTC/USDT", "bz-1-1-sl1").unwrap(), None);

    fake.book().set_mark(dec!(64100));
    let id = placed.exchange_id.clone();
    assert_eq!(
        x.order_by_id("BTC/USDT", &id).unwrap().unwrap().status,
        OrderStatus::Open
    );
    fake.book().set_mark(dec!(63950));
    let o = x.order_by_id("BTC/USDT", &id).unwrap().unwrap();
    assert_eq!((o.kind, o.status), (OrderKind::Stop, OrderStatus::Filled));
    assert_eq!(
        (o.filled_qty, o.avg_fill_price, o.fee),
        (dec!(0.003), dec!(63950), dec!(0.1055175))
    );
    let fills = x.executions("BTC/USDT", since).unwrap();
    let got: Vec<(&str, &str)> = fills
        .iter()
        .map(|f| (f.client_id.as_str(), f.order_id.as_str()))
        .collect();
    assert_eq!(got[0].0, "bz-1-1-e");
    assert_eq!(got[1], ("", id.as_str()));
    assert_eq!(
        (fills[1].side, fills[1].fee),
        (OrderSide::Sell, dec!(0.1055175))
    );
    assert_nothing_refused(&fake);
}

#[test]
fn wrong_side_and_flat_stops_are_refused_and_cancel_by_id_works() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
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
    let e = x
        .place(&stop("bz-1-1-sl2", dec!(64000), dec!(0.002), Side::Short))
        .unwrap_err();
    assert!(
        matches!(&e, ExchangeError::Rejected(m) if m.contains("wrong side")),
        "{e}"
    );
    let o = x
        .place(&stop("bz-1-1-sl3", dec!(66000), dec!(0.002), Side::Short))
        .unwrap();
    assert!(fake.book().stops()[0].trigger.unwrap().rise);
    x.cancel_by_id("BTC/USDT", &o.exchange_id).unwrap();
    x.cancel_by_id("BTC/USDT", &o.exchange_id).unwrap();
    let gone = x.order_by_id("BTC/USDT", &o.exchange_id).unwrap().unwrap();
    assert_eq!(gone.status, OrderStatus::Cancelled);
    assert!(x.open_orders("BTC/USDT").unwrap().is_empty());
}

#[test]
fn a_stop_whose_answer_is_lost_is_adopted_not_placed_twice() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.002), Side::Long))
        .unwrap();
    fake.book().lose_reply = Some(format!("POST {ORDER}"));
    let o = x
        .place(&stop("bz-1-1-sl1", dec!(64000), dec!(0.002), Side::Long))
        .unwrap();
    assert_eq!(
        (o.client_id.as_str(), o.kind),
        ("bz-1-1-sl1", OrderKind::Stop)
    );
    let b = fake.book();
    assert_eq!(b.stops().len(), 1, "placed once");
    assert_eq!(o.exchange_id, b.stops()[0].id.to_string());
}

/// What a refusal must become.
type Expect = fn(&ExchangeError) -> bool;

fn place_with(
    fake: &FakeBingx,
    x: &Bingx,
    code: i64,
    msg: &str,
    times: usize,
    n: usize,
) -> Result<(), ExchangeError> {
    fake.inject_on("POST", ORDER, code, msg, times);
    let id = format!("bz-1-{n}-e");
    x.place(&market(&id, OrderSide::Buy, dec!(0.001), Side::Long))
        .map(|_| ())
}

#[test]
fn each_error_code_is_classified_and_only_transient_ones_retried() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
    let fatal: &[(i64, &str, Expect)] = &[
        (100001, "Signature verification failed", |e| {
            *e == ExchangeError::InvalidKey
        }),
        (100413, "Incorrect apiKey", |e| {
            *e == ExchangeError::InvalidKey
        }),
        (100419, "IP does not match IP whitelist", |e| {
            *e == ExchangeError::InvalidKey
        }),
        (101204, "Insufficient margin", |e| {
            *e == ExchangeError::InsufficientBalance
        }),
        (
            101209,
            "The maximum position value for this leverage is 170000 USDT.",
            |e| *e == ExchangeError::PositionLimit,
        ),
        (
            101400,
            "the minimum nominal value of the order placed must be greater than 2u",
            |e| *e == ExchangeError::BelowMinimum,
        ),
        (
            109400,
            "In the Hedge mode, the 'PositionSide' field can only be set to LONG or SHORT.",
            |e| matches!(e, ExchangeError::PositionMode(_)),
        ),
        (
            80020,
            "risk forbidden",
            |e| matches!(e, ExchangeError::Rejected(m) if m.contains("80020")),
        ),
    ];
    for (n, (code, msg, is)) in fatal.iter().enumerate() {
        let seen = fake.book().seen.len();
        let e = place_with(&fake, &x, *code, msg, 1, n).unwrap_err();
        assert!(is(&e) && !e.is_retryable(), "{code}: {e:?}");
        let tries = fake.book().seen[seen..]
            .iter()
            .filter(|p| *p == ORDER)
            .count();
        assert_eq!(tries, 1, "{code} is not retried");
    }
    let transient: &[(i64, &str)] = &[
        (100410, "Rate limit exceeded"),
        (100421, "Null timestamp or timestamp mismatch"),
        (100500, "Internal system error"),
        (80012, "The current system is busy, please try again later"),
        (80019, "The order is being processed"),
        (109500, "Internal server error"),
    ];
    for (n, (code, msg)) in transient.iter().enumerate() {
        if *code == 100410 {
            // On a fake (and budget) of its own: the pause it causes would
            // hold the other codes' placements.
            let fake = FakeBingx::start(KEY, SECRET);
            let x = adapter(&fake);
            let e = place_with(&fake, &x, *code, msg, ATTEMPTS as usize, 100 + n).unwrap_err();
            assert!(e.is_retryable(), "{code}: {e:?}");
            // The rate limit pauses the budget for a second: a running bot's
            // placement does not wait that long (it was not sent, and the bot
            // tries on its next step). A start waits it out (`budget::urgent`;
            // tests/exchanges.rs, errors_are_reported).
            let e = place_with(&fake, &x, *code, msg, 1, 200 + n).unwrap_err();
            assert_eq!(e, ExchangeError::RateLimited);
            assert_eq!(fake.book().refused.len(), 0);
            continue;
        }
        let e = place_with(&fake, &x, *code, msg, ATTEMPTS as usize, 100 + n).unwrap_err();
        assert!(e.is_retryable(), "{code}: {e:?}");
        place_with(&fake, &x, *code, msg, 1, 200 + n).unwrap();
    }
    assert_eq!(
        x.place(&market(
            "bz-1-201-e",
            OrderSide::Buy,
            dec!(0.001),
            Side::Long
        )),
        Err(ExchangeError::Duplicate("bz-1-201-e".into()))
    );
}

#[test]
fn an_orders_fee_comes_with_its_quantity_even_if_the_fill_history_lags() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.002), Side::Long))
        .unwrap();
    // The fill history has not caught up with the fill yet.
    let lagging = r#"{"code":0,"msg":"","data":{"fill_orders":[]}}"#;
    fake.inject_raw("/openApi/swap/v2/trade/allFillOrders", lagging);
    let o = x.order("BTC/USDT", "bz-1-1-e").unwrap().unwrap();
    let fee = fake.book().order("bz-1-1-e").unwrap().fee;
    assert!(fee > Decimal::ZERO);
    assert_eq!((o.filled_qty, o.fee), (dec!(0.002), fee));
    assert_nothing_refused(&fake);
}

#[test]
fn garbled_or_missing_fields_are_malformed_never_zero() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.002), Side::Long))
        .unwrap();
    let ok = |data: &str| format!(r#"{{"code":0,"msg":"","data":{data}}}"#);
    let cases: &[(&str, String, &str)] = &[
        (
            "/openApi/swap/v2/user/positions",
            ok(r#"[{"positionSide":"LONG","positionAmt":"abc","avgPrice":"65000"}]"#),
            "[0].positionAmt",
        ),
        (
            "/openApi/swap/v2/user/positions",
            ok(r#"[{"positionSide":"LONG"}]"#),
            "missing field `positionAmt`",
        ),
        (
            "/openApi/swap/v2/quote/ticker",
            ok(r#"{"lastPrice":null}"#),
            "lastPrice",
        ),
        (
            "/openApi/swap/v3/user/balance",
            ok(r#"[{"asset":"USDT","balance":""}]"#),
            "[0].balance",
        ),
        (
            "/openApi/swap/v2/trade/openOrders",
            ok(
                r#"{"orders":[{"orderId":1,"side":"BUY","positionSide":"LONG","type":"LIMIT","executedQty":"0","status":"NEW","time":1}]}"#,
            ),
            "missing field `origQty`",
        ),
        (
            "/openApi/swap/v2/user/positions",
            "{".into(),
            "BingX answer",
        ),
    ];
    for (path, body, says) in cases {
        fake.inject_raw(path, body);
        let e = match *path {
            "/openApi/swap/v2/user/positions" => x.position("BTC/USDT", Side::Long).map(|_| ()),
            "/openApi/swap/v2/quote/ticker" => x.ticker("BTC/USDT").map(|_| ()),
            "/openApi/swap/v3/user/balance" => x.balance().map(|_| ()),
            _ => x.open_orders("BTC/USDT").map(|_| ()),
        }
        .unwrap_err();
        assert!(
            matches!(&e, ExchangeError::Malformed(m) if m.contains(says)),
            "{path}: {e:?}"
        );
    }
    assert_eq!(
        x.position("BTC/USDT", Side::Long).unwrap().size,
        dec!(0.002)
    );
}

#[test]
fn funding_is_read_with_its_sign_past_a_full_page() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
    x.place(&market("bz-1-1-e", OrderSide::Buy, dec!(0.001), Side::Long))
        .unwrap();
    let now = fake.book().server_ms();
    // More rows than one answer holds (1000), a minute apart.
    let mut want = Vec::new();
    for i in 0..1005 {
        let amount = if i % 5 == 0 {
            dec!(0.01)
        } else {
            dec!(-0.0292)
        };
        let t = now - 2 * DAY + i * 60_000;
        fake.book().add_funding(amount, t);
        want.push((t, amount));
    }
    let got = x.funding("BTC/USDT", now - 3 * DAY).unwrap();
    let got: Vec<(i64, Decimal)> = got.iter().map(|f| (f.time_ms, f.amount)).collect();
    assert_eq!(got.len(), 1005);
    assert_eq!(got, want);
    let later = x
        .funding("BTC/USDT", now - 2 * DAY + 1000 * 60_000)
        .unwrap();
    assert_eq!(later.len(), 5);
    assert_nothing_refused(&fake);
}

#[test]
fn executions_carry_client_ids_and_liquidations_across_windows() {
    let fake = FakeBingx::start(KEY, SECRET);
    let x = adapter(&fake);
    let start = fake.book().server_ms();
    for i in 0..3 {
        x.place(&market(
            &format!("bz-1-{i}-e"),
            OrderSide::Buy,
            dec!(0.001),
            Side::Long,
        ))
        .unwrap();
    }
    {
        let mut b = fake.book();
        b.fills[0].time_ms -= 8 * DAY;
        b.set_mark(dec!(64000));
        b.liquidate(Dir::Long).unwrap();
    }
    let all = x.executions("BTC/USDT", start - 9 * DAY).unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.client_id.as_str()).collect();
    assert_eq!(ids, ["bz-1-0-e", "bz-1-1-e", "bz-1-2-e", ""]);
    let liq = &all[3];
    assert!(liq.liquidation);
    assert_eq!(
        (liq.side, liq.qty, liq.price),
        (OrderSide::Sell, dec!(0.003), dec!(64000))
    );
    assert!(all[..3]
        .iter()
        .all(|e| !e.liquidation && e.fee > Decimal::ZERO));
    assert_eq!(x.executions("BTC/USDT", start).unwrap().len(), 3);
    assert_nothing_refused(&fake);
}
