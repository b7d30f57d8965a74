//! One exchange account as its private stream describes it (C16): orders by
//! exchange id with a client-id index (open ones and a bounded tail of closed
//! ones), positions per symbol and side, recent fills per symbol with the time
//! from which they are complete, and the wallet balance.
//!
//! The rules that keep it true:
//! - Updates carry the exchange's time; an older update never overwrites a newer
//!   one, and an order never goes back (less filled, or open again once closed).
//! - A REST snapshot of a symbol (its open orders, one side's position) replaces
//!   what the view holds, then the stream updates that arrived after the
//!   snapshot's request began are applied again on top (they may be newer than
//!   what REST saw).
//! - A reconnect (`set_live`) forgets every order and every sync: what happened
//!   while the stream was silent is only known after the next snapshot. So does
//!   an update the stream could not deliver (`lost`: a malformed frame, an entry
//!   caught between two states): it may have been a fill or a cancel.
//!
//! Times: `now_ms` is the local clock (callers pass it, so tests choose it),
//! update times are the exchange's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::update::Update;
use crate::exchange::{Execution, Order, Position, Side};

/// A symbol's snapshot is trusted this long; then reads reconcile with REST.
pub const SYNC_FOR_MS: i64 = 60_000;
/// Closed orders kept per symbol (an engine reads an order once after it left
/// the open list; a miss goes to REST).
const CLOSED_KEPT: usize = 256;
/// Fills kept per symbol.
const FILLS_KEPT: usize = 1024;
/// Stream updates kept per symbol to re-apply over a snapshot.
const RECENT_KEPT: usize = 256;
/// Fill times kept per symbol until a bot reads them.
const UNREAD_KEPT: usize = 256;
/// A REST answer may not show a change the stream reported this long before
/// it (the exchange's replicas): the stream's state is kept over it.
const REST_LAG_MS: i64 = 5_000;
/// Fills are complete from this long after the stream went live: the
/// exchange's clock and ours differ a little.
const COVER_MARGIN_MS: i64 = 2_000;

/// Whether the account's stream delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    Down,
    /// Authenticated and subscribed since `since_ms` (local clock).
    Live {
        since_ms: i64,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    order: Order,
    /// Exchange time of the last update applied; 0 when it came from REST.
    time_ms: i64,
    /// A cancel was accepted: the order is no longer listed as open, and a
    /// lookup that still reads it open asks REST.
    cancel_sent: bool,
    /// Known in full (its fee total included); otherwise a lookup asks REST.
    complete: bool,
}

#[derive(Default)]
struct SymbolView {
    orders: HashMap<String, Entry>,
    by_client: HashMap<String, String>,
    closed: VecDeque<String>,
    /// Long, short: the position and the exchange time of its update (0: REST).
    positions: [Option<(Position, i64)>; 2],
    fills: VecDeque<Execution>,
    fill_ids: HashSet<String>,
    /// Fills are complete from this exchange time (None: from the live time).
    covered_from: Option<i64>,
    orders_synced_at: Option<i64>,
    positions_synced_at: [Option<i64>; 2],
    /// When REST last listed the open orders / read each side's position,
    /// whatever the stream's state: while it is down, that read serves for the
    /// polling interval (`poll::PollPace`).
    orders_polled_at: Option<i64>,
    positions_polled_at: [Option<i64>; 2],
    /// (sequence number, update) of the latest stream updates.
    recent: VecDeque<(u64, Update)>,
    /// Exchange times of fills no engine has read yet.
    unread_fills: Vec<i64>,
}

struct Inner {
    state: StreamState,
    symbols: HashMap<String, SymbolView>,
    /// The wallet balance and its exchange time (0: REST).
    wallet: Option<(Decimal, i64)>,
    /// Stream updates applied so far (the snapshot marks).
    seq: u64,
    /// The exchange's clock minus ours (ms), learnt at the last connect.
    offset_ms: i64,
    /// Counts restarts (`set_live`, `lost`): a snapshot requested before one
    /// is not trusted, even within the same millisecond.
    epoch: u64,
}

/// The account's cache; shared by every bot trading with the same key.
pub struct AccountView {
    exchange: &'static str,
    /// The stream's fills carry the exchange's fill ids (Bybit's `execId`), so
    /// they can answer `executions`; BingX's order updates do not.
    caches_fills: bool,
    inner: Mutex<Inner>,
    /// Signalled on every stream update, for a read waiting for one
    /// (`order_after_cancel`).
    updated: Condvar,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Long => 0,
        Side::Short => 1,
    }
}

