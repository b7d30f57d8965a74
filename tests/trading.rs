//! End-to-end trading scenarios on the paper exchange with replayed BTC/USDT prices
//! (docs/bots.md: Strategy, Stop modes, Configuration, Replayed paper prices): the
//! real server, a logged-in user, the bot configured and started through the API,
//! and everything observed through the API only (status, orders, events, trades).
//!
//! Every path opens at 59,994 (`OPEN`) and holds it for `LEAD` seconds, time for the
//! bot's entry: a market buy takes the paper ask, 59,994 + 0.01 % = 59,999.9994,
//! rounded up to the tick: 60,000 (market sells take the bid, 0.01 % below, rounded
//! down). Each later move is seconds apart, and the test checks it is still before
//! a move whenever the next step depends on it. The standard ladder (`ladder()`),
//! entered at 60,000 at 10x:
//!
//! | order | price | qty |
//! |---|---|---|
//! | entry (12 USDT) | 60000 | 0.002 |
//! | leg 1 (12 USDT, 1 %) | 59400 | 0.002 |
//! | leg 2 (24 USDT, 2 %) | 58212 | 0.004 |
//! | take-profit 10 % ROE | 60600, after leg 1 60297 | |
//! | stop-loss 20 % ROE | 58800, after leg 1 58506 | |
//!
//! After leg 1 the average entry is 59,700 for 0.004 BTC.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::replay::{
    assert_dec, assert_order, d, dec, fees, fill, long_pnl, of_kind, one, unix, Scenario, LEAD,
    MAKER, TAKER,
};
use common::{is_stopped, wait_for};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// The opening price of every path: its ask is exactly 60,000 (module comment).
const OPEN: &str = "59994";

/// The standard ladder of the module comment.
fn ladder() -> Value {
    json!({"exchange": "paper", "symbol": "BTC/USDT", "side": "long", "leverage": 10,
        "take_profit": 10, "stop_loss": 20, "rounds": 3,
        "grids": [{"amount": 12, "gap": 0}, {"amount": 12, "gap": 1}, {"amount": 24, "gap": 2}],
        "repeat": true})
}

/// `base` with `extra`'s fields set.
fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// Waits for the whole first ladder of `ladder()`: both legs, take-profit and stop.
fn wait_ladder(sc: &Scenario) -> Vec<Value> {
    let mut orders = Vec::new();
    sc.wait(20, "both legs, the take-profit and the stop", |sc| {
        orders = sc.orders();
        one(&orders, "leg", Some(1)).is_some()
            && one(&orders, "leg", Some(2)).is_some()
            && one(&orders, "take_profit", None).is_some()
            && one(&orders, "stop_loss", None).is_some()
    });
    orders
}

/// Waits until leg 1 filled and the bot moved take-profit and stop to the new
/// average entry (59,700 for 0.004).
fn wait_leg1_followed(sc: &Scenario) -> Vec<Value> {
    let mut orders = Vec::new();
    sc.wait(
        LEAD + 20,
        "leg 1 filled, take-profit and stop moved",
        |sc| {
            orders = sc.orders();
            let moved = |kind: &str, field: &str, price: &str| {
                one(&orders, kind, None).is_some_and(|o| {
                    o[field].is_number()
                        && dec(&o[field]) == d(price)
                        && dec(&o["qty"]) == d("0.004")
                })
            };
            of_kind(&orders, "leg").iter().all(|o| o["leg"] != 1)
                && moved("take_profit", "price", "60297")
                && moved("stop_loss", "trigger_price", "58506")
        },
    );
    orders
}

/// Number of `entry` events (one per cycle entered).
fn entries(sc: &Scenario) -> usize {
    sc.kinds().iter().filter(|k| *k == "entry").count()
}

/// Asserts a closed cycle's numbers: reason, size, average entry, exit, fees, PnL.
fn assert_trade(t: &Value, reason: &str, size: &str, avg: &str, exit: &str, fee: &str, pnl: &str) {
    assert_eq!(t["close_reason"], reason, "{t}");
    assert_eq!(t["symbol"], "BTC/USDT", "{t}");
    assert_eq!(t["side"], "long", "{t}");
    assert_dec(&t["size"], size, "size");
    assert_dec(&t["avg_entry"], avg, "avg_entry");
    assert_dec(&t["exit_price"], exit, "exit_price");
    assert_dec(&t["fees"], fee, "fees");
    assert_dec(&t["funding"], "0", "funding (none at PAPER_FUNDING_RATE=0)");
    assert_dec(&t["pnl"], pnl, "pnl");
}

