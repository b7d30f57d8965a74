//! What a step learns before it acts: the cycle's ledger and sent orders, which
//! open orders are the bot's (by client id, or by exchange id where the exchange
//! keeps no client id), new fills, foreign orders (the safety stop) and leftovers
//! of earlier cycles.

use rust_decimal::Decimal;
use serde_json::json;

use super::{BotError, Engine, Journal, Mode, Step, Verdict};
use crate::bots::ids::{self, Purpose};
use crate::bots::ledger::{Fill, FillPurpose, Ledger};
use crate::exchange::{Order, OrderKind, OrderSide};
use crate::money::{self, text};

/// Where an order the bot may place stands.
pub(super) enum Lookup {
    Found(Order),
    Forgotten,
    Absent,
}

/// What a fill of an order with this purpose is, in the ledger.
fn fill_purpose(p: Purpose) -> FillPurpose {
    match p {
        Purpose::Entry => FillPurpose::Entry,
        Purpose::Leg(..) => FillPurpose::Leg,
        Purpose::TakeProfit(_) => FillPurpose::TakeProfit,
        Purpose::StopLoss(_) => FillPurpose::StopLoss,
        Purpose::Close(_) => FillPurpose::Close,
        Purpose::Trailing(_) => FillPurpose::TrailingTakeProfit,
    }
}

fn side_word(s: OrderSide) -> &'static str {
    match s {
        OrderSide::Buy => "buy",
        OrderSide::Sell => "sell",
    }
}

impl Engine {
    /// Loads the cycle's ledger, funding and sent orders: once per cycle, and
    /// again on resume and recover (which re-read every order the cycle sent).
    pub(super) fn load(&mut self, j: &mut dyn Journal, mode: Mode) -> Result<(), BotError> {
        let cycle = self.state.cycle;
        if self.loaded == Some(cycle) && mode == Mode::Tick {
            return Ok(());
        }
        self.ledger = Ledger::new(j.fills(cycle)?);
        self.funding = j.funding_of(cycle)?.iter().map(|f| f.amount).sum();
        self.sent = j
            .sent(cycle)?
            .into_iter()
            .map(|s| (s.client_id, s.exchange_id))
            .collect();
        self.tracked = self.sent.keys().cloned().collect();
        if mode != Mode::Tick {
            // Resume and recover ask the exchange about everything again.
            self.unsent.clear();
            self.began = None;
        }
        self.legs_settled = None;
        self.loaded = Some(cycle);
        Ok(())
    }

    /// Forgets the per-cycle state after a close or a void cycle.
    pub(super) fn reset_cycle(&mut self) {
        self.ledger = Ledger::default();
        self.funding = Decimal::ZERO;
        self.sent.clear();
        self.tracked.clear();
        // The new cycle (already in `state`) is this engine's: none of its ids
        // was sent yet.
        self.unsent.clear();
        self.began = Some(self.state.cycle);
        self.flat_reads = 0;
        self.mismatch_since = None;
        self.stop_live = None;
        self.stop_price = None;
        self.tp_price = None;
        self.stop_retry_ms = 0;
        self.stop_problem = None;
        self.funding_problem = None;
        self.funding_read_ms = 0;
        self.refusals.clear();
        self.exit_refusals.clear();
        self.skipped.clear();
        self.legs_settled = None;
        self.loaded = Some(self.state.cycle);
    }

    /// The client id of one of the bot's orders (of any cycle); `None` for others.
    pub(super) fn ours(&self, o: &Order) -> Option<String> {
        if !o.client_id.is_empty() {
            return o
                .client_id
                .starts_with(&ids::bot_prefix(self.bot.bot_id))
                .then(|| o.client_id.clone());
        }
        self.sent
            .iter()
            .find(|(_, ex)| ex.as_deref() == Some(o.exchange_id.as_str()))
            .map(|(id, _)| id.clone())
    }

    /// The purpose of one of the bot's orders of the current cycle.
    pub(super) fn this_cycle(&self, o: &Order) -> Option<(String, Purpose)> {
        let id = self.ours(o)?;
        match ids::parse(self.bot.bot_id, &id) {
            Some((c, p)) if c == self.state.cycle => Some((id, p)),
            _ => None,
        }
    }

