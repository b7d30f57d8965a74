//! What the runner publishes in the shared segment for `/readyz` (C4.1): how many
//! bots it runs and whether that matched the database at its last check. Workers
//! read it without asking the runner or counting rows themselves.

use std::sync::atomic::{AtomicU64, Ordering};

use blitz_master::Scoreboard;

/// Offset of the runner's block in the application region; the other tables of the
/// region start after `RunnerStats::RESERVED` bytes.
const OFFSET: usize = 0;

#[repr(C)]
pub struct RunnerStats {
    running: AtomicU64,
    db_running: AtomicU64,
    checked_ms: AtomicU64,
}

impl RunnerStats {
    pub const RESERVED: usize = 64;

    /// The block inside `sb`'s application region (zeroed by the master).
    pub fn of(sb: &Scoreboard) -> &'static RunnerStats {
        let (base, len) = sb.app_region();
        assert!(len >= OFFSET + std::mem::size_of::<RunnerStats>());
        // SAFETY: the region is mapped shared for the life of the process, page
        // aligned (so the atomics are aligned), zero-initialised, and only ever
        // accessed through atomics.
        unsafe { &*(base.as_ptr().add(OFFSET) as *const RunnerStats) }
    }

    /// Publishes a consistency check's result.
    pub fn publish(&self, running: u64, db_running: u64, now_ms: u64) {
        self.running.store(running, Ordering::Relaxed);
        self.db_running.store(db_running, Ordering::Relaxed);
        self.checked_ms.store(now_ms, Ordering::Release);
    }

    /// (runner's count, database count, when checked in Unix ms).
    pub fn read(&self) -> (u64, u64, u64) {
        let checked = self.checked_ms.load(Ordering::Acquire);
        (
            self.running.load(Ordering::Relaxed),
            self.db_running.load(Ordering::Relaxed),
            checked,
        )
    }
}
