//! Coordination, against the binary, for both backends: exact rate limits across workers
//! and instances, the per-user guard, and the fallback from Redis to the local
//! tables when Redis is unreachable or dies mid-run.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::api::call;
use common::bots::{count, user, User, CALM};
use common::client::Resp;
use common::redis::Redis;
use common::{blitz_cmd, wait_for, Conn, Options, ReservedPort, Server};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// Longest a request may take while Redis does not answer. The Redis timeout is
/// 250 ms; without it a request would wait for good (until the client's 15 s read
/// timeout). The bound sits far from both, so it proves the timeout without timing
/// a busy machine.
const BOUNDED: Duration = Duration::from_secs(5);

const GUARD_BODY: &str = r#"{"message":"Bot operation already in progress for this user. Please wait.","retry_after":30,"success":false}"#;

/// A server whose bot market is calm and whose limits are `limits` (the rest high).
fn server(workers: usize, limits: &[(&'static str, &'static str)], redis: Option<&str>) -> Server {
    server_with(workers, limits, redis, Vec::new())
}

fn server_with(
    workers: usize,
    limits: &[(&'static str, &'static str)],
    redis: Option<&str>,
    args: Vec<&'static str>,
) -> Server {
    let mut env: Vec<(&str, &str)> = CALM.to_vec();
    env.extend_from_slice(limits);
    // The later value of a variable wins (`Command::envs`).
    let url = redis.map(|u| Box::leak(u.to_string().into_boxed_str()) as &str);
    if let Some(url) = url {
        env.push(("REDIS_URL", url));
    }
    Server::with(Options { workers, env, args })
}

fn get(s: &Server, u: &User) -> Resp {
    u.call(s, "GET", "/api/bot/status", "")
}

/// `n` requests made by `f` at once, each on its own connection.
fn at_once(n: usize, f: impl Fn() -> Resp + Sync) -> Vec<Resp> {
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..n).map(|_| sc.spawn(&f)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn num(r: &Resp, name: &str) -> i64 {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} on {} {}", r.status, r.text()))
        .parse()
        .unwrap()
}

/// The rate limit's 429, exactly: body, `Retry-After` equal to `retry_after`, headers.
fn assert_limited(r: &Resp, limit: i64) {
    assert_eq!(r.status, 429, "{}", r.text());
    let body = r.json();
    let retry = body["retry_after"].as_i64().unwrap();
    assert_eq!(
        body,
        json!({"error": "Rate limit exceeded", "retry_after": retry})
    );
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(num(r, "retry-after"), retry);
    assert_eq!(num(r, "x-ratelimit-limit"), limit);
    assert_eq!(num(r, "x-ratelimit-remaining"), 0);
    assert!((1..=60).contains(&num(r, "x-ratelimit-reset")));
}

fn exact_per_user_limit(redis: Option<&str>) {
    let s = server(4, &[("RATE_LIMITS_STATUS", "5/minute")], redis);
    let (a, b) = (user(&s, "a@x.io", false), user(&s, "b@x.io", false));
    let answers = at_once(16, || get(&s, &a));
    let ok: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 5, "exactly N of 16 at once");
    let mut remaining: Vec<i64> = ok.iter().map(|r| num(r, "x-ratelimit-remaining")).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2, 3, 4], "each admission saw the others");
    for r in &ok {
        assert_eq!(num(r, "x-ratelimit-limit"), 5);
        assert!((1..=60).contains(&num(r, "x-ratelimit-reset")));
    }
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_limited(r, 5);
    }
    // Later requests stay refused; another user has a window of their own.
    assert_limited(&get(&s, &a), 5);
    assert_eq!(get(&s, &b).status, 200);
    // Anonymous callers count by address: five 401s (limited), then 429.
    for _ in 0..5 {
        let r = call(s.port, "GET", "/api/bot/status", &[], "");
        assert_eq!(r.status, 401);
        assert_eq!(num(&r, "x-ratelimit-limit"), 5);
    }
    assert_limited(&call(s.port, "GET", "/api/bot/status", &[], ""), 5);
    // Admins are exempt: no refusals, no headers.
    let admin = user(&s, "root@x.io", true);
    for _ in 0..12 {
        let r = get(&s, &admin);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), None);
    }
}

