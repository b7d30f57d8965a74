//! Bybit v5 answers (`types`) → the exchange trait's types.
//!
//! Order fields: <https://bybit-exchange.github.io/docs/v5/order/open-order>;
//! statuses, stop order types and execution types:
//! <https://bybit-exchange.github.io/docs/v5/enum>; positions:
//! <https://bybit-exchange.github.io/docs/v5/position>.

use rust_decimal::Decimal;

use super::types::{LogEntry, RawExecution, RawOrder, RawPosition};
use crate::exchange::{
    ExchangeError, Execution, FundingPayment, Order, OrderKind, OrderSide, OrderStatus, Position,
    Side,
};

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

fn malformed(what: &str, field: &str, value: &str) -> ExchangeError {
    ExchangeError::Malformed(format!("{what}: field {field}: unknown value {value:?}"))
}

pub fn side(what: &str, s: &str) -> Result<OrderSide, ExchangeError> {
    match s {
        "Buy" => Ok(OrderSide::Buy),
        "Sell" => Ok(OrderSide::Sell),
        other => Err(malformed(what, "side", other)),
    }
}

/// docs/v5/enum, orderStatus. `Untriggered` (a conditional order waiting) and
/// `Triggered` (the instant between trigger and placement) are still open.
fn status(s: &str) -> Result<OrderStatus, ExchangeError> {
    Ok(match s {
        "New" | "Untriggered" | "Triggered" => OrderStatus::Open,
        "PartiallyFilled" => OrderStatus::PartiallyFilled,
        "Filled" => OrderStatus::Filled,
        "Rejected" => OrderStatus::Rejected,
        "Cancelled" | "PartiallyFilledCanceled" | "Deactivated" => OrderStatus::Cancelled,
        other => return Err(malformed("order", "orderStatus", other)),
    })
}

/// A conditional order has a `stopOrderType` (`Stop` for ours; `StopLoss`,
/// `TakeProfit`, … for a position's TP/SL set elsewhere); an active one has
/// `UNKNOWN` or `""`. A triggered stop keeps its type, so a filled stop still
/// reads as a stop.
fn kind(o: &RawOrder) -> Result<OrderKind, ExchangeError> {
    if !matches!(o.stop_order_type.as_str(), "" | "UNKNOWN") {
        return Ok(OrderKind::Stop);
    }
    match o.order_type.as_str() {
        "Market" => Ok(OrderKind::Market),
        "Limit" => Ok(OrderKind::Limit),
        other => Err(malformed("order", "orderType", other)),
    }
}

/// The position an order belongs to; in one-way mode (0) the side it opens or
/// reduces.
fn position_side(idx: i64, side: OrderSide, reduce_only: bool) -> Side {
    match (idx, side, reduce_only) {
        (1, _, _) => Side::Long,
        (2, _, _) => Side::Short,
        (_, OrderSide::Buy, false) | (_, OrderSide::Sell, true) => Side::Long,
        _ => Side::Short,
    }
}

fn positive(x: Option<Decimal>) -> Option<Decimal> {
    x.filter(|p| *p > Decimal::ZERO)
}

/// One order; `symbol` is ours (`BTC/USDT`). Its fee is the order's own running
/// total (`cumFeeDetail.USDT`, else `cumExecFee`; positive = paid), read in the
/// same answer as the filled quantity so the two never disagree. An order that
/// reports a fill without an average price (`""` or `"0"`) is caught between two
/// updates: `Busy`, read it again later, never a fill at price 0.
pub fn order(o: &RawOrder, symbol: &str) -> Result<Order, ExchangeError> {
    let side = side("order", &o.side)?;
    let kind = kind(o)?;
    let avg = positive(o.avg_price);
    if o.cum_exec_qty > Decimal::ZERO && avg.is_none() {
        return Err(ExchangeError::Busy(format!(
            "order {} reports {} filled without an average price yet",
            o.order_id, o.cum_exec_qty
        )));
    }
    Ok(Order {
        client_id: o.order_link_id.clone(),
        exchange_id: o.order_id.clone(),
        symbol: symbol.to_string(),
        side,
        kind,
        // A market or conditional market order's price is "0": it has none.
        price: positive(o.price).filter(|_| kind == OrderKind::Limit),
        trigger_price: positive(o.trigger_price).filter(|_| kind == OrderKind::Stop),
        qty: o.qty,
        filled_qty: o.cum_exec_qty,
        avg_fill_price: avg.unwrap_or(Decimal::ZERO),
        fee: fee(o),
        reduce_only: o.reduce_only,
        position_side: position_side(o.position_idx, side, o.reduce_only),
        status: status(&o.order_status)?,
        created_ms: o.created_time,
    })
}

/// The order's cumulative fee in USDT (0 before anything fills).
fn fee(o: &RawOrder) -> Decimal {
    o.cum_fee_detail
        .as_ref()
        .and_then(|d| d.usdt)
        .or(o.cum_exec_fee)
        .unwrap_or(Decimal::ZERO)
}

