//! The whole cluster under load (CONTRACT C18, README "Several hosts"): three
//! instances on one PostgreSQL and one Redis behind nginx with the shipped site
//! (`conf/nginx/blitz.conf`, only its addresses changed), 300 users with running
//! paper bots, `blitz loadtest` through nginx and writers changing the bots'
//! configuration through nginx, each remembering what was acknowledged.
//!
//! - `kill -9` of a whole instance mid-run: no request fails at nginx, every bot
//!   of the dead instance runs again on a survivor within `BOT_LEASE_SECONDS` + 5 s,
//!   no client order id is placed twice, every acknowledged configuration change
//!   is in the database afterwards and every fill on the paper exchange is in its
//!   bot's ledger exactly once.
//! - A partition: one instance frozen (SIGSTOP) past its lease under the same
//!   load, then woken: the survivors adopt its users, the woken runner logs that
//!   it lost them and places nothing, and no client order id is placed twice.
//!
//! The figures (adoption time, requests, failures, duplicates) are printed for
//! the README.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::bots::User;
use common::cluster::{kill_all, signal_all, Cluster, Ladder, Spec, LEASE_SECONDS};
use common::nginx::{self, Nginx};
use common::{blitz_cmd, wait_for, Conn};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const USERS: usize = 300;
const NAMES: [&str; 3] = ["a", "b", "c"];
/// Writer threads changing configurations through nginx, and loadtest connections.
const WRITERS: usize = 3;
const CONNECTIONS: &str = "6";

/// The cluster: 300 users whose bots run, each instance driving about a third,
/// on a paper market moving by `volatility` a step; with `busy`, half the bots
/// long and half short on ladders a tenth of a percent apart, so that their
/// legs fill whichever way the price goes.
fn cluster(volatility: &str, busy: bool) -> (Cluster, Vec<User>) {
    let c = Cluster::with(
        &NAMES,
        &Spec {
            workers: 2,
            env: vec![
                // 300 bots on 2 cores in a debug build: the default step.
                ("BOT_TICK_MS", "1000"),
                ("PAPER_TICK_MS", "250"),
                ("PAPER_VOLATILITY", volatility),
                // Every request is admitted (and still passes the limiters).
                ("RATE_LIMITS_START", "100000/second"),
                ("RATE_LIMITS_STOP", "100000/second"),
                ("RATE_LIMITS_RECOVER", "100000/second"),
                ("RATE_LIMITS_STATUS", "100000/second"),
                ("RATE_LIMITS_GLOBAL", "100000/second"),
            ],
            ..Spec::default()
        },
    );
    let begun = Instant::now();
    let users = c.running_users_with(USERS, |i| match busy {
        false => Ladder::default(),
        true => Ladder {
            side: ["long", "short"][i % 2],
            take_profit: "0.3",
            grids: r#"[{"amount":10,"gap":0},{"amount":20,"gap":0.1},{"amount":40,"gap":0.2}]"#,
        },
    });
    wait_for(
        Duration::from_secs(40),
        "every bot adopted and running",
        || {
            c.count(
                "SELECT COUNT(DISTINCT e.user_id) FROM bot_events e
             JOIN user_leases l ON l.user_id = e.user_id WHERE e.kind = 'resumed'",
            ) == USERS as i64
                && c.count("SELECT COUNT(DISTINCT user_id) FROM paper_orders") == USERS as i64
        },
    );
    let shares: Vec<usize> = NAMES.iter().map(|n| c.held_by(n).len()).collect();
    eprintln!(
        "{USERS} bots running after {:?}, held {shares:?}",
        begun.elapsed()
    );
    assert!(shares.iter().all(|n| *n > 0), "{shares:?}");
    (c, users)
}

/// nginx over the three instances, with the shipped site; `edit` changes its text.
fn nginx_over(c: &Cluster, edit: impl Fn(String) -> String) -> Nginx {
    let reserved = Nginx::reserve();
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    let site = edit(nginx::site(reserved.port, &ports));
    Nginx::start(reserved, &site)
}

/// `blitz loadtest` through nginx for `seconds`, on the users' tokens.
fn loadtest(dir: &std::path::Path, url: &str, users: &[User], seconds: u64) -> Child {
    let tokens = dir.join("tokens");
    let mut f = std::fs::File::create(&tokens).unwrap();
    for u in users {
        writeln!(f, "{}", u.token).unwrap();
    }
    blitz_cmd(dir)
        .args(["loadtest", "--url", url, "--connections", CONNECTIONS])
        .args(["--duration", &seconds.to_string(), "--json", "--tokens"])
        .arg(&tokens)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn blitz loadtest")
}

