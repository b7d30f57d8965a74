//! The paper exchange when its database fails: a write refused because another
//! connection holds the write lock, then retried with the same client id (as a
//! bot retries a retryable error), must execute the order exactly once; and
//! which storage errors are retryable.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::store::sql::Conn;

use super::*;
use crate::bots::ladder::Side;
use crate::exchange::{Exchange, ExchangeError, NewOrder, OrderKind, OrderSide};
use crate::money::dec;

const BTC: &str = "BTC/USDT";

pub(super) fn params() -> PaperParams {
    PaperParams {
        tick_ms: 1000,
        volatility: 0.0,
        seed: Some(1),
        funding_rate: crate::exchange::paper::DEFAULT_FUNDING_RATE,
    }
}

/// A market buy of 0.01 BTC opening a long, with client id `cid`.
pub(super) fn entry(cid: &str) -> NewOrder {
    NewOrder {
        client_id: cid.into(),
        symbol: BTC.into(),
        side: OrderSide::Buy,
        kind: OrderKind::Market,
        price: None,
        trigger_price: None,
        qty: dec!(0.01),
        reduce_only: false,
        position_side: Side::Long,
    }
}

/// A migrated database file, as the server keeps it (WAL).
pub(super) fn database(path: &Path) -> Conn {
    let mut c = Conn::open(path).unwrap();
    c.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA journal_mode = WAL")
        .unwrap();
    crate::store::migrate::migrate(&mut c).unwrap();
    c
}

/// (size, order rows, fill rows, balance) as the database holds them.
fn durable(path: &Path) -> (String, i64, i64, Decimal) {
    let c = Conn::open(path).unwrap();
    c.query_row(
        "SELECT (SELECT size FROM paper_positions), (SELECT COUNT(*) FROM paper_orders),
                (SELECT COUNT(*) FROM paper_fills), (SELECT balance FROM paper_accounts)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)),
    )
    .map(|(size, orders, fills, balance)| (size, orders, fills, balance.parse().unwrap()))
    .unwrap()
}

#[test]
fn a_write_refused_by_a_held_lock_then_retried_fills_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paper.db");
    let conn = database(&path);
    conn.sqlite()
        .unwrap()
        .busy_timeout(std::time::Duration::from_millis(20))
        .unwrap();
    let p = Paper::open(conn, params(), 0).unwrap();
    let a = p.account(1);
    // A market buy takes the ask: the price + 0.01 %, up to the tick.
    let price = (a.ticker(BTC).unwrap() * dec!(1.0001) / dec!(0.1)).ceil() * dec!(0.1);

    let other = Conn::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = a.place(&entry("bz-1-1-e"));
    assert!(
        matches!(&first, Err(ExchangeError::Network(m)) if m.contains("locked")),
        "{first:?}"
    );
    // Nothing happened, as far as anyone can tell, while the lock is still held.
    assert_eq!(a.position(BTC, Side::Long).unwrap().size, dec!(0));
    assert_eq!(a.order(BTC, "bz-1-1-e").unwrap(), None);
    let again = a.place(&entry("bz-1-1-e"));
    assert!(matches!(again, Err(ExchangeError::Network(_))), "{again:?}");
    assert_eq!(a.position(BTC, Side::Long).unwrap().size, dec!(0));
    other.execute_batch("COMMIT").unwrap();

    let o = a.place(&entry("bz-1-1-e")).unwrap();
    let fee = crate::money::pnl(dec!(0.01) * price * dec!(0.00055));
    assert_eq!((o.filled_qty, o.fee), (dec!(0.01), fee));
    assert_eq!(a.position(BTC, Side::Long).unwrap().size, dec!(0.01));
    assert_eq!(a.balance().unwrap(), dec!(10000) - fee, "one fee");
    assert_eq!(durable(&path), ("0.01".into(), 1, 1, dec!(10000) - fee));
}

/// The other connection, released by the busy handler on its `RELEASE_AT`th
/// busy event: SQLite calls the handler with no context, hence the statics
/// (only this test installs the handler).
static HOLDER: Mutex<Option<Conn>> = Mutex::new(None);
static BUSY_EVENTS: AtomicUsize = AtomicUsize::new(0);
const RELEASE_AT: usize = 4;

fn release_on_fourth_busy(count: i32) -> bool {
    if count > 0 {
        return false;
    }
    if BUSY_EVENTS.fetch_add(1, Ordering::SeqCst) + 1 < RELEASE_AT {
        return false;
    }
    if let Some(c) = HOLDER.lock().unwrap().take() {
        c.execute_batch("COMMIT").unwrap();
    }
    true
}

