//! Zero-downtime fault scenarios under load, against the real binary: binary upgrade
//! (USR2 then TERM of the old master), repeated and slow reloads, a release that
//! never becomes ready, `--reuse-port` lanes under recycling and TTOU/TTIN, and
//! memory-based recycling. Every request's outcome is counted; each test prints a
//! `FAULT` line (scenario, requests, failures, p99, max) for the record. Failures
//! are asserted, latencies only reported: where a stall is the fault, the master's
//! log proves its absence (`a_ready_worker_at_every_moment`).

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::load::{Load, Mode};
use common::{alive, children_with_title, wait_for, Options, Server};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Replays the master's log: whenever a worker exited, another one that had logged
/// "worker ready" still ran. A worker stops accepting before the master reaps it, so
/// a correct hand-over always passes; a gap in which no ready worker served fails
/// however short it was, with no latency threshold.
fn a_ready_worker_at_every_moment(log: &str) {
    let mut serving = std::collections::BTreeSet::new();
    let mut exits = 0;
    for line in log.lines() {
        let Ok(j) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if j["role"] != "master" {
            continue;
        }
        let (msg, pid) = (j["msg"].as_str().unwrap_or(""), j["child_pid"].to_string());
        if msg == "worker ready" {
            serving.insert(pid);
        } else if msg == "worker exited" || msg.starts_with("worker (pid:") {
            exits += 1;
            serving.remove(&pid);
            assert!(
                !serving.is_empty(),
                "no ready worker left after: {line}\n{log}"
            );
        }
    }
    assert!(
        exits > 0,
        "no worker exit in the log: nothing was checked\n{log}"
    );
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Error-log lines (JSON) written by process `pid` with message `msg`.
fn logged_by(log: &str, pid: i32, msg: &str) -> usize {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["pid"] == pid && j["msg"] == msg)
        .count()
}

/// A master we did not start ourselves (the USR2 successor): stopped with TERM at
/// the end of the test, killed with its children if the test fails first.
struct Adopted(i32);

impl Drop for Adopted {
    fn drop(&mut self) {
        if !alive(self.0) {
            return;
        }
        let kids = children_with_title(self.0, "blitz: ");
        let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        for k in kids {
            let _ = kill(Pid::from_raw(k), Signal::SIGKILL);
        }
    }
}

#[test]
fn usr2_upgrade_then_term_of_the_old_master_fails_no_request() {
    usr2_upgrade(&[], "USR2 + TERM old master");
}

#[test]
fn usr2_upgrade_hands_over_reuse_port_lanes() {
    usr2_upgrade(&["--reuse-port"], "USR2 + TERM old master, --reuse-port");
}

