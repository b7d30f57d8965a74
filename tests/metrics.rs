//! Metrics against the real binary: families and types, exact counts across workers
//! and recycling, route templates, `promtool check metrics`, the switch, and the
//! segment file of `PROMETHEUS_MULTIPROC_DIR`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::bots::{user, CALM};
use common::client::Resp;
use common::{get, wait_for, Options, Server};

fn server(workers: usize, args: Vec<&'static str>, env: &[(&'static str, &'static str)]) -> Server {
    let mut all = CALM.to_vec();
    all.push(("ENABLE_METRICS", "true"));
    all.extend_from_slice(env);
    Server::with(Options {
        workers,
        args,
        env: all,
    })
}

fn scrape(s: &Server) -> String {
    let r = get(s.port, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.text()
}

/// The value of the sample `name{labels}` (exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn families_types_and_labels() {
    let s = server(
        2,
        vec![],
        &[("APP_VERSION", "1.2.3"), ("FLASK_ENV", "staging")],
    );
    let u = user(&s, "a@x.io", false);
    assert_eq!(u.call(&s, "POST", "/api/bot/start", "{}").status, 200);
    assert_eq!(u.call(&s, "POST", "/api/bot/start", "{}").status, 409);
    assert_eq!(get(s.port, "/no/such/thing/42").status, 404);
    wait_for(std::time::Duration::from_secs(10), "active bots", || {
        sample(&scrape(&s), "active_bots_total") == Some(1.0)
    });
    let m = scrape(&s);
    for (family, kind) in [
        ("http_requests_total", "counter"),
        ("http_request_duration_seconds", "histogram"),
        ("bot_starts_total", "counter"),
        ("bot_stops_total", "counter"),
        ("bot_recovers_total", "counter"),
        ("errors_total", "counter"),
        ("active_bots_total", "untyped"),
        ("app_info", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_open_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("blitz_workers", "gauge"),
        ("blitz_worker_restarts_total", "counter"),
        ("blitz_rate_limit_rejections_total", "counter"),
        ("blitz_lock_conflicts_total", "counter"),
        ("blitz_redis_errors_total", "counter"),
        ("blitz_redis_fallbacks_total", "counter"),
        ("blitz_market_refresh_failures_total", "counter"),
        ("blitz_metrics_series_overflow_total", "counter"),
    ] {
        assert!(
            m.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind}"
        );
    }
    let uid = u.id;
    let has = |series: &str, v: f64| assert_eq!(sample(&m, series), Some(v), "{series}");
    has(
        &format!(r#"bot_starts_total{{user_id="{uid}",status="success"}}"#),
        1.0,
    );
    has(
        &format!(r#"bot_starts_total{{user_id="{uid}",status="already_running"}}"#),
        1.0,
    );
    has(
        r#"http_requests_total{method="POST",endpoint="/api/bot/start",status="200"}"#,
        1.0,
    );
    has(
        r#"http_requests_total{method="POST",endpoint="/api/bot/start",status="409"}"#,
        1.0,
    );
    has(
        r#"http_requests_total{method="GET",endpoint="other",status="404"}"#,
        1.0,
    );
    has(r#"app_info{version="1.2.3",environment="staging"}"#, 1.0);
    has("blitz_workers", 2.0);
    assert!(!m.contains("/no/such"), "unmatched paths collapse to other");
    has(
        r#"http_request_duration_seconds_count{method="POST",endpoint="/api/bot/start"}"#,
        2.0,
    );
    for p in [
        "master",
        "worker-0",
        "worker-1",
        "bot-runner",
        "mailer",
        "market-data",
    ] {
        let rss = sample(
            &m,
            &format!(r#"process_resident_memory_bytes{{process="{p}"}}"#),
        );
        assert!(rss.is_some_and(|v| v > 1e6), "{p}: {rss:?}");
    }
    promtool(&m);
}

/// The text passes `promtool check metrics` (the `prometheus` package; `tests/run`
/// installs it).
fn promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; tests/run does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn counts_are_exact_across_workers_and_recycling() {
    let s = server(4, vec!["--max-requests", "40"], &[]);
    let answers: Vec<Resp> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                sc.spawn(|| {
                    (0..100)
                        .map(|_| get(s.port, "/api/status"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|r| r.status == 200));
    // Every worker that retired was reaped and its counts folded: the master's
    // restart counter has caught up with the workers' own "max requests" lines.
    // 400 requests over 4 workers at 40 each cannot pass without one retiring.
    let recycled = || {
        let m = scrape(&s);
        sample(&m, r#"blitz_worker_restarts_total{reason="max_requests"}"#).unwrap()
    };
    common::wait_for(
        std::time::Duration::from_secs(20),
        "retired workers reaped",
        || {
            let n = recycled();
            n >= 1.0 && n as usize == s.log().matches("max requests reached").count()
        },
    );
    let series = r#"http_requests_total{method="GET",endpoint="/api/status",status="200"}"#;
    for _ in 0..12 {
        // Fresh connections land on different workers, each summing every slot.
        assert_eq!(sample(&scrape(&s), series), Some(400.0));
    }
}

#[test]
fn metrics_are_off_unless_enabled() {
    let s = Server::with(Options {
        env: vec![("ENABLE_METRICS", "false")],
        ..Options::default()
    });
    assert_eq!(get(s.port, "/metrics").status, 404);
}

#[test]
fn multiproc_dir_holds_the_segment_file() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("prom");
    std::fs::create_dir_all(&prom).unwrap();
    // A file left by a master that is gone, and one of a master still running
    // (another instance sharing the directory: pid 1 here).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(prom.join(format!("blitz-metrics-{dead}.mmap")), b"stale").unwrap();
    std::fs::write(prom.join("blitz-metrics-1.mmap"), b"live").unwrap();
    std::fs::write(prom.join("keep.txt"), b"not ours").unwrap();
    let prom_s: &'static str = Box::leak(prom.to_string_lossy().into_owned().into_boxed_str());
    let s = server(2, vec![], &[("PROMETHEUS_MULTIPROC_DIR", prom_s)]);
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&prom)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let mut want = vec![
        "blitz-metrics-1.mmap".to_string(),
        format!("blitz-metrics-{}.mmap", s.pid()),
        "keep.txt".to_string(),
    ];
    want.sort();
    assert_eq!(
        names(),
        want,
        "the dead master's file is gone, the live one's kept"
    );
    assert!(scrape(&s).contains("http_requests_total"));
    s.terminate();
    assert_eq!(
        names(),
        ["blitz-metrics-1.mmap", "keep.txt"],
        "ours removed at exit"
    );
}

/// A label set that only appears with its first event is invisible to `rate()`:
/// the known ones start at 0, and every refusal and 5xx is counted where the
/// dashboard and the alert rules look.
#[test]
fn first_errors_and_login_refusals_rise_from_zero() {
    let s = server(1, vec![], &[]);
    let m = scrape(&s);
    let errors = [
        ("http_5xx", "worker"),
        ("panic", "worker"),
        ("panic", "bot_runner"),
        ("bot_failed", "bot_runner"),
        ("redis", "coordination"),
        ("mail_delivery", "mailer"),
    ];
    // Every kind is there from the start; only `http_5xx` may already count (the
    // 503s of `/readyz` while the server was starting).
    for (kind, component) in errors {
        let series = format!(r#"errors_total{{type="{kind}",component="{component}"}}"#);
        let v = sample(&m, &series);
        assert!(
            v == Some(0.0) || kind == "http_5xx" && v.is_some(),
            "{series}: {v:?}"
        );
    }
    let http_5xx = r#"errors_total{type="http_5xx",component="worker"}"#;
    let before = sample(&m, http_5xx).unwrap();
    let login = |m: &str, g: &str| {
        sample(
            m,
            &format!(r#"blitz_rate_limit_rejections_total{{group="{g}"}}"#),
        )
    };
    assert_eq!(login(&m, "login_email_ip"), Some(0.0));
    assert_eq!(login(&m, "login_ip"), Some(0.0));

    // Protocol-level 5xx answers, refused before any route is chosen.
    let r = common::client::request(s.port, b"GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 505);
    let r = common::client::request(
        s.port,
        b"POST /api/auth/login HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(r.status, 501);

    // Five wrong passwords fill the (e-mail, address) window; the sixth attempt is
    // refused.
    let u = user(&s, "v@x.io", false);
    let body = r#"{"email":"v@x.io","password":"wrong-password"}"#;
    let statuses: Vec<u16> = (0..6)
        .map(|_| u.call(&s, "POST", "/api/auth/login", body).status)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);

    // A user's first start shows every other outcome of starts at 0.
    assert_eq!(u.call(&s, "POST", "/api/bot/start", "{}").status, 200);
    let m = scrape(&s);
    let uid = u.id;
    for (status, n) in [("success", 1.0), ("already_running", 0.0), ("error", 0.0)] {
        let series = format!(r#"bot_starts_total{{user_id="{uid}",status="{status}"}}"#);
        assert_eq!(sample(&m, &series), Some(n), "{series}");
    }
    assert_eq!(
        sample(&m, http_5xx),
        Some(before + 2.0),
        "the 505 and the 501"
    );
    assert_eq!(
        login(&m, "login_email_ip"),
        Some(1.0),
        "the (e-mail, address) window refused"
    );
    assert_eq!(login(&m, "login_ip"), Some(0.0));
    promtool(&m);
}
