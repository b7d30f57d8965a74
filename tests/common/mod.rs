//! Test harness: starts the real `blitz` binary on a free loopback port with its own
//! temporary instance directory, and speaks HTTP to it over plain sockets.

#![allow(dead_code)]

pub mod api;
pub mod backing;
pub mod bots;
pub mod client;
pub mod cluster;
pub mod fake_accounts;
pub mod fake_bingx;
pub mod fake_bingx_ledger;
pub mod fake_bingx_orders;
pub mod fake_bingx_ws;
pub mod fake_book;
pub mod fake_bybit;
pub mod fake_bybit_ledger;
pub mod fake_bybit_orders;
pub mod fake_bybit_ws;
pub mod fake_events;
pub mod fake_http;
pub mod fake_inject;
pub mod fake_ip_limit;
pub mod fake_outbox;
pub mod fake_page;
pub mod fake_private_ws;
pub mod fake_proxy;
pub mod fake_public_ws;
pub mod fake_snapshot;
pub mod fixture_db;
pub mod floats;
pub mod load;
pub mod multi;
pub mod nginx;
pub mod openapi;
pub mod pg;
pub mod ports;
pub mod redis;
pub mod release;
pub mod replay;
pub mod sent;
pub mod totp;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[allow(unused_imports)]
pub use client::{get, request, Conn, Resp};
#[allow(unused_imports)]
pub use ports::ReservedPort;

pub const BIN: &str = env!("CARGO_BIN_EXE_blitz");

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `blitz` with a clean environment (so the developer's variables never leak in).
pub fn blitz_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir);
    cmd
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub workers: usize,
    /// PostgreSQL and Redis, when the run asks for them (`backing`).
    pub backing: Option<std::sync::Arc<backing::Backing>>,
}

