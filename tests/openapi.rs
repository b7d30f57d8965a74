//! The API's description, `docs/openapi.json` (CONTRACT C14): a well-formed
//! OpenAPI 3.1 document whose operations are exactly the routing table's JSON
//! routes, served as it is at `GET /api/openapi.json`, and answered as documented.
//! That last part is the hook every integration test's client runs
//! (`common::openapi`); the tour below makes sure each documented operation meets
//! the real binary at least once (the several-bots part is `several_bots`).

mod common;

#[path = "openapi/several_bots.rs"]
mod several_bots;

use std::collections::BTreeSet;
use std::time::Duration;

use blitz::http::{Kind, ROUTES};
use serde_json::{json, Value};

use common::api::{self, call, login, mailed_token, Browser};
use common::bots::{self, wait_status, User, CALM};
use common::fake_bybit::FakeBybit;
use common::openapi::{self, escape, operations, verdict};
use common::sent::{Requests, Sent};
use common::{totp, Options, Resp, Server};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> &'static Value {
    openapi::document()
}

/// The routing table's JSON routes (every route but the pages), as the document
/// writes them: `<id>` is `{id}`.
fn routed() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .filter(|r| r.kind() == Kind::Api)
        .map(|r| {
            (
                r.method.to_string(),
                r.path.replace('<', "{").replace('>', "}"),
            )
        })
        .collect()
}

/// Each operation object with its method and path template.
fn each_operation() -> Vec<(String, String, &'static Value)> {
    let mut out = Vec::new();
    for (path, item) in doc()["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op));
            }
        }
    }
    out
}

/// The object a `{"$ref": "#/…"}` names, or the object itself.
fn deref(v: &'static Value) -> &'static Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc()
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => v,
    }
}

/// Every value of the document with its JSON pointer.
fn walk(v: &'static Value, at: String, out: &mut Vec<(String, &'static Value)>) {
    out.push((at.clone(), v));
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| walk(x, format!("{at}/{}", escape(k)), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, x)| walk(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

fn everything() -> Vec<(String, &'static Value)> {
    let mut all = Vec::new();
    walk(doc(), String::new(), &mut all);
    all
}

#[test]
fn the_document_is_openapi_3_1() {
    let d = doc();
    let version = d["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi {version:?}");
    assert!(d["info"]["title"].is_string() && d["info"]["version"].is_string());
    let tags: BTreeSet<&str> = d["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let schemes = d["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let mut ids = BTreeSet::new();
    for (method, path, op) in each_operation() {
        let at = format!("{method} {path}");
        assert!(path.starts_with('/'), "{at}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: operationId"));
        assert!(ids.insert(id), "{at}: operationId {id} twice");
        for tag in op["tags"].as_array().expect("tags") {
            assert!(tags.contains(tag.as_str().unwrap_or("")), "{at}: tag {tag}");
        }
        for requirement in op["security"].as_array().expect("security") {
            for scheme in requirement.as_object().expect("a requirement").keys() {
                assert!(schemes.contains_key(scheme), "{at}: scheme {scheme}");
            }
        }
        let responses = op["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{at}: no responses");
        for (status, response) in responses {
            assert!(
                status.len() == 3 && status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)),
                "{at}: status {status}"
            );
            assert!(
                deref(response)["description"].is_string(),
                "{at} {status}: description"
            );
        }
        path_parameters_are_declared(&at, &path, op);
    }
    for name in ["x-http-layer-responses", "x-router-responses"] {
        for (status, response) in d[name].as_object().expect(name) {
            assert!(
                deref(response)["content"]["application/json"].is_object(),
                "{name} {status}"
            );
        }
    }
}

/// Every `{name}` of the template is a required path parameter, and only those.
fn path_parameters_are_declared(at: &str, path: &str, op: &'static Value) {
    let in_template: BTreeSet<&str> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    let declared: BTreeSet<&str> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(deref)
        .filter(|p| p["in"] == "path")
        .inspect(|p| assert_eq!(p["required"], true, "{at}: path parameter {p}"))
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(in_template, declared, "{at}: path parameters");
}