/// `v` is the number `want` exactly.
fn is(v: &Value, want: &str) -> bool {
    v.is_number() && dec(v) == d(want)
}

fn signal(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap();
}

#[test]
fn fee_burning_take_profits_and_early_stops_are_refused() {
    let sc = Scenario::start(&[(0, OPEN)]);
    let before = sc.get("/api/bot/config");
    // Round-trip fees at 10x: (0.055 % + 0.02 %) × 10 × 100 = 0.75 % of margin.
    for tp in [json!(0), json!(0.5), json!(0.75)] {
        let r = sc.put_config(&json!({"leverage": 10, "take_profit": tp}));
        assert_eq!(r.status, 400, "take_profit {tp}: {}", r.text());
        let msg = r.json()["fields"]["take_profit"]
            .as_str()
            .map(str::to_string);
        assert!(
            msg.as_deref().is_some_and(|m| m.contains("0.75")),
            "take_profit {tp}: the error names the minimum 0.75: {}",
            r.text()
        );
    }
    let r = sc.put_config(&json!({"leverage": 20, "take_profit": 1.5}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["fields"]["take_profit"]
            .as_str()
            .is_some_and(|m| m.contains("1.5")),
        "at 20x the minimum is 1.5: {}",
        r.text()
    );
    assert_eq!(
        sc.get("/api/bot/config"),
        before,
        "a refused update changes nothing"
    );

    // Legs at 1, 0.99 and 0.9702 of the entry with margins 12, 12, 24: with all of
    // them filled, a long's stop at 10x must be at least 12.46 % ROE to lie below
    // the deepest leg (12.45 puts it exactly on it); a short's 12.56.
    let grids =
        json!([{"amount": 12, "gap": 0}, {"amount": 12, "gap": 1}, {"amount": 24, "gap": 2}]);
    for (side, bad, good) in [("long", "12.45", "12.46"), ("short", "12.55", "12.56")] {
        for sl in ["10", bad] {
            let body = json!({"side": side, "leverage": 10, "take_profit": 5, "rounds": 3,
                "grids": grids, "stop_loss": sl.parse::<f64>().unwrap()});
            let r = sc.put_config(&body);
            assert_eq!(r.status, 400, "{side} stop_loss {sl}: {}", r.text());
            let fields = r.json()["fields"].clone();
            let named: Vec<&String> = fields.as_object().unwrap().keys().collect();
            assert_eq!(named, ["stop_loss"], "{side} stop_loss {sl}: {fields}");
        }
        let body = json!({"side": side, "leverage": 10, "take_profit": 5, "rounds": 3,
            "grids": grids, "stop_loss": good.parse::<f64>().unwrap()});
        let shown = sc.configure(&body);
        assert_dec(&shown["stop_loss"], good, "stop_loss accepted");
    }

    // The new fields and their ranges.
    for (field, value) in [
        ("after_stop_loss", json!("sometimes")),
        ("cooldown", json!(86401)),
        ("cooldown", json!(-1)),
        ("max_active_legs", json!(51)),
        ("trailing_take_profit", json!(0.04)),
        ("trailing_take_profit", json!(20.5)),
    ] {
        let r = sc.put_config(&json!({ field: value }));
        assert_eq!(r.status, 400, "{field} {value}: {}", r.text());
        assert!(
            r.json()["fields"][field].is_string(),
            "{field}: {}",
            r.text()
        );
    }
    let shown = sc.configure(&json!({"after_stop_loss": "continue", "cooldown": 60,
        "max_active_legs": 2, "trailing_take_profit": 0.5, "take_profit": 0.76}));
    let got = sc.get("/api/bot/config");
    for c in [&shown, &got] {
        assert_eq!(c["after_stop_loss"], "continue", "{c}");
        assert_dec(&c["cooldown"], "60", "cooldown");
        assert_dec(&c["max_active_legs"], "2", "max_active_legs");
        assert_dec(&c["trailing_take_profit"], "0.5", "trailing_take_profit");
        assert_dec(&c["take_profit"], "0.76", "take_profit just above the fees");
    }
    sc.finish();
}

#[test]
fn the_stop_loss_rests_on_the_exchange_and_follows_the_average() {
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "59350")]);
    sc.configure(&ladder());
    sc.start_bot();
    let orders = wait_ladder(&sc);
    let st = sc.status();
    sc.before(LEAD, "the ladder as entered");
    assert_eq!(orders.len(), 4, "{orders:?}");
    assert_eq!(st["stop_on_exchange"], true, "{st}");
    assert_dec(&st["stop_loss_price"], "58800", "status stop_loss_price");
    assert_dec(
        &st["take_profit_price"],
        "60600",
        "status take_profit_price",
    );
    assert_dec(&st["position"]["size"], "0.002", "position size");
    assert_dec(&st["position"]["avg_entry"], "60000", "avg entry");

    let sl = one(&orders, "stop_loss", None).unwrap();
    assert_eq!(
        (&sl["type"], &sl["side"], &sl["price"], &sl["leg"]),
        (&json!("stop"), &json!("sell"), &Value::Null, &Value::Null),
        "{sl}"
    );
    assert_eq!(sl["client_id"], sc.client_id(1, "sl1"), "{sl}");
    assert_eq!(
        dec(&sl["trigger_price"]),
        dec(&st["stop_loss_price"]),
        "{sl}"
    );
    assert_order(sl, "trigger_price", "58800", "0.002");
    let tp = one(&orders, "take_profit", None).unwrap();
    assert_eq!(
        (&tp["type"], &tp["side"]),
        (&json!("limit"), &json!("sell")),
        "{tp}"
    );
    assert_eq!(tp["client_id"], sc.client_id(1, "tp1"), "{tp}");
    assert_order(tp, "price", "60600", "0.002");
    for (leg, price, qty) in [(1, "59400", "0.002"), (2, "58212", "0.004")] {
        let o = one(&orders, "leg", Some(leg)).unwrap();
        assert_eq!(
            (&o["type"], &o["side"]),
            (&json!("limit"), &json!("buy")),
            "{o}"
        );
        assert_eq!(o["client_id"], sc.client_id(1, &format!("l{leg}")), "{o}");
        assert_order(o, "price", price, qty);
    }

    // Leg 1 fills at 59,400: the stop follows the new average, placed anew.
    let orders = wait_leg1_followed(&sc);
    let sl2 = one(&orders, "stop_loss", None).unwrap();
    assert_ne!(sl2["client_id"], sl["client_id"], "a new placement: {sl2}");
    assert!(
        sl2["client_id"]
            .as_str()
            .unwrap()
            .starts_with(&sc.client_id(1, "sl")),
        "{sl2}"
    );
    assert_eq!(orders.len(), 3, "leg 2, take-profit, one stop: {orders:?}");
    let st = sc.status();
    assert_dec(&st["stop_loss_price"], "58506", "stop after leg 1");
    assert_dec(&st["take_profit_price"], "60297", "take-profit after leg 1");
    assert_dec(&st["position"]["size"], "0.004", "position after leg 1");
    assert_dec(&st["position"]["avg_entry"], "59700", "average after leg 1");
    assert_eq!(st["stop_on_exchange"], true);
    assert!(sc.kinds().contains(&"leg_filled".to_string()));
    sc.finish();
}

