//! BingX perpetual-swap orders: "Place order" (LIMIT, MARKET and the STOP_MARKET
//! stop-loss), "Cancel Order", "Query Order details", "Current All Open Orders"
//! and the fills, as bingx-api.github.io/docs (USDT-M Perp Futures, Trades
//! Endpoints) describes them.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::fake_bingx::{refuse, reply, SYMBOL};
use super::fake_book::{dec, num, Book, Dir, FakeOrder, Origin, Trigger, TriggerBy};
use super::fake_http::{Request, Response};

/// A placement's parameters once checked.
struct Placement {
    buy: bool,
    dir: Dir,
    kind: &'static str,
    qty: Decimal,
    price: Option<Decimal>,
    trigger: Option<Trigger>,
    close_all: bool,
    client_id: String,
}

/// `POST /openApi/swap/v2/trade/order`.
pub fn create(b: &mut Book, req: &Request) -> Response {
    let p = match placement(b, req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.client_id.is_empty() && b.order(&p.client_id).is_some() {
        b.duplicates += 1;
        return reply(101481, "The clientOrderID has already been used", json!({}));
    }
    if !p.close_all && p.qty < rust_decimal::dec!(0.001) {
        return reply(
            101400,
            "the order quantity is below the minimum 0.001",
            json!({}),
        );
    }
    let mut o = FakeOrder::new(&p.client_id, p.buy, p.dir, p.qty);
    o.market = p.kind != "LIMIT";
    o.price = p.price.unwrap_or(b.price);
    o.trigger = p.trigger;
    o.close_all = p.close_all;
    if !o.opens() && b.position(p.dir).size.is_zero() {
        return reply(101205, "No position to close", json!({}));
    }
    if let Some(t) = p.trigger {
        // Place order: a SELL stop-loss must lie below the current price, a BUY one
        // above it (errors 110411 and 110412 of its error list).
        let now = b.watched(t.by);
        if !p.buy && t.price >= now {
            return reply(
                110411,
                "Stop Loss price should be lower than the current price",
                json!({}),
            );
        }
        if p.buy && t.price <= now {
            return reply(
                110412,
                "Stop Loss price should be greater than the current price",
                json!({}),
            );
        }
    }
    if o.opens() && b.used_margin() + b.margin(p.qty, o.price) > b.balance {
        return reply(101204, "Insufficient margin", json!({}));
    }
    let o = b.add(o);
    reply(0, "", json!({"order": order_json(b, &o)}))
}

/// The documented parameters: `side`, `positionSide` (LONG/SHORT in hedge mode,
/// where `reduceOnly` is not accepted), `type`, `quantity`, `price` (LIMIT, with
/// `timeInForce` GTC here), and for STOP_MARKET `stopPrice`, `workingType`
/// (MARK_PRICE by default, CONTRACT_PRICE: the last price, INDEX_PRICE: the
/// fake's mark) and `closePosition` ("true": close it all; not with `quantity`).
/// `clientOrderId` (1-40 characters, lower case as BingX stores it) is required
/// here for LIMIT and MARKET; the docs say it "only supports LIMIT/MARKET order
/// type", so on a STOP_MARKET it is ignored and the stop has none.
fn placement(b: &mut Book, req: &Request) -> Result<Placement, Response> {
    let p = |k| req.param(k).unwrap_or("");
    let (side, pos, cid) = (p("side"), p("positionSide"), p("clientOrderId"));
    let kind = match p("type") {
        "MARKET" => "MARKET",
        "LIMIT" => "LIMIT",
        "STOP_MARKET" => "STOP_MARKET",
        _ => {
            return Err(refuse(
                b,
                req,
                109400,
                "side or type invalid (the fake models LIMIT, MARKET and STOP_MARKET)",
            ))
        }
    };
    if !matches!(side, "BUY" | "SELL") {
        return Err(refuse(b, req, 109400, "side or type invalid"));
    }
    if !matches!(pos, "LONG" | "SHORT") || req.param("reduceOnly").is_some() {
        return Err(refuse(
            b,
            req,
            109400,
            "In the Hedge mode, the 'PositionSide' field can only be set to LONG or SHORT.",
        ));
    }
    let stop = kind == "STOP_MARKET";
    if !stop && (cid.is_empty() || cid.len() > 40 || cid != cid.to_lowercase()) {
        return Err(refuse(
            b,
            req,
            109400,
            "clientOrderId must be 1-40 characters",
        ));
    }
    let close_all = match req.param("closePosition") {
        None | Some("false") => false,
        Some("true") if stop => true,
        Some(_) => {
            return Err(refuse(
                b,
                req,
                109400,
                "closePosition: true or false, STOP_MARKET only",
            ))
        }
    };
    let qty = req.param("quantity").map(dec);
    let qty = match (qty, close_all) {
        (None, true) => Decimal::ZERO,
        (Some(Some(q)), false) if q > Decimal::ZERO => q,
        (Some(_), true) => {
            return Err(refuse(
                b,
                req,
                109400,
                "closePosition is not used with quantity",
            ))
        }
        _ => return Err(refuse(b, req, 109400, "quantity invalid")),
    };
    let price = req.param("price").and_then(dec);
    if kind == "LIMIT" && (price.is_none() || p("timeInForce") != "GTC") {
        return Err(refuse(b, req, 109400, "price or timeInForce invalid"));
    }
    let (buy, dir) = (
        side == "BUY",
        if pos == "LONG" { Dir::Long } else { Dir::Short },
    );
    let trigger = if stop {
        Some(stop_trigger(b, req, buy, dir)?)
    } else {
        None
    };
    let client_id = if stop { String::new() } else { cid.to_string() };
    Ok(Placement {
        buy,
        dir,
        kind,
        qty,
        price,
        trigger,
        close_all,
        client_id,
    })
}

/// A STOP_MARKET is a stop-loss: it closes (SELL on LONG, BUY on SHORT) and fires
/// when the watched price reaches `stopPrice` against the position (the old
/// swap v2 docs: "Buy: the mark price is higher than or equal to the trigger
/// price stopPrice; Sell: the mark price is lower than or equal to").
fn stop_trigger(b: &mut Book, req: &Request, buy: bool, dir: Dir) -> Result<Trigger, Response> {
    if buy == (dir == Dir::Long) {
        return Err(refuse(
            b,
            req,
            109400,
            "STOP_MARKET closes a position: SELL on LONG, BUY on SHORT",
        ));
    }
    let Some(price) = req
        .param("stopPrice")
        .and_then(dec)
        .filter(|x| *x > Decimal::ZERO)
    else {
        return Err(refuse(b, req, 109400, "stopPrice invalid"));
    };
    let by = match req.param("workingType") {
        None | Some("MARK_PRICE" | "INDEX_PRICE") => TriggerBy::Mark,
        Some("CONTRACT_PRICE") => TriggerBy::Last,
        Some(_) => return Err(refuse(b, req, 109400, "workingType invalid")),
    };
    Ok(Trigger {
        price,
        rise: buy,
        by,
    })
}

/// The order a request names by `orderId` (preferred) or `clientOrderId`.
fn named(b: &Book, req: &Request) -> Option<FakeOrder> {
    match req.param("orderId").and_then(|s| s.parse::<u64>().ok()) {
        Some(id) => b.order_by_id(id).cloned(),
        None => b.order(req.param("clientOrderId").unwrap_or("")).cloned(),
    }
}

/// `DELETE /openApi/swap/v2/trade/order`. A missing or finished order answers
/// 109421 "order not exist" (what BingX is seen to answer; the docs' list of this
/// endpoint names 109414 and 80018).
pub fn cancel(b: &mut Book, req: &Request) -> Response {
    match named(b, req) {
        Some(o) if b.cancel_id(o.id) => {
            let o = b.order_by_id(o.id).cloned().expect("cancelled order");
            reply(0, "", json!({"order": order_json(b, &o)}))
        }
        _ => reply(109421, "order not exist", json!({})),
    }
}

/// `GET /openApi/swap/v2/trade/order`.
pub fn query(b: &mut Book, req: &Request) -> Response {
    match named(b, req) {
        Some(o) => reply(0, "", json!({"order": order_json(b, &o)})),
        None => reply(109421, "order not exist", json!({})),
    }
}

/// `GET /openApi/swap/v2/trade/openOrders`, optionally narrowed by `type`.
pub fn open_orders(b: &mut Book, req: &Request) -> Response {
    let kind = req.param("type");
    let list: Vec<Value> = b
        .orders
        .iter()
        .filter(|o| o.is_open())
        .filter(|o| kind.is_none_or(|k| k == order_type(o)))
        .map(|o| order_json(b, o))
        .collect();
    reply(0, "", json!({"orders": list}))
}

/// `GET /openApi/swap/v2/trade/allFillOrders` ("Trade Fill History"):
/// `tradingUnit`, `startTs` and `endTs` required, the fills in that range (by the
/// exchange's clock), of one order when `orderId` is given; at most 7 days wide
/// (the range rule of the neighbouring history endpoints).
pub fn fills(b: &mut Book, req: &Request) -> Response {
    let (Some(unit), Some(start), Some(end)) = (
        req.param("tradingUnit"),
        req.param("startTs").and_then(|s| s.parse::<i64>().ok()),
        req.param("endTs").and_then(|s| s.parse::<i64>().ok()),
    ) else {
        return refuse(
            b,
            req,
            109400,
            "tradingUnit, startTs and endTs are required",
        );
    };
    if unit != "COIN" || end < start || end - start > 7 * 24 * 3600 * 1000 {
        return refuse(b, req, 109400, "bad tradingUnit or a range over 7 days");
    }
    let id = req.param("orderId");
    let list: Vec<Value> = b
        .fills
        .iter()
        .filter(|f| id.is_none_or(|id| f.order_id.to_string() == id))
        .filter(|f| start <= f.time_ms && f.time_ms <= end)
        .map(|f| {
            let buy = b.order_by_id(f.order_id).is_some_and(|o| o.buy);
            json!({"tradeId": f.id, "symbol": SYMBOL, "orderId": f.order_id,
                "side": if buy { "BUY" } else { "SELL" },
                "price": num(f.price), "qty": num(f.qty), "realizedPnl": num(f.realized),
                "fee": num(-f.fee), "time": f.time_ms})
        })
        .collect();
    reply(0, "", json!({"fill_orders": list}))
}

/// `GET /openApi/swap/v2/trade/forceOrders`: the liquidation orders (the fake
/// has no ADL) created in `startTime`..`endTime`, at most `limit` (50, max 100).
pub fn force_orders(b: &mut Book, req: &Request) -> Response {
    let time = |k: &str| req.param(k).map(|v| v.parse::<i64>().ok());
    let (start, end) = match (time("startTime"), time("endTime")) {
        (Some(None), _) | (_, Some(None)) => {
            return refuse(b, req, 109400, "startTime or endTime invalid")
        }
        (s, e) => (s.flatten(), e.flatten()),
    };
    if req
        .param("autoCloseType")
        .is_some_and(|t| t != "LIQUIDATION" && t != "ADL")
    {
        return refuse(b, req, 109400, "autoCloseType: LIQUIDATION or ADL");
    }
    let limit = match req.param("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return refuse(b, req, 109400, "limit invalid: at most 100"),
    };
    let adl_only = req.param("autoCloseType") == Some("ADL");
    let list: Vec<Value> = b
        .orders
        .iter()
        .filter(|o| o.origin == Origin::Liquidation && !adl_only)
        .filter(|o| {
            start.is_none_or(|s| o.created_ms >= s) && end.is_none_or(|e| o.created_ms <= e)
        })
        .take(limit)
        .map(|o| order_json(b, o))
        .collect();
    reply(0, "", json!({"orders": list}))
}

pub fn order_type(o: &FakeOrder) -> &'static str {
    match (o.trigger.is_some(), o.market) {
        (true, _) => "STOP_MARKET",
        (false, true) => "MARKET",
        (false, false) => "LIMIT",
    }
}

