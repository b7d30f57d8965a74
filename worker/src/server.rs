//! The worker's event loop.
//!
//! Invariants:
//! - one request is handled at a time (sync model); a connection with more buffered
//!   requests goes to the back of the ready queue after each one, so pipelining
//!   clients cannot starve the others;
//! - a connection with unsent output is not read from further (back-pressure), and
//!   a refused one has its input discarded, never buffered;
//! - at most `max_connections` connections are held; at the limit a new connection
//!   is admitted by closing a refused one, else the longest-idle keep-alive one,
//!   else the oldest one still sending its head, else the one receiving its body
//!   the slowest, if below 1 KiB/s after its first second. When none of those
//!   exists (every connection has an answer or a body in progress at a fair rate)
//!   the worker stops accepting and leaves new connections in the kernel queue for
//!   its siblings;
//! - every phase of a connection has a timer: a head must arrive within
//!   `header_timeout`, a body within `body_timeout` (408 if anything came, then
//!   close), an idle connection lasts `keep_alive` (a new one `header_timeout`);
//! - the buffers of unfinished bodies, summed over all connections, stay within
//!   `max_buffered`; a request that would go past it is refused with 503;
//! - while draining, nothing new is accepted, every response says
//!   `Connection: close`, idle connections expire as usual, and the loop returns
//!   once no connection is left.

use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Poll, Token};

use crate::chunked::{self, Chunked};
use crate::conn::{Conn, Filled, Phase, Stream};
use crate::date::DateCache;
use crate::handler::{Handler, Lifecycle, Rejection};
use crate::head::{self, BodyKind};
use crate::limits::Limits;
use crate::request::{Peer, Request, Version};
use crate::response::{write_response, Framing, Response};
use crate::signals::WorkerSignals;

/// An inherited listening socket.
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

enum MioListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