#[test]
fn a_stop_fires_on_the_exchange_while_the_runner_is_down() {
    // The dip to 58,450 (below the stop at 58,506, above leg 2) and the recovery to
    // 60,100 (above the entry, below the take-profit at 60,297) both happen while
    // the runner is frozen and then killed.
    let mut sc = Scenario::start(&[
        (0, OPEN),
        (LEAD, "59350"),
        (LEAD + 10, "58450"),
        (LEAD + 14, "60100"),
    ]);
    sc.configure(&ladder());
    sc.start_bot();
    wait_ladder(&sc);
    wait_leg1_followed(&sc);
    let pid = sc.runner_pid();
    sc.before(LEAD + 8, "freezing the runner");
    signal(pid, Signal::SIGSTOP);
    wait_for(Duration::from_secs(5), "the runner frozen", || {
        is_stopped(pid)
    });
    sc.before(LEAD + 10, "the runner frozen before the dip");
    // The runner cannot be observed while frozen: wait out the dip and the recovery
    // on the clock, then kill it; the master starts a new one.
    sc.sleep_past(LEAD + 16);
    signal(pid, Signal::SIGKILL);
    wait_for(Duration::from_secs(30), "a new runner", || {
        let now = sc.server.runner_pids();
        now.len() == 1 && now[0] != pid
    });

    sc.wait(60, "the bot stopped by its stop-loss", |sc| {
        let st = sc.status();
        st["status"] == "stopped" && st["stop_reason"] == "stop_loss"
    });
    let trades = sc.trades();
    assert_eq!(trades.len(), 1, "{trades:?}");
    // Closed at the dip's price, not at the later 60,100: a market sell there,
    // 58,450 less the half-spread (58,444.155, down to the tick).
    let bought = [fill("0.002", "60000", TAKER), fill("0.002", "59400", MAKER)];
    let exits = [fill("0.004", "58444.1", TAKER)];
    let pnl = long_pnl(&bought, &exits, d("0"));
    assert_eq!(pnl, d("-5.24193702"));
    let fee = fees(&bought) + fees(&exits);
    assert_trade(
        &trades[0],
        "stop_loss",
        "0.004",
        "59700",
        "58444.1",
        &fee.to_string(),
        &pnl.to_string(),
    );
    sc.wait(10, "leg 2 and the take-profit cancelled", |sc| {
        sc.orders().is_empty()
    });
    sc.hold(3, "stopped, nothing re-entered", |sc| {
        sc.status()["status"] == "stopped" && sc.orders().is_empty() && entries(sc) == 1
    });
    sc.finish();
    // The new runner resumed the bot (docs/bots.md, Runner: a `resumed` event), which
    // then found its stop filled.
    let log: Vec<String> = sc
        .events()
        .iter()
        .map(|e| format!("{}: {}", e["kind"], e["message"]))
        .collect();
    for k in ["stop_loss", "cycle_closed", "resumed"] {
        let kind = format!("\"{k}\":");
        assert!(
            log.iter().any(|l| l.starts_with(&kind)),
            "no {k} event, newest first:\n{}",
            log.join("\n")
        );
    }
}

