//! The runner's bots: which are running, and the start / stop / recover / step
//! operations on them, keyed by bot id. Each bot sits behind its own lock, so
//! commands and steps of one bot are serialised while different bots proceed in
//! parallel on the pools. Every change of a bot's running state happens under
//! `transition`, together with its database write, so the consistency check of
//! `/readyz` sees both agree.
//!
//! The conflict rule (docs/bots.md, Several bots): two bots of one user never run
//! at once on the same position (exchange account or paper account, symbol,
//! side), and a bot does not start on a position a stopped sibling's open cycle
//! still holds (a hedge-mode position is one per account, symbol and side: the
//! newcomer would adopt or fight it). A starting bot claims its position in the
//! map, under the map's lock, so two concurrent starts cannot both pass.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::store::sql::Conn;
use serde_json::{json, Value};
use slog::{info, warn, Logger};

use super::journal::{BotCtx, DbJournal};
use super::launch::{Fail, FirstSteps, Launched};
use super::lease::{Leases, Place};
use super::protocol::{Actor, OpResult, Outcome};
use super::slots::Slots;
use super::telegram::Notifier;
use crate::bots::config::BotMarket;
use crate::bots::engine::{Engine, Mode, Verdict};
use crate::bots::ids::BotRef;
use crate::bots::status::{BotStatus, DesiredState, StopMode, StopReason};
use crate::exchange::paper::Paper;
use crate::exchange::rest::{budget, RestSettings};
use crate::exchange::stream::Streams;
use crate::exchange::Exchange;
use crate::secrets::SecretKey;
use crate::store::{self, bot_config, bots, cluster, StoreError};

/// What [`Manager::reset_paper`] did.
#[derive(Debug, PartialEq)]
pub(super) enum PaperReset {
    Done,
    /// One of the user's bots is running, starting or stopping.
    BotActive,
    /// One of the user's (stopped) bots still holds a position of an open cycle.
    PositionOpen,
    Failed(String),
}

/// Whether the bot's last cycle still holds a position on the paper exchange.
fn paper_cycle_open(row: &bots::BotRow) -> bool {
    let on_paper = row.cycle_exchange.as_deref().is_none_or(|e| e == "paper");
    on_paper && !row.position_size.is_zero()
}

/// A resume that failed for a retryable reason is tried again after this long.
const RESUME_RETRY_MS: u64 = 5_000;

/// A running bot: its engine, its exchange account and where it notifies.
pub struct Running {
    pub(super) engine: Engine,
    pub(super) ex: Arc<dyn Exchange>,
    pub(super) ctx: BotCtx,
    last_error: Option<String>,
    /// Which chain of scheduled steps belongs to this run; older ones are dropped.
    generation: u64,
}

impl Running {
    pub(super) fn new(engine: Engine, ex: Arc<dyn Exchange>, ctx: BotCtx) -> Running {
        Running {
            engine,
            ex,
            ctx,
            last_error: None,
            generation: 0,
        }
    }
}

#[derive(Default)]
pub struct Cell {
    bot: Option<Running>,
}

/// Why an idle user's lease could not be given up (`Manager::release_if_idle`).
#[derive(Debug, thiserror::Error)]
pub(super) enum ReleaseError {
    #[error(transparent)]
    Paper(#[from] crate::exchange::paper::PaperError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A command under way for a user (`Manager::command_for`).
pub(super) struct CommandGuard<'a> {
    m: &'a Manager,
    user_id: i64,
}

impl Drop for CommandGuard<'_> {
    fn drop(&mut self) {
        if !self.m.leases.is_cluster() {
            return;
        }
        let mut commands = lock(&self.m.commands);
        if let Some(n) = commands.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                commands.remove(&self.user_id);
            }
        }
    }
}

/// What [`Manager::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    Granted,
    /// Bot `.0` of the same user trades that position.
    Taken(i64),
    /// Bot `.0` of the same user is not running, but its open cycle holds that
    /// position (a position or resting orders on the exchange).
    Held(i64),
}

/// A bot in the map (by id, with its owner: `Slots`): its cell, and the
/// position it claimed once its configuration was read (`None` until then).
struct Slot {
    cell: Arc<Mutex<Cell>>,
    claim: Option<BotMarket>,
}

/// How a run of a bot ends: the status it is left in, the error it leaves for the
/// user to see, and the event that tells the story.
struct Ending {
    status: BotStatus,
    reason: StopReason,
    last_error: Option<String>,
    event: &'static str,
    message: String,
    data: Value,
}

impl Ending {
    /// An end whose message is also the bot's error, unless the bot just stopped.
    fn new(
        status: BotStatus,
        reason: StopReason,
        event: &'static str,
        message: String,
        data: Value,
    ) -> Ending {
        let last_error = (status != BotStatus::Stopped).then(|| message.clone());
        Ending {
            status,
            reason,
            last_error,
            event,
            message,
            data,
        }
    }
}

