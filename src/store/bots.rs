//! The runner's state of each bot (the state columns of `user_bots`) and
//! `bot_events`: the bot runner's durable state, keyed by bot id. Every
//! transition is written here before it is reported. A bot's configuration
//! columns are `store::bot_config`'s, the set of a user's bots
//! `store::user_bots`'s.

use crate::params;
use crate::store::sql::{Conn, Kind, OptionalExt, Param, Row};
use rust_decimal::Decimal;
use serde_json::Value;

use super::cluster::{held_under, LeaseToken};
use super::StoreError;
use crate::bots::config::{parse_side, BotMarket};
use crate::bots::ids::BotRef;
use crate::bots::status::{BotStatus, DesiredState, StopReason};
use crate::money::sql::{self as money_sql, Sql};

/// A bot's runner state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BotRow {
    pub id: i64,
    pub user_id: i64,
    pub desired_state: DesiredState,
    pub status: BotStatus,
    pub cycle: i64,
    pub tp_n: u32,
    pub sl_n: u32,
    pub started_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub last_error: Option<String>,
    pub cycle_exchange: Option<String>,
    pub cycle_symbol: Option<String>,
    pub cycle_side: Option<String>,
    /// The exchange account the cycle trades on (`None` on paper).
    pub cycle_account_id: Option<i64>,
    pub cycle_opened_at: Option<i64>,
    pub position_size: Decimal,
    pub position_avg: Decimal,
    pub open_orders: i64,
    pub leg_round: u32,
    pub tr_n: u32,
    pub trail_best: Option<Decimal>,
    /// End of a cooldown (Unix seconds).
    pub next_entry_at: Option<i64>,
    pub take_profit_price: Option<Decimal>,
    pub stop_loss_price: Option<Decimal>,
    pub stop_on_exchange: bool,
    pub after_cycle: bool,
    pub stop_reason: Option<StopReason>,
}

pub(super) const COLUMNS: &str =
    "id, user_id, desired_state, status, cycle, tp_n, sl_n, started_at,
    heartbeat_at, last_error, cycle_exchange, cycle_symbol, cycle_side, cycle_opened_at,
    position_size, position_avg, open_orders, leg_round, tr_n, trail_best, next_entry_at,
    take_profit_price, stop_loss_price, stop_on_exchange, after_cycle, stop_reason,
    cycle_account_id";

pub(super) fn from_row(r: &Row<'_>) -> crate::store::SqlResult<BotRow> {
    Ok(BotRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        desired_state: r.get(2)?,
        status: r.get(3)?,
        cycle: r.get(4)?,
        tp_n: r.get(5)?,
        sl_n: r.get(6)?,
        started_at: r.get(7)?,
        heartbeat_at: r.get(8)?,
        last_error: r.get(9)?,
        cycle_exchange: r.get(10)?,
        cycle_symbol: r.get(11)?,
        cycle_side: r.get(12)?,
        cycle_opened_at: r.get(13)?,
        position_size: money_sql::get(r, 14)?,
        position_avg: money_sql::get(r, 15)?,
        open_orders: r.get(16)?,
        leg_round: r.get(17)?,
        tr_n: r.get(18)?,
        trail_best: money_sql::get_opt(r, 19)?,
        next_entry_at: r.get(20)?,
        take_profit_price: money_sql::get_opt(r, 21)?,
        stop_loss_price: money_sql::get_opt(r, 22)?,
        stop_on_exchange: r.get(23)?,
        after_cycle: r.get(24)?,
        stop_reason: r.get(25)?,
        cycle_account_id: r.get(26)?,
    })
}

/// Bot `bot_id`'s state, whoever owns it (`None`: no such bot).
pub fn get(conn: &Conn, bot_id: i64) -> Result<Option<BotRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM user_bots WHERE id = ?1"))?
        .query_row([bot_id], from_row)
        .optional()?)
}

/// The state of every bot of user `uid`, by id.
pub fn of_user(conn: &Conn, uid: i64) -> Result<Vec<BotRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user_bots WHERE user_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([uid], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Desired state and status together, with `started_at` set when the bot starts
/// running and cleared when it stops. `last_error` is replaced (None clears it).
pub fn set_state(
    conn: &Conn,
    bot_id: i64,
    desired: DesiredState,
    status: BotStatus,
    last_error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE user_bots SET desired_state = ?2, status = ?3, last_error = ?4,
             started_at = CASE WHEN ?3 = 'running' THEN COALESCE(started_at, ?5)
                               WHEN ?3 = 'starting' THEN started_at ELSE NULL END,
             heartbeat_at = ?5, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![bot_id, desired, status, last_error, now])?;
    Ok(())
}

