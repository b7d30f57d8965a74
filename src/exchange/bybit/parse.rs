//! Bybit v5 answers → the exchange trait's types.
//!
//! Order fields: <https://bybit-exchange.github.io/docs/v5/order/open-order>;
//! statuses: <https://bybit-exchange.github.io/docs/v5/enum#orderstatus>;
//! positions: <https://bybit-exchange.github.io/docs/v5/position>.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::exchange::rest::{int, int_field, num, num_or_zero, text};
use crate::exchange::{ExchangeError, Order, OrderKind, OrderSide, OrderStatus, Position, Side};

pub fn side_name(side: OrderSide) -> &'static str {
    match side {
        OrderSide::Buy => "Buy",
        OrderSide::Sell => "Sell",
    }
}

/// Hedge mode: `positionIdx` 1 is the long (Buy side) position, 2 the short.
pub fn position_idx(side: Side) -> i64 {
    match side {
        Side::Long => 1,
        Side::Short => 2,
    }
}

fn status(s: &str) -> OrderStatus {
    match s {
        "PartiallyFilled" => OrderStatus::PartiallyFilled,
        "Filled" => OrderStatus::Filled,
        "Rejected" => OrderStatus::Rejected,
        "Cancelled" | "PartiallyFilledCanceled" | "Deactivated" => OrderStatus::Cancelled,
        // New, Untriggered, Triggered: resting (or about to).
        _ => OrderStatus::Open,
    }
}

/// One entry of `/v5/order/realtime` or `/v5/order/history`; `symbol` is ours
/// (`BTC/USDT`). `fee` is filled in from the executions by the caller. A missing
/// or garbled quantity, price or time is an error, never a 0.
pub fn order(v: &Value, symbol: &str) -> Result<Order, ExchangeError> {
    let side = if text(&v["side"]) == "Sell" {
        OrderSide::Sell
    } else {
        OrderSide::Buy
    };
    let kind = if text(&v["orderType"]) == "Market" {
        OrderKind::Market
    } else {
        OrderKind::Limit
    };
    let reduce_only = v["reduceOnly"].as_bool().unwrap_or(false);
    let position_side = match int(&v["positionIdx"]) {
        Some(1) => Side::Long,
        Some(2) => Side::Short,
        // One-way mode (0): the side that the order opens or reduces.
        _ => match (side, reduce_only) {
            (OrderSide::Buy, false) | (OrderSide::Sell, true) => Side::Long,
            _ => Side::Short,
        },
    };
    // A market order's price is "0" (or empty): it has none.
    let price = num_or_zero(v, "price")?;
    Ok(Order {
        client_id: text(&v["orderLinkId"]),
        exchange_id: text(&v["orderId"]),
        symbol: symbol.to_string(),
        side,
        kind,
        price: (kind == OrderKind::Limit && price > Decimal::ZERO).then_some(price),
        trigger_price: None,
        qty: num(v, "qty")?,
        filled_qty: num_or_zero(v, "cumExecQty")?,
        // Empty until something fills.
        avg_fill_price: num_or_zero(v, "avgPrice")?,
        fee: Decimal::ZERO,
        reduce_only,
        position_side,
        status: status(&text(&v["orderStatus"])),
        created_ms: int_field(v, "createdTime")?,
    })
}

/// The hedge-mode position of `side` in a `/v5/position/list` answer (flat if
/// absent).
pub fn position(list: &Value, side: Side) -> Result<Position, ExchangeError> {
    let idx = position_idx(side);
    let found = list
        .as_array()
        .and_then(|l| l.iter().find(|p| int(&p["positionIdx"]) == Some(idx)));
    Ok(match found {
        Some(p) => Position {
            side,
            size: num(p, "size")?,
            // A flat position may report an empty average and mark.
            avg_entry: num_or_zero(p, "avgPrice")?,
            mark_price: num_or_zero(p, "markPrice")?,
        },
        None => Position {
            side,
            size: Decimal::ZERO,
            avg_entry: Decimal::ZERO,
            mark_price: Decimal::ZERO,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;
    use serde_json::json;

    #[test]
    fn parses_a_documented_open_order() {
        let v = json!({"orderId": "fd4300ae", "orderLinkId": "bz-1-1-l1", "symbol": "ETHUSDT",
            "price": "1600.00", "qty": "0.10", "side": "Buy", "positionIdx": 1,
            "orderStatus": "New", "avgPrice": "", "cumExecQty": "0", "orderType": "Limit",
            "reduceOnly": false, "createdTime": "1684738540559"});
        let o = order(&v, "ETH/USDT").unwrap();
        assert_eq!(o.price, Some(dec!(1600)));
        assert_eq!(
            (o.qty, o.filled_qty, o.avg_fill_price),
            (dec!(0.1), Decimal::ZERO, Decimal::ZERO)
        );
        assert_eq!((o.status, o.position_side), (OrderStatus::Open, Side::Long));
        assert_eq!(o.created_ms, 1684738540559);
        let mut garbled = v.clone();
        garbled["qty"] = json!("0.1O");
        assert!(order(&garbled, "ETH/USDT").is_err());
        let mut missing = v;
        missing.as_object_mut().unwrap().remove("createdTime");
        assert!(order(&missing, "ETH/USDT").is_err());
    }

    #[test]
    fn picks_the_hedge_mode_side() {
        let l = json!([{"positionIdx": 1, "size": "0.5", "avgPrice": "100", "markPrice": "101"},
                       {"positionIdx": 2, "size": "0", "avgPrice": "0", "markPrice": "101"}]);
        assert_eq!(position(&l, Side::Long).unwrap().size, dec!(0.5));
        assert_eq!(position(&l, Side::Short).unwrap().size, Decimal::ZERO);
        assert!(position(&json!([{"positionIdx": 1, "size": ""}]), Side::Long).is_err());
    }
}
