//! Bybit v5 answers as the documentation describes them, field by field: only the
//! fields the adapter reads, each required unless Bybit documents it as optional or
//! empty. Decimals and integers are read by `rest::wire` from strings or numbers.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::exchange::rest::wire::{decimal, decimal_opt, id, int, int_opt};

/// A `list` with its `nextPageCursor` (empty on the last page), the shape of every
/// list answer (docs/v5/order/open-order, "Response Parameters").
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub list: Vec<T>,
    #[serde(rename = "nextPageCursor", default, deserialize_with = "id")]
    pub next: String,
}

/// `GET /v5/market/time` (docs/v5/market/time).
#[derive(Debug, Deserialize)]
pub struct ServerTime {
    #[serde(rename = "timeSecond", deserialize_with = "int")]
    pub seconds: i64,
    #[serde(rename = "timeNano", default, deserialize_with = "id")]
    pub nanos: String,
}

/// `GET /v5/market/instruments-info` (docs/v5/market/instrument), linear.
#[derive(Debug, Deserialize)]
pub struct Instrument {
    pub symbol: String,
    /// `LinearPerpetual`, or `LinearFutures` for a dated future (`BTCUSDT-26DEC25`)
    /// that `category=linear` lists too.
    #[serde(rename = "contractType", default)]
    pub contract_type: String,
    /// `Trading` while it trades (`PreLaunch`, `Delivering`, `Closed` otherwise).
    pub status: String,
    #[serde(rename = "baseCoin")]
    pub base_coin: String,
    #[serde(rename = "quoteCoin")]
    pub quote_coin: String,
    #[serde(rename = "settleCoin")]
    pub settle_coin: String,
    #[serde(rename = "leverageFilter")]
    pub leverage_filter: LeverageFilter,
    #[serde(rename = "priceFilter")]
    pub price_filter: PriceFilter,
    #[serde(rename = "lotSizeFilter")]
    pub lot_size_filter: LotSizeFilter,
}

#[derive(Debug, Deserialize)]
pub struct LeverageFilter {
    /// `"100.00"`.
    #[serde(rename = "maxLeverage", deserialize_with = "decimal")]
    pub max_leverage: Decimal,
}

#[derive(Debug, Deserialize)]
pub struct PriceFilter {
    #[serde(rename = "tickSize", deserialize_with = "decimal")]
    pub tick_size: Decimal,
}

#[derive(Debug, Deserialize)]
pub struct LotSizeFilter {
    #[serde(rename = "qtyStep", deserialize_with = "decimal")]
    pub qty_step: Decimal,
    #[serde(rename = "minOrderQty", deserialize_with = "decimal")]
    pub min_order_qty: Decimal,
    /// Absent on older listings: no value minimum then.
    #[serde(rename = "minNotionalValue", default, deserialize_with = "decimal_opt")]
    pub min_notional_value: Option<Decimal>,
}

/// `GET /v5/market/tickers` (docs/v5/market/tickers).
#[derive(Debug, Deserialize)]
pub struct Ticker {
    pub symbol: String,
    #[serde(rename = "lastPrice", deserialize_with = "decimal")]
    pub last_price: Decimal,
    /// Empty for contracts without funding.
    #[serde(rename = "fundingRate", default, deserialize_with = "decimal_opt")]
    pub funding_rate: Option<Decimal>,
    /// Unix ms; empty or `"0"` for contracts without funding.
    #[serde(rename = "nextFundingTime", default, deserialize_with = "int_opt")]
    pub next_funding_time: Option<i64>,
}

/// One candle of `GET /v5/market/kline` (docs/v5/market/kline): `[startTime, open,
/// high, low, close, volume, turnover]`, all strings.
#[derive(Debug, Deserialize)]
pub struct Kline(
    #[serde(deserialize_with = "int")] pub i64,
    #[serde(deserialize_with = "decimal")] pub Decimal,
    #[serde(deserialize_with = "decimal")] pub Decimal,
    #[serde(deserialize_with = "decimal")] pub Decimal,
    #[serde(deserialize_with = "decimal")] pub Decimal,
    #[serde(deserialize_with = "decimal")] pub Decimal,
    pub serde::de::IgnoredAny,
);

impl Kline {
    pub fn candle(&self) -> crate::market::candles::Candle {
        crate::market::candles::Candle {
            start_ms: self.0,
            open: self.1,
            high: self.2,
            low: self.3,
            close: self.4,
            volume: self.5,
        }
    }
}

/// `POST /v5/order/create` (docs/v5/order/create-order).
#[derive(Debug, Deserialize)]
pub struct Created {
    #[serde(rename = "orderId", deserialize_with = "id")]
    pub order_id: String,
}

