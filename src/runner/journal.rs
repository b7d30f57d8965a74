//! The engine's journal in the database: events, placement counters, the fill
//! ledger, funding, closed cycles and the status snapshot, each committed before
//! the step goes on.
//!
//! In a cluster every write is fenced by the user's lease (CONTRACT C18): none is
//! sent once the local deadline passed (`Leases::token`), and the writes a later
//! holder relies on — the order journal before an order is sent, the cycle's
//! counters, a closed cycle — also carry the epoch into the database, which
//! refuses them once another instance took the lease (`StoreError::Fenced`, a
//! retryable error: the step ends and changes nothing more).

use crate::store::sql::Conn;
use serde_json::Value;

use super::lease::Leases;
use super::telegram::{Notifier, Target};
use crate::bots::config::BotConfig;
use crate::bots::engine::{CycleState, Journal};
use crate::bots::ids::BotRef;
use crate::bots::ledger::Fill;
use crate::bots::status::DesiredState;
use crate::store::bots::{self, CycleRow, Snapshot};
use crate::store::cluster::{self, LeaseToken};
use crate::store::ledger::{self, Funding, Sent};
use crate::store::trades::{self, Trade};
use crate::store::{self, bot_config, StoreError};

/// What the journal needs besides the engine (kept apart so both can be borrowed).
pub struct BotCtx {
    pub exchange: String,
    pub symbol: String,
    pub side: &'static str,
    /// The exchange account it trades on (`None` on paper).
    pub account: Option<i64>,
    /// The bot's name, which its notifications start with.
    pub name: String,
    pub telegram: Option<Target>,
}

impl BotCtx {
    /// Sends `text` to the owner's Telegram chat (if they set one up), named for
    /// the bot: `<name> (<SYMBOL> <side>): <text>`, so a user with several bots
    /// knows which one speaks.
    pub fn notify(&self, notifier: &Notifier, text: &str) {
        if let Some(target) = &self.telegram {
            notifier.send(target, &self.labelled(text));
        }
    }

    fn labelled(&self, text: &str) -> String {
        format!("{} ({} {}): {text}", self.name, self.symbol, self.side)
    }
}

pub struct DbJournal<'a> {
    pub conn: &'a Conn,
    pub bot: BotRef,
    /// The cycle's market, written with the counters.
    pub exchange: &'a str,
    pub symbol: &'a str,
    pub side: &'a str,
    ctx: &'a BotCtx,
    notifier: &'a Notifier,
    leases: &'a Leases,
}

impl<'a> DbJournal<'a> {
    /// The journal of one running bot, whose writes `leases` fences.
    pub fn new(
        conn: &'a Conn,
        bot: BotRef,
        ctx: &'a BotCtx,
        notifier: &'a Notifier,
        leases: &'a Leases,
    ) -> DbJournal<'a> {
        DbJournal {
            conn,
            bot,
            exchange: &ctx.exchange,
            symbol: &ctx.symbol,
            side: ctx.side,
            ctx,
            notifier,
            leases,
        }
    }

    /// The lease this write is made under (`None` on one host); refused once
    /// the user's lease is no longer held here.
    fn token(&self) -> Result<Option<LeaseToken<'a>>, StoreError> {
        self.leases.token(self.bot.user_id)
    }

    fn row<'s>(&'s self, s: &CycleState) -> CycleRow<'s> {
        CycleRow {
            cycle: s.cycle,
            tp_n: s.tp_n,
            sl_n: s.sl_n,
            exchange: self.exchange,
            symbol: self.symbol,
            side: self.side,
            account: self.ctx.account,
            opened_at: s.opened_at,
            leg_round: s.leg_round,
            tr_n: s.tr_n,
            trail_best: s.trail_best,
            next_entry_at: s.next_entry_at,
        }
    }
}

