//! Several bots of one user in the real binary (docs/bots.md, Several bots): each
//! trades its own market on the paper exchange with its own ladder and its own
//! client order ids, a fill of one touches no other, a sibling's orders on the
//! same symbol are not foreign, and two bots never run on one position (the
//! conflict rule, through the runner and through the legacy `/api/bot/start`).
//!
//! Prices are replayed (docs/bots.md, Replayed paper prices): BTC/USDT and
//! ETH/USDT hold still for `LEAD` seconds, then BTC/USDT drops 1.2 % (through
//! the long bot's first leg, 1 % below its entry) and ETH/USDT stays. Bots other
//! than the default one are written into the database (the `/api/bots` routes
//! are tested with the HTTP API) and started by a request to the runner's socket.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::bots::{db, user, User};
use common::{wait_for, Options, Server};
use serde_json::{json, Value};

/// Seconds the prices hold still: server, users, configuration and three starts.
const LEAD: u64 = 20;

fn env(prices: &str) -> Vec<(&str, &str)> {
    vec![
        ("BOT_TICK_MS", "50"),
        ("PAPER_TICK_MS", "50"),
        ("PAPER_SEED", "7"),
        ("PAPER_VOLATILITY", "0.000001"),
        ("PAPER_FUNDING_RATE", "0"),
        ("PAPER_PRICES", prices),
        ("RATE_LIMITS_START", "10000/minute"),
        ("RATE_LIMITS_STOP", "10000/minute"),
        ("RATE_LIMITS_RECOVER", "10000/minute"),
        ("RATE_LIMITS_STATUS", "10000/minute"),
        ("RATE_LIMITS_GLOBAL", "10000/minute"),
    ]
}

/// Writes another bot for `uid` (the default configuration but for the market
/// and the take-profit), stopped, as `POST /api/bots` would; returns its id.
fn add_bot(s: &Server, uid: i64, name: &str, symbol: &str, side: &str, take_profit: &str) -> i64 {
    let c = db(s);
    c.execute(
        "INSERT INTO user_bots (user_id, name, exchange, symbol, side, leverage, take_profit,
             stop_loss, rounds, grids, repeat, after_stop_loss, cooldown, max_active_legs,
             trailing_take_profit, created_at, updated_at)
         VALUES (?1, ?2, 'paper', ?3, ?4, 10, ?5, '0', 3,
             '[{\"amount\":10,\"gap\":0},{\"amount\":20,\"gap\":1},{\"amount\":40,\"gap\":2}]',
             1, 'stop', 0, 0, '0', 1, 1)",
        rusqlite::params![uid, name, symbol, side, take_profit],
    )
    .unwrap();
    c.last_insert_rowid()
}

