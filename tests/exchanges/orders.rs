//! The orders and key both adapters' tests send (tests/exchanges/*_adapter.rs).

use blitz::exchange::rest::ApiKey;
use blitz::exchange::{NewOrder, OrderKind, OrderSide, Side};
use rust_decimal::Decimal;

use crate::{KEY, SECRET};

pub fn api_key() -> ApiKey {
    ApiKey {
        key: KEY.into(),
        secret: SECRET.into(),
    }
}

/// A market order on BTC/USDT: opening when `side` opens `position`, else
/// reduce-only.
pub fn market(id: &str, side: OrderSide, qty: Decimal, position: Side) -> NewOrder {
    NewOrder {
        client_id: id.into(),
        symbol: "BTC/USDT".into(),
        side,
        kind: OrderKind::Market,
        price: None,
        trigger_price: None,
        qty,
        reduce_only: side == OrderSide::closing(position),
        position_side: position,
    }
}

/// The reduce-only conditional stop of `position`, triggered at `trigger`.
pub fn stop(id: &str, trigger: Decimal, qty: Decimal, position: Side) -> NewOrder {
    NewOrder {
        kind: OrderKind::Stop,
        trigger_price: Some(trigger),
        ..market(id, OrderSide::closing(position), qty, position)
    }
}
