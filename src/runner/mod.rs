//! The bot runner process (`blitz: bot-runner`): the single owner of every
//! running bot of the instance. Its main thread keeps the deadline heap, advances the
//! paper market and accepts RPC connections; two small thread pools do the bots'
//! work (one for scheduled steps, one for commands, so a command never waits behind
//! thousands of steps).

pub mod client;
mod fenced;
mod journal;
mod lanes;
mod launch;
mod lease;
mod manager;
mod orders;
mod paper_ops;
mod pool;
pub mod protocol;
pub mod route;
mod schedule;
mod slots;
pub mod stats;
pub mod telegram;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use crate::store::sql::Conn;
use blitz_master::{clock, ChildCtx};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use slog::{error, info, warn, Logger};

use crate::background::{self, Background};
use crate::bots::ids::BotRef;
use crate::config::Config;
use crate::exchange::paper::replay::PaperPrices;
use crate::exchange::paper::{default_volatility, Paper, PaperParams};
use crate::exchange::rest::budget;
use crate::exchange::stream::poll::Paces;
use crate::exchange::stream::{self, Streams};
use crate::log::Sink;
use crate::market::{Board, QuoteSource};
use crate::secrets::SecretKey;
use crate::store::{self, bots, cluster, trades, user_bots};
use lanes::Lanes;
use lease::Leases;
use manager::{Due, Exchanges, Manager, Why};
use pool::Pool;
use protocol::{Op, OpResult, Outcome, PaperReply, PaperRequest, Request};
use schedule::Schedule;
use stats::RunnerStats;

/// Commands (start/stop/recover) may wait on a slow exchange too: enough threads
/// that a few of those leave room for everyone else's.
const COMMAND_THREADS: usize = 16;
/// The longest the main loop sleeps; deadlines are met within this.
const MAX_WAIT_MS: u64 = 100;
/// How long one step of a running bot may wait in all for the exchange's
/// request budget (`budget::bounded`): fills its stream reports meanwhile wait
/// for the step to end (C16: within a second).
const STEP_BUDGET_WAIT: Duration = Duration::from_millis(250);
const PRICES_EVERY_MS: u64 = 1000;
const SWEEP_EVERY_MS: u64 = 2000;
/// A worker writes its request at once; a silent peer is dropped after this.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_REQUEST_LINE: u64 = 4096;
/// Up to this many users adopted in one round, their bots are read user by
/// user; more (a restart, a fail-over), all the bots held here in one read.
const ONE_READ_PER_USER: usize = 32;

/// The runner's socket, next to the database (so it is private to the instance).
pub fn socket_path(config: &Config) -> PathBuf {
    socket_in(config.instance_dir())
}

/// The runner's socket in an instance directory (for the commands, which know the
/// database but have no whole configuration).
pub fn socket_in(instance_dir: &Path) -> PathBuf {
    instance_dir.join("bot-runner.sock")
}

struct Runner {
    manager: Arc<Manager>,
    leases: Arc<Leases>,
    steps: Lanes,
    commands: Pool,
    due: Receiver<manager::Due>,
    conn: Conn,
    tick_ms: u64,
    paper_tick_ms: u64,
    log: Logger,
}

pub fn run(
    ctx: ChildCtx,
    config: &Config,
    rpc: &UnixListener,
    log: Logger,
    sinks: Vec<Sink>,
) -> i32 {
    let bg = match Background::start(&ctx, sinks) {
        Ok(bg) => bg,
        Err(e) => {
            error!(log, "cannot install signal handlers"; "error" => %e);
            return 1;
        }
    };
    let lock_path = config.instance_dir().join("bot-runner.lock");
    let stats = RunnerStats::of(&ctx.scoreboard);
    let standby = || stats.publish_standby(blitz_master::clock::now_ms());
    let _lock = match background::exclusive(&ctx, &bg, &lock_path, &log, &standby) {
        Ok(Some(lock)) => lock,
        Ok(None) => return 0,
        Err(e) => {
            error!(log, "cannot lock {}", lock_path.display(); "error" => %e);
            return 1;
        }
    };
    let runner = match Runner::open(config, &ctx.scoreboard, log.clone()) {
        Ok(r) => r,
        Err(e) => {
            error!(log, "bot runner cannot start"; "error" => %e);
            return 1;
        }
    };
    info!(log, "bot runner started");
    let code = runner.serve(&ctx, &bg, rpc);
    info!(log, "bot runner stopped");
    code
}

