//! Polling while account streams are down, paced to the request budget.
//!
//! A stream is down while it connects, backs off after a failure, or waits for
//! a connect slot (`pace`: 400 connects per 5 minutes per egress, so a thousand
//! accounts wait minutes for theirs). Its bots then read REST — but not on every
//! step: all the down accounts of an exchange share `POLL_SHARE_PERCENT` of the
//! runner's budget, so each account's open orders and position are read again
//! only after `interval_ms`, and in between the bots work from that read plus
//! their own actions. Polling then never crowds out orders, a start's reads or a
//! new stream's first snapshot, however many streams are down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::exchange::rest::budget::Limit;

/// The part of the runner's budget that polling accounts share.
const POLL_SHARE_PERCENT: u64 = 30;
/// The REST reads of one poll: open orders and the position.
const READS_PER_POLL: u64 = 2;
/// However few accounts are down, a poll is not repeated sooner (the bots'
/// tick).
const MIN_INTERVAL_MS: i64 = 1_000;

/// One exchange's polling pace.
#[derive(Debug)]
pub struct PollPace {
    /// Accounts whose stream is down now (the event loop counts them).
    down: AtomicU64,
    /// The runner's budget for the exchange.
    limit: Limit,
}

impl PollPace {
    pub fn new(limit: Limit) -> PollPace {
        PollPace {
            down: AtomicU64::new(0),
            limit,
        }
    }

    pub fn set_down(&self, accounts: u64) {
        self.down.store(accounts, Ordering::Relaxed);
    }

    /// How long a down account's last REST read serves its bots.
    pub fn interval_ms(&self) -> i64 {
        let down = self.down.load(Ordering::Relaxed);
        let per_ms = self.limit.per.as_millis() as u64;
        let reads = (u64::from(self.limit.requests) * POLL_SHARE_PERCENT / 100).max(1);
        // `down` polls of READS_PER_POLL reads fit in `per` at `reads` a window.
        let ms = down
            .saturating_mul(READS_PER_POLL)
            .saturating_mul(per_ms)
            .div_ceil(reads);
        // No upper bound: more polling would only be refused by the budget.
        i64::try_from(ms).unwrap_or(i64::MAX).max(MIN_INTERVAL_MS)
    }
}

/// The polling paces of both exchanges.
#[derive(Debug, Clone)]
pub struct Paces {
    pub bybit: Arc<PollPace>,
    pub bingx: Arc<PollPace>,
}

impl Paces {
    /// From the runner's budgets: Bybit's, and BingX's for account endpoints.
    pub fn new(bybit: Limit, bingx: Limit) -> Paces {
        Paces {
            bybit: Arc::new(PollPace::new(bybit)),
            bingx: Arc::new(PollPace::new(bingx)),
        }
    }

    pub fn of(&self, exchange: &str) -> Option<&Arc<PollPace>> {
        match exchange {
            "bybit" => Some(&self.bybit),
            "bingx" => Some(&self.bingx),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn runner_bybit() -> PollPace {
        PollPace::new(Limit {
            requests: 400,
            per: Duration::from_secs(5),
        })
    }

    #[test]
    fn the_interval_grows_with_the_accounts_down_within_bounds() {
        let p = runner_bybit();
        assert_eq!(p.interval_ms(), MIN_INTERVAL_MS);
        p.set_down(6);
        assert_eq!(p.interval_ms(), MIN_INTERVAL_MS);
        // 600 accounts × 2 reads in 120 reads per 5 s: one poll each 50 s.
        p.set_down(600);
        assert_eq!(p.interval_ms(), 50_000);
        p.set_down(10_000);
        assert_eq!(p.interval_ms(), 833_334);
    }

    #[test]
    fn polling_stays_within_its_share_of_the_budget() {
        let p = runner_bybit();
        for down in [1u64, 50, 120, 600, 1_000] {
            p.set_down(down);
            let per_5s = down as f64 * 2.0 * 5_000.0 / p.interval_ms() as f64;
            assert!(
                per_5s <= 120.0 + 1e-9,
                "{down} down: {per_5s} reads per 5 s"
            );
        }
    }
}
