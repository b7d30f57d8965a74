//! The engine's journal in the database: events, placement counters, closed cycles
//! and the position snapshot, each committed before the step goes on.

use rusqlite::Connection;
use serde_json::Value;

use super::telegram::{Notifier, Target};
use crate::bots::engine::{CycleState, Journal};
use crate::bots::status::DesiredState;
use crate::store::bots::{self, CycleRow};
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
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        trades::record(&tx, trade)?;
        bots::set_cycle(&tx, self.uid, &self.row(next), store::now())?;
        if last {
            bots::set_desired(&tx, self.uid, DesiredState::Stopped, store::now())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn position(
        &mut self,
        size: rust_decimal::Decimal,
        avg: rust_decimal::Decimal,
        open_orders: usize,
    ) -> Result<(), StoreError> {
        bots::set_position(self.conn, self.uid, size, avg, open_orders)
    }

    fn notify(&mut self, text: &str) {
        if let Some((n, target)) = self.telegram {
            n.send(target, text);
        }
    }

    fn submitted(&mut self, client_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO bot_orders (user_id, client_id, submitted_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![self.uid, client_id, store::now()],
        )?;
        Ok(())
    }

    fn submitted_at(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT submitted_at FROM bot_orders WHERE user_id = ?1 AND client_id = ?2",
                rusqlite::params![self.uid, client_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn now(&self) -> i64 {
        store::now()
    }
}