/// The event text of a bot that finished by itself.
pub(super) fn finished_message(reason: StopReason) -> &'static str {
    match reason {
        StopReason::StopLoss => {
            "the stop-loss closed the cycle; the bot stops (after_stop_loss: stop)"
        }
        StopReason::ClosedOutside => {
            "the position was closed outside the bot; the bot stops and does not re-enter"
        }
        StopReason::Liquidated => {
            "the exchange liquidated the position; the bot stops and does not re-enter"
        }
        _ => "the cycle closed and the bot does not repeat",
    }
}

/// Why a stop asked by `actor` ended the bot.
fn reason_of(actor: Actor) -> StopReason {
    match actor {
        Actor::User => StopReason::User,
        // The runner stops a bot on its own only for an admin's change (the owner
        // disabled, the desired state changed behind its back).
        Actor::Admin(_) | Actor::System => StopReason::Admin,
    }
}

/// Why a bot is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Start,
    Resume,
}

/// Work for the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A step of run `generation` of bot `bot_id` at `due_ms`, or (generation
    /// 0) another try at resuming it.
    At {
        bot_id: i64,
        generation: u64,
        due_ms: u64,
    },
    /// Bot `bot_id`'s account stream reported an order or a fill on its symbol:
    /// its next step comes now.
    Wake { bot_id: i64 },
}

/// Where the bots trade: the paper exchange, the real exchanges' REST
/// settings, and the real accounts' private streams.
pub struct Exchanges {
    pub paper: Arc<Paper>,
    /// Where the real exchanges are (`BYBIT_BASE_URL`, …).
    pub rest: RestSettings,
    pub streams: Streams,
}

pub struct Manager {
    /// Bot id → slot, for every bot starting, running or stopping.
    map: Mutex<Slots<Slot>>,
    transition: Mutex<()>,
    /// Bots whose database status is `running`, changed with that status.
    running: AtomicU64,
    generations: AtomicU64,
    paper: Arc<Paper>,
    /// Where the real exchanges are (`BYBIT_BASE_URL`, …).
    rest: RestSettings,
    key: Option<SecretKey>,
    pub(super) telegram: Notifier,
    /// The scheduler's inbox.
    due: Mutex<Sender<Due>>,
    /// The private account streams the real-exchange bots read through.
    streams: Streams,
    /// Which users' bots this runner may drive (all on one host).
    pub(super) leases: Arc<Leases>,
    /// Commands under way per user (cluster only): a user's lease is not given
    /// up while one is, since it was admitted on that lease.
    commands: Mutex<HashMap<i64, u32>>,
    tick_ms: u64,
    log: Logger,
}

/// Locks, recovering from a panic of an earlier holder: one bot's bug must not
/// wedge it (or every bot) for good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| {
        m.clear_poison();
        p.into_inner()
    })
}

impl Manager {
    pub fn new(
        exchanges: Exchanges,
        key: Option<SecretKey>,
        telegram: Notifier,
        due: Sender<Due>,
        leases: Arc<Leases>,
        tick_ms: u64,
        log: Logger,
    ) -> Manager {
        let Exchanges {
            paper,
            rest,
            streams,
        } = exchanges;
        Manager {
            map: Mutex::new(Slots::default()),
            transition: Mutex::new(()),
            running: AtomicU64::new(0),
            generations: AtomicU64::new(1),
            paper,
            rest,
            key,
            telegram,
            due: Mutex::new(due),
            streams,
            leases,
            commands: Mutex::new(HashMap::new()),
            tick_ms,
            log,
        }
    }

    /// `ex` for a bot of `user_id`, refusing every call once the user's lease
    /// is no longer valid here (cluster only).
    pub(super) fn fenced(&self, ex: Arc<dyn Exchange>, user_id: i64) -> Arc<dyn Exchange> {
        super::fenced::Fenced::wrap(ex, self.leases.clone(), user_id)
    }

    pub(super) fn is_cluster(&self) -> bool {
        self.leases.is_cluster()
    }

