//! The paper exchange's in-memory state and its indices.
//!
//! Memory holds markets, accounts, positions and the *open* orders only; closed
//! orders live in SQLite alone. The indices are what keep a busy instance cheap:
//! resting orders sit in per-market price-ordered sets (a price step touches only the
//! orders it crosses), and each account keeps its own open order ids per market (an
//! account call never scans other users' orders). Untriggered stops sit in two more
//! sets per market, ordered by trigger price.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::store::sql::Conn;
use rust_decimal::Decimal;
use slog::warn;

use super::candles::Candle;
use super::live::Live;
use super::live_listing::{catalogued, Catalogued};
use super::markets::{self, Listing};
use super::replay::Replay;
use super::walk::Walk;
use crate::bots::ladder::{gross_pnl, round_price, Market, Side};
use crate::exchange::{ExchangeError, Order, OrderKind, OrderSide};

/// Index of a market in `Book::markets`; stable for the life of a book.
pub(super) type MktId = usize;

/// What every account starts with (USDT).
pub(super) const START_BALANCE: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);
pub(super) const DEFAULT_LEVERAGE: u32 = 10;

/// A resting order's place in a price-ordered set: (price, order id); the id
/// breaks ties by age.
pub(super) type Level = (Decimal, i64);

pub(super) fn level(price: Decimal, id: i64) -> Level {
    (price, id)
}

/// One listed symbol: its walk state and resting orders.
pub(super) struct MarketState {
    pub symbol: String,
    pub spec: Market,
    /// The walk's stream key for this symbol.
    pub stream: u64,
    pub price: Decimal,
    pub step_no: u64,
    /// The time the last step stands for.
    pub updated_ms: i64,
    /// Resting buys and sells (limit orders only).
    pub bids: BTreeSet<Level>,
    pub asks: BTreeSet<Level>,
    /// Untriggered stops by trigger price: sells (a long's stop) fire when the mark
    /// falls to their trigger, buys (a short's) when it rises to it.
    pub stops_fall: BTreeSet<Level>,
    pub stops_rise: BTreeSet<Level>,
    /// The listing's maintenance margin rate (what sets liquidation prices).
    pub mmr: Decimal,
    /// The listing's highest leverage: above it a position's liquidation price
    /// would lie at or beyond its entry.
    pub max_leverage: u32,
    /// Accounts holding a position here: what a price move checks for liquidation.
    pub holders: BTreeSet<i64>,
    /// The minute candle the latest price belongs to (`candles`).
    pub candle: Option<Candle>,
    /// Live prices only: the quote the market last moved to, `None` before the
    /// first one (or on a stale one: the market is then paused).
    pub quote: Option<crate::market::Quote>,
}

impl MarketState {
    /// Whether any account holds a position or a resting order or stop here.
    pub fn in_use(&self) -> bool {
        !(self.holders.is_empty()
            && self.bids.is_empty()
            && self.asks.is_empty()
            && self.stops_fall.is_empty()
            && self.stops_rise.is_empty())
    }
}

/// One direction of a hedge-mode position; size 0 means flat.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Pos {
    pub size: Decimal,
    pub avg: Decimal,
}

/// One user's account.
pub(super) struct Account {
    pub balance: Decimal,
    /// Explicitly set leverage; absent = `DEFAULT_LEVERAGE`.
    pub leverage: HashMap<MktId, u32>,
    /// Long and short position per market, indexed by `side_ix`.
    pub positions: HashMap<MktId, [Pos; 2]>,
    /// Open order ids per market, oldest first.
    pub open: HashMap<MktId, Vec<i64>>,
    /// The last funding boundary settled for this account (its own clock: in a
    /// cluster an account moves between instances that fund only what they hold).
    pub funded_ms: i64,
}

impl Account {
    pub(super) fn new(balance: Decimal, funded_ms: i64) -> Account {
        Account {
            balance,
            leverage: HashMap::new(),
            positions: HashMap::new(),
            open: HashMap::new(),
            funded_ms,
        }
    }
}

