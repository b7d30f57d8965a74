//! `blitz loadtest` (docs/operations.md): simulated users against a running server.
//!
//! Each connection (a thread with one keep-alive connection) acts for randomly
//! chosen users, in the proportions of a dashboard left open: mostly status polls,
//! some page data loads and public status checks, and now and then a start, stop
//! or recover. Afterwards: throughput, answers by status, and latency percentiles
//! per endpoint, as a table or `--json`. With several bots per user (`bots`), the
//! bot's own actions go to one of the user's bots.

mod accounts;
mod bots;
mod client;
mod stats;

pub use bots::MAX_PER_USER as MAX_BOTS_PER_USER;

use std::fmt::Write as _;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::Client;
use stats::{Endpoint, Row};

/// Where an action goes: a path of the user's, or one under one of their bots
/// (`/api/bots/<id>/` + the suffix, the bot picked at random per request).
#[derive(Debug, Clone, Copy)]
enum Route {
    User(&'static str),
    Bot(&'static str),
}

/// One thing a simulated user does, with its weight (per mille).
#[derive(Debug, Clone, Copy)]
struct Action {
    method: &'static str,
    route: Route,
    body: Option<&'static str>,
    weight: u32,
}

const fn act(
    method: &'static str,
    route: Route,
    body: Option<&'static str>,
    weight: u32,
) -> Action {
    Action {
        method,
        route,
        body,
        weight,
    }
}

impl Action {
    /// The report's name for the action: the method and the path, with `<id>` for
    /// the bot.
    fn label(&self) -> String {
        match self.route {
            Route::User(path) => format!("{} {path}", self.method),
            Route::Bot(suffix) => format!("{} /api/bots/<id>/{suffix}", self.method),
        }
    }
}

/// What a simulated user with one bot does: an open dashboard polls its status
/// every few seconds, loads its page data now and then, and its user presses
/// start, stop or recover rarely.
const MIX: [Action; 8] = [
    act("GET", Route::User("/api/bot/status"), None, 700),
    act("GET", Route::User("/api/trades?limit=20"), None, 80),
    act("GET", Route::User("/api/pnl/summary?days=7"), None, 60),
    act("GET", Route::User("/api/bot/events?limit=20"), None, 60),
    act("GET", Route::User("/api/status"), None, 80),
    act("POST", Route::User("/api/bot/start"), Some("{}"), 8),
    act(
        "POST",
        Route::User("/api/bot/stop"),
        Some("{\"mode\":\"cancel_orders\"}"),
        8,
    ),
    act("POST", Route::User("/api/bot/recover"), Some("{}"), 4),
];

/// The command's options (parsed by clap in `config::cli`).
#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    pub users: usize,
    pub connections: usize,
    pub duration: Duration,
    pub database: Option<crate::store::Engine>,
    pub tokens: Option<PathBuf>,
    pub json: bool,
    /// 1: the one-bot mix on `/api/bot/*`; more: `bots::BOT_MIX`.
    pub bots_per_user: usize,
}

/// A simulated user: their API token and, with several bots each, their bots' ids.
struct LoadUser {
    token: String,
    bots: Vec<i64>,
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

fn pick(rng: &mut Rng, mix: &[Action]) -> usize {
    let total: u32 = mix.iter().map(|m| m.weight).sum();
    let mut r = rng.below(u64::from(total)) as u32;
    for (i, m) in mix.iter().enumerate() {
        if r < m.weight {
            return i;
        }
        r -= m.weight;
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
    let (users, mix) = match load_users(&opts, addr, &host, tokens) {
        Ok(u) => u,
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
            .map(|_| s.spawn(|| user_loop(addr, &host, &users, mix, &stop, &done, &failed)))
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
        let mut merged = vec![Endpoint::default(); mix.len()];
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
    report(&opts, users.len(), mix, per_endpoint, elapsed)
}

/// The users and the mix they follow: with one bot each, today's mix on
/// `/api/bot/*`; with more, their bots (made as needed) and `bots::BOT_MIX`.
fn load_users(
    opts: &Options,
    addr: std::net::SocketAddr,
    host: &str,
    tokens: Vec<String>,
) -> Result<(Vec<LoadUser>, &'static [Action]), bots::BotsError> {
    if opts.bots_per_user <= 1 {
        let users = tokens
            .into_iter()
            .map(|token| LoadUser {
                token,
                bots: Vec::new(),
            })
            .collect();
        return Ok((users, &MIX));
    }
    if !opts.json && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "blitz loadtest: giving {} users {} bots each (GET and POST /api/bots) ...",
            tokens.len(),
            opts.bots_per_user
        );
    }
    let ids = bots::prepare(addr, host, &tokens, opts.bots_per_user, opts.connections)?;
    let users = tokens
        .into_iter()
        .zip(ids)
        .map(|(token, bots)| LoadUser { token, bots })
        .collect();
    Ok((users, &bots::BOT_MIX))
}

/// One connection's work until `stop`: per action, its endpoint's record.
fn user_loop(
    addr: std::net::SocketAddr,
    host: &str,
    users: &[LoadUser],
    mix: &[Action],
    stop: &AtomicBool,
    done: &AtomicU64,
    failed: &AtomicU64,
) -> Vec<Endpoint> {
    let mut rng = Rng::seeded();
    let mut client = Client::new(addr, host);
    let mut out = vec![Endpoint::default(); mix.len()];
    let mut bot_path = String::new();
    while !stop.load(Ordering::Relaxed) {
        let user = &users[rng.below(users.len() as u64) as usize];
        let i = pick(&mut rng, mix);
        let a = mix[i];
        let path = match a.route {
            Route::User(path) => Some(path),
            Route::Bot(suffix) => {
                let bot = user.bots.get(rng.below(user.bots.len() as u64) as usize);
                bot.map(|id| {
                    bot_path.clear();
                    let _ = write!(bot_path, "/api/bots/{id}/{suffix}");
                    bot_path.as_str()
                })
            }
        };
        let t = Instant::now();
        // A bot route for a user without bots is a failure of the run (never seen:
        // `load_users` gives every user their bots when the mix has such routes).
        let answer = match path {
            Some(path) => client.call(a.method, path, &user.token, a.body).ok(),
            None => None,
        };
        match answer {
            Some(a) => {
                out[i].record(a.status, t.elapsed());
                if stats::failed(a.status) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
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

fn report(
    opts: &Options,
    users: usize,
    mix: &[Action],
    per_endpoint: Vec<Endpoint>,
    elapsed: Duration,
) -> i32 {
    let mut all = Endpoint::default();
    let mut rows: Vec<Row> = Vec::new();
    for (e, m) in per_endpoint.into_iter().zip(mix) {
        all.merge(e.clone());
        rows.push(stats::row(&m.label(), e, elapsed));
    }
    let total = stats::row("total", all, elapsed);
    let failed = total.errors;
    if opts.json {
        let out = serde_json::json!({
            "url": opts.url, "users": users, "bots_per_user": opts.bots_per_user,
            "connections": opts.connections, "duration_s": elapsed.as_secs_f64(), "total": total, "endpoints": rows,
        });
        println!("{out}");
    } else {
        let bots = match opts.bots_per_user {
            1 => String::new(),
            n => format!(" with {n} bots each"),
        };
        println!(
            "blitz loadtest: {users} users{bots}, {} connections, {:.1} s against {}",
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
