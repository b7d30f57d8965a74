//! Schema migrations: the numbered files of `sql/`, embedded in the binary and
//! applied in order, each exactly once, recorded in `schema_migrations`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;

/// Every migration, in order. Versions start at 1 and have no gaps (a unit test reads
/// `sql/` to check that each file is listed here).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_accounts.sql",
        sql: include_str!("../../sql/0001_accounts.sql"),
    },
    Migration {
        version: 2,
        name: "0002_paper.sql",
        sql: include_str!("../../sql/0002_paper.sql"),
    },
    Migration {
        version: 3,
        name: "0003_bots.sql",
        sql: include_str!("../../sql/0003_bots.sql"),
    },
    Migration {
        version: 4,
        name: "0004_coordination.sql",
        sql: include_str!("../../sql/0004_coordination.sql"),
    },
    Migration {
        version: 5,
        name: "0005_bot_orders.sql",
        sql: include_str!("../../sql/0005_bot_orders.sql"),
    },
    Migration {
        version: 6,
        name: "0006_two_factor.sql",
        sql: include_str!("../../sql/0006_two_factor.sql"),
    },
    Migration {
        version: 7,
        name: "0007_decimal_money.sql",
        sql: include_str!("../../sql/0007_decimal_money.sql"),
    },
    Migration {
        version: 8,
        name: "0008_paper_stops_fills.sql",
        sql: include_str!("../../sql/0008_paper_stops_fills.sql"),
    },
    Migration {
        version: 9,
        name: "0009_trading_core.sql",
        sql: include_str!("../../sql/0009_trading_core.sql"),
    },
    Migration {
        version: 10,
        name: "0010_paper_market.sql",
        sql: include_str!("../../sql/0010_paper_market.sql"),
    },
    Migration {
        version: 11,
        name: "0011_market_catalogue.sql",
        sql: include_str!("../../sql/0011_market_catalogue.sql"),
    },
];

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Applies what is pending; returns the names applied (empty when up to date).
///
/// Invariant: each migration runs inside one `BEGIN IMMEDIATE` transaction that also
/// records it, and the "already applied?" check happens inside that transaction, so a
/// concurrent `blitz migrate` and `blitz serve` never apply one twice.
pub fn migrate(conn: &mut Connection) -> Result<Vec<&'static str>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY,
            name        TEXT    NOT NULL,
            applied_at  INTEGER NOT NULL
        )",
    )?;
    check_not_newer(conn)?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_some() {
            continue;
        }
        tx.execute_batch(m.sql)
            .map_err(|source| StoreError::Migration {
                name: m.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, super::now()],
        )?;
        tx.commit()?;
        applied.push(m.name);
    }
    Ok(applied)
}

