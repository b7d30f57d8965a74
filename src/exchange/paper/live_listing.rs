//! Listings of live paper markets (`PAPER_PRICES=bybit|bingx`): a market that
//! follows a venue's quotes trades on that venue's increments and leverage limit,
//! read from the venue's cached catalogue (`store::market_cache`, filled by the
//! catalogue refresh and by bot config saves). Paper's fixed listings would put
//! a 0.0101-USDT symbol on a 0.01 tick.

use crate::store::sql::Conn;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::markets::{self, Listing, GENERIC_MMR};
use crate::bots::ladder::Market;
use crate::market::catalogue::MarketInfo;
use crate::market::Venue;
use crate::store::{market_cache, StoreError};

/// What a venue's cached catalogue says about a symbol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Catalogued {
    /// The venue lists it: its listing as the venue sets it.
    Listed(Listing),
    /// The catalogue is cached and does not list it.
    NotListed,
    /// No catalogue of the venue is cached yet: nothing is known either way.
    NotCached,
}

/// `symbol` as `venue`'s cached catalogue lists it. Two indexed reads, done only
/// when a market is first listed or loaded.
pub(super) fn catalogued(
    conn: &Conn,
    venue: Venue,
    symbol: &str,
) -> Result<Catalogued, StoreError> {
    if let Some(info) = market_cache::market(conn, venue.name(), symbol)? {
        return Ok(Catalogued::Listed(from_catalogue(&info)));
    }
    Ok(if market_cache::count(conn, venue.name())? > 0 {
        Catalogued::NotListed
    } else {
        Catalogued::NotCached
    })
}

/// The listing of a catalogued market: the venue's increments and leverage
/// limit; the catalogue has no maintenance margin rate, so it is paper's own
/// (the majors' first-tier rate, else the generic 1 %).
fn from_catalogue(info: &MarketInfo) -> Listing {
    let mmr = markets::listing(&info.symbol).map_or(GENERIC_MMR, |l| l.maintenance_margin_rate);
    Listing {
        market: Market {
            tick: info.tick_size,
            step: info.qty_step,
            min_qty: info.min_qty,
            min_notional: info.min_notional,
        },
        // A live market has no price before its first quote.
        start_price: Decimal::ZERO,
        max_leverage: info.max_leverage.clamp(1, max_leverage_at(mmr)),
        maintenance_margin_rate: mmr,
    }
}

/// The highest leverage whose liquidation price stays short of the entry at
/// maintenance margin rate `mmr` (leverage × mmr < 1): a venue whose tiers pair
/// 125x with a smaller rate than paper's must not get a position liquidated at
/// its entry here.
fn max_leverage_at(mmr: Decimal) -> u32 {
    if mmr <= Decimal::ZERO {
        return u32::MAX;
    }
    let bound = (Decimal::ONE / mmr).ceil() - Decimal::ONE;
    bound.to_u32().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn leverage_is_capped_below_the_entry_liquidation() {
        assert_eq!(max_leverage_at(dec!(0.01)), 99);
        assert_eq!(max_leverage_at(dec!(0.005)), 199);
        assert_eq!(max_leverage_at(dec!(0.03)), 33);
        let info = MarketInfo {
            symbol: "PEPE/USDT".into(),
            tick_size: dec!(0.0000001),
            qty_step: dec!(100),
            min_qty: dec!(100),
            min_notional: dec!(5),
            max_leverage: 125,
            last_price: None,
            funding_rate: None,
            next_funding_at: None,
        };
        let l = from_catalogue(&info);
        assert_eq!(
            (l.max_leverage, l.maintenance_margin_rate),
            (99, dec!(0.01))
        );
        assert_eq!(l.market.tick, dec!(0.0000001));
        assert_eq!(l.market.min_notional, dec!(5));
    }
}
