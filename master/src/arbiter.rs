//! The master's loop: one function over a signal queue, and one small named step per
//! duty (`reap`, `notice_ready`, `kill_stuck`, `manage`), as gunicorn's arbiter.
//!
//! Worker replacement is readiness-gated: a replacement is forked first, and the
//! worker it replaces is asked to drain only once the replacement reports ready. At
//! most one slot is in transition at a time, so reloads and max-requests recycling
//! never reduce serving capacity and two workers never recycle together. Those
//! decisions are the pure [`crate::policy::plan`]; `manage` gathers its snapshot
//! and carries out its actions.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use signal_hook::consts::signal::*;

use crate::backoff::Backoff;
use crate::child::{Child, Life};
pub use crate::child::{ExitReason, Role};
use crate::clock;
use crate::listener::{Address, Listener};
use crate::listener_set::ListenerSet;
use crate::memory;
use crate::notify::Notifier;
use crate::pidfile::Pidfile;
use crate::policy::{self, Action, SingletonView, Snapshot, WorkerView};
use crate::proctitle;
use crate::scoreboard::{Scoreboard, SlotHandle, SlotState, WORKER_SLOTS};
use crate::signals::{self, SignalQueue};
use crate::upgrade::{Exec, Handover};

/// What the master needs to know from the application's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workers: usize,
    pub timeout: Duration,
    pub graceful_timeout: Duration,
    pub pidfile: Option<PathBuf>,
    /// Process-title prefix, e.g. `blitz` → `blitz: worker 3`.
    pub title: String,
    /// Names of singleton children (e.g. `bot-runner`), one process each.
    pub singletons: Vec<String>,
    /// Resident memory past which a worker is replaced gracefully.
    pub max_worker_memory: Option<u64>,
}

/// Everything a child gets after fork.
pub struct ChildCtx {
    pub role: Role,
    pub number: usize,
    pub generation: u64,
    pub slot: SlotHandle,
    pub scoreboard: Scoreboard,
    /// Inherited listeners, owned by the child (empty for singletons, which must
    /// not accept). Taking them lets a draining worker really close them.
    pub listeners: Vec<Listener>,
    pub master_pid: i32,
    poke_fd: RawFd,
}

impl ChildCtx {
    /// Sets this child's slot state and wakes the master so it reacts at once.
    pub fn report(&self, state: SlotState) {
        self.link().report(state);
    }

    /// A copy of the slot and wake-up handle that can outlive this context.
    pub fn link(&self) -> Link {
        Link {
            slot: self.slot,
            poke_fd: self.poke_fd,
        }
    }
}

/// A child's handle for reporting state to the master.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub slot: SlotHandle,
    poke_fd: RawFd,
}

impl Link {
    /// Publishes this child's state and wakes the master. The first report also
    /// releases the stop signals held since fork (see `spawn`): by then the child
    /// has installed its own handlers.
    pub fn report(&self, state: SlotState) {
        signals::release_held();
        self.slot.set_state(state);
        // SAFETY: the wake pipe's write end stays open for the child's whole life.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.poke_fd) };
        let _ = nix::unistd::write(fd, b"!");
    }
}

