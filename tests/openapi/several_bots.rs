//! The tour's several-bots part (CONTRACT C14): an exchange account, bots made,
//! changed, run, stopped and deleted through `/api/bots`, and the admin's view of
//! a user and force operations on one bot, with the refusals C14 names. Each
//! answer passes the OpenAPI hook; the tour then asks that every operation
//! answered a documented 2xx.
//!
//! The server runs with `BOTS_PER_USER` = `LIMIT` and a fake Bybit (the
//! catalogue a bybit bot is checked against); the bybit bot never starts.

use serde_json::{json, Value};

use super::expect;
use crate::common::bots::User;
use crate::common::multi::{bot_path, wait_bot_status};
use crate::common::Server;

/// `BOTS_PER_USER` of the tour's server: the default bot and two more.
pub const LIMIT: &str = "3";

/// The fake Bybit's key pair.
pub const KEY: &str = "KEY-tour-abcd";
pub const SECRET: &str = "secret-of-KEY-tour-abcd";

const CLOSE: &str = r#"{"mode": "close_position"}"#;

/// One caller on the tour's server.
struct As<'a> {
    s: &'a Server,
    who: &'a User,
}

impl As<'_> {
    /// `method path` with `body`, which must answer `status`; the answer's JSON.
    fn ask(&self, method: &str, path: &str, body: &str, status: u16) -> Value {
        let r = self.who.call(self.s, method, path, body);
        expect(r, status, &format!("{method} {path} {body}"))
    }

    /// As `ask`, for a refusal whose `status` word must be `word`.
    fn refused(&self, method: &str, path: &str, body: &str, word: &str) -> Value {
        let answer = self.ask(method, path, body, 409);
        assert_eq!(answer["status"], word, "{method} {path}: {answer}");
        answer
    }
}

/// The ids the flow makes.
struct Made {
    account: i64,
    default: i64,
    paper: i64,
    bybit: i64,
}

