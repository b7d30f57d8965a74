//! Maintenance against the real binary: maintenance mode and the banner, seen by every
//! worker at once, persisted, seeded from the environment only once, and the 503
//! rule for non-admin bot commands.

mod common;

use std::time::{Duration, Instant};

use common::bots::{user, User, CALM};
use common::{Options, Server};
use serde_json::{json, Value};

fn server_in(dir: tempfile::TempDir, env: &[(&'static str, &'static str)]) -> Server {
    let mut all = CALM.to_vec();
    all.extend_from_slice(env);
    Server::start_in(
        dir,
        Options {
            workers: 3,
            env: all,
            ..Options::default()
        },
    )
}

fn status(s: &Server) -> Value {
    let r = s.get("/api/status");
    assert_eq!(r.status, 200);
    r.json()
}

fn post(s: &Server, u: &User, path: &str, body: Value) -> (u16, Value, Option<String>) {
    let r = u.call(s, "POST", path, &body.to_string());
    let retry = r.header("retry-after").map(str::to_string);
    (r.status, r.json(), retry)
}

/// Every one of `n` fresh connections (spread over the workers) sees `want`, and
/// this became true within a second of the change.
fn all_workers_see(s: &Server, want: &Value, since: Instant) {
    common::wait_for(
        Duration::from_secs(1),
        "every worker sees the change",
        || (0..12).all(|_| &status(s) == want),
    );
    assert!(since.elapsed() < Duration::from_secs(2));
}

#[test]
fn maintenance_blocks_user_bot_commands_and_everyone_sees_it() {
    let s = server_in(tempfile::tempdir().unwrap(), &[]);
    let admin = user(&s, "root@example.com", true);
    let u = user(&s, "someone@example.com", false);
    assert_eq!(
        status(&s),
        json!({"maintenance_enabled": false, "banner_message": ""})
    );
    assert_eq!(post(&s, &u, "/admin/maintenance/enable", json!({})).0, 403);

    let (code, body, _) = post(&s, &admin, "/admin/maintenance/enable", json!({}));
    assert_eq!(
        (code, body),
        (200, json!({"success": true, "maintenance_enabled": true}))
    );
    all_workers_see(
        &s,
        &json!({"maintenance_enabled": true, "banner_message": ""}),
        Instant::now(),
    );

    for path in ["/api/bot/start", "/api/bot/stop", "/api/bot/recover"] {
        let (code, body, retry) = post(&s, &u, path, json!({}));
        assert_eq!(code, 503, "{path}");
        assert_eq!(
            body,
            json!({"success": false, "error": "Service under maintenance",
            "message": "The service is under maintenance. Please try again later.", "retry_after": 60})
        );
        assert_eq!(retry.as_deref(), Some("60"));
    }
    // Reads, health and admins are unaffected.
    assert_eq!(u.call(&s, "GET", "/api/bot/status", "").status, 200);
    assert_eq!(s.get("/readyz").status, 200);
    assert_eq!(post(&s, &admin, "/api/bot/start", json!({})).0, 200);
    assert_eq!(
        post(
            &s,
            &admin,
            &format!("/api/admin/users/{}/bot/start", u.id),
            json!({})
        )
        .0,
        200
    );

    // The banner becomes the 503's message.
    let (code, body, _) = post(
        &s,
        &admin,
        "/admin/banner",
        json!({"message": "  Upgrading until 18:00  "}),
    );
    assert_eq!(
        (code, body),
        (
            200,
            json!({"success": true, "banner_message": "Upgrading until 18:00"})
        )
    );
    let since = Instant::now();
    all_workers_see(
        &s,
        &json!({"maintenance_enabled": true, "banner_message": "Upgrading until 18:00"}),
        since,
    );
    assert_eq!(
        post(&s, &u, "/api/bot/stop", json!({})).1["message"],
        "Upgrading until 18:00"
    );
    // Every HTML page shows both.
    let page = s.get("/reset/not-a-token").text();
    assert!(
        page.contains("Upgrading until 18:00") && page.contains("under maintenance"),
        "{page}"
    );
    assert_eq!(
        post(
            &s,
            &admin,
            "/admin/banner",
            json!({"message": "<b>bold</b>"})
        )
        .0,
        200
    );
    common::wait_for(Duration::from_secs(2), "escaped banner on pages", || {
        (0..6).all(|_| s.get("/reset/x").text().contains("&lt;b&gt;bold&lt;/b&gt;"))
    });
    assert_eq!(
        post(
            &s,
            &admin,
            "/admin/banner",
            json!({"message": "Upgrading until 18:00"})
        )
        .0,
        200
    );
    for bad in [
        json!({}),
        json!({"message": ""}),
        json!({"message": "x".repeat(501)}),
        json!({"message": 5}),
    ] {
        let (code, body, _) = post(&s, &admin, "/admin/banner", bad.clone());
        assert_eq!(code, 400, "{bad}");
        assert!(body["fields"]["message"].is_string(), "{body}");
    }

    let (code, body, _) = post(&s, &admin, "/admin/maintenance/disable", json!({}));
    assert_eq!(
        (code, body),
        (200, json!({"success": true, "maintenance_enabled": false}))
    );
    all_workers_see(
        &s,
        &json!({"maintenance_enabled": false, "banner_message": "Upgrading until 18:00"}),
        Instant::now(),
    );
    assert_eq!(
        post(&s, &u, "/api/bot/stop", json!({})).0,
        200,
        "commands work again"
    );
    let (code, body, _) = post(&s, &admin, "/admin/banner/clear", json!({}));
    assert_eq!(
        (code, body),
        (200, json!({"success": true, "banner_message": ""}))
    );
    all_workers_see(
        &s,
        &json!({"maintenance_enabled": false, "banner_message": ""}),
        Instant::now(),
    );
    assert!(
        !s.get("/reset/x").text().contains("class=\"notice"),
        "no notice when none is set"
    );
}