/// Records a bot as running (its start or resume done): `set_state` to running
/// and no stop reason, in one statement.
pub fn set_running(
    conn: &Conn,
    bot_id: i64,
    last_error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(SET_RUNNING)?
        .execute(params![bot_id, last_error, now])?;
    Ok(())
}

/// `set_running`'s statement: `?1` the bot, `?2` its error, `?3` now.
const SET_RUNNING: &str =
    "UPDATE user_bots SET desired_state = 'running', status = 'running', last_error = ?2,
         started_at = COALESCE(started_at, ?3), heartbeat_at = ?3, updated_at = ?3,
         stop_reason = NULL
     WHERE id = ?1";

/// At most this many bot ids in one `mark_starting` statement.
const IDS_CHUNK: usize = 200;

/// The bots a runner is about to resume, `starting` (as each one's launch would
/// write it) a chunk of ids per statement, so that a resume of thousands does
/// not write it bot by bot. A bot no longer meant to run is left alone.
pub fn mark_starting(conn: &Conn, bot_ids: &[i64], now: i64) -> Result<(), StoreError> {
    for chunk in bot_ids.chunks(IDS_CHUNK) {
        let ids: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
        let sql = format!(
            "UPDATE user_bots SET status = 'starting', last_error = NULL, heartbeat_at = ?1,
                 updated_at = ?1
             WHERE id IN ({}) AND desired_state = 'running'",
            ids.join(", ")
        );
        let mut values: Vec<&dyn Param> = vec![&now];
        values.extend(chunk.iter().map(|id| id as &dyn Param));
        conn.prepare_cached(&sql)?.execute(values.as_slice())?;
    }
    Ok(())
}

/// A started or resumed bot: `set_running` and its event (`started`,
/// `resumed`), together or not at all. On PostgreSQL one statement (one round
/// trip, where a transaction takes four); on SQLite one transaction.
pub fn record_running(
    conn: &Conn,
    bot: BotRef,
    last_error: Option<&str>,
    (kind, message, data): (&str, &str, &Value),
    now: i64,
) -> Result<(), StoreError> {
    if conn.kind() == Kind::Sqlite {
        let tx = conn.transaction_immediate()?;
        set_running(&tx, bot.bot_id, last_error, now)?;
        add_event(&tx, bot, kind, message, Some(data), now)?;
        tx.commit()?;
        return Ok(());
    }
    let sql = format!(
        "WITH running AS ({SET_RUNNING})
         INSERT INTO bot_events (user_id, bot_id, kind, message, data, created_at)
         VALUES (?4, ?1, ?5, ?6, ?7, ?3)"
    );
    conn.prepare_cached(&sql)?.execute(params![
        bot.bot_id,
        last_error,
        now,
        bot.user_id,
        kind,
        message,
        data.to_string()
    ])?;
    Ok(())
}

/// Changes only the desired state: what a restarted runner will do with the bot.
pub fn set_desired(
    conn: &Conn,
    bot_id: i64,
    desired: DesiredState,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user_bots SET desired_state = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![bot_id, desired, now])?;
    Ok(())
}

/// Records a failure of a running bot without changing its state.
pub fn set_last_error(
    conn: &Conn,
    bot_id: i64,
    err: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user_bots SET last_error = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![bot_id, err, now])?;
    Ok(())
}

/// Where the strategy is: cycle, placement counters and the cycle's market.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleRow<'a> {
    pub cycle: i64,
    pub tp_n: u32,
    pub sl_n: u32,
    pub exchange: &'a str,
    pub symbol: &'a str,
    pub side: &'a str,
    /// The exchange account (`None` on paper).
    pub account: Option<i64>,
    pub opened_at: Option<i64>,
    pub leg_round: u32,
    pub tr_n: u32,
    pub trail_best: Option<Decimal>,
    pub next_entry_at: Option<i64>,
}

pub fn set_cycle(conn: &Conn, bot_id: i64, c: &CycleRow<'_>, now: i64) -> Result<(), StoreError> {
    set_cycle_under(conn, bot_id, c, now, None)
}