#[test]
fn a_stop_loss_with_continue_waits_the_cooldown_and_enters_again() {
    // The stop fills as a market sell at the mark 58,394.1 less the half-spread,
    // 58,388.26159 down to 58,388.2; cycle 2 enters at its ask, 58,399.93941
    // rounded up to 58,400.
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "59350"), (LEAD + 6, "58394.1")]);
    sc.configure(&with(
        ladder(),
        json!({"after_stop_loss": "continue", "cooldown": 8}),
    ));
    sc.start_bot();
    wait_ladder(&sc);
    wait_leg1_followed(&sc);
    sc.before(LEAD + 6, "the stop in place before the fall");

    let t = sc.wait_trade(1, 30);
    let bought = [fill("0.002", "60000", TAKER), fill("0.002", "59400", MAKER)];
    let exits = [fill("0.004", "58388.2", TAKER)];
    let pnl = long_pnl(&bought, &exits, d("0"));
    assert_eq!(pnl, d("-5.46541404"));
    let fee = (fees(&bought) + fees(&exits)).to_string();
    assert_trade(
        &t,
        "stop_loss",
        "0.004",
        "59700",
        "58388.2",
        &fee,
        &pnl.to_string(),
    );

    // The cooldown: still running, flat, nothing resting, the next entry announced.
    let mut st = Value::Null;
    sc.wait(5, "next_entry_at during the cooldown", |sc| {
        st = sc.status();
        st["next_entry_at"].is_string()
    });
    assert_eq!(st["running"], true, "{st}");
    assert_eq!(st["position"], Value::Null, "{st}");
    sc.wait(5, "leg 2, take-profit and stop cancelled", |sc| {
        sc.orders().is_empty()
    });
    let closed = unix(&t["closed_at"]);
    let next = unix(&st["next_entry_at"]);
    assert!((7..=9).contains(&(next - closed)), "cooldown 8 s: {st} {t}");
    assert!(sc.kinds().contains(&"stop_loss".to_string()));

    sc.wait(30, "cycle 2 entered after the cooldown", |sc| {
        let st = sc.status();
        st["cycle"] == 2 && st["position"].is_object()
    });
    let entered = sc
        .events()
        .iter()
        .filter(|e| e["kind"] == "entry")
        .map(|e| unix(&e["created_at"]))
        .max()
        .unwrap();
    assert!(
        entered >= closed + 8 - 1,
        "entry at {entered}, closed at {closed}"
    );
    let mut orders = Vec::new();
    sc.wait(10, "cycle 2's ladder", |sc| {
        orders = sc.orders();
        orders.len() == 4
    });
    let st = sc.status();
    assert_eq!(st["next_entry_at"], Value::Null, "{st}");
    assert_dec(&st["position"]["size"], "0.002", "cycle 2 size");
    assert_dec(&st["position"]["avg_entry"], "58400", "cycle 2 entry");
    for (kind, leg, field, price, qty) in [
        ("take_profit", None, "price", "58984", "0.002"),
        ("stop_loss", None, "trigger_price", "57232", "0.002"),
        ("leg", Some(1), "price", "57816", "0.002"),
        ("leg", Some(2), "price", "56659.7", "0.004"),
    ] {
        let o = one(&orders, kind, leg).unwrap_or_else(|| panic!("{kind}: {orders:?}"));
        assert_order(o, field, price, qty);
        assert!(
            o["client_id"]
                .as_str()
                .unwrap()
                .starts_with(&sc.client_id(2, "")),
            "{o}"
        );
    }
    sc.finish();
}

