//! One request budget per exchange and process (ARCHITECTURE §11, CONTRACT C16):
//! every REST request of an exchange — retries and clock syncs included — passes
//! its budget before it is sent, so the server's IP never goes over the exchange's
//! per-IP limit and a ban never freezes every user's bots.
//!
//! - Bybit: 600 requests per 5 s per IP, over which it answers HTTP 403 "access too
//!   frequent" and bans the IP for at least 10 minutes
//!   (<https://bybit-exchange.github.io/docs/v5/rate-limit>, "IP Limit").
//!   Default budget 500 (`BYBIT_REQUESTS_PER_5S`, 1–600).
//! - BingX: account (signed) endpoints share 2,000 requests per 10 s per IP, market
//!   data endpoints 500 per 10 s per IP
//!   (<https://bingx.com/en/support/articles/31103871611289>); HTTP 429 answers a
//!   broken limit and 418 an IP "auto-banned for continuing to send requests after
//!   receiving 429 codes" (<https://bingx-api.github.io/docs/swap/base-info.html>).
//!   Default budgets 1,600 and 400 (`BINGX_REQUESTS_PER_10S`,
//!   `BINGX_MARKET_REQUESTS_PER_10S`).
//!
//! A budget is the instance's: its processes split it, since each counts only
//! its own requests (`set_process_share`). The bot runner makes nearly all
//! private calls and takes 80 %; the HTTP workers (key checks) and the
//! market-data process (public calls) share the other 20 %. The defaults leave
//! the rest of the exchange's limit (100 of Bybit's 600, a fifth of BingX's) for
//! what the budget cannot see (another program on the host, clock skew).
//!
//! A start's reads are *urgent* (`urgent`): a user waits for them, so they
//! take the placement class. A bot's periodic reconciliation is *optional*
//! (`optional`): a read made
//! while the account's stream is live and only the minute's check is due. It
//! never waits and may fill only 40 % of the window, so that it can never hold
//! back a read a bot cannot do without (a new stream's first snapshot, a start)
//! or any order; refused, the bot goes on with the stream's view and tries on a
//! later step.
//!
//! When the window runs short, protective requests go first (`Priority`): reads
//! may fill it to 60 %, placements to 75 %, protective requests to 100 %, and a
//! waiting request is served before waiting less urgent ones. A caller waits,
//! bounded by its deadline; a wait that would pass it is `RateLimited` (retryable:
//! the bot tries again on its next step).
//!
//! Budgets are keyed by exchange and base URL: one per exchange in production, one
//! per fake in tests. Nothing here creates a thread; a budget is made by the
//! first adapter built in a process (a forked child, never the master).

mod window;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub use window::Limit;
use window::Window;

use crate::exchange::{ExchangeError, NewOrder, OrderKind};
use crate::market::Venue;
use crate::metrics::{self, BudgetEvent};

/// How urgent a request is, from the call site that knows what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Cancels, reduce-only placements (take-profit, stop, close) and stops: what
    /// limits a loss or takes a profit.
    Protective,
    /// Opening orders and leverage.
    Placement,
    /// Every read: open orders, order lookups, positions, executions, funding,
    /// balance, key checks, market data, the server clock.
    Reconcile,
}

impl Priority {
    pub const ALL: [Priority; 3] = [
        Priority::Protective,
        Priority::Placement,
        Priority::Reconcile,
    ];

    /// The `priority` label of the budget metrics.
    pub fn label(self) -> &'static str {
        match self {
            Priority::Protective => "protective",
            Priority::Placement => "placement",
            Priority::Reconcile => "reconcile",
        }
    }

    /// 0 is the most urgent.
    pub fn rank(self) -> usize {
        match self {
            Priority::Protective => 0,
            Priority::Placement => 1,
            Priority::Reconcile => 2,
        }
    }

    /// How much of the window this class may fill: what is left above it is kept
    /// for the more urgent ones.
    pub fn share_percent(self) -> u32 {
        match self {
            Priority::Protective => 100,
            Priority::Placement => 75,
            Priority::Reconcile => 60,
        }
    }

    /// The class of a placement: reduce-only orders and stops protect.
    pub fn of_order(order: &NewOrder) -> Priority {
        if order.reduce_only || order.kind == OrderKind::Stop {
            Priority::Protective
        } else {
            Priority::Placement
        }
    }

    /// The longest a request of this class waits for the budget (capped by the
    /// exchange timeout). A waiting request holds its bot's step: a fill the
    /// stream reports meanwhile reaches the engine only after it, and the step
    /// holds a pool thread other bots' steps need. So reads and opening orders
    /// wait briefly (the bot tries again on its next step, and a refused
    /// placement was not sent). Protective requests wait up to a second: one
    /// refused is sent again by the bot's next step (a second later, or at once
    /// on a stream event), which first reads the fills that came meanwhile;
    /// they also have the whole window and go before any other. Inside
    /// `urgent` (a start, which a user waits for) every class may wait out an
    /// exchange's one-second back-off, and no more: a start makes several
    /// requests, and its user waits for all of them. A running bot's step
    /// bounds the sum of its waits further (`bounded`).
    pub fn max_wait(self, timeout: Duration) -> Duration {
        let cap = match self {
            Priority::Protective => Duration::from_secs(1),
            _ if URGENT.with(Cell::get) => Duration::from_secs(1),
            Priority::Placement | Priority::Reconcile => Duration::from_millis(500),
        };
        cap.min(timeout)
    }
}

