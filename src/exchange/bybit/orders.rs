//! Placing, finding, listing and cancelling Bybit orders, active and conditional
//! (docs/v5/order/create-order, open-order, order-list, cancel-order).

use serde::de::IgnoredAny;
use serde_json::{json, Value};

use super::api::Refused;
use super::types::{Created, RawOrder};
use super::{linear, pair, parse, Bybit};
use crate::exchange::rest::budget::Priority;
use crate::exchange::rest::{self, decimal};
use crate::exchange::{ExchangeError, NewOrder, Order, OrderKind, Side};

/// The `POST /v5/order/create` body. A `Stop` is a conditional market order
/// (create-order: "if `triggerPrice` is set, the order will be automatically
/// converted into a conditional order"): triggered by the mark price, reduce-only
/// and close-on-trigger (so it may cancel other orders to free margin), on the
/// bot's `positionIdx`. Its direction follows the position: a long's stop sells
/// when the mark falls to the trigger (`triggerDirection` 2), a short's buys when it
/// rises to it (1). We send the bot's quantity, not `qty: "0"` ("close all"): the
/// engine follows its own ledger size.
pub fn create_body(order: &NewOrder) -> Result<Value, ExchangeError> {
    let mut body = json!({
        "category": "linear",
        "symbol": pair(&order.symbol)?,
        "side": parse::side_name(order.side),
        "orderType": if order.kind == OrderKind::Limit { "Limit" } else { "Market" },
        "qty": decimal(order.qty),
        "positionIdx": parse::position_idx(order.position_side),
        "orderLinkId": order.client_id,
        "reduceOnly": order.reduce_only,
    });
    match order.kind {
        OrderKind::Market => {}
        OrderKind::Limit => {
            let p = order.price.ok_or_else(|| {
                ExchangeError::Rejected(format!("limit order {} has no price", order.client_id))
            })?;
            body["price"] = json!(decimal(p));
            body["timeInForce"] = json!("GTC");
        }
        OrderKind::Stop => {
            let t = order.trigger_price.ok_or_else(|| {
                ExchangeError::Rejected(format!("stop {} has no trigger price", order.client_id))
            })?;
            let direction = match order.position_side {
                Side::Long => 2,
                Side::Short => 1,
            };
            body["triggerPrice"] = json!(decimal(t));
            body["triggerDirection"] = json!(direction);
            body["triggerBy"] = json!("MarkPrice");
            body["reduceOnly"] = json!(true);
            body["closeOnTrigger"] = json!(true);
        }
    }
    Ok(body)
}

pub fn place(x: &Bybit, order: &NewOrder) -> Result<Order, ExchangeError> {
    let body = create_body(order)?;
    let placed = |exchange_id: String| {
        rest::read_back(order, exchange_id, || {
            find(x, &order.symbol, ("orderLinkId", &order.client_id))
        })
    };
    // A closing order or a stop protects the position: it goes first.
    let priority = Priority::of_order(order);
    match x
        .api
        .post::<Created>("placed order", "/v5/order/create", &body, priority)
    {
        Ok(c) => placed(c.order_id),
        // Our own earlier attempt of this very call got through (its answer was
        // lost): the order exists, read it.
        Err(Refused::Code {
            code: 110072,
            retried: true,
            ..
        }) => placed(String::new()),
        Err(Refused::Code { code: 110072, .. }) => {
            Err(ExchangeError::Duplicate(order.client_id.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Cancels by `orderLinkId` or `orderId` (`by`). 110001: the order does not exist
/// (any more); 110008: it is already filled or cancelled; 110010: already
/// cancelled. A take-profit that fills while it is being moved is not an error.
pub fn cancel(x: &Bybit, symbol: &str, by: (&'static str, &str)) -> Result<(), ExchangeError> {
    let mut body = json!({"category": "linear", "symbol": pair(symbol)?});
    body[by.0] = json!(by.1);
    match x
        .api
        .post::<IgnoredAny>("cancel", "/v5/order/cancel", &body, Priority::Protective)
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.code(), Some(110001 | 110008 | 110010)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One order by `orderLinkId` or `orderId` (`by`), in any state:
/// `/v5/order/realtime` knows open and recently closed ones (conditional ones
/// too), older ones are in `/v5/order/history`.
pub fn find(
    x: &Bybit,
    symbol: &str,
    by: (&'static str, &str),
) -> Result<Option<Order>, ExchangeError> {
    if by.1.is_empty() {
        return Ok(None);
    }
    let mut q = linear(symbol)?;
    q.push((by.0, by.1.to_string()));
    let mut found: Vec<RawOrder> = x.pages("order", "/v5/order/realtime", &q)?;
    if found.is_empty() {
        found = x.pages("order history", "/v5/order/history", &q)?;
    }
    found
        .first()
        .map(|raw| parse::order(raw, symbol))
        .transpose()
}

/// Every open order on `symbol`, active and conditional (`orderFilter` left out:
/// "all kinds of orders by default"; `openOnly=0`: New, PartiallyFilled and
/// Untriggered).
pub fn open(x: &Bybit, symbol: &str) -> Result<Vec<Order>, ExchangeError> {
    let mut q = linear(symbol)?;
    q.extend([("openOnly", "0".into()), ("limit", "50".into())]);
    let raw: Vec<RawOrder> = x.pages("open orders", "/v5/order/realtime", &q)?;
    let mut all = Vec::with_capacity(raw.len());
    for r in &raw {
        let o = parse::order(r, symbol)?;
        if o.status.is_open() {
            all.push(o);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::OrderSide;
    use crate::money::dec;

    fn stop(side: Side) -> NewOrder {
        NewOrder {
            client_id: "bz-7-3-sl1".into(),
            symbol: "BTC/USDT".into(),
            side: OrderSide::closing(side),
            kind: OrderKind::Stop,
            price: None,
            trigger_price: Some(dec!(60000.50)),
            qty: dec!(0.004),
            reduce_only: true,
            position_side: side,
        }
    }

    #[test]
    fn a_stop_is_a_conditional_reduce_only_market_order_on_the_mark() {
        let b = create_body(&stop(Side::Long)).unwrap();
        assert_eq!(
            b,
            json!({"category": "linear", "symbol": "BTCUSDT", "side": "Sell",
                "orderType": "Market", "qty": "0.004", "positionIdx": 1,
                "orderLinkId": "bz-7-3-sl1", "reduceOnly": true, "triggerPrice": "60000.5",
                "triggerDirection": 2, "triggerBy": "MarkPrice", "closeOnTrigger": true})
        );
        let b = create_body(&stop(Side::Short)).unwrap();
        assert_eq!((&b["side"], &b["positionIdx"]), (&json!("Buy"), &json!(2)));
        assert_eq!(b["triggerDirection"], 1);
        let mut bad = stop(Side::Long);
        bad.trigger_price = None;
        assert!(matches!(create_body(&bad), Err(ExchangeError::Rejected(_))));
    }
}