#[test]
fn a_position_closed_outside_stops_the_bot_for_good() {
    let mut sc = Scenario::start(&[(0, OPEN)]);
    sc.configure(&ladder());
    sc.start_bot();
    wait_ladder(&sc);
    let uid = sc.uid().to_string();
    sc.cli(&[
        "paper",
        "close-position",
        "--user",
        &uid,
        "--symbol",
        "BTC/USDT",
        "--side",
        "long",
    ]);
    sc.wait(40, "the bot stopped by the outside close", |sc| {
        let st = sc.status();
        st["status"] == "stopped" && st["stop_reason"] == "closed_outside"
    });
    let trades = sc.trades();
    assert_eq!(trades.len(), 1, "{trades:?}");
    // Both the entry (at the ask) and the outside close (a market sell at the bid,
    // 59,988.0006 rounded down) paid the taker fee.
    let entry = [fill("0.002", "60000", TAKER)];
    let close = [fill("0.002", "59988", TAKER)];
    let pnl = long_pnl(&entry, &close, d("0"));
    assert_eq!(pnl, d("-0.1559868"));
    assert_trade(
        &trades[0],
        "outside",
        "0.002",
        "60000",
        "59988",
        "0.1319868",
        "-0.1559868",
    );
    assert!(sc.kinds().contains(&"closed_outside".to_string()));
    sc.wait(10, "the bot's orders cancelled", |sc| {
        sc.orders().is_empty()
    });
    sc.hold(3, "no new entry after an outside close", |sc| {
        let st = sc.status();
        st["status"] == "stopped"
            && st["position"].is_null()
            && sc.orders().is_empty()
            && entries(sc) == 1
            && sc.trades().len() == 1
    });
    sc.finish();
}

#[test]
fn stop_then_start_replaces_the_unfilled_legs_only() {
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "59350")]);
    sc.configure(&ladder());
    sc.start_bot();
    let mut seen: HashSet<String> = HashSet::new();
    let mut remember = |orders: &[Value]| {
        for o in orders {
            seen.insert(o["client_id"].as_str().unwrap().to_string());
        }
    };
    remember(&wait_ladder(&sc));
    remember(&wait_leg1_followed(&sc));

    let (code, body) = sc.post("/api/bot/stop", &json!({"mode": "cancel_orders"}));
    assert_eq!(code, 200, "{body}");
    sc.wait(10, "every order cancelled", |sc| sc.orders().is_empty());
    let (code, body) = sc.post("/api/bot/start", &json!({}));
    assert_eq!(code, 200, "{body}");

    let mut orders = Vec::new();
    sc.wait(20, "leg 2, take-profit and stop placed again", |sc| {
        orders = sc.orders();
        orders.len() >= 3
    });
    assert_eq!(orders.len(), 3, "never leg 1 again: {orders:?}");
    let leg2 = one(&orders, "leg", Some(2)).expect("leg 2");
    assert_eq!(leg2["client_id"], sc.client_id(1, "l2r1"), "{leg2}");
    assert_order(leg2, "price", "58212", "0.004");
    let tp = one(&orders, "take_profit", None).expect("take-profit");
    assert_order(tp, "price", "60297", "0.004");
    let sl = one(&orders, "stop_loss", None).expect("stop");
    assert_order(sl, "trigger_price", "58506", "0.004");
    for (o, purpose) in [(tp, "tp"), (sl, "sl")] {
        let id = o["client_id"].as_str().unwrap();
        assert!(id.starts_with(&sc.client_id(1, purpose)), "{o}");
        assert!(
            !seen.contains(id),
            "a new placement number: {o}, seen {seen:?}"
        );
    }
    let st = sc.status();
    assert_eq!(st["cycle"], 1, "{st}");
    assert_dec(&st["position"]["size"], "0.004", "the position kept");
    sc.hold(2, "leg 1 stays filled", |sc| {
        let orders = sc.orders();
        orders.len() == 3 && one(&orders, "leg", Some(1)).is_none()
    });
    assert_eq!(entries(&sc), 1, "the same cycle");
    sc.finish();
}

