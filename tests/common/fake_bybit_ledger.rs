//! Bybit's `GET /v5/account/transaction-log` (docs/v5/account/transaction-log,
//! "Get Transaction Log (UTA)") for funding settlements: `type=SETTLEMENT`. The
//! fake keeps no other kind of entry, so any other `type` lists nothing.

use serde_json::{json, Value};

use super::fake_book::{num, Book, Dir};
use super::fake_bybit::{ok, refuse, SYMBOL};
use super::fake_events::Funding;
use super::fake_http::{Request, Response};
use super::fake_page::{limit, page};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The documented `type` values (docs/v5/enum `type(uta-translog)`).
const TYPES: &[&str] = &[
    "TRADE",
    "SETTLEMENT",
    "LIQUIDATION",
    "CURRENCY_BUY",
    "CURRENCY_SELL",
    "AUTO_SOLD_COLLATERAL_INS_LOAN",
    "AUTO_BUY_LIABILITY_INS_LOAN",
    "TRANSFER_IN_INS_LOAN",
    "TRANSFER_OUT_INS_LOAN",
    "INSTITUTION_LIQ_PRINCIPAL_OUT",
    "INSTITUTION_LIQ_INTEREST_OUT",
];

/// The `[start, end]` window the docs describe: 24 hours back from now when
/// neither is given, 24 hours from `startTime` or up to `endTime` when one is, and
/// both at most 7 days apart (Err: what is wrong).
pub fn window(start: Option<&str>, end: Option<&str>, now: i64) -> Result<(i64, i64), String> {
    window_of(start, end, now, DAY_MS)
}

/// `window` with another default span (`/v5/execution/list`: 7 days).
pub fn window_of(
    start: Option<&str>,
    end: Option<&str>,
    now: i64,
    span: i64,
) -> Result<(i64, i64), String> {
    let parse = |s: Option<&str>| -> Result<Option<i64>, String> {
        s.map(|v| {
            v.parse::<i64>()
                .map_err(|_| format!("params error: bad time {v}"))
        })
        .transpose()
    };
    match (parse(start)?, parse(end)?) {
        (None, None) => Ok((now - span, now)),
        (Some(s), None) => Ok((s, s + span)),
        (None, Some(e)) => Ok((e - span, e)),
        (Some(s), Some(e)) if e < s => Err("params error: endTime is before startTime".into()),
        (Some(s), Some(e)) if e - s > 7 * DAY_MS => Err(
            "params error: the time range between startTime and endTime cannot exceed 7 days"
                .into(),
        ),
        (Some(s), Some(e)) => Ok((s, e)),
    }
}

pub fn transaction_log(b: &mut Book, req: &Request) -> Response {
    if req.param("accountType").is_some_and(|a| a != "UNIFIED") {
        return refuse(b, req, 10001, "accountType only support UNIFIED");
    }
    let kind = req.param("type");
    if kind.is_some_and(|k| !TYPES.contains(&k)) {
        return refuse(b, req, 10001, "params error: type");
    }
    let (from, to) = match window(req.param("startTime"), req.param("endTime"), b.server_ms()) {
        Ok(w) => w,
        Err(msg) => return refuse(b, req, 10001, &msg),
    };
    let Some(n) = limit(req.param("limit"), 20, 50) else {
        return refuse(b, req, 10001, "params error: limit");
    };
    let settlement = kind.is_none_or(|k| k == "SETTLEMENT");
    let usdt = req.param("currency").is_none_or(|c| c == "USDT");
    let base = req.param("baseCoin").is_none_or(|c| c == "BTC");
    let mut rows: Vec<&Funding> = b
        .funding
        .iter()
        .filter(|f| settlement && usdt && base && from <= f.time_ms && f.time_ms <= to)
        .collect();
    rows.sort_by_key(|f| std::cmp::Reverse(f.time_ms));
    let all: Vec<Value> = rows.into_iter().map(row).collect();
    let Some((list, next)) = page(&all, n, req.param("cursor")) else {
        return refuse(b, req, 10001, "params error: cursor");
    };
    ok(json!({"list": list, "nextPageCursor": next}))
}

/// One settlement as the docs list it: `funding` > 0 received, < 0 paid (the
/// opposite of `execFee`), `change = cashFlow + funding - fee`, `size` signed
/// (short "-"), `qty` unsigned.
fn row(f: &Funding) -> Value {
    let (side, size) = match f.dir {
        Dir::Long => ("Buy", f.size),
        Dir::Short => ("Sell", -f.size),
    };
    json!({"id": format!("{}_{SYMBOL}_{}", f.id, f.time_ms), "symbol": SYMBOL,
        "category": "linear", "side": side, "transactionTime": f.time_ms.to_string(),
        "type": "SETTLEMENT", "transSubType": "", "qty": num(f.size), "size": num(size),
        "currency": "USDT", "tradePrice": num(f.mark), "funding": num(f.amount),
        "fee": "0", "cashFlow": "0", "change": num(f.amount),
        "cashBalance": num(f.balance_after), "feeRate": num(f.fee_rate()),
        "bonusChange": "", "tradeId": format!("funding-{}", f.id), "orderId": "",
        "orderLinkId": "", "extraFees": ""})
}
