//! What a configuration means in money and price before it runs: the margin it
//! commits, each leg's price and quantity from an entry at a reference price,
//! the take-profit and stop of the first entry and of the full ladder, the price
//! deviation the ladder covers and an estimate of the liquidation price. Computed
//! with the functions the engine places orders with (`ladder`) and the paper
//! exchange liquidates with (`liquidation_price`), so the settings page shows what
//! the bot will do. See docs/http-api.md, Configuration preview.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::config::BotConfig;
use super::ladder::{self, Market, Side};
use crate::exchange::paper::liquidation::liquidation_price;
use crate::money;

/// One order of the ladder: the entry (leg 0) or a resting leg.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub leg: usize,
    pub price: Decimal,
    pub margin: Decimal,
    /// `None` when the margin buys less than the market's minimum: the leg would
    /// be refused by the exchange (the engine skips it).
    pub qty: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub price: Decimal,
    pub total_margin: Decimal,
    pub legs: Vec<Leg>,
    pub take_profit_first: Decimal,
    pub average_all: Decimal,
    pub take_profit_all: Decimal,
    pub stop_loss_all: Option<Decimal>,
    /// Percent from the entry to the deepest leg.
    pub deviation: Decimal,
    pub liquidation_first: Decimal,
    pub liquidation_all: Decimal,
}

/// The ladder of `c` (its first `rounds` grids) entered at `price` on market `m`
/// with maintenance margin rate `mmr`.
pub fn preview(c: &BotConfig, price: Decimal, m: &Market, mmr: Decimal) -> Preview {
    let used = &c.grids[..c.rounds.clamp(1, c.grids.len().max(1)).min(c.grids.len())];
    let gaps: Vec<Decimal> = used.iter().map(|g| g.gap).collect();
    let prices = std::iter::once(price).chain(ladder::leg_prices(price, &gaps, c.side, m));
    let legs: Vec<Leg> = prices
        .zip(used)
        .enumerate()
        .map(|(i, (p, g))| Leg {
            leg: i,
            price: p,
            margin: g.amount,
            qty: ladder::leg_qty(g.amount, c.leverage, p, m),
        })
        .collect();
    let fills: Vec<(Decimal, Decimal)> = legs
        .iter()
        .filter_map(|l| l.qty.map(|q| (q, l.price)))
        .collect();
    let average_all = match ladder::average_entry(&fills) {
        a if a > Decimal::ZERO => a,
        _ => price,
    };
    let deepest = legs.last().map_or(price, |l| l.price);
    let tp = |avg| ladder::take_profit_price(avg, c.take_profit, c.leverage, c.side, m);
    Preview {
        price,
        total_margin: used.iter().map(|g| g.amount).sum(),
        take_profit_first: tp(price),
        take_profit_all: tp(average_all),
        stop_loss_all: ladder::stop_loss_price(average_all, c.stop_loss, c.leverage, c.side, m),
        deviation: percent_between(price, deepest),
        liquidation_first: liq(c.side, price, c.leverage, mmr, m),
        liquidation_all: liq(c.side, average_all, c.leverage, mmr, m),
        average_all,
        legs,
    }
}

fn liq(side: Side, entry: Decimal, leverage: u32, mmr: Decimal, m: &Market) -> Decimal {
    ladder::round_price(liquidation_price(side, entry, leverage, mmr), m)
}

/// `|to − from| / from` in percent, to two decimals.
fn percent_between(from: Decimal, to: Decimal) -> Decimal {
    if from.is_zero() {
        return Decimal::ZERO;
    }
    ((to - from).abs() / from * Decimal::ONE_HUNDRED)
        .round_dp(2)
        .normalize()
}

impl Preview {
    pub fn to_json(&self) -> Value {
        let n = money::json;
        let legs: Vec<Value> = self
            .legs
            .iter()
            .map(|l| {
                json!({"leg": l.leg, "price": n(l.price), "margin": n(l.margin),
                       "qty": money::json_opt(l.qty),
                       "deviation": n(percent_between(self.price, l.price))})
            })
            .collect();
        json!({
            "price": n(self.price),
            "total_margin": n(self.total_margin),
            "legs": legs,
            "take_profit_price": n(self.take_profit_first),
            "average_entry_all": n(self.average_all),
            "take_profit_price_all": n(self.take_profit_all),
            "stop_loss_price_all": money::json_opt(self.stop_loss_all),
            "deviation_covered": n(self.deviation),
            "liquidation_price": n(self.liquidation_first),
            "liquidation_price_all": n(self.liquidation_all),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::config::Grid;
    use crate::money::dec;

    const BTC: Market = Market {
        tick: dec!(0.1),
        step: dec!(0.001),
        min_qty: dec!(0.001),
        min_notional: Decimal::ZERO,
    };

    fn config(side: Side) -> BotConfig {
        BotConfig {
            side,
            leverage: 10,
            take_profit: dec!(5),
            stop_loss: dec!(50),
            rounds: 3,
            grids: vec![
                Grid {
                    amount: dec!(10),
                    gap: dec!(0),
                },
                Grid {
                    amount: dec!(20),
                    gap: dec!(1),
                },
                Grid {
                    amount: dec!(40),
                    gap: dec!(2),
                },
                Grid {
                    amount: dec!(80),
                    gap: dec!(3),
                },
            ],
            ..BotConfig::default()
        }
    }

    #[test]
    fn a_long_ladder_in_money_and_price() {
        let p = preview(&config(Side::Long), dec!(60000), &BTC, dec!(0.005));
        assert_eq!(p.total_margin, dec!(70), "only the first `rounds` legs");
        let prices: Vec<Decimal> = p.legs.iter().map(|l| l.price).collect();
        assert_eq!(prices, [dec!(60000), dec!(59400), dec!(58212)]);
        let qty: Vec<Option<Decimal>> = p.legs.iter().map(|l| l.qty).collect();
        assert_eq!(
            qty,
            [Some(dec!(0.001)), Some(dec!(0.003)), Some(dec!(0.006))]
        );
        assert_eq!(p.take_profit_first, dec!(60300));
        assert_eq!(p.deviation, dec!(2.98));
        assert!(p.average_all < dec!(60000) && p.average_all > dec!(58212));
        let sl = p.stop_loss_all.expect("stop on");
        assert!(sl < p.average_all);
        assert_eq!(p.liquidation_first, dec!(54300));
        assert!(p.liquidation_all < p.liquidation_first);
    }

    #[test]
    fn a_short_ladder_climbs() {
        let p = preview(&config(Side::Short), dec!(60000), &BTC, dec!(0.005));
        assert_eq!(p.legs[1].price, dec!(60600));
        assert_eq!(p.take_profit_first, dec!(59700));
        assert_eq!(p.liquidation_first, dec!(65700));
    }

    #[test]
    fn a_leg_below_the_minimum_has_no_quantity() {
        let mut c = config(Side::Long);
        c.grids[0].amount = dec!(1);
        let p = preview(&c, dec!(60000), &BTC, dec!(0.005));
        assert_eq!(p.legs[0].qty, None);
        assert_eq!(p.to_json()["legs"][0]["qty"], Value::Null);
    }
}