#[derive(Debug)]
pub enum ServeError {
    Io(io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Io(e) => write!(f, "worker I/O error: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<io::Error> for ServeError {
    fn from(e: io::Error) -> Self {
        ServeError::Io(e)
    }
}

const SIGNAL: Token = Token(usize::MAX);
const LISTENER_BASE: usize = usize::MAX - 1024;
/// Timers (keep-alive, lingering, slow clients) are checked this often.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How long a rejected connection may keep sending before we close it.
const LINGER: Duration = Duration::from_secs(2);
/// Headers parsed on the stack; larger limits fall back to the heap.
const STACK_HEADERS: usize = 128;
/// An idle connection gives its buffers back after this long.
const RELEASE_IDLE: Duration = Duration::from_secs(1);

/// Serves HTTP on `listeners` until drained (SIGTERM) or stopped (SIGINT/QUIT).
pub fn serve<H: Handler, L: Lifecycle>(
    listeners: Vec<Listener>,
    limits: Limits,
    heartbeat_every: Duration,
    handler: &mut H,
    life: &mut L,
) -> Result<(), ServeError> {
    let signals = WorkerSignals::install()?;
    let mut server = Server::new(listeners, limits, heartbeat_every, handler, life, signals)?;
    server.run()
}

struct Server<'a, H, L> {
    poll: Poll,
    listeners: Vec<MioListener>,
    accepting: bool,
    accept_pending: bool,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    /// Sum of every connection's `accounted` body bytes.
    buffered: usize,
    ready: VecDeque<usize>,
    limits: Limits,
    heartbeat_every: Duration,
    handler: &'a mut H,
    life: &'a mut L,
    signals: WorkerSignals,
    draining: bool,
    served: u64,
    date: DateCache,
    now: Instant,
    last_sweep: Instant,
}

impl<'a, H: Handler, L: Lifecycle> Server<'a, H, L> {
    fn new(
        listeners: Vec<Listener>,
        limits: Limits,
        heartbeat_every: Duration,
        handler: &'a mut H,
        life: &'a mut L,
        mut signals: WorkerSignals,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut signals.wake, SIGNAL, Interest::READABLE)?;
        let mut mio_listeners = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let token = Token(LISTENER_BASE + i);
            let mut ml = match l {
                Listener::Tcp(t) => MioListener::Tcp(mio::net::TcpListener::from_std(t)),
                Listener::Unix(u) => MioListener::Unix(mio::net::UnixListener::from_std(u)),
            };
            match &mut ml {
                MioListener::Tcp(t) => poll.registry().register(t, token, Interest::READABLE)?,
                MioListener::Unix(u) => poll.registry().register(u, token, Interest::READABLE)?,
            }
            mio_listeners.push(ml);
        }
        let now = Instant::now();
        Ok(Server {
            poll,
            listeners: mio_listeners,
            accepting: true,
            accept_pending: true,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            buffered: 0,
            ready: VecDeque::new(),
            limits,
            heartbeat_every,
            handler,
            life,
            signals,
            draining: false,
            served: 0,
            date: DateCache::default(),
            now,
            last_sweep: now,
        })
    }

    fn run(&mut self) -> Result<(), ServeError> {
        let mut events = Events::with_capacity(1024);
        let mut woken = Vec::with_capacity(1024);
        self.life.ready();
        while !self.turn(&mut events, &mut woken)? {}
        Ok(())
    }

    /// One turn of the loop: wait for events (not at all while work is queued),
    /// handle them, serve what is ready. Returns true once the worker is done.
    fn turn(&mut self, events: &mut Events, woken: &mut Vec<Woken>) -> Result<bool, ServeError> {
        let busy = !self.ready.is_empty() || (self.accept_pending && self.accepting);
        let idle_wait = self.heartbeat_every.min(SWEEP_EVERY * 5);
        let timeout = if busy { Duration::ZERO } else { idle_wait };
        self.handler.flush();
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        self.now = Instant::now();
        self.life.heartbeat();
        // Signals first: a TERM must set `draining` before anything else is
        // accepted or answered in this turn.
        if self.signals.any() && self.on_signals() {
            return Ok(true);
        }
        woken.clear();
        woken.extend(events.iter().map(|e| Woken {
            token: e.token(),
            readable: e.is_readable() || e.is_read_closed() || e.is_error(),
            writable: e.is_writable(),
            peer_closed: e.is_read_closed(),
        }));
        for w in woken.iter() {
            match w.token {
                SIGNAL => {
                    if self.on_signals() {
                        return Ok(true);
                    }
                }
                Token(t) if t >= LISTENER_BASE => self.accept_pending = true,
                Token(i) => {
                    if w.peer_closed {
                        if let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) {
                            c.peer_closed = true;
                        }
                    }
                    self.on_conn_event(i, w.readable, w.writable)
                }
            }
        }
        if self.accept_pending && self.accepting {
            self.accept(1);
        }
        for _ in 0..self.ready.len() {
            if let Some(i) = self.ready.pop_front() {
                self.on_conn_event(i, false, false);
            }
        }
        if self.now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.sweep();
        }
        Ok(self.draining && self.live == 0)
    }

    /// Returns true when the worker must stop at once.
    fn on_signals(&mut self) -> bool {
        let p = self.signals.take();
        if p.reopen {
            self.life.reopen_logs();
        }
        if p.drain {
            self.begin_drain();
        }
        p.quit
    }

    /// Stops accepting, but first takes every connection the kernel already queued,
    /// so a graceful stop loses none of them.
    fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.accept(usize::MAX);
        self.accepting = false;
        for l in &mut self.listeners {
            let _ = match l {
                MioListener::Tcp(t) => self.poll.registry().deregister(t),
                MioListener::Unix(u) => self.poll.registry().deregister(u),
            };
        }
        self.listeners.clear();
        self.life.draining();
    }

    /// Accepts up to `budget` connections. Accepting one at a time per loop turn
    /// (nginx's `multi_accept off`) lets sibling workers take their share.
    fn accept(&mut self, budget: usize) {
        self.accept_pending = false;
        let mut taken = 0;
        for li in 0..self.listeners.len() {
            while taken < budget {
                // While draining, everything queued is taken regardless of the
                // limit: siblings are draining too and nobody else would.
                let victim = if self.live >= self.limits.max_connections && !self.draining {
                    match self.victim() {
                        Some(v) => Some(v),
                        None => return,
                    }
                } else {
                    None
                };
                let accepted = match &self.listeners[li] {
                    MioListener::Tcp(t) => t.accept().map(|(s, a)| (Stream::Tcp(s), Peer::Tcp(a))),
                    MioListener::Unix(u) => u.accept().map(|(s, _)| (Stream::Unix(s), Peer::Unix)),
                };
                match accepted {
                    Ok((stream, peer)) => {
                        taken += 1;
                        // Room is made only for a connection that really came.
                        if let Some(v) = victim {
                            self.close(v);
                        }
                        self.insert(stream, peer);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                        ) => {}
                    // EMFILE, ECONNABORTED…: try again at the next sweep.
                    Err(_) => break,
                }
            }
            if taken >= budget {
                self.accept_pending = true;
                return;
            }
        }
    }

    /// The connection to close to admit a new one at the limit (see
    /// `Phase::eviction_rank`), if any may be closed; failing those, the slowest
    /// body (`Conn::slow_body`), so that clients trickling bodies cannot hold
    /// every slot for the body timeout. It is closed without an answer.
    fn victim(&self) -> Option<usize> {
        let live = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.as_ref()?)));
        let ranked = live
            .clone()
            .filter_map(|(i, c)| Some((c.phase().eviction_rank()?, i)))
            .min();
        match ranked {
            Some((_, i)) => Some(i),
            None => live
                .filter_map(|(i, c)| Some((c.slow_body(self.now)?, i)))
                .min()
                .map(|(_, i)| i),
        }
    }

    fn insert(&mut self, mut stream: Stream, peer: Peer) {
        if let Stream::Tcp(s) = &stream {
            let _ = s.set_nodelay(true);
        }
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut stream, Token(idx), interest)
            .is_err()
        {
            self.free.push(idx);
            return;
        }
        self.conns[idx] = Some(Conn::new(stream, peer, self.now));
        self.live += 1;
        // Data often arrives with the connection; read it now rather than wait.
        self.on_conn_event(idx, true, false);
    }

    fn close(&mut self, idx: usize) {
        if let Some(mut c) = self.conns.get_mut(idx).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.free.push(idx);
            self.live -= 1;
            self.buffered -= c.accounted;
            if !self.draining {
                // A slot opened up: accept again if we had stopped at the limit.
                self.accept_pending = true;
            }
        }
    }

    fn on_conn_event(&mut self, idx: usize, readable: bool, writable: bool) {
        let default_cap = self.read_cap();
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if conn.linger_until.is_some() {
            if readable && conn.discard_input() {
                self.close(idx);
            }
            return;
        }
        if writable && conn.has_output() {
            conn.last_write = self.now;
            if conn.flush().is_err() {
                return self.close(idx);
            }
        }
        if conn.rejected {
            // Only the answer is left to send: input is dropped, not buffered.
            if readable && conn.discard_input() {
                conn.eof = true;
            }
        } else if conn.has_output() {
            // Back-pressure: the edge is not repeated, so remember to read later.
            conn.unread |= readable;
        } else if (readable || conn.capped || conn.unread) && !conn.eof {
            conn.unread = false;
            let cap = if conn.need > 0 {
                conn.need
            } else {
                default_cap
            };
            match conn.fill(cap) {
                Err(_) => return self.close(idx),
                Ok(filled) => conn.capped = filled == Filled::Capped,
            }
        }
        self.drive(idx);
    }

    /// Most unconsumed bytes a connection may hold: a full head and a full body.
    fn read_cap(&self) -> usize {
        let body = usize::try_from(self.limits.max_body).unwrap_or(usize::MAX);
        self.limits
            .max_head()
            .saturating_add(body)
            .saturating_add(64 * 1024)
    }

    /// Serves at most one buffered request of connection `idx`, then settles what
    /// its buffers count against the body budget.
    fn drive(&mut self, idx: usize) {
        self.step(idx);
        self.account(idx);
    }

    /// Brings the worker's `buffered` sum up to date with connection `idx`.
    fn account(&mut self, idx: usize) {
        if let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) {
            let held = conn.body_bytes();
            self.buffered = self.buffered - conn.accounted + held;
            conn.accounted = held;
        }
    }

    fn step(&mut self, idx: usize) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if conn.has_output() || conn.linger_until.is_some() {
            return;
        }
        if conn.close_after_write {
            // Output fully sent; a rejection lingers so the client reads it.
            if conn.rejected && !conn.eof {
                conn.start_linger(self.now + LINGER);
            } else {
                self.close(idx);
            }
            return;
        }
        let lead = conn
            .unconsumed()
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        conn.consume(lead);
        if conn.unconsumed().is_empty() {
            conn.request_started = None;
            if conn.eof {
                self.close(idx);
            }
            return;
        }
        conn.request_started.get_or_insert(self.now);
        let others = self.buffered - conn.accounted;
        let step = serve_one(
            conn,
            self.handler,
            &self.limits,
            &mut self.date,
            self.draining,
            self.limits.max_buffered.saturating_sub(others),
        );
        let outcome = match step {
            Step::WaitHead | Step::WaitBody { .. } => {
                if conn.eof {
                    return self.close(idx);
                }
                if let Step::WaitBody { need } = step {
                    conn.start_body(self.now);
                    if need > 0 && conn.need != need {
                        conn.reserve_request(need);
                    }
                }
                // A `100 Continue` may be waiting to go out.
                conn.flush()
            }
            Step::Served => {
                conn.request_started = None;
                conn.body_started = None;
                conn.need = 0;
                // Keep-alive idleness counts from the answer, not from the request:
                // a slow handler must not make the connection look idle.
                conn.idle_since = Instant::now();
                conn.last_write = conn.idle_since;
                conn.kept_alive = true;
                self.served += 1;
                if self.served == self.limits.max_requests {
                    // Ask once; keep serving until the replacement is ready.
                    self.life.retire();
                }
                conn.flush()
            }
            Step::Rejected => {
                conn.rejected = true;
                conn.drop_request();
                conn.last_write = self.now;
                conn.flush()
            }
        };
        match outcome {
            Err(_) => self.close(idx),
            Ok(true) if conn.close_after_write && step == Step::Rejected && !conn.eof => {
                conn.start_linger(self.now + LINGER);
            }
            Ok(true) if conn.close_after_write => self.close(idx),
            Ok(true) if step == Step::Served => {
                conn.shrink();
                if conn.capped || conn.unread || !conn.unconsumed().is_empty() {
                    self.ready.push_back(idx);
                } else if conn.eof {
                    // The peer's FIN came with its last request (one read saw both):
                    // no edge will follow, so close now, not at the keep-alive timeout.
                    self.close(idx);
                }
            }
            _ => {}
        }
    }

    /// Runs every connection's timer (see `expiry`) and gives back the buffers
    /// of connections idle for a while.
    fn sweep(&mut self) {
        self.last_sweep = self.now;
        if self.accepting && !self.accept_pending {
            // Catch up after EMFILE or a missed edge; at the limit, some connection
            // may have become one that can make room.
            self.accept_pending = true;
        }
        let now = self.now;
        let mut closing = Vec::new();
        let mut late = Vec::new();
        for (i, slot) in self.conns.iter_mut().enumerate() {
            let Some(c) = slot.as_mut() else { continue };
            let phase = c.phase();
            match expiry(phase, &self.limits, now) {
                Expiry::Keep => {}
                Expiry::Close => closing.push(i),
                Expiry::Late => late.push(i),
            }
            if let Phase::Idle { since, .. } = phase {
                if now.duration_since(since) >= RELEASE_IDLE {
                    c.release();
                }
            }
        }
        for i in closing {
            self.close(i);
        }
        for i in late {
            self.time_out(i);
        }
    }

    /// Answers 408 to a request that did not arrive in time, then closes.
    fn time_out(&mut self, idx: usize) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let wbuf = &mut conn.wbuf;
        let close = &mut conn.close_after_write;
        reject(
            self.handler,
            Rejection::RequestTimeout,
            None,
            wbuf,
            close,
            &mut self.date,
        );
        conn.rejected = true;
        conn.drop_request();
        conn.last_write = self.now;
        match conn.flush() {
            Err(_) => self.close(idx),
            Ok(true) => conn.start_linger(self.now + LINGER),
            Ok(false) => {}
        }
        self.account(idx);
    }
}

