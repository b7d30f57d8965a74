//! Listening sockets, owned by the master and inherited by every worker.
//!
//! The master binds (or adopts systemd's sockets) once; workers come and go without
//! the sockets ever closing, so the kernel's accept queue survives respawns.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{
    bind, getsockname, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag,
    SockType, SockaddrLike, SockaddrStorage, UnixAddr,
};

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Tcp,
    Unix,
}

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    pub kind: ListenerKind,
    pub address: Address,
    /// We created the socket file and must unlink it on exit.
    owns_path: bool,
    /// Passed by systemd, which keeps it open after we exit.
    held_outside: bool,
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Listener {
    /// Binds `addr` with the given backlog. `reuse_port` sets SO_REUSEPORT so another
    /// master (a binary upgrade, a second instance) can bind the same port.
    pub fn bind(addr: &Address, backlog: i32, reuse_port: bool) -> io::Result<Listener> {
        match addr {
            Address::Tcp(sa) => bind_tcp(*sa, backlog, reuse_port),
            Address::Unix(path) => bind_unix(path, backlog),
        }
    }

    /// Duplicates the underlying descriptor (for a child that wants its own handle).
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// The port actually bound (useful with port 0).
    pub fn local_port(&self) -> Option<u16> {
        let ss: SockaddrStorage = getsockname(self.as_raw_fd()).ok()?;
        ss.as_sockaddr_in()
            .map(|a| a.port())
            .or_else(|| ss.as_sockaddr_in6().map(|a| a.port()))
    }

    /// The Unix socket file we created and must remove on final exit.
    pub fn owned_path(&self) -> Option<PathBuf> {
        match (&self.address, self.owns_path) {
            (Address::Unix(path), true) => Some(path.clone()),
            _ => None,
        }
    }

    /// Gives up the descriptor (a worker takes ownership of its inherited copy).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Makes the kernel drop new connection attempts (SYNs) to this socket while
    /// connections already queued stay acceptable. Used on graceful stop so that
    /// draining workers can empty the accept queue without it refilling; clients
    /// that arrive meanwhile retry their SYN and are refused once the socket closes
    /// (or reach the next server that binds the port).
    pub fn stop_new_connections(&self) -> io::Result<()> {
        // A one-instruction classic BPF program: "return 0" = drop the packet.
        let mut drop_all = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: drop_all.as_mut_ptr(),
        };
        // SAFETY: `prog` points at a valid one-instruction filter for the call's
        // duration; the kernel copies it.
        let r = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Removes a socket filter left by a previous owner's graceful stop
    /// (`stop_new_connections`): a socket systemd or an old master kept open would
    /// otherwise keep dropping every new connection.
    pub(crate) fn detach_filter(&self) {
        let none: libc::c_int = 0;
        // SAFETY: SO_DETACH_FILTER reads nothing beyond the option length; ENOENT
        // (no filter attached) is the usual, harmless answer.
        unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_DETACH_FILTER,
                (&none as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    pub(crate) fn with_held_outside(mut self, outside: bool) -> Listener {
        self.held_outside = outside;
        self
    }

    /// The socket stays open after we exit (systemd socket activation).
    pub fn held_outside(&self) -> bool {
        self.held_outside
    }

    /// Adopts an inherited listening descriptor (systemd's, or an old master's on a
    /// binary upgrade). `owns_path`: we become responsible for its socket file.
    pub(crate) fn adopt(raw: RawFd, owns_path: bool) -> io::Result<Listener> {
        let mut l = adopt(raw)?;
        l.owns_path = owns_path && l.kind == ListenerKind::Unix;
        l.detach_filter();
        Ok(l)
    }

    /// Adopts sockets passed by systemd (`LISTEN_PID` = our pid, `LISTEN_FDS` = n,
    /// descriptors 3..3+n). Returns `None` when not socket-activated.
    pub fn from_systemd() -> io::Result<Option<Vec<Listener>>> {
        let pid_matches = std::env::var("LISTEN_PID")
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            == Some(std::process::id());
        let count = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|n| n.trim().parse::<i32>().ok());
        for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(var);
        }
        let (true, Some(n)) = (pid_matches, count) else {
            return Ok(None);
        };
        (0..n)
            .map(|i| Listener::adopt(3 + i, false).map(|l| l.with_held_outside(true)))
            .collect::<io::Result<_>>()
            .map(Some)
    }
}

fn nonblocking_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    let fl = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
    // Close on exec: a re-executed binary inherits listeners only deliberately.
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

fn backlog(n: i32) -> io::Result<Backlog> {
    Backlog::new(n.clamp(1, libc::SOMAXCONN.max(65535))).map_err(io::Error::from)
}

fn bind_tcp(sa: SocketAddr, n: i32, reuse_port: bool) -> io::Result<Listener> {
    let family = if sa.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    if sa.is_ipv6() {
        // `[::]:8000` means IPv6 only; bind `0.0.0.0:8000` too for dual stack.
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    let addr = SockaddrStorage::from(sa);
    bind(fd.as_raw_fd(), &addr)?;
    listen(&fd, backlog(n)?)?;
    nonblocking_cloexec(fd.as_fd())?;
    let mut bound = sa;
    let ss: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    if let Some(port) = ss
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| ss.as_sockaddr_in6().map(|a| a.port()))
    {
        // Port 0 asks the kernel to choose; report the real one.
        bound.set_port(port);
    }
    Ok(Listener {
        fd,
        kind: ListenerKind::Tcp,
        address: Address::Tcp(bound),
        owns_path: false,
        held_outside: false,
    })
}

fn bind_unix(path: &Path, n: i32) -> io::Result<Listener> {
    remove_stale_socket(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    listen(&fd, backlog(n)?)?;
    nonblocking_cloexec(fd.as_fd())?;
    Ok(Listener {
        fd,
        kind: ListenerKind::Unix,
        address: Address::Unix(path.to_path_buf()),
        owns_path: true,
        held_outside: false,
    })
}

/// A socket file left by a crashed master is removed; one that still accepts
/// connections belongs to a live server and is an error (EADDRINUSE).
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

fn adopt(raw: RawFd) -> io::Result<Listener> {
    // SAFETY: systemd passed this descriptor to us; it stays open during the call.
    nonblocking_cloexec(unsafe { BorrowedFd::borrow_raw(raw) })?;
    // SAFETY: systemd passed this descriptor to us; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ss: SockaddrStorage = getsockname(raw)?;
    let (kind, address) = if let Some(un) = ss.as_unix_addr() {
        let path = un.path().map(Path::to_path_buf).unwrap_or_default();
        (ListenerKind::Unix, Address::Unix(path))
    } else if let Some(v4) = ss.as_sockaddr_in() {
        (
            ListenerKind::Tcp,
            Address::Tcp(SocketAddr::V4((*v4).into())),
        )
    } else if let Some(v6) = ss.as_sockaddr_in6() {
        (
            ListenerKind::Tcp,
            Address::Tcp(SocketAddr::V6((*v6).into())),
        )
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "inherited fd {raw} is not a TCP or Unix socket ({:?})",
                ss.family()
            ),
        ));
    };
    Ok(Listener {
        fd,
        kind,
        address,
        owns_path: false,
        held_outside: false,
    })
}