/// The loadtest's JSON report (its exit code says whether a request failed).
fn report(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "loadtest output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Requests, failed requests and answers by status of a loadtest report, and
/// the failures per endpoint.
fn figures(r: &Value) -> (u64, u64, String, Vec<String>) {
    let total = &r["total"];
    let failing: Vec<String> = r["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["errors"].as_u64() != Some(0))
        .map(|e| format!("{} {} {}", e["endpoint"], e["errors"], e["statuses"]))
        .collect();
    (
        total["requests"].as_u64().unwrap(),
        total["errors"].as_u64().unwrap(),
        total["statuses"].to_string(),
        failing,
    )
}

/// One request on a new connection; None when no answer came.
fn try_call(port: u16, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, Value)> {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = Conn::open(port).ok()?;
    c.send(raw.as_bytes()).ok()?;
    let r = c.read_response(false).ok()?;
    let j = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    Some((r.status, j))
}

/// What the configuration writers saw: per user, the take-profit of the last
/// acknowledged change and of a later change whose answer did not come (it may
/// or may not have been applied); the count of changes and of refusals.
#[derive(Default)]
struct Writes {
    acked: HashMap<i64, String>,
    unsure: HashMap<i64, String>,
    sent: u64,
    refused: Vec<String>,
}

/// Sets the flag when dropped, unwinding included.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Writers changing each user's take-profit through nginx (PUT /api/bot/config,
/// a new value each time) until `stop`.
fn write_configs(port: u16, users: &[User], stop: &AtomicBool) -> Writes {
    let writes = Mutex::new(Writes::default());
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let writes = &writes;
            s.spawn(move || {
                let mine: Vec<&User> = users.iter().skip(w).step_by(WRITERS).collect();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let u = mine[n % mine.len()];
                    // 2.00, 2.01, ... per writer round: each change differs from
                    // the last one acknowledged for the user.
                    let tp = format!(
                        "{}.{:02}",
                        2 + (n / mine.len()) / 100,
                        (n / mine.len()) % 100
                    );
                    let body = json!({ "take_profit": tp.parse::<f64>().unwrap() }).to_string();
                    let answer = try_call(port, "PUT", "/api/bot/config", &u.token, &body);
                    let mut ws = writes.lock().unwrap();
                    ws.sent += 1;
                    match answer {
                        Some((200, _)) => {
                            ws.acked.insert(u.id, tp);
                            ws.unsure.remove(&u.id);
                        }
                        Some((status, j)) => ws.refused.push(format!("{status} {j}")),
                        None => {
                            ws.unsure.insert(u.id, tp);
                            ws.refused.push("no answer".into());
                        }
                    }
                    n += 1;
                }
            });
        }
    });
    writes.into_inner().unwrap()
}

/// The take-profit the user's bot will trade with: a change made while it runs
/// waits as `pending` for the next cycle.
fn effective_take_profit(port: u16, u: &User) -> String {
    let (status, c) = try_call(port, "GET", "/api/bot/config", &u.token, "").unwrap();
    assert_eq!(status, 200, "{c}");
    let tp = match &c["pending"] {
        Value::Null => &c["take_profit"],
        pending => &pending["take_profit"],
    };
    format!("{:.2}", tp.as_f64().unwrap())
}

/// Users held by `instance` whose bots were meant to run, and the last event id
/// (what came after is the survivors' doing).
fn victims(c: &Cluster, instance: &str) -> (Vec<i64>, i64) {
    let held = c.held_by(instance);
    let mut sql = c.sql();
    let running: Vec<i64> = sql
        .query(
            "SELECT DISTINCT user_id FROM user_bots WHERE desired_state = 'running'
             AND user_id = ANY($1) ORDER BY user_id",
            &[&held],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let last: i64 = sql
        .query_one("SELECT COALESCE(MAX(id), 0) FROM bot_events", &[])
        .unwrap()
        .get(0);
    (running, last)
}

/// Whether user `u` (the SQL) runs again since event `after` (`$3`): resumed, or
/// started by a command that reached a survivor before the resume did, and now
/// held by a survivor (not `$2`) — or their bots no longer meant to run, as a bot
/// whose cycle closed while its instance was dead and whose rules then stop it
/// (its survivor then gives the lease up). The dead instance writes no event.
const RAN_AGAIN: &str = "EXISTS (SELECT 1 FROM bot_events e WHERE e.user_id = u
         AND e.kind IN ('resumed', 'started') AND e.id > $3)
     AND (EXISTS (SELECT 1 FROM user_leases l WHERE l.user_id = u AND l.instance <> $2
             AND l.expires_at_ms > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT))
          OR NOT EXISTS (SELECT 1 FROM user_bots b WHERE b.user_id = u
             AND b.desired_state = 'running'))";

