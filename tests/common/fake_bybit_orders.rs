//! Bybit v5 orders: place (active and conditional), cancel, list and executions,
//! as docs/v5/order/create-order, cancel-order, open-order and execution describe
//! them (bybit-exchange.github.io/docs/v5/order/...).

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::fake_book::{dec, num, Book, Cancel, Dir, FakeOrder, Fill, Origin, Trigger, TriggerBy};
use super::fake_bybit::{ok, refuse, reply, SYMBOL};
use super::fake_bybit_ledger::window_of;
use super::fake_http::{Request, Response};
use super::fake_page::{limit, page};

const DAY_MS: i64 = 24 * 3600 * 1000;

fn step(x: Decimal, unit: Decimal) -> bool {
    (x % unit).is_zero()
}

const QTY_STEP: Decimal = rust_decimal::dec!(0.001);
const TICK: Decimal = rust_decimal::dec!(0.1);

fn flag(p: &Value, k: &str) -> Option<Option<bool>> {
    match p.get(k) {
        None => Some(None),
        Some(v) => v.as_bool().map(Some),
    }
}

/// `POST /v5/order/create`. A `triggerPrice` makes it a conditional order
/// (docs/v5/order/create-order: "if triggerPrice is set, the order will be
/// automatically converted into a conditional order").
pub fn create(b: &mut Book, req: &Request, p: &Value) -> Response {
    let link = p["orderLinkId"].as_str().unwrap_or("");
    let ok_link = !link.is_empty()
        && link.len() <= 36
        && link
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let side = p["side"].as_str().unwrap_or("");
    let kind = p["orderType"].as_str().unwrap_or("");
    let idx = p["positionIdx"].as_i64().unwrap_or(0);
    let qty = p["qty"].as_str().and_then(dec);
    let price = p["price"].as_str().and_then(dec);
    if !ok_link || !matches!(side, "Buy" | "Sell") || !matches!(kind, "Market" | "Limit") {
        return refuse(
            b,
            req,
            10001,
            "params error: orderLinkId, side or orderType",
        );
    }
    // Hedge mode takes positionIdx 1 (long) or 2 (short), one-way mode 0
    // (docs/v5/order/create-order); anything else is 10001.
    let idx_ok = if b.hedge {
        idx == 1 || idx == 2
    } else {
        idx == 0
    };
    if !idx_ok {
        return refuse(b, req, 10001, "position idx not match position mode");
    }
    let (Some(Some(reduce)), Some(close_on_trigger)) =
        (flag(p, "reduceOnly"), flag(p, "closeOnTrigger"))
    else {
        return refuse(b, req, 10001, "params error: reduceOnly or closeOnTrigger");
    };
    let close_on_trigger = close_on_trigger.unwrap_or(false);
    let trigger = match conditional(b, req, p, kind) {
        Ok(t) => t,
        Err(r) => return r,
    };
    // docs: qty "0" with reduceOnly and closeOnTrigger closes the whole position.
    let close_all = qty == Some(Decimal::ZERO) && reduce && close_on_trigger;
    let qty_ok = qty.is_some_and(|q| q > Decimal::ZERO && step(q, QTY_STEP));
    if !close_all && !qty_ok {
        return refuse(b, req, 10001, "params error: qty");
    }
    if kind == "Limit" && !price.is_some_and(|x| x > Decimal::ZERO && step(x, TICK)) {
        return refuse(b, req, 10001, "params error: price");
    }
    if b.order(link).is_some() {
        b.duplicates += 1;
        return reply(110072, "OrderLinkedID is duplicate", json!({}));
    }
    // One-way mode: a buy opens (or a reduce-only sell closes) the long side, a
    // sell opens (or a reduce-only buy closes) the short side; the fake does not
    // flip a position with one order.
    let dir = match idx {
        1 => Dir::Long,
        2 => Dir::Short,
        _ if (side == "Buy") != reduce => Dir::Long,
        _ => Dir::Short,
    };
    let mut o = FakeOrder::new(link, side == "Buy", dir, qty.unwrap_or_default());
    o.market = kind == "Market";
    o.price = price.unwrap_or(b.price);
    o.trigger = trigger;
    o.close_all = close_all;
    o.close_on_trigger = close_on_trigger;
    if reduce == o.opens() {
        return refuse(
            b,
            req,
            10001,
            "reduceOnly does not match side and positionIdx",
        );
    }
    if reduce && b.position(dir).size.is_zero() {
        return reply(110017, "orderQty will be truncated to zero", json!({}));
    }
    let margin = b.used_margin() + b.margin(o.qty, o.price);
    if !reduce && trigger.is_none() && margin > b.balance {
        return reply(110007, "Available balance is insufficient", json!({}));
    }
    let o = b.add(o);
    ok(json!({"orderId": o.id.to_string(), "orderLinkId": o.client_id}))
}

