//! A small in-memory exchange for the engine's tests: one symbol, a settable mark,
//! limit and conditional stop orders matched when the mark moves, market orders
//! filled at the mark, executions and funding, and knobs for what real exchanges
//! do to a bot — lagging position reports, refused orders, forgotten history and
//! stops listed without a client id (BingX).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;

use crate::bots::ladder::{Market, Side};
use crate::exchange::{
    Exchange, ExchangeError, Execution, FundingPayment, NewOrder, Order, OrderKind, OrderSide,
    OrderStatus, Position,
};
use crate::money::dec;

pub const MARKET: Market = Market {
    tick: dec!(0.01),
    step: dec!(0.001),
    min_qty: dec!(0.001),
    min_notional: Decimal::ZERO,
};
const TAKER: Decimal = dec!(0.00055);
const MAKER: Decimal = dec!(0.0002);

#[derive(Default)]
pub struct State {
    pub mark: Decimal,
    pub orders: Vec<Order>,
    pub executions: Vec<Execution>,
    pub funding: Vec<FundingPayment>,
    /// (long size, long avg, short size, short avg).
    pos: [(Decimal, Decimal); 2],
    /// Position reads report this size instead of the truth.
    pub lag: Option<Decimal>,
    /// Placements whose client id contains the text fail with the error.
    pub refuse: Vec<(String, ExchangeError)>,
    /// Stops are listed (and found) without their client id.
    pub untagged_stops: bool,
    /// Client ids looked up one by one (`order`), in order.
    pub lookups: Vec<String>,
    next: u64,
}

pub struct Fake {
    pub st: Mutex<State>,
    pub clock: Arc<AtomicI64>,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Long => 0,
        Side::Short => 1,
    }
}

impl Fake {
    pub fn new(clock: Arc<AtomicI64>, mark: Decimal) -> Fake {
        Fake {
            st: Mutex::new(State {
                mark,
                ..State::default()
            }),
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.st.lock().unwrap())
    }

    /// Moves the mark and fills what it crosses: limits at their price, stops at
    /// the mark.
    pub fn set_price(&self, p: Decimal) {
        let now = self.now();
        let mut st = self.st.lock().unwrap();
        st.mark = p;
        for i in 0..st.orders.len() {
            let o = &st.orders[i];
            if !o.status.is_open() {
                continue;
            }
            let hit = match (o.kind, o.side) {
                (OrderKind::Limit, OrderSide::Buy) => o.price.is_some_and(|l| p <= l),
                (OrderKind::Limit, OrderSide::Sell) => o.price.is_some_and(|l| p >= l),
                (OrderKind::Stop, OrderSide::Sell) => o.trigger_price.is_some_and(|t| p <= t),
                (OrderKind::Stop, OrderSide::Buy) => o.trigger_price.is_some_and(|t| p >= t),
                _ => false,
            };
            if hit {
                let (price, rate) = match o.kind {
                    OrderKind::Limit => (o.price.unwrap_or(p), MAKER),
                    _ => (p, TAKER),
                };
                let qty = o.qty - o.filled_qty;
                st.fill(i, qty, price, rate, now, false);
            }
        }
    }

    /// Fills `qty` of the open order `client_id` at its limit price.
    pub fn partial(&self, client_id: &str, qty: Decimal) {
        let now = self.now();
        let mut st = self.st.lock().unwrap();
        let i = st
            .orders
            .iter()
            .position(|o| o.client_id == client_id)
            .unwrap();
        let price = st.orders[i].price.unwrap();
        st.fill(i, qty, price, MAKER, now, false);
    }

    /// Fills the open order `client_id` at `price` now, whatever the mark (a stop
    /// triggered by a wick).
    pub fn fill_now(&self, client_id: &str, price: Decimal) {
        let now = self.now();
        let mut st = self.st.lock().unwrap();
        let i = st
            .orders
            .iter()
            .position(|o| o.client_id == client_id)
            .unwrap();
        let qty = st.orders[i].qty - st.orders[i].filled_qty;
        st.fill(i, qty, price, TAKER, now, false);
    }

