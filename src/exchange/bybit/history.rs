//! The account's fills and funding settlements since a moment, read in the windows
//! Bybit allows: both lists take `startTime`/`endTime` at most 7 days apart and
//! keep 2 years (docs/v5/order/execution, docs/v5/account/transaction-log), so a
//! cycle of any length is walked window by window, each window page by page.

use super::types::{LogEntry, RawExecution};
use super::{linear, pair, parse, Bybit};
use crate::exchange::rest::{self, DAY_MS};
use crate::exchange::{ExchangeError, Execution, FundingPayment};

/// The widest `endTime - startTime` both endpoints accept.
const WINDOW_MS: i64 = 7 * DAY_MS;
/// How far back both keep their records.
const KEPT_MS: i64 = 2 * 365 * DAY_MS;

fn windows(since: i64, now: i64) -> Vec<(i64, i64)> {
    rest::windows(since, now + rest::CLOCK_MARGIN_MS, WINDOW_MS, KEPT_MS)
}

/// Fills on `symbol` at or after `since_ms`, oldest first.
pub fn executions(x: &Bybit, symbol: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError> {
    let mut raw: Vec<RawExecution> = Vec::new();
    for (start, end) in windows(since_ms, x.api.now_ms()) {
        let mut q = linear(symbol)?;
        q.extend([
            ("startTime", start.to_string()),
            ("endTime", end.to_string()),
            ("limit", "100".into()),
        ]);
        raw.extend(x.pages::<RawExecution>("executions", "/v5/execution/list", &q)?);
    }
    let want = pair(symbol)?;
    let mut out = Vec::with_capacity(raw.len());
    let mine = |e: &&RawExecution| e.symbol == want && parse::is_fill(e) && e.exec_time >= since_ms;
    for e in raw.iter().filter(mine) {
        out.push(parse::execution(e)?);
    }
    // Newest first per page and window: put them in time order, each once.
    out.sort_by(|a, b| (a.time_ms, &a.exec_id).cmp(&(b.time_ms, &b.exec_id)));
    out.dedup_by(|a, b| a.exec_id == b.exec_id);
    Ok(out)
}

/// Funding settlements on `symbol` at or after `since_ms`, oldest first: the
/// transaction log's `SETTLEMENT` entries (USDT perpetual funding) of the
/// symbol's base coin, kept to the symbol itself.
pub fn funding(
    x: &Bybit,
    symbol: &str,
    since_ms: i64,
) -> Result<Vec<FundingPayment>, ExchangeError> {
    let (base, quote) = rest::split_symbol(symbol)?;
    let want = pair(symbol)?;
    let mut rows: Vec<LogEntry> = Vec::new();
    for (start, end) in windows(since_ms, x.api.now_ms()) {
        let q = [
            ("accountType", "UNIFIED".to_string()),
            ("category", "linear".into()),
            ("currency", quote.to_string()),
            ("baseCoin", base.to_string()),
            ("type", "SETTLEMENT".into()),
            ("startTime", start.to_string()),
            ("endTime", end.to_string()),
            ("limit", "50".into()),
        ];
        rows.extend(x.pages::<LogEntry>("transaction log", "/v5/account/transaction-log", &q)?);
    }
    let mut out: Vec<FundingPayment> = rows
        .iter()
        .filter(|r| r.kind == "SETTLEMENT" && r.symbol == want && r.transaction_time >= since_ms)
        .map(|r| parse::funding(r, symbol))
        .collect();
    out.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}
