//! One client connection: its socket, read and write buffers, and timers.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::chunked::ChunkState;
use crate::request::Peer;

/// Bytes we try to read per `read` call.
const READ_CHUNK: usize = 16 * 1024;

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
    pub last_active: Instant,
    /// When the first byte of the request being received arrived.
    pub request_started: Option<Instant>,
    pub close_after_write: bool,
    pub continue_sent: bool,
    /// After a rejection: we shut down our side and discard input until this time,
    /// so the client reads our answer instead of a reset.
    pub linger_until: Option<Instant>,
    pub eof: bool,
    /// The last read stopped at the buffer cap: unread bytes remain in the socket.
    pub capped: bool,
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
            last_active: now,
            request_started: None,
            close_after_write: false,
            continue_sent: false,
            linger_until: None,
            eof: false,
            capped: false,
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

    /// Reads until the socket is drained, EOF, or `cap` unconsumed bytes are held.
    pub fn fill(&mut self, cap: usize) -> io::Result<Filled> {
        if self.rpos > 0 && self.rpos * 2 >= self.rbuf.len() {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        loop {
            if self.rbuf.len() - self.rpos >= cap {
                return Ok(Filled::Capped);
            }
            let len = self.rbuf.len();
            self.rbuf.resize(len + READ_CHUNK, 0);
            let got = self.stream.read(&mut self.rbuf[len..]);
            match got {
                Ok(0) => {
                    self.rbuf.truncate(len);
                    self.eof = true;
                    return Ok(Filled::Eof);
                }
                Ok(n) => {
                    self.rbuf.truncate(len + n);
                    // A short read of a stream socket means its buffer is empty now;
                    // edge-triggered readiness will tell us about anything newer.
                    if n < READ_CHUNK && !self.peer_closed {
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

    /// Discards input (a lingering close); returns true once the peer closed.
    pub fn discard_input(&mut self) -> bool {
        let mut sink = [0u8; 4096];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return e.kind() != io::ErrorKind::WouldBlock,
            }
        }
    }

    pub fn start_linger(&mut self, until: Instant) {
        self.stream.shutdown_write();
        self.rbuf = Vec::new();
        self.rpos = 0;
        self.linger_until = Some(until);
    }
}
