//! `GET /api/trades.csv`: the caller's closed cycles as CSV, with exact decimals,
//! and nobody else's.

mod common;

use common::bots::{db, user};
use common::Server;

/// A closed cycle of user `uid` (of their first bot) with `pnl` and `size`.
fn trade(s: &Server, uid: i64, cycle: i64, size: &str, pnl: &str) {
    db(s)
        .execute(
            "INSERT INTO trades (user_id, bot_id, symbol, side, size, avg_entry, exit_price, pnl,
                                 fees, cycle, opened_at, closed_at, close_reason, funding)
             VALUES (?1, (SELECT MIN(id) FROM user_bots WHERE user_id = ?1), 'BTC/USDT', 'long',
                     ?3, '60000.1', '60300.2', ?4, '0.0123', ?2, 1764763200, 1764766800,
                     'take_profit', '-0.01')",
            rusqlite::params![uid, cycle, size, pnl],
        )
        .unwrap();
}

#[test]
fn exports_the_callers_trades_with_exact_decimals() {
    let s = Server::start();
    let a = user(&s, "a@example.com", false);
    let b = user(&s, "b@example.com", false);
    trade(&s, a.id, 1, "0.009", "1.23456789");
    trade(&s, a.id, 2, "0.1", "-10.75");
    trade(&s, b.id, 1, "7", "999");

    let r = a.call(&s, "GET", "/api/trades.csv", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(r
        .header("content-disposition")
        .is_some_and(|d| d.contains("blitz-trades.csv")));
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,bot_id,symbol,side,size,avg_entry,exit_price,pnl,fees,funding,close_reason,cycle,opened_at,closed_at"
    );
    assert_eq!(lines.len(), 3, "the header and a's two trades only: {text}");
    let newest: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        newest[2..12],
        [
            "BTC/USDT",
            "long",
            "0.1",
            "60000.1",
            "60300.2",
            "-10.75",
            "0.0123",
            "-0.01",
            "take_profit",
            "2"
        ]
    );
    assert_eq!(newest[13], "2025-12-03T13:00:00Z");
    let oldest: Vec<&str> = lines[2].split(',').collect();
    assert_eq!((oldest[4], oldest[7]), ("0.009", "1.23456789"));
    assert!(!text.contains("999"), "b's trade is not a's: {text}");

    let only_b = b.call(&s, "GET", "/api/trades.csv", "").text();
    assert_eq!(only_b.lines().count(), 2, "{only_b}");
    let foreign = a.call(
        &s,
        "GET",
        &format!("/api/trades.csv?bot_id={}", bot_of(&s, b.id)),
        "",
    );
    assert_eq!(foreign.status, 404, "another user's bot");
    let anonymous = common::api::call(s.port, "GET", "/api/trades.csv", &[], "");
    assert_eq!(anonymous.status, 401);
}

fn bot_of(s: &Server, uid: i64) -> i64 {
    db(s)
        .query_row(
            "SELECT MIN(id) FROM user_bots WHERE user_id = ?1",
            [uid],
            |r| r.get(0),
        )
        .unwrap()
}
