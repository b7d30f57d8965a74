//! The per-user operation guard in the shared segment (the local backend):
//! only one start / stop / recover per user at a time across all workers.
//!
//! One 64-bit word per cell, so every change is a single compare-and-swap:
//! `uid` (32 bits) | owner pid (22 bits; Linux pids are below 2^22) | acquire time in
//! monotonic seconds mod 1024 (10 bits). A guard whose owner died is taken over at
//! once; one older than the timeout is taken over too (a pid that was reused).
//! Cells are direct-mapped by user id: another user's live guard in the same cell
//! is not a conflict — that call goes unguarded rather than refused, and the bot
//! runner still runs one command per bot at a time.

use std::sync::atomic::{AtomicU64, Ordering};

use blitz_master::Scoreboard;

/// Cells in the table (8 bytes each): user ids below this never share one.
pub const CELLS: usize = crate::shm::GUARD_CELLS;
const STAMP_BITS: u32 = 10;
const PID_BITS: u32 = 22;

pub struct GuardTable {
    cells: &'static [AtomicU64; CELLS],
    timeout_s: u64,
}

/// A held guard; give it back with `release`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    Cell {
        index: usize,
        word: u64,
    },
    /// The user's cell was busy with another user: not guarded here.
    Unguarded,
}

fn pack(uid: u32, pid: u32, stamp: u64) -> u64 {
    (u64::from(uid) << (PID_BITS + STAMP_BITS))
        | (u64::from(pid & ((1 << PID_BITS) - 1)) << STAMP_BITS)
        | (stamp % (1 << STAMP_BITS))
}

fn unpack(word: u64) -> (u32, i32, u64) {
    let uid = (word >> (PID_BITS + STAMP_BITS)) as u32;
    let pid = ((word >> STAMP_BITS) & ((1 << PID_BITS) - 1)) as i32;
    (uid, pid, word % (1 << STAMP_BITS))
}

fn alive(pid: i32) -> bool {
    // ESRCH: no such process. EPERM would mean alive but not ours.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

impl GuardTable {
    pub fn new(sb: &Scoreboard, timeout_s: u64) -> GuardTable {
        let cells = &crate::shm::region(sb).guards;
        GuardTable {
            cells,
            timeout_s: timeout_s.clamp(1, (1 << STAMP_BITS) - 2),
        }
    }

    /// Takes `uid`'s guard for this process, or `None` if another live holder has it.
    pub fn acquire(&self, uid: i64, now_s: u64) -> Option<Held> {
        let Ok(key) = u32::try_from(uid) else {
            return Some(Held::Unguarded);
        };
        let index = key as usize % CELLS;
        let cell = &self.cells[index];
        let mine = pack(key, std::process::id(), now_s);
        loop {
            let current = cell.load(Ordering::Acquire);
            if current != 0 {
                let (holder, pid, stamp) = unpack(current);
                let age = (now_s + (1 << STAMP_BITS) - stamp) % (1 << STAMP_BITS);
                let stale = !alive(pid) || age > self.timeout_s;
                if !stale {
                    return (holder != key).then_some(Held::Unguarded);
                }
            }
            if cell
                .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(Held::Cell { index, word: mine });
            }
        }
    }

    /// Gives a guard back (unless someone already took it over as stale).
    pub fn release(&self, held: &Held) {
        if let Held::Cell { index, word } = *held {
            let _ =
                self.cells[index].compare_exchange(word, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(timeout_s: u64) -> (Scoreboard, GuardTable) {
        let sb = Scoreboard::create(crate::shm::FIXED_BYTES).unwrap();
        let t = GuardTable::new(&sb, timeout_s);
        (sb, t)
    }

    #[test]
    fn one_holder_per_user() {
        let (_sb, t) = table(30);
        let held = t.acquire(7, 100).unwrap();
        assert!(matches!(held, Held::Cell { .. }));
        assert_eq!(t.acquire(7, 101), None, "the same user conflicts");
        let other = t.acquire(8, 101).unwrap();
        t.release(&held);
        let again = t.acquire(7, 102).unwrap();
        assert!(matches!(again, Held::Cell { .. }));
        t.release(&again);
        t.release(&other);
        // Another user in the same cell is not a conflict.
        let a = t.acquire(5, 0).unwrap();
        assert_eq!(t.acquire(5 + CELLS as i64, 0), Some(Held::Unguarded));
        t.release(&a);
    }

    #[test]
    fn a_dead_or_expired_holder_is_taken_over() {
        let (_sb, t) = table(30);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // A guard left by a process that died.
        t.cells[9].store(pack(9, dead, 500), Ordering::Release);
        assert!(matches!(t.acquire(9, 501), Some(Held::Cell { .. })));
        // A live holder, but older than the timeout (e.g. a reused pid).
        t.cells[10].store(pack(10, std::process::id(), 1020), Ordering::Release);
        assert_eq!(t.acquire(10, 1030), None, "10 s old: still held");
        assert!(
            matches!(t.acquire(10, 1020 + 31), Some(Held::Cell { .. })),
            "across the wrap"
        );
    }
}
