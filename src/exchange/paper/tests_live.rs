//! Live paper markets on their venue's listings: increments and leverage from
//! the cached catalogue, fills on the tick, no price before the first quote.

use std::sync::Arc;

use super::tests::{limit, market, params};
use super::tests_market::{quote, Board};
use super::*;
use crate::bots::ladder::{Market, Side};
use crate::exchange::{Exchange, ExchangeError, OrderSide, OrderStatus};
use crate::market::catalogue::MarketInfo;
use crate::money::dec;
use crate::store::{self, market_cache};

const PEPE: &str = "1000PEPE/USDT";

/// A live (Bybit) paper exchange and its quote board.
fn live() -> (Arc<Paper>, Arc<Board>) {
    let board = Arc::new(Board::default());
    let p = Paper::in_memory_with(
        params(1, 0.0),
        &PaperPrices::Live(Venue::Bybit),
        Some(board.clone()),
        store::now_ms(),
    )
    .unwrap();
    (p, board)
}

/// Caches a Bybit catalogue listing 1000PEPE/USDT as Bybit does.
fn cache_catalogue(p: &Paper) {
    let pepe = MarketInfo {
        symbol: PEPE.into(),
        tick_size: dec!(0.0000001),
        qty_step: dec!(100),
        min_qty: dec!(100),
        min_notional: dec!(5),
        max_leverage: 75,
        last_price: Some(dec!(0.0101)),
        funding_rate: None,
        next_funding_at: None,
    };
    let mut guard = p.lock().unwrap();
    market_cache::save_catalogue(&mut guard.conn, "catalogue:bybit", "bybit", &[pepe], 0).unwrap();
}

fn set_quote(board: &Board, symbol: &str, bid: Decimal, ask: Decimal, mark: Decimal, t: i64) {
    let q = quote(bid, ask, mark, t);
    board.quotes.lock().unwrap().insert(symbol.into(), q);
}

/// `order` on `symbol` (the shared helpers build BTC orders).
fn on(symbol: &str, order: crate::exchange::NewOrder) -> crate::exchange::NewOrder {
    crate::exchange::NewOrder {
        symbol: symbol.into(),
        ..order
    }
}

fn persisted_price(p: &Paper, symbol: &str) -> Option<String> {
    let guard = p.lock().unwrap();
    let mut stmt = guard
        .conn
        .prepare("SELECT price FROM paper_markets WHERE symbol = ?1")
        .unwrap();
    let mut rows = stmt.query([symbol]).unwrap();
    rows.next().unwrap().map(|r| r.get(0).unwrap())
}

#[test]
fn a_catalogued_market_trades_on_the_venues_tick_step_and_leverage() {
    let (p, board) = live();
    cache_catalogue(&p);
    let a = p.account(1);
    assert_eq!(
        a.market(PEPE).unwrap(),
        Market {
            tick: dec!(0.0000001),
            step: dec!(100),
            min_qty: dec!(100),
            min_notional: dec!(5),
        }
    );
    a.set_leverage(PEPE, Side::Long, 75).unwrap();
    let above = a.set_leverage(PEPE, Side::Long, 76);
    assert!(
        matches!(&above, Err(ExchangeError::Rejected(m)) if m.contains("maximum of 75")),
        "{above:?}"
    );
    // Back to 10x: at 75x the stop below would come after the liquidation.
    a.set_leverage(PEPE, Side::Long, 10).unwrap();
    let t = store::now_ms();
    set_quote(
        &board,
        PEPE,
        dec!(0.01009951),
        dec!(0.01010049),
        dec!(0.0101),
        t,
    );
    p.advance(t).unwrap();
    // The mark keeps its fourth significant digit (a 0.01 tick made it 0.01).
    assert_eq!(p.price(PEPE), Some(dec!(0.0101)));
    assert_eq!(a.ticker(PEPE).unwrap(), dec!(0.0101));
    // Off-grid ask and bid: a buy takes the ask rounded up, a sell the bid down.
    let buy = a
        .place(&on(
            PEPE,
            market("b", OrderSide::Buy, dec!(1000), Side::Long),
        ))
        .unwrap();
    assert_eq!(buy.avg_fill_price, dec!(0.0101005));
    let sell = a
        .place(&on(
            PEPE,
            market("s", OrderSide::Sell, dec!(1000), Side::Short),
        ))
        .unwrap();
    assert_eq!(sell.avg_fill_price, dec!(0.0100995));
    // Quantities go by the venue's step and minimum.
    let small = a.place(&on(PEPE, market("x", OrderSide::Buy, dec!(99), Side::Long)));
    assert!(
        matches!(small, Err(ExchangeError::BelowMinimum)),
        "{small:?}"
    );
    // A triggered stop is a market order: the bid, on the tick.
    let stop = super::tests::stop("st", OrderSide::Sell, dec!(0.01005), dec!(1000), Side::Long);
    a.place(&on(PEPE, stop)).unwrap();
    set_quote(
        &board,
        PEPE,
        dec!(0.01004987),
        dec!(0.0100502),
        dec!(0.01005),
        t + 1,
    );
    assert_eq!(p.advance(t + 1).unwrap(), 1);
    let stopped = a.order(PEPE, "st").unwrap().unwrap();
    assert_eq!(
        (stopped.status, stopped.avg_fill_price),
        (OrderStatus::Filled, dec!(0.0100498))
    );
}

