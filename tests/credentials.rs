//! Credentials under attack, against the real binary: JSON endpoints refuse other
//! content types, the login form's CSRF token, revocation of sessions and API tokens
//! on password changes and resets, one-time links never readable at rest, the
//! registration limit, the password-hashing budget, and the API-token cap and paging.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::api::{
    call, cookie_pair, hidden_field, login, login_resp, mailed_token, new_user, register,
};
use common::{Options, Resp, Server};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

const PW: &str = "correct-horse-1";

fn outbox(s: &Server) -> PathBuf {
    s.path("instance/outbox")
}

/// One request with exactly these headers and body (no header added).
fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    common::request(port, text.as_bytes())
}

fn bearer(port: u16, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    call(port, "GET", "/api/auth/me", &[("Authorization", &auth)], "").status
}

fn new_token(port: u16, b: &common::api::Browser) -> String {
    let r = b.call(port, "POST", "/api/auth/tokens", r#"{"name":"script"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_string()
}

#[test]
fn json_endpoints_need_the_json_content_type() {
    let s = Server::start();
    let p = s.port;
    new_user(p, &outbox(&s), "ct@example.com", PW);
    let body = json!({"email": "ct@example.com", "password": PW}).to_string();
    // What a cross-site form can send without asking: refused before anything else.
    for ctype in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = raw(
            p,
            "POST",
            "/api/auth/login",
            &[("Content-Type", ctype)],
            &body,
        );
        assert_eq!(r.status, 415, "{ctype}: {}", r.text());
        assert!(r.json()["error"].is_string());
        assert!(r.header("set-cookie").is_none());
    }
    let r = raw(p, "POST", "/api/auth/login", &[], &body);
    assert_eq!(r.status, 415, "no Content-Type");
    let r = raw(
        p,
        "POST",
        "/api/auth/register",
        &[("Content-Type", "text/plain")],
        &body,
    );
    assert_eq!(r.status, 415);
    // The JSON type in any case, with parameters.
    for ctype in ["application/json; charset=utf-8", "Application/JSON"] {
        let r = raw(
            p,
            "POST",
            "/api/auth/login",
            &[("Content-Type", ctype)],
            &body,
        );
        assert_eq!(r.status, 200, "{ctype}: {}", r.text());
    }
    // Requests without a body need no type.
    let b = login(p, "ct@example.com", PW);
    let t = b.call(p, "POST", "/api/auth/tokens", "{}");
    let path = format!("/api/auth/tokens/{}", t.json()["id"]);
    let cookie = [("Cookie", b.cookie.as_str()), ("X-CSRF-Token", &b.csrf)];
    assert_eq!(raw(p, "DELETE", &path, &cookie, "").status, 200);
    assert_eq!(raw(p, "POST", "/api/auth/logout", &cookie, "").status, 200);
}

fn form_login(port: u16, cookie: Option<&str>, token: &str, pw: &str) -> Resp {
    let body = format!("csrf_token={token}&email=form%40example.com&password={pw}");
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        h.push(("Cookie", c));
    }
    raw(port, "POST", "/login?next=%2Fsettings", &h, &body)
}

