//! One client connection: its socket, read and write buffers, and timers.
//!
//! Invariant: a buffer grows only as far as the request being received needs (a
//! body of known length is read into exactly its size), and a finished request
//! leaves no large buffer behind, so idle connections cost almost nothing.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::chunked::ChunkState;
use crate::request::Peer;

/// Most bytes a refused connection may send after its refusal before it is closed
/// outright (its answer has had the time those bytes took to arrive to get out).
const DISCARD_MAX: usize = 1024 * 1024;

/// Bytes we try to read per `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers up to this size are kept between requests (no allocation per request
/// on a keep-alive connection); larger ones are given back once done with.
const KEEP_BUFFER: usize = 2 * READ_CHUNK;
/// A body arriving slower than this on average (bytes/s since its head was
/// complete) may be closed to make room at the connection limit: far below any
/// real uploader's link, far above a client trickling bytes to hold a slot.
pub(crate) const SLOW_BODY_RATE: u64 = 1024;
/// How long a body is given before its rate is judged, so that a client that has
/// just sent its head (or waits for `100 Continue`) is not judged on nothing.
pub(crate) const SLOW_BODY_GRACE: Duration = Duration::from_secs(1);

pub(crate) enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// Result of draining the socket's receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filled {
    /// Everything available was read (maybe nothing).
    Drained,
    /// Stopped at the buffer cap; more may be waiting.
    Capped,
    /// The peer closed its side.
    Eof,
}

pub(crate) struct Conn {
    pub stream: Stream,
    pub peer: Peer,
    pub rbuf: Vec<u8>,
    /// Start of the unconsumed part of `rbuf`.
    pub rpos: usize,
    pub wbuf: Vec<u8>,
    pub wpos: usize,
    /// When the connection was accepted, or its last answer sent: the start of
    /// its idleness. Reads do not move it, so stray bytes cannot keep it alive.
    pub idle_since: Instant,
    /// An answer was sent on this connection, which was kept open for the next.
    pub kept_alive: bool,
    /// When the first byte of the request being received arrived.
    pub request_started: Option<Instant>,
    /// When the head of that request was complete, if its body is still arriving.
    pub body_started: Option<Instant>,
    /// Bytes read from the socket, ever; and their number when the body started,
    /// to tell a body's rate (`slow_body`).
    pub received: u64,
    pub body_base: u64,
    /// Unconsumed bytes the whole request takes, once known (head and a body of
    /// known length); 0 = unknown. Reads stop there.
    pub need: usize,
    /// Bytes of this connection counted against the worker's body budget.
    pub accounted: usize,
    /// When output last went out (or was queued); a client that reads nothing
    /// for `send_timeout` is dropped.
    pub last_write: Instant,
    pub close_after_write: bool,
    pub continue_sent: bool,
    /// After a rejection: we shut down our side and discard input until this time,
    /// so the client reads our answer instead of a reset.
    pub linger_until: Option<Instant>,
    /// Bytes a refused connection may still send us to be thrown away.
    discard_left: usize,
    pub eof: bool,
    /// The last read stopped at the buffer cap: unread bytes remain in the socket.
    pub capped: bool,
    /// Readiness arrived while an answer was waiting to go out; read once it is
    /// out (edge-triggered readiness will not say it again).
    pub unread: bool,
    /// The last response was a rejection: close by lingering, not abruptly.
    pub rejected: bool,
    /// Progress of a chunked request body being received.
    pub chunk: ChunkState,
    /// The peer shut down its sending side (EPOLLRDHUP): read until EOF instead of
    /// stopping at a short read, or the FIN would go unnoticed.
    pub peer_closed: bool,
}

impl Conn {
    pub fn new(stream: Stream, peer: Peer, now: Instant) -> Conn {
        Conn {
            stream,
            peer,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            idle_since: now,
            kept_alive: false,
            request_started: None,
            body_started: None,
            received: 0,
            body_base: 0,
            need: 0,
            accounted: 0,
            last_write: now,
            close_after_write: false,
            continue_sent: false,
            linger_until: None,
            discard_left: DISCARD_MAX,
            eof: false,
            capped: false,
            unread: false,
            rejected: false,
            chunk: ChunkState::default(),
            peer_closed: false,
        }
    }

    pub fn unconsumed(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.rpos += n;
        if self.rpos >= self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
    }

