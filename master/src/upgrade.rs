//! `USR2`: binary upgrade, as nginx and gunicorn do it. The master starts the binary
//! again as its own child, with the listening sockets (and the application's other
//! long-lived sockets) inherited through the environment, so both generations accept
//! on the very same sockets and no connection is refused in between. The operator
//! then stops the old master with `TERM`.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::unistd::Pid;

use crate::listener_set::{ListenerSet, INHERIT_VAR};
use crate::notify::Notifier;

/// Set in the new master's environment: the old master's pid.
pub const PARENT_VAR: &str = "BLITZ_MASTER_UPGRADE_FROM";

/// How to start this program again, captured at start-up: the path, not
/// `/proc/self/exe`, so that a binary replaced on disk is what runs next.
#[derive(Debug, Clone)]
pub struct Exec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl Exec {
    pub fn current() -> Option<Exec> {
        let mut argv = std::env::args_os();
        let first = PathBuf::from(argv.next()?);
        // Symlinks are kept, not resolved: with `current -> releases/N/blitz`, a
        // re-pointed link is what runs next. A bare name is looked up on $PATH
        // now, as the shell did; a relative path is made absolute.
        let program = if first.components().count() > 1 {
            std::env::current_dir().ok()?.join(first)
        } else {
            search_path(&first).or_else(|| std::env::current_exe().ok())?
        };
        Some(Exec {
            program,
            args: argv.collect(),
        })
    }
}

fn search_path(name: &std::path::Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
            }
        })
}

/// Environment variable naming the descriptor on which a new master reports to
/// the old one that its first generation of workers is serving.
pub const READY_FD_VAR: &str = "BLITZ_MASTER_READY_FD";

/// One master's side of a binary upgrade: the successor it started (and whether
/// that one is serving yet), or the predecessor that started it.
#[derive(Debug, Default)]
pub struct Handover {
    successor: Option<Pid>,
    /// Our end of the successor's readiness socket, until it reported or died.
    ready_r: Option<UnixStream>,
    successor_ready: bool,
    /// Our systemd notifier, set aside while the successor speaks for the service.
    parked: Option<Notifier>,
    predecessor: Option<i32>,
    /// Our end of the predecessor's readiness socket, until we are ready.
    announce: Option<UnixStream>,
}

impl Handover {
    /// In a new master: who started us, and how to tell it we are ready. Removes
    /// the variables so that our own children never see them.
    pub fn from_env() -> Handover {
        let predecessor = std::env::var(PARENT_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let announce = std::env::var(READY_FD_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<RawFd>().ok())
            // SAFETY: the old master passed this descriptor for us alone to own.
            .map(|fd| unsafe { UnixStream::from_raw_fd(fd) });
        if let Some(s) = &announce {
            let _ = nix::fcntl::fcntl(
                s,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
        }
        std::env::remove_var(PARENT_VAR);
        std::env::remove_var(READY_FD_VAR);
        Handover {
            predecessor,
            announce,
            ..Handover::default()
        }
    }

    pub fn predecessor(&self) -> Option<i32> {
        self.predecessor
    }

    /// The master that started us still runs (we are its child until it exits).
    pub fn predecessor_alive(&self) -> bool {
        self.predecessor == Some(nix::unistd::getppid().as_raw())
    }

    pub fn successor(&self) -> Option<Pid> {
        self.successor
    }

    pub fn successor_ready(&self) -> bool {
        self.successor_ready
    }

    /// Starts the new master with our listeners and `extra` descriptors.
    pub fn start(
        &mut self,
        exec: &Exec,
        listeners: &ListenerSet,
        extra: &[(String, RawFd)],
        sd: &Notifier,
    ) -> io::Result<i32> {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let mut extra = extra.to_vec();
        extra.push((READY_FD_VAR.to_string(), theirs.as_raw_fd()));
        let pid = spawn(exec, listeners, &extra, sd)?;
        // `theirs` closes here: only the new master holds it now, so its death
        // reads as end-of-file.
        drop(theirs);
        self.successor = Some(Pid::from_raw(pid as i32));
        self.ready_r = Some(ours);
        self.successor_ready = false;
        Ok(pid as i32)
    }

    /// The socket to poll for the successor's readiness report.
    pub fn ready_fd(&self) -> Option<BorrowedFd<'_>> {
        self.ready_r.as_ref().map(AsFd::as_fd)
    }

    /// Reads the successor's report; true when it just became ready, and then
    /// the successor speaks to systemd for the service: `sd` is parked.
    pub fn check_ready(&mut self, sd: &mut Notifier) -> bool {
        let Some(r) = &self.ready_r else {
            return false;
        };
        let mut buf = [0u8; 8];
        match (&*r).read(&mut buf) {
            Ok(n) if n > 0 => {
                self.ready_r = None;
                self.successor_ready = true;
                self.parked = Some(std::mem::take(sd));
                true
            }
            // End of file: it died before it was ready; the reaper will say so.
            Ok(_) => {
                self.ready_r = None;
                false
            }
            Err(_) => false,
        }
    }

    /// The successor exited: we speak for the service again.
    pub fn successor_exited(&mut self, sd: &mut Notifier) {
        self.successor = None;
        self.ready_r = None;
        self.successor_ready = false;
        if let Some(parked) = self.parked.take() {
            *sd = parked;
        }
    }

    /// In a new master whose first generation is serving: tell systemd we are
    /// the service's main process now, and tell the old master.
    pub fn announce_ready(&mut self, sd: &Notifier) {
        if let Some(mut s) = self.announce.take() {
            sd.send(&format!("MAINPID={}", std::process::id()));
            let _ = s.write_all(b"R");
        }
    }
}

/// Starts the new master; returns its pid.
fn spawn(
    exec: &Exec,
    listeners: &ListenerSet,
    extra: &[(String, RawFd)],
    sd: &Notifier,
) -> io::Result<u32> {
    let (mut fds, described) = listeners.encode();
    let mut cmd = Command::new(&exec.program);
    cmd.args(&exec.args)
        .env(INHERIT_VAR, described)
        .env(PARENT_VAR, std::process::id().to_string());
    for var in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        cmd.env_remove(var);
    }
    for (name, fd) in extra {
        cmd.env(name, fd.to_string());
        fds.push(*fd);
    }
    // The master took NOTIFY_SOCKET and WATCHDOG_USEC out of its environment so
    // children never notify for it; the new master must tell systemd `MAINPID=`
    // and keep the watchdog fed once the old master is gone.
    if let Some(sock) = sd.socket() {
        cmd.env("NOTIFY_SOCKET", sock);
    }
    if let Some(usec) = sd.watchdog_usec() {
        cmd.env("WATCHDOG_USEC", usec.to_string());
    }
    cmd.env_remove("WATCHDOG_PID");
    // SAFETY: between fork and exec the closure only calls fcntl(2), which is
    // async-signal-safe, on descriptors the parent keeps open.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // The child is reaped by the master's `waitpid(-1)` loop, not by `Child`.
    cmd.spawn().map(|c| c.id())
}