fn open_conn(engine: &store::Engine) -> std::io::Result<Conn> {
    store::connect_unmapped(engine).map_err(std::io::Error::other)
}

impl Runner {
    fn open(
        config: &Config,
        scoreboard: &blitz_master::Scoreboard,
        log: Logger,
    ) -> Result<Runner, Box<dyn std::error::Error>> {
        // Every connection of the runner writes: none maps the file (see
        // `store::open_unmapped`).
        let conn = store::connect_unmapped(&config.database)?;
        let lease_now = cluster::db_now_ms(&conn)?;
        let fixed =
            bots::settle_interrupted(&conn, store::now(), lease_now, &config.instance_name)?;
        if fixed > 0 {
            info!(log, "marked bots stopped whose stop was interrupted"; "count" => fixed);
        }
        let params = PaperParams {
            tick_ms: config.paper_tick_ms,
            volatility: config
                .paper_volatility
                .unwrap_or_else(|| default_volatility(config.paper_tick_ms)),
            seed: config.paper_seed,
            funding_rate: config.paper_funding_rate,
        };
        // Live paper prices come from the instance's price board, which the
        // market-data process fills (docs/market-data.md).
        let quotes: Option<Arc<dyn QuoteSource>> = match config.paper_prices {
            PaperPrices::Live(_) => Some(Arc::new(Board::of(scoreboard))),
            _ => None,
        };
        let paper = Paper::open_with(
            store::connect_unmapped(&config.database)?,
            params,
            &config.paper_prices,
            quotes,
            store::now_ms(),
        )?;
        paper.set_log(log.clone());
        let key = match SecretKey::resolve(config.secret_key.as_deref(), config.instance_dir()) {
            Ok(k) => Some(k),
            Err(e) => {
                warn!(log, "no secret key; stored exchange keys and Telegram tokens cannot be read"; "error" => %e);
                None
            }
        };
        // PostgreSQL means a cluster: this runner drives only the users whose
        // lease it holds, and its paper book holds only their accounts.
        let leases = Arc::new(match conn.kind() {
            store::Kind::Postgres => {
                paper.partition(Default::default());
                let lease = Duration::from_secs(config.bot_lease_seconds);
                Leases::cluster(&config.instance_name, lease)
            }
            store::Kind::Sqlite => Leases::single(),
        });
        let telegram = telegram::Notifier::start(config.telegram_api_url.clone(), log.clone())?;
        let (tx, due) = channel();
        let streams = account_streams(config, scoreboard, tx.clone(), &log);
        let exchanges = Exchanges {
            paper,
            rest: config.exchanges.clone(),
            streams,
        };
        let manager = Arc::new(Manager::new(
            exchanges,
            key,
            telegram,
            tx,
            leases.clone(),
            config.bot_tick_ms,
            log.clone(),
        ));
        listen_for_routed(config, manager.clone(), log.clone());
        let db = config.database.clone();
        let steps = Lanes::start(db)?;
        let db = config.database.clone();
        let commands = Pool::start(COMMAND_THREADS, move || open_conn(&db))?;
        Ok(Runner {
            manager,
            leases,
            steps,
            commands,
            due,
            conn,
            tick_ms: config.bot_tick_ms,
            paper_tick_ms: config.paper_tick_ms,
            log,
        })
    }

