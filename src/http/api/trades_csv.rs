//! `GET /api/trades.csv` (docs/http-api.md, Trades): every closed cycle of the
//! caller's bots (or one, `?bot_id=N`), newest first, as a spreadsheet reads it.
//! Amounts are the stored exact decimals; times are RFC 3339 in UTC.

use std::fmt::Write as _;

use blitz_worker::Response;

use super::pnl::bot_filter;
use super::ApiResult;
use crate::http::ctx::Ctx;
use crate::money;
use crate::store::trades::{self, Trade};

/// Rows read per query: the export pages through the table, never holding a
/// read transaction for the whole history.
const PAGE: u32 = 1000;

pub const HEADER: &str = "id,bot_id,symbol,side,size,avg_entry,exit_price,pnl,fees,funding,\
                          close_reason,cycle,opened_at,closed_at";

pub fn export(ctx: &mut Ctx<'_, '_>) -> ApiResult {
    let uid = ctx.identity.user_id().unwrap_or_default();
    let bot = bot_filter(ctx, uid)?;
    let conn = ctx.db.conn()?;
    let mut out = String::from(HEADER);
    out.push_str("\r\n");
    let mut before = None;
    loop {
        let rows = trades::list(&conn, uid, bot, PAGE, before)?;
        for t in &rows {
            row(&mut out, t);
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE as usize => before = Some(last.id),
            _ => break,
        }
    }
    Ok(Response::new(200)
        .header("Content-Type", "text/csv; charset=utf-8")
        .header(
            "Content-Disposition",
            "attachment; filename=\"blitz-trades.csv\"",
        )
        .header("Cache-Control", "no-store")
        .body(out.into_bytes()))
}

/// One trade as a CSV line (RFC 4180).
fn row(out: &mut String, t: &Trade) {
    let d = |v| money::text(v);
    let _ = write!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
        t.id,
        t.bot_id.map_or(String::new(), |b| b.to_string()),
        cell(&t.symbol),
        cell(&t.side),
        d(t.size),
        d(t.avg_entry),
        d(t.exit_price),
        d(t.pnl),
        d(t.fees),
        d(t.funding),
        cell(t.close_reason.as_deref().unwrap_or("")),
        t.cycle,
        rfc3339(t.opened_at),
        rfc3339(t.closed_at),
    );
}

/// A text field, quoted when it holds a separator, a quote or a line break.
/// Today's symbols, sides and reasons are plain codes; a row must still stay one
/// row if that ever changes.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or(String::new(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn text_fields_are_quoted_only_when_needed() {
        assert_eq!(cell("BTC/USDT"), "BTC/USDT");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
    }
}
