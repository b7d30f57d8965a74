//! A per-IP request limit over a sliding window, as the exchanges document theirs:
//! Bybit allows 600 HTTP requests in any 5-second window per IP and answers more
//! with HTTP 403 "access too frequent" and a ban of (at least) 10 minutes
//! (bybit-exchange.github.io/docs/v5/rate-limit, "HTTP IP limit"); BingX lets all
//! account endpoints of one IP share 2,000 requests per 10 seconds and all market
//! endpoints 500 per 10 seconds (bingx.com/en/support/articles/31103871611289).
//! Every loopback client is one IP here, so the limit is the fake's, not a
//! client's. It counts every request, the largest number seen in any window and
//! every refusal, for the benchmark to prove the server stays under the limit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use super::fake_http::now_ms;

#[derive(Debug)]
struct Window {
    /// Times (ms) of the requests in the current window, oldest first.
    times: VecDeque<i64>,
    max_seen: usize,
    total: u64,
    refused: u64,
    banned_until: i64,
    /// Requests per path (method and path), for the benchmark's breakdown.
    by_path: BTreeMap<String, u64>,
}

#[derive(Debug)]
pub struct IpLimit {
    pub limit: usize,
    pub window_ms: i64,
    /// How long an IP stays refused once over the limit (0: only while over it).
    ban_ms: Mutex<i64>,
    w: Mutex<Window>,
}

impl IpLimit {
    pub fn new(limit: usize, window_ms: i64, ban_ms: i64) -> IpLimit {
        IpLimit {
            limit,
            window_ms,
            ban_ms: Mutex::new(ban_ms),
            w: Mutex::new(Window {
                times: VecDeque::new(),
                max_seen: 0,
                total: 0,
                refused: 0,
                banned_until: 0,
                by_path: BTreeMap::new(),
            }),
        }
    }

    pub fn set_ban_ms(&self, ms: i64) {
        *self.ban_ms.lock().unwrap() = ms;
    }

    /// Counts one request to `path`; false when it is refused (over the limit or
    /// banned).
    pub fn admit(&self, path: &str) -> bool {
        let now = now_ms();
        let ban = *self.ban_ms.lock().unwrap();
        let mut w = self.w.lock().unwrap();
        w.total += 1;
        *w.by_path.entry(path.to_string()).or_default() += 1;
        while w.times.front().is_some_and(|&t| t <= now - self.window_ms) {
            w.times.pop_front();
        }
        w.times.push_back(now);
        w.max_seen = w.max_seen.max(w.times.len());
        if now < w.banned_until {
            w.refused += 1;
            return false;
        }
        if w.times.len() > self.limit {
            w.refused += 1;
            w.banned_until = now + ban;
            return false;
        }
        true
    }

    /// Lifts a ban (a test that has seen it).
    pub fn unban(&self) {
        let mut w = self.w.lock().unwrap();
        w.banned_until = 0;
        w.times.clear();
    }

    pub fn requests_total(&self) -> u64 {
        self.w.lock().unwrap().total
    }

    /// The largest number of requests seen in any window (refused ones included:
    /// the exchange counts every request it receives).
    pub fn requests_in_window_max(&self) -> usize {
        self.w.lock().unwrap().max_seen
    }

    /// Requests received so far, per path.
    pub fn by_path(&self) -> BTreeMap<String, u64> {
        self.w.lock().unwrap().by_path.clone()
    }

    /// Requests refused for the limit.
    pub fn exceeded(&self) -> u64 {
        self.w.lock().unwrap().refused
    }
}
