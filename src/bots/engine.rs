//! One bot's state machine (docs/bots.md): each step reads the exchange, records
//! every new fill of the bot's orders in the ledger, and from the ledger — not from
//! a position read that may lag — decides what the cycle needs: the entry, the
//! exchange-side stop, the take-profit (or a trailing one), the ladder legs, or the
//! close. Because every order has a deterministic client id and the placement
//! counters are journalled *before* an order is placed, a step can be interrupted
//! anywhere (kill -9) and the next one — after a restart — adopts what exists
//! instead of placing it again.
//!
//! The step is split by concern: `observe` (open orders, fills, safety),
//! `entry`, `protect` (stop-loss, take-profit, trailing), `legs`, `close` (cycle
//! ends, outside closes, funding) and `halt` (the stop modes, what an error leaves).

mod close;
mod entry;
mod halt;
mod legs;
mod observe;
mod protect;

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde_json::Value;

use super::config::BotConfig;
use super::ids::{self, BotRef, Purpose};
use super::ladder::{self, Market, Side};
use super::ledger::{Fill, FillPurpose, Ledger};
use super::status::StopReason;
use crate::exchange::{Exchange, ExchangeError, NewOrder, Order, OrderKind, OrderSide};
use crate::store::bots::Snapshot;
use crate::store::ledger::{Funding, Sent};
use crate::store::trades::Trade;
use crate::store::StoreError;

/// Why a step runs: a scheduled tick maintains the cycle; resume and recover also
/// re-read every order the cycle sent and create the missing ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tick,
    Resume,
    Recover,
}

/// Where a bot ends up when a step says it must stop.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Continue,
    /// The cycle closed and the bot is done, for this reason.
    Finished(StopReason),
    SafetyStop(String),
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl BotError {
    /// Errors that another try may fix: the bot keeps running and retries.
    pub fn is_retryable(&self) -> bool {
        match self {
            BotError::Exchange(e) => e.is_retryable(),
            BotError::Store(_) => true,
        }
    }
}

/// Exchange errors that no later step can fix for any order: the account itself
/// is unusable (bad key, wrong position mode). Everything else a single order
/// meets (a price band, margin, a refusal) is retried on later steps.
fn account_fatal(e: &BotError) -> bool {
    matches!(
        e,
        BotError::Exchange(ExchangeError::InvalidKey | ExchangeError::PositionMode(_))
    )
}

/// The placement state that must survive a restart, journalled before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CycleState {
    pub cycle: i64,
    pub tp_n: u32,
    pub sl_n: u32,
    /// Trailing take-profit closes sent.
    pub tr_n: u32,
    /// Ladder re-placement round (`l<i>r<k>`).
    pub leg_round: u32,
    pub opened_at: Option<i64>,
    /// Best mark a trailing take-profit has seen since it was reached.
    pub trail_best: Option<Decimal>,
    /// No entry before this (Unix seconds): the cooldown after a close.
    pub next_entry_at: Option<i64>,
}

impl CycleState {
    /// A cycle before anything was placed.
    pub fn first(cycle: i64) -> CycleState {
        CycleState {
            cycle,
            ..CycleState::default()
        }
    }
}

