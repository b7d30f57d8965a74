//! When each running bot steps next: a deadline heap of (due, bot, generation). A
//! run of a bot has one entry at a time, put back only after its step finished, so
//! a slow exchange never piles up steps; entries of an earlier run are dropped by
//! the step itself.
//!
//! A wake (its account stream reported an order or a fill) moves a waiting
//! bot's entry to now; a bot that is stepping at that moment has no entry, so
//! the wake is remembered and its next entry comes at once. Either way it keeps
//! one entry: a wake never adds a second chain of steps.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A wake for a bot that never comes back (it stopped) is forgotten after this.
const WAKE_KEPT_MS: u64 = 10_000;

/// A step that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub bot_id: i64,
    pub generation: u64,
    /// Its account stream reported an order or a fill: the step reads it.
    pub woken: bool,
}

#[derive(Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(u64, i64, u64)>>,
    /// Each bot's live entry (due, generation, woken); heap entries that differ
    /// are stale (moved by a wake) and skipped.
    waiting: HashMap<i64, (u64, u64, bool)>,
    /// Bots woken while they had no entry, and when.
    woken: HashMap<i64, u64>,
}

impl Schedule {
    /// The next step of `bot_id` at `due_ms` (sooner if it was woken).
    pub fn at(&mut self, due_ms: u64, bot_id: i64, generation: u64, now_ms: u64) {
        let (due, woken) = match self.woken.remove(&bot_id) {
            Some(_) => (due_ms.min(now_ms), true),
            None => (due_ms, false),
        };
        self.waiting.insert(bot_id, (due, generation, woken));
        self.heap.push(Reverse((due, bot_id, generation)));
    }

    /// `bot_id` should step now.
    pub fn wake(&mut self, bot_id: i64, now_ms: u64) {
        match self.waiting.get(&bot_id).copied() {
            Some((due, generation, _)) if due > now_ms => {
                self.waiting.insert(bot_id, (now_ms, generation, true));
                self.heap.push(Reverse((now_ms, bot_id, generation)));
            }
            Some(_) => {}
            None => {
                self.woken.insert(bot_id, now_ms);
            }
        }
    }

    /// The steps due at `now_ms`, removed from the heap.
    pub fn due(&mut self, now_ms: u64) -> Vec<Step> {
        let mut out = Vec::new();
        while let Some(Reverse((t, bot_id, generation))) = self.heap.peek().copied() {
            if t > now_ms {
                break;
            }
            self.heap.pop();
            match self.waiting.get(&bot_id) {
                Some(&(due, g, woken)) if (due, g) == (t, generation) => {
                    self.waiting.remove(&bot_id);
                    out.push(Step {
                        bot_id,
                        generation,
                        woken,
                    });
                }
                _ => {}
            }
        }
        self.woken
            .retain(|_, at| now_ms.saturating_sub(*at) < WAKE_KEPT_MS);
        out
    }

    /// Milliseconds until the next due bot, if any.
    pub fn next_in(&self, now_ms: u64) -> Option<u64> {
        self.heap
            .peek()
            .map(|Reverse((t, _, _))| t.saturating_sub(now_ms))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (bot, generation, woken) of each due step.
    fn due(s: &mut Schedule, now_ms: u64) -> Vec<(i64, u64, bool)> {
        s.due(now_ms)
            .into_iter()
            .map(|d| (d.bot_id, d.generation, d.woken))
            .collect()
    }

    #[test]
    fn due_in_deadline_order() {
        let mut s = Schedule::default();
        s.at(30, 3, 1, 0);
        s.at(10, 1, 1, 0);
        s.at(20, 2, 5, 0);
        assert_eq!(s.next_in(5), Some(5));
        assert_eq!(due(&mut s, 20), vec![(1, 1, false), (2, 5, false)]);
        assert_eq!(s.len(), 1);
        assert_eq!(due(&mut s, 29), Vec::<(i64, u64, bool)>::new());
        assert_eq!(due(&mut s, 100), vec![(3, 1, false)]);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_wake_moves_the_waiting_entry_without_adding_one() {
        let mut s = Schedule::default();
        s.at(1_000, 7, 2, 0);
        s.wake(7, 100);
        s.wake(7, 120); // already due: nothing more
        assert_eq!(due(&mut s, 150), vec![(7, 2, true)]);
        // The original deadline's entry is stale: no second step.
        assert_eq!(due(&mut s, 2_000), Vec::<(i64, u64, bool)>::new());
    }

    #[test]
    fn a_wake_during_a_step_brings_the_next_one_forward_once() {
        let mut s = Schedule::default();
        s.wake(7, 100); // stepping: no entry
        s.at(1_100, 7, 2, 110);
        assert_eq!(due(&mut s, 110), vec![(7, 2, true)]);
        s.at(1_200, 7, 2, 200);
        assert_eq!(due(&mut s, 300), Vec::<(i64, u64, bool)>::new());
        assert_eq!(due(&mut s, 1_200), vec![(7, 2, false)]);
    }

    #[test]
    fn wakes_of_stopped_bots_are_forgotten() {
        let mut s = Schedule::default();
        s.wake(9, 0);
        s.due(WAKE_KEPT_MS + 1);
        s.at(50_000, 9, 1, 20_000);
        assert_eq!(due(&mut s, 20_000), Vec::<(i64, u64, bool)>::new());
    }
}
