//! The bots a user owns (rows of `user_bots`): listing, looking one up as its
//! owner, creating one within the per-user limit, naming it, choosing its
//! exchange account, deleting it. A bot's configuration is read and written by
//! `store::bot_config`, its runner state by `store::bots`.
//!
//! Invariants:
//! - every lookup takes the owner: another user's bot is `None` / `NotFound`;
//! - a user's **default bot** is their first one (lowest id), made with the
//!   account (`users::create`); the upgrade to several bots gave every existing
//!   user a default bot whose id is the user's id;
//! - bot ids are never given again (AUTOINCREMENT): they are in client order ids;
//! - the limit is checked in the INSERT itself, so concurrent creations cannot
//!   pass it together;
//! - a bot's exchange account is one of its owner's on the bot's exchange, and a
//!   paper bot has none.
//!
//! For the admin views, [`by_id`] finds a bot whoever owns it.

use crate::params;
use crate::store::sql::{Conn, OptionalExt, Row};

use super::StoreError;
use crate::bots::config::{side_name, BotConfig};
use crate::bots::status::{BotStatus, DesiredState};
use crate::money::sql::Sql;

/// The name of the bot every account starts with.
pub const DEFAULT_NAME: &str = "Default";

/// One bot as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotInfo {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub exchange: String,
    pub exchange_account_id: Option<i64>,
    pub symbol: String,
    /// `long` or `short`.
    pub side: String,
    pub status: BotStatus,
    pub desired_state: DesiredState,
    pub created_at: i64,
}

const COLUMNS: &str = "id, user_id, name, exchange, exchange_account_id, symbol, side, status,
    desired_state, created_at";

fn from_row(r: &Row<'_>) -> crate::store::SqlResult<BotInfo> {
    Ok(BotInfo {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        exchange: r.get(3)?,
        exchange_account_id: r.get(4)?,
        symbol: r.get(5)?,
        side: r.get(6)?,
        status: r.get(7)?,
        desired_state: r.get(8)?,
        created_at: r.get(9)?,
    })
}

/// User `uid`'s bots, by id (the default bot first).
pub fn list(conn: &Conn, uid: i64) -> Result<Vec<BotInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user_bots WHERE user_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([uid], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Bot `bot_id` if it is user `uid`'s.
pub fn get(conn: &Conn, uid: i64, bot_id: i64) -> Result<Option<BotInfo>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM user_bots WHERE id = ?1 AND user_id = ?2"
        ))?
        .query_row(params![bot_id, uid], from_row)
        .optional()?)
}

/// Bot `bot_id` whoever owns it (admin views).
pub fn by_id(conn: &Conn, bot_id: i64) -> Result<Option<BotInfo>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM user_bots WHERE id = ?1"))?
        .query_row([bot_id], from_row)
        .optional()?)
}

/// The id of user `uid`'s default bot: their first one. `None` when they have
/// none (they deleted every bot).
pub fn default_of(conn: &Conn, uid: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT MIN(id) FROM user_bots WHERE user_id = ?1")?
        .query_row([uid], |r| r.get(0))?)
}

/// How many bots user `uid` has.
pub fn count(conn: &Conn, uid: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM user_bots WHERE user_id = ?1")?
        .query_row([uid], |r| r.get(0))?)
}

/// A bot to create. Its owner's Telegram chat is not written (it is the user's;
/// `bot_config::save` changes it).
pub struct NewBot<'a> {
    pub name: &'a str,
    pub config: &'a BotConfig,
    /// Required for a real exchange to start; must be `None` for paper.
    pub exchange_account_id: Option<i64>,
}

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Bot(i64),
    /// The user has `limit` bots already.
    LimitReached,
    /// The account is not the user's.
    NoSuchAccount,
    /// The account is on another exchange than the bot (or the bot is paper).
    WrongExchange,
}

/// Creates a bot for user `uid` unless they have `limit` bots already.
pub fn create(
    conn: &Conn,
    uid: i64,
    new: &NewBot<'_>,
    limit: u32,
    now: i64,
) -> Result<Created, StoreError> {
    if let Some(refused) =
        account_refusal(conn, uid, &new.config.exchange, new.exchange_account_id)?
    {
        return Ok(refused);
    }
    match insert(conn, uid, new, Some(limit), now)? {
        Some(id) => Ok(Created::Bot(id)),
        None => Ok(Created::LimitReached),
    }
}

