//! BingX swap answers → the exchange trait's types. Order objects carry `orderId`,
//! `clientOrderId`, `side`, `positionSide`, `type`, `origQty`, `executedQty`,
//! `price`, `avgPrice`, `status` and `time` (swap-trade API reference, "Query
//! Single Open Order Status").

use rust_decimal::Decimal;
use serde_json::Value;

use crate::exchange::rest::{int_field, num, num_opt, num_or_zero, text};
use crate::exchange::{ExchangeError, Order, OrderKind, OrderSide, OrderStatus, Position, Side};

pub fn side_name(side: OrderSide) -> &'static str {
    match side {
        OrderSide::Buy => "BUY",
        OrderSide::Sell => "SELL",
    }
}

pub fn position_side(side: Side) -> &'static str {
    match side {
        Side::Long => "LONG",
        Side::Short => "SHORT",
    }
}

fn status(s: &str) -> OrderStatus {
    match s {
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "FILLED" => OrderStatus::Filled,
        "CANCELED" | "CANCELLED" | "EXPIRED" => OrderStatus::Cancelled,
        "REJECTED" | "FAILED" => OrderStatus::Rejected,
        _ => OrderStatus::Open,
    }
}

/// Some answers wrap their payload (`{"orders": [...]}`, `{"order": {...}}`),
/// others return it bare: accept both.
pub fn unwrap<'a>(data: &'a Value, key: &str) -> &'a Value {
    match data.get(key) {
        Some(inner) if !inner.is_null() => inner,
        _ => data,
    }
}

/// One order object; `symbol` is ours (`BTC/USDT`). Fees are filled in by the
/// caller from the fills. A missing or garbled quantity, price or time is an
/// error, never a 0.
pub fn order(v: &Value, symbol: &str) -> Result<Order, ExchangeError> {
    let side = if text(&v["side"]) == "SELL" {
        OrderSide::Sell
    } else {
        OrderSide::Buy
    };
    let position_side = if text(&v["positionSide"]) == "SHORT" {
        Side::Short
    } else {
        Side::Long
    };
    let kind = if text(&v["type"]) == "MARKET" {
        OrderKind::Market
    } else {
        OrderKind::Limit
    };
    // Hedge mode: an order reduces when it trades against its position's side.
    let reduce_only = matches!(
        (position_side, side),
        (Side::Long, OrderSide::Sell) | (Side::Short, OrderSide::Buy)
    );
    // A market order's price is "0" (or empty): it has none.
    let price = num_or_zero(v, "price")?;
    let mut id = text(&v["orderID"]);
    if id.is_empty() {
        id = text(&v["orderId"]);
    }
    let mut client_id = text(&v["clientOrderId"]);
    if client_id.is_empty() {
        client_id = text(&v["clientOrderID"]);
    }
    Ok(Order {
        client_id,
        exchange_id: id,
        symbol: symbol.to_string(),
        side,
        kind,
        price: (kind == OrderKind::Limit && price > Decimal::ZERO).then_some(price),
        trigger_price: None,
        qty: num(v, "origQty")?,
        filled_qty: num_or_zero(v, "executedQty")?,
        avg_fill_price: num_or_zero(v, "avgPrice")?,
        fee: Decimal::ZERO,
        reduce_only,
        position_side,
        status: status(&text(&v["status"])),
        created_ms: int_field(v, "time")?,
    })
}

/// The hedge-mode position of `side` in a positions answer (flat if absent).
pub fn position(list: &Value, side: Side) -> Result<Position, ExchangeError> {
    let want = position_side(side);
    let found = list
        .as_array()
        .and_then(|l| l.iter().find(|p| text(&p["positionSide"]) == want));
    let Some(p) = found else {
        return Ok(Position {
            side,
            size: Decimal::ZERO,
            avg_entry: Decimal::ZERO,
            mark_price: Decimal::ZERO,
        });
    };
    let size = num(p, "positionAmt")?.abs();
    let avg = num_or_zero(p, "avgPrice")?;
    // The reference lists no mark price field; use it when present, else derive
    // it from the unrealised PnL (which moves with the mark, unlike a value that
    // may be priced at entry), else from the position's value.
    let mut mark = num_or_zero(p, "markPrice")?;
    let zero = Decimal::ZERO;
    if mark <= zero && size > zero {
        if let Some(upnl) = num_opt(p, "unrealizedProfit")? {
            let per_unit = upnl / size;
            mark = match side {
                Side::Long => avg + per_unit,
                Side::Short => avg - per_unit,
            };
        }
    }
    if mark <= zero && size > zero {
        mark = num_or_zero(p, "positionValue")? / size;
    }
    if mark <= zero {
        mark = avg;
    }
    Ok(Position {
        side,
        size,
        avg_entry: avg,
        mark_price: mark.normalize(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;
    use serde_json::json;

    #[test]
    fn mark_price_follows_the_unrealised_pnl() {
        let list = json!([
            {"positionSide": "LONG", "positionAmt": "0.01", "avgPrice": "60000",
             "unrealizedProfit": "-10", "positionValue": "600"},
            {"positionSide": "SHORT", "positionAmt": "-0.02", "avgPrice": "61000",
             "unrealizedProfit": "20", "positionValue": "1220"}
        ]);
        assert_eq!(position(&list, Side::Long).unwrap().mark_price, dec!(59000));
        assert_eq!(
            position(&list, Side::Short).unwrap().mark_price,
            dec!(60000)
        );
    }

    #[test]
    fn hedge_mode_orders_and_positions() {
        let v = json!({"orderId": 172998235239792314i64, "symbol": "BTC-USDT", "side": "SELL",
            "positionSide": "LONG", "type": "LIMIT", "origQty": "0.002", "executedQty": "0",
            "price": "70000", "avgPrice": "0.0", "status": "NEW", "time": 1700000000000i64,
            "clientOrderId": "bz-3-1-tp1"});
        let o = order(&v, "BTC/USDT").unwrap();
        assert!(o.reduce_only);
        assert_eq!(o.exchange_id, "172998235239792314");
        assert_eq!((o.status, o.price), (OrderStatus::Open, Some(dec!(70000))));
        let mut garbled = v;
        garbled["origQty"] = json!("two");
        assert!(order(&garbled, "BTC/USDT").is_err());
        let l = json!([{"positionSide": "SHORT", "positionAmt": "0.25", "avgPrice": "246.5",
            "positionValue": "50"}]);
        let p = position(&l, Side::Short).unwrap();
        assert_eq!(
            (p.size, p.avg_entry, p.mark_price),
            (dec!(0.25), dec!(246.5), dec!(200))
        );
        assert_eq!(position(&l, Side::Long).unwrap().size, Decimal::ZERO);
    }
}
