//! The arithmetic of one request budget, without locks or threads: the sliding
//! log of what was sent in the last window, a closing (ban or back-off) and who
//! is waiting. `RequestBudget` holds one behind its mutex.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Priority;

/// At most `requests` in any `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u32,
    pub per: Duration,
}

impl Limit {
    /// How many of the window's requests `p` may use: its share of it, at least 1
    /// (a budget of 1 still lets every class through, one at a time).
    pub fn cap(self, p: Priority) -> usize {
        self.share(p.share_percent())
    }

    /// `percent` of the window's requests, at least 1.
    pub fn share(self, percent: u32) -> usize {
        let share = u64::from(self.requests) * u64::from(percent) / 100;
        (share as usize).max(1)
    }

    /// `permille` of this limit (at least one request per window): one
    /// process's part of the instance's.
    pub fn part(self, permille: u32) -> Limit {
        let n = u64::from(self.requests) * u64::from(permille.min(1000)) / 1000;
        Limit {
            requests: u32::try_from(n).unwrap_or(u32::MAX).max(1),
            per: self.per,
        }
    }
}

/// A request stays in the window from its turn until a window after its answer:
/// the exchange saw it somewhere in between, so however long requests take, the
/// exchange never sees more than the limit in any window.
#[derive(Debug)]
pub struct Window {
    limit: Limit,
    /// Requests sent and not answered yet.
    in_flight: usize,
    /// When each answered request of the last `per` ended, oldest first.
    done: VecDeque<Instant>,
    closed_until: Option<Instant>,
    /// Requests waiting, by `Priority::rank`.
    pub waiting: [usize; 3],
}

