//! The bot scale target: 5,000 running paper bots in one runner. Ignored by default (it
//! takes minutes in a debug build); run it with
//! `cargo test --release --test bots_scale -- --ignored --nocapture`.
//! It prints how long the runner took to start them all (seeded bots: each places
//! its ladder), its CPU and memory then, and how long after a restart they all run
//! again (each adopting its orders by client id, as after a fail-over: the resume
//! target); in a release build it also holds the 5,000-bot figures to the targets
//! (≤ 0.25 core, ≤ 200 MB). `BLITZ_SCALE_BOTS` sets another number of bots (the
//! resume target is 20,000 within 20 s), `BLITZ_TEST_DATABASE=postgres` runs it on
//! PostgreSQL, and then a fail-over too: the instance killed, another adopting
//! every user.

mod common;

use std::time::{Duration, Instant};

use common::bots::count;
use common::{blitz_cmd, wait_for, Options, Server};

/// The bots of the steady-state targets, unless `BLITZ_SCALE_BOTS` says otherwise.
const DEFAULT_BOTS: i64 = 5_000;

fn bots() -> i64 {
    std::env::var("BLITZ_SCALE_BOTS")
        .ok()
        .map(|v| v.parse().expect("BLITZ_SCALE_BOTS is a number of bots"))
        .unwrap_or(DEFAULT_BOTS)
}

/// (utime + stime) in clock ticks, and VmRSS in kB, of `pid`.
fn cpu_and_rss(pid: i32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    (ticks, rss)
}

/// Users and bot rows written straight into the database (hashing thousands of
/// passwords would measure Argon2, not the runner), in one transaction with each
/// statement prepared once; the runner resumes them all at start.
fn seed(dir: &std::path::Path, bots: i64) {
    // With BLITZ_TEST_DATABASE=postgres the server runs on PostgreSQL (and Redis).
    let backing = common::backing::on_postgres().then(|| common::backing::of(dir));
    let database = backing
        .as_ref()
        .map_or("instance/database.db".to_string(), |b| b.db.url());
    let out = blitz_cmd(dir)
        .args(["migrate", "--database", &database])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(b) = backing {
        return seed_postgres(&mut b.db.connect(), bots);
    }
    let mut c = rusqlite::Connection::open(dir.join("instance/database.db")).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut user = tx
            .prepare(
                "INSERT INTO user (email, password_hash, verified_at, created_at)
                 VALUES (?1, 'x', 1, 1)",
            )
            .unwrap();
        // The default bot `users::create` would make (`BotConfig::default`), running.
        let mut bot = tx
            .prepare(
                "INSERT INTO user_bots (user_id, name, exchange, symbol, side, leverage,
                     take_profit, stop_loss, rounds, grids, repeat, after_stop_loss, cooldown,
                     max_active_legs, trailing_take_profit, created_at, desired_state, status,
                     cycle, updated_at)
                 VALUES (?1, 'Default', 'paper', 'BTC/USDT', 'long', 10, '5', '0',
                     3, '[{\"amount\":10,\"gap\":0},{\"amount\":20,\"gap\":1},{\"amount\":40,\"gap\":2}]',
                     1, 'stop', 0, 0, '0', 1, 'running', 'running', 1, 1)",
            )
            .unwrap();
        for i in 0..bots {
            let uid = user.insert([format!("bot{i}@example.com")]).unwrap();
            bot.execute([uid]).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// `seed` on PostgreSQL: the same rows (the default bot), in one transaction.
fn seed_postgres(c: &mut postgres::Client, bots: i64) {
    let mut tx = c.transaction().unwrap();
    let n = usize::try_from(bots).unwrap();
    let email = |i| format!("bot{i}@example.com");
    common::cluster::seed_running(&mut tx, n, email, |_| Default::default());
    tx.commit().unwrap();
}

/// Two workers and a fixed walk of the paper market.
fn options() -> Options<'static> {
    Options {
        workers: 2,
        env: vec![("PAPER_SEED", "3")],
        ..Options::default()
    }
}

