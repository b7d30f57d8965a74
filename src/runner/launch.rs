//! Bringing one bot up: configuration, the claim on its position (the conflict
//! rule), exchange account, market, cycle to continue, and the first step that
//! adopts (or places) the cycle's orders.

use std::sync::Arc;

use crate::store::sql::Conn;
use serde_json::json;
use slog::warn;

use super::journal::BotCtx;
use super::journal::DbJournal;
use super::manager::{Claim, Manager, Running, Why};
use super::protocol::Outcome;
use super::telegram::Target;
use crate::bots::config::{side_name, BotMarket, StoredConfig};
use crate::bots::engine::{BotError, CycleState, Engine, Journal, Mode, Verdict};
use crate::bots::ids::BotRef;
use crate::bots::status::{BotStatus, DesiredState, StopReason};
use crate::exchange::rest::{ApiKey, RestSettings};
use crate::exchange::{self, proxy, Exchange, ExchangeError};
use crate::store::{self, bot_config, bots, exchange_accounts, users, StoreError};

/// Why a start did not produce a running bot.
pub enum Fail {
    Invalid(String),
    MissingCredentials(String),
    Exchange(String),
    Safety(String),
    /// The bot is done (its last cycle closed while it was down), for this reason.
    Finished(String, StopReason),
    /// Another bot of the user trades the same position (the conflict rule).
    Conflict(String),
    /// Worth another try: the exchange or the database did not answer.
    Transient(String),
}

impl Fail {
    /// What the start answers.
    pub fn outcome(&self) -> Outcome {
        match self {
            Fail::Invalid(_) => Outcome::InvalidConfig,
            Fail::MissingCredentials(_) => Outcome::MissingCredentials,
            Fail::Exchange(_) | Fail::Transient(_) | Fail::Safety(_) => Outcome::Error,
            Fail::Finished(..) => Outcome::NotRunning,
            Fail::Conflict(_) => Outcome::Conflict,
        }
    }

    /// The status the bot is left in.
    pub fn status(&self) -> BotStatus {
        match self {
            Fail::Safety(_) => BotStatus::SafetyStop,
            Fail::Finished(..) => BotStatus::Stopped,
            _ => BotStatus::Error,
        }
    }

    /// The same failure with `note` added to its message.
    pub fn noting(self, note: &str) -> Fail {
        let with = |m: String| format!("{m}; {note}");
        match self {
            Fail::Invalid(m) => Fail::Invalid(with(m)),
            Fail::MissingCredentials(m) => Fail::MissingCredentials(with(m)),
            Fail::Exchange(m) => Fail::Exchange(with(m)),
            Fail::Safety(m) => Fail::Safety(with(m)),
            Fail::Finished(m, r) => Fail::Finished(with(m), r),
            Fail::Conflict(m) => Fail::Conflict(with(m)),
            Fail::Transient(m) => Fail::Transient(with(m)),
        }
    }

    /// Why the bot ended, as `stop_reason` shows it.
    pub fn stop_reason(&self) -> StopReason {
        match self {
            Fail::Finished(_, r) => *r,
            _ => StopReason::Error,
        }
    }

    pub fn into_message(self) -> String {
        match self {
            Fail::Invalid(m)
            | Fail::MissingCredentials(m)
            | Fail::Exchange(m)
            | Fail::Safety(m)
            | Fail::Finished(m, _)
            | Fail::Conflict(m)
            | Fail::Transient(m) => m,
        }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Transient(format!("database: {e}"))
    }
}

impl From<BotError> for Fail {
    fn from(e: BotError) -> Self {
        if e.is_retryable() {
            return Fail::Transient(e.to_string());
        }
        match e {
            BotError::Exchange(ExchangeError::UnknownSymbol(s)) => {
                Fail::Invalid(format!("the exchange does not list {s}"))
            }
            BotError::Exchange(ExchangeError::InvalidKey) => {
                Fail::MissingCredentials("the exchange rejected the API key".into())
            }
            BotError::Exchange(
                e @ (ExchangeError::InsufficientBalance | ExchangeError::BelowMinimum),
            ) => Fail::Invalid(format!("the exchange refused the entry: {e}")),
            other => Fail::Exchange(other.to_string()),
        }
    }
}

/// What the first steps of a start did, and a retryable problem they met (the
/// bot runs on and its scheduled steps try again).
pub struct FirstSteps {
    pub actions: Vec<String>,
    pub retrying: Option<String>,
}

/// A started bot and what its first steps did.
pub struct Launched {
    pub running: Running,
    pub first: FirstSteps,
}

