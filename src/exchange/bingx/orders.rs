//! Placing, finding, listing and cancelling BingX orders (swap-trade API reference:
//! "Place Order", "Query Order details", "Query All Current Open Orders", "Cancel
//! Order", "Trade Fill History").

use super::api::Refused;
use super::errors::Class;
use super::types::{order_id, Placed, RawOrder};
use super::{parse, sym, types, Bingx};
use crate::exchange::rest::budget::Priority;
use crate::exchange::rest::{self, decimal};
use crate::exchange::{ExchangeError, NewOrder, Order, OrderKind};

const ORDER: &str = "/openApi/swap/v2/trade/order";

/// The parameters of a placement. Hedge mode: `positionSide` names the position
/// and `reduceOnly` is not accepted. A `Stop` is a `STOP_MARKET` on the mark price
/// (`workingType=MARK_PRICE`) with the bot's quantity; BingX keeps `clientOrderId`
/// for LIMIT and MARKET only, so the stop is known by its order id afterwards.
pub fn params(order: &NewOrder) -> Result<Vec<(&'static str, String)>, ExchangeError> {
    let mut q = sym(&order.symbol)?;
    q.extend([
        ("side", parse::side_name(order.side).to_string()),
        (
            "positionSide",
            parse::position_side(order.position_side).into(),
        ),
        ("quantity", decimal(order.qty)),
        ("clientOrderId", order.client_id.clone()),
    ]);
    match order.kind {
        OrderKind::Market => q.push(("type", "MARKET".into())),
        OrderKind::Limit => {
            let p = order.price.ok_or_else(|| {
                ExchangeError::Rejected(format!("limit order {} has no price", order.client_id))
            })?;
            q.extend([
                ("type", "LIMIT".to_string()),
                ("price", decimal(p)),
                ("timeInForce", "GTC".into()),
            ]);
        }
        OrderKind::Stop => {
            let t = order.trigger_price.ok_or_else(|| {
                ExchangeError::Rejected(format!("stop {} has no trigger price", order.client_id))
            })?;
            q.extend([
                ("type", "STOP_MARKET".to_string()),
                ("stopPrice", decimal(t)),
                ("workingType", "MARK_PRICE".into()),
            ]);
        }
    }
    Ok(q)
}

pub fn place(x: &Bingx, order: &NewOrder) -> Result<Order, ExchangeError> {
    if order.kind == OrderKind::Stop {
        return place_stop(x, order);
    }
    let q = params(order)?;
    let by_client = || find(x, &order.symbol, ("clientOrderId", &order.client_id));
    // A closing order protects the position: it goes first.
    let placed = x
        .api
        .signed_as(Priority::of_order(order), "POST", ORDER, &q)
        .and_then(|data| {
            types::unwrap::<Placed>("placed order", "order", &data).map_err(Refused::Failed)
        });
    match placed {
        Ok(p) => {
            let id = order_id("placed order", &p.text, &p.number)?;
            rest::read_back(order, id, by_client)
        }
        // An earlier attempt of this very call got through: read it back.
        Err(r @ Refused::Code { retried: true, .. }) if r.class() == Some(Class::Duplicate) => {
            rest::read_back(order, String::new(), by_client)
        }
        Err(r) if r.class() == Some(Class::Duplicate) => {
            Err(ExchangeError::Duplicate(order.client_id.clone()))
        }
        Err(r) => Err(r.into()),
    }
}

/// A stop is sent once: it carries no client id BingX keeps, so a repeat after a
/// lost answer would place a second stop. When the answer is lost (network, or a
/// 5xx whose outcome is unknown), a stop that matches it exactly among the open
/// ones is taken as this one; else the error goes back and the bot places it again
/// on its next step.
fn place_stop(x: &Bingx, order: &NewOrder) -> Result<Order, ExchangeError> {
    let q = params(order)?;
    let sent = x.api.now_ms();
    let placed = x
        .api
        .signed_once(Priority::Protective, "POST", ORDER, &q)
        .and_then(|data| {
            types::unwrap::<Placed>("placed order", "order", &data).map_err(Refused::Failed)
        });
    match placed {
        Ok(p) => {
            let id = order_id("placed order", &p.text, &p.number)?;
            rest::read_back(order, id.clone(), || {
                find(x, &order.symbol, ("orderId", &id))
            })
        }
        Err(Refused::Failed(e @ (ExchangeError::Network(_) | ExchangeError::Busy(_)))) => {
            match adopt(x, order, sent)? {
                Some(mut o) => {
                    o.client_id = order.client_id.clone();
                    Ok(o)
                }
                None => Err(e),
            }
        }
        Err(r) => Err(r.into()),
    }
}

