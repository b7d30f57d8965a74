//! A minimal HTTP/1.1 client over std sockets: exact bytes in, parsed response out.
//! Every final response is checked against docs/openapi.json with the request it
//! answers (`openapi::check`): an API answer the document does not describe fails
//! the test that read it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::openapi;
use super::sent::Requests;

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One connection, possibly reused for many requests.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// What was sent and not answered yet, to pair with each response.
    requests: Requests,
}

impl Conn {
    /// A connection over an already connected stream (e.g. from another source
    /// address).
    pub fn from_stream(stream: TcpStream) -> io::Result<Conn> {
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            requests: Requests::default(),
        })
    }

    pub fn open(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            requests: Requests::default(),
        })
    }

    pub fn send(&mut self, raw: &[u8]) -> io::Result<()> {
        self.requests.wrote(raw);
        self.stream.write_all(raw)
    }

    /// Reads one response (including 1xx interim ones); `head_only` for HEAD.
    pub fn read_response(&mut self, head_only: bool) -> io::Result<Resp> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad status line {status_line:?}"),
                )
            })?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = if head_only || status < 200 {
            0
        } else {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
        };
        while self.buf.len() < head_end + len {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        let resp = Resp {
            status,
            headers,
            body,
        };
        // An interim 100 answers no request yet.
        if resp.status >= 200 {
            if let Some(req) = self.requests.answered() {
                openapi::check(&req, &resp);
            }
        }
        Ok(resp)
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// GET on this connection (keep-alive).
    pub fn get(&mut self, path: &str) -> io::Result<Resp> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())?;
        self.read_response(false)
    }

    /// True once the server closed the connection (reads EOF within the timeout).
    pub fn closed_by_server(&mut self, timeout: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(timeout));
        let mut b = [0u8; 1];
        // One read decides: EOF or a reset both mean the server closed.
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends raw bytes on a new connection and reads one response.
pub fn request(port: u16, raw: &[u8]) -> Resp {
    let mut c = Conn::open(port).expect("connect");
    c.send(raw).expect("send");
    c.read_response(false).expect("response")
}

pub fn try_get(port: u16, path: &str) -> io::Result<Resp> {
    let mut c = Conn::open(port)?;
    c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())?;
    c.read_response(false)
}

pub fn get(port: u16, path: &str) -> Resp {
    try_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}
