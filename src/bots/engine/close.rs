//! The end of a cycle: every remaining order cancelled, the trade recorded from the
//! ledger (with funding), the events written, and what comes next — another cycle
//! (after the cooldown) or the bot's end — decided by how it closed
//! (docs/bots.md, Stops and closes). Also the outside close and funding reads.

use rust_decimal::Decimal;
use serde_json::json;

use super::{BotError, CycleState, Engine, Journal, Step, Verdict};
use crate::bots::config::{side_name, AfterStopLoss};
use crate::bots::ids;
use crate::bots::ledger::{Fill, FillPurpose};
use crate::bots::status::StopReason;
use crate::exchange::{Execution, OrderSide};
use crate::money::{self, text};
use crate::store::ledger::Funding;
use crate::store::trades::Trade;

/// How long a flat ledger waits for the exchange to report the same before the
/// cycle closes anyway (a lagging report resolves within seconds).
const MISMATCH_GRACE_MS: i64 = 30_000;

/// Funding is read this often while a position is open (and once at the close).
const FUNDING_EVERY_MS: i64 = 600_000;
/// …and a read that failed for a retryable reason is tried again this much later.
const FUNDING_RETRY_MS: i64 = 60_000;

impl Engine {
    /// What follows a close of this kind: `None` to go on with the next cycle, or
    /// why the bot stops.
    fn after_close(&self, how: FillPurpose) -> Option<StopReason> {
        let more = self.cfg.repeat && !self.after_cycle;
        match how {
            FillPurpose::Outside => Some(StopReason::ClosedOutside),
            FillPurpose::Liquidation => Some(StopReason::Liquidated),
            FillPurpose::StopLoss => match self.cfg.after_stop_loss {
                AfterStopLoss::Stop => Some(StopReason::StopLoss),
                AfterStopLoss::Continue if more => None,
                AfterStopLoss::Continue => Some(StopReason::AfterCycle),
            },
            _ if more => None,
            _ => Some(StopReason::AfterCycle),
        }
    }

    /// The ledger is flat: cancel what is left, record the cycle, move on or stop.
    pub(super) fn close_cycle(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        how: FillPurpose,
    ) -> Result<Verdict, BotError> {
        if !self.cancel_remaining(s, j)? {
            // A leg filled between the last read and its cancel: the position is
            // open again and the cycle goes on.
            j.event(
                "cycle_reopened",
                "a ladder leg filled while the cycle was closing; the cycle goes on",
                json!({"cycle": self.state.cycle}),
            )?;
            return Ok(Verdict::Continue);
        }
        if !self.exchange_agrees(s, j)? {
            self.publish(s, j)?;
            return Ok(Verdict::Continue);
        }
        self.poll_funding(s, j, true)?;
        let dir = self.side();
        let r = self.ledger.result(dir, self.funding);
        let reason = how.close_reason();
        let stop = self.after_close(how);
        let now = j.now();
        let cycle = self.state.cycle;
        let sym = self.cfg.symbol.clone();
        let trade = Trade {
            id: 0,
            user_id: self.bot.user_id,
            bot_id: Some(self.bot.bot_id),
            symbol: sym.clone(),
            side: side_name(dir).into(),
            size: r.size,
            avg_entry: r.avg_entry,
            exit_price: r.exit_price,
            pnl: r.pnl,
            fees: r.fees,
            cycle,
            opened_at: self.state.opened_at.unwrap_or(now),
            closed_at: now,
            close_reason: Some(reason.to_string()),
            funding: r.funding,
        };
        let next = CycleState {
            next_entry_at: (stop.is_none() && self.cfg.cooldown > 0)
                .then(|| now + i64::from(self.cfg.cooldown)),
            ..CycleState::first(cycle + 1)
        };
        let applied = j.close_cycle(&trade, &next, stop.is_some())?;
        // The close is written: the engine moves on before anything else can
        // fail, so a failed event write neither records the cycle twice nor
        // loses the configuration that close applied.
        self.state = next;
        self.reset_cycle();
        let applied = applied.map(|c| self.take_config(c)).is_some();
        let data = json!({"cycle": cycle, "close_reason": reason, "pnl": money::json(r.pnl),
            "fees": money::json(r.fees), "funding": money::json(r.funding),
            "size": money::json(r.size), "avg_entry": money::json(r.avg_entry),
            "exit_price": money::json(r.exit_price),
            "stop_reason": stop, "next_entry_at": next.next_entry_at});
        j.event(
            "cycle_closed",
            &format!(
                "cycle {cycle} closed ({reason}): {} {sym} {} → {}, PnL {} USDT after {} fees \
                 and {} funding",
                text(r.size),
                text(r.avg_entry.round_dp(8)),
                text(r.exit_price.round_dp(8)),
                text(r.pnl),
                text(r.fees),
                text(r.funding)
            ),
            data.clone(),
        )?;
        if how == FillPurpose::StopLoss {
            j.event(
                "stop_loss",
                &format!(
                    "stop-loss closed cycle {cycle} at {}: PnL {} USDT; {}",
                    text(r.exit_price.round_dp(8)),
                    text(r.pnl),
                    match stop {
                        None => "the next cycle follows",
                        Some(_) => "the bot stops",
                    }
                ),
                data,
            )?;
        }
        j.notify(&format!(
            "Cycle {cycle} closed on {sym} ({reason}): PnL {} USDT (fees {})",
            text(r.pnl.round_dp(2)),
            text(r.fees.round_dp(2))
        ));
        if applied {
            j.event(
                "config_applied",
                "the configuration changed while the bot ran applies from this cycle",
                json!({"cycle": self.state.cycle}),
            )?;
        }
        self.publish(s, j)?;
        Ok(match stop {
            None => Verdict::Continue,
            Some(r) => Verdict::Finished(r),
        })
    }

