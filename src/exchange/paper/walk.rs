//! The seeded random walk that moves paper prices.
//!
//! Each step's shock is a pure function of (seed, symbol, step number), not the
//! output of a stateful generator: a restart only needs the persisted step number to
//! continue the very same sequence, and symbols never disturb each other's streams
//! however often new ones are listed.

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

use crate::bots::ladder::Market;

/// √3: a uniform variable on [-√3, √3] has unit variance, so `volatility` is the
/// standard deviation of one step's relative move.
const SQRT_3: f64 = 1.732_050_807_568_877_2;

/// Milliseconds in a (Julian) year, what annual volatility is quoted over.
const MS_PER_YEAR: f64 = 365.25 * 24.0 * 3_600_000.0;

/// Annual volatility of the walk when `PAPER_VOLATILITY` is unset: about what
/// BTC shows.
const ANNUAL_VOLATILITY: f64 = 0.6;

/// The per-step σ of a walk of `ANNUAL_VOLATILITY` a year at one step per
/// `tick_ms`: σ scales with the square root of time.
pub fn default_volatility(tick_ms: u64) -> f64 {
    ANNUAL_VOLATILITY * (tick_ms.max(1) as f64 / MS_PER_YEAR).sqrt()
}

/// The walk's parameters; copied into every reload of the book.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Walk {
    seed: u64,
    volatility: f64,
}

impl Walk {
    /// A negative or non-finite volatility would make prices meaningless; it
    /// degrades to a flat market instead.
    pub fn new(seed: u64, volatility: f64) -> Walk {
        let volatility = if volatility.is_finite() && volatility > 0.0 {
            volatility
        } else {
            0.0
        };
        Walk { seed, volatility }
    }

    /// The per-symbol stream key: computed once when a market is listed or loaded.
    pub fn stream(&self, symbol: &str) -> u64 {
        splitmix64(self.seed ^ splitmix64(fnv1a(symbol.as_bytes())))
    }

    /// The price after step `step_no` of `stream`, from `price`: on the tick and
    /// never below one tick, so it stays a price the market can quote. The shock
    /// is a float (it is noise); the price it yields is a decimal. It is rounded
    /// to a neighbouring tick at random, up with the probability of its distance
    /// past the tick below: unbiased, so a market whose steps are smaller than
    /// half a tick still moves (rounding to the nearest tick would put it back
    /// every step and freeze it), and as deterministic as the shock.
    pub fn next_price(&self, stream: u64, step_no: u64, price: Decimal, m: &Market) -> Decimal {
        let factor = 1.0 + self.volatility * shock(stream, step_no);
        let moved = price
            .to_f64()
            .map(|p| p * factor)
            .and_then(Decimal::from_f64)
            .unwrap_or(price);
        round_randomly(moved, m.tick, stream, step_no).max(m.tick)
    }
}

/// `price` on a neighbouring multiple of `tick`, the upper one with the
/// probability of the distance past the lower one; the draw is step `step_no`'s
/// of its own stream, independent of the shock's.
fn round_randomly(price: Decimal, tick: Decimal, stream: u64, step_no: u64) -> Decimal {
    let ticks = price / tick;
    let below = ticks.floor();
    let past = (ticks - below).to_f64().unwrap_or(0.0);
    let draw = splitmix64(
        splitmix64(stream ^ ROUNDING_KEY).wrapping_add(step_no.wrapping_mul(GOLDEN_GAMMA)),
    );
    let up = unit(draw) < past;
    (if up { below + Decimal::ONE } else { below }) * tick
}

/// Separates the rounding draws' stream from the shocks'.
const ROUNDING_KEY: u64 = 0x0D1C_E0F7_1C45_5EED;

