//! The market-data process (`blitz: market-data`, C15): follows every (venue,
//! symbol) wanted on the price board (`market::board`) over the venue's public
//! WebSocket, falls back to the public REST tickers while the stream is
//! unavailable, and publishes each quote to the board for the workers and the
//! bot runner. It never writes the database.
//!
//! Design: one loop thread, no async runtime, no thread per socket. There are
//! at most two sockets (one per venue), so the loop simply takes turns: each
//! venue's socket is read (and written) with a 20 ms socket timeout until it has
//! nothing more, then the other's. That is clearly simpler than an event loop
//! over non-blocking sockets (`mio` would need tungstenite's and rustls's
//! `WouldBlock` handling for the handshakes too) and costs at most ~50 wake-ups
//! a second while following, 4 when idle. What cannot be bounded that tightly —
//! DNS, connect and handshake (3 s overall), a REST poll (3 s per call) — runs
//! on a short-lived helper thread, at most one of each per venue (`job`); the
//! loop only collects the result, so a venue that stalls delays neither the
//! other venue's reads nor the child's heartbeat.
//!
//! Who wants what: consumers call `QuoteSource::want` on the board; this process
//! also wants, every few seconds, the markets of the instance's bots (`wanted`),
//! so a configured bot's price is followed before its first order.

pub(crate) mod backoff;
mod bingx;
mod bybit;
pub mod clock;
mod event;
mod job;
mod partial;
pub(crate) mod socket;
mod venue;
mod wanted;

use blitz_master::ChildCtx;
use slog::{error, info, warn, Logger};

use self::clock::Clock;
use self::venue::VenueFeed;
use crate::background::{self, Background};
use crate::config::Config;
use crate::log::Sink;
use crate::market::{Board, Venue};

/// Where the venues are, and how patient to be with them.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub bybit_ws: String,
    pub bingx_ws: String,
    /// REST bases, no trailing slash.
    pub bybit_rest: String,
    pub bingx_rest: String,
    /// The connect's overall budget (DNS, TCP, TLS, upgrade), and each REST
    /// call's timeout.
    pub timeout_ms: u64,
    /// The longest pause between reconnect attempts.
    pub backoff_cap_ms: i64,
}

impl Endpoints {
    pub fn of(config: &Config) -> Endpoints {
        Endpoints {
            bybit_ws: config.bybit_ws_public_url.clone(),
            bingx_ws: config.bingx_ws_public_url.clone(),
            bybit_rest: config.exchanges.bybit_url.clone(),
            bingx_rest: config.exchanges.bingx_url.clone(),
            // Short: a hanging venue must not hold the other one's reads for long.
            timeout_ms: config.exchanges.timeout_ms.min(3000),
            backoff_cap_ms: 30_000,
        }
    }
}

/// The board's wanted list is re-read this often.
const WANTED_EVERY_MS: i64 = 250;

/// The loop's pause when nothing is followed (no socket paces it then).
const IDLE_SLEEP: std::time::Duration = std::time::Duration::from_millis(250);

/// The market-data loop: runs until `keep_going` says stop. `keep_going` is
/// called before each venue's turn (many times a second).
pub fn run_loop(
    board: &Board,
    ends: &Endpoints,
    clock: &dyn Clock,
    log: &Logger,
    keep_going: &mut dyn FnMut() -> bool,
) {
    let mut venues: Vec<VenueFeed> = Venue::ALL
        .iter()
        .map(|v| VenueFeed::new(*v, ends, log))
        .collect();
    let mut wanted_at = i64::MIN / 2;
    let mut refused_seen = 0;
    while keep_going() {
        let now = clock.now_ms();
        if now - wanted_at >= WANTED_EVERY_MS {
            wanted_at = now;
            let wanted = board.wanted();
            for v in &mut venues {
                v.follow(&wanted, now);
            }
            // After `follow` forgot them: their slots go to new symbols.
            let freed = board.reclaim_unwanted(now - venue::UNWANTED_AFTER_MS);
            if freed > 0 {
                info!(log, "unwanted price board slots freed for new symbols"; "slots" => freed);
            }
            let refused = board.refused();
            if refused > 0 && refused_seen == 0 {
                warn!(log, "the price board is full; new symbols are not followed";
                    "capacity" => crate::market::board::CAPACITY);
            }
            refused_seen = refused;
        }
        for v in &mut venues {
            v.step(board, clock.now_ms());
            if !keep_going() {
                return;
            }
        }
        if venues.iter().all(VenueFeed::idle) {
            std::thread::sleep(IDLE_SLEEP);
        } else if !venues.iter().any(VenueFeed::has_socket) {
            // No socket paces the loop: do not spin.
            std::thread::sleep(socket::READ_WAIT * 2);
        }
    }
}

/// The child's entry point.
pub fn run(ctx: ChildCtx, config: &Config, log: Logger, sinks: Vec<Sink>) -> i32 {
    let bg = match Background::start(&ctx, sinks) {
        Ok(bg) => bg,
        Err(e) => {
            error!(log, "cannot install signal handlers"; "error" => %e);
            return 1;
        }
    };
    // During a binary upgrade the new process waits for the old one, so that one
    // connection per venue follows the prices.
    let lock_path = config.instance_dir().join("market-data.lock");
    let _lock = match background::exclusive(&ctx, &bg, &lock_path, &log, &|| {}) {
        Ok(Some(lock)) => lock,
        Ok(None) => return 0,
        Err(e) => {
            error!(log, "cannot lock {}", lock_path.display(); "error" => %e);
            return 1;
        }
    };
    let board = Board::of(&ctx.scoreboard);
    let ends = Endpoints::of(config);
    info!(log, "market data started"; "bybit" => &ends.bybit_ws, "bingx" => &ends.bingx_ws);
    let mut bots = wanted::BotMarkets::new(config, &log);
    let clock = clock::SystemClock;
    run_loop(&board, &ends, &clock, &log, &mut || {
        // The heartbeat goes on both sides of the (rare, possibly slow) read of
        // the bots' markets, so that read alone counts against the timeout.
        bg.tend(&ctx) && {
            bots.want_on(&board, clock.now_ms());
            bg.tend(&ctx)
        }
    });
    info!(log, "market data stopped");
    0
}
