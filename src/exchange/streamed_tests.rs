use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::*;
use crate::exchange::stream::update::Update;
use crate::exchange::{OrderKind, OrderSide, OrderStatus};
use crate::money::dec;

const SYM: &str = "BTC/USDT";

/// A REST adapter that counts its reads and answers from a list.
#[derive(Default)]
struct Rest {
    open: Mutex<Vec<Order>>,
    reads: AtomicUsize,
}

fn order(id: &str, status: OrderStatus, filled: Decimal) -> Order {
    Order {
        client_id: format!("c-{id}"),
        exchange_id: id.into(),
        symbol: SYM.into(),
        side: OrderSide::Buy,
        kind: OrderKind::Limit,
        price: Some(dec!(100)),
        trigger_price: None,
        qty: dec!(1),
        filled_qty: filled,
        avg_fill_price: if filled.is_zero() { dec!(0) } else { dec!(100) },
        fee: dec!(0),
        reduce_only: false,
        position_side: Side::Long,
        status,
        created_ms: 1,
    }
}

impl Exchange for Rest {
    fn name(&self) -> &'static str {
        "bybit"
    }
    fn market(&self, _: &str) -> Result<Market, ExchangeError> {
        Err(ExchangeError::Network("not in this test".into()))
    }
    fn ticker(&self, _: &str) -> Result<Decimal, ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(dec!(100))
    }
    fn set_leverage(&self, _: &str, _: Side, _: u32) -> Result<(), ExchangeError> {
        Ok(())
    }
    fn place(&self, o: &NewOrder) -> Result<Order, ExchangeError> {
        let mut placed = order(&format!("x-{}", o.client_id), OrderStatus::Open, dec!(0));
        placed.client_id = o.client_id.clone();
        self.open.lock().unwrap().push(placed.clone());
        Ok(placed)
    }
    fn cancel(&self, _: &str, client_id: &str) -> Result<(), ExchangeError> {
        self.open
            .lock()
            .unwrap()
            .retain(|o| o.client_id != client_id);
        Ok(())
    }
    fn open_orders(&self, _: &str) -> Result<Vec<Order>, ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.open.lock().unwrap().clone())
    }
    fn order(&self, _: &str, client_id: &str) -> Result<Option<Order>, ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        Ok(open.iter().find(|o| o.client_id == client_id).cloned())
    }
    fn order_by_id(&self, _: &str, id: &str) -> Result<Option<Order>, ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        Ok(open.iter().find(|o| o.exchange_id == id).cloned())
    }
    fn cancel_by_id(&self, _: &str, _: &str) -> Result<(), ExchangeError> {
        Ok(())
    }
    fn executions(&self, _: &str, _: i64) -> Result<Vec<Execution>, ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
    fn funding(&self, _: &str, _: i64) -> Result<Vec<FundingPayment>, ExchangeError> {
        Ok(Vec::new())
    }
    fn position(&self, _: &str, side: Side) -> Result<Position, ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(Position {
            side,
            size: dec!(1),
            avg_entry: dec!(100),
            mark_price: dec!(101),
        })
    }
    fn balance(&self) -> Result<Decimal, ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(dec!(1000))
    }

    fn key_info(&self, _by: std::time::Instant) -> Result<crate::exchange::KeyInfo, ExchangeError> {
        Ok(crate::exchange::KeyInfo::keyless())
    }

    fn hedge_mode(&self, _symbol: &str) -> Result<bool, ExchangeError> {
        Ok(true)
    }
}

fn setup() -> (Arc<Rest>, Arc<AccountView>, Streamed) {
    let rest = Arc::new(Rest::default());
    let view = Arc::new(AccountView::new("bybit", true));
    let s = Streamed::new(rest.clone(), view.clone(), None);
    (rest, view, s)
}

fn reads(rest: &Rest) -> usize {
    rest.reads.load(Ordering::SeqCst)
}

#[test]
fn while_live_reads_reconcile_once_then_come_from_the_stream() {
    let (rest, view, s) = setup();
    view.set_live(local_ms(), 0);
    s.open_orders(SYM).unwrap();
    s.position(SYM, Side::Long).unwrap();
    let after_sync = reads(&rest);
    assert_eq!(after_sync, 2);
    for _ in 0..10 {
        s.open_orders(SYM).unwrap();
        s.position(SYM, Side::Long).unwrap();
    }
    assert_eq!(reads(&rest), after_sync, "no REST while the stream is live");
    // A fill arrives on the stream: the next read has it, without REST.
    let placed = s
        .place(&NewOrder {
            client_id: "c-a".into(),
            symbol: SYM.into(),
            side: OrderSide::Buy,
            kind: OrderKind::Limit,
            price: Some(dec!(100)),
            trigger_price: None,
            qty: dec!(1),
            reduce_only: false,
            position_side: Side::Long,
        })
        .unwrap();
    let mut filled = placed.clone();
    filled.status = OrderStatus::Filled;
    filled.filled_qty = dec!(1);
    filled.avg_fill_price = dec!(100);
    view.apply(Update::Order {
        order: filled,
        time_ms: local_ms(),
        fee_delta: None,
    });
    assert!(s.open_orders(SYM).unwrap().is_empty());
    assert_eq!(
        s.order(SYM, "c-a").unwrap().unwrap().status,
        OrderStatus::Filled
    );
    assert_eq!(reads(&rest), after_sync);
    // A position's stored mark is not served as if it were current.
    assert_eq!(s.position(SYM, Side::Long).unwrap().mark_price, dec!(0));
}

#[test]
fn while_down_every_read_is_rest() {
    let (rest, view, s) = setup();
    for _ in 0..3 {
        s.open_orders(SYM).unwrap();
        s.position(SYM, Side::Long).unwrap();
        s.balance().unwrap();
    }
    assert_eq!(reads(&rest), 9);
    // A reconnect: the first reads reconcile again.
    view.set_live(local_ms(), 0);
    s.open_orders(SYM).unwrap();
    s.open_orders(SYM).unwrap();
    assert_eq!(reads(&rest), 10);
    view.set_down();
    s.open_orders(SYM).unwrap();
    assert_eq!(reads(&rest), 11);
}

#[test]
fn an_order_the_view_never_saw_is_asked_of_rest() {
    let (rest, view, s) = setup();
    view.set_live(local_ms(), 0);
    rest.open
        .lock()
        .unwrap()
        .push(order("m", OrderStatus::Open, dec!(0)));
    assert!(s.order(SYM, "c-m").unwrap().is_some());
    assert_eq!(reads(&rest), 1);
    // Now known: the next lookup is the view's.
    assert!(s.order(SYM, "c-m").unwrap().is_some());
    assert_eq!(reads(&rest), 1);
    // A cancel accepted by REST: not open any more, and until the stream
    // confirms, a lookup asks REST.
    s.cancel(SYM, "c-m").unwrap();
    assert_eq!(s.order(SYM, "c-m").unwrap(), None);
    assert_eq!(reads(&rest), 2);
}
