//! `blitz migrate` on PostgreSQL (CONTRACT C18): the real binary against a private
//! PostgreSQL (tests/common/pg.rs). The schema it builds is compared with the one
//! `blitz migrate` builds on SQLite, table by table, so the two cannot drift.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Output, Stdio};

use common::blitz_cmd;
use common::pg::PgServer;

fn migrate(dir: &Path, database: &str) -> Output {
    blitz_cmd(dir)
        .args(["migrate", "--database", database])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The migrations of this binary, as SQLite's `blitz migrate` lists them.
fn sqlite_migrations(dir: &Path) -> (rusqlite::Connection, Vec<String>) {
    let db = dir.join("schema.db");
    let o = migrate(dir, db.to_str().unwrap());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let applied = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.strip_prefix("applied ").unwrap().to_string())
        .collect();
    (rusqlite::Connection::open(db).unwrap(), applied)
}

/// What both engines must agree on, per table: each column with its NOT NULL (for
/// columns outside the primary key: SQLite lets a non-integer key be NULL), the
/// primary key's columns, the foreign keys, and the named indexes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, bool>,
    primary_key: BTreeSet<String>,
    foreign_keys: BTreeSet<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, Table>,
    indexes: BTreeSet<String>,
    migrations: Vec<(i64, String)>,
}

fn sqlite_schema(conn: &rusqlite::Connection) -> Schema {
    let strings = |sql: &str| -> Vec<Vec<String>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
    };
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for row in strings(
        "SELECT m.name, p.name, p.\"notnull\", p.pk FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    ) {
        let t = tables.entry(row[0].clone()).or_default();
        let in_key = row[3] != "0";
        t.columns
            .insert(row[1].clone(), row[2] == "1" && !in_key);
        if in_key {
            t.primary_key.insert(row[1].clone());
        }
    }
    for row in strings(
        "SELECT m.name, f.\"from\", f.\"table\", f.\"to\", f.on_delete
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
    ) {
        let fk = format!("{} -> {}.{} on delete {}", row[1], row[2], row[3], row[4]);
        tables.get_mut(&row[0]).unwrap().foreign_keys.insert(fk);
    }
    let indexes = strings(
        "SELECT tbl_name || '.' || name FROM sqlite_master
         WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    let migrations = strings("SELECT version, name FROM schema_migrations ORDER BY version")
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].clone()))
        .collect();
    Schema {
        tables,
        indexes,
        migrations,
    }
}

fn pg_schema(client: &mut postgres::Client) -> Schema {
    let mut strings = |sql: &str| -> Vec<Vec<String>> {
        client
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
            .collect()
    };
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for row in strings(
        "SELECT c.relname::text, a.attname::text, a.attnotnull::text,
                (EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid
                    AND k.contype = 'p' AND a.attnum = ANY (k.conkey)))::text
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind = 'r'",
    ) {
        let t = tables.entry(row[0].clone()).or_default();
        let in_key = row[3] == "true";
        t.columns
            .insert(row[1].clone(), row[2] == "true" && !in_key);
        if in_key {
            t.primary_key.insert(row[1].clone());
        }
    }
    for row in strings(
        "SELECT c.relname::text, a.attname::text, f.relname::text, af.attname::text,
                CASE k.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'
                    WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' ELSE 'SET DEFAULT' END
         FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid
         JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
         JOIN pg_attribute af ON af.attrelid = k.confrelid AND af.attnum = k.confkey[1]
         WHERE k.contype = 'f'",
    ) {
        let fk = format!("{} -> {}.{} on delete {}", row[1], row[2], row[3], row[4]);
        tables.get_mut(&row[0]).unwrap().foreign_keys.insert(fk);
    }
    // Indexes that back a PRIMARY KEY or UNIQUE constraint are SQLite's automatic
    // ones; the named ones are what the migrations create.
    let indexes = strings(
        "SELECT tablename::text || '.' || indexname::text FROM pg_indexes i
         WHERE schemaname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint k
             WHERE k.conname = i.indexname AND k.contype IN ('p', 'u'))",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    let migrations = client
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Schema {
        tables,
        indexes,
        migrations,
    }
}