    /// Brings the paper market to now before any bot resumes: after a downtime a
    /// resumed bot must see the prices of now and the fills and stops they caused
    /// (docs/bots.md, Replayed paper prices), not the market as it was when the
    /// runner stopped. A failure is logged; the main loop tries again.
    fn catch_up_paper(&self) {
        match self.manager.paper().advance(store::now_ms()) {
            Ok(fills) => info!(self.log, "paper exchange caught up"; "fills" => fills),
            Err(e) => error!(self.log, "paper exchange step failed"; "error" => %e),
        }
    }

    /// Resumes every bot whose desired state is running, adopting its orders;
    /// in a cluster, only those of the users whose lease it wins.
    /// The paper market catches up first (with the accounts this runner drives, in a
    /// cluster), so that a stop that fired while no runner ran is seen at resume.
    fn resume(&mut self) -> Result<(), store::StoreError> {
        if self.leases.is_cluster() {
            let round = self.leases.round(&self.conn)?;
            self.manager.paper().partition(self.leases.held());
            self.catch_up_paper();
            return self.apply(round, Vec::new());
        }
        self.catch_up_paper();
        let bots = bots::desired_running_on(&self.conn)?;
        if !bots.is_empty() {
            info!(self.log, "resuming bots"; "count" => bots.len());
        }
        self.submit_resumes(bots);
        Ok(())
    }

    /// Queues the resume of `bots`, each in its lane, once they are all marked
    /// `starting` (a failure is logged: each launch then writes its own).
    fn submit_resumes(&mut self, bots: Vec<bots::Wanted>) {
        let ids: Vec<i64> = bots.iter().map(|w| w.bot.bot_id).collect();
        if let Err(e) = bots::mark_starting(&self.conn, &ids, store::now()) {
            warn!(self.log, "cannot mark the bots to resume as starting"; "error" => %e);
        }
        for w in bots {
            let m = self.manager.clone();
            self.steps
                .for_resume(w.bot.bot_id, &w.exchange)
                .submit(Box::new(move |c| {
                    m.resume_as(c, w.bot);
                }));
        }
    }

    /// Cluster: drops at once the bots of users whose lease deadline passed
    /// (fenced: no exchange call, no write), and every third of the lease (or
    /// as another instance's lease expires) renews, drops what was lost and
    /// adopts. Runs before the paper market advances, so a runner waking from a
    /// freeze never matches orders of a user it lost.
    fn tend_leases(&mut self, now: u64, next_lease: &mut u64) {
        let expired = self.leases.expired();
        for &uid in &expired {
            let n = self.manager.drop_user(uid);
            warn!(self.log, "lease deadline passed; the user's bots stopped here";
                "user_id" => uid, "bots" => n);
        }
        let mut round = lease::Round::default();
        let mut renewed = false;
        if self.leases.is_cluster() && now >= *next_lease {
            match self.leases.round(&self.conn) {
                Ok(r) => (round, renewed) = (r, true),
                Err(e) => warn!(self.log, "lease renewal failed"; "error" => %e),
            }
            *next_lease = self.next_round_at(now);
        }
        if let Err(e) = self.apply(round, expired) {
            warn!(self.log, "cannot read the adopted users' bots"; "error" => %e);
        }
        if renewed {
            self.release_idle();
        }
    }

    /// When (main-loop clock) the next lease round is due, seen from `now`.
    fn next_round_at(&self, now: u64) -> u64 {
        let after = self.leases.next_round_in().unwrap_or_default();
        now + after.as_millis() as u64
    }

    /// Cluster, after a renewal: gives up the leases of the users with nothing
    /// left to drive here (no bot to run, no command under way, a paper account
    /// with no position and no resting order), so that their next start goes to
    /// the instance with the fewest bots. An account with a position or orders
    /// keeps its lease: the paper market of its holder matches, funds and
    /// liquidates it, and an account nobody holds is matched by nobody.
    fn release_idle(&self) {
        let idle = match self.leases.idle(&self.conn) {
            Ok(idle) => idle,
            Err(e) => {
                warn!(self.log, "cannot list the idle users"; "error" => %e);
                return;
            }
        };
        let mut released = 0;
        for uid in idle {
            match self.manager.release_if_idle(&self.conn, uid) {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(e) => warn!(self.log, "cannot release an idle user's lease";
                    "user_id" => uid, "error" => %e),
            }
        }
        if released > 0 {
            // Their accounts leave the paper book: their next holder loads them
            // from the database as this book left them.
            self.manager.paper().partition(self.leases.held());
            info!(self.log, "released the leases of idle users"; "users" => released);
        }
    }

