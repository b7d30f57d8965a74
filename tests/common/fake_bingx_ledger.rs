//! BingX's `GET /openApi/swap/v2/user/income` ("Get Account Profit and Loss Fund
//! Flow", bingx-api.github.io/docs): funding settlements (`FUNDING_FEE`) and, from
//! the fills, trading fees (`TRADING_FEE`) and realised profit (`REALIZED_PNL`).
//! `income` > 0 flows in, < 0 out. Rows come oldest first, at most `limit`.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::fake_bingx::{refuse, reply, SYMBOL};
use super::fake_book::{num, Book};
use super::fake_http::{Request, Response};

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// The documented `incomeType` values.
const TYPES: &[&str] = &[
    "TRANSFER",
    "REALIZED_PNL",
    "FUNDING_FEE",
    "TRADING_FEE",
    "INSURANCE_CLEAR",
    "TRIAL_FUND",
    "ADL",
    "SYSTEM_DEDUCTION",
];

struct Row {
    kind: &'static str,
    income: Decimal,
    info: &'static str,
    time: i64,
    tran_id: String,
    trade_id: String,
}

fn rows(b: &Book) -> Vec<Row> {
    let mut out: Vec<Row> = b
        .funding
        .iter()
        .map(|f| Row {
            kind: "FUNDING_FEE",
            income: f.amount,
            info: "Funding Fee",
            time: f.time_ms,
            tran_id: format!("{}_FUNDING", f.id),
            trade_id: f.id.to_string(),
        })
        .collect();
    for (i, f) in b.fills.iter().enumerate() {
        let trade = format!("{}_{i}", f.order_id);
        out.push(Row {
            kind: "TRADING_FEE",
            income: -f.fee,
            info: "Trading Fee",
            time: f.time_ms,
            tran_id: format!("{trade}_COMMISSION"),
            trade_id: trade.clone(),
        });
        if !f.realized.is_zero() {
            out.push(Row {
                kind: "REALIZED_PNL",
                income: f.realized,
                info: "Realized PNL",
                time: f.time_ms,
                tran_id: format!("{trade}_PNL"),
                trade_id: trade,
            });
        }
    }
    out.sort_by_key(|r| r.time);
    out
}

/// `symbol`, `incomeType`, `startTime`, `endTime` (only the last 7 days when
/// neither is sent) and `limit` (default 100, at most 1000), as documented.
pub fn income(b: &mut Book, req: &Request) -> Response {
    let kind = req.param("incomeType");
    if kind.is_some_and(|k| !TYPES.contains(&k)) {
        return refuse(b, req, 109400, "incomeType invalid");
    }
    let time = |k: &str| req.param(k).map(|v| v.parse::<i64>().ok());
    let (start, end) = match (time("startTime"), time("endTime")) {
        (Some(None), _) | (_, Some(None)) => {
            return refuse(b, req, 109400, "startTime or endTime invalid")
        }
        (None, None) => (Some(b.server_ms() - WEEK_MS), None),
        (s, e) => (s.flatten(), e.flatten()),
    };
    let limit = match req.param("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return refuse(b, req, 109400, "limit invalid: at most 1000"),
    };
    let symbol_ok = req.param("symbol").is_none_or(|s| s == SYMBOL);
    let list: Vec<Value> = rows(b)
        .into_iter()
        .filter(|r| symbol_ok && kind.is_none_or(|k| k == r.kind))
        .filter(|r| start.is_none_or(|s| r.time >= s) && end.is_none_or(|e| r.time <= e))
        .take(limit)
        .map(|r| {
            json!({"symbol": SYMBOL, "incomeType": r.kind, "income": num(r.income),
                "asset": "USDT", "info": r.info, "time": r.time, "tranId": r.tran_id,
                "tradeId": r.trade_id})
        })
        .collect();
    reply(0, "", json!(list))
}