impl Manager {
    /// Loads the configuration, claims the bot's position, connects to the
    /// exchange and runs the first step.
    /// Starts or resumes `bot` up to its first steps; `row` is its row when the
    /// caller just read it (a resume), else it is read here.
    pub(super) fn launch(
        &self,
        conn: &Conn,
        bot: BotRef,
        why: Why,
        row: Option<bots::BotRow>,
    ) -> Result<Launched, Fail> {
        let uid = bot.user_id;
        let user = users::by_id(conn, uid)?.ok_or_else(|| Fail::Invalid("no such user".into()))?;
        if user.disabled {
            return Err(Fail::Invalid("the account is disabled".into()));
        }
        let row = match row {
            Some(row) => row,
            None => bots::get(conn, bot.bot_id)?
                .filter(|row| row.user_id == uid)
                .ok_or_else(|| Fail::Invalid("no such bot".into()))?,
        };
        // `starting` is written before the configuration is read: a concurrent
        // `PUT` of the configuration (one immediate transaction that checks the
        // status) either lands before this and is used, or sees `starting` and
        // gets 409 for a change of the market. A resume says `starting` too:
        // until it is running, `/readyz` does not count it as running (the
        // runner marks the bots it queues for a resume all at once).
        if row.status != BotStatus::Starting {
            bots::set_state(
                conn,
                bot.bot_id,
                DesiredState::Running,
                BotStatus::Starting,
                None,
                store::now(),
            )?;
        }
        let stored = bot_config::load(conn, bot.bot_id)?
            .ok_or_else(|| Fail::Invalid("no such bot".into()))?;
        self.claim_position(conn, bot, &stored, &row, why)?;
        let cfg = stored.config.clone();
        if cfg.grids.is_empty() || cfg.rounds == 0 || cfg.rounds > cfg.grids.len() {
            return Err(Fail::Invalid("the grid configuration is incomplete".into()));
        }
        // A resume says it once, with its market, when it is done (`resumed`).
        if why == Why::Start {
            let msg = format!(
                "Bot starting: {} {} on {}",
                side_name(cfg.side),
                cfg.symbol,
                cfg.exchange
            );
            bots::add_event(conn, bot, "starting", &msg, None, store::now())?;
        }
        // A running bot reads its account through the account's stream.
        let ex = self.open_exchange(conn, &stored, Some(bot.bot_id))?;
        let ex = self.fenced(ex, uid);
        require_hedge_mode(ex.as_ref(), &cfg.exchange, &cfg.symbol)?;
        let market = ex.market(&cfg.symbol).map_err(BotError::from)?;
        ex.set_leverage(&cfg.symbol, cfg.side, cfg.leverage)
            .map_err(BotError::from)?;
        let state = cycle_state(conn, bot, &row, &stored)?;
        let started_ms = match (why, row.started_at) {
            (Why::Resume, Some(s)) => s * 1000,
            _ => store::now_ms(),
        };
        let ctx = BotCtx {
            exchange: cfg.exchange.clone(),
            symbol: cfg.symbol.clone(),
            side: side_name(cfg.side),
            account: stored.exchange_account_id,
            name: stored.name.clone(),
            telegram: self.telegram_target(conn, &stored),
        };
        let mut engine = Engine::new(bot, cfg, market, state, started_ms);
        // A start is a new decision; a resume keeps a pending "stop after this cycle".
        engine.after_cycle = why == Why::Resume && row.after_cycle;
        if why == Why::Start {
            bots::set_after_cycle(conn, bot.bot_id, false)?;
        }
        let mut running = Running::new(engine, ex, ctx);
        // A resume whose row already holds this cycle on this market has
        // nothing to write before its first step.
        let stored_cycle = why == Why::Resume && holds_cycle(&row, &running.engine.state, &stored);
        let first = self.first_steps(conn, bot, &mut running, why, stored_cycle)?;
        Ok(Launched { running, first })
    }

