//! Two-factor login against the real binary: setup and enable with a code computed
//! here, the login ticket and its code (TOTP or recovery), replay refusal, ticket
//! burn and the failed-login limit, disable, `ADMIN_REQUIRE_2FA`, the sealed secret
//! in the raw database, and the Settings/login page flow over HTTP.

mod common;

use common::api::{call, cookie_pair, hidden_field, login, login_resp, Browser};
use common::totp::{code, now_step, wrong_code};
use common::{request, Options, Resp, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin@admin.com";
const PW: &str = "admin-password-1";

fn server(env: Vec<(&'static str, &'static str)>) -> Server {
    let mut env = env;
    env.push(("ADMIN_PASSWORD", PW));
    Server::with(Options {
        env,
        ..Options::default()
    })
}

fn post(s: &Server, path: &str, body: Value) -> Resp {
    call(s.port, "POST", path, &[], &body.to_string())
}

/// Setup then enable with the current code: returns the secret, the step the
/// enabling code spent, and the recovery codes.
fn enrol(s: &Server, b: &Browser) -> (String, u64, Vec<String>) {
    let r = b.call(s.port, "POST", "/api/auth/2fa/setup", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let secret = j["secret"].as_str().unwrap().to_string();
    let uri = j["otpauth_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!(
            "otpauth://totp/Blitz:{ADMIN}?secret={secret}&issuer=Blitz\
             &algorithm=SHA1&digits=6&period=30"
        )
    );
    assert_eq!(secret.len(), 32, "20 bytes in base32");
    let step = now_step();
    let body = json!({"code": code(&secret, step)}).to_string();
    let r = b.call(s.port, "POST", "/api/auth/2fa/enable", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let codes: Vec<String> = r.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, step, codes)
}

/// The password step: 200 with a ticket and no session.
fn ticket(s: &Server) -> String {
    let r = login_resp(s.port, ADMIN, PW);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("set-cookie").is_none(),
        "no session before the code"
    );
    let j = r.json();
    assert_eq!(
        (&j["success"], &j["two_factor_required"]),
        (&json!(true), &json!(true))
    );
    assert!(
        j.get("csrf_token").is_none() && j.get("user").is_none(),
        "{j}"
    );
    j["ticket"].as_str().unwrap().to_string()
}

fn verify(s: &Server, ticket: &str, code: &str) -> Resp {
    post(
        s,
        "/api/auth/2fa/verify",
        json!({"ticket": ticket, "code": code}),
    )
}

/// The browser a successful verify answer logs in.
fn browser(r: &Resp) -> Browser {
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r.header("set-cookie").expect("Set-Cookie");
    assert!(cookie.starts_with("blitz_session=") && cookie.contains("HttpOnly"));
    let j = r.json();
    assert_eq!(j["user"]["email"], ADMIN);
    Browser {
        cookie: cookie.split(';').next().unwrap().to_string(),
        csrf: j["csrf_token"].as_str().unwrap().to_string(),
        user_id: j["user"]["id"].as_i64().unwrap(),
    }
}

fn new_token(s: &Server, b: &Browser) -> String {
    let r = b.call(s.port, "POST", "/api/auth/tokens", r#"{"name":"script"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_string()
}

/// A JSON request with a bearer token.
fn bearer_with(s: &Server, token: &str, method: &str, path: &str) -> Resp {
    let auth = format!("Bearer {token}");
    let body = if method == "GET" { "" } else { "{}" };
    call(s.port, method, path, &[("Authorization", &auth)], body)
}

#[test]
fn our_test_codes_match_rfc6238() {
    // "12345678901234567890" in base32; T = 59 s is step 1 → 94287082.
    assert_eq!(code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1), "287082");
}

