//! A fake exchange's trading state as JSON, to keep it in a fixture and bring it
//! back in another test run: the account (price, balance, leverage, positions), every
//! order and fill with its exchange ids, funding, the id counter and the placements
//! accepted so far. What only one run cares about (injected errors, refused and seen
//! requests) is not kept; `snapshot` refuses a book that still holds any of it.
//!
//! The book's clock is kept too: a restored book reads the time at which it was
//! taken, plus the time since the restore. So its orders, fills and the server time
//! it answers stay as close together as when the fixture was made, however old the
//! fixture is (the history windows of the exchanges and the bot's own record of
//! when its cycle opened agree with them).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::fake_book::{num, Book, Cancel, Dir, FakeOrder, Fill, Origin, Pos, Trigger, TriggerBy};
use super::fake_events::Funding;
use super::fake_http::now_ms;

/// The book as JSON. Panics if the run left anything a snapshot must not hide: a
/// refused request, a duplicate placement or an error still waiting to be injected.
pub fn snapshot(b: &Book) -> Value {
    assert!(b.refused.is_empty(), "refused requests: {:?}", b.refused);
    assert_eq!(b.duplicates, 0, "duplicate placements");
    assert!(
        b.inject.is_empty() && b.raw_replies.is_empty() && b.http_replies.is_empty(),
        "injected errors left over"
    );
    assert!(b.lose_reply.is_none() && b.rate_limit_next == 0);
    json!({
        "api_key": b.api_key,
        "secret": b.secret,
        "clock_ms": b.server_ms(),
        "price": num(b.price),
        "pinned_mark": b.pinned_mark.map(num),
        "balance": num(b.balance),
        "leverage": b.leverage,
        "sell_leverage": b.sell_leverage,
        "margin_mode": b.margin_mode,
        "leverage_sides": b.leverage_sides,
        "long": pos_json(b.long),
        "short": pos_json(b.short),
        "next_id": b.next_id,
        "accepted": b.accepted,
        "orders": b.orders.iter().map(order_json).collect::<Vec<_>>(),
        "fills": b.fills.iter().map(fill_json).collect::<Vec<_>>(),
        "funding": b.funding.iter().map(funding_json).collect::<Vec<_>>(),
    })
}

/// Puts a snapshot's state into `b` (a fresh book of a started fake), its clock
/// going on from the moment the snapshot was taken.
pub fn restore(b: &mut Book, s: &Value) {
    b.api_key = text(s, "api_key");
    b.secret = text(s, "secret");
    b.skew_ms = int(s, "clock_ms") - now_ms();
    b.price = decimal(s, "price");
    b.pinned_mark = s["pinned_mark"].as_str().map(parse_decimal);
    b.balance = decimal(s, "balance");
    b.leverage = int(s, "leverage") as u32;
    b.sell_leverage = int(s, "sell_leverage") as u32;
    b.margin_mode = text(s, "margin_mode");
    b.leverage_sides = strings(s, "leverage_sides");
    b.long = pos(&s["long"]);
    b.short = pos(&s["short"]);
    b.next_id = s["next_id"].as_u64().expect("next_id");
    b.accepted = strings(s, "accepted");
    b.orders = list(s, "orders").iter().map(order).collect();
    b.fills = list(s, "fills").iter().map(fill).collect();
    b.funding = list(s, "funding").iter().map(funding).collect();
}

fn pos_json(p: Pos) -> Value {
    json!({"size": num(p.size), "avg": num(p.avg)})
}

fn pos(v: &Value) -> Pos {
    Pos {
        size: decimal(v, "size"),
        avg: decimal(v, "avg"),
    }
}

fn order_json(o: &FakeOrder) -> Value {
    json!({
        "id": o.id, "client_id": o.client_id, "buy": o.buy, "market": o.market,
        "price": num(o.price), "qty": num(o.qty), "filled": num(o.filled),
        "avg": num(o.avg), "fee": num(o.fee), "dir": dir_name(o.dir), "status": o.status,
        "created_ms": o.created_ms, "updated_ms": o.updated_ms,
        "trigger": o.trigger.map(|t| json!({"price": num(t.price), "rise": t.rise,
            "by": match t.by { TriggerBy::Mark => "mark", TriggerBy::Last => "last" }})),
        "close_all": o.close_all, "origin": origin_name(o.origin),
        "cancel": cancel_name(o.cancel), "close_on_trigger": o.close_on_trigger,
        "last_on_created": num(o.last_on_created),
    })
}

