//! HTTP and health against the real binary: health shapes, headers on every response,
//! every protocol limit, malformed requests, keep-alive and fairness.

mod common;

use std::thread;
use std::time::Duration;

use common::{request, Conn, Options, Server};

const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Permissions-Policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

fn assert_common_headers(r: &common::Resp) {
    for (k, v) in SECURITY_HEADERS {
        assert_eq!(r.header(k), Some(v), "{k} on {} response", r.status);
    }
    let csp = r.header("Content-Security-Policy").expect("CSP");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline"),
        "default CSP must be strict: {csp}"
    );
    assert_eq!(r.header("Server"), Some("blitz"));
    assert!(r.header("Date").is_some_and(|d| d.ends_with(" GMT")));
    assert!(r.header("X-Request-Id").is_some_and(|id| !id.is_empty()));
    assert!(r.header("Content-Length").is_some());
}

fn is_rfc3339_utc(s: &str) -> bool {
    s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T'
}

#[test]
fn health_endpoints_have_the_contract_shapes() {
    let s = Server::with(Options {
        env: vec![("APP_VERSION", "1.2.3")],
        ..Options::default()
    });
    let h = s.get("/healthz");
    assert_eq!(h.status, 200);
    assert_eq!(h.header("Content-Type"), Some("application/json"));
    let j = h.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["version"], "1.2.3");
    assert_eq!(j["service"], "blitz-test-server");
    assert!(is_rfc3339_utc(j["timestamp"].as_str().unwrap()), "{j}");
    assert_eq!(j.as_object().unwrap().len(), 4);
    assert_common_headers(&h);

    let l = s.get("/livez").json();
    assert_eq!(l["status"], "ok");
    assert!(is_rfc3339_utc(l["timestamp"].as_str().unwrap()));

    let r = s.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["checks"]["database"]["status"], "ok");
    assert_eq!(j["checks"]["bot_manager"]["status"], "ok");
    assert_eq!(j["checks"]["bot_manager"]["running_bots"], 0);
    assert!(
        j["checks"]["bot_manager"]["heartbeat_age_s"]
            .as_f64()
            .unwrap()
            < 10.0
    );
    assert_eq!(j["checks"]["redis"]["status"], "disabled");
}

#[test]
fn readyz_fails_while_the_bot_runner_is_silent_and_recovers() {
    let s = Server::start();
    let runner = nix::unistd::Pid::from_raw(s.runner_pids()[0]);
    nix::sys::signal::kill(runner, nix::sys::signal::Signal::SIGSTOP).unwrap();
    // Its heartbeat ages past 10 s: not ready, with the reason in the checks.
    common::wait_for(Duration::from_secs(20), "readyz 503", || {
        s.get("/readyz").status == 503
    });
    let j = s.get("/readyz").json();
    assert_eq!(j["status"], "error");
    assert_eq!(j["checks"]["bot_manager"]["status"], "error");
    assert!(
        j["checks"]["bot_manager"]["heartbeat_age_s"]
            .as_f64()
            .unwrap()
            >= 10.0
    );
    assert_eq!(j["checks"]["database"]["status"], "ok");
    // Liveness is unaffected.
    assert_eq!(s.get("/healthz").status, 200);
    nix::sys::signal::kill(runner, nix::sys::signal::Signal::SIGCONT).unwrap();
    common::wait_for(Duration::from_secs(5), "ready again", || {
        s.get("/readyz").status == 200
    });
}

#[test]
fn a_killed_bot_runner_is_respawned() {
    let s = Server::start();
    let runner = s.runner_pids()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runner),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::wait_for(Duration::from_secs(5), "new bot runner", || {
        let now = s.runner_pids();
        now.len() == 1 && now[0] != runner
    });
    common::wait_for(Duration::from_secs(5), "ready again", || {
        s.get("/readyz").status == 200
    });
}

