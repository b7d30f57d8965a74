//! The master's listening sockets: shared ones that every worker accepts on, and
//! with `--reuse-port` one "lane" per worker: an SO_REUSEPORT socket per address that
//! the kernel load-balances connections over.
//!
//! Lanes are owned by the master, as in nginx: a worker only borrows the lanes it is
//! given, and a lane's socket (with its accept queue) outlives every worker that
//! served it. The arbiter keeps every lane covered by a serving worker (a
//! replacement inherits the lanes of the worker it replaces), so no connection the
//! kernel hashes to a lane waits for a worker that will never come.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::listener::{Address, Listener};

/// Environment variable naming inherited listeners on a binary upgrade:
/// `shared fds;lane 0 fds;lane 1 fds…`, each a comma list.
pub const INHERIT_VAR: &str = "BLITZ_MASTER_LISTENERS";

#[derive(Debug, Default)]
pub struct ListenerSet {
    pub shared: Vec<Listener>,
    pub lanes: Vec<Vec<Listener>>,
}

impl ListenerSet {
    /// Every worker accepts on every socket (the default model).
    pub fn shared(listeners: Vec<Listener>) -> ListenerSet {
        ListenerSet {
            shared: listeners,
            lanes: Vec::new(),
        }
    }

    /// Binds `addrs`. With `reuse_port` and more than one lane, each TCP address is
    /// bound once per lane with SO_REUSEPORT (a port-0 address is pinned to the port
    /// the first lane got); Unix sockets cannot be load-balanced so stay shared.
    pub fn bind(
        addrs: &[Address],
        backlog: i32,
        reuse_port: bool,
        lanes: usize,
    ) -> io::Result<ListenerSet> {
        if !reuse_port || lanes < 2 {
            let all = addrs
                .iter()
                .map(|a| with_addr(Listener::bind(a, backlog, reuse_port), a))
                .collect::<io::Result<_>>()?;
            return Ok(ListenerSet::shared(all));
        }
        let mut set = ListenerSet {
            shared: Vec::new(),
            lanes: (0..lanes).map(|_| Vec::new()).collect(),
        };
        for a in addrs {
            match a {
                Address::Unix(_) => set
                    .shared
                    .push(with_addr(Listener::bind(a, backlog, false), a)?),
                Address::Tcp(_) => {
                    let first = with_addr(Listener::bind(a, backlog, true), a)?;
                    let real = first.address.clone();
                    set.lanes[0].push(first);
                    for lane in set.lanes.iter_mut().skip(1) {
                        lane.push(with_addr(Listener::bind(&real, backlog, true), &real)?);
                    }
                }
            }
        }
        Ok(set)
    }

    pub fn lane_count(&self) -> usize {
        self.lanes.len()
    }

    pub fn all(&self) -> impl Iterator<Item = &Listener> {
        self.shared.iter().chain(self.lanes.iter().flatten())
    }

    pub fn first(&self) -> Option<&Listener> {
        self.all().next()
    }

    /// What a child on `lanes` accepts on; the rest is dropped (closed in the child).
    pub fn into_child(self, lanes: &[usize]) -> Vec<Listener> {
        let mut out = self.shared;
        for (i, lane) in self.lanes.into_iter().enumerate() {
            if lanes.contains(&i) {
                out.extend(lane);
            }
        }
        out
    }

    /// Every descriptor, and the `INHERIT_VAR` value that describes them.
    pub fn encode(&self) -> (Vec<RawFd>, String) {
        // `@` marks a socket systemd holds (it must be unfrozen when we stop).
        let list = |ls: &[Listener]| {
            ls.iter()
                .map(|l| {
                    let mark = if l.held_outside() { "@" } else { "" };
                    format!("{mark}{}", l.as_raw_fd())
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut groups = vec![list(&self.shared)];
        groups.extend(self.lanes.iter().map(|l| list(l)));
        let fds = self.all().map(AsRawFd::as_raw_fd).collect();
        (fds, groups.join(";"))
    }

    /// Adopts the listeners an old master passed on a binary upgrade (`INHERIT_VAR`),
    /// removing the variable so our own children do not see it.
    pub fn inherited() -> io::Result<Option<ListenerSet>> {
        let Some(value) = std::env::var_os(INHERIT_VAR) else {
            return Ok(None);
        };
        std::env::remove_var(INHERIT_VAR);
        let value = value.to_string_lossy().into_owned();
        let mut groups = value.split(';').map(adopt_group);
        let shared = groups.next().unwrap_or_else(|| Ok(Vec::new()))?;
        let lanes = groups.collect::<io::Result<Vec<_>>>()?;
        Ok(Some(ListenerSet { shared, lanes }))
    }
}

fn adopt_group(group: &str) -> io::Result<Vec<Listener>> {
    group
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (outside, s) = match s.trim().strip_prefix('@') {
                Some(rest) => (true, rest),
                None => (false, s.trim()),
            };
            let fd: RawFd = s.parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{INHERIT_VAR}: \"{s}\" is not a descriptor number"),
                )
            })?;
            Listener::adopt(fd, !outside).map(|l| l.with_held_outside(outside))
        })
        .collect()
}

fn with_addr(r: io::Result<Listener>, a: &Address) -> io::Result<Listener> {
    r.map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_port_lanes_share_one_port_and_unix_stays_shared() {
        let dir = tempfile_dir();
        let sock = dir.join("s.sock");
        let addrs = [
            Address::Tcp("127.0.0.1:0".parse().unwrap()),
            Address::Unix(sock.clone()),
        ];
        let set = ListenerSet::bind(&addrs, 16, true, 3).unwrap();
        assert_eq!(set.lane_count(), 3);
        assert_eq!(set.shared.len(), 1);
        let ports: Vec<_> = set.lanes.iter().map(|l| l[0].local_port()).collect();
        assert!(ports[0].is_some_and(|p| p != 0));
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
        let (fds, text) = set.encode();
        assert_eq!(fds.len(), 4);
        assert_eq!(text.split(';').count(), 4);
        let child = set.into_child(&[1]);
        assert_eq!(child.len(), 2, "shared + lane 1");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn without_reuse_port_everything_is_shared() {
        let addrs = [Address::Tcp("127.0.0.1:0".parse().unwrap())];
        let set = ListenerSet::bind(&addrs, 16, false, 4).unwrap();
        assert_eq!(set.lane_count(), 0);
        assert_eq!(set.into_child(&[]).len(), 1);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("blitz-lanes-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
