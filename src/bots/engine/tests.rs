//! The engine against the real paper exchange (in memory), driven by set prices.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::bots::config::{AfterStopLoss, Grid};
use crate::bots::status::StopMode;
use crate::exchange::paper::{Paper, PaperParams};
use crate::exchange::{Exchange, ExchangeError, OrderKind, OrderStatus};
use crate::money::dec;

mod fake;

/// The journal in memory, with a clock the tests move (shared with the fake
/// exchange).
struct Mem {
    clock: Arc<AtomicI64>,
    events: Vec<(String, String, Value)>,
    trades: Vec<Trade>,
    states: Vec<CycleState>,
    last: Vec<bool>,
    notes: Vec<String>,
    submitted: HashMap<String, i64>,
    exchange_ids: HashMap<String, String>,
    fills: Vec<Fill>,
    funding: Vec<Funding>,
    snaps: Vec<Snapshot>,
    /// A configuration change waiting for the next cycle.
    pending: Option<BotConfig>,
    /// Writing an event of this kind fails (the database went away).
    fail_event: Option<&'static str>,
}

impl Default for Mem {
    fn default() -> Mem {
        Mem {
            clock: Arc::new(AtomicI64::new(1_000_000)),
            events: Vec::new(),
            trades: Vec::new(),
            states: Vec::new(),
            last: Vec::new(),
            notes: Vec::new(),
            submitted: HashMap::new(),
            exchange_ids: HashMap::new(),
            fills: Vec::new(),
            funding: Vec::new(),
            snaps: Vec::new(),
            pending: None,
            fail_event: None,
        }
    }
}

impl Journal for Mem {
    fn event(&mut self, kind: &str, message: &str, data: Value) -> Result<(), StoreError> {
        if self.fail_event == Some(kind) {
            return Err(StoreError::Conflict);
        }
        self.events.push((kind.into(), message.into(), data));
        Ok(())
    }
    fn cycle(&mut self, state: &CycleState) -> Result<(), StoreError> {
        self.states.push(*state);
        Ok(())
    }
    fn close_cycle(
        &mut self,
        trade: &Trade,
        next: &CycleState,
        last: bool,
    ) -> Result<Option<BotConfig>, StoreError> {
        self.trades.push(trade.clone());
        self.last.push(last);
        self.states.push(*next);
        Ok(self.pending.take())
    }
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), StoreError> {
        self.snaps.push(s.clone());
        Ok(())
    }
    fn notify(&mut self, text: &str) {
        self.notes.push(text.into());
    }
    fn submitted(&mut self, client_id: &str) -> Result<(), StoreError> {
        let now = self.now();
        self.submitted.entry(client_id.to_string()).or_insert(now);
        Ok(())
    }
    fn submitted_at(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.submitted.get(client_id).copied())
    }
    fn client_id_of(&self, exchange_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .exchange_ids
            .iter()
            .find(|(_, x)| *x == exchange_id)
            .map(|(c, _)| c.clone()))
    }
    fn placed(&mut self, client_id: &str, exchange_id: &str) -> Result<(), StoreError> {
        let now = self.now();
        self.submitted.entry(client_id.to_string()).or_insert(now);
        self.exchange_ids
            .insert(client_id.to_string(), exchange_id.to_string());
        Ok(())
    }
    fn refused(&mut self, client_id: &str) -> Result<(), StoreError> {
        self.submitted.remove(client_id);
        Ok(())
    }
    fn sent(&self, cycle: i64) -> Result<Vec<Sent>, StoreError> {
        let prefix = format!("bz-7-{cycle}-");
        let mut v: Vec<Sent> = self
            .submitted
            .iter()
            .filter(|(id, _)| id.starts_with(&prefix))
            .map(|(id, at)| Sent {
                client_id: id.clone(),
                exchange_id: self.exchange_ids.get(id).cloned(),
                submitted_at: *at,
            })
            .collect();
        v.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(v)
    }
    fn fill(&mut self, f: &Fill) -> Result<(), StoreError> {
        if !self
            .fills
            .iter()
            .any(|x| x.client_id == f.client_id && x.seq == f.seq)
        {
            self.fills.push(f.clone());
        }
        Ok(())
    }
    fn fills(&self, cycle: i64) -> Result<Vec<Fill>, StoreError> {
        Ok(self
            .fills
            .iter()
            .filter(|f| f.cycle == cycle)
            .cloned()
            .collect())
    }
    fn funding(&mut self, f: &Funding) -> Result<bool, StoreError> {
        if self.funding.iter().any(|x| x.exchange_id == f.exchange_id) {
            return Ok(false);
        }
        self.funding.push(f.clone());
        Ok(true)
    }
    fn funding_of(&self, cycle: i64) -> Result<Vec<Funding>, StoreError> {
        Ok(self
            .funding
            .iter()
            .filter(|f| f.cycle == cycle)
            .cloned()
            .collect())
    }
    fn now(&self) -> i64 {
        self.now_ms() / 1000
    }
    fn now_ms(&self) -> i64 {
        self.clock.load(AtomicOrdering::SeqCst)
    }
}

impl Mem {
    fn kinds(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.0.as_str()).collect()
    }

    /// Moves the clock (and the fake exchange's) by `secs`.
    fn wait(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, AtomicOrdering::SeqCst);
    }

    fn event(&self, kind: &str) -> Option<&(String, String, Value)> {
        self.events.iter().rev().find(|e| e.0 == kind)
    }
}

const SYM: &str = "ETH/USDT";
/// The bot under test: user 7's bot 7 (a default bot made by the upgrade).
const BOT: BotRef = BotRef {
    user_id: 7,
    bot_id: 7,
};

fn cfg(side: Side) -> BotConfig {
    BotConfig {
        exchange: "paper".into(),
        symbol: SYM.into(),
        side,
        leverage: 10,
        take_profit: dec!(5),
        stop_loss: Decimal::ZERO,
        rounds: 3,
        grids: vec![
            Grid {
                amount: dec!(30),
                gap: Decimal::ZERO,
            },
            Grid {
                amount: dec!(30),
                gap: dec!(1),
            },
            Grid {
                amount: dec!(60),
                gap: dec!(2),
            },
        ],
        repeat: true,
        telegram_chat_id: None,
        after_stop_loss: AfterStopLoss::Stop,
        cooldown: 0,
        max_active_legs: 0,
        trailing_take_profit: Decimal::ZERO,
    }
}

fn setup(side: Side) -> (Arc<Paper>, Engine) {
    let paper = Paper::in_memory(
        PaperParams {
            tick_ms: 1000,
            volatility: 0.001,
            seed: Some(1),
            funding_rate: crate::exchange::paper::DEFAULT_FUNDING_RATE,
        },
        0,
    )
    .unwrap();
    paper.set_price(SYM, dec!(3000)).unwrap();
    let ex = paper.account(7);
    let market = ex.market(SYM).unwrap();
    (
        paper,
        Engine::new(BOT, cfg(side), market, CycleState::first(1), 0),
    )
}

