//! Schema migrations: the numbered files of `sql/`, embedded in the binary and
//! applied in order, each exactly once, recorded in `schema_migrations`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::sql::Conn;

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
    Migration {
        version: 12,
        name: "0012_multi_bot.sql",
        sql: include_str!("../../sql/0012_multi_bot.sql"),
    },
    Migration {
        version: 13,
        name: "0013_key_checks.sql",
        sql: include_str!("../../sql/0013_key_checks.sql"),
    },
    Migration {
        version: 14,
        name: "0014_cluster.sql",
        sql: include_str!("../../sql/0014_cluster.sql"),
    },
    Migration {
        version: 15,
        name: "0015_paper_funding_clock.sql",
        sql: include_str!("../../sql/0015_paper_funding_clock.sql"),
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
pub fn migrate(conn: &mut Conn) -> Result<Vec<&'static str>, StoreError> {
    match conn {
        Conn::Sqlite(c) => migrate_sqlite(c),
        Conn::Postgres(_) => {
            let client = conn.postgres_mut().ok_or(StoreError::Closed)?;
            Ok(super::pg_migrate::migrate_client(client)?)
        }
    }
}

fn migrate_sqlite(conn: &mut Connection) -> Result<Vec<&'static str>, StoreError> {
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
    use crate::store::sql::Value;

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
        let mut conn = Conn::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap().len(), MIGRATIONS.len());
        assert!(migrate(&mut conn).unwrap().is_empty());
        conn.execute(
            "INSERT INTO schema_migrations VALUES (999, 'future.sql', 0)",
            (),
        )
        .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { found: 999, .. })
        ));
    }

    /// A database as a binary that knew migrations up to `version` left it.
    fn at_version(version: i64) -> Conn {
        let conn = Conn::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                 applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                crate::params![m.version, m.name],
            )
            .unwrap();
        }
        conn
    }

    /// A database as a binary before exact money left it: migrations 1–6 applied,
    /// money in REAL columns, binary noise included.
    fn before_decimals() -> Conn {
        let conn = at_version(6);
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
    fn rows(conn: &Conn, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map((), |r| {
            let cells: Vec<String> = (0..n)
                .map(|i| match r.value(i).unwrap() {
                    Value::Null => "NULL".into(),
                    Value::Int(v) => format!("{v}:int"),
                    Value::Real(v) => format!("{v}:real"),
                    Value::Text(t) => format!("{t}:text"),
                    Value::Blob(_) => "blob".into(),
                    Value::Numeric(v) => format!("{v}:numeric"),
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
            rows(
                &conn,
                "SELECT take_profit, stop_loss FROM user_bots ORDER BY id"
            ),
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
            rows(
                &conn,
                "SELECT position_size, position_avg FROM user_bots WHERE id = 1"
            ),
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
        // Later migrations may add indexes; none of the earlier ones is lost, but
        // for those a later one replaced (a cycle is unique per bot since 0012).
        let replaced = [("idx_trades_user_cycle:text", "idx_trades_bot_cycle:text")];
        for index in &indexes_before {
            let now = replaced
                .iter()
                .find(|(old, _)| old == index)
                .map_or(index.as_str(), |(_, new)| new);
            assert!(indexes_after.iter().any(|i| i == now), "{index} was lost");
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
            (),
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

    /// A database of the release before several bots per user: one user whose bot
    /// runs on Bybit with live orders, fills, funding, events and trades; one with
    /// keys who trades on paper and never started; one idle with a stopped bot;
    /// one (id 5, after a gap) who never did anything.
    fn before_multi_bot() -> Conn {
        let conn = at_version(11);
        conn.execute_batch(
            "INSERT INTO user (id, email, password_hash, created_at, exchange, symbol, side,
                 leverage, take_profit, stop_loss, api_key_enc, api_key_last4, api_secret_enc,
                 telegram_chat_id, telegram_token_enc, cooldown, pending_config)
                 VALUES (1, 'run@x.io', 'h', 10, 'bybit', 'ETH/USDT', 'short', 5, '6', '40',
                     'v1.key', 'abcd', 'v1.secret', '42', 'v1.tg', 30, '{\"take_profit\":7}');
             INSERT INTO user (id, email, password_hash, created_at, api_key_enc,
                 api_key_last4, api_secret_enc)
                 VALUES (2, 'keys@x.io', 'h', 11, 'v1.k2', 'wxyz', 'v1.s2');
             INSERT INTO user (id, email, password_hash, created_at) VALUES (3, 'idle@x.io', 'h', 12);
             INSERT INTO user (id, email, password_hash, created_at, api_key_enc)
                 VALUES (5, 'new@x.io', 'h', 13, 'v1.half');
             INSERT INTO user_bots (user_id, desired_state, status, cycle, started_at,
                 updated_at, tp_n, sl_n, cycle_exchange, cycle_symbol, cycle_side,
                 cycle_opened_at, position_size, position_avg, open_orders, stop_on_exchange)
                 VALUES (1, 'running', 'running', 3, 100, 120, 2, 1, 'bybit', 'ETH/USDT',
                     'short', 90, '0.5', '3000.5', 3, 1);
             INSERT INTO user_bots (user_id, desired_state, status, cycle, updated_at, stop_reason)
                 VALUES (3, 'stopped', 'stopped', 2, 50, 'user');
             INSERT INTO bot_orders VALUES (1, 'bz-1-3-e', 91, 'ex-1');
             INSERT INTO bot_orders VALUES (1, 'bz-1-3-l1', 92, 'ex-2');
             INSERT INTO bot_orders VALUES (1, 'bz-1-3-sl1', 93, NULL);
             INSERT INTO bot_fills (user_id, cycle, client_id, exchange_order_id, purpose, leg,
                 side, qty, price, fee, time_ms, seq)
                 VALUES (1, 3, 'bz-1-3-e', 'ex-1', 'entry', 0, 'sell', '0.5', '3000.5', '0.8', 91000, 0);
             INSERT INTO bot_funding VALUES (1, 3, 'f-1', '-0.01', 95000);
             INSERT INTO bot_events (user_id, kind, message, created_at)
                 VALUES (1, 'started', 'Bot started', 100);
             INSERT INTO trades (user_id, symbol, side, size, avg_entry, exit_price, pnl, fees,
                 cycle, opened_at, closed_at, close_reason)
                 VALUES (1, 'ETH/USDT', 'short', '0.5', '3100', '3050', '24.1', '0.9', 2, 60, 80,
                     'take_profit');
             INSERT INTO paper_accounts VALUES (2, '10000');",
        )
        .unwrap();
        conn
    }

    #[test]
    fn every_user_gets_a_default_bot_with_their_id_config_and_state() {
        use crate::bots::ids;
        use crate::bots::status::{BotStatus, DesiredState};
        use crate::store::{bot_config, bots, exchange_accounts, ledger, trades, user_bots};
        let mut conn = before_multi_bot();
        assert_eq!(migrate(&mut conn).unwrap()[0], "0012_multi_bot.sql");
        assert!(rows(&conn, "PRAGMA foreign_key_check").is_empty());
        assert_eq!(rows(&conn, "PRAGMA integrity_check"), ["ok:text"]);
        assert_eq!(
            rows(&conn, "SELECT id, user_id, name FROM user_bots ORDER BY id"),
            [
                "1:int 1:int Default:text",
                "2:int 2:int Default:text",
                "3:int 3:int Default:text",
                "5:int 5:int Default:text"
            ]
        );
        for uid in [1, 2, 3, 5] {
            assert_eq!(user_bots::default_of(&conn, uid).unwrap(), Some(uid));
        }
        // The running bot: its configuration, its account, its state.
        let running = bot_config::load(&conn, 1).unwrap().unwrap();
        let c = &running.config;
        assert_eq!(
            (
                c.exchange.as_str(),
                c.symbol.as_str(),
                c.leverage,
                c.cooldown
            ),
            ("bybit", "ETH/USDT", 5, 30)
        );
        assert_eq!(c.telegram_chat_id.as_deref(), Some("42"));
        assert!(running.has_pending && running.has_telegram_token);
        assert_eq!(running.api_key_last4.as_deref(), Some("abcd"));
        let account = exchange_accounts::get(&conn, 1, running.exchange_account_id.unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                account.name.as_str(),
                account.exchange.as_str(),
                account.bot_ids.clone()
            ),
            ("Bybit", "bybit", vec![1])
        );
        let sealed = exchange_accounts::credentials(&conn, 1, account.id)
            .unwrap()
            .unwrap();
        assert_eq!(
            (sealed.api_key.as_deref(), sealed.api_secret.as_deref()),
            (Some("v1.key"), Some("v1.secret")),
            "the sealed values are copied as they are"
        );
        let row = bots::get(&conn, 1).unwrap().unwrap();
        assert_eq!(
            (
                row.desired_state,
                row.status,
                row.cycle,
                row.tp_n,
                row.started_at
            ),
            (DesiredState::Running, BotStatus::Running, 3, 2, Some(100))
        );
        // Its open cycle is on the account its keys moved to.
        assert_eq!(row.cycle_account_id, Some(account.id));
        assert_eq!(bots::desired_running(&conn).unwrap(), [1]);
        // Its live orders are still its own: same ids, same ledger.
        let sent = ledger::sent(&conn, 1, 3).unwrap();
        assert_eq!(sent.len(), 3);
        for s in &sent {
            assert!(ids::parse(1, &s.client_id).is_some(), "{}", s.client_id);
        }
        assert_eq!(
            ledger::client_id_of(&conn, 1, "ex-2").unwrap().as_deref(),
            Some("bz-1-3-l1")
        );
        assert_eq!(ledger::fills(&conn, 1, 3).unwrap().len(), 1);
        assert_eq!(ledger::funding(&conn, 1, 3).unwrap().len(), 1);
        assert_eq!(bots::events(&conn, 1, 10, None).unwrap().len(), 1);
        let t = trades::list(&conn, 1, Some(1), 10, None).unwrap();
        assert_eq!((t.len(), t[0].bot_id), (1, Some(1)));
        // The paper user kept their keys in an account the paper bot does not use.
        let paper = bot_config::load(&conn, 2).unwrap().unwrap();
        assert_eq!(
            (paper.config.exchange.as_str(), paper.exchange_account_id),
            ("paper", None)
        );
        assert_eq!(
            exchange_accounts::list(&conn, 2).unwrap()[0].api_key_last4,
            "wxyz"
        );
        // The idle ones: their state, or a fresh one; a half key pair is not an account.
        assert_eq!(bots::get(&conn, 3).unwrap().unwrap().cycle, 2);
        assert_eq!(bots::get(&conn, 5).unwrap().unwrap().cycle, 1);
        assert!(exchange_accounts::list(&conn, 5).unwrap().is_empty());
        assert_eq!(
            bot_config::load(&conn, 5).unwrap().unwrap().config,
            crate::bots::config::BotConfig::default()
        );
        // The moved columns are gone from `user`; the Telegram ones stay.
        assert!(conn.prepare("SELECT symbol FROM user").is_err());
        assert!(conn.prepare("SELECT api_key_enc FROM user").is_err());
        assert_eq!(
            rows(&conn, "SELECT telegram_chat_id FROM user WHERE id = 1"),
            ["42:text"]
        );
        // New bots never take an old id; a cycle is recorded once per bot.
        let new = user_bots::NewBot {
            name: "More",
            config: &crate::bots::config::BotConfig::default(),
            exchange_account_id: None,
        };
        assert_eq!(
            user_bots::create(&conn, 3, &new, 10, 200).unwrap(),
            user_bots::Created::Bot(6)
        );
        let trade = trades::Trade {
            bot_id: Some(6),
            user_id: 3,
            ..t[0].clone()
        };
        assert!(
            trades::record(&conn, &trade).unwrap(),
            "cycle 2 of another bot"
        );
        assert!(!trades::record(&conn, &trade).unwrap());
        // Deleting a user takes their bots and everything of them.
        conn.execute("DELETE FROM user WHERE id = 1", []).unwrap();
        for table in [
            "user_bots",
            "bot_orders",
            "bot_fills",
            "bot_funding",
            "bot_events",
            "trades",
            "exchange_accounts",
        ] {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE user_id = 1"),
                    (),
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }

    #[test]
    fn email_lookup_uses_the_named_index() {
        let mut conn = Conn::open_in_memory().unwrap();
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
