//! The connection state machine driven in-process: a real event loop over one end
//! of a socket pair, the test playing the client on the other end, one loop turn
//! at a time. No process is forked and no signal handler installed.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream as Client;
use std::time::{Duration, Instant};

use mio::Events;

use super::{Server, Woken};
use crate::conn::Stream;
use crate::handler::{Handler, Lifecycle, Rejection};
use crate::limits::Limits;
use crate::request::{Peer, Request};
use crate::response::Response;
use crate::signals::WorkerSignals;

/// Answers `METHOD PATH BODY`; `/close` asks to close, `/panic` panics.
#[derive(Default)]
struct Echo {
    seen: Vec<String>,
}

impl Handler for Echo {
    fn handle(&mut self, req: &Request<'_>) -> Response {
        let body = String::from_utf8_lossy(req.body).into_owned();
        self.seen.push(format!("{} {}", req.method, req.path));
        if req.path == "/panic" {
            panic!("handler bug");
        }
        let mut r = Response::new(200).body(format!("{} {} {body}", req.method, req.path));
        r.close = req.path == "/close";
        r
    }

    fn reject(&mut self, rejection: Rejection, _head: Option<&Request<'_>>) -> Response {
        Response::new(rejection.status()).body(rejection.message())
    }
}

#[derive(Default)]
struct Life {
    retired: u32,
    draining: bool,
}

impl Lifecycle for Life {
    fn retire(&mut self) {
        self.retired += 1;
    }
    fn draining(&mut self) {
        self.draining = true;
    }
}

fn limits() -> Limits {
    Limits {
        request_line: 64,
        header_fields: 8,
        header_field_size: 128,
        max_body: 32,
        keep_alive: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// A server with no listener; connections are handed to it directly.
fn server<'a>(limits: Limits, h: &'a mut Echo, l: &'a mut Life) -> Server<'a, Echo, Life> {
    let signals = WorkerSignals::inert().unwrap();
    // Short waits keep idle turns quick.
    Server::new(Vec::new(), limits, Duration::from_millis(5), h, l, signals).unwrap()
}

/// A new client connection, already accepted by `s`, with `first` sent before
/// the server sees it (as data that arrives with the connection).
fn connect(s: &mut Server<'_, Echo, Life>, first: &[u8]) -> Client {
    let (mut client, theirs) = Client::pair().unwrap();
    client.write_all(first).unwrap();
    client.set_nonblocking(true).unwrap();
    theirs.set_nonblocking(true).unwrap();
    s.insert(
        Stream::Unix(mio::net::UnixStream::from_std(theirs)),
        Peer::Unix,
    );
    client
}

/// Runs `n` loop turns; true if the server finished (drained).
fn pump(s: &mut Server<'_, Echo, Life>, n: usize) -> bool {
    let mut events = Events::with_capacity(64);
    let mut woken: Vec<Woken> = Vec::new();
    (0..n).any(|_| s.turn(&mut events, &mut woken).unwrap())
}

/// What the client received so far, and whether the server closed its side.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    eof: bool,
}

impl Received {
    fn take(&mut self, c: &mut Client) {
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => self.bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => panic!("client read: {e}"),
            }
        }
    }

    /// The complete responses: (status, head, body).
    fn responses(&self) -> Vec<(u16, String, String)> {
        let mut out = Vec::new();
        let mut rest = &self.bytes[..];
        while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            let status = head[9..12].parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse().unwrap());
            let total = end + 4 + len;
            if rest.len() < total {
                break;
            }
            let body = String::from_utf8_lossy(&rest[end + 4..total]).into_owned();
            out.push((status, head, body));
            rest = &rest[total..];
        }
        out
    }
}

/// Turns the loop until `done` holds for what the client received (or gives up).
fn until(
    s: &mut Server<'_, Echo, Life>,
    c: &mut Client,
    r: &mut Received,
    done: impl Fn(&Received) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(r) && Instant::now() < deadline {
        pump(s, 1);
        r.take(c);
    }
}

fn responses(n: usize) -> impl Fn(&Received) -> bool {
    move |r| r.responses().len() >= n
}

fn closed(r: &Received) -> bool {
    r.eof
}

