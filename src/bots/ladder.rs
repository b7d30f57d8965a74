//! The ladder strategy's arithmetic, as pure functions: quantities rounded to
//! the market's step, prices to its tick, chained leg prices, take-profit and
//! stop-loss prices that follow the average entry, and PnL net of fees.
//! See docs/bots.md, Strategy.
//!
//! Percentages are the user's: `gap` is percent from the previous leg's price;
//! `take_profit` / `stop_loss` are percent of margin (ROE), so the price distance is
//! `pct / 100 / leverage`.

/// Direction of the bot's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Long,
    Short,
}

impl Side {
    /// +1 for long, -1 for short: the sign of profit per unit of price rise.
    pub fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
        }
    }
}

/// What the exchange allows for one symbol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Market {
    /// Price increment.
    pub tick: f64,
    /// Quantity increment.
    pub step: f64,
    pub min_qty: f64,
    /// Smallest order value (quantity × price) the exchange takes; 0 = none.
    pub min_notional: f64,
}

/// Tolerance for values that are a whole number of increments but carry binary
/// floating-point error (0.3 / 0.1 = 2.9999999999999996).
const EPS: f64 = 1e-9;

/// Number of decimals needed to print multiples of `inc` exactly.
fn decimals(inc: f64) -> i32 {
    let mut d = 0;
    let mut v = inc;
    while d < 12 && (v - v.round()).abs() > EPS {
        v *= 10.0;
        d += 1;
    }
    d
}

/// `units × inc`, rounded to `inc`'s decimals so it prints as the exchange expects.
fn to_increment(units: f64, inc: f64) -> f64 {
    let scale = 10f64.powi(decimals(inc));
    (units * inc * scale).round() / scale
}

/// Rounds a quantity down to the step: never more exposure than the margin buys.
pub fn floor_qty(qty: f64, m: &Market) -> f64 {
    to_increment((qty / m.step + EPS).floor(), m.step)
}

/// Rounds a price to the nearest tick.
pub fn round_price(price: f64, m: &Market) -> f64 {
    to_increment((price / m.tick).round(), m.tick)
}

/// Rounds a take-profit price away from the entry: up for a long, down for a short,
/// so rounding never brings the target below the configured ROE.
pub fn round_target(price: f64, side: Side, m: &Market) -> f64 {
    let units = price / m.tick;
    let units = match side {
        Side::Long => (units - EPS).ceil(),
        Side::Short => (units + EPS).floor(),
    };
    to_increment(units, m.tick)
}

/// Quantity bought by `margin` USDT at `leverage` and `price`, floored to the step;
/// `None` when that is below the market minimum (the leg cannot be placed).
pub fn leg_qty(margin: f64, leverage: u32, price: f64, m: &Market) -> Option<f64> {
    if price <= 0.0 || margin <= 0.0 {
        return None;
    }
    let qty = floor_qty(margin * f64::from(leverage) / price, m);
    let value_ok = qty * price >= m.min_notional - EPS;
    (qty >= m.min_qty - EPS && qty > 0.0 && value_ok).then_some(qty)
}

/// Prices of ladder legs 1… after an entry at `entry`: each `gaps[i]` percent beyond
/// the previous leg (below for long, above for short), rounded to the tick.
/// `gaps[0]` (the entry's) is ignored: the entry is a market order.
pub fn leg_prices(entry: f64, gaps: &[f64], side: Side, m: &Market) -> Vec<f64> {
    let mut prev = entry;
    gaps.iter()
        .skip(1)
        .map(|gap| {
            prev *= 1.0 - side.sign() * gap / 100.0;
            round_price(prev, m)
        })
        .collect()
}

/// Take-profit price for the average entry: `avg × (1 ± tp / 100 / leverage)`.
pub fn take_profit_price(avg: f64, tp_pct: f64, leverage: u32, side: Side, m: &Market) -> f64 {
    let raw = avg * (1.0 + side.sign() * tp_pct / 100.0 / f64::from(leverage));
    round_target(raw, side, m)
}

/// Stop-loss price, or `None` when disabled (0): `avg × (1 ∓ sl / 100 / leverage)`.
pub fn stop_loss_price(
    avg: f64,
    sl_pct: f64,
    leverage: u32,
    side: Side,
    m: &Market,
) -> Option<f64> {
    (sl_pct > 0.0).then(|| {
        round_price(
            avg * (1.0 - side.sign() * sl_pct / 100.0 / f64::from(leverage)),
            m,
        )
    })
}

