//! Upgrading a database made by the release before several bots per user (C14): the
//! fixture `tests/fixtures/upgrade-0011/` was made by that release (schema 0011)
//! with a Bybit bot running on the Bybit fake, and this test starts the current
//! build on it. The running bot must resume as the user's default bot and keep
//! recognising its live orders by their client ids (nothing orphaned, nothing
//! placed twice), and every user's bot, exchange account and configuration must
//! come through the migration.
//!
//! The fixture's users: 1 `admin@example.com` (the admin made on first start,
//! never traded); 2 `idle@example.com` (the paper configuration every new user gets,
//! never started); 3 `trader@example.com` (Bybit keys, bot running: entry filled,
//! two ladder legs, a take-profit and an exchange-side stop resting on the fake);
//! 4 `bingx@example.com` (BingX keys and a short configuration, never started).
//!
//! How the fixture is made, and remade, is in tests/fixtures/upgrade-0011/README.md:
//! `make_upgrade_fixture` below, run with the release's binary. Both releases run
//! with `SECRET_KEY` below, which the sealed exchange keys need. The Bybit fake's
//! clock is restored to the moment of the fixture (fake_snapshot.rs), so the bot's
//! recorded times and the exchange's agree however old the fixture gets.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::bots::{wait_status, User, CALM};
use common::fake_bingx::FakeBingx;
use common::fake_book::{Book, Dir, FakeOrder};
use common::fake_bybit::FakeBybit;
use common::ports::ReservedPort;
use common::{blitz_cmd, fake_snapshot, fixture_db, release, wait_for, Options, Server};
use rust_decimal::{dec, Decimal};
use serde_json::{json, Value};

/// The instance key both releases run with (C1.2: 64 hex digits).
const SECRET_KEY: &str = "5570677261646520746573743a2073656e74696e656c206b6579203031313221";
const BYBIT_KEY: &str = "upgradeBybitKey0abcd";
const BYBIT_SECRET: &str = "upgrade-bybit-secret";
const BINGX_KEY: &str = "upgradeBingxKey0wxyz";
const BINGX_SECRET: &str = "upgrade-bingx-secret";

/// The admin the master makes on its first start (`ADMIN_EMAIL`).
const ADMIN: (i64, &str) = (1, "admin@example.com");
const ADMIN_PASSWORD: &str = "upgrade-admin-password";
const IDLE: (i64, &str) = (2, "idle@example.com");
const TRADER: (i64, &str) = (3, "trader@example.com");
const BINGX_USER: (i64, &str) = (4, "bingx@example.com");

/// The trader's orders resting on the fake in the fixture: cycle 1's legs, its
/// first take-profit and its first (exchange-side) stop.
const RESTING: [&str; 4] = ["bz-3-1-l1", "bz-3-1-l2", "bz-3-1-sl1", "bz-3-1-tp1"];

fn resting() -> BTreeSet<String> {
    RESTING.map(String::from).into()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade-0011")
        .join(name)
}

/// The trader's ladder, entered at the fake's 60,000 at 10x: entry 0.002, leg 1 at
/// 59,400 (0.002), leg 2 at 58,212 (0.004), take-profit 60,600, stop 58,800. After
/// leg 1 the average is 59,700 for 0.004: take-profit 60,297, stop 58,506.
fn trader_config() -> Value {
    json!({"exchange": "bybit", "api_key": BYBIT_KEY, "api_secret": BYBIT_SECRET,
        "symbol": "BTC/USDT", "side": "long", "leverage": 10,
        "take_profit": 10, "stop_loss": 20, "rounds": 3,
        "grids": [{"amount": 12, "gap": 0}, {"amount": 12, "gap": 1}, {"amount": 24, "gap": 2}],
        "repeat": true})
}

/// Unlike every default, so that a column lost or swapped by the migration shows.
fn bingx_config() -> Value {
    json!({"exchange": "bingx", "api_key": BINGX_KEY, "api_secret": BINGX_SECRET,
        "symbol": "BTC/USDT", "side": "short", "leverage": 5,
        "take_profit": 8, "stop_loss": 15, "rounds": 2,
        "grids": [{"amount": 20, "gap": 0}, {"amount": 30, "gap": 1.5}],
        "repeat": false, "telegram_chat_id": "12345", "telegram_token": "123:upgrade-token",
        "after_stop_loss": "continue", "cooldown": 90})
}