/// Waits until `s` reports `bots` running bots and is ready; returns `/readyz`.
fn wait_all_running(s: &Server, bots: i64) -> serde_json::Value {
    let mut ready = serde_json::Value::Null;
    wait_for(Duration::from_secs(600), "every bot running", || {
        // Before the workers are up the port may refuse or answer with no JSON.
        let Ok(r) = common::client::try_get(s.port, "/readyz") else {
            return false;
        };
        ready = serde_json::from_slice(&r.body).unwrap_or_default();
        ready["checks"]["bot_manager"]["running_bots"] == bots && ready["status"] == "ok"
    });
    ready
}

#[test]
#[ignore = "minutes in a debug build; run explicitly (see the module doc)"]
fn five_thousand_paper_bots() {
    let bots = bots();
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), bots);
    let begun = Instant::now();
    let s = Server::spawn_in(dir, options());
    let ready = wait_all_running(&s, bots);
    let resumed_in = begun.elapsed();
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM paper_orders WHERE client_id LIKE '%-e'"
        ),
        bots
    );
    let runner = s.runner_pids()[0];
    // Let the resume's writes settle, then measure steady state.
    std::thread::sleep(Duration::from_secs(5));
    let (t0, _) = cpu_and_rss(runner);
    let window = Duration::from_secs(30);
    let start = Instant::now();
    std::thread::sleep(window);
    let (t1, rss_kb) = cpu_and_rss(runner);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as f64;
    let cores = (t1 - t0) as f64 / hz / start.elapsed().as_secs_f64();
    let rss_mb = rss_kb as f64 / 1024.0;
    println!(
        "{bots} paper bots: started (each placing its ladder) and ready in {:.1} s; runner CPU {:.3} core over {} s; runner RSS {:.1} MB",
        resumed_in.as_secs_f64(), cores, window.as_secs(), rss_mb
    );
    assert_eq!(ready["checks"]["bot_manager"]["status"], "ok");
    // The steady-state targets are for 5,000 bots; other counts only report.
    if !cfg!(debug_assertions) && bots <= DEFAULT_BOTS {
        assert!(cores <= 0.25, "runner CPU {cores:.3} core");
        assert!(rss_mb <= 200.0, "runner RSS {rss_mb:.1} MB");
    }

    // A restart: now every bot has a cycle and orders on the exchange, and the
    // new runner adopts them by client id, as an instance taking over does.
    let orders = count(&s, "SELECT COUNT(*) FROM paper_orders");
    let entries = "SELECT COUNT(*) FROM paper_orders WHERE client_id LIKE '%-e'";
    let (dir, _) = s.terminate();
    let begun = Instant::now();
    let s = Server::spawn_in(dir, options());
    wait_all_running(&s, bots);
    println!(
        "{bots} paper bots: running again {:.1} s after a restart (adopting {orders} orders)",
        begun.elapsed().as_secs_f64()
    );
    // Nothing placed again: an entry is sent once per cycle.
    assert_eq!(count(&s, entries), bots);
    if common::backing::on_postgres() {
        fail_over(s, bots, entries);
    }
}

/// On PostgreSQL: the instance dies with every process (`kill -9`, a lost
/// host) and another one, under another name, adopts every user once their
/// leases expire (`BOT_LEASE_SECONDS`, 15 by default) and resumes their bots.
fn fail_over(s: Server, bots: i64, entries: &str) {
    common::cluster::kill_all(&s);
    let killed = Instant::now();
    let lease_left = count(
        &s,
        "SELECT MAX(expires_at_ms) - CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)
         FROM user_leases",
    );
    let dir = s.into_dir_when_dead();
    let mut opts = options();
    opts.env.push(("INSTANCE_NAME", "survivor"));
    let s = Server::spawn_in(dir, opts);
    wait_all_running(&s, bots);
    let took = killed.elapsed().as_secs_f64();
    println!(
        "{bots} paper bots: running again on another instance {took:.1} s after kill -9 of theirs, \
         {:.1} s after their leases expired",
        took - lease_left as f64 / 1000.0
    );
    let adopted = "SELECT COUNT(*) FROM user_leases WHERE instance = 'survivor'";
    assert_eq!(count(&s, adopted), bots, "one bot per user");
    assert_eq!(count(&s, entries), bots);
}
