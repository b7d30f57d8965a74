//! nginx in front of blitz instances, as shipped: `conf/nginx/blitz.conf` with
//! only the addresses changed (its `listen` on a reserved loopback port, its
//! upstream on the instances' ports), included from a minimal `nginx.conf` in a
//! temporary prefix (pid, error log and temp paths there), run in the
//! foreground by the test and stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ports::ReservedPort;
use super::wait_for;

/// The shipped site configuration's text.
pub fn shipped() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/nginx/blitz.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The line of the shipped upstream the tests replace, and its listen line.
const UPSTREAM: &str = "server 127.0.0.1:8000 max_fails=3 fail_timeout=30s;";
const LISTEN: &str = "listen 80;";

/// The shipped site listening on `port`, its upstream the instances on `upstreams`
/// (each with the shipped `max_fails`/`fail_timeout`). The rest is as shipped.
pub fn site(port: u16, upstreams: &[u16]) -> String {
    let shipped = shipped();
    assert!(
        shipped.contains(UPSTREAM) && shipped.contains(LISTEN),
        "conf/nginx/blitz.conf no longer has `{UPSTREAM}` and `{LISTEN}`"
    );
    let servers: Vec<String> = upstreams
        .iter()
        .map(|p| UPSTREAM.replace("127.0.0.1:8000", &format!("127.0.0.1:{p}")))
        .collect();
    shipped
        .replace(UPSTREAM, &servers.join("\n    "))
        .replace(LISTEN, &format!("listen 127.0.0.1:{port};"))
}

/// Where nginx is: Debian installs it in /usr/sbin, often not on a test's PATH.
pub fn binary() -> String {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| format!("{d}/nginx"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| "nginx".to_string())
}

pub struct Nginx {
    child: Child,
    /// Held until nginx stops: nginx (SO_REUSEADDR) binds it, no parallel test can.
    reserved: ReservedPort,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// A port for the site, reserved before the site names it.
    pub fn reserve() -> ReservedPort {
        ReservedPort::new()
    }

    /// Checks `site` with `nginx -t`, starts nginx with it on `reserved`'s port
    /// and waits until it answers.
    pub fn start(reserved: ReservedPort, site: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("blitz.conf"), site).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "pid {d}/nginx.pid; error_log {d}/error.log; worker_processes 1; daemon off;\n\
                 events {{}}\n\
                 http {{ access_log off; client_body_temp_path {d}/b; proxy_temp_path {d}/p;\n\
                 fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n\
                 include {d}/blitz.conf; }}\n"
            ),
        )
        .unwrap();
        let conf = dir.path().join("nginx.conf");
        let test = Command::new(binary())
            .arg("-t")
            .arg("-c")
            .arg(&conf)
            .output()
            .unwrap_or_else(|e| panic!("nginx: cannot run it ({e}); tests/run installs it"));
        assert!(
            test.status.success(),
            "nginx -t: {}",
            String::from_utf8_lossy(&test.stderr)
        );
        let child = Command::new(binary())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let n = Nginx {
            child,
            reserved,
            dir,
        };
        wait_for(Duration::from_secs(10), "nginx listening", || {
            !n.reserved.unused()
        });
        n
    }

    pub fn port(&self) -> u16 {
        self.reserved.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// nginx's error log: upstream failures and retries are logged there.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.path("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// TERM, not KILL: the master then stops its worker too (a killed master leaves
    /// the worker orphaned, still listening). KILL only if it does not exit.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