/// The fakes and a port that refuses connections, standing in for the public
/// streams (the market data falls back to the fake's REST tickers; nothing leaves
/// the host).
struct Venues {
    bybit: FakeBybit,
    bingx: FakeBingx,
    closed: ReservedPort,
}

impl Venues {
    fn start() -> Venues {
        Venues {
            bybit: FakeBybit::start(BYBIT_KEY, BYBIT_SECRET),
            bingx: FakeBingx::start(BINGX_KEY, BINGX_SECRET),
            closed: ReservedPort::new(),
        }
    }

    /// The variables both releases run with.
    fn env(&self) -> Vec<(String, String)> {
        let ws = format!("ws://127.0.0.1:{}", self.closed.port);
        let mut env: Vec<(String, String)> = CALM
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.extend([
            ("SECRET_KEY".into(), SECRET_KEY.into()),
            ("ADMIN_EMAIL".into(), ADMIN.1.into()),
            ("ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("BYBIT_BASE_URL".into(), self.bybit.url()),
            ("BINGX_BASE_URL".into(), self.bingx.url()),
            ("BYBIT_WS_PUBLIC_URL".into(), ws.clone()),
            ("BINGX_WS_PUBLIC_URL".into(), ws),
        ]);
        env
    }
}

fn options(env: &[(String, String)]) -> Options<'_> {
    Options {
        workers: 2,
        env: env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        ..Options::default()
    }
}

/// A bearer token for an existing user, made by the current build's CLI.
fn token(s: &Server, (id, email): (i64, &str)) -> User {
    let out = blitz_cmd(s.dir.path())
        .args(["token", "create", "--email", email])
        .args(["--database", "instance/database.db"])
        .env("SECRET_KEY", SECRET_KEY)
        .output()
        .expect("run blitz");
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().next().expect("a token").trim().to_string();
    User { id, token }
}

/// Client ids of the orders open on the fake.
fn open_ids(b: &Book) -> BTreeSet<String> {
    b.orders
        .iter()
        .filter(|o| o.is_open())
        .map(|o| o.client_id.clone())
        .collect()
}

