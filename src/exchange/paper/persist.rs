//! SQLite persistence of the paper exchange: loading the book at startup (and after
//! a failed write), writing through what a call changed, and reading closed orders,
//! which are kept only here.

use std::collections::HashSet;

use crate::params;
use crate::store::sql::{Conn, OptionalExt, Row};
use rust_decimal::Decimal;

use super::book::{ix_side, Book, Dirty, OrderRec};
use super::live::Live;
use super::markets;
use super::walk::Walk;
use super::PaperError;
use super::{candles, fills, funding};
use crate::bots::ladder::Side;
use crate::exchange::{Order, OrderKind, OrderSide, OrderStatus};
use crate::money::sql::{self as money_sql, Sql};

const ORDER_COLUMNS: &str = "id, user_id, client_id, symbol, side, kind, price, qty, filled_qty,
    avg_fill_price, fee, reduce_only, position_side, status, created_ms, updated_ms, trigger_price";

/// What a reset of an account deletes (fills before the orders they refer to).
const RESET_TABLES: [&str; 5] = [
    "paper_fills",
    "paper_funding",
    "paper_orders",
    "paper_positions",
    "paper_leverage",
];

/// The first funding boundary to settle after this start: with no boundary
/// recorded yet (a new database, or one from before funding), none before now.
pub(super) fn init_funding(conn: &Conn, now_ms: i64) -> Result<(), PaperError> {
    conn.execute(
        "UPDATE paper_clock SET funded_ms = ?1 WHERE id = 1 AND funded_ms IS NULL",
        [funding::boundary_at_or_before(now_ms)],
    )?;
    Ok(())
}

/// Builds the book from the database: markets, accounts, leverage, positions and
/// the open orders (through the partial index, never the whole order history),
/// with `epoch_ms` from `init_epoch`. A pure read, in one read transaction (a
/// consistent snapshot): a reload after a failed write must not need the write
/// lock that another connection may still hold. `clock` is (tick_ms, clock_ms,
/// epoch_ms); with `live` prices the markets take their venue's listings.
pub(super) fn load(
    conn: &Conn,
    walk: Walk,
    (tick_ms, clock_ms, epoch_ms): (u64, i64, i64),
    live: Option<Live>,
    owned: Option<&HashSet<i64>>,
) -> Result<Book, PaperError> {
    // In a cluster only the accounts this instance drives are in memory.
    let keep = |uid: i64| owned.is_none_or(|o| o.contains(&uid));
    let snapshot = conn.unchecked_transaction()?;
    let mut book = Book::new(walk, tick_ms, clock_ms);
    book.epoch_ms = epoch_ms;
    book.live = live;
    load_markets(&snapshot, &mut book)?;
    // The clock of an account without its own (no row yet): the exchange's first.
    let funded = snapshot
        .query_row("SELECT funded_ms FROM paper_clock WHERE id = 1", (), |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or_else(|| book.new_account_funded_ms());
    let mut stmt = snapshot.prepare("SELECT user_id, balance, funded_ms FROM paper_accounts")?;
    let read = |r: &Row<'_>| {
        let own: Option<i64> = r.get(2)?;
        Ok((r.get::<_, i64>(0)?, money_sql::get(r, 1)?, own))
    };
    for row in stmt.query_map((), read)? {
        let (uid, balance, own) = row?;
        if keep(uid) {
            book.load_account(uid, balance, own.unwrap_or(funded));
        }
    }
    drop(stmt);
    load_leverage(&snapshot, &mut book, &keep, funded)?;
    load_positions(&snapshot, &mut book, &keep, funded)?;
    load_open_orders(&snapshot, &mut book, &keep)?;
    for mkt in 0..book.markets.len() {
        book.markets[mkt].candle = candles::load_last(&snapshot, &book.markets[mkt].symbol)?;
    }
    book.next_id = snapshot.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM paper_orders), 0),
                    COALESCE((SELECT last_order_id FROM paper_clock WHERE id = 1), 0)) + 1",
        [],
        |r| r.get(0),
    )?;
    Ok(book)
}

/// The persisted epoch, set to `now_ms` the first time: the one write of opening
/// the exchange (`load` itself only reads).
pub(super) fn init_epoch(conn: &Conn, now_ms: i64) -> Result<i64, PaperError> {
    conn.execute(
        "INSERT OR IGNORE INTO paper_clock (id, epoch_ms) VALUES (1, ?1)",
        [now_ms],
    )?;
    Ok(
        conn.query_row("SELECT epoch_ms FROM paper_clock WHERE id = 1", (), |r| {
            r.get(0)
        })?,
    )
}

