//! Values as the pages show them: the bot status, trades and events turned into
//! display text once, so templates only place strings.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::words;
use crate::money;
use crate::store::bots::Event;
use crate::store::trades::Trade;

/// `2026-11-29 14:05:09 UTC`: with seconds, so events of one minute keep their
/// order. The page script rewrites every `<time data-unix>` in the browser's time
/// zone; this text is what a page without scripts shows.
pub fn time(unix_s: i64) -> String {
    match jiff::Timestamp::from_second(unix_s) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
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
    /// The take-profit price of the open position, `-` when flat.
    pub take_profit: String,
    /// The stop-loss price and who holds it, `-` when flat or off.
    pub stop_loss: String,
    /// A "stop after this cycle" is pending.
    pub after_cycle: bool,
    /// A configuration change waits for the next cycle.
    pub pending_config: bool,
    /// Why a stopped bot ended, in words; empty while it runs.
    pub stop_reason: String,
    /// The end of a cooldown, empty when there is none.
    pub next_entry: String,
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
            take_profit: money::from_json(&v["take_profit_price"]).map_or("-".into(), num),
            stop_loss: stop_loss(v),
            after_cycle: v["after_cycle"].as_bool().unwrap_or(false),
            pending_config: v["pending_config"].as_bool().unwrap_or(false),
            stop_reason: v["stop_reason"]
                .as_str()
                .map(words::stop_reason)
                .unwrap_or_default(),
            next_entry: v["next_entry_at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
        }
    }
}

/// `59000.5, on the exchange` or `…, watched by the bot` (the exchange did not take
/// the stop, docs/bots.md, Strategy); the page script writes the same text.
fn stop_loss(v: &Value) -> String {
    let Some(price) = money::from_json(&v["stop_loss_price"]) else {
        return "-".into();
    };
    let holder = if v["stop_on_exchange"].as_bool().unwrap_or(false) {
        "on the exchange"
    } else {
        "watched by the bot"
    };
    format!("{}, {holder}", num(price))
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
    pub closed_unix: i64,
    pub symbol: String,
    pub side: String,
    pub size: String,
    pub entry: String,
    pub exit: String,
    pub pnl: String,
    pub tone: &'static str,
    /// How the cycle closed, in words.
    pub reason: String,
    /// Funding received (+) or paid (−), included in `pnl`.
    pub funding: String,
}

impl From<&Trade> for TradeRow {
    fn from(t: &Trade) -> TradeRow {
        TradeRow {
            closed: time(t.closed_at),
            closed_unix: t.closed_at,
            symbol: t.symbol.clone(),
            side: t.side.clone(),
            size: num(t.size),
            entry: num(t.avg_entry),
            exit: num(t.exit_price),
            pnl: signed(t.pnl),
            tone: tone(t.pnl),
            reason: words::close_reason(t.close_reason.as_deref()),
            funding: signed(t.funding),
        }
    }
}

pub struct EventRow {
    pub at: String,
    pub unix: i64,
    /// The kind in words (`cycle_closed` → `Cycle closed`).
    pub kind: String,
    /// `pos` / `neg` / `` for events that gain, lose or just inform.
    pub tone: &'static str,
    pub message: String,
}

impl From<&Event> for EventRow {
    fn from(e: &Event) -> EventRow {
        EventRow {
            at: time(e.created_at),
            unix: e.created_at,
            kind: words::event_kind(&e.kind),
            tone: words::event_tone(&e.kind, e.data.as_ref()),
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
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
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
        assert_eq!((s.take_profit.as_str(), s.stop_loss.as_str()), ("-", "-"));
        assert!(s.stop_reason.is_empty() && s.next_entry.is_empty());
    }

    #[test]
    fn status_card_trading_fields() {
        let v = serde_json::json!({"status": "running", "take_profit_price": 95475.5,
            "stop_loss_price": 90250, "stop_on_exchange": true, "after_cycle": true,
            "pending_config": true, "stop_reason": null,
            "next_entry_at": "2026-11-29T14:05:30Z"});
        let s = Status::from_json(&v);
        assert_eq!(s.take_profit, "95475.5");
        assert_eq!(s.stop_loss, "90250, on the exchange");
        assert!(s.after_cycle && s.pending_config);
        assert_eq!(s.next_entry, "2026-11-29 14:05:30 UTC");
        let watched = serde_json::json!({"stop_loss_price": 1.5, "stop_on_exchange": false,
            "stop_reason": "closed_outside"});
        let s = Status::from_json(&watched);
        assert_eq!(s.stop_loss, "1.5, watched by the bot");
        assert_eq!(s.stop_reason, "the position was closed outside the bot");
    }
}
