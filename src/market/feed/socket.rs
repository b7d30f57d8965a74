//! One WebSocket client connection (ws:// or wss:// through rustls with the
//! webpki roots), read with a short socket timeout so one thread can take turns
//! over the venues' sockets.
//!
//! Connecting (DNS, TCP, TLS, upgrade) has one overall deadline, and the loop
//! runs it on a short-lived helper thread (`venue`), so a venue that accepts
//! TCP and never answers cannot hold the other venue's reads.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error, Message, WebSocket};

/// How long one read or write waits before the loop moves on.
pub const READ_WAIT: Duration = Duration::from_millis(20);
/// Output the peer does not take for this long means a dead connection.
const UNFLUSHED_LIMIT: Duration = Duration::from_secs(5);
/// Queued output beyond this is an error rather than unbounded memory.
const MAX_WRITE_BUFFER: usize = 1 << 20;

/// The TCP stream under the (TLS) WebSocket: until the handshake is done every
/// read and write is bounded by the connect's overall deadline, not by a
/// per-call timeout that a trickling peer could renew forever.
pub struct Timed {
    tcp: TcpStream,
    deadline: Option<Instant>,
}

impl Timed {
    fn left(&self) -> std::io::Result<()> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                ErrorKind::TimedOut,
                "connect deadline passed",
            ));
        }
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.set_write_timeout(Some(left))
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.left()?;
        self.tcp.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.left()?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

pub struct Socket {
    ws: WebSocket<MaybeTlsStream<Timed>>,
    /// Since when output has been waiting for the peer to take it.
    unflushed: Unflushed,
}

/// One frame read.
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// A control frame (ping, pong); tungstenite answers pings itself.
    Control,
}

fn timed(stream: &mut MaybeTlsStream<Timed>) -> Option<&mut Timed> {
    match stream {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_mut()),
        _ => None,
    }
}

/// Resolves `host` on a helper thread, waiting at most until `deadline`: the
/// system resolver has no timeout of its own. A resolver that hangs leaves its
/// thread to finish on its own; nothing waits for it.
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("market-data-dns".into())
        .spawn(move || {
            let found = (name.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>());
            let _ = tx.send(found);
        })
        .map_err(|e| format!("resolving {host}: {e}"))?;
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(format!("resolving {host}: {e}")),
        Err(_) => Err(format!("resolving {host}: timed out")),
    }
}

