//! The trading core's API against the real binary on the paper exchange: the
//! configuration rules, changes pending while the bot runs, the `after_cycle`
//! stop, the bot's open orders, and the status fields (docs/http-api.md).

mod common;

use std::time::Duration;

use common::bots::{user, wait_status, User, CALM};
use common::{wait_for, Options, Server};
use serde_json::{json, Value};

fn server() -> Server {
    Server::with(Options {
        workers: 2,
        env: CALM.to_vec(),
        ..Options::default()
    })
}

fn put(s: &Server, u: &User, body: Value) -> (u16, Value) {
    let r = u.call(s, "PUT", "/api/bot/config", &body.to_string());
    (r.status, r.json())
}

fn post(s: &Server, u: &User, path: &str, body: Value) -> (u16, Value) {
    let r = u.call(s, "POST", path, &body.to_string());
    (r.status, r.json())
}

#[test]
fn the_trading_rules_answer_400_per_field() {
    let s = server();
    let u = user(&s, "rules@example.com", false);
    // Paper fees at 10x: 0.75 % of margin for the round trip.
    let (code, body) = put(&s, &u, json!({"take_profit": 0.5}));
    assert_eq!(code, 400, "{body}");
    let msg = body["fields"]["take_profit"].as_str().unwrap();
    assert!(msg.contains("0.75"), "names the minimum: {msg}");
    // Legs 1 % and 2 % below the entry: a stop 0.5 % (ROE 5 at 10x) away fires first.
    let (code, body) = put(&s, &u, json!({"stop_loss": 5}));
    assert_eq!(code, 400, "{body}");
    assert!(body["fields"]["stop_loss"]
        .as_str()
        .unwrap()
        .contains("deepest leg"));
    let (code, body) = put(
        &s,
        &u,
        json!({"cooldown": 90000, "max_active_legs": 60, "trailing_take_profit": 30,
               "after_stop_loss": "maybe"}),
    );
    assert_eq!(code, 400, "{body}");
    for f in [
        "cooldown",
        "max_active_legs",
        "trailing_take_profit",
        "after_stop_loss",
    ] {
        assert!(body["fields"][f].is_string(), "{f}: {body}");
    }
    let (code, body) = put(
        &s,
        &u,
        json!({"stop_loss": 50, "cooldown": 30, "max_active_legs": 1,
               "trailing_take_profit": 0.5, "after_stop_loss": "continue"}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (
            body["cooldown"].clone(),
            body["max_active_legs"].clone(),
            body["trailing_take_profit"].clone(),
            body["after_stop_loss"].clone(),
            body["pending"].clone()
        ),
        (
            json!(30),
            json!(1),
            json!(0.5),
            json!("continue"),
            Value::Null
        )
    );
}

#[test]
fn a_running_bot_takes_changes_for_its_next_cycle_and_stops_after_it() {
    let s = server();
    let u = user(&s, "pending@example.com", false);
    let st = u.status(&s);
    for f in [
        "take_profit_price",
        "stop_loss_price",
        "stop_on_exchange",
        "after_cycle",
        "pending_config",
        "stop_reason",
        "next_entry_at",
    ] {
        assert!(st.get(f).is_some(), "status lacks {f}: {st}");
    }
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    wait_for(Duration::from_secs(20), "a take-profit price", || {
        u.status(&s)["take_profit_price"].is_number()
    });

    let (code, body) = put(&s, &u, json!({"take_profit": 6, "cooldown": 5}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (body["pending"].clone(), body["take_profit"].clone()),
        (json!(true), json!(6.0))
    );
    for field in [
        json!({"symbol": "ETH/USDT"}),
        json!({"side": "short"}),
        json!({"api_key": "k-123456"}),
    ] {
        let (code, body) = put(&s, &u, field.clone());
        assert_eq!(code, 409, "{field}: {body}");
    }
    let c = u.get(&s, "/api/bot/config");
    assert_eq!(
        c["take_profit"],
        json!(5.0),
        "the active configuration is unchanged"
    );
    assert_eq!(
        (
            c["pending"]["take_profit"].clone(),
            c["pending"]["cooldown"].clone()
        ),
        (json!(6.0), json!(5))
    );
    let st = u.status(&s);
    assert_eq!(
        (
            st["pending_config"].clone(),
            st["after_cycle"].clone(),
            st["stop_reason"].clone()
        ),
        (json!(true), json!(false), Value::Null)
    );
    assert_eq!(st["stop_on_exchange"], false, "stop_loss is 0: no stop");

    // The bot's open orders, as the exchange lists them.
    let orders = u.get(&s, "/api/bot/orders")["orders"]
        .as_array()
        .unwrap()
        .clone();
    let kinds: Vec<&str> = orders.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"take_profit") && kinds.contains(&"leg"),
        "{orders:?}"
    );
    for o in &orders {
        for f in [
            "client_id",
            "kind",
            "leg",
            "side",
            "type",
            "price",
            "trigger_price",
            "qty",
            "status",
        ] {
            assert!(o.get(f).is_some(), "{f} missing: {o}");
        }
        let leg = o["kind"] == "leg";
        assert_eq!(o["leg"].is_u64(), leg, "{o}");
        assert_eq!(o["type"], "limit", "{o}");
    }
    let tp = orders.iter().find(|o| o["kind"] == "take_profit").unwrap();
    assert_eq!(
        (tp["side"].as_str(), tp["trigger_price"].clone()),
        (Some("sell"), Value::Null)
    );

    let (code, body) = post(&s, &u, "/api/bot/stop", json!({"mode": "after_cycle"}));
    assert_eq!(
        (code, body["success"].clone(), body["status"].as_str()),
        (200, json!(true), Some("stopping_after_cycle")),
        "{body}"
    );
    let st = u.status(&s);
    assert_eq!(
        (st["running"].clone(), st["after_cycle"].clone()),
        (json!(true), json!(true))
    );
    // A later stop with another mode overrides it.
    let (code, body) = post(&s, &u, "/api/bot/stop", json!({"mode": "cancel_orders"}));
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("stopped")),
        "{body}"
    );
    let st = wait_status(&s, &u, "stopped");
    assert_eq!(
        (st["stop_reason"].clone(), st["after_cycle"].clone()),
        (json!("user"), json!(false))
    );
    // Stopped: the pending change is the configuration now.
    let c = u.get(&s, "/api/bot/config");
    assert_eq!(
        (c["take_profit"].clone(), c["pending"].clone()),
        (json!(6.0), Value::Null)
    );
    assert_eq!(
        u.get(&s, "/api/bot/orders")["orders"],
        json!([]),
        "cancel_orders"
    );
    let trades = u.get(&s, "/api/trades");
    for t in trades["trades"].as_array().unwrap() {
        assert!(
            t.get("close_reason").is_some() && t["funding"].is_number(),
            "{t}"
        );
    }
}