    /// After a crash between placing a stop and recording its exchange id, an
    /// exchange that keeps no client id on stops (BingX) lists it untagged: a
    /// reduce-only stop on the bot's side created after the stop was sent is it.
    /// Every stop of the cycle still missing its exchange id is matched, the
    /// newest first (an older one may still rest after a crash in a move).
    pub(super) fn adopt_untagged_stops(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        let mut missing: Vec<(u32, String)> = self
            .sent
            .iter()
            .filter(|(_, ex)| ex.is_none())
            .filter_map(|(id, _)| match ids::parse(self.bot.bot_id, id) {
                Some((c, Purpose::StopLoss(n))) if c == self.state.cycle => Some((n, id.clone())),
                _ => None,
            })
            .collect();
        missing.sort_by_key(|m| std::cmp::Reverse(m.0));
        for (_, id) in missing {
            let Some(sent_s) = j.submitted_at(&id)? else {
                continue;
            };
            let known: Vec<String> = self.sent.values().flatten().cloned().collect();
            let found = s.opens.iter().find(|o| {
                o.client_id.is_empty()
                    && !known.contains(&o.exchange_id)
                    && o.kind == OrderKind::Stop
                    && o.reduce_only
                    && o.position_side == self.side()
                    // Seconds in the journal, milliseconds on the exchange.
                    && o.created_ms >= sent_s * 1000 - 1000
            });
            let Some(o) = found else {
                continue;
            };
            let ex_id = o.exchange_id.clone();
            j.placed(&id, &ex_id)?;
            self.sent.insert(id.clone(), Some(ex_id.clone()));
            j.event(
                "stop_adopted",
                &format!("the exchange lists the stop-loss {id} without its client id (order {ex_id}); adopted"),
                json!({"client_id": id, "exchange_id": ex_id}),
            )?;
        }
        Ok(())
    }

    /// Untagged open orders the bot recorded in an earlier cycle (a stop an
    /// exchange lists without its client id): known by their exchange id, so
    /// they are cancelled as leftovers instead of stopping the bot as foreign.
    /// Sibling bots' orders are told apart on the way (see [`Self::sibling`]).
    pub(super) fn recall_untagged(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        for o in &s.opens {
            if !o.client_id.is_empty() {
                // Another bot's tag is not enough: the tag of another user's bot
                // on a shared account reads the same. A sibling's order was
                // recorded by its owner, who is ours, before it was sent.
                let other = ids::tagged_bot(&o.client_id).is_some_and(|b| b != self.bot.bot_id);
                if other && j.submitted_at(&o.client_id)?.is_some() {
                    s.siblings.insert(o.exchange_id.clone());
                }
                continue;
            }
            if self.ours(o).is_some() {
                continue;
            }
            if let Some(id) = j.client_id_of(&o.exchange_id)? {
                if ids::parse(self.bot.bot_id, &id).is_some() {
                    s.recorded.insert(o.exchange_id.clone(), id);
                } else if ids::tagged_bot(&id).is_some() {
                    s.siblings.insert(o.exchange_id.clone());
                }
            }
        }
        Ok(())
    }

    /// An order of a sibling bot: another bot of the same user trading on this
    /// account (another side of the symbol), as `recall_untagged` found it. It
    /// is theirs: never foreign, never cancelled, never counted. Another user's
    /// bot on the same account is no sibling: its orders are foreign.
    pub(super) fn sibling(&self, s: &Step<'_>, o: &Order) -> bool {
        s.siblings.contains(&o.exchange_id)
    }

    /// The bot's client id of an open order: `ours`, or one recalled by the
    /// exchange id recorded in an earlier cycle.
    fn known_id(&self, s: &Step<'_>, o: &Order) -> Option<String> {
        self.ours(o)
            .or_else(|| s.recorded.get(&o.exchange_id).cloned())
    }

