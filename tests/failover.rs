//! Hosts are peers (CONTRACT C18, ARCHITECTURE §11): instances of the real binary
//! on one PostgreSQL database and one Redis, each driving the bots of the users
//! whose lease it holds (`user_leases`). When one dies (`kill -9` of every
//! process) the survivors adopt its users' bots within the lease and a few
//! seconds, placing no order twice; an instance frozen past its lease (SIGSTOP)
//! notices when it wakes and places nothing.

mod common;

use std::time::{Duration, Instant};

use common::bots::User;
use common::cluster::{kill_all, signal_all, start, Cluster, Spec, LEASE_SECONDS};
use common::{wait_for, Server};
use nix::sys::signal::Signal;
use rust_decimal::Decimal;
use serde_json::json;

#[test]
fn a_killed_instances_bots_run_again_on_the_survivors_within_the_lease() {
    let c = Cluster::start(&["a", "b", "c"]);
    let users: Vec<User> = (0..6)
        .map(|i| c.user(&format!("u{i}@example.com")))
        .collect();
    for (i, u) in users.iter().enumerate() {
        start(&c.nodes[i % 3], u);
    }
    for (i, u) in users.iter().enumerate() {
        let want = ["a", "b", "c"][i % 3];
        assert_eq!(c.holder(u.id).as_deref(), Some(want), "user {}", u.id);
    }
    let before: Vec<i64> = users.iter().map(|u| c.orders_of(u.id)).collect();
    assert!(
        before.iter().all(|n| *n > 0),
        "every bot placed: {before:?}"
    );

    let victims: Vec<&User> = users.iter().step_by(3).collect();
    let killed = Instant::now();
    kill_all(&c.nodes[0]);
    let bound = Duration::from_secs(LEASE_SECONDS + 5);
    for u in &victims {
        wait_for(bound, "adoption of a killed instance's user", || {
            let held = c.holder(u.id);
            held.is_some_and(|h| h != "a") && c.resumed(u.id) >= 1
        });
    }
    let took = killed.elapsed();
    eprintln!("every bot of the killed instance ran again after {took:?}");
    assert!(took < bound, "adoption took {took:?}");
    // The survivors' status answers agree: running, on the same orders.
    for u in &victims {
        let st = u.status(&c.nodes[1]);
        assert_eq!(st["status"], "running", "{st}");
    }
    assert_eq!(
        c.duplicate_client_ids(),
        0,
        "a client order id placed twice"
    );
    let after: Vec<i64> = users.iter().map(|u| c.orders_of(u.id)).collect();
    assert_eq!(after, before, "an adopted bot placed its orders again");
}

#[test]
fn a_frozen_instance_wakes_fenced_and_places_nothing() {
    let c = Cluster::start(&["a", "b"]);
    let (ua, ub) = (c.user("fa@example.com"), c.user("fb@example.com"));
    start(&c.nodes[0], &ua);
    start(&c.nodes[1], &ub);
    assert_eq!(c.holder(ua.id).as_deref(), Some("a"));
    let orders = c.orders_of(ua.id);

    signal_all(&c.nodes[0], Signal::SIGSTOP);
    let frozen = Instant::now();
    wait_for(
        Duration::from_secs(LEASE_SECONDS + 5),
        "b adopts the frozen instance's user",
        || c.holder(ua.id).as_deref() == Some("b") && c.resumed(ua.id) >= 1,
    );
    eprintln!("b adopted a's user {:?} after the freeze", frozen.elapsed());
    signal_all(&c.nodes[0], Signal::SIGCONT);
    let a = &c.nodes[0];
    wait_for(
        Duration::from_secs(10),
        "a notices it lost the lease",
        || a.log_count("lease deadline passed; the user's bots stopped here") >= 1,
    );
    // A few of b's steps and a's loops: nothing new for the user from either
    // (the bot is calm, b re-adopted the orders), and b still holds the user.
    let woke = Instant::now();
    while woke.elapsed() < Duration::from_secs(2) {
        assert_eq!(c.orders_of(ua.id), orders, "an order placed after the thaw");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.holder(ua.id).as_deref(), Some("b"));
    assert_eq!(c.duplicate_client_ids(), 0);
}