    pub fn has_output(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// Moves the unconsumed bytes to the front of the buffer.
    pub fn compact(&mut self) {
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
    }

    /// Makes the buffer hold exactly the `need` bytes of the current request (the
    /// caller knows fewer are held), so that reading its body never reallocates,
    /// never doubles the buffer, and the body budget counts what is really held.
    pub fn reserve_request(&mut self, need: usize) {
        self.compact();
        self.need = need;
        if self.rbuf.capacity() > need {
            self.rbuf.shrink_to(need);
        } else if let Some(more) = need.checked_sub(self.rbuf.len()) {
            self.rbuf.reserve_exact(more);
        }
    }

    /// Bytes of buffer this connection holds for a request body being received.
    pub fn body_bytes(&self) -> usize {
        match self.body_started {
            Some(_) => self.rbuf.capacity() + self.chunk.body.capacity(),
            None => 0,
        }
    }

    /// Notes that the head is complete and the body is arriving (once per request).
    pub fn start_body(&mut self, now: Instant) {
        if self.body_started.is_none() {
            self.body_started = Some(now);
            self.body_base = self.received;
        }
    }

    /// A body arriving slower than `SLOW_BODY_RATE` after `SLOW_BODY_GRACE`: its
    /// rate (bytes/s) and start, slowest and then oldest first. `None` for any
    /// other connection.
    pub fn slow_body(&self, now: Instant) -> Option<(u64, Instant)> {
        let Phase::Body { since } = self.phase() else {
            return None;
        };
        let elapsed = now.saturating_duration_since(since);
        if elapsed < SLOW_BODY_GRACE {
            return None;
        }
        let bytes = self.received - self.body_base;
        let rate = u128::from(bytes) * 1000 / elapsed.as_millis().max(1);
        let rate = u64::try_from(rate).unwrap_or(u64::MAX);
        (rate < SLOW_BODY_RATE).then_some((rate, since))
    }

    /// Gives back buffers a finished request left larger than `KEEP_BUFFER`.
    pub fn shrink(&mut self) {
        if self.rpos >= self.rbuf.len() && self.rbuf.capacity() > KEEP_BUFFER {
            self.rbuf = Vec::new();
            self.rpos = 0;
        }
        if !self.has_output() && self.wbuf.capacity() > KEEP_BUFFER {
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
    }

    /// Gives back every buffer of a connection that holds nothing (idle).
    pub fn release(&mut self) {
        if self.rpos >= self.rbuf.len() && !self.has_output() {
            self.rbuf = Vec::new();
            self.rpos = 0;
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
    }

    /// Reads until the socket is drained, EOF, or `cap` unconsumed bytes are held;
    /// the buffer grows by at most what is missing up to `cap`.
    pub fn fill(&mut self, cap: usize) -> io::Result<Filled> {
        if self.rpos > 0 && self.rpos * 2 >= self.rbuf.len() {
            self.compact();
        }
        loop {
            let held = self.rbuf.len() - self.rpos;
            if held >= cap {
                return Ok(Filled::Capped);
            }
            let len = self.rbuf.len();
            let want = READ_CHUNK.min(cap - held);
            self.rbuf.resize(len + want, 0);
            let got = self.stream.read(&mut self.rbuf[len..]);
            match got {
                Ok(0) => {
                    self.rbuf.truncate(len);
                    self.eof = true;
                    return Ok(Filled::Eof);
                }
                Ok(n) => {
                    self.rbuf.truncate(len + n);
                    self.received += n as u64;
                    // A short read of a stream socket means its buffer is empty now;
                    // edge-triggered readiness will tell us about anything newer.
                    if n < want && !self.peer_closed {
                        return Ok(Filled::Drained);
                    }
                }
                Err(e) => {
                    self.rbuf.truncate(len);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Ok(Filled::Drained),
                        io::ErrorKind::Interrupted => continue,
                        _ => return Err(e),
                    }
                }
            }
        }
    }

    /// Writes pending output; `Ok(true)` when all of it is out.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(true)
    }

    /// Discards input (a lingering close); returns true once the peer closed, or
    /// once it sent more than `DISCARD_MAX` after its refusal: a client that keeps
    /// pushing a body it was told not to send would otherwise keep the worker
    /// reading (this loop runs until the socket is drained) while others wait.
    pub fn discard_input(&mut self) -> bool {
        let mut sink = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(n) if n >= self.discard_left => return true,
                Ok(n) => self.discard_left -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return e.kind() != io::ErrorKind::WouldBlock,
            }
        }
    }

    pub fn start_linger(&mut self, until: Instant) {
        self.stream.shutdown_write();
        self.drop_request();
        self.linger_until = Some(until);
    }

    /// Forgets the request being received (it was refused): its bytes and state.
    pub fn drop_request(&mut self) {
        self.rbuf = Vec::new();
        self.rpos = 0;
        self.chunk = ChunkState::default();
        self.request_started = None;
        self.body_started = None;
        self.need = 0;
    }
}

/// Where a connection is, for its timer and for making room at the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Refused: its answer is going out (last progress at `since`) or out, and
    /// input is discarded until `until`.
    Closing {
        since: Instant,
        until: Option<Instant>,
    },
    /// Nothing of a request yet, since accept or since the last answer.
    Idle { since: Instant, kept_alive: bool },
    /// Part of a request head has arrived, the first byte at `since`.
    Head { since: Instant },
    /// The head is complete and the body is arriving, since `since`.
    Body { since: Instant },
    /// An answer waits for the client to read it; last progress at `since`.
    Sending { since: Instant },
}

impl Conn {
    pub fn phase(&self) -> Phase {
        if self.linger_until.is_some() || self.rejected {
            return Phase::Closing {
                since: self.last_write,
                until: self.linger_until,
            };
        }
        if let Some(since) = self.body_started {
            return Phase::Body { since };
        }
        if self.has_output() {
            return Phase::Sending {
                since: self.last_write,
            };
        }
        if let Some(since) = self.request_started {
            return Phase::Head { since };
        }
        if self.rpos < self.rbuf.len() || self.capped || self.unread {
            // Bytes not looked at yet (a pipelined request): not idle.
            return Phase::Head {
                since: self.idle_since,
            };
        }
        Phase::Idle {
            since: self.idle_since,
            kept_alive: self.kept_alive,
        }
    }
}

impl Phase {
    /// Which connection goes first when a worker at its limit makes room: refused
    /// ones, then idle keep-alive ones (longest idle first), then the oldest still
    /// sending a head (a new connection that sent nothing counts from its accept).
    /// `None`: not closed for room before all of those (a body or an answer in
    /// progress); of those, only a slow body may go last (`Conn::slow_body`).
    pub fn eviction_rank(&self) -> Option<(u8, Instant)> {
        match *self {
            Phase::Closing { since, .. } => Some((0, since)),
            Phase::Idle {
                since,
                kept_alive: true,
            } => Some((1, since)),
            Phase::Idle {
                since,
                kept_alive: false,
            }
            | Phase::Head { since } => Some((2, since)),
            Phase::Body { .. } | Phase::Sending { .. } => None,
        }
    }
}
