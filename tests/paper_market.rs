//! The paper exchange as a market, end to end through the real binary (docs/bots.md,
//! Paper exchange): a replayed crash liquidating a 50x long, funding settled at an
//! 8-hour boundary of a clock moved there with libfaketime, and the user's paper
//! account (`GET /api/paper/account`, `POST /api/paper/account/reset`).
//!
//! Every path opens at 59,994, whose ask (59,994 + 0.01 %, rounded up to the tick)
//! is exactly 60,000: the bots enter there.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::api::call;
use common::bots::user;
use common::replay::{assert_dec, d, dec, Scenario, LEAD};
use serde_json::{json, Value};

const OPEN: &str = "59994";
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// One entry of 12 USDT margin, a 10 % ROE take-profit, no stop-loss and no legs.
fn single_entry(leverage: u32) -> Value {
    json!({"exchange": "paper", "symbol": "BTC/USDT", "side": "long",
        "leverage": leverage, "take_profit": 10, "stop_loss": 0, "rounds": 1,
        "grids": [{"amount": 12, "gap": 0}], "repeat": false})
}

fn account(sc: &Scenario) -> Value {
    sc.get("/api/paper/account")
}

/// Asserts the account's totals.
fn assert_totals(a: &Value, balance: &str, equity: &str, available: &str, upnl: &str) {
    assert_dec(&a["balance"], balance, "balance");
    assert_dec(&a["equity"], equity, "equity");
    assert_dec(&a["available"], available, "available");
    assert_dec(&a["unrealized_pnl"], upnl, "unrealized_pnl");
}

#[test]
fn a_fifty_x_long_falling_three_percent_is_liquidated_at_its_bankruptcy_price() {
    // 50x, maintenance margin 0.5 %: liquidation at 60,000 × (1 − 0.02 + 0.005) =
    // 59,100, bankruptcy at 60,000 × 0.98 = 58,800. The fall to 58,200 (−3 %)
    // passes both; the position closes at 58,800 and its 12 USDT margin is gone.
    let mut sc = Scenario::start(&[(0, OPEN), (LEAD, "58200")]);
    sc.configure(&single_entry(50));
    sc.start_bot();
    let mut st = Value::Null;
    // The runner publishes the marks of running bots' markets every few ticks.
    sc.wait(LEAD, "the position, its mark and its take-profit", |sc| {
        st = sc.status();
        st["position"]["mark_price"].is_number() && sc.orders().len() == 1
    });
    let p = &st["position"];
    assert_dec(&p["size"], "0.01", "600 USDT at 60,000");
    assert_dec(&p["avg_entry"], "60000", "entered at the ask");
    assert_dec(&p["mark_price"], OPEN, "status mark");
    assert_dec(&p["liquidation_price"], "59100", "status liquidation price");
    assert_eq!(st["price_stale"], false, "{st}");

    // The account, marked at 59,994: entry fee 600 × 0.055 % = 0.33; unrealised
    // 0.01 × −6 = −0.06; available = balance − 12 margin − the loss.
    let a = account(&sc);
    assert_totals(&a, "9999.67", "9999.61", "9987.61", "-0.06");
    let positions = a["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 1, "{a}");
    let pos = &positions[0];
    assert_eq!(
        (&pos["symbol"], &pos["side"]),
        (&json!("BTC/USDT"), &json!("long"))
    );
    for (field, want) in [
        ("size", "0.01"),
        ("avg_entry", "60000"),
        ("mark_price", OPEN),
        ("liquidation_price", "59100"),
        ("unrealized_pnl", "-0.06"),
    ] {
        assert_dec(&pos[field], want, field);
    }
    // No reset under a running bot.
    let (code, body) = sc.post("/api/paper/account/reset", &json!({}));
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        (&body["success"], &body["status"]),
        (&json!(false), &json!("bot_running")),
        "{body}"
    );
    sc.before(LEAD, "the position seen before the crash");

    sc.wait(LEAD + 20, "the bot stopped by the liquidation", |sc| {
        let st = sc.status();
        st["status"] == "stopped" && st["stop_reason"] == "liquidated"
    });
    let trades = sc.trades();
    assert_eq!(trades.len(), 1, "{trades:?}");
    let t = &trades[0];
    assert_eq!(t["close_reason"], "liquidated", "{t}");
    assert_dec(&t["size"], "0.01", "size");
    assert_dec(&t["avg_entry"], "60000", "avg_entry");
    assert_dec(&t["exit_price"], "58800", "closed at the bankruptcy price");
    assert_dec(&t["fees"], "0.33", "the entry's fee only");
    assert_dec(&t["pnl"], "-12.33", "the margin and the fee lost");
    let kinds = sc.kinds();
    assert!(kinds.contains(&"liquidated".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"closed_outside".to_string()), "{kinds:?}");
    sc.wait(10, "the take-profit cancelled", |sc| sc.orders().is_empty());

    let a = account(&sc);
    assert_totals(&a, "9987.67", "9987.67", "9987.67", "0");
    assert_eq!(a["positions"], json!([]), "{a}");

    // Stopped: the reset gives the starting balance back.
    let (code, body) = sc.post("/api/paper/account/reset", &json!({}));
    assert_eq!((code, &body["success"]), (200, &json!(true)), "{body}");
    assert_totals(&account(&sc), "10000", "10000", "10000", "0");
    sc.finish();
}

