//! `USR2`: binary upgrade, as nginx and gunicorn do it. The master starts the binary
//! again as its own child, with the listening sockets (and the application's other
//! long-lived sockets) inherited through the environment, so both generations accept
//! on the very same sockets and no connection is refused in between. The operator
//! then stops the old master with `TERM`.

use std::ffi::OsString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::listener_set::{ListenerSet, INHERIT_VAR};

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
        // A bare name was found on $PATH; a relative path is relative to the
        // directory we started in, which we never leave.
        let program = if first.components().count() > 1 {
            std::fs::canonicalize(&first).unwrap_or(first)
        } else {
            std::env::current_exe().ok()?
        };
        Some(Exec {
            program,
            args: argv.collect(),
        })
    }
}

/// Starts the new master; returns its pid.
pub fn spawn(
    exec: &Exec,
    listeners: &ListenerSet,
    extra: &[(String, RawFd)],
    notify_socket: Option<&str>,
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
    // The master took NOTIFY_SOCKET out of its environment so children never
    // notify for it; the new master must be able to tell systemd `MAINPID=`.
    if let Some(sock) = notify_socket {
        cmd.env("NOTIFY_SOCKET", sock);
    }
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

/// In a new master: the pid of the master that started it by `USR2`, if any.
pub fn upgraded_from() -> Option<i32> {
    let v = std::env::var(PARENT_VAR).ok()?;
    std::env::remove_var(PARENT_VAR);
    v.trim().parse().ok()
}
