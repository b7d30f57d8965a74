//! Accounts against the real binary and a real SQLite file: registration and
//! verification, login and the session cookie, CSRF, the failed-login limit across
//! workers, logout, password change, forgot/reset, API tokens and the admin flags.

mod common;

use common::api::{call, login, login_resp, mailed_token, new_user, register, Browser};
use common::{Options, Server};
use serde_json::json;

const PW: &str = "correct-horse-1";
const ADMIN_PW: &str = "admin-password-1";

fn server_with(env: Vec<(&'static str, &'static str)>, workers: usize) -> Server {
    let mut env = env;
    env.push(("ADMIN_PASSWORD", ADMIN_PW));
    Server::with(Options {
        workers,
        env,
        ..Options::default()
    })
}

fn server() -> Server {
    server_with(Vec::new(), 2)
}

fn outbox(s: &Server) -> std::path::PathBuf {
    s.path("instance/outbox")
}

fn post(s: &Server, path: &str, body: serde_json::Value) -> common::Resp {
    call(s.port, "POST", path, &[], &body.to_string())
}

#[test]
fn register_verify_login_and_their_errors() {
    let s = server();
    let p = s.port;
    let bad = register(p, "not-an-email", "short");
    assert_eq!(bad.status, 400);
    let fields = &bad.json()["fields"];
    assert!(
        fields["email"].is_string() && fields["password"].is_string(),
        "{fields}"
    );
    let missing = post(&s, "/api/auth/register", json!({}));
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["fields"]["email"], "is required");
    let wrong_type = post(
        &s,
        "/api/auth/register",
        json!({"email": 5, "password": PW}),
    );
    assert_eq!(wrong_type.json()["fields"]["email"], "must be a string");
    assert_eq!(
        call(p, "POST", "/api/auth/register", &[], "{nope").status,
        400
    );

    let r = register(p, "Alice@Example.com", PW);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"success": true, "message": "Verification email sent"})
    );
    // Addresses are case-insensitive: the same mailbox cannot register twice.
    let taken = register(p, "alice@example.com", PW);
    assert_eq!(taken.status, 409);
    assert!(taken.json()["error"].is_string());

    // Not verified yet: the right password gets 403, a wrong one still 401.
    let unverified = login_resp(p, "alice@example.com", PW);
    assert_eq!(unverified.status, 403);
    assert_eq!(unverified.json(), json!({"error": "Email not verified"}));
    assert_eq!(
        login_resp(p, "alice@example.com", "wrong-password").status,
        401
    );

    let bogus = post(&s, "/api/auth/verify", json!({"token": "x".repeat(43)}));
    assert_eq!(bogus.status, 400);
    let token = mailed_token(&outbox(&s), "alice@example.com", "/verify/");
    let ok = post(&s, "/api/auth/verify", json!({ "token": token }));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let again = post(&s, "/api/auth/verify", json!({ "token": token }));
    assert_eq!(again.status, 400, "single use");

    let b = login(p, "ALICE@example.com", PW);
    let me = b.call(p, "GET", "/api/auth/me", "");
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["user"]["email"], "alice@example.com");
    assert_eq!(me.json()["user"]["is_admin"], false);

    // Unknown e-mail and wrong password are indistinguishable.
    let unknown = login_resp(p, "nobody@example.com", PW);
    let wrong = login_resp(p, "alice@example.com", "wrong-password");
    assert_eq!((unknown.status, wrong.status), (401, 401));
    assert_eq!(unknown.body, wrong.body);
    assert_eq!(
        call(p, "GET", "/api/auth/me", &[], "").json(),
        json!({"error": "Authentication required"})
    );
}