/// Client ids of an `orders` answer.
fn listed_ids(v: &Value) -> BTreeSet<String> {
    v["orders"]
        .as_array()
        .unwrap_or_else(|| panic!("no orders in {v}"))
        .iter()
        .map(|o| o["client_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn requests_to(b: &Book, path: &str) -> usize {
    b.seen.iter().filter(|p| *p == path).count()
}

fn number(v: &Value) -> Decimal {
    v.to_string().parse().unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// The only element of `v[key]`.
fn only<'a>(v: &'a Value, key: &str) -> &'a Value {
    let list = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"));
    assert_eq!(list.len(), 1, "one of {key}: {v}");
    &list[0]
}

/// Every field the release showed in `before` is shown alike now.
fn assert_kept(now: &Value, before: &Value, what: &str) {
    for (k, v) in before.as_object().expect("an object") {
        assert_eq!(
            &now[k], v,
            "{what}: {k} changed\nbefore {before}\nnow {now}"
        );
    }
}

/// The current build on the fixture: the fakes restored, the database loaded, a
/// token for every user.
struct Upgraded {
    venues: Venues,
    server: Server,
    /// The release's `GET /api/bot/config` answers by user id.
    configs: Value,
    users: [User; 4],
    /// The Bybit fake's orders and accepted placements as the release left them.
    orders_before: Vec<FakeOrder>,
    placed_before: Vec<String>,
}

impl Upgraded {
    fn start() -> Upgraded {
        let venues = Venues::start();
        let book: Value = read_json("bybit-book.json");
        fake_snapshot::restore(&mut venues.bybit.book(), &book);
        let (orders_before, placed_before) = {
            let b = venues.bybit.book();
            assert_eq!(open_ids(&b), resting(), "the fixture");
            (b.orders.clone(), b.accepted.clone())
        };
        let dir = tempfile::tempdir().unwrap();
        let dump = fs::read_to_string(fixture("database.sql")).unwrap();
        fixture_db::load(&dump, &dir.path().join("instance/database.db"));
        let env = venues.env();
        let server = Server::start_in(dir, options(&env));
        let users = [ADMIN, IDLE, TRADER, BINGX_USER].map(|u| token(&server, u));
        Upgraded {
            venues,
            server,
            configs: read_json("bot-config.json"),
            users,
            orders_before,
            placed_before,
        }
    }

    fn user(&self, (id, _): (i64, &str)) -> &User {
        &self.users[id as usize - 1]
    }
}

fn read_json(name: &str) -> Value {
    let text = fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn a_release_database_with_a_running_bybit_bot_upgrades_in_place() {
    let up = Upgraded::start();
    resumes_without_touching_its_orders(&up);
    legacy_views_are_kept(&up);
    each_user_has_a_default_bot(&up);
    leg_fill_moves_take_profit_and_stop(&up);
    let (dir, _) = up.server.terminate();
    let db = rusqlite::Connection::open(dir.path().join("instance/database.db")).unwrap();
    assert!(fixture_db::schema_version(&db) > 11, "migrated");
    assert_eq!(
        fixture_db::foreign_key_violations(&db),
        Vec::<String>::new()
    );
    assert_eq!(fixture_db::integrity(&db), ["ok"]);
}

/// The running bot resumed on its own and adopted what rests on the exchange:
/// some ticks later still nothing placed, cancelled or refused.
fn resumes_without_touching_its_orders(up: &Upgraded) {
    let (s, trader) = (&up.server, up.user(TRADER));
    wait_for(Duration::from_secs(30), "the trader's bot resumed", || {
        trader.events(s).iter().any(|k| k == "resumed")
    });
    let st = wait_status(s, trader, "running");
    assert_eq!(st["cycle"], 1, "{st}");
    let bybit = &up.venues.bybit;
    let polled = requests_to(&bybit.book(), "/v5/order/realtime");
    wait_for(
        Duration::from_secs(20),
        "bot ticks after the resume",
        || requests_to(&bybit.book(), "/v5/order/realtime") >= polled + 3,
    );
    let b = bybit.book();
    assert!(b.refused.is_empty(), "refused: {:?}", b.refused);
    assert_eq!(b.duplicates, 0, "duplicate placements");
    assert_eq!(b.accepted, up.placed_before, "nothing placed at the resume");
    assert_eq!(b.orders, up.orders_before, "nothing cancelled or changed");
    drop(b);
    assert_eq!(listed_ids(&trader.get(s, "/api/bot/orders")), resting());
}

/// `/api/bot/*` of every user as the release showed it; the BingX keys still
/// open (listing that user's orders signs with them).
fn legacy_views_are_kept(up: &Upgraded) {
    let s = &up.server;
    for who in [IDLE, TRADER, BINGX_USER] {
        let now = up.user(who).get(s, "/api/bot/config");
        assert_kept(&now, &up.configs[who.0.to_string()], who.1);
    }
    assert_eq!(
        up.user(TRADER).get(s, "/api/bot/config")["api_key"],
        "***abcd"
    );
    let bingx = up.user(BINGX_USER);
    assert_eq!(bingx.get(s, "/api/bot/orders")["orders"], json!([]));
    assert!(up.venues.bingx.book().refused.is_empty());
    assert_eq!(bingx.status(s)["status"], "stopped");
    assert_eq!(up.user(IDLE).status(s)["status"], "stopped");
}

/// C14: one default bot per user with id = user id, its exchange account made
/// from the stored keys; the admin's overview lists all four.
fn each_user_has_a_default_bot(up: &Upgraded) {
    let s = &up.server;
    let trader = up.user(TRADER);
    let account = only(&trader.get(s, "/api/exchange-accounts"), "accounts").clone();
    assert_eq!(
        (&account["exchange"], &account["api_key"]),
        (&json!("bybit"), &json!("***abcd")),
        "{account}"
    );
    let bots = trader.get(s, "/api/bots");
    let bot = only(&bots, "bots");
    assert_eq!(
        (&bot["id"], &bot["exchange_account_id"], &bot["exchange"]),
        (&json!(3), &account["id"], &json!("bybit")),
        "{bot}"
    );
    assert_eq!(
        (
            &bot["symbol"],
            &bot["side"],
            &bot["status"],
            &bot["running"]
        ),
        (
            &json!("BTC/USDT"),
            &json!("long"),
            &json!("running"),
            &json!(true)
        ),
        "{bot}"
    );
    assert_eq!(listed_ids(&trader.get(s, "/api/bots/3/orders")), resting());
    bingx_bot_keeps_its_account(up);
    let idle = up.user(IDLE);
    let idle_bots = idle.get(s, "/api/bots");
    let bot = only(&idle_bots, "bots");
    assert_eq!(
        (
            &bot["id"],
            &bot["exchange"],
            &bot["status"],
            &bot["running"]
        ),
        (&json!(2), &json!("paper"), &json!("stopped"), &json!(false)),
        "{bot}"
    );
    assert_eq!(idle.get(s, "/api/exchange-accounts")["accounts"], json!([]));
    let overview = up.user(ADMIN).get(s, "/admin/simple/status");
    for id in 1..=4 {
        let b = &overview["bots"][id.to_string()];
        assert_eq!(b["user_id"], id, "bot {id}: {overview}");
        assert_eq!(b["running"], id == TRADER.0, "bot {id}: {overview}");
    }
}

fn bingx_bot_keeps_its_account(up: &Upgraded) {
    let (s, bingx) = (&up.server, up.user(BINGX_USER));
    let account = only(&bingx.get(s, "/api/exchange-accounts"), "accounts").clone();
    assert_eq!(
        (&account["exchange"], &account["api_key"]),
        (&json!("bingx"), &json!("***wxyz")),
        "{account}"
    );
    let bots = bingx.get(s, "/api/bots");
    let bot = only(&bots, "bots");
    assert_eq!(
        (&bot["id"], &bot["exchange_account_id"], &bot["status"]),
        (&json!(4), &account["id"], &json!("stopped")),
        "{bot}"
    );
    let config = bingx.get(s, "/api/bots/4/config");
    assert_kept(&config, &up.configs["4"], "BingX bot config");
}

/// Leg 1 fills on the fake: the upgraded bot replaces its take-profit and stop
/// for the new average with ids of the same bot tag, one stop only, and every
/// client id on the account was placed once across both releases.
fn leg_fill_moves_take_profit_and_stop(up: &Upgraded) {
    let (s, bybit, trader) = (&up.server, &up.venues.bybit, up.user(TRADER));
    let placed = bybit.book().accepted.len();
    bybit.book().set_price(dec!(59400));
    let mut new_ids = Vec::new();
    wait_for(
        Duration::from_secs(20),
        "take-profit and stop moved",
        || {
            let b = bybit.book();
            new_ids = b.accepted[placed..].to_vec();
            let open = open_ids(&b);
            open.len() == 3
                && open.contains("bz-3-1-l2")
                && b.stops().len() == 1
                && new_ids.len() == 2
        },
    );
    new_ids.sort();
    assert_eq!(
        new_ids,
        ["bz-3-1-sl2", "bz-3-1-tp2"],
        "the bot's tag, cycle 1"
    );
    let b = bybit.book();
    let tp = b.order("bz-3-1-tp2").expect("take-profit");
    assert_eq!(
        (tp.price, tp.qty, tp.is_open()),
        (dec!(60297), dec!(0.004), true)
    );
    let sl = b.stops()[0];
    assert_eq!(sl.client_id, "bz-3-1-sl2");
    assert_eq!(sl.trigger.map(|t| t.price), Some(dec!(58506)));
    assert_eq!(b.order("bz-3-1-tp1").map(|o| o.status), Some("cancelled"));
    assert_eq!(b.order("bz-3-1-sl1").map(|o| o.status), Some("deactivated"));
    assert_eq!((b.long.size, b.long.avg), (dec!(0.004), dec!(59700)));
    let mut ids = b.accepted.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), b.accepted.len(), "every client id placed once");
    assert!(b.refused.is_empty(), "refused: {:?}", b.refused);
    drop(b);
    for path in ["/api/bot/status", "/api/bots/3/status"] {
        wait_for(Duration::from_secs(20), "the position after leg 1", || {
            let st = trader.get(s, path);
            st["running"] == true && number(&st["position"]["size"]) == dec!(0.004)
        });
    }
    let listed = listed_ids(&trader.get(s, "/api/bots/3/orders"));
    assert_eq!(listed, open_ids(&bybit.book()));
}