#[test]
fn the_login_form_carries_a_csrf_token() {
    let s = Server::start();
    let p = s.port;
    new_user(p, &outbox(&s), "form@example.com", PW);
    let page = s.get("/login");
    assert_eq!(page.status, 200);
    let cookie = cookie_pair(&page, "blitz_login");
    let set = page.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let token = hidden_field(&page.text(), "csrf_token");
    assert!(token.len() >= 40, "{token}");
    assert!(page.text().contains("action=\"/login?next="));

    // A form posted from elsewhere has no token, or one that belongs to another
    // browser's cookie: a 403 page, and the password is never looked at.
    for (c, t) in [
        (Some(cookie.as_str()), ""),
        (Some(cookie.as_str()), "forged"),
        (None, token.as_str()),
        (
            Some("blitz_login=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            token.as_str(),
        ),
    ] {
        let r = form_login(p, c, t, PW);
        assert_eq!(r.status, 403, "{c:?} {t}: {}", r.text());
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.header("set-cookie").is_none());
    }
    let other = cookie_pair(&s.get("/login"), "blitz_login");
    assert_eq!(form_login(p, Some(&other), &token, PW).status, 403);

    // The same browser: a wrong password shows the form again, the right one
    // logs in and goes where it was asked.
    let wrong = form_login(p, Some(&cookie), &token, "wrong-password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("Invalid email or password"));
    assert!(wrong.text().contains("value=\"form@example.com\""));
    let ok = form_login(p, Some(&cookie), &token, PW);
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert_eq!(ok.header("location"), Some("/settings"));
    let session = cookie_pair(&ok, "blitz_session");
    let me = call(p, "GET", "/api/auth/me", &[("Cookie", &session)], "");
    assert_eq!(me.json()["user"]["email"], "form@example.com");
    // A second login page in the same browser keeps the nonce (two open tabs).
    let again = common::api::call(p, "GET", "/login", &[("Cookie", &cookie)], "");
    assert_eq!(cookie_pair(&again, "blitz_login"), cookie);
}

#[test]
fn password_changes_and_resets_revoke_sessions_and_api_tokens() {
    let s = Server::start();
    let p = s.port;
    let here = new_user(p, &outbox(&s), "rev@example.com", PW);
    let elsewhere = login(p, "rev@example.com", PW);
    let t1 = new_token(p, &here);
    assert_eq!(bearer(p, &t1), 200);

    // A change revokes the other sessions and every token, at once in every worker.
    let change = |b: &common::api::Browser, from: &str, to: &str, keep: Option<bool>| {
        let mut body = json!({"current_password": from, "new_password": to});
        if let Some(k) = keep {
            body["keep_tokens"] = json!(k);
        }
        b.call(p, "POST", "/api/auth/password", &body.to_string())
    };
    assert_eq!(change(&here, PW, "second-pass-1", None).status, 200);
    for _ in 0..4 {
        assert_eq!(bearer(p, &t1), 401);
        assert_eq!(elsewhere.call(p, "GET", "/api/auth/me", "").status, 401);
    }
    assert_eq!(here.call(p, "GET", "/api/auth/me", "").status, 200);
    let listed = here.call(p, "GET", "/api/auth/tokens", "");
    assert_eq!(listed.json()["total"], 0);

    // Unless the caller keeps them.
    let t2 = new_token(p, &here);
    let bad = change(&here, "not-the-password", "third-pass-1", None);
    assert_eq!(bad.status, 400, "wrong current password");
    let r = here.call(
        p,
        "POST",
        "/api/auth/password",
        r#"{"current_password":"second-pass-1","new_password":"third-pass-1","keep_tokens":"yes"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["fields"]["keep_tokens"].is_string());
    assert_eq!(
        change(&here, "second-pass-1", "third-pass-1", Some(true)).status,
        200
    );
    assert_eq!(bearer(p, &t2), 200);

    // A reset by mail revokes every session and every token.
    let r = call(
        p,
        "POST",
        "/api/auth/forgot",
        &[],
        r#"{"email":"rev@example.com"}"#,
    );
    assert_eq!(r.status, 202);
    let reset = mailed_token(&outbox(&s), "rev@example.com", "/reset/");
    let body = json!({"token": reset, "new_password": "fourth-pass-1"}).to_string();
    assert_eq!(call(p, "POST", "/api/auth/reset", &[], &body).status, 200);
    assert_eq!(bearer(p, &t2), 401);
    assert_eq!(here.call(p, "GET", "/api/auth/me", "").status, 401);

    // So does the reset page's form.
    let other = new_user(p, &outbox(&s), "page@example.com", PW);
    let t3 = new_token(p, &other);
    let r = call(
        p,
        "POST",
        "/api/auth/forgot",
        &[],
        r#"{"email":"page@example.com"}"#,
    );
    assert_eq!(r.status, 202);
    let reset = mailed_token(&outbox(&s), "page@example.com", "/reset/");
    let form = "new_password=fifth-pass-1";
    let h = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = raw(p, "POST", &format!("/reset/{reset}"), &h, form);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(bearer(p, &t3), 401);
    assert_eq!(other.call(p, "GET", "/api/auth/me", "").status, 401);
}

#[test]
fn set_password_on_the_command_line_revokes_api_tokens_unless_kept() {
    let s = Server::start();
    let p = s.port;
    let b = new_user(p, &outbox(&s), "cli@example.com", PW);
    let database = s.database();
    let set = |pw: &str, keep: bool| {
        let mut args = vec![
            "user",
            "set-password",
            "--email",
            "cli@example.com",
            "--password-stdin",
            "--database",
            &database,
        ];
        if keep {
            args.push("--keep-tokens");
        }
        let mut child = common::blitz_cmd(s.dir.path())
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{pw}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let kept = new_token(p, &b);
    set("cli-pass-2", true);
    // A change outside the server reaches the workers within a second: once the
    // ended session shows, the kept token is known to have survived it.
    common::wait_for(Duration::from_secs(3), "the session to end", || {
        b.call(p, "GET", "/api/auth/me", "").status == 401
    });
    assert_eq!(bearer(p, &kept), 200);
    set("cli-pass-3", false);
    common::wait_for(Duration::from_secs(3), "the token to be revoked", || {
        bearer(p, &kept) == 401
    });
}

/// The bytes of the database file and its WAL, as a disk image would hold them.
fn raw_database(s: &Server) -> Vec<u8> {
    let mut bytes = std::fs::read(s.path("instance/database.db")).unwrap();
    bytes.extend(std::fs::read(s.path("instance/database.db-wal")).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn db(s: &Server) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(s.path("instance/database.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

#[test]
fn one_time_links_are_never_stored_readable() {
    let s = Server::start();
    let p = s.port;
    // With the mailer held, the queued mail sits in the database: sealed.
    let mailer = common::children_with_title(s.pid(), "blitz: mailer");
    assert_eq!(mailer.len(), 1);
    let mailer = Pid::from_raw(mailer[0]);
    kill(mailer, Signal::SIGSTOP).unwrap();
    assert_eq!(register(p, "link@example.com", PW).status, 201);
    let queued: String = db(&s)
        .query_row(
            "SELECT body FROM mail_queue WHERE recipient = 'link@example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(queued.starts_with("v1."), "{queued}");
    let bytes = raw_database(&s);
    for text in ["/verify/", "Confirm your e-mail", "Welcome to Blitz"] {
        assert!(!contains(&bytes, text), "{text} readable at rest");
    }
    kill(mailer, Signal::SIGCONT).unwrap();

    // Delivered: the link is in the mail, nowhere in the database, and the body is
    // gone.
    let token = mailed_token(&outbox(&s), "link@example.com", "/verify/");
    common::wait_for(Duration::from_secs(5), "the mail marked sent", || {
        db(&s)
            .query_row(
                "SELECT body FROM mail_queue WHERE recipient = 'link@example.com'
                 AND sent_at IS NOT NULL",
                [],
                |r| r.get::<_, String>(0),
            )
            .is_ok_and(|b| b.is_empty())
    });
    let bytes = raw_database(&s);
    assert!(!contains(&bytes, &token), "the token readable at rest");
    assert!(!contains(&bytes, "/verify/"));

    // The outbox is the service user's alone.
    assert_eq!(mode(&outbox(&s)), 0o700);
    for e in std::fs::read_dir(outbox(&s)).unwrap().flatten() {
        assert_eq!(mode(&e.path()), 0o600, "{:?}", e.path());
    }
}

#[test]
fn mail_queued_by_an_older_release_is_sealed_at_start_and_still_delivered() {
    let s = Server::start();
    let (dir, _) = s.terminate();
    let database = dir.path().join("instance/database.db");
    let link = "http://127.0.0.1/verify/LEGACYLINKTOKEN0123456789";
    {
        let c = rusqlite::Connection::open(&database).unwrap();
        c.execute(
            "INSERT INTO mail_queue (recipient, subject, body, created_at, next_attempt_at)
             VALUES ('old@example.com', 'Confirm', ?1, 1, 1)",
            [format!("Welcome.\n\n{link}\n")],
        )
        .unwrap();
    }
    let s = Server::start_in(dir, Options::default());
    assert!(s.log().contains("sealed queued mail of an older release"));
    let token = mailed_token(&outbox(&s), "old@example.com", "/verify/");
    assert_eq!(token, "LEGACYLINKTOKEN0123456789");
    common::wait_for(Duration::from_secs(5), "the body erased", || {
        !contains(&raw_database(&s), "LEGACYLINKTOKEN")
    });
    assert_eq!(mode(&outbox(&s)), 0o700);
}

#[test]
fn registrations_are_limited_per_client_address() {
    let s = Server::with(Options {
        env: vec![("RATE_LIMITS_REGISTER", "3/hour")],
        ..Options::default()
    });
    let p = s.port;
    let reg = |email: &str, ip: &str| {
        let body = json!({"email": email, "password": PW}).to_string();
        call(
            p,
            "POST",
            "/api/auth/register",
            &[("X-Forwarded-For", ip)],
            &body,
        )
    };
    // Refused attempts count too: they are what a flood sends.
    assert_eq!(reg("not-an-address", "10.2.0.1").status, 400);
    assert_eq!(reg("r1@example.com", "10.2.0.1").status, 201);
    let last = reg("r2@example.com", "10.2.0.1");
    assert_eq!(last.status, 201);
    assert_eq!(last.header("x-ratelimit-remaining"), Some("0"));
    let refused = reg("r3@example.com", "10.2.0.1");
    assert_eq!(refused.status, 429, "{}", refused.text());
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "{retry}");
    assert_eq!(refused.json()["error"], "Rate limit exceeded");
    // Nothing was created or mailed for the refused attempt.
    assert_eq!(login_resp(p, "r3@example.com", PW).status, 401);
    // Another address has its own allowance.
    assert_eq!(reg("r3@example.com", "10.2.0.2").status, 201);
}

#[test]
fn a_login_flood_is_refused_with_503_while_other_requests_stay_fast() {
    let s = Server::with(Options {
        workers: 1,
        ..Options::default()
    });
    let p = s.port;
    let stop = AtomicBool::new(false);
    let (busy, answered) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let flood = |t: usize| {
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            // A new address each time: no failed-login window ever fills.
            let ip = format!("10.{}.{}.{}", 100 + t, i / 250, i % 250);
            let body = json!({"email": format!("x{t}-{i}@example.com"), "password": "guess-guess"});
            let r = call(
                p,
                "POST",
                "/api/auth/login",
                &[("X-Forwarded-For", &ip)],
                &body.to_string(),
            );
            match r.status {
                401 => {}
                503 => {
                    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
                    assert!(retry >= 1);
                    assert!(r.json()["error"].is_string());
                    busy.fetch_add(1, Ordering::Relaxed);
                }
                other => panic!("flood answered {other}: {}", r.text()),
            }
            answered.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
    };
    std::thread::scope(|sc| {
        for t in 0..8 {
            let flood = &flood;
            sc.spawn(move || flood(t));
        }
        // Until the worker's hashing budget is spent: the flood is refused.
        let deadline = Instant::now() + Duration::from_secs(40);
        while busy.load(Ordering::Relaxed) < 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Meanwhile the worker keeps answering everything else promptly.
        let mut slowest = Duration::ZERO;
        for path in ["/healthz", "/api/status"].repeat(10) {
            let started = Instant::now();
            assert_eq!(s.get(path).status, 200, "{path}");
            slowest = slowest.max(started.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        let refused = busy.load(Ordering::Relaxed);
        assert!(
            refused >= 20,
            "only {refused} of {} refused",
            answered.load(Ordering::Relaxed)
        );
        assert!(
            slowest < Duration::from_millis(750),
            "slowest answer {slowest:?}"
        );
    });
}

#[test]
fn api_tokens_are_capped_and_their_list_pages() {
    let s = Server::start();
    let p = s.port;
    let b = new_user(p, &outbox(&s), "many@example.com", PW);
    let mut first = 0;
    for i in 0..100 {
        let r = b.call(
            p,
            "POST",
            "/api/auth/tokens",
            &json!({"name": format!("t{i}")}).to_string(),
        );
        assert_eq!(r.status, 201, "{i}: {}", r.text());
        if i == 0 {
            first = r.json()["id"].as_i64().unwrap();
        }
    }
    let over = b.call(p, "POST", "/api/auth/tokens", r#"{"name":"one too many"}"#);
    assert_eq!(over.status, 409, "{}", over.text());
    assert!(over.json()["error"].as_str().unwrap().contains("100"));

    let page = b.call(p, "GET", "/api/auth/tokens", "");
    let j = page.json();
    assert_eq!(
        (
            j["total"].as_i64(),
            j["limit"].as_i64(),
            j["offset"].as_i64()
        ),
        (Some(100), Some(50), Some(0))
    );
    assert_eq!(j["tokens"].as_array().unwrap().len(), 50);
    assert_eq!(j["tokens"][0]["name"], "t99", "newest first");
    let tail = b
        .call(p, "GET", "/api/auth/tokens?limit=10&offset=95", "")
        .json();
    let names: Vec<&str> = tail["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["t4", "t3", "t2", "t1", "t0"]);
    for bad in ["limit=0", "limit=101", "offset=-1", "limit=x"] {
        let r = b.call(p, "GET", &format!("/api/auth/tokens?{bad}"), "");
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["fields"].is_object());
    }

    // The settings page shows one page of them, with a way to the next.
    let settings = b.call(p, "GET", "/settings", "").text();
    assert_eq!(
        settings
            .matches("data-call=\"DELETE /api/auth/tokens/")
            .count(),
        20
    );
    assert!(
        settings.contains("/settings?tokens_offset=20"),
        "a link to older tokens"
    );
    let last = b.call(p, "GET", "/settings?tokens_offset=80", "").text();
    assert_eq!(
        last.matches("data-call=\"DELETE /api/auth/tokens/").count(),
        20
    );
    assert!(last.contains("/settings?tokens_offset=60") && !last.contains("tokens_offset=100"));

    // Deleting one makes room for another.
    assert_eq!(
        b.call(p, "DELETE", &format!("/api/auth/tokens/{first}"), "")
            .status,
        200
    );
    assert_eq!(b.call(p, "POST", "/api/auth/tokens", "{}").status, 201);
}

#[test]
fn wrong_current_passwords_are_limited_like_failed_logins() {
    let s = Server::start();
    let p = s.port;
    let b = new_user(p, &outbox(&s), "guess@example.com", PW);
    let token = new_token(p, &b);
    let auth = format!("Bearer {token}");
    // A leaked token trying passwords: five wrong ones, then refusals.
    let change = |current: &str| {
        let body = json!({"current_password": current, "new_password": "new-pass-123",
                          "keep_tokens": true})
        .to_string();
        call(
            p,
            "POST",
            "/api/auth/password",
            &[("Authorization", &auth)],
            &body,
        )
    };
    for i in 0..5 {
        let r = change(&format!("guess-{i}-wrong"));
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let limited = change("guess-5-wrong");
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert!(limited.header("retry-after").is_some());
    // Even the right password waits: the guesses cannot go on.
    assert_eq!(change(PW).status, 429);
    assert_eq!(login_resp(p, "guess@example.com", PW).status, 429);
}