fn open_ids(ex: &dyn Exchange) -> Vec<String> {
    let mut ids: Vec<String> = ex
        .open_orders(SYM)
        .unwrap()
        .into_iter()
        .map(|o| o.client_id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_long_cycle_from_entry_to_take_profit() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    let (actions, v) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(v, Verdict::Continue);
    assert_eq!(
        actions,
        [
            "created_entry",
            "created_tp",
            "created_leg_1",
            "created_leg_2"
        ]
    );
    // 30 USDT × 10 / 3000 = 0.1 ETH; legs at 2970 and 2910.6.
    assert_eq!(ex.position(SYM, Side::Long).unwrap().size, dec!(0.1));
    assert_eq!(open_ids(&ex), ["bz-7-1-l1", "bz-7-1-l2", "bz-7-1-tp1"]);
    let tp1 = ex.order(SYM, "bz-7-1-tp1").unwrap().unwrap();
    // The entry filled at the ask, 3000 × 1.0001 = 3000.3: 3000.3 × 1.005 = 3015.3015.
    assert_eq!(tp1.price, Some(dec!(3015.31)), "0.5 % above the entry");

    // Leg 1 fills: the take-profit follows the new average.
    paper.set_price(SYM, dec!(2969)).unwrap();
    let (actions, _) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(actions, ["moved_tp"]);
    let pos = ex.position(SYM, Side::Long).unwrap();
    assert_eq!(
        pos.size,
        dec!(0.2),
        "0.1 + 300 / 2970 floored to the 0.01 step"
    );
    assert_eq!(open_ids(&ex), ["bz-7-1-l2", "bz-7-1-tp2"]);
    assert!(j.kinds().contains(&"leg_filled"));
    let tp2 = ex.order(SYM, "bz-7-1-tp2").unwrap().unwrap();
    let avg = e.ledger.avg_entry(Side::Long);
    assert!(
        (avg - pos.avg_entry).abs() < dec!(0.0001),
        "{avg} vs {}",
        pos.avg_entry
    );
    let want = crate::bots::ladder::take_profit_price(avg, dec!(5), 10, Side::Long, &e.market);
    assert_eq!((tp2.price, tp2.qty), (Some(want), dec!(0.2)));

    // A quiet step changes nothing.
    assert!(e.step(&ex, &mut j, Mode::Tick).unwrap().0.is_empty());

    // The take-profit fills: the cycle closes with PnL net of fees.
    paper.set_price(SYM, want + Decimal::ONE).unwrap();
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(v, Verdict::Continue, "repeat");
    assert_eq!(j.last, [false]);
    let t = &j.trades[0];
    assert_eq!((t.cycle, t.size), (1, dec!(0.2)));
    let gross = (want - t.avg_entry) * dec!(0.2);
    assert!(
        (t.pnl - (gross - t.fees)).abs() <= dec!(0.00000002),
        "{t:?}"
    );
    assert_eq!(t.close_reason.as_deref(), Some("take_profit"));
    assert!(t.fees > Decimal::ZERO && t.pnl > Decimal::ZERO);
    // Fees and PnL are recorded to 8 decimals.
    assert!(t.fees.scale() <= 8 && t.pnl.scale() <= 8, "{t:?}");
    assert_eq!(
        ex.order(SYM, "bz-7-1-l2").unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert!(open_ids(&ex).is_empty());
    assert_eq!(e.state.cycle, 2);
    // The next step opens cycle 2.
    let (actions, _) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(actions[0], "created_entry");
    assert!(ex.order(SYM, "bz-7-2-e").unwrap().is_some());
}

#[test]
fn a_short_cycle_and_no_repeat() {
    let (paper, mut e) = setup(Side::Short);
    e.cfg.repeat = false;
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let legs: Vec<Decimal> = ["bz-7-1-l1", "bz-7-1-l2"]
        .iter()
        .map(|id| ex.order(SYM, id).unwrap().unwrap().price.unwrap())
        .collect();
    assert_eq!(
        legs,
        // From the bid entry 3000 × 0.9999 = 2999.7.
        [dec!(3029.7), dec!(3090.29)],
        "above the entry for a short"
    );
    assert_eq!(
        ex.order(SYM, "bz-7-1-tp1").unwrap().unwrap().price,
        // 0.5 % below the bid entry 2999.7: 2984.7015, down to the tick.
        Some(dec!(2984.7))
    );
    paper.set_price(SYM, dec!(2980)).unwrap();
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(v, Verdict::Finished(StopReason::AfterCycle));
    assert!(j.trades[0].pnl > Decimal::ZERO);
    assert_eq!(j.last, [true], "the end is journalled with the trade");
}

#[test]
fn a_restarted_engine_adopts_instead_of_placing_again() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let before = open_ids(&ex);
    // A new engine with only the journalled state, as after kill -9.
    let state = *j.states.last().unwrap();
    let mut again = Engine::new(BOT, cfg(Side::Long), e.market, state, 0);
    let (actions, v) = again.step(&ex, &mut j, Mode::Resume).unwrap();
    assert_eq!((actions.len(), v), (0, Verdict::Continue));
    assert_eq!(open_ids(&ex), before);
    // Interrupted between journalling tp2 and placing it: tp2 is placed, once.
    let mut state = state;
    state.tp_n += 1;
    ex.cancel(SYM, "bz-7-1-tp1").unwrap();
    let mut third = Engine::new(BOT, cfg(Side::Long), e.market, state, 0);
    let (actions, _) = third.step(&ex, &mut j, Mode::Resume).unwrap();
    assert_eq!(actions, ["created_tp"]);
    assert_eq!(open_ids(&ex), ["bz-7-1-l1", "bz-7-1-l2", "bz-7-1-tp3"]);
}

#[test]
fn recover_recreates_only_what_is_missing() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.cancel(SYM, "bz-7-1-tp1").unwrap();
    ex.cancel(SYM, "bz-7-1-l2").unwrap();
    let (actions, _) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(
        actions,
        ["created_tp"],
        "a cancelled leg is never placed again"
    );
    let (actions, _) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert!(actions.is_empty());
    assert_eq!(open_ids(&ex), ["bz-7-1-l1", "bz-7-1-tp2"]);
}

#[test]
fn a_foreign_order_stops_the_bot_untouched() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let manual = crate::exchange::NewOrder {
        client_id: "manual-1".into(),
        symbol: SYM.into(),
        side: crate::exchange::OrderSide::Buy,
        kind: crate::exchange::OrderKind::Limit,
        price: Some(dec!(2500)),
        trigger_price: None,
        qty: dec!(0.01),
        reduce_only: false,
        position_side: Side::Long,
    };
    ex.place(&manual).unwrap();
    let before = open_ids(&ex);
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert!(matches!(v, Verdict::SafetyStop(_)), "{v:?}");
    assert_eq!(open_ids(&ex), before, "nothing cancelled");
    assert_eq!(j.kinds().last(), Some(&"safety_stop"));
}

/// An order tagged `bz-8-…` on the short side of the bot's symbol, as another
/// bot on the same account places it.
fn tagged_by_bot_8() -> crate::exchange::NewOrder {
    crate::exchange::NewOrder {
        client_id: "bz-8-1-l1".into(),
        symbol: SYM.into(),
        side: crate::exchange::OrderSide::Sell,
        kind: crate::exchange::OrderKind::Limit,
        price: Some(dec!(3500)),
        trigger_price: None,
        qty: dec!(0.01),
        reduce_only: false,
        position_side: Side::Short,
    }
}

