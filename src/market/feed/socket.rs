//! One WebSocket client connection (ws:// or wss:// through rustls with the
//! webpki roots), read with a short socket timeout so one thread can take turns
//! over the venues' sockets.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error, Message, WebSocket};

/// How long one read waits for a frame before the loop moves on.
pub const READ_WAIT: Duration = Duration::from_millis(20);

pub struct Socket {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

/// One frame read.
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// A control frame (ping, pong); tungstenite answers pings itself.
    Control,
}

fn tcp(stream: &MaybeTlsStream<TcpStream>) -> Option<&TcpStream> {
    match stream {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
        _ => None,
    }
}

impl Socket {
    /// Connects and completes the handshake within about `timeout` per step
    /// (connect, TLS and upgrade each).
    pub fn connect(url: &str, timeout: Duration) -> Result<Socket, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        let host = parsed.host_str().ok_or("no host")?;
        let port = parsed.port_or_known_default().ok_or("no port")?;
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {host}: {e}"))?;
        let mut last = format!("{host}: no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => return Socket::handshake(url, stream, timeout),
                Err(e) => last = format!("connecting to {addr}: {e}"),
            }
        }
        Err(last)
    }

    fn handshake(url: &str, stream: TcpStream, timeout: Duration) -> Result<Socket, String> {
        let io = |e: std::io::Error| e.to_string();
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let (ws, _) = tungstenite::client_tls_with_config(url, stream, None, None)
            .map_err(|e| format!("handshake: {e}"))?;
        if let Some(s) = tcp(ws.get_ref()) {
            s.set_read_timeout(Some(READ_WAIT)).map_err(io)?;
        }
        Ok(Socket { ws })
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

    pub fn send(&mut self, text: String) -> Result<(), String> {
        match self.ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            // Queued; the next flush sends it.
            Err(Error::Io(e)) if would_block(&e) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends anything queued (such as tungstenite's answers to pings).
    pub fn flush(&mut self) -> Result<(), String> {
        match self.ws.flush() {
            Ok(()) => Ok(()),
            Err(Error::Io(e)) if would_block(&e) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn would_block(e: &std::io::Error) -> bool {
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
}