/// `set_cycle` made under a lease (`Some(token)`, in a cluster): the counters
/// name the next client ids, so a runner that lost the lease must not rewind
/// what the new holder uses; refused with `StoreError::Fenced`.
pub fn set_cycle_under(
    conn: &Conn,
    bot_id: i64,
    c: &CycleRow<'_>,
    now: i64,
    token: Option<LeaseToken<'_>>,
) -> Result<(), StoreError> {
    const SET: &str = "UPDATE user_bots SET cycle = ?2, tp_n = ?3, sl_n = ?4, cycle_exchange = ?5,
             cycle_symbol = ?6, cycle_side = ?7, cycle_opened_at = ?8, updated_at = ?9,
             leg_round = ?10, tr_n = ?11, trail_best = ?12, next_entry_at = ?13,
             cycle_account_id = ?14
         WHERE id = ?1";
    let trail_best = money_sql::opt(c.trail_best);
    let mut values: Vec<&dyn Param> = vec![
        &bot_id,
        &c.cycle,
        &c.tp_n,
        &c.sl_n,
        &c.exchange,
        &c.symbol,
        &c.side,
        &c.opened_at,
        &now,
        &c.leg_round,
        &c.tr_n,
        &trail_best,
        &c.next_entry_at,
        &c.account,
    ];
    let changed = match &token {
        None => conn.prepare_cached(SET)?.execute(values.as_slice())?,
        Some(t) => {
            values.extend([&t.instance as &dyn Param, &t.epoch]);
            let sql = format!("{SET} AND {}", held_under("user_bots.user_id", 15, 16));
            conn.prepare_cached(&sql)?.execute(values.as_slice())?
        }
    };
    if token.is_some() && changed == 0 {
        return Err(StoreError::Fenced);
    }
    Ok(())
}

/// What the bot last saw of its cycle, for `GET /api/bot/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub size: Decimal,
    pub avg: Decimal,
    pub open_orders: usize,
    pub take_profit_price: Option<Decimal>,
    pub stop_loss_price: Option<Decimal>,
    pub stop_on_exchange: bool,
}

pub fn set_snapshot(conn: &Conn, bot_id: i64, s: &Snapshot) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE user_bots SET position_size = ?2, position_avg = ?3, open_orders = ?4,
             take_profit_price = ?5, stop_loss_price = ?6, stop_on_exchange = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        bot_id,
        Sql(s.size),
        Sql(s.avg),
        s.open_orders as i64,
        money_sql::opt(s.take_profit_price),
        money_sql::opt(s.stop_loss_price),
        s.stop_on_exchange
    ])?;
    Ok(())
}

/// Why the bot ended (`None` while it runs).
pub fn set_stop_reason(
    conn: &Conn,
    bot_id: i64,
    reason: Option<StopReason>,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user_bots SET stop_reason = ?2 WHERE id = ?1")?
        .execute(params![bot_id, reason])?;
    Ok(())
}

/// The "stop after this cycle" flag.
pub fn set_after_cycle(conn: &Conn, bot_id: i64, on: bool) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user_bots SET after_cycle = ?2 WHERE id = ?1")?
        .execute(params![bot_id, on])?;
    Ok(())
}

/// The condition (on a `user_bots` row) that the bot's cycle is open on the
/// exchange as the bot last saw it: a position, or orders resting (a `keep` stop,
/// a `cancel_orders` stop mid-cycle, a bot that failed or was halted).
pub(super) const CYCLE_OPEN: &str = "(cycle_opened_at IS NOT NULL
    AND (CAST(position_size AS REAL) != 0 OR open_orders > 0))";