/// What a connection's timer says at a sweep.
#[derive(Debug, PartialEq, Eq)]
enum Expiry {
    Keep,
    /// Close without a word: nothing of a request is pending.
    Close,
    /// A request is unfinished: answer 408, then close.
    Late,
}

fn expiry(phase: Phase, limits: &Limits, now: Instant) -> Expiry {
    let past = |since: Instant, limit: Duration| now.duration_since(since) >= limit;
    let (expired, verdict) = match phase {
        Phase::Closing {
            until: Some(until), ..
        } => (now >= until, Expiry::Close),
        Phase::Closing { since, until: None } | Phase::Sending { since } => {
            (past(since, limits.send_timeout), Expiry::Close)
        }
        Phase::Idle { since, kept_alive } => {
            let limit = if kept_alive {
                limits.keep_alive
            } else {
                limits.header_timeout
            };
            (past(since, limit), Expiry::Close)
        }
        Phase::Head { since } => (past(since, limits.header_timeout), Expiry::Late),
        Phase::Body { since } => (past(since, limits.body_timeout), Expiry::Late),
    };
    if expired {
        verdict
    } else {
        Expiry::Keep
    }
}

/// What one readiness event said about one token.
struct Woken {
    token: Token,
    readable: bool,
    writable: bool,
    peer_closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Not a whole head yet.
    WaitHead,
    /// The head is complete, the body is not: the whole request takes `need`
    /// unconsumed bytes (0 = not known yet, a chunked body).
    WaitBody {
        need: usize,
    },
    Served,
    /// A rejection was queued; the connection closes after it.
    Rejected,
}

