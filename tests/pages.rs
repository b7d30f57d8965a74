//! The HTML pages over HTTP with the real binary: status codes, redirects to
//! `/login`, admin-only pages, CSRF tokens in every form, the notice on every page,
//! static assets with cache headers, security headers and HTML error pages.

mod common;

use common::api::{call, login, new_user, Browser};
use common::{blitz_cmd, Resp, Server};

const PW: &str = "page-password-1";

fn outbox(s: &Server) -> std::path::PathBuf {
    s.path("instance/outbox")
}

fn page(s: &Server, b: Option<&Browser>, path: &str) -> Resp {
    let mut h = vec![("Accept", "text/html")];
    if let Some(b) = b {
        h.push(("Cookie", b.cookie.as_str()));
    }
    call(s.port, "GET", path, &h, "")
}

/// A verified admin, logged in.
fn admin(s: &Server, email: &str) -> Browser {
    let out = blitz_cmd(s.dir.path())
        .args([
            "user",
            "create",
            "--email",
            email,
            "--admin",
            "--password-stdin",
        ])
        .args(["--database", &s.database()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{PW}\n").as_bytes())?;
            c.wait_with_output()
        })
        .expect("blitz user create");
    assert!(out.status.success());
    login(s.port, email, PW)
}

fn assert_html(r: &Resp, status: u16, title: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let ctype = r.header("content-type").unwrap_or_default();
    assert!(ctype.starts_with("text/html"), "content-type {ctype}");
    let body = r.text();
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(
        body.contains(&format!("<title>{title} · Blitz</title>")),
        "title {title:?} in {body}"
    );
    assert_self_contained(&body);
}

/// No inline script, style or event handler, nothing from another origin: the
/// default self-only CSP must not block any part of a page.
fn assert_self_contained(body: &str) {
    let lower = body.to_ascii_lowercase();
    assert!(!lower.contains("<script>"), "inline script");
    assert!(!lower.contains("<style"), "inline stylesheet");
    assert!(!lower.contains(" style="), "style attribute");
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onchange=",
        "javascript:",
    ] {
        assert!(!lower.contains(handler), "{handler} in page");
    }
    for attr in ["src=\"", "href=\""] {
        for (i, _) in lower.match_indices(attr) {
            let value = &lower[i + attr.len()..];
            // The chart library's attribution is a plain link, nothing is loaded.
            let attribution =
                attr == "href=\"" && value.starts_with("https://www.tradingview.com/\"");
            assert!(
                attribution
                    || (!value.starts_with("http:")
                        && !value.starts_with("https:")
                        && !value.starts_with("//")),
                "external {attr}{}",
                &value[..value.len().min(40)]
            );
        }
    }
}

/// The value of every `csrf_token` field of every POST form.
fn form_tokens(body: &str) -> Vec<Option<String>> {
    body.split("<form")
        .skip(1)
        .filter(|f| {
            f.split('>')
                .next()
                .unwrap_or("")
                .contains("method=\"post\"")
        })
        .map(|f| {
            let form = f.split("</form>").next().unwrap_or("");
            let at = form.find("name=\"csrf_token\" value=\"")?;
            let rest = &form[at + "name=\"csrf_token\" value=\"".len()..];
            Some(rest.split('"').next().unwrap_or("").to_string()).filter(|t| !t.is_empty())
        })
        .collect()
}