/// User `uid`'s bots whose cycle is open (see [`CYCLE_OPEN`]), each with the
/// position that cycle holds: the cycle's exchange account, symbol and side,
/// which stay the cycle's whatever the bot's configuration says since. Running
/// or not: a stopped bot's position is still on the exchange.
pub fn open_cycles_of(conn: &Conn, uid: i64) -> Result<Vec<(i64, BotMarket)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, cycle_exchange, cycle_account_id, cycle_symbol, cycle_side FROM user_bots
         WHERE user_id = ?1 AND cycle_exchange IS NOT NULL AND cycle_symbol IS NOT NULL
           AND cycle_side IS NOT NULL AND {CYCLE_OPEN}
         ORDER BY id"
    ))?;
    let rows = stmt
        .query_map([uid], |r| {
            let side: String = r.get(4)?;
            let market = BotMarket {
                exchange: r.get(1)?,
                exchange_account_id: r.get(2)?,
                symbol: r.get(3)?,
                side: parse_side(&side).ok_or_else(|| bad_side(4, side))?,
                has_pending: false,
            };
            Ok((r.get(0)?, market))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A stored side that is neither `long` nor `short`: corruption, not a default.
fn bad_side(at: usize, side: String) -> crate::store::SqlError {
    crate::store::SqlError::conversion(at, format!("not a side: {side:?}"))
}

/// Bots (ids) that should be running: what the runner resumes at start.
pub fn desired_running(conn: &Conn) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM user_bots WHERE desired_state = 'running' ORDER BY id")?;
    let ids = stmt
        .query_map((), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Bots that should be running, each with the exchange it is configured for:
/// what the runner resumes at start and which of its pools each resume goes
/// to, in one query rather than one per bot.
pub fn desired_running_on(conn: &Conn) -> Result<Vec<Wanted>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, exchange FROM user_bots WHERE desired_state = 'running' ORDER BY id",
    )?;
    let bots = stmt
        .query_map((), Wanted::from_row)?
        .collect::<Result<_, _>>()?;
    Ok(bots)
}

/// A bot meant to run, as a runner queues its resume: whose it is and the
/// exchange whose lane it resumes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub bot: BotRef,
    pub exchange: String,
}

impl Wanted {
    /// From the columns `id, user_id, exchange`.
    pub fn from_row(r: &Row<'_>) -> crate::store::sql::SqlResult<Wanted> {
        Ok(Wanted {
            bot: BotRef {
                bot_id: r.get(0)?,
                user_id: r.get(1)?,
            },
            exchange: r.get(2)?,
        })
    }
}

/// Bots with status `running`, as `/readyz` compares with the runner's count.
pub fn count_running(conn: &Conn) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM user_bots WHERE status = 'running'")?
        .query_row((), |r| r.get(0))?)
}

/// Running bots that must stop: their owner was disabled, or someone set the desired
/// state to stopped behind the runner's back.
pub fn must_stop(conn: &Conn) -> Result<Vec<BotRef>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.id, b.user_id FROM user_bots b JOIN user u ON u.id = b.user_id
         WHERE b.status = 'running' AND (b.desired_state != 'running' OR u.disabled = 1)",
    )?;
    let bots = stmt
        .query_map((), |r| {
            Ok(BotRef {
                bot_id: r.get(0)?,
                user_id: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(bots)
}

/// One heartbeat for every running bot (a single statement, not one per bot).
pub fn heartbeat(conn: &Conn, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE user_bots SET heartbeat_at = ?1 WHERE status = 'running'")?
        .execute([now])?;
    Ok(())
}

/// At runner start: bots whose stop (or failed start) was interrupted by a crash are
/// stopped; those meant to run keep their status until they are resumed. In a
/// cluster, bots of a user whose lease another instance holds (at `lease_now_ms`,
/// the database's clock) are that instance's to settle: they may be stopping now.
pub fn settle_interrupted(
    conn: &Conn,
    now: i64,
    lease_now_ms: i64,
    instance: &str,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE user_bots SET status = 'stopped', started_at = NULL, updated_at = ?1
             WHERE desired_state != 'running' AND status IN ('running', 'starting', 'stopping')
               AND NOT EXISTS (SELECT 1 FROM user_leases l WHERE l.user_id = user_bots.user_id
                               AND l.expires_at_ms > ?2 AND l.instance != ?3)",
        )?
        .execute(crate::params![now, lease_now_ms, instance])?)
}

/// (exchange, symbol) of every running bot's market, once each.
pub fn running_markets(conn: &Conn) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT cycle_exchange, cycle_symbol FROM user_bots
         WHERE status = 'running' AND cycle_exchange IS NOT NULL AND cycle_symbol IS NOT NULL",
    )?;
    let rows = stmt
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// (exchange, symbol) of the configuration of every enabled user's bot that runs
/// or is meant to, and every running bot's market, once each: what the
/// market-data process follows. A stopped bot's configuration is not followed:
/// configurations are the users' to write, prices are followed for trading.
pub fn active_markets(conn: &Conn) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.exchange, b.symbol FROM user_bots b JOIN user u ON u.id = b.user_id
         WHERE u.disabled = 0 AND (b.desired_state = 'running' OR b.status = 'running')
         UNION
         SELECT cycle_exchange, cycle_symbol FROM user_bots
         WHERE status = 'running' AND cycle_exchange IS NOT NULL AND cycle_symbol IS NOT NULL",
    )?;
    let rows = stmt
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub message: String,
    pub data: Option<Value>,
    pub created_at: i64,
}

