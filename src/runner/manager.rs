//! The runner's bots: which are running, and the start / stop / recover / step
//! operations on them. Each bot sits behind its own lock, so commands and steps of
//! one bot are serialised while different bots proceed in parallel on the pools.
//! Every change of a bot's running state happens under `transition`, together with
//! its database write, so the consistency check of `/readyz` sees both agree.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use serde_json::json;
use slog::{info, warn, Logger};

use super::journal::DbJournal;
use super::protocol::{Outcome, Reply};
use super::telegram::{Notifier, Target};
use crate::bots::config::{self, side_name, StoredConfig};
use crate::bots::engine::{BotError, CycleState, Engine, Mode, StopMode, Verdict};
use crate::exchange::paper::Paper;
use crate::exchange::{Exchange, ExchangeError};
use crate::secrets::SecretKey;
use crate::store::{self, bots, users, StoreError};

/// A running bot: its engine, its exchange account and where it notifies.
pub struct Running {
    engine: Engine,
    ex: Arc<dyn Exchange>,
    ctx: BotCtx,
    last_error: Option<String>,
}

/// What the journal needs besides the engine (kept apart so both can be borrowed).
struct BotCtx {
    exchange: String,
    symbol: String,
    side: &'static str,
    telegram: Option<Target>,
}

#[derive(Default)]
pub struct Cell {
    bot: Option<Running>,
}

/// Why a bot is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Start,
    Resume,
}

/// Why a start did not produce a running bot.
enum Fail {
    Invalid(String),
    MissingCredentials(String),
    Exchange(String),
    Safety(String),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Exchange(format!("database: {e}"))
    }
}

impl From<BotError> for Fail {
    fn from(e: BotError) -> Self {
        match e {
            BotError::Exchange(ExchangeError::UnknownSymbol(s)) => {
                Fail::Invalid(format!("the exchange does not list {s}"))
            }
            BotError::Exchange(ExchangeError::InvalidKey) => {
                Fail::MissingCredentials("the exchange rejected the API key".into())
            }
            other => Fail::Exchange(other.to_string()),
        }
    }
}

pub struct Manager {
    map: Mutex<HashMap<i64, Arc<Mutex<Cell>>>>,
    transition: Mutex<()>,
    running: AtomicU64,
    paper: Arc<Paper>,
    key: Option<SecretKey>,
    telegram: Notifier,
    /// (bot, when) of bots whose step finished and who want another: the
    /// scheduler's inbox.
    reschedule: Mutex<Sender<(i64, u64)>>,
    tick_ms: u64,
    log: Logger,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside one bot's step must not wedge every other bot.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Manager {
    pub fn new(
        paper: Arc<Paper>,
        key: Option<SecretKey>,
        telegram: Notifier,
        reschedule: Sender<(i64, u64)>,
        tick_ms: u64,
        log: Logger,
    ) -> Manager {
        Manager {
            map: Mutex::new(HashMap::new()),
            transition: Mutex::new(()),
            running: AtomicU64::new(0),
            paper,
            key,
            telegram,
            reschedule: Mutex::new(reschedule),
            tick_ms,
            log,
        }
    }

    pub fn paper(&self) -> &Arc<Paper> {
        &self.paper
    }

    fn cell(&self, uid: i64) -> Option<Arc<Mutex<Cell>>> {
        lock(&self.map).get(&uid).cloned()
    }

    fn schedule(&self, uid: i64) {
        let due = blitz_master::clock::now_ms() + self.tick_ms;
        let _ = lock(&self.reschedule).send((uid, due));
    }

