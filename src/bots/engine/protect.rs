//! The position's exits: the reduce-only stop resting on the exchange (with the
//! bot watching the price itself when the exchange would not take it), the
//! take-profit limit, or the trailing take-profit. Each follows the ledger's
//! average entry (docs/bots.md, Stops and closes).

use rust_decimal::Decimal;
use serde_json::json;

use super::{account_fatal, near, remaining, BotError, Engine, Journal, Kind, Step, Verdict};
use crate::bots::ids::Purpose;
use crate::bots::ladder::{self, Side};
use crate::bots::ledger::FillPurpose;
use crate::exchange::{Order, OrderKind};
use crate::money::{self, text};

/// After the exchange refused the stop, the next try comes this much later.
const STOP_RETRY_MS: i64 = 60_000;
/// …and after it refused a take-profit, this much later.
const TP_RETRY_MS: i64 = 10_000;

impl Engine {
    /// The cycle's open orders of one kind of purpose.
    fn ours_where(&self, s: &Step<'_>, want: impl Fn(Purpose) -> bool) -> Vec<Order> {
        s.opens
            .iter()
            .filter(|o| self.this_cycle(o).is_some_and(|(_, p)| want(p)))
            .cloned()
            .collect()
    }

    /// `mark` is at or beyond `price` on the losing side.
    fn crossed_down(&self, mark: Decimal, price: Decimal) -> bool {
        match self.side() {
            Side::Long => mark <= price,
            Side::Short => mark >= price,
        }
    }

    /// Exactly one exchange-side stop for the whole position at the price the
    /// average wants. The new one is placed before the old one is cancelled, so
    /// the position is never without one; a refusal leaves the old one and the
    /// bot's own watch (`stop_fallback`).
    pub(super) fn ensure_stop(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        size: Decimal,
        avg: Decimal,
    ) -> Result<(), BotError> {
        let m = self.market;
        let want =
            ladder::stop_loss_price(avg, self.cfg.stop_loss, self.cfg.leverage, self.side(), &m);
        self.stop_price = want;
        let Some(want) = want else {
            self.stop_live = None;
            return Ok(());
        };
        let stops = self.ours_where(s, |p| matches!(p, Purpose::StopLoss(_)));
        let stops: Vec<Order> = stops
            .into_iter()
            .filter(|o| o.kind == OrderKind::Stop)
            .collect();
        if let [st] = stops.as_slice() {
            if st.trigger_price.is_some_and(|t| near(t, want, m.tick))
                && near(remaining(st), size, m.step)
            {
                self.stop_live = st.trigger_price;
                return Ok(());
            }
        }
        self.stop_live = stops.first().and_then(|o| o.trigger_price);
        if j.now_ms() < self.stop_retry_ms {
            return Ok(());
        }
        self.state.sl_n += 1;
        j.cycle(&self.state)?;
        let id = self.id(Purpose::StopLoss(self.state.sl_n));
        match self.place(s, j, &id, Kind::Stop(want), size, true) {
            Ok(_) => {}
            Err(e) if account_fatal(&e) => return Err(e),
            Err(e) => {
                self.stop_retry_ms = j.now_ms() + STOP_RETRY_MS;
                let msg = format!(
                    "the exchange did not take the stop-loss at {}: {e}; the bot watches the \
                     price and closes at market if it is crossed",
                    text(want)
                );
                if self.stop_problem.as_deref() != Some(&msg) {
                    j.event(
                        "stop_not_on_exchange",
                        &msg,
                        json!({"stop": money::json(want), "client_id": id,
                            "retrying": e.is_retryable()}),
                    )?;
                    self.stop_problem = Some(msg);
                }
                return Ok(());
            }
        }
        self.stop_problem = None;
        for old in &stops {
            self.cancel_order(s, old)?;
        }
        self.stop_live = Some(want);
        s.actions.push(if stops.is_empty() {
            "created_sl".into()
        } else {
            "moved_sl".into()
        });
        j.event(
            "stop_placed",
            &format!(
                "stop-loss on the exchange: {} at {} (average {})",
                text(size),
                text(want),
                text(avg.round_dp(8))
            ),
            json!({"trigger_price": money::json(want), "qty": money::json(size),
                "avg_entry": money::json(avg), "client_id": id}),
        )?;
        Ok(())
    }

