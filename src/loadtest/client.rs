//! A minimal HTTP/1.1 client over one keep-alive connection, as a browser behind
//! nginx would hold one: requests in sequence, the connection reused until the
//! server closes it or an error occurs.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Client {
    addr: SocketAddr,
    host: String,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    /// Where the last answer's body lies in `buf` (read by `body`).
    body: std::ops::Range<usize>,
}

/// One answer's status (its body stays in the client's buffer: `Client::body`).
pub struct Answer {
    pub status: u16,
}

impl Client {
    pub fn new(addr: SocketAddr, host: &str) -> Client {
        Client {
            addr,
            host: host.to_string(),
            conn: None,
            buf: Vec::with_capacity(16 * 1024),
            body: 0..0,
        }
    }

    fn connect(&mut self) -> io::Result<&mut TcpStream> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.conn = Some(s);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))
    }

    /// Sends one request and reads its whole answer.
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> io::Result<Answer> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n",
            self.host
        );
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        let result = self.exchange(req.as_bytes());
        if !matches!(result, Ok((_, true))) {
            self.conn = None; // closed by the server, or broken: reconnect next time
        }
        result.map(|(a, _)| a)
    }

    /// The body of the last answer (empty after a failed call).
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body.clone()).unwrap_or_default()
    }

    /// Returns the answer and whether the connection can be reused.
    fn exchange(&mut self, req: &[u8]) -> io::Result<(Answer, bool)> {
        self.buf.clear();
        self.body = 0..0;
        let conn = self.connect()?;
        conn.write_all(req)?;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = resp
                .parse(&self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let status = resp.code.unwrap_or(0);
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let keep = !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                self.read_until(head + len)?;
                self.body = head..head + len;
                return Ok((Answer { status }, keep));
            }
            self.fill()?;
        }
    }

    fn read_until(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            self.fill()?;
        }
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        let conn = self.connect()?;
        let mut chunk = [0u8; 16 * 1024];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
