//! Helpers for bot tests: users with bearer tokens made by the CLI, calls with
//! them, and a read-only look into the database (the paper exchange's tables).

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::api::call;
use super::client::Resp;
use super::{blitz_cmd, wait_for, Server};

/// Fast, calm market: orders rest, nothing fills by accident; and rate limits
/// far above what these tests send (they are tested in `coordination.rs`).
pub const CALM: [(&str, &str); 9] = [
    ("BOT_TICK_MS", "50"),
    ("PAPER_TICK_MS", "50"),
    ("PAPER_VOLATILITY", "0.000001"),
    ("PAPER_SEED", "7"),
    ("RATE_LIMITS_START", "10000/minute"),
    ("RATE_LIMITS_STOP", "10000/minute"),
    ("RATE_LIMITS_RECOVER", "10000/minute"),
    ("RATE_LIMITS_STATUS", "10000/minute"),
    ("RATE_LIMITS_GLOBAL", "10000/minute"),
];

/// A user with a bearer token.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub token: String,
}

impl User {
    pub fn call(&self, s: &Server, method: &str, path: &str, body: &str) -> Resp {
        let auth = format!("Bearer {}", self.token);
        call(s.port, method, path, &[("Authorization", &auth)], body)
    }

    pub fn get(&self, s: &Server, path: &str) -> Value {
        let r = self.call(s, "GET", path, "");
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    pub fn status(&self, s: &Server) -> Value {
        self.get(s, "/api/bot/status")
    }

    pub fn events(&self, s: &Server) -> Vec<String> {
        self.get(s, "/api/bot/events?limit=500")["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

fn cli(s: &Server, args: &[&str]) -> String {
    let out = blitz_cmd(s.dir.path())
        .args(args)
        .args(["--database", &s.database()])
        .stdin(Stdio::null())
        .output()
        .expect("run blitz");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
        + "\n"
        + String::from_utf8_lossy(&out.stderr).trim()
}

/// Creates a verified user (admin if asked) and a token for them.
pub fn user(s: &Server, email: &str, admin: bool) -> User {
    let mut args = vec!["user", "create", "--email", email];
    if admin {
        args.push("--admin");
    }
    let created = cli(s, &args);
    let id = created
        .split("(id ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no id in {created:?}"));
    let token = cli(s, &["token", "create", "--email", email]);
    let token = token.lines().next().unwrap().to_string();
    User { id, token }
}

pub fn db(s: &Server) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(s.path("instance/database.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// A count the server's database answers (on either engine).
pub fn count(s: &Server, sql: &str) -> i64 {
    match &s.backing {
        Some(b) => b.db.connect().query_one(sql, &[]).unwrap().get(0),
        None => db(s).query_row(sql, [], |r| r.get(0)).unwrap(),
    }
}

/// Open orders of user `uid` on the paper exchange.
pub fn open_orders(s: &Server, uid: i64) -> i64 {
    count(
        s,
        &format!(
            "SELECT COUNT(*) FROM paper_orders WHERE user_id = {uid} AND status IN ('open', 'partially_filled')"
        ),
    )
}

pub fn wait_status(s: &Server, u: &User, want: &str) -> Value {
    let mut last = Value::Null;
    wait_for(
        Duration::from_secs(20),
        &format!("bot status {want}"),
        || {
            last = u.status(s);
            last["status"] == want
        },
    );
    last
}
