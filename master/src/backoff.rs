//! Exponential back-off for children that fail to boot.
//!
//! Invariant: after k consecutive boot failures the next spawn waits
//! min(2^(k-1), 60) seconds; one successful boot resets the count. This keeps a broken
//! deployment from becoming a tight fork loop while a healthy one respawns at once.

use std::time::{Duration, Instant};

const MAX_DELAY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    /// Records a boot failure and returns the delay before the next attempt.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = delay_for(self.failures);
        self.not_before = Some(now + delay);
        delay
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.not_before = None;
    }

    pub fn may_spawn(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// Time left before spawning is allowed again (for the master's poll timeout).
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.not_before.map(|t| t.saturating_duration_since(now))
    }
}

fn delay_for(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(6);
    Duration::from_secs(secs).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_a_minute() {
        let got: Vec<u64> = (1..=9).map(|k| delay_for(k).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn success_resets() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert!(b.may_spawn(now));
        b.failed(now);
        b.failed(now);
        assert!(!b.may_spawn(now));
        assert_eq!(b.remaining(now), Some(Duration::from_secs(2)));
        b.succeeded();
        assert!(b.may_spawn(now));
        assert_eq!(b.failed(now), Duration::from_secs(1));
    }
}
