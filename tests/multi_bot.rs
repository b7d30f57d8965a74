//! Several bots per user (CONTRACT C14) against the real binary: bots and exchange
//! accounts through `/api/bots` and `/api/exchange-accounts`, a second bot that
//! trades beside the default one, the conflict rule, the limit, admin force
//! operations, and isolation between users for every route and method. The
//! `/api/bot/*` endpoints keep their shapes and act on the default bot.

mod common;

use std::time::Duration;

use common::bots::{count, user, CALM};
use common::fake_bybit::FakeBybit;
use common::multi::{
    account_routes, bot_path, bot_routes, bot_status, bots, call_within, create_account,
    create_bot, default_bot, event_kinds, open_orders_of_bot, send, wait_bot_status,
};
use common::{wait_for, Options, Server};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

fn server(env: &[(&str, &str)]) -> Server {
    let mut all = CALM.to_vec();
    all.extend_from_slice(env);
    Server::with(Options {
        workers: 2,
        env: all,
        ..Options::default()
    })
}

const GUARD_BODY: &str = r#"{"message":"Bot operation already in progress for this user. Please wait.","retry_after":30,"success":false}"#;

fn not_found() -> Value {
    json!({"error": "Not found"})
}

/// The fields of the bot object that are not its configuration.
const BOT_FIELDS: [&str; 10] = [
    "id",
    "name",
    "default",
    "exchange_account_id",
    "symbol",
    "side",
    "status",
    "running",
    "cycle",
    "last_error",
];

/// The bot object is the configuration of `GET /api/bots/<id>/config` plus the
/// bot's own fields.
fn assert_bot_shape(bot: &Value, config: &Value) {
    for f in BOT_FIELDS {
        assert!(bot.get(f).is_some(), "{f} missing from {bot}");
    }
    for (k, v) in config.as_object().expect("config object") {
        assert_eq!(&bot[k], v, "{k} of {bot} differs from the config {config}");
    }
}

