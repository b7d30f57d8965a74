//! BingX swap answers (`types`) → the exchange trait's types. Order fields and
//! statuses: swap-trade API reference, "Query Order details"; fills: "Trade Fill
//! History"; positions: swap-account, "Query position data".

use rust_decimal::Decimal;

use super::types::{order_id, Fill, RawOrder, RawPosition};
use crate::exchange::{
    ExchangeError, Execution, Order, OrderKind, OrderSide, OrderStatus, Position, Side,
};

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

fn malformed(what: &str, field: &str, value: &str) -> ExchangeError {
    ExchangeError::Malformed(format!("{what}: field {field}: unknown value {value:?}"))
}

pub fn side(what: &str, s: &str) -> Result<OrderSide, ExchangeError> {
    match s {
        "BUY" => Ok(OrderSide::Buy),
        "SELL" => Ok(OrderSide::Sell),
        other => Err(malformed(what, "side", other)),
    }
}

/// "Order status: `NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`, `EXPIRED`"; an
/// untriggered stop is `NEW`.
pub(crate) fn status(s: &str) -> Result<OrderStatus, ExchangeError> {
    Ok(match s {
        "NEW" => OrderStatus::Open,
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "FILLED" => OrderStatus::Filled,
        "CANCELED" | "CANCELLED" | "EXPIRED" => OrderStatus::Cancelled,
        "REJECTED" | "FAILED" => OrderStatus::Rejected,
        other => return Err(malformed("order", "status", other)),
    })
}

/// `MARKET`, `LIMIT`, or one of the conditional types (ours is `STOP_MARKET`; a
/// take-profit or trailing order placed elsewhere is conditional too).
pub(crate) fn kind(s: &str) -> Result<OrderKind, ExchangeError> {
    Ok(match s {
        "MARKET" => OrderKind::Market,
        "LIMIT" => OrderKind::Limit,
        "STOP_MARKET"
        | "STOP"
        | "TAKE_PROFIT_MARKET"
        | "TAKE_PROFIT"
        | "TRIGGER_MARKET"
        | "TRIGGER_LIMIT"
        | "TRAILING_STOP_MARKET"
        | "TRAILING_TP_SL" => OrderKind::Stop,
        other => return Err(malformed("order", "type", other)),
    })
}

fn positive(x: Option<Decimal>) -> Option<Decimal> {
    x.filter(|p| *p > Decimal::ZERO)
}

/// One order; `symbol` is ours (`BTC/USDT`). Its fee is the order's own running
/// `commission` (negative when paid, ours positive), read in the same answer as
/// the filled quantity so the two never disagree. An order that reports a fill
/// without an average price (`""`, `"0"`) is caught between two updates: `Busy`,
/// read it again later, never a fill at price 0.
pub fn order(v: &RawOrder, symbol: &str) -> Result<Order, ExchangeError> {
    let side = side("order", &v.side)?;
    let position_side = match v.position_side.as_str() {
        "LONG" => Side::Long,
        "SHORT" => Side::Short,
        other => return Err(malformed("order", "positionSide", other)),
    };
    let kind = kind(&v.kind)?;
    let exchange_id = order_id("order", &v.order_id_text, &v.order_id)?;
    let avg = positive(v.avg_price);
    if v.executed_qty > Decimal::ZERO && avg.is_none() {
        return Err(ExchangeError::Busy(format!(
            "order {exchange_id} reports {} filled without an average price yet",
            v.executed_qty
        )));
    }
    // Hedge mode: an order reduces when it trades against its position's side.
    let reduce_only = matches!(
        (position_side, side),
        (Side::Long, OrderSide::Sell) | (Side::Short, OrderSide::Buy)
    );
    Ok(Order {
        client_id: v.client_order_id.clone(),
        exchange_id,
        symbol: symbol.to_string(),
        side,
        kind,
        // A market order's price is "0" (or empty): it has none.
        price: positive(v.price).filter(|_| kind == OrderKind::Limit),
        trigger_price: positive(v.stop_price).filter(|_| kind == OrderKind::Stop),
        qty: v.orig_qty,
        filled_qty: v.executed_qty,
        avg_fill_price: avg.unwrap_or(Decimal::ZERO),
        fee: -v.commission.unwrap_or(Decimal::ZERO),
        reduce_only,
        position_side,
        status: status(&v.status)?,
        created_ms: v.time,
    })
}

/// One fill; `liquidation` when its order is one of the account's forced closes
/// (liquidation or ADL). BingX reports a fee paid as negative; ours is positive.
pub fn execution(f: &Fill, client_id: &str, liquidation: bool) -> Result<Execution, ExchangeError> {
    Ok(Execution {
        exec_id: f.trade_id.clone(),
        order_id: f.order_id.clone(),
        client_id: client_id.to_string(),
        side: side("fill", &f.side)?,
        qty: f.qty,
        price: f.price,
        fee: -f.fee,
        time_ms: f.time,
        liquidation,
    })
}

