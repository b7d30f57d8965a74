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

#[derive(Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(u64, i64, u64)>>,
    /// Each bot's live entry (due, generation); heap entries that differ are
    /// stale (moved by a wake) and skipped.
    waiting: HashMap<i64, (u64, u64)>,
    /// Bots woken while they had no entry, and when.
    woken: HashMap<i64, u64>,
}

impl Schedule {
    /// The next step of `bot_id` at `due_ms` (sooner if it was woken).
    pub fn at(&mut self, due_ms: u64, bot_id: i64, generation: u64, now_ms: u64) {
        let due = match self.woken.remove(&bot_id) {
            Some(_) => due_ms.min(now_ms),
            None => due_ms,
        };
        self.waiting.insert(bot_id, (due, generation));
        self.heap.push(Reverse((due, bot_id, generation)));
    }

    /// `bot_id` should step now.
    pub fn wake(&mut self, bot_id: i64, now_ms: u64) {
        match self.waiting.get(&bot_id).copied() {
            Some((due, generation)) if due > now_ms => {
                self.waiting.insert(bot_id, (now_ms, generation));
                self.heap.push(Reverse((now_ms, bot_id, generation)));
            }
            Some(_) => {}
            None => {
                self.woken.insert(bot_id, now_ms);
            }
        }
    }

    /// The (bot, generation) pairs due at `now_ms`, removed from the heap.
    pub fn due(&mut self, now_ms: u64) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        while let Some(Reverse((t, bot_id, generation))) = self.heap.peek().copied() {
            if t > now_ms {
                break;
            }
            self.heap.pop();
            if self.waiting.get(&bot_id) == Some(&(t, generation)) {
                self.waiting.remove(&bot_id);
                out.push((bot_id, generation));
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

    #[test]
    fn due_in_deadline_order() {
        let mut s = Schedule::default();
        s.at(30, 3, 1, 0);
        s.at(10, 1, 1, 0);
        s.at(20, 2, 5, 0);
        assert_eq!(s.next_in(5), Some(5));
        assert_eq!(s.due(20), vec![(1, 1), (2, 5)]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.due(29), Vec::<(i64, u64)>::new());
        assert_eq!(s.due(100), vec![(3, 1)]);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_wake_moves_the_waiting_entry_without_adding_one() {
        let mut s = Schedule::default();
        s.at(1_000, 7, 2, 0);
        s.wake(7, 100);
        s.wake(7, 120); // already due: nothing more
        assert_eq!(s.due(150), vec![(7, 2)]);
        // The original deadline's entry is stale: no second step.
        assert_eq!(s.due(2_000), Vec::<(i64, u64)>::new());
    }

    #[test]
    fn a_wake_during_a_step_brings_the_next_one_forward_once() {
        let mut s = Schedule::default();
        s.wake(7, 100); // stepping: no entry
        s.at(1_100, 7, 2, 110);
        assert_eq!(s.due(110), vec![(7, 2)]);
        s.at(1_200, 7, 2, 200);
        assert_eq!(s.due(300), Vec::<(i64, u64)>::new());
        assert_eq!(s.due(1_200), vec![(7, 2)]);
    }

    #[test]
    fn wakes_of_stopped_bots_are_forgotten() {
        let mut s = Schedule::default();
        s.wake(9, 0);
        s.due(WAKE_KEPT_MS + 1);
        s.at(50_000, 9, 1, 20_000);
        assert_eq!(s.due(20_000), Vec::<(i64, u64)>::new());
    }
}
