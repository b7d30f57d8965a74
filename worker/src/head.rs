//! Parsing and validating a request head under the configured limits.

use httparse::{Header, Status};

use crate::handler::Rejection;
use crate::limits::Limits;
use crate::request::{split_target, Version};
use crate::token::trim_ows;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug)]
pub(crate) struct Head<'b, 'h> {
    pub method: &'b str,
    pub path: &'b str,
    pub query: &'b str,
    pub version: Version,
    pub headers: &'h [Header<'b>],
    /// Bytes of the head including the final CRLF.
    pub len: usize,
    pub body: BodyKind,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

/// Parses a request head at the start of `buf` into `headers`.
/// `Ok(None)` means more bytes are needed.
pub(crate) fn parse<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    limits: &Limits,
) -> Result<Option<Head<'b, 'h>>, Rejection> {
    check_request_line(buf, limits.line())?;
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        // The same bound as for a head still arriving, so that a head's fate does not
        // depend on whether it came in one read or many.
        Ok(Status::Complete(n)) if n > limits.max_head() => {
            return Err(Rejection::HeaderFieldsTooLarge)
        }
        Ok(Status::Complete(n)) => n,
        Ok(Status::Partial) if buf.len() > limits.max_head() => {
            return Err(Rejection::HeaderFieldsTooLarge)
        }
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Rejection::HeaderFieldsTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(Rejection::BadRequest("malformed request head")),
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method = req.method.unwrap_or("");
    let (path, query) =
        split_target(req.path.unwrap_or("")).ok_or(Rejection::BadRequest("bad request target"))?;
    let headers: &'h [Header<'b>] = req.headers;
    let field_max = limits.field_size();
    if headers
        .iter()
        .any(|h| h.name.len() + h.value.len() > field_max)
    {
        return Err(Rejection::HeaderFieldsTooLarge);
    }
    let fields = scan(headers, version)?;
    let body = body_kind(&fields)?;
    check_host(&fields, version)?;
    let (keep_alive, expect_continue) = connection_flags(&fields, version);
    Ok(Some(Head {
        method,
        path,
        query,
        version,
        headers,
        len,
        body,
        keep_alive,
        expect_continue,
    }))
}

/// 414 when the request line (up to its LF) is longer than `limit`.
fn check_request_line(buf: &[u8], limit: usize) -> Result<(), Rejection> {
    let window = &buf[..buf.len().min(limit.saturating_add(2))];
    match window.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let line = if i > 0 && window[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            if line > limit {
                return Err(Rejection::UriTooLong);
            }
            Ok(())
        }
        None if buf.len() > limit.saturating_add(1) => Err(Rejection::UriTooLong),
        None => Ok(()),
    }
}

/// httparse only knows 1.0 and 1.1; anything that looks like another HTTP version is
/// 505, the rest is malformed.
fn version_error(buf: &[u8]) -> Rejection {
    let line_end = buf
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(buf.len());
    let line = &buf[..line_end];
    match line.rsplit(|b| *b == b' ').next() {
        Some(v) if v.starts_with(b"HTTP/") && v.len() == 8 => Rejection::VersionNotSupported,
        _ => Rejection::BadRequest("malformed request line"),
    }
}

