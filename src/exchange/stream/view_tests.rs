use super::*;
use crate::exchange::{OrderKind, OrderSide, OrderStatus};
use crate::money::dec;

const SYM: &str = "BTC/USDT";

fn order(id: &str, status: OrderStatus, filled: Decimal) -> Order {
    Order {
        client_id: format!("c-{id}"),
        exchange_id: id.to_string(),
        symbol: SYM.to_string(),
        side: OrderSide::Buy,
        kind: OrderKind::Limit,
        price: Some(dec!(100)),
        trigger_price: None,
        qty: dec!(1),
        filled_qty: filled,
        avg_fill_price: if filled.is_zero() {
            Decimal::ZERO
        } else {
            dec!(100)
        },
        fee: filled * dec!(0.1),
        reduce_only: false,
        position_side: Side::Long,
        status,
        created_ms: 1,
    }
}

fn upd(o: Order, time_ms: i64) -> Update {
    Update::Order {
        order: o,
        time_ms,
        fee_delta: None,
    }
}

fn pos(size: Decimal) -> Position {
    Position {
        side: Side::Long,
        size,
        avg_entry: dec!(100),
        mark_price: dec!(101),
    }
}

fn live_synced(now: i64) -> AccountView {
    let v = AccountView::new("bybit", true);
    v.set_live(now, 0);
    let m = v.mark();
    v.snapshot_orders(SYM, &[], m, now);
    v
}

#[test]
fn nothing_is_answered_before_the_stream_is_live_and_the_symbol_synced() {
    let v = AccountView::new("bybit", true);
    assert_eq!(v.open_orders(SYM, 10), None);
    let m = v.mark();
    v.snapshot_orders(SYM, &[order("a", OrderStatus::Open, dec!(0))], m, 10);
    assert_eq!(v.open_orders(SYM, 10), None, "down: REST every time");
    v.set_live(20, 0);
    assert_eq!(
        v.open_orders(SYM, 20),
        None,
        "a reconnect needs a new snapshot"
    );
    let m = v.mark();
    v.snapshot_orders(SYM, &[order("a", OrderStatus::Open, dec!(0))], m, 30);
    assert_eq!(v.open_orders(SYM, 30).unwrap().len(), 1);
    // A minute later the symbol is reconciled again.
    assert_eq!(v.open_orders(SYM, 30 + SYNC_FOR_MS), None);
}

#[test]
fn an_older_update_never_overwrites_a_newer_one() {
    let v = live_synced(0);
    assert!(v.apply(upd(
        order("a", OrderStatus::PartiallyFilled, dec!(0.5)),
        200
    )));
    assert!(!v.apply(upd(order("a", OrderStatus::Open, dec!(0)), 100)));
    // Same time but less filled, or open again after closing: refused too.
    assert!(v.apply(upd(order("a", OrderStatus::Filled, dec!(1)), 300)));
    assert!(!v.apply(upd(
        order("a", OrderStatus::PartiallyFilled, dec!(0.5)),
        300
    )));
    let o = v.order(SYM, "c-a").unwrap();
    assert_eq!((o.status, o.filled_qty), (OrderStatus::Filled, dec!(1)));
    assert!(v.open_orders(SYM, 1).unwrap().is_empty());
    // Positions and the wallet follow the same rule.
    let m = v.mark();
    v.snapshot_position(SYM, pos(dec!(0)), m, 1);
    let p = |size, t| Update::Position {
        symbol: SYM.into(),
        position: pos(size),
        time_ms: t,
    };
    assert!(v.apply(p(dec!(2), 500)));
    assert!(!v.apply(p(dec!(1), 400)));
    assert_eq!(v.position(SYM, Side::Long, 2).unwrap().size, dec!(2));
    assert!(v.apply(Update::Wallet {
        balance: dec!(10),
        time_ms: 9
    }));
    assert!(!v.apply(Update::Wallet {
        balance: dec!(5),
        time_ms: 8
    }));
    assert_eq!(v.balance(), Some(dec!(10)));
}

#[test]
fn a_snapshot_replaces_the_open_set_then_later_stream_updates_go_on_top() {
    let v = live_synced(0);
    v.apply(upd(order("gone", OrderStatus::Open, dec!(0)), 10));
    v.apply(upd(order("kept", OrderStatus::Open, dec!(0)), 10));
    let m = v.mark();
    // While the REST request is under way the stream reports a fill of `kept`
    // and a new order; REST saw neither.
    v.apply(upd(
        order("kept", OrderStatus::PartiallyFilled, dec!(0.5)),
        20,
    ));
    v.apply(upd(order("new", OrderStatus::Open, dec!(0)), 21));
    let rest = [order("kept", OrderStatus::Open, dec!(0))];
    v.snapshot_orders(SYM, &rest, m, 100);
    let open = v.open_orders(SYM, 100).unwrap();
    let ids: Vec<&str> = open.iter().map(|o| o.exchange_id.as_str()).collect();
    assert_eq!(ids, ["kept", "new"]);
    assert_eq!(open[0].filled_qty, dec!(0.5));
    // The one REST no longer lists is unknown now: a lookup asks REST.
    assert_eq!(v.order(SYM, "c-gone"), None);
}