#[test]
fn bots_are_created_read_updated_and_deleted_within_the_limit() {
    let s = server(&[("BOTS_PER_USER", "3")]);
    let u = user(&s, "crud@example.com", false);

    // A new user has exactly one bot, the default, with today's configuration.
    let listed = bots(&s, &u);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let d = &listed[0];
    let legacy_config = u.get(&s, "/api/bot/config");
    let did = d["id"].as_i64().unwrap();
    assert_eq!(u.get(&s, &bot_path(did, "/config")), legacy_config);
    assert_bot_shape(d, &legacy_config);
    assert_eq!(
        (
            d["default"].as_bool(),
            d["exchange"].as_str(),
            d["symbol"].as_str(),
            d["status"].as_str(),
            d["running"].as_bool(),
            d["exchange_account_id"].clone()
        ),
        (
            Some(true),
            Some("paper"),
            Some("BTC/USDT"),
            Some("stopped"),
            Some(false),
            Value::Null
        )
    );

    // Create: the same validation as PUT /api/bot/config, each field named.
    let (code, body) = send(
        &s,
        &u,
        "POST",
        "/api/bots",
        json!({"name": "", "leverage": 500, "symbol": "eth", "colour": 1}),
    );
    assert_eq!(code, 400, "{body}");
    let named: Vec<&str> = body["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(named, ["colour", "leverage", "name", "symbol"], "{body}");
    let (code, body) = send(
        &s,
        &u,
        "POST",
        "/api/bots",
        json!({"name": "keys", "api_key": "KEY-1234", "telegram_chat_id": "999"}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["fields"]["api_key"].is_string() && body["fields"]["telegram_chat_id"].is_string(),
        "keys live on exchange accounts, the chat is the user's: {body}"
    );
    let (code, body) = send(
        &s,
        &u,
        "POST",
        "/api/bots",
        json!({"name": "real", "exchange": "bybit"}),
    );
    assert_eq!(
        (code, body["fields"]["exchange_account_id"].is_string()),
        (400, true),
        "{body}"
    );
    let (code, body) = send(
        &s,
        &u,
        "POST",
        "/api/bots",
        json!({"name": "paper", "exchange_account_id": 1}),
    );
    assert_eq!(
        (code, body["fields"]["exchange_account_id"].is_string()),
        (400, true),
        "a paper bot trades on the user's paper account: {body}"
    );
    assert_eq!(bots(&s, &u).len(), 1, "refused creations made nothing");

    let eth = create_bot(
        &s,
        &u,
        json!({"name": "ETH short", "symbol": "ETH/USDT", "side": "short", "leverage": 5,
               "take_profit": 10}),
    );
    let eid = eth["id"].as_i64().unwrap();
    assert_ne!(eid, did);
    assert_eq!(
        (
            eth["name"].as_str(),
            eth["default"].as_bool(),
            eth["exchange"].as_str(),
            eth["symbol"].as_str(),
            eth["side"].as_str(),
            eth["leverage"].as_i64(),
            eth["take_profit"].as_f64(),
            eth["status"].as_str(),
            eth["running"].as_bool(),
            eth["pending"].clone()
        ),
        (
            Some("ETH short"),
            Some(false),
            Some("paper"),
            Some("ETH/USDT"),
            Some("short"),
            Some(5),
            Some(10.0),
            Some("stopped"),
            Some(false),
            Value::Null
        ),
        "{eth}"
    );
    // Fields not sent come from a new user's working configuration.
    assert_eq!(
        (eth["rounds"].clone(), eth["grids"].clone()),
        (
            legacy_config["rounds"].clone(),
            legacy_config["grids"].clone()
        )
    );
    assert_eq!(u.get(&s, &bot_path(eid, "")), eth);
    assert_bot_shape(&eth, &u.get(&s, &bot_path(eid, "/config")));

    // A bot object sent back changes nothing; posted under another name, it is a
    // copy.
    let (code, body) = send(&s, &u, "PUT", &bot_path(eid, ""), eth.clone());
    assert_eq!((code, &body), (200, &eth));
    let mut copy = eth.clone();
    copy["name"] = json!("ETH copy");
    let third = create_bot(&s, &u, copy);
    assert_eq!(
        (
            third["symbol"].as_str(),
            third["side"].as_str(),
            third["leverage"].as_i64()
        ),
        (Some("ETH/USDT"), Some("short"), Some(5))
    );
    assert_ne!(third["id"], eth["id"]);

    // The limit: three bots in all.
    let (code, body) = send(&s, &u, "POST", "/api/bots", json!({"name": "one too many"}));
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("limit_reached")),
        "{body}"
    );
    assert_eq!(bots(&s, &u).len(), 3);

    // Partial update of the bot (name and configuration) and of its configuration.
    let (code, body) = send(
        &s,
        &u,
        "PUT",
        &bot_path(eid, ""),
        json!({"name": "ETH short x7", "leverage": 7}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (
            body["name"].as_str(),
            body["leverage"].as_i64(),
            body["symbol"].as_str()
        ),
        (Some("ETH short x7"), Some(7), Some("ETH/USDT"))
    );
    let before = u.get(&s, &bot_path(eid, ""));
    let (code, body) = send(
        &s,
        &u,
        "PUT",
        &bot_path(eid, ""),
        json!({"name": "x".repeat(200), "leverage": 0}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["fields"]["name"].is_string() && body["fields"]["leverage"].is_string(),
        "{body}"
    );
    assert_eq!(u.get(&s, &bot_path(eid, "")), before, "nothing changed");
    let (code, body) = send(
        &s,
        &u,
        "PUT",
        &bot_path(eid, "/config"),
        json!({"take_profit": 12}),
    );
    assert_eq!(
        (code, body["take_profit"].as_f64()),
        (200, Some(12.0)),
        "{body}"
    );
    assert!(body.get("id").is_none(), "the config shape: {body}");
    assert_eq!(u.get(&s, &bot_path(eid, ""))["take_profit"], 12.0);
    assert_eq!(
        u.get(&s, "/api/bot/config"),
        legacy_config,
        "the default bot is untouched"
    );

    // Delete: the bot goes, a place is free again; the default bot stays.
    let (code, body) = send(&s, &u, "DELETE", &bot_path(eid, ""), Value::Null);
    assert_eq!((code, body), (200, json!({"success": true})));
    let r = u.call(&s, "GET", &bot_path(eid, ""), "");
    assert_eq!((r.status, r.json()), (404, not_found()));
    assert_eq!(
        send(&s, &u, "DELETE", &bot_path(eid, ""), Value::Null).0,
        404
    );
    create_bot(&s, &u, json!({"name": "ETH again", "symbol": "ETH/USDT"}));
    let (code, body) = send(&s, &u, "DELETE", &bot_path(did, ""), Value::Null);
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("default_bot")),
        "{body}"
    );
    let ids: Vec<i64> = bots(&s, &u)
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.contains(&did) && ids.contains(&third["id"].as_i64().unwrap()),
        "{ids:?}"
    );

    // Ids that are not numbers, or no bot's, are not found.
    for bad in ["abc", "1.5", "-1", "0", "99999999", "1e3", "%20"] {
        for tail in ["", "/status", "/config"] {
            let r = u.call(&s, "GET", &format!("/api/bots/{bad}{tail}"), "");
            assert_eq!((r.status, r.json()), (404, not_found()), "{bad}{tail}");
        }
    }
}

