//! Step pools per exchange. A step against a real exchange blocks on HTTPS for
//! up to the exchange timeout (and its retries); if every bot shared one pool, a
//! silent exchange would hold all its threads and stop every other user's bot,
//! stop-losses included (one bot's failure must never affect another's). Each
//! real exchange gets its own threads; paper bots and housekeeping keep theirs.

use std::collections::HashMap;

use crate::store::sql::Conn;

use super::pool::Pool;

/// Threads for paper bots and housekeeping (the paper exchange never blocks).
/// Their work is bound by the database's one write lock, so on 2 cores more
/// threads only take turns at it: a resume of 20,000 paper bots
/// (tests/bots_scale.rs) took 17.2 s with 2 against 19.4 s with 4 (one run each).
const PAPER_THREADS: usize = 2;
/// Threads per real exchange: that many of its calls may wait at once. 8
/// held fills back behind steps waiting for the request budget at 1,000 Bybit
/// bots; 32 (each with its database connection) slowed the resume of 5,000
/// paper bots from 12 s to over 20 s (tests/bots_scale.rs).
const REMOTE_THREADS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Paper,
    Bybit,
    Bingx,
}

pub struct Lanes {
    paper: Pool,
    bybit: Pool,
    bingx: Pool,
    /// Each bot's lane for its current run (generation); a new run re-reads it.
    known: HashMap<i64, (u64, Lane)>,
}

impl Lanes {
    pub fn start(db: crate::store::Engine) -> std::io::Result<Lanes> {
        let open = move || crate::store::connect_unmapped(&db).map_err(std::io::Error::other);
        let open2 = open.clone();
        let open3 = open.clone();
        Ok(Lanes {
            paper: Pool::start(PAPER_THREADS, open)?,
            bybit: Pool::start(REMOTE_THREADS, open2)?,
            bingx: Pool::start(REMOTE_THREADS, open3)?,
            known: HashMap::new(),
        })
    }

    /// For work that is not a bot's step (consistency checks).
    pub fn housekeeping(&self) -> &Pool {
        &self.paper
    }

    /// The pool for a step of bot `bot_id` in run `generation` (0: a resume).
    pub fn for_bot(&mut self, conn: &Conn, bot_id: i64, generation: u64) -> &Pool {
        let lane = match self.known.get(&bot_id) {
            Some((g, lane)) if *g == generation && generation != 0 => *lane,
            _ => {
                let lane = lane_of(conn, bot_id);
                self.known.insert(bot_id, (generation, lane));
                lane
            }
        };
        self.pool(lane)
    }

    /// The pool for the resume of bot `bot_id` configured for `exchange` (read
    /// with the list of bots to resume, not one query per bot).
    pub fn for_resume(&mut self, bot_id: i64, exchange: &str) -> &Pool {
        let lane = lane_named(Some(exchange));
        self.known.insert(bot_id, (0, lane));
        self.pool(lane)
    }

    fn pool(&self, lane: Lane) -> &Pool {
        match lane {
            Lane::Paper => &self.paper,
            Lane::Bybit => &self.bybit,
            Lane::Bingx => &self.bingx,
        }
    }

    /// Lets queued jobs finish, then joins every thread.
    pub fn shutdown(self) {
        self.paper.shutdown();
        self.bybit.shutdown();
        self.bingx.shutdown();
    }
}

/// The exchange a bot is configured for; unknown or unreadable → paper's pool,
/// where the start itself reports the problem.
fn lane_of(conn: &Conn, bot_id: i64) -> Lane {
    let exchange = crate::store::bot_config::market(conn, bot_id)
        .ok()
        .flatten()
        .map(|m| m.exchange);
    lane_named(exchange.as_deref())
}

/// The lane of a bot configured for `exchange` (`None`: unknown).
fn lane_named(exchange: Option<&str>) -> Lane {
    match exchange {
        Some("bybit") => Lane::Bybit,
        Some("bingx") => Lane::Bingx,
        _ => Lane::Paper,
    }
}