/// What the header fields say about framing and the connection, read in one pass.
#[derive(Default)]
struct Fields {
    length: Option<u64>,
    chunked: bool,
    /// The codings of every Transfer-Encoding field, as one list: how many, and
    /// whether one is not `chunked`.
    codings: usize,
    other_coding: bool,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

fn scan(headers: &[Header<'_>], version: Version) -> Result<Fields, Rejection> {
    let mut f = Fields::default();
    for h in headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            f.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let v = parse_length(h.value)?;
            if f.length.is_some_and(|l| l != v) {
                return Err(Rejection::BadRequest("conflicting Content-Length"));
            }
            f.length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if version == Version::Http10 {
                return Err(Rejection::BadRequest("Transfer-Encoding in HTTP/1.0"));
            }
            add_codings(&mut f, h.value)?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|b| *b == b',') {
                let t = trim_ows(token);
                f.close |= t.eq_ignore_ascii_case(b"close");
                f.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            f.expect_continue = trim_ows(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    // Repeated fields are one comma-separated list (RFC 9110 5.3): two
    // `Transfer-Encoding: chunked` fields say `chunked, chunked`, not `chunked`.
    f.chunked = match (f.codings, f.other_coding) {
        (0, _) => false,
        (1, false) => true,
        _ => return Err(Rejection::NotImplemented),
    };
    Ok(f)
}

/// The body's framing; both framings at once is how requests are smuggled, so it
/// is refused (RFC 9112 6.3).
fn body_kind(f: &Fields) -> Result<BodyKind, Rejection> {
    match (f.chunked, f.length) {
        (true, Some(_)) => Err(Rejection::BadRequest(
            "Content-Length with Transfer-Encoding",
        )),
        (true, None) => Ok(BodyKind::Chunked),
        (false, Some(0)) | (false, None) => Ok(BodyKind::None),
        (false, Some(n)) => Ok(BodyKind::Length(n)),
    }
}

/// HTTP/1.1 names its host exactly once (RFC 9112 3.2); HTTP/1.0 need not.
fn check_host(f: &Fields, version: Version) -> Result<(), Rejection> {
    match (version, f.hosts) {
        (Version::Http10, _) | (Version::Http11, 1) => Ok(()),
        (Version::Http11, 0) => Err(Rejection::BadRequest("missing Host header")),
        (Version::Http11, _) => Err(Rejection::BadRequest("more than one Host header")),
    }
}

/// (keep-alive, expect 100-continue): HTTP/1.1 keeps the connection unless told to
/// close; HTTP/1.0 only when asked.
fn connection_flags(f: &Fields, version: Version) -> (bool, bool) {
    let keep_alive = !f.close && (version == Version::Http11 || f.keep_alive);
    (keep_alive, f.expect_continue && version == Version::Http11)
}

fn parse_length(v: &[u8]) -> Result<u64, Rejection> {
    let v = trim_ows(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::BadRequest("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0')))
}

/// Adds one Transfer-Encoding field's codings to `f`'s list, of which only
/// `chunked` alone is supported (any other list → 501, decided once every field is
/// read). Codings are compared byte for byte as ASCII tokens.
fn add_codings(f: &mut Fields, v: &[u8]) -> Result<(), Rejection> {
    let before = f.codings;
    for c in v.split(|b| *b == b',').map(trim_ows) {
        if !c.is_empty() {
            f.codings += 1;
            f.other_coding |= !c.eq_ignore_ascii_case(b"chunked");
        }
    }
    if f.codings == before {
        return Err(Rejection::BadRequest("empty Transfer-Encoding"));
    }
    Ok(())
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raw: &[u8]) -> Result<Option<(BodyKind, bool, bool, String)>, Rejection> {
        let limits = Limits {
            request_line: 40,
            header_fields: 3,
            header_field_size: 30,
            ..Limits::default()
        };
        let mut hs = [httparse::EMPTY_HEADER; 3];
        parse(raw, &mut hs, &limits).map(|o| {
            o.map(|h| {
                (
                    h.body,
                    h.keep_alive,
                    h.expect_continue,
                    format!("{} {} {}", h.method, h.path, h.query),
                )
            })
        })
    }

    #[test]
    fn parses_simple_requests() {
        let r = run(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r, (BodyKind::None, true, false, "GET /a b=1".into()));
        let r = run(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.1, "HTTP/1.0 closes by default");
        let r = run(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.1);
        let r =
            run(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((r.0, r.2), (BodyKind::Length(5), true));
        assert_eq!(
            run(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().map(|_| ()),
            None
        );
    }

    #[test]
    fn enforces_limits() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(60));
        assert_eq!(run(long.as_bytes()).unwrap_err(), Rejection::UriTooLong);
        assert_eq!(run(&[b'G'; 50]).unwrap_err(), Rejection::UriTooLong);
        let many = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        assert_eq!(run(many).unwrap_err(), Rejection::HeaderFieldsTooLarge);
        let big = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "v".repeat(40));
        assert_eq!(
            run(big.as_bytes()).unwrap_err(),
            Rejection::HeaderFieldsTooLarge
        );
    }

    #[test]
    fn head_size_limit_does_not_depend_on_reads() {
        // Blanks around a value count toward no field size, only toward the head.
        let raw = format!("GET / HTTP/1.1\r\nA:{}b\r\n\r\n", " ".repeat(400));
        let limits = Limits {
            request_line: 40,
            header_fields: 3,
            header_field_size: 30,
            ..Limits::default()
        };
        assert!(raw.len() > limits.max_head());
        let mut hs = [httparse::EMPTY_HEADER; 3];
        let prefix = parse(&raw.as_bytes()[..limits.max_head() + 1], &mut hs, &limits);
        assert_eq!(prefix.map(|_| ()), Err(Rejection::HeaderFieldsTooLarge));
        let mut hs = [httparse::EMPTY_HEADER; 3];
        let whole = parse(raw.as_bytes(), &mut hs, &limits);
        assert_eq!(whole.map(|_| ()), Err(Rejection::HeaderFieldsTooLarge));
    }

    #[test]
    fn refuses_ambiguous_framing() {
        let both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(run(both), Err(Rejection::BadRequest(_))));
        let two = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert!(matches!(run(two), Err(Rejection::BadRequest(_))));
        let neg = b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        assert!(matches!(run(neg), Err(Rejection::BadRequest(_))));
        let gz = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(run(gz).unwrap_err(), Rejection::NotImplemented);
        assert!(matches!(
            run(b"GET / HTTP/2.0\r\n\r\n"),
            Err(Rejection::VersionNotSupported)
        ));
        assert!(matches!(
            run(b"GET nope HTTP/1.1\r\n\r\n"),
            Err(Rejection::BadRequest(_))
        ));
        assert!(matches!(
            run(b"\x01\x02 / HTTP/1.1\r\n\r\n"),
            Err(Rejection::BadRequest(_))
        ));
    }

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        let missing = run(b"GET / HTTP/1.1\r\nA: 1\r\n\r\n").unwrap_err();
        assert_eq!(missing, Rejection::BadRequest("missing Host header"));
        let twice = run(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n").unwrap_err();
        assert_eq!(twice, Rejection::BadRequest("more than one Host header"));
        assert!(run(b"GET / HTTP/1.1\r\nHOST: a\r\n\r\n").unwrap().is_some());
        assert!(run(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
        assert!(run(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")
            .unwrap()
            .is_some());
    }

    #[test]
    fn transfer_codings_are_ascii_tokens() {
        let te = |v: &[u8]| {
            let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ".to_vec();
            raw.extend_from_slice(v);
            raw.extend_from_slice(b"\r\n\r\n");
            run(&raw).map(|o| o.map(|h| h.0))
        };
        assert_eq!(te(b"chunked"), Ok(Some(BodyKind::Chunked)));
        assert_eq!(te(b" \tChunked\t "), Ok(Some(BodyKind::Chunked)));
        assert_eq!(te(b"chunked, "), Ok(Some(BodyKind::Chunked)));
        // A no-break space is not whitespace to HTTP: not `chunked`, so 501.
        assert_eq!(te(b"chunked\xC2\xA0"), Err(Rejection::NotImplemented));
        assert_eq!(te(b"\xC2\xA0chunked"), Err(Rejection::NotImplemented));
        assert_eq!(te(b"chunked\xFF"), Err(Rejection::NotImplemented));
        assert_eq!(te(b"gzip, chunked"), Err(Rejection::NotImplemented));
        assert_eq!(te(b"chunked,x"), Err(Rejection::NotImplemented));
        assert!(matches!(te(b" , "), Err(Rejection::BadRequest(_))));
        // Repeated fields make one list: `chunked, chunked` is not `chunked`.
        assert_eq!(
            te(b"chunked\r\nTransfer-Encoding: chunked"),
            Err(Rejection::NotImplemented)
        );
        assert_eq!(
            te(b"gzip\r\ntransfer-encoding: chunked"),
            Err(Rejection::NotImplemented)
        );
        assert_eq!(
            te(b"chunked\r\nTransfer-Encoding: gzip"),
            Err(Rejection::NotImplemented)
        );
    }
}
