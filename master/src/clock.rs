//! A system-wide monotonic clock in milliseconds.
//!
//! Heartbeats are written by one process and read by another, so they need a clock
//! whose epoch is shared by every process on the machine: CLOCK_MONOTONIC is.

use nix::time::{clock_gettime, ClockId};

/// Milliseconds on CLOCK_MONOTONIC (comparable across processes on one machine).
pub fn now_ms() -> u64 {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000,
        // CLOCK_MONOTONIC cannot fail on Linux; 0 keeps callers total.
        Err(_) => 0,
    }
}

/// Microseconds on CLOCK_MONOTONIC, as systemd's `MONOTONIC_USEC=` wants them.
pub fn now_us() -> u64 {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1000,
        Err(_) => 0,
    }
}
