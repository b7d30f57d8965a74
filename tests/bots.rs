//! Bots against the real binary: the bot runner answers start / stop /
//! recover with real outcomes, every worker reports the same status, the strategy
//! trades on the paper exchange, and restarts re-adopt orders instead of
//! duplicating them.

mod common;

use std::time::Duration;

use common::bots::{count, open_orders, user, wait_status, User, CALM};
use common::floats::float_artefact;
use common::{wait_for, Options, Server};
use serde_json::{json, Value};

fn server(workers: usize, env: &[(&str, &str)]) -> Server {
    Server::with(Options {
        workers,
        env: env.to_vec(),
        ..Options::default()
    })
}

fn post(s: &Server, u: &User, path: &str, body: Value) -> (u16, Value) {
    let r = u.call(s, "POST", path, &body.to_string());
    (r.status, r.json())
}

#[test]
fn the_artefact_scan_finds_float_noise_only() {
    for noisy in [
        r#"{"size":0.009000000000000001}"#,
        "0.30000000000000004",
        "x 2.9999999999999996 y",
    ] {
        assert!(float_artefact(noisy).is_some(), "{noisy}");
    }
    for clean in [
        r#"{"size":0.009,"price":60000.1}"#,
        "10000000.5",
        "0.0000001",
        "no numbers. here 1.",
    ] {
        assert_eq!(float_artefact(clean), None, "{clean}");
    }
}

fn entries(s: &Server, uid: i64) -> i64 {
    count(s, &format!("SELECT COUNT(*) FROM paper_orders WHERE user_id = {uid} AND client_id LIKE 'bz-{uid}-%-e'"))
}

#[test]
fn start_stop_status_agree_across_workers() {
    let s = server(3, &CALM);
    let u = user(&s, "trader@example.com", false);
    let st = u.status(&s);
    assert_eq!(
        (st["running"].clone(), st["status"].clone()),
        (json!(false), json!("stopped"))
    );
    assert_eq!(st["position"], Value::Null);

    let (code, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "message": "Bot started successfully", "status": "started"})
    );
    // Answered after the entry filled and the ladder and take-profit were placed.
    assert_eq!(
        open_orders(&s, u.id),
        3,
        "two ladder legs and the take-profit"
    );
    // Every worker reads the same state (new connection each time; 3 workers).
    for _ in 0..12 {
        let st = u.status(&s);
        assert_eq!(st["running"], true, "{st}");
        assert_eq!(st["status"], "running");
        assert_eq!(
            (
                st["exchange"].as_str(),
                st["symbol"].as_str(),
                st["side"].as_str()
            ),
            (Some("paper"), Some("BTC/USDT"), Some("long"))
        );
        assert_eq!(st["cycle"], 1);
        assert_eq!(st["position"]["size"], 0.001, "{st}");
        assert_eq!(st["open_orders"], 3);
        assert_eq!(st["last_error"], Value::Null);
    }
    wait_for(Duration::from_secs(10), "uptime counts", || {
        u.status(&s)["uptime"].as_i64() >= Some(2)
    });
    let st = u.status(&s);
    assert!(st["position"]["unrealized_pnl"].is_number(), "{st}");

    let (code, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(
        (code, body["status"].as_str(), body["success"].as_bool()),
        (409, Some("already_running"), Some(false))
    );

    let (code, body) = post(&s, &u, "/api/bot/stop", json!({}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "message": "Bot stopped successfully", "status": "stopped"})
    );
    assert_eq!(
        open_orders(&s, u.id),
        0,
        "cancel_orders is the default mode"
    );
    for _ in 0..6 {
        let st = u.status(&s);
        assert_eq!(
            (
                st["running"].as_bool(),
                st["status"].as_str(),
                st["uptime"].as_i64()
            ),
            (Some(false), Some("stopped"), Some(0))
        );
    }
    let (code, body) = post(&s, &u, "/api/bot/stop", json!({}));
    assert_eq!((code, body["status"].as_str()), (409, Some("not_running")));
    let (code, body) = post(&s, &u, "/api/bot/stop", json!({"mode": "sideways"}));
    assert_eq!(
        (code, body["fields"]["mode"].is_string()),
        (400, true),
        "{body}"
    );

    let kinds = u.events(&s);
    for k in ["started", "entry", "leg_placed", "take_profit", "stopped"] {
        assert!(kinds.contains(&k.to_string()), "{k} missing from {kinds:?}");
    }
    assert_eq!(kinds[0], "stopped", "newest first");
    // Paging: `before` continues below the given id.
    let page = u.get(&s, "/api/bot/events?limit=2");
    let ids: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let next = u.get(&s, &format!("/api/bot/events?limit=2&before={}", ids[1]));
    assert!(next["events"][0]["id"].as_i64().unwrap() < ids[1]);
    assert_eq!(u.call(&s, "GET", "/api/bot/events?limit=0", "").status, 400);
    // The readiness check sees the runner agree with the database.
    let ready = s.get("/readyz").json();
    assert_eq!(ready["checks"]["bot_manager"]["status"], "ok", "{ready}");
}