/// The snapshot of a book restores to the same book (but for its clock, which goes
/// on from the snapshot's).
#[test]
fn a_fake_book_snapshot_restores_the_same_book() {
    let fake = FakeBybit::start("k", "s");
    {
        let mut b = fake.book();
        b.price = dec!(60000);
        b.leverage = 10;
        let mut entry = FakeOrder::new("e", true, Dir::Long, dec!(0.002));
        entry.market = true;
        b.add(entry);
        let mut leg = FakeOrder::new("l", true, Dir::Long, dec!(0.002));
        leg.market = false;
        leg.price = dec!(59400);
        b.add(leg);
        b.add_funding(dec!(-0.12), 1_700_000_000_000);
    }
    let taken = fake_snapshot::snapshot(&fake.book());
    let again = FakeBybit::start("other", "keys");
    fake_snapshot::restore(&mut again.book(), &taken);
    let mut restored = fake_snapshot::snapshot(&again.book());
    let clock = restored["clock_ms"].as_i64().unwrap() - taken["clock_ms"].as_i64().unwrap();
    assert!((0..5_000).contains(&clock), "the clock goes on: {clock} ms");
    restored["clock_ms"] = taken["clock_ms"].clone();
    assert_eq!(restored, taken);
    assert_eq!(again.book().orders, fake.book().orders);
    assert_eq!(again.book().long.size, dec!(0.002));
}