#[test]
fn verify_page_is_html_and_single_use() {
    let s = Server::with(Options {
        args: vec!["--access-logfile", "access.log"],
        ..Options::default()
    });
    assert_eq!(register(s.port, "page@example.com", PW).status, 201);
    let token = mailed_token(&outbox(&s), "page@example.com", "/verify/");
    let first = s.get(&format!("/verify/{token}"));
    assert_eq!(first.status, 200);
    assert!(first
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(first.text().contains("E-mail verified"));
    let second = s.get(&format!("/verify/{token}"));
    assert_eq!(second.status, 400);
    assert!(second.text().contains("invalid"));
    assert_eq!(login_resp(s.port, "page@example.com", PW).status, 200);
    // One-time links never reach the logs.
    let access = std::fs::read_to_string(s.path("access.log")).unwrap();
    assert!(access.contains("/verify/<token>"), "{access}");
    assert!(!access.contains(&token) && !s.log().contains(&token));
}

fn session_cookie_attributes(secure: bool) -> String {
    let env = if secure {
        vec![("SESSION_SECURE", "true")]
    } else {
        Vec::new()
    };
    let s = server_with(env, 1);
    new_user(s.port, &outbox(&s), "c@example.com", PW);
    let r = login_resp(s.port, "c@example.com", PW);
    r.header("set-cookie").unwrap().to_string()
}

#[test]
fn cookie_attributes_follow_session_secure() {
    for secure in [false, true] {
        let c = session_cookie_attributes(secure);
        let attrs: Vec<&str> = c.split("; ").collect();
        assert!(
            attrs[0].starts_with("blitz_session=") && attrs[0].len() > 30,
            "{c}"
        );
        for a in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
            assert!(attrs.contains(&a), "{a} missing in {c}");
        }
        assert_eq!(attrs.contains(&"Secure"), secure, "{c}");
    }
}

#[test]
fn csrf_is_required_for_sessions_and_not_for_bearers() {
    let s = server();
    let p = s.port;
    let b = new_user(p, &outbox(&s), "csrf@example.com", PW);
    let body = json!({"name": "t"}).to_string();
    let cookie = [("Cookie", b.cookie.as_str())];
    let refused = json!({"error": "CSRF token missing or invalid"});

    let none = call(p, "POST", "/api/auth/tokens", &cookie, &body);
    assert_eq!((none.status, none.json()), (403, refused.clone()));
    let other = new_user(p, &outbox(&s), "other@example.com", PW);
    let foreign = call(
        p,
        "POST",
        "/api/auth/tokens",
        &[("Cookie", &b.cookie), ("X-CSRF-Token", &other.csrf)],
        &body,
    );
    assert_eq!((foreign.status, foreign.json()), (403, refused.clone()));
    let garbage = call(
        p,
        "POST",
        "/api/auth/tokens",
        &[("Cookie", &b.cookie), ("X-CSRF-Token", "garbage")],
        &body,
    );
    assert_eq!(garbage.status, 403);

    let created = b.call(p, "POST", "/api/auth/tokens", &body);
    assert_eq!(created.status, 201, "{}", created.text());
    let token = created.json()["token"].as_str().unwrap().to_string();

    // /me hands out a fresh-looking token each time; every one of them works.
    let t1 = b.call(p, "GET", "/api/auth/me", "").json()["csrf_token"].clone();
    let t2 = b.call(p, "GET", "/api/auth/me", "").json()["csrf_token"].clone();
    assert_ne!(t1, t2);
    let with_t2 = call(
        p,
        "POST",
        "/api/auth/tokens",
        &[
            ("Cookie", &b.cookie),
            ("X-CSRF-Token", t2.as_str().unwrap()),
        ],
        &body,
    );
    assert_eq!(with_t2.status, 201);

    // An HTML form may send the token as a field instead of the header.
    let form = format!("csrf_token={}", b.csrf);
    let raw = format!(
        "POST /api/auth/logout HTTP/1.1\r\nHost: t\r\nCookie: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        b.cookie,
        form.len()
    );
    let logout = common::request(p, raw.as_bytes());
    assert_eq!(logout.status, 200, "{}", logout.text());

    // Bearer requests need no CSRF token.
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let listed = call(p, "GET", "/api/auth/tokens", &auth, "");
    assert_eq!(listed.status, 200);
    let id = listed.json()["tokens"][0]["id"].as_i64().unwrap();
    let path = format!("/api/auth/tokens/{id}");
    assert_eq!(call(p, "DELETE", &path, &auth, "").status, 200);
}