fn load_markets(conn: &Conn, book: &mut Book) -> Result<(), PaperError> {
    let mut stmt = conn
        .prepare("SELECT symbol, price, step_no, updated_ms FROM paper_markets ORDER BY symbol")?;
    let mut rows = stmt.query(())?;
    while let Some(r) = rows.next()? {
        let symbol: String = r.get(0)?;
        // A market the venue has since delisted keeps trading (it may hold
        // positions) on paper's own listing.
        let listing = match book.listing_of(conn, &symbol) {
            Ok(listing) => listing,
            Err(_) => markets::listing(&symbol).ok_or_else(|| corrupt("market symbol", &symbol))?,
        };
        let step_no =
            u64::try_from(r.get::<_, i64>(2)?).map_err(|_| corrupt("step_no", &symbol))?;
        let price = money_sql::get(&r, 1)?;
        book.add_market(&symbol, &listing, price, step_no, r.get(3)?);
    }
    Ok(())
}

/// The market of a symbol that rows refer to; one missing from `paper_markets`
/// (a live market not quoted yet has no row) is listed afresh rather than refused.
fn market_of(conn: &Conn, book: &mut Book, symbol: &str) -> Result<usize, PaperError> {
    let mut unused = Dirty::default();
    if let Ok(mkt) = book.ensure_market(conn, symbol, &mut unused) {
        return Ok(mkt);
    }
    // Delisted by the live venue since: paper's own listing, unpriced until quoted.
    let listing = markets::listing(symbol).ok_or_else(|| corrupt("symbol", symbol))?;
    let price = if book.live.is_some() {
        Decimal::ZERO
    } else {
        listing.start_price
    };
    Ok(book.add_market(symbol, &listing, price, 0, book.clock_ms))
}

fn load_leverage(
    conn: &Conn,
    book: &mut Book,
    keep: &dyn Fn(i64) -> bool,
    funded: i64,
) -> Result<(), PaperError> {
    let mut stmt = conn.prepare("SELECT user_id, symbol, leverage FROM paper_leverage")?;
    let mut rows = stmt.query(())?;
    while let Some(r) = rows.next()? {
        let (uid, symbol): (i64, String) = (r.get(0)?, r.get(1)?);
        if !keep(uid) {
            continue;
        }
        let mkt = market_of(conn, book, &symbol)?;
        book.load_account(uid, super::book::START_BALANCE, funded)
            .leverage
            .insert(mkt, r.get(2)?);
    }
    Ok(())
}

fn load_positions(
    conn: &Conn,
    book: &mut Book,
    keep: &dyn Fn(i64) -> bool,
    funded: i64,
) -> Result<(), PaperError> {
    let mut stmt =
        conn.prepare("SELECT user_id, symbol, side, size, avg_entry FROM paper_positions")?;
    let mut rows = stmt.query(())?;
    while let Some(r) = rows.next()? {
        let (uid, symbol, side): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if !keep(uid) {
            continue;
        }
        let side = parse_side(&side)?;
        let mkt = market_of(conn, book, &symbol)?;
        let acct = book.load_account(uid, super::book::START_BALANCE, funded);
        let pos = &mut acct.positions.entry(mkt).or_default()[super::book::side_ix(side)];
        (pos.size, pos.avg) = (money_sql::get(&r, 3)?, money_sql::get(&r, 4)?);
        book.note_holder(uid, mkt);
    }
    Ok(())
}

fn load_open_orders(
    conn: &Conn,
    book: &mut Book,
    keep: &dyn Fn(i64) -> bool,
) -> Result<(), PaperError> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM paper_orders
         WHERE status IN ('open', 'partially_filled') ORDER BY id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(())?;
    while let Some(r) = rows.next()? {
        let (id, uid, updated_ms, order) = read_order(&r)?;
        if !keep(uid) {
            continue;
        }
        let mkt = market_of(conn, book, &order.symbol)?;
        book.insert_open(OrderRec {
            id,
            user_id: uid,
            mkt,
            updated_ms,
            order,
        });
    }
    Ok(())
}