    /// Starts (or resumes) `uid`'s bot and reports the real outcome.
    pub fn start(&self, conn: &Connection, uid: i64, why: Why, actor: &str) -> Reply {
        let cell = Arc::new(Mutex::new(Cell::default()));
        let mut guard = {
            let mut map = lock(&self.map);
            if map.contains_key(&uid) {
                return Reply::new(Outcome::AlreadyRunning, "Bot is already running");
            }
            map.insert(uid, cell.clone());
            // Locked before the map is released: a concurrent stop waits for us.
            lock(&cell)
        };
        match self.launch(conn, uid, why) {
            Ok((running, actions)) => {
                let _t = lock(&self.transition);
                let (kind, message) = match why {
                    Why::Start => ("started", "Bot started"),
                    Why::Resume => ("resumed", "Bot resumed after a restart"),
                };
                let ok = bots::set_state(conn, uid, "running", "running", None, store::now())
                    .and_then(|()| {
                        bots::add_event(conn, uid, kind, message,
                            Some(&json!({"actor": actor, "actions": actions, "cycle": running.engine.state.cycle})),
                            store::now())
                    });
                if let Err(e) = ok {
                    drop(_t);
                    return self.abort(conn, uid, &mut guard, Fail::from(e), actor);
                }
                info!(self.log, "bot {kind}"; "user_id" => uid, "actor" => actor);
                guard.bot = Some(running);
                self.running.fetch_add(1, Ordering::Relaxed);
                self.schedule(uid);
                let mut reply = Reply::new(Outcome::Started, "Bot started successfully");
                reply.actions = actions;
                reply
            }
            Err(fail) => self.abort(conn, uid, &mut guard, fail, actor),
        }
    }

    /// Records a failed start and forgets the bot.
    fn abort(
        &self,
        conn: &Connection,
        uid: i64,
        guard: &mut MutexGuard<'_, Cell>,
        fail: Fail,
        actor: &str,
    ) -> Reply {
        let (status, outcome, msg) = match fail {
            Fail::Invalid(m) => ("error", Outcome::InvalidConfig, m),
            Fail::MissingCredentials(m) => ("error", Outcome::MissingCredentials, m),
            Fail::Exchange(m) => ("error", Outcome::Error, m),
            Fail::Safety(m) => ("safety_stop", Outcome::Error, m),
        };
        let _t = lock(&self.transition);
        let write = bots::set_state(conn, uid, "stopped", status, Some(&msg), store::now())
            .and_then(|()| {
                bots::add_event(
                    conn,
                    uid,
                    "start_failed",
                    &msg,
                    Some(&json!({"actor": actor})),
                    store::now(),
                )
            });
        if let Err(e) = write {
            warn!(self.log, "cannot record a failed start"; "user_id" => uid, "error" => %e);
        }
        guard.bot = None;
        lock(&self.map).remove(&uid);
        Reply::new(outcome, msg)
    }

