//! Commands, flags and environment validation, through the real binary.

mod common;

use std::process::Output;

use common::{blitz_cmd, ReservedPort};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    blitz_cmd(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_prints_semver_and_sha() {
    let o = run(&["--version"], &[]);
    assert!(o.status.success());
    let v = stdout(&o);
    let re_ok = v.starts_with("blitz ") && v.contains(" (") && v.trim_end().ends_with(')');
    assert!(re_ok, "{v}");
    let semver = v.split(' ').nth(1).unwrap();
    assert_eq!(semver.split('.').count(), 3, "{v}");
}

#[test]
fn check_config_prints_effective_configuration_with_secrets_masked() {
    let o = run(
        &["check-config", "--workers", "3", "--bind", "0.0.0.0:9000"],
        &[
            ("SECRET_KEY", &"ab".repeat(32)),
            ("ADMIN_PASSWORD", "hunter2hunter2"),
            ("SMTP_URL", "smtp://mailer:s3cr3tpw@mail.example:587"),
            ("RATE_LIMITS_START", "5 per minute"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("0.0.0.0:9000"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("workers") && l.trim_end().ends_with('3')),
        "{out}"
    );
    assert!(out.contains("5/minute"), "{out}");
    for secret in ["abababab", "hunter2hunter2", "s3cr3tpw"] {
        assert!(!out.contains(secret), "secret {secret} leaked: {out}");
    }
    // The flag form works too.
    let o = run(&["--check-config"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_gunicorn_command_line_is_accepted() {
    let flags = [
        "--workers",
        "9",
        "--worker-class",
        "sync",
        "--worker-connections",
        "1000",
        "--max-requests",
        "1000",
        "--max-requests-jitter",
        "100",
        "--bind",
        "0.0.0.0:8000",
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "--log-level",
        "info",
    ];
    let mut with_serve = vec!["serve"];
    with_serve.extend(flags);
    with_serve.push("--check-config");
    let o = run(&with_serve, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut bare = flags.to_vec();
    bare.push("--check-config");
    let o = run(&bare, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Each invalid value exits 2 and names what was wrong.
#[test]
fn invalid_environment_values_exit_2_naming_the_variable() {
    let cases: &[(&str, &str)] = &[
        ("WEB_CONCURRENCY", "many"),
        ("WEB_CONCURRENCY", "0"),
        ("BLITZ_BIND", "nowhere"),
        ("LOG_LEVEL", "loud"),
        ("ENABLE_METRICS", "maybe"),
        ("SESSION_SECURE", "2"),
        ("CSRF_SSL_STRICT", "on-ish"),
        ("MAINTENANCE_MODE_DEFAULT", "perhaps"),
        ("RATE_LIMITS_START", "10/fortnight"),
        ("RATE_LIMITS_STOP", "ten/minute"),
        ("RATE_LIMITS_RECOVER", "0/minute"),
        ("RATE_LIMITS_STATUS", "30"),
        ("RATE_LIMITS_GLOBAL", "/minute"),
        ("MAX_REQUEST_BYTES", "big"),
        ("MAX_REQUEST_BYTES", "-1"),
        ("RATE_LIMIT_REDIS_URL", "http://redis:6379"),
        ("REDIS_URL", "nonsense"),
        ("SECRET_KEY", "short"),
        ("ADMIN_EMAIL", "not-an-email"),
        ("ADMIN_PASSWORD", "short"),
        ("SMTP_URL", "ftp://x"),
        ("PUBLIC_URL", "example.com"),
        ("BOT_TICK_MS", "fast"),
        ("BOTS_PER_USER", "0"),
        ("BOTS_PER_USER", "10001"),
        ("BOTS_PER_USER", "ten"),
        ("PAPER_TICK_MS", "0"),
        ("PAPER_VOLATILITY", "2"),
        ("PAPER_VOLATILITY", "0"),
        ("PAPER_FUNDING_RATE", "0.01"),
        ("PAPER_FUNDING_RATE", "-0.01"),
        ("PAPER_FUNDING_RATE", "1%"),
        ("PAPER_SEED", "seed"),
        ("PAPER_PRICES", "random"),
        (
            "BYBIT_WS_PUBLIC_URL",
            "https://stream.bybit.com/v5/public/linear",
        ),
        ("BINGX_WS_PUBLIC_URL", "open-api-swap.bingx.com/swap-market"),
        ("BYBIT_REQUESTS_PER_5S", "0"),
        ("BYBIT_REQUESTS_PER_5S", "601"),
        ("BINGX_REQUESTS_PER_10S", "2001"),
        ("BINGX_MARKET_REQUESTS_PER_10S", "501"),
        ("FORWARDED_ALLOW_IPS", "not-an-ip"),
        ("SECURITY_CSP", "default-src 'self'\r\nX-Injected: 1"),
    ];
    for (var, value) in cases {
        let o = run(&["check-config"], &[(var, value)]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{var}={value:?} should be rejected: {}",
            stdout(&o)
        );
        let err = stderr(&o);
        assert!(
            err.contains(var),
            "{var}={value:?}: message must name the variable: {err}"
        );
    }
}

#[test]
fn check_config_shows_the_paper_markets_defaults_and_values() {
    let line = |out: &str, var: &str| -> String {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(var))
            .unwrap_or_else(|| panic!("no {var} line in {out}"))
            .to_string()
    };
    let o = run(&["check-config"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        line(&out, "PAPER_VOLATILITY").ends_with("= 60 % a year"),
        "{out}"
    );
    assert!(
        line(&out, "PAPER_FUNDING_RATE").ends_with("= 0.0001"),
        "{out}"
    );
    let o = run(
        &["check-config"],
        &[
            ("PAPER_FUNDING_RATE", "-0.0025"),
            ("PAPER_VOLATILITY", "0.002"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(line(&out, "PAPER_VOLATILITY").ends_with("= 0.002"), "{out}");
    assert!(
        line(&out, "PAPER_FUNDING_RATE").ends_with("= -0.0025"),
        "{out}"
    );
}

#[test]
fn invalid_flags_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--workers", "x"], "--workers"),
        (&["--worker-class", "gevent"], "sync"),
        (&["--timeout", "-3"], "--timeout"),
        (&["--keep-alive", "soon"], "--keep-alive"),
        (&["--backlog", "0"], "--backlog"),
        (&["--bind", "1.2.3.4"], "--bind"),
        (&["--log-level", "chatty"], "--log-level"),
        (&["--limit-request-line", "99999"], "--limit-request-line"),
        (&["--forwarded-allow-ips", "a.b"], "--forwarded-allow-ips"),
        (&["--paper-prices", "replay:"], "--paper-prices"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, needle) in cases {
        let mut a = vec!["check-config"];
        a.extend_from_slice(args);
        let o = run(&a, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn env_file_values_are_read_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blitz.env");
    std::fs::write(
        &file,
        "# comment\nAPP_VERSION=\"9.9.9\"\nRATE_LIMITS_START=3 per second\n",
    )
    .unwrap();
    let o = run(&["check-config", "--env-file", file.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("9.9.9"));
    std::fs::write(&file, "ENABLE_METRICS=sometimes\n").unwrap();
    let o = run(&["check-config", "--env-file", file.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ENABLE_METRICS"));
    let o = run(
        &["check-config", "--env-file", "/nonexistent/blitz.env"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/blitz.env"));
}

#[test]
fn serve_with_invalid_config_exits_2_and_binds_nothing() {
    // Held for the whole test, so "still free" below means blitz bound nothing,
    // not that no other test took the port meanwhile.
    let port = ReservedPort::new();
    let bind = port.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let o = blitz_cmd(dir.path())
        .args(["serve", "--bind", &bind])
        .env("RATE_LIMITS_STATUS", "lots")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("RATE_LIMITS_STATUS"));
    assert!(port.unused(), "port must still be free");
    assert!(
        !dir.path().join("instance").exists(),
        "nothing created for a bad config"
    );
}

/// A replay file is read when the configuration is: a bad line stops `check-config`
/// and `serve` with the setting, the path, the line and the fault (docs/bots.md).
#[test]
fn paper_price_replay_is_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prices.csv");
    std::fs::write(
        &file,
        "seconds,symbol,price\n0,BTC/USDT,60000\n2,ETH/USDT,3000\n",
    )
    .unwrap();
    let spec = format!("replay:{}", file.display());
    let o = run(&["check-config", "--paper-prices", &spec], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("paper-prices") && l.trim_end().ends_with(&spec)),
        "{}",
        stdout(&o)
    );

    std::fs::write(
        &file,
        "seconds,symbol,price\n2,BTC/USDT,60000\n1,BTC/USDT,61000\n",
    )
    .unwrap();
    let o = run(&["check-config"], &[("PAPER_PRICES", &spec)]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let expected = format!(
        "PAPER_PRICES: {}: line 3: 1 seconds is earlier",
        file.display()
    );
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));

    let port = ReservedPort::new();
    let bind = port.addr().to_string();
    let o = run(&["serve", "--bind", &bind], &[("PAPER_PRICES", &spec)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));
    assert!(port.unused(), "port must still be free");
}

#[test]
fn a_port_in_use_is_a_runtime_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let o = run(&["serve", "--bind", &bind, "--workers", "1"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&bind), "{}", stderr(&o));
}