/// Whether the account ever used `client_id` (open or not): the UNIQUE index makes
/// this one lookup.
pub(super) fn client_id_used(conn: &Conn, uid: i64, client_id: &str) -> Result<bool, PaperError> {
    let found = conn
        .prepare_cached("SELECT 1 FROM paper_orders WHERE user_id = ?1 AND client_id = ?2")?
        .query_row(params![uid, client_id], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

/// An order of the account by exchange id, as stored (used for closed orders).
pub(super) fn find_order_by_id(
    conn: &Conn,
    uid: i64,
    id: i64,
) -> Result<Option<Order>, PaperError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM paper_orders WHERE user_id = ?1 AND id = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![uid, id])?;
    match rows.next()? {
        Some(r) => Ok(Some(read_order(&r)?.3)),
        None => Ok(None),
    }
}

/// An order of the account by client id, as stored (used for closed orders).
pub(super) fn find_order(
    conn: &Conn,
    uid: i64,
    client_id: &str,
) -> Result<Option<Order>, PaperError> {
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM paper_orders WHERE user_id = ?1 AND client_id = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![uid, client_id])?;
    match rows.next()? {
        Some(r) => Ok(Some(read_order(&r)?.3)),
        None => Ok(None),
    }
}

/// (id, user id, updated_ms, order) of a row selected with `ORDER_COLUMNS`.
fn read_order(r: &Row<'_>) -> Result<(i64, i64, i64, Order), PaperError> {
    let id: i64 = r.get(0)?;
    let order = Order {
        client_id: r.get(2)?,
        exchange_id: id.to_string(),
        symbol: r.get(3)?,
        side: parse_order_side(&r.get::<_, String>(4)?)?,
        kind: parse_kind(&r.get::<_, String>(5)?)?,
        price: money_sql::get_opt(r, 6)?,
        trigger_price: money_sql::get_opt(r, 16)?,
        qty: money_sql::get(r, 7)?,
        filled_qty: money_sql::get(r, 8)?,
        avg_fill_price: money_sql::get(r, 9)?,
        fee: money_sql::get(r, 10)?,
        reduce_only: r.get(11)?,
        position_side: parse_side(&r.get::<_, String>(12)?)?,
        status: parse_status(&r.get::<_, String>(13)?)?,
        created_ms: r.get(14)?,
    };
    Ok((id, r.get(1)?, r.get(15)?, order))
}

/// Writes everything `dirty` names, in one immediate transaction: either the whole
/// call is durable or none of it is.
pub(super) fn write(conn: &mut Conn, book: &Book, dirty: &Dirty) -> Result<(), PaperError> {
    let tx = conn.transaction_immediate()?;
    // First: what follows writes the reset accounts' new state.
    if !dirty.resets.is_empty() {
        // The ids of the orders deleted below are never given again (`load`).
        tx.prepare_cached(
            "UPDATE paper_clock SET last_order_id = MAX(last_order_id, ?1) WHERE id = 1",
        )?
        .execute([book.next_id - 1])?;
    }
    for &uid in &dirty.resets {
        for table in RESET_TABLES {
            tx.execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), [uid])?;
        }
    }
    // An unpriced (live, not yet quoted) market has no row until its first quote.
    for &mkt in dirty.markets.iter().filter(|&&mkt| !book.unpriced(mkt)) {
        let m = &book.markets[mkt];
        let step_no = i64::try_from(m.step_no).map_err(|_| corrupt("step_no", &m.symbol))?;
        tx.prepare_cached(
            "INSERT INTO paper_markets (symbol, price, step_no, updated_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (symbol) DO UPDATE SET
                 price = excluded.price, step_no = excluded.step_no, updated_ms = excluded.updated_ms",
        )?
        .execute(params![m.symbol, Sql(m.price), step_no, m.updated_ms])?;
    }
    for &uid in &dirty.balances {
        let funded = book
            .accounts
            .get(&uid)
            .map_or_else(|| book.new_account_funded_ms(), |a| a.funded_ms);
        tx.prepare_cached(
            "INSERT INTO paper_accounts (user_id, balance, funded_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET
                 balance = excluded.balance, funded_ms = excluded.funded_ms",
        )?
        .execute(params![uid, Sql(book.balance(uid)), funded])?;
    }
    for &(uid, mkt) in &dirty.leverage {
        tx.prepare_cached(
            "INSERT INTO paper_leverage (user_id, symbol, leverage) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, symbol) DO UPDATE SET leverage = excluded.leverage",
        )?
        .execute(params![
            uid,
            book.markets[mkt].symbol,
            book.leverage(uid, mkt)
        ])?;
    }
    for &(uid, mkt, ix) in &dirty.positions {
        write_position(&tx, book, uid, mkt, ix_side(ix))?;
    }
    for rec in dirty.orders.values() {
        write_order(&tx, rec)?;
    }
    // After the orders: a fill refers to its order's row.
    for fill in &dirty.fills {
        fills::write(&tx, book, fill)?;
    }
    candles::write(&tx, book, dirty)?;
    funding::write(&tx, book, dirty)?;
    tx.commit()?;
    Ok(())
}