/// A new user's first bot (no limit: the user has none yet), in the caller's
/// transaction (`users::create`).
pub(super) fn create_default(conn: &Conn, uid: i64, now: i64) -> Result<i64, StoreError> {
    let config = BotConfig::default();
    let new = NewBot {
        name: DEFAULT_NAME,
        config: &config,
        exchange_account_id: None,
    };
    insert(conn, uid, &new, None, now)?.ok_or(StoreError::Sql(crate::store::SqlError::NoRows))
}

/// Inserts the bot when the user has fewer than `limit` bots (always without a
/// limit); its id, or `None` when the limit refused it.
fn insert(
    conn: &Conn,
    uid: i64,
    new: &NewBot<'_>,
    limit: Option<u32>,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let c = new.config;
    let grids = super::bot_config::grids_text(c)?;
    conn.prepare_cached(
        "INSERT INTO user_bots (user_id, name, exchange, exchange_account_id, symbol, side,
                 leverage, take_profit, stop_loss, rounds, grids, repeat, after_stop_loss,
                 cooldown, max_active_legs, trailing_take_profit, created_at, updated_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?17
             WHERE (SELECT COUNT(*) FROM user_bots WHERE user_id = ?1)
                 < COALESCE(?18, 9223372036854775807)
             RETURNING id",
    )?
    .insert(params![
        uid,
        new.name,
        c.exchange,
        new.exchange_account_id,
        c.symbol,
        side_name(c.side),
        c.leverage,
        Sql(c.take_profit),
        Sql(c.stop_loss),
        c.rounds as i64,
        grids,
        c.repeat,
        c.after_stop_loss,
        c.cooldown,
        c.max_active_legs as i64,
        Sql(c.trailing_take_profit),
        now,
        limit
    ])
    .optional()
    .map_err(StoreError::from_write)
}

/// Why `account` cannot serve a bot of user `uid` on `exchange`, if it cannot.
fn account_refusal(
    conn: &Conn,
    uid: i64,
    exchange: &str,
    account: Option<i64>,
) -> Result<Option<Created>, StoreError> {
    let Some(id) = account else {
        return Ok(None);
    };
    let on: Option<String> = conn
        .prepare_cached("SELECT exchange FROM exchange_accounts WHERE id = ?1 AND user_id = ?2")?
        .query_row(params![id, uid], |r| r.get(0))
        .optional()?;
    Ok(match on {
        None => Some(Created::NoSuchAccount),
        Some(on) if on != exchange => Some(Created::WrongExchange),
        Some(_) => None,
    })
}

/// Renames bot `bot_id` of user `uid`; whether it is theirs.
pub fn rename(conn: &Conn, uid: i64, bot_id: i64, name: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("UPDATE user_bots SET name = ?3 WHERE id = ?1 AND user_id = ?2")?
        .execute(params![bot_id, uid, name])?;
    Ok(n == 1)
}

/// What [`set_account`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    Done,
    /// The bot is not the user's.
    NotFound,
    NoSuchAccount,
    WrongExchange,
}

/// Sets (or, with `None`, clears) the exchange account of bot `bot_id` of user
/// `uid`. The account must be the user's and on the bot's exchange.
pub fn set_account(
    conn: &Conn,
    uid: i64,
    bot_id: i64,
    account: Option<i64>,
) -> Result<Linked, StoreError> {
    let Some(bot) = get(conn, uid, bot_id)? else {
        return Ok(Linked::NotFound);
    };
    match account_refusal(conn, uid, &bot.exchange, account)? {
        Some(Created::NoSuchAccount) => return Ok(Linked::NoSuchAccount),
        Some(_) => return Ok(Linked::WrongExchange),
        None => {}
    }
    conn.prepare_cached(
        "UPDATE user_bots SET exchange_account_id = ?3 WHERE id = ?1 AND user_id = ?2",
    )?
    .execute(params![bot_id, uid, account])?;
    Ok(Linked::Done)
}

/// What [`delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Done,
    NotFound,
    /// Running, starting, stopping or meant to run: stop it first.
    Active,
    /// Stopped with its cycle's position or orders still open (a `keep` stop):
    /// its fills are the only record of that position, and its orders would rest
    /// with no bot to follow them, so the bot stays until the cycle is closed.
    CycleOpen,
}