#[test]
fn a_snapshot_taken_across_a_reconnect_is_not_trusted() {
    let v = AccountView::new("bybit", true);
    v.set_live(0, 0);
    let m = v.mark();
    v.set_live(50, 0);
    v.snapshot_orders(SYM, &[], m, 60);
    assert_eq!(v.open_orders(SYM, 60), None);
}

#[test]
fn a_cancelled_order_is_not_open_and_its_lookup_goes_to_rest_until_confirmed() {
    let v = live_synced(0);
    v.learn_order(&order("a", OrderStatus::Open, dec!(0)));
    assert_eq!(v.order(SYM, "c-a").unwrap().status, OrderStatus::Open);
    v.cancel_sent(SYM, Some("c-a"), None);
    assert!(v.open_orders(SYM, 1).unwrap().is_empty());
    assert_eq!(v.order(SYM, "c-a"), None);
    v.apply(upd(order("a", OrderStatus::Cancelled, dec!(0)), 5));
    assert_eq!(v.order(SYM, "c-a").unwrap().status, OrderStatus::Cancelled);
}

#[test]
fn per_fill_fees_add_up_once_and_an_order_first_seen_half_filled_asks_rest() {
    let v = AccountView::new("bingx", false);
    v.set_live(0, 0);
    let fill = |filled, fee: Decimal, t| Update::Order {
        order: order("a", OrderStatus::PartiallyFilled, filled),
        time_ms: t,
        fee_delta: Some(fee),
    };
    v.apply(fill(dec!(0.5), dec!(0.05), 1));
    assert_eq!(v.order(SYM, "c-a"), None, "earlier fills' fees unknown");
    let mut known = order("a", OrderStatus::PartiallyFilled, dec!(0.5));
    known.fee = dec!(0.05);
    v.learn_order(&known);
    v.apply(fill(dec!(0.5), dec!(0.05), 2)); // REST already counted it
    v.apply(fill(dec!(1), dec!(0.04), 3));
    let o = v.order(SYM, "c-a").unwrap();
    assert_eq!((o.filled_qty, o.fee), (dec!(1), dec!(0.09)));
    // BingX fills have no fill ids: `executions` is REST's.
    assert_eq!(v.executions(SYM, 0), None);
}

#[test]
fn fills_are_answered_only_from_the_time_they_are_complete() {
    let v = AccountView::new("bybit", true);
    v.set_live(1_000, 0);
    let exec = |id: &str, t| Execution {
        exec_id: id.into(),
        order_id: "o".into(),
        client_id: "c".into(),
        side: OrderSide::Buy,
        qty: dec!(1),
        price: dec!(100),
        fee: dec!(0.1),
        time_ms: t,
        liquidation: false,
    };
    v.apply(Update::Execution {
        symbol: SYM.into(),
        exec: exec("e2", 5_000),
    });
    assert_eq!(v.executions(SYM, 500), None, "before the stream went live");
    assert_eq!(v.executions(SYM, 4_000).unwrap().len(), 1);
    let m = v.mark();
    v.learn_executions(SYM, 500, &[exec("e1", 600), exec("e2", 5_000)], m);
    let all = v.executions(SYM, 500).unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.exec_id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2"]);
    assert_eq!(v.executions(SYM, 400), None);
}

#[test]
fn fills_are_read_once_for_the_latency_metric() {
    let v = live_synced(0);
    v.apply(upd(order("a", OrderStatus::Open, dec!(0)), 10));
    v.apply(upd(order("a", OrderStatus::PartiallyFilled, dec!(0.5)), 20));
    v.apply(upd(order("a", OrderStatus::Filled, dec!(1)), 30));
    assert_eq!(v.take_unread_fills(SYM), vec![20, 30]);
    assert!(v.take_unread_fills(SYM).is_empty());
}

#[test]
fn the_closed_tail_is_bounded() {
    let v = live_synced(0);
    for k in 0..(CLOSED_KEPT + 10) {
        v.apply(upd(
            order(&format!("o{k}"), OrderStatus::Filled, dec!(1)),
            k as i64 + 1,
        ));
    }
    assert_eq!(v.order(SYM, "c-o0"), None);
    assert!(v.order(SYM, &format!("c-o{}", CLOSED_KEPT + 9)).is_some());
}

#[test]
fn fill_times_are_read_on_our_clock() {
    let v = AccountView::new("bybit", true);
    // The exchange's clock runs 15 s ahead of ours.
    v.set_live(0, 15_000);
    v.apply(upd(order("a", OrderStatus::Filled, dec!(1)), 20_000));
    assert_eq!(v.take_unread_fills(SYM), vec![5_000]);
}

