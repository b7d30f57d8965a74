//! One bot's state machine (docs/bots.md): each step reads the exchange, compares it
//! with what the ladder wants, and places or cancels only the difference. Because
//! every order has a deterministic client id and the placement counters are
//! journalled *before* an order is placed, a step can be interrupted anywhere (kill
//! -9) and the next one — after a restart — adopts what exists instead of placing it
//! again.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::config::{side_name, BotConfig};
use super::ids::{self, Purpose};
use super::ladder::{self, Market, Side};
use super::status::StopMode;
use crate::exchange::{Exchange, ExchangeError, NewOrder, Order, OrderKind, OrderSide};
use crate::money::{self, text};
use crate::store::trades::Trade;
use crate::store::StoreError;

/// Why a step runs: a scheduled tick maintains the cycle; resume and recover also
/// look up every order the cycle should have and create the missing ones.
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
    /// Not repeating: the cycle closed and the bot is done.
    Finished,
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
    /// Errors that another try may fix (the bot keeps running and retries).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BotError::Exchange(ExchangeError::Network(_) | ExchangeError::RateLimited)
                | BotError::Store(_)
        )
    }
}

/// The placement state that must survive a restart, journalled before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleState {
    pub cycle: i64,
    pub tp_n: u32,
    pub sl_n: u32,
    pub opened_at: Option<i64>,
}

/// Where the engine writes what happened; the runner's is the database (+ Telegram).
pub trait Journal {
    fn event(&mut self, kind: &str, message: &str, data: Value) -> Result<(), StoreError>;
    /// Persists placement counters and the cycle; called before the order they name.
    fn cycle(&mut self, state: &CycleState) -> Result<(), StoreError>;
    /// Records a closed cycle and moves to `next`, atomically. `last`: the bot ends
    /// with this cycle, so its desired state becomes stopped in the same write (a
    /// crash right after must not resume it into a new cycle).
    fn close_cycle(
        &mut self,
        trade: &Trade,
        next: &CycleState,
        last: bool,
    ) -> Result<(), StoreError>;
    /// The position and open-order count, when they changed.
    fn position(
        &mut self,
        size: Decimal,
        avg: Decimal,
        open_orders: usize,
    ) -> Result<(), StoreError>;
    /// Records that `client_id` is about to be sent (before the request).
    fn submitted(&mut self, client_id: &str) -> Result<(), StoreError>;
    /// When `client_id` was first sent, if ever (Unix seconds).
    fn submitted_at(&self, client_id: &str) -> Result<Option<i64>, StoreError>;
    /// A user notification (Telegram); never fails the step.
    fn notify(&mut self, text: &str);
    fn now(&self) -> i64;
}

pub struct Engine {
    pub uid: i64,
    pub cfg: BotConfig,
    pub market: Market,
    pub state: CycleState,
    /// Orders created before this (Unix ms) are not "new foreign orders".
    pub started_ms: i64,
    /// (qty, avg price) of the cycle's entry once filled.
    entry: Option<(Decimal, Decimal)>,
    legs_checked: bool,
    seen: (Decimal, Decimal, usize),
    /// A flat position without any exit fill was seen once: a real exchange may
    /// report the position a moment after the entry fill, so it must be seen twice.
    flat_once: bool,
}

struct Step<'a> {
    ex: &'a dyn Exchange,
    actions: Vec<String>,
}

fn near(a: Decimal, b: Decimal, unit: Decimal) -> bool {
    (a - b).abs() <= unit / Decimal::TWO
}

fn remaining(o: &Order) -> Decimal {
    (o.qty - o.filled_qty).max(Decimal::ZERO)
}

impl Engine {
    pub fn new(
        uid: i64,
        cfg: BotConfig,
        market: Market,
        state: CycleState,
        started_ms: i64,
    ) -> Engine {
        Engine {
            uid,
            cfg,
            market,
            state,
            started_ms,
            entry: None,
            legs_checked: false,
            seen: (Decimal::NEGATIVE_ONE, Decimal::NEGATIVE_ONE, usize::MAX),
            flat_once: false,
        }
    }

    fn id(&self, p: Purpose) -> String {
        ids::client_id(self.uid, self.state.cycle, p)
    }

    fn side(&self) -> Side {
        self.cfg.side
    }

