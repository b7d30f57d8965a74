//! Two instances of the real binary on one database and one Redis (CONTRACT C18):
//! a revocation, maintenance or banner change made on instance A holds on
//! instance B within a second, through the cluster notifications (`coord::bus`),
//! and B keeps serving from the database while Redis is down.
//!
//! B has one worker, so every request to it meets the same caches. A credential
//! or the notice is read on B just before the change (`prime`): B then holds an
//! entry it would trust for a whole second on its own, and an answer that changed
//! in less than that came through the notifications (or, with Redis down, from
//! the database: the caches trust nothing then).

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::api::{self, Browser};
use common::redis::Redis;
use common::{blitz_cmd, Options, Resp, Server};
use serde_json::{json, Value};

/// The contract's bound, and how long each cache trusts an entry on its own.
const BOUND: Duration = Duration::from_secs(1);

struct Cluster {
    a: Server,
    b: Server,
    redis: Redis,
}

fn instance(dir: tempfile::TempDir, workers: usize, redis: &str) -> Server {
    Server::start_in(
        dir,
        Options {
            workers,
            env: vec![("REDIS_URL", redis), ("ENABLE_METRICS", "true")],
            ..Options::default()
        },
    )
}

/// A on a new database; B on the same database file and secret key, in an
/// instance directory of its own (the bot runner's socket and lock live there: a
/// second instance in the same directory refuses to start). No bot runs in these
/// tests, so the two runners have nothing to share.
fn cluster() -> Cluster {
    let redis = Redis::start();
    let url = redis.url();
    let a = instance(tempfile::tempdir().unwrap(), 2, &url);
    let dir_b = tempfile::tempdir().unwrap();
    let b_instance = dir_b.path().join("instance");
    std::fs::create_dir(&b_instance).unwrap();
    for name in ["database.db", "secret_key"] {
        let shared = a.path("instance").join(name);
        std::os::unix::fs::symlink(shared, b_instance.join(name)).unwrap();
    }
    let b = instance(dir_b, 1, &url);
    Cluster { a, b, redis }
}