    /// Loads the configuration, connects to the exchange and runs the first step.
    fn launch(
        &self,
        conn: &Connection,
        uid: i64,
        why: Why,
    ) -> Result<(Running, Vec<String>), Fail> {
        let user = users::by_id(conn, uid)?.ok_or_else(|| Fail::Invalid("no such user".into()))?;
        if user.disabled {
            return Err(Fail::Invalid("the account is disabled".into()));
        }
        // `starting` is written before the configuration is read: a concurrent
        // `PUT /api/bot/config` (one immediate transaction that checks the status)
        // either lands before this and is used, or sees `starting` and gets 409.
        let row = bots::get_or_create(conn, uid, store::now())?;
        bots::set_state(conn, uid, "running", "starting", None, store::now())?;
        let stored =
            config::load(conn, uid)?.ok_or_else(|| Fail::Invalid("no such user".into()))?;
        let cfg = stored.config.clone();
        if cfg.grids.is_empty() || cfg.rounds == 0 || cfg.rounds > cfg.grids.len() {
            return Err(Fail::Invalid("the grid configuration is incomplete".into()));
        }
        let ex = self.exchange(uid, &stored)?;
        let telegram = self.telegram_target(conn, uid, &stored);
        let (kind, verb) = match why {
            Why::Start => ("starting", "starting"),
            Why::Resume => ("resuming", "resuming after a restart"),
        };
        let msg = format!(
            "Bot {verb}: {} {} on {}",
            side_name(cfg.side),
            cfg.symbol,
            cfg.exchange
        );
        bots::add_event(conn, uid, kind, &msg, None, store::now())?;
        let market = ex.market(&cfg.symbol).map_err(BotError::from)?;
        ex.set_leverage(&cfg.symbol, cfg.leverage)
            .map_err(BotError::from)?;
        let state = self.cycle_state(conn, uid, &row, &stored)?;
        let started_ms = match (why, row.started_at) {
            (Why::Resume, Some(s)) => s * 1000,
            _ => store::now_ms(),
        };
        let mut engine = Engine::new(uid, cfg, market, state, started_ms);
        let (exchange, symbol, side) = (
            stored.config.exchange.as_str(),
            stored.config.symbol.as_str(),
            side_name(stored.config.side),
        );
        let mut journal = DbJournal {
            conn,
            uid,
            exchange,
            symbol,
            side,
            telegram: telegram.as_ref().map(|t| (&self.telegram, t)),
        };
        use crate::bots::engine::Journal;
        journal.cycle(&engine.state)?;
        let mode = if why == Why::Resume {
            Mode::Resume
        } else {
            Mode::Recover
        };
        let (actions, verdict) = engine.step(ex.as_ref(), &mut journal, mode)?;
        match verdict {
            Verdict::Continue => {
                let ctx = BotCtx {
                    exchange: exchange.to_string(),
                    symbol: symbol.to_string(),
                    side,
                    telegram,
                };
                Ok((
                    Running {
                        engine,
                        ex,
                        ctx,
                        last_error: None,
                    },
                    actions,
                ))
            }
            Verdict::Finished => Err(Fail::Invalid(
                "the position closed and repeat is off".into(),
            )),
            Verdict::SafetyStop(m) => Err(Fail::Safety(m)),
            Verdict::Failed(m) => Err(Fail::Invalid(m)),
        }
    }

    /// The cycle to continue: the stored one, unless it belongs to another market.
    fn cycle_state(
        &self,
        conn: &Connection,
        uid: i64,
        row: &bots::BotRow,
        stored: &StoredConfig,
    ) -> Result<CycleState, Fail> {
        let c = &stored.config;
        let same_market = row
            .cycle_exchange
            .as_deref()
            .is_none_or(|e| e == c.exchange)
            && row.cycle_symbol.as_deref().is_none_or(|s| s == c.symbol)
            && row
                .cycle_side
                .as_deref()
                .is_none_or(|s| s == side_name(c.side));
        let cycle = row.cycle.max(1);
        if same_market || row.cycle_opened_at.is_none() {
            return Ok(CycleState {
                cycle,
                tp_n: row.tp_n,
                sl_n: row.sl_n,
                opened_at: row.cycle_opened_at,
            });
        }
        let msg = format!(
            "cycle {cycle} on {} {} was left unfinished; the new market starts cycle {}",
            row.cycle_symbol.as_deref().unwrap_or("?"),
            row.cycle_side.as_deref().unwrap_or("?"),
            cycle + 1
        );
        bots::add_event(conn, uid, "new_cycle", &msg, None, store::now())?;
        Ok(CycleState {
            cycle: cycle + 1,
            tp_n: 0,
            sl_n: 0,
            opened_at: None,
        })
    }

    fn exchange(&self, uid: i64, stored: &StoredConfig) -> Result<Arc<dyn Exchange>, Fail> {
        match stored.config.exchange.as_str() {
            "paper" => Ok(Arc::new(self.paper.account(uid))),
            name => {
                if !stored.has_api_key || !stored.has_api_secret {
                    return Err(Fail::MissingCredentials(format!(
                        "set the {name} API key and secret in the bot configuration first"
                    )));
                }
                Err(Fail::Invalid(format!(
                    "trading on {name} is not available in this version; use the paper exchange"
                )))
            }
        }
    }

