//! The ladder strategy's arithmetic, as pure functions: quantities rounded to
//! the market's step, prices to its tick, chained leg prices, take-profit and
//! stop-loss prices that follow the average entry, and PnL net of fees.
//! See docs/bots.md, Strategy.
//!
//! Percentages are the user's: `gap` is percent from the previous leg's price;
//! `take_profit` / `stop_loss` are percent of margin (ROE), so the price distance is
//! `pct / 100 / leverage`.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::dec;

/// Direction of the bot's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Long,
    Short,
}

impl Side {
    /// +1 for long, -1 for short: the sign of profit per unit of price rise.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Long => Decimal::ONE,
            Side::Short => Decimal::NEGATIVE_ONE,
        }
    }
}

/// What the exchange allows for one symbol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Market {
    /// Price increment.
    pub tick: Decimal,
    /// Quantity increment.
    pub step: Decimal,
    pub min_qty: Decimal,
    /// Smallest order value (quantity × price) the exchange takes; 0 = none.
    pub min_notional: Decimal,
}

/// `x` as a whole number of `inc`, rounded by `how`. An increment of 0 (an
/// exchange that did not say) leaves `x` as it is; so does a quotient too large
/// for a decimal.
fn to_increment(x: Decimal, inc: Decimal, how: RoundingStrategy) -> Decimal {
    if inc <= Decimal::ZERO {
        return x;
    }
    x.checked_div(inc)
        .and_then(|units| units.round_dp_with_strategy(0, how).checked_mul(inc))
        .map_or(x, |v| v.normalize())
}

/// Rounds a quantity down to the step: never more exposure than the margin buys.
pub fn floor_qty(qty: Decimal, m: &Market) -> Decimal {
    to_increment(qty, m.step, RoundingStrategy::ToNegativeInfinity)
}

/// Rounds a price to the nearest tick (a half tick rounds away from zero).
pub fn round_price(price: Decimal, m: &Market) -> Decimal {
    to_increment(price, m.tick, RoundingStrategy::MidpointAwayFromZero)
}

/// Rounds a take-profit price away from the entry: up for a long, down for a short,
/// so rounding never brings the target below the configured ROE.
pub fn round_target(price: Decimal, side: Side, m: &Market) -> Decimal {
    let how = match side {
        Side::Long => RoundingStrategy::ToPositiveInfinity,
        Side::Short => RoundingStrategy::ToNegativeInfinity,
    };
    to_increment(price, m.tick, how)
}

/// Rounds a stop-loss trigger toward the entry: up for a long (whose stop is below
/// the entry), down for a short, so rounding never lets the loss exceed the
/// configured ROE (docs/bots.md, Money).
pub fn round_stop(price: Decimal, side: Side, m: &Market) -> Decimal {
    let how = match side {
        Side::Long => RoundingStrategy::ToPositiveInfinity,
        Side::Short => RoundingStrategy::ToNegativeInfinity,
    };
    to_increment(price, m.tick, how)
}

/// Quantity bought by `margin` USDT at `leverage` and `price`, floored to the step;
/// `None` when that is below the market minimum (the leg cannot be placed).
pub fn leg_qty(margin: Decimal, leverage: u32, price: Decimal, m: &Market) -> Option<Decimal> {
    if price <= Decimal::ZERO || margin <= Decimal::ZERO {
        return None;
    }
    let raw = margin
        .checked_mul(Decimal::from(leverage))?
        .checked_div(price)?;
    let qty = floor_qty(raw, m);
    let value_ok = qty.checked_mul(price)? >= m.min_notional;
    (qty >= m.min_qty && qty > Decimal::ZERO && value_ok).then_some(qty)
}

/// `1 ± pct / 100 / leverage`, the factor a percent of margin (ROE) moves a price.
fn roe_factor(sign: Decimal, pct: Decimal, leverage: u32) -> Decimal {
    Decimal::ONE + sign * pct / dec!(100) / Decimal::from(leverage.max(1))
}

