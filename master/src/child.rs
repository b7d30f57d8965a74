//! What the master knows about one forked child, and the small actions on it.
//!
//! Invariant: a child's lifecycle is one [`Life`] value, changed only by the
//! methods below, each of which sends the matching signal at most once: TERM when
//! it is first asked to stop, ABRT when `--timeout` first fires, KILL once.

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

/// Where a child is in its life, as far as the master drove it. Past the first two
/// states the child is on its way out; `ready` and `asked` remember what decides,
/// once it is reaped, whether its end was a boot failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Forked; has not reported ready yet.
    Booting,
    /// Reported ready. `retire`: the master wants it replaced (`--max-worker-memory`).
    Serving { retire: bool },
    /// Asked to stop (TERM, or QUIT for a quick stop) at `since`.
    Stopping { since: Instant, ready: bool },
    /// `--timeout` fired: SIGABRT at `since`, SIGKILL one second later.
    Aborted {
        since: Instant,
        ready: bool,
        asked: bool,
    },
    /// SIGKILL sent; only the reaper has anything left to do.
    Killed { ready: bool, asked: bool },
}

impl Life {
    /// It reported ready at least once.
    pub fn ready_seen(&self) -> bool {
        match *self {
            Life::Booting => false,
            Life::Serving { .. } => true,
            Life::Stopping { ready, .. }
            | Life::Aborted { ready, .. }
            | Life::Killed { ready, .. } => ready,
        }
    }

    /// The master asked it to stop or aborted it: its exit is expected.
    pub fn ending(&self) -> bool {
        !matches!(self, Life::Booting | Life::Serving { .. })
    }

    /// Never ready and never asked to stop: its exit is a boot failure, including a
    /// boot that hung until `--timeout` killed it.
    pub fn boot_failed(&self) -> bool {
        match *self {
            Life::Booting => true,
            Life::Serving { .. } | Life::Stopping { .. } => false,
            Life::Aborted { ready, asked, .. } | Life::Killed { ready, asked } => !ready && !asked,
        }
    }

    /// The same life, with readiness recorded; `false` if it was already known.
    fn with_ready(self) -> Option<Life> {
        Some(match self {
            Life::Booting => Life::Serving { retire: false },
            Life::Stopping {
                since,
                ready: false,
            } => Life::Stopping { since, ready: true },
            Life::Aborted {
                since,
                ready: false,
                asked,
            } => Life::Aborted {
                since,
                ready: true,
                asked,
            },
            Life::Killed {
                ready: false,
                asked,
            } => Life::Killed { ready: true, asked },
            _ => return None,
        })
    }

    /// The same life, asked to stop at `now`; `None` if it was asked already.
    fn with_stop(self, now: Instant) -> Option<Life> {
        let ready = self.ready_seen();
        Some(match self {
            Life::Booting | Life::Serving { .. } => Life::Stopping { since: now, ready },
            Life::Aborted {
                since,
                asked: false,
                ..
            } => Life::Aborted {
                since,
                ready,
                asked: true,
            },
            Life::Killed { asked: false, .. } => Life::Killed { ready, asked: true },
            _ => return None,
        })
    }

    fn asked(&self) -> bool {
        match *self {
            Life::Booting | Life::Serving { .. } => false,
            Life::Stopping { .. } => true,
            Life::Aborted { asked, .. } | Life::Killed { asked, .. } => asked,
        }
    }
}

#[derive(Debug)]
pub struct Child {
    pub pid: Pid,
    pub role: Role,
    /// Worker N / singleton index, shown in the process title.
    pub number: usize,
    pub slot: SlotHandle,
    pub generation: u64,
    pub life: Life,
    /// `--reuse-port` lanes this worker accepts on (empty: shared sockets only).
    pub lanes: Vec<usize>,
    /// Workers to retire once this one is ready (it inherited their lanes).
    pub replaces: Vec<Pid>,
}

impl Child {
    pub fn new(
        pid: Pid,
        role: Role,
        number: usize,
        slot: SlotHandle,
        generation: u64,
        lanes: Vec<usize>,
        replaces: Vec<Pid>,
    ) -> Child {
        Child {
            pid,
            role,
            number,
            slot,
            generation,
            life: Life::Booting,
            lanes,
            replaces,
        }
    }

    pub fn ready_seen(&self) -> bool {
        self.life.ready_seen()
    }

    /// Still serving: not asked to stop, and not draining on its own (an operator
    /// may TERM a worker directly; its replacement should start at once).
    pub fn serving(&self) -> bool {
        matches!(self.life, Life::Booting | Life::Serving { .. })
            && self.slot.state() != SlotState::Draining
    }

