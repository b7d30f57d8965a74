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
