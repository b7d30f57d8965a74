//! One venue's follower: its stream connection and subscriptions, the merged
//! ticker of each followed symbol, the REST fallback and the reconnect back-off.
//!
//! REST is polled (at most once a second) while the stream is unavailable —
//! not connected, connected but without a ticker for `FIRST_DATA_MS` after
//! connecting or `TICKER_SILENT_MS` later — for every followed symbol. While the
//! stream is up, only refused symbols (once a second: they have no other source)
//! and symbols without news for `STALE_REFRESH_MS` or still without a book
//! `FIRST_DATA_MS` after their first news (once per `STALE_REFRESH_MS`) take
//! REST answers, so a poll never moves a streamed price backwards. A symbol the
//! REST answer does not list is left alone for `UNLISTED_RETRY_MS`.
//!
//! Connects and REST polls run on helper threads (`job`): the loop only starts
//! them and collects their results, so a venue that stalls never holds the
//! other venue's reads. The REST side is in `poll`.

mod poll;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use slog::{info, warn, Logger};

use super::backoff::Backoff;
use super::bingx;
use super::bybit;
use super::event::Event;
use super::job::Job;
use super::partial::Partial;
use super::socket::{Frame, Socket};
use super::Endpoints;
use crate::exchange::rest::Http;
use crate::market::board::Wanted;
use crate::market::{Board, Venue};
use crate::metrics::{self, MarketData};

/// A stream without a ticker this long after connecting is unavailable.
const FIRST_DATA_MS: i64 = 3000;
/// A delivering stream without a ticker this long is unavailable (REST takes
/// over, C15: within 5 s)...
const TICKER_SILENT_MS: i64 = 5000;
/// ...and is dropped after this long without a ticker, or without any frame.
/// Bybit answers the ping we send every 20 s; BingX pings every 5 s.
const SILENT_MS: i64 = 25_000;
/// The reconnect back-off restarts from its first delay only after a
/// connection delivered this long (a stream that drops right after its first
/// ticker keeps backing off).
const STABLE_MS: i64 = 30_000;
const BYBIT_PING_MS: i64 = 20_000;
/// REST failures (refused, 403, 429, 5xx, timeouts) back off from this to
/// `REST_BACKOFF_CAP_MS`.
const REST_BACKOFF_FIRST_MS: i64 = 1000;
const REST_BACKOFF_CAP_MS: i64 = 30_000;
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
    /// When the stream or REST last told something about it, and first did.
    news_ms: i64,
    first_news_ms: i64,
    /// When the last price, the bid and the ask were last received (or
    /// confirmed unchanged): the quote is as old as the oldest of them.
    seen_ms: [i64; 3],
    /// When the stream last told something about it.
    stream_ms: i64,
    /// When a REST poll last included it.
    rest_ms: i64,
    /// When it was first followed.
    since_ms: i64,
    wanted_ms: i64,
    /// Subscribed on the current connection.
    subscribed: bool,
    /// The venue refused the subscription on the current connection.
    refused: bool,
    /// The REST tickers did not list it: not polled for it before this time.
    unlisted_until_ms: i64,
    /// BingX channels whose subscription was rate-limited, sent again at
    /// `subscribe_at_ms`.
    retry: Vec<&'static str>,
    subscribe_at_ms: i64,
}

struct Conn {
    socket: Socket,
    opened_ms: i64,
    last_frame_ms: i64,
    last_ticker_ms: i64,
    last_ping_ms: i64,
    delivering: bool,
    /// The back-off was reset for this connection (it delivered `STABLE_MS`).
    stable: bool,
}

