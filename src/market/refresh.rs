//! Stale-while-revalidate over the shared cache (`store::market_cache`): one
//! process fetches an item when it is due, every other process keeps serving the
//! copy it has; a caller with no copy at all waits (bounded) for the fetch.
//!
//! Invariant: the exchange is called only by the winner of `market_cache::claim`,
//! so however many workers and dashboards ask, an item costs at most one exchange
//! request per refresh period (one per retry pause while the exchange fails).
//!
//! Bound: these fetches run inside HTTP requests on sync workers. A request gives
//! its fetches one deadline, `FETCH_BUDGET` (10 s) from its start: every exchange
//! call is tried once and capped at `rest::MARKET_CALL_CAP` (5 s, or
//! `EXCHANGE_TIMEOUT_MS` when shorter), and none runs past the deadline; a caller
//! waiting for another process's fetch stops waiting there too. So a market-data
//! request answers (the copy it has, or 503) within about 10 s, well inside the
//! worker timeout (30 s), and a claim, held `HOLD_MS` = the budget plus a margin,
//! never lapses while its fetch runs (no second process fetches the same item).

use std::time::{Duration, Instant};

use crate::store::sql::Conn;
use slog::{warn, Logger};

use crate::exchange::ExchangeError;
use crate::store::market_cache::{self, RefreshState, Schedule};
use crate::store::StoreError;

/// How long the exchange calls of one HTTP request may take in all.
pub const FETCH_BUDGET: Duration = Duration::from_secs(10);

/// How long a claim is held: a fetch is over within `FETCH_BUDGET` of the claim,
/// plus a margin for the database writes that follow.
pub const HOLD_MS: i64 = FETCH_BUDGET.as_millis() as i64 + 5_000;

/// How often a caller without a copy polls the cache for another process's fetch.
const POLL: Duration = Duration::from_millis(20);

/// Whether a copy of the item is in the cache after `refresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// Fetched at `fetched_ms` (Unix ms).
    Present { fetched_ms: i64 },
    /// Never fetched, and the fetch failed or did not finish in time.
    Missing,
}

/// Brings `item` up to date when it is due: `fetch` calls the exchange (it may
/// read the cache, e.g. to compare with the old copy), `save` stores the answer
/// (and must mark the item fetched in the same transaction). Failures are logged
/// and leave the old copy; `until` is the request's deadline (`FETCH_BUDGET`).
/// The caller validated `item`: a row is added for it when missing.
pub fn refresh<T>(
    conn: &mut Conn,
    item: &str,
    schedule: Schedule,
    until: Instant,
    log: &Logger,
    fetch: impl FnOnce(&Conn) -> Result<T, ExchangeError>,
    save: impl FnOnce(&mut Conn, T, i64) -> Result<(), StoreError>,
) -> Result<Copy, StoreError> {
    refresh_at(
        conn,
        &crate::store::now_ms,
        item,
        schedule,
        until,
        log,
        fetch,
        save,
    )
}