/// An order with the bookkeeping the public `Order` does not carry.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OrderRec {
    pub id: i64,
    pub user_id: i64,
    pub mkt: MktId,
    pub updated_ms: i64,
    pub order: Order,
}

impl OrderRec {
    /// Whether the order opens (or adds to) its position rather than reducing it.
    pub fn opens(&self) -> bool {
        self.order.side == OrderSide::opening(self.order.position_side)
    }

    pub fn remaining(&self) -> Decimal {
        (self.order.qty - self.order.filled_qty).max(Decimal::ZERO)
    }
}

/// Position slot of a direction in `Account::positions`.
pub(super) fn side_ix(side: Side) -> usize {
    match side {
        Side::Long => 0,
        Side::Short => 1,
    }
}

pub(super) fn ix_side(ix: usize) -> Side {
    if ix == 0 {
        Side::Long
    } else {
        Side::Short
    }
}

/// Rounds a quantity to the nearest step (partial fills of a walk step may leave
/// a remainder finer than the step).
pub(super) fn round_qty(qty: Decimal, m: &Market) -> Decimal {
    round_price(qty, &Market { tick: m.step, ..*m })
}

/// One execution of an order, as it happened: memory keeps none, the database
/// keeps them all (`executions` reads them back).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fill {
    pub user_id: i64,
    pub order_id: i64,
    pub mkt: MktId,
    pub side: OrderSide,
    pub qty: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub time_ms: i64,
    /// The fill closed a position by liquidation.
    pub liquidation: bool,
}

/// One funding settlement of a position (`funding`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Settlement {
    pub user_id: i64,
    pub mkt: MktId,
    pub side: Side,
    pub amount: Decimal,
    pub rate: Decimal,
    pub time_ms: i64,
}

/// What a call changed, so that exactly that is written to SQLite in one
/// transaction. Orders carry their final image because closed ones leave memory;
/// fills are new rows, in the order they happened.
#[derive(Default)]
pub(super) struct Dirty {
    pub markets: BTreeSet<MktId>,
    pub balances: BTreeSet<i64>,
    pub leverage: BTreeSet<(i64, MktId)>,
    pub positions: BTreeSet<(i64, MktId, usize)>,
    pub orders: BTreeMap<i64, OrderRec>,
    pub fills: Vec<Fill>,
    /// Candles to upsert, by market and start: one row per minute touched.
    pub candles: BTreeMap<(MktId, i64), Candle>,
    /// Delete candles older than this (the occasional prune).
    pub prune_candles_before: Option<i64>,
    pub settlements: Vec<Settlement>,
    /// Accounts reset to the starting balance: their rows are deleted first.
    pub resets: BTreeSet<i64>,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.markets.is_empty()
            && self.balances.is_empty()
            && self.leverage.is_empty()
            && self.positions.is_empty()
            && self.orders.is_empty()
            && self.fills.is_empty()
            && self.candles.is_empty()
            && self.prune_candles_before.is_none()
            && self.settlements.is_empty()
            && self.resets.is_empty()
    }
}

/// The whole in-memory exchange.
pub(super) struct Book {
    pub walk: Walk,
    pub tick_ms: u64,
    pub markets: Vec<MarketState>,
    by_symbol: HashMap<String, MktId>,
    pub accounts: HashMap<i64, Account>,
    /// Open orders by id.
    pub orders: HashMap<i64, OrderRec>,
    pub next_id: i64,
    /// The latest time `advance` was called with: new markets start their walk here.
    pub clock_ms: i64,
    /// When the exchange's state was first created (persisted): replayed prices
    /// count their time from it.
    pub epoch_ms: i64,
    /// `PAPER_PRICES=replay:`: the symbols it names take its prices instead of
    /// walking.
    pub replay: Option<Arc<Replay>>,
    /// `PAPER_PRICES=bybit|bingx`: every market follows that venue's live quotes.
    pub live: Option<Live>,
    /// `PAPER_FUNDING_RATE`: the rate of each 8-hour settlement without a live one.
    pub funding_rate: Decimal,
    /// Every account in memory is settled up to this funding boundary (the
    /// lowest of their clocks); `None`: not known, look at each account.
    pub funded_ms: Option<i64>,
    /// When candles were last pruned (memory only: a restart prunes once more).
    pub pruned_ms: i64,
    /// Live symbols listed without a cached catalogue, already logged.
    uncatalogued: HashSet<String>,
}