    /// The bot's own stop, for when none rests on the exchange at the stop price:
    /// a crossed stop closes the position with a reduce-only market order.
    pub(super) fn stop_fallback(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        size: Decimal,
        mark: Decimal,
    ) -> Result<Option<Verdict>, BotError> {
        let Some(stop) = self.stop_price else {
            return Ok(None);
        };
        let protected = self
            .stop_live
            .is_some_and(|t| near(t, stop, self.market.tick));
        if protected || mark <= Decimal::ZERO || !self.crossed_down(mark, stop) {
            return Ok(None);
        }
        self.state.sl_n += 1;
        j.cycle(&self.state)?;
        let id = self.id(Purpose::StopLoss(self.state.sl_n));
        let o = match self.place(s, j, &id, Kind::Market, size, true) {
            Ok(o) => o,
            Err(e) => return self.exit_refused(j, "stop_loss_market", &id, e, 0),
        };
        self.observe(j, &id, &o)?;
        s.actions.push("closed_stop_loss".into());
        j.event(
            "stop_loss_market",
            &format!(
                "stop-loss at {} crossed (mark {}) with no stop on the exchange: closing {} at \
                 market",
                text(stop),
                text(mark),
                text(size)
            ),
            json!({"stop": money::json(stop), "mark": money::json(mark),
                "qty": money::json(size), "client_id": id}),
        )?;
        if self.ledger.is_flat(self.side(), self.market.step) {
            return self.close_cycle(s, j, FillPurpose::StopLoss).map(Some);
        }
        Ok(Some(Verdict::Continue))
    }

    /// An exit order the exchange would not take (a price band, a reduce-only
    /// race): like a refused leg it is tried again on later steps (not before
    /// `retry_at`, Unix ms) and said once per reason; only an error that makes
    /// the account unusable, or one that may have placed it (retryable), or a
    /// store failure ends the step with an error.
    fn exit_refused(
        &mut self,
        j: &mut dyn Journal,
        exit: &'static str,
        id: &str,
        e: BotError,
        retry_at: i64,
    ) -> Result<Option<Verdict>, BotError> {
        if account_fatal(&e) || e.is_retryable() {
            return Err(e);
        }
        let why = e.to_string();
        let again = self.exit_refusals.get(exit).is_some_and(|(m, _)| *m == why);
        self.exit_refusals.insert(exit, (why.clone(), retry_at));
        if !again {
            j.event(
                "exit_refused",
                &format!(
                    "the exchange refused the {} {id}: {why}; retrying on the next steps",
                    exit.replace('_', " ")
                ),
                json!({"exit": exit, "client_id": id, "retrying": true}),
            )?;
        }
        Ok(Some(Verdict::Continue))
    }

    /// Exactly one take-profit for the whole position at the price the average wants.
    pub(super) fn ensure_take_profit(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        size: Decimal,
        avg: Decimal,
    ) -> Result<(), BotError> {
        let m = self.market;
        let want = ladder::take_profit_price(
            avg,
            self.cfg.take_profit,
            self.cfg.leverage,
            self.side(),
            &m,
        );
        self.tp_price = Some(want);
        let tps = self.ours_where(s, |p| matches!(p, Purpose::TakeProfit(_)));
        if let [tp] = tps.as_slice() {
            if tp.price.is_some_and(|p| near(p, want, m.tick)) && near(remaining(tp), size, m.step)
            {
                return Ok(());
            }
        }
        if self
            .exit_refusals
            .get("take_profit")
            .is_some_and(|(_, at)| j.now_ms() < *at)
        {
            return Ok(());
        }
        // Cancelled first: two full-size reduce-only closes may exceed the position.
        for tp in &tps {
            self.cancel_order(s, tp)?;
        }
        self.state.tp_n += 1;
        j.cycle(&self.state)?;
        let id = self.id(Purpose::TakeProfit(self.state.tp_n));
        let o = match self.place(s, j, &id, Kind::Limit(want), size, true) {
            Ok(o) => o,
            Err(e) => {
                let at = j.now_ms() + TP_RETRY_MS;
                return self.exit_refused(j, "take_profit", &id, e, at).map(|_| ());
            }
        };
        self.exit_refusals.remove("take_profit");
        self.observe(j, &id, &o)?;
        s.actions.push(if tps.is_empty() {
            "created_tp".into()
        } else {
            "moved_tp".into()
        });
        j.event(
            "take_profit",
            &format!(
                "take-profit {} @ {} (average {})",
                text(size),
                text(want),
                text(avg.round_dp(8))
            ),
            json!({"price": money::json(want), "qty": money::json(size),
                "avg_entry": money::json(avg), "client_id": id}),
        )?;
        Ok(())
    }

