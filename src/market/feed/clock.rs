//! The market-data loop's clock: every timer of the loop (back-off, pings,
//! silence, staleness) and every quote's time read it, so a test can move time
//! forward instead of waiting for it.

use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::exchange::rest::local_ms()
    }
}

/// The system clock moved by an offset the owner can add to (tests).
#[derive(Default)]
pub struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl ShiftedClock {
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        crate::exchange::rest::local_ms() + self.offset_ms.load(Ordering::Relaxed)
    }
}
