//! Load test against the binary: `blitz loadtest` makes its users, drives a running
//! server and reports every endpoint; bad options are refused.

mod common;

use common::bots::{user, CALM};
use common::{blitz_cmd, Options, Server, BIN};
use serde_json::Value;

fn server() -> Server {
    Server::with(Options {
        workers: 2,
        env: CALM.to_vec(),
        ..Options::default()
    })
}

fn loadtest(s: &Server, extra: &[&str]) -> (i32, Value) {
    let url = format!("http://127.0.0.1:{}", s.port);
    let out = blitz_cmd(s.dir.path())
        .args([
            "loadtest",
            "--url",
            &url,
            "--connections",
            "4",
            "--duration",
            "2",
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

#[test]
fn drives_every_endpoint_with_its_own_users() {
    let s = server();
    let (code, r) = loadtest(&s, &["--users", "20", "--database", "instance/database.db"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!((&r["users"], &r["bots_per_user"]), (&20.into(), &1.into()));
    assert_eq!(r["total"]["errors"], 0);
    let endpoints = r["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 8);
    let mut sum = 0;
    for e in endpoints {
        let n = e["requests"].as_u64().unwrap();
        assert!(n > 0, "{e}");
        sum += n;
        for k in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            assert!(e[k].as_f64().unwrap() > 0.0, "{k} of {e}");
        }
        assert!(e["p50_ms"].as_f64() <= e["p99_ms"].as_f64());
        for status in e["statuses"].as_object().unwrap().keys() {
            assert!(["200", "409", "429"].contains(&status.as_str()), "{e}");
        }
    }
    assert_eq!(r["total"]["requests"].as_u64(), Some(sum));
    let reads = &endpoints[0];
    assert_eq!(reads["endpoint"], "GET /api/bot/status");
    assert_eq!(
        reads["statuses"]["200"], reads["requests"],
        "status polls all answered"
    );
    // Its users exist once, verified, with one load-test token each, even after a rerun.
    let (code, _) = loadtest(&s, &["--users", "20", "--database", "instance/database.db"]);
    assert_eq!(code, 0);
    let db = common::bots::db(&s);
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM user WHERE email LIKE 'loadtest-%' AND verified_at IS NOT NULL"
        ),
        20
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM api_tokens WHERE name = 'loadtest'"),
        20
    );
}

#[test]
fn users_with_three_bots_spread_the_bot_actions_over_them() {
    let s = server();
    let args = [
        "--users",
        "20",
        "--database",
        "instance/database.db",
        "--bots-per-user",
        "3",
    ];
    let (code, r) = loadtest(&s, &args);
    assert_eq!(code, 0, "{r}");
    assert_eq!((&r["users"], &r["bots_per_user"]), (&20.into(), &3.into()));
    assert_eq!(r["total"]["errors"], 0);
    let endpoints = r["endpoints"].as_array().unwrap();
    let names: Vec<&str> = endpoints
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "GET /api/bots/<id>/status",
            "GET /api/trades?limit=20",
            "GET /api/pnl/summary?days=7",
            "GET /api/bots/<id>/events?limit=20",
            "GET /api/status",
            "POST /api/bots/<id>/start",
            "POST /api/bots/<id>/stop",
            "POST /api/bots/<id>/recover",
        ]
    );
    for e in endpoints {
        assert!(e["requests"].as_u64().unwrap() > 0, "{e}");
    }
    assert_eq!(endpoints[0]["statuses"]["200"], endpoints[0]["requests"]);
    // A rerun reuses the bots: every load user still has exactly three, on three
    // distinct markets.
    let (code, r) = loadtest(&s, &args);
    assert_eq!(code, 0, "{r}");
    let db = common::bots::db(&s);
    let load_users = "SELECT id FROM user WHERE email LIKE 'loadtest-%'";
    let per_user: Vec<(i64, i64)> = db
        .prepare(&format!(
            "SELECT COUNT(*), COUNT(DISTINCT exchange || ' ' || symbol || ' ' || side)
             FROM user_bots WHERE user_id IN ({load_users}) GROUP BY user_id"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(per_user, vec![(3, 3); 20]);
    // Starts reached several bots, not only the users' default ones.
    let started = |extra: &str| -> i64 {
        db.query_row(
            &format!(
                "SELECT COUNT(DISTINCT bot_id) FROM bot_events
                 WHERE kind = 'started' AND user_id IN ({load_users}) {extra}"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(started("") >= 3, "{} bots started", started(""));
    let defaults = "SELECT MIN(id) FROM user_bots GROUP BY user_id";
    assert!(
        started(&format!("AND bot_id NOT IN ({defaults})")) >= 1,
        "only default bots started"
    );
}

#[test]
fn uses_tokens_from_a_file() {
    let s = server();
    let u = user(&s, "a@x.io", false);
    std::fs::write(s.path("tokens.txt"), format!("{}\n", u.token)).unwrap();
    let (code, r) = loadtest(&s, &["--tokens", "tokens.txt"]);
    assert_eq!((code, &r["users"]), (0, &Value::from(1)));
    assert!(r["total"]["requests"].as_u64().unwrap() > 10);
}

#[test]
fn a_run_where_nothing_works_fails() {
    let s = server();
    std::fs::write(s.path("stale.txt"), "blitz_not_a_token_anyone_has\n").unwrap();
    let (code, r) = loadtest(&s, &["--tokens", "stale.txt"]);
    assert_eq!(code, 1, "{r}");
    // Every authenticated call is a 401 and counts as a failure (only the public
    // /api/status answers 200).
    let polls = &r["endpoints"][0];
    assert_eq!(polls["endpoint"], "GET /api/bot/status");
    assert!(polls["requests"].as_u64().unwrap() > 0);
    assert_eq!(polls["statuses"]["401"], polls["requests"]);
    assert_eq!(polls["errors"], polls["requests"]);
}

#[test]
fn bad_options_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["loadtest", "--url", "https://example.com", "--tokens", "t"],
        vec!["loadtest", "--url", "http://127.0.0.1:1"],
        vec!["loadtest", "--users", "many"],
        vec!["loadtest", "--bots-per-user", "0", "--tokens", "t"],
        vec!["loadtest", "--bots-per-user", "7", "--tokens", "t"],
    ] {
        let out = std::process::Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.is_empty());
        if let Some(option) = args.iter().find(|a| a.starts_with("--bots")) {
            assert!(stderr.contains(option), "{args:?}: {stderr}");
        }
    }
}
