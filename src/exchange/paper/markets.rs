//! The paper exchange's catalog: which symbols it lists, with what tick, step and
//! minimum quantity, and where a new market's price starts.
//!
//! The three majors get realistic increments; any other `XXX/USDT` is listed on
//! demand with generic ones, so a user can try any symbol without an operator
//! having to configure it. Everything else is not a USDT perpetual and is refused.

use crate::bots::ladder::Market;

/// A symbol as listed: its increments and the price a new market opens at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Listing {
    pub market: Market,
    pub start_price: f64,
}

/// Longest base asset accepted for on-demand listings: long enough for every real
/// ticker, short enough that a typo cannot grow the catalog with junk.
const MAX_BASE_LEN: usize = 20;

const fn listed(tick: f64, step: f64, min_qty: f64, start_price: f64) -> Listing {
    Listing {
        market: Market {
            tick,
            step,
            min_qty,
            min_notional: 0.0,
        },
        start_price,
    }
}

/// The listing of `symbol`, or `None` when the paper exchange does not trade it.
pub(super) fn listing(symbol: &str) -> Option<Listing> {
    match symbol {
        "BTC/USDT" => return Some(listed(0.1, 0.001, 0.001, 60_000.0)),
        "ETH/USDT" => return Some(listed(0.01, 0.01, 0.01, 3_000.0)),
        "SOL/USDT" => return Some(listed(0.01, 0.1, 0.1, 150.0)),
        _ => {}
    }
    let base = symbol.strip_suffix("/USDT")?;
    let valid = !base.is_empty()
        && base.len() <= MAX_BASE_LEN
        && base
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    valid.then_some(listed(0.01, 0.001, 0.001, 100.0))
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
                tick: 0.1,
                step: 0.001,
                min_qty: 0.001,
                min_notional: 0.0,
            }
        );
        assert_eq!(btc.start_price, 60_000.0);
        assert_eq!(listing("ETH/USDT").unwrap().market.step, 0.01);
        assert_eq!(listing("SOL/USDT").unwrap().market.min_qty, 0.1);
        assert_eq!(listing("SOL/USDT").unwrap().start_price, 150.0);
    }

    #[test]
    fn other_usdt_symbols_are_listed_generically() {
        let doge = listing("DOGE/USDT").unwrap();
        assert_eq!(
            doge.market,
            Market {
                tick: 0.01,
                step: 0.001,
                min_qty: 0.001,
                min_notional: 0.0,
            }
        );
        assert_eq!(doge.start_price, 100.0);
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
