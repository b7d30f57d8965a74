//! Stale-while-revalidate over the shared cache (`store::market_cache`): one
//! process fetches an item when it is due, every other process keeps serving the
//! copy it has; a caller with no copy at all waits (bounded) for the fetch.
//!
//! Invariant: the exchange is called only by the winner of `market_cache::claim`,
//! so however many workers and dashboards ask, an item costs at most one exchange
//! request per refresh period (one per retry pause while the exchange fails).

use std::time::{Duration, Instant};

use rusqlite::Connection;
use slog::{warn, Logger};

use crate::exchange::ExchangeError;
use crate::store::market_cache::{self, Schedule};
use crate::store::{now_ms, StoreError};

/// How long a caller without a copy polls the cache for another process's fetch.
const POLL: Duration = Duration::from_millis(20);

/// Whether a copy of the item is in the cache after `refresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    Present,
    /// Never fetched, and the fetch failed or did not finish in time.
    Missing,
}

/// Brings `item` up to date when it is due: `fetch` calls the exchange, `save`
/// stores the answer (and must mark the item fetched in the same transaction).
/// Failures are logged and leave the old copy; `wait` bounds how long a caller
/// without a copy waits for someone else's fetch.
pub fn refresh<T>(
    conn: &mut Connection,
    item: &str,
    schedule: Schedule,
    wait: Duration,
    log: &Logger,
    fetch: impl FnOnce() -> Result<T, ExchangeError>,
    save: impl FnOnce(&mut Connection, T, i64) -> Result<(), StoreError>,
) -> Result<Copy, StoreError> {
    if market_cache::claim(conn, item, now_ms(), schedule)? {
        match fetch() {
            Ok(v) => save(conn, v, now_ms())?,
            Err(e) => {
                warn!(log, "market data refresh failed; serving the previous copy";
                      "item" => item, "error" => %e);
                crate::metrics::market_refresh_failed();
                market_cache::failed(conn, item, now_ms())?;
            }
        }
    }
    let deadline = Instant::now() + wait;
    loop {
        let s = market_cache::state(conn, item)?;
        if s.fetched_ms > 0 {
            return Ok(Copy::Present);
        }
        // Nobody is fetching (the last try failed): nothing to wait for.
        if s.claimed_until_ms <= now_ms() || Instant::now() >= deadline {
            return Ok(Copy::Missing);
        }
        std::thread::sleep(POLL);
    }
}