/// Another bot of the same user on this account (the short side of the symbol):
/// its orders appear after the bot started, and are neither foreign (no safety
/// stop) nor the bot's (a stop does not cancel them). The user's journal knows
/// them: their bot recorded each before sending it.
#[test]
fn a_sibling_bots_orders_are_neither_foreign_nor_the_bots() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    j.submitted("bz-8-1-l1").unwrap();
    ex.place(&tagged_by_bot_8()).unwrap();
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(v, Verdict::Continue);
    assert!(!j.kinds().contains(&"safety_stop"));
    e.stop(&ex, &mut j, StopMode::CancelOrders).unwrap();
    assert_eq!(open_ids(&ex), ["bz-8-1-l1"], "the sibling's order stays");
}

/// Another user's bot on a shared exchange account tags its orders the same
/// way, but the user's journal never recorded them: such an order is foreign
/// (a second bot trading this symbol on the account), and the bot stops
/// without touching anything.
#[test]
fn another_users_bot_on_a_shared_account_is_foreign() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let before = open_ids(&ex);
    ex.place(&tagged_by_bot_8()).unwrap();
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert!(matches!(v, Verdict::SafetyStop(_)), "{v:?}");
    assert_eq!(j.kinds().last(), Some(&"safety_stop"));
    let mut after = before;
    after.push("bz-8-1-l1".into());
    after.sort();
    assert_eq!(open_ids(&ex), after, "nothing cancelled");
}

#[test]
fn stop_modes_and_close_position() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert!(e.stop(&ex, &mut j, StopMode::Keep).unwrap().is_empty());
    assert_eq!(open_ids(&ex).len(), 3);
    let actions = e.stop(&ex, &mut j, StopMode::ClosePosition).unwrap();
    assert!(
        actions.contains(&"closed_position".to_string()),
        "{actions:?}"
    );
    assert!(open_ids(&ex).is_empty());
    assert_eq!(ex.position(SYM, Side::Long).unwrap().size, Decimal::ZERO);
    let t = &j.trades[0];
    assert!(t.pnl < Decimal::ZERO, "flat price: fees only, {t:?}");
    assert_eq!(e.state.cycle, 2);
}

#[test]
fn small_legs_are_skipped_and_a_small_entry_is_refused() {
    let (paper, mut e) = setup(Side::Long);
    e.cfg.grids[2].amount = dec!(0.1);
    let ex = paper.account(7);
    let mut j = Mem::default();
    let (actions, _) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(actions, ["created_entry", "created_tp", "created_leg_1"]);
    assert!(j.kinds().contains(&"leg_skipped"));
    let err = e.check_entry(dec!(1000000000)).unwrap_err();
    assert!(err.contains("below the minimum quantity"), "{err}");
    assert!(
        err.contains("buys 0.00000030 ETH/USDT at 1000000000"),
        "{err}"
    );
    let err = e.check_entry(Decimal::ZERO).unwrap_err();
    assert!(err.contains("buys nothing"), "{err}");
}

#[test]
fn the_stop_loss_closes_at_market_when_the_exchange_has_none() {
    let (paper, mut e) = setup(Side::Long);
    e.cfg.stop_loss = dec!(10); // 1 % below the average at 10x
    e.cfg.rounds = 1;
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    paper.set_price(SYM, dec!(2960)).unwrap();
    // Whether the exchange took the stop (and fired it) or the bot watches the
    // price itself, the cycle closes by its stop-loss.
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    let v = match v {
        Verdict::Continue => e.step(&ex, &mut j, Mode::Tick).unwrap().1,
        v => v,
    };
    assert_eq!(v, Verdict::Finished(StopReason::StopLoss));
    let t = &j.trades[0];
    // A market sell at 2,960 less the half-spread: 2,959.704, down to the tick.
    assert!(
        t.pnl < Decimal::ZERO && t.exit_price == dec!(2959.70),
        "{t:?}"
    );
    assert_eq!(t.close_reason.as_deref(), Some("stop_loss"));
}

fn order(
    id: &str,
    side: crate::exchange::OrderSide,
    kind: crate::exchange::OrderKind,
    price: Option<Decimal>,
    qty: Decimal,
    reduce_only: bool,
) -> crate::exchange::NewOrder {
    crate::exchange::NewOrder {
        client_id: id.into(),
        symbol: SYM.into(),
        side,
        kind,
        price,
        trigger_price: None,
        qty,
        reduce_only,
        position_side: Side::Long,
    }
}

#[test]
fn an_entry_that_ended_without_a_fill_voids_its_cycle() {
    use crate::exchange::{OrderKind, OrderSide};
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    // An earlier run placed the entry, and it was cancelled before filling.
    ex.place(&order(
        "bz-7-1-e",
        OrderSide::Buy,
        OrderKind::Limit,
        Some(dec!(2000)),
        dec!(0.1),
        false,
    ))
    .unwrap();
    ex.cancel(SYM, "bz-7-1-e").unwrap();
    let mut j = Mem::default();
    let (actions, v) = e.step(&ex, &mut j, Mode::Resume).unwrap();
    assert_eq!(v, Verdict::Continue);
    assert_eq!(e.state.cycle, 2);
    assert_eq!(actions[0], "created_entry");
    assert!(j.kinds().contains(&"cycle_void"));
    assert_eq!(ex.position(SYM, Side::Long).unwrap().size, dec!(0.1));
}

#[test]
fn a_position_closed_outside_the_bot_must_be_confirmed() {
    use crate::exchange::{OrderKind, OrderSide};
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    // Closed by hand on the exchange (a market order fills at once, so it is never
    // an open foreign order).
    ex.place(&order(
        "manual-close",
        OrderSide::Sell,
        OrderKind::Market,
        None,
        dec!(0.1),
        true,
    ))
    .unwrap();
    for _ in 0..3 {
        let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
        assert_eq!(
            (v, j.trades.len()),
            (Verdict::Continue, 0),
            "maybe a lagging exchange: too soon after the last fill"
        );
    }
    j.wait(6);
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(v, Verdict::Finished(StopReason::ClosedOutside));
    assert_eq!(j.trades.len(), 1);
    assert_eq!(j.trades[0].close_reason.as_deref(), Some("outside"));
    assert!(j.kinds().contains(&"closed_outside"));
}

#[test]
fn an_entry_sent_long_ago_and_no_longer_listed_is_not_sent_again() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    // Sent two hours before `now` (the exchange has since forgotten it).
    j.submitted.insert("bz-7-1-e".into(), 1_000 - 7_200);
    let err = e.step(&ex, &mut j, Mode::Recover).unwrap_err();
    assert!(err.to_string().contains("no longer lists it"), "{err}");
    assert!(open_ids(&ex).is_empty());
    assert_eq!(
        ex.position(SYM, Side::Long).unwrap().size,
        Decimal::ZERO,
        "no second entry"
    );
}

#[test]
fn a_recent_entry_that_never_arrived_is_sent_and_recorded() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    // Sent a minute ago, but the exchange never got it: sending it again is safe.
    j.submitted.insert("bz-7-1-e".into(), 1_000 - 60);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert!(ex.position(SYM, Side::Long).unwrap().size > Decimal::ZERO);
    for id in ["bz-7-1-e", "bz-7-1-l1", "bz-7-1-l2", "bz-7-1-tp1"] {
        assert!(
            j.submitted.contains_key(id),
            "{id} recorded before it was sent"
        );
    }
}

