//! One venue's follower: its stream connection and subscriptions, the merged
//! ticker of each followed symbol, the REST fallback and the reconnect back-off.
//!
//! REST is polled (at most once a second) while the stream is unavailable —
//! not connected, connected but silent for `FIRST_DATA_MS` after subscribing,
//! or a subscription refused — and, while the stream is up, when a followed
//! symbol has had no news for `STALE_REFRESH_MS`.

use std::collections::HashMap;
use std::time::Duration;

use slog::{info, warn, Logger};

use super::bingx;
use super::bybit;
use super::event::Event;
use super::partial::Partial;
use super::socket::{Frame, Socket};
use super::Endpoints;
use crate::exchange::rest::Http;
use crate::market::board::Wanted;
use crate::market::{Board, Venue};
use crate::metrics::{self, MarketData};

/// REST polls at most this often.
const REST_EVERY_MS: i64 = 1000;
/// A stream that has not delivered this long after connecting is unavailable.
const FIRST_DATA_MS: i64 = 3000;
/// A symbol without news this long while the stream is up gets a REST refresh.
const STALE_REFRESH_MS: i64 = 10_000;
/// A connection without any frame this long is dropped. Bybit answers the ping
/// we send every 20 s; BingX pings every 5 s.
const SILENT_MS: i64 = 25_000;
const BYBIT_PING_MS: i64 = 20_000;
/// BingX's funding rate is only on REST: refreshed this often.
const FUNDING_EVERY_MS: i64 = 60_000;
/// A symbol nobody wanted for this long is unsubscribed and forgotten.
pub const UNWANTED_AFTER_MS: i64 = 10 * 60 * 1000;
/// Frames read per step at most, so one busy socket cannot starve the other.
const FRAMES_PER_STEP: usize = 256;
/// Malformed input and REST failures are each logged at most this often per
/// venue (malformed input is always counted).
const MALFORMED_LOG_MS: i64 = 10_000;

struct Sym {
    ours: String,
    fields: Partial,
    /// When the stream or REST last told something about it.
    news_ms: i64,
    wanted_ms: i64,
    /// Subscribed on the current connection.
    subscribed: bool,
    /// The venue refused the subscription on the current connection.
    refused: bool,
}

struct Conn {
    socket: Socket,
    opened_ms: i64,
    last_frame_ms: i64,
    last_ping_ms: i64,
    delivering: bool,
}

pub struct VenueFeed {
    venue: Venue,
    ws_url: String,
    rest_url: String,
    timeout: Duration,
    http: Http,
    conn: Option<Conn>,
    backoff: super::backoff::Backoff,
    retry_at_ms: i64,
    /// By the venue's spelling of the symbol.
    syms: HashMap<String, Sym>,
    last_rest_ms: i64,
    last_funding_ms: i64,
    malformed_logged_ms: i64,
    malformed_unlogged: u64,
    rest_failure_logged_ms: i64,
    log: Logger,
}

impl VenueFeed {
    pub fn new(venue: Venue, ends: &Endpoints, log: &Logger) -> VenueFeed {
        let (ws_url, rest_url) = match venue {
            Venue::Bybit => (&ends.bybit_ws, &ends.bybit_rest),
            Venue::Bingx => (&ends.bingx_ws, &ends.bingx_rest),
        };
        let seed = crate::exchange::rest::local_ms() as u64 ^ u64::from(std::process::id());
        VenueFeed {
            venue,
            ws_url: ws_url.clone(),
            rest_url: rest_url.clone(),
            timeout: Duration::from_millis(ends.timeout_ms),
            http: Http::new(ends.timeout_ms),
            conn: None,
            backoff: super::backoff::Backoff::new(500, ends.backoff_cap_ms, seed),
            retry_at_ms: 0,
            syms: HashMap::new(),
            last_rest_ms: i64::MIN / 2,
            last_funding_ms: i64::MIN / 2,
            malformed_logged_ms: i64::MIN / 2,
            malformed_unlogged: 0,
            rest_failure_logged_ms: i64::MIN / 2,
            log: log.new(slog::o!("venue" => venue.name())),
        }
    }

