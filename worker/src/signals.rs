//! The worker's own signals: TERM drains, INT/QUIT stop at once, USR1 reopens logs.
//! Handlers set flags and wake the event loop through a socket pair registered in mio.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::net::UnixStream;
use signal_hook::consts::signal::{SIGINT, SIGQUIT, SIGTERM, SIGUSR1};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    pub drain: bool,
    pub quit: bool,
    pub reopen: bool,
}

pub(crate) struct WorkerSignals {
    pub wake: UnixStream,
    drain: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
    reopen: Arc<AtomicBool>,
}

impl WorkerSignals {
    pub fn install() -> io::Result<WorkerSignals> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let drain = Arc::new(AtomicBool::new(false));
        let quit = Arc::new(AtomicBool::new(false));
        let reopen = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [
            (SIGTERM, &drain),
            (SIGINT, &quit),
            (SIGQUIT, &quit),
            (SIGUSR1, &reopen),
        ] {
            signal_hook::flag::register(sig, flag.clone())?;
            signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
        }
        Ok(WorkerSignals {
            wake: UnixStream::from_std(read),
            drain,
            quit,
            reopen,
        })
    }

    /// Flags and a wake-up pair with no process-wide handler behind them, for
    /// driving the event loop inside a test process.
    #[cfg(test)]
    pub fn inert() -> io::Result<WorkerSignals> {
        let (read, _write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        Ok(WorkerSignals {
            wake: UnixStream::from_std(read),
            drain: Arc::default(),
            quit: Arc::default(),
            reopen: Arc::default(),
        })
    }

    /// What SIGTERM's handler does.
    #[cfg(test)]
    pub fn raise_drain(&self) {
        self.drain.store(true, Ordering::Release);
    }

    /// Cheap check (three atomic loads) done every loop turn: a signal may have
    /// arrived while poll was interrupted, before its wake-up byte is seen.
    pub fn any(&self) -> bool {
        self.drain.load(Ordering::Acquire)
            || self.quit.load(Ordering::Acquire)
            || self.reopen.load(Ordering::Acquire)
    }

    pub fn take(&mut self) -> Pending {
        let mut buf = [0u8; 64];
        while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
        Pending {
            drain: self.drain.swap(false, Ordering::AcqRel),
            quit: self.quit.swap(false, Ordering::AcqRel),
            reopen: self.reopen.swap(false, Ordering::AcqRel),
        }
    }
}