/// A verified user made by the CLI on the shared database; its password.
fn user(s: &Server, email: &str, admin: bool) -> String {
    let mut cmd = blitz_cmd(s.dir.path());
    cmd.args(["user", "create", "--email", email])
        .args(["--database", "instance/database.db"]);
    if admin {
        cmd.arg("--admin");
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run blitz");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Asserts that a change made on A succeeded.
fn ok(r: Resp) {
    assert!(r.status < 300, "on A: {} {}", r.status, r.text());
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn me_with(s: &Server, header: (&str, &str)) -> u16 {
    api::call(s.port, "GET", "/api/auth/me", &[header], "").status
}

fn me(s: &Server, b: &Browser) -> u16 {
    b.call(s.port, "GET", "/api/auth/me", "").status
}

/// Asks B until `done` holds; how long that took from `since`. Fails past the
/// bound (polls every 5 ms: no sleep stands for the wait).
fn until(since: Instant, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    loop {
        if done() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < BOUND * 3,
            "{what}: not seen after {:?}",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `change` on A right after B read what it changes (`prime`), then polls B
/// until `seen`. Asserts the change showed on B within the contract's second of
/// A's answer and before B's own entry would have expired; prints the time.
fn propagates(
    what: &str,
    prime: impl FnOnce(),
    change: impl FnOnce(),
    seen: impl FnMut() -> bool,
) -> Duration {
    let primed = Instant::now();
    prime();
    change();
    let answered = Instant::now();
    let took = until(answered, what, seen);
    eprintln!("{what}: seen on B {took:?} after it was made on A");
    assert!(took < BOUND, "{what}: seen on B only after {took:?}");
    assert!(
        primed.elapsed() < BOUND,
        "{what}: B's cached copy expired before the change showed ({:?})",
        primed.elapsed()
    );
    took
}

#[test]
fn session_revocations_on_one_instance_hold_on_the_other_within_a_second() {
    let c = cluster();
    let password = user(&c.a, "alice@example.com", false);
    let admin_pw = user(&c.a, "root@example.com", true);
    let admin = api::login(c.a.port, "root@example.com", &admin_pw);

    // Logout on A of a session logged in on B.
    let on_b = api::login(c.b.port, "alice@example.com", &password);
    propagates(
        "logout",
        || assert_eq!(me(&c.b, &on_b), 200),
        || ok(on_b.call(c.a.port, "POST", "/api/auth/logout", "")),
        || me(&c.b, &on_b) == 401,
    );

    // A password change on A ends the user's other sessions, B's included.
    let on_a = api::login(c.a.port, "alice@example.com", &password);
    let on_b = api::login(c.b.port, "alice@example.com", &password);
    let body = json!({"current_password": password, "new_password": "a new long password 1"});
    propagates(
        "password change",
        || assert_eq!(me(&c.b, &on_b), 200),
        || ok(on_a.call(c.a.port, "POST", "/api/auth/password", &body.to_string())),
        || me(&c.b, &on_b) == 401,
    );
    assert_eq!(me(&c.a, &on_a), 200, "the changing session stays");

    // An admin on A disables the user: their session on B ends.
    let on_b = api::login(c.b.port, "alice@example.com", "a new long password 1");
    let path = format!("/api/admin/users/{}", on_b.user_id);
    propagates(
        "admin disables the user",
        || assert_eq!(me(&c.b, &on_b), 200),
        || {
            let body = json!({"disabled": true}).to_string();
            ok(admin.call(c.a.port, "PATCH", &path, &body))
        },
        || me(&c.b, &on_b) == 401,
    );
}

#[test]
fn a_token_deleted_on_one_instance_stops_working_on_the_other_within_a_second() {
    let c = cluster();
    let password = user(&c.a, "bob@example.com", false);
    let on_b = api::login(c.b.port, "bob@example.com", &password);
    let r = on_b.call(
        c.b.port,
        "POST",
        "/api/auth/tokens",
        &json!({"name": "script"}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let auth = bearer(created["token"].as_str().expect("token"));
    let id = created["id"].as_i64().expect("id");
    let by_token = || me_with(&c.b, ("Authorization", &auth));
    propagates(
        "token deletion",
        || assert_eq!(by_token(), 200),
        || ok(on_b.call(c.a.port, "DELETE", &format!("/api/auth/tokens/{id}"), "")),
        || by_token() == 401,
    );
    assert_eq!(me_with(&c.a, ("Authorization", &auth)), 401);
}

/// `blitz user set-password` against A's database, with Redis in its environment.
fn cli_set_password(c: &Cluster, email: &str, password: &str) {
    let mut child = blitz_cmd(c.a.dir.path())
        .args(["user", "set-password", "--email", email, "--password-stdin"])
        .args(["--database", "instance/database.db"])
        .env("REDIS_URL", c.redis.url())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run blitz");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("write the password");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for blitz");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("could not tell"), "{said}");
}

#[test]
fn a_password_set_by_the_cli_ends_sessions_on_every_instance_within_a_second() {
    let c = cluster();
    let password = user(&c.a, "erin@example.com", false);
    let on_b = api::login(c.b.port, "erin@example.com", &password);
    propagates(
        "blitz user set-password",
        || assert_eq!(me(&c.b, &on_b), 200),
        || cli_set_password(&c, "erin@example.com", "another long password 2"),
        || me(&c.b, &on_b) == 401,
    );
}

fn status(s: &Server) -> Value {
    let r = s.get("/api/status");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn admin_post(c: &Cluster, admin: &Browser, path: &str, body: Value) {
    ok(admin.call(c.a.port, "POST", path, &body.to_string()));
}

#[test]
fn maintenance_and_the_banner_set_on_one_instance_hold_on_the_other_within_a_second() {
    let c = cluster();
    let admin_pw = user(&c.a, "root@example.com", true);
    let password = user(&c.a, "carol@example.com", false);
    let admin = api::login(c.a.port, "root@example.com", &admin_pw);
    let carol = api::login(c.b.port, "carol@example.com", &password);
    let paused = || {
        let r = carol.call(c.b.port, "POST", "/api/bot/start", "");
        r.status == 503 && r.json()["error"] == "Service under maintenance"
    };
    assert!(!paused(), "no maintenance yet");

    let on = |s: &Server| status(s)["maintenance_enabled"] == true;
    propagates(
        "maintenance on",
        || assert!(!on(&c.b)),
        || admin_post(&c, &admin, "/admin/maintenance/enable", json!({})),
        || on(&c.b),
    );
    assert!(paused(), "B pauses bot commands");
    propagates(
        "maintenance off",
        || assert!(on(&c.b)),
        || admin_post(&c, &admin, "/admin/maintenance/disable", json!({})),
        || !on(&c.b),
    );
    assert!(!paused(), "B takes bot commands again");

    let banner = |s: &Server| {
        status(s)["banner_message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    propagates(
        "banner set",
        || assert_eq!(banner(&c.b), ""),
        || {
            admin_post(
                &c,
                &admin,
                "/admin/banner",
                json!({"message": "Upgrade at 6"}),
            )
        },
        || banner(&c.b) == "Upgrade at 6",
    );
    propagates(
        "banner cleared",
        || assert_eq!(banner(&c.b), "Upgrade at 6"),
        || admin_post(&c, &admin, "/admin/banner/clear", json!({})),
        || banner(&c.b).is_empty(),
    );
}

/// `blitz_redis_errors_total{op="bus"}` on `s`.
fn bus_errors(s: &Server) -> f64 {
    let text = s.get("/metrics").text();
    let line = text
        .lines()
        .find(|l| l.starts_with("blitz_redis_errors_total{op=\"bus\"}"))
        .unwrap_or_else(|| panic!("no bus errors series in:\n{text}"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn with_redis_down_the_other_instance_reads_the_database_and_keeps_serving() {
    let mut c = cluster();
    let password = user(&c.a, "dave@example.com", false);
    let first = api::login(c.b.port, "dave@example.com", &password);
    let second = api::login(c.b.port, "dave@example.com", &password);
    c.redis.kill();
    common::wait_for(Duration::from_secs(5), "B sees Redis down", || {
        c.b.get("/readyz").json()["checks"]["redis"]["status"] == "error"
    });
    assert_eq!(me(&c.b, &second), 200, "B keeps serving");
    propagates(
        "logout with Redis down",
        || assert_eq!(me(&c.b, &first), 200),
        || ok(first.call(c.a.port, "POST", "/api/auth/logout", "")),
        || me(&c.b, &first) == 401,
    );
    assert_eq!(me(&c.b, &second), 200, "only the revoked session ends");
    let failed = bus_errors(&c.a);
    assert!(failed >= 1.0, "A's failed publish is counted: {failed}");

    // Back up (empty): the notifications work again.
    c.redis = c.redis.restart();
    for s in [&c.a, &c.b] {
        common::wait_for(Duration::from_secs(10), "Redis up again", || {
            s.get("/readyz").json()["checks"]["redis"]["status"] == "ok"
        });
    }
    propagates(
        "logout with Redis back",
        || assert_eq!(me(&c.b, &second), 200),
        || ok(second.call(c.a.port, "POST", "/api/auth/logout", "")),
        || me(&c.b, &second) == 401,
    );
}
