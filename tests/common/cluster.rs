//! A cluster of the real binary (CONTRACT C18, ARCHITECTURE §11): instances on one
//! private PostgreSQL database and one Redis, each in a directory of its own, and
//! what the fail-over tests read from the database (lease holders, resumes, client
//! ids) and do to an instance (`kill -9` of every process, SIGSTOP/SIGCONT).

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rust_decimal::Decimal;

use super::bots::{User, CALM};
use super::pg::{PgDb, PgServer};
use super::redis::Redis;
use super::{blitz_cmd, listening_port, wait_for, Server};

/// The lease the fail-over tests run with (the setting's minimum): a dead
/// instance's users are free again after 3 s.
pub const LEASE_SECONDS: u64 = 3;

/// One cluster at a time: each instance holds dozens of connections, and the
/// test PostgreSQL server allows 200.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Fields drop in order: the instances stop before the next test's turn.
pub struct Cluster {
    pub nodes: Vec<Server>,
    pub db: PgDb,
    pub redis: Redis,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// How the instances run: workers each, `BOT_LEASE_SECONDS` (a runner renews
/// and adopts every third of it), and environment on top of the calm market
/// (`CALM`: fast ticks, nothing fills by accident, high rate limits).
pub struct Spec<'a> {
    pub workers: usize,
    pub lease: u64,
    pub env: Vec<(&'a str, &'a str)>,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            workers: 1,
            lease: LEASE_SECONDS,
            env: Vec::new(),
        }
    }
}

/// Instance `name` on the cluster's database and Redis, in a directory of its
/// own.
fn node(db: &PgDb, redis: &Redis, name: &str, spec: &Spec<'_>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("instance")).unwrap();
    let lease = spec.lease.to_string();
    let workers = spec.workers.to_string();
    let child = blitz_cmd(dir.path())
        .arg("serve")
        .args(["--bind", "127.0.0.1:0", "--workers", &workers])
        .args(["--error-logfile", "error.log", "--pid", "blitz.pid"])
        .args(["--database", &db.url()])
        .env("REDIS_URL", redis.url())
        .env("INSTANCE_NAME", name)
        .env("BOT_LEASE_SECONDS", &lease)
        .env("RATE_LIMITS_REGISTER", "10000/hour")
        .env("BYBIT_WS_PRIVATE_URL", "ws://127.0.0.1:9/v5/private")
        .env("BINGX_WS_USER_URL", "ws://127.0.0.1:9/swap-market")
        .envs(CALM.iter().copied())
        .envs(spec.env.iter().copied())
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
        workers: spec.workers,
        backing: None,
    };
    server.wait_ready(spec.workers);
    server
}

impl Cluster {
    /// Instances named `names`, one worker each, on the calm market.
    pub fn start(names: &[&str]) -> Cluster {
        Cluster::with(names, &Spec::default())
    }

    pub fn with(names: &[&str], spec: &Spec<'_>) -> Cluster {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let db = PgServer::shared().database();
        let redis = Redis::start();
        let nodes = names.iter().map(|n| node(&db, &redis, n, spec)).collect();
        Cluster {
            _turn: turn,
            db,
            redis,
            nodes,
        }
    }

    pub fn sql(&self) -> postgres::Client {
        self.db.connect()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.sql().query_one(sql, &[]).unwrap().get(0)
    }

    /// A verified user with a token, made by the CLI on the shared database.
    pub fn user(&self, email: &str) -> User {
        self.user_as(email, false)
    }