/// Upserts a position, or deletes its row when flat.
fn write_position(
    conn: &Conn,
    book: &Book,
    uid: i64,
    mkt: usize,
    side: Side,
) -> crate::store::SqlResult<()> {
    let pos = book.position(uid, mkt, side);
    let symbol = &book.markets[mkt].symbol;
    if pos.size > rust_decimal::Decimal::ZERO {
        conn.prepare_cached(
            "INSERT INTO paper_positions (user_id, symbol, side, size, avg_entry) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, symbol, side) DO UPDATE SET
                 size = excluded.size, avg_entry = excluded.avg_entry",
        )?
        .execute(params![
            uid,
            symbol,
            side_str(side),
            Sql(pos.size),
            Sql(pos.avg)
        ])?;
    } else {
        conn.prepare_cached(
            "DELETE FROM paper_positions WHERE user_id = ?1 AND symbol = ?2 AND side = ?3",
        )?
        .execute(params![uid, symbol, side_str(side)])?;
    }
    Ok(())
}

fn write_order(conn: &Conn, rec: &OrderRec) -> crate::store::SqlResult<()> {
    let o = &rec.order;
    conn.prepare_cached(&format!(
        "INSERT INTO paper_orders ({ORDER_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (id) DO UPDATE SET
             qty = excluded.qty, filled_qty = excluded.filled_qty,
             avg_fill_price = excluded.avg_fill_price, fee = excluded.fee,
             status = excluded.status, updated_ms = excluded.updated_ms"
    ))?
    .execute(params![
        rec.id,
        rec.user_id,
        o.client_id,
        o.symbol,
        order_side_str(o.side),
        kind_str(o.kind),
        money_sql::opt(o.price),
        Sql(o.qty),
        Sql(o.filled_qty),
        Sql(o.avg_fill_price),
        Sql(o.fee),
        o.reduce_only,
        side_str(o.position_side),
        status_str(o.status),
        o.created_ms,
        rec.updated_ms,
        money_sql::opt(o.trigger_price),
    ])?;
    Ok(())
}

fn corrupt(what: &'static str, value: &str) -> PaperError {
    PaperError::Corrupt {
        what,
        value: value.to_owned(),
    }
}

pub(super) fn side_str(side: Side) -> &'static str {
    match side {
        Side::Long => "long",
        Side::Short => "short",
    }
}

pub(super) fn parse_side(s: &str) -> Result<Side, PaperError> {
    match s {
        "long" => Ok(Side::Long),
        "short" => Ok(Side::Short),
        _ => Err(corrupt("position side", s)),
    }
}

pub(super) fn order_side_str(side: OrderSide) -> &'static str {
    match side {
        OrderSide::Buy => "buy",
        OrderSide::Sell => "sell",
    }
}

pub(super) fn parse_order_side(s: &str) -> Result<OrderSide, PaperError> {
    match s {
        "buy" => Ok(OrderSide::Buy),
        "sell" => Ok(OrderSide::Sell),
        _ => Err(corrupt("order side", s)),
    }
}

fn kind_str(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::Market => "market",
        OrderKind::Limit => "limit",
        OrderKind::Stop => "stop",
    }
}

fn parse_kind(s: &str) -> Result<OrderKind, PaperError> {
    match s {
        "market" => Ok(OrderKind::Market),
        "limit" => Ok(OrderKind::Limit),
        "stop" => Ok(OrderKind::Stop),
        _ => Err(corrupt("order kind", s)),
    }
}

fn status_str(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Open => "open",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Rejected => "rejected",
    }
}

fn parse_status(s: &str) -> Result<OrderStatus, PaperError> {
    match s {
        "open" => Ok(OrderStatus::Open),
        "partially_filled" => Ok(OrderStatus::PartiallyFilled),
        "filled" => Ok(OrderStatus::Filled),
        "cancelled" => Ok(OrderStatus::Cancelled),
        "rejected" => Ok(OrderStatus::Rejected),
        _ => Err(corrupt("order status", s)),
    }
}