    /// Admits a command for `user_id`: this runner drives the user's bots, or
    /// takes their free lease now (reloading their paper account and resuming
    /// their bots); otherwise the answer names the instance that drives them.
    /// With `place` (a start that reached this instance first) a user nobody
    /// drives goes to the instance with the fewest bots instead, which may be
    /// another one (`Leases::place`).
    pub(super) fn admit(&self, conn: &Conn, user_id: i64, place: bool) -> Result<(), OpResult> {
        let placed = if place {
            self.leases.place(conn, user_id)
        } else {
            self.leases.acquire(conn, user_id).map(|r| match r {
                Ok(taken) => Place::Here(taken),
                Err(holder) => Place::Held(holder),
            })
        };
        // `data.instance` tells the worker where to route the command.
        let elsewhere = |instance: String, placed: bool, message: String| OpResult {
            data: Some(json!({ "instance": instance, "placed": placed })),
            ..OpResult::new(Outcome::Conflict, message)
        };
        match placed {
            Ok(Place::Here(false)) => Ok(()),
            Ok(Place::Here(true)) => {
                self.paper.partition(self.leases.held());
                info!(self.log, "took a user's lease"; "user_id" => user_id);
                if let Err(e) = self.resume_user(conn, user_id) {
                    // Held in the database but not here: the next round renews
                    // the lease, finds the user new and resumes their bots.
                    self.leases.forget(user_id);
                    return Err(OpResult::new(Outcome::Error, format!("database: {e}")));
                }
                Ok(())
            }
            Ok(Place::Held(holder)) => Err(elsewhere(
                holder.clone(),
                false,
                format!("This user's bots are driven by instance {holder}"),
            )),
            Ok(Place::Elsewhere(to)) => Err(elsewhere(
                to.clone(),
                true,
                format!("This user's bots go to instance {to}, which has the fewest bots"),
            )),
            Err(e) => Err(OpResult::new(Outcome::Error, format!("database: {e}"))),
        }
    }