    /// The conflict rule: the bot's position (exchange account, or the paper
    /// account, symbol and side) must not be another running bot's of the same
    /// user, nor held by a sibling's open cycle. A refused start leaves the bot
    /// as it was (its state is put back); a refused resume fails like any other
    /// (the user sees why).
    fn claim_position(
        &self,
        conn: &Conn,
        bot: BotRef,
        stored: &StoredConfig,
        before: &bots::BotRow,
        why: Why,
    ) -> Result<(), Fail> {
        let c = &stored.config;
        let position = BotMarket {
            exchange: c.exchange.clone(),
            exchange_account_id: stored.exchange_account_id,
            symbol: c.symbol.clone(),
            side: c.side,
            has_pending: stored.has_pending,
        };
        let (side, symbol) = (side_name(c.side), &c.symbol);
        let msg = match self.claim(conn, bot, &position)? {
            Claim::Granted => return Ok(()),
            Claim::Taken(other) => format!(
                "bot {other} already trades {side} {symbol} on this account; stop it first or \
                 choose another symbol, side or account"
            ),
            Claim::Held(other) => format!(
                "bot {other} is stopped but its cycle still holds {side} {symbol} on this \
                 account (a position or resting orders); start it and let it close the cycle, \
                 or start it and stop it with close_position, before another bot trades there"
            ),
        };
        if why == Why::Start {
            bots::set_state(
                conn,
                bot.bot_id,
                before.desired_state,
                before.status,
                before.last_error.as_deref(),
                store::now(),
            )?;
        }
        Err(Fail::Conflict(msg))
    }

    /// The first step adopts what exists and places what is missing. A retryable
    /// failure leaves the bot running (its steps retry); a cycle that closed while
    /// the bot was stopped is followed by a new one when a user starts it.
    fn first_steps(
        &self,
        conn: &Conn,
        owner: BotRef,
        bot: &mut Running,
        why: Why,
        stored_cycle: bool,
    ) -> Result<FirstSteps, Fail> {
        let mut j = DbJournal::new(conn, owner, &bot.ctx, &self.telegram, &self.leases);
        if !stored_cycle {
            j.cycle(&bot.engine.state)?;
        }
        if why == Why::Start {
            // Resuming an open cycle after a stop: the ladder is placed again.
            bot.engine.new_round(&mut j).map_err(Fail::from)?;
        }
        let mode = if why == Why::Resume {
            Mode::Resume
        } else {
            Mode::Recover
        };
        let mut first = FirstSteps {
            actions: Vec::new(),
            retrying: None,
        };
        for _ in 0..2 {
            match bot.engine.step(bot.ex.as_ref(), &mut j, mode) {
                Ok((actions, verdict)) => {
                    first.actions.extend(actions);
                    match verdict {
                        Verdict::Continue => return Ok(first),
                        Verdict::Finished(_) if why == Why::Start => continue,
                        Verdict::Finished(reason) => {
                            return Err(Fail::Finished(
                                super::manager::finished_message(reason).into(),
                                reason,
                            ))
                        }
                        Verdict::SafetyStop(m) => return Err(Fail::Safety(m)),
                        Verdict::Failed(m) => return Err(Fail::Invalid(m)),
                    }
                }
                Err(e) if e.is_retryable() => {
                    first.retrying = Some(e.to_string());
                    return Ok(first);
                }
                Err(e) => {
                    let open = bot.engine.size() > rust_decimal::Decimal::ZERO;
                    let fail = Fail::from(e);
                    if !open {
                        return Err(fail);
                    }
                    // Nothing is undone: the error says what is left.
                    let left = bot.engine.leftovers(bot.ex.as_ref());
                    return Err(fail.noting(&left));
                }
            }
        }
        Ok(first)
    }

    /// The exchange account `stored` trades with: the user's paper account, or
    /// the bot's exchange account on a real exchange.
    pub(super) fn exchange(
        &self,
        conn: &Conn,
        stored: &StoredConfig,
    ) -> Result<Arc<dyn Exchange>, Fail> {
        self.open_exchange(conn, stored, None)
    }

    /// `exchange`; for `running` bot's own use, a real exchange read through
    /// the account's private stream (the bot is attached to it until it
    /// leaves the map).
    fn open_exchange(
        &self,
        conn: &Conn,
        stored: &StoredConfig,
        running: Option<i64>,
    ) -> Result<Arc<dyn Exchange>, Fail> {
        let name = stored.config.exchange.as_str();
        if name == "paper" {
            return Ok(Arc::new(self.paper().account(stored.bot.user_id)));
        }
        let missing = || {
            Fail::MissingCredentials(format!(
                "choose a {name} exchange account (API key and secret) for the bot first"
            ))
        };
        let account = stored.exchange_account_id.ok_or_else(missing)?;
        let key = self
            .api_key(conn, stored.bot.user_id, account)?
            .ok_or_else(missing)?;
        let settings = self.rest_via_proxy(conn, stored.bot.user_id, account)?;
        let rest = exchange::connect(name, &settings, key.clone())
            .ok_or_else(|| Fail::Invalid(format!("unknown exchange {name}")))?;
        Ok(match running {
            Some(bot_id) => {
                let symbol = &stored.config.symbol;
                self.streams()
                    .attach(bot_id, symbol, &key, settings.proxy.clone(), rest)
            }
            None => rest,
        })
    }

