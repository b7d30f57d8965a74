//! `bot_fills`, `bot_funding` and `bot_orders`: the bot's own record of what it
//! sent and what filled, which outlives the exchanges' history windows
//! (docs/bots.md, Ledger). Rows name their bot and its owner ([`BotRef`]); a
//! bot's client ids carry its id, so they are unique per user as well, and the
//! sent orders are looked up per user (a sibling bot's order on the same
//! account is told from a foreign one).

use crate::params;
use crate::store::sql::{Conn, OptionalExt};
use rust_decimal::Decimal;

use super::cluster::{self, held_under, LeaseToken};
use super::StoreError;
use crate::bots::ids::{self, BotRef};
use crate::bots::ledger::Fill;
use crate::exchange::OrderSide;
use crate::money::sql::{self as money_sql, Sql};

fn side_word(s: OrderSide) -> &'static str {
    match s {
        OrderSide::Buy => "buy",
        OrderSide::Sell => "sell",
    }
}

/// Records a fill once; a second write of the same (client id, seq) changes
/// nothing. Returns whether it was new.
pub fn add_fill(conn: &Conn, bot: BotRef, f: &Fill) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO bot_fills (user_id, bot_id, cycle, client_id,
                 exchange_order_id, purpose, leg, side, qty, price, fee, time_ms, seq)
             VALUES (?13, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            bot.bot_id,
            f.cycle,
            f.client_id,
            f.exchange_order_id,
            f.purpose,
            f.leg.map(|l| l as i64),
            side_word(f.side),
            Sql(f.qty),
            Sql(f.price),
            Sql(f.fee),
            f.time_ms,
            f.seq,
            bot.user_id
        ])?;
    Ok(n == 1)
}

