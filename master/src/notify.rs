//! systemd's `sd_notify` protocol: datagrams to `$NOTIFY_SOCKET`.
//!
//! Written here rather than pulled from a crate because it is a dozen lines and must
//! stay fork-safe: no background thread, one socket created per message.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID`, then removes them from
    /// the environment so children never notify on the master's behalf.
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty());
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|us| *us > 0 && pid_ok)
            .map(Duration::from_micros);
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(var);
        }
        Notifier { socket, watchdog }
    }

    /// systemd's watchdog timeout, for a new master started by a binary upgrade.
    pub fn watchdog_usec(&self) -> Option<u64> {
        self.watchdog.map(|d| d.as_micros() as u64)
    }

    /// The interval at which `WATCHDOG=1` must be sent (half of systemd's timeout).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// The socket path, for a new master started by a binary upgrade.
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one state message; failures are ignored (systemd may be gone).
    pub fn send(&self, state: &str) {
        let Some(path) = &self.socket else { return };
        let Ok(sock) = UnixDatagram::unbound() else {
            return;
        };
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(path),
        };
        if let Ok(addr) = addr {
            let _ = sock.send_to_addr(state.as_bytes(), &addr);
        }
    }
}
