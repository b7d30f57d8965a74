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

/// An exclusive lock on `<instance dir>/<name>.lock`, held for a singleton's whole
/// life. During a binary upgrade both masters run a bot runner and a mailer for a
/// while; the new ones wait here (heartbeating) until the old ones have stopped and
/// saved their state, so the same bots are never driven twice. Returns `None` when
/// asked to stop while waiting.
pub fn exclusive(
    ctx: &ChildCtx,
    bg: &Background,
    path: &std::path::Path,
    log: &slog::Logger,
    on_wait: &dyn Fn(),
) -> std::io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let mut told = false;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            if told {
                slog::info!(log, "the previous instance has stopped; taking over");
            }
            return Ok(Some(file));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err);
        }
        if !told {
            slog::info!(log, "waiting for the previous instance to stop (binary upgrade)";
                "lock" => %path.display());
            told = true;
        }
        on_wait();
        if !bg.pause(ctx, Duration::from_millis(100)) {
            return Ok(None);
        }
    }
}