#[test]
fn keep_alive_serves_one_request_after_another_on_one_connection() {
    let (mut h, mut l) = Default::default();
    let mut s = server(limits(), &mut h, &mut l);
    let mut c = connect(&mut s, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(1));
    c.write_all(b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz")
        .unwrap();
    until(&mut s, &mut c, &mut r, responses(2));
    let got = r.responses();
    assert_eq!(got[0].2, "GET /a ");
    assert_eq!(got[1].2, "POST /b xyz");
    assert!(got.iter().all(|g| g.0 == 200 && !g.1.contains("close")));
    pump(&mut s, 3);
    r.take(&mut c);
    assert!(!r.eof, "a keep-alive connection stays open");
    assert_eq!(s.live, 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (mut h, mut l) = Default::default();
    let mut s = server(limits(), &mut h, &mut l);
    let mut c = connect(
        &mut s,
        b"GET /1 HTTP/1.1\r\n\r\n\
          POST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\
          POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          GET /4 HTTP/1.1\r\n\r\n",
    );
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(4));
    let bodies: Vec<String> = r.responses().into_iter().map(|g| g.2).collect();
    assert_eq!(bodies, ["GET /1 ", "POST /2 hi", "POST /3 abc", "GET /4 "]);
}

#[test]
fn a_pipelining_client_takes_its_turn_with_the_others() {
    let (mut h, mut l) = Default::default();
    {
        let mut s = server(limits(), &mut h, &mut l);
        let mut a = connect(
            &mut s,
            b"GET /a1 HTTP/1.1\r\n\r\nGET /a2 HTTP/1.1\r\n\r\nGET /a3 HTTP/1.1\r\n\r\n",
        );
        let mut b = connect(&mut s, b"GET /b1 HTTP/1.1\r\n\r\n");
        let (mut ra, mut rb) = (Received::default(), Received::default());
        until(&mut s, &mut a, &mut ra, responses(3));
        rb.take(&mut b);
        assert_eq!(rb.responses().len(), 1);
    }
    assert_eq!(h.seen, ["GET /a1", "GET /b1", "GET /a2", "GET /a3"]);
}

/// Sends `raw` on a fresh connection; the answer's status, and whether the
/// connection was then closed.
fn rejected(limits: Limits, raw: &[u8]) -> (u16, bool, Vec<String>) {
    let (mut h, mut l) = Default::default();
    let (status, eof) = {
        let mut s = server(limits, &mut h, &mut l);
        let mut c = connect(&mut s, raw);
        let mut r = Received::default();
        until(&mut s, &mut c, &mut r, closed);
        let got = r.responses();
        assert_eq!(got.len(), 1, "one answer, then nothing: {got:?}");
        assert!(got[0].1.contains("Connection: close"));
        (got[0].0, r.eof)
    };
    (status, eof, h.seen)
}

#[test]
fn head_limits_answer_and_close() {
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
    assert_eq!(rejected(limits(), long_line.as_bytes()).0, 414);
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(rejected(limits(), many.as_bytes()).0, 431);
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(200));
    assert_eq!(rejected(limits(), big.as_bytes()).0, 431);
}

#[test]
fn body_limits_answer_before_the_body_and_close() {
    let (status, eof, seen) = rejected(
        limits(),
        b"POST /big HTTP/1.1\r\nContent-Length: 33\r\n\r\n",
    );
    assert_eq!((status, eof), (413, true));
    assert!(seen.is_empty(), "the handler never saw it");
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n";
    assert_eq!(rejected(limits(), chunked).0, 413);
}

#[test]
fn after_a_malformed_request_nothing_more_is_served() {
    let (status, eof, seen) = rejected(limits(), b"GARBAGE\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
    assert_eq!((status, eof), (400, true));
    assert!(seen.is_empty());
}

#[test]
fn a_panicking_handler_is_answered_with_the_rejection_and_serving_goes_on() {
    let (mut h, mut l) = Default::default();
    {
        let mut s = server(limits(), &mut h, &mut l);
        let raw = b"GET /panic HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n";
        let mut c = connect(&mut s, raw);
        let mut r = Received::default();
        until(&mut s, &mut c, &mut r, responses(2));
        let got = r.responses();
        // The application's rejection decides whether the connection closes.
        assert_eq!((got[0].0, got[1].0), (500, 200));
        assert_eq!(got[1].2, "GET /after ");
    }
    assert_eq!(h.seen, ["GET /panic", "GET /after"]);
}

#[test]
fn expect_100_continue_is_sent_once_before_the_body() {
    let (mut h, mut l) = Default::default();
    let mut s = server(limits(), &mut h, &mut l);
    let head = b"PUT /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let mut c = connect(&mut s, head);
    let mut r = Received::default();
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    until(&mut s, &mut c, &mut r, |r| r.bytes.len() >= interim.len());
    assert_eq!(r.bytes, interim);
    pump(&mut s, 3);
    r.take(&mut c);
    assert_eq!(r.bytes, interim, "sent once");
    c.write_all(b"ab").unwrap();
    pump(&mut s, 3);
    c.write_all(b"cd").unwrap();
    r.bytes.clear();
    until(&mut s, &mut c, &mut r, responses(1));
    assert_eq!(r.responses()[0].2, "PUT /up abcd");
}

#[test]
fn no_100_continue_when_the_body_came_with_the_head() {
    let (mut h, mut l) = Default::default();
    let mut s = server(limits(), &mut h, &mut l);
    let raw = b"PUT /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
    let mut c = connect(&mut s, raw);
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(1));
    assert!(r.bytes.starts_with(b"HTTP/1.1 200 OK"));
}

