//! The admin views: users with their default bot's state and the PnL of all
//! their bots, and every bot of the instance, in one query each.

use crate::params;
use crate::store::sql::Conn;
use rust_decimal::Decimal;
use serde::Serialize;

use super::StoreError;
use crate::bots::status::BotStatus;
use crate::money;

/// One user as the admin console lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserBot {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub verified: bool,
    pub created_at: i64,
    pub exchange: String,
    pub symbol: String,
    /// The default bot's (`stopped` for a user without bots).
    pub status: BotStatus,
    pub started_at: Option<i64>,
    pub cycle: i64,
    pub has_bot: bool,
    #[serde(with = "crate::money::number")]
    pub pnl_total: Decimal,
    pub trades: i64,
}

const SELECT: &str = "SELECT u.id, u.email, u.is_admin, u.disabled, u.verified_at IS NOT NULL,
        u.created_at, COALESCE(b.cycle_exchange, b.exchange, 'paper'),
        COALESCE(b.cycle_symbol, b.symbol, ''), COALESCE(b.status, 'stopped'), b.started_at,
        COALESCE(b.cycle, 0), b.id IS NOT NULL, COALESCE(t.pnl, ''), COALESCE(t.n, 0)
    FROM user u
    LEFT JOIN user_bots b ON b.id = (SELECT MIN(d.id) FROM user_bots d WHERE d.user_id = u.id)
    LEFT JOIN (SELECT user_id, GROUP_CONCAT(pnl, ' ') AS pnl, COUNT(*) AS n
               FROM trades GROUP BY user_id) t
        ON t.user_id = u.id";

fn from_row(r: &crate::store::Row<'_>) -> crate::store::SqlResult<UserBot> {
    Ok(UserBot {
        id: r.get(0)?,
        email: r.get(1)?,
        is_admin: r.get(2)?,
        disabled: r.get(3)?,
        verified: r.get(4)?,
        created_at: r.get(5)?,
        exchange: r.get(6)?,
        symbol: r.get(7)?,
        status: r.get(8)?,
        started_at: r.get(9)?,
        cycle: r.get(10)?,
        has_bot: r.get(11)?,
        pnl_total: sum_of(12, &r.get::<_, String>(12)?)?,
        trades: r.get(13)?,
    })
}

/// The exact sum of the space-separated PnLs in column `idx` (SQLite's SUM of
/// the TEXT column would add binary floats).
fn sum_of(idx: usize, pnls: &str) -> crate::store::SqlResult<Decimal> {
    pnls.split_ascii_whitespace()
        .map(|p| money::parse(p).map_err(|e| crate::store::SqlError::conversion(idx, e)))
        .try_fold(Decimal::ZERO, |sum, p| Ok(sum + p?))
}

/// Escapes `LIKE` wildcards so a search for `a_b` finds exactly that.
fn like_pattern(query: &str) -> String {
    let escaped = query
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Users whose e-mail contains `query`, by id, with the total count of matches.
pub fn search(
    conn: &Conn,
    query: &str,
    limit: u32,
    offset: u32,
) -> Result<(Vec<UserBot>, i64), StoreError> {
    let pattern = like_pattern(query);
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE u.email LIKE ?1 ESCAPE '\\' ORDER BY u.id LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt
        .query_map(params![pattern, limit, offset], from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn
        .prepare_cached("SELECT COUNT(*) FROM user WHERE email LIKE ?1 ESCAPE '\\'")?
        .query_row([&pattern], |r| r.get(0))?;
    Ok((rows, total))
}

/// User `id` as the admin list shows them (`None` for no such user).
pub fn user(conn: &Conn, id: i64) -> Result<Option<UserBot>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE u.id = ?1"))?;
    let mut rows = stmt.query_map([id], from_row)?;
    Ok(rows.next().transpose()?)
}

/// Every user with a bot, with their default bot.
pub fn managed(conn: &Conn) -> Result<Vec<UserBot>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE b.id IS NOT NULL ORDER BY u.id"))?;
    let rows = stmt.query_map((), from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One bot of the instance as the admin overview lists it: the market of its
/// cycle when it has one, else of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedBot {
    pub id: i64,
    pub user_id: i64,
    pub status: BotStatus,
    pub exchange: String,
    pub symbol: String,
    pub side: String,
}

/// Every bot of the instance, by id.
pub fn bots(conn: &Conn) -> Result<Vec<ManagedBot>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, status, COALESCE(cycle_exchange, exchange),
             COALESCE(cycle_symbol, symbol), COALESCE(cycle_side, side)
         FROM user_bots ORDER BY id",
    )?;
    let rows = stmt
        .query_map((), |r| {
            Ok(ManagedBot {
                id: r.get(0)?,
                user_id: r.get(1)?,
                status: r.get(2)?,
                exchange: r.get(3)?,
                symbol: r.get(4)?,
                side: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{self, NewUser};

    #[test]
    fn search_escapes_wildcards_and_counts() {
        let c = crate::store::testing::migrated();
        for e in ["a_b@x.io", "axb@x.io", "other@y.io"] {
            let new = NewUser {
                email: e,
                password_hash: "h",
                is_admin: false,
                verification: None,
            };
            users::create(&c, &new, 1).unwrap();
        }
        let (rows, total) = search(&c, "a_b", 10, 0).unwrap();
        assert_eq!(
            (rows.len(), total, rows[0].email.as_str()),
            (1, 1, "a_b@x.io")
        );
        let (rows, total) = search(&c, "x.io", 1, 1).unwrap();
        assert_eq!(
            (rows.len(), total, rows[0].email.as_str()),
            (1, 2, "axb@x.io")
        );
        assert_eq!(rows[0].status, BotStatus::Stopped);
        // Every user has a default bot.
        assert_eq!(managed(&c).unwrap().len(), 3);
        let all = bots(&c).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(
            (all[0].symbol.as_str(), all[0].side.as_str()),
            ("BTC/USDT", "long")
        );
    }
}
