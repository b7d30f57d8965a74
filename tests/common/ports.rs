//! Loopback ports held for a server that another process will bind (redis-server,
//! nginx), without the pick-then-bind race of "bind port 0, close, pass the number".
//!
//! A [`ReservedPort`] is a TCP socket bound to `127.0.0.1:PORT` with `SO_REUSEADDR`
//! and never listening. While it lives:
//! - nothing answers on the port (a connect is refused) until a server listens there;
//! - the kernel hands the port to no one else: neither a bind to port 0 (another
//!   test's kernel-chosen port) nor a connect's ephemeral source port takes a port
//!   that has an explicitly bound socket, and a bind without `SO_REUSEADDR` fails;
//! - a server that sets `SO_REUSEADDR` (redis-server, nginx, Rust's `TcpListener`)
//!   can bind and listen on it, since the held socket is not listening — again after
//!   that server was killed, so a restart finds its port free.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct ReservedPort {
    pub port: u16,
    _socket: OwnedFd,
}

impl ReservedPort {
    /// Reserves a kernel-chosen loopback port.
    pub fn new() -> ReservedPort {
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to a live c_int and its size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_REUSEADDR: {}", std::io::Error::last_os_error());
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: bind with a pointer to a live sockaddr_in and its size.
        let r = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_in).cast(),
                len,
            )
        };
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        let mut bound = addr;
        let mut len = len;
        // SAFETY: getsockname into a live sockaddr_in of `len` bytes.
        let r = unsafe {
            libc::getsockname(
                socket.as_raw_fd(),
                (&mut bound as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "getsockname: {}", std::io::Error::last_os_error());
        ReservedPort {
            port: u16::from_be(bound.sin_port),
            _socket: socket,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port)
    }

    /// True when nothing listens on the port (a `SO_REUSEADDR` listener can bind it).
    pub fn unused(&self) -> bool {
        TcpListener::bind(self.addr()).is_ok()
    }
}

impl Default for ReservedPort {
    fn default() -> Self {
        ReservedPort::new()
    }
}