/// A uniform double in [0, 1) from the top 53 bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Unit-variance shock of step `step_no`, uniform on [-√3, √3].
fn shock(stream: u64, step_no: u64) -> f64 {
    let bits = splitmix64(stream.wrapping_add(step_no.wrapping_mul(GOLDEN_GAMMA)));
    (2.0 * unit(bits) - 1.0) * SQRT_3
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mixer whose outputs pass BigCrush
/// even for consecutive inputs, which is exactly how the steps use it.
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: a stable string hash (std's `DefaultHasher` may change between Rust
/// releases, which would silently change every persisted market's future).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::money::dec;

    const BTC: Market = Market {
        tick: dec!(0.1),
        step: dec!(0.001),
        min_qty: dec!(0.001),
        min_notional: Decimal::ZERO,
    };

    fn path(walk: &Walk, symbol: &str, from: u64, n: u64) -> Vec<Decimal> {
        let stream = walk.stream(symbol);
        let mut p = dec!(60000);
        (from..from + n)
            .map(|i| {
                p = walk.next_price(stream, i, p, &BTC);
                p
            })
            .collect()
    }

    #[test]
    fn same_inputs_same_path_and_streams_differ() {
        let w = Walk::new(7, 0.01);
        assert_eq!(path(&w, "BTC/USDT", 0, 50), path(&w, "BTC/USDT", 0, 50));
        assert_ne!(path(&w, "BTC/USDT", 0, 50), path(&w, "ETH/USDT", 0, 50));
        assert_ne!(
            path(&w, "BTC/USDT", 0, 50),
            path(&Walk::new(8, 0.01), "BTC/USDT", 0, 50)
        );
    }

    #[test]
    fn shocks_have_unit_variance_and_zero_mean() {
        let n = 100_000u64;
        let z: Vec<f64> = (0..n).map(|i| shock(42, i)).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        assert!(z.iter().all(|x| x.abs() <= SQRT_3));
    }

    #[test]
    fn price_stays_on_ticks_and_at_least_one_tick() {
        let wild = Walk::new(1, 5.0);
        let stream = wild.stream("BTC/USDT");
        let mut p = dec!(1);
        for i in 0..1000 {
            p = wild.next_price(stream, i, p, &BTC);
            assert!(p >= BTC.tick, "{p}");
            assert!((p / BTC.tick).is_integer(), "{p}");
        }
    }

    /// A generic listing (tick 0.01) at the default σ of 100 ms steps moves by
    /// far less than half a tick a step: rounding to the nearest tick froze it.
    #[test]
    fn a_low_priced_market_keeps_moving_at_the_default_volatility() {
        let w = Walk::new(7, default_volatility(100));
        let generic = Market {
            tick: dec!(0.01),
            ..BTC
        };
        // At 100 USDT a step's σ is about a third of a tick, at 10 USDT about a
        // thirtieth: rounded to the nearest tick the latter never moved.
        for (start, at_least) in [(dec!(100), 100), (dec!(10), 10)] {
            let stream = w.stream("PEPE/USDT");
            let mut p = start;
            let mut changes = 0;
            for i in 0..1000 {
                let next = w.next_price(stream, i, p, &generic);
                assert!((next / generic.tick).is_integer(), "{next}");
                changes += usize::from(next != p);
                p = next;
            }
            assert!(
                changes >= at_least,
                "{start}: {changes} moves in 1,000 steps"
            );
            // Unbiased: it wanders, it does not drift away.
            assert!((p - start).abs() < start / dec!(10), "{start} → {p}");
        }
    }

    #[test]
    fn the_default_volatility_is_sixty_percent_a_year() {
        let per_second = default_volatility(1000);
        assert!((per_second - 0.6 / (31_557_600f64).sqrt()).abs() < 1e-12);
        // One step a year is the annual figure itself; σ grows with √time.
        assert!((default_volatility(31_557_600_000) - 0.6).abs() < 1e-12);
        assert!((default_volatility(4000) / per_second - 2.0).abs() < 1e-9);
        assert!(default_volatility(0) > 0.0);
    }

    #[test]
    fn bad_volatility_means_a_flat_market() {
        for v in [f64::NAN, -0.1, f64::INFINITY] {
            let w = Walk::new(3, v);
            assert_eq!(path(&w, "BTC/USDT", 0, 5), vec![dec!(60000); 5]);
        }
    }
}
