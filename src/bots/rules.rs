//! The configuration's safety rules, as pure functions over exact decimals: the
//! exchanges' fees, the smallest take-profit that is a profit after them, a stop-loss
//! that leaves room for the whole ladder to fill, and the ranges of the optional
//! fields. See docs/bots.md, Configuration and Exchanges.
//!
//! They take plain values rather than a bot configuration so the validation of a
//! request and of a stored configuration can share them. Each error is the text shown
//! to the user next to the field; numbers in it are printed exactly, without binary
//! float artefacts.
//!
//! Percentages are the user's: `take_profit` and `stop_loss` are percent of margin
//! (ROE), so their price distance is `pct / 100 / leverage`; a grid's `gap` is
//! percent of the previous leg's price.

use rust_decimal::Decimal;

use super::ladder::Side;

/// Trading fees as fractions of the traded value (0.00055 = 0.055 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// Market orders: the entry and a stop.
    pub taker: Decimal,
    /// Resting limit orders: ladder legs and the take-profit.
    pub maker: Decimal,
}

/// The standard (non-VIP) USDT-perpetual fees of `exchange`, `None` for one this
/// server does not trade on. The paper exchange charges Bybit's.
pub fn fees(exchange: &str) -> Option<Fees> {
    match exchange {
        // Bybit's standard perpetual rate: 0.055 % taker, 0.02 % maker.
        "paper" | "bybit" => Some(Fees {
            taker: Decimal::new(55, 5),
            maker: Decimal::new(2, 4),
        }),
        // BingX's perpetual futures fee schedule: 0.05 % taker, 0.02 % maker.
        "bingx" => Some(Fees {
            taker: Decimal::new(5, 4),
            maker: Decimal::new(2, 4),
        }),
        _ => None,
    }
}

/// The round-trip fees (a taker entry and a maker exit) in percent of margin at
/// `leverage`: a take-profit at or below it closes the cycle at a loss.
pub fn min_take_profit(fees: Fees, leverage: u32) -> Decimal {
    ((fees.taker + fees.maker) * Decimal::from(leverage) * Decimal::ONE_HUNDRED).normalize()
}

/// `take_profit` must be above 0 and above the round-trip fees at `leverage`.
pub fn check_take_profit(take_profit: Decimal, fees: Fees, leverage: u32) -> Result<(), String> {
    let min = min_take_profit(fees, leverage);
    if take_profit > Decimal::ZERO && take_profit > min {
        Ok(())
    } else {
        Err(format!(
            "take_profit must be above {min} (the round-trip fees at {leverage}x)"
        ))
    }
}

/// `stop_loss` (0 = off) must not trigger before the deepest ladder leg could fill.
///
/// From an entry at a price of 1, every leg `i` of the first `rounds` grids is
/// `gap_i` percent beyond leg `i − 1` (the first grid's gap is ignored) and buys
/// `amount × leverage / price`; with every leg filled the stop sits
/// `stop_loss / 100 / leverage` beyond their average entry. A stop at or inside the
/// deepest leg's price would close the position before that leg fills. `grids` are
/// `(amount, gap)` pairs already checked on their own (amount > 0, 0 < gap < 100).
pub fn check_stop_loss(
    stop_loss: Decimal,
    leverage: u32,
    side: Side,
    grids: &[(Decimal, Decimal)],
    rounds: usize,
) -> Result<(), String> {
    if stop_loss.is_zero() {
        return Ok(());
    }
    if stop_loss < Decimal::ZERO {
        return Err("stop_loss must be 0 (off) or above 0".to_string());
    }
    if leverage == 0 {
        return Err("stop_loss cannot be checked without a leverage of at least 1".to_string());
    }
    let legs = &grids[..rounds.max(1).min(grids.len())];
    if legs.is_empty() {
        // Nothing to fill; the grids are refused on their own.
        return Ok(());
    }
    let Some(ladder) = Ladder::of(side, legs) else {
        return Err(
            "stop_loss cannot be checked: the grids put a leg at a price that cannot be \
             computed"
                .to_string(),
        );
    };
    let lev = Decimal::from(leverage);
    let distance = stop_loss / Decimal::ONE_HUNDRED / lev;
    let stop = match side {
        Side::Long => ladder.average * (Decimal::ONE - distance),
        Side::Short => ladder.average * (Decimal::ONE + distance),
    };
    let fires_first = match side {
        Side::Long => stop >= ladder.deepest,
        Side::Short => stop <= ladder.deepest,
    };
    if !fires_first {
        return Ok(());
    }
    // The stop_loss whose stop lies exactly at the deepest leg; anything above it
    // leaves room.
    let ratio = ladder.deepest / ladder.average;
    let threshold = match side {
        Side::Long => Decimal::ONE - ratio,
        Side::Short => ratio - Decimal::ONE,
    } * Decimal::ONE_HUNDRED
        * lev;
    Err(format!(
        "stop_loss {} would trigger before the deepest leg (grids[{}]) could fill: with \
         every leg filled the stop is {}% {dir} the entry price, that leg {}% {dir} it; \
         stop_loss must be at least {} at {leverage}x (or 0 for no stop)",
        stop_loss.normalize(),
        legs.len().saturating_sub(1),
        percent_from_entry(stop),
        percent_from_entry(ladder.deepest),
        next_hundredth(threshold),
        dir = match side {
            Side::Long => "below",
            Side::Short => "above",
        },
    ))
}