pub fn add_event(
    conn: &Conn,
    bot: BotRef,
    kind: &str,
    message: &str,
    data: Option<&Value>,
    now: i64,
) -> Result<i64, StoreError> {
    let id = conn
        .prepare_cached(
            "INSERT INTO bot_events (user_id, bot_id, kind, message, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?
        .insert(params![
            bot.user_id,
            bot.bot_id,
            kind,
            message,
            data.map(Value::to_string),
            now
        ])?;
    Ok(id)
}

/// Bot `bot_id`'s events, newest first, `limit` at most, with ids below `before`
/// when given.
pub fn events(
    conn: &Conn,
    bot_id: i64,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, message, data, created_at FROM bot_events
         WHERE bot_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![bot_id, before.unwrap_or(i64::MAX), limit], |r| {
            let data: Option<String> = r.get(3)?;
            Ok(Event {
                id: r.get(0)?,
                kind: r.get(1)?,
                message: r.get(2)?,
                data: data.and_then(|d| serde_json::from_str(&d).ok()),
                created_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{self, NewUser};

    /// A database with one user; their default bot.
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
    fn state_transitions_keep_started_at_while_running() {
        let (c, bot) = db();
        let id = bot.bot_id;
        let row = get(&c, id).unwrap().unwrap();
        assert_eq!((row.status, row.cycle), (BotStatus::Stopped, 1));
        let running = (DesiredState::Running, BotStatus::Running);
        set_state(&c, id, running.0, running.1, None, 20).unwrap();
        set_state(&c, id, running.0, running.1, None, 30).unwrap();
        assert_eq!(get(&c, id).unwrap().unwrap().started_at, Some(20));
        assert_eq!(count_running(&c).unwrap(), 1);
        assert_eq!(desired_running(&c).unwrap(), vec![id]);
        let wanted = Wanted {
            bot,
            exchange: "paper".into(),
        };
        assert_eq!(desired_running_on(&c).unwrap(), [wanted]);
        users::set_disabled(&c, bot.user_id, true).unwrap();
        assert_eq!(must_stop(&c).unwrap(), vec![bot]);
        let failed = (DesiredState::Stopped, BotStatus::Error);
        set_state(&c, id, failed.0, failed.1, Some("boom"), 40).unwrap();
        let row = get(&c, id).unwrap().unwrap();
        assert_eq!(
            (row.started_at, row.last_error.as_deref()),
            (None, Some("boom"))
        );
        // Running again: desired and status, the error, and no stop reason.
        set_stop_reason(&c, id, Some(StopReason::AfterCycle)).unwrap();
        set_running(&c, id, Some("retrying"), 50).unwrap();
        set_running(&c, id, None, 60).unwrap();
        let row = get(&c, id).unwrap().unwrap();
        assert_eq!(
            (row.desired_state, row.status, row.started_at),
            (DesiredState::Running, BotStatus::Running, Some(50))
        );
        assert_eq!((row.last_error, row.stop_reason), (None, None));
        // Marked starting among others, if still meant to run.
        set_state(&c, id, running.0, running.1, Some("old"), 60).unwrap();
        mark_starting(&c, &[id, id + 1000], 65).unwrap();
        let row = get(&c, id).unwrap().unwrap();
        assert_eq!((row.status, row.last_error), (BotStatus::Starting, None));
        set_desired(&c, id, DesiredState::Stopped, 66).unwrap();
        set_state(&c, id, DesiredState::Stopped, BotStatus::Stopped, None, 66).unwrap();
        mark_starting(&c, &[id], 67).unwrap();
        assert_eq!(get(&c, id).unwrap().unwrap().status, BotStatus::Stopped);
        // With its event, on either engine.
        set_state(&c, id, failed.0, failed.1, Some("boom"), 70).unwrap();
        let data = serde_json::json!({"actor": "system"});
        record_running(&c, bot, Some("slow"), ("resumed", "Bot resumed", &data), 80).unwrap();
        let row = get(&c, id).unwrap().unwrap();
        assert_eq!(
            (row.status, row.started_at, row.last_error.as_deref()),
            (BotStatus::Running, Some(80), Some("slow"))
        );
        let last = &events(&c, id, 1, None).unwrap()[0];
        assert_eq!((last.kind.as_str(), last.created_at), ("resumed", 80));
    }

    #[test]
    fn open_cycles_hold_the_cycles_market_and_account_until_closed() {
        use crate::bots::ladder::Side;
        let (c, bot) = db();
        assert!(
            open_cycles_of(&c, bot.user_id).unwrap().is_empty(),
            "never ran"
        );
        let cycle = CycleRow {
            cycle: 4,
            tp_n: 1,
            sl_n: 0,
            exchange: "bybit",
            symbol: "ETH/USDT",
            side: "short",
            account: Some(9),
            opened_at: Some(100),
            leg_round: 0,
            tr_n: 0,
            trail_best: None,
            next_entry_at: None,
        };
        set_cycle(&c, bot.bot_id, &cycle, 100).unwrap();
        assert_eq!(
            get(&c, bot.bot_id).unwrap().unwrap().cycle_account_id,
            Some(9)
        );
        assert!(
            open_cycles_of(&c, bot.user_id).unwrap().is_empty(),
            "opened, but nothing on the exchange yet"
        );
        let mut seen = Snapshot {
            size: Decimal::ZERO,
            avg: Decimal::ZERO,
            open_orders: 2,
            take_profit_price: None,
            stop_loss_price: None,
            stop_on_exchange: false,
        };
        set_snapshot(&c, bot.bot_id, &seen).unwrap();
        let open = open_cycles_of(&c, bot.user_id).unwrap();
        assert_eq!(open.len(), 1);
        let (id, held) = &open[0];
        assert_eq!(*id, bot.bot_id);
        // The cycle's market, not the configuration's (paper BTC/USDT long).
        assert_eq!(
            (held.exchange.as_str(), held.exchange_account_id),
            ("bybit", Some(9))
        );
        assert_eq!((held.symbol.as_str(), held.side), ("ETH/USDT", Side::Short));
        seen.open_orders = 0;
        seen.size = Decimal::new(5, 1);
        set_snapshot(&c, bot.bot_id, &seen).unwrap();
        assert_eq!(
            open_cycles_of(&c, bot.user_id).unwrap().len(),
            1,
            "a position"
        );
        let closed = CycleRow {
            cycle: 5,
            opened_at: None,
            ..cycle
        };
        set_cycle(&c, bot.bot_id, &closed, 200).unwrap();
        assert!(open_cycles_of(&c, bot.user_id).unwrap().is_empty());
    }

    #[test]
    fn active_markets_are_those_of_bots_that_run_or_are_meant_to() {
        let (c, bot) = db();
        assert_eq!(active_markets(&c).unwrap(), vec![], "configured, stopped");
        set_desired(&c, bot.bot_id, DesiredState::Running, 20).unwrap();
        let configured = ("paper".to_string(), "BTC/USDT".to_string());
        assert_eq!(active_markets(&c).unwrap(), vec![configured.clone()]);
        users::set_disabled(&c, bot.user_id, true).unwrap();
        assert_eq!(active_markets(&c).unwrap(), vec![]);
    }

    #[test]
    fn states_are_stored_as_their_words_and_strangers_refused() {
        let (c, bot) = db();
        let id = bot.bot_id;
        set_state(
            &c,
            id,
            DesiredState::Running,
            BotStatus::SafetyStop,
            None,
            20,
        )
        .unwrap();
        let stored: (String, String) = c
            .query_row(
                "SELECT desired_state, status FROM user_bots WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(stored, ("running".into(), "safety_stop".into()));
        let row = get(&c, id).unwrap().unwrap();
        assert_eq!(
            (row.desired_state, row.status),
            (DesiredState::Running, BotStatus::SafetyStop)
        );
        c.execute("UPDATE user_bots SET status = 'paused' WHERE id = ?1", [id])
            .unwrap();
        assert!(matches!(
            get(&c, id),
            Err(StoreError::Sql(crate::store::SqlError::Column { .. }))
        ));
    }

    #[test]
    fn events_page_newest_first() {
        let (c, bot) = db();
        let id = bot.bot_id;
        let ids: Vec<i64> = (0..5)
            .map(|i| add_event(&c, bot, "k", &format!("m{i}"), None, i).unwrap())
            .collect();
        let page = events(&c, id, 2, None).unwrap();
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![ids[4], ids[3]]
        );
        let next = events(&c, id, 10, Some(ids[3])).unwrap();
        assert_eq!(next.len(), 3);
    }
}