impl Book {
    pub fn new(walk: Walk, tick_ms: u64, clock_ms: i64) -> Book {
        Book {
            walk,
            tick_ms,
            markets: Vec::new(),
            by_symbol: HashMap::new(),
            accounts: HashMap::new(),
            orders: HashMap::new(),
            next_id: 1,
            clock_ms,
            epoch_ms: clock_ms,
            replay: None,
            live: None,
            funding_rate: super::DEFAULT_FUNDING_RATE,
            funded_ms: None,
            pruned_ms: i64::MIN,
            uncatalogued: HashSet::new(),
        }
    }

    /// The replay that sets `symbol`'s price, if any names it.
    pub fn replay_of(&self, symbol: &str) -> Option<Arc<Replay>> {
        self.replay.as_ref().filter(|r| r.names(symbol)).cloned()
    }

    /// Adds a market in the given state (loading, or listing a new one).
    pub fn add_market(
        &mut self,
        symbol: &str,
        listing: &Listing,
        price: Decimal,
        step_no: u64,
        updated_ms: i64,
    ) -> MktId {
        let id = self.markets.len();
        self.markets.push(MarketState {
            symbol: symbol.to_owned(),
            spec: listing.market,
            stream: self.walk.stream(symbol),
            price,
            step_no,
            updated_ms,
            bids: BTreeSet::new(),
            asks: BTreeSet::new(),
            stops_fall: BTreeSet::new(),
            stops_rise: BTreeSet::new(),
            mmr: listing.maintenance_margin_rate,
            max_leverage: listing.max_leverage,
            holders: BTreeSet::new(),
            candle: None,
            quote: None,
        });
        self.by_symbol.insert(symbol.to_owned(), id);
        id
    }

    /// The market of `symbol` if listed yet; `Ok(None)` for a valid symbol nobody
    /// asked for (reads need not list it), `UnknownSymbol` for anything else.
    pub fn lookup(&self, symbol: &str) -> Result<Option<MktId>, ExchangeError> {
        match self.by_symbol.get(symbol) {
            Some(&id) => Ok(Some(id)),
            None if markets::listing(symbol).is_some() => Ok(None),
            None => Err(ExchangeError::UnknownSymbol(symbol.to_owned())),
        }
    }

    /// The listing a new market of `symbol` gets: with live prices the venue's, as
    /// its cached catalogue lists it — a symbol the catalogue does not list is
    /// unknown, and without a cached catalogue nothing is listed yet (a retryable
    /// error, logged once per symbol) — otherwise paper's own.
    pub fn listing_of(&mut self, conn: &Conn, symbol: &str) -> Result<Listing, ExchangeError> {
        let unknown = || ExchangeError::UnknownSymbol(symbol.to_owned());
        let Some(live) = &self.live else {
            return markets::listing(symbol).ok_or_else(unknown);
        };
        let found = catalogued(conn, live.venue, symbol).map_err(store_error)?;
        match found {
            Catalogued::Listed(listing) => Ok(listing),
            Catalogued::NotListed => Err(unknown()),
            // Paper's own increments would misprice a venue's market (a 0.01 tick
            // under a 0.00001 price) and change under its positions once the
            // catalogue arrives: the market waits for the catalogue (retryable;
            // a config save or `GET /api/markets` fetches it).
            Catalogued::NotCached => {
                if self.uncatalogued.insert(symbol.to_owned()) {
                    warn!(live.log, "paper: no cached catalogue of the venue yet, market not listed";
                          "venue" => live.venue.name(), "symbol" => symbol);
                }
                Err(ExchangeError::Network(format!(
                    "the {} market catalogue is not cached yet: {symbol} cannot be listed",
                    live.venue.name()
                )))
            }
        }
    }

