//! With `BLITZ_TEST_DATABASE=postgres`, every test server runs on PostgreSQL (a
//! database of its own on the binary's shared test server, `pg`) and a Redis of its
//! own, as a host of a cluster does (PostgreSQL requires Redis). `tests/run` runs the
//! HTTP-level tests this way as well as on SQLite.
//!
//! A server restarted in the same directory finds the same database and Redis:
//! they are kept per instance directory for the life of the test binary, and the
//! Redis servers are stopped when it exits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::pg::{PgDb, PgServer};
use super::redis::Redis;

pub struct Backing {
    pub db: PgDb,
    pub redis: Redis,
}

static BACKINGS: Mutex<Vec<(PathBuf, Arc<Backing>)>> = Mutex::new(Vec::new());

/// Whether this run puts the test servers on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("BLITZ_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// The database and Redis of the instance in `dir`, made on first use.
pub fn of(dir: &Path) -> Arc<Backing> {
    let mut all = BACKINGS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, b)) = all.iter().find(|(d, _)| d == dir) {
        return b.clone();
    }
    if all.is_empty() {
        // SAFETY: registers a plain `extern "C" fn` with no arguments.
        let r = unsafe { libc::atexit(stop_all) };
        assert_eq!(r, 0, "atexit");
    }
    let backing = Arc::new(Backing {
        db: PgServer::shared().database(),
        redis: Redis::start(),
    });
    all.push((dir.to_path_buf(), backing.clone()));
    backing
}

/// Stops the Redis servers (statics are never dropped). Runs before the PostgreSQL
/// server's own hook, which was registered first.
extern "C" fn stop_all() {
    let all = std::mem::take(&mut *BACKINGS.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, b) in all {
        if let Ok(mut b) = Arc::try_unwrap(b) {
            b.redis.kill();
        }
    }
}