    pub fn user_as(&self, email: &str, admin: bool) -> User {
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

    /// `n` users, each with an API token and their default paper bot (as
    /// `users::create` makes it) meant to run, written straight into the
    /// database in one transaction: hashing hundreds of passwords would take
    /// longer than the test. Nobody holds their leases: the instances adopt
    /// them, each about its share, as they would a dead instance's users.
    pub fn running_users(&self, n: usize) -> Vec<User> {
        self.running_users_with(n, |_| Ladder::default())
    }

    /// `running_users`, user `i`'s bot on `ladder(i)`.
    pub fn running_users_with(&self, n: usize, ladder: impl Fn(usize) -> Ladder) -> Vec<User> {
        let mut c = self.sql();
        let mut tx = c.transaction().unwrap();
        let ids = seed_running(&mut tx, n, |i| format!("load{i}@example.com"), ladder);
        let token = tx
            .prepare(
                "INSERT INTO api_tokens (token_hash, name, user_id, created_at)
                 VALUES ($1, 'cluster', $2, 1)",
            )
            .unwrap();
        let users = ids
            .into_iter()
            .map(|id| {
                let secret = blitz::auth::token::new_api_token();
                tx.execute(&token, &[&blitz::auth::token::hash(&secret), &id])
                    .unwrap();
                User { id, token: secret }
            })
            .collect();
        tx.commit().unwrap();
        users
    }

    /// The live holder of `uid`'s lease.
    pub fn holder(&self, uid: i64) -> Option<String> {
        let now = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
        let sql = format!(
            "SELECT instance FROM user_leases WHERE user_id = $1 AND expires_at_ms > {now}"
        );
        self.sql()
            .query_opt(&sql, &[&uid])
            .unwrap()
            .map(|r| r.get(0))
    }

    /// The users whose lease `instance` holds now.
    pub fn held_by(&self, instance: &str) -> Vec<i64> {
        self.sql()
            .query(
                "SELECT user_id FROM user_leases WHERE instance = $1
                 AND expires_at_ms > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)
                 ORDER BY user_id",
                &[&instance],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub fn duplicate_client_ids(&self) -> i64 {
        self.count(
            "SELECT COUNT(*) FROM (SELECT user_id, client_id FROM paper_orders
             GROUP BY user_id, client_id HAVING COUNT(*) > 1) d",
        )
    }

    pub fn orders_of(&self, uid: i64) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM paper_orders WHERE user_id = {uid}"
        ))
    }

    /// The database's clock (what leases and heartbeats are written in).
    pub fn db_now(&self) -> i64 {
        self.count("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
    }

    /// When instance `name`'s runner last wrote its heartbeat (each lease round).
    pub fn seen(&self, name: &str) -> i64 {
        self.count(&format!(
            "SELECT seen_at_ms FROM cluster_instances WHERE name = '{name}'"
        ))
    }

    /// Waits until instance `name` has run a whole lease round (renewal, then the
    /// release of idle users) that began after `since` (the database's clock).
    pub fn round_after(&self, name: &str, since: i64) {
        let mut first = 0;
        wait_for(Duration::from_secs(10), "a lease round", || {
            first = self.seen(name);
            first > since
        });
        wait_for(Duration::from_secs(10), "the next lease round", || {
            self.seen(name) > first
        });
    }

    /// `uid`'s paper balance as the database has it.
    pub fn balance(&self, uid: i64) -> Decimal {
        let sql = "SELECT balance FROM paper_accounts WHERE user_id = $1";
        let text: String = self.sql().query_one(sql, &[&uid]).unwrap().get(0);
        text.parse().unwrap()
    }

    /// The fee of `uid`'s latest fill on the paper exchange.
    pub fn last_fee(&self, uid: i64) -> Decimal {
        let sql = "SELECT fee FROM paper_fills WHERE user_id = $1 ORDER BY id DESC LIMIT 1";
        let text: String = self.sql().query_one(sql, &[&uid]).unwrap().get(0);
        text.parse().unwrap()
    }

    pub fn open_orders(&self, uid: i64) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM paper_orders WHERE user_id = {uid}
             AND status IN ('open', 'partially_filled')"
        ))
    }

    pub fn positions(&self, uid: i64) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM paper_positions WHERE user_id = {uid}"
        ))
    }

    /// `blitz paper close-position` run on instance `on`'s host.
    pub fn close_position(&self, on: &Server, uid: i64) -> std::process::Output {
        blitz_cmd(on.dir.path())
            .args(["paper", "close-position", "--user", &uid.to_string()])
            .args(["--symbol", "BTC/USDT", "--side", "long"])
            .args(["--database", &self.db.url()])
            .env("REDIS_URL", self.redis.url())
            .stdin(Stdio::null())
            .output()
            .expect("run blitz")
    }

    /// Bot `uid`'s "resumed" events.
    pub fn resumed(&self, uid: i64) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM bot_events WHERE user_id = {uid} AND kind = 'resumed'"
        ))
    }
}

/// `n` verified users written straight into the database (hashing passwords
/// would measure Argon2), user `i` with address `email(i)` and one running paper
/// bot on `ladder(i)`, each statement prepared once; their ids.
pub fn seed_running(
    tx: &mut postgres::Transaction<'_>,
    n: usize,
    email: impl Fn(usize) -> String,
    ladder: impl Fn(usize) -> Ladder,
) -> Vec<i64> {
    let user = tx
        .prepare(
            "INSERT INTO \"user\" (email, password_hash, verified_at, created_at)
             VALUES ($1, 'x', 1, 1) RETURNING id",
        )
        .unwrap();
    let bot = tx
        .prepare(
            "INSERT INTO user_bots (user_id, name, exchange, symbol, side, leverage,
                 take_profit, stop_loss, rounds, grids, repeat, after_stop_loss, cooldown,
                 max_active_legs, trailing_take_profit, created_at, desired_state, status,
                 cycle, updated_at)
             VALUES ($1, 'Default', 'paper', 'BTC/USDT', $2, 10, $3, '0', 3, $4,
                 1, 'stop', 0, 0, '0', 1, 'running', 'running', 1, 1)",
        )
        .unwrap();
    (0..n)
        .map(|i| {
            let id: i64 = tx.query_one(&user, &[&email(i)]).unwrap().get(0);
            let l = ladder(i);
            tx.execute(&bot, &[&id, &l.side, &l.take_profit, &l.grids])
                .unwrap();
            id
        })
        .collect()
}

/// A seeded bot's side, take-profit and grids (percent gaps).
pub struct Ladder {
    pub side: &'static str,
    pub take_profit: &'static str,
    pub grids: &'static str,
}

impl Default for Ladder {
    /// The default bot's (`BotConfig::default`).
    fn default() -> Self {
        Ladder {
            side: "long",
            take_profit: "5",
            grids: r#"[{"amount":10,"gap":0},{"amount":20,"gap":1},{"amount":40,"gap":2}]"#,
        }
    }
}

/// Starts `u`'s bot through instance `s`; asserts it started.
pub fn start(s: &Server, u: &User) {
    let r = u.call(s, "POST", "/api/bot/start", "{}");
    assert_eq!(r.status, 200, "start on port {}: {}", s.port, r.text());
}

/// SIGKILL to the master and each of its children: the whole instance dies at
/// once, as with a host lost. Returns once every one of them is gone: a killed
/// process keeps its sockets (the runner's answers connections) until the
/// kernel has torn it down, and a host that died answers nothing.
pub fn kill_all(s: &Server) {
    let mut pids = s.worker_pids();
    pids.extend(s.runner_pids());
    pids.extend(super::children_with_title(s.pid(), "blitz: "));
    pids.push(s.pid());
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    super::wait_for(Duration::from_secs(10), "the killed processes gone", || {
        !pids.iter().any(|&p| super::alive(p))
    });
}

/// Every process of the instance (master and children), stopped or continued.
pub fn signal_all(s: &Server, sig: Signal) {
    let mut pids = super::children_with_title(s.pid(), "blitz: ");
    pids.push(s.pid());
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}
