//! The trading state both fake exchanges keep: one account, one symbol, hedge-mode
//! positions, orders by client id, fills with fees, a last price the test moves and
//! a mark price that follows it unless the test pins it. Limit orders fill only when
//! the test moves the last price across them; conditional (stop) orders trigger when
//! the price they watch (the mark, or the last price) crosses their trigger price.
//! All money is `Decimal`, so an answer never reads `0.009000000000000001`.

use rust_decimal::{dec, Decimal};

use super::fake_accounts::KeyPerms;
use super::fake_events::Funding;
use super::fake_inject::Injected;
use super::fake_outbox::{Change, Outbox};

/// An exchange's decimal string as a `Decimal` (None when it is not one).
pub fn dec(s: &str) -> Option<Decimal> {
    s.parse().ok()
}

/// A `Decimal` as the exchanges write numbers: a string without trailing zeros.
pub fn num(d: Decimal) -> String {
    d.normalize().to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Long,
    Short,
}

/// The price a conditional order watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerBy {
    Mark,
    Last,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trigger {
    pub price: Decimal,
    /// Fires when the watched price rises to `price` (else when it falls to it).
    pub rise: bool,
    pub by: TriggerBy,
}

impl Trigger {
    pub fn hit(&self, watched: Decimal) -> bool {
        if self.rise {
            watched >= self.price
        } else {
            watched <= self.price
        }
    }
}

/// Who placed an order: the API client, the trader on the exchange's site, or the
/// liquidation engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Api,
    Site,
    Liquidation,
}

/// Why an order ended without (fully) filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    None,
    /// Cancelled by a request.
    User,
    /// A closing order found no position left to close.
    ReduceOnly,
    /// A triggered opening order found too little margin.
    Margin,
    /// Cancelled before a liquidation.
    Liquidation,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FakeOrder {
    pub id: u64,
    /// Empty for orders without one (a stop on BingX, a manual close, a liquidation).
    pub client_id: String,
    pub buy: bool,
    pub market: bool,
    pub price: Decimal,
    pub qty: Decimal,
    pub filled: Decimal,
    pub avg: Decimal,
    pub fee: Decimal,
    pub dir: Dir,
    /// "untriggered", "open", "partial", "filled", "cancelled", or "deactivated"
    /// (a conditional order cancelled before it triggered).
    pub status: &'static str,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Set for a conditional order.
    pub trigger: Option<Trigger>,
    /// Closes whatever the position holds when it fills (Bybit `qty` "0" with
    /// `closeOnTrigger`, BingX `closePosition`); `qty` is then 0 until it fills.
    pub close_all: bool,
    pub origin: Origin,
    pub cancel: Cancel,
    /// Bybit's `closeOnTrigger` as placed.
    pub close_on_trigger: bool,
    /// The last price when it was placed.
    pub last_on_created: Decimal,
}

impl FakeOrder {
    /// A new order as a client places it (`id` and times are set by `Book::add`).
    pub fn new(client_id: &str, buy: bool, dir: Dir, qty: Decimal) -> FakeOrder {
        FakeOrder {
            id: 0,
            client_id: client_id.into(),
            buy,
            market: true,
            price: Decimal::ZERO,
            qty,
            filled: Decimal::ZERO,
            avg: Decimal::ZERO,
            fee: Decimal::ZERO,
            dir,
            status: "open",
            created_ms: 0,
            updated_ms: 0,
            trigger: None,
            close_all: false,
            origin: Origin::Api,
            cancel: Cancel::None,
            close_on_trigger: false,
            last_on_created: Decimal::ZERO,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.status, "open" | "partial" | "untriggered")
    }

    /// Opening: a buy on the long side or a sell on the short side.
    pub fn opens(&self) -> bool {
        self.buy == (self.dir == Dir::Long)
    }

