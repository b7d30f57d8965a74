//! A per-account egress proxy (docs/bots.md, Proxies): the exchange sees the
//! proxy's address, which is what a key's IP whitelist needs when the server's own
//! address is shared or changes.
//!
//! Two kinds, written as URLs: `http://[user:pass@]host:port` — an HTTP proxy
//! that opens tunnels with `CONNECT` (RFC 9110 §9.3.6, credentials as
//! `Proxy-Authorization: Basic`, RFC 7617) — and `socks5://[user:pass@]host:port`
//! (RFC 1928, with the username/password method of RFC 1929; the target is sent as
//! a domain name, so the proxy resolves it and the exchange's DNS answer is the
//! proxy's).
//!
//! REST goes through the proxy with ureq's own support (`to_ureq`); `dial` opens a
//! tunnelled TCP stream for what ureq does not carry (WebSockets). A proxy's
//! credentials are secrets: `Debug` and `Display` show only the scheme and
//! `host:port`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::secrets::SecretKey;

/// How the proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// An HTTP proxy, tunnelling with `CONNECT`.
    Http,
    /// A SOCKS5 proxy.
    Socks5,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Socks5 => "socks5",
        }
    }
}

/// A parsed proxy URL. Compare, clone and print freely: printing hides the
/// credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    scheme: Scheme,
    host: String,
    port: u16,
    /// User name and password, both non-empty.
    auth: Option<(String, String)>,
}

/// Why a proxy URL was refused; the text is the API's field message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("must start with http:// (an HTTP CONNECT proxy) or socks5://")]
    Scheme,
    #[error("must be scheme://[user:password@]host:port with nothing after the port")]
    Shape,
    #[error("needs a host name or an IPv4 address")]
    Host,
    #[error("needs a port from 1 to 65535")]
    Port,
    #[error(
        "credentials must be user:password, each 1 to 255 characters without '@', '/' or spaces"
    )]
    Credentials,
    /// A stored proxy that no longer opens (the instance key changed).
    #[error("the stored proxy cannot be read (was SECRET_KEY changed?); set it again")]
    Unreadable,
}

/// The longest URL accepted: a host name (253) and two credentials (255 each)
/// with room to spare; anything longer is not a proxy address.
const MAX_URL: usize = 800;

