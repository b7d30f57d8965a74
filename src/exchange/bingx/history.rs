//! The account's fills and funding settlements since a moment. Fills:
//! `allFillOrders` ("Trade Fill History", `startTs`/`endTs` required, read in
//! windows of 7 days), with the client id of each fill's order (BingX's fills do
//! not carry it) and the liquidation flag from `forceOrders` ("Query forced
//! liquidation orders triggered by liquidation (LIQUIDATION) or auto-deleveraging
//! (ADL)"). Funding: `user/income` with `incomeType=FUNDING_FEE` ("Only the last 3
//! months of data is retained"), walked by time since it has no cursor.

use std::collections::{HashMap, HashSet};

use super::orders;
use super::parse;
use super::types::{Fill, Income, RawOrder};
use super::Bingx;
use crate::exchange::rest::{self, DAY_MS};
use crate::exchange::{ExchangeError, Execution, FundingPayment};

/// Fills older than this are outside one `allFillOrders` request's window.
const FILL_WINDOW_MS: i64 = 7 * DAY_MS;
/// What BingX keeps of an account's history.
const KEPT_MS: i64 = 90 * DAY_MS;
/// Rows of one `user/income` answer (its maximum).
pub const INCOME_LIMIT: usize = 1000;
/// Income pages one call walks at most.
const MAX_PAGES: usize = 100;

/// Fills on `symbol` at or after `since_ms`, oldest first.
pub fn executions(x: &Bingx, symbol: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError> {
    let want = super::pair(symbol)?;
    let mut fills: Vec<Fill> = Vec::new();
    let mut forced: HashSet<String> = HashSet::new();
    for (start, end) in rest::windows(
        since_ms,
        x.api.now_ms() + rest::CLOCK_MARGIN_MS,
        FILL_WINDOW_MS,
        KEPT_MS,
    ) {
        let q = [
            ("tradingUnit", "COIN".to_string()),
            ("startTs", start.to_string()),
            ("endTs", end.to_string()),
        ];
        let page: Vec<Fill> = x.call(
            "fills",
            "GET",
            "/openApi/swap/v2/trade/allFillOrders",
            &q,
            "fill_orders",
        )?;
        fills.extend(
            page.into_iter()
                .filter(|f| f.symbol == want && f.time >= since_ms),
        );
        forced.extend(force_orders(x, &want, start, end)?);
    }
    fills.sort_by(|a, b| (a.time, &a.trade_id).cmp(&(b.time, &b.trade_id)));
    fills.dedup_by(|a, b| a.trade_id == b.trade_id);
    let clients = client_ids(x, symbol, &fills)?;
    fills
        .iter()
        .map(|f| {
            let client = clients.get(&f.order_id).map_or("", String::as_str);
            parse::execution(f, client, forced.contains(&f.order_id))
        })
        .collect()
}

/// Ids of the forced closes (liquidation, ADL) on `want` in `[start, end]`.
fn force_orders(x: &Bingx, want: &str, start: i64, end: i64) -> Result<Vec<String>, ExchangeError> {
    let q = [
        ("symbol", want.to_string()),
        ("startTime", start.to_string()),
        ("endTime", end.to_string()),
        ("limit", "100".into()),
    ];
    let list: Vec<RawOrder> = x.call(
        "forced orders",
        "GET",
        "/openApi/swap/v2/trade/forceOrders",
        &q,
        "orders",
    )?;
    list.iter()
        .map(|o| super::types::order_id("forced order", &o.order_id_text, &o.order_id))
        .collect()
}

/// The client id of each order the fills belong to, asked once per order (a
/// cycle has a handful); orders BingX no longer knows, or that have none, are
/// left out.
fn client_ids(
    x: &Bingx,
    symbol: &str,
    fills: &[Fill],
) -> Result<HashMap<String, String>, ExchangeError> {
    let mut out = HashMap::new();
    for f in fills {
        if out.contains_key(&f.order_id) {
            continue;
        }
        let client = orders::find(x, symbol, ("orderId", &f.order_id))?
            .map(|o| o.client_id)
            .unwrap_or_default();
        out.insert(f.order_id.clone(), client);
    }
    Ok(out)
}

/// Funding settlements on `symbol` at or after `since_ms`, oldest first. The
/// answer is oldest first and at most `limit` rows: a full page is followed by one
/// starting at its last row's time (rows of that millisecond come twice and are
/// kept once, by `tranId`).
pub fn funding(
    x: &Bingx,
    symbol: &str,
    since_ms: i64,
) -> Result<Vec<FundingPayment>, ExchangeError> {
    let want = super::pair(symbol)?;
    let now = x.api.now_ms();
    let mut start = since_ms.max(now - KEPT_MS);
    let mut rows: Vec<Income> = Vec::new();
    for _ in 0..MAX_PAGES {
        let q = [
            ("symbol", want.clone()),
            ("incomeType", "FUNDING_FEE".to_string()),
            ("startTime", start.to_string()),
            ("endTime", now.to_string()),
            ("limit", INCOME_LIMIT.to_string()),
        ];
        let page: Vec<Income> = x.call("income", "GET", "/openApi/swap/v2/user/income", &q, "")?;
        let full = page.len() >= INCOME_LIMIT;
        let last = page.last().map(|r| r.time);
        rows.extend(page);
        match last {
            Some(t) if full => start = if t > start { t } else { start + 1 },
            _ => break,
        }
    }
    let mut out: Vec<FundingPayment> = rows
        .iter()
        .filter(|r| r.income_type == "FUNDING_FEE" && r.symbol == want && r.time >= since_ms)
        .map(|r| FundingPayment {
            id: r.tran_id.clone(),
            symbol: symbol.to_string(),
            amount: r.income,
            time_ms: r.time,
            // BingX's income records name no position side.
            side: None,
        })
        .collect();
    out.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}