    /// The trailing take-profit: no resting limit; once the mark reaches the
    /// take-profit price the best mark is followed (and journalled, so a restart
    /// keeps it), and a retrace of the configured percent from it — or a fall
    /// back to the take-profit price, whichever comes first — closes at market.
    pub(super) fn trail(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        size: Decimal,
        avg: Decimal,
        mark: Decimal,
    ) -> Result<Option<Verdict>, BotError> {
        for tp in self.ours_where(s, |p| matches!(p, Purpose::TakeProfit(_))) {
            self.cancel_order(s, &tp)?;
        }
        let m = self.market;
        let start = ladder::take_profit_price(
            avg,
            self.cfg.take_profit,
            self.cfg.leverage,
            self.side(),
            &m,
        );
        self.tp_price = Some(start);
        let better = |a: Decimal, b: Decimal| match self.side() {
            Side::Long => a.max(b),
            Side::Short => a.min(b),
        };
        let reached = match self.side() {
            Side::Long => mark >= start,
            Side::Short => mark <= start,
        };
        let best = match self.state.trail_best {
            None if mark <= Decimal::ZERO || !reached => return Ok(None),
            None => mark,
            Some(b) => better(b, mark),
        };
        if self.state.trail_best != Some(best) {
            let first = self.state.trail_best.is_none();
            self.state.trail_best = Some(best);
            j.cycle(&self.state)?;
            if first {
                j.event(
                    "trailing_started",
                    &format!(
                        "take-profit price {} reached (mark {}): trailing {}% from the best price",
                        text(start),
                        text(mark),
                        text(self.cfg.trailing_take_profit)
                    ),
                    json!({"take_profit_price": money::json(start), "mark": money::json(mark)}),
                )?;
            }
        }
        // The exit follows the best mark by the percent, but never below the
        // take-profit price: a percent wider than the take-profit's own distance
        // must not turn a reached take-profit into a loss (docs/bots.md).
        let give_back = self.cfg.trailing_take_profit / Decimal::ONE_HUNDRED;
        let (trailed, exit_at) = match self.side() {
            Side::Long => {
                let t = best * (Decimal::ONE - give_back);
                (t, t.max(start))
            }
            Side::Short => {
                let t = best * (Decimal::ONE + give_back);
                (t, t.min(start))
            }
        };
        if !self.crossed_down(mark, exit_at) {
            return Ok(None);
        }
        let why = if exit_at == trailed {
            format!(
                "retraced {}% from the best {}",
                text(self.cfg.trailing_take_profit),
                text(best)
            )
        } else {
            format!(
                "fell back to the take-profit price {} (best {})",
                text(start),
                text(best)
            )
        };
        self.state.tr_n += 1;
        j.cycle(&self.state)?;
        let id = self.id(Purpose::Trailing(self.state.tr_n));
        let o = match self.place(s, j, &id, Kind::Market, size, true) {
            Ok(o) => o,
            Err(e) => return self.exit_refused(j, "trailing_close", &id, e, 0),
        };
        self.observe(j, &id, &o)?;
        s.actions.push("closed_trailing".into());
        j.event(
            "trailing_close",
            &format!(
                "trailing take-profit: mark {} {why}; closing {} at market",
                text(mark),
                text(size)
            ),
            json!({"best": money::json(best), "mark": money::json(mark),
                "qty": money::json(size), "client_id": id}),
        )?;
        if self.ledger.is_flat(self.side(), m.step) {
            return self
                .close_cycle(s, j, FillPurpose::TrailingTakeProfit)
                .map(Some);
        }
        Ok(Some(Verdict::Continue))
    }
}