    /// A configuration applied between cycles; the market stays the cycle's.
    fn take_config(&mut self, c: crate::bots::config::BotConfig) {
        if c.leverage != self.cfg.leverage {
            self.relever = true;
        }
        let (exchange, symbol, side) = (
            self.cfg.exchange.clone(),
            self.cfg.symbol.clone(),
            self.cfg.side,
        );
        self.cfg = c;
        self.cfg.exchange = exchange;
        self.cfg.symbol = symbol;
        self.cfg.side = side;
    }

    /// Cancels every order of the cycle still open (legs, take-profit, stop),
    /// then reads every order the cycle sent once more, so a fill that raced the
    /// cancel — or landed between the step's first read and this one — is
    /// recorded. Returns whether the ledger is still flat.
    pub(super) fn cancel_remaining(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<bool, BotError> {
        let opens = s.ex.open_orders(&self.cfg.symbol)?;
        for o in opens {
            if let Some((id, _)) = self.this_cycle(&o) {
                self.cancel_order(s, &o)?;
                s.actions.push(format!("cancelled {id}"));
                self.tracked.insert(id);
            }
        }
        self.reread_tracked(s, j)?;
        s.opens.clear();
        s.placed_open = 0;
        s.cancelled = 0;
        Ok(!self.ledger.is_open(self.side(), self.market.step))
    }

    /// Reads every tracked order of the cycle and records what it filled; those
    /// no longer open stop being tracked.
    pub(super) fn reread_tracked(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        let ids: Vec<String> = self.tracked.iter().cloned().collect();
        for id in ids {
            match self.read(s, &id)? {
                Some(o) => {
                    self.observe(j, &id, &o)?;
                    if !o.status.is_open() {
                        self.tracked.remove(&id);
                    }
                }
                None => {
                    self.tracked.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Before a flat ledger is recorded as a closed cycle: does the exchange
    /// agree? A position the ledger cannot explain is most often a report that
    /// lags its fills, so the cycle stays open (nothing recorded, the next step
    /// looks again) for `MISMATCH_GRACE_MS`. Past that the difference is not the
    /// bot's — a position held by hand on the same side — and the cycle closes
    /// from its own fills (every order it sent was read again after the cancels,
    /// so none of its fills is missing). Both moments are events.
    fn exchange_agrees(&mut self, s: &mut Step<'_>, j: &mut dyn Journal) -> Result<bool, BotError> {
        let pos = s.ex.position(&self.cfg.symbol, self.side())?;
        let ledger = self.ledger.size(self.side());
        if (pos.size - ledger).abs() < self.half_step() {
            return Ok(true);
        }
        let now = j.now_ms();
        let data = json!({"cycle": self.state.cycle, "exchange_size": money::json(pos.size),
            "ledger_size": money::json(ledger)});
        let what = format!(
            "the exchange reports a {} position of {} {} while the bot's fills leave {}",
            side_name(self.side()),
            text(pos.size),
            self.cfg.symbol,
            text(ledger)
        );
        let Some(since) = self.mismatch_since else {
            self.mismatch_since = Some(now);
            let message = format!("{what}; the cycle stays open while the exchange catches up");
            j.event("position_mismatch", &message, data)?;
            return Ok(false);
        };
        if now - since < MISMATCH_GRACE_MS {
            return Ok(false);
        }
        let message = format!(
            "{what} after {} s; the rest is not the bot's (held by hand?) and the cycle closes \
             from the bot's fills",
            MISMATCH_GRACE_MS / 1000
        );
        j.event("position_mismatch", &message, data)?;
        Ok(true)
    }

    /// The position was closed by someone else: its exit is taken from the
    /// account's executions since the cycle began that reduced the position and
    /// are neither the bot's (its client ids, an exchange id it knows) nor a
    /// sibling bot's (a liquidation is named so); without any, the last
    /// mark, and the event says the price is an estimate.
    pub(super) fn close_outside(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        mark: Decimal,
    ) -> Result<Verdict, BotError> {
        let dir = self.side();
        let size = self.ledger.size(dir);
        // From the cycle's start, not the bot's last observed fill: that is when
        // the bot *saw* it, and the outside close may have come before.
        let since = self.cycle_start_ms();
        let execs = match s.ex.executions(&self.cfg.symbol, since) {
            Ok(v) => v,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(_) => Vec::new(),
        };
        let closing = OrderSide::closing(dir);
        let mut theirs: Vec<&Execution> = execs
            .iter()
            .filter(|x| {
                x.side == closing
                    && x.qty > Decimal::ZERO
                    && !self.is_ours(&x.client_id, &x.order_id)
                    && !self.is_siblings(&x.client_id)
            })
            .collect();
        theirs.sort_by_key(|x| x.time_ms);
        let (mut qty, mut value, mut fee, mut liquidation) =
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, false);
        let mut at_ms = None;
        for x in &theirs {
            let take = x.qty.min(size - qty);
            if take <= Decimal::ZERO {
                break;
            }
            value += take * x.price;
            fee += x.fee * take / x.qty;
            qty += take;
            liquidation |= x.liquidation;
            at_ms = Some(x.time_ms);
        }
        let estimate = qty <= Decimal::ZERO;
        let price = if estimate {
            mark
        } else {
            (value / qty).round_dp(12).normalize()
        };
        let purpose = if liquidation {
            FillPurpose::Liquidation
        } else {
            FillPurpose::Outside
        };
        let cycle = self.state.cycle;
        let fill = Fill {
            cycle,
            client_id: format!("{}{cycle}-out", ids::bot_prefix(self.bot.bot_id)),
            exchange_order_id: theirs
                .first()
                .map(|x| x.order_id.clone())
                .unwrap_or_default(),
            purpose,
            leg: None,
            side: closing,
            qty: size,
            price,
            fee: money::pnl(fee),
            // The exchange's time of the close when it reported one.
            time_ms: at_ms.unwrap_or_else(|| j.now_ms()),
            seq: 0,
        };
        j.fill(&fill)?;
        self.ledger.fills.push(fill);
        let what = if liquidation {
            "liquidated"
        } else {
            "closed outside the bot"
        };
        let price_note = if estimate {
            format!(
                "at about {} (an estimate: the exchange reported no execution)",
                text(price)
            )
        } else {
            format!("at {}", text(price))
        };
        // The one place an outside close is told from a liquidation: an execution
        // the exchange marked as one (paper, Bybit's `BustTrade`/`AdlTrade`).
        j.event(
            if liquidation {
                "liquidated"
            } else {
                "closed_outside"
            },
            &format!(
                "the {} position of {} {} was {what} {price_note}; the bot cancels its orders and \
                 stops",
                side_name(dir),
                text(size),
                self.cfg.symbol
            ),
            json!({"cycle": cycle, "exit_price": money::json(price), "estimate": estimate,
                "liquidation": liquidation, "qty": money::json(size),
                "executions": theirs.iter().map(|x| x.exec_id.clone()).collect::<Vec<_>>()}),
        )?;
        j.notify(&format!(
            "Position on {} {what}; the bot stopped",
            self.cfg.symbol
        ));
        self.close_cycle(s, j, purpose)
    }

    /// When the cycle began (Unix ms): its first order's journalled time, or its
    /// first recorded fill, whichever is earlier.
    fn cycle_start_ms(&self) -> i64 {
        let opened = self.state.opened_at.map(|s| s * 1000);
        let first_fill = self.ledger.fills.iter().map(|f| f.time_ms).min();
        match (opened, first_fill) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        }
    }

    /// An execution of another bot's order (a sibling on the same account): not
    /// an outside close, whatever its side. The tag is enough here, unlike for
    /// the safety stop: this only chooses which executions price an exit.
    fn is_siblings(&self, client_id: &str) -> bool {
        ids::tagged_bot(client_id).is_some_and(|b| b != self.bot.bot_id)
    }

    /// An execution of one of the bot's orders.
    fn is_ours(&self, client_id: &str, order_id: &str) -> bool {
        (!client_id.is_empty() && client_id.starts_with(&ids::bot_prefix(self.bot.bot_id)))
            || self.sent.values().any(|ex| ex.as_deref() == Some(order_id))
            || self
                .ledger
                .fills
                .iter()
                .any(|f| f.exchange_order_id == order_id && !order_id.is_empty())
    }

    /// Reads the funding settled since the cycle opened into `bot_funding`, at
    /// most every ten minutes (and when `now` says so, at the close). A failed
    /// read never fails the step (the stop and take-profit matter more): it is
    /// tried again a minute later, and an exchange that cannot say counts none.
    pub(super) fn poll_funding(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        now: bool,
    ) -> Result<(), BotError> {
        let t = j.now_ms();
        if !now && t - self.funding_read_ms < FUNDING_EVERY_MS {
            return Ok(());
        }
        self.funding_read_ms = t;
        let since = self.state.opened_at.map_or(t, |s| s * 1000);
        let list = match s.ex.funding(&self.cfg.symbol, since) {
            Ok(v) => v,
            Err(e) => {
                if e.is_retryable() {
                    self.funding_read_ms = t - FUNDING_EVERY_MS + FUNDING_RETRY_MS;
                }
                // Never silently: the cycle's PnL may lack funding until a read works.
                let msg = e.to_string();
                if self.funding_problem.as_deref() != Some(&msg) {
                    j.event(
                        "funding_unread",
                        &format!(
                            "funding on {} could not be read ({msg}); tried again later",
                            self.cfg.symbol
                        ),
                        json!({"error": msg}),
                    )?;
                    self.funding_problem = Some(msg);
                }
                return Ok(());
            }
        };
        self.funding_problem = None;
        let mine = self.side();
        let list = list
            .into_iter()
            .filter(|p| p.side.is_none_or(|s| s == mine));
        for p in list.filter(|p| p.time_ms >= since) {
            let row = Funding {
                cycle: self.state.cycle,
                exchange_id: p.id.clone(),
                amount: p.amount,
                time_ms: p.time_ms,
            };
            if j.funding(&row)? {
                self.funding += p.amount;
                j.event(
                    "funding",
                    &format!("funding {} USDT on {}", text(p.amount), self.cfg.symbol),
                    json!({"amount": money::json(p.amount), "id": p.id, "time_ms": p.time_ms}),
                )?;
            }
        }
        Ok(())
    }
}
