//! Multiprocess Prometheus metrics (README, Metrics), kept in shared memory (`segment`).
//!
//! Every process writes only its own slot of cells (`cells`), indexed by series
//! numbers from shared registries (`registry`); per-user series (`bot_*_total`)
//! have one shared cell each instead, since they are rare and numerous. A scrape,
//! served by any worker (`render`), sums the slots and the retired accumulator into
//! which the master folds a process's values when it ends. Storage and scrape cost
//! depend on the number of series and slots, never on how many processes ever ran.
//!
//! The functions below are the hooks the rest of the program calls; before the
//! master has installed the segment (commands, unit tests) they do nothing.

mod cells;
pub mod families;
mod process;
mod registry;
mod render;
mod segment;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use cells::Cells;
pub use families::ErrorKind;
use families::{stat, GROUPS, REDIS_OPS, RESTART_REASONS};
use registry::{series_hash, Registry};
use segment::Segment;
pub use segment::{MASTER_SLOT, STATIC_CAP};

pub use render::{render, AppInfo};

/// Header words of the segment.
const FOLD_SEQ: usize = 0;
const MASTER_PID: usize = 1;
/// One past the highest worker slot ever entered (bounds the slots a scrape sums).
const WORKER_HIGH: usize = 2;

struct Shared {
    header: &'static [AtomicU64],
    hot: Registry,
    hist: Registry,
    user: Registry,
    cells: Cells,
    segment: Segment,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
/// This process's slot (`usize::MAX` = none).
static SLOT: AtomicUsize = AtomicUsize::new(usize::MAX);

thread_local! {
    /// (registry, series hash) → index, so a known series costs no registry probe.
    static INDEX: RefCell<HashMap<(u8, u64), Option<usize>>> = RefCell::new(HashMap::new());
}

/// Master, before forking: maps the segment (in `dir` when given) and takes the
/// master's slot.
pub fn install(dir: Option<&Path>) -> std::io::Result<()> {
    let segment = Segment::create(dir)?;
    let w = segment.words();
    let shared = Shared {
        header: &w[..segment::HEADER_WORDS],
        hot: Registry::new(&w[segment::HOT_REG..segment::HIST_REG]),
        hist: Registry::new(&w[segment::HIST_REG..segment::USER_REG]),
        user: Registry::new(&w[segment::USER_REG..segment::SLOTS_AT]),
        cells: Cells::new(&w[segment::SLOTS_AT..]),
        segment,
    };
    shared.header[MASTER_PID].store(u64::from(std::process::id()), Ordering::Relaxed);
    SHARED
        .set(shared)
        .map_err(|_| std::io::Error::other("metrics already installed"))?;
    SLOT.store(MASTER_SLOT, Ordering::Relaxed);
    Ok(())
}

/// Master, on exit: removes the segment's file, if any.
pub fn uninstall() {
    if let Some(path) = SHARED.get().and_then(|s| s.segment.file()) {
        let _ = std::fs::remove_file(path);
    }
}

/// A child, first thing after fork: records into scoreboard slot `slot` from now on.
pub fn enter(slot: usize) {
    let Some(s) = SHARED.get() else { return };
    SLOT.store(slot, Ordering::Relaxed);
    if slot < blitz_master::WORKER_SLOTS {
        s.header[WORKER_HIGH].fetch_max(slot as u64 + 1, Ordering::Relaxed);
    }
}

fn here() -> Option<(&'static Shared, usize)> {
    let s = SHARED.get()?;
    let slot = SLOT.load(Ordering::Relaxed);
    (slot < segment::SLOTS).then_some((s, slot))
}

/// The index of a series in registry `reg` (0 hot, 1 histogram, 2 user).
fn index(s: &Shared, reg: u8, family: u16, labels: &[&str]) -> Option<usize> {
    let hash = series_hash(family, labels);
    let found = INDEX.with(|c| c.borrow().get(&(reg, hash)).copied());
    let i = match found {
        Some(i) => i,
        None => {
            let table = [&s.hot, &s.hist, &s.user][usize::from(reg)];
            let i = table.index(family, labels, hash);
            INDEX.with(|c| c.borrow_mut().insert((reg, hash), i));
            i
        }
    };
    if i.is_none() {
        add_stat(stat::OVERFLOW + usize::from(reg), 1);
    }
    i
}

fn add_stat(i: usize, n: u64) {
    if let Some((s, slot)) = here() {
        s.cells.stat(slot, i).fetch_add(n, Ordering::Relaxed);
    }
}

/// Three ASCII digits of an HTTP status, without allocating.
fn status_text(status: u16, buf: &mut [u8; 3]) -> &str {
    let s = status.min(999);
    *buf = [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ];
    std::str::from_utf8(buf).unwrap_or("000")
}

/// One HTTP request: `endpoint` is the route template, or `other`.
pub fn http_request(method: &str, endpoint: &str, status: u16, seconds: f64) {
    let Some((s, slot)) = here() else { return };
    let method = families::method_label(method);
    let mut buf = [0; 3];
    let status = status_text(status, &mut buf);
    if let Some(i) = index(s, 0, families::HTTP_REQUESTS, &[method, endpoint, status]) {
        s.cells.counter(slot, i).fetch_add(1, Ordering::Relaxed);
    }
    if let Some(i) = index(s, 1, families::HTTP_DURATION, &[method, endpoint]) {
        s.cells.observe(slot, i, seconds);
    }
}

/// An error of `kind` (`errors_total`).
pub fn error(kind: ErrorKind) {
    let Some((s, slot)) = here() else { return };
    if let Some(i) = index(s, 0, families::ERRORS, &kind.labels()) {
        s.cells.counter(slot, i).fetch_add(1, Ordering::Relaxed);
    }
}

/// A start, stop or recover finished with `status` (the API's status word).
pub fn bot_operation(op: &str, user_id: i64, status: &str) {
    let Some((s, _)) = here() else { return };
    let family = match op {
        "start" => families::BOT_STARTS,
        "stop" => families::BOT_STOPS,
        _ => families::BOT_RECOVERS,
    };
    let status = match status {
        "started" | "stopped" | "recovered" => "success",
        other => other,
    };
    let uid = user_id.to_string();
    if let Some(i) = index(s, 2, family, &[&uid, status]) {
        s.user.value(i).fetch_add(1, Ordering::Relaxed);
    }
}

/// The number of bots the runner is running.
pub fn active_bots(count: u64) {
    if let Some((s, slot)) = here() {
        s.cells
            .stat(slot, stat::ACTIVE_BOTS)
            .store(count, Ordering::Relaxed);
    }
}

/// A start/stop/recover refused because another one of the same user was running.
pub fn guard_conflict() {
    add_stat(stat::LOCK_CONFLICTS, 1);
}

/// A request of `group` refused by a rate limit.
pub fn rate_limited(group: &str) {
    add_stat(stat::RATE_LIMITED + families::position(&GROUPS, group), 1);
}

/// A rate-limit table of `group` had no free cell near a new key: the least used
/// key near it lost its cell and its count (`coord::local`).
pub fn limit_table_full(group: &str) {
    add_stat(stat::TABLE_FULL + families::position(&GROUPS, group), 1);
}

/// A Redis call failed (`op`: admit, clear, guard, ping).
pub fn redis_error(op: &str) {
    add_stat(stat::REDIS_ERRORS + families::position(&REDIS_OPS, op), 1);
}

/// Coordination fell back from Redis to the local tables.
pub fn redis_fallback() {
    add_stat(stat::REDIS_FALLBACKS, 1);
}

/// A refresh of the market catalogue or of candles failed (the old copy stays).
pub fn market_refresh_failed() {
    add_stat(stat::MARKET_REFRESH_FAILURES, 1);
}

/// A worker asked to be replaced after `--max-requests`.
pub fn retiring() {
    if let Some((s, slot)) = here() {
        s.cells
            .stat(slot, stat::RETIRING)
            .store(1, Ordering::Relaxed);
    }
}

/// What the market-data process counts per venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketData {
    /// A frame received on the venue's public stream.
    Message,
    /// A frame or REST answer that could not be read.
    Malformed,
    /// A public REST tickers call (fallback or refresh).
    RestPoll,
    /// A new connection attempt of the stream.
    Reconnect,
}

