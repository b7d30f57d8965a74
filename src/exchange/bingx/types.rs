//! BingX perpetual-swap answers as its API reference describes them
//! (github.com/BingX-API/api-ai-skills, `skills/swap-trade`, `swap-account`,
//! `swap-market` `api-reference.md`): only the fields the adapter reads, each
//! required unless documented as optional. Decimals and integers come as strings or
//! numbers and are read by `rest::wire`; order ids above 2^53 keep their digits.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::exchange::rest::wire::{self, decimal, decimal_opt, id, int};
use crate::exchange::ExchangeError;

/// `data` that BingX sends bare (`[...]`, `{...}`) or wrapped under `key`
/// (`{"orders": [...]}`, `{"order": {...}}`), depending on the endpoint and its
/// version: `T` either way.
pub fn unwrap<T: DeserializeOwned>(what: &str, key: &str, data: &str) -> Result<T, ExchangeError> {
    if data.trim_start().starts_with('{') {
        let map: HashMap<String, Box<RawValue>> = wire::parse(what, data)?;
        if let Some(inner) = map.get(key) {
            return wire::parse(what, inner.get());
        }
    }
    wire::parse(what, data)
}

/// `GET /openApi/swap/v2/server/time`.
#[derive(Debug, Deserialize)]
pub struct ServerTime {
    #[serde(rename = "serverTime", deserialize_with = "int")]
    pub server_time: i64,
}

/// One contract of `GET /openApi/swap/v2/quote/contracts`.
#[derive(Debug, Deserialize)]
pub struct Contract {
    pub symbol: String,
    /// Decimal places of prices and quantities.
    #[serde(rename = "pricePrecision", deserialize_with = "int")]
    pub price_precision: i64,
    #[serde(rename = "quantityPrecision", deserialize_with = "int")]
    pub quantity_precision: i64,
    #[serde(rename = "tradeMinQuantity", default, deserialize_with = "decimal_opt")]
    pub trade_min_quantity: Option<Decimal>,
    #[serde(rename = "tradeMinUSDT", default, deserialize_with = "decimal_opt")]
    pub trade_min_usdt: Option<Decimal>,
    /// The settlement and margin asset (`USDT`).
    #[serde(default)]
    pub currency: String,
    /// 1 online, 25 closing only, 5 pre-online, 0 offline.
    #[serde(default, deserialize_with = "int_or_zero")]
    pub status: i64,
}

/// `status` of a contract: absent (older answers) counts as not known to trade.
fn int_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    wire::int_opt(d).map(|v| v.unwrap_or(0))
}

/// `GET /openApi/swap/v2/quote/ticker` for one symbol.
#[derive(Debug, Deserialize)]
pub struct Ticker {
    /// Absent in some single-symbol answers; always there in the list of all.
    #[serde(default)]
    pub symbol: String,
    #[serde(rename = "lastPrice", deserialize_with = "decimal")]
    pub last_price: Decimal,
}

/// One entry of `GET /openApi/swap/v2/quote/premiumIndex` ("Mark Price and
/// Funding Rate").
#[derive(Debug, Deserialize)]
pub struct Premium {
    pub symbol: String,
    #[serde(rename = "lastFundingRate", default, deserialize_with = "decimal_opt")]
    pub last_funding_rate: Option<Decimal>,
    /// Unix ms.
    #[serde(
        rename = "nextFundingTime",
        default,
        deserialize_with = "wire::int_opt"
    )]
    pub next_funding_time: Option<i64>,
}

/// One candle of `GET /openApi/swap/v3/quote/klines`.
#[derive(Debug, Deserialize)]
pub struct Kline {
    #[serde(deserialize_with = "int")]
    pub time: i64,
    #[serde(deserialize_with = "decimal")]
    pub open: Decimal,
    #[serde(deserialize_with = "decimal")]
    pub high: Decimal,
    #[serde(deserialize_with = "decimal")]
    pub low: Decimal,
    #[serde(deserialize_with = "decimal")]
    pub close: Decimal,
    #[serde(deserialize_with = "decimal")]
    pub volume: Decimal,
}

/// An order's id: `orderID` (a string) when given, else `orderId` (a number
/// beyond 2^53, "use the string … to avoid precision loss"); one of them must be.
pub fn order_id(what: &str, text: &str, number: &str) -> Result<String, ExchangeError> {
    let id = if text.is_empty() { number } else { text };
    if id.is_empty() {
        return Err(ExchangeError::Malformed(format!("{what}: no orderId")));
    }
    Ok(id.to_string())
}