#[test]
fn a_second_bot_trades_on_its_own_market_beside_the_default_one() {
    let s = server(&[]);
    let u = user(&s, "two@example.com", false);
    let did = default_bot(&s, &u)["id"].as_i64().unwrap();
    let eth = create_bot(&s, &u, json!({"name": "ETH", "symbol": "ETH/USDT"}));
    let eid = eth["id"].as_i64().unwrap();

    let (code, body) = send(&s, &u, "POST", &bot_path(eid, "/start"), Value::Null);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "message": "Bot started successfully", "status": "started"})
    );
    let st = bot_status(&s, &u, eid);
    assert_eq!(
        (
            st["running"].as_bool(),
            st["symbol"].as_str(),
            st["side"].as_str(),
            st["cycle"].as_i64()
        ),
        (Some(true), Some("ETH/USDT"), Some("long"), Some(1)),
        "{st}"
    );
    assert_eq!(
        open_orders_of_bot(&s, eid),
        3,
        "two legs and the take-profit"
    );
    // The default bot did not move.
    let legacy = u.status(&s);
    assert_eq!(
        (legacy["status"].as_str(), legacy["symbol"].as_str()),
        (Some("stopped"), Some("BTC/USDT"))
    );
    assert_eq!(open_orders_of_bot(&s, did), 0);
    let listed = bots(&s, &u);
    let shown = listed.iter().find(|b| b["id"] == eid).unwrap();
    assert_eq!(
        (shown["status"].as_str(), shown["running"].as_bool()),
        (Some("running"), Some(true))
    );

    // The orders route lists this bot's orders only, by their tag.
    let orders = u.get(&s, &bot_path(eid, "/orders"))["orders"].clone();
    let ids: Vec<&str> = orders
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{orders}");
    assert!(
        ids.iter().all(|c| c.starts_with(&format!("bz-{eid}-"))),
        "{ids:?}"
    );

    // The default bot starts beside it, on its own market.
    assert_eq!(send(&s, &u, "POST", "/api/bot/start", Value::Null).0, 200);
    assert_eq!(open_orders_of_bot(&s, did), 3);
    assert_eq!(
        open_orders_of_bot(&s, eid),
        3,
        "a start leaves the sibling alone"
    );
    assert_eq!(bot_status(&s, &u, did)["symbol"], "BTC/USDT");
    assert_eq!(
        bots(&s, &u).iter().filter(|b| b["running"] == true).count(),
        2
    );

    // C4.4's outcomes per bot.
    let (code, body) = send(&s, &u, "POST", &bot_path(eid, "/start"), Value::Null);
    assert_eq!(
        (code, body["status"].as_str()),
        (409, Some("already_running"))
    );
    let (code, body) = send(&s, &u, "POST", &bot_path(eid, "/recover"), Value::Null);
    assert_eq!(
        (code, body),
        (
            200,
            json!({"success": true, "message": "Recovery process completed", "actions": []})
        )
    );
    let (code, body) = send(
        &s,
        &u,
        "POST",
        &bot_path(eid, "/stop"),
        json!({"mode": "sideways"}),
    );
    assert_eq!((code, body["fields"]["mode"].is_string()), (400, true));

    // Conflict: another bot on the same paper account, market and side.
    let twin = create_bot(&s, &u, json!({"name": "ETH twin", "symbol": "ETH/USDT"}));
    let tid = twin["id"].as_i64().unwrap();
    let (code, body) = send(&s, &u, "POST", &bot_path(tid, "/start"), Value::Null);
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("conflict")),
        "{body}"
    );
    assert_eq!(bot_status(&s, &u, tid)["status"], "stopped");
    assert_eq!(open_orders_of_bot(&s, tid), 0);

    // While it runs: configuration changes wait for the next cycle, market changes
    // and deletion are refused.
    let (code, body) = send(
        &s,
        &u,
        "PUT",
        &bot_path(eid, "/config"),
        json!({"leverage": 5}),
    );
    assert_eq!(
        (code, body["pending"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let shown = u.get(&s, &bot_path(eid, ""));
    assert_eq!(
        (
            shown["leverage"].clone(),
            shown["pending"]["leverage"].clone()
        ),
        (json!(10), json!(5)),
        "{shown}"
    );
    assert_eq!(bot_status(&s, &u, eid)["pending_config"], true);
    let (code, body) = send(
        &s,
        &u,
        "PUT",
        &bot_path(eid, ""),
        json!({"symbol": "SOL/USDT"}),
    );
    assert_eq!(code, 409, "{body}");
    let (code, body) = send(&s, &u, "DELETE", &bot_path(eid, ""), Value::Null);
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("running")),
        "{body}"
    );

    // A bot stopped with its cycle open (keep) stays; a start resumes that cycle.
    let (code, _) = send(
        &s,
        &u,
        "POST",
        &bot_path(eid, "/stop"),
        json!({"mode": "keep"}),
    );
    assert_eq!(code, 200);
    assert_eq!(open_orders_of_bot(&s, eid), 3, "keep leaves the orders");
    let (code, body) = send(&s, &u, "DELETE", &bot_path(eid, ""), Value::Null);
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("position_open")),
        "{body}"
    );
    let (code, body) = send(&s, &u, "POST", &bot_path(eid, "/start"), Value::Null);
    assert_eq!(code, 200, "{body}");
    assert_eq!(bot_status(&s, &u, eid)["cycle"], 1);

    // Stop with a mode, per bot: closing the position records this bot's trade.
    let (code, body) = send(
        &s,
        &u,
        "POST",
        &bot_path(eid, "/stop"),
        json!({"mode": "close_position"}),
    );
    assert_eq!(
        (code, body),
        (
            200,
            json!({"success": true, "message": "Bot stopped successfully", "status": "stopped"})
        )
    );
    assert_eq!(open_orders_of_bot(&s, eid), 0);
    assert_eq!(
        open_orders_of_bot(&s, did),
        3,
        "the default bot still trades"
    );
    assert_eq!(
        wait_bot_status(&s, &u, did, "running")["symbol"],
        "BTC/USDT"
    );
    let (code, body) = send(&s, &u, "POST", &bot_path(eid, "/stop"), Value::Null);
    assert_eq!((code, body["status"].as_str()), (409, Some("not_running")));
    let (code, _) = send(&s, &u, "POST", &bot_path(eid, "/recover"), Value::Null);
    assert_eq!(code, 409);

    let trades = u.get(&s, &bot_path(eid, "/trades"))["trades"].clone();
    assert_eq!(trades.as_array().unwrap().len(), 1, "{trades}");
    assert_eq!(
        (
            trades[0]["symbol"].as_str(),
            trades[0]["cycle"].as_i64(),
            trades[0]["close_reason"].as_str()
        ),
        (Some("ETH/USDT"), Some(1), Some("manual"))
    );
    assert_eq!(
        u.get(&s, &bot_path(eid, "/trades")),
        u.get(&s, &format!("/api/trades?bot_id={eid}")),
        "the same list as the filter"
    );
    assert_eq!(u.get(&s, &bot_path(did, "/trades"))["trades"], json!([]));
    let summary = u.get(&s, &bot_path(eid, "/pnl/summary?days=7&tz=Europe/Berlin"));
    assert_eq!(summary["total_trades"], 1, "{summary}");
    assert_eq!(summary["daily"].as_array().unwrap().len(), 7);
    assert_eq!(
        summary,
        u.get(
            &s,
            &format!("/api/pnl/summary?days=7&tz=Europe/Berlin&bot_id={eid}")
        )
    );
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&summary), keys(&u.get(&s, "/api/pnl/summary")));
    assert_eq!(u.get(&s, &bot_path(did, "/pnl/summary"))["total_trades"], 0);
    assert_eq!(
        u.call(
            &s,
            "GET",
            &bot_path(eid, "/pnl/summary?tz=Nowhere/Special"),
            ""
        )
        .status,
        400
    );

    // Each bot has its own event trail.
    let mine = event_kinds(&s, &u, eid);
    assert_eq!(mine[0], "stopped", "newest first: {mine:?}");
    for k in ["started", "entry", "stopped"] {
        assert!(mine.contains(&k.to_string()), "{k} missing from {mine:?}");
    }
    let ids = |id: i64| -> Vec<i64> {
        u.get(&s, &bot_path(id, "/events?limit=500"))["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    let (ethe, defe) = (ids(eid), ids(did));
    assert!(!defe.is_empty() && ethe.iter().all(|i| !defe.contains(i)));
    assert_eq!(
        u.get(&s, "/api/bot/events?limit=500")["events"],
        u.get(&s, &bot_path(did, "/events?limit=500"))["events"]
    );
    assert_eq!(
        u.call(&s, "GET", &bot_path(eid, "/events?limit=0"), "")
            .status,
        400
    );

    // A stopped bot is deleted with its events; its trade stays in the history.
    let (code, _) = send(&s, &u, "DELETE", &bot_path(eid, ""), Value::Null);
    assert_eq!(code, 200);
    assert_eq!(
        u.get(&s, "/api/trades")["trades"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        count(
            &s,
            &format!("SELECT COUNT(*) FROM bot_events WHERE bot_id = {eid}")
        ),
        0
    );
    assert_eq!(send(&s, &u, "POST", "/api/bot/stop", Value::Null).0, 200);
}

/// For every route and method that names a bot or an exchange account, another
/// user's id answers exactly like an id that does not exist, and changes nothing.
#[test]
fn another_users_bots_and_accounts_are_not_found_for_every_route_and_method() {
    let f = FakeBybit::start("KEY-owner-abcd", "secret-of-KEY-owner-abcd");
    let url = f.url();
    // Keys are checked on save: the BingX account's key is a fake BingX's.
    let g = common::fake_bingx::FakeBingx::start("KEY-spare-wxyz", "secret-of-KEY-spare-wxyz");
    let bingx_url = g.url();
    let s = server(&[("BYBIT_BASE_URL", &url), ("BINGX_BASE_URL", &bingx_url)]);
    let owner = user(&s, "owner@example.com", false);
    let other = user(&s, "other@example.com", false);
    let acc = create_account(&s, &owner, "Main", "bybit", "KEY-owner-abcd");
    let aid = acc["id"].as_i64().unwrap();
    let spare = create_account(&s, &owner, "Spare", "bingx", "KEY-spare-wxyz");
    let sid = spare["id"].as_i64().unwrap();
    let did = default_bot(&s, &owner)["id"].as_i64().unwrap();
    let eth = create_bot(&s, &owner, json!({"name": "ETH", "symbol": "ETH/USDT"}));
    let eid = eth["id"].as_i64().unwrap();
    create_bot(
        &s,
        &owner,
        json!({"name": "On Bybit", "exchange": "bybit", "exchange_account_id": aid,
               "take_profit": 10}),
    );
    // Running, so that a stop or a delete let through would show.
    assert_eq!(
        send(&s, &owner, "POST", &bot_path(eid, "/start"), Value::Null).0,
        200
    );

    let snapshot = |s: &Server| {
        (
            bots(s, &owner),
            owner.get(s, "/api/exchange-accounts"),
            owner.get(s, "/api/bot/config"),
            event_kinds(s, &owner, eid),
            open_orders_of_bot(s, eid),
        )
    };
    let before = snapshot(&s);
    assert_eq!(before.3.len(), event_kinds(&s, &owner, eid).len());

    let missing = 99_999_999;
    let mut cases = Vec::new();
    for id in [eid, did] {
        cases.extend(bot_routes(id).into_iter().zip(bot_routes(missing)));
    }
    for id in [aid, sid] {
        cases.extend(account_routes(id).into_iter().zip(account_routes(missing)));
    }
    for ((method, path, body), (_, absent, _)) in cases {
        let (code, got) = send(&s, &other, method, &path, body.clone());
        let (absent_code, absent_body) = send(&s, &other, method, &absent, body);
        assert_eq!(
            (code, &got),
            (404, &not_found()),
            "{method} {path} by another user"
        );
        assert_eq!(
            (absent_code, &absent_body),
            (code, &got),
            "{method} {path}: the same answer as for no such id"
        );
    }
    // Filters and references to someone else's bot or account.
    for path in [
        format!("/api/trades?bot_id={eid}"),
        format!("/api/pnl/summary?bot_id={eid}"),
    ] {
        let r = other.call(&s, "GET", &path, "");
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    let (code, body) = send(
        &s,
        &other,
        "POST",
        "/api/bots",
        json!({"name": "theirs", "exchange": "bybit", "exchange_account_id": aid}),
    );
    assert_eq!(
        (code, body["fields"]["exchange_account_id"].is_string()),
        (400, true),
        "{body}"
    );
    let mine = default_bot(&s, &other)["id"].as_i64().unwrap();
    let (code, body) = send(
        &s,
        &other,
        "PUT",
        &bot_path(mine, ""),
        json!({"exchange": "bybit", "exchange_account_id": aid}),
    );
    assert_eq!(
        (code, body["fields"]["exchange_account_id"].is_string()),
        (400, true),
        "{body}"
    );
    // The other user sees only their own.
    assert_eq!(bots(&s, &other).len(), 1);
    assert_eq!(
        other.get(&s, "/api/exchange-accounts"),
        json!({"accounts": []})
    );

    assert_eq!(snapshot(&s), before, "nothing of the owner changed");
    assert_eq!(bot_status(&s, &owner, eid)["status"], "running");
    assert_eq!(
        send(&s, &owner, "POST", &bot_path(eid, "/stop"), Value::Null).0,
        200
    );
}

#[test]
fn admins_force_operations_on_any_bot_and_see_a_users_bots() {
    let s = server(&[]);
    let admin = user(&s, "boss@example.com", true);
    let u = user(&s, "worker@example.com", false);
    let eth = create_bot(&s, &u, json!({"name": "ETH", "symbol": "ETH/USDT"}));
    let eid = eth["id"].as_i64().unwrap();

    // Non-admins are refused like on the other admin routes.
    let view = format!("/api/admin/users/{}", u.id);
    for (method, path) in [
        ("GET", view.clone()),
        ("POST", format!("/api/admin/bots/{eid}/start")),
        ("POST", format!("/api/admin/bots/{eid}/stop")),
        ("POST", format!("/api/admin/bots/{eid}/recover")),
    ] {
        let r = u.call(&s, method, &path, "");
        assert_eq!(
            (r.status, r.json()),
            (403, json!({"error": "Admin access required"})),
            "{method} {path}"
        );
    }
    assert_eq!(bot_status(&s, &u, eid)["status"], "stopped");

    // The user's admin view lists their bots.
    let shown = admin.get(&s, &view);
    assert_eq!(
        (shown["id"].as_i64(), shown["email"].as_str()),
        (Some(u.id), Some("worker@example.com")),
        "{shown}"
    );
    for f in [
        "is_admin",
        "disabled",
        "verified",
        "created_at",
        "pnl_total",
        "trades",
    ] {
        assert!(shown.get(f).is_some(), "{f} missing: {shown}");
    }
    let listed = shown["bots"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{shown}");
    assert_eq!(listed[1]["id"], eid);
    assert_eq!(listed[1]["symbol"], "ETH/USDT");
    assert_eq!(listed[0]["default"], true);
    let r = admin.call(&s, "GET", "/api/admin/users/99999999", "");
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"error": "User not found"}))
    );

    // Force operations: C4.4's outcomes, recorded as the admin's.
    let force = |op: &str| {
        send(
            &s,
            &admin,
            "POST",
            &format!("/api/admin/bots/{eid}/{op}"),
            Value::Null,
        )
    };
    let (code, body) = force("start");
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("started")),
        "{body}"
    );
    assert_eq!(bot_status(&s, &u, eid)["running"], true);
    assert_eq!(u.status(&s)["status"], "stopped", "only that bot");
    let events = u.get(&s, &bot_path(eid, "/events?limit=500"))["events"].clone();
    let started = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "started")
        .unwrap_or_else(|| panic!("no started event: {events}"));
    assert_eq!(started["data"]["actor"], format!("admin:{}", admin.id));
    assert_eq!(force("start").0, 409);
    let (code, body) = force("recover");
    assert_eq!((code, body["actions"].clone()), (200, json!([])), "{body}");

    // Maintenance pauses the user's per-bot commands, not the admin's.
    assert_eq!(
        send(&s, &admin, "POST", "/admin/maintenance/enable", Value::Null).0,
        200
    );
    for op in ["start", "stop", "recover"] {
        let r = u.call(&s, "POST", &bot_path(eid, &format!("/{op}")), "");
        assert_eq!(r.status, 503, "{op}: {}", r.text());
        assert_eq!(r.header("retry-after"), Some("60"));
    }
    assert_eq!(
        bot_status(&s, &u, eid)["status"],
        "running",
        "reads still work"
    );
    let (code, body) = force("stop");
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("stopped")),
        "{body}"
    );
    assert_eq!(
        send(
            &s,
            &admin,
            "POST",
            "/admin/maintenance/disable",
            Value::Null
        )
        .0,
        200
    );
    assert_eq!(bot_status(&s, &u, eid)["stop_reason"], "admin");
    assert_eq!(open_orders_of_bot(&s, eid), 0);
    assert_eq!(force("stop").0, 409);

    for bad in ["99999999", "abc"] {
        let r = admin.call(&s, "POST", &format!("/api/admin/bots/{bad}/start"), "");
        assert_eq!(r.status, 404, "{bad}: {}", r.text());
    }
    // The overview names every bot with its owner.
    let overview = admin.get(&s, "/admin/simple/status");
    assert_eq!(
        overview["bots"][eid.to_string()]["user_id"],
        u.id,
        "{overview}"
    );
}

