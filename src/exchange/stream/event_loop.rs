//! The one thread that drives every account's socket: epoll (mio) says which
//! sockets have data, each is read until it would block; between events the
//! loop sends heartbeats, reconnects with jittered back-off, extends BingX
//! listen keys and closes accounts no bot uses any more. Nothing here blocks:
//! connecting and REST calls are the connect threads' (`connect`).

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use slog::{info, warn, Logger};

use super::conn::{Frame, Socket};
use super::connect::{Access, Done, Job, Opened, Pool, Settings};
use super::pace::Pace;
use super::update::Update;
use super::view::AccountView;
use super::{bingx, bybit, AccountKey, Command, Handle, Shared};
use crate::exchange::rest::local_ms;
use crate::market::feed::backoff::Backoff;

const WAKER: Token = Token(usize::MAX);
const CONNECT_THREADS: usize = 4;
/// The longest the loop sleeps: timers are checked at least this often.
const TICK: Duration = Duration::from_millis(250);
/// Bybit's recommended heartbeat.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A socket silent this long is dead (Bybit answers pings, BingX pings every 5 s).
const SILENT_LIMIT: Duration = Duration::from_secs(60);
/// BingX listen keys live an hour; extended every 30 minutes.
const EXTEND_EVERY: Duration = Duration::from_secs(30 * 60);
/// An account no bot uses closes this long after its last bot stopped.
const LINGER: Duration = Duration::from_secs(10);
/// Malformed frames are logged at most this often per account.
const MALFORMED_LOG_EVERY: Duration = Duration::from_secs(10);
/// A connection up this long was a good one: the back-off starts over, and a
/// listen key that then expires is renewed at once. One that fails sooner
/// (a key expired again right after its renewal, a server that closes every
/// new socket) backs off, or the account would reconnect — and create listen
/// keys — as fast as the exchange answers.
const STABLE_AFTER: Duration = Duration::from_secs(30);

enum Phase {
    /// A connect thread is opening it.
    Opening,
    /// Down; the next attempt at this time.
    Waiting(Instant),
    Live(Box<Socket>),
}

struct Conn {
    key: AccountKey,
    /// The credentials of the last attempt (the account's may change).
    api: Access,
    view: Arc<AccountView>,
    phase: Phase,
    backoff: Backoff,
    listen_key: Option<String>,
    last_frame: Instant,
    /// When the current connection went live.
    live_at: Instant,
    last_ping: Instant,
    extended_at: Instant,
    malformed_logged: Option<Instant>,
}

/// Starts the connect threads and the loop.
pub(super) fn start(
    shared: Arc<Shared>,
    settings: Settings,
    log: Logger,
) -> std::io::Result<Handle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (commands, inbox) = channel();
    let (done_tx, done) = channel();
    let pool = Pool::start(CONNECT_THREADS, settings, done_tx, waker.clone())?;
    let mut l = Loop {
        shared,
        poll,
        inbox,
        done,
        pool,
        conns: HashMap::new(),
        ids: HashMap::new(),
        next_id: 1,
        pace: Pace::default(),
        log,
    };
    std::thread::Builder::new()
        .name("account-streams".into())
        .spawn(move || l.run())?;
    Ok(Handle { commands, waker })
}

struct Loop {
    shared: Arc<Shared>,
    poll: Poll,
    inbox: Receiver<Command>,
    done: Receiver<Done>,
    pool: Pool,
    conns: HashMap<u64, Conn>,
    ids: HashMap<AccountKey, u64>,
    next_id: u64,
    pace: Pace,
    log: Logger,
}

