//! The client's address: the TCP peer, or — when the peer is a trusted proxy — the
//! right-most `X-Forwarded-For` hop that is not itself a trusted proxy.

use std::net::IpAddr;

use blitz_worker::{trim_ows_str, Peer, Request};

use crate::config::TrustedProxies;

/// Resolves the client IP of `req` as text (for logs and rate-limit keys).
pub fn client_ip(req: &Request<'_>, trusted: &TrustedProxies) -> String {
    let peer = match req.peer {
        Peer::Tcp(a) => Some(canonical(a.ip())),
        // A Unix-socket peer is a local process (the reverse proxy): trusted.
        Peer::Unix => None,
    };
    if peer.is_some_and(|ip| !trusted.trusts(ip)) {
        return peer.map(|ip| ip.to_string()).unwrap_or_default();
    }
    if let Some(ip) = from_forwarded_for(req, trusted) {
        return ip.to_string();
    }
    if let Some(ip) = req
        .header_str("x-real-ip")
        .and_then(|v| trim_ows_str(v).parse::<IpAddr>().ok())
    {
        return canonical(ip).to_string();
    }
    peer.map_or_else(|| "unix".to_string(), |ip| ip.to_string())
}

fn from_forwarded_for(req: &Request<'_>, trusted: &TrustedProxies) -> Option<IpAddr> {
    // Several headers are one list, in order (RFC 9110 5.3).
    let hops: Vec<&str> = req
        .header_all("x-forwarded-for")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(trim_ows_str)
        .collect();
    let mut leftmost = None;
    for hop in hops.iter().rev() {
        // A hop we cannot read ends the walk: anything left of it could be forged.
        let ip = canonical(hop.parse::<IpAddr>().ok()?);
        if !trusted.trusts(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

/// `::ffff:1.2.3.4` → `1.2.3.4`, so both spellings of one client are one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the client reached us over HTTPS: we do not terminate TLS, so only a
/// trusted proxy's `X-Forwarded-Proto: https` says so (for `CSRF_SSL_STRICT`).
pub fn forwarded_https(req: &Request<'_>, trusted: &TrustedProxies) -> bool {
    let peer_trusted = match req.peer {
        Peer::Tcp(a) => trusted.trusts(canonical(a.ip())),
        Peer::Unix => true,
    };
    // The proxy nearest to us appends last; its value is the one we can trust.
    peer_trusted
        && req
            .header_str("x-forwarded-proto")
            .and_then(|v| v.split(',').next_back())
            .is_some_and(|p| trim_ows_str(p).eq_ignore_ascii_case("https"))
}