#[test]
fn a_lost_update_makes_every_read_reconcile_even_within_the_same_millisecond() {
    let v = live_synced(10);
    v.apply(upd(order("a", OrderStatus::Open, dec!(0)), 11));
    let m = v.mark();
    v.snapshot_position(SYM, pos(dec!(1)), m, 10);
    assert_eq!(v.open_orders(SYM, 10).unwrap().len(), 1);
    // A snapshot's request began, then a frame could not be read (it may have
    // been "a filled"), in the very millisecond the stream went live.
    let m = v.mark();
    v.lost(10);
    assert_eq!(v.open_orders(SYM, 10), None, "the fill may be missing");
    assert_eq!(v.position(SYM, Side::Long, 10), None);
    assert_eq!(v.order(SYM, "c-a"), None);
    v.snapshot_orders(SYM, &[order("a", OrderStatus::Open, dec!(0))], m, 10);
    assert_eq!(
        v.open_orders(SYM, 10),
        None,
        "a snapshot requested before the loss proves nothing"
    );
    let m = v.mark();
    v.snapshot_orders(SYM, &[], m, 12);
    assert_eq!(v.open_orders(SYM, 12), Some(vec![]));
    // Down, a loss changes nothing: reads go to REST and `set_live` restarts.
    v.set_down();
    v.lost(13);
    assert_eq!(v.state(), StreamState::Down);
}

#[test]
fn a_lagging_rest_list_never_reopens_an_order_the_stream_closed() {
    let v = live_synced(0);
    v.apply(upd(order("a", OrderStatus::Open, dec!(0)), 5));
    v.apply(upd(order("b", OrderStatus::Open, dec!(0)), 5));
    v.apply(upd(order("a", OrderStatus::Filled, dec!(1)), 6));
    v.apply(upd(order("b", OrderStatus::PartiallyFilled, dec!(0.5)), 6));
    // Requested after both updates, answered from a replica that has not
    // seen them yet.
    let m = v.mark();
    let stale = [
        order("a", OrderStatus::Open, dec!(0)),
        order("b", OrderStatus::Open, dec!(0)),
    ];
    v.snapshot_orders(SYM, &stale, m, 10);
    let open = v.open_orders(SYM, 10).unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].filled_qty, dec!(0.5));
    let a = v.order(SYM, "c-a").unwrap();
    assert_eq!((a.status, a.filled_qty), (OrderStatus::Filled, dec!(1)));
}

#[test]
fn a_lagging_rest_position_never_hides_what_the_stream_just_reported() {
    let v = live_synced(0);
    let p = |size, t| Update::Position {
        symbol: SYM.into(),
        position: pos(size),
        time_ms: t,
    };
    // The entry filled at 1 000: the stream says 1, then a REST read answered
    // at 1 500 by a replica still at 0.
    v.apply(p(dec!(1), 1_000));
    let m = v.mark();
    v.snapshot_position(SYM, pos(dec!(0)), m, 1_500);
    assert_eq!(v.position(SYM, Side::Long, 1_500).unwrap().size, dec!(1));
    // A stream report long past is what the reconciliation checks: REST wins.
    let later = 1_000 + REST_LAG_MS + 1;
    let m = v.mark();
    v.snapshot_position(SYM, pos(dec!(3)), m, later);
    assert_eq!(v.position(SYM, Side::Long, later).unwrap().size, dec!(3));
}

#[test]
fn a_snapshot_requested_before_a_placement_keeps_the_placed_order() {
    let v = live_synced(0);
    v.apply(upd(order("a", OrderStatus::Open, dec!(0)), 5));
    // One bot's REST read begins; meanwhile a bot on the same account and
    // symbol places "b" (its answer is learnt before the stream reports it).
    let m = v.mark();
    v.learn_order(&order("b", OrderStatus::Open, dec!(0)));
    v.snapshot_orders(SYM, &[order("a", OrderStatus::Open, dec!(0))], m, 10);
    let open = v.open_orders(SYM, 10).expect("synced");
    let ids: Vec<&str> = open.iter().map(|o| o.exchange_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(v.take_unread_fills(SYM).is_empty());
}

#[test]
fn a_read_after_a_cancel_waits_for_the_streams_confirmation() {
    let v = std::sync::Arc::new(live_synced(0));
    v.learn_order(&order("a", OrderStatus::Open, dec!(0)));
    v.cancel_sent(SYM, Some("c-a"), None);
    // Unconfirmed: after the wait, REST is asked.
    let wait = Duration::from_millis(20);
    assert_eq!(v.order_after_cancel(SYM, "c-a", wait), None);
    let stream = {
        let v = v.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            v.apply(upd(order("a", OrderStatus::Cancelled, dec!(0)), 5));
        })
    };
    let t = Instant::now();
    let got = v.order_after_cancel(SYM, "c-a", Duration::from_secs(10));
    assert_eq!(got.map(|o| o.status), Some(OrderStatus::Cancelled));
    assert!(t.elapsed() < Duration::from_secs(5), "woken by the update");
    stream.join().unwrap();
    // An order with no cancel pending answers at once; an unknown one is REST's.
    v.learn_order(&order("b", OrderStatus::Open, dec!(0)));
    let t = Instant::now();
    assert!(v
        .order_after_cancel(SYM, "c-b", Duration::from_secs(10))
        .is_some());
    assert_eq!(
        v.order_after_cancel(SYM, "c-x", Duration::from_secs(10)),
        None
    );
    assert!(t.elapsed() < Duration::from_secs(1));
}