#[test]
fn settings_persist_and_environment_defaults_apply_only_once() {
    let env = [
        ("MAINTENANCE_MODE_DEFAULT", "true"),
        ("BROADCAST_BANNER", "Welcome"),
    ];
    let s = server_in(tempfile::tempdir().unwrap(), &env);
    assert_eq!(
        status(&s),
        json!({"maintenance_enabled": true, "banner_message": "Welcome"})
    );
    let admin = user(&s, "root@example.com", true);
    assert_eq!(
        post(&s, &admin, "/admin/maintenance/disable", json!({})).0,
        200
    );
    assert_eq!(
        post(&s, &admin, "/admin/banner", json!({"message": "Chosen"})).0,
        200
    );
    let (dir, _) = s.terminate();
    // Same environment: the admin's choice stays.
    let s = server_in(dir, &env);
    assert_eq!(
        status(&s),
        json!({"maintenance_enabled": false, "banner_message": "Chosen"})
    );
    // A change made straight in the database is picked up within a second.
    common::bots::db(&s)
        .execute(
            "UPDATE settings SET value = 'true' WHERE key = 'maintenance_enabled'",
            [],
        )
        .unwrap();
    all_workers_see(
        &s,
        &json!({"maintenance_enabled": true, "banner_message": "Chosen"}),
        Instant::now(),
    );
}

#[test]
fn an_environment_default_set_later_applies_while_no_admin_chose() {
    let s = server_in(tempfile::tempdir().unwrap(), &[]);
    assert_eq!(status(&s)["maintenance_enabled"], false);
    let (dir, _) = s.terminate();
    let s = server_in(
        dir,
        &[
            ("MAINTENANCE_MODE_DEFAULT", "yes"),
            ("BROADCAST_BANNER", "Later"),
        ],
    );
    assert_eq!(
        status(&s),
        json!({"maintenance_enabled": true, "banner_message": "Later"})
    );
}