    /// The REST settings of exchange account `account`: the deployment's, through
    /// the account's egress proxy when it has one (docs/bots.md, Proxies). A proxy
    /// that no longer opens fails the start rather than going direct, which a key
    /// whitelisted for the proxy's address would refuse anyway.
    fn rest_via_proxy(&self, conn: &Conn, uid: i64, account: i64) -> Result<RestSettings, Fail> {
        let Some(sealed) = exchange_accounts::proxy(conn, uid, account)? else {
            return Ok(self.rest().clone());
        };
        let key = self.key().ok_or_else(|| {
            Fail::Exchange("the server has no secret key to open stored proxies".into())
        })?;
        let proxy = proxy::open(key, uid, &sealed)
            .map_err(|e| Fail::Invalid(format!("exchange account {account}: {e}")))?;
        Ok(RestSettings {
            proxy: Some(proxy),
            ..self.rest().clone()
        })
    }

    /// An exchange account's key pair, opened from its sealed columns.
    fn api_key(&self, conn: &Conn, uid: i64, account: i64) -> Result<Option<ApiKey>, Fail> {
        let Some(sealed) = exchange_accounts::credentials(conn, uid, account)? else {
            return Ok(None);
        };
        let secret_key = self.key().ok_or_else(|| {
            Fail::Exchange("the server has no secret key to open stored API keys".into())
        })?;
        let c = secret_key.open_credentials(uid, &sealed).map_err(|e| {
            warn!(self.log(), "cannot open the exchange credentials"; "user_id" => uid, "error" => %e);
            Fail::MissingCredentials(
                "the stored API key cannot be read (was SECRET_KEY changed?); set it again".into(),
            )
        })?;
        Ok(match (c.api_key, c.api_secret) {
            (Some(key), Some(secret)) => Some(ApiKey { key, secret }),
            _ => None,
        })
    }

    /// Where the owner's notifications go (their chat and token), if anywhere.
    fn telegram_target(&self, conn: &Conn, stored: &StoredConfig) -> Option<Target> {
        let uid = stored.bot.user_id;
        let chat_id = stored.config.telegram_chat_id.clone()?;
        if !stored.has_telegram_token {
            return None;
        }
        let sealed = users::credentials(conn, uid).ok().flatten()?;
        match self.key()?.open_credentials(uid, &sealed) {
            Ok(c) => c.telegram_token.map(|token| Target { token, chat_id }),
            Err(e) => {
                warn!(self.log(), "cannot open the telegram token"; "user_id" => uid, "error" => %e);
                None
            }
        }
    }
}

/// The bot's orders name a position side (hedge mode), which a one-way account
/// refuses: a start on one is refused up front, saying how to switch, instead of
/// failing at the first order.
fn require_hedge_mode(ex: &dyn Exchange, exchange: &str, symbol: &str) -> Result<(), Fail> {
    if ex.hedge_mode(symbol).map_err(BotError::from)? {
        return Ok(());
    }
    let venue = match exchange {
        "bingx" => "BingX",
        "bybit" => "Bybit",
        other => other,
    };
    Err(Fail::Invalid(format!(
        "the {venue} account trades {symbol} in one-way position mode; the bot needs hedge \
         (two-way) mode: switch the position mode to hedge in {venue}'s futures settings, then \
         start the bot again"
    )))
}

/// Whether `row` already holds `state` on the configuration's market (cycle,
/// counters and market as `first_steps` would write them).
fn holds_cycle(row: &bots::BotRow, state: &CycleState, stored: &StoredConfig) -> bool {
    let c = &stored.config;
    let market = row.cycle_exchange.as_deref() == Some(c.exchange.as_str())
        && row.cycle_symbol.as_deref() == Some(c.symbol.as_str())
        && row.cycle_side.as_deref() == Some(side_name(c.side))
        && row.cycle_account_id == stored.exchange_account_id;
    let counters = (row.cycle, row.tp_n, row.sl_n, row.tr_n, row.leg_round)
        == (
            state.cycle,
            state.tp_n,
            state.sl_n,
            state.tr_n,
            state.leg_round,
        );
    market
        && counters
        && row.cycle_opened_at == state.opened_at
        && row.trail_best == state.trail_best
        && row.next_entry_at == state.next_entry_at
}

