//! What the runner publishes in the shared segment for `/readyz`: how many
//! bots it runs and whether that matched the database at its last check. Workers
//! read it without asking the runner or counting rows themselves.

use std::sync::atomic::Ordering;

use blitz_master::Scoreboard;

pub use crate::shm::RunnerStats;

impl RunnerStats {
    /// The block inside `sb`'s application region (zeroed by the master).
    pub fn of(sb: &Scoreboard) -> &'static RunnerStats {
        &crate::shm::region(sb).runner
    }

    /// Publishes a consistency check's result.
    pub fn publish(&self, running: u64, db_running: u64, now_ms: u64) {
        self.running.store(running, Ordering::Relaxed);
        self.db_running.store(db_running, Ordering::Relaxed);
        self.checked_ms.store(now_ms, Ordering::Release);
    }

    /// The runner is alive but waits for a previous instance's runner to stop.
    pub fn publish_standby(&self, now_ms: u64) {
        self.standby_ms.store(now_ms, Ordering::Release);
    }

    /// When standby was last published (0: never).
    pub fn standby_ms(&self) -> u64 {
        self.standby_ms.load(Ordering::Acquire)
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