/// The conditional part of a placement, checked as create-order documents it:
/// `triggerDirection` 1 (rise) / 2 (fall), `triggerBy` LastPrice (default),
/// MarkPrice or IndexPrice (the fake's index is its mark), and the trigger on the
/// side of the current price its direction expects — else 110092/110093 (the error
/// table of docs/v5/error; Bybit has also been seen answering the same text with
/// 10001).
fn conditional(
    b: &mut Book,
    req: &Request,
    p: &Value,
    kind: &str,
) -> Result<Option<Trigger>, Response> {
    let Some(raw) = p.get("triggerPrice") else {
        return Ok(None);
    };
    let Some(price) = raw
        .as_str()
        .and_then(dec)
        .filter(|x| *x > Decimal::ZERO && step(*x, TICK))
    else {
        return Err(refuse(b, req, 10001, "params error: triggerPrice"));
    };
    let rise = match p["triggerDirection"].as_i64() {
        Some(1) => true,
        Some(2) => false,
        _ => {
            return Err(refuse(
                b,
                req,
                10001,
                "params error: triggerDirection must be 1 or 2",
            ))
        }
    };
    let (by, by_name) = match p.get("triggerBy").map(|v| v.as_str()) {
        None | Some(Some("LastPrice")) => (TriggerBy::Last, "LastPrice"),
        Some(Some("MarkPrice")) => (TriggerBy::Mark, "MarkPrice"),
        Some(Some("IndexPrice")) => (TriggerBy::Mark, "IndexPrice"),
        _ => return Err(refuse(b, req, 10001, "params error: triggerBy")),
    };
    if kind != "Market" {
        return Err(refuse(
            b,
            req,
            10001,
            "the fake models conditional Market orders only",
        ));
    }
    let now = b.watched(by);
    if rise && price <= now {
        let msg = format!(
            "expect Rising, but trigger_price[{}] <= current[{}]??{by_name}",
            num(price),
            num(now)
        );
        return Err(reply(110092, &msg, json!({})));
    }
    if !rise && price >= now {
        let msg = format!(
            "expect Falling, but trigger_price[{}] >= current[{}]??{by_name}",
            num(price),
            num(now)
        );
        return Err(reply(110093, &msg, json!({})));
    }
    Ok(Some(Trigger { price, rise, by }))
}

/// `POST /v5/order/cancel` by `orderId` or `orderLinkId` (docs/v5/order/cancel-order).
pub fn cancel(b: &mut Book, req: &Request, p: &Value) -> Response {
    let by_id = p["orderId"].as_str().and_then(|s| s.parse::<u64>().ok());
    let link = p["orderLinkId"].as_str();
    let found = match (by_id, link) {
        (Some(id), _) => b.order_by_id(id).cloned(),
        (None, Some(l)) => b.order(l).cloned(),
        (None, None) => return refuse(b, req, 10001, "params error: orderId or orderLinkId"),
    };
    match found {
        Some(o) if b.cancel_id(o.id) => {
            ok(json!({"orderId": o.id.to_string(), "orderLinkId": o.client_id}))
        }
        _ => reply(110001, "Order does not exist", json!({})),
    }
}

