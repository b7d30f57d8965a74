//! `blitz paper close-position` against the real binary: a user's paper position
//! closed from outside the bot, as a trader closing it on the exchange's site.
//! Only the exchange side is asserted (how the bot reacts is the engine's).

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::bots::{count, db, user, CALM};
use common::{blitz_cmd, Options, Server};
use serde_json::json;

fn close_position(dir: &std::path::Path, uid: i64, side: &str) -> Output {
    blitz_cmd(dir)
        .args(["paper", "close-position", "--user", &uid.to_string()])
        .args(["--symbol", "BTC/USDT", "--side", side])
        .args(["--database", "instance/database.db"])
        .stdin(Stdio::null())
        .output()
        .expect("run blitz")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

#[test]
fn close_position_closes_a_running_paper_bots_position_with_a_manual_order() {
    let s = Server::with(Options {
        workers: 1,
        env: CALM.to_vec(),
        ..Options::default()
    });
    let u = user(&s, "trader@example.com", false);
    let r = u.call(&s, "POST", "/api/bot/start", &json!({}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let uid = u.id;
    let positions = format!("SELECT COUNT(*) FROM paper_positions WHERE user_id = {uid}");
    assert_eq!(count(&s, &positions), 1, "the entry filled");

    let out = close_position(s.dir.path(), uid, "long");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "closed user {uid}'s long BTC/USDT position: 0.001 at "
        )),
        "{stdout}"
    );

    // Flat on the exchange, by one reduce-only market order that is not the bot's.
    assert_eq!(count(&s, &positions), 0, "{stdout}");
    let (client_id, kind, side, reduce_only, status, filled): (
        String,
        String,
        String,
        bool,
        String,
        String,
    ) = db(&s)
        .query_row(
            "SELECT client_id, kind, side, reduce_only, status, filled_qty FROM paper_orders
             WHERE user_id = ?1 AND client_id NOT LIKE 'bz-%'",
            [uid],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert!(client_id.starts_with("manual-"), "{client_id}");
    assert!(stdout.ends_with(&format!("order {client_id}")), "{stdout}");
    assert_eq!(
        (
            kind.as_str(),
            side.as_str(),
            reduce_only,
            status.as_str(),
            filled.as_str()
        ),
        ("market", "sell", true, "filled", "0.001")
    );
    let fills = format!(
        "SELECT COUNT(*) FROM paper_fills f JOIN paper_orders o ON o.id = f.order_id
         WHERE f.user_id = {uid} AND o.client_id = '{client_id}' AND f.qty = '0.001'"
    );
    assert_eq!(count(&s, &fills), 1, "the close is in the fill history");

    // Nothing left to close: exit 1 with the reason.
    let again = close_position(s.dir.path(), uid, "long");
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        text(&again.stderr),
        format!("blitz: user {uid} has no long BTC/USDT position on the paper exchange")
    );
    let bad = close_position(s.dir.path(), uid, "sideways");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn close_position_needs_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("instance")).unwrap();
    let out = close_position(dir.path(), 1, "short");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("blitz: the bot runner is not reachable")
            && stderr
                .ends_with("the server must be running, its bot runner owns the paper exchange"),
        "{stderr}"
    );
}

#[test]
fn replayed_prices_reach_the_paper_exchange_of_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prices.csv"),
        "seconds,symbol,price\n0,BTC/USDT,43210.5\n",
    )
    .unwrap();
    let mut env = CALM.to_vec();
    env.push(("PAPER_PRICES", "replay:prices.csv"));
    let s = Server::start_in(
        dir,
        Options {
            workers: 1,
            env,
            ..Options::default()
        },
    );
    let u = user(&s, "trader@example.com", false);
    let r = u.call(&s, "POST", "/api/bot/start", &json!({}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let entry: String = db(&s)
        .query_row(
            "SELECT avg_fill_price FROM paper_orders WHERE user_id = ?1 AND client_id LIKE '%-e'",
            [u.id],
            |r| r.get(0),
        )
        .unwrap();
    // The market entry takes the ask: 43,210.5 + 0.01 % = 43,214.82105, rounded up
    // to the tick.
    assert_eq!(
        entry, "43214.9",
        "the entry filled at the replayed price's ask"
    );
    let epochs = count(&s, "SELECT COUNT(*) FROM paper_clock");
    assert_eq!(epochs, 1, "the epoch is stored");
}

/// After a downtime the paper market catches up (every replayed price of the
/// downtime, with the fills it causes) before any bot resumes, so the resumed
/// bot acts on the prices of now: its take-profit filled while the server was
/// down, and its very first step after the restart closes the cycle.
#[test]
fn a_bot_resumed_after_a_downtime_sees_what_the_market_did_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prices.csv"),
        "seconds,symbol,price\n0,BTC/USDT,43210.5\n1800,BTC/USDT,45000\n",
    )
    .unwrap();
    let mut env = CALM.to_vec();
    env.push(("PAPER_PRICES", "replay:prices.csv"));
    let s = Server::start_in(
        dir,
        Options {
            workers: 1,
            env: env.clone(),
            ..Options::default()
        },
    );
    let u = user(&s, "trader@example.com", false);
    let r = u.call(&s, "POST", "/api/bot/start", &json!({}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let tp = format!(
        "SELECT COUNT(*) FROM paper_orders WHERE user_id = {} AND client_id LIKE '%-tp1'
         AND status = 'open'",
        u.id
    );
    common::wait_for(Duration::from_secs(20), "the take-profit rests", || {
        count(&s, &tp) == 1
    });
    let (dir, _) = s.terminate();

    // An hour of downtime: the epoch and the market's last update an hour back,
    // so the replay's 1800 s line (above the take-profit) fell into it.
    let c = rusqlite::Connection::open(dir.path().join("instance/database.db")).unwrap();
    c.execute_batch(
        "UPDATE paper_clock SET epoch_ms = epoch_ms - 3600000;
         UPDATE paper_markets SET updated_ms = updated_ms - 3600000;",
    )
    .unwrap();
    drop(c);
    // Bot steps 10 minutes apart: within this test, only the resume step runs.
    for (k, v) in env.iter_mut() {
        if *k == "BOT_TICK_MS" {
            *v = "600000";
        }
    }
    let s = Server::start_in(
        dir,
        Options {
            workers: 1,
            env,
            ..Options::default()
        },
    );
    let closed = format!(
        "SELECT COUNT(*) FROM trades WHERE user_id = {} AND close_reason = 'take_profit'",
        u.id
    );
    common::wait_for(Duration::from_secs(20), "the resumed bot closed", || {
        count(&s, &closed) == 1
    });
    let log = s.log();
    let caught_up = log.find("\"msg\":\"paper exchange caught up\"");
    let resumed = log.find("\"msg\":\"resuming bots\"");
    assert!(
        caught_up.is_some() && caught_up < resumed,
        "the market caught up before the bots resumed:\n{log}"
    );
}