#[test]
fn after_cycle_finishes_the_cycle_then_stops() {
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "60650")]);
    sc.configure(&ladder());
    sc.start_bot();
    wait_ladder(&sc);
    let (code, body) = sc.post("/api/bot/stop", &json!({"mode": "after_cycle"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (&body["success"], &body["status"]),
        (&json!(true), &json!("stopping_after_cycle")),
        "{body}"
    );
    let st = sc.status();
    assert_eq!(
        (&st["running"], &st["after_cycle"]),
        (&json!(true), &json!(true)),
        "{st}"
    );
    assert_eq!(sc.orders().len(), 4, "the cycle goes on");
    sc.before(LEAD, "after_cycle asked before the take-profit");

    let t = sc.wait_trade(1, LEAD + 20);
    let entry = [fill("0.002", "60000", TAKER)];
    let exit = [fill("0.002", "60600", MAKER)];
    let pnl = long_pnl(&entry, &exit, d("0"));
    assert_eq!(pnl, d("1.10976"));
    assert_trade(
        &t,
        "take_profit",
        "0.002",
        "60000",
        "60600",
        "0.09024",
        "1.10976",
    );
    sc.wait(10, "stopped after the cycle", |sc| {
        let st = sc.status();
        st["status"] == "stopped" && st["stop_reason"] == "after_cycle"
    });
    sc.wait(10, "legs and stop cancelled", |sc| sc.orders().is_empty());
    sc.hold(3, "no next cycle", |sc| {
        sc.status()["status"] == "stopped" && sc.orders().is_empty() && entries(sc) == 1
    });
    sc.finish();
}

#[test]
fn config_changed_while_running_applies_from_the_next_cycle() {
    // 60,643.9's ask is 60,649.96439, rounded up: cycle 2 enters at 60,650.
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "60643.9")]);
    sc.configure(&ladder());
    sc.start_bot();
    wait_ladder(&sc);
    let new_grids =
        json!([{"amount": 24, "gap": 0}, {"amount": 24, "gap": 1}, {"amount": 30, "gap": 2}]);
    let r = sc.put_config(&json!({"take_profit": 20, "grids": new_grids}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["pending"], true, "{}", r.text());
    assert_eq!(sc.status()["pending_config"], true);
    for locked in [json!({"symbol": "ETH/USDT"}), json!({"side": "short"})] {
        let r = sc.put_config(&locked);
        assert_eq!(r.status, 409, "{locked} while running: {}", r.text());
    }
    // The running cycle keeps its take-profit.
    let orders = sc.orders();
    assert_order(
        one(&orders, "take_profit", None).unwrap(),
        "price",
        "60600",
        "0.002",
    );
    sc.before(LEAD, "the pending change made during cycle 1");

    let t = sc.wait_trade(1, LEAD + 20);
    assert_trade(
        &t,
        "take_profit",
        "0.002",
        "60000",
        "60600",
        "0.09024",
        "1.10976",
    );
    // Cycle 2 enters at 60,650 with 24 USDT → 0.003; take-profit 20 % ROE → ×1.02;
    // legs at 1 % (60043.5, 24 USDT → 0.003) and 2 % more (58842.6, 30 → 0.005).
    let mut orders = Vec::new();
    sc.wait(20, "cycle 2's ladder", |sc| {
        orders = sc.orders();
        orders.len() == 4
            && orders.iter().all(|o| {
                o["client_id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&sc.client_id(2, ""))
            })
    });
    for (kind, leg, field, price, qty) in [
        ("take_profit", None, "price", "61863", "0.003"),
        ("stop_loss", None, "trigger_price", "59437", "0.003"),
        ("leg", Some(1), "price", "60043.5", "0.003"),
        ("leg", Some(2), "price", "58842.6", "0.005"),
    ] {
        let o = one(&orders, kind, leg).unwrap_or_else(|| panic!("{kind}: {orders:?}"));
        assert_order(o, field, price, qty);
    }
    let st = sc.status();
    assert_eq!(st["pending_config"], false, "{st}");
    assert_dec(&st["position"]["size"], "0.003", "cycle 2 size");
    assert_dec(&st["position"]["avg_entry"], "60650", "cycle 2 entry");
    let c = sc.get("/api/bot/config");
    assert_dec(&c["take_profit"], "20", "take_profit now");
    let grids: Vec<(Decimal, Decimal)> = c["grids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (dec(&g["amount"]), dec(&g["gap"])))
        .collect();
    let want = [(d("24"), d("0")), (d("24"), d("1")), (d("30"), d("2"))];
    assert_eq!(grids, want, "{c}");
    sc.finish();
}

#[test]
fn max_active_legs_rests_one_leg_at_a_time() {
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "59350")]);
    sc.configure(&with(
        ladder(),
        json!({"max_active_legs": 1, "stop_loss": 0}),
    ));
    sc.start_bot();
    let at_most_one_leg = |orders: &[Value]| {
        let legs = of_kind(orders, "leg").len();
        assert!(legs <= 1, "{legs} legs rest: {orders:?}");
    };
    let mut orders = Vec::new();
    sc.wait(20, "leg 1 and the take-profit", |sc| {
        orders = sc.orders();
        at_most_one_leg(&orders);
        one(&orders, "leg", Some(1)).is_some() && one(&orders, "take_profit", None).is_some()
    });
    sc.before(LEAD, "the first leg as placed");
    assert_eq!(orders.len(), 2, "no stop, one leg: {orders:?}");
    assert_order(
        one(&orders, "leg", Some(1)).unwrap(),
        "price",
        "59400",
        "0.002",
    );
    let st = sc.status();
    assert_eq!(st["stop_on_exchange"], false, "{st}");
    assert_eq!(st["stop_loss_price"], Value::Null, "{st}");

    sc.wait(LEAD + 20, "leg 2 after leg 1 filled", |sc| {
        orders = sc.orders();
        at_most_one_leg(&orders);
        one(&orders, "leg", Some(2)).is_some()
    });
    let leg2 = one(&orders, "leg", Some(2)).unwrap();
    assert_eq!(leg2["client_id"], sc.client_id(1, "l2"), "{leg2}");
    assert_order(leg2, "price", "58212", "0.004");
    sc.wait(10, "the take-profit at the new average", |sc| {
        orders = sc.orders();
        at_most_one_leg(&orders);
        one(&orders, "take_profit", None).is_some_and(|o| dec(&o["price"]) == d("60297"))
    });
    sc.hold(2, "one leg at a time", |sc| {
        let orders = sc.orders();
        at_most_one_leg(&orders);
        one(&orders, "leg", Some(2)).is_some()
    });
    sc.finish();
}

