//! How fast the account streams may open connections. Bybit allows at most 500
//! WebSocket connections to its stream hosts per 5 minutes per IP, and asks
//! clients not to connect and disconnect frequently
//! (<https://bybit-exchange.github.io/docs/v5/rate-limit>, "Websocket IP
//! limit"): a server with 1,000 accounts cannot open them all at once, and a
//! reconnect storm must not get its IP refused. BingX publishes no such number;
//! its streams are paced the same way, which costs nothing at its scale.
//!
//! Each egress (the server, or an account's proxy) has its own window, as it
//! has its own IP.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The window and how many connects it may hold: 400 of Bybit's 500, leaving
/// room for the market-data process's public streams and a restart.
pub const WINDOW: Duration = Duration::from_secs(300);
pub const CONNECTS_PER_WINDOW: usize = 400;

#[derive(Default)]
pub struct Pace {
    /// Connect times by (exchange, egress), oldest first.
    sent: HashMap<(&'static str, String), VecDeque<Instant>>,
}

impl Pace {
    /// Takes a connect of `exchange` through `egress` now, or says when the
    /// window has room again.
    pub fn take(
        &mut self,
        exchange: &'static str,
        egress: &str,
        now: Instant,
    ) -> Result<(), Instant> {
        self.take_within(exchange, egress, now, CONNECTS_PER_WINDOW)
    }

    fn take_within(
        &mut self,
        exchange: &'static str,
        egress: &str,
        now: Instant,
        limit: usize,
    ) -> Result<(), Instant> {
        let sent = self.sent.entry((exchange, egress.to_string())).or_default();
        while sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            sent.pop_front();
        }
        match sent.front() {
            Some(oldest) if sent.len() >= limit => Err(*oldest + WINDOW),
            _ => {
                sent.push_back(now);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_says_when_the_oldest_connect_leaves_it() {
        let mut p = Pace::default();
        let t0 = Instant::now();
        assert_eq!(p.take_within("bybit", "direct", t0, 2), Ok(()));
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(p.take_within("bybit", "direct", t1, 2), Ok(()));
        let t2 = t0 + Duration::from_secs(20);
        assert_eq!(p.take_within("bybit", "direct", t2, 2), Err(t0 + WINDOW));
        // Another egress or exchange has its own window.
        assert_eq!(p.take_within("bybit", "via socks5://p:1080", t2, 2), Ok(()));
        assert_eq!(p.take_within("bingx", "direct", t2, 2), Ok(()));
        // Once the oldest left the window, one more fits.
        assert_eq!(p.take_within("bybit", "direct", t0 + WINDOW, 2), Ok(()));
        assert_eq!(
            p.take_within("bybit", "direct", t0 + WINDOW, 2),
            Err(t1 + WINDOW)
        );
    }
}