    /// The market of `symbol`, listing it on first use (`listing_of`): at the
    /// replay's price of the moment (its first line's before that) for a symbol
    /// the replay names, with live prices unpriced until its first quote
    /// (`live_to`), else at the listing's start price.
    pub fn ensure_market(
        &mut self,
        conn: &Conn,
        symbol: &str,
        dirty: &mut Dirty,
    ) -> Result<MktId, ExchangeError> {
        if let Some(&id) = self.by_symbol.get(symbol) {
            return Ok(id);
        }
        let listing = self.listing_of(conn, symbol)?;
        let elapsed = self.clock_ms - self.epoch_ms;
        let price = self
            .replay_of(symbol)
            .and_then(|r| {
                r.price_at(symbol, elapsed)
                    .or_else(|| r.first_price(symbol))
            })
            .map_or(listing.start_price, |p| {
                round_price(p, &listing.market).max(listing.market.tick)
            });
        let id = self.add_market(symbol, &listing, price, 0, self.clock_ms);
        if let Some(live) = &self.live {
            live.want(symbol);
        }
        dirty.markets.insert(id);
        Ok(id)
    }

    /// Whether a market has no price yet: a live one before its first quote,
    /// which publishes no mark and matches nothing.
    pub fn unpriced(&self, mkt: MktId) -> bool {
        self.markets[mkt].price <= Decimal::ZERO
    }

    /// The account of `uid`, created with the starting balance on first use (and
    /// then persisted like any balance change).
    pub fn account_mut(&mut self, uid: i64, dirty: &mut Dirty) -> &mut Account {
        let funded = self.new_account_funded_ms();
        self.accounts.entry(uid).or_insert_with(|| {
            dirty.balances.insert(uid);
            Account::new(START_BALANCE, funded)
        })
    }

    /// A new account's funding clock: no boundary before it existed is its own.
    pub fn new_account_funded_ms(&self) -> i64 {
        super::funding::boundary_at_or_before(self.clock_ms)
    }

    /// Adds an account as loaded from the database (`funded_ms`: its clock).
    pub fn load_account(&mut self, uid: i64, balance: Decimal, funded_ms: i64) -> &mut Account {
        self.accounts
            .entry(uid)
            .or_insert_with(|| Account::new(balance, funded_ms))
    }

    pub fn balance(&self, uid: i64) -> Decimal {
        self.accounts.get(&uid).map_or(START_BALANCE, |a| a.balance)
    }

    pub fn leverage(&self, uid: i64, mkt: MktId) -> u32 {
        self.accounts
            .get(&uid)
            .and_then(|a| a.leverage.get(&mkt).copied())
            .unwrap_or(DEFAULT_LEVERAGE)
    }

    pub fn set_leverage(&mut self, uid: i64, mkt: MktId, leverage: u32, dirty: &mut Dirty) {
        // Every start and resume sets it again; unchanged, there is nothing to
        // write (a write takes the database's one write lock from every bot).
        let current = self.accounts.get(&uid).and_then(|a| a.leverage.get(&mkt));
        if current == Some(&leverage) {
            return;
        }
        self.account_mut(uid, dirty).leverage.insert(mkt, leverage);
        dirty.leverage.insert((uid, mkt));
    }

    /// Keeps `MarketState::holders` in step with the account's positions there.
    pub fn note_holder(&mut self, uid: i64, mkt: MktId) {
        let holds = self.position(uid, mkt, Side::Long).size > Decimal::ZERO
            || self.position(uid, mkt, Side::Short).size > Decimal::ZERO;
        let holders = &mut self.markets[mkt].holders;
        if holds {
            holders.insert(uid);
        } else {
            holders.remove(&uid);
        }
    }

    pub fn position(&self, uid: i64, mkt: MktId, side: Side) -> Pos {
        self.accounts
            .get(&uid)
            .and_then(|a| a.positions.get(&mkt))
            .map_or_else(Pos::default, |p| p[side_ix(side)])
    }

    /// Ids of the account's open orders on a market, oldest first.
    pub fn open_ids(&self, uid: i64, mkt: MktId) -> &[i64] {
        self.accounts
            .get(&uid)
            .and_then(|a| a.open.get(&mkt))
            .map_or(&[], Vec::as_slice)
    }