/// How many of `users` run again on a survivor since event `after` (`RAN_AGAIN`).
fn adopted(c: &Cluster, gone: &str, users: &[i64], after: i64) -> usize {
    let sql = format!("SELECT COUNT(*) FROM unnest($1::bigint[]) AS t(u) WHERE {RAN_AGAIN}");
    let n: i64 = c
        .sql()
        .query_one(&sql, &[&users, &gone, &after])
        .unwrap()
        .get(0);
    n as usize
}

/// The lease holder (and when its lease ends), bot state and events since
/// `after` of each user of `users` that `adopted` does not count (for a
/// failure's message).
fn not_adopted(c: &Cluster, gone: &str, users: &[i64], after: i64) -> String {
    let rows = c
        .sql()
        .query(
            &format!(
                "SELECT b.user_id, l.instance || ' until ' || l.expires_at_ms,
                     b.desired_state, b.status,
                     (SELECT string_agg(e.kind, ',' ORDER BY e.id) FROM bot_events e
                      WHERE e.user_id = b.user_id AND e.id > $3)
                 FROM user_bots b LEFT JOIN user_leases l ON l.user_id = b.user_id,
                     LATERAL (SELECT b.user_id AS u) t
                 WHERE b.user_id = ANY($1) AND NOT ({RAN_AGAIN})"
            ),
            &[&users, &gone, &after],
        )
        .unwrap();
    let shown: Vec<String> = rows
        .iter()
        .map(|r| {
            let (uid, holder, desired, status, events): (
                i64,
                Option<String>,
                String,
                String,
                Option<String>,
            ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            format!("user {uid} held by {holder:?}, {desired}/{status}, events {events:?}")
        })
        .collect();
    shown.join("; ")
}

/// The users of `users` that the survivors do not keep: held by `gone` again,
/// or held by nobody while a bot of theirs is meant to run. A user whose bots
/// the loadtest stopped during the freeze is rightly given up by its survivor.
fn not_kept(c: &Cluster, gone: &str, users: &[i64]) -> Vec<(i64, Option<String>)> {
    users
        .iter()
        .map(|u| (*u, c.holder(*u)))
        .filter(|(u, holder)| match holder {
            Some(h) => h == gone,
            None => {
                let running: i64 = c
                    .sql()
                    .query_one(
                        "SELECT COUNT(*) FROM user_bots
                         WHERE user_id = $1 AND desired_state = 'running'",
                        &[u],
                    )
                    .unwrap()
                    .get(0);
                running > 0
            }
        })
        .collect()
}

/// Waits until every user of `users` runs again on a survivor; the time it took.
fn wait_adopted(c: &Cluster, gone: &str, users: &[i64], after: i64, since: Instant) -> Duration {
    let bound = Duration::from_secs(LEASE_SECONDS + 5);
    let mut last = 0;
    let mut took = Duration::ZERO;
    while last < users.len() {
        took = since.elapsed();
        assert!(
            took < bound,
            "{last} of {} users of {gone} ran again within {bound:?}; the others: {}",
            users.len(),
            not_adopted(c, gone, users, after)
        );
        last = adopted(c, gone, users, after);
        if last < users.len() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    took
}

/// Fills the paper exchange made by `until_ms` that no bot journaled, and
/// client ids a bot journaled more fills of than the exchange made. The market
/// keeps moving after the run: a fill of the last moments may still be on its
/// way to its bot's next step, so only those up to `until_ms` must be there.
fn ledger_gaps(c: &Cluster, until_ms: i64) -> (i64, i64) {
    let lost: i64 = c
        .sql()
        .query_one(
            &format!("SELECT COUNT(*) {NOT_JOURNALED} AND f.time_ms <= $1"),
            &[&until_ms],
        )
        .unwrap()
        .get(0);
    let doubled = c.count(
        "SELECT COUNT(*) FROM (SELECT b.user_id, b.client_id, COUNT(*) AS n FROM bot_fills b
             GROUP BY b.user_id, b.client_id) j
         JOIN paper_orders o ON o.user_id = j.user_id AND o.client_id = j.client_id
         WHERE j.n > (SELECT COUNT(*) FROM paper_fills f WHERE f.order_id = o.id)",
    );
    (lost, doubled)
}

/// The fills (`f`) of orders (`o`) whose client id no bot journaled a fill of.
const NOT_JOURNALED: &str = "FROM paper_fills f JOIN paper_orders o ON o.id = f.order_id
     WHERE NOT EXISTS (SELECT 1 FROM bot_fills b
                       WHERE b.user_id = o.user_id AND b.client_id = o.client_id)";

/// The fills `ledger_gaps` counts as not journaled, one line each (for a
/// failure): the order, when it filled, its user's holder and bot state.
fn unjournaled(c: &Cluster, gone: &[i64], killed_ms: i64, until_ms: i64) -> Vec<String> {
    c.sql()
        .query(
            &format!(
                "SELECT o.user_id, o.client_id, o.kind, o.status, f.time_ms, o.created_ms,
                    COALESCE((SELECT instance FROM user_leases l WHERE l.user_id = o.user_id), '-'),
                    COALESCE((SELECT string_agg(b.status || '/' || b.desired_state, ',')
                              FROM user_bots b WHERE b.user_id = o.user_id), '-')
                 {NOT_JOURNALED} AND f.time_ms <= $1 ORDER BY f.time_ms LIMIT 30"
            ),
            &[&until_ms],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let uid: i64 = r.get(0);
            format!(
                "user {uid}{} {} {} {}: filled {} ms after the kill, placed {} ms after; held by {}, bots {}",
                if gone.contains(&uid) { " (of a)" } else { "" },
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, i64>(4) - killed_ms,
                r.get::<_, i64>(5) - killed_ms,
                r.get::<_, String>(6),
                r.get::<_, String>(7),
            )
        })
        .collect()
}

