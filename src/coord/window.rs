//! One exact sliding window in shared memory: a ring of the last `max` admission
//! times of one key.
//!
//! A cell is `[lock, key, head, slot × max]`, all `AtomicU64`. `slot[head % max]`
//! holds the oldest of the last `max` admissions, so a request is admitted exactly
//! when that time has left the window — O(1), and the ring stays sorted, so the count
//! still in the window is a binary search.
//!
//! An admission must update two words (a slot and `head`), and one check may span two
//! cells (a user and the group's ceiling), so cells are taken with a tiny lock (a
//! CAS of the owner's pid) held for a few dozen instructions. A lock whose owner died
//! is taken over, so a SIGKILLed worker cannot wedge a key.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Room;

/// Words before the slots.
pub const HEADER_WORDS: usize = 3;
const LOCK: usize = 0;
const KEY: usize = 1;
const HEAD: usize = 2;

/// Spins between checks of whether the lock's owner is still alive. A dead owner
/// stays "alive" (a zombie) until the master reaps it, then its pid is free: it
/// could only name another process again after the kernel's pid counter wrapped
/// (`pid_max`, 4M by default), far longer than one round of spinning.
const SPINS_BEFORE_CHECK: u32 = 2_000;

/// Words of a cell with room for `max` admissions.
pub fn cell_words(max: u32) -> usize {
    HEADER_WORDS + max as usize
}

/// One recorded admission, enough to undo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub position: u64,
    pub at: u64,
    pub previous: u64,
}

/// A locked cell; unlocks on drop.
pub struct Locked<'a> {
    words: &'a [AtomicU64],
    me: u64,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.words[LOCK].compare_exchange(self.me, 0, Ordering::Release, Ordering::Relaxed);
    }
}

