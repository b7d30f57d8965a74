//! The engine's journal in the database: events, placement counters, the fill
//! ledger, funding, closed cycles and the status snapshot, each committed before
//! the step goes on.

use rusqlite::Connection;
use serde_json::Value;

use super::telegram::{Notifier, Target};
use crate::bots::config::{self, BotConfig};
use crate::bots::engine::{CycleState, Journal};
use crate::bots::ledger::Fill;
use crate::bots::status::DesiredState;
use crate::store::bots::{self, CycleRow, Snapshot};
use crate::store::ledger::{self, Funding, Sent};
use crate::store::trades::{self, Trade};
use crate::store::{self, StoreError};

/// What the journal needs besides the engine (kept apart so both can be borrowed).
pub struct BotCtx {
    pub exchange: String,
    pub symbol: String,
    pub side: &'static str,
    pub telegram: Option<Target>,
}

pub struct DbJournal<'a> {
    pub conn: &'a Connection,
    pub uid: i64,
    /// The cycle's market, written with the counters.
    pub exchange: &'a str,
    pub symbol: &'a str,
    pub side: &'a str,
    pub telegram: Option<(&'a Notifier, &'a Target)>,
}

impl<'a> DbJournal<'a> {
    /// The journal of one running bot.
    pub fn new(
        conn: &'a Connection,
        uid: i64,
        ctx: &'a BotCtx,
        telegram: &'a Notifier,
    ) -> DbJournal<'a> {
        DbJournal {
            conn,
            uid,
            exchange: &ctx.exchange,
            symbol: &ctx.symbol,
            side: ctx.side,
            telegram: ctx.telegram.as_ref().map(|t| (telegram, t)),
        }
    }

    fn row<'s>(&'s self, s: &CycleState) -> CycleRow<'s> {
        CycleRow {
            cycle: s.cycle,
            tp_n: s.tp_n,
            sl_n: s.sl_n,
            exchange: self.exchange,
            symbol: self.symbol,
            side: self.side,
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
        bots::add_event(
            self.conn,
            self.uid,
            kind,
            message,
            Some(&data),
            store::now(),
        )?;
        Ok(())
    }

    fn cycle(&mut self, state: &CycleState) -> Result<(), StoreError> {
        bots::set_cycle(self.conn, self.uid, &self.row(state), store::now())
    }

    fn close_cycle(
        &mut self,
        trade: &Trade,
        next: &CycleState,
        last: bool,
    ) -> Result<Option<BotConfig>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        trades::record(&tx, trade)?;
        bots::set_cycle(&tx, self.uid, &self.row(next), store::now())?;
        if last {
            bots::set_desired(&tx, self.uid, DesiredState::Stopped, store::now())?;
        }
        // A change made while the bot ran applies from the next cycle, in the
        // same write as the close.
        let applied = config::apply_pending(&tx, self.uid)?;
        tx.commit()?;
        Ok(applied)
    }

    fn snapshot(&mut self, s: &Snapshot) -> Result<(), StoreError> {
        bots::set_snapshot(self.conn, self.uid, s)
    }

    fn notify(&mut self, text: &str) {
        if let Some((n, target)) = self.telegram {
            n.send(target, text);
        }
    }

    fn submitted(&mut self, client_id: &str) -> Result<(), StoreError> {
        ledger::submitted(self.conn, self.uid, client_id, store::now())
    }

    fn submitted_at(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        ledger::submitted_at(self.conn, self.uid, client_id)
    }

    fn client_id_of(&self, exchange_id: &str) -> Result<Option<String>, StoreError> {
        ledger::client_id_of(self.conn, self.uid, exchange_id)
    }

    fn placed(&mut self, client_id: &str, exchange_id: &str) -> Result<(), StoreError> {
        ledger::placed(self.conn, self.uid, client_id, exchange_id, store::now())
    }

    fn refused(&mut self, client_id: &str) -> Result<(), StoreError> {
        ledger::refused(self.conn, self.uid, client_id)
    }

    fn sent(&self, cycle: i64) -> Result<Vec<Sent>, StoreError> {
        ledger::sent(self.conn, self.uid, cycle)
    }

    fn fill(&mut self, f: &Fill) -> Result<(), StoreError> {
        ledger::add_fill(self.conn, self.uid, f).map(|_| ())
    }

    fn fills(&self, cycle: i64) -> Result<Vec<Fill>, StoreError> {
        ledger::fills(self.conn, self.uid, cycle)
    }

    fn funding(&mut self, f: &Funding) -> Result<bool, StoreError> {
        ledger::add_funding(self.conn, self.uid, f)
    }

    fn funding_of(&self, cycle: i64) -> Result<Vec<Funding>, StoreError> {
        ledger::funding(self.conn, self.uid, cycle)
    }

    fn now(&self) -> i64 {
        store::now()
    }

    fn now_ms(&self) -> i64 {
        store::now_ms()
    }
}