#[test]
fn enrol_log_in_with_a_code_or_a_recovery_code_then_disable() {
    let s = server(Vec::new());
    let p = s.port;
    let b = login(p, ADMIN, PW);
    let me = b.call(p, "GET", "/api/auth/me", "");
    assert_eq!(me.json()["two_factor"], false);
    // Enabling needs a setup first, and a right code.
    let early = b.call(p, "POST", "/api/auth/2fa/enable", r#"{"code":"123456"}"#);
    assert_eq!(early.status, 409, "{}", early.text());
    let r = b.call(p, "POST", "/api/auth/2fa/setup", "{}");
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let bad = json!({"code": wrong_code(&secret, now_step())}).to_string();
    let r = b.call(p, "POST", "/api/auth/2fa/enable", &bad);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["fields"]["code"].is_string());
    // Not active until enabled: the password alone still logs in.
    assert!(login_resp(p, ADMIN, PW).json()["csrf_token"].is_string());

    let (secret, step, recovery) = enrol(&s, &b);
    assert_eq!(
        b.call(p, "GET", "/api/auth/me", "").json()["two_factor"],
        true
    );
    let again = b.call(p, "POST", "/api/auth/2fa/setup", "{}");
    assert_eq!(again.status, 409, "already on: {}", again.text());

    let t = ticket(&s);
    let wrong = verify(&s, &t, &wrong_code(&secret, step));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "Invalid two-factor code");
    // The enabling code's step is spent: replaying it fails.
    assert_eq!(verify(&s, &t, &code(&secret, step)).status, 401, "replay");
    let b2 = browser(&verify(&s, &t, &code(&secret, step + 1)));
    let me = b2.call(p, "GET", "/api/auth/me", "");
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["two_factor"], true);
    // The ticket is single-use; the step just used is spent too.
    assert_eq!(verify(&s, &t, &code(&secret, step + 2)).status, 401);
    let t = ticket(&s);
    assert_eq!(
        verify(&s, &t, &code(&secret, step + 1)).status,
        401,
        "replay"
    );

    // A recovery code works once, however it is typed.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    browser(&verify(&s, &t, &typed));
    let t = ticket(&s);
    assert_eq!(verify(&s, &t, &recovery[0]).status, 401, "used up");

    // Disable needs the password and a code.
    let body = json!({"password": PW, "code": recovery[1]}).to_string();
    let off = b2.call(p, "POST", "/api/auth/2fa/disable", &body);
    assert_eq!(off.status, 200, "{}", off.text());
    assert_eq!(
        b2.call(p, "GET", "/api/auth/me", "").json()["two_factor"],
        false
    );
    let plain = login_resp(p, ADMIN, PW);
    assert!(plain.header("set-cookie").is_some(), "{}", plain.text());
    assert_eq!(
        verify(&s, &t, &recovery[2]).status,
        401,
        "tickets died with it"
    );
}

#[test]
fn disable_refuses_a_wrong_password_or_code() {
    let s = server(Vec::new());
    let p = s.port;
    let b = login(p, ADMIN, PW);
    let (secret, step, recovery) = enrol(&s, &b);
    let try_off = |password: &str, code: &str| {
        let body = json!({"password": password, "code": code}).to_string();
        b.call(p, "POST", "/api/auth/2fa/disable", &body)
    };
    let r = try_off("wrong-password", &recovery[0]);
    assert_eq!(r.status, 400);
    assert!(r.json()["fields"]["password"].is_string(), "{}", r.text());
    let r = try_off(PW, &wrong_code(&secret, step));
    assert_eq!(r.status, 400);
    assert!(r.json()["fields"]["code"].is_string(), "{}", r.text());
    assert_eq!(try_off(PW, "").status, 400);
    assert_eq!(
        b.call(p, "GET", "/api/auth/me", "").json()["two_factor"],
        true
    );
    assert_eq!(try_off(PW, &code(&secret, step + 1)).status, 200);
    assert_eq!(
        try_off(PW, &code(&secret, step + 1)).status,
        409,
        "already off"
    );
}

#[test]
fn wrong_codes_burn_the_ticket_and_count_as_failed_logins() {
    let s = server(Vec::new());
    let b = login(s.port, ADMIN, PW);
    let (secret, step, _) = enrol(&s, &b);
    let wrong = wrong_code(&secret, step);
    let t = ticket(&s);
    for _ in 0..3 {
        assert_eq!(verify(&s, &t, &wrong).status, 401);
    }
    let burnt = verify(&s, &t, &code(&secret, step + 1));
    assert_eq!(burnt.status, 401, "the ticket is spent");
    assert!(burnt.json()["error"]
        .as_str()
        .unwrap()
        .contains("log in again"));
    // Wrong codes count with wrong passwords: the 5 a minute run out.
    let t = ticket(&s);
    assert_eq!(verify(&s, &t, &wrong).status, 401);
    assert_eq!(login_resp(s.port, ADMIN, "wrong-password").status, 401);
    let limited = verify(&s, &t, &code(&secret, step + 1));
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert!(limited.header("retry-after").is_some());
    assert_eq!(login_resp(s.port, ADMIN, PW).status, 429);
    // Garbage tickets never reach the database.
    assert_eq!(verify(&s, "not a ticket", "123456").status, 401);
    let missing = post(&s, "/api/auth/2fa/verify", json!({"ticket": t}));
    assert_eq!(missing.status, 400);
}