/// An open stop placed at or after `sent` with exactly this order's side,
/// position, trigger and quantity.
fn adopt(x: &Bingx, order: &NewOrder, sent: i64) -> Result<Option<Order>, ExchangeError> {
    let found = open(x, &order.symbol)?.into_iter().find(|o| {
        o.kind == OrderKind::Stop
            && o.side == order.side
            && o.position_side == order.position_side
            && o.trigger_price == order.trigger_price
            && o.qty == order.qty
            && o.created_ms >= sent - 1000
    });
    Ok(found)
}

/// Cancels by `clientOrderId` or `orderId` (`by`); an order that no longer exists
/// (filled, cancelled) is not an error.
pub fn cancel(x: &Bingx, symbol: &str, by: (&'static str, &str)) -> Result<(), ExchangeError> {
    let mut q = sym(symbol)?;
    q.push((by.0, by.1.to_string()));
    match x.api.signed_as(Priority::Protective, "DELETE", ORDER, &q) {
        Ok(_) => Ok(()),
        Err(r) if r.class() == Some(Class::Gone) => Ok(()),
        Err(r) => Err(r.into()),
    }
}

/// One order by `clientOrderId` or `orderId` (`by`), in any state; `None` when
/// BingX does not know it (a stop asked for by client id is never found: BingX
/// kept none).
pub fn find(
    x: &Bingx,
    symbol: &str,
    by: (&'static str, &str),
) -> Result<Option<Order>, ExchangeError> {
    if by.1.is_empty() {
        return Ok(None);
    }
    let mut q = sym(symbol)?;
    q.push((by.0, by.1.to_string()));
    let raw: RawOrder = match x.call("order", "GET", ORDER, &q, "order") {
        Ok(o) => o,
        Err(r) if r.class() == Some(Class::Gone) => return Ok(None),
        Err(r) => return Err(r.into()),
    };
    parse::order(&raw, symbol).map(Some)
}

/// Every open order on `symbol`, stops included (no `type`: all of them).
pub fn open(x: &Bingx, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
    let raw: Vec<RawOrder> = x.call(
        "open orders",
        "GET",
        "/openApi/swap/v2/trade/openOrders",
        &sym(symbol)?,
        "orders",
    )?;
    let mut open = Vec::with_capacity(raw.len());
    for v in &raw {
        let o = parse::order(v, symbol)?;
        if o.status.is_open() {
            open.push(o);
        }
    }
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{OrderSide, Side};
    use crate::money::dec;

    #[test]
    fn a_stop_is_a_stop_market_on_the_mark_price() {
        let o = NewOrder {
            client_id: "bz-7-3-sl1".into(),
            symbol: "BTC/USDT".into(),
            side: OrderSide::Buy,
            kind: OrderKind::Stop,
            price: None,
            trigger_price: Some(dec!(70000.10)),
            qty: dec!(0.004),
            reduce_only: true,
            position_side: Side::Short,
        };
        let q = params(&o).unwrap();
        let get = |k: &str| q.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("type"), Some("STOP_MARKET"));
        assert_eq!(get("stopPrice"), Some("70000.1"));
        assert_eq!(get("workingType"), Some("MARK_PRICE"));
        assert_eq!(
            (get("side"), get("positionSide")),
            (Some("BUY"), Some("SHORT"))
        );
        assert_eq!(
            (get("quantity"), get("clientOrderId")),
            (Some("0.004"), Some("bz-7-3-sl1"))
        );
        assert_eq!((get("reduceOnly"), get("price")), (None, None));
    }
}