/// Parses `http://[user:pass@]host:port` or `socks5://[user:pass@]host:port`
/// (one trailing `/` allowed). IPv6 literals are refused: ureq's proxy parser
/// cannot read them.
pub fn parse(s: &str) -> Result<Proxy, ProxyError> {
    if s.len() > MAX_URL || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProxyError::Shape);
    }
    let (scheme, rest) = if let Some(r) = strip_prefix_ci(s, "http://") {
        (Scheme::Http, r)
    } else if let Some(r) = strip_prefix_ci(s, "socks5://") {
        (Scheme::Socks5, r)
    } else {
        return Err(ProxyError::Scheme);
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(ProxyError::Shape);
    }
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((creds, hp)) => (Some(credentials(creds)?), hp),
        None => (None, rest),
    };
    let (host, port) = hostport.rsplit_once(':').ok_or(ProxyError::Port)?;
    if !valid_host(host) {
        return Err(ProxyError::Host);
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(ProxyError::Port),
    };
    Ok(Proxy {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        auth,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn credentials(creds: &str) -> Result<(String, String), ProxyError> {
    let (user, pass) = creds.split_once(':').ok_or(ProxyError::Credentials)?;
    // RFC 1929: each is 1 to 255 bytes.
    let ok = |v: &str| (1..=255).contains(&v.len()) && !v.contains(['@', '/']);
    if !ok(user) || !ok(pass) || user.contains(':') {
        return Err(ProxyError::Credentials);
    }
    Ok((user.to_string(), pass.to_string()))
}

/// A DNS name (letters, digits, `-`, `.`; labels of 1 to 63) or an IPv4 address.
fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    host.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

impl Proxy {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn has_credentials(&self) -> bool {
        self.auth.is_some()
    }

    /// The whole URL, credentials included: only for sealing and for ureq.
    pub fn url(&self) -> String {
        match &self.auth {
            Some((u, p)) => format!(
                "{}://{u}:{p}@{}:{}",
                self.scheme.as_str(),
                self.host,
                self.port
            ),
            None => format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port),
        }
    }

    /// `Basic …` for an HTTP proxy with credentials (RFC 7617).
    pub fn basic_authorization(&self) -> Option<String> {
        match (&self.auth, self.scheme) {
            (Some((u, p)), Scheme::Http) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            _ => None,
        }
    }

    /// What the API and the logs show: `socks5://host:port`, never credentials.
    pub fn shown(&self) -> String {
        format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }

    /// The same proxy for ureq's agent (REST). ureq tunnels HTTPS through an
    /// HTTP proxy with `CONNECT`; a plain-`http` target (a local test double) is
    /// sent to the proxy in absolute form instead.
    pub fn to_ureq(&self) -> Result<ureq::Proxy, ProxyError> {
        ureq::Proxy::new(self.url()).map_err(|_| ProxyError::Shape)
    }
}

/// Where a user's proxy is sealed: bound to its owner as their keys are.
fn seal_context(user_id: i64) -> String {
    format!("user:{user_id}:proxy")
}

impl Proxy {
    /// The whole URL sealed for user `user_id` (credentials are secrets).
    pub fn seal(&self, key: &SecretKey, user_id: i64) -> String {
        key.seal(&self.url(), &seal_context(user_id))
    }
}

/// Opens a proxy sealed by [`Proxy::seal`] for user `user_id`.
pub fn open(key: &SecretKey, user_id: i64, sealed: &str) -> Result<Proxy, ProxyError> {
    let url = key
        .open(sealed, &seal_context(user_id))
        .map_err(|_| ProxyError::Unreadable)?;
    parse(&url)
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let creds = if self.auth.is_some() {
            " (credentials hidden)"
        } else {
            ""
        };
        write!(f, "Proxy({}{creds})", self.shown())
    }
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// A TCP stream to `host:port`, through `proxy` when there is one, all of it
/// (connect and handshake) within `timeout`. The stream comes back without read
/// or write timeouts: the caller sets its own.
pub fn dial(
    proxy: Option<&Proxy>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let by = Instant::now() + timeout;
    let Some(proxy) = proxy else {
        return connect(host, port, by);
    };
    let mut s = connect(&proxy.host, proxy.port, by)?;
    let shook = match proxy.scheme {
        Scheme::Http => connect_handshake(&mut s, proxy, host, port, by),
        Scheme::Socks5 => socks5_handshake(&mut s, proxy, host, port, by),
    };
    shook.map_err(|e| io::Error::new(e.kind(), format!("proxy {proxy}: {e}")))?;
    s.set_read_timeout(None)?;
    s.set_write_timeout(None)?;
    Ok(s)
}

fn left(by: Instant) -> io::Result<Duration> {
    let d = by.saturating_duration_since(Instant::now());
    if d.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    Ok(d)
}

/// The first address of `host:port` that accepts, before `by`.
fn connect(host: &str, port: u16, by: Instant) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(by)?) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Every read and write of a handshake ends by `by`.
fn bound(s: &TcpStream, by: Instant) -> io::Result<()> {
    let d = left(by)?;
    s.set_read_timeout(Some(d))?;
    s.set_write_timeout(Some(d))
}

fn send(s: &mut TcpStream, bytes: &[u8], by: Instant) -> io::Result<()> {
    bound(s, by)?;
    s.write_all(bytes)?;
    s.flush()
}

fn receive(s: &mut TcpStream, buf: &mut [u8], by: Instant) -> io::Result<()> {
    bound(s, by)?;
    s.read_exact(buf)
}