/// Volume-weighted average of `(qty, price)` fills; 0 for no fills.
pub fn average_entry(fills: &[(f64, f64)]) -> f64 {
    let qty: f64 = fills.iter().map(|f| f.0).sum();
    if qty <= 0.0 {
        return 0.0;
    }
    fills.iter().map(|f| f.0 * f.1).sum::<f64>() / qty
}

/// Realised PnL of closing `qty` opened at `avg` at `exit`, before fees.
pub fn gross_pnl(side: Side, qty: f64, avg: f64, exit: f64) -> f64 {
    side.sign() * (exit - avg) * qty
}

/// Unrealised PnL at `mark`.
pub fn unrealized_pnl(side: Side, qty: f64, avg: f64, mark: f64) -> f64 {
    gross_pnl(side, qty, avg, mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTC: Market = Market {
        tick: 0.1,
        step: 0.001,
        min_qty: 0.001,
        min_notional: 0.0,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_leg_below_the_minimum_order_value_is_not_placed() {
        let m = Market {
            min_notional: 5.0,
            ..BTC
        };
        // 0.001 BTC at 4000 is 4 USDT: enough quantity, too little value.
        assert_eq!(leg_qty(0.4, 10, 4000.0, &m), None);
        assert_eq!(leg_qty(0.8, 10, 4000.0, &m), Some(0.002));
    }

    #[test]
    fn quantities_floor_to_the_step_and_respect_the_minimum() {
        // 10 USDT × 10x at 30,000 = 0.00333… → 0.003
        assert_eq!(leg_qty(10.0, 10, 30_000.0, &BTC), Some(0.003));
        // Exactly representable multiples survive float error.
        assert_eq!(floor_qty(0.3, &Market { step: 0.1, ..BTC }), 0.3);
        // 1 USDT × 1x at 30,000 = 0.000033 < min 0.001
        assert_eq!(leg_qty(1.0, 1, 30_000.0, &BTC), None);
        assert_eq!(leg_qty(10.0, 10, 0.0, &BTC), None);
    }

    #[test]
    fn legs_chain_from_the_previous_leg() {
        let long = leg_prices(
            100.0,
            &[0.0, 1.0, 2.0],
            Side::Long,
            &Market { tick: 0.01, ..BTC },
        );
        // 100 × 0.99 = 99; 99 × 0.98 = 97.02
        assert_eq!(long, vec![99.0, 97.02]);
        let short = leg_prices(
            100.0,
            &[5.0, 1.0, 2.0],
            Side::Short,
            &Market { tick: 0.01, ..BTC },
        );
        // 100 × 1.01 = 101; 101 × 1.02 = 103.02
        assert_eq!(short, vec![101.0, 103.02]);
    }

    #[test]
    fn take_profit_and_stop_loss_follow_roe_and_leverage() {
        let m = Market { tick: 0.01, ..BTC };
        // 5 % ROE at 10x = 0.5 % price move.
        assert!(close(
            take_profit_price(100.0, 5.0, 10, Side::Long, &m),
            100.5
        ));
        assert!(close(
            take_profit_price(100.0, 5.0, 10, Side::Short, &m),
            99.5
        ));
        assert_eq!(stop_loss_price(100.0, 0.0, 10, Side::Long, &m), None);
        assert_eq!(stop_loss_price(100.0, 20.0, 10, Side::Long, &m), Some(98.0));
        assert_eq!(
            stop_loss_price(100.0, 20.0, 10, Side::Short, &m),
            Some(102.0)
        );
        // Rounding never lowers a long's target below the configured ROE.
        let coarse = Market { tick: 1.0, ..BTC };
        assert_eq!(
            take_profit_price(100.0, 1.0, 10, Side::Long, &coarse),
            101.0
        );
        assert_eq!(
            take_profit_price(100.0, 1.0, 10, Side::Short, &coarse),
            99.0
        );
    }

    #[test]
    fn average_and_pnl() {
        let avg = average_entry(&[(1.0, 100.0), (2.0, 97.0)]);
        assert!(close(avg, 98.0));
        assert!(close(gross_pnl(Side::Long, 3.0, avg, 99.0), 3.0));
        assert!(close(gross_pnl(Side::Short, 3.0, avg, 99.0), -3.0));
        assert_eq!(average_entry(&[]), 0.0);
    }
}