/// `GET /v5/order/realtime` (docs/v5/order/open-order): by `orderId` or
/// `orderLinkId` in any state; else open orders (`openOnly=0`, the default:
/// New, PartiallyFilled and Untriggered) or recent closed ones (`openOnly=1`),
/// narrowed by `orderFilter` (`Order`: active orders, `StopOrder`: conditional
/// orders, all kinds when absent), newest first, `limit` [1, 50] (20) a page.
pub fn realtime(b: &mut Book, req: &Request) -> Response {
    let open = match req.param("openOnly").unwrap_or("0") {
        "0" => true,
        "1" => false,
        _ => return refuse(b, req, 10001, "params error: openOnly"),
    };
    let keep: fn(&FakeOrder) -> bool = match req.param("orderFilter") {
        None => |_| true,
        Some("Order") => |o| !o.is_conditional(),
        Some("StopOrder") => |o| o.is_conditional(),
        // Spot-only kinds: no linear order is one.
        Some("tpslOrder" | "OcoOrder" | "BidirectionalTpslOrder") => |_| false,
        Some(_) => return refuse(b, req, 10001, "params error: orderFilter"),
    };
    let Some(n) = limit(req.param("limit"), 20, 50) else {
        return refuse(b, req, 10001, "params error: limit");
    };
    let by_id = req.param("orderId").and_then(|s| s.parse::<u64>().ok());
    let list: Vec<&FakeOrder> = match (by_id, req.param("orderLinkId")) {
        (Some(id), _) => b.order_by_id(id).into_iter().collect(),
        (None, Some(link)) => b.order(link).into_iter().collect(),
        (None, None) => b.orders.iter().filter(|o| o.is_open() == open).collect(),
    };
    let hedge = b.hedge;
    let all: Vec<Value> = list
        .into_iter()
        .rev()
        .filter(|o| keep(o))
        .map(|o| {
            let mut v = order_json(o);
            if !hedge {
                v["positionIdx"] = json!(0);
            }
            v
        })
        .collect();
    let Some((list, next)) = page(&all, n, req.param("cursor")) else {
        return refuse(b, req, 10001, "params error: cursor");
    };
    ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
}

fn status(o: &FakeOrder) -> &'static str {
    match o.status {
        "untriggered" => "Untriggered",
        "open" => "New",
        "partial" => "PartiallyFilled",
        "filled" => "Filled",
        "deactivated" => "Deactivated",
        _ => "Cancelled",
    }
}

/// docs/v5/enum `cancelType` ("UNKNOWN" while not cancelled, as the response
/// example of open-order shows).
fn cancel_type(o: &FakeOrder) -> &'static str {
    match o.cancel {
        Cancel::None | Cancel::Margin => "UNKNOWN",
        Cancel::User => "CancelByUser",
        Cancel::ReduceOnly => "CancelByReduceOnly",
        Cancel::Liquidation => "CancelAllBeforeLiq",
    }
}

/// docs/v5/enum `createType`.
fn create_type(o: &FakeOrder) -> &'static str {
    match o.origin {
        Origin::Api => "CreateByUser",
        Origin::Site => "CreateByClosing",
        Origin::Liquidation => "CreateByTakeOver_PassThrough",
    }
}