#[test]
fn a_leg_sent_long_ago_and_no_longer_listed_is_skipped() {
    let (paper, mut e) = setup(Side::Long);
    let ex = paper.account(7);
    let mut j = Mem::default();
    j.submitted.insert("bz-7-1-l2".into(), 1_000 - 7_200);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let ids = open_ids(&ex);
    assert!(ids.contains(&"bz-7-1-l1".to_string()), "{ids:?}");
    assert!(!ids.contains(&"bz-7-1-l2".to_string()), "{ids:?}");
    assert!(j.kinds().contains(&"order_unknown"), "{:?}", j.kinds());
}

// ---- Against the fake exchange: stops, the ledger, closes, legs, errors. ----

use crate::bots::ladder::{stop_loss_price, take_profit_price};
use crate::bots::ledger::FillPurpose;
use fake::{Fake, MARKET};

/// A bot on the fake exchange at 3000, with the journal sharing its clock.
fn on_fake(side: Side, change: impl FnOnce(&mut BotConfig)) -> (Fake, Engine, Mem) {
    let j = Mem::default();
    let ex = Fake::new(j.clock.clone(), dec!(3000));
    let mut c = cfg(side);
    change(&mut c);
    (ex, Engine::new(BOT, c, MARKET, CycleState::first(1), 0), j)
}

fn tick(e: &mut Engine, ex: &Fake, j: &mut Mem) -> (Vec<String>, Verdict) {
    e.step(ex, j, Mode::Tick).unwrap()
}

fn with_stop(c: &mut BotConfig) {
    c.stop_loss = dec!(50); // 5 % below the average at 10x, beyond the deepest leg
}

#[test]
fn the_ledger_records_each_new_part_of_a_fill_once() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |_| {});
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.partial("bz-7-1-l1", dec!(0.05));
    tick(&mut e, &ex, &mut j);
    tick(&mut e, &ex, &mut j);
    let legs: Vec<&Fill> = j
        .fills
        .iter()
        .filter(|f| f.purpose == FillPurpose::Leg)
        .collect();
    assert_eq!(legs.len(), 1, "seen twice, written once");
    assert_eq!(
        (legs[0].qty, legs[0].price, legs[0].seq),
        (dec!(0.05), dec!(2970), 0)
    );
    ex.partial("bz-7-1-l1", dec!(0.051));
    tick(&mut e, &ex, &mut j);
    let legs: Vec<&Fill> = j
        .fills
        .iter()
        .filter(|f| f.purpose == FillPurpose::Leg)
        .collect();
    assert_eq!(
        (legs[1].qty, legs[1].price, legs[1].seq),
        (dec!(0.051), dec!(2970), 1)
    );
    assert_eq!(e.size(), dec!(0.201));
    assert_eq!(
        legs.iter().map(|f| f.fee).sum::<Decimal>(),
        ex.get("bz-7-1-l1").fee,
        "the fee deltas add up to the order's fee"
    );
}

#[test]
fn the_stop_goes_on_the_exchange_first_and_follows_the_average() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    let (actions, _) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(
        actions,
        [
            "created_entry",
            "created_sl",
            "created_tp",
            "created_leg_1",
            "created_leg_2"
        ]
    );
    let sl1 = ex.get("bz-7-1-sl1");
    assert_eq!(
        (sl1.kind, sl1.trigger_price, sl1.qty, sl1.reduce_only),
        (OrderKind::Stop, Some(dec!(2850)), dec!(0.1), true)
    );
    ex.set_price(dec!(2969));
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert_eq!(actions, ["moved_sl", "moved_tp"]);
    let avg = e.ledger.avg_entry(Side::Long);
    let sl2 = ex.get("bz-7-1-sl2");
    assert_eq!(
        sl2.trigger_price,
        stop_loss_price(avg, dec!(50), 10, Side::Long, &MARKET)
    );
    assert_eq!(sl2.qty, dec!(0.201));
    assert_eq!(ex.get("bz-7-1-sl1").status, OrderStatus::Cancelled);
    let snap = j.snaps.last().unwrap();
    assert!(snap.stop_on_exchange && snap.stop_loss_price == sl2.trigger_price);
}

#[test]
fn a_fired_stop_closes_the_cycle_cancels_everything_and_stops() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.fill_now("bz-7-1-sl1", dec!(2850));
    let (_, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(v, Verdict::Finished(StopReason::StopLoss));
    assert!(ex.open_ids().is_empty(), "legs and take-profit cancelled");
    let t = &j.trades[0];
    assert_eq!(t.close_reason.as_deref(), Some("stop_loss"));
    assert_eq!(t.exit_price, dec!(2850));
    // 0.1 × (2850 − 3000) minus both taker fees.
    let fees = dec!(0.1) * (dec!(3000) + dec!(2850)) * dec!(0.00055);
    assert_eq!(t.pnl, crate::money::pnl(dec!(-15) - fees));
    assert_eq!(j.last, [true]);
    let kinds = j.kinds();
    assert!(
        kinds.contains(&"cycle_closed") && kinds.contains(&"stop_loss"),
        "{kinds:?}"
    );
}

/// The entry of a cycle the engine began itself was never sent: it is placed
/// without a lookup (a restarted engine asks first:
/// `a_restarted_engine_adopts_instead_of_placing_again`).
#[test]
fn an_entry_the_engine_never_sent_is_not_looked_up() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        with_stop(c);
        c.after_stop_loss = AfterStopLoss::Continue;
        c.cooldown = 60;
    });
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert!(
        ex.with(|st| st.lookups.iter().any(|i| i == "bz-7-1-e")),
        "recover asks"
    );
    ex.fill_now("bz-7-1-sl1", dec!(2850));
    tick(&mut e, &ex, &mut j);
    assert_eq!(e.state.cycle, 2);
    j.wait(61);
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert_eq!(actions[0], "created_entry");
    // Neither the entry nor the ladder of the cycle it began is looked up.
    assert!(!ex.with(|st| st.lookups.iter().any(|i| i.starts_with("bz-7-2-"))));
    assert_eq!(ex.get("bz-7-2-e").filled_qty, dec!(0.1));
    assert!(ex.open_ids().iter().any(|i| i.starts_with("bz-7-2-l")));
}

/// A placement refused for the rate limit was not taken: its id is free and
/// not looked up while the bot waits for a turn.
#[test]
fn a_rate_limited_entry_is_tried_again_without_lookups() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    ex.with(|st| {
        st.refuse
            .push(("bz-7-1-e".into(), ExchangeError::RateLimited))
    });
    for _ in 0..3 {
        let err = e.step(&ex, &mut j, Mode::Tick).err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("rate")),
            "refused"
        );
        j.wait(1);
    }
    let asked = ex.with(|st| st.lookups.iter().filter(|i| *i == "bz-7-1-e").count());
    assert_eq!(asked, 1, "asked once, at the first step of a new engine");
    ex.with(|st| st.refuse.clear());
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert_eq!(actions[0], "created_entry");
    assert_eq!(ex.get("bz-7-1-e").filled_qty, dec!(0.1));
}