impl Journal for DbJournal<'_> {
    fn event(&mut self, kind: &str, message: &str, data: Value) -> Result<(), StoreError> {
        self.token()?;
        bots::add_event(
            self.conn,
            self.bot,
            kind,
            message,
            Some(&data),
            store::now(),
        )?;
        Ok(())
    }

    fn cycle(&mut self, state: &CycleState) -> Result<(), StoreError> {
        let token = self.token()?;
        let row = self.row(state);
        bots::set_cycle_under(self.conn, self.bot.bot_id, &row, store::now(), token)
    }

    fn close_cycle(
        &mut self,
        trade: &Trade,
        next: &CycleState,
        last: bool,
    ) -> Result<Option<BotConfig>, StoreError> {
        let token = self.token()?;
        let tx = self.conn.unchecked_transaction()?;
        if let Some(token) = token {
            cluster::check_held(&tx, self.bot.user_id, token)?;
        }
        trades::record(&tx, trade)?;
        bots::set_cycle(&tx, self.bot.bot_id, &self.row(next), store::now())?;
        if last {
            bots::set_desired(&tx, self.bot.bot_id, DesiredState::Stopped, store::now())?;
        }
        // A change made while the bot ran applies from the next cycle, in the
        // same write as the close.
        let applied = bot_config::apply_pending(&tx, self.bot.bot_id)?;
        tx.commit()?;
        Ok(applied)
    }

    fn snapshot(&mut self, s: &Snapshot) -> Result<(), StoreError> {
        self.token()?;
        bots::set_snapshot(self.conn, self.bot.bot_id, s)
    }

    fn notify(&mut self, text: &str) {
        self.ctx.notify(self.notifier, text);
    }

    fn submitted(&mut self, client_id: &str) -> Result<(), StoreError> {
        match self.token()? {
            None => ledger::submitted(self.conn, self.bot, client_id, store::now()),
            Some(t) => ledger::submitted_under(self.conn, self.bot, client_id, store::now(), t),
        }
    }

    fn submitted_at(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        ledger::submitted_at(self.conn, self.bot.user_id, client_id)
    }

    fn client_id_of(&self, exchange_id: &str) -> Result<Option<String>, StoreError> {
        ledger::client_id_of(self.conn, self.bot.user_id, exchange_id)
    }

    fn placed(&mut self, client_id: &str, exchange_id: &str) -> Result<(), StoreError> {
        self.token()?;
        ledger::placed(self.conn, self.bot, client_id, exchange_id, store::now())
    }

    fn refused(&mut self, client_id: &str) -> Result<(), StoreError> {
        self.token()?;
        ledger::refused(self.conn, self.bot.user_id, client_id)
    }

    fn sent(&self, cycle: i64) -> Result<Vec<Sent>, StoreError> {
        ledger::sent(self.conn, self.bot.bot_id, cycle)
    }

    fn fill(&mut self, f: &Fill) -> Result<(), StoreError> {
        self.token()?;
        ledger::add_fill(self.conn, self.bot, f).map(|_| ())
    }

    fn fills(&self, cycle: i64) -> Result<Vec<Fill>, StoreError> {
        ledger::fills(self.conn, self.bot.bot_id, cycle)
    }

    fn funding(&mut self, f: &Funding) -> Result<bool, StoreError> {
        self.token()?;
        ledger::add_funding(self.conn, self.bot, f)
    }

    fn funding_of(&self, cycle: i64) -> Result<Vec<Funding>, StoreError> {
        ledger::funding(self.conn, self.bot.bot_id, cycle)
    }

    fn now(&self) -> i64 {
        store::now()
    }

    fn now_ms(&self) -> i64 {
        store::now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_the_bot() {
        let ctx = BotCtx {
            exchange: "paper".into(),
            symbol: "ETH/USDT".into(),
            side: "short",
            account: None,
            name: "Weekend".into(),
            telegram: None,
        };
        assert_eq!(
            ctx.labelled("Cycle 3 closed"),
            "Weekend (ETH/USDT short): Cycle 3 closed"
        );
    }
}
