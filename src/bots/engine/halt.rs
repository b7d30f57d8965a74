//! Ending and restarting a run: the stop modes (docs/bots.md, Stop modes), the new
//! placement round of a start that resumes an open cycle, and the account of what
//! an error leaves on the exchange.

use rust_decimal::Decimal;

use super::{BotError, Engine, Journal, Kind, Mode, Step};
use crate::bots::config::side_name;
use crate::bots::ids::{self, Purpose};
use crate::bots::ledger::FillPurpose;
use crate::bots::status::StopMode;
use crate::exchange::{Exchange, OrderKind};
use crate::money::text;

impl Engine {
    /// A start that resumes an open cycle after a stop: the ladder's unfilled legs
    /// are placed again under new ids (`l<i>r<k>`); the take-profit and the stop
    /// get new placement numbers as they are placed.
    pub fn new_round(&mut self, j: &mut dyn Journal) -> Result<(), BotError> {
        self.load(j, Mode::Recover)?;
        if self.ledger.is_open(self.side(), self.market.step) {
            self.state.leg_round += 1;
            j.cycle(&self.state)?;
        }
        Ok(())
    }

    /// Applies a stop mode to the exchange: `keep` touches nothing,
    /// `cancel_orders` cancels the bot's orders (the stop included),
    /// `close_position` also closes the ledger's position at market.
    pub fn stop(
        &mut self,
        ex: &dyn Exchange,
        j: &mut dyn Journal,
        mode: StopMode,
    ) -> Result<Vec<String>, BotError> {
        let mut s = Step::new(ex);
        if matches!(mode, StopMode::Keep | StopMode::AfterCycle) {
            return Ok(s.actions);
        }
        self.load(j, Mode::Recover)?;
        let sym = self.cfg.symbol.clone();
        let mut cancelled = Vec::new();
        for o in ex.open_orders(&sym)? {
            if let Some(id) = self.ours(&o) {
                self.cancel_order(&mut s, &o)?;
                s.actions.push(format!("cancelled {id}"));
                cancelled.push(id);
            }
        }
        for id in cancelled {
            if let Some(o) = self.read(&s, &id)? {
                self.observe(j, &id, &o)?;
            }
        }
        self.stop_live = None;
        if mode == StopMode::ClosePosition {
            self.close_position(&mut s, j)?;
        }
        s.opens = ex.open_orders(&sym)?;
        self.publish(&s, j)?;
        Ok(s.actions)
    }

    /// The ledger's position closed with a reduce-only market order, and the
    /// cycle recorded as closed by hand (`manual`).
    fn close_position(&mut self, s: &mut Step<'_>, j: &mut dyn Journal) -> Result<(), BotError> {
        let size = self.ledger.size(self.side());
        if size < self.half_step() {
            return Ok(());
        }
        let id = self.id(Purpose::Close);
        let mut o = self.place(s, j, &id, Kind::Market, size, true)?;
        self.observe(j, &id, &o)?;
        if o.status.is_open() {
            // A real exchange may answer before the fill: one more read.
            if let Some(again) = self.read(s, &id)? {
                o = again;
                self.observe(j, &id, &o)?;
            }
        }
        s.actions.push("closed_position".into());
        if self.ledger.is_flat(self.side(), self.market.step) {
            self.close_cycle(s, j, FillPurpose::Close)?;
        }
        Ok(())
    }

    /// What an error leaves on the exchange, for `last_error` and its event: the
    /// position, the orders resting, and that the stop stays.
    pub fn leftovers(&self, ex: &dyn Exchange) -> String {
        let dir = self.side();
        let size = self.ledger.size(dir);
        let position = if size > Decimal::ZERO {
            format!(
                "a {} position of {} {} (average {})",
                side_name(dir),
                text(size),
                self.cfg.symbol,
                text(self.ledger.avg_entry(dir).round_dp(8))
            )
        } else {
            "no position of the bot's".to_string()
        };
        let orders = match ex.open_orders(&self.cfg.symbol) {
            Ok(list) => {
                let ours: Vec<_> = list
                    .iter()
                    .filter_map(|o| self.ours(o).map(|id| (id, o)))
                    .collect();
                let names: Vec<String> = ours.iter().map(|(id, _)| id.clone()).collect();
                let stop = ours.iter().find(|(id, o)| {
                    o.kind == OrderKind::Stop
                        || matches!(ids::parse(self.uid, id), Some((_, Purpose::StopLoss(_))))
                });
                let listed = if names.is_empty() {
                    "no resting orders".to_string()
                } else {
                    format!("resting orders {}", names.join(", "))
                };
                match stop {
                    Some((id, o)) => format!(
                        "{listed}; the stop-loss {id}{} stays on the exchange",
                        o.trigger_price
                            .map(|t| format!(" at {}", text(t)))
                            .unwrap_or_default()
                    ),
                    None => listed,
                }
            }
            Err(e) => format!("the open orders could not be read ({e})"),
        };
        format!("left on the exchange: {position}; {orders}")
    }
}