#[test]
fn after_a_stop_loss_the_bot_may_continue_after_its_cooldown() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        with_stop(c);
        c.after_stop_loss = AfterStopLoss::Continue;
        c.cooldown = 60;
    });
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.fill_now("bz-7-1-sl1", dec!(2850));
    let (_, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(v, Verdict::Continue);
    assert_eq!(j.last, [false]);
    assert_eq!(e.state.next_entry_at, Some(j.now() + 60));
    j.wait(30);
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert!(actions.is_empty(), "cooling down: {actions:?}");
    j.wait(31);
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert_eq!(actions[0], "created_entry");
    assert_eq!(
        ex.get("bz-7-2-e").filled_qty,
        dec!(0.1),
        "a new entry: 30 × 10 / 3000"
    );
}

#[test]
fn a_lagging_position_report_neither_closes_nor_enters_again() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |_| {});
    ex.with(|st| st.lag = Some(Decimal::ZERO));
    let (actions, _) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(actions, ["created_entry"], "open from the entry's own fill");
    // Flat on three reads, but within 5 s of the entry's fill: not confirmed.
    for _ in 0..2 {
        j.wait(2);
        let (actions, v) = tick(&mut e, &ex, &mut j);
        assert_eq!((actions.len(), v), (0, Verdict::Continue));
    }
    ex.with(|st| st.lag = None);
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert_eq!(actions, ["created_tp", "created_leg_1", "created_leg_2"]);
    assert!(j.trades.is_empty());
    assert_eq!(ex.size(Side::Long), dec!(0.1), "one entry");
}

#[test]
fn an_outside_close_takes_its_price_from_the_executions() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    j.wait(1);
    ex.close_outside(Side::Long, dec!(0.1), dec!(3010), false);
    let mut v = Verdict::Continue;
    for _ in 0..3 {
        j.wait(3);
        v = tick(&mut e, &ex, &mut j).1;
    }
    assert_eq!(v, Verdict::Finished(StopReason::ClosedOutside));
    let t = &j.trades[0];
    assert_eq!(
        (t.exit_price, t.close_reason.as_deref()),
        (dec!(3010), Some("outside"))
    );
    assert!(ex.open_ids().is_empty(), "the take-profit is cancelled");
    let (_, _, data) = j.event("closed_outside").unwrap();
    assert_eq!(data["estimate"], false);
}

#[test]
fn an_outside_close_without_executions_is_an_estimate_and_a_liquidation_is_named() {
    let (ex, mut e, mut j) = on_fake(Side::Short, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.set_price(dec!(3005));
    ex.close_outside(Side::Short, dec!(0.1), dec!(3005), false);
    ex.with(|st| st.executions.retain(|x| !x.client_id.is_empty()));
    for _ in 0..3 {
        j.wait(3);
        tick(&mut e, &ex, &mut j);
    }
    let (_, msg, data) = j.event("closed_outside").unwrap();
    assert_eq!(data["estimate"], true, "{msg}");
    assert!(msg.contains("estimate"), "{msg}");
    assert_eq!(j.trades[0].exit_price, dec!(3005), "the last mark");

    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.close_outside(Side::Long, dec!(0.1), dec!(2700), true);
    let mut v = Verdict::Continue;
    for _ in 0..3 {
        j.wait(3);
        v = tick(&mut e, &ex, &mut j).1;
    }
    assert_eq!(j.trades[0].close_reason.as_deref(), Some("liquidated"));
    assert_eq!(v, Verdict::Finished(StopReason::Liquidated));
    let (_, msg, data) = j.event("liquidated").unwrap();
    assert_eq!(data["liquidation"], true, "{msg}");
    assert!(j.event("closed_outside").is_none(), "its own event");
}

#[test]
fn a_trailing_take_profit_follows_the_best_price_and_closes_on_the_retrace() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        c.rounds = 1;
        c.trailing_take_profit = dec!(1);
    });
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert!(ex.open_ids().is_empty(), "no resting take-profit");
    for p in [dec!(3010), dec!(3020), dec!(3100), dec!(3070)] {
        ex.set_price(p);
        let (_, v) = tick(&mut e, &ex, &mut j);
        assert_eq!(v, Verdict::Continue, "at {p}");
    }
    assert_eq!(e.state.trail_best, Some(dec!(3100)));
    assert_eq!(
        j.states.last().unwrap().trail_best,
        Some(dec!(3100)),
        "journalled"
    );
    ex.set_price(dec!(3068));
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert_eq!(actions, ["closed_trailing"]);
    let t = &j.trades[0];
    assert_eq!(
        (t.close_reason.as_deref(), t.exit_price),
        (Some("trailing_take_profit"), dec!(3068))
    );
    assert!(ex.get("bz-7-1-tr1").reduce_only);
}

#[test]
fn max_active_legs_places_deeper_legs_as_shallower_ones_fill() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.max_active_legs = 1);
    let (actions, _) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(actions, ["created_entry", "created_tp", "created_leg_1"]);
    ex.set_price(dec!(2969));
    let (actions, _) = tick(&mut e, &ex, &mut j);
    assert_eq!(actions, ["moved_tp", "created_leg_2"]);
    let l2 = ex.get("bz-7-1-l2");
    assert_eq!(
        l2.price,
        Some(dec!(2910.6)),
        "measured from the entry's price"
    );
}

#[test]
fn stop_then_start_places_the_unfilled_ladder_again_under_new_ids() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.set_price(dec!(2969));
    tick(&mut e, &ex, &mut j);
    e.stop(&ex, &mut j, StopMode::CancelOrders).unwrap();
    assert!(
        ex.open_ids().is_empty(),
        "the stop is cancelled by cancel_orders"
    );
    // A new run of the same cycle, as after `start`.
    let state = *j.states.last().unwrap();
    let mut again = Engine::new(BOT, e.cfg.clone(), MARKET, state, 0);
    again.new_round(&mut j).unwrap();
    let (actions, _) = again.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(actions, ["created_sl", "created_tp", "created_leg_2"]);
    assert_eq!(ex.open_ids(), ["bz-7-1-l2r1", "bz-7-1-sl3", "bz-7-1-tp3"]);
    assert_eq!(again.size(), dec!(0.201), "the position is kept");
}

#[test]
fn a_pending_configuration_applies_from_the_next_cycle() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let mut next = e.cfg.clone();
    next.take_profit = dec!(8);
    next.leverage = 5;
    j.pending = Some(next);
    ex.set_price(dec!(3020));
    let (_, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(v, Verdict::Continue);
    assert_eq!((e.cfg.take_profit, e.cfg.leverage), (dec!(8), 5));
    assert_eq!(
        j.trades[0].size,
        dec!(0.1),
        "the closed cycle kept the old one"
    );
    tick(&mut e, &ex, &mut j);
    assert_eq!(ex.get("bz-7-2-e").qty, dec!(0.049), "30 × 5 / 3020");
    let tp = ex.get("bz-7-2-tp1");
    assert_eq!(
        tp.price,
        Some(take_profit_price(
            dec!(3020),
            dec!(8),
            5,
            Side::Long,
            &MARKET
        ))
    );
}

