//! The trading state both fake exchanges keep: one account, one symbol, hedge-mode
//! positions, orders by client id, fills with fees, and a price the test moves.
//! Limit orders fill only when the test moves the price across them.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Long,
    Short,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FakeOrder {
    pub id: u64,
    pub client_id: String,
    pub buy: bool,
    pub market: bool,
    pub price: f64,
    pub qty: f64,
    pub filled: f64,
    pub avg: f64,
    pub fee: f64,
    pub dir: Dir,
    pub status: &'static str,
    pub created_ms: i64,
}

impl FakeOrder {
    pub fn is_open(&self) -> bool {
        self.status == "open" || self.status == "partial"
    }

    /// Opening: a buy on the long side or a sell on the short side.
    pub fn opens(&self) -> bool {
        self.buy == (self.dir == Dir::Long)
    }
}

#[derive(Clone, Debug)]
pub struct Fill {
    pub order_id: u64,
    pub client_id: String,
    pub price: f64,
    pub qty: f64,
    pub fee: f64,
    pub time_ms: i64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Pos {
    pub size: f64,
    pub avg: f64,
}

/// An error the next matching request gets instead of its normal answer.
#[derive(Clone, Debug)]
pub struct Injected {
    pub path: String,
    pub code: i64,
    pub msg: String,
}

pub const TAKER: f64 = 0.00055;
pub const MAKER: f64 = 0.0002;

#[derive(Debug)]
pub struct Book {
    pub api_key: String,
    pub secret: String,
    /// Added to the wall clock: the exchange's clock runs ahead, so a client that
    /// does not sync gets its timestamps refused.
    pub skew_ms: i64,
    pub price: f64,
    pub balance: f64,
    pub leverage: u32,
    /// Hedge-mode sides whose leverage was set (BingX sets one side per call).
    pub leverage_sides: Vec<String>,
    pub orders: Vec<FakeOrder>,
    pub fills: Vec<Fill>,
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
    pub inject: VecDeque<Injected>,
    /// The next this many private requests are rate limited.
    pub rate_limit_next: usize,
    pub rate_limited: usize,
    /// Every request path seen, in order.
    pub seen: Vec<String>,
    /// The next request to this `METHOD /path` is carried out but its answer is
    /// lost.
    pub lose_reply: Option<String>,
}

impl Book {
    pub fn new(api_key: &str, secret: &str) -> Book {
        Book {
            api_key: api_key.into(),
            secret: secret.into(),
            skew_ms: 15_000,
            price: 65_000.0,
            balance: 10_000.0,
            leverage: 1,
            leverage_sides: Vec::new(),
            orders: Vec::new(),
            fills: Vec::new(),
            long: Pos::default(),
            short: Pos::default(),
            next_id: 1_000_000_000_000_000_001,
            accepted: Vec::new(),
            duplicates: 0,
            refused: Vec::new(),
            inject: VecDeque::new(),
            rate_limit_next: 0,
            rate_limited: 0,
            seen: Vec::new(),
            lose_reply: None,
        }
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

    pub fn take_injected(&mut self, path: &str) -> Option<Injected> {
        let i = self.inject.iter().position(|e| e.path == path)?;
        self.inject.remove(i)
    }

    pub fn pos(&mut self, dir: Dir) -> &mut Pos {
        match dir {
            Dir::Long => &mut self.long,
            Dir::Short => &mut self.short,
        }
    }

    pub fn order(&self, client_id: &str) -> Option<&FakeOrder> {
        self.orders.iter().find(|o| o.client_id == client_id)
    }

    /// Margin an opening order needs (and its taker fee).
    pub fn margin(&self, qty: f64, price: f64) -> f64 {
        qty * price / f64::from(self.leverage.max(1)) + qty * price * TAKER
    }

    pub fn used_margin(&self) -> f64 {
        let rest: f64 = self
            .orders
            .iter()
            .filter(|o| o.is_open() && o.opens())
            .map(|o| (o.qty - o.filled) * o.price / f64::from(self.leverage.max(1)))
            .sum();
        rest + (self.long.size * self.long.avg + self.short.size * self.short.avg)
            / f64::from(self.leverage.max(1))
    }

    /// Adds an accepted order; a market order fills at once at the price.
    pub fn add(&mut self, mut o: FakeOrder) -> FakeOrder {
        o.id = self.next_id;
        self.next_id += 1;
        o.created_ms = self.server_ms();
        self.accepted.push(o.client_id.clone());
        self.orders.push(o.clone());
        if o.market {
            let price = self.price;
            self.fill(o.id, price, TAKER);
        }
        self.orders.iter().find(|x| x.id == o.id).cloned().unwrap()
    }

    fn fill(&mut self, id: u64, price: f64, rate: f64) {
        let now = self.server_ms();
        let Some(i) = self.orders.iter().position(|o| o.id == id) else {
            return;
        };
        let o = self.orders[i].clone();
        let qty = o.qty - o.filled;
        let fee = qty * price * rate;
        let pos = self.pos(o.dir);
        let mut realized = 0.0;
        if o.opens() {
            pos.avg = (pos.size * pos.avg + qty * price) / (pos.size + qty);
            pos.size += qty;
        } else {
            let q = qty.min(pos.size);
            let sign = if o.dir == Dir::Long { 1.0 } else { -1.0 };
            realized = sign * (price - pos.avg) * q;
            pos.size -= q;
            if pos.size < 1e-12 {
                *pos = Pos::default();
            }
        }
        self.balance += realized - fee;
        let o = &mut self.orders[i];
        o.avg = price;
        o.filled = o.qty;
        o.fee += fee;
        o.status = "filled";
        self.fills.push(Fill {
            order_id: id,
            client_id: o.client_id.clone(),
            price,
            qty,
            fee,
            time_ms: now,
        });
    }

    /// Moves the price; resting limit orders it reaches fill at their price.
    pub fn set_price(&mut self, price: f64) {
        self.price = price;
        let hit: Vec<(u64, f64)> = self
            .orders
            .iter()
            .filter(|o| o.is_open() && !o.market)
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
    }

    /// Cancels an open order; false if there is none with that client id.
    pub fn cancel(&mut self, client_id: &str) -> bool {
        match self
            .orders
            .iter_mut()
            .find(|o| o.client_id == client_id && o.is_open())
        {
            Some(o) => {
                o.status = "cancelled";
                true
            }
            None => false,
        }
    }

    pub fn open_count(&self) -> usize {
        self.orders.iter().filter(|o| o.is_open()).count()
    }
}