impl Socket {
    /// Connects and completes the handshake within `budget` overall (DNS, every
    /// address tried, TLS and upgrade together).
    pub fn connect(url: &str, budget: Duration) -> Result<Socket, String> {
        let deadline = Instant::now() + budget;
        let parsed = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        let host = parsed.host_str().ok_or("no host")?;
        let port = parsed.port_or_known_default().ok_or("no port")?;
        let mut last = format!("{host}: no address");
        for addr in resolve(host, port, deadline)? {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{last}; out of time"));
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => return Socket::handshake(url, stream, deadline),
                Err(e) => last = format!("connecting to {addr}: {e}"),
            }
        }
        Err(last)
    }

    fn handshake(url: &str, stream: TcpStream, deadline: Instant) -> Result<Socket, String> {
        let io = |e: std::io::Error| e.to_string();
        stream.set_nodelay(true).map_err(io)?;
        let stream = Timed {
            tcp: stream,
            deadline: Some(deadline),
        };
        let config = WebSocketConfig::default().max_write_buffer_size(MAX_WRITE_BUFFER);
        let (mut ws, _) = tungstenite::client_tls_with_config(url, stream, Some(config), None)
            .map_err(|e| format!("handshake: {e}"))?;
        if let Some(s) = timed(ws.get_mut()) {
            // From now on the loop's pace: nothing may block it for longer.
            s.deadline = None;
            s.tcp.set_read_timeout(Some(READ_WAIT)).map_err(io)?;
            s.tcp.set_write_timeout(Some(READ_WAIT)).map_err(io)?;
        }
        Ok(Socket {
            ws,
            unflushed: Unflushed::new(UNFLUSHED_LIMIT),
        })
    }

    /// The next frame, `None` when none came within `READ_WAIT`. An error means
    /// the connection is unusable (closed, reset, protocol violation).
    pub fn read(&mut self) -> Result<Option<Frame>, String> {
        match self.ws.read() {
            Ok(Message::Text(t)) => Ok(Some(Frame::Text(t.to_string()))),
            Ok(Message::Binary(b)) => Ok(Some(Frame::Binary(b.to_vec()))),
            Ok(Message::Close(_)) => Err("closed by the server".into()),
            Ok(_) => Ok(Some(Frame::Control)),
            Err(Error::Io(e)) if would_block(&e) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends `text` (or queues it while the peer is slow). Output the peer has
    /// not taken for `UNFLUSHED_LIMIT` is an error: the connection is dead.
    pub fn send(&mut self, text: String) -> Result<(), String> {
        let sent = self.ws.send(Message::text(text));
        self.settle(sent)
    }

    /// Sends anything queued (such as tungstenite's answers to pings).
    pub fn flush(&mut self) -> Result<(), String> {
        let flushed = self.ws.flush();
        self.settle(flushed)
    }

    fn settle(&mut self, result: tungstenite::Result<()>) -> Result<(), String> {
        self.unflushed.settle(result)
    }
}

/// Output a slow peer has not taken yet, and how long it may wait before the
/// connection counts as dead. Shared by the market-data streams and the bot
/// runner's account streams (`exchange::stream::conn`).
pub(crate) struct Unflushed {
    since: Option<Instant>,
    limit: Duration,
}

impl Unflushed {
    pub(crate) fn new(limit: Duration) -> Unflushed {
        Unflushed { since: None, limit }
    }

    /// The outcome of a send or flush: done, queued (an error once queued
    /// longer than the limit), or failed.
    pub(crate) fn settle(&mut self, result: tungstenite::Result<()>) -> Result<(), String> {
        match result {
            Ok(()) => {
                self.since = None;
                Ok(())
            }
            Err(Error::Io(e)) if would_block(&e) => {
                let since = *self.since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.limit {
                    return Err(format!("output not taken for {} s", self.limit.as_secs()));
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

pub(crate) fn would_block(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wss:// builds its rustls configuration (crypto provider, webpki roots) and
    /// fails cleanly against a peer that is no TLS server.
    #[test]
    fn a_failed_tls_handshake_is_an_error_not_a_panic() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            use std::io::Write;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        let url = format!("wss://127.0.0.1:{port}/v5/public/linear");
        let err = Socket::connect(&url, Duration::from_secs(2)).err().unwrap();
        assert!(err.starts_with("handshake"), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn a_refused_connection_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = Socket::connect(&format!("ws://127.0.0.1:{port}/"), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(err.contains("connecting"), "{err}");
    }

    /// A peer that answers a byte at a time never renews a per-read timeout
    /// into a hang: the connect's budget is for the whole of it.
    #[test]
    fn a_trickling_handshake_fails_at_the_overall_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            use std::io::Write;
            for b in b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n".iter() {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let started = Instant::now();
        let err = Socket::connect(&format!("ws://127.0.0.1:{port}/"), Duration::from_secs(1))
            .err()
            .unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "took {took:?}: {err}");
        assert!(err.starts_with("handshake"), "{err}");
    }

    /// A peer that stops reading: sends never block the loop for longer than
    /// a read wait, and the connection is given up within seconds.
    #[test]
    fn a_peer_that_takes_no_output_is_given_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let _ws = tungstenite::accept(s).unwrap();
            let _ = done_rx.recv(); // never reads
        });
        let mut socket =
            Socket::connect(&format!("ws://127.0.0.1:{port}/"), Duration::from_secs(2)).unwrap();
        let chunk = "x".repeat(64 * 1024);
        let started = Instant::now();
        let err = loop {
            let call = Instant::now();
            let sent = socket.send(chunk.clone());
            assert!(
                call.elapsed() < Duration::from_millis(500),
                "a send blocked"
            );
            if let Err(e) = sent {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never gave up");
        };
        assert!(!err.is_empty());
        drop(done_tx);
    }
}