/// Whether `order` at `time_ms` may replace what `old` says.
fn newer(old: &Entry, order: &Order, time_ms: i64) -> bool {
    if old.time_ms > 0 && time_ms > 0 && time_ms < old.time_ms {
        return false;
    }
    if order.filled_qty < old.order.filled_qty {
        return false;
    }
    old.order.status.is_open() || !order.status.is_open()
}

fn fresh(synced_at: Option<i64>, now_ms: i64) -> bool {
    within(synced_at, now_ms, SYNC_FOR_MS)
}

fn within(at: Option<i64>, now_ms: i64, max_age_ms: i64) -> bool {
    at.is_some_and(|t| now_ms - t < max_age_ms && now_ms >= t)
}

impl SymbolView {
    fn entry_of_client(&self, client_id: &str) -> Option<&Entry> {
        self.by_client
            .get(client_id)
            .and_then(|id| self.orders.get(id))
    }

    /// Stores `entry`, indexing its client id and bounding the closed tail.
    fn put(&mut self, entry: Entry) {
        let id = entry.order.exchange_id.clone();
        if !entry.order.client_id.is_empty() {
            self.by_client
                .insert(entry.order.client_id.clone(), id.clone());
        }
        let closed = !entry.order.status.is_open();
        let was_closed = self
            .orders
            .insert(id.clone(), entry)
            .is_some_and(|e| !e.order.status.is_open());
        if closed && !was_closed {
            self.closed.push_back(id);
            while self.closed.len() > CLOSED_KEPT {
                if let Some(old) = self.closed.pop_front() {
                    self.forget(&old);
                }
            }
        }
    }

    fn forget(&mut self, exchange_id: &str) {
        if let Some(e) = self.orders.remove(exchange_id) {
            if self.by_client.get(&e.order.client_id).map(String::as_str) == Some(exchange_id) {
                self.by_client.remove(&e.order.client_id);
            }
        }
    }

    /// Applies a stream order update; true if it changed the view.
    fn order_update(&mut self, mut order: Order, time_ms: i64, fee_delta: Option<Decimal>) -> bool {
        let old = self.orders.get(&order.exchange_id);
        if let Some(old) = old {
            if !newer(old, &order, time_ms) {
                return false;
            }
        }
        // Streams that do not repeat the creation time or the client id (BingX
        // stops) keep what the view knew.
        if order.created_ms == 0 {
            order.created_ms = old.map_or(time_ms, |o| o.order.created_ms);
        }
        if order.client_id.is_empty() {
            if let Some(o) = old {
                order.client_id = o.order.client_id.clone();
            }
        }
        let filled_before = old.map_or(Decimal::ZERO, |o| o.order.filled_qty);
        let mut complete = true;
        if let Some(delta) = fee_delta {
            // A per-fill fee adds to the known total, once per fill (REST may
            // already have counted it: then the quantity did not move).
            match old {
                Some(o) if order.filled_qty > o.order.filled_qty => order.fee = o.order.fee + delta,
                Some(o) => order.fee = o.order.fee,
                None => {
                    order.fee = delta;
                    complete = order.filled_qty.is_zero();
                }
            }
            complete &= old.is_none_or(|o| o.complete);
        }
        // Bounded: a symbol no bot reads (a manual trade elsewhere) must not grow it.
        // Only the stream's own reports (time known) measure its latency.
        if order.filled_qty > filled_before && time_ms > 0 && self.unread_fills.len() < UNREAD_KEPT
        {
            self.unread_fills.push(time_ms);
        }
        let cancel_sent = old.is_some_and(|o| o.cancel_sent);
        self.put(Entry {
            order,
            time_ms,
            cancel_sent,
            complete,
        });
        true
    }

    fn position_update(&mut self, position: Position, time_ms: i64) -> bool {
        let slot = &mut self.positions[side_index(position.side)];
        if slot.is_some_and(|(_, t)| t > 0 && time_ms < t) {
            return false;
        }
        *slot = Some((position, time_ms));
        true
    }

