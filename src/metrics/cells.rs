//! Per-process value cells: each process (scoreboard slot, plus the master) writes
//! only its own slot, so increments are uncontended; a scrape sums the slots. When
//! a process ends, the master folds its counters and histograms into the retired
//! slot before the slot is reused, under a sequence lock, so that a scrape never
//! sees them twice or not at all: counters never go down while the master lives.

use std::sync::atomic::{AtomicU64, Ordering};

use super::families::{stat, BUCKETS};
use super::segment::{HIST_CAP, HIST_WORDS, HOT_CAP, RETIRED_SLOT, SLOT_WORDS, STATIC_CAP};

const HIST_AT: usize = HOT_CAP;
const STATIC_AT: usize = HOT_CAP + HIST_CAP * HIST_WORDS;
/// Histogram words: seq, buckets (12), count, sum.
const H_BUCKETS: usize = 1;
pub const N_BUCKETS: usize = BUCKETS.len() + 1;
const H_COUNT: usize = H_BUCKETS + N_BUCKETS;
const H_SUM: usize = H_COUNT + 1;

/// The longest a reader waits for a writer to finish (a write takes nanoseconds;
/// only a writer descheduled or stopped mid-write is waited for).
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Spins briefly, then yields the CPU to the writer being waited for.
pub fn back_off(tries: &mut u32) {
    *tries += 1;
    if *tries < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

pub struct Cells {
    words: &'static [AtomicU64],
}

/// One histogram as read: per-bucket (not cumulative) counts, count, sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistValue {
    pub buckets: [u64; N_BUCKETS],
    pub count: u64,
    pub sum: f64,
}

impl HistValue {
    pub fn add(&mut self, other: &HistValue) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

impl Cells {
    pub fn new(words: &'static [AtomicU64]) -> Cells {
        Cells { words }
    }

    fn slot(&self, s: usize) -> &'static [AtomicU64] {
        &self.words[s * SLOT_WORDS..(s + 1) * SLOT_WORDS]
    }