    /// Whether the stream is connected and delivering.
    pub fn stream_up(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.delivering)
    }

    /// Whether any socket is open (the loop then paces on its reads).
    pub fn has_socket(&self) -> bool {
        self.conn.is_some()
    }

    /// Takes the board's wanted list: follows new symbols, forgets the ones
    /// nobody wanted for `UNWANTED_AFTER_MS`.
    pub fn follow(&mut self, wanted: &[Wanted], now: i64) {
        for w in wanted.iter().filter(|w| w.venue == self.venue) {
            let Some(theirs) = venue_symbol(self.venue, &w.symbol) else {
                continue;
            };
            let sym = self.syms.entry(theirs).or_insert_with(|| Sym {
                ours: w.symbol.clone(),
                fields: Partial::default(),
                news_ms: i64::MIN / 2,
                wanted_ms: w.wanted_ms,
                subscribed: false,
                refused: false,
            });
            sym.wanted_ms = sym.wanted_ms.max(w.wanted_ms);
        }
        let gone: Vec<String> = self
            .syms
            .iter()
            .filter(|(_, s)| now - s.wanted_ms > UNWANTED_AFTER_MS)
            .map(|(k, _)| k.clone())
            .collect();
        for theirs in gone {
            if let Some(s) = self.syms.remove(&theirs) {
                info!(self.log, "no longer wanted; unsubscribing"; "symbol" => &s.ours);
                if s.subscribed {
                    for m in unsubscribe(self.venue, &theirs) {
                        self.send(m, now);
                    }
                }
            }
        }
    }

    /// One turn: connect when due, subscribe, read what arrived, poll REST when
    /// the stream cannot be relied on.
    pub fn step(&mut self, board: &Board, now: i64) {
        if self.syms.is_empty() {
            if self.conn.take().is_some() {
                info!(self.log, "nothing to follow; stream closed");
            }
        } else {
            if self.conn.is_none() && now >= self.retry_at_ms {
                self.connect(now);
            }
            self.subscribe_new(now);
            self.keep_alive(now);
            self.read(board, now);
        }
        if self.rest_due(now) {
            self.poll_rest(board, now, false);
        } else if self.venue == Venue::Bingx
            && !self.syms.is_empty()
            && now - self.last_funding_ms >= FUNDING_EVERY_MS
        {
            self.poll_rest(board, now, true);
        }
        metrics::market_data_stream_up(self.venue, self.stream_up());
    }

    fn connect(&mut self, now: i64) {
        metrics::market_data(self.venue, MarketData::Reconnect);
        match Socket::connect(&self.ws_url, self.timeout) {
            Ok(socket) => {
                info!(self.log, "stream connected"; "url" => &self.ws_url);
                self.conn = Some(Conn {
                    socket,
                    opened_ms: now,
                    last_frame_ms: now,
                    last_ping_ms: now,
                    delivering: false,
                });
                for s in self.syms.values_mut() {
                    s.subscribed = false;
                    s.refused = false;
                }
            }
            Err(e) => self.drop_conn(now, &format!("cannot connect: {e}")),
        }
    }

    /// Closes the stream (if open) and schedules the next attempt.
    fn drop_conn(&mut self, now: i64, why: &str) {
        self.conn = None;
        let delay = self.backoff.next_delay_ms();
        self.retry_at_ms = now + delay;
        warn!(self.log, "stream unavailable; REST until it is back"; "error" => why,
            "retry_in_ms" => delay);
    }

    fn send(&mut self, text: String, now: i64) {
        let Some(c) = self.conn.as_mut() else { return };
        if let Err(e) = c.socket.send(text) {
            self.drop_conn(now, &format!("sending: {e}"));
        }
    }

    fn subscribe_new(&mut self, now: i64) {
        if self.conn.is_none() {
            return;
        }
        let new: Vec<String> = self
            .syms
            .iter_mut()
            .filter(|(_, s)| !s.subscribed)
            .map(|(k, s)| {
                s.subscribed = true;
                k.clone()
            })
            .collect();
        for theirs in new {
            for m in subscribe(self.venue, &theirs) {
                self.send(m, now);
            }
        }
    }

    fn keep_alive(&mut self, now: i64) {
        let Some(c) = self.conn.as_mut() else { return };
        if now - c.last_frame_ms > SILENT_MS {
            self.drop_conn(now, "no frame for 25 s");
            return;
        }
        if self.venue == Venue::Bybit && now - c.last_ping_ms >= BYBIT_PING_MS {
            c.last_ping_ms = now;
            self.send(bybit::ping(), now);
        }
        if let Some(c) = self.conn.as_mut() {
            if let Err(e) = c.socket.flush() {
                self.drop_conn(now, &format!("sending: {e}"));
            }
        }
    }

    fn read(&mut self, board: &Board, now: i64) {
        for _ in 0..FRAMES_PER_STEP {
            let Some(c) = self.conn.as_mut() else { return };
            let frame = match c.socket.read() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => return self.drop_conn(now, &e),
            };
            c.last_frame_ms = now;
            metrics::market_data(self.venue, MarketData::Message);
            let text = match (frame, self.venue) {
                (Frame::Control, _) => continue,
                (Frame::Text(t), _) => Ok(t),
                (Frame::Binary(b), Venue::Bingx) => bingx::gunzip(&b),
                (Frame::Binary(_), Venue::Bybit) => Err("unexpected binary frame".into()),
            };
            let event = text.and_then(|t| match self.venue {
                Venue::Bybit => bybit::decode(&t),
                Venue::Bingx => bingx::decode(&t),
            });
            match event {
                Ok(ev) => self.apply(board, ev, now),
                Err(e) => self.malformed(now, &e),
            }
        }
    }

    fn apply(&mut self, board: &Board, ev: Event, now: i64) {
        match ev {
            Event::Ticker {
                symbol,
                fields,
                snapshot,
            } => {
                if let Some(c) = self.conn.as_mut() {
                    if !c.delivering {
                        info!(self.log, "stream delivering");
                        self.backoff.reset();
                    }
                    c.delivering = true;
                }
                self.update(board, &symbol, &fields, snapshot, now);
            }
            Event::SubscribeFailed { symbol, reason } => {
                warn!(self.log, "subscription refused; following it by REST";
                    "symbol" => &symbol, "reason" => reason);
                if let Some(s) = self.syms.get_mut(&symbol) {
                    s.refused = true;
                }
            }
            Event::Answer(text) => self.send(text, now),
            Event::Other => {}
        }
    }

    /// Merges news about `theirs` and publishes the quote.
    fn update(&mut self, board: &Board, theirs: &str, fields: &Partial, snapshot: bool, now: i64) {
        let Some(s) = self.syms.get_mut(theirs) else {
            return;
        };
        if snapshot {
            s.fields = *fields;
        } else {
            s.fields.merge(fields);
        }
        s.news_ms = now;
        if let Some(q) = s.fields.quote(now) {
            board.publish(self.venue, &s.ours, &q);
        }
    }

    fn malformed(&mut self, now: i64, what: &str) {
        metrics::market_data(self.venue, MarketData::Malformed);
        if now - self.malformed_logged_ms < MALFORMED_LOG_MS {
            self.malformed_unlogged += 1;
            return;
        }
        warn!(self.log, "malformed market data ignored"; "error" => what,
            "not_logged_since_last" => self.malformed_unlogged);
        self.malformed_logged_ms = now;
        self.malformed_unlogged = 0;
    }

    fn rest_due(&self, now: i64) -> bool {
        if self.syms.is_empty() || now - self.last_rest_ms < REST_EVERY_MS {
            return false;
        }
        let stream_unavailable = match &self.conn {
            None => true,
            Some(c) => !c.delivering && now - c.opened_ms >= FIRST_DATA_MS,
        };
        stream_unavailable
            || self
                .syms
                .values()
                .any(|s| s.refused || now - s.news_ms >= STALE_REFRESH_MS)
    }

    /// Polls the public tickers (or, `funding_only`, BingX's premium index).
    fn poll_rest(&mut self, board: &Board, now: i64, funding_only: bool) {
        self.last_rest_ms = now;
        let paths: &[&str] = match (self.venue, funding_only) {
            (Venue::Bybit, _) => &[bybit::REST_TICKERS],
            (Venue::Bingx, false) => &[bingx::REST_TICKER, bingx::REST_PREMIUM],
            (Venue::Bingx, true) => &[bingx::REST_PREMIUM],
        };
        for path in paths {
            metrics::market_data(self.venue, MarketData::RestPoll);
            let url = match self.venue {
                Venue::Bybit => format!("{}{path}", self.rest_url),
                Venue::Bingx => format!("{}{path}?timestamp={now}", self.rest_url),
            };
            let answer = match self.http.send("GET", &url, &[], None) {
                Ok(a) if a.status == 200 => a,
                Ok(a) => return self.rest_failed(now, &format!("HTTP {}", a.status)),
                Err(e) => return self.rest_failed(now, &e.to_string()),
            };
            let parsed = match *path {
                bybit::REST_TICKERS => bybit::rest_tickers(&answer.body),
                bingx::REST_TICKER => bingx::rest_ticker(&answer.body),
                _ => bingx::rest_premium(&answer.body),
            };
            match parsed {
                Ok((list, bad)) => {
                    for _ in 0..bad {
                        self.malformed(now, &format!("{path}: an entry could not be read"));
                    }
                    for (theirs, fields) in list {
                        self.update(board, &theirs, &fields, false, now);
                    }
                }
                Err(e) => self.malformed(now, &format!("{path}: {e}")),
            }
        }
        if self.venue == Venue::Bingx {
            self.last_funding_ms = now;
        }
    }

    fn rest_failed(&mut self, now: i64, why: &str) {
        if now - self.rest_failure_logged_ms >= MALFORMED_LOG_MS {
            warn!(self.log, "public REST tickers unavailable"; "error" => why);
            self.rest_failure_logged_ms = now;
        }
    }
}

fn venue_symbol(venue: Venue, ours: &str) -> Option<String> {
    match venue {
        Venue::Bybit => bybit::venue_symbol(ours),
        Venue::Bingx => bingx::venue_symbol(ours),
    }
}

fn subscribe(venue: Venue, theirs: &str) -> Vec<String> {
    match venue {
        Venue::Bybit => vec![bybit::subscribe(theirs)],
        Venue::Bingx => bingx::subscribe(theirs),
    }
}

fn unsubscribe(venue: Venue, theirs: &str) -> Vec<String> {
    match venue {
        Venue::Bybit => vec![bybit::unsubscribe(theirs)],
        Venue::Bingx => bingx::unsubscribe(theirs),
    }
}