    fn fill(&mut self, exec: Execution) -> bool {
        if !self.fill_ids.insert(exec.exec_id.clone()) {
            return false;
        }
        let at = self
            .fills
            .iter()
            .rposition(|f| f.time_ms <= exec.time_ms)
            .map_or(0, |k| k + 1);
        self.fills.insert(at, exec);
        while self.fills.len() > FILLS_KEPT {
            if let Some(old) = self.fills.pop_front() {
                self.fill_ids.remove(&old.exec_id);
                let from = old.time_ms + 1;
                self.covered_from = Some(self.covered_from.map_or(from, |c| c.max(from)));
            }
        }
        true
    }

    fn apply(&mut self, update: &Update) -> bool {
        match update.clone() {
            Update::Order {
                order,
                time_ms,
                fee_delta,
            } => self.order_update(order, time_ms, fee_delta),
            Update::Execution { exec, .. } => self.fill(exec),
            Update::Position {
                position, time_ms, ..
            } => self.position_update(position, time_ms),
            Update::Wallet { .. } => false,
        }
    }

    /// The updates after `begin`, or `None` if some of them were dropped.
    fn since(&self, begin: u64) -> Option<Vec<Update>> {
        if let Some((first, _)) = self.recent.front() {
            if *first > begin + 1 {
                return None;
            }
        }
        Some(
            self.recent
                .iter()
                .filter(|(seq, _)| *seq > begin)
                .map(|(_, u)| u.clone())
                .collect(),
        )
    }
}

/// A read the view answers (`Some`) or leaves to REST (`None`).
pub type Cached<T> = Option<T>;

/// A point in the stream to which a snapshot is relative (`AccountView::mark`).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    seq: u64,
    /// `Inner::epoch` when the request began.
    epoch: u64,
    /// The stream was live since this time when the request began.
    live_since: Option<i64>,
}

impl AccountView {
    pub fn new(exchange: &'static str, caches_fills: bool) -> AccountView {
        AccountView {
            exchange,
            caches_fills,
            inner: Mutex::new(Inner {
                state: StreamState::Down,
                symbols: HashMap::new(),
                wallet: None,
                seq: 0,
                offset_ms: 0,
                epoch: 0,
            }),
            updated: Condvar::new(),
        }
    }

