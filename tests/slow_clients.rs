//! Slow and idle clients against the real binary: they cannot keep a worker from
//! answering others (not even by trickling bodies), unfinished heads and bodies are answered 408 in time, and
//! unfinished bodies stay within `--max-buffered-bytes` (503 with `Retry-After`).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Conn, Options, Server};

/// `GET /healthz` on a new connection; panics unless it is answered 200 within
/// `within`.
fn healthz_within(port: u16, within: Duration) -> Duration {
    let started = Instant::now();
    let mut c = Conn::open(port).expect("connect");
    c.stream.set_read_timeout(Some(within)).unwrap();
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = c
        .read_response(false)
        .unwrap_or_else(|e| panic!("/healthz not answered within {within:?}: {e}"));
    assert_eq!(r.status, 200);
    started.elapsed()
}

/// A connection that sent `first` and then nothing more.
fn slow(port: u16, first: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(first).expect("send");
    c
}

#[test]
fn slow_clients_holding_every_connection_do_not_stop_healthz() {
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--worker-connections", "50"],
        ..Options::default()
    });
    // Four times the worker's connections, each stuck in the middle of its head.
    let held: Vec<TcpStream> = (0..200)
        .map(|_| slow(s.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "))
        .collect();
    let took = healthz_within(s.port, Duration::from_secs(3));
    assert!(took < Duration::from_secs(3), "{took:?}");
    // And again, with the slow clients still there.
    healthz_within(s.port, Duration::from_secs(3));
    drop(held);
}

#[test]
fn idle_connections_make_room_too() {
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--worker-connections", "20", "--keep-alive", "60"],
        ..Options::default()
    });
    // Silent new connections, and keep-alive ones after one answer each.
    let mut held: Vec<TcpStream> = (0..40).map(|_| slow(s.port, b"")).collect();
    for _ in 0..40 {
        let mut c = Conn::open(s.port).unwrap();
        assert_eq!(c.get("/healthz").unwrap().status, 200);
        held.push(c.stream);
    }
    healthz_within(s.port, Duration::from_secs(3));
}

#[test]
fn trickled_bodies_holding_every_connection_do_not_stop_healthz() {
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--worker-connections", "20"],
        ..Options::default()
    });
    // More than the worker's connections, each with a complete head and one byte
    // of a 10-byte body: they would hold every slot for the body timeout.
    let held: Vec<Conn> = (0..25).map(|_| unfinished_body(s.port, 10, 1)).collect();
    // A body that slow gives its slot up after a second.
    let took = healthz_within(s.port, Duration::from_secs(5));
    assert!(took < Duration::from_secs(5), "{took:?}");
    healthz_within(s.port, Duration::from_secs(5));
    drop(held);
}

#[test]
fn a_head_not_complete_within_the_header_timeout_is_answered_408_and_closed() {
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--header-timeout", "1"],
        ..Options::default()
    });
    let started = Instant::now();
    let mut c = Conn::open(s.port).unwrap();
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").unwrap();
    let r = c.read_response(false).expect("an answer");
    let waited = started.elapsed();
    assert_eq!(r.status, 408);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(r.json()["error"].is_string());
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(c.closed_by_server(Duration::from_secs(5)));
    // A connection that never sent a byte is closed as well, without an answer.
    let mut silent = Conn::open(s.port).unwrap();
    assert!(silent.closed_by_server(Duration::from_secs(5)));
    healthz_within(s.port, Duration::from_secs(3));
}

#[test]
fn a_body_not_complete_within_the_body_timeout_is_answered_408_and_closed() {
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--body-timeout", "1"],
        ..Options::default()
    });
    let mut c = Conn::open(s.port).unwrap();
    c.send(b"POST /api/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"em")
        .unwrap();
    let r = c.read_response(false).expect("an answer");
    assert_eq!(r.status, 408);
    assert!(c.closed_by_server(Duration::from_secs(5)));
}

/// Sends a head declaring `length` bytes of body, and `sent` of them.
fn unfinished_body(port: u16, length: usize, sent: usize) -> Conn {
    let mut c = Conn::open(port).unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    c.send(head.as_bytes()).unwrap();
    c.send(&vec![b' '; sent]).unwrap();
    c
}

#[test]
fn unfinished_bodies_past_max_buffered_bytes_get_503_with_retry_after() {
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--max-buffered-bytes", "300000"],
        ..Options::default()
    });
    // Two requests of 120 kB (and their heads) fit in 300 kB; a third would not.
    let mut first = unfinished_body(s.port, 120_000, 1000);
    let _second = unfinished_body(s.port, 120_000, 1000);
    // The worker takes connections in order: once this is answered, both are held.
    healthz_within(s.port, Duration::from_secs(3));
    let mut third = unfinished_body(s.port, 120_000, 1000);
    let r = third.read_response(false).expect("an answer");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(r.json()["error"].is_string());
    assert!(third.closed_by_server(Duration::from_secs(5)));
    healthz_within(s.port, Duration::from_secs(3));
    // The held ones are still served once their bodies arrive.
    let mut rest = vec![b' '; 119_000 - 2];
    rest.insert(0, b'{');
    rest.push(b'}');
    first.send(&rest).unwrap();
    let r = first.read_response(false).unwrap();
    assert!(r.status != 503 && r.status != 408, "{}", r.status);
}

/// Resident memory of `pid` in bytes.
fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[test]
fn many_unfinished_one_megabyte_bodies_keep_the_worker_small() {
    let s = Server::with(Options {
        workers: 1,
        ..Options::default()
    });
    let worker = s.worker_pids()[0];
    // 300 requests declaring 1 MB, 900 kB of it sent: 270 MB if all were held.
    let body = vec![b' '; 900_000];
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        let mut c = unfinished_body(s.port, 1_000_000, 0);
        c.stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // A refused request may be closed before all of it is sent.
        if c.send(&body).is_err() {
            refused += 1;
        }
        held.push(c);
    }
    healthz_within(s.port, Duration::from_secs(3));
    let resident = rss(worker);
    assert!(resident < 150 << 20, "worker holds {} MB", resident >> 20);
    // Some were held (64 MiB of bodies by default), the others refused with 503.
    let refusals = held
        .iter_mut()
        .filter_map(|c| {
            c.stream
                .set_read_timeout(Some(Duration::from_millis(20)))
                .ok()?;
            c.read_response(false).ok()
        })
        .inspect(|r| assert_eq!(r.status, 503))
        .filter(|r| r.header("Retry-After").is_some())
        .count();
    assert!(refusals + refused >= 100, "{refusals} + {refused} refused");
}