    /// The account's open order with `client_id` on a market.
    pub fn open_by_client(&self, uid: i64, mkt: MktId, client_id: &str) -> Option<&OrderRec> {
        self.open_ids(uid, mkt)
            .iter()
            .filter_map(|id| self.orders.get(id))
            .find(|r| r.order.client_id == client_id)
    }

    /// The price-ordered set an open order rests in, and its place there: limits
    /// by price, stops by trigger; market orders never rest.
    fn resting_level(&mut self, rec: &OrderRec) -> Option<(&mut BTreeSet<Level>, Level)> {
        let m = &mut self.markets[rec.mkt];
        let o = &rec.order;
        match (o.kind, o.side) {
            (OrderKind::Stop, OrderSide::Sell) => Some((&mut m.stops_fall, o.trigger_price?)),
            (OrderKind::Stop, OrderSide::Buy) => Some((&mut m.stops_rise, o.trigger_price?)),
            (_, OrderSide::Buy) => Some((&mut m.bids, o.price?)),
            (_, OrderSide::Sell) => Some((&mut m.asks, o.price?)),
        }
        .map(|(set, price)| (set, level(price, rec.id)))
    }

    /// Puts an order on the book and into every index.
    pub fn insert_open(&mut self, rec: OrderRec) {
        if let Some((set, at)) = self.resting_level(&rec) {
            set.insert(at);
        }
        let funded = self.new_account_funded_ms();
        let acct = self.load_account(rec.user_id, START_BALANCE, funded);
        acct.open.entry(rec.mkt).or_default().push(rec.id);
        self.orders.insert(rec.id, rec);
    }

    /// Takes an order off the book and out of every index.
    pub fn remove_open(&mut self, id: i64) -> Option<OrderRec> {
        let rec = self.orders.remove(&id)?;
        if let Some((set, at)) = self.resting_level(&rec) {
            set.remove(&at);
        }
        if let Some(ids) = self
            .accounts
            .get_mut(&rec.user_id)
            .and_then(|a| a.open.get_mut(&rec.mkt))
        {
            ids.retain(|&i| i != id);
        }
        Some(rec)
    }

    /// Balance minus the margin held by positions and by open orders that would open
    /// or add to one, each at its market's current leverage, and minus the
    /// positions' unrealised losses (gains are not spendable until realised, as on
    /// Bybit). O(this account).
    pub fn available(&self, uid: i64) -> Decimal {
        let Some(acct) = self.accounts.get(&uid) else {
            return START_BALANCE;
        };
        let lev = |mkt: &MktId| Decimal::from(self.leverage(uid, *mkt).max(1));
        let positions: Decimal = acct
            .positions
            .iter()
            .map(|(mkt, p)| p.iter().map(|s| s.size * s.avg).sum::<Decimal>() / lev(mkt))
            .sum();
        let losses: Decimal = acct
            .positions
            .iter()
            .flat_map(|(mkt, p)| {
                let mark = self.markets[*mkt].price;
                p.iter()
                    .enumerate()
                    .map(move |(ix, s)| gross_pnl(ix_side(ix), s.size, s.avg, mark))
            })
            .map(|pnl| pnl.min(Decimal::ZERO))
            .sum();
        let orders: Decimal = acct
            .open
            .iter()
            .map(|(mkt, ids)| {
                let notional: Decimal = ids
                    .iter()
                    .filter_map(|id| self.orders.get(id))
                    .filter(|r| r.opens())
                    .map(|r| r.remaining() * r.order.price.unwrap_or(Decimal::ZERO))
                    .sum();
                notional / lev(mkt)
            })
            .sum();
        acct.balance - positions - orders + losses
    }
}

/// A failed catalogue read: a database one keeps its retryable kind.
fn store_error(e: crate::store::StoreError) -> ExchangeError {
    match e {
        crate::store::StoreError::Sql(db) => super::PaperError::Db(db).into(),
        other => ExchangeError::Malformed(other.to_string()),
    }
}