pub struct VenueFeed {
    venue: Venue,
    ws_url: String,
    rest_url: String,
    timeout: Duration,
    http: Arc<Http>,
    conn: Option<Conn>,
    connecting: Option<Job<Result<Socket, String>>>,
    connect_started_ms: i64,
    backoff: Backoff,
    retry_at_ms: i64,
    /// By the venue's spelling of the symbol.
    syms: HashMap<String, Sym>,
    /// BingX's requests on the current connection by id: (symbol, subscribe?,
    /// channel).
    requests: HashMap<String, (String, bool, &'static str)>,
    next_request: u64,
    /// Rate-limited subscriptions wait this long, doubling, before retrying.
    subscribe_backoff: Backoff,
    rest: Option<poll::RestPoll>,
    rest_backoff: Backoff,
    rest_retry_at_ms: i64,
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
            http: Arc::new(Http::new(ends.timeout_ms)),
            conn: None,
            connecting: None,
            connect_started_ms: 0,
            backoff: Backoff::new(500, ends.backoff_cap_ms, seed),
            retry_at_ms: 0,
            syms: HashMap::new(),
            requests: HashMap::new(),
            next_request: 1,
            subscribe_backoff: Backoff::new(1000, 60_000, seed ^ 0xa5a5),
            rest: None,
            rest_backoff: Backoff::new(REST_BACKOFF_FIRST_MS, REST_BACKOFF_CAP_MS, seed ^ 0x5a5a),
            rest_retry_at_ms: i64::MIN / 2,
            last_rest_ms: i64::MIN / 2,
            last_funding_ms: i64::MIN / 2,
            malformed_logged_ms: i64::MIN / 2,
            malformed_unlogged: 0,
            rest_failure_logged_ms: i64::MIN / 2,
            log: log.new(slog::o!("venue" => venue.name())),
        }
    }

    /// Whether the stream serves its symbols: connected and delivering tickers,
    /// or connected and every symbol refused or unlisted by the venue (then
    /// the connection is healthy; those symbols simply do not exist there).
    pub fn stream_up(&self, now: i64) -> bool {
        let Some(c) = &self.conn else { return false };
        let delivering = c.delivering && now - c.last_ticker_ms < TICKER_SILENT_MS;
        delivering || !self.syms.values().any(|s| followable(s, now))
    }

    /// Whether any socket is open (the loop then paces on its reads).
    pub fn has_socket(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether nothing is followed and nothing runs: the loop may sleep longer.
    pub fn idle(&self) -> bool {
        self.syms.is_empty() && self.connecting.is_none() && self.rest.is_none()
    }

    /// Takes the board's wanted list: follows new symbols, forgets the ones
    /// nobody wanted for `UNWANTED_AFTER_MS`.
    pub fn follow(&mut self, wanted: &[Wanted], now: i64) {
        // A slot stays on the board after its symbol is forgotten: skip it, or
        // it would be followed again and forgotten again on every turn.
        let live = wanted
            .iter()
            .filter(|w| w.venue == self.venue && now - w.wanted_ms <= UNWANTED_AFTER_MS);
        for w in live {
            let Some(theirs) = venue_symbol(self.venue, &w.symbol) else {
                continue;
            };
            let sym = self.syms.entry(theirs).or_insert_with(|| Sym {
                ours: w.symbol.clone(),
                fields: Partial::default(),
                news_ms: i64::MIN / 2,
                first_news_ms: i64::MIN / 2,
                seen_ms: [i64::MIN / 2; 3],
                stream_ms: i64::MIN / 2,
                rest_ms: i64::MIN / 2,
                since_ms: now,
                wanted_ms: w.wanted_ms,
                subscribed: false,
                refused: false,
                unlisted_until_ms: i64::MIN / 2,
                retry: Vec::new(),
                subscribe_at_ms: i64::MIN / 2,
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
                    for m in self.requests_for(&theirs, false, &bingx::CHANNELS) {
                        self.send(m, now);
                    }
                }
            }
        }
    }

    /// One turn: connect when due, subscribe, read what arrived, poll REST when
    /// the stream cannot be relied on. Never waits on the network longer than
    /// one socket read (`READ_WAIT`).
    pub fn step(&mut self, board: &Board, now: i64) {
        if self.syms.is_empty() {
            // A connect under way is abandoned: its socket closes when done.
            self.connecting = None;
            if self.conn.take().is_some() {
                info!(self.log, "nothing to follow; stream closed");
            }
        } else {
            self.connected(now);
            if self.conn.is_none() && self.connecting.is_none() && now >= self.retry_at_ms {
                self.connect(now);
            }
            self.subscribe_new(now);
            self.keep_alive(now);
            self.read(board, now);
            self.settle_backoff(now);
        }
        self.rest_answered(board, now);
        if self.rest.is_none() {
            self.poll_rest_when_due(now);
        }
        metrics::market_data_stream_up(self.venue, self.stream_up(now));
    }

    /// Starts a connect on a helper thread.
    fn connect(&mut self, now: i64) {
        metrics::market_data(self.venue, MarketData::Reconnect);
        let (url, budget) = (self.ws_url.clone(), self.timeout);
        match Job::spawn("market-data-connect", move || Socket::connect(&url, budget)) {
            Ok(job) => {
                self.connecting = Some(job);
                self.connect_started_ms = now;
            }
            Err(e) => self.drop_conn(now, &e),
        }
    }

    /// Takes the helper's connection once it is done.
    fn connected(&mut self, now: i64) {
        let Some(done) = self.connecting.as_ref().and_then(Job::poll) else {
            return;
        };
        self.connecting = None;
        match done.and_then(|r| r) {
            Ok(socket) => {
                info!(self.log, "stream connected"; "url" => &self.ws_url);
                self.conn = Some(Conn {
                    socket,
                    opened_ms: now,
                    last_frame_ms: now,
                    last_ticker_ms: now,
                    last_ping_ms: now,
                    delivering: false,
                    stable: false,
                });
                for s in self.syms.values_mut() {
                    s.subscribed = false;
                    s.refused = false;
                    s.retry.clear();
                }
                self.requests.clear();
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

    /// A connection that delivered `STABLE_MS` earns a fresh back-off.
    fn settle_backoff(&mut self, now: i64) {
        if let Some(c) = self.conn.as_mut() {
            if c.delivering && !c.stable && now - c.opened_ms >= STABLE_MS {
                c.stable = true;
                self.backoff.reset();
            }
        }
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
        let due: Vec<(String, Vec<&'static str>)> = self
            .syms
            .iter_mut()
            .filter_map(|(k, s)| {
                if !s.subscribed {
                    s.subscribed = true;
                    return Some((k.clone(), bingx::CHANNELS.to_vec()));
                }
                if s.retry.is_empty() || now < s.subscribe_at_ms {
                    return None;
                }
                Some((k.clone(), std::mem::take(&mut s.retry)))
            })
            .collect();
        for (theirs, channels) in due {
            for m in self.requests_for(&theirs, true, &channels) {
                self.send(m, now);
            }
        }
    }

    fn keep_alive(&mut self, now: i64) {
        let awaiting_tickers = self
            .syms
            .values()
            .any(|s| s.subscribed && followable(s, now));
        let Some(c) = self.conn.as_mut() else { return };
        if now - c.last_frame_ms > SILENT_MS {
            return self.drop_conn(now, "no frame for 25 s");
        }
        if awaiting_tickers && now - c.last_ticker_ms > SILENT_MS {
            return self.drop_conn(now, "no ticker for 25 s");
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
                    }
                    c.delivering = true;
                    c.last_ticker_ms = now;
                }
                if let Some(s) = self.syms.get_mut(&symbol) {
                    s.stream_ms = now;
                    if snapshot {
                        s.fields = Partial::default();
                    }
                }
                // A Bybit delta carries the changed fields: the others are
                // confirmed unchanged. BingX's channels speak only for their own.
                let whole = snapshot || self.venue == Venue::Bybit;
                self.update(board, &symbol, &fields, whole, now);
            }
            Event::SubscribeFailed { symbol, reason } => {
                warn!(self.log, "subscription refused; following it by REST";
                    "symbol" => &symbol, "reason" => reason);
                if let Some(s) = self.syms.get_mut(&symbol) {
                    s.refused = true;
                }
            }
            Event::RequestFailed {
                id,
                reason,
                rate_limited,
            } => self.request_failed(&id, &reason, rate_limited, now),
            Event::Answered(id) => {
                if self.requests.remove(&id).is_some_and(|(_, sub, _)| sub) {
                    self.subscribe_backoff.reset();
                }
            }
            Event::Answer(text) => self.send(text, now),
            Event::Other => {}
        }
    }

    /// The (un)subscription messages of `theirs` (on BingX, of `channels`);
    /// BingX's are numbered and remembered, so that an answer can be told apart.
    fn requests_for(&mut self, theirs: &str, sub: bool, channels: &[&'static str]) -> Vec<String> {
        match self.venue {
            Venue::Bybit if sub => vec![bybit::subscribe(theirs)],
            Venue::Bybit => vec![bybit::unsubscribe(theirs)],
            Venue::Bingx => channels
                .iter()
                .map(|channel| {
                    let id = self.next_request.to_string();
                    self.next_request += 1;
                    self.requests
                        .insert(id.clone(), (theirs.to_string(), sub, channel));
                    let req = if sub { "sub" } else { "unsub" };
                    bingx::request(theirs, channel, req, &id)
                })
                .collect(),
        }
    }

    /// BingX refused a request: a refused subscription is followed by REST; a
    /// rate-limited one is sent again after a back-off; a refused
    /// unsubscription changes nothing.
    fn request_failed(&mut self, id: &str, reason: &str, rate_limited: bool, now: i64) {
        let Some((theirs, sub, channel)) = self.requests.remove(id) else {
            return;
        };
        let Some(s) = self.syms.get_mut(&theirs) else {
            return;
        };
        if !sub {
            info!(self.log, "unsubscription refused"; "symbol" => &s.ours, "reason" => reason);
        } else if rate_limited {
            if s.retry.is_empty() {
                s.subscribe_at_ms = now + self.subscribe_backoff.next_delay_ms();
                warn!(self.log, "subscription rate-limited; trying again";
                    "symbol" => &s.ours, "reason" => reason,
                    "retry_in_ms" => s.subscribe_at_ms - now);
            }
            s.retry.push(channel);
        } else if !s.refused {
            s.refused = true;
            warn!(self.log, "subscription refused; following it by REST";
                "symbol" => &s.ours, "reason" => reason);
        }
    }

    /// Merges news about `theirs` and publishes the quote. `whole`: the news
    /// vouches for every field (a snapshot, or a delta that sends only changes).
    pub(super) fn update(
        &mut self,
        board: &Board,
        theirs: &str,
        fields: &Partial,
        whole: bool,
        now: i64,
    ) {
        let Some(s) = self.syms.get_mut(theirs) else {
            return;
        };
        s.fields.merge(fields);
        let sent = [fields.last, fields.bid, fields.ask].map(|f| f.is_some());
        for (seen, sent) in s.seen_ms.iter_mut().zip(sent) {
            if whole || sent {
                *seen = now;
            }
        }
        if s.first_news_ms < 0 {
            s.first_news_ms = now;
        }
        s.news_ms = now;
        let oldest = s.seen_ms.iter().copied().min().unwrap_or(now);
        if let Some(q) = s.fields.quote(oldest) {
            board.publish(self.venue, &s.ours, &q);
        }
    }

    pub(super) fn malformed(&mut self, now: i64, what: &str) {
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

    /// Not connected (nor connecting for less than `FIRST_DATA_MS`), or
    /// connected without tickers for too long.
    pub(super) fn stream_unavailable(&self, now: i64) -> bool {
        match &self.conn {
            None if self.connecting.is_some() => now - self.connect_started_ms >= FIRST_DATA_MS,
            None => true,
            Some(c) if c.delivering => now - c.last_ticker_ms >= TICKER_SILENT_MS,
            Some(c) => now - c.opened_ms >= FIRST_DATA_MS,
        }
    }
}

/// Whether the venue may send tickers for it (not refused, not unlisted).
fn followable(s: &Sym, now: i64) -> bool {
    !s.refused && now >= s.unlisted_until_ms
}

fn venue_symbol(venue: Venue, ours: &str) -> Option<String> {
    match venue {
        Venue::Bybit => bybit::venue_symbol(ours),
        Venue::Bingx => bingx::venue_symbol(ours),
    }
}