    /// Counts a command for `user_id` as under way until the guard drops (in a
    /// cluster; nothing on one host).
    pub(super) fn command_for(&self, user_id: i64) -> CommandGuard<'_> {
        if self.leases.is_cluster() {
            *lock(&self.commands).entry(user_id).or_default() += 1;
        }
        CommandGuard { m: self, user_id }
    }

    /// Gives up `user_id`'s lease if nothing of theirs is driven here: no
    /// command under way, no bot in the map, nothing their paper account
    /// still does on the market (the caller read that no bot of theirs should
    /// run). Checked and released under the command count's lock, so a command
    /// admitted on the lease cannot start in between. Returns whether it did;
    /// the caller re-partitions the paper book once for all it released.
    pub(super) fn release_if_idle(&self, conn: &Conn, user_id: i64) -> Result<bool, ReleaseError> {
        let commands = lock(&self.commands);
        if commands.get(&user_id).is_some_and(|n| *n > 0) {
            return Ok(false);
        }
        if lock(&self.map).has_user(user_id) {
            return Ok(false);
        }
        if self.paper.in_use_by(user_id)? {
            return Ok(false);
        }
        let released = self.leases.release(conn, user_id)?;
        // Only now may a command for the user be admitted (on a new lease).
        drop(commands);
        Ok(released)
    }

    /// Resumes the bots meant to run of a user whose lease a command just took
    /// (their last holder died, and no lease round adopted them yet). The rounds
    /// count the user as held from now on, so they would never resume them; and
    /// resumed before the command runs, the bots meet it as they are (a recover
    /// finds its bot running). A bot whose resume fails is retried as after a
    /// restart (`resume`).
    fn resume_user(&self, conn: &Conn, user_id: i64) -> Result<(), StoreError> {
        for w in cluster::wanted_of(conn, user_id)? {
            self.resume_as(conn, w.bot);
        }
        Ok(())
    }

    /// Drops `user_id`'s bots from this runner at once, with no exchange call
    /// and no database write: another instance holds (or may take) their lease,
    /// and the database already says what they are. Returns how many it dropped.
    pub(super) fn drop_user(&self, user_id: i64) -> usize {
        let ids: Vec<(i64, Arc<Mutex<Cell>>)> = lock(&self.map)
            .of_user(user_id)
            .map(|(id, slot)| (id, slot.cell.clone()))
            .collect();
        for (bot_id, cell) in &ids {
            if lock(cell).bot.take().is_some() {
                self.running.fetch_sub(1, Ordering::Relaxed);
            }
            self.forget(*bot_id);
        }
        ids.len()
    }

    pub fn paper(&self) -> &Arc<Paper> {
        &self.paper
    }

    pub(super) fn rest(&self) -> &RestSettings {
        &self.rest
    }

    pub(super) fn key(&self) -> Option<&SecretKey> {
        self.key.as_ref()
    }

    pub(super) fn log(&self) -> &Logger {
        &self.log
    }

    /// The exchange account and symbol of bot `bot_id` while it runs.
    pub(super) fn running_exchange(&self, bot_id: i64) -> Option<(Arc<dyn Exchange>, String)> {
        let cell = self.cell(bot_id)?;
        let guard = lock(&cell);
        let bot = guard.bot.as_ref()?;
        Some((bot.ex.clone(), bot.engine.cfg.symbol.clone()))
    }

    /// Resets `uid`'s paper account unless one of their bots could trade on it.
    /// The map stays locked from the check to the reset: a start puts the bot in
    /// the map before it writes `starting`, so checking and resetting in two
    /// steps would let a start slip between them and trade on an account that
    /// then vanishes.
    pub(super) fn reset_paper(&self, conn: &Conn, uid: i64) -> PaperReset {
        let map = lock(&self.map);
        if map.has_user(uid) {
            return PaperReset::BotActive;
        }
        let rows = match bots::of_user(conn, uid) {
            Ok(rows) => rows,
            Err(e) => return PaperReset::Failed(format!("cannot read the bots' state: {e}")),
        };
        if rows.iter().any(|row| row.status.is_active()) {
            return PaperReset::BotActive;
        }
        // A stopped bot still has a cycle on this account: its fills and position
        // would describe a position the exchange no longer has.
        if rows.iter().any(paper_cycle_open) {
            return PaperReset::PositionOpen;
        }
        let done = self.paper.reset_account(uid);
        drop(map);
        match done {
            Ok(()) => PaperReset::Done,
            Err(e) => PaperReset::Failed(format!("the paper exchange refused the reset: {e}")),
        }
    }

    fn cell(&self, bot_id: i64) -> Option<Arc<Mutex<Cell>>> {
        lock(&self.map).get(&bot_id).map(|slot| slot.cell.clone())
    }

    /// Claims `market` for `bot` unless another bot of the same user trades that
    /// position: one in the map that claimed it, one meant to run that is not
    /// in the map yet (waiting to be resumed), or one whose open cycle holds it.
    /// The claim is made under the map's lock, so of two concurrent starts on
    /// one position exactly one passes. The database is read before the lock:
    /// a bot only comes to hold a position by running, in the map, and a bot
    /// read as meant to run still counts when it has left the map since.
    pub(super) fn claim(
        &self,
        conn: &Conn,
        bot: BotRef,
        market: &BotMarket,
    ) -> Result<Claim, StoreError> {
        let wanted = bot_config::wanted_markets_of(conn, bot.user_id)?;
        let open = bots::open_cycles_of(conn, bot.user_id)?;
        let mut map = lock(&self.map);
        let claimed = map.of_user(bot.user_id).find(|(id, slot)| {
            *id != bot.bot_id && slot.claim.as_ref().is_some_and(|c| c.same_position(market))
        });
        let waiting = wanted
            .iter()
            .find(|(id, m)| *id != bot.bot_id && !map.contains_key(id) && m.same_position(market));
        if let Some(other) = claimed.map(|(id, _)| id).or(waiting.map(|(id, _)| *id)) {
            return Ok(Claim::Taken(other));
        }
        let held = open
            .iter()
            .find(|(id, m)| *id != bot.bot_id && m.same_position(market));
        if let Some((other, _)) = held {
            return Ok(Claim::Held(*other));
        }
        if let Some(slot) = map.get_mut(&bot.bot_id) {
            slot.claim = Some(market.clone());
        }
        Ok(Claim::Granted)
    }

    fn schedule(&self, bot_id: i64, generation: u64, after_ms: u64) {
        let due_ms = blitz_master::clock::now_ms() + after_ms;
        let _ = lock(&self.due).send(Due::At {
            bot_id,
            generation,
            due_ms,
        });
    }

    pub(super) fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Bot `bot_id` leaves the map (ended, or never started): it no longer
    /// uses its account's stream.
    fn forget(&self, bot_id: i64) {
        lock(&self.map).remove(&bot_id);
        self.streams.detach(bot_id);
    }

    /// Resumes bot `bot_id` (by id alone: the retry of a failed resume).
    pub fn resume(&self, conn: &Conn, bot_id: i64) -> OpResult {
        match bots::get(conn, bot_id) {
            Ok(Some(row)) => self.resume_as(
                conn,
                BotRef {
                    user_id: row.user_id,
                    bot_id,
                },
            ),
            Ok(None) => OpResult::not_running(),
            Err(e) => {
                self.retry_resume(conn, None, bot_id, &format!("database: {e}"));
                OpResult::new(Outcome::Error, format!("database: {e}"))
            }
        }
    }

    /// Resumes `bot` after a restart or an adoption (its owner known from the
    /// read that listed it).
    pub fn resume_as(&self, conn: &Conn, bot: BotRef) -> OpResult {
        self.start(conn, bot, Why::Resume, Actor::System)
    }

    /// Starts (or resumes) `bot` and reports the real outcome.
    pub fn start(&self, conn: &Conn, bot: BotRef, why: Why, actor: Actor) -> OpResult {
        let id = bot.bot_id;
        let cell = Arc::new(Mutex::new(Cell::default()));
        let mut guard = {
            let mut map = lock(&self.map);
            if map.contains_key(&id) {
                return OpResult::new(Outcome::AlreadyRunning, "Bot is already running");
            }
            let slot = Slot {
                cell: cell.clone(),
                claim: None,
            };
            map.insert(id, bot.user_id, slot);
            // Locked before the map is released: a concurrent stop waits for us.
            lock(&cell)
        };
        if !self.leases.valid(bot.user_id) {
            self.forget(id);
            return OpResult::not_running();
        }
        // A queued resume checks that nobody stopped the bot meanwhile (read
        // once it is in the map: a stop from now on waits for us); the launch
        // goes on from that row.
        let row = match why {
            Why::Start => None,
            Why::Resume => match self.wanted_row(conn, bot) {
                Ok(Some(row)) => Some(row),
                Ok(None) => {
                    self.forget(id);
                    return OpResult::not_running();
                }
                Err(e) => {
                    self.forget(id);
                    self.retry_resume(conn, None, id, &format!("database: {e}"));
                    return OpResult::new(Outcome::Error, format!("database: {e}"));
                }
            },
        };
        // A user waits for a start: its exchange reads go before the steady
        // reads of running bots.
        let launch = || budget::urgent(|| self.launch(conn, bot, why, row));
        let launched = catch_unwind(AssertUnwindSafe(launch))
            .unwrap_or_else(|_| Err(Fail::Exchange("internal error while starting".into())));
        match launched {
            Ok(l) => self.register(conn, bot, why, actor, &mut guard, l),
            Err(Fail::Transient(msg)) if why == Why::Resume => {
                self.retry_resume(conn, Some(bot), id, &msg);
                self.forget(id);
                OpResult::new(Outcome::Error, msg)
            }
            // Refused before anything changed (launch put the state back).
            Err(Fail::Conflict(msg)) if why == Why::Start => {
                self.forget(id);
                OpResult::new(Outcome::Conflict, msg)
            }
            // The cycle closed while the runner was down (its stop fired, say):
            // the bot did resume, recorded the close, and ends as the close says.
            Err(fail @ Fail::Finished(..)) if why == Why::Resume => {
                let resumed = bots::add_event(
                    conn,
                    bot,
                    "resumed",
                    "Bot resumed after a restart; its cycle had closed meanwhile",
                    Some(&json!({"actor": actor})),
                    store::now(),
                );
                if let Err(e) = resumed {
                    warn!(self.log, "cannot record a resume"; "bot_id" => id, "error" => %e);
                }
                self.end_at_resume(conn, bot, &mut guard, fail, actor)
            }
            Err(fail) => self.abort(conn, bot, &mut guard, fail, actor),
        }
    }

    /// A queued resume checks that nobody stopped the bot meanwhile.
    fn still_wanted(&self, conn: &Conn, bot_id: i64) -> bool {
        matches!(bots::get(conn, bot_id), Ok(Some(row)) if row.desired_state == DesiredState::Running)
    }

    /// `bot`'s row while it is meant to run.
    fn wanted_row(&self, conn: &Conn, bot: BotRef) -> Result<Option<bots::BotRow>, StoreError> {
        Ok(bots::get(conn, bot.bot_id)?
            .filter(|row| row.user_id == bot.user_id && row.desired_state == DesiredState::Running))
    }

    /// Schedules another resume of bot `bot_id`, recording why (when its owner
    /// is known: the database may be what failed).
    fn retry_resume(&self, conn: &Conn, bot: Option<BotRef>, bot_id: i64, msg: &str) {
        warn!(self.log, "bot resume failed; retrying"; "bot_id" => bot_id, "error" => msg);
        if let Some(bot) = bot {
            let _ = bots::set_last_error(conn, bot_id, Some(msg), store::now());
            let _ = bots::add_event(
                conn,
                bot,
                "error",
                &format!("resume failed, retrying: {msg}"),
                Some(&json!({"retrying": true})),
                store::now(),
            );
        }
        self.schedule(bot_id, 0, RESUME_RETRY_MS);
    }

    /// Records a started bot as running and schedules its steps.
    fn register(
        &self,
        conn: &Conn,
        bot: BotRef,
        why: Why,
        actor: Actor,
        guard: &mut MutexGuard<'_, Cell>,
        l: Launched,
    ) -> OpResult {
        let Launched {
            mut running,
            first: FirstSteps { actions, retrying },
        } = l;
        let (kind, message) = match why {
            Why::Start => ("started", "Bot started".to_string()),
            Why::Resume => {
                let c = &running.ctx;
                let market = format!("{} {} on {}", c.side, c.symbol, c.exchange);
                ("resumed", format!("Bot resumed after a restart: {market}"))
            }
        };
        let t = lock(&self.transition);
        let data = json!({"actor": actor, "actions": actions, "cycle": running.engine.state.cycle});
        let event = (kind, message.as_str(), &data);
        let written = bots::record_running(conn, bot, retrying.as_deref(), event, store::now());
        if let Err(e) = written {
            drop(t);
            return self.abort(
                conn,
                bot,
                guard,
                Fail::Exchange(format!("database: {e}")),
                actor,
            );
        }
        running.generation = self.generations.fetch_add(1, Ordering::Relaxed);
        running.last_error = retrying.clone();
        self.schedule(bot.bot_id, running.generation, self.tick_ms);
        guard.bot = Some(running);
        self.running.fetch_add(1, Ordering::Relaxed);
        drop(t);
        info!(self.log, "bot {kind}"; "bot_id" => bot.bot_id, "actor" => %actor);
        let message = match retrying {
            Some(e) => {
                format!("Bot started successfully; the exchange did not answer yet ({e}), retrying")
            }
            None => "Bot started successfully".into(),
        };
        OpResult::new(Outcome::Started, message).with_actions(actions)
    }

    /// Records a failed start and forgets the bot.
    fn abort(
        &self,
        conn: &Conn,
        bot: BotRef,
        guard: &mut MutexGuard<'_, Cell>,
        fail: Fail,
        actor: Actor,
    ) -> OpResult {
        self.end_before_running(conn, bot, guard, fail, actor, "start_failed")
    }

    /// A resumed bot whose cycle closed while the runner was down: it stops as
    /// that close says (event `stopped`, not a failed start).
    fn end_at_resume(
        &self,
        conn: &Conn,
        bot: BotRef,
        guard: &mut MutexGuard<'_, Cell>,
        fail: Fail,
        actor: Actor,
    ) -> OpResult {
        self.end_before_running(conn, bot, guard, fail, actor, "stopped")
    }

    fn end_before_running(
        &self,
        conn: &Conn,
        bot: BotRef,
        guard: &mut MutexGuard<'_, Cell>,
        fail: Fail,
        actor: Actor,
        event: &'static str,
    ) -> OpResult {
        let (outcome, status) = (fail.outcome(), fail.status());
        let data = json!({"actor": actor});
        let reason = fail.stop_reason();
        let end = Ending::new(status, reason, event, fail.into_message(), data);
        if let Err(e) = self.finish(conn, bot, guard, &end, false) {
            warn!(self.log, "cannot record a bot's end"; "bot_id" => bot.bot_id, "error" => %e);
        }
        OpResult::new(outcome, end.message)
    }

    /// Stops `bot` with `mode`. The stop is recorded (desired state
    /// stopped, status stopping) before the exchange is touched, so a crash in the
    /// middle never resumes the bot.
    pub fn stop(&self, conn: &Conn, bot: BotRef, mode: StopMode, actor: Actor) -> OpResult {
        let cell = match self.cell(bot.bot_id) {
            Some(c) => c,
            // Waiting to be resumed after a restart: resume it now, then stop it.
            None if self.still_wanted(conn, bot.bot_id) => {
                self.start(conn, bot, Why::Resume, Actor::System);
                match self.cell(bot.bot_id) {
                    Some(c) => c,
                    None => return OpResult::not_running(),
                }
            }
            None => return OpResult::not_running(),
        };
        let mut guard = lock(&cell);
        if mode == StopMode::AfterCycle {
            return self.stop_after_cycle(conn, bot, &mut guard, actor);
        }
        let Some(mut run) = guard.bot.take() else {
            return OpResult::not_running();
        };
        if let Err(e) = self.begin_stop(conn, bot, mode, actor) {
            guard.bot = Some(run);
            return OpResult::new(Outcome::Error, format!("could not record the stop: {e}"));
        }
        let done = catch_unwind(AssertUnwindSafe(|| {
            let mut j = DbJournal::new(conn, bot, &run.ctx, &self.telegram, &self.leases);
            run.engine.stop(run.ex.as_ref(), &mut j, mode)
        }));
        let (actions, problem) = match done {
            Ok(Ok(a)) => (a, None),
            Ok(Err(e)) => (Vec::new(), Some(format!("{mode} did not complete: {e}"))),
            Err(_) => (
                Vec::new(),
                Some(format!("{mode} did not complete: internal error")),
            ),
        };
        let data = json!({"actor": actor, "mode": mode, "actions": actions});
        let message = format!("Bot stopped ({mode})");
        let end = Ending {
            // Stopped, not failed: what did not complete stays visible.
            last_error: problem.clone(),
            ..Ending::new(
                BotStatus::Stopped,
                reason_of(actor),
                "stopped",
                message,
                data,
            )
        };
        if let Err(e) = self.finish(conn, bot, &mut guard, &end, false) {
            return OpResult::new(
                Outcome::Error,
                format!("the bot stopped but its state was not saved: {e}"),
            );
        }
        let message = match problem {
            Some(p) => format!("Bot stopped successfully, but {p}"),
            None => "Bot stopped successfully".into(),
        };
        OpResult::new(Outcome::Stopped, message).with_actions(actions)
    }

    /// `after_cycle`: the bot finishes its cycle, then stops instead of repeating.
    /// The flag is persisted (a restart keeps it); a later stop overrides it.
    fn stop_after_cycle(
        &self,
        conn: &Conn,
        bot: BotRef,
        guard: &mut MutexGuard<'_, Cell>,
        actor: Actor,
    ) -> OpResult {
        let Some(run) = guard.bot.as_mut() else {
            return OpResult::not_running();
        };
        let written = bots::set_after_cycle(conn, bot.bot_id, true).and_then(|()| {
            bots::add_event(
                conn,
                bot,
                "stopping_after_cycle",
                "The bot stops when the current cycle closes",
                Some(&json!({"actor": actor, "cycle": run.engine.state.cycle})),
                store::now(),
            )
            .map(|_| ())
        });
        if let Err(e) = written {
            return OpResult::new(Outcome::Error, format!("could not record the stop: {e}"));
        }
        run.engine.after_cycle = true;
        OpResult::new(
            Outcome::StoppingAfterCycle,
            "The bot stops when the current cycle closes",
        )
    }

    fn begin_stop(
        &self,
        conn: &Conn,
        bot: BotRef,
        mode: StopMode,
        actor: Actor,
    ) -> Result<(), StoreError> {
        let _t = lock(&self.transition);
        let (desired, status) = (DesiredState::Stopped, BotStatus::Stopping);
        bots::set_state(conn, bot.bot_id, desired, status, None, store::now())?;
        bots::add_event(
            conn,
            bot,
            "stopping",
            &format!("Bot stopping ({mode})"),
            Some(&json!({"actor": actor, "mode": mode})),
            store::now(),
        )?;
        self.running.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// Re-creates what the running bot is missing.
    pub fn recover(&self, conn: &Conn, bot: BotRef, actor: Actor) -> OpResult {
        let Some(cell) = self.cell(bot.bot_id) else {
            return OpResult::not_running();
        };
        let mut guard = lock(&cell);
        let Some(run) = guard.bot.as_mut() else {
            return OpResult::not_running();
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut j = DbJournal::new(conn, bot, &run.ctx, &self.telegram, &self.leases);
            run.engine.step(run.ex.as_ref(), &mut j, Mode::Recover)
        }));
        match result {
            Ok(Ok((actions, verdict))) => {
                let _ = bots::add_event(
                    conn,
                    bot,
                    "recovered",
                    "Recovery process completed",
                    Some(&json!({"actor": actor, "actions": actions})),
                    store::now(),
                );
                // Its scheduled steps go on as they were; recover adds none.
                self.settle(conn, bot, &mut guard, verdict, false);
                OpResult::new(Outcome::Recovered, "Recovery process completed")
                    .with_actions(actions)
            }
            Ok(Err(e)) => OpResult::new(Outcome::Error, format!("recovery failed: {e}")),
            Err(_) => {
                self.settle(
                    conn,
                    bot,
                    &mut guard,
                    Verdict::Failed("internal error in recovery".into()),
                    false,
                );
                OpResult::new(Outcome::Error, "recovery failed: internal error")
            }
        }
    }

    /// One scheduled step of run `generation` of bot `bot_id`; it schedules the
    /// next.
    pub fn tick(&self, conn: &Conn, bot_id: i64, generation: u64) {
        let Some(cell) = self.cell(bot_id) else {
            return;
        };
        let mut guard = match cell.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => {
                cell.clear_poison();
                p.into_inner()
            }
            // A command holds the bot: skip this step rather than queue behind it.
            Err(TryLockError::WouldBlock) => {
                self.schedule(bot_id, generation, self.tick_ms);
                return;
            }
        };
        let Some(run) = guard.bot.as_mut().filter(|b| b.generation == generation) else {
            return;
        };
        let bot = run.engine.bot;
        // Fenced: past its lease this runner writes nothing and calls no exchange
        // for the bot; the next lease round drops it or finds the lease still ours.
        if !self.leases.valid(bot.user_id) {
            self.schedule(bot_id, generation, self.tick_ms);
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut j = DbJournal::new(conn, bot, &run.ctx, &self.telegram, &self.leases);
            run.engine.step(run.ex.as_ref(), &mut j, Mode::Tick)
        }));
        // A bug in one bot's step ends that bot with an error, visibly, and
        // nothing else (the panic hook has logged it).
        let Ok(result) = result else {
            crate::metrics::error(crate::metrics::ErrorKind::RunnerPanic);
            let failed = Verdict::Failed("internal error in the bot's step".into());
            return self.settle(conn, bot, &mut guard, failed, true);
        };
        match result {
            Ok((_, verdict)) => {
                if run.last_error.take().is_some() {
                    let _ = bots::set_last_error(conn, bot_id, None, store::now());
                }
                self.settle(conn, bot, &mut guard, verdict, true);
            }
            Err(e) if e.is_retryable() => {
                let msg = format!("retrying: {e}");
                // Fenced mid-step: the error is this runner's, not the bot's, and
                // the user's state is the new holder's to write.
                let fenced = !self.leases.valid(bot.user_id);
                if !fenced && run.last_error.as_deref() != Some(&msg) {
                    let _ = bots::set_last_error(conn, bot_id, Some(&msg), store::now());
                    let _ = bots::add_event(
                        conn,
                        bot,
                        "error",
                        &msg,
                        Some(&json!({"retrying": true})),
                        store::now(),
                    );
                    run.last_error = Some(msg);
                }
                self.schedule(bot_id, generation, self.tick_ms);
            }
            Err(e) => {
                // Nothing is cancelled on the way out (the stop stays): the error
                // says what is left.
                let msg = format!("{e}; {}", run.engine.leftovers(run.ex.as_ref()));
                self.settle(conn, bot, &mut guard, Verdict::Failed(msg), true)
            }
        }
    }

    /// Applies a step's verdict: go on (scheduling the next step if asked), or end
    /// the bot with the right status.
    fn settle(
        &self,
        conn: &Conn,
        bot: BotRef,
        guard: &mut MutexGuard<'_, Cell>,
        verdict: Verdict,
        reschedule: bool,
    ) {
        let ending = |status: BotStatus, reason: StopReason, event, message| {
            Ending::new(
                status,
                reason,
                event,
                message,
                json!({"status": status, "stop_reason": reason}),
            )
        };
        let end = match verdict {
            Verdict::Continue => {
                if let (true, Some(run)) = (reschedule, guard.bot.as_ref()) {
                    self.schedule(bot.bot_id, run.generation, self.tick_ms);
                }
                return;
            }
            Verdict::Finished(reason) => ending(
                BotStatus::Stopped,
                reason,
                "stopped",
                finished_message(reason).to_string(),
            ),
            Verdict::SafetyStop(m) => {
                ending(BotStatus::SafetyStop, StopReason::Error, "stopped", m)
            }
            Verdict::Failed(m) => {
                crate::metrics::error(crate::metrics::ErrorKind::BotFailed);
                ending(BotStatus::Error, StopReason::Error, "error", m)
            }
        };
        if let (Some(e), Some(run)) = (&end.last_error, guard.bot.as_ref()) {
            run.ctx.notify(&self.telegram, &format!("Bot stopped: {e}"));
        }
        if let Err(e) = self.finish(conn, bot, guard, &end, true) {
            warn!(self.log, "cannot record a bot's end"; "bot_id" => bot.bot_id, "error" => %e);
        }
    }

    /// Writes the bot's end and forgets it, under the transition lock.
    fn finish(
        &self,
        conn: &Conn,
        bot: BotRef,
        guard: &mut MutexGuard<'_, Cell>,
        end: &Ending,
        was_running: bool,
    ) -> Result<(), StoreError> {
        let _t = lock(&self.transition);
        let (status, error) = (end.status, end.last_error.as_deref());
        let write = bots::set_state(
            conn,
            bot.bot_id,
            DesiredState::Stopped,
            status,
            error,
            store::now(),
        )
        .and_then(|()| bots::set_stop_reason(conn, bot.bot_id, Some(end.reason)))
        .and_then(|()| bots::set_after_cycle(conn, bot.bot_id, false))
        // A configuration change waiting for the next cycle applies now that the
        // bot is stopped, as a change made while stopped would — unless the bot
        // failed (an error, a safety stop) with a cycle still open: nobody chose
        // to end that cycle, so the change waits for its close.
        .and_then(|()| bots::get(conn, bot.bot_id))
        .and_then(|row| {
            let failed = matches!(status, BotStatus::Error | BotStatus::SafetyStop);
            match row.and_then(|r| r.cycle_opened_at) {
                Some(_) if failed => Ok(()),
                _ => bot_config::apply_pending(conn, bot.bot_id).map(|_| ()),
            }
        })
        .and_then(|()| {
            let data = Some(&end.data);
            bots::add_event(conn, bot, end.event, &end.message, data, store::now())
        });
        guard.bot = None;
        self.forget(bot.bot_id);
        if was_running {
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
        info!(self.log, "bot ended"; "bot_id" => bot.bot_id, "status" => status.as_str());
        write.map(|_| ())
    }

    /// Stops bots that must not run (owner disabled, desired state changed in the
    /// database), then compares the running count with the database.
    pub fn sweep(&self, conn: &Conn) -> Result<(u64, u64), StoreError> {
        for bot in bots::must_stop(conn)? {
            if self.cell(bot.bot_id).is_some() {
                self.stop(conn, bot, StopMode::CancelOrders, Actor::System);
            }
        }
        bots::heartbeat(conn, store::now())?;
        let _t = lock(&self.transition);
        // In a cluster the database's running bots are every instance's.
        let db = match self.leases.name() {
            Some(name) => cluster::count_running_of(conn, name)?,
            None => bots::count_running(conn)?,
        };
        let db = db.max(0) as u64;
        let mine = self.running.load(Ordering::Relaxed);
        crate::metrics::active_bots(mine);
        Ok((mine, db))
    }
}