#[test]
fn sixteen_concurrent_starts_make_one_bot() {
    let s = server(4, &CALM);
    let u = user(&s, "racer@example.com", false);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (u, b, port) = (u.clone(), barrier.clone(), s.port);
            std::thread::spawn(move || {
                b.wait();
                let auth = format!("Bearer {}", u.token);
                let r = common::api::call(
                    port,
                    "POST",
                    "/api/bot/start",
                    &[("Authorization", &auth)],
                    "{}",
                );
                (
                    r.status,
                    r.json(),
                    r.header("retry-after").map(str::to_string),
                )
            })
        })
        .collect();
    let results: Vec<(u16, Value, Option<String>)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let started = results.iter().filter(|r| r.0 == 200).count();
    // The rest either met the per-user guard or arrived after the start.
    let busy = json!({"success": false, "retry_after": 30,
        "message": "Bot operation already in progress for this user. Please wait."});
    let guarded = results
        .iter()
        .filter(|r| r.0 == 429 && r.1 == busy && r.2.as_deref() == Some("30"))
        .count();
    let refused = results
        .iter()
        .filter(|r| r.0 == 409 && r.1["status"] == "already_running")
        .count();
    assert_eq!((started, guarded + refused), (1, 15), "{results:?}");
    assert!(
        guarded > 0,
        "16 simultaneous starts meet the guard: {results:?}"
    );
    assert_eq!(entries(&s, u.id), 1, "one entry order on the exchange");
    // Every order was recorded as sent before it was sent (idempotent client ids).
    let sent = count(
        &s,
        &format!(
            "SELECT COUNT(*) FROM bot_orders WHERE user_id = {} AND client_id LIKE 'bz-%-e'",
            u.id
        ),
    );
    assert_eq!(sent, 1, "the entry's client id is recorded once");
    assert_eq!(open_orders(&s, u.id), 3);
    assert_eq!(
        count(
            &s,
            &format!(
                "SELECT COUNT(*) FROM bot_events WHERE user_id = {} AND kind = 'started'",
                u.id
            )
        ),
        1
    );
}