#[test]
fn unknown_routes_and_wrong_methods() {
    let s = Server::start();
    let r = s.get("/nope");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    assert_common_headers(&r);
    let r = request(
        s.port,
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    assert_common_headers(&r);
}

#[test]
fn head_has_length_but_no_body() {
    let s = Server::start();
    let mut c = Conn::open(s.port).unwrap();
    c.send(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    // The connection is still in sync: the next response parses.
    assert_eq!(c.get("/livez").unwrap().status, 200);
}

#[test]
fn request_id_is_echoed_when_sane_and_replaced_otherwise() {
    let s = Server::start();
    let r = request(
        s.port,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\n\r\n",
    );
    assert_eq!(r.header("X-Request-Id"), Some("abc-123"));
    let r = request(
        s.port,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad id <x>\r\n\r\n",
    );
    let id = r.header("X-Request-Id").unwrap();
    assert!(
        id != "bad id <x>" && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let a = s.get("/healthz");
    let b = s.get("/healthz");
    assert_ne!(a.header("X-Request-Id"), b.header("X-Request-Id"));
}

#[test]
fn custom_csp_is_sent() {
    let csp = "default-src 'self'; img-src 'self' data:";
    let s = Server::with(Options {
        env: vec![("SECURITY_CSP", csp)],
        ..Options::default()
    });
    assert_eq!(
        s.get("/healthz").header("Content-Security-Policy"),
        Some(csp)
    );
}

/// Sends `raw`, expects `status` and a closed connection, then proves the worker
/// still serves.
fn rejected(s: &Server, raw: &[u8], status: u16) {
    let mut c = Conn::open(s.port).unwrap();
    c.send(raw).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.status,
        status,
        "for {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(80)])
    );
    assert_common_headers(&r);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(r.json()["error"].is_string());
    assert!(
        c.closed_by_server(Duration::from_secs(5)),
        "connection left open after {status}"
    );
    assert_eq!(
        s.get("/healthz").status,
        200,
        "server still serving after {status}"
    );
}

#[test]
fn limits_answer_and_close_while_the_worker_keeps_serving() {
    let s = Server::with(Options {
        args: vec![
            "--limit-request-line",
            "100",
            "--limit-request-fields",
            "10",
            "--limit-request-field_size",
            "200",
        ],
        env: vec![("MAX_REQUEST_BYTES", "1000")],
        ..Options::default()
    });
    // 414: request line over 100 bytes.
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(120));
    rejected(&s, long.as_bytes(), 414);
    // 431: too many fields.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for i in 0..11 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    rejected(&s, many.as_bytes(), 431);
    // 431: one field too large.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "v".repeat(300)
    );
    rejected(&s, big.as_bytes(), 431);
    // 413: declared body too large, answered before the body is sent.
    rejected(
        &s,
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
        413,
    );
    // 413: chunked body that grows past the limit.
    let chunk = format!(
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n",
        "x".repeat(2048)
    );
    rejected(&s, chunk.as_bytes(), 413);
}

#[test]
fn limit_request_field_size_alias_is_accepted() {
    let s = Server::with(Options {
        args: vec!["--limit-request-field-size", "100"],
        ..Options::default()
    });
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "v".repeat(150)
    );
    rejected(&s, big.as_bytes(), 431);
}

#[test]
fn malformed_requests_get_400_and_the_worker_keeps_serving() {
    let s = Server::start();
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        b"GET nothing HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ] {
        rejected(&s, raw, 400);
    }
    rejected(&s, b"GET / HTTP/2.0\r\n\r\n", 505);
    rejected(
        &s,
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
}

#[test]
fn http_1_1_needs_exactly_one_host_and_http_1_0_none() {
    let s = Server::start();
    rejected(&s, b"GET /healthz HTTP/1.1\r\n\r\n", 400);
    rejected(
        &s,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        400,
    );
    let r = request(s.port, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = request(s.port, b"GET /healthz HTTP/1.1\r\nhOsT: t\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn transfer_codings_are_compared_as_ascii_tokens() {
    let s = Server::start();
    // A no-break space after `chunked` must not be trimmed into `chunked`.
    for te in [
        &b"chunked\xC2\xA0"[..],
        b"\xC2\xA0chunked",
        b"chunked\xE2\x80\x83",
    ] {
        let mut raw = b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ".to_vec();
        raw.extend_from_slice(te);
        raw.extend_from_slice(b"\r\n\r\n0\r\n\r\n");
        rejected(&s, &raw, 501);
    }
    // Two fields make one list, `chunked, chunked`: not `chunked` alone.
    rejected(
        &s,
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    );
}

#[test]
fn bodies_are_framed_exactly_on_keep_alive_connections() {
    let s = Server::start();
    let mut c = Conn::open(s.port).unwrap();
    // Content-Length body, then a chunked body with extensions and a trailer, then
    // a pipelined GET: each response must line up with its request.
    c.send(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 405);
    c.send(b"POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /livez HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 405);
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
}

#[test]
fn expect_100_continue() {
    let s = Server::start();
    let mut c = Conn::open(s.port).unwrap();
    c.send(
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let interim = c.read_response(false).unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"body").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 405);
    // Too large: 413 instead of 100, nothing is read.
    let mut c = Conn::open(s.port).unwrap();
    c.send(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 413);
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked() {
    let s = Server::start();
    let mut c = Conn::open(s.port).unwrap();
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    assert!(c.closed_by_server(Duration::from_secs(5)));
    let mut c = Conn::open(s.port).unwrap();
    c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    c.send(b"GET /livez HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
}

#[test]
fn one_thousand_sequential_requests_on_one_connection() {
    let s = Server::start();
    let mut c = Conn::open(s.port).unwrap();
    for i in 0..1000 {
        let r = c
            .get("/healthz")
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(
            r.header("Connection"),
            None,
            "request {i} must stay keep-alive"
        );
    }
}

#[test]
fn idle_keep_alive_connections_expire() {
    let s = Server::with(Options {
        args: vec!["--keep-alive", "1"],
        ..Options::default()
    });
    let mut c = Conn::open(s.port).unwrap();
    assert_eq!(c.get("/healthz").unwrap().status, 200);
    let t = std::time::Instant::now();
    assert!(c.closed_by_server(Duration::from_secs(5)));
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "closed too early: {:?}",
        t.elapsed()
    );
}

#[test]
fn fifty_concurrent_keep_alive_connections_are_served_fairly() {
    let s = Server::start();
    // Open all 50 first, so every one is held idle by a worker at once.
    let conns: Vec<Conn> = (0..50).map(|_| Conn::open(s.port).unwrap()).collect();
    let handles: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                let t = std::time::Instant::now();
                for _ in 0..100 {
                    assert_eq!(c.get("/healthz").unwrap().status, 200);
                }
                t.elapsed()
            })
        })
        .collect();
    let mut times: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    times.sort();
    // Fairness: no connection waits disproportionately behind the others.
    let median = times[times.len() / 2];
    let worst = *times.last().unwrap();
    assert!(
        worst <= median * 4 + Duration::from_millis(500),
        "unfair: median {median:?}, worst {worst:?}"
    );
}

