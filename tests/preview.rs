//! `POST /api/bots/<id>/preview` against the real binary: it refuses what a save
//! refuses, with the same field errors, and the ladder it shows at the entry's
//! fill price is the ladder the running bot puts on the paper exchange.

mod common;

use std::time::Duration;

use common::bots::{db, user, wait_status, User, CALM};
use common::{wait_for, Options, Server};
use serde_json::{json, Value};

fn post(s: &Server, u: &User, path: &str, body: &Value) -> (u16, Value) {
    let r = u.call(s, "POST", path, &body.to_string());
    (r.status, r.json())
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_preview_validates_like_a_save_and_shows_the_ladder_the_bot_places() {
    let s = Server::with(Options {
        env: CALM.to_vec(),
        ..Options::default()
    });
    let u = user(&s, "preview@example.com", false);
    let other = user(&s, "other@example.com", false);
    let bot = u.get(&s, "/api/bots")["bots"][0]["id"].as_i64().unwrap();
    let preview = format!("/api/bots/{bot}/preview");

    // Refusals are the save's, field for field, and save nothing.
    for bad in [
        json!({"take_profit": 0.1}),
        json!({"leverage": 0}),
        json!({"stop_loss": 600, "leverage": 5}),
        json!({"symbol": "NOPE"}),
        json!({"grids": [{"amount": 10, "gap": 0}], "rounds": 3}),
    ] {
        let (code, refused) = post(&s, &u, &preview, &bad);
        let saved = u.call(
            &s,
            "PUT",
            &format!("/api/bots/{bot}/config"),
            &bad.to_string(),
        );
        assert_eq!(
            (code, saved.status),
            (400, 400),
            "{bad}: {refused} / {}",
            saved.text()
        );
        assert_eq!(refused["fields"], saved.json()["fields"], "{bad}");
    }
    let (code, _) = post(&s, &other, &preview, &json!({}));
    assert_eq!(code, 404, "another user's bot");

    // A stopped bot's save applies to its saved configuration, not to a change
    // left pending from when it ran; so does the preview.
    let saved = u.get(&s, &format!("/api/bots/{bot}/config"))["leverage"].clone();
    assert_ne!(saved, json!(3));
    let pending = "UPDATE user_bots SET pending_config = ?2 WHERE id = ?1";
    db(&s)
        .execute(pending, rusqlite::params![bot, r#"{"leverage": 3}"#])
        .unwrap();
    let (code, shown) = post(&s, &u, &preview, &json!({}));
    assert_eq!((code, &shown["leverage"]), (200, &saved), "{shown}");
    db(&s)
        .execute(pending, rusqlite::params![bot, None::<String>])
        .unwrap();

    // A ladder with a stop: the preview at the entry's fill price is what the
    // engine places.
    let ladder = json!({"leverage": 10, "take_profit": 5, "stop_loss": 40, "rounds": 3,
        "grids": [{"amount": 10, "gap": 0}, {"amount": 20, "gap": 1}, {"amount": 40, "gap": 2}]});
    let saved = u.call(
        &s,
        "PUT",
        &format!("/api/bots/{bot}/config"),
        &ladder.to_string(),
    );
    assert_eq!(saved.status, 200, "{}", saved.text());
    let (code, _) = post(&s, &u, &format!("/api/bots/{bot}/start"), &json!({}));
    assert_eq!(code, 200);
    wait_status(&s, &u, "running");
    let mut status = Value::Null;
    let mut legs: Vec<Value> = Vec::new();
    wait_for(Duration::from_secs(20), "the ladder resting", || {
        status = u.status(&s);
        legs = u.get(&s, "/api/bot/orders")["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "leg")
            .cloned()
            .collect();
        status["position"].is_object() && legs.len() == 2 && status["stop_loss_price"].is_number()
    });
    legs.sort_by_key(|o| o["leg"].as_i64());
    let entry = &status["position"]["avg_entry"];
    let (code, p) = post(&s, &u, &preview, &json!({"price": entry}));
    assert_eq!(code, 200, "{p}");
    assert_eq!(num(&p["legs"][0]["price"]), num(entry));
    assert_eq!(num(&p["legs"][0]["qty"]), num(&status["position"]["size"]));
    for (shown, placed) in p["legs"].as_array().unwrap()[1..].iter().zip(&legs) {
        assert_eq!(shown["leg"], placed["leg"], "{p}");
        assert_eq!(
            num(&shown["price"]),
            num(&placed["price"]),
            "{p} / {placed}"
        );
        assert_eq!(num(&shown["qty"]), num(&placed["qty"]), "{p} / {placed}");
    }
    assert_eq!(
        num(&p["take_profit_price"]),
        num(&status["take_profit_price"])
    );
    assert_eq!(num(&p["total_margin"]), 70.0);
    let liq = num(&status["position"]["liquidation_price"]);
    let shown = num(&p["liquidation_price"]);
    assert!(
        (shown - liq).abs() <= 0.1 + 1e-9,
        "liquidation {shown} vs the paper exchange's {liq}"
    );
    let stopped = u.call(&s, "POST", "/api/bot/stop", r#"{"mode":"close_position"}"#);
    assert_eq!(stopped.status, 200, "{}", stopped.text());
}
