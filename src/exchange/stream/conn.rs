//! One private-stream socket: opened blocking on a connect thread (DNS, TCP,
//! TLS, upgrade, and Bybit's authentication and subscription, each bounded),
//! then switched to non-blocking and read by the event loop whenever epoll says
//! it is readable.

use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::exchange::proxy::{self, Proxy};
use crate::market::feed::socket::{would_block, Unflushed};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error, Message, WebSocket};

/// Queued output beyond this is an error rather than unbounded memory.
const MAX_WRITE_BUFFER: usize = 1 << 20;
/// Output the peer does not take for this long means a dead connection.
const UNFLUSHED_LIMIT: Duration = Duration::from_secs(10);

/// One frame read.
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

pub struct Socket {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    unflushed: Unflushed,
}

fn tcp(stream: &MaybeTlsStream<TcpStream>) -> Option<&TcpStream> {
    match stream {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
        _ => None,
    }
}

impl Socket {
    /// Connects and upgrades `url` (ws:// or wss://), every step bounded by
    /// `timeout`; the socket stays blocking (with that timeout) until `detach`.
    /// Through the account's egress `proxy` when it has one.
    pub fn connect(url: &str, timeout: Duration, proxy: Option<&Proxy>) -> Result<Socket, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        let host = parsed.host_str().ok_or("no host")?;
        let port = parsed.port_or_known_default().ok_or("no port")?;
        let stream = proxy::dial(proxy, host.trim_matches(['[', ']']), port, timeout)
            .map_err(|e| format!("connecting to {host}: {e}"))?;
        let io = |e: std::io::Error| e.to_string();
        stream.set_nodelay(true).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let config = WebSocketConfig::default().max_write_buffer_size(MAX_WRITE_BUFFER);
        let (ws, _) = tungstenite::client_tls_with_config(url, stream, Some(config), None)
            .map_err(|e| format!("handshake: {e}"))?;
        Ok(Socket {
            ws,
            unflushed: Unflushed::new(UNFLUSHED_LIMIT),
        })
    }

    /// From now on the event loop's: reads and writes never block.
    pub fn detach(&mut self) -> Result<(), String> {
        let s = tcp(self.ws.get_ref()).ok_or("unknown stream kind")?;
        s.set_nonblocking(true).map_err(|e| e.to_string())
    }

    pub fn fd(&self) -> Option<RawFd> {
        tcp(self.ws.get_ref()).map(AsRawFd::as_raw_fd)
    }

    /// The next data frame; `None` when nothing more is buffered (or, blocking,
    /// when the timeout passed). Control frames are answered by tungstenite and
    /// skipped. An error means the connection is unusable.
    pub fn read(&mut self) -> Result<Option<Frame>, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(Some(Frame::Text(t.to_string()))),
                Ok(Message::Binary(b)) => return Ok(Some(Frame::Binary(b.to_vec()))),
                Ok(Message::Close(_)) => return Err("closed by the server".into()),
                Ok(_) => continue,
                Err(Error::Io(e)) if would_block(&e) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Sends `text`, or queues it while the peer is slow; output not taken for
    /// `UNFLUSHED_LIMIT` is an error.
    pub fn send(&mut self, text: String) -> Result<(), String> {
        let sent = self.ws.send(Message::text(text));
        self.settle(sent)
    }

    /// Sends what is queued (answers to pings included).
    pub fn flush(&mut self) -> Result<(), String> {
        let flushed = self.ws.flush();
        self.settle(flushed)
    }

    fn settle(&mut self, result: tungstenite::Result<()>) -> Result<(), String> {
        self.unflushed.settle(result)
    }

    /// Says goodbye (best effort: the socket is dropped right after).
    pub fn close(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}
