//! A database kept in a fixture as SQL text (`sqlite3 FILE .dump`): small, readable
//! in a review, and loaded back without the `sqlite3` program, by the SQLite the
//! tests link.

use std::fs;
use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

/// The whole database at `db` as SQL, as the `sqlite3` shell dumps it (schema,
/// rows, `sqlite_sequence`): only the fixture maker needs that program.
pub fn dump(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .expect("run sqlite3 (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "sqlite3 .dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the dump is UTF-8")
}

/// A new database at `db` (its folder made if missing) holding the dump `sql`.
pub fn load(sql: &str, db: &Path) {
    if let Some(dir) = db.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    assert!(!db.exists(), "{} exists already", db.display());
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("loading the dump into {}: {e}", db.display()));
}

/// The highest migration recorded in the database.
pub fn schema_version(conn: &Connection) -> i64 {
    conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// `PRAGMA foreign_key_check` as lines `table rowid parent fkid` (empty: every
/// reference resolves).
pub fn foreign_key_violations(conn: &Connection) -> Vec<String> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check").unwrap();
    let rows = stmt
        .query_map([], |r| {
            let table: String = r.get(0)?;
            let rowid: Option<i64> = r.get(1)?;
            let parent: String = r.get(2)?;
            let fk: i64 = r.get(3)?;
            Ok(format!("{table} {rowid:?} -> {parent} (fk {fk})"))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// `PRAGMA integrity_check`'s lines (`["ok"]` when sound).
pub fn integrity(conn: &Connection) -> Vec<String> {
    let mut stmt = conn.prepare("PRAGMA integrity_check").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}
