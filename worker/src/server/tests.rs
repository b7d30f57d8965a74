//! The connection state machine driven in-process: a real event loop over one end
//! of a socket pair, the test playing the client on the other end, one loop turn
//! at a time. No process is forked and no signal handler installed.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream as Client;
use std::time::{Duration, Instant};

use mio::Events;

use super::{Listener, Server, Woken};
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
    fn take(&mut self, c: &mut impl Read) {
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
    c: &mut impl Read,
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
    c.write_all(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz")
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
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\
          POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          GET /4 HTTP/1.1\r\nHost: x\r\n\r\n",
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
            b"GET /a1 HTTP/1.1\r\nHost: x\r\n\r\nGET /a2 HTTP/1.1\r\nHost: x\r\n\r\nGET /a3 HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let mut b = connect(&mut s, b"GET /b1 HTTP/1.1\r\nHost: x\r\n\r\n");
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
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100));
    assert_eq!(rejected(limits(), long_line.as_bytes()).0, 414);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(rejected(limits(), many.as_bytes()).0, 431);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "v".repeat(200)
    );
    assert_eq!(rejected(limits(), big.as_bytes()).0, 431);
}

#[test]
fn body_limits_answer_before_the_body_and_close() {
    let (status, eof, seen) = rejected(
        limits(),
        b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n",
    );
    assert_eq!((status, eof), (413, true));
    assert!(seen.is_empty(), "the handler never saw it");
    let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n";
    assert_eq!(rejected(limits(), chunked).0, 413);
}