    /// Applies a lease round: drops the lost users' bots, reloads the paper book
    /// for the users now held, resumes the gained users' bots.
    fn apply(&mut self, round: lease::Round, expired: Vec<i64>) -> Result<(), store::StoreError> {
        for &uid in &round.lost {
            let n = self.manager.drop_user(uid);
            warn!(self.log, "lease lost to another instance; the user's bots stopped here";
                "user_id" => uid, "bots" => n);
        }
        if round.lost.is_empty() && round.gained.is_empty() && expired.is_empty() {
            return Ok(());
        }
        self.manager.paper().partition(self.leases.held());
        let bots = self.wanted_of(&round.gained)?;
        if !round.gained.is_empty() {
            info!(self.log, "adopted users"; "users" => round.gained.len(), "bots" => bots.len());
        }
        self.submit_resumes(bots);
        Ok(())
    }

    /// The bots meant to run of the users just adopted: one read per user, or
    /// for many (a restart, a fail-over) one read of every user held here.
    fn wanted_of(&self, gained: &[i64]) -> Result<Vec<bots::Wanted>, store::StoreError> {
        match self.leases.name() {
            Some(name) if gained.len() > ONE_READ_PER_USER => {
                let gained: HashSet<i64> = gained.iter().copied().collect();
                let mut held = cluster::wanted_held(&self.conn, name)?;
                held.retain(|w| gained.contains(&w.bot.user_id));
                Ok(held)
            }
            _ => {
                let mut bots = Vec::new();
                for &uid in gained {
                    bots.extend(cluster::wanted_of(&self.conn, uid)?);
                }
                Ok(bots)
            }
        }
    }