    /// Someone else closes `qty` of the `side` position at `price` (a manual
    /// close, or a liquidation).
    pub fn close_outside(&self, side: Side, qty: Decimal, price: Decimal, liquidation: bool) {
        let now = self.now();
        let mut st = self.st.lock().unwrap();
        st.next += 1;
        let exchange_id = format!("x{}", st.next);
        let o = Order {
            client_id: String::new(),
            exchange_id,
            symbol: "ETH/USDT".into(),
            side: OrderSide::closing(side),
            kind: OrderKind::Market,
            price: None,
            trigger_price: None,
            qty,
            filled_qty: Decimal::ZERO,
            avg_fill_price: Decimal::ZERO,
            fee: Decimal::ZERO,
            reduce_only: true,
            position_side: side,
            status: OrderStatus::Open,
            created_ms: now,
        };
        st.orders.push(o);
        let i = st.orders.len() - 1;
        st.fill(i, qty, price, TAKER, now, liquidation);
    }

    /// The exchange's history window passed: closed orders are no longer found.
    pub fn forget_closed(&self) {
        self.st
            .lock()
            .unwrap()
            .orders
            .retain(|o| o.status.is_open());
    }

    pub fn open_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.with(|st| {
            st.orders
                .iter()
                .filter(|o| o.status.is_open())
                .map(|o| o.client_id.clone())
                .collect()
        });
        ids.sort();
        ids
    }

    pub fn get(&self, client_id: &str) -> Order {
        self.with(|st| {
            st.orders
                .iter()
                .find(|o| o.client_id == client_id)
                .cloned()
                .unwrap_or_else(|| panic!("no order {client_id}"))
        })
    }

    pub fn size(&self, side: Side) -> Decimal {
        self.with(|st| st.pos[idx(side)].0)
    }
}

impl State {
    fn fill(
        &mut self,
        i: usize,
        want: Decimal,
        price: Decimal,
        rate: Decimal,
        now: i64,
        liq: bool,
    ) {
        let o = self.orders[i].clone();
        let k = idx(o.position_side);
        let opening = o.side == OrderSide::opening(o.position_side);
        let qty = if opening {
            want
        } else {
            want.min(self.pos[k].0)
        };
        if qty <= Decimal::ZERO {
            self.orders[i].status = OrderStatus::Cancelled;
            return;
        }
        let (size, avg) = self.pos[k];
        self.pos[k] = if opening {
            (size + qty, (size * avg + qty * price) / (size + qty))
        } else {
            (
                size - qty,
                if size - qty > Decimal::ZERO {
                    avg
                } else {
                    Decimal::ZERO
                },
            )
        };
        let fee = (qty * price * rate).round_dp(10);
        let o = &mut self.orders[i];
        o.avg_fill_price = (o.avg_fill_price * o.filled_qty + qty * price) / (o.filled_qty + qty);
        o.filled_qty += qty;
        o.fee += fee;
        o.status = if o.filled_qty >= o.qty {
            OrderStatus::Filled
        } else if o.kind == OrderKind::Market || o.kind == OrderKind::Stop {
            OrderStatus::Cancelled
        } else {
            OrderStatus::PartiallyFilled
        };
        self.next += 1;
        self.executions.push(Execution {
            exec_id: format!("e{}", self.next),
            order_id: o.exchange_id.clone(),
            client_id: o.client_id.clone(),
            side: o.side,
            qty,
            price,
            fee,
            time_ms: now,
            liquidation: liq,
        });
    }

    fn refused(&self, id: &str) -> Option<ExchangeError> {
        self.refuse
            .iter()
            .find(|(part, _)| id.contains(part.as_str()))
            .map(|(_, e)| e.clone())
    }

    /// As the account lists it: untagged stops hide their client id.
    fn shown(&self, o: &Order) -> Order {
        let mut o = o.clone();
        if self.untagged_stops && o.kind == OrderKind::Stop {
            o.client_id.clear();
        }
        o
    }
}

