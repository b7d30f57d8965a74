//! JSON API calls and account helpers for integration tests.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::client::{request, Resp};
use super::wait_for;

/// Sends one request on a new connection. `headers` are added verbatim.
pub fn call(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        raw.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    request(port, raw.as_bytes())
}

/// A logged-in browser: the session cookie and the CSRF token from the login answer.
#[derive(Clone, Debug)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
    pub user_id: i64,
}

impl Browser {
    /// A request with the cookie and (for unsafe methods) the CSRF header.
    pub fn call(&self, port: u16, method: &str, path: &str, body: &str) -> Resp {
        let mut h = vec![("Cookie", self.cookie.as_str())];
        if method != "GET" {
            h.push(("X-CSRF-Token", self.csrf.as_str()));
        }
        call(port, method, path, &h, body)
    }
}

pub fn login_resp(port: u16, email: &str, password: &str) -> Resp {
    let body = serde_json::json!({"email": email, "password": password}).to_string();
    call(port, "POST", "/api/auth/login", &[], &body)
}

/// Logs in and returns the browser; panics unless the login succeeds.
pub fn login(port: u16, email: &str, password: &str) -> Browser {
    let r = login_resp(port, email, password);
    assert_eq!(r.status, 200, "login {email}: {}", r.text());
    let set = r.header("set-cookie").expect("Set-Cookie").to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let j = r.json();
    Browser {
        cookie,
        csrf: j["csrf_token"].as_str().unwrap().to_string(),
        user_id: j["user"]["id"].as_i64().unwrap(),
    }
}

pub fn register(port: u16, email: &str, password: &str) -> Resp {
    let body = serde_json::json!({"email": email, "password": password}).to_string();
    call(port, "POST", "/api/auth/register", &[], &body)
}

/// Waits for a mail to `to` in the outbox whose body has `marker` and returns the
/// token that follows the marker (e.g. `"/verify/"`).
pub fn mailed_token(outbox: &Path, to: &str, marker: &str) -> String {
    let mut token = None;
    wait_for(Duration::from_secs(10), "mail in the outbox", || {
        token = find_token(outbox, to, marker);
        token.is_some()
    });
    token.unwrap()
}

fn find_token(outbox: &Path, to: &str, marker: &str) -> Option<String> {
    let mut entries: Vec<_> = fs::read_dir(outbox).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    entries.iter().rev().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".eml") {
            return None;
        }
        let text = fs::read_to_string(e.path()).ok()?;
        if !text.contains(&format!("To: {to}")) {
            return None;
        }
        token_after(&text, marker)
    })
}

/// The URL-safe token right after `marker` in `text`.
pub fn token_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// Registers, verifies through the mailed link, logs in.
pub fn new_user(port: u16, outbox: &Path, email: &str, password: &str) -> Browser {
    let r = register(port, email, password);
    assert_eq!(r.status, 201, "{}", r.text());
    let token = mailed_token(outbox, email, "/verify/");
    let v = call(
        port,
        "POST",
        "/api/auth/verify",
        &[],
        &serde_json::json!({ "token": token }).to_string(),
    );
    assert_eq!(v.status, 200, "{}", v.text());
    login(port, email, password)
}

/// The value of the first hidden field `name` of a page's form.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// `name=value` of the response's `Set-Cookie` named `name`.
pub fn cookie_pair(r: &Resp, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers))
}
