//! The web pages in a real browser: starts the real binary, then runs
//! `tests/e2e/flow.mjs` (Node with playwright-core driving Debian's headless
//! Chromium) against it. Missing Node, Chromium or `npm ci` fail the test with a
//! message saying what to install; `tests/run` installs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::bots::CALM;
use common::{blitz_cmd, Options, Server};

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// `$BLITZ_E2E_ARTIFACTS`, else `e2e-artifacts/` in the cargo target directory.
fn artifact_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BLITZ_E2E_ARTIFACTS") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/browser-… → target/
    let target = exe.ancestors().nth(3).expect("target directory");
    target.join("e2e-artifacts")
}

fn chromium() -> PathBuf {
    std::env::var_os("BLITZ_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Fails loudly when a tool the test needs is missing: a browser test that
/// silently passes without a browser would prove nothing.
fn require_tools() {
    let node = Command::new("node").arg("--version").output();
    let version = node
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "Node.js 20 or later is needed (playwright-core), found {version:?}: \
         tests/run installs Debian's `nodejs` package when node is missing"
    );
    assert!(
        chromium().exists(),
        "{} is missing: install Debian's `chromium` package (tests/run does) or set BLITZ_CHROMIUM",
        chromium().display()
    );
    assert!(
        e2e_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in tests/e2e (tests/run does)"
    );
}

/// A verified admin with a generated password (printed once on stdout).
fn create_admin(s: &Server, email: &str) -> String {
    let out = blitz_cmd(s.dir.path())
        .args(["user", "create", "--email", email, "--admin"])
        .args(["--database", "instance/database.db"])
        .stdin(Stdio::null())
        .output()
        .expect("run blitz user create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Closed trades of the last few days (wins and losses) for the PnL page.
fn seed_trades(s: &Server, email: &str) {
    let db = common::bots::db(s);
    let uid: i64 = db
        .query_row("SELECT id FROM user WHERE email = ?1", [email], |r| {
            r.get(0)
        })
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (i, pnl) in [12.5, -4.0, 7.25, 3.0, -9.5, 15.0, 2.0].iter().enumerate() {
        let closed = now - i as i64 * 86_400 + 60;
        db.execute(
            "INSERT INTO trades (user_id, symbol, side, size, avg_entry, exit_price, pnl, fees,
                                 cycle, opened_at, closed_at)
             VALUES (?1, 'BTC/USDT', 'long', 0.01, 60000, 60100, ?2, 0.1, ?3, ?4, ?5)",
            rusqlite::params![uid, pnl, i as i64 + 1, closed - 600, closed.min(now)],
        )
        .unwrap();
    }
}

/// BTC/USDT around 60000 for half an hour: a few dollars up and down every 5 s.
fn price_path(dir: &Path) -> PathBuf {
    let mut csv = String::from("seconds,symbol,price\n");
    for (i, t) in (0..1800).step_by(5).enumerate() {
        let price = 60_000 + [0, 12, -7, 5, -15, 9][i % 6];
        csv.push_str(&format!("{t},BTC/USDT,{price}\n"));
    }
    let file = dir.join("prices.csv");
    std::fs::write(&file, csv).expect("write the price path");
    file
}

#[test]
fn register_verify_login_settings_start_stop_and_maintenance_in_chromium() {
    require_tools();
    // The status limit stays at its default (30/minute): the dashboard's polling
    // must live within it. Two starts an hour: the flow's third Start shows the
    // 429 message. BTC/USDT follows a replayed path (small moves, so the ladder
    // rests and the chart's last candle moves).
    let prices = tempfile::tempdir().unwrap();
    let path = price_path(prices.path());
    let replay = format!("replay:{}", path.display());
    let mut env: Vec<(&str, &str)> = CALM
        .iter()
        .copied()
        .filter(|(k, _)| !matches!(*k, "RATE_LIMITS_STATUS" | "RATE_LIMITS_START"))
        .collect();
    env.push(("RATE_LIMITS_START", "2/hour"));
    env.push(("PAPER_PRICES", replay.as_str()));
    let s = Server::with(Options {
        env,
        ..Options::default()
    });
    let admin_email = "admin@example.com";
    let admin_pw = create_admin(&s, admin_email);
    seed_trades(&s, admin_email);
    let artifacts = artifact_dir();
    let base = format!("http://127.0.0.1:{}", s.port);
    let out = Command::new("node")
        .current_dir(e2e_dir())
        .arg("flow.mjs")
        .arg(&base)
        .arg(s.path("instance/outbox"))
        .arg(&artifacts)
        .args([admin_email, admin_pw.as_str()])
        .env("BLITZ_CHROMIUM", chromium())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stderr}\n{stdout}\nserver log:\n{}",
        s.log()
    );
    println!("{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let shots = report["screenshots"].as_array().expect("screenshots");
    let pages = [
        "login",
        "settings",
        "dashboard",
        "pnl",
        "admin",
        "admin-user",
        "dashboard-dark",
        "accounts",
    ];
    assert_eq!(shots.len(), pages.len() * 2);
    for page in pages {
        for width in [1280, 375] {
            let file = artifacts.join(format!("{page}-{width}.png"));
            let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} missing or empty", file.display());
        }
    }
    for shot in shots.iter().filter(|s| s["width"] == 375) {
        assert!(shot["scrollWidth"].as_u64().unwrap() <= 375, "{shot}");
    }
}
