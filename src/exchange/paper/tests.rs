//! Behaviour of the paper exchange through its public API (plus a peek at the walk's
//! step counter where the API has no window on it).

use std::sync::Arc;

use rust_decimal::Decimal;

use super::replay::{PaperPrices, Replay};
use super::*;
use crate::bots::ladder::Side;
use crate::exchange::{Exchange, ExchangeError, NewOrder, OrderKind, OrderSide, OrderStatus};
use crate::money::dec;

const BTC: &str = "BTC/USDT";

pub(super) fn params(seed: u64, volatility: f64) -> PaperParams {
    PaperParams {
        tick_ms: 1000,
        volatility,
        seed: Some(seed),
        funding_rate: crate::exchange::paper::DEFAULT_FUNDING_RATE,
    }
}

/// A flat market (no walk) unless a test moves the price itself.
pub(super) fn paper() -> Arc<Paper> {
    Paper::in_memory(params(1, 0.0), 0).unwrap()
}

fn new_order(
    cid: &str,
    side: OrderSide,
    price: Option<Decimal>,
    qty: Decimal,
    pos: Side,
) -> NewOrder {
    NewOrder {
        client_id: cid.into(),
        symbol: BTC.into(),
        side,
        kind: if price.is_some() {
            OrderKind::Limit
        } else {
            OrderKind::Market
        },
        price,
        trigger_price: None,
        qty,
        reduce_only: side == OrderSide::closing(pos),
        position_side: pos,
    }
}

pub(super) fn market(cid: &str, side: OrderSide, qty: Decimal, pos: Side) -> NewOrder {
    new_order(cid, side, None, qty, pos)
}

pub(super) fn limit(
    cid: &str,
    side: OrderSide,
    price: Decimal,
    qty: Decimal,
    pos: Side,
) -> NewOrder {
    new_order(cid, side, Some(price), qty, pos)
}

fn close(a: Decimal, b: Decimal) -> bool {
    (a - b).abs() < dec!(0.000001)
}

fn step_no(p: &Paper, symbol: &str) -> u64 {
    let g = p.lock().unwrap();
    let mkt = g.book.lookup(symbol).unwrap().unwrap();
    g.book.markets[mkt].step_no
}

fn walk_prices(seed: u64, n: i64) -> Vec<Decimal> {
    let p = Paper::in_memory(params(seed, 0.01), 0).unwrap();
    p.account(1).ticker(BTC).unwrap();
    (1..=n)
        .map(|i| {
            p.advance(i * 1000).unwrap();
            p.price(BTC).unwrap()
        })
        .collect()
}

#[test]
fn walk_is_deterministic_under_a_seed() {
    let a = walk_prices(7, 100);
    assert_eq!(a, walk_prices(7, 100));
    assert_ne!(a, walk_prices(8, 100));
    assert!(
        a.windows(2).filter(|w| w[0] != w[1]).count() > 90,
        "the price moves"
    );
    // Catching up in one call walks the very same path.
    let p = Paper::in_memory(params(7, 0.01), 0).unwrap();
    p.account(1).ticker(BTC).unwrap();
    p.advance(100_000).unwrap();
    assert_eq!(p.price(BTC), a.last().copied());
}