/// One request to the bot runner's socket, as a worker sends it; its answer.
fn runner(s: &Server, req: Value) -> Value {
    let mut stream = UnixStream::connect(s.path("instance/bot-runner.sock")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    writeln!(stream, "{req}").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn start(s: &Server, uid: i64, bot: i64) -> Value {
    runner(s, json!({"op": "start", "user_id": uid, "bot_id": bot}))
}

/// Bot `bot`'s open orders on the paper exchange: client id → (symbol, price).
fn open_orders(s: &Server, bot: i64) -> BTreeMap<String, (String, Option<String>)> {
    let c = db(s);
    let mut stmt = c
        .prepare(
            "SELECT client_id, symbol, price FROM paper_orders
             WHERE client_id LIKE ?1 AND status IN ('open', 'partially_filled')",
        )
        .unwrap();
    stmt.query_map([format!("bz-{bot}-%")], |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn status_of(s: &Server, bot: i64) -> (String, Option<String>) {
    db(s)
        .query_row(
            "SELECT status, last_error FROM user_bots WHERE id = ?1",
            [bot],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn event_kinds(s: &Server, bot: i64) -> Vec<String> {
    let c = db(s);
    let mut stmt = c
        .prepare("SELECT kind FROM bot_events WHERE bot_id = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([bot], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The ladder a bot's first cycle rests: legs 1 and 2 and the take-profit.
fn ladder_ids(bot: i64) -> Vec<String> {
    ["l1", "l2", "tp1"]
        .iter()
        .map(|p| format!("bz-{bot}-1-{p}"))
        .collect()
}

fn keys<V>(m: &BTreeMap<String, V>) -> Vec<String> {
    m.keys().cloned().collect()
}

fn post(s: &Server, u: &User, path: &str, body: Value) -> (u16, Value) {
    let r = u.call(s, "POST", path, &body.to_string());
    (r.status, r.json())
}

#[test]
fn bots_of_one_user_trade_their_own_markets_and_never_the_same_position() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.csv");
    std::fs::write(
        &prices,
        format!(
            "seconds,symbol,price\n0,BTC/USDT,60000\n0,ETH/USDT,3000\n\
             {LEAD},BTC/USDT,59300\n"
        ),
    )
    .unwrap();
    let replay = format!("replay:{}", prices.display());
    let spawned = Instant::now();
    let s = Server::start_in(
        dir,
        Options {
            workers: 1,
            env: env(&replay),
            ..Options::default()
        },
    );
    let u = user(&s, "many@example.com", false);
    let default: i64 = db(&s)
        .query_row(
            "SELECT MIN(id) FROM user_bots WHERE user_id = ?1",
            [u.id],
            |r| r.get(0),
        )
        .unwrap();
    let eth = add_bot(&s, u.id, "ETH short", "ETH/USDT", "short", "5");
    // The other side of the default bot's symbol; a take-profit (5 % of the price
    // at 10x) the drop does not reach.
    let hedge = add_bot(&s, u.id, "BTC hedge", "BTC/USDT", "short", "50");

    // The default bot through the legacy endpoint, the others through the runner.
    let (code, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(start(&s, u.id, eth)["outcome"], "started");
    assert_eq!(start(&s, u.id, hedge)["outcome"], "started");
    for bot in [default, eth, hedge] {
        wait_for(Duration::from_secs(10), "each bot's ladder", || {
            keys(&open_orders(&s, bot)) == ladder_ids(bot)
        });
    }
    assert!(
        spawned.elapsed() < Duration::from_secs(LEAD),
        "too slow for the price path: the ladders rested {:?} after the spawn",
        spawned.elapsed()
    );
    let (btc, eth_before, hedge_before) = (
        open_orders(&s, default),
        open_orders(&s, eth),
        open_orders(&s, hedge),
    );
    for (bot, orders, symbol) in [
        (default, &btc, "BTC/USDT"),
        (eth, &eth_before, "ETH/USDT"),
        (hedge, &hedge_before, "BTC/USDT"),
    ] {
        assert!(
            orders.values().all(|(sym, _)| sym == symbol),
            "bot {bot}'s orders are on {symbol}: {orders:?}"
        );
    }
    // Each its own ladder: the long's legs below its entry, the shorts' above.
    let price = |m: &BTreeMap<String, (String, Option<String>)>, id: String| -> f64 {
        m[&id].1.as_deref().unwrap().parse().unwrap()
    };
    assert!(price(&btc, format!("bz-{default}-1-l1")) < 60000.0);
    assert!(price(&hedge_before, format!("bz-{hedge}-1-l1")) > 60000.0);
    assert!(price(&eth_before, format!("bz-{eth}-1-l1")) > 3000.0);

    // BTC drops through the long's first leg: its leg fills and its take-profit
    // follows the average; nothing of the others moves.
    let leg = format!("bz-{default}-1-l1");
    wait_for(
        Duration::from_secs(LEAD + 20),
        "the long's first leg",
        || {
            let open = open_orders(&s, default);
            !open.contains_key(&leg) && open.contains_key(&format!("bz-{default}-1-tp2"))
        },
    );
    // Many ticks of every bot after the fill.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(open_orders(&s, eth), eth_before, "the ETH bot is untouched");
    assert_eq!(
        open_orders(&s, hedge),
        hedge_before,
        "the hedge is untouched"
    );
    for bot in [default, eth, hedge] {
        assert_eq!(status_of(&s, bot), ("running".into(), None), "bot {bot}");
        let kinds = event_kinds(&s, bot);
        assert!(
            !kinds.iter().any(|k| k == "safety_stop"),
            "{bot}: {kinds:?}"
        );
    }
    let filled: i64 = db(&s)
        .query_row(
            "SELECT COUNT(*) FROM bot_fills WHERE bot_id = ?1 AND purpose = 'leg'",
            [default],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(filled, 1, "the leg is the default bot's, in its ledger");

    // A second bot on the default bot's position is refused, and stays as it was.
    let twin = add_bot(&s, u.id, "BTC long again", "BTC/USDT", "long", "5");
    let refused = start(&s, u.id, twin);
    assert_eq!(refused["outcome"], "conflict", "{refused}");
    assert_eq!(status_of(&s, twin), ("stopped".into(), None));
    assert!(open_orders(&s, twin).is_empty());
    // Another user's bot is not this user's to start.
    let other = user(&s, "other@example.com", false);
    assert_eq!(start(&s, other.id, eth)["outcome"], "not_found");

    // The default bot closes its position; the twin may now trade it, and the
    // legacy start of the default bot is the one refused.
    let (code, body) = post(&s, &u, "/api/bot/stop", json!({"mode": "close_position"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(start(&s, u.id, twin)["outcome"], "started");
    let (code, body) = post(&s, &u, "/api/bot/start", json!({}));
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("conflict")),
        "{body}"
    );
    assert_eq!(u.status(&s)["status"], "stopped");

    // The closed cycle is the default bot's: in all trades, and when filtered.
    let all = u.get(&s, "/api/trades")["trades"].clone();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["bot_id"], default);
    let mine = u.get(&s, &format!("/api/trades?bot_id={default}"));
    assert_eq!(mine["trades"], all);
    let none = u.get(&s, &format!("/api/trades?bot_id={eth}"));
    assert_eq!(none["trades"], json!([]));
    let theirs: i64 = db(&s)
        .query_row(
            "SELECT MIN(id) FROM user_bots WHERE user_id = ?1",
            [other.id],
            |r| r.get(0),
        )
        .unwrap();
    for path in [
        format!("/api/trades?bot_id={theirs}"),
        format!("/api/pnl/summary?bot_id={theirs}"),
        "/api/trades?bot_id=x".to_string(),
    ] {
        let r = u.call(&s, "GET", &path, "");
        assert_eq!(
            (r.status, r.json()),
            (404, json!({"error": "Not found"})),
            "{path}"
        );
    }
    let summary = u.get(&s, &format!("/api/pnl/summary?bot_id={eth}"));
    assert_eq!(summary["total_trades"], 0);
    assert_eq!(u.get(&s, "/api/pnl/summary")["total_trades"], 1);

    // The paper account is shared by the user's bots: no reset while any runs.
    let (code, body) = post(&s, &u, "/api/paper/account/reset", json!({}));
    assert_eq!(
        (code, body["status"].clone()),
        (409, json!("bot_running")),
        "{body}"
    );
}

#[test]
fn the_admin_overview_lists_every_bot_and_counts_bots() {
    let s = Server::with(Options {
        workers: 1,
        env: common::bots::CALM.to_vec(),
        ..Options::default()
    });
    let admin = user(&s, "boss@example.com", true);
    let u = user(&s, "two@example.com", false);
    let eth = add_bot(&s, u.id, "ETH", "ETH/USDT", "short", "5");
    assert_eq!(start(&s, u.id, eth)["outcome"], "started");
    let overview = admin.get(&s, "/admin/simple/status");
    // Every user's default bot (the seeded admin's too) and the ETH bot.
    let all = common::bots::count(&s, "SELECT COUNT(*) FROM user_bots");
    assert_eq!(all, 4);
    let bots = overview["bots"].as_object().unwrap();
    assert_eq!(bots.len() as i64, all, "{overview}");
    assert_eq!(
        overview["bots"][eth.to_string()],
        json!({"user_id": u.id, "running": true, "status": "running",
               "exchange": "paper", "symbol": "ETH/USDT", "side": "short",
               // One host (SQLite): no lease, no instance.
               "instance": null})
    );
    assert_eq!(overview["totals"]["total_managed"], all);
    assert_eq!(overview["totals"]["total_running"], 1);
    // The user's entry is their default bot, which is stopped.
    assert_eq!(overview["users"][u.id.to_string()]["status"], "stopped");
}

#[test]
fn concurrent_starts_on_one_position_let_exactly_one_through() {
    let s = Server::with(Options {
        workers: 1,
        env: common::bots::CALM.to_vec(),
        ..Options::default()
    });
    let u = user(&s, "race@example.com", false);
    let twins = [
        add_bot(&s, u.id, "ETH A", "ETH/USDT", "short", "5"),
        add_bot(&s, u.id, "ETH B", "ETH/USDT", "short", "5"),
    ];
    let outcomes: Vec<String> = std::thread::scope(|scope| {
        let started: Vec<_> = twins
            .iter()
            .map(|bot| {
                let s = &s;
                scope.spawn(move || {
                    start(s, u.id, *bot)["outcome"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = outcomes.clone();
    sorted.sort();
    assert_eq!(sorted, ["conflict", "started"], "{outcomes:?}");
    let running: Vec<String> = twins.iter().map(|b| status_of(&s, *b).0).collect();
    let mut states = running.clone();
    states.sort();
    assert_eq!(states, ["running", "stopped"], "{running:?}");
}

/// A stopped bot whose cycle still holds its position (a `keep` stop leaves the
/// position and the ladder on the exchange) keeps that position its own: another
/// bot of the user starting on the same paper market and side is refused with
/// 409 `conflict`, the other side is free, and once the cycle is closed the
/// market is free again.
#[test]
fn a_stopped_bots_open_cycle_keeps_its_position_from_siblings() {
    let s = Server::with(Options {
        workers: 1,
        env: common::bots::CALM.to_vec(),
        ..Options::default()
    });
    let u = user(&s, "keep@example.com", false);
    let held = add_bot(&s, u.id, "BTC long", "BTC/USDT", "long", "5");
    assert_eq!(start(&s, u.id, held)["outcome"], "started");
    wait_for(Duration::from_secs(10), "the ladder", || {
        keys(&open_orders(&s, held)) == ladder_ids(held)
    });
    let stop = |bot: i64, mode: &str| {
        runner(
            &s,
            json!({"op": "stop", "user_id": u.id, "bot_id": bot, "mode": mode}),
        )
    };
    assert_eq!(stop(held, "keep")["outcome"], "stopped");
    assert_eq!(status_of(&s, held).0, "stopped");
    assert_eq!(keys(&open_orders(&s, held)), ladder_ids(held), "kept");

    let twin = add_bot(&s, u.id, "BTC long again", "BTC/USDT", "long", "5");
    let refused = start(&s, u.id, twin);
    assert_eq!(refused["outcome"], "conflict", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains(&format!("bot {held}")),
        "{refused}"
    );
    let (code, body) = post(&s, &u, &format!("/api/bots/{twin}/start"), json!({}));
    assert_eq!(
        (code, body["success"].clone(), body["status"].clone()),
        (409, json!(false), json!("conflict")),
        "{body}"
    );
    assert_eq!(status_of(&s, twin), ("stopped".into(), None));
    assert!(open_orders(&s, twin).is_empty(), "the twin placed nothing");
    assert_eq!(keys(&open_orders(&s, held)), ladder_ids(held), "untouched");

    // The other side of the symbol is another position.
    let hedge = add_bot(&s, u.id, "BTC short", "BTC/USDT", "short", "50");
    assert_eq!(start(&s, u.id, hedge)["outcome"], "started");
    wait_for(Duration::from_secs(10), "the hedge's ladder", || {
        keys(&open_orders(&s, hedge)) == ladder_ids(hedge)
    });

    // The held bot resumes its cycle and closes it: the market is free.
    assert_eq!(start(&s, u.id, held)["outcome"], "started");
    assert_eq!(stop(held, "close_position")["outcome"], "stopped");
    assert!(open_orders(&s, held).is_empty());
    let started = start(&s, u.id, twin);
    assert_eq!(started["outcome"], "started", "{started}");
}

/// Every bot of a user that was running resumes after the runner dies, each
/// with its own orders (adopted, nothing placed again); disabling the user then
/// stops all of them, not only the default one.
#[test]
fn every_running_bot_of_a_user_resumes_and_a_disabled_user_loses_them_all() {
    let s = Server::with(Options {
        workers: 1,
        env: common::bots::CALM.to_vec(),
        ..Options::default()
    });
    let admin = user(&s, "root@example.com", true);
    let u = user(&s, "three@example.com", false);
    let default: i64 = db(&s)
        .query_row(
            "SELECT MIN(id) FROM user_bots WHERE user_id = ?1",
            [u.id],
            |r| r.get(0),
        )
        .unwrap();
    let eth = add_bot(&s, u.id, "ETH short", "ETH/USDT", "short", "5");
    let hedge = add_bot(&s, u.id, "BTC short", "BTC/USDT", "short", "50");
    let bots = [default, eth, hedge];
    for bot in bots {
        assert_eq!(start(&s, u.id, bot)["outcome"], "started");
    }
    for bot in bots {
        wait_for(Duration::from_secs(10), "each bot's ladder", || {
            keys(&open_orders(&s, bot)) == ladder_ids(bot)
        });
    }
    let before: Vec<_> = bots.iter().map(|b| open_orders(&s, *b)).collect();
    let orders_placed = || common::bots::count(&s, "SELECT COUNT(*) FROM paper_orders");
    let placed = orders_placed();

    let old = s.runner_pids();
    assert_eq!(old.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(Duration::from_secs(20), "every bot resumed", || {
        bots.iter()
            .all(|b| event_kinds(&s, *b).iter().any(|k| k == "resumed"))
    });
    assert_ne!(s.runner_pids(), old);
    for (bot, orders) in bots.iter().zip(&before) {
        assert_eq!(status_of(&s, *bot), ("running".into(), None), "bot {bot}");
        assert_eq!(&open_orders(&s, *bot), orders, "bot {bot} kept its own");
    }
    assert_eq!(orders_placed(), placed, "nothing placed again");

    let r = admin.call(
        &s,
        "PATCH",
        &format!("/api/admin/users/{}", u.id),
        r#"{"disabled": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(Duration::from_secs(10), "every bot stopped", || {
        bots.iter().all(|b| status_of(&s, *b).0 == "stopped")
    });
    let wanted = common::bots::count(
        &s,
        &format!(
            "SELECT COUNT(*) FROM user_bots WHERE user_id = {} AND desired_state = 'running'",
            u.id
        ),
    );
    assert_eq!(wanted, 0, "none is resumed by a later restart");
    for bot in bots {
        assert!(open_orders(&s, bot).is_empty(), "bot {bot}'s orders");
    }
}
