//! Reconnect delays: exponential from half a second, capped, with jitter so that
//! instances restarted together do not reconnect in step.

pub struct Backoff {
    first_ms: i64,
    cap_ms: i64,
    failures: u32,
    /// xorshift state for the jitter (no need for a cryptographic source).
    rng: u64,
}

impl Backoff {
    pub fn new(first_ms: i64, cap_ms: i64, seed: u64) -> Backoff {
        Backoff {
            first_ms: first_ms.max(1),
            cap_ms: cap_ms.max(first_ms.max(1)),
            failures: 0,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt after one more failure: the nominal
    /// delay (first × 2^failures, at most the cap) minus up to a quarter of it.
    pub fn next_delay_ms(&mut self) -> i64 {
        let nominal = (self.first_ms << self.failures.min(20)).min(self.cap_ms);
        self.failures = self.failures.saturating_add(1);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = (self.rng % (nominal as u64 / 4 + 1)) as i64;
        nominal - jitter
    }

    /// The stream delivered again: the next failure starts from the first delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::new(500, 30_000, 42);
        let delays: Vec<i64> = (0..10).map(|_| b.next_delay_ms()).collect();
        let nominal = [
            500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000,
        ];
        for (d, n) in delays.iter().zip(nominal) {
            assert!(*d <= n && *d >= n - n / 4, "{d} vs nominal {n}");
        }
        b.reset();
        assert!(b.next_delay_ms() <= 500);
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let a: Vec<i64> = {
            let mut b = Backoff::new(500, 30_000, 1);
            (0..8).map(|_| b.next_delay_ms()).collect()
        };
        let c: Vec<i64> = {
            let mut b = Backoff::new(500, 30_000, 99);
            (0..8).map(|_| b.next_delay_ms()).collect()
        };
        assert_ne!(a, c);
    }
}