#[test]
fn duplicate_client_id_changes_nothing_forever() {
    let p = paper();
    let acct = p.account(1);
    let first = acct
        .place(&limit(
            "a",
            OrderSide::Buy,
            dec!(59000.0),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    let again = acct.place(&market("a", OrderSide::Buy, dec!(0.02), Side::Long));
    assert_eq!(again, Err(ExchangeError::Duplicate("a".into())));
    assert_eq!(acct.open_orders(BTC).unwrap(), vec![first]);
    assert_eq!(acct.balance().unwrap(), dec!(10000.0));
    acct.cancel(BTC, "a").unwrap();
    let after_cancel = acct.place(&limit(
        "a",
        OrderSide::Buy,
        dec!(58000.0),
        dec!(0.01),
        Side::Long,
    ));
    assert_eq!(after_cancel, Err(ExchangeError::Duplicate("a".into())));
    assert!(acct.open_orders(BTC).unwrap().is_empty());
    // Client ids are per account.
    assert!(p
        .account(2)
        .place(&limit(
            "a",
            OrderSide::Buy,
            dec!(59000.0),
            dec!(0.01),
            Side::Long
        ))
        .is_ok());
}

#[test]
fn market_order_fills_at_the_ask_with_taker_fee() {
    let p = paper();
    let acct = p.account(1);
    let o = acct
        .place(&market("m", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    // The ask: 60,000 × (1 + 0.0001) = 60,006.0.
    assert_eq!(
        (o.filled_qty, o.avg_fill_price, o.price),
        (dec!(0.01), dec!(60006.0), None)
    );
    // 0.01 × 60,006 × 0.00055 = 0.3300330.
    assert_eq!(o.fee, dec!(0.330033));
    assert_eq!(acct.balance().unwrap(), dec!(10000) - dec!(0.330033));
    let pos = acct.position(BTC, Side::Long).unwrap();
    assert_eq!(
        (pos.size, pos.avg_entry, pos.mark_price),
        (dec!(0.01), dec!(60006.0), dec!(60000.0))
    );
    assert_eq!(acct.order(BTC, "m").unwrap(), Some(o));
    assert!(acct.open_orders(BTC).unwrap().is_empty());
}

#[test]
fn marketable_limit_fills_at_once_as_taker() {
    let p = paper();
    let o = p
        .account(1)
        .place(&limit(
            "l",
            OrderSide::Buy,
            dec!(61000.0),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(
        (o.status, o.avg_fill_price, o.price),
        // The ask (60,000 + 0.01 %), better than its limit.
        (OrderStatus::Filled, dec!(60006.0), Some(dec!(61000.0)))
    );
    // 0.01 × 60,006 × 0.055 %.
    assert!(close(o.fee, dec!(0.3300330)));
}

#[test]
fn resting_limit_fills_at_its_price_with_maker_fee() {
    let p = paper();
    let acct = p.account(1);
    let o = acct
        .place(&limit(
            "b",
            OrderSide::Buy,
            dec!(59000.04),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(
        (o.status, o.price),
        (OrderStatus::Open, Some(dec!(59000.0)))
    );
    assert_eq!(p.set_price(BTC, dec!(59500.0)).unwrap(), 0);
    assert_eq!(acct.open_orders(BTC).unwrap().len(), 1);
    assert_eq!(p.set_price(BTC, dec!(58000.0)).unwrap(), 1);
    let o = acct.order(BTC, "b").unwrap().unwrap();
    assert_eq!(
        (o.status, o.filled_qty, o.avg_fill_price),
        (OrderStatus::Filled, dec!(0.01), dec!(59000.0))
    );
    assert!(close(o.fee, dec!(59000.0) * dec!(0.01) * dec!(0.0002)));
    assert!(close(acct.balance().unwrap(), dec!(10000.0) - o.fee));
    assert!(acct.open_orders(BTC).unwrap().is_empty());
    let pos = acct.position(BTC, Side::Long).unwrap();
    assert_eq!(
        (pos.size, pos.avg_entry, pos.mark_price),
        (dec!(0.01), dec!(59000.0), dec!(58000.0))
    );
}

#[test]
fn fees_are_kept_to_8_decimals_on_orders_fills_and_the_balance() {
    let p = paper();
    p.set_price(BTC, dec!(60000.1)).unwrap();
    let acct = p.account(1);
    // The ask: 60000.1 × 1.0001 = 60006.10001, up to the tick: 60006.2;
    // 0.001 × 60006.2 × 0.00055 = 0.033003410 (9 decimals) → 0.03300341.
    let o = acct
        .place(&market("m", OrderSide::Buy, dec!(0.001), Side::Long))
        .unwrap();
    assert_eq!(o.avg_fill_price, dec!(60006.2));
    assert_eq!(o.fee, dec!(0.03300341));
    let fills = acct.executions(BTC, 0).unwrap();
    assert_eq!(fills[0].fee, dec!(0.03300341));
    assert_eq!(acct.balance().unwrap(), dec!(10000) - dec!(0.03300341));
}

#[test]
fn moves_cross_resting_orders_on_both_sides() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&limit(
        "buy",
        OrderSide::Buy,
        dec!(59000.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    acct.place(&limit(
        "sell",
        OrderSide::Sell,
        dec!(61000.0),
        dec!(0.01),
        Side::Short,
    ))
    .unwrap();
    acct.place(&limit(
        "far",
        OrderSide::Sell,
        dec!(63000.0),
        dec!(0.01),
        Side::Short,
    ))
    .unwrap();
    assert_eq!(
        p.set_price(BTC, dec!(62000.0)).unwrap(),
        1,
        "an upward move crosses the sell"
    );
    assert_eq!(
        acct.order(BTC, "sell").unwrap().unwrap().avg_fill_price,
        dec!(61000.0)
    );
    assert_eq!(p.set_price(BTC, dec!(62500.0)).unwrap(), 0);
    // Touching the limit is enough, from either side.
    assert_eq!(p.set_price(BTC, dec!(63000.0)).unwrap(), 1);
    assert_eq!(p.set_price(BTC, dec!(59000.0)).unwrap(), 1);
    let short = acct.position(BTC, Side::Short).unwrap();
    assert_eq!((short.size, short.avg_entry), (dec!(0.02), dec!(62000.0)));
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0.01));
}

#[test]
fn the_walk_fills_orders_where_its_path_crosses_them() {
    let p = Paper::in_memory(params(3, 0.01), 0).unwrap();
    let acct = p.account(1);
    acct.place(&limit(
        "buy",
        OrderSide::Buy,
        dec!(59000.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    acct.place(&limit(
        "sell",
        OrderSide::Sell,
        dec!(61000.0),
        dec!(0.01),
        Side::Short,
    ))
    .unwrap();
    let (mut low, mut high, mut old) = (dec!(60000), dec!(60000), dec!(60000));
    for i in 1..=10_000 {
        let fills = p.advance(i * 1000).unwrap();
        let new = p.price(BTC).unwrap();
        let crossed = usize::from(low > dec!(59000.0) && old.min(new) <= dec!(59000.0))
            + usize::from(high < dec!(61000.0) && old.max(new) >= dec!(61000.0));
        assert_eq!(fills, crossed, "step {i}: {old} -> {new}");
        (low, high, old) = (low.min(new), high.max(new), new);
        if low <= dec!(59000.0) && high >= dec!(61000.0) {
            break;
        }
    }
    assert!(
        low <= dec!(59000.0) && high >= dec!(61000.0),
        "the walk reached both orders"
    );
    for (cid, price) in [("buy", dec!(59000.0)), ("sell", dec!(61000.0))] {
        let o = acct.order(BTC, cid).unwrap().unwrap();
        assert_eq!((o.status, o.avg_fill_price), (OrderStatus::Filled, price));
    }
}

#[test]
fn reduce_only_is_rejected_without_a_position() {
    let p = paper();
    let acct = p.account(1);
    let r = acct.place(&limit(
        "tp",
        OrderSide::Sell,
        dec!(61000.0),
        dec!(0.01),
        Side::Long,
    ));
    assert!(matches!(r, Err(ExchangeError::Rejected(_))), "{r:?}");
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    let mut plain_close = market("c", OrderSide::Sell, dec!(0.01), Side::Long);
    plain_close.reduce_only = false;
    assert!(matches!(
        acct.place(&plain_close),
        Err(ExchangeError::Rejected(_))
    ));
    let mut reducing_open = market("o", OrderSide::Buy, dec!(0.01), Side::Long);
    reducing_open.reduce_only = true;
    assert!(matches!(
        acct.place(&reducing_open),
        Err(ExchangeError::Rejected(_))
    ));
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0.01));
    assert!(
        acct.order(BTC, "tp").unwrap().is_none(),
        "rejected orders leave no trace"
    );
}

#[test]
fn reduce_only_is_clipped_to_the_position() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    acct.place(&limit(
        "tp",
        OrderSide::Sell,
        dec!(61000.0),
        dec!(0.05),
        Side::Long,
    ))
    .unwrap();
    assert_eq!(p.set_price(BTC, dec!(61500.0)).unwrap(), 1);
    let tp = acct.order(BTC, "tp").unwrap().unwrap();
    assert_eq!(
        (tp.status, tp.qty, tp.filled_qty),
        (OrderStatus::Filled, dec!(0.05), dec!(0.01))
    );
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0.0));
    // A reduce-only market order is clipped too.
    acct.place(&market("e2", OrderSide::Buy, dec!(0.02), Side::Long))
        .unwrap();
    let out = acct
        .place(&market("x", OrderSide::Sell, dec!(1.0), Side::Long))
        .unwrap();
    assert_eq!(out.filled_qty, dec!(0.02));
    let flat = acct.position(BTC, Side::Long).unwrap();
    assert_eq!((flat.size, flat.avg_entry), (dec!(0.0), dec!(0.0)));
}

#[test]
fn reduce_only_is_cancelled_when_the_position_is_gone() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    acct.place(&limit(
        "far",
        OrderSide::Sell,
        dec!(62000.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    acct.place(&limit(
        "near",
        OrderSide::Sell,
        dec!(61000.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    // The path reaches 61,000 first: "near" closes the position, "far" finds it flat.
    assert_eq!(p.set_price(BTC, dec!(62500.0)).unwrap(), 1);
    assert_eq!(
        acct.order(BTC, "near").unwrap().unwrap().status,
        OrderStatus::Filled
    );
    let far = acct.order(BTC, "far").unwrap().unwrap();
    assert_eq!(
        (far.status, far.filled_qty),
        (OrderStatus::Cancelled, dec!(0.0))
    );
    assert!(acct.open_orders(BTC).unwrap().is_empty());
}

#[test]
fn hedge_mode_long_and_short_pnl_reach_the_balance() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("l1", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    acct.place(&market("s1", OrderSide::Sell, dec!(0.1), Side::Short))
        .unwrap();
    p.set_price(BTC, dec!(62000.0)).unwrap();
    acct.place(&market("l2", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    let long = acct.position(BTC, Side::Long).unwrap();
    assert_eq!(long.size, dec!(0.2));
    // Bought at the asks 60,006.0 and 62,006.2 (each price + 0.01 %).
    assert!(
        close(long.avg_entry, dec!(61006.1)),
        "weighted average entry"
    );
    assert_eq!(
        acct.position(BTC, Side::Short).unwrap().size,
        dec!(0.1),
        "both sides coexist"
    );
    p.set_price(BTC, dec!(61500.0)).unwrap();
    let before = acct.balance().unwrap();
    let s = acct
        .place(&market("s-close", OrderSide::Buy, dec!(0.1), Side::Short))
        .unwrap();
    // Short from the bid 59,994.0 closed at the ask 61,506.15 → 61,506.2: -151.22.
    assert!(close(
        acct.balance().unwrap(),
        before - dec!(151.22) - s.fee
    ));
    let before = acct.balance().unwrap();
    let l = acct
        .place(&market("l-close", OrderSide::Sell, dec!(0.2), Side::Long))
        .unwrap();
    // Long 0.2 from 61,006.1 closed at the bid 61,493.85 → 61,493.8: +97.54.
    assert!(close(acct.balance().unwrap(), before + dec!(97.54) - l.fee));
    let fees: Decimal = ["l1", "s1", "l2", "s-close", "l-close"]
        .iter()
        .map(|c| acct.order(BTC, c).unwrap().unwrap().fee)
        .sum();
    assert!(close(
        acct.balance().unwrap(),
        dec!(10000.0) - dec!(53.68) - fees
    ));
}

#[test]
fn opening_orders_need_free_margin() {
    let p = paper();
    let acct = p.account(1);
    let big = market("big", OrderSide::Buy, dec!(1.7), Side::Long);
    assert_eq!(acct.place(&big), Err(ExchangeError::InsufficientBalance));
    assert!(acct.order(BTC, "big").unwrap().is_none());
    acct.place(&market("e", OrderSide::Buy, dec!(1.6), Side::Long))
        .unwrap();
    // 10,000 − dec!(52.8) fee − 9,600 margin leaves dec!(347.2); dec!(0.1) at 50,000 needs 500.
    let leg = limit("leg", OrderSide::Buy, dec!(50000.0), dec!(0.1), Side::Long);
    assert_eq!(acct.place(&leg), Err(ExchangeError::InsufficientBalance));
    acct.set_leverage(BTC, Side::Long, 20).unwrap();
    acct.place(&leg).unwrap();
    // Resting opening orders hold margin too: 4,800 + 250 of 9,dec!(947.2) leaves ~4,897.
    let r = acct.place(&limit(
        "leg2",
        OrderSide::Buy,
        dec!(50000.0),
        dec!(2.0),
        Side::Long,
    ));
    assert_eq!(r, Err(ExchangeError::InsufficientBalance));
    acct.place(&limit(
        "leg3",
        OrderSide::Buy,
        dec!(50000.0),
        dec!(1.9),
        Side::Long,
    ))
    .unwrap();
    for bad in [0, 126] {
        assert!(matches!(
            acct.set_leverage(BTC, Side::Long, bad),
            Err(ExchangeError::Rejected(_))
        ));
    }
}

#[test]
fn cancel_releases_margin_and_tolerates_unknown_orders() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&limit(
        "a",
        OrderSide::Buy,
        dec!(50000.0),
        dec!(1.9),
        Side::Long,
    ))
    .unwrap();
    let b = limit("b", OrderSide::Buy, dec!(50000.0), dec!(1.9), Side::Long);
    assert_eq!(acct.place(&b), Err(ExchangeError::InsufficientBalance));
    acct.cancel(BTC, "a").unwrap();
    acct.cancel(BTC, "a").unwrap();
    acct.cancel(BTC, "never").unwrap();
    acct.cancel("ETH/USDT", "never").unwrap();
    assert_eq!(
        acct.order(BTC, "a").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    acct.place(&b).unwrap();
    assert_eq!(
        p.set_price(BTC, dec!(49000.0)).unwrap(),
        1,
        "the cancelled order is off the book"
    );
}

#[test]
fn open_orders_are_the_accounts_own_whoever_placed_them() {
    let p = paper();
    let (me, other) = (p.account(1), p.account(2));
    me.place(&limit(
        "bz-1-1-l1",
        OrderSide::Buy,
        dec!(59000.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    me.place(&limit(
        "manual",
        OrderSide::Sell,
        dec!(61000.0),
        dec!(0.01),
        Side::Short,
    ))
    .unwrap();
    other
        .place(&limit(
            "x",
            OrderSide::Buy,
            dec!(59000.0),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    let ids: Vec<String> = me
        .open_orders(BTC)
        .unwrap()
        .into_iter()
        .map(|o| o.client_id)
        .collect();
    assert_eq!(ids, ["bz-1-1-l1", "manual"]);
    assert!(me.open_orders("ETH/USDT").unwrap().is_empty());
    assert_eq!(me.order(BTC, "x").unwrap(), None);
    assert_eq!(
        me.order("ETH/USDT", "manual").unwrap(),
        None,
        "wrong symbol"
    );
}

#[test]
fn quantities_below_the_minimum_are_refused() {
    let p = paper();
    let acct = p.account(1);
    for qty in [dec!(0.0009), dec!(0.0), dec!(-1.0)] {
        let r = acct.place(&market("q", OrderSide::Buy, qty, Side::Long));
        assert_eq!(r, Err(ExchangeError::BelowMinimum), "{qty}");
    }
    let mut eth = market("eth", OrderSide::Buy, dec!(0.005), Side::Long);
    eth.symbol = "ETH/USDT".into();
    assert_eq!(acct.place(&eth), Err(ExchangeError::BelowMinimum));
    let o = acct
        .place(&market("q", OrderSide::Buy, dec!(0.0019), Side::Long))
        .unwrap();
    assert_eq!(o.qty, dec!(0.001), "floored to the step");
}

#[test]
fn unknown_symbols_are_refused_and_others_listed_on_demand() {
    let p = paper();
    let acct = p.account(1);
    for s in ["BTCUSDT", "btc/usdt", "BTC/EUR"] {
        assert_eq!(acct.ticker(s), Err(ExchangeError::UnknownSymbol(s.into())));
        assert_eq!(
            acct.open_orders(s),
            Err(ExchangeError::UnknownSymbol(s.into()))
        );
        let mut o = market("u", OrderSide::Buy, dec!(1.0), Side::Long);
        o.symbol = s.into();
        assert!(matches!(
            acct.place(&o),
            Err(ExchangeError::UnknownSymbol(_))
        ));
    }
    assert_eq!(p.price("PEPE/USDT"), None);
    let m = acct.market("PEPE/USDT").unwrap();
    assert_eq!(
        (m.tick, m.step, m.min_qty),
        (dec!(0.01), dec!(0.001), dec!(0.001))
    );
    assert_eq!(p.price("PEPE/USDT"), Some(dec!(100.0)));
    assert!(matches!(
        p.set_price("nope", dec!(1.0)),
        Err(PaperError::Exchange(_))
    ));
    assert!(matches!(
        p.set_price(BTC, dec!(0.0)),
        Err(PaperError::InvalidPrice(_))
    ));
}

#[test]
fn flat_position_is_marked_at_the_price() {
    let p = paper();
    let pos = p.account(1).position("SOL/USDT", Side::Short).unwrap();
    assert_eq!(
        (pos.side, pos.size, pos.avg_entry, pos.mark_price),
        (Side::Short, dec!(0.0), dec!(0.0), dec!(150.0))
    );
    assert_eq!(p.account(1).balance().unwrap(), dec!(10000.0));
}

#[test]
fn advance_catches_up_at_most_600_steps() {
    let p = Paper::in_memory(params(5, 0.001), 0).unwrap();
    p.account(1).ticker(BTC).unwrap();
    p.advance(2_500).unwrap();
    assert_eq!(step_no(&p, BTC), 2, "whole ticks only");
    p.advance(3_000).unwrap();
    assert_eq!(step_no(&p, BTC), 3, "the remainder was kept");
    p.advance(10_000_000).unwrap();
    assert_eq!(step_no(&p, BTC), 603);
    p.advance(10_000_999).unwrap();
    assert_eq!(step_no(&p, BTC), 603, "the rest of the gap was skipped");
    p.advance(10_001_000).unwrap();
    assert_eq!(step_no(&p, BTC), 604);
}

#[test]
fn state_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blitz.db");
    let open = |now| {
        let (conn, _) = crate::store::open_migrated(&path).unwrap();
        Paper::open(conn, params(11, 0.001), now).unwrap()
    };
    {
        let (conn, _) = crate::store::open_migrated(&path).unwrap();
        for id in [1, 2] {
            conn.execute(
                "INSERT INTO user (id, email, password_hash, created_at) VALUES (?1, ?2, 'x', 0)",
                crate::params![id, format!("u{id}@example.com")],
            )
            .unwrap();
        }
    }
    let p = open(0);
    let (a, b) = (p.account(1), p.account(2));
    // Low enough that the fall to 49,000 below stays above the liquidation price.
    a.set_leverage(BTC, Side::Long, 5).unwrap();
    a.place(&market("e", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    a.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(50000.0),
        dec!(0.1),
        Side::Long,
    ))
    .unwrap();
    b.place(&market("s", OrderSide::Sell, dec!(0.2), Side::Short))
        .unwrap();
    b.place(&limit(
        "tp",
        OrderSide::Buy,
        dec!(40000.0),
        dec!(0.2),
        Side::Short,
    ))
    .unwrap();
    b.cancel(BTC, "tp").unwrap();
    p.advance(5_000).unwrap();
    let snapshot = |p: &Arc<Paper>| {
        let (a, b) = (p.account(1), p.account(2));
        (
            p.price(BTC),
            (a.balance().unwrap(), b.balance().unwrap()),
            (
                a.position(BTC, Side::Long).unwrap(),
                b.position(BTC, Side::Short).unwrap(),
            ),
            (
                a.open_orders(BTC).unwrap(),
                b.order(BTC, "tp").unwrap(),
                a.order(BTC, "e").unwrap(),
            ),
        )
    };
    let before = snapshot(&p);
    drop((p, a, b));

    let p = open(5_000);
    assert_eq!(snapshot(&p), before);
    assert_eq!(step_no(&p, BTC), 5);
    // Client ids stay used, and new orders get fresh exchange ids.
    let a = p.account(1);
    assert_eq!(
        a.place(&market("e", OrderSide::Buy, dec!(0.1), Side::Long)),
        Err(ExchangeError::Duplicate("e".into()))
    );
    let o = a
        .place(&limit(
            "leg2",
            OrderSide::Buy,
            dec!(45000.0),
            dec!(0.1),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(o.exchange_id, "5");
    assert_eq!(
        p.lock().unwrap().book.leverage(1, 0),
        5,
        "leverage survived"
    );
    // The walk continues the same sequence as if never interrupted.
    p.advance(10_000).unwrap();
    let straight = Paper::in_memory(params(11, 0.001), 0).unwrap();
    straight.account(1).ticker(BTC).unwrap();
    straight.advance(10_000).unwrap();
    assert_eq!(p.price(BTC), straight.price(BTC));
    // The filled leg fills at its price after a reopen too.
    assert_eq!(p.set_price(BTC, dec!(49000.0)).unwrap(), 1);
    drop(p);
    let p = open(10_000);
    let leg = p.account(1).order(BTC, "leg").unwrap().unwrap();
    assert_eq!(
        (leg.status, leg.avg_fill_price),
        (OrderStatus::Filled, dec!(50000.0))
    );
    assert_eq!(p.account(1).open_orders(BTC).unwrap().len(), 1);
}

#[test]
fn a_failed_write_leaves_memory_as_the_database() {
    let p = paper();
    p.lock()
        .unwrap()
        .conn
        .execute_batch(
            "CREATE TRIGGER fail BEFORE INSERT ON paper_orders WHEN NEW.client_id = 'boom'
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
        )
        .unwrap();
    let acct = p.account(1);
    let r = acct.place(&market("boom", OrderSide::Buy, dec!(0.1), Side::Long));
    // A trigger's RAISE(ABORT) is a constraint failure: no retry gets past it.
    assert!(matches!(r, Err(ExchangeError::Rejected(_))), "{r:?}");
    assert_eq!(acct.balance().unwrap(), dec!(10000.0));
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0.0));
    assert_eq!(acct.order(BTC, "boom").unwrap(), None);
    acct.place(&market("ok", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0.1));
}

#[test]
fn old_candles_are_pruned_through_the_primary_key() {
    let p = paper();
    let g = p.lock().unwrap();
    let plan: String = g
        .conn
        .query_row(
            &format!("EXPLAIN QUERY PLAN {}", super::candles::PRUNE_SQL),
            crate::params![BTC, 0],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("sqlite_autoindex_paper_candles_1"), "{plan}");
}

#[test]
fn open_orders_load_through_the_partial_index() {
    let p = paper();
    let g = p.lock().unwrap();
    let plan: String = g
        .conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT * FROM paper_orders
             WHERE status IN ('open', 'partially_filled') ORDER BY id",
            (),
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("idx_paper_orders_open"), "{plan}");
}

#[test]
fn five_thousand_accounts_advance_and_match_correctly() {
    const USERS: i64 = 5_000;
    let p = Paper::in_memory(params(9, 0.001), 0).unwrap();
    for uid in 1..=USERS {
        let a = p.account(uid);
        // 5×: liquidation at 60,006 × 0.805 ≈ 48,305, below the leg at 54,000 that
        // the fall to 53,000 fills (at 10× it would liquidate first, at 54,305).
        a.set_leverage(BTC, Side::Long, 5).unwrap();
        a.place(&market("e", OrderSide::Buy, dec!(0.002), Side::Long))
            .unwrap();
        a.place(&limit(
            "l1",
            OrderSide::Buy,
            dec!(54000.0),
            dec!(0.002),
            Side::Long,
        ))
        .unwrap();
        a.place(&limit(
            "l2",
            OrderSide::Buy,
            dec!(48000.0),
            dec!(0.002),
            Side::Long,
        ))
        .unwrap();
        a.place(&limit(
            "tp",
            OrderSide::Sell,
            dec!(66000.0),
            dec!(0.003),
            Side::Long,
        ))
        .unwrap();
    }
    // One step moves at most dec!(0.17) %: nothing is near enough to fill.
    assert_eq!(p.advance(1_000).unwrap(), 0);
    assert_eq!(step_no(&p, BTC), 1);
    assert_eq!(p.lock().unwrap().book.orders.len(), 3 * USERS as usize);
    assert_eq!(p.set_price(BTC, dec!(53000.0)).unwrap(), USERS as usize);
    assert_eq!(p.set_price(BTC, dec!(67000.0)).unwrap(), USERS as usize);
    for uid in [1, 2_500, USERS] {
        let a = p.account(uid);
        let pos = a.position(BTC, Side::Long).unwrap();
        assert!(
            close(pos.size, dec!(0.001)),
            "dec!(0.004) bought, dec!(0.003) sold"
        );
        // The entry at the ask 60,006.0 and the leg at 54,000.
        assert!(close(pos.avg_entry, dec!(57003.0)));
        let open: Vec<String> = a
            .open_orders(BTC)
            .unwrap()
            .into_iter()
            .map(|o| o.client_id)
            .collect();
        assert_eq!(open, ["l2"]);
    }
    assert_eq!(p.lock().unwrap().book.orders.len(), USERS as usize);
}

// Conditional stops.

pub(super) fn stop(
    cid: &str,
    side: OrderSide,
    trigger: Decimal,
    qty: Decimal,
    pos: Side,
) -> NewOrder {
    NewOrder {
        kind: OrderKind::Stop,
        trigger_price: Some(trigger),
        ..market(cid, side, qty, pos)
    }
}

fn is_rejected(r: &Result<crate::exchange::Order, ExchangeError>, words: &str) -> bool {
    matches!(r, Err(ExchangeError::Rejected(m)) if m.contains(words))
}

#[test]
fn a_longs_stop_rests_until_the_mark_falls_to_it_and_fills_at_that_mark() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    let sl = acct
        .place(&stop(
            "sl",
            OrderSide::Sell,
            dec!(59000.04),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    // Rounded up to the tick, toward the entry: never a bigger loss than asked.
    assert_eq!(
        (sl.kind, sl.status, sl.price, sl.trigger_price),
        (
            OrderKind::Stop,
            OrderStatus::Open,
            None,
            Some(dec!(59000.1))
        )
    );
    assert_eq!((sl.filled_qty, sl.fee), (dec!(0), dec!(0)));
    assert_eq!(acct.open_orders(BTC).unwrap(), vec![sl.clone()]);
    assert_eq!(acct.order(BTC, "sl").unwrap(), Some(sl));
    // Rises and falls that stay above the trigger leave it resting.
    assert_eq!(p.set_price(BTC, dec!(65000.0)).unwrap(), 0);
    assert_eq!(p.set_price(BTC, dec!(59000.2)).unwrap(), 0);
    let balance = acct.balance().unwrap();
    // The mark falls through the trigger: it executes as a market sell, at that
    // mark less the half-spread (58,800 × 0.9999 = 58,794.12 → 58,794.1), as taker.
    assert_eq!(p.set_price(BTC, dec!(58800.0)).unwrap(), 1);
    let sl = acct.order(BTC, "sl").unwrap().unwrap();
    assert_eq!(
        (sl.status, sl.filled_qty, sl.avg_fill_price),
        (OrderStatus::Filled, dec!(0.01), dec!(58794.1))
    );
    assert_eq!(sl.fee, dec!(0.01) * dec!(58794.1) * dec!(0.00055));
    // Entered at the ask, 60,006.0.
    let pnl = (dec!(58794.1) - dec!(60006.0)) * dec!(0.01);
    assert_eq!(acct.balance().unwrap(), balance + pnl - sl.fee);
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0));
    assert!(acct.open_orders(BTC).unwrap().is_empty());
}

#[test]
fn a_shorts_stop_trigger_rounds_down_toward_the_entry() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    let sl = acct
        .place(&stop(
            "sl",
            OrderSide::Buy,
            dec!(61000.06),
            dec!(0.01),
            Side::Short,
        ))
        .unwrap();
    assert_eq!(sl.trigger_price, Some(dec!(61000.0)));
}

#[test]
fn a_shorts_stop_fires_when_the_mark_rises_to_it_capped_at_the_position() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    acct.place(&stop(
        "sl",
        OrderSide::Buy,
        dec!(61000.0),
        dec!(0.05),
        Side::Short,
    ))
    .unwrap();
    assert_eq!(p.set_price(BTC, dec!(55000.0)).unwrap(), 0);
    assert_eq!(p.set_price(BTC, dec!(60999.9)).unwrap(), 0);
    // Touching the trigger is enough.
    assert_eq!(p.set_price(BTC, dec!(61000.0)).unwrap(), 1);
    let sl = acct.order(BTC, "sl").unwrap().unwrap();
    assert_eq!(
        (sl.status, sl.qty, sl.filled_qty, sl.avg_fill_price),
        // A market buy: 61,000 × 1.0001 = 61,006.1.
        (OrderStatus::Filled, dec!(0.05), dec!(0.01), dec!(61006.1))
    );
    assert_eq!(acct.position(BTC, Side::Short).unwrap().size, dec!(0));
}

#[test]
fn stops_on_the_wrong_side_of_the_mark_or_not_closing_are_refused() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("l", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    acct.place(&market("s", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    let long_stop = |cid: &str, t| stop(cid, OrderSide::Sell, t, dec!(0.01), Side::Long);
    let short_stop = |cid: &str, t| stop(cid, OrderSide::Buy, t, dec!(0.01), Side::Short);
    let r = acct.place(&long_stop("a", dec!(60000.0)));
    assert!(
        is_rejected(&r, "must be below the mark price 60000"),
        "{r:?}"
    );
    assert!(is_rejected(
        &acct.place(&long_stop("b", dec!(61000.0))),
        "below"
    ));
    let r = acct.place(&short_stop("c", dec!(59000.0)));
    assert!(
        is_rejected(&r, "must be above the mark price 60000"),
        "{r:?}"
    );
    let mut no_trigger = long_stop("d", dec!(59000.0));
    no_trigger.trigger_price = None;
    assert!(is_rejected(&acct.place(&no_trigger), "trigger price"));
    // Below one tick after rounding (a short's stop rounds down, to 0).
    assert!(is_rejected(
        &acct.place(&short_stop("e", dec!(0.01))),
        "trigger price"
    ));
    let mut opening = stop("f", OrderSide::Buy, dec!(61000.0), dec!(0.01), Side::Long);
    opening.reduce_only = true;
    assert!(is_rejected(&acct.place(&opening), "would increase"));
    opening.reduce_only = false;
    assert!(is_rejected(&acct.place(&opening), "must be reduce-only"));
    let flat = p.account(2).place(&long_stop("g", dec!(59000.0)));
    assert!(is_rejected(&flat, "no Long position"), "{flat:?}");
    // Refused orders leave nothing: not listed, ids still free.
    assert!(acct.open_orders(BTC).unwrap().is_empty());
    assert_eq!(acct.order(BTC, "a").unwrap(), None);
    acct.place(&long_stop("a", dec!(59000.0))).unwrap();
}

#[test]
fn a_cancelled_stop_never_fires_and_a_stop_without_its_position_is_cancelled() {
    let p = paper();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.02), Side::Long))
        .unwrap();
    acct.place(&stop(
        "sl1",
        OrderSide::Sell,
        dec!(59000.0),
        dec!(0.02),
        Side::Long,
    ))
    .unwrap();
    let sl2 = acct
        .place(&stop(
            "sl2",
            OrderSide::Sell,
            dec!(58000.0),
            dec!(0.02),
            Side::Long,
        ))
        .unwrap();
    acct.cancel(BTC, "sl1").unwrap();
    assert_eq!(
        acct.order(BTC, "sl1").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert_eq!(acct.open_orders(BTC).unwrap(), vec![sl2]);
    assert_eq!(p.set_price(BTC, dec!(58500.0)).unwrap(), 0);
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0.02));
    // Closed by hand: the remaining stop finds no position when it triggers.
    acct.place(&market("x", OrderSide::Sell, dec!(0.02), Side::Long))
        .unwrap();
    assert_eq!(p.set_price(BTC, dec!(57000.0)).unwrap(), 0);
    let sl2 = acct.order(BTC, "sl2").unwrap().unwrap();
    assert_eq!(
        (sl2.status, sl2.filled_qty),
        (OrderStatus::Cancelled, dec!(0))
    );
    assert!(acct.open_orders(BTC).unwrap().is_empty());
}

#[test]
fn orders_are_found_and_cancelled_by_exchange_id_too() {
    let p = paper();
    let acct = p.account(1);
    let e = acct
        .place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    let sl = acct
        .place(&stop(
            "sl",
            OrderSide::Sell,
            dec!(59000.0),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(acct.order_by_id(BTC, &e.exchange_id).unwrap(), Some(e));
    assert_eq!(
        acct.order_by_id(BTC, &sl.exchange_id).unwrap(),
        Some(sl.clone())
    );
    for other in [
        p.account(2).order_by_id(BTC, &sl.exchange_id),
        acct.order_by_id("ETH/USDT", &sl.exchange_id),
        acct.order_by_id(BTC, "x"),
    ] {
        assert_eq!(other.unwrap(), None);
    }
    p.account(2).cancel_by_id(BTC, &sl.exchange_id).unwrap();
    assert_eq!(
        acct.open_orders(BTC).unwrap().len(),
        1,
        "not theirs to cancel"
    );
    acct.cancel_by_id(BTC, &sl.exchange_id).unwrap();
    acct.cancel_by_id(BTC, &sl.exchange_id).unwrap();
    assert_eq!(
        acct.order_by_id(BTC, &sl.exchange_id)
            .unwrap()
            .unwrap()
            .status,
        OrderStatus::Cancelled
    );
    assert!(acct.open_orders(BTC).unwrap().is_empty());
}

#[test]
fn a_walk_catching_up_fills_a_stop_at_the_step_that_crossed_it() {
    let trigger = dec!(59500.0);
    // The path tick by tick, to know which step first reached the trigger.
    let path = walk_prices(21, 2_000);
    let hit = path
        .iter()
        .position(|p| *p <= trigger)
        .expect("the walk reaches the trigger");
    // One call walks the steps up to well past the hit (within the 600-step cap),
    // to a price other than the hit's.
    let n = hit + 50;
    assert!(n <= 600, "hit at step {hit}");
    assert_ne!(path[n - 1], path[hit], "the walk moves on");
    let p = Paper::in_memory(params(21, 0.01), 0).unwrap();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    acct.place(&stop(
        "sl",
        OrderSide::Sell,
        trigger,
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    assert_eq!(p.advance(i64::try_from(n).unwrap() * 1000).unwrap(), 1);
    let sl = acct.order(BTC, "sl").unwrap().unwrap();
    // A market sell at that step's mark less the half-spread, down to the tick.
    let bid = (path[hit] * dec!(0.9999) / dec!(0.1)).floor() * dec!(0.1);
    assert_eq!((sl.status, sl.avg_fill_price), (OrderStatus::Filled, bid));
    assert_eq!(p.price(BTC), Some(path[n - 1]));
}

#[test]
fn stops_survive_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blitz.db");
    let open = || {
        let (conn, _) = crate::store::open_migrated(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        Paper::open(conn, params(1, 0.0), 0).unwrap()
    };
    let p = open();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    let sl = acct
        .place(&stop(
            "sl",
            OrderSide::Sell,
            dec!(59000.0),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    drop((p, acct));

    let p = open();
    let acct = p.account(1);
    assert_eq!(acct.open_orders(BTC).unwrap(), vec![sl]);
    assert_eq!(p.set_price(BTC, dec!(59500.0)).unwrap(), 0);
    assert_eq!(p.set_price(BTC, dec!(58900.0)).unwrap(), 1);
    drop((p, acct));

    let p = open();
    let sl = p.account(1).order(BTC, "sl").unwrap().unwrap();
    assert_eq!(
        (sl.kind, sl.status, sl.trigger_price, sl.avg_fill_price),
        (
            OrderKind::Stop,
            OrderStatus::Filled,
            Some(dec!(59000.0)),
            // A market sell at 58,900 less the half-spread.
            dec!(58894.1)
        )
    );
    assert!(p.account(1).open_orders(BTC).unwrap().is_empty());
}

// Executions, funding and the manual close.

#[test]
fn executions_list_every_fill_of_the_account_on_the_symbol_in_order() {
    let p = paper();
    let acct = p.account(1);
    let e = acct
        .place(&market("e", OrderSide::Buy, dec!(0.02), Side::Long))
        .unwrap();
    acct.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(59000.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    p.account(2)
        .place(&market("theirs", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    acct.place(&market("eth", OrderSide::Buy, dec!(0.01), Side::Long).with_symbol("ETH/USDT"))
        .unwrap();
    p.set_price(BTC, dec!(58000.0)).unwrap();
    let closed = acct.close_position(BTC, Side::Long).unwrap().unwrap();
    let fills = acct.executions(BTC, 0).unwrap();
    let seen: Vec<_> = fills
        .iter()
        .map(|f| (f.client_id.as_str(), f.side, f.qty, f.price))
        .collect();
    assert_eq!(
        seen,
        [
            // Market orders at the ask (60,000 + 0.01 %) and the bid (58,000 − 0.01 %).
            ("e", OrderSide::Buy, dec!(0.02), dec!(60006.0)),
            ("leg", OrderSide::Buy, dec!(0.01), dec!(59000.0)),
            (
                closed.client_id.as_str(),
                OrderSide::Sell,
                dec!(0.03),
                dec!(57994.2)
            ),
        ]
    );
    assert!(
        closed.client_id.starts_with("manual-"),
        "{}",
        closed.client_id
    );
    assert_eq!(fills[0].order_id, e.exchange_id);
    assert_eq!(fills[0].fee, e.fee);
    assert_eq!(fills[1].fee, dec!(0.01) * dec!(59000.0) * dec!(0.0002));
    assert_eq!(fills[2].fee, closed.fee);
    assert!(fills.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    let ids: Vec<i64> = fills.iter().map(|f| f.exec_id.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(fills.iter().all(|f| !f.liquidation));
    // `since` is inclusive; later than every fill is nothing.
    let last = fills[2].time_ms;
    assert!(acct.executions(BTC, last).unwrap().contains(&fills[2]));
    assert!(acct.executions(BTC, last + 1).unwrap().is_empty());
    assert_eq!(acct.executions("SOL/USDT", 0).unwrap(), vec![]);
    assert!(acct.executions("nope", 0).is_err());
    assert_eq!(p.account(2).executions(BTC, 0).unwrap().len(), 1);
}

impl NewOrder {
    fn with_symbol(self, symbol: &str) -> NewOrder {
        NewOrder {
            symbol: symbol.into(),
            ..self
        }
    }
}

#[test]
fn a_manual_close_is_a_reduce_only_market_order_that_is_not_the_bots() {
    let p = paper();
    let acct = p.account(1);
    assert_eq!(acct.close_position(BTC, Side::Long).unwrap(), None);
    acct.place(&market("e", OrderSide::Buy, dec!(0.03), Side::Long))
        .unwrap();
    acct.place(&market("s", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    p.set_price(BTC, dec!(61000.0)).unwrap();
    let o = acct.close_position(BTC, Side::Long).unwrap().unwrap();
    assert_eq!(
        (o.kind, o.side, o.reduce_only, o.position_side),
        (OrderKind::Market, OrderSide::Sell, true, Side::Long)
    );
    assert_eq!(
        (o.status, o.filled_qty, o.avg_fill_price),
        // The bid: 61,000 − 0.01 % = 60,993.9.
        (OrderStatus::Filled, dec!(0.03), dec!(60993.9))
    );
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0));
    assert_eq!(acct.position(BTC, Side::Short).unwrap().size, dec!(0.01));
    assert_eq!(acct.close_position(BTC, Side::Long).unwrap(), None);
    // Two closes in the same millisecond still get distinct ids.
    let again = acct.close_position(BTC, Side::Short).unwrap().unwrap();
    assert_ne!(again.client_id, o.client_id);
    assert!(again.client_id.starts_with("manual-"));
    assert!(acct.close_position("nope", Side::Long).is_err());
}

// Replayed prices.

pub(super) fn replayed(text: &str) -> PaperPrices {
    let replay = Replay::parse(std::path::Path::new("prices.csv"), text).unwrap();
    PaperPrices::Replay(Arc::new(replay))
}

#[test]
fn a_dip_and_recovery_during_catch_up_fills_the_leg_and_the_stop_at_the_dip() {
    let prices = replayed(
        "seconds,symbol,price\n0,BTC/USDT,60000\n10,BTC/USDT,59500\n\
         20,BTC/USDT,58900\n30,BTC/USDT,60500\n",
    );
    let p = Paper::in_memory_with(params(1, 0.01), &prices, None, 1_000_000).unwrap();
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    acct.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(59000.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    acct.place(&stop(
        "sl",
        OrderSide::Sell,
        dec!(58950.0),
        dec!(0.02),
        Side::Long,
    ))
    .unwrap();
    // Nothing before the second line; then all three lines in one catch-up.
    assert_eq!(p.advance(1_009_999).unwrap(), 0);
    assert_eq!(p.price(BTC), Some(dec!(60000)));
    assert_eq!(p.advance(1_045_000).unwrap(), 2);
    assert_eq!(p.price(BTC), Some(dec!(60500)));
    let leg = acct.order(BTC, "leg").unwrap().unwrap();
    let sl = acct.order(BTC, "sl").unwrap().unwrap();
    assert_eq!(
        (leg.status, leg.avg_fill_price),
        (OrderStatus::Filled, dec!(59000.0))
    );
    // A market sell at the dip's mark less the half-spread: 58,900 × 0.9999 =
    // 58,894.11 → 58,894.1.
    assert_eq!(
        (sl.status, sl.filled_qty, sl.avg_fill_price),
        (OrderStatus::Filled, dec!(0.02), dec!(58894.1))
    );
    let order: Vec<String> = acct
        .executions(BTC, 0)
        .unwrap()
        .into_iter()
        .map(|f| f.client_id)
        .collect();
    assert_eq!(order, ["e", "leg", "sl"]);
    assert_eq!(acct.position(BTC, Side::Long).unwrap().size, dec!(0));
}

#[test]
fn replayed_symbols_follow_the_file_and_the_others_walk_bounded() {
    let prices = replayed("0,ETH/USDT,3000\n5,BTC/USDT,61000\n7,BTC/USDT,61000.04\n");
    let p = Paper::in_memory_with(params(4, 0.001), &prices, None, 0).unwrap();
    let acct = p.account(1);
    // Listed before its first line: the first line's price.
    assert_eq!(acct.ticker(BTC).unwrap(), dec!(61000));
    assert_eq!(acct.ticker("SOL/USDT").unwrap(), dec!(150.0));
    p.advance(6_000).unwrap();
    // Listed after a line: that line's price.
    assert_eq!(acct.ticker("ETH/USDT").unwrap(), dec!(3000));
    p.advance(10_000_000).unwrap();
    assert_eq!(p.price(BTC), Some(dec!(61000.0)), "rounded to the tick");
    assert_eq!(p.price("ETH/USDT"), Some(dec!(3000)));
    assert_ne!(p.price("SOL/USDT"), Some(dec!(150.0)), "SOL walks");
    assert_eq!(
        step_no(&p, "SOL/USDT"),
        6 + 600,
        "a walk's catch-up stays bounded"
    );
    assert_eq!(step_no(&p, BTC), 0, "replayed symbols do not walk");
}

#[test]
fn the_replay_epoch_is_persisted_and_a_restart_catches_up_on_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blitz.db");
    let prices =
        replayed("0,BTC/USDT,60000\n100,BTC/USDT,61000\n200,BTC/USDT,59000\n300,BTC/USDT,62000\n");
    let open = |now| {
        let (conn, _) = crate::store::open_migrated(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        Paper::open_with(conn, params(1, 0.0), &prices, None, now).unwrap()
    };
    let t0 = 1_700_000_000_000;
    let p = open(t0);
    let acct = p.account(1);
    acct.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    p.advance(t0 + 150_000).unwrap();
    assert_eq!(p.price(BTC), Some(dec!(61000)));
    acct.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(59500.0),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    acct.place(&stop(
        "sl",
        OrderSide::Sell,
        dec!(59200.0),
        dec!(0.02),
        Side::Long,
    ))
    .unwrap();
    drop((p, acct));

    // Down while the price dipped to 59,000 and came back to 62,000; reopened
    // later, the epoch stays the first one's.
    let p = open(t0 + 400_000);
    assert_eq!(p.lock().unwrap().book.epoch_ms, t0);
    assert_eq!(p.price(BTC), Some(dec!(61000)));
    assert_eq!(p.advance(t0 + 400_000).unwrap(), 2);
    assert_eq!(p.price(BTC), Some(dec!(62000)));
    let acct = p.account(1);
    let leg = acct.order(BTC, "leg").unwrap().unwrap();
    let sl = acct.order(BTC, "sl").unwrap().unwrap();
    assert_eq!(leg.avg_fill_price, dec!(59500.0));
    assert_eq!(
        (sl.status, sl.avg_fill_price, sl.filled_qty),
        // 59,000 less the half-spread: 58,994.1.
        (OrderStatus::Filled, dec!(58994.1), dec!(0.02))
    );
}

#[test]
fn fills_of_orders_made_before_the_fill_history_are_backfilled() {
    let conn = crate::store::Conn::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    let migrations = crate::store::migrate::MIGRATIONS;
    let before: Vec<_> = migrations.iter().filter(|m| m.version <= 7).collect();
    for m in &before {
        conn.execute_batch(m.sql).unwrap();
    }
    conn.execute_batch(
        "INSERT INTO paper_orders (id, user_id, client_id, symbol, side, kind, price, qty,
             filled_qty, avg_fill_price, fee, reduce_only, position_side, status,
             created_ms, updated_ms)
         VALUES (1, 5, 'e', 'BTC/USDT', 'buy', 'market', NULL, '0.01', '0.01', '60000',
                 '0.33', 0, 'long', 'filled', 10, 11),
                (2, 5, 'l', 'BTC/USDT', 'buy', 'limit', '59000', '0.01', '0', '0', '0', 0,
                 'long', 'open', 12, 12);",
    )
    .unwrap();
    for m in migrations.iter().filter(|m| m.version > 7) {
        conn.execute_batch(m.sql).unwrap();
    }
    let p = Paper::open(conn, params(1, 0.0), 100).unwrap();
    let fills = p.account(5).executions(BTC, 0).unwrap();
    assert_eq!(fills.len(), 1);
    let f = &fills[0];
    assert_eq!(
        (
            f.client_id.as_str(),
            f.order_id.as_str(),
            f.qty,
            f.price,
            f.fee,
            f.time_ms
        ),
        ("e", "1", dec!(0.01), dec!(60000), dec!(0.33), 11)
    );
    assert_eq!(p.account(5).open_orders(BTC).unwrap().len(), 1);
}