/// Prices of ladder legs 1… after an entry at `entry`: each `gaps[i]` percent beyond
/// the previous leg (below for long, above for short), rounded to the tick.
/// `gaps[0]` (the entry's) is ignored: the entry is a market order.
pub fn leg_prices(entry: Decimal, gaps: &[Decimal], side: Side, m: &Market) -> Vec<Decimal> {
    let mut prev = entry;
    gaps.iter()
        .skip(1)
        .map(|gap| {
            prev *= Decimal::ONE - side.sign() * gap / dec!(100);
            round_price(prev, m)
        })
        .collect()
}

/// Take-profit price for the average entry: `avg × (1 ± tp / 100 / leverage)`.
pub fn take_profit_price(
    avg: Decimal,
    tp_pct: Decimal,
    leverage: u32,
    side: Side,
    m: &Market,
) -> Decimal {
    round_target(avg * roe_factor(side.sign(), tp_pct, leverage), side, m)
}

/// Stop-loss price, or `None` when disabled (0): `avg × (1 ∓ sl / 100 / leverage)`,
/// rounded toward the entry (`round_stop`).
pub fn stop_loss_price(
    avg: Decimal,
    sl_pct: Decimal,
    leverage: u32,
    side: Side,
    m: &Market,
) -> Option<Decimal> {
    (sl_pct > Decimal::ZERO)
        .then(|| round_stop(avg * roe_factor(-side.sign(), sl_pct, leverage), side, m))
}

/// Volume-weighted average of `(qty, price)` fills; 0 for no fills.
pub fn average_entry(fills: &[(Decimal, Decimal)]) -> Decimal {
    let qty: Decimal = fills.iter().map(|f| f.0).sum();
    if qty <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    (fills.iter().map(|f| f.0 * f.1).sum::<Decimal>() / qty).normalize()
}

/// Realised PnL of closing `qty` opened at `avg` at `exit`, before fees.
pub fn gross_pnl(side: Side, qty: Decimal, avg: Decimal, exit: Decimal) -> Decimal {
    side.sign() * (exit - avg) * qty
}