fn order(v: &Value) -> FakeOrder {
    let trigger = match &v["trigger"] {
        Value::Null => None,
        t => Some(Trigger {
            price: decimal(t, "price"),
            rise: flag(t, "rise"),
            by: match text(t, "by").as_str() {
                "mark" => TriggerBy::Mark,
                "last" => TriggerBy::Last,
                other => panic!("trigger by {other:?}"),
            },
        }),
    };
    FakeOrder {
        id: v["id"].as_u64().expect("order id"),
        client_id: text(v, "client_id"),
        buy: flag(v, "buy"),
        market: flag(v, "market"),
        price: decimal(v, "price"),
        qty: decimal(v, "qty"),
        filled: decimal(v, "filled"),
        avg: decimal(v, "avg"),
        fee: decimal(v, "fee"),
        dir: dir(&text(v, "dir")),
        status: status(&text(v, "status")),
        created_ms: int(v, "created_ms"),
        updated_ms: int(v, "updated_ms"),
        trigger,
        close_all: flag(v, "close_all"),
        origin: origin(&text(v, "origin")),
        cancel: cancel(&text(v, "cancel")),
        close_on_trigger: flag(v, "close_on_trigger"),
        last_on_created: decimal(v, "last_on_created"),
    }
}

fn fill_json(f: &Fill) -> Value {
    json!({"id": f.id, "order_id": f.order_id, "client_id": f.client_id,
        "price": num(f.price), "qty": num(f.qty), "fee": num(f.fee),
        "realized": num(f.realized), "time_ms": f.time_ms})
}

fn fill(v: &Value) -> Fill {
    Fill {
        id: v["id"].as_u64().expect("fill id"),
        order_id: v["order_id"].as_u64().expect("fill order_id"),
        client_id: text(v, "client_id"),
        price: decimal(v, "price"),
        qty: decimal(v, "qty"),
        fee: decimal(v, "fee"),
        realized: decimal(v, "realized"),
        time_ms: int(v, "time_ms"),
    }
}

fn funding_json(f: &Funding) -> Value {
    json!({"id": f.id, "dir": dir_name(f.dir), "amount": num(f.amount),
        "time_ms": f.time_ms, "size": num(f.size), "mark": num(f.mark),
        "balance_after": num(f.balance_after)})
}

fn funding(v: &Value) -> Funding {
    Funding {
        id: v["id"].as_u64().expect("funding id"),
        dir: dir(&text(v, "dir")),
        amount: decimal(v, "amount"),
        time_ms: int(v, "time_ms"),
        size: decimal(v, "size"),
        mark: decimal(v, "mark"),
        balance_after: decimal(v, "balance_after"),
    }
}

fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::Long => "long",
        Dir::Short => "short",
    }
}

fn dir(s: &str) -> Dir {
    match s {
        "long" => Dir::Long,
        "short" => Dir::Short,
        other => panic!("dir {other:?}"),
    }
}

/// The book's order statuses are static strings: map a stored one back to its own.
fn status(s: &str) -> &'static str {
    const ALL: [&str; 6] = [
        "untriggered",
        "open",
        "partial",
        "filled",
        "cancelled",
        "deactivated",
    ];
    ALL.into_iter()
        .find(|k| *k == s)
        .unwrap_or_else(|| panic!("order status {s:?}"))
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Api => "api",
        Origin::Site => "site",
        Origin::Liquidation => "liquidation",
    }
}

fn origin(s: &str) -> Origin {
    match s {
        "api" => Origin::Api,
        "site" => Origin::Site,
        "liquidation" => Origin::Liquidation,
        other => panic!("origin {other:?}"),
    }
}

fn cancel_name(c: Cancel) -> &'static str {
    match c {
        Cancel::None => "none",
        Cancel::User => "user",
        Cancel::ReduceOnly => "reduce_only",
        Cancel::Margin => "margin",
        Cancel::Liquidation => "liquidation",
    }
}

fn cancel(s: &str) -> Cancel {
    match s {
        "none" => Cancel::None,
        "user" => Cancel::User,
        "reduce_only" => Cancel::ReduceOnly,
        "margin" => Cancel::Margin,
        "liquidation" => Cancel::Liquidation,
        other => panic!("cancel {other:?}"),
    }
}

fn text(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k}: not a string in {v}"))
        .to_string()
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64()
        .unwrap_or_else(|| panic!("{k}: not an integer in {v}"))
}

fn flag(v: &Value, k: &str) -> bool {
    v[k].as_bool()
        .unwrap_or_else(|| panic!("{k}: not a boolean in {v}"))
}

fn parse_decimal(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn decimal(v: &Value, k: &str) -> Decimal {
    parse_decimal(&text(v, k))
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    list(v, k)
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn list<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("{k}: not an array"))
}