/// The ladder's prices relative to an entry at 1.
struct Ladder {
    deepest: Decimal,
    /// Quantity-weighted average entry with every leg filled.
    average: Decimal,
}

impl Ladder {
    /// `None` when a price cannot be represented (gaps that drive it to 0).
    fn of(side: Side, legs: &[(Decimal, Decimal)]) -> Option<Ladder> {
        let mut price = Decimal::ONE;
        let (mut margin, mut qty) = (Decimal::ZERO, Decimal::ZERO);
        for (i, &(amount, gap)) in legs.iter().enumerate() {
            if i > 0 {
                let step = gap / Decimal::ONE_HUNDRED;
                price = match side {
                    Side::Long => price.checked_mul(Decimal::ONE - step)?,
                    Side::Short => price.checked_mul(Decimal::ONE + step)?,
                };
            }
            if price <= Decimal::ZERO {
                return None;
            }
            // The leverage multiplies every leg's quantity alike, so it cancels
            // out of the average and is left out.
            margin = margin.checked_add(amount)?;
            qty = qty.checked_add(amount.checked_div(price)?)?;
        }
        Some(Ladder {
            deepest: price,
            average: margin.checked_div(qty)?,
        })
    }
}

/// How far `price` is from the entry at 1, in percent, to two decimals.
fn percent_from_entry(price: Decimal) -> Decimal {
    ((price - Decimal::ONE).abs() * Decimal::ONE_HUNDRED)
        .round_dp(2)
        .normalize()
}

/// The smallest multiple of 0.01 strictly above `x`.
fn next_hundredth(x: Decimal) -> Decimal {
    let hundredths = (x * Decimal::ONE_HUNDRED).floor() + Decimal::ONE;
    (hundredths / Decimal::ONE_HUNDRED).normalize()
}

/// `trailing_take_profit`: 0 (off) or a price percent from 0.05 to 20.
pub fn check_trailing(pct: Decimal) -> Result<(), String> {
    let (min, max) = (Decimal::new(5, 2), Decimal::from(20));
    if pct.is_zero() || (min..=max).contains(&pct) {
        Ok(())
    } else {
        Err(
            "trailing_take_profit must be 0 (off) or from 0.05 to 20 (percent of the price)"
                .to_string(),
        )
    }
}

/// `cooldown`: whole seconds from 0 to 86400 (a day).
pub fn check_cooldown(seconds: i64) -> Result<(), String> {
    if (0..=86_400).contains(&seconds) {
        Ok(())
    } else {
        Err("cooldown must be from 0 to 86400 seconds".to_string())
    }
}