/// Where the engine writes what happened; the runner's is the database (+ Telegram).
pub trait Journal {
    fn event(&mut self, kind: &str, message: &str, data: Value) -> Result<(), StoreError>;
    /// Persists placement counters and the cycle; called before the order they name.
    fn cycle(&mut self, state: &CycleState) -> Result<(), StoreError>;
    /// Records a closed cycle and moves to `next`, atomically, applying a pending
    /// configuration change in the same write (returned when there was one).
    /// `last`: the bot ends with this cycle, so its desired state becomes stopped in
    /// the same write (a crash right after must not resume it into a new cycle).
    fn close_cycle(
        &mut self,
        trade: &Trade,
        next: &CycleState,
        last: bool,
    ) -> Result<Option<BotConfig>, StoreError>;
    /// What the status shows (position, prices, stop), when it changed.
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), StoreError>;
    /// Records that `client_id` is about to be sent (before the request).
    fn submitted(&mut self, client_id: &str) -> Result<(), StoreError>;
    /// When `client_id` was first sent, if ever (Unix seconds).
    fn submitted_at(&self, client_id: &str) -> Result<Option<i64>, StoreError>;
    /// The client id recorded for `exchange_id`, of any cycle, if any.
    fn client_id_of(&self, exchange_id: &str) -> Result<Option<String>, StoreError>;
    /// The exchange took `client_id` and calls it `exchange_id`.
    fn placed(&mut self, client_id: &str, exchange_id: &str) -> Result<(), StoreError>;
    /// The exchange refused `client_id`: it may be sent again.
    fn refused(&mut self, client_id: &str) -> Result<(), StoreError>;
    /// Every order of `cycle` sent so far.
    fn sent(&self, cycle: i64) -> Result<Vec<Sent>, StoreError>;
    /// Writes a fill to the ledger (once).
    fn fill(&mut self, f: &Fill) -> Result<(), StoreError>;
    fn fills(&self, cycle: i64) -> Result<Vec<Fill>, StoreError>;
    /// Records a funding settlement once; whether it was new.
    fn funding(&mut self, f: &Funding) -> Result<bool, StoreError>;
    fn funding_of(&self, cycle: i64) -> Result<Vec<Funding>, StoreError>;
    /// A user notification (Telegram); never fails the step.
    fn notify(&mut self, text: &str);
    /// Unix seconds.
    fn now(&self) -> i64;
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// A flat position report must repeat over this many steps…
const FLAT_READS: u32 = 3;
/// …and come this long after the bot's last fill, before it is an outside close.
const FLAT_AFTER_FILL_MS: i64 = 5_000;

pub struct Engine {
    /// Which bot, whose: the bot id tags its client order ids.
    pub bot: BotRef,
    pub cfg: BotConfig,
    pub market: Market,
    pub state: CycleState,
    /// Orders created before this (Unix ms) are not "new foreign orders".
    pub started_ms: i64,
    /// Stop when the current cycle closes (`stop` with mode `after_cycle`).
    pub after_cycle: bool,
    ledger: Ledger,
    funding: Decimal,
    /// The cycle whose ledger and sent orders are loaded.
    loaded: Option<i64>,
    /// This cycle's sent orders: client id → exchange id once known.
    sent: BTreeMap<String, Option<String>>,
    /// Sent orders whose last fill may not be recorded yet.
    tracked: BTreeSet<String>,
    /// Ids of this cycle that no exchange has (asked and not found, or
    /// refused for the rate limit) and not sent since. Only this engine places
    /// its ids (the journal records each before it is sent), so they are not
    /// asked again: an order that waits for its turn in the request budget
    /// costs no lookups meanwhile.
    unsent: BTreeSet<String>,
    /// The cycle this engine began itself (after a close): none of its ids
    /// was sent but those in `sent`.
    began: Option<i64>,
    flat_reads: u32,
    /// The exchange's position disagreed with a flat ledger (told once a cycle).
    /// Since when (Unix ms) the exchange has shown a position the flat ledger
    /// cannot explain; `None` while they agree.
    mismatch_since: Option<i64>,
    /// Trigger price of the bot's stop resting on the exchange.
    stop_live: Option<Decimal>,
    stop_price: Option<Decimal>,
    tp_price: Option<Decimal>,
    /// No new stop placement before this (Unix ms) after the exchange refused one.
    stop_retry_ms: i64,
    stop_problem: Option<String>,
    /// Why funding could not be read, once told (an event per new reason).
    funding_problem: Option<String>,
    funding_read_ms: i64,
    /// Legs the exchange refused: the message, and when to try again (Unix ms).
    refusals: BTreeMap<usize, (String, i64)>,
    /// Exits the exchange refused (`take_profit`, `stop_loss_market`,
    /// `trailing_close`): the message, and when to try again (Unix ms).
    exit_refusals: BTreeMap<&'static str, (String, i64)>,
    /// Legs below the market minimum: never placed in this run.
    skipped: BTreeSet<usize>,
    /// The ledger length at which every leg was settled (nothing to place).
    legs_settled: Option<usize>,
    /// The leverage changed with a pending configuration: set it before the entry.
    relever: bool,
    seen: Option<Snapshot>,
}