/// The whole C14 flow of user `u`, with `admin` for the admin routes.
pub fn tour(s: &Server, u: &User, admin: &User) {
    let user = As { s, who: u };
    let account = exchange_account(&user);
    let made = bots_made(&user, account);
    reads_and_changes(&user, made.paper);
    run_and_stop(&user, &made);
    admin_view_and_force(&As { s, who: admin }, u, made.paper);
    deletions(&user, &made);
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// Lists none, refuses a bad one, creates one, lists it.
fn exchange_account(u: &As) -> i64 {
    let path = "/api/exchange-accounts";
    u.ask("GET", path, "", 200);
    let bad = json!({"name": "", "exchange": "paper", "api_key": 7});
    u.ask("POST", path, &bad.to_string(), 400);
    let good = json!({"name": "Main", "exchange": "bybit", "api_key": KEY, "api_secret": SECRET});
    let made = u.ask("POST", path, &good.to_string(), 201);
    let listed = u.ask("GET", path, "", 200);
    assert_eq!(listed["accounts"][0]["id"], made["id"], "{listed}");
    let one = format!("{path}/{}", id_of(&made));
    let renamed = u.ask("PUT", &one, r#"{"name": "Main account"}"#, 200);
    assert_eq!(renamed["name"], "Main account", "{renamed}");
    u.ask("PUT", &one, r#"{"proxy": "ftp://nope:1"}"#, 400);
    id_of(&made)
}

/// A paper bot on the default bot's market, a bybit bot on the account, and the
/// limit reached.
fn bots_made(u: &As, account: i64) -> Made {
    let listed = u.ask("GET", "/api/bots", "", 200);
    let bad = json!({"name": "", "leverage": 500});
    u.ask("POST", "/api/bots", &bad.to_string(), 400);
    let paper = json!({"name": "Twin", "symbol": "BTC/USDT", "side": "long"});
    let paper = u.ask("POST", "/api/bots", &paper.to_string(), 201);
    let bybit = json!({"name": "On Bybit", "exchange": "bybit",
                       "exchange_account_id": account, "take_profit": 10});
    let bybit = u.ask("POST", "/api/bots", &bybit.to_string(), 201);
    let over = json!({"name": "One too many"}).to_string();
    u.refused("POST", "/api/bots", &over, "limit_reached");
    Made {
        account,
        default: id_of(&listed["bots"][0]),
        paper: id_of(&paper),
        bybit: id_of(&bybit),
    }
}

/// The bot and its configuration read and changed while it is stopped.
fn reads_and_changes(u: &As, id: i64) {
    let p = |tail: &str| bot_path(id, tail);
    u.ask("GET", &p(""), "", 200);
    u.ask("GET", &bot_path(99_999_999, ""), "", 404);
    u.ask(
        "PUT",
        &p(""),
        r#"{"name": "Twin long", "take_profit": 6}"#,
        200,
    );
    u.ask("PUT", &p(""), r#"{"api_key": "KEY-wxyz"}"#, 400);
    u.ask("GET", &p("/config"), "", 200);
    let preview = u.ask(
        "POST",
        &p("/preview"),
        r#"{"leverage": 5, "price": 60000}"#,
        200,
    );
    assert_eq!(
        preview["legs"][0]["price"].as_f64(),
        Some(60000.0),
        "{preview}"
    );
    u.ask("POST", &p("/preview"), r#"{"leverage": 0}"#, 400);
    u.ask("PUT", &p("/config"), r#"{"cooldown": 0}"#, 200);
    u.ask("PUT", &p("/config"), r#"{"rounds": 0}"#, 400);
}

/// Started beside a stopped default bot on the same market, which then cannot
/// start; read, changed and refused while it runs; recovered and stopped.
fn run_and_stop(u: &As, made: &Made) {
    let p = |tail: &str| bot_path(made.paper, tail);
    u.ask("POST", &p("/start"), "", 200);
    u.refused("POST", &p("/start"), "", "already_running");
    wait_bot_status(u.s, u.who, made.paper, "running");
    u.refused("POST", &bot_path(made.default, "/start"), "", "conflict");
    u.ask("GET", &p("/status"), "", 200);
    u.ask("GET", &p("/orders"), "", 200);
    u.ask("GET", &p("/events?limit=5"), "", 200);
    running_refusals(u, made.paper);
    u.ask("POST", &p("/recover"), "", 200);
    u.ask("POST", &p("/stop"), CLOSE, 200);
    u.refused("POST", &p("/stop"), "", "not_running");
    u.refused("POST", &p("/recover"), "", "not_running");
    u.ask("GET", &p("/trades?limit=5"), "", 200);
    u.ask("GET", &p("/pnl/summary?days=7&tz=Europe/Berlin"), "", 200);
}

/// What a running bot takes as pending, and what it refuses.
fn running_refusals(u: &As, id: i64) {
    let p = |tail: &str| bot_path(id, tail);
    let pending = u.ask("PUT", &p(""), r#"{"take_profit": 7}"#, 200);
    assert!(pending["pending"].is_object(), "{pending}");
    u.refused("PUT", &p(""), r#"{"symbol": "ETH/USDT"}"#, "running");
    u.refused("PUT", &p("/config"), r#"{"side": "short"}"#, "running");
    u.refused("DELETE", &p(""), "", "running");
}

/// The admin's view of the user, and force operations on one of their bots.
fn admin_view_and_force(a: &As, u: &User, id: i64) {
    let view = a.ask("GET", &format!("/api/admin/users/{}", u.id), "", 200);
    assert_eq!(view["bots"].as_array().map(Vec::len), Some(3), "{view}");
    a.ask("GET", "/api/admin/users/99999999", "", 404);
    a.ask("POST", "/api/admin/bots/99999999/start", "", 404);
    let force = |op: &str| format!("/api/admin/bots/{id}/{op}");
    a.ask("POST", &force("start"), "", 200);
    wait_bot_status(a.s, u, id, "running");
    a.ask("POST", &force("recover"), "", 200);
    a.ask("POST", &force("stop"), CLOSE, 200);
    a.refused("POST", &force("stop"), "", "not_running");
}

/// An account in use stays; the default bot stays; the others go, then the
/// account.
fn deletions(u: &As, made: &Made) {
    let account = format!("/api/exchange-accounts/{}", made.account);
    u.refused("DELETE", &account, "", "in_use");
    u.refused("DELETE", &bot_path(made.default, ""), "", "default_bot");
    u.ask("DELETE", &bot_path(made.bybit, ""), "", 200);
    u.ask("DELETE", &bot_path(made.paper, ""), "", 200);
    u.ask("GET", &bot_path(made.paper, "/status"), "", 404);
    u.ask("DELETE", &account, "", 200);
    u.ask("DELETE", &account, "", 404);
}