/// `refresh` on the clock `now` (Unix ms), for tests.
#[allow(clippy::too_many_arguments)]
fn refresh_at<T>(
    conn: &mut Conn,
    now: &dyn Fn() -> i64,
    item: &str,
    schedule: Schedule,
    until: Instant,
    log: &Logger,
    fetch: impl FnOnce(&Conn) -> Result<T, ExchangeError>,
    save: impl FnOnce(&mut Conn, T, i64) -> Result<(), StoreError>,
) -> Result<Copy, StoreError> {
    // A read first: under WAL it takes no lock, and most requests stop here.
    let mut s = match market_cache::state(conn, item)? {
        Some(s) => s,
        None => {
            market_cache::add(conn, item)?;
            RefreshState::default()
        }
    };
    let t = now();
    if market_cache::due(&s, t, schedule) {
        if market_cache::claim(conn, item, t, schedule)? {
            match fetch(conn) {
                Ok(v) => save(conn, v, now())?,
                Err(e) => {
                    warn!(log, "market data refresh failed; serving the previous copy";
                          "item" => item, "error" => %e);
                    crate::metrics::market_refresh_failed();
                    market_cache::failed(conn, item, now())?;
                }
            }
        }
        // Read again whether the claim was won or lost: a lost claim means another
        // process took it since the first read, and without its hold in `s` the
        // wait below would give up at once instead of waiting for that fetch.
        s = market_cache::state(conn, item)?.unwrap_or_default();
    }
    loop {
        if s.fetched_ms > 0 {
            return Ok(Copy::Present {
                fetched_ms: s.fetched_ms,
            });
        }
        // Nobody is fetching (the last try failed): nothing to wait for.
        if s.claimed_until_ms <= now() || Instant::now() >= until {
            return Ok(Copy::Missing);
        }
        std::thread::sleep(POLL);
        s = market_cache::state(conn, item)?.unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn db() -> crate::store::testing::TestDb {
        crate::store::testing::migrated()
    }

    const S: Schedule = Schedule {
        period_ms: 5_000,
        retry_ms: 60_000,
        hold_ms: HOLD_MS,
    };

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    /// One `refresh` at `t` whose fetch answers `answer`; whether it fetched.
    fn run(c: &mut Conn, t: i64, answer: Result<(), ExchangeError>) -> (bool, Copy) {
        let called = Cell::new(false);
        let copy = refresh_at(
            c,
            &|| t,
            "candles:bybit:BTC/USDT:1m",
            S,
            Instant::now(),
            &log(),
            |_| {
                called.set(true);
                answer
            },
            |c, _, now| {
                c.execute(
                    "UPDATE market_refresh SET fetched_ms = ?1, claimed_until_ms = 0",
                    [now],
                )?;
                Ok(())
            },
        )
        .unwrap();
        (called.get(), copy)
    }

    /// A Unix time in ms (the columns start at 0, the epoch).
    const T: i64 = 1_700_000_000_000;

    #[test]
    fn of_two_claimers_one_wins_and_an_expired_hold_frees_the_item() {
        let c = db();
        let item = "catalogue:bybit";
        market_cache::add(&c, item).unwrap();
        assert!(market_cache::claim(&c, item, T, S).unwrap());
        assert!(!market_cache::claim(&c, item, T + 1, S).unwrap());
        // The claimant died: once its hold is over, another process may fetch.
        assert!(!market_cache::claim(&c, item, T + HOLD_MS - 1, S).unwrap());
        assert!(market_cache::claim(&c, item, T + HOLD_MS, S).unwrap());
        // No row, no claim: items are added only once validated.
        assert!(!market_cache::claim(&c, "catalogue:ftx", T, S).unwrap());
    }

    #[test]
    fn an_item_is_due_after_its_period_and_after_the_retry_pause() {
        let fresh = RefreshState {
            fetched_ms: T,
            failed_ms: 0,
            claimed_until_ms: 0,
        };
        assert!(!market_cache::due(&fresh, T + 4_999, S));
        assert!(market_cache::due(&fresh, T + 5_000, S));
        let failed = RefreshState {
            failed_ms: T + 10_000,
            ..fresh
        };
        assert!(!market_cache::due(&failed, T + 69_999, S));
        assert!(market_cache::due(&failed, T + 70_000, S));
        let held = RefreshState {
            claimed_until_ms: T + 30_000,
            ..fresh
        };
        assert!(!market_cache::due(&held, T + 29_999, S));
        assert!(market_cache::due(&held, T + 30_000, S));
    }

    #[test]
    fn refresh_fetches_once_per_period_and_waits_out_the_pause_after_a_failure() {
        let mut c = db();
        assert_eq!(
            run(&mut c, T, Ok(())),
            (true, Copy::Present { fetched_ms: T })
        );
        // Within the period: the copy, no call.
        assert!(!run(&mut c, T + 4_999, Ok(())).0);
        // Due: the call fails, the old copy stays.
        let down = Err(ExchangeError::Network("down".into()));
        assert_eq!(
            run(&mut c, T + 5_000, down.clone()),
            (true, Copy::Present { fetched_ms: T })
        );
        // Past the period but inside the minute's pause: no call.
        assert!(!run(&mut c, T + 10_000, down.clone()).0);
        assert!(!run(&mut c, T + 64_999, down).0);
        assert!(run(&mut c, T + 65_000, Ok(())).0);
    }

    #[test]
    fn a_failed_first_fetch_is_missing_and_nothing_waits_for_it() {
        let mut c = db();
        let t = Instant::now();
        let far = Instant::now() + Duration::from_secs(30);
        let copy = refresh_at(
            &mut c,
            &|| T,
            "catalogue:bingx",
            S,
            far,
            &log(),
            |_| Err::<(), _>(ExchangeError::Network("down".into())),
            |_, _, _| Ok(()),
        )
        .unwrap();
        assert_eq!(copy, Copy::Missing);
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_caller_that_loses_the_claim_waits_for_the_winners_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let mut c = Conn::open(&path).unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        let other = Conn::open(&path).unwrap();
        let item = "candles:bybit:BTC/USDT:1m";
        let calls = Cell::new(0);
        // The clock is read first just before the claim: there the other process
        // claims the item; on a later read (while this caller waits) it saves.
        let now = || {
            calls.set(calls.get() + 1);
            match calls.get() {
                1 => assert!(market_cache::claim(&other, item, T, S).unwrap()),
                3 => {
                    other
                        .execute(
                            "UPDATE market_refresh SET fetched_ms = ?1, claimed_until_ms = 0",
                            [T + 1],
                        )
                        .unwrap();
                }
                _ => {}
            }
            T + 1
        };
        let copy = refresh_at(
            &mut c,
            &now,
            item,
            S,
            Instant::now() + Duration::from_secs(30),
            &log(),
            |_| -> Result<(), ExchangeError> { panic!("the claim was lost: no fetch") },
            |_, _, _| Ok(()),
        )
        .unwrap();
        assert_eq!(copy, Copy::Present { fetched_ms: T + 1 });
    }

    #[test]
    fn a_reader_that_finds_nothing_due_writes_nothing() {
        let mut c = db();
        run(&mut c, T, Ok(()));
        let changes = writes(&c);
        for t in [T + 1, T + 1_000, T + 4_000] {
            run(&mut c, t, Ok(()));
        }
        assert_eq!(writes(&c), changes);
    }

    /// What changes with any write: SQLite's count of changed rows; on PostgreSQL
    /// the rows' `xmin`, the transaction that last wrote each.
    fn writes(c: &Conn) -> String {
        match c.sqlite() {
            Some(c) => c.total_changes().to_string(),
            None => c
                .query_row(
                    "SELECT STRING_AGG(item || ':' || xmin::text, ' ' ORDER BY item)
                     FROM market_refresh",
                    (),
                    |r| r.get::<_, String>(0),
                )
                .unwrap(),
        }
    }

    #[test]
    fn candles_nobody_reads_are_swept_when_others_are_fetched() {
        use crate::market::candles::Candle;
        use rust_decimal::Decimal;
        let mut c = db();
        let one = [Candle {
            start_ms: 0,
            open: Decimal::ONE,
            high: Decimal::ONE,
            low: Decimal::ONE,
            close: Decimal::ONE,
            volume: Decimal::ZERO,
        }];
        let hour = 3_600_000;
        for (sym, t) in [("ETH/USDT", T), ("BTC/USDT", T + hour)] {
            let item = format!("candles:bybit:{sym}:1m");
            market_cache::add(&c, &item).unwrap();
            assert!(market_cache::claim(&c, &item, t, S).unwrap());
            let key = ("bybit", sym, "1m");
            market_cache::save_candles(&mut c, &item, key, &one, t, t - hour + 1).unwrap();
        }
        // ETH was last read an hour before BTC's fetch: gone, rows and candles.
        assert!(market_cache::state(&c, "candles:bybit:ETH/USDT:1m")
            .unwrap()
            .is_none());
        assert!(market_cache::candles(&c, ("bybit", "ETH/USDT", "1m"))
            .unwrap()
            .is_none());
        assert!(market_cache::candles(&c, ("bybit", "BTC/USDT", "1m"))
            .unwrap()
            .is_some());
    }
}