#[test]
fn a_trailing_take_profit_closes_on_the_retrace() {
    // 60,700 passes the take-profit price (60,600); the best is 61,000; 60,800 is
    // less than 0.5 % below it; 60,690 is more (61,000 × 0.995 = 60,695), and the
    // close is a market sell at its bid, 60,683.931 rounded down.
    let mut sc = Scenario::start(&[
        (0, OPEN),
        (LEAD, "60700"),
        (LEAD + 6, "61000"),
        (LEAD + 12, "60800"),
        (LEAD + 18, "60690"),
    ]);
    sc.configure(&with(
        ladder(),
        json!({"trailing_take_profit": 0.5, "repeat": false}),
    ));
    sc.start_bot();
    let mut orders = Vec::new();
    sc.wait(20, "legs and stop", |sc| {
        orders = sc.orders();
        one(&orders, "leg", Some(2)).is_some() && one(&orders, "stop_loss", None).is_some()
    });
    sc.before(LEAD, "the ladder before the rise");
    assert_dec(
        &sc.status()["take_profit_price"],
        "60600",
        "take-profit price",
    );

    let t = sc.wait_trade(1, LEAD + 40);
    let entry = [fill("0.002", "60000", TAKER)];
    let exit = [fill("0.002", "60683.9", TAKER)];
    let pnl = long_pnl(&entry, &exit, d("0"));
    assert_eq!(pnl, d("1.23504771"));
    assert_trade(
        &t,
        "trailing_take_profit",
        "0.002",
        "60000",
        "60683.9",
        "0.13275229",
        "1.23504771",
    );
    sc.wait(10, "legs and stop cancelled", |sc| sc.orders().is_empty());
    sc.finish();
}

