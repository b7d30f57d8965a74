//! Hosts are peers (CONTRACT C18, ARCHITECTURE §11): instances of the real binary
//! on one PostgreSQL database and one Redis, each driving the bots of the users
//! whose lease it holds (`user_leases`). When one dies (`kill -9` of every
//! process) the survivors adopt its users' bots within the lease and a few
//! seconds, placing no order twice; an instance frozen past its lease (SIGSTOP)
//! notices when it wakes and places nothing.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::bots::{User, CALM};
use common::pg::{PgDb, PgServer};
use common::redis::Redis;
use common::{blitz_cmd, listening_port, wait_for, Server};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

const LEASE_SECONDS: u64 = 3;

/// One cluster at a time: each instance holds dozens of connections, and the
/// test PostgreSQL server allows about a hundred.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Fields drop in order: the instances stop before the next test's turn.
struct Cluster {
    nodes: Vec<Server>,
    db: PgDb,
    redis: Redis,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// Instance `name` on the cluster's database and Redis, in a directory of its
/// own, with one worker.
fn node(db: &PgDb, redis: &Redis, name: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("instance")).unwrap();
    let lease = LEASE_SECONDS.to_string();
    let child = blitz_cmd(dir.path())
        .arg("serve")
        .args(["--bind", "127.0.0.1:0", "--workers", "1"])
        .args(["--error-logfile", "error.log", "--pid", "blitz.pid"])
        .args(["--database", &db.url()])
        .env("REDIS_URL", redis.url())
        .env("INSTANCE_NAME", name)
        .env("BOT_LEASE_SECONDS", &lease)
        .env("RATE_LIMITS_REGISTER", "10000/hour")
        .env("BYBIT_WS_PRIVATE_URL", "ws://127.0.0.1:9/v5/private")
        .env("BINGX_WS_USER_URL", "ws://127.0.0.1:9/swap-market")
        .envs(CALM.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn blitz");
    let log = dir.path().join("error.log");
    let mut port = 0;
    wait_for(Duration::from_secs(30), "Listening at", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        port = listening_port(&text).unwrap_or(0);
        port != 0
    });
    let server = Server {
        child,
        port,
        dir,
        workers: 1,
        backing: None,
    };
    server.wait_ready(1);
    server
}

fn cluster(names: &[&str]) -> Cluster {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let db = PgServer::shared().database();
    let redis = Redis::start();
    let nodes = names.iter().map(|n| node(&db, &redis, n)).collect();
    Cluster {
        _turn: turn,
        db,
        redis,
        nodes,
    }
}

impl Cluster {
    fn sql(&self) -> postgres::Client {
        self.db.connect()
    }

    fn count(&self, sql: &str) -> i64 {
        self.sql().query_one(sql, &[]).unwrap().get(0)
    }

    /// A verified user with a token, made by the CLI on the shared database.
    fn user(&self, email: &str) -> User {
        self.user_as(email, false)
    }

    fn user_as(&self, email: &str, admin: bool) -> User {
        let cli = |args: &[&str]| {
            let out = blitz_cmd(self.nodes[0].dir.path())
                .args(args)
                .args(["--database", &self.db.url()])
                .env("REDIS_URL", self.redis.url())
                .stdin(Stdio::null())
                .output()
                .expect("run blitz");
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
        };
        let mut create = vec!["user", "create", "--email", email];
        if admin {
            create.push("--admin");
        }
        cli(&create);
        let token = cli(&["token", "create", "--email", email]);
        let id = self.count(&format!("SELECT id FROM \"user\" WHERE email = '{email}'"));
        User {
            id,
            token: token.lines().next().unwrap().trim().to_string(),
        }
    }

    /// The live holder of `uid`'s lease.
    fn holder(&self, uid: i64) -> Option<String> {
        let now = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
        let sql = format!(
            "SELECT instance FROM user_leases WHERE user_id = $1 AND expires_at_ms > {now}"
        );
        self.sql()
            .query_opt(&sql, &[&uid])
            .unwrap()
            .map(|r| r.get(0))
    }

    fn duplicate_client_ids(&self) -> i64 {
        self.count(
            "SELECT COUNT(*) FROM (SELECT user_id, client_id FROM paper_orders
             GROUP BY user_id, client_id HAVING COUNT(*) > 1) d",
        )
    }

    fn orders_of(&self, uid: i64) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM paper_orders WHERE user_id = {uid}"
        ))
    }

    /// Bot `uid`'s "resumed" events.
    fn resumed(&self, uid: i64) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM bot_events WHERE user_id = {uid} AND kind = 'resumed'"
        ))
    }
}

/// Starts `u`'s bot through instance `s`; asserts it started.
fn start(s: &Server, u: &User) {
    let r = u.call(s, "POST", "/api/bot/start", &json!({}).to_string());
    assert_eq!(r.status, 200, "start on port {}: {}", s.port, r.text());
}

/// SIGKILL to the master and each of its children: the whole instance dies at
/// once, as with a host lost.
fn kill_all(s: &Server) {
    let mut pids = s.worker_pids();
    pids.extend(s.runner_pids());
    pids.extend(common::children_with_title(s.pid(), "blitz: "));
    pids.push(s.pid());
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Every process of the instance (master and children), stopped or continued.
fn signal_all(s: &Server, sig: Signal) {
    let mut pids = common::children_with_title(s.pid(), "blitz: ");
    pids.push(s.pid());
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

#[test]
fn a_killed_instances_bots_run_again_on_the_survivors_within_the_lease() {
    let c = cluster(&["a", "b", "c"]);
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
    let c = cluster(&["a", "b"]);
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
    let c = cluster(&["a", "b"]);
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
