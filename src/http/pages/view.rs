//! Values as the pages show them: the bot status, trades and events turned into
//! display text once, so templates only place strings.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::money;
use crate::store::bots::Event;
use crate::store::trades::Trade;

/// `2026-11-29 14:05 UTC`.
pub fn time(unix_s: i64) -> String {
    match jiff::Timestamp::from_second(unix_s) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => "-".into(),
    }
}

/// `1h 02m 03s`, `4m 05s`, `7s`; the same rule as the page script's ticking clock.
pub fn uptime(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m {s:02}s"),
        _ => format!("{d}d {h}h {m:02}m"),
    }
}

/// A signed amount with two decimals, e.g. `+1.25` or `-0.40`.
pub fn signed(v: Decimal) -> String {
    let cents = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let sign = if cents.is_sign_negative() && !cents.is_zero() {
        "-"
    } else {
        "+"
    };
    format!("{sign}{:.2}", cents.abs())
}

/// `pos` / `neg` / `zero`, the CSS class of an amount.
pub fn tone(v: Decimal) -> &'static str {
    if v > Decimal::ZERO {
        "pos"
    } else if v < Decimal::ZERO {
        "neg"
    } else {
        "zero"
    }
}

/// A price or size: up to 8 decimals, trailing zeros cut.
pub fn num(v: Decimal) -> String {
    money::text(money::pnl(v))
}

/// The bot status object as the dashboard card shows it.
pub struct Status {
    pub status: String,
    pub running: bool,
    pub message: String,
    pub uptime_s: i64,
    pub uptime: String,
    pub market: String,
    pub cycle: i64,
    pub position: String,
    pub open_orders: i64,
    pub last_error: String,
}

impl Status {
    pub fn from_json(v: &Value) -> Status {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let uptime_s = v["uptime"].as_i64().unwrap_or(0);
        Status {
            status: s("status"),
            running: v["running"].as_bool().unwrap_or(false),
            message: s("message"),
            uptime_s,
            uptime: uptime(uptime_s),
            market: format!("{} · {} · {}", s("exchange"), s("symbol"), s("side")),
            cycle: v["cycle"].as_i64().unwrap_or(1),
            position: position(&v["position"]),
            open_orders: v["open_orders"].as_i64().unwrap_or(0),
            last_error: s("last_error"),
        }
    }
}

/// `0.0123 @ 95000.5, unrealised +1.20 USDT`, or `none`; the page script writes the
/// same text when it polls.
fn position(p: &Value) -> String {
    let (Some(size), Some(avg)) = (
        money::from_json(&p["size"]),
        money::from_json(&p["avg_entry"]),
    ) else {
        return "none".into();
    };
    let mut text = format!("{} @ {}", num(size), num(avg));
    if let Some(u) = money::from_json(&p["unrealized_pnl"]) {
        text.push_str(&format!(", unrealised {} USDT", signed(u)));
    }
    text
}

pub struct TradeRow {
    pub closed: String,
    pub symbol: String,
    pub side: String,
    pub size: String,
    pub entry: String,
    pub exit: String,
    pub pnl: String,
    pub tone: &'static str,
}

impl From<&Trade> for TradeRow {
    fn from(t: &Trade) -> TradeRow {
        TradeRow {
            closed: time(t.closed_at),
            symbol: t.symbol.clone(),
            side: t.side.clone(),
            size: num(t.size),
            entry: num(t.avg_entry),
            exit: num(t.exit_price),
            pnl: signed(t.pnl),
            tone: tone(t.pnl),
        }
    }
}

pub struct EventRow {
    pub at: String,
    pub kind: String,
    pub message: String,
}

impl From<&Event> for EventRow {
    fn from(e: &Event) -> EventRow {
        EventRow {
            at: time(e.created_at),
            kind: e.kind.clone(),
            message: e.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn formats() {
        assert_eq!(uptime(7), "7s");
        assert_eq!(uptime(245), "4m 05s");
        assert_eq!(uptime(3723), "1h 02m 03s");
        assert_eq!(uptime(90_000), "1d 1h 00m");
        assert_eq!(num(dec!(95000.5)), "95000.5");
        assert_eq!(num(Decimal::ZERO), "0");
        assert_eq!(num(dec!(0.123456789)), "0.12345679");
        assert_eq!(signed(dec!(-0.4)), "-0.40");
        assert_eq!(signed(dec!(1.005)), "+1.01");
        assert_eq!(signed(dec!(-0.001)), "+0.00");
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn status_card_text() {
        let v = serde_json::json!({"running": true, "status": "running", "uptime": 61,
            "message": "Bot is running", "exchange": "paper", "symbol": "BTC/USDT",
            "side": "long", "cycle": 2, "open_orders": 3, "last_error": null,
            "position": {"size": 0.01, "avg_entry": 95000.0, "unrealized_pnl": -1.5}});
        let s = Status::from_json(&v);
        assert_eq!(s.uptime, "1m 01s");
        assert_eq!(s.market, "paper · BTC/USDT · long");
        assert_eq!(s.position, "0.01 @ 95000, unrealised -1.50 USDT");
    }
}
