//! The cycle's entry: a market order, adopted when an earlier step placed it, and
//! the position is open from its own fill report (docs/bots.md, Ledger).

use serde_json::json;

use super::{BotError, CycleState, Engine, Journal, Kind, Step, Verdict};
use crate::bots::ids::Purpose;
use crate::exchange::ExchangeError;
use crate::money::{self, text};

impl Engine {
    /// Adopts the entry (recording its fill) or places it when the cycle has none
    /// yet. Returns a verdict when the bot cannot go on.
    pub(super) fn entry(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
    ) -> Result<Option<Verdict>, BotError> {
        let mut id = self.id(Purpose::Entry);
        let mut existing = self.read(s, &id)?;
        if let Some(o) = existing
            .as_ref()
            .filter(|o| !o.status.is_open() && o.filled_qty <= rust_decimal::Decimal::ZERO)
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
            self.state = CycleState::first(old + 1);
            j.cycle(&self.state)?;
            j.event("cycle_void", &msg, json!({"cycle": old}))?;
            self.reset_cycle();
            existing = None;
            id = self.id(Purpose::Entry);
        }
        if let Some(o) = existing {
            self.observe(j, &id, &o)?;
            if o.status.is_open() {
                self.tracked.insert(id);
            }
            return Ok(None);
        }
        if self.sent_long_ago(j, &id)? {
            return Err(ExchangeError::Rejected(format!(
                "the entry order {id} was sent but the exchange no longer lists it; it is not \
                 sent again (check the position on the exchange, then stop or recover)"
            ))
            .into());
        }
        let sym = self.cfg.symbol.clone();
        let price = s.ex.ticker(&sym)?;
        let qty = match self.check_entry(price) {
            Ok(q) => q,
            Err(msg) => return Ok(Some(Verdict::Failed(msg))),
        };
        if self.relever {
            s.ex.set_leverage(&sym, self.side(), self.cfg.leverage)?;
            self.relever = false;
        }
        if self.state.opened_at.is_none() || self.state.next_entry_at.is_some() {
            self.state.opened_at = Some(j.now());
            self.state.next_entry_at = None;
            j.cycle(&self.state)?;
        }
        let o = self.place(s, j, &id, Kind::Market, qty, false)?;
        self.observe(j, &id, &o)?;
        let at = self.ledger.entry_price().unwrap_or(price);
        j.event(
            "entry",
            &format!(
                "cycle {}: market entry {} {sym} @ {}",
                self.state.cycle,
                text(qty),
                text(at)
            ),
            json!({"cycle": self.state.cycle, "qty": money::json(qty),
                "price": money::json(at), "client_id": id}),
        )?;
        s.actions.push("created_entry".into());
        Ok(None)
    }
}