#[test]
fn stop_modes_keep_cancel_and_close() {
    let s = server(2, &CALM);
    let u = user(&s, "modes@example.com", false);
    let position = |s: &Server| {
        count(
            s,
            &format!(
                "SELECT COUNT(*) FROM paper_positions WHERE user_id = {} AND size > 0",
                u.id
            ),
        )
    };

    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    let (code, _) = post(&s, &u, "/api/bot/stop", json!({"mode": "keep"}));
    assert_eq!(code, 200);
    assert_eq!(
        (open_orders(&s, u.id), position(&s)),
        (3, 1),
        "keep leaves everything"
    );
    // A new start adopts the kept orders: nothing is placed twice.
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    assert_eq!((entries(&s, u.id), open_orders(&s, u.id)), (1, 3));

    assert_eq!(
        post(&s, &u, "/api/bot/stop", json!({"mode": "cancel_orders"})).0,
        200
    );
    assert_eq!(
        (open_orders(&s, u.id), position(&s)),
        (0, 1),
        "orders cancelled, position kept"
    );
    // Restarting the same cycle re-creates the take-profit (a new placement) and
    // the unfilled legs under new ids (the second start of this cycle: round 2).
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    assert_eq!(open_orders(&s, u.id), 3);
    for id in ["tp2", "l1r2", "l2r2"] {
        let sql = format!(
            "SELECT COUNT(*) FROM paper_orders WHERE client_id = 'bz-{}-1-{id}' \
             AND status = 'open'",
            u.id
        );
        assert_eq!(count(&s, &sql), 1, "{id}");
    }

    let (code, body) = post(&s, &u, "/api/bot/stop", json!({"mode": "close_position"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (open_orders(&s, u.id), position(&s)),
        (0, 0),
        "closed with a reduce-only market order"
    );
    let trades = u.get(&s, "/api/trades");
    let t = &trades["trades"][0];
    assert_eq!(
        (t["cycle"].as_i64(), t["size"].as_f64()),
        (Some(1), Some(0.001)),
        "{trades}"
    );
    assert!(t["fees"].as_f64().unwrap() > 0.0);
    assert_eq!(t["close_reason"], "manual", "{trades}");
    let st = u.status(&s);
    assert_eq!(
        (st["status"].as_str(), st["cycle"].as_i64()),
        (Some("stopped"), Some(2))
    );
    assert_eq!(st["stop_reason"], "user", "{st}");
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    assert_eq!(
        count(
            &s,
            &format!(
                "SELECT COUNT(*) FROM paper_orders WHERE client_id = 'bz-{}-2-e'",
                u.id
            )
        ),
        1
    );
}

#[test]
fn recover_is_idempotent() {
    let s = server(2, &CALM);
    let u = user(&s, "recover@example.com", false);
    let (code, body) = post(&s, &u, "/api/bot/recover", json!({}));
    assert_eq!((code, body["status"].as_str()), (409, Some("not_running")));
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    let orders = count(
        &s,
        &format!("SELECT COUNT(*) FROM paper_orders WHERE user_id = {}", u.id),
    );
    for _ in 0..2 {
        let (code, body) = post(&s, &u, "/api/bot/recover", json!({}));
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            body,
            json!({"success": true, "message": "Recovery process completed", "actions": []})
        );
    }
    assert_eq!(
        count(
            &s,
            &format!("SELECT COUNT(*) FROM paper_orders WHERE user_id = {}", u.id)
        ),
        orders
    );
    assert!(u.events(&s).contains(&"recovered".to_string()));
}

#[test]
fn a_full_paper_cycle_records_a_trade() {
    let s = server(
        2,
        &[
            ("BOT_TICK_MS", "20"),
            ("PAPER_TICK_MS", "20"),
            ("PAPER_VOLATILITY", "0.004"),
            ("PAPER_SEED", "11"),
        ],
    );
    let u = user(&s, "cycle@example.com", false);
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    let mut trades = Value::Null;
    wait_for(Duration::from_secs(60), "a closed cycle", || {
        trades = u.get(&s, "/api/trades");
        !trades["trades"].as_array().unwrap().is_empty()
    });
    let t = trades["trades"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            t["cycle"].as_i64(),
            t["symbol"].as_str(),
            t["side"].as_str()
        ),
        (Some(1), Some("BTC/USDT"), Some("long"))
    );
    let (size, avg, exit, fees, pnl) = (
        t["size"].as_f64().unwrap(),
        t["avg_entry"].as_f64().unwrap(),
        t["exit_price"].as_f64().unwrap(),
        t["fees"].as_f64().unwrap(),
        t["pnl"].as_f64().unwrap(),
    );
    assert!(size >= 0.001 && fees > 0.0, "{t}");
    assert!(
        ((exit - avg) * size - fees - pnl).abs() < 1e-6,
        "PnL is net of fees: {t}"
    );
    // Fees: taker on the entry (0.055 %) and at least maker on the exit (0.02 %).
    assert!(
        fees >= avg * 0.001 * 0.00055 + exit * size * 0.0002 - 1e-9,
        "{t}"
    );
    let kinds = u.events(&s);
    assert!(kinds.contains(&"cycle_closed".to_string()), "{kinds:?}");
    // Every amount the API shows is the decimal, never binary-float noise.
    for path in [
        "/api/bot/status",
        "/api/trades",
        "/api/bot/events?limit=500",
    ] {
        let body = u.call(&s, "GET", path, "").text();
        assert_eq!(float_artefact(&body), None, "{path}: {body}");
    }
    // repeat: the bot goes on with cycle 2.
    wait_for(Duration::from_secs(10), "cycle 2", || {
        u.status(&s)["cycle"].as_i64() >= Some(2)
    });
    assert_eq!(u.status(&s)["running"], true);
    let summary = u.get(&s, "/api/pnl/summary?days=7&tz=Europe/Berlin");
    let n = trades["trades"].as_array().unwrap().len() as u64;
    assert!(summary["total_trades"].as_u64().unwrap() >= n, "{summary}");
    assert_eq!(summary["daily"].as_array().unwrap().len(), 7);
    assert_eq!(
        u.call(&s, "GET", "/api/pnl/summary?tz=Nowhere/Special", "")
            .status,
        400
    );
}