#[test]
fn every_reference_resolves_and_every_schema_compiles() {
    let all = everything();
    for (at, v) in &all {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let target = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{at}: {r} is not a local reference"));
            assert!(
                doc().pointer(target).is_some(),
                "{at}: {r} does not resolve"
            );
        }
    }
    // The schemas of parameters, bodies and responses, and the named ones.
    let schemas: Vec<&String> = all
        .iter()
        .filter(|(at, _)| {
            at.ends_with("/schema") && !at.contains("/properties/")
                || at.starts_with("/components/schemas/") && at.matches('/').count() == 3
        })
        .map(|(at, _)| at)
        .collect();
    assert!(schemas.len() > 100, "{} schemas found", schemas.len());
    for at in schemas {
        let schema = doc().pointer(at).expect("a schema");
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!("{at} is not a JSON Schema 2020-12: {e}");
        }
        if let Err(e) = openapi::compiles(at) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_routing_table_and_the_document_have_the_same_operations() {
    let documented = operations();
    let routed = routed();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes docs/openapi.json does not document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented operations the routing table lacks: {unrouted:?}"
    );
}

fn sent(method: &str, target: &str) -> Sent {
    Sent {
        method: method.into(),
        target: target.into(),
    }
}

/// An answer as blitz sends it.
fn answer(status: u16, body: Value) -> Resp {
    Resp {
        status,
        headers: vec![
            ("Server".into(), "blitz".into()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

#[test]
fn the_hook_refuses_what_the_document_does_not_say() {
    let status = sent("GET", "/api/status");
    let good = json!({"maintenance_enabled": false, "banner_message": ""});
    assert_eq!(verdict(&status, &answer(200, good.clone())), Ok(()));
    // A field missing, one too many, one of the wrong type.
    let missing = json!({"maintenance_enabled": false});
    let extra = json!({"maintenance_enabled": false, "banner_message": "", "x": 1});
    let wrong = json!({"maintenance_enabled": "no", "banner_message": ""});
    for body in [missing, extra, wrong] {
        let e = verdict(&status, &answer(200, body)).unwrap_err();
        assert!(e.contains("/api/status") && e.contains("200"), "{e}");
    }
    // A status the operation does not document.
    let e = verdict(&status, &answer(418, json!({"error": "teapot"}))).unwrap_err();
    assert!(e.contains("418"), "{e}");
    // Not JSON where JSON is documented.
    let mut text = answer(200, good);
    text.headers[1].1 = "text/plain".into();
    assert!(verdict(&status, &text).is_err());
    // A decimal sent as a string.
    let account = json!({"balance": "10000", "equity": 10000, "available": 10000,
                         "unrealized_pnl": 0, "positions": []});
    assert!(verdict(&sent("GET", "/api/paper/account"), &answer(200, account)).is_err());
    // An undocumented route answering; an unknown one answering 404; a page.
    assert!(verdict(&sent("GET", "/api/nowhere"), &answer(200, json!({}))).is_err());
    let not_found = answer(404, json!({"error": "Not found"}));
    assert_eq!(verdict(&sent("GET", "/api/nowhere"), &not_found), Ok(()));
    let mut page = answer(200, json!(null));
    page.headers[1].1 = "text/html".into();
    assert_eq!(verdict(&sent("GET", "/settings"), &page), Ok(()));
    // A proxy's own answer is not blitz's.
    let mut proxy = answer(403, json!(null));
    proxy.headers = vec![("Server".into(), "nginx".into())];
    assert_eq!(verdict(&sent("GET", "/metrics"), &proxy), Ok(()));
    proxy.headers[0].1 = "blitz".into();
    assert!(verdict(&sent("GET", "/metrics"), &proxy).is_err());
    // The HTTP layer's answers go with any operation.
    let too_large = answer(413, json!({"error": "Request body too large"}));
    assert_eq!(
        verdict(&sent("POST", "/api/auth/login"), &too_large),
        Ok(())
    );
    let other = answer(413, json!({"error": "something else"}));
    assert!(verdict(&sent("POST", "/api/auth/login"), &other).is_err());
    // Also where no operation is: they answer before routing.
    assert_eq!(verdict(&sent("POST", "/healthz"), &too_large), Ok(()));
    assert_eq!(verdict(&sent("GET", "/api/nowhere"), &too_large), Ok(()));
}

#[test]
fn each_response_is_paired_with_its_request() {
    let targets = |r: &mut Requests| -> Vec<String> {
        std::iter::from_fn(|| r.answered())
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    };
    let mut r = Requests::default();
    r.wrote(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe");
    r.wrote(b"llo");
    r.wrote(
        b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    );
    r.wrote(b"GET /c?d=1 HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&mut r), ["POST /a", "POST /b", "GET /c?d=1"]);
    // Framing that cannot be followed: the refusal is paired, nothing after it.
    let mut r = Requests::default();
    r.wrote(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
    r.wrote(b"GET /b HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&mut r), ["POST /a"]);
}

#[test]
fn the_served_document_is_the_file() {
    let s = Server::with(Options {
        workers: 1,
        ..Options::default()
    });
    let r = s.get("/api/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, openapi::DOCUMENT.as_bytes());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Cache-Control"), Some("public, max-age=3600"));
    // Public: no credentials needed, none looked at.
    let bad = call(
        s.port,
        "GET",
        "/api/openapi.json",
        &[("Authorization", "Bearer nope")],
        "",
    );
    assert_eq!(bad.status, 200);
}

fn expect(r: Resp, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    }
}

/// Drives every routed operation of the document against the real binary, with a
/// success and a few refusals; the hook checks each answer. Then every documented
/// operation must have answered a 2xx as documented.
#[test]
fn every_documented_operation_answers_as_documented() {
    let bybit = FakeBybit::start(several_bots::KEY, several_bots::SECRET);
    let url = bybit.url();
    let mut env = CALM.to_vec();
    env.extend([
        ("ENABLE_METRICS", "true"),
        ("BYBIT_BASE_URL", url.as_str()),
        ("BOTS_PER_USER", several_bots::LIMIT),
    ]);
    let s = Server::with(Options {
        env,
        ..Options::default()
    });
    probes_and_refusals(&s);
    account_and_two_factor(&s);
    let u = bots::user(&s, "bot@x.io", false);
    let admin = bots::user(&s, "admin@x.io", true);
    bot_lifecycle(&s, &u);
    administration(&s, &admin, &u);
    let owner = bots::user(&s, "bots@x.io", false);
    several_bots::tour(&s, &owner, &admin);

    let answered: BTreeSet<(String, String)> = openapi::seen()
        .into_iter()
        .filter(|(_, _, status)| (200..300).contains(status))
        .map(|(m, p, _)| (m, p))
        .collect();
    let missing: Vec<_> = operations().difference(&answered).cloned().collect();
    assert!(
        missing.is_empty(),
        "documented operations the tour never saw succeed: {missing:?}"
    );
}

fn probes_and_refusals(s: &Server) {
    let p = s.port;
    for path in [
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/api/status",
    ] {
        expect(s.get(path), 200, path);
    }
    expect(s.get("/api/nowhere"), 404, "an unknown route");
    expect(
        call(p, "DELETE", "/api/status", &[], ""),
        405,
        "another method",
    );
    expect(s.get("/api/bot/status"), 401, "no credentials");
    let plain = b"POST /api/auth/login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
        Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}";
    expect(common::request(p, plain), 415, "a body of another type");
    expect(
        call(p, "POST", "/api/auth/login", &[], "{"),
        400,
        "not JSON",
    );
}

const EMAIL: &str = "tour@x.io";

fn account_and_two_factor(s: &Server) {
    let p = s.port;
    let outbox = s.path("instance/outbox");
    let (pw, pw2, pw3) = ("first-password", "second-password", "third-password");
    // Register, verify and log in.
    let b = api::new_user(p, &outbox, EMAIL, pw);
    expect(b.call(p, "GET", "/api/auth/me", ""), 200, "me");
    let made = expect(
        b.call(p, "POST", "/api/auth/tokens", r#"{"name":"tour"}"#),
        201,
        "token",
    );
    expect(
        b.call(p, "GET", "/api/auth/tokens?limit=10", ""),
        200,
        "tokens",
    );
    let id = made["id"].as_i64().expect("token id");
    let gone = format!("/api/auth/tokens/{id}");
    expect(b.call(p, "DELETE", &gone, ""), 200, "token deleted");
    expect(b.call(p, "DELETE", &gone, ""), 404, "token deleted twice");
    let change = json!({"current_password": pw, "new_password": pw2, "keep_tokens": true});
    expect(
        b.call(p, "POST", "/api/auth/password", &change.to_string()),
        200,
        "password",
    );

    // Two-factor login: on, a login with a recovery code, off.
    let setup = expect(
        b.call(p, "POST", "/api/auth/2fa/setup", ""),
        200,
        "2fa setup",
    );
    let secret = setup["secret"].as_str().expect("secret");
    let code = json!({"code": totp::code(secret, totp::now_step())});
    let on = expect(
        b.call(p, "POST", "/api/auth/2fa/enable", &code.to_string()),
        200,
        "2fa on",
    );
    let codes: Vec<&str> = on["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let step = expect(api::login_resp(p, EMAIL, pw2), 200, "password step");
    let second = json!({"ticket": step["ticket"], "code": codes[0]}).to_string();
    let r = call(p, "POST", "/api/auth/2fa/verify", &[], &second);
    let set = r.header("set-cookie").unwrap_or_default().to_string();
    let done = expect(r, 200, "2fa verify");
    let b2 = Browser {
        cookie: set.split(';').next().unwrap_or_default().to_string(),
        csrf: done["csrf_token"].as_str().unwrap_or_default().to_string(),
        user_id: done["user"]["id"].as_i64().unwrap_or_default(),
    };
    let off = json!({"password": pw2, "code": codes[1]}).to_string();
    expect(
        b2.call(p, "POST", "/api/auth/2fa/disable", &off),
        200,
        "2fa off",
    );
    expect(b2.call(p, "POST", "/api/auth/logout", ""), 200, "logout");

    // A forgotten password.
    let forgot = json!({"email": EMAIL}).to_string();
    expect(
        call(p, "POST", "/api/auth/forgot", &[], &forgot),
        202,
        "forgot",
    );
    let token = mailed_token(&outbox, EMAIL, "/reset/");
    let reset = json!({"token": token, "new_password": pw3}).to_string();
    expect(
        call(p, "POST", "/api/auth/reset", &[], &reset),
        200,
        "reset",
    );
    expect(
        call(p, "POST", "/api/auth/reset", &[], &reset),
        400,
        "reset twice",
    );
    login(p, EMAIL, pw3);
}

fn bot_lifecycle(s: &Server, u: &User) {
    expect(
        u.call(s, "POST", "/api/paper/account/reset", ""),
        200,
        "paper reset",
    );
    expect(
        u.call(s, "GET", "/api/paper/account", ""),
        200,
        "paper account",
    );
    expect(u.call(s, "GET", "/api/bot/config", ""), 200, "config");
    expect(
        u.call(s, "PUT", "/api/bot/config", r#"{"take_profit": 6}"#),
        200,
        "config saved",
    );
    expect(
        u.call(s, "PUT", "/api/bot/config", r#"{"leverage": 0}"#),
        400,
        "config refused",
    );
    expect(u.call(s, "GET", "/api/markets", ""), 200, "markets");
    let candles = "/api/markets/candles?symbol=BTC/USDT&interval=1m&limit=5";
    expect(u.call(s, "GET", candles, ""), 200, "candles");
    expect(u.call(s, "POST", "/api/bot/start", ""), 200, "start");
    expect(u.call(s, "POST", "/api/bot/start", ""), 409, "start twice");
    wait_status(s, u, "running");
    wait_for_position(s, u);
    expect(u.call(s, "GET", "/api/bot/status", ""), 200, "status");
    expect(u.call(s, "GET", "/api/bot/orders", ""), 200, "orders");
    expect(
        u.call(s, "GET", "/api/bot/events?limit=5", ""),
        200,
        "events",
    );
    expect(
        u.call(s, "PUT", "/api/bot/config", r#"{"take_profit": 7}"#),
        200,
        "pending config",
    );
    expect(
        u.call(s, "POST", "/api/paper/account/reset", ""),
        409,
        "reset while running",
    );
    expect(u.call(s, "POST", "/api/bot/recover", ""), 200, "recover");
    let close = r#"{"mode": "close_position"}"#;
    expect(u.call(s, "POST", "/api/bot/stop", close), 200, "stop");
    expect(u.call(s, "POST", "/api/bot/stop", ""), 409, "stop twice");
    expect(u.call(s, "GET", "/api/trades?limit=5", ""), 200, "trades");
    let csv = u.call(s, "GET", "/api/trades.csv", "");
    assert_eq!(csv.status, 200, "trades.csv: {}", csv.text());
    let summary = "/api/pnl/summary?days=7&tz=Europe/Berlin";
    expect(u.call(s, "GET", summary, ""), 200, "pnl summary");
}

/// The entry fills at once on the paper exchange: the status shows a position.
fn wait_for_position(s: &Server, u: &User) {
    common::wait_for(Duration::from_secs(20), "a position", || {
        u.status(s)["position"].is_object()
    });
}

fn administration(s: &Server, a: &User, u: &User) {
    let user = |rest: &str| format!("/api/admin/users/{}{rest}", u.id);
    expect(
        a.call(s, "GET", "/admin/simple/status", ""),
        200,
        "overview",
    );
    expect(
        u.call(s, "GET", "/admin/simple/status", ""),
        403,
        "overview, not admin",
    );
    expect(
        a.call(s, "GET", "/api/admin/users?query=x.io&limit=5", ""),
        200,
        "users",
    );
    expect(
        a.call(s, "PATCH", &user(""), r#"{"verified": true}"#),
        200,
        "user changed",
    );
    expect(
        a.call(s, "POST", &user("/bot/start"), ""),
        200,
        "force start",
    );
    wait_status(s, u, "running");
    expect(
        a.call(s, "GET", &user("/bot/status"), ""),
        200,
        "user's status",
    );
    expect(
        a.call(s, "POST", &user("/bot/recover"), ""),
        200,
        "force recover",
    );
    let close = r#"{"mode": "close_position"}"#;
    expect(
        a.call(s, "POST", &user("/bot/stop"), close),
        200,
        "force stop",
    );
    let summary = format!("/api/admin/pnl/summary?user_id={}", u.id);
    expect(a.call(s, "GET", &summary, ""), 200, "user's pnl");
    expect(
        a.call(s, "POST", "/admin/maintenance/enable", ""),
        200,
        "maintenance on",
    );
    expect(
        u.call(s, "POST", "/api/bot/start", ""),
        503,
        "start during maintenance",
    );
    expect(
        a.call(s, "POST", "/admin/maintenance/disable", ""),
        200,
        "maintenance off",
    );
    expect(
        a.call(s, "POST", "/admin/banner", r#"{"message": "tour"}"#),
        200,
        "banner",
    );
    expect(
        a.call(s, "POST", "/admin/banner/clear", ""),
        200,
        "banner cleared",
    );
}
