//! A migrated database for the storage unit tests, on the engine the run asks
//! for: SQLite in memory by default, PostgreSQL with `BLITZ_TEST_DATABASE=postgres`
//! (`tests/run` runs the storage tests both ways). The PostgreSQL server is the
//! integration tests' own harness (tests/common/pg.rs): one private server per test
//! binary, a fresh database per test.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::sql::Conn;

#[path = "../../../tests/common/pg.rs"]
#[allow(dead_code)] // the integration tests use more of it
mod pg;
#[path = "../../../tests/common/ports.rs"]
#[allow(dead_code)]
mod ports;

/// A test's connection, with the PostgreSQL database it lives in (dropped after it).
pub struct TestDb {
    conn: Conn,
    _pg: Option<pg::PgDb>,
}

impl Deref for TestDb {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for TestDb {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// Whether this run tests PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("BLITZ_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// A migrated, empty database on the engine under test.
pub fn migrated() -> TestDb {
    let mut db = empty();
    super::migrate::migrate(&mut db.conn).expect("migrate the test database");
    db
}

/// An empty database on the engine under test.
pub fn empty() -> TestDb {
    if on_postgres() {
        let pg = pg::PgServer::shared().database();
        TestDb {
            conn: Conn::from(pg.connect()),
            _pg: Some(pg),
        }
    } else {
        TestDb {
            conn: Conn::open_in_memory().expect("an in-memory database"),
            _pg: None,
        }
    }
}

/// tests/common's polling wait, which the PostgreSQL harness uses.
fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