/// One order as BingX lists it; `orderId` a JSON number above 2^53 as BingX sends
/// it, `orderID` a string; `commission` negative for a fee paid; `profit` what its
/// fills realised.
pub fn order_json(b: &Book, o: &FakeOrder) -> Value {
    let status = match o.status {
        "open" | "untriggered" => "NEW",
        "partial" => "PARTIALLY_FILLED",
        "filled" => "FILLED",
        _ => "CANCELLED",
    };
    let profit: Decimal = b
        .fills
        .iter()
        .filter(|f| f.order_id == o.id)
        .map(|f| f.realized)
        .sum();
    let working = match o.trigger {
        Some(t) if t.by == TriggerBy::Last => "CONTRACT_PRICE",
        _ => "MARK_PRICE",
    };
    json!({"orderId": o.id, "orderID": o.id.to_string(), "symbol": SYMBOL,
        "side": if o.buy { "BUY" } else { "SELL" },
        "positionSide": if o.dir == Dir::Long { "LONG" } else { "SHORT" },
        "type": order_type(o), "origQty": num(o.qty), "executedQty": num(o.filled),
        "price": if o.market { "0".into() } else { num(o.price) },
        "stopPrice": o.trigger.map_or(String::new(), |t| num(t.price)),
        "workingType": working, "closePosition": o.close_all.to_string(),
        "avgPrice": num(o.avg), "cumQuote": num(o.filled * o.avg), "status": status,
        "time": o.created_ms, "updateTime": o.updated_ms, "clientOrderId": o.client_id,
        "commission": num(-o.fee), "profit": num(profit)})
}