#[test]
fn worker_connections_caps_what_one_worker_holds() {
    let s = Server::with(Options {
        workers: 1,
        args: vec!["--worker-connections", "2", "--keep-alive", "30"],
        ..Options::default()
    });
    let mut a = Conn::open(s.port).unwrap();
    let mut b = Conn::open(s.port).unwrap();
    assert_eq!(a.get("/healthz").unwrap().status, 200);
    assert_eq!(b.get("/healthz").unwrap().status, 200);
    // At the limit, a third connection is admitted by closing the longest-idle one.
    let mut c = Conn::open(s.port).unwrap();
    assert_eq!(c.get("/healthz").unwrap().status, 200);
    assert!(a.closed_by_server(Duration::from_secs(5)));
    assert_eq!(b.get("/healthz").unwrap().status, 200);
    // Connections in the middle of a body are not closed for room in their first
    // second (slow_clients.rs has what comes after): a new one waits in the kernel
    // queue until one is answered.
    let post = b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab";
    b.send(post).unwrap();
    c.send(post).unwrap();
    let (sent_tx, sent) = std::sync::mpsc::channel();
    let waiter = thread::spawn(move || {
        let mut d = Conn::open(s.port).unwrap();
        d.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let _ = sent_tx.send(());
        let r = d.read_response(false).unwrap();
        (r.status, s)
    });
    sent.recv_timeout(Duration::from_secs(10))
        .expect("fourth request sent");
    // Not a wait for a condition: the time a wrongly served request would need to
    // come back (a worker answers /healthz in about a millisecond).
    thread::sleep(Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "a connection receiving a body was closed for room"
    );
    b.send(b"cd").unwrap();
    assert_eq!(b.read_response(false).unwrap().status, 405);
    let (status, _s) = waiter.join().unwrap();
    assert_eq!(status, 200);
    c.send(b"cd").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 405);
}

#[test]
fn access_log_json_uses_the_trusted_proxy_client_ip() {
    let s = Server::with(Options {
        args: vec![
            "--access-logfile",
            "access.log",
            "--access-logformat",
            "json",
        ],
        ..Options::default()
    });
    request(s.port, b"GET /healthz?x=1 HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9, 127.0.0.1\r\nX-Request-Id: rid-1\r\n\r\n");
    let path = s.path("access.log");
    common::wait_for(Duration::from_secs(5), "access log line", || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("rid-1"))
    });
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| l.contains("rid-1")).unwrap();
    let j: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(j["client"], "203.0.113.9");
    assert_eq!(j["method"], "GET");
    assert_eq!(j["path"], "/healthz");
    assert_eq!(j["status"], 200);
    assert!(j["bytes"].as_u64().unwrap() > 0);
    assert!(j["duration_ms"].is_number());
}

#[test]
fn access_log_gunicorn_format_ignores_untrusted_forwarding() {
    let s = Server::with(Options {
        args: vec![
            "--access-logfile",
            "access.log",
            "--forwarded-allow-ips",
            "10.9.9.9",
        ],
        ..Options::default()
    });
    request(
        s.port,
        b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\nUser-Agent: ua/1\r\n\r\n",
    );
    let path = s.path("access.log");
    common::wait_for(Duration::from_secs(5), "access log line", || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("/livez"))
    });
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| l.contains("/livez")).unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.contains("\"GET /livez HTTP/1.1\" 200 "), "{line}");
    assert!(line.ends_with("\"-\" \"ua/1\""), "{line}");
}

#[test]
fn a_half_closed_client_is_answered_and_released_at_once() {
    let s = Server::with(Options {
        args: vec!["--keep-alive", "30"],
        ..Options::default()
    });
    let mut c = Conn::open(s.port).unwrap();
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let t = std::time::Instant::now();
    assert!(c.closed_by_server(Duration::from_secs(10)));
    // A structural bound: held for the keep-alive would be 30 s.
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "held until {:?}",
        t.elapsed()
    );
}