#[test]
fn runner_kill_and_service_restart_resume_without_duplicates() {
    let s = server(2, &CALM);
    let a = user(&s, "a@example.com", false);
    let b = user(&s, "b@example.com", false);
    for u in [&a, &b] {
        assert_eq!(post(&s, u, "/api/bot/start", json!({})).0, 200);
    }
    let before = count(&s, "SELECT COUNT(*) FROM paper_orders");
    let old = s.runner_pids();
    assert_eq!(old.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(Duration::from_secs(20), "both bots resumed", || {
        count(&s, "SELECT COUNT(*) FROM bot_events WHERE kind = 'resumed'") == 2
    });
    assert_ne!(s.runner_pids(), old);
    for u in [&a, &b] {
        assert_eq!(wait_status(&s, u, "running")["running"], true);
        assert_eq!(entries(&s, u.id), 1);
    }
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM paper_orders"),
        before,
        "nothing placed again"
    );
    // A command sent while the runner is down waits for the new one.
    wait_for(Duration::from_secs(10), "ready again", || {
        s.get("/readyz").status == 200
    });

    // The whole service: TERM, start again on the same directory.
    let (dir, _) = s.terminate();
    let s = Server::start_in(
        dir,
        Options {
            workers: 2,
            env: CALM.to_vec(),
            ..Options::default()
        },
    );
    wait_for(Duration::from_secs(20), "resumed after restart", || {
        count(&s, "SELECT COUNT(*) FROM bot_events WHERE kind = 'resumed'") == 4
    });
    for u in [&a, &b] {
        let st = wait_status(&s, u, "running");
        assert_eq!(st["position"]["size"], 0.001, "{st}");
        assert_eq!(open_orders(&s, u.id), 3);
    }
    assert_eq!(count(&s, "SELECT COUNT(*) FROM paper_orders"), before);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM (SELECT client_id FROM paper_orders GROUP BY user_id, client_id HAVING COUNT(*) > 1)"), 0);
}

