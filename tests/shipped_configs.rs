//! The shipped files work as shipped. nginx (`nginx -t`, then a real proxy in
//! front of blitz), Prometheus (`promtool check config` / `check rules`), systemd
//! (`systemd-analyze verify`), logrotate, the example environment file, and that
//! every metric the dashboard and the alerts query is one blitz exports.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::nginx::{self, Nginx};
use common::{wait_for, Conn, Options, Server};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs a checker; a missing tool fails the test (tests/run installs them).
fn check(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); tests/run installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// A system tool by name, also where a non-root PATH does not look (/usr/sbin).
fn tool(name: &str) -> String {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| name.to_string())
}

/// A client connection from another loopback address than 127.0.0.1.
fn connect_from(source: [u8; 4], port: u16) -> Conn {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    let [a, b, c, d] = source;
    bind(fd.as_raw_fd(), &SockaddrIn::new(a, b, c, d, 0)).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    Conn::from_stream(TcpStream::from(fd)).unwrap()
}

#[test]
fn nginx_config_passes_nginx_t_and_proxies_to_blitz() {
    let s = Server::with(Options {
        workers: 1,
        env: vec![("ENABLE_METRICS", "true")],
        args: vec![
            "--access-logfile",
            "access.log",
            "--access-logformat",
            "json",
        ],
    });
    // The shipped site with only its addresses changed (`common::nginx`).
    let reserved = Nginx::reserve();
    let port = reserved.port;
    let _nginx = Nginx::start(reserved, &nginx::site(port, &[s.port]));
    wait_for(Duration::from_secs(10), "nginx proxying", || {
        common::client::try_get(port, "/healthz").is_ok()
    });
    let r = common::client::get(port, "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert!(r.header("X-Request-Id").is_some(), "answered by blitz");
    assert_eq!(common::client::get(port, "/readyz").status, 200);
    // /metrics: allowed from 127.0.0.1, refused by nginx from anywhere else.
    let m = common::client::get(port, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m.text().contains("http_requests_total"));
    let mut other = connect_from([127, 0, 0, 2], port);
    other
        .send(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(other.read_response(false).unwrap().status, 403);
    // The API through nginx: blitz sees the client's address from X-Forwarded-For.
    let mut other = connect_from([127, 0, 0, 3], port);
    other
        .send(b"GET /api/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(other.read_response(false).unwrap().status, 200);
    wait_for(
        Duration::from_secs(10),
        "client address in the access log",
        || {
            std::fs::read_to_string(s.path("access.log"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("\"client\":\"127.0.0.3\"") && l.contains("/api/status"))
        },
    );
}

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    let out = check(
        Command::new(tool("promtool"))
            .args(["check", "config"])
            .arg(repo("conf/prometheus/prometheus.yml")),
        "promtool check config",
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let out = check(
        Command::new(tool("promtool"))
            .args(["check", "rules"])
            .arg(repo("conf/prometheus/blitz-alerts.yml")),
        "promtool check rules",
    );
    assert!(out.contains("9 rules found"), "{out}");
}

/// Metric names in PromQL expressions: identifiers followed by `{`, `[` or `)`
/// or standing alone, minus functions, keywords and label names.
fn metric_names(expr: &str) -> Vec<String> {
    const NOT_METRICS: [&str; 14] = [
        "rate",
        "sum",
        "by",
        "histogram_quantile",
        "increase",
        "le",
        "instance",
        "endpoint",
        "status",
        "reason",
        "group",
        "type",
        "component",
        "job",
    ];
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_string = false;
    for ch in expr.chars().chain(std::iter::once(' ')) {
        if ch == '"' {
            in_string = !in_string;
            word.clear();
            continue;
        }
        if in_string {
            continue;
        }
        if ch.is_ascii_alphanumeric() || ch == '_' || ch == ':' {
            word.push(ch);
            continue;
        }
        let w = std::mem::take(&mut word);
        let is_ident = w.starts_with(|c: char| c.is_ascii_alphabetic()) && w.contains('_');
        if is_ident && ch != '=' && !NOT_METRICS.contains(&w.as_str()) {
            out.push(w);
        }
    }
    out
}

#[test]
fn dashboard_and_alerts_query_only_metrics_blitz_exports() {
    let s = Server::with(Options {
        workers: 1,
        env: vec![("ENABLE_METRICS", "true")],
        ..Options::default()
    });
    assert_eq!(s.get("/api/status").status, 200);
    let scrape = s.get("/metrics").text();
    let exported: Vec<&str> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("conf/grafana/blitz-dashboard.json")).unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 10, "dashboard queries: {exprs:?}");
    // The five standard queries are on the dashboard.
    for q in [
        "rate(http_requests_total[5m])",
        "histogram_quantile(0.95",
        "http_requests_total{status=~\"5..\"}",
        "active_bots_total",
        "bot_starts_total{status=\"success\"}",
    ] {
        assert!(exprs.iter().any(|e| e.contains(q)), "dashboard lacks {q}");
    }
    let alerts = read("conf/prometheus/blitz-alerts.yml");
    let mut in_expr = false;
    for line in alerts.lines() {
        let t = line.trim();
        if let Some(e) = t.strip_prefix("expr:") {
            in_expr = e.trim() == "|";
            exprs.push(e.to_string());
        } else if in_expr && !t.contains(':') {
            exprs.push(t.to_string());
        } else {
            in_expr = false;
        }
    }
    let mut checked = 0;
    for e in &exprs {
        for name in metric_names(e) {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            let known = exported.contains(&family) || family == "up";
            assert!(known, "{family} (in `{e}`) is not exported by blitz");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} metric references found");
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let service = read("systemd/blitz.service");
    assert!(service.contains("ExecStart=/usr/local/bin/blitz serve"));
    for want in [
        "Type=notify",
        "NotifyAccess=all",
        "ProtectSystem=strict",
        "StateDirectory=blitz",
        "NoNewPrivileges=yes",
        "LimitNOFILE=65535",
        "User=blitz",
    ] {
        assert!(service.contains(want), "blitz.service lacks {want}");
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let bin = env!("CARGO_BIN_EXE_blitz");
    std::fs::write(
        dir.path().join("blitz.service"),
        service.replace("/usr/local/bin/blitz", bin),
    )
    .unwrap();
    std::fs::copy(
        repo("systemd/blitz.socket"),
        dir.path().join("blitz.socket"),
    )
    .unwrap();
    let out = check(
        Command::new(tool("systemd-analyze"))
            .arg("verify")
            .arg(dir.path().join("blitz.service"))
            .arg(dir.path().join("blitz.socket"))
            .current_dir(dir.path()),
        "systemd-analyze verify",
    );
    assert!(!out.contains("blitz.service:"), "warnings:\n{out}");
}

#[test]
fn the_example_environment_file_is_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::blitz_cmd(dir.path())
        .args(["check-config", "--env-file"])
        .arg(repo("systemd/blitz.env"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("workers"), "{text}");
}

#[test]
fn logrotate_snippet_parses_and_signals_usr1() {
    let snippet = read("conf/logrotate/blitz");
    assert!(snippet.contains("kill -USR1"));
    // The service user does not exist on a test machine: only that is changed.
    assert!(snippet.contains("create 0640 blitz blitz"));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("blitz");
    std::fs::write(
        &conf,
        snippet.replace("create 0640 blitz blitz", "create 0640 root root"),
    )
    .unwrap();
    let out = check(
        Command::new(tool("logrotate"))
            .arg("-d")
            .arg("-s")
            .arg(dir.path().join("state"))
            .arg(&conf),
        "logrotate -d",
    );
    assert!(!out.contains("error:"), "{out}");
}