/// Things worth logging; the application decides how.
#[derive(Debug)]
pub enum Event<'a> {
    Listening(&'a Address),
    Spawned {
        role: Role,
        number: usize,
        pid: i32,
    },
    Ready {
        role: Role,
        number: usize,
        pid: i32,
    },
    /// A child was reaped; its scoreboard `slot` is free and not reused before
    /// this event returns (the application may fold per-slot state).
    Exited {
        role: Role,
        number: usize,
        slot: usize,
        pid: i32,
        reason: ExitReason,
        expected: bool,
    },
    /// `--timeout` fired: `request` is what it was serving ("METHOD PATH ID").
    Timeout {
        role: Role,
        number: usize,
        pid: i32,
        request: String,
    },
    BootFailed {
        role: Role,
        number: usize,
        retry_in: Duration,
    },
    Signal(&'static str),
    Unsupported(&'static str),
    Reloading {
        generation: u64,
    },
    ReloadFailed(String),
    Reloaded {
        generation: u64,
    },
    /// `USR2`: a new master was started with our listeners.
    Upgrading {
        pid: i32,
    },
    /// The new master exited before we were stopped; we keep serving.
    UpgradeFailed(String),
    /// We are a new master started by `USR2` of `old_master`.
    TookOver {
        old_master: i32,
    },
    /// The new master's workers are serving; systemd hears from it from now on.
    UpgradeReady {
        pid: i32,
    },
    /// `TERM` during an upgrade: the stop waits until the new master serves.
    StopDeferred,
    /// A worker grew past `--max-worker-memory` and will be replaced.
    MemoryRecycle {
        number: usize,
        pid: i32,
        rss: u64,
    },
    WorkersTarget(usize),
    Stopping {
        graceful: bool,
    },
    /// `handed_over`: a new master (USR2) keeps serving on the same sockets.
    Stopped {
        handed_over: bool,
    },
    Error(String),
}

/// The application side of the supervisor.
pub trait App {
    /// Runs in the forked child; the return value is its exit code.
    fn run_child(&mut self, ctx: ChildCtx) -> i32;
    /// `HUP`: re-read configuration; `Err` keeps the current one.
    fn reload(&mut self) -> Result<Settings, String>;
    /// `USR1`: reopen log files.
    fn reopen_logs(&mut self);
    fn event(&mut self, ev: Event<'_>);
    /// Descriptors besides the listeners that a new master must inherit on `USR2`,
    /// each passed as `NAME=fd` in its environment.
    fn upgrade_fds(&self) -> Vec<(String, RawFd)> {
        Vec::new()
    }
}

/// Longest the loop sleeps; heartbeat checks run at least this often.
const TICK: Duration = Duration::from_millis(200);

struct Arbiter<'a, A: App> {
    app: &'a mut A,
    settings: Settings,
    listeners: ListenerSet,
    sb: Scoreboard,
    signals: Option<SignalQueue>,
    pidfile: Option<Pidfile>,
    exec: Option<Exec>,
    /// Binary upgrade: the new master we started, or the old one that started us.
    handover: Handover,
    /// A TERM that waits for the new master to be ready (`Some(graceful)`).
    pending_stop: Option<bool>,
    /// Why the newest workers do not come up (for `STATUS=`), until one does.
    boot_trouble: Option<String>,
    last_memory_check: Instant,
    wake_r: UnixStream,
    wake_w: UnixStream,
    children: Vec<Child>,
    generation: u64,
    target: usize,
    worker_backoff: Backoff,
    singleton_backoff: Vec<Backoff>,
    sd: Notifier,
    reloading: bool,
    announced_ready: bool,
    last_status: String,
    last_watchdog: Instant,
    master_pid: i32,
}

/// Runs the master until it stops; returns the process exit code.
pub fn run<A: App>(app: &mut A, settings: Settings, listeners: ListenerSet, sb: Scoreboard) -> i32 {
    // Before the title overwrites argv: how to start this program again (USR2).
    let exec = Exec::current();
    let pid = std::process::id() as i32;
    proctitle::set(&format!("{}: master", settings.title));
    let pidfile = match settings.pidfile.as_deref().map(|p| Pidfile::create(p, pid)) {
        Some(Err(e)) => {
            app.event(Event::Error(format!("pidfile: {e}")));
            return 1;
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    match Arbiter::new(app, settings, listeners, sb, pidfile, exec) {
        Ok(mut arbiter) => {
            let code = arbiter.run_loop();
            if let Some(p) = &arbiter.pidfile {
                p.remove();
            }
            code
        }
        Err((e, pidfile)) => {
            app.event(Event::Error(format!("master start-up: {e}")));
            if let Some(p) = pidfile {
                p.remove();
            }
            1
        }
    }
}

impl<'a, A: App> Arbiter<'a, A> {
    fn new(
        app: &'a mut A,
        settings: Settings,
        listeners: ListenerSet,
        sb: Scoreboard,
        pidfile: Option<Pidfile>,
        exec: Option<Exec>,
    ) -> Result<Self, (io::Error, Option<Pidfile>)> {
        let (wake_r, wake_w) = match UnixStream::pair() {
            Ok(p) => p,
            Err(e) => return Err((e, pidfile)),
        };
        let signals = match wake_r
            .set_nonblocking(true)
            .and_then(|_| wake_w.set_nonblocking(true))
            .and_then(|_| SignalQueue::install())
        {
            Ok(s) => s,
            Err(e) => return Err((e, pidfile)),
        };
        for l in listeners.all() {
            app.event(Event::Listening(&l.address));
        }
        let sd = Notifier::from_env();
        let handover = Handover::from_env();
        if let Some(old_master) = handover.predecessor() {
            app.event(Event::TookOver { old_master });
        }
        Ok(Arbiter {
            target: settings.workers,
            singleton_backoff: settings
                .singletons
                .iter()
                .map(|_| Backoff::default())
                .collect(),
            app,
            settings,
            listeners,
            sb,
            signals: Some(signals),
            pidfile,
            exec,
            handover,
            pending_stop: None,
            boot_trouble: None,
            last_memory_check: Instant::now(),
            wake_r,
            wake_w,
            children: Vec::new(),
            generation: 1,
            worker_backoff: Backoff::default(),
            sd,
            reloading: false,
            announced_ready: false,
            last_status: String::new(),
            last_watchdog: Instant::now(),
            master_pid: std::process::id() as i32,
        })
    }

    fn run_loop(&mut self) -> i32 {
        loop {
            self.manage();
            self.wait(TICK);
            let pending = self.signals.as_mut().map(|s| s.take()).unwrap_or_default();
            for sig in pending {
                if sig != SIGCHLD {
                    self.app.event(Event::Signal(signals::name(sig)));
                }
                match sig {
                    SIGTERM
                        if self.handover.successor().is_some()
                            && !self.handover.successor_ready() =>
                    {
                        // Stopping now would leave only a master that is not yet
                        // serving (or none, if it then fails): wait for it.
                        self.pending_stop = Some(true);
                        self.app.event(Event::StopDeferred);
                    }
                    SIGTERM => return self.stop(true),
                    SIGINT | SIGQUIT => return self.stop(false),
                    SIGHUP => self.on_hup(),
                    SIGTTIN => self.on_ttin(),
                    SIGTTOU => self.on_ttou(),
                    SIGWINCH => self.on_winch(),
                    SIGUSR1 => self.on_usr1(),
                    SIGUSR2 => self.on_usr2(),
                    _ => {}
                }
            }
            self.reap();
            self.notice_ready();
            self.notice_successor();
            if let Some(graceful) = self.pending_stop {
                if self.handover.successor_ready() || self.handover.successor().is_none() {
                    return self.stop(graceful);
                }
            }
            self.kill_stuck();
            self.check_memory();
            self.report();
        }
    }

    /// Sleeps until a signal, a child's report, or `max` elapses.
    fn wait(&mut self, max: Duration) {
        let now = Instant::now();
        let backoff = self.worker_backoff.remaining(now).filter(|d| !d.is_zero());
        let timeout = backoff.map_or(max, |d| d.min(max));
        let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::ZERO);
        {
            let sig_fd = self.signals.as_ref().map(|s| s.fd());
            let mut fds = vec![PollFd::new(self.wake_r.as_fd(), PollFlags::POLLIN)];
            if let Some(fd) = sig_fd {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            if let Some(fd) = self.handover.ready_fd() {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            let _ = poll(&mut fds, ms);
        }
        let mut buf = [0u8; 256];
        while matches!((&self.wake_r).read(&mut buf), Ok(n) if n > 0) {}
    }

    fn on_hup(&mut self) {
        match self.app.reload() {
            Ok(settings) => {
                self.target = settings.workers;
                self.settings = settings;
                self.generation += 1;
                self.reloading = true;
                self.sd
                    .send(&format!("RELOADING=1\nMONOTONIC_USEC={}", clock::now_us()));
                self.app.event(Event::Reloading {
                    generation: self.generation,
                });
            }
            Err(e) => self.app.event(Event::ReloadFailed(e)),
        }
    }

    /// USR2: start the new binary on our sockets; `PATH.oldbin` becomes our pidfile.
    fn on_usr2(&mut self) {
        if self.handover.successor().is_some() {
            self.app.event(Event::UpgradeFailed(
                "a new master is already running; TERM this one or the new one first".into(),
            ));
            return;
        }
        // Its pidfile is `PATH.oldbin`; a third master would take that name too.
        if self.handover.predecessor_alive() {
            let old = self.handover.predecessor().unwrap_or_default();
            self.app.event(Event::UpgradeFailed(format!(
                "the previous master (pid {old}) still runs; TERM it first"
            )));
            return;
        }
        let Some(exec) = self.exec.clone() else {
            self.app.event(Event::UpgradeFailed(
                "cannot tell which program to re-execute".into(),
            ));
            return;
        };
        if let Some(p) = &mut self.pidfile {
            if let Err(e) = p.move_to_oldbin() {
                self.app.event(Event::UpgradeFailed(format!(
                    "cannot rename the pidfile: {e}"
                )));
                return;
            }
        }
        let extra = self.app.upgrade_fds();
        match self
            .handover
            .start(&exec, &self.listeners, &extra, &self.sd)
        {
            Ok(pid) => self.app.event(Event::Upgrading { pid }),
            Err(e) => {
                if let Some(p) = &mut self.pidfile {
                    p.restore(None);
                }
                self.app.event(Event::UpgradeFailed(format!(
                    "cannot start {}: {e}",
                    exec.program.display()
                )));
            }
        }
    }

    /// The new master is gone (it failed, or was stopped to roll back): we own the
    /// service again, with sockets that must accept.
    fn successor_exited(&mut self, pid: Pid, reason: ExitReason) {
        self.handover.successor_exited(&mut self.sd);
        if let Some(p) = &mut self.pidfile {
            p.restore(Some(pid.as_raw()));
        }
        // A new master that stopped on its own may have frozen the shared sockets.
        for l in self.listeners.all() {
            l.detach_filter();
        }
        self.sd.send(&format!("MAINPID={}", self.master_pid));
        self.announced_ready = false;
        self.last_status.clear();
        self.app.event(Event::UpgradeFailed(format!(
            "the new master (pid {pid}) exited ({reason:?}); this one keeps serving"
        )));
    }

    /// The new master reported its workers ready: it speaks to systemd now.
    fn notice_successor(&mut self) {
        if self.handover.check_ready(&mut self.sd) {
            let pid = self.handover.successor().map_or(0, Pid::as_raw);
            self.app.event(Event::UpgradeReady { pid });
        }
    }

    /// `--max-worker-memory`: once a second, a ready worker past the limit is marked
    /// for the usual readiness-gated replacement.
    fn check_memory(&mut self) {
        let Some(limit) = self.settings.max_worker_memory else {
            return;
        };
        if self.last_memory_check.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_memory_check = Instant::now();
        for c in &mut self.children {
            if c.role != Role::Worker || !c.serving() || c.life != (Life::Serving { retire: false })
            {
                continue;
            }
            match memory::rss_bytes(c.pid.as_raw()) {
                Some(rss) if rss > limit && c.want_retire() => {
                    self.app.event(Event::MemoryRecycle {
                        number: c.number,
                        pid: c.pid.as_raw(),
                        rss,
                    });
                }
                _ => {}
            }
        }
    }

    fn on_ttin(&mut self) {
        if self.target < WORKER_SLOTS / 2 {
            self.target += 1;
        }
        self.app.event(Event::WorkersTarget(self.target));
    }

    fn on_ttou(&mut self) {
        if self.target > 1 {
            self.target -= 1;
        }
        self.app.event(Event::WorkersTarget(self.target));
    }

    /// WINCH: gracefully stop every worker but keep the master (HUP brings them back).
    fn on_winch(&mut self) {
        self.target = 0;
        self.app.event(Event::WorkersTarget(0));
    }

    fn on_usr1(&mut self) {
        self.app.reopen_logs();
        for c in &self.children {
            c.signal(Signal::SIGUSR1);
        }
    }

    /// Collects every exited child, frees its slot, and feeds boot failures to the
    /// back-off.
    fn reap(&mut self) {
        loop {
            let (pid, reason) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitReason::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, ExitReason::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if self.handover.successor() == Some(pid) {
                self.successor_exited(pid, reason);
                continue;
            }
            let Some(i) = self.children.iter().position(|c| c.pid == pid) else {
                continue;
            };
            let c = self.children.swap_remove(i);
            c.slot.release();
            // Its pid may be reused by the next fork: nobody replaces it any more.
            for other in &mut self.children {
                other.replaces.retain(|p| *p != pid);
            }
            let expected = c.life.ending();
            self.app.event(Event::Exited {
                role: c.role,
                number: c.number,
                slot: c.slot.index(),
                pid: pid.as_raw(),
                reason,
                expected,
            });
            if c.life.boot_failed() {
                let retry_in = self.backoff_for(c.role).failed(Instant::now());
                if c.role == Role::Worker {
                    self.boot_trouble = Some(format!(
                        "a new worker failed to boot, retrying in {}s",
                        retry_in.as_secs()
                    ));
                }
                self.app.event(Event::BootFailed {
                    role: c.role,
                    number: c.number,
                    retry_in,
                });
            }
        }
    }

    fn backoff_for(&mut self, role: Role) -> &mut Backoff {
        match role {
            Role::Worker => &mut self.worker_backoff,
            Role::Singleton(i) => &mut self.singleton_backoff[i],
        }
    }

    fn notice_ready(&mut self) {
        for i in 0..self.children.len() {
            let c = &mut self.children[i];
            if c.slot.state() == SlotState::Booting || !c.mark_ready() {
                continue;
            }
            let (role, number, pid) = (c.role, c.number, c.pid.as_raw());
            self.backoff_for(role).succeeded();
            if role == Role::Worker {
                self.boot_trouble = None;
            }
            self.app.event(Event::Ready { role, number, pid });
        }
    }

    fn kill_stuck(&mut self) {
        let (now, now_ms) = (Instant::now(), clock::now_ms());
        let (timeout, graceful) = (self.settings.timeout, self.settings.graceful_timeout);
        for c in &mut self.children {
            if c.enforce_timeouts(now, now_ms, timeout, graceful) {
                let request = c.slot.request().unwrap_or_default();
                self.app.event(Event::Timeout {
                    role: c.role,
                    number: c.number,
                    pid: c.pid.as_raw(),
                    request,
                });
            }
        }
    }

    /// Brings the set of children to the target: singletons always present; workers
    /// at `target`, replacing stale ones one at a time, readiness first. What to do
    /// is decided by [`policy::plan`]; this only gathers its input and carries it out.
    fn manage(&mut self) {
        let now = Instant::now();
        let actions = policy::plan(self.snapshot(now));
        for action in actions {
            match action {
                Action::Spawn {
                    role,
                    lanes,
                    replaces,
                } => self.spawn(role, lanes, replaces),
                Action::Stop(pid) => self.stop_worker(pid, now),
                Action::Reloaded => {
                    self.reloading = false;
                    self.announced_ready = false;
                    self.app.event(Event::Reloaded {
                        generation: self.generation,
                    });
                }
            }
        }
    }

    /// What the policy decides from: the workers in the order they were spawned
    /// (ties go to the first), the singletons, the target and the back-offs.
    fn snapshot(&self, now: Instant) -> Snapshot {
        let workers = self
            .children
            .iter()
            .filter(|c| c.role == Role::Worker)
            .map(|c| WorkerView {
                pid: c.pid,
                number: c.number,
                generation: c.generation,
                ready: c.ready_seen(),
                serving: c.serving(),
                retire: c.retire_requested(),
                lanes: c.lanes.clone(),
                replaces: c.replaces.clone(),
            })
            .collect();
        let singletons = (0..self.settings.singletons.len())
            .map(|i| SingletonView {
                present: self.children.iter().any(|c| c.role == Role::Singleton(i)),
                may_spawn: self.singleton_backoff[i].may_spawn(now),
            })
            .collect();
        Snapshot {
            workers,
            singletons,
            generation: self.generation,
            target: self.target,
            lane_count: self.listeners.lane_count(),
            workers_may_spawn: self.worker_backoff.may_spawn(now),
            reloading: self.reloading,
        }
    }

    /// Asks a worker to drain; nobody waits to take over from it any more.
    fn stop_worker(&mut self, pid: Pid, now: Instant) {
        for c in &mut self.children {
            c.replaces.retain(|p| *p != pid);
            if c.pid == pid {
                c.terminate(now);
            }
        }
    }

    fn free_worker_number(&self) -> Option<usize> {
        (0..WORKER_SLOTS).find(|n| {
            !self
                .children
                .iter()
                .any(|c| c.role == Role::Worker && c.number == *n)
        })
    }

    fn spawn(&mut self, role: Role, lanes: Vec<usize>, replaces: Vec<Pid>) {
        let (number, slot_index) = match role {
            Role::Worker => match self.free_worker_number() {
                Some(n) => (n, n),
                None => {
                    self.app
                        .event(Event::Error("no free worker slot; not spawning".into()));
                    return;
                }
            },
            Role::Singleton(i) => (i, Scoreboard::singleton_slot(i)),
        };
        let slot = self.sb.slot(slot_index);
        slot.reset(self.generation);
        // A stop signal that reaches the child before it installed its handlers
        // would hit the inherited no-op handler and be lost; hold those signals
        // across fork: the parent releases them at once, the child on its first
        // report (Link::report), so they are delivered, not dropped.
        let held = signals::hold();
        // SAFETY: the master is single-threaded (no pools, no runtime threads), so
        // the child starts with consistent memory; it never returns into this loop.
        let forked = unsafe { fork() };
        if !matches!(forked, Ok(ForkResult::Child)) {
            signals::restore(held);
        }
        match forked {
            Ok(ForkResult::Child) => self.become_child(role, number, slot, &lanes),
            Ok(ForkResult::Parent { child }) => {
                slot.set_pid(child.as_raw());
                self.children.push(Child::new(
                    child,
                    role,
                    number,
                    slot,
                    self.generation,
                    lanes,
                    replaces,
                ));
                self.app.event(Event::Spawned {
                    role,
                    number,
                    pid: child.as_raw(),
                });
            }
            Err(e) => {
                slot.release();
                self.app.event(Event::Error(format!("fork failed: {e}")));
                let _ = self.backoff_for(role).failed(Instant::now());
            }
        }
    }

    fn become_child(&mut self, role: Role, number: usize, slot: SlotHandle, lanes: &[usize]) -> ! {
        if let Some(s) = self.signals.take() {
            s.forget_in_child();
        }
        let master_pid = self.master_pid;
        // A child must not outlive a master killed with SIGKILL: it gets TERM and
        // drains. If the master died before this call, stop right away.
        // SAFETY: PR_SET_PDEATHSIG only records a signal number for this process.
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        if nix::unistd::getppid().as_raw() != master_pid {
            std::process::exit(0);
        }
        self.children.clear();
        let name = match role {
            Role::Worker => format!("worker {number}"),
            Role::Singleton(i) => self.settings.singletons[i].clone(),
        };
        proctitle::set(&format!("{}: {name}", self.settings.title));
        let set = std::mem::take(&mut self.listeners);
        // Only workers accept; a singleton holding listeners would keep them open
        // past a stop.
        let listeners = match role {
            Role::Worker => set.into_child(lanes),
            Role::Singleton(_) => Vec::new(),
        };
        let ctx = ChildCtx {
            role,
            number,
            generation: self.generation,
            slot,
            scoreboard: self.sb,
            listeners,
            master_pid,
            poke_fd: self.wake_w.as_raw_fd(),
        };
        let app = &mut *self.app;
        let code = panic::catch_unwind(AssertUnwindSafe(|| app.run_child(ctx))).unwrap_or(70);
        let _ = io::stdout().flush();
        std::process::exit(code)
    }

    /// systemd status, readiness and watchdog.
    fn report(&mut self) {
        let ready = self
            .children
            .iter()
            .filter(|c| c.role == Role::Worker && c.serving() && c.ready_seen())
            .count();
        let mut status = format!(
            "{ready} of {} workers ready, generation {}{}",
            self.target,
            self.generation,
            if self.reloading { ", reloading" } else { "" }
        );
        if let Some(trouble) = &self.boot_trouble {
            status.push_str(&format!("; {trouble}; the previous workers keep serving"));
        }
        if let Some(pid) = self.handover.successor() {
            status.push_str(&format!("; upgrading to new master {pid}"));
        }
        if status != self.last_status {
            self.sd.send(&format!("STATUS={status}"));
            self.last_status = status;
        }
        if !self.announced_ready && !self.reloading && ready >= self.target {
            self.announced_ready = true;
            self.handover.announce_ready(&self.sd);
            self.sd.send("READY=1");
        }
        if let Some(every) = self.sd.watchdog_interval() {
            if self.last_watchdog.elapsed() >= every {
                self.last_watchdog = Instant::now();
                self.sd.send("WATCHDOG=1");
            }
        }
    }

    /// Stops every child (TERM to drain, or QUIT for a quick stop), waits up to the
    /// deadline, then kills what is left. Returns the master's exit code.
    fn stop(&mut self, graceful: bool) -> i32 {
        self.sb.set_stopping();
        // After a USR2 the other master keeps serving on the same sockets: the
        // successor we started, or (a roll-back) the predecessor that started us.
        let handed_back = self.handover.predecessor_alive();
        let handed_over = self.successor_alive() || handed_back;
        if handed_back {
            let old = self.handover.predecessor().unwrap_or_default();
            self.sd.send(&format!("MAINPID={old}"));
        } else if !handed_over {
            self.sd.send("STOPPING=1");
        }
        self.app.event(Event::Stopping { graceful });
        let now = Instant::now();
        let mut deadline = now
            + if graceful {
                self.settings.graceful_timeout
            } else {
                Duration::from_secs(2)
            };
        // Freeze the accept queues (no new SYNs are queued; queued connections stay)
        // before workers drain them, then drop the master's own descriptors so the
        // sockets close as soon as the last worker has emptied them. After a USR2
        // the other master serves the same sockets: they stay open and unfrozen.
        // A socket systemd holds outlives us: it is kept until the workers are
        // done and then unfrozen, so that it queues (and re-activates the service)
        // instead of dropping every connection until the next start.
        let mut unix_paths = Vec::new();
        let mut held_outside = Vec::new();
        let set = std::mem::take(&mut self.listeners);
        for l in set
            .shared
            .into_iter()
            .chain(set.lanes.into_iter().flatten())
        {
            if handed_over {
                continue;
            }
            if graceful {
                if let Err(e) = l.stop_new_connections() {
                    self.app
                        .event(Event::Error(format!("cannot freeze {}: {e}", l.address)));
                }
            }
            unix_paths.extend(l.owned_path());
            if l.held_outside() {
                held_outside.push(l);
            }
        }
        let sig = if graceful {
            Signal::SIGTERM
        } else {
            Signal::SIGQUIT
        };
        self.signal_all(sig, now);
        while !self.children.is_empty() {
            self.wait(Duration::from_millis(50));
            let pending = self.signals.as_mut().map(|s| s.take()).unwrap_or_default();
            if pending.iter().any(|s| *s == SIGINT || *s == SIGQUIT) {
                self.signal_all(Signal::SIGQUIT, Instant::now());
                deadline = deadline.min(Instant::now() + Duration::from_secs(2));
            }
            self.reap();
            if Instant::now() >= deadline {
                for c in &mut self.children {
                    c.force_kill();
                }
            }
        }
        for path in unix_paths {
            let _ = std::fs::remove_file(path);
        }
        for l in held_outside {
            l.detach_filter();
        }
        self.app.event(Event::Stopped { handed_over });
        0
    }

    /// The USR2 successor still runs (reaped here if it just exited).
    fn successor_alive(&mut self) -> bool {
        let Some(pid) = self.handover.successor() else {
            return false;
        };
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => true,
            _ => {
                self.handover.successor_exited(&mut self.sd);
                false
            }
        }
    }

    fn signal_all(&mut self, sig: Signal, now: Instant) {
        for c in &mut self.children {
            c.stop_with(sig, now);
        }
    }
}