/// One step's exchange and what it did.
struct Step<'a> {
    ex: &'a dyn Exchange,
    actions: Vec<String>,
    /// The account's open orders on the symbol, as read at the step's start.
    opens: Vec<Order>,
    /// Untagged open orders of earlier cycles, known by the exchange id the bot
    /// recorded for them: exchange id → client id.
    recorded: BTreeMap<String, String>,
    /// Open orders of sibling bots (other bots of the same user on the same
    /// account), by exchange id: theirs, neither foreign nor ours.
    siblings: BTreeSet<String>,
    /// Orders of ours placed (still open) and cancelled during the step.
    placed_open: usize,
    cancelled: usize,
}

impl<'a> Step<'a> {
    fn new(ex: &'a dyn Exchange) -> Step<'a> {
        Step {
            ex,
            actions: Vec::new(),
            opens: Vec::new(),
            recorded: BTreeMap::new(),
            siblings: BTreeSet::new(),
            placed_open: 0,
            cancelled: 0,
        }
    }
}

/// How an order is priced.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Market,
    Limit(Decimal),
    Stop(Decimal),
}

fn near(a: Decimal, b: Decimal, unit: Decimal) -> bool {
    (a - b).abs() <= unit / Decimal::TWO
}

fn remaining(o: &Order) -> Decimal {
    (o.qty - o.filled_qty).max(Decimal::ZERO)
}

impl Engine {
    pub fn new(
        bot: BotRef,
        cfg: BotConfig,
        market: Market,
        state: CycleState,
        started_ms: i64,
    ) -> Engine {
        Engine {
            bot,
            cfg,
            market,
            state,
            started_ms,
            after_cycle: false,
            ledger: Ledger::default(),
            funding: Decimal::ZERO,
            loaded: None,
            sent: BTreeMap::new(),
            tracked: BTreeSet::new(),
            unsent: BTreeSet::new(),
            began: None,
            flat_reads: 0,
            mismatch_since: None,
            stop_live: None,
            stop_price: None,
            tp_price: None,
            stop_retry_ms: 0,
            stop_problem: None,
            funding_problem: None,
            funding_read_ms: 0,
            refusals: BTreeMap::new(),
            exit_refusals: BTreeMap::new(),
            skipped: BTreeSet::new(),
            legs_settled: None,
            relever: false,
            seen: None,
        }
    }

    fn id(&self, p: Purpose) -> String {
        ids::client_id(self.bot.bot_id, self.state.cycle, p)
    }

    fn side(&self) -> Side {
        self.cfg.side
    }

    fn half_step(&self) -> Decimal {
        self.market.step / Decimal::TWO
    }

    /// The ledger's open size.
    pub fn size(&self) -> Decimal {
        self.ledger.size(self.side())
    }

    /// One pass of the strategy. Returns what it created (for recover) and whether
    /// the bot goes on. An error leaves everything on the exchange as it is (the
    /// stop included); `leftovers` says what that is.
    pub fn step(
        &mut self,
        ex: &dyn Exchange,
        j: &mut dyn Journal,
        mode: Mode,
    ) -> Result<(Vec<String>, Verdict), BotError> {
        let mut s = Step::new(ex);
        let verdict = self.run(&mut s, j, mode)?;
        Ok((s.actions, verdict))
    }

