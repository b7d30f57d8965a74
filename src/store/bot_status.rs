//! What a status read needs of one bot — its market (`store::bot_config`) and its
//! runner state (`store::bots`) — in one indexed query of its `user_bots` row.
//!
//! The status routes are the hottest authenticated reads (a dashboard polls them
//! every few seconds): finding the bot, checking its owner and reading its two
//! halves as separate queries cost each request three statement runs where the
//! release before several bots needed two. Here the owner check and the default
//! bot's choice (the user's first bot: `ORDER BY id LIMIT 1` on the
//! `(user_id, id)` index) are the query's own `WHERE`.

use std::sync::LazyLock;

use crate::store::sql::Params;
use crate::store::sql::{Conn, OptionalExt, Row};

use super::{bot_config, bots, StoreError};
use crate::bots::config::BotMarket;
use crate::store::bots::BotRow;

/// One bot's market and runner state, read together.
#[derive(Debug, Clone, PartialEq)]
pub struct BotStatusRow {
    pub market: BotMarket,
    pub state: BotRow,
}

/// The select list, once: the state columns first, then the market's.
static SELECT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, {} FROM user_bots b",
        bots::COLUMNS,
        bot_config::MARKET
    )
});
static BY_ID: LazyLock<String> = LazyLock::new(|| format!("{} WHERE b.id = ?1", *SELECT));
static OWNED: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE b.id = ?1 AND b.user_id = ?2", *SELECT));
static DEFAULT: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE b.user_id = ?1 ORDER BY b.id LIMIT 1", *SELECT));

/// How many columns `bots::COLUMNS` has: where the market's start. Counted from
/// the list itself, so a state column added there moves the market with it.
const STATE_COLUMNS: usize = column_count(bots::COLUMNS);

const fn column_count(list: &str) -> usize {
    let bytes = list.as_bytes();
    let (mut i, mut n) = (0, 1);
    while i < bytes.len() {
        if bytes[i] == b',' {
            n += 1;
        }
        i += 1;
    }
    n
}

fn from_row(r: &Row<'_>) -> crate::store::SqlResult<BotStatusRow> {
    Ok(BotStatusRow {
        state: bots::from_row(r)?,
        market: bot_config::market_from(r, STATE_COLUMNS)?,
    })
}

fn one(conn: &Conn, sql: &str, p: impl Params) -> Result<Option<BotStatusRow>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(p, from_row)
        .optional()?)
}

/// Bot `bot_id`, whoever owns it (admin views; `None`: no such bot).
pub fn by_id(conn: &Conn, bot_id: i64) -> Result<Option<BotStatusRow>, StoreError> {
    one(conn, &BY_ID, [bot_id])
}

/// Bot `bot_id` if it is user `uid`'s.
pub fn owned(conn: &Conn, uid: i64, bot_id: i64) -> Result<Option<BotStatusRow>, StoreError> {
    one(conn, &OWNED, [bot_id, uid])
}

/// User `uid`'s default bot (their first); `None` when they have no bot.
pub fn default_of(conn: &Conn, uid: i64) -> Result<Option<BotStatusRow>, StoreError> {
    one(conn, &DEFAULT, [uid])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::config;
    use crate::bots::ladder::Side;
    use crate::store::users::{self, NewUser};
    use crate::store::{bot_config as stored_config, user_bots};

    fn user(c: &Conn, email: &str) -> (i64, i64) {
        let new = NewUser {
            email,
            password_hash: "h",
            is_admin: false,
            verification: None,
        };
        let uid = users::create(c, &new, 1).unwrap();
        (uid, user_bots::default_of(c, uid).unwrap().unwrap())
    }

    #[test]
    fn one_query_reads_the_market_after_the_state_and_checks_the_owner() {
        let c = crate::store::testing::migrated();
        let (uid, bot) = user(&c, "a@x.io");
        let (other, _) = user(&c, "b@x.io");
        let stored = stored_config::load(&c, bot).unwrap().unwrap();
        let body = json!({"symbol": "ETH/USDT", "side": "short"});
        let (new, _) = config::apply_update(&stored.config, body.as_object().unwrap()).unwrap();
        stored_config::save(&c, bot, &new).unwrap();

        let row = owned(&c, uid, bot).unwrap().unwrap();
        assert_eq!(
            (row.market.symbol.as_str(), row.market.side),
            ("ETH/USDT", Side::Short)
        );
        assert_eq!((row.state.id, row.state.user_id), (bot, uid));
        assert_eq!(default_of(&c, uid).unwrap(), Some(row.clone()));
        assert_eq!(by_id(&c, bot).unwrap(), Some(row));
        assert_eq!(owned(&c, other, bot).unwrap(), None);
    }
}