#[test]
fn the_paper_account_is_the_users_own_and_its_reset_is_guarded_like_other_posts() {
    let mut sc = Scenario::start(&[(0, OPEN)]);
    sc.configure(&single_entry(10));
    sc.start_bot();
    sc.wait(LEAD, "the position", |sc| {
        sc.status()["position"].is_object()
    });
    let port = sc.server.port;

    // Without a session, or without the CSRF token of a cookie session: refused,
    // and nothing is reset.
    let r = call(port, "GET", "/api/paper/account", &[], "");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = call(port, "POST", "/api/paper/account/reset", &[], "{}");
    assert_eq!(r.status, 401, "{}", r.text());
    let cookie = [("Cookie", sc.browser.cookie.as_str())];
    let r = call(port, "POST", "/api/paper/account/reset", &cookie, "{}");
    assert_eq!(r.status, 403, "{}", r.text());

    // Another user sees an untouched account and resets only theirs.
    let other = user(&sc.server, "other@example.com", false);
    let theirs = other.get(&sc.server, "/api/paper/account");
    assert_totals(&theirs, "10000", "10000", "10000", "0");
    assert_eq!(theirs["positions"], json!([]), "{theirs}");
    let r = other.call(&sc.server, "POST", "/api/paper/account/reset", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let mine = account(&sc);
    assert_eq!(
        mine["positions"].as_array().map(Vec::len),
        Some(1),
        "{mine}"
    );
    assert_dec(&mine["balance"], "9999.934", "entry fee 120 × 0.055 %");

    // Stopped with its orders cancelled and the position kept: the cycle is still
    // open, so the reset is refused and nothing changes.
    let (code, body) = sc.post("/api/bot/stop", &json!({"mode": "cancel_orders"}));
    assert_eq!(code, 200, "{body}");
    sc.wait(10, "the bot stopped", |sc| {
        sc.status()["status"] == "stopped"
    });
    let (code, body) = sc.post("/api/paper/account/reset", &json!({}));
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        (&body["success"], &body["status"]),
        (&json!(false), &json!("position_open")),
        "{body}"
    );
    let mine = account(&sc);
    assert_eq!(
        mine["positions"].as_array().map(Vec::len),
        Some(1),
        "{mine}"
    );
    assert_dec(&mine["balance"], "9999.934", "untouched");
    sc.finish();
}

#[test]
fn a_bot_stopped_with_its_position_closed_lets_the_account_be_reset() {
    let mut sc = Scenario::start(&[(0, OPEN)]);
    sc.configure(&single_entry(10));
    sc.start_bot();
    sc.wait(LEAD, "the position", |sc| {
        sc.status()["position"].is_object()
    });
    let (code, body) = sc.post("/api/bot/stop", &json!({"mode": "close_position"}));
    assert_eq!(code, 200, "{body}");
    sc.wait(10, "the bot stopped", |sc| {
        sc.status()["status"] == "stopped"
    });
    // 0.002 entered at 60,000 (fee 0.066) and sold at the bid, 59,994 − 0.01 %
    // rounded down to the tick: 59,988; loss 0.024, fee 0.002 × 59,988 × 0.055 %
    // = 0.0659868.
    let before = account(&sc);
    assert_eq!(before["positions"], json!([]), "{before}");
    assert_dec(&before["balance"], "9999.8440132", "before the reset");
    let (code, body) = sc.post("/api/paper/account/reset", &json!({}));
    assert_eq!((code, &body["success"]), (200, &json!(true)), "{body}");
    let mine = account(&sc);
    assert_totals(&mine, "10000", "10000", "10000", "0");
    assert_eq!(mine["positions"], json!([]), "{mine}");
    assert!(sc.orders().is_empty());
    sc.finish();
}

#[test]
fn funding_is_settled_at_the_eight_hour_boundary_and_lands_in_the_cycle() {
    assert!(
        std::path::Path::new(FAKETIME).exists(),
        "{FAKETIME} is missing: install the faketime package (tests/run does)"
    );
    // Move the server's clock so that an 8-hour boundary (00:00, 08:00 or 16:00
    // UTC) falls 30 s after its start: after the entry (before LEAD), before the
    // rise that takes the profit.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let target = now + 30;
    let offset = target.div_ceil(8 * 3600) * 8 * 3600 - target;
    let faked = format!("+{offset}s");
    let mut sc = Scenario::start_with(
        &[(0, OPEN), (LEAD + 20, "60650")],
        &[
            ("LD_PRELOAD", FAKETIME),
            ("FAKETIME", &faked),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("PAPER_FUNDING_RATE", "0.0005"),
        ],
    );
    sc.configure(&single_entry(10));
    sc.start_bot();
    sc.before(28, "the entry before the funding boundary");

    // The long pays 0.002 × 59,994 (the mark at the boundary) × 0.05 %.
    let t = sc.wait_trade(1, LEAD + 40);
    assert_eq!(t["close_reason"], "take_profit", "{t}");
    assert_dec(&t["funding"], "-0.059994", "funding paid");
    // 0.002 × 600 − fees (0.066 taker + 0.02424 maker) − 0.059994.
    assert_dec(&t["pnl"], "1.049766", "pnl with funding");
    let funding: Vec<Value> = sc
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "funding")
        .collect();
    assert_eq!(funding.len(), 1, "one boundary crossed: {funding:?}");
    let a = account(&sc);
    assert_totals(&a, "10001.049766", "10001.049766", "10001.049766", "0");
    let settled = dec(&a["balance"]) - d("10000");
    assert_eq!(
        settled,
        dec(&t["pnl"]),
        "the account moved by the cycle's PnL"
    );
    sc.finish();
}