/// The cycle to continue: the stored one, unless it belongs to another market
/// (exchange, symbol, side) or another exchange account: its position stays
/// where it was opened.
fn cycle_state(
    conn: &Conn,
    bot: BotRef,
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
            .is_none_or(|s| s == side_name(c.side))
        && (row.cycle_exchange.is_none() || row.cycle_account_id == stored.exchange_account_id);
    let cycle = row.cycle.max(1);
    if same_market || row.cycle_opened_at.is_none() {
        return Ok(CycleState {
            cycle,
            tp_n: row.tp_n,
            sl_n: row.sl_n,
            tr_n: row.tr_n,
            leg_round: row.leg_round,
            opened_at: row.cycle_opened_at,
            trail_best: row.trail_best,
            next_entry_at: row.next_entry_at,
        });
    }
    let msg = format!(
        "cycle {cycle} on {} {} {}{} was left unfinished; the new market starts cycle {}",
        row.cycle_exchange.as_deref().unwrap_or("?"),
        row.cycle_symbol.as_deref().unwrap_or("?"),
        row.cycle_side.as_deref().unwrap_or("?"),
        row.cycle_account_id
            .map(|a| format!(" (exchange account {a})"))
            .unwrap_or_default(),
        cycle + 1
    );
    bots::add_event(
        conn,
        bot,
        "new_cycle",
        &msg,
        Some(&json!({"cycle": cycle + 1})),
        store::now(),
    )?;
    Ok(CycleState::first(cycle + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::config::BotConfig;
    use crate::store::{exchange_accounts, user_bots, users};

    /// A user whose default bot trades on Bybit with account `a`, with cycle 4
    /// open on it; the ids of the bot and of a second Bybit account.
    fn open_on_bybit() -> (Conn, BotRef, i64, i64) {
        let mut c = Conn::open_in_memory().unwrap();
        store::migrate::migrate(&mut c).unwrap();
        let new = users::NewUser {
            email: "a@x.io",
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let uid = users::create(&c, &new, 1).unwrap();
        let bot = BotRef {
            user_id: uid,
            bot_id: user_bots::default_of(&c, uid).unwrap().unwrap(),
        };
        let account = |name| exchange_accounts::NewAccount {
            name,
            exchange: "bybit",
            api_key_enc: "k",
            api_key_last4: "abcd",
            api_secret_enc: "s",
        };
        let a = exchange_accounts::create(&c, uid, &account("A"), 1).unwrap();
        let b = exchange_accounts::create(&c, uid, &account("B"), 1).unwrap();
        let cfg = BotConfig {
            exchange: "bybit".into(),
            ..BotConfig::default()
        };
        bot_config::save(&c, bot.bot_id, &cfg).unwrap();
        user_bots::set_account(&c, uid, bot.bot_id, Some(a)).unwrap();
        let cycle = bots::CycleRow {
            cycle: 4,
            tp_n: 2,
            sl_n: 0,
            exchange: "bybit",
            symbol: "BTC/USDT",
            side: "long",
            account: Some(a),
            opened_at: Some(100),
            leg_round: 0,
            tr_n: 0,
            trail_best: None,
            next_entry_at: None,
        };
        bots::set_cycle(&c, bot.bot_id, &cycle, 100).unwrap();
        (c, bot, a, b)
    }

    fn continued(c: &Conn, bot: BotRef) -> CycleState {
        let row = bots::get(c, bot.bot_id).unwrap().unwrap();
        let stored = bot_config::load(c, bot.bot_id).unwrap().unwrap();
        cycle_state(c, bot, &row, &stored).unwrap_or_else(|_| panic!("a cycle"))
    }

    #[test]
    fn a_cycle_continues_only_on_the_account_it_was_opened_on() {
        let (c, bot, _, b) = open_on_bybit();
        let same = continued(&c, bot);
        assert_eq!((same.cycle, same.tp_n, same.opened_at), (4, 2, Some(100)));
        // Linked to another account, the bot no longer sees that position: the
        // old cycle is left (and said so) rather than continued on the new one.
        user_bots::set_account(&c, bot.user_id, bot.bot_id, Some(b)).unwrap();
        let moved = continued(&c, bot);
        assert_eq!((moved.cycle, moved.opened_at), (5, None));
        let events = bots::events(&c, bot.bot_id, 1, None).unwrap();
        assert_eq!(events[0].kind, "new_cycle");
        assert!(
            events[0].message.contains("exchange account"),
            "{}",
            events[0].message
        );
    }
}