    /// Due for replacement (whatever its generation): the master or the child
    /// itself asked for it.
    pub fn retire_requested(&self) -> bool {
        matches!(self.life, Life::Serving { retire: true })
            || self.slot.state() == SlotState::RetireRequested
    }

    /// Records that it reported ready; true the first time.
    pub fn mark_ready(&mut self) -> bool {
        match self.life.with_ready() {
            Some(life) => {
                self.life = life;
                true
            }
            None => false,
        }
    }

    /// Marks a serving, ready child for replacement; true if it was not marked yet.
    pub fn want_retire(&mut self) -> bool {
        if self.life == (Life::Serving { retire: false }) {
            self.life = Life::Serving { retire: true };
            return true;
        }
        false
    }

    pub fn signal(&self, sig: Signal) {
        // ESRCH means it already exited; the reaper will see it.
        let _ = kill(self.pid, sig);
    }

    pub fn terminate(&mut self, now: Instant) {
        // A worker told to stop takes over from nobody.
        self.replaces.clear();
        self.ask_stop(Signal::SIGTERM, now);
    }

    /// Sends `sig` (TERM or QUIT) and, unless it was asked before, records the
    /// request at `now`; the graceful timeout counts from the first request.
    pub fn stop_with(&mut self, sig: Signal, now: Instant) {
        if let Some(life) = self.life.with_stop(now) {
            self.life = life;
        }
        self.signal(sig);
    }

    fn ask_stop(&mut self, sig: Signal, now: Instant) {
        if let Some(life) = self.life.with_stop(now) {
            self.life = life;
            self.signal(sig);
        }
    }

    pub fn force_kill(&mut self) {
        if !matches!(self.life, Life::Killed { .. }) {
            self.life = Life::Killed {
                ready: self.life.ready_seen(),
                asked: self.life.asked(),
            };
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
        match self.life {
            Life::Killed { .. } => return false,
            Life::Aborted { since, .. } => {
                if now.duration_since(since) >= Duration::from_secs(1) {
                    self.force_kill();
                }
                return false;
            }
            Life::Stopping { since, .. } if now.duration_since(since) >= graceful => {
                self.force_kill();
                return false;
            }
            _ => {}
        }
        let silent = now_ms.saturating_sub(self.slot.heartbeat_ms());
        if silent > timeout.as_millis() as u64 {
            self.life = Life::Aborted {
                since: now,
                ready: self.life.ready_seen(),
                asked: self.life.asked(),
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lives(now: Instant) -> Vec<Life> {
        let mut all = vec![Life::Booting];
        for ready in [false, true] {
            if ready {
                all.push(Life::Serving { retire: false });
                all.push(Life::Serving { retire: true });
            }
            all.push(Life::Stopping { since: now, ready });
            for asked in [false, true] {
                all.push(Life::Aborted {
                    since: now,
                    ready,
                    asked,
                });
                all.push(Life::Killed { ready, asked });
            }
        }
        all
    }

    #[test]
    fn readiness_is_recorded_once_and_kept() {
        let now = Instant::now();
        for life in lives(now) {
            match life.with_ready() {
                Some(next) => {
                    assert!(!life.ready_seen(), "{life:?}");
                    assert!(next.ready_seen());
                    assert_eq!(next.ending(), life.ending());
                    assert_eq!(next.asked(), life.asked());
                }
                None => assert!(life.ready_seen(), "{life:?}"),
            }
        }
    }

    #[test]
    fn a_stop_is_asked_once_and_keeps_its_first_time() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        for life in lives(now) {
            match life.with_stop(later) {
                Some(next) => {
                    assert!(!life.asked(), "{life:?}");
                    assert!(next.asked() && next.ending() && !next.boot_failed());
                    assert_eq!(next.ready_seen(), life.ready_seen());
                }
                None => assert!(life.asked(), "{life:?}"),
            }
        }
        let stopping = Life::Stopping {
            since: now,
            ready: true,
        };
        assert_eq!(stopping.with_stop(later), None);
    }

    #[test]
    fn only_a_child_never_ready_nor_asked_failed_to_boot() {
        let now = Instant::now();
        for life in lives(now) {
            let expected = !life.ready_seen() && !life.asked();
            assert_eq!(life.boot_failed(), expected, "{life:?}");
        }
        let hung = Life::Aborted {
            since: now,
            ready: false,
            asked: false,
        };
        assert!(hung.boot_failed() && hung.ending());
        assert!(!Life::Booting.ending());
    }
}