/// One fill. `BustTrade` is a takeover liquidation, `AdlTrade` auto-deleveraging:
/// both close the position without the bot (docs/v5/enum, execType).
pub fn execution(e: &RawExecution) -> Result<Execution, ExchangeError> {
    Ok(Execution {
        exec_id: e.exec_id.clone(),
        order_id: e.order_id.clone(),
        client_id: e.order_link_id.clone(),
        side: side("execution", &e.side)?,
        qty: e.exec_qty,
        price: e.exec_price,
        fee: e.exec_fee,
        time_ms: e.exec_time,
        liquidation: matches!(e.exec_type.as_str(), "BustTrade" | "AdlTrade"),
    })
}

/// Fills that trade (not the `Funding` entries the same list may hold).
pub fn is_fill(e: &RawExecution) -> bool {
    e.exec_type != "Funding"
}

/// One funding settlement; `funding` is already + received, − paid.
pub fn funding(l: &LogEntry, symbol: &str) -> FundingPayment {
    FundingPayment {
        id: l.id.clone(),
        symbol: symbol.to_string(),
        amount: l.funding,
        time_ms: l.transaction_time,
        side: match l.side.as_str() {
            "Buy" => Some(Side::Long),
            "Sell" => Some(Side::Short),
            _ => None,
        },
    }
}

