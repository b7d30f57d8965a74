//! A private PostgreSQL for the tests: Debian's `postgresql` package, `initdb` into a
//! temporary directory, `postgres` on a reserved loopback port with its socket in
//! that directory, run as the unprivileged `postgres` user (the tests run as root,
//! and PostgreSQL refuses root).
//!
//! One server per test binary, started by the first test that asks; each test gets
//! a database of its own ([`PgDb`]), dropped with it. The server stops when the test
//! binary exits (statics are never dropped, so an `atexit` hook does it) and its
//! directory goes with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};
use std::os::unix::process::CommandExt;

use super::ports::ReservedPort;
use super::wait_for;

/// The superuser `initdb` makes; it logs in with a password over TCP, as the
/// server's own `DATABASE_URL` would.
const SUPERUSER: &str = "blitz_test";

pub struct PgServer {
    pub port: u16,
    password: String,
    _reserved: ReservedPort,
    /// Taken by the exit hook.
    child: Mutex<Option<Child>>,
    dir: Mutex<Option<tempfile::TempDir>>,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();

impl PgServer {
    /// The binary's shared server, started on first use.
    pub fn shared() -> &'static PgServer {
        SERVER.get_or_init(|| {
            let server = PgServer::start();
            // SAFETY: registers a plain `extern "C" fn` with no arguments.
            let r = unsafe { libc::atexit(stop_shared) };
            assert_eq!(r, 0, "atexit");
            server
        })
    }

    fn start() -> PgServer {
        let bin = bin_dir();
        let user = User::from_name("postgres")
            .expect("look up the postgres user")
            .expect("the postgres system user (install the postgresql package)");
        let dir = tempfile::Builder::new()
            .prefix("blitz-pg")
            .tempdir()
            .unwrap();
        nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid)).unwrap();
        let password = random_hex();
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).unwrap();
        nix::unistd::chown(&pwfile, Some(user.uid), Some(user.gid)).unwrap();
        let data = dir.path().join("data");
        let out = as_user(Command::new(bin.join("initdb")), &user)
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "-A", "scram-sha-256", "-E", "UTF8"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--no-locale", "--no-sync", "--no-instructions"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reserved = ReservedPort::new();
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        nix::unistd::chown(
            &dir.path().join("postgres.log"),
            Some(user.uid),
            Some(user.gid),
        )
        .unwrap();
        // Durability off: a test server that loses its data on a crash loses nothing.
        let child = as_user(Command::new(bin.join("postgres")), &user)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-h", "127.0.0.1", "-p", &reserved.port.to_string()])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            // A statement waiting on a lock for over a second is in its log.
            .args(["-c", "log_lock_waits=on"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        let server = PgServer {
            port: reserved.port,
            password,
            _reserved: reserved,
            child: Mutex::new(Some(child)),
            dir: Mutex::new(Some(dir)),
        };
        wait_for(
            Duration::from_secs(30),
            "postgres to accept connections",
            || {
                server.assert_running();
                server.connect("postgres").is_ok()
            },
        );
        server
    }

    /// `postgres://blitz_test:PASSWORD@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn connect(&self, db: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Client::connect(&self.url(db), postgres::NoTls)
    }

    /// A fresh, empty database for one test.
    pub fn database(&'static self) -> PgDb {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = self.connect("postgres").expect("connect to postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        PgDb { server: self, name }
    }

    /// Fails the test with the server's log when it exited (a port or permission
    /// problem would otherwise look like a timeout).
    fn assert_running(&self) {
        let mut child = self.child.lock().unwrap();
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                let log = self.dir.lock().unwrap().as_ref().map(|d| {
                    std::fs::read_to_string(d.path().join("postgres.log")).unwrap_or_default()
                });
                panic!("postgres exited ({status}): {}", log.unwrap_or_default());
            }
        }
    }

    /// Immediate shutdown (SIGQUIT: no checkpoint, nothing here is kept), then the
    /// directory is removed.
    fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGQUIT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(self.dir.lock().unwrap().take());
    }
}

extern "C" fn stop_shared() {
    if let Some(server) = SERVER.get() {
        server.stop();
    }
}

/// One test's database on the shared server; dropped (connections and all) with it.
pub struct PgDb {
    server: &'static PgServer,
    pub name: String,
}

impl PgDb {
    pub fn url(&self) -> String {
        self.server.url(&self.name)
    }

    pub fn password(&self) -> &str {
        self.server.password()
    }

    pub fn connect(&self) -> postgres::Client {
        self.server
            .connect(&self.name)
            .expect("connect to the test database")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = self.server.connect("postgres") {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// `cmd` run as `user`: std drops root's supplementary groups when it sets the uid.
/// It starts in `/`, which it can always enter.
fn as_user(mut cmd: Command, user: &User) -> Command {
    cmd.uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .current_dir("/");
    cmd
}

/// The newest installed PostgreSQL's binaries, `/usr/lib/postgresql/<major>/bin`.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .expect("/usr/lib/postgresql (install the postgresql package)")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            e.path().join("bin/initdb").exists().then_some(major)
        })
        .max()
        .expect("a PostgreSQL version under /usr/lib/postgresql");
    root.join(newest.to_string()).join("bin")
}

fn random_hex() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap();
    hex::encode(bytes)
}