    fn serve(mut self, ctx: &ChildCtx, bg: &Background, rpc: &UnixListener) -> i32 {
        if let Err(e) = rpc.set_nonblocking(true) {
            error!(self.log, "bot runner socket"; "error" => %e);
            return 1;
        }
        if let Err(e) = self.resume() {
            error!(self.log, "cannot read the bots to resume"; "error" => %e);
            return 1;
        }
        let stats = RunnerStats::of(&ctx.scoreboard);
        let mut schedule = Schedule::default();
        let now = clock::now_ms();
        let (mut next_paper, mut next_prices, mut next_sweep) = (now, now, now);
        let mut next_lease = self.next_round_at(now);
        while bg.tend(ctx) {
            let now = clock::now_ms();
            self.tend_leases(now, &mut next_lease);
            if now >= next_paper {
                // The paper exchange keeps wall-clock time (it persists it).
                if let Err(e) = self.manager.paper().advance(store::now_ms()) {
                    error!(self.log, "paper exchange step failed"; "error" => %e);
                }
                next_paper = now + self.paper_tick_ms;
            }
            for due in self.due.try_iter() {
                match due {
                    Due::At {
                        bot_id,
                        generation,
                        due_ms,
                    } => schedule.at(due_ms, bot_id, generation, now),
                    Due::Wake { bot_id } => schedule.wake(bot_id, now),
                }
            }
            for step in schedule.due(now) {
                let m = self.manager.clone();
                let (bot_id, generation) = (step.bot_id, step.generation);
                let pool = self.steps.for_bot(&self.conn, bot_id, generation);
                let job: pool::Job = Box::new(move |c| {
                    if generation == 0 {
                        m.resume(c, bot_id);
                    } else {
                        budget::bounded(STEP_BUDGET_WAIT, || m.tick(c, bot_id, generation));
                    }
                });
                if step.woken {
                    pool.submit_first(job);
                } else {
                    pool.submit(job);
                }
            }
            if now >= next_prices {
                self.publish_prices();
                next_prices = now + PRICES_EVERY_MS;
            }
            if now >= next_sweep {
                let m = self.manager.clone();
                let log = self.log.clone();
                self.steps
                    .housekeeping()
                    .submit(Box::new(move |c| match m.sweep(c) {
                        Ok((mine, db)) => stats.publish(mine, db, clock::now_ms()),
                        Err(e) => warn!(log, "bot consistency check failed"; "error" => %e),
                    }));
                next_sweep = now + SWEEP_EVERY_MS;
            }
            let wait = [
                schedule.next_in(now),
                Some(next_paper.saturating_sub(now)),
                Some(MAX_WAIT_MS),
                Some(self.tick_ms),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(MAX_WAIT_MS);
            self.wait_and_accept(rpc, wait);
        }
        self.commands.shutdown();
        self.steps.shutdown();
        0
    }

    /// Waits up to `wait_ms` for RPC connections and hands each to the command pool.
    fn wait_and_accept(&self, rpc: &UnixListener, wait_ms: u64) {
        let mut fds = [PollFd::new(rpc.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(wait_ms.max(1) as i32).unwrap_or(PollTimeout::MAX);
        if !matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
            return;
        }
        loop {
            match rpc.accept() {
                Ok((stream, _)) => {
                    let m = self.manager.clone();
                    let log = self.log.clone();
                    self.commands
                        .submit(Box::new(move |c| serve_request(&m, c, stream, &log)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(self.log, "bot runner accept failed"; "error" => %e);
                    return;
                }
            }
        }
    }

    /// Writes the last price of every paper market a running bot trades.
    fn publish_prices(&self) {
        let symbols = match bots::running_markets(&self.conn) {
            Ok(s) => s,
            Err(e) => {
                warn!(self.log, "cannot list running markets"; "error" => %e);
                return;
            }
        };
        for (exchange, symbol) in symbols {
            if exchange != "paper" {
                continue;
            }
            if let Some(price) = self.manager.paper().price(&symbol) {
                if let Err(e) =
                    trades::set_price(&self.conn, &exchange, &symbol, price, store::now())
                {
                    warn!(self.log, "cannot publish a price"; "error" => %e);
                }
            }
        }
    }
}

/// The private account streams (C16): created here, in the runner child; their
/// threads start with the first real-exchange bot. An account event wakes its
/// bots through the main loop's inbox.
fn account_streams(
    config: &Config,
    scoreboard: &blitz_master::Scoreboard,
    due: std::sync::mpsc::Sender<Due>,
    log: &Logger,
) -> Streams {
    let settings = stream::connect::Settings {
        bybit_ws: config.bybit_ws_private_url.clone(),
        bingx_ws: config.bingx_ws_user_url.clone(),
        bybit_rest: config.exchanges.bybit_url.clone(),
        bingx_rest: config.exchanges.bingx_url.clone(),
        timeout: Duration::from_millis(config.exchanges.timeout_ms),
    };
    let quotes: Arc<dyn QuoteSource> = Arc::new(Board::of(scoreboard));
    let due = std::sync::Mutex::new(due);
    let wake = Box::new(move |bot_id| {
        if let Ok(tx) = due.lock() {
            let _ = tx.send(Due::Wake { bot_id });
        }
    });
    // Down accounts poll within the runner's part of each budget.
    let limits = config.exchanges.limits;
    let runner = |l: budget::Limit| l.part(budget::RUNNER_SHARE_PERMILLE);
    let paces = Paces::new(runner(limits.bybit()), runner(limits.bingx()));
    Streams::new(settings, paces, Some(quotes), wake, log.clone())
}

/// Reads one request line, runs it, writes the reply line.
fn serve_request(m: &Manager, conn: &Conn, stream: UnixStream, log: &Logger) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(REQUEST_READ_TIMEOUT));
    let mut line = String::new();
    let mut reader = BufReader::new((&stream).take(MAX_REQUEST_LINE));
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut out = answer_line(m, conn, &line, Origin::Socket);
    out.push(b'\n');
    // The worker may have given up (504); the outcome is recorded either way.
    if let Err(e) = (&stream).write_all(&out) {
        warn!(log, "could not deliver a bot command's outcome"; "error" => %e);
    }
}

/// Where a request line came from: a worker of this instance (through the
/// socket) or another instance's (routed through Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Socket,
    Routed,
}

/// Runs one request line and returns the reply line without its newline.
fn answer_line(m: &Manager, conn: &Conn, line: &str, from: Origin) -> Vec<u8> {
    // A paper-account command names a position; anything else is a bot command.
    // Either acts only for a user whose bots this runner drives (C18), and is
    // counted as under way meanwhile, so the user's lease stays here.
    let reply = match serde_json::from_str::<PaperRequest>(line) {
        Ok(req) => {
            let _under_way = m.command_for(req.user_id);
            serde_json::to_vec(&match m.admit(conn, req.user_id, false) {
                Ok(()) => paper_ops::execute(m, conn, &req),
                Err(refused) => PaperReply::not_admitted(refused),
            })
        }
        Err(_) => serde_json::to_vec(&match serde_json::from_str::<Request>(line) {
            Ok(req) => {
                let _under_way = m.command_for(req.user_id);
                // A start for a user nobody drives is placed on the instance with
                // the fewest bots by the first runner it reaches; the runner it
                // is routed to takes it.
                let place = req.op == Op::Start && from == Origin::Socket;
                match m.admit(conn, req.user_id, place) {
                    Ok(()) => execute(m, conn, &req),
                    Err(refused) => refused,
                }
            }
            Err(e) => OpResult::new(Outcome::Error, format!("bad request: {e}")),
        }),
    };
    reply.unwrap_or_default()
}

/// Cluster: a thread answering the commands other instances route here (see
/// `route`), on a database connection of its own, one at a time.
fn listen_for_routed(config: &Config, manager: Arc<Manager>, log: Logger) {
    let (Some(url), true) = (config.redis_url.clone(), manager.is_cluster()) else {
        return;
    };
    let instance = config.instance_name.clone();
    let db = config.database.clone();
    let warn_log = log.clone();
    let spawned = std::thread::Builder::new()
        .name("routed-commands".into())
        .spawn(move || {
            let conn = match open_conn(&db) {
                Ok(c) => c,
                Err(e) => {
                    error!(log, "routed commands: no database"; "error" => %e);
                    return;
                }
            };
            route::listen(url, instance, log, |line| {
                answer_line(&manager, &conn, line, Origin::Routed)
            });
        });
    if let Err(e) = spawned {
        warn!(warn_log, "cannot start the routed-command listener"; "error" => %e);
    }
}

fn execute(m: &Manager, conn: &Conn, req: &Request) -> OpResult {
    let bot = match target(conn, req) {
        Ok(Some(bot)) => bot,
        Ok(None) => return OpResult::new(Outcome::NotFound, "No such bot"),
        Err(e) => return OpResult::new(Outcome::Error, format!("database: {e}")),
    };
    let actor = req.actor;
    match req.op {
        Op::Start => m.start(conn, bot, Why::Start, actor),
        Op::Recover => m.recover(conn, bot, actor),
        Op::Stop => m.stop(conn, bot, req.mode.unwrap_or_default(), actor),
        Op::Orders => m.orders(conn, bot),
    }
}

/// The bot a request names: the user's default bot for `bot_id` 0, else that
/// bot if it is the user's (`None` otherwise: the runner never acts on another
/// user's bot, whatever a worker asks).
fn target(conn: &Conn, req: &Request) -> Result<Option<BotRef>, store::StoreError> {
    let bot_id = match req.bot_id {
        0 => user_bots::default_of(conn, req.user_id)?,
        id => user_bots::get(conn, req.user_id, id)?.map(|b| b.id),
    };
    Ok(bot_id.map(|bot_id| BotRef {
        user_id: req.user_id,
        bot_id,
    }))
}