/// The budget settings of both exchanges (`BYBIT_REQUESTS_PER_5S`,
/// `BINGX_REQUESTS_PER_10S`, `BINGX_MARKET_REQUESTS_PER_10S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub bybit_per_5s: u32,
    pub bingx_per_10s: u32,
    pub bingx_market_per_10s: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bybit_per_5s: 500,
            bingx_per_10s: 1600,
            bingx_market_per_10s: 400,
        }
    }
}

impl Limits {
    pub fn bybit(self) -> Limit {
        Limit {
            requests: self.bybit_per_5s,
            per: Duration::from_secs(5),
        }
    }

    pub fn bingx(self) -> Limit {
        Limit {
            requests: self.bingx_per_10s,
            per: Duration::from_secs(10),
        }
    }

    pub fn bingx_market(self) -> Limit {
        Limit {
            requests: self.bingx_market_per_10s,
            per: Duration::from_secs(10),
        }
    }
}

/// The requests one exchange (or one of its endpoint groups) accepts from this
/// process.
pub struct RequestBudget {
    venue: Venue,
    window: Mutex<Window>,
    /// Signalled when a waiting request leaves, so that the less urgent ones it
    /// held back look again.
    changed: Condvar,
}

impl RequestBudget {
    pub fn new(venue: Venue, limit: Limit) -> RequestBudget {
        RequestBudget {
            venue,
            window: Mutex::new(Window::new(limit)),
            changed: Condvar::new(),
        }
    }

    pub fn limit(&self) -> Limit {
        self.lock().limit()
    }

    /// Waits until a request of `p` may be sent and counts it; `RateLimited` at
    /// once when that moment is past `deadline` (or the deadline passes while a
    /// more urgent request holds the turn). Keep the `Turn` until the request's
    /// answer is in (or it failed): it counts from then on. Inside `optional`,
    /// a read goes only if the window has room for it now.
    pub fn acquire(&self, p: Priority, deadline: Instant) -> Result<Turn<'_>, ExchangeError> {
        if p == Priority::Reconcile && OPTIONAL.with(Cell::get) {
            return self.acquire_optional();
        }
        let deadline = STEP_DEADLINE
            .with(Cell::get)
            .map_or(deadline, |d| d.min(deadline));
        let p = if p == Priority::Reconcile && URGENT.with(Cell::get) {
            Priority::Placement
        } else {
            p
        };
        let mut w = self.lock();
        // A request that would not get its turn before its deadline even behind
        // those already waiting is refused now rather than after the wait: a
        // wait holds the bot's step and a pool thread, and under a full budget
        // hopeless waits held every thread while fills queued behind them.
        let ahead = w.waiting_before(p);
        if ahead > 0 && w.ready_behind(p, Instant::now(), ahead) > deadline {
            drop(w);
            metrics::exchange_budget(self.venue, p.label(), BudgetEvent::Refused);
            return Err(ExchangeError::RateLimited);
        }
        let mut waited = false;
        let outcome = loop {
            let now = Instant::now();
            let ready = w.ready_at(p, now);
            let outranked = w.outranked(p);
            if ready <= now && !outranked {
                w.take(now);
                break Ok(());
            }
            if ready > deadline || now >= deadline {
                break Err(ExchangeError::RateLimited);
            }
            // Until the window frees; outranked, until the urgent one goes and
            // signals (or the deadline).
            let until = if ready > now { ready } else { deadline };
            waited = true;
            w.waiting[p.rank()] += 1;
            w = match self.changed.wait_timeout(w, until - now) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
            w.waiting[p.rank()] -= 1;
        };
        drop(w);
        if waited {
            self.changed.notify_all();
            metrics::exchange_budget(self.venue, p.label(), BudgetEvent::Waited);
        }
        let event = match outcome {
            Ok(()) => BudgetEvent::Sent,
            Err(_) => BudgetEvent::Refused,
        };
        metrics::exchange_budget(self.venue, p.label(), event);
        outcome.map(|()| Turn { budget: self })
    }

    /// An optional read's turn: now and below `OPTIONAL_SHARE_PERCENT` of the
    /// window with nobody waiting, or `RateLimited`.
    fn acquire_optional(&self) -> Result<Turn<'_>, ExchangeError> {
        let p = Priority::Reconcile;
        let mut w = self.lock();
        let now = Instant::now();
        let cap = w.limit().share(OPTIONAL_SHARE_PERCENT);
        let free =
            w.closed_until(now).is_none() && w.used(now) < cap && !w.waiting.iter().any(|n| *n > 0);
        if free {
            w.take(now);
        }
        drop(w);
        // One skipped is not a refusal: the stream's view answers instead, and
        // counting it would bury the refusals that matter (a 1,000-bot run
        // skipped over a thousand a second).
        if free {
            metrics::exchange_budget(self.venue, p.label(), BudgetEvent::Sent);
            Ok(Turn { budget: self })
        } else {
            Err(ExchangeError::RateLimited)
        }
    }

    /// Sends nothing for `pause` (the exchange said to back off); every class
    /// waits, or is refused when the pause outlasts its deadline.
    pub fn pause(&self, pause: Duration) {
        self.lock().close_until(Instant::now() + pause);
    }

    /// The exchange banned this IP for `ban`: closed until it ends (more requests
    /// would prolong it), counted in `blitz_exchange_ip_bans_total`.
    pub fn ban(&self, ban: Duration) {
        let until = Instant::now() + ban;
        let mut w = self.lock();
        // One ban, however many requests in flight report it.
        let new = w
            .closed_until(Instant::now())
            .is_none_or(|c| c + BAN_SLACK < until);
        w.close_until(until);
        drop(w);
        if new {
            metrics::exchange_ip_ban(self.venue);
        }
    }

    /// Whether requests are held back now (a ban or a pause).
    pub fn closed(&self) -> bool {
        self.lock().closed_until(Instant::now()).is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One request's place in the window, from its turn to its answer.
#[must_use = "the request counts as answered when its turn is dropped"]
pub struct Turn<'a> {
    budget: &'a RequestBudget,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.budget.lock().finish(Instant::now());
    }
}