#[test]
fn migrate_builds_the_sqlite_schema_on_postgres_once() {
    let pg = PgServer::shared().database();
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, names) = sqlite_migrations(dir.path());

    let o = migrate(dir.path(), &pg.url());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let expected: String = names.iter().map(|n| format!("applied {n}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&o.stdout), expected);

    let o = migrate(dir.path(), &pg.url());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.ends_with(" is up to date\n"), "{}", text(&o));
    assert!(stdout.contains(":***@127.0.0.1:"), "{}", text(&o));
    assert!(!text(&o).contains(pg.password()), "{}", text(&o));

    let want = sqlite_schema(&sqlite);
    let got = pg_schema(&mut pg.connect());
    for table in ["user", "user_bots", "paper_orders", "schema_migrations"] {
        assert!(want.tables.contains_key(table), "{:?}", want.tables.keys());
    }
    assert_eq!(want.migrations.len(), names.len());
    for (name, table) in &want.tables {
        assert_eq!(got.tables.get(name), Some(table), "table {name}");
    }
    assert_eq!(got, want);
}

#[test]
fn migrations_at_once_apply_each_version_once() {
    let pg = PgServer::shared().database();
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            blitz_cmd(dir.path())
                .arg("migrate")
                .env("DATABASE_URL", pg.url())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
    }
    let appliers = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).starts_with("applied "))
        .count();
    assert_eq!(
        appliers,
        1,
        "{:#?}",
        outputs.iter().map(text).collect::<Vec<_>>()
    );

    let mut client = pg.connect();
    let row = client
        .query_one(
            "SELECT COUNT(*), COUNT(DISTINCT version), MIN(version), MAX(version)
             FROM schema_migrations",
            &[],
        )
        .unwrap();
    let (rows, distinct, min, max): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((rows, distinct, min), (max, max, 1));
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let pg = PgServer::shared().database();
    let dir = tempfile::tempdir().unwrap();
    let o = migrate(dir.path(), &pg.url());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    pg.connect()
        .execute(
            "INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 0)",
            &[],
        )
        .unwrap();
    let o = migrate(dir.path(), &pg.url());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("schema is at version 9999, newer than this binary knows"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_server_that_cannot_be_reached_fails_without_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::ReservedPort::new();
    let url = format!(
        "postgresql://blitz:hunter2-secret@127.0.0.1:{}/blitz",
        port.port
    );
    let o = migrate(dir.path(), &url);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot connect to postgresql://blitz:***@127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains("Connection refused"),
        "the cause is given: {err}"
    );
    assert!(!text(&o).contains("hunter2"), "{}", text(&o));

    // A URL the client cannot read is bad usage, and still masked.
    let o = migrate(dir.path(), &format!("{url}?no_such_option=1"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--database"), "{}", text(&o));
    assert!(!text(&o).contains("hunter2"), "{}", text(&o));
}

/// `serve` on PostgreSQL needs Redis: without `REDIS_URL` it exits 2 naming the
/// variable, before touching the database, and never shows the password.
#[test]
fn serve_on_postgres_without_redis_names_redis_url() {
    let dir = tempfile::tempdir().unwrap();
    const URL: &str = "postgres://blitz:hunter2-secret@127.0.0.1:1/blitz";
    for (args, env) in [
        (vec!["serve"], vec![("DATABASE_URL", URL)]),
        (vec!["check-config"], vec![("BLITZ_DB_PATH", URL)]),
        (vec!["serve", "--database", URL], vec![]),
    ] {
        let o = blitz_cmd(dir.path())
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {all}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("REDIS_URL: required"), "{args:?}: {err}");
        assert!(!all.contains("hunter2"), "{args:?}: {all}");
    }
    assert!(
        !dir.path().join("postgres:").exists(),
        "no file named like the URL"
    );
}

/// The account commands work on PostgreSQL as on SQLite: `user create` migrates
/// and makes the account with its default bot, `token create` prints a token.
#[test]
fn account_commands_work_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgServer::shared().database();
    let url = db.url();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = blitz_cmd(dir.path())
            .args(args)
            .env("DATABASE_URL", &url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let email = "ops@example.com";
    let o = run(
        &["user", "create", "--email", email, "--password-stdin"],
        "ops-password-1\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&["token", "create", "--email", email, "--name", "ci"], "");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(token.len() >= 32, "{}", text(&o));
    let again = run(
        &["user", "create", "--email", email, "--password-stdin"],
        "ops-password-1\n",
    );
    assert_ne!(
        again.status.code(),
        Some(0),
        "the e-mail is taken: {}",
        text(&again)
    );

    let mut c = db.connect();
    let row = c
        .query_one(
            "SELECT u.id, (SELECT COUNT(*) FROM user_bots b WHERE b.user_id = u.id),
                    (SELECT COUNT(*) FROM api_tokens t WHERE t.user_id = u.id)
             FROM \"user\" u WHERE u.email = $1",
            &[&email],
        )
        .unwrap();
    let (bots, tokens): (i64, i64) = (row.get(1), row.get(2));
    assert_eq!((bots, tokens), (1, 1), "one default bot, one token");
}