#[test]
fn per_user_limit_is_exact_across_workers_local() {
    exact_per_user_limit(None);
}

#[test]
fn per_user_limit_is_exact_across_workers_redis() {
    let redis = Redis::start();
    exact_per_user_limit(Some(&redis.url()));
    assert_ne!(
        redis.cmd(&["KEYS", "blitz:rl:status:*"]),
        "*0",
        "Redis kept the windows"
    );
}

#[test]
fn redis_with_a_password_and_a_database_number() {
    let redis = Redis::with_password("s3cret pass");
    let url = format!("redis://:s3cret%20pass@127.0.0.1:{}/3", redis.port);
    let s = server(2, &[("RATE_LIMITS_STATUS", "2/minute")], Some(&url));
    let u = user(&s, "a@x.io", false);
    let codes: Vec<u16> = (0..3).map(|_| get(&s, &u).status).collect();
    assert_eq!(codes, [200, 200, 429]);
    assert_eq!(readyz(&s)["checks"]["redis"]["status"], "ok");
    let key = format!("blitz:rl:status:u:{}", u.id);
    assert!(redis.cmd_in(3, &["KEYS", "blitz:rl:*"]).contains(&key));
    assert!(
        !s.log().contains("s3cret"),
        "the password stays out of the log"
    );
}

#[test]
fn the_global_ceiling_spans_users() {
    let s = server(
        3,
        &[
            ("RATE_LIMITS_STATUS", "5/minute"),
            ("RATE_LIMITS_GLOBAL", "8/minute"),
        ],
        None,
    );
    let users: Vec<User> = (0..3)
        .map(|i| user(&s, &format!("u{i}@x.io"), false))
        .collect();
    let mut ok = 0;
    for u in &users {
        for _ in 0..4 {
            let r = get(&s, u);
            match r.status {
                200 => ok += 1,
                _ => assert_limited(&r, 8),
            }
        }
    }
    assert_eq!(ok, 8, "the ceiling of 8 across all users");
    // Start has a ceiling of its own.
    assert_eq!(
        users[2].call(&s, "POST", "/api/bot/start", "{}").status,
        200
    );
}

#[test]
fn recycling_workers_does_not_reset_a_limit() {
    let s = server_with(
        2,
        &[("RATE_LIMITS_STATUS", "30/minute")],
        None,
        vec!["--max-requests", "20"],
    );
    let u = user(&s, "a@x.io", false);
    let ok = (0..70).filter(|_| get(&s, &u).status == 200).count();
    assert_eq!(ok, 30);
    assert!(
        s.log().matches("max requests reached").count() >= 2,
        "workers were recycled meanwhile"
    );
}

#[test]
fn invalid_limits_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("RATE_LIMITS_STATUS", "lots/minute"),
        ("RATE_LIMITS_GLOBAL", "0/minute"),
        ("RATE_LIMITS_START", "100001/minute"),
        ("RATE_LIMITS_STOP", "5/fortnight"),
    ] {
        let out = blitz_cmd(dir.path())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name), "{name}: {err}");
    }
}

fn one_start_of_sixteen(redis: Option<&str>) {
    let s = server(4, &[], redis);
    let u = user(&s, "a@x.io", false);
    let answers = at_once(16, || u.call(&s, "POST", "/api/bot/start", "{}"));
    let started = answers.iter().filter(|r| r.status == 200).count();
    let guarded = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!(started, 1);
    for r in &answers {
        match r.status {
            200 => assert_eq!(r.json()["status"], "started"),
            409 => assert_eq!(r.json()["status"], "already_running"),
            429 => {
                assert_eq!(r.text(), GUARD_BODY);
                assert_eq!(r.header("retry-after"), Some("30"));
            }
            other => panic!("{other}: {}", r.text()),
        }
    }
    assert!(guarded >= 1, "the guard answered some of the 15");
}

#[test]
fn guard_one_start_of_sixteen_local() {
    one_start_of_sixteen(None);
}

#[test]
fn guard_one_start_of_sixteen_redis() {
    let redis = Redis::start();
    one_start_of_sixteen(Some(&redis.url()));
}

