//! The ladder legs: at most `max_active_legs` unfilled legs resting at once
//! (deeper ones placed as shallower ones fill), a leg with any fill never placed
//! again, a refused leg retried on later steps (docs/bots.md, Strategy).

use std::collections::BTreeSet;

use serde_json::json;

use super::observe::Lookup;
use super::{account_fatal, BotError, Engine, Journal, Kind, Mode, Step};
use crate::bots::ids::Purpose;
use crate::bots::ladder;
use crate::exchange::ExchangeError;
use crate::money::{self, text};

/// A leg the exchange refused is tried again this much later.
const LEG_RETRY_MS: i64 = 10_000;

impl Engine {
    /// Places the legs the cycle is missing in the current placement round.
    pub(super) fn ensure_legs(
        &mut self,
        s: &mut Step<'_>,
        j: &mut dyn Journal,
        mode: Mode,
    ) -> Result<(), BotError> {
        let now = j.now_ms();
        let due = self.refusals.values().any(|(_, at)| *at <= now);
        if mode == Mode::Tick && self.legs_settled == Some(self.ledger.fills.len()) && !due {
            return Ok(());
        }
        let Some(entry_price) = self.ledger.entry_price() else {
            return Ok(());
        };
        let rounds = self.cfg.rounds.min(self.cfg.grids.len());
        let gaps: Vec<_> = self.cfg.grids[..rounds].iter().map(|g| g.gap).collect();
        let prices = ladder::leg_prices(entry_price, &gaps, self.side(), &self.market);
        let resting: BTreeSet<usize> = s
            .opens
            .iter()
            .filter_map(|o| self.this_cycle(o).and_then(|(_, p)| p.leg()))
            .collect();
        let limit = match self.cfg.max_active_legs {
            0 => usize::MAX,
            n => n,
        };
        let mut active = resting.len();
        for (i, price) in prices.into_iter().enumerate().map(|(k, p)| (k + 1, p)) {
            if self.ledger.leg_filled(i) || resting.contains(&i) || self.skipped.contains(&i) {
                continue;
            }
            if active >= limit {
                break;
            }
            if self.refusals.get(&i).is_some_and(|(_, at)| *at > now) {
                continue;
            }
            let id = self.id(Purpose::Leg(i, self.state.leg_round));
            match self.lookup(s, j, &id)? {
                Lookup::Found(o) => {
                    // Placed in this round: resting (the list lagged), or cancelled
                    // by someone, which is not undone before the next round.
                    if o.status.is_open() {
                        active += 1;
                    }
                    continue;
                }
                Lookup::Forgotten => {
                    j.event(
                        "order_unknown",
                        &format!("{id} was sent earlier but the exchange no longer lists it; not sending it again"),
                        json!({"client_id": id}),
                    )?;
                    self.skipped.insert(i);
                    continue;
                }
                Lookup::Absent => {}
            }
            let amount = self.cfg.grids[i].amount;
            let Some(qty) = ladder::leg_qty(amount, self.cfg.leverage, price, &self.market) else {
                self.skip_leg(
                    j,
                    i,
                    price,
                    &format!(
                        "{} USDT at {} is below the minimum quantity {}",
                        text(amount),
                        text(price),
                        text(self.market.min_qty)
                    ),
                )?;
                continue;
            };
            match self.place(s, j, &id, Kind::Limit(price), qty, false) {
                Ok(o) => {
                    self.observe(j, &id, &o)?;
                    self.refusals.remove(&i);
                    active += 1;
                    s.actions.push(format!("created_leg_{i}"));
                    j.event(
                        "leg_placed",
                        &format!("leg {i}: limit {} @ {}", text(qty), text(price)),
                        json!({"leg": i, "qty": money::json(qty), "price": money::json(price),
                            "client_id": id}),
                    )?;
                }
                Err(BotError::Exchange(ExchangeError::BelowMinimum)) => {
                    let why = ExchangeError::BelowMinimum.to_string();
                    self.skip_leg(j, i, price, &why)?;
                }
                Err(e) if account_fatal(&e) || matches!(e, BotError::Store(_)) => return Err(e),
                Err(e) => self.refused_leg(j, i, &e.to_string(), now)?,
            }
        }
        let pending = self.refusals.keys().any(|i| !self.ledger.leg_filled(*i));
        self.legs_settled = (!pending).then_some(self.ledger.fills.len());
        Ok(())
    }

    /// Below the market minimum: skipped for the rest of this run.
    fn skip_leg(
        &mut self,
        j: &mut dyn Journal,
        i: usize,
        price: rust_decimal::Decimal,
        why: &str,
    ) -> Result<(), BotError> {
        self.skipped.insert(i);
        j.event(
            "leg_skipped",
            &format!("leg {i}: {why}"),
            json!({"leg": i, "price": money::json(price)}),
        )?;
        Ok(())
    }

    /// Refused for a reason a later try may not meet (price band, margin, the
    /// exchange busy): tried again, with one event per distinct reason.
    fn refused_leg(
        &mut self,
        j: &mut dyn Journal,
        i: usize,
        why: &str,
        now: i64,
    ) -> Result<(), BotError> {
        let again = self.refusals.get(&i).is_some_and(|(m, _)| m == why);
        self.refusals
            .insert(i, (why.to_string(), now + LEG_RETRY_MS));
        if !again {
            j.event(
                "leg_refused",
                &format!("leg {i}: {why}; retrying on the next steps"),
                json!({"leg": i, "retrying": true}),
            )?;
        }
        Ok(())
    }
}