    fn run(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        mode: Mode,
    ) -> Result<Verdict, BotError> {
        self.load(j, mode)?;
        let dir = self.side();
        let entry_id = self.id(Purpose::Entry);
        if !self.ledger.has_entry(dir) && !self.sent.contains_key(&entry_id) {
            if self.after_cycle {
                return Ok(Verdict::Finished(StopReason::AfterCycle));
            }
            if self.state.next_entry_at.is_some_and(|at| j.now() < at) {
                self.publish(s, j)?;
                return Ok(Verdict::Continue);
            }
        }
        s.opens = s.ex.open_orders(&self.cfg.symbol)?;
        self.adopt_untagged_stops(s, j)?;
        self.recall_untagged(s, j)?;
        if let Some(v) = self.safety_check(s, j)? {
            return Ok(v);
        }
        self.cancel_leftovers(s, j)?;
        self.observe_all(s, j)?;
        if !self.ledger.has_entry(dir) {
            if let Some(v) = self.entry(s, j)? {
                return Ok(v);
            }
            if !self.ledger.has_entry(dir) {
                self.publish(s, j)?;
                return Ok(Verdict::Continue);
            }
        }
        if self.ledger.is_flat(dir, self.market.step) {
            // A flat ledger always has an exit fill; without one, it closed as planned.
            let how = self
                .ledger
                .exit_kind(dir)
                .unwrap_or(FillPurpose::TakeProfit);
            return self.close_cycle(s, j, how);
        }
        let pos = s.ex.position(&self.cfg.symbol, dir)?;
        let mark = if pos.mark_price > Decimal::ZERO {
            pos.mark_price
        } else {
            s.ex.ticker(&self.cfg.symbol)?
        };
        if pos.size < self.half_step() {
            return self.flat_report(s, j, mark);
        }
        self.flat_reads = 0;
        self.poll_funding(s, j, false)?;
        let (size, avg) = (self.ledger.size(dir), self.ledger.avg_entry(dir));
        self.ensure_stop(s, j, size, avg)?;
        if let Some(v) = self.stop_fallback(s, j, size, mark)? {
            return Ok(v);
        }
        if self.cfg.trailing_take_profit > Decimal::ZERO {
            if let Some(v) = self.trail(s, j, size, avg, mark)? {
                return Ok(v);
            }
        } else {
            self.ensure_take_profit(s, j, size, avg)?;
        }
        self.ensure_legs(s, j, mode)?;
        self.publish(s, j)?;
        Ok(Verdict::Continue)
    }

    /// The position reads flat while the ledger says open: an outside close only
    /// once confirmed over several steps and some time after the bot's last fill
    /// (a lagging report must not make a fake trade or a second entry). Nothing
    /// is placed meanwhile.
    fn flat_report(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        mark: Decimal,
    ) -> Result<Verdict, BotError> {
        self.flat_reads += 1;
        let quiet = j.now_ms() - self.ledger.last_fill_ms() >= FLAT_AFTER_FILL_MS;
        if self.flat_reads >= FLAT_READS && quiet {
            return self.close_outside(s, j, mark);
        }
        self.publish(s, j)?;
        Ok(Verdict::Continue)
    }