#[test]
fn the_first_quote_sets_the_price_without_crossing_anything() {
    let (p, board) = live();
    cache_catalogue(&p);
    let a = p.account(1);
    // Before any quote: no mark published (a bot would lay its ladder around
    // it), nothing persisted as a price.
    a.market(PEPE).unwrap();
    assert_eq!(p.price(PEPE), None);
    let early = a.ticker(PEPE);
    assert!(matches!(&early, Err(e) if e.is_retryable()), "{early:?}");
    assert_eq!(persisted_price(&p, PEPE), None);
    let rests = limit("l", OrderSide::Buy, dec!(0.0105), dec!(1000), Side::Long);
    assert_eq!(a.place(&on(PEPE, rests)).unwrap().status, OrderStatus::Open);
    assert!(a.position(PEPE, Side::Long).unwrap().mark_price.is_zero());
    // The first quote only prices the market: there was no earlier price, so no
    // move crossed the resting buy (a start price falling to it would have).
    let t = store::now_ms();
    set_quote(&board, PEPE, dec!(0.0101), dec!(0.0102), dec!(0.0101), t);
    assert_eq!(p.advance(t).unwrap(), 0);
    assert_eq!(p.price(PEPE), Some(dec!(0.0101)));
    assert_eq!(persisted_price(&p, PEPE).as_deref(), Some("0.0101"));
    assert_eq!(
        a.order(PEPE, "l").unwrap().unwrap().status,
        OrderStatus::Open
    );
    // From then on quotes move and match as usual.
    set_quote(
        &board,
        PEPE,
        dec!(0.0103),
        dec!(0.0104),
        dec!(0.0103),
        t + 1,
    );
    assert_eq!(p.advance(t + 1).unwrap(), 1);
    assert_eq!(
        a.order(PEPE, "l").unwrap().unwrap().status,
        OrderStatus::Filled
    );
}

#[test]
fn a_symbol_the_cached_catalogue_does_not_list_is_refused() {
    let (p, board) = live();
    cache_catalogue(&p);
    let a = p.account(1);
    let doge = "DOGE/USDT";
    let refused = a.place(&on(
        doge,
        limit("d", OrderSide::Buy, dec!(0.1), dec!(10), Side::Long),
    ));
    assert!(
        matches!(&refused, Err(ExchangeError::UnknownSymbol(s)) if s == doge),
        "{refused:?}"
    );
    assert!(matches!(
        a.market(doge),
        Err(ExchangeError::UnknownSymbol(_))
    ));
    assert!(matches!(
        a.set_leverage(doge, Side::Long, 5),
        Err(ExchangeError::UnknownSymbol(_))
    ));
    assert!(board.wanted.lock().unwrap().is_empty(), "never followed");
    assert_eq!(p.price(doge), None);
}

#[test]
fn without_a_cached_catalogue_a_live_market_waits_for_it() {
    let (p, board) = live();
    let a = p.account(1);
    let doge = "DOGE/USDT";
    // Paper's own 0.01 tick would misprice the venue's market: nothing is listed
    // until the venue's catalogue is cached (retryable), and nothing is wanted.
    let refused = a.market(doge);
    assert!(
        matches!(&refused, Err(e @ ExchangeError::Network(_)) if e.is_retryable()),
        "{refused:?}"
    );
    assert!(board.wanted.lock().unwrap().is_empty());
    let doge_info = MarketInfo {
        symbol: doge.into(),
        tick_size: dec!(0.00001),
        qty_step: dec!(1),
        min_qty: dec!(1),
        min_notional: dec!(5),
        max_leverage: 50,
        last_price: None,
        funding_rate: None,
        next_funding_at: None,
    };
    {
        let mut guard = p.lock().unwrap();
        market_cache::save_catalogue(&mut guard.conn, "catalogue:bybit", "bybit", &[doge_info], 0)
            .unwrap();
    }
    assert_eq!(a.market(doge).unwrap().tick, dec!(0.00001));
    assert_eq!(p.price(doge), None, "no start price published");
    let t = store::now_ms();
    set_quote(&board, doge, dec!(0.16011), dec!(0.16012), dec!(0.16011), t);
    assert_eq!(p.advance(t).unwrap(), 0);
    assert_eq!(p.price(doge), Some(dec!(0.16011)));
}

#[test]
fn a_reload_keeps_the_venues_listing_and_unquoted_markets_unpriced() {
    let (p, board) = live();
    cache_catalogue(&p);
    let a = p.account(1);
    let t = store::now_ms();
    set_quote(&board, PEPE, dec!(0.0101), dec!(0.0102), dec!(0.0101), t);
    a.market(PEPE).unwrap();
    p.advance(t).unwrap();
    // ETH joins the catalogue; a resting order on it before its first quote is
    // what a reload must list again (its market has no row yet).
    let mut guard = p.lock().unwrap();
    let eth = MarketInfo {
        symbol: "ETH/USDT".into(),
        tick_size: dec!(0.01),
        qty_step: dec!(0.01),
        min_qty: dec!(0.01),
        min_notional: dec!(5),
        max_leverage: 100,
        last_price: None,
        funding_rate: None,
        next_funding_at: None,
    };
    let pepe = market_cache::market(&guard.conn, "bybit", PEPE)
        .unwrap()
        .unwrap();
    market_cache::save_catalogue(&mut guard.conn, "catalogue:bybit", "bybit", &[pepe, eth], 0)
        .unwrap();
    drop(guard);
    let resting = limit("e", OrderSide::Buy, dec!(2000), dec!(0.01), Side::Long);
    assert_eq!(
        a.place(&on("ETH/USDT", resting)).unwrap().status,
        OrderStatus::Open
    );
    p.lock().unwrap().reload().unwrap();
    assert_eq!(a.market(PEPE).unwrap().tick, dec!(0.0000001));
    assert_eq!(p.price(PEPE), Some(dec!(0.0101)));
    assert_eq!(p.price("ETH/USDT"), None, "still waiting for a quote");
    assert_eq!(a.market("ETH/USDT").unwrap().min_notional, dec!(5));
    assert_eq!(a.open_orders("ETH/USDT").unwrap().len(), 1);
}