    pub fn counter(&self, s: usize, i: usize) -> &'static AtomicU64 {
        &self.slot(s)[i]
    }

    pub fn stat(&self, s: usize, i: usize) -> &'static AtomicU64 {
        &self.slot(s)[STATIC_AT + i.min(STATIC_CAP - 1)]
    }

    fn hist(&self, s: usize, i: usize) -> &'static [AtomicU64] {
        &self.slot(s)[HIST_AT + i * HIST_WORDS..HIST_AT + (i + 1) * HIST_WORDS]
    }

    /// Records one observation in slot `s`'s histogram `i`. The sequence word is
    /// odd while the cells change, so a reader never takes a torn histogram.
    pub fn observe(&self, s: usize, i: usize, value: f64) {
        let h = self.hist(s, i);
        let seq = loop {
            let seq = h[0].load(Ordering::Relaxed);
            if seq & 1 == 0
                && h[0]
                    .compare_exchange_weak(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                break seq;
            }
            std::hint::spin_loop();
        };
        std::sync::atomic::fence(Ordering::Release);
        let b = BUCKETS
            .iter()
            .position(|le| value <= *le)
            .unwrap_or(BUCKETS.len());
        h[H_BUCKETS + b].fetch_add(1, Ordering::Relaxed);
        h[H_COUNT].fetch_add(1, Ordering::Relaxed);
        let sum = f64::from_bits(h[H_SUM].load(Ordering::Relaxed)) + value;
        h[H_SUM].store(sum.to_bits(), Ordering::Relaxed);
        h[0].store(seq + 2, Ordering::Release);
    }

    /// Slot `s`'s histogram `i`, consistent (retries while a write is under way;
    /// a writer that died mid-write cannot hold it up for long).
    pub fn read_hist(&self, s: usize, i: usize) -> HistValue {
        let h = self.hist(s, i);
        let started = std::time::Instant::now();
        let mut tries = 0;
        loop {
            let before = h[0].load(Ordering::Acquire);
            let v = read_words(h);
            std::sync::atomic::fence(Ordering::Acquire);
            let stable = before & 1 == 0 && h[0].load(Ordering::Relaxed) == before;
            // A writer that died mid-write leaves the word odd until the master
            // folds its slot: then take the counts as they are, made consistent.
            if stable || started.elapsed() >= MAX_WAIT {
                return if stable { v } else { consistent(v) };
            }
            back_off(&mut tries);
        }
    }

    /// Master, for a process that ended in slot `s`: adds its counters and
    /// histograms to the retired slot and zeroes the slot for its next occupant.
    /// Only the series in use (`hot`, `hist`: registry indices) are visited.
    pub fn fold(
        &self,
        s: usize,
        hot: impl Iterator<Item = usize>,
        hist: impl Iterator<Item = usize>,
    ) {
        let (from, to) = (self.slot(s), self.slot(RETIRED_SLOT));
        for i in hot {
            to[i].fetch_add(from[i].swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
        for i in hist {
            let h = self.hist(s, i);
            let mut v = read_words(h);
            if h[0].load(Ordering::Relaxed) & 1 == 1 {
                v = consistent(v); // the process died mid-write
            }
            let r = self.hist(RETIRED_SLOT, i);
            for (k, n) in v.buckets.iter().enumerate() {
                r[H_BUCKETS + k].fetch_add(*n, Ordering::Relaxed);
            }
            r[H_COUNT].fetch_add(v.count, Ordering::Relaxed);
            let sum = f64::from_bits(r[H_SUM].load(Ordering::Relaxed)) + v.sum;
            r[H_SUM].store(sum.to_bits(), Ordering::Relaxed);
            for w in self.hist(s, i) {
                w.store(0, Ordering::Relaxed);
            }
        }
        for i in 0..STATIC_CAP {
            let v = self.stat(s, i).swap(0, Ordering::Relaxed);
            if !stat::NOT_COUNTERS.contains(&i) {
                self.stat(RETIRED_SLOT, i).fetch_add(v, Ordering::Relaxed);
            }
        }
    }
}

/// A histogram whose write was cut short: the bucket is written first, so the
/// buckets are the truth and the count follows them.
fn consistent(mut v: HistValue) -> HistValue {
    v.count = v.buckets.iter().sum();
    v
}

fn read_words(h: &[AtomicU64]) -> HistValue {
    let mut v = HistValue::default();
    for (k, b) in v.buckets.iter_mut().enumerate() {
        *b = h[H_BUCKETS + k].load(Ordering::Relaxed);
    }
    v.count = h[H_COUNT].load(Ordering::Relaxed);
    v.sum = f64::from_bits(h[H_SUM].load(Ordering::Relaxed));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::segment::SLOTS;

    fn cells() -> Cells {
        let words: Vec<AtomicU64> = (0..SLOTS * SLOT_WORDS).map(|_| AtomicU64::new(0)).collect();
        Cells::new(Box::leak(words.into_boxed_slice()))
    }

    #[test]
    fn histogram_buckets_and_fold() {
        let c = cells();
        c.observe(3, 1, 0.003);
        c.observe(3, 1, 0.2);
        c.observe(3, 1, 42.0);
        let v = c.read_hist(3, 1);
        assert_eq!(v.count, 3);
        assert_eq!((v.buckets[0], v.buckets[5], v.buckets[11]), (1, 1, 1));
        assert!((v.sum - 42.203).abs() < 1e-9);
        c.counter(3, 7).fetch_add(5, Ordering::Relaxed);
        c.stat(3, stat::LOCK_CONFLICTS)
            .fetch_add(2, Ordering::Relaxed);
        c.stat(3, stat::ACTIVE_BOTS).store(9, Ordering::Relaxed);
        c.fold(3, 0..8, 0..2);
        assert_eq!(c.counter(3, 7).load(Ordering::Relaxed), 0);
        assert_eq!(c.counter(RETIRED_SLOT, 7).load(Ordering::Relaxed), 5);
        assert_eq!(c.read_hist(RETIRED_SLOT, 1), v);
        assert_eq!(c.read_hist(3, 1), HistValue::default());
        assert_eq!(
            c.stat(RETIRED_SLOT, stat::LOCK_CONFLICTS)
                .load(Ordering::Relaxed),
            2
        );
        assert_eq!(
            c.stat(RETIRED_SLOT, stat::ACTIVE_BOTS)
                .load(Ordering::Relaxed),
            0,
            "a gauge is not folded"
        );
    }
}
