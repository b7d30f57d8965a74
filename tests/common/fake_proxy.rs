//! Fake outbound proxies on loopback, for the server's exchange connections:
//! - an HTTP proxy taking `CONNECT host:port` (RFC 9110 §9.3.6: `200` then a
//!   raw tunnel) and, for plain-HTTP clients that send the absolute form
//!   (`GET http://host:port/path`), forwarding the request; optionally with
//!   `Proxy-Authorization: Basic` (else `407` with `Proxy-Authenticate`);
//! - a SOCKS5 proxy (RFC 1928: `CONNECT` to an IPv4, IPv6 or domain address)
//!   without authentication or with username/password (RFC 1929).
//!
//! Each counts the tunnels it opened and to which `host:port`, and the clients
//! it refused, so a test can prove the traffic went through it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Http,
    Socks5,
}

#[derive(Default)]
struct State {
    tunnels: Mutex<Vec<String>>,
    /// HTTP `CONNECT` tunnels only (an HTTP client of a plain-`http` target
    /// sends the absolute form instead: a `CONNECT` to such a target is a
    /// WebSocket).
    connects: Mutex<Vec<String>>,
    refused: AtomicU64,
}

pub struct FakeProxy {
    pub port: u16,
    pub kind: Kind,
    auth: Option<(String, String)>,
    state: Arc<State>,
}

impl FakeProxy {
    /// An HTTP proxy; `auth` is the user and password it requires, if any.
    pub fn http(auth: Option<(&str, &str)>) -> FakeProxy {
        FakeProxy::start(Kind::Http, auth)
    }

    /// A SOCKS5 proxy; `auth` is the user and password it requires, if any.
    pub fn socks5(auth: Option<(&str, &str)>) -> FakeProxy {
        FakeProxy::start(Kind::Socks5, auth)
    }

    fn start(kind: Kind, auth: Option<(&str, &str)>) -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let auth = auth.map(|(u, p)| (u.to_string(), p.to_string()));
        let state = Arc::new(State::default());
        let (k, a, st) = (kind.clone(), auth.clone(), state.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (k, a, st) = (k.clone(), a.clone(), st.clone());
                std::thread::spawn(move || {
                    let done = match k {
                        Kind::Http => http(client, a.as_ref(), &st),
                        Kind::Socks5 => socks5(client, a.as_ref(), &st),
                    };
                    if done.is_none() {
                        st.refused.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        FakeProxy {
            port,
            kind,
            auth,
            state,
        }
    }

    /// The proxy URL as clients are configured with it
    /// (`http://[user:pass@]127.0.0.1:PORT`, `socks5://…`).
    pub fn url(&self) -> String {
        let scheme = match self.kind {
            Kind::Http => "http",
            Kind::Socks5 => "socks5",
        };
        let creds = self
            .auth
            .as_ref()
            .map_or(String::new(), |(u, p)| format!("{u}:{p}@"));
        format!("{scheme}://{creds}127.0.0.1:{}", self.port)
    }

    /// The `host:port` of every tunnel opened, in order.
    pub fn tunnels(&self) -> Vec<String> {
        self.state.tunnels.lock().unwrap().clone()
    }

    /// The `host:port` of every HTTP `CONNECT` tunnel, in order.
    pub fn connects(&self) -> Vec<String> {
        self.state.connects.lock().unwrap().clone()
    }

    pub fn tunnel_count(&self) -> usize {
        self.state.tunnels.lock().unwrap().len()
    }

    /// Clients refused (bad credentials, bad request, unreachable target).
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }
}

/// Copies both ways until either side ends.
fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let (mut a, mut b) = (a, b);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut b, &mut a);
    let _ = a.shutdown(Shutdown::Write);
    let _ = up.join();
}

fn open(target: &str, st: &State) -> Option<TcpStream> {
    let upstream = TcpStream::connect(target).ok()?;
    st.tunnels.lock().unwrap().push(target.to_string());
    Some(upstream)
}

/// One HTTP proxy client: `CONNECT` or an absolute-form request.
fn http(client: TcpStream, auth: Option<&(String, String)>, st: &State) -> Option<()> {
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut head = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        head.push(h);
    }
    let mut client = client;
    if let Some((user, pass)) = auth {
        let want = format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let given = head
            .iter()
            .filter_map(|h| h.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("proxy-authorization"))
            .map(|(_, v)| v.trim().to_string());
        if !given.is_some_and(|g| g.eq_ignore_ascii_case(&want)) {
            let _ = client.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"fake\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return None;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    if method.eq_ignore_ascii_case("CONNECT") {
        let Some(mut upstream) = open(target, st) else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            return None;
        };
        st.connects.lock().unwrap().push(target.to_string());
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .ok()?;
        // Bytes the client sent after the head (a TLS hello) are in the reader.
        let early = reader.buffer().to_vec();
        upstream.write_all(&early).ok()?;
        pipe(client, upstream);
        return Some(());
    }
    // Absolute form: `GET http://host:port/path HTTP/1.1`.
    let rest = target.strip_prefix("http://")?;
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let mut upstream = open(&hostport, st)?;
    let path = if path.is_empty() { "/" } else { path };
    let version = parts.next().unwrap_or("HTTP/1.1");
    let mut out = format!("{method} {path} {version}\r\n");
    for h in head
        .iter()
        .filter(|h| !h.to_ascii_lowercase().starts_with("proxy-"))
    {
        out.push_str(h);
    }
    out.push_str("\r\n");
    upstream.write_all(out.as_bytes()).ok()?;
    upstream.write_all(reader.buffer()).ok()?;
    pipe(client, upstream);
    Some(())
}

/// One SOCKS5 client (RFC 1928, RFC 1929).
fn socks5(mut c: TcpStream, auth: Option<&(String, String)>, st: &State) -> Option<()> {
    let mut hello = [0u8; 2];
    c.read_exact(&mut hello).ok()?;
    if hello[0] != 5 {
        return None;
    }
    let mut methods = vec![0u8; hello[1] as usize];
    c.read_exact(&mut methods).ok()?;
    let want = if auth.is_some() { 2 } else { 0 };
    if !methods.contains(&want) {
        let _ = c.write_all(&[5, 0xFF]);
        return None;
    }
    c.write_all(&[5, want]).ok()?;
    if let Some((user, pass)) = auth {
        let mut ver = [0u8; 2];
        c.read_exact(&mut ver).ok()?;
        let mut u = vec![0u8; ver[1] as usize];
        c.read_exact(&mut u).ok()?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen).ok()?;
        let mut p = vec![0u8; plen[0] as usize];
        c.read_exact(&mut p).ok()?;
        if ver[0] != 1 || u != user.as_bytes() || p != pass.as_bytes() {
            let _ = c.write_all(&[1, 1]);
            return None;
        }
        c.write_all(&[1, 0]).ok()?;
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req).ok()?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a).ok()?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            c.read_exact(&mut len).ok()?;
            let mut name = vec![0u8; len[0] as usize];
            c.read_exact(&mut name).ok()?;
            String::from_utf8(name).ok()?
        }
        4 => {
            let mut a = [0u8; 16];
            c.read_exact(&mut a).ok()?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        _ => return None,
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port).ok()?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    if req[0] != 5 || req[1] != 1 {
        // Only CONNECT: "command not supported".
        let _ = c.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
        return None;
    }
    let Some(upstream) = open(&target, st) else {
        // "Connection refused".
        let _ = c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
        return None;
    };
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).ok()?;
    pipe(c, upstream);
    Some(())
}
