//! The paper exchange's catalog: which symbols it lists, with what tick, step and
//! minimum quantity, and where a new market's price starts.
//!
//! The three majors get realistic increments; any other `XXX/USDT` is listed on
//! demand with generic ones, so a user can try any symbol without an operator
//! having to configure it. Everything else is not a USDT perpetual and is refused.

use rust_decimal::Decimal;

use crate::bots::ladder::Market;
use crate::money::dec;

/// A symbol as listed: its increments, its leverage limits and the price a new
/// market opens at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Listing {
    pub market: Market,
    pub start_price: Decimal,
    /// The highest leverage the market allows.
    pub max_leverage: u32,
    /// The share of a position's value below which its margin may not fall
    /// (isolated margin): what sets the liquidation price. The majors' first-tier
    /// rates as Bybit publishes them; the generic rate of smaller markets.
    pub maintenance_margin_rate: Decimal,
}

/// The maintenance margin rate of the generic (non-major) listings.
pub(super) const GENERIC_MMR: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// The highest leverage of the generic listings (50 × 1 % = half the margin).
pub(super) const GENERIC_MAX_LEVERAGE: u32 = 50;

/// Longest base asset accepted for on-demand listings: long enough for every real
/// ticker, short enough that a typo cannot grow the catalog with junk.
const MAX_BASE_LEN: usize = 20;

const fn listed(
    (tick, step, min_qty): (Decimal, Decimal, Decimal),
    start_price: Decimal,
    max_leverage: u32,
    maintenance_margin_rate: Decimal,
) -> Listing {
    Listing {
        max_leverage,
        maintenance_margin_rate,
        market: Market {
            tick,
            step,
            min_qty,
            min_notional: Decimal::ZERO,
        },
        start_price,
    }
}

/// The listing of `symbol`, or `None` when the paper exchange does not trade it.
pub(super) fn listing(symbol: &str) -> Option<Listing> {
    match symbol {
        "BTC/USDT" => {
            let inc = (dec!(0.1), dec!(0.001), dec!(0.001));
            return Some(listed(inc, dec!(60000), 100, dec!(0.005)));
        }
        "ETH/USDT" => {
            let inc = (dec!(0.01), dec!(0.01), dec!(0.01));
            return Some(listed(inc, dec!(3000), 100, dec!(0.005)));
        }
        "SOL/USDT" => {
            let inc = (dec!(0.01), dec!(0.1), dec!(0.1));
            return Some(listed(inc, dec!(150), 75, dec!(0.01)));
        }
        _ => {}
    }
    let base = symbol.strip_suffix("/USDT")?;
    let valid = !base.is_empty()
        && base.len() <= MAX_BASE_LEN
        && base
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let inc = (dec!(0.01), dec!(0.001), dec!(0.001));
    valid.then_some(listed(inc, dec!(100), GENERIC_MAX_LEVERAGE, GENERIC_MMR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_have_their_own_increments() {
        let btc = listing("BTC/USDT").unwrap();
        assert_eq!(
            btc.market,
            Market {
                tick: dec!(0.1),
                step: dec!(0.001),
                min_qty: dec!(0.001),
                min_notional: Decimal::ZERO,
            }
        );
        assert_eq!(btc.start_price, dec!(60000));
        assert_eq!(btc.max_leverage, 100);
        assert_eq!(btc.maintenance_margin_rate, dec!(0.005));
        assert_eq!(listing("ETH/USDT").unwrap().market.step, dec!(0.01));
        assert_eq!(listing("SOL/USDT").unwrap().market.min_qty, dec!(0.1));
        assert_eq!(listing("SOL/USDT").unwrap().start_price, dec!(150));
    }

    #[test]
    fn other_usdt_symbols_are_listed_generically() {
        let doge = listing("DOGE/USDT").unwrap();
        assert_eq!(
            doge.market,
            Market {
                tick: dec!(0.01),
                step: dec!(0.001),
                min_qty: dec!(0.001),
                min_notional: Decimal::ZERO,
            }
        );
        assert_eq!(doge.start_price, dec!(100));
        assert_eq!(doge.max_leverage, 50);
        assert_eq!(doge.maintenance_margin_rate, dec!(0.01));
        assert!(listing("1INCH/USDT").is_some());
    }

    #[test]
    fn everything_else_is_refused() {
        for s in [
            "btc/usdt",
            "/USDT",
            "BTC/USD",
            "BTCUSDT",
            "BT-C/USDT",
            "BTC/USDT ",
            "",
        ] {
            assert_eq!(listing(s), None, "{s:?}");
        }
        assert_eq!(
            listing(&format!("{}/USDT", "A".repeat(MAX_BASE_LEN + 1))),
            None
        );
    }
}