/// Remakes the fixture with the release binary named by `BLITZ_RELEASE_BIN`
/// (tests/fixtures/upgrade-0011/README.md).
#[test]
#[ignore = "remakes tests/fixtures/upgrade-0011 with the release binary in BLITZ_RELEASE_BIN"]
fn make_upgrade_fixture() {
    let bin = release::binary("BLITZ_RELEASE_BIN");
    let venues = Venues::start();
    venues.bybit.book().price = dec!(60000);
    let env = venues.env();
    let s = release::start_in(&bin, tempfile::tempdir().unwrap(), options(&env));
    // The master made the admin (ADMIN_EMAIL) on its first start: user 1.
    let cli_env = [("SECRET_KEY", SECRET_KEY)];
    let mut users = Vec::new();
    for (id, email) in [IDLE, TRADER, BINGX_USER] {
        let args = ["user", "create", "--email", email];
        let (_, said) = release::cli(&bin, s.dir.path(), &cli_env, &args);
        assert!(said.contains(&format!("(id {id})")), "{said}");
        let args = ["token", "create", "--email", email];
        let (out, _) = release::cli(&bin, s.dir.path(), &cli_env, &args);
        let token = out.lines().next().expect("a token").trim().to_string();
        users.push(User { id, token });
    }
    let (idle, trader, bingx) = (&users[0], &users[1], &users[2]);
    for (u, config) in [(trader, trader_config()), (bingx, bingx_config())] {
        let r = u.call(&s, "PUT", "/api/bot/config", &config.to_string());
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = trader.call(&s, "POST", "/api/bot/start", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(Duration::from_secs(30), "the whole ladder resting", || {
        let b = venues.bybit.book();
        open_ids(&b) == resting() && b.order("bz-3-1-e").is_some_and(|o| o.status == "filled")
    });
    wait_for(Duration::from_secs(20), "the runner saw its ladder", || {
        let st = trader.status(&s);
        st["status"] == "running" && st["stop_on_exchange"] == true && st["open_orders"] == 4
    });
    let configs = json!({
        "2": idle.get(&s, "/api/bot/config"),
        "3": trader.get(&s, "/api/bot/config"),
        "4": bingx.get(&s, "/api/bot/config"),
    });
    // A service stop leaves the bot to be resumed with its orders in place.
    let (dir, _) = s.terminate();
    let db_path = dir.path().join("instance/database.db");
    let db = rusqlite::Connection::open(&db_path).unwrap();
    assert_eq!(
        fixture_db::schema_version(&db),
        11,
        "made by the 0011 release"
    );
    drop(db);
    let b = venues.bybit.book();
    assert_eq!(open_ids(&b), resting());
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap() + "\n";
    fs::create_dir_all(fixture("")).unwrap();
    fs::write(
        fixture("bybit-book.json"),
        pretty(&fake_snapshot::snapshot(&b)),
    )
    .unwrap();
    fs::write(fixture("bot-config.json"), pretty(&configs)).unwrap();
    fs::write(fixture("database.sql"), fixture_db::dump(&db_path)).unwrap();
}