/// A database migrated by a newer binary must not be served by an older one.
fn check_not_newer(conn: &Connection) -> Result<(), StoreError> {
    let newest: Option<i64> =
        conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    match newest {
        Some(v) if v > known => Err(StoreError::SchemaTooNew { found: v, known }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sql_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }

    #[test]
    fn applies_once_and_refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap().len(), MIGRATIONS.len());
        assert!(migrate(&mut conn).unwrap().is_empty());
        conn.execute(
            "INSERT INTO schema_migrations VALUES (999, 'future.sql', 0)",
            [],
        )
        .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { found: 999, .. })
        ));
    }

    /// A database as a binary before exact money left it: migrations 1–6 applied,
    /// money in REAL columns, binary noise included.
    fn before_decimals() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                 applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= 6) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![m.version, m.name],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO user (id, email, password_hash, created_at, take_profit, stop_loss)
                 VALUES (1, 'a@b.c', 'x', 0, 0.1 + 0.2, 2.5);
             INSERT INTO user (id, email, password_hash, created_at) VALUES (2, 'b@b.c', 'x', 0);
             INSERT INTO sessions (token_hash, csrf_token, user_id, created_at, expires_at)
                 VALUES ('t', 'c', 1, 0, 0);
             INSERT INTO trades (user_id, symbol, side, size, avg_entry, exit_price, pnl, fees,
                 cycle, opened_at, closed_at)
                 VALUES (1, 'BTC/USDT', 'long', 0.003 + 0.003 + 0.003, 60000.1, 60300,
                     1.2345678912, 0.0000001, 1, 0, 1);
             INSERT INTO user_bots (user_id, updated_at, position_size, position_avg)
                 VALUES (1, 0, 0.009, 59999.95);
             INSERT INTO market_prices VALUES ('paper', 'BTC/USDT', 60123.45, 0);
             INSERT INTO paper_markets VALUES ('BTC/USDT', 60123.45, 5, 0);
             INSERT INTO paper_accounts VALUES (1, 9999.123456789);
             INSERT INTO paper_orders (user_id, client_id, symbol, side, kind, price, qty,
                 reduce_only, position_side, status, created_ms, updated_ms, fee)
                 VALUES (1, 'c1', 'BTC/USDT', 'buy', 'limit', 59000.5, 0.003, 0, 'long', 'open',
                     0, 0, 0.0330165);
             INSERT INTO paper_orders (user_id, client_id, symbol, side, kind, price, qty,
                 reduce_only, position_side, status, created_ms, updated_ms)
                 VALUES (1, 'c2', 'BTC/USDT', 'buy', 'market', NULL, 0.003, 0, 'long', 'filled',
                     0, 0);
             INSERT INTO paper_positions VALUES (1, 'BTC/USDT', 'long', 0.009, 60000.0333333333);",
        )
        .unwrap();
        conn
    }

    /// Every row of `sql`, each value as text with its SQLite type (`0.009:text`).
    fn rows(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            let cells: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => "NULL".into(),
                    rusqlite::types::ValueRef::Integer(v) => format!("{v}:int"),
                    rusqlite::types::ValueRef::Real(v) => format!("{v}:real"),
                    rusqlite::types::ValueRef::Text(t) => {
                        format!("{}:text", String::from_utf8_lossy(t))
                    }
                    rusqlite::types::ValueRef::Blob(_) => "blob".into(),
                })
                .collect();
            Ok(cells.join(" "))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn an_existing_database_gets_its_money_as_exact_decimal_text() {
        let mut conn = before_decimals();
        let indexes_before = rows(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name",
        );
        let applied = migrate(&mut conn).unwrap();
        assert_eq!(applied.first(), Some(&"0007_decimal_money.sql"));
        assert_eq!(
            rows(&conn, "SELECT take_profit, stop_loss FROM user ORDER BY id"),
            ["0.3:text 2.5:text", "5:text 0:text"]
        );
        assert_eq!(
            rows(
                &conn,
                "SELECT size, avg_entry, exit_price, pnl, fees FROM trades"
            ),
            ["0.009:text 60000.1:text 60300:text 1.2345678912:text 0.0000001:text"]
        );
        assert_eq!(
            rows(&conn, "SELECT position_size, position_avg FROM user_bots"),
            ["0.009:text 59999.95:text"]
        );
        assert_eq!(
            rows(
                &conn,
                "SELECT price FROM market_prices UNION ALL SELECT price FROM paper_markets"
            ),
            ["60123.45:text", "60123.45:text"]
        );
        assert_eq!(
            rows(&conn, "SELECT balance FROM paper_accounts"),
            ["9999.123456789:text"]
        );
        assert_eq!(
            rows(
                &conn,
                "SELECT price, qty, filled_qty, avg_fill_price, fee FROM paper_orders ORDER BY id"
            ),
            [
                "59000.5:text 0.003:text 0:text 0:text 0.0330165:text",
                "NULL 0.003:text 0:text 0:text 0:text"
            ]
        );
        assert_eq!(
            rows(&conn, "SELECT size, avg_entry FROM paper_positions"),
            ["0.009:text 60000.0333333333:text"]
        );
        // Nothing cascaded, every index is back, and the keys still hold.
        assert_eq!(rows(&conn, "SELECT COUNT(*) FROM sessions"), ["1:int"]);
        let indexes_after = rows(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name",
        );
        // Later migrations may add indexes; none of the earlier ones is lost.
        for index in &indexes_before {
            assert!(indexes_after.contains(index), "{index} was lost");
        }
        assert!(rows(&conn, "PRAGMA foreign_key_check").is_empty());
        conn.execute("DELETE FROM user WHERE id = 1", []).unwrap();
        assert_eq!(
            rows(
                &conn,
                "SELECT COUNT(*) FROM trades UNION ALL SELECT COUNT(*) FROM paper_orders"
            ),
            ["0:int", "0:int"]
        );
        // A decimal written now stays the text it was.
        conn.execute(
            "INSERT INTO market_prices VALUES ('bybit', 'BTC/USDT', '0.0090', 0)",
            [],
        )
        .unwrap();
        assert_eq!(
            rows(
                &conn,
                "SELECT price FROM market_prices WHERE exchange = 'bybit'"
            ),
            ["0.0090:text"]
        );
        assert!(conn
            .execute(
                "INSERT INTO paper_markets VALUES ('ETH/USDT', '0', 0, 0)",
                []
            )
            .is_err());
    }

    #[test]
    fn email_lookup_uses_the_named_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT * FROM user WHERE email = ?",
                ["a@b.c"],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("idx_users_email"), "{plan}");
    }
}
