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
    /// Reads answer `RateLimited` (the budget had no turn) while set.
    limited: std::sync::atomic::AtomicBool,
}

impl Rest {
    fn read(&self) -> Result<(), ExchangeError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.limited.load(Ordering::SeqCst) {
            return Err(ExchangeError::RateLimited);
        }
        Ok(())
    }
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
        self.read()?;
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
        self.read()?;
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
    let (rest, view, s, _) = setup_with_pace();
    (rest, view, s)
}

/// With the runner's default Bybit budget (400 per 5 s) for the polling pace.
fn setup_with_pace() -> (Arc<Rest>, Arc<AccountView>, Streamed, Arc<PollPace>) {
    let rest = Arc::new(Rest::default());
    let view = Arc::new(AccountView::new("bybit", true));
    let pace = Arc::new(PollPace::new(crate::exchange::rest::budget::Limit {
        requests: 400,
        per: std::time::Duration::from_secs(5),
    }));
    let s = Streamed::new(rest.clone(), view.clone(), pace.clone(), None);
    (rest, view, s, pace)
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
fn while_down_reads_poll_rest_at_the_shared_pace() {
    let (rest, view, s, pace) = setup_with_pace();
    // A down account's first reads are REST; within the polling interval the
    // bots work from them (the balance is not cached while down).
    for _ in 0..3 {
        s.open_orders(SYM).unwrap();
        s.position(SYM, Side::Long).unwrap();
        s.balance().unwrap();
    }
    assert_eq!(reads(&rest), 2 + 3);
    // Reads ten seconds old: past the interval of one account down (1 s)...
    let ten_s_ago = local_ms() - 10_000;
    let p = rest.position(SYM, Side::Long).unwrap();
    view.snapshot_orders(SYM, &[], view.mark(), ten_s_ago);
    view.snapshot_position(SYM, p, view.mark(), ten_s_ago);
    pace.set_down(1);
    s.open_orders(SYM).unwrap();
    s.position(SYM, Side::Long).unwrap();
    assert_eq!(reads(&rest), 6 + 2);
    // ...but within that of 600 accounts down, which share the budget (50 s).
    view.snapshot_orders(SYM, &[], view.mark(), ten_s_ago);
    view.snapshot_position(SYM, p, view.mark(), ten_s_ago);
    pace.set_down(600);
    s.open_orders(SYM).unwrap();
    s.position(SYM, Side::Long).unwrap();
    assert_eq!(reads(&rest), 8);
    // The bot's own order: its effects (a fill, a position) are read from REST.
    let n = NewOrder {
        client_id: "c-new".into(),
        symbol: SYM.into(),
        side: OrderSide::Buy,
        kind: OrderKind::Market,
        price: None,
        trigger_price: None,
        qty: dec!(1),
        reduce_only: false,
        position_side: Side::Long,
    };
    s.place(&n).unwrap();
    s.position(SYM, Side::Long).unwrap();
    s.open_orders(SYM).unwrap();
    assert_eq!(reads(&rest), 10);
    s.cancel(SYM, "c-new").unwrap();
    s.open_orders(SYM).unwrap();
    s.open_orders(SYM).unwrap();
    assert_eq!(reads(&rest), 11);
    // A reconnect: the first reads reconcile again, whatever was polled.
    view.set_live(local_ms(), 0);
    s.open_orders(SYM).unwrap();
    s.open_orders(SYM).unwrap();
    assert_eq!(reads(&rest), 12);
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

#[test]
fn a_due_reconciliation_without_a_turn_serves_the_streams_view() {
    let (rest, view, s) = setup();
    view.set_live(local_ms(), 0);
    rest.open
        .lock()
        .unwrap()
        .push(order("1", OrderStatus::Open, dec!(0)));
    // Synced once, more than a minute ago: the check is due.
    let old = local_ms() - crate::exchange::stream::view::SYNC_FOR_MS - 1;
    let listed = rest.open_orders(SYM).unwrap();
    view.snapshot_orders(SYM, &listed, view.mark(), old);
    let p = rest.position(SYM, Side::Long).unwrap();
    view.snapshot_position(SYM, p, view.mark(), old);
    rest.limited.store(true, Ordering::SeqCst);
    let before = reads(&rest);
    let open = s.open_orders(SYM).unwrap();
    assert_eq!(open.len(), 1, "the kept view");
    assert_eq!(s.position(SYM, Side::Long).unwrap().size, dec!(1));
    assert_eq!(reads(&rest), before + 2, "each tried REST first");
    // With a turn, the reconciliation happens and counts as a sync.
    rest.limited.store(false, Ordering::SeqCst);
    s.open_orders(SYM).unwrap();
    s.open_orders(SYM).unwrap();
    assert_eq!(reads(&rest), before + 3);
}

#[test]
fn a_view_never_synced_since_it_went_live_needs_rest() {
    let (rest, view, s) = setup();
    view.set_live(local_ms(), 0);
    rest.limited.store(true, Ordering::SeqCst);
    assert_eq!(s.open_orders(SYM).err(), Some(ExchangeError::RateLimited));
    assert_eq!(
        s.position(SYM, Side::Long).err(),
        Some(ExchangeError::RateLimited)
    );
    // Nor may a view synced before a reconnect answer.
    rest.limited.store(false, Ordering::SeqCst);
    s.open_orders(SYM).unwrap();
    view.set_live(local_ms(), 0);
    rest.limited.store(true, Ordering::SeqCst);
    assert!(s.open_orders(SYM).is_err());
}