    fn telegram_target(
        &self,
        conn: &Connection,
        uid: i64,
        stored: &StoredConfig,
    ) -> Option<Target> {
        let chat_id = stored.config.telegram_chat_id.clone()?;
        if !stored.has_telegram_token {
            return None;
        }
        let sealed = users::credentials(conn, uid).ok().flatten()?;
        let creds = self.key.as_ref()?.open_credentials(uid, &sealed);
        match creds {
            Ok(c) => c.telegram_token.map(|token| Target { token, chat_id }),
            Err(e) => {
                warn!(self.log, "cannot open the telegram token"; "user_id" => uid, "error" => %e);
                None
            }
        }
    }

    /// Stops `uid`'s bot with `mode` (C4.4).
    pub fn stop(&self, conn: &Connection, uid: i64, mode: StopMode, actor: &str) -> Reply {
        let Some(cell) = self.cell(uid) else {
            return Reply::new(Outcome::NotRunning, "Bot is not running");
        };
        let mut guard = lock(&cell);
        let Some(mut bot) = guard.bot.take() else {
            return Reply::new(Outcome::NotRunning, "Bot is not running");
        };
        let (actions, problem) = {
            let mut j = journal_for(conn, uid, &bot.ctx, &self.telegram);
            match bot.engine.stop(bot.ex.as_ref(), &mut j, mode) {
                Ok(a) => (a, None),
                Err(e) => (Vec::new(), Some(format!("while stopping: {e}"))),
            }
        };
        let mode_name = match mode {
            StopMode::Keep => "keep",
            StopMode::CancelOrders => "cancel_orders",
            StopMode::ClosePosition => "close_position",
        };
        self.finish(
            conn,
            uid,
            &mut guard,
            "stopped",
            problem.as_deref(),
            "stopped",
            &format!("Bot stopped ({mode_name})"),
            json!({"actor": actor, "mode": mode_name, "actions": actions}),
        );
        let message = match problem {
            Some(p) => format!("Bot stopped successfully, but {p}"),
            None => "Bot stopped successfully".into(),
        };
        let mut reply = Reply::new(Outcome::Stopped, message);
        reply.actions = actions;
        reply
    }

    /// Re-creates what the running bot is missing (C4.4 recover).
    pub fn recover(&self, conn: &Connection, uid: i64, actor: &str) -> Reply {
        let Some(cell) = self.cell(uid) else {
            return Reply::new(Outcome::NotRunning, "Bot is not running");
        };
        let mut guard = lock(&cell);
        let Some(bot) = guard.bot.as_mut() else {
            return Reply::new(Outcome::NotRunning, "Bot is not running");
        };
        let result = {
            let mut j = journal_for(conn, uid, &bot.ctx, &self.telegram);
            bot.engine.step(bot.ex.as_ref(), &mut j, Mode::Recover)
        };
        match result {
            Ok((actions, verdict)) => {
                let _ = bots::add_event(
                    conn,
                    uid,
                    "recovered",
                    "Recovery process completed",
                    Some(&json!({"actor": actor, "actions": actions})),
                    store::now(),
                );
                self.settle(conn, uid, &mut guard, verdict);
                let mut reply = Reply::new(Outcome::Recovered, "Recovery process completed");
                reply.actions = actions;
                reply
            }
            Err(e) => Reply::new(Outcome::Error, format!("recovery failed: {e}")),
        }
    }

