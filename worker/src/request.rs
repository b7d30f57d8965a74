//! A parsed request, borrowing from the connection's buffer.

use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// The TCP peer, or a Unix-socket client (a local proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix,
}

pub struct Request<'a> {
    pub method: &'a str,
    /// The path, without query string (origin-form; absolute-form is reduced to it).
    pub path: &'a str,
    /// The query string without `?`, possibly empty.
    pub query: &'a str,
    pub version: Version,
    pub headers: &'a [httparse::Header<'a>],
    pub body: &'a [u8],
    pub peer: Peer,
}

impl<'a> Request<'a> {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The first header named `name` as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of headers named `name`, in order.
    pub fn header_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Splits a request target into (path, query), reducing absolute-form
/// (`http://host/p?q`) to origin-form. `None` if the target is not usable.
pub(crate) fn split_target(target: &str) -> Option<(&str, &str)> {
    let origin = if target.starts_with('/') || target == "*" {
        target
    } else {
        let rest = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))?;
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    };
    Some(match origin.split_once('?') {
        Some((p, q)) => (p, q),
        None => (origin, ""),
    })
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn targets() {
        assert_eq!(split_target("/a/b?x=1"), Some(("/a/b", "x=1")));
        assert_eq!(split_target("/"), Some(("/", "")));
        assert_eq!(split_target("http://h:1/p?q"), Some(("/p", "q")));
        assert_eq!(split_target("http://h"), Some(("/", "")));
        assert_eq!(split_target("*"), Some(("*", "")));
        assert_eq!(split_target("nope"), None);
    }
}
