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

/// Both tables as one JSON object for the page script.
pub fn script_tables() -> String {
    let map = |t: &[(&str, &str)]| -> Value {
        t.iter()
            .map(|(c, w)| ((*c).to_string(), Value::from(*w)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({"stop": map(&STOP_REASONS), "close": map(&CLOSE_REASONS)}).to_string()
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
        let t: Value = serde_json::from_str(&script_tables()).unwrap();
        assert_eq!(t["close"]["liquidated"], "liquidated");
        assert_eq!(t["stop"]["user"], "stopped by you");
    }
}