    pub fn is_conditional(&self) -> bool {
        self.trigger.is_some()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    /// Unique per fill (Bybit's `execId`, BingX's `tradeId`).
    pub id: u64,
    pub order_id: u64,
    pub client_id: String,
    pub price: Decimal,
    pub qty: Decimal,
    pub fee: Decimal,
    /// Profit or loss this fill realised (closing fills only), before the fee.
    pub realized: Decimal,
    pub time_ms: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pos {
    pub size: Decimal,
    pub avg: Decimal,
}

/// Bybit's standard perpetual fees, used by both fakes.
pub const TAKER: Decimal = dec!(0.00055);
pub const MAKER: Decimal = dec!(0.0002);

#[derive(Debug)]
pub struct Book {
    pub api_key: String,
    pub secret: String,
    /// Added to the wall clock: the exchange's clock runs ahead, so a client that
    /// does not sync gets its timestamps refused.
    pub skew_ms: i64,
    /// The last traded price.
    pub price: Decimal,
    /// The mark price when pinned by `set_mark`; else it follows `price`.
    pub pinned_mark: Option<Decimal>,
    pub balance: Decimal,
    pub leverage: u32,
    /// Bybit: the short side's leverage (`leverage` is the long side's) and the
    /// account's margin mode (`REGULAR_MARGIN` = cross, `ISOLATED_MARGIN`, …).
    pub sell_leverage: u32,
    pub margin_mode: String,
    /// Hedge-mode sides whose leverage was set (BingX sets one side per call).
    pub leverage_sides: Vec<String>,
    pub orders: Vec<FakeOrder>,
    pub fills: Vec<Fill>,
    pub funding: Vec<Funding>,
    pub long: Pos,
    pub short: Pos,
    pub next_id: u64,
    /// Client ids of every accepted placement, in order.
    pub accepted: Vec<String>,
    /// Placements refused as duplicates.
    pub duplicates: usize,
    /// Requests refused for a bad signature, key or timestamp, or a malformed
    /// parameter: `(path, reason)`.
    pub refused: Vec<(String, String)>,
    pub inject: Vec<Injected>,
    /// `(path, body)`: the next request to `path` is answered with this raw body
    /// (HTTP 200), whatever it is — a garbled answer for the client to refuse.
    pub raw_replies: Vec<(String, String)>,
    /// `(path, status, body)`: the next request to `path` gets this HTTP status
    /// and body (a gateway's or firewall's page, not the exchange's envelope).
    pub http_replies: Vec<(String, u16, String)>,
    /// The next this many private requests are rate limited.
    pub rate_limit_next: usize,
    pub rate_limited: usize,
    /// Every request path seen, in order.
    pub seen: Vec<String>,
    /// Every public market-data request as `path?query`, in order (instruments,
    /// tickers, klines): what the server's caches cost the exchange.
    pub market_calls: Vec<String>,
    /// The next request to this `METHOD /path` is carried out but its answer is
    /// lost.
    pub lose_reply: Option<String>,
    /// Every change of the account, for the private streams (fake_outbox.rs).
    pub outbox: Outbox,
    /// Hedge mode (two positions, `positionIdx` 1/2 on Bybit, LONG/SHORT on
    /// BingX); false: one-way mode (Bybit `positionIdx` 0, BingX `BOTH`).
    pub hedge: bool,
    /// What the API key may do, as the key-information endpoints answer.
    pub perms: KeyPerms,
}

impl Book {
    pub fn new(api_key: &str, secret: &str) -> Book {
        Book {
            api_key: api_key.into(),
            secret: secret.into(),
            skew_ms: 15_000,
            price: Decimal::from(65_000),
            pinned_mark: None,
            balance: Decimal::from(10_000),
            leverage: 1,
            sell_leverage: 1,
            margin_mode: "REGULAR_MARGIN".into(),
            leverage_sides: Vec::new(),
            orders: Vec::new(),
            fills: Vec::new(),
            funding: Vec::new(),
            long: Pos::default(),
            short: Pos::default(),
            next_id: 1_000_000_000_000_000_001,
            accepted: Vec::new(),
            duplicates: 0,
            refused: Vec::new(),
            inject: Vec::new(),
            raw_replies: Vec::new(),
            http_replies: Vec::new(),
            rate_limit_next: 0,
            rate_limited: 0,
            seen: Vec::new(),
            market_calls: Vec::new(),
            lose_reply: None,
            outbox: Outbox::default(),
            hedge: true,
            perms: KeyPerms::default(),
        }
    }

    /// Records the order's current state in the outbox.
    fn emit_order(&mut self, i: usize) {
        let o = self.orders[i].clone();
        self.outbox.push(Change::Order(o));
    }

    /// The outbox events of a fill: the execution, the order, the position and
    /// the wallet (Bybit pushes the four topics for one trade).
    fn emit_fill(&mut self, i: usize, fill: Fill, delta: Decimal) {
        let order = self.orders[i].clone();
        let dir = order.dir;
        let realized = fill.realized;
        self.outbox.push(Change::Execution {
            fill,
            order: order.clone(),
        });
        self.outbox.push(Change::Order(order));
        let leverage = match dir {
            Dir::Long => self.leverage,
            Dir::Short => self.sell_leverage,
        };
        self.outbox.push(Change::Position {
            dir,
            pos: self.position(dir),
            mark: self.mark(),
            leverage,
            realized,
        });
        self.outbox.push(Change::Wallet {
            balance: self.balance,
            delta,
        });
    }

    pub fn server_ms(&self) -> i64 {
        super::fake_http::now_ms() + self.skew_ms
    }

    /// Whether this request's answer is to be lost (once).
    pub fn take_lost(&mut self, request: &str) -> bool {
        let lost = self.lose_reply.as_deref() == Some(request);
        if lost {
            self.lose_reply = None;
        }
        lost
    }

    pub fn pos(&mut self, dir: Dir) -> &mut Pos {
        match dir {
            Dir::Long => &mut self.long,
            Dir::Short => &mut self.short,
        }
    }

    pub fn position(&self, dir: Dir) -> Pos {
        match dir {
            Dir::Long => self.long,
            Dir::Short => self.short,
        }
    }

    /// The most recent order with this client id (ids are unique per placement).
    pub fn order(&self, client_id: &str) -> Option<&FakeOrder> {
        if client_id.is_empty() {
            return None;
        }
        self.orders.iter().rev().find(|o| o.client_id == client_id)
    }

    pub fn order_by_id(&self, id: u64) -> Option<&FakeOrder> {
        self.orders.iter().find(|o| o.id == id)
    }

    /// Untriggered conditional orders.
    pub fn stops(&self) -> Vec<&FakeOrder> {
        self.orders
            .iter()
            .filter(|o| o.status == "untriggered")
            .collect()
    }

    pub fn mark(&self) -> Decimal {
        self.pinned_mark.unwrap_or(self.price)
    }

    pub fn watched(&self, by: TriggerBy) -> Decimal {
        match by {
            TriggerBy::Mark => self.mark(),
            TriggerBy::Last => self.price,
        }
    }

    fn lev(&self) -> Decimal {
        Decimal::from(self.leverage.max(1))
    }

    /// Margin an opening order needs (and its taker fee).
    pub fn margin(&self, qty: Decimal, price: Decimal) -> Decimal {
        qty * price / self.lev() + qty * price * TAKER
    }

    /// Margin held by open positions and resting opening orders (a conditional
    /// order holds none until it triggers).
    pub fn used_margin(&self) -> Decimal {
        let rest: Decimal = self
            .orders
            .iter()
            .filter(|o| o.is_open() && o.opens() && !o.is_conditional())
            .map(|o| (o.qty - o.filled) * o.price / self.lev())
            .sum();
        rest + (self.long.size * self.long.avg + self.short.size * self.short.avg) / self.lev()
    }

    /// Adds an accepted order: a market order fills at once at the last price, a
    /// conditional one waits for its trigger.
    pub fn add(&mut self, o: FakeOrder) -> FakeOrder {
        let last = self.price;
        self.add_at(o, last)
    }

    /// `add` with a market order filling at `fill_price`.
    pub fn add_at(&mut self, mut o: FakeOrder, fill_price: Decimal) -> FakeOrder {
        o.id = self.next_id;
        self.next_id += 1;
        o.created_ms = self.server_ms();
        o.updated_ms = o.created_ms;
        o.last_on_created = self.price;
        if o.trigger.is_some() {
            o.status = "untriggered";
        }
        if o.origin == Origin::Api {
            self.accepted.push(o.client_id.clone());
        }
        let (id, fill_now) = (o.id, o.market && o.trigger.is_none());
        self.orders.push(o);
        self.emit_order(self.orders.len() - 1);
        if fill_now {
            self.fill(id, fill_price, TAKER);
        }
        self.order_by_id(id).cloned().expect("just added")
    }

    fn index(&self, id: u64) -> Option<usize> {
        self.orders.iter().position(|o| o.id == id)
    }

    fn end(&mut self, i: usize, status: &'static str, cancel: Cancel) {
        let now = self.server_ms();
        let o = &mut self.orders[i];
        o.status = status;
        o.cancel = cancel;
        o.updated_ms = now;
        self.emit_order(i);
    }

    /// Fills what is left of an order at `price`. A closing order fills at most
    /// what the position holds (its quantity is cut to that, as reduce-only orders
    /// are), so a position never goes negative; with nothing to close it is
    /// cancelled instead.
    pub fn fill(&mut self, id: u64, price: Decimal, rate: Decimal) {
        self.fill_some(id, price, rate, None);
    }

    /// A resting limit order fills `qty` (at most what is left) at its own price
    /// with the maker fee: a partial fill when some is still left. False when
    /// there is no such open limit order.
    pub fn fill_partial(&mut self, client_id: &str, qty: Decimal) -> bool {
        let Some(o) = self
            .order(client_id)
            .filter(|o| matches!(o.status, "open" | "partial") && !o.market)
            .cloned()
        else {
            return false;
        };
        self.fill_some(o.id, o.price, MAKER, Some(qty));
        true
    }

    /// `fill` of `part` of what is left (all of it when None); the order stays
    /// "partial" until nothing is left.
    fn fill_some(&mut self, id: u64, price: Decimal, rate: Decimal, part: Option<Decimal>) {
        let Some(i) = self.index(id) else {
            return;
        };
        let o = self.orders[i].clone();
        let held = self.position(o.dir).size;
        let mut qty = o.qty - o.filled;
        if let Some(p) = part.filter(|_| !o.close_all) {
            qty = qty.min(p);
        }
        if !o.opens() {
            qty = if o.close_all { held } else { qty.min(held) };
            if qty.is_zero() {
                return self.end(i, "cancelled", Cancel::ReduceOnly);
            }
        }
        let done = part.is_none() || o.close_all || o.filled + qty >= o.qty;
        let fee = qty * price * rate;
        let realized = self.apply(o.dir, o.opens(), qty, price);
        self.balance += realized - fee;
        let now = self.server_ms();
        let fill_id = self.next_id;
        self.next_id += 1;
        let o = &mut self.orders[i];
        if done && !o.opens() {
            o.qty = o.filled + qty;
        }
        o.avg = (o.avg * o.filled + price * qty) / (o.filled + qty);
        o.filled += qty;
        o.fee += fee;
        o.status = if done { "filled" } else { "partial" };
        o.updated_ms = now;
        let fill = Fill {
            id: fill_id,
            order_id: id,
            client_id: o.client_id.clone(),
            price,
            qty,
            fee,
            realized,
            time_ms: now,
        };
        self.fills.push(fill.clone());
        self.emit_fill(i, fill, realized - fee);
    }

    /// Moves the position; returns the profit or loss a close realises.
    fn apply(&mut self, dir: Dir, opens: bool, qty: Decimal, price: Decimal) -> Decimal {
        let pos = self.pos(dir);
        if opens {
            pos.avg = (pos.size * pos.avg + qty * price) / (pos.size + qty);
            pos.size += qty;
            return Decimal::ZERO;
        }
        let gain = match dir {
            Dir::Long => price - pos.avg,
            Dir::Short => pos.avg - price,
        };
        pos.size -= qty;
        if pos.size.is_zero() {
            *pos = Pos::default();
        }
        gain * qty
    }

    /// Moves the last price: resting limit orders it reaches fill at their price,
    /// and, while the mark follows the last price, conditional orders trigger.
    pub fn set_price(&mut self, price: Decimal) {
        self.price = price;
        let hit: Vec<(u64, Decimal)> = self
            .orders
            .iter()
            .filter(|o| matches!(o.status, "open" | "partial") && !o.market)
            .filter(|o| {
                if o.buy {
                    price <= o.price
                } else {
                    price >= o.price
                }
            })
            .map(|o| (o.id, o.price))
            .collect();
        for (id, p) in hit {
            self.fill(id, p, MAKER);
        }
        self.run_triggers();
    }

    /// Pins the mark price (it no longer follows the last price) and triggers the
    /// conditional orders it crosses.
    pub fn set_mark(&mut self, mark: Decimal) {
        self.pinned_mark = Some(mark);
        self.run_triggers();
    }

    /// Lets the mark follow the last price again.
    pub fn unpin_mark(&mut self) {
        self.pinned_mark = None;
        self.run_triggers();
    }

    fn run_triggers(&mut self) {
        let hit: Vec<u64> = self
            .orders
            .iter()
            .filter(|o| o.status == "untriggered")
            .filter(|o| o.trigger.is_some_and(|t| t.hit(self.watched(t.by))))
            .map(|o| o.id)
            .collect();
        for id in hit {
            self.trigger(id);
        }
    }

    /// A triggered conditional order becomes a market order at the price it
    /// watches, with the taker fee. An opening one the margin no longer covers is
    /// cancelled, as Bybit documents for conditional orders (docs/v5/order/create-order).
    fn trigger(&mut self, id: u64) {
        let Some(i) = self.index(id) else {
            return;
        };
        let o = self.orders[i].clone();
        let Some(t) = o.trigger else {
            return;
        };
        let at = self.watched(t.by);
        self.end(i, "open", Cancel::None);
        if o.opens() && self.used_margin() + self.margin(o.qty, at) > self.balance {
            return self.end(i, "cancelled", Cancel::Margin);
        }
        self.fill(id, at, TAKER);
    }

    /// Cancels an open order; false if there is none with that client id.
    pub fn cancel(&mut self, client_id: &str) -> bool {
        match self.order(client_id).filter(|o| o.is_open()) {
            Some(o) => self.cancel_id(o.id),
            None => false,
        }
    }

    /// Cancels an open order by exchange id; a conditional order not yet triggered
    /// ends "deactivated".
    pub fn cancel_id(&mut self, id: u64) -> bool {
        let Some(i) = self.index(id).filter(|&i| self.orders[i].is_open()) else {
            return false;
        };
        let status = if self.orders[i].status == "untriggered" {
            "deactivated"
        } else {
            "cancelled"
        };
        self.end(i, status, Cancel::User);
        true
    }

    pub fn open_count(&self) -> usize {
        self.orders.iter().filter(|o| o.is_open()).count()
    }
}
