//! What every background (singleton) process shares: stop and log-reopen signals as
//! flags, readiness, and a heartbeat in its slot that the master watches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blitz_master::{ChildCtx, SlotState};
use signal_hook::consts::signal::{SIGINT, SIGQUIT, SIGTERM, SIGUSR1};

use crate::log::Sink;

pub struct Background {
    stop: Arc<AtomicBool>,
    reopen: Arc<AtomicBool>,
    sinks: Vec<Sink>,
}

impl Background {
    /// Installs the signal flags, then reports ready (which also releases the stop
    /// signals the master held across fork, so none is lost).
    pub fn start(ctx: &ChildCtx, sinks: Vec<Sink>) -> std::io::Result<Background> {
        let stop = Arc::new(AtomicBool::new(false));
        let reopen = Arc::new(AtomicBool::new(false));
        for s in [SIGTERM, SIGINT, SIGQUIT] {
            signal_hook::flag::register(s, stop.clone())?;
        }
        signal_hook::flag::register(SIGUSR1, reopen.clone())?;
        ctx.report(SlotState::Ready);
        Ok(Background {
            stop,
            reopen,
            sinks,
        })
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Heartbeats and handles a pending log reopen; false once asked to stop. For
    /// loops that wait on something else than a sleep.
    pub fn tend(&self, ctx: &ChildCtx) -> bool {
        ctx.slot.heartbeat();
        if self.reopen.swap(false, Ordering::AcqRel) {
            for s in &self.sinks {
                let _ = s.reopen();
            }
        }
        !self.stopping()
    }

    /// `tend`s, and sleeps up to `pause` in short steps so a stop signal is noticed
    /// quickly. Returns false once asked to stop.
    pub fn pause(&self, ctx: &ChildCtx, pause: Duration) -> bool {
        const STEP: Duration = Duration::from_millis(250);
        let mut left = pause;
        loop {
            if !self.tend(ctx) {
                return false;
            }
            if left.is_zero() {
                return true;
            }
            let step = left.min(STEP);
            std::thread::sleep(step);
            left -= step;
        }
    }
}
