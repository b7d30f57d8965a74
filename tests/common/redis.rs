//! A private `redis-server` for one test, killed on drop; and a raw RESP client for
//! looking inside it.
//!
//! Its loopback port stays reserved for the test's whole life (see `ports`), so no
//! parallel test takes it between picking and binding, nor while the server is killed
//! and before `restart` binds it again.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ports::ReservedPort;
use super::wait_for;

pub struct Redis {
    pub port: u16,
    reserved: ReservedPort,
    child: Option<Child>,
    dir: tempfile::TempDir,
    password: Option<String>,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_on(ReservedPort::new(), tempfile::tempdir().unwrap(), None)
    }

    /// A server that wants `AUTH password`.
    pub fn with_password(password: &str) -> Redis {
        Redis::start_on(
            ReservedPort::new(),
            tempfile::tempdir().unwrap(),
            Some(password.to_string()),
        )
    }

    fn start_on(reserved: ReservedPort, dir: tempfile::TempDir, password: Option<String>) -> Redis {
        let port = reserved.port;
        let mut cmd = Command::new("redis-server");
        if let Some(p) = &password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (install the redis-server package)");
        let r = Redis {
            port,
            reserved,
            child: Some(child),
            dir,
            password,
        };
        wait_for(Duration::from_secs(10), "redis-server", || {
            r.try_cmd(&["PING"]).is_ok_and(|s| s == "+PONG")
        });
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// SIGKILL: the server vanishes mid-run.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A new server on the same (still reserved) port, after `kill`.
    pub fn restart(self) -> Redis {
        let mut me = self;
        me.kill();
        let dir = std::mem::replace(&mut me.dir, tempfile::tempdir().unwrap());
        let reserved = std::mem::take(&mut me.reserved);
        Redis::start_on(reserved, dir, me.password.take())
    }

    /// One command; the reply's first line (`+OK`, `:3`, `*2` ...) or, for an
    /// array of bulk strings, the strings joined by spaces.
    pub fn cmd(&self, args: &[&str]) -> String {
        self.try_cmd(args).expect("redis command")
    }

    /// `cmd` in database `db`.
    pub fn cmd_in(&self, db: u32, args: &[&str]) -> String {
        self.try_cmd_in(db, args).expect("redis command")
    }

    fn try_cmd(&self, args: &[&str]) -> std::io::Result<String> {
        self.try_cmd_in(0, args)
    }

    fn try_cmd_in(&self, db: u32, args: &[&str]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let db = db.to_string();
        let mut raw = String::new();
        let auth = ["AUTH", self.password.as_deref().unwrap_or("")];
        let mut cmds: Vec<&[&str]> = Vec::new();
        if self.password.is_some() {
            cmds.push(&auth);
        }
        let select = ["SELECT", db.as_str()];
        cmds.push(&select);
        cmds.push(args);
        for cmd in cmds {
            raw.push_str(&format!("*{}\r\n", cmd.len()));
            for a in cmd {
                raw.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
        }
        s.write_all(raw.as_bytes())?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        if self.password.is_some() {
            r.read_line(&mut line)?; // +OK of AUTH
            line.clear();
        }
        r.read_line(&mut line)?; // +OK of SELECT
        line.clear();
        r.read_line(&mut line)?;
        let line = line.trim_end().to_string();
        let Some(n) = line.strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) else {
            return Ok(line);
        };
        let mut items = Vec::new();
        for _ in 0..n {
            let mut len = String::new();
            r.read_line(&mut len)?;
            let len: usize = len.trim_end().trim_start_matches('$').parse().unwrap_or(0);
            let mut buf = vec![0; len + 2];
            r.read_exact(&mut buf)?;
            items.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        items.sort();
        Ok(items.join(" "))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
