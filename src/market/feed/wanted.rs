//! The markets of the instance's paper bots that run (or are meant to), wanted
//! on the board every few seconds when `PAPER_PRICES` is a live venue: a
//! starting bot's price is followed before the paper exchange asks for it.
//! Stopped bots' configurations are not: users write them, and each followed
//! symbol costs a board slot and a subscription.
//!
//! Bybit and BingX bots are not wanted here: their adapters read the venue's
//! REST ticker themselves, so nothing would read these quotes yet, and an
//! instance that does not use live paper prices then opens no connection at all.
//! A consumer that needs their prices calls `QuoteSource::want`.

use slog::{warn, Logger};

use crate::config::Config;
use crate::exchange::paper::replay::PaperPrices;
use crate::market::{Board, Venue};
use crate::store::{bots, Db};

/// How often the bots' markets are read.
const EVERY_MS: i64 = 5000;

pub struct BotMarkets {
    db: Db,
    paper: Option<Venue>,
    next_ms: i64,
    failed: bool,
    log: Logger,
}

impl BotMarkets {
    pub fn new(config: &Config, log: &Logger) -> BotMarkets {
        BotMarkets {
            // Opened lazily by the pool, in this child (never in the master).
            db: Db::new(&config.database, 1),
            paper: match config.paper_prices {
                PaperPrices::Live(v) => Some(v),
                _ => None,
            },
            next_ms: 0,
            failed: false,
            log: log.clone(),
        }
    }

    /// Wants every active paper bot's market on the live venue when due.
    pub fn want_on(&mut self, board: &Board, now: i64) {
        let Some(venue) = self.paper else { return };
        if now < self.next_ms {
            return;
        }
        self.next_ms = now + EVERY_MS;
        let markets = self.db.conn().and_then(|c| bots::active_markets(&c));
        match markets {
            Ok(list) => {
                self.failed = false;
                for (exchange, symbol) in list {
                    if exchange == "paper" {
                        board.want_at(venue, &symbol, now);
                    }
                }
            }
            Err(e) => {
                if !self.failed {
                    warn!(self.log, "cannot read the bots' markets"; "error" => %e);
                }
                self.failed = true;
            }
        }
    }
}