impl Loop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_timers = Instant::now();
        loop {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    warn!(self.log, "account streams: poll failed"; "error" => %e);
                    std::thread::sleep(TICK);
                }
                continue;
            }
            let ready: Vec<u64> = events
                .iter()
                .filter(|e| e.token() != WAKER)
                .map(|e| e.token().0 as u64)
                .collect();
            while let Ok(Command::Open(key)) = self.inbox.try_recv() {
                self.open(key);
            }
            while let Ok(done) = self.done.try_recv() {
                self.finished(done);
            }
            for id in ready {
                self.drain(id);
            }
            if Instant::now() >= next_timers {
                self.timers();
                next_timers = Instant::now() + TICK;
            }
        }
    }

    /// A new account: open its stream.
    fn open(&mut self, key: AccountKey) {
        if self.ids.contains_key(&key) {
            return;
        }
        let Some((view, api)) = self.shared.account(&key) else {
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        let now = Instant::now();
        self.ids.insert(key.clone(), id);
        self.conns.insert(
            id,
            Conn {
                key,
                api,
                view,
                phase: Phase::Waiting(now),
                backoff: Backoff::new(500, 30_000, id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                listen_key: None,
                last_frame: now,
                live_at: now,
                last_ping: now,
                extended_at: now,
                malformed_logged: None,
            },
        );
        self.attempt(id);
    }

    /// Hands conn `id` to a connect thread.
    fn attempt(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some((_, api)) = self.shared.account(&c.key) {
            c.api = api;
        }
        let egress = match &c.api.proxy {
            Some(p) => p.shown(),
            None => "direct".into(),
        };
        let now = Instant::now();
        if let Err(room_at) = self.pace.take(c.key.exchange, &egress, now) {
            // The exchange's connection limit: REST serves the account until then.
            c.phase = Phase::Waiting(room_at);
            return;
        }
        let key = c.api.clone();
        c.phase = Phase::Opening;
        crate::metrics::exchange_stream_reconnect(c.key.exchange);
        self.pool.submit(Job::Open {
            id,
            exchange: c.key.exchange,
            key,
            listen_key: c.listen_key.clone(),
        });
    }

    fn finished(&mut self, done: Done) {
        match done {
            Done::Opened { id, result } => self.opened(id, result),
            Done::Extended { id, ok } => {
                if !ok {
                    self.fail(id, "the listen key could not be extended", true);
                }
            }
        }
    }

    fn opened(&mut self, id: u64, result: Result<Box<Opened>, String>) {
        let Some(c) = self.conns.get_mut(&id) else {
            // Closed meanwhile.
            if let Ok(mut o) = result {
                o.socket.close();
            }
            return;
        };
        let mut o = match result {
            Ok(o) => o,
            Err(e) => {
                let delay = c.backoff.next_delay_ms().max(1) as u64;
                c.phase = Phase::Waiting(Instant::now() + Duration::from_millis(delay));
                warn!(self.log, "account stream cannot connect"; "exchange" => c.key.exchange,
                      "error" => e, "retry_ms" => delay);
                return;
            }
        };
        let registered = o.socket.detach().and_then(|()| {
            let fd = o.socket.fd().ok_or("no socket")?;
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), Token(id as usize), Interest::READABLE)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = registered {
            let delay = c.backoff.next_delay_ms().max(1) as u64;
            c.phase = Phase::Waiting(Instant::now() + Duration::from_millis(delay));
            warn!(self.log, "account stream cannot be watched"; "error" => e);
            return;
        }
        let now = Instant::now();
        c.view.set_live(local_ms(), o.offset_ms);
        c.listen_key = o.listen_key.take();
        (c.last_frame, c.live_at, c.last_ping, c.extended_at) = (now, now, now, now);
        info!(self.log, "account stream live"; "exchange" => c.key.exchange);
        let early = std::mem::take(&mut o.early);
        c.phase = Phase::Live(Box::new(o.socket));
        for frame in early {
            if let Err(e) = self.frame(id, frame) {
                return self.fail(id, &e, false);
            }
        }
        // Data may already sit in the TLS buffer: epoll would not say so.
        self.drain(id);
    }

    /// Reads conn `id` until it would block.
    fn drain(&mut self, id: u64) {
        loop {
            let Some(Conn {
                phase: Phase::Live(socket),
                ..
            }) = self.conns.get_mut(&id)
            else {
                return;
            };
            let frame = match socket.read() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return self.fail(id, &e, false),
            };
            if let Err(e) = self.frame(id, frame) {
                return self.fail(id, &e, false);
            }
        }
        if let Some(Conn {
            phase: Phase::Live(socket),
            ..
        }) = self.conns.get_mut(&id)
        {
            if let Err(e) = socket.flush() {
                self.fail(id, &e, false);
            }
        }
    }

    /// One frame of conn `id`; an error ends the connection.
    fn frame(&mut self, id: u64, frame: Frame) -> Result<(), String> {
        let Some(c) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        c.last_frame = Instant::now();
        let exchange = c.key.exchange;
        match read(exchange, frame) {
            Ok(Read::Updates(updates)) => self.apply(id, updates),
            Ok(Read::Ping) => {
                if let Some(Conn {
                    phase: Phase::Live(s),
                    ..
                }) = self.conns.get_mut(&id)
                {
                    s.send("Pong".into())?;
                }
            }
            Ok(Read::Expired) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.listen_key = None;
                }
                return Err("the listen key expired".into());
            }
            Ok(Read::Nothing) => {}
            Err(e) => {
                let Some(c) = self.conns.get_mut(&id) else {
                    return Ok(());
                };
                // The frame may have carried a fill or a cancel: until the
                // next snapshot the view answers nothing.
                c.view.lost(local_ms());
                if !matches!(e, crate::exchange::ExchangeError::Malformed(_)) {
                    return Ok(());
                }
                crate::metrics::exchange_stream_malformed(exchange);
                let quiet = c
                    .malformed_logged
                    .is_some_and(|t| t.elapsed() < MALFORMED_LOG_EVERY);
                if !quiet {
                    c.malformed_logged = Some(Instant::now());
                    warn!(self.log, "malformed account stream frame"; "exchange" => exchange, "error" => %e);
                }
            }
        }
        Ok(())
    }

    fn apply(&self, id: u64, updates: Vec<Update>) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        for u in updates {
            crate::metrics::exchange_stream_event(c.key.exchange, u.kind());
            let wake = u.wakes().then(|| u.symbol().map(str::to_string)).flatten();
            if c.view.apply(u) {
                if let Some(symbol) = wake {
                    self.shared.wake(&c.key, &symbol);
                }
            }
        }
    }

    /// Conn `id` stopped delivering: its view goes down, and it reconnects
    /// after a back-off (at once when only its listen key must be renewed).
    fn fail(&mut self, id: u64, why: &str, renew_key: bool) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut stable = false;
        if let Phase::Live(socket) = &mut c.phase {
            if let Some(fd) = socket.fd() {
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
            socket.close();
            stable = c.live_at.elapsed() >= STABLE_AFTER;
        }
        c.view.set_down();
        if renew_key {
            c.listen_key = None;
        }
        if stable {
            c.backoff.reset();
        }
        let delay = if stable && why.contains("listen key") {
            0
        } else {
            c.backoff.next_delay_ms().max(1) as u64
        };
        c.phase = Phase::Waiting(Instant::now() + Duration::from_millis(delay));
        warn!(self.log, "account stream down"; "exchange" => c.key.exchange, "error" => why,
              "retry_ms" => delay);
    }

    /// Heartbeats, silence, reconnects, listen keys, idle accounts, gauges.
    fn timers(&mut self) {
        let now = Instant::now();
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            match tend(c, now) {
                Tend::Attempt => self.attempt(id),
                Tend::Fail(why) => self.fail(id, &why, false),
                Tend::Extend(listen_key) => self.pool.submit(Job::Extend {
                    id,
                    key: c.api.clone(),
                    listen_key,
                }),
                Tend::Nothing => {}
            }
        }
        self.close_idle(now);
        self.publish();
    }

    /// Closes the accounts no bot has used for `LINGER`.
    fn close_idle(&mut self, now: Instant) {
        let idle: Vec<AccountKey> = {
            let mut accounts = self.shared.accounts();
            let idle: Vec<AccountKey> = accounts
                .iter()
                .filter(|(_, a)| {
                    a.idle_since
                        .is_some_and(|t| now.duration_since(t) >= LINGER)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in &idle {
                accounts.remove(k);
            }
            idle
        };
        for key in idle {
            let Some(id) = self.ids.remove(&key) else {
                continue;
            };
            let Some(mut c) = self.conns.remove(&id) else {
                continue;
            };
            if let Phase::Live(socket) = &mut c.phase {
                if let Some(fd) = socket.fd() {
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                }
                socket.close();
            }
            c.view.set_down();
            if let Some(listen_key) = c.listen_key.take() {
                self.pool.submit(Job::Delete {
                    key: c.api.clone(),
                    listen_key,
                });
            }
            info!(self.log, "account stream closed: no running bot uses it"; "exchange" => key.exchange);
        }
    }

    /// The gauges: live and down streams per exchange.
    fn publish(&self) {
        for exchange in ["bybit", "bingx"] {
            let (mut live, mut down) = (0, 0);
            for c in self.conns.values().filter(|c| c.key.exchange == exchange) {
                match c.phase {
                    Phase::Live(_) => live += 1,
                    _ => down += 1,
                }
            }
            crate::metrics::exchange_streams(exchange, live, down);
            if let Some(pace) = self.shared.paces.of(exchange) {
                pace.set_down(down);
            }
        }
    }
}

/// What a frame asks of the loop.
enum Read {
    Updates(Vec<Update>),
    Ping,
    Expired,
    Nothing,
}

/// What a conn's timers ask for.
enum Tend {
    Attempt,
    Fail(String),
    Extend(String),
    Nothing,
}

/// Sends what is due on `c` (a heartbeat, queued output) and says what else
/// is due.
fn tend(c: &mut Conn, now: Instant) -> Tend {
    let socket = match &mut c.phase {
        Phase::Waiting(at) if now >= *at => return Tend::Attempt,
        Phase::Live(socket) => socket,
        _ => return Tend::Nothing,
    };
    if now.duration_since(c.last_frame) >= SILENT_LIMIT {
        return Tend::Fail("silent for 60 s".into());
    }
    if c.key.exchange == "bybit" && now.duration_since(c.last_ping) >= PING_EVERY {
        c.last_ping = now;
        if let Err(e) = socket.send(bybit::ping()) {
            return Tend::Fail(e);
        }
    }
    if let Err(e) = socket.flush() {
        return Tend::Fail(e);
    }
    match &c.listen_key {
        Some(lk) if now.duration_since(c.extended_at) >= EXTEND_EVERY => {
            c.extended_at = now;
            Tend::Extend(lk.clone())
        }
        _ => Tend::Nothing,
    }
}

/// Reads one frame of an `exchange` stream.
fn read(exchange: &str, frame: Frame) -> Result<Read, crate::exchange::ExchangeError> {
    if exchange == "bybit" {
        return match &frame {
            Frame::Text(t) => bybit::read(t).map(|f| match f {
                bybit::Frame::Updates(u) => Read::Updates(u),
                _ => Read::Nothing,
            }),
            Frame::Binary(_) => Ok(Read::Nothing),
        };
    }
    let text = match frame {
        Frame::Text(t) => t,
        Frame::Binary(b) => bingx::gunzip(&b)?,
    };
    Ok(match bingx::read(&text)? {
        bingx::Frame::Ping => Read::Ping,
        bingx::Frame::Updates(u) => Read::Updates(u),
        bingx::Frame::ListenKeyExpired => Read::Expired,
        bingx::Frame::Other => Read::Nothing,
    })
}