#[test]
fn after_a_malformed_request_nothing_more_is_served() {
    let (status, eof, seen) = rejected(
        limits(),
        b"GARBAGE\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!((status, eof), (400, true));
    assert!(seen.is_empty());
}

#[test]
fn a_panicking_handler_is_answered_with_the_rejection_and_serving_goes_on() {
    let (mut h, mut l) = Default::default();
    {
        let mut s = server(limits(), &mut h, &mut l);
        let raw = b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n";
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
    let head = b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
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
    let raw = b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
    let mut c = connect(&mut s, raw);
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(1));
    assert!(r.bytes.starts_with(b"HTTP/1.1 200 OK"));
}

#[test]
fn connection_close_and_http_1_0_close_after_the_answer() {
    for raw in [
        &b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /x HTTP/1.0\r\n\r\n",
        b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n",
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
    let mut c = connect(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
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
    let mut c = connect(&mut s, b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n");
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
        let mut c = connect(
            &mut s,
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4).as_slice(),
        );
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
        let mut c = connect(&mut s, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut r = Received::default();
        until(&mut s, &mut c, &mut r, responses(1));
        s.signals.raise_drain();
        assert!(!pump(&mut s, 2), "a held connection keeps the worker");
        c.write_all(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
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

fn timeouts(header_ms: u64, body_ms: u64) -> Limits {
    Limits {
        header_timeout: Duration::from_millis(header_ms),
        body_timeout: Duration::from_millis(body_ms),
        ..limits()
    }
}

/// Runs the loop until `done` holds for what the client received, writing one
/// byte of `trickle` every 10 ms meanwhile (a slow client).
fn trickle(
    s: &mut Server<'_, Echo, Life>,
    c: &mut Client,
    r: &mut Received,
    trickle: &[u8],
    done: impl Fn(&Received) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut next = Instant::now();
    let mut bytes = trickle.iter().cycle();
    while !done(r) && Instant::now() < deadline {
        if Instant::now() >= next {
            // Ignored once the server has closed: the client is just slow.
            let _ = c.write_all(&[*bytes.next().unwrap_or(&b'a')]);
            next += Duration::from_millis(10);
        }
        pump(s, 1);
        r.take(c);
    }
}

#[test]
fn a_head_not_complete_within_the_header_timeout_gets_408_and_is_closed() {
    let (mut h, mut l) = Default::default();
    let mut s = server(timeouts(150, 5000), &mut h, &mut l);
    let started = Instant::now();
    let mut c = connect(&mut s, b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let mut r = Received::default();
    // Bytes keep coming, but the timer runs from the first one.
    trickle(&mut s, &mut c, &mut r, b"abcdefgh", closed);
    let got = r.responses();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 408);
    assert!(got[0].1.contains("Connection: close"));
    assert!(r.eof);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(s);
    assert!(h.seen.is_empty());
}

#[test]
fn a_silent_new_connection_is_closed_after_the_header_timeout_without_an_answer() {
    let (mut h, mut l) = Default::default();
    let mut s = server(timeouts(100, 5000), &mut h, &mut l);
    let mut c = connect(&mut s, b"");
    let mut r = Received::default();
    // Empty lines before a request are allowed, but do not keep it open.
    trickle(&mut s, &mut c, &mut r, b"\r\n", closed);
    assert!(r.eof);
    assert!(
        r.bytes.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(s.live, 0);
}

#[test]
fn an_idle_keep_alive_connection_lives_by_keep_alive_not_header_timeout() {
    let (mut h, mut l) = Default::default();
    let mut s = server(timeouts(50, 5000), &mut h, &mut l);
    let mut c = connect(&mut s, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(1));
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_millis(300) {
        pump(&mut s, 1);
    }
    r.take(&mut c);
    assert!(!r.eof, "keep-alive is 5 s here");
    c.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    until(&mut s, &mut c, &mut r, responses(2));
    assert_eq!(r.responses()[1].2, "GET /b ");
}

#[test]
fn a_body_not_complete_within_the_body_timeout_gets_408_and_is_closed() {
    let (mut h, mut l) = Default::default();
    let mut s = server(timeouts(5000, 150), &mut h, &mut l);
    let head = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\nab";
    let mut c = connect(&mut s, head);
    let mut r = Received::default();
    trickle(&mut s, &mut c, &mut r, b"c", closed);
    let got = r.responses();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 408);
    assert_eq!(s.buffered, 0, "the refused body holds nothing");
    drop(s);
    assert!(h.seen.is_empty());
}

/// A server on a real loopback listener, for what needs `accept`.
fn listening<'a>(
    limits: Limits,
    h: &'a mut Echo,
    l: &'a mut Life,
) -> (Server<'a, Echo, Life>, std::net::SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let signals = WorkerSignals::inert().unwrap();
    let s = Server::new(
        vec![Listener::Tcp(listener)],
        limits,
        Duration::from_millis(5),
        h,
        l,
        signals,
    )
    .unwrap();
    (s, addr)
}

fn dial(addr: std::net::SocketAddr, first: &[u8]) -> std::net::TcpStream {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(first).unwrap();
    c.set_nonblocking(true).unwrap();
    c
}

/// Pumps until the server holds `n` connections.
fn until_live(s: &mut Server<'_, Echo, Life>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.live != n && Instant::now() < deadline {
        pump(s, 1);
    }
    assert_eq!(s.live, n);
}

#[test]
fn at_the_limit_idle_connections_go_first_then_the_oldest_still_sending_a_head() {
    let (mut h, mut l) = Default::default();
    let lim = Limits {
        max_connections: 3,
        ..limits()
    };
    let (mut s, addr) = listening(lim, &mut h, &mut l);
    let mut idle = dial(addr, b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut ri = Received::default();
    until(&mut s, &mut idle, &mut ri, responses(1));
    let mut old_head = dial(addr, b"GET /old HTTP/1.1\r\n");
    until_live(&mut s, 2);
    let mut new_head = dial(addr, b"GET /new HTTP/1.1\r\n");
    until_live(&mut s, 3);

    // Full: the idle keep-alive connection makes room, unanswered heads stay.
    let mut d = dial(addr, b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut rd = Received::default();
    until(&mut s, &mut d, &mut rd, responses(1));
    until(&mut s, &mut idle, &mut ri, closed);
    let (mut ro, mut rn) = (Received::default(), Received::default());
    ro.take(&mut old_head);
    rn.take(&mut new_head);
    assert!(!ro.eof && !rn.eof);

    // Next, with `d` now idle too: it goes before any head.
    let mut e = dial(addr, b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut re = Received::default();
    until(&mut s, &mut e, &mut re, responses(1));
    until(&mut s, &mut d, &mut rd, closed);

    // `e` is kept alive but the slot it needs again: now a head goes, the oldest.
    e.write_all(b"GET /e2 HTTP/1.1\r\n").unwrap();
    pump(&mut s, 3);
    let mut f = dial(addr, b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut rf = Received::default();
    until(&mut s, &mut f, &mut rf, responses(1));
    until(&mut s, &mut old_head, &mut ro, closed);
    rn.take(&mut new_head);
    assert!(ro.eof && ro.bytes.is_empty(), "closed without an answer");
    assert!(!rn.eof, "the newer head stays");
    assert_eq!(s.live, 3);
}

/// Pumps the loop for `d`.
fn pump_for(s: &mut Server<'_, Echo, Life>, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        pump(s, 1);
    }
}

#[test]
fn at_the_limit_a_body_arriving_fast_is_kept_and_a_stalled_one_closed_for_room() {
    let (mut h, mut l) = Default::default();
    let lim = Limits {
        max_connections: 1,
        max_body: 8192,
        ..limits()
    };
    let (mut s, addr) = listening(lim, &mut h, &mut l);
    let mut up = dial(
        addr,
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n",
    );
    until_live(&mut s, 1);
    let mut next = dial(addr, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    let (mut ru, mut rn) = (Received::default(), Received::default());
    // 512 bytes every 200 ms (2.5 KiB/s), well past the grace period: kept, and
    // the new connection waits in the kernel queue.
    for _ in 0..7 {
        up.write_all(&[b'x'; 512]).unwrap();
        pump_for(&mut s, Duration::from_millis(200));
        ru.take(&mut up);
        rn.take(&mut next);
        assert!(ru.bytes.is_empty() && !ru.eof, "the upload is kept");
        assert!(rn.bytes.is_empty() && !rn.eof, "left in the kernel queue");
    }
    up.write_all(&[b'x'; 512]).unwrap();
    until(&mut s, &mut up, &mut ru, responses(1));
    assert_eq!(ru.responses()[0].2.len(), "POST /up ".len() + 4096);
    // Answered and idle now, so it makes room for the waiting connection.
    until(&mut s, &mut next, &mut rn, responses(1));
    until(&mut s, &mut up, &mut ru, closed);

    // A body that stalls holds its slot for its first second only, then goes
    // (without an answer) for a new connection.
    let mut stall = dial(
        addr,
        b"POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab",
    );
    until(&mut s, &mut next, &mut rn, closed);
    let mut late = dial(addr, b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
    let (mut rs, mut rl) = (Received::default(), Received::default());
    pump(&mut s, 5);
    rs.take(&mut stall);
    assert!(!rs.eof, "within its grace period");
    until(&mut s, &mut late, &mut rl, responses(1));
    until(&mut s, &mut stall, &mut rs, closed);
    assert!(rs.eof && rs.bytes.is_empty(), "closed without an answer");
}

#[test]
fn a_body_that_would_exceed_the_buffered_bytes_gets_503_with_retry_after() {
    let (mut h, mut l) = Default::default();
    let lim = Limits {
        max_buffered: 120,
        ..limits()
    };
    let mut s = server(lim, &mut h, &mut l);
    // 47 bytes of head and 30 of body: 77 of the 120 allowed.
    let head = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n";
    let mut a = connect(&mut s, &[&head[..], b"0123456789"].concat());
    pump(&mut s, 3);
    assert_eq!(s.buffered, head.len() + 30);
    assert_eq!(
        s.conns[0].as_ref().unwrap().rbuf.capacity(),
        head.len() + 30
    );
    let mut b = connect(&mut s, &[&head[..], b"x"].concat());
    let mut rb = Received::default();
    until(&mut s, &mut b, &mut rb, closed);
    let got = rb.responses();
    assert_eq!(got[0].0, 503);
    assert!(got[0].1.contains("\r\nRetry-After: 1"), "{}", got[0].1);
    // A request whose body came with its head holds nothing: still served.
    let mut c = connect(
        &mut s,
        b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok",
    );
    let mut rc = Received::default();
    until(&mut s, &mut c, &mut rc, responses(1));
    assert_eq!(rc.responses()[0].0, 200);
    // Once `a` is complete its bytes count no more.
    a.write_all(&[b'z'; 20]).unwrap();
    let mut ra = Received::default();
    until(&mut s, &mut a, &mut ra, responses(1));
    assert_eq!(ra.responses()[0].0, 200);
    assert_eq!(s.buffered, 0);
    let mut d = connect(&mut s, &[&head[..], b"x"].concat());
    pump(&mut s, 3);
    let mut rd = Received::default();
    rd.take(&mut d);
    assert!(rd.bytes.is_empty() && !rd.eof);
    assert_eq!(s.buffered, head.len() + 30);
}

#[test]
fn a_chunked_body_counts_the_buffers_it_holds() {
    let (mut h, mut l) = Default::default();
    let lim = Limits {
        max_buffered: 1000,
        ..limits()
    };
    let mut s = server(lim, &mut h, &mut l);
    // The read buffer alone is larger than 1000 bytes: refused.
    let raw = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
    assert_eq!(rejected_on(&mut s, raw), 503);
    // Complete in one read: nothing is held, so it is served.
    let whole =
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let mut c = connect(&mut s, whole);
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, responses(1));
    assert_eq!(r.responses()[0].2, "POST /c abc");
}

fn rejected_on(s: &mut Server<'_, Echo, Life>, raw: &[u8]) -> u16 {
    let mut c = connect(s, raw);
    let mut r = Received::default();
    until(s, &mut c, &mut r, closed);
    r.responses()[0].0
}

#[test]
fn large_buffers_are_given_back_after_the_request() {
    let (mut h, mut l) = Default::default();
    let lim = Limits {
        max_body: 200_000,
        ..limits()
    };
    let mut s = server(lim, &mut h, &mut l);
    let head = b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    let mut c = connect(&mut s, head);
    pump(&mut s, 3);
    let body = vec![b'b'; 100_000];
    let mut sent = 0;
    let mut r = Received::default();
    while sent < body.len() {
        match c.write(&body[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        pump(&mut s, 1);
        if let Some(conn) = s.conns[0].as_ref() {
            // Read into a buffer of exactly the request's size: no doubling.
            assert!(conn.rbuf.capacity() <= head.len() + 100_000);
        }
    }
    until(&mut s, &mut c, &mut r, responses(1));
    assert_eq!(r.responses()[0].0, 200);
    let conn = s.conns[0].as_ref().unwrap();
    assert!(
        conn.rbuf.capacity() <= 32 * 1024,
        "{}",
        conn.rbuf.capacity()
    );
    assert!(
        conn.wbuf.capacity() <= 32 * 1024,
        "{}",
        conn.wbuf.capacity()
    );
}

#[test]
fn host_and_transfer_coding_rules() {
    assert_eq!(rejected(limits(), b"GET / HTTP/1.1\r\n\r\n").0, 400);
    assert_eq!(
        rejected(limits(), b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").0,
        400
    );
    let nbsp = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xC2\xA0\r\n\r\n0\r\n\r\n";
    assert_eq!(rejected(limits(), nbsp).0, 501);
    let (mut h, mut l) = Default::default();
    let mut s = server(limits(), &mut h, &mut l);
    let mut c = connect(&mut s, b"GET /old HTTP/1.0\r\n\r\n");
    let mut r = Received::default();
    until(&mut s, &mut c, &mut r, closed);
    assert_eq!(r.responses()[0].2, "GET /old ");
}

mod split {
    //! However a client's bytes are split between reads, the same requests are
    //! served: the connection state (head, body reservation, chunk decoding)
    //! survives any split and is reset between requests.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn request(body: &[u8], chunked: bool, sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        if chunked {
            out.extend_from_slice(
                b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let mut rest = body;
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes
                    .get(i)
                    .copied()
                    .unwrap_or(rest.len())
                    .clamp(1, rest.len());
                out.extend_from_slice(format!("{n:x};e=1\r\n").as_bytes());
                out.extend_from_slice(&rest[..n]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[n..];
                i += 1;
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            let head = format!(
                "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn requests_split_anywhere_are_served_the_same(
            first in "[a-z]{0,200}",
            second in "[a-z]{0,200}",
            chunked in any::<(bool, bool)>(),
            sizes in vec(1usize..80, 0..8),
            cuts in vec(1usize..120, 0..10),
        ) {
            let mut wire = request(first.as_bytes(), chunked.0, &sizes);
            wire.extend_from_slice(&request(second.as_bytes(), chunked.1, &sizes));
            let (mut h, mut l) = Default::default();
            let lim = Limits { max_body: 256, ..limits() };
            let mut s = server(lim, &mut h, &mut l);
            let mut c = connect(&mut s, b"");
            let mut r = Received::default();
            let mut sent = 0;
            for step in cuts.iter().copied().chain(std::iter::once(wire.len())) {
                let end = (sent + step).min(wire.len());
                c.write_all(&wire[sent..end]).unwrap();
                sent = end;
                pump(&mut s, 2);
                r.take(&mut c);
            }
            until(&mut s, &mut c, &mut r, responses(2));
            let got: Vec<String> = r.responses().into_iter().map(|g| g.2).collect();
            prop_assert_eq!(got, [format!("POST /p {first}"), format!("POST /p {second}")]);
            prop_assert_eq!(s.buffered, 0);
        }
    }
}
