//! Password hashing's share of a worker. See docs/http-api.md, Accounts.
//!
//! Argon2id costs tens of milliseconds of CPU by design, and a worker runs one
//! handler at a time: so a worker never hashes two passwords at once, and while it
//! hashes every other connection it holds waits, health checks included. What has to
//! be bounded is therefore how much of the worker's *time* hashing takes: without a
//! bound, a flood of logins or registrations from many addresses (each under its own
//! rate limit) keeps every worker hashing back to back and starves everything else.
//!
//! Each worker keeps a leaky bucket of hashing time. A route that hashes (`.hashes()`
//! in the routing table) is admitted while the bucket holds less than `BURST`; the
//! time its handler spent hashing (`auth::password::hashing_time`, measured around
//! each hash, so waits for the database lock are not charged) is then added, and
//! the bucket drains at `SHARE` of wall-clock time. Elapsed time, not CPU time:
//! what other requests wait for is the worker being busy, and with more workers
//! than cores a worker's hash takes longer than its CPU time under exactly the
//! flood this guards against.
//!
//! A person logging in, or a script logging in again and again, stays below that;
//! under a flood a worker hashes at most three quarters of the time after the first
//! `BURST`, and answers its other requests in between, each within about one hash of
//! its turn. (During the burst, a request waits behind at most the hashes of the
//! connections already ahead of it on that worker.) A request beyond the budget is answered 503
//! with `Retry-After` at once: waiting inside the worker would hold up its other
//! connections as much as the hash itself. Requests queue in front of the budget on
//! the worker's connections, as every request does.

use std::time::{Duration, Instant};

/// The part of a worker's time that hashing may take, sustained: the rest is left
/// for other requests.
const SHARE: f64 = 0.75;
/// Hashing debt a worker may build up before it refuses: eight seconds of hashing
/// back to back, or about two hundred logins of one client in a row (fifty on a
/// machine so busy that each takes four times as long).
const BURST: Duration = Duration::from_secs(2);

pub struct HashBudget {
    /// Recent hashing time not yet drained, as of `at`.
    debt: Duration,
    at: Instant,
}

impl Default for HashBudget {
    fn default() -> Self {
        HashBudget::new(Instant::now())
    }
}

impl HashBudget {
    fn new(now: Instant) -> HashBudget {
        HashBudget {
            debt: Duration::ZERO,
            at: now,
        }
    }

    fn drain(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        self.debt = self.debt.saturating_sub(elapsed.mul_f64(SHARE));
        self.at = now;
    }

    /// Whether a hashing request may run now; otherwise the whole seconds until one
    /// may.
    pub fn admit(&mut self) -> Result<(), u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&mut self, now: Instant) -> Result<(), u64> {
        self.drain(now);
        if self.debt < BURST {
            return Ok(());
        }
        let wait = (self.debt - BURST).div_f64(SHARE);
        Err((wait.as_millis() as u64).div_ceil(1000).max(1))
    }

    /// Charges a hashing request's time (after its handler returned).
    pub fn spent(&mut self, took: Duration) {
        self.spent_at(took, Instant::now());
    }

    fn spent_at(&mut self, took: Duration, now: Instant) {
        self.drain(now);
        self.debt += took;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: Duration = Duration::from_millis(40);

    /// Hashes back to back: a burst, then refusals until the bucket drained.
    #[test]
    fn a_burst_then_refusals() {
        let t0 = Instant::now();
        let mut b = HashBudget::new(t0);
        let mut now = t0;
        let mut admitted = 0;
        while b.admit_at(now).is_ok() {
            now += HASH;
            b.spent_at(HASH, now);
            admitted += 1;
            assert!(admitted < 1000, "never refused");
        }
        // 2 s of debt at 10 ms net per hash (the first one's 40 ms included).
        assert_eq!(admitted, 197);
        assert_eq!(b.admit_at(now), Err(1));
        // Once the bucket drained below the burst, the next one runs.
        assert!(b.admit_at(now + HASH).is_ok());
    }

    /// Over a long flood, hashing takes about three quarters of the time.
    #[test]
    fn sustained_share() {
        let t0 = Instant::now();
        let mut b = HashBudget::new(t0);
        let (mut now, mut busy) = (t0, Duration::ZERO);
        let step = Duration::from_millis(1);
        while now < t0 + Duration::from_secs(600) {
            if b.admit_at(now).is_ok() {
                now += HASH;
                busy += HASH;
                b.spent_at(HASH, now);
            } else {
                now += step;
            }
        }
        let share = busy.as_secs_f64() / 600.0;
        assert!((0.74..0.77).contains(&share), "{share}");
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        let t0 = Instant::now();
        let mut b = HashBudget::new(t0);
        b.spent_at(Duration::from_secs(5), t0);
        // 3 s over the burst, draining at three quarters of the time: 4 s.
        assert_eq!(b.admit_at(t0), Err(4));
    }
}