#[test]
fn exchange_accounts_are_created_listed_and_deleted_unless_in_use() {
    let f = FakeBybit::start("KEY-first-abcd", "secret-of-KEY-first-abcd");
    let url = f.url();
    let s = server(&[("BYBIT_BASE_URL", &url)]);
    let u = user(&s, "keys@example.com", false);
    assert_eq!(u.get(&s, "/api/exchange-accounts"), json!({"accounts": []}));

    // Every bad field is named; nothing is made.
    let (code, body) = send(
        &s,
        &u,
        "POST",
        "/api/exchange-accounts",
        json!({"name": "", "exchange": "paper", "api_key": 7}),
    );
    assert_eq!(code, 400, "{body}");
    let named: Vec<&str> = body["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        named,
        ["api_key", "api_secret", "exchange", "name"],
        "{body}"
    );
    assert_eq!(u.get(&s, "/api/exchange-accounts"), json!({"accounts": []}));

    let secret = "secret-of-KEY-first-abcd";
    let body = json!({"name": "Main", "exchange": "bybit", "api_key": "KEY-first-abcd",
                      "api_secret": secret});
    let r = u.call(&s, "POST", "/api/exchange-accounts", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    let acc = r.json();
    let aid = acc["id"].as_i64().unwrap();
    assert_eq!(
        (&acc["id"], &acc["name"], &acc["exchange"], &acc["api_key"]),
        (
            &json!(aid),
            &json!("Main"),
            &json!("bybit"),
            &json!("***abcd")
        )
    );
    assert_eq!(acc["key"]["trade"], true, "checked on save: {acc}");
    let listed = u.get(&s, "/api/exchange-accounts");
    let row = &listed["accounts"][0];
    assert_eq!(
        (
            row["id"].as_i64(),
            row["name"].as_str(),
            row["exchange"].as_str(),
            row["api_key"].as_str(),
            row["bots"].clone()
        ),
        (
            Some(aid),
            Some("Main"),
            Some("bybit"),
            Some("***abcd"),
            json!([])
        ),
        "{listed}"
    );
    assert!(
        row["created_at"].is_i64() || row["created_at"].is_string(),
        "{row}"
    );
    for text in [listed.to_string(), s.log()] {
        assert!(
            !text.contains(secret) && !text.contains("KEY-first"),
            "{text}"
        );
    }
    let sealed = count(
        &s,
        &format!(
            "SELECT COUNT(*) FROM exchange_accounts WHERE id = {aid} \
             AND CAST(api_secret_enc AS TEXT) NOT LIKE '%{secret}%'"
        ),
    );
    assert_eq!(sealed, 1, "the secret is stored sealed");

    // A bot on that account: it shows among the account's bots, and the account
    // cannot go while it does.
    let (code, body) = send(
        &s,
        &u,
        "POST",
        "/api/bots",
        json!({"name": "On BingX", "exchange": "bingx", "exchange_account_id": aid}),
    );
    assert_eq!(
        (code, body["fields"]["exchange_account_id"].is_string()),
        (400, true),
        "a bybit account cannot serve a bingx bot: {body}"
    );
    let bot = create_bot(
        &s,
        &u,
        json!({"name": "On Bybit", "exchange": "bybit", "exchange_account_id": aid,
               "take_profit": 10}),
    );
    let bid = bot["id"].as_i64().unwrap();
    assert_eq!(
        (bot["exchange_account_id"].as_i64(), bot["api_key"].as_str()),
        (Some(aid), Some("***abcd")),
        "{bot}"
    );
    assert_eq!(
        u.get(&s, "/api/exchange-accounts")["accounts"][0]["bots"],
        json!([bid])
    );
    let (code, body) = send(
        &s,
        &u,
        "DELETE",
        &format!("/api/exchange-accounts/{aid}"),
        Value::Null,
    );
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("in_use")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains(&bid.to_string()),
        "{body}"
    );

    // While that bot trades with the account, the account's keys stay: new keys
    // given through another bot (the default one, moved to Bybit, which links
    // it to this account) are refused with the trading bot's status.
    let (code, body) = send(&s, &u, "POST", &bot_path(bid, "/start"), Value::Null);
    assert_eq!(code, 200, "{body}");
    let other_keys = json!({"exchange": "bybit", "api_key": "KEY-other-wxyz",
                            "api_secret": "secret-of-KEY-other-wxyz"});
    let (code, body) = send(&s, &u, "PUT", "/api/bot/config", other_keys);
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("running")),
        "{body}"
    );
    assert_eq!(
        u.get(&s, "/api/bot/config")["exchange"],
        "paper",
        "unchanged"
    );
    assert_eq!(
        u.get(&s, "/api/exchange-accounts")["accounts"][0]["api_key"],
        "***abcd"
    );
    let (code, body) = send(
        &s,
        &u,
        "POST",
        &bot_path(bid, "/stop"),
        json!({"mode": "close_position"}),
    );
    assert_eq!(code, 200, "{body}");

    // The bot moves back to paper; the account is free and goes.
    let (code, body) = send(
        &s,
        &u,
        "PUT",
        &bot_path(bid, ""),
        json!({"exchange": "paper", "exchange_account_id": null}),
    );
    assert_eq!(
        (code, body["exchange_account_id"].clone()),
        (200, Value::Null),
        "{body}"
    );
    assert_eq!(
        u.get(&s, "/api/exchange-accounts")["accounts"][0]["bots"],
        json!([])
    );
    let (code, body) = send(
        &s,
        &u,
        "DELETE",
        &format!("/api/exchange-accounts/{aid}"),
        Value::Null,
    );
    assert_eq!((code, body), (200, json!({"success": true})));
    assert_eq!(u.get(&s, "/api/exchange-accounts"), json!({"accounts": []}));
    assert_eq!(
        send(
            &s,
            &u,
            "DELETE",
            &format!("/api/exchange-accounts/{aid}"),
            Value::Null
        )
        .0,
        404
    );
    for bad in ["abc", "-1", "0"] {
        let r = u.call(&s, "DELETE", &format!("/api/exchange-accounts/{bad}"), "");
        assert_eq!((r.status, r.json()), (404, not_found()), "{bad}");
    }
}