    /// Checks that the entry can be placed at all (an entry below the market
    /// minimum stops the bot with a clear error). Called by start before anything is
    /// placed.
    pub fn check_entry(&self, price: Decimal) -> Result<Decimal, String> {
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

    /// One pass of the strategy. Returns what it created (for recover) and whether
    /// the bot goes on.
    pub fn step(
        &mut self,
        ex: &dyn Exchange,
        j: &mut dyn Journal,
        mode: Mode,
    ) -> Result<(Vec<String>, Verdict), BotError> {
        let mut s = Step {
            ex,
            actions: Vec::new(),
        };
        let verdict = self.run(&mut s, j, mode)?;
        Ok((s.actions, verdict))
    }

    fn run(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        mode: Mode,
    ) -> Result<Verdict, BotError> {
        let sym = self.cfg.symbol.clone();
        let opens = s.ex.open_orders(&sym)?;
        if let Some(v) = self.safety_check(&opens, j)? {
            return Ok(v);
        }
        self.cancel_leftovers(s, &opens, j)?;
        if mode != Mode::Tick {
            self.legs_checked = false;
        }
        let entry = match self.entry {
            Some(e) => Some(e),
            None => self.adopt_entry(s, j)?,
        };
        let Some(entry) = entry else {
            return Ok(match self.entry_failure(s, &sym)? {
                Some(msg) => Verdict::Failed(msg),
                None => Verdict::Continue,
            });
        };
        self.entry = Some(entry);
        if !self.legs_checked {
            self.ensure_legs(s, &opens, entry.1, j)?;
        }
        let pos = s.ex.position(&sym, self.side())?;
        if pos.size < self.market.step / Decimal::TWO {
            if !self.flat_once && !self.has_exit_fill(s)? {
                self.flat_once = true;
                return Ok(Verdict::Continue);
            }
            return self.close_cycle(s, j, None);
        }
        self.flat_once = false;
        self.note_fills(pos.size, pos.avg_entry, j)?;
        self.ensure_take_profit(s, &opens, pos.size, pos.avg_entry, j)?;
        if self.check_stop_loss(s, pos.size, pos.avg_entry, pos.mark_price, j)? {
            return Ok(Verdict::Continue);
        }
        let open_now = s.ex.open_orders(&sym)?.len();
        self.publish(pos.size, pos.avg_entry, open_now, j)?;
        Ok(Verdict::Continue)
    }

    /// Safety stop: an order on our symbol that we did not place, created after we
    /// started, stops the bot and touches nothing.
    fn safety_check(
        &self,
        opens: &[Order],
        j: &mut dyn Journal,
    ) -> Result<Option<Verdict>, BotError> {
        let prefix = ids::user_prefix(self.uid);
        let Some(foreign) = opens
            .iter()
            .find(|o| !o.client_id.starts_with(&prefix) && o.created_ms >= self.started_ms)
        else {
            return Ok(None);
        };
        let msg = format!(
            "an order the bot did not place appeared on {} (id {}); stopped without touching \
             orders or the position",
            self.cfg.symbol, foreign.exchange_id
        );
        j.event(
            "safety_stop",
            &msg,
            json!({"order_id": foreign.exchange_id, "client_id": foreign.client_id}),
        )?;
        j.notify(&format!("Safety stop on {}: {msg}", self.cfg.symbol));
        Ok(Some(Verdict::SafetyStop(msg)))
    }

    /// Our own orders from earlier cycles are leftovers of an interrupted close.
    fn cancel_leftovers(
        &self,
        s: &mut Step<'_>,
        opens: &[Order],
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        for o in opens {
            if let Some((cycle, _)) = ids::parse(self.uid, &o.client_id) {
                if cycle != self.state.cycle {
                    s.ex.cancel(&o.symbol, &o.client_id)?;
                    j.event(
                        "order_cancelled",
                        &format!("cancelled leftover order {}", o.client_id),
                        json!({"client_id": o.client_id}),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// The entry's fill if it exists; places it when the cycle has none yet.
    fn adopt_entry(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<Option<(Decimal, Decimal)>, BotError> {
        let sym = self.cfg.symbol.clone();
        let mut existing = s.ex.order(&sym, &self.id(Purpose::Entry))?;
        if let Some(o) = existing
            .as_ref()
            .filter(|o| !o.status.is_open() && o.filled_qty <= Decimal::ZERO)
        {
            // The entry ended without a fill (rejected, cancelled): the cycle never
            // began, and its id cannot be used again; the next cycle starts over.
            let old = self.state.cycle;
            let msg = format!(
                "cycle {old}: the entry order ended without a fill ({:?}); starting cycle {}",
                o.status,
                old + 1
            )
            .to_lowercase();
            self.state = CycleState {
                cycle: old + 1,
                tp_n: 0,
                sl_n: 0,
                opened_at: None,
            };
            j.cycle(&self.state)?;
            j.event("cycle_void", &msg, json!({"cycle": old}))?;
            existing = None;
        }
        let id = self.id(Purpose::Entry);
        if existing.is_none() && self.sent_long_ago(j, &id)? {
            return Err(ExchangeError::Rejected(format!(
                "the entry order {id} was sent but the exchange no longer lists it; it is not \
                 sent again (check the position on the exchange, then stop or recover)"
            ))
            .into());
        }
        let order = match existing {
            Some(o) => o,
            None => {
                let price = s.ex.ticker(&sym)?;
                let Ok(qty) = self.check_entry(price) else {
                    return Ok(None);
                };
                if self.state.opened_at.is_none() {
                    self.state.opened_at = Some(j.now());
                    j.cycle(&self.state)?;
                }
                let o = self.place(s, j, &id, None, qty, false)?;
                j.event(
                    "entry",
                    &format!(
                        "cycle {}: market entry {} {} @ {}",
                        self.state.cycle,
                        text(qty),
                        sym,
                        text(o.avg_fill_price)
                    ),
                    json!({"cycle": self.state.cycle, "qty": money::json(o.filled_qty),
                        "price": money::json(o.avg_fill_price)}),
                )?;
                j.notify(&format!(
                    "Entry {} {} {} @ {} (cycle {})",
                    side_name(self.side()),
                    text(o.filled_qty),
                    sym,
                    text(o.avg_fill_price),
                    self.state.cycle
                ));
                s.actions.push("created_entry".into());
                o
            }
        };
        Ok(
            (order.filled_qty > Decimal::ZERO && !order.status.is_open())
                .then_some((order.filled_qty, order.avg_fill_price)),
        )
    }

    /// Why there is no entry fill: still open (wait), or a problem that stops the bot.
    fn entry_failure(&self, s: &mut Step<'_>, sym: &str) -> Result<Option<String>, BotError> {
        match s.ex.order(sym, &self.id(Purpose::Entry))? {
            Some(o) if o.status.is_open() => Ok(None),
            Some(o) => Ok(Some(
                format!(
                    "the entry order {} was {:?} without a fill",
                    o.client_id, o.status
                )
                .to_lowercase(),
            )),
            None => {
                let price = s.ex.ticker(sym)?;
                Ok(self.check_entry(price).err())
            }
        }
    }

    /// The exchange has `id`, or it was sent so long ago that the exchange may
    /// have forgotten it: either way it must not be placed again.
    fn exists(&self, s: &mut Step<'_>, j: &mut dyn Journal, id: &str) -> Result<bool, BotError> {
        if s.ex.order(&self.cfg.symbol, id)?.is_some() {
            return Ok(true);
        }
        if self.sent_long_ago(j, id)? {
            j.event(
                "order_unknown",
                &format!("{id} was sent earlier but the exchange no longer lists it; not sending it again"),
                json!({"client_id": id}),
            )?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `id` was sent longer ago than exchanges reliably find orders by client id
    /// (BingX: hours); within that window "not found" means "never arrived", and
    /// sending it again is safe because the exchange refuses a duplicate id.
    fn sent_long_ago(&self, j: &mut dyn Journal, id: &str) -> Result<bool, BotError> {
        const TRUST_ABSENCE_S: i64 = 3600;
        Ok(j.submitted_at(id)?
            .is_some_and(|at| j.now() - at > TRUST_ABSENCE_S))
    }

    fn place(
        &self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        id: &str,
        price: Option<Decimal>,
        qty: Decimal,
        reduce_only: bool,
    ) -> Result<Order, BotError> {
        // A limit order at `price`, or a market order without one.
        let kind = if price.is_some() {
            OrderKind::Limit
        } else {
            OrderKind::Market
        };
        let side = if reduce_only {
            OrderSide::closing(self.side())
        } else {
            OrderSide::opening(self.side())
        };
        let order = NewOrder {
            client_id: id.to_string(),
            symbol: self.cfg.symbol.clone(),
            side,
            kind,
            price,
            trigger_price: None,
            qty,
            reduce_only,
            position_side: self.side(),
        };
        // Written before the request: a crash after it leaves the id known as
        // sent, even if its answer never arrived.
        j.submitted(id)?;
        match s.ex.place(&order) {
            Ok(o) => Ok(o),
            // Placed by an earlier, interrupted step: adopt it.
            Err(ExchangeError::Duplicate(_)) => {
                s.ex.order(&self.cfg.symbol, id)?.ok_or_else(|| {
                    ExchangeError::Rejected(format!("{id} is a duplicate but cannot be read"))
                        .into()
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Places every ladder leg the cycle never placed. A leg that exists in any state
    /// (open, filled, cancelled) is never placed again: its client id is taken.
    fn ensure_legs(
        &mut self,
        s: &mut Step<'_>,
        opens: &[Order],
        entry_price: Decimal,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        let rounds = self.cfg.rounds.min(self.cfg.grids.len());
        let gaps: Vec<Decimal> = self.cfg.grids[..rounds].iter().map(|g| g.gap).collect();
        let prices = ladder::leg_prices(entry_price, &gaps, self.side(), &self.market);
        for (i, price) in prices.into_iter().enumerate().map(|(k, p)| (k + 1, p)) {
            let id = self.id(Purpose::Leg(i));
            if opens.iter().any(|o| o.client_id == id) || self.exists(s, j, &id)? {
                continue;
            }
            let amount = self.cfg.grids[i].amount;
            let Some(qty) = ladder::leg_qty(amount, self.cfg.leverage, price, &self.market) else {
                j.event(
                    "leg_skipped",
                    &format!(
                        "leg {i}: {} USDT at {} is below the minimum quantity {}",
                        text(amount),
                        text(price),
                        text(self.market.min_qty)
                    ),
                    json!({"leg": i, "price": money::json(price)}),
                )?;
                continue;
            };
            match self.place(s, j, &id, Some(price), qty, false) {
                Ok(_) => {
                    s.actions.push(format!("created_leg_{i}"));
                    j.event(
                        "leg_placed",
                        &format!("leg {i}: limit {} @ {}", text(qty), text(price)),
                        json!({"leg": i, "qty": money::json(qty), "price": money::json(price)}),
                    )?;
                }
                Err(BotError::Exchange(
                    e @ (ExchangeError::BelowMinimum
                    | ExchangeError::InsufficientBalance
                    | ExchangeError::Rejected(_)),
                )) => {
                    j.event(
                        "leg_skipped",
                        &format!("leg {i}: {e}"),
                        json!({"leg": i, "price": money::json(price)}),
                    )?;
                }
                Err(e) => return Err(e),
            }
        }
        self.legs_checked = true;
        Ok(())
    }

    /// Reports legs that filled since the last step (the position grew).
    fn note_fills(
        &mut self,
        size: Decimal,
        avg: Decimal,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        let (last_size, _, _) = self.seen;
        if last_size > Decimal::ZERO && size > last_size + self.market.step / Decimal::TWO {
            let msg = format!(
                "ladder leg filled: position {} {} @ avg {avg:.4}",
                text(size),
                self.cfg.symbol
            );
            j.event(
                "leg_filled",
                &msg,
                json!({"size": money::json(size), "avg_entry": money::json(avg)}),
            )?;
            j.notify(&format!(
                "Leg filled on {}: position {} @ avg {avg:.4}",
                self.cfg.symbol,
                text(size)
            ));
        }
        Ok(())
    }

    /// Exactly one take-profit for the whole position at the price the average wants.
    fn ensure_take_profit(
        &mut self,
        s: &mut Step<'_>,
        opens: &[Order],
        size: Decimal,
        avg: Decimal,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        let m = self.market;
        let want = ladder::take_profit_price(
            avg,
            self.cfg.take_profit,
            self.cfg.leverage,
            self.side(),
            &m,
        );
        let tps: Vec<&Order> = opens
            .iter()
            .filter(|o| matches!(ids::parse(self.uid, &o.client_id), Some((c, Purpose::TakeProfit(_))) if c == self.state.cycle))
            .collect();
        if let [tp] = tps.as_slice() {
            if tp.price.is_some_and(|p| near(p, want, m.tick)) && near(remaining(tp), size, m.step)
            {
                return Ok(());
            }
        }
        for tp in &tps {
            s.ex.cancel(&tp.symbol, &tp.client_id)?;
        }
        self.state.tp_n += 1;
        j.cycle(&self.state)?;
        let id = self.id(Purpose::TakeProfit(self.state.tp_n));
        self.place(s, j, &id, Some(want), size, true)?;
        let action = if tps.is_empty() {
            "created_tp"
        } else {
            "moved_tp"
        };
        s.actions.push(action.into());
        j.event(
            "take_profit",
            &format!(
                "take-profit {} @ {} (average {avg:.4})",
                text(size),
                text(want)
            ),
            json!({"price": money::json(want), "qty": money::json(size),
                "avg_entry": money::json(avg), "client_id": id}),
        )
        .map_err(Into::into)
    }

    /// The stop-loss is watched by the bot and executed as a reduce-only market
    /// order when the mark crosses it (a resting limit there would fill at once).
    fn check_stop_loss(
        &mut self,
        s: &mut Step<'_>,
        size: Decimal,
        avg: Decimal,
        mark: Decimal,
        j: &mut dyn Journal,
    ) -> Result<bool, BotError> {
        let Some(stop) = ladder::stop_loss_price(
            avg,
            self.cfg.stop_loss,
            self.cfg.leverage,
            self.side(),
            &self.market,
        ) else {
            return Ok(false);
        };
        let crossed = match self.side() {
            Side::Long => mark <= stop,
            Side::Short => mark >= stop,
        };
        if !crossed || mark <= Decimal::ZERO {
            return Ok(false);
        }
        self.state.sl_n += 1;
        j.cycle(&self.state)?;
        let id = self.id(Purpose::StopLoss(self.state.sl_n));
        self.place(s, j, &id, None, size, true)?;
        s.actions.push("created_sl".into());
        j.event(
            "stop_loss",
            &format!(
                "stop-loss at {}: closing {} at market ({})",
                text(stop),
                text(size),
                text(mark)
            ),
            json!({"stop": money::json(stop), "mark": money::json(mark),
                "qty": money::json(size)}),
        )?;
        Ok(true)
    }

    fn publish(
        &mut self,
        size: Decimal,
        avg: Decimal,
        open: usize,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        if self.seen != (size, avg, open) {
            self.seen = (size, avg, open);
            j.position(size, avg, open)?;
        }
        Ok(())
    }

    /// The position is flat: record the cycle from its orders' fills, clean up, and
    /// move on to the next cycle or stop. `reason` names a stop that closed it.
    fn close_cycle(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        reason: Option<&str>,
    ) -> Result<Verdict, BotError> {
        let sym = self.cfg.symbol.clone();
        let mut entries = Vec::new();
        let mut exits = Vec::new();
        let mut fees = Decimal::ZERO;
        for p in self.cycle_purposes() {
            if let Some(o) = s.ex.order(&sym, &self.id(p))? {
                if o.status.is_open() {
                    s.ex.cancel(&sym, &o.client_id)?;
                }
                fees += o.fee;
                if o.filled_qty > Decimal::ZERO {
                    let fill = (o.filled_qty, o.avg_fill_price);
                    if o.reduce_only {
                        exits.push(fill)
                    } else {
                        entries.push(fill)
                    }
                }
            }
        }
        let size: Decimal = entries.iter().map(|f| f.0).sum();
        let avg = ladder::average_entry(&entries);
        let exit_qty: Decimal = exits.iter().map(|f| f.0).sum();
        let (exit_price, outside) = if exit_qty > Decimal::ZERO {
            (ladder::average_entry(&exits), false)
        } else {
            (s.ex.ticker(&sym)?, true)
        };
        // Recorded to 8 decimals: a product of 28-digit averages is not money.
        let fees = money::pnl(fees);
        let pnl = money::pnl(ladder::gross_pnl(self.side(), size, avg, exit_price) - fees);
        let size = size.normalize();
        let now = j.now();
        let trade = Trade {
            id: 0,
            user_id: self.uid,
            symbol: sym.clone(),
            side: side_name(self.side()).into(),
            size,
            avg_entry: avg,
            exit_price,
            pnl,
            fees,
            cycle: self.state.cycle,
            opened_at: self.state.opened_at.unwrap_or(now),
            closed_at: now,
        };
        let next = CycleState {
            cycle: self.state.cycle + 1,
            tp_n: 0,
            sl_n: 0,
            opened_at: None,
        };
        let last = !self.cfg.repeat || reason.is_some();
        j.close_cycle(&trade, &next, last)?;
        let how = reason.unwrap_or(if outside {
            "position closed outside the bot"
        } else {
            "position closed"
        });
        j.event("cycle_closed", &format!("cycle {} closed ({how}): {} {sym} {avg:.4} → {exit_price:.4}, PnL {pnl:.4} USDT after {fees:.4} fees",
            self.state.cycle, text(size)),
            json!({"cycle": self.state.cycle, "pnl": money::json(pnl), "fees": money::json(fees),
                "size": money::json(size), "avg_entry": money::json(avg),
                "exit_price": money::json(exit_price)}))?;
        j.notify(&format!(
            "Cycle {} closed on {sym}: PnL {pnl:.2} USDT (fees {fees:.2})",
            self.state.cycle
        ));
        self.state = next;
        self.entry = None;
        self.legs_checked = false;
        self.flat_once = false;
        self.publish(Decimal::ZERO, Decimal::ZERO, 0, j)?;
        Ok(if self.cfg.repeat && reason.is_none() {
            Verdict::Continue
        } else {
            Verdict::Finished
        })
    }

    /// Whether any of the cycle's exit orders (take-profit, stop-loss, close) filled.
    fn has_exit_fill(&self, s: &mut Step<'_>) -> Result<bool, BotError> {
        for p in self.cycle_purposes() {
            if matches!(
                p,
                Purpose::TakeProfit(_) | Purpose::StopLoss(_) | Purpose::Close
            ) {
                if let Some(o) = s.ex.order(&self.cfg.symbol, &self.id(p))? {
                    if o.filled_qty > Decimal::ZERO {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Every purpose an order of this cycle can have.
    fn cycle_purposes(&self) -> Vec<Purpose> {
        let mut v = vec![Purpose::Entry, Purpose::Close];
        v.extend((1..self.cfg.rounds.min(self.cfg.grids.len())).map(Purpose::Leg));
        v.extend((1..=self.state.tp_n).map(Purpose::TakeProfit));
        v.extend((1..=self.state.sl_n).map(Purpose::StopLoss));
        v
    }

    /// Applies a stop mode (`keep`, `cancel_orders`, `close_position`) to the exchange.
    pub fn stop(
        &mut self,
        ex: &dyn Exchange,
        j: &mut dyn Journal,
        mode: StopMode,
    ) -> Result<Vec<String>, BotError> {
        let mut s = Step {
            ex,
            actions: Vec::new(),
        };
        if mode == StopMode::Keep {
            return Ok(s.actions);
        }
        let sym = self.cfg.symbol.clone();
        let prefix = ids::user_prefix(self.uid);
        for o in ex
            .open_orders(&sym)?
            .iter()
            .filter(|o| o.client_id.starts_with(&prefix))
        {
            ex.cancel(&sym, &o.client_id)?;
            s.actions.push(format!("cancelled {}", o.client_id));
        }
        if mode == StopMode::ClosePosition {
            let pos = ex.position(&sym, self.side())?;
            if pos.size >= self.market.step / Decimal::TWO {
                let id = self.id(Purpose::Close);
                self.place(&mut s, j, &id, None, pos.size, true)?;
                s.actions.push("closed_position".into());
                self.close_cycle(&mut s, j, Some("closed by stop"))?;
            }
        }
        let open = ex.open_orders(&sym)?.len();
        let pos = ex.position(&sym, self.side())?;
        self.publish(pos.size, pos.avg_entry, open, j)?;
        Ok(s.actions)
    }
}

#[cfg(test)]
mod tests;