fn alive(pid: u64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // ESRCH: no such process. EPERM would mean alive but not ours.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Locks `words` (one cell) for this process.
pub fn lock(words: &[AtomicU64]) -> Locked<'_> {
    let me = u64::from(std::process::id());
    let mut spins = 0u32;
    loop {
        let owner = words[LOCK].load(Ordering::Relaxed);
        let check = spins >= SPINS_BEFORE_CHECK;
        if check {
            spins = 0;
        }
        let free = owner == 0 || (check && !alive(owner));
        if free
            && words[LOCK]
                .compare_exchange(owner, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Locked { words, me };
        }
        spins = spins.saturating_add(1);
        if spins.checked_rem(64) == Some(0) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

impl Locked<'_> {
    pub fn key(&self) -> u64 {
        self.words[KEY].load(Ordering::Relaxed)
    }

    pub fn set_key(&self, key: u64) {
        self.words[KEY].store(key, Ordering::Relaxed);
    }

    fn slots(&self) -> &[AtomicU64] {
        &self.words[HEADER_WORDS..]
    }

    /// The ring's size: the limit at start; a lower limit (after a reload) uses its
    /// newest part.
    fn size(&self) -> u64 {
        self.slots().len() as u64
    }

    fn head(&self) -> u64 {
        self.words[HEAD].load(Ordering::Relaxed)
    }

    /// The `k`-th newest admission (1 = newest, up to `size`).
    fn back(&self, k: u64) -> u64 {
        let at = (self.head() + self.size() - k) % self.size();
        self.slots()[at as usize].load(Ordering::Relaxed)
    }

    fn limit(&self, max: u32) -> u64 {
        u64::from(max).clamp(1, self.size())
    }

    /// With at most `max` per `window`: when full, how long until the oldest
    /// admission that counts leaves the window.
    pub fn full_for(&self, now: u64, window: u64, max: u32) -> Option<u64> {
        let oldest = self.back(self.limit(max));
        (oldest != 0 && oldest + window > now).then(|| oldest + window - now)
    }

    /// Whether nothing of the window is left (the cell may serve another key).
    pub fn idle(&self, now: u64, window: u64) -> bool {
        let newest = self.back(1);
        newest == 0 || newest + window <= now
    }

    /// How much the key uses its window at `now`, least first: its admissions in
    /// the window, then its newest admission's time.
    pub fn usage(&self, now: u64, window: u64, max: u32) -> (u32, u64) {
        let count = self.limit(max) as u32 - self.room(now, window, max).remaining;
        (count, self.back(1))
    }

    /// Records an admission at `now` (the caller checked `full_for`); returns what
    /// `refund` needs to undo it.
    pub fn record(&self, now: u64) -> Recorded {
        let head = self.head();
        let slot = &self.slots()[(head % self.size()) as usize];
        let previous = slot.swap(now, Ordering::Relaxed);
        self.words[HEAD].store(head + 1, Ordering::Relaxed);
        Recorded {
            position: head,
            at: now,
            previous,
        }
    }

    /// What is left of a window of `max` at `now`.
    pub fn room(&self, now: u64, window: u64, max: u32) -> Room {
        let n = self.limit(max);
        // The last `n` are sorted: find the oldest still inside (k from n down to 1).
        let inside = |k: u64| {
            let t = self.back(k);
            t != 0 && t + window > now
        };
        let (mut lo, mut hi) = (1, n + 1); // the answer: smallest k with all newer inside
        let mut oldest_inside = None;
        while lo < hi {
            let mid = (lo + hi) / 2;
            if inside(mid) {
                oldest_inside = Some(mid);
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let count = oldest_inside.unwrap_or(0);
        let reset_ms = oldest_inside.map_or(0, |k| self.back(k) + window - now);
        Room {
            remaining: (n - count) as u32,
            reset_ms,
        }
    }

    /// Gives an admission back exactly: the entries after it move down one place
    /// and `head` steps back. The place freed at the top held an admission older
    /// than every one kept, which had left the window (else the window would have
    /// held more than allowed): the newest's own record restores it exactly, any
    /// other is marked as expired.
    pub fn refund(&self, r: &Recorded) {
        let head = self.head();
        let size = self.size();
        let at = |p: u64| &self.slots()[(p % size) as usize];
        if r.position >= head
            || r.position + size < head
            || at(r.position).load(Ordering::Relaxed) != r.at
        {
            return; // already overwritten by later admissions
        }
        for p in r.position..head - 1 {
            at(p).store(at(p + 1).load(Ordering::Relaxed), Ordering::Relaxed);
        }
        let freed = if r.position + 1 == head {
            r.previous
        } else {
            0
        };
        at(head - 1).store(freed, Ordering::Relaxed);
        self.words[HEAD].store(head - 1, Ordering::Relaxed);
    }

    /// Forgets every admission. Only the slots written since the last clear can hold
    /// one (`head` counts from it), so a cell sized for a large limit costs a new
    /// key only what the old key used: evicting at 100,000 a second must not zero
    /// 800 KB per request.
    pub fn clear(&self) {
        let written = self.head().min(self.size()) as usize;
        for s in &self.slots()[..written] {
            s.store(0, Ordering::Relaxed);
        }
        self.words[HEAD].store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(max: u32) -> Vec<AtomicU64> {
        (0..cell_words(max)).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn clear_forgets_what_was_written_however_often_the_ring_turned() {
        for records in [0u64, 2, 3, 7] {
            let c = cell(3);
            let l = lock(&c);
            for t in 0..records {
                l.record(1_000 + t);
            }
            l.clear();
            assert!(c
                .iter()
                .skip(HEADER_WORDS)
                .all(|w| w.load(Ordering::Relaxed) == 0));
            assert_eq!(l.room(2_000, 60_000, 3).remaining, 3);
            // A cleared cell fills again from the start.
            l.record(2_000);
            assert_eq!(l.room(2_001, 60_000, 3).remaining, 2);
        }
    }

    #[test]
    fn n_in_any_window_and_a_burst_of_n() {
        let c = cell(3);
        let l = lock(&c);
        let w = 60_000;
        for t in [1_000, 1_001, 1_002] {
            assert_eq!(l.full_for(t, w, 3), None);
            l.record(t);
        }
        assert_eq!(l.full_for(1_003, w, 3), Some(59_997));
        // The oldest leaves exactly one window after it came.
        assert_eq!(l.full_for(60_999, w, 3), Some(1));
        assert_eq!(l.full_for(61_000, w, 3), None);
        l.record(61_000);
        assert_eq!(
            l.room(61_000, w, 3),
            Room {
                remaining: 0,
                reset_ms: 1
            }
        );
        assert_eq!(l.full_for(61_000, w, 3), Some(1));
        assert_eq!(l.full_for(61_001, w, 3), None);
        assert_eq!(
            l.room(62_002, w, 3),
            Room {
                remaining: 2,
                reset_ms: 58_998
            }
        );
        assert!(!l.idle(62_002, w));
        assert!(l.idle(121_000, w));
    }

    #[test]
    fn refund_of_the_newest_is_exact() {
        let c = cell(2);
        let l = lock(&c);
        let p = l.record(10);
        let q = l.record(11);
        assert!(l.full_for(12, 100, 2).is_some());
        l.refund(&q);
        assert_eq!(l.full_for(12, 100, 2), None);
        assert_eq!(l.room(12, 100, 2).remaining, 1);
        // After a wrap the overwritten time comes back: 10 and 11 are both inside.
        l.record(11);
        let wrapped = l.record(50);
        l.refund(&wrapped);
        assert_eq!(l.full_for(51, 100, 2), Some(59));
        // An older one becomes "expired"; a stale ticket does nothing.
        l.refund(&p);
        assert_eq!(l.full_for(51, 100, 2), None);
        let r = l.record(52);
        l.record(53);
        l.record(54);
        l.refund(&r);
        assert!(
            l.full_for(55, 100, 2).is_some(),
            "r was overwritten: no effect"
        );
    }

    #[test]
    fn a_dead_owners_lock_is_taken_over() {
        let c = cell(1);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = u64::from(child.id());
        child.wait().unwrap();
        c[LOCK].store(dead, Ordering::Relaxed);
        let l = lock(&c);
        assert_eq!(
            c[LOCK].load(Ordering::Relaxed),
            u64::from(std::process::id())
        );
        drop(l);
        assert_eq!(c[LOCK].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn refund_in_the_middle_frees_its_room_at_once() {
        let c = cell(3);
        let l = lock(&c);
        l.record(10);
        let mid = l.record(11);
        l.record(12);
        assert!(l.full_for(13, 100, 3).is_some());
        l.refund(&mid);
        assert_eq!(
            l.full_for(13, 100, 3),
            None,
            "room at once, not when it is oldest"
        );
        assert_eq!(l.room(13, 100, 3).remaining, 1);
        l.record(13);
        assert_eq!(l.full_for(14, 100, 3), Some(96), "10 is the oldest again");
    }
}
