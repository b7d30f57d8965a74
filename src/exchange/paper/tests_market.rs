//! The paper exchange as a market: spread, live quotes, liquidation, funding,
//! candles and account resets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;

use super::funding::{boundary_at_or_before, funding_amount, FUNDING_EVERY_MS};
use super::liquidation::{bankruptcy_price, liquidation_price};
use super::tests::{limit, market, paper, params, replayed, stop};
use super::*;
use crate::bots::ladder::Side;
use crate::exchange::{Exchange, ExchangeError, OrderSide, OrderStatus};
use crate::market::{Quote, QuoteSource, Venue};
use crate::money::dec;
use crate::store;

const BTC: &str = "BTC/USDT";
const ETH: &str = "ETH/USDT";

#[test]
fn liquidation_and_bankruptcy_prices_follow_the_isolated_margin_formula() {
    // Long 50× at 60,000, mmr 0.5 %: 60,000 × (1 − 0.02 + 0.005) = 59,100.
    assert_eq!(
        liquidation_price(Side::Long, dec!(60000), 50, dec!(0.005)),
        dec!(59100)
    );
    assert_eq!(bankruptcy_price(Side::Long, dec!(60000), 50), dec!(58800));
    // Short 10× at 3,000, mmr 1 %: 3,000 × (1 + 0.1 − 0.01) = 3,270.
    assert_eq!(
        liquidation_price(Side::Short, dec!(3000), 10, dec!(0.01)),
        dec!(3270)
    );
    assert_eq!(bankruptcy_price(Side::Short, dec!(3000), 10), dec!(3300));
    // 1×: a long is liquidated only near zero.
    assert_eq!(
        liquidation_price(Side::Long, dec!(100), 1, dec!(0.01)),
        dec!(1)
    );
}