/// A start with a bounded wait for its answer: `None` if it did not come in time.
fn start_within(s: &Server, u: &User, wait: Duration) -> Option<Resp> {
    let mut c = Conn::open(s.port).ok()?;
    c.stream.set_read_timeout(Some(wait)).ok()?;
    let raw = format!(
        "POST /api/bot/start HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\n\r\n{{}}",
        u.token
    );
    c.send(raw.as_bytes()).ok()?;
    c.read_response(false).ok()
}

/// With the runner stopped, starts hang in a worker holding `u`'s guard: returns
/// once one hangs and the next is refused by the guard.
fn hold_guard(s: &Server, u: &User) {
    wait_for(Duration::from_secs(20), "the guard to be held", || {
        start_within(s, u, Duration::from_millis(700)).is_some_and(|r| r.text() == GUARD_BODY)
    });
}

fn signal(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap();
}

/// Kills every worker while one holds `u`'s guard; returns how long after the kill
/// a start stopped being refused by the guard.
fn guard_of_killed_worker(s: &Server, u: &User) -> Duration {
    let runner = s.runner_pids()[0];
    signal(runner, Signal::SIGSTOP);
    hold_guard(s, u);
    let old = s.worker_pids();
    for pid in &old {
        signal(*pid, Signal::SIGKILL);
    }
    let killed = Instant::now();
    signal(runner, Signal::SIGCONT);
    wait_for(Duration::from_secs(20), "new workers", || {
        let now = s.worker_pids();
        now.len() == s.workers && now.iter().all(|p| !old.contains(p))
    });
    let mut last = String::new();
    wait_for(Duration::from_secs(20), "the guard to be reclaimed", || {
        last = u.call(s, "POST", "/api/bot/start", "{}").text();
        last != GUARD_BODY
    });
    let status = serde_json::from_str::<Value>(&last).unwrap()["status"].clone();
    assert!(
        status == "started" || status == "already_running",
        "a runner outcome: {last}"
    );
    killed.elapsed()
}

#[test]
fn guard_of_a_killed_worker_is_reclaimed_local() {
    let s = server(2, &[], None);
    let u = user(&s, "a@x.io", false);
    // The owner is dead: reclaimed as soon as a worker answers again.
    guard_of_killed_worker(&s, &u);
}

#[test]
fn guard_of_a_killed_worker_is_reclaimed_redis() {
    let redis = Redis::start();
    let s = server_with(2, &[], Some(&redis.url()), vec!["--timeout", "4"]);
    let u = user(&s, "a@x.io", false);
    let after = guard_of_killed_worker(&s, &u);
    assert!(
        after <= Duration::from_secs(6),
        "expired with --timeout 4: {after:?}"
    );
}

#[test]
fn two_instances_share_one_limit_and_one_guard_through_redis() {
    let redis = Redis::start();
    let limits = [("RATE_LIMITS_STATUS", "5/minute")];
    let a = server(2, &limits, Some(&redis.url()));
    let b = server(2, &limits, Some(&redis.url()));
    let (ua, ub) = (user(&a, "a@x.io", false), user(&b, "a@x.io", false));
    assert_eq!(ua.id, ub.id, "the same user id on both instances");
    let ok = (0..4).filter(|_| get(&a, &ua).status == 200).count()
        + (0..4).filter(|_| get(&b, &ub).status == 200).count();
    assert_eq!(ok, 5, "one window across both instances");
    // A start hanging on instance A holds the guard that B's start meets.
    let runner = a.runner_pids()[0];
    signal(runner, Signal::SIGSTOP);
    hold_guard(&a, &ua);
    assert_eq!(
        ub.call(&b, "POST", "/api/bot/start", "{}").text(),
        GUARD_BODY
    );
    signal(runner, Signal::SIGCONT);
    // A's hanging start goes through and releases the guard: B starts its own bot.
    // (Both users' status windows are used up: read A's database instead.)
    let running = "SELECT COUNT(*) FROM user_bots WHERE status = 'running'";
    wait_for(Duration::from_secs(10), "A's bot to start", || {
        count(&a, running) == 1
    });
    let mut last = String::new();
    wait_for(Duration::from_secs(10), "B's start", || {
        last = ub.call(&b, "POST", "/api/bot/start", "{}").text();
        last != GUARD_BODY
    });
    assert_eq!(
        serde_json::from_str::<Value>(&last).unwrap()["status"],
        "started"
    );
}