/// The narrow case: the write lock is released between a retry's start and its
/// write. Memory must never be ahead of the database when a call begins, or the
/// retry writes the failed attempt's fill along with its own.
#[test]
fn a_retry_never_writes_the_failed_attempts_fill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paper.db");
    let conn = database(&path);
    let p = Paper::open(conn, params(), 0).unwrap();
    let a = p.account(1);
    a.ticker(BTC).unwrap();
    p.lock()
        .unwrap()
        .conn
        .sqlite()
        .unwrap()
        .busy_handler(Some(release_on_fourth_busy))
        .unwrap();
    let other = Conn::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    *HOLDER.lock().unwrap() = Some(other);

    let mut tries = 0;
    let o = loop {
        tries += 1;
        match a.place(&entry("bz-1-1-e")) {
            Ok(o) => break o,
            Err(e) if e.is_retryable() && tries < 10 => continue,
            Err(e) => panic!("try {tries}: {e:?}"),
        }
    };
    assert_eq!(o.filled_qty, dec!(0.01));
    assert_eq!(a.position(BTC, Side::Long).unwrap().size, dec!(0.01));
    let (size, orders, fills, _) = durable(&path);
    assert_eq!((size.as_str(), orders, fills), ("0.01", 1, 1));
}

#[test]
fn only_a_busy_or_failing_database_is_retryable() {
    use rusqlite::ffi;
    let failure = |code| {
        PaperError::Db(crate::store::SqlError::Sqlite(
            rusqlite::Error::SqliteFailure(ffi::Error::new(code), None),
        ))
    };
    for code in [ffi::SQLITE_BUSY, ffi::SQLITE_LOCKED, ffi::SQLITE_IOERR] {
        let e = ExchangeError::from(failure(code));
        assert!(matches!(e, ExchangeError::Network(_)), "{code}: {e:?}");
    }
    let e = ExchangeError::from(failure(ffi::SQLITE_CONSTRAINT));
    assert!(matches!(e, ExchangeError::Rejected(_)), "{e:?}");
    let e = ExchangeError::from(failure(ffi::SQLITE_CORRUPT));
    assert!(matches!(e, ExchangeError::Malformed(_)), "{e:?}");
    let e = ExchangeError::from(PaperError::Corrupt {
        what: "order side",
        value: "up".into(),
    });
    assert!(matches!(e, ExchangeError::Malformed(_)), "{e:?}");
    let e = ExchangeError::from(PaperError::InvalidPrice(dec!(-1)));
    assert!(matches!(e, ExchangeError::Rejected(_)), "{e:?}");
    let p = Paper::in_memory(params(), 0).unwrap();
    let e = ExchangeError::from(p.set_price(BTC, dec!(0)).unwrap_err());
    assert!(!e.is_retryable(), "{e:?}");
}

/// The ids of funding payments, fills and orders are the bots' keys of what they
/// recorded: after a reset deleted the newest rows, and after a restart, none is
/// given again (a bot would take the new one for the one it already has).
#[test]
fn a_reset_never_gives_a_deleted_id_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paper.db");
    let boundary = 1_704_067_200_000 + funding::FUNDING_EVERY_MS;
    let p = Paper::open(database(&path), params(), boundary - 1_000).unwrap();
    let a = p.account(1);
    let ids = |a: &PaperAccount| {
        let fill = a.executions(BTC, 0).unwrap()[0].exec_id.clone();
        let funding = a.funding(BTC, 0).unwrap()[0].id.clone();
        (
            fill.parse::<i64>().unwrap(),
            funding.parse::<i64>().unwrap(),
        )
    };
    a.place(&entry("e1")).unwrap();
    p.advance(boundary).unwrap();
    let (fill, paid) = ids(&a);
    let order = a.order(BTC, "e1").unwrap().unwrap().exchange_id;
    p.reset_account(1).unwrap();
    drop((a, p));

    let p = Paper::open(database(&path), params(), boundary + 1_000).unwrap();
    let a = p.account(1);
    a.place(&entry("e2")).unwrap();
    p.advance(boundary + funding::FUNDING_EVERY_MS).unwrap();
    let (new_fill, new_paid) = ids(&a);
    assert!(new_fill > fill, "fill {new_fill} after {fill}");
    assert!(new_paid > paid, "funding {new_paid} after {paid}");
    let new_order = a.order(BTC, "e2").unwrap().unwrap().exchange_id;
    assert!(
        new_order.parse::<i64>().unwrap() > order.parse::<i64>().unwrap(),
        "order {new_order} after {order}"
    );
}