#[test]
fn connection_close_and_http_1_0_close_after_the_answer() {
    for raw in [
        &b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        b"GET /x HTTP/1.0\r\n\r\n",
        b"GET /close HTTP/1.1\r\n\r\n",
    ] {
        let (mut h, mut l) = Default::default();
        let mut s = server(limits(), &mut h, &mut l);
        let mut c = connect(&mut s, raw);
        let mut r = Received::default();
        until(&mut s, &mut c, &mut r, closed);
        let got = r.responses();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 200);
        assert!(got[0].1.contains("Connection: close"));
        assert_eq!(s.live, 0);
    }
}

#[test]
fn http_1_0_keep_alive_is_kept_when_asked() {
    let (mut h, mut l) = Default::default();
    let mut s = server(limits(), &mut h, &mut l);
    let raw = b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let mut c = connect(&mut s, raw);
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(1));
    assert!(r.responses()[0].1.contains("Connection: keep-alive"));
    pump(&mut s, 3);
    r.take(&mut c);
    assert!(!r.eof);
}

#[test]
fn idle_keep_alive_connections_expire() {
    let (mut h, mut l) = Default::default();
    let mut s = server(
        Limits {
            keep_alive: Duration::from_millis(50),
            ..limits()
        },
        &mut h,
        &mut l,
    );
    let mut c = connect(&mut s, b"GET / HTTP/1.1\r\n\r\n");
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(1));
    assert!(!r.eof);
    until(&mut s, &mut c, &mut r, closed);
    assert!(r.eof);
    assert_eq!(s.live, 0);
}

#[test]
fn a_half_closed_client_is_answered_and_released() {
    let (mut h, mut l) = Default::default();
    let mut s = server(limits(), &mut h, &mut l);
    let mut c = connect(&mut s, b"GET /last HTTP/1.1\r\n\r\n");
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, closed);
    assert_eq!(r.responses()[0].2, "GET /last ");
    assert_eq!(s.live, 0);
}

#[test]
fn max_requests_asks_for_retirement_once_and_keeps_serving() {
    let (mut h, mut l) = Default::default();
    {
        let lim = Limits {
            max_requests: 2,
            ..limits()
        };
        let mut s = server(lim, &mut h, &mut l);
        let mut c = connect(&mut s, b"GET /1 HTTP/1.1\r\n\r\n".repeat(4).as_slice());
        let mut r = Received::default();
        until(&mut s, &mut c, &mut r, responses(4));
        assert!(!r.eof);
    }
    assert_eq!(l.retired, 1);
}

#[test]
fn draining_answers_with_close_and_ends_when_no_connection_is_left() {
    let (mut h, mut l) = Default::default();
    {
        let mut s = server(limits(), &mut h, &mut l);
        let mut c = connect(&mut s, b"GET /1 HTTP/1.1\r\n\r\n");
        let mut r = Received::default();
        until(&mut s, &mut c, &mut r, responses(1));
        s.signals.raise_drain();
        assert!(!pump(&mut s, 2), "a held connection keeps the worker");
        c.write_all(b"GET /2 HTTP/1.1\r\n\r\n").unwrap();
        let mut done = false;
        for _ in 0..50 {
            if pump(&mut s, 1) {
                done = true;
                break;
            }
        }
        assert!(done, "the worker finished once its last connection closed");
        r.take(&mut c);
        let got = r.responses();
        assert_eq!(got.len(), 2);
        assert!(!got[0].1.contains("Connection: close"));
        assert!(got[1].1.contains("Connection: close"));
        assert!(r.eof);
    }
    assert!(l.draining);
}