/// One order as the open-order response lists it.
pub fn order_json(o: &FakeOrder) -> Value {
    let t = o.trigger;
    let leaves = if o.is_open() {
        o.qty - o.filled
    } else {
        Decimal::ZERO
    };
    json!({"orderId": o.id.to_string(), "orderLinkId": o.client_id, "symbol": SYMBOL,
        "price": if o.market { "0".to_string() } else { num(o.price) },
        "qty": num(o.qty), "side": if o.buy { "Buy" } else { "Sell" },
        "positionIdx": if o.dir == Dir::Long { 1 } else { 2 }, "orderStatus": status(o),
        "createType": create_type(o), "cancelType": cancel_type(o), "rejectReason": "EC_NoError",
        "avgPrice": if o.filled.is_zero() { String::new() } else { num(o.avg) },
        "leavesQty": num(leaves), "leavesValue": num(leaves * o.price),
        "cumExecQty": num(o.filled), "cumExecValue": num(o.filled * o.avg),
        "cumExecFee": num(o.fee), "cumFeeDetail": {"USDT": num(o.fee)},
        "orderType": if o.market { "Market" } else { "Limit" },
        "timeInForce": if o.market { "IOC" } else { "GTC" },
        "stopOrderType": if t.is_some() { "Stop" } else { "UNKNOWN" },
        "triggerPrice": t.map_or("0".to_string(), |t| num(t.price)),
        "triggerDirection": t.map_or(0, |t| if t.rise { 1 } else { 2 }),
        "triggerBy": t.map_or("UNKNOWN", |t| if t.by == TriggerBy::Mark { "MarkPrice" } else { "LastPrice" }),
        "lastPriceOnCreated": num(o.last_on_created),
        "reduceOnly": !o.opens(), "closeOnTrigger": o.close_on_trigger,
        "smpType": "None", "placeType": "",
        "createdTime": o.created_ms.to_string(), "updatedTime": o.updated_ms.to_string()})
}

/// `GET /v5/execution/list` (docs/v5/order/execution) by `orderId` or
/// `orderLinkId` (which take precedence over everything else), else the symbol's
/// executions in the `startTime`/`endTime` window (7 days back by default, at most
/// 7 days wide); newest first, `limit` [1, 100] (50) a page with a cursor.
pub fn executions(b: &mut Book, req: &Request) -> Response {
    let by_id = req.param("orderId");
    let link = req.param("orderLinkId");
    let window = match (by_id, link) {
        (None, None) => {
            let w = window_of(
                req.param("startTime"),
                req.param("endTime"),
                b.server_ms(),
                7 * DAY_MS,
            );
            match w {
                Ok(w) => Some(w),
                Err(msg) => return refuse(b, req, 10001, &msg),
            }
        }
        _ => None,
    };
    let Some(n) = limit(req.param("limit"), 50, 100) else {
        return refuse(b, req, 10001, "params error: limit");
    };
    let all: Vec<Value> = b
        .fills
        .iter()
        .rev()
        .filter(|f| by_id.is_none_or(|id| f.order_id.to_string() == id))
        .filter(|f| link.is_none_or(|l| f.client_id == l))
        .filter(|f| window.is_none_or(|(s, e)| s <= f.time_ms && f.time_ms <= e))
        .map(|f| execution_json(b, f))
        .collect();
    let Some((list, next)) = page(&all, n, req.param("cursor")) else {
        return refuse(b, req, 10001, "params error: cursor");
    };
    ok(json!({"category": "linear", "list": list, "nextPageCursor": next}))
}

fn execution_json(b: &Book, f: &Fill) -> Value {
    let o = b.order_by_id(f.order_id);
    let liq = o.is_some_and(|o| o.origin == Origin::Liquidation);
    json!({"symbol": SYMBOL, "orderId": f.order_id.to_string(),
        "orderLinkId": f.client_id, "execId": f.id.to_string(),
        "side": if o.is_some_and(|o| o.buy) { "Buy" } else { "Sell" },
        "orderType": if o.is_some_and(|o| o.market) { "Market" } else { "Limit" },
        "stopOrderType": if o.is_some_and(|o| o.is_conditional()) { "Stop" } else { "UNKNOWN" },
        "execType": if liq { "BustTrade" } else { "Trade" },
        "execPrice": num(f.price), "execQty": num(f.qty),
        "execValue": num(f.price * f.qty), "execFee": num(f.fee),
        "feeCurrency": "USDT",
        "closedSize": if o.is_some_and(|o| o.opens()) { "0".to_string() } else { num(f.qty) },
        "execTime": f.time_ms.to_string()})
}
