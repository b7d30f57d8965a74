//! Responses and their serialisation into the connection's write buffer.

use std::borrow::Cow;

/// A response body.
#[derive(Debug, Clone, Default)]
pub enum Body {
    #[default]
    Empty,
    Static(&'static [u8]),
    Bytes(Vec<u8>),
}

impl Body {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::Static(b) => b,
            Body::Bytes(b) => b,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::with_capacity(4),
            body: Body::Empty,
            close: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::Bytes(v)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(s.into_bytes())
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Static(s.as_bytes())
    }
}

/// What the runtime adds to every response.
pub(crate) struct Framing<'a> {
    pub date: &'a str,
    /// Pre-rendered `Name: value\r\n` lines the application wants everywhere.
    pub common: &'a [u8],
    pub keep_alive: bool,
    /// HTTP/1.0 clients need an explicit `Connection: keep-alive`.
    pub http10: bool,
    pub head_only: bool,
}

/// Appends the status line, headers and (unless HEAD) body to `out`.
pub(crate) fn write_response(out: &mut Vec<u8>, r: &Response, f: &Framing<'_>) {
    let body = r.body.as_slice();
    out.reserve(256 + f.common.len() + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status_line(r.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: blitz\r\nDate: ");
    out.extend_from_slice(f.date.as_bytes());
    out.extend_from_slice(b"\r\n");
    // 204 and 304 carry no body and (RFC 9110 8.6) no Content-Length of their own.
    let bodiless = matches!(r.status, 204 | 304);
    if !bodiless {
        out.extend_from_slice(b"Content-Length: ");
        let mut num = [0u8; 20];
        out.extend_from_slice(fmt_usize(body.len(), &mut num));
        out.extend_from_slice(b"\r\n");
    }
    if !f.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if f.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(f.common);
    for (name, value) in &r.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        // A line break in a value (e.g. from a redirect target a client chose)
        // would start a header of the client's own: it becomes a space.
        out.extend(
            value
                .bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !f.head_only && !bodiless {
        out.extend_from_slice(body);
    }
}

fn fmt_usize(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// "200 OK" and friends; unknown codes get a generic phrase by class.
pub fn status_line(code: u16) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        100 => "100 Continue",
        200 => "200 OK",
        201 => "201 Created",
        202 => "202 Accepted",
        204 => "204 No Content",
        301 => "301 Moved Permanently",
        302 => "302 Found",
        303 => "303 See Other",
        304 => "304 Not Modified",
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        408 => "408 Request Timeout",
        409 => "409 Conflict",
        411 => "411 Length Required",
        413 => "413 Content Too Large",
        414 => "414 URI Too Long",
        415 => "415 Unsupported Media Type",
        417 => "417 Expectation Failed",
        422 => "422 Unprocessable Content",
        429 => "429 Too Many Requests",
        431 => "431 Request Header Fields Too Large",
        500 => "500 Internal Server Error",
        501 => "501 Not Implemented",
        502 => "502 Bad Gateway",
        503 => "503 Service Unavailable",
        504 => "504 Gateway Timeout",
        505 => "505 HTTP Version Not Supported",
        _ => return Cow::Owned(format!("{code} {}", class_phrase(code))),
    })
}

fn class_phrase(code: u16) -> &'static str {
    match code / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        _ => "Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(r: &Response, keep_alive: bool, head_only: bool) -> String {
        let mut out = Vec::new();
        let f = Framing {
            date: "D",
            common: b"X-A: 1\r\n",
            keep_alive,
            http10: false,
            head_only,
        };
        write_response(&mut out, r, &f);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn serialises_with_length_and_common_headers() {
        let r = Response::new(404).header("X-B", "2").body("nope");
        let s = render(&r, false, false);
        assert_eq!(
            s,
            "HTTP/1.1 404 Not Found\r\nServer: blitz\r\nDate: D\r\nContent-Length: 4\r\n\
             Connection: close\r\nX-A: 1\r\nX-B: 2\r\n\r\nnope"
        );
    }

    #[test]
    fn head_keeps_length_but_drops_body() {
        let r = Response::new(200).body("hello");
        let s = render(&r, true, true);
        assert!(s.contains("Content-Length: 5\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
        assert!(!s.contains("Connection:"));
    }

    #[test]
    fn no_content_has_neither_length_nor_body() {
        let r = Response::new(204).body("ignored");
        let s = render(&r, true, false);
        assert!(!s.contains("Content-Length"), "{s}");
        assert!(s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_line_break_in_a_header_value_cannot_start_a_header() {
        let r = Response::new(303).header("Location", "/\r\nSet-Cookie: x=1");
        let s = render(&r, true, false);
        assert!(s.contains("Location: /  Set-Cookie: x=1\r\n"), "{s}");
        assert!(!s.contains("\nSet-Cookie"));
    }

    #[test]
    fn status_phrases() {
        assert_eq!(status_line(200), "200 OK");
        assert_eq!(status_line(431), "431 Request Header Fields Too Large");
        assert_eq!(status_line(299), "299 Success");
    }
}
