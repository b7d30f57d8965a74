//! systemd: `Type=notify` messages and socket activation through `LISTEN_FDS`.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use common::{wait_for, Options, Server};
use nix::sys::signal::Signal;

/// The next message and the pid that sent it (needs SO_PASSCRED on `sock`).
fn next_message_from(sock: &UnixDatagram) -> (i32, String) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::IoSliceMut;
    let mut buf = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("notify message");
    let pid = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
            _ => None,
        })
        .expect("sender credentials");
    let n = msg.bytes;
    (pid, String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn next_message(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("notify message");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn notify_socket_gets_ready_status_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = Server::with(Options {
        env: vec![("NOTIFY_SOCKET", path.to_str().unwrap())],
        ..Options::default()
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m == "READY=1") {
        seen.push(next_message(&sock));
    }
    assert!(
        seen.iter()
            .any(|m| m.starts_with("STATUS=") && m.contains("workers ready")),
        "{seen:?}"
    );
    s.signal(Signal::SIGHUP);
    let mut reload = Vec::new();
    while !reload.iter().any(|m: &String| m == "READY=1") {
        reload.push(next_message(&sock));
    }
    let r = reload
        .iter()
        .find(|m| m.starts_with("RELOADING=1"))
        .expect("RELOADING=1");
    assert!(r.contains("\nMONOTONIC_USEC="), "{r}");
    s.signal(Signal::SIGTERM);
    let mut stop = Vec::new();
    while !stop.iter().any(|m: &String| m == "STOPPING=1") {
        stop.push(next_message(&sock));
    }
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

/// Starts blitz as systemd would with one passed socket (`fd` becomes fd 3).
fn activated(fd: i32, dir: &std::path::Path) -> std::process::Child {
    // LISTEN_PID must be the pid of blitz itself, so a shell sets it before exec.
    let mut child = std::process::Command::new("sh");
    child
        .arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" serve --workers 1 --bind 127.0.0.1:1 --error-logfile error.log")
        .arg(common::BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        child.pre_exec(move || {
            // dup2 onto itself would keep FD_CLOEXEC; clear it explicitly then.
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    child.spawn().unwrap()
}

fn term(child: &mut std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn socket_activation_uses_the_passed_listener_across_restarts() {
    // The test plays systemd: it keeps the socket open across a restart.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fd = listener.as_raw_fd();
    let dir = tempfile::tempdir().unwrap();
    let mut child = activated(fd, dir.path());
    wait_for(Duration::from_secs(20), "activated socket answers", || {
        common::client::try_get(port, "/readyz").is_ok_and(|r| r.status == 200)
    });
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap();
    assert!(
        log.contains(&format!("Listening at: 127.0.0.1:{port}")),
        "{log}"
    );
    assert!(
        !log.contains("127.0.0.1:1\""),
        "the --bind address must not be used"
    );
    // A graceful stop freezes the socket's accept queue while draining; the next
    // start on the same (systemd-held) socket must accept again.
    term(&mut child);
    let mut again = activated(fd, dir.path());
    wait_for(
        Duration::from_secs(20),
        "restarted on the same socket",
        || common::client::try_get(port, "/readyz").is_ok_and(|r| r.status == 200),
    );
    term(&mut again);
    drop(listener);
}

#[test]
fn watchdog_pings_and_mainpid_after_a_binary_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true).unwrap();
    let mut s = Server::with(Options {
        workers: 1,
        env: vec![
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
        ..Options::default()
    });
    let mut pings = 0;
    while pings < 3 {
        if next_message(&sock) == "WATCHDOG=1" {
            pings += 1;
        }
    }
    s.signal(Signal::SIGUSR2);
    let mainpid = loop {
        let m = next_message(&sock);
        if let Some(pid) = m.strip_prefix("MAINPID=") {
            break pid.trim().parse::<i32>().unwrap();
        }
    };
    assert_ne!(mainpid, s.pid());
    let new_master = common::cmdline(mainpid);
    assert_eq!(new_master, "blitz: master");
    wait_for(Duration::from_secs(20), "new master's pidfile", || {
        std::fs::read_to_string(s.path("blitz.pid")).is_ok_and(|p| p.trim() == mainpid.to_string())
    });
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
    // The old master's stop is not the service's: no STOPPING=1, and the new
    // master keeps the watchdog fed.
    let mut pings = 0;
    while pings < 3 {
        let (from, m) = next_message_from(&sock);
        assert_ne!(
            m, "STOPPING=1",
            "the old master's stop told systemd the service stops"
        );
        if m == "WATCHDOG=1" && from == mainpid {
            pings += 1;
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mainpid), Signal::SIGTERM).unwrap();
    while next_message(&sock) != "STOPPING=1" {}
    wait_for(Duration::from_secs(20), "new master stopped", || {
        !common::alive(mainpid)
    });
}