pub struct Options<'a> {
    pub workers: usize,
    pub args: Vec<&'a str>,
    pub env: Vec<(&'a str, &'a str)>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            workers: 2,
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl Server {
    pub fn start() -> Server {
        Server::with(Options::default())
    }

    /// Starts a server on a kernel-chosen port (read back from the log, so
    /// parallel tests never race for a port) and waits until every worker and the
    /// bot runner are up.
    pub fn with(opts: Options<'_>) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), opts)
    }

    /// Like `with`, in an existing directory: a restart on the same database,
    /// key file and outbox.
    pub fn start_in(dir: tempfile::TempDir, opts: Options<'_>) -> Server {
        let workers = opts.workers;
        let server = Server::spawn_in(dir, opts);
        server.wait_ready(workers);
        server
    }

    /// Like `start_in`, but returns once the server listens, without waiting for
    /// it to be ready (a test that times how long the runner takes to resume).
    pub fn spawn_in(dir: tempfile::TempDir, opts: Options<'_>) -> Server {
        let workers = opts.workers.to_string();
        let backing = backing::on_postgres().then(|| backing::of(dir.path()));
        let database = match &backing {
            Some(b) => b.db.url(),
            None => "instance/database.db".to_string(),
        };
        let mut cmd = blitz_cmd(dir.path());
        cmd.arg("serve")
            .args(["--bind", "127.0.0.1:0", "--workers", &workers])
            .args(["--error-logfile", "error.log", "--pid", "blitz.pid"])
            .args(["--database", &database])
            .args(&opts.args);
        if let Some(b) = &backing {
            // Instance dir files (secret key, outbox) stay in the test's directory.
            std::fs::create_dir_all(dir.path().join("instance")).unwrap();
            cmd.env("REDIS_URL", b.redis.url());
        }
        cmd
            // Tests register many accounts from one address; the limit has its own
            // test, which sets its own value.
            .env("RATE_LIMITS_REGISTER", "10000/hour")
            // No test reaches a real exchange's private stream: a test with a
            // fake exchange names the fake's.
            .env("BYBIT_WS_PRIVATE_URL", "ws://127.0.0.1:9/v5/private")
            .env("BINGX_WS_USER_URL", "ws://127.0.0.1:9/swap-market")
            .envs(opts.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn blitz");
        let log = dir.path().join("error.log");
        let port = wait_listening(&log, Duration::from_secs(20));
        Server {
            child,
            port,
            dir,
            workers: opts.workers,
            backing,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's `--database`: its PostgreSQL URL, or its SQLite file.
    pub fn database(&self) -> String {
        match &self.backing {
            Some(b) => b.db.url(),
            None => "instance/database.db".to_string(),
        }
    }

    /// Ready = `/readyz` answers 200 (database and bot runner) and the master has
    /// logged as many "worker ready" lines as there are workers.
    pub fn wait_ready(&self, workers: usize) {
        wait_for(Duration::from_secs(20), "server ready", || {
            client::try_get(self.port, "/readyz").is_ok_and(|r| r.status == 200)
                && self.worker_pids().len() == workers
                && self.log().matches("\"worker ready\"").count() >= workers
        });
    }

    /// Counts error-log lines whose `msg` is exactly `msg`.
    pub fn log_count(&self, msg: &str) -> usize {
        self.log().matches(&format!("\"msg\":\"{msg}\"")).count()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap();
    }

    pub fn get(&self, path: &str) -> Resp {
        get(self.port, path)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.path("error.log")).unwrap_or_default()
    }

    /// Children of the master whose process title is `blitz: worker N`.
    pub fn worker_pids(&self) -> Vec<i32> {
        children_with_title(self.pid(), "blitz: worker ")
    }

    pub fn runner_pids(&self) -> Vec<i32> {
        children_with_title(self.pid(), "blitz: bot-runner")
    }

    /// Stops the server with TERM (asserting a clean exit) and hands back its
    /// directory for a restart on the same database. The error log is removed so
    /// the next server's "Listening at" line is the only one.
    pub fn terminate(mut self) -> (tempfile::TempDir, String) {
        self.signal(Signal::SIGTERM);
        let code = self.wait_exit(Duration::from_secs(30));
        let log = self.log();
        assert_eq!(code, Some(0), "master exit code; log:\n{log}");
        let _ = fs::remove_file(self.path("error.log"));
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, log)
    }

    /// The directory of a server whose every process was killed (a lost host,
    /// `cluster::kill_all`), for another instance on the same database; the
    /// error log is removed as by `terminate`.
    pub fn into_dir_when_dead(mut self) -> tempfile::TempDir {
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), None, "the master was killed: {status}");
        let _ = fs::remove_file(self.path("error.log"));
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// Waits for the master to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test shows what the server said: its warnings and errors.
        if std::thread::panicking() {
            let log = self.log();
            let notable = log.lines().filter(|l| !l.contains("\"level\":\"info\""));
            let tail: Vec<&str> = notable.collect();
            let from = tail.len().saturating_sub(40);
            eprintln!(
                "server log (not INFO, last 40):\n{}",
                tail[from..].join("\n")
            );
        }
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let kids = children_with_title(self.pid(), "blitz: ");
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
        for k in kids {
            let _ = kill(Pid::from_raw(k), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Waits for the master's "Listening at" in `log`; a timeout fails with what
/// the server logged meanwhile.
fn wait_listening(log: &Path, timeout: Duration) -> u16 {
    let deadline = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = listening_port(&text) {
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for Listening at; the server logged:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The port of the first "Listening at: HOST:PORT" line of a JSON error log.
pub fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("Listening at: "))?;
    let j: serde_json::Value = serde_json::from_str(line).ok()?;
    j["msg"].as_str()?.rsplit(':').next()?.parse().ok()
}

/// Seconds since midnight of an error-log line's `ts` (for intervals in tests).
pub fn log_seconds(line: &str) -> f64 {
    let j: serde_json::Value = serde_json::from_str(line).unwrap();
    let ts = j["ts"].as_str().unwrap();
    let time = &ts[11..ts.len() - 1];
    let mut parts = time.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

/// True once `pid` is really stopped (state `T`), not merely sent SIGSTOP.
pub fn is_stopped(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].split(' ').next().map(|st| st == "T"))
        .unwrap_or(false)
}

/// True once `pid` has `sig` pending (sent but not yet delivered, e.g. stopped).
pub fn signal_pending(pid: i32, sig: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("ShdPnd:") || l.starts_with("SigPnd:"))
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .any(|mask| mask & (1 << (sig - 1)) != 0)
}

/// The command line `ps` would show for `pid`.
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    f.next()?.parse().ok()
}

pub fn children_with_title(parent: i32, prefix: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if parent_of(pid) == Some(parent) && cmdline(pid).starts_with(prefix) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

pub fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok() && parent_of(pid).is_some()
}

/// Listening sockets on `port` (IPv4), as `ss -ltn` would count them.
pub fn listening_sockets(port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X} ");
    tcp.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && format!("{} ", f[1]).ends_with(&local) && f[3] == "0A"
        })
        .count()
}
