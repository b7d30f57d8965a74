//! The engine against the real paper exchange (in memory), driven by set prices.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::bots::config::Grid;
use crate::exchange::paper::{Paper, PaperParams};
use crate::exchange::{Exchange, OrderStatus};
use crate::money::dec;

#[derive(Default)]
struct Mem {
    events: Vec<(String, String)>,
    trades: Vec<Trade>,
    states: Vec<CycleState>,
    last: Vec<bool>,
    notes: Vec<String>,
    submitted: std::collections::HashMap<String, i64>,
}

impl Journal for Mem {
    fn event(&mut self, kind: &str, message: &str, _data: Value) -> Result<(), StoreError> {
        self.events.push((kind.into(), message.into()));
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
    ) -> Result<(), StoreError> {
        self.trades.push(trade.clone());
        self.last.push(last);
        self.states.push(*next);
        Ok(())
    }
    fn position(&mut self, _: Decimal, _: Decimal, _: usize) -> Result<(), StoreError> {
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
    fn now(&self) -> i64 {
        1_000
    }
}

impl Mem {
    fn kinds(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.0.as_str()).collect()
    }
}

const SYM: &str = "ETH/USDT";

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
    }
}

fn setup(side: Side) -> (Arc<Paper>, Engine) {
    let paper = Paper::in_memory(
        PaperParams {
            tick_ms: 1000,
            volatility: 0.001,
            seed: Some(1),
        },
        0,
    )
    .unwrap();
    paper.set_price(SYM, dec!(3000)).unwrap();
    let ex = paper.account(7);
    let market = ex.market(SYM).unwrap();
    let state = CycleState {
        cycle: 1,
        tp_n: 0,
        sl_n: 0,
        opened_at: None,
    };
    (paper, Engine::new(7, cfg(side), market, state, 0))
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
            "created_leg_1",
            "created_leg_2",
            "created_tp"
        ]
    );
    // 30 USDT × 10 / 3000 = 0.1 ETH; legs at 2970 and 2910.6.
    assert_eq!(ex.position(SYM, Side::Long).unwrap().size, dec!(0.1));
    assert_eq!(open_ids(&ex), ["bz-7-1-l1", "bz-7-1-l2", "bz-7-1-tp1"]);
    let tp1 = ex.order(SYM, "bz-7-1-tp1").unwrap().unwrap();
    assert_eq!(tp1.price, Some(dec!(3015)), "0.5 % above the entry");

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
    let want =
        crate::bots::ladder::take_profit_price(pos.avg_entry, dec!(5), 10, Side::Long, &e.market);
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
    assert_eq!(t.pnl, crate::money::pnl(gross - t.fees), "{t:?}");
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
        [dec!(3030), dec!(3090.6)],
        "above the entry for a short"
    );
    assert_eq!(
        ex.order(SYM, "bz-7-1-tp1").unwrap().unwrap().price,
        Some(dec!(2985))
    );
    paper.set_price(SYM, dec!(2980)).unwrap();
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(v, Verdict::Finished);
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
    let mut again = Engine::new(7, cfg(Side::Long), e.market, state, 0);
    let (actions, v) = again.step(&ex, &mut j, Mode::Resume).unwrap();
    assert_eq!((actions.len(), v), (0, Verdict::Continue));
    assert_eq!(open_ids(&ex), before);
    // Interrupted between journalling tp2 and placing it: tp2 is placed, once.
    let mut state = state;
    state.tp_n += 1;
    ex.cancel(SYM, "bz-7-1-tp1").unwrap();
    let mut third = Engine::new(7, cfg(Side::Long), e.market, state, 0);
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
    assert_eq!(actions, ["created_entry", "created_leg_1", "created_tp"]);
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
fn the_stop_loss_closes_at_market() {
    let (paper, mut e) = setup(Side::Long);
    e.cfg.stop_loss = dec!(10); // 1 % below the average at 10x
    e.cfg.rounds = 1;
    let ex = paper.account(7);
    let mut j = Mem::default();
    e.step(&ex, &mut j, Mode::Recover).unwrap();
    paper.set_price(SYM, dec!(2960)).unwrap();
    let (actions, _) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(actions, ["created_sl"]);
    e.step(&ex, &mut j, Mode::Tick).unwrap();
    let t = &j.trades[0];
    assert!(t.pnl < Decimal::ZERO && t.exit_price == dec!(2960), "{t:?}");
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
fn a_position_closed_outside_the_bot_must_be_seen_twice() {
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
    let (_, v) = e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(
        (v, j.trades.len()),
        (Verdict::Continue, 0),
        "once: maybe a lagging exchange"
    );
    e.step(&ex, &mut j, Mode::Tick).unwrap();
    assert_eq!(j.trades.len(), 1);
    assert!(j
        .events
        .iter()
        .any(|(k, m)| k == "cycle_closed" && m.contains("outside the bot")));
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