#[test]
fn strict_csrf_checks_origin_over_forwarded_https() {
    let s = server_with(vec![("CSRF_SSL_STRICT", "true")], 2);
    let p = s.port;
    let b = new_user(p, &outbox(&s), "strict@example.com", PW);
    let host = format!("127.0.0.1:{p}");
    let send = |extra: &[(&str, &str)]| {
        let mut h = vec![
            ("Cookie", b.cookie.as_str()),
            ("X-CSRF-Token", b.csrf.as_str()),
        ];
        h.extend_from_slice(extra);
        call(p, "POST", "/api/auth/tokens", &h, "{}").status
    };
    let https = ("X-Forwarded-Proto", "https");
    let same = format!("https://{host}");
    let same_ref = format!("https://{host}/settings");
    // Plain HTTP: the token alone is enough.
    assert_eq!(send(&[]), 201);
    // HTTPS via the trusted proxy: Origin or Referer of this host is required.
    assert_eq!(send(&[https]), 403);
    assert_eq!(send(&[https, ("Origin", "https://evil.example")]), 403);
    assert_eq!(send(&[https, ("Origin", &format!("http://{host}"))]), 403);
    assert_eq!(send(&[https, ("Origin", &same)]), 201);
    assert_eq!(send(&[https, ("Referer", &same_ref)]), 201);
    assert_eq!(send(&[https, ("Referer", "https://evil.example/x")]), 403);
    // A browser form post under `Referrer-Policy: no-referrer` says only
    // `Origin: null`; the browser's own `Sec-Fetch-Site` vouches for it.
    assert_eq!(send(&[https, ("Origin", "null")]), 403);
    assert_eq!(
        send(&[https, ("Origin", "null"), ("Sec-Fetch-Site", "same-origin")]),
        201
    );
    assert_eq!(
        send(&[https, ("Origin", "null"), ("Sec-Fetch-Site", "cross-site")]),
        403
    );
}

#[test]
fn failed_logins_are_limited_per_email_and_ip_pair_and_per_ip_across_workers() {
    let s = Server::with(Options {
        workers: 3,
        args: vec![
            "--access-logfile",
            "access.log",
            "--access-logformat",
            "%(p)s %(m)s %(U)s %(s)s",
        ],
        ..Options::default()
    });
    let p = s.port;
    new_user(p, &outbox(&s), "victim@example.com", PW);
    let attempt = |email: &str, pw: &str, ip: &str| {
        let body = json!({"email": email, "password": pw}).to_string();
        // Each attempt on a new connection, so the workers share the load.
        call(
            p,
            "POST",
            "/api/auth/login",
            &[("X-Forwarded-For", ip)],
            &body,
        )
    };
    // Per (e-mail, address): five wrong passwords from one address lock that
    // address out of the account, even with the right password...
    for _ in 0..5 {
        let r = attempt("victim@example.com", "wrong-password", "10.0.0.1");
        assert_eq!(r.status, 401);
    }
    let limited = attempt("victim@example.com", PW, "10.0.0.1");
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(limited.json()["error"].is_string());
    // ...but never the owner, who logs in from another address.
    assert_eq!(attempt("victim@example.com", PW, "10.0.0.2").status, 200);
    // Wrong passwords spread over many addresses lock nobody out either.
    for i in 10..20 {
        let r = attempt(
            "victim@example.com",
            "wrong-password",
            &format!("10.0.1.{i}"),
        );
        assert_eq!(r.status, 401);
    }
    assert_eq!(attempt("victim@example.com", PW, "10.0.0.3").status, 200);

    // Per IP: twenty different unknown e-mails from one address, all at once (so
    // that several workers answer them), then that address is refused even for a
    // valid account; another address is not.
    std::thread::scope(|sc| {
        let guesses: Vec<_> = (0..20)
            .map(|i| {
                let attempt = &attempt;
                sc.spawn(move || {
                    attempt(&format!("guess{i}@example.com"), "whatever-1", "10.9.9.9")
                })
            })
            .collect();
        for g in guesses {
            assert_eq!(g.join().unwrap().status, 401);
        }
    });
    assert_eq!(
        attempt("fresh@example.com", "whatever-1", "10.9.9.9").status,
        429
    );
    assert_eq!(attempt("victim@example.com", PW, "10.9.9.9").status, 429);
    assert_eq!(
        attempt("fresh@example.com", "whatever-1", "10.9.9.8").status,
        401
    );
    // The limit held although several workers answered these attempts (workers
    // write their access lines at the end of each event-loop turn: poll).
    let mut log = String::new();
    common::wait_for(
        std::time::Duration::from_secs(5),
        "logins answered by 2+ workers",
        || {
            log = std::fs::read_to_string(s.path("access.log")).unwrap();
            let pids: std::collections::BTreeSet<&str> = log
                .lines()
                .filter(|l| l.contains(" /api/auth/login "))
                .filter_map(|l| l.split(' ').next())
                .collect();
            pids.len() >= 2
        },
    );
}