/// The close is written with the pending configuration, then the event write
/// fails: the engine has already moved to the next cycle with the new
/// configuration, and the next step neither records the cycle again nor runs on
/// the old configuration.
#[test]
fn a_failed_event_write_after_a_close_keeps_the_applied_configuration() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let mut next = e.cfg.clone();
    next.take_profit = dec!(8);
    j.pending = Some(next);
    j.fail_event = Some("cycle_closed");
    ex.set_price(dec!(3020));
    assert!(e.step(&ex, &mut j, Mode::Tick).is_err());
    j.fail_event = None;
    assert_eq!((e.state.cycle, e.cfg.take_profit), (2, dec!(8)));
    tick(&mut e, &ex, &mut j);
    assert_eq!(j.trades.len(), 1, "recorded once");
    let tp = ex.get("bz-7-2-tp1");
    assert_eq!(
        tp.price,
        Some(take_profit_price(
            dec!(3020),
            dec!(8),
            10,
            Side::Long,
            &MARKET
        ))
    );
}

#[test]
fn after_cycle_stops_when_the_cycle_closes() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    e.after_cycle = true;
    assert_eq!(tick(&mut e, &ex, &mut j).1, Verdict::Continue);
    ex.set_price(dec!(3020));
    assert_eq!(
        tick(&mut e, &ex, &mut j).1,
        Verdict::Finished(StopReason::AfterCycle)
    );
    assert_eq!(j.last, [true]);
}

#[test]
fn a_refused_leg_is_retried_and_only_a_small_one_is_skipped() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |_| {});
    ex.with(|st| {
        st.refuse.push((
            "l2".into(),
            ExchangeError::Rejected("price out of band".into()),
        ))
    });
    let (actions, v) = e.step(&ex, &mut j, Mode::Recover).unwrap();
    assert_eq!(v, Verdict::Continue);
    assert_eq!(actions, ["created_entry", "created_tp", "created_leg_1"]);
    assert!(j.kinds().contains(&"leg_refused"));
    ex.with(|st| st.refuse.clear());
    assert!(
        tick(&mut e, &ex, &mut j).0.is_empty(),
        "not before its retry time"
    );
    j.wait(11);
    assert_eq!(tick(&mut e, &ex, &mut j).0, ["created_leg_2"]);
    assert_eq!(j.kinds().iter().filter(|k| **k == "leg_refused").count(), 1);
}

#[test]
fn a_fatal_error_leaves_the_stop_and_says_what_is_left() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    ex.with(|st| st.refuse.push(("tp".into(), ExchangeError::InvalidKey)));
    let err = e.step(&ex, &mut j, Mode::Recover).unwrap_err();
    assert!(!err.is_retryable());
    assert!(ex.get("bz-7-1-sl1").status.is_open(), "the stop stays");
    let left = e.leftovers(&ex);
    assert!(left.contains("long position of 0.1 ETH/USDT"), "{left}");
    assert!(
        left.contains("the stop-loss bz-7-1-sl1 at 2850 stays"),
        "{left}"
    );

    // A retryable one: the step fails, the next one goes on, nothing is undone.
    ex.with(|st| st.refuse = vec![("tp".into(), ExchangeError::Busy("110079".into()))]);
    let err = tick_err(&mut e, &ex, &mut j);
    assert!(err.is_retryable());
    ex.with(|st| st.refuse.clear());
    let (actions, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(v, Verdict::Continue);
    assert!(actions.contains(&"created_tp".to_string()), "{actions:?}");
    assert!(ex.get("bz-7-1-sl1").status.is_open());
}

fn tick_err(e: &mut Engine, ex: &Fake, j: &mut Mem) -> BotError {
    e.step(ex, j, Mode::Tick).unwrap_err()
}

#[test]
fn funding_is_counted_in_the_cycle() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    j.wait(3600);
    let now = j.now_ms();
    ex.with(|st| {
        st.funding.push(crate::exchange::FundingPayment {
            id: "f1".into(),
            symbol: SYM.into(),
            amount: dec!(-0.25),
            time_ms: now,
            side: Some(Side::Long),
        });
        // The short side's funding (a position held by hand) is not the bot's.
        st.funding.push(crate::exchange::FundingPayment {
            id: "f2".into(),
            symbol: SYM.into(),
            amount: dec!(-7),
            time_ms: now,
            side: Some(Side::Short),
        })
    });
    ex.set_price(dec!(3020));
    tick(&mut e, &ex, &mut j);
    let t = &j.trades[0];
    assert_eq!(t.funding, dec!(-0.25));
    let fees = dec!(0.1) * dec!(3000) * dec!(0.00055) + dec!(0.1) * dec!(3015) * dec!(0.0002);
    assert_eq!(t.pnl, crate::money::pnl(dec!(1.5) - fees - dec!(0.25)));
}

#[test]
fn a_cycle_closes_from_the_ledger_after_the_exchange_forgot_its_orders() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 2);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.set_price(dec!(2969));
    tick(&mut e, &ex, &mut j);
    ex.forget_closed();
    // Weeks later, after a restart: only the ledger remembers the fills.
    j.wait(30 * 86_400);
    let state = *j.states.last().unwrap();
    let mut again = Engine::new(BOT, e.cfg.clone(), MARKET, state, 0);
    let (actions, _) = again.step(&ex, &mut j, Mode::Resume).unwrap();
    assert!(actions.is_empty(), "{actions:?}");
    let tp = ex.get("bz-7-1-tp2");
    ex.set_price(tp.price.unwrap());
    again.step(&ex, &mut j, Mode::Tick).unwrap();
    let t = &j.trades[0];
    assert_eq!(t.size, dec!(0.201));
    let entries = dec!(0.1) * dec!(3000) + dec!(0.101) * dec!(2970);
    let gross = dec!(0.201) * tp.price.unwrap() - entries;
    let fees: Decimal = j.fills.iter().map(|f| f.fee).sum();
    assert_eq!(t.pnl, crate::money::pnl(gross - fees));
}

#[test]
fn a_stop_listed_without_its_client_id_is_still_the_bots() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        with_stop(c);
        c.rounds = 1;
    });
    ex.with(|st| st.untagged_stops = true);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let (actions, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(
        (actions.len(), v),
        (0, Verdict::Continue),
        "no safety stop, no new stop"
    );
    // A crash between placing the stop and recording its exchange id.
    j.exchange_ids.remove("bz-7-1-sl1");
    let state = *j.states.last().unwrap();
    let mut again = Engine::new(BOT, e.cfg.clone(), MARKET, state, 0);
    let (actions, v) = again.step(&ex, &mut j, Mode::Resume).unwrap();
    assert_eq!((actions.len(), v), (0, Verdict::Continue));
    assert!(j.kinds().contains(&"stop_adopted"));
    ex.set_price(dec!(3020));
    again.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(j.trades.len(), 1);
    let stop = ex.with(|st| {
        st.orders
            .iter()
            .find(|o| o.kind == OrderKind::Stop)
            .cloned()
    });
    assert_eq!(
        stop.unwrap().status,
        OrderStatus::Cancelled,
        "cancelled by its exchange id"
    );
}

#[test]
fn a_stop_that_fired_while_the_runner_was_down_closes_the_cycle_on_resume() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    // kill -9; the mark wicks through the stop while nothing runs.
    ex.fill_now("bz-7-1-sl1", dec!(2849));
    j.wait(120);
    let state = *j.states.last().unwrap();
    let mut again = Engine::new(BOT, e.cfg.clone(), MARKET, state, 0);
    let (_, v) = again.step(&ex, &mut j, Mode::Resume).unwrap();
    assert_eq!(v, Verdict::Finished(StopReason::StopLoss));
    assert!(ex.open_ids().is_empty(), "legs and take-profit cancelled");
    assert_eq!(j.trades[0].close_reason.as_deref(), Some("stop_loss"));
    assert_eq!(j.trades[0].exit_price, dec!(2849));
    assert_eq!(ex.size(Side::Long), Decimal::ZERO);
}