/// The fills of one cycle of bot `bot_id`, in the order they were recorded.
pub fn fills(conn: &Conn, bot_id: i64, cycle: i64) -> Result<Vec<Fill>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT client_id, exchange_order_id, purpose, leg, side, qty, price, fee, time_ms, seq
         FROM bot_fills WHERE bot_id = ?1 AND cycle = ?2 ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![bot_id, cycle], |r| {
            let side: String = r.get(4)?;
            Ok(Fill {
                cycle,
                client_id: r.get(0)?,
                exchange_order_id: r.get(1)?,
                purpose: r.get(2)?,
                leg: r.get::<_, Option<i64>>(3)?.map(|l| l.max(0) as usize),
                side: if side == "sell" {
                    OrderSide::Sell
                } else {
                    OrderSide::Buy
                },
                qty: money_sql::get(r, 5)?,
                price: money_sql::get(r, 6)?,
                fee: money_sql::get(r, 7)?,
                time_ms: r.get(8)?,
                seq: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One funding settlement, counted in `cycle`.
#[derive(Debug, Clone, PartialEq)]
pub struct Funding {
    pub cycle: i64,
    pub exchange_id: String,
    pub amount: Decimal,
    pub time_ms: i64,
}

/// Records a settlement once (by the exchange's id). Returns whether it was new.
pub fn add_funding(conn: &Conn, bot: BotRef, f: &Funding) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO bot_funding (user_id, bot_id, cycle, exchange_id, amount,
                 time_ms)
             VALUES (?1, ?6, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            bot.user_id,
            f.cycle,
            f.exchange_id,
            Sql(f.amount),
            f.time_ms,
            bot.bot_id
        ])?;
    Ok(n == 1)
}

/// The settlements counted in one cycle of bot `bot_id`.
pub fn funding(conn: &Conn, bot_id: i64, cycle: i64) -> Result<Vec<Funding>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT exchange_id, amount, time_ms FROM bot_funding
         WHERE bot_id = ?1 AND cycle = ?2 ORDER BY time_ms",
    )?;
    let rows = stmt
        .query_map(params![bot_id, cycle], |r| {
            Ok(Funding {
                cycle,
                exchange_id: r.get(0)?,
                amount: money_sql::get(r, 1)?,
                time_ms: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// An order the bot sent: when, and the exchange's id once it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub client_id: String,
    pub exchange_id: Option<String>,
    pub submitted_at: i64,
}

/// Every order of `cycle` bot `bot_id` sent, oldest first.
pub fn sent(conn: &Conn, bot_id: i64, cycle: i64) -> Result<Vec<Sent>, StoreError> {
    let prefix = format!("{}{cycle}-", ids::bot_prefix(bot_id));
    let mut stmt = conn.prepare_cached(
        "SELECT client_id, exchange_id, submitted_at FROM bot_orders
         WHERE bot_id = ?1 AND substr(client_id, 1, length(?2)) = ?2
         ORDER BY submitted_at, client_id",
    )?;
    let rows = stmt
        .query_map(params![bot_id, prefix], |r| {
            Ok(Sent {
                client_id: r.get(0)?,
                exchange_id: r.get(1)?,
                submitted_at: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Records that `client_id` is about to be sent (kept from the first time).
pub fn submitted(conn: &Conn, bot: BotRef, client_id: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO bot_orders (user_id, bot_id, client_id, submitted_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![bot.user_id, bot.bot_id, client_id, now])?;
    Ok(())
}

/// `submitted` made under a lease (in a cluster): the record that an order may
/// exist is what lets the next holder adopt it rather than place it again, and
/// an order is sent only after it; a runner that lost the lease gets
/// `StoreError::Fenced` and sends nothing.
pub fn submitted_under(
    conn: &Conn,
    bot: BotRef,
    client_id: &str,
    now: i64,
    token: LeaseToken<'_>,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT OR IGNORE INTO bot_orders (user_id, bot_id, client_id, submitted_at)
         SELECT CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), CAST(?3 AS TEXT), CAST(?4 AS BIGINT)
         WHERE {}",
        held_under("?1", 5, 6)
    );
    let inserted = conn.prepare_cached(&sql)?.execute(params![
        bot.user_id,
        bot.bot_id,
        client_id,
        now,
        token.instance,
        token.epoch
    ])?;
    if inserted == 0 {
        // Sent before (a retry keeps its first time), or the lease moved.
        cluster::check_held(conn, bot.user_id, token)?;
    }
    Ok(())
}

/// When user `uid`'s `client_id` was first sent (client ids name their bot).
pub fn submitted_at(conn: &Conn, uid: i64, client_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT submitted_at FROM bot_orders WHERE user_id = ?1 AND client_id = ?2",
        )?
        .query_row(params![uid, client_id], |r| r.get(0))
        .optional()?)
}

/// The exchange answered the placement of `client_id` with `exchange_id`.
pub fn placed(
    conn: &Conn,
    bot: BotRef,
    client_id: &str,
    exchange_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO bot_orders (user_id, bot_id, client_id, submitted_at, exchange_id)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, client_id) DO UPDATE SET exchange_id = excluded.exchange_id",
    )?
    .execute(params![
        bot.user_id,
        bot.bot_id,
        client_id,
        now,
        exchange_id
    ])?;
    Ok(())
}

/// The exchange refused `client_id` outright: it does not exist there, so it may
/// be sent again later however long ago it was first sent.
pub fn refused(conn: &Conn, uid: i64, client_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM bot_orders WHERE user_id = ?1 AND client_id = ?2")?
        .execute(params![uid, client_id])?;
    Ok(())
}

/// The client id of the order the exchange knows as `exchange_id`, if one of user
/// `uid`'s bots placed it (its tag says which).
pub fn client_id_of(
    conn: &Conn,
    uid: i64,
    exchange_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT client_id FROM bot_orders WHERE user_id = ?1 AND exchange_id = ?2")?
        .query_row(params![uid, exchange_id], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;
    use crate::bots::ledger::FillPurpose;
    use crate::store::users::{self, NewUser};

    fn db() -> (crate::store::testing::TestDb, BotRef) {
        let c = crate::store::testing::migrated();
        let new = NewUser {
            email: "a@x.io",
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let user_id = users::create(&c, &new, 1).unwrap();
        let bot_id = crate::store::user_bots::default_of(&c, user_id)
            .unwrap()
            .unwrap();
        (c, BotRef { user_id, bot_id })
    }

    #[test]
    fn fills_and_funding_are_written_once_and_read_per_cycle() {
        let (c, bot) = db();
        let f = Fill {
            cycle: 3,
            client_id: format!("bz-{}-3-l1", bot.bot_id),
            exchange_order_id: "77".into(),
            purpose: FillPurpose::Leg,
            leg: Some(1),
            side: OrderSide::Buy,
            qty: dec!(0.009),
            price: dec!(2970.1),
            fee: dec!(0.00534618),
            time_ms: 10,
            seq: 0,
        };
        assert!(add_fill(&c, bot, &f).unwrap());
        assert!(!add_fill(&c, bot, &f).unwrap(), "same (client id, seq)");
        assert_eq!(fills(&c, bot.bot_id, 3).unwrap(), [f]);
        assert!(fills(&c, bot.bot_id, 4).unwrap().is_empty());
        let pay = Funding {
            cycle: 3,
            exchange_id: "f1".into(),
            amount: dec!(-0.0123),
            time_ms: 5,
        };
        assert!(add_funding(&c, bot, &pay).unwrap());
        assert!(!add_funding(
            &c,
            bot,
            &Funding {
                cycle: 4,
                ..pay.clone()
            }
        )
        .unwrap());
        assert_eq!(funding(&c, bot.bot_id, 3).unwrap(), [pay]);
    }

    #[test]
    fn sent_orders_keep_their_exchange_ids() {
        let (c, bot) = db();
        let (uid, b) = (bot.user_id, bot.bot_id);
        let id = format!("bz-{b}-2-sl1");
        submitted(&c, bot, &id, 100).unwrap();
        placed(&c, bot, &id, "ex-9", 101).unwrap();
        submitted(&c, bot, &format!("bz-{b}-12-e"), 100).unwrap();
        let s = sent(&c, b, 2).unwrap();
        assert_eq!(
            s,
            [Sent {
                client_id: id.clone(),
                exchange_id: Some("ex-9".into()),
                submitted_at: 100
            }],
            "cycle 12 is not cycle 2"
        );
        assert_eq!(client_id_of(&c, uid, "ex-9").unwrap(), Some(id.clone()));
        refused(&c, uid, &id).unwrap();
        assert_eq!(submitted_at(&c, uid, &id).unwrap(), None);
    }
}