#[test]
fn market_orders_pay_half_the_spread_rounded_against_the_trader() {
    let p = paper();
    p.set_price(BTC, dec!(60000.1)).unwrap();
    let a = p.account(1);
    // 60000.1 × 1.0001 = 60006.10001 → up to 60006.2; × 0.9999 = 59994.09999 → 59994.0.
    let buy = a
        .place(&market("b", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    let sell = a
        .place(&market("s", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    assert_eq!(buy.avg_fill_price, dec!(60006.2));
    assert_eq!(sell.avg_fill_price, dec!(59994.0));
    // Marketable limits take the spread price too, never past their limit.
    let lim = a
        .place(&limit(
            "l",
            OrderSide::Buy,
            dec!(60100),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(lim.avg_fill_price, dec!(60006.2));
    let capped = a
        .place(&limit(
            "c",
            OrderSide::Buy,
            dec!(60003),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(capped.avg_fill_price, dec!(60003));
}

#[test]
fn a_mark_reaching_the_liquidation_price_closes_at_bankruptcy_and_cancels_that_sides_orders() {
    let p = paper();
    let a = p.account(1);
    a.set_leverage(BTC, Side::Long, 50).unwrap();
    a.place(&market("e", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    a.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(50000),
        dec!(0.1),
        Side::Long,
    ))
    .unwrap();
    a.place(&market("s", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    let entry = dec!(60006.0);
    let liq = entry * (dec!(1) - dec!(0.02) + dec!(0.005));
    let before = a.balance().unwrap();
    // The trigger, shown and checked, is that rounded down to the tick: 59,105.9.
    // A tick above it nothing happens; at it the long is liquidated.
    assert_eq!(liq, dec!(59105.91));
    let shown = {
        let g = p.lock().unwrap();
        let mkt = g.book.lookup(BTC).unwrap().unwrap();
        g.book.liquidation_of(1, mkt, Side::Long)
    };
    assert_eq!(shown, Some(dec!(59105.9)));
    assert_eq!(p.set_price(BTC, dec!(59106.0)).unwrap(), 0);
    assert_eq!(p.set_price(BTC, dec!(59105.9)).unwrap(), 1);
    assert_eq!(a.position(BTC, Side::Long).unwrap().size, dec!(0));
    assert_eq!(a.position(BTC, Side::Short).unwrap().size, dec!(0.01));
    // The margin, 0.1 × 60,006 / 50 = 120.012, is lost and no more; no fee.
    let bankrupt = dec!(58805.9); // 60,006 × 0.98 = 58,805.88, up to the tick
    assert_eq!(
        a.balance().unwrap(),
        before + (bankrupt - entry) * dec!(0.1)
    );
    let fills = a.executions(BTC, 0).unwrap();
    let last = fills.last().unwrap();
    assert!(last.liquidation);
    assert_eq!(
        (last.price, last.qty, last.fee),
        (bankrupt, dec!(0.1), dec!(0))
    );
    assert_eq!(
        a.order(BTC, "leg").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert!(fills[..fills.len() - 1].iter().all(|f| !f.liquidation));
}

#[test]
fn a_gap_past_the_liquidation_price_liquidates_before_legs_and_stops_beyond_it() {
    let p = paper();
    let a = p.account(1);
    a.set_leverage(BTC, Side::Long, 50).unwrap();
    a.place(&market("e", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    // Entry 60,006.0: liquidation 59,105.9, bankruptcy 58,805.9. A leg below the
    // liquidation price and a stop below the bankruptcy price.
    a.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(59000),
        dec!(0.1),
        Side::Long,
    ))
    .unwrap();
    a.place(&stop(
        "sl",
        OrderSide::Sell,
        dec!(58000),
        dec!(0.1),
        Side::Long,
    ))
    .unwrap();
    let before = a.balance().unwrap();
    // One gap to 57,000: the path reaches the liquidation price first.
    assert_eq!(p.set_price(BTC, dec!(57000)).unwrap(), 1);
    assert_eq!(a.position(BTC, Side::Long).unwrap().size, dec!(0));
    // The loss is 0.1 × (60,006.0 − 58,805.9) = 120.01: the margin (120.012),
    // less what the tick leaves, never more.
    assert_eq!(a.balance().unwrap(), before - dec!(120.01));
    let fills = a.executions(BTC, 0).unwrap();
    assert_eq!(fills.len(), 2, "the entry and the liquidation: {fills:?}");
    assert_eq!(
        (fills[1].price, fills[1].liquidation),
        (dec!(58805.9), true)
    );
    for cid in ["leg", "sl"] {
        let o = a.order(BTC, cid).unwrap().unwrap();
        assert_eq!((o.status, o.filled_qty), (OrderStatus::Cancelled, dec!(0)));
    }
}

#[test]
fn live_prices_without_a_quote_source_are_an_error_not_a_walk() {
    let live = PaperPrices::Live(Venue::Bybit);
    let opened = Paper::in_memory_with(params(1, 0.0), &live, None, 0);
    assert!(
        matches!(opened, Err(PaperError::NoQuoteSource(Venue::Bybit))),
        "{:?}",
        opened.err()
    );
}

#[test]
fn a_short_is_liquidated_when_the_mark_rises_to_its_price() {
    let p = paper();
    let a = p.account(1);
    a.set_leverage(BTC, Side::Short, 25).unwrap();
    a.place(&market("s", OrderSide::Sell, dec!(0.1), Side::Short))
        .unwrap();
    a.place(&stop(
        "sl",
        OrderSide::Buy,
        dec!(65000),
        dec!(0.1),
        Side::Short,
    ))
    .unwrap();
    // Entry at the bid 59,994.0; liquidation 59,994 × (1 + 0.04 − 0.005) = 62,093.79,
    // up to the tick: 62,093.8.
    assert_eq!(p.set_price(BTC, dec!(62093.7)).unwrap(), 0);
    assert_eq!(p.set_price(BTC, dec!(62093.8)).unwrap(), 1);
    assert_eq!(a.position(BTC, Side::Short).unwrap().size, dec!(0));
    let last = a.executions(BTC, 0).unwrap().pop().unwrap();
    // Bankruptcy 59,994 × 1.04 = 62,393.76, down to the tick (the trader's
    // side): 62,393.7.
    assert_eq!((last.price, last.liquidation), (dec!(62393.7), true));
    assert_eq!(
        a.order(BTC, "sl").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
}

#[test]
fn available_margin_counts_unrealised_losses_but_not_gains() {
    let p = paper();
    let a = p.account(1);
    a.place(&market("e", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    let avail = |p: &Arc<Paper>| p.lock().unwrap().book.available(1);
    let fee = a.order(BTC, "e").unwrap().unwrap().fee;
    let margin = dec!(0.1) * dec!(60006) / dec!(10);
    assert_eq!(avail(&p), dec!(10000) - fee - margin + dec!(0.1) * dec!(-6));
    p.set_price(BTC, dec!(59000)).unwrap();
    assert_eq!(
        avail(&p),
        dec!(10000) - fee - margin - dec!(0.1) * dec!(1006)
    );
    p.set_price(BTC, dec!(61000)).unwrap();
    assert_eq!(avail(&p), dec!(10000) - fee - margin);
}

#[test]
fn funding_boundaries_are_every_eight_hours_utc() {
    assert_eq!(FUNDING_EVERY_MS, 28_800_000);
    // 2024-01-01 07:59:59.999 UTC → 00:00; 08:00:00.000 → itself.
    let midnight = 1_704_067_200_000;
    assert_eq!(
        boundary_at_or_before(midnight + FUNDING_EVERY_MS - 1),
        midnight
    );
    assert_eq!(
        boundary_at_or_before(midnight + FUNDING_EVERY_MS),
        midnight + FUNDING_EVERY_MS
    );
    assert_eq!(boundary_at_or_before(-1), -FUNDING_EVERY_MS);
    assert_eq!(
        funding_amount(Side::Long, dec!(600), dec!(0.0001)),
        dec!(-0.06)
    );
    assert_eq!(
        funding_amount(Side::Short, dec!(600), dec!(0.0001)),
        dec!(0.06)
    );
    assert_eq!(
        funding_amount(Side::Long, dec!(600), dec!(-0.0002)),
        dec!(0.12)
    );
}

#[test]
fn funding_is_paid_at_each_boundary_once_at_the_replayed_mark() {
    let boundary = 1_704_067_200_000 + FUNDING_EVERY_MS;
    let start = boundary - 10_000;
    // Replayed from the epoch (`start`): the mark is 50,000 at the boundary.
    let prices = replayed("0,BTC/USDT,60000\n5,BTC/USDT,50000\n");
    let p = Paper::in_memory_with(params(1, 0.0), &prices, None, start).unwrap();
    let (long, short) = (p.account(1), p.account(2));
    // 1×: the replayed fall to 50,000 liquidates neither.
    long.set_leverage(BTC, Side::Long, 1).unwrap();
    short.set_leverage(BTC, Side::Short, 1).unwrap();
    long.place(&market("l", OrderSide::Buy, dec!(0.02), Side::Long))
        .unwrap();
    short
        .place(&market("s", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    let (lb, sb) = (long.balance().unwrap(), short.balance().unwrap());
    p.advance(boundary - 1).unwrap();
    assert_eq!(long.funding(BTC, 0).unwrap(), vec![]);
    p.advance(boundary).unwrap();
    // 0.02 × 50,000 × 0.0001 = 0.1 paid; 0.01 × 50,000 × 0.0001 = 0.05 received.
    let paid = long.funding(BTC, 0).unwrap();
    assert_eq!(paid.len(), 1);
    assert_eq!(
        (paid[0].amount, paid[0].time_ms, paid[0].side),
        (dec!(-0.1), boundary, Some(Side::Long))
    );
    assert_eq!(long.balance().unwrap(), lb - dec!(0.1));
    assert_eq!(short.balance().unwrap(), sb + dec!(0.05));
    // Again at the same boundary: nothing more.
    p.advance(boundary + 1_000).unwrap();
    assert_eq!(long.funding(BTC, 0).unwrap().len(), 1);
    // A day of downtime: the three boundaries crossed are each paid once.
    p.advance(boundary + 3 * FUNDING_EVERY_MS + 5).unwrap();
    let all = long.funding(BTC, 0).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(long.balance().unwrap(), lb - dec!(0.4));
    assert_eq!(long.funding(BTC, boundary + 1).unwrap().len(), 3);
}

#[test]
fn candles_record_each_minutes_open_high_low_close() {
    let prices = replayed("0,BTC/USDT,60000\n10,BTC/USDT,60500\n20,BTC/USDT,59800\n30,BTC/USDT,60100\n70,BTC/USDT,60200\n");
    let p = Paper::in_memory_with(params(1, 0.0), &prices, None, 0).unwrap();
    p.account(1).ticker(BTC).unwrap();
    p.advance(35_000).unwrap();
    p.advance(75_000).unwrap();
    let g = p.lock().unwrap();
    let rows: Vec<(i64, String, String, String, String)> = g
        .conn
        .prepare("SELECT start_ms, open, high, low, close FROM paper_candles WHERE symbol = ?1 ORDER BY start_ms")
        .unwrap()
        .query_map([BTC], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        rows,
        vec![
            (0, s("60500"), s("60500"), s("59800"), s("60100")),
            (60_000, s("60200"), s("60200"), s("60200"), s("60200")),
        ]
    );
}

#[test]
fn a_reset_restores_the_starting_balance_and_clears_only_that_account() {
    let p = paper();
    let (a, b) = (p.account(1), p.account(2));
    a.place(&market("e", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    a.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(50000),
        dec!(0.1),
        Side::Long,
    ))
    .unwrap();
    // At 2× the fall below cannot liquidate this one.
    b.set_leverage(BTC, Side::Long, 2).unwrap();
    b.place(&market("e", OrderSide::Buy, dec!(0.1), Side::Long))
        .unwrap();
    p.reset_account(1).unwrap();
    assert_eq!(a.balance().unwrap(), dec!(10000));
    assert_eq!(a.position(BTC, Side::Long).unwrap().size, dec!(0));
    assert!(a.open_orders(BTC).unwrap().is_empty());
    assert!(a.executions(BTC, 0).unwrap().is_empty());
    assert_eq!(a.order(BTC, "e").unwrap(), None);
    assert_eq!(b.position(BTC, Side::Long).unwrap().size, dec!(0.1));
    assert_eq!(b.executions(BTC, 0).unwrap().len(), 1);
    // The leg is gone from the book: a fall to it fills nothing.
    assert_eq!(p.set_price(BTC, dec!(49000)).unwrap(), 0);
    let view = snapshot::read(&p.lock().unwrap().conn, 1).unwrap();
    assert_eq!((view.balance, view.positions.len()), (dec!(10000), 0));
}

/// Caches a Bybit catalogue listing BTC/USDT and ETH/USDT on paper's own
/// increments, as live paper markets need (`book::listing_of`).
pub(super) fn cache_majors(p: &Paper) {
    let info = |symbol: &str, tick, step| crate::market::catalogue::MarketInfo {
        symbol: symbol.into(),
        tick_size: tick,
        qty_step: step,
        min_qty: step,
        min_notional: Decimal::ZERO,
        max_leverage: 100,
        last_price: None,
        funding_rate: None,
        next_funding_at: None,
    };
    let all = [
        info(BTC, dec!(0.1), dec!(0.001)),
        info(ETH, dec!(0.01), dec!(0.01)),
    ];
    let mut guard = p.lock().unwrap();
    crate::store::market_cache::save_catalogue(
        &mut guard.conn,
        "catalogue:bybit",
        "bybit",
        &all,
        0,
    )
    .unwrap();
}

/// A quote source whose quotes the test sets.
#[derive(Default)]
pub(super) struct Board {
    pub quotes: Mutex<HashMap<String, Quote>>,
    pub wanted: Mutex<Vec<String>>,
}

impl QuoteSource for Board {
    fn quote(&self, venue: Venue, symbol: &str) -> Option<Quote> {
        assert_eq!(venue, Venue::Bybit);
        self.quotes.lock().unwrap().get(symbol).copied()
    }
    fn want(&self, _: Venue, symbol: &str) {
        self.wanted.lock().unwrap().push(symbol.to_owned());
    }
}

pub(super) fn quote(bid: Decimal, ask: Decimal, mark: Decimal, time_ms: i64) -> Quote {
    Quote {
        last: (bid + ask) / dec!(2),
        bid,
        ask,
        mark,
        funding_rate: Some(dec!(0.0003)),
        next_funding_ms: None,
        time_ms,
    }
}

#[test]
fn live_markets_fill_at_the_quotes_bid_and_ask_and_pause_when_stale() {
    let board = Arc::new(Board::default());
    let now = store::now_ms();
    let p = Paper::in_memory_with(
        params(1, 0.0),
        &PaperPrices::Live(Venue::Bybit),
        Some(board.clone()),
        now,
    )
    .unwrap();
    cache_majors(&p);
    let a = p.account(1);
    // Listed, wanted, but no quote yet: paused, no mark published, market orders
    // refused (retryable).
    a.market(BTC).unwrap();
    assert_eq!(*board.wanted.lock().unwrap(), [BTC]);
    assert!(matches!(a.ticker(BTC), Err(e) if e.is_retryable()));
    assert_eq!(p.price(BTC), None);
    assert!(a.price_stale(BTC));
    let refused = a.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long));
    assert!(
        matches!(&refused, Err(e @ ExchangeError::Network(_)) if e.is_retryable()),
        "{refused:?}"
    );
    let q = quote(dec!(60000.0), dec!(60000.5), dec!(60000.2), store::now_ms());
    board.quotes.lock().unwrap().insert(BTC.into(), q);
    p.advance(store::now_ms()).unwrap();
    assert!(!a.price_stale(BTC));
    assert_eq!(p.price(BTC), Some(dec!(60000.2)));
    let buy = a
        .place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    assert_eq!(buy.avg_fill_price, dec!(60000.5));
    let sell = a
        .place(&market("s", OrderSide::Sell, dec!(0.01), Side::Short))
        .unwrap();
    assert_eq!(sell.avg_fill_price, dec!(60000.0));
    // A buy limit fills when the ask comes down to it.
    a.place(&limit(
        "leg",
        OrderSide::Buy,
        dec!(59900),
        dec!(0.01),
        Side::Long,
    ))
    .unwrap();
    let q = quote(
        dec!(59899.0),
        dec!(59900.0),
        dec!(59950.0),
        store::now_ms() + 1,
    );
    board.quotes.lock().unwrap().insert(BTC.into(), q);
    assert_eq!(p.advance(store::now_ms()).unwrap(), 1);
    assert_eq!(
        a.order(BTC, "leg").unwrap().unwrap().avg_fill_price,
        dec!(59900)
    );
    // A quote older than 30 s pauses the market.
    let old = quote(
        dec!(50000),
        dec!(50001),
        dec!(50000),
        store::now_ms() - 31_000,
    );
    board.quotes.lock().unwrap().insert(BTC.into(), old);
    p.advance(store::now_ms()).unwrap();
    assert!(a.price_stale(BTC));
    assert_eq!(p.price(BTC), Some(dec!(59950.0)), "nothing moved");
    assert_eq!(
        a.order(BTC, "leg").unwrap().unwrap().status,
        OrderStatus::Filled
    );
    assert!(a
        .place(&market("e2", OrderSide::Buy, dec!(0.01), Side::Long))
        .is_err());
}

#[test]
fn live_marketable_limits_take_the_ask_or_bid_and_others_rest() {
    let board = Arc::new(Board::default());
    let p = Paper::in_memory_with(
        params(1, 0.0),
        &PaperPrices::Live(Venue::Bybit),
        Some(board.clone()),
        store::now_ms(),
    )
    .unwrap();
    cache_majors(&p);
    let a = p.account(1);
    a.market(BTC).unwrap();
    // Paused: a limit is not refused, it rests until a fresh quote.
    let early = a
        .place(&limit(
            "early",
            OrderSide::Buy,
            dec!(59000),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(early.status, OrderStatus::Open);
    let q = quote(dec!(60000.0), dec!(60001.0), dec!(60000.4), store::now_ms());
    board.quotes.lock().unwrap().insert(BTC.into(), q);
    p.advance(store::now_ms()).unwrap();
    // A buy limit above the ask fills at the ask, not at its limit or the last.
    let buy = a
        .place(&limit(
            "b",
            OrderSide::Buy,
            dec!(60100),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(
        (buy.status, buy.avg_fill_price),
        (OrderStatus::Filled, dec!(60001.0))
    );
    // Between the bid and the ask it rests: nobody sells that low.
    let mid = a
        .place(&limit(
            "m",
            OrderSide::Buy,
            dec!(60000.5),
            dec!(0.01),
            Side::Long,
        ))
        .unwrap();
    assert_eq!(mid.status, OrderStatus::Open);
    // A sell limit below the bid fills at the bid.
    let sell = a
        .place(&limit(
            "s",
            OrderSide::Sell,
            dec!(59900),
            dec!(0.01),
            Side::Short,
        ))
        .unwrap();
    assert_eq!(
        (sell.status, sell.avg_fill_price),
        (OrderStatus::Filled, dec!(60000.0))
    );
}

#[test]
fn leverage_above_the_listings_maximum_is_refused() {
    let p = paper();
    let a = p.account(1);
    a.set_leverage(BTC, Side::Long, 100).unwrap();
    let refused = a.set_leverage(BTC, Side::Long, 101);
    assert!(
        matches!(&refused, Err(ExchangeError::Rejected(m)) if m.contains("maximum of 100")),
        "{refused:?}"
    );
    let sol = a.set_leverage("SOL/USDT", Side::Short, 76);
    assert!(matches!(sol, Err(ExchangeError::Rejected(_))), "{sol:?}");
    let generic = a.set_leverage("PEPE/USDT", Side::Long, 51);
    assert!(
        matches!(generic, Err(ExchangeError::Rejected(_))),
        "{generic:?}"
    );
    // At every listing's maximum the liquidation price stays below a long's entry
    // and above a short's.
    for symbol in [BTC, "ETH/USDT", "SOL/USDT", "PEPE/USDT"] {
        let l = super::markets::listing(symbol).unwrap();
        let (lev, mmr) = (l.max_leverage, l.maintenance_margin_rate);
        assert!(
            liquidation_price(Side::Long, dec!(100), lev, mmr) < dec!(100),
            "{symbol}"
        );
        assert!(
            liquidation_price(Side::Short, dec!(100), lev, mmr) > dec!(100),
            "{symbol}"
        );
    }
}

#[test]
fn a_live_market_holding_a_position_keeps_being_wanted_and_an_idle_one_does_not() {
    let board = Arc::new(Board::default());
    let now = store::now_ms();
    let p = Paper::in_memory_with(
        params(1, 0.0),
        &PaperPrices::Live(Venue::Bybit),
        Some(board.clone()),
        now,
    )
    .unwrap();
    cache_majors(&p);
    let a = p.account(1);
    a.market(BTC).unwrap();
    a.market(ETH).unwrap();
    let wanted = |symbol: &str| {
        board
            .wanted
            .lock()
            .unwrap()
            .iter()
            .filter(|s| *s == symbol)
            .count()
    };
    assert_eq!((wanted(BTC), wanted(ETH)), (1, 1), "asked once when listed");
    for (symbol, price) in [(BTC, dec!(60000)), (ETH, dec!(3000))] {
        let q = quote(price, price + dec!(0.1), price, store::now_ms());
        board.quotes.lock().unwrap().insert(symbol.into(), q);
    }
    p.advance(store::now_ms()).unwrap();
    a.place(&market("e", OrderSide::Buy, dec!(0.01), Side::Long))
        .unwrap();
    let (btc, eth) = (wanted(BTC), wanted(ETH));
    // Three more steps, each with a new quote: the market with a position (and a
    // stop to protect it, were there one) is asked for again every step; the idle
    // one is left for the market-data process to forget.
    for k in 1..=3 {
        for (symbol, price) in [(BTC, dec!(60000)), (ETH, dec!(3000))] {
            let q = quote(price, price + dec!(0.1), price, store::now_ms() + k);
            board.quotes.lock().unwrap().insert(symbol.into(), q);
        }
        p.advance(store::now_ms()).unwrap();
    }
    assert_eq!(wanted(BTC), btc + 3);
    assert_eq!(wanted(ETH), eth);
}