/// The hedge-mode position of `side` in a `/v5/position/list` answer (flat if
/// absent).
pub fn position(list: &[RawPosition], side: Side) -> Position {
    let idx = position_idx(side);
    match list.iter().find(|p| p.position_idx == idx) {
        Some(p) => Position {
            side,
            size: p.size,
            avg_entry: p.avg_price.unwrap_or(Decimal::ZERO),
            mark_price: p.mark_price.unwrap_or(Decimal::ZERO),
        },
        None => Position {
            side,
            size: Decimal::ZERO,
            avg_entry: Decimal::ZERO,
            mark_price: Decimal::ZERO,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::bybit::types::Page;
    use crate::exchange::rest::wire;
    use crate::money::dec;

    fn one(text: &str) -> Result<Order, ExchangeError> {
        let page: Page<RawOrder> = wire::parse("order list", text)?;
        order(&page.list[0], "ETH/USDT")
    }

    const OPEN: &str = r#"{"list":[{"orderId": "fd4300ae", "orderLinkId": "bz-1-1-l1",
        "symbol": "ETHUSDT", "price": "1600.00", "qty": "0.10", "side": "Buy", "positionIdx": 1,
        "orderStatus": "New", "avgPrice": "", "cumExecQty": "0", "orderType": "Limit",
        "stopOrderType": "UNKNOWN", "triggerPrice": "0.00", "reduceOnly": false,
        "createdTime": "1684738540559"}], "nextPageCursor": ""}"#;

    #[test]
    fn parses_a_documented_open_order() {
        let o = one(OPEN).unwrap();
        assert_eq!(
            (o.kind, o.price, o.trigger_price),
            (OrderKind::Limit, Some(dec!(1600)), None)
        );
        assert_eq!(
            (o.qty, o.filled_qty, o.avg_fill_price),
            (dec!(0.1), Decimal::ZERO, Decimal::ZERO)
        );
        assert_eq!((o.status, o.position_side), (OrderStatus::Open, Side::Long));
        assert_eq!(o.created_ms, 1684738540559);
    }

    #[test]
    fn a_conditional_order_is_a_stop_open_until_it_fills() {
        let stop = OPEN
            .replace(r#""price": "1600.00""#, r#""price": "0""#)
            .replace(r#""orderType": "Limit""#, r#""orderType": "Market""#)
            .replace(
                r#""stopOrderType": "UNKNOWN""#,
                r#""stopOrderType": "Stop""#,
            )
            .replace(r#""triggerPrice": "0.00""#, r#""triggerPrice": "1500.5""#)
            .replace(r#""side": "Buy""#, r#""side": "Sell""#)
            .replace(r#""reduceOnly": false"#, r#""reduceOnly": true"#);
        let o = one(&stop.replace("\"New\"", "\"Untriggered\"")).unwrap();
        assert_eq!(
            (o.kind, o.price, o.trigger_price),
            (OrderKind::Stop, None, Some(dec!(1500.5)))
        );
        assert_eq!(
            (o.status, o.reduce_only, o.side),
            (OrderStatus::Open, true, OrderSide::Sell)
        );
        let filled = stop
            .replace("\"New\"", "\"Filled\"")
            .replace(r#""cumExecQty": "0""#, r#""cumExecQty": "0.1""#)
            .replace(r#""avgPrice": """#, r#""avgPrice": "1500.1""#);
        let o = one(&filled).unwrap();
        assert_eq!(
            (o.kind, o.status, o.filled_qty),
            (OrderKind::Stop, OrderStatus::Filled, dec!(0.1))
        );
        assert_eq!(o.avg_fill_price, dec!(1500.1));
        assert_eq!(
            one(&stop.replace("\"New\"", "\"Deactivated\""))
                .unwrap()
                .status,
            OrderStatus::Cancelled
        );
    }

    #[test]
    fn a_fill_without_an_average_price_is_read_again_never_priced_at_0() {
        let filled = OPEN
            .replace("\"New\"", "\"Filled\"")
            .replace(r#""cumExecQty": "0""#, r#""cumExecQty": "0.10""#);
        for avg in [r#""avgPrice": """#, r#""avgPrice": "0""#, r#""x": 0"#] {
            let e = one(&filled.replace(r#""avgPrice": """#, avg)).unwrap_err();
            assert!(
                matches!(&e, ExchangeError::Busy(m) if m.contains("fd4300ae")),
                "{avg}: {e:?}"
            );
            assert!(e.is_retryable());
        }
        // Nothing filled: no price needed.
        assert_eq!(one(OPEN).unwrap().avg_fill_price, Decimal::ZERO);
    }

    #[test]
    fn the_fee_is_the_orders_own_total_read_with_its_quantity() {
        let filled = OPEN
            .replace("\"New\"", "\"Filled\"")
            .replace(r#""cumExecQty": "0""#, r#""cumExecQty": "0.10""#)
            .replace(r#""avgPrice": """#, r#""avgPrice": "1600""#);
        let with = |fees: &str| filled.replace(r#""orderType""#, &format!("{fees}, \"orderType\""));
        // cumFeeDetail wins over the deprecated cumExecFee.
        let o = one(&with(
            r#""cumExecFee": "0.05", "cumFeeDetail": {"USDT": "0.088"}"#,
        ))
        .unwrap();
        assert_eq!((o.filled_qty, o.fee), (dec!(0.1), dec!(0.088)));
        let o = one(&with(r#""cumExecFee": "0.088""#)).unwrap();
        assert_eq!(o.fee, dec!(0.088));
        // A maker rebate stays negative.
        let o = one(&with(
            r#""cumExecFee": "0", "cumFeeDetail": {"USDT": "-0.016"}"#,
        ))
        .unwrap();
        assert_eq!(o.fee, dec!(-0.016));
        assert_eq!(one(&filled).unwrap().fee, Decimal::ZERO);
        let bad = one(&with(r#""cumFeeDetail": {"USDT": "0.0x"}"#)).unwrap_err();
        assert!(
            matches!(&bad, ExchangeError::Malformed(m) if m.contains("USDT")),
            "{bad:?}"
        );
    }

    #[test]
    fn garbled_or_missing_fields_are_malformed() {
        for (from, to, says) in [
            (r#""qty": "0.10""#, r#""qty": "0.1O""#, "list[0].qty"),
            (
                r#""createdTime": "1684738540559""#,
                r#""x": 1"#,
                "missing field `createdTime`",
            ),
            (
                r#""cumExecQty": "0""#,
                r#""cumExecQty": """#,
                "list[0].cumExecQty",
            ),
            (
                r#""orderStatus": "New""#,
                r#""orderStatus": "Sleeping""#,
                "orderStatus",
            ),
            (r#""side": "Buy""#, r#""side": "Up""#, "side"),
        ] {
            match one(&OPEN.replace(from, to)) {
                Err(ExchangeError::Malformed(m)) => assert!(m.contains(says), "{m}"),
                other => panic!("{to}: {other:?}"),
            }
        }
    }

    #[test]
    fn picks_the_hedge_mode_side_and_the_liquidations() {
        let l: Page<RawPosition> = wire::parse(
            "positions",
            r#"{"list":[{"positionIdx": 1, "size": "0.5", "avgPrice": "100", "markPrice": "101"},
                {"positionIdx": 2, "size": "0", "avgPrice": "", "markPrice": "101"}]}"#,
        )
        .unwrap();
        assert_eq!(position(&l.list, Side::Long).size, dec!(0.5));
        assert_eq!(position(&l.list, Side::Short).size, Decimal::ZERO);
        let bad = wire::parse::<Page<RawPosition>>(
            "positions",
            r#"{"list":[{"positionIdx": 1, "size": ""}]}"#,
        );
        assert!(matches!(bad, Err(ExchangeError::Malformed(_))));
        let e: RawExecution = wire::parse(
            "execution",
            r#"{"symbol":"BTCUSDT","execId":"e1","orderId":"o1","orderLinkId":"","side":"Sell",
                "execPrice":"61000","execQty":"0.002","execFee":"0.0671","execType":"BustTrade",
                "execTime":"1700000000000"}"#,
        )
        .unwrap();
        let x = execution(&e).unwrap();
        assert!(x.liquidation && is_fill(&e));
        assert_eq!(
            (x.qty, x.price, x.fee),
            (dec!(0.002), dec!(61000), dec!(0.0671))
        );
    }
}