    pub fn exchange(&self) -> &'static str {
        self.exchange
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| {
            self.inner.clear_poison();
            p.into_inner()
        })
    }

    pub fn state(&self) -> StreamState {
        self.lock().state
    }

    fn live_since(inner: &Inner) -> Option<i64> {
        match inner.state {
            StreamState::Live { since_ms } => Some(since_ms),
            StreamState::Down => None,
        }
    }

    /// The stream is (again) authenticated and subscribed: nothing from before
    /// is trusted until the next snapshot. `offset_ms` is the exchange's clock
    /// minus ours.
    pub fn set_live(&self, now_ms: i64, offset_ms: i64) {
        let mut inner = self.lock();
        inner.offset_ms = offset_ms;
        Self::restart(&mut inner, now_ms);
    }

    /// The stream delivered something it could not be read (a malformed frame,
    /// an order caught between two states): whatever it said — a fill, a
    /// cancel — is missing, so nothing is trusted until the next snapshot, as
    /// after a reconnect. Nothing happens while the stream is down (reads go to
    /// REST anyway, and `set_live` restarts).
    pub fn lost(&self, now_ms: i64) {
        let mut inner = self.lock();
        if Self::live_since(&inner).is_some() {
            Self::restart(&mut inner, now_ms);
        }
    }

    fn restart(inner: &mut Inner, now_ms: i64) {
        inner.state = StreamState::Live { since_ms: now_ms };
        inner.epoch += 1;
        inner.wallet = None;
        for s in inner.symbols.values_mut() {
            *s = SymbolView::default();
        }
    }

    /// The stream stopped delivering: reads go to REST.
    pub fn set_down(&self) {
        let mut inner = self.lock();
        inner.state = StreamState::Down;
        for s in inner.symbols.values_mut() {
            s.orders_synced_at = None;
            s.positions_synced_at = [None, None];
        }
    }

    /// Applies one stream update; true if it changed the view.
    pub fn apply(&self, update: Update) -> bool {
        let changed = self.apply_locked(update);
        self.updated.notify_all();
        changed
    }

    fn apply_locked(&self, update: Update) -> bool {
        let mut inner = self.lock();
        if let Update::Wallet { balance, time_ms } = update {
            if inner.wallet.is_some_and(|(_, t)| t > 0 && time_ms < t) {
                return false;
            }
            inner.wallet = Some((balance, time_ms));
            return true;
        }
        let Some(symbol) = update.symbol().map(str::to_string) else {
            return false;
        };
        inner.seq += 1;
        let seq = inner.seq;
        let s = inner.symbols.entry(symbol).or_default();
        s.recent.push_back((seq, update.clone()));
        while s.recent.len() > RECENT_KEPT {
            s.recent.pop_front();
        }
        s.apply(&update)
    }

    /// Where the stream is now: taken before a snapshot's request.
    pub fn mark(&self) -> Mark {
        let inner = self.lock();
        Mark {
            seq: inner.seq,
            epoch: inner.epoch,
            live_since: Self::live_since(&inner),
        }
    }

    /// The open orders of `symbol`, if the stream is live and the symbol synced
    /// recently.
    pub fn open_orders(&self, symbol: &str, now_ms: i64) -> Cached<Vec<Order>> {
        let inner = self.lock();
        Self::live_since(&inner)?;
        let s = inner.symbols.get(symbol)?;
        fresh(s.orders_synced_at, now_ms).then(|| Self::open_list(s))
    }

    /// The open orders of `symbol` if the stream is live and the symbol was
    /// synced since it went live, however long ago: the stream kept them true
    /// since, and a due reconciliation that cannot be sent now waits on them.
    pub fn open_orders_kept(&self, symbol: &str) -> Cached<Vec<Order>> {
        let inner = self.lock();
        Self::live_since(&inner)?;
        let s = inner.symbols.get(symbol)?;
        s.orders_synced_at.map(|_| Self::open_list(s))
    }

    fn open_list(s: &SymbolView) -> Vec<Order> {
        let mut open: Vec<Order> = s
            .orders
            .values()
            .filter(|e| e.order.status.is_open() && !e.cancel_sent)
            .map(|e| e.order.clone())
            .collect();
        open.sort_by(|a, b| (a.created_ms, &a.exchange_id).cmp(&(b.created_ms, &b.exchange_id)));
        open
    }

    /// A REST list of `symbol`'s open orders, requested at `mark`: it replaces
    /// the open set, then the stream's later updates go on top.
    pub fn snapshot_orders(&self, symbol: &str, orders: &[Order], mark: Mark, now_ms: i64) {
        let mut inner = self.lock();
        let same_run = Self::live_since(&inner) == mark.live_since && inner.epoch == mark.epoch;
        let s = inner.symbols.entry(symbol.to_string()).or_default();
        let listed: HashSet<&str> = orders.iter().map(|o| o.exchange_id.as_str()).collect();
        let gone: Vec<String> = s
            .orders
            .iter()
            .filter(|(id, e)| e.order.status.is_open() && !listed.contains(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            s.forget(&id);
        }
        for o in orders {
            // REST may lag the stream: an order the stream already reported
            // filled or closed is not listed open again (the engine would miss
            // the fill, or wait for a take-profit that filled).
            if s.orders
                .get(&o.exchange_id)
                .is_some_and(|old| !newer(old, o, 0))
            {
                continue;
            }
            s.put(Entry {
                order: o.clone(),
                time_ms: 0,
                cancel_sent: false,
                complete: true,
            });
        }
        let later = s.since(mark.seq);
        let replayed = later.as_ref().is_some_and(|l| {
            for u in l.iter().filter(|u| matches!(u, Update::Order { .. })) {
                s.apply(u);
            }
            true
        });
        // Trusted only if nothing in between was lost and the stream did not
        // restart meanwhile.
        s.orders_synced_at = (replayed && same_run && mark.live_since.is_some()).then_some(now_ms);
        s.orders_polled_at = Some(now_ms);
    }

    /// One order by client id, if the view knows it in full while live.
    pub fn order(&self, symbol: &str, client_id: &str) -> Cached<Order> {
        let inner = self.lock();
        Self::live_since(&inner)?;
        let e = inner.symbols.get(symbol)?.entry_of_client(client_id)?;
        Self::usable(e)
    }

    /// `order`, except that an order whose cancel was sent and not yet
    /// confirmed is waited for, up to `wait`: the stream reports the cancel (or
    /// the fill that beat it) within moments, where REST would cost two reads
    /// (open, then history) for every cancel.
    pub fn order_after_cancel(
        &self,
        symbol: &str,
        client_id: &str,
        wait: Duration,
    ) -> Cached<Order> {
        let until = Instant::now() + wait;
        let mut inner = self.lock();
        loop {
            Self::live_since(&inner)?;
            let e = inner.symbols.get(symbol)?.entry_of_client(client_id)?;
            let unsure = e.cancel_sent && e.order.status.is_open();
            if !unsure {
                return Self::usable(e);
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            inner = match self.updated.wait_timeout(inner, until - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// One order by the exchange's id, as `order`.
    pub fn order_by_id(&self, symbol: &str, exchange_id: &str) -> Cached<Order> {
        let inner = self.lock();
        Self::live_since(&inner)?;
        let e = inner.symbols.get(symbol)?.orders.get(exchange_id)?;
        Self::usable(e)
    }

    fn usable(e: &Entry) -> Cached<Order> {
        let unsure = e.cancel_sent && e.order.status.is_open();
        (e.complete && !unsure).then(|| e.order.clone())
    }

    /// An order as REST or an action's answer describes it (complete, time
    /// unknown): kept unless the view already knows a later state.
    pub fn learn_order(&self, order: &Order) {
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        let s = inner.symbols.entry(order.symbol.clone()).or_default();
        if let Some(old) = s.orders.get(&order.exchange_id) {
            if !newer(old, order, 0) {
                return;
            }
        }
        // Kept with the stream's updates: a snapshot of the symbol requested
        // before it (another bot's on the same account) would otherwise forget
        // an order just placed, and its bot would place its stop again.
        s.recent.push_back((
            seq,
            Update::Order {
                order: order.clone(),
                time_ms: 0,
                fee_delta: None,
            },
        ));
        while s.recent.len() > RECENT_KEPT {
            s.recent.pop_front();
        }
        let cancel_sent = s
            .orders
            .get(&order.exchange_id)
            .is_some_and(|o| o.cancel_sent);
        s.put(Entry {
            order: order.clone(),
            time_ms: 0,
            cancel_sent,
            complete: true,
        });
    }

    /// A cancel of the order `client_id` (or exchange id) was accepted.
    pub fn cancel_sent(&self, symbol: &str, client_id: Option<&str>, exchange_id: Option<&str>) {
        let mut inner = self.lock();
        let Some(s) = inner.symbols.get_mut(symbol) else {
            return;
        };
        let id = match (client_id, exchange_id) {
            (_, Some(id)) => Some(id.to_string()),
            (Some(c), None) => s.by_client.get(c).cloned(),
            (None, None) => None,
        };
        if let Some(e) = id.and_then(|id| s.orders.get_mut(&id)) {
            e.cancel_sent = true;
        }
    }

    /// One side's position, if live and synced recently.
    pub fn position(&self, symbol: &str, side: Side, now_ms: i64) -> Cached<Position> {
        let inner = self.lock();
        Self::live_since(&inner)?;
        let s = inner.symbols.get(symbol)?;
        if !fresh(s.positions_synced_at[side_index(side)], now_ms) {
            return None;
        }
        s.positions[side_index(side)].map(|(p, _)| p)
    }

    /// The open orders of `symbol` while the stream is down, if REST listed
    /// them less than `max_age_ms` ago (the polling interval); the bots' own
    /// placements and cancels since are in.
    pub fn open_orders_polled(
        &self,
        symbol: &str,
        now_ms: i64,
        max_age_ms: i64,
    ) -> Cached<Vec<Order>> {
        let inner = self.lock();
        if Self::live_since(&inner).is_some() {
            return None;
        }
        let s = inner.symbols.get(symbol)?;
        within(s.orders_polled_at, now_ms, max_age_ms).then(|| Self::open_list(s))
    }

    /// The bot acted on `symbol` (an order placed or cancelled): a poll from
    /// before cannot show what followed (a fill, a position that changed), so
    /// the next read of a down stream's symbol goes to REST.
    pub fn acted(&self, symbol: &str) {
        if let Some(s) = self.lock().symbols.get_mut(symbol) {
            s.orders_polled_at = None;
            s.positions_polled_at = [None, None];
        }
    }

    /// One side's position while the stream is down, as `open_orders_polled`.
    pub fn position_polled(
        &self,
        symbol: &str,
        side: Side,
        now_ms: i64,
        max_age_ms: i64,
    ) -> Cached<Position> {
        let inner = self.lock();
        if Self::live_since(&inner).is_some() {
            return None;
        }
        let s = inner.symbols.get(symbol)?;
        if !within(s.positions_polled_at[side_index(side)], now_ms, max_age_ms) {
            return None;
        }
        s.positions[side_index(side)].map(|(p, _)| p)
    }

    /// One side's position if live and synced since the stream went live, as
    /// `open_orders_kept`.
    pub fn position_kept(&self, symbol: &str, side: Side) -> Cached<Position> {
        let inner = self.lock();
        Self::live_since(&inner)?;
        let s = inner.symbols.get(symbol)?;
        s.positions_synced_at[side_index(side)]?;
        s.positions[side_index(side)].map(|(p, _)| p)
    }

    /// A REST read of one side's position, requested at `mark`.
    pub fn snapshot_position(&self, symbol: &str, position: Position, mark: Mark, now_ms: i64) {
        let mut inner = self.lock();
        let same_run = Self::live_since(&inner) == mark.live_since && inner.epoch == mark.epoch;
        let offset = inner.offset_ms;
        let s = inner.symbols.entry(symbol.to_string()).or_default();
        let k = side_index(position.side);
        // REST may lag the stream: a position the stream reported moments
        // before this answer stays (a fill's position read flat from a lagging
        // replica would be trusted for a minute, and the engine takes a
        // position that stays flat for a few steps as closed from outside).
        let recent =
            s.positions[k].is_some_and(|(_, t)| t > 0 && t - offset > now_ms - REST_LAG_MS);
        if !recent {
            s.positions[k] = Some((position, 0));
        }
        let later = s.since(mark.seq);
        let replayed = later.as_ref().is_some_and(|l| {
            for u in l {
                if let Update::Position {
                    position: p,
                    time_ms,
                    ..
                } = u
                {
                    if p.side == position.side {
                        s.position_update(*p, *time_ms);
                    }
                }
            }
            true
        });
        s.positions_synced_at[k] =
            (replayed && same_run && mark.live_since.is_some()).then_some(now_ms);
        s.positions_polled_at[k] = Some(now_ms);
    }

    /// Fills on `symbol` at or after `since_ms`, if the view holds all of them.
    pub fn executions(&self, symbol: &str, since_ms: i64) -> Cached<Vec<Execution>> {
        if !self.caches_fills {
            return None;
        }
        let inner = self.lock();
        let live = Self::live_since(&inner)?;
        let s = inner.symbols.get(symbol);
        let from = s
            .and_then(|s| s.covered_from)
            .unwrap_or(live + inner.offset_ms + COVER_MARGIN_MS);
        if since_ms < from {
            return None;
        }
        Some(s.map_or_else(Vec::new, |s| {
            s.fills
                .iter()
                .filter(|f| f.time_ms >= since_ms)
                .cloned()
                .collect()
        }))
    }

    /// A REST list of fills from `since_ms`, requested at `mark`: with the
    /// stream live since before the request, the view is complete from
    /// `since_ms` on.
    pub fn learn_executions(&self, symbol: &str, since_ms: i64, list: &[Execution], mark: Mark) {
        if !self.caches_fills {
            return;
        }
        let mut inner = self.lock();
        let (offset, epoch) = (inner.offset_ms, inner.epoch);
        let live = Self::live_since(&inner).map(|t| t + offset);
        let s = inner.symbols.entry(symbol.to_string()).or_default();
        for e in list {
            s.fill(e.clone());
        }
        if let (Some(now), Some(then)) = (live, mark.live_since) {
            if now == then + offset && epoch == mark.epoch && s.fills.len() < FILLS_KEPT {
                let from = s.covered_from.unwrap_or(now + COVER_MARGIN_MS);
                s.covered_from = Some(from.min(since_ms));
            }
        }
    }

    /// The wallet balance, if the stream reported it since it went live.
    pub fn balance(&self) -> Cached<Decimal> {
        let inner = self.lock();
        Self::live_since(&inner)?;
        inner.wallet.map(|(b, _)| b)
    }

    /// Fills on `symbol` that no engine has read yet, now read: their times
    /// on our clock (for the fill-to-engine latency).
    pub fn take_unread_fills(&self, symbol: &str) -> Vec<i64> {
        let mut inner = self.lock();
        let offset = inner.offset_ms;
        inner
            .symbols
            .get_mut(symbol)
            .map(|s| std::mem::take(&mut s.unread_fills))
            .unwrap_or_default()
            .into_iter()
            .map(|t| t - offset)
            .collect()
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