/// The `/api/bot/*` endpoints keep their shapes and act on the default bot; the
/// status group's rate limit is one budget across all of a user's bots.
#[test]
fn the_legacy_endpoints_act_on_the_default_bot_and_limits_span_all_bots() {
    let s = server(&[("RATE_LIMITS_STATUS", "12/minute")]);
    let u = user(&s, "legacy@example.com", false);
    let did = default_bot(&s, &u)["id"].as_i64().unwrap();
    let eth = create_bot(
        &s,
        &u,
        json!({"name": "ETH", "symbol": "ETH/USDT", "side": "short"}),
    );
    let eid = eth["id"].as_i64().unwrap();

    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    // The shapes of today's release.
    let config = u.get(&s, "/api/bot/config");
    assert_eq!(
        keys(&config),
        [
            "after_stop_loss",
            "api_key",
            "cooldown",
            "exchange",
            "grids",
            "has_api_secret",
            "has_telegram_token",
            "leverage",
            "max_active_legs",
            "pending",
            "repeat",
            "rounds",
            "side",
            "stop_loss",
            "symbol",
            "take_profit",
            "telegram_chat_id",
            "trailing_take_profit"
        ]
    );
    assert_eq!(config, u.get(&s, &bot_path(did, "/config")));
    let (code, put) = send(&s, &u, "PUT", "/api/bot/config", json!({"leverage": 12}));
    assert_eq!((code, put["leverage"].as_i64()), (200, Some(12)), "{put}");
    assert_eq!(keys(&put), keys(&config));
    assert_eq!(u.get(&s, &bot_path(did, ""))["leverage"], 12);
    assert_eq!(
        u.get(&s, &bot_path(eid, ""))["leverage"],
        10,
        "not the sibling"
    );

    let (code, body) = send(&s, &u, "POST", "/api/bot/start", Value::Null);
    assert_eq!(
        (code, body),
        (
            200,
            json!({"success": true, "message": "Bot started successfully", "status": "started"})
        )
    );
    assert_eq!(
        bot_status(&s, &u, eid)["status"],
        "stopped",
        "only the default bot"
    );
    let legacy = u.status(&s);
    let mut per_bot = bot_status(&s, &u, did);
    assert_eq!(
        keys(&legacy),
        [
            "after_cycle",
            "cycle",
            "exchange",
            "last_error",
            "message",
            "next_entry_at",
            "open_orders",
            "pending_config",
            "position",
            "price_stale",
            "running",
            "side",
            "status",
            "stop_loss_price",
            "stop_on_exchange",
            "stop_reason",
            "symbol",
            "take_profit_price",
            "uptime"
        ]
    );
    per_bot["uptime"] = legacy["uptime"].clone();
    assert_eq!(per_bot, legacy);
    let orders = u.get(&s, "/api/bot/orders");
    assert_eq!(orders, u.get(&s, &bot_path(did, "/orders")));
    assert_eq!(orders["orders"].as_array().unwrap().len(), 3, "{orders}");
    let (code, body) = send(&s, &u, "POST", "/api/bot/recover", Value::Null);
    assert_eq!((code, body["actions"].clone()), (200, json!([])));
    let (code, body) = send(&s, &u, "POST", "/api/bot/stop", json!({"mode": "keep"}));
    assert_eq!(
        (code, body),
        (
            200,
            json!({"success": true, "message": "Bot stopped successfully", "status": "stopped"})
        )
    );
    assert_eq!(open_orders_of_bot(&s, did), 3, "keep leaves the orders");
    assert_eq!(
        u.get(&s, "/api/bot/events?limit=3"),
        u.get(&s, &bot_path(did, "/events?limit=3"))
    );
    // Trades and PnL cover every bot of the user (none closed yet).
    assert_eq!(u.get(&s, "/api/trades"), json!({"trades": []}));

    // Eight status-group reads so far (the bot list, two bot objects, three
    // statuses and the orders by both paths): one budget of 12 for all the bots.
    let r = u.call(&s, "GET", &bot_path(eid, "/status"), "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-ratelimit-remaining"),
        Some("3"),
        "{:?}",
        r.headers
    );
    for path in ["/api/bot/status".to_string(), bot_path(eid, "")] {
        assert_eq!(u.call(&s, "GET", &path, "").status, 200, "{path}");
    }
    let r = u.call(&s, "GET", &bot_path(eid, "/orders"), "");
    assert_eq!(
        (r.status, r.header("x-ratelimit-remaining")),
        (200, Some("0"))
    );
    for path in [
        bot_path(eid, "/status"),
        "/api/bot/status".to_string(),
        "/api/bots".to_string(),
    ] {
        let r = u.call(&s, "GET", &path, "");
        assert_eq!(r.status, 429, "{path}: {}", r.text());
        assert_eq!(r.json()["error"], "Rate limit exceeded");
    }
    // Per user: someone else still has their whole budget.
    let other = user(&s, "fresh@example.com", false);
    assert_eq!(other.call(&s, "GET", "/api/bot/status", "").status, 200);
}