fn venue_index(venue: crate::market::Venue) -> usize {
    crate::market::Venue::ALL
        .iter()
        .position(|v| *v == venue)
        .unwrap_or(0)
}

/// Counts one market-data event of `venue`.
pub fn market_data(venue: crate::market::Venue, what: MarketData) {
    let base = match what {
        MarketData::Message => stat::MD_MESSAGES,
        MarketData::Malformed => stat::MD_MALFORMED,
        MarketData::RestPoll => stat::MD_REST_POLLS,
        MarketData::Reconnect => stat::MD_RECONNECTS,
    };
    add_stat(base + venue_index(venue), 1);
}

/// Whether `venue`'s public stream is connected and delivering.
pub fn market_data_stream_up(venue: crate::market::Venue, up: bool) {
    if let Some((s, slot)) = here() {
        s.cells
            .stat(slot, stat::MD_STREAM_UP + venue_index(venue))
            .store(u64::from(up), Ordering::Relaxed);
    }
}

/// What an exchange's request budget did with one request
/// (`exchange::rest::budget`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetEvent {
    /// Let through to the exchange.
    Sent,
    /// Had to wait for its turn first (counted besides `Sent` or `Refused`).
    Waited,
    /// Refused: its turn would have come after its deadline.
    Refused,
}

