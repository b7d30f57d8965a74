//! When each running bot steps next: a deadline heap of (due, bot, generation). A
//! run of a bot has one entry at a time, put back only after its step finished, so
//! a slow exchange never piles up steps; entries of an earlier run are dropped by
//! the step itself.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(u64, i64, u64)>>,
}

impl Schedule {
    pub fn at(&mut self, due_ms: u64, uid: i64, generation: u64) {
        self.heap.push(Reverse((due_ms, uid, generation)));
    }

    /// The (bot, generation) pairs due at `now_ms`, removed from the heap.
    pub fn due(&mut self, now_ms: u64) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        while let Some(Reverse((t, uid, generation))) = self.heap.peek().copied() {
            if t > now_ms {
                break;
            }
            self.heap.pop();
            out.push((uid, generation));
        }
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
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_in_deadline_order() {
        let mut s = Schedule::default();
        s.at(30, 3, 1);
        s.at(10, 1, 1);
        s.at(20, 2, 5);
        assert_eq!(s.next_in(5), Some(5));
        assert_eq!(s.due(20), vec![(1, 1), (2, 5)]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.due(29), Vec::<(i64, u64)>::new());
        assert_eq!(s.due(100), vec![(3, 1)]);
        assert_eq!(s.len(), 0);
    }
}
