//! The built-in paper exchange: a simulated USDT-perpetual exchange shared by
//! every user of the instance.
//!
//! Prices follow a seeded random walk per symbol (`walk`) or a replayed file
//! (`replay`, moved in `prices`); resting limit orders fill when a price step's path
//! crosses them (`matching`), stops execute when the mark reaches their trigger
//! (`stops`), every fill is kept (`fills`), positions are hedge-mode with an average
//! entry, and every account starts with 10,000 USDT.
//!
//! State lives in memory behind one mutex (`book`) and is written through to SQLite
//! (`persist`) before any call returns, in one transaction per call: a crash after a
//! call returned loses nothing, and `Paper::open` on the same database resumes the
//! same markets, orders and positions. The database is the truth; if a write fails,
//! memory is rebuilt from it (a pure read, which another connection's write lock
//! does not block) so the two never disagree, and until that rebuild succeeds
//! every call fails with a retryable error rather than act on memory the database
//! never saw: a retried order is then placed once, never on top of a phantom.

mod account;
mod book;
mod candles;
mod fills;
pub mod funding;
pub mod liquidation;
pub(crate) mod listings;
mod live;
mod live_listing;
mod manual;
mod markets;
mod matching;
mod persist;
mod prices;
pub mod replay;
pub mod snapshot;
mod stops;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cluster;
#[cfg(test)]
mod tests_live;
#[cfg(test)]
mod tests_market;
#[cfg(test)]
mod tests_storage;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::sql::Conn;

pub use account::PaperAccount;
use book::{Book, Dirty};
use replay::PaperPrices;
use rust_decimal::Decimal;
pub use walk::default_volatility;
use walk::Walk;

use crate::exchange::ExchangeError;
use crate::market::Venue;

/// The `PAPER_*` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperParams {
    /// Milliseconds per random-walk step.
    pub tick_ms: u64,
    /// Standard deviation of one step's relative price move (0.001 = 0.1 %).
    pub volatility: f64,
    /// Seed of the walk; `None` draws one from the OS (not reproducible).
    pub seed: Option<u64>,
    /// Funding rate of each 8-hour settlement without a live one
    /// (`PAPER_FUNDING_RATE`).
    pub funding_rate: Decimal,
}

/// `PAPER_FUNDING_RATE` unset: 0.01 % per 8 hours, the usual base rate.
pub const DEFAULT_FUNDING_RATE: Decimal = Decimal::from_parts(1, 0, 0, false, 4);

/// What a live `PAPER_PRICES` reads its quotes from (FEED's price board).
pub type Quotes = Option<Arc<dyn crate::market::QuoteSource>>;

