//! Schema migrations on PostgreSQL: the files of `sql/postgres/`, embedded in the
//! binary, applied in order, each exactly once, recorded in `schema_migrations`
//! with the same versions and names as on SQLite (`migrate::MIGRATIONS`).
//!
//! A file may stand for several SQLite versions: `0013_baseline.sql` is the schema
//! of versions 1–13 at once, since no PostgreSQL database predates them. From
//! version 14 on, each SQLite migration has one PostgreSQL file of the same number
//! (a unit test keeps the two lists covering the same versions).

use std::ops::RangeInclusive;

use postgres::{Client, NoTls, Transaction};

use super::engine::PgUrl;
use super::migrate::MIGRATIONS;
use super::sql::chain;

pub struct PgMigration {
    /// The SQLite versions this file brings a database to.
    pub versions: RangeInclusive<i64>,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const PG_MIGRATIONS: &[PgMigration] = &[
    PgMigration {
        versions: 1..=13,
        name: "0013_baseline.sql",
        sql: include_str!("../../sql/postgres/0013_baseline.sql"),
    },
    PgMigration {
        versions: 14..=14,
        name: "0014_cluster.sql",
        sql: include_str!("../../sql/postgres/0014_cluster.sql"),
    },
    PgMigration {
        versions: 15..=15,
        name: "0015_paper_funding_clock.sql",
        sql: include_str!("../../sql/postgres/0015_paper_funding_clock.sql"),
    },
];

/// Every `blitz migrate` takes this transaction-level advisory lock before looking
/// at `schema_migrations`, so instances migrating at once apply each file once: the
/// second waits, then finds the version recorded. (The number is arbitrary and
/// fixed: "blitz" in ASCII.)
const MIGRATION_LOCK: i64 = 0x0062_6c69_747a;

#[derive(Debug, thiserror::Error)]
pub enum PgMigrateError {
    #[error("cannot connect to {url}: {}", chain(source))]
    Connect { url: PgUrl, source: postgres::Error },
    #[error("database: {}", chain(.0))]
    Query(#[from] postgres::Error),
    #[error("migration {name} failed: {}", chain(source))]
    Migration {
        name: &'static str,
        source: postgres::Error,
    },
    #[error(
        "the database schema is at version {found}, newer than this binary knows ({known}); \
         run the newer blitz or restore a backup"
    )]
    SchemaTooNew { found: i64, known: i64 },
}

/// Connects to `url` and applies what is pending; returns the names of the SQLite
/// versions applied (empty when up to date), as the SQLite path reports them.
pub fn migrate(url: &PgUrl) -> Result<Vec<&'static str>, PgMigrateError> {
    let mut client = url
        .config()
        .connect(NoTls)
        .map_err(|source| PgMigrateError::Connect {
            url: url.clone(),
            source,
        })?;
    migrate_client(&mut client)
}

/// Applies what is pending on an open connection (a pool's, or `migrate`'s).
pub fn migrate_client(client: &mut Client) -> Result<Vec<&'static str>, PgMigrateError> {
    let mut applied = Vec::new();
    for m in PG_MIGRATIONS {
        if apply(client, m)? {
            applied.extend(m.versions.clone().map(sqlite_name));
        }
    }
    Ok(applied)
}

/// One file in one transaction, under the lock: checks, applies, records. Returns
/// whether it was applied (false when already recorded).
fn apply(client: &mut Client, m: &PgMigration) -> Result<bool, PgMigrateError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    // Inside the lock: two first-ever migrations would otherwise race on creating it.
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     BIGINT  PRIMARY KEY,
            name        TEXT    NOT NULL,
            applied_at  BIGINT  NOT NULL
        )",
    )?;
    check_not_newer(&mut tx)?;
    let last = *m.versions.end();
    let done: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM schema_migrations WHERE version = $1",
            &[&last],
        )?
        .get(0);
    if done > 0 {
        return Ok(false);
    }
    tx.batch_execute(m.sql)
        .map_err(|source| PgMigrateError::Migration {
            name: m.name,
            source,
        })?;
    let now = super::now();
    for version in m.versions.clone() {
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, &sqlite_name(version), &now],
        )?;
    }
    tx.commit()?;
    Ok(true)
}

/// A database migrated by a newer binary must not be touched by an older one.
fn check_not_newer(tx: &mut Transaction<'_>) -> Result<(), PgMigrateError> {
    let newest: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM schema_migrations", &[])?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    match newest {
        Some(found) if found > known => Err(PgMigrateError::SchemaTooNew { found, known }),
        _ => Ok(()),
    }
}

/// The error with its causes: the client's own message is only "db error" and the
/// server's words (which table, which constraint) are in its source.
/// The name version `v` has in `schema_migrations` on both engines.
fn sqlite_name(v: i64) -> &'static str {
    MIGRATIONS
        .iter()
        .find(|m| m.version == v)
        .map_or("unknown", |m| m.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both engines reach the same versions through files of the same numbers, so a
    /// migration added for one engine only fails here.
    #[test]
    fn postgres_files_cover_every_sqlite_version_in_order() {
        let mut next = 1;
        for m in PG_MIGRATIONS {
            assert_eq!(*m.versions.start(), next, "{}", m.name);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.versions.end())),
                "{} is named after the last version it brings",
                m.name
            );
            next = m.versions.end() + 1;
        }
        assert_eq!(next - 1, MIGRATIONS.last().map_or(0, |m| m.version));
        for v in 1..next {
            assert_ne!(sqlite_name(v), "unknown");
        }
    }

    #[test]
    fn every_postgres_file_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/postgres");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let listed: Vec<&str> = PG_MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
    }
}