#[test]
fn config_is_validated_masked_and_pending_while_running() {
    // Bybit is a local fake that knows another key: nothing leaves the machine.
    let bybit = common::fake_bybit::FakeBybit::start("another-key", "another-secret");
    // The key saved below passes the key check on save (it is a trading key of
    // another account of the fake).
    let saved = bybit.add_account("KEY-abcd1234", "s3cr3t-VALUE-never-shown");
    let url = bybit.url();
    let mut env = CALM.to_vec();
    env.push(("BYBIT_BASE_URL", &url));
    let s = server(2, &env);
    let u = user(&s, "config@example.com", false);
    let c = u.get(&s, "/api/bot/config");
    assert_eq!(
        c,
        json!({"exchange": "paper", "symbol": "BTC/USDT", "side": "long", "leverage": 10,
        "take_profit": 5.0, "stop_loss": 0.0, "rounds": 3,
        "grids": [{"amount": 10.0, "gap": 0.0}, {"amount": 20.0, "gap": 1.0}, {"amount": 40.0, "gap": 2.0}],
        "repeat": true, "api_key": null, "has_api_secret": false, "telegram_chat_id": null,
        "has_telegram_token": false, "after_stop_loss": "stop", "cooldown": 0,
        "max_active_legs": 0, "trailing_take_profit": 0.0, "pending": null})
    );
    let bad = u.call(
        &s,
        "PUT",
        "/api/bot/config",
        &json!({"exchange": "ftx", "symbol": "BTCUSDT",
        "side": "up", "leverage": 0, "take_profit": -1, "stop_loss": 2000, "rounds": 0,
        "grids": [], "repeat": 1})
        .to_string(),
    );
    assert_eq!(bad.status, 400);
    let fields = bad.json()["fields"].clone();
    for f in [
        "exchange",
        "symbol",
        "side",
        "leverage",
        "take_profit",
        "stop_loss",
        "rounds",
        "grids",
        "repeat",
    ] {
        assert!(fields[f].is_string(), "{f} not reported: {fields}");
    }
    assert_eq!(u.get(&s, "/api/bot/config"), c, "nothing changed");

    let secret = "s3cr3t-VALUE-never-shown";
    let r = u.call(&s, "PUT", "/api/bot/config", &json!({"exchange": "bybit", "api_key": "KEY-abcd1234",
        "api_secret": secret, "telegram_token": "123:tg-token-never-shown", "telegram_chat_id": "42"}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = r.json();
    assert_eq!(
        (
            shown["api_key"].as_str(),
            shown["has_api_secret"].as_bool(),
            shown["has_telegram_token"].as_bool()
        ),
        (Some("***1234"), Some(true), Some(true))
    );
    for text in [
        r.text(),
        u.call(&s, "GET", "/api/bot/config", "").text(),
        s.log(),
    ] {
        assert!(
            !text.contains(secret) && !text.contains("KEY-abcd") && !text.contains("tg-token"),
            "{text}"
        );
    }
    let dump = std::process::Command::new("sqlite3")
        .arg(s.path("instance/database.db"))
        .arg(".dump")
        .output();
    if let Ok(out) = dump {
        assert!(out.status.success());
        assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    }
    // The key is revoked on the exchange after it was saved: the start's first
    // signed call (the position-mode check) is refused.
    bybit.account(saved).lock().unwrap().push_injected(
        Some("GET"),
        "/v5/position/list",
        10003,
        "API key is invalid.",
        1,
    );
    let (code, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(
        (code, body["status"].as_str(), body["message"].as_str()),
        (
            400,
            Some("missing_credentials"),
            Some("the exchange rejected the API key")
        ),
        "{body}"
    );
    assert!(!s.log().contains(secret), "the start logged the secret");

    // Missing credentials on a real exchange.
    let other = user(&s, "nokeys@example.com", false);
    assert_eq!(
        other
            .call(&s, "PUT", "/api/bot/config", r#"{"exchange":"bingx"}"#)
            .status,
        200
    );
    let (code, body) = post(&s, &other, "/api/bot/start", json!({}));
    assert_eq!(
        (code, body["status"].as_str()),
        (400, Some("missing_credentials")),
        "{body}"
    );

    // An entry below the market minimum: a clear error, status error.
    let r = u.call(
        &s,
        "PUT",
        "/api/bot/config",
        &json!({"exchange": "paper", "leverage": 1,
        "grids": [{"amount": 1, "gap": 0}], "rounds": 1})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (code, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(
        (code, body["status"].as_str()),
        (400, Some("invalid_config"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("minimum"),
        "{body}"
    );
    let st = u.status(&s);
    assert_eq!(st["status"], "error");
    assert!(st["last_error"].as_str().unwrap().contains("minimum"));

    // Running: the market is locked, the rest waits for the next cycle.
    let r = u.call(
        &s,
        "PUT",
        "/api/bot/config",
        &json!({"leverage": 10, "grids": [{"amount": 10, "gap": 0}]}).to_string(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    let r = u.call(&s, "PUT", "/api/bot/config", r#"{"symbol": "ETH/USDT"}"#);
    assert_eq!(r.status, 409, "{}", r.text());
    let r = u.call(&s, "PUT", "/api/bot/config", r#"{"leverage": 5}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["pending"].clone(), r.json()["leverage"].clone()),
        (json!(true), json!(5))
    );
    let c = u.get(&s, "/api/bot/config");
    assert_eq!(
        (c["leverage"].clone(), c["pending"]["leverage"].clone()),
        (json!(10), json!(5))
    );
}

#[test]
fn admin_views_force_operations_and_disable() {
    let s = server(2, &CALM);
    let admin = user(&s, "boss@example.com", true);
    let u = user(&s, "worker@example.com", false);
    assert_eq!(u.call(&s, "GET", "/admin/simple/status", "").status, 403);
    assert_eq!(u.call(&s, "GET", "/api/admin/users", "").status, 403);

    let path = format!("/api/admin/users/{}/bot/start", u.id);
    let (code, body) = post(&s, &admin, &path, json!({}));
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("started")),
        "{body}"
    );
    assert_eq!(
        post(&s, &admin, "/api/admin/users/99999/bot/start", json!({})).0,
        404
    );
    let overview = admin.get(&s, "/admin/simple/status");
    let mine = &overview["users"][u.id.to_string()];
    assert_eq!(
        (
            mine["email"].as_str(),
            mine["running"].as_bool(),
            mine["status"].as_str()
        ),
        (Some("worker@example.com"), Some(true), Some("running")),
        "{overview}"
    );
    assert_eq!(overview["totals"]["total_running"], 1);
    let listed = admin.get(&s, "/api/admin/users?query=worker");
    assert_eq!(listed["total"], 1);
    let row = &listed["users"][0];
    assert_eq!(
        (
            row["bot"]["status"].as_str(),
            row["verified"].as_bool(),
            row["pnl_total"].as_f64()
        ),
        (Some("running"), Some(true), Some(0.0)),
        "{row}"
    );

    let (code, body) = post(
        &s,
        &admin,
        &format!("/api/admin/users/{}/bot/recover", u.id),
        json!({}),
    );
    assert_eq!((code, body["actions"].clone()), (200, json!([])));
    assert!(admin.get(&s, &format!("/api/admin/pnl/summary?user_id={}", u.id))["daily"].is_array());
    assert!(admin.get(&s, "/api/admin/pnl/summary")["total_trades"].is_number());

    // Disabling the user stops their bot.
    let r = admin.call(
        &s,
        "PATCH",
        &format!("/api/admin/users/{}", u.id),
        r#"{"disabled": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let st = admin.get(&s, &format!("/api/admin/users/{}/bot/status", u.id));
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(open_orders(&s, u.id), 0);
    let (code, body) = post(&s, &admin, &path, json!({}));
    assert_eq!(
        (code, body["status"].as_str()),
        (400, Some("invalid_config")),
        "{body}"
    );
}

/// (path, JSON body) of each request the fake Telegram received.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// A stand-in for the Telegram Bot API that records each request's path and body.
fn fake_telegram() -> (u16, Seen) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            record.lock().unwrap().push((path, body));
            let reply = "{\"ok\":true}";
            let _ = write!(reader.get_mut(), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
        }
    });
    (port, seen)
}

#[test]
fn telegram_gets_the_trading_notifications() {
    let (port, seen) = fake_telegram();
    let url = format!("http://127.0.0.1:{port}");
    let mut env = CALM.to_vec();
    env.push(("TELEGRAM_API_URL", &url));
    let s = Server::with(Options {
        workers: 2,
        env,
        ..Options::default()
    });
    let u = user(&s, "notify@example.com", false);
    let token = "123456:tg-secret-token";
    let r = u.call(
        &s,
        "PUT",
        "/api/bot/config",
        &json!({"telegram_chat_id": "4242", "telegram_token": token}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    wait_for(Duration::from_secs(10), "the entry notification", || {
        !seen.lock().unwrap().is_empty()
    });
    let (path, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(path, format!("/bot{token}/sendMessage"));
    assert_eq!(body["chat_id"], "4242");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            // Named for the bot: the user may have several.
            .starts_with("Default (BTC/USDT long): Entry long 0.001 BTC/USDT"),
        "{body}"
    );
    assert!(
        !s.log().contains("tg-secret-token"),
        "the token never reaches the log"
    );
    assert!(!u.events(&s).is_empty());
}

#[test]
fn readyz_reports_the_runner_disagreeing_with_the_database() {
    let s = server(2, &CALM);
    let u = user(&s, "ready@example.com", false);
    assert_eq!(post(&s, &u, "/api/bot/start", json!({})).0, 200);
    wait_for(Duration::from_secs(10), "one running bot reported", || {
        let r = s.get("/readyz").json();
        r["checks"]["bot_manager"]["running_bots"] == 1 && r["status"] == "ok"
    });
    // A row that claims a running bot the runner does not have (e.g. edited by hand).
    let other = user(&s, "ghost@example.com", false);
    common::bots::db(&s)
        .execute(
            "UPDATE user_bots SET desired_state = 'stopped', status = 'running' WHERE user_id = ?1",
            [other.id],
        )
        .unwrap();
    let mut last = Value::Null;
    wait_for(Duration::from_secs(10), "readyz 503", || {
        let r = s.get("/readyz");
        last = r.json();
        r.status == 503
    });
    assert_eq!(last["checks"]["bot_manager"]["status"], "error", "{last}");
    assert!(
        last["checks"]["bot_manager"]["error"]
            .as_str()
            .unwrap()
            .contains("database says 2"),
        "{last}"
    );
    assert_eq!(last["checks"]["database"]["status"], "ok");
    common::bots::db(&s)
        .execute(
            "UPDATE user_bots SET status = 'stopped' WHERE user_id = ?1",
            [other.id],
        )
        .unwrap();
    wait_for(Duration::from_secs(10), "ready again", || {
        s.get("/readyz").status == 200
    });
}

#[test]
fn stopped_and_interrupted_stops_stay_stopped_after_a_runner_crash() {
    let s = server(2, &CALM);
    let a = user(&s, "closed@example.com", false);
    let b = user(&s, "midstop@example.com", false);
    for u in [&a, &b] {
        assert_eq!(post(&s, u, "/api/bot/start", json!({})).0, 200);
    }
    assert_eq!(
        post(&s, &a, "/api/bot/stop", json!({"mode": "close_position"})).0,
        200
    );
    // b's stop was recorded but the runner died before it finished.
    common::bots::db(&s)
        .execute("UPDATE user_bots SET desired_state = 'stopped', status = 'stopping' WHERE user_id = ?1", [b.id])
        .unwrap();
    let old = s.runner_pids();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(Duration::from_secs(20), "a new runner", || {
        let now = s.runner_pids();
        !now.is_empty() && now != old && s.get("/readyz").status == 200
    });
    assert_eq!(wait_status(&s, &b, "stopped")["running"], false);
    assert_eq!(a.status(&s)["status"], "stopped");
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM bot_events WHERE kind = 'resumed'"),
        0
    );
    assert_eq!(
        count(
            &s,
            &format!(
                "SELECT COUNT(*) FROM paper_orders WHERE client_id = 'bz-{}-2-e'",
                a.id
            )
        ),
        0,
        "no new cycle after a close_position stop"
    );
}

#[test]
fn a_second_instance_on_the_same_database_refuses_to_start() {
    let s = server(1, &CALM);
    let out = common::blitz_cmd(s.dir.path())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database",
            "instance/database.db",
            "--error-logfile",
            "second.log",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = std::fs::read_to_string(s.path("second.log")).unwrap();
    assert!(
        log.contains("another blitz instance is running on this database"),
        "{log}"
    );
    // The first one is unharmed.
    assert_eq!(s.get("/readyz").status, 200);
}