/// Parses and serves the request at the front of `conn`'s buffer, if complete.
/// A body still arriving may take at most `budget` bytes of buffer (the worker's
/// `max_buffered` less what other connections hold); beyond that → 503.
fn serve_one<H: Handler>(
    conn: &mut Conn,
    handler: &mut H,
    limits: &Limits,
    date: &mut DateCache,
    draining: bool,
    budget: usize,
) -> Step {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let headers: &mut [httparse::Header<'_>] = if limits.header_fields <= STACK_HEADERS {
        &mut stack[..limits.header_fields.max(1)]
    } else {
        heap = vec![httparse::EMPTY_HEADER; limits.header_fields];
        &mut heap
    };
    let Conn {
        rbuf,
        rpos,
        wbuf,
        peer,
        continue_sent,
        close_after_write,
        eof,
        capped,
        chunk,
        ..
    } = conn;
    let buf = &rbuf[*rpos..];
    let head = match head::parse(buf, headers, limits) {
        Ok(Some(h)) => h,
        Ok(None) => return Step::WaitHead,
        Err(r) => return reject(handler, r, None, wbuf, close_after_write, date),
    };
    let rest = &buf[head.len..];
    let decoded;
    let mut need = 0;
    // The body, its framing checked: Ok(None) = wait for more bytes.
    let framed: Result<Option<(&[u8], usize)>, Rejection> = match head.body {
        BodyKind::None => Ok(Some((&[], head.len))),
        BodyKind::Length(n) if n > limits.max_body => Err(Rejection::PayloadTooLarge),
        // At most `max_body`, which fits in memory, so the cast is exact.
        BodyKind::Length(n) if rest.len() >= n as usize => {
            Ok(Some((&rest[..n as usize], head.len + n as usize)))
        }
        BodyKind::Length(n) if head.len + n as usize > budget => Err(Rejection::Overloaded),
        BodyKind::Length(n) => {
            need = head.len + n as usize;
            send_continue(head.expect_continue && !*eof, continue_sent, wbuf);
            Ok(None)
        }
        BodyKind::Chunked => match chunked::decode(rest, limits.max_body, chunk) {
            // The buffer is full of framing and the body is still not done: the
            // wire size is out of all proportion to the allowed body.
            Ok(Chunked::Incomplete) if *capped => Err(Rejection::PayloadTooLarge),
            Ok(Chunked::Incomplete) if rbuf.capacity() + chunk.body.capacity() > budget => {
                Err(Rejection::Overloaded)
            }
            Ok(Chunked::Incomplete) => {
                send_continue(head.expect_continue && rest.is_empty(), continue_sent, wbuf);
                Ok(None)
            }
            Ok(Chunked::Done { consumed }) => {
                decoded = std::mem::take(chunk);
                Ok(Some((&decoded.body[..], head.len + consumed)))
            }
            Err(r) => Err(r),
        },
    };
    let (body, total) = match framed {
        Ok(Some(b)) => b,
        Ok(None) => return Step::WaitBody { need },
        Err(r) => {
            let req = request_of(&head, &[], *peer);
            return reject(handler, r, Some(&req), wbuf, close_after_write, date);
        }
    };
    let req = request_of(&head, body, *peer);
    let response = match panic::catch_unwind(AssertUnwindSafe(|| handler.handle(&req))) {
        Ok(r) => r,
        Err(_) => handler.reject(Rejection::InternalError, Some(&req)),
    };
    let keep_alive =
        head.keep_alive && !draining && !response.close && !limits.keep_alive.is_zero();
    let framing = Framing {
        date: date.get(SystemTime::now()),
        common: handler.common_headers(),
        keep_alive,
        http10: head.version == Version::Http10,
        head_only: head.method == "HEAD",
    };
    write_response(wbuf, &response, &framing);
    *close_after_write = !keep_alive;
    *continue_sent = false;
    *rpos += total;
    if *rpos >= rbuf.len() {
        rbuf.clear();
        *rpos = 0;
    }
    Step::Served
}