impl Window {
    pub fn new(limit: Limit) -> Window {
        Window {
            limit,
            in_flight: 0,
            done: VecDeque::with_capacity(limit.requests as usize),
            closed_until: None,
            waiting: [0; 3],
        }
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Requests in the window at `now`: in flight, or answered less than `per` ago.
    pub fn used(&mut self, now: Instant) -> usize {
        while let Some(t) = self.done.front() {
            if now.saturating_duration_since(*t) >= self.limit.per {
                self.done.pop_front();
            } else {
                break;
            }
        }
        self.in_flight + self.done.len()
    }

    /// The earliest moment a request of `p` may go, judged by the window and the
    /// closing alone (`now` when it may go at once).
    pub fn ready_at(&mut self, p: Priority, now: Instant) -> Instant {
        self.ready_behind(p, now, 0)
    }

    /// When a request of `p` may go if `ahead` requests go before it: the
    /// moment the window has room for all of them.
    pub fn ready_behind(&mut self, p: Priority, now: Instant, ahead: usize) -> Instant {
        let closed = self.closed_until.filter(|c| *c > now);
        let n = self.used(now) + ahead;
        let cap = self.limit.cap(p);
        // Below its share once the oldest `n - cap + 1` requests left the window;
        // answered ones leave first. Requests in flight leave a window after their
        // answer: not before `now + per`.
        // A slot past the answered ones is freed a window after the request
        // that takes the slot `cap` earlier.
        let by_window = if n < cap {
            now
        } else {
            let (mut i, mut later) = (n - cap, 0u32);
            while i >= self.done.len() && i >= cap {
                i -= cap;
                later += 1;
            }
            let first = self
                .done
                .get(i)
                .map_or(now + self.limit.per, |t| *t + self.limit.per);
            first + self.limit.per * later
        };
        closed.map_or(by_window, |c| c.max(by_window))
    }

    /// Whether a more urgent request than `p` is waiting: it goes first.
    pub fn outranked(&self, p: Priority) -> bool {
        self.waiting[..p.rank()].iter().any(|n| *n > 0)
    }

    /// Requests waiting that go before a new one of `p`: the more urgent ones
    /// and those of its own class that came first.
    pub fn waiting_before(&self, p: Priority) -> usize {
        self.waiting[..=p.rank()].iter().sum()
    }

    /// Counts a request sent at `now`, in flight until `finish`.
    pub fn take(&mut self, now: Instant) {
        self.used(now);
        self.in_flight += 1;
    }

    /// A request sent with `take` was answered (or failed) at `now`.
    pub fn finish(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.done.push_back(now);
    }

    /// Nothing is sent before `until` (a later closing already set wins).
    pub fn close_until(&mut self, until: Instant) {
        self.closed_until = Some(self.closed_until.map_or(until, |c| c.max(until)));
    }

    pub fn closed_until(&self, now: Instant) -> Option<Instant> {
        self.closed_until.filter(|c| *c > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request sent and answered at `t`.
    fn send(w: &mut Window, t: Instant) {
        w.take(t);
        w.finish(t);
    }

    fn window(requests: u32) -> Window {
        Window::new(Limit {
            requests,
            per: Duration::from_secs(5),
        })
    }

    #[test]
    fn each_class_fills_its_share_of_the_window() {
        let limit = Limit {
            requests: 500,
            per: Duration::from_secs(5),
        };
        assert_eq!(limit.cap(Priority::Reconcile), 300);
        assert_eq!(limit.cap(Priority::Placement), 375);
        assert_eq!(limit.cap(Priority::Protective), 500);
        let one = Limit {
            requests: 1,
            ..limit
        };
        assert!(Priority::ALL.iter().all(|p| one.cap(*p) == 1));
    }

    #[test]
    fn a_full_share_frees_when_its_oldest_request_leaves_the_window() {
        let mut w = window(10);
        let t0 = Instant::now();
        // Reads may use 6 of 10: six requests 100 ms apart.
        for k in 0..6 {
            let t = t0 + Duration::from_millis(100 * k);
            assert_eq!(w.ready_at(Priority::Reconcile, t), t);
            send(&mut w, t);
        }
        let t = t0 + Duration::from_millis(600);
        // The 7th read waits for the first one to leave: t0 + 5 s.
        assert_eq!(
            w.ready_at(Priority::Reconcile, t),
            t0 + Duration::from_secs(5)
        );
        // Placements (7 of 10) and protective requests (10) still go now.
        assert_eq!(w.ready_at(Priority::Placement, t), t);
        w.take(t);
        assert_eq!(
            w.ready_at(Priority::Placement, t),
            t0 + Duration::from_secs(5)
        );
        assert_eq!(w.ready_at(Priority::Protective, t), t);
        w.take(t);
        w.take(t);
        w.take(t);
        // Ten sent: protective waits for the first to leave too.
        assert_eq!(
            w.ready_at(Priority::Protective, t),
            t0 + Duration::from_secs(5)
        );
        // Later, the window slid: what left it is available again.
        let later = t0 + Duration::from_millis(5_250);
        assert_eq!(w.used(later), 7);
        assert_eq!(
            w.ready_at(Priority::Reconcile, later),
            t0 + Duration::from_millis(5_400)
        );
        assert_eq!(
            w.ready_at(Priority::Placement, later),
            t0 + Duration::from_millis(5_300)
        );
        assert_eq!(w.ready_at(Priority::Protective, later), later);
    }

    #[test]
    fn a_request_counts_until_a_window_after_its_answer() {
        let mut w = window(2);
        let t0 = Instant::now();
        w.take(t0);
        w.take(t0);
        // Both in flight: nothing before a window from now, however long ago
        // they were sent.
        let t1 = t0 + Duration::from_secs(7);
        assert_eq!(
            w.ready_at(Priority::Protective, t1),
            t1 + Duration::from_secs(5)
        );
        // One answered at t1: its slot frees at t1 + 5 s, not at t0 + 5 s.
        w.finish(t1);
        assert_eq!(w.used(t1 + Duration::from_millis(4_999)), 2);
        assert_eq!(
            w.ready_at(Priority::Protective, t1),
            t1 + Duration::from_secs(5)
        );
        assert_eq!(w.used(t1 + Duration::from_secs(5)), 1);
    }

    #[test]
    fn a_closing_holds_every_class_and_the_later_one_wins() {
        let mut w = window(10);
        let t0 = Instant::now();
        let ban = t0 + Duration::from_secs(600);
        w.close_until(ban);
        w.close_until(t0 + Duration::from_secs(1));
        for p in Priority::ALL {
            assert_eq!(w.ready_at(p, t0), ban);
        }
        assert_eq!(w.closed_until(t0), Some(ban));
        let after = ban + Duration::from_millis(1);
        assert_eq!(w.ready_at(Priority::Reconcile, after), after);
        assert_eq!(w.closed_until(after), None);
    }

    #[test]
    fn waiting_requests_outrank_less_urgent_ones() {
        let mut w = window(10);
        w.waiting[Priority::Protective.rank()] = 1;
        assert!(w.outranked(Priority::Reconcile) && w.outranked(Priority::Placement));
        assert!(!w.outranked(Priority::Protective));
        w.waiting = [0, 2, 0];
        assert!(w.outranked(Priority::Reconcile) && !w.outranked(Priority::Placement));
    }
}