/// Counts a budget event of `venue` for a request of `priority` (a
/// `families::PRIORITIES` label).
pub fn exchange_budget(venue: crate::market::Venue, priority: &str, event: BudgetEvent) {
    let base = match event {
        BudgetEvent::Sent => stat::EX_REQUESTS,
        BudgetEvent::Waited => stat::EX_WAITS,
        BudgetEvent::Refused => stat::EX_REFUSED,
    };
    let p = families::position(&families::PRIORITIES, priority);
    add_stat(
        base + venue_index(venue) * families::PRIORITIES.len() + p,
        1,
    );
}

/// `venue` banned this server's IP for going over its limit.
pub fn exchange_ip_ban(venue: crate::market::Venue) {
    add_stat(stat::EX_IP_BANS + venue_index(venue), 1);
}

/// The index of exchange `name` in the stream families (`Venue::ALL` order);
/// `None` for paper or an unknown name.
fn exchange_index(name: &str) -> Option<usize> {
    crate::market::Venue::parse(name).map(venue_index)
}

/// Bot runner: how many private account streams of `exchange` are connected
/// and how many are down (reconnecting).
pub fn exchange_streams(exchange: &str, connected: u64, down: u64) {
    let (Some(k), Some((s, slot))) = (exchange_index(exchange), here()) else {
        return;
    };
    s.cells
        .stat(slot, stat::STREAMS_CONNECTED + k)
        .store(connected, Ordering::Relaxed);
    s.cells
        .stat(slot, stat::STREAMS_DOWN + k)
        .store(down, Ordering::Relaxed);
}

/// One event of `kind` (`families::STREAM_EVENT_KINDS`) on a private stream.
pub fn exchange_stream_event(exchange: &str, kind: &str) {
    let kinds = &families::STREAM_EVENT_KINDS;
    if let Some(k) = exchange_index(exchange) {
        let i = kinds.iter().position(|n| *n == kind).unwrap_or(0);
        add_stat(stat::STREAM_EVENTS + k * kinds.len() + i, 1);
    }
}