#[test]
fn logout_revokes_the_session_server_side() {
    let s = server();
    let p = s.port;
    let b = new_user(p, &outbox(&s), "out@example.com", PW);
    let r = b.call(p, "POST", "/api/auth/logout", "");
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    // Replaying the old cookie (as a stolen copy would) no longer works.
    assert_eq!(b.call(p, "GET", "/api/auth/me", "").status, 401);
}

#[test]
fn password_change_keeps_this_session_and_revokes_others() {
    let s = server();
    let p = s.port;
    let here = new_user(p, &outbox(&s), "pw@example.com", PW);
    let elsewhere = login(p, "pw@example.com", PW);
    let wrong = here.call(
        p,
        "POST",
        "/api/auth/password",
        &json!({"current_password": "nope-nope", "new_password": "new-password-1"}).to_string(),
    );
    assert_eq!(wrong.status, 400);
    let short = here.call(
        p,
        "POST",
        "/api/auth/password",
        &json!({"current_password": PW, "new_password": "short"}).to_string(),
    );
    assert_eq!(short.status, 400);
    assert!(short.json()["fields"]["new_password"].is_string());
    let ok = here.call(
        p,
        "POST",
        "/api/auth/password",
        &json!({"current_password": PW, "new_password": "new-password-1"}).to_string(),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(here.call(p, "GET", "/api/auth/me", "").status, 200);
    assert_eq!(elsewhere.call(p, "GET", "/api/auth/me", "").status, 401);
    assert_eq!(login_resp(p, "pw@example.com", PW).status, 401);
    login(p, "pw@example.com", "new-password-1");
}

#[test]
fn forgot_and_reset_without_account_enumeration() {
    let s = server_with(vec![("PUBLIC_URL", "https://blitz.example")], 2);
    let p = s.port;
    let old = new_user(p, &outbox(&s), "forgot@example.com", PW);
    let unknown = post(
        &s,
        "/api/auth/forgot",
        json!({"email": "ghost@example.com"}),
    );
    let known = post(
        &s,
        "/api/auth/forgot",
        json!({"email": "forgot@example.com"}),
    );
    assert_eq!((unknown.status, known.status), (202, 202));
    assert_eq!(unknown.body, known.body);
    let token = mailed_token(
        &outbox(&s),
        "forgot@example.com",
        "https://blitz.example/reset/",
    );
    // Asking again at once is answered the same but mails nothing more.
    let again = post(
        &s,
        "/api/auth/forgot",
        json!({"email": "forgot@example.com"}),
    );
    assert_eq!(again.status, 202);
    let reset_mails = || {
        std::fs::read_dir(outbox(&s))
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("/reset/")))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        assert_eq!(reset_mails(), 1, "a second reset mail within a minute");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // The page behind the link shows a form; a short password is refused there.
    let page = s.get(&format!("/reset/{token}"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("name=\"new_password\""));

    let short = post(
        &s,
        "/api/auth/reset",
        json!({"token": token, "new_password": "x"}),
    );
    assert_eq!(short.status, 400);
    let bad = post(
        &s,
        "/api/auth/reset",
        json!({"token": "y".repeat(43), "new_password": "new-password-2"}),
    );
    assert_eq!(bad.status, 400);
    let ok = post(
        &s,
        "/api/auth/reset",
        json!({"token": token, "new_password": "new-password-2"}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let reuse = post(
        &s,
        "/api/auth/reset",
        json!({"token": token, "new_password": "new-password-3"}),
    );
    assert_eq!(reuse.status, 400, "single use");
    assert_eq!(s.get(&format!("/reset/{token}")).status, 400);
    // Every session ends with a reset; only the new password works.
    assert_eq!(old.call(p, "GET", "/api/auth/me", "").status, 401);
    assert_eq!(login_resp(p, "forgot@example.com", PW).status, 401);
    login(p, "forgot@example.com", "new-password-2");
}

#[test]
fn reset_form_posts_from_the_page() {
    let s = server();
    new_user(s.port, &outbox(&s), "form@example.com", PW);
    post(&s, "/api/auth/forgot", json!({"email": "form@example.com"}));
    let token = mailed_token(&outbox(&s), "form@example.com", "/reset/");
    let form = "new_password=from-the-form-1";
    let raw = format!(
        "POST /reset/{token} HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        form.len()
    );
    let r = common::request(s.port, raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    login(s.port, "form@example.com", "from-the-form-1");
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn api_token_lifecycle() {
    let s = server();
    let p = s.port;
    let b = new_user(p, &outbox(&s), "tok@example.com", PW);
    let created = b.call(
        p,
        "POST",
        "/api/auth/tokens",
        &json!({"name": "ci"}).to_string(),
    );
    assert_eq!(created.status, 201);
    let j = created.json();
    let token = j["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("blitz_"));
    assert_eq!(j["name"], "ci");
    let auth = bearer(&token);
    let me = call(p, "GET", "/api/auth/me", &[("Authorization", &auth)], "");
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["user"]["email"], "tok@example.com");
    assert!(me.json()["csrf_token"].is_null());

    // Listed without the secret; a token cannot mint more tokens.
    let list = b.call(p, "GET", "/api/auth/tokens", "");
    let listed = &list.json()["tokens"][0];
    assert_eq!(listed["name"], "ci");
    assert!(listed.get("token").is_none() && !list.text().contains(&token));
    let minted = call(
        p,
        "POST",
        "/api/auth/tokens",
        &[("Authorization", &auth)],
        "{}",
    );
    assert_eq!(minted.status, 403);
    let empty_name = b.call(
        p,
        "POST",
        "/api/auth/tokens",
        &json!({"name": " "}).to_string(),
    );
    assert_eq!(empty_name.status, 400);

    // Another user cannot delete it; its owner can, and then it stops working.
    let id = j["id"].as_i64().unwrap();
    let path = format!("/api/auth/tokens/{id}");
    let mallory = new_user(p, &outbox(&s), "mallory@example.com", PW);
    assert_eq!(mallory.call(p, "DELETE", &path, "").status, 404);
    assert_eq!(b.call(p, "DELETE", &path, "").status, 200);
    assert_eq!(b.call(p, "DELETE", &path, "").status, 404);
    let gone = call(p, "GET", "/api/auth/me", &[("Authorization", &auth)], "");
    assert_eq!(gone.status, 401);
    let garbage = call(
        p,
        "GET",
        "/api/auth/me",
        &[("Authorization", "Bearer x")],
        "",
    );
    assert_eq!(garbage.status, 401);
}

fn patch_user(p: u16, who: &Browser, id: i64, body: serde_json::Value) -> common::Resp {
    who.call(
        p,
        "PATCH",
        &format!("/api/admin/users/{id}"),
        &body.to_string(),
    )
}

#[test]
fn admin_flags_disable_and_promote() {
    let s = server();
    let p = s.port;
    let admin = login(p, "admin@admin.com", ADMIN_PW);
    assert_eq!(
        admin.call(p, "GET", "/api/auth/me", "").json()["user"]["is_admin"],
        true
    );
    let user = new_user(p, &outbox(&s), "flags@example.com", PW);

    let anon = call(p, "PATCH", "/api/admin/users/1", &[], "{}");
    assert_eq!(anon.status, 401);
    let denied = patch_user(p, &user, user.user_id, json!({"is_admin": true}));
    assert_eq!(
        (denied.status, denied.json()),
        (403, json!({"error": "Admin access required"}))
    );
    assert_eq!(patch_user(p, &admin, 9999, json!({})).status, 404);
    let own = patch_user(p, &admin, admin.user_id, json!({"disabled": true}));
    assert_eq!(own.status, 400);
    let typed = patch_user(p, &admin, user.user_id, json!({"disabled": "yes"}));
    assert_eq!(typed.status, 400);

    // Disabling ends the user's sessions and blocks login.
    let off = patch_user(p, &admin, user.user_id, json!({"disabled": true}));
    assert_eq!(off.status, 200, "{}", off.text());
    assert_eq!(off.json()["user"]["disabled"], true);
    assert_eq!(user.call(p, "GET", "/api/auth/me", "").status, 401);
    let blocked = login_resp(p, "flags@example.com", PW);
    assert_eq!(
        (blocked.status, blocked.json()["error"].clone()),
        (403, json!("Account disabled"))
    );

    // Re-enabled and promoted, the user reaches admin routes.
    let on = patch_user(
        p,
        &admin,
        user.user_id,
        json!({"disabled": false, "is_admin": true}),
    );
    assert_eq!(on.json()["user"]["is_admin"], true);
    // Sessions from before the disable stay dead after re-enabling.
    assert_eq!(user.call(p, "GET", "/api/auth/me", "").status, 401);
    let promoted = login(p, "flags@example.com", PW);
    assert_eq!(patch_user(p, &promoted, 9999, json!({})).status, 404);
}

#[test]
fn database_and_key_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = server();
    for f in ["instance/database.db", "instance/secret_key"] {
        let mode = std::fs::metadata(s.path(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

/// Each login hashes in a 19 MiB Argon2 buffer; a worker must hand it back to the
/// kernel afterwards instead of keeping a heap full of them.
#[test]
fn logins_do_not_grow_worker_memory() {
    let s = server_with(Vec::new(), 1);
    let mut conn = common::Conn::open(s.port).unwrap();
    let body = json!({"email": "admin@admin.com", "password": ADMIN_PW}).to_string();
    for _ in 0..30 {
        let raw = format!(
            "POST /api/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.send(raw.as_bytes()).unwrap();
        assert_eq!(conn.read_response(false).unwrap().status, 200);
    }
    let pid = s.worker_pids()[0];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 48 * 1024, "worker RSS {rss_kb} kB after 30 logins");
}

/// Operators can inspect and compact the database while the server runs.
#[test]
fn sqlite3_schema_and_vacuum_work_while_serving() {
    let s = server();
    let db = s.path("instance/database.db");
    let b = new_user(s.port, &outbox(&s), "ops@example.com", PW);
    let run = |arg: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg(arg)
            .output()
            .expect("sqlite3 (tests/run installs it)");
        assert!(
            out.status.success(),
            "{arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run(".schema").contains("CREATE UNIQUE INDEX idx_users_email"));
    run("VACUUM");
    let plan = run("EXPLAIN QUERY PLAN SELECT * FROM user WHERE email = 'x'");
    assert!(plan.contains("idx_users_email"), "{plan}");
    assert_eq!(b.call(s.port, "GET", "/api/auth/me", "").status, 200);
    login(s.port, "ops@example.com", PW);
}

/// Workers cache resolved credentials; a revocation through the API must still
/// take effect in every worker on its next request, not a second later.
#[test]
fn revocations_reach_every_worker_at_once() {
    let s = server_with(vec![], 3);
    let p = s.port;
    let b = new_user(p, &outbox(&s), "cache@example.com", PW);
    let created = b.call(p, "POST", "/api/auth/tokens", r#"{"name":"t"}"#);
    assert_eq!(created.status, 201, "{}", created.text());
    let token = created.json()["token"].as_str().unwrap().to_string();
    let id = created.json()["id"].as_i64().unwrap();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    // Warm every worker's cache with both the token and the session.
    for _ in 0..12 {
        assert_eq!(call(p, "GET", "/api/auth/me", &auth, "").status, 200);
        assert_eq!(b.call(p, "GET", "/api/auth/me", "").status, 200);
    }
    let path = format!("/api/auth/tokens/{id}");
    assert_eq!(b.call(p, "DELETE", &path, "").status, 200);
    for _ in 0..12 {
        assert_eq!(
            call(p, "GET", "/api/auth/me", &auth, "").status,
            401,
            "deleted token still works"
        );
    }
    assert_eq!(b.call(p, "POST", "/api/auth/logout", "").status, 200);
    for _ in 0..12 {
        assert_eq!(
            b.call(p, "GET", "/api/auth/me", "").status,
            401,
            "ended session still works"
        );
    }
}
