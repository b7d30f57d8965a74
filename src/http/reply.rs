//! JSON responses and the contract's error shapes, built in one place.

use std::borrow::Cow;

use blitz_worker::Response;
use serde::Serialize;

pub const JSON: &str = "application/json";

/// A JSON response with `Cache-Control: no-store` (API answers are per-user and live).
pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => raw_json(status, body),
        Err(_) => error(500, "Internal server error"),
    }
}

/// A response with an already-serialised JSON body.
pub fn raw_json(status: u16, body: Vec<u8>) -> Response {
    Response::new(status)
        .header("Content-Type", JSON)
        .header("Cache-Control", "no-store")
        .body(body)
}

/// `{"error": message}` with `status`.
pub fn error(status: u16, message: impl Into<Cow<'static, str>>) -> Response {
    #[derive(Serialize)]
    struct E<'a> {
        error: &'a str,
    }
    let message = message.into();
    let body = serde_json::to_vec(&E { error: &message }).unwrap_or_else(|_| b"{}".to_vec());
    raw_json(status, body)
}
