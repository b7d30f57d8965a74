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
use common::wait_for;
use nix::sys::signal::Signal;
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
