//! Metrics cost: one counter increment, and a scrape with 5,000 users' `bot_*`
//! series after 1,000 worker recycles. `cargo bench --bench metrics`.

use std::time::{Duration, Instant};

use blitz::metrics::{self, AppInfo, Child};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median over 5 rounds of the time per call of `f`, in ns.
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let rounds = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed()
        })
        .collect();
    median(rounds).as_nanos() as f64 / f64::from(n)
}

fn main() {
    metrics::install(None).expect("metrics segment");
    metrics::enter(0);
    let n = 2_000_000;
    let static_ns = per_call(n, metrics::guard_conflict);
    let http_ns = per_call(n, || {
        metrics::http_request("GET", "/api/bot/status", 200, std::hint::black_box(0.0004))
    });
    println!("one counter increment (fixed series):       {static_ns:6.1} ns");
    println!("one HTTP request (counter + histogram):      {http_ns:6.1} ns");

    for uid in 1..=5_000 {
        metrics::bot_operation("start", uid, "started");
        metrics::bot_operation("stop", uid, "stopped");
        metrics::bot_operation("recover", uid, "recovered");
    }
    // 1,000 recycles: a worker serves, ends, and the master folds its slot.
    let routes = ["/healthz", "/api/bot/status", "/api/bot/start", "other"];
    for k in 0..1_000 {
        let slot = k % 8;
        metrics::enter(slot);
        for r in routes {
            metrics::http_request("GET", r, 200, 0.001);
        }
        metrics::enter(metrics::MASTER_SLOT);
        metrics::child_ended(slot, Child::Worker, false, true);
    }
    metrics::enter(0);
    let sb = blitz_master::Scoreboard::create(4096).expect("scoreboard");
    let info = AppInfo {
        version: "bench",
        environment: "bench",
    };
    let mut size = 0;
    let scrapes: Vec<Duration> = (0..21)
        .map(|_| {
            let t = Instant::now();
            size = metrics::render(&sb, &info).len();
            t.elapsed()
        })
        .collect();
    println!(
        "scrape, 15,000 bot_* series after 1,000 recycles: {:.1} ms median of 21 ({} KB)",
        median(scrapes).as_secs_f64() * 1e3,
        size / 1024
    );
}