/// Wraps the fake: after `arm(n)`, the `n`-th call of `open_orders` first runs
/// `hook` — something happening on the exchange between two reads of one step.
struct Racy<'a> {
    inner: &'a Fake,
    calls: std::sync::atomic::AtomicU32,
    at: std::sync::atomic::AtomicU32,
    hook: Box<dyn Fn(&Fake) + Send + Sync + 'a>,
}

impl<'a> Racy<'a> {
    fn new(inner: &'a Fake, hook: impl Fn(&Fake) + Send + Sync + 'a) -> Racy<'a> {
        Racy {
            inner,
            calls: 0.into(),
            at: u32::MAX.into(),
            hook: Box::new(hook),
        }
    }

    fn arm(&self, n: u32) {
        self.calls.store(0, AtomicOrdering::SeqCst);
        self.at.store(n, AtomicOrdering::SeqCst);
    }
}

impl Exchange for Racy<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn market(&self, s: &str) -> Result<Market, ExchangeError> {
        self.inner.market(s)
    }
    fn ticker(&self, s: &str) -> Result<Decimal, ExchangeError> {
        self.inner.ticker(s)
    }
    fn set_leverage(&self, s: &str, d: Side, l: u32) -> Result<(), ExchangeError> {
        self.inner.set_leverage(s, d, l)
    }
    fn place(&self, n: &NewOrder) -> Result<Order, ExchangeError> {
        self.inner.place(n)
    }
    fn cancel(&self, s: &str, c: &str) -> Result<(), ExchangeError> {
        self.inner.cancel(s, c)
    }
    fn open_orders(&self, s: &str) -> Result<Vec<Order>, ExchangeError> {
        let n = self.calls.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        if n == self.at.load(AtomicOrdering::SeqCst) {
            (self.hook)(self.inner);
        }
        self.inner.open_orders(s)
    }
    fn order(&self, s: &str, c: &str) -> Result<Option<Order>, ExchangeError> {
        self.inner.order(s, c)
    }
    fn order_by_id(&self, s: &str, e: &str) -> Result<Option<Order>, ExchangeError> {
        self.inner.order_by_id(s, e)
    }
    fn cancel_by_id(&self, s: &str, e: &str) -> Result<(), ExchangeError> {
        self.inner.cancel_by_id(s, e)
    }
    fn executions(
        &self,
        s: &str,
        t: i64,
    ) -> Result<Vec<crate::exchange::Execution>, ExchangeError> {
        self.inner.executions(s, t)
    }
    fn funding(
        &self,
        s: &str,
        t: i64,
    ) -> Result<Vec<crate::exchange::FundingPayment>, ExchangeError> {
        self.inner.funding(s, t)
    }
    fn position(&self, s: &str, d: Side) -> Result<crate::exchange::Position, ExchangeError> {
        self.inner.position(s, d)
    }
    fn balance(&self) -> Result<Decimal, ExchangeError> {
        self.inner.balance()
    }

    fn key_info(&self, _by: std::time::Instant) -> Result<crate::exchange::KeyInfo, ExchangeError> {
        Ok(crate::exchange::KeyInfo::keyless())
    }

    fn hedge_mode(&self, _symbol: &str) -> Result<bool, ExchangeError> {
        Ok(true)
    }
}

/// The take-profit filled in part, then the exchange stop closed the rest and the
/// exchange cancelled the reduce-only take-profit — all seen in one step (after a
/// restart, say). Whatever order the fills are read in, it is a stop-loss, and
/// with `after_stop_loss: stop` the bot stops.
#[test]
fn a_stop_after_a_partial_take_profit_closes_as_a_stop_loss() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        with_stop(c);
        c.rounds = 1;
    });
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.partial("bz-7-1-tp1", dec!(0.04));
    ex.fill_now("bz-7-1-sl1", dec!(2850));
    ex.cancel(SYM, "bz-7-1-tp1").unwrap();
    let (_, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(
        j.trades[0].close_reason.as_deref(),
        Some("stop_loss"),
        "{:?}",
        j.trades[0]
    );
    assert_eq!(v, Verdict::Finished(StopReason::StopLoss));
}

/// A ladder leg fills completely between the step's first read of the open
/// orders and the close's cancel pass: the fill is recorded and the cycle goes
/// on, never left as a position no cycle owns.
#[test]
fn a_leg_filling_while_the_cycle_closes_reopens_it() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 2);
    let racy = Racy::new(&ex, |f: &Fake| f.fill_now("bz-7-1-l1", dec!(2970)));
    e.step(&racy, &mut j, Mode::Recover).unwrap();
    assert_eq!(ex.open_ids(), ["bz-7-1-l1", "bz-7-1-tp1"]);
    let tp = ex.get("bz-7-1-tp1").price.unwrap();
    ex.with(|st| st.mark = tp);
    ex.fill_now("bz-7-1-tp1", tp);
    // The step's second open-orders read is the close's cancel pass.
    racy.arm(2);
    let (_, v) = e.step(&racy, &mut j, Mode::Tick).unwrap();
    assert_eq!(v, Verdict::Continue);
    assert!(j.kinds().contains(&"cycle_reopened"), "{:?}", j.kinds());
    assert!(j.trades.is_empty(), "{:?}", j.trades);
    racy.arm(u32::MAX);
    e.step(&racy, &mut j, Mode::Tick).unwrap();
    assert_eq!(e.size(), ex.size(Side::Long));
    assert_eq!(e.size(), dec!(0.101), "the leg's 0.101 is the cycle's");
}

/// A leg fills, the user closes the whole position by hand, and the bot sees both
/// only a minute later: the exit price and time come from the user's execution,
/// not an estimate at the mark.
#[test]
fn an_outside_close_seen_late_takes_its_price_from_the_execution() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 2);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    j.wait(10);
    ex.fill_now("bz-7-1-l1", dec!(2970));
    j.wait(10);
    let closed_ms = j.now_ms();
    let size = ex.size(Side::Long);
    ex.close_outside(Side::Long, size, dec!(2990), false);
    ex.with(|st| st.mark = dec!(2900));
    j.wait(60);
    for _ in 0..4 {
        tick(&mut e, &ex, &mut j);
        j.wait(3);
    }
    let t = &j.trades[0];
    let (_, msg, data) = j.event("closed_outside").unwrap();
    assert_eq!(t.exit_price, dec!(2990), "{msg}");
    assert_eq!(data["estimate"], false);
    let out = j.fills.iter().find(|f| f.purpose == FillPurpose::Outside);
    assert_eq!(out.map(|f| f.time_ms), Some(closed_ms));
}

/// A leg fills completely just before `stop close_position` reads the open
/// orders: the close closes the whole position, the leg included.
#[test]
fn close_position_closes_a_leg_that_filled_just_before_it() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 2);
    let racy = Racy::new(&ex, |f: &Fake| f.fill_now("bz-7-1-l1", dec!(2970)));
    e.step(&racy, &mut j, Mode::Recover).unwrap();
    racy.arm(1);
    let actions = e.stop(&racy, &mut j, StopMode::ClosePosition).unwrap();
    assert_eq!(
        ex.size(Side::Long),
        Decimal::ZERO,
        "{actions:?}; {:?}",
        j.trades
    );
    assert_eq!(j.trades[0].size, dec!(0.201), "the leg is in the trade");
    assert_eq!(j.trades[0].close_reason.as_deref(), Some("manual"));
    assert_eq!(ex.get("bz-7-1-x1").status, OrderStatus::Filled);
}