#[test]
fn anonymous_visits_go_to_login_and_public_pages_render() {
    let s = Server::start();
    for (path, next) in [
        ("/", "%2F"),
        ("/settings", "%2Fsettings"),
        ("/pnl", "%2Fpnl"),
        ("/admin", "%2Fadmin"),
        ("/admin/users/1", "%2Fadmin%2Fusers%2F1"),
    ] {
        let r = page(&s, None, path);
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(
            r.header("location"),
            Some(format!("/login?next={next}").as_str())
        );
    }
    assert_html(&page(&s, None, "/login?next=%2Fpnl"), 200, "Log in");
    assert!(page(&s, None, "/login?next=%2Fpnl")
        .text()
        .contains("data-done=\"/pnl\""));
    // A next= pointing elsewhere is ignored.
    let evil = page(&s, None, "/login?next=%2F%2Fevil.example").text();
    assert!(evil.contains("data-done=\"/\""), "{evil}");
    assert_html(&page(&s, None, "/register"), 200, "Create an account");
    assert_html(&page(&s, None, "/forgot"), 200, "Forgot password");
    assert_html(
        &page(&s, None, "/verify/not-a-token"),
        400,
        "Link invalid or expired",
    );
    assert_html(
        &page(&s, None, "/reset/not-a-token"),
        400,
        "Link invalid or expired",
    );
    // Every page, errors included, carries the security headers.
    let r = page(&s, None, "/login");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn user_pages_render_with_csrf_in_every_form_and_admin_pages_refuse_users() {
    let s = Server::start();
    let b = new_user(s.port, &outbox(&s), "pages@example.com", PW);
    let mut tokens = Vec::new();
    for (path, title) in [
        ("/", "Dashboard"),
        ("/settings", "Settings"),
        ("/pnl", "PnL"),
    ] {
        let r = page(&s, Some(&b), path);
        assert_html(&r, 200, title);
        let body = r.text();
        assert!(body.contains("pages@example.com"), "{path} names the user");
        assert!(
            !body.contains("href=\"/admin\""),
            "{path}: no admin link for users"
        );
        let forms = form_tokens(&body);
        assert!(!forms.is_empty(), "{path} has forms (at least log out)");
        for t in forms {
            tokens.push(t.unwrap_or_else(|| panic!("a POST form on {path} without csrf_token")));
        }
    }
    // The settings page has five POST forms: log out, configuration, password,
    // tokens, two-factor setup; and its config form is pre-filled with the
    // starting configuration.
    let settings = page(&s, Some(&b), "/settings").text();
    assert_eq!(form_tokens(&settings).len(), 5, "{settings}");
    assert!(settings.contains("value=\"BTC/USDT\""));
    assert_eq!(settings.matches("class=\"leg\"").count(), 3);
    // The tokens in the pages are the session's: the API accepts them.
    for t in tokens.iter().take(2) {
        let r = call(
            s.port,
            "POST",
            "/api/auth/tokens",
            &[("Cookie", &b.cookie), ("X-CSRF-Token", t)],
            r#"{"name":"from a page token"}"#,
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let listed = page(&s, Some(&b), "/settings").text();
    assert_eq!(
        listed.matches("from a page token").count(),
        4,
        "name and confirm text, twice"
    );
    // Admin pages: 403 HTML for a user.
    for path in ["/admin", "/admin/users/1"] {
        assert_html(&page(&s, Some(&b), path), 403, "Forbidden");
    }
    let a = admin(&s, "boss@example.com");
    let list = page(&s, Some(&a), "/admin?query=pages");
    assert_html(&list, 200, "Admin");
    let body = list.text();
    assert!(body.contains("pages@example.com") && !body.contains(">boss@example.com</a>"));
    assert!(form_tokens(&body).iter().all(Option::is_some));
    let detail = page(&s, Some(&a), &format!("/admin/users/{}", b.user_id));
    assert_html(&detail, 200, "User pages@example.com");
    assert!(detail
        .text()
        .contains(&format!("/api/admin/users/{}/bot/start", b.user_id)));
    assert_html(
        &page(&s, Some(&a), "/admin/users/999999"),
        404,
        "Page not found",
    );
    assert_html(
        &page(&s, Some(&a), "/admin/users/abc"),
        404,
        "Page not found",
    );
    // A logged-in visit to /login goes where it was headed.
    let r = page(&s, Some(&b), "/login?next=%2Fpnl");
    assert_eq!((r.status, r.header("location")), (303, Some("/pnl")));
}

#[test]
fn maintenance_notice_and_banner_appear_on_every_page() {
    let s = Server::start();
    let b = new_user(s.port, &outbox(&s), "notice@example.com", PW);
    let a = admin(&s, "ops@example.com");
    assert!(!page(&s, Some(&b), "/").text().contains("class=\"notice"));
    assert_eq!(
        a.call(s.port, "POST", "/admin/maintenance/enable", "")
            .status,
        200
    );
    let banner = r#"{"message":"Upgrade <b>tonight</b>"}"#;
    assert_eq!(a.call(s.port, "POST", "/admin/banner", banner).status, 200);
    for (who, path) in [
        (Some(&b), "/"),
        (Some(&b), "/settings"),
        (Some(&b), "/pnl"),
        (Some(&a), "/admin"),
        (None, "/login"),
        (None, "/register"),
        (None, "/nope"),
    ] {
        let body = page(&s, who, path).text();
        assert!(body.contains("notice maintenance"), "{path}: {body}");
        assert!(
            body.contains("Upgrade &lt;b&gt;tonight&lt;/b&gt;"),
            "{path} banner, escaped"
        );
    }
    let admin_page = page(&s, Some(&a), "/admin").text();
    assert!(admin_page.contains("Turn maintenance off"));
}

#[test]
fn assets_are_served_with_content_hash_urls_and_cache_headers() {
    let s = Server::start();
    let body = page(&s, None, "/login").text();
    let url = |suffix: &str| {
        let end = body
            .find(suffix)
            .unwrap_or_else(|| panic!("{suffix} in {body}"))
            + suffix.len();
        let start = body[..end].rfind("\"/static/").unwrap() + 1;
        body[start..end].to_string()
    };
    for (suffix, ctype) in [
        ("/app.css", "text/css"),
        ("/api.js", "text/javascript"),
        ("/forms.js", "text/javascript"),
        ("/ladder.js", "text/javascript"),
        ("/price_chart.js", "text/javascript"),
        ("/dashboard.js", "text/javascript"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let path = url(suffix);
        let r = s.get(&path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(ctype),
            "{path}"
        );
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(r.header("content-security-policy").is_some());
        let etag = r.header("etag").unwrap().to_string();
        assert!(
            path.contains(etag.trim_matches('"')),
            "{etag} is the hash in {path}"
        );
        let again = call(s.port, "GET", &path, &[("If-None-Match", &etag)], "");
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        // An old hash still gets the file, but revalidated, never cached for a year.
        let stale = s.get(&format!("/static/0000000000000000{suffix}"));
        assert_eq!(stale.status, 200);
        assert_eq!(stale.header("cache-control"), Some("no-cache"));
        assert_eq!(stale.body, r.body);
    }
    assert_eq!(s.get("/static/0000000000000000/other.js").status, 404);
}

#[test]
fn unknown_pages_get_html_errors_and_the_api_keeps_json() {
    let s = Server::start();
    let html = page(&s, None, "/no/such/page");
    assert_html(&html, 404, "Page not found");
    assert!(html.header("content-security-policy").is_some());
    let json = s.get("/no/such/page");
    assert_eq!(json.status, 404);
    assert_eq!(json.json()["error"], "Not found");
    let api = page(&s, None, "/api/nope");
    assert_eq!(api.status, 404);
    assert_eq!(api.json()["error"], "Not found");
    let post = call(s.port, "POST", "/settings", &[("Accept", "text/html")], "");
    assert_html(&post, 405, "Method not allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    // API routes keep their JSON refusals even when a browser asks.
    let r = page(&s, None, "/api/bot/status");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "Authentication required");
}

#[test]
fn secrets_never_come_back_and_next_cannot_leave_the_site() {
    // The key is checked on save: a local fake Bybit that knows it.
    let bybit = common::fake_bybit::FakeBybit::start("KEY-abcd1234", "S3CRET-api-secret-value");
    let url = bybit.url();
    let s = Server::with(common::Options {
        env: vec![("BYBIT_BASE_URL", &url)],
        ..Default::default()
    });
    let b = new_user(s.port, &outbox(&s), "secrets@example.com", PW);
    let secret = "S3CRET-api-secret-value";
    let r = b.call(
        s.port,
        "PUT",
        "/api/bot/config",
        &serde_json::json!({"exchange": "bybit", "api_key": "KEY-abcd1234",
            "api_secret": secret, "telegram_token": "123:tg-token-never-shown",
            "telegram_chat_id": "42"})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let settings = page(&s, Some(&b), "/settings").text();
    assert!(settings.contains("***1234"), "the key shows masked");
    for leak in ["KEY-abcd1234", secret, "tg-token-never-shown"] {
        assert!(!settings.contains(leak), "{leak} in the settings page");
    }
    // A logged-in visit to /login redirects to next= only if it is a plain path
    // on this site: no line break can add a header, no tab can make `//host`.
    let r = page(&s, Some(&b), "/login?next=%2F%0D%0ASet-Cookie:%20x%3D1");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/"));
    assert!(r.header("set-cookie").is_none(), "no header from the query");
    let r = page(&s, Some(&b), "/login?next=%2Fpnl%3Fdays%3D90");
    assert_eq!(r.header("location"), Some("/pnl?days=90"));
    let anon = page(&s, None, "/login?next=%2F%09%2Fevil.example").text();
    assert!(anon.contains("data-done=\"/\""), "{anon}");
    // A page asked for with a bad bearer token answers in HTML, not JSON.
    let r = call(
        s.port,
        "GET",
        "/settings",
        &[
            ("Accept", "text/html"),
            ("Authorization", "Bearer not-a-token"),
        ],
        "",
    );
    assert_eq!(r.status, 401);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    // The redirect to /login keeps the page's query.
    let r = page(&s, None, "/pnl?days=90");
    assert_eq!(r.header("location"), Some("/login?next=%2Fpnl%3Fdays%3D90"));
}

/// The attribute-free text of the element with `id` (its first text run).
fn text_of(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {body}"));
    let rest = &body[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..].split('<').next().unwrap().trim().to_string()
}

/// Whether the element with `id` carries the `hidden` attribute.
fn hidden(body: &str, id: &str) -> bool {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {body}"));
    body[at..].split('>').next().unwrap().contains(" hidden")
}

#[test]
fn settings_show_the_trading_fields_their_minimum_and_a_pending_change() {
    let s = Server::with(common::Options {
        env: common::bots::CALM.to_vec(),
        ..Default::default()
    });
    let b = new_user(s.port, &outbox(&s), "core@example.com", PW);
    let settings = page(&s, Some(&b), "/settings").text();
    for field in [
        "name=\"after_stop_loss\"",
        "name=\"cooldown\"",
        "name=\"max_active_legs\"",
        "name=\"trailing_take_profit\"",
        "data-error-for=\"after_stop_loss\"",
        "data-error-for=\"cooldown\"",
        "data-error-for=\"max_active_legs\"",
        "data-error-for=\"trailing_take_profit\"",
        "<option value=\"stop\" selected>",
        "value=\"paper\" data-round-trip=\"0.075\" selected",
    ] {
        assert!(settings.contains(field), "{field} in the settings page");
    }
    assert!(!settings.contains("Stop the bot before changing its configuration"));
    assert_eq!(
        text_of(&settings, "tp-minimum"),
        "Must be above 0.75 at 10x on paper (the round-trip fees)."
    );
    assert!(hidden(&settings, "cfg-pending"), "nothing pending yet");

    // Values saved through the API come back in the form.
    let saved = b.call(
        s.port,
        "PUT",
        "/api/bot/config",
        r#"{"after_stop_loss":"continue","cooldown":90,"max_active_legs":2,
            "trailing_take_profit":0.5,"leverage":20}"#,
    );
    assert_eq!(saved.status, 200, "{}", saved.text());
    let settings = page(&s, Some(&b), "/settings").text();
    for value in [
        "<option value=\"continue\" selected>",
        "id=\"cooldown\" name=\"cooldown\" type=\"number\" inputmode=\"numeric\" min=\"0\" max=\"86400\" step=\"1\" value=\"90\"",
        "max=\"50\" step=\"1\" value=\"2\"",
        "max=\"20\" step=\"any\" value=\"0.5\"",
    ] {
        assert!(settings.contains(value), "{value} in {settings}");
    }
    assert_eq!(
        text_of(&settings, "tp-minimum"),
        "Must be above 1.5 at 20x on paper (the round-trip fees)."
    );

    // While the bot runs a change waits for the next cycle: the form shows it.
    let started = b.call(s.port, "POST", "/api/bot/start", "");
    assert_eq!(started.status, 200, "{}", started.text());
    let pending = b.call(s.port, "PUT", "/api/bot/config", r#"{"cooldown":300}"#);
    assert_eq!(pending.status, 200, "{}", pending.text());
    assert_eq!(pending.json()["pending"], true);
    let settings = page(&s, Some(&b), "/settings").text();
    assert!(
        !hidden(&settings, "cfg-pending"),
        "the pending change is shown"
    );
    assert!(settings.contains("max=\"86400\" step=\"1\" value=\"300\""));
    let dash = page(&s, Some(&b), "/").text();
    assert!(
        !hidden(&dash, "st-pending"),
        "the dashboard says a change waits"
    );
    let stopped = b.call(
        s.port,
        "POST",
        "/api/bot/stop",
        r#"{"mode":"cancel_orders"}"#,
    );
    assert_eq!(stopped.status, 200, "{}", stopped.text());
}

#[test]
fn dashboard_shows_stops_reasons_open_orders_and_trade_reasons() {
    let s = Server::with(common::Options {
        env: common::bots::CALM.to_vec(),
        ..Default::default()
    });
    let b = new_user(s.port, &outbox(&s), "dash@example.com", PW);
    let set = b.call(s.port, "PUT", "/api/bot/config", r#"{"stop_loss":50}"#);
    assert_eq!(set.status, 200, "{}", set.text());
    let dash = page(&s, Some(&b), "/").text();
    assert!(dash.contains("<option value=\"after_cycle\">stop after this cycle</option>"));
    assert!(dash.contains("id=\"open-orders\" data-source=\"/api/bots/"));
    assert!(
        dash.contains("data-poll=\"/api/bots/"),
        "the bot's own status"
    );
    assert!(
        dash.contains("data-words=\""),
        "the script gets the reason words"
    );
    for id in [
        "st-after-cycle",
        "st-pending",
        "st-next-box",
        "st-reason-box",
    ] {
        assert!(hidden(&dash, id), "#{id} hidden before any start");
    }
    assert_eq!(text_of(&dash, "st-tp"), "-");

    let started = b.call(s.port, "POST", "/api/bot/start", "");
    assert_eq!(started.status, 200, "{}", started.text());
    // The entry fills at once on paper; then the take-profit and the stop rest.
    let mut status = serde_json::Value::Null;
    common::wait_for(
        std::time::Duration::from_secs(20),
        "take-profit and stop prices",
        || {
            status = b.call(s.port, "GET", "/api/bot/status", "").json();
            status["take_profit_price"].is_number() && status["stop_on_exchange"] == true
        },
    );
    let dash = page(&s, Some(&b), "/").text();
    let tp = text_of(&dash, "st-tp");
    assert!(
        tp != "-" && tp.parse::<f64>().is_ok(),
        "take-profit price {tp}"
    );
    let sl = text_of(&dash, "st-sl");
    assert!(sl.ends_with(", on the exchange"), "{sl}");
    let after = b.call(s.port, "POST", "/api/bot/stop", r#"{"mode":"after_cycle"}"#);
    assert_eq!(
        after.json()["status"],
        "stopping_after_cycle",
        "{}",
        after.text()
    );
    let dash = page(&s, Some(&b), "/").text();
    assert!(!hidden(&dash, "st-after-cycle"), "stops after this cycle");
    let stopped = b.call(
        s.port,
        "POST",
        "/api/bot/stop",
        r#"{"mode":"cancel_orders"}"#,
    );
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    let dash = page(&s, Some(&b), "/").text();
    assert!(!hidden(&dash, "st-reason-box"));
    assert_eq!(text_of(&dash, "st-reason"), "stopped by you");
    assert!(hidden(&dash, "st-after-cycle"));

    // Closed cycles show how they closed and their funding (the dashboard lists
    // the shown bot's).
    let db = common::bots::db(&s);
    db.execute(
        "INSERT INTO trades (user_id, bot_id, symbol, side, size, avg_entry, exit_price, pnl,
                             fees, cycle, opened_at, closed_at, close_reason, funding)
         VALUES (?1, (SELECT MIN(id) FROM user_bots WHERE user_id = ?1), 'BTC/USDT', 'long',
                 '0.01', '60000', '59000', '-10.75', '0.1', 90,
                 strftime('%s','now') - 600, strftime('%s','now'), 'stop_loss', '-0.25')",
        [b.user_id],
    )
    .unwrap();
    for path in ["/", "/pnl"] {
        let body = page(&s, Some(&b), path).text();
        assert!(body.contains("<th scope=\"col\">Reason</th>"), "{path}");
        assert!(
            body.contains("<td>stop loss</td><td class=\"num opt\">-0.25</td><td class=\"num neg\">-10.75</td>"),
            "{path}: {body}"
        );
    }
}

#[test]
fn every_bot_has_its_dashboard_and_settings_and_nobody_elses() {
    let s = Server::with(common::Options {
        env: common::bots::CALM.to_vec(),
        ..Default::default()
    });
    let b = new_user(s.port, &outbox(&s), "two@example.com", PW);
    let other = new_user(s.port, &outbox(&s), "else@example.com", PW);
    let made = b.call(
        s.port,
        "POST",
        "/api/bots",
        r#"{"name": "ETH short", "symbol": "ETH/USDT", "side": "short"}"#,
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let second = made.json()["id"].as_i64().unwrap();
    let theirs = other.call(s.port, "GET", "/api/bots", "").json()["bots"][0]["id"]
        .as_i64()
        .unwrap();

    let dash = page(&s, Some(&b), "/").text();
    assert!(
        dash.contains(">Default</a>") && dash.contains(">ETH short</a>"),
        "both bots listed"
    );
    assert!(dash.contains(&format!("href=\"/?bot={second}\"")));
    let view = page(&s, Some(&b), &format!("/?bot={second}")).text();
    assert!(
        view.contains(&format!("data-bot=\"{second}\"")),
        "the chosen bot"
    );
    assert!(
        view.contains("data-symbol=\"ETH/USDT\""),
        "its market's chart"
    );
    assert!(view.contains("id=\"price-chart\""));
    assert_self_contained(&view);
    let settings = page(&s, Some(&b), &format!("/settings?bot={second}")).text();
    assert!(settings.contains(&format!("data-api=\"PUT /api/bots/{second}/config\"")));
    assert!(settings.contains(&format!("data-preview=\"/api/bots/{second}/preview\"")));
    assert!(
        settings.contains("<option value=\"ETH/USDT\" selected>"),
        "symbol from the catalogue"
    );
    assert!(hidden(&settings, "keys-box"), "no key fields for paper");
    for path in [format!("/?bot={theirs}"), format!("/settings?bot={theirs}")] {
        assert_eq!(page(&s, Some(&b), &path).status, 404, "{path}");
    }
}
