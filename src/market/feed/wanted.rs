//! The markets of the instance's bots, wanted on the board every few seconds:
//! a configured bot's price is followed before the runner asks for it. A paper
//! bot's market is wanted on the live venue of `PAPER_PRICES` (none under the
//! walk or a replay); a Bybit or BingX bot's on its own venue.

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

    /// Wants every bot's market when due.
    pub fn want_on(&mut self, board: &Board, now: i64) {
        if now < self.next_ms {
            return;
        }
        self.next_ms = now + EVERY_MS;
        let markets = self.db.conn().and_then(|c| bots::configured_markets(&c));
        match markets {
            Ok(list) => {
                self.failed = false;
                for (exchange, symbol) in list {
                    if let Some(v) = venue_of(&exchange, self.paper) {
                        board.want_at(v, &symbol, now);
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

/// The venue whose prices a bot on `exchange` trades on.
fn venue_of(exchange: &str, paper: Option<Venue>) -> Option<Venue> {
    match exchange {
        "paper" => paper,
        other => Venue::parse(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_bots_follow_the_live_source_only() {
        assert_eq!(venue_of("paper", Some(Venue::Bingx)), Some(Venue::Bingx));
        assert_eq!(venue_of("paper", None), None);
        assert_eq!(venue_of("bybit", None), Some(Venue::Bybit));
        assert_eq!(venue_of("bingx", Some(Venue::Bybit)), Some(Venue::Bingx));
        assert_eq!(venue_of("kraken", None), None);
    }
}
