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
        let mut ours: Vec<(String, crate::exchange::Order)> = ex
            .open_orders(&sym)?
            .into_iter()
            .filter_map(|o| self.ours(&o).map(|id| (id, o)))
            .collect();
        // The stop-loss goes last: until everything else is cancelled, a fill
        // can still grow the position it protects.
        ours.sort_by_key(|(id, o)| self.is_stop(id, o));
        for (id, o) in ours {
            self.cancel_order(&mut s, &o)?;
            s.actions.push(format!("cancelled {id}"));
            if matches!(ids::parse(self.bot.bot_id, &id), Some((c, _)) if c == self.state.cycle) {
                self.tracked.insert(id);
            }
        }
        // Every order the cycle sent, not only those just cancelled: a leg that
        // filled before the list was read is no longer in it.
        self.reread_tracked(&mut s, j)?;
        self.stop_live = None;
        if mode == StopMode::ClosePosition {
            self.close_position(&mut s, j)?;
        }
        s.opens = ex.open_orders(&sym)?;
        self.publish(&s, j)?;
        Ok(s.actions)
    }

    /// One of the bot's stop-loss orders (a stop an exchange lists untagged too).
    fn is_stop(&self, id: &str, o: &crate::exchange::Order) -> bool {
        o.kind == OrderKind::Stop
            || matches!(
                ids::parse(self.bot.bot_id, id),
                Some((_, Purpose::StopLoss(_)))
            )
    }

    /// The position closed with a reduce-only market order, and the cycle
    /// recorded as closed by hand (`manual`). The size sent is the larger of the
    /// ledger's and the exchange's: a fill the bot has not recorded must not stay
    /// open without a stop, and reduce-only caps it at the real position.
    fn close_position(&mut self, s: &mut Step<'_>, j: &mut dyn Journal) -> Result<(), BotError> {
        let ledger = self.ledger.size(self.side());
        let pos = s.ex.position(&self.cfg.symbol, self.side())?;
        let size = ledger.max(pos.size);
        if size < self.half_step() || !self.ledger.has_entry(self.side()) {
            return Ok(());
        }
        let id = self.id(Purpose::Close(self.next_close_n()));
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

    /// The next `close_position` placement number of the cycle: one past the
    /// highest sent (each id is journalled before it is sent, so a restart
    /// counts it; a refused one is forgotten and its number used again).
    fn next_close_n(&self) -> u32 {
        self.sent
            .keys()
            .filter_map(|id| match ids::parse(self.bot.bot_id, id) {
                Some((c, Purpose::Close(n))) if c == self.state.cycle => Some(n),
                _ => None,
            })
            .max()
            .map_or(1, |n| n + 1)
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
                let stop = ours.iter().find(|(id, o)| self.is_stop(id, o));
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