#[test]
fn admin_require_2fa_sends_admins_to_enrol_first() {
    let s = server(vec![("ADMIN_REQUIRE_2FA", "true")]);
    let p = s.port;
    let b = login(p, ADMIN, PW);
    let api = b.call(p, "GET", "/api/admin/users", "");
    assert_eq!(api.status, 403);
    let j = api.json();
    assert_eq!(j["error"], "Two-factor login required for admin access");
    assert!(j["message"]
        .as_str()
        .unwrap()
        .contains("/api/auth/2fa/setup"));
    let page = |b: &Browser| {
        let h = [("Accept", "text/html"), ("Cookie", b.cookie.as_str())];
        call(p, "GET", "/admin", &h, "")
    };
    let refused = page(&b);
    assert_eq!(refused.status, 403);
    assert!(refused
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(refused.text().contains("href=\"/settings#two-factor\""));
    // Their own pages and the enrolment stay open.
    let settings = call(p, "GET", "/settings", &[("Cookie", b.cookie.as_str())], "");
    assert_eq!(settings.status, 200);
    // Credentials won with the password alone before two-factor login was on.
    let other = login(p, ADMIN, PW);
    let token = new_token(&s, &other);
    assert_eq!(bearer_with(&s, &token, "GET", "/api/auth/me").status, 200);
    let (secret, step, _) = enrol(&s, &b);
    // The enabling session proved a code and stays; the others are revoked at
    // once, in every worker, rather than passing for two-factor admins.
    assert_eq!(b.call(p, "GET", "/api/admin/users", "").status, 200);
    assert_eq!(other.call(p, "GET", "/api/admin/users", "").status, 401);
    assert_eq!(other.call(p, "GET", "/api/auth/me", "").status, 401);
    assert_eq!(
        bearer_with(&s, &token, "GET", "/api/admin/users").status,
        401
    );
    assert_eq!(bearer_with(&s, &token, "GET", "/api/auth/me").status, 401);
    let fresh = browser(&verify(&s, &ticket(&s), &code(&secret, step + 1)));
    assert_eq!(fresh.call(p, "GET", "/api/admin/users", "").status, 200);
    assert_eq!(page(&fresh).status, 200);
}

#[test]
fn the_secret_and_recovery_codes_are_not_in_the_database_files() {
    let s = server(Vec::new());
    let b = login(s.port, ADMIN, PW);
    let pending = b.call(s.port, "POST", "/api/auth/2fa/setup", "{}").json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (secret, _, recovery) = enrol(&s, &b);
    assert_ne!(pending, secret, "each setup makes a new secret");
    let raw_secret = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let mut files = Vec::new();
    for name in ["instance/database.db", "instance/database.db-wal"] {
        if let Ok(bytes) = std::fs::read(s.path(name)) {
            files.push((name, bytes));
        }
    }
    assert!(!files.is_empty());
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for (name, bytes) in &files {
        assert!(!contains(bytes, secret.as_bytes()), "secret in {name}");
        assert!(
            !contains(bytes, pending.as_bytes()),
            "pending secret in {name}"
        );
        assert!(!contains(bytes, &raw_secret), "raw secret in {name}");
        for c in &recovery {
            assert!(!contains(bytes, c.as_bytes()), "recovery code in {name}");
            let compact = c.replace('-', "");
            assert!(
                !contains(bytes, compact.as_bytes()),
                "recovery code in {name}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The pages: plain HTML forms, no script needed.
// ---------------------------------------------------------------------------

fn page(s: &Server, b: &Browser, path: &str) -> Resp {
    let h = [("Accept", "text/html"), ("Cookie", b.cookie.as_str())];
    call(s.port, "GET", path, &h, "")
}

/// A browser's form post: URL-encoded fields, the session cookie.
fn form(s: &Server, b: &Browser, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
         Accept: text/html\r\nCookie: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        s.port,
        b.cookie,
        body.len()
    );
    request(s.port, raw.as_bytes())
}

fn location(r: &Resp) -> &str {
    assert_eq!(r.status, 303, "{}", r.text());
    r.header("location").unwrap()
}

#[test]
fn settings_page_enrols_with_a_qr_code_and_login_page_asks_for_the_code() {
    let s = server(Vec::new());
    let b = login(s.port, ADMIN, PW);
    let off = page(&s, &b, "/settings").text();
    assert!(off.contains("action=\"/settings/2fa/setup\""), "{off}");
    let csrf = hidden_field(&off, "csrf_token");
    // Without the CSRF token the form is refused.
    assert_eq!(form(&s, &b, "/settings/2fa/setup", &[]).status, 403);
    let r = form(&s, &b, "/settings/2fa/setup", &[("csrf_token", &csrf)]);
    assert_eq!(location(&r), "/settings?2fa=setup#two-factor");

    let pending = page(&s, &b, "/settings?2fa=setup").text();
    assert!(
        pending.contains("<svg class=\"qr\" role=\"img\""),
        "{pending}"
    );
    assert!(pending.contains("action=\"/settings/2fa/enable\""));
    let lower = pending.to_ascii_lowercase();
    assert!(
        !lower.contains("<script>") && !lower.contains(" style="),
        "CSP-safe"
    );
    assert!(!lower.contains("<?xml"));
    let at = pending.find("id=\"tf-secret\">").unwrap() + "id=\"tf-secret\">".len();
    let shown = &pending[at..at + pending[at..].find('<').unwrap()];
    let secret = shown.replace(' ', "");
    assert_eq!(secret.len(), 32, "{shown:?}");
    assert!(pending.contains(&format!("otpauth://totp/Blitz:{ADMIN}?secret={secret}")));

    let step = now_step();
    let wrong = wrong_code(&secret, step);
    let r = form(
        &s,
        &b,
        "/settings/2fa/enable",
        &[("csrf_token", &csrf), ("code", &wrong)],
    );
    assert_eq!(location(&r), "/settings?2fa=invalid-code#two-factor");
    assert!(page(&s, &b, "/settings?2fa=invalid-code")
        .text()
        .contains("That code was not accepted"));
    let good = code(&secret, step);
    let r = form(
        &s,
        &b,
        "/settings/2fa/enable",
        &[("csrf_token", &csrf), ("code", &good)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let codes: Vec<String> = r
        .text()
        .split("<li><code>")
        .skip(1)
        .map(|c| c[..c.find('<').unwrap()].to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{}", r.text());
    let on = page(&s, &b, "/settings").text();
    assert!(on.contains("Unused recovery codes left: 10"), "{on}");
    assert!(
        !on.contains("<svg class=\"qr\""),
        "the QR code is gone once on"
    );
    assert!(!on.contains(&codes[0]), "recovery codes are shown once");

    // The login page carries the code form (shown by its script after the password).
    let login_page = call(s.port, "GET", "/login", &[("Accept", "text/html")], "").text();
    assert!(login_page.contains("data-api=\"POST /api/auth/2fa/verify\""));
    assert!(login_page.contains("<input type=\"hidden\" name=\"ticket\""));
    assert!(login_page.contains("name=\"code\""));
    let script = login_page
        .split("<script src=\"")
        .filter_map(|s| s.split('"').next())
        .find(|src| src.contains("forms"))
        .expect("forms script");
    assert!(s.get(script).text().contains("two_factor_required"));
    let b2 = browser(&verify(&s, &ticket(&s), &codes[0]));

    // Turning it off from the page: password and a code.
    let csrf2 = hidden_field(&page(&s, &b2, "/settings").text(), "csrf_token");
    let r = form(
        &s,
        &b2,
        "/settings/2fa/disable",
        &[
            ("csrf_token", &csrf2),
            ("password", "nope"),
            ("code", &codes[1]),
        ],
    );
    assert_eq!(location(&r), "/settings?2fa=wrong-password#two-factor");
    let r = form(
        &s,
        &b2,
        "/settings/2fa/disable",
        &[
            ("csrf_token", &csrf2),
            ("password", PW),
            ("code", &codes[1]),
        ],
    );
    assert_eq!(location(&r), "/settings?2fa=off#two-factor");
    assert_eq!(
        b2.call(s.port, "GET", "/api/auth/me", "").json()["two_factor"],
        false
    );
}

/// Whether the form with `id` carries the `hidden` attribute.
fn form_hidden(html: &str, id: &str) -> bool {
    let at = html.find(&format!("<form id=\"{id}\"")).expect("the form");
    html[at..at + html[at..].find('>').unwrap()].contains(" hidden")
}

#[test]
fn the_login_form_without_script_asks_for_the_code_then_logs_in() {
    let s = server(Vec::new());
    let (secret, step, _) = enrol(&s, &login(s.port, ADMIN, PW));
    let page = call(s.port, "GET", "/login", &[("Accept", "text/html")], "");
    let nonce = cookie_pair(&page, "blitz_login");
    let token = hidden_field(&page.text(), "csrf_token");
    let b = Browser {
        cookie: nonce,
        csrf: String::new(),
        user_id: 0,
    };
    let fields = [
        ("csrf_token", token.as_str()),
        ("email", ADMIN),
        ("password", PW),
    ];
    let asked = form(&s, &b, "/login?next=%2Fsettings", &fields);
    assert_eq!(asked.status, 200, "{}", asked.text());
    assert!(
        !asked
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("blitz_session=")),
        "no session before the code"
    );
    let html = asked.text();
    assert!(form_hidden(&html, "password-form") && !form_hidden(&html, "two-factor-form"));
    assert!(
        html.contains("action=\"/login/2fa?next=/settings\""),
        "{html}"
    );
    let ticket = hidden_field(&html, "ticket");
    assert!(!ticket.is_empty());

    // The code step checks the form's token too.
    let forged = [
        ("csrf_token", "x"),
        ("ticket", ticket.as_str()),
        ("code", "000000"),
    ];
    assert_eq!(form(&s, &b, "/login/2fa", &forged).status, 403);
    let wrong = wrong_code(&secret, step + 1);
    let fields = [
        ("csrf_token", token.as_str()),
        ("ticket", &ticket),
        ("code", &wrong),
    ];
    let r = form(&s, &b, "/login/2fa?next=%2Fsettings", &fields);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        hidden_field(&r.text(), "ticket"),
        ticket,
        "the code form again"
    );
    // The enabling step is spent: the next one logs in.
    let good = code(&secret, step + 1);
    let fields = [
        ("csrf_token", token.as_str()),
        ("ticket", &ticket),
        ("code", &good),
    ];
    let r = form(&s, &b, "/login/2fa?next=%2Fsettings", &fields);
    assert_eq!(location(&r), "/settings");
    let session = cookie_pair(&r, "blitz_session");
    let me = call(s.port, "GET", "/api/auth/me", &[("Cookie", &session)], "");
    assert_eq!(me.json()["user"]["email"], ADMIN);
    assert_eq!(me.json()["two_factor"], true);
}

#[test]
fn api_tokens_cannot_change_two_factor_login() {
    let s = server(Vec::new());
    let b = login(s.port, ADMIN, PW);
    let token = new_token(&s, &b);
    let refused = |path: &str| {
        let r = bearer_with(&s, &token, "POST", path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("session"));
    };
    // A leaked token must not enrol its own authenticator.
    refused("/api/auth/2fa/setup");
    refused("/api/auth/2fa/enable");
    let me = bearer_with(&s, &token, "GET", "/api/auth/me");
    assert_eq!(me.json()["two_factor"], false);
    // Nor turn the owner's off (the token dies when it is enabled: a new one).
    let (secret, step, _) = enrol(&s, &b);
    let token = new_token(&s, &b);
    let body = json!({"password": PW, "code": code(&secret, step + 1)}).to_string();
    let auth = format!("Bearer {token}");
    let r = call(
        s.port,
        "POST",
        "/api/auth/2fa/disable",
        &[("Authorization", &auth)],
        &body,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let me = bearer_with(&s, &token, "GET", "/api/auth/me");
    assert_eq!(me.json()["two_factor"], true);
}

/// `blitz user reset-2fa --email E`, as an operator runs it.
fn reset_2fa(s: &Server, email: &str) -> std::process::Output {
    common::blitz_cmd(s.dir.path())
        .args([
            "user",
            "reset-2fa",
            "--email",
            email,
            "--database",
            &s.database(),
        ])
        .output()
        .unwrap()
}

#[test]
fn an_operator_turns_two_factor_login_off_for_a_lost_phone() {
    let s = server(Vec::new());
    let p = s.port;
    let b = login(p, ADMIN, PW);
    let (secret, step, recovery) = enrol(&s, &b);
    let t = ticket(&s);
    let out = reset_2fa(&s, ADMIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("turned off"), "{stderr}");
    // Its sessions end (workers notice within a second), its tickets die, and the
    // password alone logs in again.
    common::wait_for(
        std::time::Duration::from_secs(3),
        "the session to end",
        || b.call(p, "GET", "/api/auth/me", "").status == 401,
    );
    assert_eq!(verify(&s, &t, &code(&secret, step + 1)).status, 401);
    let fresh = login(p, ADMIN, PW);
    let me = fresh.call(p, "GET", "/api/auth/me", "");
    assert_eq!(me.json()["two_factor"], false);
    // The old recovery codes are gone with it: enrolling again makes new ones.
    let (_, _, again) = enrol(&s, &fresh);
    assert!(recovery.iter().all(|c| !again.contains(c)));

    let out = reset_2fa(&s, "nobody@example.com");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user"));
}

/// The password step with `password`: the ticket.
fn ticket_with(s: &Server, password: &str) -> String {
    let r = login_resp(s.port, ADMIN, password);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["ticket"].as_str().unwrap().to_string()
}

#[test]
fn login_tickets_die_with_a_password_change_or_reset() {
    let s = server(Vec::new());
    let p = s.port;
    let b = login(p, ADMIN, PW);
    let (_, _, recovery) = enrol(&s, &b);
    // A ticket won with the password, then the password changes.
    let t = ticket_with(&s, PW);
    let body = json!({"current_password": PW, "new_password": "second-pass-2"}).to_string();
    let r = b.call(p, "POST", "/api/auth/password", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let dead = verify(&s, &t, &recovery[0]);
    assert_eq!(dead.status, 401, "{}", dead.text());
    assert!(dead.json()["error"]
        .as_str()
        .unwrap()
        .contains("log in again"));

    // The same for a reset by mail.
    let t = ticket_with(&s, "second-pass-2");
    let r = post(&s, "/api/auth/forgot", json!({"email": ADMIN}));
    assert_eq!(r.status, 202, "{}", r.text());
    let outbox = s.path("instance/outbox");
    let reset = common::api::mailed_token(&outbox, ADMIN, "/reset/");
    let r = post(
        &s,
        "/api/auth/reset",
        json!({"token": reset, "new_password": "third-pass-3"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(verify(&s, &t, &recovery[0]).status, 401, "ticket died");
    // A ticket won with the new password works (the recovery code was not spent).
    let t = ticket_with(&s, "third-pass-3");
    browser(&verify(&s, &t, &recovery[0]));
}

#[test]
fn wrong_codes_are_capped_per_account_across_client_addresses() {
    let s = server(Vec::new());
    let p = s.port;
    let (secret, step, _) = enrol(&s, &login(p, ADMIN, PW));
    let wrong = wrong_code(&secret, step + 1);
    // Someone with the password, from many addresses (a trusted proxy's
    // X-Forwarded-For): each address stays under its own failed-login limit.
    let from = |ip: &str, path: &str, body: Value| {
        call(
            p,
            "POST",
            path,
            &[("X-Forwarded-For", ip)],
            &body.to_string(),
        )
    };
    let ticket_from = |ip: &str| {
        let r = from(
            ip,
            "/api/auth/login",
            json!({"email": ADMIN, "password": PW}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["ticket"].as_str().unwrap().to_string()
    };
    let mut guesses = 0;
    for (i, n) in [3, 3, 3, 1].into_iter().enumerate() {
        let ip = format!("10.0.1.{}", i + 1);
        let t = ticket_from(&ip);
        for _ in 0..n {
            let body = json!({"ticket": t, "code": wrong});
            let r = from(&ip, "/api/auth/2fa/verify", body);
            assert_eq!(r.status, 401, "guess {guesses}: {}", r.text());
            guesses += 1;
        }
    }
    assert_eq!(guesses, 10);
    // The eleventh code, from yet another address, is refused whatever it is.
    let t = ticket_from("10.0.1.9");
    let body = json!({"ticket": t, "code": code(&secret, step + 1)});
    let r = from("10.0.1.9", "/api/auth/2fa/verify", body);
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 60, "the account's 15-minute window: {retry}");
}