fn refused(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, msg)
}

/// The `CONNECT` request for `host:port` (bytes as sent).
pub(crate) fn connect_request(proxy: &Proxy, host: &str, port: u16) -> String {
    let mut req = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some(auth) = proxy.basic_authorization() {
        req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// The longest proxy answer head read before giving up on it.
const MAX_HEAD: usize = 8192;

fn connect_handshake(
    s: &mut TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
    by: Instant,
) -> io::Result<()> {
    send(s, connect_request(proxy, host, port).as_bytes(), by)?;
    // Byte by byte: what follows the head is the tunnel's, not ours to consume.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(refused("an answer head without end".into()));
        }
        receive(s, &mut byte, by)?;
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") || !code.starts_with('2') || code.len() != 3 {
        return Err(refused(format!("CONNECT answered {status_line:?}")));
    }
    Ok(())
}

/// The SOCKS5 greeting: version 5 and the methods offered (no authentication,
/// and username/password when there are credentials).
pub(crate) fn socks5_greeting(proxy: &Proxy) -> Vec<u8> {
    match proxy.auth {
        Some(_) => vec![5, 2, 0, 2],
        None => vec![5, 1, 0],
    }
}

/// The RFC 1929 username/password request.
pub(crate) fn socks5_auth(user: &str, pass: &str) -> Vec<u8> {
    let mut m = vec![1, user.len() as u8];
    m.extend_from_slice(user.as_bytes());
    m.push(pass.len() as u8);
    m.extend_from_slice(pass.as_bytes());
    m
}

/// The CONNECT request: an IPv4 address as such, anything else as a domain name.
pub(crate) fn socks5_connect(host: &str, port: u16) -> io::Result<Vec<u8>> {
    let mut m = vec![5, 1, 0];
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        m.push(1);
        m.extend_from_slice(&ip.octets());
    } else {
        let len = u8::try_from(host.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "host name too long"))?;
        m.extend_from_slice(&[3, len]);
        m.extend_from_slice(host.as_bytes());
    }
    m.extend_from_slice(&port.to_be_bytes());
    Ok(m)
}

fn socks5_handshake(
    s: &mut TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
    by: Instant,
) -> io::Result<()> {
    send(s, &socks5_greeting(proxy), by)?;
    let mut choice = [0u8; 2];
    receive(s, &mut choice, by)?;
    match (choice, &proxy.auth) {
        ([5, 0], _) => {}
        ([5, 2], Some((u, p))) => {
            send(s, &socks5_auth(u, p), by)?;
            let mut status = [0u8; 2];
            receive(s, &mut status, by)?;
            if status[1] != 0 {
                return Err(refused("SOCKS5 refused the user name or password".into()));
            }
        }
        ([5, 0xFF], _) => return Err(refused("SOCKS5 accepts none of our methods".into())),
        (other, _) => return Err(refused(format!("SOCKS5 greeting answered {other:?}"))),
    }
    send(s, &socks5_connect(host, port)?, by)?;
    let mut reply = [0u8; 4];
    receive(s, &mut reply, by)?;
    if reply[0] != 5 {
        return Err(refused(format!("not a SOCKS5 reply: {reply:?}")));
    }
    if reply[1] != 0 {
        return Err(refused(format!(
            "SOCKS5 CONNECT failed: {}",
            socks5_reply(reply[1])
        )));
    }
    // The bound address, which we do not need, then the port.
    let addr_len = match reply[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut n = [0u8; 1];
            receive(s, &mut n, by)?;
            usize::from(n[0])
        }
        t => return Err(refused(format!("SOCKS5 address type {t}"))),
    };
    let mut rest = vec![0u8; addr_len + 2];
    receive(s, &mut rest, by)
}

/// RFC 1928 §6 reply codes.
fn socks5_reply(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

#[cfg(test)]
mod tests;