/// One operation at a time per user, whichever of their bots it is for: while a
/// start of one bot hangs (the runner is stopped), a start of another, an admin's
/// force operation on it and a bot's deletion meet the same guard.
#[test]
fn one_operation_guard_spans_all_of_a_users_bots() {
    let s = server(&[]);
    let admin = user(&s, "boss@example.com", true);
    let u = user(&s, "busy@example.com", false);
    let did = default_bot(&s, &u)["id"].as_i64().unwrap();
    let eid = create_bot(&s, &u, json!({"name": "ETH", "symbol": "ETH/USDT"}))["id"]
        .as_i64()
        .unwrap();
    let spare = create_bot(&s, &u, json!({"name": "SOL", "symbol": "SOL/USDT"}))["id"]
        .as_i64()
        .unwrap();
    let runner = Pid::from_raw(s.runner_pids()[0]);
    kill(runner, Signal::SIGSTOP).unwrap();
    // Starts of the default bot until one is refused: an earlier one hangs in a
    // worker holding the user's guard.
    let wait = Duration::from_millis(700);
    wait_for(Duration::from_secs(20), "the guard held", || {
        call_within(&s, &u, "POST", "/api/bot/start", wait).is_some_and(|r| r.text() == GUARD_BODY)
    });
    let refused = [
        (&u, "POST", bot_path(eid, "/start")),
        (&u, "DELETE", bot_path(spare, "")),
        (&admin, "POST", format!("/api/admin/bots/{eid}/start")),
    ];
    for (who, method, path) in refused {
        let r = call_within(&s, who, method, &path, wait);
        let r = r.unwrap_or_else(|| panic!("{method} {path} waited"));
        assert_eq!(
            (r.status, r.text(), r.header("retry-after")),
            (429, GUARD_BODY.to_string(), Some("30")),
            "{method} {path}"
        );
    }
    kill(runner, Signal::SIGCONT).unwrap();
    wait_bot_status(&s, &u, did, "running");
    // The guard is free again: the other bot starts, the spare one goes.
    wait_for(Duration::from_secs(20), "the guard released", || {
        send(&s, &u, "POST", &bot_path(eid, "/start"), Value::Null).0 == 200
    });
    assert_eq!(bot_status(&s, &u, eid)["status"], "running");
    assert_eq!(
        send(&s, &u, "DELETE", &bot_path(spare, ""), Value::Null).0,
        200
    );
}
