//! Money at the edges. Prices, quantities, fees, balances and PnL are
//! `rust_decimal::Decimal` everywhere inside Blitz; this module is the one place
//! where they are read from text (exchange answers, user input, JSON numbers) and
//! written out (JSON numbers, event text, storage), so no binary-float artefact such
//! as `0.009000000000000001` reaches a user. See docs/bots.md and docs/http-api.md.

pub mod number;
pub mod sql;

use rust_decimal::prelude::ToPrimitive;
pub use rust_decimal::{dec, Decimal, RoundingStrategy};
use serde_json::Value;

/// Text that is not a decimal number (or is too large for one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal number: {0:?}")]
pub struct ParseError(pub String);

/// Longest input echoed back in a `ParseError`.
const MAX_ECHO: usize = 40;

/// Parses a decimal as exchanges and users write it: `0.009`, `-1.5`, `30000`, and
/// the scientific form some APIs use (`1e-8`). The result is normalised (no
/// trailing zeros), so equal amounts print alike.
pub fn parse(s: &str) -> Result<Decimal, ParseError> {
    let t = s.trim();
    let parsed = if t.contains(['e', 'E']) {
        Decimal::from_scientific(t)
    } else {
        t.parse::<Decimal>()
    };
    parsed.map(|d| d.normalize()).map_err(|_| {
        let mut echo: String = t.chars().take(MAX_ECHO).collect();
        if t.chars().count() > MAX_ECHO {
            echo.push('…');
        }
        ParseError(echo)
    })
}

/// A JSON number's decimal value, read from its text (`0.1` is 0.1, not the
/// binary float nearest to it); `None` for anything but a number.
pub fn from_json(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// A decimal as a JSON number. The value goes through `f64`, whose shortest
/// round-trip form (what serde_json prints) equals the decimal for up to 15
/// significant digits, so `0.009` prints `0.009`. Longer values (an average of
/// 28 digits) print as the nearest float, 15–17 digits: exact enough to show,
/// never for bookkeeping, which reads the stored text.
pub fn json(d: Decimal) -> Value {
    d.normalize()
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// `json` of an optional amount: `null` when absent.
pub fn json_opt(d: Option<Decimal>) -> Value {
    d.map_or(Value::Null, json)
}

/// A decimal for messages: normalised, so `0.0090` reads `0.009`.
pub fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Decimals kept for PnL and fees: finer than any exchange's fee, and short enough
/// that a quotient (an average price times a quantity) does not carry 28 digits.
pub const PNL_DP: u32 = 8;

/// PnL or a fee rounded to `PNL_DP` decimals (half away from zero), normalised.
pub fn pnl(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(PNL_DP, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// For statistics only (a win rate, a chart's scale): never for an amount that is
/// stored, compared or sent to an exchange.
pub fn to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_what_exchanges_and_users_write() {
        assert_eq!(parse("0.009").unwrap(), dec!(0.009));
        assert_eq!(parse(" 30000.50 ").unwrap().to_string(), "30000.5");
        assert_eq!(parse("-1.5").unwrap(), dec!(-1.5));
        assert_eq!(parse("1e-8").unwrap(), dec!(0.00000001));
        assert_eq!(parse("2.5E3").unwrap(), dec!(2500));
        for bad in ["", "abc", "1.2.3", "NaN", "inf", "1e999", "--1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let long = "x".repeat(100);
        assert!(parse(&long).unwrap_err().0.chars().count() <= MAX_ECHO + 1);
    }

    #[test]
    fn json_numbers_are_read_from_their_text() {
        assert_eq!(from_json(&json!(0.1)), Some(dec!(0.1)));
        assert_eq!(from_json(&json!(5)), Some(dec!(5)));
        assert_eq!(from_json(&json!(-2.25)), Some(dec!(-2.25)));
        assert_eq!(from_json(&json!("0.1")), None);
        assert_eq!(from_json(&Value::Null), None);
    }

    #[test]
    fn json_and_text_print_without_artefacts() {
        assert_eq!(json(dec!(0.009)).to_string(), "0.009");
        assert_eq!(json(dec!(0.0090)).to_string(), "0.009");
        assert_eq!(json(dec!(30000.1)).to_string(), "30000.1");
        assert_eq!(json(dec!(-12.345678)).to_string(), "-12.345678");
        assert_eq!(json(dec!(5)), json!(5.0));
        assert_eq!(json_opt(None), Value::Null);
        assert_eq!(text(dec!(0.00900)), "0.009");
        assert_eq!(text(dec!(30000.00)), "30000");
        // 15 significant digits survive the float exactly.
        assert_eq!(json(dec!(123456.789012345)).to_string(), "123456.789012345");
    }

    #[test]
    fn three_trades_of_0_003_make_0_009() {
        let qty = dec!(0.003) + dec!(0.003) + dec!(0.003);
        assert_eq!(qty, dec!(0.009));
        assert_eq!(json(qty).to_string(), "0.009");
        assert_eq!(text(qty), "0.009");
        // What f64 made of it, and why this module exists.
        assert_ne!((0.003f64 + 0.003 + 0.003).to_string(), "0.009");
    }

    #[test]
    fn pnl_keeps_eight_decimals() {
        assert_eq!(pnl(dec!(1.123456785)), dec!(1.12345679));
        assert_eq!(pnl(dec!(-1.123456785)), dec!(-1.12345679));
        assert_eq!(pnl(dec!(2.50000000)).to_string(), "2.5");
        assert_eq!(to_f64(dec!(0.5)), 0.5);
    }
}