/// `max_active_legs`: 0 (every leg at once) or 1 to 50.
pub fn check_max_active_legs(n: i64) -> Result<(), String> {
    if (0..=50).contains(&n) {
        Ok(())
    } else {
        Err("max_active_legs must be 0 (all legs) or from 1 to 50".to_string())
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;

    fn paper() -> Fees {
        fees("paper").unwrap()
    }

    /// The default paper configuration's three legs.
    fn three_legs() -> Vec<(Decimal, Decimal)> {
        vec![
            (dec!(10), dec!(0)),
            (dec!(10), dec!(1)),
            (dec!(20), dec!(2)),
        ]
    }

    #[test]
    fn fees_per_exchange() {
        let bybit = Fees {
            taker: dec!(0.00055),
            maker: dec!(0.0002),
        };
        assert_eq!(fees("paper"), Some(bybit));
        assert_eq!(fees("bybit"), Some(bybit));
        assert_eq!(
            fees("bingx"),
            Some(Fees {
                taker: dec!(0.0005),
                maker: dec!(0.0002),
            })
        );
        assert_eq!(fees("binance"), None);
        assert_eq!(fees("Paper"), None);
    }

    #[test]
    fn min_take_profit_is_the_round_trip_in_percent_of_margin() {
        assert_eq!(min_take_profit(paper(), 10).to_string(), "0.75");
        assert_eq!(min_take_profit(paper(), 1).to_string(), "0.075");
        assert_eq!(min_take_profit(paper(), 125).to_string(), "9.375");
        assert_eq!(
            min_take_profit(fees("bingx").unwrap(), 20).to_string(),
            "1.4"
        );
        assert_eq!(min_take_profit(paper(), 0), Decimal::ZERO);
    }

    #[test]
    fn take_profit_must_beat_the_fees() {
        assert_eq!(check_take_profit(dec!(5), paper(), 10), Ok(()));
        assert_eq!(check_take_profit(dec!(0.76), paper(), 10), Ok(()));
        let err = "take_profit must be above 0.75 (the round-trip fees at 10x)";
        for tp in [dec!(0.75), dec!(0.7500), dec!(0.5), dec!(0), dec!(-1)] {
            assert_eq!(check_take_profit(tp, paper(), 10), Err(err.into()), "{tp}");
        }
        assert_eq!(
            check_take_profit(dec!(9), paper(), 125),
            Err("take_profit must be above 9.375 (the round-trip fees at 125x)".into())
        );
        // Zero fees still need a positive take-profit.
        let free = Fees {
            taker: Decimal::ZERO,
            maker: Decimal::ZERO,
        };
        assert_eq!(
            check_take_profit(Decimal::ZERO, free, 10),
            Err("take_profit must be above 0 (the round-trip fees at 10x)".into())
        );
        assert_eq!(check_take_profit(dec!(0.01), free, 10), Ok(()));
    }

    #[test]
    fn stop_loss_off_or_beyond_the_deepest_leg_is_fine() {
        let grids = three_legs();
        assert_eq!(check_stop_loss(dec!(0), 10, Side::Long, &grids, 3), Ok(()));
        assert_eq!(check_stop_loss(dec!(50), 10, Side::Long, &grids, 3), Ok(()));
        assert_eq!(
            check_stop_loss(dec!(50), 10, Side::Short, &grids, 3),
            Ok(())
        );
        // With only the entry, any stop lies beyond it.
        assert_eq!(
            check_stop_loss(dec!(0.01), 10, Side::Long, &grids, 1),
            Ok(())
        );
        assert_eq!(
            check_stop_loss(dec!(0.01), 125, Side::Short, &grids, 1),
            Ok(())
        );
    }

    #[test]
    fn a_long_stop_above_the_deepest_leg_names_the_leg_and_the_minimum() {
        // Legs at 1, 0.99, 0.9702 with margins 10, 10, 20: the average entry is
        // 40 / (10 + 10.1010… + 20.6143…) = 0.98243…; a 10 % ROE stop at 10x sits 1 %
        // below it, at 0.97260…, above the deepest leg at 0.9702. The threshold is
        // exactly 12.45, where the stop would sit on the leg, which is refused too.
        let err = check_stop_loss(dec!(10), 10, Side::Long, &three_legs(), 3).unwrap_err();
        assert_eq!(
            err,
            "stop_loss 10 would trigger before the deepest leg (grids[2]) could fill: with \
             every leg filled the stop is 2.74% below the entry price, that leg 2.98% below \
             it; stop_loss must be at least 12.46 at 10x (or 0 for no stop)"
        );
        assert_eq!(
            check_stop_loss(dec!(12.46), 10, Side::Long, &three_legs(), 3),
            Ok(())
        );
        assert!(check_stop_loss(dec!(12.45), 10, Side::Long, &three_legs(), 3).is_err());
    }

    #[test]
    fn a_short_stop_below_the_deepest_leg_is_refused_likewise() {
        // Legs at 1, 1.01, 1.0302: average 1.01743…; the threshold is exactly 12.55,
        // where the stop would sit on the deepest leg, which is refused too.
        let err = check_stop_loss(dec!(10.0), 10, Side::Short, &three_legs(), 3).unwrap_err();
        assert_eq!(
            err,
            "stop_loss 10 would trigger before the deepest leg (grids[2]) could fill: with \
             every leg filled the stop is 2.76% above the entry price, that leg 3.02% above \
             it; stop_loss must be at least 12.56 at 10x (or 0 for no stop)"
        );
        assert!(check_stop_loss(dec!(12.55), 10, Side::Short, &three_legs(), 3).is_err());
        assert_eq!(
            check_stop_loss(dec!(12.56), 10, Side::Short, &three_legs(), 3),
            Ok(())
        );
    }

    /// The suggested minimum of an error message.
    fn minimum_in(err: &str) -> Decimal {
        let tail = err.split("must be at least ").nth(1).expect("a minimum");
        let number = tail.split(' ').next().expect("a number");
        number.parse().expect("a decimal")
    }

    #[test]
    fn the_suggested_minimum_is_always_enough_and_a_hundredth_less_is_not() {
        let ladders: [Vec<(Decimal, Decimal)>; 3] = [
            three_legs(),
            vec![(dec!(5), dec!(9)); 50],
            vec![
                (dec!(100), dec!(0)),
                (dec!(1), dec!(0.1)),
                (dec!(3), dec!(33.3)),
            ],
        ];
        for grids in &ladders {
            for side in [Side::Long, Side::Short] {
                for leverage in [1, 3, 10, 125] {
                    let rounds = grids.len();
                    let Err(err) = check_stop_loss(dec!(0.01), leverage, side, grids, rounds)
                    else {
                        panic!("{side:?} {leverage}x: a tiny stop passed");
                    };
                    let min = minimum_in(&err);
                    assert_eq!(
                        check_stop_loss(min, leverage, side, grids, rounds),
                        Ok(()),
                        "{side:?} {leverage}x: {err}"
                    );
                    let less = min - dec!(0.01);
                    if less > Decimal::ZERO {
                        assert!(
                            check_stop_loss(less, leverage, side, grids, rounds).is_err(),
                            "{side:?} {leverage}x {less}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn only_the_first_rounds_legs_count_and_the_first_gap_is_ignored() {
        let grids = three_legs();
        // Two rounds: legs at 1 and 0.99, average 1980/1990; a 5 % stop at 10x is
        // 0.5 % below that, exactly on the second leg.
        assert_eq!(
            check_stop_loss(dec!(5), 10, Side::Long, &grids, 2),
            Err(
                "stop_loss 5 would trigger before the deepest leg (grids[1]) could fill: \
                 with every leg filled the stop is 1% below the entry price, that leg 1% \
                 below it; stop_loss must be at least 5.01 at 10x (or 0 for no stop)"
                    .into()
            )
        );
        assert_eq!(
            check_stop_loss(dec!(5.01), 10, Side::Long, &grids, 2),
            Ok(())
        );
        let mut wide_first = grids.clone();
        wide_first[0].1 = dec!(99);
        assert_eq!(
            check_stop_loss(dec!(4.9), 10, Side::Long, &wide_first, 2),
            check_stop_loss(dec!(4.9), 10, Side::Long, &grids, 2)
        );
        // More rounds than grids: every grid counts, nothing panics.
        assert_eq!(
            check_stop_loss(dec!(10), 10, Side::Long, &grids, 9),
            check_stop_loss(dec!(10), 10, Side::Long, &grids, 3)
        );
    }

    #[test]
    fn degenerate_inputs_are_errors_not_panics() {
        let grids = three_legs();
        assert_eq!(
            check_stop_loss(dec!(-1), 10, Side::Long, &grids, 3),
            Err("stop_loss must be 0 (off) or above 0".into())
        );
        assert!(check_stop_loss(dec!(5), 0, Side::Long, &grids, 3).is_err());
        assert!(check_stop_loss(dec!(5), 10, Side::Long, &[], 0).is_ok());
        let to_zero = [(dec!(10), dec!(0)), (dec!(10), dec!(100))];
        assert!(check_stop_loss(dec!(5), 10, Side::Long, &to_zero, 2).is_err());
        let tiny = vec![(dec!(1), dec!(99.99)); 50];
        assert!(check_stop_loss(dec!(5), 10, Side::Long, &tiny, 50).is_err());
        let huge = vec![(dec!(1), dec!(99.99)); 50];
        let _ = check_stop_loss(dec!(5), 10, Side::Short, &huge, 50);
    }

    #[test]
    fn trailing_cooldown_and_active_legs_ranges() {
        for ok in [dec!(0), dec!(0.05), dec!(1.5), dec!(20), dec!(20.000)] {
            assert_eq!(check_trailing(ok), Ok(()), "{ok}");
        }
        for bad in [dec!(0.04), dec!(0.0499), dec!(20.01), dec!(-1)] {
            assert_eq!(
                check_trailing(bad),
                Err(
                    "trailing_take_profit must be 0 (off) or from 0.05 to 20 (percent of \
                     the price)"
                        .into()
                ),
                "{bad}"
            );
        }
        for ok in [0, 1, 3600, 86_400] {
            assert_eq!(check_cooldown(ok), Ok(()), "{ok}");
        }
        for bad in [-1, 86_401, i64::MAX] {
            assert_eq!(
                check_cooldown(bad),
                Err("cooldown must be from 0 to 86400 seconds".into())
            );
        }
        for ok in [0, 1, 50] {
            assert_eq!(check_max_active_legs(ok), Ok(()), "{ok}");
        }
        for bad in [-1, 51] {
            assert_eq!(
                check_max_active_legs(bad),
                Err("max_active_legs must be 0 (all legs) or from 1 to 50".into())
            );
        }
    }
}