/// One order of `GET /v5/order/realtime` or `/v5/order/history`
/// (docs/v5/order/open-order).
#[derive(Debug, Clone, Deserialize)]
pub struct RawOrder {
    #[serde(rename = "orderId", deserialize_with = "id")]
    pub order_id: String,
    /// Empty for orders placed without one (on the site, by the liquidation engine).
    #[serde(rename = "orderLinkId", default, deserialize_with = "id")]
    pub order_link_id: String,
    pub side: String,
    #[serde(rename = "orderType")]
    pub order_type: String,
    /// `Stop` for a conditional order; `UNKNOWN` or `""` for an active one
    /// (docs/v5/enum, stopOrderType).
    #[serde(rename = "stopOrderType", default)]
    pub stop_order_type: String,
    /// `"0"` or `""` for a market order.
    #[serde(default, deserialize_with = "decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(rename = "triggerPrice", default, deserialize_with = "decimal_opt")]
    pub trigger_price: Option<Decimal>,
    #[serde(deserialize_with = "decimal")]
    pub qty: Decimal,
    #[serde(rename = "cumExecQty", deserialize_with = "decimal")]
    pub cum_exec_qty: Decimal,
    /// `""` (or `"0"`) until something fills.
    #[serde(rename = "avgPrice", default, deserialize_with = "decimal_opt")]
    pub avg_price: Option<Decimal>,
    /// Fees of the fills so far, positive = paid. "Deprecated" for linear
    /// contracts in favour of `cumFeeDetail`; read when that is absent.
    #[serde(rename = "cumExecFee", default, deserialize_with = "decimal_opt")]
    pub cum_exec_fee: Option<Decimal>,
    /// The same per fee coin (`{"USDT": "0.0671"}`), since 2025-09.
    #[serde(rename = "cumFeeDetail", default)]
    pub cum_fee_detail: Option<FeeDetail>,
    #[serde(rename = "reduceOnly")]
    pub reduce_only: bool,
    #[serde(rename = "positionIdx", deserialize_with = "int")]
    pub position_idx: i64,
    #[serde(rename = "orderStatus")]
    pub order_status: String,
    #[serde(rename = "createdTime", deserialize_with = "int")]
    pub created_time: i64,
}

/// An order's `cumFeeDetail`: fees by coin; a USDT perpetual's are in USDT.
#[derive(Debug, Clone, Deserialize)]
pub struct FeeDetail {
    #[serde(rename = "USDT", default, deserialize_with = "decimal_opt")]
    pub usdt: Option<Decimal>,
}

/// One fill of `GET /v5/execution/list` (docs/v5/order/execution).
#[derive(Debug, Clone, Deserialize)]
pub struct RawExecution {
    pub symbol: String,
    #[serde(rename = "execId", deserialize_with = "id")]
    pub exec_id: String,
    #[serde(rename = "orderId", deserialize_with = "id")]
    pub order_id: String,
    #[serde(rename = "orderLinkId", default, deserialize_with = "id")]
    pub order_link_id: String,
    pub side: String,
    #[serde(rename = "execPrice", deserialize_with = "decimal")]
    pub exec_price: Decimal,
    #[serde(rename = "execQty", deserialize_with = "decimal")]
    pub exec_qty: Decimal,
    /// Positive = paid, negative = a rebate.
    #[serde(rename = "execFee", deserialize_with = "decimal")]
    pub exec_fee: Decimal,
    /// `Trade`, `BustTrade` (takeover liquidation), `AdlTrade`, `Funding`, …
    /// (docs/v5/enum, execType).
    #[serde(rename = "execType")]
    pub exec_type: String,
    #[serde(rename = "execTime", deserialize_with = "int")]
    pub exec_time: i64,
}

/// One side of `GET /v5/position/list` (docs/v5/position).
#[derive(Debug, Deserialize)]
pub struct RawPosition {
    #[serde(rename = "positionIdx", deserialize_with = "int")]
    pub position_idx: i64,
    #[serde(deserialize_with = "decimal")]
    pub size: Decimal,
    /// A flat side may report `""`.
    #[serde(rename = "avgPrice", default, deserialize_with = "decimal_opt")]
    pub avg_price: Option<Decimal>,
    #[serde(rename = "markPrice", default, deserialize_with = "decimal_opt")]
    pub mark_price: Option<Decimal>,
    /// `""` in portfolio margin ("leverage rules are invalid").
    #[serde(default, deserialize_with = "decimal_opt")]
    pub leverage: Option<Decimal>,
}

/// `GET /v5/account/info` (docs/v5/account/account-info).
#[derive(Debug, Deserialize)]
pub struct AccountInfo {
    /// `ISOLATED_MARGIN`, `REGULAR_MARGIN` (cross) or `PORTFOLIO_MARGIN`.
    #[serde(rename = "marginMode")]
    pub margin_mode: String,
}

/// One account of `GET /v5/account/wallet-balance` (docs/v5/account/wallet-balance).
#[derive(Debug, Deserialize)]
pub struct Wallet {
    pub coin: Vec<Coin>,
}

#[derive(Debug, Deserialize)]
pub struct Coin {
    pub coin: String,
    #[serde(rename = "walletBalance", deserialize_with = "decimal")]
    pub wallet_balance: Decimal,
}

/// One entry of `GET /v5/account/transaction-log` (docs/v5/account/transaction-log).
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntry {
    #[serde(deserialize_with = "id")]
    pub id: String,
    #[serde(default)]
    pub symbol: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "transactionTime", deserialize_with = "int")]
    pub transaction_time: i64,
    /// "Positive fee value means receive funding; negative fee value means pay
    /// funding" — already our sign (received +, paid −).
    #[serde(deserialize_with = "decimal")]
    pub funding: Decimal,
    /// The settled position's side: `Buy` (long), `Sell` (short), `None`.
    #[serde(default)]
    pub side: String,
}