/// The hedge-mode position of `side` in a positions answer (flat if absent).
pub fn position(list: &[RawPosition], side: Side) -> Position {
    let want = position_side(side);
    let Some(p) = list.iter().find(|p| p.position_side == want) else {
        return Position {
            side,
            size: Decimal::ZERO,
            avg_entry: Decimal::ZERO,
            mark_price: Decimal::ZERO,
        };
    };
    let size = p.position_amt.abs();
    let avg = p.avg_price.unwrap_or(Decimal::ZERO);
    let zero = Decimal::ZERO;
    // Older answers have no mark price; derive it from the unrealised PnL (which
    // moves with the mark), else from the position's value.
    let mut mark = p.mark_price.unwrap_or(zero);
    if mark <= zero && size > zero {
        if let Some(upnl) = p.unrealized_profit {
            let per_unit = upnl / size;
            mark = match side {
                Side::Long => avg + per_unit,
                Side::Short => avg - per_unit,
            };
        }
    }
    if mark <= zero && size > zero {
        mark = p.position_value.unwrap_or(zero) / size;
    }
    if mark <= zero {
        mark = avg;
    }
    Position {
        side,
        size,
        avg_entry: avg,
        mark_price: mark.normalize(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::rest::wire;
    use crate::money::dec;

    fn positions(text: &str) -> Vec<RawPosition> {
        wire::parse("positions", text).unwrap()
    }

    #[test]
    fn mark_price_follows_the_unrealised_pnl() {
        let list = positions(
            r#"[{"positionSide": "LONG", "positionAmt": "0.01", "avgPrice": "60000",
                 "unrealizedProfit": "-10", "positionValue": "600"},
                {"positionSide": "SHORT", "positionAmt": "-0.02", "avgPrice": "61000",
                 "unrealizedProfit": "20", "positionValue": "1220"}]"#,
        );
        assert_eq!(position(&list, Side::Long).mark_price, dec!(59000));
        assert_eq!(position(&list, Side::Short).mark_price, dec!(60000));
    }

    const ORDER: &str = r#"{"orderId": 172998235239792314, "symbol": "BTC-USDT", "side": "SELL",
        "positionSide": "LONG", "type": "LIMIT", "origQty": "0.002", "executedQty": "0",
        "price": "70000", "avgPrice": "0.0", "status": "NEW", "time": 1700000000000,
        "clientOrderId": "bz-3-1-tp1", "stopPrice": ""}"#;

    fn one(text: &str) -> Result<Order, ExchangeError> {
        order(&wire::parse::<RawOrder>("order", text)?, "BTC/USDT")
    }

    #[test]
    fn a_fill_without_an_average_price_is_read_again_never_priced_at_0() {
        let filled = ORDER
            .replace(r#""status": "NEW""#, r#""status": "FILLED""#)
            .replace(r#""executedQty": "0""#, r#""executedQty": "0.002""#);
        for avg in [r#""avgPrice": """#, r#""avgPrice": "0.0""#, r#""x": 0"#] {
            let e = one(&filled.replace(r#""avgPrice": "0.0""#, avg)).unwrap_err();
            assert!(
                matches!(&e, ExchangeError::Busy(m) if m.contains("172998235239792314")),
                "{avg}: {e:?}"
            );
            assert!(e.is_retryable());
        }
        let priced = filled.replace(r#""avgPrice": "0.0""#, r#""avgPrice": "70000""#);
        assert_eq!(one(&priced).unwrap().avg_fill_price, dec!(70000));
        assert_eq!(one(ORDER).unwrap().avg_fill_price, Decimal::ZERO);
    }

    #[test]
    fn the_fee_is_the_orders_own_commission_read_with_its_quantity() {
        let filled = ORDER
            .replace(r#""status": "NEW""#, r#""status": "FILLED""#)
            .replace(r#""executedQty": "0""#, r#""executedQty": "0.002""#)
            .replace(r#""avgPrice": "0.0""#, r#""avgPrice": "70000""#);
        let with =
            |c: &str| filled.replace(r#""status""#, &format!("\"commission\": {c}, \"status\""));
        // Documented: negative when paid.
        let o = one(&with(r#""-0.028""#)).unwrap();
        assert_eq!((o.filled_qty, o.fee), (dec!(0.002), dec!(0.028)));
        assert_eq!(one(&with("0.0056")).unwrap().fee, dec!(-0.0056), "a rebate");
        assert_eq!(one(&filled).unwrap().fee, Decimal::ZERO);
        assert!(matches!(
            one(&with(r#""x""#)),
            Err(ExchangeError::Malformed(_))
        ));
    }

    #[test]
    fn hedge_mode_orders_and_stops() {
        let o = one(ORDER).unwrap();
        assert!(o.reduce_only);
        assert_eq!(o.exchange_id, "172998235239792314");
        assert_eq!(
            (o.status, o.price, o.kind),
            (OrderStatus::Open, Some(dec!(70000)), OrderKind::Limit)
        );
        let stop = ORDER
            .replace(r#""type": "LIMIT""#, r#""type": "STOP_MARKET""#)
            .replace(r#""price": "70000""#, r#""price": "0""#)
            .replace(r#""stopPrice": """#, r#""stopPrice": "64000.5""#)
            .replace(r#""clientOrderId": "bz-3-1-tp1""#, r#""clientOrderId": """#);
        let o = one(&stop).unwrap();
        assert_eq!(
            (o.kind, o.price, o.trigger_price),
            (OrderKind::Stop, None, Some(dec!(64000.5)))
        );
        assert_eq!((o.client_id.as_str(), o.status), ("", OrderStatus::Open));
        for (from, to) in [
            (r#""origQty": "0.002""#, r#""origQty": "two""#),
            (r#""status": "NEW""#, r#""status": "LIMBO""#),
            (r#""time": 1700000000000"#, r#""t": 1"#),
        ] {
            assert!(
                matches!(
                    one(&ORDER.replace(from, to)),
                    Err(ExchangeError::Malformed(_))
                ),
                "{to}"
            );
        }
        let l = positions(
            r#"[{"positionSide": "SHORT", "positionAmt": "0.25", "avgPrice": "246.5", "positionValue": "50"}]"#,
        );
        let p = position(&l, Side::Short);
        assert_eq!(
            (p.size, p.avg_entry, p.mark_price),
            (dec!(0.25), dec!(246.5), dec!(200))
        );
        assert_eq!(position(&l, Side::Long).size, Decimal::ZERO);
    }
}
