//! What the master knows about one forked child, and the small actions on it.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::scoreboard::{SlotHandle, SlotState};

/// What a child is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An HTTP worker; `number` is its slot.
    Worker,
    /// The i-th singleton child (e.g. the bot runner); always exactly one of each.
    Singleton(usize),
}

#[derive(Debug)]
pub struct Child {
    pub pid: Pid,
    pub role: Role,
    /// Worker N / singleton index, shown in the process title.
    pub number: usize,
    pub slot: SlotHandle,
    pub generation: u64,
    /// The child reported ready at least once.
    pub ready_seen: bool,
    /// When the master asked it to stop gracefully (retire, TTOU, reload, stop).
    pub term_sent: Option<Instant>,
    /// When `--timeout` fired and SIGABRT was sent.
    pub abort_sent: Option<Instant>,
    pub kill_sent: bool,
    /// `--reuse-port` lanes this worker accepts on (empty: shared sockets only).
    pub lanes: Vec<usize>,
    /// Workers to retire once this one is ready (it inherited their lanes).
    pub replaces: Vec<Pid>,
    /// The master wants it replaced (e.g. past `--max-worker-memory`).
    pub retire_wanted: bool,
}

impl Child {
    /// Still serving: not asked to stop, and not draining on its own (an operator
    /// may TERM a worker directly; its replacement should start at once).
    pub fn serving(&self) -> bool {
        self.term_sent.is_none()
            && self.abort_sent.is_none()
            && self.slot.state() != SlotState::Draining
    }

    /// Serving but due for replacement: older generation, or it asked to retire.
    pub fn stale(&self, generation: u64) -> bool {
        self.generation < generation
            || self.retire_wanted
            || self.slot.state() == SlotState::RetireRequested
    }

    pub fn signal(&self, sig: Signal) {
        // ESRCH means it already exited; the reaper will see it.
        let _ = kill(self.pid, sig);
    }

    pub fn terminate(&mut self, now: Instant) {
        // A worker told to stop takes over from nobody.
        self.replaces.clear();
        if self.term_sent.is_none() {
            self.term_sent = Some(now);
            self.signal(Signal::SIGTERM);
        }
    }

    pub fn force_kill(&mut self) {
        if !self.kill_sent {
            self.kill_sent = true;
            self.signal(Signal::SIGKILL);
        }
    }

    /// Enforces `--timeout` (SIGABRT, then SIGKILL one second later) and
    /// `--graceful-timeout` for a child asked to stop. Returns true exactly when the
    /// timeout first fires, so the caller can log `WORKER TIMEOUT` once.
    pub fn enforce_timeouts(
        &mut self,
        now: Instant,
        now_ms: u64,
        timeout: Duration,
        graceful: Duration,
    ) -> bool {
        if let Some(t) = self.abort_sent {
            if now.duration_since(t) >= Duration::from_secs(1) {
                self.force_kill();
            }
            return false;
        }
        if let Some(t) = self.term_sent {
            if now.duration_since(t) >= graceful {
                self.force_kill();
            }
        }
        let silent = now_ms.saturating_sub(self.slot.heartbeat_ms());
        if silent > timeout.as_millis() as u64 && !self.kill_sent {
            self.abort_sent = Some(now);
            self.signal(Signal::SIGABRT);
            return true;
        }
        false
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Code(i32),
    Signal(i32),
}