    /// Safety stop: an order on our symbol that we did not place, created after we
    /// started, stops the bot and touches nothing.
    pub(super) fn safety_check(
        &self,
        s: &Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<Option<Verdict>, BotError> {
        let Some(foreign) = s.opens.iter().find(|o| {
            self.known_id(s, o).is_none() && !self.sibling(s, o) && o.created_ms >= self.started_ms
        }) else {
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
    pub(super) fn cancel_leftovers(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        let old: Vec<(String, Order)> = s
            .opens
            .iter()
            .filter_map(|o| self.known_id(s, o).map(|id| (id, o)))
            .filter(
                |(id, _)| matches!(ids::parse(self.bot.bot_id, id), Some((c, _)) if c != self.state.cycle),
            )
            .map(|(id, o)| (id, o.clone()))
            .collect();
        for (id, o) in old {
            self.cancel_order(s, &o)?;
            s.opens.retain(|x| x.exchange_id != o.exchange_id);
            s.cancelled = s.cancelled.saturating_sub(1);
            j.event(
                "order_cancelled",
                &format!("cancelled leftover order {id}"),
                json!({"client_id": id, "exchange_id": o.exchange_id}),
            )?;
        }
        Ok(())
    }

    /// Records every fill the cycle's orders report beyond the ledger: open ones
    /// from the list, tracked ones that left it from one more read each.
    pub(super) fn observe_all(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<(), BotError> {
        let mut listed = Vec::new();
        for o in s.opens.clone() {
            if let Some((id, _)) = self.this_cycle(&o) {
                self.observe(j, &id, &o)?;
                listed.push(id);
            }
        }
        let gone: Vec<String> = self
            .tracked
            .iter()
            .filter(|id| !listed.contains(id))
            .cloned()
            .collect();
        for id in gone {
            match self.read(s, &id)? {
                Some(o) => {
                    self.observe(j, &id, &o)?;
                    if !o.status.is_open() {
                        self.tracked.remove(&id);
                    }
                }
                // Forgotten by the exchange (or never arrived): the ledger has
                // whatever it filled.
                None => {
                    self.tracked.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// One of our orders, by client id or else by its recorded exchange id.
    pub(super) fn read(&mut self, s: &Step<'_>, id: &str) -> Result<Option<Order>, BotError> {
        let sym = &self.cfg.symbol;
        let sent = self.sent.contains_key(id);
        let ours = ids::parse(self.bot.bot_id, id).is_some_and(|(c, _)| Some(c) == self.began);
        if !sent && (ours || self.unsent.contains(id)) {
            return Ok(None);
        }
        if let Some(o) = s.ex.order(sym, id)? {
            return Ok(Some(o));
        }
        let Some(Some(ex_id)) = self.sent.get(id) else {
            if !sent {
                self.unsent.insert(id.to_string());
            }
            return Ok(None);
        };
        match s.ex.order_by_id(sym, ex_id) {
            Ok(o) => Ok(o),
            Err(e) if e.is_retryable() => Err(e.into()),
            // An exchange that cannot look orders up by id knows them by client id.
            Err(_) => Ok(None),
        }
    }

    /// Writes the fill `o` reports beyond the ledger, if any, before anything acts
    /// on it.
    pub(super) fn observe(
        &mut self,
        j: &mut dyn Journal,
        id: &str,
        o: &Order,
    ) -> Result<(), BotError> {
        let Some((cycle, purpose)) = ids::parse(self.bot.bot_id, id) else {
            return Ok(());
        };
        if cycle != self.state.cycle {
            return Ok(());
        }
        let Some(d) = self.ledger.delta(id, o)? else {
            return Ok(());
        };
        let fill = Fill {
            cycle,
            client_id: id.to_string(),
            exchange_order_id: o.exchange_id.clone(),
            purpose: fill_purpose(purpose),
            leg: purpose.leg(),
            side: o.side,
            qty: d.qty,
            price: d.price,
            fee: d.fee,
            time_ms: j.now_ms(),
            seq: d.seq,
        };
        j.fill(&fill)?;
        self.ledger.fills.push(fill.clone());
        self.fill_events(j, &fill)
    }

    fn fill_events(&mut self, j: &mut dyn Journal, f: &Fill) -> Result<(), BotError> {
        // A fee adjustment (ledger.rs) is no new fill.
        if f.qty.is_zero() {
            return Ok(());
        }
        let sym = self.cfg.symbol.clone();
        j.event(
            "fill",
            &format!(
                "{} {} {} {sym} @ {} (fee {} USDT)",
                f.purpose,
                side_word(f.side),
                text(f.qty),
                text(f.price),
                text(money::pnl(f.fee))
            ),
            json!({"client_id": f.client_id, "purpose": f.purpose, "leg": f.leg,
                "side": side_word(f.side), "qty": money::json(f.qty),
                "price": money::json(f.price), "fee": money::json(money::pnl(f.fee)),
                "cycle": f.cycle}),
        )?;
        let dir = self.side();
        let (size, avg) = (self.ledger.size(dir), self.ledger.avg_entry(dir));
        match f.purpose {
            FillPurpose::Leg => {
                let leg = f.leg.unwrap_or_default();
                j.event(
                    "leg_filled",
                    &format!(
                        "ladder leg {leg} filled: position {} {sym} @ avg {}",
                        text(size),
                        text(avg.round_dp(8))
                    ),
                    json!({"leg": leg, "size": money::json(size), "avg_entry": money::json(avg)}),
                )?;
                j.notify(&format!(
                    "Leg {leg} filled on {sym}: position {} @ avg {}",
                    text(size),
                    text(avg.round_dp(4))
                ));
            }
            FillPurpose::Entry => j.notify(&format!(
                "Entry {} {} {sym} @ {} (cycle {})",
                crate::bots::config::side_name(dir),
                text(f.qty),
                text(f.price),
                self.state.cycle
            )),
            _ => {}
        }
        Ok(())
    }

    /// Where `id` stands: on the exchange, sent so long ago that the exchange may
    /// have forgotten it (either way it must not be placed again), or absent.
    pub(super) fn lookup(
        &mut self,
        s: &Step<'_>,
        j: &mut dyn Journal,
        id: &str,
    ) -> Result<Lookup, BotError> {
        if let Some(o) = self.read(s, id)? {
            return Ok(Lookup::Found(o));
        }
        if self.sent_long_ago(j, id)? {
            return Ok(Lookup::Forgotten);
        }
        Ok(Lookup::Absent)
    }

    /// `id` was sent longer ago than exchanges reliably find orders by client id
    /// (BingX: hours); within that window "not found" means "never arrived", and
    /// sending it again is safe because the exchange refuses a duplicate id.
    pub(super) fn sent_long_ago(&self, j: &mut dyn Journal, id: &str) -> Result<bool, BotError> {
        const TRUST_ABSENCE_S: i64 = 3600;
        Ok(j.submitted_at(id)?
            .is_some_and(|at| j.now() - at > TRUST_ABSENCE_S))
    }
}