    /// Sends an order; its id is journalled before the request, its exchange id
    /// after the answer, and an outright refusal frees the id again.
    fn place(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        id: &str,
        kind: Kind,
        qty: Decimal,
        reduce_only: bool,
    ) -> Result<Order, BotError> {
        let side = if reduce_only {
            OrderSide::closing(self.side())
        } else {
            OrderSide::opening(self.side())
        };
        let (kind, price, trigger_price) = match kind {
            Kind::Market => (OrderKind::Market, None, None),
            Kind::Limit(p) => (OrderKind::Limit, Some(p), None),
            Kind::Stop(t) => (OrderKind::Stop, None, Some(t)),
        };
        let order = NewOrder {
            client_id: id.to_string(),
            symbol: self.cfg.symbol.clone(),
            side,
            kind,
            price,
            trigger_price,
            qty,
            reduce_only,
            position_side: self.side(),
        };
        // Written before the request: a crash after it leaves the id known as
        // sent, even if its answer never arrived.
        j.submitted(id)?;
        self.sent.entry(id.to_string()).or_insert(None);
        self.tracked.insert(id.to_string());
        let placed = match s.ex.place(&order) {
            Ok(o) => o,
            // Placed by an earlier, interrupted step: adopt it.
            Err(ExchangeError::Duplicate(_)) => {
                s.ex.order(&self.cfg.symbol, id)?.ok_or_else(|| {
                    ExchangeError::Rejected(format!("{id} is a duplicate but cannot be read"))
                })?
            }
            // Refused outright, or rate limited (the adapters answer that only
            // for a request not taken): not placed, the id is free again and
            // known absent. A rate limit is tried again on a later step.
            Err(e) if !e.is_retryable() || e == ExchangeError::RateLimited => {
                j.refused(id)?;
                self.sent.remove(id);
                self.tracked.remove(id);
                self.unsent.insert(id.to_string());
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        if !placed.exchange_id.is_empty() {
            // Stored only for stops, the one kind an exchange lists without its
            // client id (BingX): every other order is found by its client id, and
            // a write per placement is most of a busy runner's database work.
            if order.kind == OrderKind::Stop {
                j.placed(id, &placed.exchange_id)?;
            }
            self.sent
                .insert(id.to_string(), Some(placed.exchange_id.clone()));
        }
        if placed.status.is_open() {
            s.placed_open += 1;
        }
        Ok(placed)
    }

    /// Cancels one of the bot's orders, by its exchange id when the exchange keeps
    /// no client id for it.
    fn cancel_order(&self, s: &mut Step<'_>, o: &Order) -> Result<(), BotError> {
        if o.client_id.is_empty() {
            s.ex.cancel_by_id(&o.symbol, &o.exchange_id)?;
        } else {
            s.ex.cancel(&o.symbol, &o.client_id)?;
        }
        s.cancelled += 1;
        Ok(())
    }

    /// Writes the status snapshot when it changed.
    fn publish(&mut self, s: &Step<'_>, j: &mut dyn Journal) -> Result<(), BotError> {
        let dir = self.side();
        let open = self.ledger.is_open(dir, self.market.step);
        let ours = s.opens.iter().filter(|o| self.ours(o).is_some()).count();
        let snap = Snapshot {
            size: if open {
                self.ledger.size(dir)
            } else {
                Decimal::ZERO
            },
            avg: if open {
                self.ledger.avg_entry(dir)
            } else {
                Decimal::ZERO
            },
            open_orders: (ours + s.placed_open).saturating_sub(s.cancelled),
            take_profit_price: self.tp_price.filter(|_| open),
            stop_loss_price: self.stop_price.filter(|_| open),
            stop_on_exchange: open && self.stop_live.is_some(),
        };
        if self.seen.as_ref() != Some(&snap) {
            j.snapshot(&snap)?;
            self.seen = Some(snap);
        }
        Ok(())
    }

    /// Checks that the entry can be placed at all (an entry below the market
    /// minimum stops the bot with a clear error).
    pub fn check_entry(&self, price: Decimal) -> Result<Decimal, String> {
        use crate::money::text;
        let amount = self.cfg.grids.first().map_or(Decimal::ZERO, |g| g.amount);
        ladder::leg_qty(amount, self.cfg.leverage, price, &self.market).ok_or_else(|| {
            let buys = amount
                .checked_mul(Decimal::from(self.cfg.leverage))
                .and_then(|v| v.checked_div(price))
                .map_or_else(|| "nothing".to_string(), |q| format!("{q:.8}"));
            format!(
                "entry of {} USDT at {}x buys {buys} {} at {}, below the minimum \
                 quantity {}{}; raise the first grid amount or the leverage",
                text(amount),
                self.cfg.leverage,
                self.cfg.symbol,
                text(price),
                text(self.market.min_qty),
                if self.market.min_notional > Decimal::ZERO {
                    format!(" or order value {} USDT", text(self.market.min_notional))
                } else {
                    String::new()
                }
            )
        })
    }
}

#[cfg(test)]
mod tests;
