//! The bot's reason codes in words (docs/bots.md, Stops and closes): why a bot
//! stopped and how a cycle closed. The pages render them, and hand the same tables
//! to the page script (`data-words`) so what it writes while polling matches.

use serde_json::{json, Value};

/// `stop_reason` of a stopped bot.
const STOP_REASONS: [(&str, &str); 7] = [
    ("user", "stopped by you"),
    ("admin", "stopped by an administrator"),
    ("error", "stopped by an error"),
    ("stop_loss", "the stop-loss closed the cycle"),
    ("closed_outside", "the position was closed outside the bot"),
    ("liquidated", "the exchange liquidated the position"),
    ("after_cycle", "stopped after its cycle, as asked"),
];

/// `close_reason` of a closed cycle.
const CLOSE_REASONS: [(&str, &str); 6] = [
    ("take_profit", "take profit"),
    ("trailing_take_profit", "trailing take profit"),
    ("stop_loss", "stop loss"),
    ("outside", "closed outside the bot"),
    ("liquidated", "liquidated"),
    ("manual", "closed on stop"),
];

/// Event kinds (docs/bots.md, Events) as a reader says them.
const EVENT_KINDS: [(&str, &str); 36] = [
    ("started", "Started"),
    ("resumed", "Resumed after a restart"),
    ("new_cycle", "New cycle"),
    ("stopping", "Stopping"),
    ("stopping_after_cycle", "Stopping after this cycle"),
    ("stopped", "Stopped"),
    ("recovered", "Recovered"),
    ("entry", "Entered"),
    ("fill", "Order filled"),
    ("leg_placed", "Ladder leg placed"),
    ("leg_filled", "Ladder leg filled"),
    ("leg_refused", "Ladder leg refused"),
    ("leg_skipped", "Ladder leg skipped"),
    ("take_profit", "Take-profit placed"),
    ("stop_placed", "Stop-loss placed"),
    ("stop_adopted", "Stop-loss taken over"),
    ("stop_not_on_exchange", "Stop-loss watched by the bot"),
    ("stop_loss", "Stop-loss hit"),
    ("stop_loss_market", "Stop-loss closed at market"),
    ("trailing_started", "Trailing take-profit started"),
    ("trailing_close", "Trailing take-profit closed"),
    ("cycle_closed", "Cycle closed"),
    ("cycle_reopened", "Cycle resumed"),
    ("cycle_void", "Cycle void"),
    ("closed_outside", "Closed outside the bot"),
    ("liquidated", "Liquidated"),
    ("funding", "Funding"),
    ("funding_unread", "Funding not read"),
    ("config_applied", "New settings applied"),
    ("order_cancelled", "Order cancelled"),
    ("order_unknown", "Unknown order"),
    ("exit_refused", "Close refused"),
    ("position_mismatch", "Position differs"),
    ("safety_stop", "Safety stop"),
    ("error", "Error"),
    ("retry", "Retrying"),
];

/// Kinds that lose money or need attention (red).
const BAD_EVENTS: [&str; 9] = [
    "stop_loss",
    "stop_loss_market",
    "liquidated",
    "closed_outside",
    "safety_stop",
    "error",
    "leg_refused",
    "exit_refused",
    "position_mismatch",
];

fn lookup(table: &[(&str, &'static str)], code: &str) -> String {
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.replace('_', " "), |(_, w)| (*w).to_string())
}

/// Why the bot stopped; a code this page does not know is shown as itself.
pub fn stop_reason(code: &str) -> String {
    lookup(&STOP_REASONS, code)
}

/// How a cycle closed; `-` for cycles recorded before reasons were kept.
pub fn close_reason(code: Option<&str>) -> String {
    code.map_or_else(|| "-".into(), |c| lookup(&CLOSE_REASONS, c))
}

/// An event's kind in words; an unknown kind is its code with spaces, capitalised.
pub fn event_kind(code: &str) -> String {
    let text = lookup(&EVENT_KINDS, code);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// The CSS tone of an event: `neg` for kinds that lose money or need attention,
/// a closed cycle by the sign of its PnL, else empty.
pub fn event_tone(code: &str, data: Option<&Value>) -> &'static str {
    if BAD_EVENTS.contains(&code) {
        return "neg";
    }
    let pnl = data
        .filter(|_| code == "cycle_closed")
        .and_then(|d| crate::money::from_json(&d["pnl"]));
    match pnl {
        Some(p) if p.is_sign_positive() && !p.is_zero() => "pos",
        Some(p) if p.is_sign_negative() && !p.is_zero() => "neg",
        _ => "",
    }
}

/// Both tables as one JSON object for the page script.
pub fn script_tables() -> String {
    let map = |t: &[(&str, &str)]| -> Value {
        t.iter()
            .map(|(c, w)| ((*c).to_string(), Value::from(*w)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({"stop": map(&STOP_REASONS), "close": map(&CLOSE_REASONS),
           "event": map(&EVENT_KINDS), "bad": BAD_EVENTS.to_vec()})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_words() {
        assert_eq!(stop_reason("stop_loss"), "the stop-loss closed the cycle");
        assert_eq!(stop_reason("something_new"), "something new");
        assert_eq!(
            close_reason(Some("trailing_take_profit")),
            "trailing take profit"
        );
        assert_eq!(close_reason(None), "-");
        assert_eq!(event_kind("cycle_closed"), "Cycle closed");
        assert_eq!(event_kind("brand_new"), "Brand new");
        assert_eq!(event_tone("liquidated", None), "neg");
        let won = json!({"pnl": 1.5});
        assert_eq!(event_tone("cycle_closed", Some(&won)), "pos");
        assert_eq!(
            event_tone("cycle_closed", Some(&json!({"pnl": -0.2}))),
            "neg"
        );
        assert_eq!(event_tone("started", None), "");
        assert_eq!(
            event_kind("stopping_after_cycle"),
            "Stopping after this cycle"
        );
        let t: Value = serde_json::from_str(&script_tables()).unwrap();
        assert_eq!(t["close"]["liquidated"], "liquidated");
        assert_eq!(t["stop"]["user"], "stopped by you");
    }
}