/// A private stream of `exchange` (re)connecting.
pub fn exchange_stream_reconnect(exchange: &str) {
    if let Some(k) = exchange_index(exchange) {
        add_stat(stat::STREAM_RECONNECTS + k, 1);
    }
}

/// A private-stream frame of `exchange` that could not be read.
pub fn exchange_stream_malformed(exchange: &str) {
    if let Some(k) = exchange_index(exchange) {
        add_stat(stat::STREAM_MALFORMED + k, 1);
    }
}

/// A fill of `exchange` first read by a bot's step `seconds` after the
/// exchange made it.
pub fn stream_fill_to_engine(exchange: &str, seconds: f64) {
    let Some(k) = exchange_index(exchange) else {
        return;
    };
    let base = stat::FILL_TO_ENGINE + k * stat::FILL_WORDS;
    let bounds = &families::FILL_BUCKETS;
    let bucket = bounds
        .iter()
        .position(|le| seconds <= *le)
        .unwrap_or(bounds.len());
    add_stat(base + bucket, 1);
    add_stat(base + bounds.len() + 1, 1);
    add_stat(base + bounds.len() + 2, (seconds.max(0.0) * 1e6) as u64);
}

/// Which child ended, for the restart counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    Worker,
    BotRunner,
    Mailer,
    MarketData,
}

/// Master: a child in `slot` was reaped. Counts the restart by reason and folds
/// the child's values into the retired accumulator before the slot is reused.
pub fn child_ended(slot: usize, child: Child, timed_out: bool, expected: bool) {
    let Some((s, me)) = here() else { return };
    if slot >= segment::SLOTS || me != MASTER_SLOT {
        return;
    }
    let retiring = s.cells.stat(slot, stat::RETIRING).load(Ordering::Relaxed) != 0;
    let reason = match (timed_out, expected, retiring) {
        (true, _, _) => "timeout",
        (false, false, _) => "crash",
        (false, true, true) => "max_requests",
        (false, true, false) => "stopped",
    };
    let base = match child {
        Child::Worker => stat::WORKER_RESTARTS,
        Child::BotRunner => stat::RUNNER_RESTARTS,
        Child::Mailer => stat::MAILER_RESTARTS,
        Child::MarketData => stat::MARKET_DATA_RESTARTS,
    };
    let seq = &s.header[FOLD_SEQ];
    seq.fetch_add(1, Ordering::AcqRel);
    s.cells.fold(slot, s.hot.claimed(), s.hist.claimed());
    seq.fetch_add(1, Ordering::AcqRel);
    let r = base + families::position(&RESTART_REASONS, reason);
    s.cells.stat(me, r).fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test that installs the segment (it is process-wide).
    #[test]
    fn series_beyond_the_table_are_counted_not_stored() {
        install(None).unwrap();
        enter(0);
        let n = segment::USER_CAP + 5_000;
        for uid in 0..n as i64 {
            bot_operation("start", uid, "started");
        }
        bot_operation("start", 7, "started");
        let stored = SHARED.get().unwrap().user.entries().count();
        let overflow = SHARED.get().unwrap().cells.stat(0, stat::OVERFLOW + 2);
        let overflow = overflow.load(Ordering::Relaxed) as usize;
        assert!(stored <= segment::USER_CAP && stored > segment::USER_CAP / 2);
        assert_eq!(stored + overflow, n, "each new series is stored or counted");
        let sb = blitz_master::Scoreboard::create(4096).unwrap();
        let info = AppInfo {
            version: "t",
            environment: "test",
        };
        let text = render(&sb, &info);
        let line = format!("blitz_metrics_series_overflow_total{{registry=\"user\"}} {overflow}\n");
        assert!(text.contains(&line), "{line}");
        assert!(text.contains("bot_starts_total{user_id=\"7\",status=\"success\"} 2\n"));
    }
}