    /// One scheduled step of `uid`'s bot; reschedules it while it runs.
    pub fn tick(&self, conn: &Connection, uid: i64) {
        let Some(cell) = self.cell(uid) else { return };
        // A command holds the bot: skip this step rather than queue behind it.
        let Ok(mut guard) = cell.try_lock() else {
            self.schedule(uid);
            return;
        };
        let Some(bot) = guard.bot.as_mut() else {
            return;
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut j = journal_for(conn, uid, &bot.ctx, &self.telegram);
            bot.engine.step(bot.ex.as_ref(), &mut j, Mode::Tick)
        }));
        // A bug in one bot's step ends that bot with an error, visibly, and
        // nothing else (the panic hook has logged it).
        let Ok(result) = result else {
            return self.settle(
                conn,
                uid,
                &mut guard,
                Verdict::Failed("internal error in the bot's step".into()),
            );
        };
        match result {
            Ok((_, verdict)) => {
                if bot.last_error.take().is_some() {
                    let _ = bots::set_last_error(conn, uid, None, store::now());
                }
                self.settle(conn, uid, &mut guard, verdict);
            }
            Err(e) if e.is_transient() => {
                let msg = e.to_string();
                if bot.last_error.as_deref() != Some(&msg) {
                    let _ = bots::set_last_error(conn, uid, Some(&msg), store::now());
                    let _ = bots::add_event(
                        conn,
                        uid,
                        "error",
                        &msg,
                        Some(&json!({"retrying": true})),
                        store::now(),
                    );
                    bot.last_error = Some(msg);
                }
                self.schedule(uid);
            }
            Err(e) => self.settle(conn, uid, &mut guard, Verdict::Failed(e.to_string())),
        }
    }

    /// Applies a step's verdict: reschedule, or end the bot with the right status.
    fn settle(
        &self,
        conn: &Connection,
        uid: i64,
        guard: &mut MutexGuard<'_, Cell>,
        verdict: Verdict,
    ) {
        let (status, kind, msg) = match verdict {
            Verdict::Continue => {
                self.schedule(uid);
                return;
            }
            Verdict::Finished => (
                "stopped",
                "stopped",
                "cycle closed and repeat is off".to_string(),
            ),
            Verdict::SafetyStop(m) => ("safety_stop", "stopped", m),
            Verdict::Failed(m) => ("error", "error", m),
        };
        let error = (status != "stopped").then_some(msg.as_str());
        if let (Some(e), Some(bot)) = (error, guard.bot.as_ref()) {
            if let Some(t) = &bot.ctx.telegram {
                self.telegram.send(t, &format!("Bot stopped: {e}"));
            }
        }
        guard.bot.take();
        self.finish(
            conn,
            uid,
            guard,
            status,
            error,
            kind,
            &msg,
            json!({"status": status}),
        );
    }

    /// Writes the bot's end and forgets it, under the transition lock.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        conn: &Connection,
        uid: i64,
        guard: &mut MutexGuard<'_, Cell>,
        status: &str,
        error: Option<&str>,
        kind: &str,
        message: &str,
        data: serde_json::Value,
    ) {
        let _t = lock(&self.transition);
        let write = bots::set_state(conn, uid, "stopped", status, error, store::now())
            .and_then(|()| bots::add_event(conn, uid, kind, message, Some(&data), store::now()));
        if let Err(e) = write {
            warn!(self.log, "cannot record a bot's end"; "user_id" => uid, "error" => %e);
        }
        guard.bot = None;
        lock(&self.map).remove(&uid);
        self.running.fetch_sub(1, Ordering::Relaxed);
        info!(self.log, "bot ended"; "user_id" => uid, "status" => status);
    }

    /// Stops bots that must not run (owner disabled, desired state changed in the
    /// database), then compares the running count with the database.
    pub fn sweep(&self, conn: &Connection) -> Result<(u64, u64), StoreError> {
        for uid in bots::must_stop(conn)? {
            if self.cell(uid).is_some() {
                self.stop(conn, uid, StopMode::CancelOrders, "system");
            }
        }
        bots::heartbeat(conn, store::now())?;
        let _t = lock(&self.transition);
        let db = bots::count_running(conn)?.max(0) as u64;
        let mine = self.running.load(Ordering::Relaxed);
        crate::metrics::active_bots(mine);
        Ok((mine, db))
    }
}

fn journal_for<'a>(
    conn: &'a Connection,
    uid: i64,
    ctx: &'a BotCtx,
    telegram: &'a Notifier,
) -> DbJournal<'a> {
    DbJournal {
        conn,
        uid,
        exchange: &ctx.exchange,
        symbol: &ctx.symbol,
        side: ctx.side,
        telegram: ctx.telegram.as_ref().map(|t| (telegram, t)),
    }
}
