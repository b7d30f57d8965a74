//! The master's signal queue (gunicorn's SIG_QUEUE, without a Python handler).
//!
//! Handlers only set a flag and write a byte to a self-pipe; the master's loop polls
//! the pipe and dispatches in `take()`. Nothing else runs in signal context.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::signal::*;
use signal_hook::SigId;

/// Signals the master reacts to, in the order they are dispatched when several are
/// pending (stops first, so a stop is never delayed behind a reload).
pub const HANDLED: [i32; 11] = [
    SIGINT, SIGQUIT, SIGTERM, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH,
    SIGALRM,
];

/// Ignores the master's control signals until `SignalQueue::install` takes them
/// over. Call first thing: while a master prepares (migrations can take a while,
/// and a binary upgrade's new master is signalled by pid), a HUP or USR1 would kill
/// it and a TTIN/TTOU would stop it. A signal ignored then is lost, not harmful.
pub fn shield() {
    for sig in [SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH] {
        if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
            // SAFETY: SIG_IGN installs no handler code.
            let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
        }
    }
}

pub struct SignalQueue {
    flags: Vec<(i32, Arc<AtomicBool>)>,
    ids: Vec<SigId>,
    wake: UnixStream,
}

impl SignalQueue {
    pub fn install() -> io::Result<SignalQueue> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut flags = Vec::new();
        let mut ids = Vec::new();
        for sig in HANDLED {
            let flag = Arc::new(AtomicBool::new(false));
            ids.push(signal_hook::flag::register(sig, flag.clone())?);
            ids.push(signal_hook::low_level::pipe::register(
                sig,
                write.try_clone()?,
            )?);
            flags.push((sig, flag));
        }
        Ok(SignalQueue {
            flags,
            ids,
            wake: read,
        })
    }

    /// The descriptor to poll for "a signal arrived".
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Drains the wake-up pipe and returns the pending signals in dispatch order.
    pub fn take(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::AcqRel))
            .map(|(s, _)| *s)
            .collect()
    }

    /// In a freshly forked child: drop the master's actions (so a signal to the child
    /// no longer wakes the master) and close the pipe ends. signal-hook's low-level
    /// handler stays installed with no actions, which makes the master-only signals
    /// (HUP, TTIN, TTOU, WINCH, USR2) no-ops in children, as they must be; the child
    /// registers its own actions for the signals it handles.
    pub fn forget_in_child(self) {
        for id in self.ids {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// The conventional name of a signal, for logs.
pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "INT",
        SIGQUIT => "QUIT",
        SIGTERM => "TERM",
        SIGCHLD => "CHLD",
        SIGHUP => "HUP",
        SIGUSR1 => "USR1",
        SIGUSR2 => "USR2",
        SIGTTIN => "TTIN",
        SIGTTOU => "TTOU",
        SIGWINCH => "WINCH",
        SIGALRM => "ALRM",
        _ => "?",
    }
}

/// Signals a child must not lose between fork and installing its own handlers.
const HELD: [i32; 4] = [SIGTERM, SIGINT, SIGQUIT, SIGUSR1];

fn held_set() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in HELD {
        if let Ok(sig) = nix::sys::signal::Signal::try_from(s) {
            set.add(sig);
        }
    }
    set
}

/// Blocks the held signals; returns the previous mask for `restore`.
pub fn hold() -> nix::sys::signal::SigSet {
    let mut old = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&held_set()),
        Some(&mut old),
    );
    old
}

pub fn restore(old: nix::sys::signal::SigSet) {
    let _ =
        nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None);
}

/// Unblocks the held signals; pending ones are delivered to the new handlers now.
pub fn release_held() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&held_set()),
        None,
    );
}