#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    #[error("paper exchange database: {0}")]
    Db(#[from] crate::store::SqlError),
    #[error("paper exchange: the database holds an invalid {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
    #[error("paper exchange: cannot draw a random seed: {0}")]
    Seed(getrandom::Error),
    #[error("paper exchange: invalid price {0}")]
    InvalidPrice(Decimal),
    #[error("paper exchange: live prices from {0:?} need a quote source (the price board)")]
    NoQuoteSource(Venue),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

impl From<PaperError> for ExchangeError {
    /// The database busy (another connection holds the write lock) or failing
    /// I/O is transient: reported as the exchange unreachable, which the bot
    /// retries. What no retry can fix is fatal: a database holding garbage
    /// (`Malformed`), a refused price or a violated constraint (`Rejected`).
    fn from(e: PaperError) -> ExchangeError {
        let said = e.to_string();
        match e {
            PaperError::Exchange(e) => e,
            PaperError::Db(db) if db.is_transient() => ExchangeError::Network(said),
            PaperError::Db(db) if db.is_constraint() => ExchangeError::Rejected(said),
            PaperError::Db(_) | PaperError::Corrupt { .. } => ExchangeError::Malformed(said),
            PaperError::InvalidPrice(_) => ExchangeError::Rejected(said),
            PaperError::NoQuoteSource(_) => ExchangeError::Malformed(said),
            PaperError::Seed(_) => ExchangeError::Network(said),
        }
    }
}

/// The exchange: shared by every account through `Arc<Paper>`.
pub struct Paper {
    inner: Mutex<Inner>,
}

struct Inner {
    book: Book,
    conn: Conn,
    /// Memory may be ahead of the database (a write failed and the reload too):
    /// nothing uses it until a reload succeeds.
    stale: bool,
    /// In a cluster, the users whose accounts this instance drives (their lease
    /// holder); `None`: every account (a single host).
    owned: Option<HashSet<i64>>,
    /// In a cluster, the end (exclusive) of the block of order ids this instance
    /// took from the shared counter; `None`: ids from memory (a single host).
    id_limit: Option<i64>,
}

/// Order ids taken from the shared counter at once, in a cluster.
const ID_BLOCK: i64 = 1000;
/// A call may create a few orders (a place, liquidations): a new block is taken
/// before fewer than this many ids are left.
const ID_MARGIN: i64 = 100;

impl Inner {
    /// Rebuilds the book from the database; only reads.
    fn reload(&mut self) -> Result<(), PaperError> {
        let b = &self.book;
        let (replay, live, rate) = (b.replay.clone(), b.live.clone(), b.funding_rate);
        let clock = (b.tick_ms, b.clock_ms, b.epoch_ms);
        self.book = persist::load(&self.conn, b.walk, clock, live, self.owned.as_ref())?;
        self.book.replay = replay;
        self.book.funding_rate = rate;
        self.stale = false;
        // The loaded next id is past every block taken so far: take a new one.
        if self.id_limit.is_some() {
            self.id_limit = Some(0);
        }
        Ok(())
    }

    /// In a cluster, makes sure the next order ids are this instance's own: a
    /// block of `ID_BLOCK` from `paper_clock.last_order_id`, which every instance
    /// advances in one statement, so two hosts never give one id.
    fn reserve_ids(&mut self) -> Result<(), PaperError> {
        let Some(limit) = self.id_limit else {
            return Ok(());
        };
        if self.book.next_id + ID_MARGIN <= limit {
            return Ok(());
        }
        let end: i64 = self.conn.query_row(
            "UPDATE paper_clock SET last_order_id = last_order_id + ?1 WHERE id = 1
             RETURNING last_order_id",
            [ID_BLOCK],
            |r| r.get(0),
        )?;
        self.book.next_id = end - ID_BLOCK + 1;
        self.id_limit = Some(end + 1);
        Ok(())
    }
}

impl Paper {
    /// Loads persisted markets, accounts, positions and open orders from the
    /// (already migrated) database; every price walks.
    pub fn open(conn: Conn, params: PaperParams, now_ms: i64) -> Result<Arc<Paper>, PaperError> {
        Paper::open_with(conn, params, &PaperPrices::Walk, None, now_ms)
    }

    /// As `open`, with prices from `prices` (`PAPER_PRICES`): live ones read from
    /// `quotes` (a live setting without a source is an error, never a silent
    /// walk). The epoch replayed times
    /// count from is the database's, set to `now_ms` if it has none yet.
    pub fn open_with(
        conn: Conn,
        params: PaperParams,
        prices: &PaperPrices,
        quotes: Quotes,
        now_ms: i64,
    ) -> Result<Arc<Paper>, PaperError> {
        let seed = match params.seed {
            Some(seed) => seed,
            None => random_seed()?,
        };
        let walk = Walk::new(seed, params.volatility);
        let epoch_ms = persist::init_epoch(&conn, now_ms)?;
        persist::init_funding(&conn, now_ms)?;
        let live = match (prices, quotes) {
            (PaperPrices::Live(venue), Some(source)) => Some(live::Live {
                venue: *venue,
                source,
                log: slog::Logger::root(slog::Discard, slog::o!()),
            }),
            (PaperPrices::Live(venue), None) => return Err(PaperError::NoQuoteSource(*venue)),
            _ => None,
        };
        let clock = (params.tick_ms, now_ms, epoch_ms);
        let mut book = persist::load(&conn, walk, clock, live, None)?;
        book.funding_rate = params.funding_rate;
        if let PaperPrices::Replay(replay) = prices {
            book.replay = Some(replay.clone());
        }
        if let Some(live) = &book.live {
            for m in &book.markets {
                live.want(&m.symbol);
            }
        }
        Ok(Arc::new(Paper {
            inner: Mutex::new(Inner {
                book,
                conn,
                stale: false,
                owned: None,
                id_limit: None,
            }),
        }))
    }

    /// An in-memory database with the whole schema applied, for tests and
    /// simulations. Its accounts have no `user` rows, so foreign keys are switched
    /// off (the bundled SQLite enforces them by default).
    pub fn in_memory(params: PaperParams, now_ms: i64) -> Result<Arc<Paper>, PaperError> {
        Paper::in_memory_with(params, &PaperPrices::Walk, None, now_ms)
    }

    /// `in_memory` with prices from `prices` (live ones from `quotes`).
    pub fn in_memory_with(
        params: PaperParams,
        prices: &PaperPrices,
        quotes: Quotes,
        now_ms: i64,
    ) -> Result<Arc<Paper>, PaperError> {
        let mut conn = Conn::open_in_memory()?;
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        crate::store::migrate::migrate(&mut conn).map_err(|e| match e {
            crate::store::StoreError::Sql(e) => PaperError::Db(e),
            other => PaperError::Corrupt {
                what: "schema",
                value: other.to_string(),
            },
        })?;
        Paper::open_with(conn, params, prices, quotes, now_ms)
    }

    /// Logs what the operator should know of live prices (a market listed
    /// without its venue's catalogue) to `log`; discarded until called.
    pub fn set_log(&self, log: slog::Logger) {
        if let Ok(mut guard) = self.lock() {
            if let Some(live) = &mut guard.book.live {
                live.log = log;
            }
        }
    }

    /// Cluster mode: from now on memory holds, matches and funds only the
    /// accounts of `owned` (the users whose lease this instance holds), reloaded
    /// from the database at the next call (an adopted user's account as its last
    /// holder left it), and order ids come in blocks from the shared counter.
    pub fn partition(&self, owned: HashSet<i64>) {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.owned = Some(owned);
        guard.id_limit = Some(0);
        guard.stale = true;
    }

    /// Whether `user_id`'s account has an open position or a resting order or
    /// stop: what the market still matches, funds or liquidates. In a cluster
    /// the account's lease is kept while it has (an account nobody holds is
    /// matched by nobody).
    pub fn in_use_by(&self, user_id: i64) -> Result<bool, PaperError> {
        self.read(|book, _| {
            Ok(book.accounts.get(&user_id).is_some_and(|a| {
                a.open.values().any(|ids| !ids.is_empty())
                    || a.positions.values().flatten().any(|p| !p.size.is_zero())
            }))
        })
    }

    /// One user's account; implements `crate::exchange::Exchange`.
    pub fn account(self: &Arc<Self>, user_id: i64) -> PaperAccount {
        PaperAccount::new(self.clone(), user_id)
    }

    /// Advances every known symbol's price to `now_ms`: walked ones by the whole
    /// ticks elapsed since their last step (at most 600 per call; a longer gap is
    /// skipped so a long downtime does not stall startup), replayed ones through
    /// every line of the file since their last update, in order. Resting orders are
    /// matched against each price, and it is all persisted in one transaction.
    /// Returns the number of fills.
    pub fn advance(&self, now_ms: i64) -> Result<usize, PaperError> {
        self.mutate(|book, _, dirty| Ok(book.advance(now_ms, dirty)))
    }

    /// Current price of a symbol, if it is listed and priced yet (and the state is
    /// readable).
    pub fn price(&self, symbol: &str) -> Option<Decimal> {
        let guard = self.lock().ok()?;
        let mkt = guard.book.lookup(symbol).ok().flatten()?;
        (!guard.book.unpriced(mkt)).then(|| guard.book.markets[mkt].price)
    }

    /// Sets a symbol's price (rounded to its tick) and matches orders against the
    /// move from the old price, persisted; for tests and demos that need fills to
    /// happen deterministically. Lists the symbol if needed. Returns the fills.
    pub fn set_price(&self, symbol: &str, price: Decimal) -> Result<usize, PaperError> {
        if price <= Decimal::ZERO {
            return Err(PaperError::InvalidPrice(price));
        }
        self.mutate(|book, conn, dirty| {
            let mkt = book.ensure_market(conn, symbol, dirty)?;
            Ok(book.set_price(mkt, price, wall_ms(), dirty))
        })
    }

    /// The state, rebuilt from the database first if a panic or a failed write
    /// may have left memory out of step with it; the rebuild's error (retryable
    /// when the database is busy) while it cannot be rebuilt.
    fn lock(&self) -> Result<MutexGuard<'_, Inner>, PaperError> {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                guard.stale = true;
                self.inner.clear_poison();
                guard
            }
        };
        if guard.stale {
            // Still stale on failure: this call fails, the next one tries again.
            guard.reload()?;
        }
        Ok(guard)
    }

    /// Runs a read against the book and the database.
    fn read<T, E: From<PaperError>>(
        &self,
        f: impl FnOnce(&Book, &Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let guard = self.lock()?;
        f(&guard.book, &guard.conn)
    }

    /// Runs a change against the book, then writes what it dirtied (also when it
    /// failed: validation errors leave nothing dirty but a newly listed market) in
    /// one transaction before returning. A failed write rebuilds memory from the
    /// database, so a caller told "failed" really changed nothing; if even that
    /// fails, the state stays marked stale and `lock` refuses it until it is rebuilt.
    fn mutate<T, E: From<PaperError>>(
        &self,
        f: impl FnOnce(&mut Book, &Conn, &mut Dirty) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        inner.reserve_ids()?;
        let mut dirty = Dirty::default();
        let out = f(&mut inner.book, &inner.conn, &mut dirty);
        if !dirty.is_empty() {
            if let Err(e) = persist::write(&mut inner.conn, &inner.book, &dirty) {
                inner.stale = true;
                let _ = inner.reload();
                return Err(e.into());
            }
        }
        out
    }
}

/// A seed from the OS for `PAPER_SEED` unset.
fn random_seed() -> Result<u64, PaperError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(PaperError::Seed)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Wall-clock time for order timestamps: the bots compare them with their own
/// start time (the safety stop), so they must be real, not walk time.
fn wall_ms() -> i64 {
    crate::store::now_ms()
}