#[test]
fn a_killed_instance_under_load_behind_nginx_loses_no_request_and_no_write() {
    // Bots that trade: their legs fill during the run, and every fill must land
    // in its bot's ledger, also those the dead instance had not seen.
    let (c, users) = cluster("0.0005", true);
    let nginx = nginx_over(&c, |site| site);
    let fills_before = c.count("SELECT COUNT(*) FROM paper_fills");
    let work = tempfile::tempdir().unwrap();
    let load = loadtest(work.path(), &nginx.url(), &users, 14);
    let stop = AtomicBool::new(false);
    let mut killed_ms = 0;
    let (writes, killed) = std::thread::scope(|s| {
        let writers = s.spawn(|| write_configs(nginx.port(), &users, &stop));
        // The writers stop also when an assertion below fails (the scope waits
        // for them).
        let stopper = StopOnDrop(&stop);
        // Load on all three first, then a whole instance dies.
        std::thread::sleep(Duration::from_secs(4));
        let dead = &c.nodes[0];
        kill_all(dead);
        let since = Instant::now();
        killed_ms = c.db_now();
        // Nothing of a's can change now: it is dead, and its users' commands on
        // the survivors are refused until their lease expires.
        let (gone, after) = victims(&c, "a");
        let took = wait_adopted(&c, "a", &gone, after, since);
        eprintln!(
            "kill -9: {} bots of instance a ran again on b and c after {took:?} (lease {LEASE_SECONDS} s)",
            gone.len()
        );
        let report = report(load);
        drop(stopper);
        (writers.join().unwrap(), (report, gone, took))
    });
    let (report, gone, _took) = killed;
    let (requests, failed, statuses, failing) = figures(&report);
    let retried = nginx
        .error_log()
        .matches("while connecting to upstream")
        .count()
        + nginx
            .error_log()
            .matches("while reading response header")
            .count();
    eprintln!(
        "loadtest through nginx: {requests} requests, {failed} failed, statuses {statuses}; \
         nginx retried {retried} on another instance; config writes: {} sent, {} acknowledged users, {} refused",
        writes.sent,
        writes.acked.len(),
        writes.refused.len()
    );
    assert_eq!(failed, 0, "failed at nginx: {failing:?}");
    assert!(
        writes.refused.is_empty(),
        "configuration changes refused: {:?}",
        &writes.refused[..writes.refused.len().min(10)]
    );
    assert!(!gone.is_empty());

    // No order twice; every acknowledged change stored.
    let duplicates = c.duplicate_client_ids();
    let survivor = c.nodes[1].port;
    let mut lost_writes = Vec::new();
    for u in &users {
        let Some(want) = writes.acked.get(&u.id) else {
            continue;
        };
        let got = effective_take_profit(survivor, u);
        let maybe = writes.unsure.get(&u.id);
        if &got != want && Some(&got) != maybe {
            lost_writes.push(format!("user {}: acknowledged {want}, stored {got}", u.id));
        }
    }
    // Every fill on the exchange lands in its bot's ledger once (a fill the
    // dead instance's bot had not seen yet is seen by its adopter).
    // Those made by the end of the run, each seen by its bot's next steps (on a
    // slow machine the 300 bots' steps lag the market by seconds).
    let until_ms = c.db_now();
    let pending = ledger_gaps(&c, until_ms).0;
    let mut gaps = (0, 0);
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_secs(20) {
        gaps = ledger_gaps(&c, until_ms);
        if gaps == (0, 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let fills = c.count("SELECT COUNT(*) FROM paper_fills") - fills_before;
    eprintln!(
        "after the run: {duplicates} duplicate client ids, {} acknowledged configuration changes lost, \
         {fills} fills in the run ({pending} still on their way to their bots at its end, then \
         journaled after {:?}), {} not journaled, {} journaled twice",
        lost_writes.len(),
        settled.elapsed(),
        gaps.0,
        gaps.1
    );
    assert_eq!(duplicates, 0, "a client order id placed twice");
    assert!(lost_writes.is_empty(), "{lost_writes:?}");
    assert!(
        fills > 0,
        "no fill during the run: the ledger check saw nothing"
    );
    assert_eq!(
        gaps,
        (0, 0),
        "fills lost or journaled twice; not journaled:\n{}",
        unjournaled(&c, &gone, killed_ms, until_ms).join("\n")
    );
}

#[test]
fn a_frozen_instance_under_load_behind_nginx_wakes_fenced_and_places_nothing() {
    // A calm market: nothing fills, so no bot has a reason to place an order
    // after the thaw, and any order then would be the woken runner's.
    let (c, users) = cluster("0.000001", false);
    // A frozen upstream accepts connections and never answers: nginx gives up on
    // it after the read timeout and sends the request to the next one. Longer
    // than a command routed to the frozen instance waits on a survivor (10 s):
    // a survivor that waited is not taken for a frozen one.
    let nginx = nginx_over(&c, |site| {
        site.replace("proxy_read_timeout 60s;", "proxy_read_timeout 12s;")
    });
    let work = tempfile::tempdir().unwrap();
    let load = loadtest(work.path(), &nginx.url(), &users, 10);
    std::thread::sleep(Duration::from_secs(3));
    let a = &c.nodes[0];
    signal_all(a, Signal::SIGSTOP);
    let since = Instant::now();
    let (gone, after) = victims(&c, "a");
    let took = wait_adopted(&c, "a", &gone, after, since);
    eprintln!(
        "SIGSTOP: {} bots of the frozen instance a ran again on b and c after {took:?}",
        gone.len()
    );
    let (requests, failed, statuses, failing) = figures(&report(load));
    eprintln!(
        "loadtest through nginx during the freeze: {requests} requests, {failed} failed, \
         statuses {statuses}; failing {failing:?}"
    );
    // Woken past its lease: it drops every user it held, first thing, without an
    // exchange call; then places nothing for them (b and c drive them).
    let orders_of = |users: &[i64]| -> i64 {
        c.sql()
            .query_one(
                "SELECT COUNT(*) FROM paper_orders WHERE user_id = ANY($1)",
                &[&users],
            )
            .unwrap()
            .get(0)
    };
    let before = orders_of(&gone);
    let woken_at = a.log().len();
    signal_all(a, Signal::SIGCONT);
    let fenced = "lease deadline passed; the user's bots stopped here";
    wait_for(
        Duration::from_secs(10),
        "a notices it lost its users",
        || a.log_count(fenced) >= gone.len(),
    );
    let woke = Instant::now();
    while woke.elapsed() < Duration::from_secs(2) {
        assert_eq!(orders_of(&gone), before, "an order placed after the thaw");
        std::thread::sleep(Duration::from_millis(50));
    }
    let after_thaw = &a.log()[woken_at..];
    assert!(
        !after_thaw.contains("\"bot resumed\"") && !after_thaw.contains("\"bot started\""),
        "a ran a bot after it woke"
    );
    let lost = not_kept(&c, "a", &gone);
    assert!(lost.is_empty(), "b and c keep the users; not: {lost:?}");
    let duplicates = c.duplicate_client_ids();
    eprintln!(
        "after the thaw: {} fencing lines on a, {duplicates} duplicate client ids",
        a.log_count(fenced)
    );
    assert_eq!(duplicates, 0, "a client order id placed twice");
}