#[test]
fn a_thirty_day_cycle_closes_with_the_ledger_pnl() {
    const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(FAKETIME).exists(),
        "{FAKETIME} is missing: install the faketime package (tests/run does); this \
         scenario cannot run without it"
    );
    let month = 30 * 86_400;
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "59350"), (month + 5, "60400")]);
    sc.configure(&ladder());
    sc.start_bot();
    let first = wait_ladder(&sc);
    let st = sc.status();
    sc.before(LEAD, "the entry seen");
    let (entry_qty, entry_price) = (
        st["position"]["size"].clone(),
        st["position"]["avg_entry"].clone(),
    );
    let leg1 = one(&first, "leg", Some(1)).unwrap().clone();
    let orders = wait_leg1_followed(&sc);
    let tp = one(&orders, "take_profit", None).unwrap().clone();

    let mut sc = sc.restart(&[
        ("LD_PRELOAD", FAKETIME),
        ("FAKETIME", "+30d"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]);
    let r = sc.call("GET", "/api/bot/status", "");
    assert_eq!(
        r.status,
        401,
        "the 24 h session ended 30 days ago: {}",
        r.text()
    );
    sc.login_again();

    let t = sc.wait_trade(1, 60);
    let text = |v: &Value| dec(v).to_string();
    let (eq, ep, lq, lp, tq, tpp) = (
        text(&entry_qty),
        text(&entry_price),
        text(&leg1["qty"]),
        text(&leg1["price"]),
        text(&tp["qty"]),
        text(&tp["price"]),
    );
    let bought = [fill(&eq, &ep, TAKER), fill(&lq, &lp, MAKER)];
    let exits = [fill(&tq, &tpp, MAKER)];
    let pnl = long_pnl(&bought, &exits, dec(&t["funding"]));
    assert_eq!(
        pnl,
        d("2.2500024"),
        "from the fills seen: entry {eq}@{ep}, leg {lq}@{lp}, take-profit {tq}@{tpp}"
    );
    let fee = (fees(&bought) + fees(&exits)).to_string();
    assert_trade(
        &t,
        "take_profit",
        "0.004",
        "59700",
        "60297",
        &fee,
        &pnl.to_string(),
    );
    let held = unix(&t["closed_at"]) - unix(&t["opened_at"]);
    assert!(held >= month as i64, "held {held} s: {t}");
    assert!(sc.kinds().contains(&"resumed".to_string()));
    let summary = sc.get("/api/pnl/summary?days=1");
    assert_dec(&summary["total_pnl"], "2.2500024", "today's PnL");
    sc.finish();
}

#[test]
fn exact_thirds_leave_no_float_artefacts() {
    // Three fills of 0.003 BTC (18 USDT each at 10x): a position of 0.009, which
    // binary floats print as 0.009000000000000001. Average 532.836 / 0.009 = 59204;
    // take-profit 59204 × 1.01 = 59796.04, rounded up to 59796.1.
    let mut sc = Scenario::start(&[
        (0, OPEN),
        (LEAD, "59350"),
        (LEAD + 6, "58150"),
        (LEAD + 12, "59900"),
    ]);
    let thirds =
        json!([{"amount": 18, "gap": 0}, {"amount": 18, "gap": 1}, {"amount": 18, "gap": 2}]);
    sc.configure(&with(
        ladder(),
        json!({"grids": thirds, "stop_loss": 30, "repeat": false}),
    ));
    sc.start_bot();
    wait_ladder(&sc);
    // 0.006 at 59,700: the stop moves from 58,200 (60,000 × 0.97) to 57,909, below
    // the next move's 58,150.
    sc.wait(LEAD + 20, "leg 1 filled and the stop moved", |sc| {
        let st = sc.status();
        is(&st["position"]["size"], "0.006")
            && is(&st["stop_loss_price"], "57909")
            && one(&sc.orders(), "stop_loss", None)
                .is_some_and(|o| is(&o["trigger_price"], "57909"))
    });
    sc.before(LEAD + 5, "leg 1 seen before leg 2's move");
    let mut st = Value::Null;
    let mut orders = Vec::new();
    sc.wait(LEAD + 20, "leg 2 filled and the take-profit moved", |sc| {
        st = sc.status();
        orders = sc.orders();
        is(&st["take_profit_price"], "59796.1")
            && one(&orders, "take_profit", None).is_some_and(|o| is(&o["price"], "59796.1"))
            && one(&orders, "stop_loss", None).is_some_and(|o| is(&o["trigger_price"], "57427.9"))
    });
    sc.before(LEAD + 12, "the take-profit moved before the rise");
    assert_dec(&st["position"]["size"], "0.009", "three thirds");
    assert_dec(&st["position"]["avg_entry"], "59204", "average entry");
    assert_dec(&st["stop_loss_price"], "57427.9", "stop at 30 % ROE");
    let tp = one(&orders, "take_profit", None).unwrap();
    assert_order(tp, "price", "59796.1", "0.009");
    let sl = one(&orders, "stop_loss", None).unwrap();
    assert_order(sl, "trigger_price", "57427.9", "0.009");

    let t = sc.wait_trade(1, LEAD + 30);
    let bought = [
        fill("0.003", "60000", TAKER),
        fill("0.003", "59400", MAKER),
        fill("0.003", "58212", MAKER),
    ];
    let exits = [fill("0.009", "59796.1", MAKER)];
    let pnl = long_pnl(&bought, &exits, d("0"));
    assert_eq!(pnl, d("5.05169982"));
    assert_trade(
        &t,
        "take_profit",
        "0.009",
        "59204",
        "59796.1",
        "0.27720018",
        "5.05169982",
    );
    let summary = sc.get("/api/pnl/summary?days=1");
    assert_dec(&summary["total_pnl"], "5.05169982", "summary");
    sc.finish();
}