#[test]
fn a_command_sent_to_another_instance_is_routed_to_the_owner_and_answers_its_outcome() {
    let c = Cluster::start(&["a", "b"]);
    let u = c.user("cmd@example.com");
    start(&c.nodes[0], &u);
    // b does not drive u's bots: it routes the stop to a's runner, and the answer
    // is a's real outcome.
    let r = u.call(&c.nodes[1], "POST", "/api/bot/stop", &json!({}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "stopped", "{}", r.text());
    assert_eq!(u.status(&c.nodes[1])["status"], "stopped");
    assert_eq!(c.holder(u.id).as_deref(), Some("a"));
    // And a start sent to b runs on a, where the user's lease is.
    let r = u.call(
        &c.nodes[1],
        "POST",
        "/api/bot/start",
        &json!({}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "started", "{}", r.text());
    assert_eq!(u.status(&c.nodes[0])["status"], "running");
    // A second start through b: a's own answer, already running.
    let r = u.call(
        &c.nodes[1],
        "POST",
        "/api/bot/start",
        &json!({}).to_string(),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["status"], "already_running", "{}", r.text());
    // The admin's overview names the instance that drives each bot.
    let admin = c.user_as("root@example.com", true);
    let overview = admin.get(&c.nodes[1], "/admin/simple/status");
    let bot = overview["bots"]
        .as_object()
        .unwrap()
        .values()
        .find(|b| b["user_id"] == u.id)
        .cloned()
        .unwrap();
    assert_eq!(bot["instance"], "a", "{overview}");
}

/// A command that reaches a runner for a user nobody drives (their lease
/// expired with a dead instance, and no lease round adopted them yet) takes the
/// lease there; the user's bots then run on that runner as an adoption would
/// resume them, and the command meets them running. A long lease keeps the
/// rounds (every third of it) out of the way: only the command can take the user.
#[test]
fn a_command_for_a_user_nobody_drives_takes_the_lease_and_resumes_their_bots() {
    let c = Cluster::with(
        &["b"],
        &Spec {
            lease: 60,
            ..Spec::default()
        },
    );
    let taken = Instant::now();
    let u = c.running_users(1).remove(0);
    assert_eq!(c.holder(u.id), None);
    let r = u.call(&c.nodes[0], "POST", "/api/bot/recover", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.holder(u.id).as_deref(), Some("b"));
    wait_for(Duration::from_secs(5), "the bot resumed", || {
        c.resumed(u.id) == 1
    });
    assert_eq!(u.status(&c.nodes[0])["status"], "running");
    assert!(c.orders_of(u.id) > 0, "the resumed bot placed its orders");
    assert!(
        taken.elapsed() < Duration::from_secs(20),
        "a lease round (every 20 s) may have adopted the user instead"
    );
}

/// Starts `u`'s bot `id` (not the default one) through instance `s`.
fn start_bot(s: &Server, u: &User, id: i64) {
    let r = u.call(s, "POST", &format!("/api/bots/{id}/start"), "");
    assert_eq!(r.status, 200, "start of bot {id}: {}", r.text());
}

/// Stops `u`'s bot `id` through instance `s` with `mode`.
fn stop_bot(s: &Server, u: &User, id: i64, mode: &str) {
    let body = json!({ "mode": mode }).to_string();
    let r = u.call(s, "POST", &format!("/api/bots/{id}/stop"), &body);
    assert_eq!(r.status, 200, "stop of bot {id}: {}", r.text());
    assert_eq!(r.json()["status"], "stopped", "{}", r.text());
}

/// `u`'s default bot and a second one on ETH/USDT (another position).
fn two_bots(s: &Server, u: &User) -> (i64, i64) {
    let default = u.get(s, "/api/bots")["bots"][0]["id"].as_i64().unwrap();
    let body = json!({"name": "ETH", "symbol": "ETH/USDT"}).to_string();
    let r = u.call(s, "POST", "/api/bots", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    (default, r.json()["id"].as_i64().unwrap())
}

#[test]
fn a_user_whose_bots_all_stopped_is_released_and_starts_again_where_the_fewest_bots_run() {
    let c = Cluster::start(&["a", "b", "c"]);
    let (a, b, cc) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let [ua, ub, uc, ud] = ["pa", "pb", "pc", "pd"].map(|n| c.user(&format!("{n}@example.com")));
    // Each user nobody drives goes to the instance with the fewest bots (the
    // one the start reached on a tie); a user's next bots go where it is.
    start(a, &ua);
    assert_eq!(c.holder(ua.id).as_deref(), Some("a"));
    let (ub1, ub2) = two_bots(b, &ub);
    start_bot(b, &ub, ub1);
    start_bot(a, &ub, ub2);
    assert_eq!(c.holder(ub.id).as_deref(), Some("b"), "b had no bot");
    start(a, &uc);
    assert_eq!(c.holder(uc.id).as_deref(), Some("c"), "a 1, b 2, c 0");
    let (ud1, ud2) = two_bots(a, &ud);
    start_bot(a, &ud, ud1);
    start_bot(cc, &ud, ud2);
    assert_eq!(c.holder(ud.id).as_deref(), Some("a"), "a and c had 1 each");
    // a 3 bots, b 2, c 1.

    // All of ua's bots stop (through b, routed to a) and their position closes:
    // a gives up the lease; nothing else changes.
    let r = ua.call(
        b,
        "POST",
        "/api/bot/stop",
        &json!({"mode": "close_position"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!((c.open_orders(ua.id), c.positions(ua.id)), (0, 0));
    wait_for(Duration::from_secs(10), "a releases ua's lease", || {
        c.holder(ua.id).is_none()
    });
    let balance = c.balance(ua.id);
    assert!(balance < Decimal::from(10_000), "fees were paid: {balance}");

    // A start through b goes to c, which has the fewest bots now (a 2, b 2, c 1),
    // and c's paper exchange has ua's account as a left it.
    start(b, &ua);
    assert_eq!(c.holder(ua.id).as_deref(), Some("c"));
    assert_eq!(ua.status(b)["status"], "running");
    assert_eq!(c.positions(ua.id), 1, "the new cycle's entry filled");
    assert_eq!(
        c.balance(ua.id),
        balance - c.last_fee(ua.id),
        "only the entry's fee"
    );

    // Bots stopped with their orders kept: the account still trades on the
    // paper market, so b keeps the lease (an account nobody holds is matched by
    // nobody).
    stop_bot(a, &ub, ub1, "keep");
    stop_bot(cc, &ub, ub2, "keep");
    let stopped = c.db_now();
    assert!(c.open_orders(ub.id) > 0);
    c.round_after("b", stopped);
    assert_eq!(c.holder(ub.id).as_deref(), Some("b"));
    assert_eq!(c.duplicate_client_ids(), 0);
}

#[test]
fn paper_commands_and_the_orders_list_sent_to_another_instance_get_the_owners_answer() {
    let c = Cluster::start(&["a", "b"]);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let u = c.user("paper@example.com");
    start(a, &u);
    assert_eq!(c.holder(u.id).as_deref(), Some("a"));

    // The orders list: a's paper book lists them, through b as through a.
    let ids = |s: &Server| -> Vec<String> {
        let mut ids: Vec<String> = u.get(s, "/api/bot/orders")["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["client_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let on_a = ids(a);
    assert_eq!(on_a.len() as i64, c.open_orders(u.id), "{on_a:?}");
    assert_eq!(ids(b), on_a);

    // Reset through b while the bot runs: a's refusal.
    let reset = || {
        u.call(
            b,
            "POST",
            "/api/paper/account/reset",
            &json!({}).to_string(),
        )
    };
    let r = reset();
    let status = r.json()["status"].clone();
    assert_eq!(
        (r.status, status),
        (409, json!("bot_running")),
        "{}",
        r.text()
    );
    // Stopped and flat, the account resets through b.
    let stop = json!({"mode": "close_position"}).to_string();
    let r = u.call(b, "POST", "/api/bot/stop", &stop);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(c.balance(u.id) < Decimal::from(10_000), "fees were paid");
    let r = reset();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.balance(u.id), Decimal::from(10_000));

    // Running again (wherever it was placed), its position is closed from the
    // other host: the holder's paper exchange closes it.
    start(b, &u);
    assert_eq!(c.positions(u.id), 1);
    let holder = c.holder(u.id).unwrap();
    let other = if holder == "a" { b } else { a };
    let out = c.close_position(other, u.id);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout} {stderr}");
    let closed = format!("closed user {}'s long BTC/USDT position", u.id);
    assert!(stdout.starts_with(&closed), "{stdout}");
    assert_eq!(c.positions(u.id), 0);
    assert_eq!(c.duplicate_client_ids(), 0);
}