fn readyz(s: &Server) -> Value {
    let r = s.get("/readyz");
    assert_eq!(r.status, 200, "Redis never makes the instance unready");
    r.json()
}

/// Limits stay exact through the local tables while Redis does not answer.
fn falls_back(redis_url: &str) {
    let s = server(2, &[("RATE_LIMITS_STATUS", "5/minute")], Some(redis_url));
    let u = user(&s, "a@x.io", false);
    let mut slowest = Duration::ZERO;
    let mut ok = 0;
    for _ in 0..8 {
        let t = Instant::now();
        if get(&s, &u).status == 200 {
            ok += 1;
        }
        slowest = slowest.max(t.elapsed());
    }
    assert_eq!(ok, 5);
    eprintln!("slowest request while Redis does not answer: {slowest:?}");
    assert!(slowest < BOUNDED, "bounded by the timeout: {slowest:?}");
    assert_eq!(readyz(&s)["checks"]["redis"]["status"], "error");
    assert!(s.log().contains("Redis unreachable"));
}

#[test]
fn redis_refusing_connections_from_the_start() {
    // Reserved and never listened on: every connect is refused, and no other test
    // can start a server there meanwhile.
    let refused = ReservedPort::new();
    falls_back(&format!("redis://{}/0", refused.addr()));
}

#[test]
fn redis_that_never_answers() {
    // Connections are accepted by the kernel, and nothing ever replies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    falls_back(&format!("redis://127.0.0.1:{port}/0"));
    drop(silent);
}

/// Requests keep succeeding after Redis fails; returns how long the first one took.
fn keeps_serving(s: &Server, u: &User) -> Duration {
    let mut first = None;
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(get(s, u).status, 200);
        let took = t.elapsed();
        assert!(took < BOUNDED, "bounded by the timeout: {took:?}");
        first.get_or_insert(took);
    }
    first.unwrap_or_default()
}

fn back_on_redis(s: &Server, u: &User, redis: &Redis) {
    wait_for(Duration::from_secs(10), "Redis to be used again", || {
        let _ = get(s, u);
        readyz(s)["checks"]["redis"]["status"] == "ok" && redis.cmd(&["KEYS", "blitz:rl:*"]) != "*0"
    });
}

#[test]
fn redis_hung_or_killed_mid_run_and_back() {
    let mut redis = Redis::start();
    let s = server(2, &[], Some(&redis.url()));
    let u = user(&s, "a@x.io", false);
    assert_eq!(get(&s, &u).status, 200);
    assert_eq!(readyz(&s)["checks"]["redis"]["status"], "ok");
    assert_ne!(redis.cmd(&["KEYS", "blitz:rl:*"]), "*0");

    // Hung: the first request waits out the 250 ms timeout, the rest go local.
    signal(redis.pid(), Signal::SIGSTOP);
    let first = keeps_serving(&s, &u);
    eprintln!("first request after Redis hung: {first:?}");
    assert!(
        first >= Duration::from_millis(250),
        "it did wait for Redis: {first:?}"
    );
    assert_eq!(readyz(&s)["checks"]["redis"]["status"], "error");
    signal(redis.pid(), Signal::SIGCONT);
    redis.cmd(&["FLUSHALL"]);
    back_on_redis(&s, &u, &redis);

    // Killed: the reset is seen at once.
    redis.kill();
    let first = keeps_serving(&s, &u);
    eprintln!("first request after Redis was killed: {first:?}");
    assert_eq!(readyz(&s)["checks"]["redis"]["status"], "error");
    let redis = redis.restart();
    back_on_redis(&s, &u, &redis);
    assert_eq!(
        s.log().matches("Redis unreachable").count(),
        2,
        "one line per outage"
    );
    assert_eq!(s.log().matches("Redis reachable again").count(), 2);
}
