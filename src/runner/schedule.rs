//! When each running bot steps next: a deadline heap. A bot is in the heap at most
//! once and is put back only after its step finished, so a slow exchange never piles
//! up steps for one bot.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(u64, i64)>>,
}

impl Schedule {
    pub fn at(&mut self, due_ms: u64, uid: i64) {
        self.heap.push(Reverse((due_ms, uid)));
    }

    /// The bots due at `now_ms`, removed from the heap.
    pub fn due(&mut self, now_ms: u64) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(Reverse((t, uid))) = self.heap.peek().copied() {
            if t > now_ms {
                break;
            }
            self.heap.pop();
            out.push(uid);
        }
        out
    }

    /// Milliseconds until the next due bot, if any.
    pub fn next_in(&self, now_ms: u64) -> Option<u64> {
        self.heap
            .peek()
            .map(|Reverse((t, _))| t.saturating_sub(now_ms))
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
        s.at(30, 3);
        s.at(10, 1);
        s.at(20, 2);
        assert_eq!(s.next_in(5), Some(5));
        assert_eq!(s.due(20), vec![1, 2]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.due(29), Vec::<i64>::new());
        assert_eq!(s.due(100), vec![3]);
        assert_eq!(s.len(), 0);
    }
}