fn usr2_upgrade(args: &[&str], scenario: &str) {
    let mut s = Server::with(Options {
        workers: 2,
        args: args.to_vec(),
        env: common::bots::CALM.to_vec(),
    });
    let lanes = common::listening_sockets(s.port);
    // A running bot must be handed from the old runner to the new one.
    let trader = common::bots::user(&s, "trader@example.com", false);
    let r = trader.call(&s, "POST", "/api/bot/start", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    common::bots::wait_status(&s, &trader, "running");
    let orders = common::bots::open_orders(&s, trader.id);
    let old = s.pid();
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    let keep = Load::start(s.port, 2, Mode::KeepAlive, "/livez");
    close.wait_progress(200);
    s.signal(Signal::SIGUSR2);
    let (pidfile, oldbin) = (s.path("blitz.pid"), s.path("blitz.pid.oldbin"));
    let mut new = 0;
    wait_for(Duration::from_secs(10), "pidfile and .oldbin", || {
        new = read_pid(&pidfile).unwrap_or(0);
        read_pid(&oldbin) == Some(old) && new != 0 && new != old
    });
    let successor = Adopted(new);
    assert!(s.log().contains("Binary upgrade: started new master"));
    wait_for(
        Duration::from_secs(20),
        "new master's workers ready",
        || {
            let log = s.log();
            children_with_title(new, "blitz: worker ").len() == 2
                && logged_by(&log, new, "worker ready") >= 2
        },
    );
    // The new master told the old one (and systemd) that it serves.
    wait_for(Duration::from_secs(10), "old master told", || {
        s.log()
            .contains("Binary upgrade: the new master is serving")
    });
    // Both generations serve the same sockets; the new bot runner waits for the old.
    wait_for(Duration::from_secs(10), "new runner on standby", || {
        s.log()
            .contains("waiting for the previous instance to stop (binary upgrade)")
    });
    // A second upgrade waits until the old master is gone (both would be .oldbin).
    kill(Pid::from_raw(new), Signal::SIGUSR2).unwrap();
    wait_for(Duration::from_secs(10), "second USR2 refused", || {
        s.log().contains("still runs; TERM it first")
    });
    close.wait_progress(200);
    s.signal(Signal::SIGTERM);
    assert_eq!(
        s.wait_exit(Duration::from_secs(20)),
        Some(0),
        "old master exit"
    );
    assert!(
        !oldbin.exists(),
        "the old master removed its .oldbin pidfile"
    );
    assert_eq!(
        read_pid(&pidfile),
        Some(new),
        "the pidfile names the new master"
    );
    wait_for(Duration::from_secs(10), "new runner took over", || {
        s.log()
            .contains("the previous instance has stopped; taking over")
    });
    wait_for(
        Duration::from_secs(10),
        "readyz from the new master",
        || common::client::try_get(s.port, "/readyz").is_ok_and(|r| r.status == 200),
    );
    close.wait_progress(300);
    keep.wait_progress(100);
    wait_for(
        Duration::from_secs(20),
        "the new runner resumed the bot",
        || common::bots::count(&s, "SELECT COUNT(*) FROM bot_events WHERE kind = 'resumed'") == 1,
    );
    assert_eq!(trader.status(&s)["status"], "running");
    assert_eq!(
        common::bots::open_orders(&s, trader.id),
        orders,
        "no order placed twice"
    );
    assert_eq!(
        common::listening_sockets(s.port),
        lanes,
        "the same listening sockets"
    );
    close.assert_no_failures(&format!("{scenario} (close)"));
    keep.assert_no_failures(&format!("{scenario} (keep-alive)"));
    // The runner socket survived the hand-over: a bot command is answered.
    let r = trader.call(&s, "POST", "/api/bot/stop", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    kill(Pid::from_raw(new), Signal::SIGTERM).unwrap();
    wait_for(Duration::from_secs(20), "new master stopped", || {
        !alive(new)
    });
    assert!(!pidfile.exists(), "the new master removed its pidfile");
    drop(successor);
}

#[test]
fn a_failed_upgrade_keeps_the_old_master_and_its_pidfile() {
    let s = Server::with(Options {
        workers: 1,
        ..Options::default()
    });
    // The new master cannot start: its database path is a directory.
    let bad = s.path("instance/database.db");
    let moved = s.path("moved.db");
    std::fs::rename(&bad, &moved).unwrap();
    std::fs::create_dir(&bad).unwrap();
    s.signal(Signal::SIGUSR2);
    wait_for(Duration::from_secs(20), "upgrade failure logged", || {
        s.log().contains("Binary upgrade failed")
    });
    assert_eq!(read_pid(&s.path("blitz.pid")), Some(s.pid()));
    assert!(!s.path("blitz.pid.oldbin").exists());
    assert_eq!(s.get("/healthz").status, 200);
}

#[test]
fn three_hups_in_a_row_fail_no_request() {
    let s = Server::with(Options {
        workers: 2,
        ..Options::default()
    });
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    let keep = Load::start(s.port, 2, Mode::KeepAlive, "/livez");
    close.wait_progress(200);
    close.reset_latency();
    for round in 1..=3 {
        let before = s.worker_pids();
        s.signal(Signal::SIGHUP);
        wait_for(Duration::from_secs(20), "workers replaced", || {
            let now = s.worker_pids();
            now.len() == 2 && now.iter().all(|p| !before.contains(p))
        });
        wait_for(Duration::from_secs(10), "reload complete", || {
            s.log_count("Reload complete") >= round
        });
    }
    close.wait_progress(200);
    keep.wait_progress(50);
    close.assert_no_failures("3 HUPs (close)");
    keep.assert_no_failures("3 HUPs (keep-alive)");
}

#[test]
fn hup_with_a_slow_booting_release_keeps_serving_without_stalls() {
    let env = tempfile::NamedTempFile::new().unwrap();
    let env_path = env.path().to_str().unwrap().to_string();
    let s = Server::with(Options {
        workers: 2,
        args: vec!["--env-file", &env_path],
        ..Options::default()
    });
    let old = s.worker_pids();
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    close.wait_progress(200);
    close.reset_latency();
    std::fs::write(env.path(), "BLITZ_TEST_BOOT_DELAY_MS=1500\n").unwrap();
    let hup = Instant::now();
    s.signal(Signal::SIGHUP);
    // While the first new worker boots, both old ones still serve.
    wait_for(Duration::from_secs(5), "a new worker booting", || {
        s.worker_pids().len() == 3
    });
    assert!(
        old.iter().all(|p| alive(*p)),
        "old workers kept while booting"
    );
    close.wait_progress(100);
    wait_for(Duration::from_secs(20), "all replaced", || {
        let now = s.worker_pids();
        now.len() == 2 && now.iter().all(|p| !old.contains(p))
    });
    let took = hup.elapsed();
    assert!(
        took >= Duration::from_millis(3000),
        "two boots of 1.5 s: {took:?}"
    );
    close.wait_progress(100);
    // Latency is in the FAULT record; a stall is proven absent by the hand-over
    // order: an old worker retires only once its replacement is ready.
    close.assert_no_failures("HUP, workers 1.5 s slow to boot");
    a_ready_worker_at_every_moment(&s.log());
}

#[test]
fn a_release_that_never_becomes_ready_leaves_the_old_workers_serving() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let env = dir.path().join("blitz.env");
    std::fs::write(&env, "").unwrap();
    let s = Server::with(Options {
        workers: 2,
        args: vec!["--env-file", env.to_str().unwrap(), "--timeout", "2"],
        env: vec![("NOTIFY_SOCKET", notify.to_str().unwrap())],
    });
    let old = s.worker_pids();
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    close.wait_progress(200);
    // The new release hangs at boot: `--timeout` kills it, the back-off retries.
    std::fs::write(&env, "BLITZ_TEST_BOOT_DELAY_MS=600000\n").unwrap();
    s.signal(Signal::SIGHUP);
    let mut buf = [0u8; 4096];
    let status = loop {
        let n = sock
            .recv(&mut buf)
            .expect("a STATUS= naming the failed boot");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.starts_with("STATUS=") && m.contains("failed to boot") {
            break m;
        }
    };
    assert!(status.contains("previous workers keep serving"), "{status}");
    assert!(s.log().contains("worker failed to boot"));
    assert!(
        old.iter().all(|p| alive(*p)),
        "old generation still serving"
    );
    close.wait_progress(200);
    // A fixed release rolls out normally.
    std::fs::write(&env, "").unwrap();
    s.signal(Signal::SIGHUP);
    wait_for(Duration::from_secs(90), "fixed release rolled out", || {
        let now = s.worker_pids();
        now.len() == 2 && now.iter().all(|p| !old.contains(p))
    });
    close.wait_progress(100);
    close.assert_no_failures("HUP to a release that never becomes ready, then a fix");
}

#[test]
fn reuse_port_lanes_survive_recycling_ttou_and_ttin() {
    let s = Server::with(Options {
        workers: 3,
        args: vec!["--reuse-port", "--max-requests", "60"],
        ..Options::default()
    });
    assert_eq!(
        common::listening_sockets(s.port),
        3,
        "one SO_REUSEPORT lane per worker"
    );
    let close = Load::start(s.port, 6, Mode::Close, "/healthz");
    let first = s.worker_pids();
    close.wait_progress(1500);
    let recycled = s.log().matches("max requests reached").count();
    assert!(recycled >= 6, "workers recycled: {recycled}");
    assert!(s.worker_pids().iter().any(|p| !first.contains(p)));
    // Fewer workers than lanes: a lane is only given up once another worker
    // that serves it is ready, so no connection waits on an unserved lane.
    s.signal(Signal::SIGTTOU);
    wait_for(Duration::from_secs(15), "two workers", || {
        s.worker_pids().len() == 2 && s.log().contains("Number of workers set to 2")
    });
    close.wait_progress(1000);
    s.signal(Signal::SIGTTIN);
    wait_for(Duration::from_secs(15), "three workers", || {
        s.worker_pids().len() == 3
    });
    close.wait_progress(1000);
    assert_eq!(
        common::listening_sockets(s.port),
        3,
        "lanes kept across respawns"
    );
    // A lane left without a worker would stall its connections, not fail them:
    // for good, it would fail them at the clients' read timeout; a brief stall
    // shows in the p99 of the FAULT record.
    close.assert_no_failures("--reuse-port with max-requests 60, TTOU, TTIN");
}

#[test]
fn workers_past_max_worker_memory_are_replaced_gracefully() {
    let s = Server::with(Options {
        workers: 2,
        // 1 MB: every worker is past it, so each is replaced about once a second.
        args: vec!["--max-worker-memory", "1"],
        ..Options::default()
    });
    let first = s.worker_pids();
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    wait_for(Duration::from_secs(20), "both workers replaced", || {
        let now = s.worker_pids();
        now.len() >= 2 && now.iter().all(|p| !first.contains(p))
    });
    assert!(s
        .log()
        .contains("worker past --max-worker-memory; replacing it"));
    close.wait_progress(200);
    close.assert_no_failures("--max-worker-memory recycling");
}

#[test]
fn winch_with_reuse_port_stops_every_worker_and_hup_brings_them_back() {
    let s = Server::with(Options {
        workers: 2,
        args: vec!["--reuse-port"],
        ..Options::default()
    });
    s.signal(Signal::SIGWINCH);
    wait_for(Duration::from_secs(15), "no workers", || {
        s.worker_pids().is_empty()
    });
    s.signal(Signal::SIGHUP);
    wait_for(Duration::from_secs(15), "two workers again", || {
        s.worker_pids().len() == 2
    });
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    close.wait_progress(300);
    close.assert_no_failures("--reuse-port after WINCH and HUP");
}

/// Starts an upgrade whose new workers take `delay_ms` to boot; returns the new
/// master's pid once its pidfile is written.
fn usr2_with_slow_workers(s: &Server, env: &std::path::Path, delay_ms: u64) -> i32 {
    std::fs::write(env, format!("BLITZ_TEST_BOOT_DELAY_MS={delay_ms}\n")).unwrap();
    let old = s.pid();
    s.signal(Signal::SIGUSR2);
    let mut new = 0;
    wait_for(Duration::from_secs(10), "new master's pidfile", || {
        new = read_pid(&s.path("blitz.pid")).unwrap_or(0);
        new != 0 && new != old
    });
    new
}

#[test]
fn term_during_an_upgrade_waits_until_the_new_master_serves() {
    let env = tempfile::NamedTempFile::new().unwrap();
    let env_arg = env.path().to_str().unwrap().to_string();
    let mut s = Server::with(Options {
        workers: 2,
        args: vec!["--env-file", &env_arg],
        ..Options::default()
    });
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    close.wait_progress(200);
    let new = Adopted(usr2_with_slow_workers(&s, env.path(), 1500));
    // TERM at once: the new master's workers are still booting.
    s.signal(Signal::SIGTERM);
    wait_for(Duration::from_secs(5), "stop deferred", || {
        s.log()
            .contains("TERM deferred until the new master is serving")
    });
    assert!(alive(s.pid()), "the old master waits");
    assert_eq!(s.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(
        s.log()
            .contains("Binary upgrade: the new master is serving"),
        "the old master stopped only after the new one served"
    );
    close.wait_progress(300);
    close.assert_no_failures("TERM of the old master while the new one boots");
    kill(Pid::from_raw(new.0), Signal::SIGTERM).unwrap();
    wait_for(Duration::from_secs(20), "new master stopped", || {
        !alive(new.0)
    });
}

#[test]
fn rolling_back_an_upgrade_by_stopping_the_new_master_keeps_the_old_one_serving() {
    let env = tempfile::NamedTempFile::new().unwrap();
    let env_arg = env.path().to_str().unwrap().to_string();
    let s = Server::with(Options {
        workers: 2,
        args: vec!["--env-file", &env_arg],
        ..Options::default()
    });
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    let keep = Load::start(s.port, 2, Mode::KeepAlive, "/livez");
    close.wait_progress(200);
    let new = Adopted(usr2_with_slow_workers(&s, env.path(), 0));
    wait_for(Duration::from_secs(20), "new master serving", || {
        s.log()
            .contains("Binary upgrade: the new master is serving")
    });
    close.wait_progress(200);
    // Roll back: the new master stops; the shared sockets must stay open and
    // unfrozen, and the runner socket in place.
    kill(Pid::from_raw(new.0), Signal::SIGTERM).unwrap();
    wait_for(Duration::from_secs(20), "new master gone", || !alive(new.0));
    wait_for(Duration::from_secs(10), "old master took back", || {
        s.log().contains("this one keeps serving")
    });
    assert_eq!(read_pid(&s.path("blitz.pid")), Some(s.pid()));
    assert!(!s.path("blitz.pid.oldbin").exists());
    assert!(s.path("instance/bot-runner.sock").exists());
    close.wait_progress(500);
    keep.wait_progress(100);
    close.assert_no_failures("USR2, then TERM of the new master (roll-back) (close)");
    keep.assert_no_failures("USR2, then TERM of the new master (roll-back) (keep-alive)");
    wait_for(Duration::from_secs(10), "readyz", || {
        common::client::try_get(s.port, "/readyz").is_ok_and(|r| r.status == 200)
    });
}

#[test]
fn a_second_hup_during_a_slow_boot_never_leaves_no_worker() {
    let env = tempfile::NamedTempFile::new().unwrap();
    let env_arg = env.path().to_str().unwrap().to_string();
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--env-file", &env_arg],
        ..Options::default()
    });
    let old = s.worker_pids();
    let close = Load::start(s.port, 4, Mode::Close, "/healthz");
    close.wait_progress(200);
    close.reset_latency();
    std::fs::write(env.path(), "BLITZ_TEST_BOOT_DELAY_MS=1500\n").unwrap();
    s.signal(Signal::SIGHUP);
    wait_for(Duration::from_secs(5), "first replacement booting", || {
        s.worker_pids().len() == 2
    });
    // The scenario's timing, not a wait for a condition: the second HUP lands
    // well into the first replacement's boot, so a wrong hand-over would leave
    // clients waiting for the second replacement for about a second.
    std::thread::sleep(Duration::from_millis(1000));
    s.signal(Signal::SIGHUP);
    wait_for(Duration::from_secs(30), "replaced", || {
        let now = s.worker_pids();
        now.len() == 1 && !old.contains(&now[0])
    });
    close.wait_progress(200);
    close.assert_no_failures("two HUPs 1 worker, 1.5 s boot");
    // Clients never waited for a boot: the only worker was never left alone.
    a_ready_worker_at_every_moment(&s.log());
}
