//! Public reads shared by every account of the process: the last price and a
//! market's rules are the same for every user, so one REST answer serves every
//! bot on that (exchange, symbol) for a while. Without it, 1,000 bots on
//! BTC/USDT would cost 1,000 ticker calls a second whenever the price board is
//! stale, most of Bybit's per-IP limit (C16), and 1,000 instrument reads when
//! they start.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::{ExchangeError, Market};

/// A REST last price serves other bots this long (a bot steps once a second).
const TICKER_TTL: Duration = Duration::from_millis(1000);
/// Tick, step and minimums change rarely; a start re-reads them after this.
const MARKET_TTL: Duration = Duration::from_secs(600);

type Key = (&'static str, String);

struct Cache<T> {
    entries: Mutex<HashMap<Key, (Instant, T)>>,
    ttl: Duration,
}

impl<T: Copy> Cache<T> {
    fn new(ttl: Duration) -> Cache<T> {
        Cache {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// The cached value of `key`, or `fetch`'s answer, kept when it is good.
    /// The lock is not held while fetching: two bots missing at once may both
    /// ask, which costs one request, never a wrong answer.
    fn get(
        &self,
        exchange: &'static str,
        symbol: &str,
        fetch: impl FnOnce() -> Result<T, ExchangeError>,
    ) -> Result<T, ExchangeError> {
        let key = (exchange, symbol.to_string());
        let now = Instant::now();
        if let Some((at, v)) = self.lock().get(&key) {
            if now.duration_since(*at) < self.ttl {
                return Ok(*v);
            }
        }
        let v = fetch()?;
        self.lock().insert(key, (Instant::now(), v));
        Ok(v)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Instant, T)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `exchange`'s last price of `symbol`, from REST (`fetch`) at most once a
/// second for the whole process.
pub fn ticker(
    exchange: &'static str,
    symbol: &str,
    fetch: impl FnOnce() -> Result<Decimal, ExchangeError>,
) -> Result<Decimal, ExchangeError> {
    static TICKERS: OnceLock<Cache<Decimal>> = OnceLock::new();
    TICKERS
        .get_or_init(|| Cache::new(TICKER_TTL))
        .get(exchange, symbol, fetch)
}

/// `exchange`'s rules of `symbol`, from REST (`fetch`) at most every ten
/// minutes for the whole process.
pub fn market(
    exchange: &'static str,
    symbol: &str,
    fetch: impl FnOnce() -> Result<Market, ExchangeError>,
) -> Result<Market, ExchangeError> {
    static MARKETS: OnceLock<Cache<Market>> = OnceLock::new();
    MARKETS
        .get_or_init(|| Cache::new(MARKET_TTL))
        .get(exchange, symbol, fetch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn one_fetch_serves_every_caller_until_it_expires() {
        let cache = Cache::new(Duration::from_millis(50));
        let calls = Cell::new(0);
        let fetch = || {
            calls.set(calls.get() + 1);
            Ok(Decimal::from(calls.get()))
        };
        assert_eq!(cache.get("bybit", "BTC/USDT", fetch), Ok(Decimal::ONE));
        assert_eq!(cache.get("bybit", "BTC/USDT", fetch), Ok(Decimal::ONE));
        // Another symbol or exchange is another entry.
        assert_eq!(cache.get("bingx", "BTC/USDT", fetch), Ok(Decimal::TWO));
        assert_eq!(calls.get(), 2);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("bybit", "BTC/USDT", fetch), Ok(Decimal::from(3)));
    }

    #[test]
    fn an_error_is_not_kept() {
        let cache: Cache<Decimal> = Cache::new(Duration::from_secs(60));
        let failed = cache.get("bybit", "BTC/USDT", || {
            Err(ExchangeError::Network("down".into()))
        });
        assert!(failed.is_err());
        assert_eq!(
            cache.get("bybit", "BTC/USDT", || Ok(Decimal::TEN)),
            Ok(Decimal::TEN)
        );
    }
}