/// `stop cancel_orders` cancels the exchange stop last: until the legs are gone a
/// fill can still grow the position it protects.
#[test]
fn cancel_orders_cancels_the_stop_last() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let actions = e.stop(&ex, &mut j, StopMode::CancelOrders).unwrap();
    assert_eq!(actions.len(), 4, "{actions:?}");
    assert_eq!(
        actions.last().map(String::as_str),
        Some("cancelled bz-7-1-sl1")
    );
    assert!(ex.open_ids().is_empty());
}

/// The exchange refuses a moved take-profit once (a price band, a reduce-only
/// race) after the old one was cancelled: the bot says so, keeps running, and
/// places the take-profit again on a later step.
#[test]
fn a_refused_take_profit_is_placed_again_later() {
    let (ex, mut e, mut j) = on_fake(Side::Long, with_stop);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    let refusal = ExchangeError::Rejected("price out of band".into());
    ex.with(|st| st.refuse.push(("tp2".into(), refusal)));
    ex.set_price(dec!(2969));
    let (_, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(v, Verdict::Continue);
    let (_, msg, data) = j.event("exit_refused").unwrap();
    assert_eq!(data["exit"], "take_profit", "{msg}");
    assert!(!ex.open_ids().iter().any(|i| i.contains("tp")));
    ex.with(|st| st.refuse.clear());
    j.wait(11);
    tick(&mut e, &ex, &mut j);
    let tps: Vec<String> = ex
        .open_ids()
        .into_iter()
        .filter(|i| i.contains("tp"))
        .collect();
    assert_eq!(tps, ["bz-7-1-tp3"]);
    assert_eq!(ex.get("bz-7-1-tp3").qty, e.size());
}

/// A trailing take-profit wider than the take-profit's own price distance: once
/// trailing, a fall back to the take-profit price closes the position there, not
/// at the wider trail below the average entry.
#[test]
fn a_trailing_take_profit_closes_at_the_latest_at_the_take_profit_price() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        c.rounds = 1;
        c.trailing_take_profit = dec!(1); // 1 % of price; the TP is 0.5 % (5 % ROE at 10x)
    });
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.set_price(dec!(3016));
    tick(&mut e, &ex, &mut j);
    assert!(j.trades.is_empty());
    // 3014 is below the take-profit price 3015, far above the 1 % trail (2985.84).
    ex.set_price(dec!(3014));
    tick(&mut e, &ex, &mut j);
    let t = &j.trades[0];
    assert_eq!(t.exit_price, dec!(3014));
    assert_eq!(t.close_reason.as_deref(), Some("trailing_take_profit"));
    assert!(t.pnl > Decimal::ZERO, "{t:?}");
}

/// The ledger is flat but the exchange still reports the position (a lagging
/// report, a fill not seen yet): the cycle is not recorded until they agree.
#[test]
fn a_flat_ledger_is_not_recorded_while_the_exchange_shows_a_position() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.with(|st| st.lag = Some(dec!(0.1)));
    ex.set_price(dec!(3020));
    let (_, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(v, Verdict::Continue);
    assert!(j.trades.is_empty());
    assert!(j.event("position_mismatch").is_some());
    tick(&mut e, &ex, &mut j);
    let told = j
        .kinds()
        .iter()
        .filter(|k| **k == "position_mismatch")
        .count();
    assert_eq!(told, 1, "said once while waiting");
    ex.with(|st| st.lag = None);
    tick(&mut e, &ex, &mut j);
    assert_eq!(j.trades.len(), 1);
    assert_eq!(j.trades[0].close_reason.as_deref(), Some("take_profit"));
}

/// A position the bot's fills never explain (the user holds more on the same
/// side by hand) does not keep the cycle open for ever: after the grace period it
/// closes from the bot's own fills, and says why.
#[test]
fn a_position_held_by_hand_does_not_keep_the_cycle_open_for_ever() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| c.rounds = 1);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.with(|st| st.lag = Some(dec!(0.1)));
    ex.set_price(dec!(3020));
    tick(&mut e, &ex, &mut j);
    j.wait(10);
    tick(&mut e, &ex, &mut j);
    assert!(j.trades.is_empty(), "still within the grace period");
    j.wait(25);
    tick(&mut e, &ex, &mut j);
    assert_eq!(j.trades.len(), 1);
    assert_eq!(j.trades[0].close_reason.as_deref(), Some("take_profit"));
    let told = j
        .kinds()
        .iter()
        .filter(|k| **k == "position_mismatch")
        .count();
    assert_eq!(
        told, 2,
        "once when it starts, once when the cycle closes anyway"
    );
}

/// BingX lists stops without their client id. A crash left the first stop's
/// exchange id unrecorded, and a later stop number was refused: the first one is
/// still adopted (not taken for a foreign order and a safety stop).
#[test]
fn an_older_untagged_stop_of_the_cycle_is_adopted_too() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        with_stop(c);
        c.rounds = 1;
    });
    ex.with(|st| st.untagged_stops = true);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    j.exchange_ids.remove("bz-7-1-sl1");
    let state = CycleState {
        sl_n: 2,
        ..*j.states.last().unwrap()
    };
    let mut again = Engine::new(BOT, e.cfg.clone(), MARKET, state, 0);
    let (_, v) = again.step(&ex, &mut j, Mode::Resume).unwrap();
    assert_eq!(v, Verdict::Continue);
    let (_, _, data) = j.event("stop_adopted").unwrap();
    assert_eq!(data["client_id"], "bz-7-1-sl1");
}

/// An untagged stop of an earlier cycle still rests (its cancel was lost): it is
/// known by the exchange id the bot recorded, and cancelled as a leftover rather
/// than stopping the bot as a foreign order.
#[test]
fn an_untagged_leftover_of_an_earlier_cycle_is_cancelled_not_foreign() {
    let (ex, mut e, mut j) = on_fake(Side::Long, |c| {
        with_stop(c);
        c.rounds = 1;
    });
    ex.with(|st| st.untagged_stops = true);
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    ex.set_price(dec!(3020));
    tick(&mut e, &ex, &mut j);
    assert_eq!((j.trades.len(), e.state.cycle), (1, 2));
    // The close's cancel of the stop never reached the exchange.
    let stop_id = ex.with(|st| {
        let o = st
            .orders
            .iter_mut()
            .find(|o| o.kind == OrderKind::Stop)
            .unwrap();
        o.status = OrderStatus::Open;
        o.exchange_id.clone()
    });
    let (_, v) = tick(&mut e, &ex, &mut j);
    assert_eq!(v, Verdict::Continue);
    let (_, msg, data) = j.event("order_cancelled").unwrap();
    assert_eq!(data["client_id"], "bz-7-1-sl1", "{msg}");
    let left = ex.with(|st| {
        st.orders
            .iter()
            .find(|o| o.exchange_id == stop_id)
            .map(|o| o.status)
    });
    assert_eq!(left, Some(OrderStatus::Cancelled));
}
