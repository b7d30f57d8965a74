//! `blitz loadtest` (docs/operations.md): simulated users against a running server.
//!
//! Each connection (a thread with one keep-alive connection) acts for randomly
//! chosen users, in the proportions of a dashboard left open: mostly status polls,
//! some page data loads and public status checks, and now and then a start, stop
//! or recover. Afterwards: throughput, answers by status, and latency percentiles
//! per endpoint, as a table or `--json`.

mod accounts;
mod client;
mod stats;

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::Client;
use stats::{Endpoint, Row};

/// What a simulated user does, with its weight (per mille): an open dashboard
/// polls its status every few seconds, loads its page data now and then, and its
/// user presses start, stop or recover rarely.
const MIX: [(&str, &str, Option<&str>, u32); 8] = [
    ("GET", "/api/bot/status", None, 700),
    ("GET", "/api/trades?limit=20", None, 80),
    ("GET", "/api/pnl/summary?days=7", None, 60),
    ("GET", "/api/bot/events?limit=20", None, 60),
    ("GET", "/api/status", None, 80),
    ("POST", "/api/bot/start", Some("{}"), 8),
    (
        "POST",
        "/api/bot/stop",
        Some("{\"mode\":\"cancel_orders\"}"),
        8,
    ),
    ("POST", "/api/bot/recover", Some("{}"), 4),
];

/// The command's options (parsed by clap in `config::cli`).
#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    pub users: usize,
    pub connections: usize,
    pub duration: Duration,
    pub database: Option<PathBuf>,
    pub tokens: Option<PathBuf>,
    pub json: bool,
}

/// xorshift64*: enough to pick users and actions.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        Rng(u64::from_le_bytes(b) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn pick(rng: &mut Rng) -> usize {
    let total: u32 = MIX.iter().map(|m| m.3).sum();
    let mut r = rng.below(u64::from(total)) as u32;
    for (i, m) in MIX.iter().enumerate() {
        if r < m.3 {
            return i;
        }
        r -= m.3;
    }
    0
}

/// `http://host:port` → (address, Host header).
fn target(url: &str) -> Result<(std::net::SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("--url must start with http:// (put TLS in front of blitz, not in the load test)")?;
    let host = rest.split('/').next().unwrap_or(rest);
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or(format!("cannot resolve {host}"))?;
    Ok((addr, host.to_string()))
}

/// Runs the load test; returns the exit code (0 if no request failed).
pub fn run(opts: Options) -> i32 {
    let (addr, host) = match target(&opts.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("blitz loadtest: {e}");
            return 2;
        }
    };
    let tokens = match (&opts.tokens, &opts.database) {
        (Some(f), _) => accounts::from_file(f),
        (None, Some(db)) => accounts::provision(db, opts.users),
        (None, None) => {
            eprintln!("blitz loadtest: give --database (to make load-test users) or --tokens FILE");
            return 2;
        }
    };
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => {
            eprintln!("blitz loadtest: {e}");
            return 1;
        }
    };
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let per_endpoint = std::thread::scope(|s| {
        let workers: Vec<_> = (0..opts.connections.max(1))
            .map(|_| s.spawn(|| user_loop(addr, &host, &tokens, &stop, &done, &failed)))
            .collect();
        let progress =
            (!opts.json).then(|| s.spawn(|| progress(&opts, started, &stop, &done, &failed)));
        while started.elapsed() < opts.duration {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed();
        if let Some(p) = progress {
            let _ = p.join();
        }
        let mut merged = vec![Endpoint::default(); MIX.len()];
        for w in workers {
            if let Ok(part) = w.join() {
                for (m, p) in merged.iter_mut().zip(part) {
                    m.merge(p);
                }
            }
        }
        (merged, elapsed)
    });
    let (per_endpoint, elapsed) = per_endpoint;
    report(&opts, tokens.len(), per_endpoint, elapsed)
}

/// One connection's work until `stop`: per action, its endpoint's record.
fn user_loop(
    addr: std::net::SocketAddr,
    host: &str,
    tokens: &[String],
    stop: &AtomicBool,
    done: &AtomicU64,
    failed: &AtomicU64,
) -> Vec<Endpoint> {
    let mut rng = Rng::seeded();
    let mut client = Client::new(addr, host);
    let mut out = vec![Endpoint::default(); MIX.len()];
    while !stop.load(Ordering::Relaxed) {
        let token = &tokens[rng.below(tokens.len() as u64) as usize];
        let i = pick(&mut rng);
        let (method, path, body, _) = MIX[i];
        let t = Instant::now();
        match client.call(method, path, token, body) {
            Ok(a) => {
                out[i].record(a.status, t.elapsed());
                if stats::failed(a.status) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                out[i].transport_errors += 1;
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// A one-line progress bar on stderr when it is a terminal.
fn progress(
    opts: &Options,
    started: Instant,
    stop: &AtomicBool,
    done: &AtomicU64,
    failed: &AtomicU64,
) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return;
    }
    const WIDTH: usize = 30;
    while !stop.load(Ordering::Relaxed) {
        let f = (started.elapsed().as_secs_f64() / opts.duration.as_secs_f64()).min(1.0);
        let filled = (f * WIDTH as f64) as usize;
        let n = done.load(Ordering::Relaxed);
        eprint!(
            "\r[{}{}] {:>3.0}%  {n} requests  {:.0}/s  {} failed ",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            f * 100.0,
            n as f64 / started.elapsed().as_secs_f64().max(1e-9),
            failed.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!();
}

fn report(opts: &Options, users: usize, per_endpoint: Vec<Endpoint>, elapsed: Duration) -> i32 {
    let mut all = Endpoint::default();
    let mut rows: Vec<Row> = Vec::new();
    for (e, m) in per_endpoint.into_iter().zip(MIX) {
        all.merge(e.clone());
        rows.push(stats::row(&format!("{} {}", m.0, m.1), e, elapsed));
    }
    let total = stats::row("total", all, elapsed);
    let failed = total.errors;
    if opts.json {
        let out = serde_json::json!({
            "url": opts.url, "users": users, "connections": opts.connections,
            "duration_s": elapsed.as_secs_f64(), "total": total, "endpoints": rows,
        });
        println!("{out}");
    } else {
        println!(
            "blitz loadtest: {users} users, {} connections, {:.1} s against {}",
            opts.connections,
            elapsed.as_secs_f64(),
            opts.url
        );
        println!(
            "{:<34} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  statuses",
            "endpoint", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for r in rows.iter().chain(std::iter::once(&total)) {
            let statuses: Vec<String> =
                r.statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
            println!(
                "{:<34} {:>9} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {}",
                r.endpoint,
                r.requests,
                r.per_second,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.max_ms,
                statuses.join(" ")
            );
        }
        println!("failed (5xx, 4xx other than 409/429, or no answer): {failed}");
    }
    i32::from(failed > 0)
}