/// `POST /openApi/swap/v2/trade/order`: the placed order (wrapped in `order`).
#[derive(Debug, Deserialize)]
pub struct Placed {
    #[serde(rename = "orderId", default, deserialize_with = "id")]
    pub number: String,
    #[serde(rename = "orderID", default, deserialize_with = "id")]
    pub text: String,
}

/// One order of "Query Order details", "Query All Current Open Orders" and
/// "Liquidation / Force Close Order Query".
#[derive(Debug, Clone, Deserialize)]
pub struct RawOrder {
    #[serde(rename = "orderId", default, deserialize_with = "id")]
    pub order_id: String,
    #[serde(rename = "orderID", default, deserialize_with = "id")]
    pub order_id_text: String,
    /// `""` for a stop (client ids are kept for LIMIT and MARKET only).
    #[serde(rename = "clientOrderId", default, deserialize_with = "id")]
    pub client_order_id: String,
    pub side: String,
    #[serde(rename = "positionSide")]
    pub position_side: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "origQty", deserialize_with = "decimal")]
    pub orig_qty: Decimal,
    #[serde(rename = "executedQty", deserialize_with = "decimal")]
    pub executed_qty: Decimal,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(rename = "stopPrice", default, deserialize_with = "decimal_opt")]
    pub stop_price: Option<Decimal>,
    #[serde(rename = "avgPrice", default, deserialize_with = "decimal_opt")]
    pub avg_price: Option<Decimal>,
    /// Fees of the fills so far, negative when paid (`"-0.009553"`).
    #[serde(default, deserialize_with = "decimal_opt")]
    pub commission: Option<Decimal>,
    pub status: String,
    #[serde(deserialize_with = "int")]
    pub time: i64,
}

/// One fill of `GET /openApi/swap/v2/trade/allFillOrders` (wrapped in
/// `fill_orders`).
#[derive(Debug, Clone, Deserialize)]
pub struct Fill {
    #[serde(rename = "tradeId", deserialize_with = "id")]
    pub trade_id: String,
    pub symbol: String,
    #[serde(rename = "orderId", deserialize_with = "id")]
    pub order_id: String,
    pub side: String,
    #[serde(deserialize_with = "decimal")]
    pub price: Decimal,
    #[serde(deserialize_with = "decimal")]
    pub qty: Decimal,
    /// "Fee (negative value = paid out)".
    #[serde(deserialize_with = "decimal")]
    pub fee: Decimal,
    #[serde(deserialize_with = "int")]
    pub time: i64,
}

/// One position of `GET /openApi/swap/v2/user/positions`.
#[derive(Debug, Deserialize)]
pub struct RawPosition {
    #[serde(rename = "positionSide")]
    pub position_side: String,
    #[serde(rename = "positionAmt", deserialize_with = "decimal")]
    pub position_amt: Decimal,
    #[serde(rename = "avgPrice", default, deserialize_with = "decimal_opt")]
    pub avg_price: Option<Decimal>,
    #[serde(rename = "markPrice", default, deserialize_with = "decimal_opt")]
    pub mark_price: Option<Decimal>,
    #[serde(rename = "unrealizedProfit", default, deserialize_with = "decimal_opt")]
    pub unrealized_profit: Option<Decimal>,
    #[serde(rename = "positionValue", default, deserialize_with = "decimal_opt")]
    pub position_value: Option<Decimal>,
}

/// One asset of `GET /openApi/swap/v3/user/balance`.
#[derive(Debug, Deserialize)]
pub struct Balance {
    pub asset: String,
    #[serde(deserialize_with = "decimal")]
    pub balance: Decimal,
}

/// One entry of `GET /openApi/swap/v2/user/income` ("Query Fund Flow").
#[derive(Debug, Clone, Deserialize)]
pub struct Income {
    #[serde(default)]
    pub symbol: String,
    #[serde(rename = "incomeType")]
    pub income_type: String,
    /// "Positive = inflow, negative = outflow".
    #[serde(deserialize_with = "decimal")]
    pub income: Decimal,
    #[serde(deserialize_with = "int")]
    pub time: i64,
    #[serde(rename = "tranId", deserialize_with = "id")]
    pub tran_id: String,
}