fn request_of<'r>(head: &head::Head<'r, 'r>, body: &'r [u8], peer: Peer) -> Request<'r> {
    Request {
        method: head.method,
        path: head.path,
        query: head.query,
        version: head.version,
        headers: head.headers,
        body,
        peer,
    }
}

/// `100 Continue` once per request, only if the client asked and nothing of the
/// body has arrived yet.
fn send_continue(wanted: bool, sent: &mut bool, wbuf: &mut Vec<u8>) {
    if wanted && !*sent {
        *sent = true;
        wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
}

fn reject<H: Handler>(
    handler: &mut H,
    rejection: Rejection,
    head: Option<&Request<'_>>,
    wbuf: &mut Vec<u8>,
    close_after_write: &mut bool,
    date: &mut DateCache,
) -> Step {
    let mut response: Response = handler.reject(rejection, head);
    response.close = true;
    if let Some(secs) = rejection.retry_after() {
        let named = |n: &&str| n.eq_ignore_ascii_case("Retry-After");
        if !response.headers.iter().any(|(n, _)| named(n)) {
            response.headers.push(("Retry-After", secs.into()));
        }
    }
    let framing = Framing {
        date: date.get(SystemTime::now()),
        common: handler.common_headers(),
        keep_alive: false,
        http10: false,
        head_only: head.is_some_and(|r| r.method == "HEAD"),
    };
    write_response(wbuf, &response, &framing);
    *close_after_write = true;
    Step::Rejected
}

#[cfg(test)]
mod tests;