/// Deletes bot `bot_id` of user `uid` with its events, fills and orders; its
/// closed cycles stay in the user's trades (without a bot). One statement checks
/// and deletes, so a start that begins meanwhile makes it `Active`, not gone.
pub fn delete(conn: &Conn, uid: i64, bot_id: i64) -> Result<Deleted, StoreError> {
    let n = conn
        .prepare_cached(&format!(
            "DELETE FROM user_bots WHERE id = ?1 AND user_id = ?2
               AND desired_state != 'running'
               AND status NOT IN ('starting', 'running', 'stopping')
               AND NOT {}",
            super::bots::CYCLE_OPEN
        ))?
        .execute(params![bot_id, uid])?;
    if n == 1 {
        return Ok(Deleted::Done);
    }
    let Some(bot) = super::bots::get(conn, bot_id)?.filter(|b| b.user_id == uid) else {
        return Ok(Deleted::NotFound);
    };
    if bot.desired_state == DesiredState::Running || bot.status.is_active() {
        Ok(Deleted::Active)
    } else {
        Ok(Deleted::CycleOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::ladder::Side;
    use crate::store::users::{self, NewUser};

    fn db() -> crate::store::testing::TestDb {
        crate::store::testing::migrated()
    }

    fn user(c: &Conn, email: &str) -> i64 {
        let new = NewUser {
            email,
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        users::create(c, &new, 1).unwrap()
    }

    fn eth_short() -> BotConfig {
        BotConfig {
            symbol: "ETH/USDT".into(),
            side: Side::Short,
            ..BotConfig::default()
        }
    }

    #[test]
    fn every_user_starts_with_a_default_bot_and_sees_only_their_own() {
        let c = db();
        let (a, b) = (user(&c, "a@x.io"), user(&c, "b@x.io"));
        let bots = list(&c, a).unwrap();
        assert_eq!(bots.len(), 1);
        assert_eq!(
            (
                bots[0].name.as_str(),
                bots[0].exchange.as_str(),
                bots[0].status
            ),
            (DEFAULT_NAME, "paper", BotStatus::Stopped)
        );
        assert_eq!(default_of(&c, a).unwrap(), Some(bots[0].id));
        let theirs = default_of(&c, b).unwrap().unwrap();
        assert_eq!(get(&c, a, theirs).unwrap(), None);
        assert_eq!(by_id(&c, theirs).unwrap().unwrap().user_id, b);
        assert!(!rename(&c, a, theirs, "mine").unwrap());
        assert_eq!(delete(&c, a, theirs).unwrap(), Deleted::NotFound);
        assert_eq!(set_account(&c, a, theirs, None).unwrap(), Linked::NotFound);
    }

    #[test]
    fn the_limit_counts_every_bot_of_the_user() {
        let c = db();
        let a = user(&c, "a@x.io");
        let cfg = eth_short();
        let new = NewBot {
            name: "ETH short",
            config: &cfg,
            exchange_account_id: None,
        };
        let Created::Bot(id) = create(&c, a, &new, 2, 5).unwrap() else {
            panic!("the second bot is within a limit of 2");
        };
        assert_eq!(create(&c, a, &new, 2, 5).unwrap(), Created::LimitReached);
        assert_eq!(count(&c, a).unwrap(), 2);
        let created = get(&c, a, id).unwrap().unwrap();
        assert_eq!(
            (
                created.symbol.as_str(),
                created.side.as_str(),
                created.created_at
            ),
            ("ETH/USDT", "short", 5)
        );
        assert!(
            default_of(&c, a).unwrap() < Some(id),
            "the first stays the default"
        );
        assert!(rename(&c, a, id, "Short ETH").unwrap());
        assert_eq!(get(&c, a, id).unwrap().unwrap().name, "Short ETH");
    }

    #[test]
    fn accounts_must_be_the_owners_and_on_the_bots_exchange() {
        let c = db();
        let (a, b) = (user(&c, "a@x.io"), user(&c, "b@x.io"));
        let acc = crate::store::exchange_accounts::NewAccount {
            name: "B",
            exchange: "bybit",
            api_key_enc: "k",
            api_key_last4: "1234",
            api_secret_enc: "s",
        };
        let bs = crate::store::exchange_accounts::create(&c, b, &acc, 1).unwrap();
        let mine = crate::store::exchange_accounts::create(&c, a, &acc, 1).unwrap();
        let bybit = BotConfig {
            exchange: "bybit".into(),
            ..BotConfig::default()
        };
        let new = |account| NewBot {
            name: "x",
            config: &bybit,
            exchange_account_id: account,
        };
        assert_eq!(
            create(&c, a, &new(Some(bs)), 10, 1).unwrap(),
            Created::NoSuchAccount
        );
        let paper = BotConfig::default();
        let on_paper = NewBot {
            name: "p",
            config: &paper,
            exchange_account_id: Some(mine),
        };
        assert_eq!(
            create(&c, a, &on_paper, 10, 1).unwrap(),
            Created::WrongExchange
        );
        let Created::Bot(id) = create(&c, a, &new(Some(mine)), 10, 1).unwrap() else {
            panic!("the user's own bybit account");
        };
        assert_eq!(
            get(&c, a, id).unwrap().unwrap().exchange_account_id,
            Some(mine)
        );
        let default = default_of(&c, a).unwrap().unwrap();
        assert_eq!(
            set_account(&c, a, default, Some(mine)).unwrap(),
            Linked::WrongExchange
        );
        assert_eq!(
            set_account(&c, a, id, Some(bs)).unwrap(),
            Linked::NoSuchAccount
        );
    }

    #[test]
    fn active_bots_and_open_cycles_are_not_deleted() {
        use crate::store::bots;
        let c = db();
        let a = user(&c, "a@x.io");
        let cfg = eth_short();
        let new = NewBot {
            name: "x",
            config: &cfg,
            exchange_account_id: None,
        };
        let Created::Bot(id) = create(&c, a, &new, 10, 1).unwrap() else {
            panic!("created");
        };
        let bot = crate::bots::ids::BotRef {
            user_id: a,
            bot_id: id,
        };
        bots::add_event(&c, bot, "k", "m", None, 1).unwrap();
        bots::set_state(&c, id, DesiredState::Running, BotStatus::Running, None, 2).unwrap();
        assert_eq!(delete(&c, a, id).unwrap(), Deleted::Active);
        bots::set_state(&c, id, DesiredState::Stopped, BotStatus::Stopped, None, 3).unwrap();
        c.execute(
            "UPDATE user_bots SET cycle_opened_at = 1, position_size = '0.5' WHERE id = ?1",
            [id],
        )
        .unwrap();
        assert_eq!(delete(&c, a, id).unwrap(), Deleted::CycleOpen);
        let flat_with_legs =
            "UPDATE user_bots SET position_size = '0', open_orders = 2 WHERE id = ?1";
        c.execute(flat_with_legs, [id]).unwrap();
        assert_eq!(delete(&c, a, id).unwrap(), Deleted::CycleOpen);
        c.execute("UPDATE user_bots SET open_orders = 0 WHERE id = ?1", [id])
            .unwrap();
        let closed = crate::store::trades::Trade {
            id: 0,
            user_id: a,
            bot_id: Some(id),
            symbol: "ETH/USDT".into(),
            side: "short".into(),
            size: rust_decimal::Decimal::ONE,
            avg_entry: rust_decimal::Decimal::from(3000),
            exit_price: rust_decimal::Decimal::from(2900),
            pnl: rust_decimal::Decimal::from(99),
            fees: rust_decimal::Decimal::ONE,
            cycle: 1,
            opened_at: 1,
            closed_at: 2,
            close_reason: Some("take_profit".into()),
            funding: rust_decimal::Decimal::ZERO,
        };
        assert!(crate::store::trades::record(&c, &closed).unwrap());
        assert_eq!(delete(&c, a, id).unwrap(), Deleted::Done);
        assert_eq!(get(&c, a, id).unwrap(), None);
        assert!(bots::events(&c, id, 10, None).unwrap().is_empty());
        // Its closed cycle stays the user's, without a bot.
        let kept = crate::store::trades::list(&c, a, None, 10, None).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].bot_id, kept[0].pnl), (None, closed.pnl));
        assert_eq!(delete(&c, a, id).unwrap(), Deleted::NotFound);
    }
}