/// Unrealised PnL at `mark`.
pub fn unrealized_pnl(side: Side, qty: Decimal, avg: Decimal, mark: Decimal) -> Decimal {
    gross_pnl(side, qty, avg, mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTC: Market = Market {
        tick: dec!(0.1),
        step: dec!(0.001),
        min_qty: dec!(0.001),
        min_notional: Decimal::ZERO,
    };

    #[test]
    fn a_leg_below_the_minimum_order_value_is_not_placed() {
        let m = Market {
            min_notional: dec!(5),
            ..BTC
        };
        // 0.001 BTC at 4000 is 4 USDT: enough quantity, too little value.
        assert_eq!(leg_qty(dec!(0.4), 10, dec!(4000), &m), None);
        assert_eq!(leg_qty(dec!(0.8), 10, dec!(4000), &m), Some(dec!(0.002)));
    }

    #[test]
    fn quantities_floor_to_the_step_and_respect_the_minimum() {
        // 10 USDT × 10x at 30,000 = 0.00333… → 0.003
        assert_eq!(leg_qty(dec!(10), 10, dec!(30000), &BTC), Some(dec!(0.003)));
        assert_eq!(
            floor_qty(
                dec!(0.3),
                &Market {
                    step: dec!(0.1),
                    ..BTC
                }
            ),
            dec!(0.3)
        );
        // 1 USDT × 1x at 30,000 = 0.000033 < min 0.001
        assert_eq!(leg_qty(dec!(1), 1, dec!(30000), &BTC), None);
        assert_eq!(leg_qty(dec!(10), 10, Decimal::ZERO, &BTC), None);
        // A margin too large for a decimal is not a leg (and no panic).
        assert_eq!(leg_qty(Decimal::MAX, 125, dec!(0.5), &BTC), None);
        // An exchange that gave no step leaves the quantity as computed.
        let no_step = Market {
            step: Decimal::ZERO,
            ..BTC
        };
        assert_eq!(floor_qty(dec!(0.00333), &no_step), dec!(0.00333));
    }

    #[test]
    fn legs_chain_from_the_previous_leg() {
        let cents = Market {
            tick: dec!(0.01),
            ..BTC
        };
        let long = leg_prices(dec!(100), &[dec!(0), dec!(1), dec!(2)], Side::Long, &cents);
        // 100 × 0.99 = 99; 99 × 0.98 = 97.02
        assert_eq!(long, vec![dec!(99), dec!(97.02)]);
        let short = leg_prices(dec!(100), &[dec!(5), dec!(1), dec!(2)], Side::Short, &cents);
        // 100 × 1.01 = 101; 101 × 1.02 = 103.02
        assert_eq!(short, vec![dec!(101), dec!(103.02)]);
    }

    #[test]
    fn take_profit_and_stop_loss_follow_roe_and_leverage() {
        let m = Market {
            tick: dec!(0.01),
            ..BTC
        };
        // 5 % ROE at 10x = 0.5 % price move.
        assert_eq!(
            take_profit_price(dec!(100), dec!(5), 10, Side::Long, &m),
            dec!(100.5)
        );
        assert_eq!(
            take_profit_price(dec!(100), dec!(5), 10, Side::Short, &m),
            dec!(99.5)
        );
        assert_eq!(
            stop_loss_price(dec!(100), dec!(0), 10, Side::Long, &m),
            None
        );
        assert_eq!(
            stop_loss_price(dec!(100), dec!(20), 10, Side::Long, &m),
            Some(dec!(98))
        );
        assert_eq!(
            stop_loss_price(dec!(100), dec!(20), 10, Side::Short, &m),
            Some(dec!(102))
        );
        // Rounding never lowers a long's target below the configured ROE.
        let coarse = Market {
            tick: dec!(1),
            ..BTC
        };
        assert_eq!(
            take_profit_price(dec!(100), dec!(1), 10, Side::Long, &coarse),
            dec!(101)
        );
        assert_eq!(
            take_profit_price(dec!(100), dec!(1), 10, Side::Short, &coarse),
            dec!(99)
        );
        // An exact target is not pushed a tick further.
        assert_eq!(round_target(dec!(100.5), Side::Long, &m), dec!(100.5));
        assert_eq!(round_price(dec!(100.005), &m), dec!(100.01));
    }

    #[test]
    fn a_stop_rounds_toward_the_entry_never_past_the_configured_loss() {
        // avg 100.03, 5 % ROE at 10x = 0.5 %: exactly 99.52985 for a long, which
        // the nearest tick would put at 99.5 (a bigger loss than configured).
        let long = stop_loss_price(dec!(100.03), dec!(5), 10, Side::Long, &BTC);
        assert_eq!(long, Some(dec!(99.6)));
        // avg 100.07 short: exactly 100.57035, nearest 100.6, toward the entry 100.5.
        let short = stop_loss_price(dec!(100.07), dec!(5), 10, Side::Short, &BTC);
        assert_eq!(short, Some(dec!(100.5)));
        // An exact trigger stays where it is.
        assert_eq!(round_stop(dec!(99.5), Side::Long, &BTC), dec!(99.5));
        assert_eq!(round_stop(dec!(99.5), Side::Short, &BTC), dec!(99.5));
    }

    #[test]
    fn average_and_pnl() {
        let avg = average_entry(&[(dec!(1), dec!(100)), (dec!(2), dec!(97))]);
        assert_eq!(avg, dec!(98));
        assert_eq!(gross_pnl(Side::Long, dec!(3), avg, dec!(99)), dec!(3));
        assert_eq!(gross_pnl(Side::Short, dec!(3), avg, dec!(99)), dec!(-3));
        assert_eq!(average_entry(&[]), Decimal::ZERO);
        // Three fills of 0.003 are 0.009, not 0.009000000000000001.
        let f = (dec!(0.003), dec!(30000));
        let size: Decimal = [f, f, f].iter().map(|f| f.0).sum();
        assert_eq!(size.to_string(), "0.009");
    }
}