/// Answers of one ban that arrive this close together count once.
const BAN_SLACK: Duration = Duration::from_secs(30);

/// How much of the window an optional read may fill.
const OPTIONAL_SHARE_PERCENT: u32 = 40;

thread_local! {
    /// Set inside `optional`.
    static OPTIONAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with its reads optional (see the module's comment): each is sent
/// only if the budget has room for it at once, else it is `RateLimited`.
pub fn optional<T>(f: impl FnOnce() -> T) -> T {
    with_flag(&OPTIONAL, f)
}

thread_local! {
    /// Set inside `urgent`.
    static URGENT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with its reads as urgent as placements: a user waits for them (a
/// start's checks and first step), so they go before the steady reads of
/// running bots. Their waits are still bounded by the caller's deadline.
pub fn urgent<T>(f: impl FnOnce() -> T) -> T {
    with_flag(&URGENT, f)
}

thread_local! {
    /// Set inside `bounded`: no request waits for its turn past it.
    static STEP_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` (a bot's step) with all its requests' waits for the budget ending
/// within `total`: past it they are refused (`RateLimited`, not sent). A step
/// that waits holds back the fills its stream reports meanwhile: they reach
/// the engine only at the next step. Under a full budget one step's waits
/// (up to a second per request, several requests) kept fills a second and more
/// from the engine; a refused request is sent again by the next step, which
/// first reads what happened meanwhile.
pub fn bounded<T>(total: Duration, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Instant>);
    impl Drop for Reset {
        fn drop(&mut self) {
            STEP_DEADLINE.with(|c| c.set(self.0));
        }
    }
    let until = Instant::now() + total;
    let _reset = Reset(STEP_DEADLINE.with(|c| c.replace(Some(until))));
    f()
}

/// Runs `f` with the thread's `flag` set, then puts it back as it was.
fn with_flag<T>(flag: &'static std::thread::LocalKey<Cell<bool>>, f: impl FnOnce() -> T) -> T {
    struct Reset(&'static std::thread::LocalKey<Cell<bool>>, bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _reset = Reset(flag, flag.with(|c| c.replace(true)));
    f()
}

/// This process's part of the instance's budgets, in per mille (all of it
/// until `set_process_share`).
static PROCESS_SHARE: AtomicU32 = AtomicU32::new(1000);

/// The bot runner's part of every budget.
pub const RUNNER_SHARE_PERMILLE: u32 = 800;

/// Sets this process's part of the instance's budgets (per mille), before its
/// first exchange request: the bot runner `RUNNER_SHARE_PERMILLE`, every other
/// process an equal part of the rest (`other_share_permille`).
pub fn set_process_share(permille: u32) {
    PROCESS_SHARE.store(permille.clamp(1, 1000), Ordering::Relaxed);
}

/// The part of each process but the bot runner, `others` of them.
pub fn other_share_permille(others: usize) -> u32 {
    let others = u32::try_from(others.max(1)).unwrap_or(u32::MAX);
    ((1000 - RUNNER_SHARE_PERMILLE) / others).max(1)
}

/// The process's budget of `venue`'s endpoint group `group` at `base` (its REST
/// base URL), made by its first user with this process's part of the
/// instance's `limit`.
pub fn shared(venue: Venue, group: &str, base: &str, limit: Limit) -> Arc<RequestBudget> {
    let limit = limit.part(PROCESS_SHARE.load(Ordering::Relaxed));
    static ALL: OnceLock<Mutex<HashMap<String, Arc<RequestBudget>>>> = OnceLock::new();
    let all = ALL.get_or_init(|| Mutex::new(HashMap::new()));
    let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
    let key = format!("{} {group} {base}", venue.name());
    all.entry(key)
        .or_insert_with(|| Arc::new(RequestBudget::new(venue, limit)))
        .clone()
}
