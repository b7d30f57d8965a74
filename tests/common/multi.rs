//! Helpers for the several-bots tests (CONTRACT C14): bots and exchange accounts
//! made through the API, a bot's orders on the paper exchange by its client-id tag,
//! and every route that names a bot or an exchange account, for the isolation test.

use std::time::Duration;

use serde_json::{json, Value};

use super::bots::{count, User};
use super::{wait_for, Server};

/// `/api/bots/<id>` followed by `tail` (`""`, `"/start"`, `"/pnl/summary"`, …).
pub fn bot_path(id: i64, tail: &str) -> String {
    format!("/api/bots/{id}{tail}")
}

/// The user's bots as `GET /api/bots` lists them.
pub fn bots(s: &Server, u: &User) -> Vec<Value> {
    u.get(s, "/api/bots")["bots"]
        .as_array()
        .expect("bots is a list")
        .clone()
}

/// The user's default bot (the one `/api/bot/*` acts on).
pub fn default_bot(s: &Server, u: &User) -> Value {
    let all = bots(s, u);
    let defaults: Vec<&Value> = all.iter().filter(|b| b["default"] == true).collect();
    assert_eq!(defaults.len(), 1, "exactly one default bot: {all:?}");
    defaults[0].clone()
}

/// Creates a bot; panics unless the answer is 201 with the bot.
pub fn create_bot(s: &Server, u: &User, body: Value) -> Value {
    let r = u.call(s, "POST", "/api/bots", &body.to_string());
    assert_eq!(r.status, 201, "POST /api/bots {body}: {}", r.text());
    let bot = r.json();
    assert!(bot["id"].is_i64(), "{bot}");
    bot
}

/// Creates an exchange account; panics unless the answer is 201.
pub fn create_account(s: &Server, u: &User, name: &str, exchange: &str, key: &str) -> Value {
    let body = json!({"name": name, "exchange": exchange, "api_key": key,
                      "api_secret": format!("secret-of-{key}")});
    let r = u.call(s, "POST", "/api/exchange-accounts", &body.to_string());
    assert_eq!(r.status, 201, "POST /api/exchange-accounts: {}", r.text());
    r.json()
}

/// `(status, body)` of one call.
pub fn send(s: &Server, u: &User, method: &str, path: &str, body: Value) -> (u16, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let r = u.call(s, method, path, &text);
    (r.status, r.json())
}

pub fn bot_status(s: &Server, u: &User, id: i64) -> Value {
    u.get(s, &bot_path(id, "/status"))
}

/// Polls bot `id`'s status until its `status` is `want`.
pub fn wait_bot_status(s: &Server, u: &User, id: i64, want: &str) -> Value {
    let mut last = Value::Null;
    wait_for(
        Duration::from_secs(20),
        &format!("bot {id} status {want}"),
        || {
            last = bot_status(s, u, id);
            last["status"] == want
        },
    );
    last
}

/// Open orders on the paper exchange whose client id carries bot `id`'s tag.
pub fn open_orders_of_bot(s: &Server, id: i64) -> i64 {
    count(
        s,
        &format!(
            "SELECT COUNT(*) FROM paper_orders WHERE client_id LIKE 'bz-{id}-%' \
             AND status IN ('open', 'partially_filled')"
        ),
    )
}

/// The kinds of bot `id`'s events, newest first.
pub fn event_kinds(s: &Server, u: &User, id: i64) -> Vec<String> {
    u.get(s, &bot_path(id, "/events?limit=500"))["events"]
        .as_array()
        .expect("events is a list")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every route and method of C14 that names a bot by id, with a body that would
/// change something if the call were let through.
pub fn bot_routes(id: i64) -> Vec<(&'static str, String, Value)> {
    let p = |tail: &str| bot_path(id, tail);
    vec![
        ("GET", p(""), Value::Null),
        ("PUT", p(""), json!({"name": "taken over", "leverage": 3})),
        ("DELETE", p(""), Value::Null),
        ("POST", p("/start"), Value::Null),
        ("POST", p("/stop"), json!({"mode": "close_position"})),
        ("POST", p("/recover"), Value::Null),
        ("GET", p("/status"), Value::Null),
        ("GET", p("/config"), Value::Null),
        ("PUT", p("/config"), json!({"take_profit": 42})),
        ("GET", p("/orders"), Value::Null),
        ("GET", p("/events"), Value::Null),
        ("GET", p("/trades"), Value::Null),
        ("GET", p("/pnl/summary"), Value::Null),
    ]
}

/// Every route and method that names an exchange account by id.
pub fn account_routes(id: i64) -> Vec<(&'static str, String, Value)> {
    vec![(
        "DELETE",
        format!("/api/exchange-accounts/{id}"),
        Value::Null,
    )]
}

/// `method path` by `u` on a new connection, waiting at most `wait` for the
/// answer: `None` if it did not come in time (the request goes on in the server).
pub fn call_within(
    s: &Server,
    u: &User,
    method: &str,
    path: &str,
    wait: Duration,
) -> Option<super::client::Resp> {
    let mut c = super::Conn::open(s.port).ok()?;
    c.stream.set_read_timeout(Some(wait)).ok()?;
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        u.token
    );
    c.send(raw.as_bytes()).ok()?;
    c.read_response(false).ok()
}