impl Exchange for Fake {
    fn name(&self) -> &'static str {
        "paper"
    }
    fn market(&self, _: &str) -> Result<Market, ExchangeError> {
        Ok(MARKET)
    }
    fn ticker(&self, _: &str) -> Result<Decimal, ExchangeError> {
        Ok(self.with(|st| st.mark))
    }
    fn set_leverage(&self, _: &str, _: Side, _: u32) -> Result<(), ExchangeError> {
        Ok(())
    }
    fn place(&self, n: &NewOrder) -> Result<Order, ExchangeError> {
        let now = self.now();
        let mut st = self.st.lock().unwrap();
        if let Some(e) = st.refused(&n.client_id) {
            return Err(e);
        }
        if st.orders.iter().any(|o| o.client_id == n.client_id) {
            return Err(ExchangeError::Duplicate(n.client_id.clone()));
        }
        st.next += 1;
        let exchange_id = format!("x{}", st.next);
        st.orders.push(Order {
            client_id: n.client_id.clone(),
            exchange_id,
            symbol: n.symbol.clone(),
            side: n.side,
            kind: n.kind,
            price: n.price,
            trigger_price: n.trigger_price,
            qty: n.qty,
            filled_qty: Decimal::ZERO,
            avg_fill_price: Decimal::ZERO,
            fee: Decimal::ZERO,
            reduce_only: n.reduce_only,
            position_side: n.position_side,
            status: OrderStatus::Open,
            created_ms: now,
        });
        let i = st.orders.len() - 1;
        if n.kind == OrderKind::Market {
            let mark = st.mark;
            st.fill(i, n.qty, mark, TAKER, now, false);
        }
        Ok(st.orders[i].clone())
    }
    fn cancel(&self, _: &str, client_id: &str) -> Result<(), ExchangeError> {
        self.with(|st| {
            for o in st.orders.iter_mut().filter(|o| o.client_id == client_id) {
                if o.status.is_open() {
                    o.status = OrderStatus::Cancelled;
                }
            }
        });
        Ok(())
    }
    fn open_orders(&self, _: &str) -> Result<Vec<Order>, ExchangeError> {
        Ok(self.with(|st| {
            st.orders
                .iter()
                .filter(|o| o.status.is_open())
                .map(|o| st.shown(o))
                .collect()
        }))
    }
    fn order(&self, _: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        Ok(self.with(|st| {
            st.lookups.push(client_id.to_string());
            st.orders
                .iter()
                .find(|o| {
                    o.client_id == client_id && !(st.untagged_stops && o.kind == OrderKind::Stop)
                })
                .cloned()
        }))
    }
    fn order_by_id(&self, _: &str, exchange_id: &str) -> Result<Option<Order>, ExchangeError> {
        Ok(self.with(|st| {
            st.orders
                .iter()
                .find(|o| o.exchange_id == exchange_id)
                .map(|o| st.shown(o))
        }))
    }
    fn cancel_by_id(&self, _: &str, exchange_id: &str) -> Result<(), ExchangeError> {
        self.with(|st| {
            for o in st
                .orders
                .iter_mut()
                .filter(|o| o.exchange_id == exchange_id)
            {
                if o.status.is_open() {
                    o.status = OrderStatus::Cancelled;
                }
            }
        });
        Ok(())
    }
    fn executions(&self, _: &str, since_ms: i64) -> Result<Vec<Execution>, ExchangeError> {
        Ok(self.with(|st| {
            st.executions
                .iter()
                .filter(|x| x.time_ms >= since_ms)
                .cloned()
                .collect()
        }))
    }
    fn funding(&self, _: &str, since_ms: i64) -> Result<Vec<FundingPayment>, ExchangeError> {
        Ok(self.with(|st| {
            st.funding
                .iter()
                .filter(|f| f.time_ms >= since_ms)
                .cloned()
                .collect()
        }))
    }
    fn position(&self, _: &str, side: Side) -> Result<Position, ExchangeError> {
        Ok(self.with(|st| {
            let (size, avg) = st.pos[idx(side)];
            Position {
                side,
                size: st.lag.unwrap_or(size),
                avg_entry: avg,
                mark_price: st.mark,
            }
        }))
    }
    fn balance(&self) -> Result<Decimal, ExchangeError> {
        Ok(dec!(1000000))
    }

    fn key_info(&self, _by: std::time::Instant) -> Result<crate::exchange::KeyInfo, ExchangeError> {
        Ok(crate::exchange::KeyInfo::keyless())
    }

    fn hedge_mode(&self, _symbol: &str) -> Result<bool, ExchangeError> {
        Ok(true)
    }
}
